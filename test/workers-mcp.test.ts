/**
 * The MCP fast path of `server.workers: 2` with real parts: a gateway (in process, so its event
 * bus and worker pool can be watched) whose worker thread decides `POST /mcp` requests itself —
 * headers, the key's hash, JSON-RPC framing — and hands the owner one call. Every request goes on
 * a new TCP connection, so the kernel spreads them over the main thread and the worker. The
 * answers must be the same whichever thread took the connection: an SDK session with an API key
 * (initialize, tools/list, tools/call with progress), a revoked and an unknown key refused as the
 * owner refuses them, an unknown session 404 as the owner answers it, and a client that leaves
 * has its call cancelled at the owner. JWT callers (HS256 tokens minted with jose) go through the
 * worker as calls too: the owner identifies the token; expired, forged and foreign-session tokens
 * are refused as the owner refuses them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { freshConnectionFetch, roundRobinFetch } from './helpers/gateway-process.js';

type Json = Record<string, unknown>;

const ADMIN_PASSWORD = 'worker calls are the owner calls 7';
const JWT_SECRET = 'worker calls verify the same tokens 32b';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };

let g: TestGateway;
let apiKey: string;
let token: string;

/** A new HS256 token (its own `jti`) of the gateway's issuer and audience for `sub` (expired when `exp` is in the past). */
function jwt(sub: string, exp: number | string = '10m', secret = JWT_SECRET): Promise<string> {
  return new SignJWT({ role: 'user' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('tributary-test')
    .setAudience('agents')
    .setSubject(sub)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}

async function api(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await freshConnectionFetch(`${g.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: (text === '' ? {} : JSON.parse(text)) as Json };
}

async function createKey(name: string): Promise<{ id: string; secret: string }> {
  const r = await api('POST', '/api/auth/keys', ADMIN, { name, role: 'user' });
  expect(r.status).toBe(201);
  return { id: (r.json['key'] as Json)['id'] as string, secret: r.json['secret'] as string };
}

/** One POST /mcp on a new connection: status, the headers that matter, the body as text. */
async function post(headers: Record<string, string>, body: unknown): Promise<{ status: number; auth: string; body: string; session: string }> {
  const r = await freshConnectionFetch(`${g.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body: JSON.stringify(body) });
  return { status: r.status, auth: r.headers.get('www-authenticate') ?? '', body: await r.text(), session: r.headers.get('mcp-session-id') ?? '' };
}

async function openSession(headers: Record<string, string>): Promise<string> {
  const r = await post(headers, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  expect(r.status).toBe(200);
  expect(r.session).not.toBe('');
  return r.session;
}

function worker(): { requests: number; mcp_calls: number; in_flight: number } {
  const v = g.workers?.view()[0];
  if (v === undefined) throw new Error('no worker thread');
  return v;
}

function text(r: unknown): string {
  return JSON.stringify((r as { content?: unknown }).content);
}

beforeAll(async () => {
  g = await startTestGateway(
    [demoClient('demo')],
    { workers: 2 },
    { auth: { disabled: false, admin: { username: 'admin' }, jwt: { issuer: 'tributary-test', audience: 'agents' }, rate_limits: { burst_per_minute: 10_000, requests_per_hour: 1_000_000 } }, log_level: 'warn' },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD, TRIBUTARY_JWT_SECRET: JWT_SECRET },
  );
  apiKey = (await createKey('worker calls')).secret;
  token = await jwt('agent-1');
}, 60_000);

afterAll(async () => {
  await g?.stop();
});

/**
 * Runs `n` requests from `make` and asserts every answer is the same and that both threads took
 * some (the worker's share from its counter, the main thread's as the rest; 2^-15 to fail by chance).
 */
async function sameOnBothThreads(n: number, make: () => Promise<{ status: number; auth: string; body: string }>): Promise<{ status: number; auth: string; body: string }> {
  const w0 = worker().requests;
  const answers = [];
  for (let i = 0; i < n; i++) answers.push(await make());
  const onWorker = worker().requests - w0;
  expect(onWorker, 'requests the worker thread took').toBeGreaterThanOrEqual(1);
  expect(n - onWorker, 'requests the main thread took').toBeGreaterThanOrEqual(1);
  const first = answers[0] as { status: number; auth: string; body: string };
  for (const a of answers) expect(a).toEqual(first);
  return first;
}

describe('server.workers: 2 — POST /mcp decided in the worker, served by the owner as calls', () => {
  it('an SDK session with an API key: initialize, tools/list, tools/call with progress; the worker serves its share as calls', async () => {
    const calls0 = worker().mcp_calls;
    const transport = new StreamableHTTPClientTransport(new URL(`${g.url}/mcp`), { fetch: roundRobinFetch(() => [g.url]), requestInit: { headers: { authorization: `Bearer ${apiKey}` } } });
    const client = new Client({ name: 'worker-calls', version: '1' });
    await client.connect(transport);
    try {
      for (let i = 0; i < 4; i++) expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['demo-echo', 'demo-sleep']));
      for (let i = 0; i < 12; i++) expect(text(await client.callTool({ name: 'demo-echo', arguments: { message: `m${i}` } }))).toContain(`Echo: m${i}`);
      expect(await client.ping()).toEqual({});
      // progress through the worker: calls until one was served as a worker call (each has a 1/2 chance)
      let progressOnWorker = false;
      for (let i = 0; i < 40 && !progressOnWorker; i++) {
        const before = worker().mcp_calls;
        const progress: number[] = [];
        const r = await client.callTool({ name: 'demo-sleep', arguments: { ms: 30, steps: 3 } }, CallToolResultSchema, { onprogress: (p) => progress.push(p.progress) });
        expect(text(r)).toContain('slept 30 ms');
        expect(progress).toEqual([1, 2, 3]);
        progressOnWorker = worker().mcp_calls > before;
      }
      expect(progressOnWorker, 'a call with progress served through the worker').toBe(true);
    } finally {
      await client.close();
    }
    expect(worker().mcp_calls - calls0, 'calls the worker decided').toBeGreaterThanOrEqual(4);
    // the SDK's GET stream ends when the client closes (its abort reaches the owner a moment later)
    const until = Date.now() + 5_000;
    while (worker().in_flight > 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
    expect(worker().in_flight).toBe(0);
  });

  it('a key revoked after its session opened, and an unknown key: refused through the worker exactly as the owner refuses them', async () => {
    const key = await createKey('to be revoked');
    const sid = await openSession({ authorization: `Bearer ${key.secret}` });
    const call = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'x' } } });
    // the key works through both threads before it is revoked
    const ok = await sameOnBothThreads(16, async () => {
      const r = await post({ authorization: `Bearer ${key.secret}`, 'mcp-session-id': sid }, call(7));
      return { ...r, body: r.body.replace(/"id":\d+/, '') };
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('Echo: x');
    expect((await api('DELETE', `/api/auth/keys/${key.id}`, ADMIN)).status).toBe(200);
    // at once: the worker's copy of the key hashes may not have heard of it yet, the owner has
    const revoked = await sameOnBothThreads(16, () => post({ authorization: `Bearer ${key.secret}`, 'mcp-session-id': sid }, call(8)));
    expect(revoked.status).toBe(401);
    expect(revoked.auth).toContain('Bearer');
    expect(JSON.parse(revoked.body)).toMatchObject({ jsonrpc: '2.0', id: null, error: { data: { reason: 'revoked_key' } } });
    const unknown = await sameOnBothThreads(16, () => post({ 'x-api-key': 'trb_not_a_key_of_this_gateway', 'mcp-session-id': sid }, call(9)));
    expect(unknown.status).toBe(401);
    expect(JSON.parse(unknown.body)).toMatchObject({ error: { data: { reason: 'unknown_key' } } });
  });

  it('an unknown session: 404 as the owner answers it, on both threads; a session of another key: 403', async () => {
    const call = { jsonrpc: '2.0', id: 3, method: 'tools/list' };
    const missing = await sameOnBothThreads(16, () => post({ authorization: `Bearer ${apiKey}`, 'mcp-session-id': 'no-such-session' }, call));
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ jsonrpc: '2.0', id: null, error: { data: { code: 'SESSION_NOT_FOUND', session_id: 'no-such-session' } } });
    const other = await createKey('another caller');
    const sid = await openSession({ authorization: `Bearer ${other.secret}` });
    const foreign = await sameOnBothThreads(16, () => post({ authorization: `Bearer ${apiKey}`, 'mcp-session-id': sid }, call));
    expect(foreign.status).toBe(403);
  });

  it('a body that arrives in two parts: the worker joins them as the main thread does (a call, and a request it carries whole)', async () => {
    const sid = await openSession({ authorization: `Bearer ${apiKey}` });
    /** One POST /mcp on a new connection whose body is written in two parts, 20 ms apart (two reads on the server). */
    const split = (headers: Record<string, string>, body: string): Promise<{ status: number; auth: string; body: string }> =>
      new Promise((resolve, reject) => {
        const bytes = Buffer.from(body);
        const req = request(`${g.url}/mcp`, { method: 'POST', agent: false, headers: { ...MCP_HEADERS, ...headers, 'content-length': String(bytes.length) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, auth: String(res.headers['www-authenticate'] ?? ''), body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.flushHeaders();
        req.write(bytes.subarray(0, 40));
        setTimeout(() => req.end(bytes.subarray(40)), 20);
      });
    const body = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'in two parts ✓' } } });
    const calls0 = worker().mcp_calls;
    const called = await sameOnBothThreads(16, () => split({ authorization: `Bearer ${apiKey}`, 'mcp-session-id': sid }, body));
    expect(called.status).toBe(200);
    expect(called.body).toContain('Echo: in two parts ✓');
    expect(worker().mcp_calls, 'served as worker calls').toBeGreaterThan(calls0);
    // an include header: the worker carries the request whole
    const carried = await sameOnBothThreads(16, () => split({ authorization: `Bearer ${apiKey}`, 'mcp-session-id': sid, 'x-bf-mcp-include-tools': 'demo-echo' }, body));
    expect(carried.status).toBe(200);
    expect(carried.body).toContain('Echo: in two parts ✓');
  });

  it('a client that leaves: its call is cancelled at the owner', async () => {
    const sid = await openSession({ authorization: `Bearer ${apiKey}` });
    // long calls on new connections until one is held by the worker as a call
    const controllers: AbortController[] = [];
    const pending: Promise<unknown>[] = [];
    const calls0 = worker().mcp_calls;
    const deadline = Date.now() + 10_000;
    let id = 100;
    while (worker().mcp_calls === calls0 && Date.now() < deadline) {
      const ac = new AbortController();
      controllers.push(ac);
      const body = { jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'demo-sleep', arguments: { ms: 30_000, steps: 1 } } };
      pending.push(
        freshConnectionFetch(`${g.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${apiKey}`, 'mcp-session-id': sid }, body: JSON.stringify(body), signal: ac.signal }).then(
          (r) => r.text(),
          () => 'aborted',
        ),
      );
      await new Promise((res) => setTimeout(res, 30));
    }
    expect(worker().in_flight).toBeGreaterThanOrEqual(1);
    // every call ends upstream as cancelled, the worker's included
    const failed = firstValueFrom(
      g.bus.events$.pipe(
        filter((e) => e.event_type === 'ToolInvocationFailed' && e.tool_name === 'sleep'),
        take(controllers.length),
        toArray(),
        timeout(10_000),
      ),
    );
    for (const ac of controllers) ac.abort();
    await Promise.all(pending);
    expect((await failed).length).toBe(controllers.length);
    const until = Date.now() + 5_000;
    while (worker().in_flight > 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
    expect(worker().in_flight).toBe(0);
  });

  it('a JWT caller: an SDK session whose calls the worker serves as calls, the owner identifying the token', async () => {
    const calls0 = worker().mcp_calls;
    const transport = new StreamableHTTPClientTransport(new URL(`${g.url}/mcp`), { fetch: roundRobinFetch(() => [g.url]), requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'worker-jwt', version: '1' });
    await client.connect(transport);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['demo-echo']));
      for (let i = 0; i < 16; i++) expect(text(await client.callTool({ name: 'demo-echo', arguments: { message: `j${i}` } }))).toContain(`Echo: j${i}`);
    } finally {
      await client.close();
    }
    expect(worker().mcp_calls - calls0, 'JWT calls the worker decided').toBeGreaterThanOrEqual(4);
  });

  it('JWT: an expired token, a forged one, a token never seen before and another subject: answered through the worker as the owner answers them', async () => {
    const sid = await openSession({ authorization: `Bearer ${token}` });
    const call = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'y' } } });
    const expired = await sameOnBothThreads(16, async () => post({ authorization: `Bearer ${await jwt('agent-1', Math.floor(Date.now() / 1000) - 3600)}`, 'mcp-session-id': sid }, call(1)));
    expect(expired.status).toBe(401);
    expect(expired.auth).toContain('Bearer');
    const forged = await sameOnBothThreads(16, async () => post({ authorization: `Bearer ${await jwt('agent-1', '10m', 'a different secret that is also 32 bytes')}`, 'mcp-session-id': sid }, call(2)));
    expect(forged.status).toBe(401);
    // a fresh token of the same subject each time: the owner verifies it first (not a cache hit)
    const fresh = await sameOnBothThreads(16, async () => {
      const r = await post({ authorization: `Bearer ${await jwt('agent-1')}`, 'mcp-session-id': sid }, call(3));
      return { ...r, body: r.body.replace(/"id":\d+/, '') };
    });
    expect(fresh.status).toBe(200);
    expect(fresh.body).toContain('Echo: y');
    const other = await jwt('agent-2');
    const foreign = await sameOnBothThreads(16, () => post({ authorization: `Bearer ${other}`, 'mcp-session-id': sid }, call(4)));
    expect(foreign.status).toBe(403);
  }, 60_000);

  it('whatever the request (fast-check): the worker thread answers exactly as the main thread', async () => {
    const sid = await openSession({ authorization: `Bearer ${apiKey}` });
    const calls0 = worker().mcp_calls;
    let compared = 0;
    const id = fc.oneof(fc.integer({ min: -5, max: 1e9 }), fc.string({ maxLength: 8 }), fc.constant(null), fc.constant({ a: 1 }));
    const message = fc.oneof(
      { weight: 6, arbitrary: fc.record({ jsonrpc: fc.constant('2.0'), id: fc.integer({ min: 1, max: 1e9 }), method: fc.constantFrom('tools/call', 'tools/list', 'ping'), params: fc.record({ name: fc.constant('demo-echo'), arguments: fc.record({ message: fc.string({ maxLength: 20 }) }) }) }) },
      fc.record({ jsonrpc: fc.constant('2.0'), id, method: fc.constant('tools/call'), params: fc.record({ name: fc.constantFrom('demo-echo', 'demo-nope', ''), arguments: fc.record({ message: fc.string({ maxLength: 20 }) }) }) }),
      fc.record({ jsonrpc: fc.constant('2.0'), id, method: fc.constantFrom('tools/list', 'ping', 'resources/list', 'nope/nope', 'initialize') }),
      fc.record({ jsonrpc: fc.constantFrom('2.0', '1.0'), id, method: fc.constantFrom('tools/call', 'ping'), params: fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant([1]), fc.record({ _meta: fc.record({ 'io.modelcontextprotocol/protocolVersion': fc.constant('2026-07-28') }) })) }),
      fc.record({ jsonrpc: fc.constant('2.0'), method: fc.constant('notifications/cancelled'), params: fc.record({ requestId: fc.integer() }) }),
      fc.array(fc.record({ jsonrpc: fc.constant('2.0'), id: fc.integer({ min: 1, max: 9 }), method: fc.constant('ping') }), { maxLength: 3 }),
      fc.jsonValue({ maxDepth: 3 }),
    );
    /** Mostly the valid value, sometimes one of the others: about half of the requests are valid calls. */
    const mostly = <T>(valid: fc.Arbitrary<T>, ...others: T[]): fc.Arbitrary<T> => fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: fc.constantFrom(...others) });
    const request = fc.record({
      body: fc.oneof({ weight: 8, arbitrary: message.map((m) => JSON.stringify(m)) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }) }),
      accept: mostly(fc.constantFrom('application/json, text/event-stream', 'application/json', 'text/event-stream', '*/*'), 'text/html', 'application/xml, text/plain'),
      contentType: mostly(fc.constantFrom('application/json', 'application/json; charset=utf-8'), 'text/plain', 'application/x-www-form-urlencoded'),
      version: mostly(fc.constantFrom('2025-06-18', '2025-03-26', ''), '1999-01-01', '2026-07-28'),
      session: mostly(fc.constant(sid), 'no-such-session', ''),
      credential: mostly(fc.constantFrom<Record<string, string>>({ authorization: `Bearer ${apiKey}` }, { 'x-api-key': apiKey }, { authorization: apiKey }, { 'x-bf-vk': apiKey }, { authorization: `Bearer ${token}` }), { authorization: 'Bearer trb_unknown' }, {}, { authorization: 'Digest username="x"' }, { authorization: 'Bearer a.b.c' }, { 'x-api-key': apiKey, authorization: 'Bearer trb_unknown' }),
      include: mostly(fc.constant<Record<string, string>>({}), { 'x-bf-mcp-include-tools': 'demo-echo' }, { 'x-bf-mcp-include-clients': 'nobody' }),
      origin: mostly(fc.constant<Record<string, string>>({}), { origin: 'http://localhost:3000' }, { origin: 'https://evil.example' }),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = { 'content-type': r.contentType, accept: r.accept, ...r.credential, ...r.include, ...r.origin };
        if (r.version !== '') headers['mcp-protocol-version'] = r.version;
        if (r.session !== '') headers['mcp-session-id'] = r.session;
        const byThread: { owner?: unknown; worker?: unknown } = {};
        for (let tries = 0; tries < 12 && (byThread.owner === undefined || byThread.worker === undefined); tries++) {
          const before = worker().requests;
          const res = await freshConnectionFetch(`${g.url}/mcp`, { method: 'POST', headers, body: r.body });
          const answer = { status: res.status, type: res.headers.get('content-type'), auth: res.headers.get('www-authenticate'), limit: res.headers.get('x-ratelimit-limit'), cors: res.headers.get('access-control-allow-origin'), body: await res.text() };
          if (worker().requests > before) byThread.worker = answer;
          else byThread.owner = answer;
        }
        if (byThread.owner === undefined || byThread.worker === undefined) return;
        compared++;
        expect(byThread.worker).toEqual(byThread.owner);
      }),
      { numRuns: 80 },
    );
    expect(compared).toBeGreaterThanOrEqual(70);
    // about a fifth of the cases are valid calls of the session's key (≈ 18 expected as worker calls)
    expect(worker().mcp_calls - calls0, 'requests served as worker calls during the property').toBeGreaterThanOrEqual(10);
  });
});

describe('server.workers: 2 with main_thread_listens: false — the worker takes the connections, the main thread serves calls', () => {
  it('every connection goes to the worker; while it restarts the main thread listens, then stops again', async () => {
    const gw = await startTestGateway([demoClient('demo')], { workers: 2, main_thread_listens: false }, { log_level: 'warn' });
    try {
      const pool = gw.workers;
      if (pool === undefined) throw new Error('no worker pool');
      const view = (): { requests: number; mcp_calls: number; state: string } => pool.view()[0] as { requests: number; mcp_calls: number; state: string };
      const health = async (): Promise<{ owner: { requests: number; listening: boolean } }> =>
        ((await (await freshConnectionFetch(`${gw.url}/health`)).json()) as { components: { workers: { owner: { requests: number; listening: boolean } } } }).components.workers;
      const init = await freshConnectionFetch(`${gw.url}/mcp`, { method: 'POST', headers: MCP_HEADERS, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) });
      const sid = init.headers.get('mcp-session-id') ?? '';
      await init.text();
      const echo = async (i: number): Promise<string> => {
        const r = await freshConnectionFetch(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'demo-echo', arguments: { message: `n${i}` } } }) });
        return r.text();
      };
      const before = await health();
      expect(before.owner.listening).toBe(false);
      const calls0 = view().mcp_calls;
      for (let i = 0; i < 20; i++) expect(await echo(i)).toContain(`Echo: n${i}`);
      expect(view().mcp_calls - calls0).toBe(20);
      expect((await health()).owner.requests).toBe(before.owner.requests);
      // the worker fails: the main thread takes connections until it listens again
      pool.injectFault(1, 'fault injected by the test');
      const until = Date.now() + 5_000;
      while (view().state === 'listening' && Date.now() < until) await new Promise((res) => setTimeout(res, 5));
      expect(view().state).toBe('restarting');
      const during = await health();
      expect(during.owner.listening).toBe(true);
      expect(await echo(100)).toContain('Echo: n100');
      const back = Date.now() + 10_000;
      while (view().state !== 'listening' && Date.now() < back) await new Promise((res) => setTimeout(res, 20));
      expect(view().state).toBe('listening');
      const after = await health();
      expect(after.owner.listening).toBe(false);
      const calls1 = view().mcp_calls;
      for (let i = 200; i < 210; i++) expect(await echo(i)).toContain(`Echo: n${i}`);
      expect(view().mcp_calls - calls1).toBe(10);
    } finally {
      await gw.stop();
    }
  });
});
