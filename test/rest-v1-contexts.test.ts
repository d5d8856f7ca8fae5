/**
 * Contexts over `/api/v1/mcp/context*`, end to end through real HTTP on a
 * real gateway with auth on and two tenants' API keys: every route and its shapes, tenant
 * isolation, append vs replace, truncation, search ranking (MiniSearch BM25), the extractive
 * summary, deletion, bad bodies, concurrent appends, the index rebuilt after a restart on the same
 * data dir, and a fast-check property of the truncation function.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Subscription } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { contentBytes, extractiveSummary, truncateToSize } from '../src/handlers/rest-v1/context-content.js';
import { ContextListItem, ContextView, MAX_CONTENT_BYTES, MAX_MESSAGES, MAX_METADATA_BYTES, MAX_ROLE_CHARS, SearchHit, SummaryView } from '../src/handlers/rest-v1/context-wire.js';
import { createLogger } from '../src/log/logger.js';
import type { ContextMessage } from '../src/store/v1-records.js';
import type { GatewayEvent } from '../src/streams/events.js';
import { send } from './helpers/gateway.js';
import { ADMIN_PASSWORD, startV1Gateway, type V1Gateway } from './helpers/v1.js';

type Json = Record<string, unknown>;
type Msg = { role: string; content: string; timestamp: string };

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let v: V1Gateway;
const events: GatewayEvent[] = [];
let sub: Subscription;

beforeAll(async () => {
  v = await startV1Gateway([]);
  sub = v.gw.bus.events$.subscribe((e) => events.push(e));
});

afterAll(async () => {
  sub?.unsubscribe();
  await v?.gw.stop();
});

async function create(key: string, body: Json = {}): Promise<{ id: string; context: Json }> {
  const r = await v.call('POST', '/api/v1/mcp/context', key, {
    agent_id: 'agent-123',
    session_id: 'session-456',
    content: [{ role: 'user', content: 'Hello, I need help with my CI/CD pipeline' }],
    ...body,
  });
  expect(r.status, r.text).toBe(201);
  return { id: r.json['id'] as string, context: r.json['context'] as Json };
}

function problems(json: Json): string[] {
  return ((json['details'] as Json | undefined)?.['problems'] as string[] | undefined) ?? [];
}

describe('create, get, list', () => {
  it('POST creates a context: 201, ctx- id, ISO-8601 UTC timestamps, stamped messages, events', async () => {
    const before = events.length;
    const r = await v.call('POST', '/api/v1/mcp/context', v.keyA, {
      agent_id: 'agent-123',
      session_id: 'session-456',
      content: [{ role: 'user', content: 'Hello, I need help with my CI/CD pipeline' }],
      metadata: { source: 'web-ui', tool_context: ['github', 'harness'] },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.json['message']).toBe('context created');
    const id = r.json['id'] as string;
    expect(id).toMatch(/^ctx-[0-9a-f-]{36}$/);
    const ctx = r.json['context'] as Json;
    expect(ContextView.is(ctx)).toBe(true);
    expect(ctx).toMatchObject({ id, agent_id: 'agent-123', session_id: 'session-456', metadata: { source: 'web-ui', tool_context: ['github', 'harness'] } });
    expect(ctx['created_at']).toMatch(ISO_UTC);
    expect(ctx['updated_at']).toBe(ctx['created_at']);
    const content = ctx['content'] as Msg[];
    expect(content).toEqual([{ role: 'user', content: 'Hello, I need help with my CI/CD pipeline', timestamp: ctx['created_at'] }]);
    const mine = events.slice(before);
    expect(mine).toContainEqual(expect.objectContaining({ event_type: 'ContextCreated', id, tenant_id: 'acme', agent_id: 'agent-123', session_id: 'session-456' }));
    expect(mine).toContainEqual(expect.objectContaining({ event_type: 'StoreChanged', tags: ['contexts'] }));

    const g = await v.call('GET', `/api/v1/mcp/context/${id}`, v.keyA);
    expect(g.status).toBe(200);
    expect(g.json).toEqual(ctx);
  });

  it('creates with no messages and no metadata', async () => {
    const { context } = await create(v.keyA, { content: [] });
    expect(context).toMatchObject({ content: [], metadata: {} });
  });

  it('lists contexts filtered by agent and session, with message counts, totals and pages', async () => {
    const a1 = await create(v.keyA, { agent_id: 'agent-list', session_id: 's1' });
    const a2 = await create(v.keyA, { agent_id: 'agent-list', session_id: 's2', content: [{ role: 'user', content: 'one' }, { role: 'assistant', content: 'two' }] });
    const other = await create(v.keyA, { agent_id: 'agent-other', session_id: 's1' });
    const r = await v.call('GET', '/api/v1/mcp/contexts?agent_id=agent-list', v.keyA);
    expect(r.status).toBe(200);
    const rows = r.json['contexts'] as Json[];
    expect(rows.every((x) => ContextListItem.is(x))).toBe(true);
    expect(rows.map((x) => x['id']).sort()).toEqual([a1.id, a2.id].sort());
    expect(r.json).toMatchObject({ total: 2, limit: 50, offset: 0 });
    expect(rows.find((x) => x['id'] === a2.id)).toMatchObject({ agent_id: 'agent-list', session_id: 's2', message_count: 2 });
    expect(rows.find((x) => x['id'] === a1.id)).toMatchObject({ message_count: 1 });
    expect(rows[0]).not.toHaveProperty('content');

    const both = await v.call('GET', '/api/v1/mcp/contexts?agent_id=agent-list&session_id=s2', v.keyA);
    expect((both.json['contexts'] as Json[]).map((x) => x['id'])).toEqual([a2.id]);
    const bySession = await v.call('GET', '/api/v1/mcp/contexts?session_id=s1', v.keyA);
    expect((bySession.json['contexts'] as Json[]).map((x) => x['id']).sort()).toEqual([a1.id, other.id].sort());

    const page1 = await v.call('GET', '/api/v1/mcp/contexts?agent_id=agent-list&limit=1', v.keyA);
    const page2 = await v.call('GET', '/api/v1/mcp/contexts?agent_id=agent-list&limit=1&offset=1', v.keyA);
    expect(page1.json).toMatchObject({ total: 2, limit: 1, offset: 0 });
    expect(page2.json).toMatchObject({ total: 2, limit: 1, offset: 1 });
    const paged = [...(page1.json['contexts'] as Json[]), ...(page2.json['contexts'] as Json[])].map((x) => x['id']);
    expect(paged.sort()).toEqual([a1.id, a2.id].sort());

    const all = await v.call('GET', '/api/v1/mcp/contexts', v.keyA);
    expect(all.json['total']).toBeGreaterThanOrEqual(3);
    expect((await v.call('GET', '/api/v1/mcp/contexts?limit=0', v.keyA)).status).toBe(400);
  });
});

describe('tenant isolation', () => {
  it("tenant B gets 404 for A's context on every route and never sees it in lists", async () => {
    const { id } = await create(v.keyA, { agent_id: 'agent-iso', session_id: 'sess-iso', content: [{ role: 'user', content: 'secret deployment pipeline' }] });
    for (const [method, path, body] of [
      ['GET', `/api/v1/mcp/context/${id}`, undefined],
      ['PUT', `/api/v1/mcp/context/${id}`, { content: [{ role: 'user', content: 'intrusion' }] }],
      ['DELETE', `/api/v1/mcp/context/${id}`, undefined],
      ['POST', `/api/v1/mcp/context/${id}/search`, { query: 'pipeline' }],
      ['GET', `/api/v1/mcp/context/${id}/summary`, undefined],
    ] as const) {
      const r = await v.call(method, path, v.keyB, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json['code']).toBe('NOT_FOUND');
    }
    const listB = await v.call('GET', '/api/v1/mcp/contexts', v.keyB);
    expect((listB.json['contexts'] as Json[]).map((x) => x['id'])).not.toContain(id);
    const listB2 = await v.call('GET', '/api/v1/mcp/contexts?agent_id=agent-iso', v.keyB);
    expect(listB2.json).toMatchObject({ contexts: [], total: 0 });
    // A's context is untouched by B's attempts
    const g = await v.call('GET', `/api/v1/mcp/context/${id}`, v.keyA);
    expect(g.status).toBe(200);
    expect((g.json['content'] as Msg[]).map((m) => m.content)).toEqual(['secret deployment pipeline']);
    // and B's own contexts are B's
    const b = await create(v.keyB, { agent_id: 'agent-iso' });
    expect((await v.call('GET', `/api/v1/mcp/context/${b.id}`, v.keyA)).status).toBe(404);
    const listA = await v.call('GET', '/api/v1/mcp/contexts?agent_id=agent-iso', v.keyA);
    expect((listA.json['contexts'] as Json[]).map((x) => x['id'])).toEqual([id]);
  });
});

describe('update', () => {
  it('PUT appends messages, merges metadata (null removes a key) and bumps updated_at', async () => {
    const { id, context } = await create(v.keyA, { metadata: { source: 'web-ui', keep: 1 } });
    await new Promise((r) => setTimeout(r, 5));
    const before = events.length;
    const r = await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, {
      content: [{ role: 'assistant', content: "I'd be happy to help with your CI/CD pipeline." }],
      metadata: { source: null, added: 'yes' },
    });
    expect(r.status, r.text).toBe(200);
    expect(ContextView.is(r.json)).toBe(true);
    const content = r.json['content'] as Msg[];
    expect(content.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Hello, I need help with my CI/CD pipeline'],
      ['assistant', "I'd be happy to help with your CI/CD pipeline."],
    ]);
    expect(content[1]?.timestamp).toMatch(ISO_UTC);
    expect(r.json['metadata']).toEqual({ keep: 1, added: 'yes' });
    expect(r.json['created_at']).toBe(context['created_at']);
    expect(r.json['updated_at'] as string > (context['updated_at'] as string)).toBe(true);
    expect(events.slice(before)).toContainEqual(expect.objectContaining({ event_type: 'ContextUpdated', id, tenant_id: 'acme', agent_id: 'agent-123', session_id: 'session-456' }));
    expect((await v.call('GET', `/api/v1/mcp/context/${id}`, v.keyA)).json).toEqual(r.json);
  });

  it('PUT with replace_content replaces the messages', async () => {
    const { id } = await create(v.keyA);
    const r = await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, {
      content: [{ role: 'system', content: 'fresh start' }],
      options: { replace_content: true },
    });
    expect(r.status, r.text).toBe(200);
    expect((r.json['content'] as Msg[]).map((m) => m.content)).toEqual(['fresh start']);
    const cleared = await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, { content: [], options: { replace_content: true } });
    expect(cleared.json['content']).toEqual([]);
    // search follows the replacement
    expect((await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'fresh' })).json['results']).toEqual([]);
  });

  it('truncate_to_size keeps the newest messages that fit the byte limit', async () => {
    const msgs = Array.from({ length: 20 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `message number ${i} ${'é'.repeat(i * 10)}` }));
    const { id } = await create(v.keyA, { content: msgs.slice(0, 10) });
    const limit = 1500;
    const r = await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, { content: msgs.slice(10), options: { truncate_to_size: limit } });
    expect(r.status, r.text).toBe(200);
    const content = r.json['content'] as Msg[];
    expect(content.length).toBeGreaterThan(0);
    expect(content.length).toBeLessThan(20);
    expect(Buffer.byteLength(JSON.stringify(content), 'utf8')).toBeLessThanOrEqual(limit);
    // the newest ones, in order
    const kept = content.map((m) => m.content);
    expect(kept).toEqual(msgs.slice(20 - kept.length).map((m) => m.content));
    // and no more could have been kept: the next older message does not fit
    const older = msgs[20 - kept.length - 1] as { role: string; content: string };
    const withOlder = [{ ...older, timestamp: content[0]?.timestamp ?? '' }, ...content];
    expect(Buffer.byteLength(JSON.stringify(withOlder), 'utf8')).toBeGreaterThan(limit);
    // the dropped messages are gone from the search index too
    expect((await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'number' })).json['results']).toHaveLength(Math.min(10, kept.length));
    const dropped = await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: msgs[0]?.content.split(' ').slice(0, 3).join(' ') ?? '', limit: 100 });
    const hitIdx = (dropped.json['results'] as Json[]).map((h) => h['content']);
    expect(hitIdx).not.toContain(msgs[0]?.content);
    // a tiny limit empties the context
    const tiny = await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, { options: { truncate_to_size: 1 } });
    expect(tiny.json['content']).toEqual([]);
  });

  it('refuses a context over 1 MiB with 413 and changes nothing; truncate_to_size makes it fit', async () => {
    const big = 'x'.repeat(200_000);
    const six = Array.from({ length: 6 }, (_, i) => ({ role: 'tool', content: `${i} ${big}` }));
    const r = await v.call('POST', '/api/v1/mcp/context', v.keyA, { agent_id: 'a', session_id: 's', content: six });
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({ code: 'BODY_TOO_LARGE', details: { field: 'content', limit_bytes: MAX_CONTENT_BYTES } });
    const { id } = await create(v.keyA, { content: six.slice(0, 3) });
    const put = await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, { content: six.slice(3) });
    expect(put.status).toBe(413);
    expect(((await v.call('GET', `/api/v1/mcp/context/${id}`, v.keyA)).json['content'] as Msg[]).length).toBe(3);
    const fit = await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, { content: six.slice(3), options: { truncate_to_size: MAX_CONTENT_BYTES } });
    expect(fit.status, fit.text).toBe(200);
    const content = fit.json['content'] as Msg[];
    expect(content.map((m) => m.content.slice(0, 1))).toEqual(['1', '2', '3', '4', '5']);
    expect(Buffer.byteLength(JSON.stringify(content))).toBeLessThanOrEqual(MAX_CONTENT_BYTES);
  });

  it('refuses more than 10 000 messages and metadata over 64 KiB with 413', async () => {
    const many = Array.from({ length: MAX_MESSAGES + 1 }, () => ({ role: 'u', content: 'x' }));
    const r = await v.call('POST', '/api/v1/mcp/context', v.keyA, { agent_id: 'a', session_id: 's', content: many });
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({ code: 'BODY_TOO_LARGE', details: { field: 'content', limit_messages: MAX_MESSAGES, message_count: MAX_MESSAGES + 1 } });
    const { id } = await create(v.keyA);
    const meta = await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, { metadata: { blob: 'm'.repeat(MAX_METADATA_BYTES) } });
    expect(meta.status).toBe(413);
    expect(meta.json).toMatchObject({ code: 'BODY_TOO_LARGE', details: { field: 'metadata' } });
  });

  it('counts role and content length in characters (code points), not UTF-16 units', async () => {
    const r = await v.call('POST', '/api/v1/mcp/context', v.keyA, { agent_id: 'a', session_id: 's', content: [{ role: '🤖'.repeat(MAX_ROLE_CHARS), content: 'beep' }] });
    expect(r.status, r.text).toBe(201);
    const bad = await v.call('POST', '/api/v1/mcp/context', v.keyA, { agent_id: 'a', session_id: 's', content: [{ role: '🤖'.repeat(MAX_ROLE_CHARS + 1), content: 'beep' }] });
    expect(bad.status).toBe(400);
  });

  it('keeps every message of concurrent appends', async () => {
    const { id } = await create(v.keyA, { content: [] });
    const n = 40;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) => v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, { content: [{ role: 'tool', content: `call ${i}` }, { role: 'tool', content: `result ${i}` }] })),
    );
    expect(replies.map((r) => r.status)).toEqual(Array.from({ length: n }, () => 200));
    const content = (await v.call('GET', `/api/v1/mcp/context/${id}`, v.keyA)).json['content'] as Msg[];
    expect(content).toHaveLength(2 * n);
    expect(new Set(content.map((m) => m.content))).toEqual(new Set(Array.from({ length: n }, (_, i) => [`call ${i}`, `result ${i}`]).flat()));
    // each append stays together, in order
    for (let k = 0; k < n; k++) expect((content[2 * k + 1] as Msg).content).toBe((content[2 * k] as Msg).content.replace('call', 'result'));
    // the search index saw every append
    const hits = await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'result', limit: 100 });
    expect(hits.json['results']).toHaveLength(n);
  });
});

describe('search', () => {
  let id = '';
  beforeAll(async () => {
    ({ id } = await create(v.keyA, {
      content: [
        { role: 'user', content: 'Hello, I need help with my deployment.' },
        { role: 'user', content: 'Can you check my pipeline today?' },
        { role: 'assistant', content: 'The pipeline failed, the pipeline config is wrong, fix the pipeline' },
        { role: 'user', content: 'What about the weather in Paris?' },
        { role: 'assistant', content: 'I checked your configuration and found missing variables.' },
      ],
    }));
  });

  it('ranks the message mentioning the term most first, with scores and positions', async () => {
    const r = await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'pipeline' });
    expect(r.status, r.text).toBe(200);
    const results = r.json['results'] as Json[];
    expect(results.every((x) => SearchHit.is(x))).toBe(true);
    expect(results.map((x) => x['index'])).toEqual([2, 1]);
    expect(results[0]).toMatchObject({ role: 'assistant', content: 'The pipeline failed, the pipeline config is wrong, fix the pipeline' });
    expect(results[0]?.['timestamp']).toMatch(ISO_UTC);
    expect(results[0]?.['score'] as number).toBeGreaterThan(results[1]?.['score'] as number);
  });

  it('answers nothing for an absent term', async () => {
    const r = await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'kubernetes' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ results: [] });
  });

  it('matches prefixes and small typos, exact matches first; limit caps the results', async () => {
    const prefix = await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'config' });
    // "config" exactly (message 2) and as a prefix of "configuration" (message 4)
    expect((prefix.json['results'] as Json[]).map((x) => x['index'])).toEqual([2, 4]);
    const typo = await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'deplyment' });
    expect((typo.json['results'] as Json[]).map((x) => x['index'])).toEqual([0]);
    const capped = await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'pipeline weather', limit: 1 });
    expect(capped.json['results']).toHaveLength(1);
  });

  it('searches only that context', async () => {
    const other = await create(v.keyA, { content: [{ role: 'user', content: 'weather weather weather' }] });
    const r = await v.call('POST', `/api/v1/mcp/context/${id}/search`, v.keyA, { query: 'weather' });
    expect((r.json['results'] as Json[]).map((x) => x['content'])).toEqual(['What about the weather in Paris?']);
    const r2 = await v.call('POST', `/api/v1/mcp/context/${other.id}/search`, v.keyA, { query: 'weather' });
    expect((r2.json['results'] as Json[]).map((x) => x['content'])).toEqual(['weather weather weather']);
  });
});

describe('summary', () => {
  it('answers an extractive summary of the top sentences, in their original order', async () => {
    const { id } = await create(v.keyA, {
      content: [
        { role: 'user', content: 'Our deployment pipeline fails at the approval stage. It started yesterday.' },
        { role: 'assistant', content: 'Let me look. The pipeline approval stage needs environment variables.' },
        { role: 'user', content: 'Nice weather today!' },
        { role: 'assistant', content: 'Add the missing environment variables to the pipeline configuration. Then rerun the pipeline.' },
      ],
    });
    const r = await v.call('GET', `/api/v1/mcp/context/${id}/summary`, v.keyA);
    expect(r.status, r.text).toBe(200);
    expect(SummaryView.is(r.json)).toBe(true);
    expect(r.json).toMatchObject({ method: 'extractive', message_count: 4, sentence_count: 7, sentences_used: 3 });
    const summary = r.json['summary'] as string;
    expect(summary).toContain('pipeline');
    expect(summary).not.toContain('weather');
    // every picked sentence is from the context, in the original order
    const all = 'Our deployment pipeline fails at the approval stage. It started yesterday. Let me look. The pipeline approval stage needs environment variables. Nice weather today! Add the missing environment variables to the pipeline configuration. Then rerun the pipeline.';
    const picked = summary.split(/(?<=[.!?])\s+/);
    let at = -1;
    for (const s of picked) {
      const pos = all.indexOf(s);
      expect(pos).toBeGreaterThan(at);
      at = pos;
    }
    const one = await v.call('GET', `/api/v1/mcp/context/${id}/summary?sentences=1`, v.keyA);
    expect(one.json['sentences_used']).toBe(1);
    const bad = await v.call('GET', `/api/v1/mcp/context/${id}/summary?sentences=0`, v.keyA);
    expect(bad.status).toBe(400);
    expect(problems(bad.json).join()).toContain('sentences');
  });

  it('summarises an empty context as an empty string', async () => {
    const { id } = await create(v.keyA, { content: [] });
    const r = await v.call('GET', `/api/v1/mcp/context/${id}/summary`, v.keyA);
    expect(r.json).toEqual({ summary: '', method: 'extractive', message_count: 0, sentence_count: 0, sentences_used: 0 });
  });

  it('counts a repeated sentence once', () => {
    const s = extractiveSummary([{ content: 'Deploy the pipeline now.' }, { content: 'Deploy the pipeline now.' }, { content: 'Check pipeline logs please.' }], 5);
    expect(s).toMatchObject({ sentence_count: 2, sentences_used: 2, summary: 'Deploy the pipeline now. Check pipeline logs please.' });
  });
});

describe('delete', () => {
  it('DELETE answers {"status":"deleted"}, publishes ContextDeleted, and the context is gone everywhere', async () => {
    const { id } = await create(v.keyA, { agent_id: 'agent-del' });
    const before = events.length;
    const r = await v.call('DELETE', `/api/v1/mcp/context/${id}`, v.keyA);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'deleted' });
    expect(events.slice(before)).toContainEqual(expect.objectContaining({ event_type: 'ContextDeleted', id, tenant_id: 'acme' }));
    expect(events.slice(before)).toContainEqual(expect.objectContaining({ event_type: 'StoreChanged' }));
    for (const [method, path, body] of [
      ['GET', `/api/v1/mcp/context/${id}`, undefined],
      ['PUT', `/api/v1/mcp/context/${id}`, { content: [] }],
      ['DELETE', `/api/v1/mcp/context/${id}`, undefined],
      ['POST', `/api/v1/mcp/context/${id}/search`, { query: 'pipeline' }],
      ['GET', `/api/v1/mcp/context/${id}/summary`, undefined],
    ] as const) {
      expect((await v.call(method, path, v.keyA, body)).status, `${method} ${path}`).toBe(404);
    }
    expect((await v.call('GET', '/api/v1/mcp/contexts?agent_id=agent-del', v.keyA)).json).toMatchObject({ contexts: [], total: 0 });
  });

  it("removes the context's relationships with it", async () => {
    const { id } = await create(v.keyA);
    const rel = await v.call('POST', '/api/v1/relationships', v.keyA, { source_type: 'context', source_id: id, target_type: 'tool', target_id: 'github', relationship_type: 'uses' });
    expect(rel.status, rel.text).toBe(201);
    const before = events.length;
    expect((await v.call('DELETE', `/api/v1/mcp/context/${id}`, v.keyA)).status).toBe(200);
    const left = await v.call('GET', `/api/v1/relationships?source_id=${id}`, v.keyA);
    expect(left.status).toBe(200);
    expect(left.json).toMatchObject({ relationships: [], total: 0 });
    expect(events.slice(before)).toContainEqual(expect.objectContaining({ event_type: 'StoreChanged', tags: ['contexts', 'relationships'] }));
  });

  it('404 for an id that never existed', async () => {
    expect((await v.call('GET', '/api/v1/mcp/context/ctx-nope', v.keyA)).status).toBe(404);
  });
});

describe('bad bodies', () => {
  let id = '';
  beforeAll(async () => {
    ({ id } = await create(v.keyA));
  });

  const good = { agent_id: 'a', session_id: 's', content: [{ role: 'user', content: 'hi' }] };
  const cases: [string, 'POST' | 'PUT' | 'SEARCH', unknown, string[]][] = [
    ['unknown top-level field', 'POST', { ...good, extra: 1 }, ['extra: unknown field']],
    ['unknown message field', 'POST', { ...good, content: [{ role: 'user', content: 'hi', name: 'x' }] }, ['content.0.name: unknown field']],
    ['missing agent_id', 'POST', { session_id: 's', content: [] }, ['agent_id']],
    ['missing agent_id and session_id', 'POST', { content: [] }, ['agent_id', 'session_id']],
    ['empty role', 'POST', { ...good, content: [{ role: '', content: 'hi' }] }, ['content.0.role']],
    ['blank content', 'POST', { ...good, content: [{ role: 'user', content: '   ' }] }, ['content.0.content']],
    ['over-long role', 'POST', { ...good, content: [{ role: 'r'.repeat(65), content: 'hi' }] }, ['content.0.role']],
    ['content not an array', 'POST', { ...good, content: 'hi' }, ['content']],
    ['metadata not an object', 'POST', { ...good, metadata: [1] }, ['metadata']],
    ['truncate_to_size 0', 'PUT', { options: { truncate_to_size: 0 } }, ['options.truncate_to_size']],
    ['truncate_to_size fractional', 'PUT', { options: { truncate_to_size: 1.5 } }, ['options.truncate_to_size']],
    ['truncate_to_size a string', 'PUT', { options: { truncate_to_size: '100' } }, ['options.truncate_to_size']],
    ['replace_content not boolean', 'PUT', { options: { replace_content: 'yes' } }, ['options.replace_content']],
    ['unknown option', 'PUT', { options: { compress: true } }, ['options.compress: unknown field']],
    ['second message without role', 'PUT', { content: [{ role: 'user', content: 'ok' }, { content: 'no role' }] }, ['content.1.role']],
    ['empty query', 'SEARCH', { query: '' }, ['query']],
    ['missing query', 'SEARCH', {}, ['query']],
    ['limit 0', 'SEARCH', { query: 'x', limit: 0 }, ['limit']],
    ['unknown search field', 'SEARCH', { query: 'x', fuzzy: true }, ['fuzzy: unknown field']],
  ];
  for (const [name, kind, body, fields] of cases) {
    it(`400 naming the field: ${name}`, async () => {
      const [method, path] = kind === 'POST' ? ['POST', '/api/v1/mcp/context'] : kind === 'PUT' ? ['PUT', `/api/v1/mcp/context/${id}`] : ['POST', `/api/v1/mcp/context/${id}/search`];
      const r = await v.call(method, path, v.keyA, body);
      expect(r.status, r.text).toBe(400);
      expect(r.json['code']).toBe('VALIDATION_ERROR');
      const p = problems(r.json);
      for (const f of fields) expect(p.some((line) => line.startsWith(f)), `${f} in ${JSON.stringify(p)}`).toBe(true);
    });
  }

  it('a rejected PUT changes nothing', async () => {
    const before = (await v.call('GET', `/api/v1/mcp/context/${id}`, v.keyA)).json;
    await v.call('PUT', `/api/v1/mcp/context/${id}`, v.keyA, { content: [{ role: 'user', content: 'x' }], options: { truncate_to_size: -1 } });
    expect((await v.call('GET', `/api/v1/mcp/context/${id}`, v.keyA)).json).toEqual(before);
  });
});

describe('OpenAPI', () => {
  it('documents every context route under the contexts tag, with request and response schemas', async () => {
    const r = await send(`${v.gw.url}/api/openapi.json`, {});
    const paths = (r.json as { paths: Record<string, Record<string, { tags: string[]; requestBody?: unknown; responses: Record<string, { content?: unknown }> }>> }).paths;
    const routes: [string, string, boolean][] = [
      ['/api/v1/mcp/context', 'post', true],
      ['/api/v1/mcp/contexts', 'get', false],
      ['/api/v1/mcp/context/{id}', 'get', false],
      ['/api/v1/mcp/context/{id}', 'put', true],
      ['/api/v1/mcp/context/{id}', 'delete', false],
      ['/api/v1/mcp/context/{id}/search', 'post', true],
      ['/api/v1/mcp/context/{id}/summary', 'get', false],
    ];
    for (const [path, method, hasBody] of routes) {
      const op = paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(op?.tags).toEqual(['contexts']);
      expect(op?.requestBody !== undefined).toBe(hasBody);
      const success = op?.responses['200'] ?? op?.responses['201'];
      expect(success?.content, `${method} ${path}`).toBeDefined();
    }
  });
});

describe('restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-ctx-'));
  let gw: Gateway | undefined;

  async function start(): Promise<{ gw: Gateway; call: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: Json }> }> {
    const config = resolveConfig(
      {
        server: { host: '127.0.0.1', port: 0 },
        data_dir: dataDir,
        mcp_clients: [],
        auth: { disabled: false, admin: { username: 'admin' } },
      },
      'test',
      { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
    );
    const g = await startGateway(config, { log: createLogger('silent') });
    const admin = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
    const k = await send(`${g.url}/api/auth/keys`, { method: 'POST', headers: { authorization: admin, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'restart', tenant_id: 'acme' }) });
    const key = (k.json as Json)['secret'] as string;
    const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> => {
      const r = await send(`${g.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: r.status, json: (r.json ?? {}) as Json };
    };
    return { gw: g, call };
  }

  afterAll(async () => {
    await gw?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('rebuilds the search index from LevelDB after a restart on the same data dir', async () => {
    const first = await start();
    gw = first.gw;
    const c = await first.call('POST', '/api/v1/mcp/context', {
      agent_id: 'agent-r',
      session_id: 'sess-r',
      content: [
        { role: 'user', content: 'the rollback of the release' },
        { role: 'assistant', content: 'rollback rollback: the rollback is done' },
      ],
    });
    expect(c.status).toBe(201);
    const id = c.json['id'] as string;
    await first.call('PUT', `/api/v1/mcp/context/${id}`, { content: [{ role: 'user', content: 'and a canary deployment' }] });
    await gw.close();
    gw = undefined;

    const second = await start();
    gw = second.gw;
    const s = await second.call('POST', `/api/v1/mcp/context/${id}/search`, { query: 'rollback' });
    expect(s.status).toBe(200);
    expect((s.json['results'] as Json[]).map((x) => x['index'])).toEqual([1, 0]);
    const canary = await second.call('POST', `/api/v1/mcp/context/${id}/search`, { query: 'canary' });
    expect((canary.json['results'] as Json[]).map((x) => x['index'])).toEqual([2]);
    const list = await second.call('GET', '/api/v1/mcp/contexts?agent_id=agent-r');
    expect(list.json).toMatchObject({ total: 1, contexts: [{ id, message_count: 3 }] });
  });
});

describe('truncateToSize (property)', () => {
  const message = fc.record({
    role: fc.constantFrom('user', 'assistant', 'tool', 'système'),
    content: fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
    timestamp: fc.constant('2024-01-15T10:00:00.000Z'),
  });

  it('contentBytes is the UTF-8 size of JSON.stringify', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 20 }), (msgs: ContextMessage[]) => {
        expect(contentBytes(msgs)).toBe(Buffer.byteLength(JSON.stringify(msgs), 'utf8'));
      }),
    );
  });

  it('always fits, is a suffix of the input, and is the longest suffix that fits', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 30 }), fc.integer({ min: 1, max: 3000 }), (msgs: ContextMessage[], max) => {
        const out = truncateToSize(msgs, max);
        // fits (the empty list is the floor)
        expect(out.length === 0 || Buffer.byteLength(JSON.stringify(out), 'utf8') <= max).toBe(true);
        // a suffix
        expect(out).toEqual(msgs.slice(msgs.length - out.length));
        // the longest: one more message would not fit
        if (out.length < msgs.length) expect(contentBytes(msgs.slice(msgs.length - out.length - 1))).toBeGreaterThan(max);
      }),
    );
  });
});
