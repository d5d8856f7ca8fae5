/**
 * Shared outbound side of the JSON feeds (`/api/ws/events`, `/api/ws/live`): a per-connection
 * drop-oldest queue drained while the socket has room, with one
 * `{"type":"warning","code":"events_dropped","dropped":N}` per drop episode, sent before the next
 * message the client receives.
 */
import type { DropOldestQueue } from '../streams/drop-oldest-queue.js';
import type { WsConnection } from '../streams/ws.js';

/** Sends queued messages while `conn` buffers less than `highWaterBytes`. */
export function drainFeed(conn: WsConnection, queue: DropOldestQueue<string>, highWaterBytes: number): void {
  while (!conn.closed && conn.bufferedAmount() < highWaterBytes) {
    const dropped = queue.takeDropped();
    if (dropped > 0) {
      conn.send(JSON.stringify({ type: 'warning', code: 'events_dropped', dropped }));
      continue;
    }
    const next = queue.shift();
    if (next === undefined) return;
    if (conn.send(next) === 'dropped') return;
  }
}

/** A feed protocol error frame. */
export function feedError(code: string, message: string): string {
  return JSON.stringify({ type: 'error', code, message });
}
