/**
 * Supervision of one upstream: health ticks while it is connected, reconnection with
 * backoff when its connection is lost (a stdio subprocess that exits, seen at once through the
 * transport's close) or when `max_consecutive_failures` health checks in a row fail, and its
 * circuit breaker's transitions — all as one Observable of effects the manager carries out
 * (publish an event, rebuild the catalogue after a reconnect). One upstream, one inner pipeline:
 * a sick upstream's checks and backoff timers never wait on another's.
 *
 * Events, in order, for a crash: `McpServerStateChanged` (connected → disconnected, from the
 * manager's state subscription), `McpServerStopped` (reason names the exit), then per failed
 * attempt possibly `McpServerStateChanged` (→ error), and on success `McpServerStateChanged`
 * (→ connected) and `McpServerStarted`. For failed health checks: `HealthCheckFailed` up to the
 * threshold, `McpServerDegraded`, then the crash sequence. When `reconnect.max_retries` attempts
 * have failed: `McpServerDegraded` with a "gave up" reason; the upstream stays in `error` until a
 * manual reconnect.
 *
 * A manual {@link Upstream.close} (announced as `closed` on `lifecycle$`) cancels a recovery in
 * progress; nothing reconnects a closed upstream on its own.
 */
import {
  EMPTY,
  concat,
  defer,
  distinctUntilChanged,
  exhaustMap,
  filter,
  finalize,
  ignoreElements,
  map,
  merge,
  mergeMap,
  of,
  switchMap,
  takeUntil,
  tap,
  catchError,
  asyncScheduler,
  type Observable,
  type SchedulerLike,
} from 'rxjs';
import { resolveResilience } from '../config/resilience.js';
import type { Logger } from '../log/logger.js';
import type { GatewayEventBody } from '../streams/events.js';
import { BackoffExhaustedError, retryWithBackoff, startingAttempt, type RecoveryRecord } from './backoff.js';
import { checkUpstream, healthTicks, type HealthCheckResult, type HealthOutcome } from './health.js';
import type { Upstream } from './upstream.js';

/** What the manager does for a supervisor: publish an event, or rebuild the catalogue after a reconnect. */
export type SupervisorEffect = { readonly kind: 'event'; readonly body: GatewayEventBody } | { readonly kind: 'reconnected'; readonly upstream: Upstream };

export interface SupervisorOptions {
  readonly log: Logger;
  /** Timers of health ticks and backoff; default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** Jitter source in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /** One health check; default {@link checkUpstream}. */
  readonly check?: (upstream: Upstream, timeoutMs: number) => Observable<HealthCheckResult>;
}

/** Why the supervisor starts a recovery. */
interface Trouble {
  readonly reason: string;
  /** The connection is still up and must be dropped first (failed health checks). */
  readonly drop: boolean;
  /** Publish `McpServerStopped` (not for an upstream that never started). */
  readonly announce: boolean;
}

/** Input of the supervision loop: a finished health check, or a reason to recover. */
type Signal =
  | { readonly type: 'health'; readonly outcome: HealthOutcome; readonly threshold: number }
  | { readonly type: 'trouble'; readonly trouble: Trouble };

const event = (body: GatewayEventBody): SupervisorEffect => ({ kind: 'event', body });

/**
 * Supervises `upstream` until unsubscribed (the manager does so before it closes or removes the
 * upstream). Never errors. Settings are read from `upstream.config` at each phase (health period
 * per connection, schedule per recovery). If the upstream is in state `error` when supervision
 * starts (its first connect failed), a recovery starts at once.
 */
export function superviseUpstream(upstream: Upstream, options: SupervisorOptions): Observable<SupervisorEffect> {
  const scheduler = options.scheduler ?? asyncScheduler;
  const check = options.check ?? checkUpstream;
  const log = options.log.child({ upstream: upstream.name });
  const id = upstream.name;
  let lastRecovery: RecoveryRecord | undefined;

  const closed$ = upstream.lifecycle$.pipe(filter((e) => e.kind === 'closed'));

  const health$: Observable<Signal> = upstream.state$.pipe(
    distinctUntilChanged(),
    switchMap((state) => {
      if (state !== 'connected') return EMPTY;
      const r = resolveResilience(upstream.config);
      return healthTicks(() => check(upstream, r.health_check_timeout_ms), r.health_check_interval_ms, scheduler).pipe(
        map((outcome): Signal => ({ type: 'health', outcome, threshold: r.max_consecutive_failures })),
      );
    }),
  );

  const recover = (trouble: Trouble): Observable<SupervisorEffect> => {
    const schedule = resolveResilience(upstream.config).reconnect;
    const startAt = startingAttempt(lastRecovery, scheduler.now(), schedule);
    let connectMs = 0;
    let attempts = 0;
    const attempt = (n: number): Observable<number> =>
      defer(async () => {
        upstream.reconnectAt = undefined;
        if (upstream.state === 'connected') return n;
        const started = scheduler.now();
        attempts++;
        log.info('reconnecting', { attempt: attempts });
        try {
          await upstream.connect();
        } catch (err) {
          log.warn('reconnect attempt failed', { attempt: attempts, error: err });
          throw err;
        }
        connectMs = scheduler.now() - started;
        return n;
      });
    return concat(
      trouble.drop ? defer(() => upstream.drop(trouble.reason)).pipe(ignoreElements()) : EMPTY,
      trouble.announce ? of(event({ event_type: 'McpServerStopped', mcp_server_id: id, reason: trouble.reason })) : EMPTY,
      retryWithBackoff(attempt, schedule, {
        scheduler,
        startAt,
        ...(options.random ? { random: options.random } : {}),
        onWait: (n, delayMs) => {
          upstream.reconnectAt = scheduler.now() + delayMs;
          log.info('reconnect scheduled', { attempt: attempts + 1, schedule_step: n, in_ms: delayMs });
        },
      }).pipe(
        mergeMap((n) => {
          lastRecovery = { nextAttempt: n + 1, at: scheduler.now() };
          return of<SupervisorEffect[]>(
            { kind: 'reconnected', upstream },
            event({
              event_type: 'McpServerStarted',
              mcp_server_id: id,
              mode: upstream.config.connection_type,
              tools_count: upstream.catalogue.tools.length,
              startup_duration_ms: connectMs,
            }),
          );
        }),
        catchError((err: unknown) => {
          const attempts = err instanceof BackoffExhaustedError ? err.attempts : 0;
          const reason = err instanceof Error ? err.message : String(err);
          log.error('reconnect gave up; the upstream stays down until a manual reconnect', { attempts, error: reason });
          return of(event({ event_type: 'McpServerDegraded', mcp_server_id: id, consecutive_failures: attempts, reason }));
        }),
      ),
    ).pipe(
      takeUntil(closed$),
      finalize(() => {
        upstream.reconnectAt = undefined;
      }),
    );
  };

  const signals$: Observable<Signal> = merge(
    defer(() =>
      upstream.state === 'error' ? of<Signal>({ type: 'trouble', trouble: { reason: upstream.lastError ?? 'connect failed', drop: false, announce: false } }) : EMPTY,
    ),
    upstream.lifecycle$.pipe(
      filter((e) => e.kind === 'lost'),
      map((e): Signal => ({ type: 'trouble', trouble: { reason: e.reason, drop: false, announce: true } })),
    ),
    health$,
  );

  // exhaustMap: while a recovery runs, further troubles (a lost connection during a reconnect
  // attempt) are ignored; health results complete at once, so none is ever dropped.
  const supervision$ = signals$.pipe(
    exhaustMap((signal): Observable<SupervisorEffect> => {
      if (signal.type === 'trouble') return recover(signal.trouble);
      const { outcome, threshold } = signal;
      if (outcome.ok) {
        return of(event({ event_type: 'HealthCheckPassed', mcp_server_id: id, duration_ms: outcome.duration_ms, method: outcome.method }));
      }
      const failed = event({
        event_type: 'HealthCheckFailed',
        mcp_server_id: id,
        duration_ms: outcome.duration_ms,
        method: outcome.method,
        consecutive_failures: outcome.consecutive_failures,
        error: outcome.error ?? 'health check failed',
      });
      if (outcome.consecutive_failures < threshold) return of(failed);
      const reason = `${outcome.consecutive_failures} health checks failed in a row (last: ${outcome.error ?? 'failed'})`;
      log.warn('upstream unhealthy; reconnecting', { consecutive_failures: outcome.consecutive_failures, error: outcome.error });
      return concat(
        of(failed, event({ event_type: 'McpServerDegraded', mcp_server_id: id, consecutive_failures: outcome.consecutive_failures, reason })),
        recover({ reason, drop: true, announce: true }),
      );
    }),
  );

  const breaker$ = upstream.breaker.transitions$.pipe(
    tap((t) => log.info('circuit breaker', { from: t.from, to: t.to, ...(t.retryAt !== undefined ? { retry_at: new Date(t.retryAt).toISOString() } : {}) })),
    map((t) =>
      event({
        event_type: 'CircuitBreakerStateChanged',
        mcp_server_id: id,
        old_state: t.from,
        new_state: t.to,
        ...(t.retryAt !== undefined ? { retry_at: new Date(t.retryAt).toISOString() } : {}),
      }),
    ),
  );

  return merge(supervision$, breaker$).pipe(
    catchError((err: unknown) => {
      log.error('supervision failed', { error: err });
      return EMPTY;
    }),
  );
}
