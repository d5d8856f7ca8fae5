/**
 * Downstream MCP sessions, shared by every transport that speaks MCP to agents (`/mcp` Streamable
 * HTTP today). A session is created by `initialize`, named by the `Mcp-Session-Id` header
 * (MCP spec 2025-06-18, "Session Management") and holds what the protocol keeps per client: the
 * negotiated version, the client's capabilities, its log level, its calls in flight, the
 * server→client requests awaiting its answer, its resource subscriptions and its standalone
 * server→client stream (GET on /mcp).
 */
import { randomUUID } from 'node:crypto';
import type { JsonRpcId, McpLogLevel } from '../../codecs/jsonrpc.js';
import { cancelScope, type CancelScope, type Upstream } from '../../upstreams/upstream.js';
import type { TraceScope } from '../../telemetry/tracing.js';
import type { RequestAuth } from '../../base/access.js';
import type { ToolMode } from '../../base/principal.js';

/** Somewhere a JSON-RPC message can be sent to the downstream client. */
export interface OutboundChannel {
  /** Sends `message`; false when this channel cannot carry it (closed, or JSON-only). */
  send(message: object): boolean;
}

/** A downstream request being answered; cancel it with `cancelScope(call, reason)`. */
export interface InflightCall extends CancelScope {
  readonly id: JsonRpcId;
  readonly method: string;
  /** The POST's own SSE stream, when the client accepts one. */
  readonly channel: OutboundChannel | undefined;
  /** The upstream serving it, once routed. */
  upstream: Upstream | undefined;
  readonly startedAt: number;
  /** Who sent it and what it may use; `undefined` = no narrowing. */
  readonly auth?: RequestAuth | undefined;
  /** The request's span while traced (set by the dispatcher when tracing is on). */
  trace?: TraceScope | undefined;
  /** W3C `traceparent`/`tracestate` of the HTTP request that carried it (`/mcp`), if any. */
  readonly traceHeaders?: { readonly traceparent: string; readonly tracestate: string } | undefined;
}

/** A server→client request relayed from an upstream, awaiting the downstream answer. */
export interface PendingServerRequest {
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: { code: number; message: string; data?: unknown }) => void;
  readonly upstream: Upstream;
  /** The upstream's progress token, if its request asked for progress. */
  readonly progressToken: string | number | undefined;
}

export class McpSession {
  readonly id = randomUUID();
  readonly createdAt = Date.now();
  lastSeen = Date.now();
  initialized = false;
  logLevel: McpLogLevel | undefined;
  standalone: OutboundChannel | undefined;
  readonly calls = new Map<JsonRpcId, InflightCall>();
  readonly pending = new Map<JsonRpcId, PendingServerRequest>();
  readonly subscriptions = new Set<string>();
  closed = false;
  /** The principal id that opened the session; other callers may not use it. */
  owner: string | undefined;
  /** How this session sees tools: `full` (the catalogue), `search` or `code` (meta-tools); fixed at initialize. */
  toolMode: ToolMode = 'full';
  private nextServerRequestId = 1;
  private closeHandlers: (() => void)[] = [];

  constructor(
    readonly protocolVersion: string,
    readonly clientCapabilities: Record<string, unknown>,
    readonly clientInfo: { name: string; version?: string },
  ) {}

  /** A fresh id for a server→client request (never reused within the session). */
  newServerRequestId(): number {
    return this.nextServerRequestId++;
  }

  /** Sends on the call's own stream, else the standalone stream; false if neither can. */
  sendRelated(call: InflightCall | undefined, message: object): boolean {
    if (call?.channel?.send(message)) return true;
    return this.standalone?.send(message) ?? false;
  }

  /** Runs `fn` once when the session closes; returns a function that removes it. */
  onClose(fn: () => void): () => void {
    this.closeHandlers.push(fn);
    return () => {
      this.closeHandlers = this.closeHandlers.filter((f) => f !== fn);
    };
  }

  /** Aborts every call in flight, rejects pending server→client requests, ends its streams. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const handlers = this.closeHandlers;
    this.closeHandlers = [];
    for (const fn of handlers) fn();
    for (const call of this.calls.values()) cancelScope(call, 'session closed');
    this.calls.clear();
    for (const p of this.pending.values()) p.reject({ code: -32000, message: 'Downstream session closed' });
    this.pending.clear();
    this.standalone = undefined;
  }
}

/** All open sessions, with idle expiry and a bound on how many can be open. */
export class SessionStore {
  private readonly sessions = new Map<string, McpSession>();

  constructor(
    private readonly maxSessions: number,
    private readonly idleTimeoutMs: number,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  get(id: string): McpSession | undefined {
    return this.sessions.get(id);
  }

  values(): IterableIterator<McpSession> {
    return this.sessions.values();
  }

  /** Creates a session, or returns undefined when `maxSessions` are open. */
  create(protocolVersion: string, caps: Record<string, unknown>, clientInfo: { name: string; version?: string }): McpSession | undefined {
    if (this.sessions.size >= this.maxSessions) {
      this.sweep(Date.now());
      if (this.sessions.size >= this.maxSessions) return undefined;
    }
    const s = new McpSession(protocolVersion, caps, clientInfo);
    this.sessions.set(s.id, s);
    return s;
  }

  delete(id: string): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    s.close();
    this.sessions.delete(id);
    return true;
  }

  /** Closes sessions idle past the timeout with no call in flight and no open stream. Returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const s of this.sessions.values()) {
      if (now - s.lastSeen > this.idleTimeoutMs && s.calls.size === 0 && s.standalone === undefined) {
        this.delete(s.id);
        n++;
      }
    }
    return n;
  }

  closeAll(): void {
    for (const id of [...this.sessions.keys()]) this.delete(id);
  }
}
