/**
 * Small helpers shared by the benchmark scripts: CPU time of processes from /proc, percentiles,
 * and the shape of one measured point.
 */
import { readFileSync, readdirSync } from 'node:fs';

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

/** Direct children of a process (from every thread's `children` list). */
function childPids(pid: number): number[] {
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
