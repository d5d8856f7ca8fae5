/**
 * Small helpers shared by the benchmark scripts: CPU time of processes from /proc, percentiles,
 * the shape of one measured point, number formatting for the tables, the results file, and an MCP
 * Streamable HTTP client for setup and check calls (`fetch`, not on the measured path).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** One measured point (one variant, one concurrency, one run). Latencies in µs. */
export interface Point {
  requests: number;
  seconds: number;
  rps: number;
  p50_us: number;
  p99_us: number;
  /** Failed calls: transport errors, non-2xx, JSON-RPC errors or `isError` results where seen. */
  errors: number;
  /** What the error count is made of (wrk: connect/read/write/status/timeout/rpc). */
  error_detail?: Record<string, number>;
  /** Responses whose body was inspected (wrk with body checks; the direct client sees all). */
  checked: number;
  /** CPU of the load generator, % of one core (wrk; the direct client is its own load generator). */
  loadgen_cpu_pct?: number;
  /** CPU of the server side (process and its children), % of one core. */
  server_cpu_pct?: number;
  /**
   * CPU seconds during the point of named process trees: `server` is the system under test's
   * whole tree (the direct client: itself and its upstream); other keys are the runner's (e.g. the
   * upstream processes, part of `server`). From /proc, so tick-granular (10 ms).
   */
  tree_cpu_s?: Record<string, number>;
  /**
   * CPU used by anything else on the machine during the point (other processes), % of one core:
   * machine busy time minus the measured processes' own. Tick-based, so it can under-count (it is
   * clamped at 0), never meaningfully over-count.
   */
  other_cpu_pct?: number;
  /** softirq time on the machine (mostly loopback TCP of the point itself), % of one core. */
  softirq_pct?: number;
  /** CPU time the hypervisor took away (steal), % of one core. */
  steal_pct?: number;
  /** Time spent before the point waiting for other work on the machine to stop, ms. */
  quiet_wait_ms?: number;
}

const CLK_TCK = 100; // Linux USER_HZ; `getconf CLK_TCK` is 100 on every mainstream kernel config

/** utime + stime of one process (all its threads), seconds; 0 when it is gone. */
function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "pid (comm) ": state is field 3; utime 14, stime 15 (1-based)
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Direct children of a process (from every thread's `children` list); [] when it is gone. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
        if (text !== '') for (const c of text.split(/\s+/)) out.push(Number(c));
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return out;
}

/** CPU seconds of a process and (transitively) its children that are still alive. */
export function treeCpuSeconds(pid: number): number {
  let total = procCpuSeconds(pid);
  for (const c of childPids(pid)) total += treeCpuSeconds(c);
  return total;
}

/** The command line of a process, arguments joined by spaces; '' when it is gone. */
export function processCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

export interface SystemCpu {
  /** user + nice + system + irq + softirq. */
  busy: number;
  /**
   * softirq alone: loopback TCP processing. /proc/stat books it apart, but the per-process times
   * in /proc/PID/stat include what ran in the process' context, so it belongs in `busy` when
   * comparing the two (measured: at 97k req/s, wrk + server ≈ busy including softirq).
   */
  softirq: number;
  steal: number;
}

/** Machine-wide CPU seconds from /proc/stat. */
export function systemCpuSeconds(): SystemCpu {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return { busy: (user + nice + system + irq + softirq) / CLK_TCK, softirq: softirq / CLK_TCK, steal: steal / CLK_TCK };
  } catch {
    return { busy: NaN, softirq: NaN, steal: NaN };
  }
}

/** Fills `other_cpu_pct`, `softirq_pct` and `steal_pct` of a point from /proc/stat readings around it. */
export function fillOtherCpu(p: Point, before: SystemCpu, ownCpuSeconds: number, wallSeconds: number): void {
  const after = systemCpuSeconds();
  if (!Number.isFinite(after.busy) || !Number.isFinite(before.busy) || wallSeconds <= 0) return;
  p.other_cpu_pct = Math.max(0, (100 * (after.busy - before.busy - ownCpuSeconds)) / wallSeconds);
  p.softirq_pct = (100 * (after.softirq - before.softirq)) / wallSeconds;
  p.steal_pct = (100 * (after.steal - before.steal)) / wallSeconds;
}

/** The q-quantile (0..1) of ascending-sorted values (nearest rank). */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Points whose `other_cpu_pct` is above this were disturbed by other work on the machine. */
export const DISTURBED_PCT = 25;

/**
 * Waits (at most `maxMs`) until the machine is quiet: machine-wide busy CPU under `thresholdPct`
 * of one core over a 250 ms sample. Called between points, when the measured processes are idle,
 * so what it sees is other work (another build or test run on the same machine).
 * Resolves with the ms waited beyond the first sample and the last busy %.
 */
export async function waitForQuiet(maxMs: number, thresholdPct = 15): Promise<{ waitedMs: number; busyPct: number }> {
  const start = Date.now();
  let busyPct = NaN;
  for (;;) {
    const a = systemCpuSeconds();
    const t = performance.now();
    await sleep(250);
    const b = systemCpuSeconds();
    busyPct = (100 * (b.busy - a.busy)) / ((performance.now() - t) / 1000);
    if (!(busyPct >= thresholdPct) || Date.now() - start >= maxMs) break;
  }
  return { waitedMs: Math.max(0, Date.now() - start - 250), busyPct };
}

/** CLOCK_MONOTONIC in µs, the clock of V8's `.cpuprofile` samples (see bench/profile.ts `Window`). */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Arithmetic mean; NaN for no values. */
export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Median of the values (the upper one of the middle two for an even count); NaN for no values. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/**
 * Wall-clock ns per call of `f` over `iterations` calls, cycling through `inputs` (the call's
 * index as second argument); the results are summed into a sink the JIT cannot drop.
 */
export function nsPerCall<T>(f: (input: T, i: number) => number, inputs: readonly T[], iterations: number): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += f(inputs[i % inputs.length] as T, i);
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  if (sink < 0) throw new Error('unreachable');
  return ns;
}

/** A whole number with thousands separators (`12,345`); `n/a` when missing or not finite. */
export const fmtInt = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');

/** A CPU share as a whole percent (`42%`); `?` when missing or not finite. */
export const pct = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '?' : `${Math.round(v)}%`);

/**
 * Writes a runner's results file: `{date, node, cpus, ...fields}` as JSON indented by 2, with a
 * final newline (`date` ISO-8601, `node` the version, `cpus` the model of each CPU).
 */
export function writeResults(file: string, fields: Record<string, unknown>): void {
  const json = { date: new Date().toISOString(), node: process.version, cpus: cpus().map((c) => c.model), ...fields };
  writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
}

/** A target check of a runner (issue targets; a MISS never fails the process). */
export interface TargetCheck {
  name: string;
  /** The target, e.g. `≥ 0.50`. */
  target: string;
  /** What was measured, as printed. */
  measured: string;
  /** undefined: not measured. */
  pass: boolean | undefined;
}

/** `- PASS|MISS|N/A  <name>: <measured> (target <target>)`. */
export function checkLine(c: TargetCheck): string {
  const verdict = c.pass === undefined ? 'N/A ' : c.pass ? 'PASS' : 'MISS';
  return `- ${verdict} ${c.name}: ${c.measured} (target ${c.target})`;
}

// ---------------------------------------------------------------- MCP over HTTP (setup and checks)

/** The MCP protocol version every bench client speaks (also in bench/mcp-call.lua). */
export const MCP_PROTOCOL_VERSION = '2025-06-18';

/** The `params` of a bench client's `initialize` request: no capabilities, `clientInfo` named `client`. */
export function initializeParams(client: string): { protocolVersion: string; capabilities: Record<string, never>; clientInfo: { name: string; version: string } } {
  return { protocolVersion: MCP_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: client, version: '0.0.0' } };
}

/** A reply of {@link mcpPost}: HTTP status, the `Mcp-Session-Id` header (null when absent), the body. */
export interface McpReply {
  status: number;
  session: string | null;
  text: string;
}

/**
 * POSTs `body` as JSON to `<url>/mcp` with the headers of an MCP Streamable HTTP client (accept
 * JSON and SSE, the protocol version), `Mcp-Session-Id: session` when given, then `headers` (e.g.
 * a credential). Resolves once the whole body is read; rejects only when fetch does.
 */
export async function mcpPost(url: string, body: unknown, session?: string, headers: Record<string, string> = {}): Promise<McpReply> {
  const all: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': MCP_PROTOCOL_VERSION };
  if (session !== undefined) all['mcp-session-id'] = session;
  const r = await fetch(`${url}/mcp`, { method: 'POST', headers: { ...all, ...headers }, body: JSON.stringify(body) });
  return { status: r.status, session: r.headers.get('mcp-session-id'), text: await r.text() };
}

/**
 * Opens an MCP session on `<url>/mcp`: `initialize` (as client `client`), then
 * `notifications/initialized`, both with `headers`. Resolves with the session id.
 * @throws Error naming the step and the reply (status and up to 300 characters of the body)
 * unless `initialize` answers 200 with a session id and the notification 202.
 */
export async function openSession(url: string, client: string, headers: Record<string, string> = {}): Promise<string> {
  const init = await mcpPost(url, { jsonrpc: '2.0', id: 0, method: 'initialize', params: initializeParams(client) }, undefined, headers);
  if (init.status !== 200 || !init.session) throw new Error(`initialize failed: ${init.status} ${init.text.slice(0, 300)}`);
  const ack = await mcpPost(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, init.session, headers);
  if (ack.status !== 202) throw new Error(`notifications/initialized: expected 202, got ${ack.status} ${ack.text.slice(0, 300)}`);
  return init.session;
}
