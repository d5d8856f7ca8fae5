/**
 * `/api/ws/live` (Bifrost live feed, https://github.com/maximhq/bifrost/blob/main/docs/openapi/paths/management/infrastructure.yaml; Bifrost serves it at `/ws`;
 * here `/ws` is the agent WebSocket, so the feed moves to this path): `{"type":"mcp_log","operation":"create","payload":{...}}` for every
 * tool-call log entry and `{"type":"store_update","tags":[...]}` when configuration entities
 * change, each once it is stored (the source is the event recorder's stream). Clients only
 * listen; whatever they send is answered with an error frame. A bounded drop-oldest queue per
 * connection, with an `events_dropped` warning per drop episode.
 */
import { filter, type Observable, type Subscription } from 'rxjs';
import { capPayload } from '../store/cap-payload.js';
import { DropOldestQueue } from '../streams/drop-oldest-queue.js';
import type { GatewayEvent } from '../streams/events.js';
import type { WsConnection, WsEndpoint } from '../streams/ws.js';
import { toLogEntry } from './tool-log.js';
import { drainFeed, feedError } from './ws-feed.js';

export interface LiveWsOptions {
  readonly maxQueued: number;
  readonly highWaterBytes: number;
  /** Cap of arguments/results in `mcp_log` payloads, bytes (the tool log's rule, see `capPayload`). */
  readonly maxPayloadBytes: number;
}

type LiveEvent = Extract<GatewayEvent, { event_type: 'ToolInvocationCompleted' | 'ToolInvocationFailed' | 'StoreChanged' }>;

export class LiveWsEndpoint implements WsEndpoint {
  private readonly queues = new Map<WsConnection, DropOldestQueue<string>>();
  private readonly sub: Subscription;

  /** @param source stored events in seq order (the event recorder's `events$`). */
  constructor(
    source: { readonly events$: Observable<GatewayEvent> },
    private readonly options: LiveWsOptions,
  ) {
    this.sub = source.events$
      .pipe(filter((e): e is LiveEvent => e.event_type === 'ToolInvocationCompleted' || e.event_type === 'ToolInvocationFailed' || e.event_type === 'StoreChanged'))
      .subscribe((e) => this.publish(e));
  }

  get connections(): number {
    return this.queues.size;
  }

  dispose(): void {
    this.sub.unsubscribe();
    for (const conn of this.queues.keys()) conn.close(1001, 'server shutting down');
    this.queues.clear();
  }

  /** The live-feed message for an event. */
  message(e: LiveEvent): string {
    if (e.event_type === 'StoreChanged') return JSON.stringify({ type: 'store_update', tags: e.tags });
    const entry = toLogEntry(e);
    const args = capPayload(entry.arguments, this.options.maxPayloadBytes);
    const result = capPayload(entry.result, this.options.maxPayloadBytes);
    return JSON.stringify({
      type: 'mcp_log',
      operation: 'create',
      payload: {
        ...entry,
        id: e.call_id,
        arguments: args.value,
        arguments_truncated: args.truncated,
        result: result.value,
        result_truncated: result.truncated,
      },
    });
  }

  private publish(e: LiveEvent): void {
    if (this.queues.size === 0) return;
    const text = this.message(e);
    const now = Date.now();
    for (const [conn, queue] of this.queues) {
      // every delivery is authorised against the credential's current state (a revoked key's feed closes)
      if (!conn.authorize(now)) continue;
      queue.push(text);
      drainFeed(conn, queue, this.options.highWaterBytes);
    }
  }

  readonly onOpen = (conn: WsConnection): void => {
    this.queues.set(conn, new DropOldestQueue(this.options.maxQueued));
  };

  readonly onMessage = (conn: WsConnection): void => {
    conn.send(feedError('unsupported', 'the live feed takes no messages'));
  };

  readonly onDrain = (conn: WsConnection): void => {
    const q = this.queues.get(conn);
    if (q) drainFeed(conn, q, this.options.highWaterBytes);
  };

  readonly onClose = (conn: WsConnection): void => {
    this.queues.delete(conn);
  };
}
