/**
 * Per-user upstream connections for `auth_type: "per_user_oauth"`: each downstream principal (API
 * key id, JWT or OAuth subject, virtual key) calls the upstream over its own connection, with its
 * own OAuth token, so users never share an upstream session or see each other's data. The
 * client's shared connection (authorized once, like `oauth`) serves only the catalogue.
 *
 * A principal without a token gets `OAUTH_AUTHORIZATION_REQUIRED` carrying the authorization URL
 * (JSON-RPC -32042 with MCP URL-mode `elicitations`); after the callback its next call connects.
 * Connections are bounded per client (least recently used closed first).
 */
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GatewayError } from '../../base/errors.js';
import type { Logger } from '../../log/logger.js';
import type { PrincipalUpstreams, Upstream } from '../upstream.js';
import type { OAuthClient, UpstreamOAuth } from './upstream-oauth.js';

/** Per-principal connections kept per client at most (default). */
export const MAX_CONNECTIONS_PER_CLIENT = 256;

/**
 * Builds the per-principal connections of `client`. `create(authFetch)` makes an unconnected
 * upstream for the client's config with the given fetch wrapper.
 */
export function principalUpstreams(
  client: () => OAuthClient,
  oauth: UpstreamOAuth,
  create: (authFetch: (base: FetchLike) => FetchLike) => Upstream,
  log: Logger,
  max = MAX_CONNECTIONS_PER_CLIENT,
): PrincipalUpstreams {
  const open = new Map<string, Promise<Upstream>>();
  let closed = false;
  const drop = async (principal: string, reason: string): Promise<void> => {
    const p = open.get(principal);
    open.delete(principal);
    const u = await p?.catch(() => undefined);
    await u?.close(reason);
    u?.dispose();
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
      connecting.catch(() => {
        if (open.get(principal) === connecting) open.delete(principal);
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
      await Promise.all([...open.keys()].map((p) => drop(p, reason)));
    },
  };
}
