/**
 * Stand-ins for uWS' `HttpRequest`, `HttpResponse` and `WebSocket` for what a worker thread carries
 * to the owner (`worker-pool.ts`): the owner's routes call the same methods on them as on uWS' own
 * objects, and every write becomes a message back to the worker that holds the socket.
 * uWS API: https://unetworking.github.io/uWebSockets.js/generated/
 */
import type { RecognizedString, WebSocketBehavior } from 'uWebSockets.js';
import type { FlatHeaders, ToWorker } from './worker-protocol.js';

/** What a stand-in needs of the link to its worker thread. */
export interface RemoteLink {
  /** Sends `message` to the worker (bytes in `transfer` are moved, not copied). */
  post(message: ToWorker, transfer?: ArrayBuffer[]): void;
  /** The response `id` is done: forget it. */
  forget(id: number): void;
  /** The upgrade of request `id` was accepted: open the socket on the owner's side. */
  upgraded(id: number, userData: unknown, protocol: string, remote: string): void;
}

export function text(s: RecognizedString): string {
  if (typeof s === 'string') return s;
  if (s instanceof ArrayBuffer) return Buffer.from(s).toString();
  return Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString();
}

/** A chunk the owner may post (a string as is, bytes copied into their own buffer, so the copy is transferred, not the pool slab). */
export function payload(s: RecognizedString | undefined): string | Uint8Array | undefined {
  if (s === undefined || typeof s === 'string') return s;
  if (s instanceof ArrayBuffer) return new Uint8Array(s.slice(0));
  return new Uint8Array(s.buffer.slice(s.byteOffset, s.byteOffset + s.byteLength));
}

export function transferOf(x: string | Uint8Array | undefined): ArrayBuffer[] | undefined {
  return x instanceof Uint8Array ? [x.buffer as ArrayBuffer] : undefined;
}

/** `HttpRequest` of a request carried by a worker (uWS' methods the gateway's routes call). */
export class RemoteRequest {
  constructor(
    private readonly method: string,
    private readonly url: string,
    private readonly query: string,
    private readonly headers: FlatHeaders,
  ) {}
  getMethod(): string {
    return this.method.toLowerCase();
  }
  getCaseSensitiveMethod(): string {
    return this.method;
  }
  getUrl(): string {
    return this.url;
  }
  getQuery(): string | undefined {
    return this.query === '' ? undefined : this.query;
  }
  getHeader(name: RecognizedString): string {
    const key = text(name).toLowerCase();
    const h = this.headers;
    for (let i = 0; i + 1 < h.length; i += 2) if (h[i] === key) return h[i + 1] as string;
    return '';
  }
  forEach(cb: (key: string, value: string) => void): void {
    const h = this.headers;
    for (let i = 0; i + 1 < h.length; i += 2) cb(h[i] as string, h[i + 1] as string);
  }
  getParameter(): string {
    return '';
  }
  setYield(): this {
    return this;
  }
}

/** `HttpResponse` of a request carried by a worker: writes become `res` messages (head with the first part). */
export class RemoteResponse {
  #status: string | undefined;
  #headers: FlatHeaders = [];
  #headSent = false;
  #done = false;
  #onAborted: (() => void) | undefined;
  #onData: ((chunk: ArrayBuffer, isLast: boolean) => void) | undefined;
  constructor(
    private readonly link: RemoteLink,
    readonly id: number,
    private readonly remote: string,
  ) {}
  onAborted(handler: () => void): this {
    this.#onAborted = handler;
    return this;
  }
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.#onData = handler;
    return this;
  }
  /** The worker watches its own socket's backpressure (see `worker-front.ts`); here a write never waits. */
  onWritable(): this {
    return this;
  }
  cork(fn: () => void): this {
    fn();
    return this;
  }
  writeStatus(status: RecognizedString): this {
    this.#status = text(status);
    return this;
  }
  writeHeader(key: RecognizedString, value: RecognizedString): this {
    this.#headers.push(text(key), text(value));
    return this;
  }
  write(chunk: RecognizedString): boolean {
    this.#send(payload(chunk), false, false, false);
    return true;
  }
  end(body?: RecognizedString, closeConnection = false): this {
    this.#send(payload(body), true, false, closeConnection);
    return this;
  }
  endWithoutBody(_reportedContentLength?: number, closeConnection = false): this {
    this.#send(undefined, true, true, closeConnection);
    return this;
  }
  close(): this {
    if (this.#done) return this;
    this.#done = true;
    this.link.forget(this.id);
    this.link.post({ t: 'res-close', id: this.id });
    return this;
  }
  getWriteOffset(): number {
    return 0;
  }
  getRemoteAddressAsText(): ArrayBuffer {
    return new TextEncoder().encode(this.remote).buffer as ArrayBuffer;
  }
  upgrade(userData: unknown, _key: RecognizedString, protocol: RecognizedString): void {
    if (this.#done) return;
    this.#done = true;
    this.link.forget(this.id);
    this.link.upgraded(this.id, userData, text(protocol), this.remote);
  }
  /** A body part from the worker. */
  feed(chunk: ArrayBuffer, isLast: boolean): void {
    if (!this.#done) this.#onData?.(chunk, isLast);
  }
  /** The client went away (or the worker died). */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onAborted?.();
  }
  #send(chunk: string | Uint8Array | undefined, end: boolean, noBody: boolean, close: boolean): void {
    if (this.#done) return;
    const head = !this.#headSent;
    this.#headSent = true;
    if (end) {
      this.#done = true;
      this.link.forget(this.id);
    }
    this.link.post(
      { t: 'res', id: this.id, status: head ? (this.#status ?? '200 OK') : undefined, headers: head ? this.#headers : undefined, chunk, end, noBody, close },
      transferOf(chunk),
    );
  }
}

/** `WebSocket` of a socket held by a worker. */
export class RemoteSocket {
  buffered = 0;
  closed = false;
  constructor(
    private readonly link: RemoteLink,
    readonly id: number,
    readonly behavior: WebSocketBehavior<unknown>,
    private readonly userData: unknown,
    private readonly remote: string,
  ) {}
  getUserData(): unknown {
    return this.userData;
  }
  /** 1 sent, 0 the worker reported its buffer filling (backpressure), as uWS' `send`. */
  send(message: RecognizedString, isBinary = false): number {
    if (this.closed) return 2;
    const data = payload(message) ?? '';
    this.link.post({ t: 'ws-send', id: this.id, data, binary: isBinary }, transferOf(data));
    return this.buffered > 0 ? 0 : 1;
  }
  /** An MCPW frame the worker gzips before sending (see `WsConnection.sendGzipped`); results as {@link send}. */
  sendGzipped(frame: Uint8Array): number {
    if (this.closed) return 2;
    const data = payload(frame) as Uint8Array;
    this.link.post({ t: 'ws-send', id: this.id, data, binary: true, gzip: true }, transferOf(data));
    return this.buffered > 0 ? 0 : 1;
  }
  getBufferedAmount(): number {
    return this.buffered;
  }
  end(code = 1000, reason: RecognizedString = ''): void {
    if (this.closed) return;
    this.link.post({ t: 'ws-end', id: this.id, code, reason: text(reason) });
  }
  close(): void {
    if (!this.closed) this.link.post({ t: 'ws-close', id: this.id });
  }
  ping(): boolean {
    if (!this.closed) this.link.post({ t: 'ws-ping', id: this.id });
    return true;
  }
  cork(fn: () => void): this {
    fn();
    return this;
  }
  getRemoteAddressAsText(): ArrayBuffer {
    return new TextEncoder().encode(this.remote).buffer as ArrayBuffer;
  }
}

/** The worker's entry: the compiled module, or under tsx (tests, `npm run dev`) the TypeScript source through tsx's loader. */
