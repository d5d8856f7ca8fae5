/**
 * The depth scanners of src/codecs/depth.ts against a recursive reference, with fast-check: JSON
 * bytes and text (strings full of quotes, backslashes and brackets; indented or compact),
 * MessagePack from msgpackr (maps, arrays, bin, 64-bit integers), random bytes; and the deep inputs
 * that overflow recursive code (100,000 levels).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Packr, Unpackr } from 'msgpackr';
import { MAX_NESTING_DEPTH, jsonDepthExceeded, jsonTextDepthExceeded, scanMsgpack } from '../src/codecs/depth.js';
import { formatIoTsErrors } from '../src/base/io-ts-errors.js';
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';

/** Reference: containers on the deepest path (recursive; only for the small values generated here). */
function depthOf(value: unknown): number {
  if (value instanceof Uint8Array) return 0;
  if (Array.isArray(value)) return 1 + value.reduce((m: number, v) => Math.max(m, depthOf(v)), 0);
  if (typeof value === 'object' && value !== null) return 1 + Object.values(value).reduce((m: number, v) => Math.max(m, depthOf(v)), 0);
  return 0;
}

/** Strings that stress the string skipping: quotes, runs of backslashes, brackets, multi-byte UTF-8. */
const trickyString = fc.string({ unit: fc.constantFrom('"', '\\', '\\\\', '[', ']', '{', '}', 'a', 'é', '\n', '\u2028', '😀', ':', ','), maxLength: 12 });

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'medium', maxDepth: 14 },
    fc.constantFrom(null, true, false, 0, -1, 1.5, 1e300),
    trickyString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(trickyString, tie('value'), { maxKeys: 4, noNullPrototype: true }),
  ),
})).value;

const limits = fc.integer({ min: 0, max: 16 });
const text = (v: unknown, indent: boolean): string => JSON.stringify(v, null, indent ? 2 : undefined);

describe('jsonDepthExceeded / jsonTextDepthExceeded', () => {
  it('refuse exactly the values deeper than the limit, pointing at an opening bracket', () => {
    fc.assert(
      fc.property(jsonValue, limits, fc.boolean(), (v, limit, indent) => {
        const s = text(v, indent);
        const bytes = Buffer.from(s, 'utf8');
        const deeper = depthOf(v) > limit;
        const at = jsonDepthExceeded(bytes, limit);
        expect(at >= 0).toBe(deeper);
        if (at >= 0) expect(['[', '{']).toContain(String.fromCharCode(bytes[at] ?? 0));
        const atText = jsonTextDepthExceeded(s, limit);
        expect(atText >= 0).toBe(deeper);
        if (atText >= 0) expect(['[', '{']).toContain(s[atText]);
      }),
      { numRuns: 2000 },
    );
  });

  it('with the default limit: 128 levels pass, 129 do not; 100,000 levels are refused without a stack overflow', () => {
    const nest = (n: number): string => '['.repeat(n) + ']'.repeat(n);
    expect(jsonDepthExceeded(Buffer.from(nest(MAX_NESTING_DEPTH)))).toBe(-1);
    expect(jsonDepthExceeded(Buffer.from(nest(MAX_NESTING_DEPTH + 1)))).toBe(MAX_NESTING_DEPTH);
    const huge = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    expect(jsonDepthExceeded(Buffer.from(huge))).toBeGreaterThan(0);
    expect(jsonTextDepthExceeded(huge)).toBeGreaterThan(0);
    // brackets inside strings do not count, however many
    const inString = JSON.stringify({ s: '['.repeat(10_000) + '\\"' + '{'.repeat(10_000) });
    expect(jsonDepthExceeded(Buffer.from(inString))).toBe(-1);
  });

  it('never throw on arbitrary bytes and text (a bound, not a validator)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.string({ maxLength: 300 }), limits, (bytes, s, limit) => {
        const a = jsonDepthExceeded(bytes, limit);
        expect(a >= -1 && a < Math.max(bytes.length, 1)).toBe(true);
        const b = jsonTextDepthExceeded(s, limit);
        expect(b >= -1 && b < Math.max(s.length, 1)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('scanMsgpack', () => {
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
  const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

  const msgpackValue = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'medium', maxDepth: 14 },
      fc.constantFrom(null, true, false, 0, -1, 127, 128, -33, 65_536, 2 ** 32, -(2 ** 40), 0.25),
      // msgpackr writes -0 as 0
      fc.double({ noNaN: true }).filter((d) => !Object.is(d, -0)),
      fc.string({ maxLength: 40 }),
      fc.string({ minLength: 256, maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 4, noNullPrototype: true }),
    ),
  })).value;

  function hasUnsafe(v: unknown): boolean {
    if (typeof v === 'bigint') return v > MAX_SAFE || v < -MAX_SAFE;
    if (v instanceof Uint8Array) return false;
    if (typeof v === 'object' && v !== null) return Object.values(v).some(hasUnsafe);
    return false;
  }

  function asNumbers(v: unknown): unknown {
    if (typeof v === 'bigint') return Number(v);
    if (v instanceof Uint8Array) return Array.from(v);
    if (Array.isArray(v)) return v.map(asNumbers);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asNumbers(x)]));
    return v;
  }

  it('too_deep exactly when the value is deeper than the limit', () => {
    fc.assert(
      fc.property(msgpackValue.filter((v) => !hasUnsafe(v)), limits, (v, limit) => {
        const r = scanMsgpack(packr.pack(v), limit);
        expect(r.kind === 'too_deep').toBe(depthOf(v) > limit);
      }),
      { numRuns: 2000 },
    );
  });

  it('unsafe_integer exactly when a 64-bit integer is outside ±(2^53 − 1); otherwise every integer decodes as the same number', () => {
    fc.assert(
      fc.property(msgpackValue, (v) => {
        const bytes = packr.pack(v);
        const r = scanMsgpack(bytes, 1000);
        expect(r.kind === 'unsafe_integer').toBe(hasUnsafe(v));
        if (r.kind === 'ok') expect(asNumbers(unpackr.unpack(bytes))).toEqual(asNumbers(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('names the exact value of the int 64 edges', () => {
    const int64 = (v: bigint): Uint8Array => {
      const b = Buffer.alloc(9);
      b[0] = 0xd3;
      b.writeBigInt64BE(v, 1);
      return b;
    };
    const limit = 2n ** 53n - 1n;
    expect(scanMsgpack(int64(limit)).kind).toBe('ok');
    expect(scanMsgpack(int64(-limit)).kind).toBe('ok');
    expect(scanMsgpack(int64(limit + 1n))).toEqual({ kind: 'unsafe_integer', offset: 0, value: '9007199254740992' });
    expect(scanMsgpack(int64(-limit - 1n))).toEqual({ kind: 'unsafe_integer', offset: 0, value: '-9007199254740992' });
    expect(scanMsgpack(int64(-(2n ** 63n)))).toMatchObject({ kind: 'unsafe_integer', value: '-9223372036854775808' });
  });

  it('100,000 nested arrays and maps are refused without a stack overflow; 128 levels pass', () => {
    const arrays = Buffer.concat([Buffer.alloc(100_000, 0x91), Uint8Array.of(0xc0)]);
    expect(scanMsgpack(arrays)).toEqual({ kind: 'too_deep', offset: MAX_NESTING_DEPTH });
    // fixmap {"" : …}: 0x81 0xa0 per level
    const maps = Buffer.concat([Buffer.from('81a0'.repeat(100_000), 'hex'), Uint8Array.of(0x01)]);
    expect(scanMsgpack(maps).kind).toBe('too_deep');
    const atLimit = Buffer.concat([Buffer.alloc(MAX_NESTING_DEPTH, 0x91), Uint8Array.of(0x01)]);
    expect(scanMsgpack(atLimit).kind).toBe('ok');
  });

  it('never throws on random bytes or truncated/mutated valid payloads', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), limits, (bytes, limit) => {
        const r = scanMsgpack(bytes, limit);
        expect(['ok', 'too_deep', 'unsafe_integer']).toContain(r.kind);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(msgpackValue, fc.nat(), fc.nat(255), (v, cut, flip) => {
        const bytes = Uint8Array.from(packr.pack(v));
        const n = cut % (bytes.length + 1);
        expect(() => scanMsgpack(bytes.subarray(0, n))).not.toThrow();
        if (bytes.length > 0) bytes[cut % bytes.length] = flip;
        expect(() => scanMsgpack(bytes)).not.toThrow();
      }),
      { numRuns: 1000 },
    );
  });
});

describe('formatIoTsErrors', () => {
  it('names a value too deep to print instead of throwing (a deep `_meta.progressToken`)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { x: deep };
    const codec = t.type({ progressToken: t.union([t.string, t.number]) });
    const result = codec.decode({ progressToken: deep });
    if (!isLeft(result)) throw new Error('expected a decode failure');
    expect(formatIoTsErrors(result.left, 'params')).toEqual(['progressToken: expected string, got an object', 'progressToken: expected number, got an object']);
  });
});
