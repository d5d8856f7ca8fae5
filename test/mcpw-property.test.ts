/**
 * fast-check properties of the MCPW codec: decode(encode(x)) = x for every
 * type, method, flag combination (gzip on/off, encrypted on/off) and request ids over the whole
 * u64 range; random bytes, random payloads behind a valid header, and mutated valid frames
 * (flipped bytes, truncations, extensions, rewritten header fields) never throw and always give a
 * well-formed frame or error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createMcpwKey,
  decodeFrame,
  encodeFrame,
  MCPW_HEADER_BYTES,
  McpwFlags,
  McpwMethod,
  McpwType,
  type McpwDecodeOptions,
  type McpwDecodeResult,
  type McpwFrame,
} from '../src/codecs/mcpw.js';
import { MCPW_ERROR_CODES, MCPW_ERRORS } from '../src/codecs/mcpw-errors.js';

const KEY = createMcpwKey(Uint8Array.from({ length: 32 }, (_, i) => 255 - i));
const U64_MAX = 2n ** 64n - 1n;

const types = fc.constantFrom(...Object.values(McpwType));
const methods = fc.constantFrom(...Object.values(McpwMethod));
const requestIds = fc.oneof(fc.bigInt({ min: 0n, max: U64_MAX }), fc.constantFrom(0n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, U64_MAX));

/**
 * Payload values MessagePack carries exactly: JSON values (without -0, which msgpackr writes as
 * 0, and without `"__proto__"` keys, which it renames), plus `bin` (Uint8Array) and 64-bit
 * integers (bigint): those come back as numbers within ±(2^53 − 1) and are refused outside it.
 */
const payloadValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, true, false, 0, 1, -1, 2 ** 31, 2 ** 53 - 1, -(2 ** 40), 0.5, 1.7976931348623157e308),
    fc.double({ noNaN: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.bigInt({ min: -(2n ** 63n), max: U64_MAX }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.string({ maxLength: 10 }).filter((k) => k !== '__proto__'),
      tie('value'),
      { maxKeys: 5, noNullPrototype: true },
    ),
  ),
})).value;

/** A payload: nothing (zero length), a JSON-RPC-like object, or any value; sometimes large enough to cross the gzip threshold. */
const payloads = fc.oneof(
  fc.constant(undefined),
  payloadValue,
  fc.record({ name: fc.string(), arguments: fc.dictionary(fc.string().filter((k) => k !== '__proto__'), payloadValue, { noNullPrototype: true }) }),
  fc.record({ content: fc.array(fc.record({ type: fc.constant('text'), text: fc.string({ minLength: 200, maxLength: 1500 }) }), { maxLength: 4 }) }),
);

const frames: fc.Arbitrary<McpwFrame> = fc.record({ type: types, method: methods, requestId: requestIds, payload: payloads });

/** Puts the frame at a random offset of a larger buffer (like a pooled `Buffer`), or hands over a fresh `ArrayBuffer` (like uWS). */
const placements = fc.constantFrom('arraybuffer', 'offset', 'exact');
function place(bytes: Uint8Array, how: string): ArrayBuffer | Uint8Array {
  if (how === 'arraybuffer') {
    const ab = new ArrayBuffer(bytes.length);
    new Uint8Array(ab).set(bytes);
    return ab;
  }
  if (how === 'offset') {
    const backing = new Uint8Array(bytes.length + 16).fill(0xa5);
    backing.set(bytes, 7);
    return backing.subarray(7, 7 + bytes.length);
  }
  return Uint8Array.from(bytes);
}

/**
 * Typed arrays compared by content, whatever their class (msgpackr hands out `Buffer`s after gzip);
 * a bigint as the number the decoder gives for a 64-bit integer within ±(2^53 − 1).
 */
function normalize(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return { bin: Array.from(value) };
  if (Array.isArray(value)) return value.map(normalize);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Whether `value` holds a bigint outside ±(2^53 − 1): the decoder refuses those with `unsafe_integer`. */
function hasUnsafeInteger(value: unknown): boolean {
  if (typeof value === 'bigint') return value > MAX_SAFE || value < -MAX_SAFE;
  if (value instanceof Uint8Array) return false;
  if (typeof value === 'object' && value !== null) return Object.values(value).some(hasUnsafeInteger);
  return false;
}

/** The result is one of the two shapes, with every field in range. */
function expectWellFormed(result: McpwDecodeResult, input: ArrayBuffer | Uint8Array): void {
  expect(typeof result.ok).toBe('boolean');
  if (result.ok) {
    const f = result.frame;
    expect(Object.values(McpwType)).toContain(f.type);
    expect(Object.values(McpwMethod)).toContain(f.method);
    expect(f.flags & ~(McpwFlags.Gzip | McpwFlags.Encrypted)).toBe(0);
    expect(f.payloadLength).toBe(input.byteLength - MCPW_HEADER_BYTES);
    expect(typeof f.requestId).toBe('bigint');
    expect(f.requestId >= 0n && f.requestId <= U64_MAX).toBe(true);
  } else {
    const e = result.error;
    expect(MCPW_ERROR_CODES).toContain(e.code);
    expect(typeof e.message).toBe('string');
    expect(e.message.length).toBeGreaterThan(0);
    expect(e.recoverable).toBe(MCPW_ERRORS[e.code].recoverable);
    if (e.requestId !== undefined) expect(e.requestId >= 0n && e.requestId <= U64_MAX).toBe(true);
  }
}

function decodeNoThrow(input: ArrayBuffer | Uint8Array, options?: McpwDecodeOptions): McpwDecodeResult {
  let result: McpwDecodeResult | undefined;
  expect(() => {
    result = decodeFrame(input, options);
  }).not.toThrow();
  if (result === undefined) throw new Error('unreachable');
  expectWellFormed(result, input);
  return result;
}

describe('MCPW round trip', () => {
  it('decode(encode(x)) = x for every type, method, flag combination and u64 id', () => {
    fc.assert(
      fc.property(frames, fc.boolean(), fc.constantFrom(0, 64, 1024), fc.boolean(), placements, (frame, gzip, gzipThreshold, encrypt, how) => {
        const bytes = encodeFrame(frame, { gzip, gzipThreshold, ...(encrypt ? { key: KEY } : {}) });
        const result = decodeNoThrow(place(bytes, how), encrypt ? { key: KEY } : {});
        if (hasUnsafeInteger(frame.payload)) {
          // a 64-bit integer without an exact JS number is refused, naming the value
          expect(result.ok ? 'ok' : result.error.code).toBe('unsafe_integer');
          return;
        }
        if (!result.ok) throw new Error(`${result.error.code}: ${result.error.message}`);
        const f = result.frame;
        expect(f.type).toBe(frame.type);
        expect(f.method).toBe(frame.method);
        expect(f.requestId).toBe(frame.requestId);
        expect(normalize(f.payload)).toEqual(normalize(frame.payload));
        expect(f.payloadLength).toBe(bytes.length - MCPW_HEADER_BYTES);
        // flags: exactly the transforms that applied; an empty payload gets none
        const packedBytes = encodeFrame(frame).length - MCPW_HEADER_BYTES;
        const expectGzip = gzip && packedBytes > gzipThreshold;
        const expectEncrypted = encrypt && frame.payload !== undefined;
        expect(f.flags).toBe((expectGzip ? McpwFlags.Gzip : 0) | (expectEncrypted ? McpwFlags.Encrypted : 0));
      }),
      { numRuns: 600 },
    );
  });

  it('gzip on and off decode to the same value', () => {
    fc.assert(
      fc.property(frames, (frame) => {
        const plain = decodeFrame(encodeFrame(frame));
        const zipped = decodeFrame(encodeFrame(frame, { gzip: true, gzipThreshold: 0 }));
        if (hasUnsafeInteger(frame.payload)) {
          expect([plain.ok ? 'ok' : plain.error.code, zipped.ok ? 'ok' : zipped.error.code]).toEqual(['unsafe_integer', 'unsafe_integer']);
          return;
        }
        if (!plain.ok || !zipped.ok) throw new Error('decode failed');
        expect(normalize(zipped.frame.payload)).toEqual(normalize(plain.frame.payload));
        expect(zipped.frame.flags).toBe(frame.payload === undefined ? 0 : McpwFlags.Gzip);
      }),
      { numRuns: 300 },
    );
  });

  it('the request id is the big-endian u64 at offset 16, for the whole range', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), types, (requestId, type) => {
        const bytes = encodeFrame({ type, method: McpwMethod.Generic, requestId, payload: undefined });
        expect(Buffer.from(bytes.subarray(16, 24)).toString('hex')).toBe(requestId.toString(16).padStart(16, '0'));
        const result = decodeFrame(bytes);
        expect(result.ok && result.frame.requestId).toBe(requestId);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('MCPW decode never throws', () => {
  it('random bytes (up to 4 KiB), with and without a key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.boolean(), (bytes, withKey) => {
        decodeNoThrow(bytes, withKey ? { key: KEY } : {});
      }),
      { numRuns: 2000 },
    );
  });

  it('random bytes that start with the magic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (tail) => {
        const bytes = new Uint8Array(4 + tail.length);
        bytes.set([0x4d, 0x43, 0x50, 0x57]);
        bytes.set(tail, 4);
        decodeNoThrow(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('a valid header with random flags and a random payload (MessagePack, gzip and GCM fuzzing)', () => {
    fc.assert(
      fc.property(
        types,
        methods,
        fc.constantFrom(0, 1, 2, 3),
        fc.uint8Array({ maxLength: 2048 }),
        fc.bigInt({ min: 0n, max: U64_MAX }),
        fc.boolean(),
        (type, method, flags, payload, requestId, withKey) => {
          const bytes = new Uint8Array(MCPW_HEADER_BYTES + payload.length);
          const view = new DataView(bytes.buffer);
          view.setUint32(0, 0x4d435057);
          view.setUint8(4, 1);
          view.setUint8(5, type);
          view.setUint16(6, method);
          view.setUint8(8, flags);
          view.setUint32(12, payload.length);
          view.setBigUint64(16, requestId);
          bytes.set(payload, MCPW_HEADER_BYTES);
          const result = decodeNoThrow(bytes, withKey ? { key: KEY } : {});
          if (!result.ok) expect(result.error.requestId).toBe(requestId);
        },
      ),
      { numRuns: 2000 },
    );
  });

  const mutations = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ kind: fc.constant('header' as const), at: fc.integer({ min: 0, max: MCPW_HEADER_BYTES - 1 }), value: fc.integer({ min: 0, max: 255 }) }),
  );
  type Mutation = typeof mutations extends fc.Arbitrary<infer M> ? M : never;

  function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
    switch (m.kind) {
      case 'flip': {
        const out = Uint8Array.from(bytes);
        const at = m.at % out.length;
        out[at] = (out[at] ?? 0) ^ m.xor;
        return out;
      }
      case 'truncate':
        return bytes.slice(0, m.at % bytes.length);
      case 'extend': {
        const out = new Uint8Array(bytes.length + m.extra.length);
        out.set(bytes);
        out.set(m.extra, bytes.length);
        return out;
      }
      case 'header': {
        const out = Uint8Array.from(bytes);
        out[m.at] = m.value;
        return out;
      }
    }
  }

  it('mutated valid frames: flipped bytes, truncations, extensions, rewritten header bytes', () => {
    fc.assert(
      fc.property(frames, fc.boolean(), fc.boolean(), fc.array(mutations, { minLength: 1, maxLength: 3 }), (frame, gzip, encrypt, ms) => {
        let bytes = encodeFrame(frame, { gzip, gzipThreshold: 0, ...(encrypt ? { key: KEY } : {}) });
        for (const m of ms) bytes = mutate(bytes, m);
        const result = decodeNoThrow(bytes, encrypt ? { key: KEY } : {});
        // a truncation or an extension is always caught by the header (WebSocket delimits the frame)
        if (ms.length === 1 && ms[0]?.kind !== 'flip' && ms[0]?.kind !== 'header') expect(result.ok).toBe(false);
      }),
      { numRuns: 1500 },
    );
  });

  it('a flipped bit in an encrypted frame is always caught', () => {
    fc.assert(
      fc.property(frames.filter((f) => f.payload !== undefined), fc.nat(), fc.integer({ min: 0, max: 7 }), (frame, at, bit) => {
        const bytes = Uint8Array.from(encodeFrame(frame, { key: KEY }));
        const i = at % bytes.length;
        bytes[i] = (bytes[i] ?? 0) ^ (1 << bit);
        expect(decodeNoThrow(bytes, { key: KEY }).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
