/**
 * Agent orchestration over `/ws` (developer-mesh `/ws` "Agent Orchestration Messages"
 * and "Task Assignment Notification", https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md): agents register with their
 * capabilities, tasks are routed to them by the {@link AssignmentEngine}, progress and results go
 * back to whoever assigned the task. Served for JSON text and MCPW frames alike by
 * `McpWsEndpoint` through the {@link WsMethodHost} contract; every peer sees and affects only its
 * tenant (`peer.auth.principal.tenantId`, `default` without auth).
 *
 * Methods (requests; as notifications the result is dropped):
 * - `agent.register` {name, capabilities, model?, agent_id?} → `{agent_id, status:"available"}`.
 *   Binds the connection to that agent (one per connection; registering again replaces it, and an
 *   agent id held by another connection is taken over: the old holder goes offline). Creates or
 *   refreshes the `AgentRecord` (fsync'd) so `GET /api/v1/agents` lists it. Queued tasks are handed
 *   to it right after the reply.
 * - `agent.status` {status: available|busy|offline} → `{agent_id, status}`; `agent.heartbeat` →
 *   `{ok:true}`. Any frame of a registered connection counts as a heartbeat (`agent.*`/`task.*`
 *   messages, MCP calls, MCPW pings: {@link WsPeer.lastMessageAt}).
 * - `task.assign` {type, priority?, required_capabilities?, payload?, agent_id?} →
 *   `{task_id, status:"assigned"|"queued", agent_id?}`; the agent gets
 *   `{"method":"notification","params":{"type":"task.assigned","task":{...}}}`.
 * - `task.update` {task_id, status?, progress?, message?}, `task.complete` {task_id, result?},
 *   `task.fail` {task_id, error, retry?} → `{task_id, status, ...}`, from the assignee only. The
 *   assigner (while connected) gets `notification` `{type:"task.updated"|"task.completed"|
 *   "task.failed", reason?, task}`; an agent losing a task it still holds (timeout, offline) gets
 *   `{type:"task.revoked", task_id, reason}`.
 *
 * Errors (JSON-RPC): INVALID_PARAMS (-32602) naming each bad or unknown field; INVALID_REQUEST
 * (-32600) for `agent.status`/`agent.heartbeat` before `agent.register`; NOT_FOUND for an unknown
 * task; FORBIDDEN (-32008) for a task update from anyone but its assignee; CONFLICT for a task
 * already completed or failed; OVERLOADED (-32000, `details.max_queued_tasks`) when the tenant's
 * queue is full; STORE_UNAVAILABLE when the agent record cannot be written.
 *
 * Liveness: an agent silent for `heartbeat_timeout_ms` (checked by an unref'd timer every quarter
 * of it) goes offline, as does one whose connection closes. Its tasks go back to the queue with
 * their original place, or fail (`TaskFailed`, assigner told) once `max_attempts` assignments
 * were spent. A timed-out agent that speaks again is available again.
 *
 * Durability: task records are written through the store's batch writer (`store.writer`: group
 * commit, one `db.batch()` at a time, not fsync'd) and the replies do not wait for it. So an
 * acknowledged task survives a process crash once its batch is written (the commit in flight plus
 * its own, about a millisecond when the store keeps up) and an OS crash only after LevelDB's log
 * reaches the disk. Writes commit in order, so
 * the stored record is always the newest state. `GET /api/v1/tasks*` flush the writer first
 * (read-your-writes). At start, {@link Orchestrator.init} puts every unfinished task back in the
 * queue (its agent is gone), in their original order and without spending an attempt.
 *
 * Events (bus, scoped by `tenant_id`): AgentRegistered, AgentStatusChanged, AgentOffline,
 * TaskAssigned, TaskQueued, TaskUpdated, TaskCompleted, TaskFailed.
 */
import { randomUUID } from 'node:crypto';
import { delOp } from '../../store/batcher.js';
import { GatewayError } from '../../base/errors.js';
import type { GatewayConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { Store } from '../../store/open.js';
import type { TenantRepository } from '../../store/tenant-repo.js';
import type { AgentRecord, V1Store } from '../../store/v1-records.js';
import type { EventBus, OrchestrationEventType } from '../../streams/events.js';
import type { WsMethodHost, WsPeer } from '../../streams/ws-methods.js';
import { paginate, PAGE_QUERY, type V1Api } from '../rest/v1-api.js';
import { AssignmentEngine, QueueFullError, type AgentStatus, type EngineTask } from './engine.js';
import { AssignParams, CompleteParams, FailParams, HeartbeatParams, RegisterParams, StatusParams, UpdateParams, decodeParams } from './params.js';
import { OPEN_STATUSES, TASK_HISTORY_MAX, TASK_LIST_SCHEMA, TASK_SCHEMA, TASK_STATUSES, openTaskRepository, type TaskHistoryEntry, type TaskRecord, type TaskStatus } from './records.js';

export type { TaskRecord, TaskStatus } from './records.js';

/** What the orchestrator needs (wired in `gateway.ts`). */
export interface OrchestratorDeps {
  /** The v1 repositories: agents are registered in `repos.agents`. */
  readonly repos: V1Store;
  /** For the `tasks` sublevel and the batch writer. */
  readonly store: Store;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly config: GatewayConfig['orchestration'];
}

/** Why an agent went offline (field `reason` of `AgentOffline`). */
export type OfflineReason = 'disconnected' | 'heartbeat_timeout' | 'declared' | 'replaced' | 'unreachable' | 'registration_failed';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type LiveRecord = Mutable<TaskRecord> & { history: TaskHistoryEntry[] };

interface LiveAgent {
  readonly id: string;
  readonly tenant: string;
  readonly peer: WsPeer;
  name: string;
  model: string | undefined;
  capabilities: string[];
  status: AgentStatus;
  /** `Date.now()` of its last message, ms. */
  lastSeen: number;
  offlineReason: OfflineReason | undefined;
}

interface LiveTask {
  readonly rec: LiveRecord;
  /** The connection that assigned it (undefined after a restart). */
  readonly assigner: WsPeer | undefined;
  /** `Date.now()` of the last assignment, ms. */
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

function tenantOf(peer: WsPeer): string {
  return peer.auth?.principal.tenantId ?? 'default';
}

function unique(items: readonly string[]): string[] {
  return items.length <= 1 ? [...items] : [...new Set(items)];
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The task as the agent receives it in `task.assigned`. */
function agentTaskView(r: TaskRecord): Record<string, unknown> {
  return {
    id: r.id,
    type: r.type,
    priority: r.priority,
    payload: r.payload,
    required_capabilities: r.required_capabilities,
    status: r.status,
    agent_id: r.agent_id,
    attempts: r.attempts,
    created_at: r.created_at,
    assigned_at: r.assigned_at,
  };
}

/** The task as the assigner receives it in `task.updated`/`task.completed`/`task.failed` (no payload, no history). */
function assignerTaskView(r: TaskRecord): Record<string, unknown> {
  const { payload: _p, history: _h, tenant_id: _t, ...rest } = r;
  return rest;
}

function summary(r: TaskRecord): Omit<TaskRecord, 'history'> {
  const { history: _h, ...rest } = r;
  return rest;
}

/**
 * The `/ws` host of `agent.*` and `task.*` (see the module comment for the protocol). Lifetime:
 * construct, `await init()`, `register(api)`, add to the `/ws` endpoint; `dispose()` at shutdown.
 */
export class Orchestrator implements WsMethodHost {
  private readonly tenants = new Map<string, TenantState>();
  /** The agent each connection registered, by peer id. */
  private readonly peers = new Map<string, LiveAgent>();
  private readonly tasks: TenantRepository<TaskRecord>;
  private readonly agentWrites = new Map<string, Promise<void>>();
  private seq = 0;
  private depth = 0;
  private readonly deferred: (() => void)[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private disposed = false;

  constructor(readonly deps: OrchestratorDeps) {
    this.tasks = openTaskRepository(deps.store);
  }

  /**
   * Loads the unfinished tasks from LevelDB back into their tenants' queues, in their original
   * order (no agent is connected yet: those that were `assigned`/`in_progress` go back to `queued`
   * without failing, a restart is not the task's fault; their next assignment counts as an
   * attempt), then starts the heartbeat timer. Call once, before serving.
   */
  async init(): Promise<void> {
    const open: TaskRecord[] = [];
    for await (const rec of this.deps.store.sublevel<TaskRecord>('tasks').values()) {
      if (rec.seq > this.seq) this.seq = rec.seq;
      if (OPEN_STATUSES.has(rec.status)) open.push(rec);
    }
    open.sort((a, b) => a.seq - b.seq);
    let requeued = 0;
    this.atomic(() => {
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
    });
    const period = Math.min(5000, Math.max(20, Math.floor(this.deps.config.heartbeat_timeout_ms / 4)));
    this.timer = setInterval(() => this.atomic(() => this.checkHeartbeats(Date.now())), period);
    this.timer.unref();
    const retention = this.deps.config.finished_task_retention_ms;
    await this.sweepFinished(Date.now() - retention);
    this.sweeper = setInterval(() => {
      this.sweepFinished(Date.now() - retention).catch((err: unknown) => this.deps.log.warn('finished-task sweep failed', { error: err }));
    }, Math.min(10 * 60_000, Math.max(50, Math.floor(retention / 2))));
    this.sweeper.unref();
    this.deps.log.info('orchestration ready', { open_tasks: open.length, requeued_after_restart: requeued, strategy: this.deps.config.strategy });
  }

  /**
   * Registers `GET /api/v1/tasks?status&agent_id&type&limit&offset` → `{tasks, total, limit,
   * offset}` (creation order, without `history`) and `GET /api/v1/tasks/:id` → the task with its
   * history, or 404 NOT_FOUND; both scoped to the caller's tenant. 400 VALIDATION_ERROR for a bad
   * `status`, `limit` or `offset`.
   */
  register(api: V1Api): void {
    api.on(
      'GET',
      '/api/v1/tasks',
      {
        summary: 'List the tenant’s orchestration tasks (in creation order, without history)',
        tag: 'tasks',
        query: {
          status: { description: `Only tasks in this status: ${TASK_STATUSES.join(', ')}`, schema: { type: 'string', enum: [...TASK_STATUSES] } },
          agent_id: { description: 'Only tasks held last by this agent', schema: { type: 'string' } },
          type: { description: 'Only tasks of this type', schema: { type: 'string' } },
          ...PAGE_QUERY,
        },
        responses: { 200: { description: 'A page of tasks', schema: TASK_LIST_SCHEMA }, 400: { description: 'Bad status, limit or offset: `details.problems` names it' } },
      },
      async (req) => {
        const status = req.query.get('status');
        if (status !== null && status !== '' && !(TASK_STATUSES as readonly string[]).includes(status)) {
          throw new GatewayError('VALIDATION_ERROR', `status must be one of ${TASK_STATUSES.join(', ')}`, { problems: [`status: expected ${TASK_STATUSES.join('|')}, got ${JSON.stringify(status)}`] });
        }
        const agentId = req.query.get('agent_id');
        const type = req.query.get('type');
        await this.deps.store.writer.flush();
        const all = (await this.tasks.list(req.tenant)).filter(
          (r) => (status === null || status === '' || r.status === status) && (agentId === null || agentId === '' || r.agent_id === agentId) && (type === null || type === '' || r.type === type),
        );
        all.sort((a, b) => a.seq - b.seq);
        const page = paginate(all, req.query);
        return { status: 200, body: { tasks: page.items.map(summary), total: page.total, limit: page.limit, offset: page.offset } };
      },
    );
    api.on(
      'GET',
      '/api/v1/tasks/:id',
      { summary: 'One orchestration task, with its history', tag: 'tasks', responses: { 200: { description: 'The task', schema: TASK_SCHEMA }, 404: { description: 'No such task in the caller’s tenant' } } },
      async (req) => {
        const id = req.params['id'] ?? '';
        await this.deps.store.writer.flush();
        const rec = await this.tasks.get(req.tenant, id);
        if (rec === undefined) throw new GatewayError('NOT_FOUND', 'Task not found', { id });
        return { status: 200, body: rec };
      },
    );
  }

  /** Whether `method` is one of `agent.*` / `task.*` (unknown ones are answered METHOD_NOT_FOUND). */
  handles(method: string): boolean {
    return method.startsWith('agent.') || method.startsWith('task.');
  }

  /**
   * Handles one orchestration message of `peer` (see the module comment). Resolves the JSON-RPC
   * result; rejects with a {@link GatewayError} for a JSON-RPC error.
   */
  call(peer: WsPeer, method: string, params: Record<string, unknown> | undefined, _isNotification = false): Promise<unknown> {
    if (this.disposed) return Promise.reject(new GatewayError('SHUTTING_DOWN'));
    try {
      return Promise.resolve(this.atomic(() => this.dispatch(peer, method, params)));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * `peer`'s connection closed: its agent goes offline (`disconnected`), its tasks are re-queued.
   * Handled a microtask later, so a shutdown that closes every connection and then calls
   * {@link dispose} in the same tick (as `gateway.ts` does) leaves the tasks as they were, for
   * {@link init} to re-queue at the next start instead of spending their attempts.
   */
  closed(peer: WsPeer): void {
    if (this.disposed) return;
    queueMicrotask(() => {
      if (this.disposed) return;
      this.later(() => {
        const agent = this.peers.get(peer.id);
        if (agent !== undefined && agent.peer === peer) this.dropAgent(agent, 'disconnected');
      });
    });
  }

  /** Stops the heartbeat timer; later messages are answered SHUTTING_DOWN. Tasks stay as stored. */
  /** The live status of agent `id` of `tenant`, or undefined when it has not registered since start. */
  statusOf(tenant: string, id: string): AgentStatus | undefined {
    return this.tenants.get(tenant)?.agents.get(id)?.status;
  }

  /** Agents by status and tasks by state across tenants, for the metrics (a snapshot). */
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

  dispose(): void {
    this.disposed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * Retention: deletes completed and failed tasks whose last change (`updated_at`) is before
   * `cutoffMs` (epoch ms), in batches of 1000 through the store's batch writer. Open tasks are never
   * touched. Resolves how many went. One pass reads every stored task.
   */
  async sweepFinished(cutoffMs: number): Promise<number> {
    const sub = this.deps.store.sublevel<TaskRecord>('tasks');
    const cutoff = new Date(cutoffMs).toISOString();
    let batch: string[] = [];
    let removed = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      await this.deps.store.writer.writeAll(batch.map((k) => delOp(sub, k)));
      removed += batch.length;
      batch = [];
    };
    for await (const [key, rec] of sub.iterator()) {
      if (this.disposed) break;
      if (!OPEN_STATUSES.has(rec.status) && rec.updated_at < cutoff) {
        batch.push(key);
        if (batch.length >= 1000) await flush();
      }
    }
    await flush();
    if (removed > 0) this.deps.log.info('finished tasks deleted', { count: removed, older_than: cutoff });
    return removed;
  }

  // ---------------------------------------------------------------------------------------------
  // re-entrancy: pushes to a peer can close it synchronously (backpressure), whose close hook would
  // change the engine in the middle of an operation; such follow-ups run once the operation ends
  // ---------------------------------------------------------------------------------------------

  private atomic<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
      if (this.depth === 0 && this.deferred.length > 0) this.runDeferred();
    }
  }

  private later(fn: () => void): void {
    if (this.depth > 0) this.deferred.push(fn);
    else this.atomic(fn);
  }

  private runDeferred(): void {
    while (this.depth === 0 && this.deferred.length > 0) {
      const fn = this.deferred.shift() as () => void;
      this.depth++;
      try {
        fn();
      } catch (err) {
        this.deps.log.error('orchestration follow-up failed', { error: err });
      } finally {
        this.depth--;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // dispatch
  // ---------------------------------------------------------------------------------------------

  private dispatch(peer: WsPeer, method: string, params: Record<string, unknown> | undefined): unknown {
    if (!TASK_METHODS.has(method)) throw new GatewayError('METHOD_NOT_FOUND', `Method not found: ${method}`, { method });
    const agent = this.peers.get(peer.id);
    if (agent !== undefined) this.touch(agent);
    switch (method) {
      case 'agent.register':
        return this.registerAgent(peer, decodeParams(RegisterParams, params, method));
      case 'agent.status':
        return this.setStatus(this.requireAgent(peer, method), decodeParams(StatusParams, params, method).status);
      case 'agent.heartbeat':
        decodeParams(HeartbeatParams, params, method);
        this.requireAgent(peer, method);
        return { ok: true };
      case 'task.assign':
        return this.assign(peer, decodeParams(AssignParams, params, method));
      case 'task.update':
        return this.update(peer, decodeParams(UpdateParams, params, method));
      case 'task.complete': {
        const p = decodeParams(CompleteParams, params, method);
        const own = this.own(peer, p.task_id, method);
        return own === undefined ? this.explainMissing(peer, p.task_id, method) : this.complete(own.ts, own.live, own.agent, p.result, undefined);
      }
      default: {
        const p = decodeParams(FailParams, params, method);
        const own = this.own(peer, p.task_id, method);
        return own === undefined ? this.explainMissing(peer, p.task_id, method) : this.fail(own.ts, own.live, own.agent, p.error, p.retry === true);
      }
    }
  }

  private tenant(id: string): TenantState {
    let ts = this.tenants.get(id);
    if (ts === undefined) {
      const c = this.deps.config;
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

  private publish(event_type: OrchestrationEventType, tenant: string, fields: Record<string, unknown>): void {
    this.deps.bus.publish({ ...fields, event_type, tenant_id: tenant });
  }

  /** Sends a `notification` to `peer`; false when it is gone. */
  private push(peer: WsPeer, params: Record<string, unknown>): boolean {
    if (peer.closed) return false;
    return peer.notify('notification', params);
  }

  private tellAssigner(live: LiveTask, type: 'task.updated' | 'task.completed' | 'task.failed', reason: string | undefined): void {
    const a = live.assigner;
    if (a === undefined || a.closed) return;
    a.notify('notification', reason === undefined ? { type, task: assignerTaskView(live.rec) } : { type, reason, task: assignerTaskView(live.rec) });
  }

  private persist(rec: TaskRecord): void {
    this.deps.store.writer.writeAll(this.tasks.ops(rec.tenant_id, [rec])).catch((err: unknown) => this.deps.log.warn('task write failed', { task_id: rec.id, status: rec.status, error: err }));
  }

  private transition(rec: LiveRecord, status: TaskStatus, now: string, note?: string): void {
    rec.status = status;
    rec.updated_at = now;
    const entry: Mutable<TaskHistoryEntry> = { at: now, status };
    if (rec.agent_id !== undefined && (status === 'assigned' || status === 'in_progress' || status === 'completed' || status === 'failed')) entry.agent_id = rec.agent_id;
    if (note !== undefined) entry.note = note;
    rec.history.push(entry);
    if (rec.history.length > TASK_HISTORY_MAX) rec.history.splice(0, rec.history.length - TASK_HISTORY_MAX);
  }

  private engineTask(live: LiveTask): EngineTask {
    const r = live.rec;
    return { id: r.id, priority: r.priority, required: r.required_capabilities, target: r.target_agent_id, seq: r.seq };
  }

  // ---------------------------------------------------------------------------------------------
  // agents
  // ---------------------------------------------------------------------------------------------

  private touch(agent: LiveAgent): void {
    agent.lastSeen = Date.now();
    if (agent.status === 'offline' && agent.offlineReason === 'heartbeat_timeout') this.setStatus(agent, 'available');
  }

  private registerAgent(peer: WsPeer, p: RegisterParams): Promise<unknown> {
    const ts = this.tenant(tenantOf(peer));
    const caps = unique(p.capabilities);
    const bound = this.peers.get(peer.id);
    const agentId = p.agent_id ?? bound?.id ?? `agent-${randomUUID()}`;
    if (bound !== undefined && bound.id !== agentId) this.dropAgent(bound, 'replaced');
    const holder = ts.agents.get(agentId);
    if (holder !== undefined && holder.peer !== peer) this.dropAgent(holder, 'replaced');
    let agent = ts.agents.get(agentId);
    const now = Date.now();
    const oldStatus = agent?.status;
    if (agent === undefined) {
      agent = { id: agentId, tenant: ts.id, peer, name: p.name, model: p.model, capabilities: caps, status: 'available', lastSeen: now, offlineReason: undefined };
      ts.agents.set(agentId, agent);
      this.peers.set(peer.id, agent);
    } else {
      agent.name = p.name;
      agent.model = p.model ?? agent.model;
      agent.capabilities = caps;
      agent.status = 'available';
      agent.offlineReason = undefined;
      agent.lastSeen = now;
    }
    // not ready (given nothing) until the reply is out; then the queue drains into it
    ts.engine.upsertAgent(agentId, caps, false);
    this.publish('AgentRegistered', ts.id, { agent_id: agentId, name: p.name, capabilities: caps, model: agent.model ?? null, peer_id: peer.id });
    if (oldStatus !== undefined && oldStatus !== 'available') this.publish('AgentStatusChanged', ts.id, { agent_id: agentId, old_status: oldStatus, new_status: 'available' });
    const registered = agent;
    return this.saveAgent(registered).then(
      () => {
        setImmediate(() => {
          if (this.disposed) return;
          this.atomic(() => {
            if (ts.agents.get(agentId) !== registered) return;
            ts.engine.setReady(agentId, true);
            this.drainAgent(ts, registered);
          });
        });
        return { agent_id: agentId, status: 'available' };
      },
      (err: unknown) => {
        this.atomic(() => this.dropAgent(registered, 'registration_failed'));
        throw new GatewayError('STORE_UNAVAILABLE', `agent.register: the agent record could not be written (${errorText(err)}); retry`, { agent_id: agentId });
      },
    );
  }

  /** Creates or refreshes the agent's `AgentRecord` (fsync'd), one write at a time per agent. */
  private saveAgent(agent: LiveAgent): Promise<void> {
    const key = `${agent.tenant}\u0000${agent.id}`;
    const { name, model, capabilities } = agent;
    const prev = this.agentWrites.get(key) ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(async () => {
        const cur = await this.deps.repos.agents.get(agent.tenant, agent.id);
        const now = new Date().toISOString();
        const rec: AgentRecord =
          cur === undefined
            ? { id: agent.id, name, description: '', model: model ?? '', capabilities, configuration: {}, created_at: now, updated_at: now }
            : { ...cur, name, model: model ?? cur.model, capabilities, updated_at: now };
        await this.deps.repos.agents.put(agent.tenant, rec);
        this.deps.bus.publish({ event_type: 'StoreChanged', tags: ['agents'] });
      });
    this.agentWrites.set(key, next);
    void next
      .catch(() => undefined)
      .then(() => {
        if (this.agentWrites.get(key) === next) this.agentWrites.delete(key);
      });
    return next;
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
      if (!agent.peer.closed) agent.peer.notify('notification', { type: 'task.revoked', task_id: id, reason });
      this.requeueOrFail(ts, live, `agent ${agent.id} went offline (${reason})`, 'agent_offline');
    }
  }

  private checkHeartbeats(now: number): void {
    const limit = this.deps.config.heartbeat_timeout_ms;
    for (const ts of this.tenants.values()) {
      for (const agent of ts.agents.values()) {
        // any frame on the agent's connection counts (MCP calls, MCPW pings), not only agent.* methods
        const heard = Math.max(agent.lastSeen, agent.peer.lastMessageAt);
        if (agent.status !== 'offline' && now - heard > limit) {
          this.deps.log.info('agent missed its heartbeats', { tenant: ts.id, agent_id: agent.id, silent_ms: now - heard });
          this.goOffline(agent, 'heartbeat_timeout');
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // tasks
  // ---------------------------------------------------------------------------------------------

  private assign(peer: WsPeer, p: AssignParams): Record<string, unknown> {
    const ts = this.tenant(tenantOf(peer));
    const now = new Date().toISOString();
    const rec: LiveRecord = {
      id: `task-${randomUUID()}`,
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
    const now = Date.now();
    const iso = new Date(now).toISOString();
    rec.attempts++;
    rec.agent_id = agentId;
    rec.assigned_at = iso;
    rec.progress = 0;
    delete rec.message;
    live.assignedMs = now;
    this.transition(rec, 'assigned', iso);
    this.persist(rec);
    this.publish('TaskAssigned', ts.id, { task_id: rec.id, agent_id: agentId, type: rec.type, priority: rec.priority, attempt: rec.attempts });
    if (!this.push(agent.peer, { type: 'task.assigned', task: agentTaskView(rec) })) this.later(() => this.dropAgent(agent, 'unreachable'));
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
    const max = this.deps.config.max_attempts;
    if (mayFail && rec.attempts >= max) {
      this.failTask(ts, live, `${why}; gave up after ${rec.attempts} attempt${rec.attempts === 1 ? '' : 's'} (max_attempts ${max})`);
      return;
    }
    const previous = rec.agent_id;
    delete rec.agent_id;
    rec.progress = 0;
    delete rec.message;
    this.transition(rec, 'queued', new Date().toISOString(), why);
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
    const now = new Date().toISOString();
    rec.error = error;
    rec.completed_at = now;
    this.transition(rec, 'failed', now, error);
    ts.tasks.delete(rec.id);
    this.persist(rec);
    this.publish('TaskFailed', ts.id, { task_id: rec.id, type: rec.type, error, attempts: rec.attempts, ...(rec.agent_id === undefined ? {} : { agent_id: rec.agent_id }) });
    this.tellAssigner(live, 'task.failed', undefined);
  }

  /**
   * The task `taskId` of `peer`'s tenant held by `peer`'s agent; undefined when it is not
   * unfinished (see {@link explainMissing}).
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

  /** Why `taskId` is not an unfinished task of `peer`'s tenant: NOT_FOUND, FORBIDDEN or CONFLICT (always rejects). */
  private async explainMissing(peer: WsPeer, taskId: string, method: string): Promise<never> {
    const tenant = tenantOf(peer);
    await this.deps.store.writer.flush();
    const rec = await this.tasks.get(tenant, taskId);
    if (rec === undefined) throw new GatewayError('NOT_FOUND', `${method}: task ${taskId} not found`, { task_id: taskId });
    const agent = this.peers.get(peer.id);
    if (agent === undefined || rec.agent_id !== agent.id) {
      throw new GatewayError('FORBIDDEN', `${method}: only the agent task ${taskId} was assigned to may report on it`, { task_id: taskId, ...(rec.agent_id === undefined ? {} : { agent_id: rec.agent_id }) });
    }
    throw new GatewayError('CONFLICT', `${method}: task ${taskId} is already ${rec.status}`, { task_id: taskId, status: rec.status });
  }

  private update(peer: WsPeer, p: UpdateParams): unknown {
    const own = this.own(peer, p.task_id, 'task.update');
    if (own === undefined) return this.explainMissing(peer, p.task_id, 'task.update');
    const { ts, live, agent } = own;
    if (p.status === 'completed') return this.complete(ts, live, agent, undefined, p.message);
    if (p.status === 'failed') return this.fail(ts, live, agent, p.message ?? 'the agent reported failure', false);
    const rec = live.rec;
    const now = new Date().toISOString();
    if (p.progress !== undefined) rec.progress = p.progress;
    if (p.message !== undefined) rec.message = p.message;
    if (p.status === 'in_progress' && rec.status !== 'in_progress') this.transition(rec, 'in_progress', now);
    else rec.updated_at = now;
    this.persist(rec);
    this.publish('TaskUpdated', ts.id, { task_id: rec.id, agent_id: agent.id, status: rec.status, progress: rec.progress, ...(p.message === undefined ? {} : { message: p.message }) });
    this.tellAssigner(live, 'task.updated', 'progress');
    return { task_id: rec.id, status: rec.status, progress: rec.progress };
  }

  private complete(ts: TenantState, live: LiveTask, agent: LiveAgent, result: unknown, message: string | undefined): Record<string, unknown> {
    const rec = live.rec;
    ts.engine.finish(agent.id, rec.id);
    const now = Date.now();
    const iso = new Date(now).toISOString();
    rec.progress = 100;
    if (result !== undefined) rec.result = result;
    if (message !== undefined) rec.message = message;
    rec.completed_at = iso;
    this.transition(rec, 'completed', iso);
    ts.tasks.delete(rec.id);
    this.persist(rec);
    this.publish('TaskCompleted', ts.id, { task_id: rec.id, agent_id: agent.id, type: rec.type, attempts: rec.attempts, duration_ms: now - live.assignedMs });
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
