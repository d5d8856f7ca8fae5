/**
 * JWT bearer-token verification on `jose`: signature, `exp`, `nbf`, `iss`, `aud` and a
 * required `sub` (RFC 7519 §4.1), with the algorithm rules of the JWT BCP (RFC 8725 §3.1–3.2):
 * every key kind verifies only its own explicit algorithm allow-list, so `alg: none` and
 * algorithm-confusion tokens (an HS256 token "signed" with an RSA public key) never verify. Verified
 * tokens are remembered in a bounded, insertion-ordered cache so the hot path is one `Map` lookup.
 * No crypto is written here; no message ever carries the token.
 */
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, decodeProtectedHeader, errors, importJWK, jwtVerify } from 'jose';
import type { JWK, JWTPayload, JWTVerifyOptions } from 'jose';
import { AuthError } from '../base/principal.js';
import type { Role } from '../base/principal.js';
import type { JwtSettings } from '../config/schema.js';

/** What a verified token says about its caller. Frozen; shared by every cache hit. */
export interface JwtIdentity {
  readonly sub: string;
  readonly tenantId: string;
  readonly role: Role;
  /** Epoch seconds, if the token has `exp`. */
  readonly expiresAt: number | undefined;
}

/** Algorithms the HS256 secret may verify (RFC 8725 §3.1: one key, one algorithm). */
const HS_ALGORITHMS = ['HS256'];
/** Algorithms JWKS keys may verify; never an HMAC algorithm, so a public key is never an HMAC secret. */
const JWKS_ALGORITHMS = ['RS256', 'ES256'];
/** Cache lifetime of a verified token without `exp`, seconds. */
const NO_EXP_CACHE_S = 300;
/** Longest token accepted, characters; longer is refused before parsing (it would not fit a sane header anyway). */
const MAX_TOKEN_CHARS = 16 * 1024;
/** Longest header segment {@link JwtVerifier.looksLikeJwt} decodes, characters. */
const MAX_HEADER_CHARS = 2048;
const MIN_SECRET_BYTES = 32;
/** Header and payload non-empty, signature possibly empty (unsecured JWT), base64url alphabet only. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

type JwksResolver = ReturnType<typeof createLocalJWKSet>;

interface CacheEntry {
  readonly identity: JwtIdentity;
  /** Epoch seconds from which the entry is no longer served (`exp` + tolerance, or verification + 5 min). */
  readonly validUntilS: number;
  /** Epoch seconds before which the entry is not served (`nbf` − tolerance, or -Infinity). */
  readonly validFromS: number;
}

/**
 * Verifies JWT bearer tokens against an HS256 secret and/or a local JWKS file, and caches the
 * identities of verified tokens. Build with {@link JwtVerifier.create}; one instance serves every
 * request concurrently.
 */
export class JwtVerifier {
  private readonly cache = new Map<string, CacheEntry>();

  private constructor(
    private readonly settings: JwtSettings,
    private readonly hsKey: Uint8Array | undefined,
    private readonly jwks: JwksResolver | undefined,
    private readonly baseOptions: JWTVerifyOptions,
  ) {}

  /**
   * Validates the settings and loads the JWKS file.
   *
   * JWKS members are kept when they can verify RS256 (`kty: RSA`, ≥ 2048-bit modulus) or ES256
   * (`kty: EC`, `crv: P-256`), have no other `alg`, `use` other than `sig`, or `key_ops` without
   * `verify`; other members are ignored. Every kept key is imported once here, so a broken key fails
   * at startup rather than on the first request.
   *
   * @throws Error (message names the file where there is one) when: neither `hs256_secret` nor
   *   `jwks_file` is set; the secret is shorter than 32 UTF-8 bytes; the file cannot be read, is not
   *   JSON, is not `{"keys":[...]}`, holds private key material (`d`), holds a key that does not
   *   import, or holds no usable RS256/ES256 key; `clock_tolerance_s` or `cache_max` is negative or
   *   not finite; `tenant_claim`/`role_claim` is empty.
   */
  static async create(settings: JwtSettings): Promise<JwtVerifier> {
    if (settings.hs256_secret === undefined && settings.jwks_file === undefined) {
      throw new Error('JWT auth needs hs256_secret or jwks_file; neither is configured');
    }
    if (!Number.isFinite(settings.clock_tolerance_s) || settings.clock_tolerance_s < 0) {
      throw new Error('JWT clock_tolerance_s must be a finite number of seconds ≥ 0');
    }
    if (!Number.isInteger(settings.cache_max) || settings.cache_max < 0) {
      throw new Error('JWT cache_max must be an integer ≥ 0');
    }
    if (settings.tenant_claim === '' || settings.role_claim === '') {
      throw new Error('JWT tenant_claim and role_claim must be non-empty claim names');
    }
    let hsKey: Uint8Array | undefined;
    if (settings.hs256_secret !== undefined) {
      hsKey = new TextEncoder().encode(settings.hs256_secret);
      if (hsKey.byteLength < MIN_SECRET_BYTES) {
        throw new Error(`JWT hs256_secret must be at least ${MIN_SECRET_BYTES} bytes (UTF-8), got ${hsKey.byteLength}`);
      }
    }
    const jwks = settings.jwks_file === undefined ? undefined : createLocalJWKSet({ keys: await loadJwksKeys(settings.jwks_file) });
    const baseOptions: JWTVerifyOptions = { clockTolerance: settings.clock_tolerance_s };
    if (settings.issuer !== undefined) baseOptions.issuer = settings.issuer;
    if (settings.audience !== undefined) baseOptions.audience = settings.audience;
    return new JwtVerifier(settings, hsKey, jwks, baseOptions);
  }

  /**
   * Cheap syntactic check used to tell JWTs from API keys: three base64url segments separated by
   * dots (RFC 7519 §3; the signature may be empty, as in an unsecured JWT, so such tokens are still
   * routed here and refused), the first decoding to a JSON object with a string `alg`. Verifies
   * nothing. Never throws.
   */
  static looksLikeJwt(token: string): boolean {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return false;
    if (!JWT_SHAPE.test(token)) return false;
    const dot1 = token.indexOf('.');
    if (dot1 > MAX_HEADER_CHARS) return false;
    try {
      const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot1), 'base64url').toString('utf8'));
      return typeof header === 'object' && header !== null && !Array.isArray(header) && typeof (header as { alg?: unknown }).alg === 'string';
    } catch {
      return false;
    }
  }

  /**
   * Synchronous cache lookup, O(1) and allocation-free: the identity of a token verified before
   * whose cache entry is still valid at `nowS` (epoch seconds): before `exp` + `clock_tolerance_s`,
   * or, for tokens without `exp`, within 5 minutes of verification. `undefined` on a miss; an
   * expired entry is dropped on the way.
   */
  cached(token: string, nowS: number): JwtIdentity | undefined {
    const entry = this.cache.get(token);
    if (entry === undefined) return undefined;
    if (nowS >= entry.validUntilS) {
      this.cache.delete(token);
      return undefined;
    }
    return nowS >= entry.validFromS ? entry.identity : undefined;
  }

  /**
   * Verifies the token (a cache hit short-cuts it) and caches the identity until its `exp` (at most
   * 5 minutes when it has none).
   *
   * The key is chosen by the header `alg`: `HS256` → the shared secret, allow-list `[HS256]`;
   * `RS256`/`ES256` → the JWKS key with the header `kid` (allow-list `[RS256, ES256]`); anything
   * else, including `none`, is refused (RFC 8725 §3.1–3.2). A token without `kid` is accepted only
   * when exactly one JWKS key fits its `alg`. Claims: `exp`/`nbf` with the clock tolerance, `iss`
   * and `aud` when configured (RFC 7519 §4.1), `sub` a non-empty string, the tenant claim (if
   * present) a non-empty string.
   *
   * @returns the frozen identity; the same object for every cache hit of that token.
   * @throws AuthError `expired_token` (`exp` passed), `token_not_yet_valid` (`nbf` in the future),
   *   `invalid_token` (everything else: malformed, bad signature, `alg` not accepted, unknown `kid`,
   *   wrong `iss`/`aud`, missing `sub`, bad tenant claim). Messages are fixed texts and claim
   *   names, never the token or claim values.
   */
  async verify(token: string): Promise<JwtIdentity> {
    const nowS = Date.now() / 1000;
    const hit = this.cached(token, nowS);
    if (hit !== undefined) return hit;
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) {
      throw new AuthError('invalid_token', 'JWT is malformed');
    }
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new AuthError('invalid_token', 'JWT is malformed');
    }
    let payload: JWTPayload;
    try {
      if (alg === 'HS256' && this.hsKey !== undefined) {
        ({ payload } = await jwtVerify(token, this.hsKey, { ...this.baseOptions, algorithms: HS_ALGORITHMS }));
      } else if ((alg === 'RS256' || alg === 'ES256') && this.jwks !== undefined) {
        ({ payload } = await jwtVerify(token, this.jwks, { ...this.baseOptions, algorithms: JWKS_ALGORITHMS }));
      } else {
        throw new AuthError('invalid_token', 'JWT algorithm is not accepted');
      }
    } catch (err) {
      throw toAuthError(err);
    }
    const identity = this.identityOf(payload);
    this.remember(token, identity, payload, Date.now() / 1000);
    return identity;
  }

  private identityOf(payload: JWTPayload): JwtIdentity {
    const { sub } = payload;
    if (typeof sub !== 'string' || sub === '') {
      throw new AuthError('invalid_token', 'JWT "sub" claim is missing or not a string');
    }
    const tenant = payload[this.settings.tenant_claim];
    let tenantId = 'default';
    if (tenant !== undefined) {
      if (typeof tenant !== 'string' || tenant === '') {
        throw new AuthError('invalid_token', `JWT "${this.settings.tenant_claim}" claim must be a non-empty string`);
      }
      tenantId = tenant;
    }
    return Object.freeze({
      sub,
      tenantId,
      role: payload[this.settings.role_claim] === 'admin' ? 'admin' : 'user',
      expiresAt: payload.exp,
    });
  }

  private remember(token: string, identity: JwtIdentity, payload: JWTPayload, nowS: number): void {
    const max = this.settings.cache_max;
    if (max === 0) return;
    const tolerance = this.settings.clock_tolerance_s;
    const entry: CacheEntry = {
      identity,
      validUntilS: payload.exp !== undefined ? payload.exp + tolerance : nowS + NO_EXP_CACHE_S,
      validFromS: payload.nbf !== undefined ? payload.nbf - tolerance : Number.NEGATIVE_INFINITY,
    };
    if (this.cache.delete(token) || this.cache.size < max) {
      this.cache.set(token, entry);
      return;
    }
    // at the bound: Map iteration order is insertion order, so the first key is the oldest
    const oldest = this.cache.keys().next();
    if (oldest.done !== true) this.cache.delete(oldest.value);
    this.cache.set(token, entry);
  }
}

/** Maps jose's errors to {@link AuthError}s with fixed, loggable messages. */
function toAuthError(err: unknown): AuthError {
  if (err instanceof AuthError) return err;
  if (err instanceof errors.JWTExpired) return new AuthError('expired_token', 'JWT has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return new AuthError('token_not_yet_valid', 'JWT is not valid yet (nbf)');
    return new AuthError('invalid_token', `JWT "${err.claim}" claim check failed`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new AuthError('invalid_token', 'JWT signature verification failed');
  if (err instanceof errors.JOSEAlgNotAllowed) return new AuthError('invalid_token', 'JWT algorithm is not accepted');
  if (err instanceof errors.JWKSNoMatchingKey) return new AuthError('invalid_token', 'JWT key id (kid) matches no configured key');
  if (err instanceof errors.JWKSMultipleMatchingKeys) return new AuthError('invalid_token', 'JWT has no key id (kid) and several configured keys match');
  if (err instanceof errors.JOSEError) return new AuthError('invalid_token', `JWT is invalid (${err.code})`);
  return new AuthError('invalid_token', 'JWT is invalid');
}

/** Which algorithm a JWKS member can verify, or `undefined` when it is not usable here. */
function jwkAlgorithm(jwk: JWK): 'RS256' | 'ES256' | undefined {
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return undefined;
  if (jwk.kty === 'RSA' && (jwk.alg === undefined || jwk.alg === 'RS256')) return 'RS256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && (jwk.alg === undefined || jwk.alg === 'ES256')) return 'ES256';
  return undefined;
}

/** Reads the JWKS file and returns its usable public keys; throws an Error naming the file otherwise. */
async function loadJwksKeys(file: string): Promise<JWK[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read JWKS file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`JWKS file ${file} is not valid JSON`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(keys)) {
    throw new Error(`JWKS file ${file} must be a JSON object with a "keys" array`);
  }
  const usable: JWK[] = [];
  for (const [index, member] of keys.entries()) {
    if (typeof member !== 'object' || member === null || Array.isArray(member)) {
      throw new Error(`JWKS file ${file}: keys[${index}] is not a JSON object`);
    }
    const jwk = member as JWK;
    const where = `keys[${index}]${typeof jwk.kid === 'string' ? ` (kid ${JSON.stringify(jwk.kid)})` : ''}`;
    if ('d' in jwk || 'k' in jwk) {
      throw new Error(`JWKS file ${file}: ${where} holds private or secret key material; the file must hold public keys only`);
    }
    const alg = jwkAlgorithm(jwk);
    if (alg === undefined) continue;
    let key: unknown;
    try {
      key = await importJWK(jwk, alg);
    } catch (err) {
      throw new Error(`JWKS file ${file}: ${where} is not a valid ${alg} public key (${(err as Error).message})`);
    }
    const modulusLength = (key as { algorithm?: { modulusLength?: unknown } }).algorithm?.modulusLength;
    if (alg === 'RS256' && (typeof modulusLength !== 'number' || modulusLength < 2048)) {
      throw new Error(`JWKS file ${file}: ${where} is an RSA key shorter than 2048 bits`);
    }
    usable.push(jwk);
  }
  if (usable.length === 0) {
    throw new Error(`JWKS file ${file} has no usable RS256 or ES256 public key`);
  }
  return usable;
}
