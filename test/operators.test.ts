/**
 * `boundedMergeMap` with RxJS marbles (TestScheduler) and a fast-check property: never more than
 * `concurrency` inners at once, never more than `maxQueued` waiting, every item answered exactly
 * once (by its projection or by `overflow`).
 */
import { describe, expect, it } from 'vitest';
import { TestScheduler } from 'rxjs/testing';
import { Subject, of, timer, map, EMPTY } from 'rxjs';
import fc from 'fast-check';
import { boundedMergeMap } from '../src/streams/bounded-merge-map.js';

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

describe('boundedMergeMap (marbles)', () => {
  it('runs up to `concurrency` inners, queues the rest in order', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const source = hot('  a-b-c-d|');
      const inner = (v: string) => cold('---(x|)').pipe(map(() => v));
      // concurrency 2: a,b start at once; c waits for a (ends at 3), d for b (ends at 5)
      const expected = '   ---a-b-c-(d|)';
      expectObservable(source.pipe(boundedMergeMap(inner, { concurrency: 2, maxQueued: 10, overflow: () => of('!') }))).toBe(expected);
    });
  });

  it('answers with `overflow` when the queue is full, without taking a slot', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const source = hot('  abc----|');
      const inner = (v: string) => cold('----(x|)').pipe(map(() => v));
      // concurrency 1, maxQueued 1: a runs, b queues, c overflows at once
      const expected = '   --C-a---(b|)';
      const c = { C: 'overflow:c', a: 'a', b: 'b' };
      expectObservable(
        source.pipe(boundedMergeMap(inner, { concurrency: 1, maxQueued: 1, overflow: (v) => of(`overflow:${v}`) })),
      ).toBe(expected, c);
    });
  });

  it('completes only when the source and every inner are done', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const source = hot('  a|');
      expectObservable(source.pipe(boundedMergeMap(() => cold('-----(x|)'), { concurrency: 1, maxQueued: 0, overflow: () => EMPTY }))).toBe('-----(x|)');
    });
  });

  it('unsubscribes active inners on teardown', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const source = hot('a-b');
      const inner = cold('-----x');
      expectObservable(source.pipe(boundedMergeMap(() => inner, { concurrency: 1, maxQueued: 5, overflow: () => EMPTY })), '^--!').toBe('----');
      expectSubscriptions(inner.subscriptions).toBe(['^--!']);
    });
  });
});

describe('boundedMergeMap (property)', () => {
  it('bounds concurrency and queue, and answers every item exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 40 }),
        async (concurrency, maxQueued, delays) => {
          const input = new Subject<number>();
          let active = 0;
          let maxActive = 0;
          const answered = new Map<number, string>();
          const done = new Promise<void>((resolve, reject) => {
            input
              .pipe(
                boundedMergeMap(
                  (i) => {
                    active++;
                    maxActive = Math.max(maxActive, active);
                    return timer(delays[i] ?? 0).pipe(map(() => ({ i, how: 'ran' })));
                  },
                  { concurrency, maxQueued, overflow: (i) => of({ i, how: 'overflow' }) },
                ),
              )
              .subscribe({
                next: ({ i, how }) => {
                  if (how === 'ran') active--;
                  if (answered.has(i)) reject(new Error(`item ${i} answered twice`));
                  answered.set(i, how);
                },
                error: reject,
                complete: resolve,
              });
          });
          delays.forEach((_, i) => input.next(i));
          input.complete();
          await done;
          expect(maxActive).toBeLessThanOrEqual(concurrency);
          expect(answered.size).toBe(delays.length);
          const overflowed = [...answered.values()].filter((h) => h === 'overflow').length;
          // all items arrive synchronously: exactly the ones beyond concurrency + maxQueued overflow
          expect(overflowed).toBe(Math.max(0, delays.length - concurrency - maxQueued));
        },
      ),
      { numRuns: 60 },
    );
  });
});
