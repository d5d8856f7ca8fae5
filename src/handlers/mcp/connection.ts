/**
 * The MCP connection layer shared by `/mcp` (Streamable HTTP) and `/ws` (WebSocket, JSON-RPC text
 * and MCPW binary): what a session-era MCP connection does once a message is decoded, written once.
 * The transports only frame bytes and choose how an error travels (an HTTP status, a JSON-RPC
 * error in a text frame, an MCPW frame).
 *
 * - **initialize** ({@link McpConnectionLayer.open}): params checked with the one codec
 *   (`Params.initialize`), the tool mode chosen for the credential, the session created and bound to
 *   the credential that opened it (https://modelcontextprotocol.io/specification/2025-06-18/basic/lifecycle#initialization);
 * - **session ownership** ({@link McpConnectionLayer.ownerMismatch}): a session answers only the
 *   credential that opened it;
 * - **in-flight calls** ({@link McpConnectionLayer.begin} / {@link McpConnectionLayer.run}): one
 *   {@link InflightCall} per request id, a duplicate id refused, the entry removed when the call
 *   ends however it ends;
 * - **client notifications and responses** ({@link McpConnectionLayer.deliver}): cancellation,
 *   progress and answers to server→client requests go to the dispatcher, or to the process that
 *   holds the call when sessions are shared between processes
 *   (https://modelcontextprotocol.io/specification/2025-06-18/basic/utilities/cancellation).
 *
 * Errors are {@link GatewayError}s of the one registry (`base/errors.ts`).
 */
import { GatewayError, toJsonRpcError } from '../../base/errors.js';
import { Params, decodeParams, type Classified, type JsonRpcRequest, type JsonRpcResponse } from '../../codecs/jsonrpc.js';
import type { Logger } from '../../log/logger.js';
import type { RequestAuth } from '../../base/access.js';
import { cancelScope, type Completion } from '../../upstreams/upstream.js';
import type { McpDispatcher } from './dispatch.js';
import { newInflightCall, type InflightCall, type McpSession, type OutboundChannel, type SessionStore } from './session.js';

/** What `initialize` needs from the transport besides the message. */
export interface OpenOptions {
  /** Who opened the connection (`undefined` with auth off). */
  readonly auth: RequestAuth | undefined;
  /** The tool-mode header of the request or upgrade (`''` when absent). */
  readonly toolModeHeader: string;
  /**
   * The session may be served by other processes (`/mcp`: its id carries owner and tool mode,
   * sealed when sessions are shared). `/ws` sessions live and die with their socket.
   */
  readonly shareable: boolean;
  /** The id of a session this one replaces (a second `initialize` on a socket): closed before the new one is made. */
  readonly replacing?: string | undefined;
}

/** `open`'s outcome. `stage` tells a transport which step refused (HTTP maps them to statuses). */
export type OpenResult =
  | { readonly ok: true; readonly session: McpSession; readonly result: Record<string, unknown> }
  | { readonly ok: false; readonly stage: 'params' | 'tool_mode' | 'capacity'; readonly error: GatewayError };

export class McpConnectionLayer {
  constructor(
    private readonly dispatcher: McpDispatcher,
    private readonly sessions: SessionStore,
    private readonly log: Logger,
  ) {}

  /**
   * `initialize`: checks the params (`protocolVersion` string, `capabilities` object, `clientInfo`
   * with a string `name`), picks the tool mode for the credential, creates the session bound to
   * it and returns the `initialize` result. Never throws: a refusal is `{ ok: false }` with
   * INVALID_PARAMS (`params`), the tool-mode error (`tool_mode`) or TOO_MANY_SESSIONS (`capacity`).
   */
  open(msg: JsonRpcRequest, options: OpenOptions): OpenResult {
    let p;
    try {
      p = decodeParams(Params.initialize, msg.params, 'initialize');
    } catch (err) {
      return { ok: false, stage: 'params', error: asGatewayError(err) };
    }
    let toolMode;
    try {
      toolMode = this.dispatcher.toolModeFor(options.toolModeHeader, p.clientInfo.name, options.auth);
    } catch (err) {
      return { ok: false, stage: 'tool_mode', error: asGatewayError(err) };
    }
    if (options.replacing !== undefined) this.sessions.delete(options.replacing);
    const owner = options.auth?.principal.id;
    const version = this.dispatcher.negotiateVersion(p.protocolVersion);
    // a shareable session carries owner and tool mode in its id (sealed when sessions are shared)
    const session = options.shareable ? this.sessions.create(version, p.capabilities, p.clientInfo, { owner, toolMode }) : this.sessions.create(version, p.capabilities, p.clientInfo);
    if (!session) return { ok: false, stage: 'capacity', error: new GatewayError('TOO_MANY_SESSIONS', undefined, { max_sessions: true }) };
    session.owner = owner;
    session.toolMode = toolMode;
    this.log.debug('session created', { session: session.id, client: p.clientInfo.name, protocol: session.protocolVersion });
    return { ok: true, session, result: this.dispatcher.initializeResult(session) };
  }

  /** FORBIDDEN when `session` was opened with another credential than `auth`'s; else undefined. */
  ownerMismatch(session: McpSession, auth: RequestAuth | undefined): GatewayError | undefined {
    if (session.owner === undefined || session.owner === auth?.principal.id) return undefined;
    return new GatewayError('FORBIDDEN', 'Forbidden: this session was opened with other credentials', { session_id: session.id });
  }

  /**
   * Registers request `msg` as in flight in `session`; progress and server→client requests of the
   * call go to `channel` (else the session's standalone stream). INVALID_REQUEST when a request
   * with the same id is still in flight in this session.
   */
  begin(session: McpSession, msg: JsonRpcRequest, channel: OutboundChannel | undefined, auth: RequestAuth | undefined, traceHeaders?: { readonly traceparent: string; readonly tracestate: string }): InflightCall | GatewayError {
    if (session.calls.has(msg.id)) return new GatewayError('INVALID_REQUEST', `Request id ${String(msg.id)} is already in flight in this session`);
    const call = newInflightCall(msg.id, msg.method, channel, auth, traceHeaders);
    session.calls.set(msg.id, call);
    return call;
  }

  /**
   * Runs a call registered by {@link begin} and resolves with its JSON-RPC response; never
   * rejects (an unexpected failure is logged and answered -32603). The call leaves the session's
   * in-flight table when it ends.
   */
  run(session: McpSession, msg: JsonRpcRequest, call: InflightCall): Promise<JsonRpcResponse> {
    return new Promise<JsonRpcResponse>((resolve) => this.runTo(session, msg, call, { respond: resolve }));
  }

  /**
   * {@link run} with the response going to `sink` (called once, possibly before this returns):
   * the per-call path of the transports, with no Promise of its own for `tools/call`.
   */
  runTo(session: McpSession, msg: JsonRpcRequest, call: InflightCall, sink: ResponseSink): void {
    const ending = new CallEnding(this, this.log, session, msg, call, sink);
    try {
      this.dispatcher.handleRequestTo(session, msg, call, ending);
    } catch (err) {
      ending.reject(err);
    }
  }

  /** Removes `call` from `session`'s in-flight table (if it is still the entry for its id). */
  end(session: McpSession, call: InflightCall): void {
    if (session.calls.get(call.id) === call) session.calls.delete(call.id);
  }

  /** Cancels `call` upstream (`notifications/cancelled` with `reason`) and ends it, if still in flight. */
  abandon(session: McpSession, call: InflightCall, reason: string): void {
    if (session.calls.get(call.id) !== call) return;
    cancelScope(call, reason);
    this.end(session, call);
  }

  /** Cancels every call in flight in `session` (a connection closed or too slow to read). */
  abandonAll(session: McpSession, reason: string): void {
    for (const call of [...session.calls.values()]) this.abandon(session, call, reason);
  }

  /**
   * A client notification (cancellation, progress, initialized, roots changed) or response (to a
   * relayed server→client request). With sessions shared between processes, one about something
   * another process holds goes there.
   */
  deliver(session: McpSession, c: Classified): void {
    if (c.kind !== 'notification' && c.kind !== 'response') return;
    const relay = session.relay;
    if (relay !== undefined && !session.holds(c.msg)) relay.fromClient(session.id, c.msg);
    else this.deliverHere(session, c);
  }

  /** {@link deliver} without the relay: for messages another process routed here. */
  deliverHere(session: McpSession, c: Classified): void {
    if (c.kind === 'notification') this.dispatcher.handleNotification(session, c.msg);
    else if (c.kind === 'response') this.dispatcher.handleResponse(session, c.msg);
  }
}

/** Where the response of one request goes (a POST's channel, a WebSocket, a Promise). */
export interface ResponseSink {
  /** Called once with the request's JSON-RPC response. */
  respond(response: JsonRpcResponse): void;
}

/** Ends a call when its response is in, then hands the response to the transport's sink. */
class CallEnding implements Completion<JsonRpcResponse> {
  private settled = false;

  constructor(
    private readonly layer: McpConnectionLayer,
    private readonly log: Logger,
    private readonly session: McpSession,
    private readonly msg: JsonRpcRequest,
    private readonly call: InflightCall,
    private readonly sink: ResponseSink,
  ) {}

  resolve(response: JsonRpcResponse): void {
    if (this.settled) return;
    this.settled = true;
    this.layer.end(this.session, this.call);
    this.sink.respond(response);
  }

  /** An unexpected failure of the dispatcher: logged, answered -32603. */
  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.layer.end(this.session, this.call);
    this.log.error('unexpected dispatch failure', { error: err, method: this.msg.method });
    this.sink.respond({ jsonrpc: '2.0', id: this.msg.id, error: { code: -32603, message: 'Internal error' } } as JsonRpcResponse);
  }
}

function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const rpc = toJsonRpcError(err);
  return new GatewayError('INTERNAL_ERROR', rpc.message);
}
