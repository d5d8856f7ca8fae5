/**
 * The JSON text a value was parsed from, kept beside the value so that code writing the value out
 * again as JSON can copy the text instead of serialising the value: an upstream's `tools/call`
 * result goes into the caller's reply and into the tool log as it arrived (the stdio transport
 * keeps it, see `upstreams/stdio-framing.ts`), without a `JSON.stringify` per writer; and a
 * client's `tools/call` arguments go into the upstream's stdin line and into the tool log as the
 * client wrote them ({@link parseMessageText}, {@link stringifyRequest}).
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

/**
 * The id whose JSON text is `text[from, to)` when it is a string without escapes or quotes, or a
 * safe integer (|n| < 2^53) written without fraction or exponent; else undefined.
 */
export function jsonIdToken(text: string, from: number, to: number): string | number | undefined {
  if (to - from < 1) return undefined;
  const first = text.charCodeAt(from);
  if (first === 0x22) {
    // "…": no quote or backslash inside, so it ends where it must
    if (to - from < 2 || text.charCodeAt(to - 1) !== 0x22) return undefined;
    for (let i = from + 1; i < to - 1; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22 || c === 0x5c || c < 0x20) return undefined;
    }
    return text.slice(from + 1, to - 1);
  }
  let i = first === 0x2d ? from + 1 : from; // -
  if (to - i < 1 || to - i > 16 || (text.charCodeAt(i) === 0x30 && to - i > 1)) return undefined;
  for (; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const n = Number(text.slice(from, to));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A `tools/call` request in the JSON-RPC specification's member order, up to its id. */
const CALL_ENVELOPE_FIRST = '{"jsonrpc":"2.0","id":';
/** … from after its id up to the tool name's opening quote. */
const CALL_ENVELOPE_FIRST_METHOD = ',"method":"tools/call","params":{"name":"';
/** A `tools/call` request in the TypeScript SDK's member order, up to the tool name's opening quote. */
const CALL_METHOD_FIRST = '{"method":"tools/call","params":{"name":"';
/** … from after its arguments up to its id. */
const CALL_METHOD_FIRST_TAIL = '},"jsonrpc":"2.0","id":';
/** Between the tool name's closing quote and the arguments' `{`. */
const CALL_ARGUMENTS = ',"arguments":';

/**
 * Parses the JSON text of one JSON-RPC message as `JSON.parse(text)` does (same value, same
 * errors), cheaper for the message every tool call sends: a `tools/call` request written
 * compactly as `{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{"name":NAME,"arguments":A}}`
 * (the member order of the JSON-RPC specification's examples) or
 * `{"method":"tools/call","params":{"name":NAME,"arguments":A},"jsonrpc":"2.0","id":ID}` (the
 * TypeScript SDK's), NAME a string without escapes, ID a safe integer or a string without escapes
 * and A an object, is parsed by parsing A alone; A's text is kept with the parsed arguments
 * ({@link keepJsonText}) unless it holds a line break (JSON whitespace that would end a
 * newline-delimited frame), so the upstream's stdin line and the tool log copy the client's text
 * instead of serialising the arguments again ({@link stringifyRequest}). A parses as exactly one
 * JSON value and the rest of the text is fixed, so the text is the JSON object of those members:
 * the same message as parsing it whole. Anything else is parsed whole.
 *
 * JSON-RPC 2.0 request object: https://www.jsonrpc.org/specification#request_object
 * @throws SyntaxError what `JSON.parse(text)` throws for text that is not JSON.
 */
export function parseMessageText(text: string): unknown {
  return parseToolCallText(text) ?? JSON.parse(text);
}

/** {@link parseMessageText}'s parse by parts, or undefined when `text` is not of the two forms (or A does not parse). */
function parseToolCallText(text: string): object | undefined {
  const n = text.length;
  if (text.charCodeAt(n - 1) !== 0x7d) return undefined; // }
  let id: string | number | undefined;
  let nameFrom: number;
  let argsTo: number;
  let methodFirst: boolean;
  if (text.startsWith(CALL_ENVELOPE_FIRST)) {
    const at = text.indexOf(CALL_ENVELOPE_FIRST_METHOD, CALL_ENVELOPE_FIRST.length);
    if (at === -1 || text.charCodeAt(n - 2) !== 0x7d) return undefined;
    id = jsonIdToken(text, CALL_ENVELOPE_FIRST.length, at);
    nameFrom = at + CALL_ENVELOPE_FIRST_METHOD.length;
    argsTo = n - 2;
    methodFirst = false;
  } else if (text.startsWith(CALL_METHOD_FIRST)) {
    const tail = text.lastIndexOf(CALL_METHOD_FIRST_TAIL);
    if (tail === -1) return undefined;
    id = jsonIdToken(text, tail + CALL_METHOD_FIRST_TAIL.length, n - 1);
    nameFrom = CALL_METHOD_FIRST.length;
    argsTo = tail;
    methodFirst = true;
  } else {
    return undefined;
  }
  if (id === undefined) return undefined;
  // NAME: up to the next quote, nothing escaped or below U+0020 inside
  const nameTo = text.indexOf('"', nameFrom);
  if (nameTo === -1) return undefined;
  for (let i = nameFrom; i < nameTo; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c || c < 0x20) return undefined;
  }
  const argsFrom = nameTo + 1 + CALL_ARGUMENTS.length;
  if (!text.startsWith(CALL_ARGUMENTS, nameTo + 1) || text.charCodeAt(argsFrom) !== 0x7b || argsTo <= argsFrom) return undefined; // {
  const argsText = text.slice(argsFrom, argsTo);
  let args: unknown;
  try {
    args = JSON.parse(argsText);
  } catch {
    // not A alone: the whole text says what is wrong
    return undefined;
  }
  // A begins with `{` and parsed: a JSON object
  if (argsText.indexOf('\n') === -1 && argsText.indexOf('\r') === -1) keepJsonText(args as object, argsText);
  const params = { name: text.slice(nameFrom, nameTo), arguments: args };
  return methodFirst ? { method: 'tools/call', params, jsonrpc: '2.0', id } : { jsonrpc: '2.0', id, method: 'tools/call', params };
}

/**
 * `JSON.stringify(request)` for a JSON-RPC request `{jsonrpc, id, method, params}` (members in
 * that order, as the gateway's request table builds them) whose `params.arguments` has kept text
 * ({@link keptJsonText}): that text is copied instead of serialising the arguments, the other
 * members of `params` are serialised as `JSON.stringify` does (in their order, `undefined` ones
 * left out). Any other message: `JSON.stringify(message)` itself.
 * @throws TypeError what `JSON.stringify` throws (a cycle, a BigInt).
 */
export function stringifyRequest(message: object): string {
  const params = (message as { params?: unknown }).params;
  if (typeof params !== 'object' || params === null) return JSON.stringify(message);
  const p = params as Record<string, unknown>;
  const text = keptJsonText(p['arguments']);
  if (text === undefined || Object.getPrototypeOf(p) !== Object.prototype || !isRequestEnvelope(message)) return JSON.stringify(message);
  const m = message as { id: string | number; method: string };
  const head = `{"jsonrpc":"2.0","id":${typeof m.id === 'string' ? quote(m.id) : JSON.stringify(m.id)},"method":${quote(m.method)},"params":{`;
  // the common params, `{name, arguments}` (a tools/call as clients send it): one template
  const name = p['name'];
  if (typeof name === 'string' && hasMembers(p, 'name', 'arguments')) return `${head}"name":${quote(name)},"arguments":${text}}}`;
  let members = '';
  for (const key in p) {
    if (!Object.hasOwn(p, key)) continue;
    const v = p[key];
    const json = key === 'arguments' ? text : typeof v === 'string' ? quote(v) : (JSON.stringify(v) as string | undefined);
    // JSON.stringify leaves out members whose value it cannot write (undefined, functions, symbols)
    if (json === undefined) continue;
    members += members === '' ? `${quote(key)}:${json}` : `,${quote(key)}:${json}`;
  }
  return `${head}${members}}}`;
}

/** True when the enumerable keys of `o` are exactly `a` and `b`, in that order. */
function hasMembers(o: object, a: string, b: string): boolean {
  let i = 0;
  for (const key in o) {
    if (key !== (i === 0 ? a : i === 1 ? b : '')) return false;
    i++;
  }
  return i === 2;
}

/**
 * `JSON.stringify(s)` for a string: quotes around `s` itself when nothing in it needs escaping
 * (no quote, backslash, control character or UTF-16 surrogate), which a short identifier or
 * tool name costs a few nanoseconds to check; else `JSON.stringify` (about 60 ns a call here).
 */
function quote(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** True when `m` has exactly the members `jsonrpc` ("2.0"), `id` (a string or a finite number), `method` (a string) and `params`, in that order. */
function isRequestEnvelope(m: object): boolean {
  const r = m as { jsonrpc?: unknown; id?: unknown; method?: unknown };
  if (r.jsonrpc !== '2.0' || typeof r.method !== 'string') return false;
  if (typeof r.id !== 'string' && !(typeof r.id === 'number' && Number.isFinite(r.id))) return false;
  let i = 0;
  for (const key in m) {
    if (key !== (i === 0 ? 'jsonrpc' : i === 1 ? 'id' : i === 2 ? 'method' : i === 3 ? 'params' : '')) return false;
    i++;
  }
  return i === 4;
}
