/**
 * `/api/ws/events` is tenant-scoped: a subscriber sees the entity events of its own
 * tenant only; the admin sees every tenant's.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { demoClient } from './helpers/gateway.js';
import { startV1Gateway, type V1Gateway } from './helpers/v1.js';
import { waitFor } from './helpers/wait.js';

let v1: V1Gateway;

beforeAll(async () => {
  v1 = await startV1Gateway([demoClient('demo')]);
}, 30_000);

afterAll(async () => {
  await v1?.gw.stop();
});

function feed(authorization: string): Promise<{ ws: WebSocket; events: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${v1.gw.url.replace('http', 'ws')}/api/ws/events`, { headers: { authorization } });
    const events: Record<string, unknown>[] = [];
    ws.on('message', (d) => events.push(JSON.parse(d.toString()) as Record<string, unknown>));
    ws.once('open', () => {
      ws.send(JSON.stringify({ type: 'subscribe', event_types: ['AgentCreated', 'ToolInvocationCompleted'] }));
      resolve({ ws, events });
    });
    ws.once('error', reject);
  });
}

it('tenant B never receives tenant A\'s entity or tool events; the admin receives both', async () => {
  const a = await feed(`Bearer ${v1.keyA}`);
  const b = await feed(`Bearer ${v1.keyB}`);
  const admin = await feed(v1.admin);
  try {
    await waitFor(() => [a, b, admin].every((f) => f.events.some((e) => e['type'] === 'subscribed')));
    const ra = await v1.call('POST', '/api/v1/agents', v1.keyA, { name: 'a-agent', model: 'm' });
    expect(ra.status).toBe(201);
    await waitFor(() => a.events.some((e) => e['id'] === ra.json['id']));
    const rb = await v1.call('POST', '/api/v1/agents', v1.keyB, { name: 'b-agent', model: 'm' });
    expect(rb.status).toBe(201);
    // events are delivered in order: once B has its own event, A's would have come before it
    await waitFor(() => b.events.some((e) => e['id'] === rb.json['id']));
    await waitFor(() => admin.events.filter((e) => e['event_type'] === 'AgentCreated').length === 2);
    expect(b.events.some((e) => e['id'] === ra.json['id'])).toBe(false);
    expect(a.events.some((e) => e['id'] === rb.json['id'])).toBe(false);
    expect(admin.events.filter((e) => e['event_type'] === 'AgentCreated').map((e) => e['tenant_id'])).toEqual(['acme', 'globex']);
    // tool calls carry the caller's tenant too
    const call = { id: 'c1', type: 'function', function: { name: 'demo-echo', arguments: '{"message":"a"}' } };
    expect((await v1.call('POST', '/v1/mcp/tool/execute', v1.keyA, call)).status).toBe(200);
    expect((await v1.call('POST', '/v1/mcp/tool/execute', v1.keyB, call)).status).toBe(200);
    const tools = (f: { events: Record<string, unknown>[] }): unknown[] => f.events.filter((e) => e['event_type'] === 'ToolInvocationCompleted').map((e) => e['tenant_id']);
    await waitFor(() => tools(admin).length === 2 && tools(a).length === 1 && tools(b).length === 1);
    expect(tools(a)).toEqual(['acme']);
    expect(tools(b)).toEqual(['globex']);
  } finally {
    for (const f of [a, b, admin]) f.ws.close();
  }
});
