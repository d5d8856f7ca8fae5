/**
 * The MCPW request id rule: how a JSON-RPC id (https://www.jsonrpc.org/specification#request_object,
 * a string or a number) maps onto the u64 request id of the MCPW header (the layout in
 * `src/codecs/mcpw.ts`) and back.
 */

/** Largest request id: 2^64 − 1. */
export const MCPW_MAX_REQUEST_ID = 0xffff_ffff_ffff_ffffn;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const BIG_DECIMAL = /^[1-9][0-9]{15,19}$/;

/**
 * The id rule, JSON-RPC → MCPW: a JSON-RPC id has a u64 form when it is a safe integer ≥ 0 (not
 * −0), or a string holding the canonical decimal of an integer in 2^53 … 2^64 − 1 (the form
 * {@link u64ToJsonRpcId} gives ids that do not fit a JS number). Every other id (other strings,
 * negative, fractional or unsafe numbers, null) has none: such a message travels as method 0000
 * (generic) with the id inside the payload, and header id 0 (or the request's header id, for a
 * reply). The two functions are inverse bijections between u64 and the ids that have a u64 form.
 *
 * @returns the u64 request id, or `undefined` when `id` has no u64 form.
 */
export function jsonRpcIdToU64(id: unknown): bigint | undefined {
  if (typeof id === 'number') return Number.isSafeInteger(id) && id >= 0 && !Object.is(id, -0) ? BigInt(id) : undefined;
  if (typeof id === 'string' && BIG_DECIMAL.test(id)) {
    const value = BigInt(id);
    return value > MAX_SAFE && value <= MCPW_MAX_REQUEST_ID ? value : undefined;
  }
  return undefined;
}

/**
 * The id rule, MCPW → JSON-RPC: ids up to 2^53 − 1 become numbers, larger ones the decimal
 * string (JSON-RPC ids are strings or numbers; a number would lose precision). Inverse of
 * {@link jsonRpcIdToU64}.
 */
export function u64ToJsonRpcId(requestId: bigint): number | string {
  return requestId <= MAX_SAFE ? Number(requestId) : requestId.toString();
}
