/**
 * The client side of `/api/ws/events` (MCP Hangar WebSockets guide,
 * https://mcp-hangar.io/docs/guides/WEBSOCKETS): decoding and validating a `subscribe` message,
 * and the per-connection filter it sets. Beyond Hangar: `since` (catch-up from the store),
 * `batch_ms` / `batch_max` (sampled live mode). Bad messages become an
 * `{"type":"error","code","message"}` frame; nothing here throws.
 */
import { feedError } from './ws-feed.js';

const errorMessage = feedError;

/** Bounds of `batch_ms` and `batch_max`. */
export const BATCH_LIMITS = { minMs: 50, maxMs: 10_000, defaultMax: 50, maxMax: 1000 } as const;

export interface Filter {
  readonly eventTypes: ReadonlySet<string> | undefined;
  readonly serverIds: ReadonlySet<string> | undefined;
  /**
   * The subscriber's tenant (tenants never see each other's entities): events carrying another
   * `tenant_id` are not delivered. `undefined` (admins, auth off) sees every tenant.
   */
  readonly tenant: string | undefined;
}

/** Whether event `e` passes filter `f` (tenant, then event type, then MCP server id). */
export function matches(f: Filter, e: { event_type: string; mcp_server_id?: unknown; tenant_id?: unknown }): boolean {
  if (f.tenant !== undefined && e.tenant_id !== undefined && e.tenant_id !== f.tenant) return false;
  if (f.eventTypes && !f.eventTypes.has(e.event_type)) return false;
  if (f.serverIds && !(typeof e.mcp_server_id === 'string' && f.serverIds.has(e.mcp_server_id))) return false;
  return true;
}

function stringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** A valid `subscribe` message (an absent key: no filter on that dimension, no catch-up, not sampled). */
export interface SubscribeRequest {
  readonly types: string[] | undefined;
  readonly ids: string[] | undefined;
  /** Catch up from the store after this seq. */
  readonly since: number | undefined;
  /** Sampled live mode: ms between frames (`BATCH_LIMITS.minMs`..`maxMs`). */
  readonly batchMs: number | undefined;
  /** Sampled live mode: events kept per frame (1..`BATCH_LIMITS.maxMax`); only with `batchMs`. */
  readonly batchMax: number | undefined;
}

/**
 * Decodes one client message (`data` is valid only inside the uWS callback; it is read here and
 * not kept). Resolves `{ok: true, request}` for a valid `subscribe`, else `{ok: false, frame}`
 * with the error frame to send (codes `unsupported`, `message_too_large`, `invalid_json`,
 * `invalid_message`, `unknown_type`, `invalid_field`).
 * @param maxMessageBytes largest message accepted, bytes.
 * @param decoder a fatal UTF-8 `TextDecoder` (invalid UTF-8 is `invalid_json`).
 */
export function parseSubscribe(
  data: ArrayBuffer,
  isBinary: boolean,
  maxMessageBytes: number,
  decoder: { decode(input: ArrayBuffer): string },
): { readonly ok: true; readonly request: SubscribeRequest } | { readonly ok: false; readonly frame: string } {
  if (isBinary) return { ok: false, frame: errorMessage('unsupported', 'binary messages are not supported; send JSON text') };
  if (data.byteLength > maxMessageBytes) return { ok: false, frame: errorMessage('message_too_large', `messages may be at most ${maxMessageBytes} bytes`) };
  let msg: unknown;
  try {
    msg = JSON.parse(decoder.decode(data));
  } catch {
    return { ok: false, frame: errorMessage('invalid_json', 'message is not valid JSON (UTF-8)') };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { ok: false, frame: errorMessage('invalid_message', 'message must be a JSON object') };
  const m = msg as Record<string, unknown>;
  if (m['type'] !== 'subscribe') {
    return { ok: false, frame: errorMessage('unknown_type', `unknown message type ${JSON.stringify(m['type'] ?? null)}; expected "subscribe"`) };
  }
  const types = m['event_types'];
  const ids = m['mcp_server_ids'];
  const since = m['since'];
  if (types !== undefined && !stringArray(types)) return { ok: false, frame: errorMessage('invalid_field', 'event_types must be an array of strings') };
  if (ids !== undefined && !stringArray(ids)) return { ok: false, frame: errorMessage('invalid_field', 'mcp_server_ids must be an array of strings') };
  if (since !== undefined && !(typeof since === 'number' && Number.isSafeInteger(since) && since >= 0)) {
    return { ok: false, frame: errorMessage('invalid_field', 'since must be a non-negative integer (an event seq)') };
  }
  const batchMs = m['batch_ms'];
  const batchMax = m['batch_max'];
  if (batchMs !== undefined && !(typeof batchMs === 'number' && Number.isInteger(batchMs) && batchMs >= BATCH_LIMITS.minMs && batchMs <= BATCH_LIMITS.maxMs)) {
    return { ok: false, frame: errorMessage('invalid_field', `batch_ms must be an integer from ${BATCH_LIMITS.minMs} to ${BATCH_LIMITS.maxMs} (milliseconds between frames)`) };
  }
  if (batchMax !== undefined && (batchMs === undefined || !(typeof batchMax === 'number' && Number.isInteger(batchMax) && batchMax >= 1 && batchMax <= BATCH_LIMITS.maxMax))) {
    return { ok: false, frame: errorMessage('invalid_field', `batch_max must be an integer from 1 to ${BATCH_LIMITS.maxMax}, and needs batch_ms`) };
  }
  return {
    ok: true,
    request: {
      types,
      ids,
      since: since as number | undefined,
      batchMs: batchMs as number | undefined,
      batchMax: typeof batchMax === 'number' ? batchMax : undefined,
    },
  };
}
