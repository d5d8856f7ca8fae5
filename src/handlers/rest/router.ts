/**
 * A small REST router for the JSON management surfaces (`/api/...`, `/v1/...`): method + path
 * pattern (`/api/mcp/client/:id`) + the route's rules → async handler. Bodies are parsed as JSON
 * here; every error is answered as `{"error","code","details"}` with the registry's HTTP status.
 */
import { Observable, of } from 'rxjs';
import { jsonDepthExceeded, nestingTooDeep } from '../../codecs/depth.js';
import { GatewayError } from '../../base/errors.js';
import { jsonReply, type HeaderField, type HeaderList, type HttpEffect, type HttpInput } from '../../base/http.js';
import { RouteTable, type RouteAccess, type RouteDoc, type RouteHandler, type RouteParams, type RouteSpec } from '../../base/routes.js';
import type { Tracing } from '../../telemetry/tracing.js';
import type { Logger } from '../../log/logger.js';

/**
 * What a REST route declares besides its method and path (see {@link RouteSpec}): its access
 * rule, the headers its handler reads beyond those the router kit reads itself
 * ({@link REST_KIT_HEADERS}), whether it is held until the gateway is ready, and its OpenAPI
 * description (with the body codec).
 */
export interface RestRouteRules extends RouteDoc {
  readonly access: RouteAccess;
  readonly headers?: readonly HeaderField[];
  readonly holdUntilReady?: boolean;
}

/**
 * The headers every REST route reads: `Content-Type` (the JSON body check), `Origin` (the reply's
 * CORS echo) and the W3C Trace Context (the route's span).
 */
export const REST_KIT_HEADERS: readonly HeaderField[] = ['contentType', 'origin', 'traceparent', 'tracestate'];

export interface RestRequest {
  readonly method: string;
  readonly path: string;
  /** Path parameters by name (`:id` → `params.id`), URL-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Parsed JSON body, `undefined` when there is none. */
  readonly body: unknown;
  readonly input: HttpInput;
}

export interface RestReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: HeaderList;
}

export type RestHandler = (req: RestRequest) => Promise<RestReply> | RestReply;

/** Replies `status` with a JSON body. */
export function ok(body: unknown, status = 200): RestReply {
  return { status, body };
}

/**
 * Registers REST routes in a {@link RouteTable} (the server's, in a gateway) as full
 * {@link RouteSpec}s of admission `api`; the server looks a request up once and calls the route's
 * handler with its path parameters. {@link handle} does the lookup itself (for tests that run a
 * router without a server).
 */
export class RestRouter {
  constructor(
    private readonly log: Logger,
    private readonly tracing?: Tracing,
    /** Where the routes go (default: a table of this router's own). */
    readonly table: RouteTable<RouteHandler> = new RouteTable<RouteHandler>(),
  ) {}

  /**
   * Registers `handler` for `method` and `pattern` (segments starting with `:` are parameters)
   * with `rules`: its access rule, the headers it reads, its OpenAPI description.
   * @throws Error when the method and pattern are registered already or the rules are invalid.
   */
  on(method: string, pattern: string, handler: RestHandler, rules: RestRouteRules): this {
    const { access, headers, holdUntilReady, ...doc } = rules;
    const spec: RouteSpec = {
      method: method.toUpperCase(),
      path: pattern,
      access,
      headers: headers === undefined ? REST_KIT_HEADERS : [...REST_KIT_HEADERS, ...headers],
      admission: 'api',
      ...(holdUntilReady === true ? { holdUntilReady } : {}),
      doc,
    };
    this.table.add(spec, (input, params) => this.handleRoute(pattern, handler, params, input));
    return this;
  }

  /** The HTTP handler of a request not looked up yet: one JSON reply effect. */
  handle(input: HttpInput): Observable<HttpEffect> {
    const m = this.table.match(input.method, input.path);
    if (m === undefined) return of(this.failure(new GatewayError('NOT_FOUND', `No route for ${input.method} ${input.path}`), input));
    if (m.allow !== undefined) return of(this.failure(new GatewayError('METHOD_NOT_ALLOWED', `Method ${input.method} not allowed on ${input.path}`), input));
    return m.entry.handler(input, m.params);
  }

  /** One REST route's request: one JSON reply effect. */
  private handleRoute(pattern: string, handler: RestHandler, params: RouteParams, input: HttpInput): Observable<HttpEffect> {
    return new Observable<HttpEffect>((sub) => {
      let live = true;
      this.dispatch(pattern, handler, params, input)
        .then((effect) => {
          if (!live) return;
          sub.next(effect);
          sub.complete();
        })
        .catch((err: unknown) => sub.error(err));
      return () => {
        live = false;
      };
    });
  }

  private async dispatch(pattern: string, handler: RestHandler, params: RouteParams, input: HttpInput): Promise<HttpEffect> {
    try {
      if (this.tracing?.enabled === true) return await this.traced(this.tracing, pattern, handler, params, input);
      return await this.run(handler, params, input);
    } catch (err) {
      return this.failure(err, input);
    }
  }

  /** A REST request inside a SERVER span (`{method} {route pattern}`). */
  private async traced(tracing: Tracing, pattern: string, handler: RestHandler, params: RouteParams, input: HttpInput): Promise<HttpEffect> {
    const scope = tracing.startRest(input.method, pattern, input.headers);
    let effect: HttpEffect;
    try {
      // the span is the active context: provider calls become its children, log lines carry its ids
      effect = await tracing.within(scope, () => this.run(handler, params, input));
    } catch (err) {
      effect = this.failure(err, input);
    }
    tracing.endRest(scope, effect.kind === 'reply' ? effect.status : 200);
    return effect;
  }

  private failure(err: unknown, input: HttpInput): HttpEffect {
    if (err instanceof GatewayError) return jsonReply(err.status, err.toRest());
    this.log.error('REST handler failed', { path: input.path, error: err });
    return jsonReply(500, new GatewayError('INTERNAL_ERROR').toRest());
  }

  private async run(handler: RestHandler, params: RouteParams, input: HttpInput): Promise<HttpEffect> {
    let body: unknown;
    if (input.body !== undefined && input.body.length > 0) {
      if (!input.headers.contentType.toLowerCase().includes('application/json')) {
        throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json', { content_type: input.headers.contentType });
      }
      try {
        body = JSON.parse(input.body.toString('utf8'));
      } catch (err) {
        throw new GatewayError('INVALID_JSON', `Request body is not valid JSON: ${(err as Error).message}`);
      }
      // JSON.parse is iterative; validation, the store codec and upstream calls recurse
      const deep = jsonDepthExceeded(input.body);
      if (deep >= 0) throw nestingTooDeep('request body', deep);
    }
    const reply = await handler({
      method: input.method,
      path: input.path,
      params,
      query: new URLSearchParams(input.query),
      body,
      input,
    });
    return jsonReply(reply.status, reply.body, reply.headers ?? [['Content-Type', 'application/json']]);
  }
}
