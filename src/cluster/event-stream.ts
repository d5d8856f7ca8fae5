/**
 * The domain-event bus across nodes, on one JetStream stream (`<name>_events`, subjects
 * `<name>.events.<node_id>`): https://docs.nats.io/nats-concepts/jetstream/streams
 *
 * - {@link ClusterEventPublisher}: each node publishes its own stored events (the local recorder's
 *   stream, so nothing leaves a node before its own store has it), in seq order. A stream message
 *   is a JSON array of up to 256 events / 256 KiB; a full one leaves at once, and at most one that
 *   is not full leaves per linger (`event_linger_ms`, default 10 ms): an event of an idle node
 *   leaves at once, and under load the events of up to one linger share a message (a producer's
 *   linger, https://kafka.apache.org/documentation/#producerconfigs_linger.ms, made adaptive).
 *   Every stream message costs an acknowledged JetStream publish here and a stored message in
 *   nats-server, so under load the linger is what keeps the cluster's cost per event low. Up to
 *   4 messages await their acknowledgement at once; an
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
/** Default linger, ms: at most one stream message that is not full leaves per linger. */
export const DEFAULT_EVENT_LINGER_MS = 10;
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
  /** Set by `close()`: whatever is queued leaves without waiting for the linger. */
  #flushing = false;
  /** Bytes of JSON queued after the sealed envelopes. */
  #unsealedBytes = 0;
  /** The linger is over: the next seal takes a partial envelope too. */
  #due = false;
  /** When the last partial envelope was sealed (`performance.now()`, ms): the next one waits until the linger after it. */
  #lastPartialAt = Number.NEGATIVE_INFINITY;
  #lingerTimer: NodeJS.Timeout | undefined;
  readonly #lingerMs: number;
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

  /**
   * @param maxBuffered events held while the stream does not acknowledge (beyond: dropped, reported)
   * @param opts.lingerMs at most one stream message that is not full leaves per this many ms
   *   (default {@link DEFAULT_EVENT_LINGER_MS}), so an event waits at most this long for others
   *   to share its message; 0 = the events of one turn of the event loop leave together, at its end
   */
  constructor(
    private readonly target: PublishTarget,
    private readonly maxBuffered: number,
    private readonly log: Logger,
    opts: { lingerMs?: number } = {},
  ) {
    this.#lingerMs = Math.max(0, opts.lingerMs ?? DEFAULT_EVENT_LINGER_MS);
  }

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
   * Queues one event for the stream (or counts it lost when the buffer is full). It leaves at once
   * when no message that is not full left within the last linger, else with the events queued
   * until that linger is over (with linger 0: with the other events of this turn of the event loop).
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
      this.#push({ id: `${node}:lost:${l.from}`, data: JSON.stringify(report) });
    }
    // the event's JSON with `node_id` and `node_seq` appended (later keys win, as a spread would;
    // an event always has fields, so the text ends with `…}` after at least one of them)
    const json = JSON.stringify(toWire(event));
    this.#nodeField ??= `,"node_id":${JSON.stringify(node)},"node_seq":`;
    this.#push({ id: `${node}:${event.seq}`, data: `${json.slice(0, -1)}${this.#nodeField}${event.seq}}` });
    this.#schedule();
  }

  #push(p: Pending): void {
    this.#queue.push(p);
    this.#unsealedBytes += p.data.length + 1;
  }

  /** Queued events not in a sealed envelope yet. */
  get #unsealed(): number {
    return this.#queue.length - this.#head - this.#sealedCount;
  }

  /** Whether the pump has something to send now: a sealed envelope, a full one, or a partial one whose linger is over. */
  #ready(): boolean {
    if (this.#sealed.length > 0) return true;
    const n = this.#unsealed;
    if (n === 0) return false;
    return this.#partialMayLeave() || n >= ENVELOPE_MAX_EVENTS || this.#unsealedBytes >= ENVELOPE_MAX_BYTES;
  }

  /**
   * Whether a message that is not full may leave now: at most one per linger — so an event of an
   * idle node leaves at once, and under load the events of up to a linger share a message.
   */
  #partialMayLeave(): boolean {
    return this.#lingerMs === 0 || this.#due || this.#flushing || performance.now() - this.#lastPartialAt >= this.#lingerMs;
  }

  /** Starts the wait until the linger after the last partial message is over, when events wait and no wait runs. */
  #arm(): void {
    if (this.#lingerMs === 0 || this.#due || this.#lingerTimer !== undefined || this.#unsealed === 0 || this.#closed) return;
    const wait = Math.max(0, this.#lastPartialAt + this.#lingerMs - performance.now());
    this.#lingerTimer = setTimeout(() => {
      this.#lingerTimer = undefined;
      this.#due = true;
      this.#pump();
    }, Math.ceil(wait));
    this.#lingerTimer.unref();
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

  /**
   * Pumps once the current turn's offers are queued (a microtask), so they share a message — when
   * something is ready to leave; otherwise the linger runs.
   */
  #schedule(): void {
    if (this.#pumping || this.#scheduled) return;
    if (!this.#ready()) {
      this.#arm();
      return;
    }
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
        if (this.#ready() && !this.#closed) this.#pump();
        else {
          this.#arm();
          for (const fn of this.#idle.splice(0)) fn();
        }
      });
  }

  /**
   * Seals envelopes from the queued events not yet in one, until `PIPELINE` are formed: full ones
   * always, a partial one only once the linger after the last partial one is over (or with
   * linger 0, or when closing).
   */
  #seal(): void {
    let at = this.#head + this.#sealedCount;
    let partialToo = this.#partialMayLeave();
    while (this.#sealed.length < PIPELINE && at < this.#queue.length) {
      const first = this.#queue[at] as Pending;
      let bytes = first.data.length;
      let n = 1;
      let full = false;
      while (at + n < this.#queue.length) {
        if (n >= ENVELOPE_MAX_EVENTS) {
          full = true;
          break;
        }
        const next = this.#queue[at + n] as Pending;
        if (bytes + next.data.length + 1 > ENVELOPE_MAX_BYTES) {
          full = true;
          break;
        }
        bytes += next.data.length + 1;
        n++;
      }
      if (n >= ENVELOPE_MAX_EVENTS || bytes >= ENVELOPE_MAX_BYTES) full = true;
      if (!full) {
        if (!partialToo) break;
        // one partial message per linger
        partialToo = this.#flushing || this.#lingerMs === 0;
        this.#lastPartialAt = performance.now();
        this.#due = false;
      }
      const parts = new Array<string>(n);
      for (let i = 0; i < n; i++) parts[i] = (this.#queue[at + i] as Pending).data;
      this.#sealed.push({ id: `${first.id}+${n}`, data: `[${parts.join(',')}]`, count: n });
      this.#sealedCount += n;
      this.#unsealedBytes -= bytes + 1;
      at += n;
    }
    if (this.#unsealed === 0) this.#unsealedBytes = 0;
  }

  async #run(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    const { js, eventSubject } = this.target;
    while (this.buffered > 0) {
      this.#seal();
      // only a partial envelope waiting for its linger: the timer pumps again
      if (this.#sealed.length === 0) return;
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
    this.#flushing = true;
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    if (this.buffered > 0 && !this.#pumping) this.#pump();
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

