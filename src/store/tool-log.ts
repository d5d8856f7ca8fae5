/**
 * `ToolLogRepository`: the tool execution log behind `/api/mcp-logs` (Bifrost MCP logs: filters,
 * stats, cost).
 *
 * Layout: one sublevel, `toollog`, `<time key>` → ONE record per entry (`tool-log-record.ts`): a
 * small head (the summary — client, tool, status, latency, cost, virtual key, surface — then id,
 * timestamp, error, trace id, cut flags) followed by the arguments and the result as MessagePack
 * (capped at `maxPayloadBytes` each, 16 KiB by default, see `cap-payload.ts`; the bytes the cap
 * measured, so a payload is serialised once per call, and JSON text only when it is cut). One put per entry; payloads of more than 1 KiB together go to a
 * second value under the same key in `toollog_payload`, so a scan reads ≤ ~1 KiB per entry.
 * (Schema version 5 on, `toollog_payload` is a sublevel of a second LevelDB database, the store's
 * payload database: each database then appends to ONE time-ordered key range, so LevelDB moves
 * its level-0 tables down instead of merging them with the levels below — with both ranges in one
 * database every level-0 table spanned the other range's older tables and compactions rewrote
 * them, https://github.com/google/leveldb/blob/main/doc/impl.md#compactions. The record and its
 * payload are written as two batches at once, see `commitOps`; a record whose payload value is
 * missing — a crash between the two writes, before the call was answered — reads with both
 * payloads cut to nothing; a payload left without its record is deleted at an open (`init`) once it is older than every record.)
 * (Until schema version 2 a separate summary was
 * written under the same key in `toollog_sum`: two puts per entry; migration 2 deletes those, and
 * entries of that layout still read.)
 *
 * Tool calls (schema version 3 on): the event recorder writes the call's entry and its
 * `ToolInvocation*` event as ONE record ({@link ToolLogRepository.eventEntryOps}) under a
 * `toolEventKey` (`<ms>-~<seq>`, filed so these keys are in seq order), and the event log reads
 * the events back in seq order ({@link ToolLogRepository.toolEventsAfter}). Model-provider calls
 * ({@link ToolLogRepository.append}) have no event and a plain time key. Retention deletes either.
 *
 * Why this and not per-filter secondary indexes: every filter (client, tool, status, virtual
 * key, surface, any combination) and every statistic is answered by ONE range scan, bounded by the
 * time range (`from`/`to` map onto key bounds, see `time-key.ts`), that decodes only each record's
 * summary, never arguments or results. Cost is O(entries in the time range) per query. Measured
 * by `npm run bench:store`. Per-filter indexes would make selective filters sub-linear, at the price
 * of more writes per call, intersections for combined filters, and still a scan for stats.
 *
 * Time keys are stamped with the entry's `timestamp`, so keys sort by time and the oldest entries
 * are the lowest keys (what retention deletes first).
 */
import type { Logger } from '../log/logger.js';
import { BatchWriter, commitOps, delOp, putBytesOp, type BatchOp } from './batcher.js';
import { DEFAULT_PAYLOAD_CAP_BYTES, capPayloadPacked, unpackPayload, type PackedPayload } from './cap-payload.js';
import type { RootDb, Sublevel } from './db.js';
import { encodeRecord, hasExternalPayload, storedFieldsOf, summaryOf, type LegacyStoredEntry, type ToolEventRecord, type ToolLogEntry, type ToolLogRecordFields } from './tool-log-record.js';
import { KahanSum, compileFilter, nonNegativeInt, rangeOf, type ToolLogFilter } from './tool-log-filter.js';
import { MAX_KEY_MS, TimeKeyGenerator, msPrefix } from './time-key.js';
import { ToolEvents } from './tool-events.js';

export { DEFAULT_PAYLOAD_CAP_BYTES, capPayload, type CappedPayload } from './cap-payload.js';
export type { ToolEventRecord, ToolLogEntry, ToolLogSummary } from './tool-log-record.js';
export type { ToolLogFilter } from './tool-log-filter.js';

/**
 * The `toollog` sublevel with raw values: each value is a record of `tool-log-record.ts` (or an
 * entry of an earlier layout), encoded and decoded by this module, not by the store codec.
 */
export type ToolLogRecords = Sublevel<Uint8Array>;


/**
 * An entry of the layout before records (the store codec's MessagePack of the entry object). With
 * `payload_json: 1`, an `arguments` / `result` whose `*_truncated` flag is false holds the value's
 * JSON text, not the value. Still read; no longer written.
 */
export type StoredToolLogEntry = LegacyStoredEntry;

/** The {@link ToolLogEntry} a stored entry stands for (payload texts parsed back to values). */
export function fromStored(stored: StoredToolLogEntry): ToolLogEntry {
  if (stored.payload_json !== 1) return stored;
  const { payload_json: _flag, ...entry } = stored;
  return parsePayloads(entry);
}

function parsePayloads(entry: ToolLogEntry): ToolLogEntry {
  if (!entry.arguments_truncated) entry.arguments = JSON.parse(entry.arguments as string) as unknown;
  if (!entry.result_truncated) entry.result = JSON.parse(entry.result as string) as unknown;
  return entry;
}

/**
 * The {@link ToolLogEntry} a stored value (a record, or an entry of the earlier layout) stands
 * for; `payload`: the `toollog_payload` value of a record with external payloads.
 */
export function entryOfValue(view: Uint8Array, payload?: Uint8Array): ToolLogEntry {
  const { entry, payloadJson } = storedFieldsOf(view, payload);
  if (!payloadJson) return entry;
  if (entry.payload_json === 1) return fromStored(entry);
  return parsePayloads(entry);
}

/**
 * What a caller gives {@link ToolLogRepository.append}: an entry whose `id` (default: the time
 * key), `timestamp` (default: now) and `*_truncated` flags (default `false`) are optional.
 * A full {@link ToolLogEntry} is a valid input.
 */
export type ToolLogInput = Omit<ToolLogEntry, 'id' | 'timestamp' | 'arguments_truncated' | 'result_truncated'> & {
  id?: string;
  timestamp?: string;
  arguments_truncated?: boolean;
  result_truncated?: boolean;
};

export interface ToolLogQuery extends ToolLogFilter {
  /** Entries per page, an integer ≥ 0; values above {@link MAX_QUERY_LIMIT} are clamped to it. */
  readonly limit: number;
  /** Matching entries to skip (newest first), an integer ≥ 0 (default 0). */
  readonly offset?: number;
}

export interface ToolLogPage {
  /** Newest first. */
  readonly entries: ToolLogEntry[];
  /** All entries matching the filter, ignoring `limit`/`offset`. */
  readonly total: number;
}

export interface ToolLogStats {
  readonly total_executions: number;
  /** Successes / total, 0..1 (0 when there are no entries). */
  readonly success_rate: number;
  /** Mean `latency_ms`, ms (0 when there are no entries). */
  readonly average_latency: number;
  /** Sum of `cost_usd`, USD. */
  readonly total_cost: number;
}

export interface RetentionOptions {
  /** Keep at most this many entries (the newest); an integer ≥ 0. */
  readonly maxEntries?: number;
  /** Delete entries stamped more than this long before `now`, ms. */
  readonly maxAgeMs?: number;
}

export interface SweepOptions extends RetentionOptions {
  /** "Now" for `maxAgeMs`, epoch ms (default: the repository clock). */
  readonly now?: number;
}

export interface ToolLogOptions {
  /** Cap for `arguments` and `result`, bytes each, as JSON text or MessagePack (`capPayload`; default 16 KiB). */
  readonly maxPayloadBytes?: number;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
  /**
   * Entries deleted per `db.batch()` by `sweep` (default 128: ≤ 256 ops with external payloads;
   * LevelDB's binding handles every op of a batch on the event loop, ≈ 2–3 µs each here, so a
   * chunk stays under 1 ms).
   */
  readonly sweepChunk?: number;
  /** Key generator (default: a fresh one with a random boot tag). */
  readonly keys?: TimeKeyGenerator;
}

/** The largest `limit` a query honours. */
export const MAX_QUERY_LIMIT = 1000;

const SCAN_CHUNK = 1000;
/**
 * Most bytes one `nextv` of a scan reads (classic-level's `highWaterMarkBytes`, default 16 KiB:
 * with records of a few hundred bytes that would stop each `nextv` after a few dozen entries).
 */
const SCAN_BYTES = 512 * 1024;
/** classic-level iterator options (not in abstract-level's types; sublevels pass them to the root). */
const SCAN_OPTIONS = { highWaterMarkBytes: SCAN_BYTES };
/** A scan gives the event loop back after this much work in one go, ms (store work holds it ≤ 1 ms). */
const SLICE_MS = 0.5;


const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class ToolLogRepository {
  readonly #db: RootDb;
  readonly #entries: ToolLogRecords;
  readonly #payloads: ToolLogRecords;
  readonly #writer: BatchWriter<BatchOp>;
  readonly #log: Logger;
  readonly #maxPayloadBytes: number;
  readonly #now: () => number;
  readonly #sweepChunk: number;
  readonly #keys: TimeKeyGenerator;
  readonly #retention = new Set<() => Promise<void>>();
  #sweepChain: Promise<unknown> = Promise.resolve();
  /** The tool events among the records: their keys, and reading them back in seq order. */
  readonly #events: ToolEvents;
  /** The last timestamp text parsed, and its epoch ms. */
  #parsedText = '';
  #parsedMs = Number.NaN;
  /** The last epoch ms formatted, and its ISO-8601 text. */
  #formattedMs = Number.NaN;
  #formatted = '';

  constructor(
    db: RootDb,
    entries: ToolLogRecords,
    payloads: ToolLogRecords,
    writer: BatchWriter<BatchOp>,
    log: Logger,
    options: ToolLogOptions = {},
  ) {
    this.#db = db;
    this.#entries = entries;
    this.#payloads = payloads;
    this.#writer = writer;
    this.#log = log;
    this.#maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_PAYLOAD_CAP_BYTES;
    this.#now = options.now ?? Date.now;
    this.#sweepChunk = options.sweepChunk ?? 128;
    this.#keys = options.keys ?? new TimeKeyGenerator();
    this.#events = new ToolEvents(entries);
  }

  /**
   * Appends one entry through the batch writer (a burst of N appends costs about
   * N / maxBatch `db.batch()` calls). Stores the entry under a fresh time key (see
   * `time-key.ts`) stamped with its `timestamp`; `id` defaults to that key (a caller's `id` is
   * kept as given: its uniqueness is the caller's). Fills `timestamp` (now) and normalises it to
   * `toISOString()` form; caps `arguments` and `result` with {@link capPayload} (setting the
   * `*_truncated` flags; `undefined` becomes `null`; a value the caller already cut, i.e. a string
   * flagged truncated that fits the cap in UTF-8, is kept as it is); resolves with the stored
   * entry once its batch is committed.
   *
   * Rejects with a `TypeError`/`RangeError` for a malformed input (bad timestamp, non-finite
   * latency or cost, unknown status), or with the writer's `StoreError` (`overloaded`,
   * `closed`, `io`).
   */
  async append(input: ToolLogInput): Promise<ToolLogEntry> {
    const { key, entry } = this.#build(input);
    const ops = this.#ops(key, entry);
    const stored: ToolLogEntry = { ...entry, arguments: unpackPayload(entry.arguments), result: unpackPayload(entry.result) };
    await this.#writer.writeAll(ops);
    return stored;
  }

  /**
   * The ops that store an entry — one (the record), or two when its payloads do not fit inline —
   * built as {@link append} does, without writing them: for a caller that commits them in one
   * unit with other records (the event of the same call). Throws what `append` rejects with for a
   * malformed input.
   */
  entryOps(input: ToolLogInput): BatchOp[] {
    const { key, entry } = this.#build(input);
    return this.#ops(key, entry);
  }

  /**
   * Reads where the log ends, so the records of tool events continue in key order after a
   * restart (see {@link eventEntryOps}), and deletes payloads left without their record by a
   * crash. Call once, before the first write.
   */
  async init(): Promise<void> {
    await this.#deleteOrphanPayloads();
    await this.#events.init();
  }

  /**
   * The op(s) that store a tool call's entry together with its event (`event`, as the event log
   * stores and sends it): ONE record, read by the tool log as an entry and by the event log as
   * the event ({@link toolEventsAfter}). Its key is {@link toolEventKey}: filed at the entry's
   * timestamp, or at the previous tool event's ms if the clock went back, so these keys are in
   * seq order. Call in seq order (the event recorder does). `leaveOut`: fields of `event` that are
   * not stored (the live event's payloads: the record keeps them capped), so a caller need not copy
   * the event without them. Throws what {@link entryOps} throws.
   */
  eventEntryOps(input: ToolLogInput, event: ToolEventRecord, leaveOut?: ReadonlySet<string>): BatchOp[] {
    const { key, entry } = this.#build(input, event.seq);
    (entry as { event?: ToolEventRecord }).event = event;
    if (leaveOut !== undefined) (entry as { eventLeaveOut?: ReadonlySet<string> }).eventLeaveOut = leaveOut;
    return this.#ops(key, entry);
  }

  /**
   * The tool events recorded with their entries ({@link eventEntryOps}) with `since < seq ≤ upTo`,
   * in seq order, at most `limit` (see {@link ToolEvents.after}).
   */
  toolEventsAfter(since: number, limit: number, upTo?: number): Promise<ToolEventRecord[]> {
    return this.#events.after(since, limit, upTo);
  }

  /** The highest seq of a tool event recorded with its entry, 0 when there is none. */
  lastToolEventSeq(): Promise<number> {
    return this.#events.lastSeq();
  }

  #ops(key: string, entry: ToolLogRecordFields): BatchOp[] {
    const { record, payload } = encodeRecord(entry);
    const op = putBytesOp(this.#entries, key, record);
    return payload === undefined ? [op] : [op, putBytesOp(this.#payloads, key, payload)];
  }

  /** The entries of `pairs` (key, stored value), with their external payloads; yields every {@link SLICE_MS}. */
  async #entriesOf(pairs: readonly (readonly [string, Uint8Array])[]): Promise<ToolLogEntry[]> {
    const external: string[] = [];
    for (const [key, value] of pairs) if (hasExternalPayload(value)) external.push(key);
    const payloads = new Map<string, Uint8Array | undefined>();
    if (external.length > 0) {
      // the payload database has snapshots of its own; without one, a payload retention deleted
      // after `snapshot` was taken reads as missing (the entry, cut to nothing)
      const found = await this.#payloads.getMany(external);
      external.forEach((key, i) => payloads.set(key, found[i]));
    }
    const entries: ToolLogEntry[] = [];
    let slice = performance.now();
    for (const [key, value] of pairs) {
      entries.push(entryOfValue(value, payloads.get(key)));
      if (performance.now() - slice > SLICE_MS) {
        await yieldToLoop();
        slice = performance.now();
      }
    }
    return entries;
  }

  /**
   * Entries matching `q`, newest first, `limit` (≤ {@link MAX_QUERY_LIMIT}) after skipping
   * `offset`, with the number of all matches. Reads one snapshot, so `entries` and `total` agree.
   * @throws RangeError for a bad `limit`, `offset`, `from` or `to`.
   */
  async query(q: ToolLogQuery): Promise<ToolLogPage> {
    const limit = Math.min(nonNegativeInt(q.limit, 'limit'), MAX_QUERY_LIMIT);
    const offset = nonNegativeInt(q.offset ?? 0, 'offset');
    const match = compileFilter(q);
    const range = rangeOf(q);
    let total = 0;
    if (match === undefined) {
      // count by keys alone, then read the page's values with one getMany from the same snapshot
      const snapshot = this.#db.snapshot();
      try {
        const keys: string[] = [];
        const it = this.#entries.keys({ ...range, reverse: true, snapshot, ...SCAN_OPTIONS });
        try {
          for (let chunk = await it.nextv(SCAN_CHUNK); chunk.length > 0; chunk = await it.nextv(SCAN_CHUNK)) {
            for (const key of chunk) {
              if (total >= offset && keys.length < limit) keys.push(key);
              total++;
            }
          }
        } finally {
          await it.close();
        }
        const values = keys.length > 0 ? await this.#entries.getMany(keys, { snapshot }) : [];
        const pairs: [string, Uint8Array][] = [];
        values.forEach((v, i) => {
          if (v !== undefined) pairs.push([keys[i] as string, v]);
        });
        return { entries: await this.#entriesOf(pairs), total };
      } finally {
        await snapshot.close();
      }
    }
    // one scan: summaries decoded for the filter; the page's records kept, decoded in full at the end
    const snapshot = this.#db.snapshot();
    try {
      const page: [string, Uint8Array][] = [];
      const it = this.#entries.iterator({ ...range, reverse: true, snapshot, ...SCAN_OPTIONS });
      try {
        for (let chunk = await it.nextv(SCAN_CHUNK); chunk.length > 0; chunk = await it.nextv(SCAN_CHUNK)) {
          let slice = performance.now();
          for (const pair of chunk) {
            if (performance.now() - slice > SLICE_MS) {
              await yieldToLoop();
              slice = performance.now();
            }
            if (!match(summaryOf(pair[1]))) continue;
            if (total >= offset && page.length < limit) page.push(pair);
            total++;
          }
        }
      } finally {
        await it.close();
      }
      return { entries: await this.#entriesOf(page), total };
    } finally {
      await snapshot.close();
    }
  }

  /**
   * Totals over the entries matching `filter`: count, success rate (0..1), mean latency (ms)
   * and total cost (USD, compensated summation); all zeros when nothing matches.
   * @throws RangeError for a bad `from` or `to`.
   */
  async stats(filter: ToolLogFilter = {}): Promise<ToolLogStats> {
    const match = compileFilter(filter);
    const it = this.#entries.values({ ...rangeOf(filter), ...SCAN_OPTIONS });
    let total = 0;
    let ok = 0;
    const latency = new KahanSum();
    const cost = new KahanSum();
    try {
      for (let chunk = await it.nextv(SCAN_CHUNK); chunk.length > 0; chunk = await it.nextv(SCAN_CHUNK)) {
        let slice = performance.now();
        for (const value of chunk) {
          if (performance.now() - slice > SLICE_MS) {
            await yieldToLoop();
            slice = performance.now();
          }
          const s = summaryOf(value);
          if (match !== undefined && !match(s)) continue;
          total++;
          ok += s[2];
          latency.add(s[3]);
          cost.add(s[4]);
        }
      }
    } finally {
      await it.close();
    }
    if (total === 0) return { total_executions: 0, success_rate: 0, average_latency: 0, total_cost: 0 };
    return { total_executions: total, success_rate: ok / total, average_latency: latency.value / total, total_cost: cost.value };
  }

  /**
   * Deletes entries stamped more than `maxAgeMs` before `now`, then the oldest beyond
   * `maxEntries`, in `db.batch()`es of `sweepChunk` entries (directly, not through the batch
   * writer, so a large sweep never fills the writers' queue). Sweeps run one at a time; a call
   * made during a sweep waits for it. Entries appended while a sweep runs may leave the log
   * slightly above `maxEntries` until the next sweep. Resolves with the number of entries deleted.
   */
  sweep(options: SweepOptions): Promise<number> {
    const run = this.#sweepChain.then(() => this.#sweep(options));
    this.#sweepChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs {@link sweep} now and then every `intervalMs` (an unref'd timer: it never keeps the
   * process alive), skipping a tick while a sweep is still running; failures are logged at
   * `warn`. Returns `stop`: it cancels the timer and resolves once a sweep already running is
   * done (never rejects). {@link close} stops every retention timer.
   * @throws RangeError for an `intervalMs` that is not > 0.
   */
  startRetention(options: RetentionOptions, intervalMs: number): () => Promise<void> {
    if (!(intervalMs > 0)) throw new RangeError('startRetention: intervalMs must be > 0');
    let stopped = false;
    let running: Promise<void> | undefined;
    const tick = (): void => {
      if (stopped || running !== undefined) return;
      running = this.sweep({ ...options, now: this.#now() })
        .then(
          (deleted) => {
            if (deleted > 0) this.#log.info('tool log retention', { deleted, ...options });
          },
          (err: unknown) => this.#log.warn('tool log retention failed', { err }),
        )
        .finally(() => {
          running = undefined;
        });
    };
    const timer = setInterval(tick, intervalMs);
    timer.unref();
    const stop = async (): Promise<void> => {
      stopped = true;
      clearInterval(timer);
      this.#retention.delete(stop);
      await running;
    };
    this.#retention.add(stop);
    tick();
    return stop;
  }

  /** Stops every retention timer and waits for a running sweep. Appends are the writer's to flush. */
  async close(): Promise<void> {
    await Promise.all([...this.#retention].map((stop) => stop()));
    await this.#sweepChain;
  }

  async #sweep(options: SweepOptions): Promise<number> {
    let deleted = 0;
    if (options.maxAgeMs !== undefined) {
      if (!(options.maxAgeMs >= 0)) throw new RangeError('sweep: maxAgeMs must be ≥ 0');
      const cutoff = (options.now ?? this.#now()) - options.maxAgeMs;
      if (cutoff > 0) deleted += await this.#deleteOldest({ lt: msPrefix(Math.floor(cutoff)) }, Number.POSITIVE_INFINITY);
    }
    if (options.maxEntries !== undefined) {
      const max = nonNegativeInt(options.maxEntries, 'maxEntries');
      let count = 0;
      const it = this.#entries.keys({ gte: '', ...SCAN_OPTIONS });
      try {
        for (let chunk = await it.nextv(SCAN_CHUNK); chunk.length > 0; chunk = await it.nextv(SCAN_CHUNK)) count += chunk.length;
      } finally {
        await it.close();
      }
      if (count > max) deleted += await this.#deleteOldest({}, count - max);
    }
    return deleted;
  }

  /**
   * Deletes payload values below the oldest record's key: values whose record never landed (a
   * crash between the two writes of a call, see the module comment) and that retention has since
   * passed. Payloads are written and deleted with their records otherwise, so this usually finds
   * nothing after two key reads. Runs at {@link init} only, before any write: while calls are being
   * written a payload may land before its record.
   */
  async #deleteOrphanPayloads(): Promise<void> {
    const oldest = await this.#entries.keys({ limit: 1 }).all();
    const below = oldest[0];
    for (;;) {
      const keys = await this.#payloads.keys({ ...(below === undefined ? {} : { lt: below }), limit: this.#sweepChunk * 2 }).all();
      if (keys.length === 0) return;
      await commitOps(
        this.#db,
        keys.map((key) => delOp(this.#payloads, key)),
      );
    }
  }

  /** Deletes up to `howMany` of the oldest entries with keys below `range.lt`, `sweepChunk` per `db.batch()`. */
  async #deleteOldest(range: { lt?: string }, howMany: number): Promise<number> {
    let deleted = 0;
    let after: string | undefined;
    while (deleted < howMany) {
      const limit = Math.min(this.#sweepChunk, howMany - deleted);
      const records = await this.#entries.iterator({ ...range, ...(after === undefined ? {} : { gt: after }), limit, ...SCAN_OPTIONS }).all();
      if (records.length === 0) break;
      const ops: BatchOp[] = [];
      for (const [key, value] of records) {
        ops.push(delOp(this.#entries, key));
        if (hasExternalPayload(value)) ops.push(delOp(this.#payloads, key));
      }
      await commitOps(this.#db, ops);
      deleted += records.length;
      after = records[records.length - 1]?.[0];
    }
    return deleted;
  }

  /**
   * `Date.parse(text)`, remembering the last text: the calls of one millisecond carry the same
   * timestamp string (the event bus stamps one per ms), and parsing it is a good part of an
   * entry's build.
   */
  #parseStamp(text: string): number {
    if (text !== this.#parsedText) {
      this.#parsedMs = Date.parse(text);
      this.#parsedText = text;
    }
    return this.#parsedMs;
  }

  /** `new Date(ms).toISOString()`, remembering the last `ms` (see {@link #parseStamp}). */
  #formatStamp(ms: number): string {
    if (ms !== this.#formattedMs) {
      this.#formatted = new Date(ms).toISOString();
      this.#formattedMs = ms;
    }
    return this.#formatted;
  }

  #build(input: ToolLogInput, eventSeq?: number): { key: string; entry: ToolLogEntry & { arguments: Uint8Array; result: Uint8Array } } {
    if (input.status !== 'success' && input.status !== 'error') throw new TypeError(`tool log: bad status ${String(input.status)}`);
    if (!Number.isFinite(input.latency_ms)) throw new TypeError('tool log: latency_ms must be a finite number');
    if (!Number.isFinite(input.cost_usd)) throw new TypeError('tool log: cost_usd must be a finite number');
    const ms = input.timestamp === undefined ? this.#now() : this.#parseStamp(input.timestamp);
    if (!Number.isFinite(ms)) throw new RangeError(`tool log: bad timestamp ${JSON.stringify(input.timestamp)}`);
    if (!(Number.isInteger(ms) && ms >= 0 && ms <= MAX_KEY_MS)) throw new RangeError(`tool log: timestamp out of range ${JSON.stringify(input.timestamp)}`);
    const key = eventSeq === undefined ? this.#keys.next(ms) : this.#events.file(ms, eventSeq);
    const args = this.#cap(input.arguments, input.arguments_truncated === true);
    const result = this.#cap(input.result, input.result_truncated === true);
    const entry: ToolLogEntry & { arguments: Uint8Array; result: Uint8Array } = {
      id: input.id ?? key,
      client: input.client,
      tool: input.tool,
      arguments: args.bytes,
      arguments_truncated: args.truncated,
      result: result.bytes,
      result_truncated: result.truncated,
      status: input.status,
      latency_ms: input.latency_ms,
      cost_usd: input.cost_usd,
      surface: input.surface,
      timestamp: this.#formatStamp(ms),
    };
    if (input.error !== undefined) entry.error = input.error;
    if (input.virtual_key !== undefined) entry.virtual_key = input.virtual_key;
    if (input.trace_id !== undefined) entry.trace_id = input.trace_id;
    return { key, entry };
  }

  /**
   * {@link capPayloadPacked}. A caller's own cut stays a cut: a string flagged truncated that fits is
   * kept as it is; anything else flagged truncated is kept as (a prefix of) its JSON text.
   */
  #cap(value: unknown, alreadyTruncated: boolean): PackedPayload {
    return capPayloadPacked(value ?? null, this.#maxPayloadBytes, alreadyTruncated);
  }
}
