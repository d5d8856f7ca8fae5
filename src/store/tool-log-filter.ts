/**
 * The tool log's filters and sums, shared by its query and stats scans: the summary predicate a
 * {@link ToolLogFilter} compiles to, the time range as key bounds, argument checks, and a
 * compensated sum (Neumaier: https://en.wikipedia.org/wiki/Kahan_summation_algorithm).
 */
import type { ToolLogSummary } from './tool-log-record.js';
import { timeRange } from './time-key.js';

/** Filters shared by `ToolLogRepository.query` and `ToolLogRepository.stats`; all optional, ANDed. */
export interface ToolLogFilter {
  /** Upstream client name, or any of several. */
  readonly client?: string | readonly string[];
  /** Upstream tool name, or any of several. */
  readonly tool?: string | readonly string[];
  readonly status?: 'success' | 'error';
  readonly virtual_key?: string | readonly string[];
  readonly surface?: string | readonly string[];
  /** Earliest timestamp, inclusive: ISO-8601 text or epoch ms. */
  readonly from?: string | number;
  /** Latest timestamp, inclusive: ISO-8601 text or epoch ms. */
  readonly to?: string | number;
}

type Match = (s: ToolLogSummary) => boolean;

function oneOf(value: string | readonly string[] | undefined): ((s: string | null) => boolean) | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return (s) => s === value;
  const set = new Set(value);
  return (s) => s !== null && set.has(s);
}

/** The summary predicate for `f`, or `undefined` when only the time range filters. */
export function compileFilter(f: ToolLogFilter): Match | undefined {
  const client = oneOf(f.client);
  const tool = oneOf(f.tool);
  const vk = oneOf(f.virtual_key);
  const surface = oneOf(f.surface);
  const ok = f.status === undefined ? undefined : f.status === 'success' ? 1 : 0;
  if (client === undefined && tool === undefined && vk === undefined && surface === undefined && ok === undefined) return undefined;
  return (s) =>
    (client === undefined || client(s[0])) &&
    (tool === undefined || tool(s[1])) &&
    (ok === undefined || s[2] === ok) &&
    (vk === undefined || vk(s[5])) &&
    (surface === undefined || surface(s[6]));
}

function toMs(value: string | number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) throw new RangeError(`tool log: bad ${name} ${JSON.stringify(value)}`);
  return ms;
}

export function rangeOf(f: ToolLogFilter): { gte?: string; lt?: string } {
  return timeRange(toMs(f.from, 'from'), toMs(f.to, 'to'));
}

export function nonNegativeInt(n: number, name: string): number {
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`tool log: ${name} must be an integer ≥ 0`);
  return n;
}

/** Neumaier compensated summation: sums thousands of small USD amounts without drift. */
export class KahanSum {
  #sum = 0;
  #c = 0;
  add(x: number): void {
    const t = this.#sum + x;
    if (Math.abs(this.#sum) >= Math.abs(x)) this.#c += this.#sum - t + x;
    else this.#c += x - t + this.#sum;
    this.#sum = t;
  }
  get value(): number {
    return this.#sum + this.#c;
  }
}
