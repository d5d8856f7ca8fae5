/**
 * `npm run bench:tracing`: what OpenTelemetry tracing costs a tool call. Targets: tracing off costs
 * nothing measurable (it is the baseline the others are compared with, and the same build), 1 %
 * sampling ≤ 5 % throughput; 100 % is reported.
 *
 * Three gateways from the tsc build (`node dist/main.js`), one per variant, each pinned to core 1,
 * in-process `demo` upstream, auth off: tracing off (no endpoint), `sample_ratio` 0.01 and 1.0,
 * exporting OTLP/HTTP to a sink in this process (an HTTP server that reads and discards, on the
 * load generator's core 0, so exporting costs the gateway only its own side). wrk (core 0, one
 * thread, bench/mcp-call.lua, every response body checked) drives `tools/call demo-echo` at c=64
 * over one session; requests carry no `traceparent`, so the gateway starts every trace and the
 * ratio decides. Each run goes through the three variants in a rotating order; reported per
 * variant: req/s and gateway CPU µs per call (its process tree, from /proc), mean over runs, and
 * the ratios to tracing off, plus the spans the sink received.
 *
 * Environment: BENCH_DURATION (s per point, default 5), BENCH_RUNS (default 3), BENCH_QUICK=1 (2 s,
 * 1 run), BENCH_CONCURRENCY (default 64). Profile: BENCH_PROFILE=1 runs the gateways under
 * `--cpu-prof` (profiles in bench/results/tracing-profile-*; numbers then not comparable).
 * Writes bench/results/tracing.json.
 */
import { createServer, type Server } from 'node:http';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildGroup, envNumber, runMain, runWrk, wrkVersion, type StartedGateway } from './procs.js';
import { checkLine, fmtInt, mean, openSession, waitForQuiet, writeResults } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const QUICK = process.env['BENCH_QUICK'] === '1';
const DURATION = envNumber('BENCH_DURATION', QUICK ? 2 : 5);
const RUNS = envNumber('BENCH_RUNS', QUICK ? 1 : 3);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 64);
const PROFILE = process.env['BENCH_PROFILE'] === '1';
const LUA = join(ROOT, 'bench', 'mcp-call.lua');

const VARIANTS = [
  { key: 'off', label: 'tracing off', ratio: undefined },
  { key: '1%', label: 'sample_ratio 0.01', ratio: 0.01 },
  { key: '100%', label: 'sample_ratio 1.0', ratio: 1 },
] as const;

const progress = (msg: string): void => void process.stderr.write(`[bench:tracing] ${msg}\n`);
const procs = new ChildGroup(ROOT, progress);

/** An OTLP/HTTP sink that reads every export and counts the spans in it. */
function startSink(): Promise<{ server: Server; url: string; spans: () => number }> {
  let spans = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      spans += text.split('"spanId"').length - 1 - (text.split('"parentSpanId"').length - 1);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`, spans: () => spans })),
  );
}

async function main(): Promise<void> {
  if (wrkVersion() === undefined) throw new Error('wrk is not installed (apt-get install -y wrk)');
  procs.checkPinning();
  mkdirSync(RESULTS, { recursive: true });
  const sink = await startSink();
  progress('building the gateway (tsc)…');
  const build = procs.gatewayBuild(ROOT);
  const gateways = new Map<string, { gw: StartedGateway; session: string }>();
  for (const v of VARIANTS) {
    const log = join(RESULTS, `tracing-gateway-${v.key.replace('%', 'pct')}.log`);
    const gw = await procs.startGateway({
      build,
      config: {
        mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }],
        log_level: 'warn',
        ...(v.ratio !== undefined ? { tracing: { otlp_endpoint: sink.url, sample_ratio: v.ratio } } : {}),
      },
      tmpPrefix: 'tributary-bench-tracing-',
      core: '1',
      log,
      what: `gateway (${v.label})`,
      logs: log,
      healthyOnly: true,
      ...(PROFILE ? { profileDir: join(RESULTS, `tracing-profile-${v.key.replace('%', 'pct')}`) } : {}),
    });
    gateways.set(v.key, { gw, session: await openSession(gw.url, 'bench-tracing') });
  }
  const wrk = (key: string, seconds: number) => {
    const g = gateways.get(key);
    if (!g) throw new Error(`no gateway for ${key}`);
    return runWrk(procs, { script: LUA, url: `${g.gw.url}/mcp`, concurrency: CONCURRENCY, seconds, env: { MCP_SESSION: g.session, MCP_TOOL: 'demo-echo', MCP_MESSAGE: 'hi', MCP_CHECK_BODIES: '1' }, serverPid: g.gw.child.pid ?? 0, core: '0' });
  };
  for (const v of VARIANTS) await wrk(v.key, 2); // warm-up
  const results = new Map<string, { rps: number; cpu: number }[]>(VARIANTS.map((v) => [v.key, []]));
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[(i + run) % VARIANTS.length] ?? VARIANTS[0];
      await waitForQuiet(3000);
      const r = await wrk(v.key, DURATION);
      if (r.point.errors > 0) throw new Error(`${v.key}: ${r.point.errors} failed calls`);
      const cpu = (r.serverCpuSeconds * 1e6) / Math.max(1, r.point.requests);
      results.get(v.key)?.push({ rps: r.point.rps, cpu });
      progress(`run ${run + 1}/${RUNS} ${v.key}: ${fmtInt(r.point.rps)} req/s, ${cpu.toFixed(1)} gateway CPU µs/call`);
    }
  }
  const off = results.get('off') ?? [];
  const baseRps = mean(off.map((x) => x.rps));
  const baseCpu = mean(off.map((x) => x.cpu));
  const lines = [
    `## Tracing cost — tools/call demo-echo, c=${CONCURRENCY}, ${DURATION} s × ${RUNS} run(s), gateway on core 1, wrk + OTLP sink on core 0`,
    '',
    '| variant | req/s | vs off | gateway CPU µs/call | vs off |',
    '|---|---:|---:|---:|---:|',
  ];
  const summary: Record<string, unknown> = {};
  for (const v of VARIANTS) {
    const xs = results.get(v.key) ?? [];
    const rps = mean(xs.map((x) => x.rps));
    const cpu = mean(xs.map((x) => x.cpu));
    summary[v.key] = { rps, cpu_us_per_call: cpu, rps_ratio: rps / baseRps, cpu_ratio: cpu / baseCpu };
    lines.push(`| ${v.label} | ${fmtInt(rps)} | ${(rps / baseRps).toFixed(3)}× | ${cpu.toFixed(1)} | ${(cpu / baseCpu).toFixed(3)}× |`);
  }
  const onePct = summary['1%'] as { rps_ratio: number };
  lines.push('', `Spans received by the sink: ${fmtInt(sink.spans())}.`, '', '### Targets', '');
  lines.push(checkLine({ name: 'throughput at 1 % sampling ÷ tracing off', target: '≥ 0.95', measured: `${onePct.rps_ratio.toFixed(3)}×`, pass: onePct.rps_ratio >= 0.95 }));
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResults(join(RESULTS, 'tracing.json'), { duration_s: DURATION, runs: RUNS, concurrency: CONCURRENCY, spans: sink.spans(), variants: summary });
  sink.server.close();
}

runMain('bench:tracing', procs, main);
