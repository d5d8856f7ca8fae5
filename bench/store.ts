/**
 * `npm run bench:store`: LevelDB write paths of the store, same run, fresh temp dirs each:
 *
 *   (a)  BatchWriter: N `write(putOp(...))` issued at once, awaited together (default window
 *        10 ms, maxBatch 1000): ~N/1000 `db.batch()` calls
 *   (a') the real path: N `store.toolLog.append()` at once (one tool-log record per append)
 *   (b)  one `sublevel.put()` per entry, awaited one after another (baseline)
 *   (c)  one `sublevel.put()` per entry, all issued at once, awaited together
 *
 * (a), (b) and (c) write the same bytes: the same ~500 B tool-log entry, msgpackr-encoded, into one
 * sublevel, with LevelDB's default `sync: false`. An informational second table repeats (a) and (b)
 * with `sync: true` (fsync per commit). Then the latency a batch adds (time from `write()` to its resolve) for a trickle of
 * writes spaced 2 ms apart, against a direct `put()` under the same trickle; then query/stats
 * times over a 100 000-entry tool log.
 *
 * Then the records one tool call writes, by layout, commit form and op cap: CPU per call and the
 * event-loop hold of each commit (`store-records.ts`); then the `since` catch-up read of tool
 * events from their tool-log records against the event log's own sublevel.
 *
 * Environment: BENCH_STORE_N (entries, default 10000), BENCH_STORE_SCAN_N (tool-log size for the
 * query/stats table, default 100000; 0 skips it), BENCH_STORE_ONLY=records (only the records
 * table) or =catchup (only the catch-up table). Profile: `node --cpu-prof --import tsx bench/store.ts`.
 *
 * Prints markdown tables and the target line "batched ≥ 10× unbatched sequential" as PASS/MISS;
 * a MISS never fails the process (DESIGN: benchmarks never gate on absolute times).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { createLogger } from '../src/log/logger.js';
import { BatchWriter, commitOps, levelBatchCommit, putOp, type BatchOp } from '../src/store/batcher.js';
import { encodeValue } from '../src/store/codec.js';
import { openSublevel, type RootDb, type Sublevel } from '../src/store/db.js';
import { EventRecorder } from '../src/handlers/event-recorder.js';
import { EventLogRepository, type SeqGap, type StoredEvent } from '../src/store/events.js';
import { openStore } from '../src/store/open.js';
import { toWire, type GatewayEvent } from '../src/streams/events.js';
import { toLogEntry } from '../src/handlers/tool-log.js';
import type { ToolLogEntry, ToolLogInput } from '../src/store/tool-log.js';
import { quantile, sleep } from './lib.js';
import { arrayCommit, arrayOp, recordsChild, recordsTable } from './store-records.js';

const N = Number(process.env['BENCH_STORE_N'] ?? 10_000);
const SCAN_N = Number(process.env['BENCH_STORE_SCAN_N'] ?? 100_000);
const silent = createLogger('silent');
/** The writer's op caps per `db.batch()` the records table compares (the default first). */
const RECORD_CAPS = [256, 1024];

const CLIENTS = ['everything', 'memory', 'filesystem', 'github', 'demo'];
const TOOLS = ['echo', 'add', 'search_files', 'read_file', 'create_issue', 'get_weather'];

function sampleInput(i: number): ToolLogInput {
  return {
    client: CLIENTS[i % CLIENTS.length] as string,
    tool: TOOLS[i % TOOLS.length] as string,
    arguments: { query: `find the files mentioning ticket ${i}`, path: '/srv/projects/tributary/src', max_results: 25, recursive: true },
    result: {
      content: [
        {
          type: 'text',
          text:
            `Found 3 matches for ticket ${i}: src/store/open.ts:42, src/store/tool-log.ts:118, test/store-open.test.ts:77. ` +
            'The first match is in the open path, where LevelDB errors are mapped onto StoreError codes; the other two are the ' +
            'tool log and its tests.',
        },
      ],
      isError: false,
    },
    status: i % 17 === 0 ? 'error' : 'success',
    ...(i % 17 === 0 ? { error: 'upstream timed out after 30000 ms' } : {}),
    latency_ms: 5 + (i % 200),
    cost_usd: 0.0005 * (i % 7),
    ...(i % 3 === 0 ? { virtual_key: `vk-${i % 5}` } : {}),
    surface: i % 2 === 0 ? 'mcp' : 'rest',
    timestamp: new Date(Date.UTC(2026, 0, 1) + i * 37).toISOString(),
  };
}

function sampleEntry(i: number): ToolLogEntry {
  const { timestamp, ...rest } = sampleInput(i);
  return {
    ...rest,
    id: `${String(Date.UTC(2026, 0, 1) + i).padStart(15, '0')}-${String(i).padStart(12, '0')}`,
    arguments_truncated: false,
    result_truncated: false,
    timestamp: timestamp as string,
  };
}

interface Opened {
  db: RootDb;
  sub: Sublevel<ToolLogEntry>;
  done: () => Promise<void>;
}

async function freshDb(): Promise<Opened> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trib-bench-store-'));
  const db = new Level<string, Uint8Array>(path.join(dir, 'db'), { valueEncoding: 'view' });
  await db.open();
  return {
    db,
    sub: openSublevel<ToolLogEntry>(db, 'toollog'),
    done: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface Row {
  variant: string;
  entries: number;
  seconds: number;
  /** db.batch() or put() calls made. */
  batches: number;
}

async function timed(fn: () => Promise<number>): Promise<{ seconds: number; batches: number }> {
  const t0 = performance.now();
  const batches = await fn();
  return { seconds: (performance.now() - t0) / 1000, batches };
}

async function variantBatched(entries: readonly ToolLogEntry[], sync = false): Promise<Row> {
  const o = await freshDb();
  const writer = new BatchWriter<BatchOp>(levelBatchCommit(o.db, sync));
  const r = await timed(async () => {
    await Promise.all(entries.map((e) => writer.write(putOp(o.sub, e.id, e))));
    return writer.counters.batches;
  });
  await writer.close();
  await verifyCount(o.sub, entries.length);
  await o.done();
  return { variant: `(a) BatchWriter, all at once${sync ? ', fsync per batch' : ''}`, entries: entries.length, ...r };
}

async function variantAppend(n: number): Promise<Row> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trib-bench-store-'));
  const store = await openStore(dir, silent);
  const inputs = Array.from({ length: n }, (_, i) => sampleInput(i));
  const r = await timed(async () => {
    await Promise.all(inputs.map((e) => store.toolLog.append(e)));
    return store.writer.counters.batches;
  });
  const total = (await store.toolLog.query({ limit: 0 })).total;
  if (total !== n) throw new Error(`append variant stored ${total} of ${n}`);
  await store.close();
  await rm(dir, { recursive: true, force: true });
  return { variant: "(a') toolLog.append, all at once (one record per entry)", entries: n, ...r };
}

async function variantSequential(entries: readonly ToolLogEntry[], sync = false): Promise<Row> {
  const o = await freshDb();
  const r = await timed(async () => {
    if (sync) for (const e of entries) await commitOps(o.db, [putOp(o.sub, e.id, e)], true);
    else for (const e of entries) await o.sub.put(e.id, e);
    return entries.length;
  });
  await verifyCount(o.sub, entries.length);
  await o.done();
  return { variant: `(b) put per entry, sequential${sync ? ', fsync each' : ''}`, entries: entries.length, ...r };
}

async function variantConcurrentPuts(entries: readonly ToolLogEntry[]): Promise<Row> {
  const o = await freshDb();
  const r = await timed(async () => {
    await Promise.all(entries.map((e) => o.sub.put(e.id, e)));
    return entries.length;
  });
  await verifyCount(o.sub, entries.length);
  await o.done();
  return { variant: '(c) put per entry, all at once', entries: entries.length, ...r };
}

async function verifyCount(sub: Sublevel<ToolLogEntry>, n: number): Promise<void> {
  const keys = await sub.keys().all();
  if (keys.length !== n) throw new Error(`expected ${n} entries, found ${keys.length}`);
}

/** Latency from write()/put() to resolve, for `count` writes issued every `spacingMs`, ms. */
async function trickle(count: number, spacingMs: number, write: (i: number) => Promise<void>): Promise<Float64Array> {
  const latencies = new Float64Array(count);
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    pending.push(write(i).then(() => void (latencies[i] = performance.now() - t0)));
    await sleep(spacingMs);
  }
  await Promise.all(pending);
  return latencies.sort();
}

async function latencyTable(): Promise<string[]> {
  const count = 200;
  const spacing = 2;
  const entries = Array.from({ length: count }, (_, i) => sampleEntry(i));
  const a = await freshDb();
  const writer = new BatchWriter<BatchOp>(levelBatchCommit(a.db));
  const batched = await trickle(count, spacing, (i) => writer.write(putOp(a.sub, (entries[i] as ToolLogEntry).id, entries[i] as ToolLogEntry)));
  const batches = writer.counters.batches;
  await writer.close();
  await a.done();
  const b = await freshDb();
  const direct = await trickle(count, spacing, (i) => b.sub.put((entries[i] as ToolLogEntry).id, entries[i] as ToolLogEntry));
  await b.done();
  const f = (x: number): string => x.toFixed(2);
  return [
    `Latency a write sees (write() → resolved), ${count} writes spaced ${spacing} ms (timer-limited: actual spacing ≈ ${spacing}–${spacing + 1} ms):`,
    '',
    '| path | p50 ms | p99 ms | max ms | db.batch/put calls |',
    '|---|---:|---:|---:|---:|',
    `| BatchWriter, window 10 ms | ${f(quantile(batched, 0.5))} | ${f(quantile(batched, 0.99))} | ${f(batched[batched.length - 1] ?? NaN)} | ${batches} |`,
    `| direct put | ${f(quantile(direct, 0.5))} | ${f(quantile(direct, 0.99))} | ${f(direct[direct.length - 1] ?? NaN)} | ${count} |`,
  ];
}

/**
 * CPU per tool call of committing its records (the event and the tool-log record) in
 * `db.batch()`es of 64 calls, three ways: `commitOps` (a chained batch on the root with
 * precomputed root keys), the array form `db.batch(ops)` it replaced, and the array form with an
 * options object (abstract-level copies a batch's options into every operation). The records are
 * built as the event recorder builds them (a real store from `openStore`), 64 calls per batch.
 * CPU from `process.cpuUsage()` (this thread and LevelDB's), so it counts the write itself too.
 */
async function batchOptionsTable(): Promise<string[]> {
  type Form = 'chained' | 'array' | 'options';
  const rounds = Math.max(50, Math.round(N / 64));
  const measure = async (form: Form): Promise<number> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'trib-bench-store-'));
    const store = await openStore(dir, silent);
    const events = store.sublevel<Record<string, unknown>>('events');
    let seq = 0;
    const round = async (): Promise<void> => {
      const ops: BatchOp[] = [];
      for (let i = 0; i < 64; i++) {
        const input = sampleInput(seq);
        const { arguments: _a, result: _r, ...event } = input;
        ops.push(putOp(events, String(1e15 + seq), { ...event, seq, event_type: 'ToolInvocationCompleted' }));
        for (const op of store.toolLog.entryOps(input)) ops.push(op);
        seq++;
      }
      if (form === 'chained') await commitOps(store.db, ops);
      else if (form === 'array') await arrayCommit(store.db, ops.map(arrayOp));
      else await arrayCommit(store.db, ops.map(arrayOp), { sync: false });
    };
    for (let i = 0; i < 20; i++) await round();
    const before = process.cpuUsage();
    for (let i = 0; i < rounds; i++) await round();
    const used = process.cpuUsage(before);
    await store.close();
    await rm(dir, { recursive: true, force: true });
    return (used.user + used.system) / (rounds * 64);
  };
  const only = process.env['BENCH_STORE_BATCH_VARIANT'];
  if (only !== undefined) {
    console.log(`BATCH_VARIANT_CPU ${await measure(only as Form)}`);
    process.exit(0);
  }
  // each variant in a fresh process: run in one process, the first variant's op shapes make V8's
  // inline caches on abstract-level's per-op path polymorphic for the second, hiding the difference
  const inChild = (variant: Form): number => {
    const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      env: { ...process.env, BENCH_STORE_BATCH_VARIANT: variant },
      encoding: 'utf8',
    });
    const m = /BATCH_VARIANT_CPU ([\d.]+)/.exec(r.stdout);
    if (m === null) throw new Error(`batch variant ${variant} failed: ${r.stderr}`);
    return Number(m[1]);
  };
  const forms: Form[] = ['chained', 'array', 'options', 'options', 'array', 'chained'];
  const cpu = new Map<Form, number>();
  for (const form of forms) cpu.set(form, Math.min(cpu.get(form) ?? Number.POSITIVE_INFINITY, inChild(form)));
  const base = cpu.get('chained') as number;
  const row = (label: string, form: Form): string => `| ${label} | ${(cpu.get(form) as number).toFixed(1)} | ${((cpu.get(form) as number) / base).toFixed(2)}× |`;
  return [
    `Records of one tool call (event + tool-log record) in 64-call batches, ${rounds} batches each, each variant twice in fresh processes (lower shown; process CPU incl. LevelDB threads; the array forms also pay for converting the ops):`,
    '',
    '| variant | µs CPU per call | ratio |',
    '|---|---:|---:|',
    row('`commitOps` (chained batch, root keys)', 'chained'),
    row('`db.batch(ops)` (array form, sublevel ops)', 'array'),
    row('`db.batch(ops, { sync: false })`', 'options'),
  ];
}

/**
 * `since` catch-up reads (`EventLogRepository.after`, pages of 256, as `/api/ws/events` reads
 * them) of 20,000 tool events: stored in their tool-log records by the real recorder (now), against
 * the same events stored as schema version 2 stored them — the event in the event log's own
 * sublevel, the tool-log record beside it (the baseline). CPU per event from
 * `process.cpuUsage()` over a full sequential replay (the median of 3), and per page from a random
 * `since` (100 pages: the binary search over the tool log's keys, no earlier page to resume from).
 */
async function catchUpTable(): Promise<string[]> {
  const n = 20_000;
  const measure = async (now: boolean): Promise<{ perEvent: number; perPage: number }> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'trib-bench-catchup-'));
    const store = await openStore(dir, silent);
    const eventLog = new EventLogRepository(store.db, store.sublevel<StoredEvent>('events'), store.writer, store.meta, store.sublevel<SeqGap>('event_gaps'), store.toolLog);
    const { lastSeq } = await eventLog.open();
    const recorder = new EventRecorder(store.writer, eventLog, store.toolLog, silent, lastSeq);
    const base = Date.UTC(2026, 0, 1);
    let pending: Promise<void>[] = [];
    for (let seq = 1; seq <= n; seq++) {
      const event: GatewayEvent = { seq, timestamp: new Date(base + Math.floor(seq / 20)).toISOString(), mcp_server_id: 'demo', event_type: 'ToolInvocationCompleted', tool_name: 'echo', call_id: `c${seq}`, duration_ms: 0.3, cost_usd: 0, surface: 'mcp', arguments: { message: `m${seq}` }, is_error: false, result: { content: [{ type: 'text', text: `Echo: m${seq}` }] } };
      if (now) pending.push(recorder.record(event));
      else if (event.event_type === 'ToolInvocationCompleted') pending.push(store.writer.writeAll([eventLog.putOp(toWire(event)), ...store.toolLog.entryOps(toLogEntry(event))]));
      if (pending.length === 1000) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
    const runs: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const before = process.cpuUsage();
      let from = 0;
      let read = 0;
      for (;;) {
        const page = await eventLog.after(from, 256, n);
        read += page.length;
        if (page.length < 256) break;
        from = (page[page.length - 1] as StoredEvent).seq;
      }
      const used = process.cpuUsage(before);
      if (read !== n) throw new Error(`catch-up read ${read} of ${n} events`);
      runs.push((used.user + used.system) / n);
    }
    const before = process.cpuUsage();
    for (let i = 0; i < 100; i++) await eventLog.after(Math.floor(Math.random() * n), 256, n);
    const used = process.cpuUsage(before);
    await store.close();
    await rm(dir, { recursive: true, force: true });
    return { perEvent: quantile(Float64Array.from(runs).sort(), 0.5), perPage: (used.user + used.system) / 100 / 1000 };
  };
  const own = await measure(false);
  const tool = await measure(true);
  const again = await measure(false);
  own.perEvent = Math.min(own.perEvent, again.perEvent);
  own.perPage = Math.min(own.perPage, again.perPage);
  return [
    `\`since\` catch-up, ${n} stored events, pages of 256 (process CPU incl. LevelDB threads):`,
    '',
    '| tool events stored | read from | µs CPU per event, full replay | ms CPU per page from a random since |',
    '|---|---|---:|---:|',
    `| as schema version 2 (baseline, the lower of two runs) | event log (\`events\`, seq keys) | ${own.perEvent.toFixed(2)} | ${own.perPage.toFixed(2)} |`,
    `| in their tool-log records (now) | tool log (\`toollog\`, \`<ms>-~<seq>\`) | ${tool.perEvent.toFixed(2)} | ${tool.perPage.toFixed(2)} |`,
  ];
}

async function scanTable(n: number): Promise<string[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trib-bench-store-'));
  const store = await openStore(dir, silent);
  const t0 = performance.now();
  for (let start = 0; start < n; start += 10_000) {
    const chunk = Array.from({ length: Math.min(10_000, n - start) }, (_, k) => sampleInput(start + k));
    await Promise.all(chunk.map((e) => store.toolLog.append(e)));
  }
  const fillS = (performance.now() - t0) / 1000;
  const mid = Date.UTC(2026, 0, 1) + Math.floor(n / 2) * 37;
  const cases: [string, () => Promise<unknown>][] = [
    ['query, no filter, limit 50', () => store.toolLog.query({ limit: 50 })],
    ['query, client filter, limit 50', () => store.toolLog.query({ client: 'github', limit: 50 })],
    ['query, client+tool+status, offset 1000', () => store.toolLog.query({ client: 'github', tool: 'echo', status: 'success', limit: 50, offset: 1000 })],
    ['query, 1% time range', () => store.toolLog.query({ from: mid, to: mid + Math.floor(n / 100) * 37, limit: 50 })],
    ['stats, no filter', () => store.toolLog.stats()],
    ['stats, client+tool filter', () => store.toolLog.stats({ client: 'github', tool: 'echo' })],
  ];
  const lines = [
    `Tool log of ${n} entries (~${encodeValue(sampleEntry(1)).length} B each, filled in ${fillS.toFixed(2)} s through toolLog.append): each case run 5 times, cold first`,
    '',
    '| case | first ms | median ms | matches |',
    '|---|---:|---:|---:|',
  ];
  for (const [label, run] of cases) {
    const times: number[] = [];
    let result: unknown;
    for (let k = 0; k < 5; k++) {
      const s = performance.now();
      result = await run();
      times.push(performance.now() - s);
    }
    const first = times[0] as number;
    const median = [...times].sort((x, y) => x - y)[2] as number;
    const matches = (result as { total?: number; total_executions?: number }).total ?? (result as { total_executions: number }).total_executions;
    lines.push(`| ${label} | ${first.toFixed(1)} | ${median.toFixed(1)} | ${matches} |`);
  }
  await store.close();
  await rm(dir, { recursive: true, force: true });
  return lines;
}

async function main(): Promise<void> {
  if (await recordsChild()) process.exit(0);
  if (process.env['BENCH_STORE_ONLY'] === 'records') {
    for (const line of recordsTable(RECORD_CAPS)) console.log(line);
    return;
  }
  if (process.env['BENCH_STORE_ONLY'] === 'catchup') {
    for (const line of await catchUpTable()) console.log(line);
    return;
  }
  const entries = Array.from({ length: N }, (_, i) => sampleEntry(i));
  const size = encodeValue(entries[1]).length;
  console.log(`# Store write paths (Node ${process.version}, ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? '?'})`);
  console.log('');
  console.log(`${N} tool-log entries of ${size} B (msgpackr) each, fresh LevelDB per variant, sync=false.`);
  console.log('');
  if (process.env['BENCH_STORE_BATCH_VARIANT'] !== undefined) await batchOptionsTable();
  // warm-up: JIT and the native binding, on a throw-away db
  await variantBatched(entries.slice(0, 1000));
  await variantSequential(entries.slice(0, 1000));

  const rows: Row[] = [];
  rows.push(await variantBatched(entries));
  rows.push(await variantAppend(N));
  rows.push(await variantSequential(entries));
  rows.push(await variantConcurrentPuts(entries));
  const baseline = rows.find((r) => r.variant.startsWith('(b)')) as Row;
  const rate = (r: Row): number => r.entries / r.seconds;
  console.log('| variant | entries | seconds | entries/s | ratio vs (b) | db.batch/put calls |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.variant} | ${r.entries} | ${r.seconds.toFixed(3)} | ${Math.round(rate(r))} | ${(rate(r) / rate(baseline)).toFixed(1)}× | ${r.batches} |`,
    );
  }
  const batched = rows[0] as Row;
  const ratio = rate(batched) / rate(baseline);
  console.log('');
  console.log(`Target: batched ≥ 10× unbatched sequential at ${N} entries: ${ratio.toFixed(1)}× → ${ratio >= 10 ? 'PASS' : 'MISS'}`);
  console.log('');
  // Informational: the same comparison when every commit is fsync'd (sync: true), the case where
  // batching amortises the disk flush. Fewer entries for the slow sequential side.
  const syncN = Math.min(N, 1000);
  const syncRows = [await variantBatched(entries.slice(0, syncN), true), await variantSequential(entries.slice(0, syncN), true)];
  const syncBase = syncRows[1] as Row;
  console.log(`With fsync (sync: true on every commit), ${syncN} entries (informational, not the target):`);
  console.log('');
  console.log('| variant | entries | seconds | entries/s | ratio vs (b, fsync) | fsyncs |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of syncRows) {
    console.log(`| ${r.variant} | ${r.entries} | ${r.seconds.toFixed(3)} | ${Math.round(rate(r))} | ${(rate(r) / rate(syncBase)).toFixed(1)}× | ${r.batches} |`);
  }
  console.log('');
  for (const line of await batchOptionsTable()) console.log(line);
  console.log('');
  for (const line of await latencyTable()) console.log(line);
  console.log('');
  for (const line of recordsTable(RECORD_CAPS)) console.log(line);
  console.log('');
  for (const line of await catchUpTable()) console.log(line);
  if (SCAN_N > 0) {
    console.log('');
    for (const line of await scanTable(SCAN_N)) console.log(line);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
