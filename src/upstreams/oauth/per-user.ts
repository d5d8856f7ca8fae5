/**
 * Per-user upstream connections for `auth_type: "per_user_oauth"`: each downstream principal (API
 * key id, JWT or OAuth subject, virtual key) calls the upstream over its own connection, with its
 * own OAuth token, so users never share an upstream session or see each other's data. The
 * client's shared connection (authorized once, like `oauth`) serves only the catalogue.
 *
 * A principal without a token gets `OAUTH_AUTHORIZATION_REQUIRED` carrying the authorization URL
 * (JSON-RPC -32042 with MCP URL-mode `elicitations`); after the callback its next call connects.
 * Connections are bounded per client (least recently used closed first) and closed after
 * `idleMs` without a call (none in flight); the next call of that principal connects again.
 */
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GatewayError } from '../../base/errors.js';
import type { Logger } from '../../log/logger.js';
import type { PrincipalUpstreams, Upstream } from '../upstream.js';
import type { OAuthClient, UpstreamOAuth } from './upstream-oauth.js';

/** Per-principal connections kept per client at most (default). */
export const MAX_CONNECTIONS_PER_CLIENT = 256;
/** The idle sweep runs at most this far apart, ms. */
const MAX_SWEEP_MS = 30_000;

export interface PrincipalUpstreamOptions {
  /** Connections kept at most (default {@link MAX_CONNECTIONS_PER_CLIENT}). */
  readonly max?: number;
  /** A connection without a call for this long is closed, ms; 0 = never (default). */
  readonly idleMs?: number;
  readonly now?: () => number;
}

/**
 * Builds the per-principal connections of `client`. `create(authFetch)` makes an unconnected
 * upstream for the client's config with the given fetch wrapper. With `idleMs`, a timer (not
 * keeping the process alive) closes connections idle that long, every `min(idleMs / 2, 30 s)`.
 */
export function principalUpstreams(
  client: () => OAuthClient,
  oauth: UpstreamOAuth,
  create: (authFetch: (base: FetchLike) => FetchLike) => Upstream,
  log: Logger,
  options: PrincipalUpstreamOptions = {},
): PrincipalUpstreams {
  const max = options.max ?? MAX_CONNECTIONS_PER_CLIENT;
  const idleMs = options.idleMs ?? 0;
  const now = options.now ?? Date.now;
  const open = new Map<string, Promise<Upstream>>();
  /** Last use of each principal's connection, epoch ms. */
  const lastUsed = new Map<string, number>();
  let closed = false;
  let sweeper: NodeJS.Timeout | undefined;
  const drop = async (principal: string, reason: string): Promise<void> => {
    const p = open.get(principal);
    open.delete(principal);
    lastUsed.delete(principal);
    if (open.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
    const u = await p?.catch(() => undefined);
    await u?.close(reason);
    u?.dispose();
  };
  const sweep = (): void => {
    if (open.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
      return;
    }
    const t = now();
    for (const [principal, used] of lastUsed) {
      if (t - used < idleMs) continue;
      const p = open.get(principal);
      // a connection still connecting, or with a call in flight, is not idle
      void p
        ?.then((u) => {
          if (open.get(principal) !== p || u.inflight > 0 || now() - (lastUsed.get(principal) ?? 0) < idleMs) return;
          log.debug('closing an idle per-user connection', { principal, idle_ms: now() - (lastUsed.get(principal) ?? 0) });
          return drop(principal, 'idle');
        })
        .catch(() => undefined);
    }
  };
  const touch = (principal: string): void => {
    lastUsed.set(principal, now());
    if (idleMs > 0 && sweeper === undefined && !closed) {
      sweeper = setInterval(sweep, Math.max(1, Math.min(Math.floor(idleMs / 2), MAX_SWEEP_MS)));
      sweeper.unref();
    }
  };
  return {
    get size() {
      return open.size;
    },
    async get(principal) {
      if (closed) throw new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream ${client().name} was removed`);
      if (principal === 'anonymous') {
        throw new GatewayError('OAUTH_AUTHORIZATION_REQUIRED', `Upstream ${client().name} uses per-user OAuth: call it with your own credential (auth is off)`, { client: client().name });
      }
      const known = open.get(principal);
      if (known) {
        const u = await known;
        if (u.state === 'connected') {
          // most recently used last
          open.delete(principal);
          open.set(principal, known);
          touch(principal);
          return u;
        }
        await drop(principal, 'reconnecting');
      }
      // a principal without a token learns where to authorize, before any connection is tried
      await oauth.accessToken(client(), principal);
      const connecting = (async () => {
        const c = client();
        const u = create((base) => oauth.fetchFor(client, principal, base));
        try {
          await u.connect();
        } catch (err) {
          u.dispose();
          if (err instanceof GatewayError) throw err;
          throw new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream ${c.name} (your connection) is not reachable: ${err instanceof Error ? err.message : String(err)}`, { client: c.name });
        }
        return u;
      })();
      open.set(principal, connecting);
      touch(principal);
      connecting.catch(() => {
        if (open.get(principal) === connecting) {
          open.delete(principal);
          lastUsed.delete(principal);
        }
      });
      while (open.size > max) {
        const oldest = open.keys().next();
        if (oldest.done === true) break;
        void drop(oldest.value, 'too many per-user connections').catch((err: unknown) => log.warn('closing a per-user connection failed', { error: err }));
      }
      return connecting;
    },
    async close(reason) {
      closed = true;
      if (sweeper !== undefined) clearInterval(sweeper);
      sweeper = undefined;
      await Promise.all([...open.keys()].map((p) => drop(p, reason)));
    },
  };
}
