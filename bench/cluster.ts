/**
 * `npm run bench:cluster`: what cluster mode (NATS JetStream) adds, against one process measured
 * in the same run. A real nats-server (Debian, JetStream, temp store) on loopback; gateways started
 * in this process (`startGateway`, in-process `demo` upstream), so the CPU column is this process
 * (all gateways and the load generator) plus nats-server, from /proc, per operation.
 *
 * 1. Event delivery: a tool call through `POST /v1/mcp/tool/execute` on one node, one at a time;
 *    timed from the request to its `ToolInvocationCompleted` event arriving at an `/api/ws/events`
 *    subscriber — on the same node without cluster (baseline), on another node with cluster.
 * 2. A rate-limited request (auth on, an API key, 6000 a minute and 10^6 an hour):
 *    `GET /api/v1/nothing` (404 after the limit check), one at a time — in-memory limiter
 *    (baseline) vs the NATS KV store counting every request exactly (`rate_limit_slack: 0`) vs
 *    leased blocks (the default slack 0.1: one KV round trip per block of 0.1 × limit / nodes).
 * 3. A server→client notification of a session whose GET stream is held on another node: a
 *    JSON-only `tools/call` of `demo-sleep` (one step, so one progress notification at once) —
 *    timed from the POST to the progress arriving on the session's GET stream; baseline: POST and
 *    stream on one process; cluster: POST on B, stream on A (routed over a NATS subject).
 * 4. Other nodes' events reaching a node: this process publishes batches of 20 events (a
 *    publisher's stream message) on another node's subject, one at a time; CPU per event — node B
 *    with no `/api/ws/events` connection (baseline: its feed does not read the stream) vs B with
 *    one connection whose filter matches none of them (the feed reads and decodes every event).
 *
 * 5. A node's own events leaving for the stream (the publisher alone, on its own NATS connection):
 *    events offered at a steady 3,000 a second (3 per millisecond tick: one node's share of the
 *    three-node bench), CPU per event of this process plus nats-server — the tick and the events
 *    built alone (baseline), the publisher with linger 0 (every turn's events leave at once:
 *    the publisher before the linger), and with the default linger. The name says the events per
 *    stream message it reached.
 *
 * Environment: BENCH_CLUSTER_N (operations per point, default 400; point 5 offers 10 × N events).
 * Profile: `node --cpu-prof --import tsx bench/cluster.ts` (the profile covers the gateways too).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { ClusterEventPublisher, DEFAULT_EVENT_LINGER_MS } from '../src/cluster/event-stream.js';
import type { GatewayEvent } from '../src/streams/events.js';
import { createLogger } from '../src/log/logger.js';
import { startNatsServer } from '../test/helpers/nats.js';
import { quantile, treeCpuSeconds } from './lib.js';

const N = Number(process.env['BENCH_CLUSTER_N'] ?? 400);
const ADMIN_PASSWORD = 'bench-admin-password-123';
const dirs: string[] = [];
const BASIC = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;

async function gateway(extra: Record<string, unknown>): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-cluster-'));
  dirs.push(dir);
  const config = resolveConfig({ server: { port: 0 }, data_dir: dir, mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }], ...extra }, 'bench', { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD });
  return startGateway(config, { log: createLogger('silent') });
}

interface Point {
  name: string;
  /** Latency, ms (`undefined`: the point measures CPU only). */
  p50: number | undefined;
  p99: number | undefined;
  cpuUsPerOp: number;
}

function cpuNow(natsPid: number | undefined): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6 + (natsPid !== undefined ? treeCpuSeconds(natsPid) : 0);
}

async function eventLatency(name: string, callOn: Gateway, subscribeOn: Gateway, natsPid: number | undefined): Promise<Point> {
  const ws = new WebSocket(`${subscribeOn.url.replace('http', 'ws')}/api/ws/events`, { headers: { authorization: BASIC } });
  // one call at a time: the next ToolInvocationCompleted of demo is this call's
  let waiting: (() => void) | undefined;
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as Record<string, unknown>;
    if (m['event_type'] === 'ToolInvocationCompleted' && m['mcp_server_id'] === 'demo' && waiting !== undefined) {
      waiting();
      waiting = undefined;
    }
  });
  await new Promise((r) => ws.once('open', r));
  const times = new Float64Array(N);
  const cpu0 = cpuNow(natsPid);
  for (let i = 0; i < N; i++) {
    const id = `call-${i}`;
    const t0 = performance.now();
    const arrived = new Promise<void>((resolve) => (waiting = resolve));
    const res = await fetch(`${callOn.url}/v1/mcp/tool/execute?format=chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: BASIC },
      body: JSON.stringify({ id, type: 'function', function: { name: 'demo-echo', arguments: JSON.stringify({ message: 'x' }) } }),
    });
    await res.text();
    await arrived;
    times[i] = performance.now() - t0;
  }
  const cpu = cpuNow(natsPid) - cpu0;
  ws.close();
  times.sort();
  return { name, p50: quantile(times, 0.5), p99: quantile(times, 0.99), cpuUsPerOp: (cpu / N) * 1e6 };
}

async function limitedRequests(name: string, gw: Gateway, natsPid: number | undefined): Promise<Point> {
  const created = (await (await fetch(`${gw.url}/api/auth/keys`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: BASIC }, body: JSON.stringify({ name: `bench-${name}` }) })).json()) as { secret: string };
  const headers = { 'x-api-key': created.secret };
  for (let i = 0; i < 50; i++) await (await fetch(`${gw.url}/api/v1/nothing`, { headers })).text();
  const times = new Float64Array(N);
  const cpu0 = cpuNow(natsPid);
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = await fetch(`${gw.url}/api/v1/nothing`, { headers });
    await r.text();
    if (r.status !== 404) throw new Error(`unexpected status ${r.status}`);
    times[i] = performance.now() - t0;
  }
  const cpu = cpuNow(natsPid) - cpu0;
  times.sort();
  return { name, p50: quantile(times, 0.5), p99: quantile(times, 0.99), cpuUsPerOp: (cpu / N) * 1e6 };
}

/** Reads SSE `data:` lines of a response body and calls `on` with each JSON-RPC message. */
function readSse(res: Response, on: (m: Record<string, unknown>) => void): void {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buf = '';
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const data = buf.slice(0, end).split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        buf = buf.slice(end + 2);
        if (data !== '') on(JSON.parse(data) as Record<string, unknown>);
      }
    }
  })();
}

async function notificationLatency(name: string, postOn: Gateway, streamOn: Gateway, natsPid: number | undefined): Promise<Point> {
  const base = { 'content-type': 'application/json', authorization: BASIC, 'mcp-protocol-version': '2025-06-18' };
  const init = await fetch(`${streamOn.url}/mcp`, { method: 'POST', headers: { ...base, accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }) });
  await init.text();
  const sid = init.headers.get('mcp-session-id') ?? '';
  const headers = { ...base, 'mcp-session-id': sid };
  await (await fetch(`${streamOn.url}/mcp`, { method: 'POST', headers: { ...headers, accept: 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  const ac = new AbortController();
  const stream = await fetch(`${streamOn.url}/mcp`, { headers: { ...headers, accept: 'text/event-stream' }, signal: ac.signal });
  let waiting: ((token: unknown) => void) | undefined;
  readSse(stream, (m) => {
    if (m['method'] === 'notifications/progress') waiting?.((m['params'] as Record<string, unknown>)['progressToken']);
  });
  // the stream's subscription reaches NATS asynchronously: one call before measuring
  const one = async (token: string): Promise<number> => {
    const t0 = performance.now();
    const arrived = new Promise<number>((resolve) => {
      waiting = (t) => {
        if (t === token) resolve(performance.now() - t0);
      };
    });
    const r = await fetch(`${postOn.url}/mcp`, { method: 'POST', headers: { ...headers, accept: 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: token, method: 'tools/call', params: { name: 'demo-sleep', arguments: { ms: 0, steps: 1 }, _meta: { progressToken: token } } }) });
    await r.text();
    return arrived;
  };
  for (let i = 0; i < 20; i++) await one(`warm-${i}`);
  const times = new Float64Array(N);
  const cpu0 = cpuNow(natsPid);
  for (let i = 0; i < N; i++) times[i] = await one(`t-${i}`);
  const cpu = cpuNow(natsPid) - cpu0;
  ac.abort();
  times.sort();
  return { name, p50: quantile(times, 0.5), p99: quantile(times, 0.99), cpuUsPerOp: (cpu / N) * 1e6 };
}

/** Events per stream message in {@link otherNodesEvents} (a publisher's batch under load). */
const OTHER_BATCH = 20;

async function otherNodesEvents(name: string, natsUrl: string, node: Gateway, watch: boolean, natsPid: number | undefined): Promise<Point> {
  const cluster = node.cluster;
  if (cluster === undefined) throw new Error('not a cluster node');
  const nc = await connect({ servers: natsUrl });
  const js = jetstream(nc);
  const subject = `${cluster.node.config.name}.events.bench_other`;
  let ws: WebSocket | undefined;
  if (watch) {
    ws = new WebSocket(`${node.url.replace('http', 'ws')}/api/ws/events`, { headers: { authorization: BASIC } });
    const socket = ws;
    await new Promise((r) => socket.once('open', r));
    const acked = new Promise((r) => socket.once('message', r));
    socket.send(JSON.stringify({ type: 'subscribe', event_types: ['NoSuchEvent'] }));
    await acked;
  }
  const body = (m: number): string =>
    JSON.stringify(
      Array.from({ length: OTHER_BATCH }, (_, i) => ({
        event_type: 'ToolInvocationCompleted',
        seq: m * OTHER_BATCH + i + 1,
        timestamp: new Date().toISOString(),
        mcp_server_id: 'demo',
        tool_name: 'echo',
        call_id: `bench-${m}-${i}`,
        duration_ms: 1.25,
        success: true,
        node_id: 'bench_other',
        node_seq: m * OTHER_BATCH + i + 1,
      })),
    );
  const feed = cluster.feed;
  const read0 = feed.messagesRead;
  const times = new Float64Array(N);
  const cpu0 = cpuNow(natsPid);
  for (let m = 0; m < N; m++) {
    const t0 = performance.now();
    await js.publish(subject, body(m));
    times[m] = performance.now() - t0;
  }
  if (watch) while (feed.messagesRead - read0 < N) await new Promise((r) => setTimeout(r, 5));
  const cpu = cpuNow(natsPid) - cpu0;
  if (!watch && feed.messagesRead !== read0) throw new Error(`${name}: the feed read ${feed.messagesRead - read0} messages with no connection`);
  ws?.close();
  await nc.close();
  times.sort();
  return { name, p50: quantile(times, 0.5), p99: quantile(times, 0.99), cpuUsPerOp: (cpu / (N * OTHER_BATCH)) * 1e6 };
}

/** Events offered per millisecond tick in {@link ownEvents}. */
const OWN_PER_TICK = 3;

/**
 * Point 5: `lingerMs` undefined = the baseline (the tick and the events, no publisher). Offers
 * `OWN_PER_TICK` events per 1 ms tick until `10 × N` are offered, then waits until all are
 * acknowledged.
 */
async function ownEvents(name: string, natsUrl: string, streamPrefix: string, lingerMs: number | undefined, natsPid: number | undefined): Promise<Point> {
  const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
  const total = N * 10;
  const publisher =
    lingerMs === undefined
      ? undefined
      : new ClusterEventPublisher({ js: jetstream(nc), eventSubject: `${streamPrefix}.events.bench_pub_${lingerMs}`, config: { node_id: `bench_pub_${lingerMs}` } }, 100_000, createLogger('silent'), { lingerMs });
  let sink: GatewayEvent | undefined;
  const cpu0 = cpuNow(natsPid);
  let seq = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      for (let i = 0; i < OWN_PER_TICK && seq < total; i++) {
        seq++;
        const e = {
          event_type: 'ToolInvocationCompleted',
          seq,
          timestamp: new Date().toISOString(),
          mcp_server_id: 'demo',
          tool_name: 'echo',
          call_id: `bench-${seq}`,
          duration_ms: 0.25,
          cost_usd: 0,
          surface: 'mcp',
          is_error: false,
          arguments: { message: 'hi' },
          result: undefined,
        } as unknown as GatewayEvent;
        if (publisher !== undefined) publisher.offer(e);
        else sink = e;
      }
      if (seq >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  if (publisher !== undefined) await publisher.close(10_000);
  if (sink === undefined && publisher === undefined) throw new Error('no event built');
  const cpu = cpuNow(natsPid) - cpu0;
  if (publisher !== undefined && publisher.published !== total) throw new Error(`${name}: ${publisher.published} of ${total} events acknowledged`);
  await nc.close();
  const perMessage = publisher !== undefined ? ` — ${(publisher.published / Math.max(1, publisher.messages)).toFixed(1)} events per stream message` : '';
  return { name: `${name}${perMessage}`, p50: undefined, p99: undefined, cpuUsPerOp: (cpu / total) * 1e6 };
}

const auth = { auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 6000, requests_per_hour: 1e6, tool_executions_per_hour: 1e9 } } };
const nats = await startNatsServer();
const single = await gateway(auth);
const a = await gateway({ ...auth, cluster: { nats_url: nats.url, node_id: 'bench_a' } });
const b = await gateway({ ...auth, cluster: { nats_url: nats.url, node_id: 'bench_b' } });
const exact = await gateway({ ...auth, cluster: { nats_url: nats.url, node_id: 'bench_x', rate_limit_slack: 0 } });
const pid = nats.pid;
const groups: Point[][] = [];
groups.push([await eventLatency('events: one process, same node (baseline)', single, single, undefined), await eventLatency('events: cluster, call on A, subscriber on B', a, b, pid)]);
groups.push([
  await limitedRequests('rate limit: in memory (baseline)', single, undefined),
  await limitedRequests('rate limit: NATS KV, exact (slack 0)', exact, pid),
  await limitedRequests('rate limit: NATS KV, leased blocks (slack 0.1)', a, pid),
]);
groups.push([
  await notificationLatency('server→client notification: POST and GET stream on one process (baseline)', single, single, undefined),
  await notificationLatency('server→client notification: POST on B, GET stream on A (NATS subject)', b, a, pid),
]);
// every /api/ws/events connection of the points above is closed: the feeds stop after their linger
for (const g of [a, b, exact]) while (g.cluster?.feed.reading === true) await new Promise((r) => setTimeout(r, 50));
groups.push([
  await otherNodesEvents('other nodes\' events at B: no /api/ws/events connection (baseline; p50/p99 = publish)', nats.url, b, false, pid),
  await otherNodesEvents('other nodes\' events at B: one connection, filter matching none (p50/p99 = publish)', nats.url, b, true, pid),
]);
const prefix = a.cluster?.node.config.name ?? 'tributary';
groups.push([
  await ownEvents(`own events leaving, ${OWN_PER_TICK} per ms: the tick and the events alone (baseline)`, nats.url, prefix, undefined, pid),
  await ownEvents('own events leaving: publisher, linger 0 (each turn\'s events at once)', nats.url, prefix, 0, pid),
  await ownEvents(`own events leaving: publisher, linger ${DEFAULT_EVENT_LINGER_MS} ms (default)`, nats.url, prefix, DEFAULT_EVENT_LINGER_MS, pid),
]);
console.log(`\nN = ${N} per point, one at a time; CPU = this process (gateways + client) + nats-server, per operation (points 4 and 5: per event)\n`);
console.log('| point | p50 ms | p99 ms | CPU µs/op | p50 vs baseline |');
console.log('|---|---|---|---|---|');
for (const rows of groups) {
  const baseline = rows[0] as Point;
  for (const r of rows) {
    const vs = r.p50 !== undefined && baseline.p50 !== undefined ? `${(r.p50 / baseline.p50).toFixed(2)}×` : '—';
    console.log(`| ${r.name} | ${r.p50?.toFixed(3) ?? '—'} | ${r.p99?.toFixed(3) ?? '—'} | ${r.cpuUsPerOp.toFixed(1)} | ${vs} |`);
  }
}
for (const g of [single, a, b, exact]) await g.close();
await nats.dispose();
for (const d of dirs) rmSync(d, { recursive: true, force: true });
