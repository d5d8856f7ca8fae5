/**
 * `capPayload`: bounds what the tool log keeps of a tool call's arguments or result. A value is
 * kept whole when it fits the cap in bytes either as JSON text (UTF-8) or as MessagePack (the form
 * the store keeps it in); otherwise what is kept is the longest prefix of its JSON text that fits.
 * Measuring the MessagePack form first spares the JSON serialisation of every payload (a 4 KiB
 * string costs several times more to `JSON.stringify` than to pack: msgpackr writes strings with
 * Node's native UTF-8 encoder): JSON text is produced only for a value over the cap or one that
 * MessagePack would not give back as JSON does.
 *
 * MessagePack: https://github.com/msgpack/msgpack/blob/master/spec.md
 */
import { Packr, Unpackr } from 'msgpackr';
import { keptJsonText } from '../codecs/json-text.js';
import { MsgpackWriter } from './msgpack-writer.js';

/** Default cap for tool-log arguments and results: 16 KiB of JSON. */
export const DEFAULT_PAYLOAD_CAP_BYTES = 16 * 1024;

export interface CappedPayload {
  /** The value itself when its JSON fits, else a string: a prefix of its JSON text. */
  readonly value: unknown;
  /** True exactly when `value` was replaced by a prefix (or by the unserialisable marker). */
  readonly truncated: boolean;
}

/**
 * Keeps `value` when it fits in `maxBytes` bytes as MessagePack ({@link capPayloadPacked}'s
 * encoding, for plain JSON data) or as JSON text (UTF-8); otherwise returns the longest prefix of
 * its JSON text that fits in `maxBytes` bytes, cut on a code-point boundary (the prefix is valid
 * UTF-8 and a string prefix of the JSON), with `truncated: true`. The flag is the only marker:
 * nothing is appended to the prefix, so its UTF-8 size never exceeds `maxBytes`. A value whose
 * JSON text fits is never cut.
 *
 * `undefined` (and other values JSON skips, like functions) are kept as they are. A value that
 * JSON cannot serialise (a cycle, a `BigInt`) becomes `"[unserialisable: <reason>]"`, cut to
 * `maxBytes`, with `truncated: true`.
 *
 * @param maxBytes cap in bytes, an integer ≥ 0 (default {@link DEFAULT_PAYLOAD_CAP_BYTES}).
 * @throws RangeError for a negative or non-integer `maxBytes`.
 */
export function capPayload(value: unknown, maxBytes: number = DEFAULT_PAYLOAD_CAP_BYTES): CappedPayload {
  checkCap(maxBytes);
  if (cheaplyPackedWithin(value, maxBytes) !== undefined) return { value, truncated: false };
  const overCap = stoppedForCost;
  const capped = capPayloadText(value, maxBytes);
  if (capped.truncated && overCap && thoroughlyPackedWithin(value, maxBytes) !== undefined) return { value, truncated: false };
  return capped.truncated ? { value: capped.text, truncated: true } : { value, truncated: false };
}

function checkCap(maxBytes: number): void {
  if (!(Number.isInteger(maxBytes) && maxBytes >= 0)) throw new RangeError('capPayload: maxBytes must be an integer ≥ 0');
}

/**
 * Standard MessagePack only, read back as JSON would read the value's JSON text: no records
 * (`useRecords: false`); `undefined` as an array item or the whole value is nil (JSON's `null`),
 * never msgpackr's `undefined` extension; maps with the smallest header (`variableMapSize`).
 * Packs strings and JSON text (`bin`); plain values are written by {@link payloadWriter}, to the
 * same rules. Values these could not carry as JSON does never reach them ({@link isPlainJson}).
 */
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true });
// pack() returns a view of msgpackr's buffer that later packs write after, never over
// int64AsType 'number': these packers write no 64-bit integers (msgpackr packs large numbers as float 64)
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** Nesting beyond this is left to `JSON.stringify` (and a cycle is found by it). */
const MAX_PLAIN_DEPTH = 200;
/**
 * Strings of at least this many UTF-16 units are what MessagePack packs much faster than JSON
 * writes them: msgpackr hands them to Node's native UTF-8 encoder, where `JSON.stringify` looks at
 * every character for escaping; shorter ones it packs with a JS loop, no faster than JSON.
 */
const LONG_STRING = 64;
/**
 * Past {@link NODE_BUDGET} values looked at, packing goes on only while the long strings seen hold
 * at least this many characters per value: otherwise the payload is mostly small values (API
 * records, say), which `JSON.stringify` writes about as fast as msgpackr packs them, and the look
 * through them would cost more than it saves.
 */
const CHARS_PER_NODE = 16;
/** Values looked at before {@link CHARS_PER_NODE} applies (≈ 0.5 µs of looking). */
const NODE_BUDGET = 32;

/** `String.prototype.isWellFormed` (ES2024; Node ≥ 20): false when `s` holds a lone surrogate. */
const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

// what the last look found (one look at a time: it is synchronous and calls no user code but getters)
let nodes = 0;
let longChars = 0;
let nodeBudget = NODE_BUDGET;
let stoppedForCost = false;

function plain(value: unknown, depth: number): boolean {
  if (++nodes > nodeBudget && longChars < nodes * CHARS_PER_NODE) {
    stoppedForCost = true;
    return false;
  }
  switch (typeof value) {
    case 'string':
      if (value.length >= LONG_STRING) longChars += value.length;
      return wellFormed(value);
    case 'number':
      return Number.isFinite(value);
    case 'boolean':
    case 'undefined':
      return true;
    case 'object': {
      if (value === null) return true;
      if (depth <= 0 || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!plain(value[i], depth - 1)) return false;
        return true;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      const record = value as Record<string, unknown>;
      for (const key in record) {
        // msgpackr reads a `__proto__` key back as `__proto_` (a guard against prototype pollution)
        if (key === '__proto__' || !wellFormed(key)) return false;
        const item = record[key];
        if (item !== undefined && !plain(item, depth - 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * True when MessagePack of `value` ({@link capPayloadPacked}'s packers) reads back as JSON would
 * read `JSON.stringify(value)`: null, booleans, finite numbers (`-0` packs as `0`, as JSON writes
 * it), well-formed strings, arrays, and objects of `Object.prototype` or no prototype without
 * `toJSON` or a `__proto__` key, to `depth` levels; `undefined` as JSON treats it. Anything else
 * (a Date, a Map, a typed array, a class instance, NaN, a BigInt, a string with a lone surrogate,
 * which JSON escapes and UTF-8 cannot carry) is not: its JSON text is what gets stored.
 * It looks at types, never at a string's characters one by one. Throws what a getter throws.
 */
export function isPlainJson(value: unknown, depth: number): boolean {
  nodes = 0;
  longChars = 0;
  nodeBudget = Number.POSITIVE_INFINITY;
  stoppedForCost = false;
  return plain(value, depth);
}

/**
 * Writes the payloads the look found plain, as msgpackr's `packr` with `skipValues: [undefined]`
 * would (a map's `undefined` fields left out, `undefined` items nil, `-0` as `0`), without
 * msgpackr's per-pack set-up; one slab that later payloads are written after, never over.
 */
const payloadWriter = new MsgpackWriter({ asJson: true });

/** MessagePack of the value the last look found plain, when it packs into at most `maxBytes` bytes. */
function packWithin(value: unknown, maxBytes: number): Uint8Array | undefined {
  const w = payloadWriter;
  w.begin();
  try {
    w.value(value);
  } catch (err) {
    w.begin();
    throw err;
  }
  if (w.length > maxBytes) {
    w.begin();
    return undefined;
  }
  return w.end();
}

/**
 * MessagePack of `value` (`undefined`: nil) when it is plain JSON data ({@link isPlainJson}) and
 * packs into at most `maxBytes` bytes; else `undefined`, also when looking at it throws (a getter,
 * a revoked proxy): then `JSON.stringify` decides, as it did before MessagePack came first.
 */
function thoroughlyPackedWithin(value: unknown, maxBytes: number): Uint8Array | undefined {
  try {
    return isPlainJson(value, MAX_PLAIN_DEPTH) ? packWithin(value, maxBytes) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * {@link thoroughlyPackedWithin}, except that a payload of mostly small values gives `undefined`
 * after the first {@link NODE_BUDGET} (JSON costs no more to write there) and sets
 * `stoppedForCost`: the look every tool call's payloads get.
 */
function cheaplyPackedWithin(value: unknown, maxBytes: number): Uint8Array | undefined {
  nodes = 0;
  longChars = 0;
  nodeBudget = NODE_BUDGET;
  stoppedForCost = false;
  try {
    return plain(value, MAX_PLAIN_DEPTH) ? packWithin(value, maxBytes) : undefined;
  } catch {
    return undefined;
  }
}

/** A `bin` holding `text` (UTF-8), when that is at most `maxBytes` bytes (the header aside). */
function textWithin(text: string, maxBytes: number): Uint8Array | undefined {
  // every UTF-16 unit takes at least one byte
  if (text.length > maxBytes) return undefined;
  const w = payloadWriter;
  w.begin();
  if (w.binUtf8(text) > maxBytes) {
    w.begin();
    return undefined;
  }
  return w.end();
}

/** What {@link capPayloadPacked} keeps of a value: one MessagePack value (see there). */
export interface PackedPayload {
  /** MessagePack bytes: a view of a shared buffer, for the caller to copy (see {@link capPayloadPacked}). */
  readonly bytes: Uint8Array;
  /** True exactly when `bytes` holds a prefix of the JSON text (or the unserialisable marker). */
  readonly truncated: boolean;
}

/**
 * {@link capPayload}'s rule, giving the bytes a store keeps: one MessagePack value, either
 * - a `bin` holding the JSON text the value was parsed from, as its upstream wrote it, when that
 *   text was kept (`codecs/json-text.ts`: a stdio upstream's result) and is at most `maxBytes`
 *   bytes (no look through the value at all);
 * - the value itself, when it is plain JSON data ({@link isPlainJson}) and its MessagePack is at
 *   most `maxBytes` bytes (no JSON text is produced: the common case);
 * - a `bin` holding the value's JSON text (UTF-8, at most `maxBytes` bytes), when the value is not
 *   plain JSON data, or only the text fits, or the value is mostly small values (past 32 values,
 *   fewer than 16 characters of long strings per value: JSON writes those no slower than msgpackr
 *   packs them, so the look stops there and JSON text is kept);
 * - a `str`, the longest prefix of the JSON text within `maxBytes` UTF-8 bytes, with
 *   `truncated: true`, when neither fits (or a caller's own cut, see `prefix`).
 * So the bytes are at most `maxBytes` plus a MessagePack header of ≤ 5 bytes. `undefined` reads
 * back as `null`, as JSON would carry it. Read back with {@link unpackPayload}.
 *
 * `bytes` is a view of a shared buffer (the payload writer's slab, or msgpackr's buffer for JSON
 * text and cut prefixes): later payloads are written after it, never over it, but it pins that
 * buffer, so keep a copy, not the view (the tool log copies it into the record at once).
 *
 * @param prefix a string the caller already cut (flagged truncated by it): kept as it is when it
 *   fits in `maxBytes` UTF-8 bytes, else treated as any value over the cap.
 * @param maxBytes cap in bytes, an integer ≥ 0 (default {@link DEFAULT_PAYLOAD_CAP_BYTES}).
 * @throws RangeError for a negative or non-integer `maxBytes`.
 */
export function capPayloadPacked(value: unknown, maxBytes: number = DEFAULT_PAYLOAD_CAP_BYTES, prefix = false): PackedPayload {
  checkCap(maxBytes);
  if (prefix) {
    if (typeof value === 'string' && Buffer.byteLength(value, 'utf8') <= maxBytes) return { bytes: packr.pack(value), truncated: true };
    return { bytes: packr.pack(capPayloadText(value ?? null, maxBytes).text), truncated: true };
  }
  // a result as its upstream wrote it: its JSON text, copied (no look through the value)
  const text = keptJsonText(value);
  if (text !== undefined) {
    const kept = textWithin(text, maxBytes);
    if (kept !== undefined) return { bytes: kept, truncated: false };
  }
  const packed = cheaplyPackedWithin(value, maxBytes);
  if (packed !== undefined) return { bytes: packed, truncated: false };
  const stopped = stoppedForCost;
  const capped = capPayloadText(value, maxBytes);
  if (!capped.truncated) return { bytes: packr.pack(Buffer.from(capped.text, 'utf8')), truncated: false };
  // over the cap as JSON text: kept whole if its MessagePack fits, which the cheap look did not find out
  const whole = stopped ? thoroughlyPackedWithin(value, maxBytes) : undefined;
  return whole !== undefined ? { bytes: whole, truncated: false } : { bytes: packr.pack(capped.text), truncated: true };
}

/**
 * The value {@link capPayloadPacked}'s bytes stand for: a `bin` is JSON text, parsed; anything
 * else is the value (a truncated payload's prefix is a string). Throws what msgpackr or
 * `JSON.parse` throw for malformed bytes.
 */
export function unpackPayload(bytes: Uint8Array): unknown {
  const value: unknown = unpackr.unpack(bytes);
  return value instanceof Uint8Array ? (JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')) as unknown) : value;
}

/** What {@link capPayloadText} keeps of a value: its JSON text, or a prefix of it. */
export interface CappedText {
  /** The JSON text of the value when it fits in the cap; else a prefix of it (see {@link capPayload}). */
  readonly text: string;
  /** True exactly when `text` is a prefix (or the unserialisable marker), not the whole JSON text. */
  readonly truncated: boolean;
}

/**
 * {@link capPayload}'s rule, giving the JSON text itself: for a store that keeps the text it had to
 * produce anyway to measure the value (one serialisation per payload instead of JSON for the cap
 * and then MessagePack of the value). `undefined` (and other values JSON skips) give `"null"`,
 * what a JSON peer would read in their place. JSON has no `-0`: it comes back as `0`.
 *
 * @param maxBytes cap in bytes, an integer ≥ 0 (default {@link DEFAULT_PAYLOAD_CAP_BYTES}).
 * @throws RangeError for a negative or non-integer `maxBytes`.
 */
export function capPayloadText(value: unknown, maxBytes: number = DEFAULT_PAYLOAD_CAP_BYTES): CappedText {
  checkCap(maxBytes);
  let json: string | undefined;
  try {
    json = JSON.stringify(value) as string | undefined;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { text: utf8Prefix(`[unserialisable: ${reason}]`, maxBytes), truncated: true };
  }
  if (json === undefined) return { text: 'null', truncated: false };
  // UTF-16 length ≤ UTF-8 length ≤ 3 × UTF-16 length: skip the byte count when the answer is clear.
  if (json.length * 3 <= maxBytes) return { text: json, truncated: false };
  if (json.length <= maxBytes && Buffer.byteLength(json, 'utf8') <= maxBytes) return { text: json, truncated: false };
  return { text: utf8Prefix(json, maxBytes), truncated: true };
}

/**
 * The longest prefix of `text` whose UTF-8 encoding is at most `maxBytes` bytes, never splitting
 * a surrogate pair. `text` must be well-formed UTF-16 (JSON text always is).
 */
export function utf8Prefix(text: string, maxBytes: number): string {
  // Every code unit takes ≥ 1 byte, so the answer lies within the first `maxBytes` code units.
  let head = text.length > maxBytes ? text.slice(0, maxBytes) : text;
  const lastUnit = head.charCodeAt(head.length - 1);
  if (head.length < text.length && lastUnit >= 0xd800 && lastUnit <= 0xdbff) head = head.slice(0, -1);
  const bytes = Buffer.from(head, 'utf8');
  if (bytes.length <= maxBytes) return head;
  let cut = maxBytes;
  // Back off continuation bytes (10xxxxxx) so the cut falls between code points.
  while (cut > 0 && ((bytes[cut] as number) & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut).toString('utf8');
}
