/**
 * Tool modes against real upstreams (server-everything and server-memory over stdio, the demo
 * in-process) with real SDK clients: `search` finds, describes and calls; `code` chains tools in
 * the QuickJS sandbox through the normal call path; a virtual key limited to two tools cannot
 * reach a third in any mode; hostile code ends with its named limit and the gateway stays healthy.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { packageBin } from '../src/config/default.js';
import type { GatewayEvent } from '../src/streams/events.js';
import { demoClient, everythingClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

type Json = Record<string, unknown>;

interface ToolText {
  readonly text: string;
  readonly isError: boolean;
}

async function connect(gw: TestGateway, headers: Record<string, string>, name = 'tool-modes-test'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { requestInit: { headers } }));
  return client;
}

async function callText(client: Client, name: string, args: Json): Promise<ToolText> {
  const r = await client.callTool({ name, arguments: args });
  const content = (r.content ?? []) as { type: string; text?: string }[];
  return { text: content.map((c) => c.text ?? '').join('\n'), isError: r.isError === true };
}

function memoryClient(file: string): Json {
  return {
    name: 'memory',
    connection_type: 'stdio',
    stdio_config: { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-memory')], envs: [`MEMORY_FILE_PATH=${file}`] },
  };
}

describe('tool modes with real upstreams', () => {
  let gw: TestGateway;
  let memDir: string;

  beforeAll(async () => {
    memDir = mkdtempSync(join(tmpdir(), 'tributary-memory-'));
    gw = await startTestGateway([everythingClient(), memoryClient(join(memDir, 'memory.jsonl')), demoClient()], {}, {
      tool_modes: { clients: { 'search-agent': 'search' }, sandbox: { cpu_ms: 300, wall_ms: 3_000, max_tool_calls: 20, memory_bytes: 32 * 1024 * 1024 } },
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    rmSync(memDir, { recursive: true, force: true });
  });

  it('full mode (no header) lists the whole catalogue', async () => {
    const client = await connect(gw, {});
    const { tools } = await client.listTools();
    expect(tools.length).toBeGreaterThan(10);
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['everything-echo', 'memory-create_entities', 'demo-echo']));
    await client.close();
  });

  it('search mode: three meta-tools; search finds everything-echo from "repeat my message", describe gives its schema, call_tool calls it', async () => {
    const client = await connect(gw, { 'x-tributary-tool-mode': 'search' });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['search_tools', 'describe_tools', 'call_tool']);

    const found = await callText(client, 'search_tools', { query: 'repeat my message' });
    expect(found.isError).toBe(false);
    expect(found.text.split('\n').map((l) => l.split(':')[0])).toContain('everything-echo');

    const described = await callText(client, 'describe_tools', { names: ['everything-echo'] });
    const defs = JSON.parse(described.text) as Json[];
    expect(defs[0]?.['name']).toBe('everything-echo');
    expect(((defs[0]?.['inputSchema'] as Json)['properties'] as Json)['message']).toBeDefined();

    const called = await callText(client, 'call_tool', { name: 'everything-echo', arguments: { message: 'hello from search mode' } });
    expect(called.isError).toBe(false);
    expect(called.text).toContain('hello from search mode');

    // the regex variant, and a bad pattern named as such
    const byRegex = await callText(client, 'search_tools', { query: '^memory-.*entit', regex: true });
    expect(byRegex.text).toContain('memory-create_entities');
    const bad = await callText(client, 'search_tools', { query: '(unclosed', regex: true });
    expect(bad).toMatchObject({ isError: true });
    expect(bad.text).toMatch(/^INVALID_PARAMS: Invalid regular expression/);

    // a direct call of a catalogue tool is not a tool of this session
    await expect(client.callTool({ name: 'everything-echo', arguments: { message: 'x' } })).rejects.toThrow(/search mode/);
    await client.close();
  });

  it('per-client config picks the mode; the header overrides it', async () => {
    const byName = await connect(gw, {}, 'search-agent');
    expect((await byName.listTools()).tools).toHaveLength(3);
    await byName.close();
    const overridden = await connect(gw, { 'x-tributary-tool-mode': 'full' }, 'search-agent');
    expect((await overridden.listTools()).tools.length).toBeGreaterThan(10);
    await overridden.close();
  });

  it('a bad x-tributary-tool-mode header fails initialize with 400', async () => {
    const r = await send(gw.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-tributary-tool-mode': 'turbo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't' } } }),
    });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.json)).toContain('x-tributary-tool-mode must be full, search or code');
  });

  it('code mode: at most three tools; execute_code chains memory-create_entities then memory-read_graph through the normal call path', async () => {
    const client = await connect(gw, { 'x-tributary-tool-mode': 'code' });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['search_tools', 'describe_tools', 'execute_code']);

    const decl = await callText(client, 'describe_tools', { names: ['memory-create_entities', 'memory-read_graph'] });
    expect(decl.text).toContain('declare const tools');
    expect(decl.text).toMatch(/memory_create_entities\(args: \{/);
    expect(decl.text).toMatch(/memory_read_graph\(/);

    const events: GatewayEvent[] = [];
    const sub = gw.bus.events$.subscribe((e) => {
      if (e.event_type === 'ToolInvocationCompleted') events.push(e);
    });
    const run = await callText(client, 'execute_code', {
      code: `
        const created = await tools.memory_create_entities({ entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }] });
        console.log('created', created.text.length > 0);
        const graph = await tools.memory_read_graph({});
        const data: { entities: { name: string }[] } = graph.structuredContent ?? JSON.parse(graph.text);
        return data.entities.map((e) => e.name);
      `,
    });
    sub.unsubscribe();
    expect(run.isError).toBe(false);
    const [value, consoleOut] = run.text.split('\n--- console ---\n');
    expect(JSON.parse(value ?? '')).toContain('Ada');
    expect(consoleOut).toBe('created true');
    // both calls went through the normal path: tool events with the code surface and the parent's id
    const fromCode = events.filter((e) => (e as unknown as Json)['surface'] === 'mcp:code');
    expect(fromCode.map((e) => (e as unknown as Json)['tool_name'])).toEqual(['create_entities', 'read_graph']);
    const parents = new Set(fromCode.map((e) => (e as unknown as Json)['parent_call_id']));
    expect(parents.size).toBe(1);
    expect([...parents][0]).toMatch(/^call-/);
    await client.close();
  });

  it('code mode over /ws: the upgrade header picks the mode', async () => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`, 'mcp', { headers: { 'x-tributary-tool-mode': 'code' } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const answers = new Map<unknown, (m: Json) => void>();
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Json;
      answers.get(m['id'])?.(m);
    });
    const rpc = (id: number, method: string, params: Json): Promise<Json> =>
      new Promise((resolve) => {
        answers.set(id, resolve);
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      });
    await rpc(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws-agent' } });
    const list = await rpc(2, 'tools/list', {});
    expect(((list['result'] as Json)['tools'] as Json[]).map((t) => t['name'])).toEqual(['search_tools', 'describe_tools', 'execute_code']);
    const run = await rpc(3, 'tools/call', { name: 'execute_code', arguments: { code: 'return (await tools.demo_add({ a: 2, b: 3 })).structuredContent' } });
    expect(((run['result'] as Json)['content'] as Json[])[0]?.['text']).toBe('{"sum":5}');
    ws.close();
  });

  describe('sandbox hostility: each run ends with its named limit and the gateway stays healthy', () => {
    let client: Client;
    let rssBefore: number;
    beforeAll(async () => {
      client = await connect(gw, { 'x-tributary-tool-mode': 'code' });
      rssBefore = process.memoryUsage().rss;
    });
    afterAll(async () => {
      await client.close();
    });

    const cases: [string, string, RegExp][] = [
      ['infinite loop', 'while (true) {}', /^SANDBOX_CPU_LIMIT: /],
      ['infinite loop that catches', 'for (;;) { try { while (true) {} } catch (e) {} }', /^SANDBOX_CPU_LIMIT: /],
      ['async busy loop', 'for (;;) await null;', /^SANDBOX_CPU_LIMIT: /],
      ['deep recursion', 'const f = (n) => f(n + 1) + 1; return f(0);', /^SANDBOX_STACK_LIMIT: /],
      ['deeply nested source', `return ${'['.repeat(30000)}${']'.repeat(30000)};`, /^SANDBOX_STACK_LIMIT: /],
      ['1 GB allocation', 'const a = new Uint8Array(1024 * 1024 * 1024); return a.length;', /^SANDBOX_MEMORY_LIMIT: /],
      ['growing heap', 'const a = []; for (;;) a.push(new Array(100000).fill(1));', /^SANDBOX_MEMORY_LIMIT: /],
      ['require', 'return require("fs").readFileSync("/etc/passwd", "utf8");', /^SANDBOX_CODE_ERROR: ReferenceError: 'require' is not defined/],
      ['static import', 'import fs from "fs"; return fs;', /^SANDBOX_CODE_ERROR: SyntaxError/],
      ['dynamic import', 'return await import("fs");', /^SANDBOX_CODE_ERROR: ReferenceError: could not load module/],
      ['process', 'return process.env;', /^SANDBOX_CODE_ERROR: ReferenceError: 'process' is not defined/],
      ['fetch', 'return await fetch("http://127.0.0.1/");', /^SANDBOX_CODE_ERROR: ReferenceError: 'fetch' is not defined/],
      ['timers', 'setTimeout(() => {}, 10); return 1;', /^SANDBOX_CODE_ERROR: ReferenceError: 'setTimeout' is not defined/],
      ['flood of tool calls', 'const all = []; for (let i = 0; i < 10000; i++) all.push(tools.demo_echo({ message: String(i) })); await Promise.all(all);', /^SANDBOX_TOOL_CALL_LIMIT: /],
      ['console flood', 'for (;;) console.log("x".repeat(10000));', /^SANDBOX_OUTPUT_LIMIT: /],
      ['a promise that never settles', 'await new Promise(() => {});', /^SANDBOX_CODE_ERROR: Error: the code awaits a promise that can never settle/],
    ];
    for (const [name, code, expected] of cases) {
      it(name, async () => {
        const r = await callText(client, 'execute_code', { code });
        expect(r.isError).toBe(true);
        expect(r.text).toMatch(expected);
      });
    }

    it('a guest stuck inside one built-in call: the event loop keeps serving, and the run ends at wall_ms', async () => {
      const run = callText(client, 'execute_code', { code: 'for (;;) "x".repeat(1000000);' });
      // while the guest spins, the gateway answers other requests
      const health = await send(`${gw.url}/health`, { method: 'GET' });
      expect(health.status).toBe(200);
      const r = await run;
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/^SANDBOX_(TIMEOUT|CPU_LIMIT): /);
      // the next run gets a working sandbox
      expect((await callText(client, 'execute_code', { code: 'return 6 * 7;' })).text).toBe('42');
    });

    it('prototype pollution of tools stays inside one run', async () => {
      const polluted = await callText(client, 'execute_code', {
        code: `
          Object.prototype.polluted = 'yes';
          try { tools.demo_echo = () => 'hijacked'; } catch (e) { console.log('assign', e.name); }
          try { Object.getPrototypeOf(tools).hijack = 1; } catch (e) { console.log('proto', e.name); }
          try { Object.defineProperty(tools, 'extra', { value: 1 }); } catch (e) { console.log('define', e.name); }
          JSON.stringify = () => '"hijacked"';
          JSON.parse = () => ({ hijacked: true });
          return (await tools.demo_echo({ message: 'still real' })).text;
        `,
      });
      expect(polluted.isError).toBe(false);
      expect(polluted.text.split('\n')[0]).toBe('"Echo: still real"');
      expect(polluted.text).toContain('define TypeError');
      // the next run starts clean, and the host was never touched
      const clean = await callText(client, 'execute_code', { code: 'return [({}).polluted ?? null, typeof tools.demo_echo, Object.isFrozen(tools)];' });
      expect(JSON.parse(clean.text)).toEqual([null, 'function', true]);
      expect((Object.prototype as Json)['polluted']).toBeUndefined();
    });

    it('after all of it: /health answers and RSS stayed bounded', async () => {
      const health = await send(`${gw.url}/health`, { method: 'GET' });
      expect(health.status).toBe(200);
      const ok = await callText(client, 'execute_code', { code: 'return (await tools.everything_echo({ message: "alive" })).text;' });
      expect(ok.text).toContain('alive');
      // the 1 GB allocation never happened: the engine heap is capped at 32 MiB per run
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024);
    });
  });
});

describe('a virtual key limited to two tools, in every mode', () => {
  const ADMIN_PASSWORD = 'correct horse battery staple 23';
  let gw: TestGateway;
  const keys: Record<string, string> = {};
  const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;

  async function api(method: string, path: string, body?: unknown): Promise<Json> {
    const r = await send(`${gw.url}${path}`, {
      method,
      headers: { authorization: basic, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    expect(r.status).toBeLessThan(300);
    return r.json as Json;
  }

  beforeAll(async () => {
    gw = await startTestGateway([demoClient(), everythingClient()], {}, {
      auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 10_000, requests_per_hour: 100_000, tool_executions_per_hour: 100_000 } },
    }, { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD });
    for (const mode of ['full', 'search', 'code'] as const) {
      const created = await api('POST', '/api/auth/virtual-keys', { name: `two tools ${mode}`, tool_mode: mode });
      expect((created['virtual_key'] as Json)['tool_mode']).toBe(mode);
      keys[mode] = created['secret'] as string;
    }
    const vkIds = await api('GET', '/api/auth/virtual-keys');
    const ids = (vkIds['virtual_keys'] as Json[]).map((k) => k['id'] as string);
    const clients = await api('GET', '/api/mcp/clients');
    const demo = (clients['clients'] as Json[]).find((c) => (c['config'] as Json)['name'] === 'demo') as Json;
    await api('PUT', `/api/mcp/client/${String((demo['config'] as Json)['client_id'])}`, {
      vk_configs: ids.map((id) => ({ virtual_key_id: id, tools_to_execute: ['echo', 'add'] })),
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
  });

  it('full mode: lists the two tools; a third is refused', async () => {
    const client = await connect(gw, { authorization: `Bearer ${keys['full'] ?? ''}` });
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['demo-add', 'demo-echo']);
    await expect(client.callTool({ name: 'demo-now', arguments: {} })).rejects.toThrow(/not allowed/);
    await client.close();
  });

  it('search mode (the key\'s tool_mode): cannot find, describe or call a third tool', async () => {
    const client = await connect(gw, { authorization: `Bearer ${keys['search'] ?? ''}` });
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['search_tools', 'describe_tools', 'call_tool']);
    const everything = await callText(client, 'search_tools', { query: 'echo time add sleep message', limit: 50 });
    expect(everything.text.split('\n').map((l) => l.split(':')[0]).sort()).toEqual(['demo-add', 'demo-echo']);
    const regex = await callText(client, 'search_tools', { query: '.', regex: true, limit: 50 });
    expect(regex.text.split('\n').map((l) => l.split(':')[0]).sort()).toEqual(['demo-add', 'demo-echo']);
    const described = await callText(client, 'describe_tools', { names: ['demo-now', 'everything-echo'] });
    expect(described).toEqual({ isError: true, text: 'TOOL_NOT_FOUND: No such tool: demo-now, everything-echo' });
    const called = await callText(client, 'call_tool', { name: 'demo-now', arguments: {} });
    expect(called).toEqual({ isError: true, text: 'TOOL_NOT_FOUND: No such tool: demo-now' });
    expect((await callText(client, 'call_tool', { name: 'demo-add', arguments: { a: 1, b: 2 } })).text).toBe('3');
    await client.close();
  });

  it('code mode: the tools object holds exactly the two tools', async () => {
    const client = await connect(gw, { authorization: `Bearer ${keys['code'] ?? ''}` });
    expect((await client.listTools()).tools).toHaveLength(3);
    const run = await callText(client, 'execute_code', { code: 'return Object.keys(tools).sort();' });
    expect(JSON.parse(run.text)).toEqual(['demo_add', 'demo_echo']);
    const third = await callText(client, 'execute_code', { code: 'return await tools.demo_now({});' });
    expect(third.text).toMatch(/^SANDBOX_CODE_ERROR: TypeError: not a function/);
    const decl = await callText(client, 'describe_tools', { names: ['demo-now'] });
    expect(decl.isError).toBe(true);
    await client.close();
  });

  it('the header overrides the key\'s mode but not its access', async () => {
    const client = await connect(gw, { authorization: `Bearer ${keys['code'] ?? ''}`, 'x-tributary-tool-mode': 'full' });
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['demo-add', 'demo-echo']);
    await client.close();
  });
});
