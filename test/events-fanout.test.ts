/**
 * The `/api/ws/events` fan-out writes each subscriber's live frames of one turn in one corked
 * write: order kept, the backpressure queue and the catch-up switch intact, held frames sent before
 * any answer on that socket. The endpoint is driven directly with a recording connection (uWS
 * cannot show its write count from the client side); the real-socket behaviour is covered by
 * test/events-ws.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import { EventsWsEndpoint } from '../src/handlers/events-ws.js';
import type { RecordedFeed, RecordedItem } from '../src/handlers/event-recorder.js';
import type { EventLogRepository } from '../src/store/events.js';
import type { GatewayEvent } from '../src/streams/events.js';
import type { WsConnection, WsSendResult } from '../src/streams/ws.js';
import { createLogger } from '../src/log/logger.js';

type Msg = Record<string, unknown>;

/** A connection that records each send and the cork it happened in (0: not corked). */
class RecordingConn implements WsConnection {
  readonly endpoint = '/api/ws/events';
  readonly remoteAddress = '127.0.0.1';
  readonly auth = undefined;
  closed = false;
  readonly sent: { text: string; cork: number }[] = [];
  corks = 0;
  #corked = 0;
  /** Sends from this index on report backpressure (uWS took the frame but buffered it). */
  backpressureFrom = Infinity;
  buffered = 0;
  send(message: string | Uint8Array): WsSendResult {
    this.sent.push({ text: Buffer.from(message).toString(), cork: this.#corked });
    if (this.sent.length > this.backpressureFrom) {
      this.buffered = 2 << 20; // over the endpoint's high-water mark (1 MiB)
      return 'backpressure';
    }
    return 'ok';
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  close(): void {
    this.closed = true;
  }
  ping(): void {}
  cork(fn: () => void): void {
    this.#corked = ++this.corks;
    try {
      fn();
    } finally {
      this.#corked = 0;
    }
  }
  authorize(): boolean {
    return !this.closed;
  }
  frames(): Msg[] {
    return this.sent.map((s) => JSON.parse(s.text) as Msg);
  }
}

const event = (seq: number): RecordedItem => ({
  kind: 'event',
  event: { seq, event_type: 'ToolInvocationCompleted', mcp_server_id: 'demo', tool_name: 'echo', timestamp: '2026-01-01T00:00:00.000Z' } as unknown as GatewayEvent,
});

function endpoint(maxQueued = 1000): { ep: EventsWsEndpoint; items: Subject<RecordedItem>; open: () => RecordingConn } {
  const items = new Subject<RecordedItem>();
  const feed = { items$: items, lastSettledSeq: 0, lastRecordedSeq: 0 } as unknown as RecordedFeed;
  const ep = new EventsWsEndpoint(feed, {} as EventLogRepository, createLogger('silent'), { maxQueued, maxMessageBytes: 4096, highWaterBytes: 1 << 20, maxReplay: 1000 });
  return {
    ep,
    items,
    open: () => {
      const c = new RecordingConn();
      ep.onOpen(c);
      return c;
    },
  };
}

const subscribe = (ep: EventsWsEndpoint, c: RecordingConn, msg: Msg): void =>
  ep.onMessage(c, new TextEncoder().encode(JSON.stringify({ type: 'subscribe', ...msg })).buffer as ArrayBuffer, false);

describe('events fan-out: one corked write per subscriber per turn', () => {
  it('a batch of 64 events reaches each of 3 subscribers as 64 frames in seq order inside one cork', async () => {
    const { ep, items, open } = endpoint();
    const subs = [open(), open(), open()];
    for (let seq = 1; seq <= 64; seq++) items.next(event(seq));
    expect(subs.every((c) => c.sent.length === 0)).toBe(true); // held until the end of the turn
    await Promise.resolve();
    for (const c of subs) {
      expect(c.frames().map((f) => f['seq'])).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
      expect(c.corks).toBe(1);
      expect(c.sent.every((s) => s.cork === 1)).toBe(true);
    }
    // the next turn's events: one more cork each
    items.next(event(65));
    await Promise.resolve();
    expect(subs.map((c) => c.corks)).toEqual([2, 2, 2]);
    ep.dispose();
  });

  it('frames the socket does not take at once go to the queue in order and are sent on drain', async () => {
    const { ep, items, open } = endpoint();
    const c = open();
    c.backpressureFrom = 10;
    for (let seq = 1; seq <= 30; seq++) items.next(event(seq));
    await Promise.resolve();
    // the 11th send reported backpressure: the rest wait in the queue (uWS already holds the 11th)
    expect(c.frames().map((f) => f['seq'])).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(ep.queued).toBe(19);
    c.backpressureFrom = Infinity;
    c.buffered = 0;
    ep.onDrain(c);
    expect(c.frames().map((f) => f['seq'])).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(ep.queued).toBe(0);
    ep.dispose();
  });

  it('held frames go out before the answer to a message on that socket (a subscribe ack follows the old filter’s frames)', async () => {
    const { ep, items, open } = endpoint();
    const c = open();
    items.next(event(1));
    items.next(event(2));
    subscribe(ep, c, { event_types: ['McpServerStateChanged'] });
    expect(c.frames().map((f) => f['seq'] ?? f['type'])).toEqual([1, 2, 'subscribed']);
    items.next(event(3)); // filtered out now
    await Promise.resolve();
    expect(c.frames()).toHaveLength(3);
    ep.dispose();
  });

  it('a socket closed before the end of the turn gets nothing; the others are unaffected', async () => {
    const { ep, items, open } = endpoint();
    const gone = open();
    const kept = open();
    items.next(event(1));
    gone.close();
    ep.onClose(gone);
    items.next(event(2));
    await Promise.resolve();
    expect(gone.sent).toEqual([]);
    expect(kept.frames().map((f) => f['seq'])).toEqual([1, 2]);
    ep.dispose();
  });

  it('a lost range is a warning in seq order between the events around it', async () => {
    const { ep, items, open } = endpoint();
    const c = open();
    items.next(event(1));
    items.next({ kind: 'missing', from: 2, to: 3, reason: 'lost' });
    items.next(event(4));
    await Promise.resolve();
    expect(c.frames().map((f) => f['seq'] ?? `${String(f['code'])} ${String(f['from'])}-${String(f['to'])}`)).toEqual([1, 'events_skipped 2-3', 4]);
    expect(c.corks).toBe(1);
    ep.dispose();
  });
});
