/**
 * `/ws` with real clients: the SDK `WebSocketClientTransport` (subprotocol `mcp`), a plain `ws`
 * client without subprotocol speaking JSON-RPC text, and MCPW binary frames (requests, Ping,
 * Close, bad frames), against a real gateway with the in-process demo upstream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import { CallToolResultSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { McpwFlags, McpwMethod, McpwType, decodeFrame, encodeFrame, type McpwDecodedFrame, type McpwFrame } from '../src/codecs/mcpw.js';
import { resolveConfig } from '../src/config/load.js';
import { demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';

let gw: TestGateway;

beforeAll(async () => {
  // Node 20 has no global WebSocket; the SDK transport uses the global one
  (globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
  gw = await startTestGateway([demoClient()]);
});

afterAll(async () => {
  await gw?.stop();
});

function wsUrl(): string {
  return `${gw.url.replace('http', 'ws')}/ws`;
}

async function raw(protocol?: string): Promise<{ ws: WebSocket; texts: Record<string, unknown>[]; frames: McpwDecodedFrame[]; closed: Promise<number> }> {
  const ws = protocol ? new WebSocket(wsUrl(), protocol) : new WebSocket(wsUrl());
  const texts: Record<string, unknown>[] = [];
  const frames: McpwDecodedFrame[] = [];
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      const buf = data as Buffer;
      const d = decodeFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
      if (d.ok) frames.push(d.frame);
      else throw new Error(`server sent a bad frame: ${d.error.message}`);
    } else texts.push(JSON.parse(String(data)) as Record<string, unknown>);
  });
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, texts, frames, closed };
}

async function until<T>(fn: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const INIT = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw-ws' } };

describe('/ws with the SDK WebSocket client (subprotocol mcp)', () => {
  it('lists and calls tools, reports progress, and sees list_changed', async () => {
    const client = new Client({ name: 'sdk-ws', version: '1' });
    await client.connect(new WebSocketClientTransport(new URL(wsUrl())));
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('demo-echo');
      const r = await client.callTool({ name: 'demo-echo', arguments: { message: 'over ws' } });
      expect(r.content).toEqual([{ type: 'text', text: 'Echo: over ws' }]);
      const ticks: number[] = [];
      await client.callTool({ name: 'demo-sleep', arguments: { ms: 200, steps: 4 } }, CallToolResultSchema, { onprogress: (p) => ticks.push(p.progress) });
      // the SDK client handles notifications a microtask after responses, so when the last
      // progress and the result arrive in one read it drops that progress; the raw test below
      // checks that the gateway sends all of them, in order, before the result
      expect(ticks.slice(0, 3)).toEqual([1, 2, 3]);
      let changed = false;
      client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
        changed = true;
      });
      await gw.manager.add(resolveConfig({ mcp_clients: [demoClient('ws_extra')] }, 't').mcp_clients[0]!);
      await until(() => (changed ? true : undefined));
      await gw.manager.remove('ws_extra');
    } finally {
      await client.close();
    }
  });

  it('cancels a call when the client sends notifications/cancelled', async () => {
    const client = new Client({ name: 'sdk-ws', version: '1' });
    await client.connect(new WebSocketClientTransport(new URL(wsUrl())));
    try {
      const ac = new AbortController();
      const started = Date.now();
      const call = client.callTool({ name: 'demo-sleep', arguments: { ms: 5000, steps: 5 } }, CallToolResultSchema, { signal: ac.signal });
      setTimeout(() => ac.abort('enough'), 100);
      await expect(call).rejects.toThrow();
      await until(() => ([...gw.sessions.values()].every((s) => s.calls.size === 0) ? true : undefined));
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await client.close();
    }
  });
});

describe('/ws JSON-RPC text without a subprotocol', () => {
  it('initializes, calls, rejects requests before initialize, and answers bad JSON', async () => {
    const c = await raw();
    try {
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
      const early = await until(() => c.texts.find((m) => m['id'] === 1));
      expect(early['error']).toMatchObject({ code: -32600 });
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'initialize', params: INIT }));
      const init = await until(() => c.texts.find((m) => m['id'] === 2));
      expect(init['result']).toMatchObject({ serverInfo: { name: 'tributary' } });
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'demo-add', arguments: { a: 20, b: 22 } } }));
      const call = await until(() => c.texts.find((m) => m['id'] === 3));
      expect(call['result']).toMatchObject({ structuredContent: { sum: 42 } });
      c.ws.send('{not json');
      const bad = await until(() => c.texts.find((m) => (m['error'] as { code?: number } | undefined)?.code === -32700));
      expect(bad['id']).toBeNull();
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'nope' }));
      expect((await until(() => c.texts.find((m) => m['id'] === 4)))['error']).toMatchObject({ code: -32601 });
      expect(c.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      c.ws.close();
    }
  });

  it('sends every progress notification of a call, in order, before its result', async () => {
    const c = await raw();
    try {
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT }));
      await until(() => c.texts.find((m) => m['id'] === 0));
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'demo-sleep', arguments: { ms: 100, steps: 4 }, _meta: { progressToken: 'p9' } } }));
      await until(() => c.texts.find((m) => m['id'] === 9));
      const relevant = c.texts.filter((m) => m['id'] === 9 || (m['params'] as { progressToken?: unknown } | undefined)?.progressToken === 'p9');
      expect(relevant.map((m) => (m['id'] === 9 ? 'result' : (m['params'] as { progress: number }).progress))).toEqual([1, 2, 3, 4, 'result']);
    } finally {
      c.ws.close();
    }
  });

  it('bounds requests in flight per connection', async () => {
    const c = await raw();
    try {
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT }));
      await until(() => c.texts.find((m) => m['id'] === 0));
      for (let i = 1; i <= 70; i++) c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'demo-sleep', arguments: { ms: 300, steps: 1 } } }));
      await until(() => (c.texts.filter((m) => typeof m['id'] === 'number' && (m['id'] as number) > 0).length === 70 ? true : undefined), 10_000);
      const overloaded = c.texts.filter((m) => (m['error'] as { code?: number } | undefined)?.code === -32000);
      expect(overloaded.length).toBe(6);
      expect(c.texts.filter((m) => (m['id'] as number) > 0 && m['result']).length).toBe(64);
    } finally {
      c.ws.close();
    }
  });
});

describe('/ws MCPW binary frames', () => {
  it('answers binary requests with binary replies carrying the same request id', async () => {
    const c = await raw();
    try {
      c.ws.send(encodeFrame({ type: McpwType.Request, method: McpwMethod.Initialize, requestId: 7n, payload: INIT }));
      const init = await until(() => c.frames.find((f) => f.requestId === 7n));
      expect(init.type).toBe(McpwType.Response);
      expect(init.payload).toMatchObject({ serverInfo: { name: 'tributary' } });
      const big = 'x'.repeat(5000);
      c.ws.send(encodeFrame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 2n ** 63n, payload: { name: 'demo-echo', arguments: { message: big } } }, { gzip: true }));
      const reply = await until(() => c.frames.find((f) => f.requestId === 2n ** 63n));
      expect(reply.type).toBe(McpwType.Response);
      expect(reply.method).toBe(McpwMethod.ToolsCall);
      expect(reply.payload).toEqual({ content: [{ type: 'text', text: `Echo: ${big}` }] });
      expect(reply.flags & 1).toBe(1); // gzip'd: over the compression threshold
      // a text request on the same connection is still answered in text
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'txt', method: 'ping' }));
      expect((await until(() => c.texts.find((m) => m['id'] === 'txt')))['result']).toEqual({});
    } finally {
      c.ws.close();
    }
  });

  it.each([false, true])('carries a 64 KiB tools/call as MCPW (gzip %s) and replies correctly', async (gzip) => {
    const c = await raw();
    try {
      c.ws.send(encodeFrame({ type: McpwType.Request, method: McpwMethod.Initialize, requestId: 1n, payload: INIT }));
      await until(() => c.frames.find((f) => f.requestId === 1n));
      const message = Array.from({ length: 64 * 1024 }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
      const frame = encodeFrame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 99n, payload: { name: 'demo-echo', arguments: { message } } }, { gzip });
      expect(frame.byteLength > 64 * 1024).toBe(!gzip);
      c.ws.send(frame);
      const reply = await until(() => c.frames.find((f) => f.requestId === 99n));
      expect(reply.type).toBe(McpwType.Response);
      expect(reply.payload).toEqual({ content: [{ type: 'text', text: `Echo: ${message}` }] });
    } finally {
      c.ws.close();
    }
  });

  it('answers Ping with Pong, bad frames with Error frames, and Close with 1000', async () => {
    const c = await raw();
    const hb = Buffer.from('4D4350570105000000000000000000000000000000002A'.padEnd(48, '0'), 'hex');
    // seed heartbeat: magic, v1, type 05, method 0000, flags 0, reserved, length 0, id 42
    hb.writeBigUInt64BE(42n, 16);
    c.ws.send(hb);
    const pong = await until(() => c.frames.find((f) => f.type === McpwType.Pong));
    expect(pong.requestId).toBe(42n);
    const bad = Buffer.from(hb);
    bad.write('XXXX', 0, 'latin1');
    c.ws.send(bad);
    const err = await until(() => c.frames.find((f) => f.type === McpwType.Error));
    expect(JSON.stringify(err.payload)).toMatch(/bad_magic/);
    // still usable
    c.ws.send(hb);
    await until(() => (c.frames.filter((f) => f.type === McpwType.Pong).length === 2 ? true : undefined));
    c.ws.send(encodeFrame({ type: McpwType.Close, method: McpwMethod.Generic, requestId: 0n, payload: undefined }));
    expect(await c.closed).toBe(1000);
  });

  it('sends the Error frame of an unrecoverable frame before closing with 1002, after the replies of the same turn', async () => {
    const c = await raw();
    const ping = Buffer.from(encodeFrame({ type: McpwType.Ping, method: McpwMethod.Generic, requestId: 7n, payload: undefined }));
    const bad = Buffer.from(ping);
    bad[4] = 2; // version 2: bad_version, not recoverable
    bad.writeBigUInt64BE(8n, 16);
    // one WebSocket write each, back to back: the gateway reads both in one turn
    c.ws.send(ping);
    c.ws.send(bad);
    expect(await c.closed).toBe(1002);
    expect(c.frames.map((f) => [f.type, f.requestId])).toEqual([
      [McpwType.Pong, 7n],
      [McpwType.Error, 8n],
    ]);
    expect(JSON.stringify(c.frames[1]?.payload)).toMatch(/bad_version/);
  });
});

describe('/ws MCPW gzip policy', () => {
  const echo = (id: bigint, message: string): McpwFrame => ({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: id, payload: { name: 'demo-echo', arguments: { message } } });
  const text = (f: McpwDecodedFrame): string => ((f.payload as { content: { text: string }[] }).content[0]?.text ?? '').slice(6);

  it('gzips a reply over 1 KiB only once the client has sent a gzip frame itself', async () => {
    const c = await raw();
    try {
      c.ws.send(encodeFrame({ type: McpwType.Request, method: McpwMethod.Initialize, requestId: 1n, payload: INIT }));
      await until(() => c.frames.find((f) => f.requestId === 1n));
      const message = 'word '.repeat(800);
      c.ws.send(encodeFrame(echo(2n, message)));
      const plain = await until(() => c.frames.find((f) => f.requestId === 2n));
      expect(plain.flags & McpwFlags.Gzip).toBe(0);
      expect(text(plain)).toBe(message);
      // the client's own gzip'd request tells the gateway it reads gzip
      c.ws.send(encodeFrame(echo(3n, message), { gzip: true, gzipThreshold: 0 }));
      const gz = await until(() => c.frames.find((f) => f.requestId === 3n));
      expect(gz.flags & McpwFlags.Gzip).toBe(McpwFlags.Gzip);
      expect(text(gz)).toBe(message);
      c.ws.send(encodeFrame(echo(4n, message)));
      const after = await until(() => c.frames.find((f) => f.requestId === 4n));
      expect(after.flags & McpwFlags.Gzip).toBe(McpwFlags.Gzip);
      // small replies stay uncompressed
      c.ws.send(encodeFrame(echo(5n, 'short')));
      expect((await until(() => c.frames.find((f) => f.requestId === 5n))).flags).toBe(0);
    } finally {
      c.ws.close();
    }
  });

  it('gzips a reply over 64 KiB for any client, off the loop, keeping the send order', async () => {
    const c = await raw();
    try {
      c.ws.send(encodeFrame({ type: McpwType.Request, method: McpwMethod.Initialize, requestId: 1n, payload: INIT }));
      await until(() => c.frames.find((f) => f.requestId === 1n));
      const big = 'tributary '.repeat(20_000);
      // both requests in one go: the small reply is ready while the large one is being compressed
      for (let round = 0; round < 3; round++) {
        const first = BigInt(10 + round * 2);
        c.ws.send(encodeFrame(echo(first, big)));
        c.ws.send(encodeFrame(echo(first + 1n, 'small')));
        await until(() => c.frames.find((f) => f.requestId === first + 1n));
        const order = c.frames.filter((f) => f.requestId === first || f.requestId === first + 1n).map((f) => f.requestId);
        expect(order).toEqual([first, first + 1n]);
        const large = c.frames.find((f) => f.requestId === first);
        expect((large?.flags ?? 0) & McpwFlags.Gzip).toBe(McpwFlags.Gzip);
        expect(large && text(large)).toBe(big);
      }
    } finally {
      c.ws.close();
    }
  });
});
