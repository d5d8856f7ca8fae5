/**
 * The alternative design the gateway issue asks to compare: the SDK's own `Server` (protocol
 * layer, request routing, result validation) behind uWebSockets.js, instead of Tributary's own
 * JSON-RPC routing.
 *
 * POST /mcp: each request body is parsed and fed to an SDK `Server` through a minimal custom
 * {@link Transport} (start/send/close, onmessage); the Server's answers come back through `send`
 * and are matched to the waiting HTTP response by JSON-RPC id. One Server + transport per session
 * (`initialize` without a session id opens one, `Mcp-Session-Id` names it). `tools/call` and
 * `tools/list` are forwarded through an SDK `Client` to the in-process demo upstream over
 * `InMemoryTransport`, with the gateway's naming (`demo-echo` → `echo`).
 *
 * Deliberately minimal: JSON responses only (server→client notifications and requests are
 * dropped), no GET stream, no batches. Enough for the benchmark, not a server.
 *
 * Usage: node --import tsx bench/sdk-server-variant.ts [port]   (port 0 = any free port)
 * Prints one line `{"listening":PORT}` on stdout once bound.
 */
import { randomUUID } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  ListToolsRequestSchema,
  isJSONRPCRequest,
  isJSONRPCNotification,
  type JSONRPCMessage,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { loadNativeUws } from '../src/server/uws.js';
import { announceListening } from './procs.js';
import { createDemoServer } from '../src/upstreams/inprocess/demo.js';

const PREFIX = 'demo-';

/** Writes one HTTP reply for a JSON-RPC request; extra headers (the session id) included. */
type Responder = (body: string) => void;

/** A Transport whose inbound side is fed by the uWS handler and whose `send` answers HTTP. */
class UwsBridgeTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T) => void) | undefined;
  readonly sessionId = randomUUID();
  private readonly pending = new Map<RequestId, Responder>();

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (isJSONRPCRequest(message)) return; // server→client requests: no stream to carry them
    const id = (message as { id?: RequestId }).id;
    if (id === undefined) return; // notifications: likewise
    const responder = this.pending.get(id);
    if (responder === undefined) return; // the client went away
    this.pending.delete(id);
    responder(JSON.stringify(message));
  }

  async close(): Promise<void> {
    this.pending.clear();
    this.onclose?.();
  }

  /** Feeds one request in; `responder` is called with its response. */
  request(message: JSONRPCMessage & { id: RequestId }, responder: Responder): boolean {
    if (this.pending.has(message.id)) return false;
    this.pending.set(message.id, responder);
    this.onmessage?.(message);
    return true;
  }

  /** The HTTP response went away: forget its slot. */
  forget(id: RequestId): void {
    this.pending.delete(id);
  }

  notify(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }
}

/** Per-HTTP-request state shared by the abort handler and the responder. */
interface ReqState {
  aborted: boolean;
  onAbort?: () => void;
}

interface Session {
  readonly server: Server;
  readonly transport: UwsBridgeTransport;
}

async function connectUpstream(): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createDemoServer().connect(serverSide);
  const client = new Client({ name: 'sdk-server-variant', version: '0.0.0' });
  await client.connect(clientSide);
  return client;
}

function createSession(upstream: Client): Session {
  const server = new Server({ name: 'sdk-server-variant', version: '0.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const { tools } = await upstream.listTools();
    return { tools: tools.map((t) => ({ ...t, name: PREFIX + t.name })) };
  });
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const name = req.params.name.startsWith(PREFIX) ? req.params.name.slice(PREFIX.length) : req.params.name;
    return upstream.request({ method: 'tools/call', params: { ...req.params, name } }, CallToolResultSchema, { signal: extra.signal });
  });
  const transport = new UwsBridgeTransport();
  return { server, transport };
}

function reply(res: HttpResponse, status: string, body: string, sessionId?: string): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('Content-Type', 'application/json');
    if (sessionId !== undefined) res.writeHeader('Mcp-Session-Id', sessionId);
    res.end(body);
  });
}

async function main(): Promise<void> {
  const uws = loadNativeUws();
  const port = Number(process.argv[2] ?? '0');
  const upstream = await connectUpstream();
  const sessions = new Map<string, Session>();

  const handle = (res: HttpResponse, sessionHeader: string, body: Buffer, state: ReqState): void => {
    let msg: JSONRPCMessage;
    try {
      msg = JSON.parse(body.toString('utf8')) as JSONRPCMessage;
    } catch {
      reply(res, '400 Bad Request', '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
      return;
    }
    let session: Session | undefined;
    if (isJSONRPCRequest(msg) && msg.method === 'initialize') {
      session = createSession(upstream);
      sessions.set(session.transport.sessionId, session);
      const s = session;
      void s.server.connect(s.transport).then(() => {
        if (!state.aborted) s.transport.request(msg as JSONRPCMessage & { id: RequestId }, (out) => !state.aborted && reply(res, '200 OK', out, s.transport.sessionId));
      });
      return;
    }
    session = sessions.get(sessionHeader);
    if (session === undefined) {
      reply(res, sessionHeader === '' ? '400 Bad Request' : '404 Not Found', '{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Session not found"}}');
      return;
    }
    if (isJSONRPCNotification(msg) || !isJSONRPCRequest(msg)) {
      session.transport.notify(msg);
      res.cork(() => res.writeStatus('202 Accepted').endWithoutBody(0));
      return;
    }
    const id = msg.id;
    const transport = session.transport;
    state.onAbort = () => transport.forget(id);
    const ok = transport.request(msg, (out) => {
      if (!state.aborted) reply(res, '200 OK', out);
    });
    if (!ok) reply(res, '200 OK', JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32600, message: 'Request id already in flight' } }));
  };

  const app = uws
    .App()
    .post('/mcp', (res, req) => {
      const sessionHeader = req.getHeader('mcp-session-id');
      const state: ReqState = { aborted: false };
      res.onAborted(() => {
        state.aborted = true;
        state.onAbort?.();
      });
      const chunks: Buffer[] = [];
      res.onData((chunk, isLast) => {
        // uWS reuses the chunk's memory after this callback: copy it
        chunks.push(Buffer.from(chunk.slice(0)));
        if (isLast) handle(res, sessionHeader, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks), state);
      });
    })
    .get('/health', (res) => {
      res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end('{"status":"healthy"}'));
    });

  announceListening(uws, app, port, 'sdk-server-variant');
}

main().catch((err: unknown) => {
  process.stderr.write(`sdk-server-variant: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
