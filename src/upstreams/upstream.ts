/**
 * One upstream MCP server: an SDK `Client` over the configured transport (`stdio`, `http`
 * (Streamable HTTP), `sse`, `inprocess`), its state (`connected` / `disconnected` / `error`) and
 * its catalogue (tools, resources, resource templates, prompts), reloaded on
 * `notifications/{tools,resources,prompts}/list_changed`.
 *
 * Results are passed through as the upstream sent them: requests use a schema that accepts any
 * object, so unknown fields, `_meta`, `structuredContent` and `isError` reach the downstream
 * client untouched, and the hot path pays no per-call schema validation.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
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
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { McpClientConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { UpstreamState } from '../streams/events.js';
import { GatewayError, UpstreamRpcError } from '../codecs/errors.js';
import { createDemoServer } from './inprocess/demo.js';
import { version } from '../version.js';

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
}

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
}

/** How often requests in flight are checked for timeouts, ms. */
const TIMEOUT_SWEEP_MS = 100;

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const MAX_LIST_PAGES = 1000;

export class Upstream {
  readonly name: string;
  readonly state$ = new BehaviorSubject<UpstreamState>('disconnected');
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
  private closing = false;
  private readonly log: Logger;

  /** Per-call cost in USD by upstream tool name (Bifrost `tool_pricing`). */
  pricing: Readonly<Record<string, number>> = {};

  constructor(
    /** Replaced (never mutated) by {@link UpstreamManager.updateConfig} for changes that need no reconnect. */
    public config: McpClientConfig,
    log: Logger,
    private readonly serverRequestHandler: ServerRequestHandler,
  ) {
    this.name = config.name;
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

  get state(): UpstreamState {
    return this.state$.value;
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
        const transport = new StdioClientTransport({
          command: sc.command,
          args: [...(sc.args ?? [])],
          env,
          stderr: 'pipe',
          ...(sc.cwd !== undefined ? { cwd: sc.cwd } : {}),
        });
        const stderr = transport.stderr as Readable | null;
        if (stderr) {
          // Upstream stderr goes to the gateway log, never to a client.
          const rl = createInterface({ input: stderr });
          rl.on('line', (line) => this.log.info('upstream stderr', { line: line.slice(0, 4000) }));
        }
        return transport;
      }
      case 'http':
        return new StreamableHTTPClientTransport(new URL(c.connection_string ?? ''), { requestInit: { headers } });
      case 'sse':
        return new SSEClientTransport(new URL(c.connection_string ?? ''), { requestInit: { headers } });
      case 'inprocess': {
        const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
        const server = createDemoServer();
        void server.connect(serverSide).catch((err: unknown) => this.log.error('in-process server failed', { error: err }));
        return clientSide;
      }
    }
  }

  /**
   * Connects, initializes and loads the whole catalogue. Resolves when `connected`; on failure the
   * state is `error` and the promise rejects with the cause. Bounded by `connect_timeout_ms`.
   */
  async connect(): Promise<void> {
    this.closing = false;
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
    client.onerror = (err) => this.log.warn('upstream transport error', { error: err });
    client.onclose = () => {
      if (this.client === client) {
        this.client = undefined;
        this.transport = undefined;
        this.failPending('closed the connection');
      }
      if (!this.closing) {
        this.log.warn('upstream connection closed');
        this.setState('disconnected', 'connection closed');
      }
    };

    const timeoutMs = this.config.connect_timeout_ms ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      const transport = this.createTransport();
      await Promise.race([
        (async () => {
          await client.connect(transport, { timeout: timeoutMs });
          this.interceptMessages(transport);
          this.client = client;
          this.transport = transport;
          this.serverCapabilities = client.getServerCapabilities() ?? {};
          this.serverInfo = client.getServerVersion();
          this.instructions = client.getInstructions();
          await this.reloadAll();
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`connect timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.client = undefined;
      this.transport = undefined;
      await client.close().catch(() => undefined);
      this.failPending(message);
      this.setState('error', message);
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
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
    this.pending.delete(id);
    if (p.scope) p.scope.onCancel = undefined;
    this.inflight--;
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

  /** Rejects every request in flight (connection gone). */
  private failPending(why: string): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      this.inflight--;
      p.reject(new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" ${why} during ${p.method}`, { upstream: this.name }));
    }
    this.stopSweep();
  }

  /** Times out requests past their deadline: the caller gets UPSTREAM_TIMEOUT, the upstream a cancel. */
  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      this.inflight--;
      if (p.scope) p.scope.onCancel = undefined;
      this.sendCancel(id, `timed out after ${p.timeoutMs} ms`);
      p.reject(
        new GatewayError('UPSTREAM_TIMEOUT', `Upstream "${this.name}" did not answer ${p.method} within ${p.timeoutMs} ms`, {
          upstream: this.name,
          method: p.method,
          timeout_ms: p.timeoutMs,
        }),
      );
    }
    if (this.pending.size === 0) this.stopSweep();
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
      const result = await this.request(method, cursor === undefined ? {} : { cursor });
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
   * @throws GatewayError `UPSTREAM_UNAVAILABLE` when not connected or the connection drops,
   *   `UPSTREAM_TIMEOUT` after `timeout` ms without result or progress, `REQUEST_CANCELLED` when
   *   cancelled; UpstreamRpcError for a JSON-RPC error reply.
   */
  request(method: string, params: JsonObject, options: UpstreamCallOptions = {}): Promise<JsonObject> {
    const transport = this.transport;
    if (!transport || !this.client) {
      return Promise.reject(
        new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" is not connected (state: ${this.state})`, {
          upstream: this.name,
          state: this.state,
          ...(this.lastError !== undefined ? { last_error: this.lastError } : {}),
        }),
      );
    }
    const scope = options.cancel;
    if (scope?.cancelled) {
      return Promise.reject(new GatewayError('REQUEST_CANCELLED', `Request ${method} to upstream "${this.name}" was cancelled`, { upstream: this.name }));
    }
    const id = `t${++this.nextRequestId}`;
    const timeoutMs = options.timeout ?? this.config.request_timeout_ms ?? DEFAULT_REQUEST_TIMEOUT_MS;
    let sent = params;
    if (options.onprogress) sent = { ...params, _meta: { ...((params['_meta'] as JsonObject | undefined) ?? {}), progressToken: id } };
    return new Promise<JsonObject>((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject, timeoutMs, deadline: Date.now() + timeoutMs, onprogress: options.onprogress, scope });
      this.inflight++;
      if (scope) {
        scope.onCancel = (reason) => {
          if (!this.pending.delete(id)) return;
          this.inflight--;
          this.sendCancel(id, reason);
          reject(new GatewayError('REQUEST_CANCELLED', `Request ${method} to upstream "${this.name}" was cancelled`, { upstream: this.name }));
        };
      }
      this.sweepTimer ??= setInterval(() => this.sweep(), TIMEOUT_SWEEP_MS);
      transport.send({ jsonrpc: '2.0', id, method, params: sent }).catch((err: unknown) => {
        if (!this.pending.delete(id)) return;
        this.inflight--;
        if (scope) scope.onCancel = undefined;
        const message = err instanceof Error ? err.message : String(err);
        reject(new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" failed during ${method}: ${message}`, { upstream: this.name }));
      });
    });
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

  /** Closes the client (for stdio: ends the subprocess). Idempotent. */
  async close(reason = 'shutdown'): Promise<void> {
    this.closing = true;
    const client = this.client;
    this.client = undefined;
    this.transport = undefined;
    this.failPending('was closed');
    if (client) {
      try {
        await client.close();
      } catch (err) {
        this.log.warn('error while closing upstream', { error: err });
      }
    }
    this.setState('disconnected', reason);
  }

  /** Releases the reload pipeline; call after {@link close} when the upstream is gone for good. */
  dispose(): void {
    this.stopSweep();
    this.refreshSub.unsubscribe();
    this.refresh$.complete();
    this.catalogueChanged$.complete();
    this.notifications$.complete();
    this.state$.complete();
  }
}
