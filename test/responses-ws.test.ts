/**
 * `/v1/responses` over a real WebSocket (`ws`), with a real upstream MCP server
 * (server-everything over stdio, `echo` auto-executed) and a scripted OpenAI-compatible provider
 * process over real HTTP/SSE: a stream relayed event by event, an auto-executed MCP tool and its
 * tool-log entry, a client tool continued with `function_call_output`, retries then a clear error,
 * a virtual key's tool filter on the tools offered, several responses in flight, bad input.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { everythingClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startProvider, type TestProvider } from './helpers/openai-provider.js';

type Json = Record<string, unknown>;

const ADMIN_PASSWORD = 'responses-test-admin';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };

let gw: TestGateway;
let prov: TestProvider;
let userKey: string;
let vk: string;

async function api(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await send(`${gw.url}${path}`, { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, json: (r.json ?? {}) as Json };
}

beforeAll(async () => {
  prov = await startProvider();
  gw = await startTestGateway(
    [
      { ...everythingClient('everything'), tools_to_auto_execute: ['echo'] },
    ],
    {},
    {
      auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 10_000, requests_per_hour: 100_000, tool_executions_per_hour: 10_000 } },
      model_providers: {
        providers: [
          { name: 'fake', base_url: prov.baseUrl, models: ['gpt-test'], max_retries: 2, retry_initial_ms: 5, retry_max_ms: 1000 },
          { name: 'chatonly', base_url: prov.baseUrl, responses_api: 'chat_completions' },
        ],
      },
      responses: { max_tool_rounds: 3 },
    },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
  );
  const key = await api('POST', '/api/auth/keys', ADMIN, { name: 'client' });
  userKey = key.json['secret'] as string;
  const v = await api('POST', '/api/auth/virtual-keys', ADMIN, { name: 'echo only' });
  vk = v.json['secret'] as string;
  const vkId = (v.json['virtual_key'] as Json)['id'] as string;
  const clients = await api('GET', '/api/mcp/clients', ADMIN);
  const everything = (clients.json['clients'] as Json[]).find((c) => (c['config'] as Json)['name'] === 'everything') as Json;
  const put = await api('PUT', `/api/mcp/client/${String((everything['config'] as Json)['client_id'])}`, ADMIN, { vk_configs: [{ virtual_key_id: vkId, tools_to_execute: ['echo'] }] });
  expect(put.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  prov?.stop();
});

beforeEach(async () => {
  await prov.reset();
});

/** An open socket and everything it received, in order. */
interface Socket {
  readonly ws: WebSocket;
  readonly events: Json[];
  /** Resolves with the events of `responseId` (or the first new response) up to its terminal event. */
  until(pred: (e: Json) => boolean): Promise<Json>;
  send(msg: Json): void;
}

function connect(headers: Record<string, string>): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/responses`, { headers });
    const events: Json[] = [];
    const waiters: { pred: (e: Json) => boolean; resolve: (e: Json) => void }[] = [];
    ws.on('message', (data) => {
      const e = JSON.parse(data.toString()) as Json;
      events.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    });
    ws.once('open', () =>
      resolve({
        ws,
        events,
        until: (pred) => {
          const found = events.find(pred);
          return found ? Promise.resolve(found) : new Promise((r) => waiters.push({ pred, resolve: r }));
        },
        send: (msg) => ws.send(JSON.stringify(msg)),
      }),
    );
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode ?? 0}`)));
    ws.once('error', reject);
  });
}

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);
const terminalOf = (id: string) => (e: Json): boolean => TERMINAL.has(e['type'] as string) && e['response_id'] === id;
const eventsOf = (s: Socket, id: string): Json[] => s.events.filter((e) => e['response_id'] === id);

async function createAndFinish(s: Socket, body: Json): Promise<{ id: string; events: Json[]; final: Json }> {
  const before = s.events.length;
  s.send({ type: 'response.create', ...body });
  const created = await s.until((e, i = s.events.indexOf(e)) => i >= before && e['type'] === 'response.created');
  const id = created['response_id'] as string;
  const final = await s.until(terminalOf(id));
  return { id, events: eventsOf(s, id), final };
}

describe('/v1/responses', () => {
  it('refuses an upgrade without credentials', async () => {
    await expect(connect({})).rejects.toThrow(/401/);
  });

  it('relays a text stream event by event', async () => {
    const s = await connect({ authorization: `Bearer ${userKey}` });
    await prov.script({ text: 'Hello world', chunks: ['Hel', 'lo', ' world'] });
    const { id, events, final } = await createAndFinish(s, { model: 'gpt-test', input: 'Say hello', instructions: 'Be brief' });
    expect(id).toMatch(/^resp_/);
    expect(events.map((e) => e['type'])).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e['sequence_number'])).toEqual(events.map((_, i) => i));
    expect(events.filter((e) => e['type'] === 'response.output_text.delta').map((e) => e['delta'])).toEqual(['Hel', 'lo', ' world']);
    expect(final['response']).toMatchObject({ id, object: 'response', status: 'completed', model: 'gpt-test', usage: { input_tokens: 12, output_tokens: 7, total_tokens: 19 } });
    expect(((final['response'] as Json)['output'] as Json[])[0]).toMatchObject({ type: 'message', content: [{ type: 'output_text', text: 'Hello world' }] });
    const req = (await prov.requests())[0];
    expect(req?.path).toBe('/v1/responses');
    expect(req?.body).toMatchObject({ model: 'gpt-test', stream: true, store: false, instructions: 'Be brief', input: [{ type: 'message', role: 'user', content: 'Say hello' }] });
    // the caller's MCP tools are offered as function tools
    expect(((req?.body['tools'] as Json[]) ?? []).map((t) => t['name'])).toEqual(expect.arrayContaining(['everything-echo', 'everything-get-sum']));
    s.ws.close();
  });

  it('auto-executes an MCP tool inside a response, feeds its output back, and logs the call', async () => {
    const s = await connect({ 'x-api-key': userKey });
    const since = new Date().toISOString();
    await prov.script({ call: { name: 'everything-echo', arguments: '{"message":"from the model"}', call_id: 'call_echo_1' } }, { text: 'The tool said: Echo: from the model' });
    const { events, final } = await createAndFinish(s, { model: 'fake/gpt-test', input: 'Use the echo tool' });
    const types = events.map((e) => e['type']);
    expect(types).toEqual(expect.arrayContaining(['response.mcp_call_arguments.delta', 'response.mcp_call_arguments.done', 'response.mcp_call.in_progress', 'response.mcp_call.completed']));
    expect(types).not.toContain('response.function_call_arguments.delta');
    const output = (final['response'] as Json)['output'] as Json[];
    expect(output[0]).toMatchObject({ type: 'mcp_call', server_label: 'everything', name: 'echo', arguments: '{"message":"from the model"}', output: 'Echo: from the model', error: null, status: 'completed' });
    expect(output[1]).toMatchObject({ type: 'message', content: [{ text: 'The tool said: Echo: from the model' }] });
    expect(final['type']).toBe('response.completed');
    expect((final['response'] as Json)['usage']).toMatchObject({ input_tokens: 24, output_tokens: 14 });
    // round two carried the call and its output back to the model
    const second = (await prov.requests())[1]?.body['input'] as Json[];
    expect(second.slice(-2)).toEqual([
      { type: 'function_call', call_id: 'call_echo_1', name: 'everything-echo', arguments: '{"message":"from the model"}' },
      { type: 'function_call_output', call_id: 'call_echo_1', output: 'Echo: from the model' },
    ]);
    // the tool log has it, from the responses surface
    let logs: Json[] = [];
    for (let i = 0; i < 100 && logs.length === 0; i++) {
      logs = ((await api('GET', `/api/mcp-logs?client=everything&tool=echo&from=${since}`, ADMIN)).json['logs'] as Json[]) ?? [];
      if (logs.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(logs[0]).toMatchObject({ client: 'everything', tool: 'echo', status: 'success', surface: 'responses', arguments: { message: 'from the model' } });
    s.ws.close();
  });

  it('returns a non-auto tool call to the client and continues with function_call_output', async () => {
    const s = await connect({ authorization: `Bearer ${userKey}` });
    const weather = { type: 'function', name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
    await prov.script({ call: { name: 'get_weather', arguments: '{"city":"Oslo"}', call_id: 'call_w' } });
    const first = await createAndFinish(s, { model: 'gpt-test', input: 'Weather in Oslo?', tools: [weather] });
    const types = first.events.map((e) => e['type']);
    expect(types).toContain('response.function_call_arguments.delta');
    expect(first.events.find((e) => e['type'] === 'response.function_call_arguments.done')).toMatchObject({ arguments: '{"city":"Oslo"}' });
    expect(first.final['type']).toBe('response.completed');
    const out = (first.final['response'] as Json)['output'] as Json[];
    expect(out).toEqual([expect.objectContaining({ type: 'function_call', name: 'get_weather', call_id: 'call_w', arguments: '{"city":"Oslo"}' })]);
    // the client's own tool comes first in what the model is offered
    expect(((await prov.requests())[0]?.body['tools'] as Json[])[0]).toEqual(weather);
    await prov.script({ text: 'It is 3 °C in Oslo.' });
    const second = await createAndFinish(s, { model: 'gpt-test', previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: 'call_w', output: '{"temp_c":3}' }] });
    expect(((second.final['response'] as Json)['output'] as Json[])[0]).toMatchObject({ type: 'message', content: [{ text: 'It is 3 °C in Oslo.' }] });
    const input = (await prov.requests())[1]?.body['input'] as Json[];
    expect(input).toEqual([
      { type: 'message', role: 'user', content: 'Weather in Oslo?' },
      { type: 'function_call', call_id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { type: 'function_call_output', call_id: 'call_w', output: '{"temp_c":3}' },
    ]);
    s.ws.close();
  });

  it('retries a provider 429 and 5xx, then answers a clear error event', async () => {
    const s = await connect({ authorization: `Bearer ${userKey}` });
    await prov.script({ error: 429, headers: { 'retry-after-ms': '10' } }, { error: 503, message: 'overloaded' }, { error: 500, message: 'The server had an error while processing your request.' });
    const { id, events, final } = await createAndFinish(s, { model: 'gpt-test', input: 'hi' });
    expect((await prov.requests()).length).toBe(3);
    const error = events.find((e) => e['type'] === 'error');
    expect(error).toMatchObject({ type: 'error', response_id: id, code: 'PROVIDER_ERROR', details: { provider: 'fake', status: 500 } });
    expect(error?.['message']).toContain('The server had an error while processing your request.');
    expect(final).toMatchObject({ type: 'response.failed', response: { id, status: 'failed', error: { code: 'PROVIDER_ERROR' } } });
    s.ws.close();
  });

  it('offers a virtual key only the tools its filter allows, and runs them', async () => {
    const s = await connect({ 'x-bf-vk': vk });
    await prov.script({ call: { name: 'everything-echo', arguments: '{"message":"vk"}' } }, { text: 'done' });
    const { final } = await createAndFinish(s, { model: 'gpt-test', input: 'echo please' });
    const offered = ((await prov.requests())[0]?.body['tools'] as Json[]).map((t) => t['name']);
    expect(offered).toEqual(['everything-echo']);
    expect(((final['response'] as Json)['output'] as Json[])[0]).toMatchObject({ type: 'mcp_call', output: 'Echo: vk' });
    s.ws.close();
  });

  it('runs several responses in flight on one connection, told apart by response_id', async () => {
    const s = await connect({ authorization: `Bearer ${userKey}` });
    await prov.script({ text: 'one' }, { text: 'two' }, { text: 'three' });
    for (let i = 0; i < 3; i++) s.send({ type: 'response.create', model: 'gpt-test', input: `q${i}` });
    const created: string[] = [];
    while (created.length < 3) {
      const e = await s.until((x) => x['type'] === 'response.created' && !created.includes(x['response_id'] as string));
      created.push(e['response_id'] as string);
    }
    expect(new Set(created).size).toBe(3);
    const texts = await Promise.all(created.map(async (id) => (((await s.until(terminalOf(id)))['response'] as Json)['output'] as Json[])[0]?.['content']));
    expect(texts.flat().map((c) => (c as Json)['text']).sort()).toEqual(['one', 'three', 'two']);
    for (const id of created) {
      const seqs = eventsOf(s, id).map((e) => e['sequence_number']);
      expect(seqs).toEqual(seqs.map((_, i) => i));
    }
    s.ws.close();
  });

  it('answers bad messages with error events and keeps the socket open', async () => {
    const s = await connect({ authorization: `Bearer ${userKey}` });
    const cases: [string, string | RegExp][] = [
      ['not json', 'INVALID_JSON'],
      [JSON.stringify([1]), 'VALIDATION_ERROR'],
      [JSON.stringify({ type: 'session.update' }), 'VALIDATION_ERROR'],
      [JSON.stringify({ type: 'response.create', input: 'x', event_id: 'ev1' }), 'VALIDATION_ERROR'],
      [JSON.stringify({ type: 'response.create', model: 'gpt-test', input: 42 }), 'VALIDATION_ERROR'],
      [JSON.stringify({ type: 'response.create', model: 'gpt-test', input: 'x', bogus: true }), 'VALIDATION_ERROR'],
      [JSON.stringify({ type: 'response.create', model: 'gpt-test', input: 'x', previous_response_id: 'resp_unknown' }), 'NOT_FOUND'],
      [JSON.stringify({ type: 'response.create', model: 'nobody/none', input: 'x' }), 'MODEL_NOT_FOUND'],
      [JSON.stringify({ type: 'response.cancel', response_id: 'resp_nope' }), 'NOT_FOUND'],
    ];
    for (const [raw, code] of cases) {
      const before = s.events.length;
      s.ws.send(raw);
      const e = await s.until((x) => s.events.indexOf(x) >= before && x['type'] === 'error');
      expect(e['code'], raw).toBe(code);
    }
    expect(s.events.find((e) => e['event_id'] === 'ev1')).toMatchObject({ type: 'error', param: 'model' });
    // still usable
    await prov.script({ text: 'still here' });
    const { final } = await createAndFinish(s, { model: 'gpt-test', input: 'ping' });
    expect(final['type']).toBe('response.completed');
    s.ws.close();
  });

  it('ends incomplete after max_tool_rounds of auto-executed calls', async () => {
    const s = await connect({ authorization: `Bearer ${userKey}` });
    const loop = { call: { name: 'everything-echo', arguments: '{"message":"again"}' } };
    await prov.script(loop, loop, loop, loop);
    const { final } = await createAndFinish(s, { model: 'gpt-test', input: 'loop' });
    expect(final).toMatchObject({ type: 'response.incomplete', response: { status: 'incomplete', incomplete_details: { reason: 'max_tool_rounds' } } });
    expect((await prov.requests()).length).toBe(3);
    s.ws.close();
  });

  it('speaks Chat Completions to a provider without /responses, with the same events and tool rounds', async () => {
    const s = await connect({ authorization: `Bearer ${userKey}` });
    await prov.script({ call: { name: 'everything-echo', arguments: '{"message":"via chat"}', call_id: 'call_c1' } }, { text: 'Chat said Echo: via chat', chunks: ['Chat said ', 'Echo: via chat'] });
    const { events, final } = await createAndFinish(s, { model: 'chatonly/llama-3', input: 'echo via chat', instructions: 'Use tools', max_output_tokens: 50 });
    expect(final['type']).toBe('response.completed');
    const output = (final['response'] as Json)['output'] as Json[];
    expect(output[0]).toMatchObject({ type: 'mcp_call', name: 'echo', output: 'Echo: via chat', status: 'completed' });
    expect(output[1]).toMatchObject({ type: 'message', content: [{ type: 'output_text', text: 'Chat said Echo: via chat' }] });
    expect(events.filter((e) => e['type'] === 'response.output_text.delta').map((e) => e['delta'])).toEqual(['Chat said ', 'Echo: via chat']);
    expect((final['response'] as Json)['usage']).toMatchObject({ input_tokens: 24, output_tokens: 14 });
    const reqs = await prov.requests();
    expect(reqs.map((r) => r.path)).toEqual(['/v1/chat/completions', '/v1/chat/completions']);
    expect(reqs[0]?.body).toMatchObject({ model: 'llama-3', stream: true, stream_options: { include_usage: true }, max_tokens: 50, messages: [{ role: 'system', content: 'Use tools' }, { role: 'user', content: 'echo via chat' }] });
    expect(((reqs[0]?.body['tools'] as Json[])[0] as Json)['function']).toMatchObject({ name: expect.any(String) as unknown, parameters: expect.any(Object) as unknown });
    expect((reqs[1]?.body['messages'] as Json[]).slice(-2)).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_c1', type: 'function', function: { name: 'everything-echo', arguments: '{"message":"via chat"}' } }] },
      { role: 'tool', tool_call_id: 'call_c1', content: 'Echo: via chat' },
    ]);
    s.ws.close();
  });

  it('cancels a response in flight with response.cancel', async () => {
    const s = await connect({ authorization: `Bearer ${userKey}` });
    await prov.script({ hang: true });
    s.send({ type: 'response.create', model: 'gpt-test', input: 'never answered' });
    const created = await s.until((e) => e['type'] === 'response.created');
    const id = created['response_id'] as string;
    // the provider has the request before we cancel it
    for (let i = 0; i < 200 && (await prov.requests()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    s.send({ type: 'response.cancel', response_id: id });
    const final = await s.until(terminalOf(id));
    expect(final).toMatchObject({ type: 'response.failed', response: { status: 'cancelled', error: { code: 'REQUEST_CANCELLED' } } });
    s.ws.close();
  });

  it('resolves a model named by a tenant\'s /api/v1/models record', async () => {
    const rec = await api('POST', '/api/v1/models', { authorization: `Bearer ${userKey}` }, { name: 'house-model', provider: 'fake', type: 'chat', configuration: { model: 'gpt-house' } });
    expect(rec.status).toBe(201);
    const s = await connect({ authorization: `Bearer ${userKey}` });
    await prov.script({ text: 'from the house model' });
    const { final } = await createAndFinish(s, { model: 'house-model', input: 'hi' });
    expect(final['type']).toBe('response.completed');
    expect((await prov.requests())[0]?.body['model']).toBe('gpt-house');
    // another tenant's caller cannot use it
    const otherKey = (await api('POST', '/api/auth/keys', ADMIN, { name: 'other tenant', tenant_id: 'other' })).json['secret'] as string;
    const other = await connect({ authorization: `Bearer ${otherKey}` });
    other.send({ type: 'response.create', model: 'house-model', input: 'hi' });
    expect((await other.until((e) => e['type'] === 'error'))['code']).toBe('MODEL_NOT_FOUND');
    s.ws.close();
    other.ws.close();
  });
});
