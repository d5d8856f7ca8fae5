/**
 * The pure parts of upstream resilience, in virtual time: the circuit breaker
 * (closed → open → half_open → closed) and the reconnect backoff schedule with RxJS marbles,
 * health ticks that never pile up, and the concurrency limiter's bounds (fast-check).
 */
import { describe, expect, it } from 'vitest';
import { TestScheduler } from 'rxjs/testing';
import { EMPTY, catchError, ignoreElements, map, merge, mergeMap, of, take, type Observable } from 'rxjs';
import fc from 'fast-check';
import { CircuitBreaker, CLOSED, breakerAdmit, breakerStep, type BreakerSettings } from '../src/upstreams/circuit-breaker.js';
import { BackoffExhaustedError, JITTER, backoffDelay, retryWithBackoff, startingAttempt } from '../src/upstreams/backoff.js';
import { healthTicks, type HealthCheckResult } from '../src/upstreams/health.js';
import { ConcurrencyLimiter } from '../src/upstreams/limiter.js';

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/**
 * Drives a breaker from input marbles and returns one stream of what it says:
 * inputs `a` admit, `s`/`f` success/failure of a normal call, `S`/`F`/`x` success/failure/release of
 * a trial call; outputs `P`/`T`/`R` for pass/trial/reject, and `o`/`h`/`c` when it becomes
 * open/half_open/closed.
 */
function drive(breaker: CircuitBreaker, inputs: Observable<string>): Observable<string> {
  const said = inputs.pipe(
    mergeMap((i) => {
      switch (i) {
        case 'a': {
          const admission = breaker.admit();
          return of(admission === 'pass' ? 'P' : admission === 'trial' ? 'T' : 'R');
        }
        case 's':
        case 'f':
          breaker.record(i === 's' ? 'success' : 'failure', false);
          return EMPTY;
        case 'S':
        case 'F':
        case 'x':
          breaker.record(i === 'S' ? 'success' : i === 'F' ? 'failure' : 'release', true);
          return EMPTY;
        default:
          throw new Error(`unknown input ${i}`);
      }
    }),
  );
  const transitions = breaker.transitions$.pipe(map((t) => ({ open: 'o', half_open: 'h', closed: 'c' })[t.to]));
  return merge(transitions, said);
}

describe('circuit breaker (marbles)', () => {
  const settings: BreakerSettings = { failure_threshold: 2, open_ms: 10, half_open_max_calls: 1 };

  it('opens after failure_threshold failures in a row, fails fast, half-opens after open_ms, closes on a trial success', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const breaker = new CircuitBreaker(settings, ts);
      //                 f@0 f@2 (opens, retry at 12) a@4 rejected; h@12; trial a@13, a@14 rejected, S@15 closes, a@16 passes
      const inputs = hot('f-f-a--------aaSa');
      const expected = '  --o-R-------hTRcP';
      expectObservable(drive(breaker, inputs)).toBe(expected);
    });
  });

  it('a success in between resets the failure count', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const breaker = new CircuitBreaker(settings, ts);
      const inputs = hot('f-s-f-a-f-a');
      const expected = '  ------P-o-R-------h';
      expectObservable(drive(breaker, inputs)).toBe(expected);
    });
  });

  it('a trial failure opens it again for another open_ms', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const breaker = new CircuitBreaker({ ...settings, failure_threshold: 1, open_ms: 5 }, ts);
      const inputs = hot('f-----aF');
      const expected = '  o----hTo----h';
      expectObservable(drive(breaker, inputs)).toBe(expected);
    });
  });

  it('lets half_open_max_calls trials through at once; a released trial frees its slot', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const breaker = new CircuitBreaker({ failure_threshold: 1, open_ms: 3, half_open_max_calls: 2 }, ts);
      const inputs = hot('f---aaax-a');
      const expected = '  o--hTTR--T';
      expectObservable(drive(breaker, inputs)).toBe(expected);
    });
  });

  it('ignores outcomes of calls admitted in another state', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const breaker = new CircuitBreaker({ failure_threshold: 1, open_ms: 3, half_open_max_calls: 1 }, ts);
      // open: a late success changes nothing; half_open: a normal call's failure and success change nothing;
      // closed again: a stale trial failure changes nothing
      const inputs = hot('fs--fsaS-Fa');
      const expected = '  o--h--Tc--P';
      expectObservable(drive(breaker, inputs)).toBe(expected);
    });
  });

  it('reports retryAt and the failure count when it opens', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const breaker = new CircuitBreaker(settings, ts);
      const inputs = hot('--f-f');
      const fail = inputs.pipe(
        mergeMap(() => {
          breaker.record('failure', false);
          return EMPTY;
        }),
      );
      expectObservable(merge(fail, breaker.transitions$)).toBe('----o---------h', {
        o: { from: 'closed', to: 'open', retryAt: 14, failures: 2 },
        h: { from: 'open', to: 'half_open' },
      });
    });
  });

  it('step and admit are pure: the same inputs give the same snapshots', () => {
    const s1 = breakerStep(CLOSED, { type: 'failure', trial: false }, settings, 0);
    expect(s1).toEqual({ state: 'closed', failures: 1 });
    const s2 = breakerStep(s1, { type: 'failure', trial: false }, settings, 5);
    expect(s2).toEqual({ state: 'open', retryAt: 15, failures: 2 });
    expect(breakerAdmit(s2, settings, 14)).toEqual(['reject', s2]);
    // past retryAt an open breaker admits a trial even before its timer ran
    expect(breakerAdmit(s2, settings, 15)).toEqual(['trial', { state: 'half_open', trials: 1 }]);
    expect(breakerStep(CLOSED, { type: 'success', trial: false }, settings, 0)).toBe(CLOSED);
  });
});

describe('reconnect backoff (marbles)', () => {
  const schedule = { initial_ms: 10, max_ms: 40, max_retries: 5 };
  const noJitter = (): number => 0.5;

  it('waits initial_ms doubling up to max_ms before each attempt, then gives up after max_retries', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const failing = cold('-#', undefined, new Error('refused'));
      const result = retryWithBackoff(() => failing, schedule, { scheduler: ts, random: noJitter }).pipe(
        catchError((err: unknown) => of(err instanceof BackoffExhaustedError ? `gave up after ${err.attempts}` : 'other')),
      );
      // waits 10, 20, 40, 40, 40 before attempts at 10, 31, 72, 113, 154 (each fails one frame later)
      expectObservable(result).toBe('155ms (g|)', { g: 'gave up after 5' });
      expectSubscriptions(failing.subscriptions).toBe(['10ms ^!', '31ms ^!', '72ms ^!', '113ms ^!', '154ms ^!']);
    });
  });

  it('emits the first successful attempt and completes; the attempt index is passed on', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const attempt = (n: number): Observable<string> => (n < 2 ? cold('-#') : cold('-(x|)', { x: `ok on attempt ${n}` }));
      expectObservable(retryWithBackoff(attempt, { ...schedule, max_retries: undefined }, { scheduler: ts, random: noJitter })).toBe('73ms (x|)', {
        x: 'ok on attempt 2',
      });
    });
  });

  it('starts later in the schedule when told to (crash loop), and never gives up without max_retries', () => {
    const ts = scheduler();
    const waits: number[] = [];
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const failing = cold('-#');
      const result = retryWithBackoff(() => failing, { ...schedule, max_retries: undefined }, {
        scheduler: ts,
        random: noJitter,
        startAt: 2,
        onWait: (_n, ms) => waits.push(ms),
      }).pipe(take(1));
      expectObservable(result, '^ 200ms !').toBe('');
      expectSubscriptions(failing.subscriptions).toBe(['40ms ^!', '81ms ^!', '122ms ^!', '163ms ^!']);
    });
    expect(waits).toEqual([40, 40, 40, 40, 40]);
  });

  it('with max_retries 0 gives up at once without an attempt', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const attempt = cold('(x|)');
      const result = retryWithBackoff(() => attempt, { ...schedule, max_retries: 0 }, { scheduler: ts }).pipe(
        ignoreElements(),
        catchError(() => of('g')),
      );
      expectObservable(result).toBe('(g|)');
      expectSubscriptions(attempt.subscriptions).toBe([]);
    });
  });

  it('jitter stays within ±20% of the nominal delay and never exceeds max_ms', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 10 }), (attempt, r, initial, factor) => {
        const s = { initial_ms: initial, max_ms: initial * factor, max_retries: undefined };
        const nominal = Math.min(s.max_ms, s.initial_ms * 2 ** attempt);
        const d = backoffDelay(attempt, s, () => r);
        expect(d).toBeGreaterThanOrEqual(Math.floor(nominal * (1 - JITTER)));
        expect(d).toBeLessThanOrEqual(Math.min(s.max_ms, Math.ceil(nominal * (1 + JITTER))));
      }),
    );
    expect(backoffDelay(0, { initial_ms: 1000, max_ms: 30_000, max_retries: undefined }, () => 0.5)).toBe(1000);
    expect(backoffDelay(5, { initial_ms: 1000, max_ms: 30_000, max_retries: undefined }, () => 0.5)).toBe(30_000);
  });

  it('a failure soon after the last recovery continues the schedule; a later one starts over', () => {
    const s = { initial_ms: 1000, max_ms: 30_000, max_retries: undefined };
    expect(startingAttempt(undefined, 0, s)).toBe(0);
    expect(startingAttempt({ nextAttempt: 3, at: 1000 }, 20_000, s)).toBe(3);
    expect(startingAttempt({ nextAttempt: 3, at: 1000 }, 31_000, s)).toBe(0);
  });
});

describe('health ticks (marbles)', () => {
  const ok: HealthCheckResult = { ok: true, method: 'ping', duration_ms: 1 };
  const bad: HealthCheckResult = { ok: false, method: 'ping', duration_ms: 1, error: 'timed out' };

  it('drops ticks while a check is in flight: checks never pile up', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      // ticks every 2; each check takes 3: the ticks at 4, 8, ... find one in flight
      const check = cold('---(a|)', { a: ok });
      const outcomes = healthTicks(() => check, 2, ts).pipe(
        take(3),
        map((o) => o.consecutive_failures),
      );
      expectObservable(outcomes).toBe('-----a---b---(c|)', { a: 0, b: 0, c: 0 });
      expectSubscriptions(check.subscriptions).toBe(['--^--!', '------^--!', '----------^--!']);
    });
  });

  it('counts failures in a row; a pass resets the count', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const results = [bad, bad, ok, bad];
      let i = 0;
      const outcomes = healthTicks(() => cold('(r|)', { r: results[i++] ?? ok }), 3, ts).pipe(
        take(4),
        map((o) => o.consecutive_failures),
      );
      expectObservable(outcomes).toBe('---a--b--c--(d|)', { a: 1, b: 2, c: 0, d: 1 });
    });
  });
});

describe('concurrency limiter', () => {
  it('hands a released slot to the first waiter; fails fast when the queue is full', () => {
    const l = new ConcurrencyLimiter<string>(2, 1);
    expect(l.tryAcquire()).toBe(true);
    expect(l.tryAcquire()).toBe(true);
    expect(l.tryAcquire()).toBe(false);
    expect(l.enqueue('w1')).toBe(true);
    expect(l.enqueue('w2')).toBe(false);
    expect(l.release()).toBe('w1');
    expect(l.inFlight).toBe(2);
    expect(l.release()).toBeUndefined();
    expect(l.inFlight).toBe(1);
    // waiters go first: no overtaking while someone is queued
    expect(l.tryAcquire()).toBe(true);
    expect(l.enqueue('w3')).toBe(true);
    expect(l.remove('w3')).toBe(true);
    expect(l.remove('w3')).toBe(false);
    expect(l.queued).toBe(0);
  });

  it('never exceeds its bounds and serves waiters in order (property)', () => {
    type Op = { kind: 'call' } | { kind: 'done' } | { kind: 'cancel' };
    const op = fc.oneof(fc.constant<Op>({ kind: 'call' }), fc.constant<Op>({ kind: 'done' }), fc.constant<Op>({ kind: 'cancel' }));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 5 }), fc.array(op, { maxLength: 200 }), (maxActive, maxQueued, ops) => {
        const l = new ConcurrencyLimiter<number>(maxActive, maxQueued);
        let next = 0;
        let running = 0;
        const started: number[] = [];
        const enqueued: number[] = [];
        const cancelled = new Set<number>();
        for (const o of ops) {
          if (o.kind === 'call') {
            const id = next++;
            if (l.tryAcquire()) {
              running++;
              started.push(id);
            } else if (l.enqueue(id)) {
              enqueued.push(id);
            }
          } else if (o.kind === 'done' && running > 0) {
            const w = l.release();
            if (w === undefined) running--;
            else started.push(w);
          } else if (o.kind === 'cancel') {
            const victim = enqueued.find((id) => !cancelled.has(id) && !started.includes(id));
            if (victim !== undefined && l.remove(victim)) cancelled.add(victim);
          }
          expect(l.inFlight).toBe(running);
          expect(running).toBeLessThanOrEqual(maxActive);
          expect(l.queued).toBeLessThanOrEqual(maxQueued);
        }
        // queued calls started in the order they were queued
        const fromQueue = started.filter((id) => enqueued.includes(id));
        expect(fromQueue).toEqual([...fromQueue].sort((a, b) => a - b));
      }),
    );
  });
});
