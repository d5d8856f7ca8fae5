/**
 * The msgpackr value codec (exact round trip of JSON-like records, -0, `__proto__` keys,
 * undefined fields, no crash on random bytes) and `capPayload` (kept whole exactly when its JSON
 * text or its MessagePack fits, else a prefix of the JSON, the longest one that fits), with
 * fast-check properties; plus one real
 * LevelDB sublevel using the codec.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Level } from 'level';
import { Packr, Unpackr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { capPayload, utf8Prefix } from '../src/store/cap-payload.js';
import { decodeValue, encodeValue, msgpackCodec } from '../src/store/codec.js';

/** Deep equality that `toStrictEqual` does not quite give: Object.is leaves, same own keys in the same order, same prototypes. */
function exactlyEqual(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b);
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => exactlyEqual(v, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => exactlyEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const roundTrip = (v: unknown): unknown => decodeValue(encodeValue(v));

/** JSON values whose object keys include the awkward ones, and numbers that include -0. */
const trickyJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, true, false, 0, -0, 1, -1, 2 ** 31, 2 ** 53 - 1, -(2 ** 40), 0.5, -1e-300, 1.7976931348623157e308),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'grapheme' }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc
      .array(fc.tuple(fc.oneof(fc.constantFrom('__proto__', '__proto_', '___proto__', 'constructor', 'a', ''), fc.string()), tie('value')), {
        maxLength: 5,
      })
      .map((pairs) => JSON.parse(`{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`) as unknown),
  ),
})).value;

describe('msgpack codec', () => {
  it('sanity: the exactness check itself tells -0 from 0 and an own __proto__ key from none', () => {
    expect(exactlyEqual(-0, 0)).toBe(false);
    expect(exactlyEqual(JSON.parse('{"__proto__":1}'), {})).toBe(false);
    expect(exactlyEqual({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(false);
    expect(exactlyEqual([1, { x: 'y' }], [1, { x: 'y' }])).toBe(true);
  });

  it('round-trips fc.jsonValue() exactly (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'grapheme' }), (v) => {
        expect(exactlyEqual(roundTrip(v), v)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips records with -0, "__proto__" and "__proto_" keys exactly (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), trickyJson, { maxKeys: 6 }), trickyJson, (record, extra) => {
        const value = { ...record, extra };
        expect(exactlyEqual(roundTrip(value), value)).toBe(true);
        expect(exactlyEqual(roundTrip(extra), extra)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps -0 at the top level, in arrays and in objects', () => {
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    const v = roundTrip({ a: [0, -0, { b: -0 }], c: 0 }) as { a: [number, number, { b: number }]; c: number };
    expect(Object.is(v.a[0], 0)).toBe(true);
    expect(Object.is(v.a[1], -0)).toBe(true);
    expect(Object.is(v.a[2].b, -0)).toBe(true);
    expect(Object.is(v.c, 0)).toBe(true);
  });

  it('keeps an own "__proto__" key as data, without touching the prototype, next to "__proto_"', () => {
    const v = roundTrip(JSON.parse('{"__proto__":{"polluted":true},"__proto_":2}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__', '__proto_']);
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toEqual({ polluted: true });
    expect(v['__proto_']).toBe(2);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('drops undefined object fields like JSON.stringify, keeps the rest', () => {
    const v = roundTrip({ a: 1, error: undefined, nested: { x: undefined, y: null } });
    expect(v).toStrictEqual({ a: 1, nested: { y: null } });
    expect(Object.keys(v as object)).toEqual(['a', 'nested']);
  });

  it('plain values are plain MessagePack (no marker byte); only -0 / __proto__ take the fix-up frame', () => {
    const plain = encodeValue({ a: 1, b: [true, 'x'] });
    expect(plain[0]).not.toBe(0xc1);
    expect(new Unpackr({ useRecords: false }).unpack(plain)).toEqual({ a: 1, b: [true, 'x'] }); // any MessagePack reader
    expect(encodeValue({ a: 1, u: undefined })[0]).not.toBe(0xc1);
    expect(encodeValue({ a: -0 })[0]).toBe(0xc1);
    expect(encodeValue(JSON.parse('{"__proto__":1}'))[0]).toBe(0xc1);
  });

  it('never crashes on random bytes: decode returns a value or throws an Error (property)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 64 }), (marker, bytes) => {
        const input = marker ? Uint8Array.from([0xc1, ...bytes]) : bytes;
        try {
          decodeValue(input);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('msgpack codec in a level@10 sublevel', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('types and stores T through db.sublevel<string, T>(name, { valueEncoding: msgpackCodec<T>() })', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'trib-codec-'));
    const db = new Level<string, Uint8Array>(path.join(dir, 'db'), { valueEncoding: 'view' });
    interface Rec {
      n: number;
      tags: string[];
      opt?: string;
    }
    const sub = db.sublevel<string, Rec>('recs', { valueEncoding: msgpackCodec<Rec>() });
    const rec: Rec = { n: -0, tags: ['a', 'ü', '😀'] };
    await sub.put('k', rec);
    const back = await sub.get('k');
    expect(back).toStrictEqual(rec);
    expect(Object.is(back?.n, -0)).toBe(true);
    await db.close();
  });
});

describe('capPayload', () => {
  const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
  // an oracle written apart from cap-payload.ts: standard MessagePack, undefined fields left out
  const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, skipValues: [undefined] } as ConstructorParameters<typeof Packr>[0]);
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  /** The MessagePack size of `v` when MessagePack gives it back as JSON does, else Infinity. */
  const packedSize = (v: unknown): number => {
    const packed = packr.pack(v);
    return JSON.stringify(unpackr.unpack(packed)) === JSON.stringify(v) ? packed.length : Number.POSITIVE_INFINITY;
  };

  it('keeps values whose JSON fits, by reference', () => {
    const v = { a: [1, 2, 3], s: 'x' };
    const out = capPayload(v, 1000);
    expect(out.truncated).toBe(false);
    expect(out.value).toBe(v);
  });

  it('cuts to a prefix of the JSON at exactly the cap for ASCII', () => {
    const out = capPayload({ s: 'a'.repeat(100) }, 20);
    expect(out).toEqual({ value: '{"s":"aaaaaaaaaaaaaa', truncated: true });
    expect(bytes(out.value as string)).toBe(20);
  });

  it('never splits a multi-byte character or a surrogate pair', () => {
    // "😀" is 4 UTF-8 bytes and 2 UTF-16 units; a cap landing inside it backs off before it.
    const json = JSON.stringify('ab😀c');
    // kept whole from 8 bytes on: its MessagePack (a fixstr header and 7 bytes of UTF-8)
    expect(packedSize('ab😀c')).toBe(8);
    expect(capPayload('ab😀c', 8)).toEqual({ value: 'ab😀c', truncated: false });
    for (let cap = 0; cap < 8; cap++) {
      const out = capPayload('ab😀c', cap).value as string;
      expect(json.startsWith(out)).toBe(true);
      expect(bytes(out)).toBeLessThanOrEqual(cap);
      expect(out.includes('\ufffd')).toBe(false);
    }
    expect(capPayload('ab😀c', 6).value).toBe('"ab');
    expect(capPayload('ab😀c', 7).value).toBe('"ab😀');
  });

  it('defaults to 16 KiB', () => {
    expect(capPayload('x'.repeat(16 * 1024 - 2)).truncated).toBe(false);
    expect(capPayload('x'.repeat(16 * 1024 - 1)).truncated).toBe(true);
  });

  it('marks unserialisable values truncated instead of throwing', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    const out = capPayload(cyclic, 30);
    expect(out.truncated).toBe(true);
    expect(out.value).toMatch(/^\[unserialisable: /);
    expect(bytes(out.value as string)).toBeLessThanOrEqual(30);
    expect(capPayload(undefined, 10)).toEqual({ value: undefined, truncated: false });
    expect(() => capPayload(1, -1)).toThrow(RangeError);
  });

  it('never exceeds the cap, flags exactly, and keeps the longest fitting prefix (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), fc.integer({ min: 0, max: 400 }), (value, cap) => {
        const json = JSON.stringify(value);
        const out = capPayload(value, cap);
        expect(out.truncated).toBe(bytes(json) > cap && packedSize(value) > cap);
        if (!out.truncated) {
          expect(out.value).toBe(value);
          return;
        }
        const prefix = out.value as string;
        expect(typeof prefix).toBe('string');
        expect(json.startsWith(prefix)).toBe(true);
        expect(bytes(prefix)).toBeLessThanOrEqual(cap);
        const next = String.fromCodePoint(json.codePointAt(prefix.length) as number);
        expect(bytes(prefix + next)).toBeGreaterThan(cap);
      }),
      { numRuns: 1000 },
    );
  });

  it('utf8Prefix is the identity when the text fits', () => {
    expect(utf8Prefix('héllo', 6)).toBe('héllo');
    expect(utf8Prefix('héllo', 2)).toBe('h');
  });
});
