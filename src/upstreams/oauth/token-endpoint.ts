/**
 * Requests to an authorization server's token and revocation endpoints that the MCP SDK has no
 * helper for: the client credentials grant (RFC 6749 §4.4,
 * https://www.rfc-editor.org/rfc/rfc6749#section-4.4) for machine-to-machine upstreams, and token
 * revocation (RFC 7009, https://www.rfc-editor.org/rfc/rfc7009) when a client is deleted. Client
 * authentication per RFC 6749 §2.3.1. No token or secret is logged.
 */
import { selectClientAuthMethod } from '@modelcontextprotocol/sdk/client/auth.js';
import { OAuthTokensSchema, type OAuthClientInformationMixed, type OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { GatewayError } from '../../base/errors.js';
import type { Logger } from '../../log/logger.js';
import { describe, timedFetch, type OAuthClient, type Registration, type TokenSet } from './protocol.js';

/**
 * A client credentials token for `reg` (its `token_endpoint`, else `<authorization server>/token`),
 * with the `resource` (RFC 8707) and the registered scope.
 * @throws GatewayError OAUTH_ERROR (`step: "client_credentials"`) naming the server's `error` code.
 */
export async function requestClientCredentials(client: OAuthClient, reg: Registration): Promise<OAuthTokens> {
  const tokenUrl = reg.metadata?.token_endpoint ?? new URL('/token', reg.authorization_server).href;
  const info = reg.client_information;
  const method = selectClientAuthMethod(info, reg.metadata?.token_endpoint_auth_methods_supported ?? ['client_secret_basic']);
  const params = new URLSearchParams({ grant_type: 'client_credentials', resource: reg.resource });
  if (reg.scope) params.set('scope', reg.scope);
  const headers = new Headers({ 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' });
  applyClientAuth(method, info, headers, params);
  try {
    const res = await timedFetch(tokenUrl, { method: 'POST', headers, body: params });
    const body: unknown = await res.json().catch(() => undefined);
    if (!res.ok) {
      const e = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown; error_description?: unknown };
      throw new Error(`HTTP ${res.status} ${String(e.error ?? '').slice(0, 100)} ${String(e.error_description ?? '').slice(0, 200)}`.trim());
    }
    return OAuthTokensSchema.parse(body);
  } catch (err) {
    throw new GatewayError('OAUTH_ERROR', `Client credentials token request for ${client.name} failed: ${describe(err)}`, { client: client.name, step: 'client_credentials' });
  }
}

/** Where and how `reg`'s authorization server revokes tokens (RFC 8414 `revocation_endpoint`), or undefined when it does not say. */
export interface RevocationEndpoint {
  readonly url: string;
  readonly authMethods: string[] | undefined;
}

/** The revocation endpoint of `reg`'s authorization server metadata, if it names one. */
export function revocationEndpoint(reg: Registration): RevocationEndpoint | undefined {
  const extra = reg.metadata as { revocation_endpoint?: unknown; revocation_endpoint_auth_methods_supported?: unknown } | undefined;
  const url = typeof extra?.revocation_endpoint === 'string' ? extra.revocation_endpoint : undefined;
  const authMethods = Array.isArray(extra?.revocation_endpoint_auth_methods_supported) ? (extra.revocation_endpoint_auth_methods_supported as string[]) : undefined;
  return url === undefined ? undefined : { url, authMethods };
}

/**
 * Revokes the refresh token, then the access token, of `t` (RFC 7009 §2.1, with `token_type_hint`).
 * Never throws: a refusal or a failed request is logged (without the token).
 */
export async function revokeTokenSet(client: OAuthClient, reg: Registration, endpoint: RevocationEndpoint, t: TokenSet, log: Logger): Promise<void> {
  for (const [token, hint] of [
    [t.refresh_token, 'refresh_token'],
    [t.access_token, 'access_token'],
  ] as const) {
    if (token === undefined) continue;
    const params = new URLSearchParams({ token, token_type_hint: hint });
    const headers = new Headers({ 'content-type': 'application/x-www-form-urlencoded' });
    applyClientAuth(selectClientAuthMethod(reg.client_information, endpoint.authMethods ?? reg.metadata?.token_endpoint_auth_methods_supported ?? ['none']), reg.client_information, headers, params);
    try {
      const res = await timedFetch(endpoint.url, { method: 'POST', headers, body: params });
      await res.arrayBuffer();
      if (!res.ok) log.warn('OAuth token revocation refused', { client: client.name, status: res.status });
    } catch (err) {
      log.warn('OAuth token revocation failed', { client: client.name, error: describe(err) });
    }
  }
}

/** Client authentication at the token and revocation endpoints (RFC 6749 §2.3.1). */
function applyClientAuth(method: 'client_secret_basic' | 'client_secret_post' | 'none', info: OAuthClientInformationMixed, headers: Headers, params: URLSearchParams): void {
  const secret = info.client_secret;
  if (method === 'client_secret_basic' && secret !== undefined) {
    headers.set('authorization', `Basic ${Buffer.from(`${encodeURIComponent(info.client_id)}:${encodeURIComponent(secret)}`).toString('base64')}`);
    return;
  }
  params.set('client_id', info.client_id);
  if (method === 'client_secret_post' && secret !== undefined) params.set('client_secret', secret);
}
