/**
 * The event recorder: stores every bus event before anything outside the process sees it.
 *
 * - Each event is handed over by {@link EventBus.publish} in seq order and written as one unit
 *   of the batch writer, plus the seq reservation when it needs extending: a tool invocation's
 *   event as ONE record with its tool-log entry (`ToolLogRepository.eventEntryOps`: one LevelDB
 *   put per call, two when its payloads pass 1 KiB), which the event log reads the event from;
 *   any other event in the event log.
 * - {@link EventRecorder.items$} emits, in seq order, each event once its batch is committed, and
 *   for events whose write failed a `missing` item naming the seq range (logged at `error`, and a
 *   gap record is written so a later replay names it too). The feeds (`/api/ws/events`,
 *   `/api/ws/live`) read this stream, so a subscriber never sees an event a restart forgets.
 * - `invokeTool` awaits its event's commit before the call is answered
 *   ({@link EventBus.publishRecorded}): an acknowledged call has a durable tool-log entry.
 */
import { Subject, filter, map, type Observable } from 'rxjs';
import type { Logger } from '../log/logger.js';
import type { BatchOp, BatchWriter } from '../store/batcher.js';
import type { EventLogRepository } from '../store/events.js';
import type { ToolEventRecord, ToolLogRepository } from '../store/tool-log.js';
import { TOOL_EVENT_PAYLOAD_FIELDS, toWire, type EventBus, type GatewayEvent } from '../streams/events.js';
import { toLogEntry } from './tool-log.js';

/** What the recorder emits: a stored event, or a range of seqs whose events were not stored. */
export type RecordedItem =
  | { readonly kind: 'event'; readonly event: GatewayEvent }
  | { readonly kind: 'missing'; readonly from: number; readonly to: number; readonly reason: 'lost' };

/** The stream of stored events the feeds read. */
export interface RecordedFeed {
  /** Stored events and missing ranges, in seq order, each once. Hot. */
  readonly items$: Observable<RecordedItem>;
  /** The highest seq whose fate is settled and emitted on `items$` (stored or missing). */
  readonly lastSettledSeq: number;
  /** The highest seq handed over for storing (settled or not): what was published so far. */
  readonly lastRecordedSeq: number;
  /**
   * Set when the feed reads its source only while someone needs it (the cluster's event stream):
   * a reader takes a hold for as long as it reads `items$`. Absent: the feed always emits.
   */
  readonly demand?: FeedDemand | undefined;
}

/** Reading on demand (see {@link RecordedFeed.demand}). */
export interface FeedDemand {
  /**
   * Takes a hold: the feed reads its source while at least one hold is taken. Returns the release
   * (calling it again does nothing). When the first hold of an idle feed is taken, the feed starts
   * at its source's current end: what was stored while nobody held it is not emitted on `items$`
   * (it stays readable by a replay), and `lastSettledSeq` moves there once {@link ready} resolves.
   */
  hold(): () => void;
  /**
   * While a held feed is starting, resolves once it reads and `lastSettledSeq` is current (it may
   * wait while the source is unreachable); `undefined` when it already reads or nothing holds it.
   */
  ready(): Promise<void> | undefined;
}

/**
 * Settled slots kept before the slot array is compacted while calls are still pending (with none
 * pending it is emptied at once).
 */
const SETTLED_KEPT_MAX = 64;

interface Slot {
  readonly event: GatewayEvent;
  /** 0 waiting, 1 stored, 2 failed. */
  state: 0 | 1 | 2;
  /** Told the outcome once the slot is settled (the bus's callback). */
  readonly settled: (error?: unknown) => void;
}

const ignoreOutcome = (): void => undefined;

export class EventRecorder implements RecordedFeed {
  readonly #items = new Subject<RecordedItem>();
  readonly #slots: Slot[] = [];
  #head = 0;
  #lastSettled: number;
  /** Failures not yet logged (one log line per run of failed events). */
  #failureLogged = false;

  readonly items$: Observable<RecordedItem> = this.#items.asObservable();

  /** Stored events only, in seq order (for feeds that have no use for missing ranges). */
  readonly events$: Observable<GatewayEvent> = this.#items.pipe(
    filter((i): i is Extract<RecordedItem, { kind: 'event' }> => i.kind === 'event'),
    map((i) => i.event),
  );

  /**
   * @param lastSeq the bus's starting seq (nothing at or below it is pending).
   */
  constructor(
    private readonly writer: BatchWriter<BatchOp>,
    private readonly eventLog: EventLogRepository,
    private readonly toolLog: ToolLogRepository,
    private readonly log: Logger,
    lastSeq: number,
  ) {
    this.#lastSettled = lastSeq;
  }

  get lastSettledSeq(): number {
    return this.#lastSettled;
  }

  get lastRecordedSeq(): number {
    const last = this.#slots[this.#slots.length - 1];
    return this.#head < this.#slots.length && last !== undefined ? last.event.seq : this.#lastSettled;
  }

  /** Installs this recorder on `bus`; returns the function that removes it. */
  attach(bus: EventBus): () => void {
    bus.setRecorder(this.#store);
    return () => bus.setRecorder(undefined);
  }

  /** Stores `event` (see the module comment); resolves when committed, rejects if not stored. */
  record(event: GatewayEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => this.#store(event, (err?: unknown) => (err === undefined ? resolve() : reject(err instanceof Error ? err : new Error(String(err))))));
  }

  /**
   * The bus's recorder: stores `event`, then settles its slot and calls `settled` (with the error
   * when it was not stored). One callback through the batch writer per event, no promise: this
   * runs for every tool call.
   */
  readonly #store = (event: GatewayEvent, settled: (error?: unknown) => void = ignoreOutcome): void => {
    const slot: Slot = { event, state: 0, settled };
    this.#slots.push(slot);
    let ops: BatchOp[];
    try {
      ops = this.#ops(event);
    } catch (err) {
      queueMicrotask(() => this.#written(slot, err instanceof Error ? err : new Error(String(err))));
      return;
    }
    this.writer.writeAllThen(ops, this.#written, slot);
  };

  /** The batch writer's callback for one event's write. */
  readonly #written = (slot: Slot, err: Error | undefined): void => {
    if (err === undefined) slot.state = 1;
    else {
      slot.state = 2;
      if (!this.#failureLogged) {
        this.#failureLogged = true;
        this.log.error('event not stored: it is not delivered to feeds, and its seq is reported missing', { seq: slot.event.seq, event_type: slot.event.event_type, error: err });
      }
    }
    try {
      this.#settle();
    } finally {
      slot.settled(err);
    }
  };

  /** Completes `items$`. */
  close(): void {
    this.#items.complete();
  }

  #ops(event: GatewayEvent): BatchOp[] {
    const ops =
      event.event_type === 'ToolInvocationCompleted' || event.event_type === 'ToolInvocationFailed'
        ? this.toolLog.eventEntryOps(toLogEntry(event), event as unknown as ToolEventRecord, TOOL_EVENT_PAYLOAD_FIELDS)
        : [this.eventLog.putOp(toWire(event))];
    const reserve = this.eventLog.reserveOp(event.seq);
    if (reserve !== undefined) ops.push(reserve);
    return ops;
  }

  /** Emits the settled slots at the head, in seq order; failed runs become one `missing` item each. */
  #settle(): void {
    while (this.#head < this.#slots.length) {
      const slot = this.#slots[this.#head];
      if (slot === undefined || slot.state === 0) break;
      if (slot.state === 1) {
        this.#head++;
        this.#lastSettled = slot.event.seq;
        this.#failureLogged = false;
        this.#items.next({ kind: 'event', event: slot.event });
        continue;
      }
      const from = slot.event.seq;
      let to = from;
      this.#head++;
      for (let next = this.#slots[this.#head]; next !== undefined && next.state === 2; next = this.#slots[this.#head]) {
        to = next.event.seq;
        this.#head++;
      }
      this.#lastSettled = to;
      // best effort: the store may be what failed
      this.writer.write(this.eventLog.gapOp({ from, to, reason: 'lost' })).catch(() => undefined);
      this.#items.next({ kind: 'missing', from, to, reason: 'lost' });
    }
    // settled slots are let go at once: an event held here for another ~1,000 calls outlives two
    // young-generation collections, is promoted, and every call's event then ends as old-space
    // garbage, collected by full mark-compacts (10+ ms pauses every few seconds at one connection)
    if (this.#head === this.#slots.length) {
      this.#slots.length = 0;
      this.#head = 0;
    } else if (this.#head >= SETTLED_KEPT_MAX && this.#head * 2 > this.#slots.length) {
      this.#slots.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
