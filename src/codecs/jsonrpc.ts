/**
 * JSON-RPC 2.0 message classification and the io-ts codecs of the MCP method params the gateway
 * reads (MCP spec 2025-06-18, "Base Protocol" and the server features). Decoding happens once at
 * the boundary; inside, handlers use plain types.
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { GatewayError } from '../base/errors.js';
import { formatIoTsErrors } from '../base/io-ts-errors.js';

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId;
  readonly method: string;
  readonly params?: Record<string, unknown>;
}

export interface JsonRpcNotification {
  readonly jsonrpc: '2.0';
  readonly method: string;
  readonly params?: Record<string, unknown>;
}

export interface JsonRpcResponse {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId;
  readonly result?: Record<string, unknown>;
  readonly error?: { code: number; message: string; data?: unknown };
}

/** One incoming message, classified; `invalid` carries the reason and whatever id could be read. */
export type Classified =
  | { kind: 'request'; msg: JsonRpcRequest }
  | { kind: 'notification'; msg: JsonRpcNotification }
  | { kind: 'response'; msg: JsonRpcResponse }
  | { kind: 'invalid'; id: JsonRpcId | null; reason: string };

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/**
 * Classifies a parsed JSON value as a JSON-RPC 2.0 request, notification or response.
 * Hand-written (no allocation beyond the result) because it runs on every message.
 */
export function classify(value: unknown): Classified {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'invalid', id: null, reason: 'message must be a JSON object' };
  }
  const m = value as Record<string, unknown>;
  const rawId = m['id'];
  const id = isId(rawId) ? rawId : null;
  if (m['jsonrpc'] !== '2.0') return { kind: 'invalid', id, reason: 'jsonrpc must be "2.0"' };
  const params = m['params'];
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
    return { kind: 'invalid', id, reason: 'params must be an object' };
  }
  const method = m['method'];
  if (method !== undefined) {
    if (typeof method !== 'string' || method === '') return { kind: 'invalid', id, reason: 'method must be a non-empty string' };
    if (!('id' in m)) return { kind: 'notification', msg: m as unknown as JsonRpcNotification };
    if (id === null) return { kind: 'invalid', id: null, reason: 'id must be a string or a number' };
    return { kind: 'request', msg: m as unknown as JsonRpcRequest };
  }
  if ('result' in m || 'error' in m) {
    if (id === null) return { kind: 'invalid', id: null, reason: 'response id must be a string or a number' };
    return { kind: 'response', msg: m as unknown as JsonRpcResponse };
  }
  return { kind: 'invalid', id, reason: 'not a request, notification or response' };
}

/**
 * `_meta` of a request: any object, but the keys MCP defines must have their shape —
 * `progressToken` a string or number, `io.modelcontextprotocol/related-task` an object with a
 * string `taskId`. Upstreams built on the SDK drop a request whose `_meta` breaks this without
 * answering, so it is refused here with -32602 instead of timing out.
 */
const Meta = t.intersection([
  t.UnknownRecord,
  t.partial({
    progressToken: t.union([t.string, t.number]),
    'io.modelcontextprotocol/related-task': t.type({ taskId: t.string }),
  }),
]);
const Cursor = t.partial({ cursor: t.string, _meta: Meta });

/** Params codecs per method (`t.type` keeps unknown keys, which the gateway forwards untouched). */
export const Params = {
  initialize: t.type({
    protocolVersion: t.string,
    capabilities: t.UnknownRecord,
    clientInfo: t.intersection([t.type({ name: t.string }), t.partial({ version: t.string })]),
  }),
  list: Cursor,
  toolsCall: t.intersection([t.type({ name: t.string }), t.partial({ arguments: t.UnknownRecord, _meta: Meta })]),
  resourceUri: t.intersection([t.type({ uri: t.string }), t.partial({ _meta: Meta })]),
  promptsGet: t.intersection([t.type({ name: t.string }), t.partial({ arguments: t.record(t.string, t.string), _meta: Meta })]),
  complete: t.intersection([t.partial({ _meta: Meta }), t.type({
    ref: t.union([t.type({ type: t.literal('ref/prompt'), name: t.string }), t.type({ type: t.literal('ref/resource'), uri: t.string })]),
    argument: t.type({ name: t.string, value: t.string }),
  })]),
  setLevel: t.intersection([t.partial({ _meta: Meta }), t.type({
    level: t.keyof({ debug: null, info: null, notice: null, warning: null, error: null, critical: null, alert: null, emergency: null }),
  })]),
  cancelled: t.intersection([t.type({ requestId: t.union([t.string, t.number]) }), t.partial({ reason: t.string })]),
  progress: t.intersection([t.type({ progressToken: t.union([t.string, t.number]), progress: t.number }), t.partial({ total: t.number, message: t.string })]),
} as const;

/**
 * Decodes `params` with `codec` or throws INVALID_PARAMS naming each bad field.
 * @throws GatewayError INVALID_PARAMS with `details.problems`.
 */
export function decodeParams<A>(codec: t.Type<A, unknown, unknown>, params: unknown, method: string): A {
  const value = params ?? {};
  // `is` checks without building a copy; `decode` runs only to explain a failure
  if (codec.is(value)) return value;
  const result = codec.decode(value);
  if (isLeft(result)) {
    const problems = formatIoTsErrors(result.left, 'params');
    throw new GatewayError('INVALID_PARAMS', `Invalid params for ${method}: ${problems.join('; ')}`, { method, problems });
  }
  return result.right;
}

/** MCP logging levels, least to most severe (RFC 5424 order). */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
export type McpLogLevel = (typeof LOG_LEVELS)[number];
