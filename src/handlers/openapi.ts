/**
 * The OpenAPI 3.1 document of every HTTP route Tributary serves, at
 * `GET /api/openapi.json`. REST routes come from the REST router's registrations, with request
 * bodies generated from the very io-ts codecs their handlers decode with ({@link toJsonSchema});
 * the uWS-level routes (`/mcp`, `/health`, `/metrics`) and WebSocket endpoints are listed from
 * {@link SERVER_ROUTES}. Nothing here is maintained by hand per REST route.
 */
import * as t from 'io-ts';
import { toJsonSchema, type JsonSchema } from '../codecs/schema.js';
import { version } from '../base/version.js';
import type { DocumentedRoute, RestRouter, RouteDoc } from './rest/router.js';

const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error', 'code', 'details'],
  properties: {
    error: { type: 'string', description: 'What went wrong, for people' },
    code: { type: 'string', description: 'Stable UPPER_SNAKE error code' },
    details: { type: 'object', description: 'More about it, e.g. `problems`: one line per bad field' },
  },
};

const JSONRPC_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['jsonrpc'],
  properties: { jsonrpc: { const: '2.0' }, id: { type: ['string', 'integer', 'null'] }, method: { type: 'string' }, params: { type: 'object' }, result: {}, error: { type: 'object' } },
};

/** Routes answered by the uWS server itself rather than the REST router. */
export const SERVER_ROUTES: readonly DocumentedRoute[] = [
  {
    method: 'POST',
    pattern: '/mcp',
    doc: {
      summary: 'MCP Streamable HTTP: one JSON-RPC message or batch (MCP 2025-06-18 / 2025-11-25)',
      tag: 'mcp',
      body: t.UnknownRecord,
      responses: {
        200: { description: 'JSON-RPC response (application/json) or an SSE stream (text/event-stream)', schema: JSONRPC_SCHEMA },
        202: { description: 'Notification or response accepted' },
        400: { description: 'Invalid JSON-RPC', schema: JSONRPC_SCHEMA },
        404: { description: 'Session not found', schema: JSONRPC_SCHEMA },
      },
    },
  },
  { method: 'GET', pattern: '/mcp', doc: { summary: 'MCP standalone server-to-client SSE stream of a session', tag: 'mcp', responses: { 200: { description: 'text/event-stream' }, 405: { description: 'SSE not accepted' } } } },
  { method: 'DELETE', pattern: '/mcp', doc: { summary: 'End an MCP session', tag: 'mcp', responses: { 200: { description: 'Session ended' }, 404: { description: 'Session not found' } } } },
  { method: 'OPTIONS', pattern: '/mcp', doc: { summary: 'CORS preflight', tag: 'mcp', access: 'open', responses: { 204: { description: 'Allowed methods and headers' } } } },
  {
    method: 'GET',
    pattern: '/health',
    doc: {
      summary: 'Health of the gateway and its upstreams',
      tag: 'operations',
      access: 'open',
      responses: {
        200: { description: '`{"status":"healthy"|"degraded","components":{...}}`', schema: { type: 'object', required: ['status', 'components'], properties: { status: { enum: ['healthy', 'degraded', 'unhealthy'] }, components: { type: 'object' } } } },
        503: { description: 'Unhealthy or shutting down' },
      },
    },
  },
  { method: 'GET', pattern: '/metrics', doc: { summary: 'Prometheus metrics (text exposition format)', tag: 'operations', access: 'open', responses: { 200: { description: 'text/plain; version=0.0.4' } } } },
  { method: 'GET', pattern: '/ws', doc: { summary: 'Agent WebSocket: MCP JSON-RPC text frames and MCPW binary frames (subprotocol `mcp`)', tag: 'websocket', responses: { 101: { description: 'Switching protocols' }, 401: { description: 'No or bad credentials' } } } },
  { method: 'GET', pattern: '/api/ws/events', doc: { summary: 'Domain event stream (WebSocket, JSON; `subscribe` filters)', tag: 'websocket', responses: { 101: { description: 'Switching protocols' }, 401: { description: 'No or bad credentials' } } } },
  { method: 'GET', pattern: '/api/ws/live', doc: { summary: 'Live feed of tool logs and store updates (WebSocket, JSON)', tag: 'websocket', responses: { 101: { description: 'Switching protocols' }, 401: { description: 'No or bad credentials' } } } },
];

function schemaOf(s: t.Mixed | JsonSchema | undefined): JsonSchema | undefined {
  if (s === undefined) return undefined;
  return typeof (s as { decode?: unknown }).decode === 'function' ? toJsonSchema(s as t.Mixed) : (s as JsonSchema);
}

function security(access: RouteDoc['access']): unknown[] | undefined {
  if (access === 'open' || access === 'signature') return [];
  if (access === 'admin') return [{ BasicAuth: [] }, { BearerAuth: [] }, { ApiKeyAuth: [] }];
  return undefined; // the document-wide default
}

function operation(route: DocumentedRoute): Record<string, unknown> {
  const doc = route.doc;
  const params = route.pattern
    .split('/')
    .filter((s) => s.startsWith(':'))
    .map((s) => ({ name: s.slice(1), in: 'path', required: true, schema: { type: 'string' } }));
  const query = Object.entries(doc?.query ?? {}).map(([name, q]) => ({ name, in: 'query', required: q.required ?? false, description: q.description, schema: q.schema ?? { type: 'string' } }));
  const extraHeaders =
    doc?.access === 'signature'
      ? [
          { name: 'X-GitHub-Event', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'X-GitHub-Delivery', in: 'header', required: true, schema: { type: 'string' } },
          { name: 'X-Hub-Signature-256', in: 'header', required: true, schema: { type: 'string', pattern: '^sha256=[0-9a-f]{64}$' } },
        ]
      : [];
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(doc?.responses ?? { 200: { description: 'OK' } })) {
    const schema = schemaOf(r.schema) ?? (Number(status) >= 400 ? ERROR_SCHEMA : undefined);
    responses[status] = { description: r.description, ...(schema ? { content: { 'application/json': { schema } } } : {}) };
  }
  if (doc?.access !== 'open' && doc?.access !== 'signature') {
    responses['401'] ??= { description: 'No, unknown, revoked or expired credentials', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    responses['429'] ??= { description: 'Over a rate limit (Retry-After, X-RateLimit-*)', content: { 'application/json': { schema: ERROR_SCHEMA } } };
  }
  const sec = security(doc?.access);
  const body = schemaOf(doc?.body);
  return {
    summary: doc?.summary ?? `${route.method} ${route.pattern}`,
    tags: [doc?.tag ?? 'other'],
    operationId: `${route.method.toLowerCase()}${route.pattern.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    ...(params.length + query.length + extraHeaders.length > 0 ? { parameters: [...params, ...query, ...extraHeaders] } : {}),
    ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
    responses,
    ...(sec ? { security: sec } : {}),
  };
}

/**
 * Builds the OpenAPI 3.1 document: every route of `router` plus {@link SERVER_ROUTES}, paths in
 * OpenAPI form (`/api/v1/agents/{id}`), the gateway's auth schemes (bearer API key, virtual key or JWT, `X-API-Key`, `x-bf-vk`, Basic admin) as security schemes.
 */
export function buildOpenApi(router: RestRouter): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of [...SERVER_ROUTES, ...router.documented()]) {
    const p = route.pattern.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
    (paths[p] ??= {})[route.method.toLowerCase()] = operation(route);
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

/** Serves the document at `GET /api/openapi.json` (built once per request: routes can be added at start-up). */
export function registerOpenApi(router: RestRouter): void {
  router.on('GET', '/api/openapi.json', () => ({ status: 200, body: buildOpenApi(router) }), {
    summary: 'This document',
    tag: 'operations',
    access: 'open',
    responses: { 200: { description: 'OpenAPI 3.1', schema: { type: 'object', required: ['openapi', 'paths'] } } },
  });
}
