/**
 * OAuth endpoints:
 *
 * - `GET /.well-known/oauth-protected-resource` and `GET /.well-known/oauth-protected-resource/mcp`:
 *   this gateway's Protected Resource Metadata (RFC 9728 §3, https://www.rfc-editor.org/rfc/rfc9728),
 *   when `auth.oauth` is configured; 404 otherwise.
 * - `GET /api/oauth/callback?code&state` (or `?error&state`): where an upstream's authorization
 *   server sends the browser back after a person authorized the gateway (RFC 6749 §4.1.2,
 *   https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2). The `state` names the flow; the code is
 *   exchanged with its PKCE verifier, and the upstream client connects. A per-user flow completes
 *   only with the cookie `/api/oauth/start` set.
 * - `GET /api/oauth/start?flow=…`: the link a `per_user_oauth` user is given. The browser must be
 *   signed in to the dashboard as the principal the flow was started for; it then gets a cookie
 *   binding the flow to it (`HttpOnly; SameSite=Lax; Path=/api/oauth/callback`) and a redirect to
 *   the authorization server. A forwarded link is refused in anybody else's browser (MCP security
 *   best practices: https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices).
 */
import { GatewayError } from '../base/errors.js';
import type { OAuthResourceServer } from '../auth/oauth-resource.js';
import { cookieValue } from '../auth/ui-session.js';
import { flowCookieName } from '../upstreams/oauth/upstream-oauth.js';
import { type RestReply, type RestRouter } from './rest/router.js';

/** What completes an authorization started for an upstream (see `upstreams/oauth/`). */
export interface OAuthCallbackTarget {
  /**
   * Checks the browser opening a per-user authorization link (`state`) is signed in as the
   * principal the flow belongs to (`browserPrincipal`: its dashboard session's principal id).
   * Resolves the authorization server URL and the binding secret for the flow's cookie.
   * @throws GatewayError VALIDATION_ERROR (unknown flow), UNAUTHORIZED (not signed in), FORBIDDEN (another user).
   */
  verifyStart(state: string, browserPrincipal: string | undefined): Promise<{ readonly location: string; readonly binding: string | undefined; readonly ttlS: number }>;
  /**
   * Completes the flow named by `state` with `code`, or records `error` from the authorization
   * server; `binding` is the flow's cookie from the browser. Resolves the client's name and status.
   * @throws GatewayError VALIDATION_ERROR (unknown or expired state), FORBIDDEN (a per-user flow
   *   called back in a browser that was not verified), OAUTH_ERROR (the token exchange was refused).
   */
  complete(state: string, code: string | undefined, error: string | undefined, binding: string | undefined): Promise<{ readonly client: string; readonly status: string }>;
  /** The principal id of the browser's dashboard session, from its `Cookie` header (`undefined`: none). */
  browserPrincipal(cookieHeader: string | undefined): string | undefined;
  /** Whether the gateway is served over HTTPS (cookies get `Secure`). */
  readonly secure: boolean;
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
      '/api/oauth/start',
      async (req) => {
        if (!callback) throw new GatewayError('NOT_CONFIGURED', 'Upstream OAuth is not available');
        const state = req.query.get('flow') ?? '';
        if (state === '') throw new GatewayError('VALIDATION_ERROR', 'The link needs its flow', { problems: ['flow: required'] });
        const r = await callback.verifyStart(state, callback.browserPrincipal(req.input.headers.cookie));
        const headers: [string, string][] = [
          ['Location', r.location],
          ['Content-Type', 'application/json'],
          ['Cache-Control', 'no-store'],
        ];
        // Lax: the authorization server's redirect back to the callback is a cross-site top-level GET
        if (r.binding !== undefined) headers.push(['Set-Cookie', `${flowCookieName(state)}=${r.binding}; Path=/api/oauth/callback; Max-Age=${r.ttlS}; HttpOnly; SameSite=Lax${callback.secure ? '; Secure' : ''}`]);
        return { status: 302, body: { status: 'redirect', location: r.location }, headers };
      },
      {
        summary: 'Opens a per-user OAuth authorization link: checks the browser is signed in as its user, then redirects to the authorization server',
        tag: 'oauth',
        access: 'open',
        // the dashboard session (start) and the flow's binding cookie (callback)
        headers: ['cookie'],
        query: { flow: { description: 'The flow id from the authorization URL', required: true } },
        responses: {
          302: { description: 'To the authorization server; `Set-Cookie` binds the flow to this browser' },
          400: { description: 'Unknown or expired flow' },
          401: { description: 'The browser is not signed in to the gateway (sign in at the dashboard first)' },
          403: { description: 'The browser is signed in as another user than the one the link was made for' },
        },
      },
    )
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
        const name = flowCookieName(state);
        const binding = cookieValue(req.input.headers.cookie, name);
        const r = await callback.complete(state, code, error, binding === '' ? undefined : binding);
        const message = r.status === 'authorized' ? `Authorized: the gateway now connects to ${r.client}. You can close this window.` : `Authorization of ${r.client} did not complete`;
        return {
          status: 200,
          body: { status: r.status, client: r.client, message },
          headers: [
            ['Content-Type', 'application/json'],
            ['Cache-Control', 'no-store'],
            ['Set-Cookie', `${name}=; Path=/api/oauth/callback; Max-Age=0; HttpOnly; SameSite=Lax${callback.secure ? '; Secure' : ''}`],
          ],
        };
      },
      {
        summary: 'OAuth authorization callback of upstream MCP clients',
        tag: 'oauth',
        access: 'open',
        // the dashboard session (start) and the flow's binding cookie (callback)
        headers: ['cookie'],
        query: { state: { description: 'The flow id the gateway sent', required: true }, code: { description: 'Authorization code' }, error: { description: 'Error from the authorization server' } },
        responses: {
          200: { description: '`{status, client, message}`' },
          400: { description: 'Unknown or expired state' },
          403: { description: 'A per-user authorization called back in a browser that did not open its link signed in as its user' },
        },
      },
    );
}
