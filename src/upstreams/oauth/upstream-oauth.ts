/**
 * The gateway as an OAuth 2.1 client of upstream MCP servers (MCP authorization,
 * https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization), for clients with
 * `auth_type: "oauth"` (one authorization for the client) and `"per_user_oauth"` (one per
 * downstream principal).
 *
 * - Discovery: the upstream's Protected Resource Metadata (RFC 9728) names the authorization
 *   server, whose metadata comes from RFC 8414 / OIDC discovery; `oauth_config.authorization_server`
 *   overrides it for upstreams that publish none. The SDK's helpers do the protocol work
 *   (`discoverOAuthServerInfo`, `registerClient`, `startAuthorization`, `exchangeAuthorization`,
 *   `refreshAuthorization`).
 * - Registration: a configured `client_id` (and secret), else dynamic registration (RFC 7591).
 * - Grants: authorization code with PKCE S256 and the `resource` parameter (RFC 8707), or client
 *   credentials (RFC 6749 §4.4) for machine-to-machine upstreams.
 * - Tokens: sealed with AES-256-GCM at rest (bound to their record key), decrypted copies in
 *   memory only; refreshed `refresh_skew_s` before expiry and on a 401, one refresh in flight per
 *   token; revoked (RFC 7009) when the client is deleted. No token, secret or code is ever logged
 *   or returned: the management API sees a status only.
 *
 * - Flows: an authorization started and not completed is stored sealed for `flow_ttl_s` (a
 *   restart between start and callback keeps it). A per-user flow completes only in the browser
 *   of the principal it was started for (signed in to the gateway; see {@link UpstreamOAuth.verifyStart}).
 * - A running upstream's 401 (RFC 6750 §3, https://www.rfc-editor.org/rfc/rfc6750#section-3):
 *   the token is refreshed and the request repeated once; when a fresh token is refused too, the
 *   `WWW-Authenticate` `resource_metadata` (RFC 9728 §5.1) is read and discovery runs again (the
 *   upstream may have moved to another authorization server or asked for other scopes), and the
 *   caller gets `OAUTH_AUTHORIZATION_REQUIRED` with the gateway's own authorization URL.
 *
 * This file holds {@link UpstreamOAuth} (flows, grants, refresh, re-discovery after a challenge,
 * revocation) and is the entry other modules import. Discovery and registration live in
 * `discovery.ts`, the flow store in `flow-store.ts`, the token store in `token-store.ts`, the
 * client credentials and revocation requests in `token-endpoint.ts`, the bearer `fetch` and
 * challenge hints in `challenge.ts`, shapes and protocol helpers in `protocol.ts`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { exchangeAuthorization, refreshAuthorization, startAuthorization } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GatewayError } from '../../base/errors.js';
import type { UpstreamOAuthSettings } from '../../config/oauth.js';
import type { Logger } from '../../log/logger.js';
import type { OAuthGrantRepository } from '../../store/oauth-grants.js';
import type { OAuthFlowRepository } from '../../store/oauth-flows.js';
import { bearerFetch, ChallengeHints, type UpstreamChallenge } from './challenge.js';
import { discoverAndRegister, rediscoverServer } from './discovery.js';
import { OAuthFlowStore, bindingMatches, flowKey, sha256, type Flow } from './flow-store.js';
import {
  CLIENT_WIDE,
  clientKey,
  describe,
  mergeScopes,
  timedFetch,
  toTokenSet,
  tokenKey,
  withMetadata,
  type OAuthClient,
  type OAuthStatus,
  type Registration,
  type Sealer,
  type TokenSet,
} from './protocol.js';
import { requestClientCredentials, revocationEndpoint, revokeTokenSet } from './token-endpoint.js';
import { OAuthTokenStore } from './token-store.js';

export { CLIENT_WIDE, type OAuthClient, type OAuthStatus, type Sealer } from './protocol.js';
export { flowCookieName } from './flow-store.js';

export interface UpstreamOAuthDeps {
  readonly repo: OAuthGrantRepository;
  /** Flows in progress, so a restart between start and callback keeps them. */
  readonly flowRepo: OAuthFlowRepository;
  readonly box: Sealer;
  readonly settings: UpstreamOAuthSettings;
  readonly log: Logger;
  /** The gateway's base URL (`oauth.public_url`, else the bound address); read when a flow starts. */
  readonly baseUrl: () => string;
  readonly now?: () => number;
}

export class UpstreamOAuth {
  private readonly now: () => number;
  private readonly tokens: OAuthTokenStore;
  private readonly refreshing = new Map<string, Promise<TokenSet>>();
  private readonly registrations = new Map<string, Promise<Registration>>();
  /** What upstreams' 401/403 challenges named (RFC 9728 §5.1, RFC 6750 §3.1). */
  private readonly hints = new ChallengeHints();
  /** Re-discoveries in flight, by client id (one at a time). */
  private readonly rediscovering = new Map<string, Promise<void>>();
  private readonly flows: OAuthFlowStore;
  /** Called after an authorization completed (the client should connect). */
  onAuthorized: (clientId: string, principal: string, id: string) => void = () => undefined;

  constructor(private readonly deps: UpstreamOAuthDeps) {
    this.now = deps.now ?? Date.now;
    this.tokens = new OAuthTokenStore(deps.repo, deps.box, deps.log, this.now);
    this.flows = new OAuthFlowStore(deps.flowRepo, deps.box, this.now);
  }

  /** The redirect URI registered with authorization servers: `<base>/api/oauth/callback`. */
  get redirectUri(): string {
    return `${this.deps.settings.public_url ?? this.deps.baseUrl()}/api/oauth/callback`;
  }

  /** Loads the non-secret facts of every stored token (for {@link status}); call once at start. */
  async init(): Promise<void> {
    await this.flows.init();
    await this.tokens.init();
  }

  /**
   * The status of an authorization: `authorized` (a token that is valid or can be refreshed),
   * `expired` (expired and not refreshable), `needs_authorization` (none).
   */
  status(clientId: string, principal = CLIENT_WIDE): OAuthStatus {
    const f = this.tokens.fact(tokenKey(clientId, principal));
    if (!f) return 'needs_authorization';
    if (f.refreshable || f.expiresAt === undefined || f.expiresAt > this.now()) return 'authorized';
    return 'expired';
  }

  /** How many principals (the client-wide authorization not counted) hold an authorization of `clientId`. */
  authorizedPrincipals(clientId: string): number {
    const prefix = tokenKey(clientId, '');
    let n = 0;
    for (const k of this.tokens.keys()) if (k.startsWith(prefix) && k !== tokenKey(clientId, CLIENT_WIDE)) n++;
    return n;
  }

  /** The `oauth_config_id` of the client-wide authorization, once there is one. */
  configId(clientId: string): string | undefined {
    return this.tokens.fact(tokenKey(clientId, CLIENT_WIDE))?.id;
  }

  /**
   * Discovers the authorization server and registers the gateway with it (or takes the configured
   * client id), and stores the result sealed. Idempotent: a stored registration is reused.
   * @param clientSecret the `oauth_config.client_secret` given at creation (sealed, never stored in clear).
   * @throws GatewayError OAUTH_ERROR naming the step that failed (discovery, registration).
   */
  async prepare(client: OAuthClient, clientSecret?: string): Promise<void> {
    await this.registration(client, clientSecret);
  }

  private registration(client: OAuthClient, clientSecret?: string): Promise<Registration> {
    let r = this.registrations.get(client.client_id);
    if (!r) {
      r = this.loadOrRegister(client, clientSecret);
      this.registrations.set(client.client_id, r);
      r.catch(() => this.registrations.delete(client.client_id));
    }
    return r;
  }

  private async loadOrRegister(client: OAuthClient, clientSecret: string | undefined): Promise<Registration> {
    const key = clientKey(client.client_id);
    const stored = await this.deps.repo.get(key);
    if (stored) return JSON.parse(this.deps.box.open(stored.sealed, key)) as Registration;
    const reg = await discoverAndRegister(client, clientSecret, {
      metadataHint: () => this.hints.metadata(client.client_id),
      scopeHint: () => this.hints.scope(client.client_id),
      redirectUri: () => this.redirectUri,
    });
    await this.deps.repo.put(key, { sealed: this.deps.box.seal(JSON.stringify(reg), key), id: randomUUID(), updated_at: this.now() });
    this.deps.log.info('OAuth client registration stored', { client: client.name, authorization_server: reg.authorization_server, dynamic: client.oauth_config?.client_id === undefined, grant_type: reg.grant_type });
    return reg;
  }

  /**
   * Starts an authorization for `principal`: with client credentials, fetches a token at once
   * (`{status: "authorized"}`); with the code grant, returns the URL a person opens
   * (`{status: "needs_authorization", authorization_url}`), valid for `flow_ttl_s`. The flow is
   * stored (sealed) so a restart before the callback keeps it.
   *
   * A client-wide flow's URL is the authorization server's (an administrator asked for it through
   * the management API). A per-user flow's URL is the gateway's `/api/oauth/start?flow=…`: the
   * browser that opens it must be signed in to the gateway as that same principal before it is
   * sent on to the authorization server, and only that browser can complete the callback (see
   * {@link verifyStart}), so a user who forwards the link hands nobody their upstream access
   * (MCP security best practices, https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices,
   * and URL-mode elicitation, https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation).
   * @throws GatewayError OAUTH_ERROR when discovery, registration or the token request fails.
   */
  async begin(client: OAuthClient, principal = CLIENT_WIDE): Promise<{ readonly status: 'authorized' } | { readonly status: 'needs_authorization'; readonly authorization_url: string }> {
    const reg = await this.registration(client);
    if (reg.grant_type === 'client_credentials') {
      await this.clientCredentials(client, reg, principal);
      this.onAuthorized(client.client_id, principal, this.tokens.fact(tokenKey(client.client_id, principal))?.id ?? '');
      return { status: 'authorized' };
    }
    const state = randomBytes(32).toString('base64url');
    const redirectUri = this.redirectUri;
    const { authorizationUrl, codeVerifier } = await startAuthorization(reg.authorization_server, {
      ...withMetadata(reg),
      clientInformation: reg.client_information,
      redirectUrl: redirectUri,
      state,
      resource: reg.resource,
      ...(reg.scope !== undefined ? { scope: reg.scope } : {}),
    });
    await this.flows.sweep();
    const flow: Flow = { clientId: client.client_id, principal, verifier: codeVerifier, redirectUri, expiresAt: this.now() + this.deps.settings.flow_ttl_s * 1000, authorizationUrl: authorizationUrl.href };
    await this.flows.put(state, flow);
    if (principal === CLIENT_WIDE) return { status: 'needs_authorization', authorization_url: authorizationUrl.href };
    return { status: 'needs_authorization', authorization_url: `${this.publicBase}/api/oauth/start?flow=${state}` };
  }

  /** The gateway's public base URL (`oauth.public_url`, else the bound address). */
  get publicBase(): string {
    return this.deps.settings.public_url ?? this.deps.baseUrl();
  }

  /**
   * `GET /api/oauth/start?flow=<state>`: checks that the browser opening a per-user authorization
   * link is signed in to the gateway as the principal the flow was started for, then binds the
   * flow to that browser. Resolves with the authorization server URL to redirect to and, for a
   * per-user flow, the binding secret to set as a cookie (see {@link flowCookieName}); the
   * callback then requires it.
   * @param browserPrincipal the principal id of the browser's dashboard session (`undefined`: not signed in).
   * @throws GatewayError VALIDATION_ERROR (unknown or expired flow), UNAUTHORIZED (the browser is
   *   not signed in), FORBIDDEN (signed in as another principal).
   */
  async verifyStart(state: string, browserPrincipal: string | undefined): Promise<{ readonly location: string; readonly binding: string | undefined; readonly ttlS: number }> {
    const flow = await this.flows.get(state);
    if (!flow) throw new GatewayError('VALIDATION_ERROR', 'Unknown or expired authorization link; call the tool again for a new one', { problems: ['flow: unknown or expired'] });
    const ttlS = Math.max(1, Math.ceil((flow.expiresAt - this.now()) / 1000));
    if (flow.principal === CLIENT_WIDE) return { location: flow.authorizationUrl, binding: undefined, ttlS };
    if (browserPrincipal === undefined) {
      throw new GatewayError('UNAUTHORIZED', `Sign in to the Tributary dashboard (${this.publicBase}/ui/) with the credential your MCP client uses, then open this link again`, { reason: 'not_signed_in', sign_in: `${this.publicBase}/ui/` });
    }
    if (browserPrincipal !== flow.principal) {
      this.deps.log.warn('OAuth authorization link opened by another gateway user; refused', { client_id: flow.clientId, principal: flow.principal, browser_principal: browserPrincipal });
      throw new GatewayError('FORBIDDEN', 'This authorization link was made for another gateway user; it can only be completed by the user whose call asked for it', { reason: 'other_user' });
    }
    const binding = randomBytes(32).toString('base64url');
    await this.flows.put(state, { ...flow, binding: sha256(binding) });
    return { location: flow.authorizationUrl, binding, ttlS };
  }

  /**
   * Completes the flow named by `state`: exchanges `code` (with the PKCE verifier and `resource`)
   * for tokens and stores them sealed; then {@link onAuthorized}. The flow is used up whatever
   * the outcome.
   * @param lookup finds the client of the flow (it may have been deleted meanwhile).
   * @param binding the flow's binding cookie sent by the browser (see {@link verifyStart}); a
   *   per-user flow completes only with it.
   * @throws GatewayError VALIDATION_ERROR (unknown or expired state), FORBIDDEN (a per-user flow
   *   called back in a browser that was not verified), OAUTH_ERROR (the server sent an error, or
   *   refused the code).
   */
  async complete(
    state: string,
    code: string | undefined,
    error: string | undefined,
    lookup: (clientId: string) => OAuthClient | undefined,
    binding?: string,
  ): Promise<{ readonly client: string; readonly status: OAuthStatus; readonly principal: string }> {
    const flow = await this.flows.get(state);
    await this.flows.delete([flowKey(state)]);
    if (!flow) throw new GatewayError('VALIDATION_ERROR', 'Unknown or expired authorization (state); start it again', { problems: ['state: unknown or expired'] });
    if (flow.principal !== CLIENT_WIDE && !bindingMatches(flow.binding, binding)) {
      this.deps.log.warn('OAuth callback of a per-user authorization in a browser that did not start it; refused', { client_id: flow.clientId, principal: flow.principal });
      throw new GatewayError('FORBIDDEN', 'This authorization was not started in this browser by the user it belongs to; the user must open the link from their own MCP client', { reason: 'browser_not_bound' });
    }
    const client = lookup(flow.clientId);
    if (!client) throw new GatewayError('CLIENT_NOT_FOUND', 'The MCP client of this authorization no longer exists', { client_id: flow.clientId });
    if (error !== undefined || code === undefined) {
      throw new GatewayError('OAUTH_ERROR', `The authorization server refused the authorization of ${client.name}: ${(error ?? 'no code').slice(0, 100)}`, { client: client.name, step: 'authorization', error: (error ?? '').slice(0, 100) });
    }
    const reg = await this.registration(client);
    let tokens: OAuthTokens;
    try {
      tokens = await exchangeAuthorization(reg.authorization_server, {
        ...withMetadata(reg),
        clientInformation: reg.client_information,
        authorizationCode: code,
        codeVerifier: flow.verifier,
        redirectUri: flow.redirectUri,
        resource: reg.resource,
        fetchFn: timedFetch,
      });
    } catch (err) {
      throw new GatewayError('OAUTH_ERROR', `Token request for ${client.name} failed: ${describe(err)}`, { client: client.name, step: 'token' });
    }
    const id = await this.save(client, flow.principal, tokens, undefined);
    this.deps.log.info('OAuth authorization completed', { client: client.name, principal: flow.principal });
    this.onAuthorized(client.client_id, flow.principal, id);
    return { client: client.name, status: 'authorized', principal: flow.principal };
  }

  private async clientCredentials(client: OAuthClient, reg: Registration, principal: string): Promise<TokenSet> {
    const tokens = await requestClientCredentials(client, reg);
    const key = tokenKey(client.client_id, principal);
    await this.save(client, principal, tokens, undefined);
    return this.tokens.cached(key) ?? toTokenSet(tokens, undefined, this.now());
  }

  private save(client: OAuthClient, principal: string, tokens: OAuthTokens, previousRefresh: string | undefined): Promise<string> {
    return this.tokens.save(tokenKey(client.client_id, principal), toTokenSet(tokens, previousRefresh, this.now()), this.isClientCredentials(client));
  }

  private isClientCredentials(client: OAuthClient): boolean {
    return client.oauth_config?.grant_type === 'client_credentials';
  }

  /** The error a call gets when `principal` has no usable authorization of `client`. */
  async authorizationRequired(client: OAuthClient, principal: string): Promise<GatewayError> {
    if (principal === CLIENT_WIDE) {
      return new GatewayError('OAUTH_AUTHORIZATION_REQUIRED', `Upstream ${client.name} needs an OAuth authorization by an administrator (POST /api/mcp/client/${client.client_id}/oauth/authorize)`, {
        client: client.name,
        status: this.status(client.client_id),
      });
    }
    let url: string | undefined;
    try {
      const b = await this.begin(client, principal);
      if (b.status === 'authorized') return new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream ${client.name} was authorized just now; retry`, { client: client.name });
      url = b.authorization_url;
    } catch (err) {
      return err instanceof GatewayError ? err : new GatewayError('OAUTH_ERROR', describe(err), { client: client.name });
    }
    const message = `Upstream ${client.name} needs your OAuth authorization: open the URL in a browser signed in to this gateway as yourself, then retry`;
    // MCP URL-mode elicitation (2025-11-25): URLElicitationRequiredError carries the URL to open
    return new GatewayError('OAUTH_AUTHORIZATION_REQUIRED', message, {
      client: client.name,
      authorization_url: url,
      elicitations: [{ mode: 'url', url, message, elicitationId: `oauth-${client.client_id}-${randomBytes(6).toString('hex')}` }],
    });
  }

  /**
   * A valid access token of `principal` for `client`: refreshed first when it expires within
   * `refresh_skew_s`.
   * @throws GatewayError OAUTH_AUTHORIZATION_REQUIRED when there is none (or it cannot be refreshed).
   */
  async accessToken(client: OAuthClient, principal = CLIENT_WIDE): Promise<string> {
    const key = tokenKey(client.client_id, principal);
    const t = await this.tokens.load(key);
    if (!t) {
      if (this.isClientCredentials(client)) return (await this.refresh(client, principal, undefined)).access_token;
      throw await this.authorizationRequired(client, principal);
    }
    if (t.expires_at !== undefined && t.expires_at - this.deps.settings.refresh_skew_s * 1000 <= this.now()) {
      return (await this.refresh(client, principal, t.access_token)).access_token;
    }
    return t.access_token;
  }

  /**
   * Replaces the access token `stale` (one refresh in flight per token; a caller whose token was
   * already replaced gets the new one without another request). Refresh token grant, or a new
   * client-credentials token.
   * @throws GatewayError OAUTH_AUTHORIZATION_REQUIRED when the refresh token is refused (the stored
   *   tokens are dropped: status `needs_authorization`).
   */
  refresh(client: OAuthClient, principal: string, stale: string | undefined): Promise<TokenSet> {
    const key = tokenKey(client.client_id, principal);
    const current = this.tokens.cached(key);
    if (current && stale !== undefined && current.access_token !== stale && !(current.expires_at !== undefined && current.expires_at - this.deps.settings.refresh_skew_s * 1000 <= this.now())) {
      return Promise.resolve(current);
    }
    let p = this.refreshing.get(key);
    if (!p) {
      p = this.doRefresh(client, principal, key).finally(() => this.refreshing.delete(key));
      this.refreshing.set(key, p);
    }
    return p;
  }

  private async doRefresh(client: OAuthClient, principal: string, key: string): Promise<TokenSet> {
    const reg = await this.registration(client);
    if (reg.grant_type === 'client_credentials') return this.clientCredentials(client, reg, principal);
    const t = await this.tokens.load(key);
    if (!t?.refresh_token) {
      await this.tokens.forget(key);
      throw await this.authorizationRequired(client, principal);
    }
    let tokens: OAuthTokens;
    try {
      tokens = await refreshAuthorization(reg.authorization_server, {
        ...withMetadata(reg),
        clientInformation: reg.client_information,
        refreshToken: t.refresh_token,
        resource: reg.resource,
        fetchFn: timedFetch,
      });
    } catch (err) {
      this.deps.log.warn('OAuth refresh refused; the upstream needs authorization again', { client: client.name, principal, error: describe(err) });
      await this.tokens.forget(key);
      throw await this.authorizationRequired(client, principal);
    }
    await this.save(client, principal, tokens, t.refresh_token);
    this.deps.log.info('OAuth access token refreshed', { client: client.name, principal });
    const fresh = this.tokens.cached(key);
    if (!fresh) throw new GatewayError('INTERNAL_ERROR', 'refreshed token not kept');
    return fresh;
  }

  /**
   * A `fetch` for the upstream's HTTP transport that sends `principal`'s bearer token, refreshes
   * it on a 401 and hands a refused fresh token to {@link challenged} (see `bearerFetch`).
   * @throws GatewayError OAUTH_AUTHORIZATION_REQUIRED when a person must authorize (again), with
   *   the gateway's own authorization URL for per-user clients; OAUTH_ERROR when re-discovery fails.
   */
  fetchFor(client: () => OAuthClient, principal: string, base: FetchLike): FetchLike {
    return bearerFetch({ accessToken: (c, p) => this.accessToken(c, p), refresh: (c, p, stale) => this.refresh(c, p, stale), challenged: (c, p, ch) => this.challenged(c, p, ch) }, client, principal, base);
  }

  /**
   * An upstream refused a fresh token (or asked for more scope): re-runs discovery from the
   * challenge's `resource_metadata` (RFC 9728 §5.1; else the well-known URLs). When the upstream
   * now names another authorization server or resource, the client's registration and every token
   * of it are dropped (the next authorization registers anew); a `scope` in an `insufficient_scope`
   * challenge (RFC 6750 §3.1) is added to what later authorizations ask for (a dynamically
   * registered client registers again with it, dropping its tokens like a moved server). The
   * principal's token is dropped either way. Resolves the error the caller gets: OAUTH_AUTHORIZATION_REQUIRED carrying, for a
   * per-user client, the gateway's authorization URL.
   */
  private async challenged(client: OAuthClient, principal: string, challenge: UpstreamChallenge): Promise<GatewayError> {
    const serverOrigin = new URL(client.connection_string ?? '').origin;
    const hint = this.hints.record(client, serverOrigin, challenge, this.deps.log);
    let p = this.rediscovering.get(client.client_id);
    if (!p) {
      p = this.rediscover(client, serverOrigin, hint).finally(() => this.rediscovering.delete(client.client_id));
      this.rediscovering.set(client.client_id, p);
    }
    try {
      await p;
    } catch (err) {
      return err instanceof GatewayError ? err : new GatewayError('OAUTH_ERROR', describe(err), { client: client.name, step: 'discovery' });
    }
    await this.tokens.forget(tokenKey(client.client_id, principal));
    const e = await this.authorizationRequired(client, principal);
    if (e.code !== 'OAUTH_AUTHORIZATION_REQUIRED') return e;
    return new GatewayError(e.code, e.message, { ...e.details, upstream_challenge: { ...(challenge.error !== undefined ? { error: challenge.error.slice(0, 100) } : {}), ...(challenge.scope !== undefined ? { scope: challenge.scope.slice(0, 1000) } : {}) } });
  }

  private async rediscover(client: OAuthClient, serverOrigin: string, hint: URL | undefined): Promise<void> {
    const reg = await this.registration(client);
    const { asUrl, resource } = await rediscoverServer(client, reg, serverOrigin, hint);
    const wantedScope = mergeScopes(reg.scope, this.hints.scope(client.client_id));
    if (asUrl !== reg.authorization_server || resource !== reg.resource) {
      this.deps.log.warn('upstream names another authorization server or resource; its registration and tokens are dropped, it needs authorization again', {
        client: client.name,
        authorization_server: asUrl,
        previous_authorization_server: reg.authorization_server,
        resource,
      });
      await this.dropClient(client);
      return;
    }
    if (wantedScope !== reg.scope && client.oauth_config?.client_id === undefined) {
      // a dynamically registered client may only ask for the scope it registered (RFC 7591 §2):
      // register anew with the wider scope; tokens of the old registration cannot be refreshed by the new one
      this.deps.log.warn('upstream asked for more scope than the gateway registered; it registers again and needs authorization again', { client: client.name, scope: wantedScope });
      await this.dropClient(client);
      return;
    }
    if (wantedScope !== reg.scope) {
      const updated: Registration = { ...reg, ...(wantedScope !== undefined ? { scope: wantedScope } : {}) };
      const key = clientKey(client.client_id);
      const stored = await this.deps.repo.get(key);
      await this.deps.repo.put(key, { sealed: this.deps.box.seal(JSON.stringify(updated), key), id: stored?.id ?? randomUUID(), updated_at: this.now() });
      this.registrations.set(client.client_id, Promise.resolve(updated));
      this.deps.log.info('upstream asked for more scope; later authorizations ask for it', { client: client.name, scope: wantedScope });
    }
  }

  /** Forgets the registration and every token of `client` (not revoked: the server that issued them is no longer the upstream's). */
  private async dropClient(client: OAuthClient): Promise<void> {
    const keys = await this.deps.repo.keys(tokenKey(client.client_id, ''));
    this.tokens.evict(keys);
    this.registrations.delete(client.client_id);
    await this.deps.repo.delete([...keys, clientKey(client.client_id)]);
  }

  /**
   * Revokes every token of `client` at the authorization server (RFC 7009, when it has a
   * revocation endpoint; failures are logged) and deletes its registration and tokens.
   */
  async revokeAll(client: OAuthClient): Promise<void> {
    const keys = await this.deps.repo.keys(tokenKey(client.client_id, ''));
    let reg: Registration | undefined;
    try {
      reg = keys.length > 0 ? await this.registration(client) : undefined;
    } catch {
      reg = undefined;
    }
    const endpoint = reg !== undefined ? revocationEndpoint(reg) : undefined;
    for (const key of keys) {
      const t = await this.tokens.load(key);
      if (!t || !reg || endpoint === undefined) continue;
      await revokeTokenSet(client, reg, endpoint, t, this.deps.log);
    }
    this.tokens.evict(keys);
    this.registrations.delete(client.client_id);
    await this.deps.repo.delete([...keys, clientKey(client.client_id)]);
    if (keys.length > 0) this.deps.log.info('OAuth tokens revoked and deleted', { client: client.name, count: keys.length });
  }
}
