/**
 * The stdio framing of the gateway's stdio upstream transport (`stdio-framing.ts`), against the
 * SDK's own `ReadBuffer`/`deserializeMessage` as the oracle: any sequence of lines (valid
 * JSON-RPC messages of every kind, invalid JSON, JSON that is not a JSON-RPC message, CRLF endings,
 * multi-byte UTF-8), cut into chunks at arbitrary byte positions (inside UTF-8 sequences too),
 * decodes to the same messages in the same order, with one error per line the SDK rejects; a line
 * over the limit is reported once and the decoder goes on with the next one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deserializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import { JsonRpcLineDecoder, LineOverflowError, encodeJsonRpcLine, jsonRpcShapeProblem, parseJsonRpcLine, type DecodedLineSink } from '../src/upstreams/stdio-framing.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { keptJsonText, stringifyMessage } from '../src/codecs/json-text.js';

type Event = { kind: 'message'; message: unknown } | { kind: 'invalid'; error: string } | { kind: 'overflow'; error: string };

function recorder(): { sink: DecodedLineSink; events: Event[]; overflows: Error[] } {
  const events: Event[] = [];
  const overflows: Error[] = [];
  return {
    events,
    overflows,
    sink: {
      message: (message) => events.push({ kind: 'message', message }),
      invalid: (error) => events.push({ kind: 'invalid', error: error.message }),
      overflow: (error) => {
        overflows.push(error);
        events.push({ kind: 'overflow', error: error.message });
      },
    },
  };
}

/** What the SDK makes of each line: its message, or an error (kinds only: the texts differ). */
function oracle(lines: readonly string[]): ('invalid' | unknown)[] {
  return lines.map((line) => {
    try {
      return deserializeMessage(line.replace(/\r$/, ''));
    } catch {
      return 'invalid';
    }
  });
}

function decodeInChunks(bytes: Buffer, cuts: readonly number[], decoder = new JsonRpcLineDecoder()): Event[] {
  const { sink, events } = recorder();
  let from = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    decoder.push(bytes.subarray(from, cut), sink);
    from = cut;
  }
  decoder.push(bytes.subarray(from), sink);
  return events;
}

const key = fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__');
const json = fc.jsonValue({ maxDepth: 3 });
const params = fc.dictionary(key.filter((k) => k !== '_meta'), json, { maxKeys: 4, noNullPrototype: true });
/** Integers past 2^53 are refused, as zod's `int()` refuses them. */
const integer = fc.oneof(fc.integer(), fc.constantFrom(2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, -(2 ** 53), 2 ** 60, 1e300));
const id = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 12 }), integer);
const method = fc.string({ unit: 'grapheme', maxLength: 20 });

/** Valid messages of the four JSON-RPC kinds MCP uses. */
const validMessage = fc.oneof(
  fc.record({ jsonrpc: fc.constant('2.0'), id, method, params }, { requiredKeys: ['jsonrpc', 'id', 'method'] }),
  fc.record({ jsonrpc: fc.constant('2.0'), method, params }, { requiredKeys: ['jsonrpc', 'method'] }),
  fc.record({ jsonrpc: fc.constant('2.0'), id, result: params }),
  fc.record(
    { jsonrpc: fc.constant('2.0'), id, error: fc.record({ code: integer, message: fc.string({ unit: 'grapheme', maxLength: 20 }), data: json }, { requiredKeys: ['code', 'message'] }) },
    { requiredKeys: ['jsonrpc', 'error'] },
  ),
);

/** Lines that are not JSON-RPC messages (or not JSON at all); none contains a newline. */
const invalidLine = fc.oneof(
  fc.constantFrom(
    'this is not json',
    '{"unterminated": ',
    '[1,2,3]',
    '{"jsonrpc":"1.0","method":42}',
    '\u0000\u0001\u0002\u001b[31mred\u001b[0m',
    '   ',
    '',
    'null',
    '{"jsonrpc":"2.0"}',
    '{"jsonrpc":"2.0","id":1,"result":[]}',
    '{"jsonrpc":"2.0","id":1.5,"result":{}}',
    '{"jsonrpc":"2.0","id":null,"result":{}}',
    '{"jsonrpc":"2.0","result":{}}',
    '{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}',
    '{"jsonrpc":"2.0","id":1,"method":"m","result":{}}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":null}',
    '{"jsonrpc":"2.0","method":"m","extra":1}',
    '{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}',
    '{"jsonrpc":"2.0","id":1,"error":{"code":1}}',
    '{"jsonrpc":"2.0","id":1,"error":"boom"}',
  ),
  fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => s.replace(/\n/g, ' ')),
  validMessage.map((m) => JSON.stringify({ ...m, extra: true })),
);

const line = fc.oneof(
  { weight: 3, arbitrary: validMessage.map((m) => JSON.stringify(m)) },
  { weight: 1, arbitrary: invalidLine },
);

describe('stdio framing: chunks at any byte position decode like the SDK', () => {
  it('gives the SDK’s messages and one error per rejected line, for any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(line, fc.boolean()), { maxLength: 12 }).chain((entries) => {
          const text = entries.map(([l, crlf]) => `${l}${crlf ? '\r' : ''}\n`).join('');
          const bytes = Buffer.from(text, 'utf8');
          return fc.tuple(fc.constant(entries), fc.constant(bytes), fc.array(fc.nat(bytes.length), { maxLength: 12 }));
        }),
        ([entries, bytes, cuts]) => {
          const lines = entries.map(([l, crlf]) => `${l}${crlf ? '\r' : ''}`);
          const expected = oracle(lines);
          const events = decodeInChunks(bytes, cuts);
          expect(events.map((e) => (e.kind === 'message' ? e.message : e.kind))).toEqual(expected);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('keeps the unfinished last line for the next chunk', () => {
    const decoder = new JsonRpcLineDecoder();
    const { sink, events } = recorder();
    const message = '{"jsonrpc":"2.0","id":"t1","result":{"text":"é ✓ 𝄞"}}';
    const bytes = Buffer.from(`${message}\n${message}`, 'utf8');
    decoder.push(bytes, sink);
    expect(events).toHaveLength(1);
    expect(decoder.bufferedBytes).toBe(Buffer.byteLength(message));
    decoder.push(Buffer.from('\n'), sink);
    expect(events.map((e) => e.kind)).toEqual(['message', 'message']);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('does not pin a large chunk for a small unfinished tail (the tail is copied)', () => {
    const decoder = new JsonRpcLineDecoder();
    const { sink, events } = recorder();
    const chunk = Buffer.from(`${'{"jsonrpc":"2.0","method":"m"}\n'.repeat(1000)}{"jsonrpc"`);
    decoder.push(chunk, sink);
    // the reader may reuse its buffer once the chunk is handed over
    chunk.fill(0);
    decoder.push(Buffer.from(':"2.0","method":"tail"}\n'), sink);
    expect(decoder.bufferedBytes).toBe(0);
    expect(events).toHaveLength(1001);
    expect(events[1000]).toEqual({ kind: 'message', message: { jsonrpc: '2.0', method: 'tail' } });
  });
});

describe('stdio framing: limits and errors', () => {
  it('reports a line over the limit once, drops it, and decodes the lines after it', () => {
    const decoder = new JsonRpcLineDecoder(64);
    const { sink, events, overflows } = recorder();
    const ok = '{"jsonrpc":"2.0","method":"ok"}\n';
    decoder.push(Buffer.from(ok), sink);
    decoder.push(Buffer.from('x'.repeat(40)), sink);
    decoder.push(Buffer.from('y'.repeat(40)), sink);
    expect(events.map((e) => e.kind)).toEqual(['message', 'overflow']);
    expect(events[1]).toEqual({ kind: 'overflow', error: 'ReadBuffer exceeded maximum size of 64 bytes' });
    expect(overflows[0]).toBeInstanceOf(LineOverflowError);
    expect(decoder.bufferedBytes).toBe(0);
    // the rest of the oversized line ends as an invalid line; then the stream is in step again
    decoder.push(Buffer.from(`zzz\n${ok}`), sink);
    expect(events.map((e) => e.kind)).toEqual(['message', 'overflow', 'invalid', 'message']);
  });

  it('counts the part of a chunk that completes a held line towards the limit', () => {
    const decoder = new JsonRpcLineDecoder(64);
    const { sink, events } = recorder();
    decoder.push(Buffer.from('a'.repeat(60)), sink);
    decoder.push(Buffer.from(`${'b'.repeat(10)}\n{"jsonrpc":"2.0","method":"after"}\n`), sink);
    expect(events.map((e) => e.kind)).toEqual(['overflow']);
  });

  it('names why a line is invalid and quotes its start', () => {
    expect(() => parseJsonRpcLine('{"jsonrpc":"1.0","method":"x"}')).toThrow('invalid JSON-RPC line from stdout ("jsonrpc" is not "2.0"): "{\\"jsonrpc\\":\\"1.0\\",\\"method\\":\\"x\\"}"');
    expect(() => parseJsonRpcLine('not json')).toThrow(/^invalid JSON-RPC line from stdout \(Unexpected token .*\): "not json"$/);
    const long = `{"jsonrpc":"2.0","method":"m","params":{"x":"${'z'.repeat(500)}"},"extra":1}`;
    const err = (() => {
      try {
        parseJsonRpcLine(long);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toContain('unexpected members');
    expect(err?.message.length).toBeLessThan(260);
  });

  it('checks the shapes the SDK checks', () => {
    expect(jsonRpcShapeProblem({ jsonrpc: '2.0', id: 1, result: {} })).toBeUndefined();
    expect(jsonRpcShapeProblem({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' } })).toBeUndefined();
    expect(jsonRpcShapeProblem({ jsonrpc: '2.0', id: 'a', method: 'm', params: {} })).toBeUndefined();
    expect(jsonRpcShapeProblem({ jsonrpc: '2.0', method: 'm' })).toBeUndefined();
    expect(jsonRpcShapeProblem([])).toBe('not a JSON object');
    expect(jsonRpcShapeProblem({ jsonrpc: '2.0', id: {}, method: 'm' })).toBe('"id" is not a string or a safe integer');
    expect(jsonRpcShapeProblem({ jsonrpc: '2.0', method: 1 })).toBe('"method" is not a string');
    expect(jsonRpcShapeProblem({ jsonrpc: '2.0', id: 1 })).toBe('neither "method", "result" nor "error"');
  });

  it('encodes one line per message', () => {
    const m = { jsonrpc: '2.0', id: 't1', method: 'tools/call', params: { name: 'echo', arguments: { message: 'a\nb' } } } as JSONRPCMessage;
    const encoded = encodeJsonRpcLine(m);
    expect(encoded.endsWith('\n')).toBe(true);
    expect(encoded.indexOf('\n')).toBe(encoded.length - 1);
    expect(parseJsonRpcLine(encoded.slice(0, -1))).toEqual(m);
  });
});

describe('stdio framing: result responses keep their result’s JSON text', () => {
  const resultObject = fc.dictionary(key, json, { maxKeys: 4, noNullPrototype: true });
  const simpleId = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.:-]{0,12}$/), fc.integer(), fc.constantFrom(2 ** 53 - 1, -(2 ** 53 - 1), 0));

  it('parses `{result, jsonrpc, id}` (TypeScript SDK) and `{jsonrpc, id, result}` lines as a whole-line parse does, keeping the result’s text', () => {
    fc.assert(
      fc.property(resultObject, simpleId, fc.boolean(), (result, id, resultFirst) => {
        const resultText = JSON.stringify(result);
        const line = resultFirst ? `{"result":${resultText},"jsonrpc":"2.0","id":${JSON.stringify(id)}}` : `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${resultText}}`;
        const message = parseJsonRpcLine(line) as { result: unknown };
        expect(message).toEqual(JSON.parse(line));
        expect(Object.keys(message)).toEqual(Object.keys(JSON.parse(line) as object));
        expect(keptJsonText(message.result)).toBe(resultText);
        expect(stringifyMessage({ jsonrpc: '2.0', id: 7, result: message.result })).toBe(JSON.stringify({ jsonrpc: '2.0', id: 7, result }));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps no text, and parses the whole line, where the short cut cannot vouch for the text', () => {
    const cases: [string, unknown][] = [
      // a member repeated around the result: the last one counts, as JSON.parse reads it
      ['{"result":{"a":1},"id":"x","result":{"b":2},"jsonrpc":"2.0","id":"t5"}', { b: 2 }],
      // spacing between the members
      ['{"result": {"a":1},"jsonrpc":"2.0","id":"t5"}', { a: 1 }],
      ['{"jsonrpc":"2.0", "id":1,"result":{"a":1}}', { a: 1 }],
      // an id with an escape, and one in exponent form
      ['{"result":{"a":1},"jsonrpc":"2.0","id":"t\\"5"}', { a: 1 }],
      ['{"jsonrpc":"2.0","id":1e3,"result":{"a":1}}', { a: 1 }],
    ];
    for (const [line, result] of cases) {
      const message = parseJsonRpcLine(line) as { result: unknown };
      expect(message.result).toEqual(result);
      expect(keptJsonText(message.result)).toBeUndefined();
    }
    // a CR between tokens is JSON whitespace but ends an SSE line: the text is not kept
    const cr = parseJsonRpcLine('{"result":{"a":\r1},"jsonrpc":"2.0","id":"t5"}') as { result: unknown };
    expect(cr.result).toEqual({ a: 1 });
    expect(keptJsonText(cr.result)).toBeUndefined();
  });

  it('rejects what a whole-line parse rejects, with the same reasons', () => {
    const bad = [
      '{"result":{"a":1},"jsonrpc":"2.0","id":"t5"',
      '{"result":{"a":1}},"jsonrpc":"2.0","id":"t5"}',
      '{"result":{"a":1,"jsonrpc":"2.0","id":"t5"}',
      '{"jsonrpc":"2.0","id":1,"result":{"a":1}}}',
      '{"jsonrpc":"2.0","id":01,"result":{"a":1}}',
      '{"result":{"a":1},"jsonrpc":"2.0","id":1.5}',
      '{"result":{"a":1},"jsonrpc":"2.0","id":null}',
      '{"result":{"a":1},"jsonrpc":"2.0","id":9007199254740992}',
      '{"result":{"a":1},"jsonrpc":"2.0","id":"t5","extra":1}',
    ];
    for (const line of bad) {
      const slow = (() => {
        try {
          JSON.parse(line);
        } catch (err) {
          return `invalid JSON-RPC line from stdout (${(err as Error).message})`;
        }
        return 'invalid JSON-RPC line from stdout (';
      })();
      expect(() => parseJsonRpcLine(line)).toThrow(slow);
    }
  });
});
