/**
 * The routes the server answers itself rather than through the REST router — MCP Streamable HTTP
 * at `/mcp`, the health probes, `/metrics`, the WebSocket upgrades — and the fallbacks that answer
 * unknown paths, each declared as one {@link RouteSpec} (access rule, headers read, admission,
 * OpenAPI description). `gateway.ts` binds them to their handlers with {@link registerServerRoutes};
 * the WebSocket specs go to `GatewayServer.attachWs`.
 */
import * as t from 'io-ts';
import type { HeaderField } from '../base/http.js';
import type { JsonSchemaObject, RouteHandler, RouteSpec, RouteTable } from '../base/routes.js';

const JSONRPC_SCHEMA: JsonSchemaObject = {
  type: 'object',
  required: ['jsonrpc'],
  properties: { jsonrpc: { const: '2.0' }, id: { type: ['string', 'integer', 'null'] }, method: { type: 'string' }, params: { type: 'object' }, result: {}, error: { type: 'object' } },
};

/**
 * What the MCP Streamable HTTP handler reads (MCP 2025-06-18 … 2026-07-28 transports,
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports): content negotiation,
 * `Origin`/`Host` (DNS-rebinding checks, CORS), the session and version headers, the 2026-07-28
 * `Mcp-Method`/`Mcp-Name`/`Mcp-Param-*` headers, `Last-Event-ID` (stream resumption), W3C Trace
 * Context, and the tool-mode header.
 */
export const MCP_HEADERS: readonly HeaderField[] = [
  'accept',
  'contentType',
  'origin',
  'host',
  'mcpSessionId',
  'mcpProtocolVersion',
  'mcpMethod',
  'mcpName',
  'mcpParams',
  'lastEventId',
  'traceparent',
  'tracestate',
  'toolMode',
];

/** `Origin`: replies echo CORS headers for it. */
const CORS: readonly HeaderField[] = ['origin'];

const MCP_GET: RouteSpec = {
  method: 'GET',
  path: '/mcp',
  access: 'tools',
  headers: MCP_HEADERS,
  admission: 'direct',
  errors: 'json-rpc',
  doc: { summary: 'MCP standalone server-to-client SSE stream of a session', tag: 'mcp', responses: { 200: { description: 'text/event-stream' }, 405: { description: 'SSE not accepted' } } },
};

const MCP_POST: RouteSpec = {
  method: 'POST',
  path: '/mcp',
  access: 'tools',
  headers: MCP_HEADERS,
  admission: 'mcp',
  errors: 'json-rpc',
  // a request before readiness waits for it (bounded by ready_timeout_ms), so it never sees a half-loaded catalogue
  holdUntilReady: true,
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
};

const MCP_DELETE: RouteSpec = {
  method: 'DELETE',
  path: '/mcp',
  access: 'tools',
  headers: MCP_HEADERS,
  admission: 'direct',
  errors: 'json-rpc',
  doc: { summary: 'End an MCP session', tag: 'mcp', responses: { 200: { description: 'Session ended' }, 404: { description: 'Session not found' } } },
};

const MCP_OPTIONS: RouteSpec = {
  method: 'OPTIONS',
  path: '/mcp',
  access: 'open',
  headers: MCP_HEADERS,
  admission: 'direct',
  errors: 'json-rpc',
  doc: { summary: 'CORS preflight', tag: 'mcp', responses: { 204: { description: 'Allowed methods and headers' } } },
};

const HEALTH: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/health',
    access: 'open',
    headers: CORS,
    admission: 'direct',
    doc: {
      summary: 'Health of the gateway and its upstreams',
      tag: 'operations',
      responses: {
        200: { description: '`{"status":"healthy"|"degraded","components":{...}}`', schema: { type: 'object', required: ['status', 'components'], properties: { status: { enum: ['healthy', 'degraded', 'unhealthy'] }, components: { type: 'object' } } } },
        503: { description: 'Unhealthy or shutting down' },
      },
    },
  },
  { method: 'GET', path: '/health/ready', access: 'open', headers: CORS, admission: 'direct', doc: { summary: 'Readiness probe: 200 once the initial catalogue load is over (or its bound passed), 503 while starting or draining', tag: 'operations', responses: { 200: { description: '`{"status":"ready"|"degraded","readiness":{...},"upstreams_down":[...]}`' }, 503: { description: '`{"status":"starting"|"draining"}`' } } } },
  { method: 'GET', path: '/health/live', access: 'open', headers: CORS, admission: 'direct', doc: { summary: 'Liveness probe: 200 while the process serves HTTP', tag: 'operations', responses: { 200: { description: '`{"status":"alive"}`' } } } },
  // any other path under /health: as an unknown route (credential needed), answered by the health handler
  { method: 'GET', path: '/health/*', access: 'admin', headers: CORS, admission: 'direct' },
];

const METRICS: RouteSpec = { method: 'GET', path: '/metrics', access: 'metrics', headers: CORS, admission: 'direct', doc: { summary: 'Prometheus metrics (text exposition format)', tag: 'operations', responses: { 200: { description: 'text/plain; version=0.0.4' } } } };

/** The WebSocket upgrades (see `GatewayServer.attachWs`). */
export const WS_ROUTES = {
  agents: { method: 'GET', path: '/ws', access: 'tools', headers: ['toolMode'], admission: 'direct', doc: { summary: 'Agent WebSocket: MCP JSON-RPC text frames and MCPW binary frames (subprotocol `mcp`)', tag: 'websocket', responses: { 101: { description: 'Switching protocols' }, 401: { description: 'No or bad credentials' } } } },
  events: { method: 'GET', path: '/api/ws/events', access: 'user', headers: [], admission: 'direct', doc: { summary: 'Domain event stream (WebSocket, JSON; `subscribe` filters)', tag: 'websocket', responses: { 101: { description: 'Switching protocols' }, 401: { description: 'No or bad credentials' } } } },
  // the live feed streams every tool call's arguments and results (the tool log): admins only
  live: { method: 'GET', path: '/api/ws/live', access: 'admin', headers: [], admission: 'direct', doc: { summary: 'Live feed of tool logs and store updates (WebSocket, JSON)', tag: 'websocket', responses: { 101: { description: 'Switching protocols' }, 401: { description: 'No or bad credentials' } } } },
  responses: { method: 'GET', path: '/v1/responses', access: 'tools', headers: [], admission: 'direct' },
} as const satisfies Record<string, RouteSpec>;

/**
 * What answers a path no route serves (404 `NOT_FOUND`), by prefix, with the rule such a request
 * is checked with first: `/api/v1/*` takes API keys and JWTs, OAuth metadata paths are open,
 * everything else needs an admin credential (an unknown path tells a caller without one nothing).
 */
const FALLBACKS: readonly RouteSpec[] = [
  { method: '*', path: '/api/v1/*', access: 'user', headers: CORS, admission: 'api' },
  { method: '*', path: '/api/*', access: 'admin', headers: CORS, admission: 'api' },
  { method: '*', path: '/v1/*', access: 'admin', headers: CORS, admission: 'api' },
  { method: '*', path: '/.well-known/*', access: 'open', headers: CORS, admission: 'api' },
  { method: '*', path: '/*', access: 'admin', headers: CORS, admission: 'direct' },
];

/** The handlers of the server's own routes. */
export interface ServerRouteHandlers {
  readonly mcpPost: RouteHandler;
  readonly mcpGet: RouteHandler;
  readonly mcpDelete: RouteHandler;
  readonly mcpOptions: RouteHandler;
  readonly health: RouteHandler;
  readonly metrics: RouteHandler;
  /** The 404 answer of unknown paths. */
  readonly notFound: RouteHandler;
}

/** Registers `/mcp` (GET first: a 405 there says `Allow: GET, POST, DELETE, OPTIONS`), health, metrics and the fallbacks. */
export function registerServerRoutes(table: RouteTable<RouteHandler>, h: ServerRouteHandlers): void {
  table.add(MCP_GET, h.mcpGet);
  table.add(MCP_POST, h.mcpPost);
  table.add(MCP_DELETE, h.mcpDelete);
  table.add(MCP_OPTIONS, h.mcpOptions);
  for (const spec of HEALTH) table.add(spec, h.health);
  table.add(METRICS, h.metrics);
  for (const spec of FALLBACKS) table.add(spec, h.notFound);
}
