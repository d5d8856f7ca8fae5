/**
 * `/mcp`: the MCP Streamable HTTP transport (MCP spec 2025-06-18, "Transports"; 2025-03-26 and
 * 2025-11-25 clients are served by version negotiation).
 *
 * - POST carries one JSON-RPC message (or a batch). Requests are answered with
 *   `application/json`, or — as soon as the server has something to send before the response
 *   (progress, a log message, a relayed sampling/elicitation request) and the client accepts it —
 *   with a `text/event-stream` that ends with the response. Notifications and responses: 202.
 * - GET opens the session's standalone server→client SSE stream (one per session; 409 otherwise).
 * - DELETE ends the session.
 * - `Mcp-Session-Id` is issued by `initialize` and required after (missing 400, unknown 404);
 *   `MCP-Protocol-Version` must be supported (400); `Origin` must be allowed (403, DNS rebinding).
 */
import { Observable } from 'rxjs';
import { GatewayError, ERRORS, type ErrorCode } from '../../base/errors.js';
import { jsonDepthExceeded, nestingTooDeep, requestIdOf } from '../../codecs/depth.js';
import { parseMessageText } from '../../codecs/json-text.js';
import { classify, type Classified, type JsonRpcRequest, type JsonRpcResponse } from '../../codecs/jsonrpc.js';
import { jsonReply, type HeaderList, type HttpEffect, type HttpInput } from '../../base/http.js';
import type { Logger } from '../../log/logger.js';
import { SUPPORTED_PROTOCOL_VERSIONS, type McpDispatcher } from './dispatch.js';
import type { InflightCall, McpSession, OutboundChannel, SessionStore } from './session.js';
import { McpConnectionLayer } from './connection.js';
import { isHostAllowed, isOriginAllowed } from './origin.js';
import { cancelScope } from '../../upstreams/upstream.js';
import { MODERN_DEFAULTS, isModernMessage, type ModernOptions } from './modern.js';
import { ModernHttp } from './modern-http.js';
import { NO_HEADERS, PostCall, SSE_HEADERS, once, sseEvent } from './post-channel.js';

export interface McpHttpOptions {
  readonly allowedOrigins: readonly string[];
  readonly allowedHosts: readonly string[];
  /** Check `Host` (true when bound to loopback or when `allowedHosts` is configured). */
  readonly enforceHost: boolean;
  readonly sseKeepAliveMs: number;
  /** MCP 2026-07-28 (stateless) serving; defaults: {@link MODERN_DEFAULTS}. */
  readonly modern?: Partial<ModernOptions>;
}

/** Most messages in one JSON-RPC batch. */
export const MAX_BATCH_ITEMS = 100;

/** An HTTP error reply with a JSON-RPC error body (`id: null`). */
function errorReply(code: ErrorCode, message?: string, details?: Record<string, unknown>, extraHeaders: HeaderList = []): HttpEffect {
  const err = new GatewayError(code, message, details);
  return jsonReply(ERRORS[code].http, { jsonrpc: '2.0', id: null, error: err.toJsonRpc() }, [['Content-Type', 'application/json'], ...extraHeaders]);
}

function accepts(accept: string, type: string): boolean {
  return accept === '' || accept.includes(type) || accept.includes('*/*');
}

export class McpHttpHandler {
  private draining = false;
  /** Requests of the stateless revision (2026-07-28) on the same endpoint. */
  readonly modern: ModernHttp;
  /** initialize, session ownership, in-flight calls, client notifications: shared with `/ws`. */
  private readonly connections: McpConnectionLayer;

  constructor(
    private readonly dispatcher: McpDispatcher,
    private readonly sessions: SessionStore,
    private readonly log: Logger,
    private readonly options: McpHttpOptions,
  ) {
    this.modern = new ModernHttp(dispatcher, sessions, log, { ...MODERN_DEFAULTS, keepAliveMs: options.sseKeepAliveMs, ...options.modern });
    this.connections = new McpConnectionLayer(dispatcher, sessions, log);
  }

  /** GET/DELETE from a 2026-07-28 client (its version header, no session): 405, that revision has neither. */
  private modernNotAllowed(input: HttpInput): HttpEffect | undefined {
    const h = input.headers;
    if (h.mcpSessionId !== '' || !isModernMessage(undefined, h.mcpProtocolVersion, '')) return undefined;
    return errorReply('METHOD_NOT_ALLOWED', `Method Not Allowed: MCP ${h.mcpProtocolVersion} serves POST only (use subscriptions/listen for notifications)`, undefined, [['Allow', 'POST, OPTIONS']]);
  }

  /** After this, new requests get 503 `SHUTTING_DOWN`; calls in flight continue. */
  startDraining(): void {
    this.draining = true;
  }

  /** Origin and Host checks against DNS rebinding; an error effect or undefined. */
  private checkOrigin(input: HttpInput): HttpEffect | undefined {
    const h = input.headers;
    if (h.origin !== '' && !isOriginAllowed(h.origin, this.options.allowedOrigins)) {
      return errorReply('ORIGIN_NOT_ALLOWED', `Origin not allowed: ${h.origin}`, { origin: h.origin });
    }
    if (!isHostAllowed(h.host, this.options.allowedHosts, this.options.enforceHost)) {
      return errorReply('ORIGIN_NOT_ALLOWED', `Host not allowed: ${h.host}`, { host: h.host });
    }
    return undefined;
  }

  /** Checks shared by all methods; returns an error effect or the session (undefined for initialize). */
  private check(input: HttpInput, needSession: boolean): HttpEffect | McpSession | undefined {
    const h = input.headers;
    const denied = this.checkOrigin(input);
    if (denied) return denied;
    if (!needSession) return undefined;
    if (h.mcpSessionId === '') return errorReply('SESSION_REQUIRED', 'Bad Request: Mcp-Session-Id header is required');
    const session = this.sessions.get(h.mcpSessionId);
    if (!session) return errorReply('SESSION_NOT_FOUND', 'Session not found', { session_id: h.mcpSessionId });
    // a session belongs to the credential that opened it
    const foreign = this.connections.ownerMismatch(session, input.auth);
    if (foreign) return errorReply('FORBIDDEN', foreign.message, foreign.details);
    if (h.mcpProtocolVersion !== '' && !(SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(h.mcpProtocolVersion)) {
      return errorReply('UNSUPPORTED_PROTOCOL_VERSION', `Bad Request: Unsupported protocol version: ${h.mcpProtocolVersion}`, {
        supported: SUPPORTED_PROTOCOL_VERSIONS,
      });
    }
    session.lastSeen = Date.now();
    return session;
  }

  /** POST /mcp. */
  post(input: HttpInput): Observable<HttpEffect> {
    if (this.draining) return once(errorReply('SHUTTING_DOWN', undefined, undefined, [['Retry-After', '1']]));
    const h = input.headers;
    const denied = this.checkOrigin(input);
    if (denied) return once(denied);
    if (!h.contentType.toLowerCase().includes('application/json')) {
      return once(errorReply('UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type: Content-Type must be application/json', { content_type: h.contentType }));
    }
    if (!accepts(h.accept, 'application/json') && !accepts(h.accept, 'text/event-stream')) {
      return once(errorReply('NOT_ACCEPTABLE', 'Not Acceptable: client must accept application/json or text/event-stream', { accept: h.accept }));
    }
    let parsed: unknown;
    try {
      parsed = parseMessageText(input.body?.toString('utf8') ?? '');
    } catch (err) {
      return once(jsonReply(400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: `Parse error: ${(err as Error).message}` } }));
    }
    // JSON.parse is iterative; what follows (validation, upstream serialisation) recurses
    const deep = input.body === undefined ? -1 : jsonDepthExceeded(input.body);
    if (deep >= 0) return once(jsonReply(400, { jsonrpc: '2.0', id: requestIdOf(parsed), error: nestingTooDeep('request body', deep).toJsonRpc() }));
    if (Array.isArray(parsed)) return this.batch(input, parsed);
    const c = classify(parsed);
    if (c.kind === 'invalid') {
      return once(jsonReply(400, { jsonrpc: '2.0', id: c.id, error: new GatewayError('INVALID_REQUEST', `Invalid Request: ${c.reason}`).toJsonRpc() }));
    }
    if ((c.kind === 'request' || c.kind === 'notification') && isModernMessage(c.msg.params, h.mcpSessionId === '' ? h.mcpProtocolVersion : '', c.msg.method)) return this.modern.post(input, c);
    if (c.kind === 'request' && c.msg.method === 'initialize') return once(this.initialize(input, c.msg));
    const checked = this.check(input, true);
    if (checked === undefined || !('id' in checked)) return once(checked as HttpEffect);
    const session = checked;
    if (c.kind !== 'request') {
      this.handleNonRequest(session, c);
      return once({ kind: 'reply', status: 202, headers: [], body: '' });
    }
    const canSse = h.accept.includes('text/event-stream');
    const sseOnly = canSse && !h.accept.includes('application/json') && !h.accept.includes('*/*');
    return new Observable<HttpEffect>((sub) => {
      const channel = new PostCall(sub, canSse, sseOnly, this.connections, session, NO_HEADERS);
      const call = this.startCall(session, c.msg, channel, input);
      if (call instanceof GatewayError) {
        channel.finish({ jsonrpc: '2.0', id: c.msg.id, error: call.toJsonRpc() });
        return undefined;
      }
      channel.call = call;
      this.connections.runTo(session, c.msg, call, channel);
      // client gone (or the response ended): the channel cancels what is still running upstream
      return channel;
    });
  }

  private startCall(session: McpSession, msg: JsonRpcRequest, channel: OutboundChannel | undefined, input: HttpInput): InflightCall | GatewayError {
    const tp = input.headers.traceparent;
    return this.connections.begin(session, msg, channel, input.auth, tp !== undefined && tp !== '' ? { traceparent: tp, tracestate: input.headers.tracestate ?? '' } : undefined);
  }

  private handleNonRequest(session: McpSession, c: Classified): void {
    this.connections.deliver(session, c);
  }

  /**
   * A client message another process could not place (see {@link SessionRelay.fromClient}):
   * handled if this process holds what it is about, ignored otherwise.
   */
  deliverRouted(sessionId: string, message: unknown): void {
    const session = this.sessions.peek(sessionId);
    if (session === undefined) return;
    const c = classify(message);
    if ((c.kind === 'notification' || c.kind === 'response') && session.holds(c.msg)) this.connections.deliverHere(session, c);
  }

  private initialize(input: HttpInput, msg: JsonRpcRequest): HttpEffect {
    const checked = this.check(input, false);
    if (checked !== undefined) return checked as HttpEffect;
    // the owner and tool mode are part of the session (sealed into its id when sessions are shared)
    const opened = this.connections.open(msg, { auth: input.auth, toolModeHeader: input.headers.toolMode, shareable: true });
    if (!opened.ok) {
      if (opened.stage === 'capacity') return errorReply('TOO_MANY_SESSIONS', undefined, { max_sessions: true }, [['Retry-After', '5']]);
      // bad params: a JSON-RPC error in a 200 reply; a tool mode the credential may not use: 400
      return jsonReply(opened.stage === 'params' ? 200 : 400, { jsonrpc: '2.0', id: msg.id, error: opened.error.toJsonRpc() });
    }
    return jsonReply(200, { jsonrpc: '2.0', id: msg.id, result: opened.result }, [
      ['Content-Type', 'application/json'],
      ['Mcp-Session-Id', opened.session.id],
    ]);
  }

  /**
   * A JSON-RPC batch (2025-03-26 clients): at most {@link MAX_BATCH_ITEMS} messages, handled one
   * after another within the request's single pipeline slot, answered as one JSON array.
   */
  private batch(input: HttpInput, items: unknown[]): Observable<HttpEffect> {
    if (items.length === 0) {
      return once(jsonReply(400, { jsonrpc: '2.0', id: null, error: new GatewayError('INVALID_REQUEST', 'Invalid Request: empty batch').toJsonRpc() }));
    }
    if (items.length > MAX_BATCH_ITEMS) {
      return once(jsonReply(400, { jsonrpc: '2.0', id: null, error: new GatewayError('INVALID_REQUEST', `Invalid Request: a batch may hold at most ${MAX_BATCH_ITEMS} messages`, { max_batch_items: MAX_BATCH_ITEMS, received: items.length }).toJsonRpc() }));
    }
    const classified = items.map(classify);
    if (classified.some((c) => c.kind === 'request' && c.msg.method === 'initialize')) {
      return once(jsonReply(400, { jsonrpc: '2.0', id: null, error: new GatewayError('INVALID_REQUEST', 'Invalid Request: initialize must not be part of a batch').toJsonRpc() }));
    }
    const checked = this.check(input, true);
    if (checked === undefined || !('id' in checked)) return once(checked as HttpEffect);
    const session = checked;
    return new Observable<HttpEffect>((sub) => {
      let current: InflightCall | undefined;
      let cancelled = false;
      // One item at a time: the batch holds one pipeline slot, so it must not fan out beyond it.
      const run = async (): Promise<JsonRpcResponse[]> => {
        const out: JsonRpcResponse[] = [];
        const seen = new Set<string | number>();
        for (const c of classified) {
          if (cancelled) break;
          if (c.kind === 'request') {
            if (seen.has(c.msg.id)) {
              out.push({ jsonrpc: '2.0', id: c.msg.id, error: new GatewayError('INVALID_REQUEST', `Duplicate request id ${String(c.msg.id)} in batch`).toJsonRpc() });
              continue;
            }
            seen.add(c.msg.id);
          }
          if (c.kind === 'invalid') {
            out.push({ jsonrpc: '2.0', id: c.id, error: new GatewayError('INVALID_REQUEST', `Invalid Request: ${c.reason}`).toJsonRpc() } as unknown as JsonRpcResponse);
            continue;
          }
          if (c.kind !== 'request') {
            this.handleNonRequest(session, c);
            continue;
          }
          const call = this.startCall(session, c.msg, undefined, input);
          if (call instanceof GatewayError) {
            out.push({ jsonrpc: '2.0', id: c.msg.id, error: call.toJsonRpc() });
            continue;
          }
          current = call;
          out.push(await this.connections.run(session, c.msg, call));
          current = undefined;
        }
        return out;
      };
      run()
        .then((out) => {
          sub.next(out.length === 0 ? { kind: 'reply', status: 202, headers: [], body: '' } : jsonReply(200, out));
          sub.complete();
        })
        .catch((err: unknown) => sub.error(err));
      return () => {
        cancelled = true;
        if (current) cancelScope(current, 'client disconnected');
      };
    });
  }

  /** GET /mcp: the standalone server→client stream of a session. */
  get(input: HttpInput): Observable<HttpEffect> {
    const modern = this.modernNotAllowed(input);
    if (modern) return once(modern);
    if (!input.headers.accept.includes('text/event-stream')) {
      return once(errorReply('NOT_ACCEPTABLE', 'Not Acceptable: GET requires Accept: text/event-stream', { accept: input.headers.accept }));
    }
    const checked = this.check(input, true);
    if (checked === undefined || !('id' in checked)) return once(checked as HttpEffect);
    const session = checked;
    if (session.standalone) return once(errorReply('CONFLICT', 'Conflict: only one SSE stream is allowed per session'));
    return new Observable<HttpEffect>((sub) => {
      sub.next({ kind: 'sse-start', headers: SSE_HEADERS });
      sub.next({ kind: 'sse-data', chunk: ': stream open\n\n' });
      const channel: OutboundChannel = {
        send: (message) => {
          if (sub.closed) return false;
          sub.next({ kind: 'sse-data', chunk: sseEvent(message) });
          return true;
        },
      };
      session.standalone = channel;
      // sessions shared between processes: messages for this stream made elsewhere come here
      const stopHolding = session.relay?.holdStream(session);
      const keepAlive = setInterval(() => {
        session.lastSeen = Date.now();
        sub.next({ kind: 'sse-data', chunk: ': keep-alive\n\n' });
      }, this.options.sseKeepAliveMs);
      keepAlive.unref();
      const offClose = session.onClose(() => {
        sub.next({ kind: 'end' });
        sub.complete();
      });
      return () => {
        clearInterval(keepAlive);
        offClose();
        stopHolding?.();
        if (session.standalone === channel) session.standalone = undefined;
      };
    });
  }

  /** OPTIONS /mcp: CORS preflight, granted only to allowed origins. */
  preflight(input: HttpInput): Observable<HttpEffect> {
    const denied = this.checkOrigin(input);
    if (denied) return once(denied);
    return once({
      kind: 'reply',
      status: 204,
      headers: [
        ['Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS'],
        ['Access-Control-Allow-Headers', 'Content-Type, Accept, Authorization, X-API-Key, x-bf-vk, x-bf-mcp-include-clients, x-bf-mcp-include-tools, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name'],
        ['Access-Control-Max-Age', '600'],
      ],
      body: '',
    });
  }

  /** DELETE /mcp: ends the session. */
  delete(input: HttpInput): Observable<HttpEffect> {
    const modern = this.modernNotAllowed(input);
    if (modern) return once(modern);
    const checked = this.check(input, true);
    if (checked === undefined || !('id' in checked)) return once(checked as HttpEffect);
    this.sessions.delete(checked.id);
    this.log.debug('session deleted', { session: checked.id });
    return once({ kind: 'reply', status: 200, headers: [], body: '' });
  }
}
