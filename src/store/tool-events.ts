/**
 * The tool events in the tool log (schema version 3 on): the event recorder stores each
 * `ToolInvocationCompleted`/`ToolInvocationFailed` event inside its tool-log record, under a
 * `toolEventKey` (`<ms>-~<seq>`), and the event log reads the events back from here in seq order.
 *
 * {@link ToolEvents.file} gives a tool event's key: filed at the entry's timestamp, or at the ms of
 * the newest key already made (or found at start-up, {@link ToolEvents.init}) if the clock went
 * back, so tool-event keys sort in seq order among themselves, and above every key that existed at
 * start-up. {@link ToolEvents.after} finds the first tool event after a seq by a binary search over
 * the keys' ms (the largest ms whose first tool-event key has seq ≤ `since`: a few keys per probe),
 * or after the last key an earlier call returned (the next page of a catch-up), then reads forward.
 */
import type { Sublevel } from './db.js';
import { eventOfRecord, type ToolEventRecord } from './tool-log-record.js';
import { MAX_KEY_MS, keyMs, msPrefix, seqOfToolEventKey, toolEventKey } from './time-key.js';

/** Keys or records per `nextv` when looking for tool events. */
const EVENT_CHUNK = 256;
/** Runs of returned tool events remembered for the next pages of catch-ups (one per reader, a few readers). */
const RECENT_RUNS = 8;
/** Keys per `nextv` when reading a log of other entries for the first tool event. */
const SCAN_CHUNK = 1000;
/** classic-level iterator options (see `tool-log.ts`): 512 KiB per `nextv`. */
const SCAN_OPTIONS = { highWaterMarkBytes: 512 * 1024 };
/** A read gives the event loop back after this much work in one go, ms. */
const SLICE_MS = 0.5;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class ToolEvents {
  readonly #records: Sublevel<Uint8Array>;
  /** The ms the newest tool event record is filed under: tool event keys never go back in time. */
  #filedMs = 0;
  /** A lower bound of the ms of every tool event key (found on the first search; they never go below it). */
  #eventLowMs: number | undefined;
  /** {@link init} ran. */
  #initialised = false;
  /** The ms the first tool-event key this process made is filed at. */
  #firstBuiltMs: number | undefined;
  /** The ms of the first tool-event key among the keys up to {@link #initLastKey}: `null` none, `undefined` not read yet. */
  #firstMsBeforeInit: number | null | undefined;
  /**
   * The seqs and keys the last few {@link after} calls returned (each a run with no tool
   * event missing between its first and last): a later call whose `since` is at or after a run's
   * first seq (the next page of a catch-up) starts after the run's last key ≤ `since`, no search.
   */
  #recent: { readonly seqs: number[]; readonly keys: string[]; readonly coveredTo: number }[] = [];
  /** The highest seq given to {@link file} in this process. */
  #lastBuiltSeq = 0;
  /** The newest key when {@link init} ran: every tool-event key made since sorts above it. */
  #initLastKey: string | undefined;
  /** The last tool-event seq among the keys up to {@link #initLastKey} (found once). */
  #lastSeqBeforeInit: number | undefined;

  constructor(records: Sublevel<Uint8Array>) {
    this.#records = records;
  }

  /** Reads where the log ends (the newest key). Call once, before the first {@link file}. */
  async init(): Promise<void> {
    this.#initialised = true;
    for await (const key of this.#records.keys({ reverse: true, limit: 1 })) {
      this.#initLastKey = key;
      const ms = keyMs(key);
      if (Number.isFinite(ms) && ms > this.#filedMs) this.#filedMs = ms;
    }
  }

  /**
   * The key of the record of tool event `seq` stamped `ms` (see the module comment). Call in seq
   * order. Throws `RangeError` for a bad ms or seq.
   */
  file(ms: number, seq: number): string {
    const filed = ms > this.#filedMs ? ms : this.#filedMs;
    const key = toolEventKey(filed, seq);
    this.#filedMs = filed;
    this.#firstBuiltMs ??= filed;
    if (seq > this.#lastBuiltSeq) this.#lastBuiltSeq = seq;
    return key;
  }

  /**
   * The tool events recorded with their entries with `since < seq ≤ upTo`,
   * in seq order, at most `limit`. Finds the first by a binary search over the keys' ms (tool event
   * keys are in seq order), then reads forward. Events whose entry retention deleted are not there.
   */
  async after(since: number, limit: number, upTo = Number.MAX_SAFE_INTEGER): Promise<ToolEventRecord[]> {
    const out: ToolEventRecord[] = [];
    if (limit <= 0 || upTo <= since) return out;
    const range = this.#resumeAfter(since) ?? (await this.#searchStart(since));
    if (range === undefined) return out;
    const seqs: number[] = [];
    const keys: string[] = [];
    let full = false;
    const it = this.#records.iterator({ ...range, ...SCAN_OPTIONS });
    try {
      let slice = performance.now();
      scan: for (let chunk = await it.nextv(Math.min(limit, EVENT_CHUNK)); chunk.length > 0; chunk = await it.nextv(EVENT_CHUNK)) {
        for (const [key, value] of chunk) {
          const seq = seqOfToolEventKey(key);
          if (seq === undefined || seq <= since) continue;
          if (seq > upTo) break scan;
          const event = eventOfRecord(value);
          if (event === undefined) continue;
          out.push(event);
          seqs.push(seq);
          keys.push(key);
          if (out.length >= limit) {
            full = true;
            break scan;
          }
          if (performance.now() - slice > SLICE_MS) {
            await yieldToLoop();
            slice = performance.now();
          }
        }
      }
    } finally {
      await it.close();
    }
    if (seqs.length > 0) {
      // a run that stopped short of `limit` saw every tool event up to `upTo` (or all stored then)
      this.#recent.push({ seqs, keys, coveredTo: full ? (seqs[seqs.length - 1] as number) : Math.min(upTo, Math.max(this.#lastBuiltSeq, seqs[seqs.length - 1] as number)) });
      if (this.#recent.length > RECENT_RUNS) this.#recent.shift();
    }
    return out;
  }

  /** Where to read from for tool events after `since`, from a recent run (see {@link #recent}); `undefined` when none covers it. */
  #resumeAfter(since: number): { gt: string } | undefined {
    for (let r = this.#recent.length - 1; r >= 0; r--) {
      const { seqs, keys, coveredTo } = this.#recent[r] as { seqs: number[]; keys: string[]; coveredTo: number };
      if (since < (seqs[0] as number) || since > coveredTo) continue;
      // the last seq of the run ≤ since (binary search; seqs increase)
      let lo = 0;
      let hi = seqs.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if ((seqs[mid] as number) <= since) lo = mid;
        else hi = mid - 1;
      }
      return { gt: keys[lo] as string };
    }
    return undefined;
  }

  /**
   * The highest seq of a tool event recorded with its entry, 0 when there is none. Reads back from
   * the newest key to the first tool-event key; keys older than {@link init} are read once.
   */
  async lastSeq(): Promise<number> {
    const since = this.#initLastKey;
    const recent = await this.#lastToolSeqIn(since === undefined ? {} : { gt: since });
    if (recent > 0 || since === undefined) return recent;
    this.#lastSeqBeforeInit ??= await this.#lastToolSeqIn({ lte: since });
    return this.#lastSeqBeforeInit;
  }

  async #lastToolSeqIn(range: { gt?: string; lte?: string }): Promise<number> {
    const it = this.#records.keys({ ...range, reverse: true });
    try {
      for (let n = 4, chunk = await it.nextv(n); chunk.length > 0; n = Math.min(n * 4, EVENT_CHUNK), chunk = await it.nextv(n)) {
        for (const key of chunk) {
          const seq = seqOfToolEventKey(key);
          if (seq !== undefined) return seq;
        }
      }
    } finally {
      await it.close();
    }
    return 0;
  }

  /** The seq of the first tool event key at or after `ms`, `Infinity` when there is none. */
  async #firstEventSeqFrom(ms: number): Promise<{ seq: number; ms: number }> {
    const it = this.#records.keys({ gte: msPrefix(ms) });
    try {
      // usually the first key is one: read a few, then more
      for (let n = 4, chunk = await it.nextv(n); chunk.length > 0; n = Math.min(n * 4, EVENT_CHUNK), chunk = await it.nextv(n)) {
        for (const key of chunk) {
          const seq = seqOfToolEventKey(key);
          if (seq !== undefined) return { seq, ms: keyMs(key) };
        }
      }
    } finally {
      await it.close();
    }
    return { seq: Number.POSITIVE_INFINITY, ms: Number.POSITIVE_INFINITY };
  }

  /**
   * The ms of the first tool-event key (a lower bound is enough). Keys up to {@link #initLastKey}
   * (written before this process, e.g. a log of entries from before tool events were stored in it)
   * are read once; every tool-event key this process makes sorts above them, the first at
   * {@link #firstBuiltMs}. Without {@link init}, every call reads the log until it finds one.
   */
  async #findFirstEventMs(): Promise<number | undefined> {
    if (!this.#initialised) return this.#firstEventMsIn({});
    const initKey = this.#initLastKey;
    if (initKey !== undefined) {
      this.#firstMsBeforeInit ??= (await this.#firstEventMsIn({ lte: initKey })) ?? null;
      if (this.#firstMsBeforeInit !== null) return this.#firstMsBeforeInit;
    }
    return this.#firstBuiltMs;
  }

  async #firstEventMsIn(range: { gt?: string; lte?: string }): Promise<number | undefined> {
    const it = this.#records.keys(range);
    try {
      for (let n = 4, chunk = await it.nextv(n); chunk.length > 0; n = Math.min(n * 4, SCAN_CHUNK), chunk = await it.nextv(n)) {
        for (const key of chunk) if (seqOfToolEventKey(key) !== undefined) return keyMs(key);
      }
    } finally {
      await it.close();
    }
    return undefined;
  }

  /**
   * An ms from which reading forward finds every tool event with seq > `since`, skipping only
   * those filed in that same ms: the largest ms whose first tool event has seq ≤ `since` (tool event
   * keys are in seq order, so every later ms holds only higher seqs); `undefined` when no tool event
   * has a seq above `since`.
   */
  async #searchStart(since: number): Promise<{ gte: string } | undefined> {
    this.#eventLowMs ??= await this.#findFirstEventMs();
    if (this.#eventLowMs === undefined) return undefined;
    let lo = this.#eventLowMs;
    const low = await this.#firstEventSeqFrom(lo);
    if (low.seq > since) return low.seq === Number.POSITIVE_INFINITY ? undefined : { gte: msPrefix(lo) };
    // invariant: the first tool event at or after `lo` has seq ≤ since; at or after `hi`, > since (or none)
    let hi = Math.min(MAX_KEY_MS, Math.max(lo, this.#filedMs, await this.#lastKeyMs()) + 1);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const at = await this.#firstEventSeqFrom(mid);
      if (at.seq <= since) lo = Math.max(mid, at.ms);
      else hi = mid;
    }
    return { gte: msPrefix(lo) };
  }

  async #lastKeyMs(): Promise<number> {
    for await (const key of this.#records.keys({ reverse: true, limit: 1 })) return keyMs(key);
    return 0;
  }
}
