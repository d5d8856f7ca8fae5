/**
 * Agent orchestration over `/ws` (developer-mesh "Agent Orchestration Messages" and "Task
 * Assignment Notification", https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md) with real `ws` clients on real
 * gateways: registration, routing by capability, priority queue, strategies, explicit agent ids,
 * agents lost mid-task, attempts, heartbeats, assignee checks, the bounded queue, REST
 * `/api/v1/tasks`, bus events, MCPW binary agents, tenant isolation, restart; plus a fast-check
 * property of the pure assignment engine.
 */
import { rmSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { McpwMethod, McpwType, decodeFrame, encodeFrame, type McpwDecodedFrame } from '../src/codecs/mcpw.js';
import { frameToJsonRpc } from '../src/codecs/mcpw-jsonrpc.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway } from '../src/gateway.js';
import { AssignmentEngine, PRIORITIES, QueueFullError, type AgentStatus, type EngineTask, type TaskPriority } from '../src/handlers/agents/engine.js';
import { createLogger } from '../src/log/logger.js';
import type { GatewayEvent } from '../src/streams/events.js';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startV1Gateway } from './helpers/v1.js';
import { waitFor, waitForValue } from './helpers/wait.js';

type Json = Record<string, unknown>;

const cleanup: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

interface Gw {
  readonly gw: TestGateway;
  /** Every bus event since start. */
  readonly events: GatewayEvent[];
}

async function gateway(orchestration: Json = {}): Promise<Gw> {
  const gw = await startTestGateway([], {}, { orchestration });
  const events: GatewayEvent[] = [];
  const sub = gw.bus.events$.subscribe((e) => events.push(e));
  cleanup.push(async () => {
    sub.unsubscribe();
    await gw.stop();
  });
  return { gw, events };
}

/** A real `ws` client on `/ws` (subprotocol `mcp`) speaking JSON-RPC as text, or as MCPW frames. */
class Client {
  /** Every JSON-RPC message received, in order (MCPW frames decoded). */
  readonly messages: Json[] = [];
  /** Every MCPW frame received. */
  readonly frames: McpwDecodedFrame[] = [];
  /** Text frames received. */
  texts = 0;
  private nextId = 1;
  private readonly waiting = new Map<unknown, (m: Json) => void>();

  constructor(
    readonly ws: WebSocket,
    readonly binary: boolean,
  ) {
    ws.on('message', (data, isBinary) => {
      let msg: Json;
      if (isBinary) {
        const buf = data as Buffer;
        const d = decodeFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
        if (!d.ok) throw new Error(`server sent a bad frame: ${d.error.message}`);
        this.frames.push(d.frame);
        const c = frameToJsonRpc(d.frame);
        if (c.kind === 'control' || c.kind === 'invalid') return;
        msg = c.msg as unknown as Json;
      } else {
        this.texts++;
        msg = JSON.parse(String(data)) as Json;
      }
      this.messages.push(msg);
      const w = msg['id'] !== undefined && msg['method'] === undefined ? this.waiting.get(msg['id']) : undefined;
      if (w) {
        this.waiting.delete(msg['id']);
        w(msg);
      }
    });
  }

  /** Sends a request; resolves the whole response (`result` or `error`). */
  request(method: string, params?: Json): Promise<Json> {
    const id = this.nextId++;
    const message = params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
    const answer = new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${method} #${id}`)), 10_000);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
    if (this.binary) this.ws.send(encodeFrame({ type: McpwType.Request, method: McpwMethod.Generic, requestId: BigInt(id), payload: message }));
    else this.ws.send(JSON.stringify(message));
    return answer;
  }

  /** Sends a request and returns its result; throws with the error object otherwise. */
  async ok(method: string, params?: Json): Promise<Json> {
    const r = await this.request(method, params);
    if (r['error'] !== undefined) throw new Error(`${method} failed: ${JSON.stringify(r['error'])}`);
    return r['result'] as Json;
  }

  /** Sends a request that must fail; returns the JSON-RPC error object. */
  async fails(method: string, params?: Json): Promise<{ code: number; message: string; data: Json }> {
    const r = await this.request(method, params);
    expect(r['error'], `${method} should fail, got ${JSON.stringify(r)}`).toBeDefined();
    return r['error'] as { code: number; message: string; data: Json };
  }

  /** The params of every `notification` of `type` received so far. */
  notes(type: string): Json[] {
    return this.messages.filter((m) => m['method'] === 'notification' && (m['params'] as Json)['type'] === type).map((m) => m['params'] as Json);
  }

  /** The `task` of every `task.assigned` received so far. */
  assigned(): Json[] {
    return this.notes('task.assigned').map((p) => p['task'] as Json);
  }

  /** Waits for the `n`-th (1-based) notification of `type` matching `pred`. */
  waitNote(type: string, pred: (p: Json) => boolean = () => true, n = 1, timeoutMs = 10_000): Promise<Json> {
    return waitForValue(`${type} notification`, () => this.notes(type).filter(pred)[n - 1], timeoutMs);
  }
}

async function connect(g: Gw | TestGateway, opts: { binary?: boolean; headers?: Record<string, string> } = {}): Promise<Client> {
  const gw = 'gw' in g ? g.gw : g;
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`, 'mcp', { headers: opts.headers ?? {} });
  const client = new Client(ws, opts.binary === true);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  cleanup.push(() => ws.terminate());
  return client;
}

/** Connects and registers an agent; returns the client and its agent id. */
async function agent(g: Gw | TestGateway, name: string, capabilities: string[], extra: Json = {}, opts: { binary?: boolean; headers?: Record<string, string> } = {}): Promise<{ c: Client; id: string }> {
  const c = await connect(g, opts);
  const r = await c.ok('agent.register', { name, capabilities, ...extra });
  expect(r['status']).toBe('available');
  return { c, id: r['agent_id'] as string };
}

function eventsOf(g: Gw, type: string): Json[] {
  return g.events.filter((e) => e.event_type === type) as unknown as Json[];
}

async function rest(g: Gw, path: string): Promise<{ status: number; json: Json }> {
  const r = await send(`${g.gw.url}${path}`, { method: 'GET' });
  return { status: r.status, json: (r.json ?? {}) as Json };
}

const settle = (ms = 150): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('registration and routing by capability', () => {
  it('registers agents (listed in /api/v1/agents), routes tasks to agents covering the required capabilities, and queues the rest', async () => {
    const g = await gateway();
    const a = await agent(g, 'analyzer', ['code_analysis'], { model: 'gpt-4' });
    const b = await agent(g, 'scanner', ['security_scan']);
    const c = await agent(g, 'tester', ['code_analysis', 'security_scan', 'testing']);
    expect(a.id).toMatch(/^agent-[0-9a-f-]{36}$/);
    const agents = await rest(g, '/api/v1/agents');
    expect(agents.status).toBe(200);
    expect((agents.json['agents'] as Json[]).map((x) => x['name']).sort()).toEqual(['analyzer', 'scanner', 'tester']);
    expect((agents.json['agents'] as Json[]).find((x) => x['id'] === a.id)).toMatchObject({ model: 'gpt-4', capabilities: ['code_analysis'], status: 'available' });
    // the REST view follows the live status
    await b.c.ok('agent.status', { status: 'busy' });
    expect((await rest(g, `/api/v1/agents/${b.id}`)).json['status']).toBe('busy');
    await b.c.ok('agent.status', { status: 'available' });

    const assigner = await connect(g);
    const byId = new Map([a, b, c].map((x) => [x.id, x]));
    const cases: [string[], string[]][] = [
      [['testing'], [c.id]],
      [['code_analysis', 'security_scan'], [c.id]],
      [['security_scan'], [b.id, c.id]],
      [['code_analysis'], [a.id, c.id]],
      [['security_scan'], [b.id, c.id]],
      [['code_analysis'], [a.id, c.id]],
    ];
    for (const [required, allowed] of cases) {
      const r = await assigner.ok('task.assign', { type: 'code_review', priority: 'high', required_capabilities: required, payload: { repo: 'org/repo', pr: 42 } });
      expect(r).toMatchObject({ status: 'assigned' });
      expect(r['task_id']).toMatch(/^task-[0-9a-f-]{36}$/);
      expect(allowed).toContain(r['agent_id']);
      const holder = byId.get(r['agent_id'] as string) as { c: Client };
      const note = await holder.c.waitNote('task.assigned', (p) => (p['task'] as Json)['id'] === r['task_id']);
      expect(note['task']).toMatchObject({ id: r['task_id'], type: 'code_review', priority: 'high', payload: { repo: 'org/repo', pr: 42 }, required_capabilities: required, status: 'assigned', agent_id: r['agent_id'], attempts: 1 });
      expect((note['task'] as Json)['assigned_at']).toMatch(/Z$/);
    }
    // the raw wire form of the push (developer-mesh "Task Assignment Notification")
    const raw = a.c.messages.find((m) => m['method'] === 'notification') as Json;
    expect(Object.keys(raw).sort()).toEqual(['jsonrpc', 'method', 'params']);
    // nobody can do this one: it waits
    const q = await assigner.ok('task.assign', { type: 'render', required_capabilities: ['gpu'] });
    expect(q).toEqual({ task_id: expect.stringMatching(/^task-/) as unknown, status: 'queued' });
    // a round trip on each agent's own connection instead of a sleep: a push made while the task
    // was queued would arrive before the reply
    for (const x of [a, b, c]) await x.c.ok('agent.heartbeat', {});
    for (const x of [a, b, c]) expect(x.c.assigned().some((t) => t['id'] === q['task_id'])).toBe(false);
    // an agent with that capability takes it as soon as it registers
    const gpu = await agent(g, 'renderer', ['gpu']);
    const t = (await gpu.c.waitNote('task.assigned'))['task'] as Json;
    expect(t['id']).toBe(q['task_id']);
    // the push comes after the register reply
    const i = gpu.c.messages.findIndex((m) => m['method'] === 'notification');
    const j = gpu.c.messages.findIndex((m) => (m['result'] as Json | undefined)?.['agent_id'] === gpu.id);
    expect(j).toBeGreaterThanOrEqual(0);
    expect(i).toBeGreaterThan(j);
    // the queued task's assigner hears about it
    const upd = await assigner.waitNote('task.updated', (p) => (p['task'] as Json)['id'] === q['task_id']);
    expect(upd).toMatchObject({ reason: 'assigned', task: { status: 'assigned', agent_id: gpu.id } });
  });

  it('answers bad params with INVALID_PARAMS naming the field, and agent methods before register with INVALID_REQUEST', async () => {
    const g = await gateway();
    const c = await connect(g);
    const hb = await c.fails('agent.heartbeat');
    expect(hb.code).toBe(-32600);
    expect(hb.message).toMatch(/agent\.register first/);
    const e1 = await c.fails('agent.register', { name: 'x', capabilities: 'all' });
    expect(e1.code).toBe(-32602);
    expect(e1.message).toContain('capabilities');
    const e2 = await c.fails('task.assign', { type: 'x', priority: 'urgent', colour: 'red' });
    expect(e2.code).toBe(-32602);
    expect(e2.data['problems']).toEqual(expect.arrayContaining([expect.stringMatching(/^params\.priority: expected low\|normal\|high\|critical/), 'params.colour: unknown field']));
    const e3 = await c.fails('task.assign', { priority: 'low' });
    expect(e3.message).toContain('params.type');
    const e4 = await c.fails('task.update', { task_id: 'task-x', progress: 150 });
    expect(e4.message).toContain('params.progress');
    const e5 = await c.fails('task.nope', {});
    expect(e5.code).toBe(-32601);
    const e6 = await c.fails('task.complete', { task_id: 'task-does-not-exist' });
    expect(e6.data['code']).toBe('NOT_FOUND');
  });
});

describe('the priority queue', () => {
  it('gives a freed agent the waiting tasks critical first, then high, normal (FIFO), low', async () => {
    const g = await gateway({ max_tasks_per_agent: 1 });
    const w = await agent(g, 'worker', ['build']);
    const assigner = await connect(g);
    const first = await assigner.ok('task.assign', { type: 'warm-up', required_capabilities: ['build'] });
    expect(first['status']).toBe('assigned');
    const ids: Record<string, string> = {};
    for (const [name, priority] of [
      ['low', 'low'],
      ['normal1', 'normal'],
      ['critical', 'critical'],
      ['normal2', undefined],
      ['high', 'high'],
    ] as const) {
      const r = await assigner.ok('task.assign', { type: name, required_capabilities: ['build'], ...(priority ? { priority } : {}) });
      expect(r['status']).toBe('queued');
      ids[name] = r['task_id'] as string;
    }
    expect(eventsOf(g, 'TaskQueued')).toHaveLength(5);
    let current = first['task_id'] as string;
    const order: string[] = [];
    for (let n = 2; n <= 6; n++) {
      await w.c.ok('task.complete', { task_id: current, result: { ok: true } });
      const next = (await w.c.waitNote('task.assigned', () => true, n))['task'] as Json;
      order.push(next['type'] as string);
      current = next['id'] as string;
    }
    expect(order).toEqual(['critical', 'high', 'normal1', 'normal2', 'low']);
    expect(((await w.c.waitNote('task.assigned', () => true, 3))['task'] as Json)['priority']).toBe('high');
  });

  it('refuses task.assign with a clear OVERLOADED error when the tenant queue is full', async () => {
    const g = await gateway({ max_queued_tasks: 3 });
    const c = await connect(g);
    for (let i = 0; i < 3; i++) expect((await c.ok('task.assign', { type: 't', required_capabilities: ['nobody'] }))['status']).toBe('queued');
    const e = await c.fails('task.assign', { type: 't', required_capabilities: ['nobody'] });
    expect(e.code).toBe(-32000);
    expect(e.data).toMatchObject({ code: 'OVERLOADED', max_queued_tasks: 3, queued: 3 });
    expect(e.message).toMatch(/queue .* is full/);
    expect(e.message).toContain('max_queued_tasks 3');
    // a task some agent can take right away is not queued, so it is still accepted
    await agent(g, 'any', ['x']);
    expect((await c.ok('task.assign', { type: 't', required_capabilities: ['x'] }))['status']).toBe('assigned');
  });
});

describe('strategies and explicit agents', () => {
  it('least_loaded spreads tasks evenly and prefers the agent holding fewest', async () => {
    const g = await gateway();
    const ags = [await agent(g, 'a', ['lint']), await agent(g, 'b', ['lint']), await agent(g, 'c', ['lint'])];
    const assigner = await connect(g);
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push((await assigner.ok('task.assign', { type: 'lint', required_capabilities: ['lint'] }))['agent_id'] as string);
    const counts = ags.map((x) => got.filter((id) => id === x.id).length);
    expect(counts).toEqual([2, 2, 2]);
    // b completes both: it now holds fewest and gets the next one
    const [a, b] = ags as [{ c: Client; id: string }, { c: Client; id: string }];
    await b.c.waitNote('task.assigned', () => true, 2);
    for (const t of b.c.assigned()) await b.c.ok('task.complete', { task_id: t['id'] as string });
    expect((await assigner.ok('task.assign', { type: 'lint', required_capabilities: ['lint'] }))['agent_id']).toBe(b.id);
    expect((await assigner.ok('task.assign', { type: 'lint', required_capabilities: ['lint'] }))['agent_id']).toBe(b.id);
    // now all hold two; ties go to the one idle longest (a: given its last task before c)
    expect((await assigner.ok('task.assign', { type: 'lint', required_capabilities: ['lint'] }))['agent_id']).toBe(a.id);
  });

  it('round_robin rotates in registration order regardless of load', async () => {
    const g = await gateway({ strategy: 'round_robin' });
    const ags = [await agent(g, 'a', ['doc']), await agent(g, 'b', ['doc', 'x']), await agent(g, 'c', ['doc'])];
    const assigner = await connect(g);
    const got: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await assigner.ok('task.assign', { type: 'doc', required_capabilities: ['doc'] });
      got.push(r['agent_id'] as string);
      // completing at once changes nothing for round-robin
      const holder = ags.find((x) => x.id === r['agent_id']) as { c: Client };
      await holder.c.waitNote('task.assigned', (p) => (p['task'] as Json)['id'] === r['task_id']);
      await holder.c.ok('task.complete', { task_id: r['task_id'] as string });
    }
    const [a, b, c] = ags.map((x) => x.id) as [string, string, string];
    expect(got).toEqual([a, b, c, a, b, c, a]);
    // only b can do x: the rotation skips the others
    expect((await assigner.ok('task.assign', { type: 'x', required_capabilities: ['x'] }))['agent_id']).toBe(b);
    expect((await assigner.ok('task.assign', { type: 'doc', required_capabilities: ['doc'] }))['agent_id']).toBe(c);
  });

  it('sends a task with agent_id to that agent only, and lets it wait for that agent', async () => {
    const g = await gateway();
    const a = await agent(g, 'a', ['review']);
    const b = await agent(g, 'b', ['review']);
    const assigner = await connect(g);
    // b would not be chosen by load alone after holding two
    for (let i = 0; i < 2; i++) expect((await assigner.ok('task.assign', { type: 'r', agent_id: b.id }))['agent_id']).toBe(b.id);
    expect((await assigner.ok('task.assign', { type: 'r', required_capabilities: ['review'], agent_id: b.id }))['agent_id']).toBe(b.id);
    // a named agent that is not connected yet: the task waits for it, even with a free agent around
    const later = await assigner.ok('task.assign', { type: 'r', agent_id: 'agent-later', priority: 'critical' });
    expect(later).toMatchObject({ status: 'queued' });
    const other = await assigner.ok('task.assign', { type: 'r', required_capabilities: ['review'] });
    expect(other['agent_id']).toBe(a.id);
    // a busy named agent: waits until it is available again
    await b.c.ok('agent.status', { status: 'busy' });
    const waits = await assigner.ok('task.assign', { type: 'r', agent_id: b.id });
    expect(waits['status']).toBe('queued');
    await b.c.ok('agent.status', { status: 'available' });
    await b.c.waitNote('task.assigned', (p) => (p['task'] as Json)['id'] === waits['task_id']);
    const l = await agent(g, 'late', ['review'], { agent_id: 'agent-later' });
    expect(l.id).toBe('agent-later');
    expect(((await l.c.waitNote('task.assigned'))['task'] as Json)['id']).toBe(later['task_id']);
    expect(a.c.assigned().map((t) => t['id'])).toEqual([other['task_id']]);
  });

  it('keeps busy agents out of the rotation and drains the queue when they are available again', async () => {
    const g = await gateway();
    const a = await agent(g, 'a', ['ops']);
    expect(await a.c.ok('agent.status', { status: 'busy' })).toEqual({ agent_id: a.id, status: 'busy' });
    const assigner = await connect(g);
    const t = await assigner.ok('task.assign', { type: 'deploy', required_capabilities: ['ops'] });
    expect(t['status']).toBe('queued');
    expect(await a.c.ok('agent.heartbeat')).toEqual({ ok: true });
    await a.c.ok('agent.status', { status: 'available' });
    expect(((await a.c.waitNote('task.assigned'))['task'] as Json)['id']).toBe(t['task_id']);
    expect(eventsOf(g, 'AgentStatusChanged').map((e) => [e['old_status'], e['new_status']])).toEqual([
      ['available', 'busy'],
      ['busy', 'available'],
    ]);
  });
});

describe('progress, results and the assignee rule', () => {
  it('lets only the assignee update or complete, and tells the assigner', async () => {
    const g = await gateway();
    const a = await agent(g, 'a', ['fix']);
    const b = await agent(g, 'b', ['other']);
    const assigner = await connect(g);
    const r = await assigner.ok('task.assign', { type: 'fix', required_capabilities: ['fix'], payload: { issue: 7 } });
    const taskId = r['task_id'] as string;
    await a.c.waitNote('task.assigned');
    const e1 = await b.c.fails('task.update', { task_id: taskId, status: 'in_progress', progress: 10 });
    expect(e1.code).toBe(-32008);
    expect(e1.data).toMatchObject({ code: 'FORBIDDEN', task_id: taskId, agent_id: a.id });
    expect(e1.message).toContain(a.id);
    const e2 = await assigner.fails('task.complete', { task_id: taskId });
    expect(e2.data['code']).toBe('FORBIDDEN');
    expect(await a.c.ok('task.update', { task_id: taskId, status: 'in_progress', progress: 40, message: 'halfway-ish' })).toEqual({ task_id: taskId, status: 'in_progress', progress: 40 });
    const upd = await assigner.waitNote('task.updated', (p) => p['reason'] === 'progress');
    expect(upd['task']).toMatchObject({ id: taskId, status: 'in_progress', progress: 40, message: 'halfway-ish', agent_id: a.id });
    expect((upd['task'] as Json)['payload']).toBeUndefined();
    await a.c.ok('task.update', { task_id: taskId, progress: 80 });
    expect(await a.c.ok('task.complete', { task_id: taskId, result: { patch: 'diff --git' } })).toEqual({ task_id: taskId, status: 'completed' });
    const done = await assigner.waitNote('task.completed');
    expect(done['task']).toMatchObject({ id: taskId, status: 'completed', progress: 100, result: { patch: 'diff --git' }, agent_id: a.id, attempts: 1 });
    // completed: a second report is a conflict, another agent's is forbidden
    const e3 = await a.c.fails('task.complete', { task_id: taskId });
    expect(e3.data).toMatchObject({ code: 'CONFLICT', status: 'completed' });
    const e4 = await b.c.fails('task.update', { task_id: taskId, progress: 1 });
    expect(e4.data['code']).toBe('FORBIDDEN');
    // task.fail ends a task as failed, and tells the assigner
    const r2 = await assigner.ok('task.assign', { type: 'fix', required_capabilities: ['fix'] });
    await a.c.waitNote('task.assigned', (p) => (p['task'] as Json)['id'] === r2['task_id']);
    expect(await a.c.ok('task.fail', { task_id: r2['task_id'] as string, error: 'cannot reproduce' })).toEqual({ task_id: r2['task_id'], status: 'failed' });
    expect((await assigner.waitNote('task.failed'))['task']).toMatchObject({ id: r2['task_id'], status: 'failed', error: 'cannot reproduce' });
    expect(eventsOf(g, 'TaskUpdated').map((e) => e['progress'])).toEqual([40, 80]);
    expect(eventsOf(g, 'TaskCompleted')[0]).toMatchObject({ task_id: taskId, agent_id: a.id, tenant_id: 'default' });
    expect(eventsOf(g, 'TaskFailed')[0]).toMatchObject({ task_id: r2['task_id'], error: 'cannot reproduce' });
  });
});

describe('agents that go away', () => {
  it('re-queues the task of an agent killed mid-task to another capable agent and tells the assigner', async () => {
    const g = await gateway();
    const a = await agent(g, 'a', ['analyze', 'extra']);
    const b = await agent(g, 'b', ['analyze']);
    await agent(g, 'c', ['unrelated']);
    const assigner = await connect(g);
    const r = await assigner.ok('task.assign', { type: 'analyze', required_capabilities: ['analyze'], priority: 'critical', payload: { n: 1 } });
    const taskId = r['task_id'] as string;
    const victim = r['agent_id'] === a.id ? a : b;
    const survivor = victim === a ? b : a;
    await victim.c.waitNote('task.assigned');
    await victim.c.ok('task.update', { task_id: taskId, status: 'in_progress', progress: 30 });
    victim.c.ws.terminate();
    const again = (await survivor.c.waitNote('task.assigned', (p) => (p['task'] as Json)['id'] === taskId))['task'] as Json;
    expect(again).toMatchObject({ id: taskId, attempts: 2, agent_id: survivor.id, payload: { n: 1 }, priority: 'critical' });
    const note = await assigner.waitNote('task.updated', (p) => p['reason'] === 'requeued');
    expect(note['task']).toMatchObject({ id: taskId, status: 'assigned', agent_id: survivor.id, attempts: 2 });
    const off = eventsOf(g, 'AgentOffline');
    expect(off).toHaveLength(1);
    expect(off[0]).toMatchObject({ agent_id: victim.id, reason: 'disconnected', tasks: [taskId], tenant_id: 'default' });
    expect(eventsOf(g, 'TaskQueued').at(-1)).toMatchObject({ task_id: taskId, reason: 'agent_offline', previous_agent_id: victim.id });
    // the old assignee's id no longer counts
    await survivor.c.ok('task.complete', { task_id: taskId });
    const t = await rest(g, `/api/v1/tasks/${taskId}`);
    expect(t.json).toMatchObject({ status: 'completed', agent_id: survivor.id, attempts: 2 });
    expect((t.json['history'] as Json[]).map((h) => h['status'])).toEqual(['queued', 'assigned', 'in_progress', 'queued', 'assigned', 'completed']);
  });

  it('fails a task after max_attempts agents lost it, and tells the assigner', async () => {
    const g = await gateway({ max_attempts: 2 });
    const assigner = await connect(g);
    const r = await assigner.ok('task.assign', { type: 'flaky', required_capabilities: ['crash'] });
    expect(r['status']).toBe('queued');
    for (let i = 0; i < 2; i++) {
      const x = await agent(g, `crashy-${i}`, ['crash']);
      await x.c.waitNote('task.assigned');
      x.c.ws.terminate();
      await waitFor(() => eventsOf(g, 'AgentOffline').length === i + 1);
    }
    const failed = await assigner.waitNote('task.failed');
    expect(failed['task']).toMatchObject({ id: r['task_id'], status: 'failed', attempts: 2 });
    expect((failed['task'] as Json)['error']).toMatch(/went offline \(disconnected\); gave up after 2 attempts \(max_attempts 2\)/);
    expect(eventsOf(g, 'TaskFailed')).toHaveLength(1);
    // a new agent gets nothing
    const y = await agent(g, 'fresh', ['crash']);
    // the queue drains into a new agent right after its registration reply; a round trip after
    // that shows whatever it was given
    await y.c.ok('agent.heartbeat', {});
    expect(y.c.assigned()).toEqual([]);
    expect((await rest(g, `/api/v1/tasks/${r['task_id'] as string}`)).json['status']).toBe('failed');
  });

  it('takes silent agents offline after heartbeat_timeout_ms, revokes and re-queues their tasks, and revives them when they speak', async () => {
    const g = await gateway({ heartbeat_timeout_ms: 300 });
    const silent = await agent(g, 'silent', ['hb']);
    const assigner = await connect(g);
    const r = await assigner.ok('task.assign', { type: 'hb', required_capabilities: ['hb'] });
    expect(r['agent_id']).toBe(silent.id);
    await silent.c.waitNote('task.assigned');
    const live = await agent(g, 'lively', ['hb']);
    const beat = setInterval(() => void live.c.request('agent.heartbeat').catch(() => undefined), 80);
    cleanup.push(() => clearInterval(beat));
    // any traffic keeps an agent alive: this one only sends MCP pings (answered with an error before initialize)
    const pinger = await agent(g, 'mcp-only', ['other']);
    const mcpPing = setInterval(() => void pinger.c.request('ping').catch(() => undefined), 80);
    cleanup.push(() => clearInterval(mcpPing));
    const off = await waitForValue('AgentOffline', () => eventsOf(g, 'AgentOffline')[0], 5000);
    expect(off).toMatchObject({ agent_id: silent.id, reason: 'heartbeat_timeout', tasks: [r['task_id']] });
    expect(await silent.c.waitNote('task.revoked')).toMatchObject({ task_id: r['task_id'], reason: 'heartbeat_timeout' });
    expect(((await live.c.waitNote('task.assigned'))['task'] as Json)['id']).toBe(r['task_id']);
    // the lively agent and the MCP-only pinger stay online
    await settle(400);
    expect(eventsOf(g, 'AgentOffline')).toHaveLength(1);
    // the revoked agent may no longer report on the task
    const e = await silent.c.fails('task.complete', { task_id: r['task_id'] as string });
    expect(e.data['code']).toBe('FORBIDDEN');
    // ... but speaking brought it back
    expect(eventsOf(g, 'AgentStatusChanged').at(-1)).toMatchObject({ agent_id: silent.id, old_status: 'offline', new_status: 'available' });
  });

  it('takes an agent that declares itself offline out of service and hands its tasks on', async () => {
    const g = await gateway();
    const a = await agent(g, 'a', ['q']);
    const assigner = await connect(g);
    const r = await assigner.ok('task.assign', { type: 'q', required_capabilities: ['q'] });
    await a.c.waitNote('task.assigned');
    await a.c.ok('agent.status', { status: 'offline' });
    expect(eventsOf(g, 'AgentOffline')[0]).toMatchObject({ reason: 'declared', tasks: [r['task_id']] });
    const b = await agent(g, 'b', ['q']);
    expect(((await b.c.waitNote('task.assigned'))['task'] as Json)['id']).toBe(r['task_id']);
    // registering again on one connection replaces its agent; the old one goes offline
    const again = await b.c.ok('agent.register', { name: 'b2', capabilities: ['z'], agent_id: 'agent-b2' });
    expect(again).toEqual({ agent_id: 'agent-b2', status: 'available' });
    expect(eventsOf(g, 'AgentOffline').at(-1)).toMatchObject({ agent_id: b.id, reason: 'replaced', tasks: [r['task_id']] });
    await a.c.ok('agent.status', { status: 'available' });
    expect(((await a.c.waitNote('task.assigned', () => true, 2))['task'] as Json)['id']).toBe(r['task_id']);
  });
});

describe('agent ids across connections, and retries', () => {
  it('lets a new connection take over an agent id, and re-queues on task.fail with retry until max_attempts', async () => {
    const g = await gateway();
    const first = await agent(g, 'fixed', ['t'], { agent_id: 'agent-fixed' });
    const assigner = await connect(g);
    const r = await assigner.ok('task.assign', { type: 't', required_capabilities: ['t'] });
    const taskId = r['task_id'] as string;
    expect(r['agent_id']).toBe('agent-fixed');
    await first.c.waitNote('task.assigned');
    // the agent reconnects before its old connection is gone: the new one takes the id over
    const second = await agent(g, 'fixed', ['t'], { agent_id: 'agent-fixed' });
    expect(eventsOf(g, 'AgentOffline')[0]).toMatchObject({ agent_id: 'agent-fixed', reason: 'replaced', tasks: [taskId] });
    expect(await first.c.waitNote('task.revoked')).toMatchObject({ task_id: taskId, reason: 'replaced' });
    expect(((await second.c.waitNote('task.assigned'))['task'] as Json)).toMatchObject({ id: taskId, attempts: 2 });
    const old = await first.c.fails('task.complete', { task_id: taskId });
    expect(old.data['code']).toBe('FORBIDDEN');
    expect((await first.c.fails('agent.heartbeat')).code).toBe(-32600);
    // a retryable failure goes back to the queue (here: straight back to the only agent)
    expect(await second.c.ok('task.fail', { task_id: taskId, error: 'transient', retry: true })).toEqual({ task_id: taskId, status: 'assigned', attempts: 3 });
    expect(((await second.c.waitNote('task.assigned', () => true, 2))['task'] as Json)['attempts']).toBe(3);
    // attempts spent: the next retryable failure is final
    expect(await second.c.ok('task.fail', { task_id: taskId, error: 'transient again', retry: true })).toEqual({ task_id: taskId, status: 'failed' });
    const failed = await assigner.waitNote('task.failed');
    expect((failed['task'] as Json)['error']).toMatch(/agent agent-fixed reported: transient again; gave up after 3 attempts \(max_attempts 3\)/);
  });
});

describe('REST /api/v1/tasks and events', () => {
  it('lists tasks with status, agent_id and type filters and pagination, and serves one task', async () => {
    const g = await gateway();
    const a = await agent(g, 'a', ['x']);
    const assigner = await connect(g);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await assigner.ok('task.assign', { type: i % 2 === 0 ? 'even' : 'odd', required_capabilities: ['x'] }))['task_id'] as string);
    const queued = (await assigner.ok('task.assign', { type: 'never', required_capabilities: ['nobody'] }))['task_id'] as string;
    await a.c.ok('task.complete', { task_id: ids[0] as string, result: 42 });
    await a.c.ok('task.update', { task_id: ids[1] as string, status: 'in_progress' });
    const all = await rest(g, '/api/v1/tasks');
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({ total: 5, limit: 50, offset: 0 });
    expect((all.json['tasks'] as Json[]).map((t) => t['id'])).toEqual([...ids, queued]);
    expect((all.json['tasks'] as Json[])[0]).not.toHaveProperty('history');
    const byStatus = async (s: string): Promise<string[]> => ((await rest(g, `/api/v1/tasks?status=${s}`)).json['tasks'] as Json[]).map((t) => t['id'] as string);
    expect(await byStatus('completed')).toEqual([ids[0]]);
    expect(await byStatus('in_progress')).toEqual([ids[1]]);
    expect(await byStatus('assigned')).toEqual([ids[2], ids[3]]);
    expect(await byStatus('queued')).toEqual([queued]);
    const mine = await rest(g, `/api/v1/tasks?agent_id=${a.id}&type=even`);
    expect((mine.json['tasks'] as Json[]).map((t) => t['id'])).toEqual([ids[0], ids[2]]);
    const page = await rest(g, '/api/v1/tasks?limit=2&offset=1');
    expect(page.json).toMatchObject({ total: 5, limit: 2, offset: 1 });
    expect((page.json['tasks'] as Json[]).map((t) => t['id'])).toEqual([ids[1], ids[2]]);
    // the metrics see the same: one agent, three tasks held (assigned, in progress), one waiting
    const metrics = await (await fetch(`${g.gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^tributary_agents\{status="available"\} 1$/m);
    expect(metrics).toMatch(/^tributary_tasks\{state="queued"\} 1$/m);
    expect(metrics).toMatch(/^tributary_tasks\{state="assigned"\} 3$/m);
    const bad = await rest(g, '/api/v1/tasks?status=done');
    expect(bad.status).toBe(400);
    expect(bad.json['code']).toBe('VALIDATION_ERROR');
    const one = await rest(g, `/api/v1/tasks/${ids[0] as string}`);
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ id: ids[0], tenant_id: 'default', type: 'even', priority: 'normal', status: 'completed', result: 42, progress: 100, agent_id: a.id, attempts: 1 });
    expect(one.json['completed_at']).toMatch(/Z$/);
    expect((one.json['history'] as Json[]).map((h) => h['status'])).toEqual(['queued', 'assigned', 'completed']);
    expect((await rest(g, '/api/v1/tasks/task-nope')).status).toBe(404);
    // documented in the OpenAPI document
    const doc = await rest(g, '/api/openapi.json');
    const paths = doc.json['paths'] as Record<string, Json>;
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/api/v1/tasks', '/api/v1/tasks/{id}']));
  });

  it('publishes the orchestration events, tenant-scoped, on the bus', async () => {
    const g = await gateway();
    const a = await agent(g, 'a', ['e']);
    const assigner = await connect(g);
    const q = await assigner.ok('task.assign', { type: 'e', required_capabilities: ['e', 'f'] });
    const t = await assigner.ok('task.assign', { type: 'e', required_capabilities: ['e'] });
    await a.c.ok('task.update', { task_id: t['task_id'] as string, progress: 5 });
    await a.c.ok('task.complete', { task_id: t['task_id'] as string });
    await a.c.ok('agent.status', { status: 'busy' });
    a.c.ws.terminate();
    await waitFor(() => eventsOf(g, 'AgentOffline').length === 1);
    const orch = g.events.filter((e) => ['AgentRegistered', 'AgentStatusChanged', 'AgentOffline', 'TaskAssigned', 'TaskQueued', 'TaskUpdated', 'TaskCompleted', 'TaskFailed'].includes(e.event_type));
    expect(orch.map((e) => e.event_type)).toEqual(['AgentRegistered', 'TaskQueued', 'TaskAssigned', 'TaskUpdated', 'TaskCompleted', 'AgentStatusChanged', 'AgentOffline']);
    for (const e of orch) expect((e as unknown as Json)['tenant_id']).toBe('default');
    expect(eventsOf(g, 'AgentRegistered')[0]).toMatchObject({ agent_id: a.id, name: 'a', capabilities: ['e'] });
    expect(eventsOf(g, 'TaskQueued')[0]).toMatchObject({ task_id: q['task_id'], reason: 'no_eligible_agent', queue_depth: 1 });
    expect(eventsOf(g, 'TaskAssigned')[0]).toMatchObject({ task_id: t['task_id'], agent_id: a.id, attempt: 1 });
    expect(eventsOf(g, 'AgentOffline')[0]).toMatchObject({ agent_id: a.id, reason: 'disconnected', previous_status: 'busy' });
  });
});

describe('retention', () => {
  it('deletes completed and failed tasks after finished_task_retention_ms, never open ones', async () => {
    const g = await gateway({ finished_task_retention_ms: 300 });
    const a = await agent(g, 'a', ['r']);
    const assigner = await connect(g);
    const done = (await assigner.ok('task.assign', { type: 'r', required_capabilities: ['r'] }))['task_id'] as string;
    await a.c.ok('task.complete', { task_id: done, result: 1 });
    const open = (await assigner.ok('task.assign', { type: 'r', required_capabilities: ['r'] }))['task_id'] as string;
    const waiting = (await assigner.ok('task.assign', { type: 'x', required_capabilities: ['nobody'] }))['task_id'] as string;
    expect((await rest(g, `/api/v1/tasks/${done}`)).status).toBe(200);
    const deadline = Date.now() + 5000;
    while ((await rest(g, `/api/v1/tasks/${done}`)).status !== 404) {
      if (Date.now() > deadline) throw new Error('the finished task was not swept');
      await settle(50);
    }
    await settle(400);
    expect((await rest(g, `/api/v1/tasks/${open}`)).status).toBe(200);
    expect((await rest(g, `/api/v1/tasks/${waiting}`)).status).toBe(200);
  });
});

describe('MCPW binary agents', () => {
  it('registers with an MCPW Request frame and receives task.assigned as an MCPW Notification frame', async () => {
    const g = await gateway();
    const bin = await agent(g, 'binary', ['bin'], {}, { binary: true });
    const reply = bin.c.frames.find((f) => f.type === McpwType.Response) as McpwDecodedFrame;
    expect(reply.requestId).toBe(1n);
    expect(reply.method).toBe(McpwMethod.Generic);
    const assigner = await connect(g);
    const r = await assigner.ok('task.assign', { type: 'bin', required_capabilities: ['bin'], payload: { big: 'y'.repeat(3000) } });
    expect(r['agent_id']).toBe(bin.id);
    const note = await bin.c.waitNote('task.assigned');
    expect(note['task']).toMatchObject({ id: r['task_id'], payload: { big: 'y'.repeat(3000) } });
    const frame = bin.c.frames.find((f) => f.type === McpwType.Notification) as McpwDecodedFrame;
    expect(frame.method).toBe(McpwMethod.Generic);
    expect(frame.payload).toMatchObject({ jsonrpc: '2.0', method: 'notification', params: { type: 'task.assigned' } });
    expect(bin.c.texts).toBe(0);
    // binary update and completion; the text assigner hears in text
    await bin.c.ok('task.update', { task_id: r['task_id'] as string, status: 'in_progress', progress: 50 });
    await bin.c.ok('task.complete', { task_id: r['task_id'] as string, result: { bytes: 3000 } });
    expect((await assigner.waitNote('task.completed'))['task']).toMatchObject({ result: { bytes: 3000 } });
    expect(assigner.frames).toEqual([]);
    // errors come back as MCPW Error frames
    const e = await bin.c.fails('task.update', { task_id: r['task_id'] as string, progress: -1 });
    expect(e.code).toBe(-32602);
    expect(bin.c.frames.some((f) => f.type === McpwType.Error)).toBe(true);
  });
});

describe('tenants and restarts', () => {
  it('keeps tenants apart: agents, queues, task updates and REST', async () => {
    const v = await startV1Gateway([]);
    cleanup.push(() => v.gw.stop());
    const g: Gw = { gw: v.gw, events: [] };
    const acmeAgent = await agent(g, 'acme-bot', ['deploy'], { model: 'claude' }, { headers: { authorization: `Bearer ${v.keyA}` } });
    const globex = await connect(g, { headers: { authorization: `Bearer ${v.keyB}` } });
    const acme = await connect(g, { headers: { authorization: `Bearer ${v.keyA}` } });
    // globex cannot reach acme's agent, even by id
    const gq = await globex.ok('task.assign', { type: 'deploy', required_capabilities: ['deploy'] });
    expect(gq['status']).toBe('queued');
    const gq2 = await globex.ok('task.assign', { type: 'deploy', agent_id: acmeAgent.id });
    expect(gq2['status']).toBe('queued');
    const at = await acme.ok('task.assign', { type: 'deploy', required_capabilities: ['deploy'] });
    expect(at).toMatchObject({ status: 'assigned', agent_id: acmeAgent.id });
    await acmeAgent.c.waitNote('task.assigned');
    expect(acmeAgent.c.assigned().map((t) => t['id'])).toEqual([at['task_id']]);
    // a globex agent with the same capability cannot report on acme's task
    const gAgent = await agent(g, 'globex-bot', ['deploy'], {}, { headers: { authorization: `Bearer ${v.keyB}` } });
    const e = await gAgent.c.fails('task.complete', { task_id: at['task_id'] as string });
    expect(e.data['code']).toBe('NOT_FOUND');
    // ... and it drains globex's queue, not acme's (the task naming acme's agent id keeps waiting for a globex agent of that id)
    await gAgent.c.waitNote('task.assigned');
    await gAgent.c.ok('agent.heartbeat', {});
    expect(gAgent.c.assigned().map((t) => t['id'])).toEqual([gq['task_id']]);
    const listA = await v.call('GET', '/api/v1/tasks', v.keyA);
    expect((listA.json['tasks'] as Json[]).map((t) => t['id'])).toEqual([at['task_id']]);
    expect((listA.json['tasks'] as Json[])[0]).toMatchObject({ tenant_id: 'acme' });
    const listB = await v.call('GET', '/api/v1/tasks', v.keyB);
    expect(listB.json['total']).toBe(2);
    expect((await v.call('GET', `/api/v1/tasks/${at['task_id'] as string}`, v.keyB)).status).toBe(404);
    expect((await v.call('GET', `/api/v1/tasks/${at['task_id'] as string}`, v.keyA)).status).toBe(200);
    const agentsA = await v.call('GET', '/api/v1/agents', v.keyA);
    expect((agentsA.json['agents'] as Json[]).map((x) => x['id'])).toEqual([acmeAgent.id]);
    expect((agentsA.json['agents'] as Json[])[0]).toMatchObject({ name: 'acme-bot', model: 'claude', capabilities: ['deploy'] });
  });

  it('refreshes an agent created over REST when it registers with its id', async () => {
    const g = await gateway();
    const created = await send(`${g.gw.url}/api/v1/agents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'from-rest', model: 'gpt-4', description: 'kept', capabilities: ['old'] }) });
    expect(created.status).toBe(201);
    const id = (created.json as Json)['id'] as string;
    const a = await agent(g, 'from-ws', ['new'], { agent_id: id });
    expect(a.id).toBe(id);
    const rec = await rest(g, `/api/v1/agents/${id}`);
    expect(rec.json).toMatchObject({ id, name: 'from-ws', model: 'gpt-4', description: 'kept', capabilities: ['new'] });
  });

  it('puts unfinished tasks back in the queue after a restart, without spending their attempts', async () => {
    const first = await startTestGateway([], {}, { orchestration: { max_attempts: 1 } });
    const dataDir = first.dataDir;
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const a = await agent(first, 'a', ['persist']);
    const assigner = await connect(first);
    const held = (await assigner.ok('task.assign', { type: 'held', required_capabilities: ['persist'], payload: { keep: true } }))['task_id'] as string;
    const waiting = (await assigner.ok('task.assign', { type: 'waiting', required_capabilities: ['persist', 'later'], priority: 'high' }))['task_id'] as string;
    const done = (await assigner.ok('task.assign', { type: 'done', required_capabilities: ['persist'] }))['task_id'] as string;
    await a.c.waitNote('task.assigned', () => true, 2);
    await a.c.ok('task.complete', { task_id: done });
    await first.close();

    const config = resolveConfig({ server: { host: '127.0.0.1', port: 0 }, data_dir: dataDir, mcp_clients: [], orchestration: { max_attempts: 1 } }, 'test', {});
    const logs: string[] = [];
    const second = await startGateway(config, { log: createLogger('debug', {}, (l) => logs.push(l)) });
    cleanup.push(() => second.close());
    const g: Gw = { gw: { ...second, logs, dataDir, mcpUrl: new URL(`${second.url}/mcp`), stop: () => second.close() }, events: [] };
    const before = await rest(g, `/api/v1/tasks/${held}`);
    expect(before.json).toMatchObject({ status: 'queued', attempts: 1, payload: { keep: true } });
    expect((before.json['history'] as Json[]).at(-1)).toMatchObject({ status: 'queued', note: `the gateway restarted while agent ${a.id} held it` });
    const b = await agent(g, 'b', ['persist', 'later']);
    await b.c.waitNote('task.assigned', () => true, 2);
    // the high-priority one first, then the one that lost its agent
    expect(b.c.assigned().map((t) => t['id'])).toEqual([waiting, held]);
    expect(b.c.assigned()[1]).toMatchObject({ attempts: 2, payload: { keep: true } });
    expect((await rest(g, `/api/v1/tasks/${done}`)).json['status']).toBe('completed');
    expect(logs.some((l) => l.includes('orchestration ready') && l.includes('"open_tasks":2'))).toBe(true);
  });
});

// -------------------------------------------------------------------------------------------------
// the pure engine
// -------------------------------------------------------------------------------------------------

describe('AssignmentEngine (property)', () => {
  const CAPS = ['a', 'b', 'c', 'd'];
  type Op =
    | { kind: 'agent'; id: number; caps: string[] }
    | { kind: 'remove'; id: number }
    | { kind: 'status'; id: number; status: AgentStatus }
    | { kind: 'submit'; required: string[]; priority: TaskPriority; target: number | undefined }
    | { kind: 'finish'; pick: number };
  const capsArb = fc.uniqueArray(fc.constantFrom(...CAPS), { maxLength: 3 });
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('agent' as const), id: fc.nat(4), caps: capsArb }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), id: fc.nat(4) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('status' as const), id: fc.nat(4), status: fc.constantFrom<AgentStatus>('available', 'busy', 'offline') }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('submit' as const), required: capsArb, priority: fc.constantFrom(...PRIORITIES), target: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat(5) }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('finish' as const), pick: fc.nat(50) }) },
  );
  const rank = (p: TaskPriority): number => PRIORITIES.indexOf(p);

  it('only hands tasks to available agents covering them, in priority order, and never loses or duplicates one', () => {
    fc.assert(
      fc.property(fc.constantFrom('least_loaded' as const, 'round_robin' as const), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.array(opArb, { maxLength: 120 }), (strategy, maxPer, maxQueued, ops) => {
        const e = new AssignmentEngine({ strategy, maxQueued, maxTasksPerAgent: maxPer });
        const agents = new Map<string, { caps: Set<string>; status: AgentStatus }>();
        const tasks = new Map<string, EngineTask>();
        const holder = new Map<string, string>();
        const done = new Set<string>();
        let seq = 0;

        const checkGive = (taskId: string, agentId: string): void => {
          const t = tasks.get(taskId);
          const a = agents.get(agentId);
          expect(t, 'a known task').toBeDefined();
          expect(a, 'a known agent').toBeDefined();
          expect(a?.status).toBe('available');
          for (const c of t?.required ?? []) expect(a?.caps.has(c)).toBe(true);
          if (t?.target !== undefined) expect(agentId).toBe(t.target);
          expect(holder.has(taskId), `${taskId} given twice`).toBe(false);
          expect([...holder.values()].filter((h) => h === agentId).length).toBeLessThan(maxPer);
          holder.set(taskId, agentId);
        };
        const drain = (agentId: string): void => {
          const a = agents.get(agentId);
          // what it should get: the queued tasks it can take, best first
          const expected = e
            .queuedTasks()
            .filter((t) => a !== undefined && (t.target === undefined || t.target === agentId) && t.required.every((c) => a.caps.has(c)))
            .map((t) => t.id);
          const got = e.drain(agentId);
          expect(got.map((x) => x.taskId)).toEqual(expected.slice(0, got.length));
          for (const x of got) checkGive(x.taskId, x.agentId);
        };
        const requeue = (ids: string[]): void => {
          for (const id of ids) {
            holder.delete(id);
            const to = e.submit(tasks.get(id) as EngineTask, true);
            if (to !== undefined) checkGive(id, to);
          }
        };

        for (const op of ops) {
          switch (op.kind) {
            case 'agent': {
              const id = `a${op.id}`;
              e.upsertAgent(id, op.caps, true);
              agents.set(id, { caps: new Set(op.caps), status: 'available' });
              drain(id);
              break;
            }
            case 'remove': {
              const id = `a${op.id}`;
              const held = e.removeAgent(id);
              expect(held.sort()).toEqual([...holder].filter(([, h]) => h === id).map(([t]) => t).sort());
              agents.delete(id);
              requeue(held);
              break;
            }
            case 'status': {
              const id = `a${op.id}`;
              const a = agents.get(id);
              expect(e.setStatus(id, op.status)).toBe(a !== undefined);
              if (a === undefined) break;
              a.status = op.status;
              if (op.status === 'offline') requeue(e.releaseAll(id));
              if (op.status === 'available') drain(id);
              break;
            }
            case 'submit': {
              const t: EngineTask = { id: `t${seq}`, priority: op.priority, required: op.required, target: op.target === undefined ? undefined : `a${op.target}`, seq: seq++ };
              const before = e.queueSize;
              try {
                tasks.set(t.id, t);
                const to = e.submit(t);
                if (to !== undefined) checkGive(t.id, to);
              } catch (err) {
                expect(err).toBeInstanceOf(QueueFullError);
                expect(before).toBeGreaterThanOrEqual(maxQueued);
                tasks.delete(t.id);
              }
              break;
            }
            case 'finish': {
              const held = [...holder];
              if (held.length === 0) break;
              const [taskId, agentId] = held[op.pick % held.length] as [string, string];
              expect(e.finish(agentId, taskId)).toBe(true);
              holder.delete(taskId);
              done.add(taskId);
              drain(agentId);
              break;
            }
          }
          // every task in exactly one place: queued, held by one agent, or done
          const queued = e.queuedTasks().map((t) => t.id);
          expect(new Set(queued).size).toBe(queued.length);
          const heldIds = [...e.agentViews()].flatMap((a) => [...a.tasks]);
          expect(new Set(heldIds).size).toBe(heldIds.length);
          expect(queued.length + heldIds.length + done.size).toBe(tasks.size);
          for (const id of queued) expect(holder.has(id) || done.has(id)).toBe(false);
          for (const a of e.agentViews()) for (const id of a.tasks) expect(holder.get(id)).toBe(a.id);
          // nobody idles while a task it could take waits
          for (const t of e.queuedTasks()) expect(e.canTake(t)).toBe(false);
          // the queue view is in priority order, FIFO within a priority
          for (let i = 1; i < queued.length; i++) {
            const p = tasks.get(queued[i - 1] as string) as EngineTask;
            const q = tasks.get(queued[i] as string) as EngineTask;
            expect(rank(p.priority) < rank(q.priority) || (p.priority === q.priority && p.seq < q.seq)).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('least_loaded balances and round_robin rotates among equal agents', () => {
    for (const strategy of ['least_loaded', 'round_robin'] as const) {
      const e = new AssignmentEngine({ strategy, maxQueued: 10, maxTasksPerAgent: 100 });
      for (let i = 0; i < 4; i++) e.upsertAgent(`a${i}`, ['x'], true);
      const got = Array.from({ length: 8 }, (_, i) => e.submit({ id: `t${i}`, priority: 'normal', required: ['x'], target: undefined, seq: i }));
      expect(got).toEqual(['a0', 'a1', 'a2', 'a3', 'a0', 'a1', 'a2', 'a3']);
    }
  });
});
