/**
 * Binary values on `/ws` ("base64 in JSON frames, raw bytes in MCPW payloads"): strict
 * base64 decoding of what JSON peers send, and the per-peer wire form of what the gateway sends.
 */
import { GatewayError } from '../../base/errors.js';
import type { WsPeer } from '../../streams/ws-methods.js';
import type { BytesEncoding, WireBytes } from './params.js';

/** Padded base64, RFC 4648 §4 alphabet (`+`, `/`), no whitespace. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Bytes received, with the base64 text they came as (reused when relaying to JSON peers). */
export interface ReceivedBytes {
  readonly bytes: Uint8Array;
  /** The base64 text of a JSON peer; `undefined` when the bytes came raw (MCPW). */
  readonly base64: string | undefined;
}

/**
 * The bytes of a wire value: raw bytes as they are, base64 text decoded strictly (padded,
 * standard alphabet).
 * @param field the param's name, for the error message.
 * @throws GatewayError INVALID_PARAMS when the text is not valid base64.
 */
export function receiveBytes(value: WireBytes, field: string): ReceivedBytes {
  if (typeof value !== 'string') return { bytes: value, base64: undefined };
  if (!BASE64.test(value)) {
    throw new GatewayError('INVALID_PARAMS', `Invalid params: ${field} is not valid base64 (RFC 4648 §4 alphabet, padded with "=", no whitespace)`, {
      field,
    });
  }
  const buf = Buffer.from(value, 'base64');
  return { bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), base64: value };
}

/** The base64 text of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * How `peer` wants binary values in replies: `encoding` when the request names one, else raw
 * bytes for MCPW peers ({@link WsPeer.binary}) and base64 for JSON peers. Raw bytes in the reply
 * to a text-frame request are turned into base64 by the `/ws` endpoint (JSON cannot carry bytes),
 * so a peer mixing frame kinds gets text it can decode either way.
 */
export function replyEncoding(peer: WsPeer, encoding: BytesEncoding | undefined): BytesEncoding {
  return encoding ?? (peer.binary ? 'bytes' : 'base64');
}

/** `bytes` in the form `encoding` asks for. */
export function encodeBytes(bytes: Uint8Array, encoding: BytesEncoding): Uint8Array | string {
  return encoding === 'bytes' ? bytes : toBase64(bytes);
}
