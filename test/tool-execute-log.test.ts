/**
 * `POST /v1/mcp/tool/execute` in chat and responses formats, and the tool log with its stats
 * after known calls at known prices — against a real gateway and its LevelDB store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, demoClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

type Json = Record<string, unknown>;

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway([demoClient(), demoClient('narrow', { tools_to_execute: ['echo'] }), demoClient('short', { request_timeout_ms: 200 })]);
});

afterAll(async () => {
  await gw?.stop();
});

function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return send(`${gw.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
}

function chat(name: string, args: string, id = 'call_1'): Json {
  return { id, type: 'function', function: { name, arguments: args } };
}

describe('tool execution formats', () => {
  it('chat: runs the tool and answers a tool message', async () => {
    const r = await api('POST', '/v1/mcp/tool/execute?format=chat', chat('demo-echo', '{"message":"hi"}', 'call_42'));
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ role: 'tool', tool_call_id: 'call_42', content: 'Echo: hi' });
  });

  it('chat is the default format', async () => {
    const r = await api('POST', '/v1/mcp/tool/execute', chat('demo-add', '{"a":2,"b":3}'));
    expect(r.json).toMatchObject({ role: 'tool', content: '5' });
  });

  it('responses: runs the tool and answers a function_call_output', async () => {
    const r = await api('POST', '/v1/mcp/tool/execute?format=responses', { call_id: 'fc_1', name: 'demo-echo', arguments: '{"message":"yo"}' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ type: 'function_call_output', call_id: 'fc_1', output: 'Echo: yo' });
  });

  it.each([
    ['arguments not JSON', chat('demo-echo', '{nope'), 400, 'VALIDATION_ERROR'],
    ['arguments an array', chat('demo-echo', '[1,2]'), 400, 'VALIDATION_ERROR'],
    ['arguments a string', chat('demo-echo', '"x"'), 400, 'VALIDATION_ERROR'],
    ['missing function', { id: 'x', type: 'function' }, 400, 'VALIDATION_ERROR'],
    ['unknown tool', chat('demo-nope', '{}'), 404, 'TOOL_NOT_FOUND'],
    ['filtered-out tool', chat('narrow-add', '{"a":1,"b":1}'), 403, 'TOOL_NOT_ALLOWED'],
  ])('%s → %i %s', async (_n, body, status, code) => {
    const r = await api('POST', '/v1/mcp/tool/execute?format=chat', body);
    expect(r.status).toBe(status);
    expect(r.json).toMatchObject({ code });
  });

  it('rejects an unknown format', async () => {
    const r = await api('POST', '/v1/mcp/tool/execute?format=xml', chat('demo-echo', '{}'));
    expect(r.status).toBe(400);
  });

  it('answers upstream failures in the format\'s own shape', async () => {
    const c = await api('POST', '/v1/mcp/tool/execute?format=chat', chat('short-sleep', '{"ms":2000}', 'call_t'));
    expect(c.status).toBe(504);
    expect(c.json).toMatchObject({ role: 'tool', tool_call_id: 'call_t', error: { code: 'UPSTREAM_TIMEOUT' } });
    expect((c.json as { content: string }).content).toMatch(/^Error: Upstream "short" did not answer/);
    const r = await api('POST', '/v1/mcp/tool/execute?format=responses', { call_id: 'fc_t', name: 'short-sleep', arguments: '{"ms":2000}' });
    expect(r.status).toBe(504);
    expect(r.json).toMatchObject({ type: 'function_call_output', call_id: 'fc_t', code: 'UPSTREAM_TIMEOUT' });
    expect((r.json as { error: string }).error).toMatch(/did not answer/);
  });
});

describe('tool log and costs', () => {
  it('logs every call from every surface with status, latency and cost; stats add up', async () => {
    const demoId = (((await api('GET', '/api/mcp/clients?search=demo')).json as { clients: { config: Json }[] }).clients[0]?.config['client_id']) as string;
    const priced = await api('PUT', `/api/mcp/client/${demoId}`, { tool_pricing: { echo: 0.002, add: 0.01 } });
    expect(priced.status).toBe(200);
    const since = Date.now();
    const client = await connectClient(gw);
    try {
      for (let i = 0; i < 5; i++) await client.callTool({ name: 'demo-echo', arguments: { message: `m${i}` } });
      await client.callTool({ name: 'demo-add', arguments: { a: 1, b: 2 } });
      // a tool-level error (bad argument type): logged as error, not charged
      const bad = await client.callTool({ name: 'demo-add', arguments: { a: 'x', b: 2 } });
      expect(bad.isError).toBe(true);
    } finally {
      await client.close();
    }
    await api('POST', '/v1/mcp/tool/execute', chat('demo-echo', '{"message":"rest"}'));
    await api('POST', '/v1/mcp/tool/execute', chat('demo-echo', '{"message":"rest2"}'));

    const q = `client=demo&from=${since}`;
    let logs: { logs: Json[]; total_count: number } = { logs: [], total_count: 0 };
    const deadline = Date.now() + 5000;
    while (logs.total_count < 9 && Date.now() < deadline) {
      logs = (await api('GET', `/api/mcp-logs?${q}&limit=100`)).json as typeof logs;
      if (logs.total_count < 9) await new Promise((r) => setTimeout(r, 20));
    }
    expect(logs.total_count).toBe(9);
    const newest = logs.logs[0] as Json;
    expect(newest).toMatchObject({ client: 'demo', tool: 'echo', status: 'success', surface: 'rest', cost_usd: 0.002, arguments: { message: 'rest2' } });
    expect(typeof newest['latency_ms']).toBe('number');
    expect(newest['timestamp']).toMatch(/Z$/);
    const errors = (await api('GET', `/api/mcp-logs?${q}&status=error`)).json as { logs: Json[]; total_count: number };
    expect(errors.total_count).toBe(1);
    expect(errors.logs[0]).toMatchObject({ tool: 'add', status: 'error', cost_usd: 0 });
    const adds = (await api('GET', `/api/mcp-logs?${q}&tool=add`)).json as { total_count: number };
    expect(adds.total_count).toBe(2);
    const page = (await api('GET', `/api/mcp-logs?${q}&limit=4&offset=4`)).json as { logs: Json[]; count: number };
    expect(page.count).toBe(4);

    const stats = (await api('GET', `/api/mcp-logs/stats?${q}`)).json as Json;
    expect(stats['total_executions']).toBe(9);
    expect(stats['success_rate']).toBeCloseTo(8 / 9, 6);
    expect(stats['total_cost']).toBeCloseTo(7 * 0.002 + 0.01, 9);
    expect(stats['average_latency']).toBeGreaterThan(0);
  });

  it('rejects bad log filters', async () => {
    expect((await api('GET', '/api/mcp-logs?status=maybe')).status).toBe(400);
    expect((await api('GET', '/api/mcp-logs?from=yesterday')).status).toBe(400);
    expect((await api('GET', '/api/mcp-logs?limit=0')).status).toBe(400);
  });
});
