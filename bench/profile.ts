/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and sums self time per function, counting only
 * samples inside given time windows (the measured load, not start-up or idle gaps). V8 stamps
 * samples with CLOCK_MONOTONIC µs, the clock of `process.hrtime`, so windows recorded by the
 * runner line up with the profile of another process.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A [start, end] window in µs of CLOCK_MONOTONIC (`process.hrtime.bigint() / 1000n`). */
export type Window = readonly [number, number];

export interface SelfTime {
  fn: string;
  /** Share of the busy (non-idle) samples in the windows, %. */
  pct: number;
  ms: number;
}

export interface ProfileSummary {
  /** Sampled time inside the windows, ms. */
  window_ms: number;
  /** Of that, not idle, ms. */
  busy_ms: number;
  top: SelfTime[];
}

/**
 * The main thread's `.cpuprofile` that `node --cpu-prof --cpu-prof-dir <dir>` wrote for process
 * `pid` (node names them `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`; thread 0 is the
 * main thread). Read it once the process has exited.
 * @throws Error when there is none.
 */
export function mainThreadProfile(dir: string, pid: number): string {
  const file = readdirSync(dir).find((f) => f.includes(`.${pid}.0.`) && f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no main-thread profile in ${dir}`);
  return join(dir, file);
}

/** A markdown table of `p.top`: self % (of the busy samples) and function, one row each. */
export function selfTimeTable(p: ProfileSummary): string[] {
  return ['| self % | function |', '|---:|---|', ...p.top.map((t) => `| ${t.pct.toFixed(1)} | \`${t.fn}\` |`)];
}

function frameName(cf: CallFrame, root: string): string {
  const url = cf.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(root.endsWith('/') ? root : `${root}/`, '');
  const where = url === '' ? '' : ` ${url}:${cf.lineNumber + 1}`;
  return `${cf.functionName || '(anonymous)'}${where}`;
}

/** The `n` functions with the most self time inside `windows`; `root` is stripped from paths. */
export function topSelfTime(path: string, windows: readonly Window[], n: number, root: string): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const perNode = new Map<number, number>();
  let t = p.startTime;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const delta = p.timeDeltas[i] ?? 0;
    t += delta;
    if (!windows.some(([a, b]) => t >= a && t <= b)) continue;
    const id = p.samples[i] as number;
    perNode.set(id, (perNode.get(id) ?? 0) + delta);
    total += delta;
  }
  const perFn = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of perNode) {
    const node = byId.get(id);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const key = frameName(node.callFrame, root);
    perFn.set(key, (perFn.get(key) ?? 0) + us);
  }
  const busy = total - idle;
  const top = [...perFn]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, us]) => ({ fn, pct: busy > 0 ? (100 * us) / busy : 0, ms: us / 1000 }));
  return { window_ms: total / 1000, busy_ms: busy / 1000, top };
}
