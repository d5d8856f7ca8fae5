/**
 * msgpackr value encoding for level@10 sublevels (level@10 takes `{ name, format: 'view', encode, decode }`).
 *
 * The round trip is exact for JSON-like values: every leaf is `Object.is`-equal, objects come
 * back as plain objects with the same own keys in the same order, arrays as arrays. Two msgpackr
 * habits would break that, and are handled here:
 *
 * - msgpackr writes `-0` as the integer `0`;
 * - msgpackr renames an own `"__proto__"` key (which `JSON.parse` can produce) to `"__proto_"`
 *   on decode, which also collides with a real `"__proto_"` key.
 *
 * Object fields whose value is `undefined` are left out, as `JSON.stringify` does (so a record
 * with an unset optional field reads back without the key, matching `exactOptionalPropertyTypes`).
 *
 * Wire format: plain MessagePack for the common case. A value containing `-0` or a
 * `"__proto__"` key is written as the byte `0xc1` (never used by MessagePack) followed by the
 * MessagePack of `[value, negativeZeroPaths]`, and decoded through `Map`s so keys are kept as
 * they are. Strings are stored as UTF-8, so a lone UTF-16 surrogate comes back as U+FFFD.
 */
import { Packr, Unpackr, type Options } from 'msgpackr';

/** A level@10 value encoding (`valueEncoding` option of `db.sublevel()`); stores `Uint8Array`s. */
export interface MsgpackCodec<T> {
  readonly name: 'tributary-msgpackr';
  readonly format: 'view';
  encode(value: T): Uint8Array;
  decode(data: Uint8Array): T;
}

const FIXUP_MARKER = 0xc1;

/** For values without `undefined` object fields (the common case): msgpackr's fastest map writer. */
const packr = new Packr({ useRecords: false });
// `skipValues` is documented in msgpackr's README (2.1.x) but missing from its `Options` type.
// It switches msgpackr to a slower map writer, so it is used only when a field is `undefined`.
const skipOptions: Options & { skipValues: readonly unknown[] } = { useRecords: false, skipValues: [undefined] };
const skipUndefinedPackr = new Packr(skipOptions);
const plainUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const mapUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

type PathSegment = string | number;

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** {@link scan} flag: some plain object has a field whose value is `undefined`. */
const UNDEFINED_FIELD = 1;
/** {@link scan} flag: a `-0` or an own `"__proto__"` key somewhere: the fix-up frame is needed. */
const FIXUP = 2;

/** One walk over what JSON would reach: which of {@link UNDEFINED_FIELD} / {@link FIXUP} apply. */
function scan(value: unknown): number {
  if (typeof value !== 'object' || value === null) return typeof value === 'number' && Object.is(value, -0) ? FIXUP : 0;
  let flags = 0;
  if (Array.isArray(value)) {
    for (const item of value) {
      flags |= scan(item);
      if (flags & FIXUP) return flags;
    }
    return flags;
  }
  if (!isPlainObject(value)) return 0;
  for (const key of Object.keys(value)) {
    if (key === '__proto__') return flags | FIXUP;
    const item = value[key];
    flags |= item === undefined ? UNDEFINED_FIELD : scan(item);
    if (flags & FIXUP) return flags;
  }
  return flags;
}

function collectNegativeZeros(value: unknown, path: PathSegment[], out: PathSegment[][]): void {
  if (typeof value === 'number') {
    if (Object.is(value, -0)) out.push([...path]);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      path.push(i);
      collectNegativeZeros(item, path, out);
      path.pop();
    });
    return;
  }
  if (!isPlainObject(value)) return;
  for (const key of Object.keys(value)) {
    const item = value[key];
    if (item === undefined) continue;
    path.push(key);
    collectNegativeZeros(item, path, out);
    path.pop();
  }
}

/** Turns the `Map`s of a map-mode decode back into plain objects, keeping `"__proto__"` as an own key. */
function fromMaps(value: unknown): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value as Map<unknown, unknown>) {
      Object.defineProperty(out, String(k), { value: fromMaps(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  if (Array.isArray(value)) return value.map(fromMaps);
  return value;
}

function setNegativeZero(root: unknown, path: readonly PathSegment[]): unknown {
  if (path.length === 0) return -0;
  let node: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (typeof node !== 'object' || node === null) return root;
    node = (node as Record<PathSegment, unknown>)[path[i] as PathSegment];
  }
  if (typeof node === 'object' && node !== null) {
    Object.defineProperty(node, path[path.length - 1] as PathSegment, {
      value: -0,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return root;
}

/**
 * Encodes a value to bytes. Throws what msgpackr throws for values it cannot encode
 * (e.g. a `BigInt` beyond 64 bits). The returned view may share an internal buffer; level copies
 * it into LevelDB, other callers must copy it before the next `encodeValue`.
 */
export function encodeValue(value: unknown): Uint8Array {
  const flags = scan(value);
  if (flags === 0) return packr.pack(value);
  if ((flags & FIXUP) === 0) return skipUndefinedPackr.pack(value);
  const paths: PathSegment[][] = [];
  collectNegativeZeros(value, [], paths);
  const body = skipUndefinedPackr.pack([value, paths]);
  const out = new Uint8Array(body.length + 1);
  out[0] = FIXUP_MARKER;
  out.set(body, 1);
  return out;
}

/** Decodes bytes written by {@link encodeValue}. Throws an `Error` on malformed input (never crashes). */
export function decodeValue(data: Uint8Array): unknown {
  if (data[0] !== FIXUP_MARKER) return plainUnpackr.unpack(data);
  const decoded: unknown = mapUnpackr.unpack(data.subarray(1));
  if (!Array.isArray(decoded) || decoded.length !== 2 || !Array.isArray(decoded[1])) {
    throw new Error('msgpack value: malformed fix-up frame');
  }
  let value = fromMaps(decoded[0]);
  for (const path of decoded[1] as unknown[]) {
    if (!Array.isArray(path)) throw new Error('msgpack value: malformed -0 path');
    value = setNegativeZero(value, path as PathSegment[]);
  }
  return value;
}

const codec: MsgpackCodec<unknown> = {
  name: 'tributary-msgpackr',
  format: 'view',
  encode: encodeValue,
  decode: decodeValue,
};

/**
 * The msgpackr value encoding typed for `T`, for
 * `db.sublevel<string, T>(name, { valueEncoding: msgpackCodec<T>() })`.
 * One shared instance: level caches encodings by object identity. The type parameter is not
 * checked at runtime: decode returns whatever was stored.
 */
export function msgpackCodec<T>(): MsgpackCodec<T> {
  return codec as MsgpackCodec<T>;
}
