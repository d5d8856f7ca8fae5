/**
 * The traced paths beyond a plain tool call, through a real gateway exporting with the real
 * OTLP/HTTP exporter to a real receiver on port 0: a server→client request relayed from a real
 * upstream (server-everything's sampling tool) with its span under the call and its context in the
 * relayed `_meta`; store batches as root spans; log lines inside a span carrying its ids; model
 * provider calls (a scripted OpenAI-compatible provider process over real HTTP) as GenAI CLIENT
 * spans under the REST request, with `traceparent` sent to the provider; a `/v1/responses` response
 * with its provider rounds and its auto-executed MCP tool under one SERVER span; a failed provider
 * call marked as error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import WebSocket from 'ws';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, demoClient, everythingClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startProvider, type TestProvider } from './helpers/openai-provider.js';
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
  events?: { name: string; attributes?: { key: string; value: Record<string, unknown> }[] }[];
}

const PROVIDER_KEY = 'sk-never-in-a-span-or-log-8f3a2c';
const rawBodies: string[] = [];

const SERVER = 2;
const CLIENT = 3;

const exported: ExportedSpan[] = [];
let receiver: Server;
let prov: TestProvider;
let gw: TestGateway;

function attr(s: ExportedSpan | undefined, key: string): unknown {
  const v = s?.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : (v['stringValue'] ?? v['intValue'] ?? v['boolValue']);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

const traceOf = (traceId: string): ExportedSpan[] => exported.filter((s) => s.traceId === traceId);

async function spansOf(traceId: string, atLeast: number): Promise<ExportedSpan[]> {
  await gw.tracing.flush();
  await waitFor(() => traceOf(traceId).length >= atLeast);
  return traceOf(traceId);
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
  const port = await new Promise<number>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve((receiver.address() as { port: number }).port)));
  prov = await startProvider();
  gw = await startTestGateway(
    [demoClient('demo'), { ...everythingClient('everything'), tools_to_auto_execute: ['echo'] }],
    {},
    {
      tracing: { otlp_endpoint: `http://127.0.0.1:${port}/v1/traces`, active_context: true },
      model_providers: { providers: [{ name: 'fake', base_url: prov.baseUrl, api_key: PROVIDER_KEY, models: ['gpt-test'], embedding_model: 'emb-64', max_retries: 0 }] },
    },
  );
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  prov?.stop();
  await new Promise((r) => receiver.close(r));
});

describe('traced paths', () => {
  it('a relayed sampling/createMessage gets a CLIENT span under the tools/call, and the client gets its context in _meta', async () => {
    const traceId = '1'.repeat(31) + 'a';
    const client = await connectClient(gw, { sampling: {} });
    const relayedMeta: Json[] = [];
    try {
      client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        relayedMeta.push((req.params._meta ?? {}) as Json);
        return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled 42' } };
      });
      const r = await client.callTool({ name: 'everything-trigger-sampling-request', arguments: { prompt: 'six times seven', maxTokens: 5 }, _meta: { traceparent: `00-${traceId}-${'2'.repeat(16)}-01` } });
      expect(JSON.stringify(r.content)).toContain('sampled 42');
    } finally {
      await client.close();
    }
    const spans = await spansOf(traceId, 3);
    const server = spans.find((s) => s.kind === SERVER && s.name === 'tools/call everything-trigger-sampling-request');
    const relay = spans.find((s) => s.name === 'sampling/createMessage');
    expect(server).toBeDefined();
    expect(relay?.kind).toBe(CLIENT);
    expect(relay?.parentSpanId).toBe(server?.spanId);
    expect(attr(relay, 'mcp.method.name')).toBe('sampling/createMessage');
    expect(attr(relay, 'mcp.upstream')).toBe('everything');
    expect(attr(relay, 'mcp.session.id')).toBe(attr(server, 'mcp.session.id'));
    expect(relayedMeta[0]?.['traceparent']).toBe(`00-${traceId}-${relay?.spanId ?? ''}-01`);
    // the upstream call's span marks when the request left the gateway's queue for the upstream
    const upstream = spans.find((s) => s.kind === CLIENT && s.name === 'tools/call trigger-sampling-request');
    const dispatched = upstream?.events?.find((e) => e.name === 'upstream.dispatched');
    const wait = dispatched?.attributes?.find((a) => a.key === 'tributary.queue_wait_ms')?.value['doubleValue'];
    expect(typeof wait).toBe('number');
    expect(wait as number).toBeGreaterThanOrEqual(0);
  });

  it('store batches are root spans with the database attributes', async () => {
    const client = await connectClient(gw);
    try {
      await client.callTool({ name: 'demo-echo', arguments: { message: 'for the tool log' } });
    } finally {
      await client.close();
    }
    await gw.tracing.flush();
    await waitFor(() => exported.some((s) => s.name === 'store.batch'));
    const batch = exported.find((s) => s.name === 'store.batch');
    expect(batch?.parentSpanId ?? '').toBe('');
    expect(attr(batch, 'db.system.name')).toBe('leveldb');
    expect(attr(batch, 'db.operation.name')).toBe('batch');
    expect(Number(attr(batch, 'db.operation.batch.size'))).toBeGreaterThanOrEqual(1);
  });

  it('log lines written inside a span carry its trace_id and span_id; lines outside spans do not', async () => {
    const traceId = '3'.repeat(31) + 'b';
    const r = await send(`${gw.url}/api/log-level`, { method: 'PUT', headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${'4'.repeat(16)}-01` }, body: JSON.stringify({ level: 'debug' }) });
    expect(r.status).toBe(200);
    const [rest] = await spansOf(traceId, 1);
    expect(rest?.name).toBe('PUT /api/log-level');
    const line = gw.logs.map((l) => JSON.parse(l) as Json).find((l) => l['msg'] === 'log level changed');
    expect(line).toMatchObject({ trace_id: traceId, span_id: rest?.spanId });
    const listening = gw.logs.map((l) => JSON.parse(l) as Json).find((l) => l['msg'] === 'listening');
    expect(listening).toBeDefined();
    expect(listening).not.toHaveProperty('trace_id');
  });

  it('a provider call inside a REST request is a GenAI CLIENT span under it, and the provider receives its traceparent', async () => {
    const traceId = '5'.repeat(31) + 'c';
    const agent = await send(`${gw.url}/api/v1/agents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'tracer', model: 'gpt-test' }) });
    expect(agent.status).toBe(201);
    const agentId = (agent.json as Json)['id'] as string;
    await prov.reset();
    const r = await send(`${gw.url}/api/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${'6'.repeat(16)}-01` },
      body: JSON.stringify({ agent_id: agentId, text: 'trace me', model: 'fake/emb-64', store: false }),
    });
    expect(r.status).toBe(201);
    const spans = await spansOf(traceId, 2);
    const rest = spans.find((s) => s.kind === SERVER);
    const call = spans.find((s) => s.kind === CLIENT);
    expect(rest?.name).toBe('POST /api/v1/embeddings');
    expect(call?.name).toBe('embeddings emb-64');
    expect(call?.parentSpanId).toBe(rest?.spanId);
    expect(attr(call, 'gen_ai.operation.name')).toBe('embeddings');
    expect(attr(call, 'gen_ai.provider.name')).toBe('openai');
    expect(attr(call, 'gen_ai.request.model')).toBe('emb-64');
    expect(attr(call, 'tributary.provider')).toBe('fake');
    expect(attr(call, 'server.address')).toBe('127.0.0.1');
    expect(Number(attr(call, 'gen_ai.usage.input_tokens'))).toBeGreaterThan(0);
    const seen = await prov.requests();
    expect(seen.at(-1)?.traceparent).toBe(`00-${traceId}-${call?.spanId ?? ''}-01`);
  });

  it('a failed provider call marks its span with the error type', async () => {
    const traceId = '7'.repeat(31) + 'd';
    const agent = await send(`${gw.url}/api/v1/agents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'tracer-2', model: 'gpt-test' }) });
    await prov.script({ error: 400, message: 'This model does not support embeddings' });
    const r = await send(`${gw.url}/api/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${'8'.repeat(16)}-01` },
      body: JSON.stringify({ agent_id: (agent.json as Json)['id'], text: 'fails', model: 'fake/emb-64', store: false }),
    });
    expect(r.status).toBe(502);
    const spans = await spansOf(traceId, 2);
    const call = spans.find((s) => s.kind === CLIENT);
    expect(call?.status?.code).toBe(2);
    expect(attr(call, 'error.type')).toBe('PROVIDER_ERROR');
  });

  it('a /v1/responses response: one SERVER span with its provider rounds and the auto-executed MCP tool under it', async () => {
    await prov.script({ call: { name: 'everything-echo', arguments: '{"message":"traced tool"}', call_id: 'c1' } }, { text: 'done' });
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/responses`);
    const events: Json[] = [];
    ws.on('message', (d) => events.push(JSON.parse(String(d)) as Json));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    try {
      ws.send(JSON.stringify({ type: 'response.create', model: 'fake/gpt-test', input: 'use the tool' }));
      await waitFor(() => events.some((e) => e['type'] === 'response.completed' || e['type'] === 'response.failed'));
      expect(events.at(-1)?.['type']).toBe('response.completed');
    } finally {
      ws.close();
    }
    const id = events.find((e) => e['type'] === 'response.created')?.['response_id'] as string;
    await gw.tracing.flush();
    await waitFor(() => exported.some((s) => s.name === 'response.create' && attr(s, 'gen_ai.response.id') === id));
    const root = exported.find((s) => s.name === 'response.create' && attr(s, 'gen_ai.response.id') === id) as ExportedSpan;
    const spans = await spansOf(root.traceId, 4);
    expect(root.kind).toBe(SERVER);
    expect(root.parentSpanId ?? '').toBe('');
    expect(attr(root, 'gen_ai.request.model')).toBe('fake/gpt-test');
    const rounds = spans.filter((s) => s.name === 'chat gpt-test');
    expect(rounds).toHaveLength(2);
    expect(rounds.every((s) => s.kind === CLIENT && s.parentSpanId === root.spanId)).toBe(true);
    const tool = spans.find((s) => s.name === 'tools/call echo');
    expect(tool?.parentSpanId).toBe(root.spanId);
    expect(attr(tool, 'mcp.upstream')).toBe('everything');
  });

  it('the provider key never appears in an exported span or a log line; the provider got it', async () => {
    expect((await prov.requests()).some((r) => r.authorization === `Bearer ${PROVIDER_KEY}`)).toBe(true);
    expect(rawBodies.length).toBeGreaterThan(0);
    for (const body of rawBodies) expect(body).not.toContain(PROVIDER_KEY);
    expect(gw.logs.length).toBeGreaterThan(0);
    for (const line of gw.logs) expect(line).not.toContain(PROVIDER_KEY);
  });
});
