/**
 * Messages between the owner thread and the worker threads of `server.workers` (one
 * `MessagePort` per worker, structured clone, https://nodejs.org/docs/latest-v20.x/api/worker_threads.html#portpostmessagevalue-transferlist;
 * the per-call messages `call` and `rpc` travel packed into one string per batch, see {@link Wire}).
 * A worker is a uWS front: it parses HTTP and WebSocket traffic on the shared port and carries
 * each request, upgrade and message to the owner, which answers through the same routes, access
 * gate and handlers as for its own connections. `id` names one request or socket of one worker.
 */
import type { WorkerCall, WorkerMcpState } from '../handlers/mcp/worker-calls.js';

/** What a worker thread is started with (`workerData`). */
export interface WorkerSettings {
  /** 1-based thread number (0 is the owner). */
  readonly thread: number;
  readonly host: string;
  readonly port: number;
  /** The WebSocket paths and the limits uWS applies to them (as on the owner's `App`). */
  readonly ws: readonly WorkerWsRoute[];
  /** Buffered SSE bytes per response beyond which a congested stream is closed (as on the owner). */
  readonly maxSseBacklogBytes: number;
}

export interface WorkerWsRoute {
  readonly path: string;
  readonly maxPayloadLength: number;
  readonly idleTimeoutSeconds: number;
  readonly maxBackpressure: number;
  /**
   * An MCP agent path (`/ws`): its frames are decoded and validated in the worker
   * (`worker-ws.ts`): bad ones and control frames are answered there, valid ones reach the owner
   * (`ws-checked`); without it every message goes whole (`ws-msg`).
   */
  readonly decode?: { readonly maxPayloadBytes: number };
}

/** Flat `[name, value, name, value, ...]` list of request headers, names lower-cased, as uWS reads them. */
export type FlatHeaders = string[];

/** Worker → owner. */
export type FromWorker =
  | { readonly t: 'listening'; readonly ok: boolean }
  /** A request; `body` is the whole body when `more` is false, else its first part (then `data` messages follow). */
  | { readonly t: 'req'; readonly id: number; readonly method: string; readonly url: string; readonly query: string; readonly headers: FlatHeaders; readonly remote: string; readonly body: ArrayBuffer | undefined; readonly more: boolean }
  | { readonly t: 'data'; readonly id: number; readonly chunk: ArrayBuffer; readonly last: boolean }
  /** The client went away before the response ended. */
  | { readonly t: 'abort'; readonly id: number }
  | { readonly t: 'upgrade'; readonly id: number; readonly url: string; readonly query: string; readonly headers: FlatHeaders; readonly remote: string }
  | { readonly t: 'ws-msg'; readonly id: number; readonly data: ArrayBuffer; readonly binary: boolean }
  /** The socket's send buffer, after a send that was buffered (`bytes` > 0) or a drain. */
  /**
   * A message of an agent socket the worker decoded and found valid (`worker-ws.ts`): a text
   * frame's text, or an MCPW frame (`inflated`: it came gzip'd, this is the frame uncompressed).
   */
  | { readonly t: 'ws-checked'; readonly id: number; readonly data: string | ArrayBuffer; readonly inflated: boolean }
  | { readonly t: 'ws-buffered'; readonly id: number; readonly bytes: number }
  | { readonly t: 'ws-closed'; readonly id: number; readonly code: number; readonly reason: ArrayBuffer }
  /** An uncaught exception: the thread closes its sockets and ends (then it is restarted). */
  | { readonly t: 'failed'; readonly error: string }
  /**
   * A `POST /mcp` request the worker decided up to the dispatcher (`worker-mcp.ts`): answered
   * with `res` messages, or `carry` (then the worker sends the request as `req`).
   */
  | WorkerCall;

/** Owner → worker. */
export type ToWorker =
  /**
   * Part of a response: the status line and headers with the first part, then `chunk` written
   * (`end` false) or the response ended with it (`end` true; `noBody`: `endWithoutBody`).
   */
  | { readonly t: 'res'; readonly id: number; readonly status: string | undefined; readonly headers: FlatHeaders | undefined; readonly chunk: string | Uint8Array | undefined; readonly end: boolean; readonly noBody: boolean; readonly close: boolean }
  /** A whole `200 OK` reply with `Content-Type: application/json` and this body (an MCP call's usual answer). */
  | { readonly t: 'rpc'; readonly id: number; readonly body: string }
  /** Close the connection at once (`HttpResponse.close`). */
  | { readonly t: 'res-close'; readonly id: number }
  /** The owner admitted the upgrade: complete it with this sub-protocol. */
  | { readonly t: 'upgrade-ok'; readonly id: number; readonly protocol: string }
  /** `gzip`: an MCPW frame to send gzip'd (compressed in the worker, flag bit0 set). */
  | { readonly t: 'ws-send'; readonly id: number; readonly data: string | Uint8Array; readonly binary: boolean; readonly gzip?: boolean }
  | { readonly t: 'ws-end'; readonly id: number; readonly code: number; readonly reason: string }
  | { readonly t: 'ws-close'; readonly id: number }
  | { readonly t: 'ws-ping'; readonly id: number }
  /** The owner does not serve call `id` as a call: send the whole request (`req`). */
  | { readonly t: 'carry'; readonly id: number }
  /** What the worker needs to decide MCP calls itself (on start and on every change); none: every request is carried. */
  | { readonly t: 'mcp-state'; readonly state: WorkerMcpState }
  /** Close the listen socket (connections stay). */
  | { readonly t: 'stop-listening' }
  /** Close every connection and end the thread. */
  | { readonly t: 'exit' }
  /** Fault injection (tests, drills): throw `message` as an uncaught exception in the thread. */
  | { readonly t: 'fail'; readonly message: string };

/**
 * What crosses the port per turn of the event loop: the messages in order, where a string stands
 * for a run of consecutive per-call messages in their packed form ({@link packFromWorker},
 * {@link packToWorker}). A structured clone of an object costs its sender and, more, its receiver
 * per property (measured on this box: a `call` with its parsed request ≈ 2.3 µs to serialize and
 * ≈ 5 µs to deserialize, against ≈ 0.2 µs and ≈ 1 µs for its packed text and a `JSON.parse` of
 * the body on the receiving side); a string is copied once.
 */
export type Wire<M> = (M | string)[];

/**
 * Messages to one thread, sent as one array per turn of the event loop (`setImmediate`): a
 * `MessagePort` message costs a serialisation and a dispatch on the other side whatever its size,
 * and at c=64 many requests and replies fall in the same turn. A message `pack` turns into text
 * joins the run of packed messages before it (one string in the batch); any other goes as an object.
 */
export class Outbox<M> {
  #batch: Wire<M> = [];
  #run = '';
  #transfer: ArrayBuffer[] = [];
  #scheduled: NodeJS.Immediate | undefined;

  constructor(
    private readonly send: (batch: Wire<M>, transfer: ArrayBuffer[]) => void,
    private readonly pack: (m: M) => string | undefined = () => undefined,
  ) {}

  push(m: M, transfer?: readonly ArrayBuffer[]): void {
    const packed = this.pack(m);
    if (packed !== undefined) this.#run += packed;
    else {
      if (this.#run !== '') this.#batch.push(this.#run);
      this.#run = '';
      this.#batch.push(m);
    }
    if (transfer !== undefined) for (const b of transfer) this.#transfer.push(b);
    this.#scheduled ??= setImmediate(() => this.flush());
  }

  /** Sends what is queued now (before the port closes). */
  flush(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    if (this.#run !== '') this.#batch.push(this.#run);
    this.#run = '';
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    const transfer = this.#transfer;
    this.#batch = [];
    this.#transfer = [];
    this.send(batch, transfer);
  }
}

/*
 * The packed form: one record per message, records back to back. A record is a tag character and
 * its fields; a number is its decimal digits and `;`, a string its length in UTF-16 code units
 * (as a number) and then its text. Written and read only by this module's functions, on the two
 * sides of one process' port.
 */
const SEP = 59; // ';'
const str = (s: string): string => `${s.length};${s}`;

/** Reads the records of one packed run. */
class PackReader {
  #pos = 0;
  constructor(private readonly s: string) {}
  get done(): boolean {
    return this.#pos >= this.s.length;
  }
  tag(): string {
    return this.s.charAt(this.#pos++);
  }
  int(): number {
    const s = this.s;
    let n = 0;
    for (let c = s.charCodeAt(this.#pos++); c !== SEP; c = s.charCodeAt(this.#pos++)) {
      if (!(c >= 48 && c <= 57)) throw new Error(`packed worker message: a number expected at ${this.#pos - 1}`);
      n = n * 10 + (c - 48);
    }
    return n;
  }
  str(): string {
    const n = this.int();
    const start = this.#pos;
    this.#pos += n;
    if (this.#pos > this.s.length) throw new Error('packed worker message: a string runs past the end');
    return this.s.slice(start, this.#pos);
  }
}

const KIND_TAG = { api_key: 'a', virtual_key: 'v' } as const;

/**
 * The packed record of a worker → owner message sent once per request (`call`), else `undefined`
 * (the message goes as an object). The request travels as its JSON text (`body`), which the
 * owner parses once (cheaper than receiving a parsed object, and the only parse of it).
 */
export function packFromWorker(m: FromWorker): string | undefined {
  if (m.t !== 'call') return undefined;
  const flags = (m.canSse ? 1 : 0) | (m.sseOnly ? 2 : 0);
  const key = m.key === undefined ? '-' : KIND_TAG[m.key.kind] + str(m.key.id);
  return `c${m.id};${flags};${key}${str(m.session)}${str(m.bearer)}${str(m.body)}${str(m.traceparent)}${str(m.tracestate)}`;
}

/**
 * Calls `each` with every message of a run packed by {@link packFromWorker}, in order.
 * @throws Error when the run is not one (a defect, never input from a client).
 */
export function unpackFromWorker(run: string, each: (m: FromWorker) => void): void {
  const r = new PackReader(run);
  while (!r.done) {
    const tag = r.tag();
    if (tag !== 'c') throw new Error(`packed worker message: unknown record "${tag}"`);
    const id = r.int();
    const flags = r.int();
    const kind = r.tag();
    const key = kind === '-' ? undefined : { kind: kind === 'v' ? ('virtual_key' as const) : ('api_key' as const), id: r.str() };
    const session = r.str();
    const bearer = r.str();
    const body = r.str();
    const traceparent = r.str();
    const tracestate = r.str();
    each({ t: 'call', id, session, key, bearer, body, canSse: (flags & 1) !== 0, sseOnly: (flags & 2) !== 0, traceparent, tracestate });
  }
}

/** The packed record of an owner → worker message sent once per call (`rpc`), else `undefined`. */
export function packToWorker(m: ToWorker): string | undefined {
  if (m.t !== 'rpc') return undefined;
  return `r${m.id};${str(m.body)}`;
}

/**
 * Calls `each` with every message of a run packed by {@link packToWorker}, in order.
 * @throws Error when the run is not one (a defect).
 */
export function unpackToWorker(run: string, each: (m: ToWorker) => void): void {
  const r = new PackReader(run);
  while (!r.done) {
    const tag = r.tag();
    if (tag !== 'r') throw new Error(`packed worker message: unknown record "${tag}"`);
    const id = r.int();
    each({ t: 'rpc', id, body: r.str() });
  }
}
