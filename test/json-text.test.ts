/**
 * Kept JSON text (`codecs/json-text.ts`): a value parsed from JSON carries its text, invisibly;
 * copies carry none; a response whose result has kept text serialises to exactly the bytes
 * `JSON.stringify` writes when the text is the value's own JSON, and to valid JSON of the same
 * value when the upstream wrote it differently (spacing, escapes).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keepJsonText, keptJsonText, stringifyMessage } from '../src/codecs/json-text.js';

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
