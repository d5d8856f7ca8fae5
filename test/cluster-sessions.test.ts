/**
 * MCP sessions any node can serve, with real processes: one nats-server and three gateway processes
 * (`src/main.ts`) sharing the cluster config. The session id is sealed (AES-256-GCM, key shared in
 * the configuration bucket), so a session opened on node A is served by node B — with a new TCP
 * connection for every request, and after A was SIGKILLed. Server→client messages and the client's
 * answers cross nodes over NATS subjects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { demoClient, everythingClient } from './helpers/gateway.js';
import { startNatsServer, type TestNatsServer } from './helpers/nats.js';
import { freshConnectionFetch, roundRobinFetch, startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.js';

type Json = Record<string, unknown>;

let nats: TestNatsServer;
let a: GatewayProcess;
let b: GatewayProcess;
let c: GatewayProcess;

function start(nodeId: string): Promise<GatewayProcess> {
  return startGatewayProcess({ log_level: 'info', mcp_clients: [everythingClient(), demoClient()], cluster: { nats_url: nats.url, node_id: nodeId } });
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };

/** POSTs one JSON-RPC message to `/mcp` of `gw` on a new connection. */
function post(gw: GatewayProcess, message: Json, sessionId?: string, accept = HEADERS.accept): Promise<Response> {
  return freshConnectionFetch(`${gw.url}/mcp`, {
    method: 'POST',
    headers: { ...HEADERS, accept, ...(sessionId !== undefined ? { 'mcp-session-id': sessionId } : {}) },
    body: JSON.stringify(message),
  });
}

/** Opens a session on `gw` (initialize + initialized) and returns its id. */
async function openSession(gw: GatewayProcess, capabilities: Json = {}): Promise<string> {
  const r = await post(gw, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities, clientInfo: { name: 'raw', version: '1' } } });
  expect(r.status).toBe(200);
  await r.text();
  const sid = r.headers.get('mcp-session-id') ?? '';
  expect(sid).toMatch(/^ts1\./);
  const n = await post(gw, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid);
  expect(n.status).toBe(202);
  return sid;
}

/** Reads SSE `message` events of a response body, yielding each JSON-RPC message. */
async function* sseMessages(res: Response): AsyncGenerator<Json> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (data !== '') yield JSON.parse(data) as Json;
    }
  }
}

/** The first message of `it` that `pick` accepts; rejects after `ms` (a bound, not a timing assertion). */
async function first(it: AsyncGenerator<Json>, pick: (m: Json) => boolean, ms = 15_000): Promise<Json> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no matching message within ${ms} ms`)), ms);
  });
  // it.next(), not for-await: leaving a for-await loop would close the stream
  const found = (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done === true) throw new Error('stream ended without a matching message');
      if (pick(r.value)) return r.value;
    }
  })();
  try {
    return await Promise.race([found, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every message until the stream ends; rejects if it has not ended after `ms`. */
async function untilEnd(it: AsyncGenerator<Json>, ms = 10_000): Promise<Json[]> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stream still open after ${ms} ms`)), ms);
  });
  const all = (async () => {
    const out: Json[] = [];
    for await (const m of it) out.push(m);
    return out;
  })();
  try {
    return await Promise.race([all, bound]);
  } finally {
    clearTimeout(timer);
  }
}

async function health(gw: GatewayProcess): Promise<Json> {
  const r = await freshConnectionFetch(`${gw.url}/health`);
  return (await r.json()) as Json;
}

function text(r: unknown): string {
  return JSON.stringify((r as { content?: unknown }).content);
}

beforeAll(async () => {
  nats = await startNatsServer();
  // started together: they race to create the shared session key; one wins, all use it
  [a, b, c] = await Promise.all([start('node_a'), start('node_b'), start('node_c')]);
}, 90_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  await nats?.dispose();
});

describe('cluster: sessions any node can serve', () => {
  it('an SDK client whose every request goes to the next node, each on a new connection: initialize, tools/list, calls, progress', async () => {
    const served: { origin: string; what: string }[] = [];
    const transport = new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`), { fetch: roundRobinFetch(() => [a.url, b.url, c.url], served) });
    const client = new Client({ name: 'round-robin', version: '1' });
    await client.connect(transport);
    try {
      const sid = transport.sessionId ?? '';
      expect(sid).toMatch(/^ts1\./);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['everything-echo', 'demo-sleep']));
      for (let i = 0; i < 4; i++) {
        expect(text(await client.callTool({ name: 'everything-echo', arguments: { message: `m${i}` } }))).toContain(`Echo: m${i}`);
      }
      const progress: number[] = [];
      const r = await client.callTool({ name: 'demo-sleep', arguments: { ms: 150, steps: 3 } }, CallToolResultSchema, { onprogress: (p) => progress.push(p.progress) });
      expect(text(r)).toContain('slept 150 ms');
      expect(progress).toEqual([1, 2, 3]);
      // cancellation: the SDK sends notifications/cancelled as its next request (to the next node)
      const ac = new AbortController();
      const long = client.callTool({ name: 'demo-sleep', arguments: { ms: 30_000, steps: 100 } }, CallToolResultSchema, {
        signal: ac.signal,
        onprogress: () => ac.abort('the test cancels'),
      });
      await expect(long).rejects.toThrow();
      const callNode = served.find((x) => x.what === 'tools/call' && served.indexOf(x) === served.map((y) => y.what).lastIndexOf('tools/call'))?.origin;
      const deadline = Date.now() + 5_000;
      while (!served.some((x) => x.what === 'notifications/cancelled') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const cancel = served.find((x) => x.what === 'notifications/cancelled');
      expect(cancel).toBeDefined();
      expect(cancel?.origin).not.toBe(callNode);
      expect(text(await client.callTool({ name: 'everything-echo', arguments: { message: 'after cancel' } }))).toContain('Echo: after cancel');
      expect(transport.sessionId).toBe(sid);
      // the requests really went to every node
      const posts = served.filter((s) => s.what !== 'GET' && s.what !== 'DELETE');
      expect(posts.length).toBeGreaterThanOrEqual(8);
      expect(new Set(posts.map((s) => s.origin))).toEqual(new Set([a.url, b.url, c.url]));
    } finally {
      await client.close();
    }
  });

  it('a cancel sent to node A stops the call running on node B', async () => {
    const sid = await openSession(a);
    const call = await post(b, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'demo-sleep', arguments: { ms: 30_000, steps: 100 }, _meta: { progressToken: 'p7' } } }, sid);
    expect(call.headers.get('content-type')).toContain('text/event-stream');
    const messages = sseMessages(call);
    await first(messages, (m) => m['method'] === 'notifications/progress');
    const cancel = await post(a, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'test cancels on another node' } }, sid);
    expect(cancel.status).toBe(202);
    // B ends the call (a 30 s sleep) and its stream well within the bound, with no result (a
    // cancelled request gets no response: MCP "Cancellation")
    const rest = await untilEnd(messages);
    expect(rest.some((m) => m['id'] === 7 && m['result'] !== undefined)).toBe(false);
    expect(JSON.stringify(rest)).not.toContain('slept');
  });

  it('a sampling request raised on node B reaches the stream held on node A; its answer posted to A goes back to B', async () => {
    const sid = await openSession(a, { sampling: {} });
    const ac = new AbortController();
    const stream = await freshConnectionFetch(`${a.url}/mcp`, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, signal: ac.signal });
    expect(stream.status).toBe(200);
    const fromA = sseMessages(stream);
    // JSON-only POST on B: the relayed request cannot go on it, so B routes it to the session's stream
    const callP = post(b, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'everything-trigger-sampling-request', arguments: { prompt: 'six times seven', maxTokens: 5 } } }, sid, 'application/json');
    const request = await first(fromA, (m) => m['method'] === 'sampling/createMessage');
    expect(String(request['id'])).toMatch(/^node_b-\d+$/);
    const answer = await post(a, { jsonrpc: '2.0', id: request['id'], result: { model: 'm', role: 'assistant', content: { type: 'text', text: 'sampled 42' } } }, sid);
    expect(answer.status).toBe(202);
    const res = await callP;
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(JSON.stringify(body['result'])).toContain('sampled 42');
    ac.abort();
    const hb = (await health(b)) as { components: { cluster: { sessions: { routed: number; delivered: number } } } };
    expect(hb.components.cluster.sessions.routed).toBeGreaterThanOrEqual(1);
    expect(hb.components.cluster.sessions.delivered).toBeGreaterThanOrEqual(1);
  });

  it('refuses altered ids on every node, and a session ended by DELETE on one node on the others', async () => {
    const sid = await openSession(a);
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    expect((await post(b, list, sid)).status).toBe(200);
    // one character of the ciphertext changed (not the last one: it may carry only padding bits)
    const at = sid.length - 20;
    const altered = sid.slice(0, at) + (sid[at] === 'A' ? 'B' : 'A') + sid.slice(at + 1);
    for (const gw of [a, b, c]) expect((await post(gw, list, altered)).status).toBe(404);
    const del = await freshConnectionFetch(`${b.url}/mcp`, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } });
    expect(del.status).toBe(200);
    expect((await post(b, list, sid)).status).toBe(404);
    // the revocation reaches A (which opened it) and C over NATS (core pub/sub: milliseconds; bounded wait)
    for (const gw of [a, c]) {
      const deadline = Date.now() + 5_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await post(gw, list, sid)).status;
        if (status === 404) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe(404);
    }
  });

  it('after a nats-server restart, sessions open on every node and their messages cross nodes again', async () => {
    const sid = await openSession(a, { sampling: {} });
    await nats.stop();
    // opening a sealed id needs no NATS
    expect((await post(c, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, sid)).status).toBe(200);
    await nats.start();
    // the nodes reconnect and resubscribe (bounded wait on /health)
    for (const gw of [a, b, c]) {
      const deadline = Date.now() + 15_000;
      let state = '';
      while (Date.now() < deadline) {
        state = ((await health(gw)) as { components: { cluster: { nats: { state: string } } } }).components.cluster.nats.state;
        if (state === 'connected') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(state).toBe('connected');
    }
    const ac = new AbortController();
    const stream = await freshConnectionFetch(`${a.url}/mcp`, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, signal: ac.signal });
    const fromA = sseMessages(stream);
    const callP = post(b, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'everything-trigger-sampling-request', arguments: { prompt: 'again', maxTokens: 5 } } }, sid, 'application/json');
    const request = await first(fromA, (m) => m['method'] === 'sampling/createMessage');
    await post(c, { jsonrpc: '2.0', id: request['id'], result: { model: 'm', role: 'assistant', content: { type: 'text', text: 'sampled again' } } }, sid);
    const body = (await (await callP).json()) as Json;
    expect(JSON.stringify(body['result'])).toContain('sampled again');
    ac.abort();
  });

  it('a session opened on node A continues on nodes B and C after A is SIGKILLed', async () => {
    const served: { origin: string; what: string }[] = [];
    const transport = new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`), { fetch: roundRobinFetch(() => [a.url, b.url, c.url], served) });
    const client = new Client({ name: 'survivor', version: '1' });
    await client.connect(transport);
    expect(served[0]).toMatchObject({ origin: a.url, what: 'initialize' });
    const sid = transport.sessionId;
    expect(text(await client.callTool({ name: 'everything-echo', arguments: { message: 'before' } }))).toContain('Echo: before');
    await a.kill();
    const after = served.length;
    try {
      expect(text(await client.callTool({ name: 'everything-echo', arguments: { message: 'after' } }))).toContain('Echo: after');
      const progress: number[] = [];
      const r = await client.callTool({ name: 'demo-sleep', arguments: { ms: 90, steps: 3 } }, CallToolResultSchema, { onprogress: (p) => progress.push(p.progress) });
      expect(text(r)).toContain('slept 90 ms');
      expect(progress).toEqual([1, 2, 3]);
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      expect(transport.sessionId).toBe(sid);
      const survivors = served.slice(after).map((s) => s.origin);
      expect(survivors.every((o) => o === b.url || o === c.url)).toBe(true);
      expect(new Set(survivors).size).toBe(2);
    } finally {
      await client.close();
    }
  });
});
