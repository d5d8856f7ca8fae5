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
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { EraStdioTransport } from './era-stdio-transport.js';
import { EraHttpTransport, sessionEraParams, sessionUpstreamStateError, speaksModern, withCallerCapabilities } from './era-http-transport.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
  type JSONRPCRequest,
  type Notification,
  type Progress,
  type ServerCapabilities,
  type Implementation,
} from '@modelcontextprotocol/sdk/types.js';
import { BehaviorSubject, Subject, debounceTime, defer, switchMap, catchError, EMPTY, type Subscription } from 'rxjs';
import type { ChildProcess } from 'node:child_process';
import type { McpClientConfig } from '../config/schema.js';
import { resolveResilience } from '../config/resilience.js';
import type { Logger } from '../log/logger.js';
import type { UpstreamState } from '../streams/events.js';
import { GatewayError, UpstreamRpcError } from '../base/errors.js';
import { createDemoLeanServer } from './inprocess/demo.js';
import { createInProcessServer } from './inprocess/registry.js';
import { CircuitBreaker, type CallOutcome } from './circuit-breaker.js';
import { ConcurrencyLimiter } from './limiter.js';
import { fetchWithHeadersDeadline } from './fetch-deadline.js';
import { version } from '../base/version.js';
import { GroupStdioTransport } from './stdio-transport.js';

export type JsonObject = Record<string, unknown>;

/** The catalogue of one upstream, as its server listed it. */
export interface Catalogue {
  tools: JsonObject[];
  resources: JsonObject[];
  resourceTemplates: JsonObject[];
  prompts: JsonObject[];
}

export type CatalogueKind = 'tools' | 'resources' | 'prompts';

/** Extra data the SDK hands a server→client request handler (signal aborts on upstream cancel). */
export interface ServerRequestExtra {
  readonly signal: AbortSignal;
  readonly sendNotification: (n: { method: string; params?: JsonObject }) => Promise<void>;
}

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
export interface CancelScope {
  cancelled: boolean;
  onCancel: ((reason: string) => void) | undefined;
  /**
   * The pool member (one process of a `pool_size` > 1 stdio client) the request was sent to, set
   * by `UpstreamPool.request`, or the caller's own connection of a `per_user_oauth` client (set by
   * `invokeTool`); server→client requests and log messages of that connection are attributed by
   * it. Unset for a single-process upstream.
   */
  served?: Upstream | undefined;
}

/** Cancels `scope` once: marks it and runs the hook of the request in flight, if any. */
export function cancelScope(scope: CancelScope, reason: string): void {
  if (scope.cancelled) return;
  scope.cancelled = true;
  const hook = scope.onCancel;
  scope.onCancel = undefined;
  hook?.(reason);
}

export interface UpstreamCallOptions {
  readonly cancel?: CancelScope;
  readonly onprogress?: (p: Progress) => void;
  /** Inactivity timeout, ms (reset by each progress notification); default from the client config. */
  readonly timeout?: number;
  /**
   * A gateway control request (health check, catalogue load): it bypasses the circuit breaker and
   * the concurrency limit, and its outcome does not count towards the breaker.
   */
  readonly control?: boolean;
  /**
   * Called once when the request is handed to the transport (after the circuit breaker and the
   * wait for a concurrency slot): the end of the queue wait, e.g. for a trace span event.
   */
  readonly onDispatch?: () => void;
  /**
   * The downstream caller's client capabilities: a 2026-07-28 upstream gets them in the request
   * envelope (unless the params already carry them), so it asks only for input the caller can give.
   */
  readonly clientCapabilities?: Record<string, unknown>;
}

/**
 * How a connection ended, announced on {@link Upstream.lifecycle$}: `lost` when it ended on its own
 * (subprocess exit, transport closed, stdout buffer overflow); `closed` when {@link Upstream.close}
 * ended it (a manual close: no automatic reconnect should follow).
 */
export type UpstreamLifecycle = { readonly kind: 'lost'; readonly reason: string } | { readonly kind: 'closed'; readonly reason: string };

/** A request of ours awaiting the upstream's response. */
interface PendingRequest {
  readonly method: string;
  readonly resolve: (result: JsonObject) => void;
  readonly reject: (err: Error) => void;
  readonly timeoutMs: number;
  /** Epoch ms after which the request times out. */
  deadline: number;
  readonly onprogress: ((p: Progress) => void) | undefined;
  readonly scope: CancelScope | undefined;
  /** Holds a concurrency slot and reports to the circuit breaker (not a control request). */
  readonly guarded: boolean;
  /** Admitted as a half-open trial call. */
  readonly trial: boolean;
}

/** A call waiting for a concurrency slot. */
interface QueuedCall {
  readonly method: string;
  readonly timeoutMs: number;
  /** Epoch ms; the wait counts towards the call's timeout. */
  readonly deadline: number;
  /** Starts the call; it holds the slot that was released to it. */
  readonly start: () => void;
  /** Rejects it while queued (no slot held), reporting `outcome` to the breaker. */
  readonly fail: (err: Error, outcome: CallOutcome) => void;
}

/** Extra time an HTTP request gets for its response headers beyond the longest timeout that applies, ms. */
const HEADERS_GRACE_MS = 1000;

/** A transport error at most this long before a close is reported as its cause, ms. */
const RECENT_ERROR_MS = 200;

/** How often requests in flight are checked for timeouts, ms. */
const TIMEOUT_SWEEP_MS = 100;

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const MAX_LIST_PAGES = 1000;

/** The subprocess of a stdio transport while it runs; undefined for other transports. */
function stdioChild(transport: Transport | undefined): ChildProcess | undefined {
  return transport instanceof GroupStdioTransport ? transport.child : undefined;
}

/**
 * Whether `message` survives `JSON.stringify`, which every serialising transport runs (stdio:
 * the SDK's `serializeMessage`, HTTP: the request body). Checked only after a send failed, to tell
 * a message the gateway could not serialise (stack overflow on deep nesting, a bigint, a cycle)
 * from a failure of the upstream or its connection.
 */
function serializable(message: JSONRPCRequest): boolean {
  try {
    JSON.stringify(message);
    return true;
  } catch {
    return false;
  }
}

/**
 * A one-line reason for a failed connect or a lost connection: for a stdio upstream that has
 * ended, how it ended and its last stderr lines (what `Connection closed` or `write EPIPE` would
 * hide); otherwise the error's message followed by its `cause` chain, so `fetch failed` becomes
 * `fetch failed: connect ECONNREFUSED 127.0.0.1:9`
 * (undici's error causes: https://undici.nodejs.org/#/docs/api/Errors).
 */
export function describeFailure(err: unknown, transport: Transport | undefined): string {
  const exit = transport instanceof GroupStdioTransport ? transport.describeExit() : undefined;
  if (exit !== undefined) return exit;
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const message = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: unknown }).code;
    // the SDK's StreamableHTTPError and SseError carry the HTTP status as a numeric `code`
    const suffix = typeof code === 'string' && !message.includes(code) ? ` (${code})` : typeof code === 'number' && code >= 100 && code <= 599 ? ` (HTTP ${code})` : '';
    const text = `${message}${suffix}`;
    if (text !== '' && !parts.some((p) => p.includes(text))) parts.push(text);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ') || 'unknown error';
}

/**
 * Resolves once `proc` has exited — Node has reaped it by then, so no zombie is left — or after
 * `ms`. The SDK's close sends SIGKILL as its last step without waiting for the exit.
 */
async function waitForExit(proc: ChildProcess, ms: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Longest wait for a closed stdio subprocess to exit, ms (after the SDK's own 2 s + 2 s escalation). */
const EXIT_WAIT_MS = 2000;

/**
 * Describes how a stdio subprocess ended ("exited with code 3; stderr: ...", "killed by
 * SIGKILL"); undefined for other transports or while it runs.
 */
function stdioExitDescriber(transport: Transport): (() => string | undefined) | undefined {
  return transport instanceof GroupStdioTransport ? () => transport.describeExit() : undefined;
}

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
  inflight = 0;

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
  /**
   * Requests sent by {@link request}, by id. Their ids (`t1`, `t2`, ...) never collide with the
   * SDK Client's numeric ids; their responses and progress are taken off the transport before the
   * SDK sees them.
   */
  private readonly pending = new Map<string, PendingRequest>();
  private nextRequestId = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
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

  private createTransport(): Transport {
    const c = this.config;
    const headers = c.auth_type === 'headers' ? c.headers ?? {} : {};
    switch (c.connection_type) {
      case 'stdio': {
        const sc = c.stdio_config;
        if (!sc) throw new GatewayError('INTERNAL_ERROR', `upstream ${c.name}: stdio_config missing`);
        const env: Record<string, string> = { ...getDefaultEnvironment() };
        for (const entry of sc.envs ?? []) {
          const eq = entry.indexOf('=');
          env[entry.slice(0, eq)] = entry.slice(eq + 1);
        }
        // its own process group: a terminal's Ctrl-C reaches the gateway only (see stdio-transport.ts);
        // probes with server/discover on the pipe: MCP 2026-07-28 statelessly, else initialize as before
        return new EraStdioTransport({
          command: sc.command,
          args: sc.args ?? [],
          env,
          ...(sc.cwd !== undefined ? { cwd: sc.cwd } : {}),
          // upstream stderr goes to the gateway log, never to a client
          onStderrLine: (line) => this.log.info('upstream stderr', { line }),
        });
      }
      case 'http':
        // probes with server/discover: MCP 2026-07-28 statelessly, else initialize as before
        return new EraHttpTransport(new URL(c.connection_string ?? ''), headers, this.transportFetch);
      case 'sse':
        return new SSEClientTransport(new URL(c.connection_string ?? ''), { requestInit: { headers }, fetch: this.transportFetch });
      case 'inprocess': {
        if (c.inprocess_server === 'demo') return createDemoLeanServer().connect();
        const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
        const server = createInProcessServer(c.inprocess_server ?? 'demo');
        void server.connect(serverSide).catch((err: unknown) => this.log.error('in-process server failed', { error: err }));
        return clientSide;
      }
    }
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
      if (!lastError || now - lastError.at >= RECENT_ERROR_MS) lastError = { message: err.message, at: now };
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
      this.failPending(`closed the connection (${why})`);
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
      const transport = this.createTransport();
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
        this.failPending(message);
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
        if (typeof m.id === 'string' && this.settle(m.id, m.result, m.error)) return;
      } else if (m.id === undefined) {
        if (m.method === 'notifications/progress') {
          const token = m.params?.['progressToken'];
          const p = typeof token === 'string' ? this.pending.get(token) : undefined;
          if (p?.onprogress) {
            p.deadline = Date.now() + p.timeoutMs;
            const { progressToken: _t, ...rest } = m.params as JsonObject;
            p.onprogress(rest as unknown as Progress);
            return;
          }
        } else if (m.method === 'notifications/message' || m.method === 'notifications/resources/updated') {
          this.notifications$.next(message as Notification);
          return;
        }
      }
      sdkOnMessage.call(transport, message, extra);
    };
  }

  /** Completes our request `id` with a response; false if it is not ours (or already settled). */
  private settle(id: string, result: unknown, error: unknown): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    // an error reply is an answer: the upstream is alive, so it counts as a success for the breaker
    this.finish(id, p, 'success');
    if (error !== undefined) {
      const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown; data?: unknown };
      p.reject(
        new UpstreamRpcError({
          code: typeof e.code === 'number' ? e.code : -32603,
          message: typeof e.message === 'string' ? e.message : 'Upstream error',
          ...(e.data !== undefined ? { data: e.data } : {}),
        }),
      );
    } else if (typeof result === 'object' && result !== null && !Array.isArray(result)) {
      p.resolve(result as JsonObject);
    } else {
      p.reject(new GatewayError('INTERNAL_ERROR', `Upstream "${this.name}" answered ${p.method} with a result that is not an object`, { upstream: this.name }));
    }
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
    this.breaker.record(outcome, p.trial);
    this.releaseSlot();
  }

  /** Frees one concurrency slot; a queued call that gets it starts now. */
  private releaseSlot(): void {
    this.limiter.release()?.start();
  }

  /**
   * Rejects every request in flight and every queued call (connection gone). Their outcome is
   * `release` for the breaker: losing a connection is the supervisor's business, and a crash with
   * many calls in flight must not keep the breaker open after the restart.
   */
  private failPending(why: string): void {
    for (const q of this.limiter.drain()) {
      q.fail(new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" ${why} while ${q.method} was queued`, { upstream: this.name }), 'release');
    }
    for (const [id, p] of this.pending) {
      this.finish(id, p, 'release');
      p.reject(new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" ${why} during ${p.method}`, { upstream: this.name }));
    }
    this.stopSweep();
  }

  /**
   * Times out requests past their deadline: the caller gets UPSTREAM_TIMEOUT, the upstream a
   * cancel, the breaker a failure. Queued calls past their deadline fail without being sent.
   */
  private sweep(): void {
    const now = Date.now();
    for (const q of this.limiter.removeWhere((w) => w.deadline <= now)) {
      q.fail(
        new GatewayError('UPSTREAM_TIMEOUT', `Upstream "${this.name}" had no free slot for ${q.method} within ${q.timeoutMs} ms (it was queued, not sent)`, {
          upstream: this.name,
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
      p.reject(
        new GatewayError('UPSTREAM_TIMEOUT', `Upstream "${this.name}" did not answer ${p.method} within ${p.timeoutMs} ms`, {
          upstream: this.name,
          method: p.method,
          timeout_ms: p.timeoutMs,
        }),
      );
    }
    if (this.pending.size === 0 && this.limiter.queued === 0) this.stopSweep();
  }

  private stopSweep(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  private sendCancel(id: string, reason: string): void {
    this.transport?.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } }).catch((err: unknown) => {
      this.log.debug('could not send notifications/cancelled', { error: err });
    });
  }

  private async reloadAll(): Promise<void> {
    await this.reload('tools', false);
    await this.reload('resources', false);
    await this.reload('prompts', false);
  }

  /** Reads every page of `method` and concatenates `field`. */
  private async listAll(method: string, field: string): Promise<JsonObject[]> {
    const out: JsonObject[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const result = await this.request(method, cursor === undefined ? {} : { cursor }, { control: true });
      const items = result[field];
      if (Array.isArray(items)) {
        for (const item of items) if (typeof item === 'object' && item !== null) out.push(item as JsonObject);
      }
      const next = result['nextCursor'];
      if (typeof next !== 'string' || next === '') return out;
      cursor = next;
    }
    this.log.warn('list stopped at the page limit', { method, pages: MAX_LIST_PAGES });
    return out;
  }

  private async reload(kind: CatalogueKind, notify = true): Promise<void> {
    const caps = this.serverCapabilities;
    switch (kind) {
      case 'tools':
        this.catalogue.tools = caps.tools ? (await this.listAll('tools/list', 'tools')).filter((t) => typeof t['name'] === 'string') : [];
        break;
      case 'resources':
        if (caps.resources) {
          this.catalogue.resources = (await this.listAll('resources/list', 'resources')).filter((r) => typeof r['uri'] === 'string');
          this.catalogue.resourceTemplates = (await this.listAll('resources/templates/list', 'resourceTemplates')).filter(
            (r) => typeof r['uriTemplate'] === 'string',
          );
        } else {
          this.catalogue.resources = [];
          this.catalogue.resourceTemplates = [];
        }
        break;
      case 'prompts':
        this.catalogue.prompts = caps.prompts ? (await this.listAll('prompts/list', 'prompts')).filter((p) => typeof p['name'] === 'string') : [];
        break;
    }
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
    const transport = this.transport;
    if (!transport || !this.client) return Promise.reject(this.notConnectedError());
    if (options.cancel?.cancelled) return Promise.reject(this.cancelledError(method));
    if (params['requestState'] !== undefined && !speaksModern(transport)) return Promise.reject(sessionUpstreamStateError(this.name));
    if (options.control === true) {
      return new Promise<JsonObject>((resolve, reject) => this.dispatch(transport, method, params, options, false, false, resolve, reject, undefined));
    }
    const admission = this.breaker.admit();
    if (admission === 'reject') return Promise.reject(this.circuitOpenError(method, options));
    const trial = admission === 'trial';
    if (this.limiter.tryAcquire()) {
      return new Promise<JsonObject>((resolve, reject) => this.dispatch(transport, method, params, options, true, trial, resolve, reject, undefined));
    }
    return this.enqueue(method, params, options, trial);
  }

  /** Registers request `p` under a fresh id and sends it. The caller holds a slot when `guarded`. */
  private dispatch(
    transport: Transport,
    method: string,
    params: JsonObject,
    options: UpstreamCallOptions,
    guarded: boolean,
    trial: boolean,
    resolve: (result: JsonObject) => void,
    reject: (err: Error) => void,
    deadline: number | undefined,
  ): void {
    const id = `t${++this.nextRequestId}`;
    const timeoutMs = options.timeout ?? this.config.request_timeout_ms ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const scope = options.cancel;
    // the 2026-07-28 request fields travel only to an upstream that speaks that revision
    let sent = speaksModern(transport) ? withCallerCapabilities(params, options.clientCapabilities) : sessionEraParams(params);
    if (options.onprogress) sent = { ...sent, _meta: { ...((sent['_meta'] as JsonObject | undefined) ?? {}), progressToken: id } };
    const p: PendingRequest = {
      method,
      resolve,
      reject,
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
        reject(this.cancelledError(method));
      };
    }
    this.sweepTimer ??= setInterval(() => this.sweep(), TIMEOUT_SWEEP_MS);
    const message: JSONRPCRequest = { jsonrpc: '2.0', id, method, params: sent };
    options.onDispatch?.();
    const sendFailed = (err: unknown): void => {
      if (this.pending.get(id) !== p) return;
      const text = err instanceof Error ? err.message : String(err);
      // the breaker counts what the upstream did: a message the gateway cannot even serialise
      // (too deep for JSON.stringify, a bigint, a cycle) never reached it
      if (!serializable(message)) {
        this.finish(id, p, 'release');
        reject(new GatewayError('INVALID_PARAMS', `${method} params cannot be sent to upstream "${this.name}" as JSON: ${text}`, { upstream: this.name, method }));
        return;
      }
      // upstream OAuth: a person must authorize (or the authorization server failed) — not an upstream fault
      if (err instanceof GatewayError && (err.code === 'OAUTH_AUTHORIZATION_REQUIRED' || err.code === 'OAUTH_ERROR')) {
        this.finish(id, p, 'release');
        reject(err);
        return;
      }
      this.finish(id, p, 'failure');
      reject(new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" failed during ${method}: ${text}`, { upstream: this.name }));
    };
    try {
      transport.send(message).catch(sendFailed);
    } catch (err) {
      // a transport whose send throws instead of rejecting
      sendFailed(err);
    }
  }

  /** Queues a call for a concurrency slot, or fails it with UPSTREAM_OVERLOADED when the queue is full. */
  private enqueue(method: string, params: JsonObject, options: UpstreamCallOptions, trial: boolean): Promise<JsonObject> {
    const timeoutMs = options.timeout ?? this.config.request_timeout_ms ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const scope = options.cancel;
    return new Promise<JsonObject>((resolve, reject) => {
      const queued: QueuedCall = {
        method,
        timeoutMs,
        deadline: Date.now() + timeoutMs,
        start: () => {
          if (scope) scope.onCancel = undefined;
          const transport = this.transport;
          if (!transport) {
            this.breaker.record('release', trial);
            this.releaseSlot();
            reject(this.notConnectedError());
            return;
          }
          this.dispatch(transport, method, params, options, true, trial, resolve, reject, queued.deadline);
        },
        fail: (err, outcome) => {
          if (scope) scope.onCancel = undefined;
          this.breaker.record(outcome, trial);
          reject(err);
        },
      };
      if (!this.limiter.enqueue(queued)) {
        this.breaker.record('release', trial);
        reject(this.overloadedError(method));
        return;
      }
      if (scope) {
        scope.onCancel = () => {
          if (this.limiter.remove(queued)) queued.fail(this.cancelledError(method), 'release');
        };
      }
      this.sweepTimer ??= setInterval(() => this.sweep(), TIMEOUT_SWEEP_MS);
    });
  }

  private notConnectedError(): GatewayError {
    const at = this.reconnectAt;
    const next = at === undefined ? '' : `; reconnecting, next attempt at ${new Date(at).toISOString()} (in ${Math.max(0, at - Date.now())} ms)`;
    return new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" is not connected (state: ${this.state})${next}`, {
      upstream: this.name,
      state: this.state,
      ...(this.lastError !== undefined ? { last_error: this.lastError } : {}),
      ...(at !== undefined ? { retry_at: new Date(at).toISOString() } : {}),
    });
  }

  private cancelledError(method: string): GatewayError {
    return new GatewayError('REQUEST_CANCELLED', `Request ${method} to upstream "${this.name}" was cancelled`, { upstream: this.name });
  }

  private circuitOpenError(method: string, options: UpstreamCallOptions): GatewayError {
    const now = Date.now();
    const snap = this.breaker.snapshot;
    if (snap.state === 'open') {
      const wait = Math.max(0, snap.retryAt - now);
      const at = new Date(now + wait).toISOString();
      return new GatewayError(
        'CIRCUIT_OPEN',
        `Circuit breaker for upstream "${this.name}" is open after ${snap.failures} failed call${snap.failures === 1 ? '' : 's'}; ${method} was not sent. Calls will be retried from ${at} (in ${wait} ms)`,
        { upstream: this.name, circuit_state: 'open', retry_at: at, retry_after_ms: wait },
      );
    }
    // half_open with every trial slot taken: the trials end (answer or timeout) within the call timeout
    const wait = options.timeout ?? this.config.request_timeout_ms ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const at = new Date(now + wait).toISOString();
    return new GatewayError(
      'CIRCUIT_OPEN',
      `Circuit breaker for upstream "${this.name}" is half-open and its trial call is in flight; ${method} was not sent. Retry when it ends (by ${at} at the latest)`,
      { upstream: this.name, circuit_state: 'half_open', retry_at: at, retry_after_ms: wait },
    );
  }

  private overloadedError(method: string): GatewayError {
    const { maxActive, maxQueued } = this.limiter.limits;
    return new GatewayError(
      'UPSTREAM_OVERLOADED',
      `Upstream "${this.name}" is overloaded: ${this.limiter.inFlight} calls in flight and ${this.limiter.queued} queued (max_concurrent_calls ${maxActive}, max_queued_calls ${maxQueued}); ${method} was not sent`,
      { upstream: this.name, in_flight: this.limiter.inFlight, queued: this.limiter.queued, max_concurrent_calls: maxActive, max_queued_calls: maxQueued },
    );
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
    this.failPending(manual ? 'was closed' : `was disconnected (${reason})`);
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
    this.stopSweep();
    this.refreshSub.unsubscribe();
    this.refresh$.complete();
    this.catalogueChanged$.complete();
    this.notifications$.complete();
    this.breaker.dispose();
    this.lifecycle$.complete();
    this.state$.complete();
  }
}
