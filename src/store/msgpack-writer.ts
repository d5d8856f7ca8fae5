/**
 * `MsgpackWriter`: writes standard MessagePack straight into a shared slab, for values of a fixed
 * shape written on every request (the tool-log record's head and its event), where msgpackr's
 * general `pack` costs more than the bytes: one `pack` per array, a view per pack, and a copy of
 * each view into the record. The bytes are what msgpackr's decoder (and any MessagePack decoder)
 * reads; values this writer has no fast path for are packed by msgpackr and copied in.
 *
 * A value is written between {@link MsgpackWriter.begin} and {@link MsgpackWriter.end}; `end`
 * returns a view of the slab that later values are written after (or into a new slab), never
 * over: the view stays valid as long as the caller holds it, and pins its slab (64 KiB) meanwhile.
 *
 * Encoding rules (https://github.com/msgpack/msgpack/blob/master/spec.md), as msgpackr 2.1 writes
 * them except for `-0`: strings as UTF-8 `str` with the smallest header (a lone UTF-16 surrogate
 * becomes U+FFFD, as Node's UTF-8 encoder writes it); integers in [-2^31, 2^32) as the smallest
 * int format; other numbers (and `-0`, which msgpackr writes as `0`) as float 64; plain objects
 * (prototype `Object.prototype` or `null`) as maps of their own enumerable string keys, leaving
 * out fields whose value is `undefined` (as JSON does); arrays as arrays; anything else (a Date,
 * a typed array, a BigInt, `undefined` as an array item, ...) as msgpackr's `pack` writes it.
 */
import { Packr } from 'msgpackr';
import { writeHeader, writeNumber, writeStr } from '../codecs/msgpack-write.js';

/** Bytes of a fresh slab (a larger one when one value needs more). */
const SLAB_BYTES = 64 * 1024;
/** Strings shorter than this are written by a JS loop; longer ones by Node's native UTF-8 encoder. */
const NATIVE_UTF8_FROM = 64;
/** Nesting below this is left to msgpackr (which has its own limit). */
const MAX_DEPTH = 64;

/** msgpackr for values the writer has no fast path for: the same options as the tool-log record had. */
const fallbackPackr = new Packr({ useRecords: false });
/** The same for {@link MsgpackWriterOptions.asJson} writers: `undefined` as nil, as capped payloads are packed. */
const jsonFallbackPackr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true });

export interface MsgpackWriterOptions {
  /**
   * Write values as JSON would carry them: `-0` as `0`, `undefined` (an array item, or the
   * value) as nil, nesting to any depth (the caller bounds it). For payloads already found to be
   * plain JSON data.
   */
  readonly asJson?: boolean;
}

export class MsgpackWriter {
  readonly #asJson: boolean;
  readonly #maxDepth: number;
  readonly #fallback: Packr;
  #buf: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
  #view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  /** Where the value being written starts. */
  #start = 0;
  /** Where the next byte goes. */
  #pos = 0;

  constructor(options: MsgpackWriterOptions = {}) {
    this.#asJson = options.asJson === true;
    this.#maxDepth = this.#asJson ? Number.POSITIVE_INFINITY : MAX_DEPTH;
    this.#fallback = this.#asJson ? jsonFallbackPackr : fallbackPackr;
  }

  /** Starts a value (discarding an unfinished one). */
  begin(): void {
    this.#pos = this.#start;
    // a slab grown for one large value is not kept for the small ones after it
    if (this.#buf.length > SLAB_BYTES) this.#fresh();
  }

  /** The bytes written since {@link begin}: a view that later values never write over. */
  end(): Buffer {
    const out = this.#buf.subarray(this.#start, this.#pos);
    this.#start = this.#pos;
    return out;
  }

  #fresh(): void {
    this.#buf = Buffer.allocUnsafe(SLAB_BYTES);
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
    this.#start = 0;
    this.#pos = 0;
  }

  /** Bytes written since {@link begin}. */
  get length(): number {
    return this.#pos - this.#start;
  }

  /** Makes room for `n` more bytes, moving the value begun so far to a new slab when needed. */
  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const used = this.#pos - this.#start;
    const next = Buffer.allocUnsafe(Math.max(SLAB_BYTES, (used + n) * 2));
    this.#buf.copy(next, 0, this.#start, this.#pos);
    this.#buf = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.#start = 0;
    this.#pos = used;
  }

  /** One raw byte (a MessagePack header the caller knows, e.g. `0x97` for a 7-item array). */
  byte(b: number): void {
    this.#room(1);
    this.#buf[this.#pos++] = b;
  }

  /** Raw bytes, copied in as they are (e.g. a MessagePack value packed elsewhere). */
  raw(bytes: Uint8Array): void {
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Reserves a u32 little-endian length; returns its mark for {@link closeFrame}. */
  openFrame(): number {
    this.#room(4);
    this.#pos += 4;
    return this.#pos - this.#start;
  }

  /** Writes, at the mark of {@link openFrame}, the byte count written since. */
  closeFrame(mark: number): void {
    const at = this.#start + mark;
    this.#view.setUint32(at - 4, this.#pos - at, true);
  }

  nil(): void {
    this.byte(0xc0);
  }

  /** A `str`, UTF-8, smallest header. */
  str(s: string): void {
    const n = s.length;
    // the common case, field names, identifiers, timestamps: short ASCII (a fixstr or a str 8)
    if (n < NATIVE_UTF8_FROM && this.#pos + n + 2 <= this.#buf.length) {
      const buf = this.#buf;
      const at = this.#pos + (n < 0x20 ? 1 : 2);
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      if (i === n) {
        if (n < 0x20) buf[at - 1] = 0xa0 | n;
        else {
          buf[at - 2] = 0xd9;
          buf[at - 1] = n;
        }
        this.#pos = at + n;
        return;
      }
    }
    this.#room(n * 3 + 5);
    this.#pos = writeStr(this.#buf, this.#view, this.#pos, s);
  }

  /**
   * A `bin` holding the UTF-8 encoding of `s` (e.g. JSON text kept as bytes), smallest header; a
   * lone UTF-16 surrogate becomes U+FFFD, as Node's UTF-8 encoder writes it. Returns the bin's
   * length in bytes (its header aside).
   */
  binUtf8(s: string): number {
    const n = s.length;
    this.#room(n * 3 + 5);
    const buf = this.#buf;
    // header size guessed from the UTF-16 length (the byte count is at least that), fixed below
    const guess = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    const at = this.#pos;
    const bytes = buf.write(s, at + guess, 'utf8');
    const header = bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
    if (header !== guess) buf.copyWithin(at + header, at + guess, at + guess + bytes);
    if (header === 2) {
      buf[at] = 0xc4;
      buf[at + 1] = bytes;
    } else if (header === 3) {
      buf[at] = 0xc5;
      buf[at + 1] = bytes >> 8;
      buf[at + 2] = bytes & 0xff;
    } else {
      buf[at] = 0xc6;
      this.#view.setUint32(at + 1, bytes);
    }
    this.#pos = at + header + bytes;
    return bytes;
  }

  /**
   * A number: the smallest int format for integers in [-2^31, 2^32), else float 64 (so `-0`
   * stays `-0`, except for {@link MsgpackWriterOptions.asJson} writers: `0`).
   */
  num(v: number): void {
    this.#room(9);
    const buf = this.#buf;
    const p = this.#pos;
    if (v === 0 && 1 / v < 0 && !this.#asJson) {
      buf[p] = 0xcb;
      this.#view.setFloat64(p + 1, v);
      this.#pos = p + 9;
      return;
    }
    this.#pos = writeNumber(buf, this.#view, p, v);
  }

  /** An array or map header for `n` items or pairs (`base` 0x90 array, 0x80 map). */
  #header(base: 0x90 | 0x80, n: number): void {
    this.#room(5);
    this.#pos = writeHeader(this.#buf, this.#view, this.#pos, base, n);
  }

  /**
   * A plain object as a map of its own enumerable string keys, in their order, leaving out
   * `undefined` fields and the keys in `leaveOut`.
   */
  map(o: Readonly<Record<string, unknown>>, leaveOut?: ReadonlySet<string>, depth = this.#maxDepth): void {
    // a fixmap header, widened below when the map has more than 15 pairs
    this.#room(1);
    const mark = this.#pos - this.#start;
    this.#pos++;
    let n = 0;
    for (const key in o) {
      if (!Object.hasOwn(o, key)) continue;
      const v = o[key];
      if (v === undefined || leaveOut?.has(key) === true) continue;
      this.str(key);
      this.value(v, depth - 1);
      n++;
    }
    const at = this.#start + mark;
    if (n < 0x10) {
      this.#buf[at] = 0x80 | n;
      return;
    }
    const extra = n < 0x10000 ? 2 : 4;
    this.#room(extra);
    const from = this.#start + mark;
    this.#buf.copyWithin(from + 1 + extra, from + 1, this.#pos);
    this.#pos += extra;
    if (extra === 2) {
      this.#buf[from] = 0xde;
      this.#view.setUint16(from + 1, n);
    } else {
      this.#buf[from] = 0xdf;
      this.#view.setUint32(from + 1, n);
    }
  }

  /** Any value, by the rules of the module comment. Throws what msgpackr throws for a value it cannot pack. */
  value(v: unknown, depth = this.#maxDepth): void {
    switch (typeof v) {
      case 'string':
        this.str(v);
        return;
      case 'number':
        this.num(v);
        return;
      case 'boolean':
        this.byte(v ? 0xc3 : 0xc2);
        return;
      case 'object':
        if (v === null) {
          this.byte(0xc0);
          return;
        }
        if (depth > 0) {
          if (Array.isArray(v)) {
            this.#header(0x90, v.length);
            for (let i = 0; i < v.length; i++) this.value(v[i], depth - 1);
            return;
          }
          const proto: unknown = Object.getPrototypeOf(v);
          if ((proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
            this.map(v as Record<string, unknown>, undefined, depth);
            return;
          }
        }
        this.raw(this.#fallback.pack(v));
        return;
      case 'undefined':
        if (this.#asJson) this.byte(0xc0);
        else this.raw(this.#fallback.pack(undefined));
        return;
      default:
        this.raw(this.#fallback.pack(v));
    }
  }
}
