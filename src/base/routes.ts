/**
 * Routes carry their rules. Every HTTP route (and WebSocket upgrade) of the gateway is one
 * {@link RouteSpec}: method, path pattern, the access rule, the request headers its handler reads,
 * its body codec, which bounded pipeline admits it, and its OpenAPI description, declared in one
 * place where the surface registers its handler. The server reads only the declared headers, the
 * access gate takes the rule from the spec, the admission pipelines take the class from it and the
 * OpenAPI document lists the specs; nothing maps URL strings to rules elsewhere. The shape follows
 * fastify's route options (https://fastify.dev/docs/latest/Reference/Routes/#routes-options).
 *
 * {@link RouteTable} holds the specs with their handlers: exact paths in a `Map` (one lookup per
 * request), `:param` patterns in registration order, and `/prefix/*` wildcards (longest first) for
 * what answers an unknown path.
 */
import type * as t from 'io-ts';
import type { Observable } from 'rxjs';
import type { RequestAuth } from './access.js';
import { HEADER_FIELDS, type HeaderField, type HeaderList, type HttpEffect, type HttpInput } from './http.js';

/**
 * Who may use a route:
 * - `open`: no credentials (health probes, CORS preflights, the OpenAPI document, OAuth metadata,
 *   the dashboard sign-in, which checks the credential in its body);
 * - `signature`: no credentials at the gate; the handler verifies a signature of the body (webhooks);
 * - `tools`: any valid credential, virtual keys included (they exist to call tools);
 * - `user`: any valid credential except virtual keys;
 * - `admin`: role admin;
 * - `metrics`: `open`, or `user` when `auth.metrics_require_auth` is set.
 */
export type RouteAccess = 'open' | 'signature' | 'tools' | 'user' | 'admin' | 'metrics';

export const ROUTE_ACCESS: readonly RouteAccess[] = ['open', 'signature', 'tools', 'user', 'admin', 'metrics'];

/**
 * Which bounded pipeline admits the route's requests (each: `server.concurrency` in flight,
 * `server.max_queued` waiting, then 503 `OVERLOADED` with `Retry-After`): `mcp` (POST /mcp),
 * `api` (management and REST), or `direct` (no request slot: streams, health, metrics,
 * preflights). Request rate limits (`X-RateLimit-*`) apply to every route whose access is not
 * `open`/`signature`, per caller.
 */
export type Admission = 'mcp' | 'api' | 'direct';

/** A JSON Schema object (as produced by `codecs/schema.ts`). */
export type JsonSchemaObject = { readonly [k: string]: unknown };

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
  readonly query?: Readonly<Record<string, { readonly description: string; readonly schema?: JsonSchemaObject; readonly required?: boolean }>>;
  /** Status → description and body (a codec or a JSON Schema). */
  readonly responses: Readonly<Record<number, { readonly description: string; readonly schema?: t.Mixed | JsonSchemaObject }>>;
}

/** One route's declaration. */
export interface RouteSpec {
  /** Upper-case method, or `*` for any. */
  readonly method: string;
  /**
   * `/exact/path`, a pattern with `:param` segments (`/api/mcp/client/:id`), or a wildcard
   * `/prefix/*` (matches `/prefix` and everything under it).
   */
  readonly path: string;
  readonly access: RouteAccess;
  /** The request headers the handler (and the reply's CORS echo, `origin`) reads; no others are read for it. */
  readonly headers: readonly HeaderField[];
  readonly admission: Admission;
  /** How refusals before the handler (access, overload) are written: a JSON-RPC error or the REST body; default `rest`. */
  readonly errors?: 'json-rpc' | 'rest';
  /** Held until the gateway is ready (the initial catalogue load is over): MCP traffic. */
  readonly holdUntilReady?: boolean;
  /** The OpenAPI description; routes without one are not in the document. */
  readonly doc?: RouteDoc;
}

/**
 * The access decision for a request, made from its headers before the handler runs. `reject` is
 * answered as is; otherwise `auth` is attached to the input. `headers` go on every reply of the
 * request (`X-RateLimit-*`).
 */
export interface AccessDecision {
  readonly auth?: RequestAuth;
  readonly reject?: HttpEffect;
  readonly headers: HeaderList;
}

/** How the server asks the access gate about a request (implemented in `handlers/access.ts`). */
export interface AccessCheck {
  /** The headers {@link check} reads for a route with `access`: read for the request besides the route's own. */
  headersFor(access: RouteAccess): readonly HeaderField[];
  /** Decides a request to a route with `access`; refusals written as `errors` says. Synchronous when no I/O is needed. */
  check(input: HttpInput, access: RouteAccess, errors: 'json-rpc' | 'rest'): AccessDecision | Promise<AccessDecision>;
}

/** Path parameters by name (`:id` → `params.id`), URL-decoded. */
export type RouteParams = Readonly<Record<string, string>>;

/**
 * A route's handler: the request (with the headers its spec declares), the path parameters of
 * its pattern → the effects of the reply (see {@link HttpEffect}).
 */
export type RouteHandler = (input: HttpInput, params: RouteParams) => Observable<HttpEffect>;

/** A registered route: its spec, its handler, and what the table precomputed for it. */
export interface RouteEntry<H> {
  readonly spec: RouteSpec;
  readonly handler: H;
  /** Bit `i` set: the spec reads header {@link HEADER_FIELDS}`[i]`. */
  readonly headerMask: number;
}

/** The route a request matched. `allow` is set when the path exists but not for this method (405). */
export interface RouteMatch<H> {
  readonly entry: RouteEntry<H>;
  readonly params: RouteParams;
  /** The methods the path serves, `, `-separated, when the method did not match (else `undefined`). */
  readonly allow: string | undefined;
}

/** The bit mask of header fields `fields` (see {@link RouteEntry.headerMask}). */
export function headerMask(fields: readonly HeaderField[]): number {
  let mask = 0;
  for (const f of fields) {
    const i = HEADER_FIELDS.indexOf(f);
    if (i < 0) throw new Error(`unknown header field ${String(f)}`);
    mask |= 1 << i;
  }
  return mask;
}

/** The parameters of a path without `:param` segments (one shared object). */
export const NO_PARAMS: RouteParams = Object.freeze({});

/** The routes of one exact path, by method (see {@link RouteTable.exactPaths}). */
export interface PathRoutesView<H> {
  /** The match for `method` on this path, else a 405 match naming the methods it has. */
  pick(method: string, params: RouteParams): RouteMatch<H> | undefined;
  /** The methods registered on this path (not `*`), in registration order. */
  methods(): IterableIterator<string>;
}

/** The routes of one path (exact or pattern): by method, in registration order. */
class PathRoutes<H> implements PathRoutesView<H> {
  /** The match of each method without path parameters, made once (an exact path's lookup allocates nothing). */
  readonly #byMethod = new Map<string, RouteMatch<H>>();
  #any: RouteMatch<H> | undefined;
  #first: RouteEntry<H> | undefined;
  #allow = '';
  constructor(
    readonly path: string,
    readonly segments: readonly string[],
  ) {}

  add(entry: RouteEntry<H>): void {
    const m = entry.spec.method;
    if (m === '*' ? this.#any !== undefined : this.#byMethod.has(m)) throw new Error(`route ${m} ${this.path} registered twice`);
    const match: RouteMatch<H> = { entry, params: NO_PARAMS, allow: undefined };
    if (m === '*') this.#any = match;
    else {
      this.#byMethod.set(m, match);
      this.#allow = this.#allow === '' ? m : `${this.#allow}, ${m}`;
    }
    this.#first ??= entry;
  }

  methods(): IterableIterator<string> {
    return this.#byMethod.keys();
  }

  /** The match for `method`, else a 405 match naming the methods the path has. */
  pick(method: string, params: RouteParams): RouteMatch<H> | undefined {
    const m = this.#byMethod.get(method) ?? this.#any;
    if (m !== undefined) return params === NO_PARAMS ? m : { entry: m.entry, params, allow: undefined };
    const first = this.#first;
    return first === undefined ? undefined : { entry: first, params, allow: this.#allow };
  }
}

/**
 * The routes of a server. {@link add} checks each spec (an access rule from
 * {@link ROUTE_ACCESS}, known header fields, one registration per method and path) and throws on
 * a bad one, so a route without a rule cannot be served. {@link match} is one `Map` lookup for an
 * exact path; `:param` patterns are tried next in registration order, then wildcards, longest
 * prefix first.
 */
export class RouteTable<H> {
  readonly #exact = new Map<string, PathRoutes<H>>();
  readonly #patterns: PathRoutes<H>[] = [];
  readonly #wildcards: { readonly prefix: string; readonly routes: PathRoutes<H> }[] = [];
  readonly #all: RouteEntry<H>[] = [];

  /**
   * Registers `handler` for `spec`.
   * @throws Error when the spec has no valid access rule, names an unknown header, has a malformed
   * path, or its method and path are registered already.
   */
  add(spec: RouteSpec, handler: H): RouteEntry<H> {
    if (!(ROUTE_ACCESS as readonly unknown[]).includes(spec.access)) throw new Error(`route ${spec.method} ${spec.path} has no access rule (one of ${ROUTE_ACCESS.join(', ')})`);
    if (!spec.path.startsWith('/')) throw new Error(`route path must start with /: ${spec.path}`);
    const method = spec.method === '*' ? '*' : spec.method.toUpperCase();
    const s = method === spec.method ? spec : { ...spec, method };
    const entry: RouteEntry<H> = { spec: s, handler, headerMask: headerMask(s.headers) };
    this.#pathRoutes(s.path).add(entry);
    this.#all.push(entry);
    return entry;
  }

  #pathRoutes(path: string): PathRoutes<H> {
    if (path.endsWith('/*')) {
      const prefix = path.slice(0, -2);
      let w = this.#wildcards.find((x) => x.prefix === prefix);
      if (w === undefined) {
        w = { prefix, routes: new PathRoutes<H>(path, []) };
        this.#wildcards.push(w);
        this.#wildcards.sort((a, b) => b.prefix.length - a.prefix.length);
      }
      return w.routes;
    }
    if (path.includes('*')) throw new Error(`route path may only end with /*: ${path}`);
    const segments = path.split('/').filter(Boolean);
    if (!segments.some((s) => s.startsWith(':'))) {
      const key = normalize(path);
      let r = this.#exact.get(key);
      if (r === undefined) this.#exact.set(key, (r = new PathRoutes<H>(path, segments)));
      return r;
    }
    let r = this.#patterns.find((p) => p.path === path);
    if (r === undefined) this.#patterns.push((r = new PathRoutes<H>(path, segments)));
    return r;
  }

  /**
   * The route of `method path` (path without the query string): the exact path, else the first
   * `:param` pattern that fits with this method, else the longest wildcard. On a path that
   * exists only for other methods, the first such route with {@link RouteMatch.allow} set (405).
   * `undefined` when nothing fits.
   */
  match(method: string, path: string): RouteMatch<H> | undefined {
    let mismatch: RouteMatch<H> | undefined;
    // empty segments do not count (`/api/v1/` is `/api/v1`), as for patterns
    const exact = this.#exact.get(path) ?? (path.length > 1 && (path.endsWith('/') || path.includes('//')) ? this.#exact.get(normalize(path)) : undefined);
    if (exact !== undefined) {
      const m = exact.pick(method, NO_PARAMS);
      if (m !== undefined && m.allow === undefined) return m;
      mismatch = m;
    }
    if (this.#patterns.length > 0) {
      const parts = path.split('/').filter(Boolean);
      for (const r of this.#patterns) {
        const params = fit(r.segments, parts);
        if (params === undefined) continue;
        const m = r.pick(method, params);
        if (m !== undefined && m.allow === undefined) return m;
        mismatch ??= m;
      }
    }
    if (mismatch !== undefined) return mismatch;
    for (const w of this.#wildcards) {
      const p = w.prefix;
      if (path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 47 /* / */)) {
        const m = w.routes.pick(method, NO_PARAMS);
        if (m !== undefined) return m;
      }
    }
    return undefined;
  }

  /** Every registered route, in registration order. */
  entries(): readonly RouteEntry<H>[] {
    return this.#all;
  }

  /**
   * The exact paths and their routes, for a server that resolves paths natively (uWS' router):
   * `pick(method, NO_PARAMS)` on a path's routes is what {@link match} returns for that path.
   */
  exactPaths(): IterableIterator<[string, PathRoutesView<H>]> {
    return this.#exact.entries();
  }
}

/** `path` without empty segments: `//a/b/` → `/a/b`. */
function normalize(path: string): string {
  return `/${path.split('/').filter(Boolean).join('/')}`;
}

/** The parameters of `parts` under a pattern's `segments`, or `undefined` when it does not fit. */
function fit(segments: readonly string[], parts: readonly string[]): RouteParams | undefined {
  if (segments.length !== parts.length) return undefined;
  let params: Record<string, string> | undefined;
  for (let i = 0; i < parts.length; i++) {
    const seg = segments[i] as string;
    const part = parts[i] as string;
    if (seg.startsWith(':')) {
      let value: string;
      try {
        value = decodeURIComponent(part);
      } catch {
        return undefined;
      }
      (params ??= {})[seg.slice(1)] = value;
    } else if (seg !== part) {
      return undefined;
    }
  }
  return params ?? NO_PARAMS;
}
