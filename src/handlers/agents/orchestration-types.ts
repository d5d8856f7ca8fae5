/**
 * The vocabulary of the orchestration reducer (`orchestration-state.ts`): its commands, effects and
 * replies, and the task views the peers receive (developer-mesh "Task Assignment Notification",
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md).
 */
import type { GatewayConfig } from '../../config/schema.js';
import type { OrchestrationEventType } from '../../streams/events.js';
import type { WsPeer } from '../../streams/ws-methods.js';
import type { TaskRecord } from './records.js';

/** Why an agent went offline (field `reason` of `AgentOffline`). */
export type OfflineReason = 'disconnected' | 'heartbeat_timeout' | 'declared' | 'replaced' | 'unreachable' | 'registration_failed';

/** An agent bound to a connection, as the sinks see it (identity matters: a newer registration is another handle). */
export interface AgentHandle {
  readonly id: string;
  readonly tenant: string;
}

/** What the reducer reacts to. `now` is epoch ms. */
export type OrchestrationCommand =
  /** Unfinished tasks read back at start, in their original order; `maxSeq` the largest stored `seq`. Reply: how many were re-queued from an agent. */
  | { readonly type: 'restore'; readonly open: readonly TaskRecord[]; readonly maxSeq: number; readonly now: number }
  /** An `agent.*`/`task.*` message of `peer`. */
  | { readonly type: 'call'; readonly peer: WsPeer; readonly method: string; readonly params: Record<string, unknown> | undefined; readonly now: number }
  /** `peer`'s connection closed. */
  | { readonly type: 'closed'; readonly peer: WsPeer; readonly now: number }
  /** A `task.assigned` to `agent` could not be sent. */
  | { readonly type: 'unreachable'; readonly agent: AgentHandle; readonly now: number }
  /** `agent`'s record is written and its `agent.register` reply is out: it may take tasks. */
  | { readonly type: 'agentReady'; readonly agent: AgentHandle; readonly now: number }
  /** `agent`'s record could not be written: the registration is undone. */
  | { readonly type: 'registrationFailed'; readonly agent: AgentHandle; readonly now: number }
  /** The heartbeat check. */
  | { readonly type: 'tick'; readonly now: number };

/** What the sinks do, in order. */
export type OrchestrationEffect =
  /** Write this task record (a snapshot: later steps do not change it). */
  | { readonly kind: 'persist'; readonly record: TaskRecord }
  /** Publish this event on the bus. */
  | { readonly kind: 'publish'; readonly event: { readonly event_type: OrchestrationEventType; readonly tenant_id: string } & Readonly<Record<string, unknown>> }
  /**
   * Send `{"method":"notification","params":…}` to `peer` unless it is closed; when `unreachable`
   * is set and the send fails (closed, or over its backpressure limit), feed back an
   * `unreachable` command for that agent.
   */
  | { readonly kind: 'notify'; readonly peer: WsPeer; readonly params: Readonly<Record<string, unknown>>; readonly unreachable?: AgentHandle }
  | { readonly kind: 'log'; readonly message: string; readonly fields: Readonly<Record<string, unknown>> };

/** The answer to a command (`call` and `restore` only). */
export type OrchestrationReply =
  | { readonly kind: 'result'; readonly value: unknown }
  | { readonly kind: 'error'; readonly error: unknown }
  /** Write `agent`'s record, then answer `{agent_id, status:"available"}` and send `agentReady` (or `registrationFailed`). */
  | { readonly kind: 'saveAgent'; readonly agent: AgentHandle; readonly name: string; readonly model: string | undefined; readonly capabilities: readonly string[] }
  /** `taskId` is not an unfinished task of `peer`'s tenant: look it up in the store to say why. */
  | { readonly kind: 'explainMissing'; readonly peer: WsPeer; readonly taskId: string; readonly method: string };

/** One step's outcome. */
export interface OrchestrationStep {
  readonly effects: readonly OrchestrationEffect[];
  readonly reply: OrchestrationReply | undefined;
}

/** The reducer's tuning and id source. */
export interface OrchestrationOptions {
  readonly config: Pick<GatewayConfig['orchestration'], 'strategy' | 'max_queued_tasks' | 'max_tasks_per_agent' | 'max_attempts' | 'heartbeat_timeout_ms'>;
  /** A new unique id with this prefix (`task`, `agent`): `${prefix}-<uuid>` in the gateway. */
  readonly newId: (prefix: 'task' | 'agent') => string;
}


/** The tenant of `peer`: its principal's, `default` without auth. */
export function tenantOf(peer: WsPeer): string {
  return peer.auth?.principal.tenantId ?? 'default';
}

/** The task as the agent receives it in `task.assigned`. */
export function agentTaskView(r: TaskRecord): Record<string, unknown> {
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
export function assignerTaskView(r: TaskRecord): Record<string, unknown> {
  const { payload: _p, history: _h, tenant_id: _t, ...rest } = r;
  return rest;
}

