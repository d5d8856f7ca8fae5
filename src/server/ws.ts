/**
 * Adapter from uWS WebSockets to the handler-side {@link WsEndpoint}: one `WsConnection` object
 * per socket (kept as the socket's user data), send results translated, and every callback guarded
 * so a handler bug closes that socket (1011), never the process.
 */
import type { HttpRequest, HttpResponse, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import type { Logger } from '../log/logger.js';
import { WS_CLOSE_CREDENTIAL_ENDED, type WsConnection, type WsEndpoint, type WsEndpointOptions, type WsSendResult } from '../streams/ws.js';
import type { RequestAuth } from '../base/access.js';
import type { GatewayError } from '../base/errors.js';
import type { HttpInput } from '../base/http.js';
import type { AccessCheck, AccessDecision, RouteSpec } from '../base/routes.js';
import { readHeaders } from './app-headers.js';

interface UserData {
  conn?: UwsConnection;
  auth?: RequestAuth;
  /** The upgrade's `x-tributary-tool-mode` header, when sent. */
  toolMode?: string;
}

/** Access control of one WebSocket path: the upgrade check and the per-message limit. */
export interface WsAccess {
  readonly check: AccessCheck;
  /** Counts one message of an admitted connection; resolves the error when it is refused. */
  readonly admitMessage: (auth: RequestAuth) => Promise<GatewayError | undefined>;
  /**
   * Re-checks a connection's credential at `nowMs`: the same `auth` while nothing changed, a new
   * one when what it may use changed, or the error when the credential ended (revoked, expired).
   */
  readonly revalidate: (auth: RequestAuth, nowMs: number) => RequestAuth | GatewayError;
}

/**
 * What a worker thread's validated messages enter by besides uWS' callbacks (`server.workers`,
 * see `worker-pool.ts`): a message the worker decoded and found valid (a text frame's text, or a
 * binary frame, `inflated` when it came gzip'd) passes the same per-message credential check and
 * rate limit as one `message` receives, then goes to the endpoint's `onChecked` (`onRefused` when
 * refused).
 */
export interface WsCheckedEntry<U = unknown> {
  checked(ws: WebSocket<U>, data: string | ArrayBuffer, inflated: boolean): void;
}

function bytesOf(data: string | ArrayBuffer): ArrayBuffer {
  if (typeof data !== 'string') return data;
  const b = Buffer.from(data);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** WebSocket close reasons are at most 123 bytes (RFC 6455 §5.5): cut on a character boundary. */
function closeReason(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

/** uWS' send result: 1 sent, 0 buffered (backpressure), 2 dropped. */
function sendResult(r: number): WsSendResult {
  return r === 1 ? 'ok' : r === 0 ? 'backpressure' : 'dropped';
}

class UwsConnection implements WsConnection {
  closed = false;
  readonly remoteAddress: string;
  auth: RequestAuth | undefined;
  readonly toolModeHeader: string;
  readonly sendGzipped: ((frame: Uint8Array) => WsSendResult) | undefined;
  constructor(
    private readonly ws: WebSocket<UserData>,
    readonly endpoint: string,
    private readonly revalidate: WsAccess['revalidate'] | undefined,
  ) {
    // a worker thread's socket (server.workers, `RemoteSocket`) compresses MCPW frames on that thread
    const remote = (ws as unknown as { sendGzipped?: (frame: Uint8Array) => number }).sendGzipped?.bind(ws);
    this.sendGzipped = remote && ((frame) => (this.closed ? 'closed' : sendResult(remote(frame))));
    this.remoteAddress = Buffer.from(ws.getRemoteAddressAsText()).toString();
    this.auth = ws.getUserData().auth;
    this.toolModeHeader = ws.getUserData().toolMode ?? '';
  }

  authorize(nowMs: number): boolean {
    if (this.closed) return false;
    const auth = this.auth;
    if (auth === undefined || this.revalidate === undefined) return true;
    const current = this.revalidate(auth, nowMs);
    if (current === auth) return true;
    if ('principal' in current) {
      this.auth = current;
      return true;
    }
    const details = current.details as { reason?: unknown } | undefined;
    this.close(WS_CLOSE_CREDENTIAL_ENDED, closeReason(`${typeof details?.reason === 'string' ? details.reason : current.code}: ${current.message}`));
    return false;
  }

  send(message: string | Uint8Array, isBinary = false): WsSendResult {
    if (this.closed) return 'closed';
    return sendResult(this.ws.send(message, isBinary));
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

  cork(fn: () => void): void {
    if (this.closed) fn();
    else this.ws.cork(fn);
  }
}

/** The status line and body of a refused upgrade. */
function refuseUpgrade(res: HttpResponse, reject: NonNullable<AccessDecision['reject']>, extra: AccessDecision['headers']): void {
  if (reject.kind !== 'reply') {
    res.writeStatus('500 Internal Server Error').end();
    return;
  }
  res.writeStatus(`${reject.status} ${reject.status === 401 ? 'Unauthorized' : reject.status === 403 ? 'Forbidden' : reject.status === 429 ? 'Too Many Requests' : 'Error'}`);
  for (const [k, v] of reject.headers) res.writeHeader(k, v);
  for (const [k, v] of extra) res.writeHeader(k, v);
  res.end(reject.body);
}

function upgradeInput(path: string, req: HttpRequest, res: HttpResponse, mask: number): HttpInput {
  return { method: 'GET', path, query: req.getQuery() ?? '', body: undefined, headers: readHeaders(req, res, mask) };
}

/**
 * Serves `endpoint` at `spec.path` (a GET upgrade; `spec.access` is its rule; the
 * `x-tributary-tool-mode` header is kept for the connection when the spec declares `toolMode`;
 * `headerMask`: the headers the access check reads, see `app-headers.ts`); returns the open connections (for pings and shutdown). With
 * `access`, an upgrade is checked before it happens (refused with 401/403/429 and no upgrade) and
 * every message of a rate-limited caller is counted; a refused message reaches
 * `endpoint.onRefused` instead of `onMessage`. Counting is asynchronous, so those messages are
 * copied first; their order is kept.
 */
export function attachWebSocket(app: { ws<U>(pattern: string, behavior: WebSocketBehavior<U> & WsCheckedEntry<U>): unknown }, spec: RouteSpec, headerMask: number, endpoint: WsEndpoint, options: WsEndpointOptions, log: Logger, access?: WsAccess): Set<WsConnection> {
  const path = spec.path;
  const wantsToolMode = spec.headers.includes('toolMode');
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
    checked: (ws: WebSocket<UserData>, data: string | ArrayBuffer, inflated: boolean) => {
      const conn = ws.getUserData().conn;
      if (!conn || !conn.authorize(Date.now())) return;
      const auth = conn.auth;
      const run = (c: WsConnection): void => guard(c, 'message', () => (endpoint.onChecked ? endpoint.onChecked(c, data, inflated) : endpoint.onMessage(c, bytesOf(data), typeof data !== 'string')));
      if (!access || !auth?.principal.limits) {
        run(conn);
        return;
      }
      access.admitMessage(auth).then(
        (refused) => {
          if (conn.closed) return;
          if (!refused) run(conn);
          else if (endpoint.onRefused) guard(conn, 'refused', () => endpoint.onRefused?.(conn, bytesOf(data), typeof data !== 'string', refused));
          else conn.send(JSON.stringify({ type: 'error', ...refused.toRest() }));
        },
        (err: unknown) => log.error('websocket message admission failed', { path, error: err }),
      );
    },
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
      const key = req.getHeader('sec-websocket-key');
      const extensions = req.getHeader('sec-websocket-extensions');
      const toolMode = wantsToolMode ? req.getHeader('x-tributary-tool-mode') : '';
      let aborted = false;
      let watching = false;
      const watchAbort = (): void => {
        if (watching) return;
        watching = true;
        res.onAborted(() => {
          aborted = true;
        });
      };
      const upgrade = (d: AccessDecision | undefined, corked: boolean): void => {
        const go = (): void => res.upgrade<UserData>({ ...(d?.auth ? { auth: d.auth } : {}), ...(toolMode ? { toolMode } : {}) }, key, chosen ?? '', extensions, context);
        if (corked) res.cork(go);
        else go();
      };
      // an admitted upgrade: the endpoint may ask it to wait (see WsEndpoint.beforeOpen)
      const admit = (d: AccessDecision | undefined, corked: boolean): void => {
        const waitFor = endpoint.beforeOpen?.();
        if (waitFor === undefined) {
          upgrade(d, corked);
          return;
        }
        watchAbort();
        void waitFor
          .catch((err: unknown) => log.warn('websocket pre-open step failed; opening anyway', { path, error: err }))
          .then(() => {
            if (!aborted) upgrade(d, true);
          });
      };
      if (!access) {
        admit(undefined, false);
        return;
      }
      const decision = access.check.check(upgradeInput(path, req, res, headerMask), spec.access, spec.errors ?? 'rest');
      const finish = (d: AccessDecision): void => {
        if (d.reject) res.cork(() => refuseUpgrade(res, d.reject as NonNullable<AccessDecision['reject']>, d.headers));
        else admit(d, true);
      };
      if (!(decision instanceof Promise)) {
        finish(decision);
        return;
      }
      watchAbort();
      decision.then(
        (d) => {
          if (!aborted) finish(d);
        },
        (err: unknown) => {
          log.error('websocket access check failed', { path, error: err });
          if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end());
        },
      );
    },
    open: (ws) => {
      const conn = new UwsConnection(ws, path, access?.revalidate);
      ws.getUserData().conn = conn;
      open.add(conn);
      guard(conn, 'open', () => endpoint.onOpen(conn));
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().conn;
      if (!conn) return;
      // access is decided per message from the credential's current state, not the upgrade's
      if (!conn.authorize(Date.now())) return;
      const auth = conn.auth;
      if (!access || !auth?.principal.limits) {
        guard(conn, 'message', () => endpoint.onMessage(conn, message, isBinary));
        return;
      }
      const copy = message.slice(0);
      access.admitMessage(auth).then(
        (refused) => {
          if (conn.closed) return;
          if (!refused) guard(conn, 'message', () => endpoint.onMessage(conn, copy, isBinary));
          else if (endpoint.onRefused) guard(conn, 'refused', () => endpoint.onRefused?.(conn, copy, isBinary, refused));
          else conn.send(JSON.stringify({ type: 'error', ...refused.toRest() }));
        },
        (err: unknown) => log.error('websocket message admission failed', { path, error: err }),
      );
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
