/**
 * The worker thread's half of `/ws` (agent WebSockets: MCP JSON-RPC in text frames, MCPW binary
 * frames) in `server.workers`: every frame of an agent socket is decoded and validated here, on the
 * thread that holds the socket, with the same codecs and the same answers as the owner's endpoint
 * (`handlers/mcp/ws.ts`); the owner gets only the decoded JSON-RPC message ({@link WsDecodedMessage},
 * one `ws-rpc` message) and serves it in the socket's MCP session as its own.
 *
 * Answered here, never sent to the owner:
 * - text: a frame over the payload limit (-32600 `BODY_TOO_LARGE`), not UTF-8 JSON (-32700),
 *   nested too deep (`nesting_too_deep`), a batch (-32600);
 * - binary: every MCPW decode error (an Error frame with the code; closed with 1002 when the stream
 *   is out of sync), Ping (Pong with its id), Pong (nothing), Close (closed with 1000).
 *
 * MCPW layout: https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md;
 * JSON-RPC 2.0 errors: https://www.jsonrpc.org/specification#error_object
 */
import { GatewayError } from '../base/errors.js';
import { jsonDepthExceeded, nestingTooDeep, requestIdOf } from '../codecs/depth.js';
import { classify } from '../codecs/jsonrpc.js';
import { McpwFlags, McpwHeaderFields, McpwType, decodeFramePayload, decodeHeader, encodeFrame, errorFrameFor, pongFrame, readHeader, type McpwDecodeOptions } from '../codecs/mcpw.js';
import type { McpwDecodeError } from '../codecs/mcpw-errors.js';
import { frameToJsonRpc } from '../codecs/mcpw-jsonrpc.js';
import type { WsDecodedMessage } from '../streams/ws.js';

/** What to do with one frame of an agent socket. */
export type WsFrameOutcome =
  /** Hand the decoded message to the owner. */
  | { readonly kind: 'message'; readonly message: WsDecodedMessage }
  /** Answer on the socket (then close it with `close`, when set). */
  | { readonly kind: 'send'; readonly data: string | Uint8Array; readonly binary: boolean; readonly close?: { readonly code: number; readonly reason: string } }
  | { readonly kind: 'close'; readonly code: number; readonly reason: string }
  /** Nothing to do (an MCPW Pong). */
  | { readonly kind: 'none' };

const NONE: WsFrameOutcome = { kind: 'none' };
const CLOSE_FRAME: WsFrameOutcome = { kind: 'close', code: 1000, reason: 'close frame' };

function textError(id: string | number | null, error: { code: number; message: string; data?: unknown }): WsFrameOutcome {
  return { kind: 'send', data: JSON.stringify({ jsonrpc: '2.0', id, error }), binary: false };
}

function frameError(error: McpwDecodeError): WsFrameOutcome {
  const data = encodeFrame(errorFrameFor(error));
  return error.recoverable ? { kind: 'send', data, binary: true } : { kind: 'send', data, binary: true, close: { code: 1002, reason: error.code } };
}

/**
 * Decodes the frames of agent sockets (one per worker thread: decoding is synchronous and keeps
 * nothing per socket).
 */
export class WorkerWsDecoder {
  readonly #header = new McpwHeaderFields();
  readonly #options: McpwDecodeOptions;
  readonly #utf8 = new TextDecoder('utf-8', { fatal: true });

  /** @param maxPayloadBytes the largest text frame and MCPW payload (wire and inflated) accepted, bytes. */
  constructor(private readonly maxPayloadBytes: number) {
    // bin values are copied out of the frame: the message outlives uWS' callback (it is posted)
    this.#options = { maxPayloadBytes, maxInflatedBytes: maxPayloadBytes, copyBinary: true };
  }

  /**
   * One frame, as uWS hands it to the `message` callback (`data` valid only during the call).
   * Never throws, whatever the bytes.
   */
  decode(data: ArrayBuffer, isBinary: boolean): WsFrameOutcome {
    return isBinary ? this.#binary(data) : this.#text(data);
  }

  #text(data: ArrayBuffer): WsFrameOutcome {
    const max = this.maxPayloadBytes;
    if (data.byteLength > max) {
      return textError(null, new GatewayError('BODY_TOO_LARGE', `Invalid Request: text frame of ${data.byteLength} bytes is over the limit of ${max} bytes`, { limit_bytes: max }).toJsonRpc());
    }
    let value: unknown;
    try {
      value = JSON.parse(this.#utf8.decode(data));
    } catch {
      return textError(null, { code: -32700, message: 'Parse error: text frame is not valid JSON (UTF-8)' });
    }
    const deep = jsonDepthExceeded(new Uint8Array(data));
    if (deep >= 0) return textError(requestIdOf(value), nestingTooDeep('text frame', deep).toJsonRpc());
    if (Array.isArray(value)) return textError(null, new GatewayError('INVALID_REQUEST', 'Invalid Request: batches are not supported on /ws').toJsonRpc());
    return { kind: 'message', message: { message: classify(value), replyTo: undefined, binary: false, gzip: false } };
  }

  #binary(data: ArrayBuffer): WsFrameOutcome {
    const head = this.#header;
    if (readHeader(data, head, this.maxPayloadBytes) !== undefined) {
      const bad = decodeHeader(data, this.#options);
      return bad.ok ? NONE : frameError(bad.error);
    }
    if (head.type === McpwType.Ping) return { kind: 'send', data: encodeFrame(pongFrame(head.requestId)), binary: true };
    if (head.type === McpwType.Close) return CLOSE_FRAME;
    if (head.type === McpwType.Pong) return NONE;
    const gzip = (head.flags & McpwFlags.Gzip) !== 0;
    const decoded = decodeFramePayload(data, head, this.#options);
    if (!decoded.ok) return frameError(decoded.error);
    const frame = decoded.frame;
    const classified = frameToJsonRpc(frame);
    if (classified.kind === 'control') return NONE;
    return { kind: 'message', message: { message: classified, replyTo: { method: frame.method, requestId: frame.requestId }, binary: true, gzip } };
  }
}
