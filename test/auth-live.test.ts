/**
 * Access on open WebSockets follows the credential's current state, message by message: a `/ws`
 * MCP session of a virtual key sees its `vk_configs` narrowed and widened on the next request and
 * hears `tools/list_changed`; a revoked or expired credential's sockets (`/ws`, `/api/ws/events`,
 * `/api/ws/live`) are closed with 4401 and the reason, and nothing more is delivered on them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { demoClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;

const ADMIN_PASSWORD = 'live-access-admin-password-9';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };

let gw: TestGateway;
let demoId: string;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await send(`${gw.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...ADMIN },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, json: (r.json ?? {}) as Json };
}

async function createKey(path: '/api/auth/keys' | '/api/auth/virtual-keys', body: Json): Promise<{ id: string; secret: string }> {
  const r = await api('POST', path, body);
  expect(r.status).toBe(201);
  const view = (r.json['key'] ?? r.json['virtual_key']) as Json;
  return { id: view['id'] as string, secret: r.json['secret'] as string };
}

async function setVkTools(vkId: string, tools: string[]): Promise<void> {
  const put = await api('PUT', `/api/mcp/client/${demoId}`, { vk_configs: [{ virtual_key_id: vkId, tools_to_execute: tools }] });
  expect(put.status).toBe(200);
}

interface Socket {
  readonly ws: WebSocket;
  readonly messages: Json[];
  readonly closed: Promise<{ code: number; reason: string }>;
  rpc(msg: Json): Promise<Json>;
}

function open(path: string, headers: Record<string, string>, protocol?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const url = `${gw.url.replace('http', 'ws')}${path}`;
    const ws = protocol ? new WebSocket(url, protocol, { headers }) : new WebSocket(url, { headers });
    const messages: Json[] = [];
    const waiting = new Map<unknown, (m: Json) => void>();
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Json;
      messages.push(m);
      if ('id' in m) {
        waiting.get(m['id'])?.(m);
        waiting.delete(m['id']);
      }
    });
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        closed,
        rpc: (msg) =>
          new Promise((res) => {
            waiting.set(msg['id'], res);
            ws.send(JSON.stringify({ jsonrpc: '2.0', ...msg }));
          }),
      }),
    );
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

async function mcpSession(headers: Record<string, string>): Promise<Socket> {
  const s = await open('/ws', headers, 'mcp');
  const init = await s.rpc({ id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'live' } } });
  expect(init['result']).toBeDefined();
  return s;
}

const toolNames = async (s: Socket, id: string): Promise<string[]> => {
  const r = await s.rpc({ id, method: 'tools/list' });
  return ((r['result'] as Json)['tools'] as Json[]).map((t) => String(t['name'])).filter((n) => n.startsWith('demo-')).sort();
};
const call = (s: Socket, id: string, name: string, args: Json): Promise<Json> => s.rpc({ id, method: 'tools/call', params: { name, arguments: args } });
const errorCode = (r: Json): unknown => ((r['error'] as Json | undefined)?.['data'] as Json | undefined)?.['code'];

beforeAll(async () => {
  gw = await startTestGateway(
    [demoClient('demo')],
    {},
    { auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 100000, requests_per_hour: 1000000 } } },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
  );
  const clients = await api('GET', '/api/mcp/clients');
  const demo = (clients.json['clients'] as Json[]).find((c) => (c['config'] as Json)['name'] === 'demo') as Json;
  demoId = String((demo['config'] as Json)['client_id']);
}, 30_000);

afterAll(async () => {
  await gw?.stop();
});

describe('/ws MCP sessions of a virtual key follow its current vk_configs', () => {
  it('narrowed to [] → the next call is refused and tools/list is empty; widened → demo-add works; each change sends tools/list_changed', async () => {
    const { id, secret } = await createKey('/api/auth/virtual-keys', { name: 'live vk' });
    await setVkTools(id, ['echo']);
    const s = await mcpSession({ 'x-bf-vk': secret });
    try {
      expect(await toolNames(s, 'l1')).toEqual(['demo-echo']);
      expect((await call(s, 'c1', 'demo-echo', { message: 'a' }))['result']).toBeDefined();

      const changed = (): number => s.messages.filter((m) => m['method'] === 'notifications/tools/list_changed').length;
      const before = changed();
      await setVkTools(id, []);
      await waitFor(() => changed() > before);
      expect(await toolNames(s, 'l2')).toEqual([]);
      expect(errorCode(await call(s, 'c2', 'demo-echo', { message: 'b' }))).toBe('TOOL_NOT_ALLOWED');

      const before2 = changed();
      await setVkTools(id, ['*']);
      await waitFor(() => changed() > before2);
      expect(await toolNames(s, 'l3')).toEqual(['demo-add', 'demo-echo', 'demo-now', 'demo-sleep']);
      const sum = await call(s, 'c3', 'demo-add', { a: 2, b: 3 });
      expect(JSON.stringify(sum['result'])).toContain('5');
    } finally {
      s.ws.close();
    }
  });

  it('a deleted virtual key closes its /ws sessions with 4401 revoked_key; a new upgrade is refused', async () => {
    const { id, secret } = await createKey('/api/auth/virtual-keys', { name: 'to delete' });
    await setVkTools(id, ['echo']);
    const s = await mcpSession({ 'x-bf-vk': secret });
    expect((await call(s, 'c1', 'demo-echo', { message: 'a' }))['result']).toBeDefined();
    expect((await api('DELETE', `/api/auth/virtual-keys/${id}`)).status).toBe(200);
    const { code, reason } = await s.closed;
    expect(code).toBe(4401);
    expect(reason).toContain('revoked_key');
    await expect(open('/ws', { 'x-bf-vk': secret }, 'mcp')).rejects.toThrow(/401/);
  });
});

describe('feeds end when their credential ends', () => {
  it('/api/ws/events opened with an API key is closed with 4401 when the key is revoked, and gets no event after', async () => {
    const { id, secret } = await createKey('/api/auth/keys', { name: 'feed reader' });
    const feed = await open('/api/ws/events', { authorization: `Bearer ${secret}` });
    feed.ws.send(JSON.stringify({ type: 'subscribe' }));
    await waitFor(() => feed.messages.some((m) => m['type'] === 'subscribed'));
    expect((await api('DELETE', `/api/auth/keys/${id}`)).status).toBe(200);
    const { code, reason } = await feed.closed;
    expect(code).toBe(4401);
    expect(reason).toContain('revoked_key');
    const seen = feed.messages.length;
    // events keep flowing on the bus (a key created now), none reaches the closed feed
    await createKey('/api/auth/keys', { name: 'after' });
    expect(feed.messages.length).toBe(seen);
  });

  it('/api/ws/live of a revoked admin key is closed with 4401', async () => {
    const { id, secret } = await createKey('/api/auth/keys', { name: 'ops live', role: 'admin' });
    const live = await open('/api/ws/live', { authorization: `Bearer ${secret}` });
    expect((await api('DELETE', `/api/auth/keys/${id}`)).status).toBe(200);
    expect((await live.closed).code).toBe(4401);
  });

  it('an expiring key: its /ws session answers until the expiry instant, then the socket is closed with 4401 expired_key', async () => {
    const expiresAt = Date.now() + 1500;
    const { secret } = await createKey('/api/auth/keys', { name: 'short-lived', expires_at: new Date(expiresAt).toISOString() });
    const s = await mcpSession({ authorization: `Bearer ${secret}` });
    expect((await call(s, 'c1', 'demo-echo', { message: 'a' }))['result']).toBeDefined();
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now() + 50)));
    s.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'late', method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'late' } } }));
    const { code, reason } = await s.closed;
    expect(code).toBe(4401);
    expect(reason).toContain('expired_key');
    expect(s.messages.some((m) => m['id'] === 'late' && m['result'] !== undefined)).toBe(false);
  });
});
