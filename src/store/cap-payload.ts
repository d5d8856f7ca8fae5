/**
 * `capPayload`: bounds what the tool log keeps of a tool call's arguments or result, measured as
 * the UTF-8 size of its JSON text.
 */

/** Default cap for tool-log arguments and results: 16 KiB of JSON. */
export const DEFAULT_PAYLOAD_CAP_BYTES = 16 * 1024;

export interface CappedPayload {
  /** The value itself when its JSON fits, else a string: a prefix of its JSON text. */
  readonly value: unknown;
  /** True exactly when `value` was replaced by a prefix (or by the unserialisable marker). */
  readonly truncated: boolean;
}

/**
 * Keeps `value` when `JSON.stringify(value)` is at most `maxBytes` UTF-8 bytes; otherwise
 * returns the longest prefix of that JSON text that fits in `maxBytes` bytes, cut on a code-point
 * boundary (the prefix is valid UTF-8 and a string prefix of the JSON), with `truncated: true`.
 * The flag is the only marker: nothing is appended to the prefix, so its UTF-8 size never
 * exceeds `maxBytes`.
 *
 * `undefined` (and other values JSON skips, like functions) are kept as they are. A value that
 * JSON cannot serialise (a cycle, a `BigInt`) becomes `"[unserialisable: <reason>]"`, cut to
 * `maxBytes`, with `truncated: true`.
 *
 * @param maxBytes cap in bytes, an integer ≥ 0 (default {@link DEFAULT_PAYLOAD_CAP_BYTES}).
 * @throws RangeError for a negative or non-integer `maxBytes`.
 */
export function capPayload(value: unknown, maxBytes: number = DEFAULT_PAYLOAD_CAP_BYTES): CappedPayload {
  const capped = capPayloadText(value, maxBytes);
  return capped.truncated ? { value: capped.text, truncated: true } : { value, truncated: false };
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
  if (!(Number.isInteger(maxBytes) && maxBytes >= 0)) throw new RangeError('capPayload: maxBytes must be an integer ≥ 0');
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
