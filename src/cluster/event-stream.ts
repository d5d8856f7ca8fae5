/**
 * The domain-event bus across nodes, on one JetStream stream (`<name>_events`, subjects
 * `<name>.events.<node_id>`): https://docs.nats.io/nats-concepts/jetstream/streams
 *
 * - {@link ClusterEventPublisher}: each node publishes its own stored events (the local recorder's
 *   stream, so nothing leaves a node before its own store has it), in seq order, with the JetStream
 *   message id `<node_id>:<seq>` so a retry after a lost acknowledgement is stored once (the
 *   stream's duplicate window, 2 min: https://docs.nats.io/using-nats/developer/develop_jetstream/model_deep_dive#message-deduplication).
 *   While NATS is unreachable, events wait in a bounded buffer (`max_buffered_events`); when it is
 *   full, new events are dropped and one `EventsLost` event (node, node seq range, count) takes
 *   their place in the stream, and the lost count is a metric.
 * - {@link ClusterEventFeed}: every node reads the whole stream (an ordered consumer) and feeds
 *   `/api/ws/events` with it. In cluster mode an event's `seq` is its stream sequence — one order
 *   for all nodes, consecutive — and the publishing node's own numbering travels as `node_id` and
 *   `node_seq`. `since` replays read the stream, so the no-gap/no-duplicate promise of the
 *   single-process feed holds across nodes.
 */
import { Subject, type Observable, type Subscription } from 'rxjs';
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '../log/logger.js';
import type { RecordedFeed, RecordedItem } from '../handlers/event-recorder.js';
import type { SeqGap, StoredEvent } from '../store/events.js';
import { toWire, type GatewayEvent } from '../streams/events.js';

/** What the publisher needs of the cluster link. */
export interface PublishTarget {
  readonly js: JetStreamClient;
  readonly eventSubject: string;
  readonly config: { readonly node_id: string };
}

interface Pending {
  /** JetStream message id (deduplication). */
  readonly id: string;
  readonly data: string;
}

/** Events published per round trip batch. */
const BATCH = 64;
/** Acknowledgement wait per publish, ms. */
const PUBLISH_TIMEOUT_MS = 2_000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 2_000;

export class ClusterEventPublisher {
  #queue: Pending[] = [];
  #head = 0;
  #pumping = false;
  #closed = false;
  /** Dropped since the last loss report was queued: node seq range and count. */
  #lost: { from: number; to: number; count: number; reason: 'buffer_full' | 'store_failed' } | undefined;
  #failing = false;
  #sub: Subscription | undefined;
  #idle: (() => void)[] = [];
  /** Events acknowledged by the stream. */
  published = 0;
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

  /** Queues one event for the stream (or counts it lost when the buffer is full). */
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
    const wire = toWire(event);
    this.#queue.push({ id: `${node}:${event.seq}`, data: JSON.stringify({ ...wire, node_id: node, node_seq: wire.seq }) });
    this.#pump();
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

  async #run(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    const { js, eventSubject } = this.target;
    while (this.buffered > 0) {
      const batch = this.#queue.slice(this.#head, this.#head + BATCH);
      const results = await Promise.allSettled(batch.map((p) => js.publish(eventSubject, p.data, { msgID: p.id, timeout: PUBLISH_TIMEOUT_MS })));
      let ok = 0;
      while (ok < results.length && results[ok]?.status === 'fulfilled') ok++;
      this.#head += ok;
      this.published += ok;
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
    if (this.buffered > 0 || this.#pumping) {
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

/** The cluster-wide event feed: every node's events in stream order, and `since` replay from the stream. */
export class ClusterEventFeed implements RecordedFeed {
  readonly #items = new Subject<RecordedItem>();
  readonly items$: Observable<RecordedItem> = this.#items.asObservable();
  #last: number;
  #messages: ConsumerMessages | undefined;
  #closed = false;

  private constructor(
    private readonly source: FeedSource,
    private readonly log: Logger,
    last: number,
  ) {
    this.#last = last;
  }

  /** Starts reading the stream after its current last message. */
  static async start(source: FeedSource, log: Logger): Promise<ClusterEventFeed> {
    const info = await source.jsm.streams.info(source.streamName);
    const feed = new ClusterEventFeed(source, log, info.state.last_seq);
    await feed.#consume();
    return feed;
  }

  get lastSettledSeq(): number {
    return this.#last;
  }

  get lastRecordedSeq(): number {
    return this.#last;
  }

  /**
   * Reads the stream from `#last + 1` with an ordered consumer, for as long as the feed is open:
   * when the consumer ends or fails, or {@link resume} is called (NATS came back), a new one
   * starts after the last seq delivered, so nothing is skipped or delivered twice.
   */
  async #consume(): Promise<void> {
    const open = async (): Promise<ConsumerMessages> => {
      const consumer = await this.source.js.consumers.get(this.source.streamName, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#last + 1 });
      return consumer.consume({ max_messages: 512 });
    };
    this.#messages = await open();
    void (async () => {
      let backoff = 100;
      while (!this.#closed) {
        const messages = this.#messages;
        if (messages === undefined) {
          try {
            this.#messages = await open();
            backoff = 100;
          } catch (err) {
            this.log.debug('cluster event feed: consumer not ready, retrying', { error: err });
            await new Promise((r) => setTimeout(r, backoff));
            backoff = Math.min(backoff * 2, 2_000);
          }
          continue;
        }
        try {
          for await (const m of messages) this.#deliver(m.seq, () => m.json<Record<string, unknown>>());
        } catch (err) {
          this.log.warn('cluster event feed: consumer failed, reopening', { error: err });
        }
        if (this.#messages === messages) this.#messages = undefined;
      }
    })().catch((err: unknown) => this.log.error('cluster event feed stopped', { error: err }));
  }

  #deliver(seq: number, body: () => Record<string, unknown>): void {
    if (seq <= this.#last) return;
    if (seq > this.#last + 1) this.#items.next({ kind: 'missing', from: this.#last + 1, to: seq - 1, reason: 'lost' });
    this.#last = seq;
    let event: GatewayEvent;
    try {
      event = { ...body(), seq } as unknown as GatewayEvent;
    } catch {
      this.#items.next({ kind: 'missing', from: seq, to: seq, reason: 'lost' });
      return;
    }
    this.#items.next({ kind: 'event', event });
  }

  /** Starts a new consumer after the last seq delivered (call when NATS came back). */
  resume(): void {
    const messages = this.#messages;
    this.#messages = undefined;
    void messages?.close().catch(() => undefined);
  }

  /**
   * Stored events with `since < seq ≤ upTo`, at most `limit`, in seq order (the contract of the
   * local event log's `after`): read from the stream by a short-lived ordered consumer.
   */
  async after(since: number, limit: number, upTo = Number.MAX_SAFE_INTEGER): Promise<StoredEvent[]> {
    const want = Math.min(limit, upTo - since);
    if (want <= 0) return [];
    const consumer = await this.source.js.consumers.get(this.source.streamName, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: since + 1 });
    const out: StoredEvent[] = [];
    const messages = await consumer.fetch({ max_messages: want, expires: FETCH_EXPIRES_MS });
    for await (const m of messages) {
      if (m.seq > upTo) break;
      try {
        out.push({ ...m.json<Record<string, unknown>>(), seq: m.seq });
      } catch {
        // undecodable: the replay names it as a hole
      }
      if (out.length >= want || m.seq >= upTo) break;
    }
    await messages.close().catch(() => undefined);
    return out;
  }

  /** The stream keeps no gap records: a hole in stream seqs was removed by the stream's limits (`expired`). */
  gapsIn(): Promise<SeqGap[]> {
    return Promise.resolve([]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#messages?.close().catch(() => undefined);
    this.#items.complete();
  }
}
