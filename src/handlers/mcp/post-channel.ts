/**
 * The response side of one Streamable HTTP POST, shared by the session revisions (`http.ts`) and
 * the 2026-07-28 revision (`modern-http.ts`): a JSON reply, or an SSE stream once a message related
 * to the request has to go out before its response
 * (https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#sending-messages-to-the-server).
 */
import { Observable, type Subscriber, type Unsubscribable } from 'rxjs';
import { JSON_HEADERS, type HeaderList, type HttpEffect } from '../../base/http.js';
import { stringifyMessage } from '../../codecs/json-text.js';
import type { JsonRpcResponse } from '../../codecs/jsonrpc.js';
import type { McpConnectionLayer, ResponseSink } from './connection.js';
import type { InflightCall, McpSession, OutboundChannel } from './session.js';

/** Headers of an SSE response (no caching, no proxy buffering). */
export const SSE_HEADERS: HeaderList = [
  ['Content-Type', 'text/event-stream'],
  ['Cache-Control', 'no-cache, no-transform'],
  ['X-Accel-Buffering', 'no'],
];

/**
 * One SSE `message` event carrying a JSON-RPC message (a result's kept JSON text copied in,
 * see `codecs/json-text.ts`).
 */
export function sseEvent(message: object): string {
  return `event: message\ndata: ${stringifyMessage(message)}\n\n`;
}

/** No extra reply headers. */
export const NO_HEADERS: HeaderList = Object.freeze([]);

/** A one-shot Observable of a single reply. */
export function once(effect: HttpEffect): Observable<HttpEffect> {
  return new Observable<HttpEffect>((sub) => {
    sub.next(effect);
    sub.complete();
  });
}

/**
 * The response channel of one POST: JSON until the first related message, then SSE. Sending
 * after `finish` or on a JSON-only client returns false.
 */
export class PostChannel implements OutboundChannel {
  private started = false;
  private done = false;
  /**
   * @param canSse the client accepts `text/event-stream`.
   * @param sseOnly the client accepts only `text/event-stream`: even a plain answer goes as SSE.
   * @param headers added to the reply (JSON or SSE).
   */
  constructor(
    private readonly sub: Subscriber<HttpEffect>,
    private readonly canSse: boolean,
    private readonly sseOnly = false,
    private readonly headers: HeaderList = NO_HEADERS,
  ) {}

  send(message: object): boolean {
    if (this.done || !this.canSse || this.sub.closed) return false;
    if (!this.started) {
      this.started = true;
      this.sub.next({ kind: 'sse-start', headers: this.headers.length === 0 ? SSE_HEADERS : [...SSE_HEADERS, ...this.headers] });
    }
    this.sub.next({ kind: 'sse-data', chunk: sseEvent(message) });
    return true;
  }

  /**
   * Sends the final response (JSON body with HTTP `status`, or the last SSE event — an SSE stream
   * already answered 200) and completes. A result whose upstream JSON text was kept goes out as
   * that text (`codecs/json-text.ts`): no serialisation of the result.
   */
  finish(response: object, status = 200): void {
    if (this.done) return;
    if (this.started || this.sseOnly) {
      this.send(response);
      this.sub.next({ kind: 'end' });
    } else {
      this.sub.next({ kind: 'reply', status, headers: this.headers.length === 0 ? JSON_HEADERS : [...JSON_HEADERS, ...this.headers], body: stringifyMessage(response) });
    }
    this.done = true;
    this.sub.complete();
  }
}

/**
 * The channel of one POST's call, also where its response goes ({@link McpConnectionLayer.runTo})
 * and its subscription's teardown: one object per call, no closures. Set {@link call} once the
 * call is registered.
 */
export class PostCall extends PostChannel implements ResponseSink, Unsubscribable {
  call: InflightCall | undefined;

  constructor(
    sub: Subscriber<HttpEffect>,
    canSse: boolean,
    sseOnly: boolean,
    private readonly connections: McpConnectionLayer,
    private readonly session: McpSession,
    headers: HeaderList,
  ) {
    super(sub, canSse, sseOnly, headers);
  }

  respond(response: JsonRpcResponse): void {
    this.finish(response);
  }

  /** Client gone (or the response ended): cancels the call upstream if it still runs. */
  unsubscribe(): void {
    if (this.call !== undefined) this.connections.abandon(this.session, this.call, 'client disconnected');
  }
}
