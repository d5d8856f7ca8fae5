/**
 * `npm run bench:workers`: does `server.workers` keep its efficiency? Two parts, each a table:
 *
 *   gateway    the gateway (dist/main.js) with `server.workers` 1 and 2: `tools/call demo-echo`
 *              (in-process upstream, so the gateway path is measured) over one MCP session at
 *              c=64; with 2, the kernel spreads wrk's connections over the main thread and the
 *              worker thread (SO_REUSEPORT); the worker either carries its requests whole to the
 *              main thread (`server.worker_mcp_calls: false`) or decides them itself and hands
 *              the main thread one call message each (the default)
 *   ws         `/ws` agent sockets (bench/ws-throughput-load.ts: BENCH_WS_CONNECTIONS sockets, one
 *              MCP session each, `tools/call demo-echo` in MCPW frames and in JSON-RPC text, c
 *              requests in flight in total) with `server.workers` 1 and 2: the worker carries every
 *              frame whole to the main thread (`server.worker_mcp_calls: false`, as before the
 *              worker decoded them) or decodes and validates each frame and hands the main thread
 *              the decoded message (the default); with the main thread not listening every socket
 *              is on the worker, so the main thread's CPU per call is the owner's cost alone
 *   prototype  bench/workers-uws.ts (a fixed JSON-RPC reply, no gateway logic: the HTTP layer
 *              alone), with N = 0 (main thread only), 1 and 2 worker threads
 *
 * On this 2-core box the server gets cores 0-1 and wrk (one thread, bench/mcp-call.lua) shares
 * core 0, so absolute req/s says little; the measure is requests per second of server CPU (its
 * process, every thread, from /proc), and its ratio to one thread (issue target: 2 workers ≥ 0.9×
 * of 1). Variants alternate within each run; the 1-minute load average is printed with each point.
 *
 * Environment: BENCH_DURATION (s, default 5), BENCH_RUNS (default 2), BENCH_CONCURRENCY (64),
 * BENCH_PART (`gateway`, `ws`, `prototype` or `all`, default all), BENCH_WS_CONNECTIONS (8),
 * BENCH_WS_MODES (`ws-mcpw,ws-text`; also `ws-mcpw-gzip`), BENCH_WS_MESSAGE_BYTES (echoed text, default `hi`),
 * BENCH_BASELINE (a checkout to compare with, e.g. `git worktree add /tmp/base main` plus a
 * `node_modules` link: its build is one more `/ws` variant, alternated with the others).
 * Profile: `node --cpu-prof dist/main.js --config <a config with server.workers: 2>` under wrk
 * (the profile is the main thread's; `--cpu-prof` also writes one per worker thread).
 * Writes bench/results/workers.json.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { ChildGroup, envNumber, freePort, listeningPort, logTo, runMain, runWrk, signalGroup, wrkVersion, type StartedGateway } from './procs.js';
import { checkLine, fmtInt, mean, openSession, treeCpuSeconds, waitForQuiet, writeResults } from './lib.js';
import type { LoadConfig, LoadMode, LoadResult } from './ws-throughput-load.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const DURATION = envNumber('BENCH_DURATION', 5);
const RUNS = envNumber('BENCH_RUNS', 2);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 64);
const LUA = join(ROOT, 'bench', 'mcp-call.lua');
const VARIANTS = [0, 1, 2] as const;
/** Gateway variants: `server.workers`, and whether workers decide MCP calls (`server.worker_mcp_calls`). */
const GATEWAY_VARIANTS = [
  { name: '1', workers: 1, calls: true },
  { name: '2, carried', workers: 2, calls: false },
  { name: '2, worker calls', workers: 2, calls: true },
  { name: '2, worker calls, main thread not listening', workers: 2, calls: true, mainListens: false },
] as const;
type GatewayVariant = (typeof GATEWAY_VARIANTS)[number];
const PART = process.env['BENCH_PART'] ?? 'all';

const progress = (msg: string): void => void process.stderr.write(`[bench:workers] ${msg}\n`);
const procs = new ChildGroup(ROOT, progress);
const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';

async function point(n: number): Promise<{ rps: number; cpuPct: number; perCpuSecond: number; load: string }> {
  const port = await freePort();
  const child = procs.spawnPinned('0,1', process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'workers-uws.ts'), String(port), String(n)]);
  logTo(child, join(RESULTS, `workers-${n}.log`), false);
  try {
    await listeningPort(child, `workers-uws (${n})`, 'bench/results/workers-*.log');
    const wrk = (seconds: number) =>
      runWrk(procs, { script: LUA, url: `http://127.0.0.1:${port}/mcp`, concurrency: CONCURRENCY, seconds, env: { MCP_SESSION: '', MCP_TOOL: 'demo-echo', MCP_MESSAGE: 'hello', MCP_CHECK_BODIES: '0' }, serverPid: child.pid ?? 0, core: '0' });
    await wrk(1);
    const before = load();
    const r = await wrk(DURATION);
    if (r.point.errors > 0) throw new Error(`workers ${n}: ${r.point.errors} errors ${JSON.stringify(r.point.error_detail)}`);
    const perCpuSecond = r.point.requests / Math.max(1e-9, r.serverCpuSeconds);
    progress(`workers ${n}: ${fmtInt(r.point.rps)} req/s, server CPU ${Math.round(r.point.server_cpu_pct ?? 0)}%, ${fmtInt(perCpuSecond)} req per CPU-second, load ${before}`);
    return { rps: r.point.rps, cpuPct: r.point.server_cpu_pct ?? 0, perCpuSecond, load: before };
  } finally {
    await procs.stop(child);
  }
}

interface GatewaySample {
  rps: number;
  p50_us: number;
  p99_us: number;
  /** Server CPU (every thread of the gateway process) per call, µs. */
  cpu_us: number;
  per_cpu_s: number;
  /** Share of the measured requests each thread took (main thread first), from /health. */
  shares: number[];
  /** CPU of the main thread alone per call, µs: what bounds throughput when cores are free. */
  main_us: number;
  /** Share of the measured requests the workers decided themselves and the owner served as calls. */
  calls_share: number;
  load: string;
}

/** CPU seconds (user + system) of the process' main thread (its task whose id is the pid), from /proc. */
function mainThreadCpuSeconds(pid: number): number {
  try {
    // fields after the command name (which may hold spaces): utime and stime are the 12th and 13th
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** Requests per thread (main first) and, last, the MCP calls the workers decided. */
async function threadCounts(url: string): Promise<number[]> {
  const r = await fetch(`${url}/health`);
  const body = (await r.json()) as { components: { workers?: { owner: { requests: number }; workers: { requests: number; mcp_calls?: number }[] } } };
  const w = body.components.workers;
  return w === undefined ? [0] : [w.owner.requests, ...w.workers.map((x) => x.requests), w.workers.reduce((a, x) => a + (x.mcp_calls ?? 0), 0)];
}

async function gatewayPoint(build: string, variant: GatewayVariant): Promise<GatewaySample> {
  const workers = variant.workers;
  const log = join(RESULTS, `workers-gateway-${variant.name.replace(/[^a-z0-9]+/g, '-')}.log`);
  const gw: StartedGateway = await procs.startGateway({
    build,
    config: { mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }], log_level: 'warn', server: { workers, worker_mcp_calls: variant.calls, ...('mainListens' in variant ? { main_thread_listens: variant.mainListens } : {}) } },
    tmpPrefix: 'tributary-bench-workers-',
    core: '0,1',
    log,
    what: `gateway (workers ${workers})`,
    logs: log,
  });
  try {
    const session = await openSession(gw.url, 'bench-workers');
    const wrk = (seconds: number) =>
      runWrk(procs, { script: LUA, url: `${gw.url}/mcp`, concurrency: CONCURRENCY, seconds, env: { MCP_SESSION: session, MCP_TOOL: 'demo-echo', MCP_MESSAGE: 'hi', MCP_CHECK_BODIES: '1' }, serverPid: gw.child.pid ?? 0, core: '0' });
    await wrk(1);
    await waitForQuiet(3000);
    const before = load();
    const counts0 = await threadCounts(gw.url);
    const main0 = mainThreadCpuSeconds(gw.child.pid ?? 0);
    const r = await wrk(DURATION);
    const main1 = mainThreadCpuSeconds(gw.child.pid ?? 0);
    const counts1 = await threadCounts(gw.url);
    if (r.point.errors > 0) throw new Error(`workers ${workers}: ${r.point.errors} failed calls ${JSON.stringify(r.point.error_detail)}`);
    const diffs = counts1.map((c, i) => c - (counts0[i] ?? 0));
    const calls = diffs.pop() ?? 0;
    const took = diffs;
    const total = took.reduce((a, b) => a + b, 0);
    const sample: GatewaySample = {
      rps: r.point.rps,
      p50_us: r.point.p50_us,
      p99_us: r.point.p99_us,
      cpu_us: (r.serverCpuSeconds * 1e6) / Math.max(1, r.point.requests),
      per_cpu_s: r.point.requests / Math.max(1e-9, r.serverCpuSeconds),
      shares: total > 0 ? took.map((t) => t / total) : [1],
      main_us: ((main1 - main0) * 1e6) / Math.max(1, r.point.requests),
      calls_share: total > 0 ? calls / total : 0,
      load: before,
    };
    progress(`gateway, workers ${variant.name}: ${fmtInt(sample.rps)} req/s, ${sample.cpu_us.toFixed(1)} server CPU µs/call (main thread ${sample.main_us.toFixed(1)}), ${fmtInt(sample.per_cpu_s)} calls per CPU-second, threads took ${sample.shares.map((x) => `${Math.round(x * 100)}%`).join('/')}, load ${before}`);
    return sample;
  } finally {
    await procs.stop(gw.child);
  }
}

async function gatewayPart(): Promise<{ lines: string[]; summary: Record<string, unknown> }> {
  progress('building the gateway (tsc)…');
  const build = procs.gatewayBuild(ROOT);
  const results = new Map<string, GatewaySample[]>(GATEWAY_VARIANTS.map((v) => [v.name, []]));
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < GATEWAY_VARIANTS.length; i++) {
      const v = GATEWAY_VARIANTS[(i + run) % GATEWAY_VARIANTS.length] ?? GATEWAY_VARIANTS[0];
      results.get(v.name)?.push(await gatewayPoint(build, v));
    }
  }
  const per = (name: string): number => mean((results.get(name) ?? []).map((x) => x.per_cpu_s));
  const main = (name: string): number => mean((results.get(name) ?? []).map((x) => x.main_us));
  const rps = (name: string): number => mean((results.get(name) ?? []).map((x) => x.rps));
  const lines = [
    `## Gateway, server.workers 1 vs 2 (requests carried whole / MCP calls decided in the worker) — tools/call demo-echo over one session, c=${CONCURRENCY}, ${DURATION} s × ${RUNS} run(s); gateway on cores 0-1, wrk on core 0`,
    '',
    '| server.workers | req/s | p50 ms | p99 ms | server CPU µs/call | of it on the main thread | calls per server CPU-second | vs 1 | requests per thread (main/worker) | served as worker calls | load avg (1 min) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|',
  ];
  const summary: Record<string, unknown> = {};
  for (const v of GATEWAY_VARIANTS) {
    const xs = results.get(v.name) ?? [];
    const shares = (xs[0]?.shares ?? []).map((_, i) => mean(xs.map((x) => x.shares[i] ?? 0)));
    const callsShare = mean(xs.map((x) => x.calls_share));
    summary[v.name] = { rps: rps(v.name), cpu_us: mean(xs.map((x) => x.cpu_us)), main_thread_us: main(v.name), per_cpu_second: per(v.name), shares, calls_share: callsShare };
    lines.push(
      `| ${v.name} | ${fmtInt(rps(v.name))} | ${(mean(xs.map((x) => x.p50_us)) / 1000).toFixed(2)} | ${(mean(xs.map((x) => x.p99_us)) / 1000).toFixed(2)} | ${mean(xs.map((x) => x.cpu_us)).toFixed(1)} | ${main(v.name).toFixed(1)} | ${fmtInt(per(v.name))} | ${(per(v.name) / per('1')).toFixed(3)}× | ${shares.map((x) => `${Math.round(x * 100)}%`).join(' / ')} | ${Math.round(callsShare * 100)}% | ${xs.map((x) => x.load).join(', ')} |`,
    );
  }
  const last = GATEWAY_VARIANTS[2].name;
  lines.push(
    '',
    checkLine({ name: 'gateway calls per server CPU-second, workers 2 (worker calls) ÷ workers 1', target: '≥ 0.9', measured: `${(per(last) / per('1')).toFixed(3)}×`, pass: per(last) / per('1') >= 0.9 }),
    `main thread CPU per call: workers 1 ${main('1').toFixed(1)} µs, workers 2 carried ${main(GATEWAY_VARIANTS[1].name).toFixed(1)} µs, workers 2 with worker calls ${main(last).toFixed(1)} µs, and with the main thread not listening ${main(GATEWAY_VARIANTS[3].name).toFixed(1)} µs; req/s ÷ workers 1: ${(rps(last) / rps('1')).toFixed(3)}× and ${(rps(GATEWAY_VARIANTS[3].name) / rps('1')).toFixed(3)}×`,
    '',
  );
  return { lines, summary };
}

const WS_CONNECTIONS = envNumber('BENCH_WS_CONNECTIONS', 8);
const WS_MODES = (process.env['BENCH_WS_MODES'] ?? 'ws-mcpw,ws-text').split(',') as LoadMode[];
/** The echoed text: `hi`, or BENCH_WS_MESSAGE_BYTES letters (e.g. 4096 with ws-mcpw-gzip: every reply gzip'd). */
const WS_MESSAGE_BYTES = envNumber('BENCH_WS_MESSAGE_BYTES', 0);
const WS_MESSAGE = WS_MESSAGE_BYTES > 0 ? Array.from({ length: WS_MESSAGE_BYTES }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('') : 'hi';
/** `/ws` variants: `server.workers`, whether workers decode agent frames (`server.worker_mcp_calls`), whether the main thread listens. */
const WS_VARIANTS_ALL = [
  { name: '1', workers: 1, calls: true, mainListens: true },
  { name: '2, frames carried, main thread not listening', workers: 2, calls: false, mainListens: false },
  { name: '2, baseline build (BENCH_BASELINE), main thread not listening', workers: 2, calls: true, mainListens: false, baseline: true },
  { name: '2, decoded in the worker, main thread not listening', workers: 2, calls: true, mainListens: false },
  { name: '2, decoded in the worker', workers: 2, calls: true, mainListens: true },
] as const;
type WsVariant = { readonly name: string; readonly workers: number; readonly calls: boolean; readonly mainListens: boolean; readonly baseline?: boolean };
/** A checkout to compare with (e.g. `git worktree add` of main, with a node_modules link): its build runs the baseline variant. */
const BASELINE = process.env['BENCH_BASELINE'] ?? '';
const WS_VARIANTS: readonly WsVariant[] = WS_VARIANTS_ALL.filter((v) => !('baseline' in v) || BASELINE !== '');

interface WsSample {
  rps: number;
  p50_us: number;
  p99_us: number;
  cpu_us: number;
  main_us: number;
  /** Sockets on the worker thread ÷ all sockets. */
  worker_sockets: number;
  /** Messages the worker decoded ÷ calls. */
  decoded_share: number;
  load: string;
}

async function wsWorkerCounts(url: string): Promise<{ sockets: number; decoded: number }> {
  const r = await fetch(`${url}/health`);
  const body = (await r.json()) as { components: { workers?: { workers: { websockets_open: number; ws_messages?: number }[] } } };
  const w = body.components.workers?.workers ?? [];
  return { sockets: w.reduce((a, x) => a + x.websockets_open, 0), decoded: w.reduce((a, x) => a + (x.ws_messages ?? 0), 0) };
}

let baselineBuild: string | undefined;

async function wsPoint(ownBuild: string, variant: WsVariant, mode: LoadMode): Promise<WsSample> {
  const build = variant.baseline === true ? (baselineBuild ??= procs.buildGateway(resolve(BASELINE), 'tributary-bench-baseline-')) : ownBuild;
  const log = join(RESULTS, `workers-ws-${mode}-${variant.name.replace(/[^a-z0-9]+/g, '-')}.log`);
  const gw: StartedGateway = await procs.startGateway({
    build,
    config: { mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }], log_level: 'warn', server: { workers: variant.workers, worker_mcp_calls: variant.calls, main_thread_listens: variant.mainListens } },
    tmpPrefix: 'tributary-bench-workers-ws-',
    core: '0,1',
    log,
    what: `gateway (workers ${variant.workers})`,
    logs: log,
  });
  const pid = gw.child.pid ?? 0;
  try {
    const cfg: LoadConfig = { mode, url: gw.url, concurrency: CONCURRENCY, connections: WS_CONNECTIONS, seconds: DURATION, warmup: 1, tool: 'demo-echo', message: WS_MESSAGE };
    await waitForQuiet(3000);
    const before = load();
    const child = procs.spawnPinned('0', process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'ws-throughput-load.ts'), JSON.stringify(cfg)]);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let server0 = 0;
    let server1 = 0;
    let main0 = 0;
    let main1 = 0;
    let counts0: Promise<{ sockets: number; decoded: number }> | undefined;
    let counts1: Promise<{ sockets: number; decoded: number }> | undefined;
    let result: LoadResult | undefined;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.startsWith('LOAD_START ')) {
        server0 = treeCpuSeconds(pid);
        main0 = mainThreadCpuSeconds(pid);
        counts0 = wsWorkerCounts(gw.url);
      } else if (line.startsWith('LOAD_END ')) {
        server1 = treeCpuSeconds(pid);
        main1 = mainThreadCpuSeconds(pid);
        counts1 = wsWorkerCounts(gw.url);
      } else if (line.startsWith('LOAD_RESULT ')) {
        result = JSON.parse(line.slice('LOAD_RESULT '.length)) as LoadResult;
      }
    });
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), (DURATION + 60) * 1000);
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    clearTimeout(timer);
    if (code !== 0 || result === undefined || counts0 === undefined || counts1 === undefined) throw new Error(`load generator (${mode}) failed (exit ${String(code)}): ${stderr.trim().slice(0, 800)}`);
    if (result.errors > 0) throw new Error(`${mode}, workers ${variant.name}: ${result.errors} failed calls ${JSON.stringify(result.error_detail)}`);
    const [c0, c1] = [await counts0, await counts1];
    const sample: WsSample = {
      rps: result.rps,
      p50_us: result.p50_us,
      p99_us: result.p99_us,
      cpu_us: ((server1 - server0) * 1e6) / Math.max(1, result.requests),
      main_us: ((main1 - main0) * 1e6) / Math.max(1, result.requests),
      worker_sockets: c1.sockets / WS_CONNECTIONS,
      decoded_share: (c1.decoded - c0.decoded) / Math.max(1, result.requests),
      load: before,
    };
    progress(`${mode}, workers ${variant.name}: ${fmtInt(sample.rps)} calls/s, ${sample.cpu_us.toFixed(1)} server CPU µs/call (main thread ${sample.main_us.toFixed(1)}), sockets on the worker ${Math.round(sample.worker_sockets * 100)}%, decoded there ${Math.round(sample.decoded_share * 100)}%, load ${before}`);
    return sample;
  } finally {
    await procs.stop(gw.child);
  }
}

async function wsPart(): Promise<{ lines: string[]; summary: Record<string, unknown> }> {
  const build = procs.gatewayBuild(ROOT);
  const lines: string[] = [];
  const summary: Record<string, unknown> = {};
  for (const mode of WS_MODES) {
    const results = new Map<string, WsSample[]>(WS_VARIANTS.map((v) => [v.name, []]));
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < WS_VARIANTS.length; i++) {
        const v = WS_VARIANTS[(i + run) % WS_VARIANTS.length];
        if (v !== undefined) results.get(v.name)?.push(await wsPoint(build, v, mode));
      }
    }
    const m = (name: string, f: (x: WsSample) => number): number => mean((results.get(name) ?? []).map(f));
    lines.push(
      `## /ws ${mode}, server.workers 1 vs 2 — tools/call demo-echo (${WS_MESSAGE.length} characters), ${WS_CONNECTIONS} sockets (one session each), c=${CONCURRENCY}, ${DURATION} s × ${RUNS} run(s); gateway on cores 0-1, load generator on core 0`,
      '',
      '| server.workers | calls/s | p50 ms | p99 ms | server CPU µs/call | of it on the main thread | sockets on the worker | messages decoded in the worker | load avg (1 min) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    );
    const modeSummary: Record<string, unknown> = {};
    for (const v of WS_VARIANTS) {
      const xs = results.get(v.name) ?? [];
      modeSummary[v.name] = { rps: m(v.name, (x) => x.rps), cpu_us: m(v.name, (x) => x.cpu_us), main_thread_us: m(v.name, (x) => x.main_us), worker_sockets: m(v.name, (x) => x.worker_sockets), decoded_share: m(v.name, (x) => x.decoded_share) };
      lines.push(
        `| ${v.name} | ${fmtInt(m(v.name, (x) => x.rps))} | ${(m(v.name, (x) => x.p50_us) / 1000).toFixed(2)} | ${(m(v.name, (x) => x.p99_us) / 1000).toFixed(2)} | ${m(v.name, (x) => x.cpu_us).toFixed(1)} | ${m(v.name, (x) => x.main_us).toFixed(1)} (${xs.map((x) => x.main_us.toFixed(1)).join(', ')}) | ${Math.round(m(v.name, (x) => x.worker_sockets) * 100)}% | ${Math.round(m(v.name, (x) => x.decoded_share) * 100)}% | ${xs.map((x) => x.load).join(', ')} |`,
      );
    }
    const carried = m(WS_VARIANTS_ALL[1].name, (x) => x.main_us);
    const decoded = m(WS_VARIANTS_ALL[3].name, (x) => x.main_us);
    const base = BASELINE !== '' ? `, baseline build ${m(WS_VARIANTS_ALL[2].name, (x) => x.main_us).toFixed(1)} µs` : '';
    lines.push('', `main thread CPU per /ws call with every socket on the worker: frames carried ${carried.toFixed(1)} µs${base}, decoded in the worker ${decoded.toFixed(1)} µs (${(decoded / carried).toFixed(3)}× of carried); workers 1: ${m('1', (x) => x.main_us).toFixed(1)} µs`, '');
    summary[mode] = modeSummary;
  }
  return { lines, summary };
}

async function main(): Promise<void> {
  if (wrkVersion() === undefined) throw new Error('wrk is not installed (apt-get install -y wrk)');
  procs.checkPinning();
  mkdirSync(RESULTS, { recursive: true });
  if (PART === 'ws') {
    const ws = await wsPart();
    process.stdout.write(`${ws.lines.join('\n')}\n`);
    writeResults(join(RESULTS, 'workers-ws.json'), { duration_s: DURATION, runs: RUNS, concurrency: CONCURRENCY, connections: WS_CONNECTIONS, ws: ws.summary });
    return;
  }
  const gateway = PART === 'prototype' ? undefined : await gatewayPart();
  if (PART === 'gateway') {
    process.stdout.write(`${gateway?.lines.join('\n') ?? ''}\n`);
    writeResults(join(RESULTS, 'workers.json'), { duration_s: DURATION, runs: RUNS, concurrency: CONCURRENCY, gateway: gateway?.summary });
    return;
  }
  const results = new Map<number, { rps: number; cpuPct: number; perCpuSecond: number; load: string }[]>(VARIANTS.map((n) => [n, []]));
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const n = VARIANTS[(i + run) % VARIANTS.length] ?? 0;
      results.get(n)?.push(await point(n));
    }
  }
  const lines = [
    `## uWS worker threads on one port — fixed reply, c=${CONCURRENCY}, ${DURATION} s × ${RUNS} run(s); server on cores 0-1, wrk on core 0`,
    '',
    '| server | req/s | server CPU % | req per server CPU-second | vs 1 worker | load avg (1 min) |',
    '|---|---:|---:|---:|---:|---|',
  ];
  const per = (n: number): number => mean((results.get(n) ?? []).map((x) => x.perCpuSecond));
  const summary: Record<string, unknown> = {};
  for (const n of VARIANTS) {
    const xs = results.get(n) ?? [];
    summary[String(n)] = { rps: mean(xs.map((x) => x.rps)), cpu_pct: mean(xs.map((x) => x.cpuPct)), per_cpu_second: per(n) };
    lines.push(`| ${n === 0 ? 'main thread only' : `${n} worker thread${n > 1 ? 's' : ''}`} | ${fmtInt(mean(xs.map((x) => x.rps)))} | ${Math.round(mean(xs.map((x) => x.cpuPct)))} | ${fmtInt(per(n))} | ${(per(n) / per(1)).toFixed(3)}× | ${xs.map((x) => x.load).join(', ')} |`);
  }
  lines.push('', checkLine({ name: 'req per CPU-second, 2 workers ÷ 1 worker', target: '≥ 0.9', measured: `${(per(2) / per(1)).toFixed(3)}×`, pass: per(2) / per(1) >= 0.9 }));
  process.stdout.write(`${[...(gateway?.lines ?? []), ...lines].join('\n')}\n`);
  writeResults(join(RESULTS, 'workers.json'), { duration_s: DURATION, runs: RUNS, concurrency: CONCURRENCY, ...(gateway ? { gateway: gateway.summary } : {}), variants: summary });
}

runMain('bench:workers', procs, main);
