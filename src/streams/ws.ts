/**
 * WebSocket endpoints as handlers see them: a {@link WsConnection} to send on and a
 * {@link WsEndpoint} receiving the connection's lifecycle. The uWS adapter in `src/server/ws.ts`
 * implements these; handlers never touch uWS.
 */
import type { RequestAuth } from '../base/access.js';
import type { GatewayError } from '../base/errors.js';

/** Result of a send, as uWS reports it: buffered, buffered past the backpressure mark, or dropped. */
export type WsSendResult = 'ok' | 'backpressure' | 'dropped' | 'closed';

export interface WsConnection {
  /** Endpoint path, e.g. `/api/ws/events`. */
  readonly endpoint: string;
  /** Remote address as text. */
  readonly remoteAddress: string;
  send(message: string | Uint8Array, isBinary?: boolean): WsSendResult;
  /**
   * Sends an MCPW frame gzip'd (flag bit0), compressed by the thread that holds the socket, in
   * send order; only on a worker thread's socket of `server.workers` (the owner's thread does not
   * compress).
   */
  readonly sendGzipped?: ((frame: Uint8Array) => WsSendResult) | undefined;
  /** Bytes queued in the socket and not yet written, bytes. */
  bufferedAmount(): number;
  /** Closes with a code (1000 normal, 1008 policy, 1011 error, 1013 try again later) and reason. */
  close(code: number, reason?: string): void;
  /** Sends a WebSocket ping. */
  ping(): void;
  /**
   * Runs `fn` with the socket corked: what it sends leaves in one write (uWS `cork`,
   * https://unetworking.github.io/uWebSockets.js/generated/interfaces/WebSocket.html#cork).
   */
  cork(fn: () => void): void;
  readonly closed: boolean;
  /**
   * The caller and what it may use now: admitted at the upgrade and kept current by
   * {@link authorize} (a virtual key's changed tool set shows here); `undefined` when the server
   * has no access gate.
   */
  readonly auth: RequestAuth | undefined;
  /** The upgrade request's `x-tributary-tool-mode` header (`''` when absent). */
  readonly toolModeHeader?: string;
  /**
   * Re-checks the connection's credential against its current state (revocation, expiry, a
   * virtual key's tool set) at `nowMs` (epoch ms). Cheap while nothing changed. When the
   * credential is no longer valid the socket is closed with 4401 and the reason
   * (`revoked_key: …`) and `false` is returned; nothing may be sent on it after that.
   */
  authorize(nowMs: number): boolean;
}

/** Close code of a socket whose credential was revoked or expired while it was open. */
export const WS_CLOSE_CREDENTIAL_ENDED = 4401;

export interface WsEndpoint {
  /** A connection opened. */
  readonly onOpen: (conn: WsConnection) => void;
  /**
   * A message. `data` is valid only during this call (uWS reuses the memory): copy what you keep.
   */
  readonly onMessage: (conn: WsConnection, data: ArrayBuffer, isBinary: boolean) => void;
  /** The socket's buffer drained below the backpressure mark: send more. */
  readonly onDrain: (conn: WsConnection) => void;
  readonly onClose: (conn: WsConnection, code: number) => void;
  /**
   * A message refused before it reached {@link onMessage} (over the caller's rate limit): answer
   * with this endpoint's own error frame. Without it the server sends a JSON
   * `{"type":"error","error","code","details"}` text frame.
   */
  readonly onRefused?: (conn: WsConnection, data: ArrayBuffer, isBinary: boolean, error: GatewayError) => void;
  /**
   * Called for an admitted upgrade before it is completed: when it returns a promise, the upgrade
   * (and so the client's `open`) waits for it to settle (e.g. until a feed reads from a known
   * position). Should not reject; it is not a place to refuse a connection.
   */
  readonly beforeOpen?: () => Promise<void> | undefined;
  /**
   * A message a worker thread of `server.workers` decoded and found valid (see
   * `server/worker-ws.ts`): a text frame's text (UTF-8 JSON of one JSON-RPC message, within the
   * size and depth limits), or a binary frame — `inflated`: it came gzip'd (MCPW flag bit0) and
   * `data` is the same frame uncompressed (the client reads gzip'd frames). Handled as
   * {@link onMessage} would; endpoints without it get every message whole.
   */
  readonly onChecked?: (conn: WsConnection, data: string | ArrayBuffer, inflated: boolean) => void;
}

export interface WsEndpointOptions {
  /** Largest incoming message uWS accepts, bytes (bigger ones close the socket). */
  readonly maxPayloadLength: number;
  /** Close a peer silent this long, seconds (uWS: 0 or ≥ 8). */
  readonly idleTimeoutSeconds: number;
  /** Buffered bytes beyond which uWS drops sends, bytes. */
  readonly maxBackpressure: number;
  /** Subprotocols this endpoint speaks (`Sec-WebSocket-Protocol`); the first the client offers is chosen. */
  readonly protocols?: readonly string[];
}
