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
import type { SessionSealer } from './sealed-session.js';
import { RegistryMap } from '../../base/registry.js';

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

/**
 * A new {@link InflightCall} with every field set (absent ones `undefined`), so the calls of `/mcp`,
 * `/ws` and 2026-07-28 requests are one object shape and written in one place.
 */
export function newInflightCall(
  id: JsonRpcId,
  method: string,
  channel: OutboundChannel | undefined,
  auth: RequestAuth | undefined,
  traceHeaders?: { readonly traceparent: string; readonly tracestate: string },
): InflightCall {
  return { id, method, cancelled: false, onCancel: undefined, answered: false, channel, upstream: undefined, startedAt: performance.now(), auth, trace: undefined, traceHeaders };
}

/** A server→client request relayed from an upstream, awaiting the downstream answer. */
export interface PendingServerRequest {
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: { code: number; message: string; data?: unknown }) => void;
  readonly upstream: Upstream;
  /** The upstream's progress token, if its request asked for progress. */
  readonly progressToken: string | number | undefined;
}

/**
 * Where a session's server→client messages and its client's stray messages go when this process
 * does not hold them: another worker thread, or another cluster node (over NATS). Installed with
 * {@link SessionStore.useSealing}; absent in one process.
 */
export interface SessionRelay {
  /** Prefix of server→client request ids made here (unique among the processes sharing sessions). */
  readonly requestIdPrefix: string;
  /** Sends `message` to whichever process holds the session's standalone stream (fire and forget). */
  toStream(sessionId: string, message: object): void;
  /** Starts delivering messages routed to `session`'s stream to it; returns the function that stops. */
  holdStream(session: McpSession): () => void;
  /** A client message (a response, a cancel, a progress) about something this process does not hold: to every process. */
  fromClient(sessionId: string, message: object): void;
  /** The session was ended (DELETE): every process forgets it and refuses its id. */
  revoke(sessionId: string): void;
}

export class McpSession {
  readonly createdAt = Date.now();
  lastSeen = Date.now();
  initialized = false;
  logLevel: McpLogLevel | undefined;
  standalone: OutboundChannel | undefined;
  /** Calls in flight (a RegistryMap, not a Map: see base/registry.ts). */
  readonly calls = new RegistryMap<JsonRpcId, InflightCall>();
  readonly pending = new RegistryMap<JsonRpcId, PendingServerRequest>();
  readonly subscriptions = new Set<string>();
  closed = false;
  /** The principal id that opened the session; other callers may not use it. */
  owner: string | undefined;
  /** How this session sees tools: `full` (the catalogue), `search` or `code` (meta-tools); fixed at initialize. */
  toolMode: ToolMode = 'full';
  /**
   * Set when the session may be held by several processes (sealed ids): server→client messages
   * with no channel here go through it to the process holding the standalone stream.
   */
  relay: SessionRelay | undefined;
  private nextServerRequestId = 1;
  private closeHandlers: (() => void)[] = [];

  constructor(
    readonly protocolVersion: string,
    readonly clientCapabilities: Record<string, unknown>,
    readonly clientInfo: { name: string; version?: string },
    /** The `Mcp-Session-Id`: a random UUID, or a sealed id carrying the state above. */
    readonly id: string = randomUUID(),
  ) {}

  /**
   * A fresh id for a server→client request (never reused within the session). With a relay it is
   * a string prefixed with the process's name, so ids made by different processes never collide.
   */
  newServerRequestId(): JsonRpcId {
    const n = this.nextServerRequestId++;
    return this.relay === undefined ? n : `${this.relay.requestIdPrefix}${n}`;
  }

  /**
   * Sends on the call's own stream, else the standalone stream, else (sealed sessions) to the
   * process holding the standalone stream; false if none can. A relayed message counts as sent:
   * whether another process holds a stream is not known here.
   */
  sendRelated(call: InflightCall | undefined, message: object): boolean {
    if (call?.channel?.send(message)) return true;
    if (this.standalone !== undefined) return this.standalone.send(message);
    if (this.relay === undefined) return false;
    this.relay.toStream(this.id, message);
    return true;
  }

  /**
   * Whether a client message belongs to something this process holds: a response to one of its
   * pending server→client requests, a cancel of one of its calls, progress for one of its pending
   * requests. Other notifications always count as held.
   */
  holds(message: { method?: string; id?: JsonRpcId; params?: Record<string, unknown> }): boolean {
    if (message.method === undefined) return message.id !== undefined && this.pending.has(message.id);
    if (message.method === 'notifications/cancelled') return this.calls.has(message.params?.['requestId'] as JsonRpcId);
    if (message.method === 'notifications/progress') {
      const token = message.params?.['progressToken'];
      for (const p of this.pending.values()) if (p.progressToken !== undefined && p.progressToken === token) return true;
      return false;
    }
    return true;
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
  /**
   * Sessions that live for one MCP 2026-07-28 request only (no `Mcp-Session-Id`, never looked up
   * by id): listed by {@link values} so upstream messages can find the call they belong to.
   */
  private readonly requestScoped = new Set<McpSession>();

  #sealer: SessionSealer | undefined;
  #relay: SessionRelay | undefined;
  /** Ids ended by DELETE (here or, through the relay, elsewhere), refused even though they open: id → when. */
  readonly #revoked = new Map<string, number>();

  constructor(
    private readonly maxSessions: number,
    private readonly idleTimeoutMs: number,
  ) {}

  /**
   * From now on, sessions created with a binding get sealed ids ({@link SessionSealer}), and an id
   * not known here is opened and the session rebuilt from it — so any process sharing the key
   * serves it. `relay` routes server→client messages and stray client messages between processes.
   */
  useSealing(sealer: SessionSealer, relay?: SessionRelay): void {
    this.#sealer = sealer;
    this.#relay = relay;
  }

  /** The relay installed by {@link useSealing}, if any. */
  get relay(): SessionRelay | undefined {
    return this.#relay;
  }

  /** The session of this id if this process holds it (never rebuilds one from a sealed id). */
  peek(id: string): McpSession | undefined {
    return this.sessions.get(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * The session of this id: held here, or (sealing on) rebuilt from a sealed id made by any process
   * sharing the key — initialized, bound to the same owner and tool mode, with no calls, log level
   * or subscriptions of its own. `undefined` for an unknown, altered, expired or revoked id, or
   * when `maxSessions` are open.
   */
  get(id: string): McpSession | undefined {
    const held = this.sessions.get(id);
    if (held !== undefined || this.#sealer === undefined) return held;
    if (this.#revoked.has(id)) return undefined;
    const state = this.#sealer.open(id);
    if (state === undefined) return undefined;
    if (this.sessions.size >= this.maxSessions) {
      this.sweep(Date.now());
      if (this.sessions.size >= this.maxSessions) return undefined;
    }
    const s = new McpSession(state.protocolVersion, state.clientCapabilities, state.clientInfo, id);
    s.initialized = true;
    s.owner = state.owner;
    s.toolMode = state.toolMode;
    s.relay = this.#relay;
    this.sessions.set(id, s);
    return s;
  }

  values(): IterableIterator<McpSession> {
    return this.requestScoped.size === 0 ? this.sessions.values() : this.allValues();
  }

  private *allValues(): IterableIterator<McpSession> {
    yield* this.sessions.values();
    yield* this.requestScoped;
  }

  /** Lists a request-scoped session (see {@link values}) until {@link release}; no id, no expiry, no bound. */
  adopt(session: McpSession): void {
    this.requestScoped.add(session);
  }

  /** Stops listing a request-scoped session and closes it. */
  release(session: McpSession): void {
    if (this.requestScoped.delete(session)) session.close();
  }

  /**
   * Creates a session, or returns undefined when `maxSessions` are open. With a `binding` and
   * sealing on, the id is sealed (owner and tool mode inside it), so other processes can serve it;
   * without one (e.g. a `/ws` connection's session) the id is a random UUID.
   */
  create(
    protocolVersion: string,
    caps: Record<string, unknown>,
    clientInfo: { name: string; version?: string },
    binding?: { readonly owner: string | undefined; readonly toolMode: ToolMode },
  ): McpSession | undefined {
    if (this.sessions.size >= this.maxSessions) {
      this.sweep(Date.now());
      if (this.sessions.size >= this.maxSessions) return undefined;
    }
    const sealed =
      binding !== undefined && this.#sealer !== undefined
        ? this.#sealer.seal({ protocolVersion, clientCapabilities: caps, clientInfo, owner: binding.owner, toolMode: binding.toolMode, createdAt: Date.now() })
        : undefined;
    const s = new McpSession(protocolVersion, caps, clientInfo, sealed);
    if (binding !== undefined) {
      s.owner = binding.owner;
      s.toolMode = binding.toolMode;
    }
    if (sealed !== undefined) s.relay = this.#relay;
    this.sessions.set(s.id, s);
    return s;
  }

  /**
   * Ends a session (DELETE): closes it here and, for a sealed id, refuses the id from now on and
   * tells the other processes through the relay. Returns whether it was held here.
   */
  delete(id: string): boolean {
    if (this.#sealer !== undefined && id.startsWith('ts1.')) {
      this.revoke(id);
      this.#relay?.revoke(id);
    }
    return this.forget(id);
  }

  /**
   * Refuses a sealed id from now on and closes the session if held here; called for DELETEs made
   * elsewhere too. Entries are kept for the sealer's maximum age (an older id does not open
   * anyway), at most `maxSessions` of them (oldest dropped first).
   */
  revoke(id: string): void {
    const now = Date.now();
    const maxAge = this.#sealer?.maxAgeMs ?? Infinity;
    this.#revoked.delete(id);
    this.#revoked.set(id, now);
    for (const [old, at] of this.#revoked) {
      if (this.#revoked.size <= this.maxSessions && now - at <= maxAge) break;
      this.#revoked.delete(old);
    }
    this.forget(id);
  }

  /** Closes and drops a session held here (a sealed id stays valid: it is rebuilt on its next use). */
  private forget(id: string): boolean {
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
        this.forget(s.id);
        n++;
      }
    }
    return n;
  }

  closeAll(): void {
    for (const id of [...this.sessions.keys()]) this.forget(id);
    for (const s of [...this.requestScoped]) this.release(s);
  }
}
