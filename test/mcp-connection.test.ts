/**
 * The MCP connection layer shared by `/mcp` and `/ws` (`src/handlers/mcp/connection.ts`): the same
 * rules answer on both transports — initialize params checked by one codec (naming the bad field),
 * a request id still in flight refused, a call left behind by its client cancelled upstream — on a
 * real gateway with the in-process demo upstream, a real `ws` client and real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway([demoClient()]);
});

afterAll(async () => {
  await gw?.stop();
});

const INIT = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'layer-test', version: '1' } };
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

async function post(body: unknown, session?: string): Promise<{ status: number; json: Record<string, unknown>; session: string | null }> {
  const res = await fetch(gw.mcpUrl, { method: 'POST', headers: { ...HEADERS, ...(session ? { 'mcp-session-id': session } : {}) }, body: JSON.stringify(body) });
  const text = await res.text();
  // an SSE reply (progress before the result) ends with the response as its last data line
  const data = text.startsWith('{') ? text : (text.split('\n').filter((l) => l.startsWith('data: ')).pop() ?? 'data: {}').slice(6);
  return { status: res.status, json: JSON.parse(data) as Record<string, unknown>, session: res.headers.get('mcp-session-id') };
}

/** A `/ws` client that collects replies by id. */
async function wsClient(): Promise<{ ws: WebSocket; reply: (id: number) => Promise<Record<string, unknown>>; send: (m: unknown) => void }> {
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`);
  const replies = new Map<number, Record<string, unknown>>();
  const waiters = new Map<number, (m: Record<string, unknown>) => void>();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as Record<string, unknown>;
    if (typeof m['id'] !== 'number') return;
    const w = waiters.get(m['id']);
    if (w) w(m);
    else replies.set(m['id'], m);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    send: (m) => ws.send(JSON.stringify(m)),
    reply: (id) => {
      const got = replies.get(id);
      if (got) return Promise.resolve(got);
      return new Promise((resolve) => waiters.set(id, resolve));
    },
  };
}

function errorOf(m: Record<string, unknown>): { code: number; message: string } {
  return m['error'] as { code: number; message: string };
}

describe('one connection layer for /mcp and /ws', () => {
  it('initialize with a bad clientInfo is refused with the same named INVALID_PARAMS on both', async () => {
    const bad = { ...INIT, clientInfo: { version: '1' } };
    const http = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: bad });
    const c = await wsClient();
    c.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: bad });
    const ws = await c.reply(1);
    c.ws.close();
    expect(errorOf(http.json).code).toBe(-32602);
    expect(errorOf(http.json).message).toMatch(/clientInfo/);
    expect(errorOf(ws)).toEqual(errorOf(http.json));
  });

  it('a request id still in flight is refused on both; the first call still completes', async () => {
    const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT });
    const sid = init.session as string;
    const slow = { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'demo-sleep', arguments: { ms: 400, steps: 2 }, _meta: { progressToken: 't' } } };
    // the reply's headers leave with the first progress event (an SSE stream): the call is in flight
    const first = await fetch(gw.mcpUrl, { method: 'POST', headers: { ...HEADERS, 'mcp-session-id': sid }, body: JSON.stringify(slow) });
    expect(first.headers.get('content-type')).toMatch(/text\/event-stream/);
    const dup = await post({ ...slow, params: { name: 'demo-echo', arguments: { message: 'x' } } }, sid);
    expect(errorOf(dup.json).code).toBe(-32600);
    expect(errorOf(dup.json).message).toMatch(/already in flight/);
    expect(await first.text()).toMatch(/"result"/);

    const c = await wsClient();
    c.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT });
    await c.reply(1);
    c.send(slow);
    c.send({ ...slow, params: { name: 'demo-echo', arguments: { message: 'x' } } });
    const both = [await c.reply(9), await c.reply(9)];
    c.ws.close();
    // the refusal is sent at once, the sleep's result later
    expect(errorOf(both[0] as Record<string, unknown>).message).toBe(errorOf(dup.json).message);
  });

  it('a /ws call whose socket closes is cancelled upstream and logged as such', async () => {
    const c = await wsClient();
    c.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT });
    await c.reply(1);
    const progressed = new Promise<void>((resolve) => c.ws.on('message', (d) => String(d).includes('notifications/progress') && resolve()));
    c.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'demo-sleep', arguments: { ms: 20_000, steps: 100 }, _meta: { progressToken: 'p' } } });
    await progressed;
    c.ws.close();
    // the call ends long before its 20 s (cancelled upstream) and its tool-log entry says so
    const deadline = Date.now() + 5000;
    let entry: Record<string, unknown> | undefined;
    while (Date.now() < deadline && entry === undefined) {
      const res = await fetch(`${gw.url}/api/mcp-logs?limit=20`);
      const page = (await res.json()) as { logs?: Record<string, unknown>[] };
      entry = page.logs?.find((l) => JSON.stringify(l).includes('20000'));
      if (entry === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(JSON.stringify(entry)).toMatch(/cancel/i);
  });
});
