/**
 * Embeddings on a real gateway (auth on, two tenants, LevelDB in a temp dir): the built-in
 * lexical provider with no configuration, stable vectors, nearest-of-1,000 search, tenant
 * isolation, cross-model search with a scripted OpenAI-compatible provider, provider health,
 * bad input (restarts: test/store-embeddings.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import WebSocket from 'ws';
import { LexicalEmbedder } from '../src/providers/lexical-embedder.js';
import { startV1Gateway, type V1Gateway } from './helpers/v1.js';
import { startProvider, type TestProvider } from './helpers/openai-provider.js';

type Json = Record<string, unknown>;

let v1: V1Gateway;
let prov: TestProvider;

const WORDS = (
  'kubernetes deployment rollout canary service mesh ingress gateway latency budget error retry backoff circuit breaker queue ' +
  'postgres replica failover backup snapshot restore index vacuum partition shard cache redis eviction memory leak profile ' +
  'flame graph tracing span metric alert pager incident review runbook terraform module state drift plan apply helm chart ' +
  'secret rotation certificate renewal dns record load balancer autoscaler node pool spot instance cost report budget forecast ' +
  'invoice customer churn signup funnel onboarding email campaign newsletter webinar launch roadmap milestone sprint backlog ' +
  'ticket bug regression test flaky pipeline build artifact container image registry vulnerability scan patch release notes'
).split(' ');

/** Deterministic texts of 6 words each (a tiny LCG picks them). */
function corpus(n: number): string[] {
  let x = 12345;
  const next = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x;
  };
  return Array.from({ length: n }, (_, i) => `note ${i}: ` + Array.from({ length: 6 }, () => WORDS[next() % WORDS.length]).join(' '));
}

beforeAll(async () => {
  prov = await startProvider();
  v1 = await startV1Gateway([], { model_providers: { providers: [{ name: 'fake', base_url: prov.baseUrl, embedding_model: 'emb-64' }] }, embeddings: { max_vectors_per_tenant: 1200 } });
}, 30_000);

afterAll(async () => {
  await v1?.gw.stop();
  prov?.stop();
});

describe('built-in lexical embeddings (no configuration)', () => {
  it('are deterministic, unit length, and labelled lexical', async () => {
    const a = await v1.call('POST', '/api/v1/embeddings', v1.keyA, { agent_id: 'agent-1', text: 'Kubernetes canary deployment', include_vector: true, store: false });
    const b = await v1.call('POST', '/api/v1/embeddings', v1.keyA, { agent_id: 'agent-1', text: 'Kubernetes canary deployment', include_vector: true, store: false });
    expect(a.status).toBe(201);
    expect(a.json).toMatchObject({ provider: 'local', model_used: 'lexical-hash-512', kind: 'lexical', dimensions: 512, cached: false, stored: false, cost_usd: 0 });
    const va = a.json['embedding'] as number[];
    expect(va).toEqual(b.json['embedding']);
    expect(Math.hypot(...va)).toBeCloseTo(1, 5);
    // a fresh embedder in this process gives the same vector: nothing depends on the run
    const local = Array.from((await LexicalEmbedder.create()).embed('Kubernetes canary deployment'));
    local.forEach((x, i) => expect(x).toBeCloseTo(va[i] as number, 6));
  });

  it('never crashes on arbitrary text', async () => {
    const e = await LexicalEmbedder.create();
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (s) => {
        const v = e.embed(s);
        const n = Math.hypot(...v);
        expect(n === 0 || Math.abs(n - 1) < 1e-4).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('search finds the nearest of 1,000 stored texts', async () => {
    const texts = corpus(1000);
    const ids: string[] = [];
    for (let i = 0; i < texts.length; i += 250) {
      const r = await v1.call('POST', '/api/v1/embeddings', v1.keyA, { agent_id: 'agent-1', texts: texts.slice(i, i + 250), context_id: 'ctx-corpus' });
      expect(r.status, r.text).toBe(201);
      ids.push(...(r.json['embeddings'] as Json[]).map((e) => e['embedding_id'] as string));
    }
    for (const k of [3, 141, 500, 777, 999]) {
      // the same words, reordered, one dropped, without the "note N" prefix
      const words = (texts[k] as string).split(': ')[1]?.split(' ') ?? [];
      const query = [...words.slice(1)].reverse().join(' ');
      const r = await v1.call('POST', '/api/v1/embeddings/search', v1.keyA, { query, limit: 5 });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ method: 'exact_scan', kind: 'lexical', scanned: 1000 });
      const results = r.json['results'] as Json[];
      expect(results).toHaveLength(5);
      expect(results[0]?.['id'], `query ${query}`).toBe(ids[k]);
      expect(results[0]?.['text']).toBe(texts[k]);
      expect(results[0]?.['score'] as number).toBeGreaterThan(results[4]?.['score'] as number);
    }
  });

  it('keeps tenants apart', async () => {
    const mine = await v1.call('POST', '/api/v1/embeddings', v1.keyB, { agent_id: 'agent-b', text: 'globex quarterly launch plan' });
    expect(mine.status).toBe(201);
    const id = mine.json['embedding_id'] as string;
    const other = await v1.call('POST', '/api/v1/embeddings/search', v1.keyA, { query: 'globex quarterly launch plan', limit: 100 });
    expect((other.json['results'] as Json[]).some((h) => h['id'] === id)).toBe(false);
    const own = await v1.call('POST', '/api/v1/embeddings/search', v1.keyB, { query: 'globex quarterly launch plan' });
    expect(own.json['scanned']).toBe(1);
    expect((own.json['results'] as Json[])[0]?.['id']).toBe(id);
    expect((await v1.call('GET', `/api/v1/embeddings/${id}`, v1.keyA)).status).toBe(404);
    expect((await v1.call('DELETE', `/api/v1/embeddings/${id}`, v1.keyA)).status).toBe(404);
    const got = await v1.call('GET', `/api/v1/embeddings/${id}`, v1.keyB);
    expect(got.json).toMatchObject({ id, dimensions: 512, model: 'local/lexical-hash-512' });
    expect((got.json['embedding'] as number[]).length).toBe(512);
  });

  it('refuses bad bodies and a tenant over its bound', async () => {
    const bad = [{}, { agent_id: 'a' }, { agent_id: 'a', text: 'x', texts: ['y'] }, { agent_id: 'a', text: '' }, { agent_id: 'a', text: 'x', extra: 1 }, { agent_id: 'a', texts: [] }];
    for (const body of bad) {
      const r = await v1.call('POST', '/api/v1/embeddings', v1.keyA, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json['code']).toBe('VALIDATION_ERROR');
    }
    expect((await v1.call('POST', '/api/v1/embeddings/search', v1.keyA, { query: 'x', limit: 1000 })).status).toBe(400);
    const many = await v1.call('POST', '/api/v1/embeddings', v1.keyA, { agent_id: 'a', texts: corpus(201) });
    expect(many.status).toBe(422);
    expect(many.json['error']).toMatch(/bound is 1200/);
  });
});

describe('providers for embeddings', () => {
  it('uses an agent’s configured embedding model, and cross-model search merges normalised scores', async () => {
    const agent = await v1.call('POST', '/api/v1/agents', v1.keyB, { name: 'embedder', model: 'gpt-x', configuration: { embedding_model: 'fake' } });
    const agentId = agent.json['id'] as string;
    const texts = ['deployment strategies for kubernetes', 'a recipe for lemon cake', 'blue green deployment strategies'];
    const r = await v1.call('POST', '/api/v1/embeddings', v1.keyB, { agent_id: agentId, texts });
    expect(r.status, r.text).toBe(201);
    expect((r.json['embeddings'] as Json[])[0]).toMatchObject({ provider: 'fake', model_used: 'emb-64', kind: 'model', dimensions: 64 });
    expect((await prov.requests()).at(-1)?.body).toMatchObject({ model: 'emb-64', input: texts, encoding_format: 'float' });
    await v1.call('POST', '/api/v1/embeddings', v1.keyB, { agent_id: agentId, texts, model: 'local' });
    // the scripted provider's vectors are sha256 of the text: the exact text is the top hit
    const same = await v1.call('POST', '/api/v1/embeddings/search', v1.keyB, { agent_id: agentId, query: 'a recipe for lemon cake', limit: 1 });
    expect((same.json['results'] as Json[])[0]).toMatchObject({ text: 'a recipe for lemon cake', model: 'fake/emb-64' });
    expect((same.json['results'] as Json[])[0]?.['score']).toBeCloseTo(1, 5);
    const cross = await v1.call('POST', '/api/v1/embeddings/search/cross-model', v1.keyB, { query: 'deployment strategies', include_models: ['fake', 'local/lexical-hash-512'], limit: 4 });
    expect(cross.status, cross.text).toBe(200);
    expect((cross.json['models'] as Json[]).map((m) => m['model'])).toEqual(['fake/emb-64', 'local/lexical-hash-512']);
    const results = cross.json['results'] as Json[];
    expect(results.length).toBe(4);
    for (let i = 1; i < results.length; i++) expect(results[i - 1]?.['normalized_score'] as number).toBeGreaterThanOrEqual(results[i]?.['normalized_score'] as number);
    // lexically, the two deployment texts beat the cake
    const lexical = results.filter((h) => h['model'] === 'local/lexical-hash-512');
    expect(lexical[0]?.['text']).toMatch(/deployment strategies/);
  });

  it('resolves a model named by the tenant’s /api/v1/models record (request or agent), and only in that tenant', async () => {
    const rec = await v1.call('POST', '/api/v1/models', v1.keyA, { name: 'team-embedder', provider: 'fake', type: 'embedding', configuration: { model: 'emb-house' } });
    expect(rec.status, rec.text).toBe(201);
    const recId = rec.json['id'] as string;
    await prov.reset();
    const r = await v1.call('POST', '/api/v1/embeddings', v1.keyA, { agent_id: 'agent-rec', text: 'records name provider models', model: 'team-embedder', store: false });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ provider: 'fake', model_used: 'emb-house', kind: 'model' });
    expect((await prov.requests()).at(-1)?.body).toMatchObject({ model: 'emb-house' });
    // by the record's id, through an agent's configuration.embedding_model, stored and found under fake/emb-house
    const agent = await v1.call('POST', '/api/v1/agents', v1.keyA, { name: 'rec-agent', model: 'gpt-x', configuration: { embedding_model: recId } });
    const agentId = agent.json['id'] as string;
    expect((await v1.call('POST', '/api/v1/embeddings', v1.keyA, { agent_id: agentId, text: 'stored through a record' })).json).toMatchObject({ model_used: 'emb-house' });
    const found = await v1.call('POST', '/api/v1/embeddings/search', v1.keyA, { agent_id: agentId, query: 'stored through a record', limit: 1 });
    expect((found.json['results'] as Json[])[0]).toMatchObject({ text: 'stored through a record', model: 'fake/emb-house' });
    // a record with provider "local" is the built-in lexical embedding
    await v1.call('POST', '/api/v1/models', v1.keyA, { name: 'plain-lexical', provider: 'local', type: 'embedding', configuration: {} });
    expect((await v1.call('POST', '/api/v1/embeddings', v1.keyA, { agent_id: 'a', text: 'x', model: 'plain-lexical', store: false })).json).toMatchObject({ provider: 'local', kind: 'lexical' });
    // another tenant does not see acme's record: the name goes to the default resolution (the only provider) as a bare model
    await prov.reset();
    await v1.call('POST', '/api/v1/embeddings', v1.keyB, { agent_id: 'b', text: 'x', model: 'team-embedder', store: false });
    expect((await prov.requests()).at(-1)?.body).toMatchObject({ model: 'team-embedder' });
  });

  it('answers provider health, and a provider error as a REST error', async () => {
    const h = await v1.call('GET', '/api/v1/embeddings/providers/health', v1.keyA);
    expect(h.json).toMatchObject({ providers: { local: { status: 'healthy', kind: 'lexical', network: false }, fake: { status: 'healthy', circuit: 'closed' } } });
    await prov.script({ error: 400, message: 'This model does not support embeddings' });
    const r = await v1.call('POST', '/api/v1/embeddings', v1.keyA, { agent_id: 'a', text: 'x', model: 'fake/chat-only' });
    expect(r.status).toBe(502);
    expect(r.json).toMatchObject({ code: 'PROVIDER_ERROR', details: { provider: 'fake', status: 400, provider_message: 'This model does not support embeddings' } });
  });
});

describe('embeddings as /ws methods', () => {
  function rpc(key: string): Promise<{ call: (method: string, params: Json) => Promise<Json>; close: () => void }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${v1.gw.url.replace('http', 'ws')}/ws`, 'mcp', { headers: { authorization: `Bearer ${key}` } });
      const waiting = new Map<number, (m: Json) => void>();
      let id = 0;
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as Json;
        waiting.get(m['id'] as number)?.(m);
      });
      ws.once('open', () =>
        resolve({
          call: (method, params) =>
            new Promise((r) => {
              waiting.set(++id, r);
              ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
            }),
          close: () => ws.close(),
        }),
      );
      ws.once('error', reject);
    });
  }

  it('generate, search, cross-model search and provider health, per tenant', async () => {
    const a = await rpc(v1.keyA);
    const b = await rpc(v1.keyB);
    const gen = await a.call('embedding.generate', { agent_id: 'ws-agent', text: 'websocket embedding of a rollback runbook' });
    expect(gen['result']).toMatchObject({ provider: 'local', kind: 'lexical', dimensions: 512 });
    const id = (gen['result'] as Json)['embedding_id'];
    const hit = await a.call('embedding.search', { query: 'rollback runbook websocket', limit: 1 });
    expect(((hit['result'] as Json)['results'] as Json[])[0]?.['id']).toBe(id);
    const other = await b.call('embedding.search', { query: 'rollback runbook websocket', limit: 50 });
    expect(((other['result'] as Json)['results'] as Json[]).some((h) => h['id'] === id)).toBe(false);
    const cross = await a.call('embedding.cross_model_search', { query: 'rollback runbook', include_models: ['local'], limit: 1 });
    expect(((cross['result'] as Json)['results'] as Json[])[0]?.['id']).toBe(id);
    expect((await a.call('embedding.provider_health', {}))['result']).toMatchObject({ providers: { local: { status: 'healthy' } } });
    const bad = await a.call('embedding.generate', { text: 'no agent' });
    expect(bad['error']).toMatchObject({ code: -32602, data: { code: 'VALIDATION_ERROR' } });
    a.close();
    b.close();
  });
});
