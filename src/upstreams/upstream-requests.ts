/**
 * The gateway's own JSON-RPC request table for one upstream connection: ids, deadlines, progress,
 * cancel, the timeout sweep, and the queue for a concurrency slot. Requests it sends bypass the
 * SDK Client's request machinery (no per-call schema validation); `Upstream` takes their
 * responses and progress off the transport and hands them to {@link RequestTable.settle} and
 * {@link RequestTable.progress}.
 *
 * Cancellation follows MCP `notifications/cancelled`:
 * https://modelcontextprotocol.io/specification/2025-06-18/basic/utilities/cancellation
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCRequest, Progress } from '@modelcontextprotocol/sdk/types.js';
import { GatewayError, UpstreamRpcError } from '../base/errors.js';
import type { Logger } from '../log/logger.js';
import type { CallOutcome, CircuitBreaker } from './circuit-breaker.js';
import { sessionEraParams, speaksModern, withCallerCapabilities } from './era-http-transport.js';
import type { ConcurrencyLimiter } from './limiter.js';
import { cancelledError, overloadedError } from './upstream-errors.js';
import { serializable } from './upstream-failure.js';
import { POST_MESSAGE, canPost, type CancelHook, type Completion, type JsonObject, type RequestOptions } from './upstream-types.js';
import { RegistryMap } from '../base/registry.js';

/** A request of ours awaiting the upstream's response. */
interface PendingRequest {
  readonly id: string;
  readonly method: string;
  /** Where the outcome goes (called once). */
  readonly done: Completion<JsonObject>;
  readonly timeoutMs: number;
  /** Epoch ms after which the request times out. */
  deadline: number;
  readonly onprogress: ((p: Progress) => void) | undefined;
  readonly scope: CancelHook | undefined;
  /** Holds a concurrency slot and reports to the circuit breaker (not a control request). */
  readonly guarded: boolean;
  /** Admitted as a half-open trial call. */
  readonly trial: boolean;
}

/** A call waiting for a concurrency slot. */
export interface QueuedCall {
  readonly method: string;
  readonly timeoutMs: number;
  /** Epoch ms; the wait counts towards the call's timeout. */
  readonly deadline: number;
  /** Starts the call; it holds the slot that was released to it. */
  readonly start: () => void;
  /** Rejects it while queued (no slot held), reporting `outcome` to the breaker. */
  readonly fail: (err: Error, outcome: CallOutcome) => void;
}

/** How often requests in flight are checked for timeouts, ms. */
const TIMEOUT_SWEEP_MS = 100;

/** What the table needs of the upstream that owns it. */
export interface RequestTableHost {
  readonly name: string;
  readonly breaker: CircuitBreaker;
  readonly limiter: ConcurrencyLimiter<QueuedCall>;
  readonly log: Logger;
  /** The live transport; undefined while not connected. */
  transport(): Transport | undefined;
  /** The timeout of a call that names none, ms (from the client config). */
  defaultTimeoutMs(): number;
  /** The error for a call that finds no connection. */
  notConnectedError(): GatewayError;
}

/** Requests sent to one upstream and calls queued for a slot; owned by one `Upstream`. */
export class RequestTable {
  /**
   * Requests in flight, by id. Their ids (`t1`, `t2`, ...) never collide with the SDK Client's
   * numeric ids; their responses and progress are taken off the transport before the SDK sees them.
   */
  /** Requests in flight (a RegistryMap, not a Map: see base/registry.ts). */
  private readonly pending = new RegistryMap<string, PendingRequest>();
  private nextRequestId = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Calls sent and not yet answered. */
  inflight = 0;

  constructor(private readonly host: RequestTableHost) {}

  /** True for an id of the form this table gives its requests (`t` and digits), in flight or not. */
  static owns(id: string): boolean {
    return /^t[0-9]+$/.test(id);
  }

  /**
   * Registers a request under a fresh id and sends it (the caller holds a slot when `guarded`);
   * the outcome goes to `done`: no Promise, and no function per call besides the cancel hook of a
   * call that can be cancelled.
   */
  dispatchTo(
    transport: Transport,
    method: string,
    params: JsonObject,
    options: RequestOptions,
    guarded: boolean,
    trial: boolean,
    done: Completion<JsonObject>,
    deadline: number | undefined,
  ): void {
    const id = `t${++this.nextRequestId}`;
    const timeoutMs = options.timeout ?? this.host.defaultTimeoutMs();
    const scope = options.cancel;
    // the 2026-07-28 request fields travel only to an upstream that speaks that revision
    let sent = speaksModern(transport) ? withCallerCapabilities(params, options.clientCapabilities) : sessionEraParams(params);
    if (options.onprogress) sent = { ...sent, _meta: { ...((sent['_meta'] as JsonObject | undefined) ?? {}), progressToken: id } };
    const p: PendingRequest = {
      id,
      method,
      done,
      timeoutMs,
      deadline: deadline ?? Date.now() + timeoutMs,
      onprogress: options.onprogress,
      scope,
      guarded,
      trial,
    };
    this.pending.set(id, p);
    this.inflight++;
    if (scope) {
      scope.onCancel = (reason) => {
        if (this.pending.get(id) !== p) return;
        this.finish(id, p, 'release');
        this.sendCancel(id, reason);
        done.reject(cancelledError(this.host.name, method));
      };
    }
    this.sweepTimer ??= setInterval(this.sweep, TIMEOUT_SWEEP_MS);
    const message: JSONRPCRequest = { jsonrpc: '2.0', id, method, params: sent };
    options.onDispatch?.();
    let sending: Promise<void> | undefined;
    try {
      sending = canPost(transport) ? transport[POST_MESSAGE](message) : transport.send(message);
    } catch (err) {
      // a transport whose send throws instead of rejecting
      this.sendFailed(p, message, err);
      return;
    }
    sending?.catch((err: unknown) => this.sendFailed(p, message, err));
  }

  /** A request whose message the transport did not take: settles it (unless already settled). */
  private sendFailed(p: PendingRequest, message: JSONRPCRequest, err: unknown): void {
    const { id, method } = p;
    const name = this.host.name;
    if (this.pending.get(id) !== p) return;
    const text = err instanceof Error ? err.message : String(err);
    // the breaker counts what the upstream did: a message the gateway cannot even serialise
    // (too deep for JSON.stringify, a bigint, a cycle) never reached it
    if (!serializable(message)) {
      this.finish(id, p, 'release');
      p.done.reject(new GatewayError('INVALID_PARAMS', `${method} params cannot be sent to upstream "${name}" as JSON: ${text}`, { upstream: name, method }));
      return;
    }
    // upstream OAuth: a person must authorize (or the authorization server failed) — not an upstream fault
    if (err instanceof GatewayError && (err.code === 'OAUTH_AUTHORIZATION_REQUIRED' || err.code === 'OAUTH_ERROR')) {
      this.finish(id, p, 'release');
      p.done.reject(err);
      return;
    }
    this.finish(id, p, 'failure');
    p.done.reject(new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${name}" failed during ${method}: ${text}`, { upstream: name }));
  }

  /** Queues a call for a concurrency slot, or fails it with UPSTREAM_OVERLOADED when the queue is full. */
  enqueue(method: string, params: JsonObject, options: RequestOptions, trial: boolean): Promise<JsonObject> {
    return new Promise<JsonObject>((resolve, reject) => this.enqueueTo(method, params, options, trial, { resolve, reject }));
  }

  /** {@link enqueue} with the outcome going to `done`. */
  enqueueTo(method: string, params: JsonObject, options: RequestOptions, trial: boolean, done: Completion<JsonObject>): void {
    const { breaker, limiter } = this.host;
    const timeoutMs = options.timeout ?? this.host.defaultTimeoutMs();
    const scope = options.cancel;
    const queued: QueuedCall = {
      method,
      timeoutMs,
      deadline: Date.now() + timeoutMs,
      start: () => {
        if (scope) scope.onCancel = undefined;
        const transport = this.host.transport();
        if (!transport) {
          breaker.record('release', trial);
          this.releaseSlot();
          done.reject(this.host.notConnectedError());
          return;
        }
        this.dispatchTo(transport, method, params, options, true, trial, done, queued.deadline);
      },
      fail: (err, outcome) => {
        if (scope) scope.onCancel = undefined;
        breaker.record(outcome, trial);
        done.reject(err);
      },
    };
    if (!limiter.enqueue(queued)) {
      breaker.record('release', trial);
      done.reject(overloadedError(this.host.name, method, limiter));
      return;
    }
    if (scope) {
      scope.onCancel = () => {
        if (limiter.remove(queued)) queued.fail(cancelledError(this.host.name, method), 'release');
      };
    }
    this.sweepTimer ??= setInterval(this.sweep, TIMEOUT_SWEEP_MS);
  }

  /** Completes our request `id` with a response; false if it is not ours (or already settled). */
  settle(id: string, result: unknown, error: unknown): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    // an error reply is an answer: the upstream is alive, so it counts as a success for the breaker
    this.finish(id, p, 'success');
    if (error !== undefined) {
      const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown; data?: unknown };
      p.done.reject(
        new UpstreamRpcError({
          code: typeof e.code === 'number' ? e.code : -32603,
          message: typeof e.message === 'string' ? e.message : 'Upstream error',
          ...(e.data !== undefined ? { data: e.data } : {}),
        }),
      );
    } else if (typeof result === 'object' && result !== null && !Array.isArray(result)) {
      p.done.resolve(result as JsonObject);
    } else {
      p.done.reject(new GatewayError('INTERNAL_ERROR', `Upstream "${this.host.name}" answered ${p.method} with a result that is not an object`, { upstream: this.host.name }));
    }
    return true;
  }

  /**
   * Hands a `notifications/progress` to the request whose progress token it carries and restarts
   * that request's timeout; false if the token is not one of ours (or its request wants no progress).
   */
  progress(params: JsonObject | undefined): boolean {
    const token = params?.['progressToken'];
    const p = typeof token === 'string' ? this.pending.get(token) : undefined;
    if (!p?.onprogress) return false;
    p.deadline = Date.now() + p.timeoutMs;
    const { progressToken: _t, ...rest } = params as JsonObject;
    p.onprogress(rest as unknown as Progress);
    return true;
  }

  /**
   * Takes request `id` off the books: frees its concurrency slot (a queued call may start in it)
   * and reports `outcome` to the circuit breaker. Call before settling its promise.
   */
  private finish(id: string, p: PendingRequest, outcome: CallOutcome): void {
    this.pending.delete(id);
    this.inflight--;
    if (p.scope) p.scope.onCancel = undefined;
    if (!p.guarded) return;
    this.host.breaker.record(outcome, p.trial);
    this.releaseSlot();
  }

  /** Frees one concurrency slot; a queued call that gets it starts now. */
  private releaseSlot(): void {
    this.host.limiter.release()?.start();
  }

  /**
   * Rejects every request in flight and every queued call (connection gone). Their outcome is
   * `release` for the breaker: losing a connection is the supervisor's business, and a crash with
   * many calls in flight must not keep the breaker open after the restart.
   */
  failPending(why: string): void {
    const name = this.host.name;
    for (const q of this.host.limiter.drain()) {
      q.fail(new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${name}" ${why} while ${q.method} was queued`, { upstream: name }), 'release');
    }
    for (const [id, p] of this.pending) {
      this.finish(id, p, 'release');
      p.done.reject(new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${name}" ${why} during ${p.method}`, { upstream: name }));
    }
    this.stopSweep();
  }

  /**
   * Times out requests past their deadline: the caller gets UPSTREAM_TIMEOUT, the upstream a
   * cancel, the breaker a failure. Queued calls past their deadline fail without being sent.
   */
  private readonly sweep = (): void => {
    const name = this.host.name;
    const now = Date.now();
    for (const q of this.host.limiter.removeWhere((w) => w.deadline <= now)) {
      q.fail(
        new GatewayError('UPSTREAM_TIMEOUT', `Upstream "${name}" had no free slot for ${q.method} within ${q.timeoutMs} ms (it was queued, not sent)`, {
          upstream: name,
          method: q.method,
          timeout_ms: q.timeoutMs,
          queued: true,
        }),
        'release',
      );
    }
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.finish(id, p, 'failure');
      this.sendCancel(id, `timed out after ${p.timeoutMs} ms`);
      p.done.reject(
        new GatewayError('UPSTREAM_TIMEOUT', `Upstream "${name}" did not answer ${p.method} within ${p.timeoutMs} ms`, {
          upstream: name,
          method: p.method,
          timeout_ms: p.timeoutMs,
        }),
      );
    }
    if (this.pending.size === 0 && this.host.limiter.queued === 0) this.stopSweep();
  };

  /** Stops the timeout sweep (nothing left to time out, or the upstream is disposed). */
  stopSweep(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  private sendCancel(id: string, reason: string): void {
    this.host
      .transport()
      ?.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } })
      .catch((err: unknown) => {
        this.host.log.debug('could not send notifications/cancelled', { error: err });
      });
  }
}
