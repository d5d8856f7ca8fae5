/**
 * OpenTelemetry traces through a real gateway, exported by the real OTLP/HTTP exporter to a real
 * HTTP receiver on port 0 that decodes what it gets: one `tools/call` from an SDK client sending
 * `traceparent` in `_meta` gives a SERVER span with that trace id and parent, a CLIENT span for
 * the upstream call under it, and the upstream (a real SDK Streamable HTTP server) receives the
 * same trace in `_meta` and in the `traceparent` header; failed calls mark their spans; the tool
 * log carries the trace id; sampling at 0 exports nothing; no credential reaches a span.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, demoClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;
const SECRET = 'Bearer trb_never_in_a_span_0123456789';

const exported: ExportedSpan[] = [];
const rawBodies: string[] = [];
/** What the probe upstream saw: `_meta` and the HTTP traceparent header of each `whoami` call. */
const probeSaw: { meta: Json | undefined; header: string | undefined }[] = [];
let receiver: Server;
let probe: Server;
let receiverUrl: string;
let probeUrl: string;

function attr(s: ExportedSpan, key: string): unknown {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : (v['stringValue'] ?? v['intValue'] ?? v['boolValue']);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    void readBody(req).then((body) => {
      rawBodies.push(body);
      const doc = JSON.parse(body) as { resourceSpans?: { scopeSpans?: { spans?: ExportedSpan[] }[] }[] };
      for (const rs of doc.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) exported.push(...(ss.spans ?? []));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  receiverUrl = `http://127.0.0.1:${await listen(receiver)}/v1/traces`;
  probe = createServer((req, res) => {
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
    const mcp = new McpServer({ name: 'probe', version: '1.0.0' });
    mcp.registerTool('whoami', { description: 'Reports the trace context it received.' }, (extra) => {
      probeSaw.push({ meta: extra._meta as Json | undefined, header: extra.requestInfo?.headers['traceparent'] as string | undefined });
      return { content: [{ type: 'text', text: 'ok' }] };
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  probeUrl = `http://127.0.0.1:${await listen(probe)}/mcp`;
});

afterAll(async () => {
  await new Promise((r) => receiver.close(r));
  await new Promise((r) => probe.close(r));
});

describe('traced gateway', () => {
  let gw: TestGateway;
  let client: Client;
  beforeAll(async () => {
    gw = await startTestGateway([demoClient('demo'), { name: 'probe', connection_type: 'http', connection_string: probeUrl }], {}, { tracing: { otlp_endpoint: receiverUrl } });
    client = await connectClient(gw);
  }, 30_000);
  afterAll(async () => {
    await client?.close();
    await gw?.stop();
  });

  it('a tools/call with traceparent in _meta: server span (child of the client), upstream span under it, the upstream joins the trace in _meta and the header', async () => {
    const r = await client.callTool({ name: 'probe-whoami', arguments: {}, _meta: { traceparent: TRACEPARENT } });
    expect(r.content).toEqual([{ type: 'text', text: 'ok' }]);
    await gw.tracing.flush();
    await waitFor(() => exported.some((s) => s.traceId === TRACE_ID && s.kind === 3));
    const server = exported.find((s) => s.traceId === TRACE_ID && s.kind === 2);
    const upstream = exported.find((s) => s.traceId === TRACE_ID && s.kind === 3);
    expect(server?.name).toBe('tools/call probe-whoami');
    expect(server?.parentSpanId).toBe(CLIENT_SPAN);
    expect(attr(server as ExportedSpan, 'mcp.method.name')).toBe('tools/call');
    expect(attr(server as ExportedSpan, 'gen_ai.tool.name')).toBe('probe-whoami');
    expect(attr(server as ExportedSpan, 'mcp.session.id')).toBeTypeOf('string');
    expect(attr(server as ExportedSpan, 'jsonrpc.request.id')).toBeTypeOf('string');
    expect(upstream?.name).toBe('tools/call whoami');
    expect(upstream?.parentSpanId).toBe(server?.spanId);
    expect(attr(upstream as ExportedSpan, 'mcp.upstream')).toBe('probe');
    const saw = probeSaw.at(-1);
    const parentInMeta = String(saw?.meta?.['traceparent'] ?? '');
    expect(parentInMeta).toBe(`00-${TRACE_ID}-${upstream?.spanId ?? ''}-01`);
    expect(saw?.header).toBe(parentInMeta);
  });

  it('the HTTP traceparent header works as the parent too, and the tool log entry carries the trace id', async () => {
    const traceId = 'a'.repeat(31) + '1';
    const c2 = await connectClient(gw);
    try {
      // the SDK client sends extra headers per request through requestInit; here: a raw POST in its session
      const sid = (c2 as unknown as { _transport: { sessionId: string } })._transport.sessionId;
      const res = await send(gw.mcpUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'mcp-session-id': sid, traceparent: `00-${traceId}-${'b'.repeat(16)}-01`, authorization: SECRET },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'traced' } } }),
      });
      expect(res.status).toBe(200);
    } finally {
      await c2.close();
    }
    await gw.tracing.flush();
    await waitFor(() => exported.some((s) => s.traceId === traceId && s.kind === 2));
    expect(exported.find((s) => s.traceId === traceId && s.kind === 2)?.parentSpanId).toBe('b'.repeat(16));
    // the tool log is written in batches: poll it until the entry is there (bounded)
    let logs: Json[] = [];
    for (let i = 0; i < 50 && !logs.some((e) => e['trace_id'] === traceId); i++) {
      logs = ((await send(`${gw.url}/api/mcp-logs?tool=echo`, { method: 'GET' })).json as { logs: Json[] }).logs;
      if (!logs.some((e) => e['trace_id'] === traceId)) await new Promise((r) => setTimeout(r, 20));
    }
    expect(logs.some((e) => e['trace_id'] === traceId)).toBe(true);
  });

  it('failures mark their spans: an unknown tool (server span) and an isError result (upstream span)', async () => {
    const traceId = 'c'.repeat(32);
    const tp = `00-${traceId}-${'d'.repeat(16)}-01`;
    await expect(client.callTool({ name: 'nope-nothing', arguments: {}, _meta: { traceparent: tp } })).rejects.toThrow();
    const bad = await client.callTool({ name: 'demo-echo', arguments: { message: 5 }, _meta: { traceparent: tp } });
    expect(bad.isError).toBe(true);
    await gw.tracing.flush();
    await waitFor(() => exported.filter((s) => s.traceId === traceId).length >= 3);
    const spans = exported.filter((s) => s.traceId === traceId);
    const unknown = spans.find((s) => s.name === 'tools/call nope-nothing');
    expect(unknown?.status?.code).toBe(2);
    expect(attr(unknown as ExportedSpan, 'error.type')).toBe('-32602');
    const upstream = spans.find((s) => s.kind === 3);
    expect(upstream?.status?.code).toBe(2);
    expect(attr(upstream as ExportedSpan, 'error.type')).toBe('tool_error');
  });

  it('no credential and no tool argument appears in any exported span', () => {
    const all = rawBodies.join('\n');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain('trb_never_in_a_span');
    expect(all).not.toContain('traced'); // the echo argument (capture_payloads is off)
  });
});


describe('sampling', () => {
  it('sample_ratio 0: a call the gateway starts a trace for exports nothing', async () => {
    const gw = await startTestGateway([demoClient('demo')], {}, { tracing: { otlp_endpoint: receiverUrl, sample_ratio: 0 } });
    const client = await connectClient(gw);
    try {
      const before = exported.length;
      await client.callTool({ name: 'demo-echo', arguments: { message: 'unsampled' } });
      await gw.tracing.flush();
      expect(gw.tracing.enabled).toBe(true);
      expect(exported.length).toBe(before);
    } finally {
      await client.close();
      await gw.stop();
    }
  });

  it('no endpoint: tracing is off', async () => {
    const gw = await startTestGateway([demoClient('demo')]);
    try {
      expect(gw.tracing.enabled).toBe(false);
    } finally {
      await gw.stop();
    }
  });
});
