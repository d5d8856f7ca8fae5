/**
 * The uWebSockets.js server: route lookup, body reading with a size limit, abort handling, and
 * the request pipelines (404/405 answers, the method and the readiness hold in `app-routes.ts`). Every request is looked up once in the {@link RouteTable} the surfaces
 * registered their routes in (`base/routes.ts`); its {@link RouteSpec} says which headers to read
 * (only those, plus what the access check reads for its rule), the access rule the gate applies,
 * whether refusals are JSON-RPC or REST bodies, and which pipeline admits it. Header reading is in
 * `app-headers.ts`; the sink that carries out handlers' {@link HttpEffect}s (corked writes, SSE
 * with backpressure) is in `app-response.ts`.
 *
 * Routes of admission `mcp` (POST /mcp) and `api` (REST) are {@link HttpInput}s admitted by
 * their route group's {@link RouteGroupAdmission} (the policy of `boundedMergeMap`, without an
 * Observable per request): at most `concurrency` in flight, `max_queued` waiting, beyond that
 * HTTP 503 with `Retry-After` (a JSON-RPC error -32000 on `mcp`). Each admitted request's handler
 * (input → Observable of effects) is subscribed with one {@link ExchangeSink}, which carries the
 * effects out. `direct` routes (GET streams, DELETE, health, metrics) do not take request slots.
 */
import { Observable, Subscriber } from 'rxjs';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocketBehavior } from 'uWebSockets.js';
import { describePortHolder } from './port-holder.js';
import { jsonReply, type HttpEffect } from '../base/http.js';
import { GatewayError } from '../base/errors.js';
import { SlotList } from '../base/registry.js';
import type { Logger } from '../log/logger.js';
import type { UwsModule } from './uws.js';
import { attachWebSocket, type WsAccess } from './ws.js';
import type { WsConnection, WsEndpoint, WsEndpointOptions } from '../streams/ws.js';
import type { RequestAuth } from '../base/access.js';
import { headerMask, NO_PARAMS, ROUTE_ACCESS, type AccessCheck, type PathRoutesView, type AccessDecision, type RouteAccess, type RouteEntry, type RouteHandler, type RouteMatch, type RouteParams, type RouteSpec, type RouteTable } from '../base/routes.js';
import { readHeaders } from './app-headers.js';
import { accessOf, heldUntilReady, methodOf, notAllowed, notFound, serveStaticFile, UNROUTED, UWS_METHODS, type ReadinessGate, type StaticFiles } from './app-routes.js';
import { applyEffect, replyTooLarge, statusLine, type Exchange, type ResponseObserver } from './app-response.js';
import type { RemoteEntry } from './worker-pool.js';
import type { WorkerWsRoute } from './worker-protocol.js';

/** What the server serves: the routes every surface registered, with their specs. */
export type ServerRoutes = RouteTable<RouteHandler>;

export interface ServerOptions {
  /** Called for every response: path, method, status, seconds since the request arrived. */
  readonly onResponse?: ResponseObserver;
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly concurrency: number;
  readonly maxQueued: number;
  /** The access gate; every request passes it, with its route's rule, before its body is handled (none: all admitted). */
  readonly access?: AccessCheck;
  /** Requests to routes declared `holdUntilReady` wait for this (none: never held). */
  readonly readiness?: ReadinessGate;
  /**
   * The dashboard's static files at `/ui` and `/ui/*` (public: they hold no data; see
   * `handlers/ui/static.ts`). Answered at once from memory, outside the request pipelines.
   */
  readonly staticFiles?: StaticFiles;
}

export class GatewayServer {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | undefined;
  /** POST /mcp requests: the "mcp" route group. */
  private readonly posts: RouteGroupAdmission;
  /** Management and REST requests (`/api/*`, `/v1/*`): the "api" route group. */
  private readonly api: RouteGroupAdmission;
  /** Exchanges started and not finished (a slot list, not a Set: see base/registry.ts). */
  private readonly open = new SlotList<Exchange>();
  /** Requests (other than GET/OPTIONS) accepted and not yet answered. */
  activeRequests = 0;
  /** Called when {@link activeRequests} drops to 0 (see {@link whenIdle}). */
  readonly #idleWaiters = new Set<() => void>();
  port = 0;
  /** HTTP requests and WebSocket upgrades that arrived on this server's own socket, and those worker threads carried (`server.workers`). */
  requestsOwn = 0;
  requestsCarried = 0;
  private readonly wsRoutes = new Map<string, { readonly behavior: WebSocketBehavior<unknown>; readonly route: WorkerWsRoute }>();

  /** Paths served by {@link attachWs}. */
  readonly #wsPaths = new Set<string>();
  /** Exact paths handed to uWS' router by {@link bindExactPaths}. */
  readonly #bound = new Set<string>();
  /** The header mask each access rule's check reads (see {@link AccessCheck.headersFor}). */
  readonly #accessMasks: Readonly<Record<RouteAccess, number>>;

  /**
   * @param routes the route table the surfaces register in (until {@link listen}; lookups are live).
   */
  constructor(
    private readonly uws: UwsModule,
    private readonly routes: ServerRoutes,
    private readonly options: ServerOptions,
    readonly log: Logger,
  ) {
    this.app = uws.App();
    const access = options.access;
    const masks: Partial<Record<RouteAccess, number>> = {};
    for (const a of ROUTE_ACCESS) masks[a] = access ? headerMask(access.headersFor(a)) : 0;
    this.#accessMasks = masks as Record<RouteAccess, number>;
    this.posts = this.admission(true);
    this.api = this.admission(false);

    this.app
      .any('/ui', (res, req) => {
        this.requestsOwn++;
        this.serveStatic(res, req);
      })
      .any('/ui/*', (res, req) => {
        this.requestsOwn++;
        this.serveStatic(res, req);
      })
      .any('/*', (res, req) => {
        this.requestsOwn++;
        this.serve(res, req, undefined);
      });
  }

  /**
   * What worker threads' traffic enters by (`server.workers`): the same route table, WebSocket
   * endpoints and access checks as this server's own socket — a carried request is looked up
   * in the {@link RouteTable} as one on this socket that uWS did not bind natively.
   */
  remote(): RemoteEntry {
    return {
      http: (res, req) => {
        this.requestsCarried++;
        const path = req.getUrl();
        if (path === '/ui' || path.startsWith('/ui/')) this.serveStatic(res, req);
        else this.serve(res, req, undefined);
      },
      ws: (path) => this.wsRoutes.get(path)?.behavior,
      wsRoutes: () => [...this.wsRoutes.values()].map((r) => r.route),
    };
  }

  /**
   * Hands every exact path of the table to uWS' native router, each method bound to its match
   * (other methods of the path to the path's routes, for the 405), so a request to one costs no
   * lookup in JS. Paths registered later, patterns and wildcards go through `/*` and
   * {@link RouteTable.match}; the answers are the same.
   */
  #bindExactPaths(): void {
    for (const [path, routes] of this.routes.exactPaths()) {
      // a WebSocket path stays uWS' own upgrade route (a plain GET still reaches `/*`)
      if (this.#wsPaths.has(path) || this.#bound.has(path) || path === '/ui') continue;
      this.#bound.add(path);
      for (const method of routes.methods()) {
        const bind = UWS_METHODS[method];
        const m = routes.pick(method, NO_PARAMS);
        if (bind === undefined || m === undefined) continue;
        const mask = m.entry.headerMask | this.#accessMasks[accessOf(method, m.entry.spec)];
        this.app[bind](path, (res, req) => {
          this.requestsOwn++;
          this.#serveMatch(res, req, method, path, m, mask);
        });
      }
      this.app.any(path, (res, req) => {
        this.requestsOwn++;
        this.serve(res, req, routes);
      });
    }
  }

  /**
   * One request: the route lookup, then {@link accept} with the route's handler (a 405 with
   * `Allow` when the path exists for other methods; 404 when nothing matches), into the
   * route's pipeline.
   */
  private serve(res: HttpResponse, req: HttpRequest, exact: PathRoutesView<RouteHandler> | undefined): void {
    const method = methodOf(req);
    const path = req.getUrl();
    this.#serveMatch(res, req, method, path, exact !== undefined ? exact.pick(method, NO_PARAMS) : this.routes.match(method, path), undefined);
  }

  /**
   * A request whose route is known: its handler (a 405 with `Allow` for another method; 404
   * without a route) into {@link accept}. `boundMask`: the header mask, when known beforehand.
   */
  #serveMatch(res: HttpResponse, req: HttpRequest, method: string, path: string, m: RouteMatch<RouteHandler> | undefined, boundMask: number | undefined): void {
    let spec: RouteSpec;
    let handler: RouteHandler;
    let params: RouteParams;
    let mask: number;
    if (m === undefined) {
      spec = UNROUTED;
      handler = notFound;
      params = NO_PARAMS;
      mask = this.#accessMasks.open;
    } else {
      const entry: RouteEntry<RouteHandler> = m.entry;
      spec = entry.spec;
      params = m.params;
      handler = m.allow === undefined ? entry.handler : notAllowed(m.allow);
      mask = boundMask ?? entry.headerMask | this.#accessMasks[accessOf(method, spec)];
    }
    const readiness = this.options.readiness;
    if (spec.holdUntilReady === true && readiness !== undefined && !readiness.ready) handler = heldUntilReady(handler, readiness);
    this.accept(res, req, method, path, mask, spec, handler, params);
  }

  private serveStatic(res: HttpResponse, req: HttpRequest): void {
    serveStaticFile(res, req, this.options.staticFiles, this.options.onResponse);
  }

  /**
   * Serves a WebSocket endpoint at `spec.path` (a GET upgrade; call before {@link listen}) and
   * registers the spec in the route table (a plain GET there is answered 404); returns its open
   * connections.
   */
  attachWs(spec: RouteSpec, endpoint: WsEndpoint, options: WsEndpointOptions, access?: WsAccess): Set<WsConnection> {
    const entry = this.routes.add(spec, notFound);
    this.#wsPaths.add(spec.path);
    const mask = entry.headerMask | (access ? this.#accessMasks[accessOf('GET', entry.spec)] : 0);
    const app = this.app;
    const routes = this.wsRoutes;
    const countOwn = (): void => {
      this.requestsOwn++;
    };
    // kept for worker threads, which open the same paths with the same limits
    const recorder = {
      ws<UserData>(pattern: string, behavior: WebSocketBehavior<UserData>): void {
        routes.set(pattern, { behavior: behavior as WebSocketBehavior<unknown>, route: { path: pattern, maxPayloadLength: options.maxPayloadLength, idleTimeoutSeconds: options.idleTimeoutSeconds, maxBackpressure: options.maxBackpressure } });
        const upgrade = behavior.upgrade;
        app.ws(pattern, upgrade === undefined ? behavior : { ...behavior, upgrade: (res, req, context) => (countOwn(), upgrade(res, req, context)) });
      },
    };
    return attachWebSocket(recorder, entry.spec, mask, endpoint, options, this.log, access);
  }

  /**
   * Starts listening, exclusively (`LIBUS_LISTEN_EXCLUSIVE_PORT`: no `SO_REUSEPORT`), so a second
   * gateway on a taken port fails here instead of having the kernel split connections between
   * the two (https://github.com/uNetworking/uSockets/blob/master/src/libusockets.h, `LIBUS_LISTEN_EXCLUSIVE_PORT`).
   * Resolves with the bound port.
   * @throws Error naming the host, port and, when procfs tells, the pid and command line of the process holding it.
   */
  listen(): Promise<number> {
    this.#bindExactPaths();
    // the runtime exports the flag as a number (1); the typings only as the enum ListenOptions
    const exclusive = (this.uws as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;
    return this.listenOn(this.options.port, exclusive);
  }

  /**
   * Listens on a port worker threads share (`server.workers` > 1): first exclusively, as
   * {@link listen} (so a port another process holds fails the same way, naming it), then that
   * socket is closed and the same port is bound again with SO_REUSEPORT, which the workers' own
   * sockets join (https://man7.org/linux/man-pages/man7/socket.7.html, `SO_REUSEPORT`). While
   * any of them is bound, another gateway's exclusive listen fails with `EADDRINUSE`.
   */
  async listenShared(): Promise<number> {
    const port = await this.listen();
    this.stopListening();
    try {
      return await this.listenOn(port, 0);
    } catch (err) {
      throw new Error(`${(err as Error).message}: the port was taken between the exclusive check and the shared listen`);
    }
  }

  private listenOn(port: number, options: number): Promise<number> {
    return new Promise((resolve, reject) => {
      // uWS.js accepts (host, port, options, cb); its typings only declare (port, options, cb)
      const listen = this.app.listen.bind(this.app) as unknown as (host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void) => void;
      listen(this.options.host, port, options, (socket) => {
        if (!socket) {
          const why = port === 0 ? 'address not permitted' : describePortHolder(port);
          reject(new Error(`cannot listen on ${this.options.host}:${port} (${why})`));
          return;
        }
        this.listenSocket = socket;
        this.port = this.uws.us_socket_local_port(socket as unknown as Parameters<UwsModule['us_socket_local_port']>[0]);
        resolve(this.port);
      });
    });
  }

  /**
   * Listens again on the bound port with SO_REUSEPORT, after {@link stopListening} (`server.workers`
   * with `main_thread_listens: false`: the main thread takes connections only while no worker does).
   * Resolves false when it cannot (the reason is logged by the caller).
   */
  resumeListening(): Promise<boolean> {
    if (this.listenSocket !== undefined) return Promise.resolve(true);
    return this.listenOn(this.port, 0).then(
      () => true,
      () => false,
    );
  }

  /** Stops accepting connections (responses in progress go on). */
  stopListening(): void {
    if (this.listenSocket) {
      this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
  }

  /**
   * Resolves `true` once no counted request (other than GET/OPTIONS) is in flight, or `false`
   * when `timeoutMs` passes first (graceful shutdown: stop listening, then wait for this).
   */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.activeRequests === 0) return Promise.resolve(true);
    let wake: () => void = () => undefined;
    const idle = new Promise<true>((resolve) => {
      wake = () => resolve(true);
      this.#idleWaiters.add(wake);
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    return Promise.race([idle, deadline]).finally(() => {
      clearTimeout(timer);
      this.#idleWaiters.delete(wake);
    });
  }

  /**
   * A request slot for a request served outside the pipelines (the MCP calls worker threads
   * decide, `server.workers`): false while `concurrency` requests are in flight (the caller then
   * sends it through the pipeline); it counts for {@link whenIdle} until {@link endRemoteCall}.
   */
  beginRemoteCall(): boolean {
    if (this.activeRequests >= this.options.concurrency) return false;
    this.activeRequests++;
    return true;
  }

  /** Frees a slot {@link beginRemoteCall} took. */
  endRemoteCall(): void {
    if (--this.activeRequests === 0) for (const wake of this.#idleWaiters) wake();
  }

  /** Ends every open response (SSE streams included) and the request pipeline. */
  closeAll(): void {
    for (const ex of this.open) {
      ex.cancel?.cancel();
      if (!ex.aborted && !ex.ended) {
        ex.ended = true;
        ex.res.cork(() => {
          if (ex.streaming) ex.res.end(undefined, true);
          else ex.res.writeStatus(statusLine(503)).end(JSON.stringify(new GatewayError('SHUTTING_DOWN').toRest()), true);
        });
      }
    }
    this.open.clear();
    this.posts.stop();
    this.api.stop();
  }

  /**
   * One route group's admission: `boundedMergeMap`'s policy (at most `concurrency` handled at
   * once, `maxQueued` waiting in order, then 503 with `Retry-After`) with one object per exchange
   * (its {@link ExchangeSink}) instead of a Subject hop, an inner Observable and its subscriber.
   */
  private admission(jsonRpc: boolean): RouteGroupAdmission {
    const { concurrency, maxQueued } = this.options;
    return new RouteGroupAdmission(this, concurrency, maxQueued, (ex) => {
      const err = new GatewayError('OVERLOADED', 'Gateway overloaded: too many requests in flight, retry later', {
        concurrency,
        max_queued: maxQueued,
      });
      const body = jsonRpc ? { jsonrpc: '2.0', id: null, error: err.toJsonRpc() } : err.toRest();
      this.apply(ex, jsonReply(503, body, [['Content-Type', 'application/json'], ['Retry-After', '1']]));
    });
  }

  /**
   * Copies what the route reads out of the uWS request (valid only in this callback): the headers
   * of `mask`, the query; reads the body for POST/PUT/PATCH with the size limit; asks the access
   * check with the route's rule; then hands the exchange to the route's pipeline.
   */
  private accept(res: HttpResponse, req: HttpRequest, method: string, url: string, mask: number, spec: RouteSpec, handler: RouteHandler, params: RouteParams): void {
    const headers = readHeaders(req, res, mask);
    const query = req.getQuery() ?? '';
    const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    const ex: Exchange = {
      res,
      input: { method, path: url, query, headers, body: undefined },
      handler,
      params,
      started: performance.now(),
      aborted: false,
      ended: false,
      streaming: false,
      congested: false,
      backlogBytes: 0,
      cancel: undefined,
      extraHeaders: [],
      slot: -1,
    };
    res.onAborted(() => {
      ex.aborted = true;
      this.#forget(ex);
      ex.cancel?.cancel();
    });
    // The access decision is taken from the headers while the body is read; a refusal known at
    // once is answered without reading the body at all.
    const decision = this.options.access?.check(ex.input, accessOf(method, spec), spec.errors ?? 'rest');
    let admitted = decision === undefined;
    let bodyRead = !hasBody;
    let handedOn = false;
    const admission = spec.admission;
    const proceed = (): void => {
      if (handedOn || !admitted || !bodyRead || ex.ended || ex.aborted) return;
      handedOn = true;
      if (admission === 'mcp') this.posts.admit(ex);
      else if (admission === 'api') this.api.admit(ex);
      else this.run(ex).subscribe();
    };
    const decide = (d: AccessDecision): void => {
      if (ex.aborted || ex.ended) return;
      ex.extraHeaders = d.headers;
      if (d.reject) {
        this.apply(ex, d.reject);
        return;
      }
      (ex.input as { auth?: RequestAuth | undefined }).auth = d.auth;
      admitted = true;
      proceed();
    };
    if (decision instanceof Promise) {
      decision.then(decide, (err: unknown) => {
        this.log.error('access check failed', { path: url, error: err });
        this.apply(ex, jsonReply(500, new GatewayError('INTERNAL_ERROR').toRest()));
      });
    } else if (decision !== undefined) {
      decide(decision);
      if (ex.ended) return;
    }
    if (!hasBody) {
      proceed();
      return;
    }
    const limit = this.options.maxBodyBytes;
    const declared = Number(req.getHeader('content-length') || '0');
    if (declared > limit) {
      replyTooLarge(ex, limit, declared);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (ex.ended || ex.aborted) return;
      size += chunk.byteLength;
      if (size > limit) {
        replyTooLarge(ex, limit, size);
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it
      if (isLast && chunks.length === 0) {
        (ex.input as { body: Buffer }).body = Buffer.from(chunk.slice(0));
        bodyRead = true;
        proceed();
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) {
        (ex.input as { body: Buffer }).body = Buffer.concat(chunks, size);
        bodyRead = true;
        proceed();
      }
    });
  }


  /**
   * Runs a handler for an exchange and applies its effects. The returned Observable completes
   * when the response is over (or the client left).
   */
  private run(ex: Exchange): Observable<never> {
    return new Observable<never>((outer) => this.start(ex, outer));
  }

  /**
   * Subscribes an exchange's handler with its {@link ExchangeSink}; `done.complete()` runs once when
   * the response is over or the client left (at once for an exchange already aborted). Returns
   * the sink (its `unsubscribe` stops the handler), or undefined when nothing was started.
   */
  start(ex: Exchange, done: { complete(): void }): ExchangeSink | undefined {
    if (ex.aborted) {
      done.complete();
      return undefined;
    }
    const counts = ex.input.method !== 'GET' && ex.input.method !== 'OPTIONS';
    if (counts) this.activeRequests++;
    if (ex.slot < 0) ex.slot = this.open.add(ex);
    const sink = new ExchangeSink(this, ex, done, counts);
    ex.cancel = sink;
    try {
      ex.handler(ex.input, ex.params).subscribe(sink);
    } catch (err) {
      this.log.error('handler threw', { path: ex.input.path, error: err });
      if (!ex.ended) this.apply(ex, jsonReply(500, new GatewayError('INTERNAL_ERROR').toRest()));
      sink.cancel();
    }
    return sink;
  }

  /** An exchange's handler is done (or cancelled): frees what {@link run} took. */
  exchangeDone(ex: Exchange, counts: boolean): void {
    if (counts && --this.activeRequests === 0) for (const wake of this.#idleWaiters) wake();
    this.#forget(ex);
  }

  /** Takes `ex` out of the open list (once; later calls do nothing). */
  #forget(ex: Exchange): void {
    if (ex.slot >= 0) this.open.remove(ex.slot, ex);
    ex.slot = -1;
  }

  /** Carries out one effect on the response; a no-op after abort or end. */
  apply(ex: Exchange, effect: HttpEffect): void {
    applyEffect(ex, effect, this.log, this.options.onResponse);
  }
}


/**
 * The subscriber of one exchange's handler (a Subscriber of its own: no observer object, closures
 * or SafeSubscriber per request): applies the effects, answers a failure, and completes the
 * exchange — which frees its pipeline slot — when the handler is done or the client left
 * ({@link Exchange.cancel}). Its own teardown unsubscribes the handler.
 */
export class ExchangeSink extends Subscriber<HttpEffect> {
  #finished = false;

  constructor(
    private readonly server: GatewayServer,
    private readonly ex: Exchange,
    private readonly done: { complete(): void },
    private readonly counts: boolean,
  ) {
    super();
  }

  protected override _next(effect: HttpEffect): void {
    this.server.apply(this.ex, effect);
  }

  protected override _error(err: unknown): void {
    const ex = this.ex;
    this.server.log.error('handler failed', { path: ex.input.path, error: err });
    if (!ex.ended && !ex.streaming) this.server.apply(ex, jsonReply(500, new GatewayError('INTERNAL_ERROR').toRest()));
    else if (!ex.ended) this.server.apply(ex, { kind: 'end' });
    this.finish();
    this.unsubscribe();
  }

  protected override _complete(): void {
    const ex = this.ex;
    if (!ex.ended && !ex.aborted) this.server.apply(ex, { kind: 'end' });
    this.finish();
    this.unsubscribe();
  }

  /** The client left, or the response was cut: stops the handler and frees the slot. */
  cancel(): void {
    this.unsubscribe();
    this.finish();
  }

  private finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.server.exchangeDone(this.ex, this.counts);
    this.done.complete();
  }
}

/**
 * The requests of one route group in flight: at most `concurrency` running, then up to
 * `maxQueued` waiting in arrival order, then `overflow` answers at once (503). A slot is freed
 * when its exchange's response is over or its client left; the next waiting exchange starts then.
 */
class RouteGroupAdmission {
  private active = 0;
  private readonly queue: (Exchange | undefined)[] = [];
  private head = 0;
  private stopped = false;

  constructor(
    private readonly server: GatewayServer,
    private readonly concurrency: number,
    private readonly maxQueued: number,
    private readonly overflow: (ex: Exchange) => void,
  ) {
    if (!(concurrency >= 1)) throw new RangeError('server.concurrency must be ≥ 1');
    if (!(maxQueued >= 0)) throw new RangeError('server.max_queued must be ≥ 0');
  }

  admit(ex: Exchange): void {
    if (this.stopped) return;
    if (this.active < this.concurrency) this.run(ex);
    else if (this.queue.length - this.head < this.maxQueued) this.queue.push(ex);
    else this.overflow(ex);
  }

  private run(ex: Exchange): void {
    this.active++;
    this.server.start(ex, this);
  }

  /** One exchange is over: its slot goes to the next waiting one. */
  complete(): void {
    this.active--;
    if (this.stopped || this.queue.length - this.head === 0) return;
    const next = this.queue[this.head] as Exchange;
    this.queue[this.head] = undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.run(next);
  }

  /** The pipeline ended (server closing): waiting exchanges are dropped, nothing new starts. */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.head = 0;
  }
}
