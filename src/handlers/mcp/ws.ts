/**
 * `/ws`: agent WebSocket sessions speaking MCP JSON-RPC in text frames and MCPW binary frames
 * (developer-mesh `/ws`, https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md). One WebSocket is one MCP
 * session of the same {@link SessionStore} and {@link McpDispatcher} that serve `/mcp`: same
 * methods, cancellation, progress, relayed server→client requests and list_changed.
 *
 * - A text request is answered in text; a binary (MCPW) request with an MCPW frame carrying the
 *   same request id and method. Server-initiated messages go as text, or as MCPW (method 0000) to a
 *   client that has sent binary when they are over the threshold. MCPW payloads are gzip'd (flag
 *   bit0) over 1 KiB when the client has sent a gzip'd frame itself, over 64 KiB for every client;
 *   over 16 KiB the compression runs off the event loop, the frame keeping its place in the send
 *   order. Binary frames are routed on their header, read in place from the frame's bytes; the
 *   payload is decoded only for frames that carry a message (not Ping, Pong, Close).
 * - MCPW Ping → Pong with the same id; Close → close 1000. Every bad frame gets an MCPW Error
 *   frame naming the problem; the connection stays open where the stream is in sync.
 * - At most `maxInFlight` requests per connection (beyond: error -32000 overloaded). Outbound
 *   respects backpressure: over the hard limit the connection is closed with 1013.
 */
import { GatewayError } from '../../base/errors.js';
import { jsonDepthExceeded, nestingTooDeep, requestIdOf } from '../../codecs/depth.js';
import { parseMessageText } from '../../codecs/json-text.js';
import { classify, type Classified, type JsonRpcRequest, type JsonRpcResponse } from '../../codecs/jsonrpc.js';
import {
  MCPW_DEFAULT_GZIP_THRESHOLD,
  McpwHeaderFields,
  McpwMethod,
  McpwType,
  decodeFrame,
  decodeFramePayload,
  decodeHeader,
  errorFrameFor,
  McpwFlags,
  pongFrame,
  readHeader,
  type McpwDecodeOptions,
} from '../../codecs/mcpw.js';
import { frameToJsonRpc, type JsonRpcMessage, type McpwReplyTo } from '../../codecs/mcpw-jsonrpc.js';
import type { Logger } from '../../log/logger.js';
import type { WsConnection, WsEndpoint } from '../../streams/ws.js';
import type { WsMethodHost, WsPeer } from '../../streams/ws-methods.js';
import { toJsonRpcError } from '../../base/errors.js';
import type { McpDispatcher } from './dispatch.js';
import type { ReadinessGate } from '../readiness.js';
import type { McpSession, OutboundChannel, SessionStore } from './session.js';
import { McpConnectionLayer } from './connection.js';
import { WsOutbound, type WsOutboundOptions } from './ws-outbound.js';
import { ModernMcp, ModernMessageTransport, isModernMessage } from './modern.js';

export interface McpWsOptions extends WsOutboundOptions {
  /** Requests handled at once per connection. */
  readonly maxInFlight: number;
  /** Largest MCPW payload accepted, bytes. */
  readonly maxPayloadBytes: number;
}

interface WsState {
  readonly conn: WsConnection;
  /** How method hosts see this connection. */
  readonly peer: WsPeer;
  session: McpSession | undefined;
  /** The send side: text or MCPW, gzip policy, send order, backpressure limit. */
  readonly out: WsOutbound;
  /** Epoch ms of the last frame received. */
  lastMessageAt: number;
  inFlight: number;
  readonly channel: OutboundChannel;
  /** Messages received before the gateway was ready, in order (see {@link McpWsEndpoint.readiness}). */
  held: [Classified, McpwReplyTo | undefined][] | undefined;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** `value` with every `Uint8Array` (at any depth of plain objects and arrays) replaced by its base64 text. */
export function bytesAsBase64(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(bytesAsBase64);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = bytesAsBase64(v);
    return out;
  }
  return value;
}

export class McpWsEndpoint implements WsEndpoint {
  private readonly states = new Map<WsConnection, WsState>();
  private readonly hosts: WsMethodHost[] = [];
  /** MCP 2026-07-28 requests (per-request `_meta`, no initialize) on the same socket. */
  private readonly modern: ModernMessageTransport;
  private nextPeer = 1;
  /** The header of the binary frame being handled: read in place per frame (see `readHeader`). */
  private readonly header = new McpwHeaderFields();
  /** Decode options of every binary frame (built once, not per frame). */
  private readonly decodeOptions: McpwDecodeOptions;
  /** initialize, session ownership, in-flight calls, client notifications: shared with `/mcp`. */
  private readonly layer: McpConnectionLayer;
  /**
   * When set and not ready, messages are held per connection (at most `maxInFlight`; requests
   * beyond get -32000 overloaded) and handled in arrival order once it is ready.
   */
  readiness: ReadinessGate | undefined;

  constructor(
    private readonly dispatcher: McpDispatcher,
    private readonly sessions: SessionStore,
    private readonly log: Logger,
    private readonly options: McpWsOptions,
  ) {
    this.modern = new ModernMessageTransport(new ModernMcp(dispatcher, sessions, log));
    this.decodeOptions = { maxPayloadBytes: options.maxPayloadBytes, maxInflatedBytes: options.maxPayloadBytes, copyBinary: true };
    this.layer = new McpConnectionLayer(dispatcher, sessions, log);
  }

  /** Serves `host`'s methods on every connection (orchestration, workspaces). */
  addHost(host: WsMethodHost): void {
    this.hosts.push(host);
  }

  get connections(): number {
    return this.states.size;
  }

  dispose(): void {
    for (const s of this.states.values()) s.out.close(1001, 'server shutting down');
    this.states.clear();
  }

  readonly onOpen = (conn: WsConnection): void => {
    const id = `peer-${this.nextPeer++}`;
    const state: WsState = {
      conn,
      peer: {
        id,
        get auth() {
          return conn.auth;
        },
        get binary() {
          return state.out.binary;
        },
        notify: (method, params) => this.notifyPeer(state, method, params),
        bufferedAmount: () => conn.bufferedAmount(),
        get closed() {
          return conn.closed;
        },
        get lastMessageAt() {
          return state.lastMessageAt;
        },
      },
      session: undefined,
      out: new WsOutbound(conn, this.options, this.log, () => {
        if (state.session) this.layer.abandonAll(state.session, 'client too slow');
      }),
      lastMessageAt: Date.now(),
      inFlight: 0,
      held: undefined,
      channel: { send: (message) => state.out.message(message as JsonRpcMessage, undefined) },
    };
    this.states.set(conn, state);
  };

  readonly onClose = (conn: WsConnection): void => {
    const s = this.states.get(conn);
    this.states.delete(conn);
    if (s?.session) this.sessions.delete(s.session.id);
    this.modern.closed(conn);
    if (s) {
      for (const h of this.hosts) {
        try {
          h.closed(s.peer);
        } catch (err) {
          this.log.error('a /ws method host failed on close', { error: err });
        }
      }
    }
  };

  /** A server-initiated notification of a method host: MCPW to binary peers, text otherwise. */
  private notifyPeer(s: WsState, method: string, params: Record<string, unknown>): boolean {
    if (s.conn.closed) return false;
    const message = { jsonrpc: '2.0', method, params };
    if (s.out.binary) return s.out.frame({ type: McpwType.Notification, method: McpwMethod.Generic, requestId: 0n, payload: message });
    return s.out.write(JSON.stringify(message), false);
  }

  /** Runs a method host's request or notification; false when no host serves the method. */
  private callHost(s: WsState, c: Classified, replyTo: McpwReplyTo | undefined): boolean {
    if (c.kind !== 'request' && c.kind !== 'notification') return false;
    const method = c.msg.method;
    const host = this.hosts.find((h) => h.handles(method));
    if (!host) return false;
    const params = c.msg.params;
    if (c.kind === 'notification') {
      host.call(s.peer, method, params, true).catch((err: unknown) => this.log.debug('a /ws notification failed', { method, error: err }));
      return true;
    }
    const id = c.msg.id;
    if (s.inFlight >= this.options.maxInFlight) {
      const err = new GatewayError('OVERLOADED', `Too many requests in flight on this connection (limit ${this.options.maxInFlight})`, { max_in_flight: this.options.maxInFlight });
      this.reply(s, { jsonrpc: '2.0', id, error: err.toJsonRpc() }, replyTo);
      return true;
    }
    s.inFlight++;
    host
      .call(s.peer, method, params, false)
      .then(
        (result) => {
          // JSON text cannot carry bytes: a text request gets any Uint8Array of the result as base64
          const value = replyTo ? (result ?? {}) : bytesAsBase64(result ?? {});
          this.reply(s, { jsonrpc: '2.0', id, result: value as Record<string, unknown> }, replyTo);
        },
        (err: unknown) => {
          if (!(err instanceof GatewayError)) this.log.error('a /ws method failed', { method, error: err });
          this.reply(s, { jsonrpc: '2.0', id, error: toJsonRpcError(err) }, replyTo);
        },
      )
      .finally(() => {
        s.inFlight--;
      });
    return true;
  }

  readonly onDrain = (): void => {
    // replies are written as they complete; uWS buffers them, the hard limit closes stuck peers
  };

  readonly onMessage = (conn: WsConnection, data: ArrayBuffer, isBinary: boolean): void => {
    const s = this.states.get(conn);
    if (!s) return;
    s.lastMessageAt = Date.now();
    if (!isBinary) {
      if (data.byteLength > this.options.maxPayloadBytes) {
        const err = new GatewayError('BODY_TOO_LARGE', `Invalid Request: text frame of ${data.byteLength} bytes is over the limit of ${this.options.maxPayloadBytes} bytes`, {
          limit_bytes: this.options.maxPayloadBytes,
        });
        s.out.message({ jsonrpc: '2.0', id: null, error: err.toJsonRpc() } as unknown as JsonRpcMessage, undefined);
        return;
      }
      let value: unknown;
      try {
        value = parseMessageText(decoder.decode(data));
      } catch {
        s.out.message({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: text frame is not valid JSON (UTF-8)' } } as unknown as JsonRpcMessage, undefined);
        return;
      }
      // JSON.parse is iterative; what follows (method hosts, validation, upstream serialisation) recurses
      const deep = jsonDepthExceeded(new Uint8Array(data));
      if (deep >= 0) {
        s.out.message({ jsonrpc: '2.0', id: requestIdOf(value), error: nestingTooDeep('text frame', deep).toJsonRpc() } as unknown as JsonRpcMessage, undefined);
        return;
      }
      if (Array.isArray(value)) {
        s.out.message({ jsonrpc: '2.0', id: null, error: new GatewayError('INVALID_REQUEST', 'Invalid Request: batches are not supported on /ws').toJsonRpc() } as unknown as JsonRpcMessage, undefined);
        return;
      }
      this.handle(s, classify(value), undefined);
      return;
    }
    s.out.binary = true;
    // routed on the header, read in place from the frame's bytes; decoded inside the uWS callback,
    // from views of the frame's own memory (no copy)
    const head = this.header;
    if (readHeader(data, head, this.options.maxPayloadBytes) !== undefined) {
      const bad = decodeHeader(data, this.decodeOptions);
      if (!bad.ok) {
        s.out.frame(errorFrameFor(bad.error));
        if (!bad.error.recoverable) s.out.close(1002, bad.error.code);
      }
      return;
    }
    // control frames carry no message: answered from the header, any payload left undecoded
    if (head.type === McpwType.Ping) {
      s.out.frame(pongFrame(head.requestId));
      return;
    }
    if (head.type === McpwType.Close) {
      s.out.close(1000, 'close frame');
      return;
    }
    if (head.type === McpwType.Pong) return;
    if ((head.flags & McpwFlags.Gzip) !== 0) s.out.gzip = true;
    const decoded = decodeFramePayload(data, head, this.decodeOptions);
    if (!decoded.ok) {
      s.out.frame(errorFrameFor(decoded.error));
      if (!decoded.error.recoverable) s.out.close(1002, decoded.error.code);
      return;
    }
    const frame = decoded.frame;
    const classified = frameToJsonRpc(frame);
    if (classified.kind === 'control') return;
    this.handle(s, classified, { method: frame.method, requestId: frame.requestId });
  };

  /** A message a worker thread decoded and validated (`server.workers`). */
  readonly onChecked = (conn: WsConnection, data: string | ArrayBuffer, inflated: boolean): void => {
    const s = this.states.get(conn);
    if (!s) return;
    if (typeof data !== 'string') {
      if (inflated) s.out.gzip = true;
      this.onMessage(conn, data, true);
      return;
    }
    s.lastMessageAt = Date.now();
    // size, UTF-8, JSON, depth, no batch and the JSON-RPC shape were checked by the worker
    this.handle(s, classify(JSON.parse(data)), undefined);
  };

  /**
   * A message refused by the access gate (over the caller's rate limit): a JSON-RPC error
   * answering the request's id for text frames, an MCPW Error frame with the request id for binary
   * ones. Notifications and responses are dropped silently, as JSON-RPC has nothing to answer them.
   */
  readonly onRefused = (conn: WsConnection, data: ArrayBuffer, isBinary: boolean, error: GatewayError): void => {
    const s = this.states.get(conn);
    if (!s) return;
    const rpc = error.toJsonRpc();
    if (!isBinary) {
      let c: Classified | undefined;
      try {
        c = classify(JSON.parse(decoder.decode(data)));
      } catch {
        c = undefined;
      }
      if (c === undefined || c.kind === 'request' || c.kind === 'invalid') {
        const id = c?.kind === 'request' ? c.msg.id : null;
        s.out.message({ jsonrpc: '2.0', id, error: rpc } as unknown as JsonRpcMessage, undefined);
      }
      return;
    }
    const decoded = decodeFrame(data, this.decodeOptions);
    if (!decoded.ok) {
      s.out.frame(errorFrameFor(decoded.error));
      return;
    }
    const c = frameToJsonRpc(decoded.frame);
    if (c.kind === 'request') this.reply(s, { jsonrpc: '2.0', id: c.msg.id, error: rpc }, { method: decoded.frame.method, requestId: decoded.frame.requestId });
    else if (c.kind === 'control' || c.kind === 'invalid') s.out.frame({ type: McpwType.Error, method: decoded.frame.method, requestId: decoded.frame.requestId, payload: rpc });
  };

  /** Holds `c` until the gateway is ready; false when it is ready and nothing is held. */
  private hold(s: WsState, c: Classified, replyTo: McpwReplyTo | undefined): boolean {
    const gate = this.readiness;
    if (s.held === undefined && (gate === undefined || gate.ready)) return false;
    if (s.held === undefined) {
      const held: [Classified, McpwReplyTo | undefined][] = [];
      s.held = held;
      void gate?.whenReady().then(() => {
        s.held = undefined;
        for (const [m, r] of held) if (!s.conn.closed) this.handle(s, m, r);
      });
    }
    if (s.held.length >= this.options.maxInFlight) {
      if (c.kind === 'request') {
        const err = new GatewayError('OVERLOADED', `The gateway is starting and this connection has ${s.held.length} messages waiting (limit ${this.options.maxInFlight})`, { max_in_flight: this.options.maxInFlight });
        this.reply(s, { jsonrpc: '2.0', id: c.msg.id, error: err.toJsonRpc() }, replyTo);
      }
      return true;
    }
    s.held.push([c, replyTo]);
    return true;
  }

  private handle(s: WsState, c: Classified, replyTo: McpwReplyTo | undefined): void {
    if (this.hold(s, c, replyTo)) return;
    if (c.kind === 'invalid') {
      this.reply(s, { jsonrpc: '2.0', id: c.id as string, error: new GatewayError('INVALID_REQUEST', `Invalid Request: ${c.reason}`).toJsonRpc() }, replyTo);
      return;
    }
    if (c.kind === 'request' && c.msg.method === 'initialize') {
      this.initialize(s, c.msg, replyTo);
      return;
    }
    if (this.hosts.length > 0 && this.callHost(s, c, replyTo)) return;
    if (c.kind === 'request' && isModernMessage(c.msg.params, '', c.msg.method)) {
      this.serveModern(s, c.msg, replyTo);
      return;
    }
    // a client's cancel of a modern request of this socket (a subscriptions/listen one included)
    if (c.kind === 'notification' && c.msg.method === 'notifications/cancelled' && this.modern.cancel(s.conn, c.msg.params?.['requestId'], 'cancelled by the client')) return;
    const session = s.session;
    if (!session) {
      if (c.kind === 'request') {
        this.reply(s, { jsonrpc: '2.0', id: c.msg.id, error: new GatewayError('INVALID_REQUEST', 'Invalid Request: send initialize first').toJsonRpc() }, replyTo);
      }
      return;
    }
    session.lastSeen = Date.now();
    if (c.kind === 'notification' || c.kind === 'response') {
      this.layer.deliver(session, c);
      return;
    }
    const msg = c.msg;
    if (s.inFlight >= this.options.maxInFlight) {
      const err = new GatewayError('OVERLOADED', `Too many requests in flight on this connection (limit ${this.options.maxInFlight})`, { max_in_flight: this.options.maxInFlight });
      this.reply(s, { jsonrpc: '2.0', id: msg.id, error: err.toJsonRpc() }, replyTo);
      return;
    }
    const call = this.layer.begin(session, msg, s.channel, s.conn.auth);
    if (call instanceof GatewayError) {
      this.reply(s, { jsonrpc: '2.0', id: msg.id, error: call.toJsonRpc() }, replyTo);
      return;
    }
    s.inFlight++;
    // the callback path (no Promise per call); the reply may come before runTo returns
    this.layer.runTo(session, msg, call, {
      respond: (response) => {
        s.inFlight--;
        this.reply(s, response, replyTo);
      },
    });
  }

  /** A 2026-07-28 request: stateless, whether or not the socket also holds a session. */
  private serveModern(s: WsState, msg: JsonRpcRequest, replyTo: McpwReplyTo | undefined): void {
    if (s.inFlight >= this.options.maxInFlight) {
      const err = new GatewayError('OVERLOADED', `Too many requests in flight on this connection (limit ${this.options.maxInFlight})`, { max_in_flight: this.options.maxInFlight });
      this.reply(s, { jsonrpc: '2.0', id: msg.id, error: err.toJsonRpc() }, replyTo);
      return;
    }
    s.inFlight++;
    void this.modern
      .serve(s.conn, msg, { auth: s.conn.auth, toolModeHeader: s.conn.toolModeHeader ?? '', channel: s.channel })
      .then((response) => {
        if (response !== undefined) this.reply(s, response, replyTo);
      })
      .finally(() => {
        s.inFlight--;
      });
  }

  private initialize(s: WsState, msg: JsonRpcRequest, replyTo: McpwReplyTo | undefined): void {
    // a second initialize on the socket replaces its session (once the new one's params are good)
    const previous = s.session;
    const opened = this.layer.open(msg, { auth: s.conn.auth, toolModeHeader: s.conn.toolModeHeader ?? '', shareable: false, replacing: previous?.id });
    if (!opened.ok) {
      this.reply(s, { jsonrpc: '2.0', id: msg.id, error: opened.error.toJsonRpc() }, replyTo);
      return;
    }
    const session = opened.session;
    // the socket itself is the session's server→client stream; the session belongs to the credential
    // that opened the socket (list_changed aimed at a key's sessions reaches it)
    session.standalone = s.channel;
    session.onClose(() => {
      if (this.states.get(s.conn) === s) s.session = undefined;
    });
    s.session = session;
    this.reply(s, { jsonrpc: '2.0', id: msg.id, result: opened.result }, replyTo);
  }

  private reply(s: WsState, response: JsonRpcResponse, replyTo: McpwReplyTo | undefined): void {
    s.out.message(response, replyTo);
  }
}

/** Default options. */
export const MCP_WS_DEFAULTS: McpWsOptions = {
  maxInFlight: 64,
  hardLimitBytes: 16 * 1024 * 1024,
  binaryThresholdBytes: 1024,
  gzipThresholdBytes: MCPW_DEFAULT_GZIP_THRESHOLD,
  gzipLargeBytes: 64 * 1024,
  gzipOffLoopBytes: 16 * 1024,
  maxPayloadBytes: 16 * 1024 * 1024,
};
