/**
 * Admin password hashing with scrypt (RFC 7914) from `node:crypto`, always the asynchronous
 * `crypto.scrypt` (it runs on the libuv thread pool, not the event loop). Stored form:
 * `scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>`; comparison is constant-time
 * (`crypto.timingSafeEqual`). Messages never carry the password or the stored hash.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost parameters (RFC 7914 §2): CPU/memory cost `N`, block size `r`, parallelization `p`. */
export interface ScryptParams {
  readonly N?: number;
  readonly r?: number;
  readonly p?: number;
}

/** Defaults: N=2^14, r=8, p=1 (RFC 7914 §2 interactive-login figures), 16-byte salt, 32-byte hash. */
const DEFAULT_N = 16384;
const DEFAULT_R = 8;
const DEFAULT_P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

/** Largest accepted `N`. */
const MAX_N = 2 ** 20;
/** Largest accepted `r·p` (RFC 7914 allows up to 2^30; anything near that is a CPU bomb). */
const MAX_RP = 256;
/** Largest accepted scrypt working memory, `128·N·r` bytes (1 GiB). */
const MAX_MEMORY_BYTES = 2 ** 30;
/** Accepted salt and hash lengths in a stored string, bytes. */
const MIN_SALT_BYTES = 8;
const MAX_SALT_BYTES = 64;
const MIN_HASH_BYTES = 16;
const MAX_HASH_BYTES = 64;

const DECIMAL = /^[1-9][0-9]{0,9}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** A lone UTF-16 surrogate: such a string has no faithful UTF-8 form (it would collide with U+FFFD). */
const LONE_SURROGATE = /\p{Cs}/u;

interface ParsedHash {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/**
 * Hashes a password for storage (RFC 7914 scrypt, fresh 16-byte random salt, 32-byte derived key).
 *
 * @param password any string; encoded as UTF-8 without normalization.
 * @param params cost overrides (defaults N=16384, r=8, p=1); subject to the limits of
 *   {@link verifyPassword}.
 * @returns `scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>` (standard base64 with padding).
 * @throws Error when `params` are out of range or the password holds a lone UTF-16 surrogate
 *   (it has no faithful UTF-8 encoding).
 */
export async function hashPassword(password: string, params?: ScryptParams): Promise<string> {
  const N = params?.N ?? DEFAULT_N;
  const r = params?.r ?? DEFAULT_R;
  const p = params?.p ?? DEFAULT_P;
  const problem = paramsProblem(N, r, p);
  if (problem !== undefined) throw new Error(`invalid scrypt parameters: ${problem}`);
  if (LONE_SURROGATE.test(password)) throw new Error('password must be a well-formed Unicode string (it holds a lone surrogate)');
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, HASH_BYTES, N, r, p);
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * Checks a password against a stored {@link hashPassword} string: re-derives with the stored
 * salt, parameters and length, and compares with `crypto.timingSafeEqual`.
 *
 * @returns `true` on a match; `false` for a wrong password (and for a password holding a lone
 *   surrogate, which {@link hashPassword} never accepts).
 * @throws Error `malformed password hash: ...` when `stored` is not
 *   `scrypt$N$r$p$salt$hash`, or its parameters are absurd: N not a power of two in [2, 2^20],
 *   r·p > 256, 128·N·r > 1 GiB, salt not 8–64 bytes, hash not 16–64 bytes, non-canonical base64.
 *   The message never contains `stored`.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parsePasswordHash(stored);
  if (typeof parsed === 'string') throw new Error(`malformed password hash: ${parsed}`);
  if (LONE_SURROGATE.test(password)) return false;
  const candidate = await derive(password, parsed.salt, parsed.hash.length, parsed.N, parsed.r, parsed.p);
  return timingSafeEqual(candidate, parsed.hash);
}

/** True when `stored` parses as `scrypt$N$r$p$salt$hash` within the limits of {@link verifyPassword} (for config validation). Never throws. */
export function isPasswordHash(stored: string): boolean {
  return typeof stored === 'string' && typeof parsePasswordHash(stored) !== 'string';
}

/** The parsed hash, or a short description of what is wrong (never quoting the input). */
function parsePasswordHash(stored: string): ParsedHash | string {
  if (typeof stored !== 'string') return 'not a string';
  const parts = stored.split('$');
  if (parts.length !== 6) return 'expected scrypt$N$r$p$salt$hash';
  const [scheme, nText, rText, pText, saltText, hashText] = parts as [string, string, string, string, string, string];
  if (scheme !== 'scrypt') return 'unknown scheme (expected scrypt)';
  if (!DECIMAL.test(nText) || !DECIMAL.test(rText) || !DECIMAL.test(pText)) return 'N, r and p must be positive decimal integers';
  const N = Number(nText);
  const r = Number(rText);
  const p = Number(pText);
  const problem = paramsProblem(N, r, p);
  if (problem !== undefined) return problem;
  const salt = decodeBase64(saltText);
  if (salt === undefined || salt.length < MIN_SALT_BYTES || salt.length > MAX_SALT_BYTES) {
    return `salt must be ${MIN_SALT_BYTES}-${MAX_SALT_BYTES} bytes of canonical base64`;
  }
  const hash = decodeBase64(hashText);
  if (hash === undefined || hash.length < MIN_HASH_BYTES || hash.length > MAX_HASH_BYTES) {
    return `hash must be ${MIN_HASH_BYTES}-${MAX_HASH_BYTES} bytes of canonical base64`;
  }
  return { N, r, p, salt, hash };
}

/** Why (N, r, p) is refused, or `undefined` when acceptable. */
function paramsProblem(N: number, r: number, p: number): string | undefined {
  if (!Number.isSafeInteger(N) || !Number.isSafeInteger(r) || !Number.isSafeInteger(p) || r < 1 || p < 1) {
    return 'N, r and p must be positive integers';
  }
  if (N < 2 || N > MAX_N || (N & (N - 1)) !== 0) return `N must be a power of two between 2 and ${MAX_N}`;
  if (r * p > MAX_RP) return `r*p must be at most ${MAX_RP}`;
  if (128 * N * r > MAX_MEMORY_BYTES) return `128*N*r must be at most ${MAX_MEMORY_BYTES} bytes`;
  return undefined;
}

/** Strict base64 decode: `undefined` unless the text is the canonical encoding of its bytes. */
function decodeBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** Async scrypt with `maxmem` sized to the parameters (OpenSSL needs 128·r·(N + p + 2) bytes). */
function derive(password: string, salt: Buffer, keylen: number, N: number, r: number, p: number): Promise<Buffer> {
  const maxmem = 128 * r * (N + p + 2) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N, r, p, maxmem }, (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}
