/**
 * JwtVerifier with real jose keys (RS256 and ES256 key pairs in a temp JWKS file, an HS256
 * secret): valid tokens, the RFC 8725 attacks (alg none, HS256 signed with the RSA public key,
 * unknown kid), the time claims with clock tolerance, iss/aud/sub, tenant and role claims, the
 * cache (hits, expiry, bound), create() errors, and fast-check properties for looksLikeJwt and
 * tampered tokens.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwtVerifier } from '../src/auth/jwt.js';
import type { JwtSettings } from '../src/config/schema.js';
import { AuthError } from '../src/base/principal.js';
import type { AuthFailureReason } from '../src/base/principal.js';

const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowS = (): number => Math.floor(Date.now() / 1000);

let dir: string;
let jwksFile: string;
let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
let ec: { publicKey: CryptoKey; privateKey: CryptoKey };
let rsaJwk: JWK;
let ecJwk: JWK;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-jwt-'));
  rsa = await generateKeyPair('RS256', { extractable: true });
  ec = await generateKeyPair('ES256', { extractable: true });
  rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
  ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'ec-1' };
  jwksFile = await writeJson('jwks.json', { keys: [rsaJwk, ecJwk] });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeJson(name: string, doc: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
}

function settings(overrides: Partial<JwtSettings> = {}): JwtSettings {
  return {
    hs256_secret: SECRET,
    jwks_file: jwksFile,
    clock_tolerance_s: 0,
    tenant_claim: 'tenant_id',
    role_claim: 'role',
    cache_max: 100,
    ...overrides,
  };
}

/** Settings with only the keys named: `jwks` (no HS secret) or `hs` (no JWKS file). */
function only(kind: 'jwks' | 'hs', overrides: Partial<JwtSettings> = {}): JwtSettings {
  const { hs256_secret, jwks_file, ...rest } = settings(overrides);
  return kind === 'jwks' ? { ...rest, jwks_file: jwks_file as string } : { ...rest, hs256_secret: hs256_secret as string };
}

interface SignOpts {
  readonly alg?: 'HS256' | 'RS256' | 'ES256';
  readonly key?: CryptoKey | Uint8Array;
  readonly kid?: string | null;
  /** Relative to now, seconds; `null` = no exp. Default +300. */
  readonly expIn?: number | null;
  readonly nbfIn?: number;
  readonly sub?: string | null;
}

async function sign(claims: JWTPayload = {}, opts: SignOpts = {}): Promise<string> {
  const alg = opts.alg ?? 'HS256';
  const key = opts.key ?? (alg === 'HS256' ? new TextEncoder().encode(SECRET) : alg === 'RS256' ? rsa.privateKey : ec.privateKey);
  const kid = opts.kid === undefined ? (alg === 'RS256' ? 'rsa-1' : alg === 'ES256' ? 'ec-1' : undefined) : (opts.kid ?? undefined);
  const jwt = new SignJWT(claims).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).setIssuedAt();
  const sub = opts.sub === undefined ? 'user-1' : opts.sub;
  if (sub !== null) jwt.setSubject(sub);
  const expIn = opts.expIn === undefined ? 300 : opts.expIn;
  if (expIn !== null) jwt.setExpirationTime(nowS() + expIn);
  if (opts.nbfIn !== undefined) jwt.setNotBefore(nowS() + opts.nbfIn);
  return jwt.sign(key);
}

/** Expects an AuthError with this reason whose message quotes no part of the token. */
async function expectRefused(verifier: JwtVerifier, token: string, reason: AuthFailureReason, message?: RegExp): Promise<AuthError> {
  const err: unknown = await verifier.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  const authErr = err as AuthError;
  expect(authErr.reason).toBe(reason);
  if (message) expect(authErr.message).toMatch(message);
  if (token.length >= 8) expect(authErr.message).not.toContain(token);
  for (const segment of token.split('.')) if (segment.length >= 8) expect(authErr.message).not.toContain(segment);
  return authErr;
}

describe('JwtVerifier.verify: valid tokens', () => {
  it('accepts HS256, RS256 and ES256 tokens', async () => {
    const v = await JwtVerifier.create(settings());
    for (const alg of ['HS256', 'RS256', 'ES256'] as const) {
      const token = await sign({}, { alg, sub: `sub-${alg}` });
      const id = await v.verify(token);
      expect(id).toMatchObject({ sub: `sub-${alg}`, tenantId: 'default', role: 'user' });
      expect(id.expiresAt).toBeGreaterThan(nowS());
    }
  });

  it('accepts RS256 with only the JWKS file and HS256 with only the secret', async () => {
    const jwksOnly = await JwtVerifier.create(only('jwks'));
    await expect(jwksOnly.verify(await sign({}, { alg: 'RS256' }))).resolves.toMatchObject({ sub: 'user-1' });
    const hsOnly = await JwtVerifier.create(only('hs'));
    await expect(hsOnly.verify(await sign({}, { alg: 'HS256' }))).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('reads tenant and role from the configured claims', async () => {
    const v = await JwtVerifier.create(settings({ tenant_claim: 'org', role_claim: 'gw_role' }));
    expect(await v.verify(await sign({ org: 'acme', gw_role: 'admin' }))).toMatchObject({ tenantId: 'acme', role: 'admin' });
    expect(await v.verify(await sign({ org: 'acme', gw_role: 'Admin' }, { sub: 'u2' }))).toMatchObject({ tenantId: 'acme', role: 'user' });
    expect(await v.verify(await sign({ gw_role: ['admin'] }, { sub: 'u3' }))).toMatchObject({ tenantId: 'default', role: 'user' });
    // the default claim names are not consulted when others are configured
    expect(await v.verify(await sign({ tenant_id: 'other', role: 'admin' }, { sub: 'u4' }))).toMatchObject({ tenantId: 'default', role: 'user' });
  });

  it('refuses a tenant claim that is not a non-empty string', async () => {
    const v = await JwtVerifier.create(settings());
    await expectRefused(v, await sign({ tenant_id: 42 }), 'invalid_token', /tenant_id/);
    await expectRefused(v, await sign({ tenant_id: '' }), 'invalid_token', /tenant_id/);
  });

  it('reports expiresAt as the exp claim, undefined without exp; the identity is frozen', async () => {
    const v = await JwtVerifier.create(settings());
    const exp = nowS() + 1234;
    const id = await v.verify(await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('s').setExpirationTime(exp).sign(new TextEncoder().encode(SECRET)));
    expect(id.expiresAt).toBe(exp);
    expect((await v.verify(await sign({}, { expIn: null }))).expiresAt).toBeUndefined();
    expect(Object.isFrozen(id)).toBe(true);
  });
});

describe('JwtVerifier.verify: refused tokens (RFC 8725)', () => {
  it('refuses a token signed with the wrong HS256 secret', async () => {
    const v = await JwtVerifier.create(settings());
    const token = await sign({}, { key: new TextEncoder().encode('another-secret-that-is-32-bytes-long!') });
    await expectRefused(v, token, 'invalid_token', /signature/);
  });

  it('refuses alg none, in any spelling, with or without a signature', async () => {
    const v = await JwtVerifier.create(settings());
    const payload = b64url({ sub: 'admin', role: 'admin', exp: nowS() + 300 });
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await expectRefused(v, `${b64url({ alg, typ: 'JWT' })}.${payload}.`, 'invalid_token');
      await expectRefused(v, `${b64url({ alg })}.${payload}.c2ln`, 'invalid_token');
    }
    expect(JwtVerifier.looksLikeJwt(`${b64url({ alg: 'none' })}.${payload}.`)).toBe(true);
  });

  it('refuses HS256 signed with the RSA public key bytes when only the JWKS is configured', async () => {
    const v = await JwtVerifier.create(only('jwks'));
    const pem = await exportSPKI(rsa.publicKey);
    for (const secret of [pem, pem.trim(), JSON.stringify(rsaJwk)]) {
      for (const kid of [null, 'rsa-1']) {
        const token = await sign({ role: 'admin' }, { alg: 'HS256', key: new TextEncoder().encode(secret), kid });
        await expectRefused(v, token, 'invalid_token', /algorithm/);
      }
    }
  });

  it('refuses HS256 signed with the RSA public key bytes when both the secret and the JWKS are configured', async () => {
    const v = await JwtVerifier.create(settings());
    const pem = await exportSPKI(rsa.publicKey);
    for (const secret of [pem, JSON.stringify(rsaJwk)]) {
      const token = await sign({ role: 'admin' }, { alg: 'HS256', key: new TextEncoder().encode(secret), kid: 'rsa-1' });
      await expectRefused(v, token, 'invalid_token', /signature/);
    }
  });

  it('refuses RS256/ES256 when only the HS256 secret is configured, and algorithms outside the allow-list', async () => {
    const v = await JwtVerifier.create(only('hs'));
    await expectRefused(v, await sign({}, { alg: 'RS256' }), 'invalid_token', /algorithm/);
    await expectRefused(v, await sign({}, { alg: 'ES256' }), 'invalid_token', /algorithm/);
    const both = await JwtVerifier.create(settings());
    const hs512 = await new SignJWT({ sub: 's' }).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(SECRET + SECRET));
    await expectRefused(both, hs512, 'invalid_token', /algorithm/);
  });

  it('picks the JWKS key by kid: unknown kid, wrong-kind kid and a foreign key under a known kid are refused', async () => {
    const v = await JwtVerifier.create(settings());
    await expectRefused(v, await sign({}, { alg: 'RS256', kid: 'rsa-2' }), 'invalid_token', /kid/);
    await expectRefused(v, await sign({}, { alg: 'RS256', kid: 'ec-1' }), 'invalid_token', /kid/);
    const stranger = await generateKeyPair('ES256');
    await expectRefused(v, await sign({}, { alg: 'ES256', kid: 'ec-1', key: stranger.privateKey }), 'invalid_token', /signature/);
  });

  it('accepts a token without kid only when exactly one key fits its alg', async () => {
    const v = await JwtVerifier.create(settings());
    await expect(v.verify(await sign({}, { alg: 'RS256', kid: null }))).resolves.toMatchObject({ sub: 'user-1' });
    const rsa2 = await generateKeyPair('RS256', { extractable: true });
    const twoRsa = await writeJson('two-rsa.json', { keys: [rsaJwk, { ...(await exportJWK(rsa2.publicKey)), kid: 'rsa-2' }] });
    const v2 = await JwtVerifier.create(only('jwks', { jwks_file: twoRsa }));
    await expect(v2.verify(await sign({}, { alg: 'RS256', key: rsa2.privateKey, kid: 'rsa-2' }))).resolves.toMatchObject({ sub: 'user-1' });
    await expectRefused(v2, await sign({}, { alg: 'RS256', kid: null }), 'invalid_token', /several/);
  });

  it('refuses malformed tokens', async () => {
    const v = await JwtVerifier.create(settings());
    const good = await sign();
    const [h, p] = good.split('.') as [string, string, string];
    for (const token of ['', 'abc', 'a.b.c', `${h}.${p}`, `${h}.${p}.!!!`, `${h}..`, `${h}.${p}.sig.extra`, `${b64url([1])}.${p}.`, 'x'.repeat(20_000)]) {
      await expectRefused(v, token, 'invalid_token');
    }
    await expectRefused(v, `${h}.${b64url(['not', 'an', 'object'])}.${good.split('.')[2] ?? ''}`, 'invalid_token');
  });

  it('requires sub to be a non-empty string', async () => {
    const v = await JwtVerifier.create(settings());
    await expectRefused(v, await sign({}, { sub: null }), 'invalid_token', /"sub"/);
    await expectRefused(v, await sign({}, { sub: '' }), 'invalid_token', /"sub"/);
    await expectRefused(v, await sign({ sub: 42 } as unknown as JWTPayload, { sub: null }), 'invalid_token');
  });

  it('checks iss and aud when configured', async () => {
    const v = await JwtVerifier.create(settings({ issuer: 'https://idp.example', audience: 'tributary' }));
    const ok = { iss: 'https://idp.example', aud: 'tributary' };
    await expect(v.verify(await sign(ok))).resolves.toMatchObject({ sub: 'user-1' });
    await expect(v.verify(await sign({ ...ok, aud: ['other', 'tributary'] }, { alg: 'ES256' }))).resolves.toMatchObject({ sub: 'user-1' });
    await expectRefused(v, await sign({ ...ok, iss: 'https://evil.example' }), 'invalid_token', /"iss"/);
    await expectRefused(v, await sign({ aud: 'tributary' }), 'invalid_token', /"iss"/);
    await expectRefused(v, await sign({ ...ok, aud: 'other' }, { alg: 'RS256' }), 'invalid_token', /"aud"/);
    await expectRefused(v, await sign({ ...ok, aud: ['a', 'b'] }), 'invalid_token', /"aud"/);
    await expectRefused(v, await sign({ iss: ok.iss }), 'invalid_token', /"aud"/);
    // not configured: not checked
    const lax = await JwtVerifier.create(settings());
    await expect(lax.verify(await sign({ iss: 'anyone', aud: 'anything' }))).resolves.toMatchObject({ sub: 'user-1' });
  });
});

describe('JwtVerifier.verify: exp and nbf', () => {
  it('refuses an expired token with expired_token', async () => {
    const v = await JwtVerifier.create(settings());
    await expectRefused(v, await sign({}, { expIn: -60 }), 'expired_token', /expired/);
    await expectRefused(v, await sign({}, { alg: 'ES256', expIn: -1 }), 'expired_token');
  });

  it('refuses a token whose nbf is in the future with token_not_yet_valid', async () => {
    const v = await JwtVerifier.create(settings());
    await expectRefused(v, await sign({}, { nbfIn: 600 }), 'token_not_yet_valid');
    await expect(v.verify(await sign({}, { nbfIn: -10 }))).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('applies the clock tolerance to exp and nbf', async () => {
    const strict = await JwtVerifier.create(settings({ clock_tolerance_s: 0 }));
    const lenient = await JwtVerifier.create(settings({ clock_tolerance_s: 30 }));
    const justExpired = await sign({}, { expIn: -10 });
    const almostValid = await sign({}, { nbfIn: 10 });
    await expectRefused(strict, justExpired, 'expired_token');
    await expectRefused(strict, almostValid, 'token_not_yet_valid');
    await expect(lenient.verify(justExpired)).resolves.toMatchObject({ sub: 'user-1' });
    await expect(lenient.verify(almostValid)).resolves.toMatchObject({ sub: 'user-1' });
    await expectRefused(lenient, await sign({}, { expIn: -60 }), 'expired_token');
    await expectRefused(lenient, await sign({}, { nbfIn: 60 }), 'token_not_yet_valid');
  });
});

describe('JwtVerifier cache', () => {
  it('serves a verified token synchronously, as the same identity, until exp (+ tolerance)', async () => {
    const v = await JwtVerifier.create(settings({ clock_tolerance_s: 5 }));
    const token = await sign({ tenant_id: 't1' }, { alg: 'RS256', expIn: 120 });
    const now = nowS();
    expect(v.cached(token, now)).toBeUndefined();
    const id = await v.verify(token);
    const exp = id.expiresAt as number;
    expect(v.cached(token, now)).toBe(id);
    expect(v.cached(token, exp + 4)).toBe(id);
    // verify() answers from the cache too: the very same object, no second identity built
    expect(await v.verify(token)).toBe(id);
    expect(v.cached(token, exp + 5)).toBeUndefined();
    // the expired entry was dropped, not just hidden
    expect(v.cached(token, now)).toBeUndefined();
  });

  it('misses for a token whose exp has passed in real time', async () => {
    const v = await JwtVerifier.create(settings());
    const token = await sign({}, { expIn: 1 });
    const id = await v.verify(token);
    expect(v.cached(token, nowS())).toBe(id);
    await new Promise((resolve) => setTimeout(resolve, ((id.expiresAt as number) - Date.now() / 1000) * 1000 + 50));
    expect(v.cached(token, Date.now() / 1000)).toBeUndefined();
    await expectRefused(v, token, 'expired_token');
  });

  it('caches a token without exp for at most 5 minutes', async () => {
    const v = await JwtVerifier.create(settings());
    const token = await sign({}, { expIn: null });
    const before = Date.now() / 1000;
    const id = await v.verify(token);
    expect(v.cached(token, before + 299)).toBe(id);
    expect(v.cached(token, Date.now() / 1000 + 301)).toBeUndefined();
  });

  it('does not serve a cached token before its nbf (minus tolerance)', async () => {
    const v = await JwtVerifier.create(settings({ clock_tolerance_s: 30 }));
    const token = await sign({}, { nbfIn: 10 });
    const id = await v.verify(token);
    expect(v.cached(token, nowS())).toBe(id);
    expect(v.cached(token, nowS() - 100)).toBeUndefined();
  });

  it('never caches refused tokens', async () => {
    const v = await JwtVerifier.create(settings());
    const token = await sign({}, { key: new TextEncoder().encode('x'.repeat(40)) });
    await expectRefused(v, token, 'invalid_token');
    expect(v.cached(token, nowS())).toBeUndefined();
  });

  it('keeps at most cache_max tokens, evicting the oldest insertion', async () => {
    const v = await JwtVerifier.create(settings({ cache_max: 2 }));
    const [t1, t2, t3] = await Promise.all([sign({}, { sub: 'a' }), sign({}, { sub: 'b' }), sign({}, { sub: 'c' })]) as [string, string, string];
    await v.verify(t1);
    await v.verify(t2);
    const now = nowS();
    expect(v.cached(t1, now)?.sub).toBe('a');
    await v.verify(t3);
    expect(v.cached(t1, now)).toBeUndefined();
    expect(v.cached(t2, now)?.sub).toBe('b');
    expect(v.cached(t3, now)?.sub).toBe('c');
    // re-verifying t1 evicts t2, the oldest insertion now
    await v.verify(t1);
    expect(v.cached(t2, now)).toBeUndefined();
    expect(v.cached(t3, now)?.sub).toBe('c');
    expect(v.cached(t1, now)?.sub).toBe('a');
  });

  it('caches nothing with cache_max 0', async () => {
    const v = await JwtVerifier.create(settings({ cache_max: 0 }));
    const token = await sign();
    const id = await v.verify(token);
    expect(v.cached(token, nowS())).toBeUndefined();
    expect(await v.verify(token)).toEqual(id);
  });
});

describe('JwtVerifier.create errors', () => {
  async function createError(s: JwtSettings): Promise<string> {
    const err: unknown = await JwtVerifier.create(s).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    return (err as Error).message;
  }

  it('refuses settings with neither a secret nor a JWKS file', async () => {
    const { hs256_secret: _h, jwks_file: _j, ...neither } = settings();
    expect(await createError(neither)).toMatch(/neither/);
  });

  it('refuses an HS256 secret shorter than 32 bytes (UTF-8)', async () => {
    expect(await createError(only('hs', { hs256_secret: 'x'.repeat(31) }))).toMatch(/32 bytes/);
    expect(await createError(only('hs', { hs256_secret: '' }))).toMatch(/32 bytes/);
    // 16 two-byte characters are 32 bytes
    await expect(JwtVerifier.create(only('hs', { hs256_secret: 'é'.repeat(16) }))).resolves.toBeInstanceOf(JwtVerifier);
  });

  it('names the file when the JWKS cannot be used', async () => {
    const missing = path.join(dir, 'missing.json');
    expect(await createError(only('jwks', { jwks_file: missing }))).toMatch(new RegExp(`cannot read JWKS file ${missing}.*ENOENT`));
    const cases: Array<[string, unknown, RegExp]> = [
      ['not-json.json', '{"keys": [', /is not valid JSON/],
      ['array.json', '[]', /"keys" array/],
      ['no-keys.json', { kty: 'RSA' }, /"keys" array/],
      ['empty.json', { keys: [] }, /no usable RS256 or ES256/],
      ['non-object.json', { keys: ['abc'] }, /keys\[0\] is not a JSON object/],
      ['unusable.json', { keys: [{ kty: 'oct', alg: 'HS256' }, { ...rsaJwk, alg: 'RS512' }, { ...ecJwk, crv: 'P-384' }, { ...rsaJwk, use: 'enc' }, { ...ecJwk, key_ops: ['encrypt'] }] }, /no usable RS256 or ES256/],
      ['bad-point.json', { keys: [{ ...ecJwk, x: Buffer.alloc(32, 7).toString('base64url') }] }, /keys\[0\] \(kid "ec-1"\) is not a valid ES256 public key/],
    ];
    for (const [name, doc, message] of cases) {
      const file = await writeJson(name, doc);
      const text = await createError(only('jwks', { jwks_file: file }));
      expect(text).toContain(file);
      expect(text).toMatch(message);
    }
  });

  it('refuses JWKS files holding private or secret key material', async () => {
    const privateJwk = await exportJWK(rsa.privateKey);
    const file = await writeJson('private.json', { keys: [ecJwk, { ...privateJwk, kid: 'oops' }] });
    expect(await createError(only('jwks', { jwks_file: file }))).toMatch(/keys\[1\] \(kid "oops"\) holds private or secret key material/);
    const oct = await writeJson('oct.json', { keys: [rsaJwk, { kty: 'oct', k: Buffer.from(SECRET).toString('base64url') }] });
    expect(await createError(only('jwks', { jwks_file: oct }))).toMatch(/keys\[1\] holds private or secret/);
  });

  it('refuses RSA keys shorter than 2048 bits', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const file = await writeJson('weak.json', { keys: [{ ...weak, kid: 'weak' }] });
    expect(await createError(only('jwks', { jwks_file: file }))).toMatch(/shorter than 2048 bits/);
  });

  it('ignores unusable members next to usable ones', async () => {
    const file = await writeJson('mixed.json', { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA' }, ecJwk] });
    const v = await JwtVerifier.create(only('jwks', { jwks_file: file }));
    await expect(v.verify(await sign({}, { alg: 'ES256' }))).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('refuses negative tolerance, bad cache_max and empty claim names', async () => {
    expect(await createError(settings({ clock_tolerance_s: -1 }))).toMatch(/clock_tolerance_s/);
    expect(await createError(settings({ cache_max: 1.5 }))).toMatch(/cache_max/);
    expect(await createError(settings({ tenant_claim: '' }))).toMatch(/tenant_claim/);
  });
});

describe('JwtVerifier.looksLikeJwt', () => {
  it('tells signed JWTs from API keys and junk', async () => {
    for (const alg of ['HS256', 'RS256', 'ES256'] as const) expect(JwtVerifier.looksLikeJwt(await sign({}, { alg }))).toBe(true);
    for (const s of ['', 'tk_live_abcdef0123456789', 'a.b.c', 'a.b', '..', `${b64url({ alg: 'HS256' })}..sig`, `${b64url({ typ: 'JWT' })}.e30.sig`, `${b64url({ alg: 1 })}.e30.sig`, `${b64url(null)}.e30.sig`, `${b64url({ alg: 'HS256' })}.e30.sig.x`, `${b64url({ alg: 'HS256' })}.e 30.sig`]) {
      expect(JwtVerifier.looksLikeJwt(s)).toBe(false);
    }
  });

  it('never throws, and accepts exactly three base64url segments with an alg header (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.array(fc.string({ unit: 'binary' }), { maxLength: 5 }).map((parts) => parts.join('.'))), (s) => {
        const result = JwtVerifier.looksLikeJwt(s);
        if (result) expect(s.split('.')).toHaveLength(3);
      }),
    );
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.jsonValue(), fc.base64String(), (alg, payload, sig) => {
        const token = `${b64url({ alg })}.${b64url(payload) || 'e30'}.${sig.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')}`;
        expect(JwtVerifier.looksLikeJwt(token)).toBe(true);
      }),
    );
  });
});

describe('JwtVerifier properties', () => {
  it('refuses every single-character change to a valid token (except the signature tail bits)', async () => {
    const v = await JwtVerifier.create(settings());
    const tokens = [await sign({ tenant_id: 't' }), await sign({}, { alg: 'ES256' })];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...tokens), fc.nat(), fc.constantFrom(...'ABCDEFabcdef0123456789-_.=+/ '), async (token, at, replacement) => {
        // the last base64url character of a signature carries spare bits a lenient decoder ignores
        const index = at % (token.length - 1);
        fc.pre(token[index] !== replacement);
        const tampered = token.slice(0, index) + replacement + token.slice(index + 1);
        await expect(v.verify(tampered)).rejects.toBeInstanceOf(AuthError);
      }),
      { numRuns: 200 },
    );
  });
});
