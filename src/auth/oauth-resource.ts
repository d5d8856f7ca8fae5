/**
 * The gateway as an OAuth 2.1 protected resource, as the MCP authorization specification asks of
 * an MCP server (https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization):
 *
 * - Protected Resource Metadata (RFC 9728, https://www.rfc-editor.org/rfc/rfc9728) at
 *   `/.well-known/oauth-protected-resource` (and the path-suffixed form for `/mcp`): `resource`,
 *   `authorization_servers`, `scopes_supported`, `bearer_methods_supported`.
 * - 401 answers carry `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728 §5.1).
 * - Access tokens are JWTs (RFC 9068) of configured issuers, verified with `jose` against each
 *   issuer's JWKS, found by OIDC / RFC 8414 discovery and fetched with `createRemoteJWKSet`
 *   (cached; an unknown `kid` refetches it, so key rotation needs no restart). The audience must be
 *   this gateway's resource URI (RFC 8707 §2, MCP "Token Audience Binding"); `exp`, `nbf`, `iss`
 *   are checked; only asymmetric algorithms verify (RFC 8725 §3.1), so `alg: none` and HMAC
 *   tokens never pass.
 * - Scopes (`scope` claim, RFC 9068 §2.2.3; or `scp`) map to a role and the tools the caller may
 *   use, like a virtual key's `tools_to_execute`.
 *
 * No message or log line carries a token.
 */
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthResourceSettings } from '../config/oauth.js';
import type { ToolFilter } from '../base/access.js';
import { includeFilter } from './access.js';
import { JwtVerifier } from './jwt.js';
import { AuthError, type Role } from '../base/principal.js';

/** Algorithms accepted for access tokens: asymmetric only (RFC 8725 §3.1–3.2). */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];
/** Verified tokens remembered at most. */
const CACHE_MAX = 10_000;
/** Discovery and JWKS fetches give up after this long, ms. */
const FETCH_TIMEOUT_MS = 5_000;
/** A failed discovery is retried after this long, ms (so an unreachable issuer is not hammered). */
const DISCOVERY_RETRY_MS = 10_000;

/** What a verified access token says about its caller. Frozen; shared by cache hits. */
export interface OAuthIdentity {
  readonly issuer: string;
  readonly sub: string;
  /** The principal id: `oauth:<sub>` with one issuer, `oauth:<sub>@<issuer>` with several. */
  readonly principalId: string;
  readonly scopes: readonly string[];
  readonly role: Role;
  /** The tools the scopes give; `undefined` = every tool. */
  readonly filter: ToolFilter | undefined;
  /** Epoch seconds. */
  readonly expiresAt: number;
}

interface CacheEntry {
  readonly identity: OAuthIdentity;
  readonly validUntilS: number;
  readonly validFromS: number;
}

/** A tool filter that allows nothing (a token whose scopes give no tools). */
const NOTHING: ToolFilter = { allowsTool: () => false, allowsClient: () => false };

export class OAuthResourceServer {
  private baseUrl = '';
  private readonly keySets = new Map<string, { readonly at: number; readonly keys: Promise<JWTVerifyGetKey> }>();
  private readonly cache = new Map<string, CacheEntry>();
  private readonly issuers: ReadonlySet<string>;

  constructor(private readonly settings: OAuthResourceSettings) {
    this.issuers = new Set(settings.issuers.map((i) => i.issuer));
  }

  /** Sets the gateway's base URL (`http://host:port` or `oauth.public_url`), once the port is known. */
  bind(baseUrl: string): void {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** This gateway's resource URI: `auth.oauth.resource`, else `<base URL>/mcp`. */
  get resource(): string {
    return this.settings.resource ?? `${this.baseUrl}/mcp`;
  }

  /** The metadata URL of {@link resource} (RFC 9728 §3.1: the well-known segment before the path). */
  get metadataUrl(): string {
    const u = new URL(this.resource);
    const path = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '');
    return `${u.origin}/.well-known/oauth-protected-resource${path}`;
  }

  /** The Protected Resource Metadata document (RFC 9728 §2). */
  metadata(): Record<string, unknown> {
    const scopes = Object.keys(this.settings.scopes);
    return {
      resource: this.resource,
      authorization_servers: this.settings.issuers.map((i) => i.issuer),
      ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
      bearer_methods_supported: ['header'],
      resource_signing_alg_values_supported: ALGORITHMS,
      resource_name: this.settings.resource_name,
    };
  }

  /** The `Bearer` challenge of a 401 (RFC 6750 §3, RFC 9728 §5.1); `invalid` adds `error="invalid_token"`. */
  challenge(invalid: boolean): string {
    return `Bearer realm="tributary", resource_metadata="${this.metadataUrl}"${invalid ? ', error="invalid_token"' : ''}`;
  }

  /**
   * Whether `token` is for this verifier: a JWT whose (unverified) `iss` is a configured issuer.
   * Verifies nothing; never throws.
   */
  claims(token: string): boolean {
    if (!JwtVerifier.looksLikeJwt(token)) return false;
    try {
      const iss = decodeJwt(token).iss;
      return iss !== undefined && this.issuers.has(iss);
    } catch {
      return false;
    }
  }

  /** The identity of a token verified before and still valid at `nowS` (epoch seconds); O(1). */
  cached(token: string, nowS: number): OAuthIdentity | undefined {
    const e = this.cache.get(token);
    if (e === undefined) return undefined;
    if (nowS >= e.validUntilS) {
      this.cache.delete(token);
      return undefined;
    }
    return nowS >= e.validFromS ? e.identity : undefined;
  }

  /**
   * Verifies an access token: signature by a key of its issuer's JWKS (asymmetric algorithms
   * only), `iss` a configured issuer, `aud` containing {@link resource}, `exp` (required) and
   * `nbf` with the clock tolerance, `sub` non-empty.
   * @throws AuthError `expired_token`, `token_not_yet_valid`, or `invalid_token` (wrong audience,
   *   issuer, signature or algorithm; issuer metadata unreachable). Messages never carry the token.
   */
  async verify(token: string): Promise<OAuthIdentity> {
    const nowS = Date.now() / 1000;
    const hit = this.cached(token, nowS);
    if (hit) return hit;
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new AuthError('invalid_token', 'access token is malformed');
    }
    if (iss === undefined || !this.issuers.has(iss)) throw new AuthError('invalid_token', 'access token issuer is not trusted');
    const keys = await this.keysOf(iss);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: iss,
        audience: this.resource,
        algorithms: ALGORITHMS,
        clockTolerance: this.settings.clock_tolerance_s,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      throw toAuthError(err);
    }
    const identity = this.identityOf(iss, payload);
    this.remember(token, identity, payload);
    return identity;
  }

  private identityOf(issuer: string, payload: JWTPayload): OAuthIdentity {
    const sub = payload.sub ?? '';
    if (sub === '') throw new AuthError('invalid_token', 'access token "sub" claim is missing');
    const raw = payload['scope'] ?? payload['scp'];
    const scopes = typeof raw === 'string' ? raw.split(' ').filter(Boolean) : Array.isArray(raw) ? raw.filter((s): s is string => typeof s === 'string') : [];
    const grants = this.settings.scopes;
    const configured = Object.keys(grants);
    let role: Role = 'user';
    let filter: ToolFilter | undefined;
    if (configured.length > 0) {
      const tools: string[] = [];
      let all = false;
      for (const s of scopes) {
        const g = grants[s];
        if (g === undefined) continue;
        if (g.role === 'admin') role = 'admin';
        if (g.tools === undefined) all = true;
        else tools.push(...g.tools);
      }
      filter = all ? undefined : tools.length === 0 ? NOTHING : includeFilter('', tools.join(','));
    }
    const principalId = this.issuers.size === 1 ? `oauth:${sub}` : `oauth:${sub}@${issuer}`;
    return Object.freeze({ issuer, sub, principalId, scopes: Object.freeze(scopes), role, filter, expiresAt: payload.exp ?? 0 });
  }

  private remember(token: string, identity: OAuthIdentity, payload: JWTPayload): void {
    const tol = this.settings.clock_tolerance_s;
    if (this.cache.size >= CACHE_MAX) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(token, {
      identity,
      validUntilS: (payload.exp ?? 0) + tol,
      validFromS: payload.nbf !== undefined ? payload.nbf - tol : Number.NEGATIVE_INFINITY,
    });
  }

  /** The issuer's key set: `jwks_uri` from configuration or discovery, fetched by jose and cached. */
  private keysOf(issuer: string): Promise<JWTVerifyGetKey> {
    const known = this.keySets.get(issuer);
    if (known !== undefined) return known.keys;
    const configured = this.settings.issuers.find((i) => i.issuer === issuer)?.jwks_uri;
    const keys = (async () => {
      let jwksUri = configured;
      if (jwksUri === undefined) {
        const meta = await discoverAuthorizationServerMetadata(issuer, { fetchFn: (u, init) => fetch(u, { ...init, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) }) }).catch(() => undefined);
        if (meta === undefined) throw new AuthError('invalid_token', 'authorization server metadata of the token issuer could not be fetched');
        if (meta.issuer !== issuer) throw new AuthError('invalid_token', 'authorization server metadata names another issuer');
        jwksUri = typeof meta.jwks_uri === 'string' ? meta.jwks_uri : undefined;
        if (jwksUri === undefined) throw new AuthError('invalid_token', 'authorization server metadata has no jwks_uri');
      }
      return createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: FETCH_TIMEOUT_MS, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
    })();
    const entry = { at: Date.now(), keys };
    this.keySets.set(issuer, entry);
    // a failed discovery is forgotten after a while, so a later request tries again
    keys.catch(() => {
      setTimeout(() => {
        if (this.keySets.get(issuer) === entry) this.keySets.delete(issuer);
      }, DISCOVERY_RETRY_MS).unref();
    });
    return keys;
  }
}

function toAuthError(err: unknown): AuthError {
  if (err instanceof AuthError) return err;
  if (err instanceof errors.JWTExpired) return new AuthError('expired_token', 'access token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return new AuthError('token_not_yet_valid', 'access token is not valid yet (nbf)');
    if (err.claim === 'aud') return new AuthError('invalid_token', 'access token audience is not this resource (RFC 8707)');
    return new AuthError('invalid_token', `access token "${err.claim}" claim check failed`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return new AuthError('invalid_token', 'access token algorithm is not accepted');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new AuthError('invalid_token', 'access token signature verification failed');
  if (err instanceof errors.JWKSNoMatchingKey) return new AuthError('invalid_token', 'access token key id (kid) matches no key of its issuer');
  if (err instanceof errors.JOSEError) return new AuthError('invalid_token', `access token is invalid (${err.code})`);
  return new AuthError('invalid_token', 'access token is invalid');
}
