/**
 * `npm run bench:workers`: the worker prototype — does a second uWS worker thread on the same port
 * (SO_REUSEPORT) keep its efficiency? The server is bench/workers-uws.ts (a fixed JSON-RPC reply,
 * no gateway logic: the HTTP layer every worker would run), with N = 0 (main thread only, today's
 * gateway), 1 and 2 worker threads. On this 2-core box the server gets cores 0-1 and wrk (one
 * thread, c=64, bench/mcp-call.lua) shares core 0, so absolute req/s says little; the measure is
 * requests per second of server CPU (its process, every thread, from /proc), and its ratio to N = 1.
 * The 1-minute load average is printed with each point (the machine is shared).
 *
 * Environment: BENCH_DURATION (s, default 5), BENCH_RUNS (default 2), BENCH_CONCURRENCY (64).
 * Profile: `node --cpu-prof --import tsx bench/workers-uws.ts PORT 0` under wrk.
 * Writes bench/results/workers.json.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildGroup, envNumber, freePort, listeningPort, logTo, runMain, runWrk, wrkVersion } from './procs.js';
import { checkLine, fmtInt, mean, writeResults } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const DURATION = envNumber('BENCH_DURATION', 5);
const RUNS = envNumber('BENCH_RUNS', 2);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 64);
const LUA = join(ROOT, 'bench', 'mcp-call.lua');
const VARIANTS = [0, 1, 2] as const;

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

async function main(): Promise<void> {
  if (wrkVersion() === undefined) throw new Error('wrk is not installed (apt-get install -y wrk)');
  procs.checkPinning();
  mkdirSync(RESULTS, { recursive: true });
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
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResults(join(RESULTS, 'workers.json'), { duration_s: DURATION, runs: RUNS, concurrency: CONCURRENCY, variants: summary });
}

runMain('bench:workers', procs, main);
