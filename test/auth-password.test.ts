/**
 * scrypt password hashing (RFC 7914): the stored format, round trips, wrong passwords, malformed
 * and absurd stored strings, salting, isPasswordHash, fast-check properties, and the
 * hash-password CLI run as a real process.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashPassword, isPasswordHash, verifyPassword } from '../src/base/password.js';

/** Cheap parameters for tests that hash many times; the defaults get their own test. */
const FAST = { N: 1024, r: 8, p: 1 };
const FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

const SALT16 = Buffer.alloc(16, 1).toString('base64');
const HASH32 = Buffer.alloc(32, 2).toString('base64');

/** Stored strings that must be refused, with why. */
const MALFORMED: Array<[string, string]> = [
  ['', 'empty'],
  ['scrypt', 'no fields'],
  [`bcrypt$16384$8$1$${SALT16}$${HASH32}`, 'other scheme'],
  [`scrypt$16384$8$1$${SALT16}`, 'missing hash'],
  [`scrypt$16384$8$1$${SALT16}$${HASH32}$`, 'extra field'],
  [`scrypt$1000$8$1$${SALT16}$${HASH32}`, 'N not a power of two'],
  [`scrypt$1$8$1$${SALT16}$${HASH32}`, 'N = 1'],
  [`scrypt$0$8$1$${SALT16}$${HASH32}`, 'N = 0'],
  [`scrypt$${2 ** 21}$1$1$${SALT16}$${HASH32}`, 'N > 2^20'],
  [`scrypt$${2 ** 20}$16$1$${SALT16}$${HASH32}`, '2 GiB of memory'],
  [`scrypt$16384$64$64$${SALT16}$${HASH32}`, 'r*p too large'],
  [`scrypt$16384$1$1000000$${SALT16}$${HASH32}`, 'p absurd'],
  [`scrypt$16384$0$1$${SALT16}$${HASH32}`, 'r = 0'],
  [`scrypt$016384$8$1$${SALT16}$${HASH32}`, 'leading zero'],
  [`scrypt$16384.0$8$1$${SALT16}$${HASH32}`, 'not an integer'],
  [`scrypt$-16384$8$1$${SALT16}$${HASH32}`, 'negative'],
  [`scrypt$1e4$8$1$${SALT16}$${HASH32}`, 'exponent'],
  [`scrypt$16384$8$1$${SALT16}$${HASH32.slice(0, -1)}`, 'truncated base64'],
  [`scrypt$16384$8$1$${SALT16}$${HASH32.replace(/=+$/, '')}`, 'unpadded base64'],
  [`scrypt$16384$8$1$${SALT16}$${Buffer.alloc(32, 2).toString('base64url')}!`, 'not base64'],
  [`scrypt$16384$8$1$${SALT16.replace('A', '-')}$${HASH32}`, 'base64url alphabet'],
  [`scrypt$16384$8$1$${Buffer.alloc(4).toString('base64')}$${HASH32}`, 'salt too short'],
  [`scrypt$16384$8$1$${SALT16}$${Buffer.alloc(8).toString('base64')}`, 'hash too short'],
  [`scrypt$16384$8$1$${SALT16}$${Buffer.alloc(128).toString('base64')}`, 'hash too long'],
  [`scrypt$16384$8$1$$${HASH32}`, 'empty salt'],
  [` scrypt$16384$8$1$${SALT16}$${HASH32}`, 'leading space'],
  [`scrypt$16384$8$1$${SALT16}$${HASH32}\n`, 'trailing newline'],
];

describe('hashPassword / verifyPassword', () => {
  it('encodes scrypt$16384$8$1$salt$hash by default (16-byte salt, 32-byte hash) and round-trips', async () => {
    const stored = await hashPassword('correct horse battery staple');
    const m = FORMAT.exec(stored);
    expect(m).not.toBeNull();
    const [, N, r, p, salt, hash] = m as unknown as [string, string, string, string, string, string];
    expect([N, r, p]).toEqual(['16384', '8', '1']);
    expect(Buffer.from(salt, 'base64')).toHaveLength(16);
    expect(Buffer.from(hash, 'base64')).toHaveLength(32);
    expect(await verifyPassword('correct horse battery staple', stored)).toBe(true);
    expect(await verifyPassword('correct horse battery stapl', stored)).toBe(false);
    expect(isPasswordHash(stored)).toBe(true);
  });

  it('honours custom parameters and records them', async () => {
    const stored = await hashPassword('pw', { N: 2048, r: 4, p: 2 });
    expect(stored).toMatch(/^scrypt\$2048\$4\$2\$/);
    expect(await verifyPassword('pw', stored)).toBe(true);
    expect(await verifyPassword('pw', stored.replace('$2048$4$2$', '$2048$4$1$'))).toBe(false);
  });

  it('returns false for wrong passwords, including case, whitespace and empty', async () => {
    const stored = await hashPassword('Secret-Pw', FAST);
    for (const wrong of ['secret-pw', 'Secret-Pw ', ' Secret-Pw', '', 'Secret-Pw\n', 'Secret\u2010Pw']) {
      expect(await verifyPassword(wrong, stored)).toBe(false);
    }
    expect(await verifyPassword('Secret-Pw', stored)).toBe(true);
  });

  it('returns false when the stored hash has been altered', async () => {
    const stored = await hashPassword('pw', FAST);
    const parts = stored.split('$');
    const hash = Buffer.from(parts[5] as string, 'base64');
    hash[0] = (hash[0] as number) ^ 1;
    parts[5] = hash.toString('base64');
    expect(await verifyPassword('pw', parts.join('$'))).toBe(false);
  });

  it('salts: two hashes of the same password differ and both verify', async () => {
    const a = await hashPassword('same', FAST);
    const b = await hashPassword('same', FAST);
    expect(a).not.toBe(b);
    expect(a.split('$')[4]).not.toBe(b.split('$')[4]);
    expect(await verifyPassword('same', a)).toBe(true);
    expect(await verifyPassword('same', b)).toBe(true);
  });

  it('handles non-ASCII passwords as UTF-8 without normalization', async () => {
    const stored = await hashPassword('pässwörd 🔑', FAST);
    expect(await verifyPassword('pässwörd 🔑', stored)).toBe(true);
    // NFD spelling of the same text is a different password
    expect(await verifyPassword('pässwörd 🔑'.normalize('NFD'), stored)).toBe(false);
  });

  it('refuses lone surrogates rather than letting them collide with U+FFFD', async () => {
    await expect(hashPassword('\uD800', FAST)).rejects.toThrow(/lone surrogate/);
    const replacement = await hashPassword('\uFFFD', FAST);
    expect(await verifyPassword('\uD800', replacement)).toBe(false);
    expect(await verifyPassword('\uDC00', replacement)).toBe(false);
    expect(await verifyPassword('\uFFFD', replacement)).toBe(true);
  });

  it('throws "malformed password hash" for malformed or absurd stored strings, without quoting them', async () => {
    for (const [stored, why] of MALFORMED) {
      const err: unknown = await verifyPassword('pw', stored).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, why).toBeInstanceOf(Error);
      expect((err as Error).message, why).toMatch(/^malformed password hash/);
      if (stored.length > 8) expect((err as Error).message, why).not.toContain(stored);
    }
  });

  it('refuses absurd parameters when hashing', async () => {
    for (const params of [{ N: 1000 }, { N: 2 ** 21 }, { N: 0 }, { r: 0 }, { p: 0 }, { r: 64, p: 64 }, { r: 1.5 }, { N: 2 ** 20, r: 16 }]) {
      await expect(hashPassword('pw', params)).rejects.toThrow(/invalid scrypt parameters/);
    }
  });
});

describe('isPasswordHash', () => {
  it('accepts the format and refuses everything malformed', async () => {
    expect(isPasswordHash(`scrypt$16384$8$1$${SALT16}$${HASH32}`)).toBe(true);
    expect(isPasswordHash(await hashPassword('x', FAST))).toBe(true);
    for (const [stored, why] of MALFORMED) expect(isPasswordHash(stored), why).toBe(false);
    expect(isPasswordHash('plaintext-password')).toBe(false);
  });

  it('never throws, and agrees with verifyPassword on arbitrary strings (property)', async () => {
    const near = fc
      .tuple(fc.constantFrom('scrypt', 'SCRYPT', 'x'), fc.string(), fc.string(), fc.string(), fc.base64String(), fc.base64String())
      .map((parts) => parts.join('$'));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary' }), near), async (s) => {
        if (!isPasswordHash(s)) await expect(verifyPassword('pw', s)).rejects.toThrow(/^malformed password hash/);
      }),
      { numRuns: 300 },
    );
  });
});

describe('password properties', () => {
  it('no other string verifies against a hash (property)', async () => {
    const password = 'the-admin-password';
    const stored = await hashPassword(password, FAST);
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary' }), fc.string().map((s) => password + s), fc.constant(password.toUpperCase())), async (candidate) => {
        fc.pre(candidate !== password);
        expect(await verifyPassword(candidate, stored)).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('every well-formed string round-trips (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme' }), async (password) => {
        expect(await verifyPassword(password, await hashPassword(password, { N: 256, r: 8, p: 1 }))).toBe(true);
      }),
      { numRuns: 30 },
    );
  });
});

describe('hash-password CLI', () => {
  const CLI = path.join(import.meta.dirname, '../src/auth/hash-password-cli.ts');
  const run = (args: string[], input: string): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { input, encoding: 'utf8', timeout: 20_000 });

  it('hashes the first line of stdin (CRLF stripped)', async () => {
    const r = run([], 's3cret pass\r\nsecond line\n');
    expect(r.status, String(r.stderr)).toBe(0);
    const stored = String(r.stdout).trim();
    expect(isPasswordHash(stored)).toBe(true);
    expect(stored).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('s3cret pass', stored)).toBe(true);
  });

  it('hashes stdin without a trailing newline, and argv[2] in preference to stdin', async () => {
    const r1 = run([], 'no-newline');
    expect(await verifyPassword('no-newline', String(r1.stdout).trim())).toBe(true);
    const r2 = run(['from-argv'], 'from-stdin\n');
    expect(r2.status).toBe(0);
    expect(await verifyPassword('from-argv', String(r2.stdout).trim())).toBe(true);
  });

  it('exits 1 with a message on empty input', () => {
    for (const r of [run([], ''), run([], '\n'), run([''], 'ignored\n')]) {
      expect(r.status).toBe(1);
      expect(String(r.stdout)).toBe('');
      expect(String(r.stderr)).toMatch(/empty password/);
    }
  });
});
