/**
 * `/api/ws/events` (MCP Hangar WebSockets guide, https://mcp-hangar.io/docs/guides/WEBSOCKETS): every domain
 * event as JSON, filtered per connection.
 *
 * - Client `{"type":"subscribe","event_types":[...],"mcp_server_ids":[...]}` → ack
 *   `{"type":"subscribed","event_types":[...],"mcp_server_ids":[...]}` (an omitted key is no filter
 *   on that dimension; filters can be replaced at any time; before any subscribe: everything).
 * - Events come from the event recorder: each is stored before it is sent.
 * - Beyond Hangar: `"since": SEQ` catches up from the store: stored events after SEQ are read a
 *   page at a time and sent as the socket drains (uWS `getBufferedAmount` + `drain`), then the
 *   connection continues live with no gap and no duplicate. Every seq after SEQ reaches the
 *   client as an event (filtered out or not), or inside the range of a warning
 *   `{"type":"warning","code":"events_skipped","from":A,"to":B,"reason":R}` sent in its place
 *   (`reason`: `max_replay` — the catch-up passed `maxReplay` events and skipped to live;
 *   `expired` — deleted by retention; `restart` — numbers reserved by a run that crashed;
 *   `lost` — events whose store write failed; none of those was ever delivered).
 * - A live subscriber that falls `maxQueued` events behind is not dropped from: it goes back to
 *   catching up from the store, from the first event it has not been sent.
 * - Events of a tenant (`tenant_id`) reach only subscribers of that tenant, and admins.
 * - Sampled live mode (for views such as the dashboard, which cannot show more than a few
 *   updates a second anyway): `"batch_ms": T` (50–10000) in a subscribe turns live delivery into
 *   at most one frame per T ms, `{"type":"batch","events":[...],"matched":M,"sampled_out":S,
 *   "from_seq":A,"to_seq":B}` carrying the newest `batch_max` (default 50, 1–1000) of the M
 *   events that matched the filter in seqs A..B and counting the S = M − shown ones it left
 *   out. A matching event then costs the gateway a filter check and a slot in a ring; only
 *   the kept ones are serialised, once per frame. Catch-up (`since`) still sends every event.
 * - Bad messages get `{"type":"error","code","message"}`; the connection stays open.
 * - Live frames are written once per turn of the event loop: the recorder settles a whole batch
 *   of events at once, each subscriber's frames of that batch are held and then sent inside one
 *   uWS `cork` (one write per subscriber instead of one per event), in seq order, before anything
 *   else is sent on that socket.
 *
 * This file holds the endpoint and the live fan-out; decoding a `subscribe` message and the
 * filter live in `events-ws-subscribe.ts`, reading a catch-up page from the store and the
 * `events_skipped` warnings in `events-ws-replay.ts`.
 */
import type { Subscription } from 'rxjs';
import type { Logger } from '../log/logger.js';
import { toWire, type GatewayEvent } from '../streams/events.js';
import type { WsConnection, WsEndpoint } from '../streams/ws.js';
import { feedError } from './ws-feed.js';
import type { RecordedFeed, RecordedItem } from './event-recorder.js';
import { BATCH_LIMITS, matches, parseSubscribe, type Filter } from './events-ws-subscribe.js';
import { readReplayPage, skippedWarning, type EventReplaySource } from './events-ws-replay.js';

export { BATCH_LIMITS } from './events-ws-subscribe.js';
export { skippedWarning, type EventReplaySource } from './events-ws-replay.js';

export interface EventsWsOptions {
  /** Live events queued per connection; one more and the connection catches up from the store instead. */
  readonly maxQueued: number;
  /** Largest client message accepted, bytes. */
  readonly maxMessageBytes: number;
  /** Stop sending while the socket holds more than this, bytes. */
  readonly highWaterBytes: number;
  /** Most stored events one catch-up reads before it skips to live with an `events_skipped` warning. */
  readonly maxReplay: number;
  /** Stored events read per page while catching up (default 256). */
  readonly pageSize?: number;
}

/** A sampled subscriber's pending frame: the newest `max` matching events in a ring. */
interface Batch {
  readonly ms: number;
  readonly max: number;
  ring: GatewayEvent[];
  /** Next ring slot to write. */
  at: number;
  /** Events that matched since the last frame. */
  matched: number;
  fromSeq: number;
  toSeq: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface Subscriber {
  readonly conn: WsConnection;
  filter: Filter;
  /** Set: live events are sampled into one frame per `batch.ms` (see the module comment). */
  batch: Batch | undefined;
  /** `live`: fed by the recorder; `catchup`: fed from the store, live items ignored. */
  mode: 'live' | 'catchup';
  /** Every seq ≤ cursor has been sent, queued, filtered out or covered by a warning. */
  cursor: number;
  /** Live frames not yet sent (seq of the first event each frame covers), oldest first. */
  queue: { seq: number; text: string | Buffer }[];
  queueHead: number;
  /** Catch-up: events still allowed to be read before skipping to live. */
  budget: number;
  /** Catch-up: frames read from the store but not sent yet (the socket was full). */
  backlog: string[];
  /** Catch-up: the generation whose read is in progress, if any. */
  reading: number | undefined;
  /** Bumps on every subscribe with `since`, so a stale catch-up stops. */
  generation: number;
  /**
   * The last send went out whole (uWS buffered nothing), so with an empty queue the next event can
   * be sent at once, without the queue or a `bufferedAmount()` call: the fan-out fast path.
   */
  clear: boolean;
  /** Live frames of this turn, sent corked at its end ({@link EventsWsEndpoint.flushTicks}); seqs alongside. */
  tickText: (string | Buffer)[];
  tickSeq: number[];
  /** Releases this connection's hold on an on-demand feed. */
  release: (() => void) | undefined;
  /** Client messages that arrived while the feed was starting, handled in order once it reads. */
  deferred: { data: ArrayBuffer; isBinary: boolean }[] | undefined;
}

/** Longest an upgrade waits for an on-demand feed to start reading, ms (NATS down: it opens anyway). */
const FEED_START_WAIT_MS = 2_000;

const errorMessage = feedError;

export class EventsWsEndpoint implements WsEndpoint {
  private readonly subscribers = new Map<WsConnection, Subscriber>();
  private readonly sub: Subscription;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly pageSize: number;
  /** Subscribers holding frames of this turn; flushed by one microtask. */
  private readonly dirty: Subscriber[] = [];
  private readonly flushTicksNow = (): void => this.flushTicks();
  /** Seqs skipped across all connections (`max_replay` cuts), for metrics. */
  droppedTotal = 0;

  constructor(
    private readonly feed: RecordedFeed,
    private readonly log: EventReplaySource,
    private readonly logger: Logger,
    private readonly options: EventsWsOptions,
  ) {
    this.pageSize = options.pageSize ?? 256;
    this.sub = feed.items$.subscribe((item) => this.publish(item));
  }

  /** Open connections. */
  get connections(): number {
    return this.subscribers.size;
  }

  /** Frames waiting in all live queues and catch-up backlogs. */
  get queued(): number {
    let n = 0;
    for (const s of this.subscribers.values()) n += s.queue.length - s.queueHead + s.backlog.length;
    return n;
  }

  dispose(): void {
    this.sub.unsubscribe();
    for (const s of this.subscribers.values()) {
      if (s.batch?.timer !== undefined) clearTimeout(s.batch.timer);
      s.release?.();
      s.conn.close(1001, 'server shutting down');
    }
    this.subscribers.clear();
  }

  /**
   * An on-demand feed (the cluster stream) starts reading before the connection opens, so the
   * client's `open` means "events from here on" as with the local feed (bounded wait).
   */
  readonly beforeOpen = (): Promise<void> | undefined => {
    const demand = this.feed.demand;
    if (demand === undefined) return undefined;
    const release = demand.hold();
    const ready = demand.ready();
    if (ready === undefined) {
      // reading already: the connection's own hold (onOpen) follows before the feed could stop
      release();
      return undefined;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, FEED_START_WAIT_MS);
    });
    return Promise.race([ready, bound]).finally(() => {
      clearTimeout(timer);
      release();
    });
  };

  readonly onOpen = (conn: WsConnection): void => {
    const principal = conn.auth?.principal;
    // an on-demand feed reads while any connection is open
    const release = this.feed.demand?.hold();
    this.subscribers.set(conn, {
      conn,
      filter: { eventTypes: undefined, serverIds: undefined, tenant: principal === undefined || principal.role === 'admin' ? undefined : principal.tenantId },
      mode: 'live',
      // events published after the connection opened (those still being stored arrive once stored)
      cursor: this.feed.lastRecordedSeq,
      queue: [],
      queueHead: 0,
      budget: 0,
      backlog: [],
      reading: undefined,
      generation: 0,
      clear: true,
      batch: undefined,
      tickText: [],
      tickSeq: [],
      release,
      deferred: undefined,
    });
  };

  readonly onClose = (conn: WsConnection): void => {
    const s = this.subscribers.get(conn);
    if (s?.batch?.timer !== undefined) clearTimeout(s.batch.timer);
    s?.release?.();
    this.subscribers.delete(conn);
  };

  /** Frames of sampled subscribers (`batch_ms`) sent, and the events they left out, for metrics and tests. */
  readonly sampling = { frames: 0, sampledOut: 0 };

  readonly onDrain = (conn: WsConnection): void => {
    const s = this.subscribers.get(conn);
    if (!s) return;
    if (s.mode === 'catchup') this.catchUp(s);
    else this.flush(s);
  };

  readonly onMessage = (conn: WsConnection, data: ArrayBuffer, isBinary: boolean): void => {
    const s = this.subscribers.get(conn);
    if (!s) return;
    // an on-demand feed still starting: its seqs are not current yet, so a `since` could not say
    // where the replay ends and live begins; the message waits (copied: uWS reuses `data`)
    const ready = s.deferred === undefined ? this.feed.demand?.ready() : undefined;
    if (s.deferred !== undefined || ready !== undefined) {
      const first = s.deferred === undefined;
      (s.deferred ??= []).push({ data: data.slice(0), isBinary });
      if (first) void ready?.then(() => this.handleDeferred(s));
      return;
    }
    this.handle(s, data, isBinary);
  };

  /** Handles the messages that waited for the feed to start, in order. */
  private handleDeferred(s: Subscriber): void {
    const waiting = s.deferred ?? [];
    s.deferred = undefined;
    for (const m of waiting) {
      if (s.conn.closed || this.subscribers.get(s.conn) !== s) return;
      this.handle(s, m.data, m.isBinary);
    }
  }

  private handle(s: Subscriber, data: ArrayBuffer, isBinary: boolean): void {
    const conn = s.conn;
    // frames of this turn (matched under the filter in force until now) go out before any answer
    this.flushTick(s);
    const parsed = parseSubscribe(data, isBinary, this.options.maxMessageBytes, this.decoder);
    if (!parsed.ok) {
      conn.send(parsed.frame);
      return;
    }
    const { types, ids, since, batchMs, batchMax } = parsed.request;
    s.filter = { eventTypes: types ? new Set(types) : undefined, serverIds: ids ? new Set(ids) : undefined, tenant: s.filter.tenant };
    // a new subscribe replaces the sampling too: what was pending goes out under the old settings
    if (s.batch !== undefined) this.flushBatch(s);
    s.batch =
      batchMs === undefined
        ? undefined
        : { ms: batchMs, max: typeof batchMax === 'number' ? batchMax : BATCH_LIMITS.defaultMax, ring: [], at: 0, matched: 0, fromSeq: 0, toSeq: 0, timer: undefined };
    conn.send(
      JSON.stringify({
        type: 'subscribed',
        ...(types ? { event_types: types } : {}),
        ...(ids ? { mcp_server_ids: ids } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(s.batch ? { batch_ms: s.batch.ms, batch_max: s.batch.max } : {}),
      }),
    );
    if (since === undefined) return;
    const last = this.feed.lastSettledSeq;
    if (since > last) {
      // a seq this log never issued (another data dir?): say so, and continue live from its end
      conn.send(JSON.stringify({ type: 'warning', code: 'since_ahead', since, last_seq: last }));
    }
    this.startCatchUp(s, Math.min(since, last));
  }

  /** Switches `s` to reading from the store after `from` (the live queue is discarded: the store has it all). */
  private startCatchUp(s: Subscriber, from: number): void {
    s.generation++;
    s.mode = 'catchup';
    // the store resends whatever a sampled subscriber held (as single events: catch-up is not sampled)
    const b = s.batch;
    if (b !== undefined) {
      if (b.timer !== undefined) clearTimeout(b.timer);
      s.batch = { ...b, ring: [], at: 0, matched: 0, timer: undefined };
    }
    s.cursor = from;
    s.queue = [];
    s.queueHead = 0;
    s.backlog = [];
    s.budget = this.options.maxReplay;
    s.reading = undefined;
    s.clear = false;
    this.catchUp(s);
  }

  /**
   * Sends the catch-up backlog, then reads the next page, while the socket has room; goes live
   * once the cursor reaches the recorder's last settled seq (checked synchronously, so nothing
   * settles in between). Resumed by `drain`.
   */
  private catchUp(s: Subscriber): void {
    if (s.reading !== undefined) return;
    const generation = s.generation;
    const step = async (): Promise<void> => {
      for (;;) {
        if (s.generation !== generation || s.conn.closed || s.mode !== 'catchup') return;
        while (s.backlog.length > 0) {
          if (s.conn.bufferedAmount() >= this.options.highWaterBytes) return; // `drain` resumes
          // over uWS' hard limit the frame is not taken: keep it for the next drain
          if (s.conn.send(s.backlog[0] as string) === 'dropped') return;
          s.backlog.shift();
        }
        if (s.conn.bufferedAmount() >= this.options.highWaterBytes) return;
        const upTo = this.feed.lastSettledSeq;
        if (s.cursor >= upTo) {
          s.mode = 'live';
          s.clear = s.conn.bufferedAmount() === 0;
          return;
        }
        if (s.budget <= 0) {
          // the cut: name exactly what is skipped, then live from the next seq, with no further gap
          s.conn.send(skippedWarning(s.cursor + 1, upTo, 'max_replay'));
          this.droppedTotal += upTo - s.cursor;
          s.cursor = upTo;
          s.mode = 'live';
          s.clear = false;
          return;
        }
        const limit = Math.min(this.pageSize, s.budget);
        const from = s.cursor;
        const read = await readReplayPage(this.log, () => s.filter, from, limit, upTo, () => s.generation !== generation || s.conn.closed);
        if (read === undefined) return;
        const { end, frames } = read;
        s.cursor = end;
        s.budget -= read.read;
        s.backlog.push(...frames);
      }
    };
    s.reading = generation;
    step()
      .catch((err: unknown) => {
        this.logger.warn('event replay failed', { error: err });
        if (s.generation === generation && !s.conn.closed) {
          s.conn.send(errorMessage('replay_failed', 'could not read stored events; subscribe again with since'));
          s.mode = 'live';
          s.cursor = this.feed.lastSettledSeq;
        }
      })
      .finally(() => {
        if (s.reading === generation) s.reading = undefined;
      });
  }

  private publish(item: RecordedItem): void {
    if (this.subscribers.size === 0) return;
    // encoded to UTF-8 once: uWS would convert a string again for every subscriber
    let text: Buffer | undefined;
    const now = Date.now();
    for (const s of this.subscribers.values()) {
      if (s.mode !== 'live') continue;
      if (item.kind === 'missing') {
        if (item.to <= s.cursor) continue;
        const from = Math.max(item.from, s.cursor + 1);
        s.cursor = item.to;
        // seqs stay in order: what a sampled subscriber holds goes out before the warning
        if (s.batch !== undefined) this.flushBatch(s);
        this.deliver(s, from, skippedWarning(from, item.to, item.reason));
        continue;
      }
      const e = item.event;
      if (e.seq <= s.cursor) continue;
      s.cursor = e.seq;
      if (!matches(s.filter, e)) continue;
      if (s.batch !== undefined) {
        this.sample(s, s.batch, e);
        continue;
      }
      // every delivery is authorised against the credential's current state (a revoked key's feed closes)
      if (!s.conn.authorize(now)) continue;
      text ??= Buffer.from(JSON.stringify(toWire(e)));
      this.deliver(s, e.seq, text);
    }
  }

  /** A live frame: held for this turn's corked write while the fast path holds, else queued. */
  private deliver(s: Subscriber, seq: number, text: string | Buffer): void {
    if (!(s.clear && s.queueHead === s.queue.length)) {
      this.enqueue(s, seq, text);
      return;
    }
    if (s.tickText.length === 0) {
      if (this.dirty.length === 0) queueMicrotask(this.flushTicksNow);
      this.dirty.push(s);
    }
    s.tickText.push(text);
    s.tickSeq.push(seq);
  }

  /** Sends every held frame of this turn, one corked write per subscriber. */
  private flushTicks(): void {
    // a frame held while flushing (none today: sends do not publish) would schedule a new flush
    const dirty = this.dirty.splice(0);
    for (const s of dirty) this.flushTick(s);
  }

  /** Sends `s`'s held frames in order, corked; what the socket does not take goes to its queue. */
  private flushTick(s: Subscriber): void {
    const texts = s.tickText;
    if (texts.length === 0) return;
    const seqs = s.tickSeq;
    s.tickText = [];
    s.tickSeq = [];
    // closed, or gone back to the store (which resends these seqs): nothing to send
    if (s.conn.closed || s.mode !== 'live') return;
    s.conn.cork(() => {
      for (let i = 0; i < texts.length; i++) {
        const text = texts[i] as string | Buffer;
        if (s.clear && s.queueHead === s.queue.length) {
          const sent = s.conn.send(text);
          s.clear = sent === 'ok';
          if (sent !== 'dropped') continue;
        }
        this.enqueue(s, seqs[i] as number, text);
        if (s.mode !== 'live') return;
      }
    });
  }

  /** Puts `e` in the sampled subscriber's ring (the newest `max` are kept) and arms its frame timer. */
  private sample(s: Subscriber, b: Batch, e: GatewayEvent): void {
    if (b.matched === 0) {
      b.fromSeq = e.seq;
      b.timer ??= setTimeout(() => {
        b.timer = undefined;
        this.flushBatch(s);
      }, b.ms);
    }
    b.matched++;
    b.toSeq = e.seq;
    if (b.ring.length < b.max) b.ring.push(e);
    else b.ring[b.at] = e;
    b.at = (b.at + 1) % b.max;
  }

  /** Sends a sampled subscriber's pending frame (oldest kept event first), if any. */
  private flushBatch(s: Subscriber): void {
    const b = s.batch;
    if (b === undefined) return;
    if (b.timer !== undefined) {
      clearTimeout(b.timer);
      b.timer = undefined;
    }
    if (b.matched === 0 || s.conn.closed) return;
    // the credential is checked once per frame (a revoked key's feed closes)
    if (!s.conn.authorize(Date.now())) return;
    const n = b.ring.length;
    const start = n < b.max ? 0 : b.at;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(JSON.stringify(toWire(b.ring[(start + i) % n] as GatewayEvent)));
    const sampledOut = b.matched - n;
    const text = `{"type":"batch","events":[${parts.join(',')}],"matched":${b.matched},"sampled_out":${sampledOut},"from_seq":${b.fromSeq},"to_seq":${b.toSeq}}`;
    this.sampling.frames++;
    this.sampling.sampledOut += sampledOut;
    const first = b.fromSeq;
    b.ring = [];
    b.at = 0;
    b.matched = 0;
    if (s.mode !== 'live') return; // went back to the store meanwhile: it resends these seqs
    if (s.clear && s.queueHead === s.queue.length) {
      const sent = s.conn.send(text);
      s.clear = sent === 'ok';
      if (sent !== 'dropped') return;
    }
    this.enqueue(s, first, text);
  }

  /** Queues a live frame and sends what fits; one over `maxQueued` and `s` catches up from the store instead. */
  private enqueue(s: Subscriber, seq: number, text: string | Buffer): void {
    s.queue.push({ seq, text });
    if (s.queue.length - s.queueHead > this.options.maxQueued) {
      const first = s.queue[s.queueHead] as { seq: number };
      this.startCatchUp(s, first.seq - 1);
      return;
    }
    this.flush(s);
  }

  private flush(s: Subscriber): void {
    const conn = s.conn;
    while (s.queueHead < s.queue.length && !conn.closed && conn.bufferedAmount() < this.options.highWaterBytes) {
      const next = s.queue[s.queueHead] as { text: string | Buffer };
      // over uWS' hard limit the frame is not taken: keep it for the next drain
      if (conn.send(next.text) === 'dropped') break;
      s.queueHead++;
    }
    if (s.queueHead === s.queue.length) {
      s.queue = [];
      s.queueHead = 0;
    } else if (s.queueHead > 1024) {
      s.queue = s.queue.slice(s.queueHead);
      s.queueHead = 0;
    }
    // the fast path resumes once everything queued is out and the socket holds nothing
    s.clear = s.queueHead === s.queue.length && conn.bufferedAmount() === 0;
  }
}
