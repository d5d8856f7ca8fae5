/** Downstream access control codecs (`auth`: admin login, JWT, OAuth resource, rate limits) and their resolved form. */
import * as t from 'io-ts';
import { OAuthResourceConfig, type OAuthResourceSettings } from './oauth.js';
import { NonNegativeInt, PositiveInt } from './schema-primitives.js';

/** Per-key rate limits; every field a whole number ≥ 1. */
export const RateLimitConfig = t.exact(
  t.partial({
    /** Requests (HTTP requests, WebSocket messages) per hour per key (default 1000). */
    requests_per_hour: PositiveInt,
    /** Requests per minute per key: the burst limit (default 50). */
    burst_per_minute: PositiveInt,
    /** Tool executions per hour per key (default 100). */
    tool_executions_per_hour: PositiveInt,
  }),
);

/** JWT verification (jose): an HS256 secret and/or a JWKS file of RS256/ES256 public keys. */
export const JwtConfig = t.exact(
  t.partial({
    /** HS256 shared secret, ≥ 32 bytes; env TRIBUTARY_JWT_SECRET overrides. */
    hs256_secret: t.string,
    /** Path of a JWKS JSON file (`{"keys":[...]}`) with RS256/ES256 public keys, `kid` chosen. */
    jwks_file: t.string,
    /** Required `iss`. */
    issuer: t.string,
    /** Required `aud` member. */
    audience: t.string,
    /** Leeway on `exp`/`nbf`, seconds (default 30). */
    clock_tolerance_s: NonNegativeInt,
    /** Claim naming the caller's tenant (default `tenant_id`; missing → `default`). */
    tenant_claim: t.string,
    /** Claim naming the role; `admin` gives the management API (default `role`). */
    role_claim: t.string,
  }),
);

/**
 * Access control. Auth is on when the server binds a non-loopback address, unless
 * `disabled: true`; on loopback it is off unless `disabled: false`.
 */
export const AuthConfig = t.exact(
  t.partial({
    disabled: t.boolean,
    /** The admin user for HTTP Basic; the password as an scrypt hash (`npm run hash-password`), or env TRIBUTARY_ADMIN_PASSWORD. */
    admin: t.exact(t.intersection([t.type({ username: t.string }), t.partial({ password_hash: t.string })])),
    jwt: JwtConfig,
    /** The gateway as an OAuth 2.1 protected resource (RFC 9728): trusted authorization servers, scopes → roles and tools. */
    oauth: OAuthResourceConfig,
    /** Default per-key limits (keys may override). */
    rate_limits: RateLimitConfig,
    /** Require credentials on /metrics (default false: open, as Prometheus scrapers expect). */
    metrics_require_auth: t.boolean,
    /** Failed Basic logins per address before further attempts are refused (default 5). */
    max_login_failures: PositiveInt,
    /** Window of `max_login_failures`, seconds (default 900). */
    login_failure_window_s: PositiveInt,
  }),
);

/** Access control with defaults filled in; secrets from the environment already merged. */
export interface ResolvedAuthConfig {
  readonly enabled: boolean;
  /** Why auth is on or off (for the start-up log). */
  readonly reason: string;
  readonly admin: { readonly username: string; readonly password_hash?: string; readonly password?: string } | undefined;
  /** The verifier settings without its cache size (see `src/auth/jwt.ts`). */
  readonly jwt: Omit<JwtSettings, 'cache_max'> | undefined;
  /** The downstream OAuth resource server; `undefined` = off. */
  readonly oauth?: OAuthResourceSettings | undefined;
  readonly rate_limits: { readonly requests_per_hour: number; readonly burst_per_minute: number; readonly tool_executions_per_hour: number };
  readonly metrics_require_auth: boolean;
  readonly max_login_failures: number;
  readonly login_failure_window_s: number;
}

/** Verifier settings (the `auth.jwt` config block). */
export interface JwtSettings {
  /** HS256 shared secret (UTF-8), at least 32 bytes (RFC 7518 §3.2: key ≥ hash output size); optional. */
  readonly hs256_secret?: string;
  /** Path of a JWKS JSON file (`{"keys":[...]}`, RFC 7517 §5) with RS256 / ES256 public keys; optional. */
  readonly jwks_file?: string;
  /** When set, `iss` must equal it. */
  readonly issuer?: string;
  /** When set, `aud` (a string or an array of strings) must contain it. */
  readonly audience?: string;
  /** Leeway for `exp`/`nbf`, seconds (≥ 0). */
  readonly clock_tolerance_s: number;
  /** Claim naming the tenant, e.g. `tenant_id`; missing → `default`. */
  readonly tenant_claim: string;
  /** Claim naming the role; the value `admin` → role `admin`, anything else or missing → `user`. */
  readonly role_claim: string;
  /** Verified tokens remembered (oldest insertion evicted first), e.g. 10000; 0 disables the cache. */
  readonly cache_max: number;
}
