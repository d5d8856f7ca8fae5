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
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  McpError,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
  type JSONRPCRequest,
  type Notification,
  type Progress,
  type ServerCapabilities,
  type Implementation,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { BehaviorSubject, Subject, debounceTime, defer, switchMap, catchError, EMPTY, type Subscription } from 'rxjs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { McpClientConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { UpstreamState } from '../streams/events.js';
import { GatewayError, UpstreamRpcError } from '../codecs/errors.js';
import { createDemoServer } from './inprocess/demo.js';
import { version } from '../version.js';

/** Accepts any JSON object unchanged (zod 4 `custom` does not copy or strip). */
const PASSTHROUGH = z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v));

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

export interface UpstreamCallOptions {
  readonly signal?: AbortSignal;
  readonly onprogress?: (p: Progress) => void;
  /** ms; default from the client config. */
  readonly timeout?: number;
}

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
  /** Progress callbacks by the progress token this gateway put on the upstream request. */
  private readonly progressHandlers = new Map<string, (p: Progress) => void>();
  private nextProgressToken = 0;
  private readonly refresh$ = new Subject<CatalogueKind>();
  private readonly refreshSub: Subscription;
  private closing = false;
  private readonly log: Logger;

  constructor(
    readonly config: McpClientConfig,
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
      if (this.client === client) this.client = undefined;
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
          this.interceptNotifications(transport);
          this.client = client;
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
      await client.close().catch(() => undefined);
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
   * Handles progress and relayed notifications synchronously, in arrival order, before the SDK
   * sees them. The SDK runs notification handlers a tick later than responses, so a progress
   * notification sent right before a result would find its handler already removed and be lost
   * (seen with stdio upstreams: the last progress of a call dropped most of the time).
   */
  private interceptNotifications(transport: Transport): void {
    const sdkOnMessage = transport.onmessage;
    if (!sdkOnMessage) return;
    transport.onmessage = (message, extra) => {
      const m = message as { method?: unknown; id?: unknown; params?: JsonObject };
      if (m.id === undefined && typeof m.method === 'string') {
        if (m.method === 'notifications/progress') {
          const token = m.params?.['progressToken'];
          const handler = typeof token === 'string' ? this.progressHandlers.get(token) : undefined;
          if (handler) {
            handler(m.params as unknown as Progress);
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
   * Sends any request upstream and resolves with its `result` object as received.
   * @throws GatewayError `UPSTREAM_UNAVAILABLE` when not connected, `UPSTREAM_TIMEOUT` on timeout,
   *   `REQUEST_CANCELLED` when `signal` aborts; UpstreamRpcError for a JSON-RPC error reply.
   */
  async request(method: string, params: JsonObject, options: UpstreamCallOptions = {}): Promise<JsonObject> {
    const client = this.client;
    if (!client) {
      throw new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" is not connected (state: ${this.state})`, {
        upstream: this.name,
        state: this.state,
        ...(this.lastError !== undefined ? { last_error: this.lastError } : {}),
      });
    }
    const timeoutMs = options.timeout ?? this.config.request_timeout_ms ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.inflight++;
    try {
      if (options.onprogress) return await this.requestWithProgress(client, method, params, timeoutMs, options.onprogress, options.signal);
      const opts: RequestOptions = { timeout: timeoutMs };
      if (options.signal) opts.signal = options.signal;
      return await client.request({ method, params } as Parameters<Client['request']>[0], PASSTHROUGH, opts);
    } catch (err) {
      throw this.mapError(err, method, options.signal);
    } finally {
      this.inflight--;
    }
  }

  /**
   * A request that asked for progress: this gateway's own progress token, handled by
   * {@link interceptNotifications}; the timeout is an inactivity timeout reset by each progress
   * notification (the SDK's own timer is not used, as its progress handling is bypassed).
   */
  private async requestWithProgress(
    client: Client,
    method: string,
    params: JsonObject,
    timeoutMs: number,
    onprogress: (p: Progress) => void,
    signal: AbortSignal | undefined,
  ): Promise<JsonObject> {
    const token = `tributary-${++this.nextProgressToken}`;
    const local = new AbortController();
    let timedOut = false;
    const onTimeout = (): void => {
      timedOut = true;
      local.abort(new Error('timeout'));
    };
    let timer = setTimeout(onTimeout, timeoutMs);
    const onAbort = (): void => local.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) local.abort(signal.reason);
    this.progressHandlers.set(token, (p) => {
      clearTimeout(timer);
      timer = setTimeout(onTimeout, timeoutMs);
      const { progressToken: _t, ...rest } = p as Progress & { progressToken?: unknown };
      onprogress(rest as Progress);
    });
    const meta = { ...((params['_meta'] as JsonObject | undefined) ?? {}), progressToken: token };
    try {
      return await client.request({ method, params: { ...params, _meta: meta } } as Parameters<Client['request']>[0], PASSTHROUGH, {
        signal: local.signal,
        timeout: 2_147_483_647,
      });
    } catch (err) {
      if (timedOut) throw new GatewayError('UPSTREAM_TIMEOUT', `Upstream "${this.name}" sent no result or progress for ${method} within ${timeoutMs} ms`, { upstream: this.name, method });
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.progressHandlers.delete(token);
    }
  }

  private mapError(err: unknown, method: string, signal: AbortSignal | undefined): Error {
    if (signal?.aborted) return new GatewayError('REQUEST_CANCELLED', `Request ${method} to upstream "${this.name}" was cancelled`, { upstream: this.name });
    if (err instanceof McpError) {
      if (err.code === -32001) {
        return new GatewayError('UPSTREAM_TIMEOUT', `Upstream "${this.name}" did not answer ${method} in time`, { upstream: this.name, method });
      }
      if (err.code === -32000 && /closed/i.test(err.message)) {
        return new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" closed the connection during ${method}`, { upstream: this.name });
      }
      // The SDK prefixes "MCP error <code>: "; give the downstream client the upstream's own message.
      const message = err.message.replace(/^MCP error -?\d+: /, '');
      return new UpstreamRpcError({ code: err.code, message, ...(err.data !== undefined ? { data: err.data } : {}) });
    }
    if (err instanceof GatewayError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new GatewayError('UPSTREAM_UNAVAILABLE', `Upstream "${this.name}" failed during ${method}: ${message}`, { upstream: this.name });
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
    this.refreshSub.unsubscribe();
    this.refresh$.complete();
    this.catalogueChanged$.complete();
    this.notifications$.complete();
    this.state$.complete();
  }
}
