/**
 * A caller's bad input is the caller's error: nesting depth is limited at decode time on `/mcp`,
 * `/ws` text frames, MCPW binary frames and REST bodies, before anything recursive runs; a message
 * the gateway cannot serialise never counts against an upstream's circuit breaker; MCPW 64-bit
 * integers become numbers when safe and a named error otherwise. Real gateway on port 0, real
 * server-everything over stdio, the in-process demo, real `ws` clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { decodeFrame, McpwMethod, McpwType, type McpwDecodedFrame } from '../src/codecs/mcpw.js';
import { MAX_NESTING_DEPTH } from '../src/codecs/depth.js';
import { GatewayError } from '../src/base/errors.js';
import { connectClient, demoClient, everythingClient, rawPost, rawSession, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway([everythingClient(), demoClient()], {}, { orchestration: {} });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

/** JSON text of `{"x":{"x":…1…}}`, `depth` objects deep, built as text (JSON.stringify itself overflows near 5,000). */
function deepJson(depth: number): string {
  return '{"x":'.repeat(depth) + '1' + '}'.repeat(depth);
}

interface RpcError {
  code: number;
  message: string;
  data?: { code?: string; limit?: number };
}

function errorOf(json: unknown): RpcError {
  const e = (json as { error?: RpcError }).error;
  if (e === undefined) throw new Error(`expected a JSON-RPC error, got ${JSON.stringify(json)}`);
  return e;
}

describe('/mcp: nesting depth limit and the circuit breaker', () => {
  it('10 tools/call requests with 5,000-deep arguments are refused naming the limit; the breaker stays closed and another caller still calls everything-echo', async () => {
    const session = await rawSession(gw.mcpUrl);
    const body = (id: number): string =>
      `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"everything-echo","arguments":{"message":"hi","deep":${deepJson(5000)}}}}`;
    expect(body(1).length).toBeGreaterThan(20_000);
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => rawPost(gw.mcpUrl, body(i + 1), { 'mcp-session-id': session })));
    for (const [i, r] of replies.entries()) {
      expect(r.status).toBe(400);
      expect((r.json as { id: unknown }).id).toBe(i + 1);
      const e = errorOf(r.json);
      expect(e.code).toBe(-32600);
      expect(e.data?.code).toBe('NESTING_TOO_DEEP');
      expect(e.data?.limit).toBe(MAX_NESTING_DEPTH);
      expect(e.message).toContain(`limit of ${MAX_NESTING_DEPTH} levels`);
    }
    const upstream = gw.manager.get('everything');
    expect(upstream?.breaker.snapshot).toEqual({ state: 'closed', failures: 0 });
    const other = await connectClient(gw, {}, 'other-caller');
    try {
      const r = await other.callTool({ name: 'everything-echo', arguments: { message: 'still here' } });
      expect(JSON.stringify(r.content)).toContain('still here');
    } finally {
      await other.close();
    }
  }, 60_000);

  it('arguments nested just under the limit still reach the stdio upstream', async () => {
    const session = await rawSession(gw.mcpUrl);
    // message 1 → params 2 → arguments 3 → deep: the innermost object is at depth 3 + n
    const n = MAX_NESTING_DEPTH - 3;
    const r = await rawPost(
      gw.mcpUrl,
      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"everything-echo","arguments":{"message":"near the limit","deep":${deepJson(n)}}}}`,
      { 'mcp-session-id': session },
    );
    expect(r.status).toBe(200);
    // a JSON reply, or an SSE stream when the upstream sent a related message first (server-everything
    // logs on a timer, and a log line arriving during the call is relayed on the call's stream)
    expect(r.text).toContain('Echo: near the limit');
    const over = await rawPost(
      gw.mcpUrl,
      `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"everything-echo","arguments":{"message":"over","deep":${deepJson(n + 1)}}}}`,
      { 'mcp-session-id': session },
    );
    expect(errorOf(over.json).data?.code).toBe('NESTING_TOO_DEEP');
  });

  it('a deep _meta.progressToken is refused with the named limit, a shallow wrong one with -32602 naming the field', async () => {
    const session = await rawSession(gw.mcpUrl);
    const deep = await rawPost(
      gw.mcpUrl,
      `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"everything-echo","arguments":{"message":"x"},"_meta":{"progressToken":${deepJson(5000)}}}}`,
      { 'mcp-session-id': session },
    );
    expect(deep.status).toBe(400);
    expect(errorOf(deep.json)).toMatchObject({ code: -32600, data: { code: 'NESTING_TOO_DEEP', limit: MAX_NESTING_DEPTH } });
    const shallow = await rawPost(
      gw.mcpUrl,
      `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"everything-echo","arguments":{"message":"x"},"_meta":{"progressToken":${deepJson(100)}}}}`,
      { 'mcp-session-id': session },
    );
    const e = errorOf(shallow.json);
    expect(e.code).toBe(-32602);
    expect(e.message).toContain('progressToken');
  });

  it('a message the gateway cannot serialise fails as INVALID_PARAMS and never counts against the breaker (upstream called directly)', async () => {
    const upstream = gw.manager.get('everything');
    if (upstream === undefined) throw new Error('no upstream');
    // built iteratively: 100,000 levels, far past what JSON.stringify can recurse
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 100_000; i++) deep = { x: deep };
    // twice the default failure_threshold (5)
    for (let i = 0; i < 10; i++) {
      const err = await upstream.request('tools/call', { name: 'echo', arguments: { message: 'x', deep } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe('INVALID_PARAMS');
      expect((err as GatewayError).message).toContain('cannot be sent to upstream "everything" as JSON');
    }
    expect(upstream.breaker.snapshot).toEqual({ state: 'closed', failures: 0 });
    const ok = await upstream.request('tools/call', { name: 'echo', arguments: { message: 'fine' } });
    expect(JSON.stringify(ok)).toContain('fine');
  });

  it('REST bodies: a deep body and deep tool-call arguments are refused with 400 NESTING_TOO_DEEP', async () => {
    const deepBody = await send(`${gw.url}/v1/mcp/tool/execute?format=chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"id":"c1","type":"function","function":{"name":"demo-echo","arguments":"{}"},"deep":${deepJson(5000)}}`,
    });
    expect(deepBody.status).toBe(400);
    expect(deepBody.json).toMatchObject({ code: 'NESTING_TOO_DEEP', details: { limit: MAX_NESTING_DEPTH } });
    const deepArgs = await send(`${gw.url}/v1/mcp/tool/execute?format=chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'c2', type: 'function', function: { name: 'demo-echo', arguments: `{"message":"m","deep":${deepJson(5000)}}` } }),
    });
    expect(deepArgs.status).toBe(400);
    expect(deepArgs.json).toMatchObject({ code: 'NESTING_TOO_DEEP' });
    const fine = await send(`${gw.url}/v1/mcp/tool/execute?format=chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'c3', type: 'function', function: { name: 'demo-echo', arguments: '{"message":"rest ok"}' } }),
    });
    expect(fine.status).toBe(200);
    expect(fine.text).toContain('rest ok');
  });
});

// ---- /ws ---------------------------------------------------------------------------------------

const packr = new Packr({ useRecords: false });
const pk = (v: unknown): Uint8Array => packr.pack(v);

/** MessagePack map from already-encoded values (so deep or 64-bit parts can be written by hand). */
function mpMap(entries: Array<[string, Uint8Array]>): Uint8Array {
  return Buffer.concat([Uint8Array.of(0x80 | entries.length), ...entries.flatMap(([k, v]) => [pk(k), v])]);
}

/** uint 64 (0xcf) with the given value. */
function u64(value: bigint): Uint8Array {
  const b = Buffer.alloc(9);
  b[0] = 0xcf;
  b.writeBigUInt64BE(value, 1);
  return b;
}

/** An MCPW frame around raw payload bytes. */
function rawFrame(type: number, method: number, requestId: bigint, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(24 + payload.length);
  b.writeUInt32BE(0x4d435057, 0);
  b[4] = 1;
  b[5] = type;
  b.writeUInt16BE(method, 6);
  b.writeUInt32BE(payload.length, 12);
  b.writeBigUInt64BE(requestId, 16);
  b.set(payload, 24);
  return b;
}

class WsPeer {
  readonly frames: McpwDecodedFrame[] = [];
  readonly texts: Array<Record<string, unknown>> = [];
  /** Every binary message exactly as received. */
  readonly raw: Buffer[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const buf = data as Buffer;
      if (isBinary) {
        this.raw.push(Buffer.from(buf));
        const d = decodeFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
        if (!d.ok) throw new Error(`server sent a bad frame: ${d.error.message}`);
        this.frames.push(d.frame);
      } else this.texts.push(JSON.parse(String(buf)) as Record<string, unknown>);
    });
  }

  static async open(): Promise<WsPeer> {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new WsPeer(ws);
  }

  async frame(requestId: bigint, timeoutMs = 10_000): Promise<McpwDecodedFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find((x) => x.requestId === requestId);
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`no frame for request id ${requestId}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async text(id: unknown, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const t = this.texts.find((x) => x['id'] === id);
      if (t) return t;
      if (Date.now() > deadline) throw new Error(`no text reply for id ${String(id)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async initializeBinary(id: bigint): Promise<void> {
    this.ws.send(rawFrame(McpwType.Request, McpwMethod.Initialize, id, pk({ protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'limits' } })));
    const f = await this.frame(id);
    expect(f.type).toBe(McpwType.Response);
  }

  close(): void {
    this.ws.close();
  }
}

function mcpwError(f: McpwDecodedFrame): { code: number; message: string; data: { code: string } } {
  expect(f.type).toBe(McpwType.Error);
  return (f.payload as { error: { code: number; message: string; data: { code: string } } }).error;
}

describe('/ws: depth and 64-bit integers', () => {
  it('a 5,000-deep msgpack agent.register over MCPW gets an Error frame naming the limit; the connection stays usable', async () => {
    const peer = await WsPeer.open();
    try {
      const deep = Buffer.concat([Buffer.alloc(5000, 0x91), Uint8Array.of(0x01)]);
      const params = mpMap([
        ['name', pk('deep-agent')],
        ['capabilities', pk(['code'])],
        ['model', deep],
      ]);
      const msg = mpMap([
        ['jsonrpc', pk('2.0')],
        ['id', pk(41)],
        ['method', pk('agent.register')],
        ['params', params],
      ]);
      peer.ws.send(rawFrame(McpwType.Request, McpwMethod.Generic, 41n, msg));
      const e = mcpwError(await peer.frame(41n));
      expect(e.code).toBe(-32600);
      expect(e.data.code).toBe('nesting_too_deep');
      expect(e.message).toContain(`limit of ${MAX_NESTING_DEPTH} levels`);
      // the same connection registers an agent normally afterwards
      const ok = mpMap([
        ['jsonrpc', pk('2.0')],
        ['id', pk(42)],
        ['method', pk('agent.register')],
        ['params', pk({ name: 'fine-agent', capabilities: ['code'] })],
      ]);
      peer.ws.send(rawFrame(McpwType.Request, McpwMethod.Generic, 42n, ok));
      const r = await peer.frame(42n);
      expect(r.type).toBe(McpwType.Response);
      expect(JSON.stringify(r.payload)).toContain('agent_id');
    } finally {
      peer.close();
    }
  });

  it('a deep JSON text frame is refused with the request id and the named limit', async () => {
    const peer = await WsPeer.open();
    try {
      peer.ws.send(`{"jsonrpc":"2.0","id":"t1","method":"agent.register","params":{"name":"a","capabilities":["x"],"model":${deepJson(5000)}}}`);
      const reply = await peer.text('t1');
      expect(reply['error']).toMatchObject({ code: -32600, data: { code: 'NESTING_TOO_DEEP', limit: MAX_NESTING_DEPTH } });
    } finally {
      peer.close();
    }
  });

  it('a text frame over the 16 MiB payload limit is refused naming the limit; the connection stays usable', async () => {
    const peer = await WsPeer.open();
    try {
      peer.ws.send(`{"jsonrpc":"2.0","id":"big","method":"ping","pad":"${'x'.repeat(17 * 1024 * 1024)}"}`);
      await new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 20_000;
        const tick = (): void => {
          if (peer.texts.length > 0) resolve();
          else if (Date.now() > deadline) reject(new Error('no reply to the large frame'));
          else setTimeout(tick, 10);
        };
        tick();
      });
      expect(peer.texts[0]?.['error']).toMatchObject({ code: -32600, data: { code: 'BODY_TOO_LARGE', limit_bytes: 16 * 1024 * 1024 } });
      peer.ws.send('{"jsonrpc":"2.0","id":"after","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x"}}}');
      expect((await peer.text('after'))['result']).toBeDefined();
    } finally {
      peer.close();
    }
  }, 30_000);

  it('u64 integers over MCPW: safe ones arrive as numbers (demo-add, task payload), an unsafe one gets an Error frame naming the value', async () => {
    const peer = await WsPeer.open();
    try {
      await peer.initializeBinary(1n);
      // tools/call (compact 0003): demo-add's zod schema takes only numbers, so a bigint would fail it
      const add = mpMap([
        ['name', pk('demo-add')],
        ['arguments', mpMap([['a', u64(2n)], ['b', u64(40n)]])],
      ]);
      peer.ws.send(rawFrame(McpwType.Request, McpwMethod.ToolsCall, 2n, add));
      const sum = await peer.frame(2n);
      expect(sum.type).toBe(McpwType.Response);
      expect((sum.payload as { structuredContent?: unknown }).structuredContent).toEqual({ sum: 42 });
      // the largest safe integer is still a number
      const maxSafe = mpMap([
        ['name', pk('demo-add')],
        ['arguments', mpMap([['a', u64(2n ** 53n - 1n)], ['b', u64(0n)]])],
      ]);
      peer.ws.send(rawFrame(McpwType.Request, McpwMethod.ToolsCall, 3n, maxSafe));
      expect(((await peer.frame(3n)).payload as { structuredContent?: unknown }).structuredContent).toEqual({ sum: Number.MAX_SAFE_INTEGER });
      // orchestration: a task payload holding a u64 is stored and answered (was "Do not know how to serialize a BigInt")
      const register = mpMap([['jsonrpc', pk('2.0')], ['id', pk(4)], ['method', pk('agent.register')], ['params', pk({ name: 'u64-agent', capabilities: ['n'] })]]);
      peer.ws.send(rawFrame(McpwType.Request, McpwMethod.Generic, 4n, register));
      expect((await peer.frame(4n)).type).toBe(McpwType.Response);
      const assign = mpMap([
        ['jsonrpc', pk('2.0')],
        ['id', pk(5)],
        ['method', pk('task.assign')],
        ['params', mpMap([['type', pk('count')], ['payload', mpMap([['count', u64(7n)]])]])],
      ]);
      peer.ws.send(rawFrame(McpwType.Request, McpwMethod.Generic, 5n, assign));
      const assigned = await peer.frame(5n);
      expect(assigned.type).toBe(McpwType.Response);
      // unsafe: 2^53 has no exact JS number
      const unsafe = mpMap([
        ['name', pk('demo-add')],
        ['arguments', mpMap([['a', u64(2n ** 53n)], ['b', u64(1n)]])],
      ]);
      peer.ws.send(rawFrame(McpwType.Request, McpwMethod.ToolsCall, 6n, unsafe));
      const e = mcpwError(await peer.frame(6n));
      expect(e.code).toBe(-32602);
      expect(e.data.code).toBe('unsafe_integer');
      expect(e.message).toContain('9007199254740992');
    } finally {
      peer.close();
    }
  });
});
