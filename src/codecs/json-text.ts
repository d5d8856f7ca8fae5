/**
 * The JSON text a value was parsed from, kept beside the value so that code writing the value out
 * again as JSON can copy the text instead of serialising the value: an upstream's `tools/call`
 * result goes into the caller's reply and into the tool log as it arrived (the stdio transport
 * keeps it, see `upstreams/stdio-framing.ts`), without a `JSON.stringify` per writer.
 *
 * Contract: a value with kept text is not changed in place; code that needs a changed result
 * makes a changed copy, and a copy has no kept text (it is serialised as usual). The text is a
 * private class field stamped onto the value (the base constructor returns the value, so the
 * subclass's field is added to it): as cheap as adding a property, and invisible to
 * `JSON.stringify`, `for…in`, spread, `Object.keys`, reflection, deep equality, MessagePack
 * encoders and `structuredClone`.
 *
 * JSON: https://www.rfc-editor.org/rfc/rfc8259 — JSON-RPC 2.0: https://www.jsonrpc.org/specification
 * Private fields on a returned object: https://tc39.es/ecma262/#sec-privatefieldadd
 */

/** A base whose constructor returns the object it is given, so a subclass's fields land on it. */
class Stamped {
  constructor(value: object) {
    // the object given becomes `this` of the subclass constructor
    return value;
  }
}

/** Stamps a value with its JSON text (see the module comment). */
class KeptJsonText extends Stamped {
  readonly #text: string;

  private constructor(value: object, text: string) {
    super(value);
    this.#text = text;
  }

  static keep(value: object, text: string): void {
    // a second stamp on the same value would throw (a private field is added once): keep the first
    if (!(#text in value)) new KeptJsonText(value, text);
  }

  static of(value: object): string | undefined {
    return #text in value ? (value as KeptJsonText).#text : undefined;
  }
}

/**
 * Keeps `text` as the JSON text of `value`. The caller vouches that `JSON.parse(text)` gave
 * `value` (one JSON value, nothing around it) and that the text holds no line terminator (it is
 * spliced into SSE `data:` lines and newline-delimited frames as it is). A value keeps the first
 * text it was given.
 */
export function keepJsonText(value: object, text: string): void {
  KeptJsonText.keep(value, text);
}

/** The JSON text kept for `value` by {@link keepJsonText}, or undefined (none kept: a copy has none). */
export function keptJsonText(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? KeptJsonText.of(value) : undefined;
}

/**
 * `JSON.stringify(response)` for a JSON-RPC response `{jsonrpc, id, result}` (members in that
 * order, as every response of the gateway is built), copying the result's kept text
 * ({@link keptJsonText}) instead of serialising it; for any other message (an error response, a
 * result without kept text, other members) `JSON.stringify(message)` itself.
 * @throws TypeError what `JSON.stringify` throws (a cycle, a BigInt), for messages it serialises.
 */
export function stringifyMessage(message: object): string {
  const m = message as { jsonrpc?: unknown; id?: unknown; result?: unknown };
  const text = keptJsonText(m.result);
  if (text === undefined || m.jsonrpc !== '2.0' || !isResponseWithResult(m)) return JSON.stringify(message);
  return `{"jsonrpc":"2.0","id":${JSON.stringify(m.id)},"result":${text}}`;
}

/** True when `m` has exactly the members `jsonrpc`, `id` (a string or a number) and `result`, in that order. */
function isResponseWithResult(m: object): boolean {
  const id = (m as { id?: unknown }).id;
  if (typeof id !== 'string' && !(typeof id === 'number' && Number.isFinite(id))) return false;
  let i = 0;
  for (const key in m) {
    if (key !== (i === 0 ? 'jsonrpc' : i === 1 ? 'id' : i === 2 ? 'result' : '')) return false;
    i++;
  }
  return i === 3;
}
