/**
 * A running upstream's answer to the gateway's bearer token (RFC 6750 §3,
 * https://www.rfc-editor.org/rfc/rfc6750#section-3): the `fetch` an upstream HTTP transport uses,
 * which sends the token, refreshes it on a 401 and repeats the request once, and hands a refusal
 * of a fresh token (or a 403 `insufficient_scope`) to the challenge handler; and what such
 * challenges teach later discoveries and registrations (`resource_metadata`, RFC 9728 §5.1;
 * `scope`, RFC 6750 §3.1).
 */
import { extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GatewayError } from '../../base/errors.js';
import type { Logger } from '../../log/logger.js';
import { mergeScopes, type OAuthClient, type TokenSet } from './protocol.js';

/** The parameters of a `WWW-Authenticate` challenge the gateway acts on. */
export interface UpstreamChallenge {
  readonly resourceMetadataUrl?: URL;
  readonly scope?: string;
  readonly error?: string;
}

/** What {@link bearerFetch} needs of the OAuth client (see `UpstreamOAuth`). */
export interface BearerOps {
  /** A valid access token of `principal` (refreshed first near expiry). */
  accessToken(client: OAuthClient, principal: string): Promise<string>;
  /** Replaces the access token `stale` (one refresh in flight per token). */
  refresh(client: OAuthClient, principal: string, stale: string | undefined): Promise<TokenSet>;
  /** Handles a refusal of a fresh token: resolves the error the caller gets. */
  challenged(client: OAuthClient, principal: string, challenge: UpstreamChallenge): Promise<GatewayError>;
}

/** `init` with `Authorization: Bearer <token>` (the other headers kept). */
export function withBearer(init: RequestInit | undefined, token: string): RequestInit {
  const headers = new Headers(init?.headers);
  headers.set('authorization', `Bearer ${token}`);
  return { ...init, headers };
}

/** A 403 whose challenge says the token lacks scope (RFC 6750 §3.1; MCP "scope challenge handling"). */
export function insufficientScope(res: Response): boolean {
  return res.status === 403 && /error="?insufficient_scope/.test(res.headers.get('www-authenticate') ?? '');
}

/**
 * A `fetch` for the upstream's HTTP transport that sends `principal`'s bearer token. On a 401
 * it refreshes the token (once) and repeats the request; when the upstream refuses the fresh
 * token too, or answers 403 `insufficient_scope`, it reads the `WWW-Authenticate` challenge
 * (RFC 6750 §3, RFC 9728 §5.1) and hands it to {@link BearerOps.challenged}.
 * @throws GatewayError OAUTH_AUTHORIZATION_REQUIRED when a person must authorize (again);
 *   OAUTH_ERROR when re-discovery fails.
 */
export function bearerFetch(ops: BearerOps, client: () => OAuthClient, principal: string, base: FetchLike): FetchLike {
  return async (url, init) => {
    const c = client();
    const token = await ops.accessToken(c, principal);
    const res = await base(url, withBearer(init, token));
    if (res.status !== 401 && !insufficientScope(res)) return res;
    const first = extractWWWAuthenticateParams(res);
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 401) {
      let fresh: TokenSet;
      try {
        fresh = await ops.refresh(c, principal, token);
      } catch (err) {
        // the refresh was refused: the upstream may have moved; what the challenge names decides
        if (err instanceof GatewayError && err.code === 'OAUTH_AUTHORIZATION_REQUIRED' && first.resourceMetadataUrl !== undefined) throw await ops.challenged(c, principal, first);
        throw err;
      }
      const again = await base(url, withBearer(init, fresh.access_token));
      if (again.status !== 401 && !insufficientScope(again)) return again;
      const second = extractWWWAuthenticateParams(again);
      await again.body?.cancel().catch(() => undefined);
      throw await ops.challenged(c, principal, { ...first, ...second });
    }
    throw await ops.challenged(c, principal, first);
  };
}

/** What upstreams' challenges named, by client id, for later discoveries and registrations. */
export class ChallengeHints {
  /** `resource_metadata` URLs named by upstreams' 401 answers (RFC 9728 §5.1), by client id. */
  private readonly metadataHints = new Map<string, URL>();
  /** Scopes upstreams asked for in `insufficient_scope` challenges (RFC 6750 §3.1), by client id. */
  private readonly scopeHints = new Map<string, string>();

  /** The `resource_metadata` URL last named by `clientId`'s upstream, if any. */
  metadata(clientId: string): URL | undefined {
    return this.metadataHints.get(clientId);
  }

  /** The scopes `clientId`'s upstream asked for so far, if any. */
  scope(clientId: string): string | undefined {
    return this.scopeHints.get(clientId);
  }

  /**
   * Remembers what `challenge` names. A `resource_metadata` URL on another origin than the
   * upstream's (`serverOrigin`) is ignored and logged. Returns the metadata URL to discover from.
   */
  record(client: OAuthClient, serverOrigin: string, challenge: UpstreamChallenge, log: Logger): URL | undefined {
    let hint = challenge.resourceMetadataUrl;
    // the resource server publishes its own metadata: a URL on another origin is not fetched (an
    // upstream must not steer the gateway's requests elsewhere); the well-known URLs are used instead
    if (hint !== undefined && hint.origin !== serverOrigin) {
      log.warn('upstream challenge names resource metadata on another origin; ignored', { client: client.name, origin: hint.origin });
      hint = undefined;
    }
    if (hint !== undefined) this.metadataHints.set(client.client_id, hint);
    if (challenge.error === 'insufficient_scope' && challenge.scope !== undefined && challenge.scope.length <= 1000) {
      this.scopeHints.set(client.client_id, mergeScopes(this.scopeHints.get(client.client_id), challenge.scope) ?? '');
    }
    return hint;
  }
}
