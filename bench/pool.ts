/**
 * `npm run bench:pool`: throughput of `tools/call everything-echo` (server-everything over stdio)
 * with `stdio_config.pool_size` 1 vs 2, as a user runs the gateway (the tsc build,
 * `node dist/main.js`).
 *
 * Placements (every point gets a fresh gateway):
 *   pinned     the gateway AND its stdio processes pinned to core 1 (`taskset -c 1`; children
 *              inherit it), wrk on core 0 — the standard case of `npm run bench`. One core holds
 *              every process of the pool, so this measures what a pool costs, not what it gains.
 *   two-cores  the gateway tree on cores 0-1 (`taskset -c 0,1`), wrk on core 0 as well: the pool's
 *              processes can run beside the gateway, but wrk competes with them for core 0. On this
 *              2-core box that is the only way to give a pool of 2 a second core; a bigger box
 *              would give wrk cores of its own.
 *
 * wrk: one thread, c=64 (BENCH_CONCURRENCY), bench/mcp-call.lua over one session, every body
 * checked. Reported per point: req/s, p50/p99, CPU µs per call of the gateway process alone and of
 * its upstream processes (from /proc: utime + stime of every thread of each tree), and the 1-minute
 * load average before and after the point (the machine is shared; a load average near or above
 * the core count means other work competed).
 *
 * Environment: BENCH_DURATION (s per point, default 5), BENCH_RUNS (default 2), BENCH_QUICK=1
 * (3 s, 1 run), BENCH_CONCURRENCY (default 64). Profile: BENCH_PROFILE=1 runs the gateways under
 * `--cpu-prof` (profiles in bench/results/pool-profile-*; numbers then not comparable).
 * Writes bench/results/pool.json.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageBin } from '../src/config/default.js';
import { ChildGroup, envNumber, runMain, runWrk, wrkVersion } from './procs.js';
import { childPids, checkLine, fmtInt, mean, openSession, treeCpuSeconds, waitForQuiet, writeResults } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const QUICK = process.env['BENCH_QUICK'] === '1';
const DURATION = envNumber('BENCH_DURATION', QUICK ? 3 : 5);
const RUNS = envNumber('BENCH_RUNS', QUICK ? 1 : 2);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 64);
const PROFILE = process.env['BENCH_PROFILE'] === '1';
const LUA = join(ROOT, 'bench', 'mcp-call.lua');

const VARIANTS = [
  { key: 'pinned-1', label: 'pool_size 1, pinned to core 1', pool: 1, core: '1' },
  { key: 'pinned-2', label: 'pool_size 2, pinned to core 1', pool: 2, core: '1' },
  { key: 'two-cores-1', label: 'pool_size 1, cores 0-1 (wrk on 0)', pool: 1, core: '0,1' },
  { key: 'two-cores-2', label: 'pool_size 2, cores 0-1 (wrk on 0)', pool: 2, core: '0,1' },
] as const;

const progress = (msg: string): void => void process.stderr.write(`[bench:pool] ${msg}\n`);
const procs = new ChildGroup(ROOT, progress);

/** The 1-minute load average (/proc/loadavg). */
function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

interface Sample {
  rps: number;
  p50_us: number;
  p99_us: number;
  gateway_us: number;
  upstream_us: number;
  load_before: number;
  load_after: number;
}

async function point(build: string, v: (typeof VARIANTS)[number], run: number): Promise<Sample> {
  const log = join(RESULTS, `pool-gateway-${v.key}.log`);
  const gw = await procs.startGateway({
    build,
    config: {
      mcp_clients: [
        {
          name: 'everything',
          connection_type: 'stdio',
          stdio_config: { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-everything'), 'stdio'], pool_size: v.pool },
        },
      ],
      log_level: 'warn',
    },
    tmpPrefix: 'tributary-bench-pool-',
    core: v.core,
    log,
    what: `gateway (${v.label})`,
    logs: log,
    healthyOnly: true,
    ...(PROFILE ? { profileDir: join(RESULTS, `pool-profile-${v.key}`) } : {}),
  });
  try {
    const session = await openSession(gw.url, 'bench-pool');
    const gatewayPid = gw.child.pid ?? 0;
    const upstreams = childPids(gatewayPid);
    if (upstreams.length !== v.pool) throw new Error(`expected ${v.pool} upstream processes, found ${upstreams.length}`);
    const wrk = (seconds: number) =>
      runWrk(procs, {
        script: LUA,
        url: `${gw.url}/mcp`,
        concurrency: CONCURRENCY,
        seconds,
        env: { MCP_SESSION: session, MCP_TOOL: 'everything-echo', MCP_MESSAGE: 'hi', MCP_CHECK_BODIES: '1' },
        serverPid: gatewayPid,
        core: '0',
      });
    await wrk(1); // warm-up
    await waitForQuiet(3000);
    const up0 = upstreams.reduce((s, p) => s + treeCpuSeconds(p), 0);
    const loadBefore = loadAverage();
    const r = await wrk(DURATION);
    const loadAfter = loadAverage();
    const upCpu = upstreams.reduce((s, p) => s + treeCpuSeconds(p), 0) - up0;
    if (r.point.errors > 0) throw new Error(`${v.key}: ${r.point.errors} failed calls ${JSON.stringify(r.point.error_detail)}`);
    const n = Math.max(1, r.point.requests);
    const sample: Sample = {
      rps: r.point.rps,
      p50_us: r.point.p50_us,
      p99_us: r.point.p99_us,
      gateway_us: ((r.serverCpuSeconds - upCpu) * 1e6) / n,
      upstream_us: (upCpu * 1e6) / n,
      load_before: loadBefore,
      load_after: loadAfter,
    };
    progress(`run ${run + 1}/${RUNS} ${v.key}: ${fmtInt(sample.rps)} req/s, gateway ${sample.gateway_us.toFixed(1)} + upstream ${sample.upstream_us.toFixed(1)} CPU µs/call, load ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}`);
    return sample;
  } finally {
    await procs.stop(gw.child);
  }
}

async function main(): Promise<void> {
  if (wrkVersion() === undefined) throw new Error('wrk is not installed (apt-get install -y wrk)');
  procs.checkPinning();
  mkdirSync(RESULTS, { recursive: true });
  progress('building the gateway (tsc)…');
  const build = procs.gatewayBuild(ROOT);
  const results = new Map<string, Sample[]>(VARIANTS.map((v) => [v.key, []]));
  for (let run = 0; run < RUNS; run++) {
    // rotating order: a burst of other work on the shared machine does not always hit one variant
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[(i + run) % VARIANTS.length] ?? VARIANTS[0];
      results.get(v.key)?.push(await point(build, v, run));
    }
  }
  const agg = (key: string) => {
    const xs = results.get(key) ?? [];
    return {
      rps: mean(xs.map((x) => x.rps)),
      p50_us: mean(xs.map((x) => x.p50_us)),
      p99_us: mean(xs.map((x) => x.p99_us)),
      gateway_us: mean(xs.map((x) => x.gateway_us)),
      upstream_us: mean(xs.map((x) => x.upstream_us)),
      load: `${Math.min(...xs.map((x) => x.load_before)).toFixed(2)}–${Math.max(...xs.map((x) => x.load_after)).toFixed(2)}`,
    };
  };
  const lines = [
    `## Stdio pool — tools/call everything-echo, c=${CONCURRENCY}, ${DURATION} s × ${RUNS} run(s); wrk on core 0; ${process.env['BENCH_NOTE'] ?? ''}`,
    '',
    '| placement | req/s | p50 ms | p99 ms | gateway CPU µs/call | upstream CPU µs/call | load avg (1 min) |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  const summary: Record<string, unknown> = {};
  for (const v of VARIANTS) {
    const a = agg(v.key);
    summary[v.key] = a;
    lines.push(`| ${v.label} | ${fmtInt(a.rps)} | ${(a.p50_us / 1000).toFixed(2)} | ${(a.p99_us / 1000).toFixed(2)} | ${a.gateway_us.toFixed(1)} | ${a.upstream_us.toFixed(1)} | ${a.load} |`);
  }
  const ratio = (a: string, b: string): number => (summary[a] as { rps: number }).rps / (summary[b] as { rps: number }).rps;
  lines.push('', '### Ratios', '');
  lines.push(checkLine({ name: 'pool 2 ÷ pool 1, pinned to one core (the cost of a pool)', target: '≥ 0.9', measured: `${ratio('pinned-2', 'pinned-1').toFixed(3)}×`, pass: ratio('pinned-2', 'pinned-1') >= 0.9 }));
  lines.push(checkLine({ name: 'pool 2 ÷ pool 1, on two cores (what a second core gives)', target: '> 1', measured: `${ratio('two-cores-2', 'two-cores-1').toFixed(3)}×`, pass: ratio('two-cores-2', 'two-cores-1') > 1 }));
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResults(join(RESULTS, 'pool.json'), { duration_s: DURATION, runs: RUNS, concurrency: CONCURRENCY, variants: summary });
}

runMain('bench:pool', procs, main);
