/**
 * `/api/ws/events`, `/api/ws/live` and `/metrics` against a real gateway with real `ws` clients:
 * filters while tools are called for real, a filter change mid-stream, `since` replay across a
 * restart, a stalled subscriber beside a healthy one, bad messages, and promtool on the scrape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { connectClient, demoClient, send } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

type Msg = Record<string, unknown>;

const dataDir = mkdtempSync(join(tmpdir(), 'tributary-events-'));
let gw: Gateway & { mcpUrl: URL };

async function start(): Promise<Gateway & { mcpUrl: URL }> {
  const config = resolveConfig(
    { server: { port: 0 }, data_dir: dataDir, mcp_clients: [demoClient(), demoClient('other')], events: { max_queued: 50 } },
    'test',
  );
  const g = await startGateway(config, { log: createLogger('silent') });
  return Object.assign(g, { mcpUrl: new URL(`${g.url}/mcp`) });
}

/** A ws client collecting parsed messages. */
async function feed(path: string): Promise<{ ws: WebSocket; msgs: Msg[]; next: (pred: (m: Msg) => boolean, timeoutMs?: number) => Promise<Msg> }> {
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}${path}`);
  const msgs: Msg[] = [];
  ws.on('message', (data) => msgs.push(JSON.parse(String(data)) as Msg));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (pred: (m: Msg) => boolean, timeoutMs = 5000): Promise<Msg> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = msgs.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(msgs.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { ws, msgs, next };
}

async function callEcho(name: string, n: number): Promise<void> {
  const client = await connectClient(gw);
  try {
    for (let i = 0; i < n; i++) await client.callTool({ name, arguments: { message: `m${i}` } });
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  gw = await start();
});

afterAll(async () => {
  await gw?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('/api/ws/events', () => {
  it('delivers exactly the events matching the filter, in seq order', async () => {
    const f = await feed('/api/ws/events');
    try {
      f.ws.send(JSON.stringify({ type: 'subscribe', event_types: ['ToolInvocationCompleted'], mcp_server_ids: ['demo'] }));
      const ack = await f.next((m) => m['type'] === 'subscribed');
      expect(ack).toEqual({ type: 'subscribed', event_types: ['ToolInvocationCompleted'], mcp_server_ids: ['demo'] });
      await callEcho('demo-echo', 3);
      await callEcho('other-echo', 2);
      await callEcho('demo-echo', 1);
      await f.next(() => f.msgs.filter((m) => m['event_type']).length >= 4);
      await new Promise((r) => setTimeout(r, 100));
      const events = f.msgs.filter((m) => m['event_type']);
      expect(events).toHaveLength(4);
      expect(events.every((e) => e['event_type'] === 'ToolInvocationCompleted' && e['mcp_server_id'] === 'demo' && e['tool_name'] === 'echo')).toBe(true);
      const seqs = events.map((e) => e['seq'] as number);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
      expect(events[0]).not.toHaveProperty('arguments');
      expect(typeof events[0]?.['timestamp']).toBe('string');
    } finally {
      f.ws.close();
    }
  });

  it('gets everything before any subscribe, and follows a filter change mid-stream', async () => {
    const f = await feed('/api/ws/events');
    try {
      await callEcho('other-echo', 1);
      await f.next((m) => m['event_type'] === 'ToolInvocationCompleted' && m['mcp_server_id'] === 'other');
      f.ws.send(JSON.stringify({ type: 'subscribe', mcp_server_ids: ['other'] }));
      await f.next((m) => m['type'] === 'subscribed');
      const mark = f.msgs.length;
      await callEcho('demo-echo', 2);
      await callEcho('other-echo', 1);
      await f.next((m) => f.msgs.indexOf(m) >= mark && m['mcp_server_id'] === 'other' && m['event_type'] === 'ToolInvocationCompleted');
      const after = f.msgs.slice(mark).filter((m) => m['event_type']);
      expect(after.every((m) => m['mcp_server_id'] === 'other')).toBe(true);
    } finally {
      f.ws.close();
    }
  });

  it('answers bad messages with an error frame and stays open', async () => {
    const f = await feed('/api/ws/events');
    try {
      const cases: [string | Buffer, string][] = [
        ['not json', 'invalid_json'],
        ['[1,2]', 'invalid_message'],
        ['{"type":"unsubscribe"}', 'unknown_type'],
        ['{"type":"subscribe","event_types":"x"}', 'invalid_field'],
        ['{"type":"subscribe","mcp_server_ids":[1]}', 'invalid_field'],
        ['{"type":"subscribe","since":-1}', 'invalid_field'],
        [JSON.stringify({ type: 'subscribe', pad: 'x'.repeat(20_000) }), 'message_too_large'],
        [Buffer.from([1, 2, 3]), 'unsupported'],
      ];
      for (const [msg, code] of cases) {
        const before = f.msgs.length;
        f.ws.send(msg);
        const err = await f.next((m) => f.msgs.indexOf(m) >= before && m['type'] === 'error');
        expect(err['code']).toBe(code);
        expect(typeof err['message']).toBe('string');
      }
      f.ws.send(JSON.stringify({ type: 'subscribe' }));
      await f.next((m) => m['type'] === 'subscribed');
      expect(f.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      f.ws.close();
    }
  });

  it('keeps a stalled subscriber bounded (it falls back to the store), and once it reads it gets every event in order, while another gets every event live', async () => {
    const stalled = await feed('/api/ws/events');
    const healthy = await feed('/api/ws/events');
    try {
      for (const f of [stalled, healthy]) {
        f.ws.send(JSON.stringify({ type: 'subscribe', event_types: ['StoreChanged'] }));
        await f.next((m) => m['type'] === 'subscribed');
      }
      // stop reading: TCP backpressure builds up in the server's socket, then in our queue
      stalled.ws.pause();
      const N = 20_000;
      const first = gw.bus.lastSeq + 1;
      // a steady publisher (20 events per event-loop turn) that a reading client keeps up with
      for (let i = 0; i < N; i++) {
        gw.bus.publish({ event_type: 'StoreChanged', tags: [`t${i}`, 'x'.repeat(2000)] });
        if (i % 20 === 19) await new Promise((r) => setImmediate(r));
      }
      // poll the count once per turn (a `next` predicate that filters every message would run per message: O(N²))
      await waitFor(() => healthy.msgs.filter((m) => m['event_type'] === 'StoreChanged').length >= N, 30_000);
      const seqs = healthy.msgs.filter((m) => m['event_type'] === 'StoreChanged').map((m) => m['seq']);
      expect(seqs).toEqual(Array.from({ length: N }, (_, i) => first + i));
      const metrics = (await send(`${gw.url}/metrics`, {})).text;
      const depth = Number(/tributary_subscriber_queue_depth\{endpoint="\/api\/ws\/events"\} (\d+)/.exec(metrics)?.[1]);
      // at most the live queue (events.max_queued 50) plus one page read from the store (256)
      expect(depth).toBeLessThanOrEqual(50 + 256);
      stalled.ws.resume();
      // it catches up from the store as it reads: every event, in order, no warning
      await stalled.next((m) => m['seq'] === first + N - 1, 30_000);
      const got = stalled.msgs.filter((m) => m['event_type'] === 'StoreChanged').map((m) => m['seq']);
      expect(got).toEqual(seqs);
      expect(stalled.msgs.filter((m) => m['type'] === 'warning')).toEqual([]);
    } finally {
      stalled.ws.terminate();
      healthy.ws.close();
    }
  }, 60_000);

  it('replays stored events after `since` across a restart, then continues live, with no gap and no duplicate', async () => {
    await callEcho('demo-echo', 2);
    const lastBefore = gw.bus.lastSeq;
    await gw.close();
    gw = await start();
    expect(gw.bus.lastSeq).toBeGreaterThanOrEqual(lastBefore);
    const f = await feed('/api/ws/events');
    try {
      const since = lastBefore - 3;
      f.ws.send(JSON.stringify({ type: 'subscribe', since }));
      await f.next((m) => m['type'] === 'subscribed');
      await callEcho('demo-echo', 2);
      const target = gw.bus.lastSeq;
      await f.next((m) => m['seq'] === target);
      // what came before the ack was the unfiltered live stream; the `since` stream starts after it
      const after = f.msgs.slice(f.msgs.findIndex((m) => m['type'] === 'subscribed') + 1);
      const seqs = after.filter((m) => typeof m['seq'] === 'number').map((m) => m['seq'] as number);
      expect(seqs).toEqual(Array.from({ length: target - since }, (_, i) => since + 1 + i));
    } finally {
      f.ws.close();
    }
  });
});

describe('/api/ws/live', () => {
  it('sends mcp_log entries for tool calls and store_update for client changes', async () => {
    const f = await feed('/api/ws/live');
    try {
      await callEcho('demo-echo', 1);
      const log = await f.next((m) => m['type'] === 'mcp_log');
      expect(log).toMatchObject({ operation: 'create', payload: { client: 'demo', tool: 'echo', status: 'success', arguments: { message: 'm0' } } });
      const created = await send(`${gw.url}/api/mcp/client`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'live_demo', connection_type: 'inprocess', inprocess_server: 'demo' }),
      });
      expect(created.status).toBe(201);
      expect(await f.next((m) => m['type'] === 'store_update')).toEqual({ type: 'store_update', tags: ['mcp_clients'] });
    } finally {
      f.ws.close();
    }
  });
});

describe('/metrics', () => {
  const promtool = spawnSync('promtool', ['--version']).status === 0;

  it('exposes the gateway metrics', async () => {
    await callEcho('demo-echo', 1);
    const r = await send(`${gw.url}/metrics`, {});
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    for (const name of [
      'tributary_http_requests_total{route="/mcp",method="POST",status="200"}',
      'tributary_http_request_duration_seconds_bucket',
      'tributary_mcp_requests_total{method="tools/call"}',
      'tributary_tool_calls_total{client="demo",tool="echo",status="success"}',
      'tributary_tool_call_duration_seconds_bucket',
      'tributary_upstream_state{client="demo",state="connected"} 1',
      'tributary_events_published_total{event_type="ToolInvocationCompleted"}',
      'tributary_websocket_connections{endpoint="/api/ws/events"}',
      'tributary_store_batches_total',
      'tributary_process_resident_memory_bytes',
    ]) {
      expect(r.text).toContain(name);
    }
  });

  it.skipIf(!promtool)('passes promtool check metrics', async () => {
    const r = await send(`${gw.url}/metrics`, {});
    const check = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});
