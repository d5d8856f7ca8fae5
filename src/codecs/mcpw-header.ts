/**
 * Reading the 24-byte MCPW header straight from a frame's bytes (layout in `./mcpw.ts`): the
 * checks every decoder shares, in place into reusable fields ({@link readHeader}) or into a new
 * object ({@link decodeHeader}).
 */
import { mcpwError, type McpwDecodeError, type McpwErrorCode } from './mcpw-errors.js';
import { KNOWN_FLAGS, MCPW_DEFAULT_MAX_PAYLOAD_BYTES, MCPW_HEADER_BYTES, MCPW_MAGIC, MCPW_VERSION, McpwMethod, McpwType, type McpwDecodeOptions, type McpwHeader, type McpwHeaderResult } from './mcpw-layout.js';

const MAGIC_BYTES = [0x4d, 0x43, 0x50, 0x57] as const;

export function hex(value: number, digits: number): string {
  return `0x${value.toString(16).toUpperCase().padStart(digits, '0')}`;
}

export function fail(code: McpwErrorCode, message: string, requestId?: bigint): { ok: false; error: McpwDecodeError } {
  return { ok: false, error: mcpwError(code, message, requestId) };
}

/**
 * The fixed header of one frame, read in place by {@link readHeader}: plain mutable fields that
 * each read overwrites, so decoding a header allocates nothing (no result object, no `bigint`).
 * Keep one per reader (the `/ws` endpoint keeps one) and copy out what must outlive the next read.
 * It satisfies {@link McpwHeader}; `requestId` is computed from the two 32-bit halves on demand.
 */
export class McpwHeaderFields implements McpwHeader {
  type: McpwType = McpwType.Request;
  method: McpwMethod = McpwMethod.Generic;
  /** Flag byte: {@link McpwFlags} bits, reserved bits already checked to be 0. */
  flags = 0;
  /** Payload length on the wire, bytes (before decryption and inflation). */
  payloadLength = 0;
  /** Bits 63–32 of the u64 request id, 0 … 2^32 − 1. */
  requestIdHigh = 0;
  /** Bits 31–0 of the u64 request id, 0 … 2^32 − 1. */
  requestIdLow = 0;

  /** The u64 request id (allocates a `bigint`; read it only when it is needed). */
  get requestId(): bigint {
    return joinU64(this.requestIdHigh, this.requestIdLow);
  }
}

/** The u64 of two 32-bit halves; one `bigint` allocation when it fits 2^53. */
function joinU64(high: number, low: number): bigint {
  return high < 0x20_0000 ? BigInt(high * 0x1_0000_0000 + low) : (BigInt(high) << 32n) | BigInt(low);
}

/** The frame's bytes as a Uint8Array: uWS's ArrayBuffer gets one view (no copy), a Uint8Array/Buffer is used as is. */
export function bytesOf(input: ArrayBuffer | Uint8Array): Uint8Array | undefined {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (input instanceof Uint8Array) return input;
  return undefined;
}

/** Big-endian u32 at `at` of `b` (the caller has checked the length). */
function u32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

/**
 * The header checks on the frame's bytes, in the order of {@link decodeFrame}; fills `out` when
 * they pass and returns the first failed check's code otherwise (`out` is then partly written).
 */
export function checkHeader(b: Uint8Array, out: McpwHeaderFields, maxPayloadBytes: number): McpwErrorCode | undefined {
  const size = b.length;
  if (size < MCPW_HEADER_BYTES) {
    for (let i = 0; i < size && i < 4; i++) if (b[i] !== MAGIC_BYTES[i]) return 'bad_magic';
    return 'truncated_header';
  }
  if (b[0] !== 0x4d || b[1] !== 0x43 || b[2] !== 0x50 || b[3] !== 0x57) return 'bad_magic';
  if (b[4] !== MCPW_VERSION) return 'bad_version';
  const type = b[5] ?? 0;
  if (type < McpwType.Request || type > McpwType.Close) return 'unknown_type';
  const method = ((b[6] ?? 0) << 8) | (b[7] ?? 0);
  if (method > McpwMethod.LogMessage) return 'unknown_method';
  const flags = b[8] ?? 0;
  if ((flags & ~KNOWN_FLAGS) !== 0) return 'reserved_bits';
  if (((b[9] ?? 0) | (b[10] ?? 0) | (b[11] ?? 0)) !== 0) return 'reserved_bytes';
  const payloadLength = u32(b, 12);
  if (payloadLength > maxPayloadBytes) return 'payload_too_large';
  if (payloadLength !== size - MCPW_HEADER_BYTES) return 'length_mismatch';
  out.type = type as McpwType;
  out.method = method as McpwMethod;
  out.flags = flags;
  out.payloadLength = payloadLength;
  out.requestIdHigh = u32(b, 16);
  out.requestIdLow = u32(b, 20);
  return undefined;
}

/**
 * The error of a header that failed `code` (from {@link checkHeader}), with the message naming the
 * offending bytes. Cold path: runs once per bad frame.
 */
export function headerError(b: Uint8Array, code: McpwErrorCode, maxPayloadBytes: number): McpwDecodeError {
  const size = b.length;
  if (code === 'bad_magic') {
    if (size >= 4) return mcpwError(code, `bad magic ${hex(u32(b, 0), 8)}, expected ${hex(MCPW_MAGIC, 8)} ("MCPW")`);
    let i = 0;
    while (b[i] === MAGIC_BYTES[i]) i++;
    return mcpwError(code, `bad magic: byte ${i} is ${hex(b[i] ?? 0, 2)}, expected ${hex(MAGIC_BYTES[i] ?? 0, 2)}`);
  }
  if (code === 'truncated_header') return mcpwError(code, `frame is ${size} bytes, shorter than the ${MCPW_HEADER_BYTES}-byte header`);
  const requestId = joinU64(u32(b, 16), u32(b, 20));
  const payloadLength = u32(b, 12);
  switch (code) {
    case 'bad_version':
      return mcpwError(code, `unsupported version ${hex(b[4] ?? 0, 2)}, expected ${hex(MCPW_VERSION, 2)}`, requestId);
    case 'unknown_type':
      return mcpwError(code, `unknown frame type ${hex(b[5] ?? 0, 2)}, expected 0x01-0x07`, requestId);
    case 'unknown_method':
      return mcpwError(code, `unknown method ${hex(((b[6] ?? 0) << 8) | (b[7] ?? 0), 4)}, expected 0x0000-0x0006`, requestId);
    case 'reserved_bits':
      return mcpwError(code, `reserved flag bits set: flags ${hex(b[8] ?? 0, 2)}, only bits 0-1 may be set`, requestId);
    case 'reserved_bytes':
      return mcpwError(code, `reserved bytes 9-11 are ${hex(((b[9] ?? 0) << 16) | ((b[10] ?? 0) << 8) | (b[11] ?? 0), 6)}, expected 0x000000`, requestId);
    case 'payload_too_large':
      return mcpwError(code, `declared payload length ${payloadLength} bytes is over the limit of ${maxPayloadBytes} bytes`, requestId);
    default:
      return mcpwError(code, `declared payload length ${payloadLength} bytes, frame carries ${size - MCPW_HEADER_BYTES}`, requestId);
  }
}

const scratch = new McpwHeaderFields();

/**
 * Reads and validates the 24-byte header into `out`, straight from the frame's bytes: no result
 * object, no `bigint`, nothing allocated but the one `Uint8Array` view a bare `ArrayBuffer` needs.
 * This is the per-frame read of the `/ws` endpoint, which routes on the header fields and decodes
 * the payload only for the frames that carry a message ({@link decodeFramePayload}). Same checks,
 * in the same order, with the same codes as {@link decodeHeader}; for the error's message and
 * request id, call {@link decodeHeader} on the same bytes (a cold path, once per bad frame).
 *
 * @param input one whole WebSocket binary message, as uWS (`ArrayBuffer`) or `ws` (`Buffer`) hands it over.
 * @param out receives the fields when the header is valid (partly overwritten otherwise).
 * @param maxPayloadBytes largest declared payload length accepted; default 16 MiB.
 * @returns `undefined` when the header is valid, else the code of the first failed check
 *   (registry: `./mcpw-errors.ts`); never throws.
 */
export function readHeader(input: ArrayBuffer | Uint8Array, out: McpwHeaderFields, maxPayloadBytes: number = MCPW_DEFAULT_MAX_PAYLOAD_BYTES): McpwErrorCode | undefined {
  const b = bytesOf(input);
  return b === undefined ? 'truncated_header' : checkHeader(b, out, maxPayloadBytes);
}

/**
 * Reads and validates the 24-byte header only (no payload work). Same checks and error codes as
 * {@link decodeFrame} up to and including `length_mismatch`; the payload itself is not looked at.
 * Returns a new header object per call; the per-frame path uses {@link readHeader} instead.
 *
 * @param input one whole WebSocket binary message, as uWS (`ArrayBuffer`) or `ws` (`Buffer`) hands it over.
 * @param options only `maxPayloadBytes` is used.
 * @returns `{ ok: true, header }` or `{ ok: false, error }`; never throws.
 */
export function decodeHeader(input: ArrayBuffer | Uint8Array, options: McpwDecodeOptions = {}): McpwHeaderResult {
  const b = bytesOf(input);
  if (b === undefined) return fail('truncated_header', 'frame is not an ArrayBuffer or Uint8Array');
  const max = options.maxPayloadBytes ?? MCPW_DEFAULT_MAX_PAYLOAD_BYTES;
  const code = checkHeader(b, scratch, max);
  if (code !== undefined) return { ok: false, error: headerError(b, code, max) };
  return { ok: true, header: { type: scratch.type, method: scratch.method, flags: scratch.flags, payloadLength: scratch.payloadLength, requestId: scratch.requestId } };
}
