/**
 * The hand-written MessagePack of MCPW payloads (src/codecs/mcpw-msgpack.ts) against msgpackr, the
 * reference it must equal: byte for byte when packing, value for value when unpacking, and the
 * fall-back to msgpackr for everything outside the plain subset.
 */
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { scanMsgpack } from '../src/codecs/depth.js';
import { decodeFrame, encodeFrame, McpwMethod, McpwType } from '../src/codecs/mcpw.js';
import { NOT_PLAIN, packPlain, unpackPlain } from '../src/codecs/mcpw-msgpack.js';

/** msgpackr with the MCPW options (src/codecs/mcpw.ts). */
const reference = new Packr({ useRecords: false, encodeUndefinedAsNil: true, skipValues: [undefined] } as ConstructorParameters<typeof Packr>[0]);
const referenceUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Strings of every kind: ASCII of every header size, any UTF-16 (lone surrogates included), Latin-1, emoji. */
const strings = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 80 }),
  fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 300 }),
  fc.constantFrom('', 'a'.repeat(31), 'a'.repeat(32), 'a'.repeat(63), 'a'.repeat(64), 'a'.repeat(255), 'a'.repeat(256), 'é'.repeat(128), 'x'.repeat(65_535), 'y'.repeat(65_536), '😀'.repeat(20)),
);

const numbers = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53) + 1, 0.1, NaN, Infinity, -Infinity),
);

const plainValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, true, false, undefined),
    numbers,
    strings,
    fc.array(tie('value'), { maxLength: 20 }),
    fc.dictionary(strings.filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 20, noNullPrototype: true }),
  ),
})).value;

describe('packPlain writes what msgpackr writes', () => {
  it('the same bytes for any JSON-like value (undefined fields left out, -0 as 0, lone surrogates as U+FFFD)', () => {
    fc.assert(
      fc.property(plainValue, (v) => {
        const mine = packPlain(v, 0);
        expect(mine).toBeDefined();
        expect(hex(mine as Uint8Array)).toBe(hex(reference.pack(v)));
      }),
      { numRuns: 400 },
    );
  });

  it('maps and arrays of every header size', () => {
    for (const n of [0, 15, 16, 65_535, 65_536]) {
      const arr = Array.from({ length: n }, (_, i) => i % 200);
      const obj = Object.fromEntries(arr.map((_, i) => [`k${i}`, i]));
      expect(hex(packPlain(arr, 0) as Uint8Array)).toBe(hex(reference.pack(arr)));
      expect(hex(packPlain(obj, 0) as Uint8Array)).toBe(hex(reference.pack(obj)));
    }
  });

  it('leaves anything else to msgpackr: undefined for class instances, Map, Date, bytes, bigint, null-prototype objects, deep nesting', () => {
    class Point {
      x = 1;
    }
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    for (const v of [new Point(), new Map([[1, 2]]), new Date(0), new Uint8Array(3), 5n, Object.create(null) as object, { a: [new Date(0)] }, deep, () => 1, Symbol('s')]) {
      expect(packPlain(v, 0)).toBeUndefined();
    }
    // ...and encodeFrame still packs them, through msgpackr
    expect(decodeFrame(encodeFrame({ type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 1n, payload: { when: new Date(0), bytes: new Uint8Array([1, 2]) } }), { copyBinary: true })).toMatchObject({
      ok: true,
      frame: { payload: { when: new Date(0), bytes: new Uint8Array([1, 2]) } },
    });
  });

  it('reserves the header bytes, and an earlier result stays intact after later packs (a new slab when one fills)', () => {
    const first = packPlain({ text: 'z'.repeat(1000) }, 24) as Uint8Array;
    const copy = Uint8Array.from(first);
    expect(hex(first.subarray(24))).toBe(hex(reference.pack({ text: 'z'.repeat(1000) })));
    for (let i = 0; i < 600; i++) packPlain({ i, text: 'q'.repeat(1000 + i) }, 24);
    expect(Uint8Array.from(first)).toEqual(copy);
  });
});

describe('unpackPlain reads what msgpackr reads', () => {
  it('the same value for any JSON-like payload', () => {
    fc.assert(
      fc.property(plainValue, (v) => {
        const bytes = reference.pack(v);
        expect(unpackPlain(bytes)).toEqual(referenceUnpackr.unpack(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it('the same value as msgpackr, or NOT_PLAIN, for any bytes (mutations, truncations, foreign encodings, bad UTF-8)', () => {
    const mutated = fc
      .tuple(plainValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
      .map(([v, flips, cut]) => {
        const b = Uint8Array.from(reference.pack(v));
        for (const [at, byte] of flips) if (b.length > 0) b[at % b.length] = byte;
        return cut % 4 === 0 && b.length > 1 ? b.subarray(0, cut % b.length) : b;
      });
    const raw = fc.uint8Array({ minLength: 1, maxLength: 200 });
    fc.assert(
      fc.property(fc.oneof(mutated, raw), (bytes) => {
        // the codec runs the scan first (depth and 64-bit integers); so does this check
        if (scanMsgpack(bytes, 127).kind !== 'ok') return;
        let expected: unknown;
        let threw = false;
        try {
          expected = referenceUnpackr.unpack(bytes);
        } catch {
          threw = true;
        }
        const mine = unpackPlain(bytes);
        if (mine === NOT_PLAIN) return;
        expect(threw).toBe(false);
        expect(mine).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('hands bin, ext, non-string keys and __proto__ keys to msgpackr (NOT_PLAIN)', () => {
    const plainPackr = new Packr({ useRecords: false });
    for (const v of [{ a: new Uint8Array([1]) }, new Date(0), new Map([[1, 'x']]), { ['__proto__']: 1 }]) {
      expect(unpackPlain(plainPackr.pack(v))).toBe(NOT_PLAIN);
    }
    // a `__proto__` key built as an own property (JSON.parse does this)
    expect(unpackPlain(reference.pack(JSON.parse('{"__proto__":{"polluted":1}}') as unknown))).toBe(NOT_PLAIN);
    expect(decodeFrame(encodeFrame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 2n, payload: JSON.parse('{"__proto__":1,"a":2}') as unknown }))).toMatchObject({
      ok: true,
      frame: { payload: { __proto_: 1, a: 2 } },
    });
  });

  it('decodes long ASCII and non-ASCII strings, and keeps no reference to the bytes', () => {
    const text = 'abc '.repeat(1024);
    const bytes = Uint8Array.from(reference.pack({ message: text, other: 'ünïcödé '.repeat(100) }));
    const v = unpackPlain(bytes) as { message: string; other: string };
    bytes.fill(0);
    expect(v.message).toBe(text);
    expect(v.other).toBe('ünïcödé '.repeat(100));
  });
});
