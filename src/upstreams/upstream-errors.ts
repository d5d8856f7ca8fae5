/**
 * The errors an upstream call fails with before or instead of an upstream answer: not connected,
 * cancelled, circuit open, overloaded. Codes come from the registry in `base/errors.ts`.
 */
import { GatewayError } from '../base/errors.js';
import type { UpstreamState } from '../streams/events.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import type { ConcurrencyLimiter } from './limiter.js';

/**
 * UPSTREAM_UNAVAILABLE for a call to an upstream without a connection, naming its state, its last
 * error and the next reconnect attempt (`reconnectAt`, epoch ms) when one is scheduled.
 */
export function notConnectedError(name: string, state: UpstreamState, lastError: string | undefined, reconnectAt: number | undefined): GatewayError {
  const at = reconnectAt;
  const next = at === undefined ? '' : `; reconnecting, next attempt at ${new Date(at).toISOString()} (in ${Math.max(0, at - Date.now())} ms)`;
  return new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${name}" is not connected (state: ${state})${next}`, {
    upstream: name,
    state,
    ...(lastError !== undefined ? { last_error: lastError } : {}),
    ...(at !== undefined ? { retry_at: new Date(at).toISOString() } : {}),
  });
}

/** REQUEST_CANCELLED for `method` to upstream `name`. */
export function cancelledError(name: string, method: string): GatewayError {
  return new GatewayError('REQUEST_CANCELLED', `Request ${method} to upstream "${name}" was cancelled`, { upstream: name });
}

/**
 * CIRCUIT_OPEN for a call the breaker rejected: while open, with its retry time; while half-open
 * with every trial slot taken, with `halfOpenWaitMs` (the call timeout, within which the trials end).
 */
export function circuitOpenError(name: string, method: string, breaker: CircuitBreaker, halfOpenWaitMs: number): GatewayError {
  const now = Date.now();
  const snap = breaker.snapshot;
  if (snap.state === 'open') {
    const wait = Math.max(0, snap.retryAt - now);
    const at = new Date(now + wait).toISOString();
    return new GatewayError(
      'CIRCUIT_OPEN',
      `Circuit breaker for upstream "${name}" is open after ${snap.failures} failed call${snap.failures === 1 ? '' : 's'}; ${method} was not sent. Calls will be retried from ${at} (in ${wait} ms)`,
      { upstream: name, circuit_state: 'open', retry_at: at, retry_after_ms: wait },
    );
  }
  // half_open with every trial slot taken: the trials end (answer or timeout) within the call timeout
  const wait = halfOpenWaitMs;
  const at = new Date(now + wait).toISOString();
  return new GatewayError(
    'CIRCUIT_OPEN',
    `Circuit breaker for upstream "${name}" is half-open and its trial call is in flight; ${method} was not sent. Retry when it ends (by ${at} at the latest)`,
    { upstream: name, circuit_state: 'half_open', retry_at: at, retry_after_ms: wait },
  );
}

/** UPSTREAM_OVERLOADED for a call that found every concurrency slot and the queue taken. */
export function overloadedError<W>(name: string, method: string, limiter: ConcurrencyLimiter<W>): GatewayError {
  const { maxActive, maxQueued } = limiter.limits;
  return new GatewayError(
    'UPSTREAM_OVERLOADED',
    `Upstream "${name}" is overloaded: ${limiter.inFlight} calls in flight and ${limiter.queued} queued (max_concurrent_calls ${maxActive}, max_queued_calls ${maxQueued}); ${method} was not sent`,
    { upstream: name, in_flight: limiter.inFlight, queued: limiter.queued, max_concurrent_calls: maxActive, max_queued_calls: maxQueued },
  );
}
