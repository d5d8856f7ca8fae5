/**
 * What the write path lets go of once a write is committed (real LevelDB in a temp dir, a forced
 * full garbage collection, `WeakRef`s on the values): a `BatchWriter` keeps no unit taken into a
 * committed batch (also while later writes wait), and the `EventRecorder` keeps no settled event. Anything kept there for the
 * next ~1,000 writes outlives two young-generation collections and is promoted; one connection's
 * calls then leave old-space garbage that only full mark-compacts (10+ ms pauses) collect.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventRecorder } from '../src/handlers/event-recorder.js';
import { createLogger } from '../src/log/logger.js';
import { BatchWriter, putOp } from '../src/store/batcher.js';
import { EventLogRepository, type SeqGap, type StoredEvent } from '../src/store/events.js';
import { openStore, type Store } from '../src/store/open.js';
import type { GatewayEvent } from '../src/streams/events.js';

let gc: () => void;
beforeAll(() => {
  // a full collection on demand: expose V8's gc() to a fresh context (https://nodejs.org/api/v8.html#v8setflagsfromstringflags)
  setFlagsFromString('--expose-gc');
  gc = runInNewContext('gc') as () => void;
});

let dir: string | undefined;
let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function open(): Promise<Store> {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-retention-'));
  store = await openStore(dir, createLogger('silent'));
  return store;
}

/** Whether `refs` are all collected after full collections (a few turns apart, as finalisation is lazy). */
async function collected(refs: readonly WeakRef<object>[]): Promise<boolean> {
  for (let i = 0; i < 5; i++) {
    gc();
    if (refs.every((r) => r.deref() === undefined)) return true;
    await new Promise((r) => setImmediate(r));
  }
  return false;
}

describe('the write path keeps nothing once committed', () => {
  it('BatchWriter: the ops of committed writes (and their callers’ callbacks) are collectable', async () => {
    const s = await open();
    const sub = s.sublevel<{ n: number; pad: string }>('retention');
    const refs: WeakRef<object>[] = [];
    // built in a plain function: a suspended async test keeps its last loop value in a register
    const write = (key: string, n: number): Promise<void> => {
      const op = putOp(sub, key, { n, pad: 'x'.repeat(100) });
      refs.push(new WeakRef(op));
      return s.writer.write(op);
    };
    // a few sequential writes, as one connection makes them, then a burst sharing batches
    for (let i = 0; i < 5; i++) await write(`k${i}`, i);
    await Promise.all(Array.from({ length: 50 }, (_, i) => write(`b${i}`, i)));
    expect(await collected(refs)).toBe(true);
    // and the data is there
    expect(await sub.get('k4')).toEqual({ n: 4, pad: 'x'.repeat(100) });
  });

  it('BatchWriter: a committed write is collectable while later writes still wait (a backlog)', async () => {
    // one unit per batch, commits finished by hand: the first write starts its batch at once
    // (the batch is full), writes 1–3 wait; then 1 commits while 2 and 3 wait behind it
    const finish: (() => void)[] = [];
    const writer = new BatchWriter<object>(() => new Promise<void>((resolve) => finish.push(resolve)), { maxBatch: 1 });
    const refs: WeakRef<object>[] = [];
    const write = (n: number): Promise<void> => {
      const op = { n, pad: 'z'.repeat(100) };
      refs.push(new WeakRef(op));
      return writer.write(op);
    };
    const done = [write(0), write(1), write(2), write(3)];
    finish[0]?.();
    await done[0];
    expect(finish).toHaveLength(2);
    finish[1]?.();
    await done[1];
    // write 2 is being committed, write 3 waits: write 1 must not be held for them
    expect(finish).toHaveLength(3);
    expect(await collected([refs[1] as WeakRef<object>])).toBe(true);
    finish[2]?.();
    await done[2];
    finish[3]?.();
    await Promise.all(done);
    await writer.close();
  });

  it('EventRecorder: a settled event is collectable (and was delivered to the feed)', async () => {
    const s = await open();
    const eventLog = new EventLogRepository(s.db, s.sublevel<StoredEvent>('events'), s.writer, s.meta, s.sublevel<SeqGap>('event_gaps'), s.toolLog);
    const start = await eventLog.open();
    const recorder = new EventRecorder(s.writer, eventLog, s.toolLog, createLogger('silent'), start.lastSeq);
    const seen: number[] = [];
    const sub = recorder.events$.subscribe((e) => seen.push(e.seq));
    const refs: WeakRef<object>[] = [];
    const record = (i: number): Promise<void> => {
      const event: GatewayEvent = { seq: start.lastSeq + i, timestamp: new Date().toISOString(), event_type: 'StoreChanged', tags: [`t${i}`] };
      refs.push(new WeakRef(event));
      return recorder.record(event);
    };
    for (let i = 1; i <= 5; i++) await record(i);
    sub.unsubscribe();
    expect(seen).toEqual([1, 2, 3, 4, 5].map((i) => start.lastSeq + i));
    expect(recorder.lastSettledSeq).toBe(start.lastSeq + 5);
    expect(await collected(refs)).toBe(true);
    recorder.close();
    await eventLog.release(start.lastSeq + 5);
  });
});
