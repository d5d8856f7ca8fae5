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
import { Observable, Subscriber, from, type ObservableInput, type OperatorFunction } from 'rxjs';

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
  const { concurrency, maxQueued } = options;
  if (!(concurrency >= 1)) throw new RangeError('boundedMergeMap: concurrency must be ≥ 1');
  if (!(maxQueued >= 0)) throw new RangeError('boundedMergeMap: maxQueued must be ≥ 0');
  return (source) =>
    new Observable<R>((subscriber) => {
      const merge = new BoundedMerge(subscriber, project, options);
      const sourceSub = source.subscribe({
        next: (value) => merge.next(value),
        error: (err: unknown) => subscriber.error(err),
        complete: () => merge.sourceComplete(),
      });
      return () => {
        sourceSub.unsubscribe();
        merge.stop();
      };
    });
}

/**
 * The state of one subscription to a `boundedMergeMap` output. Each inner is subscribed with one
 * {@link InnerSubscriber} (a Subscriber of its own: no observer object, closures or SafeSubscriber
 * per item — this runs once per request of a route group).
 */
class BoundedMerge<T, R> {
  private readonly queue: T[] = [];
  private queueHead = 0;
  private active = 0;
  private index = 0;
  private sourceDone = false;
  private readonly inners = new Set<InnerSubscriber<T, R>>();

  constructor(
    readonly out: Subscriber<R>,
    private readonly project: (value: T, index: number) => ObservableInput<R>,
    private readonly options: BoundedMergeMapOptions<T, R>,
  ) {}

  next(value: T): void {
    if (this.active < this.options.concurrency) this.start(value);
    else if (this.queue.length - this.queueHead < this.options.maxQueued) this.queue.push(value);
    else {
      let input: ObservableInput<R>;
      try {
        input = this.options.overflow(value);
      } catch (err) {
        this.out.error(err);
        return;
      }
      this.runInner(input, false);
    }
  }

  sourceComplete(): void {
    this.sourceDone = true;
    this.maybeComplete();
  }

  stop(): void {
    for (const s of this.inners) s.unsubscribe();
    this.inners.clear();
    this.queue.length = 0;
  }

  private maybeComplete(): void {
    if (this.sourceDone && this.active === 0 && this.queue.length - this.queueHead === 0 && this.inners.size === 0) this.out.complete();
  }

  private start(value: T): void {
    let input: ObservableInput<R>;
    try {
      input = this.project(value, this.index++);
    } catch (err) {
      this.out.error(err);
      return;
    }
    this.runInner(input, true);
  }

  private runInner(input: ObservableInput<R>, takesSlot: boolean): void {
    if (takesSlot) this.active++;
    let innerSource: Observable<R>;
    try {
      innerSource = from(input);
    } catch (err) {
      this.out.error(err);
      return;
    }
    const inner = new InnerSubscriber(this, takesSlot);
    innerSource.subscribe(inner);
    if (!inner.done) this.inners.add(inner);
  }

  /** An inner ended (completed or failed): frees its slot for the next queued item. */
  innerDone(inner: InnerSubscriber<T, R>): void {
    if (inner.done) return;
    inner.done = true;
    this.inners.delete(inner);
    if (inner.takesSlot) {
      this.active--;
      if (this.queue.length - this.queueHead > 0) {
        const next = this.queue[this.queueHead] as T;
        this.queue[this.queueHead] = undefined as unknown as T;
        this.queueHead++;
        if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
          this.queue.splice(0, this.queueHead);
          this.queueHead = 0;
        }
        this.start(next);
      }
    }
    this.maybeComplete();
  }
}

/** The subscriber of one inner Observable of {@link BoundedMerge}. */
class InnerSubscriber<T, R> extends Subscriber<R> {
  done = false;

  constructor(
    private readonly merge: BoundedMerge<T, R>,
    readonly takesSlot: boolean,
  ) {
    super();
  }

  protected override _next(value: R): void {
    this.merge.out.next(value);
  }

  protected override _error(err: unknown): void {
    this.merge.innerDone(this);
    this.merge.out.error(err);
    this.unsubscribe();
  }

  protected override _complete(): void {
    this.merge.innerDone(this);
    this.unsubscribe();
  }
}
