/**
 * `npm run bench:nodes`: efficiency of cluster mode at c=64 — requests per second of server CPU
 * (every gateway process plus nats-server, from /proc) for `tools/call demo-echo` (in-process
 * upstream, so the gateway path is what is measured) over one MCP session:
 *
 *   one          one gateway, no cluster (the baseline)
 *   one-cluster  one gateway in a cluster of one (NATS: event stream, config KV, sealed session id)
 *   three        three gateways in one cluster; three wrk (one per node, c = 64 / 3 each) send the
 *                SAME sealed session id, opened on node 1, to all three nodes
 *   three-alone  three gateways, no cluster, each wrk with a session of its own node: no NATS at
 *                all, so `three` ÷ `three-alone` is what the cluster itself costs, and
 *                `three-alone` ÷ `one` what running three processes on these two cores costs
 *
 * This box has 2 cores shared with other engineers: every gateway and nats-server run on cores
 * 0-1 with wrk (pinned to core 0), so req/s is not scale; the efficiency ratio is the result
 * (issue target: three nodes ≥ 0.8× one). The 1-minute load average before and after each point
 * is printed.
 *
 * Environment: BENCH_DURATION (s per point, default 5), BENCH_RUNS (default 2), BENCH_CONCURRENCY
 * (default 64), BENCH_NODES_BUILD (a directory holding a gateway build — `dist/`, `package.json`,
 * `node_modules` — to measure instead of building this checkout: an A/B of two builds),
 * BENCH_NODES_ONLY (comma-separated setup keys to run, e.g. `one,three`; `one` is always run: it is
 * the baseline). Profile: BENCH_PROFILE=1 (gateways under `--cpu-prof`, bench/results/nodes-profile-*).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildGroup, envNumber, runMain, runWrk, wrkVersion, type StartedGateway } from './procs.js';
import { checkLine, fmtInt, mean, openSession, treeCpuSeconds, waitForQuiet, writeResults } from './lib.js';
import { startNatsServer } from '../test/helpers/nats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const DURATION = envNumber('BENCH_DURATION', 5);
const RUNS = envNumber('BENCH_RUNS', 2);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 64);
const PROFILE = process.env['BENCH_PROFILE'] === '1';
const LUA = join(ROOT, 'bench', 'mcp-call.lua');

const VARIANTS = [
  { key: 'one', label: '1 node, no cluster', nodes: 1, cluster: false },
  { key: 'one-cluster', label: '1 node, cluster of one (NATS)', nodes: 1, cluster: true },
  { key: 'three', label: '3 nodes, one cluster, one session on all three', nodes: 3, cluster: true },
  { key: 'three-alone', label: '3 separate gateways, no cluster, a session each (what 3 processes cost here)', nodes: 3, cluster: false },
] as const;

const progress = (msg: string): void => void process.stderr.write(`[bench:nodes] ${msg}\n`);
const procs = new ChildGroup(ROOT, progress);

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

interface Sample {
  rps: number;
  p50_us: number;
  p99_us: number;
  /** Server CPU (gateways + nats-server) per call, µs. */
  cpu_us: number;
  /** Calls per second of server CPU. */
  per_cpu_s: number;
  load_before: number;
  load_after: number;
  /** Cluster: events per stream message over the point (warm-up included), from `/health`. */
  events_per_message: number | undefined;
}

/** Sum over the nodes of `/health` `components.cluster.events` {published, messages}. */
async function eventCounts(gws: readonly StartedGateway[]): Promise<{ published: number; messages: number; natsOut: number; natsIn: number }> {
  let published = 0;
  let messages = 0;
  let natsOut = 0;
  let natsIn = 0;
  for (const gw of gws) {
    const h = (await (await fetch(`${gw.url}/health`)).json()) as {
      components?: { cluster?: { events?: { published?: number; messages?: number }; nats?: { out_msgs?: number; in_msgs?: number } } };
    };
    published += h.components?.cluster?.events?.published ?? 0;
    messages += h.components?.cluster?.events?.messages ?? 0;
    natsOut += h.components?.cluster?.nats?.out_msgs ?? 0;
    natsIn += h.components?.cluster?.nats?.in_msgs ?? 0;
  }
  return { published, messages, natsOut, natsIn };
}

async function point(build: string, v: (typeof VARIANTS)[number], run: number): Promise<Sample> {
  const nats = v.cluster ? await startNatsServer() : undefined;
  const gws: StartedGateway[] = [];
  try {
    for (let i = 0; i < v.nodes; i++) {
      const log = join(RESULTS, `nodes-gateway-${v.key}-${i}.log`);
      gws.push(
        await procs.startGateway({
          build,
          config: {
            mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }],
            log_level: 'warn',
            ...(nats !== undefined ? { cluster: { nats_url: nats.url, node_id: `n${i}` } } : {}),
          },
          tmpPrefix: 'tributary-bench-nodes-',
          core: '0,1',
          log,
          what: `gateway ${i} (${v.label})`,
          logs: log,
          ...(PROFILE ? { profileDir: join(RESULTS, `nodes-profile-${v.key}-${i}`) } : {}),
        }),
      );
    }
    // one session opened on node 1 and used on all (cluster), or one per node (separate gateways)
    const first = await openSession((gws[0] as StartedGateway).url, 'bench-nodes');
    const sessions = v.cluster ? gws.map(() => first) : [first, ...(await Promise.all(gws.slice(1).map((gw) => openSession(gw.url, 'bench-nodes'))))];
    const per = Math.max(1, Math.round(CONCURRENCY / v.nodes));
    const wrkAll = (seconds: number) =>
      Promise.all(
        gws.map((gw, i) =>
          runWrk(procs, {
            script: LUA,
            url: `${gw.url}/mcp`,
            concurrency: per,
            seconds,
            env: { MCP_SESSION: sessions[i] ?? first, MCP_TOOL: 'demo-echo', MCP_MESSAGE: 'hi', MCP_CHECK_BODIES: '1' },
            serverPid: gw.child.pid ?? 0,
            core: '0',
          }),
        ),
      );
    await wrkAll(1); // warm-up (and every node opens the sealed session once)
    await waitForQuiet(3000);
    const natsPid = nats?.pid;
    const nats0 = natsPid !== undefined ? treeCpuSeconds(natsPid) : 0;
    const loadBefore = loadAverage();
    const rs = await wrkAll(DURATION);
    const loadAfter = loadAverage();
    const natsCpu = natsPid !== undefined ? treeCpuSeconds(natsPid) - nats0 : 0;
    const counts = v.cluster ? await eventCounts(gws) : undefined;
    if (counts !== undefined) progress(`${v.key}: ${counts.published} events in ${counts.messages} stream messages; NATS messages out ${counts.natsOut}, in ${counts.natsIn} (all nodes, warm-up included)`);
    const errors = rs.reduce((n, r) => n + r.point.errors, 0);
    if (errors > 0) throw new Error(`${v.key}: ${errors} failed calls ${JSON.stringify(rs.map((r) => r.point.error_detail))}`);
    const requests = rs.reduce((n, r) => n + r.point.requests, 0);
    const cpu = rs.reduce((s, r) => s + r.serverCpuSeconds, 0) + natsCpu;
    const sample: Sample = {
      rps: rs.reduce((s, r) => s + r.point.rps, 0),
      p50_us: mean(rs.map((r) => r.point.p50_us)),
      p99_us: Math.max(...rs.map((r) => r.point.p99_us)),
      cpu_us: (cpu * 1e6) / Math.max(1, requests),
      per_cpu_s: requests / Math.max(cpu, 1e-9),
      load_before: loadBefore,
      load_after: loadAfter,
      events_per_message: counts !== undefined ? counts.published / Math.max(1, counts.messages) : undefined,
    };
    progress(`run ${run + 1}/${RUNS} ${v.key}: ${fmtInt(sample.rps)} req/s, ${sample.cpu_us.toFixed(1)} server CPU µs/call (nats ${((natsCpu * 1e6) / Math.max(1, requests)).toFixed(1)})${sample.events_per_message !== undefined ? `, ${sample.events_per_message.toFixed(1)} events per stream message` : ''}, load ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}`);
    return sample;
  } finally {
    for (const gw of gws) await procs.stop(gw.child);
    await nats?.dispose();
  }
}

async function main(): Promise<void> {
  if (wrkVersion() === undefined) throw new Error('wrk is not installed (apt-get install -y wrk)');
  procs.checkPinning();
  mkdirSync(RESULTS, { recursive: true });
  progress(process.env['BENCH_NODES_BUILD'] ? `gateway build: ${process.env['BENCH_NODES_BUILD']}` : 'building the gateway (tsc)…');
  const build = procs.gatewayBuild(ROOT, process.env['BENCH_NODES_BUILD']);
  const only = (process.env['BENCH_NODES_ONLY'] ?? '').split(',').filter((k) => k !== '');
  const variants = VARIANTS.filter((v) => v.key === 'one' || only.length === 0 || only.includes(v.key));
  const results = new Map<string, Sample[]>(variants.map((v) => [v.key, []]));
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + run) % variants.length] ?? VARIANTS[0];
      results.get(v.key)?.push(await point(build, v, run));
    }
  }
  const agg = (key: string) => {
    const xs = results.get(key) ?? [];
    return {
      rps: mean(xs.map((x) => x.rps)),
      p50_us: mean(xs.map((x) => x.p50_us)),
      p99_us: mean(xs.map((x) => x.p99_us)),
      cpu_us: mean(xs.map((x) => x.cpu_us)),
      per_cpu_s: mean(xs.map((x) => x.per_cpu_s)),
      load: `${Math.min(...xs.map((x) => x.load_before)).toFixed(2)}–${Math.max(...xs.map((x) => x.load_after)).toFixed(2)}`,
    };
  };
  const base = agg('one');
  const lines = [
    `## Cluster efficiency — tools/call demo-echo, c=${CONCURRENCY}, ${DURATION} s × ${RUNS} run(s); gateways and nats-server on cores 0-1, wrk on core 0`,
    '',
    '| setup | req/s | p50 ms | p99 ms | server CPU µs/call | calls per server CPU-second | vs 1 node | load avg (1 min) |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  const summary: Record<string, unknown> = {};
  for (const v of variants) {
    const a = agg(v.key);
    summary[v.key] = a;
    lines.push(`| ${v.label} | ${fmtInt(a.rps)} | ${(a.p50_us / 1000).toFixed(2)} | ${(a.p99_us / 1000).toFixed(2)} | ${a.cpu_us.toFixed(1)} | ${fmtInt(a.per_cpu_s)} | ${(a.per_cpu_s / base.per_cpu_s).toFixed(3)}× | ${a.load} |`);
  }
  const three = agg('three').per_cpu_s / base.per_cpu_s;
  if (results.has('three')) lines.push('', checkLine({ name: '3 nodes ÷ 1 node, calls per server CPU-second', target: '≥ 0.8', measured: `${three.toFixed(3)}×`, pass: three >= 0.8 }));
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResults(join(RESULTS, 'nodes.json'), { duration_s: DURATION, runs: RUNS, concurrency: CONCURRENCY, variants: summary });
}

runMain('bench:nodes', procs, main);
