/**
 * The send side of one `/ws` connection: a JSON-RPC message goes as text, or as an MCPW frame when
 * it answers a binary request or is large and the client speaks binary; the gzip policy of MCPW
 * frames (see {@link WsOutbound.frame}); the send order kept behind a frame compressed off the
 * loop; and the hard backpressure limit (over it the connection is closed with 1013, its calls
 * cancelled). MCPW layout: https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md
 *
 * Writes are corked per loop turn: what a connection sends during one turn of the event loop
 * (e.g. the replies of the calls that arrived in one TCP read) is handed to uWS at the end of the
 * turn (`setImmediate`) inside one `cork()`, so it leaves in as few `send` system calls as uWS's
 * cork buffer allows instead of one per message
 * (https://unetworking.github.io/uWebSockets.js/generated/interfaces/WebSocket.html#cork).
 */
import { MCPW_HEADER_BYTES, McpwMethod, McpwScratch, McpwType, encodeFrame, errorFrame, gzipFrame, gzipFrameOffLoop, type McpwFrame } from '../../codecs/mcpw.js';
import { frameFromJsonRpc, type JsonRpcMessage, type McpwReplyTo } from '../../codecs/mcpw-jsonrpc.js';
import type { Logger } from '../../log/logger.js';
import type { WsConnection, WsSendResult } from '../../streams/ws.js';
import { stringifyMessage } from '../../codecs/json-text.js';

/** The send side's limits (part of the `/ws` endpoint's options). */
export interface WsOutboundOptions {
  /** Buffered outbound bytes beyond which the connection is closed with 1013. */
  readonly hardLimitBytes: number;
  /** Server-initiated messages over this size go as MCPW to binary clients, bytes. */
  readonly binaryThresholdBytes: number;
  /** MCPW payloads over this size are gzip'd for a client that has sent a gzip'd frame, bytes. */
  readonly gzipThresholdBytes: number;
  /** MCPW payloads over this size are gzip'd for every client, bytes. */
  readonly gzipLargeBytes: number;
  /** Payloads over this size are compressed off the event loop (libuv pool), smaller ones on it, bytes. */
  readonly gzipOffLoopBytes: number;
}

/** Connections with writes waiting for the end of this loop turn, in the order they first wrote. */
let corkedOutbounds: WsOutbound[] = [];
let flushScheduled = false;
/**
 * Where this turn's MCPW frames are encoded: uWS copies a frame when it is sent, so once every
 * connection's writes of the turn are handed over, the area is reused (no buffer per frame). A
 * frame kept past the turn (behind one being compressed off the loop) is copied out first.
 */
const turnScratch = new McpwScratch();

/** Hands every connection's writes of this turn to uWS (see the module comment). */
function flushCorked(): void {
  flushScheduled = false;
  const list = corkedOutbounds;
  corkedOutbounds = [];
  for (const o of list) o.flushTurn();
  // a send that wrote again (a connection closed over the limit cancelling its calls) waits for the next turn
  if (corkedOutbounds.length === 0) turnScratch.reset();
}

export class WsOutbound {
  /** The client has sent at least one binary frame. */
  binary = false;
  /** The client has sent at least one gzip'd MCPW frame (so it reads them: replies over the threshold are gzip'd too). */
  gzip = false;
  /** Outbound messages waiting behind a frame being compressed off the loop, in send order; undefined when none. */
  private queue: { data: string | Uint8Array | undefined; readonly binary: boolean }[] | undefined;
  /** Messages written this loop turn, not yet handed to uWS (parallel to {@link turnBinary}). */
  private readonly turnData: (string | Uint8Array)[] = [];
  private readonly turnBinary: boolean[] = [];

  /** `onTooSlow` runs when the connection is closed over the backpressure limit (cancel its calls). */
  constructor(
    private readonly conn: WsConnection,
    private readonly options: WsOutboundOptions,
    private readonly log: Logger,
    private readonly onTooSlow: () => void,
  ) {}

  /** Sends a JSON-RPC message: MCPW when answering a binary request (or large, to a binary client), else text. */
  message(message: JsonRpcMessage, replyTo: McpwReplyTo | undefined): boolean {
    if (this.conn.closed) return false;
    if (replyTo) return this.frame(frameFromJsonRpc(message, replyTo));
    // a stdio result's kept JSON text is copied, not serialised again (`codecs/json-text.ts`)
    const text = stringifyMessage(message);
    if (this.binary && text.length > this.options.binaryThresholdBytes) {
      return this.frame({ type: 'method' in message ? ('id' in message ? McpwType.Request : McpwType.Notification) : McpwType.Response, method: McpwMethod.Generic, requestId: 0n, payload: message });
    }
    return this.write(text, false);
  }

  /**
   * Encodes and sends one MCPW frame. gzip policy: the payload is compressed when it is over
   * `gzipThresholdBytes` and the client has sent a gzip'd frame (it speaks gzip), or when it is
   * over `gzipLargeBytes` for any client; on the loop up to `gzipOffLoopBytes` (zlib level 1, cheap),
   * above that on the libuv pool, the frame keeping its place in the connection's send order.
   */
  frame(frame: McpwFrame): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(frame, { scratch: turnScratch });
    } catch (err) {
      this.log.warn('could not encode an MCPW frame', { error: err });
      bytes = encodeFrame(errorFrame(frame.requestId, 'bad_payload', 'the reply could not be encoded as MessagePack'), { scratch: turnScratch });
    }
    const size = bytes.length - MCPW_HEADER_BYTES;
    const o = this.options;
    if (size > o.gzipLargeBytes || (this.gzip && size > o.gzipThresholdBytes)) {
      // a worker thread's socket (server.workers): compressed there, in send order
      if (this.conn.sendGzipped !== undefined && this.queue === undefined) {
        // this turn's earlier messages go first (they wait for the end of the turn otherwise)
        this.flushTurn();
        return this.sent(this.conn.sendGzipped(bytes));
      }
      if (size <= o.gzipOffLoopBytes) return this.write(gzipFrame(bytes), true);
      if (this.conn.closed) return false;
      const slot: { data: string | Uint8Array | undefined; readonly binary: boolean } = { data: undefined, binary: true };
      (this.queue ??= []).push(slot);
      // the frame outlives this turn's scratch area
      const own = Buffer.from(bytes);
      gzipFrameOffLoop(own).then(
        (gz) => {
          slot.data = gz;
          this.flush();
        },
        (err: unknown) => {
          this.log.warn('gzip of an MCPW frame failed; sending it uncompressed', { error: err });
          slot.data = own;
          this.flush();
        },
      );
      return true;
    }
    return this.write(bytes, true);
  }

  /** Writes the queued messages that are ready, in order, up to the first still being compressed. */
  private flush(): void {
    const queue = this.queue;
    if (queue === undefined) return;
    while (queue.length > 0) {
      const next = queue[0];
      if (next?.data === undefined) return;
      queue.shift();
      if (!this.send(next.data, next.binary)) {
        queue.length = 0;
        break;
      }
    }
    this.queue = undefined;
  }

  /** Sends `data` now, or after the frames being compressed ahead of it. */
  write(data: string | Uint8Array, binary: boolean): boolean {
    if (this.queue !== undefined) {
      // behind a frame still being compressed: keep the order (a frame in this turn's scratch area is copied out)
      if (this.conn.closed) return false;
      this.queue.push({ data: typeof data === 'string' ? data : Buffer.from(data), binary });
      return true;
    }
    return this.send(data, binary);
  }

  /**
   * Queues `data` for the end of this loop turn. An MCPW frame may be a view into this turn's
   * scratch area: valid until every connection's writes of the turn are handed to uWS.
   * @returns false when the connection is closed.
   */
  private send(data: string | Uint8Array, binary: boolean): boolean {
    if (this.conn.closed) return false;
    if (this.turnData.length === 0) {
      corkedOutbounds.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushCorked);
      }
    }
    this.turnData.push(data);
    this.turnBinary.push(binary);
    return true;
  }

  /**
   * Closes the connection after handing this turn's messages to uWS (an Error frame written just
   * before still reaches the client, ahead of the close frame).
   */
  close(code: number, reason: string): void {
    this.flushTurn();
    this.conn.close(code, reason);
  }

  /** Sends this turn's messages, in order, inside one uWS cork; stops at a closed connection. */
  flushTurn(): void {
    const data = this.turnData;
    const binary = this.turnBinary;
    if (data.length === 0) return;
    if (!this.conn.closed) {
      this.conn.cork(() => {
        for (let i = 0; i < data.length; i++) if (!this.sendNow(data[i] as string | Uint8Array, binary[i] === true)) break;
      });
    }
    data.length = 0;
    binary.length = 0;
  }

  private sendNow(data: string | Uint8Array, binary: boolean): boolean {
    return this.sent(this.conn.send(data, binary));
  }

  /** Applies the hard backpressure limit to one send's result; false when the connection is (now) closed. */
  private sent(r: WsSendResult): boolean {
    if (r === 'dropped' || this.conn.bufferedAmount() > this.options.hardLimitBytes) {
      this.log.warn('closing a /ws peer over the backpressure limit', { remote: this.conn.remoteAddress });
      this.onTooSlow();
      this.conn.close(1013, 'backpressure limit');
      return false;
    }
    return r !== 'closed';
  }
}
