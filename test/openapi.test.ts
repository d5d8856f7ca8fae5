/**
 * The OpenAPI 3.1 document: it validates with a real OpenAPI validator
 * (@seriousme/openapi-schema-validator), every operation in it is answered by the server (no
 * "No route" 404 / 405), every REST route carries its own documentation, and request bodies are
 * the JSON Schemas of the codecs the handlers decode with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { demoClient } from './helpers/gateway.js';
import { startV1Gateway, type V1Gateway } from './helpers/v1.js';
import { toJsonSchema } from '../src/codecs/schema.js';
import { CreateApiKeyBody } from '../src/codecs/keys.js';

type Json = Record<string, unknown>;
let v1: V1Gateway;
let doc: Json;

beforeAll(async () => {
  v1 = await startV1Gateway([demoClient('demo')]);
  const r = await fetch(`${v1.gw.url}/api/openapi.json`);
  expect(r.status).toBe(200);
  doc = (await r.json()) as Json;
}, 30_000);

afterAll(async () => {
  await v1?.gw.stop();
});

function operations(): { method: string; path: string; op: Json }[] {
  const out: { method: string; path: string; op: Json }[] = [];
  for (const [path, item] of Object.entries(doc['paths'] as Record<string, Record<string, Json>>)) {
    for (const [method, op] of Object.entries(item)) out.push({ method: method.toUpperCase(), path, op });
  }
  return out;
}

describe('OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const result = await new Validator().validate(doc as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc['openapi']).toBe('3.1.0');
  });

  it('documents every route with its own summary and tag', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(20);
    for (const { method, path, op } of ops) {
      expect(op['tags'], `${method} ${path}`).not.toEqual(['other']);
      expect(String(op['summary']), `${method} ${path}`).not.toBe(`${method} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
    }
    const paths = Object.keys(doc['paths'] as Json);
    for (const p of ['/mcp', '/health', '/metrics', '/api/mcp/clients', '/api/auth/keys', '/v1/mcp/tool/execute', '/api/mcp-logs', '/api/v1', '/api/webhooks/github', '/api/openapi.json']) {
      expect(paths).toContain(p);
    }
  });

  it('request bodies are the JSON Schemas of the codecs the handlers decode with', () => {
    const op = (doc['paths'] as Record<string, Record<string, Json>>)['/api/auth/keys']?.['post'] as Json;
    const schema = (((op['requestBody'] as Json)['content'] as Json)['application/json'] as Json)['schema'];
    expect(schema).toEqual(toJsonSchema(CreateApiKeyBody));
    expect(JSON.stringify(schema)).toContain('rate_limits');
  });

  it('GET /api/v1/ lists exactly the v1 routes of the document; other API versions get 406', async () => {
    const r = await v1.call('GET', '/api/v1/', v1.keyA);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ version: 'v1', status: 'operational' });
    const apis = (r.json['apis'] as string[]).slice().sort();
    const documented = operations()
      .filter((o) => o.path.startsWith('/api/v1/'))
      .map((o) => `${o.method} ${o.path.replace(/\{(\w+)\}/g, ':$1')}`)
      .sort();
    expect(apis).toEqual(documented);
    expect(apis).toContain('GET /api/v1/agents');
    expect(apis).toContain('GET /api/v1/tasks/:id');
    expect((await v1.call('GET', '/api/v1/agents', v1.keyA, undefined, { accept: 'application/vnd.mcp.v2+json' })).status).toBe(406);
    expect((await v1.call('GET', '/api/v1/agents', v1.keyA, undefined, { 'x-api-version': '3' })).status).toBe(406);
    expect((await v1.call('GET', '/api/v1/agents', v1.keyA, undefined, { 'x-api-version': '1', accept: 'application/vnd.mcp.v1+json' })).status).toBe(200);
  });

  it('every operation is answered by the server (no "No route" 404, no 405)', async () => {
    const missing: string[] = [];
    for (const { method, path } of operations()) {
      if (path === '/ws' || path.startsWith('/api/ws/') || method === 'OPTIONS') continue;
      const url = `${v1.gw.url}${path.replace(/\{\w+\}/g, 'x-probe')}`;
      const r = await fetch(url, {
        method,
        headers: { authorization: v1.admin, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        ...(method === 'POST' || method === 'PUT' ? { body: '{}' } : {}),
      });
      const text = await r.text();
      if (r.status === 405 || (r.status === 404 && text.includes('No route for'))) missing.push(`${method} ${path} → ${r.status}`);
    }
    expect(missing).toEqual([]);
  });
});
