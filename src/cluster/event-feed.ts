/**
 * The cluster-wide event feed of `/api/ws/events` (see `./event-stream.ts` for the stream, the
 * seq scheme and the publisher): every node's events in stream order, read on demand, and `since`
 * replays from the stream.
 */
import { Subject, type Observable } from 'rxjs';
import { DeliverPolicy, type Consumer, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '../log/logger.js';
import type { FeedDemand, RecordedFeed, RecordedItem } from '../handlers/event-recorder.js';
import type { SeqGap, StoredEvent } from '../store/events.js';
import type { GatewayEvent } from '../streams/events.js';
import { EVENTS_PER_MESSAGE, eventSeq, streamSeqOf } from './event-seq.js';

/** What the feed needs of the cluster link. */
export interface FeedSource {
  readonly js: JetStreamClient;
  readonly streamName: string;
  readonly jsm: { readonly streams: { info(name: string): Promise<{ state: { last_seq: number } }> } };
}

/** Replay fetch wait when fewer messages than asked exist, ms. */
const FETCH_EXPIRES_MS = 1_000;
/** Stream messages asked for per replay fetch. */
const FETCH_MESSAGES = 64;
/** Holes a feed remembers for {@link ClusterEventFeed.gapsIn}. */
const MAX_HOLES = 256;

/** The events of one stream message: a JSON array (a publisher's batch), or one event object. */
function eventsOf(body: unknown): unknown[] {
  return Array.isArray(body) ? body : [body];
}

function isEventObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One reading period of the feed: from the first hold to the stop after the last release. */
interface Run {
  stopped: boolean;
  /** The consumer reading now (`undefined` while it is being opened again). */
  messages: ConsumerMessages | undefined;
  /** Its server-side consumer (deleted at the stop, rather than left to expire). */
  consumer: Consumer | undefined;
  /** Resolved once the feed reads from a known position; settled on stop too. */
  readonly ready: Promise<void>;
  started: boolean;
}

/** How long an idle feed (no hold left) keeps reading before it stops, ms (a reconnecting dashboard does not restart it). */
const FEED_LINGER_MS = 1_000;

/**
 * The cluster-wide event feed: every node's events in stream order, and `since` replay from the
 * stream. Event seqs are `stream seq × EVENTS_PER_MESSAGE + index in the message`: increasing,
 * the same on every node, but not consecutive (a message of 3 events uses 3 of its 1000 seqs), so
 * the feed's replay source says `sparseSeqs` and names real holes itself ({@link gapsIn}).
 *
 * Started with `onDemand`, the feed reads the stream only while a reader holds it
 * ({@link FeedDemand}: `/api/ws/events` takes a hold per connection): the first hold starts an
 * ordered consumer at the stream's current end, and the last release stops it after
 * `FEED_LINGER_MS`. A node nobody watches then neither receives nor decodes the other nodes'
 * events; replays (`after`) read the stream directly and are unaffected.
 */
export class ClusterEventFeed implements RecordedFeed, FeedDemand {
  readonly #items = new Subject<RecordedItem>();
  readonly items$: Observable<RecordedItem> = this.#items.asObservable();
  /** Seqs are not consecutive: only the ranges {@link gapsIn} names are holes. */
  readonly sparseSeqs = true;
  readonly demand: FeedDemand | undefined;
  /** The last stream message delivered. */
  #lastMessage: number;
  /** The last seq settled (an event delivered, or a seq of a delivered message). */
  #last: number;
  /** Holes seen (removed or undecodable messages), oldest first, at most `MAX_HOLES`. */
  #holes: SeqGap[] = [];
  #closed = false;
  #holds = 0;
  #run: Run | undefined;
  #stopTimer: ReturnType<typeof setTimeout> | undefined;
  /** Stream messages this feed received (each read and decoded). */
  messagesRead = 0;
  /** Times the feed started reading. */
  starts = 0;

  private constructor(
    private readonly source: FeedSource,
    private readonly log: Logger,
    lastMessage: number,
    onDemand: boolean,
    private readonly lingerMs: number,
  ) {
    this.#lastMessage = lastMessage;
    this.#last = eventSeq(lastMessage + 1, 0) - 1;
    this.demand = onDemand ? this : undefined;
  }

  /**
   * Opens the feed at the stream's current end. Without `onDemand` it reads from now on until
   * closed; with it, only while held ({@link hold}).
   */
  static async start(source: FeedSource, log: Logger, opts: { readonly onDemand?: boolean; readonly lingerMs?: number } = {}): Promise<ClusterEventFeed> {
    const info = await source.jsm.streams.info(source.streamName);
    const onDemand = opts.onDemand === true;
    const feed = new ClusterEventFeed(source, log, info.state.last_seq, onDemand, opts.lingerMs ?? FEED_LINGER_MS);
    if (!onDemand) {
      feed.hold();
      await feed.ready();
    }
    return feed;
  }

  /** Every seq of the last message delivered counts as settled (the unused ones were never issued). */
  get lastSettledSeq(): number {
    return this.#last;
  }

  get lastRecordedSeq(): number {
    return this.#last;
  }

  /** True while a consumer reads the stream for this feed. */
  get reading(): boolean {
    return this.#run?.started === true && !this.#run.stopped;
  }

  /** Holds taken and not released. */
  get holds(): number {
    return this.#holds;
  }

  hold(): () => void {
    this.#holds++;
    if (this.#stopTimer !== undefined) {
      clearTimeout(this.#stopTimer);
      this.#stopTimer = undefined;
    }
    if (this.#run === undefined && !this.#closed) this.#run = this.#begin();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      if (this.#holds > 0 || this.#closed) return;
      this.#stopTimer = setTimeout(() => {
        this.#stopTimer = undefined;
        if (this.#holds === 0) void this.#stop();
      }, this.lingerMs);
      this.#stopTimer.unref();
    };
  }

  ready(): Promise<void> | undefined {
    const run = this.#run;
    return run === undefined || run.started ? undefined : run.ready;
  }

  /** Ends the reading period: its consumer is closed (ordered consumers are ephemeral: the server drops it). */
  #stop(): Promise<void> {
    const run = this.#run;
    if (run === undefined) return Promise.resolve();
    run.stopped = true;
    this.#run = undefined;
    const { messages, consumer } = run;
    run.messages = undefined;
    return (messages?.close() ?? Promise.resolve())
      .then(() => consumer?.delete())
      .then(
        () => undefined,
        () => undefined,
      );
  }

  async #open(run: Run): Promise<ConsumerMessages> {
    const old = run.consumer;
    if (old !== undefined) void old.delete().catch(() => undefined);
    const consumer = await this.source.js.consumers.get(this.source.streamName, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#lastMessage + 1 });
    run.consumer = consumer;
    return consumer.consume({ max_messages: 512 });
  }

  /**
   * A new reading period: finds the stream's end (nobody read the stream meanwhile, so the feed
   * moves there without emitting what it passes: a replay still reads it), opens an ordered
   * consumer after it, then reads for as long as the period lasts: when the consumer ends or
   * fails, or {@link resume} is called (NATS came back), a new one starts after the last message
   * delivered, so nothing is skipped or delivered twice while the feed is held.
   */
  #begin(): Run {
    let resolveReady: () => void = () => undefined;
    const run: Run = { stopped: false, messages: undefined, consumer: undefined, started: false, ready: new Promise<void>((r) => (resolveReady = r)) };
    const settle = (): void => {
      run.started = !run.stopped;
      resolveReady();
    };
    void (async () => {
      let backoff = 100;
      let failing = false;
      while (!run.stopped && !this.#closed) {
        try {
          if (!run.started) {
            const info = await this.source.jsm.streams.info(this.source.streamName);
            if (run.stopped) break;
            const end = info.state.last_seq;
            if (end > this.#lastMessage) {
              this.#lastMessage = end;
              this.#last = eventSeq(end + 1, 0) - 1;
            }
          }
          const messages = run.messages ?? (await this.#open(run));
          if (run.stopped) {
            await messages.close().catch(() => undefined);
            await run.consumer?.delete().catch(() => undefined);
            break;
          }
          run.messages = messages;
          if (!run.started) {
            this.starts++;
            settle();
          }
          failing = false;
          backoff = 100;
          for await (const m of messages) {
            if (run.stopped) break;
            this.#deliver(m.seq, () => m.json<unknown>());
          }
          if (run.messages === messages) run.messages = undefined;
        } catch (err) {
          if (!failing) this.log.warn('cluster event feed: cannot read the stream, retrying', { error: err });
          failing = true;
          run.messages = undefined;
          await new Promise((r) => setTimeout(r, backoff));
          backoff = Math.min(backoff * 2, 2_000);
        }
      }
      settle();
    })().catch((err: unknown) => {
      this.log.error('cluster event feed stopped', { error: err });
      settle();
    });
    return run;
  }

  #hole(from: number, to: number, reason: SeqGap['reason']): void {
    const holes = this.#holes;
    let i = holes.length;
    while (i > 0 && (holes[i - 1] as SeqGap).from > from) i--;
    const prev = holes[i - 1];
    const next = holes[i];
    if ((prev !== undefined && prev.to >= from) || (next !== undefined && next.from <= to)) return;
    holes.splice(i, 0, { from, to, reason });
    if (holes.length > MAX_HOLES) holes.shift();
  }

  #deliver(message: number, body: () => unknown): void {
    this.messagesRead++;
    if (message <= this.#lastMessage) return;
    if (message > this.#lastMessage + 1) {
      const from = eventSeq(this.#lastMessage + 1, 0);
      this.#hole(from, eventSeq(message, 0) - 1, 'lost');
      this.#last = eventSeq(message, 0) - 1;
      this.#items.next({ kind: 'missing', from, to: this.#last, reason: 'lost' });
    }
    this.#lastMessage = message;
    let events: unknown[];
    try {
      events = eventsOf(body());
    } catch {
      events = [];
    }
    const end = eventSeq(message + 1, 0) - 1;
    if (events.length === 0) {
      this.#hole(eventSeq(message, 0), end, 'lost');
      this.#last = end;
      this.#items.next({ kind: 'missing', from: eventSeq(message, 0), to: end, reason: 'lost' });
      return;
    }
    const n = Math.min(events.length, EVENTS_PER_MESSAGE);
    for (let i = 0; i < n; i++) {
      const seq = eventSeq(message, i);
      this.#last = seq;
      const body = events[i];
      if (!isEventObject(body)) {
        this.#hole(seq, seq, 'lost');
        this.#items.next({ kind: 'missing', from: seq, to: seq, reason: 'lost' });
        continue;
      }
      // freshly parsed, owned here: numbered in place rather than copied
      body['seq'] = seq;
      this.#items.next({ kind: 'event', event: body as unknown as GatewayEvent });
    }
    this.#last = end;
  }

  /** Starts a new consumer after the last message delivered (call when NATS came back); nothing while idle. */
  resume(): void {
    const run = this.#run;
    if (run === undefined || !run.started) return;
    const messages = run.messages;
    run.messages = undefined;
    void messages?.close().catch(() => undefined);
  }

  /**
   * Stored events with `since < seq ≤ upTo`, at most `limit`, in seq order (the contract of the
   * local event log's `after`): read from the stream by a short-lived ordered consumer. Messages
   * the stream no longer has, or cannot be decoded, are remembered for {@link gapsIn}.
   */
  async after(since: number, limit: number, upTo = Number.MAX_SAFE_INTEGER): Promise<StoredEvent[]> {
    const lastMessage = streamSeqOf(upTo);
    let at = Math.max(1, streamSeqOf(since + 1));
    if (limit <= 0 || at > lastMessage) return [];
    const consumer = await this.source.js.consumers.get(this.source.streamName, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: at });
    const out: StoredEvent[] = [];
    let done = false;
    while (!done && at <= lastMessage) {
      const messages = await consumer.fetch({ max_messages: Math.min(FETCH_MESSAGES, lastMessage - at + 1), expires: FETCH_EXPIRES_MS });
      let got = 0;
      for await (const m of messages) {
        got++;
        if (m.seq > lastMessage) {
          done = true;
          break;
        }
        // the stream removes its oldest messages (limits): a jump is what it no longer has
        if (m.seq > at) this.#hole(eventSeq(at, 0), eventSeq(m.seq, 0) - 1, 'expired');
        at = m.seq + 1;
        let events: unknown[];
        try {
          events = eventsOf(m.json<unknown>());
        } catch {
          events = [];
        }
        if (events.length === 0) this.#hole(eventSeq(m.seq, 0), eventSeq(m.seq + 1, 0) - 1, 'lost');
        const n = Math.min(events.length, EVENTS_PER_MESSAGE);
        for (let i = 0; i < n && !done; i++) {
          const seq = eventSeq(m.seq, i);
          if (seq <= since) continue;
          if (seq > upTo) done = true;
          else {
            const body = events[i];
            if (isEventObject(body)) out.push({ ...body, seq } as StoredEvent);
            else this.#hole(seq, seq, 'lost');
            if (out.length >= limit) done = true;
          }
        }
        if (done || m.seq >= lastMessage) {
          done = true;
          break;
        }
      }
      await messages.close().catch(() => undefined);
      if (got === 0 && !done) {
        // nothing more to read up to `upTo`: the stream removed it since
        this.#hole(eventSeq(at, 0), upTo, 'expired');
        break;
      }
    }
    // rather than left on the server until its inactivity threshold
    void consumer.delete().catch(() => undefined);
    return out;
  }

  /** The holes this feed has seen in `from..to` (see {@link after}); the seqs no message uses are no holes. */
  gapsIn(from: number, to: number): Promise<SeqGap[]> {
    const out: SeqGap[] = [];
    for (const h of this.#holes) {
      if (h.to < from || h.from > to) continue;
      out.push({ from: Math.max(h.from, from), to: Math.min(h.to, to), reason: h.reason });
    }
    return Promise.resolve(out);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#stopTimer !== undefined) clearTimeout(this.#stopTimer);
    await this.#stop();
    this.#items.complete();
  }
}
