/**
 * What the aggregated server relays from its upstreams to downstream sessions (MCP spec
 * 2025-06-18, https://modelcontextprotocol.io/specification/2025-06-18/client/sampling and
 * https://modelcontextprotocol.io/specification/2025-06-18/client/elicitation): log messages and
 * resource updates, list_changed broadcasts, and server→client requests (`sampling/createMessage`,
 * `elicitation/create`, `roots/list`) asked of the session whose call caused them.
 */
import { McpError, type JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { JsonRpcErrorObject } from '../../base/errors.js';
import { LOG_LEVELS, type JsonRpcId, type McpLogLevel } from '../../codecs/jsonrpc.js';
import type { Logger } from '../../log/logger.js';
import type { JsonObject, ServerRequestExtra, Upstream } from '../../upstreams/upstream.js';
import type { InflightCall, McpSession, SessionStore } from './session.js';
import type { Tracing } from '../../telemetry/tracing.js';

/** Server→client methods and the client capability each needs. */
const SERVER_REQUEST_CAPABILITY: Record<string, string> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** The dispatcher options the relay reads (see `DispatcherOptions`). */
export interface RelayOptions {
  /** How long a relayed server→client request may wait for the downstream answer, ms. */
  readonly serverRequestTimeoutMs: number;
  /** OpenTelemetry traces; absent or off: none. */
  readonly tracing?: Tracing;
}

/** Relays upstream messages to the sessions of the gateway's {@link SessionStore}. */
export class UpstreamRelay {
  constructor(
    private readonly sessions: SessionStore,
    private readonly log: Logger,
    private readonly options: RelayOptions,
  ) {}

  /** Sends a message to every session's standalone stream. */
  broadcast(message: object, filter?: (s: McpSession) => boolean): void {
    for (const s of this.sessions.values()) {
      if (filter && !filter(s)) continue;
      s.standalone?.send(message);
    }
  }

  /**
   * The downstream call an upstream message belongs to, when it can be told: the most recent call
   * in flight on that upstream (not yet answered by it), provided all such calls come from one session. stdio
   * and in-memory transports do not say which request a server→client message relates to.
   */
  private attribute(upstream: Upstream): { session: McpSession; call: InflightCall } | undefined {
    let found: { session: McpSession; call: InflightCall } | undefined;
    for (const s of this.sessions.values()) {
      for (const c of s.calls.values()) {
        // a pooled client's call is attributed to the process that serves it
        if ((c.served ?? c.upstream) !== upstream) continue;
        // answered by the upstream, waiting only for its durable record: not this request's call
        if (c.answered === true) continue;
        if (found && found.session !== s) return undefined;
        if (!found || c.startedAt >= found.call.startedAt) found = { session: s, call: c };
      }
    }
    return found;
  }

  /** Relays an upstream notification: log messages to the call they belong to (else every session at that level), resource updates to the sessions subscribed. */
  onUpstreamNotification(upstream: Upstream, method: string, params: JsonObject | undefined): void {
    const message = { jsonrpc: '2.0', method, ...(params ? { params } : {}) };
    if (method === 'notifications/message') {
      const level = params?.['level'];
      const idx = LOG_LEVELS.indexOf(level as McpLogLevel);
      const allowed = (s: McpSession): boolean => s.logLevel === undefined || idx < 0 || idx >= LOG_LEVELS.indexOf(s.logLevel);
      const target = this.attribute(upstream);
      if (target) {
        if (allowed(target.session)) target.session.sendRelated(target.call, message);
        return;
      }
      this.broadcast(message, allowed);
      return;
    }
    if (method === 'notifications/resources/updated') {
      const uri = params?.['uri'];
      this.broadcast(message, (s) => typeof uri === 'string' && s.subscriptions.has(uri));
      return;
    }
    this.log.debug('upstream notification not relayed', { upstream: upstream.name, method });
  }

  /**
   * {@link relayServerRequest} inside a CLIENT span under the downstream call it belongs to; the
   * span's context goes to the client in the request's `_meta` (tracing on only).
   */
  relayTraced(upstream: Upstream, request: JSONRPCRequest, extra: ServerRequestExtra): Promise<JsonObject> {
    const tracing = this.options.tracing;
    if (tracing === undefined || !tracing.enabled) return this.relayServerRequest(upstream, request, extra);
    const target = this.attribute(upstream);
    const params = (request.params ?? {}) as JsonObject;
    const meta: JsonObject = { ...((params['_meta'] as JsonObject | undefined) ?? {}) };
    const scope = tracing.startRelay(target?.call.trace, upstream.name, request.method, target?.session.id, meta as { traceparent?: string });
    if (scope === undefined) return this.relayServerRequest(upstream, request, extra);
    const traced: JSONRPCRequest = { ...request, params: { ...params, _meta: meta } };
    return this.relayServerRequest(upstream, traced, extra).then(
      (result) => {
        tracing.end(scope);
        return result;
      },
      (err: unknown) => {
        tracing.end(scope, err);
        throw err;
      },
    );
  }

  private async relayServerRequest(upstream: Upstream, request: JSONRPCRequest, extra: ServerRequestExtra): Promise<JsonObject> {
    const target = this.attribute(upstream);
    if (request.method === 'roots/list' && (!target || target.session.clientCapabilities['roots'] === undefined)) {
      // Upstreams ask for roots at start-up, when no call is in flight, and the gateway offers the
      // roots capability to every upstream: with no downstream session to ask (or one without
      // roots), the honest answer is "no roots" rather than an error each upstream logs.
      this.log.debug('roots/list answered with no roots', { upstream: upstream.name, reason: target ? 'the downstream client has no roots capability' : 'no single downstream session has a call in flight' });
      return { roots: [] };
    }
    if (!target) {
      throw new McpError(-32603, `Tributary cannot relay ${request.method}: no single downstream session has a call in flight on upstream "${upstream.name}"`);
    }
    const { session, call } = target;
    const capability = SERVER_REQUEST_CAPABILITY[request.method];
    if (capability && session.clientCapabilities[capability] === undefined) {
      throw new McpError(-32601, `The downstream client does not support ${request.method} (no "${capability}" capability)`);
    }
    return this.askSession(session, call, request.method, request.params as JsonObject | undefined, { upstream, signal: extra.signal });
  }

  /**
   * Sends a server→client request to `session` on behalf of `call` and resolves with the client's
   * result. `from`: the upstream that asked (its progress token is routed back to it, and its
   * abort cancels the request); absent when the gateway asks itself (an upstream's
   * `input_required` translated for a session-based client).
   * @throws McpError with the client's error, -32001 after `serverRequestTimeoutMs`, -32603 when
   *   the session has no open stream, -32800 when the upstream cancelled.
   */
  askSession(session: McpSession, call: InflightCall, method: string, params: JsonObject | undefined, from: { upstream: Upstream; signal: AbortSignal } | undefined): Promise<JsonObject> {
    const id: JsonRpcId = session.newServerRequestId();
    const meta = params?.['_meta'] as JsonObject | undefined;
    const token = meta?.['progressToken'];
    const upstream = from?.upstream ?? call.upstream;
    return new Promise<JsonObject>((resolve, reject) => {
      if (upstream === undefined) {
        reject(new McpError(-32603, `Tributary cannot ask ${method}: the call has no upstream`));
        return;
      }
      if (call.cancelled) {
        reject(new McpError(-32800, 'Request cancelled'));
        return;
      }
      const cleanup = (): void => {
        clearTimeout(timer);
        from?.signal.removeEventListener('abort', onAbort);
        if (from === undefined && call.onCancel === onCallCancel) call.onCancel = undefined;
        session.pending.delete(id);
      };
      const onAbort = (): void => {
        cleanup();
        session.sendRelated(call, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'upstream cancelled the request' } });
        reject(new McpError(-32800, 'Request cancelled by upstream'));
      };
      // asked by the gateway itself: no upstream request is in flight, the call's cancel ends the wait
      const onCallCancel = (reason: string): void => {
        cleanup();
        session.sendRelated(call, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } });
        reject(new McpError(-32800, `Request cancelled: ${reason}`));
      };
      if (from === undefined) call.onCancel = onCallCancel;
      session.pending.set(id, {
        upstream,
        progressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined,
        resolve: (result) => {
          cleanup();
          resolve(result);
        },
        reject: (error: JsonRpcErrorObject) => {
          cleanup();
          reject(new McpError(error.code, error.message, error.data));
        },
      });
      from?.signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        cleanup();
        reject(new McpError(-32001, `The downstream client did not answer ${method} within ${this.options.serverRequestTimeoutMs} ms`));
      }, this.options.serverRequestTimeoutMs);
      const sent = session.sendRelated(call, { jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });
      if (!sent) {
        cleanup();
        reject(new McpError(-32603, `Tributary cannot relay ${method}: the downstream session has no open stream (accept text/event-stream on POST or open GET /mcp)`));
      }
    });
  }
}
