/**
 * The owner's side of `server.workers`: starts the worker threads (`worker-front.ts`), restarts a
 * worker that dies (with backoff), and replays what each worker carries — requests, body parts,
 * aborts, upgrades, WebSocket messages — into the owner's {@link RemoteEntry} (the routes of its
 * own `GatewayServer`) through stand-ins for uWS' `HttpRequest`, `HttpResponse` and `WebSocket`.
 * So a request that arrives on a worker passes the same access gate, request pipelines
 * (concurrency, queue), handlers and response sink as one on the owner's socket; only the bytes
 * go through the worker.
 *
 * Threads: https://nodejs.org/docs/latest-v20.x/api/worker_threads.html; uWS' `App` per thread on
 * one port with SO_REUSEPORT: https://github.com/uNetworking/uWebSockets.js/blob/master/examples/WorkerThreads.js
 */
import { Worker } from 'node:worker_threads';
import client, { type Registry } from 'prom-client';
import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import type { Logger } from '../log/logger.js';
import { JSON_HEADERS, type HttpEffect } from '../base/http.js';
import type { WorkerCall, WorkerCallHandler } from '../handlers/mcp/worker-calls.js';
import { statusLine } from './app-response.js';
import type { WsCheckedEntry } from './ws.js';
import { RemoteRequest, RemoteResponse, RemoteSocket, type RemoteLink } from './worker-remote.js';
import { Outbox, packToWorker, unpackFromWorker, type FlatHeaders, type FromWorker, type ToWorker, type Wire, type WorkerSettings, type WorkerWsRoute } from './worker-protocol.js';

/** What the owner's server offers the workers' traffic. */
export interface RemoteEntry {
  /** Handles one HTTP request by the owner's route table. */
  http(res: HttpResponse, req: HttpRequest): void;
  /** The WebSocket endpoint at `path`, when there is one. */
  ws(path: string): WebSocketBehavior<unknown> | undefined;
  /** The WebSocket paths and their limits, for the workers' own `App`s. */
  wsRoutes(): readonly WorkerWsRoute[];
  /** The MCP fast path's owner side: `POST /mcp` calls the workers decided (none: every request is carried). */
  readonly mcp?: WorkerCallHandler | undefined;
  /** The MCP agent WebSocket path whose frames the workers decode (with the fast path on; see `worker-ws.ts`). */
  readonly mcpWs?: { readonly path: string; readonly maxPayloadBytes: number } | undefined;
}

/** One worker thread as `/health` shows it. */
export interface WorkerView {
  readonly thread: number;
  readonly state: 'starting' | 'listening' | 'restarting' | 'stopped';
  /** HTTP requests and WebSocket upgrades carried to the owner since the gateway started (across restarts). */
  readonly requests: number;
  /** Of {@link requests}: `POST /mcp` requests the worker decided itself and the owner served as calls (the MCP fast path). */
  readonly mcp_calls: number;
  /** `/ws` agent messages the worker decoded, found valid and passed on (since start, across restarts). */
  readonly ws_messages: number;
  readonly websockets_open: number;
  readonly in_flight: number;
  readonly restarts: number;
  readonly last_exit?: { readonly at: string; readonly code: number; readonly error?: string };
}

export interface WorkerPoolOptions {
  readonly host: string;
  readonly port: number;
  /** Worker threads to run beside the owner (`server.workers - 1`). */
  readonly threads: number;
  readonly maxSseBacklogBytes: number;
  /** Longest wait for a worker to listen, ms. */
  readonly startTimeoutMs?: number;
  /** Longest wait for a worker to end after `exit`, ms (then it is terminated). */
  readonly exitTimeoutMs?: number;
  /** Called with the number of worker threads listening, whenever it changes. */
  readonly onListening?: (listening: number) => void;
}

/** Restart backoff of a dying worker: 250 ms doubling to 10 s; a worker that lived 30 s starts over. */
const RESTART_BACKOFF = { initialMs: 250, maxMs: 10_000, stableMs: 30_000 };

function spawnWorker(settings: WorkerSettings): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL('./worker-front.ts', here).href;
    // tsx's loader is not inherited by worker threads: register it in the thread first (https://tsx.is/dev-api/register-esm)
    return new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(entry)}); });`, { eval: true, workerData: settings });
  }
  return new Worker(new URL('./worker-front.js', here), { workerData: settings });
}

/** One worker thread slot: the thread (replaced on restart), what it carries, its counters. */
class WorkerLink implements RemoteLink {
  worker: Worker | undefined;
  state: WorkerView['state'] = 'starting';
  requests = 0;
  mcpCalls = 0;
  wsMessages = 0;
  restarts = 0;
  lastExit: WorkerView['last_exit'];
  attempt = 0;
  startedAt = 0;
  readonly pending = new Map<number, RemoteResponse>();
  readonly sockets = new Map<number, RemoteSocket>();
  readonly upgrades = new Map<number, WebSocketBehavior<unknown>>();
  /**
   * MCP calls in flight (the fast path), each with its cancel in a holder that is emptied when the
   * call ends. A `Map` keeps what its entries reached alive for a while after they were deleted
   * (measured here: with the cancel itself as the value, V8 promoted ≈ 12 % of the main thread's
   * young allocations to the old generation at c=64, ≈ 2 % without; the whole call stayed reachable).
   */
  readonly calls = new Map<number, { cancel: (() => void) | undefined }>();
  onListening: ((ok: boolean) => void) | undefined;
  /** The uncaught exception the current thread reported before ending. */
  failure: string | undefined;

  constructor(
    readonly thread: number,
    private readonly entry: RemoteEntry,
  ) {}

  /** Messages to the current thread, batched per turn of the event loop. */
  outbox: Outbox<ToWorker> | undefined;

  post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    this.outbox?.push(m, transfer);
  }

  forget(id: number): void {
    this.pending.delete(id);
  }

  upgraded(id: number, userData: unknown, protocol: string, remote: string): void {
    const behavior = this.upgrades.get(id);
    this.upgrades.delete(id);
    if (behavior === undefined) return;
    const s = new RemoteSocket(this, id, behavior, userData, remote);
    this.sockets.set(id, s);
    this.post({ t: 'upgrade-ok', id, protocol });
    void behavior.open?.(s as unknown as WebSocket<unknown>);
  }

  handle(m: FromWorker): void {
    switch (m.t) {
      case 'listening':
        this.onListening?.(m.ok);
        return;
      case 'failed':
        this.failure = m.error;
        return;
      case 'req': {
        this.requests++;
        const res = new RemoteResponse(this, m.id, m.remote);
        this.pending.set(m.id, res);
        this.entry.http(res as unknown as HttpResponse, new RemoteRequest(m.method, m.url, m.query, m.headers) as unknown as HttpRequest);
        if (m.body !== undefined) res.feed(m.body, !m.more);
        return;
      }
      case 'call':
        this.call(m);
        return;
      case 'data':
        this.pending.get(m.id)?.feed(m.chunk, m.last);
        return;
      case 'abort': {
        const res = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.upgrades.delete(m.id);
        res?.abort();
        const call = this.calls.get(m.id);
        this.calls.delete(m.id);
        const cancel = call?.cancel;
        if (call !== undefined) call.cancel = undefined;
        cancel?.();
        return;
      }
      case 'upgrade': {
        this.requests++;
        const behavior = this.entry.ws(m.url);
        const res = new RemoteResponse(this, m.id, m.remote);
        if (behavior?.upgrade === undefined) {
          res.writeStatus('404 Not Found').end();
          return;
        }
        this.pending.set(m.id, res);
        this.upgrades.set(m.id, behavior);
        void behavior.upgrade(res as unknown as HttpResponse, new RemoteRequest('GET', m.url, m.query, m.headers) as unknown as HttpRequest, undefined as unknown as us_socket_context_t);
        return;
      }
      case 'ws-msg': {
        const s = this.sockets.get(m.id);
        if (s !== undefined && !s.closed) void s.behavior.message?.(s as unknown as WebSocket<unknown>, m.data, m.binary);
        return;
      }
      case 'ws-checked': {
        this.wsMessages++;
        const s = this.sockets.get(m.id);
        if (s !== undefined && !s.closed) (s.behavior as Partial<WsCheckedEntry>).checked?.(s as unknown as WebSocket<unknown>, m.data, m.inflated);
        return;
      }
      case 'ws-buffered': {
        const s = this.sockets.get(m.id);
        if (s === undefined || s.closed) return;
        const was = s.buffered;
        s.buffered = m.bytes;
        if (m.bytes === 0 && was > 0) s.behavior.drain?.(s as unknown as WebSocket<unknown>);
        return;
      }
      case 'ws-closed': {
        const s = this.sockets.get(m.id);
        this.sockets.delete(m.id);
        if (s === undefined || s.closed) return;
        s.closed = true;
        s.behavior.close?.(s as unknown as WebSocket<unknown>, m.code, m.reason);
        return;
      }
    }
  }

  /** An MCP call the worker decided: served by the owner's fast path, or carried back. */
  private call(m: WorkerCall): void {
    const mcp = this.entry.mcp;
    const id = m.id;
    if (mcp === undefined) {
      this.post({ t: 'carry', id });
      return;
    }
    let done = false;
    let carried = false;
    let counted = false;
    let streaming = false;
    // emptied when the call ends (see `calls`)
    const entry: { cancel: (() => void) | undefined } = { cancel: undefined };
    const forget = (): void => {
      entry.cancel = undefined;
      this.calls.delete(id);
    };
    const cancel = mcp.call(m, {
      effect: (e: HttpEffect) => {
        if (done) return;
        switch (e.kind) {
          case 'reply': {
            done = true;
            // the common answer in the smallest message (a message's cost grows with its fields)
            if (e.status === 200 && e.headers === JSON_HEADERS) {
              this.post({ t: 'rpc', id, body: e.body });
              break;
            }
            const noBody = e.status === 202 || e.status === 204;
            this.post({ t: 'res', id, status: statusLine(e.status), headers: flat(e.headers), chunk: noBody ? undefined : e.body, end: true, noBody, close: false });
            break;
          }
          case 'sse-start':
            streaming = true;
            this.post({ t: 'res', id, status: '200 OK', headers: flat(e.headers), chunk: undefined, end: false, noBody: false, close: false });
            return;
          case 'sse-data':
            this.post({ t: 'res', id, status: undefined, headers: undefined, chunk: e.chunk, end: false, noBody: false, close: false });
            return;
          case 'end':
            done = true;
            this.post({ t: 'res', id, status: streaming ? undefined : '200 OK', headers: undefined, chunk: undefined, end: true, noBody: false, close: false });
            break;
        }
        forget();
      },
      carry: () => {
        done = true;
        carried = true;
        // carried after it was counted (the owner first verified a token): the request the
        // worker now sends whole is counted when it arrives, not twice
        if (counted) {
          this.requests--;
          this.mcpCalls--;
        }
        forget();
        this.post({ t: 'carry', id });
      },
    });
    // a carried call is counted when its request arrives
    if (carried) return;
    counted = true;
    this.requests++;
    this.mcpCalls++;
    if (!done && cancel !== undefined) {
      entry.cancel = cancel;
      this.calls.set(id, entry);
    }
  }

  /** The thread is gone: what it carried fails as if every client had left. */
  lost(): void {
    const calls = [...this.calls.values()].map((c) => c.cancel);
    this.calls.clear();
    for (const cancel of calls) cancel?.();
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.upgrades.clear();
    for (const res of pending) res.abort();
    const sockets = [...this.sockets.values()];
    this.sockets.clear();
    for (const s of sockets) {
      s.closed = true;
      s.behavior.close?.(s as unknown as WebSocket<unknown>, 1006, new ArrayBuffer(0));
    }
  }

  view(): WorkerView {
    return {
      thread: this.thread,
      state: this.state,
      requests: this.requests,
      mcp_calls: this.mcpCalls,
      ws_messages: this.wsMessages,
      websockets_open: this.sockets.size,
      in_flight: this.pending.size + this.calls.size,
      restarts: this.restarts,
      ...(this.lastExit ? { last_exit: this.lastExit } : {}),
    };
  }
}

/**
 * `server.workers - 1` worker threads listening on the owner's port. A worker that exits or
 * throws is restarted with backoff ({@link RESTART_BACKOFF}); its requests in flight are aborted
 * at the owner (their handlers stop, upstream calls are cancelled as for a client that left) and
 * its WebSockets are closed (1006) at the owner's endpoints. Shutdown: {@link stopListening}
 * first, {@link close} last (every worker closes its sockets and ends before the process exits).
 */
export class WorkerPool {
  readonly #links: WorkerLink[] = [];
  #stopping = false;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly entry: RemoteEntry,
    private readonly log: Logger,
  ) {}

  /**
   * Starts every worker and resolves once each listens.
   * @throws Error when a worker cannot listen or does not within `startTimeoutMs`.
   */
  async start(): Promise<void> {
    for (let i = 1; i <= this.options.threads; i++) this.#links.push(new WorkerLink(i, this.entry));
    // the MCP fast path: every change of what the workers decide with reaches every worker
    const mcp = this.entry.mcp;
    if (mcp !== undefined) this.#offState = mcp.onState((state) => {
      for (const l of this.#links) l.post({ t: 'mcp-state', state });
    });
    await Promise.all(this.#links.map((l) => this.#spawn(l)));
  }

  #offState: (() => void) | undefined;

  /** HTTP requests carried by the workers so far (the owner's own are the rest of the server's). */
  get carried(): number {
    let n = 0;
    for (const l of this.#links) n += l.requests;
    return n;
  }

  /**
   * Fault injection (tests, drills): worker `thread` (1-based) throws `message` as an uncaught
   * exception, closes its sockets, ends and is restarted like any failed worker.
   */
  injectFault(thread: number, message: string): void {
    this.#links[thread - 1]?.post({ t: 'fail', message });
  }

  view(): WorkerView[] {
    return this.#links.map((l) => l.view());
  }

  /**
   * Per-thread gauges on `registry` (read at scrape time): `<prefix>worker_thread_up`,
   * `<prefix>worker_thread_requests` (requests and upgrades carried since start, across restarts;
   * thread 0 is the main thread's own), `<prefix>worker_thread_in_flight`,
   * `<prefix>worker_thread_websockets`, `<prefix>worker_thread_restarts`, by `thread`.
   */
  registerMetrics(registry: Registry, prefix: string, ownRequests: () => number): void {
    const views = (): WorkerView[] => this.view();
    const gauge = (name: string, help: string, value: (v: WorkerView) => number, own?: () => number): void => {
      new client.Gauge({
        name: `${prefix}worker_thread_${name}`,
        help,
        labelNames: ['thread'],
        registers: [registry],
        collect() {
          this.reset();
          if (own !== undefined) this.set({ thread: '0' }, own());
          for (const v of views()) this.set({ thread: String(v.thread) }, value(v));
        },
      });
    };
    gauge('up', 'Whether each thread listens on the port (1) or not (0: starting, restarting, stopped); thread 0 is the main thread.', (v) => (v.state === 'listening' ? 1 : 0), () => 1);
    gauge('requests', 'HTTP requests and WebSocket upgrades each thread took since start (across restarts); thread 0 is the main thread.', (v) => v.requests, ownRequests);
    gauge('in_flight', 'Requests a worker thread carried that are not answered yet.', (v) => v.in_flight);
    gauge('websockets', 'WebSockets open on a worker thread.', (v) => v.websockets_open);
    gauge('restarts', 'Restarts of a worker thread since start.', (v) => v.restarts);
  }

  /** Every worker closes its listen socket (connections stay); no worker is restarted from now on. */
  stopListening(): void {
    this.#stopping = true;
    this.#offState?.();
    this.#offState = undefined;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const l of this.#links) l.post({ t: 'stop-listening' });
  }

  /** Every worker closes its connections and ends (terminated after `exitTimeoutMs`). */
  async close(): Promise<void> {
    this.stopListening();
    await Promise.all(
      this.#links.map(async (l) => {
        const w = l.worker;
        if (w === undefined) return;
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        l.post({ t: 'exit' });
        l.outbox?.flush();
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => {
          timer = setTimeout(() => resolve('late'), this.options.exitTimeoutMs ?? 3_000);
        });
        if ((await Promise.race([exited, late])) === 'late') {
          this.log.warn('worker thread did not end after closing its sockets: terminating it', { thread: l.thread });
          await w.terminate();
        }
        clearTimeout(timer);
      }),
    );
  }

  #listening = -1;

  #listeningChanged(): void {
    const n = this.#links.filter((l) => l.state === 'listening').length;
    if (n === this.#listening) return;
    this.#listening = n;
    this.options.onListening?.(n);
  }

  #spawn(l: WorkerLink): Promise<void> {
    const agent = this.entry.mcp === undefined ? undefined : this.entry.mcpWs;
    const ws = this.entry.wsRoutes().map((r) => (r.path === agent?.path ? { ...r, decode: { maxPayloadBytes: agent.maxPayloadBytes } } : r));
    const settings: WorkerSettings = { thread: l.thread, host: this.options.host, port: this.options.port, ws, maxSseBacklogBytes: this.options.maxSseBacklogBytes };
    const w = spawnWorker(settings);
    l.worker = w;
    l.state = 'starting';
    l.startedAt = Date.now();
    let listening = false;
    const started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker thread ${l.thread} did not listen on ${this.options.host}:${this.options.port} within ${this.options.startTimeoutMs ?? 10_000} ms`)), this.options.startTimeoutMs ?? 10_000);
      l.onListening = (ok) => {
        clearTimeout(timer);
        l.onListening = undefined;
        if (!ok) {
          reject(new Error(`worker thread ${l.thread} cannot listen on ${this.options.host}:${this.options.port}`));
          return;
        }
        listening = true;
        l.state = 'listening';
        this.#listeningChanged();
        const mcp = this.entry.mcp;
        if (mcp !== undefined) l.post({ t: 'mcp-state', state: mcp.state() });
        this.log.info('worker thread listening', { thread: l.thread, port: this.options.port });
        resolve();
      };
      w.once('exit', () => {
        clearTimeout(timer);
        if (!listening) reject(new Error(`worker thread ${l.thread} ended before listening${l.lastExit?.error ? `: ${l.lastExit.error}` : ''}`));
      });
    });
    l.outbox = new Outbox<ToWorker>((batch, transfer) => w.postMessage(batch, transfer), packToWorker);
    const handle = (m: FromWorker): void => l.handle(m);
    w.on('message', (batch: Wire<FromWorker>) => {
      for (const m of batch) {
        if (typeof m === 'string') unpackFromWorker(m, handle);
        else l.handle(m);
      }
    });
    let error: string | undefined;
    l.failure = undefined;
    w.on('error', (err) => {
      error = err instanceof Error ? err.message : String(err);
      this.log.error('worker thread failed', { thread: l.thread, error: err });
    });
    w.once('exit', (code) => {
      if (l.worker !== w) return;
      l.worker = undefined;
      l.outbox = undefined;
      error ??= l.failure;
      l.lastExit = { at: new Date().toISOString(), code, ...(error !== undefined ? { error } : {}) };
      if (l.state === 'listening') {
        l.state = this.#stopping ? 'stopped' : 'restarting';
        this.#listeningChanged();
      }
      l.lost();
      if (this.#stopping) {
        l.state = 'stopped';
        return;
      }
      if (!listening) {
        l.state = 'stopped';
        return;
      }
      // restart with backoff; a worker that lived long enough starts the backoff over
      if (Date.now() - l.startedAt >= RESTART_BACKOFF.stableMs) l.attempt = 0;
      const delay = Math.min(RESTART_BACKOFF.maxMs, RESTART_BACKOFF.initialMs * 2 ** l.attempt++);
      l.state = 'restarting';
      this.log.warn('worker thread ended: restarting it', { thread: l.thread, code, error, in_ms: delay });
      const t = setTimeout(() => {
        this.#timers.delete(t);
        if (this.#stopping) return;
        l.restarts++;
        this.#spawn(l).catch((err: unknown) => this.log.error('worker thread restart failed', { thread: l.thread, error: err }));
      }, delay);
      this.#timers.add(t);
    });
    return started;
  }
}

/** Headers as the flat `[name, value, ...]` list of a `res` message. */
function flat(headers: readonly (readonly [string, string])[]): FlatHeaders {
  const out: FlatHeaders = [];
  for (const [k, v] of headers) out.push(k, v);
  return out;
}
