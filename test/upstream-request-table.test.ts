/**
 * The upstream request table on its own: ids, deadlines (the sweep), progress restarting a
 * deadline, cancellation, the queue for a concurrency slot, and failing everything when the
 * connection goes. Real parts: the SDK's in-memory transport pair (the far end plays the upstream
 * and records what it receives), the real circuit breaker and concurrency limiter; time is vitest's
 * fake clock, so deadlines are exact and nothing sleeps.
 */
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GatewayError, UpstreamRpcError } from '../src/base/errors.js';
import { createLogger } from '../src/log/logger.js';
import { CircuitBreaker } from '../src/upstreams/circuit-breaker.js';
import { ConcurrencyLimiter } from '../src/upstreams/limiter.js';
import { RequestTable, type QueuedCall } from '../src/upstreams/upstream-requests.js';
import { cancelScope, type CancelHook, type JsonObject, type RequestOptions } from '../src/upstreams/upstream-types.js';

interface Rig {
  readonly table: RequestTable;
  readonly breaker: CircuitBreaker;
  readonly limiter: ConcurrencyLimiter<QueuedCall>;
  /** What the upstream end received, in order. */
  readonly received: JSONRPCMessage[];
  /** Sends a call the way `Upstream.request` does: a slot if free, else the queue. */
  call(method: string, options?: RequestOptions): Promise<JsonObject>;
}

async function rig(maxActive = 2, maxQueued = 1): Promise<Rig> {
  const [gatewaySide, upstreamSide] = InMemoryTransport.createLinkedPair();
  const received: JSONRPCMessage[] = [];
  upstreamSide.onmessage = (m) => received.push(m);
  await upstreamSide.start();
  await gatewaySide.start();
  const breaker = new CircuitBreaker({ failure_threshold: 2, open_ms: 10_000, half_open_max_calls: 1 });
  const limiter = new ConcurrencyLimiter<QueuedCall>(maxActive, maxQueued);
  const table = new RequestTable({
    name: 'up',
    breaker,
    limiter,
    log: createLogger('silent'),
    transport: () => gatewaySide,
    defaultTimeoutMs: () => 1000,
    notConnectedError: () => new GatewayError('UPSTREAM_UNAVAILABLE', 'not connected'),
  });
  const call = (method: string, options: RequestOptions = {}): Promise<JsonObject> =>
    limiter.tryAcquire() ? new Promise((resolve, reject) => table.dispatchTo(gatewaySide, method, {}, options, true, false, { resolve, reject }, undefined)) : table.enqueue(method, {}, options, false);
  return { table, breaker, limiter, received, call };
}

/** The outcome of `p` once settled, without awaiting it now. */
function track<T>(p: Promise<T>): { readonly state: () => 'pending' | 'resolved' | 'rejected'; readonly value: () => T | undefined; readonly error: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let value: T | undefined;
  let error: unknown;
  p.then(
    (v) => {
      state = 'resolved';
      value = v;
    },
    (e: unknown) => {
      state = 'rejected';
      error = e;
    },
  );
  return { state: () => state, value: () => value, error: () => error };
}

const idOf = (m: JSONRPCMessage | undefined): unknown => (m as { id?: unknown } | undefined)?.id;
const cancels = (r: Rig): unknown[] => r.received.filter((m) => 'method' in m && m.method === 'notifications/cancelled').map((m) => (m as { params?: unknown }).params);

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('RequestTable', () => {
  it('ids are t1, t2, ... and each answer settles its own request, once', async () => {
    const r = await rig();
    const a = track(r.call('tools/call'));
    const b = track(r.call('tools/list'));
    await vi.advanceTimersByTimeAsync(0);
    expect(r.received.map(idOf)).toEqual(['t1', 't2']);
    expect(r.table.inflight).toBe(2);
    expect(r.table.settle('t2', { tools: [] }, undefined)).toBe(true);
    expect(r.table.settle('t2', { tools: [] }, undefined)).toBe(false);
    expect(r.table.settle('t9', {}, undefined)).toBe(false);
    expect(r.table.settle('t1', undefined, { code: -32602, message: 'bad arguments' })).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect([a.state(), b.state(), b.value()]).toEqual(['rejected', 'resolved', { tools: [] }]);
    // the upstream's JSON-RPC error passes through as it is
    expect(a.error()).toBeInstanceOf(UpstreamRpcError);
    expect((a.error() as UpstreamRpcError).rpc).toEqual({ code: -32602, message: 'bad arguments' });
    // an error reply is an answer: the breaker saw no failure; both slots are free again
    expect(r.breaker.snapshot).toEqual({ state: 'closed', failures: 0 });
    expect([r.table.inflight, r.limiter.inFlight]).toEqual([0, 0]);
  });

  it('a request past its deadline fails with UPSTREAM_TIMEOUT at the next sweep; the upstream is told to cancel it', async () => {
    const r = await rig();
    const a = track(r.call('tools/call', { timeout: 250 }));
    await vi.advanceTimersByTimeAsync(200);
    expect(a.state()).toBe('pending');
    // sweeps run every 100 ms: the one at 300 ms is the first after the 250 ms deadline
    await vi.advanceTimersByTimeAsync(100);
    expect(a.state()).toBe('rejected');
    expect(a.error()).toMatchObject({ code: 'UPSTREAM_TIMEOUT', details: { timeout_ms: 250, method: 'tools/call' } });
    expect(cancels(r)).toEqual([{ requestId: 't1', reason: 'timed out after 250 ms' }]);
    expect(r.breaker.snapshot).toEqual({ state: 'closed', failures: 1 });
    // a late answer is not ours any more
    expect(r.table.settle('t1', {}, undefined)).toBe(false);
  });

  it('progress reaches the caller without the token and restarts the deadline', async () => {
    const r = await rig();
    const seen: unknown[] = [];
    const a = track(r.call('tools/call', { timeout: 250, onprogress: (p) => seen.push(p) }));
    await vi.advanceTimersByTimeAsync(0);
    expect((r.received[0] as { params?: { _meta?: unknown } }).params?._meta).toEqual({ progressToken: 't1' });
    await vi.advanceTimersByTimeAsync(200);
    expect(r.table.progress({ progressToken: 't1', progress: 1, total: 3 })).toBe(true);
    expect(r.table.progress({ progressToken: 'other', progress: 1 })).toBe(false);
    expect(seen).toEqual([{ progress: 1, total: 3 }]);
    // deadline now 200 + 250 = 450: alive at 400, timed out by the sweep at 500
    await vi.advanceTimersByTimeAsync(200);
    expect(a.state()).toBe('pending');
    await vi.advanceTimersByTimeAsync(100);
    expect(a.state()).toBe('rejected');
  });

  it('cancel: the caller gets the cancellation, the upstream notifications/cancelled, the slot goes to the queued call', async () => {
    const r = await rig(1, 1);
    const scope: CancelHook = { cancelled: false, onCancel: undefined };
    const a = track(r.call('tools/call', { cancel: scope }));
    const b = track(r.call('tools/list'));
    await vi.advanceTimersByTimeAsync(0);
    expect([r.received.map(idOf), r.limiter.queued]).toEqual([['t1'], 1]);
    cancelScope(scope, 'client went away');
    await vi.advanceTimersByTimeAsync(0);
    expect(a.state()).toBe('rejected');
    expect(cancels(r)).toEqual([{ requestId: 't1', reason: 'client went away' }]);
    // the queued call started in the freed slot
    expect(r.received.map(idOf).filter((id) => id !== undefined)).toEqual(['t1', 't2']);
    expect(r.breaker.snapshot).toEqual({ state: 'closed', failures: 0 });
    r.table.settle('t2', { tools: [] }, undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(b.state()).toBe('resolved');
  });

  it('the slot queue: full → UPSTREAM_OVERLOADED; a queued call past its deadline fails unsent; a cancelled one leaves the queue', async () => {
    const r = await rig(1, 1);
    const a = track(r.call('first'));
    const b = track(r.call('queued', { timeout: 150 }));
    const c = track(r.call('third'));
    await vi.advanceTimersByTimeAsync(0);
    expect(c.state()).toBe('rejected');
    expect(c.error()).toMatchObject({ code: 'UPSTREAM_OVERLOADED' });
    await vi.advanceTimersByTimeAsync(200);
    expect(b.state()).toBe('rejected');
    expect(b.error()).toMatchObject({ code: 'UPSTREAM_TIMEOUT', details: { queued: true } });
    expect(r.received.map(idOf)).toEqual(['t1']);
    const scope: CancelHook = { cancelled: false, onCancel: undefined };
    const d = track(r.call('queued too', { cancel: scope }));
    cancelScope(scope, 'never mind');
    await vi.advanceTimersByTimeAsync(0);
    expect([d.state(), r.limiter.queued]).toEqual(['rejected', 0]);
    expect(a.state()).toBe('pending');
  });

  it('failPending: every request in flight and every queued call fails with UPSTREAM_UNAVAILABLE; the breaker is not charged', async () => {
    const r = await rig(1, 1);
    const a = track(r.call('in flight'));
    const b = track(r.call('queued'));
    await vi.advanceTimersByTimeAsync(0);
    r.table.failPending('closed');
    await vi.advanceTimersByTimeAsync(0);
    expect([a.state(), b.state()]).toEqual(['rejected', 'rejected']);
    expect(a.error()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: 'Upstream "up" closed during in flight' });
    expect(b.error()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: 'Upstream "up" closed while queued was queued' });
    expect(r.breaker.snapshot).toEqual({ state: 'closed', failures: 0 });
    expect([r.table.inflight, r.limiter.inFlight, r.limiter.queued]).toEqual([0, 0, 0]);
    // nothing left: no sweep timer keeps running
    expect(vi.getTimerCount()).toBe(0);
  });
});
