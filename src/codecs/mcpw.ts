/**
 * MCPW binary frames: the codec of the binary half of `/ws` (this module comment is the authority for the layout; the
 * layout is the developer-mesh API reference's, `/ws` "Binary Protocol", https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md). One
 * WebSocket binary message is one frame:
 *
 * ```
 * offset size field
 *  0     4    magic "MCPW" = 0x4D435057
 *  4     1    version = 0x01
 *  5     1    type: 01 Request, 02 Response, 03 Notification, 04 Error, 05 Ping, 06 Pong, 07 Close
 *  6     2    method: 0000 generic, 0001 initialize, 0002 tools/list, 0003 tools/call,
 *             0004 context get, 0005 context set, 0006 log message
 *  8     1    flags: bit0 gzip, bit1 encrypted, bits 2-7 reserved (0)
 *  9     3    reserved (0)
 * 12     4    payload length, bytes, uint32
 * 16     8    request id, uint64
 * 24     n    payload
 * ```
 *
 * All integers are big-endian. The payload is MessagePack (msgpackr) of the JSON-RPC `params`
 * (Request, Notification), `result` (Response) or `error` object (Error); with method 0000 it is
 * the whole JSON-RPC message. A zero-length payload means "no value" (`payload: undefined`), which
 * is what Ping/Pong/Close carry. The mapping to and from JSON-RPC messages is in `./mcpw-jsonrpc.ts`.
 *
 * developer-mesh's Go code (`pkg/models/websocket/binary.go`) orders its 24-byte header
 * differently (u16 flags at 6, id at 8, method at 16, size at 20) and numbers methods differently
 * (0006 event.subscribe); this codec follows the documented layout above,
 * so it does not interoperate with that Go implementation.
 *
 * Payload transforms, applied by the encoder in this order and undone in reverse by the decoder:
 * MessagePack → gzip (flag bit0; RFC 1952 via node:zlib) → AES-256-GCM (flag bit1; see
 * {@link createMcpwKey}). A zero-length payload is never compressed or encrypted.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomFillSync, type KeyObject } from 'node:crypto';
import { constants as bufferConstants } from 'node:buffer';
import { gunzipSync, gzip, gzipSync } from 'node:zlib';
import { C1, Packr, RESERVE_START_SPACE, Unpackr, type Options } from 'msgpackr';
import { MAX_NESTING_DEPTH, scanMsgpack } from './depth.js';
import { MCPW_ERRORS, mcpwError, type McpwDecodeError, type McpwErrorCode } from './mcpw-errors.js';
import { MCPW_MAX_REQUEST_ID, u64ToJsonRpcId } from './mcpw-ids.js';

/** The magic number at offset 0: ASCII "MCPW". */
export const MCPW_MAGIC = 0x4d435057;
/** The only protocol version this codec reads and writes. */
export const MCPW_VERSION = 0x01;
/** Size of the fixed header, bytes. */
export const MCPW_HEADER_BYTES = 24;
/** Default limit for both the payload on the wire and the inflated payload: 16 MiB. */
export const MCPW_DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** Default gzip threshold of {@link encodeFrame}: payloads over 1 KiB. */
export const MCPW_DEFAULT_GZIP_THRESHOLD = 1024;

/** Frame type codes (header offset 5). */
export const McpwType = {
  Request: 0x01,
  Response: 0x02,
  Notification: 0x03,
  Error: 0x04,
  Ping: 0x05,
  Pong: 0x06,
  Close: 0x07,
} as const;
/** A frame type code, 1–7. */
export type McpwType = (typeof McpwType)[keyof typeof McpwType];

/** Method codes (header offset 6). JSON-RPC names for them are in `./mcpw-jsonrpc.ts`. */
export const McpwMethod = {
  Generic: 0x0000,
  Initialize: 0x0001,
  ToolsList: 0x0002,
  ToolsCall: 0x0003,
  ContextGet: 0x0004,
  ContextSet: 0x0005,
  LogMessage: 0x0006,
} as const;
/** A method code, 0–6. */
export type McpwMethod = (typeof McpwMethod)[keyof typeof McpwMethod];

/** Flag bits (header offset 8); bits 2–7 are reserved and must be 0. */
export const McpwFlags = { Gzip: 0x01, Encrypted: 0x02 } as const;
const KNOWN_FLAGS = McpwFlags.Gzip | McpwFlags.Encrypted;

/** A frame to encode: header fields and the payload value (`undefined` = zero-length payload). */
export interface McpwFrame {
  readonly type: McpwType;
  readonly method: McpwMethod;
  /** uint64, 0 … 2^64 − 1. */
  readonly requestId: bigint;
  /** Any value msgpackr packs; JSON-RPC params / result / error object, or the whole message for method 0000. */
  readonly payload: unknown;
}

/** The fixed header as read from the wire, after validation. */
export interface McpwHeader {
  readonly type: McpwType;
  readonly method: McpwMethod;
  /** Flag byte: {@link McpwFlags} bits, reserved bits already checked to be 0. */
  readonly flags: number;
  /** Payload length on the wire, bytes (before decryption and inflation). */
  readonly payloadLength: number;
  readonly requestId: bigint;
}

/** A decoded frame: the header plus the unpacked payload. */
export interface McpwDecodedFrame extends McpwHeader {
  /**
   * The unpacked payload (`undefined` for a zero-length payload). Plain JS values, safe to keep —
   * except MessagePack `bin` values: those come back as `Uint8Array` views into the frame's own
   * bytes (no copy) when the payload was neither compressed nor encrypted, so they are valid only
   * inside the uWS message callback (uWS frees the `ArrayBuffer` when it returns). Pass
   * `copyBinary: true`, or copy them, to keep them longer.
   */
  readonly payload: unknown;
}

/** `decodeFrame`'s result; it never throws. */
export type McpwDecodeResult = { readonly ok: true; readonly frame: McpwDecodedFrame } | { readonly ok: false; readonly error: McpwDecodeError };

/** `decodeHeader`'s result; it never throws. */
export type McpwHeaderResult = { readonly ok: true; readonly header: McpwHeader } | { readonly ok: false; readonly error: McpwDecodeError };

/** An AES-256-GCM key for the encrypted flag; build it with {@link createMcpwKey}. */
export interface McpwKey {
  readonly algorithm: 'aes-256-gcm';
  readonly secret: KeyObject;
}

/** Options of {@link decodeFrame} and {@link decodeHeader}. */
export interface McpwDecodeOptions {
  /** Largest payload length accepted on the wire, bytes; larger → `payload_too_large`. Default 16 MiB. */
  readonly maxPayloadBytes?: number;
  /** Largest inflated size of a gzip payload, bytes; larger → `gzip_bomb`, detected without inflating further. Default 16 MiB. */
  readonly maxInflatedBytes?: number;
  /** Key for frames with the encrypted flag; without it they fail with `encrypted_without_key`. */
  readonly key?: McpwKey;
  /** Copy MessagePack `bin` values out of the frame instead of returning views into it. Default `false`. */
  readonly copyBinary?: boolean;
  /**
   * Most nested maps/arrays, counted from the JSON-RPC message: a method-0000 payload is the
   * message itself, a compact payload (`params`/`result`/`error`) sits one level below it, so it
   * may nest one level less. Deeper → `nesting_too_deep`. Default {@link MAX_NESTING_DEPTH} (128).
   */
  readonly maxDepth?: number;
}

/** Options of {@link encodeFrame}. */
export interface McpwEncodeOptions {
  /** gzip payloads whose MessagePack is over `gzipThreshold` bytes. Default `false`. */
  readonly gzip?: boolean;
  /** Bytes of MessagePack above which `gzip: true` compresses. Default 1024. */
  readonly gzipThreshold?: number;
  /** zlib level 0–9 (speed vs size). Default 1: replies are compressed on the hot path. */
  readonly gzipLevel?: number;
  /** Encrypt every non-empty payload with this key (sets flag bit1). */
  readonly key?: McpwKey;
}

/** AES-256-GCM payload layout: 12-byte nonce ‖ ciphertext ‖ 16-byte tag. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAGIC_BYTES = [0x4d, 0x43, 0x50, 0x57] as const;
const MAX_U32 = 0xffff_ffff;

/**
 * msgpackr writes only standard MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md),
 * so any MessagePack library decodes a payload, the way JSON would carry the same value:
 * - no records (`useRecords: false`): maps and arrays only;
 * - an object field whose value is `undefined` is left out (`skipValues`, documented in msgpackr's
 *   README but missing from its `Options` type), as `JSON.stringify` leaves it out; any other
 *   `undefined` (an array item, the whole payload) is nil, as JSON writes `null` — never msgpackr's
 *   `undefined` extension (fixext 1, type 0);
 * - a `bigint` is a MessagePack int 64 when it fits 64 bits (a bigger one throws RangeError, which
 *   the `/ws` endpoint answers with an Error frame); a `Map` is a MessagePack map, a
 *   `Uint8Array`/`Buffer` is bin;
 * - a `Date` is MessagePack's own timestamp extension (type −1, the one extension type the spec
 *   defines, decoded by every library); msgpackr's extension table is global, so turning Dates into
 *   ISO strings here would change the store codec too. The gateway puts no `Date` in payloads.
 */
const packOptions: Options & { skipValues: readonly unknown[] } = { useRecords: false, encodeUndefinedAsNil: true, skipValues: [undefined] };
const packr = new Packr(packOptions);
// int64AsType 'number': scanMsgpack has refused every 64-bit integer a JS number cannot hold exactly
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const copyingUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, int64AsType: 'number' });

function hex(value: number, digits: number): string {
  return `0x${value.toString(16).toUpperCase().padStart(digits, '0')}`;
}

function fail(code: McpwErrorCode, message: string, requestId?: bigint): { ok: false; error: McpwDecodeError } {
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
function bytesOf(input: ArrayBuffer | Uint8Array): Uint8Array | undefined {
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
function checkHeader(b: Uint8Array, out: McpwHeaderFields, maxPayloadBytes: number): McpwErrorCode | undefined {
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
function headerError(b: Uint8Array, code: McpwErrorCode, maxPayloadBytes: number): McpwDecodeError {
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

function decrypt(body: Uint8Array, header: Uint8Array, key: McpwKey): Uint8Array | undefined {
  if (body.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.secret, body.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    decipher.setAAD(header);
    const plain = decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES));
    decipher.final();
    return plain;
  } catch {
    return undefined;
  }
}

/** zlib's `maxOutputLength` must be an integer in 1 … buffer.constants.MAX_LENGTH, else it throws. */
function inflateLimit(max: number | undefined): number {
  if (max === undefined || Number.isNaN(max)) return MCPW_DEFAULT_MAX_PAYLOAD_BYTES;
  return Math.min(Math.max(1, Math.floor(max)), bufferConstants.MAX_LENGTH);
}

function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

/**
 * Decodes one MCPW frame without copying it: the header is read byte by byte from a `Uint8Array`
 * view of the frame's own `ArrayBuffer` ({@link readHeader}), and msgpackr unpacks the payload from
 * a `Uint8Array` view of that same buffer. Call it inside the uWS message callback; the returned values are JS values,
 * except MessagePack `bin` values of an uncompressed, unencrypted payload, which are views into the
 * frame and valid only inside that callback (see {@link McpwDecodedFrame.payload}, `copyBinary`).
 *
 * Checks, in order, each with its error code (registry and recoverable rule: `./mcpw-errors.ts`):
 * magic (`bad_magic`, also on a short frame whose first bytes already differ) → length ≥ 24
 * (`truncated_header`) → version (`bad_version`) → type 1–7 (`unknown_type`) → method 0–6
 * (`unknown_method`) → flag bits 2–7 (`reserved_bits`) → bytes 9–11 (`reserved_bytes`) → declared
 * length ≤ `maxPayloadBytes` (`payload_too_large`) → declared length = bytes after the header
 * (`length_mismatch`) → encrypted flag: key configured (`encrypted_without_key`), AES-256-GCM tag
 * (`decrypt_failed`) → gzip flag: valid gzip (`gzip_error`), inflated size ≤ `maxInflatedBytes`
 * (`gzip_bomb`; zlib stops at the limit, so a bomb costs at most that much memory and time) →
 * nesting depth (`nesting_too_deep`) → 64-bit integers (`unsafe_integer`) → exactly one MessagePack
 * value (`bad_payload`; trailing bytes and the reserved byte 0xC1 count).
 * Every error from `bad_version` on carries the header's `requestId` (the header is complete and
 * its magic right); `bad_magic` and `truncated_header` carry none.
 *
 * gzip inflation and decryption are synchronous and bounded by `maxInflatedBytes` and
 * `maxPayloadBytes`. Before msgpackr (which recurses) unpacks the payload, one iterative pass over
 * its headers refuses maps/arrays nested deeper than `maxDepth` (`nesting_too_deep`) and 64-bit
 * integers outside ±(2^53 − 1) (`unsafe_integer`); 64-bit integers within it become numbers, so a
 * payload holds only JSON-like values (and `Uint8Array` for bin). msgpackr maps an object key
 * `"__proto__"` to `"__proto_"` (prototype-pollution guard).
 *
 * @param input one whole WebSocket binary message: uWS's `ArrayBuffer`, or a `Uint8Array`/`Buffer`
 *   (any `byteOffset`) — the frame is exactly these bytes.
 * @returns `{ ok: true, frame }` or `{ ok: false, error: { code, message, requestId?, recoverable } }`;
 *   never throws, whatever the bytes.
 */
export function decodeFrame(input: ArrayBuffer | Uint8Array, options: McpwDecodeOptions = {}): McpwDecodeResult {
  const b = bytesOf(input);
  if (b === undefined) return fail('truncated_header', 'frame is not an ArrayBuffer or Uint8Array');
  const max = options.maxPayloadBytes ?? MCPW_DEFAULT_MAX_PAYLOAD_BYTES;
  const code = checkHeader(b, scratch, max);
  if (code !== undefined) return { ok: false, error: headerError(b, code, max) };
  return decodeBody(b, scratch.type, scratch.method, scratch.flags, scratch.payloadLength, scratch.requestId, options);
}

/**
 * The rest of {@link decodeFrame} for a frame whose header {@link readHeader} has already read
 * into `header` (from these same bytes): the payload checks and unpacking, with the same error
 * codes and the same result. `header` is read before this returns, so it may be reused at once.
 *
 * @param input the same whole frame that was passed to {@link readHeader}.
 * @returns `{ ok: true, frame }` (a new frame object) or `{ ok: false, error }`; never throws.
 */
export function decodeFramePayload(input: ArrayBuffer | Uint8Array, header: McpwHeaderFields, options: McpwDecodeOptions = {}): McpwDecodeResult {
  const b = bytesOf(input);
  if (b === undefined || b.length !== MCPW_HEADER_BYTES + header.payloadLength) return fail('length_mismatch', 'the header read does not belong to this frame', header.requestId);
  return decodeBody(b, header.type, header.method, header.flags, header.payloadLength, header.requestId, options);
}

function decodeBody(
  b: Uint8Array,
  type: McpwType,
  method: McpwMethod,
  flags: number,
  payloadLength: number,
  requestId: bigint,
  options: McpwDecodeOptions,
): McpwDecodeResult {
  if (payloadLength === 0 && flags === 0) return { ok: true, frame: { type, method, flags, payloadLength, requestId, payload: undefined } };

  let body = new Uint8Array(b.buffer, b.byteOffset + MCPW_HEADER_BYTES, payloadLength);
  if ((flags & McpwFlags.Encrypted) !== 0) {
    if (options.key === undefined) return fail('encrypted_without_key', 'frame has the encrypted flag set but no key is configured', requestId);
    const plain = decrypt(body, new Uint8Array(b.buffer, b.byteOffset, MCPW_HEADER_BYTES), options.key);
    if (plain === undefined) return fail('decrypt_failed', `AES-256-GCM decryption of the ${payloadLength}-byte payload failed (wrong key or tampered frame)`, requestId);
    body = plain;
  }
  if ((flags & McpwFlags.Gzip) !== 0) {
    const limit = inflateLimit(options.maxInflatedBytes);
    if (body.length === 0) return fail('gzip_error', 'gzip flag set on an empty payload', requestId);
    try {
      body = gunzipSync(body, { maxOutputLength: limit });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        return fail('gzip_bomb', `gzip payload of ${payloadLength} bytes inflates past the limit of ${limit} bytes`, requestId);
      }
      return fail('gzip_error', `gzip payload does not inflate: ${errorMessage(err)}`, requestId);
    }
  }
  if (body.length === 0) return { ok: true, frame: { type, method, flags, payloadLength, requestId, payload: undefined } };
  // before msgpackr (recursive) runs: depth and 64-bit integers, one pass over the headers
  const maxDepth = (options.maxDepth ?? MAX_NESTING_DEPTH) - (method === McpwMethod.Generic ? 0 : 1);
  const scan = scanMsgpack(body, maxDepth);
  if (scan.kind === 'too_deep') {
    const limit = options.maxDepth ?? MAX_NESTING_DEPTH;
    return fail('nesting_too_deep', `payload nesting depth exceeds the limit of ${limit} levels (counted from the JSON-RPC message) at payload byte ${scan.offset}`, requestId);
  }
  if (scan.kind === 'unsafe_integer') {
    return fail('unsafe_integer', `payload integer ${scan.value} at payload byte ${scan.offset} is outside ±(2^53 - 1) and has no exact JSON number; send it as a string`, requestId);
  }
  let payload: unknown;
  try {
    payload = (options.copyBinary === true ? copyingUnpackr : unpackr).unpack(body);
  } catch (err) {
    return fail('bad_payload', `payload is not valid MessagePack: ${errorMessage(err)}`, requestId);
  }
  if (payload === C1) return fail('bad_payload', 'payload is the reserved MessagePack byte 0xC1', requestId);
  return { ok: true, frame: { type, method, flags, payloadLength, requestId, payload } };
}

function writeHeader(out: Uint8Array, frame: McpwFrame, flags: number, payloadLength: number): void {
  const view = new DataView(out.buffer, out.byteOffset, MCPW_HEADER_BYTES);
  view.setUint32(0, MCPW_MAGIC);
  view.setUint8(4, MCPW_VERSION);
  view.setUint8(5, frame.type);
  view.setUint16(6, frame.method);
  view.setUint8(8, flags);
  view.setUint8(9, 0);
  view.setUint16(10, 0);
  view.setUint32(12, payloadLength);
  view.setBigUint64(16, frame.requestId);
}

function checkFrame(frame: McpwFrame): void {
  if (!Number.isInteger(frame.type) || frame.type < McpwType.Request || frame.type > McpwType.Close) {
    throw new RangeError(`MCPW frame type must be 1-7, got ${String(frame.type)}`);
  }
  if (!Number.isInteger(frame.method) || frame.method < McpwMethod.Generic || frame.method > McpwMethod.LogMessage) {
    throw new RangeError(`MCPW method must be 0-6, got ${String(frame.method)}`);
  }
  if (typeof frame.requestId !== 'bigint' || frame.requestId < 0n || frame.requestId > MCPW_MAX_REQUEST_ID) {
    throw new RangeError(`MCPW request id must be a bigint in 0..2^64-1, got ${String(frame.requestId)}`);
  }
}

/**
 * Encodes one MCPW frame. The payload is packed with msgpackr straight after 24
 * reserved bytes of msgpackr's output buffer (`RESERVE_START_SPACE`), and the header is written
 * into those bytes: header and payload in one buffer, no copy. gzip and encryption produce new
 * bytes, so those paths allocate header + payload once and copy the transformed payload in.
 *
 * The result may be a view into msgpackr's shared output slab: send the view itself (uWS
 * `ws.send(bytes, true)` copies it), never `bytes.buffer`. It stays valid after later encodes.
 *
 * @param frame header fields and payload; `payload: undefined` → zero-length payload, flags 0.
 * @param options `gzip` (default off) over `gzipThreshold` bytes of MessagePack (default 1024),
 *   `gzipLevel` (default 1), `key` to encrypt (AES-256-GCM, layout in {@link createMcpwKey}).
 * @returns the frame's bytes: 24-byte header + payload.
 * @throws RangeError when `type`, `method` or `requestId` is out of range, or the payload is over
 *   4 GiB − 1 bytes; whatever msgpackr throws for a value it cannot pack (e.g. a bigint over 64 bits).
 */
export function encodeFrame(frame: McpwFrame, options: McpwEncodeOptions = {}): Uint8Array {
  checkFrame(frame);
  if (frame.payload === undefined) {
    const out = new Uint8Array(MCPW_HEADER_BYTES);
    writeHeader(out, frame, 0, 0);
    return out;
  }
  const packed = packr.pack(frame.payload, RESERVE_START_SPACE | MCPW_HEADER_BYTES);
  let body: Uint8Array = packed.subarray(MCPW_HEADER_BYTES);
  let flags = 0;
  if (options.gzip === true && body.length > (options.gzipThreshold ?? MCPW_DEFAULT_GZIP_THRESHOLD)) {
    body = gzipSync(body, { level: options.gzipLevel ?? 1 });
    flags |= McpwFlags.Gzip;
  }
  const key = options.key;
  if (key === undefined) {
    if (body.length > MAX_U32) throw new RangeError(`MCPW payload of ${body.length} bytes is over 4 GiB - 1`);
    if (flags === 0) {
      writeHeader(packed, frame, 0, body.length);
      return packed;
    }
    const out = Buffer.allocUnsafe(MCPW_HEADER_BYTES + body.length);
    writeHeader(out, frame, flags, body.length);
    out.set(body, MCPW_HEADER_BYTES);
    return out;
  }
  const payloadLength = NONCE_BYTES + body.length + TAG_BYTES;
  if (payloadLength > MAX_U32) throw new RangeError(`MCPW payload of ${payloadLength} bytes is over 4 GiB - 1`);
  flags |= McpwFlags.Encrypted;
  const out = Buffer.allocUnsafe(MCPW_HEADER_BYTES + payloadLength);
  writeHeader(out, frame, flags, payloadLength);
  const nonce = out.subarray(MCPW_HEADER_BYTES, MCPW_HEADER_BYTES + NONCE_BYTES);
  randomFillSync(nonce);
  const cipher = createCipheriv('aes-256-gcm', key.secret, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(out.subarray(0, MCPW_HEADER_BYTES));
  const cipherText = cipher.update(body);
  out.set(cipherText, MCPW_HEADER_BYTES + NONCE_BYTES);
  cipher.final();
  out.set(cipher.getAuthTag(), MCPW_HEADER_BYTES + NONCE_BYTES + body.length);
  return out;
}

/** The gzip'd form of an encoded frame: same header with flag bit0 and the new length, then `gz`. */
function withGzipPayload(frame: Uint8Array, gz: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(MCPW_HEADER_BYTES + gz.length);
  out.set(frame.subarray(0, MCPW_HEADER_BYTES), 0);
  out[8] = McpwFlags.Gzip;
  out.writeUInt32BE(gz.length, 12);
  out.set(gz, MCPW_HEADER_BYTES);
  return out;
}

function plainPayloadOf(frame: Uint8Array): Uint8Array {
  if (frame.length <= MCPW_HEADER_BYTES || frame[8] !== 0) throw new RangeError('gzipFrame takes an encoded frame with a non-empty payload, neither gzip\'d nor encrypted');
  return frame.subarray(MCPW_HEADER_BYTES);
}

/**
 * Compresses the payload of a frame {@link encodeFrame} produced without `gzip` or `key`, on the
 * event loop (zlib's `gzipSync`, RFC 1952): for payloads small enough that this is cheap (level 1:
 * ≈ 35 µs of CPU for 4 KiB of MessagePack on the reference machine, `npm run bench:mcpw`).
 * When gzip does not make the payload smaller, the frame is returned as it is (flags 0).
 *
 * @param frame an encoded frame: non-empty payload, flags 0.
 * @param level zlib level 0–9; default 1 (speed over size).
 * @returns a new frame with flag bit0 set and the compressed payload, or `frame` itself.
 * @throws RangeError when `frame` is empty, already gzip'd or encrypted.
 */
export function gzipFrame(frame: Uint8Array, level = 1): Uint8Array {
  const gz = gzipSync(plainPayloadOf(frame), { level });
  return gz.length < frame.length - MCPW_HEADER_BYTES ? withGzipPayload(frame, gz) : frame;
}

/**
 * {@link gzipFrame} off the event loop: zlib compresses a copy of the payload on the libuv thread
 * pool (https://nodejs.org/api/zlib.html#threadpool-usage-and-performance-considerations), so a
 * large payload (≈ 4.6 ms of CPU for 800 KB at level 1) does not stall the loop. The caller keeps
 * the frame's place in its outbound order while this runs.
 *
 * @returns the gzip'd frame, or `frame` itself when gzip does not make it smaller.
 * @throws (rejects) RangeError as {@link gzipFrame}; zlib's error otherwise.
 */
export function gzipFrameOffLoop(frame: Uint8Array, level = 1): Promise<Uint8Array> {
  let plain: Uint8Array;
  try {
    plainPayloadOf(frame);
    // the frame's bytes stay the caller's: zlib reads its own copy on another thread
    frame = Buffer.from(frame);
    plain = frame.subarray(MCPW_HEADER_BYTES);
  } catch (err) {
    return Promise.reject(err as Error);
  }
  return new Promise((resolve, reject) => {
    gzip(plain, { level }, (err, gz) => {
      if (err) reject(err);
      else resolve(gz.length < plain.length ? withGzipPayload(frame, gz) : frame);
    });
  });
}

/**
 * Builds the key for the encrypted flag (bit1). Layout of an encrypted payload (this codec's
 * choice; the developer-mesh reference names the flag, not the cipher): `nonce (12 random bytes) ‖ AES-256-GCM
 * ciphertext ‖ tag (16 bytes)`, with the frame's 24-byte header (final flags and payload length
 * included) as additional authenticated data, so header fields cannot be altered either. The
 * cipher runs after gzip (compress, then encrypt). Random 96-bit nonces: rotate a key well before
 * 2^32 frames.
 *
 * @param raw 32 bytes of key material.
 * @throws RangeError unless `raw` is exactly 32 bytes.
 */
export function createMcpwKey(raw: Uint8Array): McpwKey {
  if (raw.byteLength !== 32) throw new RangeError(`MCPW key must be 32 bytes (AES-256), got ${raw.byteLength}`);
  return { algorithm: 'aes-256-gcm', secret: createSecretKey(raw) };
}

// ---- control frames -----------------------------------------------------------------------------

/**
 * An MCPW Error frame for a bad frame, naming the problem.
 * Method 0000, so the payload is a whole JSON-RPC error response:
 * `{ jsonrpc: "2.0", id, error: { code: <JSON-RPC code from MCPW_ERRORS>, message, data: { code, recoverable } } }`
 * where `data.code` is the MCPW error code (e.g. `"bad_magic"`) and `id` is
 * `u64ToJsonRpcId(requestId)`, or `null` when the request id is unknown (header unreadable).
 *
 * @param requestId the bad frame's header id (echoed in the header), or `undefined` → header id 0, JSON-RPC id null.
 */
export function errorFrame(requestId: bigint | undefined, code: McpwErrorCode, message: string): McpwFrame {
  return {
    type: McpwType.Error,
    method: McpwMethod.Generic,
    requestId: requestId ?? 0n,
    payload: {
      jsonrpc: '2.0',
      id: requestId === undefined ? null : u64ToJsonRpcId(requestId),
      error: { code: MCPW_ERRORS[code].rpc, message, data: { code, recoverable: MCPW_ERRORS[code].recoverable } },
    },
  };
}

/** The Error frame answering a failed decode: {@link errorFrame} with the error's code, message and request id. */
export function errorFrameFor(error: McpwDecodeError): McpwFrame {
  return errorFrame(error.requestId, error.code, error.message);
}

/**
 * A Ping heartbeat: type 05, method 0000, flags 0, empty payload. The seed's client sends
 * `Date.now()` as the id (developer-mesh "Connection Management"); any u64 is fine.
 */
export function pingFrame(requestId: bigint): McpwFrame {
  return { type: McpwType.Ping, method: McpwMethod.Generic, requestId, payload: undefined };
}

/** The Pong answering a Ping: type 06, the Ping's request id, empty payload. */
export function pongFrame(requestId: bigint): McpwFrame {
  return { type: McpwType.Pong, method: McpwMethod.Generic, requestId, payload: undefined };
}

/** A Close frame: type 07, empty payload; the receiving server closes the WebSocket with 1000. */
export function closeFrame(requestId = 0n): McpwFrame {
  return { type: McpwType.Close, method: McpwMethod.Generic, requestId, payload: undefined };
}
