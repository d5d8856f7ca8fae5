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
import type { EventBus } from '../../streams/events.js';
import type { WsMethodHost, WsPeer } from '../../streams/ws-methods.js';
import type { V1Api } from '../rest/v1-api.js';
import type { AgentStatus } from './engine.js';
import { OrchestrationState } from './orchestration-state.js';
import { tenantOf, type AgentHandle, type OrchestrationCommand, type OrchestrationEffect, type OrchestrationReply } from './orchestration-types.js';
import { OPEN_STATUSES, openTaskRepository, type TaskRecord } from './records.js';
import { registerTaskRoutes } from './task-routes.js';

export type { TaskRecord, TaskStatus } from './records.js';
export type { OfflineReason } from './orchestration-types.js';

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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The `/ws` host of `agent.*` and `task.*` (see the module comment for the protocol): the sinks
 * around the {@link OrchestrationState} reducer. Each message, connection close and heartbeat
 * check becomes a command; the step's effects are carried out in order (LevelDB writes through
 * the batch writer, bus events, notifications to peers, logs) and the results that arrive later
 * (the agent record written, a notification that could not be sent) go back in as commands.
 * Lifetime: construct, `await init()`, `register(api)`, add to the `/ws` endpoint; `dispose()` at
 * shutdown.
 */
export class Orchestrator implements WsMethodHost {
  private readonly state: OrchestrationState;
  private readonly tasks: TenantRepository<TaskRecord>;
  private readonly agentWrites = new Map<string, Promise<void>>();
  /** Steps under way (a sink can cause a command while effects run: it waits in `pending`). */
  private depth = 0;
  private readonly pending: OrchestrationCommand[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private disposed = false;

  constructor(readonly deps: OrchestratorDeps) {
    this.tasks = openTaskRepository(deps.store);
    this.state = new OrchestrationState({ config: deps.config, newId: (prefix) => `${prefix}-${randomUUID()}` });
  }

  /**
   * Loads the unfinished tasks from LevelDB back into their tenants' queues, in their original
   * order (no agent is connected yet: those that were `assigned`/`in_progress` go back to `queued`
   * without failing, a restart is not the task's fault; their next assignment counts as an
   * attempt), then starts the heartbeat timer. Call once, before serving.
   */
  async init(): Promise<void> {
    const open: TaskRecord[] = [];
    let maxSeq = 0;
    for await (const rec of this.deps.store.sublevel<TaskRecord>('tasks').values()) {
      if (rec.seq > maxSeq) maxSeq = rec.seq;
      if (OPEN_STATUSES.has(rec.status)) open.push(rec);
    }
    open.sort((a, b) => a.seq - b.seq);
    const reply = this.run({ type: 'restore', open, maxSeq, now: Date.now() });
    const requeued = reply?.kind === 'result' ? reply.value : 0;
    const period = Math.min(5000, Math.max(20, Math.floor(this.deps.config.heartbeat_timeout_ms / 4)));
    this.timer = setInterval(() => this.run({ type: 'tick', now: Date.now() }), period);
    this.timer.unref();
    const retention = this.deps.config.finished_task_retention_ms;
    await this.sweepFinished(Date.now() - retention);
    this.sweeper = setInterval(() => {
      this.sweepFinished(Date.now() - retention).catch((err: unknown) => this.deps.log.warn('finished-task sweep failed', { error: err }));
    }, Math.min(10 * 60_000, Math.max(50, Math.floor(retention / 2))));
    this.sweeper.unref();
    this.deps.log.info('orchestration ready', { open_tasks: open.length, requeued_after_restart: requeued, strategy: this.deps.config.strategy });
  }

  /** Registers the `/api/v1/tasks*` routes (see `task-routes.ts`). */
  register(api: V1Api): void {
    registerTaskRoutes(api, this.deps.store, this.tasks);
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
    const reply = this.run({ type: 'call', peer, method, params, now: Date.now() });
    return this.answer(reply);
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
      this.later({ type: 'closed', peer, now: Date.now() });
    });
  }

  /** The live status of agent `id` of `tenant`, or undefined when it has not registered since start. */
  statusOf(tenant: string, id: string): AgentStatus | undefined {
    return this.state.statusOf(tenant, id);
  }

  /** Agents by status and tasks by state across tenants, for the metrics (a snapshot). */
  get stats(): { readonly agents: Readonly<Record<AgentStatus, number>>; readonly queued: number; readonly inFlight: number } {
    return this.state.stats;
  }

  /** Stops the heartbeat timer; later messages are answered SHUTTING_DOWN. Tasks stay as stored. */
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

  // -- the sinks ----------------------------------------------------------------------------

  /**
   * One step, then its effects in order; commands the effects cause (an unreachable agent) wait
   * until the outermost step's effects are all done, then run in arrival order.
   */
  private run(command: OrchestrationCommand): OrchestrationReply | undefined {
    const { effects, reply } = this.state.step(command);
    this.depth++;
    try {
      for (const effect of effects) this.carryOut(effect);
    } finally {
      this.depth--;
    }
    if (command.type !== 'call' && reply?.kind === 'error') this.deps.log.error('orchestration follow-up failed', { error: reply.error });
    if (this.depth === 0) this.runPending();
    return reply;
  }

  /** Runs `command` now, or after the step under way. */
  private later(command: OrchestrationCommand): void {
    if (this.depth > 0) this.pending.push(command);
    else this.run(command);
  }

  private runPending(): void {
    while (this.depth === 0 && this.pending.length > 0) this.run(this.pending.shift() as OrchestrationCommand);
  }

  private carryOut(effect: OrchestrationEffect): void {
    switch (effect.kind) {
      case 'persist': {
        const rec = effect.record;
        this.deps.store.writer.writeAll(this.tasks.ops(rec.tenant_id, [rec])).catch((err: unknown) => this.deps.log.warn('task write failed', { task_id: rec.id, status: rec.status, error: err }));
        return;
      }
      case 'publish':
        this.deps.bus.publish(effect.event);
        return;
      case 'notify': {
        const sent = !effect.peer.closed && effect.peer.notify('notification', effect.params);
        if (!sent && effect.unreachable !== undefined) this.pending.push({ type: 'unreachable', agent: effect.unreachable, now: Date.now() });
        return;
      }
      case 'log':
        this.deps.log.info(effect.message, effect.fields);
        return;
    }
  }

  /** The promise a `call` answers with, for the step's reply. */
  private answer(reply: OrchestrationReply | undefined): Promise<unknown> {
    if (reply === undefined) return Promise.resolve(undefined);
    switch (reply.kind) {
      case 'result':
        return Promise.resolve(reply.value);
      case 'error':
        return Promise.reject(asError(reply.error));
      case 'explainMissing':
        return this.explainMissing(reply.peer, reply.taskId, reply.method);
      case 'saveAgent': {
        const { agent } = reply;
        return this.saveAgent(agent, reply.name, reply.model, reply.capabilities).then(
          () => {
            setImmediate(() => {
              if (!this.disposed) this.later({ type: 'agentReady', agent, now: Date.now() });
            });
            return { agent_id: agent.id, status: 'available' };
          },
          (err: unknown) => {
            this.later({ type: 'registrationFailed', agent, now: Date.now() });
            throw new GatewayError('STORE_UNAVAILABLE', `agent.register: the agent record could not be written (${errorText(err)}); retry`, { agent_id: agent.id });
          },
        );
      }
    }
  }

  /** Creates or refreshes the agent's `AgentRecord` (fsync'd), one write at a time per agent. */
  private saveAgent(agent: AgentHandle, name: string, model: string | undefined, capabilities: readonly string[]): Promise<void> {
    const key = `${agent.tenant}\u0000${agent.id}`;
    const prev = this.agentWrites.get(key) ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(async () => {
        const cur = await this.deps.repos.agents.get(agent.tenant, agent.id);
        const now = new Date().toISOString();
        const rec: AgentRecord =
          cur === undefined
            ? { id: agent.id, name, description: '', model: model ?? '', capabilities: [...capabilities], configuration: {}, created_at: now, updated_at: now }
            : { ...cur, name, model: model ?? cur.model, capabilities: [...capabilities], updated_at: now };
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

  /** Why `taskId` is not an unfinished task of `peer`'s tenant: NOT_FOUND, FORBIDDEN or CONFLICT (always rejects). */
  private async explainMissing(peer: WsPeer, taskId: string, method: string): Promise<never> {
    const tenant = tenantOf(peer);
    await this.deps.store.writer.flush();
    const rec = await this.tasks.get(tenant, taskId);
    if (rec === undefined) throw new GatewayError('NOT_FOUND', `${method}: task ${taskId} not found`, { task_id: taskId });
    const agentId = this.state.agentIdOf(peer);
    if (agentId === undefined || rec.agent_id !== agentId) {
      throw new GatewayError('FORBIDDEN', `${method}: only the agent task ${taskId} was assigned to may report on it`, { task_id: taskId, ...(rec.agent_id === undefined ? {} : { agent_id: rec.agent_id }) });
    }
    throw new GatewayError('CONFLICT', `${method}: task ${taskId} is already ${rec.status}`, { task_id: taskId, status: rec.status });
  }
}
