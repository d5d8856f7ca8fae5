/**
 * `/api/ws/events` is tenant-scoped (issue 9): a subscriber sees the entity events of its own
 * tenant only; the admin sees every tenant's.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startV1Gateway, type V1Gateway } from './helpers/v1.js';
import { waitFor } from './helpers/wait.js';

let v1: V1Gateway;

beforeAll(async () => {
  v1 = await startV1Gateway([]);
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
      ws.send(JSON.stringify({ type: 'subscribe', event_types: ['AgentCreated'] }));
      resolve({ ws, events });
    });
    ws.once('error', reject);
  });
}

it('tenant B never receives tenant A\'s entity events; the admin receives both', async () => {
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
  } finally {
    for (const f of [a, b, admin]) f.ws.close();
  }
});
