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
 * All integers are big-endian. The payload is MessagePack (msgpackr's encoding; JSON-like values
 * by `./mcpw-msgpack.ts`, byte for byte the same) of the JSON-RPC `params`
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
import { createCipheriv, createDecipheriv, createSecretKey, randomFillSync } from 'node:crypto';
import { constants as bufferConstants } from 'node:buffer';
import { gunzipSync, gzip, gzipSync } from 'node:zlib';
import { C1, Packr, RESERVE_START_SPACE, Unpackr, type Options } from 'msgpackr';
import { MAX_NESTING_DEPTH, scanMsgpack } from './depth.js';
import { MCPW_ERRORS, type McpwDecodeError, type McpwErrorCode } from './mcpw-errors.js';
import { NOT_PLAIN, packPlain, unpackPlain } from './mcpw-msgpack.js';
import { MCPW_MAX_REQUEST_ID, u64ToJsonRpcId } from './mcpw-ids.js';
export * from './mcpw-layout.js';
export { McpwScratch } from './mcpw-msgpack.js';
export { McpwHeaderFields, decodeHeader, readHeader } from './mcpw-header.js';
import { bytesOf, checkHeader, fail, headerError, McpwHeaderFields } from './mcpw-header.js';
import { MCPW_DEFAULT_GZIP_THRESHOLD, MCPW_DEFAULT_MAX_PAYLOAD_BYTES, MCPW_HEADER_BYTES, MCPW_MAGIC, MCPW_VERSION, McpwFlags, McpwMethod, McpwType, type McpwDecodeOptions, type McpwDecodeResult, type McpwEncodeOptions, type McpwFrame, type McpwKey } from './mcpw-layout.js';

/** AES-256-GCM payload layout: 12-byte nonce ‖ ciphertext ‖ 16-byte tag. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAX_U32 = 0xffff_ffff;
/** The header fields `decodeFrame` reads into (one per module: decoding is synchronous). */
const scratch = new McpwHeaderFields();

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
  // JSON-like payloads (every ordinary message) by hand, the rest (bin, ext, odd keys, errors) by msgpackr
  let payload = unpackPlain(body);
  if (payload !== NOT_PLAIN) return { ok: true, frame: { type, method, flags, payloadLength, requestId, payload } };
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
 * Encodes one MCPW frame. The payload is packed straight after 24 reserved bytes of a shared
 * output slab, and the header is written into those bytes: header and payload in one buffer, no
 * copy. JSON-like payloads are packed by `./mcpw-msgpack.ts` (the bytes msgpackr writes, without
 * its per-pack set-up), anything else by msgpackr (`RESERVE_START_SPACE`). gzip and encryption
 * produce new bytes, so those paths allocate header + payload once and copy the transformed
 * payload in.
 *
 * The result may be a view into a shared output slab: send the view itself (uWS
 * `ws.send(bytes, true)` copies it), never `bytes.buffer`. It stays valid after later encodes —
 * unless `options.scratch` is given: then it lives in that reused area until its `reset()`.
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
  // JSON-like payloads by hand (the same bytes msgpackr writes), anything else by msgpackr
  const packed = packPlain(frame.payload, MCPW_HEADER_BYTES, options.scratch) ?? packr.pack(frame.payload, RESERVE_START_SPACE | MCPW_HEADER_BYTES);
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
