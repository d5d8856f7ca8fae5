/**
 * MCPW ↔ JSON-RPC mapping: the method-code table, the id rule (safe
 * integers ≥ 0 and decimal strings of larger u64s map to header ids, everything else goes
 * generic), compact vs generic payloads, and the round trip message → frame → bytes → frame →
 * message for requests, notifications, results and errors.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../src/codecs/jsonrpc.js';
import { decodeFrame, encodeFrame, McpwMethod, McpwType, type McpwFrame } from '../src/codecs/mcpw.js';
import { jsonRpcIdToU64, u64ToJsonRpcId } from '../src/codecs/mcpw-ids.js';
import { frameFromJsonRpc, frameToJsonRpc, MCPW_METHOD_NAMES, methodCodeOf, methodNameOf, type JsonRpcMessage } from '../src/codecs/mcpw-jsonrpc.js';

const U64_MAX = 2n ** 64n - 1n;

/** message → frame → bytes → frame → classified message. */
function viaWire(message: JsonRpcMessage, replyTo?: { method: McpwMethod; requestId: bigint }): { frame: McpwFrame; back: ReturnType<typeof frameToJsonRpc> } {
  const frame = frameFromJsonRpc(message, replyTo);
  const decoded = decodeFrame(encodeFrame(frame));
  if (!decoded.ok) throw new Error(decoded.error.message);
  return { frame, back: frameToJsonRpc(decoded.frame) };
}

describe('method codes', () => {
  it('maps the MCPW method codes both ways', () => {
    expect(methodCodeOf('initialize')).toBe(McpwMethod.Initialize);
    expect(methodCodeOf('tools/list')).toBe(McpwMethod.ToolsList);
    expect(methodCodeOf('tools/call')).toBe(McpwMethod.ToolsCall);
    expect(methodCodeOf('context.get')).toBe(McpwMethod.ContextGet);
    expect(methodCodeOf('context.set')).toBe(McpwMethod.ContextSet);
    expect(methodCodeOf('notifications/message')).toBe(McpwMethod.LogMessage);
    expect(methodCodeOf('resources/list')).toBe(McpwMethod.Generic);
    expect(methodCodeOf('agent.register')).toBe(McpwMethod.Generic);
    expect(methodNameOf(McpwMethod.Generic)).toBeUndefined();
    for (const [code, name] of Object.entries(MCPW_METHOD_NAMES)) {
      expect(methodNameOf(Number(code) as McpwMethod)).toBe(name);
      expect(methodCodeOf(name)).toBe(Number(code));
    }
  });
});

describe('id rule', () => {
  it('u64 → JSON-RPC id → u64 is the identity over the whole range', () => {
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: 0n, max: U64_MAX }), fc.constantFrom(0n, 2n ** 53n - 1n, 2n ** 53n, U64_MAX)), (id) => {
        const rpc = u64ToJsonRpcId(id);
        expect(typeof rpc).toBe(id <= BigInt(Number.MAX_SAFE_INTEGER) ? 'number' : 'string');
        expect(jsonRpcIdToU64(rpc)).toBe(id);
      }),
      { numRuns: 2000 },
    );
  });

  it('ids without a u64 form', () => {
    for (const id of [-1, 1.5, -0, 2 ** 53, Number.MAX_VALUE, NaN, 'abc', '', '7', '0009007199254740993', '9007199254740991', '18446744073709551616', null, undefined, {}]) {
      expect(jsonRpcIdToU64(id)).toBeUndefined();
    }
    expect(jsonRpcIdToU64('9007199254740992')).toBe(2n ** 53n);
    expect(jsonRpcIdToU64(0)).toBe(0n);
  });
});

describe('frames from JSON-RPC messages', () => {
  it('a tools/call request with a numeric id travels compact: payload = params, header id = id', () => {
    const msg: JsonRpcRequest = { jsonrpc: '2.0', id: 42, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } };
    const { frame, back } = viaWire(msg);
    expect(frame).toEqual({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 42n, payload: msg.params });
    expect(back).toEqual({ kind: 'request', msg });
  });

  it('a string id, an unknown method or an extra member goes generic with the whole message', () => {
    const stringId: JsonRpcRequest = { jsonrpc: '2.0', id: 'a-1', method: 'tools/call', params: { name: 'echo' } };
    expect(frameFromJsonRpc(stringId)).toEqual({ type: McpwType.Request, method: McpwMethod.Generic, requestId: 0n, payload: stringId });
    const unknown: JsonRpcRequest = { jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'x:/y' } };
    expect(frameFromJsonRpc(unknown)).toEqual({ type: McpwType.Request, method: McpwMethod.Generic, requestId: 3n, payload: unknown });
    const extra = { jsonrpc: '2.0', id: 4, method: 'tools/list', extra: true } as unknown as JsonRpcRequest;
    expect(frameFromJsonRpc(extra)).toMatchObject({ method: McpwMethod.Generic, requestId: 4n, payload: extra });
    for (const m of [stringId, unknown, extra]) expect(viaWire(m).back).toEqual({ kind: 'request', msg: m });
  });

  it('a request id past 2^53 travels as its decimal string and comes back the same', () => {
    const msg: JsonRpcRequest = { jsonrpc: '2.0', id: '18446744073709551615', method: 'tools/list' };
    const { frame, back } = viaWire(msg);
    expect(frame).toEqual({ type: McpwType.Request, method: McpwMethod.ToolsList, requestId: U64_MAX, payload: undefined });
    expect(back).toEqual({ kind: 'request', msg });
  });

  it('a reply carries the request frame\'s method and header id', () => {
    const result: JsonRpcResponse = { jsonrpc: '2.0', id: 42, result: { content: [{ type: 'text', text: 'hi' }] } };
    const { frame, back } = viaWire(result, { method: McpwMethod.ToolsCall, requestId: 42n });
    expect(frame).toEqual({ type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 42n, payload: result.result });
    expect(back).toEqual({ kind: 'response', msg: result });

    const error: JsonRpcResponse = { jsonrpc: '2.0', id: 42, error: { code: -32602, message: 'Tool not found' } };
    const e = viaWire(error, { method: McpwMethod.ToolsCall, requestId: 42n });
    expect(e.frame).toEqual({ type: McpwType.Error, method: McpwMethod.ToolsCall, requestId: 42n, payload: error.error });
    expect(e.back).toEqual({ kind: 'response', msg: error });

    // a generic request with a string id and header id 7: the reply is generic, header id 7
    const reply: JsonRpcResponse = { jsonrpc: '2.0', id: 'abc', result: {} };
    const r = viaWire(reply, { method: McpwMethod.Generic, requestId: 7n });
    expect(r.frame).toEqual({ type: McpwType.Response, method: McpwMethod.Generic, requestId: 7n, payload: reply });
    expect(r.back).toEqual({ kind: 'response', msg: reply });
  });

  it('notifications: compact for notifications/message, generic otherwise', () => {
    const log: JsonRpcNotification = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } };
    expect(viaWire(log)).toEqual({
      frame: { type: McpwType.Notification, method: McpwMethod.LogMessage, requestId: 0n, payload: log.params },
      back: { kind: 'notification', msg: log },
    });
    const progress: JsonRpcNotification = { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 5 } };
    expect(viaWire(progress).frame.method).toBe(McpwMethod.Generic);
    expect(viaWire(progress).back).toEqual({ kind: 'notification', msg: progress });
  });
});

describe('JSON-RPC messages from frames', () => {
  it('control frames are not JSON-RPC', () => {
    for (const type of [McpwType.Ping, McpwType.Pong, McpwType.Close] as const) {
      expect(frameToJsonRpc({ type, method: McpwMethod.Generic, requestId: 1n, payload: undefined })).toEqual({ kind: 'control', type });
    }
  });

  it('a generic payload must be a message of the frame\'s kind', () => {
    const notification = { jsonrpc: '2.0', method: 'notifications/initialized' };
    expect(frameToJsonRpc({ type: McpwType.Request, method: McpwMethod.Generic, requestId: 1n, payload: notification })).toMatchObject({
      kind: 'invalid',
      reason: 'MCPW request frame carries a JSON-RPC notification',
    });
    expect(frameToJsonRpc({ type: McpwType.Request, method: McpwMethod.Generic, requestId: 1n, payload: [1, 2] })).toMatchObject({ kind: 'invalid' });
  });

  it('compact frames are validated like text messages', () => {
    // params must be an object (jsonrpc.ts classify)
    expect(frameToJsonRpc({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 1n, payload: [1] })).toEqual({
      kind: 'invalid',
      id: 1,
      reason: 'params must be an object',
    });
    expect(frameToJsonRpc({ type: McpwType.Error, method: McpwMethod.ToolsCall, requestId: 1n, payload: undefined })).toMatchObject({ kind: 'invalid', id: 1 });
    // an empty Response payload is the empty result
    expect(frameToJsonRpc({ type: McpwType.Response, method: McpwMethod.ToolsList, requestId: 1n, payload: undefined })).toEqual({
      kind: 'response',
      msg: { jsonrpc: '2.0', id: 1, result: {} },
    });
  });
});

describe('round trip property', () => {
  // -0 → 0, as JSON text would; no "__proto__" keys at any depth: msgpackr renames them to
  // "__proto_" on decode (its prototype-pollution guard; documented on decodeFrame)
  const json = fc
    .jsonValue({ maxDepth: 3 })
    .map((v) => JSON.parse(JSON.stringify(v)) as unknown)
    .filter((v) => !JSON.stringify(v).includes('"__proto__"'));
  const params = fc.option(
    fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), json, { maxKeys: 4, noNullPrototype: true }),
    { nil: undefined },
  );
  const ids = fc.oneof(
    fc.nat(),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, -1, 1.5, 2 ** 60),
    fc.string({ maxLength: 12 }),
    fc.bigInt({ min: 2n ** 53n, max: U64_MAX }).map(String),
  );
  const methodNames = fc.oneof(fc.constantFrom(...Object.values(MCPW_METHOD_NAMES)), fc.constantFrom('resources/list', 'agent.register', 'ping'));
  const requests = fc
    .record({ id: ids, method: methodNames, params })
    .map(({ id, method, params: p }): JsonRpcRequest => (p === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params: p }));
  const notifications = fc
    .record({ method: methodNames, params })
    .map(({ method, params: p }): JsonRpcNotification => (p === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params: p }));

  it('requests and notifications come back equal, whatever the id and method', () => {
    fc.assert(
      fc.property(fc.oneof(requests, notifications), (msg) => {
        expect(viaWire(msg).back).toEqual({ kind: 'id' in msg ? 'request' : 'notification', msg });
      }),
      { numRuns: 500 },
    );
  });

  it('the reply to any request comes back equal and carries the request\'s header id', () => {
    fc.assert(
      fc.property(requests, fc.boolean(), params, (req, isError, result) => {
        const request = frameFromJsonRpc(req);
        const reply: JsonRpcResponse = isError
          ? { jsonrpc: '2.0', id: req.id, error: { code: -32603, message: 'Internal error' } }
          : { jsonrpc: '2.0', id: req.id, result: result ?? {} };
        const { frame, back } = viaWire(reply, request);
        expect(frame.requestId).toBe(request.requestId);
        expect(frame.type).toBe(isError ? McpwType.Error : McpwType.Response);
        expect(back).toEqual({ kind: 'response', msg: reply });
      }),
      { numRuns: 500 },
    );
  });
});
