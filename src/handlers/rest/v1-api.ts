/**
 * The conventions every `/api/v1` route shares (developer-mesh MCP Server API reference,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md, "Base URL and Versioning", "Error Handling"):
 *
 * - versioning: the path says v1; `X-API-Version: 1` and `Accept: application/vnd.mcp.v1+json`
 *   are accepted, any other version → 406 `UNSUPPORTED_API_VERSION`;
 * - bodies decoded with io-ts, unknown fields refused, every bad field named (400);
 * - every entity belongs to the tenant of the caller's credentials ({@link V1Request.tenant});
 * - list routes paginate with `limit` (1..1000, default 50) and `offset`, and answer totals;
 * - ids are prefixed by kind (`ctx-`, `agent-`, `model-`, `rel-`, `exec-`), timestamps ISO-8601 UTC.
 */
import { randomUUID } from 'node:crypto';
import type * as t from 'io-ts';
import type { Principal } from '../../base/principal.js';
import { ANONYMOUS } from '../../base/principal.js';
import { GatewayError } from '../../base/errors.js';
import { decodeBody } from '../../codecs/schema.js';
import type { RouteDoc } from '../../base/routes.js';
import type { RestReply, RestRequest, RestRouter } from './router.js';

/** A v1 request: the REST request plus the caller's tenant and principal, and the decoded body. */
export interface V1Request<B = undefined> extends RestRequest {
  readonly tenant: string;
  readonly principal: Principal;
  /** The body decoded with the route's codec (`undefined` for routes without one). */
  readonly data: B;
}

export type V1Handler<B> = (req: V1Request<B>) => Promise<RestReply> | RestReply;

/** Entity kinds and their id prefixes. */
export type IdKind = 'ctx' | 'agent' | 'model' | 'rel' | 'exec';

/** A new id of `kind`: `ctx-<uuid>`. */
export function newId(kind: IdKind): string {
  return `${kind}-${randomUUID()}`;
}

/** Now as ISO-8601 UTC. */
export function nowIso(): string {
  return new Date().toISOString();
}

const VND = /application\/vnd\.mcp\.v(\d+)\+json/i;

/**
 * Checks the version headers of a v1 request.
 * @throws GatewayError UNSUPPORTED_API_VERSION (406) for a version other than 1.
 */
export function checkVersion(accept: string, apiVersion: string): void {
  const v = apiVersion.trim().replace(/^v/i, '');
  if (v !== '' && v !== '1') {
    throw new GatewayError('UNSUPPORTED_API_VERSION', `API version ${apiVersion} is not supported; this server speaks v1`, { requested: apiVersion, supported: ['1'] });
  }
  const m = VND.exec(accept);
  if (m && m[1] !== '1') {
    throw new GatewayError('UNSUPPORTED_API_VERSION', `Accept asks for API version ${m[1] ?? '?'}; this server speaks v1`, { requested: `v${m[1] ?? '?'}`, supported: ['v1'] });
  }
}

/** A page of a list: the items, and the totals the response carries. */
export interface Page<T> {
  readonly items: T[];
  readonly total: number;
  readonly limit: number;
  readonly offset: number;
}

/**
 * Paginates `items` by the request's `limit` (1..1000, default 50) and `offset` (≥ 0).
 * @throws GatewayError VALIDATION_ERROR (400) for a malformed limit or offset.
 */
export function paginate<T>(items: readonly T[], query: URLSearchParams): Page<T> {
  const num = (name: string, dflt: number, min: number, max: number): number => {
    const raw = query.get(name);
    if (raw === null || raw === '') return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new GatewayError('VALIDATION_ERROR', `${name} must be a whole number ${min}..${max}`, { problems: [`${name}: expected a whole number ${min}..${max}, got ${JSON.stringify(raw)}`] });
    }
    return n;
  };
  const limit = num('limit', 50, 1, 1000);
  const offset = num('offset', 0, 0, Number.MAX_SAFE_INTEGER);
  return { items: items.slice(offset, offset + limit), total: items.length, limit, offset };
}

/** Query parameters of paginated list routes, for the OpenAPI document. */
export const PAGE_QUERY: NonNullable<RouteDoc['query']> = {
  limit: { description: 'Page size, 1..1000 (default 50)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
  offset: { description: 'Items to skip (default 0)', schema: { type: 'integer', minimum: 0 } },
};

const V1_HEADERS = ['accept', 'apiVersion'] as const;

/**
 * Registers v1 routes on the REST router with the shared conventions: access `user` (API keys
 * and JWTs, no virtual keys), and the version headers (`Accept`, `X-API-Version`) read.
 */
export class V1Api {
  constructor(readonly router: RestRouter) {}

  /**
   * Registers `handler` at `method pattern` (a path under `/api/v1`). With `doc.body`, the body is
   * decoded with it before the handler runs (400 naming every bad or unknown field).
   */
  on<C extends t.Mixed>(method: string, pattern: string, doc: RouteDoc & { readonly body: C }, handler: V1Handler<t.TypeOf<C>>): this;
  on(method: string, pattern: string, doc: RouteDoc, handler: V1Handler<undefined>): this;
  on(method: string, pattern: string, doc: RouteDoc, handler: V1Handler<never>): this {
    const codec = doc.body;
    this.router.on(
      method,
      pattern,
      (req) => {
        checkVersion(req.input.headers.accept, req.input.headers.apiVersion);
        const principal = req.input.auth?.principal ?? ANONYMOUS;
        const data: unknown = codec ? decodeBody(codec, req.body ?? {}) : undefined;
        return handler({ ...req, tenant: principal.tenantId, principal, data: data as never });
      },
      { ...doc, access: 'user', headers: V1_HEADERS },
    );
    return this;
  }
}
