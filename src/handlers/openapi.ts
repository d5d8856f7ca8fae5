/**
 * The OpenAPI 3.1 document of every HTTP route Tributary serves, at
 * `GET /api/openapi.json`: the documented {@link RouteSpec}s of the route table (REST routes, the
 * routes the server answers itself — `/mcp`, `/health`, `/metrics` — and WebSocket upgrades),
 * with request bodies generated from the very io-ts codecs their handlers decode with
 * ({@link toJsonSchema}) and security from each route's access rule. Nothing here is maintained
 * by hand per route.
 */
import type * as t from 'io-ts';
import { toJsonSchema, type JsonSchema } from '../codecs/schema.js';
import { version } from '../base/version.js';
import type { RouteAccess, RouteDoc, RouteSpec } from '../base/routes.js';
import type { RestRouter } from './rest/router.js';

const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error', 'code', 'details'],
  properties: {
    error: { type: 'string', description: 'What went wrong, for people' },
    code: { type: 'string', description: 'Stable UPPER_SNAKE error code' },
    details: { type: 'object', description: 'More about it, e.g. `problems`: one line per bad field' },
  },
};

function schemaOf(s: t.Mixed | JsonSchema | undefined): JsonSchema | undefined {
  if (s === undefined) return undefined;
  return typeof (s as { decode?: unknown }).decode === 'function' ? toJsonSchema(s as t.Mixed) : (s as JsonSchema);
}

/** Routes the document describes as needing no credential (`metrics`: as configured by default). */
function isOpen(access: RouteAccess): boolean {
  return access === 'open' || access === 'signature' || access === 'metrics';
}

function security(access: RouteAccess): unknown[] | undefined {
  if (isOpen(access)) return [];
  if (access === 'admin') return [{ BasicAuth: [] }, { BearerAuth: [] }, { ApiKeyAuth: [] }];
  return undefined; // the document-wide default
}

function operation(route: RouteSpec, doc: RouteDoc): Record<string, unknown> {
  const params = route.path
    .split('/')
    .filter((s) => s.startsWith(':'))
    .map((s) => ({ name: s.slice(1), in: 'path', required: true, schema: { type: 'string' } }));
  const query = Object.entries(doc.query ?? {}).map(([name, q]) => ({ name, in: 'query', required: q.required ?? false, description: q.description, schema: q.schema ?? { type: 'string' } }));
  const extraHeaders =
    route.access === 'signature'
      ? [
          { name: 'X-GitHub-Event', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'X-GitHub-Delivery', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'X-Hub-Signature-256', in: 'header', required: true, schema: { type: 'string', pattern: '^sha256=[0-9a-f]{64}$' } },
        ]
      : [];
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(doc.responses ?? { 200: { description: 'OK' } })) {
    const schema = schemaOf(r.schema) ?? (Number(status) >= 400 ? ERROR_SCHEMA : undefined);
    responses[status] = { description: r.description, ...(schema ? { content: { 'application/json': { schema } } } : {}) };
  }
  if (!isOpen(route.access)) {
    responses['401'] ??= { description: 'No, unknown, revoked or expired credentials', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    responses['429'] ??= { description: 'Over a rate limit (Retry-After, X-RateLimit-*)', content: { 'application/json': { schema: ERROR_SCHEMA } } };
  }
  const sec = security(route.access);
  const body = schemaOf(doc.body);
  return {
    summary: doc.summary,
    tags: [doc.tag],
    operationId: `${route.method.toLowerCase()}${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    ...(params.length + query.length + extraHeaders.length > 0 ? { parameters: [...params, ...query, ...extraHeaders] } : {}),
    ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
    responses,
    ...(sec ? { security: sec } : {}),
  };
}

/**
 * Builds the OpenAPI 3.1 document: every route of `routes` that carries a `doc`, in registration
 * order, paths in OpenAPI form (`/api/v1/agents/{id}`), security from the route's access rule, the
 * gateway's auth schemes (bearer API key, virtual key or JWT, `X-API-Key`, `x-bf-vk`, Basic
 * admin) as security schemes.
 */
export function buildOpenApi(routes: readonly RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    if (route.doc === undefined) continue;
    const p = route.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
    (paths[p] ??= {})[route.method.toLowerCase()] = operation(route, route.doc);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tributary MCP gateway',
      version,
      description: 'Every HTTP route of the gateway. Errors are `{"error","code","details"}` on REST routes and JSON-RPC errors on /mcp.',
    },
    servers: [{ url: '/' }],
    security: [{ BearerAuth: [] }, { ApiKeyAuth: [] }, { VirtualKeyAuth: [] }, { BasicAuth: [] }],
    components: {
      securitySchemes: {
        BearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key (trb_...), a virtual key (tvk_...) or a JWT' },
        BasicAuth: { type: 'http', scheme: 'basic', description: 'The admin user' },
        ApiKeyAuth: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        VirtualKeyAuth: { type: 'apiKey', in: 'header', name: 'x-bf-vk' },
      },
      schemas: { Error: ERROR_SCHEMA },
    },
    paths,
  };
}

/**
 * Serves the document of every route in the router's table (the server's, in a gateway) at
 * `GET /api/openapi.json` (built once per request: routes can be added at start-up).
 */
export function registerOpenApi(router: RestRouter): void {
  router.on('GET', '/api/openapi.json', () => ({ status: 200, body: buildOpenApi(router.table.entries().map((e) => e.spec)) }), {
    summary: 'This document',
    tag: 'operations',
    access: 'open',
    responses: { 200: { description: 'OpenAPI 3.1', schema: { type: 'object', required: ['openapi', 'paths'] } } },
  });
}
