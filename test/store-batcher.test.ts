/**
 * BatchWriter: window/maxBatch grouping and strictly serial, in-order commits (RxJS
 * TestScheduler), then against real LevelDB in a temp dir: a burst of N writes costs
 * ≤ ceil(N/maxBatch)+2 batches and every promise resolves only once its data is readable;
 * overload rejects at once and is bounded; a failed batch rejects exactly its writes; close
 * commits what is pending; flush waits for earlier writes only.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { defer, tap, timer, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchWriter, DEFAULT_MAX_BATCH_OPS, batchWindows, commitOps, delOp, levelBatchCommit, putBytesOp, putOp, type BatchOp } from '../src/store/batcher.js';
import { openSublevel, type RootDb, type Sublevel } from '../src/store/db.js';
import { StoreError } from '../src/store/errors.js';

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

describe('batchWindows (marbles)', () => {
  it('emits each window’s items once per window, skipping empty windows', () => {
    scheduler().run(({ hot, expectObservable }) => {
      const source = hot('ab 7ms c 21ms d|');
      // window 10: [a,b,c] at 10; windows 10–20 and 20–30 are empty; d arrives at 31 and is emitted when the source completes at 32
      expectObservable(source.pipe(batchWindows(10, 100))).toBe('10ms x 21ms (y|)', { x: ['a', 'b', 'c'], y: ['d'] });
    });
  });

  it('emits a full batch of maxBatch at once and starts a new window', () => {
    scheduler().run(({ hot, expectObservable }) => {
      const source = hot('abcde 20ms |');
      // maxBatch 2: [a,b] at 1, [c,d] at 3, then e waits for its window (started at 3) to end at 13
      expectObservable(source.pipe(batchWindows(10, 2))).toBe('-x-y 9ms z 11ms |', { x: ['a', 'b'], y: ['c', 'd'], z: ['e'] });
    });
  });
});

describe('BatchWriter with a virtual-time commit (TestScheduler)', () => {
  it('commits batches one at a time, in write order, grouping what waited meanwhile; each write settles when its batch ends', async () => {
    const ts = scheduler();
    const spans: { ops: string; start: number; end: number }[] = [];
    const settled: { v: string; at: number }[] = [];
    const promises: Promise<void>[] = [];
    ts.run(({ cold }) => {
      // a commit takes 15 frames, longer than the 10-frame window, so batches queue behind it
      const commit = (ops: readonly string[]): Observable<unknown> =>
        defer(() => {
          const span = { ops: ops.join(''), start: ts.now(), end: -1 };
          spans.push(span);
          return timer(15).pipe(tap({ complete: () => (span.end = ts.now()) }));
        });
      const writer = new BatchWriter<string>(commit, { windowMs: 10, maxBatch: 3 });
      // a,b,c,d at 0 (abc fills maxBatch), e at 15, f at 27
      cold('(abcd)---------e-----------f').subscribe((v) => {
        promises.push(writer.write(v).then(() => void settled.push({ v, at: -1 })));
      });
      ts.schedule(() => void writer.close(), 100); // ends the endless window timer
    });
    await Promise.all(promises);
    // group commit: [abc] fills maxBatch → 0–15; d (due at 10) and e (arrived at 15, before that
    // commit ended) wait for it and go together → 15–30; f arrives at 27, due at 37 → 37–52
    expect(spans).toEqual([
      { ops: 'abc', start: 0, end: 15 },
      { ops: 'de', start: 15, end: 30 },
      { ops: 'f', start: 37, end: 52 },
    ]);
    expect(settled.map((s) => s.v)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('with windowMs 0 starts at once when idle, and puts everything that waited behind a slow commit into one batch', async () => {
    const ts = scheduler();
    const spans: { ops: string; start: number; end: number }[] = [];
    const promises: Promise<void>[] = [];
    ts.run(({ cold }) => {
      const commit = (ops: readonly string[]): Observable<unknown> =>
        defer(() => {
          const span = { ops: ops.join(''), start: ts.now(), end: -1 };
          spans.push(span);
          return timer(15).pipe(tap({ complete: () => (span.end = ts.now()) }));
        });
      const writer = new BatchWriter<string>(commit, { windowMs: 0, scheduler: ts });
      cold('a-b-c--d------------e').subscribe((v) => promises.push(writer.write(v)));
      ts.schedule(() => void writer.close(), 100);
    });
    await Promise.all(promises);
    // never more than one batch waiting: [a] 0–15, then b, c, d together 15–30, then e (arrived at 20) 30–45
    expect(spans).toEqual([
      { ops: 'a', start: 0, end: 15 },
      { ops: 'bcd', start: 15, end: 30 },
      { ops: 'e', start: 30, end: 45 },
    ]);
  });

  it('counts ops, not units, against maxPending', async () => {
    const ts = scheduler();
    const outcomes: string[] = [];
    const promises: Promise<void>[] = [];
    ts.run(() => {
      const writer = new BatchWriter<string>(() => timer(5), { windowMs: 10, maxPending: 4 });
      const track = (label: string, p: Promise<void>): void => {
        promises.push(p.then(() => void outcomes.push(`${label} ok`), (e: StoreError) => void outcomes.push(`${label} ${e.code}`)));
      };
      track('ab', writer.writeAll(['a', 'b']));
      track('cde', writer.writeAll(['c', 'd', 'e'])); // 2 + 3 > 4
      track('cd', writer.writeAll(['c', 'd']));
      track('f', writer.write('f'));
      ts.schedule(() => track('g', writer.write('g')), 20); // after the first batch committed (10 + 5)
      ts.schedule(() => void writer.close(), 50);
    });
    await Promise.all(promises);
    expect(outcomes.sort()).toEqual(['ab ok', 'cd ok', 'cde overloaded', 'f overloaded', 'g ok']);
  });
});

describe('BatchWriter on LevelDB', () => {
  let dir: string | undefined;
  let db: RootDb | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function openDb(): Promise<{ db: RootDb; sub: Sublevel<{ n: number }> }> {
    dir = await mkdtemp(path.join(os.tmpdir(), 'trib-batch-'));
    db = new Level<string, Uint8Array>(path.join(dir, 'db'), { valueEncoding: 'view' });
    await db.open();
    return { db, sub: openSublevel<{ n: number }>(db, 'items') };
  }

  it('a burst of N writes costs ≤ ceil(N/maxBatch)+2 batches, each write resolves only when readable', async () => {
    const { db, sub } = await openDb();
    let calls = 0;
    const commit = levelBatchCommit(db);
    const writer = new BatchWriter<BatchOp>((ops) => {
      calls++;
      return commit(ops);
    }, { windowMs: 10, maxBatch: 1000, maxBatchOps: 1000 });
    const N = 5000;
    const notReadable: string[] = [];
    await Promise.all(
      Array.from({ length: N }, (_, i) => {
        const key = `k${String(i).padStart(5, '0')}`;
        return writer.write(putOp(sub, key, { n: i })).then(() => {
          // synchronous read at the moment the promise resolves
          const v = sub.getSync(key);
          if (v?.n !== i) notReadable.push(key);
        });
      }),
    );
    expect(notReadable).toEqual([]);
    expect(calls).toBeLessThanOrEqual(Math.ceil(N / 1000) + 2);
    expect(calls).toBeGreaterThanOrEqual(Math.ceil(N / 1000));
    const c = writer.counters;
    expect(c.batches).toBe(calls);
    expect(c.ops).toBe(N);
    expect(c.pending).toBe(0);
    expect(c.lastBatchSize).toBeGreaterThan(0);
    expect(c.lastBatchMs).toBeGreaterThanOrEqual(0);
    expect((await sub.keys().all()).length).toBe(N);
    await writer.close();
  });

  it('writeAll keeps a group in one batch even across the maxBatch boundary', async () => {
    const { db, sub } = await openDb();
    const sizes: number[] = [];
    const commit = levelBatchCommit(db);
    const writer = new BatchWriter<BatchOp>((ops) => {
      sizes.push(ops.length);
      return commit(ops);
    }, { windowMs: 5, maxBatch: 2 });
    await Promise.all([
      writer.write(putOp(sub, 'a', { n: 1 })),
      writer.writeAll([putOp(sub, 'b', { n: 2 }), putOp(sub, 'c', { n: 3 }), putOp(sub, 'd', { n: 4 })]),
      writer.write(putOp(sub, 'e', { n: 5 })),
    ]);
    expect(sizes).toEqual([4, 1]); // units a + (b,c,d) fill maxBatch 2; e goes next
    expect(await sub.getMany(['a', 'b', 'c', 'd', 'e'])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
    await writer.close();
  });

  it('maxBatchOps bounds the ops of a batch without splitting a writeAll group', async () => {
    const { db, sub } = await openDb();
    const sizes: number[] = [];
    const commit = levelBatchCommit(db);
    const writer = new BatchWriter<BatchOp>((ops) => {
      sizes.push(ops.length);
      return commit(ops);
    }, { windowMs: 5, maxBatchOps: 4 });
    const pair = (k: string): BatchOp[] => [putOp(sub, `${k}1`, { n: k.charCodeAt(0) }), putOp(sub, `${k}2`, { n: k.charCodeAt(0) })];
    await Promise.all([
      writer.writeAll(pair('a')),
      writer.writeAll(pair('b')),
      writer.writeAll(pair('c')),
      writer.writeAll(Array.from({ length: 6 }, (_, i) => putOp(sub, `big${i}`, { n: i }))),
      writer.writeAll(pair('d')),
    ]);
    // a+b fill 4 ops; c alone (c + the 6-op group would pass 4); the group alone; then d
    expect(sizes).toEqual([4, 2, 6, 2]);
    expect((await sub.keys().all()).length).toBe(14);
    expect(() => new BatchWriter<BatchOp>(commit, { maxBatchOps: 0 })).toThrow(RangeError);
    await writer.close();
  });

  it('by default a burst of two-op calls commits ≤ DEFAULT_MAX_BATCH_OPS ops per db.batch(), and the counters report the longest hold of the loop', async () => {
    const { db, sub } = await openDb();
    const sizes: number[] = [];
    const holds: number[] = [];
    const commit = levelBatchCommit(db);
    const writer = new BatchWriter<BatchOp>((ops) => {
      sizes.push(ops.length);
      const started = performance.now();
      const committed = commit(ops);
      holds.push(performance.now() - started);
      return committed;
    });
    expect(writer.counters.maxHoldMs).toBe(0);
    const N = 2000;
    await Promise.all(Array.from({ length: N }, (_, i) => writer.writeAll([putOp(sub, `e${i}`, { n: i }), putOp(sub, `l${i}`, { n: -i })])));
    expect(Math.max(...sizes)).toBe(DEFAULT_MAX_BATCH_OPS);
    expect(sizes.reduce((a, x) => a + x, 0)).toBe(2 * N);
    const c = writer.counters;
    // the writer's own measure encloses the commit call timed here
    expect(c.maxHoldMs).toBeGreaterThanOrEqual(Math.max(...holds));
    expect(c.lastHoldMs).toBeGreaterThan(0);
    expect(c.lastHoldMs).toBeLessThanOrEqual(c.maxHoldMs);
    // holds over 1 ms are counted: exactly the commits the writer timed over the limit (its timing encloses ours)
    expect(c.holdsOverLimit).toBeGreaterThanOrEqual(holds.filter((h) => h > 1).length);
    expect(c.holdsOverLimit).toBeLessThanOrEqual(sizes.length);
    await writer.close();
  });

  it('counts the commits that held the loop for more than 1 ms', async () => {
    let spin = 0;
    // a commit whose synchronous part takes 2 ms
    const writer = new BatchWriter<string>(() => {
      const until = performance.now() + spin;
      while (performance.now() < until);
      return Promise.resolve();
    });
    expect(writer.counters.holdsOverLimit).toBe(0);
    spin = 2;
    await writer.write('slow');
    expect(writer.counters).toMatchObject({ batches: 1, holdsOverLimit: 1 });
    await writer.close();
  });

  it('rejects at once with `overloaded` beyond maxPending, and accepts again once drained', async () => {
    const { db, sub } = await openDb();
    const writer = new BatchWriter<BatchOp>(levelBatchCommit(db), { windowMs: 20, maxPending: 10 });
    const accepted = Array.from({ length: 10 }, (_, i) => writer.write(putOp(sub, `k${i}`, { n: i })));
    const t0 = performance.now();
    const over = writer.write(putOp(sub, 'over', { n: -1 }));
    await expect(over).rejects.toMatchObject({ name: 'StoreError', code: 'overloaded' });
    expect(performance.now() - t0).toBeLessThan(15); // at once, not after the 20 ms window
    expect(writer.counters.pending).toBe(10);
    await Promise.all(accepted);
    expect(await sub.get('over')).toBeUndefined();
    await expect(writer.write(putOp(sub, 'later', { n: 11 }))).resolves.toBeUndefined();
    expect(await sub.get('later')).toEqual({ n: 11 });
    await writer.close();
  });

  it('a failed batch rejects exactly its own writes with `io`; later batches still commit', async () => {
    const { db, sub } = await openDb();
    let fail = true;
    const commit = levelBatchCommit(db);
    const writer = new BatchWriter<BatchOp>((ops) => (fail ? Promise.reject(new Error('disk full')) : commit(ops)), { windowMs: 5 });
    const first = [writer.write(putOp(sub, 'x', { n: 1 })), writer.write(putOp(sub, 'y', { n: 2 }))];
    const results = await Promise.allSettled(first);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as StoreError;
      expect(reason).toBeInstanceOf(StoreError);
      expect(reason.code).toBe('io');
      expect(reason.message).toMatch(/disk full/);
    }
    fail = false;
    await writer.write(putOp(sub, 'z', { n: 3 }));
    expect(await sub.getMany(['x', 'y', 'z'])).toEqual([undefined, undefined, { n: 3 }]);
    expect(writer.counters).toMatchObject({ batches: 1, failedBatches: 1, ops: 1, pending: 0 });
    await writer.close();
  });

  it('close() commits pending writes first, then refuses new ones with `closed`', async () => {
    const { db, sub } = await openDb();
    const writer = new BatchWriter<BatchOp>(levelBatchCommit(db), { windowMs: 1000 }); // a window longer than the test
    const pending = Array.from({ length: 50 }, (_, i) => writer.write(putOp(sub, `k${i}`, { n: i })));
    const t0 = performance.now();
    await writer.close();
    expect(performance.now() - t0).toBeLessThan(500); // did not wait for the 1 s window
    await Promise.all(pending);
    expect((await sub.keys().all()).length).toBe(50);
    await expect(writer.write(putOp(sub, 'late', { n: 0 }))).rejects.toMatchObject({ code: 'closed' });
    await expect(writer.close()).resolves.toBeUndefined();
  });

  it('writeAllThen tells each write once, in acceptance order, after its batch (readable then), never synchronously; refusals and failures carry the StoreError', async () => {
    const { db, sub } = await openDb();
    let fail = false;
    const commit = levelBatchCommit(db);
    const writer = new BatchWriter<BatchOp>((ops) => (fail ? Promise.reject(new Error('disk full')) : commit(ops)), { maxPending: 4 });
    const told: { token: string; code: string | undefined; readable?: boolean }[] = [];
    const pending: Promise<void>[] = [];
    const done = (token: string, error: StoreError | undefined): void => {
      const entry: { token: string; code: string | undefined; readable?: boolean } = { token, code: error?.code };
      told.push(entry);
      // a committed write is readable when it is told
      pending.push(sub.get(token).then((v) => void (entry.readable = v !== undefined)));
    };
    for (let i = 0; i < 4; i++) writer.writeAllThen([putOp(sub, `k${i}`, { n: i })], done, `k${i}`);
    writer.writeAllThen([putOp(sub, 'over', { n: -1 })], done, 'over'); // beyond maxPending
    writer.writeAllThen([], done, 'empty');
    expect(told).toHaveLength(0); // nothing told synchronously
    await writer.flush();
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all(pending);
    expect(told).toEqual([
      { token: 'over', code: 'overloaded', readable: false },
      { token: 'empty', code: undefined, readable: false },
      { token: 'k0', code: undefined, readable: true },
      { token: 'k1', code: undefined, readable: true },
      { token: 'k2', code: undefined, readable: true },
      { token: 'k3', code: undefined, readable: true },
    ]);
    fail = true;
    const failed: (string | undefined)[] = [];
    writer.writeAllThen([putOp(sub, 'x', { n: 9 })], (_t: null, error) => failed.push(error?.code), null);
    await writer.flush();
    expect(failed).toEqual(['io']);
    await writer.close();
    const closed: (string | undefined)[] = [];
    writer.writeAllThen([putOp(sub, 'late', { n: 0 })], (_t: null, error) => closed.push(error?.code), null);
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toEqual(['closed']);
  });

  it('commitOps writes puts and deletes of several sublevels as one batch under their sublevel keys; a bad op writes nothing', async () => {
    const { db, sub } = await openDb();
    const other = openSublevel<string>(db, 'other');
    await commitOps(db, [putOp(sub, 'gone', { n: 0 })]);
    await commitOps(db, [putOp(sub, 'a', { n: 1 }), putOp(other, 'a', 'x'), delOp(sub, 'gone'), putBytesOp(other, 'raw', Uint8Array.of(0xa1, 0x79))], true);
    expect(await sub.get('a')).toEqual({ n: 1 });
    expect(await sub.get('gone')).toBeUndefined();
    expect(await other.get('a')).toBe('x');
    expect(await other.get('raw')).toBe('y'); // the bytes, written as given: MessagePack "y"
    expect(await db.keys().all()).toEqual(['!items!a', '!other!a', '!other!raw']);
    // an op abstract-level refuses (a put without a value) fails the whole batch before anything is written
    const bad = { ...putOp(sub, 'b', { n: 2 }), value: undefined as unknown as Uint8Array };
    await expect(commitOps(db, [putOp(sub, 'c', { n: 3 }), bad])).rejects.toThrow();
    expect(await sub.get('c')).toBeUndefined();
    expect(await sub.get('b')).toBeUndefined();
  });

  it('flush() waits for earlier writes only', async () => {
    const { db, sub } = await openDb();
    const writer = new BatchWriter<BatchOp>(levelBatchCommit(db), { windowMs: 5 });
    await expect(writer.flush()).resolves.toBeUndefined(); // nothing pending
    let committed = false;
    void writer.write(putOp(sub, 'a', { n: 1 })).then(() => (committed = true));
    await writer.flush();
    expect(committed).toBe(true);
    expect(await sub.get('a')).toEqual({ n: 1 });
    await writer.close();
  });

  it('refuses bad options', () => {
    const commit = (): Promise<void> => Promise.resolve();
    expect(() => new BatchWriter(commit, { maxBatch: 0 })).toThrow(RangeError);
    expect(() => new BatchWriter(commit, { maxPending: 0 })).toThrow(RangeError);
    expect(() => new BatchWriter(commit, { windowMs: -1 })).toThrow(RangeError);
  });
});
