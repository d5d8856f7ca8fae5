/**
 * MessagePack write primitives shared by the gateway's two hand-written packers — the tool-log
 * record's `MsgpackWriter` (`store/msgpack-writer.ts`) and MCPW's per-frame packer
 * (`codecs/mcpw-msgpack.ts`): each writes one item into a buffer at a position the caller owns and
 * returns the position after it. The caller makes room first (the worst case is given with each
 * function); nothing here allocates.
 *
 * Encodings (https://github.com/msgpack/msgpack/blob/master/spec.md), as msgpackr 2.1 writes them:
 * strings as UTF-8 `str` with the smallest header, a lone UTF-16 surrogate as U+FFFD (as Node's
 * UTF-8 encoder writes it); integers in [-2^31, 2^32) in the smallest int format; other numbers
 * as float 64; array and map headers in their smallest form.
 */

/** Strings shorter than this (UTF-16 units) are written by a JS loop, longer ones by Node's native UTF-8 encoder. */
const NATIVE_UTF8_FROM = 64;

/**
 * Writes `s` as a `str` at `at`; returns the position after it. Room needed: `3 * s.length + 5`
 * bytes (the header is guessed from the UTF-16 length and the bytes moved when the UTF-8 length
 * needs a larger one).
 */
export function writeStr(buf: Buffer, view: DataView, at: number, s: string): number {
  const n = s.length;
  const guess = n < 0x20 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  let p = at + guess;
  if (n < NATIVE_UTF8_FROM) {
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) buf[p++] = c;
      else if (c < 0x800) {
        buf[p++] = (c >> 6) | 0xc0;
        buf[p++] = (c & 0x3f) | 0x80;
      } else if ((c & 0xfc00) === 0xd800 && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c & 0x3ff) << 10) + (s.charCodeAt(++i) & 0x3ff);
        buf[p++] = (c >> 18) | 0xf0;
        buf[p++] = ((c >> 12) & 0x3f) | 0x80;
        buf[p++] = ((c >> 6) & 0x3f) | 0x80;
        buf[p++] = (c & 0x3f) | 0x80;
      } else if ((c & 0xf800) === 0xd800) {
        // a lone surrogate: U+FFFD, as Node's encoder (and msgpackr) writes it
        buf[p++] = 0xef;
        buf[p++] = 0xbf;
        buf[p++] = 0xbd;
      } else {
        buf[p++] = (c >> 12) | 0xe0;
        buf[p++] = ((c >> 6) & 0x3f) | 0x80;
        buf[p++] = (c & 0x3f) | 0x80;
      }
    }
  } else {
    p += buf.write(s, p, buf.length - p, 'utf8');
  }
  const bytes = p - at - guess;
  const header = bytes < 0x20 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
  if (header !== guess) buf.copyWithin(at + header, at + guess, p);
  if (header === 1) buf[at] = 0xa0 | bytes;
  else if (header === 2) {
    buf[at] = 0xd9;
    buf[at + 1] = bytes;
  } else if (header === 3) {
    buf[at] = 0xda;
    buf[at + 1] = bytes >> 8;
    buf[at + 2] = bytes & 0xff;
  } else {
    buf[at] = 0xdb;
    view.setUint32(at + 1, bytes);
  }
  return at + header + bytes;
}

/**
 * Writes the number `v` at `p`; returns the position after it. Room needed: 9 bytes. `-0` is an
 * integer here (written as `0`, as msgpackr writes it); a caller that keeps `-0` writes it as a
 * float 64 itself.
 */
export function writeNumber(buf: Buffer, view: DataView, p: number, v: number): number {
  if (v >>> 0 === v) {
    if (v < 0x80) buf[p++] = v;
    else if (v < 0x100) {
      buf[p++] = 0xcc;
      buf[p++] = v;
    } else if (v < 0x10000) {
      buf[p++] = 0xcd;
      buf[p++] = v >> 8;
      buf[p++] = v & 0xff;
    } else {
      buf[p++] = 0xce;
      view.setUint32(p, v);
      p += 4;
    }
  } else if (v >> 0 === v) {
    if (v >= -0x20) buf[p++] = 0x100 + v;
    else if (v >= -0x80) {
      buf[p++] = 0xd0;
      buf[p++] = v + 0x100;
    } else if (v >= -0x8000) {
      buf[p++] = 0xd1;
      view.setInt16(p, v);
      p += 2;
    } else {
      buf[p++] = 0xd2;
      view.setInt32(p, v);
      p += 4;
    }
  } else {
    buf[p++] = 0xcb;
    view.setFloat64(p, v);
    p += 8;
  }
  return p;
}

/**
 * Writes an array (`base` 0x90) or map (`base` 0x80) header for `n` items or pairs at `p`;
 * returns the position after it. Room needed: 5 bytes.
 */
export function writeHeader(buf: Buffer, view: DataView, p: number, base: 0x90 | 0x80, n: number): number {
  if (n < 0x10) {
    buf[p] = base | n;
    return p + 1;
  }
  if (n < 0x10000) {
    buf[p] = base === 0x90 ? 0xdc : 0xde;
    view.setUint16(p + 1, n);
    return p + 3;
  }
  buf[p] = base === 0x90 ? 0xdd : 0xdf;
  view.setUint32(p + 1, n);
  return p + 5;
}
