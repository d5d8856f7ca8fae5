/**
 * The durable event log: every domain event, keyed by its `seq`, written through the batching
 * writer. It lets `/api/ws/events` subscribers resume with `since`, also across a restart.
 * Retention: at most `maxEntries` events, oldest deleted first by {@link EventLogRepository.sweep}.
 *
 * Sequence numbers are never reused: a high-water mark (`meta` key `events_seq_reserved`) is kept
 * ahead of the numbers in use ({@link EventLogRepository.reserveOp} extends it, in the same batch
 * as the events, whenever fewer than half a reservation remain). A restart continues above
 * `max(last stored seq, reserved)`; after a clean stop the reservation is released
 * ({@link EventLogRepository.release}) so numbering continues without a hole. After a crash the
 * numbers between the last stored event and the reservation stay unused, and a gap record
 * (`event_gaps`) says so, so a replay can name the range instead of skipping it silently. Events
 * that could not be stored (a failed batch) get a gap record too.
 *
 * Tool events are not stored here (schema version 3 on): the recorder stores each
 * `ToolInvocationCompleted`/`ToolInvocationFailed` event inside its tool-log record, one LevelDB
 * value per call, and this log reads them from there ({@link ToolEventSource}); it merges them
 * with its own events by seq. Tool events stored here by earlier versions still read from here.
 * A tool event therefore lives as long as its tool-log entry (the tool log's retention); this
 * log's retention (`sweep`) deletes the other events.
 */
import type { BatchWriter, BatchOp } from './batcher.js';
import { commitOps, delOp, putOp } from './batcher.js';
import type { RootDb, Sublevel } from './db.js';

/** An event as stored and sent: plain JSON data with `seq`. */
export type StoredEvent = Record<string, unknown> & { seq: number };

/**
 * Why a range of seqs has no stored events: `restart` (numbers reserved by a run that crashed,
 * unused or used by events never stored — none of them was delivered or acknowledged), `lost`
 * (events whose store write failed; never delivered), `expired` (deleted by retention).
 */
export type GapReason = 'restart' | 'lost' | 'expired';

/** A range of seqs, both ends included, with no stored events. */
export interface SeqGap {
  readonly from: number;
  readonly to: number;
  readonly reason: GapReason;
}

/** Where tool events recorded with their tool-log entries are read (`ToolLogRepository`). */
export interface ToolEventSource {
  /** Tool events with `since < seq ≤ upTo`, in seq order, at most `limit`. */
  toolEventsAfter(since: number, limit: number, upTo?: number): Promise<StoredEvent[]>;
  /** The highest seq of such a tool event, 0 when there is none. */
  lastToolEventSeq(): Promise<number>;
}

const KEY_DIGITS = 16;
/** Meta key of the seq high-water mark. */
export const SEQ_RESERVED_KEY = 'events_seq_reserved';
/** Seqs reserved ahead of use. */
export const SEQ_RESERVATION = 100_000;

/** Deletes per `db.batch()` in {@link EventLogRepository.sweep}: each holds the event loop well under 1 ms. */
const SWEEP_CHUNK = 256;

function keyOf(seq: number): string {
  return String(seq).padStart(KEY_DIGITS, '0');
}

export class EventLogRepository {
  #reserved = 0;

  constructor(
    private readonly db: RootDb,
    private readonly events: Sublevel<StoredEvent>,
    private readonly writer: BatchWriter<BatchOp>,
    private readonly meta: Sublevel<unknown>,
    private readonly gaps: Sublevel<SeqGap>,
    /** Where the tool events are (the tool log): the recorder stores them there, not here. */
    private readonly toolEvents: ToolEventSource,
  ) {}

  /**
   * Reads the last stored seq and the high-water mark, records the hole a crash left (if any),
   * and reserves the next {@link SEQ_RESERVATION} numbers (written with fsync). Call once at
   * start-up, before any event is published. Resolves with the last seq to count from: the next
   * event gets that + 1, above every number the previous runs could have used.
   */
  async open(): Promise<{ lastSeq: number; gap: SeqGap | undefined }> {
    const last = await this.lastSeq();
    const stored = await this.meta.get(SEQ_RESERVED_KEY);
    const reserved = typeof stored === 'number' && Number.isSafeInteger(stored) && stored > 0 ? stored : 0;
    const start = Math.max(last, reserved);
    const gap: SeqGap | undefined = reserved > last ? { from: last + 1, to: reserved, reason: 'restart' } : undefined;
    this.#reserved = start + SEQ_RESERVATION;
    const ops: BatchOp[] = [putOp(this.meta, SEQ_RESERVED_KEY, this.#reserved)];
    if (gap !== undefined) ops.push(putOp(this.gaps, keyOf(gap.from), gap));
    await commitOps(this.db, ops, true);
    return { lastSeq: start, gap };
  }

  /** The op that extends the reservation when `seq` leaves less than half of it; else `undefined`. */
  reserveOp(seq: number): BatchOp | undefined {
    if (seq + SEQ_RESERVATION / 2 <= this.#reserved) return undefined;
    this.#reserved = seq + SEQ_RESERVATION;
    return putOp(this.meta, SEQ_RESERVED_KEY, this.#reserved);
  }

  /** The put of `event` under its seq (encoded now; throws for a value msgpackr cannot encode). */
  putOp(event: StoredEvent): BatchOp {
    return putOp(this.events, keyOf(event.seq), event);
  }

  /** The put of a gap record. */
  gapOp(gap: SeqGap): BatchOp {
    return putOp(this.gaps, keyOf(gap.from), gap);
  }

  /** Queues `event` for the next batch; resolves when committed. */
  append(event: StoredEvent): Promise<void> {
    return this.writer.write(this.putOp(event));
  }

  /**
   * After a clean stop (every event up to `lastSeq` settled): releases the unused reservation, so
   * the next run continues at `lastSeq + 1` without a hole. Written with fsync.
   */
  async release(lastSeq: number): Promise<void> {
    const last = Math.max(lastSeq, await this.lastSeq());
    await commitOps(this.db, [putOp(this.meta, SEQ_RESERVED_KEY, last)], true);
    this.#reserved = last;
  }

  /** Commits everything appended so far. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** The highest stored seq (tool events included), 0 when empty. */
  async lastSeq(): Promise<number> {
    const tool = await this.toolEvents.lastToolEventSeq();
    return Math.max(tool, await this.#lastOwnSeq());
  }

  async #lastOwnSeq(): Promise<number> {
    for await (const key of this.events.keys({ reverse: true, limit: 1 })) return Number(key);
    return 0;
  }

  /** The lowest seq stored in this log's own sublevel (not counting tool events), 0 when empty. */
  async firstSeq(): Promise<number> {
    for await (const key of this.events.keys({ limit: 1 })) return Number(key);
    return 0;
  }

  /**
   * Stored events with `since < seq ≤ upTo` (no upper bound by default), oldest first, at most
   * `limit`: this log's own and the tool events recorded with their tool-log entries, merged by seq.
   */
  async after(since: number, limit: number, upTo?: number): Promise<StoredEvent[]> {
    const own = this.events.values({ gt: keyOf(since), ...(upTo === undefined ? {} : { lte: keyOf(upTo) }), limit }).all();
    const [mine, tools] = await Promise.all([own, this.toolEvents.toolEventsAfter(since, limit, upTo)]);
    if (tools.length === 0) return mine;
    // both are in seq order and each holds its first `limit` after `since`: the merge's first `limit` are the log's
    const out: StoredEvent[] = [];
    let i = 0;
    let j = 0;
    while (out.length < limit && (i < mine.length || j < tools.length)) {
      const a = mine[i];
      const b = tools[j];
      if (b === undefined || (a !== undefined && a.seq < b.seq)) {
        out.push(a as StoredEvent);
        i++;
      } else {
        if (a !== undefined && a.seq === b.seq) i++; // cannot happen (one seq, one event); keep the record's
        out.push(b);
        j++;
      }
    }
    return out;
  }

  /** Gap records overlapping `from..to`, oldest first. */
  async gapsIn(from: number, to: number): Promise<SeqGap[]> {
    const out: SeqGap[] = [];
    for await (const gap of this.gaps.values({ lte: keyOf(to) })) if (gap.to >= from) out.push(gap);
    return out;
  }

  /**
   * Deletes this log's own events more than `maxEntries` seqs below the last (and gap records
   * below what is kept); returns how many events. Tool events recorded with their tool-log
   * entries are the tool log's: its retention deletes them.
   */
  async sweep(maxEntries: number): Promise<number> {
    const last = await this.lastSeq();
    const first = await this.firstSeq();
    if (last === 0 || first === 0 || last - first + 1 <= maxEntries) return 0;
    const cutoff = keyOf(last - maxEntries);
    let n = 0;
    let ops: BatchOp[] = [];
    for await (const key of this.events.keys({ lte: cutoff })) {
      ops.push(delOp(this.events, key));
      n++;
      if (ops.length >= SWEEP_CHUNK) {
        await commitOps(this.db, ops);
        ops = [];
      }
    }
    for await (const [key, gap] of this.gaps.iterator({ lte: cutoff })) if (gap.to <= last - maxEntries) ops.push(delOp(this.gaps, key));
    if (ops.length > 0) await commitOps(this.db, ops);
    return n;
  }
}
