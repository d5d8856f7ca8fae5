/**
 * `npm run bench:events`: fan-out of `/api/ws/events`, beside raw uWS
 * topic pub/sub in the same run.
 *
 * One publisher, N ∈ {1, 100, 1000} real WebSocket subscribers (`ws` clients), loopback only:
 *
 *   - Tributary: the gateway's tsc build (`node dist/main.js`, as `npm start` runs it) with only the
 *     in-process `demo` upstream. The publisher calls `tools/call demo-echo` on `/mcp` (one MCP
 *     session) at a fixed rate; each call publishes one `ToolInvocationCompleted` on the gateway's
 *     own bus, which `/api/ws/events` fans out. Subscribers send
 *     `{"type":"subscribe","event_types":["ToolInvocationCompleted"]}` (other events, e.g. health
 *     checks, are filtered out by the gateway, so counts are exact).
 *   - raw uWS (baseline): bench/events-fanout-raw.ts; the same publisher `POST /publish`es at the
 *     same rate and the server `app.publish`es the gateway's own event JSON (captured in this run,
 *     new `seq` and `timestamp`) to a topic every subscriber is in.
 *
 * Measured per point: events published (checked responses), deliveries received across all
 * subscribers, deliveries/s = deliveries ÷ (last delivery − first publish), publish-to-deliver
 * latency p50/p99 = subscriber receive time − the event's `timestamp` (stamped by the server at
 * publish, ms resolution, so every latency carries 0–1 ms of rounding; same clock, same machine,
 * same method for both servers), CPU of the server, the subscriber process and the publisher,
 * and server RSS.
 *
 * Then the stalled-subscriber phase (gateway only, fresh gateway): 100 subscribers that pause their
 * sockets after subscribing (`ws._socket.pause()`); events are published until their queues are
 * full (`tributary_subscriber_queue_depth` ≈ 100 × `events.max_queued`, i.e. socket buffers and
 * the gateway's per-connection queues are at their bound), then 100 healthy subscribers join and
 * events flow for 60 s; gateway RSS at the start and at the end of that window (events still
 * flowing), and every healthy subscriber must receive every event, in order, without a warning.
 *
 * Pinning (taskset): servers on core 0; the subscriber process and the publisher on core 1.
 * Two runs per point, interleaved raw/gateway. Prints markdown tables and the targets
 * (PASS/MISS; a MISS never fails the process) and writes bench/results/events-fanout.json.
 *
 * Environment: BENCH_QUICK=1 (1 run, 2 s points, 10 s RSS window), BENCH_EVENTS_DURATION (s per
 * point, default 4), BENCH_EVENTS_RUNS (default 2), BENCH_EVENTS_RATES (events/s per subscriber
 * count, default "1:2000,100:1000,1000:250"), BENCH_EVENTS_RSS_WINDOW (s, default 60),
 * BENCH_EVENTS_RSS_RATE (events/s in that window, default 300), BENCH_PROFILE=1 (gateway under
 * --cpu-prof; top self time over the 1000-subscriber windows), BENCH_QUIET_WAIT (s, default 3: before each
 * point, wait up to this long for other work on the machine to stop), BENCH_EVENTS_BUILD (a directory
 * holding a gateway build — `dist/`, `package.json`, `node_modules` — to run instead of compiling
 * src/; for trying a change to the fan-out path without touching the tree).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PublishResult, SetStats } from './events-fanout-load.js';
import { ChildGroup, IpcClient, envNumber, listeningPort, logTo, runMain } from './procs.js';
import { DISTURBED_PCT, fmtInt, mean, monotonicUs, pct, systemCpuSeconds, treeCpuSeconds, waitForQuiet, writeResults } from './lib.js';
import { mainThreadProfile, selfTimeTable, topSelfTime, type ProfileSummary, type Window } from './profile.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const LOAD = join(BENCH_DIR, 'events-fanout-load.ts');
const RAW = join(BENCH_DIR, 'events-fanout-raw.ts');


const QUICK = (process.env['BENCH_QUICK'] ?? '0') === '1';
const DURATION = envNumber('BENCH_EVENTS_DURATION', QUICK ? 2 : 4);
const RUNS = Math.max(1, Math.round(envNumber('BENCH_EVENTS_RUNS', QUICK ? 1 : 2)));
const WARMUP_S = QUICK ? 0.5 : 1;
const RATES = new Map<number, number>(
  (process.env['BENCH_EVENTS_RATES'] || '1:2000,100:1000,1000:250').split(',').map((pair) => {
    const [n, r] = pair.split(':').map(Number);
    if (!(Number.isInteger(n) && (n as number) > 0 && (r as number) > 0)) throw new Error(`BENCH_EVENTS_RATES: bad entry ${JSON.stringify(pair)} (want N:RATE)`);
    return [n as number, r as number];
  }),
);
const SUBSCRIBER_COUNTS = [...RATES.keys()];
const FANOUT_N = 1000;
const RSS_WINDOW = envNumber('BENCH_EVENTS_RSS_WINDOW', QUICK ? 10 : 60);
const RSS_RATE = envNumber('BENCH_EVENTS_RSS_RATE', 300);
const STALLED = 100;
const HEALTHY = 100;
const PREFILL_RATE = 4000;
const SETTLE_S = QUICK ? 3 : 20;
const PREFILL_MAX_S = QUICK ? 20 : 30;
const MAX_QUEUED = 1000; // the gateway's events.max_queued (set explicitly in its config below)
const MAX_IN_FLIGHT = 32;
const PROFILE = (process.env['BENCH_PROFILE'] ?? '0') === '1';
const QUIET_WAIT = envNumber('BENCH_QUIET_WAIT', QUICK ? 2 : 3);
const SERVER_CORE = '0';
const LOAD_CORE = '1';

function progress(msg: string): void {
  process.stderr.write(`[bench:events] ${msg}\n`);
}

// ---------------------------------------------------------------- processes

const procs = new ChildGroup(ROOT, progress);
const LOGS = 'bench/results/events-*.log';

/** The tsc build of src/ in a temp dir (outside the repo), as bench/run.ts makes it; or BENCH_EVENTS_BUILD. */
function gatewayBuild(): string {
  return procs.gatewayBuild(ROOT, process.env['BENCH_EVENTS_BUILD']);
}

interface Server {
  readonly kind: 'gateway' | 'raw';
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly wsUrl: string;
  readonly windows: Window[];
  readonly profileDir?: string;
}

async function startGateway(label: string, profile: boolean): Promise<Server> {
  const profileDir = profile ? join(RESULTS_DIR, `events-profile-${label}`) : undefined;
  const { child, port, url } = await procs.startGateway({
    build: gatewayBuild(),
    config: { events: { max_queued: MAX_QUEUED }, mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }] },
    tmpPrefix: 'tributary-bench-events-',
    core: SERVER_CORE,
    log: join(RESULTS_DIR, `events-gateway-${label}.log`),
    what: 'gateway',
    logs: LOGS,
    ...(profileDir !== undefined ? { profileDir } : {}),
  });
  return { kind: 'gateway', child, pid: child.pid as number, url, wsUrl: `ws://127.0.0.1:${port}/api/ws/events`, windows: [], ...(profileDir !== undefined ? { profileDir } : {}) };
}

async function startRaw(template: string): Promise<Server> {
  const child = procs.spawnPinned(SERVER_CORE, process.execPath, ['--import', 'tsx', RAW, '0'], { env: { ...process.env, RAW_EVENT_TEMPLATE: template } });
  logTo(child, join(RESULTS_DIR, 'events-raw-uws.log'), false);
  try {
    const port = await listeningPort(child, 'raw uWS server', LOGS);
    return { kind: 'raw', child, pid: child.pid as number, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/events`, windows: [] };
  } catch (err) {
    await procs.stop(child);
    throw err;
  }
}

/** A child of bench/events-fanout-load.ts in `role`, spoken to over IPC. */
function startLoad(role: 'subscribers' | 'publisher'): IpcClient {
  // --max-old-space-size: the subscriber process keeps up to a few million latencies
  const child = procs.spawnPinned(LOAD_CORE, process.execPath, ['--max-old-space-size=2048', '--import', 'tsx', LOAD, role], { ipc: true });
  logTo(child, join(RESULTS_DIR, `events-${role}.log`), true);
  return new IpcClient(child, role, `bench/results/events-${role}.log`);
}

// ---------------------------------------------------------------- measurements

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

const mb = (bytes: number): string => (Number.isFinite(bytes) ? (bytes / 1048576).toFixed(1) : 'n/a');
const fmtMs = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : 'n/a');

/** Samples of /metrics lines `name{labels} value` (first match of `name` with all `labels`). */
async function metric(url: string, name: string, labels = ''): Promise<number> {
  const r = await fetch(`${url}/metrics`);
  const text = await r.text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels !== '' && !rest.includes(labels)) continue;
    return Number(rest.slice(rest.lastIndexOf(' ') + 1));
  }
  return NaN;
}

interface Row {
  server: 'raw uWS' | 'Tributary';
  subscribers: number;
  run: number;
  offered_rate: number;
  publish: PublishResult;
  /** Events published × subscribers. */
  expected: number;
  received: number;
  received_min: number;
  received_max: number;
  out_of_order: number;
  warnings: number;
  seconds: number;
  deliveries_per_s: number;
  latency_ms: SetStats['latency_ms'];
  server_cpu_pct: number;
  subscriber_cpu_pct: number;
  publisher_cpu_pct: number;
  other_cpu_pct: number;
  server_rss_bytes: number;
  server_rss_max_bytes: number;
  /** Time waited before the point for other work on the machine to stop, ms. */
  quiet_wait_ms?: number;
}

interface Ctx {
  subs: IpcClient;
  pub: IpcClient;
}

/** Publishes at `rate` for `seconds` and waits until each subscriber in `set` got every event. */
async function publishAndDrain(ctx: Ctx, server: Server, set: string, rate: number, seconds: number): Promise<{ pub: PublishResult; complete: boolean }> {
  const pub = await ctx.pub.call<PublishResult>('run', { kind: server.kind, url: server.url, rate, seconds, maxInFlight: MAX_IN_FLIGHT });
  // a server that falls behind keeps delivering after the last publish: give it time (≥ 20k deliveries/s), bounded
  const subscribers = (await ctx.subs.call<SetStats>('stats', { set, latency: false })).subscribers;
  const timeoutMs = Math.min(30_000, 5000 + (pub.ok * subscribers) / 20);
  const { complete } = await ctx.subs.call<{ complete: boolean }>('wait', { set, count: pub.ok, timeoutMs });
  return { pub, complete };
}

async function measure(ctx: Ctx, server: Server, set: string, n: number, run: number, rate: number): Promise<Row> {
  await ctx.subs.call('reset', { set });
  // this machine may be shared: wait (bounded) until nothing else runs, and record what did run
  const quiet = await waitForQuiet(QUIET_WAIT * 1000);
  const srv0 = treeCpuSeconds(server.pid);
  const sub0 = treeCpuSeconds(ctx.subs.pid);
  const pub0 = treeCpuSeconds(ctx.pub.pid);
  const sys0 = systemCpuSeconds();
  const t0 = performance.now();
  const w0 = monotonicUs();
  let rssMax = 0;
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, rssBytes(server.pid) || 0);
  }, 250);
  let drained: { pub: PublishResult; complete: boolean };
  try {
    drained = await publishAndDrain(ctx, server, set, rate, DURATION);
  } finally {
    clearInterval(sampler);
  }
  const wall = (performance.now() - t0) / 1000;
  server.windows.push([w0, monotonicUs()]);
  const srvCpu = treeCpuSeconds(server.pid) - srv0;
  const subCpu = treeCpuSeconds(ctx.subs.pid) - sub0;
  const pubCpu = treeCpuSeconds(ctx.pub.pid) - pub0;
  const sys1 = systemCpuSeconds();
  const rss = rssBytes(server.pid);
  const st = await ctx.subs.call<SetStats>('stats', { set });
  const { pub } = drained;
  const seconds = (st.last_recv_wall - pub.start_wall) / 1000;
  const row: Row = {
    server: server.kind === 'raw' ? 'raw uWS' : 'Tributary',
    subscribers: n,
    run,
    offered_rate: rate,
    publish: pub,
    expected: pub.ok * n,
    received: st.received_total,
    received_min: st.received_min,
    received_max: st.received_max,
    out_of_order: st.out_of_order,
    warnings: st.warnings,
    seconds,
    deliveries_per_s: seconds > 0 ? st.received_total / seconds : NaN,
    latency_ms: st.latency_ms,
    server_cpu_pct: (100 * srvCpu) / wall,
    subscriber_cpu_pct: (100 * subCpu) / wall,
    publisher_cpu_pct: (100 * pubCpu) / wall,
    other_cpu_pct: Math.max(0, (100 * (sys1.busy - sys0.busy - srvCpu - subCpu - pubCpu)) / wall),
    server_rss_bytes: rss,
    server_rss_max_bytes: Math.max(rssMax, rss || 0),
    ...(quiet.waitedMs > 100 ? { quiet_wait_ms: quiet.waitedMs } : {}),
  };
  const miss = row.received === row.expected ? 'all delivered' : `${fmtInt(row.received)}/${fmtInt(row.expected)} delivered`;
  progress(
    `${row.server} N=${n} run ${run}: ${fmtInt(pub.ok)} events at ${rate}/s → ${fmtInt(row.deliveries_per_s)} deliveries/s (${miss}), ` +
      `p50 ${fmtMs(st.latency_ms.p50)} ms, p99 ${fmtMs(st.latency_ms.p99)} ms; CPU server ${pct(row.server_cpu_pct)}, subscribers ${pct(row.subscriber_cpu_pct)}, publisher ${pct(row.publisher_cpu_pct)}, other ${pct(row.other_cpu_pct)}; RSS ${mb(rss)} MB`,
  );
  return row;
}

async function warmUp(ctx: Ctx, server: Server, set: string, rate: number): Promise<void> {
  await ctx.subs.call('reset', { set });
  const { pub, complete } = await publishAndDrain(ctx, server, set, rate, WARMUP_S);
  if (pub.failed > 0 || !complete) progress(`${server.kind} warm-up: ${pub.failed} failed publishes, drained: ${complete}`);
}

// ---------------------------------------------------------------- phases

/** One event from the gateway, as a subscriber receives it (template for the raw server). */
async function captureEvent(ctx: Ctx, gw: Server): Promise<string> {
  await ctx.subs.call('connect', { set: 'probe', url: gw.wsUrl, n: 1 });
  await publishAndDrain(ctx, gw, 'probe', 10, 0.2);
  const st = await ctx.subs.call<SetStats>('stats', { set: 'probe', latency: false });
  await ctx.subs.call('close', { set: 'probe' });
  if (st.sample === undefined || st.received_min < 1) throw new Error('the probe subscriber received no event from the gateway');
  const e = JSON.parse(st.sample) as { event_type?: string; mcp_server_id?: string };
  if (e.event_type !== 'ToolInvocationCompleted' || e.mcp_server_id !== 'demo') throw new Error(`unexpected probe event: ${st.sample}`);
  return st.sample;
}

async function fanoutPhase(ctx: Ctx, gw: Server, raw: Server): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of SUBSCRIBER_COUNTS) {
    const rate = RATES.get(n) as number;
    const t0 = Date.now();
    await ctx.subs.call('connect', { set: `raw-${n}`, url: raw.wsUrl, n });
    await ctx.subs.call('connect', { set: `gw-${n}`, url: gw.wsUrl, n });
    progress(`N=${n}: ${n} subscribers on each server connected in ${Date.now() - t0} ms; ${rate} events/s for ${DURATION} s, ${RUNS} run(s)`);
    await warmUp(ctx, raw, `raw-${n}`, rate);
    await warmUp(ctx, gw, `gw-${n}`, rate);
    for (let run = 1; run <= RUNS; run++) {
      rows.push(await measure(ctx, raw, `raw-${n}`, n, run, rate));
      rows.push(await measure(ctx, gw, `gw-${n}`, n, run, rate));
    }
    if (n !== FANOUT_N) {
      // keep only the 1000-subscriber windows for the profile
      gw.windows.length = 0;
      raw.windows.length = 0;
    }
    await ctx.subs.call('close', { set: `raw-${n}` });
    await ctx.subs.call('close', { set: `gw-${n}` });
  }
  return rows;
}

interface RssResult {
  stalled: number;
  healthy: number;
  rate: number;
  window_s: number;
  prefill_s: number;
  prefill_events: number;
  queue_depth_after_prefill: number;
  queue_depth_end: number;
  dropped_total_end: number;
  connections_end: number;
  /** Gateway RSS before the stalled subscribers connected, and after their queues were full. */
  rss_baseline_bytes: number;
  rss_prefilled_bytes: number;
  rss_start_bytes: number;
  rss_end_bytes: number;
  rss_min_bytes: number;
  rss_max_bytes: number;
  rss_samples: [number, number][];
  /** [s into the window, V8 heap total bytes] every 5 s. */
  heap_samples: [number, number][];
  change: number;
  published: number;
  failed_publishes: number;
  healthy_stats: Omit<SetStats, 'sample'>;
  healthy_all_received: boolean;
}

async function rssPhase(ctx: Ctx, gw: Server): Promise<RssResult> {
  const depthLabel = 'endpoint="/api/ws/events"';
  const rssBaseline = rssBytes(gw.pid);
  await ctx.subs.call('connect', { set: 'stalled', url: gw.wsUrl, n: STALLED, stalled: true });
  // fill the stalled sockets' kernel buffers, uWS buffers and the gateway's per-connection queues
  const full = 0.95 * STALLED * MAX_QUEUED;
  const p0 = Date.now();
  let prefillEvents = 0;
  let depth = 0;
  while (Date.now() - p0 < PREFILL_MAX_S * 1000) {
    const r = await ctx.pub.call<PublishResult>('run', { kind: 'gateway', url: gw.url, rate: PREFILL_RATE, seconds: 2, maxInFlight: MAX_IN_FLIGHT });
    prefillEvents += r.ok;
    depth = await metric(gw.url, 'tributary_subscriber_queue_depth', depthLabel);
    if (depth >= full) break;
  }
  const prefillS = (Date.now() - p0) / 1000;
  progress(`RSS: ${STALLED} stalled subscribers; ${fmtInt(prefillEvents)} events in ${prefillS.toFixed(1)} s brought their queues to ${fmtInt(depth)} (bound ${fmtInt(STALLED * MAX_QUEUED)})`);
  const rssPrefilled = rssBytes(gw.pid);
  await ctx.subs.call('connect', { set: 'healthy', url: gw.wsUrl, n: HEALTHY });
  // settle at the window's rate first (the prefill ran hotter), then measure
  const settle = await ctx.pub.call<PublishResult>('run', { kind: 'gateway', url: gw.url, rate: RSS_RATE, seconds: SETTLE_S, maxInFlight: MAX_IN_FLIGHT });
  await ctx.subs.call('wait', { set: 'healthy', count: settle.ok, timeoutMs: 5000 });
  await ctx.subs.call('reset', { set: 'healthy' });

  const samples: [number, number][] = [];
  // V8 heap (prom-client's default metrics) every 5 s beside RSS, to tell heap changes from the rest
  const heapSamples: [number, number][] = [];
  const heapTotal = (t: number): void => {
    metric(gw.url, 'tributary_nodejs_heap_size_total_bytes').then(
      (v) => heapSamples.push([t, v]),
      () => undefined,
    );
  };
  const start = Date.now();
  const rssStart = rssBytes(gw.pid);
  samples.push([0, rssStart]);
  heapTotal(0);
  let rssEnd = NaN;
  let tick = 0;
  const sampler = setInterval(() => {
    const t = (Date.now() - start) / 1000;
    samples.push([t, rssBytes(gw.pid)]);
    if (++tick % 5 === 0) heapTotal(t);
  }, 1000);
  // the end reading is taken inside the window, while the publisher is still sending
  const endTimer = setTimeout(() => {
    rssEnd = rssBytes(gw.pid);
  }, RSS_WINDOW * 1000 - 250);
  progress(`RSS: ${HEALTHY} healthy subscribers joined; ${RSS_RATE} events/s for ${RSS_WINDOW} s; gateway RSS at start ${mb(rssStart)} MB`);
  let pub: PublishResult;
  try {
    pub = await ctx.pub.call<PublishResult>('run', { kind: 'gateway', url: gw.url, rate: RSS_RATE, seconds: RSS_WINDOW, maxInFlight: MAX_IN_FLIGHT });
  } finally {
    clearInterval(sampler);
    clearTimeout(endTimer);
  }
  if (!Number.isFinite(rssEnd)) rssEnd = rssBytes(gw.pid);
  samples.push([RSS_WINDOW, rssEnd]);
  const heapEnd = await metric(gw.url, 'tributary_nodejs_heap_size_total_bytes').catch(() => NaN);
  heapSamples.sort((x, y) => x[0] - y[0]);
  if (heapSamples.every(([t]) => t < RSS_WINDOW - 1)) heapSamples.push([RSS_WINDOW, heapEnd]);
  await ctx.subs.call('wait', { set: 'healthy', count: pub.ok, timeoutMs: 10_000 });
  const { sample: _s, ...healthy } = await ctx.subs.call<SetStats>('stats', { set: 'healthy', latency: true });
  const queueEnd = await metric(gw.url, 'tributary_subscriber_queue_depth', depthLabel);
  const dropped = await metric(gw.url, 'tributary_events_dropped_total');
  const conns = await metric(gw.url, 'tributary_websocket_connections', depthLabel);
  const values = samples.map(([, v]) => v).filter(Number.isFinite);
  const all = healthy.subscribers === HEALTHY && healthy.closed === 0 && healthy.received_min === pub.ok && healthy.received_max === pub.ok && healthy.out_of_order === 0 && healthy.warnings === 0;
  const result: RssResult = {
    stalled: STALLED,
    healthy: HEALTHY,
    rate: RSS_RATE,
    window_s: RSS_WINDOW,
    prefill_s: prefillS,
    prefill_events: prefillEvents,
    queue_depth_after_prefill: depth,
    queue_depth_end: queueEnd,
    dropped_total_end: dropped,
    connections_end: conns,
    rss_baseline_bytes: rssBaseline,
    rss_prefilled_bytes: rssPrefilled,
    rss_start_bytes: rssStart,
    rss_end_bytes: rssEnd,
    rss_min_bytes: Math.min(...values),
    rss_max_bytes: Math.max(...values),
    rss_samples: samples,
    heap_samples: heapSamples,
    change: (rssEnd - rssStart) / rssStart,
    published: pub.ok,
    failed_publishes: pub.failed,
    healthy_stats: healthy,
    healthy_all_received: all,
  };
  progress(
    `RSS: end ${mb(rssEnd)} MB (${(100 * result.change).toFixed(1)}%), min ${mb(result.rss_min_bytes)}, max ${mb(result.rss_max_bytes)}; ` +
      `healthy: ${fmtInt(healthy.received_min)}–${fmtInt(healthy.received_max)} of ${fmtInt(pub.ok)} events each, ${healthy.out_of_order} out of order, ${healthy.warnings} warnings; queue depth ${fmtInt(queueEnd)}, dropped ${fmtInt(dropped)}`,
  );
  await ctx.subs.call('close', { set: 'healthy' });
  await ctx.subs.call('close', { set: 'stalled' });
  return result;
}

// ---------------------------------------------------------------- output

/** Runs of a point: the undisturbed ones when there are any (other CPU ≤ {@link DISTURBED_PCT}). */
function rowsOf(rows: Row[], server: Row['server'], n: number): Row[] {
  const all = rows.filter((r) => r.server === server && r.subscribers === n);
  const quiet = all.filter((r) => r.other_cpu_pct <= DISTURBED_PCT);
  return quiet.length > 0 ? quiet : all;
}

/** "mean of 2 runs" / "1 undisturbed run of 2" / "2 runs, all disturbed". */
function runsNote(rows: Row[], server: Row['server'], n: number): string {
  const all = rows.filter((r) => r.server === server && r.subscribers === n).length;
  const used = rowsOf(rows, server, n);
  if (used.some((r) => r.other_cpu_pct > DISTURBED_PCT)) return `${all} run${all === 1 ? '' : 's'}, all disturbed`;
  return used.length === all ? `mean of ${all} run${all === 1 ? '' : 's'}` : `${used.length} undisturbed run${used.length === 1 ? '' : 's'} of ${all}`;
}

function pointTable(rows: Row[]): string[] {
  const out = [
    '| subscribers | server | run | offered events/s | events published | delivered / expected | deliveries/s | p50 (ms) | p99 (ms) | server CPU | subscriber proc CPU | publisher CPU | other CPU | server RSS (MB) |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const delivered = r.received === r.expected ? `all ${fmtInt(r.expected)}` : `${fmtInt(r.received)} / ${fmtInt(r.expected)}`;
    const failed = r.publish.failed > 0 ? ` (${r.publish.failed} failed)` : '';
    out.push(
      `| ${fmtInt(r.subscribers)} | ${r.server} | ${r.run} | ${fmtInt(r.offered_rate)} | ${fmtInt(r.publish.ok)}${failed} | ${delivered} | ${fmtInt(r.deliveries_per_s)} | ${fmtMs(r.latency_ms.p50)} | ${fmtMs(r.latency_ms.p99)} | ${pct(r.server_cpu_pct)} | ${pct(r.subscriber_cpu_pct)}${r.subscriber_cpu_pct >= 90 ? ' ⚠' : ''} | ${pct(r.publisher_cpu_pct)} | ${pct(r.other_cpu_pct)}${r.other_cpu_pct > DISTURBED_PCT ? ' ⚠' : ''} | ${mb(r.server_rss_max_bytes)} |`,
    );
  }
  return out;
}

function summaryTable(rows: Row[]): string[] {
  const out = [
    '| subscribers | raw uWS deliveries/s | Tributary deliveries/s | ratio | raw p99 (ms) | Tributary p99 (ms) | raw CPU µs/delivery | Tributary CPU µs/delivery | Tributary RSS max (MB) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const n of SUBSCRIBER_COUNTS) {
    const r = rowsOf(rows, 'raw uWS', n);
    const g = rowsOf(rows, 'Tributary', n);
    const rd = mean(r.map((x) => x.deliveries_per_s));
    const gd = mean(g.map((x) => x.deliveries_per_s));
    // server CPU per delivery: CPU% × wall ÷ deliveries (includes the publish path: HTTP + MCP + upstream for Tributary)
    const perDelivery = (xs: Row[]): number => mean(xs.map((x) => (x.server_cpu_pct / 100) * 1e6 / x.deliveries_per_s));
    out.push(
      `| ${fmtInt(n)} | ${fmtInt(rd)} | ${fmtInt(gd)} | ${(gd / rd).toFixed(2)} | ${fmtMs(mean(r.map((x) => x.latency_ms.p99)))} | ${fmtMs(mean(g.map((x) => x.latency_ms.p99)))} | ${perDelivery(r).toFixed(2)} | ${perDelivery(g).toFixed(2)} | ${mb(Math.max(...g.map((x) => x.server_rss_max_bytes)))} |`,
    );
  }
  return out;
}

function profileLines(p: ProfileSummary | undefined): string[] {
  if (!p) return [];
  return [
    '',
    `### Gateway CPU profile at ${FANOUT_N} subscribers (top self time: ${p.busy_ms.toFixed(0)} ms busy of ${p.window_ms.toFixed(0)} ms sampled; --cpu-prof slows the gateway)`,
    '',
    ...selfTimeTable(p),
  ];
}

function readProfile(gw: Server): ProfileSummary | undefined {
  if (gw.profileDir === undefined) return undefined;
  try {
    return topSelfTime(mainThreadProfile(gw.profileDir, gw.pid), gw.windows, 25, gatewayBuild());
  } catch (err) {
    progress(`profile not read: ${(err as Error).message}`);
    return undefined;
  }
}

function rssLines(rss: RssResult): string[] {
  return [
    '',
    `### ${rss.stalled} stalled subscribers, ${rss.window_s} s (fresh gateway)`,
    '',
    `${rss.stalled} subscribers paused their sockets after subscribing; ${fmtInt(rss.prefill_events)} events at ${PREFILL_RATE}/s over ${rss.prefill_s.toFixed(1)} s filled their queues ` +
      `(queue depth ${fmtInt(rss.queue_depth_after_prefill)}, bound ${fmtInt(rss.stalled * MAX_QUEUED)}) before the window (gateway RSS ${mb(rss.rss_baseline_bytes)} MB before they connected, ${mb(rss.rss_prefilled_bytes)} MB with their queues full). Then ${rss.healthy} healthy subscribers joined, ${SETTLE_S} s of events at the window's rate let the gateway settle, and ` +
      `${fmtInt(rss.published)} events were published at ${rss.rate}/s${rss.failed_publishes > 0 ? ` (${rss.failed_publishes} failed)` : ''} in the window; RSS read at its start and 0.25 s before its end, events flowing.`,
    '',
    '| gateway RSS start (MB) | end (MB) | change | min (MB) | max (MB) | healthy: events each (min–max) | in order | warnings | queue depth at end | events dropped (total) | /api/ws/events connections at end |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${mb(rss.rss_start_bytes)} | ${mb(rss.rss_end_bytes)} | ${(100 * rss.change).toFixed(1)}% | ${mb(rss.rss_min_bytes)} | ${mb(rss.rss_max_bytes)} | ${fmtInt(rss.healthy_stats.received_min)}–${fmtInt(rss.healthy_stats.received_max)} of ${fmtInt(rss.published)} | ${rss.healthy_stats.out_of_order === 0 ? 'yes' : `no (${rss.healthy_stats.out_of_order})`} | ${rss.healthy_stats.warnings} | ${fmtInt(rss.queue_depth_end)} | ${fmtInt(rss.dropped_total_end)} | ${fmtInt(rss.connections_end)} |`,
    '',
    `Healthy subscribers' latency in the window: p50 ${fmtMs(rss.healthy_stats.latency_ms.p50)} ms, p99 ${fmtMs(rss.healthy_stats.latency_ms.p99)} ms.`,
    '',
    `Gateway RSS over the window (s: MB): ${rss.rss_samples
      .filter(([t], i, all) => i === all.length - 1 || Math.round(t) % 5 === 0)
      .map(([t, v]) => `${Math.round(t)}: ${mb(v)}`)
      .join(', ')}.`,
    '',
    `V8 heap total over the window (s: MB, from /metrics): ${rss.heap_samples.map(([t, v]) => `${Math.round(t)}: ${mb(v)}`).join(', ')}.`,
  ];
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  procs.checkPinning();
  if (cpus().length < 2) progress(`only ${cpus().length} CPU: subscribers and servers share a core`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const started = Date.now();
  progress(`building the gateway with tsc${QUICK ? ' (BENCH_QUICK)' : ''}`);
  gatewayBuild();

  const subs = startLoad('subscribers');
  const pub = startLoad('publisher');
  const ctx: Ctx = { subs, pub };
  let gw = await startGateway('fanout', PROFILE);
  const template = await captureEvent(ctx, gw);
  const raw = await startRaw(template);
  progress(`event payload ${Buffer.byteLength(template)} B: ${template}`);

  const rows = await fanoutPhase(ctx, gw, raw);
  await procs.stop(raw.child);
  await procs.stop(gw.child);
  const profile = readProfile(gw);

  let rss: RssResult | undefined;
  if (RSS_WINDOW > 0) {
    gw = await startGateway('rss', false);
    rss = await rssPhase(ctx, gw);
    await procs.stop(gw.child);
  }

  // ---- targets
  const rawRate = mean(rowsOf(rows, 'raw uWS', FANOUT_N).map((r) => r.deliveries_per_s));
  const gwRate = mean(rowsOf(rows, 'Tributary', FANOUT_N).map((r) => r.deliveries_per_s));
  const ratio = gwRate / rawRate;
  const rawRows = rowsOf(rows, 'raw uWS', FANOUT_N);
  const gwRows = rowsOf(rows, 'Tributary', FANOUT_N);
  const offered = (RATES.get(FANOUT_N) ?? NaN) * FANOUT_N;
  const notes: string[] = [];
  if (rawRows.length > 0 && rawRows.every((r) => r.deliveries_per_s >= 0.97 * offered)) {
    notes.push('raw uWS kept up with the offered rate, so its capacity is at least its figure and the true capacity ratio is at most the one shown');
  }
  if (rawRows.some((r) => r.subscriber_cpu_pct >= 90)) notes.push('the subscriber process was near saturation (≥ 90% of its core) in a raw uWS run, so the raw figure is bounded by the client');
  if (gwRows.some((r) => r.server_cpu_pct >= 90 && r.deliveries_per_s < 0.97 * offered)) notes.push('Tributary fell behind with its core saturated (server CPU ≥ 90%)');
  const allComplete = rows.every((r) => r.received === r.expected && r.out_of_order === 0);
  const verdict = (pass: boolean | undefined): string => (pass === undefined ? 'N/A ' : pass ? 'PASS' : 'MISS');
  const fanPass = Number.isFinite(ratio) ? ratio >= 0.7 : undefined;
  const rssPass = rss && Number.isFinite(rss.change) ? Math.abs(rss.change) <= 0.1 : undefined;

  const lines: string[] = [];
  lines.push(`## Tributary event fan-out — /api/ws/events vs raw uWS publish, ${DURATION} s per point, ${RUNS} run${RUNS === 1 ? '' : 's'} each${QUICK ? ' (BENCH_QUICK)' : ''}`);
  lines.push('');
  lines.push(
    `Servers pinned to core ${SERVER_CORE}; the subscriber process (all \`ws\` clients, one Node process) and the publisher pinned to core ${LOAD_CORE}. ` +
      'Tributary publishes through its own bus: the publisher calls `tools/call demo-echo` on `/mcp` (in-process demo upstream), one `ToolInvocationCompleted` per call; ' +
      'raw uWS gets `POST /publish` at the same rate and `app.publish`es the same event JSON to one topic. ' +
      'deliveries/s = events received across all subscribers ÷ (last delivery − first publish). ' +
      'Latency = subscriber receive time − the event\'s `timestamp` (set by the server when it publishes; ms resolution, so 0–1 ms of every figure is rounding). ' +
      'CPU: % of one core over the point; ⚠ on the subscriber process = it was (near) saturated, so that point measures the client, not the server; ' +
      `"other CPU" is machine-wide CPU not charged to the measured processes (this machine may be shared); ⚠ marks points above ${DISTURBED_PCT}% (disturbed), which the summary and targets skip when an undisturbed run exists. ` +
      `The gateway runs its tsc build (\`node dist/main.js\`).${PROFILE ? ' BENCH_PROFILE: the fan-out gateway ran under --cpu-prof (slower).' : ''}`,
  );
  lines.push('', `Event payload: ${Buffer.byteLength(template)} B (\`${template.replace(/`/g, "'")}\`).`);
  lines.push('', '### Summary (mean of runs)', '', ...summaryTable(rows));
  lines.push(
    '',
    'Where both servers delivered at the offered rate the ratio is ≈ 1.00: Tributary sustained that rate, which says nothing about equal capacity; ' +
      'CPU µs/delivery (server CPU ÷ deliveries, the publish path included: HTTP + MCP + upstream + store for Tributary, HTTP for raw uWS) compares the cost.',
  );
  lines.push('', '### Points', '', ...pointTable(rows));
  lines.push(...profileLines(profile));
  if (rss) lines.push(...rssLines(rss));
  lines.push('', '### Targets', '');
  lines.push(
    `- ${verdict(fanPass)} fan-out at ${FANOUT_N} subscribers: Tributary ÷ raw uWS deliveries/s = ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'} ` +
      `(${fmtInt(gwRate)} / ${fmtInt(rawRate)} at ${fmtInt(RATES.get(FANOUT_N) ?? NaN)} events/s offered; ${runsNote(rows, 'Tributary', FANOUT_N)} / ${runsNote(rows, 'raw uWS', FANOUT_N)}) (target ≥ 0.70)` +
      (notes.length > 0 ? `; ${notes.join('; ')}` : ''),
  );
  if (rss) {
    lines.push(
      `- ${verdict(rssPass)} gateway RSS with ${STALLED} stalled subscribers over ${rss.window_s} s: ${(100 * rss.change).toFixed(1)}% (${mb(rss.rss_start_bytes)} → ${mb(rss.rss_end_bytes)} MB) (target within ±10%)${rss.change < -0.1 ? ' — RSS fell, it did not grow (see the timeline above)' : ''}`,
    );
    lines.push(
      `- ${verdict(rss.healthy_all_received)} healthy subscribers beside the stalled ones received every event, in order, no warning: ` +
        `${fmtInt(rss.healthy_stats.received_min)}–${fmtInt(rss.healthy_stats.received_max)} of ${fmtInt(rss.published)} each, ${rss.healthy_stats.out_of_order} out of order, ${rss.healthy_stats.warnings} warnings, ${rss.healthy_stats.closed} closed`,
    );
  } else {
    lines.push('- N/A  RSS with stalled subscribers: skipped (BENCH_EVENTS_RSS_WINDOW=0)');
  }
  lines.push(`- info: fan-out points — every subscriber received every published event, in order: ${allComplete ? 'yes' : 'NO (see the points table)'}`);
  lines.push('', `(${((Date.now() - started) / 1000).toFixed(0)} s total; results in bench/results/events-fanout.json)`);
  process.stdout.write(lines.join('\n') + '\n');

  writeResults(join(RESULTS_DIR, 'events-fanout.json'), {
    settings: { quick: QUICK, duration_s: DURATION, runs: RUNS, rates: Object.fromEntries(RATES), max_in_flight: MAX_IN_FLIGHT, max_queued: MAX_QUEUED, pinned: procs.pinning, server_core: SERVER_CORE, load_core: LOAD_CORE, profile: PROFILE },
    event_payload: template,
    rows,
    rss,
    profile,
    checks: { fanout_ratio: ratio, fanout_pass: fanPass, rss_change: rss?.change, rss_pass: rssPass, healthy_all_received: rss?.healthy_all_received, all_complete: allComplete },
  });

  subs.child.disconnect();
  pub.child.disconnect();
}

runMain('bench:events', procs, main);
