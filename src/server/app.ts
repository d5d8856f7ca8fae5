/**
 * The uWebSockets.js server: routes, body reading with a size limit, abort handling, and the
 * request pipelines. Header reading is in `app-headers.ts`; the sink that carries out handlers'
 * {@link HttpEffect}s (corked writes, SSE with backpressure) is in `app-response.ts`.
 *
 * POST /mcp requests enter the central stream as {@link HttpInput}s and pass `boundedMergeMap`
 * at most `concurrency` in flight, `max_queued` waiting, beyond that HTTP 503 with
 * `Retry-After` and JSON-RPC error -32000. GET streams and DELETE do not take request slots.
 */
import { EMPTY, Observable, Subject, type Subscription } from 'rxjs';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocketBehavior } from 'uWebSockets.js';
import { describePortHolder } from './port-holder.js';
import { boundedMergeMap } from '../streams/bounded-merge-map.js';
import { jsonReply, type HeaderList, type HttpEffect, type HttpInput } from '../base/http.js';
import { GatewayError } from '../base/errors.js';
import type { Logger } from '../log/logger.js';
import type { UwsModule } from './uws.js';
import { attachWebSocket, type WsAccess } from './ws.js';
import type { WsConnection, WsEndpoint, WsEndpointOptions } from '../streams/ws.js';
import type { RequestAuth } from '../base/access.js';
import type { AccessCheck, AccessDecision } from './access.js';
import { readHeaders } from './app-headers.js';
import { applyEffect, replyTooLarge, statusLine, type Exchange, type ResponseObserver } from './app-response.js';
import type { RemoteEntry } from './worker-pool.js';
import type { WorkerWsRoute } from './worker-protocol.js';

export type RouteHandler = (input: HttpInput) => Observable<HttpEffect>;

export interface ServerRoutes {
  readonly mcpPost: RouteHandler;
  readonly mcpGet: RouteHandler;
  readonly mcpDelete: RouteHandler;
  readonly mcpOptions: RouteHandler;
  readonly health: RouteHandler;
  readonly metrics: RouteHandler;
  /** `/api/*` and `/v1/*`. */
  readonly rest: RouteHandler;
}

export interface ServerOptions {
  /** Called for every response: path, method, status, seconds since the request arrived. */
  readonly onResponse?: ResponseObserver;
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly concurrency: number;
  readonly maxQueued: number;
  /** The access gate; every request passes it before its body is handled (none: all admitted). */
  readonly access?: AccessCheck;
  /**
   * The dashboard's static files at `/ui` and `/ui/*` (public: they hold no data; see
   * `handlers/ui/static.ts`). Answered at once from memory, outside the request pipelines.
   */
  readonly staticFiles?: StaticFiles;
}

/** A static file reply: `body` is empty for HEAD and 304 (then `Content-Length` is not sent). */
export type StaticFiles = (
  method: string,
  path: string,
  acceptEncoding: string,
  ifNoneMatch: string,
) => { readonly status: number; readonly headers: HeaderList; readonly body: Buffer | string };

type UwsHandler = (res: HttpResponse, req: HttpRequest) => void;

interface HttpRoute {
  /** Lower-case method as uWS reports it (`delete` for `del`), or `any`. */
  readonly method: string;
  readonly pattern: string;
  readonly handler: UwsHandler;
}

interface RouteRecorder {
  post(pattern: string, handler: UwsHandler): RouteRecorder;
  get(pattern: string, handler: UwsHandler): RouteRecorder;
  del(pattern: string, handler: UwsHandler): RouteRecorder;
  options(pattern: string, handler: UwsHandler): RouteRecorder;
  any(pattern: string, handler: UwsHandler): RouteRecorder;
}

export class GatewayServer {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | undefined;
  /** POST /mcp requests: the "mcp" route group. */
  private readonly posts$ = new Subject<Exchange>();
  /** Management and REST requests (`/api/*`, `/v1/*`): the "api" route group. */
  private readonly api$ = new Subject<Exchange>();
  private readonly pipelines: Subscription[] = [];
  private readonly open = new Set<Exchange>();
  /** Requests (other than GET/OPTIONS) accepted and not yet answered. */
  activeRequests = 0;
  /** Called when {@link activeRequests} drops to 0 (see {@link whenIdle}). */
  readonly #idleWaiters = new Set<() => void>();
  port = 0;
  /** HTTP requests and WebSocket upgrades that arrived on this server's own socket, and those worker threads carried (`server.workers`). */
  requestsOwn = 0;
  requestsCarried = 0;
  private readonly httpRoutes: HttpRoute[] = [];
  private readonly wsRoutes = new Map<string, { readonly behavior: WebSocketBehavior<unknown>; readonly route: WorkerWsRoute }>();

  constructor(
    private readonly uws: UwsModule,
    private readonly routes: ServerRoutes,
    private readonly options: ServerOptions,
    private readonly log: Logger,
  ) {
    this.app = uws.App();
    this.pipelines.push(this.pipeline(this.posts$, this.routes.mcpPost), this.pipeline(this.api$, this.routes.rest));

    // registered on the uWS App and kept in a table, so requests carried by worker threads take the same routes
    this.routeTable
      .post('/mcp', (res, req) => this.accept(res, req, 'POST', (ex) => this.posts$.next(ex)))
      .get('/mcp', (res, req) => this.accept(res, req, 'GET', (ex) => this.run(ex, this.routes.mcpGet).subscribe()))
      .del('/mcp', (res, req) => this.accept(res, req, 'DELETE', (ex) => this.run(ex, this.routes.mcpDelete).subscribe()))
      .options('/mcp', (res, req) => this.accept(res, req, 'OPTIONS', (ex) => this.run(ex, this.routes.mcpOptions).subscribe()))
      .any('/api/*', (res, req) => this.accept(res, req, req.getMethod().toUpperCase(), (ex) => this.api$.next(ex)))
      .any('/v1/*', (res, req) => this.accept(res, req, req.getMethod().toUpperCase(), (ex) => this.api$.next(ex)))
      // OAuth protected-resource metadata (RFC 9728) is served by the REST router
      .any('/.well-known/*', (res, req) => this.accept(res, req, req.getMethod().toUpperCase(), (ex) => this.api$.next(ex)))
      .get('/health', (res, req) => this.accept(res, req, 'GET', (ex) => this.run(ex, this.routes.health).subscribe()))
      .get('/health/*', (res, req) => this.accept(res, req, 'GET', (ex) => this.run(ex, this.routes.health).subscribe()))
      .get('/metrics', (res, req) => this.accept(res, req, 'GET', (ex) => this.run(ex, this.routes.metrics).subscribe()))
      .any('/mcp', (res, req) => this.accept(res, req, req.getMethod().toUpperCase(), (ex) =>
        this.apply(ex, jsonReply(405, new GatewayError('METHOD_NOT_ALLOWED', `Method ${ex.input.method} not allowed on /mcp`).toRest(), [
          ['Content-Type', 'application/json'],
          ['Allow', 'GET, POST, DELETE, OPTIONS'],
        ])),
      ))
      .any('/ui', (res, req) => this.serveStatic(res, req))
      .any('/ui/*', (res, req) => this.serveStatic(res, req))
      .any('/*', (res, req) => this.accept(res, req, req.getMethod().toUpperCase(), (ex) =>
        this.apply(ex, jsonReply(404, new GatewayError('NOT_FOUND', `No route for ${ex.input.method} ${ex.input.path}`).toRest())),
      ));
  }

  /** Registers each route on the uWS `App` and keeps it for {@link remote}. */
  private get routeTable(): RouteRecorder {
    const table = this.httpRoutes;
    const app = this.app;
    const own = (handler: UwsHandler): UwsHandler => (res, req) => {
      this.requestsOwn++;
      handler(res, req);
    };
    const recorder: RouteRecorder = {
      post: (pattern, handler) => add('post', pattern, handler, () => app.post(pattern, own(handler))),
      get: (pattern, handler) => add('get', pattern, handler, () => app.get(pattern, own(handler))),
      del: (pattern, handler) => add('delete', pattern, handler, () => app.del(pattern, own(handler))),
      options: (pattern, handler) => add('options', pattern, handler, () => app.options(pattern, own(handler))),
      any: (pattern, handler) => add('any', pattern, handler, () => app.any(pattern, own(handler))),
    };
    function add(method: string, pattern: string, handler: UwsHandler, register: () => void): RouteRecorder {
      table.push({ method, pattern, handler });
      register();
      return recorder;
    }
    return recorder;
  }

  /**
   * What worker threads' traffic enters by (`server.workers`): the same route table, WebSocket
   * endpoints and access checks as this server's own socket. Routes are matched as uWS does for
   * this table: an exact path before a wildcard, a longer wildcard prefix first, a route for the
   * method before `any`.
   */
  remote(): RemoteEntry {
    return {
      http: (res, req) => {
        this.requestsCarried++;
        const method = req.getCaseSensitiveMethod().toLowerCase();
        const url = req.getUrl();
        let best: HttpRoute | undefined;
        let bestScore = -1;
        for (const r of this.httpRoutes) {
          if (r.method !== method && r.method !== 'any') continue;
          let score: number;
          if (r.pattern === url) score = 1_000_000;
          else if (r.pattern.endsWith('/*') && url.startsWith(r.pattern.slice(0, -1))) score = r.pattern.length * 10;
          else continue;
          if (r.method === method) score += 1;
          if (score > bestScore) {
            best = r;
            bestScore = score;
          }
        }
        best?.handler(res, req);
      },
      ws: (path) => this.wsRoutes.get(path)?.behavior,
      wsRoutes: () => [...this.wsRoutes.values()].map((r) => r.route),
    };
  }

  private serveStatic(res: HttpResponse, req: HttpRequest): void {
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const files = this.options.staticFiles;
    if (!files) {
      res.writeStatus(statusLine(404)).writeHeader('Content-Type', 'application/json').end(JSON.stringify(new GatewayError('NOT_FOUND', `No route for ${method} ${path}`).toRest()));
      return;
    }
    const started = performance.now();
    const r = files(method, path, req.getHeader('accept-encoding'), req.getHeader('if-none-match'));
    res.cork(() => {
      res.writeStatus(statusLine(r.status));
      for (const [k, v] of r.headers) res.writeHeader(k, v);
      if (r.status === 304 || method === 'HEAD') res.endWithoutBody();
      else res.end(r.body);
    });
    this.options.onResponse?.(path, method, r.status, (performance.now() - started) / 1000);
  }

  /** Serves a WebSocket endpoint at `path` (call before {@link listen}); returns its open connections. */
  attachWs(path: string, endpoint: WsEndpoint, options: WsEndpointOptions, access?: WsAccess): Set<WsConnection> {
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
    return attachWebSocket(recorder, path, endpoint, options, this.log, access);
  }

  /**
   * Starts listening, exclusively (`LIBUS_LISTEN_EXCLUSIVE_PORT`: no `SO_REUSEPORT`), so a second
   * gateway on a taken port fails here instead of having the kernel split connections between
   * the two (https://github.com/uNetworking/uSockets/blob/master/src/libusockets.h, `LIBUS_LISTEN_EXCLUSIVE_PORT`).
   * Resolves with the bound port.
   * @throws Error naming the host, port and, when procfs tells, the pid and command line of the process holding it.
   */
  listen(): Promise<number> {
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

  /** Ends every open response (SSE streams included) and the request pipeline. */
  closeAll(): void {
    for (const ex of this.open) {
      ex.cancel?.();
      if (!ex.aborted && !ex.ended) {
        ex.ended = true;
        ex.res.cork(() => {
          if (ex.streaming) ex.res.end(undefined, true);
          else ex.res.writeStatus(statusLine(503)).end(JSON.stringify(new GatewayError('SHUTTING_DOWN').toRest()), true);
        });
      }
    }
    this.open.clear();
    for (const p of this.pipelines) p.unsubscribe();
    this.posts$.complete();
    this.api$.complete();
  }

  /**
   * One route group's pipeline: exchanges pass `boundedMergeMap` (at most `concurrency` handled at
   * once, `maxQueued` waiting, then 503 with `Retry-After`).
   */
  private pipeline(source: Subject<Exchange>, handler: RouteHandler): Subscription {
    const { concurrency, maxQueued } = this.options;
    return source
      .pipe(
        boundedMergeMap((ex) => this.run(ex, handler), {
          concurrency,
          maxQueued,
          overflow: (ex) => {
            const err = new GatewayError('OVERLOADED', 'Gateway overloaded: too many requests in flight, retry later', {
              concurrency,
              max_queued: maxQueued,
            });
            const body = ex.input.path === '/mcp' ? { jsonrpc: '2.0', id: null, error: err.toJsonRpc() } : err.toRest();
            this.apply(ex, jsonReply(503, body, [['Content-Type', 'application/json'], ['Retry-After', '1']]));
            return EMPTY;
          },
        }),
      )
      .subscribe({ error: (err: unknown) => this.log.error('request pipeline failed', { error: err }) });
  }

  /**
   * Copies what is needed out of the uWS request (valid only in this callback), reads the body
   * for POST/PUT/PATCH with the size limit, then hands the exchange to `next`.
   */
  private accept(res: HttpResponse, req: HttpRequest, method: string, next: (ex: Exchange) => void): void {
    const headers = readHeaders(req, res);
    const url = req.getUrl();
    const query = req.getQuery() ?? '';
    const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    const ex: Exchange = {
      res,
      input: { method, path: url, query, headers, body: undefined },
      started: performance.now(),
      aborted: false,
      ended: false,
      streaming: false,
      congested: false,
      backlogBytes: 0,
      cancel: undefined,
      extraHeaders: [],
    };
    res.onAborted(() => {
      ex.aborted = true;
      this.open.delete(ex);
      ex.cancel?.();
    });
    // The access decision is taken from the headers while the body is read; a refusal known at
    // once is answered without reading the body at all.
    const decision = this.options.access?.(ex.input);
    let admitted = decision === undefined;
    let bodyRead = !hasBody;
    let handedOn = false;
    const proceed = (): void => {
      if (handedOn || !admitted || !bodyRead || ex.ended || ex.aborted) return;
      handedOn = true;
      next(ex);
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
   * when the response is over (or the client left), freeing its slot in the pipeline.
   */
  private run(ex: Exchange, handler: RouteHandler): Observable<never> {
    return new Observable<never>((outer) => {
      if (ex.aborted) {
        outer.complete();
        return undefined;
      }
      const counts = ex.input.method !== 'GET' && ex.input.method !== 'OPTIONS';
      if (counts) this.activeRequests++;
      this.open.add(ex);
      let sub: Subscription | undefined;
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        if (counts && --this.activeRequests === 0) for (const wake of this.#idleWaiters) wake();
        this.open.delete(ex);
        outer.complete();
      };
      ex.cancel = () => {
        sub?.unsubscribe();
        finish();
      };
      try {
        sub = handler(ex.input).subscribe({
          next: (effect) => this.apply(ex, effect),
          error: (err: unknown) => {
            this.log.error('handler failed', { path: ex.input.path, error: err });
            if (!ex.ended && !ex.streaming) this.apply(ex, jsonReply(500, new GatewayError('INTERNAL_ERROR').toRest()));
            else if (!ex.ended) this.apply(ex, { kind: 'end' });
            finish();
          },
          complete: () => {
            if (!ex.ended && !ex.aborted) this.apply(ex, { kind: 'end' });
            finish();
          },
        });
      } catch (err) {
        this.log.error('handler threw', { path: ex.input.path, error: err });
        if (!ex.ended) this.apply(ex, jsonReply(500, new GatewayError('INTERNAL_ERROR').toRest()));
        finish();
      }
      if (finished) sub?.unsubscribe();
      return () => sub?.unsubscribe();
    });
  }

  /** Carries out one effect on the response; a no-op after abort or end. */
  private apply(ex: Exchange, effect: HttpEffect): void {
    applyEffect(ex, effect, this.log, this.options.onResponse);
  }
}
