/**
 * A sealed session is bound to the credential that opened it, on every node: two gateway nodes
 * (in-process, real nats-server, auth on); a session opened on A with an API key is served on B for
 * that key, refused (403) for the admin's credential and (401) for none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startNatsServer, type TestNatsServer } from './helpers/nats.js';

const ADMIN_PASSWORD = 'cluster-admin-password-123';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };
const MCP = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
let nats: TestNatsServer;
const nodes: TestGateway[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  for (const id of ['a', 'b']) {
    nodes.push(
      await startTestGateway([demoClient()], {}, { auth: { disabled: false, admin: { username: 'admin' } }, cluster: { nats_url: nats.url, node_id: id } }, { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD }),
    );
  }
}, 60_000);

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await nats?.dispose();
});

describe('cluster: a sealed session belongs to the credential that opened it', () => {
  it('served on another node for the same key; 403 for another credential, 401 for none', async () => {
    const [a, b] = nodes as [TestGateway, TestGateway];
    const created = await send(`${a.url}/api/auth/keys`, { method: 'POST', headers: { 'content-type': 'application/json', ...ADMIN }, body: JSON.stringify({ name: 'agent' }) });
    expect(created.status).toBe(201);
    const key = { 'x-api-key': (created.json as { secret: string }).secret };
    const init = await send(a.mcpUrl, { method: 'POST', headers: { ...MCP, ...key }, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'agent', version: '1' } } }) });
    const sid = init.headers.get('mcp-session-id') ?? '';
    expect(sid).toMatch(/^ts1\./);
    const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    // B learns the key from the configuration bucket (asynchronously): bounded wait
    let status = 0;
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      status = (await send(b.mcpUrl, { method: 'POST', headers: { ...MCP, ...key, 'mcp-session-id': sid }, body: list })).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
    const other = await send(b.mcpUrl, { method: 'POST', headers: { ...MCP, ...ADMIN, 'mcp-session-id': sid }, body: list });
    expect(other.status).toBe(403);
    expect(other.text).toContain('opened with other credentials');
    expect((await send(b.mcpUrl, { method: 'POST', headers: { ...MCP, 'mcp-session-id': sid }, body: list })).status).toBe(401);
  });
});
