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
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { packageBin } from '../src/config/default.js';
import { ChildGroup, envNumber, exitedEarly as exitedEarlyFrom, freePort, logTo as logToFile } from './procs.js';
import { DISTURBED_PCT, fillOtherCpu, sleep, systemCpuSeconds, treeCpuSeconds, waitForQuiet, type Point } from './lib.js';
import { topSelfTime, type ProfileSummary, type Window } from './profile.js';

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
const PROTOCOL_VERSION = '2025-06-18';

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

function exitedEarly(child: ChildProcess, what: string): Promise<never> {
  return exitedEarlyFrom(child, what, 'bench/results/*.log');
}

interface Target {
  readonly child: ChildProcess;
  readonly url: string;
  /** Measured load windows (CLOCK_MONOTONIC µs), for profiles. */
  readonly windows: Window[];
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** With BENCH_PROFILE: a temp dir holding the tsc build (dist/), package.json and node_modules (link). */
let profileBuild: string | undefined;

/**
 * Compiles src/ with tsc into a temp dir (outside the repo, so lint and git never see it), with
 * the package.json that src/version.ts reads and a node_modules link for the dependencies.
 */
/** The tsc build of the gateway, made once per bench run (removed at the end). */
function gatewayBuild(): string {
  profileBuild ??= procs.buildGateway(ROOT);
  return profileBuild;
}

/** Starts the gateway with only `upstream` configured; resolves when GET /health answers 200. */
async function startGateway(upstream: Record<string, unknown>, label: string): Promise<Target & { dir: string; profileDir?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-'));
  const port = await freePort();
  const configPath = join(dir, 'config.json');
  const config = { server: { host: '127.0.0.1', port }, data_dir: join(dir, 'data'), mcp_clients: [upstream] };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  // the gateway runs as `npm start` runs it: the tsc build (tsx's per-closure name helpers cost ~25% here)
  const profileDir = PROFILE ? join(RESULTS_DIR, `profile-${label}`) : undefined;
  let args = [join(gatewayBuild(), 'dist', 'main.js'), '--config', configPath];
  if (profileDir !== undefined) {
    rmSync(profileDir, { recursive: true, force: true });
    args = ['--cpu-prof', '--cpu-prof-dir', profileDir, ...args];
  }
  const child = spawnPinned(SERVER_CORE, process.execPath, args);
  logTo(child, `gateway-${label}`, true);
  const url = `http://127.0.0.1:${port}`;
  const healthy = (async () => {
    const deadline = Date.now() + 60_000;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`${url}/health`);
        last = `${r.status} ${await r.text()}`;
        if (r.status === 200) return;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(100);
    }
    throw new Error(`gateway did not become healthy in 60 s (last: ${last})`);
  })();
  try {
    await Promise.race([healthy, exitedEarly(child, 'gateway')]);
  } catch (err) {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { child, url, dir, windows: [], ...(profileDir !== undefined ? { profileDir } : {}) };
}

/** Starts a bench server script (`{"listening":PORT}` on stdout). */
async function startScript(script: string, label: string): Promise<Target> {
  const child = spawnPinned(SERVER_CORE, process.execPath, ['--import', 'tsx', script, '0']);
  logTo(child, label, false);
  const listening = new Promise<number>((resolvePort) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { listening?: number };
        if (typeof msg.listening === 'number') resolvePort(msg.listening);
      } catch {
        // not ours
      }
    });
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const port = await Promise.race([
      listening,
      exitedEarly(child, script),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${script} did not start in 60 s`)), 60_000);
      }),
    ]);
    return { child, url: `http://127.0.0.1:${port}`, windows: [] };
  } catch (err) {
    await stop(child);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- MCP over HTTP (setup + checks)

async function post(url: string, body: unknown, session?: string): Promise<{ status: number; session: string | null; text: string }> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': PROTOCOL_VERSION,
  };
  if (session !== undefined) headers['mcp-session-id'] = session;
  const r = await fetch(`${url}/mcp`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: r.status, session: r.headers.get('mcp-session-id'), text: await r.text() };
}

/** initialize + notifications/initialized; returns the session id. */
async function openSession(url: string): Promise<string> {
  const init = await post(url, {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench', version: '0.0.0' } },
  });
  if (init.status !== 200 || !init.session) throw new Error(`initialize failed: ${init.status} ${init.text}`);
  const ack = await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, init.session);
  if (ack.status !== 202) throw new Error(`notifications/initialized: expected 202, got ${ack.status} ${ack.text}`);
  return init.session;
}

/** One tools/call through HTTP; throws unless it is the expected echo. Returns the body. */
async function verifyCall(url: string, tool: string, session: string | undefined, exact = true): Promise<unknown> {
  const r = await post(url, { jsonrpc: '2.0', id: 'verify-1', method: 'tools/call', params: { name: tool, arguments: { message: MESSAGE } } }, session);
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

interface WrkJson {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  checked: number;
  rpc_errors: number;
  bad_status: number;
  latency_us: { min: number; mean: number; stdev: number; max: number; p50: number; p90: number; p99: number; p999: number };
}

/** Parses bash `times` output: the second line is the children's user and system time. */
function parseTimes(stderr: string): number | undefined {
  const lines = stderr.split('\n').filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l.trim()));
  const last = lines[lines.length - 1];
  if (last === undefined) return undefined;
  let total = 0;
  for (const m of last.trim().matchAll(/(\d+)m([\d.]+)s/g)) total += Number(m[1]) * 60 + Number(m[2]);
  return total;
}

/** Runs wrk (1 thread, `concurrency` connections) against `${url}/mcp` with the MCP Lua script. */
async function runWrk(target: Target, tool: string, session: string, concurrency: number, seconds: number): Promise<Point> {
  const env = { ...process.env, MCP_SESSION: session, MCP_TOOL: tool, MCP_MESSAGE: MESSAGE, MCP_CHECK_BODIES: CHECK_BODIES ? '1' : '0' };
  const args = ['-t1', `-c${concurrency}`, `-d${seconds}s`, '--timeout', '5s', '-s', LUA, `${target.url}/mcp`];
  const serverPid = target.child.pid as number;
  const server0 = treeCpuSeconds(serverPid);
  const sys0 = systemCpuSeconds();
  const t0 = performance.now();
  const w0 = monotonicUs();
  // `times` reports the CPU time wrk used (user + sys of the shell's children)
  const child = spawnPinned(LOADGEN_CORE, 'bash', ['-c', 'wrk "$@"; rc=$?; times 1>&2; exit $rc', 'wrk', ...args], env);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  const wall = (performance.now() - t0) / 1000;
  target.windows.push([w0, monotonicUs()]);
  const serverCpu = treeCpuSeconds(serverPid) - server0;
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (code !== 0 || line === undefined) throw new Error(`wrk failed (exit ${String(code)}):\n${stdout}\n${stderr}`);
  const w = JSON.parse(line.slice('BENCH_JSON '.length)) as WrkJson;
  const secs = w.duration_us / 1e6;
  const e = w.errors;
  const detail: Record<string, number> = {};
  for (const [k, v] of Object.entries(e)) if (v > 0) detail[k] = v;
  if (w.rpc_errors > 0) detail['rpc'] = w.rpc_errors;
  if (w.bad_status > 0) detail['non2xx'] = w.bad_status;
  const statusErrors = w.checked > 0 ? w.bad_status : e.status;
  const wrkCpu = parseTimes(stderr);
  const p: Point = {
    requests: w.requests,
    seconds: secs,
    rps: w.requests / secs,
    p50_us: w.latency_us.p50,
    p99_us: w.latency_us.p99,
    errors: e.connect + e.read + e.write + e.timeout + statusErrors + w.rpc_errors,
    error_detail: detail,
    checked: w.checked,
    server_cpu_pct: (100 * serverCpu) / wall,
  };
  if (wrkCpu !== undefined) p.loadgen_cpu_pct = (100 * wrkCpu) / wall;
  fillOtherCpu(p, sys0, (wrkCpu ?? 0) + serverCpu, wall);
  return p;
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

const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');

function record(cr: CaseResult, variant: string, c: number, run: number, p: Point): void {
  cr.rows.push({ variant, concurrency: c, run, ...p });
  const err = p.errors > 0 ? `, ${p.errors} errors ${JSON.stringify(p.error_detail ?? {})}` : '';
  const noisy = (p.other_cpu_pct ?? 0) > DISTURBED_PCT ? `, disturbed: other CPU ${Math.round(p.other_cpu_pct ?? 0)}%` : '';
  const waited = p.quiet_wait_ms ? ` (waited ${(p.quiet_wait_ms / 1000).toFixed(1)} s for a quiet machine)` : '';
  progress(`${cr.name} | ${variant} | c=${c} run ${run}: ${fmtInt(p.rps)} req/s, p50 ${fmtInt(p.p50_us)} µs, p99 ${fmtInt(p.p99_us)} µs${err}${noisy}${waited}`);
}

function mean(xs: number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
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

const pct = (v: number | undefined): string => (v === undefined ? '?' : `${Math.round(v)}%`);

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
    '| self % | function |',
    '|---:|---|',
    ...p.top.map((t) => `| ${t.pct.toFixed(1)} | \`${t.fn}\` |`),
  ];
}

interface Check {
  name: string;
  target: string;
  measured: string;
  value: number;
  pass: boolean | undefined;
}

function checkLine(c: Check): string {
  const verdict = c.pass === undefined ? 'N/A ' : c.pass ? 'PASS' : 'MISS';
  return `- ${verdict} ${c.name}: ${c.measured} (target ${c.target})`;
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
    const w = await runWrk(target, tool, session, 16, WARMUP);
    target.windows.pop(); // not part of the profile window
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
      // node names profiles CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread
      const file = readdirSync(t.profileDir).find((f) => f.includes(`.${t.child.pid}.0.`) && f.endsWith('.cpuprofile'));
      if (file === undefined) throw new Error(`no main-thread profile in ${t.profileDir}`);
      cr.profile = topSelfTime(join(t.profileDir, file), t.windows, 20, profileBuild ?? ROOT);
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
    async (t) => wrkVariant(cr, V.tributary, t, 'demo-echo', await openSession(t.url)),
    gatewayCleanup(cr),
  );
  await withTarget(cr, V.sdkServer, () => startScript(join(BENCH_DIR, 'sdk-server-variant.ts'), 'sdk-server-variant'), async (t) =>
    wrkVariant(cr, V.sdkServer, t, 'demo-echo', await openSession(t.url)),
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
    async (t) => wrkVariant(cr, V.tributary, t, 'everything-echo', await openSession(t.url)),
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

function wrkVersion(): string | undefined {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (r.error) return undefined;
  return `${r.stdout}${r.stderr}`.split('\n')[0]?.trim();
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
  if (spawnSync('taskset', ['-c', '0', 'true']).status !== 0) {
    procs.pinning = false;
    progress('taskset is not usable: running without CPU pinning (numbers are less comparable)');
  }
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

  const json = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().map((c) => c.model),
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
  };
  writeFileSync(join(RESULTS_DIR, 'latest.json'), JSON.stringify(json, null, 2) + '\n');
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await procs.stopAll();
  });
