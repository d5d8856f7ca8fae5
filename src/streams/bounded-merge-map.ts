/**
 * `boundedMergeMap`: `mergeMap` with a concurrency bound AND a bound on the waiting queue
 * (requests in flight per route group). Items beyond `concurrency` wait in a FIFO
 * queue of at most `maxQueued`; an item arriving when the queue is full is not queued: its
 * `overflow` projection runs at once instead (e.g. an HTTP 503 effect), so the caller always gets
 * an answer and memory stays bounded.
 *
 * Ordering: results of different items interleave as they are produced (like `mergeMap`).
 * Errors: an error from a projection errors the output, like `mergeMap`; handlers are expected to
 * `catchError` inside the projection so one bad input never ends the stream.
 * Completion: when the source completes and every queued and active inner has completed.
 */
import { Observable, from, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';

export interface BoundedMergeMapOptions<T, R> {
  /** Inner Observables subscribed at once, ≥ 1. */
  readonly concurrency: number;
  /** Items waiting for a slot, ≥ 0; beyond it `overflow` answers. */
  readonly maxQueued: number;
  /** Projection used for an item that found the queue full; it does not take a slot. */
  readonly overflow: (value: T) => ObservableInput<R>;
}

export function boundedMergeMap<T, R>(
  project: (value: T, index: number) => ObservableInput<R>,
  options: BoundedMergeMapOptions<T, R>,
): OperatorFunction<T, R> {
  const { concurrency, maxQueued, overflow } = options;
  if (!(concurrency >= 1)) throw new RangeError('boundedMergeMap: concurrency must be ≥ 1');
  if (!(maxQueued >= 0)) throw new RangeError('boundedMergeMap: maxQueued must be ≥ 0');
  return (source) =>
    new Observable<R>((subscriber) => {
      const queue: T[] = [];
      let queueHead = 0;
      let active = 0;
      let index = 0;
      let sourceDone = false;
      const inners = new Set<Subscription>();

      const maybeComplete = (): void => {
        if (sourceDone && active === 0 && queue.length - queueHead === 0 && inners.size === 0) subscriber.complete();
      };

      const runInner = (input: ObservableInput<R>, takesSlot: boolean): void => {
        if (takesSlot) active++;
        let done = false;
        let sub: Subscription | undefined = undefined;
        const finish = (): void => {
          if (done) return;
          done = true;
          if (sub) inners.delete(sub);
          if (takesSlot) {
            active--;
            if (queue.length - queueHead > 0) {
              const next = queue[queueHead] as T;
              queue[queueHead] = undefined as unknown as T;
              queueHead++;
              if (queueHead > 1024 && queueHead * 2 > queue.length) {
                queue.splice(0, queueHead);
                queueHead = 0;
              }
              start(next);
            }
          }
          maybeComplete();
        };
        let innerSource: Observable<R>;
        try {
          innerSource = from(input);
        } catch (err) {
          subscriber.error(err);
          return;
        }
        sub = innerSource.subscribe({
          next: (v) => subscriber.next(v),
          error: (err: unknown) => {
            finish();
            subscriber.error(err);
          },
          complete: finish,
        });
        if (!done) inners.add(sub);
      };

      const start = (value: T): void => {
        let input: ObservableInput<R>;
        try {
          input = project(value, index++);
        } catch (err) {
          subscriber.error(err);
          return;
        }
        runInner(input, true);
      };

      const sourceSub = source.subscribe({
        next: (value) => {
          if (active < concurrency) start(value);
          else if (queue.length - queueHead < maxQueued) queue.push(value);
          else {
            let input: ObservableInput<R>;
            try {
              input = overflow(value);
            } catch (err) {
              subscriber.error(err);
              return;
            }
            runInner(input, false);
          }
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          maybeComplete();
        },
      });

      return () => {
        sourceSub.unsubscribe();
        for (const s of inners) s.unsubscribe();
        inners.clear();
        queue.length = 0;
      };
    });
}
