/**
 * The worker thread's half of `/ws` (agent WebSockets: MCP JSON-RPC in text frames, MCPW binary
 * frames) in `server.workers`: every frame of an agent socket is decoded and validated here, on the
 * thread that holds the socket, with the same codecs and the same answers as the owner's endpoint
 * (`handlers/mcp/ws.ts`). Only a valid JSON-RPC message goes on to the owner, which serves it in
 * the socket's MCP session (sessions live on the owner).
 *
 * Answered here, never sent to the owner:
 * - text: a frame over the payload limit (-32600 `BODY_TOO_LARGE`), not UTF-8 JSON (-32700),
 *   nested too deep (`nesting_too_deep`), a batch (-32600), not a JSON-RPC message (-32600);
 * - binary: every MCPW decode error (an Error frame with the code; closed with 1002 when the stream
 *   is out of sync), a frame that is not a JSON-RPC message (-32600 in an Error frame), Ping (Pong
 *   with its id), Pong (nothing), Close (closed with 1000).
 *
 * What the owner gets is the cheapest form for it to read, not the decoded object: a
 * `MessagePort` structured clone of a decoded message costs the receiving thread more (≈ 6 µs for
 * a `tools/call`) than decoding the frame again (≈ 0.1 µs for a small MCPW frame, one
 * `JSON.parse` for text), and a string is the cheapest thing to receive (≈ 0.8 µs against ≈ 2 µs
 * for a copied and ≈ 3 µs for a transferred small `ArrayBuffer`). So a text frame goes as its
 * text (the owner only parses it), an MCPW frame as its own bytes, a gzip'd MCPW frame inflated
 * (re-encoded without compression: the owner never inflates).
 *
 * MCPW layout: https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md;
 * JSON-RPC 2.0 errors: https://www.jsonrpc.org/specification#error_object
 */
import { GatewayError } from '../base/errors.js';
import { jsonDepthExceeded, nestingTooDeep, requestIdOf } from '../codecs/depth.js';
import { classify, type JsonRpcResponse } from '../codecs/jsonrpc.js';
import { McpwFlags, McpwHeaderFields, McpwType, decodeFramePayload, decodeHeader, encodeFrame, errorFrameFor, pongFrame, readHeader, type McpwDecodeOptions } from '../codecs/mcpw.js';
import type { McpwDecodeError } from '../codecs/mcpw-errors.js';
import { frameFromJsonRpc, frameToJsonRpc } from '../codecs/mcpw-jsonrpc.js';

/** What to do with one frame of an agent socket. */
export type WsFrameOutcome =
  /** A valid JSON-RPC message in a text frame: send the owner its text. */
  | { readonly kind: 'text'; readonly text: string }
  /** A valid JSON-RPC message in an MCPW frame: send the owner the frame as it is. */
  | { readonly kind: 'frame' }
  /** A valid JSON-RPC message in a gzip'd MCPW frame: send the owner this frame (the same, uncompressed). */
  | { readonly kind: 'inflated'; readonly frame: Uint8Array }
  /** Answer on the socket (then close it with `close`, when set). */
  | { readonly kind: 'send'; readonly data: string | Uint8Array; readonly binary: boolean; readonly close?: { readonly code: number; readonly reason: string } }
  | { readonly kind: 'close'; readonly code: number; readonly reason: string }
  /** Nothing to do (an MCPW Pong). */
  | { readonly kind: 'none' };

const NONE: WsFrameOutcome = { kind: 'none' };
const FRAME: WsFrameOutcome = { kind: 'frame' };
const CLOSE_FRAME: WsFrameOutcome = { kind: 'close', code: 1000, reason: 'close frame' };

function textError(id: string | number | null, error: { code: number; message: string; data?: unknown }): WsFrameOutcome {
  return { kind: 'send', data: JSON.stringify({ jsonrpc: '2.0', id, error }), binary: false };
}

function invalidRequest(reason: string): { code: number; message: string; data?: unknown } {
  return new GatewayError('INVALID_REQUEST', `Invalid Request: ${reason}`).toJsonRpc();
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
    let text: string;
    let value: unknown;
    try {
      text = this.#utf8.decode(data);
      value = JSON.parse(text);
    } catch {
      return textError(null, { code: -32700, message: 'Parse error: text frame is not valid JSON (UTF-8)' });
    }
    const deep = jsonDepthExceeded(new Uint8Array(data));
    if (deep >= 0) return textError(requestIdOf(value), nestingTooDeep('text frame', deep).toJsonRpc());
    if (Array.isArray(value)) return textError(null, new GatewayError('INVALID_REQUEST', 'Invalid Request: batches are not supported on /ws').toJsonRpc());
    const c = classify(value);
    if (c.kind === 'invalid') return textError(c.id, invalidRequest(c.reason));
    return { kind: 'text', text };
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
    const decoded = decodeFramePayload(data, head, this.#options);
    if (!decoded.ok) return frameError(decoded.error);
    const frame = decoded.frame;
    const c = frameToJsonRpc(frame);
    if (c.kind === 'control') return NONE;
    if (c.kind === 'invalid') {
      const reply: JsonRpcResponse = { jsonrpc: '2.0', id: c.id as string, error: invalidRequest(c.reason) };
      return { kind: 'send', data: encodeFrame(frameFromJsonRpc(reply, { method: frame.method, requestId: frame.requestId })), binary: true };
    }
    if ((frame.flags & McpwFlags.Gzip) === 0) return FRAME;
    try {
      return { kind: 'inflated', frame: encodeFrame({ type: frame.type, method: frame.method, requestId: frame.requestId, payload: frame.payload }) };
    } catch {
      // a value msgpackr decodes but does not pack again: the owner inflates the frame itself
      return FRAME;
    }
  }
}
