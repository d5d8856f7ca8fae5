/**
 * `npm run bench:toollog-store`: what LevelDB costs per tool call of the `bench:ws` kind (the
 * `demo-echo` call with `BENCH_ARG_BYTES`, default 4096, of ASCII words: arguments and a result of
 * that size each), on every thread of the process, for the two layouts of the tool log's payloads
 * over 1 KiB, in the same run:
 *
 *   - `one database`: payloads in a sublevel of the store's database (schema version 4): two
 *     time-ordered key ranges in one LevelDB, so compactions merge level-0 tables with the levels below;
 *   - `two databases`: payloads in the store's payload database (schema version 5): one range each,
 *     level-0 tables move down without being rewritten.
 *
 * Each round opens a fresh store, writes `BENCH_CALLS` (default 60,000: ≈ 0.5 GB of payloads)
 * records through the store's batch writer the way the event recorder does
 * (`ToolLogRepository.eventEntryOps`, 64 calls in flight), waits until LevelDB's background work
 * has stopped (the process uses < 2 % of a core for 0.5 s), and reports CPU µs per call from
 * `process.cpuUsage()` (user + system, every thread: the event loop, the libuv pool's commits,
 * LevelDB's compaction thread) until then. Then it times the readers on that log: a 100-entry
 * page without a filter (keys counted, the page's records and payloads read), with a filter (every
 * summary decoded), and stats. Rounds alternate the layouts (`BENCH_ROUNDS`, default 2 each).
 * Pin it to one core for steadier figures: `taskset -c 1 npm run bench:toollog-store`.
 *
 * Profile: `taskset -c 1 node --cpu-prof --import tsx bench/tool-log-store.ts` (the main thread only;
 * LevelDB's threads: `perf record -g`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/log/logger.js';
import { openStore, type Store } from '../src/store/open.js';
import { ToolLogRepository, type ToolLogRecords } from '../src/store/tool-log.js';
import type { ToolEventRecord } from '../src/store/tool-log-record.js';
import { envNumber } from './procs.js';
import { wordText } from './ws-throughput-data.js';

const ARG_BYTES = Math.max(1, Math.round(envNumber('BENCH_ARG_BYTES', 4096)));
const CALLS = Math.max(1000, Math.round(envNumber('BENCH_CALLS', 60_000)));
const ROUNDS = Math.max(1, Math.round(envNumber('BENCH_ROUNDS', 2)));
const IN_FLIGHT = 64;

type Layout = 'one database' | 'two databases';

interface Row {
  readonly layout: Layout;
  readonly round: number;
  readonly cpuUsPerCall: number;
  readonly writeCpuUsPerCall: number;
  readonly drainMs: number;
  readonly pageMs: number;
  readonly filteredPageMs: number;
  readonly statsMs: number;
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Waits until the process (LevelDB's threads included) has used < 2 % of a core for 0.5 s; ms waited. */
async function drain(): Promise<number> {
  const start = performance.now();
  for (;;) {
    const before = cpuUs();
    await new Promise((r) => setTimeout(r, 500));
    if (cpuUs() - before < 10_000) return performance.now() - start - 500;
  }
}

function repositoryOf(store: Store, layout: Layout): ToolLogRepository {
  if (layout === 'two databases') return store.toolLog;
  const view = { keyEncoding: 'utf8', valueEncoding: 'view' } as const;
  return new ToolLogRepository(
    store.db,
    store.db.sublevel<string, Uint8Array>('toollog', view) as ToolLogRecords,
    store.db.sublevel<string, Uint8Array>('toollog_payload', view) as ToolLogRecords,
    store.writer,
    createLogger('silent'),
  );
}

async function round(layout: Layout, n: number): Promise<Row> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trib-bench-toollog-'));
  const store = await openStore(dir, createLogger('silent'));
  try {
    const log = repositoryOf(store, layout);
    await log.init();
    const message = wordText(ARG_BYTES, n + 1);
    const args = { message };
    const result = { content: [{ type: 'text', text: `Echo: ${message}` }] };
    let seq = 0;
    const call = (): Promise<void> => {
      seq++;
      const event: ToolEventRecord = { seq, event_type: 'ToolInvocationCompleted', tool_name: 'demo-echo', client_name: 'demo', latency_ms: 0.2 };
      return store.writer.writeAll(log.eventEntryOps({ client: 'demo', tool: 'echo', arguments: args, result, status: 'success', latency_ms: 0.2, cost_usd: 0, surface: 'ws', trace_id: 'a'.repeat(32) }, event));
    };
    const t0 = cpuUs();
    let issued = 0;
    const worker = async (): Promise<void> => {
      while (issued < CALLS) {
        issued++;
        await call();
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const t1 = cpuUs();
    const drainMs = await drain();
    const t2 = cpuUs();
    const timed = async (f: () => Promise<unknown>): Promise<number> => {
      const s = performance.now();
      await f();
      return performance.now() - s;
    };
    const pageMs = await timed(() => log.query({ limit: 100 }));
    const filteredPageMs = await timed(() => log.query({ limit: 100, client: 'demo' }));
    const statsMs = await timed(() => log.stats({}));
    return { layout, round: n, cpuUsPerCall: (t2 - t0) / CALLS, writeCpuUsPerCall: (t1 - t0) / CALLS, drainMs, pageMs, filteredPageMs, statsMs };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
for (let r = 1; r <= ROUNDS; r++) {
  for (const layout of (r % 2 === 1 ? ['one database', 'two databases'] : ['two databases', 'one database']) as Layout[]) {
    const row = await round(layout, r);
    rows.push(row);
    process.stderr.write(`[bench:toollog-store] ${layout} round ${r}: ${row.cpuUsPerCall.toFixed(1)} µs/call\n`);
  }
}
const f1 = (x: number): string => x.toFixed(1);
console.log(`## Tool-log store cost per call, ${ARG_BYTES} B arguments + result of demo-echo, ${CALLS.toLocaleString('en-US')} calls per round, ${IN_FLIGHT} in flight`);
console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
console.log('| layout | round | CPU µs/call (all threads, to idle) | of it while writing | drain after (ms) | page of 100 (ms) | filtered page of 100 (ms) | stats (ms) |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.layout} | ${r.round} | ${f1(r.cpuUsPerCall)} | ${f1(r.writeCpuUsPerCall)} | ${Math.round(r.drainMs)} | ${f1(r.pageMs)} | ${f1(r.filteredPageMs)} | ${f1(r.statsMs)} |`);
const median = (layout: Layout): number => {
  const xs = rows.filter((r) => r.layout === layout).map((r) => r.cpuUsPerCall).sort((a, b) => a - b);
  return xs[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;
};
console.log(`\nlower median CPU µs/call: one database ${f1(median('one database'))}, two databases ${f1(median('two databases'))}`);
