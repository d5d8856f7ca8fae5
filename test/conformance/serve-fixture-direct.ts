/**
 * Dev server: the conformance fixture served straight over the SDK's own
 * `StreamableHTTPServerTransport` (stateful, one fixture server per session), without the
 * gateway. Used by `run.mjs --direct` as the reference the gateway is compared against.
 *
 *   node --import tsx test/conformance/serve-fixture-direct.ts [--port N]
 *
 * Listens on 127.0.0.1 only; answers `GET /health` and MCP on `/mcp`; rejects non-loopback
 * Host/Origin headers (DNS rebinding protection).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createConformanceServer } from '../fixtures/conformance-server.js';

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

const sessions = new Map<string, StreamableHTTPServerTransport>();

function sendError(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

/** True when the Host header and, if present, the Origin header name a loopback host. */
function isLoopbackRequest(req: IncomingMessage): boolean {
  const hostOk = (value: string): boolean => {
    try {
      return LOOPBACK.has(new URL(value).hostname.toLowerCase());
    } catch {
      return false;
    }
  };
  const { host, origin } = req.headers;
  return host !== undefined && hostOk(`http://${host}`) && (origin === undefined || hostOk(origin));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(buf);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function newSession(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
  const server = createConformanceServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    eventStore: new InMemoryEventStore(),
    retryInterval: 1000,
    onsessioninitialized: (id) => {
      sessions.set(id, transport);
    },
  });
  transport.onclose = () => {
    if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    void server.close();
  };
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}

async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const header = req.headers['mcp-session-id'];
  const sessionId = Array.isArray(header) ? header[0] : header;
  const transport = sessionId === undefined ? undefined : sessions.get(sessionId);
  if (req.method === 'POST') {
    let body: unknown;
    try {
      body = await readJson(req);
    } catch (e) {
      sendError(res, 400, -32700, `Parse error: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (transport !== undefined) return transport.handleRequest(req, res, body);
    if (sessionId !== undefined) return sendError(res, 404, -32001, 'Session not found');
    if (isInitializeRequest(body)) return newSession(req, res, body);
    return sendError(res, 400, -32000, 'Bad Request: missing session ID');
  }
  if (req.method === 'GET' || req.method === 'DELETE') {
    if (transport !== undefined) return transport.handleRequest(req, res);
    if (sessionId !== undefined) return sendError(res, 404, -32001, 'Session not found');
    return sendError(res, 400, -32000, 'Bad Request: missing session ID');
  }
  res.writeHead(405, { allow: 'GET, POST, DELETE' }).end();
}

/** Starts the direct fixture server on 127.0.0.1:`port` (0 picks a free port); resolves to the bound port. */
async function serveFixtureDirect(port: number): Promise<number> {
  const http = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (path === '/health' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy"}');
      return;
    }
    if (path !== '/mcp') return void res.writeHead(404).end();
    if (!isLoopbackRequest(req)) return sendError(res, 403, -32000, 'Forbidden: non-loopback Host or Origin');
    handleMcp(req, res).catch((e: unknown) => {
      process.stderr.write(`serve-fixture-direct: ${e instanceof Error ? e.message : String(e)}\n`);
      if (!res.headersSent) sendError(res, 500, -32603, 'Internal error');
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, '127.0.0.1', resolve);
  });
  const shutdown = (): void => {
    for (const t of sessions.values()) void t.close();
    http.closeAllConnections();
    http.close(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  const address = http.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}

const portArg = process.argv.indexOf('--port');
const port = Number(portArg >= 0 ? process.argv[portArg + 1] : (process.env['PORT'] ?? 0));
serveFixtureDirect(Number.isInteger(port) ? port : 0).then(
  (p) => console.log(`serve-fixture-direct: listening on http://127.0.0.1:${p}/mcp`),
  (e: unknown) => {
    console.error(`serve-fixture-direct: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
