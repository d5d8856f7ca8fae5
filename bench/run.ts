/**
 * `npm run bench`: MCP `tools/call` of a trivial echo tool, measured as a user would run the
 * gateway. The system under test — the gateway AND every process it starts (its stdio upstreams) —
 * is pinned to one core (`taskset -c 1`); the load runs on the other core (`taskset -c 0`): at c=1
 * the sequential client of bench/seq-client.ts (one keep-alive connection, one request at a time,
 * every request timed — wrk's c=1 latencies disagree with its own throughput, see that file), at
 * higher concurrency `wrk -t1` with bench/mcp-call.lua (a fresh JSON-RPC id per request, an
 * established session).
 *
 * Systems (BENCH_VARIANTS, default `raw,direct-stdio,stdio,inprocess`):
 *   raw              raw uWS answering a fixed JSON-RPC result (bench/raw-uws.ts): the ceiling
 *   direct-stdio     SDK `Client` ⇄ StdioClientTransport ⇄ server-everything, closed loop in Node
 *                    (bench/direct.ts): client and server-everything both on the pinned core, the
 *                    load being the client itself (no HTTP, no wrk)
 *   stdio            Tributary, tool `everything-echo` (stdio → server-everything)
 *   inprocess        Tributary, tool `demo-echo` (the in-process demo server)
 *   direct-inmemory  (opt-in) SDK Client ⇄ InMemoryTransport ⇄ the SDK McpServer build of the demo
 *                    (`demo_sdk`), one process
 *   sdk-server       (opt-in) the SDK `Server` behind uWS (bench/sdk-server-variant.ts)
 * Tributary runs as its tsc build (`node dist/main.js`, as `npm start` runs it) with its embedded
 * default config (server-everything and server-memory over stdio, the in-process demo), moved to
 * a free port and a temp data dir by its env overrides.
 *
 * Every point (system × concurrency × run) gets a fresh system: start, one verified call, warm-up,
 * wait for a quiet machine, the measured window, stop. Runs are the outer loop, so a burst of
 * other work on the machine disturbs one run of several points, not both runs of one.
 *
 * Per point: req/s, p50/p99, and CPU per completed call from /proc (utime + stime of every
 * thread): the system's whole process tree; the upstream processes' own (the gateway's stdio
 * children; the direct client's server-everything); and the gateway CPU per call = tree minus its
 * upstream processes. Target checks print PASS/MISS and never fail the process.
 *
 * Usage: npm run bench [-- --quick] [-- --profile]
 *   --quick    3 s windows, 1 s warm-up slices, 1 run (unless the env below says otherwise)
 *   --profile  the gateway under `node --cpu-prof`; prints its top self-time functions over the
 *              measured window of the first run at the highest concurrency (profiling slows it)
 * Environment: BENCH_GATEWAY_BUILD (a directory holding a gateway build — dist/, package.json,
 * node_modules — to run instead of building this checkout: an A/B of two builds), BENCH_NODE_FLAGS
 * (the gateway's node flags instead of those of `npm start`), BENCH_NICE (e.g. -10: every measured
 * process and the load generator under `nice`, see bench/procs.ts), BENCH_DURATION (s per window, default 10), BENCH_WARMUP (s per warm-up slice, default 2),
 * BENCH_WARMUP_CALLS (warm-up slices repeat until this many calls are made, default 40000; 0: one slice),
 * BENCH_WARMUP_MAX (s, default 12: the most warm-up a point gets), BENCH_RUNS
 * (default 2), BENCH_CONCURRENCY (default "1,16,64"), BENCH_VARIANTS, BENCH_CHECK_BODIES (default 1:
 * wrk checks every response body; 0 = status codes only), BENCH_QUIET_WAIT (s, default 5: before
 * each window, wait up to this long for other work on the machine to stop), BENCH_QUICK=1 and
 * BENCH_PROFILE=1 (as the flags).
 *
 * Writes bench/results/latest.json and logs under bench/results/.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { packageBin } from '../src/config/default.js';
import { ChildGroup, envNumber, listeningPort, logTo, runMain, runWrk as runWrkPoint, wrkVersion } from './procs.js';
import { DISTURBED_PCT, checkLine, childPids, fmtInt, mcpPost, mean, monotonicUs, openSession, pct, processCommandLine, waitForQuiet, writeResults, type Point, type TargetCheck } from './lib.js';
import { mainThreadProfile, selfTimeTable, topSelfTime, type ProfileSummary, type Window } from './profile.js';
import type { SeqOptions, SeqPoint } from './seq-client.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const LUA = join(BENCH_DIR, 'mcp-call.lua');
const LOGS = 'bench/results/*.log';

const FLAGS = new Set(process.argv.slice(2));
for (const f of FLAGS) {
  if (f !== '--quick' && f !== '--profile') {
    process.stderr.write(`bench: unknown argument ${f} (known: --quick, --profile)\n`);
    process.exit(2);
  }
}
const QUICK = FLAGS.has('--quick') || process.env['BENCH_QUICK'] === '1';
const PROFILE = FLAGS.has('--profile') || process.env['BENCH_PROFILE'] === '1';
// wrk takes whole seconds; the direct loop uses the same value
const DURATION = Math.max(1, Math.round(envNumber('BENCH_DURATION', QUICK ? 3 : 10)));
const WARMUP = Math.round(envNumber('BENCH_WARMUP', QUICK ? 1 : 2));
/**
 * A fresh gateway is cold: V8 tiers its hot path up by call counts, on compiler threads that are
 * charged to the gateway, and the stdio child warms up the same way. Measured in 1 s windows after
 * start at c=64: the first second costs 2–6× the steady CPU per call; in-process is warm after
 * ≈ 20k calls, stdio (3–5k calls in its first second) after ≈ 40k, and a 1 s warm-up left the stdio
 * point's 3 s window 4–38 % above the same gateway's later seconds. The warm-up repeats its slice of
 * WARMUP seconds until it has made this many calls (or WARMUP_MAX_S is spent).
 */
const WARMUP_CALLS = Math.max(0, Math.round(envNumber('BENCH_WARMUP_CALLS', 40_000)));
const WARMUP_MAX_S = Math.max(WARMUP, envNumber('BENCH_WARMUP_MAX', 12));
const RUNS = Math.max(1, Math.round(envNumber('BENCH_RUNS', QUICK ? 1 : 2)));
const CONCURRENCIES = (process.env['BENCH_CONCURRENCY'] || '1,16,64').split(',').map((s) => Math.max(1, Math.round(Number(s))));
const LO = Math.min(...CONCURRENCIES);
const HI = Math.max(...CONCURRENCIES);
const CHECK_BODIES = (process.env['BENCH_CHECK_BODIES'] ?? '1') !== '0';
const QUIET_WAIT = envNumber('BENCH_QUIET_WAIT', 5);
/** The system under test (and every process it starts) runs here; the load generator on the other. */
const SUT_CORE = '1';
const LOADGEN_CORE = '0';
const MESSAGE = 'hello';
const EXPECTED = `Echo: ${MESSAGE}`;

/** The stdio upstreams of the embedded default config, by the bin script in their command line. */
const UPSTREAM_BINS: Record<string, string> = {
  'server-everything': packageBin('@modelcontextprotocol/server-everything'),
  'server-memory': packageBin('@modelcontextprotocol/server-memory'),
};

function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

const procs = new ChildGroup(ROOT, progress);

// ---------------------------------------------------------------- systems under test

/** A started system that wrk loads. */
interface Sut {
  readonly child: ChildProcess;
  readonly url: string;
  /** Session for wrk ('' for servers that take none). */
  readonly session: string;
  /** Upstream processes (the gateway's stdio children) by name → pid. */
  readonly upstreams: Record<string, number>;
  /** Temp dir of a gateway (config-less: data only), removed after the point. */
  readonly dir?: string;
  readonly profileDir?: string;
}

interface WrkVariant {
  readonly kind: 'wrk';
  readonly key: string;
  readonly label: string;
  readonly tool: string;
  /** The upstream whose CPU is the called upstream's own (a key of `Sut.upstreams`). */
  readonly upstream?: string;
  /** The reply's JSON-RPC id must be the request's (raw uWS answers a fixed id). */
  readonly exactId: boolean;
  readonly isGateway: boolean;
  start(point: string): Promise<Sut>;
}

interface DirectVariant {
  readonly kind: 'direct';
  readonly key: string;
  readonly label: string;
  readonly mode: 'stdio' | 'inprocess';
}

type Variant = WrkVariant | DirectVariant;

/** The tsc build of the gateway, made once per bench run (removed at the end), or BENCH_GATEWAY_BUILD. */
const gatewayBuild = (): string => procs.gatewayBuild(ROOT, process.env['BENCH_GATEWAY_BUILD']);

/**
 * The node flags the gateway runs with: those of `npm start` (package.json `scripts.start`,
 * `node <flags> dist/main.js`), so the bench measures what users run; BENCH_NODE_FLAGS replaces
 * them (e.g. `''` for Node's defaults, for an A/B).
 * @throws Error when `scripts.start` is not of that form.
 */
function gatewayNodeFlags(): string[] {
  const override = process.env['BENCH_NODE_FLAGS'];
  if (override !== undefined) return override.split(/\s+/).filter((f) => f !== '');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  const m = /^node((?:\s+--[^\s]+)*)\s+dist\/main\.js$/.exec((pkg.scripts?.start ?? '').trim());
  if (!m) throw new Error(`package.json scripts.start is not "node [--flags] dist/main.js": ${JSON.stringify(pkg.scripts?.start)}`);
  return (m[1] ?? '').split(/\s+/).filter((f) => f !== '');
}
const NODE_FLAGS = gatewayNodeFlags();

/** The gateway's stdio children that run a known upstream bin script, by upstream name. */
function upstreamsOf(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of childPids(pid)) {
    const cmd = processCommandLine(c);
    for (const [name, bin] of Object.entries(UPSTREAM_BINS)) if (cmd.includes(bin)) out[name] = c;
  }
  return out;
}

/** Starts the gateway with its embedded default config; resolves when every upstream is connected. */
async function startGateway(point: string): Promise<Sut> {
  const profileDir = PROFILE ? join(RESULTS_DIR, `profile-${point}`) : undefined;
  const { child, url, dir } = await procs.startGateway({
    build: gatewayBuild(),
    config: 'embedded-default',
    tmpPrefix: 'tributary-bench-',
    core: SUT_CORE,
    log: join(RESULTS_DIR, `gateway-${point}.log`),
    what: 'gateway',
    logs: LOGS,
    healthyOnly: true,
    nodeFlags: NODE_FLAGS,
    ...(profileDir !== undefined ? { profileDir } : {}),
  });
  try {
    const upstreams = upstreamsOf(child.pid as number);
    if (upstreams['server-everything'] === undefined) throw new Error(`gateway ${point}: no server-everything child found (children: ${childPids(child.pid as number).join(', ')})`);
    return { child, url, dir, upstreams, session: await openSession(url, 'bench'), ...(profileDir !== undefined ? { profileDir } : {}) };
  } catch (err) {
    await procs.stop(child);
    throw err;
  }
}

/** Starts a bench server script (`{"listening":PORT}` on stdout), opening a session when asked. */
async function startScript(script: string, point: string, withSession: boolean): Promise<Sut> {
  const child = procs.spawnPinned(SUT_CORE, process.execPath, ['--import', 'tsx', join(BENCH_DIR, script), '0']);
  logTo(child, join(RESULTS_DIR, `${point}.log`), false);
  try {
    const url = `http://127.0.0.1:${await listeningPort(child, script, LOGS)}`;
    return { child, url, upstreams: {}, session: withSession ? await openSession(url, 'bench') : '' };
  } catch (err) {
    await procs.stop(child);
    throw err;
  }
}

const ALL_VARIANTS: readonly Variant[] = [
  { kind: 'wrk', key: 'raw', label: 'raw uWS fixed JSON reply (ceiling)', tool: 'demo-echo', exactId: false, isGateway: false, start: (p) => startScript('raw-uws.ts', p, false) },
  { kind: 'direct', key: 'direct-stdio', label: 'direct SDK Client over stdio → server-everything', mode: 'stdio' },
  { kind: 'wrk', key: 'stdio', label: 'Tributary `everything-echo` (stdio)', tool: 'everything-echo', upstream: 'server-everything', exactId: true, isGateway: true, start: startGateway },
  { kind: 'wrk', key: 'inprocess', label: 'Tributary `demo-echo` (in-process)', tool: 'demo-echo', exactId: true, isGateway: true, start: startGateway },
  { kind: 'direct', key: 'direct-inmemory', label: 'direct SDK Client, InMemory → demo_sdk (SDK McpServer, one process)', mode: 'inprocess' },
  { kind: 'wrk', key: 'sdk-server', label: 'SDK Server over uWS → demo_sdk (SDK McpServer)', tool: 'demo-echo', exactId: true, isGateway: false, start: (p) => startScript('sdk-server-variant.ts', p, true) },
];

const VARIANT_KEYS = (process.env['BENCH_VARIANTS'] || 'raw,direct-stdio,stdio,inprocess').split(',').map((s) => s.trim());
for (const k of VARIANT_KEYS) {
  if (!ALL_VARIANTS.some((v) => v.key === k)) {
    process.stderr.write(`bench: unknown BENCH_VARIANTS entry ${JSON.stringify(k)} (known: ${ALL_VARIANTS.map((v) => v.key).join(', ')})\n`);
    process.exit(2);
  }
}
const VARIANTS = ALL_VARIANTS.filter((v) => VARIANT_KEYS.includes(v.key));

// ---------------------------------------------------------------- one point

/** One tools/call through HTTP; throws unless it is the expected echo. Returns the body. */
async function verifyCall(url: string, tool: string, session: string, exactId: boolean): Promise<unknown> {
  const r = await mcpPost(url, { jsonrpc: '2.0', id: 'verify-1', method: 'tools/call', params: { name: tool, arguments: { message: MESSAGE } } }, session === '' ? undefined : session);
  let body: { result?: { content?: { type?: string; text?: string }[]; isError?: boolean }; id?: unknown };
  try {
    body = JSON.parse(r.text) as typeof body;
  } catch {
    throw new Error(`tools/call ${tool} at ${url}: not JSON (status ${r.status}): ${r.text.slice(0, 300)}`);
  }
  const first = body.result?.content?.[0];
  const ok = r.status === 200 && body.result?.isError !== true && first?.type === 'text' && first.text === EXPECTED && (!exactId || body.id === 'verify-1');
  if (!ok) throw new Error(`tools/call ${tool} at ${url}: unexpected response ${r.status} ${r.text.slice(0, 300)}`);
  return body;
}

/** A measured point of one system. */
interface Row extends Point {
  variant: string;
  concurrency: number;
  run: number;
  /** CPU µs per completed call: the whole tree; the called upstream's own; tree minus upstream processes. */
  tree_us_per_call?: number;
  upstream_us_per_call?: number;
  gateway_us_per_call?: number;
  /** The warm-up this point had: seconds and calls (see WARMUP_CALLS). */
  warmup_s?: number;
  warmup_calls?: number;
  /** The sequential client's view of the tail (c=1 points; see bench/seq-client.ts). */
  mean_us?: number;
  p999_us?: number;
  max_us?: number;
  over_1ms?: number;
  over_5ms?: number;
}

/** Fills the per-call CPU figures of a row from its `tree_cpu_s` (`upstreams`: keys that are upstream processes). */
function perCall(row: Row, upstreams: readonly string[], called: string | undefined): void {
  const t = row.tree_cpu_s;
  if (t?.['server'] === undefined || row.requests <= 0) return;
  const perCallUs = (s: number): number => (s * 1e6) / row.requests;
  const upstreamSum = upstreams.reduce((a, k) => a + (t[k] ?? 0), 0);
  row.tree_us_per_call = perCallUs(t['server']);
  row.gateway_us_per_call = perCallUs(t['server'] - upstreamSum);
  if (called !== undefined && t[called] !== undefined) row.upstream_us_per_call = perCallUs(t[called]);
}

/**
 * A c=1 window of bench/seq-client.ts pinned to the load core: one connection, one request at a
 * time, each timed (wrk's c=1 latencies disagree with its own throughput; see that file).
 * @throws Error with the client's stderr when it fails.
 */
async function runSeqPoint(o: SeqOptions, name: string): Promise<{ point: SeqPoint; window: Window }> {
  const child = procs.spawnPinned(LOADGEN_CORE, process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'seq-client.ts'), JSON.stringify(o)]);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const w0 = monotonicUs();
  const code = await new Promise<number | null>((r) => child.once('close', (x) => r(x)));
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_SEQ '));
  if (code !== 0 || line === undefined) throw new Error(`${name}: sequential client failed (exit ${String(code)}): ${stderr.trim().slice(0, 500)}`);
  return { point: JSON.parse(line.slice('BENCH_SEQ '.length)) as SeqPoint, window: [w0, monotonicUs()] };
}

/** A wrk point (c=1: the sequential client): fresh system, verified call, warm-up, quiet wait, the measured window, stop. */
async function wrkPoint(v: WrkVariant, c: number, run: number, profile: { summary?: ProfileSummary }): Promise<Row> {
  const name = `${v.key}-c${c}-r${run}`;
  const sut = await v.start(name);
  const window: Window[] = [];
  let row: Row;
  try {
    await verifyCall(sut.url, v.tool, sut.session, v.exactId);
    const wrk = (seconds: number): Promise<{ point: Point & Partial<SeqPoint>; window: Window }> =>
      c === 1
        ? runSeqPoint({ url: `${sut.url}/mcp`, session: sut.session, tool: v.tool, message: MESSAGE, seconds, checkBodies: CHECK_BODIES, serverPid: sut.child.pid as number, trees: sut.upstreams }, name)
        : runWrkPoint(procs, {
            script: LUA,
            url: `${sut.url}/mcp`,
            concurrency: c,
            seconds,
            env: { MCP_SESSION: sut.session, MCP_TOOL: v.tool, MCP_MESSAGE: MESSAGE, MCP_CHECK_BODIES: CHECK_BODIES ? '1' : '0' },
            serverPid: sut.child.pid as number,
            trees: sut.upstreams,
            core: LOADGEN_CORE,
          });
    let warmupCalls = 0;
    let warmupS = 0;
    // slices of WARMUP s until WARMUP_CALLS calls are made (see WARMUP_CALLS), at most WARMUP_MAX_S
    while (WARMUP > 0 && (warmupS === 0 || (warmupCalls < WARMUP_CALLS && warmupS + WARMUP <= WARMUP_MAX_S))) {
      const w = (await wrk(WARMUP)).point;
      warmupCalls += w.requests;
      warmupS += WARMUP;
      if (w.errors > 0) progress(`${v.key} c=${c} run ${run}: warm-up saw ${w.errors} errors ${JSON.stringify(w.error_detail)}`);
    }
    const quiet = await waitForQuiet(QUIET_WAIT * 1000);
    const measured = await wrk(DURATION);
    window.push(measured.window);
    row = { variant: v.key, concurrency: c, run, ...measured.point };
    if (quiet.waitedMs > 100) row.quiet_wait_ms = quiet.waitedMs;
    row.warmup_s = warmupS;
    row.warmup_calls = warmupCalls;
    perCall(row, Object.keys(sut.upstreams), v.upstream);
  } finally {
    await procs.stop(sut.child);
    if (sut.dir !== undefined) rmSync(sut.dir, { recursive: true, force: true });
  }
  if (sut.profileDir !== undefined && profile.summary === undefined && c === HI) {
    try {
      profile.summary = topSelfTime(mainThreadProfile(sut.profileDir, sut.child.pid as number), window, 20, gatewayBuild());
    } catch (err) {
      progress(`${name}: profile not read: ${(err as Error).message}`);
    }
  }
  return row;
}

/** A direct point: bench/direct.ts pinned to the system core, one concurrency, one run. */
async function directPoint(v: DirectVariant, c: number, run: number): Promise<Row> {
  const name = `${v.key}-c${c}-r${run}`;
  const child = procs.spawnPinned(SUT_CORE, process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'direct.ts'), v.mode, String(c), '1', String(DURATION), String(WARMUP), String(QUIET_WAIT), String(WARMUP_CALLS), String(WARMUP_MAX_S)]);
  logTo(child, join(RESULTS_DIR, `${name}.log`), false);
  let sample: { ok?: boolean } | undefined;
  let point: Point | undefined;
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  rl.on('line', (line) => {
    if (line.startsWith('BENCH_SAMPLE ')) sample = JSON.parse(line.slice('BENCH_SAMPLE '.length)) as { ok?: boolean };
    else if (line.startsWith('BENCH_POINT ')) point = JSON.parse(line.slice('BENCH_POINT '.length)) as Point;
  });
  const code = await new Promise<number | null>((r) => child.once('close', (x) => r(x)));
  if (code !== 0 || point === undefined) throw new Error(`direct ${v.mode} failed (exit ${String(code)}); see bench/results/${name}.log`);
  if (sample?.ok !== true) throw new Error(`direct ${v.mode}: the sample call did not return the expected echo: ${JSON.stringify(sample)}`);
  // the line's own concurrency and run are this point's
  const row: Row = { ...point, variant: v.key, concurrency: c, run };
  perCall(row, v.mode === 'stdio' ? ['upstream'] : [], v.mode === 'stdio' ? 'upstream' : undefined);
  return row;
}

// ---------------------------------------------------------------- summaries

const disturbed = (r: Point): boolean => (r.other_cpu_pct ?? 0) > DISTURBED_PCT;

/** Runs of a point; the undisturbed ones when there are any (see {@link DISTURBED_PCT}). */
function runsOf(rows: readonly Row[], variant: string, c: number): Row[] {
  const all = rows.filter((r) => r.variant === variant && r.concurrency === c);
  const quiet = all.filter((r) => !disturbed(r));
  return quiet.length > 0 ? quiet : all;
}

type Key = 'rps' | 'p50_us' | 'p99_us' | 'gateway_us_per_call' | 'upstream_us_per_call' | 'tree_us_per_call';

function meanOf(rows: readonly Row[], variant: string, c: number, key: Key): number {
  return mean(runsOf(rows, variant, c).flatMap((r) => (r[key] === undefined ? [] : [r[key]])));
}

/** "mean of 2 runs" / "1 undisturbed run of 2" / "2 runs, all disturbed". */
function runsNote(rows: readonly Row[], variant: string, c: number): string {
  const all = rows.filter((r) => r.variant === variant && r.concurrency === c).length;
  const used = runsOf(rows, variant, c);
  if (used.some(disturbed)) return `${all} run${all === 1 ? '' : 's'}, all disturbed`;
  return used.length === all ? `mean of ${all} run${all === 1 ? '' : 's'}` : `${used.length} undisturbed run${used.length === 1 ? '' : 's'} of ${all}`;
}

const ms = (us: number): string => (Number.isFinite(us) ? (us / 1000).toFixed(us < 10_000 ? 3 : 1) : 'n/a');
const us1 = (v: number | undefined): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(1) : '—');

/** The issue-shaped table: one row per system, means of the undisturbed runs. */
function summaryTable(rows: readonly Row[]): string[] {
  const out = [
    `| system | ${CONCURRENCIES.map((c) => `c=${c} req/s`).join(' | ')} | c=${HI} p50 / p99 ms | c=${LO} p50 / p99 ms | gateway CPU µs/call ${CONCURRENCIES.map((c) => `c=${c}`).join(' / ')} | upstream CPU µs/call c=${HI} | runs used |`,
    `|---|${CONCURRENCIES.map(() => '---:').join('|')}|---:|---:|---:|---:|---|`,
  ];
  for (const v of VARIANTS) {
    if (!rows.some((r) => r.variant === v.key)) continue;
    const m = (c: number, k: Key): number => meanOf(rows, v.key, c, k);
    const notes = [...new Set(CONCURRENCIES.map((c) => runsNote(rows, v.key, c)))].join('; ');
    const cpu = CONCURRENCIES.map((c) => us1(m(c, 'gateway_us_per_call'))).join(' / ');
    out.push(
      `| ${v.label} | ${CONCURRENCIES.map((c) => fmtInt(m(c, 'rps'))).join(' | ')} | ${ms(m(HI, 'p50_us'))} / ${ms(m(HI, 'p99_us'))} | ${ms(m(LO, 'p50_us'))} / ${ms(m(LO, 'p99_us'))} | ${cpu} | ${us1(m(HI, 'upstream_us_per_call'))} | ${notes} |`,
    );
  }
  return out;
}

/** Every point, in run order within each system. */
function pointsTable(rows: readonly Row[], failures: readonly string[]): string[] {
  const out = [
    '| system | c | run | load | req/s | p50 µs | p99 µs | p99÷p50 | p99.9 µs | max µs | calls > 1 ms | tree CPU µs/call | upstream CPU µs/call | gateway CPU µs/call | errors | load-gen CPU | system CPU | other CPU |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const order = VARIANTS.map((v) => v.key);
  const sorted = [...rows].sort((a, b) => order.indexOf(a.variant) - order.indexOf(b.variant) || a.concurrency - b.concurrency || a.run - b.run);
  for (const r of sorted) {
    const errs = r.errors === 0 ? '0' : `${r.errors} ${JSON.stringify(r.error_detail ?? {})}`;
    const direct = r.variant.startsWith('direct');
    // the direct client is its own load generator, on the system core
    const load = direct ? '— (the client)' : pct(r.loadgen_cpu_pct);
    const system = direct ? pct((100 * (r.tree_cpu_s?.['server'] ?? NaN)) / r.seconds) : pct(r.server_cpu_pct);
    const loadKind = direct ? 'the client' : r.concurrency === 1 ? 'sequential' : 'wrk';
    const over = r.over_1ms === undefined ? '—' : `${fmtInt(r.over_1ms)} (${((100 * r.over_1ms) / Math.max(1, r.requests)).toFixed(2)}%)`;
    out.push(
      `| ${r.variant} | ${r.concurrency} | ${r.run} | ${loadKind} | ${fmtInt(r.rps)} | ${fmtInt(r.p50_us)} | ${fmtInt(r.p99_us)} | ${(r.p99_us / r.p50_us).toFixed(1)} | ${r.p999_us === undefined ? '—' : fmtInt(r.p999_us)} | ${r.max_us === undefined ? '—' : fmtInt(r.max_us)} | ${over} | ${us1(r.tree_us_per_call)} | ${us1(r.upstream_us_per_call)} | ${us1(r.gateway_us_per_call)} | ${errs} | ${load} | ${system} | ${pct(r.other_cpu_pct)}${disturbed(r) ? ' ⚠' : ''} |`,
    );
  }
  for (const f of failures) out.push(`| failed: ${f.replace(/\|/g, '/').split('\n')[0] ?? ''} | | | | | | | | | | | | | | | | | |`);
  return out;
}

/** A check from a measured value (NaN: not measured). */
function check(name: string, target: string, value: number, pass: (v: number) => boolean, measured: string): TargetCheck {
  return { name, target, measured: Number.isFinite(value) ? measured : 'not measured', pass: Number.isFinite(value) ? pass(value) : undefined };
}

function checks(rows: readonly Row[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const m = (v: string, c: number, k: Key): number => meanOf(rows, v, c, k);
  for (const [v, limit, path] of [['stdio', 30, 'stdio'], ['inprocess', 15, 'in-process']] as const) {
    // checked at the throughput point; at low concurrency every call also pays the wake-ups of an
    // idle process (raw uWS shows it too), listed for information
    const at = m(v, HI, 'gateway_us_per_call');
    const others = CONCURRENCIES.filter((c) => c !== HI).map((c) => `c=${c}: ${us1(m(v, c, 'gateway_us_per_call'))} µs`);
    out.push(
      check(`gateway CPU per call, ${path}, at c=${HI}`, `≤ ${limit} µs`, at, (x) => x <= limit, `${us1(at)} µs (${runsNote(rows, v, HI)}${others.length > 0 ? `; ${others.join(', ')}` : ''})`),
    );
  }
  const ratio = (a: string, b: string, name: string): void => {
    const x = m(a, HI, 'rps');
    const y = m(b, HI, 'rps');
    out.push(check(name, '≥ 0.50', x / y, (r) => r >= 0.5, `${(x / y).toFixed(2)} (${fmtInt(x)} / ${fmtInt(y)} req/s; ${runsNote(rows, a, HI)} / ${runsNote(rows, b, HI)})`));
  };
  ratio('inprocess', 'raw', `P1 in-process /mcp req/s ÷ raw uWS at c=${HI}`);
  ratio('stdio', 'direct-stdio', `P2 stdio /mcp req/s ÷ direct SDK stdio at c=${HI}`);
  const tp = m('stdio', LO, 'p50_us');
  const dp = m('direct-stdio', LO, 'p50_us');
  out.push(check(`P3 added p50, stdio over direct SDK stdio, at c=${LO}`, '≤ 100 µs', tp - dp, (x) => x <= 100, `${Math.round(tp - dp)} µs (${fmtInt(tp)} − ${fmtInt(dp)} µs; ${runsNote(rows, 'stdio', LO)} / ${runsNote(rows, 'direct-stdio', LO)})`));
  // the floor this machine allows: the same client against a server that does nothing
  const rawP99 = m('raw', LO, 'p99_us');
  const floor = Number.isFinite(rawP99) ? `; raw uWS p99 at c=${LO} in the same run: ${ms(rawP99)} ms` : '';
  for (const [v, path] of [['stdio', 'stdio'], ['inprocess', 'in-process']] as const) {
    const p99 = m(v, LO, 'p99_us');
    const used = runsOf(rows, v, LO);
    const over = mean(used.flatMap((r) => (r.over_1ms === undefined ? [] : [(100 * r.over_1ms) / Math.max(1, r.requests)])));
    const p999 = mean(used.flatMap((r) => (r.p999_us === undefined ? [] : [r.p999_us])));
    const tail = Number.isFinite(over) ? `; p99.9 ${ms(p999)} ms, ${over.toFixed(2)}% of calls > 1 ms` : '';
    out.push(check(`P3 p99 at c=${LO}, ${path}`, '≤ 1 ms', p99, (x) => x <= 1000, `${ms(p99)} ms (${runsNote(rows, v, LO)}${tail}${floor})`));
  }
  for (const [v, path] of [['stdio', 'stdio'], ['inprocess', 'in-process']] as const) {
    const r = runsOf(rows, v, HI);
    const spread = mean(r.map((x) => x.p99_us / x.p50_us));
    out.push(check(`P8 p99 ÷ p50 at c=${HI}, ${path}`, '≤ 5', spread, (x) => x <= 5, `${spread.toFixed(1)} (${runsNote(rows, v, HI)})`));
  }
  return out;
}

// ---------------------------------------------------------------- main

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
  if (cpus().length < 2) progress(`only ${cpus().length} CPU: load generator and system under test share a core`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const started = Date.now();
  if (VARIANTS.some((v) => v.kind === 'wrk' && v.isGateway)) {
    progress('building the gateway with tsc (the bench runs the build, as `npm start` does)');
    gatewayBuild();
  }
  progress(
    `${QUICK ? 'quick: ' : ''}window ${DURATION} s, warm-up ${WARMUP} s slices until ${WARMUP_CALLS} calls (at most ${WARMUP_MAX_S} s), concurrency ${CONCURRENCIES.join(',')}, ${RUNS} run(s), systems ${VARIANTS.map((v) => v.key).join(',')}, ` +
      `body checks ${CHECK_BODIES ? 'on' : 'off'}${PROFILE ? ', profiling the gateway' : ''}; ${wrk}`,
  );

  const rows: Row[] = [];
  const failures: string[] = [];
  const profiles = new Map<string, { summary?: ProfileSummary }>();
  for (let run = 1; run <= RUNS; run++) {
    for (const c of CONCURRENCIES) {
      for (const v of VARIANTS) {
        const name = `${v.key} c=${c} run ${run}`;
        try {
          let profile = profiles.get(v.key);
          if (profile === undefined) profiles.set(v.key, (profile = {}));
          const r = v.kind === 'wrk' ? await wrkPoint(v, c, run, profile) : await directPoint(v, c, run);
          rows.push(r);
          const err = r.errors > 0 ? `, ${r.errors} errors ${JSON.stringify(r.error_detail ?? {})}` : '';
          const noisy = disturbed(r) ? `, disturbed: other CPU ${Math.round(r.other_cpu_pct ?? 0)}%` : '';
          const waited = r.quiet_wait_ms ? ` (waited ${(r.quiet_wait_ms / 1000).toFixed(1)} s for a quiet machine)` : '';
          progress(
            `${name}: ${fmtInt(r.rps)} req/s, p50 ${fmtInt(r.p50_us)} µs, p99 ${fmtInt(r.p99_us)} µs, CPU µs/call tree ${us1(r.tree_us_per_call)} upstream ${us1(r.upstream_us_per_call)} gateway ${us1(r.gateway_us_per_call)}${err}${noisy}${waited}`,
          );
        } catch (err) {
          const msg = `${name}: ${err instanceof Error ? err.message : String(err)}`;
          failures.push(msg);
          progress(`FAILED ${msg}`);
        }
      }
    }
  }
  const results = checks(rows);

  const lines: string[] = [];
  lines.push(`## Tributary benchmark — MCP tools/call, ${DURATION} s windows, warm-up ≥ ${WARMUP_CALLS} calls (${WARMUP} s slices, ≤ ${WARMUP_MAX_S} s), ${RUNS} run${RUNS === 1 ? '' : 's'} per point${QUICK ? ' (quick)' : ''}`);
  lines.push('');
  lines.push(
    `System under test (gateway and its stdio children; raw uWS; the direct client with its server-everything) pinned to core ${SUT_CORE}; ` +
      `the load pinned to core ${LOADGEN_CORE}: at c=1 a sequential client (one keep-alive connection, one request at a time, every request timed; bench/seq-client.ts), ` +
      `above it wrk (1 thread, connections = concurrency)${CHECK_BODIES ? '; every response body checked' : ''}. ` +
      `A fresh system per point. Tributary: ${process.env['BENCH_GATEWAY_BUILD'] ? `the prebuilt ${gatewayBuild()} (BENCH_GATEWAY_BUILD)` : 'its tsc build'} with the embedded default config, ` +
      `node flags \`${NODE_FLAGS.join(' ') || '(none)'}\`${process.env['BENCH_NODE_FLAGS'] !== undefined ? ' (BENCH_NODE_FLAGS)' : ' (as `npm start`)'}. ` +
      'CPU per call: utime + stime from /proc over the measured window ÷ completed calls; gateway = the tree minus its upstream processes; ' +
      'for raw uWS that is the whole server, for the direct row the SDK client (which is also the load). ' +
      `"other CPU" is machine-wide CPU not charged to the measured processes; ⚠ marks points above ${DISTURBED_PCT}% (disturbed), which the means skip when an undisturbed run exists.` +
      (process.env['BENCH_NICE'] ? ` Every measured process and the load ran under \`nice -n ${process.env['BENCH_NICE']}\` (BENCH_NICE).` : '') +
      (PROFILE ? ' --profile: the gateway ran under --cpu-prof (slower than normal).' : ''),
  );
  lines.push('', ...summaryTable(rows), '', '### Every point', '', ...pointsTable(rows, failures));
  for (const v of VARIANTS) {
    const p = profiles.get(v.key)?.summary;
    if (p === undefined) continue;
    lines.push(
      '',
      `### Gateway CPU profile, ${v.label}, c=${HI} (top self time over the measured window: ${p.busy_ms.toFixed(0)} ms busy of ${p.window_ms.toFixed(0)} ms sampled on the main thread)`,
      '',
      '`dist/X.js:N` is the tsc build of `src/X.ts` (lines shift a little); `%` is of non-idle samples.',
      '',
      ...selfTimeTable(p),
    );
  }
  lines.push('', '### Targets', '', ...results.map(checkLine));
  const hop = meanOf(rows, 'raw', LO, 'p50_us');
  const added = meanOf(rows, 'stdio', LO, 'p50_us') - meanOf(rows, 'direct-stdio', LO, 'p50_us');
  if (Number.isFinite(hop) && Number.isFinite(added)) {
    // the direct row has no HTTP hop; any HTTP gateway pays at least the raw uWS round trip
    lines.push(`- info: of the ${Math.round(added)} µs added at c=${LO}, the bare HTTP round trip (raw uWS p50 at c=${LO}) is ${Math.round(hop)} µs`);
  }
  lines.push('', `(${((Date.now() - started) / 1000).toFixed(0)} s total; results in bench/results/latest.json)`);
  process.stdout.write(lines.join('\n') + '\n');

  writeResults(join(RESULTS_DIR, 'latest.json'), {
    wrk,
    settings: {
      gateway_node_flags: NODE_FLAGS,
      gateway_build: process.env['BENCH_GATEWAY_BUILD'] ?? null,
      nice: process.env['BENCH_NICE'] ?? null,
      quick: QUICK,
      duration_s: DURATION,
      warmup_s: WARMUP,
      warmup_calls: WARMUP_CALLS,
      warmup_max_s: WARMUP_MAX_S,
      runs: RUNS,
      concurrencies: CONCURRENCIES,
      variants: VARIANTS.map((v) => v.key),
      check_bodies: CHECK_BODIES,
      profile: PROFILE,
      pinned: procs.pinning,
      sut_core: SUT_CORE,
      loadgen_core: LOADGEN_CORE,
    },
    rows,
    failures,
    profiles: Object.fromEntries([...profiles].flatMap(([k, p]) => (p.summary ? [[k, p.summary]] : []))),
    checks: results,
  });
}

runMain('bench', procs, main);
