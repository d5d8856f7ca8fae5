/**
 * The domain-event bus across nodes, on one JetStream stream (`<name>_events`, subjects
 * `<name>.events.<node_id>`): https://docs.nats.io/nats-concepts/jetstream/streams
 *
 * - {@link ClusterEventPublisher}: each node publishes its own stored events (the local recorder's
 *   stream, so nothing leaves a node before its own store has it), in seq order. The events one
 *   turn of the event loop offers (the recorder settles a stored batch at once), and whatever
 *   queued while earlier messages were being acknowledged, leave as ONE stream message: a JSON
 *   array of up to 256 events / 256 KiB. Up to 4 messages await their acknowledgement at once; an
 *   unacknowledged message is sent again unchanged with the same JetStream message id
 *   (`<node_id>:<first node seq>+<count>`), so a retry after a lost acknowledgement is stored once
 *   (the stream's duplicate window, 2 min: https://docs.nats.io/using-nats/developer/develop_jetstream/model_deep_dive#message-deduplication).
 *   While NATS is unreachable, events wait in a bounded buffer (`max_buffered_events`); when it is
 *   full, new events are dropped and one `EventsLost` event (node, node seq range, count) takes
 *   their place in the stream, and the lost count is a metric.
 * - {@link ClusterEventFeed}: a node reads the whole stream (an ordered consumer) and feeds
 *   `/api/ws/events` with it — only while that endpoint has a connection (a hold; see the class). In cluster mode the `i`-th event (from 0) of stream message `s` has
 *   seq `s × 1000 + i` ({@link eventSeq}): one order for all nodes, the same number on every node,
 *   increasing but NOT consecutive (a message of 3 events uses seqs `s000`–`s002`; the others
 *   are never issued). The publishing node's own numbering travels as `node_id` and `node_seq`
 *   (consecutive per node). `since` replays read the stream from the message holding `since + 1`,
 *   so every event after `since` is delivered once, in order, and a real hole (a message the
 *   stream removed, or could not decode) is named by an `events_skipped` warning; the seqs no
 *   message uses are not holes (the replay source says `sparseSeqs`).
 */
import { Subject, type Observable, type Subscription } from 'rxjs';
import { DeliverPolicy, type Consumer, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '../log/logger.js';
import type { FeedDemand, RecordedFeed, RecordedItem } from '../handlers/event-recorder.js';
import type { SeqGap, StoredEvent } from '../store/events.js';
import { toWire, type GatewayEvent } from '../streams/events.js';

/** What the publisher needs of the cluster link. */
export interface PublishTarget {
  readonly js: JetStreamClient;
  readonly eventSubject: string;
  readonly config: { readonly node_id: string };
}

interface Pending {
  /** JetStream message id part (deduplication): `<node_id>:<node_seq>` or `<node_id>:lost:<from>`. */
  readonly id: string;
  /** The event's JSON. */
  readonly data: string;
}

/** One stream message in the making: consecutive queued events, sealed (never regrouped) until acknowledged. */
interface Envelope {
  /** JetStream message id: the first event's id and the count, so a retry is stored once. */
  readonly id: string;
  /** JSON array of the events. */
  readonly data: string;
  /** Events it carries (a prefix of the queue after the ones before it). */
  readonly count: number;
}

/**
 * Most events in one stream message, and the stride of cluster event seqs: the `i`-th event of
 * stream message `s` has seq `s × EVENTS_PER_MESSAGE + i` (see {@link eventSeq}).
 */
export const EVENTS_PER_MESSAGE = 1000;
/** Events a publisher puts in one stream message (≤ {@link EVENTS_PER_MESSAGE}). */
const ENVELOPE_MAX_EVENTS = 256;
/** Bytes of events a publisher puts in one stream message (NATS' default `max_payload` is 1 MiB); a larger single event goes alone. */
const ENVELOPE_MAX_BYTES = 256 * 1024;
/** Stream messages whose acknowledgements are awaited at once. */
const PIPELINE = 4;
/** Acknowledgement wait per publish, ms. */
const PUBLISH_TIMEOUT_MS = 2_000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 2_000;

/** The cluster seq of the `index`-th event (from 0) of stream message `streamSeq`. */
export function eventSeq(streamSeq: number, index: number): number {
  return streamSeq * EVENTS_PER_MESSAGE + index;
}

/** The stream message a cluster seq belongs to. */
export function streamSeqOf(seq: number): number {
  return Math.floor(seq / EVENTS_PER_MESSAGE);
}

export class ClusterEventPublisher {
  #queue: Pending[] = [];
  #head = 0;
  /** Envelopes formed from the queue after `#head`, not yet acknowledged, in order. */
  #sealed: Envelope[] = [];
  /** Queue items covered by `#sealed`. */
  #sealedCount = 0;
  #pumping = false;
  #scheduled = false;
  #closed = false;
  /** Dropped since the last loss report was queued: node seq range and count. */
  #lost: { from: number; to: number; count: number; reason: 'buffer_full' | 'store_failed' } | undefined;
  #failing = false;
  #sub: Subscription | undefined;
  #idle: (() => void)[] = [];
  /** `,"node_id":"<id>","node_seq":` — appended to every event's JSON. */
  #nodeField: string | undefined;
  /** Events acknowledged by the stream. */
  published = 0;
  /** Stream messages acknowledged (each carries one or more events). */
  messages = 0;
  /** Events that never reached the stream (each reported in an `EventsLost` event). */
  lost = 0;

  constructor(
    private readonly target: PublishTarget,
    private readonly maxBuffered: number,
    private readonly log: Logger,
  ) {}

  /** Events waiting for the stream's acknowledgement. */
  get buffered(): number {
    return this.#queue.length - this.#head;
  }

  /** Publishes every stored event of `items$` (the local recorder's feed); local store failures are reported as lost. */
  attach(items$: Observable<RecordedItem>): void {
    this.#sub = items$.subscribe((item) => {
      if (item.kind === 'event') this.offer(item.event);
      else this.#drop(item.from, item.to, 'store_failed');
    });
  }

  /**
   * Queues one event for the stream (or counts it lost when the buffer is full). Events offered
   * in one turn of the event loop (the recorder settles a stored batch at once) leave together,
   * in one stream message.
   */
  offer(event: GatewayEvent): void {
    if (this.#closed) return;
    const node = this.target.config.node_id;
    // room for a pending loss report too
    if (this.buffered + (this.#lost !== undefined ? 1 : 0) >= this.maxBuffered) {
      this.#drop(event.seq, event.seq, 'buffer_full');
      return;
    }
    if (this.#lost !== undefined) {
      const l = this.#lost;
      this.#lost = undefined;
      const report = { event_type: 'EventsLost', node_id: node, node_seq: 0, from_node_seq: l.from, to_node_seq: l.to, count: l.count, reason: l.reason, timestamp: new Date().toISOString() };
      this.#queue.push({ id: `${node}:lost:${l.from}`, data: JSON.stringify(report) });
    }
    // the event's JSON with `node_id` and `node_seq` appended (later keys win, as a spread would;
    // an event always has fields, so the text ends with `…}` after at least one of them)
    const json = JSON.stringify(toWire(event));
    this.#nodeField ??= `,"node_id":${JSON.stringify(node)},"node_seq":`;
    this.#queue.push({ id: `${node}:${event.seq}`, data: `${json.slice(0, -1)}${this.#nodeField}${event.seq}}` });
    this.#schedule();
  }

  #drop(from: number, to: number, reason: 'buffer_full' | 'store_failed'): void {
    const count = to - from + 1;
    this.lost += count;
    if (this.#lost === undefined) {
      this.#lost = { from, to, count, reason };
      this.log.error('cluster event buffer: events not published to the stream (reported as EventsLost)', { from_node_seq: from, reason, max_buffered_events: this.maxBuffered });
    } else {
      this.#lost.from = Math.min(this.#lost.from, from);
      this.#lost.to = Math.max(this.#lost.to, to);
      this.#lost.count += count;
    }
  }

  /** Pumps once the current turn's offers are queued (a microtask), so they share a message. */
  #schedule(): void {
    if (this.#pumping || this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    this.#run()
      .catch((err: unknown) => this.log.error('cluster event publisher stopped', { error: err }))
      .finally(() => {
        this.#pumping = false;
        if (this.buffered > 0 && !this.#closed) this.#pump();
        else for (const fn of this.#idle.splice(0)) fn();
      });
  }

  /** Seals envelopes from the queued events not yet in one, until `PIPELINE` are formed. */
  #seal(): void {
    let at = this.#head + this.#sealedCount;
    while (this.#sealed.length < PIPELINE && at < this.#queue.length) {
      const first = this.#queue[at] as Pending;
      const parts: string[] = [first.data];
      let bytes = first.data.length;
      let n = 1;
      while (n < ENVELOPE_MAX_EVENTS && at + n < this.#queue.length) {
        const next = this.#queue[at + n] as Pending;
        if (bytes + next.data.length + 1 > ENVELOPE_MAX_BYTES) break;
        parts.push(next.data);
        bytes += next.data.length + 1;
        n++;
      }
      this.#sealed.push({ id: `${first.id}+${n}`, data: `[${parts.join(',')}]`, count: n });
      this.#sealedCount += n;
      at += n;
    }
  }

  async #run(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    const { js, eventSubject } = this.target;
    while (this.buffered > 0) {
      this.#seal();
      const batch = this.#sealed;
      const results = await Promise.allSettled(batch.map((e) => js.publish(eventSubject, e.data, { msgID: e.id, timeout: PUBLISH_TIMEOUT_MS })));
      // only an acknowledged prefix counts: a failed message and those after it are sent again (same ids)
      let ok = 0;
      let events = 0;
      while (ok < results.length && results[ok]?.status === 'fulfilled') {
        events += (batch[ok] as Envelope).count;
        ok++;
      }
      this.#sealed = batch.slice(ok);
      this.#sealedCount -= events;
      this.#head += events;
      this.published += events;
      this.messages += ok;
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      } else if (this.#head > 4096) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (ok === results.length) {
        if (this.#failing) this.log.info('cluster events reach the stream again', { buffered: this.buffered });
        this.#failing = false;
        backoff = BACKOFF_MIN_MS;
        continue;
      }
      const failed = results[ok];
      if (!this.#failing) {
        this.#failing = true;
        this.log.warn('cluster events cannot reach the stream: buffering and retrying', { buffered: this.buffered, error: failed?.status === 'rejected' ? failed.reason : undefined });
      }
      if (this.#closed) return;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    }
  }

  /** Resolves once every buffered event is acknowledged, or after `timeoutMs`; then stops publishing. */
  async close(timeoutMs: number): Promise<void> {
    this.#sub?.unsubscribe();
    if (this.buffered > 0 || this.#pumping || this.#scheduled) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.#idle.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (this.buffered > 0) this.log.warn('cluster events not published at shutdown', { count: this.buffered });
    this.#closed = true;
  }
}

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
