/**
 * REST /api/v1 agents, models and relationships (developer-mesh MCP Server API reference,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md, "Agent Management", "Model Management", "Relationship
 * Management"), through real HTTP against a real gateway with auth on and two tenants' API keys.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../src/base/errors.js';
import { RelationshipRoutes } from '../src/handlers/rest-v1/relationships.js';
import { createLogger } from '../src/log/logger.js';
import { openV1Store, type ContextRecord, type V1Store } from '../src/store/v1-records.js';
import type { GatewayEvent } from '../src/streams/events.js';
import { startV1Gateway, type V1Gateway } from './helpers/v1.js';

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let v: V1Gateway;
let repos: V1Store;

beforeAll(async () => {
  v = await startV1Gateway([]);
  repos = openV1Store(v.gw.store);
});

afterAll(async () => {
  await v.gw.stop();
});

type Json = Record<string, unknown>;

async function post(path: string, body: unknown, key = v.keyA): Promise<{ status: number; json: Json; text: string }> {
  return v.call('POST', path, key, body);
}

async function newAgent(body: Json = {}, key = v.keyA): Promise<Json> {
  const r = await post('/api/v1/agents', { name: 'DevOps Assistant', model: 'gpt-4', ...body }, key);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json;
}

async function newModel(body: Json = {}, key = v.keyA): Promise<Json> {
  const r = await post('/api/v1/models', { name: 'gpt-4-turbo', provider: 'openai', type: 'chat', ...body }, key);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json;
}

async function newRel(body: Json, key = v.keyA): Promise<Json> {
  const r = await post('/api/v1/relationships', body, key);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json;
}

/** Stores a context directly (the context routes are another module's). */
async function newContext(tenant: string): Promise<string> {
  const now = new Date().toISOString();
  const ctx: ContextRecord = { id: `ctx-${randomUUID()}`, agent_id: 'agent-x', session_id: 's-1', content: [], metadata: {}, created_at: now, updated_at: now };
  await repos.contexts.put(tenant, ctx);
  return ctx.id;
}

/** The `details.problems` lines of a 400. */
function problems(r: { status: number; json: Json }): string[] {
  expect(r.status, JSON.stringify(r.json)).toBe(400);
  expect(r.json['code']).toBe('VALIDATION_ERROR');
  return (r.json['details'] as { problems: string[] }).problems;
}

/** Events published on the bus while `fn` runs. */
async function eventsDuring(fn: () => Promise<void>): Promise<GatewayEvent[]> {
  const seen: GatewayEvent[] = [];
  const sub = v.gw.bus.events$.subscribe((e) => seen.push(e));
  try {
    await fn();
  } finally {
    sub.unsubscribe();
  }
  return seen;
}

async function newTenantKey(tenant: string): Promise<string> {
  const r = await v.call('POST', '/api/auth/keys', 'admin', { name: `tenant ${tenant}`, tenant_id: tenant });
  expect(r.status).toBe(201);
  return r.json['secret'] as string;
}

describe('agents', () => {
  it('creates (201, agent-<uuid>, defaults, ISO-8601 UTC), reads, lists, updates and deletes', async () => {
    const created = await post('/api/v1/agents', { name: 'DevOps Assistant', description: 'AI agent for DevOps automation', model: 'gpt-4', capabilities: ['github', 'harness'], configuration: { temperature: 0.7, max_tokens: 2000 } });
    expect(created.status).toBe(201);
    const a = created.json;
    expect(a['id']).toMatch(new RegExp(`^agent-${UUID}$`));
    expect(a).toMatchObject({ name: 'DevOps Assistant', description: 'AI agent for DevOps automation', model: 'gpt-4', capabilities: ['github', 'harness'], configuration: { temperature: 0.7, max_tokens: 2000 } });
    expect(a['created_at']).toMatch(ISO_UTC);
    expect(a['updated_at']).toBe(a['created_at']);

    const minimal = await newAgent({ name: 'Minimal' });
    expect(minimal).toMatchObject({ description: '', capabilities: [], configuration: {} });

    const got = await v.call('GET', `/api/v1/agents/${a['id'] as string}`, v.keyA);
    expect(got.status).toBe(200);
    expect(got.json).toEqual(a);

    const list = await v.call('GET', '/api/v1/agents?limit=1000', v.keyA);
    expect(list.status).toBe(200);
    expect(list.json).toMatchObject({ limit: 1000, offset: 0 });
    const agents = list.json['agents'] as Json[];
    expect(list.json['total']).toBe(agents.length);
    const summary = agents.find((x) => x['id'] === a['id']);
    const { configuration: _c, ...withoutConfiguration } = a;
    expect(summary).toEqual(withoutConfiguration);

    const put = await v.call('PUT', `/api/v1/agents/${a['id'] as string}`, v.keyA, { name: 'DevOps Assistant Pro', configuration: { temperature: 0.8 } });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ id: a['id'], name: 'DevOps Assistant Pro', description: 'AI agent for DevOps automation', model: 'gpt-4', capabilities: ['github', 'harness'], configuration: { temperature: 0.8 }, created_at: a['created_at'] });
    expect(put.json['updated_at']).toMatch(ISO_UTC);
    expect((await v.call('GET', `/api/v1/agents/${a['id'] as string}`, v.keyA)).json).toEqual(put.json);

    const empty = await v.call('PUT', `/api/v1/agents/${a['id'] as string}`, v.keyA, {});
    expect(empty.status).toBe(200);
    expect(empty.json).toEqual(put.json);

    const del = await v.call('DELETE', `/api/v1/agents/${a['id'] as string}`, v.keyA);
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ status: 'deleted' });
    for (const method of ['GET', 'DELETE']) {
      const r = await v.call(method, `/api/v1/agents/${a['id'] as string}`, v.keyA);
      expect(r.status).toBe(404);
      expect(r.json).toMatchObject({ code: 'NOT_FOUND', details: { id: a['id'] } });
    }
    expect((await v.call('PUT', `/api/v1/agents/${a['id'] as string}`, v.keyA, { name: 'x' })).status).toBe(404);
  });

  it('refuses bad bodies with 400 naming every bad field', async () => {
    const all = problems(await post('/api/v1/agents', { name: '', model: 3, capabilities: 'github', bogus: true }));
    expect(all.some((p) => p.startsWith('name:'))).toBe(true);
    expect(all.some((p) => p.startsWith('model:'))).toBe(true);
    expect(all.some((p) => p.startsWith('capabilities:'))).toBe(true);
    expect(all).toContain('bogus: unknown field');

    expect(problems(await post('/api/v1/agents', { model: 'gpt-4' })).some((p) => p.startsWith('name:'))).toBe(true);
    expect(problems(await post('/api/v1/agents', { name: 'x'.repeat(201), model: 'gpt-4' })).some((p) => p.startsWith('name:'))).toBe(true);
    expect((await post('/api/v1/agents', { name: 'x'.repeat(200), model: 'gpt-4' })).status).toBe(201);
    // 200 astral characters are 400 UTF-16 units but 200 characters
    expect((await post('/api/v1/agents', { name: '🤖'.repeat(200), model: 'gpt-4' })).status).toBe(201);
    expect(problems(await post('/api/v1/agents', { name: 'a', model: 'gpt-4', capabilities: Array.from({ length: 101 }, (_, i) => `c${i}`) })).some((p) => p.startsWith('capabilities:'))).toBe(true);
    expect(problems(await post('/api/v1/agents', { name: 'a', model: 'gpt-4', capabilities: ['ok', 7] }))).toContainEqual(expect.stringMatching(/^capabilities\.1:/));
    expect(problems(await post('/api/v1/agents', { name: 'a', model: 'gpt-4', configuration: [1, 2] })).some((p) => p.startsWith('configuration:'))).toBe(true);
    expect(problems(await post('/api/v1/agents', { name: 'a', model: 'gpt-4', configuration: { blob: 'x'.repeat(64 * 1024) } })).some((p) => p.startsWith('configuration:'))).toBe(true);
    expect(problems(await post('/api/v1/agents', ['not', 'an', 'object'])).length).toBeGreaterThan(0);

    const a = await newAgent();
    const put = problems(await v.call('PUT', `/api/v1/agents/${a['id'] as string}`, v.keyA, { name: '', id: 'agent-other', created_at: 'now' }));
    expect(put.some((p) => p.startsWith('name:'))).toBe(true);
    expect(put).toEqual(expect.arrayContaining(['id: unknown field', 'created_at: unknown field']));
  });

  it('random JSON bodies never make POST /api/v1/agents fail with anything but 201 or 400', async () => {
    const field = fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue({ maxDepth: 2 }));
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record(
        { name: field, model: field, description: field, capabilities: fc.oneof(fc.array(fc.string({ maxLength: 10 }), { maxLength: 5 }), fc.jsonValue({ maxDepth: 1 })), configuration: fc.jsonValue({ maxDepth: 3 }) },
        { requiredKeys: [] },
      ),
      fc.tuple(fc.record({ name: fc.string({ minLength: 1, maxLength: 20 }), model: fc.string({ minLength: 1, maxLength: 20 }) }), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 })).map(([a, b]) => ({ ...b, ...a })),
    );
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const r = await v.call('POST', '/api/v1/agents', v.keyA, JSON.stringify(b));
        seen.add(r.status);
        expect([201, 400], `${r.status} ${r.text} for ${JSON.stringify(b)}`).toContain(r.status);
        if (r.status === 201) expect(r.json['id']).toMatch(/^agent-/);
        else expect(r.json['code']).toBe('VALIDATION_ERROR');
      }),
      { numRuns: 150 },
    );
    // the generators reach both answers
    expect([...seen].sort()).toEqual([201, 400]);
  });
});

describe('models', () => {
  it('creates, reads, lists, merges configuration on PUT and deletes', async () => {
    const m = await newModel({ configuration: { api_endpoint: 'https://api.openai.com/v1/chat/completions', max_context_length: 128000, limits: { rpm: 10 }, keep: true } });
    expect(m['id']).toMatch(new RegExp(`^model-${UUID}$`));
    expect(m).toMatchObject({ name: 'gpt-4-turbo', provider: 'openai', type: 'chat' });
    expect(m['created_at']).toMatch(ISO_UTC);

    expect((await v.call('GET', `/api/v1/models/${m['id'] as string}`, v.keyA)).json).toEqual(m);
    const list = await v.call('GET', '/api/v1/models', v.keyA);
    expect(list.status).toBe(200);
    const summary = (list.json['models'] as Json[]).find((x) => x['id'] === m['id']);
    expect(summary).toBeDefined();
    expect(summary).not.toHaveProperty('configuration');
    expect(summary).toMatchObject({ name: 'gpt-4-turbo', provider: 'openai', type: 'chat', created_at: m['created_at'] });

    const put = await v.call('PUT', `/api/v1/models/${m['id'] as string}`, v.keyA, { name: 'gpt-4o', configuration: { max_context_length: 200000, supports_vision: true, limits: { tpm: 5 } } });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ id: m['id'], name: 'gpt-4o', provider: 'openai', type: 'chat', created_at: m['created_at'] });
    // shallow merge: new keys added, given keys replaced (nested objects too), others kept
    expect(put.json['configuration']).toEqual({ api_endpoint: 'https://api.openai.com/v1/chat/completions', max_context_length: 200000, limits: { tpm: 5 }, keep: true, supports_vision: true });
    const again = await v.call('PUT', `/api/v1/models/${m['id'] as string}`, v.keyA, { provider: 'azure' });
    expect(again.json).toMatchObject({ provider: 'azure', name: 'gpt-4o', configuration: put.json['configuration'] });
    expect((await v.call('GET', `/api/v1/models/${m['id'] as string}`, v.keyA)).json).toEqual(again.json);

    // the merged configuration is bounded too
    const big = await v.call('PUT', `/api/v1/models/${m['id'] as string}`, v.keyA, { configuration: { a: 'x'.repeat(40 * 1024) } });
    expect(big.status).toBe(200);
    expect(problems(await v.call('PUT', `/api/v1/models/${m['id'] as string}`, v.keyA, { configuration: { b: 'x'.repeat(40 * 1024) } }))).toContainEqual(expect.stringMatching(/^configuration:/));

    expect((await v.call('DELETE', `/api/v1/models/${m['id'] as string}`, v.keyA)).json).toEqual({ status: 'deleted' });
    expect((await v.call('GET', `/api/v1/models/${m['id'] as string}`, v.keyA)).status).toBe(404);
    expect((await v.call('PUT', `/api/v1/models/${m['id'] as string}`, v.keyA, { name: 'x' })).status).toBe(404);
    expect((await v.call('DELETE', `/api/v1/models/${m['id'] as string}`, v.keyA)).status).toBe(404);
  });

  it('refuses bad bodies with 400 naming every bad field', async () => {
    const all = problems(await post('/api/v1/models', { name: 'x', provider: '', type: ['chat'], configuration: 'big', extra: 1 }));
    expect(all.some((p) => p.startsWith('provider:'))).toBe(true);
    expect(all.some((p) => p.startsWith('type:'))).toBe(true);
    expect(all.some((p) => p.startsWith('configuration:'))).toBe(true);
    expect(all).toContain('extra: unknown field');
    expect(problems(await post('/api/v1/models', { provider: 'openai', type: 'chat' })).some((p) => p.startsWith('name:'))).toBe(true);
  });
});

describe('relationships', () => {
  it('creates between existing entities (201, rel-<uuid>), reads, filters and deletes', async () => {
    const agent = await newAgent();
    const model = await newModel();
    const ctx = await newContext('acme');
    const body = { source_type: 'agent', source_id: agent['id'], target_type: 'model', target_id: model['id'], relationship_type: 'uses' };
    const rel = await newRel({ ...body, metadata: { since: 'today' } });
    expect(rel['id']).toMatch(new RegExp(`^rel-${UUID}$`));
    expect(rel).toMatchObject({ ...body, metadata: { since: 'today' } });
    expect(rel['created_at']).toMatch(ISO_UTC);

    // the developer-mesh example: context → tool_execution (tool and execution ends are not looked up)
    const exec = `exec-${randomUUID()}`;
    const trig = await newRel({ source_type: 'context', source_id: ctx, target_type: 'tool_execution', target_id: exec, relationship_type: 'triggered_by' });
    expect(trig['metadata']).toEqual({});
    const ctxAgent = await newRel({ source_type: 'context', source_id: ctx, target_type: 'agent', target_id: agent['id'], relationship_type: 'references' });
    await newRel({ source_type: 'agent', source_id: agent['id'], target_type: 'tool', target_id: 'github', relationship_type: 'uses' });

    // duplicate (same five fields, other metadata) → 409 naming the stored one
    const dup = await post('/api/v1/relationships', { ...body, metadata: { other: true } });
    expect(dup.status).toBe(409);
    expect(dup.json).toMatchObject({ code: 'CONFLICT', details: { existing_id: rel['id'] } });

    expect((await v.call('GET', `/api/v1/relationships/${rel['id'] as string}`, v.keyA)).json).toEqual(rel);

    const q = async (query: string): Promise<Json> => {
      const r = await v.call('GET', `/api/v1/relationships?${query}`, v.keyA);
      expect(r.status, r.text).toBe(200);
      return r.json;
    };
    const bySource = await q(`source_id=${agent['id'] as string}`);
    expect(bySource['total']).toBe(2);
    expect((bySource['relationships'] as Json[]).map((r) => r['relationship_type'])).toEqual(['uses', 'uses']);
    expect((bySource['relationships'] as Json[])[0]).toEqual(rel);
    expect((await q(`target_id=${agent['id'] as string}`))['relationships']).toEqual([ctxAgent]);
    expect((await q(`source_id=${ctx}&relationship_type=triggered_by`))['relationships']).toEqual([trig]);
    expect((await q(`source_id=${ctx}&relationship_type=uses`))['total']).toBe(0);
    expect((await q(`target_id=${exec}`))['total']).toBe(1);
    const page = await q(`source_id=${agent['id'] as string}&limit=1&offset=1`);
    expect(page).toMatchObject({ total: 2, limit: 1, offset: 1 });
    expect((page['relationships'] as Json[]).length).toBe(1);
    expect((page['relationships'] as Json[])[0]?.['target_id']).toBe('github');

    const del = await v.call('DELETE', `/api/v1/relationships/${rel['id'] as string}`, v.keyA);
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ status: 'deleted' });
    expect((await v.call('GET', `/api/v1/relationships/${rel['id'] as string}`, v.keyA)).status).toBe(404);
    expect((await v.call('DELETE', `/api/v1/relationships/${rel['id'] as string}`, v.keyA)).json).toMatchObject({ code: 'NOT_FOUND' });
    // once deleted, the same relationship can be created again
    expect((await post('/api/v1/relationships', body)).status).toBe(201);
  });

  it('answers 422 naming the end that does not exist (context, agent, model)', async () => {
    const agent = await newAgent();
    const cases: [Json, 'source' | 'target', string][] = [
      [{ source_type: 'agent', source_id: 'agent-missing', target_type: 'tool', target_id: 'github' }, 'source', 'agent'],
      [{ source_type: 'agent', source_id: agent['id'], target_type: 'context', target_id: 'ctx-missing' }, 'target', 'context'],
      [{ source_type: 'model', source_id: 'model-missing', target_type: 'agent', target_id: agent['id'] }, 'source', 'model'],
      // an agent id given as a model is not a model
      [{ source_type: 'context', source_id: await newContext('acme'), target_type: 'model', target_id: agent['id'] }, 'target', 'model'],
    ];
    for (const [ends, end, type] of cases) {
      const r = await post('/api/v1/relationships', { ...ends, relationship_type: 'uses' });
      expect(r.status, r.text).toBe(422);
      expect(r.json['code']).toBe('UNPROCESSABLE_ENTITY');
      expect(r.json['error']).toContain(end);
      expect((r.json['details'] as { missing: Json[] }).missing).toEqual([{ end, type, id: end === 'source' ? ends['source_id'] : ends['target_id'] }]);
    }
    const both = await post('/api/v1/relationships', { source_type: 'context', source_id: 'ctx-a', target_type: 'agent', target_id: 'agent-b', relationship_type: 'uses' });
    expect(both.status).toBe(422);
    expect((both.json['details'] as { missing: Json[] }).missing.map((m) => m['end'])).toEqual(['source', 'target']);
  });

  it('refuses bad bodies with 400 naming every bad field', async () => {
    const all = problems(await post('/api/v1/relationships', { source_type: 'planet', source_id: '', target_type: 'agent', relationship_type: 'x'.repeat(101), metadata: [], colour: 'red' }));
    for (const f of ['source_type', 'source_id', 'target_id', 'relationship_type', 'metadata']) expect(all.some((p) => p.startsWith(`${f}:`)), `${f} in ${all.join('; ')}`).toBe(true);
    expect(all).toContain('colour: unknown field');
    expect(problems(await post('/api/v1/relationships', { source_type: 'tool', source_id: 'a\u0000b', target_type: 'tool', target_id: 'b', relationship_type: 'uses' })).some((p) => p.startsWith('source_id:'))).toBe(true);
    expect(problems(await post('/api/v1/relationships', { source_type: 'tool', source_id: 'a', target_type: 'tool', target_id: 'b', relationship_type: 'uses', metadata: { blob: 'x'.repeat(65 * 1024) } })).some((p) => p.startsWith('metadata:'))).toBe(true);
  });

  it('deleting an agent or a model deletes its relationships, at either end, and keeps the others', async () => {
    const agent = await newAgent();
    const other = await newAgent({ name: 'Other' });
    const model = await newModel();
    const ctx = await newContext('acme');
    const r1 = await newRel({ source_type: 'agent', source_id: agent['id'], target_type: 'model', target_id: model['id'], relationship_type: 'uses' });
    const r2 = await newRel({ source_type: 'context', source_id: ctx, target_type: 'agent', target_id: agent['id'], relationship_type: 'references' });
    const keep = await newRel({ source_type: 'agent', source_id: other['id'], target_type: 'model', target_id: model['id'], relationship_type: 'uses' });

    const events = await eventsDuring(async () => {
      expect((await v.call('DELETE', `/api/v1/agents/${agent['id'] as string}`, v.keyA)).status).toBe(200);
    });
    for (const r of [r1, r2]) expect((await v.call('GET', `/api/v1/relationships/${r['id'] as string}`, v.keyA)).status).toBe(404);
    expect((await v.call('GET', `/api/v1/relationships/${keep['id'] as string}`, v.keyA)).status).toBe(200);
    expect(events.find((e) => e.event_type === 'AgentDeleted')).toMatchObject({ id: agent['id'], tenant_id: 'acme', relationships_deleted: 2 });
    // one RelationshipDeleted per removed relationship, then the agent's own events
    expect(events.filter((e) => e.event_type === 'RelationshipDeleted').map((e) => (e as unknown as Json)['id']).sort()).toEqual([r1['id'], r2['id']].sort());
    expect(events.findIndex((e) => e.event_type === 'AgentDeleted')).toBeGreaterThan(events.findLastIndex((e) => e.event_type === 'RelationshipDeleted'));
    expect(events.at(-1)).toMatchObject({ event_type: 'StoreChanged', tags: ['agents', 'relationships'] });

    expect((await v.call('DELETE', `/api/v1/models/${model['id'] as string}`, v.keyA)).status).toBe(200);
    expect((await v.call('GET', `/api/v1/relationships/${keep['id'] as string}`, v.keyA)).status).toBe(404);
    expect((await v.call('GET', `/api/v1/agents/${other['id'] as string}`, v.keyA)).status).toBe(200);
  });
});

describe('tenant isolation', () => {
  it('another tenant gets 404 on every id of the three kinds, 422 on relationships to them, and empty lists', async () => {
    const agent = await newAgent();
    const model = await newModel();
    const rel = await newRel({ source_type: 'agent', source_id: agent['id'], target_type: 'model', target_id: model['id'], relationship_type: 'uses' });
    for (const [kind, id] of [
      ['agents', agent['id']],
      ['models', model['id']],
      ['relationships', rel['id']],
    ] as const) {
      for (const method of ['GET', 'DELETE']) {
        const r = await v.call(method, `/api/v1/${kind}/${id as string}`, v.keyB);
        expect(r.status, `${method} ${kind}`).toBe(404);
        expect(r.json['code']).toBe('NOT_FOUND');
      }
      if (kind !== 'relationships') expect((await v.call('PUT', `/api/v1/${kind}/${id as string}`, v.keyB, { name: 'stolen' })).status).toBe(404);
      const list = await v.call('GET', `/api/v1/${kind}`, v.keyB);
      expect(list.status).toBe(200);
      expect(list.json).toEqual({ [kind]: [], total: 0, limit: 50, offset: 0 });
    }
    const cross = await post('/api/v1/relationships', { source_type: 'agent', source_id: agent['id'], target_type: 'model', target_id: model['id'], relationship_type: 'uses' }, v.keyB);
    expect(cross.status).toBe(422);
    expect((await v.call('GET', `/api/v1/relationships?source_id=${agent['id'] as string}`, v.keyB)).json['total']).toBe(0);
    // A's entities are untouched by B's attempts
    expect((await v.call('GET', `/api/v1/agents/${agent['id'] as string}`, v.keyA)).json).toEqual(agent);
    expect((await v.call('GET', `/api/v1/relationships/${rel['id'] as string}`, v.keyA)).status).toBe(200);
  });

  it('without credentials the routes answer 401', async () => {
    const r = await fetch(`${v.gw.url}/api/v1/agents`);
    expect(r.status).toBe(401);
  });
});

describe('pagination', () => {
  it('pages agents and models with totals, oldest first; bad limit/offset → 400', async () => {
    const key = await newTenantKey('initech');
    for (let i = 0; i < 5; i++) {
      await newAgent({ name: `agent ${i}` }, key);
      await newModel({ name: `model ${i}` }, key);
    }
    for (const kind of ['agents', 'models']) {
      const page = async (query: string): Promise<Json> => {
        const r = await v.call('GET', `/api/v1/${kind}?${query}`, key);
        expect(r.status, r.text).toBe(200);
        return r.json;
      };
      const names = (p: Json): unknown[] => (p[kind] as Json[]).map((x) => x['name']);
      const singular = kind.slice(0, -1);
      const first = await page('limit=2');
      expect(first).toMatchObject({ total: 5, limit: 2, offset: 0 });
      expect(names(first)).toEqual([`${singular} 0`, `${singular} 1`]);
      expect(names(await page('limit=2&offset=2'))).toEqual([`${singular} 2`, `${singular} 3`]);
      const last = await page('limit=2&offset=4');
      expect(last).toMatchObject({ total: 5, offset: 4 });
      expect(names(last)).toEqual([`${singular} 4`]);
      expect(await page('offset=9')).toEqual({ [kind]: [], total: 5, limit: 50, offset: 9 });
      expect((await page(''))['total']).toBe(5);
      for (const bad of ['limit=0', 'limit=1001', 'limit=abc', 'offset=-1', 'offset=1.5']) {
        const r = await v.call('GET', `/api/v1/${kind}?${bad}`, key);
        expect(r.status, bad).toBe(400);
        expect(r.json['code']).toBe('VALIDATION_ERROR');
      }
    }
  });

  it('refuses an unsupported API version (406)', async () => {
    const r = await v.call('GET', '/api/v1/agents', v.keyA, undefined, { 'x-api-version': '2' });
    expect(r.status).toBe(406);
    expect(r.json['code']).toBe('UNSUPPORTED_API_VERSION');
  });
});

describe('events', () => {
  it('publishes entity events with the tenant, each followed by StoreChanged', async () => {
    let agent: Json = {};
    let model: Json = {};
    let rel: Json = {};
    const events = await eventsDuring(async () => {
      agent = await newAgent();
      await v.call('PUT', `/api/v1/agents/${agent['id'] as string}`, v.keyA, { description: 'changed' });
      model = await newModel();
      await v.call('PUT', `/api/v1/models/${model['id'] as string}`, v.keyA, { configuration: { x: 1 } });
      rel = await newRel({ source_type: 'agent', source_id: agent['id'], target_type: 'model', target_id: model['id'], relationship_type: 'uses' });
      await v.call('DELETE', `/api/v1/relationships/${rel['id'] as string}`, v.keyA);
      await v.call('DELETE', `/api/v1/models/${model['id'] as string}`, v.keyA);
      await v.call('DELETE', `/api/v1/agents/${agent['id'] as string}`, v.keyA);
      // refused requests publish nothing
      await post('/api/v1/agents', { name: '' });
      await v.call('DELETE', `/api/v1/agents/${agent['id'] as string}`, v.keyA);
    });
    const relFields = { source_type: 'agent', source_id: agent['id'], target_type: 'model', target_id: model['id'], relationship_type: 'uses' };
    const expected: [string, unknown, string, Json][] = [
      ['AgentCreated', agent['id'], 'agents', { name: 'DevOps Assistant', model: 'gpt-4' }],
      ['AgentUpdated', agent['id'], 'agents', { changed: ['description'] }],
      ['ModelCreated', model['id'], 'models', { name: 'gpt-4-turbo', provider: 'openai', type: 'chat' }],
      ['ModelUpdated', model['id'], 'models', { changed: ['configuration'] }],
      ['RelationshipCreated', rel['id'], 'relationships', relFields],
      ['RelationshipDeleted', rel['id'], 'relationships', relFields],
      ['ModelDeleted', model['id'], 'models', { relationships_deleted: 0 }],
      ['AgentDeleted', agent['id'], 'agents', { relationships_deleted: 0 }],
    ];
    expect(events.length).toBe(expected.length * 2);
    expected.forEach(([type, id, tag, fields], i) => {
      expect(events[2 * i]).toMatchObject({ event_type: type, id, tenant_id: 'acme', ...fields });
      expect(events[2 * i + 1]).toMatchObject({ event_type: 'StoreChanged', tags: [tag] });
    });
  });
});

describe('RelationshipRoutes as a service (create, deleteWith)', () => {
  it('create() checks like the route and publishes; deleteWith() covers both ends, stays in the tenant and publishes each deletion', async () => {
    const routes = new RelationshipRoutes({ repos, bus: v.gw.bus, log: createLogger('silent') });
    const ctx = await newContext('acme');
    const exec = `exec-${randomUUID()}`;
    let rel: Awaited<ReturnType<RelationshipRoutes['create']>> | undefined;
    const events = await eventsDuring(async () => {
      rel = await routes.create('acme', { source_type: 'context', source_id: ctx, target_type: 'tool_execution', target_id: exec, relationship_type: 'triggered_by' });
    });
    expect(rel?.id).toMatch(/^rel-/);
    expect(events.map((e) => e.event_type)).toEqual(['RelationshipCreated', 'StoreChanged']);
    expect(events[0]).toMatchObject({ tenant_id: 'acme', source_id: ctx, target_id: exec });
    // visible through the route
    expect((await v.call('GET', `/api/v1/relationships?source_id=${ctx}`, v.keyA)).json['relationships']).toEqual([rel]);

    const fails = async (tenant: string, input: Parameters<RelationshipRoutes['create']>[1], code: string): Promise<void> => {
      const err: unknown = await routes.create(tenant, input).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe(code);
    };
    await fails('globex', { source_type: 'context', source_id: ctx, target_type: 'tool_execution', target_id: exec, relationship_type: 'triggered_by' }, 'UNPROCESSABLE_ENTITY');
    await fails('acme', { source_type: 'context', source_id: ctx, target_type: 'tool_execution', target_id: exec, relationship_type: 'triggered_by' }, 'CONFLICT');
    await fails('acme', { source_type: 'context', source_id: ctx, target_type: 'tool_execution', target_id: exec, relationship_type: '' }, 'VALIDATION_ERROR');

    const agent = await newAgent();
    await newRel({ source_type: 'agent', source_id: agent['id'], target_type: 'context', target_id: ctx, relationship_type: 'owns' });
    expect(await routes.deleteWith('globex', ctx, [])).toBe(0);
    const deleted = await eventsDuring(async () => {
      expect(await routes.deleteWith('acme', exec, [])).toBe(1);
      expect(await routes.deleteWith('acme', ctx, [])).toBe(1);
    });
    expect(deleted.filter((e) => e.event_type === 'RelationshipDeleted').map((e) => (e as unknown as Json)['target_id'])).toEqual([exec, ctx]);
    expect((await v.call('GET', `/api/v1/relationships?target_id=${ctx}`, v.keyA)).json['relationships']).toEqual([]);
  });
});
