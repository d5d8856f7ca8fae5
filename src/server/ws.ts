/**
 * Adapter from uWS WebSockets to the handler-side {@link WsEndpoint}: one `WsConnection` object
 * per socket (kept as the socket's user data), send results translated, and every callback guarded
 * so a handler bug closes that socket (1011), never the process.
 */
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { Logger } from '../log/logger.js';
import type { WsConnection, WsEndpoint, WsEndpointOptions, WsSendResult } from '../streams/ws.js';

interface UserData {
  conn?: UwsConnection;
}

class UwsConnection implements WsConnection {
  closed = false;
  readonly remoteAddress: string;
  constructor(
    private readonly ws: WebSocket<UserData>,
    readonly endpoint: string,
  ) {
    this.remoteAddress = Buffer.from(ws.getRemoteAddressAsText()).toString();
  }

  send(message: string | Uint8Array, isBinary = false): WsSendResult {
    if (this.closed) return 'closed';
    const r = this.ws.send(message, isBinary);
    return r === 1 ? 'ok' : r === 0 ? 'backpressure' : 'dropped';
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  close(code: number, reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }

  ping(): void {
    if (!this.closed) this.ws.ping();
  }
}

/** Serves `endpoint` at `path`; returns the open connections (for pings and shutdown). */
export function attachWebSocket(app: TemplatedApp, path: string, endpoint: WsEndpoint, options: WsEndpointOptions, log: Logger): Set<WsConnection> {
  const open = new Set<WsConnection>();
  const guard = (conn: WsConnection | undefined, what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      log.error('websocket handler failed', { path, what, error: err });
      conn?.close(1011, 'internal error');
    }
  };
  app.ws<UserData>(path, {
    maxPayloadLength: options.maxPayloadLength,
    idleTimeout: options.idleTimeoutSeconds,
    maxBackpressure: options.maxBackpressure,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      const offered = req.getHeader('sec-websocket-protocol');
      const chosen = offered
        .split(',')
        .map((p) => p.trim())
        .find((p) => options.protocols?.includes(p));
      res.upgrade<UserData>({}, req.getHeader('sec-websocket-key'), chosen ?? '', req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      const conn = new UwsConnection(ws, path);
      ws.getUserData().conn = conn;
      open.add(conn);
      guard(conn, 'open', () => endpoint.onOpen(conn));
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().conn;
      if (conn) guard(conn, 'message', () => endpoint.onMessage(conn, message, isBinary));
    },
    drain: (ws) => {
      const conn = ws.getUserData().conn;
      if (conn) guard(conn, 'drain', () => endpoint.onDrain(conn));
    },
    close: (ws, code) => {
      const conn = ws.getUserData().conn;
      if (!conn) return;
      conn.closed = true;
      open.delete(conn);
      guard(undefined, 'close', () => endpoint.onClose(conn, code));
    },
  });
  return open;
}
