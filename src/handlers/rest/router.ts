/**
 * A small REST router for the JSON management surfaces (`/api/...`, `/v1/...`): method + path
 * pattern (`/api/mcp/client/:id`) → async handler. Bodies are parsed as JSON here; every error is
 * answered as `{"error","code","details"}` with the registry's HTTP status (DESIGN.md §6).
 */
import { Observable } from 'rxjs';
import { jsonDepthExceeded, nestingTooDeep } from '../../codecs/depth.js';
import { GatewayError } from '../../base/errors.js';
import { jsonReply, type HeaderList, type HttpEffect, type HttpInput } from '../../base/http.js';
import type { Tracing } from '../../telemetry/tracing.js';
import type { Logger } from '../../log/logger.js';
import type * as t from 'io-ts';
import type { JsonSchema } from '../../codecs/schema.js';

/**
 * What the OpenAPI document says about a route: generated from the same io-ts codecs
 * that validate the request, so the document cannot drift from the code.
 */
export interface RouteDoc {
  readonly summary: string;
  /** OpenAPI tag (group). */
  readonly tag: string;
  /** The request body codec (the one the handler decodes with). */
  readonly body?: t.Mixed;
  readonly query?: Readonly<Record<string, { readonly description: string; readonly schema?: JsonSchema; readonly required?: boolean }>>;
  /** Status → description and body (a codec or a JSON Schema). */
  readonly responses: Readonly<Record<number, { readonly description: string; readonly schema?: t.Mixed | JsonSchema }>>;
  /** Who may call it (access control); default `user`. */
  readonly access?: 'open' | 'user' | 'admin' | 'signature';
}

/** A registered route as the OpenAPI generator sees it. */
export interface DocumentedRoute {
  readonly method: string;
  /** Pattern with `:param` segments. */
  readonly pattern: string;
  readonly doc: RouteDoc | undefined;
}

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

interface Route {
  readonly method: string;
  readonly pattern: string;
  readonly segments: readonly string[];
  readonly handler: RestHandler;
  readonly doc: RouteDoc | undefined;
}

/** Replies `status` with a JSON body. */
export function ok(body: unknown, status = 200): RestReply {
  return { status, body };
}

export class RestRouter {
  private readonly routes: Route[] = [];

  constructor(
    private readonly log: Logger,
    private readonly tracing?: Tracing,
  ) {}

  /**
   * Registers `handler` for `method` and `pattern` (segments starting with `:` are parameters);
   * `doc` describes it in the OpenAPI document.
   */
  on(method: string, pattern: string, handler: RestHandler, doc?: RouteDoc): this {
    this.routes.push({ method: method.toUpperCase(), pattern, segments: pattern.split('/').filter(Boolean), handler, doc });
    return this;
  }

  /** Every registered route, in registration order. */
  documented(): DocumentedRoute[] {
    return this.routes.map((r) => ({ method: r.method, pattern: r.pattern, doc: r.doc }));
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
    const parts = path.split('/').filter(Boolean);
    let methodMismatch = false;
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let matched = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = route.segments[i] as string;
        const part = parts[i] as string;
        if (seg.startsWith(':')) {
          try {
            params[seg.slice(1)] = decodeURIComponent(part);
          } catch {
            matched = false;
            break;
          }
        } else if (seg !== part) {
          matched = false;
          break;
        }
      }
      if (!matched) continue;
      if (route.method !== method) {
        methodMismatch = true;
        continue;
      }
      return { route, params };
    }
    return methodMismatch ? 'method' : undefined;
  }

  /** Whether some route serves this path (any method). */
  handles(path: string): boolean {
    return this.match('\u0000', path) !== undefined;
  }

  /** The HTTP handler: one JSON reply effect per request. */
  handle(input: HttpInput): Observable<HttpEffect> {
    return new Observable<HttpEffect>((sub) => {
      let live = true;
      this.dispatch(input)
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

  private async dispatch(input: HttpInput): Promise<HttpEffect> {
    try {
      const m = this.match(input.method, input.path);
      if (m === undefined) throw new GatewayError('NOT_FOUND', `No route for ${input.method} ${input.path}`);
      if (m === 'method') throw new GatewayError('METHOD_NOT_ALLOWED', `Method ${input.method} not allowed on ${input.path}`);
      if (this.tracing?.enabled === true) return await this.traced(this.tracing, m.route, m.params, input);
      return await this.run(m.route, m.params, input);
    } catch (err) {
      return this.failure(err, input);
    }
  }

  /** A REST request inside a SERVER span (`{method} {route pattern}`). */
  private async traced(tracing: Tracing, route: Route, params: Record<string, string>, input: HttpInput): Promise<HttpEffect> {
    const scope = tracing.startRest(input.method, route.pattern, input.headers);
    let effect: HttpEffect;
    try {
      effect = await this.run(route, params, input);
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

  private async run(route: Route, params: Record<string, string>, input: HttpInput): Promise<HttpEffect> {
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
    const reply = await route.handler({
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
