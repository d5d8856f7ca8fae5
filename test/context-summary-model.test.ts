/**
 * Context summaries by a model (`POST /api/v1/mcp/context/:id/summary`, `method: "model"`)
 * against a scripted OpenAI-compatible provider over real HTTP: chunking, the merge round, the
 * stored summary with its model and token counts, tenant scoping, and errors.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chunkMessages } from '../src/handlers/rest-v1/model-summary.js';
import { contextSummaries } from '../src/handlers/rest-v1/context-summaries.js';
import { openV1Store } from '../src/store/v1-records.js';
import { startV1Gateway, type V1Gateway } from './helpers/v1.js';
import { startProvider, type TestProvider } from './helpers/openai-provider.js';

type Json = Record<string, unknown>;

let v1: V1Gateway;
let prov: TestProvider;
let ctxId: string;

beforeAll(async () => {
  prov = await startProvider();
  v1 = await startV1Gateway([], { model_providers: { providers: [{ name: 'fake', base_url: prov.baseUrl, models: ['summ-1'], max_retries: 0, pricing: { 'summ-1': { input_per_mtok: 2, output_per_mtok: 4 } } }] } });
  const content = Array.from({ length: 6 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `Message ${i}: ${'the deployment needs a canary stage and a rollback plan. '.repeat(4)}` }));
  const r = await v1.call('POST', '/api/v1/mcp/context', v1.keyA, { agent_id: 'agent-1', session_id: 's-1', content });
  ctxId = r.json['id'] as string;
}, 30_000);

afterAll(async () => {
  await v1?.gw.stop();
  prov?.stop();
});

beforeEach(async () => {
  await prov.reset();
});

describe('chunkMessages', () => {
  it('keeps chunks within the size, splits long messages, and loses nothing', () => {
    const msgs = [{ role: 'user', content: 'a'.repeat(25) }, { role: 'assistant', content: 'short' }, { role: 'user', content: 'b'.repeat(7) }];
    const chunks = chunkMessages(msgs, 10);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(10);
    expect(chunks.join('')).toBe(msgs.map((m) => `${m.role}: ${m.content}\n`).join(''));
  });
});

describe('summary by a model', () => {
  it('summarises a long context in chunks, merges, and stores the result with model and tokens', async () => {
    const r0 = await v1.call('GET', `/api/v1/mcp/context/${ctxId}`, v1.keyA);
    const content = r0.json['content'] as { role: string; content: string }[];
    const text = content.map((m) => `${String(m['role'])}: ${String(m['content'])}\n`).join('');
    const chunks = chunkMessages(content, 600);
    expect(chunks.length).toBeGreaterThan(1);
    expect(text.length).toBeGreaterThan(600);
    await prov.script(...chunks.map((_, i) => ({ text: `part summary ${i}` })), { text: 'Canary stage and rollback plan agreed.' });
    const r = await v1.call('POST', `/api/v1/mcp/context/${ctxId}/summary`, v1.keyA, { method: 'model', model: 'summ-1', chunk_chars: 600, max_tokens: 100 });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ id: ctxId, summary: 'Canary stage and rollback plan agreed.', method: 'model', model: 'summ-1', provider: 'fake', message_count: 6, chunks: chunks.length, calls: chunks.length + 1, input_tokens: 12 * (chunks.length + 1), output_tokens: 7 * (chunks.length + 1) });
    expect(r.json['cost_usd']).toBeCloseTo((12 * 2 + 7 * 4) * (chunks.length + 1) / 1e6, 12);
    const reqs = await prov.requests();
    expect(reqs.map((q) => q.path)).toEqual(Array(chunks.length + 1).fill('/v1/chat/completions'));
    expect(reqs[0]?.body).toMatchObject({ model: 'summ-1', max_tokens: 100, temperature: 0 });
    expect(((reqs[0]?.body['messages'] as Json[])[1] as Json)['content']).toBe(chunks[0]);
    const merge = ((reqs.at(-1)?.body['messages'] as Json[])[1] as Json)['content'] as string;
    for (let i = 0; i < chunks.length; i++) expect(merge).toContain(`part summary ${i}`);
    const stored = await v1.call('GET', `/api/v1/mcp/context/${ctxId}/summary/model`, v1.keyA);
    expect(stored.json).toMatchObject({ summary: 'Canary stage and rollback plan agreed.', model: 'summ-1' });
    expect((await v1.call('GET', `/api/v1/mcp/context/${ctxId}/summary/model`, v1.keyB)).status).toBe(404);
    // the extractive summary is still there, by GET and by POST
    expect((await v1.call('GET', `/api/v1/mcp/context/${ctxId}/summary`, v1.keyA)).json['method']).toBe('extractive');
    expect((await v1.call('POST', `/api/v1/mcp/context/${ctxId}/summary`, v1.keyA, { method: 'extractive' })).json['method']).toBe('extractive');
  });

  it('deleting a context deletes its stored model summary (in the same batch)', async () => {
    const created = await v1.call('POST', '/api/v1/mcp/context', v1.keyA, { agent_id: 'agent-1', session_id: 's-del', content: [{ role: 'user', content: 'a short conversation to summarise' }] });
    const id = created.json['id'] as string;
    await prov.script({ text: 'short summary' });
    expect((await v1.call('POST', `/api/v1/mcp/context/${id}/summary`, v1.keyA, { method: 'model', model: 'summ-1' })).status).toBe(200);
    const repo = contextSummaries(openV1Store(v1.gw.store));
    expect((await repo.get('acme', id))?.summary).toBe('short summary');
    expect((await v1.call('DELETE', `/api/v1/mcp/context/${id}`, v1.keyA)).json).toEqual({ status: 'deleted' });
    expect(await repo.get('acme', id)).toBeUndefined();
    expect((await v1.call('GET', `/api/v1/mcp/context/${id}/summary/model`, v1.keyA)).status).toBe(404);
    // another context's summary stays
    expect((await repo.get('acme', ctxId))?.summary).toBe('Canary stage and rollback plan agreed.');
  });

  it('puts every model call into the tool log, so its cost figures include the models', async () => {
    const since = new Date().toISOString();
    const created = await v1.call('POST', '/api/v1/mcp/context', v1.keyA, { agent_id: 'agent-1', session_id: 's-cost', content: [{ role: 'user', content: 'what does this cost' }] });
    const id = created.json['id'] as string;
    await prov.script({ text: 'priced summary' }, { error: 500, message: 'boom' });
    const r = await v1.call('POST', `/api/v1/mcp/context/${id}/summary`, v1.keyA, { method: 'model', model: 'summ-1' });
    expect(r.status).toBe(200);
    const cost = r.json['cost_usd'] as number;
    expect(cost).toBeGreaterThan(0);
    expect((await v1.call('POST', `/api/v1/mcp/context/${id}/summary`, v1.keyA, { method: 'model', model: 'summ-1' })).status).toBe(502);
    // the log is written after the answer: poll it (bounded)
    let logs: Json[] = [];
    for (let i = 0; i < 100 && logs.length < 2; i++) {
      logs = ((await v1.call('GET', `/api/mcp-logs?surface=model&from=${since}`, 'admin')).json['logs'] as Json[]) ?? [];
      if (logs.length < 2) await new Promise((res) => setTimeout(res, 20));
    }
    expect(logs).toHaveLength(2);
    const [failed, done] = logs as [Json, Json];
    expect(done).toMatchObject({ client: 'model:fake', tool: 'summ-1', surface: 'model', status: 'success', arguments: { operation: 'chat.completions' }, result: { input_tokens: 12, output_tokens: 7 } });
    expect(done['cost_usd']).toBeCloseTo(cost, 12);
    expect(failed).toMatchObject({ client: 'model:fake', status: 'error', error: 'PROVIDER_ERROR', cost_usd: 0 });
    // no prompt text in the log
    expect(JSON.stringify(logs)).not.toContain('what does this cost');
    const stats = await v1.call('GET', `/api/mcp-logs/stats?surface=model&from=${since}`, 'admin');
    expect(stats.json).toMatchObject({ total_executions: 2, success_rate: 0.5 });
    expect(stats.json['total_cost']).toBeCloseTo(cost, 12);
    // and the unfiltered totals include them
    const all = await v1.call('GET', `/api/mcp-logs/stats?from=${since}`, 'admin');
    expect(all.json['total_cost'] as number).toBeGreaterThanOrEqual(cost);
  });

  it('answers clear errors', async () => {
    expect((await v1.call('POST', `/api/v1/mcp/context/${ctxId}/summary`, v1.keyA, { method: 'model' })).status).toBe(400);
    expect((await v1.call('POST', `/api/v1/mcp/context/${ctxId}/summary`, v1.keyA, { method: 'abstractive', model: 'summ-1' })).status).toBe(400);
    expect((await v1.call('POST', `/api/v1/mcp/context/${ctxId}/summary`, v1.keyB, { method: 'model', model: 'summ-1' })).status).toBe(404);
    const big = await v1.call('POST', '/api/v1/mcp/context', v1.keyA, { agent_id: 'agent-1', session_id: 's-2', content: Array.from({ length: 70 }, () => ({ role: 'user', content: 'x'.repeat(490) })) });
    const tooMany = await v1.call('POST', `/api/v1/mcp/context/${String(big.json['id'])}/summary`, v1.keyA, { method: 'model', model: 'summ-1', chunk_chars: 500 });
    expect(tooMany.status).toBe(422);
    expect(tooMany.json['error']).toMatch(/at most 64/);
    expect(await prov.requests()).toEqual([]);
    await prov.script({ error: 500, message: 'model crashed' });
    const failed = await v1.call('POST', `/api/v1/mcp/context/${ctxId}/summary`, v1.keyA, { method: 'model', model: 'summ-1' });
    expect(failed.status).toBe(502);
    expect(failed.json).toMatchObject({ code: 'PROVIDER_ERROR', details: { provider: 'fake', provider_message: 'model crashed' } });
  });
});
