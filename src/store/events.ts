/**
 * The durable event log: every domain event, keyed by its gap-free `seq`, written through the
 * batching writer. It lets `/api/ws/events` subscribers resume with `since` (also across a
 * restart: the bus continues from {@link EventLogRepository.lastSeq}). Retention: at most
 * `maxEntries` events, oldest deleted first by {@link EventLogRepository.sweep}.
 */
import type { BatchWriter, BatchOp } from './batcher.js';
import { commitOps, delOp, putOp } from './batcher.js';
import type { RootDb, Sublevel } from './db.js';

/** An event as stored and sent: plain JSON data with `seq`. */
export type StoredEvent = Record<string, unknown> & { seq: number };

const KEY_DIGITS = 16;

function keyOf(seq: number): string {
  return String(seq).padStart(KEY_DIGITS, '0');
}

export class EventLogRepository {
  constructor(
    private readonly db: RootDb,
    private readonly events: Sublevel<StoredEvent>,
    private readonly writer: BatchWriter<BatchOp>,
  ) {}

  /** Queues `event` for the next batch; resolves when committed. */
  append(event: StoredEvent): Promise<void> {
    return this.writer.write(putOp(this.events, keyOf(event.seq), event));
  }

  /** Commits everything appended so far. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** The highest stored seq, 0 when empty. */
  async lastSeq(): Promise<number> {
    for await (const key of this.events.keys({ reverse: true, limit: 1 })) return Number(key);
    return 0;
  }

  /** The lowest stored seq, 0 when empty. */
  async firstSeq(): Promise<number> {
    for await (const key of this.events.keys({ limit: 1 })) return Number(key);
    return 0;
  }

  /** Stored events with `seq > since`, oldest first, at most `limit`. */
  async after(since: number, limit: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for await (const value of this.events.values({ gt: keyOf(since), limit })) out.push(value);
    return out;
  }

  /** Deletes the oldest events beyond `maxEntries`; returns how many. */
  async sweep(maxEntries: number): Promise<number> {
    const last = await this.lastSeq();
    const first = await this.firstSeq();
    if (last === 0 || last - first + 1 <= maxEntries) return 0;
    const cutoff = keyOf(last - maxEntries);
    let n = 0;
    let ops: BatchOp[] = [];
    for await (const key of this.events.keys({ lte: cutoff })) {
      ops.push(delOp(this.events, key));
      n++;
      if (ops.length >= 1000) {
        await commitOps(this.db, ops);
        ops = [];
      }
    }
    if (ops.length > 0) await commitOps(this.db, ops);
    return n;
  }
}
