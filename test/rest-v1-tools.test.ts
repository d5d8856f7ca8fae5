/**
 * REST `/api/v1/tools*`: tools = upstream MCP clients, actions = their MCP tools. Real
 * HTTP against a real gateway with the real server-everything over stdio and the in-process demo
 * upstream (`tools_to_execute: [echo, add, now]`, `disallowed_actions: [now]`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Subscription } from 'rxjs';
import { actionResult, exampleFor, parametersOf, safetyNotes, toolDescription } from '../src/handlers/rest-v1/tool-examples.js';
import type { GatewayEvent } from '../src/streams/events.js';
import { demoClient, everythingClient } from './helpers/gateway.js';
import { startV1Gateway, type V1Gateway } from './helpers/v1.js';

type Json = Record<string, unknown>;

describe('rest-v1 tools: pure rules', () => {
  it('derives examples from examples, example, default, const, enum, then type placeholders', () => {
    expect(exampleFor({ type: 'string', examples: ['a', 'b'], default: 'c' })).toBe('a');
    expect(exampleFor({ type: 'string', example: 'x', default: 'c' })).toBe('x');
    expect(exampleFor({ type: 'number', default: 3, enum: [7] })).toBe(3);
    expect(exampleFor({ const: 'fixed' })).toBe('fixed');
    expect(exampleFor({ type: 'string', enum: ['error', 'success'] })).toBe('error');
    expect(exampleFor({ type: 'string' }, 'owner')).toBe('<owner>');
    expect(exampleFor({ type: 'string', format: 'uri' })).toBe('https://example.com');
    expect(exampleFor({ type: 'integer', minimum: 5, maximum: 9 })).toBe(5);
    expect(exampleFor({ type: 'number', maximum: 0.5 })).toBe(0.5);
    expect(exampleFor({ type: 'integer', exclusiveMinimum: 1 })).toBe(2);
    expect(exampleFor({ type: 'boolean' })).toBe(false);
    expect(exampleFor({ type: ['null', 'string'] }, 'x')).toBe('<x>');
    expect(exampleFor({ type: 'array', items: { type: 'string', enum: ['bug'] } })).toEqual(['bug']);
    expect(exampleFor({ anyOf: [{ type: 'null' }, { type: 'integer' }] })).toBe(1);
    expect(exampleFor({ allOf: [{ type: 'object', properties: { a: { type: 'integer' } } }, { type: 'object', properties: { b: { type: 'boolean' } } }] })).toEqual({ a: 1, b: false });
    expect(exampleFor({ type: 'object', properties: { owner: { type: 'string' }, n: { type: 'number', default: 2 } } })).toEqual({ owner: '<owner>', n: 2 });
    expect(exampleFor({ $ref: '#/definitions/x' })).toBeNull();
  });

  it('exampleFor never throws and yields JSON for any JSON schema-ish input (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (schema) => {
        const ex = exampleFor(schema);
        expect(() => JSON.stringify(ex)).not.toThrow();
      }),
    );
    // a self-nesting schema stops at the depth bound
    const deep: Json = { type: 'object', properties: {} };
    let cur = deep;
    for (let i = 0; i < 20; i++) {
      const next: Json = { type: 'object', properties: {} };
      (cur['properties'] as Json)['child'] = next;
      cur = next;
    }
    expect(() => JSON.stringify(exampleFor(deep))).not.toThrow();
  });

  it('parameters: description, else title, else type (with enum values)', () => {
    expect(
      parametersOf({
        type: 'object',
        properties: { a: { type: 'number', description: 'First' }, b: { type: 'string', title: 'Bee' }, c: { type: 'string', enum: ['x', 'y'] }, d: {} },
      }),
    ).toEqual({ a: 'First', b: 'Bee', c: 'string, one of: "x", "y"', d: 'any value' });
    expect(parametersOf(undefined)).toEqual({});
  });

  it('results: structuredContent, else JSON-parsed text, else text, else the content parts', () => {
    expect(actionResult({ content: [{ type: 'text', text: '3' }], structuredContent: { sum: 3 } })).toEqual({ sum: 3 });
    expect(actionResult({ content: [{ type: 'text', text: '{"a":1}' }] })).toEqual({ a: 1 });
    expect(actionResult({ content: [{ type: 'text', text: 'Echo: hi' }] })).toBe('Echo: hi');
    expect(actionResult({ content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] })).toBe('a\nb');
    const image = [{ type: 'image', data: 'AA==', mimeType: 'image/png' }];
    expect(actionResult({ content: image })).toEqual(image);
  });

  it('safety notes from annotations and the deny list', () => {
    const notes = safetyNotes(
      [
        { name: 'read', annotations: { readOnlyHint: true } },
        { name: 'wipe', annotations: { destructiveHint: true } },
        { name: 'touch', annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true } },
        { name: 'plain' },
      ],
      ['drop'],
    );
    expect(notes).toContain('disallowed_actions policy: drop.');
    expect(notes).toContain('Destructive (destructiveHint): wipe.');
    expect(notes).toContain('may modify or delete data (the MCP default): plain.');
    expect(notes).toContain('Change state, not destructively: touch.');
    expect(notes).toContain('Reach outside systems (openWorldHint): touch.');
    expect(notes).toContain('Read-only (readOnlyHint): 1 of 4 allowed actions.');
    expect(safetyNotes([], [])).toContain('No action of this tool is allowed');
  });

  it('descriptions: serverInfo description, a one-paragraph instructions text, title and version, config', () => {
    const base = { name: 'x', config: { connection_type: 'stdio' } };
    expect(toolDescription({ ...base, serverInfo: { name: 'n', description: 'Does things' }, instructions: 'Other' })).toBe('Does things');
    expect(toolDescription({ ...base, serverInfo: { name: 'n', version: '1' }, instructions: 'Demo upstream.' })).toBe('Demo upstream.');
    expect(toolDescription({ ...base, serverInfo: { name: 'n', title: 'N Server', version: '1' }, instructions: '# Manual\n\nlong' })).toBe('N Server (n 1)');
    expect(toolDescription({ ...base, serverInfo: undefined, instructions: undefined })).toBe('MCP client x (stdio)');
  });
});

describe('rest-v1 tools over real HTTP', () => {
  let v: V1Gateway;
  let events: GatewayEvent[] = [];
  let sub: Subscription;

  beforeAll(async () => {
    v = await startV1Gateway([everythingClient('everything'), demoClient('demo', { tools_to_execute: ['echo', 'add', 'now'], disallowed_actions: ['now'] })]);
    sub = v.gw.bus.events$.subscribe((e) => events.push(e));
  }, 60_000);

  afterAll(async () => {
    sub?.unsubscribe();
    await v?.gw.stop();
  });

  const A = (): string => v.keyA;

  it('GET /api/v1/tools lists every upstream with its allowed actions and safety notes', async () => {
    const r = await v.call('GET', '/api/v1/tools', A());
    expect(r.status).toBe(200);
    const tools = r.json['tools'] as Json[];
    expect(tools.map((x) => x['name'])).toEqual(['everything', 'demo']);
    expect(r.json['total']).toBe(2);
    expect(r.json['_links']).toEqual({ self: '/api/v1/tools' });
    const demo = tools.find((x) => x['name'] === 'demo') as Json;
    expect(demo['actions']).toEqual(['echo', 'add']);
    expect(demo['description']).toBe('Demo upstream built into Tributary.');
    expect(demo['safety_notes']).toContain('disallowed_actions policy: now.');
    const everything = tools.find((x) => x['name'] === 'everything') as Json;
    expect(everything['actions']).toEqual(expect.arrayContaining(['echo', 'get-sum', 'get-structured-content']));
    expect(everything['description']).toContain('Everything');
    expect(everything['safety_notes']).toContain('Read-only (readOnlyHint)');
    // paginated
    const page = await v.call('GET', '/api/v1/tools?limit=1&offset=1', A());
    expect((page.json['tools'] as Json[]).map((x) => x['name'])).toEqual(['demo']);
    expect(page.json['total']).toBe(2);
  });

  it('GET /api/v1/tools/:tool adds links and the allowed MCP tools with inputSchema', async () => {
    const r = await v.call('GET', '/api/v1/tools/demo', A());
    expect(r.status).toBe(200);
    expect(r.json['name']).toBe('demo');
    expect(r.json['actions']).toEqual(['echo', 'add']);
    expect(r.json['_links']).toEqual({ self: '/api/v1/tools/demo', actions: '/api/v1/tools/demo/actions', queries: '/api/v1/tools/demo/queries' });
    const mcp = r.json['mcp_tools'] as Json[];
    expect(mcp.map((x) => x['name'])).toEqual(['echo', 'add']);
    expect((mcp[0]?.['inputSchema'] as Json)['properties']).toHaveProperty('message');
    expect(typeof r.json['safety_notes']).toBe('string');
  });

  it('GET /api/v1/tools/:tool/actions splits allowed and disallowed (tools_to_execute, disallowed_actions)', async () => {
    const r = await v.call('GET', '/api/v1/tools/demo/actions', A());
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ tool: 'demo', allowed_actions: ['echo', 'add'], disallowed_actions: ['sleep', 'now'] });
    expect(r.json['disallowed_reasons']).toEqual({ sleep: 'tools_to_execute', now: 'disallowed_actions' });
    expect(r.json['safety_notes']).toContain('now');
    const e = await v.call('GET', '/api/v1/tools/everything/actions', A());
    expect(e.json['allowed_actions']).toEqual(expect.arrayContaining(['echo', 'get-sum', 'get-env']));
    expect(e.json['disallowed_actions']).toEqual([]);
  });

  it("the caller's include headers narrow: hidden actions are disallowed and refused", async () => {
    const h = { 'x-bf-mcp-include-tools': 'demo-echo' };
    const demo = await v.call('GET', '/api/v1/tools/demo/actions', A(), undefined, h);
    expect(demo.json['allowed_actions']).toEqual(['echo']);
    expect((demo.json['disallowed_reasons'] as Json)['add']).toBe('caller');
    const everything = await v.call('GET', '/api/v1/tools/everything/actions', A(), undefined, h);
    expect(everything.json['allowed_actions']).toEqual([]);
    expect(everything.json['safety_notes']).toContain('No action of this tool is allowed');
    const list = await v.call('GET', '/api/v1/tools', A(), undefined, h);
    expect((list.json['tools'] as Json[]).find((x) => x['name'] === 'everything')?.['actions']).toEqual([]);
    const add = await v.call('POST', '/api/v1/tools/demo/actions/add', A(), { a: 1, b: 2 }, h);
    expect(add.status).toBe(403);
    expect(add.json).toMatchObject({ code: 'TOOL_NOT_ALLOWED', details: { tool: 'demo', action: 'add', reason: 'caller' } });
    const echo = await v.call('POST', '/api/v1/tools/demo/actions/echo', A(), { message: 'narrow' }, h);
    expect(echo.status).toBe(200);
    const detail = await v.call('GET', '/api/v1/tools/everything/actions/echo', A(), undefined, h);
    expect(detail.status).toBe(403);
  });

  it('GET /api/v1/tools/:tool/actions/:action derives parameters, required ones and an example from inputSchema', async () => {
    const sum = await v.call('GET', '/api/v1/tools/everything/actions/get-sum', A());
    expect(sum.status).toBe(200);
    expect(sum.json).toMatchObject({
      name: 'get-sum',
      description: 'Returns the sum of two numbers',
      parameters: { a: 'First number', b: 'Second number' },
      required_parameters: ['a', 'b'],
      example: { a: 1, b: 1 },
      _links: { self: '/api/v1/tools/everything/actions/get-sum', tool: '/api/v1/tools/everything', actions: '/api/v1/tools/everything/actions' },
    });
    // first enum value, defaults
    const annotated = await v.call('GET', '/api/v1/tools/everything/actions/get-annotated-message', A());
    expect(annotated.json['example']).toEqual({ messageType: 'error', includeImage: false });
    expect(annotated.json['required_parameters']).toEqual(['messageType']);
    const links = await v.call('GET', '/api/v1/tools/everything/actions/get-resource-links', A());
    expect(links.json['example']).toEqual({ count: 3 });
    expect(links.json['required_parameters']).toEqual([]);
    // no descriptions: the type
    const add = await v.call('GET', '/api/v1/tools/demo/actions/add', A());
    expect(add.json['parameters']).toEqual({ a: 'number', b: 'number' });
    // the example runs
    const run = await v.call('POST', '/api/v1/tools/everything/actions/get-sum', A(), sum.json['example']);
    expect(run.status).toBe(200);
  });

  it('POST an action: text, JSON text, structuredContent', async () => {
    const echo = await v.call('POST', '/api/v1/tools/everything/actions/echo', A(), { message: 'hi' });
    expect(echo.status).toBe(200);
    expect(echo.json).toMatchObject({
      status: 'success',
      message: 'Executed echo action on everything tool',
      tool: 'everything',
      action: 'echo',
      _links: { self: '/api/v1/tools/everything/actions/echo', tool: '/api/v1/tools/everything' },
    });
    expect(echo.json['result']).toBe('Echo: hi');
    expect(echo.json['execution_id']).toMatch(/^exec-[0-9a-f-]{36}$/);
    expect(echo.json).not.toHaveProperty('context_id');

    const structured = await v.call('POST', '/api/v1/tools/everything/actions/get-structured-content', A(), { location: 'Chicago' });
    expect(structured.status).toBe(200);
    expect(structured.json['result']).toMatchObject({ temperature: expect.any(Number), conditions: expect.any(String) });

    const add = await v.call('POST', '/api/v1/tools/demo/actions/add', A(), { a: 2, b: 3 });
    expect(add.json['result']).toEqual({ sum: 5 }); // structuredContent preferred over the text "5"

    const env = await v.call('POST', '/api/v1/tools/everything/actions/get-env', A(), {});
    expect(env.status).toBe(200);
    expect(typeof env.json['result']).toBe('object'); // JSON text, parsed

    // no body at all = no arguments
    const now = await v.call('POST', '/api/v1/tools/everything/actions/get-env', A());
    expect(now.status).toBe(200);
  });

  it('an isError result is 502 TOOL_EXECUTION_FAILED with the upstream text', async () => {
    const r = await v.call('POST', '/api/v1/tools/demo/actions/add', A(), { a: 'x', b: 1 });
    expect(r.status).toBe(502);
    expect(r.json['code']).toBe('TOOL_EXECUTION_FAILED');
    const details = r.json['details'] as Json;
    expect(details).toMatchObject({ tool: 'demo', action: 'add' });
    expect(String(details['upstream_error'])).toMatch(/invalid/i);
    expect(details['execution_id']).toMatch(/^exec-/);
  });

  it('disallowed actions are 403 with the reason; unknown tools and actions 404', async () => {
    const now = await v.call('POST', '/api/v1/tools/demo/actions/now', A(), {});
    expect(now.status).toBe(403);
    expect(now.json).toMatchObject({ code: 'TOOL_NOT_ALLOWED', details: { reason: 'disallowed_actions' } });
    const sleep = await v.call('POST', '/api/v1/tools/demo/actions/sleep', A(), { ms: 1 });
    expect(sleep.status).toBe(403);
    expect(sleep.json).toMatchObject({ code: 'TOOL_NOT_ALLOWED', details: { reason: 'tools_to_execute' } });
    expect((await v.call('GET', '/api/v1/tools/demo/actions/now', A())).status).toBe(403);
    expect((await v.call('GET', '/api/v1/tools/demo/now', A())).status).toBe(403);
    expect((await v.call('POST', '/api/v1/tools/demo/now', A(), {})).status).toBe(403);

    for (const [method, path] of [
      ['GET', '/api/v1/tools/nope'],
      ['GET', '/api/v1/tools/nope/actions'],
      ['GET', '/api/v1/tools/nope/actions/echo'],
      ['POST', '/api/v1/tools/nope/actions/echo'],
      ['POST', '/api/v1/tools/nope/queries'],
      ['GET', '/api/v1/tools/nope/echo'],
    ] as const) {
      const r = await v.call(method, path, A(), method === 'POST' ? (path.endsWith('queries') ? { query_type: 'echo' } : {}) : undefined);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json['code'], `${method} ${path}`).toBe('TOOL_NOT_FOUND');
    }
    for (const [method, path] of [
      ['GET', '/api/v1/tools/demo/actions/nope'],
      ['POST', '/api/v1/tools/demo/actions/nope'],
      ['GET', '/api/v1/tools/demo/nope'],
      ['POST', '/api/v1/tools/demo/nope'],
    ] as const) {
      const r = await v.call(method, path, A(), method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json, `${method} ${path}`).toMatchObject({ code: 'NOT_FOUND', details: { tool: 'demo', action: 'nope' } });
    }
  });

  it('bad bodies are 400 naming the problem', async () => {
    const arr = await v.call('POST', '/api/v1/tools/demo/actions/echo', A(), [1, 2]);
    expect(arr.status).toBe(400);
    expect(arr.json['code']).toBe('VALIDATION_ERROR');
    const s = await v.call('POST', '/api/v1/tools/demo/actions/echo', A(), '"text"');
    expect(s.status).toBe(400);
    const q1 = await v.call('POST', '/api/v1/tools/demo/queries', A(), { filters: {} });
    expect(q1.status).toBe(400);
    expect(JSON.stringify(q1.json['details'])).toContain('query_type');
    const q2 = await v.call('POST', '/api/v1/tools/demo/queries', A(), { query_type: 'echo', filters: [1] });
    expect(q2.status).toBe(400);
    expect(JSON.stringify(q2.json['details'])).toContain('filters');
    const q3 = await v.call('POST', '/api/v1/tools/demo/queries', A(), { query_type: 'echo', extra: 1 });
    expect(q3.status).toBe(400);
    expect(JSON.stringify(q3.json['details'])).toContain('extra: unknown field');
    const m = await v.call('POST', '/api/v1/tools/demo/echo', A(), { arguments: 'x' });
    expect(m.status).toBe(400);
  });

  it('POST /api/v1/tools/:tool/queries runs query_type with filters', async () => {
    const r = await v.call('POST', '/api/v1/tools/everything/queries', A(), { query_type: 'get-structured-content', filters: { location: 'New York' } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      status: 'success',
      message: 'Queried get-structured-content data from everything tool',
      tool: 'everything',
      query_params: { query_type: 'get-structured-content', filters: { location: 'New York' } },
      data: { temperature: expect.any(Number) },
    });
    const noFilters = await v.call('POST', '/api/v1/tools/everything/queries', A(), { query_type: 'get-env' });
    expect(noFilters.status).toBe(200);
    expect(noFilters.json['query_params']).toEqual({ query_type: 'get-env', filters: {} });
    expect((await v.call('POST', '/api/v1/tools/demo/queries', A(), { query_type: 'now' })).status).toBe(403);
    expect((await v.call('POST', '/api/v1/tools/demo/queries', A(), { query_type: 'add', filters: { a: 'x' } })).status).toBe(502);
    expect((await v.call('POST', '/api/v1/tools/demo/queries', A(), { query_type: 'nope' })).status).toBe(404);
  });

  it('MCP-shaped routes: the tool schema, and the CallToolResult as is (200 also for isError)', async () => {
    const g = await v.call('GET', '/api/v1/tools/everything/echo', A());
    expect(g.status).toBe(200);
    expect(g.json).toMatchObject({ name: 'echo', description: 'Echoes back the input string', inputSchema: { type: 'object', required: ['message'] } });
    const p = await v.call('POST', '/api/v1/tools/everything/echo', A(), { arguments: { message: 'mcp' } });
    expect(p.status).toBe(200);
    expect(p.json).toMatchObject({ content: [{ type: 'text', text: 'Echo: mcp' }], isError: false });
    const s = await v.call('POST', '/api/v1/tools/demo/add', A(), { arguments: { a: 1, b: 2 } });
    expect(s.json).toMatchObject({ structuredContent: { sum: 3 }, isError: false });
    const err = await v.call('POST', '/api/v1/tools/demo/add', A(), { arguments: { a: 'x', b: 2 } });
    expect(err.status).toBe(200);
    expect(err.json['isError']).toBe(true);
    // reserved names are not tool names
    expect((await v.call('GET', '/api/v1/tools/demo/queries', A())).status).toBe(405);
    expect((await v.call('POST', '/api/v1/tools/demo/actions', A(), {})).status).toBe(405);
  });

  it('calls go through the tool invocation events (surface rest-v1) and publish ToolActionExecuted', async () => {
    events = [];
    const r = await v.call('POST', '/api/v1/tools/demo/actions/echo', A(), { message: 'evt' });
    expect(r.status).toBe(200);
    const inv = events.find((e) => e.event_type === 'ToolInvocationCompleted');
    expect(inv).toMatchObject({ mcp_server_id: 'demo', tool_name: 'echo', surface: 'rest-v1', arguments: { message: 'evt' } });
    const done = events.find((e) => e.event_type === 'ToolActionExecuted');
    expect(done).toMatchObject({ id: r.json['execution_id'], tenant_id: 'acme', tool: 'demo', action: 'echo', status: 'success' });
    expect(done).not.toHaveProperty('context_id');
    events = [];
    await v.call('POST', '/api/v1/tools/demo/actions/add', A(), { a: 'x' });
    expect(events.find((e) => e.event_type === 'ToolActionExecuted')).toMatchObject({ status: 'error' });
  });

  it('an unknown context_id is 404 before the tool runs', async () => {
    events = [];
    const r = await v.call('POST', '/api/v1/tools/demo/actions/echo?context_id=ctx-00000000-0000-4000-8000-000000000000', A(), { message: 'x' });
    expect(r.status).toBe(404);
    expect(r.json['code']).toBe('NOT_FOUND');
    expect(events.filter((e) => e.event_type === 'ToolInvocationCompleted' || e.event_type === 'ToolActionExecuted')).toEqual([]);
  });

  // Needs the contexts module (POST/GET /api/v1/mcp/context, Contexts.append) and the
  // relationships module (Relationships.create, GET /api/v1/relationships).
  describe('with context_id', () => {
    async function newContext(key: string): Promise<string> {
      const r = await v.call('POST', '/api/v1/mcp/context', key, { agent_id: 'agent-tools', session_id: 'session-tools', content: [{ role: 'user', content: 'run echo' }], metadata: {} });
      expect(r.status, r.text).toBe(201);
      return r.json['id'] as string;
    }

    it('records the call and its result in the context and a triggered_by relationship', async () => {
      const ctx = await newContext(A());
      events = [];
      const r = await v.call('POST', `/api/v1/tools/everything/actions/echo?context_id=${ctx}`, A(), { message: 'remember me' });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ context_id: ctx, context_recorded: true, _links: { context: `/api/v1/mcp/context/${ctx}` } });
      const execId = r.json['execution_id'] as string;
      expect(events.find((e) => e.event_type === 'ToolActionExecuted')).toMatchObject({ id: execId, context_id: ctx, status: 'success' });

      const got = await v.call('GET', `/api/v1/mcp/context/${ctx}`, A());
      expect(got.status).toBe(200);
      const context = (got.json['context'] ?? got.json) as Json;
      const content = context['content'] as { role: string; content: string }[];
      expect(content.map((m) => m.role)).toEqual(['user', 'tool_call', 'tool_result']);
      expect(JSON.parse(content[1]?.content ?? '')).toEqual({ execution_id: execId, tool: 'everything', action: 'echo', arguments: { message: 'remember me' } });
      expect(JSON.parse(content[2]?.content ?? '')).toEqual({ execution_id: execId, status: 'success', result: 'Echo: remember me' });

      const rels = await v.call('GET', `/api/v1/relationships?source_id=${ctx}`, A());
      expect(rels.status).toBe(200);
      const list = rels.json['relationships'] as Json[];
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({
        source_type: 'context',
        source_id: ctx,
        target_type: 'tool_execution',
        target_id: execId,
        relationship_type: 'triggered_by',
        metadata: { tool: 'everything', action: 'echo', status: 'success' },
      });
    });

    it('records a failed call as an error, and queries too', async () => {
      const ctx = await newContext(A());
      const bad = await v.call('POST', `/api/v1/tools/demo/actions/add?context_id=${ctx}`, A(), { a: 'x', b: 1 });
      expect(bad.status).toBe(502);
      expect(bad.json['details']).toMatchObject({ context_id: ctx, context_recorded: true });
      const q = await v.call('POST', `/api/v1/tools/demo/queries?context_id=${ctx}`, A(), { query_type: 'add', filters: { a: 1, b: 2 } });
      expect(q.status).toBe(200);
      const got = await v.call('GET', `/api/v1/mcp/context/${ctx}`, A());
      const content = ((got.json['context'] ?? got.json) as Json)['content'] as { role: string; content: string }[];
      expect(content.map((m) => m.role)).toEqual(['user', 'tool_call', 'tool_result', 'tool_call', 'tool_result']);
      expect(JSON.parse(content[2]?.content ?? '')).toMatchObject({ status: 'error', error: expect.stringMatching(/invalid/i) });
      expect(JSON.parse(content[4]?.content ?? '')).toMatchObject({ status: 'success', result: { sum: 3 } });
      const rels = await v.call('GET', `/api/v1/relationships?source_id=${ctx}`, A());
      const statuses = (rels.json['relationships'] as Json[]).map((x) => (x['metadata'] as Json)['status']).sort();
      expect(statuses).toEqual(['error', 'success']);
    });

    it("another tenant's context is 404 and the tool does not run", async () => {
      const ctx = await newContext(A());
      events = [];
      const r = await v.call('POST', `/api/v1/tools/demo/actions/echo?context_id=${ctx}`, v.keyB, { message: 'x' });
      expect(r.status).toBe(404);
      expect(events.filter((e) => e.event_type === 'ToolInvocationCompleted')).toEqual([]);
      const got = await v.call('GET', `/api/v1/mcp/context/${ctx}`, A());
      expect((((got.json['context'] ?? got.json) as Json)['content'] as unknown[]).length).toBe(1);
    });
  });

  it('the OpenAPI document describes every tool route', async () => {
    const r = await v.call('GET', '/api/openapi.json', A());
    expect(r.status).toBe(200);
    const paths = r.json['paths'] as Record<string, Record<string, Json>>;
    const expected: [string, string][] = [
      ['/api/v1/tools', 'get'],
      ['/api/v1/tools/{tool}', 'get'],
      ['/api/v1/tools/{tool}/actions', 'get'],
      ['/api/v1/tools/{tool}/actions/{action}', 'get'],
      ['/api/v1/tools/{tool}/actions/{action}', 'post'],
      ['/api/v1/tools/{tool}/queries', 'post'],
      ['/api/v1/tools/{tool}/{tool_name}', 'get'],
      ['/api/v1/tools/{tool}/{tool_name}', 'post'],
    ];
    for (const [path, method] of expected) {
      const op = paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(op?.['tags']).toEqual(['tools']);
      expect(((op?.['responses'] as Json)['200'] as Json)['content']).toBeDefined();
      if (method === 'post') expect(op?.['requestBody']).toBeDefined();
    }
  });
});

describe('rest-v1 tools: tool execution limit', () => {
  let v: V1Gateway;

  beforeAll(async () => {
    v = await startV1Gateway([demoClient('demo')], {
      auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 100_000, requests_per_hour: 1_000_000, tool_executions_per_hour: 2 } },
    });
  }, 60_000);

  afterAll(async () => {
    await v?.gw.stop();
  });

  it('counts actions, queries and MCP-shaped calls against tool_executions_per_hour (429 over it)', async () => {
    expect((await v.call('POST', '/api/v1/tools/demo/actions/echo', v.keyA, { message: '1' })).status).toBe(200);
    expect((await v.call('POST', '/api/v1/tools/demo/queries', v.keyA, { query_type: 'echo', filters: { message: '2' } })).status).toBe(200);
    const over = await v.call('POST', '/api/v1/tools/demo/echo', v.keyA, { arguments: { message: '3' } });
    expect(over.status).toBe(429);
    expect(over.json['code']).toBe('RATE_LIMITED');
    // describing is not executing
    expect((await v.call('GET', '/api/v1/tools/demo/actions/echo', v.keyA)).status).toBe(200);
    // another key has its own budget
    expect((await v.call('POST', '/api/v1/tools/demo/actions/echo', v.keyB, { message: '4' })).status).toBe(200);
  });
});
