/**
 * A minimal HTTP/1.1 keep-alive client over one `net.Socket` for `npm run bench:ws`: one request
 * in flight per connection, responses framed by `Content-Length` (what the gateway's uWS `end()`
 * writes). Much cheaper per request than `node:http` or `fetch`, so the Node load generator can
 * drive `/mcp` at the same concurrency as `/ws` without becoming the bottleneck, and it sees the
 * exact bytes on the wire.
 */
import { connect, type Socket } from 'node:net';

export interface RawHttpResponse {
  status: number;
  /** Bytes of the whole response on the wire: status line, headers and body. */
  bytes: number;
  /** The body; a view valid only inside the callback. */
  body: Buffer;
}

const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const TRANSFER_ENCODING = /\r\ntransfer-encoding:/i;

export class RawHttpConnection {
  private pending: Buffer | null = null;
  private closing = false;

  private constructor(
    private readonly socket: Socket,
    private readonly onResponse: (r: RawHttpResponse) => void,
    private readonly onError: (err: Error) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => onError(err));
    socket.on('close', () => {
      if (!this.closing) onError(new Error('connection closed by the server'));
    });
  }

  /** Opens a connection (TCP_NODELAY, as wrk and `ws` use). */
  static open(host: string, port: number, onResponse: (r: RawHttpResponse) => void, onError: (err: Error) => void): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawHttpConnection(socket, onResponse, onError));
      });
      socket.once('error', reject);
    });
  }

  /** Writes one complete request (see {@link postRequest}). */
  send(request: string): void {
    this.socket.write(request, 'latin1');
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      const headerEnd = data.indexOf('\r\n\r\n');
      if (headerEnd < 0) break;
      const head = data.toString('latin1', 0, headerEnd);
      const m = CONTENT_LENGTH.exec(head);
      if (m === null || TRANSFER_ENCODING.test(head)) {
        this.onError(new Error(`response not framed by Content-Length: ${head.slice(0, 200)}`));
        this.close();
        return;
      }
      const total = headerEnd + 4 + Number(m[1]);
      if (data.length < total) break;
      this.onResponse({ status: Number(head.slice(9, 12)), bytes: total, body: data.subarray(headerEnd + 4, total) });
      data = data.subarray(total);
    }
    this.pending = data.length > 0 ? data : null;
  }
}

/**
 * The bytes of `POST /mcp` with the headers an MCP Streamable HTTP client sends in an established
 * session (as bench/mcp-call.lua does). `body` must be ASCII (the bench payloads are), so its
 * length in characters is its length in bytes; the request is written as latin1.
 */
export function postRequest(hostPort: string, session: string, body: string): string {
  return (
    `POST /mcp HTTP/1.1\r\nHost: ${hostPort}\r\nContent-Type: application/json\r\n` +
    `Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n` +
    `Mcp-Session-Id: ${session}\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  );
}
