/**
 * `npm run bench:cluster`: what cluster mode (NATS JetStream) adds, against one process measured
 * in the same run. A real nats-server (Debian, JetStream, temp store) on loopback; gateways started
 * in this process (`startGateway`, in-process `demo` upstream), so the CPU column is this process
 * (all gateways and the load generator) plus nats-server, from /proc, per operation.
 *
 * 1. Event delivery: a tool call through `POST /v1/mcp/tool/execute` on one node, one at a time;
 *    timed from the request to its `ToolInvocationCompleted` event arriving at an `/api/ws/events`
 *    subscriber — on the same node without cluster (baseline), on another node with cluster.
 * 2. A rate-limited request (auth on, an API key, limits 10^9): `GET /api/v1/nothing` (404 after
 *    the limit check), one at a time — in-memory limiter (baseline) vs the NATS KV store.
 *
 * Environment: BENCH_CLUSTER_N (operations per point, default 400).
 * Profile: `node --cpu-prof --import tsx bench/cluster.ts` (the profile covers the gateways too).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
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
  p50: number;
  p99: number;
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

const auth = { auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 1e9, requests_per_hour: 1e9, tool_executions_per_hour: 1e9 } } };
const nats = await startNatsServer();
const single = await gateway(auth);
const a = await gateway({ ...auth, cluster: { nats_url: nats.url, node_id: 'bench_a' } });
const b = await gateway({ ...auth, cluster: { nats_url: nats.url, node_id: 'bench_b' } });
const pid = nats.pid;
const rows: Point[] = [];
rows.push(await eventLatency('events: one process, same node (baseline)', single, single, undefined));
rows.push(await eventLatency('events: cluster, call on A, subscriber on B', a, b, pid));
rows.push(await limitedRequests('rate limit: in memory (baseline)', single, undefined));
rows.push(await limitedRequests('rate limit: NATS KV', a, pid));
console.log(`\nN = ${N} per point, one at a time; CPU = this process (gateways + client) + nats-server, per operation\n`);
console.log('| point | p50 ms | p99 ms | CPU µs/op | p50 vs baseline |');
console.log('|---|---|---|---|---|');
for (const [i, r] of rows.entries()) {
  const base = rows[i - (i % 2)] as Point;
  console.log(`| ${r.name} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.cpuUsPerOp.toFixed(0)} | ${(r.p50 / base.p50).toFixed(2)}× |`);
}
for (const g of [single, a, b]) await g.close();
await nats.dispose();
for (const d of dirs) rmSync(d, { recursive: true, force: true });
