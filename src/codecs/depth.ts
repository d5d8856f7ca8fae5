/**
 * Nesting-depth limits checked on the raw bytes of a message, before anything recursive runs.
 *
 * `JSON.parse` in V8 is iterative (it parses 1,000,000 nested arrays without a stack overflow), but
 * almost everything after it is recursive: `JSON.stringify` (an upstream transport serialising the
 * request; it overflows the stack near 5,000 levels), io-ts validation, msgpackr's pack/unpack,
 * the store codec, the SDK's zod schemas. A caller could therefore make the gateway throw
 * `RangeError: Maximum call stack size exceeded` deep inside request handling. The scanners here
 * refuse such input at decode time, each in one iterative pass with no allocation:
 *
 * - {@link jsonDepthExceeded} / {@link jsonTextDepthExceeded}: JSON, counting `[`/`{` outside
 *   strings (a long string is skipped with a native `indexOf` for its closing quote);
 * - {@link scanMsgpack}: MessagePack, walking the headers only (strings, bin and ext payloads are
 *   skipped by their length), which also finds 64-bit integers that do not fit a JS number.
 *
 * Depth counts containers: `1` and `"x"` have depth 0, `{}` and `[1]` depth 1, `{"a":[1]}` depth 2.
 * The limit {@link MAX_NESTING_DEPTH} (128) is serde_json's default recursion limit
 * (https://docs.rs/serde_json/latest/serde_json/struct.Deserializer.html#method.disable_recursion_limit);
 * .NET's System.Text.Json uses 64 (https://learn.microsoft.com/dotnet/api/system.text.json.jsonreaderoptions.maxdepth).
 */
import { GatewayError } from '../base/errors.js';

/** Most nested objects/arrays a JSON-RPC message may have, counted from the message itself. */
export const MAX_NESTING_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/** Bytes of a string read one by one before handing the rest to the native `indexOf`. */
const SHORT_RUN = 16;

/**
 * The index of the quote closing the string whose contents start at `j`, or -1 when it is not
 * closed. Short strings and runs right after an escape are read byte by byte (an escape skips the
 * byte after the backslash); past {@link SHORT_RUN} bytes, the native `indexOf` finds the next
 * quote, which is escaped when an odd run of backslashes precedes it (a run cannot reach back past
 * the opening quote, so its parity is exact).
 */
function skipString(bytes: Uint8Array, j: number): number {
  const n = bytes.length;
  for (;;) {
    const stop = Math.min(n, j + SHORT_RUN);
    while (j < stop) {
      const d = bytes[j];
      if (d === QUOTE) return j;
      j += d === BACKSLASH ? 2 : 1;
    }
    if (j >= n) return -1;
    const q = bytes.indexOf(QUOTE, j);
    if (q < 0) return -1;
    let k = q - 1;
    while (bytes[k] === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q;
    j = q + 1;
  }
}

/** {@link skipString} over a JS string (UTF-16 units). */
function skipTextString(text: string, j: number): number {
  const n = text.length;
  for (;;) {
    const stop = Math.min(n, j + SHORT_RUN);
    while (j < stop) {
      const d = text.charCodeAt(j);
      if (d === QUOTE) return j;
      j += d === BACKSLASH ? 2 : 1;
    }
    if (j >= n) return -1;
    const q = text.indexOf('"', j);
    if (q < 0) return -1;
    let k = q - 1;
    while (text.charCodeAt(k) === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q;
    j = q + 1;
  }
}

/**
 * Whether the JSON text in `bytes` (UTF-8) nests deeper than `maxDepth`, in one pass over the
 * bytes: brackets are counted outside strings; a string is skipped byte by byte while short,
 * then by a native search for its closing quote (a quote preceded by an odd run of backslashes is
 * escaped). Meant to run after `JSON.parse`
 * accepted the same bytes (its result on invalid JSON is only a bound). Inputs of at most
 * `maxDepth` bytes cannot exceed it and return at once.
 *
 * @returns the byte offset of the first `[` or `{` at depth `maxDepth + 1`, or -1 when within the limit.
 */
export function jsonDepthExceeded(bytes: Uint8Array, maxDepth: number = MAX_NESTING_DEPTH): number {
  const n = bytes.length;
  if (n <= maxDepth) return -1;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      i = skipString(bytes, i + 1);
      if (i < 0) return -1;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return i;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return -1;
}

/**
 * {@link jsonDepthExceeded} for JSON held in a JS string (e.g. a tool call's `arguments` string
 * inside a REST body).
 *
 * @returns the UTF-16 index of the first `[` or `{` at depth `maxDepth + 1`, or -1.
 */
export function jsonTextDepthExceeded(text: string, maxDepth: number = MAX_NESTING_DEPTH): number {
  const n = text.length;
  if (n <= maxDepth) return -1;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = skipTextString(text, i + 1);
      if (i < 0) return -1;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return i;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return -1;
}

/** What {@link scanMsgpack} found. `offset` is a byte offset into the scanned payload. */
export type MsgpackScan =
  | { readonly kind: 'ok' }
  | { readonly kind: 'too_deep'; readonly offset: number }
  /** A uint64/int64 outside ±(2^53 − 1); `value` is its exact decimal text. */
  | { readonly kind: 'unsafe_integer'; readonly offset: number; readonly value: string };

const OK: MsgpackScan = { kind: 'ok' };
/** Big-endian uint16 at `at` (the caller checked the bounds). */
function u16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

/** Big-endian uint32 at `at` (the caller checked the bounds). */
function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at] ?? 0) * 0x100_0000 + (((bytes[at + 1] ?? 0) << 16) | ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0));
}

/** Decimal text of the big-endian 64-bit integer at `at` (error path only). */
function bigAt(bytes: Uint8Array, at: number, signed: boolean): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, 8);
  return (signed ? view.getBigInt64(0) : view.getBigUint64(0)).toString();
}

/** The item-count stack of {@link scanMsgpack}, reused (the scan is synchronous); grown for a larger `maxDepth`. */
let scratch = new Float64Array(MAX_NESTING_DEPTH + 1);
/** 2^53 / 2^32: a 64-bit integer is safe when the high word is below this (or above its negation). */
const SAFE_HIGH = 0x20_0000;

/**
 * One iterative pass over the MessagePack value in `bytes` (format:
 * https://github.com/msgpack/msgpack/blob/master/spec.md) that reads only headers: map and array
 * headers push their item count on a small stack; str, bin and ext payloads are skipped by length.
 * Finds, before any recursive decoder runs:
 *
 * - a map or array at depth `maxDepth + 1` → `too_deep` (map keys count as items like values);
 * - a uint64 (0xcf) or int64 (0xd3) outside ±(2^53 − 1) → `unsafe_integer`: such a value has no
 *   exact JS number, and a JS `bigint` cannot be written as JSON.
 *
 * Truncated or malformed input (and trailing bytes) return `ok` as far as they were read: the
 * decoder that runs next reports them.
 */
export function scanMsgpack(bytes: Uint8Array, maxDepth: number = MAX_NESTING_DEPTH): MsgpackScan {
  const n = bytes.length;
  // remaining[level]: items still to read in the open container at `level`; level 0 holds the one top-level value
  if (scratch.length < maxDepth + 1) scratch = new Float64Array(maxDepth + 1);
  const remaining = scratch;
  remaining[0] = 1;
  let top = 0;
  let pos = 0;
  for (;;) {
    while (remaining[top] === 0) {
      if (top === 0) return OK;
      top--;
    }
    if (pos >= n) return OK;
    remaining[top] = (remaining[top] ?? 1) - 1;
    const start = pos;
    const b = bytes[pos] ?? 0;
    let count = -1; // items of a container starting here (-1: not a container)
    if (b <= 0x7f || b >= 0xe0) pos += 1; // positive / negative fixint
    else if (b <= 0x8f) {
      count = (b & 0x0f) * 2;
      pos += 1;
    } else if (b <= 0x9f) {
      count = b & 0x0f;
      pos += 1;
    } else if (b <= 0xbf) pos += 1 + (b & 0x1f); // fixstr
    else {
      if (pos + 9 > n && (b === 0xcf || b === 0xd3)) return OK;
      switch (b) {
        case 0xc0: // nil
        case 0xc1: // never used: the decoder refuses it
        case 0xc2: // false
        case 0xc3: // true
          pos += 1;
          break;
        case 0xc4: // bin 8
        case 0xd9: // str 8
          pos += 2 + (pos + 1 < n ? (bytes[pos + 1] ?? 0) : 0);
          break;
        case 0xc5: // bin 16
        case 0xda: // str 16
          pos += 3 + (pos + 3 <= n ? u16(bytes, pos + 1) : 0);
          break;
        case 0xc6: // bin 32
        case 0xdb: // str 32
          pos += 5 + (pos + 5 <= n ? u32(bytes, pos + 1) : 0);
          break;
        case 0xc7: // ext 8
          pos += 3 + (pos + 1 < n ? (bytes[pos + 1] ?? 0) : 0);
          break;
        case 0xc8: // ext 16
          pos += 4 + (pos + 3 <= n ? u16(bytes, pos + 1) : 0);
          break;
        case 0xc9: // ext 32
          pos += 6 + (pos + 5 <= n ? u32(bytes, pos + 1) : 0);
          break;
        case 0xca: // float 32
        case 0xce: // uint 32
        case 0xd2: // int 32
          pos += 5;
          break;
        case 0xcb: // float 64
          pos += 9;
          break;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          pos += 2;
          break;
        case 0xcd: // uint 16
        case 0xd1: // int 16
          pos += 3;
          break;
        case 0xcf: // uint 64
          if (u32(bytes, pos + 1) >= SAFE_HIGH) return { kind: 'unsafe_integer', offset: pos, value: bigAt(bytes, pos + 1, false) };
          pos += 9;
          break;
        case 0xd3: {
          // int 64
          const high = u32(bytes, pos + 1) | 0;
          if (high >= SAFE_HIGH || high < -SAFE_HIGH || (high === -SAFE_HIGH && u32(bytes, pos + 5) === 0)) {
            return { kind: 'unsafe_integer', offset: pos, value: bigAt(bytes, pos + 1, true) };
          }
          pos += 9;
          break;
        }
        case 0xd4: // fixext 1
          pos += 3;
          break;
        case 0xd5: // fixext 2
          pos += 4;
          break;
        case 0xd6: // fixext 4
          pos += 6;
          break;
        case 0xd7: // fixext 8
          pos += 10;
          break;
        case 0xd8: // fixext 16
          pos += 18;
          break;
        case 0xdc: // array 16
          count = pos + 3 <= n ? u16(bytes, pos + 1) : 0;
          pos += 3;
          break;
        case 0xdd: // array 32
          count = pos + 5 <= n ? u32(bytes, pos + 1) : 0;
          pos += 5;
          break;
        case 0xde: // map 16
          count = (pos + 3 <= n ? u16(bytes, pos + 1) : 0) * 2;
          pos += 3;
          break;
        case 0xdf: // map 32
          count = (pos + 5 <= n ? u32(bytes, pos + 1) : 0) * 2;
          pos += 5;
          break;
      }
    }
    if (count >= 0) {
      if (top + 1 > maxDepth) return { kind: 'too_deep', offset: start };
      if (count > 0) remaining[++top] = count;
    }
  }
}

/**
 * The error for input nested deeper than `limit`: NESTING_TOO_DEEP (-32600 / HTTP 400), its
 * message naming the limit and where it was crossed, `details: { limit, offset }`.
 *
 * @param what what was scanned, for the message (e.g. "request body", "text frame").
 * @param offset where the first container over the limit starts (bytes, or UTF-16 units for a string).
 */
export function nestingTooDeep(what: string, offset: number, limit: number = MAX_NESTING_DEPTH): GatewayError {
  return new GatewayError('NESTING_TOO_DEEP', `Invalid Request: ${what} nests objects/arrays deeper than the limit of ${limit} levels (at offset ${offset})`, {
    limit,
    offset,
  });
}

/** The `id` of a parsed JSON-RPC request object, when it has a valid one; else `null` (read without recursion). */
export function requestIdOf(value: unknown): string | number | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const id = (value as Record<string, unknown>)['id'];
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null;
}
