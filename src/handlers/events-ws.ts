/**
 * `/api/ws/events` (MCP Hangar WebSockets guide, `../shared/sources/001_*.txt`): every domain
 * event as JSON, filtered per connection.
 *
 * - Client `{"type":"subscribe","event_types":[...],"mcp_server_ids":[...]}` → ack
 *   `{"type":"subscribed","event_types":[...],"mcp_server_ids":[...]}` (an omitted key is no filter
 *   on that dimension; filters can be replaced at any time; before any subscribe: everything).
 * - Beyond Hangar: `"since": SEQ` replays stored events after SEQ from LevelDB, then continues live
 *   with no gap and no duplicate.
 * - Each connection has a bounded queue: beyond it the oldest events are dropped and the client
 *   gets `{"type":"warning","code":"events_dropped","dropped":N}` once per episode, before the
 *   next event it receives. A slow subscriber never slows the bus or other subscribers.
 * - Events of a tenant (`tenant_id`) reach only subscribers of that tenant, and admins.
 * - Bad messages get `{"type":"error","code","message"}`; the connection stays open.
 */
import type { Subscription } from 'rxjs';
import type { Logger } from '../log/logger.js';
import { DropOldestQueue } from '../streams/drop-oldest-queue.js';
import { toWire, type EventBus, type GatewayEvent } from '../streams/events.js';
import type { WsConnection, WsEndpoint } from '../streams/ws.js';
import { drainFeed, feedError } from './ws-feed.js';
import type { EventLogRepository, StoredEvent } from '../store/events.js';

export interface EventsWsOptions {
  /** Events queued per connection before the oldest are dropped. */
  readonly maxQueued: number;
  /** Largest client message accepted, bytes. */
  readonly maxMessageBytes: number;
  /** Stop sending while the socket holds more than this, bytes. */
  readonly highWaterBytes: number;
  /** Most stored events replayed for one `since`. */
  readonly maxReplay: number;
}

interface Filter {
  readonly eventTypes: ReadonlySet<string> | undefined;
  readonly serverIds: ReadonlySet<string> | undefined;
  /**
   * The subscriber's tenant (issue 9: tenants never see each other's entities): events carrying
   * another `tenant_id` are not delivered. `undefined` (admins, auth off) sees every tenant.
   */
  readonly tenant: string | undefined;
}

interface Subscriber {
  readonly conn: WsConnection;
  filter: Filter;
  readonly queue: DropOldestQueue<string>;
  /** While replaying: live events wait here (with their seq) until the replay is sent. */
  pendingLive: { seq: number; text: string }[] | undefined;
  /** Highest seq handed to the queue (for dedup after a replay). */
  lastSeq: number;
  /** Bumps on every subscribe, so a stale replay does not deliver. */
  generation: number;
  /**
   * The last send went out whole (uWS buffered nothing), so with an empty queue the next event can
   * be sent at once, without the queue or a `bufferedAmount()` call: the fan-out fast path.
   */
  clear: boolean;
}

function matches(f: Filter, e: { event_type: string; mcp_server_id?: unknown; tenant_id?: unknown }): boolean {
  if (f.tenant !== undefined && e.tenant_id !== undefined && e.tenant_id !== f.tenant) return false;
  if (f.eventTypes && !f.eventTypes.has(e.event_type)) return false;
  if (f.serverIds && !(typeof e.mcp_server_id === 'string' && f.serverIds.has(e.mcp_server_id))) return false;
  return true;
}

const errorMessage = feedError;

function stringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

export class EventsWsEndpoint implements WsEndpoint {
  private readonly subscribers = new Map<WsConnection, Subscriber>();
  private readonly sub: Subscription;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  /** Events dropped across all connections (for metrics). */
  droppedTotal = 0;

  constructor(
    bus: EventBus,
    private readonly log: EventLogRepository,
    private readonly logger: Logger,
    private readonly options: EventsWsOptions,
  ) {
    this.sub = bus.events$.subscribe((e) => this.publish(e));
  }

  /** Open connections. */
  get connections(): number {
    return this.subscribers.size;
  }

  /** Events waiting in all queues. */
  get queued(): number {
    let n = 0;
    for (const s of this.subscribers.values()) n += s.queue.size;
    return n;
  }

  dispose(): void {
    this.sub.unsubscribe();
    for (const s of this.subscribers.values()) s.conn.close(1001, 'server shutting down');
    this.subscribers.clear();
  }

  readonly onOpen = (conn: WsConnection): void => {
    const principal = conn.auth?.principal;
    this.subscribers.set(conn, {
      conn,
      filter: { eventTypes: undefined, serverIds: undefined, tenant: principal === undefined || principal.role === 'admin' ? undefined : principal.tenantId },
      queue: new DropOldestQueue(this.options.maxQueued),
      pendingLive: undefined,
      lastSeq: 0,
      generation: 0,
      clear: true,
    });
  };

  readonly onClose = (conn: WsConnection): void => {
    this.subscribers.delete(conn);
  };

  readonly onDrain = (conn: WsConnection): void => {
    const s = this.subscribers.get(conn);
    if (s) this.flush(s);
  };

  readonly onMessage = (conn: WsConnection, data: ArrayBuffer, isBinary: boolean): void => {
    const s = this.subscribers.get(conn);
    if (!s) return;
    if (isBinary) {
      conn.send(errorMessage('unsupported', 'binary messages are not supported; send JSON text'));
      return;
    }
    if (data.byteLength > this.options.maxMessageBytes) {
      conn.send(errorMessage('message_too_large', `messages may be at most ${this.options.maxMessageBytes} bytes`));
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(this.decoder.decode(data));
    } catch {
      conn.send(errorMessage('invalid_json', 'message is not valid JSON (UTF-8)'));
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      conn.send(errorMessage('invalid_message', 'message must be a JSON object'));
      return;
    }
    const m = msg as Record<string, unknown>;
    if (m['type'] !== 'subscribe') {
      conn.send(errorMessage('unknown_type', `unknown message type ${JSON.stringify(m['type'] ?? null)}; expected "subscribe"`));
      return;
    }
    const types = m['event_types'];
    const ids = m['mcp_server_ids'];
    const since = m['since'];
    if (types !== undefined && !stringArray(types)) {
      conn.send(errorMessage('invalid_field', 'event_types must be an array of strings'));
      return;
    }
    if (ids !== undefined && !stringArray(ids)) {
      conn.send(errorMessage('invalid_field', 'mcp_server_ids must be an array of strings'));
      return;
    }
    if (since !== undefined && !(typeof since === 'number' && Number.isSafeInteger(since) && since >= 0)) {
      conn.send(errorMessage('invalid_field', 'since must be a non-negative integer (an event seq)'));
      return;
    }
    s.filter = { eventTypes: types ? new Set(types) : undefined, serverIds: ids ? new Set(ids) : undefined, tenant: s.filter.tenant };
    s.generation++;
    conn.send(JSON.stringify({ type: 'subscribed', ...(types ? { event_types: types } : {}), ...(ids ? { mcp_server_ids: ids } : {}), ...(since !== undefined ? { since } : {}) }));
    if (since !== undefined) this.replay(s, since);
  };

  /** Replays stored events after `since`, holding live events until it is done. */
  private replay(s: Subscriber, since: number): void {
    const generation = s.generation;
    s.queue.clear();
    s.pendingLive = [];
    s.lastSeq = since;
    void (async () => {
      // commit what the bus already published, so the store holds everything before the live buffer
      await this.log.flush();
      let cursor = since;
      let sent = 0;
      for (;;) {
        const page: StoredEvent[] = await this.log.after(cursor, 1000);
        if (s.generation !== generation || s.conn.closed) return;
        for (const e of page) {
          cursor = e.seq;
          if (matches(s.filter, e as unknown as { event_type: string })) this.enqueue(s, e.seq, JSON.stringify(e));
          if (++sent >= this.options.maxReplay) break;
        }
        if (page.length < 1000 || sent >= this.options.maxReplay) break;
      }
      const live = s.pendingLive ?? [];
      s.pendingLive = undefined;
      for (const { seq, text } of live) if (seq > s.lastSeq) this.enqueue(s, seq, text);
      this.flush(s);
    })().catch((err: unknown) => {
      this.logger.warn('event replay failed', { error: err });
      if (s.generation === generation) {
        s.pendingLive = undefined;
        s.conn.send(errorMessage('replay_failed', 'could not read stored events'));
      }
    });
  }

  private publish(e: GatewayEvent): void {
    if (this.subscribers.size === 0) return;
    let text: string | undefined;
    const now = Date.now();
    for (const s of this.subscribers.values()) {
      if (!matches(s.filter, e)) continue;
      // every delivery is authorised against the credential's current state (a revoked key's feed closes)
      if (!s.conn.authorize(now)) continue;
      text ??= JSON.stringify(toWire(e));
      if (s.pendingLive) {
        s.pendingLive.push({ seq: e.seq, text });
        if (s.pendingLive.length > this.options.maxQueued) {
          s.pendingLive.shift();
          this.droppedTotal++;
        }
        continue;
      }
      if (s.clear && s.queue.size === 0 && e.seq > s.lastSeq) {
        s.lastSeq = e.seq;
        const r = s.conn.send(text);
        s.clear = r === 'ok';
        continue;
      }
      this.enqueue(s, e.seq, text);
      this.flush(s);
    }
  }

  private enqueue(s: Subscriber, seq: number, text: string): void {
    if (seq <= s.lastSeq) return;
    s.lastSeq = seq;
    if (s.queue.push(text)) this.droppedTotal++;
  }

  private flush(s: Subscriber): void {
    drainFeed(s.conn, s.queue, this.options.highWaterBytes);
    // the fast path resumes once everything queued is out and the socket holds nothing
    s.clear = s.queue.size === 0 && s.conn.bufferedAmount() === 0;
  }
}
