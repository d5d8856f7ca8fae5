/**
 * `/mcp` for MCP 2026-07-28 requests: Streamable HTTP without sessions
 * (https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http).
 * Each POST carries one request; the reply is JSON, or an SSE stream scoped to that request when
 * something related (progress, a requested log message) goes out before the response. Headers are
 * checked against the body (400, -32020), an unknown method is 404, `Mcp-Session-Id` and
 * `Last-Event-ID` are ignored. `subscriptions/listen` answers a long-lived SSE stream.
 */
import { Observable } from 'rxjs';
import { GatewayError } from '../../base/errors.js';
import type { Classified, JsonRpcRequest } from '../../codecs/jsonrpc.js';
import { jsonReply, type HttpEffect, type HttpInput } from '../../base/http.js';
import type { Logger } from '../../log/logger.js';
import type { McpDispatcher } from './dispatch.js';
import type { SessionStore } from './session.js';
import { ModernMcp, checkHeaders, checkParamHeaders, checkVersion, listenFilterOf, paramHeadersOf, readMeta, statusOf, type ParamHeaders, type ModernMeta, type ModernOptions, type Refusal } from './modern.js';
import { PostChannel, SSE_HEADERS, once, sseEvent } from './post-channel.js';

export class ModernHttp {
  readonly core: ModernMcp;
  /** `x-mcp-header` annotations per tool name, per catalogue (rebuilt when the catalogue array changes). */
  private annotations: { tools: readonly Record<string, unknown>[]; byName: Map<string, ParamHeaders> } | undefined;

  constructor(
    private readonly dispatcher: McpDispatcher,
    private readonly sessions: SessionStore,
    private readonly log: Logger,
    private readonly options: ModernOptions,
  ) {
    this.core = new ModernMcp(dispatcher, sessions, log, options);
  }

  /** POST /mcp with a modern message (see {@link isModernMessage}); origin and content checks already passed. */
  post(input: HttpInput, c: Classified): Observable<HttpEffect> {
    if (c.kind === 'notification' || c.kind === 'response') {
      // no client notification is defined for Streamable HTTP in 2026-07-28; accepted and ignored
      return once({ kind: 'reply', status: 202, headers: [], body: '' });
    }
    if (c.kind !== 'request') return once(jsonReply(400, { jsonrpc: '2.0', id: c.id, error: new GatewayError('INVALID_REQUEST', `Invalid Request: ${c.reason}`).toJsonRpc() }));
    const msg = c.msg;
    const meta = readMeta(msg.params);
    if ('error' in meta) return once(this.refusal(msg, meta));
    const mismatch = checkHeaders(msg, input.headers, meta.protocolVersion) ?? checkVersion(meta) ?? this.checkToolParams(msg, input);
    if (mismatch) return once(this.refusal(msg, mismatch));
    if (msg.method === 'subscriptions/listen') return this.listen(input, msg, meta);
    const canSse = input.headers.accept.includes('text/event-stream');
    return new Observable<HttpEffect>((sub) => {
      const channel = new PostChannel(sub, canSse);
      const tp = input.headers.traceparent;
      const call = this.core.handle(msg, meta, {
        auth: input.auth,
        toolModeHeader: input.headers.toolMode,
        channel,
        ...(tp !== undefined && tp !== '' ? { traceHeaders: { traceparent: tp, tracestate: input.headers.tracestate ?? '' } } : {}),
      });
      let finished = false;
      void call.response.then((response) => {
        finished = true;
        channel.finish(response, call.status !== 200 ? call.status : statusOf(response));
      });
      return () => {
        // closing the response stream cancels the request (2026-07-28 "Cancellation")
        if (!finished) call.abandon('client disconnected');
      };
    });
  }

  /** `tools/call`: the `Mcp-Param-*` headers of the tool's `x-mcp-header` annotations. */
  private checkToolParams(msg: JsonRpcRequest, input: HttpInput): Refusal | undefined {
    if (msg.method !== 'tools/call') return undefined;
    const tools = this.dispatcher.visibleTools(undefined);
    if (this.annotations?.tools !== tools) {
      const byName = new Map<string, ParamHeaders>();
      for (const t of tools) {
        const a = paramHeadersOf(t['inputSchema']);
        if (a.size > 0 && typeof t['name'] === 'string') byName.set(t['name'], a);
      }
      this.annotations = { tools, byName };
    }
    const name = msg.params?.['name'];
    const a = typeof name === 'string' ? this.annotations.byName.get(name) : undefined;
    return a === undefined ? undefined : checkParamHeaders(a, msg.params?.['arguments'], input.headers.mcpParams);
  }

  private refusal(msg: JsonRpcRequest, r: Refusal): HttpEffect {
    return jsonReply(r.status, { jsonrpc: '2.0', id: msg.id, error: r.error });
  }

  /**
   * `subscriptions/listen`: an SSE stream that first acknowledges the filter it honours, then
   * carries the opted-in list_changed and resource-updated notifications from every upstream,
   * each tagged with the subscription id (the request id), until the client closes it. On
   * gateway shutdown it ends with a `complete` result (graceful closure).
   */
  private listen(input: HttpInput, msg: JsonRpcRequest, meta: ModernMeta): Observable<HttpEffect> {
    const parsed = listenFilterOf(msg);
    if ('refused' in parsed) return once(jsonReply(200, parsed.refused));
    const filter = parsed.filter;
    if (!input.headers.accept.includes('text/event-stream')) {
      return once(jsonReply(406, { jsonrpc: '2.0', id: msg.id, error: new GatewayError('NOT_ACCEPTABLE', 'Not Acceptable: subscriptions/listen answers text/event-stream').toJsonRpc() }));
    }
    return new Observable<HttpEffect>((sub) => {
      let open = true;
      sub.next({ kind: 'sse-start', headers: SSE_HEADERS });
      const close = this.core.listen(msg, meta, filter, input.auth, {
        write: (message) => {
          if (!open || sub.closed) return false;
          sub.next({ kind: 'sse-data', chunk: sseEvent(message) });
          return true;
        },
        end: () => {
          open = false;
          sub.next({ kind: 'end' });
          sub.complete();
        },
      });
      const keepAlive = setInterval(() => {
        if (open && !sub.closed) sub.next({ kind: 'sse-data', chunk: ':\n\n' });
      }, this.options.keepAliveMs);
      keepAlive.unref();
      return () => {
        open = false;
        clearInterval(keepAlive);
        close();
      };
    });
  }
}
