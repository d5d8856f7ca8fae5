/**
 * The MCP method router of the aggregated server, independent of transport (MCP spec 2025-06-18,
 * server features; Bifrost `mcp-server` for the aggregation). It answers `initialize`, `ping`,
 * the list methods from the aggregated catalogue, and routes `tools/call`, `resources/read`,
 * `prompts/get`, `completion/complete` to the owning upstream. It also relays what upstreams send
 * back: progress, log messages, resource updates, list_changed, and server→client requests
 * (`sampling/createMessage`, `elicitation/create`, `roots/list`) to the session whose call caused
 * them.
 */
import { McpError, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { invokeTool, invokeToolTo, type InvokeOptions } from '../../upstreams/invoke.js';
import type { Subscription } from 'rxjs';
import { GatewayError, toJsonRpcError } from '../../base/errors.js';
import {
  LOG_LEVELS,
  Params,
  decodeParams,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type McpLogLevel,
} from '../../codecs/jsonrpc.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import type { Route, UpstreamManager } from '../../upstreams/manager.js';
import { cancelScope, type Completion, type JsonObject, type Upstream } from '../../upstreams/upstream.js';
import { version } from '../../base/version.js';
import type { InflightCall, McpSession, SessionStore } from './session.js';
import type { Tracing } from '../../telemetry/tracing.js';
import type { RequestAuth, ToolFilter } from '../../base/access.js';
import type { ToolMode } from '../../base/principal.js';
import type { ToolCallVia, ToolModeHooks, ToolModeHost } from './tool-mode-hooks.js';
import { answerForSession, isInputRequired } from './modern-input.js';
import { UpstreamRelay } from './dispatch-relay.js';
import { pageOf } from './dispatch-page.js';

/** Protocol versions accepted, newest first (MCP spec revisions). */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'] as const;
export const LATEST_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS[0];
const SESSION_ERA: ReadonlySet<string> = new Set(SUPPORTED_PROTOCOL_VERSIONS);

export interface DispatcherOptions {
  /** Page size of the list methods. */
  readonly pageSize: number;
  /** How long a relayed server→client request may wait for the downstream answer, ms. */
  readonly serverRequestTimeoutMs: number;
  /** Called once per request with its method (metrics). */
  readonly onRequest?: (method: string) => void;
  /**
   * Counts each tool execution against the caller's limit: `undefined` when admitted at once (no
   * limit to count), else a Promise that rejects with RATE_LIMITED over it.
   */
  readonly admitToolExecution?: (auth: RequestAuth | undefined) => Promise<void> | undefined;
  /** OpenTelemetry traces (a span per request, one per upstream call); absent or off: none. */
  readonly tracing?: Tracing;
}

type MethodHandler = (session: McpSession, params: Record<string, unknown> | undefined, call: InflightCall) => Promise<JsonObject> | JsonObject;


export class McpDispatcher implements ToolModeHost {
  private readonly methods: Record<string, MethodHandler>;
  private readonly subs: Subscription[] = [];
  /** Upstream notifications and server→client requests to the sessions. */
  private readonly relay: UpstreamRelay;
  /** The `search` and `code` tool modes; without them every session is in `full` mode. */
  toolModes: ToolModeHooks | undefined;

  constructor(
    private readonly manager: UpstreamManager,
    private readonly sessions: SessionStore,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly options: DispatcherOptions,
  ) {
    this.relay = new UpstreamRelay(sessions, log, options);
    this.methods = {
      ping: () => ({}),
      // a session field read: `full` mode costs one comparison more than before tool modes
      'tools/list': (s, p, c) => (s.toolMode === 'full' ? this.page('tools/list', 'tools', this.visibleTools(c.auth?.filter), p) : this.metaTools(s.toolMode).list(s.toolMode, c)),
      'tools/call': (s, p, c) => (s.toolMode === 'full' ? this.callTool(s, p, c) : this.metaTools(s.toolMode).call(s.toolMode, s, p, c)),
      'resources/list': (_s, p, c) => this.page('resources/list', 'resources', this.visibleResources(c.auth?.filter, this.manager.resources, 'uri'), p),
      'resources/templates/list': (_s, p, c) =>
        this.page('resources/templates/list', 'resourceTemplates', this.visibleResources(c.auth?.filter, this.manager.resourceTemplates, 'uriTemplate'), p),
      'resources/read': (s, p, c) => this.readResource(s, p, c),
      'resources/subscribe': (s, p, c) => this.subscribe(s, p, true, c),
      'resources/unsubscribe': (s, p, c) => this.subscribe(s, p, false, c),
      'prompts/list': (_s, p, c) => this.page('prompts/list', 'prompts', this.visiblePrompts(c.auth?.filter), p),
      'prompts/get': (s, p, c) => this.getPrompt(s, p, c),
      'completion/complete': (s, p, c) => this.complete(s, p, c),
      'logging/setLevel': (s, p) => this.setLevel(s, p),
    };
    manager.serverRequestHandler = (u, req, extra) => this.relay.relayTraced(u, req, extra);
    this.subs.push(
      manager.changed$.subscribe((kind) => this.relay.broadcast({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` })),
      manager.notifications$.subscribe(({ upstream, notification }) => this.relay.onUpstreamNotification(upstream, notification.method, notification.params as JsonObject | undefined)),
    );
  }

  /** Stops relaying upstream events. */
  dispose(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
  }

  /** The `initialize` result for a new session (version negotiation per MCP "Lifecycle"). */
  initializeResult(session: McpSession): JsonObject {
    const instructions = this.manager
      .list()
      .filter((u) => u.instructions)
      .map((u) => `## ${u.name}\n${u.instructions ?? ''}`)
      .join('\n\n');
    return {
      protocolVersion: session.protocolVersion,
      capabilities: this.manager.aggregateCapabilities(),
      serverInfo: { name: 'tributary', title: 'Tributary MCP gateway', version },
      ...(instructions ? { instructions } : {}),
    };
  }

  /** Picks the version to answer an `initialize` with: the client's if supported, else the latest. */
  negotiateVersion(requested: string): string {
    return (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
  }

  /**
   * Answers one request of an initialized session. Resolves with the JSON-RPC response object;
   * never rejects (errors become JSON-RPC error responses).
   */
  handleRequest(session: McpSession, msg: JsonRpcRequest, call: InflightCall): Promise<JsonRpcResponse> {
    const tracing = this.options.tracing;
    if (tracing === undefined || !tracing.enabled) return this.answer(session, msg, call);
    const scope = tracing.startMcp({
      method: msg.method,
      params: msg.params,
      requestId: msg.id,
      sessionId: session.id,
      protocolVersion: session.protocolVersion,
      protocol: call.channel === session.standalone ? 'websocket' : 'http',
      traceparent: call.traceHeaders?.traceparent ?? '',
      tracestate: call.traceHeaders?.tracestate ?? '',
    });
    call.trace = scope;
    // the span is the active context while the request is answered (log lines carry its ids)
    return tracing.within(scope, () => this.answer(session, msg, call)).then((response) => {
      tracing.endMcp(scope, response as { error?: { code: number; message: string } });
      return response;
    });
  }

  /**
   * {@link handleRequest} with the response going to `done` (the per-call path of the transports):
   * `tools/call` of a `full`-mode session, untraced, runs as callbacks from the upstream's answer
   * to `done` (no Promise chain or async frame of its own); other requests take
   * {@link handleRequest}. `done.resolve` gets the JSON-RPC response (errors included);
   * `done.reject` only an unexpected failure of the dispatcher itself. Either may be called
   * before this returns.
   */
  handleRequestTo(session: McpSession, msg: JsonRpcRequest, call: InflightCall, done: Completion<JsonRpcResponse>): void {
    const tracing = this.options.tracing;
    if (msg.method !== 'tools/call' || session.toolMode !== 'full' || (tracing !== undefined && tracing.enabled)) {
      this.handleRequest(session, msg, call).then(
        (response) => done.resolve(response),
        (err: unknown) => done.reject(err),
      );
      return;
    }
    this.options.onRequest?.(msg.method);
    let route: Route;
    try {
      route = this.routeToolCall(msg.params, call);
    } catch (err) {
      done.resolve(this.errorResponse(msg, err));
      return;
    }
    let admitting: Promise<void> | undefined;
    try {
      admitting = this.options.admitToolExecution?.(call.auth);
    } catch (err) {
      done.resolve(this.errorResponse(msg, err));
      return;
    }
    if (admitting !== undefined) {
      admitting.then(
        () => this.invokeTo(session, msg, call, route, done),
        (err: unknown) => done.resolve(this.errorResponse(msg, err)),
      );
      return;
    }
    this.invokeTo(session, msg, call, route, done);
  }

  /** Starts the upstream call of a routed `tools/call`; its answer goes to a {@link ToolCallReply}. */
  private invokeTo(session: McpSession, msg: JsonRpcRequest, call: InflightCall, route: Route, done: Completion<JsonRpcResponse>): void {
    const params = msg.params ?? {};
    invokeToolTo(this.bus, route, params, this.invokeOptions(session, params, call, route, undefined), new ToolCallReply(this, session, msg, call, done));
  }

  /**
   * The answer of `tools/call` once the upstream's result is in: a 2026-07-28 upstream's
   * `input_required` goes through {@link answerInput} first, as in {@link answer}.
   */
  toolCallAnswered(session: McpSession, msg: JsonRpcRequest, call: InflightCall, result: JsonObject, done: Completion<JsonRpcResponse>): void {
    if (!(isInputRequired(result) && SESSION_ERA.has(session.protocolVersion))) {
      done.resolve({ jsonrpc: '2.0', id: msg.id, result });
      return;
    }
    this.answerInput(session, msg, call, result, this.methods['tools/call'] as MethodHandler).then(
      (answered) => done.resolve({ jsonrpc: '2.0', id: msg.id, result: answered }),
      (err: unknown) => done.resolve(this.errorResponse(msg, err)),
    );
  }

  /** The JSON-RPC error response for a request handler's failure (an unexpected one is logged). */
  errorResponse(msg: JsonRpcRequest, err: unknown): JsonRpcResponse {
    if (!(err instanceof GatewayError) && !(err instanceof McpError) && err instanceof Error && err.name !== 'UpstreamRpcError') {
      this.log.error('request handler failed', { method: msg.method, error: err });
    }
    return { jsonrpc: '2.0', id: msg.id, error: toJsonRpcError(err) };
  }

  /**
   * A 2026-07-28 upstream asked for client input: a session-based client is asked on its session
   * and the upstream retried with the answers.
   */
  private answerInput(session: McpSession, msg: JsonRpcRequest, call: InflightCall, result: JsonObject, handler: MethodHandler): Promise<JsonObject> {
    return answerForSession(
      result,
      session.clientCapabilities,
      (method, params) => this.relay.askSession(session, call, method, params, undefined),
      async (inputResponses, requestState) => handler(session, { ...msg.params, inputResponses, ...(requestState !== undefined ? { requestState } : {}) }, call),
    );
  }

  private async answer(session: McpSession, msg: JsonRpcRequest, call: InflightCall): Promise<JsonRpcResponse> {
    this.options.onRequest?.(msg.method);
    // own properties only: "constructor", "__proto__" and friends are not methods
    const handler = Object.hasOwn(this.methods, msg.method) ? this.methods[msg.method] : undefined;
    if (handler === undefined) {
      return { jsonrpc: '2.0', id: msg.id, error: new GatewayError('METHOD_NOT_FOUND', `Method not found: ${msg.method}`, { method: msg.method }).toJsonRpc() };
    }
    try {
      let result = await handler(session, msg.params, call);
      // a 2026-07-28 upstream asked for client input: a session-based client is asked on its
      // session and the upstream retried with the answers (a modern client gets the result as is)
      if (isInputRequired(result) && SESSION_ERA.has(session.protocolVersion)) result = await this.answerInput(session, msg, call, result, handler);
      return { jsonrpc: '2.0', id: msg.id, result };
    } catch (err) {
      return this.errorResponse(msg, err);
    }
  }

  /** Handles a client notification (cancelled, progress, initialized, roots/list_changed). */
  handleNotification(session: McpSession, msg: JsonRpcNotification): void {
    switch (msg.method) {
      case 'notifications/initialized':
        session.initialized = true;
        return;
      case 'notifications/cancelled': {
        const p = msg.params;
        if (!Params.cancelled.is(p)) return;
        const call = session.calls.get(p.requestId);
        if (call) cancelScope(call, p.reason ?? 'cancelled by the client');
        return;
      }
      case 'notifications/progress': {
        // progress on a relayed server→client request goes back to the upstream that asked
        const token = msg.params?.['progressToken'];
        for (const pending of session.pending.values()) {
          if (pending.progressToken !== undefined && pending.progressToken === token) {
            void pending.upstream.notify('notifications/progress', msg.params);
            return;
          }
        }
        return;
      }
      case 'notifications/roots/list_changed':
        for (const u of this.manager.list()) void u.notify('notifications/roots/list_changed');
        return;
      default:
        this.log.debug('ignored client notification', { method: msg.method });
    }
  }

  /** Delivers the client's answer to a relayed server→client request. */
  handleResponse(session: McpSession, msg: JsonRpcResponse): void {
    const pending = session.pending.get(msg.id);
    if (!pending) {
      this.log.debug('response to an unknown server request', { id: msg.id });
      return;
    }
    session.pending.delete(msg.id);
    if (msg.error) pending.reject(msg.error);
    else pending.resolve(msg.result ?? {});
  }

  /**
   * The tool mode of a new session (see {@link ToolModeHooks.modeFor}); `full` when no tool modes
   * are configured. @throws GatewayError INVALID_REQUEST for a bad `x-tributary-tool-mode` header.
   */
  toolModeFor(header: string, clientName: string, auth: RequestAuth | undefined): ToolMode {
    return this.toolModes ? this.toolModes.modeFor(header, clientName, auth) : 'full';
  }

  private metaTools(mode: ToolMode): ToolModeHooks {
    if (!this.toolModes) throw new GatewayError('INTERNAL_ERROR', `Tool mode ${mode} is not available`);
    return this.toolModes;
  }

  /** {@link ToolModeHost.callToolVia}: `tools/call` through the normal path, from a meta-tool. */
  callToolVia(session: McpSession, params: Record<string, unknown>, call: InflightCall, via: ToolCallVia): Promise<JsonObject> {
    return this.callTool(session, params, call, via);
  }

  /** The tools `filter` lets the caller see (all without a filter). */
  visibleTools(filter: ToolFilter | undefined): readonly JsonObject[] {
    const all = this.manager.tools;
    if (!filter) return all;
    return all.filter((t) => {
      const r = this.manager.routeTool(t['name'] as string);
      return r !== undefined && filter.allowsTool(r.upstream.name, r.name);
    });
  }

  private visiblePrompts(filter: ToolFilter | undefined): readonly JsonObject[] {
    const all = this.manager.prompts;
    if (!filter) return all;
    return all.filter((p) => {
      const r = this.manager.routePrompt(p['name'] as string);
      return r !== undefined && filter.allowsClient(r.upstream.name);
    });
  }

  /** Resources or templates of the clients `filter` allows (templates are owned by their fixed prefix). */
  private visibleResources(filter: ToolFilter | undefined, all: readonly JsonObject[], field: 'uri' | 'uriTemplate'): readonly JsonObject[] {
    if (!filter) return all;
    return all.filter((r) => {
      const value = r[field] as string;
      const brace = value.indexOf('{');
      const owner = this.manager.routeResource(brace < 0 ? value : value.slice(0, brace));
      return owner !== undefined && filter.allowsClient(owner.name);
    });
  }

  /** @throws GatewayError TOOL_NOT_ALLOWED (403) when the caller's filter excludes `client`. */
  private checkClient(filter: ToolFilter | undefined, client: string, what: string): void {
    if (filter && !filter.allowsClient(client)) {
      throw new GatewayError('TOOL_NOT_ALLOWED', `${what} is not allowed for this key`, { client });
    }
  }

  private page(method: string, field: string, items: readonly JsonObject[], params: Record<string, unknown> | undefined): JsonObject {
    return pageOf(method, field, items, params, this.options.pageSize);
  }

  private async callTool(session: McpSession, params: Record<string, unknown> | undefined, call: InflightCall, via?: ToolCallVia): Promise<JsonObject> {
    const route = this.routeToolCall(params, call);
    await this.options.admitToolExecution?.(call.auth);
    return invokeTool(this.bus, route, params ?? {}, this.invokeOptions(session, params ?? {}, call, route, via));
  }

  /**
   * The route of a `tools/call`, checked against the caller's filter.
   * @throws GatewayError INVALID_PARAMS (bad params, unknown tool), TOOL_NOT_ALLOWED.
   */
  private routeToolCall(params: Record<string, unknown> | undefined, call: InflightCall): Route {
    const p = decodeParams(Params.toolsCall, params, 'tools/call');
    const route = this.manager.routeTool(p.name);
    if (!route) throw new GatewayError('INVALID_PARAMS', `Unknown tool: ${p.name}`, { tool: p.name });
    const filter = call.auth?.filter;
    if (filter && !filter.allowsTool(route.upstream.name, route.name)) {
      throw new GatewayError('TOOL_NOT_ALLOWED', `Tool ${p.name} is not allowed for this key`, { tool: p.name });
    }
    return route;
  }

  /** The {@link InvokeOptions} of a routed `tools/call` (sets `call.upstream`). */
  private invokeOptions(session: McpSession, params: Record<string, unknown>, call: InflightCall, route: Route, via: ToolCallVia | undefined): InvokeOptions {
    call.upstream = route.upstream;
    const token = (params['_meta'] as JsonObject | undefined)?.['progressToken'];
    const principal = call.auth?.principal;
    // one options object with only the fields that are set (no temporary objects per call)
    const options: { -readonly [K in keyof InvokeOptions]: InvokeOptions[K] } = {
      surface: via?.surface ?? 'mcp',
      parentCallId: via?.parentCallId,
      tenant: principal?.tenantId,
      virtualKey: principal?.virtualKeyId,
      principal: principal?.id,
      clientCapabilities: session.clientCapabilities,
      cancel: call,
    };
    if (call.trace !== undefined && this.options.tracing !== undefined) options.trace = { tracing: this.options.tracing, parent: call.trace };
    if (typeof token === 'string' || typeof token === 'number') {
      options.onprogress = (progress: Progress) => {
        session.sendRelated(call, { jsonrpc: '2.0', method: 'notifications/progress', params: { ...progress, progressToken: token } });
      };
    }
    return options;
  }

  /**
   * Sends a downstream request to its upstream on behalf of `call`: cancelled with the call, and
   * when the downstream asked for progress (`_meta.progressToken`), the upstream's progress comes
   * back to it under the downstream's own token.
   */
  private forward(session: McpSession, call: InflightCall, upstream: Upstream, method: string, params: Record<string, unknown>): Promise<JsonObject> {
    call.upstream = upstream;
    const token = (params['_meta'] as JsonObject | undefined)?.['progressToken'];
    if (typeof token !== 'string' && typeof token !== 'number') return upstream.request(method, params, { cancel: call, clientCapabilities: session.clientCapabilities });
    return upstream.request(method, params, {
      cancel: call,
      clientCapabilities: session.clientCapabilities,
      onprogress: (progress) => {
        session.sendRelated(call, { jsonrpc: '2.0', method: 'notifications/progress', params: { ...progress, progressToken: token } });
      },
    });
  }

  private routeResourceOrThrow(uri: string, filter?: ToolFilter): Upstream {
    const upstream = this.manager.routeResource(uri);
    if (!upstream) throw new GatewayError('RESOURCE_NOT_FOUND', `Resource not found: ${uri}`, { uri });
    this.checkClient(filter, upstream.name, `Resource ${uri}`);
    return upstream;
  }

  private async readResource(session: McpSession, params: Record<string, unknown> | undefined, call: InflightCall): Promise<JsonObject> {
    const p = decodeParams(Params.resourceUri, params, 'resources/read');
    const upstream = this.routeResourceOrThrow(p.uri, call.auth?.filter);
    call.upstream = upstream;
    return this.forward(session, call, upstream, 'resources/read', params ?? {});
  }

  private async subscribe(session: McpSession, params: Record<string, unknown> | undefined, on: boolean, call: InflightCall): Promise<JsonObject> {
    const method = on ? 'resources/subscribe' : 'resources/unsubscribe';
    const p = decodeParams(Params.resourceUri, params, method);
    const upstream = this.routeResourceOrThrow(p.uri, on ? call.auth?.filter : undefined);
    const others = [...this.sessions.values()].some((s) => s !== session && s.subscriptions.has(p.uri));
    if (on) session.subscriptions.add(p.uri);
    else session.subscriptions.delete(p.uri);
    const caps = upstream.serverCapabilities.resources as { subscribe?: boolean } | undefined;
    // The upstream holds one subscription per URI on behalf of all sessions.
    if (caps?.subscribe && !others) await upstream.request(method, { uri: p.uri });
    return {};
  }

  private async getPrompt(session: McpSession, params: Record<string, unknown> | undefined, call: InflightCall): Promise<JsonObject> {
    const p = decodeParams(Params.promptsGet, params, 'prompts/get');
    const route = this.manager.routePrompt(p.name);
    if (!route) throw new GatewayError('INVALID_PARAMS', `Unknown prompt: ${p.name}`, { prompt: p.name });
    this.checkClient(call.auth?.filter, route.upstream.name, `Prompt ${p.name}`);
    call.upstream = route.upstream;
    return this.forward(session, call, route.upstream, 'prompts/get', { ...params, name: route.name });
  }

  private async complete(session: McpSession, params: Record<string, unknown> | undefined, call: InflightCall): Promise<JsonObject> {
    const p = decodeParams(Params.complete, params, 'completion/complete');
    let upstream: Upstream;
    let forwarded: Record<string, unknown>;
    if (p.ref.type === 'ref/prompt') {
      const route = this.manager.routePrompt(p.ref.name);
      if (!route) throw new GatewayError('INVALID_PARAMS', `Unknown prompt: ${p.ref.name}`, { prompt: p.ref.name });
      this.checkClient(call.auth?.filter, route.upstream.name, `Prompt ${p.ref.name}`);
      upstream = route.upstream;
      forwarded = { ...params, ref: { ...(params?.['ref'] as JsonObject), name: route.name } };
    } else {
      upstream = this.routeResourceOrThrow(p.ref.uri, call.auth?.filter);
      forwarded = params ?? {};
    }
    if (!upstream.serverCapabilities.completions) return { completion: { values: [], hasMore: false } };
    call.upstream = upstream;
    return this.forward(session, call, upstream, 'completion/complete', forwarded);
  }

  private async setLevel(session: McpSession, params: Record<string, unknown> | undefined): Promise<JsonObject> {
    const p = decodeParams(Params.setLevel, params, 'logging/setLevel');
    session.logLevel = p.level;
    // Upstreams log at the most verbose level any session asked for; each session is filtered.
    let min: McpLogLevel = p.level;
    for (const s of this.sessions.values()) {
      if (s.logLevel && LOG_LEVELS.indexOf(s.logLevel) < LOG_LEVELS.indexOf(min)) min = s.logLevel;
    }
    await Promise.all(
      this.manager
        .list()
        .filter((u) => u.serverCapabilities.logging && u.state === 'connected')
        .map((u) => u.request('logging/setLevel', { level: min }).catch((err: unknown) => this.log.debug('setLevel upstream failed', { upstream: u.name, error: err }))),
    );
    return {};
  }

  /** Sends `notifications/tools/list_changed` to the sessions `filter` picks (their tool access changed). */
  notifyToolsChanged(filter: (s: McpSession) => boolean): void {
    this.relay.broadcast({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, filter);
  }
}

/**
 * The upstream outcome of one `tools/call` on the callback path, turned into its JSON-RPC
 * response (see {@link McpDispatcher.handleRequestTo}).
 */
class ToolCallReply implements Completion<JsonObject> {
  constructor(
    private readonly dispatcher: McpDispatcher,
    private readonly session: McpSession,
    private readonly msg: JsonRpcRequest,
    private readonly call: InflightCall,
    private readonly done: Completion<JsonRpcResponse>,
  ) {}

  resolve(result: JsonObject): void {
    this.dispatcher.toolCallAnswered(this.session, this.msg, this.call, result, this.done);
  }

  reject(err: unknown): void {
    this.done.resolve(this.dispatcher.errorResponse(this.msg, err));
  }
}
