/**
 * The MCP client management API on LevelDB, end to end: a real gateway, the real server-memory
 * over stdio added live, an SDK client on /mcp seeing list_changed, a restart on the same data
 * dir, bad bodies, and the redaction of secrets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { childPids } from './helpers/proc.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { packageBin } from '../src/config/default.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { connectClient, demoClient, send } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;

const dataDir = mkdtempSync(join(tmpdir(), 'tributary-mgmt-'));
const logs: string[] = [];

async function start(): Promise<Gateway & { mcpUrl: URL }> {
  const config = resolveConfig({ server: { port: 0 }, data_dir: dataDir, mcp_clients: [demoClient()] }, 'test');
  const gw = await startGateway(config, { log: createLogger('debug', {}, (l) => logs.push(l)) });
  return Object.assign(gw, { mcpUrl: new URL(`${gw.url}/mcp`) });
}

function api(gw: Gateway, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  return send(`${gw.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
}

function memoryBody(extra: Json = {}): Json {
  return {
    name: 'mem',
    connection_type: 'stdio',
    stdio_config: {
      command: process.execPath,
      args: [packageBin('@modelcontextprotocol/server-memory')],
      envs: [`MEMORY_FILE_PATH=${join(dataDir, 'mem.jsonl')}`, 'SECRET_TOKEN=hunter2'],
    },
    ...extra,
  };
}

function childPidsOf(needle: string): number[] {
  return childPids(process.pid, needle);
}

let gw: Gateway & { mcpUrl: URL };
  let vkId = '';
  let memId = '';

beforeAll(async () => {
  gw = await start();
});

afterAll(async () => {
  await gw?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('MCP client management API', () => {
  it('lists the config-file client seeded into the store', async () => {
    const r = await api(gw, 'GET', '/api/mcp/clients');
    expect(r.status).toBe(200);
    const body = r.json as { clients: Json[]; count: number; total_count: number; limit: number; offset: number };
    expect(body.total_count).toBe(1);
    expect(body.clients[0]).toMatchObject({ state: 'connected', config: { name: 'demo', connection_type: 'inprocess' } });
    expect((body.clients[0]?.['tools'] as Json[]).map((t) => t['name'])).toContain('echo');
  });

  it('adds server-memory live: 201, connected, and its tools reach an open /mcp session via list_changed', async () => {
    const client = await connectClient(gw);
    try {
      let notified = false;
      client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
        notified = true;
      });
      await waitFor(() => [...gw.sessions.values()].some((s) => s.standalone !== undefined));
      const r = await api(gw, 'POST', '/api/mcp/client', memoryBody({ tools_to_execute: ['*'] }));
      expect(r.status).toBe(201);
      const created = r.json as { config: Json; state: string; tools: Json[] };
      expect(created.state).toBe('connected');
      memId = created.config['client_id'] as string;
      expect(memId).toMatch(/^[0-9a-f-]{36}$/);
      expect(created.tools.map((t) => t['name'])).toContain('create_entities');
      await waitFor(() => notified);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('mem-read_graph');
      const result = await client.callTool({ name: 'mem-read_graph', arguments: {} });
      expect(JSON.stringify(result.content)).toContain('entities');
    } finally {
      await client.close();
    }
  });

  it('redacts env values and header values in responses and logs', async () => {
    const r = await api(gw, 'GET', `/api/mcp/client/${memId}`);
    const cfg = (r.json as { config: { stdio_config: { envs: string[] } } }).config;
    expect(cfg.stdio_config.envs).toContain('SECRET_TOKEN=<redacted>');
    expect(r.text).not.toContain('hunter2');
    expect(logs.join('\n')).not.toContain('hunter2');
  });

  it('updates pricing and vk_configs, and rejects changes to immutable fields', async () => {
    const unknownVk = await api(gw, 'PUT', `/api/mcp/client/${memId}`, { vk_configs: [{ virtual_key_id: 'vk-nope', tools_to_execute: ['read_graph'] }] });
    expect(unknownVk.status).toBe(400);
    expect(JSON.stringify(unknownVk.json)).toContain('vk_configs.0.virtual_key_id');
    const created = await api(gw, 'POST', '/api/auth/virtual-keys', { name: 'team-a' });
    expect(created.status).toBe(201);
    vkId = ((created.json as Record<string, Record<string, string>>)['virtual_key'] as Record<string, string>)['id'] as string;
    const r = await api(gw, 'PUT', `/api/mcp/client/${memId}`, {
      tool_pricing: { read_graph: 0.25 },
      vk_configs: [{ virtual_key_id: vkId, virtual_key_name: 'team-a', tools_to_execute: ['read_graph'] }],
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ config: { tool_pricing: { read_graph: 0.25 } }, vk_configs: [{ virtual_key_id: vkId, virtual_key_name: 'team-a', tools_to_execute: ['read_graph'] }] });
    for (const [field, value] of [
      ['connection_type', 'http'],
      ['stdio_config', { command: 'other' }],
      ['auth_type', 'headers'],
      ['connection_string', 'http://127.0.0.1:1/mcp'],
    ] as const) {
      const bad = await api(gw, 'PUT', `/api/mcp/client/${memId}`, { [field]: value });
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({ code: 'IMMUTABLE_FIELD', details: { field } });
    }
    const unknownTool = await api(gw, 'PUT', `/api/mcp/client/${memId}`, { tool_pricing: { no_such_tool: 1 } });
    expect(unknownTool.status).toBe(400);
    expect(JSON.stringify(unknownTool.json)).toContain('tool_pricing.no_such_tool');
  });

  it('narrows tools with tools_to_execute without a reconnect', async () => {
    const r = await api(gw, 'PUT', `/api/mcp/client/${memId}`, { tools_to_execute: ['read_graph', 'create_entities'], tools_to_auto_execute: ['read_graph'] });
    expect(r.status).toBe(200);
    const names = gw.manager.tools.map((t) => t['name'] as string).filter((n) => n.startsWith('mem-'));
    expect(names.sort()).toEqual(['mem-create_entities', 'mem-read_graph']);
    const bad = await api(gw, 'PUT', `/api/mcp/client/${memId}`, { tools_to_auto_execute: ['delete_entities'] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('tools_to_auto_execute');
  });

  it('searches and pages the list', async () => {
    const r = await api(gw, 'GET', '/api/mcp/clients?search=ME&limit=1&offset=0');
    expect(r.json).toMatchObject({ count: 1, total_count: 1, limit: 1, offset: 0 });
    const bad = await api(gw, 'GET', '/api/mcp/clients?limit=abc');
    expect(bad.status).toBe(400);
  });

  it('keeps clients, pricing and vk_configs across a restart on the same data dir, and reconnects them', async () => {
    await gw.close();
    gw = await start();
    const r = await api(gw, 'GET', `/api/mcp/client/${memId}`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      state: 'connected',
      config: { name: 'mem', tool_pricing: { read_graph: 0.25 }, tools_to_execute: ['read_graph', 'create_entities'] },
      vk_configs: [{ virtual_key_id: vkId }],
    });
    const list = (await api(gw, 'GET', '/api/mcp/clients')).json as { total_count: number };
    expect(list.total_count).toBe(2);
  });

  it('reconnects a client on request', async () => {
    const before = childPidsOf('server-memory');
    expect(before.length).toBe(1);
    const r = await api(gw, 'POST', `/api/mcp/client/${memId}/reconnect`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ state: 'connected' });
    await waitFor(() => childPidsOf('server-memory').length === 1 && childPidsOf('server-memory')[0] !== before[0]);
  });

  it('deletes a client live: its subprocess ends, its tools leave, 404 after', async () => {
    expect(childPidsOf('server-memory').length).toBe(1);
    const r = await api(gw, 'DELETE', `/api/mcp/client/${memId}`);
    expect(r.status).toBe(200);
    await waitFor(() => childPidsOf('server-memory').length === 0);
    expect(gw.manager.tools.some((t) => (t['name'] as string).startsWith('mem-'))).toBe(false);
    expect((await api(gw, 'GET', `/api/mcp/client/${memId}`)).status).toBe(404);
    expect((await api(gw, 'DELETE', `/api/mcp/client/${memId}`)).status).toBe(404);
    // deleted config-file clients stay deleted after a restart; API-deleted ones too
    await gw.close();
    gw = await start();
    expect(((await api(gw, 'GET', '/api/mcp/clients')).json as { total_count: number }).total_count).toBe(1);
  });
});

describe('bad bodies', () => {
  const cases: [string, string, string, unknown, number, string, string?][] = [
    ['not JSON', 'POST', '/api/mcp/client', '{nope', 400, 'INVALID_JSON'],
    ['array body', 'POST', '/api/mcp/client', [], 400, 'VALIDATION_ERROR'],
    ['no connection_type', 'POST', '/api/mcp/client', { name: 'x' }, 400, 'VALIDATION_ERROR', 'connection_type'],
    ['unknown connection_type', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'ftp' }, 400, 'VALIDATION_ERROR', 'connection_type'],
    ['http without connection_string', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'http' }, 400, 'VALIDATION_ERROR', 'connection_string'],
    ['stdio without stdio_config', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'stdio' }, 400, 'VALIDATION_ERROR', 'stdio_config'],
    ['name with hyphen', 'POST', '/api/mcp/client', { name: 'a-b', connection_type: 'http', connection_string: 'http://127.0.0.1:1/mcp' }, 400, 'VALIDATION_ERROR', 'name'],
    ['name starting with a digit', 'POST', '/api/mcp/client', { name: '1a', connection_type: 'http', connection_string: 'http://127.0.0.1:1/mcp' }, 400, 'VALIDATION_ERROR', 'name'],
    ['unknown field', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'http', connection_string: 'http://127.0.0.1:1/mcp', colour: 'red' }, 400, 'VALIDATION_ERROR', 'colour: unknown field'],
    ['unknown stdio field', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'stdio', stdio_config: { command: 'x', shell: true } }, 400, 'VALIDATION_ERROR', 'stdio_config.shell'],
    ['bad env entry', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'stdio', stdio_config: { command: 'x', envs: ['NOEQ'] } }, 400, 'VALIDATION_ERROR', 'envs'],
    ['not a URL', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'sse', connection_string: 'nope' }, 400, 'VALIDATION_ERROR', 'connection_string'],
    ['oauth on stdio', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'stdio', stdio_config: { command: 'x' }, auth_type: 'oauth' }, 400, 'UNSUPPORTED_AUTH_TYPE'],
    ['headers auth without headers', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'http', connection_string: 'http://127.0.0.1:1/mcp', auth_type: 'headers' }, 400, 'VALIDATION_ERROR', 'headers'],
    ['auto not a subset', 'POST', '/api/mcp/client', { name: 'x', connection_type: 'http', connection_string: 'http://127.0.0.1:1/mcp', tools_to_execute: ['a'], tools_to_auto_execute: ['b'] }, 400, 'VALIDATION_ERROR', 'tools_to_auto_execute'],
    ['duplicate name', 'POST', '/api/mcp/client', { name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }, 409, 'NAME_CONFLICT'],
    ['wrong content type', 'POST', '/api/mcp/client', 'x', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['unknown client', 'GET', '/api/mcp/client/nope', undefined, 404, 'CLIENT_NOT_FOUND'],
    ['update unknown client', 'PUT', '/api/mcp/client/nope', {}, 404, 'CLIENT_NOT_FOUND'],
    ['wrong method', 'PATCH', '/api/mcp/clients', {}, 405, 'METHOD_NOT_ALLOWED'],
    ['unknown route', 'GET', '/api/nothing', undefined, 404, 'NOT_FOUND'],
  ];

  it.each(cases)('%s → %i %s', async (_name, method, path, body, status, code, mentions) => {
    const headers: Record<string, string> = { 'content-type': code === 'UNSUPPORTED_MEDIA_TYPE' ? 'text/plain' : 'application/json' };
    const r = await send(`${gw.url}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    expect(r.status).toBe(status);
    const json = r.json as { error: string; code: string; details: unknown };
    expect(json.code).toBe(code);
    expect(typeof json.error).toBe('string');
    expect(json.details).toBeTypeOf('object');
    if (mentions) expect(JSON.stringify(json)).toContain(mentions);
    // nothing was created by a bad body
    expect(((await api(gw, 'GET', '/api/mcp/clients')).json as { total_count: number }).total_count).toBe(1);
  });
});
