/**
 * Model providers against a scripted OpenAI-compatible provider process over real HTTP and SSE:
 * retries honouring retry-after, errors, the circuit breaker, streaming, concurrency; the API key
 * sealed at rest; provider health and metrics on the gateway.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GatewayError } from '../src/base/errors.js';
import { OpenAiProvider, retryAfterMs, type ProviderObservation, type StreamEvent } from '../src/providers/openai-client.js';
import { settingsFromConfig } from '../src/providers/registry.js';
import { SecretBox, SecretBoxError } from '../src/providers/secret-box.js';
import type { ModelProviderConfig } from '../src/config/schema.js';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startProvider, type TestProvider } from './helpers/openai-provider.js';

let prov: TestProvider;

beforeAll(async () => {
  prov = await startProvider();
});

afterAll(() => {
  prov?.stop();
});

beforeEach(async () => {
  await prov.reset();
});

function client(extra: Record<string, unknown> = {}, seen: ProviderObservation[] = []): OpenAiProvider {
  return new OpenAiProvider(
    settingsFromConfig({ name: 'fake', base_url: prov.baseUrl, api_key: 'sk-test-123', retry_initial_ms: 5, retry_max_ms: 2000, timeout_ms: 2000, ...extra } as unknown as ModelProviderConfig),
    (o) => seen.push(o),
  );
}

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('SecretBox (AES-256-GCM)', () => {
  const box = SecretBox.fromBase64(Buffer.alloc(32, 7).toString('base64'));

  it('opens what it sealed, with the same associated data only', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (secret, aad) => {
        const sealed = box.seal(secret, aad);
        expect(sealed).not.toContain(secret.length > 3 ? secret : '\u0000never');
        expect(box.open(sealed, aad)).toBe(secret);
        expect(() => box.open(sealed, aad + 'x')).toThrow(SecretBoxError);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses another key, an altered value, garbage and a short key', () => {
    const sealed = box.seal('sk-live', 'p');
    expect(() => SecretBox.fromBase64(Buffer.alloc(32, 8).toString('base64')).open(sealed, 'p')).toThrow(SecretBoxError);
    // the replacement differs from the character it replaces (the second-to-last; the last may be padding bits only)
    const flipped = sealed.slice(0, -2) + (sealed.at(-2) === 'A' ? 'B' : 'A') + sealed.slice(-1);
    expect(() => box.open(flipped, 'p')).toThrow(SecretBoxError);
    fc.assert(
      fc.property(fc.string(), (junk) => {
        expect(() => box.open(junk, 'p')).toThrow(SecretBoxError);
      }),
      { numRuns: 50 },
    );
    expect(() => SecretBox.fromBase64('c2hvcnQ=')).toThrow(/32 bytes/);
  });
});

describe('retry-after', () => {
  it('reads retry-after-ms, seconds and HTTP dates', () => {
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250' }))).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after': new Date(10_000).toUTCString() }), 4_000)).toBe(6000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterMs(new Headers())).toBeUndefined();
  });
});

describe('OpenAI-compatible client', () => {
  it('sends the bearer key and answers chat completions', async () => {
    const seen: ProviderObservation[] = [];
    await prov.script({ text: 'Hello there' });
    const r = await client({}, seen).postJson('chat.completions', '/chat/completions', { model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
    expect((r['choices'] as { message: { content: string } }[])[0]?.message.content).toBe('Hello there');
    const reqs = await prov.requests();
    expect(reqs[0]?.authorization).toBe('Bearer sk-test-123');
    expect(seen[0]).toMatchObject({ provider: 'fake', model: 'gpt-test', outcome: 'ok', input_tokens: 12, output_tokens: 7, retries: 0 });
  });

  it('retries a 429 after its retry-after, then succeeds', async () => {
    const seen: ProviderObservation[] = [];
    await prov.script({ error: 429, headers: { 'retry-after-ms': '30' } }, { error: 503 }, { text: 'third time' });
    const r = await client({}, seen).postJson('chat.completions', '/chat/completions', { model: 'm', messages: [] });
    expect(r['object']).toBe('chat.completion');
    expect((await prov.requests()).length).toBe(3);
    expect(seen.at(-1)).toMatchObject({ outcome: 'ok', retries: 2 });
  });

  it('gives up after max_retries with the provider error named', async () => {
    await prov.script({ error: 500, message: 'boom' }, { error: 500, message: 'boom' }, { error: 500, message: 'boom' });
    const err = await rejection(client({ max_retries: 2 }).postJson('embeddings', '/embeddings', { model: 'e', input: 'x' }));
    expect(err.code).toBe('PROVIDER_ERROR');
    expect(err.details).toMatchObject({ provider: 'fake', status: 500, provider_message: 'boom' });
    expect((await prov.requests()).length).toBe(3);
  });

  it('a 429 that keeps coming is PROVIDER_RATE_LIMITED; a retry-after over retry_max_ms is not waited for', async () => {
    await prov.script({ error: 429, headers: { 'retry-after': '3600' } });
    const err = await rejection(client().postJson('chat.completions', '/chat/completions', { model: 'm', messages: [] }));
    expect(err.code).toBe('PROVIDER_RATE_LIMITED');
    expect(err.status).toBe(429);
    expect(err.details?.['retry_after_ms']).toBe(3_600_000);
    expect((await prov.requests()).length).toBe(1);
  });

  it('does not retry a 400', async () => {
    await prov.script({ error: 400, message: "Invalid value for 'model'" });
    const err = await rejection(client().postJson('chat.completions', '/chat/completions', { model: 'm', messages: [] }));
    expect(err.message).toContain("Invalid value for 'model'");
    expect((await prov.requests()).length).toBe(1);
  });

  it('a silent provider is PROVIDER_TIMEOUT', async () => {
    await prov.script({ hang: true });
    const err = await rejection(client({ timeout_ms: 150, max_retries: 0 }).postJson('chat.completions', '/chat/completions', { model: 'm', messages: [] }));
    expect(err.code).toBe('PROVIDER_TIMEOUT');
  });

  it('opens the circuit after failure_threshold failures and fails fast', async () => {
    const c = client({ max_retries: 0, circuit_breaker: { failure_threshold: 2, open_ms: 60_000 } });
    await prov.script({ error: 502 }, { error: 502 });
    await rejection(c.postJson('x', '/chat/completions', { model: 'm', messages: [] }));
    await rejection(c.postJson('x', '/chat/completions', { model: 'm', messages: [] }));
    const err = await rejection(c.postJson('x', '/chat/completions', { model: 'm', messages: [] }));
    expect(err.code).toBe('CIRCUIT_OPEN');
    expect((await prov.requests()).length).toBe(2);
    expect(c.health()).toMatchObject({ status: 'unhealthy', circuit: 'open' });
    c.dispose();
  });

  it('limits requests in flight and refuses beyond the queue', async () => {
    const c = client({ max_concurrent_requests: 1, max_queued_requests: 1, timeout_ms: 5000 });
    await prov.script({ hang: true });
    const first = c.postJson('x', '/chat/completions', { model: 'm', messages: [] }).catch((e: unknown) => e);
    const second = c.postJson('x', '/chat/completions', { model: 'm', messages: [] }).catch((e: unknown) => e);
    const third = await rejection(c.postJson('x', '/chat/completions', { model: 'm', messages: [] }));
    expect(third.code).toBe('UPSTREAM_OVERLOADED');
    expect(c.health()).toMatchObject({ in_flight: 1, queued: 1 });
    c.dispose();
    expect(await second).toBeInstanceOf(GatewayError);
    void first;
  });

  it('parses a chat completion SSE stream with eventsource-parser, [DONE] included', async () => {
    await prov.script({ text: 'Hello world', chunks: ['Hel', 'lo', ' world'] });
    const events: StreamEvent[] = [];
    for await (const e of client().stream('chat.completions', '/chat/completions', { model: 'm', messages: [] })) events.push(e);
    const text = events.map((e) => ((e.data['choices'] as { delta?: { content?: string } }[])[0]?.delta?.content ?? '')).join('');
    expect(text).toBe('Hello world');
    expect(events.at(-1)?.data['usage']).toMatchObject({ prompt_tokens: 12 });
  });

  it('parses typed Responses events and reports their usage', async () => {
    const seen: ProviderObservation[] = [];
    await prov.script({ text: 'Hi', chunks: ['H', 'i'] });
    const types: string[] = [];
    for await (const e of client({}, seen).stream('responses', '/responses', { model: 'm', input: 'x' }, undefined, (ev) => (ev.data['type'] === 'response.completed' ? (ev.data['response'] as Record<string, unknown>)['usage'] : undefined))) {
      types.push(`${e.event ?? ''}=${String(e.data['type'])}`);
    }
    expect(types[0]).toBe('response.created=response.created');
    expect(types.filter((t) => t.startsWith('response.output_text.delta'))).toHaveLength(2);
    expect(types.at(-1)).toBe('response.completed=response.completed');
    expect(seen[0]).toMatchObject({ outcome: 'ok', input_tokens: 12, output_tokens: 7 });
  });
});

describe('providers on the gateway', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway([], {}, { model_providers: { providers: [{ name: 'cfg', base_url: prov.baseUrl, models: ['gpt-cfg'] }] } });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
    return send(`${gw.url}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  }

  it('stores an API-managed provider with its key sealed on disk and uses it', async () => {
    const secret = 'sk-very-secret-provider-key-0123456789';
    const put = await api('PUT', '/api/providers/managed', { base_url: prov.baseUrl, api_key: secret, models: ['emb-x'], embedding_model: 'emb-x', pricing: { 'emb-x': { input_per_mtok: 1, output_per_mtok: 0 } } });
    expect(put.status).toBe(201);
    expect(put.text).not.toContain(secret);
    expect(put.json).toMatchObject({ name: 'managed', source: 'api', has_api_key: true });
    const emb = await api('POST', '/api/v1/embeddings', { agent_id: 'a1', text: 'hello', model: 'managed' });
    expect(emb.status).toBe(201);
    expect(emb.json).toMatchObject({ provider: 'managed', model_used: 'emb-x', kind: 'model', dimensions: 64 });
    expect((await prov.requests()).at(-1)?.authorization).toBe(`Bearer ${secret}`);
    // nothing under data_dir holds the key in clear (LevelDB log and tables included)
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
    for (const f of walk(gw.dataDir)) expect(readFileSync(f).includes(Buffer.from(secret)), f).toBe(false);
    expect((await api('PUT', '/api/providers/cfg', { base_url: prov.baseUrl })).status).toBe(409);
    expect((await api('PUT', '/api/providers/local', { base_url: prov.baseUrl })).status).toBe(400);
    expect((await api('PUT', '/api/providers/bad', { base_url: 'ftp://x' })).status).toBe(400);
    expect((await api('PUT', '/api/providers/bad', { base_url: prov.baseUrl, nope: 1 })).status).toBe(400);
  });

  it('lists providers without secrets, shows them in /health and /metrics', async () => {
    const list = await api('GET', '/api/providers');
    expect(list.status).toBe(200);
    expect((list.json as { providers: { name: string }[] }).providers.map((p) => p.name)).toEqual(expect.arrayContaining(['cfg', 'managed']));
    const health = await api('GET', '/health');
    expect(health.json).toMatchObject({ components: { model_providers: { local: { status: 'healthy', kind: 'lexical' }, cfg: { status: 'healthy', circuit: 'closed' } } } });
    const metrics = await api('GET', '/metrics');
    expect(metrics.text).toMatch(/tributary_model_requests_total\{provider="managed",model="emb-x",operation="embeddings",outcome="ok"\} 1/);
    expect(metrics.text).toMatch(/tributary_model_tokens_total\{provider="managed",model="emb-x",direction="input"\} 3/);
    expect(metrics.text).toMatch(/tributary_model_cost_usd_total\{provider="managed",model="emb-x"\} 0\.000003/);
    expect(metrics.text).toContain('tributary_model_provider_circuit_state{provider="cfg",state="closed"} 1');
  });

  it('deletes a managed provider', async () => {
    expect((await api('DELETE', '/api/providers/managed')).status).toBe(200);
    expect((await api('GET', '/api/providers/managed')).status).toBe(404);
    // an unknown provider prefix is part of the model name, served by the only provider left
    const r = await api('POST', '/api/v1/embeddings', { agent_id: 'a1', text: 'hello', model: 'managed/emb-x' });
    expect(r.json).toMatchObject({ provider: 'cfg', model_used: 'managed/emb-x' });
  });
});
