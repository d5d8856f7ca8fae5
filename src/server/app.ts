/**
 * The uWebSockets.js server: routes, body reading with a size limit, abort handling, and the sink
 * that carries out handlers' {@link HttpEffect}s (corked writes, SSE with backpressure).
 *
 * POST /mcp requests enter the central stream as {@link HttpInput}s and pass `boundedMergeMap`
 * at most `concurrency` in flight, `max_queued` waiting, beyond that HTTP 503 with
 * `Retry-After` and JSON-RPC error -32000. GET streams and DELETE do not take request slots.
 */
import { EMPTY, Observable, Subject, type Subscription } from 'rxjs';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { describePortHolder } from './port-holder.js';
import { boundedMergeMap } from '../streams/bounded-merge-map.js';
import { jsonReply, type HeaderList, type HttpEffect, type HttpHeaders, type HttpInput } from '../base/http.js';
import { GatewayError } from '../base/errors.js';
import type { Logger } from '../log/logger.js';
import type { UwsModule } from './uws.js';
import { attachWebSocket, type WsAccess } from './ws.js';
import type { WsConnection, WsEndpoint, WsEndpointOptions } from '../streams/ws.js';
import type { RequestAuth } from '../base/access.js';
import type { AccessCheck, AccessDecision } from './access.js';

/** Buffered SSE bytes per response beyond which a congested stream is closed. */
const MAX_SSE_BACKLOG_BYTES = 16 * 1024 * 1024;

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

function statusLine(status: number): string {
  return STATUS_TEXT[status] ?? `${status} Status`;
}

/** Per-response state shared by the body reader, the sink and the abort handler. */
interface Exchange {
  readonly res: HttpResponse;
  readonly input: HttpInput;
  /** performance.now() when the request arrived. */
  readonly started: number;
  aborted: boolean;
  ended: boolean;
  streaming: boolean;
  congested: boolean;
  backlogBytes: number;
  /** Stops the handler when the client goes away. */
  cancel: (() => void) | undefined;
  /** Headers the access decision adds to every reply (`X-RateLimit-*`). */
  extraHeaders: HeaderList;
}

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
  readonly onResponse?: (path: string, method: string, status: number, seconds: number) => void;
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

/** The request headers a route may read, filled by {@link readHeaders}; `''` when not sent. */
type MutableHeaders = { -readonly [K in Exclude<keyof HttpHeaders, 'mcpParams'>]-?: string } & { mcpParams?: Record<string, string> };

/**
 * Copies the headers the routes read out of the uWS request (valid only in this callback) with one
 * `forEach` over what the client sent: one native call per header present, instead of one
 * `getHeader` per name we know (21 calls, most of them for headers a request does not carry;
 * ≈ 3 µs of CPU per request here). The first occurrence of a repeated header wins, as with
 * `getHeader`. Header names arrive lower-cased from uWS.
 */
function readHeaders(req: HttpRequest, res: HttpResponse): HttpHeaders {
  const h: MutableHeaders = {
    accept: '',
    contentType: '',
    origin: '',
    host: '',
    mcpSessionId: '',
    mcpProtocolVersion: '',
    mcpMethod: '',
    mcpName: '',
    lastEventId: '',
    authorization: '',
    apiKey: '',
    virtualKey: '',
    includeClients: '',
    includeTools: '',
    traceparent: '',
    tracestate: '',
    apiVersion: '',
    githubEvent: '',
    githubDelivery: '',
    hubSignature256: '',
    toolMode: '',
    cookie: '',
    remoteAddress: '',
  };
  req.forEach((name, value) => {
    switch (name) {
      case 'accept':
        if (h.accept === '') h.accept = value;
        break;
      case 'content-type':
        if (h.contentType === '') h.contentType = value;
        break;
      case 'origin':
        if (h.origin === '') h.origin = value;
        break;
      case 'host':
        if (h.host === '') h.host = value;
        break;
      case 'mcp-session-id':
        if (h.mcpSessionId === '') h.mcpSessionId = value;
        break;
      case 'mcp-protocol-version':
        if (h.mcpProtocolVersion === '') h.mcpProtocolVersion = value;
        break;
      case 'last-event-id':
        if (h.lastEventId === '') h.lastEventId = value;
        break;
      case 'mcp-method':
        if (h.mcpMethod === '') h.mcpMethod = value;
        break;
      case 'mcp-name':
        if (h.mcpName === '') h.mcpName = value;
        break;
      case 'authorization':
        if (h.authorization === '') h.authorization = value;
        break;
      case 'x-api-key':
        if (h.apiKey === '') h.apiKey = value;
        break;
      case 'x-bf-vk':
        if (h.virtualKey === '') h.virtualKey = value;
        break;
      case 'x-bf-mcp-include-clients':
        if (h.includeClients === '') h.includeClients = value;
        break;
      case 'x-bf-mcp-include-tools':
        if (h.includeTools === '') h.includeTools = value;
        break;
      case 'traceparent':
        if (h.traceparent === '') h.traceparent = value;
        break;
      case 'tracestate':
        if (h.tracestate === '') h.tracestate = value;
        break;
      case 'x-api-version':
        if (h.apiVersion === '') h.apiVersion = value;
        break;
      case 'x-github-event':
        if (h.githubEvent === '') h.githubEvent = value;
        break;
      case 'x-github-delivery':
        if (h.githubDelivery === '') h.githubDelivery = value;
        break;
      case 'x-hub-signature-256':
        if (h.hubSignature256 === '') h.hubSignature256 = value;
        break;
      case 'x-tributary-tool-mode':
        if (h.toolMode === '') h.toolMode = value;
        break;
      case 'cookie':
        if (h.cookie === '') h.cookie = value;
        break;
      default:
        // MCP 2026-07-28 `Mcp-Param-{Name}` (x-mcp-header tool arguments), first occurrence wins
        if (name.startsWith('mcp-param-')) {
          const params = (h.mcpParams ??= {});
          const key = name.slice(10);
          if (!Object.hasOwn(params, key)) params[key] = value;
        }
        break;
    }
  });
  // only Basic logins and the dashboard's sign-in need it (failed attempts are throttled per address)
  const authorization = h.authorization;
  if ((authorization.length > 6 && authorization.slice(0, 6).toLowerCase() === 'basic ') || req.getUrl() === '/api/ui/session') {
    h.remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
  }
  return h;
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

  constructor(
    private readonly uws: UwsModule,
    private readonly routes: ServerRoutes,
    private readonly options: ServerOptions,
    private readonly log: Logger,
  ) {
    this.app = uws.App();
    this.pipelines.push(this.pipeline(this.posts$, this.routes.mcpPost), this.pipeline(this.api$, this.routes.rest));

    this.app
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
    return attachWebSocket(this.app, path, endpoint, options, this.log, access);
  }

  /**
   * Starts listening, exclusively (`LIBUS_LISTEN_EXCLUSIVE_PORT`: no `SO_REUSEPORT`), so a second
   * gateway on a taken port fails here instead of having the kernel split connections between
   * the two (https://github.com/uNetworking/uSockets/blob/master/src/libusockets.h, `LIBUS_LISTEN_EXCLUSIVE_PORT`).
   * Resolves with the bound port.
   * @throws Error naming the host, port and, when procfs tells, the pid and command line of the process holding it.
   */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      // uWS.js accepts (host, port, options, cb); its typings only declare (port, options, cb)
      const listen = this.app.listen.bind(this.app) as unknown as (host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void) => void;
      // the runtime exports the flag as a number (1); the typings only as the enum ListenOptions
      const exclusive = (this.uws as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;
      listen(this.options.host, this.options.port, exclusive, (socket) => {
        if (!socket) {
          const why = this.options.port === 0 ? 'address not permitted' : describePortHolder(this.options.port);
          reject(new Error(`cannot listen on ${this.options.host}:${this.options.port} (${why})`));
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
      this.tooLarge(ex, declared);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (ex.ended || ex.aborted) return;
      size += chunk.byteLength;
      if (size > limit) {
        this.tooLarge(ex, size);
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

  private tooLarge(ex: Exchange, size: number): void {
    const err = new GatewayError('BODY_TOO_LARGE', `Request body too large: limit is ${this.options.maxBodyBytes} bytes`, {
      limit_bytes: this.options.maxBodyBytes,
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

  private writeHeaders(res: HttpResponse, headers: HeaderList, origin: string, extra: HeaderList): void {
    for (const [k, v] of headers) res.writeHeader(k, v);
    for (const [k, v] of extra) res.writeHeader(k, v);
    if (origin !== '') {
      res.writeHeader('Access-Control-Allow-Origin', origin);
      res.writeHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After');
      res.writeHeader('Vary', 'Origin');
    }
  }

  /** Carries out one effect on the response; a no-op after abort or end. */
  private apply(ex: Exchange, effect: HttpEffect): void {
    if (ex.aborted || ex.ended) return;
    const res = ex.res;
    // CORS headers only for origins the handler let through (it answers 403 otherwise)
    const origin = ex.input.headers.origin;
    switch (effect.kind) {
      case 'reply':
        ex.ended = true;
        this.options.onResponse?.(ex.input.path, ex.input.method, effect.status, (performance.now() - ex.started) / 1000);
        res.cork(() => {
          res.writeStatus(statusLine(effect.status));
          this.writeHeaders(res, effect.headers, effect.status === 403 ? '' : origin, ex.extraHeaders);
          if (effect.status === 202 || effect.status === 204) res.endWithoutBody(0);
          else res.end(effect.body);
        });
        return;
      case 'sse-start':
        ex.streaming = true;
        this.options.onResponse?.(ex.input.path, ex.input.method, 200, (performance.now() - ex.started) / 1000);
        res.cork(() => {
          res.writeStatus('200 OK');
          this.writeHeaders(res, effect.headers, origin, ex.extraHeaders);
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
            this.log.warn('closing a congested SSE stream', { path: ex.input.path, backlog_bytes: ex.backlogBytes });
            ex.ended = true;
            ex.cancel?.();
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
}
