/**
 * `npm run bench`: MCP `tools/call` of a trivial echo tool at several concurrencies, side by side:
 *
 * in-process upstream (the `demo` server, tool `echo`, downstream `demo-echo`)
 *   - direct:              SDK Client ⇄ InMemoryTransport ⇄ createDemoServer(), closed loop in Node
 *   - Tributary:           wrk → POST /mcp (established session) → gateway → in-process demo
 *   - SDK Server over uWS: wrk → bench/sdk-server-variant.ts (SDK `Server` behind uWS) → demo
 *   - raw uWS (ceiling):   wrk → bench/raw-uws.ts (fixed JSON-RPC result)
 * stdio upstream (@modelcontextprotocol/server-everything, tool `echo`, downstream `everything-echo`)
 *   - direct:              SDK Client ⇄ StdioClientTransport ⇄ server-everything, closed loop in Node
 *   - Tributary:           wrk → POST /mcp → gateway → stdio → server-everything
 *
 * Servers (gateway, variant, ceiling, and the direct client with its upstream) run on core 0 with
 * `taskset -c 0`; wrk runs on core 1 with 1 thread and connections = concurrency. Every point runs
 * twice. Before measuring, one response of every variant is checked to be the expected echo.
 *
 * Environment: BENCH_DURATION (s per point, default 4), BENCH_WARMUP (s, default 1),
 * BENCH_CONCURRENCY (default "1,16,64"), BENCH_RUNS (default 2), BENCH_CHECK_BODIES (default 1:
 * wrk inspects every response body and counts JSON-RPC errors; 0 = status codes only),
 * BENCH_CASES (default "inprocess,stdio"), BENCH_QUIET_WAIT (s, default 5: before each point, wait up
 * to this long for other work on the machine to stop), BENCH_PROFILE (1: run the gateway under `--cpu-prof` and
 * print its top self-time functions during the measured windows; profiling slows it down. For
 * readable line numbers the profiled gateway is the same source compiled by `tsc` into a temp dir,
 * since tsx emits each module on one line).
 *
 * Prints a markdown table per upstream case and the target checks (PASS/MISS; a MISS never fails
 * the process) and writes bench/results/latest.json.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { packageBin } from '../src/config/default.js';
import { ChildGroup, envNumber, listeningPort, logTo as logToFile, runMain, runWrk as runWrkPoint, wrkVersion } from './procs.js';
import { DISTURBED_PCT, checkLine, fmtInt, mcpPost, mean, openSession, pct, waitForQuiet, writeResults, type Point, type TargetCheck } from './lib.js';
import { mainThreadProfile, selfTimeTable, topSelfTime, type ProfileSummary, type Window } from './profile.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const LUA = join(BENCH_DIR, 'mcp-call.lua');


// wrk takes whole seconds; the direct loop uses the same value
const DURATION = Math.max(1, Math.round(envNumber('BENCH_DURATION', 4)));
const WARMUP = Math.round(envNumber('BENCH_WARMUP', 1));
const RUNS = Math.max(1, Math.round(envNumber('BENCH_RUNS', 2)));
const CONCURRENCIES = (process.env['BENCH_CONCURRENCY'] || '1,16,64').split(',').map((s) => Math.max(1, Math.round(Number(s))));
const CHECK_BODIES = (process.env['BENCH_CHECK_BODIES'] ?? '1') !== '0';
const CASES = (process.env['BENCH_CASES'] || 'inprocess,stdio').split(',');
const PROFILE = (process.env['BENCH_PROFILE'] ?? '0') === '1';
const QUIET_WAIT = envNumber('BENCH_QUIET_WAIT', 5);
const SERVER_CORE = '0';
const LOADGEN_CORE = '1';
const MESSAGE = 'hello';
const EXPECTED = `Echo: ${MESSAGE}`;

function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---------------------------------------------------------------- processes

const procs = new ChildGroup(ROOT, progress);

function spawnPinned(core: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return procs.spawnPinned(core, command, args, { env });
}

function stop(child: ChildProcess, graceMs?: number): Promise<void> {
  return procs.stop(child, graceMs);
}

/** Copies a child's stderr (and stdout unless consumed) into a log file under bench/results. */
function logTo(child: ChildProcess, name: string, stdoutToo: boolean): void {
  logToFile(child, join(RESULTS_DIR, `${name}.log`), stdoutToo);
}

const LOGS = 'bench/results/*.log';

interface Target {
  readonly child: ChildProcess;
  readonly url: string;
  /** Measured load windows (CLOCK_MONOTONIC µs), for profiles. */
  readonly windows: Window[];
}

/** The tsc build of the gateway, made once per bench run (removed at the end). */
function gatewayBuild(): string {
  return procs.gatewayBuild(ROOT);
}

/** Starts the gateway with only `upstream` configured; resolves when GET /health answers 200. */
async function startGateway(upstream: Record<string, unknown>, label: string): Promise<Target & { dir: string; profileDir?: string }> {
  // the gateway runs as `npm start` runs it: the tsc build (tsx's per-closure name helpers cost ~25% here)
  const profileDir = PROFILE ? join(RESULTS_DIR, `profile-${label}`) : undefined;
  const { child, url, dir } = await procs.startGateway({
    build: gatewayBuild(),
    config: { mcp_clients: [upstream] },
    tmpPrefix: 'tributary-bench-',
    core: SERVER_CORE,
    log: join(RESULTS_DIR, `gateway-${label}.log`),
    what: 'gateway',
    logs: LOGS,
    ...(profileDir !== undefined ? { profileDir } : {}),
  });
  return { child, url, dir, windows: [], ...(profileDir !== undefined ? { profileDir } : {}) };
}

/** Starts a bench server script (`{"listening":PORT}` on stdout). */
async function startScript(script: string, label: string): Promise<Target> {
  const child = spawnPinned(SERVER_CORE, process.execPath, ['--import', 'tsx', script, '0']);
  logTo(child, label, false);
  try {
    const port = await listeningPort(child, script, LOGS);
    return { child, url: `http://127.0.0.1:${port}`, windows: [] };
  } catch (err) {
    await stop(child);
    throw err;
  }
}

// ---------------------------------------------------------------- MCP over HTTP (checks)

/** One tools/call through HTTP; throws unless it is the expected echo. Returns the body. */
async function verifyCall(url: string, tool: string, session: string | undefined, exact = true): Promise<unknown> {
  const r = await mcpPost(url, { jsonrpc: '2.0', id: 'verify-1', method: 'tools/call', params: { name: tool, arguments: { message: MESSAGE } } }, session);
  let body: { result?: { content?: { type?: string; text?: string }[]; isError?: boolean }; id?: unknown };
  try {
    body = JSON.parse(r.text) as typeof body;
  } catch {
    throw new Error(`tools/call ${tool} at ${url}: not JSON (status ${r.status}): ${r.text.slice(0, 300)}`);
  }
  const first = body.result?.content?.[0];
  const ok = r.status === 200 && body.result?.isError !== true && first?.type === 'text' && first.text === EXPECTED && (!exact || body.id === 'verify-1');
  if (!ok) throw new Error(`tools/call ${tool} at ${url}: unexpected response ${r.status} ${r.text.slice(0, 300)}`);
  return body;
}

// ---------------------------------------------------------------- load generators

/**
 * Runs wrk (1 thread, `concurrency` connections) against `${url}/mcp` with the MCP Lua script;
 * the load window goes to `target.windows` unless `warmUp`.
 */
async function runWrk(target: Target, tool: string, session: string, concurrency: number, seconds: number, warmUp = false): Promise<Point> {
  const { point, window } = await runWrkPoint(procs, {
    script: LUA,
    url: `${target.url}/mcp`,
    concurrency,
    seconds,
    env: { MCP_SESSION: session, MCP_TOOL: tool, MCP_MESSAGE: MESSAGE, MCP_CHECK_BODIES: CHECK_BODIES ? '1' : '0' },
    serverPid: target.child.pid as number,
    core: LOADGEN_CORE,
  });
  if (!warmUp) target.windows.push(window); // warm-up is not part of the profile window
  return point;
}

/** Runs bench/direct.ts pinned to the server core; yields its points as they come. */
async function runDirect(mode: 'inprocess' | 'stdio', onPoint: (c: number, run: number, p: Point) => void): Promise<unknown> {
  const child = spawnPinned(SERVER_CORE, process.execPath, [
    '--import',
    'tsx',
    join(BENCH_DIR, 'direct.ts'),
    mode,
    CONCURRENCIES.join(','),
    String(RUNS),
    String(DURATION),
    String(WARMUP),
    String(QUIET_WAIT),
  ]);
  logTo(child, `direct-${mode}`, false);
  let sample: unknown;
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  rl.on('line', (line) => {
    if (line.startsWith('BENCH_SAMPLE ')) {
      sample = JSON.parse(line.slice('BENCH_SAMPLE '.length));
    } else if (line.startsWith('BENCH_POINT ')) {
      const { concurrency, run, ...p } = JSON.parse(line.slice('BENCH_POINT '.length)) as Point & { concurrency: number; run: number };
      onPoint(concurrency, run, p);
    }
  });
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  if (code !== 0) throw new Error(`direct ${mode} baseline failed (exit ${String(code)}); see bench/results/direct-${mode}.log`);
  const s = sample as { ok?: boolean } | undefined;
  if (s?.ok !== true) throw new Error(`direct ${mode}: the sample call did not return the expected echo: ${JSON.stringify(sample)}`);
  return sample;
}

// ---------------------------------------------------------------- bookkeeping and output

interface Row extends Point {
  variant: string;
  concurrency: number;
  run: number;
  ratio?: number;
}

interface CaseResult {
  name: string;
  title: string;
  reference: string;
  rows: Row[];
  samples: Record<string, unknown>;
  failures: Record<string, string>;
  /** Gateway CPU profile over the measured windows (BENCH_PROFILE=1). */
  profile?: ProfileSummary;
}

function record(cr: CaseResult, variant: string, c: number, run: number, p: Point): void {
  cr.rows.push({ variant, concurrency: c, run, ...p });
  const err = p.errors > 0 ? `, ${p.errors} errors ${JSON.stringify(p.error_detail ?? {})}` : '';
  const noisy = (p.other_cpu_pct ?? 0) > DISTURBED_PCT ? `, disturbed: other CPU ${Math.round(p.other_cpu_pct ?? 0)}%` : '';
  const waited = p.quiet_wait_ms ? ` (waited ${(p.quiet_wait_ms / 1000).toFixed(1)} s for a quiet machine)` : '';
  progress(`${cr.name} | ${variant} | c=${c} run ${run}: ${fmtInt(p.rps)} req/s, p50 ${fmtInt(p.p50_us)} µs, p99 ${fmtInt(p.p99_us)} µs${err}${noisy}${waited}`);
}

/** Runs of a point; the undisturbed ones when there are any (see {@link DISTURBED_PCT}). */
function runsOf(cr: CaseResult, variant: string, c: number): Row[] {
  const all = cr.rows.filter((r) => r.variant === variant && r.concurrency === c);
  const quiet = all.filter((r) => (r.other_cpu_pct ?? 0) <= DISTURBED_PCT);
  return quiet.length > 0 ? quiet : all;
}

function meanOf(cr: CaseResult, variant: string, c: number, key: 'rps' | 'p50_us' | 'p99_us'): number {
  return mean(runsOf(cr, variant, c).map((r) => r[key]));
}

/** "mean of 2 runs" / "1 undisturbed run of 2" / "2 runs, all disturbed". */
function runsNote(cr: CaseResult, variant: string, c: number): string {
  const all = cr.rows.filter((r) => r.variant === variant && r.concurrency === c).length;
  const used = runsOf(cr, variant, c);
  const disturbed = used.some((r) => (r.other_cpu_pct ?? 0) > DISTURBED_PCT);
  if (disturbed) return `${all} runs, all disturbed`;
  return used.length === all ? `mean of ${all} runs` : `${used.length} undisturbed run${used.length === 1 ? '' : 's'} of ${all}`;
}

function fillRatios(cr: CaseResult): void {
  for (const r of cr.rows) {
    const ref = meanOf(cr, cr.reference, r.concurrency, 'rps');
    if (Number.isFinite(ref) && ref > 0) r.ratio = r.rps / ref;
  }
}

function table(cr: CaseResult, order: string[]): string {
  const out = [
    `### ${cr.title}`,
    '',
    `| variant | concurrency | run | req/s | p50 (µs) | p99 (µs) | ratio (÷ ${cr.reference}) | errors | wrk CPU | server CPU | other CPU |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const rows = [...cr.rows].sort(
    (a, b) => order.indexOf(a.variant) - order.indexOf(b.variant) || a.concurrency - b.concurrency || a.run - b.run,
  );
  for (const r of rows) {
    const direct = r.variant.startsWith('direct');
    const errs = r.errors === 0 ? '0' : `${r.errors} ${JSON.stringify(r.error_detail ?? {})}`;
    // direct: the client process is the load generator (and, in-process, the server as well)
    const wrk = direct ? '—' : pct(r.loadgen_cpu_pct);
    const srv = direct
      ? r.server_cpu_pct === undefined
        ? `${pct(r.loadgen_cpu_pct)} (client+server)`
        : `${pct(r.server_cpu_pct)} + ${pct(r.loadgen_cpu_pct)} client`
      : pct(r.server_cpu_pct);
    const ratio = r.ratio === undefined ? 'n/a' : r.ratio.toFixed(2);
    out.push(`| ${r.variant} | ${r.concurrency} | ${r.run} | ${fmtInt(r.rps)} | ${fmtInt(r.p50_us)} | ${fmtInt(r.p99_us)} | ${ratio} | ${errs} | ${wrk} | ${srv} | ${pct(r.other_cpu_pct)}${(r.other_cpu_pct ?? 0) > DISTURBED_PCT ? ' ⚠' : ''} |`);
  }
  for (const [variant, why] of Object.entries(cr.failures)) {
    out.push(`| ${variant} | — | — | failed: ${why.replace(/\|/g, '/').split('\n')[0] ?? ''} | | | | | | | |`);
  }
  return out.join('\n');
}

function profileSection(cr: CaseResult): string[] {
  const p = cr.profile;
  if (!p) return [];
  return [
    '',
    `#### Gateway CPU profile, ${cr.name} (top self time over the measured windows: ${p.busy_ms.toFixed(0)} ms busy of ${p.window_ms.toFixed(0)} ms sampled)`,
    '',
    '`dist/X.js:N` is the tsc build of `src/X.ts` (lines shift a little); `%` is of non-idle samples.',
    '',
    ...selfTimeTable(p),
  ];
}

/** A target check and the number it is about. */
interface Check extends TargetCheck {
  value: number;
}

// ---------------------------------------------------------------- the cases

const V = {
  directIn: 'direct (SDK Client, InMemory)',
  tributary: 'Tributary',
  sdkServer: 'SDK Server over uWS',
  ceiling: 'raw uWS (ceiling)',
  directStdio: 'direct (SDK Client, stdio)',
};

/** Measures one wrk-driven variant: verify, warm up, then every concurrency × RUNS. */
async function wrkVariant(cr: CaseResult, variant: string, target: Target, tool: string, session: string, exactId = true): Promise<void> {
  cr.samples[variant] = await verifyCall(target.url, tool, session === '' ? undefined : session, exactId);
  if (WARMUP > 0) {
    const w = await runWrk(target, tool, session, 16, WARMUP, true);
    if (w.errors > 0) progress(`${cr.name} | ${variant} | warm-up saw ${w.errors} errors ${JSON.stringify(w.error_detail)}`);
  }
  for (const c of CONCURRENCIES) {
    for (let run = 1; run <= RUNS; run++) {
      const quiet = await waitForQuiet(QUIET_WAIT * 1000);
      const p = await runWrk(target, tool, session, c, DURATION);
      if (quiet.waitedMs > 100) p.quiet_wait_ms = quiet.waitedMs;
      record(cr, variant, c, run, p);
    }
  }
}

/** Runs `body` with a started target and always stops it; a failure is recorded, not thrown. */
async function withTarget<T extends Target>(cr: CaseResult, variant: string, start: () => Promise<T>, body: (t: T) => Promise<void>, cleanup?: (t: T) => void): Promise<void> {
  let target: T | undefined;
  try {
    target = await start();
    await body(target);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    cr.failures[variant] = msg;
    progress(`${cr.name} | ${variant} FAILED: ${msg}`);
  } finally {
    if (target) {
      await stop(target.child);
      cleanup?.(target);
    }
  }
}

/** After the gateway stopped: drop its temp dir; with BENCH_PROFILE, summarize its main-thread profile. */
function gatewayCleanup(cr: CaseResult): (t: Target & { dir: string; profileDir?: string }) => void {
  return (t) => {
    rmSync(t.dir, { recursive: true, force: true });
    if (t.profileDir === undefined) return;
    try {
      cr.profile = topSelfTime(mainThreadProfile(t.profileDir, t.child.pid as number), t.windows, 20, gatewayBuild());
    } catch (err) {
      progress(`${cr.name}: profile not read: ${(err as Error).message}`);
    }
  };
}

async function inprocessCase(): Promise<CaseResult> {
  const cr: CaseResult = { name: 'in-process', title: 'In-process upstream (demo `echo`)', reference: V.ceiling, rows: [], samples: {}, failures: {} };
  await withTarget(cr, V.ceiling, () => startScript(join(BENCH_DIR, 'raw-uws.ts'), 'raw-uws'), (t) => wrkVariant(cr, V.ceiling, t, 'demo-echo', '', false));
  try {
    cr.samples[V.directIn] = await runDirect('inprocess', (c, run, p) => record(cr, V.directIn, c, run, p));
  } catch (err) {
    cr.failures[V.directIn] = (err as Error).message;
    progress(`${cr.name} | ${V.directIn} FAILED: ${(err as Error).message}`);
  }
  await withTarget(
    cr,
    V.tributary,
    () => startGateway({ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }, 'inprocess'),
    async (t) => wrkVariant(cr, V.tributary, t, 'demo-echo', await openSession(t.url, 'bench')),
    gatewayCleanup(cr),
  );
  await withTarget(cr, V.sdkServer, () => startScript(join(BENCH_DIR, 'sdk-server-variant.ts'), 'sdk-server-variant'), async (t) =>
    wrkVariant(cr, V.sdkServer, t, 'demo-echo', await openSession(t.url, 'bench')),
  );
  fillRatios(cr);
  return cr;
}

async function stdioCase(): Promise<CaseResult> {
  const cr: CaseResult = { name: 'stdio', title: 'stdio upstream (server-everything `echo`)', reference: V.directStdio, rows: [], samples: {}, failures: {} };
  try {
    cr.samples[V.directStdio] = await runDirect('stdio', (c, run, p) => record(cr, V.directStdio, c, run, p));
  } catch (err) {
    cr.failures[V.directStdio] = (err as Error).message;
    progress(`${cr.name} | ${V.directStdio} FAILED: ${(err as Error).message}`);
  }
  const everything = {
    name: 'everything',
    connection_type: 'stdio',
    stdio_config: { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-everything'), 'stdio'] },
  };
  await withTarget(
    cr,
    V.tributary,
    () => startGateway(everything, 'stdio'),
    async (t) => wrkVariant(cr, V.tributary, t, 'everything-echo', await openSession(t.url, 'bench')),
    gatewayCleanup(cr),
  );
  fillRatios(cr);
  return cr;
}

function checks(inproc: CaseResult | undefined, stdio: CaseResult | undefined): Check[] {
  const out: Check[] = [];
  const hi = 64;
  const lo = 1;
  if (inproc) {
    const t = meanOf(inproc, V.tributary, hi, 'rps');
    const c = meanOf(inproc, V.ceiling, hi, 'rps');
    const v = t / c;
    out.push({
      name: `in-process: Tributary req/s ÷ raw uWS req/s at c=${hi}`,
      target: '≥ 0.50',
      measured: Number.isFinite(v)
        ? `${v.toFixed(2)} (${fmtInt(t)} / ${fmtInt(c)} req/s; ${runsNote(inproc, V.tributary, hi)} / ${runsNote(inproc, V.ceiling, hi)})`
        : 'not measured',
      value: v,
      pass: Number.isFinite(v) ? v >= 0.5 : undefined,
    });
  }
  if (stdio) {
    const t = meanOf(stdio, V.tributary, hi, 'rps');
    const d = meanOf(stdio, V.directStdio, hi, 'rps');
    const v = t / d;
    out.push({
      name: `stdio: Tributary req/s ÷ direct req/s at c=${hi}`,
      target: '≥ 0.50',
      measured: Number.isFinite(v)
        ? `${v.toFixed(2)} (${fmtInt(t)} / ${fmtInt(d)} req/s; ${runsNote(stdio, V.tributary, hi)} / ${runsNote(stdio, V.directStdio, hi)})`
        : 'not measured',
      value: v,
      pass: Number.isFinite(v) ? v >= 0.5 : undefined,
    });
    const tp = meanOf(stdio, V.tributary, lo, 'p50_us');
    const dp = meanOf(stdio, V.directStdio, lo, 'p50_us');
    const added = tp - dp;
    out.push({
      name: `stdio: added p50 over direct at c=${lo}`,
      target: '≤ 100 µs',
      measured: Number.isFinite(added)
        ? `${Math.round(added)} µs (${fmtInt(tp)} − ${fmtInt(dp)} µs; ${runsNote(stdio, V.tributary, lo)} / ${runsNote(stdio, V.directStdio, lo)})`
        : 'not measured',
      value: added,
      pass: Number.isFinite(added) ? added <= 100 : undefined,
    });
  }
  return out;
}

async function main(): Promise<void> {
  const wrk = wrkVersion();
  if (wrk === undefined) {
    process.stderr.write(
      'bench: `wrk` was not found on PATH. It drives the HTTP variants.\n' +
        '       Install it with:  apt-get update && apt-get install -y wrk   (Debian/Ubuntu package `wrk`)\n',
    );
    process.exit(1);
  }
  procs.checkPinning();
  if (cpus().length < 2) progress(`only ${cpus().length} CPU: load generator and server share a core`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const started = Date.now();
  progress('building the gateway with tsc (the bench runs the build, as `npm start` does)');
  gatewayBuild();
  progress(`duration ${DURATION} s/point, warm-up ${WARMUP} s, concurrency ${CONCURRENCIES.join(',')}, ${RUNS} runs, body checks ${CHECK_BODIES ? 'on' : 'off'}; ${wrk}`);

  const inproc = CASES.includes('inprocess') ? await inprocessCase() : undefined;
  const stdio = CASES.includes('stdio') ? await stdioCase() : undefined;
  const results = checks(inproc, stdio);

  const lines: string[] = [];
  lines.push(`## Tributary benchmark — MCP tools/call, ${DURATION} s per point, ${RUNS} runs each`);
  lines.push('');
  lines.push(
    `Servers (gateway, SDK-Server variant, raw uWS, and the direct client with its upstream) pinned to core ${SERVER_CORE}; ` +
      `wrk pinned to core ${LOADGEN_CORE} (1 thread, connections = concurrency${CHECK_BODIES ? ', every response body checked' : ''}). ` +
      `CPU columns: % of one core over the point; "other CPU" is machine-wide CPU not charged to the measured processes ` +
      `(other programs: this machine may be shared); ⚠ marks points above ${DISTURBED_PCT}% (disturbed), which the target checks skip when an undisturbed run exists.` +
      ' The gateway runs as its tsc build (`node dist/main.js`, as `npm start` runs it).' +
      (PROFILE ? ' BENCH_PROFILE: the gateway ran under --cpu-prof (slower than normal).' : ''),
  );
  if (inproc) lines.push('', table(inproc, [V.directIn, V.tributary, V.sdkServer, V.ceiling]), ...profileSection(inproc));
  if (stdio) lines.push('', table(stdio, [V.directStdio, V.tributary]), ...profileSection(stdio));
  lines.push('', '### Targets', '', ...results.map(checkLine));
  if (inproc && stdio) {
    // Context for the latency target: the HTTP hop alone (wrk → uWS → wrk, fixed reply) costs the
    // raw uWS p50, which any HTTP gateway pays; what Tributary adds beyond that is the rest.
    const hop = meanOf(inproc, V.ceiling, 1, 'p50_us');
    const added = meanOf(stdio, V.tributary, 1, 'p50_us') - meanOf(stdio, V.directStdio, 1, 'p50_us');
    if (Number.isFinite(hop) && Number.isFinite(added)) {
      lines.push(`- info: of the ${Math.round(added)} µs added at c=1, the bare HTTP hop (raw uWS p50 at c=1) is ${Math.round(hop)} µs; Tributary's own share is ${Math.round(added - hop)} µs`);
    }
  }
  lines.push('', `(${((Date.now() - started) / 1000).toFixed(0)} s total; results in bench/results/latest.json)`);
  process.stdout.write(lines.join('\n') + '\n');

  writeResults(join(RESULTS_DIR, 'latest.json'), {
    wrk,
    settings: {
      duration_s: DURATION,
      warmup_s: WARMUP,
      runs: RUNS,
      concurrencies: CONCURRENCIES,
      check_bodies: CHECK_BODIES,
      profile: PROFILE,
      pinned: procs.pinning,
      server_core: SERVER_CORE,
      loadgen_core: LOADGEN_CORE,
    },
    cases: [inproc, stdio].filter((c) => c !== undefined),
    checks: results,
  });
}

runMain('bench', procs, main);
