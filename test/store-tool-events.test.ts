/**
 * One record per tool call: the event recorder stores a tool event inside its tool-log record
 * (one LevelDB put), and the event log reads it from there, merged by seq with its own events.
 * Real LevelDB in a temp dir, the real recorder, event log and tool log:
 * - a tool call costs one op (two with payloads over 1 KiB); other events one op in `events`;
 * - `after` returns exactly the stored events in seq order, the same JSON a live subscriber got,
 *   in pages of any size, bounded by `upTo`; model-call entries (no event) never appear;
 * - the clock going back keeps seq order (the record is filed at the previous ms), across a
 *   restart too, and the tool log still lists every entry with its real timestamp;
 * - `lastSeq` counts tool events (a restart never reuses their seqs);
 * - tool events stored in `events` by schema version 2 still replay, merged with new ones;
 * - the tool log's retention deleting a record leaves a hole in the replay (no gap record: the
 *   catch-up names it `expired`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/logger.js';
import { EventRecorder } from '../src/handlers/event-recorder.js';
import { putOp } from '../src/store/batcher.js';
import { EventLogRepository, type SeqGap, type StoredEvent } from '../src/store/events.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import type { Store } from '../src/store/open.js';
import { INLINE_PAYLOAD_BYTES } from '../src/store/tool-log-record.js';
import { toWire, type GatewayEvent } from '../src/streams/events.js';
import { tempStores } from './helpers/store.js';

const silent = createLogger('silent');
const openTemp = tempStores('trib-tool-events-');
const BASE = Date.parse('2026-05-01T00:00:00.000Z');

interface Rig {
  readonly store: Store;
  readonly eventLog: EventLogRepository;
  readonly recorder: EventRecorder;
}

async function rig(store: Store): Promise<Rig> {
  const eventLog = new EventLogRepository(store.db, store.sublevel<StoredEvent>('events'), store.writer, store.meta, store.sublevel<SeqGap>('event_gaps'), store.toolLog);
  const { lastSeq } = await eventLog.open();
  return { store, eventLog, recorder: new EventRecorder(store.writer, eventLog, store.toolLog, silent, lastSeq) };
}

/** Event `seq` at `ms`: every third a health check, the rest tool calls (some failed, one with a large result). */
function eventAt(seq: number, ms: number): GatewayEvent {
  const timestamp = new Date(ms).toISOString();
  if (seq % 3 === 0) return { seq, timestamp, event_type: 'HealthCheckPassed', mcp_server_id: 'demo', duration_ms: 1, method: 'ping' };
  const common = { seq, timestamp, mcp_server_id: 'demo', tool_name: `t${seq % 4}`, call_id: `call-${seq}`, duration_ms: 0.5, cost_usd: 0.001, surface: 'mcp', arguments: { n: seq } };
  if (seq % 5 === 0) return { ...common, event_type: 'ToolInvocationFailed', error: `boom ${seq}`, tenant_id: 'acme' };
  const text = seq % 7 === 0 ? 'x'.repeat(INLINE_PAYLOAD_BYTES * 2) : `echo ${seq}`;
  return { ...common, event_type: 'ToolInvocationCompleted', is_error: false, result: { content: [{ type: 'text', text }] } };
}

const isTool = (e: GatewayEvent): boolean => e.event_type === 'ToolInvocationCompleted' || e.event_type === 'ToolInvocationFailed';
const json = (events: readonly object[]): string[] => events.map((e) => JSON.stringify(e));

async function readAll(log: EventLogRepository, since: number, limit: number, upTo?: number): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for (let from = since; ; ) {
    const page = await log.after(from, limit, upTo);
    out.push(...page);
    if (page.length < limit) return out;
    from = (page[page.length - 1] as StoredEvent).seq;
  }
}

describe('tool events stored once, in their tool-log records', () => {
  it('one op per tool call; after() replays every event in seq order as sent, in pages of any size', async () => {
    const { store } = await openTemp({ options: { batch: { windowMs: 1 } } });
    const { eventLog, recorder } = await rig(store);
    const sent: GatewayEvent[] = [];
    const opsBefore = store.writer.counters.ops;
    for (let seq = 1; seq <= 120; seq++) {
      const e = eventAt(seq, BASE + seq);
      sent.push(e);
      await recorder.record(e);
      // model-provider calls land in the tool log without an event: the replay must not show them
      if (seq % 10 === 0) await store.toolLog.append({ client: 'model:x', tool: 'chat', arguments: {}, result: {}, status: 'success', latency_ms: 1, cost_usd: 0.01, surface: 'model', timestamp: new Date(BASE + seq).toISOString() });
    }
    const big = sent.filter((e) => e.event_type === 'ToolInvocationCompleted' && e.seq % 7 === 0).length;
    expect(big).toBeGreaterThan(5);
    // tool calls: one op each (+1 for a large payload); other events: one; model calls: one
    expect(store.writer.counters.ops - opsBefore).toBe(120 + big + 12);
    const expected = json(sent.map(toWire));
    expect(json(await eventLog.after(0, 1000))).toEqual(expected);
    for (const limit of [1, 2, 7, 64]) expect(json(await readAll(eventLog, 0, limit))).toEqual(expected);
    expect(json(await readAll(eventLog, 40, 5, 90))).toEqual(expected.slice(40, 90));
    expect(json(await eventLog.after(119, 10))).toEqual(expected.slice(119));
    expect(await eventLog.after(120, 10)).toEqual([]);
    expect(await eventLog.lastSeq()).toBe(120);
    // readers at random places, one after another (each call may resume where an earlier one ended, or search)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 125 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 130 }), async (since, limit, upTo) => {
        const want = expected.filter((_, i) => i + 1 > since && i + 1 <= upTo).slice(0, limit);
        expect(json(await eventLog.after(since, limit, upTo))).toEqual(want);
      }),
      { numRuns: 150 },
    );
    // the tool log lists the same calls, payloads included
    const page = await store.toolLog.query({ client: 'demo', limit: 1000 });
    expect(page.total).toBe(sent.filter(isTool).length);
    const seven = page.entries.find((e) => (e.arguments as { n: number }).n === 7);
    expect(seven?.result).toEqual({ content: [{ type: 'text', text: 'x'.repeat(INLINE_PAYLOAD_BYTES * 2) }] });
    expect((await store.toolLog.stats({ status: 'error' })).total_executions).toBe(sent.filter((e) => e.event_type === 'ToolInvocationFailed').length);
  });

  it('keeps seq order when the clock goes back, across a restart too; lastSeq counts tool events', async () => {
    const first = await openTemp();
    const a = await rig(first.store);
    const sent: GatewayEvent[] = [];
    // timestamps run backwards: 1000 ms, 999 ms, ...
    for (let seq = 1; seq <= 40; seq++) {
      const e = eventAt(seq, BASE + 1000 - seq);
      sent.push(e);
      await a.recorder.record(e);
    }
    await a.eventLog.release(40);
    await first.store.close();
    const again = await openTemp({ dataDir: first.dataDir });
    const b = await rig(again.store);
    expect(await b.eventLog.lastSeq()).toBe(40);
    for (let seq = 41; seq <= 80; seq++) {
      const e = eventAt(seq, BASE - seq); // still earlier than everything before the restart
      sent.push(e);
      await b.recorder.record(e);
    }
    const expected = json(sent.map(toWire));
    expect(json(await readAll(b.eventLog, 0, 3))).toEqual(expected);
    expect(json(await readAll(b.eventLog, 37, 4, 60))).toEqual(expected.slice(37, 60));
    // the tool log: every call, each with the timestamp it happened at
    const page = await again.store.toolLog.query({ limit: 1000 });
    expect(page.total).toBe(sent.filter(isTool).length);
    expect(page.entries.map((e) => e.timestamp).sort()).toEqual(sent.filter(isTool).map((e) => e.timestamp).sort());
  });

  it('tool events stored in the event log by schema version 2 still replay, merged with the new ones', async () => {
    const old = await openTemp({ options: { migrations: MIGRATIONS.slice(0, 2) } });
    const events = old.store.sublevel<StoredEvent>('events');
    const sent: GatewayEvent[] = [];
    for (let seq = 1; seq <= 30; seq++) {
      const e = eventAt(seq, BASE + seq);
      sent.push(e);
      // the version 2 recorder: every event in `events`, the tool-log entry beside it
      const ops = [putOp(events, String(seq).padStart(16, '0'), toWire(e))];
      if (isTool(e)) ops.push(...old.store.toolLog.entryOps({ client: 'demo', tool: 'old', arguments: {}, result: {}, status: 'success', latency_ms: 1, cost_usd: 0, surface: 'mcp', timestamp: e.timestamp }));
      await old.store.writer.writeAll(ops);
    }
    await old.store.close();
    const now = await openTemp({ dataDir: old.dataDir });
    expect(now.store.schemaVersion).toBe(3);
    const r = await rig(now.store);
    expect(await r.eventLog.lastSeq()).toBe(30);
    for (let seq = 31; seq <= 60; seq++) {
      const e = eventAt(seq, BASE + seq);
      sent.push(e);
      await r.recorder.record(e);
    }
    expect(json(await readAll(r.eventLog, 0, 8))).toEqual(json(sent.map(toWire)));
    expect((await now.store.toolLog.query({ limit: 1000 })).total).toBe(sent.filter(isTool).length);
  });

  it('the tool log’s retention deletes tool events with their entries: the replay names the holes expired', async () => {
    const { store } = await openTemp();
    const { eventLog, recorder } = await rig(store);
    const sent: GatewayEvent[] = [];
    for (let seq = 1; seq <= 30; seq++) {
      const e = eventAt(seq, BASE + seq * 1000);
      sent.push(e);
      await recorder.record(e);
    }
    // keep entries stamped in the last 10 s: tool calls 21..30 stay
    await store.toolLog.sweep({ maxAgeMs: 10_000, now: BASE + 30_000 });
    const kept = sent.filter((e) => !isTool(e) || e.seq >= 20);
    const replay = await readAll(eventLog, 0, 4);
    expect(json(replay)).toEqual(json(kept.map(toWire)));
  });
});
