/**
 * MCP revision 2026-07-28 ("modern", stateless) next to the session-based revisions, on the same
 * endpoints. A modern request carries its protocol version, client capabilities and client info in
 * `params._meta` (https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning); there
 * is no `initialize` and no session. The gateway serves each one through the same
 * {@link McpDispatcher} as session traffic, with a session object that lives only as long as the
 * request, so nothing a modern request needs is kept between requests.
 *
 * What differs from the session-based revisions (https://modelcontextprotocol.io/specification/2026-07-28/changelog):
 * - `server/discover` answers versions, aggregated capabilities and identity;
 * - every result carries `resultType`; list results and `resources/read` carry `ttlMs`/`cacheScope`
 *   (https://modelcontextprotocol.io/specification/2026-07-28/server/utilities/caching);
 * - `ping`, `logging/setLevel`, `resources/(un)subscribe`, `initialize` are unknown methods;
 *   `subscriptions/listen` replaces the GET stream and resource subscriptions
 *   (https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions);
 * - log messages go out only when the request's `_meta` names a log level;
 * - server→client requests relayed from upstreams become `input_required` results the client
 *   answers by retrying (https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/mrtr);
 * - resource not found is -32602; -32020/-32021/-32022 are the new errors.
 */
import { randomBytes } from 'node:crypto';
import { GatewayError, type JsonRpcErrorObject } from '../../base/errors.js';
import type { JsonRpcId, JsonRpcRequest, JsonRpcResponse } from '../../codecs/jsonrpc.js';
import type { RequestAuth } from '../../base/access.js';
import type { Logger } from '../../log/logger.js';
import { cancelScope, type JsonObject } from '../../upstreams/upstream.js';
import type { McpDispatcher } from './dispatch.js';
import { McpSession, newInflightCall, type OutboundChannel, type SessionStore } from './session.js';
import { ALL_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS, checkVersion, copyWith, isObject, readMeta, upstreamParams, type ModernMeta } from './modern-meta.js';
import { NAMED } from './modern-headers.js';
import { shapeResponse } from './modern-shape.js';
import { INPUT_CAPABILITY, MRTR_METHODS, ModernChannel, STATE_PREFIX, missingStateReason, type CallState, type Outcome } from './modern-parking.js';
import { listenFilterOf, openSubscription, type ListenFilter, type ListenSink } from './modern-listen.js';

// the entry other modules import: the pieces live in the modern-*.ts modules next to this one
export { MODERN_PROTOCOL_VERSIONS, ALL_PROTOCOL_VERSIONS, META, isModernVersion, isModernMessage, readMeta, checkVersion, upstreamParams, type Refusal, type ModernMeta } from './modern-meta.js';
export { decodeHeaderValue, checkHeaders, checkParamHeaders, paramHeadersOf, type ParamHeaders } from './modern-headers.js';
export { statusOf, shapeResponse } from './modern-shape.js';
export { listenFilterOf, type ListenFilter, type ListenSink } from './modern-listen.js';

/** Methods a modern client may call; anything else is -32601 (HTTP 404). */
const MODERN_METHODS: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'subscriptions/listen',
]);

/** Capabilities every request-scoped session claims towards the dispatcher (see {@link ModernMcp.handle}). */
const OFFERED_TO_DISPATCHER: Readonly<Record<string, unknown>> = { sampling: {}, elicitation: {} };

export interface ModernOptions {
  /**
   * `ttlMs` of catalogue results (`tools/list`, `prompts/list`, `resources/list`,
   * `resources/templates/list`, `server/discover`), ms. The gateway holds the catalogue in memory
   * and rebuilds it when an upstream says `list_changed` or reconnects, and a `subscriptions/listen`
   * stream carries that change at once; the TTL bounds how long a client that does not listen may
   * keep a list an upstream without `listChanged` has since changed.
   */
  readonly catalogueTtlMs: number;
  /** How long a parked call waits for the client's `inputResponses` retry, ms. */
  readonly inputTimeoutMs: number;
  /** Keep-alive comment interval on `subscriptions/listen` streams, ms. */
  readonly keepAliveMs: number;
}

export const MODERN_DEFAULTS: ModernOptions = { catalogueTtlMs: 60_000, inputTimeoutMs: 300_000, keepAliveMs: 15_000 };

/** Context of one modern request, from its transport. */
export interface ModernCallContext {
  readonly auth: RequestAuth | undefined;
  readonly toolModeHeader: string;
  /** The request's own response stream (SSE on HTTP, the socket on WebSocket), if it can carry messages. */
  readonly channel: OutboundChannel | undefined;
  readonly traceHeaders?: { readonly traceparent: string; readonly tracestate: string } | undefined;
}

/** Handle on a modern call in flight. */
export type ModernCall = ModernCallOf<JsonRpcResponse>;

/** Handle on a modern call in flight whose response is `R`. */
export interface ModernCallOf<R> {
  /** HTTP status for a Streamable HTTP reply. */
  readonly status: number;
  /** The JSON-RPC response; never rejects. */
  readonly response: Promise<R>;
  /** The response stream went away: cancels the call unless it is parked waiting for `inputResponses`. */
  readonly abandon: (reason: string) => void;
}

function settled(status: number, response: JsonRpcResponse): ModernCall {
  return { status, response: Promise.resolve(response), abandon: () => undefined };
}

/**
 * The transport-independent core: validates `_meta`, runs the request through the dispatcher
 * with a request-scoped session, shapes the result for the 2026-07-28 wire, and parks calls that
 * wait for client input between an `input_required` answer and its retry.
 */
export class ModernMcp {
  /**
   * requestState → parked call. In memory by necessity: a server→client request relayed from a
   * session-based upstream is bound to the upstream call that is still running. Calls that never
   * park (everything else) keep nothing here.
   */
  private readonly parked = new Map<string, CallState>();

  constructor(
    private readonly dispatcher: McpDispatcher,
    private readonly sessions: SessionStore,
    private readonly log: Logger,
    readonly options: ModernOptions = MODERN_DEFAULTS,
  ) {}

  /** Calls waiting for an `inputResponses` retry (metrics, tests). */
  get parkedCount(): number {
    return this.parked.size;
  }

  /** The `server/discover` result (https://modelcontextprotocol.io/specification/2026-07-28/server/discover). */
  discover(): JsonObject {
    const init = this.dispatcher.initializeResult(new McpSession(MODERN_PROTOCOL_VERSIONS[0], {}, { name: '' }));
    const caps = { ...(init['capabilities'] as JsonObject) };
    // log messages are asked for per request (`_meta` logLevel), not with logging/setLevel
    delete caps['logging'];
    // resource updates come through subscriptions/listen, not resources/subscribe
    if (isObject(caps['resources'])) caps['resources'] = { listChanged: true };
    return {
      supportedVersions: ALL_PROTOCOL_VERSIONS,
      capabilities: caps,
      ...(init['instructions'] !== undefined ? { instructions: init['instructions'] } : {}),
    };
  }

  /**
   * Serves one modern request whose transport checks passed (and whose `_meta` {@link readMeta}
   * accepted). Never rejects: errors become JSON-RPC error responses.
   */
  handle(msg: JsonRpcRequest, meta: ModernMeta, ctx: ModernCallContext): ModernCall {
    if (!MODERN_METHODS.has(msg.method)) {
      return settled(404, { jsonrpc: '2.0', id: msg.id, error: new GatewayError('METHOD_NOT_FOUND', `Method not found: ${msg.method}`, { method: msg.method }).toJsonRpc() });
    }
    if (msg.method === 'server/discover') return settled(200, this.shape(msg, { result: this.discover() }, ctx.auth));
    const params = msg.params;
    const state = params?.['requestState'];
    // a state the gateway issued resumes its parked call; any other belongs to a 2026-07-28
    // upstream's own input_required and travels to it untouched with the inputResponses
    if (typeof state === 'string' && MRTR_METHODS.has(msg.method) && state.startsWith(STATE_PREFIX)) return this.resume(msg, state, ctx);
    let toolMode;
    try {
      toolMode = this.dispatcher.toolModeFor(ctx.toolModeHeader, meta.clientInfo.name, ctx.auth);
    } catch (err) {
      return settled(400, { jsonrpc: '2.0', id: msg.id, error: (err as GatewayError).toJsonRpc() });
    }
    // sampling and elicitation are offered to the dispatcher so a relayed request reaches this
    // layer, which answers -32021 itself when the client did not declare the capability
    const session = new McpSession(meta.protocolVersion, copyWith(OFFERED_TO_DISPATCHER, meta.clientCapabilities), meta.clientInfo);
    session.toolMode = toolMode;
    session.logLevel = meta.logLevel;
    session.initialized = true;
    const inputs: { id: JsonRpcId; method: string; params?: JsonObject }[] = [];
    let flush: NodeJS.Immediate | undefined;
    const channel = new ModernChannel(ctx.channel, meta.logLevel !== undefined, (request) => {
      inputs.push(request);
      // requests asked within one turn go out in one input_required result
      flush ??= setImmediate(() => {
        flush = undefined;
        this.park(st, inputs.splice(0));
      });
    });
    const trace = ctx.traceHeaders ?? (meta.traceparent !== undefined ? { traceparent: meta.traceparent, tracestate: meta.tracestate ?? '' } : undefined);
    const call = newInflightCall(msg.id, msg.method, channel, ctx.auth, trace);
    session.calls.set(msg.id, call);
    this.sessions.adopt(session);
    const forwarded: JsonRpcRequest = { jsonrpc: '2.0', id: msg.id, method: msg.method, params: upstreamParams(params, MRTR_METHODS.has(msg.method) ? meta.clientCapabilities : undefined) };
    const done = this.dispatcher
      .handleRequest(session, forwarded, call)
      .catch((err: unknown): JsonRpcResponse => {
        this.log.error('unexpected dispatch failure', { error: err });
        return { jsonrpc: '2.0', id: msg.id, error: { code: -32603, message: 'Internal error' } };
      })
      .finally(() => {
        if (flush !== undefined) clearImmediate(flush);
        session.calls.delete(msg.id);
        this.sessions.release(session);
        if (st.timer !== undefined) clearTimeout(st.timer);
        if (st.key !== undefined && this.parked.get(st.key) === st) this.parked.delete(st.key);
      });
    const nameField = NAMED[msg.method];
    const st: CallState = {
      session,
      call,
      channel,
      method: msg.method,
      name: nameField === undefined ? undefined : params?.[nameField],
      principal: ctx.auth?.principal.id,
      declared: meta.clientCapabilities,
      done,
      next: () => undefined,
      key: undefined,
      keys: new Map(),
      asked: new Map(),
      timer: undefined,
    };
    return this.await(msg, st, ctx);
  }

  /** Waits for the call's next outcome on behalf of request `msg` (the original or a retry). */
  private await(msg: JsonRpcRequest, st: CallState, ctx: ModernCallContext): ModernCall {
    const outcome = new Promise<Outcome>((resolve) => {
      st.next = resolve;
      void st.done.then((response) => resolve({ kind: 'response', response }));
    });
    return {
      status: 200,
      response: outcome.then((o) => this.answerFor(msg, o, st, ctx.auth)),
      abandon: (reason) => {
        if (st.key === undefined) cancelScope(st.call, reason);
      },
    };
  }

  /** The response for an outcome: the shaped final result, or `input_required` naming the parked call. */
  private answerFor(msg: JsonRpcRequest, o: Outcome, st: CallState, auth: RequestAuth | undefined): JsonRpcResponse {
    if (o.kind === 'response') return this.shape(msg, o.response, auth);
    const inputRequests: JsonObject = {};
    for (const [k, asked] of st.asked) inputRequests[k] = asked;
    return { jsonrpc: '2.0', id: msg.id, result: { resultType: 'input_required', inputRequests, requestState: st.key ?? '' } };
  }

  /**
   * Parks a call after its upstream asked `batch` (server→client requests): checks the client's
   * declared capabilities (-32021 ends the call), stores it under a fresh random `requestState`
   * and answers the pending downstream request with `input_required`.
   */
  private park(st: CallState, batch: { id: JsonRpcId; method: string; params?: JsonObject }[]): void {
    for (const r of batch) {
      const cap = INPUT_CAPABILITY[r.method];
      if (cap === undefined || st.declared[cap] === undefined || !MRTR_METHODS.has(st.method)) {
        const error = new GatewayError('MISSING_CLIENT_CAPABILITY', `The request needs the client capability "${cap ?? r.method}" (the upstream asked ${r.method})`, {
          requiredCapabilities: cap === undefined ? {} : { [cap]: {} },
        }).toJsonRpc();
        for (const x of batch) this.dispatcher.handleResponse(st.session, { jsonrpc: '2.0', id: x.id, error });
        cancelScope(st.call, 'missing client capability');
        st.next({ kind: 'response', response: { jsonrpc: '2.0', id: st.call.id, error } });
        return;
      }
    }
    st.keys.clear();
    st.asked.clear();
    for (const r of batch) {
      const k = `${r.method.replace('/', '_')}_${String(r.id)}`;
      st.keys.set(k, r.id);
      const params: JsonObject = { ...(r.params ?? {}) };
      delete params['_meta'];
      st.asked.set(k, { method: r.method, params });
    }
    const key = `${STATE_PREFIX}${randomBytes(18).toString('base64url')}.${Date.now().toString(36)}`;
    st.key = key;
    st.timer = setTimeout(() => {
      if (this.parked.get(key) !== st) return;
      this.parked.delete(key);
      st.key = undefined;
      cancelScope(st.call, 'the client did not retry with inputResponses in time');
    }, this.options.inputTimeoutMs);
    st.timer.unref();
    this.parked.set(key, st);
    st.next({ kind: 'input' });
  }

  /** A retry carrying `requestState` and `inputResponses`: answers the parked call's requests and waits again. */
  private resume(msg: JsonRpcRequest, state: string, ctx: ModernCallContext): ModernCall {
    const st = this.parked.get(state);
    const nameField = NAMED[msg.method];
    if (st === undefined) {
      const why = missingStateReason(state, this.options.inputTimeoutMs, Date.now());
      return settled(200, { jsonrpc: '2.0', id: msg.id, error: new GatewayError('INVALID_REQUEST_STATE', why.message, { reason: why.reason }).toJsonRpc() });
    }
    if (st.method !== msg.method || st.principal !== ctx.auth?.principal.id || (nameField !== undefined && st.name !== msg.params?.[nameField])) {
      const err = new GatewayError('INVALID_REQUEST_STATE', 'Invalid requestState: it was issued for another request or caller', { reason: 'mismatch' });
      return settled(200, { jsonrpc: '2.0', id: msg.id, error: err.toJsonRpc() });
    }
    const responses = msg.params?.['inputResponses'];
    const answers = isObject(responses) ? responses : {};
    const missing = [...st.keys.keys()].filter((k) => !isObject(answers[k]));
    if (missing.length > 0) {
      // ask again for what is missing, under the same state (MRTR "Error Handling")
      const again: JsonObject = {};
      for (const k of missing) again[k] = st.asked.get(k) ?? {};
      return settled(200, { jsonrpc: '2.0', id: msg.id, result: { resultType: 'input_required', inputRequests: again, requestState: state } });
    }
    this.parked.delete(state);
    if (st.timer !== undefined) clearTimeout(st.timer);
    st.key = undefined;
    st.channel.target = ctx.channel;
    const waiting = this.await(msg, st, ctx);
    for (const [k, id] of st.keys) this.dispatcher.handleResponse(st.session, { jsonrpc: '2.0', id, result: answers[k] as JsonObject });
    return waiting;
  }

  /** Opens a `subscriptions/listen` subscription: see {@link openSubscription}. */
  listen(msg: JsonRpcRequest, meta: ModernMeta, asked: ListenFilter, auth: RequestAuth | undefined, sink: ListenSink): () => void {
    const caps = this.discover()['capabilities'] as Record<string, unknown>;
    return openSubscription({ dispatcher: this.dispatcher, sessions: this.sessions, log: this.log }, caps, msg, meta, asked, auth, sink);
  }


  /** See {@link shapeResponse}. */
  shape(msg: JsonRpcRequest, response: { result?: Record<string, unknown>; error?: JsonRpcErrorObject }, auth: RequestAuth | undefined): JsonRpcResponse {
    return shapeResponse(msg, response, auth, this.options.catalogueTtlMs);
  }
}


/**
 * MCP 2026-07-28 requests on a message transport without per-message headers (the `/ws` socket):
 * `_meta` checks, then {@link ModernMcp.handle}; related messages go to `channel`. Calls still
 * running when the connection closes are cancelled through {@link ModernMessageTransport.closed}.
 * `subscriptions/listen` is served on `/mcp` only (its stream is an HTTP response).
 */
export class ModernMessageTransport {
  /** Per connection: its modern calls in flight (subscriptions included) and their request ids. */
  private readonly open = new WeakMap<object, Map<ModernCallOf<JsonRpcResponse | undefined>, JsonRpcId>>();

  constructor(readonly core: ModernMcp) {}

  /**
   * Answers one modern request of connection `conn`; never rejects. Resolves with undefined when
   * there is nothing more to send: a `subscriptions/listen` cancelled by the client, or one the
   * gateway closed (its final result already went out through `ctx.channel`).
   */
  serve(conn: object, msg: JsonRpcRequest, ctx: ModernCallContext): Promise<JsonRpcResponse | undefined> {
    const meta = readMeta(msg.params);
    if ('error' in meta) return Promise.resolve({ jsonrpc: '2.0', id: msg.id, error: meta.error });
    const refused = checkVersion(meta);
    if (refused) return Promise.resolve({ jsonrpc: '2.0', id: msg.id, error: refused.error });
    const call: ModernCallOf<JsonRpcResponse | undefined> = msg.method === 'subscriptions/listen' ? this.listen(msg, meta, ctx) : this.core.handle(msg, meta, ctx);
    let calls = this.open.get(conn);
    if (calls === undefined) this.open.set(conn, (calls = new Map()));
    calls.set(call, msg.id);
    const set = calls;
    return call.response.finally(() => set.delete(call));
  }

  /**
   * `subscriptions/listen` on a message transport: the subscription's messages go out on the
   * connection (`ctx.channel`) next to other traffic, tagged with its id; `notifications/cancelled`
   * naming the request, or the connection closing, ends it.
   */
  private listen(msg: JsonRpcRequest, meta: ModernMeta, ctx: ModernCallContext): ModernCallOf<JsonRpcResponse | undefined> {
    const parsed = listenFilterOf(msg);
    if ('refused' in parsed) return { status: 200, response: Promise.resolve(parsed.refused), abandon: () => undefined };
    const channel = ctx.channel;
    if (channel === undefined) {
      const err = new GatewayError('INVALID_REQUEST', 'subscriptions/listen needs a connection that can carry notifications');
      return { status: 200, response: Promise.resolve({ jsonrpc: '2.0', id: msg.id, error: err.toJsonRpc() }), abandon: () => undefined };
    }
    let settle: (r: undefined) => void = () => undefined;
    const response = new Promise<undefined>((resolve) => {
      settle = resolve;
    });
    const close = this.core.listen(msg, meta, parsed.filter, ctx.auth, { write: (m) => channel.send(m), end: () => settle(undefined) });
    return {
      status: 200,
      response,
      abandon: () => {
        close();
        settle(undefined);
      },
    };
  }

  /**
   * A client's `notifications/cancelled` for a modern request of `conn`: cancels that call (or ends
   * that subscription). False when no modern request of the connection has that id.
   */
  cancel(conn: object, requestId: unknown, reason: string): boolean {
    const calls = this.open.get(conn);
    if (calls === undefined) return false;
    for (const [call, id] of calls) {
      if (id !== requestId) continue;
      call.abandon(reason);
      return true;
    }
    return false;
  }

  /** The connection closed: its calls still running are cancelled (parked ones wait for a retry elsewhere). */
  closed(conn: object): void {
    const calls = this.open.get(conn);
    if (calls === undefined) return;
    this.open.delete(conn);
    for (const c of calls.keys()) c.abandon('connection closed');
  }
}
