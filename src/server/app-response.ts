/**
 * The response side of an exchange: status lines, headers (CORS for admitted origins, the access
 * decision's extra headers) and carrying out a handler's {@link HttpEffect}s on a uWS response
 * (corked writes, SSE with backpressure).
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { Observable } from 'rxjs';
import type { RouteParams } from '../base/routes.js';
import { GatewayError } from '../base/errors.js';
import type { HeaderList, HttpEffect, HttpInput } from '../base/http.js';
import type { Logger } from '../log/logger.js';

/** Called for every response: path, method, status, seconds since the request arrived. */
export type ResponseObserver = (path: string, method: string, status: number, seconds: number) => void;

/** Buffered SSE bytes per response beyond which a congested stream is closed. */
export const MAX_SSE_BACKLOG_BYTES = 16 * 1024 * 1024;

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  202: '202 Accepted',
  204: '204 No Content',
  302: '302 Found',
  304: '304 Not Modified',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  406: '406 Not Acceptable',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  499: '499 Client Closed Request',
  500: '500 Internal Server Error',
  502: '502 Bad Gateway',
  503: '503 Service Unavailable',
  504: '504 Gateway Timeout',
};

/** The HTTP status line uWS writes, e.g. `404 Not Found`; unknown codes get `<code> Status`. */
export function statusLine(status: number): string {
  return STATUS_TEXT[status] ?? `${status} Status`;
}

/** Per-response state shared by the body reader, the sink and the abort handler. */
export interface Exchange {
  readonly res: HttpResponse;
  readonly input: HttpInput;
  /** The route's handler (or the 404/405 answer). */
  readonly handler: (input: HttpInput, params: RouteParams) => Observable<HttpEffect>;
  /** The path parameters of the route's pattern. */
  readonly params: RouteParams;
  /** performance.now() when the request arrived. */
  readonly started: number;
  aborted: boolean;
  ended: boolean;
  streaming: boolean;
  congested: boolean;
  backlogBytes: number;
  /** Stops the handler when the client goes away. */
  cancel: { cancel(): void } | undefined;
  /** Headers the access decision adds to every reply (`X-RateLimit-*`). */
  extraHeaders: HeaderList;
  /** Its place in the server's list of open exchanges (`SlotList`), -1 when not in it. */
  slot: number;
}

/** Writes the handler's headers, then the access decision's, then CORS headers when `origin` is not `''`. */
function writeHeaders(res: HttpResponse, headers: HeaderList, origin: string, extra: HeaderList): void {
  // index loops: a destructuring for-of allocates an iterator per header pair on this path
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as readonly [string, string];
    res.writeHeader(h[0], h[1]);
  }
  for (let i = 0; i < extra.length; i++) {
    const h = extra[i] as readonly [string, string];
    res.writeHeader(h[0], h[1]);
  }
  if (origin !== '') {
    res.writeHeader('Access-Control-Allow-Origin', origin);
    res.writeHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After');
    res.writeHeader('Vary', 'Origin');
  }
}

/** The reply {@link writeCorkedReply} writes; set only while `cork` runs it. */
let corkedEx: Exchange | undefined;
let corkedReply: Extract<HttpEffect, { kind: 'reply' }> | undefined;
let corkedOrigin = '';

/** Writes the reply of {@link applyEffect} inside `cork` (status, headers, body). */
function writeCorkedReply(): void {
  const ex = corkedEx;
  const effect = corkedReply;
  if (ex === undefined || effect === undefined) return;
  const res = ex.res;
  res.writeStatus(statusLine(effect.status));
  writeHeaders(res, effect.headers, corkedOrigin, ex.extraHeaders);
  if (effect.status === 202 || effect.status === 204) res.endWithoutBody(0);
  else res.end(effect.body);
}

/** Carries out one effect on the response; a no-op after abort or end. */
export function applyEffect(ex: Exchange, effect: HttpEffect, log: Logger, onResponse: ResponseObserver | undefined): void {
  if (ex.aborted || ex.ended) return;
  const res = ex.res;
  // CORS headers only for origins the handler let through (it answers 403 otherwise)
  const origin = ex.input.headers.origin;
  switch (effect.kind) {
    case 'reply':
      ex.ended = true;
      onResponse?.(ex.input.path, ex.input.method, effect.status, (performance.now() - ex.started) / 1000);
      // one module-level function for every reply (no closure per response): cork runs it at once
      corkedEx = ex;
      corkedReply = effect;
      corkedOrigin = effect.status === 403 ? '' : origin;
      try {
        res.cork(writeCorkedReply);
      } finally {
        corkedEx = undefined;
        corkedReply = undefined;
      }
      return;
    case 'sse-start':
      ex.streaming = true;
      onResponse?.(ex.input.path, ex.input.method, 200, (performance.now() - ex.started) / 1000);
      res.cork(() => {
        res.writeStatus('200 OK');
        writeHeaders(res, effect.headers, origin, ex.extraHeaders);
      });
      return;
    case 'sse-data': {
      let ok = true;
      res.cork(() => {
        ok = res.write(effect.chunk);
      });
      if (ex.congested) {
        ex.backlogBytes += effect.chunk.length;
        if (ex.backlogBytes > MAX_SSE_BACKLOG_BYTES) {
          log.warn('closing a congested SSE stream', { path: ex.input.path, backlog_bytes: ex.backlogBytes });
          ex.ended = true;
          ex.cancel?.cancel();
          res.close();
        }
      } else if (!ok) {
        ex.congested = true;
        res.onWritable(() => {
          ex.congested = false;
          ex.backlogBytes = 0;
          return true;
        });
      }
      return;
    }
    case 'end':
      ex.ended = true;
      res.cork(() => {
        if (!ex.streaming) res.writeStatus('200 OK');
        res.end();
      });
      return;
  }
}

/** Answers 413 (JSON-RPC error on `/mcp`, REST error elsewhere) and ends the exchange. */
export function replyTooLarge(ex: Exchange, limit: number, size: number): void {
  const err = new GatewayError('BODY_TOO_LARGE', `Request body too large: limit is ${limit} bytes`, {
    limit_bytes: limit,
    received_bytes: size,
  });
  ex.ended = true;
  ex.res.cork(() => {
    ex.res
      .writeStatus(statusLine(413))
      .writeHeader('Content-Type', 'application/json')
      .end(JSON.stringify(ex.input.path === '/mcp' ? { jsonrpc: '2.0', id: null, error: err.toJsonRpc() } : err.toRest()), true);
  });
}
