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
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthServerInfo,
  exchangeAuthorization,
  extractWWWAuthenticateParams,
  refreshAuthorization,
  registerClient,
  selectClientAuthMethod,
  startAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { OAuthTokensSchema, type AuthorizationServerMetadata, type OAuthClientInformationMixed, type OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GatewayError } from '../../base/errors.js';
import type { McpClientConfig } from '../../config/schema.js';
import type { UpstreamOAuthSettings } from '../../config/oauth.js';
import type { Logger } from '../../log/logger.js';
import type { OAuthGrantRepository } from '../../store/oauth-grants.js';
import type { OAuthFlowRepository } from '../../store/oauth-flows.js';

/** The principal of a client-wide (`auth_type: "oauth"`) authorization. */
export const CLIENT_WIDE = '*';
/** Requests to authorization servers give up after this long, ms. */
const AS_TIMEOUT_MS = 10_000;
/** Flows remembered at most (oldest dropped first). */
const MAX_FLOWS = 1000;

/** What the management API shows of an authorization. */
export type OAuthStatus = 'authorized' | 'expired' | 'needs_authorization';

/** A client configuration with its id (as the management API stores it). */
export type OAuthClient = McpClientConfig & { readonly client_id: string };

interface TokenSet {
  readonly access_token: string;
  readonly token_type: string;
  readonly refresh_token?: string;
  readonly scope?: string;
  /** Epoch ms; absent when the server did not say. */
  readonly expires_at?: number;
}

interface Registration {
  readonly client_information: OAuthClientInformationMixed;
  readonly authorization_server: string;
  readonly metadata: AuthorizationServerMetadata | undefined;
  /** The RFC 8707 resource indicator of the upstream. */
  readonly resource: string;
  readonly scope: string | undefined;
  readonly grant_type: 'authorization_code' | 'client_credentials';
}

/** An authorization started and not yet called back (sealed in the flow store, keyed by the SHA-256 of its `state`). */
interface Flow {
  readonly clientId: string;
  readonly principal: string;
  readonly verifier: string;
  readonly redirectUri: string;
  /** Epoch ms. */
  readonly expiresAt: number;
  /** The authorization server's URL for this flow (per-user flows: given only to the verified user's browser). */
  readonly authorizationUrl: string;
  /** SHA-256 (base64url) of the binding cookie given to the browser of the verified user (per-user flows). */
  readonly binding?: string;
}

/** Non-secret facts about a stored token, kept in memory for the status. */
interface TokenFacts {
  readonly expiresAt: number | undefined;
  readonly refreshable: boolean;
  readonly id: string;
}

/** Authenticated encryption of stored values, bound to `aad` (AES-256-GCM: `providers/secret-box.ts`). */
export interface Sealer {
  seal(plaintext: string, aad: string): string;
  /** @throws when the value does not open (wrong key, altered, or bound to another `aad`). */
  open(sealed: string, aad: string): string;
}

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

function tokenKey(clientId: string, principal: string): string {
  return `token:${clientId}:${principal}`;
}

function clientKey(clientId: string): string {
  return `client:${clientId}`;
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** The flow store key of `state`: its SHA-256 (the store never holds a usable state). */
function flowKey(state: string): string {
  return createHash('sha256').update(state).digest('hex');
}

/**
 * The name of the cookie binding a per-user flow to the browser of its verified user
 * (`tributary_oauth_` + 16 hex of the state's SHA-256): one per flow, so two authorizations in
 * progress in one browser do not overwrite each other.
 */
export function flowCookieName(state: string): string {
  return `tributary_oauth_${flowKey(state).slice(0, 16)}`;
}

/** Whether the cookie value `sent` is the binding whose SHA-256 is `expected` (constant time). */
function bindingMatches(expected: string | undefined, sent: string | undefined): boolean {
  if (expected === undefined || sent === undefined || sent === '' || sent.length > 100) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(sha256(sent));
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `init` with `Authorization: Bearer <token>` (the other headers kept). */
function withBearer(init: RequestInit | undefined, token: string): RequestInit {
  const headers = new Headers(init?.headers);
  headers.set('authorization', `Bearer ${token}`);
  return { ...init, headers };
}

const timedFetch: FetchLike = (url, init) => fetch(url, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(AS_TIMEOUT_MS)]) : AbortSignal.timeout(AS_TIMEOUT_MS) });

/** Why an OAuth step failed, without secrets: the SDK's OAuth errors carry the server's `error` code. */
function describe(err: unknown): string {
  if (err instanceof Error) return err.message.slice(0, 300);
  return 'unknown error';
}

export class UpstreamOAuth {
  private readonly now: () => number;
  private readonly tokens = new Map<string, TokenSet>();
  private readonly facts = new Map<string, TokenFacts>();
  private readonly refreshing = new Map<string, Promise<TokenSet>>();
  private readonly registrations = new Map<string, Promise<Registration>>();
  /** `resource_metadata` URLs named by upstreams' 401 answers (RFC 9728 §5.1), by client id. */
  private readonly metadataHints = new Map<string, URL>();
  /** Scopes upstreams asked for in `insufficient_scope` challenges (RFC 6750 §3.1), by client id. */
  private readonly scopeHints = new Map<string, string>();
  /** Re-discoveries in flight, by client id (one at a time). */
  private readonly rediscovering = new Map<string, Promise<void>>();
  /** Expiry (epoch ms) of every stored flow, by the SHA-256 of its state: bounds and sweeps the flow store. */
  private readonly flowExpiry = new Map<string, number>();
  /** Called after an authorization completed (the client should connect). */
  onAuthorized: (clientId: string, principal: string, id: string) => void = () => undefined;

  constructor(private readonly deps: UpstreamOAuthDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The redirect URI registered with authorization servers: `<base>/api/oauth/callback`. */
  get redirectUri(): string {
    return `${this.deps.settings.public_url ?? this.deps.baseUrl()}/api/oauth/callback`;
  }

  /** Loads the non-secret facts of every stored token (for {@link status}); call once at start. */
  async init(): Promise<void> {
    const expired: string[] = [];
    for (const [k, exp] of await this.deps.flowRepo.expiries()) {
      if (exp <= this.now()) expired.push(k);
      else this.flowExpiry.set(k, exp);
    }
    await this.deps.flowRepo.delete(expired);
    for (const key of await this.deps.repo.keys('token:')) {
      const r = await this.deps.repo.get(key);
      if (!r) continue;
      const t = this.openTokens(key, r.sealed);
      if (t) this.facts.set(key, { expiresAt: t.expires_at, refreshable: t.refresh_token !== undefined, id: r.id });
    }
  }

  /**
   * The status of an authorization: `authorized` (a token that is valid or can be refreshed),
   * `expired` (expired and not refreshable), `needs_authorization` (none).
   */
  status(clientId: string, principal = CLIENT_WIDE): OAuthStatus {
    const f = this.facts.get(tokenKey(clientId, principal));
    if (!f) return 'needs_authorization';
    if (f.refreshable || f.expiresAt === undefined || f.expiresAt > this.now()) return 'authorized';
    return 'expired';
  }

  /** How many principals (the client-wide authorization not counted) hold an authorization of `clientId`. */
  authorizedPrincipals(clientId: string): number {
    const prefix = tokenKey(clientId, '');
    let n = 0;
    for (const k of this.facts.keys()) if (k.startsWith(prefix) && k !== tokenKey(clientId, CLIENT_WIDE)) n++;
    return n;
  }

  /** The `oauth_config_id` of the client-wide authorization, once there is one. */
  configId(clientId: string): string | undefined {
    return this.facts.get(tokenKey(clientId, CLIENT_WIDE))?.id;
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
    const oc = client.oauth_config ?? {};
    // a config-file client may carry its secret in the file (like `headers`)
    clientSecret ??= oc.client_secret;
    const serverUrl = new URL(client.connection_string ?? '');
    serverUrl.hash = '';
    let asUrl: string;
    let metadata: AuthorizationServerMetadata | undefined;
    let resource = serverUrl.href;
    let scopesSupported: string[] | undefined;
    try {
      if (oc.authorization_server !== undefined) {
        asUrl = oc.authorization_server;
        metadata = await discoverAuthorizationServerMetadata(asUrl, { fetchFn: timedFetch });
      } else {
        // a running upstream's 401 may have named its metadata (RFC 9728 §5.1): that wins over the well-known URLs
        const hint = this.metadataHints.get(client.client_id);
        const info = await discoverOAuthServerInfo(serverUrl, { fetchFn: timedFetch, ...(hint !== undefined ? { resourceMetadataUrl: hint } : {}) });
        asUrl = info.authorizationServerUrl;
        metadata = info.authorizationServerMetadata;
        if (info.resourceMetadata) {
          const declared = new URL(info.resourceMetadata.resource);
          // RFC 9728 §3.3: the metadata must be about this resource
          if (declared.origin !== serverUrl.origin) throw new Error(`protected resource metadata names another resource (${declared.origin})`);
          resource = info.resourceMetadata.resource;
          scopesSupported = info.resourceMetadata.scopes_supported;
        }
      }
      if (metadata === undefined) throw new Error(`no authorization server metadata (RFC 8414 / OpenID Connect discovery) at ${asUrl}`);
    } catch (err) {
      throw new GatewayError('OAUTH_ERROR', `OAuth discovery for ${client.name} failed: ${describe(err)}`, { client: client.name, step: 'discovery' });
    }
    const grant = oc.grant_type ?? 'authorization_code';
    const scope = mergeScopes(oc.scopes !== undefined ? oc.scopes.join(' ') : scopesSupported?.join(' '), this.scopeHints.get(client.client_id));
    let info: OAuthClientInformationMixed;
    if (oc.client_id !== undefined) {
      info = { client_id: oc.client_id, ...(clientSecret !== undefined ? { client_secret: clientSecret } : {}) };
    } else {
      try {
        info = await registerClient(asUrl, {
          ...(metadata ? { metadata } : {}),
          clientMetadata:
            grant === 'client_credentials'
              ? { client_name: `Tributary (${client.name})`, redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', ...(scope ? { scope } : {}) }
              : { client_name: `Tributary (${client.name})`, redirect_uris: [this.redirectUri], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', ...(scope ? { scope } : {}) },
          fetchFn: timedFetch,
        });
      } catch (err) {
        throw new GatewayError('OAUTH_ERROR', `Dynamic client registration (RFC 7591) with ${asUrl} failed: ${describe(err)}; configure oauth_config.client_id`, { client: client.name, step: 'registration' });
      }
    }
    const reg: Registration = { client_information: info, authorization_server: asUrl, metadata, resource, scope, grant_type: grant };
    await this.deps.repo.put(key, { sealed: this.deps.box.seal(JSON.stringify(reg), key), id: randomUUID(), updated_at: this.now() });
    this.deps.log.info('OAuth client registration stored', { client: client.name, authorization_server: asUrl, dynamic: oc.client_id === undefined, grant_type: grant });
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
      this.onAuthorized(client.client_id, principal, this.facts.get(tokenKey(client.client_id, principal))?.id ?? '');
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
    await this.sweepFlows();
    const flow: Flow = { clientId: client.client_id, principal, verifier: codeVerifier, redirectUri, expiresAt: this.now() + this.deps.settings.flow_ttl_s * 1000, authorizationUrl: authorizationUrl.href };
    await this.putFlow(state, flow);
    if (principal === CLIENT_WIDE) return { status: 'needs_authorization', authorization_url: authorizationUrl.href };
    return { status: 'needs_authorization', authorization_url: `${this.publicBase}/api/oauth/start?flow=${state}` };
  }

  /** The gateway's public base URL (`oauth.public_url`, else the bound address). */
  get publicBase(): string {
    return this.deps.settings.public_url ?? this.deps.baseUrl();
  }

  private async putFlow(state: string, flow: Flow): Promise<void> {
    const key = flowKey(state);
    await this.deps.flowRepo.put(key, { sealed: this.deps.box.seal(JSON.stringify(flow), key), expires_at: flow.expiresAt });
    this.flowExpiry.set(key, flow.expiresAt);
  }

  /** The live flow of `state`, or undefined (unknown, expired, or sealed with another key). */
  private async getFlow(state: string): Promise<Flow | undefined> {
    if (state === '' || state.length > 200) return undefined;
    const key = flowKey(state);
    const r = await this.deps.flowRepo.get(key);
    if (!r || r.expires_at <= this.now()) return undefined;
    try {
      return JSON.parse(this.deps.box.open(r.sealed, key)) as Flow;
    } catch {
      return undefined;
    }
  }

  private async deleteFlows(keys: readonly string[]): Promise<void> {
    for (const k of keys) this.flowExpiry.delete(k);
    await this.deps.flowRepo.delete(keys);
  }

  /** Drops expired flows, then the ones expiring soonest while over {@link MAX_FLOWS}. */
  private async sweepFlows(): Promise<void> {
    const now = this.now();
    const drop: string[] = [];
    for (const [k, exp] of this.flowExpiry) if (exp <= now) drop.push(k);
    const left = this.flowExpiry.size - drop.length;
    if (left >= MAX_FLOWS) {
      const live = [...this.flowExpiry].filter(([, exp]) => exp > now).sort((a, b) => a[1] - b[1]);
      for (const [k] of live.slice(0, left - MAX_FLOWS + 1)) drop.push(k);
    }
    await this.deleteFlows(drop);
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
    const flow = await this.getFlow(state);
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
    await this.putFlow(state, { ...flow, binding: sha256(binding) });
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
    const flow = await this.getFlow(state);
    await this.deleteFlows([flowKey(state)]);
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
    const tokenUrl = reg.metadata?.token_endpoint ?? new URL('/token', reg.authorization_server).href;
    const info = reg.client_information;
    const method = selectClientAuthMethod(info, reg.metadata?.token_endpoint_auth_methods_supported ?? ['client_secret_basic']);
    const params = new URLSearchParams({ grant_type: 'client_credentials', resource: reg.resource });
    if (reg.scope) params.set('scope', reg.scope);
    const headers = new Headers({ 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' });
    applyClientAuth(method, info, headers, params);
    let tokens: OAuthTokens;
    try {
      const res = await timedFetch(tokenUrl, { method: 'POST', headers, body: params });
      const body: unknown = await res.json().catch(() => undefined);
      if (!res.ok) {
        const e = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown; error_description?: unknown };
        throw new Error(`HTTP ${res.status} ${String(e.error ?? '').slice(0, 100)} ${String(e.error_description ?? '').slice(0, 200)}`.trim());
      }
      tokens = OAuthTokensSchema.parse(body);
    } catch (err) {
      throw new GatewayError('OAUTH_ERROR', `Client credentials token request for ${client.name} failed: ${describe(err)}`, { client: client.name, step: 'client_credentials' });
    }
    const key = tokenKey(client.client_id, principal);
    await this.save(client, principal, tokens, undefined);
    return this.tokens.get(key) ?? toTokenSet(tokens, undefined, this.now());
  }

  private async save(client: OAuthClient, principal: string, tokens: OAuthTokens, previousRefresh: string | undefined): Promise<string> {
    const key = tokenKey(client.client_id, principal);
    const set = toTokenSet(tokens, previousRefresh, this.now());
    const id = this.facts.get(key)?.id ?? randomUUID();
    await this.deps.repo.put(key, { sealed: this.deps.box.seal(JSON.stringify(set), key), id, updated_at: this.now(), ...(set.expires_at !== undefined ? { expires_at: set.expires_at } : {}) });
    this.tokens.set(key, set);
    this.facts.set(key, { expiresAt: set.expires_at, refreshable: set.refresh_token !== undefined || this.isClientCredentials(client), id });
    return id;
  }

  private isClientCredentials(client: OAuthClient): boolean {
    return client.oauth_config?.grant_type === 'client_credentials';
  }

  private openTokens(key: string, sealed: string): TokenSet | undefined {
    try {
      return JSON.parse(this.deps.box.open(sealed, key)) as TokenSet;
    } catch (err) {
      this.deps.log.warn('stored OAuth token does not open with the configured key; it needs authorization again', { key: key.slice(0, key.lastIndexOf(':')), error: describe(err) });
      return undefined;
    }
  }

  private async load(key: string): Promise<TokenSet | undefined> {
    const cached = this.tokens.get(key);
    if (cached) return cached;
    const r = await this.deps.repo.get(key);
    const t = r ? this.openTokens(key, r.sealed) : undefined;
    if (t) this.tokens.set(key, t);
    return t;
  }

  private async forgetTokens(key: string): Promise<void> {
    this.tokens.delete(key);
    this.facts.delete(key);
    await this.deps.repo.delete([key]);
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
    const t = await this.load(key);
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
    const current = this.tokens.get(key);
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
    const t = await this.load(key);
    if (!t?.refresh_token) {
      await this.forgetTokens(key);
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
      await this.forgetTokens(key);
      throw await this.authorizationRequired(client, principal);
    }
    await this.save(client, principal, tokens, t.refresh_token);
    this.deps.log.info('OAuth access token refreshed', { client: client.name, principal });
    const fresh = this.tokens.get(key);
    if (!fresh) throw new GatewayError('INTERNAL_ERROR', 'refreshed token not kept');
    return fresh;
  }

  /**
   * A `fetch` for the upstream's HTTP transport that sends `principal`'s bearer token. On a 401
   * it refreshes the token (once) and repeats the request; when the upstream refuses the fresh
   * token too, or answers 403 `insufficient_scope`, it reads the `WWW-Authenticate` challenge
   * (RFC 6750 §3, RFC 9728 §5.1) and runs discovery again ({@link challenged}).
   * @throws GatewayError OAUTH_AUTHORIZATION_REQUIRED when a person must authorize (again), with
   *   the gateway's own authorization URL for per-user clients; OAUTH_ERROR when re-discovery fails.
   */
  fetchFor(client: () => OAuthClient, principal: string, base: FetchLike): FetchLike {
    return async (url, init) => {
      const c = client();
      const token = await this.accessToken(c, principal);
      const res = await base(url, withBearer(init, token));
      if (res.status !== 401 && !insufficientScope(res)) return res;
      const first = extractWWWAuthenticateParams(res);
      await res.body?.cancel().catch(() => undefined);
      if (res.status === 401) {
        let fresh: TokenSet;
        try {
          fresh = await this.refresh(c, principal, token);
        } catch (err) {
          // the refresh was refused: the upstream may have moved; what the challenge names decides
          if (err instanceof GatewayError && err.code === 'OAUTH_AUTHORIZATION_REQUIRED' && first.resourceMetadataUrl !== undefined) throw await this.challenged(c, principal, first);
          throw err;
        }
        const again = await base(url, withBearer(init, fresh.access_token));
        if (again.status !== 401 && !insufficientScope(again)) return again;
        const second = extractWWWAuthenticateParams(again);
        await again.body?.cancel().catch(() => undefined);
        throw await this.challenged(c, principal, { ...first, ...second });
      }
      throw await this.challenged(c, principal, first);
    };
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
  private async challenged(client: OAuthClient, principal: string, challenge: { resourceMetadataUrl?: URL; scope?: string; error?: string }): Promise<GatewayError> {
    const serverOrigin = new URL(client.connection_string ?? '').origin;
    let hint = challenge.resourceMetadataUrl;
    // the resource server publishes its own metadata: a URL on another origin is not fetched (an
    // upstream must not steer the gateway's requests elsewhere); the well-known URLs are used instead
    if (hint !== undefined && hint.origin !== serverOrigin) {
      this.deps.log.warn('upstream challenge names resource metadata on another origin; ignored', { client: client.name, origin: hint.origin });
      hint = undefined;
    }
    if (hint !== undefined) this.metadataHints.set(client.client_id, hint);
    if (challenge.error === 'insufficient_scope' && challenge.scope !== undefined && challenge.scope.length <= 1000) {
      this.scopeHints.set(client.client_id, mergeScopes(this.scopeHints.get(client.client_id), challenge.scope) ?? '');
    }
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
    await this.forgetTokens(tokenKey(client.client_id, principal));
    const e = await this.authorizationRequired(client, principal);
    if (e.code !== 'OAUTH_AUTHORIZATION_REQUIRED') return e;
    return new GatewayError(e.code, e.message, { ...e.details, upstream_challenge: { ...(challenge.error !== undefined ? { error: challenge.error.slice(0, 100) } : {}), ...(challenge.scope !== undefined ? { scope: challenge.scope.slice(0, 1000) } : {}) } });
  }

  private async rediscover(client: OAuthClient, serverOrigin: string, hint: URL | undefined): Promise<void> {
    const reg = await this.registration(client);
    let asUrl = reg.authorization_server;
    let resource = reg.resource;
    if (client.oauth_config?.authorization_server === undefined) {
      try {
        const info = await discoverOAuthServerInfo(new URL(client.connection_string ?? ''), { fetchFn: timedFetch, ...(hint !== undefined ? { resourceMetadataUrl: hint } : {}) });
        if (info.resourceMetadata) {
          const declared = new URL(info.resourceMetadata.resource);
          if (declared.origin !== serverOrigin) throw new Error(`protected resource metadata names another resource (${declared.origin})`);
          resource = info.resourceMetadata.resource;
        }
        asUrl = info.authorizationServerUrl;
      } catch (err) {
        throw new GatewayError('OAUTH_ERROR', `OAuth discovery for ${client.name} after its 401 failed: ${describe(err)}`, { client: client.name, step: 'discovery' });
      }
    }
    const wantedScope = mergeScopes(reg.scope, this.scopeHints.get(client.client_id));
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
    for (const k of keys) {
      this.tokens.delete(k);
      this.facts.delete(k);
    }
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
    const extra = reg?.metadata as { revocation_endpoint?: unknown; revocation_endpoint_auth_methods_supported?: unknown } | undefined;
    const endpoint = typeof extra?.revocation_endpoint === 'string' ? extra.revocation_endpoint : undefined;
    const revocationMethods = Array.isArray(extra?.revocation_endpoint_auth_methods_supported) ? (extra.revocation_endpoint_auth_methods_supported as string[]) : undefined;
    for (const key of keys) {
      const t = await this.load(key);
      if (!t || !reg || endpoint === undefined) continue;
      for (const [token, hint] of [
        [t.refresh_token, 'refresh_token'],
        [t.access_token, 'access_token'],
      ] as const) {
        if (token === undefined) continue;
        const params = new URLSearchParams({ token, token_type_hint: hint });
        const headers = new Headers({ 'content-type': 'application/x-www-form-urlencoded' });
        applyClientAuth(selectClientAuthMethod(reg.client_information, revocationMethods ?? reg.metadata?.token_endpoint_auth_methods_supported ?? ['none']), reg.client_information, headers, params);
        try {
          const res = await timedFetch(endpoint, { method: 'POST', headers, body: params });
          await res.arrayBuffer();
          if (!res.ok) this.deps.log.warn('OAuth token revocation refused', { client: client.name, status: res.status });
        } catch (err) {
          this.deps.log.warn('OAuth token revocation failed', { client: client.name, error: describe(err) });
        }
      }
    }
    for (const key of keys) {
      this.tokens.delete(key);
      this.facts.delete(key);
    }
    this.registrations.delete(client.client_id);
    await this.deps.repo.delete([...keys, clientKey(client.client_id)]);
    if (keys.length > 0) this.deps.log.info('OAuth tokens revoked and deleted', { client: client.name, count: keys.length });
  }
}

/** A 403 whose challenge says the token lacks scope (RFC 6750 §3.1; MCP "scope challenge handling"). */
function insufficientScope(res: Response): boolean {
  return res.status === 403 && /error="?insufficient_scope/.test(res.headers.get('www-authenticate') ?? '');
}

/** The union of two space-separated scope lists, in first-seen order; `undefined` when both are. */
function mergeScopes(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined && b === undefined) return undefined;
  return [...new Set(`${a ?? ''} ${b ?? ''}`.split(' ').filter(Boolean))].join(' ');
}

function withMetadata(reg: Registration): { metadata?: AuthorizationServerMetadata } {
  return reg.metadata ? { metadata: reg.metadata } : {};
}

function toTokenSet(tokens: OAuthTokens, previousRefresh: string | undefined, now: number): TokenSet {
  const refresh = tokens.refresh_token ?? previousRefresh;
  return {
    access_token: tokens.access_token,
    token_type: tokens.token_type,
    ...(refresh !== undefined ? { refresh_token: refresh } : {}),
    ...(tokens.scope !== undefined ? { scope: tokens.scope } : {}),
    ...(tokens.expires_in !== undefined ? { expires_at: now + tokens.expires_in * 1000 } : {}),
  };
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
