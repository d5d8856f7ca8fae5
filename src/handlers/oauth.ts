/**
 * OAuth endpoints:
 *
 * - `GET /.well-known/oauth-protected-resource` and `GET /.well-known/oauth-protected-resource/mcp`:
 *   this gateway's Protected Resource Metadata (RFC 9728 §3, https://www.rfc-editor.org/rfc/rfc9728),
 *   when `auth.oauth` is configured; 404 otherwise.
 * - `GET /api/oauth/callback?code&state` (or `?error&state`): where an upstream's authorization
 *   server sends the browser back after a person authorized the gateway (RFC 6749 §4.1.2,
 *   https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2). The `state` names the flow; the code is
 *   exchanged with its PKCE verifier, and the upstream client connects.
 */
import { GatewayError } from '../base/errors.js';
import type { OAuthResourceServer } from '../auth/oauth-resource.js';
import { ok, type RestReply, type RestRouter } from './rest/router.js';

/** What completes an authorization started for an upstream (see `upstreams/oauth/`). */
export interface OAuthCallbackTarget {
  /**
   * Completes the flow named by `state` with `code`, or records `error` from the authorization
   * server. Resolves the client's name and status.
   * @throws GatewayError VALIDATION_ERROR (unknown or expired state), UNAUTHORIZED (the token
   *   exchange was refused).
   */
  complete(state: string, code: string | undefined, error: string | undefined): Promise<{ readonly client: string; readonly status: string }>;
}

/** Registers the metadata routes and the callback. */
export function registerOAuthRoutes(rest: RestRouter, resource: OAuthResourceServer | undefined, callback: OAuthCallbackTarget | undefined): void {
  const metadata = (): RestReply => {
    if (!resource) throw new GatewayError('NOT_FOUND', 'This gateway is not an OAuth protected resource (auth.oauth is not configured)');
    return { status: 200, body: resource.metadata(), headers: [['Content-Type', 'application/json'], ['Cache-Control', 'max-age=3600'], ['Access-Control-Allow-Origin', '*']] };
  };
  const doc = {
    summary: 'OAuth 2.0 Protected Resource Metadata (RFC 9728)',
    tag: 'oauth',
    access: 'open' as const,
    responses: { 200: { description: '`{resource, authorization_servers, scopes_supported, bearer_methods_supported}`', schema: { type: 'object', required: ['resource', 'authorization_servers'] } }, 404: { description: 'auth.oauth not configured' } },
  };
  rest
    .on('GET', '/.well-known/oauth-protected-resource', metadata, doc)
    .on('GET', '/.well-known/oauth-protected-resource/mcp', metadata, doc)
    .on(
      'GET',
      '/api/oauth/callback',
      async (req) => {
        if (!callback) throw new GatewayError('NOT_CONFIGURED', 'Upstream OAuth is not available');
        const state = req.query.get('state') ?? '';
        const code = req.query.get('code') ?? undefined;
        const error = req.query.get('error') ?? undefined;
        if (state === '' || (code === undefined && error === undefined)) {
          throw new GatewayError('VALIDATION_ERROR', 'The callback needs state and code (or error)', { problems: ['state: required', 'code: required unless error is present'] });
        }
        const r = await callback.complete(state, code, error);
        return ok({ status: r.status, client: r.client, message: r.status === 'authorized' ? `Authorized: the gateway now connects to ${r.client}. You can close this window.` : `Authorization of ${r.client} did not complete` });
      },
      {
        summary: 'OAuth authorization callback of upstream MCP clients',
        tag: 'oauth',
        access: 'open',
        query: { state: { description: 'The flow id the gateway sent', required: true }, code: { description: 'Authorization code' }, error: { description: 'Error from the authorization server' } },
        responses: { 200: { description: '`{status, client, message}`' }, 400: { description: 'Unknown or expired state' } },
      },
    );
}
