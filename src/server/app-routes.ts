/**
 * The server's side of routing that is not the lookup itself: the uWS method names, the
 * method of a request, the access rule a request is checked with, the readiness hold, and the
 * 404 / 405 answers, and the dashboard's static files (served before any route lookup).
 */
import { of, switchMap, take, type Observable } from 'rxjs';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { GatewayError } from '../base/errors.js';
import { jsonReply, type HeaderList } from '../base/http.js';
import type { RouteAccess, RouteHandler, RouteSpec } from '../base/routes.js';
import { statusLine, type ResponseObserver } from './app-response.js';

/** The gateway's readiness, for routes declared `holdUntilReady`. */
export interface ReadinessGate {
  readonly ready: boolean;
  /** Emits (once) when ready. */
  readonly ready$: Observable<unknown>;
}

/** uWS' route registration of each method. */
export const UWS_METHODS: Readonly<Record<string, 'get' | 'post' | 'put' | 'del' | 'patch' | 'options' | 'head'>> = {
  GET: 'get',
  POST: 'post',
  PUT: 'put',
  DELETE: 'del',
  PATCH: 'patch',
  OPTIONS: 'options',
  HEAD: 'head',
};

/** What answers a request no route (not even a wildcard) matches. */
export const UNROUTED: RouteSpec = { method: '*', path: '/*', access: 'open', headers: [], admission: 'direct' };

/**
 * Upper-case method of a uWS request without allocating for the usual ones (uWS gives the method
 * lower-cased).
 */
export function methodOf(req: HttpRequest): string {
  const m = req.getMethod();
  switch (m) {
    case 'get':
      return 'GET';
    case 'post':
      return 'POST';
    case 'delete':
      return 'DELETE';
    case 'put':
      return 'PUT';
    case 'options':
      return 'OPTIONS';
    case 'patch':
      return 'PATCH';
    case 'head':
      return 'HEAD';
    default:
      return m.toUpperCase();
  }
}

/** `handler`, run once `readiness` is ready (at once if it is by then). */
export function heldUntilReady(handler: RouteHandler, readiness: ReadinessGate): RouteHandler {
  return (i, p) => (readiness.ready ? handler(i, p) : readiness.ready$.pipe(take(1), switchMap(() => handler(i, p))));
}

/**
 * The access rule a request to `spec` is checked with: the spec's, except that CORS preflights
 * (`OPTIONS`) are open everywhere — a browser sends them without credentials
 * (https://fetch.spec.whatwg.org/#cors-preflight-request).
 */
export function accessOf(method: string, spec: RouteSpec): RouteAccess {
  return method === 'OPTIONS' ? 'open' : spec.access;
}

/** 404 `NOT_FOUND` for a request no route serves. */
export const notFound: RouteHandler = (input) => of(jsonReply(404, new GatewayError('NOT_FOUND', `No route for ${input.method} ${input.path}`).toRest()));

/** 405 `METHOD_NOT_ALLOWED` with `Allow` (RFC 9110 §15.5.6), for a path served for other methods. */
export function notAllowed(allow: string): RouteHandler {
  return (input) =>
    of(
      jsonReply(405, new GatewayError('METHOD_NOT_ALLOWED', `Method ${input.method} not allowed on ${input.path}`).toRest(), [
        ['Content-Type', 'application/json'],
        ['Allow', allow],
      ]),
    );
}

/** A static file reply: `body` is empty for HEAD and 304 (then `Content-Length` is not sent). */
export type StaticFiles = (
  method: string,
  path: string,
  acceptEncoding: string,
  ifNoneMatch: string,
) => { readonly status: number; readonly headers: HeaderList; readonly body: Buffer | string };

/**
 * Answers a request for the dashboard's static files at once from memory (`files`; none → 404),
 * outside the request pipelines and the access gate (they hold no data).
 */
export function serveStaticFile(res: HttpResponse, req: HttpRequest, files: StaticFiles | undefined, onResponse: ResponseObserver | undefined): void {
  const method = req.getMethod().toUpperCase();
  const path = req.getUrl();
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
  onResponse?.(path, method, r.status, (performance.now() - started) / 1000);
}
