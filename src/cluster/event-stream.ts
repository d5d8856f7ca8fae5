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
import type { Observable, Subscription } from 'rxjs';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '../log/logger.js';
import type { RecordedItem } from '../handlers/event-recorder.js';
import { toWire, type GatewayEvent } from '../streams/events.js';

export { EVENTS_PER_MESSAGE, eventSeq, streamSeqOf } from './event-seq.js';
export { ClusterEventFeed, type FeedSource } from './event-feed.js';

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

