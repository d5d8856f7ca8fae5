/**
 * The reconnect schedule of an upstream: exponential backoff, `initial_ms` doubling up
 * to `max_ms`, with ±20% jitter so upstreams that failed together do not reconnect in lockstep,
 * and an optional limit on attempts. The delay is a pure function; {@link retryWithBackoff} runs
 * the schedule on an RxJS scheduler, so tests drive it in virtual time (TestScheduler marbles).
 */
import { catchError, defer, switchMap, throwError, timer, asyncScheduler, type Observable, type SchedulerLike } from 'rxjs';

/** A reconnect schedule. Times in ms. */
export interface BackoffSchedule {
  readonly initial_ms: number;
  readonly max_ms: number;
  /** Attempts before giving up; `undefined` = never give up. */
  readonly max_retries: number | undefined;
}

/** Relative jitter: each delay is scaled by a factor in [1 − JITTER, 1 + JITTER). */
export const JITTER = 0.2;

/**
 * Delay before reconnect attempt `attempt` (0-based), ms: `min(max_ms, initial_ms · 2^attempt)`
 * times a jitter factor `1 − JITTER + 2·JITTER·random()`, rounded, and never above `max_ms`.
 * `random` returns a number in [0, 1); 0.5 gives the nominal delay exactly.
 */
export function backoffDelay(attempt: number, schedule: BackoffSchedule, random: () => number = Math.random): number {
  const nominal = Math.min(schedule.max_ms, schedule.initial_ms * 2 ** attempt);
  const factor = 1 - JITTER + 2 * JITTER * random();
  return Math.max(0, Math.min(schedule.max_ms, Math.round(nominal * factor)));
}

/** How the previous recovery of an upstream ended: the attempt index after the successful one, and when (epoch ms). */
export interface RecoveryRecord {
  readonly nextAttempt: number;
  readonly at: number;
}

/**
 * Attempt index a new recovery starts at. A connection that failed again within `max_ms` of the
 * last recovery is a crash loop: the schedule continues where it left off instead of starting
 * over at `initial_ms`. Otherwise 0.
 */
export function startingAttempt(last: RecoveryRecord | undefined, now: number, schedule: BackoffSchedule): number {
  if (last === undefined) return 0;
  return now - last.at < schedule.max_ms ? last.nextAttempt : 0;
}

/** Raised by {@link retryWithBackoff} when `max_retries` attempts have failed; `cause` is the last failure. */
export class BackoffExhaustedError extends Error {
  override readonly name = 'BackoffExhaustedError';
  constructor(
    readonly attempts: number,
    override readonly cause: unknown,
  ) {
    super(`gave up after ${attempts} reconnect attempt${attempts === 1 ? '' : 's'}${cause instanceof Error ? `: ${cause.message}` : ''}`);
  }
}

export interface RetryOptions {
  readonly scheduler?: SchedulerLike;
  readonly random?: () => number;
  /** First attempt index (see {@link startingAttempt}); default 0. */
  readonly startAt?: number;
  /** Called when attempt `attempt` is scheduled `delayMs` from now (before its timer starts). */
  readonly onWait?: (attempt: number, delayMs: number) => void;
}

/**
 * Waits `backoffDelay(n)` before each attempt `n` (the first one included), subscribes to
 * `attempt(n)`, and on its error schedules the next one. Emits what the first successful attempt
 * emits, then completes with it. Errors with {@link BackoffExhaustedError} after `max_retries`
 * failed attempts (at once when `max_retries` is 0). Unsubscribing cancels the pending timer and
 * the attempt in flight.
 */
export function retryWithBackoff<T>(attempt: (n: number) => Observable<T>, schedule: BackoffSchedule, options: RetryOptions = {}): Observable<T> {
  const scheduler = options.scheduler ?? asyncScheduler;
  const random = options.random ?? Math.random;
  return defer(() => {
    if (schedule.max_retries === 0) return throwError(() => new BackoffExhaustedError(0, undefined));
    let n = options.startAt ?? 0;
    let failures = 0;
    const next = (): Observable<T> => {
      const delayMs = backoffDelay(n, schedule, random);
      options.onWait?.(n, delayMs);
      return timer(delayMs, scheduler).pipe(
        switchMap(() => attempt(n)),
        catchError((err: unknown) => {
          failures++;
          n++;
          if (schedule.max_retries !== undefined && failures >= schedule.max_retries) {
            return throwError(() => new BackoffExhaustedError(failures, err));
          }
          return next();
        }),
      );
    };
    return next();
  });
}
