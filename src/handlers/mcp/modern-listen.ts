/**
 * `subscriptions/listen` of MCP 2026-07-28
 * (https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions), which
 * replaces the GET stream and resource subscriptions: the request's filter, and the subscription
 * itself, independent of the transport that carries its messages.
 */
import { GatewayError } from '../../base/errors.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../../codecs/jsonrpc.js';
import type { RequestAuth } from '../../base/access.js';
import type { Logger } from '../../log/logger.js';
import type { McpDispatcher } from './dispatch.js';
import { META, isObject, type ModernMeta } from './modern-meta.js';
import { McpSession, newInflightCall, type SessionStore } from './session.js';

/** Which change notifications a `subscriptions/listen` request asks for. */
export interface ListenFilter {
  toolsListChanged?: boolean;
  promptsListChanged?: boolean;
  resourcesListChanged?: boolean;
  resourceSubscriptions?: string[];
}

/** Where a subscription's messages go; `write` answers false once the stream is gone. */
export interface ListenSink {
  write(message: object): boolean;
  /** The gateway ended the subscription (after writing its final result). */
  end(): void;
}

/** The `notifications` filter of a `subscriptions/listen` request, or the -32602 response for a malformed one. */
export function listenFilterOf(msg: JsonRpcRequest): { filter: ListenFilter } | { refused: JsonRpcResponse } {
  const raw = msg.params?.['notifications'];
  const asked: ListenFilter = isObject(raw) ? (raw as ListenFilter) : {};
  if (asked.resourceSubscriptions !== undefined && (!Array.isArray(asked.resourceSubscriptions) || !asked.resourceSubscriptions.every((u) => typeof u === 'string'))) {
    return { refused: { jsonrpc: '2.0', id: msg.id, error: new GatewayError('INVALID_PARAMS', 'Invalid params: notifications.resourceSubscriptions must be an array of URIs').toJsonRpc() } };
  }
  return { filter: asked };
}

/** What a subscription uses of the gateway. */
export interface ListenHost {
  readonly dispatcher: McpDispatcher;
  readonly sessions: SessionStore;
  readonly log: Logger;
}

/**
 * Opens a `subscriptions/listen` subscription
 * (https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions) whose
 * messages go to `sink`, whatever the transport: first the acknowledgement naming the filter the
 * gateway honours, then the opted-in list_changed and resource-updated notifications from every
 * upstream, each tagged with the subscription id (the request id). On gateway shutdown it writes
 * the `complete` result (graceful closure) and ends the sink. Returns the function that ends it
 * from the client's side (stream closed, request cancelled): nothing more is written then.
 * `caps`: the aggregated capabilities `server/discover` answers with.
 */
export function openSubscription(host: ListenHost, caps: Record<string, unknown>, msg: JsonRpcRequest, meta: ModernMeta, asked: ListenFilter, auth: RequestAuth | undefined, sink: ListenSink): () => void {
  const tag = { [META.subscriptionId]: msg.id };
  const session = new McpSession(meta.protocolVersion, meta.clientCapabilities, meta.clientInfo);
  session.initialized = true;
  const honoured: ListenFilter = {};
  if (asked.toolsListChanged === true) honoured.toolsListChanged = true;
  if (asked.promptsListChanged === true && caps['prompts'] !== undefined) honoured.promptsListChanged = true;
  if (asked.resourcesListChanged === true && caps['resources'] !== undefined) honoured.resourcesListChanged = true;
  const wanted = new Set<string>();
  if (honoured.toolsListChanged) wanted.add('notifications/tools/list_changed');
  if (honoured.promptsListChanged) wanted.add('notifications/prompts/list_changed');
  if (honoured.resourcesListChanged) wanted.add('notifications/resources/list_changed');
  wanted.add('notifications/resources/updated');
  let open = true;
  const write = (message: object): boolean => open && sink.write(message);
  const subscribed: string[] = [];
  const call = newInflightCall(msg.id, msg.method, undefined, auth);
  const start = async (): Promise<void> => {
    for (const uri of asked.resourceSubscriptions ?? []) {
      const r = await host.dispatcher.handleRequest(session, { jsonrpc: '2.0', id: `listen-${String(msg.id)}-${uri}`, method: 'resources/subscribe', params: { uri } }, call);
      if (r.error === undefined) subscribed.push(uri);
      else host.log.debug('subscriptions/listen: resource not subscribed', { uri, error: r.error });
    }
    if (subscribed.length > 0) honoured.resourceSubscriptions = subscribed;
    if (!open) return;
    write({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { _meta: tag, notifications: honoured } });
    session.standalone = {
      send: (message) => {
        const m = message as { method?: string; params?: Record<string, unknown> };
        if (m.method === undefined || !wanted.has(m.method)) return true;
        return write({ jsonrpc: '2.0', method: m.method, params: { ...(m.params ?? {}), _meta: { ...((m.params?.['_meta'] as object | undefined) ?? {}), ...tag } } });
      },
    };
  };
  host.sessions.adopt(session);
  void start().catch((err: unknown) => host.log.error('subscriptions/listen failed to start', { error: err }));
  const offClose = session.onClose(() => {
    // the gateway ends the subscription (shutdown): graceful closure
    write({ jsonrpc: '2.0', id: msg.id, result: { resultType: 'complete', _meta: tag } });
    open = false;
    sink.end();
  });
  return () => {
    if (!open && session.standalone === undefined) return;
    open = false;
    offClose();
    session.standalone = undefined;
    for (const uri of subscribed) {
      void host.dispatcher.handleRequest(session, { jsonrpc: '2.0', id: `unlisten-${String(msg.id)}-${uri}`, method: 'resources/unsubscribe', params: { uri } }, call);
    }
    host.sessions.release(session);
  };
}
