/**
 * `server.workers: 2` with real parts: a gateway process (`src/main.ts`) whose main thread and one
 * worker thread listen on the same port (SO_REUSEPORT), reached with a new TCP connection for every
 * request so the kernel spreads them over both threads. An SDK session (initialize, tools/list,
 * calls, progress, cancellation), access control with auth on, `/health`, a REST route and
 * `/api/ws/events` must behave the same whichever thread took the connection, and `/health`
 * `components.workers` must show that both threads carried requests. Then, in process: a worker
 * that fails is restarted and its calls in flight fail cleanly; shutdown is clean.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { demoClient, startTestGateway } from './helpers/gateway.js';
import { resolveConfig } from '../src/config/load.js';
import { freshConnectionFetch, roundRobinFetch, startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.js';

type Json = Record<string, unknown>;

const ADMIN_PASSWORD = 'workers share one gateway 42';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };

let gw: GatewayProcess;
let vk: string;

/** Requests each thread took so far: `[owner, worker 1]`. */
async function perThread(): Promise<[number, number]> {
  const r = await freshConnectionFetch(`${gw.url}/health`);
  const body = (await r.json()) as { components: { workers: { owner: { requests: number }; workers: { requests: number; state: string }[] } } };
  const w = body.components.workers;
  return [w.owner.requests, w.workers[0]?.requests ?? 0];
}

/**
 * Runs `body` and asserts that both threads took at least two of its requests (the `/health`
 * request after it counts on one of them, hence two). With a new connection per request the
 * kernel's 4-tuple hash picks the thread; `body` makes enough requests that one thread taking
 * all of them is out of reach (2^-20 for 20 requests).
 */
async function onBothThreads(body: () => Promise<void>): Promise<void> {
  const [o0, w0] = await perThread();
  await body();
  const [o1, w1] = await perThread();
  expect(o1 - o0, 'requests the main thread took').toBeGreaterThanOrEqual(2);
  expect(w1 - w0, 'requests the worker thread took').toBeGreaterThanOrEqual(2);
}

async function api(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await freshConnectionFetch(`${gw.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: (text === '' ? {} : JSON.parse(text)) as Json };
}

function text(r: unknown): string {
  return JSON.stringify((r as { content?: unknown }).content);
}

beforeAll(async () => {
  gw = await startGatewayProcess(
    { log_level: 'info', mcp_clients: [demoClient('demo'), demoClient('demo2')], server: { workers: 2, max_body_bytes: 100_000 }, auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 10_000, requests_per_hour: 1_000_000 } } },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
  );
  const created = await api('POST', '/api/auth/virtual-keys', ADMIN, { name: 'echo only' });
  expect(created.status).toBe(201);
  vk = created.json['secret'] as string;
  const id = (created.json['virtual_key'] as Json)['id'] as string;
  const clients = await api('GET', '/api/mcp/clients', ADMIN);
  const demo = (clients.json['clients'] as Json[]).find((c) => (c['config'] as Json)['name'] === 'demo') as Json;
  const put = await api('PUT', `/api/mcp/client/${String((demo['config'] as Json)['client_id'])}`, ADMIN, { vk_configs: [{ virtual_key_id: id, tools_to_execute: ['echo'] }] });
  expect(put.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

describe('server.workers: 2, a new connection for every request', () => {
  it('an SDK session: initialize, tools/list, calls, progress and cancellation, served by both threads', async () => {
    const served: { origin: string; what: string }[] = [];
    const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { fetch: roundRobinFetch(() => [gw.url], served), requestInit: { headers: ADMIN } });
    const client = new Client({ name: 'fresh-connections', version: '1' });
    await onBothThreads(async () => {
      await client.connect(transport);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['demo-echo', 'demo-sleep', 'demo2-echo']));
      for (let i = 0; i < 12; i++) expect(text(await client.callTool({ name: 'demo-echo', arguments: { message: `m${i}` } }))).toContain(`Echo: m${i}`);
      const progress: number[] = [];
      const r = await client.callTool({ name: 'demo-sleep', arguments: { ms: 150, steps: 3 } }, CallToolResultSchema, { onprogress: (p) => progress.push(p.progress) });
      expect(text(r)).toContain('slept 150 ms');
      expect(progress).toEqual([1, 2, 3]);
      // cancellation: the SDK sends notifications/cancelled on its own (new) connection
      const ac = new AbortController();
      const long = client.callTool({ name: 'demo-sleep', arguments: { ms: 30_000, steps: 100 } }, CallToolResultSchema, { signal: ac.signal, onprogress: () => ac.abort('the test cancels') });
      await expect(long).rejects.toThrow();
      const deadline = Date.now() + 5_000;
      while (!served.some((x) => x.what === 'notifications/cancelled') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      expect(served.some((x) => x.what === 'notifications/cancelled')).toBe(true);
      expect(text(await client.callTool({ name: 'demo-echo', arguments: { message: 'after cancel' } }))).toContain('Echo: after cancel');
    });
    await client.close();
    // the cancelled call ended at the owner: nothing is left in flight on either thread
    const h = (await (await freshConnectionFetch(`${gw.url}/health`)).json()) as { components: { workers: { workers: { in_flight: number }[] } } };
    expect(h.components.workers.workers[0]?.in_flight).toBeLessThanOrEqual(1); // this /health request, if the worker took it
  });

  it('access is the same through every thread: no credential, a virtual key, the admin', async () => {
    await onBothThreads(async () => {
      for (let i = 0; i < 8; i++) {
        const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
        const anonymous = await freshConnectionFetch(`${gw.url}/mcp`, { method: 'POST', headers: MCP_HEADERS, body: JSON.stringify(init) });
        expect(anonymous.status).toBe(401);
        await anonymous.text();
        expect((await api('GET', '/api/mcp/clients', {})).status).toBe(401);
        expect((await api('GET', '/api/mcp/clients', { 'x-bf-vk': vk })).status).toBe(403);
        expect((await api('GET', '/api/mcp/clients', ADMIN)).status).toBe(200);
      }
    });
    // a virtual key sees and calls only its tools, whichever thread takes each request
    const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { fetch: roundRobinFetch(() => [gw.url]), requestInit: { headers: { 'x-bf-vk': vk } } });
    const client = new Client({ name: 'virtual-key', version: '1' });
    await client.connect(transport);
    try {
      for (let i = 0; i < 4; i++) {
        const names = (await client.listTools()).tools.map((t) => t.name);
        expect(names.filter((n) => n.startsWith('demo-'))).toEqual(['demo-echo']);
        expect(text(await client.callTool({ name: 'demo-echo', arguments: { message: `vk${i}` } }))).toContain(`Echo: vk${i}`);
        await expect(client.callTool({ name: 'demo-add', arguments: { a: 1, b: 2 } })).rejects.toThrow(/not allowed/);
      }
    } finally {
      await client.close();
    }
  });

  it('every route answers the same on both threads: unknown paths, methods, the dashboard, body limits (whole and in parts)', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(150_000) } });
    const medium = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x'.repeat(80_000), version: '1' } } });
    const cases: { method: string; path: string; headers?: Record<string, string>; body?: string; status: number; check?: (r: Response, text: string) => void }[] = [
      { method: 'GET', path: '/nothing-here', headers: ADMIN, status: 404 },
      { method: 'PUT', path: '/mcp', headers: ADMIN, status: 405, check: (r) => expect(r.headers.get('allow')).toBe('GET, POST, DELETE, OPTIONS') },
      // a path served for other methods: 405 naming them
      { method: 'POST', path: '/health', status: 405, check: (r) => expect(r.headers.get('allow')).toBe('GET') },
      { method: 'GET', path: '/health/nothing', status: 401 },
      { method: 'GET', path: '/health/nothing', headers: ADMIN, status: 404 },
      { method: 'GET', path: '/health/ready', status: 200 },
      { method: 'GET', path: '/ui', status: 200, check: (r) => expect(r.headers.get('content-type')).toContain('text/html') },
      { method: 'GET', path: '/metrics', headers: ADMIN, status: 200, check: (_r, t) => expect(t).toMatch(/^tributary_worker_thread_up\{thread="1"\} 1$/m) },
      // over max_body_bytes (100 000): 413 — a body the worker carries in parts (> 64 KiB) is limited by the owner as its own
      { method: 'POST', path: '/mcp', headers: { ...ADMIN, ...MCP_HEADERS }, body: big, status: 413, check: (_r, t) => expect(t).toContain('BODY_TOO_LARGE') },
      // under the limit but over 64 KiB: carried in parts, reassembled
      { method: 'POST', path: '/mcp', headers: { ...ADMIN, ...MCP_HEADERS }, body: medium, status: 200, check: (r) => expect(r.headers.get('mcp-session-id')).toBeTruthy() },
    ];
    await onBothThreads(async () => {
      for (const c of cases) {
        for (let i = 0; i < 3; i++) {
          const r = await freshConnectionFetch(`${gw.url}${c.path}`, { method: c.method, headers: c.headers ?? {}, ...(c.body !== undefined ? { body: c.body } : {}) });
          const t = await r.text();
          expect(r.status, `${c.method} ${c.path}`).toBe(c.status);
          c.check?.(r, t);
        }
      }
    });
  });

  it('/health, a REST route and /api/ws/events work through the worker thread', async () => {
    const url = `${gw.url.replace('http', 'ws')}/api/ws/events`;
    const open = (headers: Record<string, string>): Promise<{ ws: WebSocket; status: number | 'open'; msgs: Json[] }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { headers, agent: undefined });
        const msgs: Json[] = [];
        ws.on('message', (d) => msgs.push(JSON.parse(String(d)) as Json));
        ws.once('open', () => resolve({ ws, status: 'open', msgs }));
        ws.once('unexpected-response', (_req, res) => {
          resolve({ ws, status: res.statusCode ?? 0, msgs });
          res.resume();
        });
        ws.once('error', reject);
      });
    const sockets: Awaited<ReturnType<typeof open>>[] = [];
    try {
      await onBothThreads(async () => {
        for (let i = 0; i < 10; i++) {
          expect((await open({})).status).toBe(401);
          const s = await open(ADMIN);
          expect(s.status).toBe('open');
          sockets.push(s);
          const health = await freshConnectionFetch(`${gw.url}/health/live`);
          expect(health.status).toBe(200);
          await health.text();
        }
      });
      const h = (await (await freshConnectionFetch(`${gw.url}/health`)).json()) as { components: { workers: { workers: { websockets_open: number }[] } } };
      const onWorker = h.components.workers.workers[0]?.websockets_open ?? 0;
      expect(onWorker).toBeGreaterThanOrEqual(1);
      expect(onWorker).toBeLessThan(sockets.length);
      for (const s of sockets) s.ws.send(JSON.stringify({ type: 'subscribe', event_types: ['ToolInvocationCompleted'] }));
      const waitFor = async (pred: () => boolean): Promise<void> => {
        const deadline = Date.now() + 10_000;
        while (!pred() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      };
      await waitFor(() => sockets.every((s) => s.msgs.some((m) => m['type'] === 'subscribed')));
      expect(sockets.every((s) => s.msgs.some((m) => m['type'] === 'subscribed'))).toBe(true);
      // a call made through the REST route reaches every subscriber, on either thread
      const exec = await api('POST', '/v1/mcp/tool/execute', ADMIN, { id: 'c1', type: 'function', function: { name: 'demo-echo', arguments: '{"message":"to every feed"}' } });
      expect(exec.status).toBe(200);
      expect(JSON.stringify(exec.json)).toContain('Echo: to every feed');
      const got = (s: (typeof sockets)[number]): boolean => s.msgs.some((m) => m['event_type'] === 'ToolInvocationCompleted' && m['tool_name'] === 'echo');
      await waitFor(() => sockets.every(got));
      expect(sockets.filter(got).length).toBe(sockets.length);
    } finally {
      for (const s of sockets) s.ws.close();
    }
  });
});

describe('server.workers: configuration', () => {
  it('defaults to 1 (no worker thread); takes 1 to 64; refuses 0, fractions and more than 64 with a named error', () => {
    expect(resolveConfig({}, 'test').server.workers).toBe(1);
    expect(resolveConfig({ server: { workers: 2 } }, 'test').server.workers).toBe(2);
    expect(resolveConfig({ server: { workers: 64 } }, 'test').server.workers).toBe(64);
    for (const bad of [0, -1, 1.5, 65, '2']) expect(() => resolveConfig({ server: { workers: bad } }, 'test'), String(bad)).toThrow(/server\.workers/);
  });
});

describe('server.workers: failures and shutdown', () => {
  it('a worker that fails is restarted; its calls in flight fail cleanly, the main thread\'s go on', async () => {
    const g = await startTestGateway([demoClient()], { workers: 2 });
    try {
      const pool = g.workers;
      expect(pool).toBeDefined();
      const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
      const opened = await freshConnectionFetch(`${g.url}/mcp`, { method: 'POST', headers: MCP_HEADERS, body: JSON.stringify(init) });
      const sid = opened.headers.get('mcp-session-id') ?? '';
      await opened.text();
      // calls of 1.5 s on new connections until the worker holds at least one and the main thread one
      const calls: Promise<{ ok: boolean; body: string }>[] = [];
      const deadline = Date.now() + 10_000;
      let id = 10;
      while (Date.now() < deadline && ((pool?.view()[0]?.in_flight ?? 0) < 1 || calls.length - (pool?.view()[0]?.in_flight ?? 0) < 1)) {
        const body = JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'demo-sleep', arguments: { ms: 1500, steps: 1 } } });
        calls.push(
          freshConnectionFetch(`${g.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, accept: 'application/json', 'mcp-session-id': sid }, body }).then(
            async (r) => ({ ok: r.status === 200, body: await r.text().catch(() => '') }),
            () => ({ ok: false, body: '' }),
          ),
        );
        await new Promise((res) => setTimeout(res, 10));
      }
      const onWorker = pool?.view()[0]?.in_flight ?? 0;
      expect(onWorker).toBeGreaterThanOrEqual(1);
      pool?.injectFault(1, 'fault injected by the test');
      const results = await Promise.all(calls);
      // the worker's calls failed (connection closed, no result); the main thread's completed
      expect(results.filter((r) => !r.ok).length).toBe(onWorker);
      expect(results.filter((r) => r.ok && r.body.includes('slept 1500 ms')).length).toBe(calls.length - onWorker);
      const until = Date.now() + 10_000;
      while (pool?.view()[0]?.state !== 'listening' && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
      const view = pool?.view()[0];
      expect(view?.state).toBe('listening');
      expect(view?.restarts).toBe(1);
      expect(view?.last_exit?.error).toContain('fault injected by the test');
      expect(view?.in_flight).toBe(0);
      // the restarted worker serves again
      const before = view?.requests ?? 0;
      for (let i = 0; i < 20; i++) await (await freshConnectionFetch(`${g.url}/health/live`)).text();
      expect(pool?.view()[0]?.requests ?? 0).toBeGreaterThan(before);
    } finally {
      await g.stop();
    }
  });

  it('SIGTERM with workers: every worker closes its sockets, the process exits 0', async () => {
    const p = await startGatewayProcess({ log_level: 'info', mcp_clients: [demoClient()], server: { workers: 2 } });
    for (let i = 0; i < 6; i++) await (await freshConnectionFetch(`${p.url}/health/live`)).text();
    const exit = new Promise<number | null>((resolve) => p.child.once('exit', (code) => resolve(code)));
    await p.stop();
    expect(await exit).toBe(0);
    expect(p.stderr()).toContain('"msg":"stopped"');
    expect(p.stderr()).not.toContain('Assertion failed');
  });
});
