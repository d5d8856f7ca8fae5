/**
 * Every bad input of the `/mcp` Streamable HTTP endpoint, against a real gateway on port 0 spoken
 * to with real HTTP (fetch): HTTP status codes, JSON-RPC error codes and messages, and that the
 * gateway keeps serving afterwards.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Subscription } from 'rxjs';
import type { GatewayEvent } from '../src/streams/events.js';
import { demoClient, rawPost, rawSession, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

type Json = Record<string, unknown>;

interface RpcErrorBody {
  readonly id: unknown;
  readonly code: number;
  readonly message: string;
  readonly data: unknown;
}

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Asserts `v` is a JSON object and returns it. */
function obj(v: unknown): Json {
  expect(isRecord(v), `expected a JSON object, got ${JSON.stringify(v)}`).toBe(true);
  return v as Json;
}

/** Asserts `v` is a JSON array and returns it. */
function arr(v: unknown): unknown[] {
  expect(Array.isArray(v), `expected a JSON array, got ${JSON.stringify(v)}`).toBe(true);
  return v as unknown[];
}

/** Asserts `v` is a JSON-RPC 2.0 error response and returns its parts. */
function rpcError(v: unknown): RpcErrorBody {
  const m = obj(v);
  expect(m['jsonrpc']).toBe('2.0');
  expect('result' in m, `unexpected result in ${JSON.stringify(m)}`).toBe(false);
  const e = obj(m['error']);
  expect(typeof e['code']).toBe('number');
  expect(typeof e['message']).toBe('string');
  return { id: m['id'], code: e['code'] as number, message: e['message'] as string, data: e['data'] };
}

/** Asserts `v` is a JSON-RPC 2.0 success response and returns its result. */
function rpcResult(v: unknown): Json {
  const m = obj(v);
  expect(m['jsonrpc']).toBe('2.0');
  expect(m['error'], `unexpected error in ${JSON.stringify(m)}`).toBeUndefined();
  return obj(m['result']);
}

function req(id: unknown, method: string, params?: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) });
}

function toolCall(id: unknown, name: string, args?: unknown): string {
  return req(id, 'tools/call', { name, ...(args !== undefined ? { arguments: args } : {}) });
}

const PING = req(1, 'ping');

/** Text of a tools/call result's first content item. */
function firstText(result: Json): string {
  const content = arr(result['content']);
  return obj(content[0])['text'] as string;
}

async function getHealth(gw: TestGateway): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${gw.url}/health`);
  return { status: res.status, body: obj(await res.json()) };
}

/** Opens GET /mcp as an SSE stream; resolves once headers are in. */
async function openStream(gw: TestGateway, sessionId: string): Promise<{ res: Response; ctl: AbortController }> {
  const ctl = new AbortController();
  const res = await fetch(gw.mcpUrl, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId }, signal: ctl.signal });
  return { res, ctl };
}

describe('/mcp bad inputs (default limits)', () => {
  let gw: TestGateway;
  let sid: string;
  let H: Record<string, string>;

  beforeAll(async () => {
    gw = await startTestGateway([demoClient()]);
    sid = await rawSession(gw.mcpUrl);
    H = { 'mcp-session-id': sid };
  });

  afterAll(async () => {
    await gw.stop();
  });

  describe('malformed JSON', () => {
    it.each([
      ['truncated object', '{"jsonrpc":"2.0","id":1,'],
      ['garbage', 'not json at all'],
      ['empty body', ''],
      ['trailing comma', '{"jsonrpc":"2.0","id":1,"method":"ping",}'],
    ])('%s → 400, -32700, id null', async (_label, body) => {
      const r = await rawPost(gw.mcpUrl, body, H);
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/json');
      const e = rpcError(r.json);
      expect(e.id).toBeNull();
      expect(e.code).toBe(-32700);
      expect(e.message).toMatch(/parse error/i);
    });

    it('malformed JSON without a session is still a parse error', async () => {
      const r = await rawPost(gw.mcpUrl, '{');
      expect(r.status).toBe(400);
      expect(rpcError(r.json).code).toBe(-32700);
    });
  });

  describe('invalid request → 400, -32600', () => {
    it.each<[string, string, RegExp, unknown]>([
      ['a number', '42', /JSON object/i, null],
      ['a string', '"ping"', /JSON object/i, null],
      ['null', 'null', /JSON object/i, null],
      ['jsonrpc missing', JSON.stringify({ id: 1, method: 'ping' }), /jsonrpc/, 1],
      ['jsonrpc "1.0"', JSON.stringify({ jsonrpc: '1.0', id: 2, method: 'ping' }), /jsonrpc/, 2],
      ['jsonrpc as number 2', JSON.stringify({ jsonrpc: 2, id: 3, method: 'ping' }), /jsonrpc/, 3],
      ['id null', JSON.stringify({ jsonrpc: '2.0', id: null, method: 'ping' }), /id/, null],
      ['id boolean', JSON.stringify({ jsonrpc: '2.0', id: true, method: 'ping' }), /id/, null],
      ['id object', JSON.stringify({ jsonrpc: '2.0', id: { a: 1 }, method: 'ping' }), /id/, null],
      ['id array', JSON.stringify({ jsonrpc: '2.0', id: [1], method: 'ping' }), /id/, null],
      ['params an array', JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping', params: [1, 2] }), /params/, 4],
      ['params a string', JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'ping', params: 'x' }), /params/, 5],
      ['params null', JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'ping', params: null }), /params/, 6],
      ['method empty', JSON.stringify({ jsonrpc: '2.0', id: 7, method: '' }), /method/, 7],
      ['method a number', JSON.stringify({ jsonrpc: '2.0', id: 8, method: 5 }), /method/, 8],
      ['neither request nor response', JSON.stringify({ jsonrpc: '2.0', id: 9 }), /not a request/, 9],
      ['response with null id', JSON.stringify({ jsonrpc: '2.0', id: null, result: {} }), /id/, null],
    ])('%s', async (_label, body, reason, id) => {
      const r = await rawPost(gw.mcpUrl, body, H);
      expect(r.status).toBe(400);
      const e = rpcError(r.json);
      expect(e.code).toBe(-32600);
      expect(e.message).toMatch(/invalid request/i);
      expect(e.message).toMatch(reason);
      expect(e.id).toEqual(id);
    });
  });

  describe('method and params errors (HTTP 200, JSON-RPC error)', () => {
    it('unknown method → -32601 naming the method', async () => {
      const r = await rawPost(gw.mcpUrl, req(11, 'no/such/method'), H);
      expect(r.status).toBe(200);
      const e = rpcError(r.json);
      expect(e.id).toBe(11);
      expect(e.code).toBe(-32601);
      expect(e.message).toContain('no/such/method');
    });

    // Method names that are properties of Object.prototype must not reach a prototype function.
    it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'])(
      'unknown method %s (an Object.prototype name) → -32601, not a result or internal error',
      async (method) => {
        const r = await rawPost(gw.mcpUrl, req(12, method), H);
        expect(r.status).toBe(200);
        expect(r.text).not.toContain(sid); // the session's own fields must never be sent back
        const e = rpcError(r.json);
        expect(e.id).toBe(12);
        expect(e.code).toBe(-32601);
        expect(e.message).toContain(method);
      },
    );

    it('tools/call unknown tool → -32602 naming the tool', async () => {
      const r = await rawPost(gw.mcpUrl, toolCall(13, 'demo-nope', {}), H);
      expect(r.status).toBe(200);
      const e = rpcError(r.json);
      expect(e.id).toBe(13);
      expect(e.code).toBe(-32602);
      expect(e.message).toContain('demo-nope');
    });

    it('tools/call without name → -32602 naming the field', async () => {
      const r = await rawPost(gw.mcpUrl, req(14, 'tools/call', { arguments: {} }), H);
      expect(r.status).toBe(200);
      const e = rpcError(r.json);
      expect(e.code).toBe(-32602);
      expect(e.message).toContain('tools/call');
      expect(e.message).toContain('name');
    });

    it('tools/call without params → -32602', async () => {
      const r = await rawPost(gw.mcpUrl, req(15, 'tools/call'), H);
      const e = rpcError(r.json);
      expect(e.code).toBe(-32602);
      expect(e.message).toContain('name');
    });

    it('tools/call with a non-string name → -32602', async () => {
      const r = await rawPost(gw.mcpUrl, req(16, 'tools/call', { name: 42 }), H);
      const e = rpcError(r.json);
      expect(e.code).toBe(-32602);
      expect(e.message).toContain('name');
    });

    it.each([
      ['an array', [1, 2]],
      ['a string', 'hello'],
      ['a number', 3],
      ['null', null],
    ])('tools/call with arguments %s → -32602 naming arguments', async (_label, args) => {
      const r = await rawPost(gw.mcpUrl, toolCall(17, 'demo-echo', args), H);
      expect(r.status).toBe(200);
      const e = rpcError(r.json);
      expect(e.id).toBe(17);
      expect(e.code).toBe(-32602);
      expect(e.message).toContain('arguments');
    });

    it('a valid tools/call still works (control)', async () => {
      const r = await rawPost(gw.mcpUrl, toolCall(18, 'demo-echo', { message: 'hi' }), H);
      expect(r.status).toBe(200);
      expect(firstText(rpcResult(r.json))).toBe('Echo: hi');
    });
  });

  describe('content negotiation', () => {
    it('Content-Type text/plain → 415', async () => {
      const r = await rawPost(gw.mcpUrl, PING, { ...H, 'content-type': 'text/plain' });
      expect(r.status).toBe(415);
      const e = rpcError(r.json);
      expect(e.id).toBeNull();
      expect(e.code).toBe(-32600);
      expect(e.message).toMatch(/Content-Type/);
    });

    it('no Content-Type at all → 415', async () => {
      const r = await send(gw.mcpUrl, {
        method: 'POST',
        headers: { accept: 'application/json', ...H },
        body: new TextEncoder().encode(PING),
      });
      expect(r.status).toBe(415);
      expect(rpcError(r.json).message).toMatch(/Content-Type/);
    });

    it('Accept allowing neither JSON nor SSE → 406', async () => {
      const r = await rawPost(gw.mcpUrl, PING, { ...H, accept: 'text/html' });
      expect(r.status).toBe(406);
      const e = rpcError(r.json);
      expect(e.code).toBe(-32600);
      expect(e.message).toMatch(/Not Acceptable/i);
      expect(e.message).toMatch(/application\/json|text\/event-stream/);
    });

    it('Accept text/event-stream alone → answered as SSE (or 406), never with a JSON body the client did not accept', async () => {
      const r = await rawPost(gw.mcpUrl, req('sse-only', 'ping'), { ...H, accept: 'text/event-stream' });
      if (r.status === 406) return;
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toContain('text/event-stream');
      expect(r.text).toContain('"id":"sse-only"');
    });

    it('Accept application/json alone is fine', async () => {
      const r = await rawPost(gw.mcpUrl, PING, { ...H, accept: 'application/json' });
      expect(r.status).toBe(200);
      rpcResult(r.json);
    });
  });

  describe('sessions, protocol version, origin', () => {
    it('POST without Mcp-Session-Id (not initialize) → 400', async () => {
      const r = await rawPost(gw.mcpUrl, PING);
      expect(r.status).toBe(400);
      const e = rpcError(r.json);
      expect(e.id).toBeNull();
      expect(e.code).toBe(-32600);
      expect(e.message).toContain('Mcp-Session-Id');
    });

    it('unknown session id → 404', async () => {
      const r = await rawPost(gw.mcpUrl, PING, { 'mcp-session-id': 'no-such-session' });
      expect(r.status).toBe(404);
      const e = rpcError(r.json);
      expect(e.message).toMatch(/session not found/i);
      // its own code: not the upstream-timeout -32001 (a client must re-initialize, not retry)
      expect(e.code).toBe(-32010);
      expect(obj(e.data)['code']).toBe('SESSION_NOT_FOUND');
      expect(obj(e.data)['session_id']).toBe('no-such-session');
    });

    it('unsupported MCP-Protocol-Version → 400 naming the version', async () => {
      const r = await rawPost(gw.mcpUrl, PING, { ...H, 'mcp-protocol-version': '1999-01-01' });
      expect(r.status).toBe(400);
      const e = rpcError(r.json);
      expect(e.code).toBe(-32600);
      expect(e.message).toContain('1999-01-01');
      expect(e.message).toMatch(/protocol version/i);
    });

    it('supported MCP-Protocol-Version is accepted', async () => {
      const r = await rawPost(gw.mcpUrl, PING, { ...H, 'mcp-protocol-version': '2025-06-18' });
      expect(r.status).toBe(200);
      rpcResult(r.json);
    });

    it('disallowed Origin → 403 without CORS headers', async () => {
      const r = await rawPost(gw.mcpUrl, PING, { ...H, origin: 'http://evil.example' });
      expect(r.status).toBe(403);
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      const e = rpcError(r.json);
      expect(e.code).toBe(-32600);
      expect(e.message).toContain('http://evil.example');
    });

    it('disallowed Origin on initialize → 403 and no session', async () => {
      const before = gw.sessions.size;
      const r = await rawPost(
        gw.mcpUrl,
        req(0, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x' } }),
        { origin: 'http://evil.example' },
      );
      expect(r.status).toBe(403);
      expect(r.headers.get('mcp-session-id')).toBeNull();
      expect(gw.sessions.size).toBe(before);
    });

    it('disallowed Origin on GET and DELETE → 403', async () => {
      const g = await send(gw.mcpUrl, { method: 'GET', headers: { accept: 'text/event-stream', origin: 'http://evil.example', ...H } });
      expect(g.status).toBe(403);
      expect(rpcError(g.json).message).toContain('http://evil.example');
      const d = await send(gw.mcpUrl, { method: 'DELETE', headers: { origin: 'http://evil.example', ...H } });
      expect(d.status).toBe(403);
      expect(gw.sessions.get(sid)).toBeDefined();
    });

    it('OPTIONS preflight from a disallowed Origin does not grant CORS to it', async () => {
      const res = await fetch(gw.mcpUrl, {
        method: 'OPTIONS',
        headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, mcp-session-id' },
      });
      await res.arrayBuffer();
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('OPTIONS preflight from an allowed Origin grants CORS', async () => {
      const res = await fetch(gw.mcpUrl, { method: 'OPTIONS', headers: { origin: 'http://localhost:1234', 'access-control-request-method': 'POST' } });
      await res.arrayBuffer();
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:1234');
      expect(res.headers.get('access-control-allow-headers')).toMatch(/Mcp-Session-Id/i);
    });

    it('Origin http://localhost:1234 is allowed (and echoed for CORS)', async () => {
      const r = await rawPost(gw.mcpUrl, PING, { ...H, origin: 'http://localhost:1234' });
      expect(r.status).toBe(200);
      rpcResult(r.json);
      expect(r.headers.get('access-control-allow-origin')).toBe('http://localhost:1234');
    });
  });

  describe('notifications and responses → 202, empty body', () => {
    it.each([
      ['notifications/initialized', JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })],
      ['unknown notification', JSON.stringify({ jsonrpc: '2.0', method: 'notifications/whatever', params: { a: 1 } })],
      ['cancel of an unknown request', JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'zzz' } })],
      ['response (result) to no request', JSON.stringify({ jsonrpc: '2.0', id: 77, result: {} })],
      ['response (error) to no request', JSON.stringify({ jsonrpc: '2.0', id: 'x', error: { code: -1, message: 'no' } })],
      ['batch of notifications', JSON.stringify([{ jsonrpc: '2.0', method: 'notifications/a' }, { jsonrpc: '2.0', method: 'notifications/b' }])],
    ])('%s', async (_label, body) => {
      const r = await rawPost(gw.mcpUrl, body, H);
      expect(r.status).toBe(202);
      expect(r.text).toBe('');
    });
  });

  describe('GET and DELETE', () => {
    it('GET /mcp without Accept: text/event-stream → 406', async () => {
      const r = await send(gw.mcpUrl, { method: 'GET', headers: { accept: 'application/json', ...H } });
      expect(r.status).toBe(406);
      const e = rpcError(r.json);
      expect(e.message).toContain('text/event-stream');
    });

    it('GET /mcp without a session → 400; unknown session → 404', async () => {
      const a = await send(gw.mcpUrl, { method: 'GET', headers: { accept: 'text/event-stream' } });
      expect(a.status).toBe(400);
      expect(rpcError(a.json).message).toContain('Mcp-Session-Id');
      const b = await send(gw.mcpUrl, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': 'nope' } });
      expect(b.status).toBe(404);
    });

    it('second concurrent GET stream on one session → 409; after the first closes a new one is allowed', async () => {
      const s = await rawSession(gw.mcpUrl);
      const first = await openStream(gw, s);
      try {
        expect(first.res.status).toBe(200);
        expect(first.res.headers.get('content-type')).toContain('text/event-stream');
        const second = await send(gw.mcpUrl, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': s } });
        expect(second.status).toBe(409);
        const e = rpcError(second.json);
        expect(e.code).toBe(-32600);
        expect(e.message).toMatch(/conflict/i);
        expect(e.message).toMatch(/one SSE stream/i);
      } finally {
        first.ctl.abort();
      }
      await vi.waitFor(() => expect(gw.sessions.get(s)?.standalone).toBeUndefined(), { timeout: 5000, interval: 10 });
      const third = await openStream(gw, s);
      expect(third.res.status).toBe(200);
      third.ctl.abort();
    });

    it('DELETE ends the session (its open stream ends); later POST with that id → 404', async () => {
      const s = await rawSession(gw.mcpUrl);
      const stream = await openStream(gw, s);
      expect(stream.res.status).toBe(200);
      const body = stream.res.body;
      if (!body) throw new Error('no stream body');
      const reader = body.getReader();
      const del = await send(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': s } });
      expect(del.status).toBe(200);
      // the standalone stream finishes once the session is gone
      const ended = (async () => {
        for (;;) if ((await reader.read()).done) return 'ended';
      })();
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still open after 5 s'), 5000).unref());
      expect(await Promise.race([ended, timeout])).toBe('ended');
      expect(gw.sessions.get(s)).toBeUndefined();
      const r = await rawPost(gw.mcpUrl, PING, { 'mcp-session-id': s });
      expect(r.status).toBe(404);
      expect(rpcError(r.json).message).toMatch(/session not found/i);
      const again = await send(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': s } });
      expect(again.status).toBe(404);
    });

    it('DELETE with an unknown session → 404; without a session → 400', async () => {
      const a = await send(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': 'does-not-exist' } });
      expect(a.status).toBe(404);
      expect(rpcError(a.json).message).toMatch(/session not found/i);
      const b = await send(gw.mcpUrl, { method: 'DELETE' });
      expect(b.status).toBe(400);
    });
  });

  describe('routing', () => {
    it.each([
      ['GET', '/nope'],
      ['POST', '/mcp/extra'],
      ['GET', '/'],
    ])('%s %s → 404 {"error","code","details"}', async (method, path) => {
      const r = await send(`${gw.url}${path}`, { method, ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}) });
      expect(r.status).toBe(404);
      expect(r.headers.get('content-type')).toContain('application/json');
      const b = obj(r.json);
      expect(Object.keys(b).sort()).toEqual(['code', 'details', 'error']);
      expect(b['code']).toBe('NOT_FOUND');
      expect(b['error']).toContain(path);
      expect(obj(b['details'])).toEqual({});
    });

    it('PUT /mcp → 405 with Allow', async () => {
      const r = await send(gw.mcpUrl, { method: 'PUT', headers: { 'content-type': 'application/json', ...H }, body: PING });
      expect(r.status).toBe(405);
      expect(r.headers.get('allow')).toContain('POST');
      const b = obj(r.json);
      expect(b['code']).toBe('METHOD_NOT_ALLOWED');
      expect(b['error']).toContain('PUT');
    });

    it('PATCH /mcp → 405', async () => {
      const r = await send(gw.mcpUrl, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(r.status).toBe(405);
    });
  });

  describe('JSON-RPC batches', () => {
    it('two requests → 200 with two responses', async () => {
      const r = await rawPost(gw.mcpUrl, JSON.stringify([JSON.parse(req('a', 'ping')), JSON.parse(toolCall('b', 'demo-add', { a: 2, b: 3 }))]), H);
      expect(r.status).toBe(200);
      const list = arr(r.json);
      expect(list).toHaveLength(2);
      const byId = new Map(list.map((m) => [obj(m)['id'], m]));
      expect(rpcResult(byId.get('a'))).toEqual({});
      expect(obj(rpcResult(byId.get('b'))['structuredContent'])).toEqual({ sum: 5 });
    });

    it('empty batch → 400, -32600', async () => {
      const r = await rawPost(gw.mcpUrl, '[]', H);
      expect(r.status).toBe(400);
      const e = rpcError(r.json);
      expect(e.id).toBeNull();
      expect(e.code).toBe(-32600);
      expect(e.message).toMatch(/empty batch/i);
    });

    it('batch containing initialize → 400', async () => {
      const init = JSON.parse(req(1, 'initialize', { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'b' } })) as Json;
      const r = await rawPost(gw.mcpUrl, JSON.stringify([init, JSON.parse(req(2, 'ping'))]), H);
      expect(r.status).toBe(400);
      const e = rpcError(r.json);
      expect(e.code).toBe(-32600);
      expect(e.message).toContain('initialize');
    });

    it('batch with an invalid member → that member answers -32600, the rest succeed', async () => {
      const r = await rawPost(gw.mcpUrl, JSON.stringify([42, JSON.parse(req('ok', 'ping'))]), H);
      expect(r.status).toBe(200);
      const list = arr(r.json);
      expect(list).toHaveLength(2);
      const invalid = list.map(obj).find((m) => m['id'] === null);
      expect(rpcError(invalid).code).toBe(-32600);
      expect(rpcResult(list.map(obj).find((m) => m['id'] === 'ok'))).toEqual({});
    });

    it('batch with the same id twice → one of them is a duplicate-id error', async () => {
      const r = await rawPost(gw.mcpUrl, JSON.stringify([JSON.parse(req(5, 'ping')), JSON.parse(req(5, 'ping'))]), H);
      expect(r.status).toBe(200);
      const list = arr(r.json).map(obj);
      expect(list).toHaveLength(2);
      const errors = list.filter((m) => m['error'] !== undefined);
      expect(errors).toHaveLength(1);
      const e = rpcError(errors[0]);
      expect(e.code).toBe(-32600);
      expect(e.message).toMatch(/duplicate/i);
      expect(e.message).toContain('5');
    });

    it('batch without a session → 400', async () => {
      const r = await rawPost(gw.mcpUrl, JSON.stringify([JSON.parse(req(1, 'ping'))]));
      expect(r.status).toBe(400);
      expect(rpcError(r.json).message).toContain('Mcp-Session-Id');
    });
  });

  describe('in-flight requests', () => {
    it('a duplicate in-flight request id in one session → error response; the first call completes', async () => {
      const slow = rawPost(gw.mcpUrl, toolCall('dup', 'demo-sleep', { ms: 600, steps: 1 }), H);
      await vi.waitFor(() => expect(gw.sessions.get(sid)?.calls.has('dup')).toBe(true), { timeout: 5000, interval: 5 });
      const dup = await rawPost(gw.mcpUrl, req('dup', 'ping'), H);
      expect(dup.status).toBe(200);
      const e = rpcError(dup.json);
      expect(e.id).toBe('dup');
      expect(e.code).toBe(-32600);
      expect(e.message).toContain('dup');
      expect(e.message).toMatch(/in flight/i);
      const first = await slow;
      expect(first.status).toBe(200);
      expect(firstText(rpcResult(first.json))).toBe('slept 600 ms');
      // the id is free again
      const later = await rawPost(gw.mcpUrl, req('dup', 'ping'), H);
      rpcResult(later.json);
    });

    it('client disconnect mid-request cancels the upstream call', async () => {
      const s = await rawSession(gw.mcpUrl);
      const events: { at: number; event: GatewayEvent }[] = [];
      const sub: Subscription = gw.bus.events$.subscribe((event) => events.push({ at: performance.now(), event }));
      try {
        const ctl = new AbortController();
        const started = performance.now();
        const call = fetch(gw.mcpUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': s },
          body: toolCall('cancel-me', 'demo-sleep', { ms: 3000, steps: 3 }),
          signal: ctl.signal,
        }).then(
          () => 'answered',
          (err: unknown) => (err instanceof Error ? err.name : 'error'),
        );
        await vi.waitFor(() => expect(gw.sessions.get(s)?.calls.size).toBe(1), { timeout: 5000, interval: 5 });
        await new Promise((r) => setTimeout(r, 200));
        ctl.abort();
        expect(await call).toBe('AbortError');
        const failed = await vi.waitFor(
          () => {
            const hit = events.find((e) => e.event.event_type === 'ToolInvocationFailed' && e.event.tool_name === 'sleep');
            if (!hit) throw new Error('no ToolInvocationFailed for sleep yet');
            return hit;
          },
          { timeout: 2500, interval: 10 },
        );
        expect(failed.at - started).toBeLessThan(2500);
        expect(failed.event.event_type === 'ToolInvocationFailed' ? failed.event.mcp_server_id : undefined).toBe('demo');
        expect(events.some((e) => e.event.event_type === 'ToolInvocationCompleted' && e.event.tool_name === 'sleep')).toBe(false);
        expect(gw.sessions.get(s)?.calls.size).toBe(0);
      } finally {
        sub.unsubscribe();
      }
      // the session and the gateway keep working
      const r = await rawPost(gw.mcpUrl, PING, { 'mcp-session-id': s });
      rpcResult(r.json);
    });

    it('client disconnect mid-batch cancels the running call and starts no more (items run one at a time)', async () => {
      const s = await rawSession(gw.mcpUrl);
      const failed: GatewayEvent[] = [];
      const sub: Subscription = gw.bus.events$.subscribe((event) => {
        if (event.event_type === 'ToolInvocationFailed' && event.tool_name === 'sleep') failed.push(event);
      });
      try {
        const ctl = new AbortController();
        const batch = ['c1', 'c2'].map((id) => JSON.parse(toolCall(id, 'demo-sleep', { ms: 3000, steps: 3 })) as Json);
        const call = fetch(gw.mcpUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json', 'mcp-session-id': s },
          body: JSON.stringify(batch),
          signal: ctl.signal,
        }).then(
          () => 'answered',
          (err: unknown) => (err instanceof Error ? err.name : 'error'),
        );
        await vi.waitFor(() => expect(gw.sessions.get(s)?.calls.has('c1')).toBe(true), { timeout: 5000, interval: 5 });
        expect(gw.sessions.get(s)?.calls.size).toBe(1);
        ctl.abort();
        expect(await call).toBe('AbortError');
        await vi.waitFor(() => expect(failed).toHaveLength(1), { timeout: 2500, interval: 10 });
        await vi.waitFor(() => expect(gw.sessions.get(s)?.calls.size).toBe(0), { timeout: 1000, interval: 10 });
        // c2 never started: no second call appears and no second failure is published
        await new Promise((r) => setTimeout(r, 300));
        expect(gw.sessions.get(s)?.calls.size).toBe(0);
        expect(failed).toHaveLength(1);
      } finally {
        sub.unsubscribe();
      }
    });
  });
});

describe('request _meta that the upstream cannot accept', () => {
  // The demo upstream times out after 1 s, so a request the upstream silently drops shows up as
  // -32001 after 1 s instead of hanging for the default 30 s.
  let gw: TestGateway;
  let H: Record<string, string>;

  beforeAll(async () => {
    gw = await startTestGateway([demoClient('demo', { request_timeout_ms: 1000 })]);
    H = { 'mcp-session-id': await rawSession(gw.mcpUrl) };
  });

  afterAll(async () => {
    await gw.stop();
  });

  it.each<[string, string, Json]>([
    ['tools/call, progressToken true', 'tools/call', { name: 'demo-echo', arguments: { message: 'x' }, _meta: { progressToken: true } }],
    ['tools/call, progressToken null', 'tools/call', { name: 'demo-echo', arguments: { message: 'x' }, _meta: { progressToken: null } }],
    ['resources/read, progressToken {}', 'resources/read', { uri: 'demo://readme', _meta: { progressToken: {} } }],
    ['prompts/get, progressToken []', 'prompts/get', { name: 'demo-greeting', arguments: { name: 'x' }, _meta: { progressToken: [] } }],
  ])('%s → -32602 naming progressToken at once (not an upstream timeout)', async (_label, method, params) => {
    const r = await rawPost(gw.mcpUrl, req('meta', method, params), H);
    expect(r.status).toBe(200);
    const e = rpcError(r.json);
    expect(e.id).toBe('meta');
    expect(e.code).toBe(-32602);
    expect(e.message).toContain('progressToken');
  });

  it('a valid numeric progressToken is fine (control)', async () => {
    const r = await rawPost(gw.mcpUrl, toolCall('ok', 'demo-echo', { message: 'x' }).replace('"arguments"', '"_meta":{"progressToken":7},"arguments"'), H);
    expect(firstText(rpcResult(r.json))).toBe('Echo: x');
  });
});

describe('/mcp body size limit (max_body_bytes 1024)', () => {
  let gw: TestGateway;
  let H: Record<string, string>;

  beforeAll(async () => {
    gw = await startTestGateway([demoClient()], { max_body_bytes: 1024 });
    H = { 'mcp-session-id': await rawSession(gw.mcpUrl) };
  });

  afterAll(async () => {
    await gw.stop();
  });

  const big = toolCall(1, 'demo-echo', { message: 'x'.repeat(4000) });

  function expect413(r: { status: number; json: unknown }): void {
    expect(r.status).toBe(413);
    const e = rpcError(r.json);
    expect(e.id).toBeNull();
    expect(e.message).toMatch(/too large/i);
    expect(e.message).toContain('1024');
  }

  it('body over the limit with Content-Length → 413', async () => {
    expect413(await rawPost(gw.mcpUrl, big, H));
  });

  it('body over the limit without Content-Length (chunked) → 413', async () => {
    const chunk = new TextEncoder().encode(big.slice(0, 700));
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(chunk);
        c.close();
      },
    });
    // `duplex` is required by undici for stream bodies but missing from the DOM RequestInit type
    const init: RequestInit & { duplex: 'half' } = {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...H },
      body,
      duplex: 'half',
    };
    const r = await send(gw.mcpUrl, init);
    expect413(r);
  });

  it('body just under the limit is served', async () => {
    const r = await rawPost(gw.mcpUrl, toolCall(2, 'demo-echo', { message: 'y'.repeat(900) }), H);
    expect(r.status).toBe(200);
    expect(firstText(rpcResult(r.json))).toBe(`Echo: ${'y'.repeat(900)}`);
  });

  it('the server keeps serving after 413s', async () => {
    for (let i = 0; i < 3; i++) expect((await rawPost(gw.mcpUrl, big, H)).status).toBe(413);
    const r = await rawPost(gw.mcpUrl, PING, H);
    expect(r.status).toBe(200);
    rpcResult(r.json);
  });
});

describe('/mcp overload (concurrency 1, max_queued 1)', () => {
  let gw: TestGateway;
  let H: Record<string, string>;
  let sid: string;

  beforeAll(async () => {
    gw = await startTestGateway([demoClient()], { concurrency: 1, max_queued: 1 });
    sid = await rawSession(gw.mcpUrl);
    H = { 'mcp-session-id': sid };
  });

  afterAll(async () => {
    await gw.stop();
  });

  it('a JSON-RPC batch does not bypass the concurrency bound', async () => {
    const batch = ['b0', 'b1', 'b2', 'b3', 'b4'].map((id) => JSON.parse(toolCall(id, 'demo-sleep', { ms: 300, steps: 1 })) as Json);
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, gw.sessions.get(sid)?.calls.size ?? 0);
    }, 5);
    try {
      const r = await rawPost(gw.mcpUrl, JSON.stringify(batch), H);
      expect(r.status === 200 || r.status === 503).toBe(true);
      for (const m of r.status === 200 ? arr(r.json) : [r.json]) {
        const o = obj(m);
        if (o['error'] !== undefined) expect(rpcError(o).code).toBe(-32000);
      }
    } finally {
      clearInterval(sampler);
    }
    // concurrency 1 + max_queued 1: never more than 2 upstream calls at once from one POST
    expect(peak).toBeLessThanOrEqual(2);
  });

  it('beyond concurrency + queue → 503 with Retry-After and -32000; then requests succeed again', async () => {
    const slow = rawPost(gw.mcpUrl, toolCall('slow', 'demo-sleep', { ms: 1500, steps: 1 }), H);
    await vi.waitFor(() => expect(gw.sessions.get(sid)?.calls.has('slow')).toBe(true), { timeout: 5000, interval: 5 });
    // two more: one takes the single queue place and waits, the other finds the queue full
    const [x, y] = await Promise.all([rawPost(gw.mcpUrl, req('x', 'ping'), H), rawPost(gw.mcpUrl, req('y', 'ping'), H)]);
    const rejected = x.status === 503 ? x : y;
    const queued = x.status === 503 ? y : x;
    expect([x.status, y.status].sort()).toEqual([200, 503]);
    expect(rejected.headers.get('retry-after')).toMatch(/^\d+$/);
    const e = rpcError(rejected.json);
    expect(e.code).toBe(-32000);
    expect(e.message).toMatch(/overloaded/i);
    rpcResult(queued.json);
    const s = await slow;
    expect(s.status).toBe(200);
    expect(firstText(rpcResult(s.json))).toBe('slept 1500 ms');
    const after = await rawPost(gw.mcpUrl, PING, H);
    expect(after.status).toBe(200);
    rpcResult(after.json);
  });
});

describe('/mcp overload (concurrency 1, max_queued 0: no waiting queue)', () => {
  it('a second request while one is in flight → 503 at once; then requests succeed again', async () => {
    // max_queued 0 means "no queue, fail fast" (boundedMergeMap accepts maxQueued ≥ 0)
    const gw = await startTestGateway([demoClient()], { concurrency: 1, max_queued: 0 });
    try {
      const sid = await rawSession(gw.mcpUrl);
      const H = { 'mcp-session-id': sid };
      const slow = rawPost(gw.mcpUrl, toolCall('slow', 'demo-sleep', { ms: 1500, steps: 1 }), H);
      await vi.waitFor(() => expect(gw.sessions.get(sid)?.calls.has('slow')).toBe(true), { timeout: 5000, interval: 5 });
      const rejected = await rawPost(gw.mcpUrl, req('rejected', 'ping'), H);
      expect(rejected.status).toBe(503);
      expect(rejected.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(rpcError(rejected.json).code).toBe(-32000);
      expect((await slow).status).toBe(200);
      const after = await rawPost(gw.mcpUrl, PING, H);
      expect(after.status).toBe(200);
    } finally {
      await gw.stop();
    }
  });
});

describe('upstream not connected', () => {
  describe('a stdio upstream that exits at once', () => {
    let gw: TestGateway;
    let H: Record<string, string>;

    beforeAll(async () => {
      gw = await startTestGateway([
        {
          name: 'broken',
          connection_type: 'stdio',
          stdio_config: { command: process.execPath, args: ['-e', 'process.exit(3)'] },
          connect_timeout_ms: 3000,
        },
        demoClient(),
      ]);
      H = { 'mcp-session-id': await rawSession(gw.mcpUrl) };
    });

    afterAll(async () => {
      await gw.stop();
    });

    it('health shows it as error and the gateway as degraded', async () => {
      const h = await getHealth(gw);
      expect(h.status).toBe(200);
      expect(h.body['status']).toBe('degraded');
      const upstreams = obj(obj(h.body['components'])['upstreams']);
      expect(upstreams['broken']).toBe('error');
      expect(upstreams['demo']).toBe('connected');
    });

    it('its tools are absent; the demo still answers', async () => {
      const list = await rawPost(gw.mcpUrl, req(1, 'tools/list'), H);
      const names = arr(rpcResult(list.json)['tools']).map((t) => obj(t)['name']);
      expect(names).toContain('demo-echo');
      expect(names.some((n) => typeof n === 'string' && n.startsWith('broken-'))).toBe(false);
      const r = await rawPost(gw.mcpUrl, toolCall(2, 'demo-echo', { message: 'ok' }), H);
      expect(firstText(rpcResult(r.json))).toBe('Echo: ok');
    });
  });

  describe('an upstream stopped at runtime', () => {
    let gw: TestGateway;
    let H: Record<string, string>;

    beforeAll(async () => {
      gw = await startTestGateway([demoClient()]);
      H = { 'mcp-session-id': await rawSession(gw.mcpUrl) };
      const demo = gw.manager.get('demo');
      if (!demo) throw new Error('demo upstream missing');
      await demo.close();
    });

    afterAll(async () => {
      await gw.stop();
    });

    it('tools/call → -32003 naming the upstream', async () => {
      const r = await rawPost(gw.mcpUrl, toolCall(3, 'demo-echo', { message: 'x' }), H);
      expect(r.status).toBe(200);
      const e = rpcError(r.json);
      expect(e.id).toBe(3);
      expect(e.code).toBe(-32003);
      expect(e.message).toContain('"demo"');
      expect(e.message).toMatch(/not connected/i);
      expect(obj(e.data)['upstream']).toBe('demo');
    });

    it('health reports it; ping still works', async () => {
      const h = await getHealth(gw);
      expect(obj(obj(h.body['components'])['upstreams'])['demo']).toBe('disconnected');
      expect(h.body['status']).toBe('unhealthy');
      const r = await rawPost(gw.mcpUrl, PING, H);
      rpcResult(r.json);
    });
  });
});
