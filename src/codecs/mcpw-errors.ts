/**
 * The error registry of the MCPW binary frame codec (DESIGN.md §5 "Bad input"):
 * one stable code per way a frame can be bad, the JSON-RPC error code it is reported with (from
 * the gateway registry in `./errors.ts`), and whether the WebSocket connection stays usable.
 *
 * The recoverable rule: a WebSocket message carries exactly one MCPW frame, and the WebSocket
 * layer, not the MCPW header, delimits messages — so after any bad frame the next message still
 * starts at a frame boundary and the stream is in sync. An error is therefore recoverable
 * (`true`: answer with an Error frame, keep the connection) unless it shows that the two ends
 * disagree about something fixed for the connection's lifetime, so that every later frame would
 * fail the same way:
 *
 * - `bad_version`: the peer speaks another MCPW version (there is no version negotiation);
 * - `encrypted_without_key`: the peer encrypts and this endpoint has no key;
 * - `decrypt_failed`: the peer's key is not ours (or frames are being tampered with).
 *
 * For those three `recoverable` is `false`: send the Error frame, then close the connection
 * (1002 protocol error for `bad_version`, 1008 policy violation for the key errors). Over a byte
 * stream with no message framing, `truncated_header` and `length_mismatch` would lose sync and be
 * fatal; on `/ws` they are not.
 */
import { ERRORS } from '../base/errors.js';

/** Every way an MCPW frame can fail to decode; stable, snake_case, sent on the wire in Error frames. */
export type McpwErrorCode =
  | 'bad_magic'
  | 'bad_version'
  | 'truncated_header'
  | 'length_mismatch'
  | 'reserved_bits'
  | 'reserved_bytes'
  | 'unknown_type'
  | 'unknown_method'
  | 'encrypted_without_key'
  | 'decrypt_failed'
  | 'bad_payload'
  | 'payload_too_large'
  | 'gzip_bomb'
  | 'gzip_error'
  | 'nesting_too_deep'
  | 'unsafe_integer';

/** One registry entry: JSON-RPC error code, recoverability (see the module comment) and a one-line summary. */
export interface McpwErrorSpec {
  /** JSON-RPC 2.0 error code the Error frame's payload carries (from `ERRORS` in `./errors.ts`). */
  readonly rpc: number;
  /** Whether the connection stays usable after this error (module comment: the recoverable rule). */
  readonly recoverable: boolean;
  /** What the code means, for docs and logs; the decoder's `message` adds the concrete values. */
  readonly summary: string;
}

/** The MCPW error registry: one entry per {@link McpwErrorCode}. */
export const MCPW_ERRORS: { readonly [C in McpwErrorCode]: McpwErrorSpec } = {
  bad_magic: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: true, summary: 'frame does not start with the magic "MCPW" (0x4D435057)' },
  bad_version: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: false, summary: 'unsupported MCPW version (only 0x01)' },
  truncated_header: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: true, summary: 'frame shorter than the 24-byte header' },
  length_mismatch: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: true, summary: 'declared payload length differs from the bytes after the header' },
  reserved_bits: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: true, summary: 'reserved flag bits 2-7 are set' },
  reserved_bytes: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: true, summary: 'reserved header bytes 9-11 are not zero' },
  unknown_type: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: true, summary: 'frame type is not 0x01-0x07' },
  unknown_method: { rpc: ERRORS.METHOD_NOT_FOUND.rpc, recoverable: true, summary: 'method code is not 0x0000-0x0006' },
  encrypted_without_key: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: false, summary: 'encrypted flag set but no key is configured' },
  decrypt_failed: { rpc: ERRORS.INVALID_REQUEST.rpc, recoverable: false, summary: 'AES-256-GCM authentication failed (wrong key, or a tampered frame)' },
  bad_payload: { rpc: ERRORS.PARSE_ERROR.rpc, recoverable: true, summary: 'payload is not exactly one MessagePack value' },
  payload_too_large: { rpc: ERRORS.BODY_TOO_LARGE.rpc, recoverable: true, summary: 'declared payload length over the configured limit' },
  gzip_bomb: { rpc: ERRORS.BODY_TOO_LARGE.rpc, recoverable: true, summary: 'gzip payload inflates past the configured limit' },
  gzip_error: { rpc: ERRORS.PARSE_ERROR.rpc, recoverable: true, summary: 'gzip flag set but the payload is not valid gzip' },
  nesting_too_deep: { rpc: ERRORS.NESTING_TOO_DEEP.rpc, recoverable: true, summary: 'payload maps/arrays nested deeper than the limit (128 levels, counted from the JSON-RPC message)' },
  unsafe_integer: { rpc: ERRORS.UNSAFE_INTEGER.rpc, recoverable: true, summary: 'a 64-bit integer outside ±(2^53 − 1), which has no exact JSON number' },
};

/** Every {@link McpwErrorCode}, in registry order (for tests and docs). */
export const MCPW_ERROR_CODES = Object.keys(MCPW_ERRORS) as readonly McpwErrorCode[];

/**
 * Why a frame was rejected: the `error` side of `decodeFrame`'s result.
 * `requestId` is present when the header was complete and carried the right magic, so the Error
 * frame can echo it; `recoverable` is `MCPW_ERRORS[code].recoverable`.
 */
export interface McpwDecodeError {
  readonly code: McpwErrorCode;
  /** Names the problem with its concrete values, e.g. "declared payload length 10 bytes, frame carries 9". */
  readonly message: string;
  readonly requestId?: bigint;
  readonly recoverable: boolean;
}

/** Builds a {@link McpwDecodeError} with the registry's `recoverable` flag. */
export function mcpwError(code: McpwErrorCode, message: string, requestId?: bigint): McpwDecodeError {
  const recoverable = MCPW_ERRORS[code].recoverable;
  return requestId === undefined ? { code, message, recoverable } : { code, message, requestId, recoverable };
}
