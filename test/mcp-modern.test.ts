/**
 * MCP 2026-07-28 (stateless, per-request `_meta`) next to the session revisions on /mcp, with real
 * parts: the SDK v2 client (`@modelcontextprotocol/client`) pinned to the modern era and in legacy
 * mode, server-everything over stdio and the in-process demo as upstreams, raw HTTP for the wire
 * rules (https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { demoClient, everythingClient, rawPost, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

const V = '2026-07-28';

/** The `_meta` of a modern request. */
function meta(caps: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': V,
    'io.modelcontextprotocol/clientCapabilities': caps,
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
    ...extra,
  };
}

/** POSTs one modern request with the standard headers (overridable). */
function modern(gw: TestGateway, id: number, method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}, caps: Record<string, unknown> = {}): ReturnType<typeof rawPost> {
  const name = method === 'resources/read' ? params['uri'] : params['name'];
  return rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: meta(caps) } }), {
    'mcp-protocol-version': V,
    'mcp-method': method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    ...headers,
  });
}

type Rpc = { id: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway([demoClient(), everythingClient()]);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

describe('SDK v2 client against both eras of one endpoint', () => {
  it('a client pinned to 2026-07-28 lists and calls tools without a session', async () => {
    const client = new Client({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: V } } });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl));
    try {
      expect(client.getProtocolEra()).toBe('modern');
      expect(client.getDiscoverResult()?.supportedVersions).toContain(V);
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toContain('demo-echo');
      const r = await client.callTool({ name: 'demo-echo', arguments: { message: 'hi' } });
      expect(JSON.stringify(r.content)).toContain('hi');
      expect(gw.sessions.size).toBe(0);
    } finally {
      await client.close();
    }
  });

  it('a client in legacy mode still gets initialize and a session', async () => {
    const client = new Client({ name: 'legacy', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl));
    try {
      expect(client.getProtocolEra()).toBe('legacy');
      const r = await client.callTool({ name: 'demo-echo', arguments: { message: 'old' } });
      expect(JSON.stringify(r.content)).toContain('old');
      expect(gw.sessions.size).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('auto mode finds the modern era through server/discover', async () => {
    const client = new Client({ name: 'auto', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl));
    try {
      expect(client.getProtocolEra()).toBe('modern');
    } finally {
      await client.close();
    }
  });
});

describe('the 2026-07-28 wire on /mcp', () => {
  it('server/discover names every served revision, the aggregated capabilities and the gateway', async () => {
    const r = await modern(gw, 1, 'server/discover');
    expect(r.status).toBe(200);
    const body = r.json as Rpc;
    expect(body.result?.['supportedVersions']).toEqual([V, '2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']);
    expect(body.result?.['capabilities']).toMatchObject({ tools: { listChanged: true } });
    expect(body.result?.['resultType']).toBe('complete');
    expect((body.result?.['_meta'] as Record<string, unknown>)['io.modelcontextprotocol/serverInfo']).toMatchObject({ name: 'tributary' });
    expect(r.headers.get('mcp-session-id')).toBeNull();
  });

  it('list results carry resultType, ttlMs and cacheScope', async () => {
    const body = (await modern(gw, 2, 'tools/list')).json as Rpc;
    expect(body.result).toMatchObject({ resultType: 'complete', ttlMs: 60_000, cacheScope: 'public' });
  });

  it('a header that disagrees with the body is 400 with -32020', async () => {
    const r = await modern(gw, 3, 'tools/call', { name: 'demo-echo', arguments: { text: 'x' } }, { 'mcp-name': 'demo-add' });
    expect(r.status).toBe(400);
    expect((r.json as Rpc).error?.code).toBe(-32020);
    const m = await modern(gw, 4, 'tools/list', {}, { 'mcp-method': 'prompts/list' });
    expect(m.status).toBe(400);
    expect((m.json as Rpc).error?.code).toBe(-32020);
  });

  it('Mcp-Name in the base64 sentinel form is decoded before comparing', async () => {
    const enc = `=?base64?${Buffer.from('demo-echo').toString('base64')}?=`;
    const r = await modern(gw, 5, 'tools/call', { name: 'demo-echo', arguments: { text: 'b64' } }, { 'mcp-name': enc });
    expect(r.status).toBe(200);
    expect((r.json as Rpc).result?.['resultType']).toBe('complete');
  });

  it('Mcp-Param-* headers of x-mcp-header tools are checked against the arguments', async () => {
    const up = await startTestGateway([{ name: 'fx', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', 'test/fixtures/conformance-server.ts'] } }]);
    try {
      const call = (region: string | undefined, header: string | undefined): ReturnType<typeof rawPost> =>
        modern(up, 20, 'tools/call', { name: 'fx-test_custom_header', arguments: region === undefined ? {} : { region } }, header === undefined ? {} : { 'mcp-param-region': header });
      expect((await call('eu', 'eu')).status).toBe(200);
      expect((await call('Hello', `=?base64?${Buffer.from('Hello').toString('base64')}?=`)).status).toBe(200);
      for (const [value, header] of [['eu', undefined], ['eu', 'us'], ['Hello', '=?base64?SGVsbG8?='], ['Hello', '=?base64?SGVs!!!bG8=?=']] as const) {
        const r = await call(value, header);
        expect(r.status).toBe(400);
        expect((r.json as Rpc).error?.code).toBe(-32020);
      }
    } finally {
      await up.stop();
    }
  }, 60_000);

  it('an unsupported version is 400 with -32022 listing the supported ones', async () => {
    const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'tools/list', params: { _meta: { ...meta(), 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } }), {
      'mcp-protocol-version': '2099-01-01',
      'mcp-method': 'tools/list',
    });
    expect(r.status).toBe(400);
    const e = (r.json as Rpc).error;
    expect(e?.code).toBe(-32022);
    expect(e?.data).toMatchObject({ requested: '2099-01-01', supported: expect.arrayContaining([V]) as unknown });
    expect((r.json as Rpc).id).toBe(6);
  });

  it('a request without _meta capabilities is 400 with -32602', async () => {
    const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': V } } }), {
      'mcp-protocol-version': V,
      'mcp-method': 'tools/list',
    });
    expect(r.status).toBe(400);
    expect((r.json as Rpc).error?.code).toBe(-32602);
  });

  it.each(['ping', 'logging/setLevel', 'resources/subscribe', 'initialize', 'no/such'])('%s is 404 with -32601', async (method) => {
    const r = await modern(gw, 8, method);
    expect(r.status).toBe(404);
    expect((r.json as Rpc).error?.code).toBe(-32601);
  });

  it('GET and DELETE from a 2026-07-28 client are 405', async () => {
    for (const method of ['GET', 'DELETE']) {
      const r = await send(gw.mcpUrl, { method, headers: { accept: 'text/event-stream', 'mcp-protocol-version': V } });
      expect(r.status).toBe(405);
    }
  });

  it('resources/read of an unknown URI is -32602 with data.uri', async () => {
    const body = (await modern(gw, 9, 'resources/read', { uri: 'nosuch://thing' })).json as Rpc;
    expect(body.error?.code).toBe(-32602);
    expect(body.error?.data?.['uri']).toBe('nosuch://thing');
  });

  it('a relayed elicitation without the client capability is 400 with -32021 naming it', async () => {
    const r = await modern(gw, 10, 'tools/call', { name: 'everything-trigger-elicitation-request', arguments: {} });
    expect(r.status).toBe(400);
    const e = (r.json as Rpc).error;
    expect(e?.code).toBe(-32021);
    expect(e?.data?.['requiredCapabilities']).toEqual({ elicitation: {} });
  });

  it('a relayed elicitation becomes input_required; the retry with inputResponses completes the call', async () => {
    const caps = { elicitation: {} };
    // A relayed request from a stdio upstream is matched to a call only while every call in flight
    // on that upstream comes from one session: start with no other call on it (the previous test's
    // ends with -32021). The assertion below prints the reply if the call still completes at once.
    await waitFor(() => (gw.manager.get('everything')?.inflight ?? 0) === 0 && [...gw.sessions.values()].every((s) => s.calls.size === 0));
    const first = (await modern(gw, 11, 'tools/call', { name: 'everything-trigger-elicitation-request', arguments: {} }, {}, caps)).json as Rpc;
    expect(first.result?.['resultType'], JSON.stringify(first).slice(0, 800)).toBe('input_required');
    const requests = first.result?.['inputRequests'] as Record<string, { method: string }>;
    const keys = Object.keys(requests);
    expect(keys).toHaveLength(1);
    expect(requests[keys[0] ?? '']?.method).toBe('elicitation/create');
    const state = first.result?.['requestState'];
    expect(typeof state).toBe('string');
    // a tampered state is refused
    const bad = (await modern(gw, 12, 'tools/call', { name: 'everything-trigger-elicitation-request', arguments: {}, requestState: `${String(state)}x`, inputResponses: {} }, {}, caps)).json as Rpc;
    expect(bad.error?.code).toBe(-32602);
    const answer = { action: 'accept', content: { name: 'Ada', check: true, firstLine: 'Once', integer: 3, number: 1.5, email: 'a@b.c', uri: 'https://x.y', date: '2026-01-01', dateTime: '2026-01-01T00:00:00Z', untitledSingleSelectEnum: 'option1', untitledMultipleSelectEnum: ['option1'], titledSingleSelectEnum: 'option1', titledMultipleSelectEnum: ['option1'], legacyTitledEnum: 'option1' } };
    const second = (await modern(gw, 13, 'tools/call', { name: 'everything-trigger-elicitation-request', arguments: {}, requestState: state, inputResponses: { [keys[0] ?? '']: answer } }, {}, caps)).json as Rpc;
    expect(second.result?.['resultType']).toBe('complete');
    expect(JSON.stringify(second.result?.['content'])).toContain('Ada');
    // the state is single-use
    const again = (await modern(gw, 14, 'tools/call', { name: 'everything-trigger-elicitation-request', arguments: {}, requestState: state, inputResponses: { [keys[0] ?? '']: answer } }, {}, caps)).json as Rpc;
    expect(again.error?.code).toBe(-32602);
  }, 30_000);

  it('subscriptions/listen acknowledges first and tags notifications with the subscription id', async () => {
    const res = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': V, 'mcp-method': 'subscriptions/listen' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'sub-1', method: 'subscriptions/listen', params: { _meta: meta(), notifications: { toolsListChanged: true, promptsListChanged: false } } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body?.getReader();
    if (!reader) throw new Error('no body');
    let text = '';
    while (!text.includes('acknowledged')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    const first = JSON.parse(/data: (.*)\n/.exec(text)?.[1] ?? '{}') as { method: string; params: { _meta: Record<string, unknown>; notifications: unknown } };
    expect(first.method).toBe('notifications/subscriptions/acknowledged');
    expect(first.params._meta['io.modelcontextprotocol/subscriptionId']).toBe('sub-1');
    expect(first.params.notifications).toEqual({ toolsListChanged: true });
    await reader.cancel();
  });
});

describe('the 2026-07-28 era on /ws', () => {
  it('serves modern requests on a socket that never sent initialize', async () => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const replies = new Map<unknown, Rpc>();
    const waiters = new Map<unknown, (r: Rpc) => void>();
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as Rpc;
      if (m.id === undefined) return;
      const w = waiters.get(m.id);
      if (w) w(m);
      else replies.set(m.id, m);
    });
    const ask = (id: number, method: string, params: Record<string, unknown>): Promise<Rpc> =>
      new Promise((resolve) => {
        waiters.set(id, resolve);
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      });
    try {
      const list = await ask(1, 'tools/list', { _meta: meta() });
      expect(list.result).toMatchObject({ resultType: 'complete', cacheScope: 'public' });
      const call = await ask(2, 'tools/call', { name: 'demo-echo', arguments: { message: 'ws' }, _meta: meta() });
      expect(JSON.stringify(call.result?.['content'])).toContain('ws');
      const bad = await ask(3, 'tools/list', { _meta: { ...meta(), 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } });
      expect(bad.error?.code).toBe(-32022);
      const noCaps = await ask(4, 'tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': V } });
      expect(noCaps.error?.code).toBe(-32602);
      const ping = await ask(5, 'ping', { _meta: meta() });
      expect(ping.error?.code).toBe(-32601);
      // a session-based request on the same socket still needs initialize
      const legacy = await ask(6, 'tools/list', {});
      expect(legacy.error?.message).toMatch(/initialize/);
    } finally {
      ws.close();
    }
  });
});

describe('subscriptions/listen on /ws', () => {
  it('acknowledges, carries tagged list changes next to other traffic, and ends on notifications/cancelled', async () => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const seen: { id?: unknown; method?: string; params?: { _meta?: Record<string, unknown>; notifications?: unknown }; result?: Record<string, unknown> }[] = [];
    ws.on('message', (data: Buffer) => seen.push(JSON.parse(data.toString()) as (typeof seen)[number]));
    const tag = (m: (typeof seen)[number]): unknown => m.params?._meta?.['io.modelcontextprotocol/subscriptionId'];
    try {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'w1', method: 'subscriptions/listen', params: { _meta: meta(), notifications: { toolsListChanged: true } } }));
      await waitFor(() => seen.some((m) => m.method === 'notifications/subscriptions/acknowledged'));
      const ack = seen.find((m) => m.method === 'notifications/subscriptions/acknowledged');
      expect(tag(ack ?? {})).toBe('w1');
      expect(ack?.params?.notifications).toEqual({ toolsListChanged: true });
      // other requests share the socket while the subscription is open
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: meta() } }));
      await waitFor(() => seen.some((m) => m.id === 7));
      // a real catalogue change: an upstream added
      await gw.manager.add({ name: 'extra', connection_type: 'inprocess', inprocess_server: 'demo' } as Parameters<typeof gw.manager.add>[0]);
      await waitFor(() => seen.some((m) => m.method === 'notifications/tools/list_changed'));
      expect(tag(seen.find((m) => m.method === 'notifications/tools/list_changed') ?? {})).toBe('w1');
      ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'w1' } }));
      // after the cancel, a change reaches the socket no more (and no response for w1 is sent)
      const before = seen.length;
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/list', params: { _meta: meta() } }));
      await waitFor(() => seen.some((m) => m.id === 8));
      await gw.manager.remove('extra');
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: { _meta: meta() } }));
      await waitFor(() => seen.some((m) => m.id === 9));
      expect(seen.slice(before).filter((m) => m.method === 'notifications/tools/list_changed' || m.id === 'w1')).toEqual([]);
    } finally {
      ws.close();
    }
  });
});

describe('upstreams of both eras', () => {
  it('a 2026-07-28 upstream (another gateway) is spoken to statelessly next to a legacy one, and both serve both eras downstream', async () => {
    // the upstream: a gateway serving 2026-07-28 on /mcp (and the session revisions)
    const up = await startTestGateway([demoClient('inner')]);
    const front = await startTestGateway([{ name: 'modern', connection_type: 'http', connection_string: up.mcpUrl.href }, everythingClient('legacy')]);
    try {
      const tools = (await modern(front, 1, 'tools/list')).json as Rpc;
      const names = (tools.result?.['tools'] as { name: string }[]).map((t) => t.name);
      expect(names).toContain('modern-inner-echo');
      expect(names).toContain('legacy-echo');
      // a modern client through a modern upstream: no session anywhere
      const r = (await modern(front, 2, 'tools/call', { name: 'modern-inner-echo', arguments: { message: 'deep' } })).json as Rpc;
      expect(JSON.stringify(r.result?.['content'])).toContain('deep');
      expect(up.sessions.size).toBe(0);
      // a legacy client through the same modern upstream
      const legacy = new Client({ name: 'legacy', version: '1.0.0' });
      await legacy.connect(new StreamableHTTPClientTransport(front.mcpUrl));
      const viaLegacy = await legacy.callTool({ name: 'modern-inner-echo', arguments: { message: 'old-to-new' } });
      expect(JSON.stringify(viaLegacy.content)).toContain('old-to-new');
      const viaLegacy2 = await legacy.callTool({ name: 'legacy-echo', arguments: { message: 'old-to-old' } });
      expect(JSON.stringify(viaLegacy2.content)).toContain('old-to-old');
      await legacy.close();
      expect(up.sessions.size).toBe(0);
    } finally {
      await front.stop();
      await up.stop();
    }
  }, 60_000);
});

describe('stateless across a restart', () => {
  it('a client that learned the era from one gateway process is served by a fresh one with nothing carried over', async () => {
    const a = await startTestGateway([demoClient()]);
    const client = new Client({ name: 'restart', version: '1.0.0' }, { versionNegotiation: { mode: { pin: V } } });
    await client.connect(new StreamableHTTPClientTransport(a.mcpUrl));
    const discover = client.getDiscoverResult();
    const r1 = await client.callTool({ name: 'demo-echo', arguments: { message: 'one' } });
    expect(JSON.stringify(r1.content)).toContain('one');
    await client.close();
    await a.stop();
    // a new process (new data dir, no session store): the second request needs nothing from the first
    const b = await startTestGateway([demoClient()]);
    try {
      const again = new Client({ name: 'restart', version: '1.0.0' });
      if (discover === undefined) throw new Error('no discover result');
      await again.connect(new StreamableHTTPClientTransport(b.mcpUrl), { prior: { kind: 'modern', discover } });
      const viaSdk = await again.callTool({ name: 'demo-echo', arguments: { message: 'two' } });
      expect(JSON.stringify(viaSdk.content)).toContain('two');
      await again.close();
      expect(b.sessions.size).toBe(0);
      const r2 = await modern(b, 2, 'tools/call', { name: 'demo-echo', arguments: { message: 'two' } });
      expect(r2.status).toBe(200);
      expect(JSON.stringify((r2.json as Rpc).result?.['content'])).toContain('two');
    } finally {
      await b.stop();
    }
  }, 30_000);
});
