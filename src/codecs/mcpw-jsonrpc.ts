/**
 * MCPW frames ↔ JSON-RPC messages: the method-code table and the two
 * mappings the `/ws` endpoint uses so one session implementation serves text and binary frames.
 *
 * Compact form (method ≠ 0000): the payload is only `params` (Request, Notification), `result`
 * (Response) or the `error` object (Error), the method name comes from the method code and the
 * JSON-RPC id from the header request id. Generic form (method 0000): the payload is the whole
 * JSON-RPC message. A message travels compact exactly when its method has a code, its id follows
 * the id rule of {@link jsonRpcIdToU64} (safe integer ≥ 0, or the decimal string of a larger u64)
 * and it has no members beyond JSON-RPC's; otherwise generic. Either way
 * `frameToJsonRpc(frameFromJsonRpc(m))` gives back `m` (up to what MessagePack preserves).
 */
import { classify, type Classified, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.js';
import { McpwMethod, McpwType, type McpwFrame } from './mcpw.js';
import { jsonRpcIdToU64, u64ToJsonRpcId } from './mcpw-ids.js';

/**
 * JSON-RPC method names of the MCPW method codes. 0001–0003 are MCP's; 0004/0005 use
 * developer-mesh's dotted names (`binary.go` `MethodToString`: `context.get`; 0005 is
 * "context set"); 0006 "log message" is MCP's logging notification `notifications/message`.
 */
export const MCPW_METHOD_NAMES = {
  [McpwMethod.Initialize]: 'initialize',
  [McpwMethod.ToolsList]: 'tools/list',
  [McpwMethod.ToolsCall]: 'tools/call',
  [McpwMethod.ContextGet]: 'context.get',
  [McpwMethod.ContextSet]: 'context.set',
  [McpwMethod.LogMessage]: 'notifications/message',
} as const;

const CODES: ReadonlyMap<string, McpwMethod> = new Map(
  Object.entries(MCPW_METHOD_NAMES).map(([code, name]) => [name, Number(code) as McpwMethod]),
);

/** The method code of a JSON-RPC method name; 0000 (generic) for a name without one. */
export function methodCodeOf(name: string): McpwMethod {
  return CODES.get(name) ?? McpwMethod.Generic;
}

/** The JSON-RPC method name of a method code; `undefined` for 0000 (generic: the name is in the payload). */
export function methodNameOf(code: McpwMethod): string | undefined {
  return code === McpwMethod.Generic ? undefined : MCPW_METHOD_NAMES[code];
}

/** Any JSON-RPC 2.0 message the gateway sends or receives. */
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** What a reply needs from the request it answers: the request frame's method code and header id. */
export interface McpwReplyTo {
  readonly method: McpwMethod;
  readonly requestId: bigint;
}

/** `frameToJsonRpc`'s result: a classified JSON-RPC message (`./jsonrpc.ts`), or a control frame. */
export type McpwClassified = Classified | { readonly kind: 'control'; readonly type: typeof McpwType.Ping | typeof McpwType.Pong | typeof McpwType.Close };

function hasOnlyKeys(message: object, allowed: readonly string[]): boolean {
  for (const key of Object.keys(message)) if (!allowed.includes(key)) return false;
  return true;
}

const REQUEST_KEYS = ['jsonrpc', 'id', 'method', 'params'] as const;
const NOTIFICATION_KEYS = ['jsonrpc', 'method', 'params'] as const;
const RESULT_KEYS = ['jsonrpc', 'id', 'result'] as const;
const ERROR_KEYS = ['jsonrpc', 'id', 'error'] as const;

/**
 * The frame carrying a JSON-RPC message. Type: request → 01, notification → 03, response with
 * `error` → 04, other response → 02. Method: the code of the request's / notification's method
 * name; for a response `replyTo.method` (the request frame's), else 0000. Header id: a reply's
 * `replyTo.requestId`, else the message id's u64 form (id rule: {@link jsonRpcIdToU64}), else 0.
 * Compact payload when the method code is not 0000, the JSON-RPC id maps to exactly the header id
 * and there are no extra members; otherwise the whole message with method 0000.
 *
 * @param replyTo for a response: the request frame it answers, so the reply carries the same
 *   request id and method (a binary reply carries the request id of its request).
 */
export function frameFromJsonRpc(message: JsonRpcMessage, replyTo?: McpwReplyTo): McpwFrame {
  if ('method' in message) {
    const isRequest = 'id' in message;
    const type = isRequest ? McpwType.Request : McpwType.Notification;
    const method = methodCodeOf(message.method);
    const u64 = isRequest ? jsonRpcIdToU64(message.id) : undefined;
    const requestId = replyTo?.requestId ?? u64 ?? 0n;
    const compact =
      method !== McpwMethod.Generic &&
      message.jsonrpc === '2.0' &&
      (isRequest ? u64 !== undefined && u64 === requestId && hasOnlyKeys(message, REQUEST_KEYS) : hasOnlyKeys(message, NOTIFICATION_KEYS));
    return compact ? { type, method, requestId, payload: message.params } : { type, method: McpwMethod.Generic, requestId, payload: message };
  }
  const isError = message.error !== undefined;
  const type = isError ? McpwType.Error : McpwType.Response;
  const method = replyTo?.method ?? McpwMethod.Generic;
  const u64 = jsonRpcIdToU64(message.id);
  const requestId = replyTo?.requestId ?? u64 ?? 0n;
  const compact =
    method !== McpwMethod.Generic &&
    message.jsonrpc === '2.0' &&
    u64 !== undefined &&
    u64 === requestId &&
    (isError ? hasOnlyKeys(message, ERROR_KEYS) : message.result !== undefined && hasOnlyKeys(message, RESULT_KEYS));
  if (!compact) return { type, method: McpwMethod.Generic, requestId, payload: message };
  return { type, method, requestId, payload: isError ? message.error : message.result };
}

const EXPECTED_KIND = {
  [McpwType.Request]: 'request',
  [McpwType.Notification]: 'notification',
  [McpwType.Response]: 'response',
  [McpwType.Error]: 'response',
} as const;

/**
 * The JSON-RPC message a decoded frame carries, classified with the same `classify` as text
 * frames (`./jsonrpc.ts`), so binary and text requests are validated alike.
 *
 * - Ping/Pong/Close → `{ kind: 'control', type }`.
 * - Method 0000 → the payload classified as a whole message; it must be of the frame's kind
 *   (Request → request, Notification → notification, Response/Error → response), else `invalid`.
 * - Otherwise the message is rebuilt: `method` from the code, `id` = `u64ToJsonRpcId(requestId)`
 *   (Notification: no id), and `params` (omitted when the payload is empty) / `result` (an empty
 *   payload is the empty result `{}`) / `error` (must be present) from the payload.
 */
export function frameToJsonRpc(frame: McpwFrame): McpwClassified {
  const { type } = frame;
  if (type === McpwType.Ping || type === McpwType.Pong || type === McpwType.Close) return { kind: 'control', type };
  if (frame.method === McpwMethod.Generic) {
    const classified = classify(frame.payload);
    if (classified.kind === 'invalid' || classified.kind === EXPECTED_KIND[type]) return classified;
    const id = 'id' in classified.msg ? classified.msg.id : null;
    return { kind: 'invalid', id, reason: `MCPW ${EXPECTED_KIND[type]} frame carries a JSON-RPC ${classified.kind}` };
  }
  const id = u64ToJsonRpcId(frame.requestId);
  const { payload } = frame;
  switch (type) {
    case McpwType.Request:
      return classify(payload === undefined ? { jsonrpc: '2.0', id, method: MCPW_METHOD_NAMES[frame.method] } : { jsonrpc: '2.0', id, method: MCPW_METHOD_NAMES[frame.method], params: payload });
    case McpwType.Notification:
      return classify(payload === undefined ? { jsonrpc: '2.0', method: MCPW_METHOD_NAMES[frame.method] } : { jsonrpc: '2.0', method: MCPW_METHOD_NAMES[frame.method], params: payload });
    case McpwType.Response:
      return classify({ jsonrpc: '2.0', id, result: payload ?? {} });
    case McpwType.Error:
      if (payload === undefined) return { kind: 'invalid', id, reason: 'MCPW Error frame without an error object' };
      return classify({ jsonrpc: '2.0', id, error: payload });
  }
}
