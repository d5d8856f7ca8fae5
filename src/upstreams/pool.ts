/**
 * A stdio upstream pool (`stdio_config.pool_size` > 1): N identical subprocesses behind one
 * client name. One process serializes its work on one core, so a pool is how one box passes a
 * single upstream process's own ceiling.
 *
 * - **Members**: each process is a full {@link Upstream} (its own SDK `Client`, process group,
 *   pending requests, concurrency limit and circuit breaker). The manager supervises each member
 *   on its own: health checks, reconnect with backoff after a crash, so one process dying leaves
 *   the others serving while it restarts.
 * - **Dispatch**: least loaded — a call goes to the connected member with the fewest calls in
 *   flight plus queued; ties rotate, so light traffic spreads too
 *   (https://www.nginx.com/resources/glossary/load-balancing/ "Least Connections").
 * - **Sticky only where the protocol needs it**: a server→client request (sampling, elicitation,
 *   roots) is answered on the process that asked, because the SDK `Client` of that member
 *   receives it and replies on its own transport; `resources/subscribe` for a URI goes to one
 *   member and its `resources/unsubscribe` to the same one (the subscription lives in that
 *   process); `logging/setLevel` goes to every member. Everything else may go anywhere: stdio MCP
 *   servers keep no per-client session.
 * - **State and catalogue**: the client is `connected` while any member is; its catalogue,
 *   capabilities and instructions are those of one connected member (the members run the same
 *   command, so they list the same tools).
 */
import { Subscription, skip } from 'rxjs';
import type { Implementation, ServerCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { McpClientConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { UpstreamState } from '../streams/events.js';
import { GatewayError } from '../base/errors.js';
import { Upstream, type CatalogueKind, type Completion, type JsonObject, type ServerRequestHandler, type UpstreamCallOptions } from './upstream.js';

/** One member's view for `/health` and the metrics. */
export interface PoolMemberView {
  readonly member: number;
  readonly pid: number | null;
  readonly state: UpstreamState;
  readonly in_flight: number;
  readonly queued: number;
  readonly circuit: string;
  /** Requests the pool sent to this member (health checks and catalogue loads not counted). */
  readonly calls: number;
  /** Times the process was started again after its first start (crash, failed health checks, reconnect). */
  readonly restarts: number;
  readonly last_error: string | null;
}

const KINDS: readonly CatalogueKind[] = ['tools', 'resources', 'prompts'];

export class UpstreamPool extends Upstream {
  private readonly pool: readonly Upstream[];
  /** Connects of each member that succeeded. */
  private readonly starts: number[];
  /** Requests sent to each member. */
  private readonly sent: number[];
  /** The member whose catalogue the client shows. */
  private source: Upstream | undefined;
  /** Resource URI → the member holding its subscription. */
  private readonly subscribed = new Map<string, Upstream>();
  private readonly poolSubs = new Subscription();
  /** Rotates the first member looked at, so ties spread. */
  private turn = 0;
  private connecting = false;

  constructor(config: McpClientConfig, log: Logger, serverRequestHandler: ServerRequestHandler) {
    super(config, log, serverRequestHandler);
    const size = config.stdio_config?.pool_size ?? 1;
    this.pool = Array.from({ length: size }, (_, i) => new Upstream(config, log.child({ pool_member: i }), serverRequestHandler));
    this.starts = this.pool.map(() => 0);
    this.sent = this.pool.map(() => 0);
    this.pool.forEach((m, i) => {
      this.poolSubs.add(
        m.state$.pipe(skip(1)).subscribe((state) => {
          if (state === 'connected') this.starts[i] = (this.starts[i] ?? 0) + 1;
          this.aggregate();
        }),
      );
      this.poolSubs.add(
        m.catalogueChanged$.subscribe((kind) => {
          if (m !== this.source) return;
          this.adopt(m);
          this.catalogueChanged$.next(kind);
        }),
      );
    });
  }

  override get members(): readonly Upstream[] {
    return this.pool;
  }

  override get pid(): number | undefined {
    for (const m of this.pool) if (m.pid !== undefined) return m.pid;
    return undefined;
  }

  override get queued(): number {
    let n = 0;
    for (const m of this.pool) n += m.queued;
    return n;
  }

  override get failure(): { readonly last_error: string; readonly next_retry_at?: string } | undefined {
    if (this.state === 'connected') return undefined;
    const failing = this.pool.find((m) => m.lastError !== undefined);
    if (failing?.lastError === undefined) return undefined;
    const next = this.pool.map((m) => m.reconnectAt).filter((t): t is number => t !== undefined);
    return { last_error: failing.lastError, ...(next.length > 0 ? { next_retry_at: new Date(Math.min(...next)).toISOString() } : {}) };
  }

  /** Each member's state, pid, load, breaker and restarts (for `/health` and the metrics). */
  view(): PoolMemberView[] {
    return this.pool.map((m, i) => ({
      member: i,
      pid: m.pid ?? null,
      state: m.state,
      in_flight: m.inflight,
      queued: m.queued,
      circuit: m.breaker.state,
      calls: this.sent[i] ?? 0,
      restarts: Math.max(0, (this.starts[i] ?? 0) - 1),
      last_error: m.state === 'connected' ? null : (m.lastError ?? null),
    }));
  }

  /**
   * Starts every member at once. Resolves when at least one is connected (the others go on being
   * retried by their supervisors); rejects, with the first member's failure, when none is.
   */
  override async connect(): Promise<void> {
    this.connecting = true;
    try {
      const results = await Promise.allSettled(this.pool.map((m) => m.connect()));
      this.aggregate();
      if (this.pool.every((m) => m.state !== 'connected')) {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        const reason: unknown = failed?.reason;
        throw reason instanceof Error ? reason : new Error(`no process of the pool of ${this.pool.length} connected`);
      }
    } finally {
      this.connecting = false;
    }
  }

  override async close(reason = 'shutdown'): Promise<void> {
    this.subscribed.clear();
    await Promise.all(this.pool.map((m) => m.close(reason)));
    this.aggregate();
  }

  override async drop(reason: string): Promise<void> {
    this.subscribed.clear();
    await Promise.all(this.pool.map((m) => m.drop(reason)));
    this.aggregate();
  }

  override killNow(): void {
    for (const m of this.pool) m.killNow();
  }

  override async notify(method: string, params?: JsonObject): Promise<void> {
    await Promise.all(this.pool.map((m) => m.notify(method, params)));
  }

  /**
   * Sends a request to the least-loaded connected member (see the module comment for the methods
   * that are sticky or go to every member). Sets `options.cancel.served` to the member chosen.
   * @throws GatewayError `UPSTREAM_UNAVAILABLE` when no member is connected; otherwise what
   *   {@link Upstream.request} of the member throws.
   */
  override request(method: string, params: JsonObject, options: UpstreamCallOptions = {}): Promise<JsonObject> {
    if (method === 'resources/subscribe' || method === 'resources/unsubscribe') return this.sticky(method, params, options);
    if (method === 'logging/setLevel') return this.everyMember(method, params, options);
    const m = this.leastLoaded();
    if (m === undefined) return Promise.reject(this.unavailable(method));
    if (options.cancel) options.cancel.served = m;
    return this.send(m, method, params, options);
  }

  /** {@link request} with the outcome going to `done` (see {@link Upstream.requestTo}). */
  override requestTo(method: string, params: JsonObject, options: UpstreamCallOptions, done: Completion<JsonObject>): void {
    if (method === 'resources/subscribe' || method === 'resources/unsubscribe' || method === 'logging/setLevel') {
      this.request(method, params, options).then(
        (result) => done.resolve(result),
        (err: unknown) => done.reject(err),
      );
      return;
    }
    const m = this.leastLoaded();
    if (m === undefined) return done.reject(this.unavailable(method));
    if (options.cancel) options.cancel.served = m;
    this.count(m);
    m.requestTo(method, params, options, done);
  }

  override dispose(): void {
    this.poolSubs.unsubscribe();
    for (const m of this.pool) m.dispose();
    super.dispose();
  }

  /** The connected member with the fewest calls in flight plus queued; undefined when none is connected. */
  private leastLoaded(): Upstream | undefined {
    const n = this.pool.length;
    const start = this.turn++ % n;
    let best: Upstream | undefined;
    let bestLoad = Infinity;
    for (let k = 0; k < n; k++) {
      const m = this.pool[(start + k) % n];
      if (m === undefined || m.state !== 'connected') continue;
      const load = m.inflight + m.queued;
      if (load < bestLoad) {
        best = m;
        bestLoad = load;
      }
    }
    return best;
  }

  /** `resources/subscribe` picks a member for the URI and keeps it; `resources/unsubscribe` goes to that member. */
  private async sticky(method: string, params: JsonObject, options: UpstreamCallOptions): Promise<JsonObject> {
    const uri = typeof params['uri'] === 'string' ? params['uri'] : '';
    const held = this.subscribed.get(uri);
    const m = held !== undefined && held.state === 'connected' ? held : this.leastLoaded();
    if (m === undefined) throw this.unavailable(method);
    if (options.cancel) options.cancel.served = m;
    const result = await this.send(m, method, params, options);
    if (method === 'resources/subscribe') this.subscribed.set(uri, m);
    else this.subscribed.delete(uri);
    return result;
  }

  private async everyMember(method: string, params: JsonObject, options: UpstreamCallOptions): Promise<JsonObject> {
    const connected = this.pool.filter((m) => m.state === 'connected');
    if (connected.length === 0) throw this.unavailable(method);
    const results = await Promise.all(connected.map((m) => this.send(m, method, params, options)));
    return results[0] ?? {};
  }

  private send(m: Upstream, method: string, params: JsonObject, options: UpstreamCallOptions): Promise<JsonObject> {
    this.count(m);
    return m.request(method, params, options);
  }

  /** Counts a request sent to member `m`. */
  private count(m: Upstream): void {
    const i = this.pool.indexOf(m);
    this.sent[i] = (this.sent[i] ?? 0) + 1;
  }

  private unavailable(method: string): GatewayError {
    const states = this.pool.map((m) => m.state).join(', ');
    const f = this.failure;
    return new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" has no connected process for ${method} (pool of ${this.pool.length}: ${states})`, {
      upstream: this.name,
      state: this.state,
      ...(f !== undefined ? { last_error: f.last_error } : {}),
      ...(f?.next_retry_at !== undefined ? { retry_at: f.next_retry_at } : {}),
    });
  }

  /** Shows `m`'s catalogue, capabilities and instructions as the client's. */
  private adopt(m: Upstream): void {
    this.source = m;
    this.catalogue = m.catalogue;
    this.serverCapabilities = m.serverCapabilities as ServerCapabilities;
    this.serverInfo = m.serverInfo as Implementation | undefined;
    this.instructions = m.instructions;
  }

  /** Recomputes the client's state from its members': connected while any is; error when all are. */
  private aggregate(): void {
    const connected = this.pool.find((m) => m.state === 'connected');
    if (connected !== undefined && (this.source === undefined || this.source.state !== 'connected')) {
      const changed = this.source !== connected;
      this.adopt(connected);
      // a member taking over after the one shown went down: same command, but say so if it lists differently
      if (changed && !this.connecting) for (const k of KINDS) this.catalogueChanged$.next(k);
    }
    let next: UpstreamState;
    if (connected !== undefined) next = 'connected';
    else if (this.pool.every((m) => m.state === 'error')) next = 'error';
    else next = 'disconnected';
    if (next !== 'connected') this.lastError = this.pool.find((m) => m.lastError !== undefined)?.lastError;
    else this.lastError = undefined;
    if (this.state$.value !== next && !this.state$.closed) this.state$.next(next);
  }
}
