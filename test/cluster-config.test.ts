/**
 * Cluster configuration sync against a real nats-server and three real gateway nodes with auth on:
 * an MCP client created through node A's management API is callable on node C within 1 s; an API
 * key created on A authenticates on B, and its revocation on B refuses it on C; a client deleted on
 * C disappears from A; a key's rate limit holds across nodes; a node started later gets
 * everything from the bucket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { demoClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startNatsServer, type TestNatsServer } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;

const ADMIN_PASSWORD = 'cluster-admin-password-123';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };
let nats: TestNatsServer;
const nodes: TestGateway[] = [];

function start(nodeId: string): Promise<TestGateway> {
  return startTestGateway(
    [demoClient()],
    {},
    { auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 10_000, requests_per_hour: 100_000 } }, cluster: { nats_url: nats.url, node_id: nodeId } },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
  );
}

async function api(gw: TestGateway, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await send(`${gw.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, json: (r.json ?? {}) as Json };
}

async function callOn(gw: TestGateway, tool: string, headers: Record<string, string>): Promise<boolean> {
  const client = new Client({ name: 'cluster-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { requestInit: { headers } }));
  try {
    const r = await client.callTool({ name: tool, arguments: { message: 'hi' } });
    return r.isError !== true;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}

/** Polls `probe` until it resolves true; rejects after `timeoutMs`. */
async function eventually(probe: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  nats = await startNatsServer();
  for (const id of ['a', 'b', 'c']) nodes.push(await start(id));
});

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await nats?.dispose();
});

describe('cluster: configuration in JetStream KV', () => {
  it('a client created on node A is callable on node C within 1 s', async () => {
    const [a, , c] = nodes as [TestGateway, TestGateway, TestGateway];
    expect(await callOn(c, 'shared-echo', ADMIN)).toBe(false);
    const created = await api(a, 'POST', '/api/mcp/client', ADMIN, { name: 'shared', connection_type: 'inprocess', inprocess_server: 'demo', tool_pricing: undefined });
    expect(created.status).toBe(201);
    await eventually(() => callOn(c, 'shared-echo', ADMIN), 1_000);
    // same record everywhere: one client_id
    const listed = await api(c, 'GET', '/api/mcp/clients', ADMIN);
    const shared = (listed.json['clients'] as Json[]).find((x) => (x['config'] as Json)['name'] === 'shared') as Json;
    expect((shared['config'] as Json)['client_id']).toBe((created.json['config'] as Json)['client_id']);
  });

  it('an API key created on A authenticates on B; revoked on B, it is refused on C', async () => {
    const [a, b, c] = nodes as [TestGateway, TestGateway, TestGateway];
    const created = await api(a, 'POST', '/api/auth/keys', ADMIN, { name: 'fleet' });
    expect(created.status).toBe(201);
    const secret = created.json['secret'] as string;
    const id = (created.json['key'] as Json)['id'] as string;
    const bearer = { authorization: `Bearer ${secret}` };
    await eventually(async () => (await api(b, 'GET', '/api/mcp/clients', bearer)).status !== 401, 1_000);
    expect(await callOn(b, 'demo-echo', bearer)).toBe(true);
    await waitFor(() => c.cluster !== undefined && (c.cluster.health()['config'] as { applied_from_other_nodes: number }).applied_from_other_nodes > 0);
    expect((await api(b, 'DELETE', `/api/auth/keys/${id}`, ADMIN)).status).toBe(200);
    await eventually(async () => (await api(c, 'GET', '/api/mcp/clients', bearer)).status === 401, 1_000);
    // the bucket holds the hash, never the secret
    const entry = await a.cluster?.node.configKv.get(`keys.api_key.${id}`);
    expect(entry?.string()).not.toContain(secret);
    expect(entry?.json<Json>()['hash']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a client deleted on C disappears from A; tool_pricing changed on B applies on A', async () => {
    const [a, b, c] = nodes as [TestGateway, TestGateway, TestGateway];
    const list = await api(b, 'GET', '/api/mcp/clients', ADMIN);
    const demo = (list.json['clients'] as Json[]).find((x) => (x['config'] as Json)['name'] === 'demo') as Json;
    const demoId = (demo['config'] as Json)['client_id'] as string;
    expect((await api(b, 'PUT', `/api/mcp/client/${demoId}`, ADMIN, { tool_pricing: { echo: 0.25 } })).status).toBe(200);
    await eventually(async () => a.manager.get('demo')?.pricing['echo'] === 0.25, 1_000);

    const shared = (list.json['clients'] as Json[]).find((x) => (x['config'] as Json)['name'] === 'shared') as Json;
    const sharedId = (shared['config'] as Json)['client_id'] as string;
    expect((await api(c, 'DELETE', `/api/mcp/client/${sharedId}`, ADMIN)).status).toBe(200);
    await eventually(async () => a.manager.get('shared') === undefined, 1_000);
    expect((await api(a, 'GET', `/api/mcp/client/${sharedId}`, ADMIN)).status).toBe(404);
  });

  it('a key’s rate limit holds across nodes: requests spread over three nodes, concurrently', async () => {
    const [a, b, c] = nodes as [TestGateway, TestGateway, TestGateway];
    const limit = 30;
    const created = await api(a, 'POST', '/api/auth/keys', ADMIN, { name: 'limited', rate_limits: { burst_per_minute: limit } });
    const secret = created.json['secret'] as string;
    // wait until every node knows the key (one counted request on each)
    let used = 0;
    for (const n of [b, c]) {
      await eventually(async () => {
        const r = await api(n, 'GET', '/api/v1/nothing', { 'x-api-key': secret });
        if (r.status !== 401) used++;
        return r.status !== 401;
      }, 1_000);
    }
    const statuses: number[] = [];
    for (let round = 0; round < 8; round++) {
      const batch = await Promise.all([a, b, c, a, b, c, a, b, c].map((n) => api(n, 'GET', '/api/v1/nothing', { 'x-api-key': secret })));
      statuses.push(...batch.map((r) => r.status));
    }
    const admitted = statuses.filter((s) => s !== 429).length + used;
    expect(statuses.every((s) => s === 404 || s === 429)).toBe(true);
    expect(admitted).toBeLessThanOrEqual(limit);
    expect(admitted).toBeGreaterThanOrEqual(Math.floor(limit * 0.9));
  });

  it('a node that joins later gets the clients and keys from the bucket', async () => {
    const [a] = nodes as [TestGateway, TestGateway, TestGateway];
    const created = await api(a, 'POST', '/api/auth/keys', ADMIN, { name: 'late' });
    const bearer = { authorization: `Bearer ${created.json['secret'] as string}` };
    const d = await start('d');
    nodes.push(d);
    expect(await callOn(d, 'demo-echo', bearer)).toBe(true);
    expect(d.manager.get('demo')?.pricing['echo']).toBe(0.25);
    expect(d.manager.get('shared')).toBeUndefined();
  });
});
