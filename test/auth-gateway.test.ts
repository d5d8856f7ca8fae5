/**
 * Access control through a real gateway: every surface refuses missing, wrong, revoked
 * and expired credentials; API keys (three header forms), JWTs (jose-signed) and Basic admin get
 * in; virtual keys see and call only their tools (`vk_configs`, `allow_on_all_virtual_keys`);
 * include headers narrow; per-key limits produce `X-RateLimit-*` and 429 at the right count, on
 * HTTP and on WebSockets; and no secret used in the run appears in the gateway's logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { demoClient, rawPost, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;

const ADMIN_PASSWORD = 'correct horse battery staple 8';
const JWT_SECRET = 'a-test-only-hs256-secret-of-at-least-32-bytes!';
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'auth-test' } } });

let gw: TestGateway;
const secrets: string[] = [ADMIN_PASSWORD, JWT_SECRET];
let userKey: string;
let adminKey: string;
let vk: string;
let vkId: string;

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}
const ADMIN = { authorization: basic('admin', ADMIN_PASSWORD) };

async function api(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; headers: Headers; json: Json }> {
  const r = await send(`${gw.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, headers: r.headers, json: (r.json ?? {}) as Json };
}

async function createKey(path: '/api/auth/keys' | '/api/auth/virtual-keys', body: Json): Promise<{ id: string; secret: string }> {
  const r = await api('POST', path, ADMIN, body);
  expect(r.status).toBe(201);
  const view = (r.json['key'] ?? r.json['virtual_key']) as Json;
  const secret = r.json['secret'] as string;
  secrets.push(secret);
  return { id: view['id'] as string, secret };
}

function jwt(claims: Json, opts: { exp?: number | string; alg?: string; secret?: string } = {}): Promise<string> {
  let b = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).setIssuer('tributary-test').setAudience('agents').setSubject('agent-7').setIssuedAt();
  if (opts.exp !== undefined) b = b.setExpirationTime(opts.exp);
  return b.sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET)).then((t) => {
    secrets.push(t);
    return t;
  });
}

/** Opens a WebSocket; resolves 'open' or the HTTP status of a refused upgrade. */
function wsOpen(path: string, headers: Record<string, string>, protocol?: string): Promise<{ ws: WebSocket; status: number | 'open' }> {
  return new Promise((resolve, reject) => {
    const ws = protocol ? new WebSocket(`${gw.url.replace('http', 'ws')}${path}`, protocol, { headers }) : new WebSocket(`${gw.url.replace('http', 'ws')}${path}`, { headers });
    ws.once('open', () => resolve({ ws, status: 'open' }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ ws, status: res.statusCode ?? 0 });
      res.resume();
    });
    ws.once('error', (err) => reject(err));
  });
}

/** Sends JSON-RPC requests on an open /ws socket and collects the answers by id. */
function rpcOverWs(ws: WebSocket): (msg: Json) => Promise<Json> {
  const waiting = new Map<unknown, (m: Json) => void>();
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const m = JSON.parse(data.toString()) as Json;
    waiting.get(m['id'])?.(m);
    waiting.delete(m['id']);
  });
  return (msg) =>
    new Promise((resolve) => {
      waiting.set(msg['id'], resolve);
      ws.send(JSON.stringify({ jsonrpc: '2.0', ...msg }));
    });
}

async function sdkClient(headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'auth-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { requestInit: { headers } }));
  return client;
}

beforeAll(async () => {
  gw = await startTestGateway(
    [demoClient('demo'), demoClient('demo2', { allow_on_all_virtual_keys: true })],
    {},
    { auth: { disabled: false, admin: { username: 'admin' }, jwt: { issuer: 'tributary-test', audience: 'agents' }, rate_limits: { burst_per_minute: 1000, requests_per_hour: 100000 } } },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD, TRIBUTARY_JWT_SECRET: JWT_SECRET },
  );
  userKey = (await createKey('/api/auth/keys', { name: 'agent fleet' })).secret;
  adminKey = (await createKey('/api/auth/keys', { name: 'ops', role: 'admin' })).secret;
  ({ id: vkId, secret: vk } = await createKey('/api/auth/virtual-keys', { name: 'echo only' }));
  // the virtual key gets exactly demo's echo; demo2 is open to every virtual key
  const clients = await api('GET', '/api/mcp/clients', ADMIN);
  const demo = (clients.json['clients'] as Json[]).find((c) => (c['config'] as Json)['name'] === 'demo') as Json;
  const put = await api('PUT', `/api/mcp/client/${String((demo['config'] as Json)['client_id'])}`, ADMIN, { vk_configs: [{ virtual_key_id: vkId, tools_to_execute: ['echo'] }] });
  expect(put.status).toBe(200);
}, 30_000);

afterAll(async () => {
  await gw?.stop();
});

describe('refusals on every surface', () => {
  const httpSurfaces: [string, string, unknown?][] = [
    ['POST', '/mcp', JSON.parse(INIT)],
    ['GET', '/mcp'],
    ['DELETE', '/mcp'],
    ['GET', '/api/mcp/clients'],
    ['POST', '/api/mcp/client', { name: 'x', connection_type: 'inprocess', inprocess_server: 'demo' }],
    ['POST', '/v1/mcp/tool/execute', { id: 'c1', type: 'function', function: { name: 'demo-echo', arguments: '{"message":"x"}' } }],
    ['GET', '/api/mcp-logs'],
    ['GET', '/api/auth/keys'],
    ['POST', '/api/auth/virtual-keys', { name: 'sneaky' }],
  ];

  it.each(httpSurfaces)('%s %s without credentials → 401 with WWW-Authenticate', async (method, path, body) => {
    const r = await api(method, path, { accept: 'application/json, text/event-stream' }, body);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('Bearer');
    const code = path === '/mcp' ? ((r.json['error'] as Json)['data'] as Json)['code'] : r.json['code'];
    expect(code).toBe('UNAUTHORIZED');
  });

  it.each(httpSurfaces)('%s %s with an unknown key → 401 unknown_key', async (method, path, body) => {
    const r = await api(method, path, { authorization: 'Bearer trb_notARealKeyAtAll0123456789abcdefghijklmnopq', accept: 'application/json, text/event-stream' }, body);
    expect(r.status).toBe(401);
  });

  it.each(['/ws', '/api/ws/events', '/api/ws/live'])('WebSocket upgrade of %s without credentials → 401, no upgrade', async (path) => {
    const { status } = await wsOpen(path, {}, path === '/ws' ? 'mcp' : undefined);
    expect(status).toBe(401);
    const wrong = await wsOpen(path, { 'x-api-key': 'trb_wrong' });
    expect(wrong.status).toBe(401);
  });

  it('/health stays open; /metrics is open by default; CORS preflight needs no credentials', async () => {
    expect((await api('GET', '/health', {})).status).toBe(200);
    expect((await api('GET', '/metrics', {})).status).toBe(200);
    const pre = await send(gw.mcpUrl, { method: 'OPTIONS', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toContain('x-bf-vk');
  });

  it('revoked and expired keys → 401 with the reason', async () => {
    const { id, secret } = await createKey('/api/auth/keys', { name: 'short-lived' });
    expect((await api('GET', '/api/mcp-logs', { 'x-api-key': secret })).status).toBe(403); // valid but not admin
    expect((await api('DELETE', `/api/auth/keys/${id}`, ADMIN)).status).toBe(200);
    const revoked = await api('POST', '/v1/mcp/tool/execute', { 'x-api-key': secret }, { id: 'c', type: 'function', function: { name: 'demo-echo', arguments: '{"message":"x"}' } });
    expect(revoked.status).toBe(401);
    expect((revoked.json['details'] as Json)['reason']).toBe('revoked_key');

    const expiresAt = Date.now() + 500;
    const soon = await createKey('/api/auth/keys', { name: 'expiring', expires_at: new Date(expiresAt).toISOString() });
    expect((await rawPost(gw.mcpUrl, INIT, { authorization: `Bearer ${soon.secret}` })).status).toBe(200);
    // wait for the expiry instant itself, not a guessed sleep
    await waitFor(() => Date.now() > expiresAt, 5000);
    const expired = await rawPost(gw.mcpUrl, INIT, { authorization: `Bearer ${soon.secret}` });
    expect(expired.status).toBe(401);
    expect((((expired.json as Json)['error'] as Json)['data'] as Json)['reason']).toBe('expired_key');
  });

  it('JWT: valid → in; expired, alg none, wrong secret, wrong audience → 401', async () => {
    const good = await jwt({}, { exp: '5m' });
    expect((await rawPost(gw.mcpUrl, INIT, { authorization: `Bearer ${good}` })).status).toBe(200);
    const expired = await jwt({}, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const r1 = await rawPost(gw.mcpUrl, INIT, { authorization: `Bearer ${expired}` });
    expect(r1.status).toBe(401);
    expect((((r1.json as Json)['error'] as Json)['data'] as Json)['reason']).toBe('expired_token');
    const b64 = (o: Json): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'root', iss: 'tributary-test', aud: 'agents', role: 'admin', exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    const r2 = await api('GET', '/api/mcp/clients', { authorization: `Bearer ${none}` });
    expect(r2.status).toBe(401);
    expect((r2.json['details'] as Json)['reason']).toBe('invalid_token');
    const forged = await jwt({ role: 'admin' }, { exp: '5m', secret: 'another-secret-that-is-also-32-bytes-long!!' });
    expect((await api('GET', '/api/mcp/clients', { authorization: `Bearer ${forged}` })).status).toBe(401);
    // a JWT whose role claim says admin may use the management API; a plain one may not
    expect((await api('GET', '/api/mcp/clients', { authorization: `Bearer ${await jwt({ role: 'admin' }, { exp: '5m' })}` })).status).toBe(200);
    expect((await api('GET', '/api/mcp/clients', { authorization: `Bearer ${good}` })).status).toBe(403);
  });

  it('Basic: wrong password → 401; after 5 failures from one address even the right one → 429', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await api('GET', '/api/auth/keys', { authorization: basic('admin', `wrong-${i}`) });
      expect(r.status).toBe(401);
    }
    // the right password was verified earlier and is remembered (by digest), so use a fresh spelling of it
    const blocked = await api('GET', '/api/auth/keys', { authorization: basic('admin', 'still-wrong') });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('API keys and roles', () => {
  it('accepts Bearer, a raw Authorization value and X-API-Key', async () => {
    for (const h of [{ authorization: `Bearer ${userKey}` }, { authorization: userKey }, { 'x-api-key': userKey }]) {
      const r = await rawPost(gw.mcpUrl, INIT, h);
      expect(r.status).toBe(200);
      expect(r.headers.get('x-ratelimit-limit')).not.toBeNull();
    }
  });

  it('user keys may not use the management API (403); admin keys may', async () => {
    expect((await api('GET', '/api/mcp/clients', { authorization: `Bearer ${userKey}` })).status).toBe(403);
    expect((await api('GET', '/api/mcp/clients', { authorization: `Bearer ${adminKey}` })).status).toBe(200);
    const listed = await api('GET', '/api/auth/keys', { authorization: `Bearer ${adminKey}` });
    expect(JSON.stringify(listed.json)).not.toContain(userKey);
    expect(JSON.stringify(listed.json)).not.toMatch(/"hash"/);
  });

  it('a session belongs to the credential that opened it', async () => {
    const r = await rawPost(gw.mcpUrl, INIT, { authorization: `Bearer ${userKey}` });
    const sid = r.headers.get('mcp-session-id') ?? '';
    const stolen = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), { authorization: `Bearer ${adminKey}`, 'mcp-session-id': sid });
    expect(stolen.status).toBe(403);
    const own = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), { authorization: `Bearer ${userKey}`, 'mcp-session-id': sid });
    expect(own.status).toBe(200);
  });
});

describe('virtual keys and include headers', () => {
  it('a virtual key sees only its tools over /mcp and cannot call others', async () => {
    const client = await sdkClient({ 'x-bf-vk': vk });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name).sort();
      expect(names).toContain('demo-echo');
      expect(names).not.toContain('demo-add');
      expect(names.filter((n) => n.startsWith('demo2-')).length).toBeGreaterThanOrEqual(3); // allow_on_all_virtual_keys
      expect(names.filter((n) => n.startsWith('demo-'))).toEqual(['demo-echo']);
      const ok = await client.callTool({ name: 'demo-echo', arguments: { message: 'hi' } });
      expect(JSON.stringify(ok.content)).toContain('Echo: hi');
      await expect(client.callTool({ name: 'demo-add', arguments: { a: 1, b: 2 } })).rejects.toThrow(/not allowed/);
    } finally {
      await client.close();
    }
  });

  it('a virtual key as Bearer works the same; it is refused on the management API and feeds (403)', async () => {
    const r = await rawPost(gw.mcpUrl, INIT, { authorization: `Bearer ${vk}` });
    expect(r.status).toBe(200);
    expect((await api('GET', '/api/mcp/clients', { 'x-bf-vk': vk })).status).toBe(403);
    expect((await wsOpen('/api/ws/events', { 'x-bf-vk': vk })).status).toBe(403);
  });

  it('over /ws a virtual key sees the same subset and gets a JSON-RPC error for other tools', async () => {
    const { ws, status } = await wsOpen('/ws', { 'x-bf-vk': vk }, 'mcp');
    expect(status).toBe('open');
    const rpc = rpcOverWs(ws);
    try {
      await rpc({ id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws' } } });
      const list = await rpc({ id: 2, method: 'tools/list' });
      const names = ((list['result'] as Json)['tools'] as Json[]).map((t) => t['name']);
      expect(names.filter((n) => String(n).startsWith('demo-'))).toEqual(['demo-echo']);
      const denied = await rpc({ id: 3, method: 'tools/call', params: { name: 'demo-add', arguments: { a: 1, b: 2 } } });
      expect(((denied['error'] as Json)['data'] as Json)['code']).toBe('TOOL_NOT_ALLOWED');
    } finally {
      ws.close();
    }
  });

  it('tool execution over REST follows the same rule (403 TOOL_NOT_ALLOWED)', async () => {
    const body = (name: string, args: Json): Json => ({ id: 'c1', type: 'function', function: { name, arguments: JSON.stringify(args) } });
    expect((await api('POST', '/v1/mcp/tool/execute', { 'x-bf-vk': vk }, body('demo-echo', { message: 'ok' }))).status).toBe(200);
    const denied = await api('POST', '/v1/mcp/tool/execute', { 'x-bf-vk': vk }, body('demo-add', { a: 1, b: 1 }));
    expect(denied.status).toBe(403);
    expect(denied.json['code']).toBe('TOOL_NOT_ALLOWED');
  });

  it('x-bf-mcp-include-clients / -tools narrow an API key, and never widen a virtual key', async () => {
    const tools = async (headers: Record<string, string>): Promise<string[]> => {
      const client = await sdkClient(headers);
      try {
        return (await client.listTools()).tools.map((t) => t.name).sort();
      } finally {
        await client.close();
      }
    };
    const all = await tools({ authorization: `Bearer ${userKey}` });
    expect(all).toContain('demo-add');
    expect(await tools({ authorization: `Bearer ${userKey}`, 'x-bf-mcp-include-tools': 'demo-echo,demo/add' })).toEqual(['demo-add', 'demo-echo']);
    const onlyDemo2 = await tools({ authorization: `Bearer ${userKey}`, 'x-bf-mcp-include-clients': 'demo2' });
    expect(onlyDemo2.length).toBeGreaterThan(0);
    expect(onlyDemo2.every((n) => n.startsWith('demo2-'))).toBe(true);
    expect(await tools({ authorization: `Bearer ${userKey}`, 'x-bf-mcp-include-clients': 'demo', 'x-bf-mcp-include-tools': 'demo2-*' })).toEqual([]);
    // the virtual key asks for demo-add too: still only echo from demo
    expect(await tools({ 'x-bf-vk': vk, 'x-bf-mcp-include-tools': 'demo-*' })).toEqual(['demo-echo']);
  });

  it('a changed vk_configs takes effect on the next request, and the key\'s open sessions hear tools/list_changed', async () => {
    const client = await sdkClient({ 'x-bf-vk': vk });
    let notified = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      notified++;
    });
    await waitFor(() => [...gw.sessions.values()].some((s) => s.owner === `vk:${vkId}` && s.standalone !== undefined));
    const clients = await api('GET', '/api/mcp/clients', ADMIN);
    const demo = (clients.json['clients'] as Json[]).find((c) => (c['config'] as Json)['name'] === 'demo') as Json;
    const id = String((demo['config'] as Json)['client_id']);
    const body = { id: 'c1', type: 'function', function: { name: 'demo-add', arguments: '{"a":2,"b":3}' } };
    expect((await api('POST', '/v1/mcp/tool/execute', { 'x-bf-vk': vk }, body)).status).toBe(403);
    await api('PUT', `/api/mcp/client/${id}`, ADMIN, { vk_configs: [{ virtual_key_id: vkId, tools_to_execute: ['*'] }] });
    expect((await api('POST', '/v1/mcp/tool/execute', { 'x-bf-vk': vk }, body)).status).toBe(200);
    await waitFor(() => notified > 0);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('demo-add');
    await client.close();
    await api('PUT', `/api/mcp/client/${id}`, ADMIN, { vk_configs: [{ virtual_key_id: vkId, tools_to_execute: ['echo'] }] });
    expect((await api('POST', '/v1/mcp/tool/execute', { 'x-bf-vk': vk }, body)).status).toBe(403);
  });
});

describe('rate limits', () => {
  it('HTTP: X-RateLimit-* count down and the request past the burst limit gets 429 with Retry-After', async () => {
    const { secret } = await createKey('/api/auth/keys', { name: 'bursty', rate_limits: { burst_per_minute: 5 } });
    const before = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 5; i++) {
      const r = await rawPost(gw.mcpUrl, INIT, { 'x-api-key': secret });
      expect(r.status).toBe(200);
      expect(r.headers.get('x-ratelimit-limit')).toBe('5');
      expect(r.headers.get('x-ratelimit-remaining')).toBe(String(4 - i));
      const reset = Number(r.headers.get('x-ratelimit-reset'));
      expect(reset).toBeGreaterThanOrEqual(before);
      expect(reset).toBeLessThanOrEqual(before + 61);
    }
    const over = await api('GET', '/api/v1/nothing', { 'x-api-key': secret });
    expect(over.status).toBe(429);
    expect(over.json['code']).toBe('RATE_LIMITED');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(over.headers.get('x-ratelimit-remaining')).toBe('0');
  });

  it('tool executions per hour: the third call of a key allowed two → 429 (REST) and -32009 (MCP)', async () => {
    const { secret } = await createKey('/api/auth/keys', { name: 'frugal', rate_limits: { tool_executions_per_hour: 2 } });
    const body = { id: 'c1', type: 'function', function: { name: 'demo-echo', arguments: '{"message":"x"}' } };
    expect((await api('POST', '/v1/mcp/tool/execute', { 'x-api-key': secret }, body)).status).toBe(200);
    const client = await sdkClient({ 'x-api-key': secret });
    try {
      await client.callTool({ name: 'demo-echo', arguments: { message: 'y' } });
      await expect(client.callTool({ name: 'demo-echo', arguments: { message: 'z' } })).rejects.toThrow(/Rate limit exceeded/);
      // listing is not an execution
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
    const r = await api('POST', '/v1/mcp/tool/execute', { 'x-api-key': secret }, body);
    expect(r.status).toBe(429);
    expect((r.json['details'] as Json)['limit_name']).toBe('tool_executions_per_hour');
  });

  it('WebSocket: each message past the limit gets its own error frame; the connection stays open', async () => {
    const { secret } = await createKey('/api/auth/keys', { name: 'ws-burst', rate_limits: { burst_per_minute: 4 } });
    const { ws, status } = await wsOpen('/ws', { authorization: `Bearer ${secret}` }, 'mcp');
    expect(status).toBe('open'); // the upgrade counted as request 1
    const rpc = rpcOverWs(ws);
    try {
      const answers: Json[] = [];
      answers.push(await rpc({ id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws' } } }));
      for (let id = 2; id <= 5; id++) answers.push(await rpc({ id, method: 'ping' }));
      expect(answers.slice(0, 3).every((a) => a['result'] !== undefined)).toBe(true);
      for (const a of answers.slice(3)) {
        expect((a['error'] as Json)['code']).toBe(-32009);
        expect(((a['error'] as Json)['data'] as Json)['code']).toBe('RATE_LIMITED');
      }
      expect(ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      ws.close();
    }
  });
});

describe('secrets', () => {
  it('no key, token or password used in this run appears in the logs', async () => {
    // the refusal counters reach /metrics with reasons only
    const m = await send(`${gw.url}/metrics`, {});
    expect(m.text).toMatch(/tributary_auth_failures_total\{reason="unknown_key"\} [1-9]/);
    expect(m.text).toMatch(/tributary_rate_limited_total\{limit="burst_per_minute"\} [1-9]/);
    expect(gw.logs.length).toBeGreaterThan(10);
    const all = gw.logs.join('\n') + m.text;
    expect(secrets.length).toBeGreaterThan(8);
    for (const s of secrets) {
      expect(all.includes(s), `secret of length ${s.length} found in logs`).toBe(false);
      expect(all.includes(s.slice(4, 24)), 'a secret fragment found in logs').toBe(false);
    }
  });
});

describe('start-up', () => {
  it('binding a non-loopback address turns auth on unless auth.disabled is true', () => {
    expect(resolveConfig({ server: { host: '0.0.0.0' } }, 't').auth.enabled).toBe(true);
    expect(resolveConfig({ server: { host: '0.0.0.0' }, auth: { disabled: true } }, 't').auth.enabled).toBe(false);
    expect(resolveConfig({}, 't').auth.enabled).toBe(false);
    expect(resolveConfig({ auth: { disabled: false } }, 't').auth.enabled).toBe(true);
    expect(() => resolveConfig({ auth: { admin: { username: 'a', password_hash: 'plain-text' } } }, 't')).toThrow(/password_hash/);
    expect(() => resolveConfig({ auth: { jwt: { hs256_secret: 'short' } } }, 't')).toThrow(/32 bytes/);
  });

  it('refuses to start with auth on and no way to authenticate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-auth-'));
    try {
      const config = resolveConfig({ server: { host: '127.0.0.1', port: 0 }, data_dir: dir, mcp_clients: [], auth: { disabled: false } }, 't');
      await expect(startGateway(config, { log: createLogger('silent') })).rejects.toThrow(/nobody could authenticate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
