/**
 * Kept JSON text (`codecs/json-text.ts`): a value parsed from JSON carries its text, invisibly;
 * copies carry none; a response whose result has kept text serialises to exactly the bytes
 * `JSON.stringify` writes when the text is the value's own JSON, and to valid JSON of the same
 * value when the upstream wrote it differently (spacing, escapes).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keepJsonText, keptJsonText, parseMessageText, stringifyMessage, stringifyRequest } from '../src/codecs/json-text.js';

const key = fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__');
const result = fc.dictionary(key, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5, noNullPrototype: true });
const id = fc.oneof(fc.string({ maxLength: 12 }), fc.integer());

/** `value` parsed from `text`, with the text kept, as the stdio framing leaves it. */
function parsedWithText(text: string): Record<string, unknown> {
  const value = JSON.parse(text) as Record<string, unknown>;
  keepJsonText(value, text);
  return value;
}

describe('kept JSON text', () => {
  it('is invisible to serialisation, enumeration, spread, deep equality and structuredClone', () => {
    const text = '{"content":[{"type":"text","text":"Echo: hello"}]}';
    const value = parsedWithText(text);
    expect(keptJsonText(value)).toBe(text);
    expect(JSON.stringify(value)).toBe(text);
    expect(Object.keys(value)).toEqual(['content']);
    expect(Reflect.ownKeys(value)).toEqual(['content']);
    expect(value).toEqual(JSON.parse(text));
    expect(keptJsonText({ ...value })).toBeUndefined();
    expect(keptJsonText(Object.assign({}, value))).toBeUndefined();
    expect(keptJsonText(structuredClone(value))).toBeUndefined();
  });

  it('keeps the first text of a value; primitives and null have none', () => {
    const value = parsedWithText('{"a":1}');
    keepJsonText(value, '{ "a": 1 }');
    expect(keptJsonText(value)).toBe('{"a":1}');
    for (const v of [undefined, null, 1, 'x', true]) expect(keptJsonText(v)).toBeUndefined();
  });

  it('writes a response byte for byte as JSON.stringify does when the text is the value’s JSON', () => {
    fc.assert(
      fc.property(result, id, (r, i) => {
        const value = parsedWithText(JSON.stringify(r));
        const response = { jsonrpc: '2.0', id: i, result: value };
        expect(stringifyMessage(response)).toBe(JSON.stringify(response));
      }),
      { numRuns: 300 },
    );
  });

  it('copies the upstream’s own text (spacing, escapes, number forms) into valid JSON of the same value', () => {
    const text = '{ "text" : "caf\\u00e9 \\/ \\"q\\"" , "n" : 1.50 , "big" : 12345678901234567890 }';
    const value = parsedWithText(text);
    const body = stringifyMessage({ jsonrpc: '2.0', id: 'r"1', result: value });
    expect(body).toBe(`{"jsonrpc":"2.0","id":"r\\"1","result":${text}}`);
    expect(JSON.parse(body)).toEqual({ jsonrpc: '2.0', id: 'r"1', result: JSON.parse(text) });
  });

  it('serialises anything else as JSON.stringify does: errors, copies, other members or member orders', () => {
    const value = parsedWithText('{"a":1}');
    const messages: object[] = [
      { jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'x' } },
      { jsonrpc: '2.0', id: 1, result: { ...value } },
      { jsonrpc: '2.0', id: 1, result: value, extra: true },
      { id: 1, jsonrpc: '2.0', result: value },
      { jsonrpc: '2.0', id: null, result: value },
      { jsonrpc: '1.0', id: 1, result: value },
      { jsonrpc: '2.0', method: 'notifications/progress', params: value },
    ];
    for (const m of messages) expect(stringifyMessage(m)).toBe(JSON.stringify(m));
  });
});

/** What `fn` returns, or the error it throws (as `{ threw: name, message }`). */
function outcome(fn: () => unknown): unknown {
  try {
    return { value: fn() };
  } catch (err) {
    return { threw: (err as Error).name, message: (err as Error).message };
  }
}

const toolName = fc.oneof(fc.constantFrom('everything-echo', 'demo-echo', 'a', ''), fc.string({ maxLength: 10 }));
/** A tool name JSON writes without escapes (the parse by parts takes only those). */
const plainName = toolName.filter((n) => JSON.stringify(n) === `"${n}"`);
const args = fc.dictionary(key, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5, noNullPrototype: true });
const callId = fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constantFrom(9007199254740991, 9007199254740992, -0, 1.5, 'a"b', 'x\\y'));

/** A tools/call body in the JSON-RPC specification's member order and in the TypeScript SDK's. */
function bodies(name: string, a: unknown, i: unknown): string[] {
  return [
    JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name, arguments: a } }),
    JSON.stringify({ method: 'tools/call', params: { name, arguments: a }, jsonrpc: '2.0', id: i }),
  ];
}

describe('tools/call request text', () => {
  it('parses every text as JSON.parse does: same value and member order, or the same error', () => {
    const edits = fc.constantFrom<(t: string) => string>(
      (t) => t,
      (t) => t.replace('"arguments":', '"arguments": '),
      (t) => t.replace(/\}\}$/, '} }'),
      (t) => t.replace('"arguments":{', '"arguments":{"dup":1,'),
      (t) => t.replace('"arguments":', '"arguments":{"x":1},"arguments":'),
      (t) => t.replace(/"id":/, '"id":"dup","id":'),
      (t) => t.replace('"arguments":{', '"arguments":\n{'),
      (t) => t.slice(0, -1),
      (t) => t.slice(0, -2),
      (t) => `${t} `,
      (t) => t.replace('"name":"', '"name":"\\u0041'),
      (t) => t.replace('},"jsonrpc"', '},"extra":{},"jsonrpc"'),
    );
    fc.assert(
      fc.property(toolName, args, callId, edits, (name, a, i, edit) => {
        for (const body of bodies(name, a, i)) {
          const text = edit(body);
          const got = outcome(() => parseMessageText(text));
          expect(got).toStrictEqual(outcome(() => JSON.parse(text) as unknown));
          // the member order too: what a writer of the message would put out
          if ('value' in (got as object)) expect(JSON.stringify((got as { value: unknown }).value)).toBe(JSON.stringify(JSON.parse(text)));
        }
      }),
      { numRuns: 400 },
    );
  });

  it('keeps the client’s arguments text, unless it holds a line break', () => {
    const text = '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{ "m" : "caf\\u00e9", "n": 1.50 }}}';
    const m = parseMessageText(text) as { params: { arguments: object } };
    expect(keptJsonText(m.params.arguments)).toBe('{ "m" : "caf\\u00e9", "n": 1.50 }');
    expect(m.params.arguments).toStrictEqual({ m: 'café', n: 1.5 });
    const sdk = parseMessageText('{"method":"tools/call","params":{"name":"t","arguments":{"a":"},\\"jsonrpc\\":\\"2.0\\",\\"id\\":1"}},"jsonrpc":"2.0","id":"q"}') as { id: unknown; params: { arguments: object } };
    expect(sdk.id).toBe('q');
    expect(keptJsonText(sdk.params.arguments)).toBe('{"a":"},\\"jsonrpc\\":\\"2.0\\",\\"id\\":1"}');
    for (const brk of ['\n', '\r', '\r\n']) {
      const spaced = parseMessageText(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{${brk}"m":1}}}`) as { params: { arguments: object } };
      expect(spaced.params.arguments).toStrictEqual({ m: 1 });
      expect(keptJsonText(spaced.params.arguments)).toBeUndefined();
    }
    // other messages and other params: parsed whole, nothing kept
    for (const other of [
      '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"m":1},"_meta":{"progressToken":1}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"name":"t","arguments":{"m":1}}}',
      '{"jsonrpc":"2.0","id":3.5,"method":"tools/call","params":{"name":"t","arguments":{"m":1}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t\\"","arguments":{"m":1}}}',
    ]) {
      const m2 = parseMessageText(other) as { params: { arguments: object } };
      expect(m2).toStrictEqual(JSON.parse(other));
      expect(keptJsonText(m2.params.arguments)).toBeUndefined();
    }
  });

  it('writes a request byte for byte as JSON.stringify does when the text is the arguments’ JSON', () => {
    const extra = fc.dictionary(fc.constantFrom('_meta', 'task', 'x"y', '0', 'undef'), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)), { maxKeys: 3, noNullPrototype: true });
    fc.assert(
      fc.property(plainName, args, fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), extra, fc.boolean(), (name, a, i, more, argsFirst) => {
        const [body] = bodies(name, a, 1);
        const parsed = parseMessageText(body as string) as { params: { arguments: object } };
        expect(keptJsonText(parsed.params.arguments)).toBe(JSON.stringify(a));
        // as the request table builds it: a copy of the params with the upstream's tool name
        const params = argsFirst ? { arguments: parsed.params.arguments, ...more, name } : { ...parsed.params, name, ...more };
        const request = { jsonrpc: '2.0', id: i, method: 'tools/call', params };
        expect(stringifyRequest(request)).toBe(JSON.stringify(request));
      }),
      { numRuns: 400 },
    );
  });

  it('copies the client’s own text (spacing, escapes, number forms) into valid JSON of the same value', () => {
    const argsText = '{ "m" : "caf\\u00e9 \\/", "n" : 1.50, "big": 12345678901234567890 }';
    const parsed = parseMessageText(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":${argsText}}}`) as { params: { arguments: object } };
    const request = { jsonrpc: '2.0', id: 't7', method: 'tools/call', params: { ...parsed.params, name: 'echo "q"' } };
    const line = stringifyRequest(request);
    expect(line).toBe(`{"jsonrpc":"2.0","id":"t7","method":"tools/call","params":{"name":"echo \\"q\\"","arguments":${argsText}}}`);
    expect(JSON.parse(line)).toStrictEqual(JSON.parse(JSON.stringify(request)));
  });

  it('serialises anything else as JSON.stringify does: no kept text, other members or orders, copies', () => {
    const parsed = parseMessageText('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1}}}') as { params: { arguments: object } };
    const a = parsed.params.arguments;
    const messages: object[] = [
      { jsonrpc: '2.0', id: 't1', method: 'tools/call', params: { name: 'x', arguments: { a: 1 } } },
      { jsonrpc: '2.0', id: 't1', method: 'tools/call', params: { name: 'x', arguments: { ...a } } },
      { method: 'tools/call', params: { name: 'x', arguments: a }, jsonrpc: '2.0', id: 't1' },
      { jsonrpc: '2.0', id: 't1', method: 'tools/call', params: { name: 'x', arguments: a }, extra: 1 },
      { jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'x', arguments: a } },
      { jsonrpc: '2.0', method: 'notifications/x', params: { arguments: a } },
      { jsonrpc: '2.0', id: 't1', method: 'tools/call', params: Object.assign(Object.create(null) as object, { name: 'x', arguments: a }) },
    ];
    for (const m of messages) expect(stringifyRequest(m)).toBe(JSON.stringify(m));
    const cyclic: Record<string, unknown> = { name: 'x', arguments: a };
    cyclic['self'] = cyclic;
    expect(() => stringifyRequest({ jsonrpc: '2.0', id: 't1', method: 'tools/call', params: cyclic })).toThrow(TypeError);
  });
});
