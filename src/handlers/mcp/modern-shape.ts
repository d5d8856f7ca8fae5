/**
 * Shapes dispatcher responses for the MCP 2026-07-28 wire: `resultType` on every result, the
 * server's identity in `_meta`, caching hints on list results and `resources/read`
 * (https://modelcontextprotocol.io/specification/2026-07-28/server/utilities/caching), and the
 * HTTP status of a modern response.
 */
import { ERRORS, type JsonRpcErrorObject } from '../../base/errors.js';
import type { JsonRpcId, JsonRpcResponse } from '../../codecs/jsonrpc.js';
import type { RequestAuth } from '../../base/access.js';
import { version as gatewayVersion } from '../../base/version.js';
import { META, copyWith, isObject } from './modern-meta.js';

/** Results that carry caching hints. */
const CACHEABLE: ReadonlySet<string> = new Set(['server/discover', 'tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read']);

const SERVER_INFO = { name: 'tributary', title: 'Tributary MCP gateway', version: gatewayVersion };
/** `_meta` of a result: the server's identity (the same frozen object on every result). */
const SERVER_META: Readonly<Record<string, unknown>> = Object.freeze({ [META.serverInfo]: SERVER_INFO });
const RESULT_COMPLETE: Readonly<Record<string, unknown>> = { resultType: 'complete' };

/** HTTP status of a modern response: 400 for the errors the revision answers with 400, else 200. */
export function statusOf(response: JsonRpcResponse): number {
  const code = response.error?.code;
  return code === ERRORS.HEADER_MISMATCH.rpc || code === ERRORS.MISSING_CLIENT_CAPABILITY.rpc || code === ERRORS.UNSUPPORTED_VERSION.rpc ? 400 : 200;
}

/**
 * Shapes a dispatcher response for the 2026-07-28 wire: `resultType`, server identity in
 * `_meta`, caching hints on cacheable results; -32002 (resource not found) becomes -32602.
 */
export function shapeResponse(msg: { id: JsonRpcId; method: string; params?: Record<string, unknown> }, response: { result?: Record<string, unknown>; error?: JsonRpcErrorObject }, auth: RequestAuth | undefined, catalogueTtlMs: number): JsonRpcResponse {
  if (response.error !== undefined) {
    const e = response.error;
    if (msg.method === 'resources/read' && (e.code === ERRORS.RESOURCE_NOT_FOUND.rpc || (e.code === ERRORS.UNKNOWN_RESOURCE.rpc && /not found/i.test(e.message)))) {
      // one code and `data.uri` for "no such resource", whether the gateway or the upstream said it
      const uri = msg.params?.['uri'];
      const data = isObject(e.data) ? e.data : {};
      return { jsonrpc: '2.0', id: msg.id, error: { code: ERRORS.UNKNOWN_RESOURCE.rpc, message: e.message, data: { code: 'UNKNOWN_RESOURCE', ...data, uri } } };
    }
    return { jsonrpc: '2.0', id: msg.id, error: e };
  }
  const result = response.result ?? {};
  if (result['resultType'] === 'input_required') return { jsonrpc: '2.0', id: msg.id, result };
  const meta = isObject(result['_meta']) ? copyWith(result['_meta'], SERVER_META) : SERVER_META;
  const out = copyWith(result, RESULT_COMPLETE);
  out['_meta'] = meta;
  if (CACHEABLE.has(msg.method)) {
    const hints = cacheHints(msg.method, result, auth, catalogueTtlMs);
    out['ttlMs'] = hints.ttlMs;
    out['cacheScope'] = hints.cacheScope;
  }
  return { jsonrpc: '2.0', id: msg.id, result: out };
}

/**
 * Caching hints. Catalogue lists: `catalogueTtlMs` ({@link ModernOptions.catalogueTtlMs}); `public` only when every
 * caller sees the same list (no per-key filter, no per-key tool mode), else `private`.
 * `resources/read` is relayed live from the upstream with no gateway cache: the upstream's own
 * hints when it gave them (a modern upstream), else `ttlMs: 0`, `private`.
 */
function cacheHints(method: string, result: Record<string, unknown>, auth: RequestAuth | undefined, catalogueTtlMs: number): { ttlMs: number; cacheScope: 'public' | 'private' } {
  if (method === 'resources/read') {
    const ttl = result['ttlMs'];
    const scope = result['cacheScope'];
    return { ttlMs: typeof ttl === 'number' && ttl >= 0 ? ttl : 0, cacheScope: scope === 'public' ? 'public' : 'private' };
  }
  const shared = auth === undefined || (auth.filter === undefined && auth.principal.toolMode === undefined);
  return { ttlMs: catalogueTtlMs, cacheScope: shared || method === 'server/discover' ? 'public' : 'private' };
}
