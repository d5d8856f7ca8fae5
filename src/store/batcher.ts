/**
 * `BatchWriter`: every write from the streams goes through one writer that commits
 * `db.batch()`es one at a time, grouping the writes that arrive meanwhile (group commit:
 * writers wait for the batch).
 *
 * Contracts:
 * - `write(op)` / `writeAll(ops)` resolve once the batch holding the op(s) is committed, and
 *   reject if that batch fails (every write of a failed batch rejects with the same `io` error).
 *   With classic-level a committed batch is in LevelDB's write-ahead log (the OS page cache): it
 *   survives a `kill -9` of the process, not a power loss (no fsync unless `sync`).
 *   `writeAllThen(ops, done, token)` is the same with a callback instead of a promise (for the
 *   per-request path: no promise, no closure per write).
 * - Batches commit strictly in order, one at a time; so promises settle in the order the writes
 *   were accepted.
 * - A batch holds at most `maxBatch` units and `maxBatchOps` ops (a unit is never split).
 * - When a batch starts: as soon as no batch is being committed and either `maxBatch` units wait,
 *   or the oldest waiting write has waited `windowMs` (with `windowMs` 0: at the end of the
 *   current event-loop turn, so the writes of one turn share a batch). Everything that waits when a
 *   commit ends goes into the next batch (up to `maxBatch` units), so batches never pile up behind
 *   a slow one: the wait for a write is at most the commit in flight plus its own.
 * - Bounded: at most `maxPending` ops are accepted and not yet committed (waiting or being
 *   written); beyond that a write rejects at once with `StoreError` `overloaded`. Memory is
 *   therefore bounded by `maxPending` ops. Producers that must not outrun the store await their
 *   write (that is the backpressure).
 * - `close()` commits what is pending, then refuses new writes.
 */
import {
  Subscription,
  asyncScheduler,
  bufferTime,
  filter,
  from,
  type ObservableInput,
  type OperatorFunction,
  type SchedulerLike,
} from 'rxjs';
import { encodeValue } from './codec.js';
import type { RootDb, Sublevel } from './db.js';
import { StoreError } from './errors.js';

/**
 * One operation for the root database: a put or delete in a sublevel, value already encoded.
 * `rootKey` is the key as the root database stores it (the sublevel's prefix + `key`, from
 * abstract-level's documented `prefixKey`), computed when the op is built so a commit does no
 * per-op key work: {@link commitOps} writes root keys through a chained batch.
 */
export type BatchOp =
  | {
      readonly type: 'put';
      readonly sublevel: Sublevel<unknown>;
      readonly key: string;
      readonly rootKey: string;
      readonly value: Uint8Array;
    }
  | { readonly type: 'del'; readonly sublevel: Sublevel<unknown>; readonly key: string; readonly rootKey: string };

/** The root database's key for `key` in `sublevel` (utf8 keys: the sublevel prefix, then the key). */
function rootKeyOf(sublevel: Sublevel<unknown>, key: string): string {
  return sublevel.prefixKey(key, 'utf8');
}

/**
 * A put of `value` under `key` in `sublevel`. Encodes now (msgpackr), so a value that cannot be
 * encoded throws here, to this caller only, instead of failing a whole batch later.
 */
export function putOp<V>(sublevel: Sublevel<V>, key: string, value: V): BatchOp {
  const sub = sublevel as Sublevel<unknown>;
  return { type: 'put', sublevel: sub, key, rootKey: rootKeyOf(sub, key), value: encodeValue(value) };
}

/**
 * A put of bytes the caller encoded itself (a value of its own layout, written as it is, for a
 * sublevel whose values that caller reads raw). `bytes` must not be changed afterwards.
 */
export function putBytesOp<V>(sublevel: Sublevel<V>, key: string, bytes: Uint8Array): BatchOp {
  const sub = sublevel as Sublevel<unknown>;
  return { type: 'put', sublevel: sub, key, rootKey: rootKeyOf(sub, key), value: bytes };
}

/** A delete of `key` in `sublevel`. */
export function delOp<V>(sublevel: Sublevel<V>, key: string): BatchOp {
  const sub = sublevel as Sublevel<unknown>;
  return { type: 'del', sublevel: sub, key, rootKey: rootKeyOf(sub, key) };
}

/**
 * The default op cap per batch: keeps one commit's hold of the event loop under 1 ms at the
 * ≈ 2–3 µs per op measured here (see {@link BatchWriterOptions.maxBatchOps}).
 */
export const DEFAULT_MAX_BATCH_OPS = 256;

/** Writes one batch; settles (Promise resolves / Observable completes) when it is committed. */
export type BatchCommit<Op> = (ops: readonly Op[]) => ObservableInput<unknown>;

/**
 * Writes `ops` atomically with one LevelDB write batch; with `sync`, fsyncs before resolving.
 *
 * Uses abstract-level's chained batch on the root database with the ops' precomputed root keys
 * (https://github.com/Level/abstract-level#chainedbatch--dbbatch): each `put` goes to the native
 * batch with one binding call and no per-op options. The array form, `db.batch(ops)`, clones
 * every op (`{ ...options, ...op }`), resolves the sublevel's encodings and prefix per op, and
 * classic-level then reads each op's fields back one property at a time from native code:
 * measured here (`npm run bench:store`, records table) at about twice the event-loop hold and
 * more CPU per op than the chained form. (With the array form, even passing `{ sync: false }`
 * cost ≈ 10 µs per op: abstract-level copies a batch's options into every op.)
 *
 * Ops on sublevels of a second root database (the tool log's payloads, see `tool-log.ts`) are
 * written with a batch of their own on that database, at the same time; the promise settles when
 * both have. Each batch is atomic, the pair is not: a crash between the two writes can keep one
 * without the other (the tool log reads a record whose payload value is missing as cut to nothing).
 *
 * Rejects with what LevelDB rejects with (the first batch's error when both fail); an op
 * abstract-level refuses (e.g. a value that is not bytes) rejects the whole batch and nothing is
 * written; `RangeError` for ops addressing more than two databases.
 */
export async function commitOps(db: RootDb, ops: readonly BatchOp[], sync = false): Promise<void> {
  const batch = db.batch();
  // ops on a sublevel of another root database (the tool log's payload database) go to a batch of
  // their own on that database, written alongside
  let other: { readonly db: RootDb; readonly batch: typeof batch } | undefined;
  try {
    for (const op of ops) {
      const root = op.sublevel.db;
      let target = batch;
      if (root !== db) {
        if (other === undefined) other = { db: root, batch: root.batch() };
        else if (other.db !== root) throw new RangeError('commitOps: the ops address more than two databases');
        target = other.batch;
      }
      if (op.type === 'put') target.put(op.rootKey, op.value);
      else target.del(op.rootKey);
    }
  } catch (err) {
    await Promise.all([batch.close(), other?.batch.close()]);
    throw err;
  }
  if (other === undefined) {
    await (sync ? batch.write({ sync: true }) : batch.write());
    return;
  }
  if (batch.length === 0) {
    await batch.close();
    await (sync ? other.batch.write({ sync: true }) : other.batch.write());
    return;
  }
  // both settle before this does, so a caller told of a failure knows nothing is still in flight
  const [a, b] = await Promise.allSettled([
    sync ? batch.write({ sync: true }) : batch.write(),
    sync ? other.batch.write({ sync: true }) : other.batch.write(),
  ] as const);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
}

/** A {@link BatchCommit} writing to classic-level with one `db.batch()` (fsync when `sync`). */
export function levelBatchCommit(db: RootDb, sync = false): BatchCommit<BatchOp> {
  return (ops) => commitOps(db, ops, sync);
}

export interface BatchWriterOptions {
  /**
   * How long the oldest waiting write may wait for others before its batch starts, ms (default 0:
   * group commit — a batch starts at the end of the event-loop turn, or when the commit in flight
   * ends). A lone write waits up to this long, plus the commit in flight, plus its own commit.
   */
  readonly windowMs?: number;
  /** Most write units (`write` calls or `writeAll` groups) per batch (default 1000). */
  readonly maxBatch?: number;
  /**
   * Most ops per batch (default {@link DEFAULT_MAX_BATCH_OPS}), a `writeAll` group is never split:
   * a batch that would pass it ends before the next unit (a single larger unit goes alone).
   * abstract-level prepares and classic-level copies every op into the native batch on the event
   * loop before the write moves to LevelDB's thread (≈ 2–3 µs per tool-call record op here), so
   * this bounds how long one commit holds the loop: ≈ 0.6 ms at 256 ops (≈ 2.6 ms at 1024).
   * Smaller commits cost no measurable CPU per call here (`npm run bench:store`, records table).
   */
  readonly maxBatchOps?: number;
  /** Most ops accepted and not yet committed (default 100 000); beyond it writes fail `overloaded`. */
  readonly maxPending?: number;
  /** Scheduler for the window timer (default `asyncScheduler`; a `TestScheduler` in marble tests). */
  readonly scheduler?: SchedulerLike;
}

/** Counters for metrics. Durations are wall-clock ms (`performance.now()`). */
export interface BatchWriterCounters {
  /** Batches committed successfully. */
  readonly batches: number;
  /** Ops committed successfully. */
  readonly ops: number;
  /** Batches that failed (their writes were rejected). */
  readonly failedBatches: number;
  /** Ops in the last batch attempted (committed or failed). */
  readonly lastBatchSize: number;
  /** Duration of the last batch attempted, ms. */
  readonly lastBatchMs: number;
  /** Ops accepted and not yet settled. */
  readonly pending: number;
  /**
   * How long the last commit call held the event loop, ms: the synchronous part of `commit`
   * (for LevelDB, `db.batch()` preparing and copying the ops), not the write on LevelDB's thread.
   */
  readonly lastHoldMs: number;
  /** The longest such hold so far, ms. */
  readonly maxHoldMs: number;
  /**
   * Commits whose hold passed {@link HOLD_LIMIT_MS} (wall clock: a hold counts time the process
   * was descheduled or collecting garbage too, so on a loaded or single-core machine this counts
   * more than the work itself causes).
   */
  readonly holdsOverLimit: number;
}

/** The event-loop hold a store commit should stay under, ms (see {@link BatchWriterCounters.holdsOverLimit}). */
export const HOLD_LIMIT_MS = 1;

/**
 * Told how a write unit ended (see {@link BatchWriter.writeAllThen}): `error` is `undefined` once
 * its batch is committed, else the `StoreError` (`io`, `overloaded`, `closed`). Must not throw.
 */
export type WriteDone<T> = (token: T, error: StoreError | undefined) => void;

interface Unit<Op> {
  readonly ops: readonly Op[];
  readonly done: WriteDone<never>;
  readonly token: unknown;
}

/** A promise's settling functions: the token of a {@link BatchWriter.writeAll} unit. */
interface Settle {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

const settlePromise: WriteDone<Settle> = (settle, error) => {
  if (error === undefined) settle.resolve();
  else settle.reject(error);
};

const ignore = (): void => undefined;

/** What stays in a taken unit's place in the waiting array until it is compacted (holds nothing). */
const TAKEN: Unit<never> = { ops: [], done: ignore, token: undefined };

/**
 * `bufferTime(windowMs, null, maxBatch)` without the empty buffers of idle windows: emits the
 * items of each window (at most `maxBatch` per array, a full array is emitted at once and a new
 * window starts), in arrival order.
 */
export function batchWindows<T>(windowMs: number, maxBatch: number, scheduler: SchedulerLike = asyncScheduler): OperatorFunction<T, T[]> {
  return (source) =>
    source.pipe(
      bufferTime(windowMs, null, maxBatch, scheduler),
      filter((batch) => batch.length > 0),
    );
}

export class BatchWriter<Op = BatchOp> {
  readonly #commit: BatchCommit<Op>;
  readonly #windowMs: number;
  readonly #maxBatch: number;
  readonly #maxBatchOps: number;
  readonly #maxPending: number;
  readonly #scheduler: SchedulerLike | undefined;
  /** Accepted units not yet in a batch, oldest first; `#head` indexes the oldest. */
  #waiting: Unit<Op>[] = [];
  #head = 0;
  /** When the oldest waiting unit's window ends (scheduler time, ms). */
  #dueAt = 0;
  #timer: Subscription | NodeJS.Immediate | undefined;
  #inFlight = false;
  #closed = false;
  #done: Promise<void> | undefined;
  #resolveDone: (() => void) | undefined;
  #pending = 0;
  #accepted = 0;
  #settled = 0;
  #flushWaiters: { readonly target: number; readonly resolve: () => void }[] = [];
  #batches = 0;
  #ops = 0;
  #failedBatches = 0;
  #lastBatchSize = 0;
  #lastBatchMs = 0;
  #lastHoldMs = 0;
  #maxHoldMs = 0;
  #holdsOverLimit = 0;

  /**
   * @param commit writes one batch (for LevelDB: {@link levelBatchCommit}); called one batch at a
   *   time, never concurrently; a throw or rejection fails that batch only.
   * @throws RangeError for a window < 0, or a `maxBatch` / `maxBatchOps` / `maxPending` below 1.
   */
  constructor(commit: BatchCommit<Op>, options: BatchWriterOptions = {}) {
    this.#windowMs = options.windowMs ?? 0;
    this.#maxBatch = options.maxBatch ?? 1000;
    this.#maxBatchOps = options.maxBatchOps ?? DEFAULT_MAX_BATCH_OPS;
    this.#maxPending = options.maxPending ?? 100_000;
    if (!(this.#windowMs >= 0)) throw new RangeError('BatchWriter: windowMs must be ≥ 0');
    if (!(Number.isInteger(this.#maxBatch) && this.#maxBatch >= 1)) throw new RangeError('BatchWriter: maxBatch must be an integer ≥ 1');
    if (!(Number.isInteger(this.#maxBatchOps) && this.#maxBatchOps >= 1)) throw new RangeError('BatchWriter: maxBatchOps must be an integer ≥ 1');
    if (!(Number.isInteger(this.#maxPending) && this.#maxPending >= 1)) {
      throw new RangeError('BatchWriter: maxPending must be an integer ≥ 1');
    }
    this.#commit = commit;
    this.#scheduler = options.scheduler;
  }

  /** Queues one op; see {@link writeAll}. */
  write(op: Op): Promise<void> {
    return this.writeAll([op]);
  }

  /**
   * Queues `ops` as one unit: they land in the same `db.batch()` (atomically), in order.
   * Resolves when that batch is committed; rejects with the batch's `io` error, at once with
   * `StoreError` `overloaded` if `maxPending` would be exceeded, or `closed` after `close()`.
   * An empty `ops` resolves at once.
   */
  writeAll(ops: readonly Op[]): Promise<void> {
    const refused = this.#refusal(ops);
    if (refused !== undefined) return Promise.reject(refused);
    if (ops.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.#accept(ops, settlePromise, { resolve, reject }));
  }

  /**
   * {@link writeAll} without a promise, for a caller that writes on every request: calls
   * `done(token, undefined)` once the batch holding `ops` is committed, `done(token, error)` when
   * that batch fails (`io`) or the write is refused (`overloaded`, `closed`). `done` is called
   * exactly once and never synchronously from this call (a refusal or an empty `ops` is reported
   * on a microtask), in the order the writes were accepted; it must not throw (a throw is caught,
   * so the other writes of the batch are still told, and rethrown on a microtask).
   */
  writeAllThen<T>(ops: readonly Op[], done: WriteDone<T>, token: T): void {
    const refused = this.#refusal(ops);
    if (refused !== undefined || ops.length === 0) {
      queueMicrotask(() => done(token, refused));
      return;
    }
    this.#accept(ops, done, token);
  }

  /** Why `ops` cannot be accepted now (`closed`, `overloaded`), or `undefined`. */
  #refusal(ops: readonly Op[]): StoreError | undefined {
    if (this.#closed) return new StoreError('closed', 'store is closed; the write was not accepted');
    if (ops.length > 0 && this.#pending + ops.length > this.#maxPending) {
      return new StoreError('overloaded', `store write queue is full (${this.#pending} ops pending, limit ${this.#maxPending}); retry later`);
    }
    return undefined;
  }

  #accept<T>(ops: readonly Op[], done: WriteDone<T>, token: T): void {
    this.#pending += ops.length;
    this.#accepted++;
    // with window 0 nothing waits for a due time (a batch starts at the end of the turn)
    if (this.#windowMs > 0 && this.#waiting.length === this.#head) this.#dueAt = this.#now() + this.#windowMs;
    this.#waiting.push({ ops, done: done as WriteDone<never>, token });
    this.#schedule();
  }

  /** Resolves (never rejects) once every write accepted before this call has settled. */
  flush(): Promise<void> {
    const target = this.#accepted;
    if (this.#settled >= target) return Promise.resolve();
    return new Promise<void>((resolve) => this.#flushWaiters.push({ target, resolve }));
  }

  /**
   * Stops accepting writes (they reject with `closed`), commits everything pending, then
   * resolves. Idempotent: every call returns the same completion.
   */
  close(): Promise<void> {
    if (this.#done === undefined) {
      this.#closed = true;
      this.#done = new Promise<void>((resolve) => {
        this.#resolveDone = resolve;
      });
      this.#schedule();
      this.#checkDone();
    }
    return this.#done;
  }

  /** A snapshot of the counters. */
  get counters(): BatchWriterCounters {
    return {
      batches: this.#batches,
      ops: this.#ops,
      failedBatches: this.#failedBatches,
      lastBatchSize: this.#lastBatchSize,
      lastBatchMs: this.#lastBatchMs,
      pending: this.#pending,
      lastHoldMs: this.#lastHoldMs,
      maxHoldMs: this.#maxHoldMs,
      holdsOverLimit: this.#holdsOverLimit,
    };
  }

  #now(): number {
    return (this.#scheduler ?? asyncScheduler).now();
  }

  #waitingUnits(): number {
    return this.#waiting.length - this.#head;
  }

  /**
   * Starts a batch now, or arms the timer for when the oldest waiting write is due. `afterCommit`:
   * called as a commit ended; with `windowMs` 0 what waited during that commit goes at once.
   */
  #schedule(afterCommit = false): void {
    if (this.#inFlight || this.#waitingUnits() === 0) return;
    const delay = this.#windowMs === 0 ? 0 : this.#dueAt - this.#now();
    const due = this.#windowMs === 0 ? afterCommit : delay <= 0;
    if (this.#closed || this.#waitingUnits() >= this.#maxBatch || due) {
      this.#cancelTimer();
      this.#start();
      return;
    }
    if (this.#timer !== undefined) return;
    const fire = (): void => {
      this.#timer = undefined;
      if (!this.#inFlight && this.#waitingUnits() > 0) this.#start();
    };
    if (this.#scheduler !== undefined) this.#timer = this.#scheduler.schedule(fire, Math.max(0, delay));
    else if (this.#windowMs === 0) this.#timer = setImmediate(fire);
    else this.#timer = asyncScheduler.schedule(fire, Math.max(0, delay));
  }

  #cancelTimer(): void {
    const t = this.#timer;
    this.#timer = undefined;
    if (t === undefined) return;
    if (t instanceof Subscription) t.unsubscribe();
    else clearImmediate(t);
  }

  #start(): void {
    let end = this.#head;
    const last = Math.min(this.#waiting.length, this.#head + this.#maxBatch);
    for (let ops = 0; end < last; end++) {
      const n = (this.#waiting[end] as Unit<Op>).ops.length;
      if (end > this.#head && ops + n > this.#maxBatchOps) break;
      ops += n;
    }
    const units = this.#waiting.slice(this.#head, end);
    const taken = this.#head;
    this.#head = end;
    // units taken are let go at once: kept here (with their values and their callers' promise
    // callbacks) for ~1,000 more writes they outlive two young-generation collections and end as
    // old-space garbage, the cause of regular full mark-compacts at low concurrency
    if (this.#head === this.#waiting.length) {
      this.#waiting.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    } else {
      this.#waiting.fill(TAKEN, taken, end);
    }
    this.#inFlight = true;
    let size = 0;
    const ops: Op[] = [];
    for (const unit of units) {
      size += unit.ops.length;
      for (const op of unit.ops) ops.push(op);
    }
    const started = performance.now();
    const finish = (error: unknown): void => {
      this.#lastBatchSize = size;
      this.#lastBatchMs = performance.now() - started;
      this.#pending -= size;
      this.#settled += units.length;
      if (error === undefined) {
        this.#batches++;
        this.#ops += size;
        tell(units, undefined);
      } else {
        this.#failedBatches++;
        const failure = new StoreError('io', `store batch of ${size} ops failed: ${errorText(error)}`, { cause: error });
        tell(units, failure);
      }
      this.#inFlight = false;
      this.#releaseFlushWaiters();
      this.#schedule(true);
      this.#checkDone();
    };
    let settled = false;
    const once = (error: unknown): void => {
      if (settled) return;
      settled = true;
      finish(error);
    };
    try {
      const committing = this.#commit(ops);
      this.#lastHoldMs = performance.now() - started;
      if (this.#lastHoldMs > this.#maxHoldMs) this.#maxHoldMs = this.#lastHoldMs;
      if (this.#lastHoldMs > HOLD_LIMIT_MS) this.#holdsOverLimit++;
      from(committing).subscribe({ error: (err: unknown) => once(err ?? new Error('batch failed')), complete: () => once(undefined) });
    } catch (err) {
      once(err ?? new Error('batch failed'));
    }
  }

  #checkDone(): void {
    if (this.#closed && !this.#inFlight && this.#waitingUnits() === 0) this.#resolveDone?.();
  }

  #releaseFlushWaiters(): void {
    if (this.#flushWaiters.length === 0) return;
    const still: { readonly target: number; readonly resolve: () => void }[] = [];
    for (const waiter of this.#flushWaiters) {
      if (waiter.target <= this.#settled) waiter.resolve();
      else still.push(waiter);
    }
    this.#flushWaiters = still;
  }
}

/** Tells every unit of a batch how it ended; a `done` that throws does not keep the others from being told. */
function tell<Op>(units: readonly Unit<Op>[], error: StoreError | undefined): void {
  for (const unit of units) {
    try {
      (unit.done as WriteDone<unknown>)(unit.token, error);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
