/**
 * The call path of one upstream against the real in-process demo server: the
 * per-upstream concurrency limit and its bounded queue ("upstream overloaded"), queued calls that
 * time out or are cancelled, the circuit breaker's fast-fail error naming the upstream and when it
 * will be retried, and control requests (health checks) that bypass both.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/load.js';
import type { McpClientConfig } from '../src/config/schema.js';
import { GatewayError, toJsonRpcError } from '../src/base/errors.js';
import { createLogger } from '../src/log/logger.js';
import { Upstream, cancelScope, type CancelScope, type UpstreamLifecycle } from '../src/upstreams/upstream.js';

const log = createLogger('silent');
const live: Upstream[] = [];

async function demo(extra: Record<string, unknown>): Promise<Upstream> {
  const config = resolveConfig({ mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo', ...extra }] }, 'test').mcp_clients[0] as McpClientConfig;
  const u = new Upstream(config, log, async () => ({}));
  live.push(u);
  await u.connect();
  return u;
}

afterEach(async () => {
  for (const u of live.splice(0)) {
    await u.close('test over');
    u.dispose();
  }
});

function sleep(u: Upstream, ms: number, cancel?: CancelScope): Promise<Record<string, unknown>> {
  return u.request('tools/call', { name: 'sleep', arguments: { ms, steps: 1 } }, cancel ? { cancel } : {});
}

function echo(u: Upstream, message: string, cancel?: CancelScope): Promise<Record<string, unknown>> {
  return u.request('tools/call', { name: 'echo', arguments: { message } }, cancel ? { cancel } : {});
}

/**
 * Resolves `'first'` when `p` settles before `other`, else `'other'`: "fails fast" as an order of
 * events (before a call already running ends), not as a wall-clock limit.
 */
function settlesFirst(p: Promise<unknown>, other: Promise<unknown>): Promise<'first' | 'other'> {
  const settled = (q: Promise<unknown>): Promise<void> =>
    q.then(
      () => undefined,
      () => undefined,
    );
  return Promise.race([settled(p).then(() => 'first' as const), settled(other).then(() => 'other' as const)]);
}

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(err)}`);
  return err;
}

describe('concurrency limit per upstream', () => {
  it('queues beyond max_concurrent_calls and fails fast with UPSTREAM_OVERLOADED when the queue is full', async () => {
    const u = await demo({ max_concurrent_calls: 1, max_queued_calls: 1 });
    const first = sleep(u, 300);
    const queued = echo(u, 'queued');
    const overflow = echo(u, 'one too many');
    // refused at once: before the call holding the only slot (300 ms of work) ends
    expect(await settlesFirst(overflow, first)).toBe('first');
    const err = await rejection(overflow);
    expect(err.code).toBe('UPSTREAM_OVERLOADED');
    expect(err.message).toMatch(/^Upstream "demo" is overloaded: 1 calls in flight and 1 queued \(max_concurrent_calls 1, max_queued_calls 1\); tools\/call was not sent$/);
    expect(toJsonRpcError(err)).toMatchObject({ code: -32006, data: { code: 'UPSTREAM_OVERLOADED', upstream: 'demo' } });
    expect(u.inflight).toBe(1);
    expect(u.queued).toBe(1);
    // the queued call runs when the slot frees
    expect(JSON.stringify(await first)).toContain('slept 300 ms');
    expect(JSON.stringify(await queued)).toContain('Echo: queued');
    expect(u.inflight).toBe(0);
    expect(u.queued).toBe(0);
  });

  it('with max_queued_calls 0 fails fast as soon as every slot is taken', async () => {
    const u = await demo({ max_concurrent_calls: 2, max_queued_calls: 0 });
    const a = sleep(u, 100);
    const b = sleep(u, 100);
    expect((await rejection(echo(u, 'x'))).code).toBe('UPSTREAM_OVERLOADED');
    await Promise.all([a, b]);
    expect(JSON.stringify(await echo(u, 'after'))).toContain('Echo: after');
  });

  it('a queued call that gets no slot within request_timeout_ms fails with UPSTREAM_TIMEOUT and is never sent', async () => {
    const u = await demo({ max_concurrent_calls: 1, max_queued_calls: 4, request_timeout_ms: 250 });
    const holder = sleep(u, 5000);
    const waiting = echo(u, 'late');
    const err = await rejection(waiting);
    expect(err.code).toBe('UPSTREAM_TIMEOUT');
    expect(err.message).toBe('Upstream "demo" had no free slot for tools/call within 250 ms (it was queued, not sent)');
    expect((await rejection(holder)).code).toBe('UPSTREAM_TIMEOUT');
    expect(u.queued).toBe(0);
    expect(u.inflight).toBe(0);
  });

  it('a queued call cancelled by its caller leaves the queue; the next one gets the slot', async () => {
    const u = await demo({ max_concurrent_calls: 1, max_queued_calls: 4 });
    const holder = sleep(u, 200);
    const scope: CancelScope = { cancelled: false, onCancel: undefined };
    const cancelled = echo(u, 'never', scope);
    const next = echo(u, 'next');
    expect(u.queued).toBe(2);
    cancelScope(scope, 'caller gave up');
    expect((await rejection(cancelled)).code).toBe('REQUEST_CANCELLED');
    expect(u.queued).toBe(1);
    await holder;
    expect(JSON.stringify(await next)).toContain('Echo: next');
  });

  it('health checks (control requests) bypass a full limit', async () => {
    const u = await demo({ max_concurrent_calls: 1, max_queued_calls: 0 });
    const holder = sleep(u, 200);
    expect((await rejection(echo(u, 'x'))).code).toBe('UPSTREAM_OVERLOADED');
    expect(await u.request('ping', {}, { control: true, timeout: 1000 })).toEqual({});
    await holder;
  });
});

describe('circuit breaker on the call path', () => {
  it('opens after failure_threshold timeouts and then fails at once naming the upstream and the retry time', async () => {
    const u = await demo({ request_timeout_ms: 150, circuit_breaker: { failure_threshold: 2, open_ms: 60_000 } });
    const transitions: string[] = [];
    const sub = u.breaker.transitions$.subscribe((t) => transitions.push(`${t.from}->${t.to}`));
    try {
      expect((await rejection(sleep(u, 5000))).code).toBe('UPSTREAM_TIMEOUT');
      expect(u.breaker.state).toBe('closed');
      expect((await rejection(sleep(u, 5000))).code).toBe('UPSTREAM_TIMEOUT');
      expect(u.breaker.state).toBe('open');
      expect(transitions).toEqual(['closed->open']);
      // a control call (it bypasses the breaker) that takes 300 ms: the refused call must not wait
      // for the upstream, so it settles first
      const running = u.request('tools/call', { name: 'sleep', arguments: { ms: 300, steps: 1 } }, { control: true, timeout: 5000 });
      const fastFail = echo(u, 'fast fail');
      expect(await settlesFirst(fastFail, running)).toBe('first');
      const err = await rejection(fastFail);
      expect(err.code).toBe('CIRCUIT_OPEN');
      expect(err.message).toMatch(
        /^Circuit breaker for upstream "demo" is open after 2 failed calls; tools\/call was not sent\. Calls will be retried from \d{4}-\d\d-\d\dT[\d:.]+Z \(in \d+ ms\)$/,
      );
      const details = err.details ?? {};
      const retryAt = Date.parse(String(details['retry_at']));
      expect(retryAt).toBeGreaterThan(Date.now() + 55_000);
      expect(details).toMatchObject({ upstream: 'demo', circuit_state: 'open' });
      expect(toJsonRpcError(err).code).toBe(-32005);
      expect(err.status).toBe(503);
      // control requests still go through
      expect(await u.request('ping', {}, { control: true })).toEqual({});
    } finally {
      sub.unsubscribe();
    }
  });

  it('a JSON-RPC error reply is an answer, not a failure', async () => {
    const u = await demo({ circuit_breaker: { failure_threshold: 1 } });
    await expect(u.request('tools/call', { name: 'no-such-tool', arguments: {} })).resolves.toMatchObject({ isError: true });
    await expect(u.request('no/such/method', {})).rejects.toThrow(/not found/i);
    expect(u.breaker.state).toBe('closed');
  });

  it('a manual close is announced as closed (no reconnect), and fails calls naming the upstream', async () => {
    const u = await demo({});
    const seen: UpstreamLifecycle[] = [];
    const sub = u.lifecycle$.subscribe((e) => seen.push(e));
    const inflight = sleep(u, 5000);
    await u.close('maintenance');
    const err = await rejection(inflight);
    expect(err.message).toBe('Upstream "demo" was closed during tools/call');
    expect(seen).toEqual([{ kind: 'closed', reason: 'maintenance' }]);
    expect((await rejection(echo(u, 'x'))).message).toMatch(/^Upstream "demo" is not connected \(state: disconnected\)$/);
    sub.unsubscribe();
  });
});
