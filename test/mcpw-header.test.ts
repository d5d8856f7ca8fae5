/**
 * The in-place header read (`readHeader` into reusable `McpwHeaderFields`) and the header checks
 * `decodeHeader`/`decodeFrame` share, against the DataView decoder they replaced (kept below
 * as the reference, verbatim apart from names): for random bytes, frames with random header
 * bytes and mutated valid frames, in every placement (uWS `ArrayBuffer`, `Buffer` at an offset),
 * nothing throws and all three agree — same validity, same fields, same error code, message and
 * request id. Plus `decodeFramePayload` = `decodeFrame`, and the gzip helpers of the `/ws` reply
 * policy (`gzipFrame`, `gzipFrameOffLoop`) round-trip.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  decodeFramePayload,
  decodeHeader,
  encodeFrame,
  gzipFrame,
  gzipFrameOffLoop,
  MCPW_HEADER_BYTES,
  McpwFlags,
  McpwHeaderFields,
  McpwMethod,
  McpwType,
  readHeader,
  type McpwHeaderResult,
} from '../src/codecs/mcpw.js';
import { mcpwError, type McpwErrorCode } from '../src/codecs/mcpw-errors.js';

const U64_MAX = 2n ** 64n - 1n;
const MAX_PAYLOAD = 16 * 1024 * 1024;

// ---- the reference: the header decoder before the in-place read (DataView, a result object per call)

function hex(value: number, digits: number): string {
  return `0x${value.toString(16).toUpperCase().padStart(digits, '0')}`;
}
function fail(code: McpwErrorCode, message: string, requestId?: bigint): McpwHeaderResult {
  return { ok: false, error: mcpwError(code, message, requestId) };
}
const MAGIC_BYTES = [0x4d, 0x43, 0x50, 0x57] as const;

function referenceDecodeHeader(input: ArrayBuffer | Uint8Array, maxPayloadBytes = MAX_PAYLOAD): McpwHeaderResult {
  const view = input instanceof ArrayBuffer ? new DataView(input) : new DataView(input.buffer, input.byteOffset, input.byteLength);
  const size = view.byteLength;
  if (size >= 4) {
    const magic = view.getUint32(0);
    if (magic !== 0x4d435057) return fail('bad_magic', `bad magic ${hex(magic, 8)}, expected ${hex(0x4d435057, 8)} ("MCPW")`);
  } else {
    for (let i = 0; i < size; i++) {
      if (view.getUint8(i) !== MAGIC_BYTES[i]) return fail('bad_magic', `bad magic: byte ${i} is ${hex(view.getUint8(i), 2)}, expected ${hex(MAGIC_BYTES[i] ?? 0, 2)}`);
    }
  }
  if (size < 24) return fail('truncated_header', `frame is ${size} bytes, shorter than the 24-byte header`);
  const requestId = view.getBigUint64(16);
  const word1 = view.getUint32(4);
  const version = word1 >>> 24;
  if (version !== 1) return fail('bad_version', `unsupported version ${hex(version, 2)}, expected ${hex(1, 2)}`, requestId);
  const type = (word1 >>> 16) & 0xff;
  if (type < 1 || type > 7) return fail('unknown_type', `unknown frame type ${hex(type, 2)}, expected 0x01-0x07`, requestId);
  const method = word1 & 0xffff;
  if (method > 6) return fail('unknown_method', `unknown method ${hex(method, 4)}, expected 0x0000-0x0006`, requestId);
  const word2 = view.getUint32(8);
  const flags = word2 >>> 24;
  if ((flags & ~3) !== 0) return fail('reserved_bits', `reserved flag bits set: flags ${hex(flags, 2)}, only bits 0-1 may be set`, requestId);
  if ((word2 & 0xffffff) !== 0) return fail('reserved_bytes', `reserved bytes 9-11 are ${hex(word2 & 0xffffff, 6)}, expected 0x000000`, requestId);
  const payloadLength = view.getUint32(12);
  if (payloadLength > maxPayloadBytes) return fail('payload_too_large', `declared payload length ${payloadLength} bytes is over the limit of ${maxPayloadBytes} bytes`, requestId);
  if (payloadLength !== size - 24) return fail('length_mismatch', `declared payload length ${payloadLength} bytes, frame carries ${size - 24}`, requestId);
  return { ok: true, header: { type: type as McpwType, method: method as McpwMethod, flags, payloadLength, requestId } };
}

// ---- inputs

/** A header whose every field is drawn near the valid ranges (so each check fails sometimes), and a body. */
const headerish = fc
  .record({
    magic: fc.oneof({ weight: 6, arbitrary: fc.constant(0x4d435057) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) }),
    version: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
    type: fc.integer({ min: 0, max: 9 }),
    method: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 0xffff })),
    flags: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
    reserved: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffff }) }),
    body: fc.uint8Array({ maxLength: 64 }),
    lengthDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }, { weight: 1, arbitrary: fc.constant(MAX_PAYLOAD) }),
    requestId: fc.oneof(fc.bigInt({ min: 0n, max: U64_MAX }), fc.constantFrom(0n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 32n - 1n, 2n ** 32n, U64_MAX)),
    cut: fc.oneof({ weight: 8, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 30 }) }),
  })
  .map((h) => {
    const bytes = new Uint8Array(MCPW_HEADER_BYTES + h.body.length);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, h.magic);
    view.setUint8(4, h.version);
    view.setUint8(5, h.type);
    view.setUint16(6, h.method);
    view.setUint32(8, ((h.flags << 24) | h.reserved) >>> 0);
    view.setUint32(12, Math.max(0, Math.min(0xffff_ffff, h.body.length + h.lengthDelta)));
    view.setBigUint64(16, h.requestId);
    bytes.set(h.body, MCPW_HEADER_BYTES);
    return h.cut >= 0 ? bytes.slice(0, h.cut) : bytes;
  });

const inputs = fc.oneof(fc.uint8Array({ maxLength: 48 }), headerish);

function place(bytes: Uint8Array, how: string): ArrayBuffer | Uint8Array {
  if (how === 'arraybuffer') {
    const ab = new ArrayBuffer(bytes.length);
    new Uint8Array(ab).set(bytes);
    return ab;
  }
  if (how === 'offset') {
    const backing = Buffer.alloc(bytes.length + 16, 0xa5);
    backing.set(bytes, 5);
    return backing.subarray(5, 5 + bytes.length);
  }
  return Uint8Array.from(bytes);
}
const placements = fc.constantFrom('arraybuffer', 'offset', 'exact');

describe('readHeader / decodeHeader against the DataView decoder they replaced', () => {
  it('same validity, fields, error code, message and request id; never throws', () => {
    const fields = new McpwHeaderFields();
    fc.assert(
      fc.property(inputs, placements, fc.constantFrom(MAX_PAYLOAD, 16, 0), (bytes, how, max) => {
        const input = place(bytes, how);
        const want = referenceDecodeHeader(input, max);
        let code: McpwErrorCode | undefined;
        let got: McpwHeaderResult | undefined;
        expect(() => {
          code = readHeader(input, fields, max);
          got = decodeHeader(input, { maxPayloadBytes: max });
        }).not.toThrow();
        expect(got).toEqual(want);
        if (want.ok) {
          expect(code).toBeUndefined();
          expect({ type: fields.type, method: fields.method, flags: fields.flags, payloadLength: fields.payloadLength, requestId: fields.requestId }).toEqual(want.header);
        } else {
          expect(code).toBe(want.error.code);
        }
        // decodeFrame's header checks are the same ones
        const frame = decodeFrame(input, { maxPayloadBytes: max });
        if (!want.ok) expect(frame).toEqual(want);
      }),
      { numRuns: 4000 },
    );
  });

  it('valid frames of every type, method and u64 id read the same, whatever the placement', () => {
    const fields = new McpwHeaderFields();
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.values(McpwType)),
        fc.constantFrom(...Object.values(McpwMethod)),
        fc.bigInt({ min: 0n, max: U64_MAX }),
        fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 40 })), { nil: undefined }),
        placements,
        (type, method, requestId, payload, how) => {
          const input = place(encodeFrame({ type, method, requestId, payload }), how);
          const want = referenceDecodeHeader(input);
          expect(want.ok).toBe(true);
          expect(readHeader(input, fields)).toBeUndefined();
          expect(fields.requestId).toBe(requestId);
          expect(fields.requestIdHigh * 2 ** 32 + fields.requestIdLow).toBe(Number(requestId));
          expect(decodeHeader(input)).toEqual(want);
          // the payload decoded after an in-place header read = decodeFrame of the same bytes
          expect(decodeFramePayload(input, fields)).toEqual(decodeFrame(input));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('anything that is not bytes is a truncated header, not a throw', () => {
    const fields = new McpwHeaderFields();
    for (const junk of [undefined, null, 'MCPW', 42, {}, [0x4d, 0x43]]) {
      expect(readHeader(junk as unknown as Uint8Array, fields)).toBe('truncated_header');
      expect(decodeHeader(junk as unknown as Uint8Array)).toMatchObject({ ok: false, error: { code: 'truncated_header' } });
    }
  });
});

describe('gzipFrame / gzipFrameOffLoop (the /ws reply compression)', () => {
  const payloads = fc.oneof(
    fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 200 })),
    fc.record({ content: fc.array(fc.record({ type: fc.constant('text'), text: fc.string({ minLength: 100, maxLength: 3000 }) }), { maxLength: 3 }) }),
  );

  it('decode(gzip(encode(x))) = x, on the loop and off it; flag bit0 only when smaller', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.values(McpwType)), fc.bigInt({ min: 0n, max: U64_MAX }), payloads, async (type, requestId, payload) => {
        const plain = encodeFrame({ type, method: McpwMethod.ToolsCall, requestId, payload });
        const onLoop = gzipFrame(plain);
        const offLoop = await gzipFrameOffLoop(plain);
        expect(Buffer.from(offLoop).equals(Buffer.from(onLoop))).toBe(true);
        const want = decodeFrame(plain);
        const got = decodeFrame(onLoop);
        expect(got.ok && want.ok && got.frame.payload).toEqual(want.ok && want.frame.payload);
        expect(got.ok && got.frame.requestId).toBe(requestId);
        const zipped = (onLoop[8] ?? 0) & McpwFlags.Gzip;
        expect(zipped === McpwFlags.Gzip ? onLoop.length < plain.length : onLoop === plain).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a frame that is empty, already gzip\'d or encrypted', async () => {
    const empty = encodeFrame({ type: McpwType.Ping, method: McpwMethod.Generic, requestId: 1n, payload: undefined });
    const zipped = encodeFrame({ type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 1n, payload: { a: 'x'.repeat(50) } }, { gzip: true, gzipThreshold: 0 });
    for (const bad of [empty, zipped]) {
      expect(() => gzipFrame(bad)).toThrow(RangeError);
      await expect(gzipFrameOffLoop(bad)).rejects.toThrow(RangeError);
    }
  });
});
