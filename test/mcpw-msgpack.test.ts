/**
 * The hand-written MessagePack of MCPW payloads (src/codecs/mcpw-msgpack.ts) against msgpackr, the
 * reference it must equal: byte for byte when packing, value for value when unpacking, and the
 * fall-back to msgpackr for everything outside the plain subset. Also the tool result's bytes
 * reused by an MCPW reply (src/codecs/packed-payloads.ts): they are the bytes the reply would pack.
 */
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { scanMsgpack } from '../src/codecs/depth.js';
import { decodeFrame, encodeFrame, McpwMethod, McpwType } from '../src/codecs/mcpw.js';
import { NOT_PLAIN, packPlain, unpackPlain } from '../src/codecs/mcpw-msgpack.js';
import { packedOf, receivedPackedOf, rememberPacked } from '../src/codecs/packed-payloads.js';
import { capPayloadPacked } from '../src/store/cap-payload.js';

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

describe('a tool result packed by the tool log is the MCPW reply payload', () => {
  const objects = fc.dictionary(fc.string().filter((k) => k !== '__proto__'), plainValue, { maxKeys: 8, noNullPrototype: true });

  it('the bytes capPayloadPacked remembers are the bytes the reply packs', () => {
    fc.assert(
      fc.property(objects, (v) => {
        const { bytes, truncated } = capPayloadPacked(v, 1 << 20, false, true);
        const remembered = packedOf(v);
        // remembered exactly when the value itself was kept (not its JSON text)
        if (remembered === undefined) return;
        expect(truncated).toBe(false);
        expect(hex(remembered)).toBe(hex(bytes));
        expect(hex(remembered)).toBe(hex(packPlain(v, 0) as Uint8Array));
      }),
      { numRuns: 300 },
    );
  });

  it('encodeFrame copies remembered bytes in (the check can fail: other bytes remembered are what goes out)', () => {
    const result = { content: [{ type: 'text', text: 'Echo: hello' }] };
    const frame = { type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 9n, payload: result } as const;
    const fresh = Uint8Array.from(encodeFrame(frame));
    capPayloadPacked(result, 16 * 1024, false, true);
    expect(packedOf(result)).toBeDefined();
    expect(hex(encodeFrame(frame))).toBe(hex(fresh));
    // a deliberately wrong entry shows the bytes are taken as they are
    rememberPacked(result, reference.pack({ other: true }));
    const decoded = decodeFrame(encodeFrame(frame));
    expect(decoded).toMatchObject({ ok: true, frame: { payload: { other: true } } });
  });

  it('is not remembered unless asked, nor for a value kept as JSON text or cut', () => {
    const a = { n: 1 };
    capPayloadPacked(a, 1024);
    expect(packedOf(a)).toBeUndefined();
    const big = { text: 'x'.repeat(5000) };
    capPayloadPacked(big, 1024, false, true);
    expect(packedOf(big)).toBeUndefined();
    const lone = { text: '\ud800' };
    capPayloadPacked(lone, 1024, false, true);
    expect(packedOf(lone)).toBeUndefined();
  });
});

/** A tools/call request frame around the payload given in hex. */
function frameOf(payloadHex: string): Uint8Array {
  const payload = Buffer.from(payloadHex, 'hex');
  const frame = Buffer.concat([Buffer.from('4d4350570101000300000000', 'hex'), Buffer.alloc(12), payload]);
  frame.writeUInt32BE(payload.length, 12);
  return frame;
}

function hasNonFinite(v: unknown): boolean {
  if (typeof v === 'number') return !Number.isFinite(v);
  if (Array.isArray(v)) return v.some(hasNonFinite);
  if (typeof v === 'object' && v !== null) return Object.values(v).some(hasNonFinite);
  return false;
}

describe('an MCPW tools/call\'s arguments are kept as the client sent them', () => {
  const call = (args: unknown, type: McpwType = McpwType.Request, method: McpwMethod = McpwMethod.ToolsCall): Uint8Array =>
    encodeFrame({ type, method, requestId: 3n, payload: { name: 'demo-echo', arguments: args } });
  const argsOf = (frame: Uint8Array): unknown => {
    const d = decodeFrame(frame);
    if (!d.ok) throw new Error(d.error.message);
    return (d.frame.payload as { arguments: unknown }).arguments;
  };

  it('the bytes remembered for the decoded arguments are the client\'s, and decode to them', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string().filter((k) => k !== '__proto__'), plainValue, { maxKeys: 6, noNullPrototype: true }), (sent) => {
        const args = argsOf(call(sent));
        const bytes = receivedPackedOf(args);
        // floats JSON cannot carry (NaN, ±Infinity; msgpackr writes -0 as the integer 0) leave them unremembered
        if (hasNonFinite(sent)) {
          expect(bytes).toBeUndefined();
          return;
        }
        expect(bytes).toBeDefined();
        if (bytes === undefined) return;
        expect(hex(bytes)).toBe(hex(reference.pack(args)));
        expect(referenceUnpackr.unpack(bytes)).toEqual(args);
        // the tool log keeps them as they are
        expect(hex(capPayloadPacked(args, 1 << 20, false, false, true).bytes)).toBe(hex(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('a client\'s own encoding (wider headers than needed) is kept as sent', () => {
    // {"name":"t","arguments":{"k":"v"}} with str 16 / map 16 headers where fix ones would do
    const args = argsOf(frameOf('82a46e616d65a174a9617267756d656e7473de0001da00016bda000176'));
    expect(args).toEqual({ k: 'v' });
    expect(hex(receivedPackedOf(args) as Uint8Array)).toBe('de0001da00016bda000176');
    expect(hex(capPayloadPacked(args, 1024, false, false, true).bytes)).toBe('de0001da00016bda000176');
    // over the cap: the usual rule (a cut of the JSON text), not the sent bytes
    expect(capPayloadPacked(args, 4, false, false, true).truncated).toBe(true);
    // the check can fail: without `received` the tool log packs its own (smallest) encoding
    expect(hex(capPayloadPacked(args, 1024).bytes)).toBe('81a16ba176');
  });

  it('not for odd values, other frames, or arguments that are not a map or array', () => {
    expect(receivedPackedOf(argsOf(call({ x: NaN })))).toBeUndefined();
    // {"name":"t","arguments":{"x":-0.0}} with -0 as a float 64
    const minusZero = frameOf('82a46e616d65a174a9617267756d656e747381a178cb8000000000000000');
    expect(Object.is((argsOf(minusZero) as { x: number }).x, -0)).toBe(true);
    expect(receivedPackedOf(argsOf(minusZero))).toBeUndefined();
    expect(receivedPackedOf(argsOf(call({ x: Infinity })))).toBeUndefined();
    const bad = Buffer.from(call({ s: 'éé' }));
    // break the UTF-8 of the string (its first byte 0xc3 becomes 0xff)
    bad[bad.lastIndexOf(0xc3)] = 0xff;
    expect(receivedPackedOf(argsOf(bad))).toBeUndefined();
    expect(receivedPackedOf(argsOf(call({ a: 1 }, McpwType.Notification)))).toBeUndefined();
    expect(receivedPackedOf(argsOf(call({ a: 1 }, McpwType.Request, McpwMethod.ToolsList)))).toBeUndefined();
    expect(receivedPackedOf(argsOf(call({ a: 1 })))).toBeDefined();
    expect(receivedPackedOf(argsOf(call([1, 2])))).toBeDefined();
  });
});
