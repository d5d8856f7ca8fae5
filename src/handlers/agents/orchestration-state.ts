/**
 * The state machine of agent orchestration as a reducer: `step(command) → {effects, reply}`.
 * It owns the live agents and unfinished tasks of every tenant (with one {@link AssignmentEngine}
 * per tenant) and decides; it does no I/O, reads no clock (every command carries `now`, epoch ms)
 * and draws no random ids (`newId` is given). What should happen outside — a task record to
 * write, a bus event, a `notification` to a peer, a log line — comes back as
 * {@link OrchestrationEffect}s, in the order they must be carried out; the `Orchestrator` sinks
 * carry them out, and feeds back the results that arrive later (the agent record written or not,
 * a notification that could not be sent) as further commands. The protocol it implements is
 * described in `orchestrator.ts` (developer-mesh "Agent Orchestration Messages",
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md).
 *
 * The state is mutated in place (a step is O(agents) at worst, never a copy of every task); a
 * step either returns its effects and reply, or — for a bad message — the effects of what it did
 * before the refusal (a timed-out agent's first frame brings it back even when the frame is bad)
 * and the error as its reply. Peers are opaque handles here: only `id`, `auth` (the tenant) and
 * `lastMessageAt` (for the heartbeat check) are read.
 */
import { GatewayError } from '../../base/errors.js';
import type { OrchestrationEventType } from '../../streams/events.js';
import type { WsPeer } from '../../streams/ws-methods.js';
import { AssignmentEngine, QueueFullError, type AgentStatus, type EngineTask } from './engine.js';
import { AssignParams, CompleteParams, FailParams, HeartbeatParams, RegisterParams, StatusParams, UpdateParams, decodeParams } from './params.js';
import {
  agentTaskView,
  assignerTaskView,
  tenantOf,
  type AgentHandle,
  type OfflineReason,
  type OrchestrationCommand,
  type OrchestrationEffect,
  type OrchestrationOptions,
  type OrchestrationReply,
  type OrchestrationStep,
} from './orchestration-types.js';
import { transition, type LiveRecord, type TaskRecord } from './records.js';


interface LiveAgent extends AgentHandle {
  readonly peer: WsPeer;
  name: string;
  model: string | undefined;
  capabilities: string[];
  status: AgentStatus;
  /** `now` of its last message, ms. */
  lastSeen: number;
  offlineReason: OfflineReason | undefined;
}

interface LiveTask {
  readonly rec: LiveRecord;
  /** The connection that assigned it (undefined after a restart). */
  readonly assigner: WsPeer | undefined;
  /** `now` of the last assignment, ms. */
  assignedMs: number;
}

interface TenantState {
  readonly id: string;
  readonly engine: AssignmentEngine;
  /** Agents by id (bound to a connection; status may be offline when declared or timed out). */
  readonly agents: Map<string, LiveAgent>;
  /** Unfinished tasks by id (queued, assigned, in_progress). */
  readonly tasks: Map<string, LiveTask>;
}

const TASK_METHODS = new Set(['agent.register', 'agent.status', 'agent.heartbeat', 'task.assign', 'task.update', 'task.complete', 'task.fail']);


function unique(items: readonly string[]): string[] {
  return items.length <= 1 ? [...items] : [...new Set(items)];
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The orchestration reducer (see the module comment). One instance per gateway. */
export class OrchestrationState {
  private readonly tenants = new Map<string, TenantState>();
  /** The agent each connection registered, by peer id. */
  private readonly peers = new Map<string, LiveAgent>();
  private seq = 0;
  /** The effects of the step under way. */
  private out: OrchestrationEffect[] = [];
  private now = 0;

  constructor(private readonly options: OrchestrationOptions) {}

  /**
   * Applies one command. Never throws: a refused `call` comes back as an `error` reply, with the
   * effects of what the step did before the refusal.
   */
  step(command: OrchestrationCommand): OrchestrationStep {
    this.out = [];
    this.now = command.now;
    let reply: OrchestrationReply | undefined;
    try {
      reply = this.apply(command);
    } catch (error) {
      reply = { kind: 'error', error };
    }
    const effects = this.out;
    this.out = [];
    return { effects, reply };
  }

  /** The live status of agent `id` of `tenant`, or undefined when it has not registered since start. */
  statusOf(tenant: string, id: string): AgentStatus | undefined {
    return this.tenants.get(tenant)?.agents.get(id)?.status;
  }

  /** The id of the agent `peer` registered, if any. */
  agentIdOf(peer: WsPeer): string | undefined {
    return this.peers.get(peer.id)?.id;
  }

  /** Agents by status and tasks by state across tenants (a snapshot). */
  get stats(): { readonly agents: Readonly<Record<AgentStatus, number>>; readonly queued: number; readonly inFlight: number } {
    const agents: Record<AgentStatus, number> = { available: 0, busy: 0, offline: 0 };
    let queued = 0;
    let open = 0;
    for (const ts of this.tenants.values()) {
      for (const a of ts.agents.values()) agents[a.status]++;
      queued += ts.engine.queueSize;
      open += ts.tasks.size;
    }
    return { agents, queued, inFlight: open - queued };
  }

  private apply(command: OrchestrationCommand): OrchestrationReply | undefined {
    switch (command.type) {
      case 'restore':
        return { kind: 'result', value: this.restore(command.open, command.maxSeq) };
      case 'call':
        return this.dispatch(command.peer, command.method, command.params);
      case 'closed': {
        const agent = this.peers.get(command.peer.id);
        if (agent !== undefined && agent.peer === command.peer) this.dropAgent(agent, 'disconnected');
        return undefined;
      }
      case 'unreachable':
        this.dropAgent(command.agent as LiveAgent, 'unreachable');
        return undefined;
      case 'agentReady': {
        const agent = command.agent as LiveAgent;
        const ts = this.tenant(agent.tenant);
        if (ts.agents.get(agent.id) !== agent) return undefined;
        ts.engine.setReady(agent.id, true);
        this.drainAgent(ts, agent);
        return undefined;
      }
      case 'registrationFailed':
        this.dropAgent(command.agent as LiveAgent, 'registration_failed');
        return undefined;
      case 'tick':
        this.checkHeartbeats();
        return undefined;
    }
  }

  private restore(open: readonly TaskRecord[], maxSeq: number): number {
    if (maxSeq > this.seq) this.seq = maxSeq;
    let requeued = 0;
    for (const stored of open) {
      const ts = this.tenant(stored.tenant_id);
      const live: LiveTask = { rec: { ...stored, history: [...stored.history] }, assigner: undefined, assignedMs: 0 };
      ts.tasks.set(stored.id, live);
      if (stored.status === 'queued') {
        ts.engine.submit(this.engineTask(live), true);
        continue;
      }
      // its agent's connection ended with the process: not the task's fault, so it never fails here
      requeued++;
      this.requeueOrFail(ts, live, `the gateway restarted while agent ${stored.agent_id ?? '?'} held it`, 'gateway_restarted', false);
    }
    return requeued;
  }

  private dispatch(peer: WsPeer, method: string, params: Record<string, unknown> | undefined): OrchestrationReply {
    if (!TASK_METHODS.has(method)) throw new GatewayError('METHOD_NOT_FOUND', `Method not found: ${method}`, { method });
    const agent = this.peers.get(peer.id);
    if (agent !== undefined) this.touch(agent);
    const result = (value: unknown): OrchestrationReply => ({ kind: 'result', value });
    switch (method) {
      case 'agent.register':
        return this.registerAgent(peer, decodeParams(RegisterParams, params, method));
      case 'agent.status':
        return result(this.setStatus(this.requireAgent(peer, method), decodeParams(StatusParams, params, method).status));
      case 'agent.heartbeat':
        decodeParams(HeartbeatParams, params, method);
        this.requireAgent(peer, method);
        return result({ ok: true });
      case 'task.assign':
        return result(this.assign(peer, decodeParams(AssignParams, params, method)));
      case 'task.update':
        return this.update(peer, decodeParams(UpdateParams, params, method));
      case 'task.complete': {
        const p = decodeParams(CompleteParams, params, method);
        const own = this.own(peer, p.task_id, method);
        return own === undefined ? { kind: 'explainMissing', peer, taskId: p.task_id, method } : result(this.complete(own.ts, own.live, own.agent, p.result, undefined));
      }
      default: {
        const p = decodeParams(FailParams, params, method);
        const own = this.own(peer, p.task_id, method);
        return own === undefined ? { kind: 'explainMissing', peer, taskId: p.task_id, method } : result(this.fail(own.ts, own.live, own.agent, p.error, p.retry === true));
      }
    }
  }

  private tenant(id: string): TenantState {
    let ts = this.tenants.get(id);
    if (ts === undefined) {
      const c = this.options.config;
      ts = { id, engine: new AssignmentEngine({ strategy: c.strategy, maxQueued: c.max_queued_tasks, maxTasksPerAgent: c.max_tasks_per_agent }), agents: new Map(), tasks: new Map() };
      this.tenants.set(id, ts);
    }
    return ts;
  }

  private requireAgent(peer: WsPeer, method: string): LiveAgent {
    const agent = this.peers.get(peer.id);
    if (agent === undefined) throw new GatewayError('INVALID_REQUEST', `${method}: this connection has no agent; send agent.register first`, { method });
    return agent;
  }

  // -- effects ------------------------------------------------------------------------------

  private publish(event_type: OrchestrationEventType, tenant: string, fields: Record<string, unknown>): void {
    this.out.push({ kind: 'publish', event: { ...fields, event_type, tenant_id: tenant } });
  }

  private persist(rec: LiveRecord): void {
    this.out.push({ kind: 'persist', record: { ...rec, history: [...rec.history] } });
  }

  private tellAssigner(live: LiveTask, type: 'task.updated' | 'task.completed' | 'task.failed', reason: string | undefined): void {
    const a = live.assigner;
    if (a === undefined) return;
    this.out.push({ kind: 'notify', peer: a, params: reason === undefined ? { type, task: assignerTaskView(live.rec) } : { type, reason, task: assignerTaskView(live.rec) } });
  }

  private engineTask(live: LiveTask): EngineTask {
    const r = live.rec;
    return { id: r.id, priority: r.priority, required: r.required_capabilities, target: r.target_agent_id, seq: r.seq };
  }

  // -- agents -------------------------------------------------------------------------------

  private touch(agent: LiveAgent): void {
    agent.lastSeen = this.now;
    if (agent.status === 'offline' && agent.offlineReason === 'heartbeat_timeout') this.setStatus(agent, 'available');
  }

  private registerAgent(peer: WsPeer, p: RegisterParams): OrchestrationReply {
    const ts = this.tenant(tenantOf(peer));
    const caps = unique(p.capabilities);
    const bound = this.peers.get(peer.id);
    const agentId = p.agent_id ?? bound?.id ?? this.options.newId('agent');
    if (bound !== undefined && bound.id !== agentId) this.dropAgent(bound, 'replaced');
    const holder = ts.agents.get(agentId);
    if (holder !== undefined && holder.peer !== peer) this.dropAgent(holder, 'replaced');
    let agent = ts.agents.get(agentId);
    const oldStatus = agent?.status;
    if (agent === undefined) {
      agent = { id: agentId, tenant: ts.id, peer, name: p.name, model: p.model, capabilities: caps, status: 'available', lastSeen: this.now, offlineReason: undefined };
      ts.agents.set(agentId, agent);
      this.peers.set(peer.id, agent);
    } else {
      agent.name = p.name;
      agent.model = p.model ?? agent.model;
      agent.capabilities = caps;
      agent.status = 'available';
      agent.offlineReason = undefined;
      agent.lastSeen = this.now;
    }
    // not ready (given nothing) until the reply is out; then the queue drains into it
    ts.engine.upsertAgent(agentId, caps, false);
    this.publish('AgentRegistered', ts.id, { agent_id: agentId, name: p.name, capabilities: caps, model: agent.model ?? null, peer_id: peer.id });
    if (oldStatus !== undefined && oldStatus !== 'available') this.publish('AgentStatusChanged', ts.id, { agent_id: agentId, old_status: oldStatus, new_status: 'available' });
    return { kind: 'saveAgent', agent, name: agent.name, model: agent.model, capabilities: agent.capabilities };
  }

  private setStatus(agent: LiveAgent, status: AgentStatus): Record<string, unknown> {
    const ts = this.tenant(agent.tenant);
    if (status === agent.status) return { agent_id: agent.id, status };
    if (status === 'offline') {
      this.goOffline(agent, 'declared');
      return { agent_id: agent.id, status };
    }
    const old = agent.status;
    agent.status = status;
    agent.offlineReason = undefined;
    ts.engine.setStatus(agent.id, status);
    this.publish('AgentStatusChanged', ts.id, { agent_id: agent.id, old_status: old, new_status: status });
    if (status === 'available') this.drainAgent(ts, agent);
    return { agent_id: agent.id, status };
  }

  /** Offline while still bound to its connection (declared, heartbeat timeout): its tasks go back. */
  private goOffline(agent: LiveAgent, reason: OfflineReason): void {
    if (agent.status === 'offline') return;
    const ts = this.tenant(agent.tenant);
    const old = agent.status;
    agent.status = 'offline';
    agent.offlineReason = reason;
    ts.engine.setStatus(agent.id, 'offline');
    const held = ts.engine.releaseAll(agent.id);
    this.publish('AgentOffline', ts.id, { agent_id: agent.id, reason, previous_status: old, tasks: held });
    this.handBack(ts, held, agent, reason);
  }

  /** The agent leaves its connection (closed, replaced, unreachable): forgotten, its tasks go back. */
  private dropAgent(agent: LiveAgent, reason: OfflineReason): void {
    const ts = this.tenants.get(agent.tenant);
    if (ts === undefined || ts.agents.get(agent.id) !== agent) return;
    ts.agents.delete(agent.id);
    if (this.peers.get(agent.peer.id) === agent) this.peers.delete(agent.peer.id);
    const held = ts.engine.removeAgent(agent.id);
    const old = agent.status;
    agent.status = 'offline';
    if (old !== 'offline') this.publish('AgentOffline', ts.id, { agent_id: agent.id, reason, previous_status: old, tasks: held });
    agent.offlineReason = reason;
    this.handBack(ts, held, agent, reason);
  }

  private handBack(ts: TenantState, ids: readonly string[], agent: LiveAgent, reason: OfflineReason): void {
    for (const id of ids) {
      const live = ts.tasks.get(id);
      if (live === undefined) continue;
      this.out.push({ kind: 'notify', peer: agent.peer, params: { type: 'task.revoked', task_id: id, reason } });
      this.requeueOrFail(ts, live, `agent ${agent.id} went offline (${reason})`, 'agent_offline');
    }
  }

  private checkHeartbeats(): void {
    const limit = this.options.config.heartbeat_timeout_ms;
    for (const ts of this.tenants.values()) {
      for (const agent of ts.agents.values()) {
        // any frame on the agent's connection counts (MCP calls, MCPW pings), not only agent.* methods
        const heard = Math.max(agent.lastSeen, agent.peer.lastMessageAt);
        if (agent.status !== 'offline' && this.now - heard > limit) {
          this.out.push({ kind: 'log', message: 'agent missed its heartbeats', fields: { tenant: ts.id, agent_id: agent.id, silent_ms: this.now - heard } });
          this.goOffline(agent, 'heartbeat_timeout');
        }
      }
    }
  }

  // -- tasks --------------------------------------------------------------------------------

  private assign(peer: WsPeer, p: AssignParams): Record<string, unknown> {
    const ts = this.tenant(tenantOf(peer));
    const now = iso(this.now);
    const rec: LiveRecord = {
      id: this.options.newId('task'),
      tenant_id: ts.id,
      seq: ++this.seq,
      type: p.type,
      priority: p.priority ?? 'normal',
      status: 'queued',
      required_capabilities: unique(p.required_capabilities ?? []),
      payload: p.payload ?? {},
      assigner_peer_id: peer.id,
      attempts: 0,
      progress: 0,
      created_at: now,
      updated_at: now,
      history: [{ at: now, status: 'queued' }],
    };
    if (p.agent_id !== undefined) rec.target_agent_id = p.agent_id;
    const live: LiveTask = { rec, assigner: peer, assignedMs: 0 };
    let agentId: string | undefined;
    try {
      agentId = ts.engine.submit(this.engineTask(live));
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err;
      throw new GatewayError(
        'OVERLOADED',
        `Task queue of tenant ${ts.id} is full: ${err.queued} tasks wait for an agent (limit max_queued_tasks ${err.maxQueued}); retry later or connect agents with capabilities [${rec.required_capabilities.join(', ')}]`,
        { max_queued_tasks: err.maxQueued, queued: err.queued, required_capabilities: rec.required_capabilities },
      );
    }
    ts.tasks.set(rec.id, live);
    if (agentId !== undefined) {
      this.applyAssignment(ts, live, agentId, undefined);
      return { task_id: rec.id, status: 'assigned', agent_id: agentId };
    }
    this.persist(rec);
    this.publish('TaskQueued', ts.id, { task_id: rec.id, type: rec.type, priority: rec.priority, reason: 'no_eligible_agent', queue_depth: ts.engine.queueSize, ...(rec.target_agent_id === undefined ? {} : { target_agent_id: rec.target_agent_id }) });
    return { task_id: rec.id, status: 'queued' };
  }

  /** Records that the engine gave `live` to `agentId` and tells the agent (and the assigner, with `reason`). */
  private applyAssignment(ts: TenantState, live: LiveTask, agentId: string, reason: string | undefined): void {
    const agent = ts.agents.get(agentId);
    const rec = live.rec;
    if (agent === undefined) {
      // cannot happen: the engine only knows bound agents; keep the task rather than lose it
      ts.engine.finish(agentId, rec.id);
      ts.engine.submit(this.engineTask(live), true);
      return;
    }
    const at = iso(this.now);
    rec.attempts++;
    rec.agent_id = agentId;
    rec.assigned_at = at;
    rec.progress = 0;
    delete rec.message;
    live.assignedMs = this.now;
    transition(rec, 'assigned', at);
    this.persist(rec);
    this.publish('TaskAssigned', ts.id, { task_id: rec.id, agent_id: agentId, type: rec.type, priority: rec.priority, attempt: rec.attempts });
    this.out.push({ kind: 'notify', peer: agent.peer, params: { type: 'task.assigned', task: agentTaskView(rec) }, unreachable: agent });
    if (reason !== undefined) this.tellAssigner(live, 'task.updated', reason);
  }

  private drainAgent(ts: TenantState, agent: LiveAgent): void {
    for (const a of ts.engine.drain(agent.id)) {
      const live = ts.tasks.get(a.taskId);
      if (live === undefined) {
        ts.engine.finish(a.agentId, a.taskId);
        continue;
      }
      this.applyAssignment(ts, live, a.agentId, 'assigned');
    }
  }

  /**
   * `live` lost its agent (already released in the engine): back to the queue, or failed when
   * `mayFail` and `max_attempts` assignments are spent.
   */
  private requeueOrFail(ts: TenantState, live: LiveTask, why: string, reason: string, mayFail = true): void {
    const rec = live.rec;
    const max = this.options.config.max_attempts;
    if (mayFail && rec.attempts >= max) {
      this.failTask(ts, live, `${why}; gave up after ${rec.attempts} attempt${rec.attempts === 1 ? '' : 's'} (max_attempts ${max})`);
      return;
    }
    const previous = rec.agent_id;
    delete rec.agent_id;
    rec.progress = 0;
    delete rec.message;
    transition(rec, 'queued', iso(this.now), why);
    const agentId = ts.engine.submit(this.engineTask(live), true);
    this.publish('TaskQueued', ts.id, { task_id: rec.id, type: rec.type, priority: rec.priority, reason, attempts: rec.attempts, queue_depth: ts.engine.queueSize, ...(previous === undefined ? {} : { previous_agent_id: previous }) });
    if (agentId !== undefined) {
      this.applyAssignment(ts, live, agentId, 'requeued');
    } else {
      this.persist(rec);
      this.tellAssigner(live, 'task.updated', 'requeued');
    }
  }

  /** Ends `live` as failed (the engine no longer holds it). */
  private failTask(ts: TenantState, live: LiveTask, error: string): void {
    const rec = live.rec;
    const at = iso(this.now);
    rec.error = error;
    rec.completed_at = at;
    transition(rec, 'failed', at, error);
    ts.tasks.delete(rec.id);
    this.persist(rec);
    this.publish('TaskFailed', ts.id, { task_id: rec.id, type: rec.type, error, attempts: rec.attempts, ...(rec.agent_id === undefined ? {} : { agent_id: rec.agent_id }) });
    this.tellAssigner(live, 'task.failed', undefined);
  }

  /**
   * The task `taskId` of `peer`'s tenant held by `peer`'s agent; undefined when it is not
   * unfinished (the sinks then look it up in the store).
   * @throws GatewayError FORBIDDEN when someone else holds it (or nobody: queued).
   */
  private own(peer: WsPeer, taskId: string, method: string): { ts: TenantState; live: LiveTask; agent: LiveAgent } | undefined {
    const ts = this.tenants.get(tenantOf(peer));
    const live = ts?.tasks.get(taskId);
    if (ts === undefined || live === undefined) return undefined;
    const agent = this.peers.get(peer.id);
    const holder = live.rec.agent_id;
    if (agent === undefined || holder === undefined || holder !== agent.id || !ts.engine.holds(agent.id, taskId)) {
      const who = holder === undefined ? 'it waits in the queue' : `it is assigned to agent ${holder}`;
      throw new GatewayError('FORBIDDEN', `${method}: only the agent task ${taskId} is assigned to may report on it; ${who}${agent === undefined ? ' and this connection has no agent' : `, not ${agent.id}`}`, {
        task_id: taskId,
        ...(holder === undefined ? {} : { agent_id: holder }),
      });
    }
    return { ts, live, agent };
  }

  private update(peer: WsPeer, p: UpdateParams): OrchestrationReply {
    const own = this.own(peer, p.task_id, 'task.update');
    if (own === undefined) return { kind: 'explainMissing', peer, taskId: p.task_id, method: 'task.update' };
    const { ts, live, agent } = own;
    if (p.status === 'completed') return { kind: 'result', value: this.complete(ts, live, agent, undefined, p.message) };
    if (p.status === 'failed') return { kind: 'result', value: this.fail(ts, live, agent, p.message ?? 'the agent reported failure', false) };
    const rec = live.rec;
    const at = iso(this.now);
    if (p.progress !== undefined) rec.progress = p.progress;
    if (p.message !== undefined) rec.message = p.message;
    if (p.status === 'in_progress' && rec.status !== 'in_progress') transition(rec, 'in_progress', at);
    else rec.updated_at = at;
    this.persist(rec);
    this.publish('TaskUpdated', ts.id, { task_id: rec.id, agent_id: agent.id, status: rec.status, progress: rec.progress, ...(p.message === undefined ? {} : { message: p.message }) });
    this.tellAssigner(live, 'task.updated', 'progress');
    return { kind: 'result', value: { task_id: rec.id, status: rec.status, progress: rec.progress } };
  }

  private complete(ts: TenantState, live: LiveTask, agent: LiveAgent, result: unknown, message: string | undefined): Record<string, unknown> {
    const rec = live.rec;
    ts.engine.finish(agent.id, rec.id);
    const at = iso(this.now);
    rec.progress = 100;
    if (result !== undefined) rec.result = result;
    if (message !== undefined) rec.message = message;
    rec.completed_at = at;
    transition(rec, 'completed', at);
    ts.tasks.delete(rec.id);
    this.persist(rec);
    this.publish('TaskCompleted', ts.id, { task_id: rec.id, agent_id: agent.id, type: rec.type, attempts: rec.attempts, duration_ms: this.now - live.assignedMs });
    this.tellAssigner(live, 'task.completed', undefined);
    this.drainAgent(ts, agent);
    return { task_id: rec.id, status: 'completed' };
  }

  private fail(ts: TenantState, live: LiveTask, agent: LiveAgent, error: string, retry: boolean): Record<string, unknown> {
    const rec = live.rec;
    ts.engine.finish(agent.id, rec.id);
    if (retry) this.requeueOrFail(ts, live, `agent ${agent.id} reported: ${error}`, 'retry');
    else this.failTask(ts, live, error);
    this.drainAgent(ts, agent);
    return { task_id: rec.id, status: rec.status, ...(rec.status === 'failed' ? {} : { attempts: rec.attempts }) };
  }
}
