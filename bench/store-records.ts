/**
 * Part of `npm run bench:store`: what one tool call's durable records cost, by layout and by the
 * writer's op cap per `db.batch()`.
 *
 * Layouts (records built by the real code paths, on a real store from `openStore`):
 * - `3 ops` — the layout before one-record entries: the event, the tool-log entry (store codec
 *   MessagePack of the entry with its payloads as JSON text) and its summary tuple;
 * - `2 ops` — schema version 2: the event and the tool-log record (`ToolLogRepository.entryOps`);
 * - `1 op` — now: the tool-log record carrying the event (`ToolLogRepository.eventEntryOps`).
 *
 * Commit forms:
 * - `array` — the form before: `db.batch(ops)` with each op naming its sublevel and
 *   `valueEncoding: 'view'` (abstract-level clones and prepares every op, classic-level reads its
 *   fields back one by one); the ops are built in that form when the call is recorded, as before;
 * - `chained` — now: `commitOps`, a chained batch on the root with precomputed root keys.
 *
 * Load shapes, each through a `BatchWriter` with group commit (window 0):
 * - `c=64`: 64 calls per event-loop turn, the next 64 once they are committed (a steady c=64);
 * - `burst`: 8,192 calls handed over in one turn (a spike; batches fill up to the op cap).
 *
 * Figures: process CPU per call (`process.cpuUsage`, so LevelDB's own thread counts too),
 * `db.batch()` calls, and the event-loop hold of each commit — the synchronous part of
 * `db.batch()` (abstract-level's per-op preparation and classic-level copying every op into the
 * native batch), timed around the call (wall time: on a busy machine p99 and max include the
 * process being descheduled mid-call; p50 is the figure to read there). Each variant runs in a
 * fresh process (V8's inline caches on abstract-level's per-op path would otherwise carry over),
 * twice, alternating; the table shows the lower CPU and p50 and the higher p99 and max of the two.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/log/logger.js';
import { BatchWriter, commitOps, putOp, type BatchOp } from '../src/store/batcher.js';
import type { AbstractBatchOperation } from 'abstract-level';
import type { RootDb } from '../src/store/db.js';
import { capPayloadText } from '../src/store/cap-payload.js';
import { openSublevel } from '../src/store/db.js';
import { openStore } from '../src/store/open.js';
import type { ToolLogInput } from '../src/store/tool-log.js';
import { quantile } from './lib.js';

const silent = createLogger('silent');
const VARIANT_ENV = 'BENCH_STORE_RECORDS_VARIANT';

interface Variant {
  readonly layout: '3 ops' | '2 ops' | '1 op';
  readonly commit: 'array' | 'chained';
  readonly load: 'c=64' | 'burst';
  readonly maxBatchOps: number;
}

interface Result {
  cpuUsPerCall: number;
  batches: number;
  calls: number;
  holdMaxMs: number;
  holdP50Ms: number;
  holdP99Ms: number;
  opsPerBatch: number;
}

/** An op in the array form `db.batch(ops)` took before `commitOps` used a chained batch. */
export type ArrayBatchOp =
  | { readonly type: 'put'; readonly sublevel: BatchOp['sublevel']; readonly key: string; readonly value: Uint8Array; readonly valueEncoding: 'view' }
  | { readonly type: 'del'; readonly sublevel: BatchOp['sublevel']; readonly key: string };

/** `op` in the array form (what `putOp`/`delOp` built before). */
export function arrayOp(op: BatchOp): ArrayBatchOp {
  return op.type === 'put' ? { type: 'put', sublevel: op.sublevel, key: op.key, value: op.value, valueEncoding: 'view' } : { type: 'del', sublevel: op.sublevel, key: op.key };
}

/** The commit before: one `db.batch(ops)` of array-form ops (no options object unless given). */
export function arrayCommit(db: RootDb, ops: readonly ArrayBatchOp[], options?: { readonly sync: boolean }): Promise<void> {
  const list = ops as unknown as AbstractBatchOperation<RootDb, string, Uint8Array>[];
  return options === undefined ? db.batch(list) : db.batch(list, options);
}

function sampleCall(i: number): ToolLogInput {
  return {
    client: 'demo',
    tool: 'echo',
    arguments: { message: `hello ${i}` },
    result: { content: [{ type: 'text', text: `Echo: hello ${i}` }] },
    status: 'success',
    latency_ms: 0.25,
    cost_usd: 0,
    surface: 'mcp',
    timestamp: new Date(Date.UTC(2026, 0, 1) + i).toISOString(),
  };
}

async function runVariant(v: Variant): Promise<Result> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trib-bench-records-'));
  const store = await openStore(dir, silent);
  const events = store.sublevel<Record<string, unknown>>('events');
  const legacyEntries = openSublevel<Record<string, unknown>>(store.db, 'toollog');
  const legacySummaries = openSublevel<unknown>(store.db, 'toollog_sum');
  const holds: number[] = [];
  const writer = new BatchWriter<BatchOp | ArrayBatchOp>(
    (ops) => {
      const started = performance.now();
      const committed = v.commit === 'array' ? arrayCommit(store.db, ops as ArrayBatchOp[]) : commitOps(store.db, ops as BatchOp[]);
      holds.push(performance.now() - started);
      return committed;
    },
    { maxBatchOps: v.maxBatchOps },
  );
  let seq = 0;
  const unit = (): (BatchOp | ArrayBatchOp)[] => {
    const ops = recordOps();
    return v.commit === 'array' ? ops.map(arrayOp) : ops;
  };
  const recordOps = (): BatchOp[] => {
    const input = sampleCall(seq);
    seq++;
    const event = {
      seq,
      timestamp: input.timestamp,
      event_type: 'ToolInvocationCompleted',
      mcp_server_id: input.client,
      tool_name: input.tool,
      call_id: `call-${seq}`,
      duration_ms: input.latency_ms,
      cost_usd: input.cost_usd,
      surface: input.surface,
      is_error: false,
    };
    if (v.layout === '1 op') return store.toolLog.eventEntryOps(input, event);
    const ops: BatchOp[] = [putOp(events, String(seq).padStart(16, '0'), event)];
    if (v.layout === '2 ops') {
      for (const op of store.toolLog.entryOps(input)) ops.push(op);
    } else {
      const key = `${String(Date.parse(input.timestamp as string)).padStart(15, '0')}-${String(seq).padStart(8, '0')}`;
      const entry = {
        id: key,
        client: input.client,
        tool: input.tool,
        arguments: capPayloadText(input.arguments).text,
        arguments_truncated: false,
        result: capPayloadText(input.result).text,
        result_truncated: false,
        status: input.status,
        latency_ms: input.latency_ms,
        cost_usd: input.cost_usd,
        surface: input.surface,
        timestamp: input.timestamp,
        payload_json: 1,
      };
      ops.push(putOp(legacyEntries, key, entry));
      ops.push(putOp(legacySummaries, key, [entry.client, entry.tool, 1, entry.latency_ms, entry.cost_usd, null, entry.surface]));
    }
    return ops;
  };
  const wave = (n: number): Promise<void[]> => Promise.all(Array.from({ length: n }, () => writer.writeAll(unit())));
  const plan: [rounds: number, size: number] = v.load === 'c=64' ? [250, 64] : [3, 8192];
  // warm-up: JIT and the native binding
  for (let i = 0; i < 20; i++) await wave(64);
  holds.length = 0;
  const batchesBefore = writer.counters.batches;
  const opsBefore = writer.counters.ops;
  const before = process.cpuUsage();
  for (let r = 0; r < plan[0]; r++) await wave(plan[1]);
  const used = process.cpuUsage(before);
  const calls = plan[0] * plan[1];
  const batches = writer.counters.batches - batchesBefore;
  const ops = writer.counters.ops - opsBefore;
  await writer.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
  const sorted = Float64Array.from(holds).sort();
  return {
    cpuUsPerCall: (used.user + used.system) / calls,
    batches,
    calls,
    holdMaxMs: sorted[sorted.length - 1] ?? 0,
    holdP50Ms: quantile(sorted, 0.5),
    holdP99Ms: quantile(sorted, 0.99),
    opsPerBatch: ops / Math.max(1, batches),
  };
}

function inChild(v: Variant): Result {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: { ...process.env, [VARIANT_ENV]: JSON.stringify(v) },
    encoding: 'utf8',
  });
  const m = /RECORDS_RESULT (.*)/.exec(r.stdout);
  if (m === null) throw new Error(`records variant ${JSON.stringify(v)} failed: ${r.stderr}`);
  return JSON.parse(m[1] as string) as Result;
}

/** In a child started by {@link recordsTable}: runs its variant, prints the result, exits. */
export async function recordsChild(): Promise<boolean> {
  const raw = process.env[VARIANT_ENV];
  if (raw === undefined) return false;
  console.log(`RECORDS_RESULT ${JSON.stringify(await runVariant(JSON.parse(raw) as Variant))}`);
  return true;
}

/** The table (markdown lines). `caps`: the writer's op caps to compare. */
export function recordsTable(caps: readonly number[]): string[] {
  const variants: Variant[] = [];
  for (const load of ['c=64', 'burst'] as const) {
    for (const maxBatchOps of caps) {
      if (load === 'c=64' && maxBatchOps !== caps[0]) continue; // c=64 batches stay below every cap
      variants.push({ layout: '3 ops', commit: 'array', load, maxBatchOps });
      variants.push({ layout: '2 ops', commit: 'array', load, maxBatchOps });
      variants.push({ layout: '2 ops', commit: 'chained', load, maxBatchOps });
      variants.push({ layout: '1 op', commit: 'chained', load, maxBatchOps });
    }
  }
  const results = new Map<Variant, Result[]>();
  for (let pass = 0; pass < 2; pass++) {
    for (const v of pass === 0 ? variants : [...variants].reverse()) {
      const list = results.get(v) ?? [];
      list.push(inChild(v));
      results.set(v, list);
    }
  }
  const lines = [
    `One tool call's durable records through the BatchWriter (process CPU incl. LevelDB's thread; hold = synchronous part of each \`db.batch()\`), each variant twice in fresh processes, alternating; load average ${os.loadavg()[0]?.toFixed(1)}:`,
    '',
    '| load | layout | commit | op cap | calls | batches | ops/batch | µs CPU per call | hold p50 ms | hold p99 ms | hold max ms |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const v of variants) {
    const rs = results.get(v) as Result[];
    const cpu = Math.min(...rs.map((r) => r.cpuUsPerCall));
    const p50 = Math.min(...rs.map((r) => r.holdP50Ms));
    const p99 = Math.max(...rs.map((r) => r.holdP99Ms));
    const max = Math.max(...rs.map((r) => r.holdMaxMs));
    const r = rs[0] as Result;
    lines.push(
      `| ${v.load} | ${v.layout} | ${v.commit} | ${v.maxBatchOps} | ${r.calls} | ${r.batches} | ${r.opsPerBatch.toFixed(0)} | ${cpu.toFixed(1)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${max.toFixed(2)} |`,
    );
  }
  return lines;
}
