/**
 * The access gate: turns a request's credentials into a {@link Principal}, checks that
 * it may use the surface, counts it against its rate limits, and says what the reply must carry
 * (`X-RateLimit-*`, `WWW-Authenticate`, `Retry-After`). Every surface goes through it: HTTP routes
 * and `/mcp` before the body is handled, WebSocket upgrades before the upgrade, each WebSocket
 * message, and each tool execution.
 *
 * Credentials (developer-mesh "Authentication", Bifrost auth schemes, https://github.com/maximhq/bifrost/blob/main/docs/openapi/paths/management/infrastructure.yaml):
 * `x-bf-vk: <virtual key>`, `Authorization: Bearer <API key | virtual key | JWT>`,
 * `Authorization: <API key>`, `X-API-Key: <API key>`, `Authorization: Basic <admin user:password>`.
 *
 * The hot path is synchronous and allocation-light: API and virtual keys are one sha256 and a Map
 * lookup ({@link KeyRegistry.authenticate}); JWTs are verified once and then served from a cache
 * until they expire; a Basic login is verified with scrypt once and remembered (by the sha256 of
 * the header) for five minutes. Secrets are never logged, never used as metric labels and never
 * echoed in errors.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../base/errors.js';
import type { ResolvedAuthConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { HeaderList } from '../base/http.js';
import type { RouteAccess } from '../base/routes.js';
import type { StoredKey } from '../store/keys.js';
import type { CredentialSource, RequestAuth, ToolFilter } from '../base/access.js';
import { bothFilters, includeFilter, type VirtualKeyAccess } from './access.js';
import { JwtVerifier, type JwtIdentity } from './jwt.js';
import type { OAuthIdentity, OAuthResourceServer } from './oauth-resource.js';
import type { KeyRegistry } from './keys.js';
import { hashPassword, verifyPassword } from '../base/password.js';
import { LoginThrottle, RateLimits, type LimitVerdict } from './rate-limit.js';
import { ANONYMOUS, AuthError, type AuthFailureReason, type Principal, type RateLimitSettings } from '../base/principal.js';

/** The request headers the gate reads (lower-case names; `''` when absent). */
export interface Credentials {
  readonly authorization: string;
  readonly apiKey: string;
  readonly virtualKey: string;
  readonly includeClients: string;
  readonly includeTools: string;
  /** The client's address; only needed for Basic logins (failed attempts are throttled per address). */
  readonly remoteAddress: string;
}

/**
 * What a route requires: `open` (no credentials: `/health`, CORS preflight), `user` (any valid
 * credential), `admin` (role admin). `virtualKeys`: whether virtual keys may use it (they exist to
 * call tools: `/mcp`, `/ws`, tool execution).
 */
export interface RouteRule {
  readonly need: 'open' | 'user' | 'admin';
  readonly virtualKeys: boolean;
}

const OPEN: RouteRule = { need: 'open', virtualKeys: true };
const TOOLS: RouteRule = { need: 'user', virtualKeys: true };
const USER: RouteRule = { need: 'user', virtualKeys: false };
const ADMIN: RouteRule = { need: 'admin', virtualKeys: false };

/**
 * The rule of a route's declared access (`RouteSpec.access`): `open` and `signature` need no
 * credential, `metrics` is `open` unless `metricsRequireAuth`; `tools` takes any credential
 * including virtual keys; `user` API keys and JWTs; `admin` role admin.
 */
export function ruleOf(access: RouteAccess, metricsRequireAuth: boolean): RouteRule {
  switch (access) {
    case 'open':
    case 'signature':
      return OPEN;
    case 'metrics':
      return metricsRequireAuth ? USER : OPEN;
    case 'tools':
      return TOOLS;
    case 'user':
      return USER;
    case 'admin':
      return ADMIN;
  }
}

/** A refusal: the error to answer and the headers the reply must carry. */
export interface GateRefusal {
  readonly ok: false;
  readonly error: GatewayError;
  readonly headers: HeaderList;
}

/** An admitted request: who it is, what it may use, and the rate-limit headers for the reply. */
export interface GateAdmission {
  readonly ok: true;
  readonly auth: RequestAuth;
  readonly headers: HeaderList;
}

export type GateDecision = GateAdmission | GateRefusal;

/** Counters the metrics read (labels are reasons and limit names, never credentials). */
export interface GateCounters {
  readonly failures: Map<AuthFailureReason | 'forbidden', number>;
  readonly rateLimited: Map<string, number>;
}

const NO_HEADERS: HeaderList = [];
const ADMIT_ANONYMOUS: GateAdmission = { ok: true, auth: { principal: ANONYMOUS, filter: undefined }, headers: NO_HEADERS };
const BASIC_CACHE_MS = 5 * 60_000;
const BASIC_CACHE_MAX = 1000;
const MAX_CREDENTIAL_LENGTH = 8192;

/** `X-RateLimit-Limit`, `-Remaining`, `-Reset` (epoch seconds), plus `Retry-After` when refused. */
export function rateLimitHeaders(v: LimitVerdict): HeaderList {
  const h: [string, string][] = [
    ['X-RateLimit-Limit', String(v.limit)],
    ['X-RateLimit-Remaining', String(v.remaining)],
    ['X-RateLimit-Reset', String(v.resetEpochS)],
  ];
  if (!v.allowed) h.push(['Retry-After', String(v.retryAfterS)]);
  return h;
}

/** The RATE_LIMITED error of a refused verdict; `details` say which limit and when to retry. */
export function rateLimitedError(v: LimitVerdict): GatewayError {
  const what = v.name === 'tool_executions_per_hour' ? 'tool executions per hour' : v.name === 'burst_per_minute' ? 'requests per minute' : 'requests per hour';
  return new GatewayError('RATE_LIMITED', `Rate limit exceeded: ${v.limit} ${what}; retry in ${v.retryAfterS} s`, {
    limit_name: v.name,
    limit: v.limit,
    remaining: v.remaining,
    reset: v.resetEpochS,
    retry_after_s: v.retryAfterS,
  });
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export interface AccessGateDeps {
  readonly keys: KeyRegistry;
  readonly vkAccess: VirtualKeyAccess;
  readonly jwt: JwtVerifier | undefined;
  /** The OAuth resource server (`auth.oauth`), when configured. */
  readonly oauth?: OAuthResourceServer | undefined;
  readonly log: Logger;
  readonly now?: () => number;
}

export class AccessGate {
  readonly enabled: boolean;
  readonly limits: RateLimits;
  readonly counters: GateCounters = { failures: new Map(), rateLimited: new Map() };
  private readonly throttle: LoginThrottle;
  private readonly keyPrincipals = new WeakMap<StoredKey, Principal>();
  private readonly jwtPrincipals = new WeakMap<JwtIdentity, Principal>();
  private readonly oauthPrincipals = new WeakMap<OAuthIdentity, Principal>();
  /** Credential sources of principals admitted without include headers, reused while current. */
  private readonly sources = new WeakMap<Principal, CredentialSource>();
  /** A JWT principal's `exp` in epoch ms (`Infinity` without one). */
  private readonly jwtExpiry = new WeakMap<Principal, number>();
  /** sha256(Basic header) hex → expiry (ms): logins verified recently. */
  private readonly basicOk = new Map<string, number>();
  private readonly adminHash: Promise<string> | undefined;
  private readonly adminUserDigest: Buffer | undefined;
  private readonly now: () => number;
  private readonly defaults: RateLimitSettings;

  constructor(
    private readonly config: ResolvedAuthConfig,
    private readonly deps: AccessGateDeps,
  ) {
    this.enabled = config.enabled;
    this.now = deps.now ?? Date.now;
    this.limits = new RateLimits(this.now);
    this.throttle = new LoginThrottle(config.max_login_failures, config.login_failure_window_s);
    this.defaults = config.rate_limits;
    const admin = config.admin;
    if (admin) {
      this.adminUserDigest = sha256(admin.username);
      // a password from the environment is hashed once at start; the plain text is not kept here
      this.adminHash = admin.password !== undefined ? hashPassword(admin.password) : Promise.resolve(admin.password_hash ?? '');
    }
  }

  /**
   * Admits or refuses a request to a route with `rule`. Synchronous when the answer needs no I/O
   * (auth off, open routes); otherwise resolves after the rate limits are counted. Never rejects:
   * failures become {@link GateRefusal}s (401 unknown/missing credentials, 403 wrong role or a
   * virtual key off its surfaces, 429 over a limit).
   */
  admit(c: Credentials, rule: RouteRule): GateDecision | Promise<GateDecision> {
    const filterOfHeaders = includeFilter(c.includeClients, c.includeTools);
    if (!this.enabled || rule.need === 'open') {
      // the common case (no include headers) allocates nothing
      return filterOfHeaders === undefined ? ADMIT_ANONYMOUS : { ok: true, auth: { principal: ANONYMOUS, filter: filterOfHeaders }, headers: NO_HEADERS };
    }
    let principal: Principal | Promise<Principal>;
    try {
      principal = this.identify(c);
    } catch (err) {
      return this.refuseAuth(err);
    }
    if (principal instanceof Promise) {
      return principal.then(
        (p) => this.authorize(p, rule, filterOfHeaders),
        (err: unknown) => this.refuseAuth(err),
      );
    }
    return this.authorize(principal, rule, filterOfHeaders);
  }

  /**
   * Admits a request of a principal identified earlier (a dashboard session, see
   * `ui-session.ts`) to a route with `rule`: the same role, virtual-key and rate-limit checks as
   * {@link admit}, without reading credentials again.
   */
  admitPrincipal(p: Principal, c: Pick<Credentials, 'includeClients' | 'includeTools'>, rule: RouteRule): GateDecision | Promise<GateDecision> {
    const filterOfHeaders = includeFilter(c.includeClients, c.includeTools);
    if (!this.enabled || rule.need === 'open') return filterOfHeaders === undefined ? ADMIT_ANONYMOUS : { ok: true, auth: { principal: ANONYMOUS, filter: filterOfHeaders }, headers: NO_HEADERS };
    return this.authorize(p, rule, filterOfHeaders);
  }

  /**
   * Who presents `c`, for a sign-in form: the principal, or the refusal {@link admit} would give
   * (401 with the reason, 429 while logins from the address are throttled). Never rejects.
   */
  async authenticate(c: Credentials): Promise<{ readonly ok: true; readonly principal: Principal } | GateRefusal> {
    try {
      return { ok: true, principal: await this.identify(c) };
    } catch (err) {
      return this.refuseAuth(err);
    }
  }

  /** Counts one WebSocket message of an admitted connection; resolves a refusal when over a limit. */
  async admitMessage(auth: RequestAuth): Promise<GateRefusal | undefined> {
    const v = await this.limits.consumeRequest(auth.principal);
    if (!v || v.allowed) return undefined;
    return this.refuseLimit(v);
  }

  /**
   * {@link admitToolExecution} without a Promise when nothing is counted (no caller, or a caller
   * without limits, e.g. anonymous with auth off): `undefined` = admitted now; else the Promise of
   * the counted admission. For the per-call path of `tools/call`.
   */
  admitToolExecutionNow(auth: RequestAuth | undefined): Promise<void> | undefined {
    if (auth?.principal.limits === undefined) return undefined;
    return this.admitToolExecution(auth);
  }

  /**
   * Counts one tool execution. @throws GatewayError RATE_LIMITED (429 / JSON-RPC -32009) over the
   * caller's `tool_executions_per_hour`.
   */
  async admitToolExecution(auth: RequestAuth | undefined): Promise<void> {
    if (!auth) return;
    const v = await this.limits.consumeToolExecution(auth.principal);
    if (v && !v.allowed) {
      this.count(this.counters.rateLimited, v.name);
      throw rateLimitedError(v);
    }
  }

  /**
   * Who presents `c`. Synchronous for API keys, virtual keys, cached JWTs and recent Basic logins.
   * @throws AuthError (or a Promise rejecting with one) for missing, malformed, unknown, revoked or
   * expired credentials, an invalid token or a wrong password.
   */
  identify(c: Credentials): Principal | Promise<Principal> {
    if (c.virtualKey !== '') return this.fromKey(c.virtualKey);
    const auth = c.authorization;
    if (auth !== '') {
      if (auth.length > MAX_CREDENTIAL_LENGTH) throw new AuthError('malformed_credentials', 'Authorization header too long');
      const space = auth.indexOf(' ');
      if (space < 0) return this.fromKey(auth);
      const scheme = auth.slice(0, space).toLowerCase();
      const value = auth.slice(space + 1).trim();
      if (value === '') throw new AuthError('malformed_credentials', `Authorization: ${scheme} without a credential`);
      if (scheme === 'bearer') return this.fromBearer(value);
      if (scheme === 'basic') return this.fromBasic(value, c.remoteAddress);
      throw new AuthError('malformed_credentials', 'Unsupported Authorization scheme (use Bearer, Basic, X-API-Key or x-bf-vk)');
    }
    if (c.apiKey !== '') return this.fromKey(c.apiKey);
    throw new AuthError('missing_credentials', 'Authentication required: send Authorization: Bearer <key>, X-API-Key or x-bf-vk');
  }

  private fromBearer(token: string): Principal | Promise<Principal> {
    const oauth = this.deps.oauth;
    if (oauth) {
      const hit = oauth.cached(token, this.now() / 1000);
      if (hit) return this.oauthPrincipal(hit);
      if (oauth.claims(token)) return oauth.verify(token).then((id) => this.oauthPrincipal(id));
    }
    const jwt = this.deps.jwt;
    if (jwt) {
      // the cache first: a token verified before skips the syntax check too
      const hit = jwt.cached(token, this.now() / 1000);
      if (hit) return this.jwtPrincipal(hit);
      if (JwtVerifier.looksLikeJwt(token)) return jwt.verify(token).then((id) => this.jwtPrincipal(id));
    }
    return this.fromKey(token);
  }

  private fromKey(secret: string): Principal {
    return this.keyPrincipal(this.deps.keys.authenticate(secret));
  }

  /**
   * {@link admit} for an API or virtual key identified elsewhere by its hash (a worker thread of
   * `server.workers` holds the hashes): the key by kind and id, then the same role, virtual-key
   * and rate-limit checks. `undefined` when the key is unknown, revoked or expired now: the caller
   * then lets {@link admit} answer the request with its own refusal.
   */
  admitKey(kind: StoredKey['kind'], id: string, rule: RouteRule): GateDecision | Promise<GateDecision> | undefined {
    if (!this.enabled) return undefined;
    const keys = this.deps.keys;
    if (keys.refusalReason(kind, id, this.now()) !== undefined) return undefined;
    const record = keys.get(kind, id);
    return record === undefined ? undefined : this.authorize(this.keyPrincipal(record), rule, undefined);
  }

  private keyPrincipal(record: StoredKey): Principal {
    let p = this.keyPrincipals.get(record);
    if (!p) {
      const limits = { ...this.defaults, ...record.rate_limits };
      p =
        record.kind === 'virtual_key'
          ? { kind: 'virtual_key', id: `vk:${record.id}`, tenantId: record.tenant_id, role: 'user', name: record.name, virtualKeyId: record.id, limits }
          : { kind: 'api_key', id: `key:${record.id}`, tenantId: record.tenant_id, role: record.role, name: record.name, limits };
      if (record.tool_mode !== undefined) p = { ...p, toolMode: record.tool_mode };
      this.keyPrincipals.set(record, p);
    }
    return p;
  }

  private jwtPrincipal(id: JwtIdentity): Principal {
    let p = this.jwtPrincipals.get(id);
    if (!p) {
      p = { kind: 'jwt', id: `jwt:${id.sub}`, tenantId: id.tenantId, role: id.role, name: id.sub, limits: this.defaults };
      this.jwtPrincipals.set(id, p);
      this.jwtExpiry.set(p, id.expiresAt === undefined ? Infinity : id.expiresAt * 1000);
    }
    return p;
  }

  private oauthPrincipal(id: OAuthIdentity): Principal {
    let p = this.oauthPrincipals.get(id);
    if (!p) {
      p = { kind: 'oauth', id: id.principalId, tenantId: 'default', role: id.role, name: id.sub, limits: this.defaults, ...(id.filter ? { toolFilter: id.filter } : {}) };
      this.oauthPrincipals.set(id, p);
      this.jwtExpiry.set(p, id.expiresAt * 1000);
    }
    return p;
  }

  private adminPrincipal(): Principal {
    return { kind: 'admin', id: `admin:${this.config.admin?.username ?? ''}`, tenantId: 'default', role: 'admin', name: this.config.admin?.username ?? '' };
  }

  private fromBasic(value: string, address: string): Principal | Promise<Principal> {
    const digest = sha256(value).toString('hex');
    const until = this.basicOk.get(digest);
    if (until !== undefined && until > this.now()) return this.adminPrincipal();
    return this.checkBasic(value, digest, address);
  }

  private async checkBasic(value: string, digest: string, address: string): Promise<Principal> {
    if (!this.adminHash || !this.adminUserDigest) throw new AuthError('bad_password', 'Basic authentication is not configured');
    const wait = await this.throttle.blockedFor(address);
    if (wait > 0) throw new LoginBlocked(wait);
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new AuthError('malformed_credentials', 'Basic credential is not base64 of user:password');
    const userOk = timingSafeEqual(sha256(decoded.slice(0, colon)), this.adminUserDigest);
    // the password is checked even for a wrong user name, so both take the same time
    const passOk = await verifyPassword(decoded.slice(colon + 1), await this.adminHash);
    if (!userOk || !passOk) {
      await this.throttle.fail(address);
      throw new AuthError('bad_password', 'Wrong user name or password');
    }
    if (this.basicOk.size >= BASIC_CACHE_MAX) this.basicOk.clear();
    this.basicOk.set(digest, this.now() + BASIC_CACHE_MS);
    return this.adminPrincipal();
  }

  private authorize(p: Principal, rule: RouteRule, headerFilter: RequestAuth['filter']): GateDecision | Promise<GateDecision> {
    if (rule.need === 'admin' && p.role !== 'admin') return this.refuseForbidden('This route needs an admin credential', p);
    if (p.kind === 'virtual_key' && !rule.virtualKeys) return this.refuseForbidden('Virtual keys may only use /mcp, /ws and tool execution', p);
    const filter = p.virtualKeyId !== undefined ? bothFilters(this.deps.vkAccess.forKey(p.virtualKeyId), headerFilter) : bothFilters(p.toolFilter, headerFilter);
    const source = this.sourceOf(p, headerFilter);
    const auth: RequestAuth = source === undefined ? { principal: p, filter } : { principal: p, filter, source };
    if (!p.limits) return { ok: true, auth, headers: NO_HEADERS };
    return this.limits.consumeRequest(p).then((v): GateDecision => {
      if (!v) return { ok: true, auth, headers: NO_HEADERS };
      if (!v.allowed) return this.refuseLimit(v);
      return { ok: true, auth, headers: rateLimitHeaders(v) };
    });
  }

  /**
   * Re-checks an admitted credential against its current state, for connections that outlive the
   * request that opened them (WebSockets): revocation, expiry, and a virtual key's current tool
   * set (`vk_configs`). Synchronous, and allocation-free while nothing changed (two version
   * compares and one expiry compare, ~20 ns); otherwise two Map lookups.
   *
   * Returns `auth` itself when nothing changed, a new {@link RequestAuth} when what the caller may
   * use changed (take it from then on), or a refusal (401 `UNAUTHORIZED` with `details.reason`
   * `revoked_key`, `expired_key`, `unknown_key` or `expired_token`) when the credential is no
   * longer valid.
   * @param nowMs the current time, epoch ms.
   */
  revalidate(auth: RequestAuth, nowMs: number): RequestAuth | GateRefusal {
    const src = auth.source;
    if (src === undefined) return auth;
    const keysVersion = this.deps.keys.version;
    const vkVersion = this.deps.vkAccess.version;
    if (nowMs < src.expiresMs && src.keysVersion === keysVersion && src.vkVersion === vkVersion) return auth;
    const key = src.key;
    if (key !== undefined) {
      const reason = this.deps.keys.refusalReason(key.kind, key.id, nowMs);
      if (reason !== undefined) return this.refuseAuth(new AuthError(reason, `${key.kind === 'api_key' ? 'API key' : 'Virtual key'} ${key.id} ${reason === 'revoked_key' ? 'has been revoked' : reason === 'expired_key' ? 'has expired' : 'no longer exists'}`));
    } else if (!(nowMs < src.expiresMs)) {
      return this.refuseAuth(new AuthError('expired_token', 'token has expired'));
    }
    const p = auth.principal;
    const filter = p.virtualKeyId !== undefined ? bothFilters(this.deps.vkAccess.forKey(p.virtualKeyId), src.headerFilter) : bothFilters(p.toolFilter, src.headerFilter);
    return { ...auth, filter, source: { ...src, keysVersion, vkVersion } };
  }

  /** What a connection needs to re-check `p` later; `undefined` for credentials that cannot change. */
  private sourceOf(p: Principal, headerFilter: ToolFilter | undefined): CredentialSource | undefined {
    const keysVersion = this.deps.keys.version;
    const vkVersion = this.deps.vkAccess.version;
    // the common case (no include headers) reuses one object per principal while nothing changes
    const cached = headerFilter === undefined ? this.sources.get(p) : undefined;
    if (cached !== undefined && cached.keysVersion === keysVersion && cached.vkVersion === vkVersion) return cached;
    let src: CredentialSource;
    if (p.kind === 'api_key' || p.kind === 'virtual_key') {
      const id = p.kind === 'virtual_key' ? (p.virtualKeyId ?? '') : p.id.slice('key:'.length);
      src = { key: { kind: p.kind, id }, expiresMs: this.deps.keys.expiresMs(p.kind, id), headerFilter, keysVersion, vkVersion };
    } else if (p.kind === 'jwt' || p.kind === 'oauth') {
      src = { key: undefined, expiresMs: this.jwtExpiry.get(p) ?? Infinity, headerFilter, keysVersion, vkVersion };
    } else {
      return undefined;
    }
    if (headerFilter === undefined) this.sources.set(p, src);
    return src;
  }

  private count<K>(map: Map<K, number>, key: K): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  private refuseLimit(v: LimitVerdict): GateRefusal {
    this.count(this.counters.rateLimited, v.name);
    return { ok: false, error: rateLimitedError(v), headers: rateLimitHeaders(v) };
  }

  private refuseForbidden(message: string, p: Principal): GateRefusal {
    this.count(this.counters.failures, 'forbidden');
    return { ok: false, error: new GatewayError('FORBIDDEN', message, { principal: p.id }), headers: NO_HEADERS };
  }

  private refuseAuth(err: unknown): GateRefusal {
    if (err instanceof LoginBlocked) {
      this.count(this.counters.rateLimited, 'login_failures');
      return {
        ok: false,
        error: new GatewayError('RATE_LIMITED', `Too many failed logins from this address; retry in ${err.retryAfterS} s`, { limit_name: 'login_failures', retry_after_s: err.retryAfterS }),
        headers: [['Retry-After', String(err.retryAfterS)]],
      };
    }
    if (!(err instanceof AuthError)) {
      this.deps.log.error('authentication failed unexpectedly', { error: err });
      return { ok: false, error: new GatewayError('INTERNAL_ERROR'), headers: NO_HEADERS };
    }
    this.count(this.counters.failures, err.reason);
    return {
      ok: false,
      error: new GatewayError('UNAUTHORIZED', err.message, { reason: err.reason }),
      headers: [['WWW-Authenticate', `${this.deps.oauth ? this.deps.oauth.challenge(err.reason === 'invalid_token' || err.reason === 'expired_token') : 'Bearer realm="tributary"'}, Basic realm="tributary"`]],
    };
  }
}

/** Basic logins from an address are paused after too many failures. */
class LoginBlocked extends Error {
  override readonly name = 'LoginBlocked';
  constructor(readonly retryAfterS: number) {
    super('login blocked');
  }
}
