/**
 * Health ticks: while an upstream is connected, every `health_check_interval_ms` it is
 * sent `ping` (or `tools/list` when `is_ping_available` is false) with `health_check_timeout_ms`
 * to answer. Ticks are an RxJS `interval` with `exhaustMap`: a tick that comes while a check is
 * still in flight is dropped, so checks never pile up on a slow upstream.
 */
import { catchError, defer, exhaustMap, interval, map, of, scan, asyncScheduler, type Observable, type SchedulerLike } from 'rxjs';
import type { Upstream } from './upstream.js';

export type HealthMethod = 'ping' | 'tools/list';

/** One finished health check. */
export interface HealthCheckResult {
  readonly ok: boolean;
  readonly method: HealthMethod;
  readonly duration_ms: number;
  /** Why it failed (when `ok` is false). */
  readonly error?: string;
}

/** A health check result with the number of failures in a row up to and including it (0 after a pass). */
export interface HealthOutcome extends HealthCheckResult {
  readonly consecutive_failures: number;
}

/**
 * Runs `check` every `intervalMs` (the first one `intervalMs` after subscription) unless the
 * previous check is still in flight, and emits each result with its consecutive-failure count.
 * `check` must emit one result and complete, and must not error (report failures as `ok: false`).
 * Never completes; unsubscribe to stop.
 */
export function healthTicks(check: () => Observable<HealthCheckResult>, intervalMs: number, scheduler: SchedulerLike = asyncScheduler): Observable<HealthOutcome> {
  return interval(intervalMs, scheduler).pipe(
    exhaustMap(() => check()),
    scan<HealthCheckResult, HealthOutcome>((prev, r) => ({ ...r, consecutive_failures: r.ok ? 0 : prev.consecutive_failures + 1 }), {
      ok: true,
      method: 'ping',
      duration_ms: 0,
      consecutive_failures: 0,
    }),
  );
}

/** The method a health check of this upstream uses. */
export function healthMethod(upstream: Upstream): HealthMethod {
  return upstream.config.is_ping_available === false ? 'tools/list' : 'ping';
}

/**
 * One health check of `upstream`: a control request (it bypasses the circuit breaker and the
 * concurrency limit) that times out after `timeoutMs`. Emits one result and completes; never
 * errors. Unsubscribing does not cancel the request (it still times out on its own).
 */
export function checkUpstream(upstream: Upstream, timeoutMs: number): Observable<HealthCheckResult> {
  return defer(() => {
    const method = healthMethod(upstream);
    const started = performance.now();
    return defer(() => upstream.request(method, {}, { timeout: timeoutMs, control: true })).pipe(
      map((): HealthCheckResult => ({ ok: true, method, duration_ms: performance.now() - started })),
      catchError((err: unknown) =>
        of<HealthCheckResult>({ ok: false, method, duration_ms: performance.now() - started, error: err instanceof Error ? err.message : String(err) }),
      ),
    );
  });
}
