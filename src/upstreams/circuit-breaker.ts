/**
 * The per-upstream circuit breaker: closed → open → half_open → closed.
 *
 * - closed: calls pass; `failure_threshold` failures in a row (call timeouts, send failures)
 *   open it. A success resets the count. Only what the upstream did counts: a message the
 *   gateway could not serialise (its send failed, and `JSON.stringify` fails on it too) is
 *   reported as `release` by the upstream, and callers' input nested too deep never gets that
 *   far (the depth limit of `../codecs/depth.ts`).
 * - open: calls fail at once (CIRCUIT_OPEN, naming the upstream and `retryAt`); after `open_ms`
 *   the breaker becomes half_open by itself (a timer on the scheduler).
 * - half_open: at most `half_open_max_calls` trial calls are let through at once; the first trial
 *   success closes the breaker, a trial failure opens it again for another `open_ms`.
 *
 * Outcomes of calls admitted in another state than the current one are ignored (a slow call from
 * before the breaker opened does not decide a half-open trial). A call that ends without a verdict
 * (cancelled by its caller, lost with its connection) is reported as `release`: it frees its trial
 * slot and counts neither way.
 *
 * {@link breakerStep} and {@link breakerAdmit} are pure; {@link CircuitBreaker} holds the current
 * snapshot, runs the open timer on an RxJS scheduler and emits each transition on `transitions$`.
 */
import { Subject, asyncScheduler, type Observable, type SchedulerLike, type Subscription } from 'rxjs';
import type { CircuitState } from '../streams/events.js';

/** Breaker thresholds (times in ms). */
export interface BreakerSettings {
  readonly failure_threshold: number;
  readonly open_ms: number;
  readonly half_open_max_calls: number;
}

export type BreakerSnapshot =
  | { readonly state: 'closed'; readonly failures: number }
  /** `retryAt`: epoch ms (scheduler time) when it becomes half_open; `failures`: the count that opened it. */
  | { readonly state: 'open'; readonly retryAt: number; readonly failures: number }
  /** `trials`: trial calls in flight. */
  | { readonly state: 'half_open'; readonly trials: number };

/** How a call admitted by the breaker ended. */
export type CallOutcome = 'success' | 'failure' | 'release';

export type BreakerInput = { readonly type: CallOutcome; readonly trial: boolean } | { readonly type: 'elapsed' };

/** `pass`: closed, go; `trial`: a half-open trial call, go; `reject`: fail fast. */
export type Admission = 'pass' | 'trial' | 'reject';

export const CLOSED: BreakerSnapshot = { state: 'closed', failures: 0 };

/**
 * The next snapshot after `input` at time `now` (ms). Returns `s` itself when nothing changes.
 */
export function breakerStep(s: BreakerSnapshot, input: BreakerInput, settings: BreakerSettings, now: number): BreakerSnapshot {
  switch (s.state) {
    case 'closed':
      if (input.type === 'elapsed' || input.trial) return s;
      if (input.type === 'success') return s.failures === 0 ? s : CLOSED;
      if (input.type === 'failure') {
        const failures = s.failures + 1;
        return failures >= settings.failure_threshold ? { state: 'open', retryAt: now + settings.open_ms, failures } : { state: 'closed', failures };
      }
      return s;
    case 'open':
      return input.type === 'elapsed' && now >= s.retryAt ? { state: 'half_open', trials: 0 } : s;
    case 'half_open':
      if (input.type === 'elapsed' || !input.trial) return s;
      if (input.type === 'success') return CLOSED;
      if (input.type === 'failure') return { state: 'open', retryAt: now + settings.open_ms, failures: 1 };
      return { state: 'half_open', trials: Math.max(0, s.trials - 1) };
  }
}

/**
 * Whether a call may go now, and the snapshot after admitting it (a half-open trial takes a
 * slot). An open breaker whose `retryAt` has passed admits as half_open (its timer may not have
 * run yet).
 */
export function breakerAdmit(s: BreakerSnapshot, settings: BreakerSettings, now: number): [Admission, BreakerSnapshot] {
  if (s.state === 'closed') return ['pass', s];
  const current = s.state === 'open' ? breakerStep(s, { type: 'elapsed' }, settings, now) : s;
  if (current.state !== 'half_open' || current.trials >= settings.half_open_max_calls) return ['reject', current];
  return ['trial', { state: 'half_open', trials: current.trials + 1 }];
}

/** One state change. `retryAt` (epoch ms) is set when the new state is `open`. */
export interface BreakerTransition {
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly retryAt?: number;
  /** Failures in a row that opened it (when `to` is `open`). */
  readonly failures?: number;
}

/**
 * A circuit breaker instance. Synchronous on the call path: {@link admit} before sending,
 * {@link record} once when the call ends. Time comes from `scheduler.now()`.
 */
export class CircuitBreaker {
  private current: BreakerSnapshot = CLOSED;
  private timer: Subscription | undefined;
  private readonly transitionsSubject = new Subject<BreakerTransition>();
  /** Every state change, in order, synchronously as it happens (hot). */
  readonly transitions$: Observable<BreakerTransition> = this.transitionsSubject.asObservable();

  constructor(
    private settings: BreakerSettings,
    private readonly scheduler: SchedulerLike = asyncScheduler,
  ) {}

  get snapshot(): BreakerSnapshot {
    return this.current;
  }

  get state(): CircuitState {
    return this.current.state;
  }

  /** New thresholds; they apply from the next input on. */
  reconfigure(settings: BreakerSettings): void {
    this.settings = settings;
  }

  /** Decides whether a call may go; a `trial` must later be {@link record}ed with `trial: true`. */
  admit(): Admission {
    if (this.current.state === 'closed') return 'pass';
    const [admission, next] = breakerAdmit(this.current, this.settings, this.scheduler.now());
    this.apply(next);
    return admission;
  }

  /** Reports how an admitted call ended; `trial` as returned by {@link admit}. */
  record(outcome: CallOutcome, trial: boolean): void {
    if (this.current.state === 'closed' && this.current.failures === 0 && outcome !== 'failure') return;
    this.apply(breakerStep(this.current, { type: outcome, trial }, this.settings, this.scheduler.now()));
  }

  /** Stops the open timer and completes `transitions$`. */
  dispose(): void {
    this.timer?.unsubscribe();
    this.timer = undefined;
    this.transitionsSubject.complete();
  }

  private apply(next: BreakerSnapshot): void {
    const prev = this.current;
    if (next === prev) return;
    this.current = next;
    if (prev.state === next.state) return;
    if (prev.state === 'open' || next.state === 'open') {
      this.timer?.unsubscribe();
      this.timer = undefined;
    }
    if (next.state === 'open') {
      const at = next.retryAt;
      this.timer = this.scheduler.schedule(() => {
        this.timer = undefined;
        this.apply(breakerStep(this.current, { type: 'elapsed' }, this.settings, Math.max(at, this.scheduler.now())));
      }, Math.max(0, at - this.scheduler.now()));
    }
    this.transitionsSubject.next(
      next.state === 'open' ? { from: prev.state, to: 'open', retryAt: next.retryAt, failures: next.failures } : { from: prev.state, to: next.state },
    );
  }
}
