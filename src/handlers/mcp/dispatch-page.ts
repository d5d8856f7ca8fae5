/**
 * Cursor pagination of the list methods (MCP spec 2025-06-18,
 * https://modelcontextprotocol.io/specification/2025-06-18/server/utilities/pagination): the
 * cursor is opaque to the client and encodes an offset into the aggregated catalogue.
 */
import { GatewayError } from '../../base/errors.js';
import { Params, decodeParams } from '../../codecs/jsonrpc.js';
import type { JsonObject } from '../../upstreams/upstream.js';


function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string | undefined, method: string): number {
  if (cursor === undefined) return 0;
  const text = Buffer.from(cursor, 'base64url').toString();
  const m = /^o:(\d{1,9})$/.exec(text);
  if (!m) throw new GatewayError('INVALID_PARAMS', `Invalid cursor for ${method}`, { method, cursor });
  return Number(m[1]);
}

/**
 * One page of `items` for list method `method`, under `field`, `pageSize` items at most, with
 * `nextCursor` when more follow. @throws GatewayError INVALID_PARAMS for a malformed cursor.
 */
export function pageOf(method: string, field: string, items: readonly JsonObject[], params: Record<string, unknown> | undefined, pageSize: number): JsonObject {
  const p = decodeParams(Params.list, params, method);
  const offset = decodeCursor(p.cursor, method);
  const size = pageSize;
  if (offset === 0 && items.length <= size) return { [field]: items };
  const slice = items.slice(offset, offset + size);
  return offset + size < items.length ? { [field]: slice, nextCursor: encodeCursor(offset + size) } : { [field]: slice };
}
