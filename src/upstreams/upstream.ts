/**
 * One upstream MCP server: an SDK `Client` over the configured transport (`stdio`, `http`
 * (Streamable HTTP), `sse`, `inprocess`), its state (`connected` / `disconnected` / `error`) and
 * its catalogue (tools, resources, resource templates, prompts), reloaded on
 * `notifications/{tools,resources,prompts}/list_changed`.
 *
 * Calls pass this upstream's circuit breaker and concurrency limit (see
 * `circuit-breaker.ts`, `limiter.ts`); a connection that ends without {@link Upstream.close}
 * (a stdio subprocess that exits, a transport that closes) is announced on `lifecycle$` at once,
 * which is what the supervisor (`supervisor.ts`) reconnects on.
 *
 * Results are passed through as the upstream sent them: requests use a schema that accepts any
 * object, so unknown fields, `_meta`, `structuredContent` and `isError` reach the downstream
 * client untouched, and the hot path pays no per-call schema validation.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { sessionUpstreamStateError, speaksModern } from './era-http-transport.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
  type JSONRPCRequest,
  type Notification,
  type ServerCapabilities,
  type Implementation,
} from '@modelcontextprotocol/sdk/types.js';
import { BehaviorSubject, Subject, debounceTime, defer, switchMap, catchError, EMPTY, type Subscription } from 'rxjs';
import type { McpClientConfig } from '../config/schema.js';
import { resolveResilience } from '../config/resilience.js';
import type { Logger } from '../log/logger.js';
import type { UpstreamState } from '../streams/events.js';
import { GatewayError } from '../base/errors.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { ConcurrencyLimiter } from './limiter.js';
import { fetchWithHeadersDeadline } from './fetch-deadline.js';
import { version } from '../base/version.js';
import { GroupStdioTransport } from './stdio-transport.js';
import { reloadCatalogue } from './upstream-catalogue.js';
import { createTransport } from './upstream-transport.js';
import { cancelledError, circuitOpenError, notConnectedError } from './upstream-errors.js';
import { EXIT_WAIT_MS, describeFailure, stdioChild, stdioExitDescriber, waitForExit } from './upstream-failure.js';
import { RequestTable, type QueuedCall } from './upstream-requests.js';
import { LineOverflowError } from './stdio-framing.js';
import type { CancelHook, Catalogue, CatalogueKind, Completion, JsonObject, RequestOptions, ServerRequestExtra, UpstreamLifecycle } from './upstream-types.js';

export { cancelScope, type CancelHook, type Completion, type Catalogue, type CatalogueKind, type JsonObject, type ServerRequestExtra, type UpstreamLifecycle } from './upstream-types.js';
export { describeFailure } from './upstream-failure.js';

/** The per-principal connections of one client (`per_user_oauth`; see `oauth/per-user.ts`). */
export interface PrincipalUpstreams {
  /**
   * The connected upstream of `principal` (connecting it on first use).
   * @throws GatewayError OAUTH_AUTHORIZATION_REQUIRED (no token yet: `details.authorization_url`),
   *   UPSTREAM_UNAVAILABLE (the connection failed).
   */
  get(principal: string): Promise<Upstream>;
  /** Closes every connection (the client is removed or reconfigured). */
  close(reason: string): Promise<void>;
  /** Open connections. */
  readonly size: number;
}

/** Answers server→client requests (`sampling/createMessage`, `elicitation/create`, `roots/list`). */
export type ServerRequestHandler = (upstream: Upstream, request: JSONRPCRequest, extra: ServerRequestExtra) => Promise<JsonObject>;

/**
 * Lets a caller cancel a request in flight without an AbortController (they are costly to create
 * on the hot path): {@link Upstream.request} sets `onCancel` while the request is in flight; the
 * caller sets `cancelled` and calls it (see {@link cancelScope}).
 */
export interface CancelScope extends CancelHook {
  /**
   * The pool member (one process of a `pool_size` > 1 stdio client) the request was sent to, set
   * by `UpstreamPool.request`, or the caller's own connection of a `per_user_oauth` client (set by
   * `invokeTool`); server→client requests and log messages of that connection are attributed by
   * it. Unset for a single-process upstream.
   */
  served?: Upstream | undefined;
  /**
   * Set once the upstream has answered the request (or it failed): the call may still wait for
   * its durable record, but no later server→client request or log message of that upstream
   * belongs to it, so the relay no longer attributes them to it.
   */
  answered?: boolean | undefined;
}

/** Options of {@link Upstream.request} (see {@link RequestOptions}). */
export interface UpstreamCallOptions extends RequestOptions {
  readonly cancel?: CancelScope;
}

/** Extra time an HTTP request gets for its response headers beyond the longest timeout that applies, ms. */
const HEADERS_GRACE_MS = 1000;

/** A transport error at most this long before a close is reported as its cause, ms. */
const RECENT_ERROR_MS = 200;

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

export class Upstream {
  readonly name: string;
  readonly state$ = new BehaviorSubject<UpstreamState>('disconnected');
  /** How each established connection ended (see {@link UpstreamLifecycle}). Hot; completes on {@link dispose}. */
  readonly lifecycle$ = new Subject<UpstreamLifecycle>();
  /** This upstream's circuit breaker (its thresholds follow `config.circuit_breaker`). */
  readonly breaker: CircuitBreaker;
  /**
   * Epoch ms of the next automatic reconnect attempt while one is scheduled (set by the
   * supervisor); named in "not connected" errors.
   */
  reconnectAt: number | undefined;
  /** Emits the kind after a catalogue reload that changed it. */
  readonly catalogueChanged$ = new Subject<CatalogueKind>();
  /** Upstream notifications the gateway relays (`notifications/message`, `notifications/resources/updated`, ...). */
  readonly notifications$ = new Subject<Notification>();
  catalogue: Catalogue = { tools: [], resources: [], resourceTemplates: [], prompts: [] };
  serverCapabilities: ServerCapabilities = {};
  serverInfo: Implementation | undefined;
  instructions: string | undefined;
  lastError: string | undefined;
  /** Calls sent and not yet answered. */
  get inflight(): number {
    return this.requests.inflight;
  }

  private client: Client | undefined;
  private transport: Transport | undefined;
  /** The client of a {@link connect} in progress (closed by {@link close}). */
  private connectingClient: Client | undefined;
  /** Bumped by every connect and close: a connect that finds it changed was superseded. */
  private epoch = 0;
  private readonly limiter: ConcurrencyLimiter<QueuedCall>;
  private currentConfig: McpClientConfig;
  /**
   * `fetch` of the HTTP transports: a request whose response headers are later than the longest
   * timeout that can apply to it plus a grace second is aborted (while connecting: the connect
   * timeout; once connected: the call or health-check timeout), so requests already timed out do
   * not hold sockets open on a silent upstream.
   */
  private readonly httpFetch = fetchWithHeadersDeadline(() => {
    const c = this.config;
    const limit =
      this.state === 'connected'
        ? Math.max(c.request_timeout_ms ?? DEFAULT_REQUEST_TIMEOUT_MS, resolveResilience(c).health_check_timeout_ms)
        : (c.connect_timeout_ms ?? DEFAULT_CONNECT_TIMEOUT_MS);
    return limit + HEADERS_GRACE_MS;
  });
  /** The `fetch` the HTTP transports use: {@link httpFetch}, authenticated when the client needs it. */
  private readonly transportFetch: FetchLike;
  /** Requests sent by {@link request} and calls queued for a concurrency slot. */
  private readonly requests: RequestTable;
  private readonly refresh$ = new Subject<CatalogueKind>();
  private readonly refreshSub: Subscription;
  private readonly log: Logger;

  /**
   * Per-principal connections (`per_user_oauth`): tool calls go to the caller's own connection;
   * this one serves the catalogue only.
   */
  principals: PrincipalUpstreams | undefined;

  /** Per-call cost in USD by upstream tool name (Bifrost `tool_pricing`). */
  pricing: Readonly<Record<string, number>> = {};

  constructor(
    config: McpClientConfig,
    log: Logger,
    private readonly serverRequestHandler: ServerRequestHandler,
    authFetch?: (base: FetchLike) => FetchLike,
  ) {
    // upstream OAuth: the bearer token goes on every HTTP request, refreshed on a 401
    this.transportFetch = authFetch ? authFetch(this.httpFetch) : this.httpFetch;
    this.name = config.name;
    this.currentConfig = config;
    const r = resolveResilience(config);
    this.breaker = new CircuitBreaker(r.circuit_breaker);
    this.limiter = new ConcurrencyLimiter(r.max_concurrent_calls, r.max_queued_calls);
    this.log = log.child({ upstream: config.name });
    this.requests = new RequestTable({
      name: this.name,
      breaker: this.breaker,
      limiter: this.limiter,
      log: this.log,
      transport: () => this.transport,
      defaultTimeoutMs: () => this.config.request_timeout_ms ?? DEFAULT_REQUEST_TIMEOUT_MS,
      notConnectedError: () => this.notConnectedError(),
    });
    // Coalesce bursts of list_changed per kind; a newer reload supersedes an older one in flight.
    this.refreshSub = this.refresh$
      .pipe(
        debounceTime(20),
        switchMap((kind) =>
          defer(() => this.reload(kind)).pipe(
            catchError((err: unknown) => {
              this.log.warn('catalogue reload failed', { kind, error: err });
              return EMPTY;
            }),
          ),
        ),
      )
      .subscribe();
  }

  /**
   * The client configuration. Replaced (never mutated) by `UpstreamManager.updateConfig` for
   * changes that need no reconnect; the breaker thresholds and concurrency limits follow at once.
   */
  get config(): McpClientConfig {
    return this.currentConfig;
  }

  set config(config: McpClientConfig) {
    this.currentConfig = config;
    const r = resolveResilience(config);
    this.breaker.reconfigure(r.circuit_breaker);
    this.limiter.reconfigure(r.max_concurrent_calls, r.max_queued_calls);
  }

  get state(): UpstreamState {
    return this.state$.value;
  }

  /**
   * The connections behind this client: itself for a single process; the member processes of a
   * pool (`UpstreamPool`). Supervision (health checks, restarts) runs per member.
   */
  get members(): readonly Upstream[] {
    return [this];
  }

  /** Pid of the stdio subprocess while it runs; undefined for other transports. */
  get pid(): number | undefined {
    const t = this.transport ?? this.connectingClient?.transport;
    return t instanceof GroupStdioTransport ? t.pid : undefined;
  }

  /**
   * Kills a stdio subprocess's process group at once (SIGKILL), without waiting: for a gateway
   * told to stop immediately (a second Ctrl-C). No-op for other transports.
   */
  killNow(): void {
    for (const t of [this.transport, this.connectingClient?.transport]) if (t instanceof GroupStdioTransport) t.kill();
  }

  /**
   * Why this upstream is not connected and when the next automatic attempt is due, for the
   * management API, `/health` and events; undefined while connected (or when nothing failed).
   * `next_retry_at` is ISO-8601 UTC, present while a reconnect is scheduled.
   */
  get failure(): { readonly last_error: string; readonly next_retry_at?: string } | undefined {
    if (this.state === 'connected' || this.lastError === undefined) return undefined;
    const at = this.reconnectAt;
    return { last_error: this.lastError, ...(at !== undefined ? { next_retry_at: new Date(at).toISOString() } : {}) };
  }

  /** Calls queued for a concurrency slot. */
  get queued(): number {
    return this.limiter.queued;
  }

  private setState(next: UpstreamState, error?: string): void {
    if (error !== undefined) this.lastError = error;
    if (this.state$.value !== next) this.state$.next(next);
  }

  /**
   * Connects, initializes and loads the whole catalogue. Resolves when `connected`; on failure the
   * state is `error` and the promise rejects with the cause. Bounded by `connect_timeout_ms`.
   * A {@link close} (or another connect) while this one is in progress supersedes it: its client
   * is closed (a stdio subprocess it started ends) and it rejects without touching the state.
   */
  async connect(): Promise<void> {
    const epoch = ++this.epoch;
    const started = Date.now();
    const client = new Client(
      { name: 'tributary', version },
      {
        capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } },
      },
    );
    client.fallbackRequestHandler = (request, extra) =>
      this.serverRequestHandler(this, request, {
        signal: extra.signal,
        sendNotification: (n) => extra.sendNotification(n as Parameters<typeof extra.sendNotification>[0]),
      }) as ReturnType<NonNullable<typeof client.fallbackRequestHandler>>;
    client.fallbackNotificationHandler = async (n) => {
      this.notifications$.next(n);
    };
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => this.refresh$.next('tools'));
    client.setNotificationHandler(ResourceListChangedNotificationSchema, async () => this.refresh$.next('resources'));
    client.setNotificationHandler(PromptListChangedNotificationSchema, async () => this.refresh$.next('prompts'));
    // The SDK's stdio transport closes itself on some errors (a line over its 10 MB read buffer):
    // a transport error right before the close is named as its likely cause (the first of a burst:
    // the rest of an oversized line arrives as more errors).
    let lastError: { message: string; at: number } | undefined;
    client.onerror = (err) => {
      const now = Date.now();
      // a stdout line over the read limit is what ends the stream: it names the close even
      // right after other errors (garbage lines)
      if (!lastError || now - lastError.at >= RECENT_ERROR_MS || err instanceof LineOverflowError) lastError = { message: err.message, at: now };
      this.log.warn('upstream transport error', { error: err });
    };
    let describeExit: (() => string | undefined) | undefined;
    client.onclose = () => {
      // Only the live connection matters: close() detaches it before closing, and a connect that
      // fails reports through its own rejection.
      if (this.client !== client) return;
      const exit = describeExit?.() ?? 'connection closed';
      const why = lastError && Date.now() - lastError.at < RECENT_ERROR_MS ? `${exit} after transport error: ${lastError.message}` : exit;
      this.client = undefined;
      this.transport = undefined;
      this.requests.failPending(`closed the connection (${why})`);
      // still connecting (catalogue load): the connect rejects and reports it
      if (this.state !== 'connected') return;
      this.log.warn('upstream connection lost', { reason: why });
      this.setState('disconnected', why);
      this.lifecycle$.next({ kind: 'lost', reason: why });
    };

    const timeoutMs = this.config.connect_timeout_ms ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const superseded = (): void => {
      if (epoch !== this.epoch) throw new Error('connect superseded by a close or another connect');
    };
    this.connectingClient = client;
    let timer: NodeJS.Timeout | undefined;
    let created: Transport | undefined;
    try {
      const transport = createTransport(this.config, this.log, this.transportFetch);
      created = transport;
      await Promise.race([
        (async () => {
          await client.connect(transport, { timeout: timeoutMs });
          superseded();
          this.interceptMessages(transport);
          describeExit = stdioExitDescriber(transport);
          this.client = client;
          this.transport = transport;
          this.serverCapabilities = client.getServerCapabilities() ?? {};
          this.serverInfo = client.getServerVersion();
          this.instructions = client.getInstructions();
          await this.reloadAll();
          superseded();
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`connect timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      // a stdio process that ended says how (exit code, stderr); an HTTP error names its cause
      const message = epoch === this.epoch ? describeFailure(err, created) : err instanceof Error ? err.message : String(err);
      const current = epoch === this.epoch;
      // after a timeout the inner steps may still finish: make them find this connect superseded
      if (current) this.epoch++;
      if (this.client === client) {
        this.client = undefined;
        this.transport = undefined;
        this.requests.failPending(message);
      }
      const proc = stdioChild(client.transport);
      await client.close().catch(() => undefined);
      if (proc) await waitForExit(proc, EXIT_WAIT_MS);
      if (current) this.setState('error', message);
      throw current ? new Error(message, { cause: err }) : err;
    } finally {
      if (timer) clearTimeout(timer);
      if (this.connectingClient === client) this.connectingClient = undefined;
    }
    this.lastError = undefined;
    this.setState('connected');
    this.log.info('upstream connected', {
      server: this.serverInfo?.name,
      tools: this.catalogue.tools.length,
      resources: this.catalogue.resources.length,
      prompts: this.catalogue.prompts.length,
      ms: Date.now() - started,
    });
  }

  /**
   * Takes this gateway's own traffic off the transport before the SDK Client sees it: responses
   * to {@link request}, their progress, and the notifications the gateway relays — synchronously,
   * in arrival order. (The SDK runs notification handlers a tick after responses, so a progress
   * notification sent right before a result would otherwise be lost.)
   */
  private interceptMessages(transport: Transport): void {
    const sdkOnMessage = transport.onmessage;
    if (!sdkOnMessage) return;
    transport.onmessage = (message, extra) => {
      const m = message as { method?: unknown; id?: unknown; params?: JsonObject; result?: unknown; error?: unknown };
      if (m.method === undefined) {
        if (typeof m.id === 'string') {
          if (this.requests.settle(m.id, m.result, m.error)) return;
          // an answer to a request of ours no longer waited for (timed out, cancelled, or failed
          // when the connection was closing): nothing to do, and nothing the SDK Client knows
          if (RequestTable.owns(m.id)) {
            this.log.debug('late answer dropped', { id: m.id });
            return;
          }
        }
      } else if (m.id === undefined) {
        if (m.method === 'notifications/progress') {
          if (this.requests.progress(m.params)) return;
        } else if (m.method === 'notifications/message' || m.method === 'notifications/resources/updated') {
          this.notifications$.next(message as Notification);
          return;
        }
      }
      sdkOnMessage.call(transport, message, extra);
    };
  }

  private async reloadAll(): Promise<void> {
    await this.reload('tools', false);
    await this.reload('resources', false);
    await this.reload('prompts', false);
  }

  private async reload(kind: CatalogueKind, notify = true): Promise<void> {
    await reloadCatalogue(() => this.catalogue, this.serverCapabilities, kind, (method, params) => this.request(method, params, { control: true }), this.log);
    if (notify) this.catalogueChanged$.next(kind);
  }

  /**
   * Sends any request upstream over the SDK transport and resolves with its `result` object as
   * received (no schema validation: the result passes through untouched). With `onprogress`, the
   * request carries this gateway's progress token and each progress notification restarts the
   * timeout. Cancelling `cancel` sends `notifications/cancelled` upstream.
   *
   * Unless `control` is set, the call first passes the circuit breaker (open: fail at once), then
   * the concurrency limit: it takes a free slot, or waits in the bounded FIFO queue (the wait
   * counts towards its timeout), or fails at once when the queue is full.
   * @throws GatewayError `UPSTREAM_UNAVAILABLE` when not connected or the connection drops,
   *   `CIRCUIT_OPEN` while the breaker is open (details: `retry_at`, `retry_after_ms`),
   *   `UPSTREAM_OVERLOADED` when every slot and the queue are taken, `UPSTREAM_TIMEOUT` after
   *   `timeout` ms without result or progress (or without a free slot), `REQUEST_CANCELLED` when
   *   cancelled; UpstreamRpcError for a JSON-RPC error reply.
   */
  request(method: string, params: JsonObject, options: UpstreamCallOptions = {}): Promise<JsonObject> {
    return new Promise<JsonObject>((resolve, reject) => this.requestTo(method, params, options, { resolve, reject }));
  }

  /**
   * {@link request} with the outcome going to `done` instead of a Promise (the per-call path of
   * `tools/call`): the same checks, limits, errors and cancellation. `done` may be called before
   * this returns (a call refused at once).
   */
  requestTo(method: string, params: JsonObject, options: UpstreamCallOptions, done: Completion<JsonObject>): void {
    const transport = this.transport;
    if (!transport || !this.client) return done.reject(this.notConnectedError());
    if (options.cancel?.cancelled) return done.reject(cancelledError(this.name, method));
    if (params['requestState'] !== undefined && !speaksModern(transport)) return done.reject(sessionUpstreamStateError(this.name));
    if (options.control === true) return this.requests.dispatchTo(transport, method, params, options, false, false, done, undefined);
    const admission = this.breaker.admit();
    if (admission === 'reject') return done.reject(circuitOpenError(this.name, method, this.breaker, options.timeout ?? this.config.request_timeout_ms ?? DEFAULT_REQUEST_TIMEOUT_MS));
    const trial = admission === 'trial';
    if (this.limiter.tryAcquire()) return this.requests.dispatchTo(transport, method, params, options, true, trial, done, undefined);
    this.requests.enqueueTo(method, params, options, trial, done);
  }

  private notConnectedError(): GatewayError {
    return notConnectedError(this.name, this.state, this.lastError, this.reconnectAt);
  }

  /** Sends a notification upstream; dropped (with a debug log) when not connected. */
  async notify(method: string, params?: JsonObject): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await client.notification({ method, ...(params ? { params } : {}) } as Parameters<Client['notification']>[0]);
    } catch (err) {
      this.log.debug('notification to upstream failed', { method, error: err });
    }
  }

  /**
   * Closes the client (for stdio: ends the subprocess, escalating to SIGTERM and SIGKILL if it
   * does not exit on stdin EOF) and any connect in progress. Announces `closed` on `lifecycle$`, so
   * no automatic reconnect follows. Idempotent.
   */
  async close(reason = 'shutdown'): Promise<void> {
    await this.shutdown(reason, true);
  }

  /**
   * Ends a connection the supervisor judged dead (failed health checks): like {@link close}, but
   * announces nothing, so the caller goes on to reconnect. Resolves when the old client is closed.
   */
  async drop(reason: string): Promise<void> {
    await this.shutdown(reason, false);
  }

  private async shutdown(reason: string, manual: boolean): Promise<void> {
    this.epoch++;
    const clients = [this.client, this.connectingClient].filter((c): c is Client => c !== undefined);
    this.client = undefined;
    this.transport = undefined;
    this.connectingClient = undefined;
    this.requests.failPending(manual ? 'was closed' : `was disconnected (${reason})`);
    this.setState('disconnected', reason);
    if (manual) this.lifecycle$.next({ kind: 'closed', reason });
    await Promise.all(
      clients.map(async (client) => {
        const proc = stdioChild(client.transport);
        try {
          await client.close();
        } catch (err) {
          this.log.warn('error while closing upstream', { error: err });
        }
        if (proc) await waitForExit(proc, EXIT_WAIT_MS);
      }),
    );
  }

  /** Releases the reload pipeline and the breaker; call after {@link close} when the upstream is gone for good. */
  dispose(): void {
    this.requests.stopSweep();
    this.refreshSub.unsubscribe();
    this.refresh$.complete();
    this.catalogueChanged$.complete();
    this.notifications$.complete();
    this.breaker.dispose();
    this.lifecycle$.complete();
    this.state$.complete();
  }
}
