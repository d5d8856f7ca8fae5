/**
 * `npm run bench:modern`: what serving a request under MCP 2026-07-28 (per-request `_meta`, no
 * session) costs next to the same request in a session (2025-06-18).
 *
 * Part 1, in process: the per-request work only the modern path does — read and check `_meta`,
 * compare `MCP-Protocol-Version`/`Mcp-Method`/`Mcp-Name` with the body, copy the params without the
 * modern `_meta` keys, create and list the request-scoped session, shape the result (`resultType`,
 * server identity, caching hints) — timed in a loop with `process.cpuUsage()`; the baseline in the
 * same run is the session path's per-request work (session lookup, owner and version checks).
 *
 * Part 2, end to end: one gateway from the tsc build (`node dist/main.js`) pinned to core 1,
 * in-process `demo` upstream, auth off; wrk (core 0, bench/mcp-call.lua, bodies checked) drives
 * `tools/call demo-echo` at c=64, alternating a session-based run and a modern run
 * (`MCP_MODERN=1`). Reported: req/s and gateway CPU µs per call (its process tree, /proc), mean
 * over runs, and the modern ÷ session ratios.
 *
 * Environment: BENCH_DURATION (s per point, default 5), BENCH_RUNS (default 3), BENCH_QUICK=1 (2 s,
 * 1 run), BENCH_CONCURRENCY (default 64), BENCH_LOOP (iterations of part 1, default 200000).
 * Profile: `node --cpu-prof --import tsx bench/modern.ts` profiles part 1; BENCH_PROFILE=1 runs the
 * gateway under `--cpu-prof` (profile in bench/results/modern-profile; numbers then not comparable).
 * Writes bench/results/modern.json.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildGroup, envNumber, runMain, runWrk, wrkVersion } from './procs.js';
import { fmtInt, mean, openSession, waitForQuiet, writeResults } from './lib.js';
import { McpSession, SessionStore } from '../src/handlers/mcp/session.js';
import { MODERN_DEFAULTS, checkHeaders, checkVersion, readMeta, shapeResponse, upstreamParams } from '../src/handlers/mcp/modern.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../src/handlers/mcp/dispatch.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const QUICK = process.env['BENCH_QUICK'] === '1';
const DURATION = envNumber('BENCH_DURATION', QUICK ? 2 : 5);
const RUNS = envNumber('BENCH_RUNS', QUICK ? 1 : 3);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 64);
const LOOP = envNumber('BENCH_LOOP', 200_000);
const PROFILE = process.env['BENCH_PROFILE'] === '1';
const LUA = join(ROOT, 'bench', 'mcp-call.lua');

const progress = (msg: string): void => void process.stderr.write(`[bench:modern] ${msg}\n`);
const procs = new ChildGroup(ROOT, progress);

/** CPU µs per iteration of `fn` over `n` iterations (user + system of this process). */
function cpuPerOp(n: number, fn: (i: number) => unknown): number {
  let sink = 0;
  for (let i = 0; i < Math.min(n, 20_000); i++) if (fn(i) !== undefined) sink++; // warm-up
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) if (fn(i) !== undefined) sink++;
  const used = process.cpuUsage(before);
  if (sink < 0) progress('unreachable');
  return (used.user + used.system) / n;
}

/** Part 1: the modern path's own per-request work vs the session path's, in process. */
function inProcess(): { modernUs: number; sessionUs: number } {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: {
      name: 'demo-echo',
      arguments: { message: 'hi' },
      _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'wrk', version: '1' } },
    },
  });
  const headers = { mcpProtocolVersion: '2026-07-28', mcpMethod: 'tools/call', mcpName: 'demo-echo' };
  const store = new SessionStore(10, 60_000);
  const legacy = store.create('2025-06-18', {}, { name: 'x' });
  if (!legacy) throw new Error('no session');
  const result = { content: [{ type: 'text', text: 'hi' }] };
  const msgs = Array.from({ length: 64 }, () => JSON.parse(body) as { id: number; method: string; params: Record<string, unknown> });
  const modernUs = cpuPerOp(LOOP, (i) => {
    const msg = msgs[i & 63] ?? msgs[0];
    if (msg === undefined) return undefined;
    const meta = readMeta(msg.params);
    if ('error' in meta) throw new Error('meta');
    if (checkHeaders(msg, headers, meta.protocolVersion) ?? checkVersion(meta)) throw new Error('headers');
    const forwarded = upstreamParams(msg.params);
    const s = new McpSession(meta.protocolVersion, meta.clientCapabilities, meta.clientInfo);
    store.adopt(s);
    store.release(s);
    // a fresh result per request, as an upstream's answer is
    return forwarded['name'] === undefined ? undefined : shapeResponse(msg, { result: { content: result.content } }, undefined, MODERN_DEFAULTS.catalogueTtlMs);
  });
  const sessionUs = cpuPerOp(LOOP, () => {
    const s = store.get(legacy.id);
    if (s === undefined || s.owner !== undefined) throw new Error('session');
    if (!(SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes('2025-06-18')) throw new Error('version');
    s.lastSeen = Date.now();
    return { content: result.content };
  });
  return { modernUs, sessionUs };
}

async function main(): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  const part1 = inProcess();
  const lines = [
    `## MCP 2026-07-28 per-request cost — part 1, in process (${fmtInt(LOOP)} iterations, CPU from process.cpuUsage)`,
    '',
    '| work | CPU µs/request |',
    '|---|---:|',
    `| session path: lookup, owner + version check (baseline) | ${part1.sessionUs.toFixed(3)} |`,
    `| modern path: _meta + header checks, params copy, request-scoped session, result shaping | ${part1.modernUs.toFixed(3)} |`,
    `| difference | ${(part1.modernUs - part1.sessionUs).toFixed(3)} |`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (wrkVersion() === undefined) {
    progress('wrk is not installed (apt-get install -y wrk): part 2 skipped');
    writeResults(join(RESULTS, 'modern.json'), { loop: LOOP, in_process: part1 });
    return;
  }
  procs.checkPinning();
  progress('building the gateway (tsc)…');
  const build = procs.gatewayBuild(ROOT);
  const log = join(RESULTS, 'modern-gateway.log');
  const gw = await procs.startGateway({
    build,
    config: { mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }], log_level: 'warn' },
    tmpPrefix: 'tributary-bench-modern-',
    core: '1',
    log,
    what: 'gateway',
    logs: log,
    healthyOnly: true,
    ...(PROFILE ? { profileDir: join(RESULTS, 'modern-profile') } : {}),
  });
  const session = await openSession(gw.url, 'bench-modern');
  const variants = [
    { key: 'session', label: 'session (2025-06-18)', env: { MCP_SESSION: session } },
    { key: 'modern', label: 'stateless (2026-07-28)', env: { MCP_MODERN: '1' } },
  ] as const;
  const wrk = (env: Record<string, string>, seconds: number) =>
    runWrk(procs, { script: LUA, url: `${gw.url}/mcp`, concurrency: CONCURRENCY, seconds, env: { MCP_TOOL: 'demo-echo', MCP_MESSAGE: 'hi', MCP_CHECK_BODIES: '1', ...env }, serverPid: gw.child.pid ?? 0, core: '0' });
  for (const v of variants) await wrk(v.env, 2); // warm-up
  const results = new Map<string, { rps: number; cpu: number }[]>(variants.map((v) => [v.key, []]));
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + run) % variants.length] ?? variants[0];
      await waitForQuiet(3000);
      const r = await wrk(v.env, DURATION);
      if (r.point.errors > 0) throw new Error(`${v.key}: ${r.point.errors} failed calls`);
      const cpu = (r.serverCpuSeconds * 1e6) / Math.max(1, r.point.requests);
      results.get(v.key)?.push({ rps: r.point.rps, cpu });
      progress(`run ${run + 1}/${RUNS} ${v.key}: ${fmtInt(r.point.rps)} req/s, ${cpu.toFixed(1)} gateway CPU µs/call`);
    }
  }
  const base = results.get('session') ?? [];
  const baseRps = mean(base.map((x) => x.rps));
  const baseCpu = mean(base.map((x) => x.cpu));
  const out = [
    '',
    `## Part 2, end to end — tools/call demo-echo, c=${CONCURRENCY}, ${DURATION} s × ${RUNS} run(s), gateway on core 1, wrk on core 0`,
    '',
    '| variant | req/s | vs session | gateway CPU µs/call | vs session |',
    '|---|---:|---:|---:|---:|',
  ];
  const summary: Record<string, unknown> = {};
  for (const v of variants) {
    const xs = results.get(v.key) ?? [];
    const rps = mean(xs.map((x) => x.rps));
    const cpu = mean(xs.map((x) => x.cpu));
    summary[v.key] = { rps, cpu_us_per_call: cpu, rps_ratio: rps / baseRps, cpu_ratio: cpu / baseCpu };
    out.push(`| ${v.label} | ${fmtInt(rps)} | ${(rps / baseRps).toFixed(3)}× | ${cpu.toFixed(1)} | ${(cpu / baseCpu).toFixed(3)}× |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  writeResults(join(RESULTS, 'modern.json'), { loop: LOOP, in_process: part1, duration_s: DURATION, runs: RUNS, concurrency: CONCURRENCY, variants: summary });
}

runMain('bench:modern', procs, main);
