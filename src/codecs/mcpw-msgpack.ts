/**
 * The per-frame MessagePack of MCPW payloads, written by hand for the values tool calls carry:
 * JSON-like data (maps with string keys, arrays, strings, numbers, booleans, nil). A value outside
 * that subset is left to msgpackr (the caller falls back), so the bytes and values are exactly
 * msgpackr's with the MCPW options (`./mcpw.ts`): {@link packPlain} writes the bytes msgpackr's
 * `Packr({ useRecords: false, encodeUndefinedAsNil: true, skipValues: [undefined] })` writes, and
 * {@link unpackPlain} returns the value msgpackr's `Unpackr({ useRecords: false, mapsAsObjects:
 * true, int64AsType: 'number' })` returns (tested byte for byte and value for value against
 * msgpackr in test/mcpw-msgpack.test.ts).
 *
 * Why: for a `tools/call` with 4 KiB of text each way, msgpackr's general machinery costs more
 * than the bytes — its output buffer is re-allocated whenever a string's worst case (3 bytes per
 * UTF-16 unit) passes its end, and it decodes strings through a native call that scans ahead over
 * the whole payload. Here a long ASCII string is decoded with one native ASCII check
 * (`buffer.isAscii`, https://nodejs.org/api/buffer.html#bufferisasciiinput) and a Latin-1 copy
 * (`buf.toString('latin1')` of a view of the frame's memory),
 * and payloads are packed into a 64 KiB slab that later payloads are written after, never over
 * (or into a {@link McpwScratch} the caller reuses once the frames are sent).
 *
 * MessagePack: https://github.com/msgpack/msgpack/blob/master/spec.md
 */
import { isAscii } from 'node:buffer';
import { writeHeader, writeNumber, writeStr } from './msgpack-write.js';

/** Thrown inside the packer/unpacker when a value is outside the subset; never escapes this module. */
const UNSUPPORTED: unique symbol = Symbol('mcpw-msgpack: outside the plain subset');

/** What {@link unpackPlain} returns when the payload holds something it leaves to msgpackr. */
export const NOT_PLAIN: unique symbol = Symbol('mcpw-msgpack: not plain');

/** Containers nested deeper than this are left to msgpackr (whose own limits then apply). */
const MAX_PACK_DEPTH = 64;
/** Strings of at least this many bytes are decoded natively (ASCII check, then a Latin-1 or UTF-8 slice). */
const NATIVE_DECODE_FROM = 24;
/**
 * Bytes of a fresh output slab: small enough for the allocator's heap (a slab that large is
 * mapped and unmapped by the C library each time, and every page faults in on first write).
 */
const SLAB_BYTES = 64 * 1024;
/** A scratch area that grew past this for one large payload is replaced by a fresh slab at its reset. */
const SCRATCH_KEEP_BYTES = 1024 * 1024;

// ---------------------------------------------------------------------------------------- pack

/**
 * An output area whose bytes are reused: what is packed into it stays valid until
 * {@link McpwScratch.reset}, then later payloads are written over it. For frames that are handed
 * to the socket (which copies them) before the owner resets the area, e.g. once per event-loop
 * turn; no allocation per payload. A payload larger than what is left moves the area to a bigger
 * slab (the old one stays valid for the views already handed out).
 */
export class McpwScratch {
  /** @internal the slab and the next free byte. */
  out: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
  /** @internal */
  view = new DataView(this.out.buffer, this.out.byteOffset, this.out.byteLength);
  /** @internal */
  pos = 0;

  /** Makes every byte handed out so far writable again (their views must no longer be used). */
  reset(): void {
    this.pos = 0;
    if (this.out.length > SCRATCH_KEEP_BYTES) {
      this.out = Buffer.allocUnsafe(SLAB_BYTES);
      this.view = new DataView(this.out.buffer, this.out.byteOffset, this.out.byteLength);
    }
  }
}

let out: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
let outView = new DataView(out.buffer, out.byteOffset, out.byteLength);
/** Where the payload being written starts (its reserved bytes included). */
let start = 0;
/** Where the next byte goes. */
let pos = 0;

/** The shared slab's state while a scratch area is being written (see {@link enter}). */
let savedOut = out;
let savedView = outView;
let savedStart = 0;

/** Points the writer at `scratch` (until {@link leave}). */
function enter(scratch: McpwScratch): void {
  savedOut = out;
  savedView = outView;
  savedStart = start;
  out = scratch.out;
  outView = scratch.view;
  start = pos = scratch.pos;
}

/** Back to the shared slab; `scratch` keeps where its payload ended (and its slab, when it moved). */
function leave(scratch: McpwScratch, end: number): void {
  scratch.out = out;
  scratch.view = outView;
  scratch.pos = end;
  out = savedOut;
  outView = savedView;
  start = pos = savedStart;
}

/** Makes room for `n` more bytes, moving what the current payload has written so far to a new slab when needed. */
function room(n: number): void {
  if (pos + n <= out.length) return;
  const used = pos - start;
  const next = Buffer.allocUnsafe(Math.max(SLAB_BYTES, (used + n) * 2));
  out.copy(next, 0, start, pos);
  out = next;
  outView = new DataView(next.buffer, next.byteOffset, next.byteLength);
  start = 0;
  pos = used;
}

function packString(s: string): void {
  room(s.length * 3 + 5);
  pos = writeStr(out, outView, pos, s);
}

/** A number as msgpackr writes it with `useRecords: false`: the smallest int format for int32/uint32 values (`-0` as `0`), else float 64. */
function packNumber(v: number): void {
  room(9);
  pos = writeNumber(out, outView, pos, v);
}

/** An array or map header for `n` items or pairs (`base` 0x90 array, 0x80 map), smallest form. */
function packHeader(base: 0x90 | 0x80, n: number): void {
  room(5);
  pos = writeHeader(out, outView, pos, base, n);
}

const hasOwn = Object.prototype.hasOwnProperty;

function packValue(v: unknown, depth: number): void {
  switch (typeof v) {
    case 'string':
      packString(v);
      return;
    case 'number':
      packNumber(v);
      return;
    case 'boolean':
      room(1);
      out[pos++] = v ? 0xc3 : 0xc2;
      return;
    case 'undefined':
      room(1);
      out[pos++] = 0xc0;
      return;
    case 'object': {
      if (v === null) {
        room(1);
        out[pos++] = 0xc0;
        return;
      }
      if (depth >= MAX_PACK_DEPTH) throw UNSUPPORTED;
      const ctor = (v as { constructor?: unknown }).constructor;
      if (ctor === Array) {
        const a = v as readonly unknown[];
        packHeader(0x90, a.length);
        for (let i = 0; i < a.length; i++) packValue(a[i], depth + 1);
        return;
      }
      if (ctor !== Object) throw UNSUPPORTED;
      // msgpackr: the own enumerable keys whose value is not undefined, in for-in order
      const o = v as Record<string, unknown>;
      let n = 0;
      for (const key in o) if (hasOwn.call(o, key) && o[key] !== undefined) n++;
      packHeader(0x80, n);
      let written = 0;
      for (const key in o) {
        if (!hasOwn.call(o, key)) continue;
        const item = o[key];
        if (item === undefined) continue;
        packString(key);
        packValue(item, depth + 1);
        written++;
      }
      // a getter that changed its answer between the two passes: leave it to msgpackr
      if (written !== n) throw UNSUPPORTED;
      return;
    }
    default:
      throw UNSUPPORTED;
  }
}

/** Packs `value` after `reserve` bytes at `start`; the view, or undefined (nothing kept) outside the subset. */
function packHere(value: unknown, reserve: number): Buffer | undefined {
  pos = start;
  room(reserve);
  pos += reserve;
  try {
    packValue(value, 0);
  } catch (err) {
    pos = start;
    if (err === UNSUPPORTED) return undefined;
    throw err;
  }
  return out.subarray(start, pos);
}


/** A fresh shared slab when what is left of it is small (a slab is never written over). */
function roomInShared(): void {
  if (out.length - start < SLAB_BYTES / 8) {
    out = Buffer.allocUnsafe(SLAB_BYTES);
    outView = new DataView(out.buffer, out.byteOffset, out.byteLength);
    start = pos = 0;
  }
}

/**
 * MessagePack of `value` after `reserve` bytes left for the caller (the MCPW header), as msgpackr
 * packs it with the MCPW options; `undefined` when the value holds anything but plain JSON-like
 * data — a non-plain object (class instance, `Map`, `Date`, typed array, null-prototype object),
 * a `bigint`, a function or symbol, nesting deeper than 64 — for the caller to pack with msgpackr.
 *
 * Without `scratch`, the result is a view of a shared 64 KiB slab: later payloads are written
 * after it (or into a new slab), never over it, so it stays valid for as long as it is held (it
 * pins the slab). With `scratch`, it is valid until `scratch.reset()`.
 */
export function packPlain(value: unknown, reserve: number, scratch?: McpwScratch): Buffer | undefined {
  if (scratch === undefined) {
    roomInShared();
    const bytes = packHere(value, reserve);
    if (bytes !== undefined) start = pos;
    return bytes;
  }
  enter(scratch);
  let bytes: Buffer | undefined;
  try {
    bytes = packHere(value, reserve);
  } finally {
    leave(scratch, bytes === undefined ? start : pos);
  }
  return bytes;
}


// -------------------------------------------------------------------------------------- unpack

const EMPTY = new Uint8Array(0);
let src: Uint8Array = EMPTY;
/** A Buffer view of the same memory as `src` (no copy), made for the first string decoded natively. */
let srcBuf: Buffer | undefined;
let srcView: DataView | undefined;
let at = 0;
let end = 0;

/** Small keys already decoded, by a hash of their bytes: the same string (V8 internalizes it once) for every payload. */
const KEY_CACHE_SIZE = 512;
const keyCache: (string | undefined)[] = new Array<string | undefined>(KEY_CACHE_SIZE);

function view(): DataView {
  return (srcView ??= new DataView(src.buffer, src.byteOffset, src.byteLength));
}

function buffer(): Buffer {
  return (srcBuf ??= Buffer.from(src.buffer, src.byteOffset, src.byteLength));
}

/** A string of `n` bytes at `at`: ASCII by a JS loop when short, else natively; the UTF-8 decode V8 does for msgpackr (U+FFFD for bad bytes). */
function readString(n: number): string {
  const from = at;
  const to = from + n;
  if (to > end) throw UNSUPPORTED;
  at = to;
  if (n < NATIVE_DECODE_FROM) {
    let s = '';
    for (let i = from; i < to; i++) {
      const c = src[i] as number;
      if (c >= 0x80) return buffer().toString('utf8', from, to);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return buffer().toString(isAscii(src.subarray(from, to)) ? 'latin1' : 'utf8', from, to);
}

/** A map key: cached when it is a short ASCII fixstr; `__proto__` and non-string keys are left to msgpackr. */
function readKey(): string {
  const b = src[at] as number;
  if (b >= 0xa0 && b <= 0xbf) {
    const n = b & 0x1f;
    const from = at + 1;
    if (from + n > end) throw UNSUPPORTED;
    let h = n;
    for (let i = from; i < from + n; i++) h = (Math.imul(h, 31) + (src[i] as number)) | 0;
    const slot = h & (KEY_CACHE_SIZE - 1);
    const cached = keyCache[slot];
    if (cached !== undefined && cached.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (cached.charCodeAt(i) !== src[from + i]) {
          same = false;
          break;
        }
      }
      if (same) {
        at = from + n;
        return cached;
      }
    }
    at = from;
    const key = readString(n);
    if (key === '__proto__') throw UNSUPPORTED;
    if (key.length === n) keyCache[slot] = key;
    return key;
  }
  if (b === 0xd9 || b === 0xda || b === 0xdb) {
    const key = readValue() as string;
    if (key === '__proto__') throw UNSUPPORTED;
    return key;
  }
  throw UNSUPPORTED;
}

function need(n: number): void {
  if (at + n > end) throw UNSUPPORTED;
}

function readArray(n: number): unknown[] {
  const a = new Array<unknown>(n);
  for (let i = 0; i < n; i++) a[i] = readValue();
  return a;
}

function readMap(n: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    if (at >= end) throw UNSUPPORTED;
    const key = readKey();
    o[key] = readValue();
  }
  return o;
}


function readValue(): unknown {
  if (at >= end) throw UNSUPPORTED;
  const b = src[at++] as number;
  if (b < 0x80) return b;
  if (b < 0x90) return readMap(b & 0x0f);
  if (b < 0xa0) return readArray(b & 0x0f);
  if (b < 0xc0) return readString(b & 0x1f);
  if (b >= 0xe0) return b - 0x100;
  let v: unknown;
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xca:
      need(4);
      v = view().getFloat32(at);
      at += 4;
      return v;
    case 0xcb:
      need(8);
      v = view().getFloat64(at);
      at += 8;
      return v;
    case 0xcc:
      need(1);
      return src[at++];
    case 0xcd:
      need(2);
      at += 2;
      return ((src[at - 2] as number) << 8) | (src[at - 1] as number);
    case 0xce:
      need(4);
      at += 4;
      return view().getUint32(at - 4);
    case 0xcf:
      // the caller's scan has refused every 64-bit integer outside ±(2^53 − 1)
      need(8);
      at += 8;
      return view().getUint32(at - 8) * 0x1_0000_0000 + view().getUint32(at - 4);
    case 0xd0:
      need(1);
      return view().getInt8(at++);
    case 0xd1:
      need(2);
      at += 2;
      return view().getInt16(at - 2);
    case 0xd2:
      need(4);
      at += 4;
      return view().getInt32(at - 4);
    case 0xd3:
      need(8);
      at += 8;
      return view().getInt32(at - 8) * 0x1_0000_0000 + view().getUint32(at - 4);
    case 0xd9:
      need(1);
      return readString(src[at++] as number);
    case 0xda:
      need(2);
      at += 2;
      return readString(((src[at - 2] as number) << 8) | (src[at - 1] as number));
    case 0xdb:
      need(4);
      at += 4;
      return readString(view().getUint32(at - 4));
    case 0xdc:
      need(2);
      at += 2;
      return readArray(((src[at - 2] as number) << 8) | (src[at - 1] as number));
    case 0xdd:
      need(4);
      at += 4;
      return readArray(view().getUint32(at - 4));
    case 0xde:
      need(2);
      at += 2;
      return readMap(((src[at - 2] as number) << 8) | (src[at - 1] as number));
    case 0xdf:
      need(4);
      at += 4;
      return readMap(view().getUint32(at - 4));
    default:
      // bin, ext (timestamps and the rest), the never-used 0xc1: msgpackr's
      throw UNSUPPORTED;
  }
}

/**
 * The value of one whole MessagePack payload, as msgpackr decodes it with the MCPW options, when
 * it holds only maps with string keys, arrays, strings, numbers, booleans and nil; otherwise
 * {@link NOT_PLAIN} (bin, ext, a non-string or `__proto__` key, the byte 0xC1, truncation,
 * trailing bytes), for the caller to decode with msgpackr, which also words the errors. Run
 * {@link scanMsgpack}-style depth and 64-bit integer checks first: this reader recurses, and reads
 * 64-bit integers as numbers.
 *
 * Strings are copied out (Latin-1 or UTF-8 slices), so the value does not refer to `bytes`.
 */
export function unpackPlain(bytes: Uint8Array): unknown {
  src = bytes;
  srcBuf = undefined;
  srcView = undefined;
  at = 0;
  end = bytes.length;
  try {
    const value = readValue();
    return at === end ? value : NOT_PLAIN;
  } catch (err) {
    if (err === UNSUPPORTED) return NOT_PLAIN;
    throw err;
  } finally {
    // the frame's memory is uWS's: hold no reference to it past this call
    src = EMPTY;
    srcBuf = undefined;
    srcView = undefined;
  }
}
