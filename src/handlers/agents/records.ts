/**
 * Task records of agent orchestration as stored in LevelDB (sublevel `tasks`, keys
 * `<tenant>\u0000<task id>` through {@link TenantRepository}) and served by `GET /api/v1/tasks*`.
 * Timestamps are ISO-8601 UTC.
 */
import type { JsonSchema } from '../../codecs/schema.js';
import type { Store } from '../../store/open.js';
import { TenantRepository } from '../../store/tenant-repo.js';
import type { TaskPriority } from './engine.js';

/** A task's lifecycle: queued → assigned → in_progress → completed | failed (back to queued when its agent goes away). */
export type TaskStatus = 'queued' | 'assigned' | 'in_progress' | 'completed' | 'failed';

/** Every {@link TaskStatus}. */
export const TASK_STATUSES: readonly TaskStatus[] = ['queued', 'assigned', 'in_progress', 'completed', 'failed'];

/** Statuses of a task still in the orchestrator's hands (reloaded into the queue at start). */
export const OPEN_STATUSES: ReadonlySet<TaskStatus> = new Set(['queued', 'assigned', 'in_progress']);

/** One transition of a task. */
export interface TaskHistoryEntry {
  /** ISO-8601 UTC. */
  readonly at: string;
  readonly status: TaskStatus;
  /** The agent holding the task after the transition, if any. */
  readonly agent_id?: string;
  /** Why (e.g. `agent agent-1 went offline (disconnected)`). */
  readonly note?: string;
}

/** Most history entries kept per task (the oldest are dropped). */
export const TASK_HISTORY_MAX = 32;

/** A task as stored and served. */
export interface TaskRecord {
  /** `task-<uuid>` */
  readonly id: string;
  readonly tenant_id: string;
  /** Creation order, increasing across restarts (lists sort by it; FIFO within a priority). */
  readonly seq: number;
  /** What kind of task (free text, e.g. `code_review`). */
  readonly type: string;
  readonly priority: TaskPriority;
  readonly status: TaskStatus;
  /** Capabilities an agent needs to take it (no duplicates). */
  readonly required_capabilities: readonly string[];
  /** What the assigner sent for the agent (JSON object, ≤ 1 MiB). */
  readonly payload: Readonly<Record<string, unknown>>;
  /** The agent holding it (assigned/in_progress), or the last one that held it (completed/failed). */
  readonly agent_id?: string;
  /** The explicit `agent_id` of `task.assign`: only that agent may take it. */
  readonly target_agent_id?: string;
  /**
   * The `/ws` connection (`peer-<n>`) that sent `task.assign`; notified while connected. Peer ids
   * restart with the process, so after a restart this names nobody.
   */
  readonly assigner_peer_id?: string;
  /** Times it was handed to an agent. */
  readonly attempts: number;
  /** 0..100, as the agent last reported. */
  readonly progress: number;
  /** The agent's last free-text update. */
  readonly message?: string;
  /** What `task.complete` sent (any JSON value). */
  readonly result?: unknown;
  /** Why it failed. */
  readonly error?: string;
  readonly created_at: string;
  readonly updated_at: string;
  /** When it was last handed to an agent. */
  readonly assigned_at?: string;
  /** When it completed or failed. */
  readonly completed_at?: string;
  /** The last {@link TASK_HISTORY_MAX} transitions, oldest first. */
  readonly history: readonly TaskHistoryEntry[];
}

/** The task repository over sublevel `tasks` of `store`. */
export function openTaskRepository(store: Store): TenantRepository<TaskRecord> {
  return new TenantRepository(store.db, store.sublevel<TaskRecord>('tasks'));
}

const TIMESTAMP: JsonSchema = { type: 'string', format: 'date-time', description: 'ISO-8601 UTC' };
const STATUS: JsonSchema = { type: 'string', enum: [...TASK_STATUSES] };

const TASK_PROPS: Record<string, JsonSchema> = {
  id: { type: 'string', pattern: '^task-', description: '`task-<uuid>`' },
  tenant_id: { type: 'string' },
  seq: { type: 'integer', minimum: 1, description: 'Creation order' },
  type: { type: 'string' },
  priority: { type: 'string', enum: ['low', 'normal', 'high', 'critical'] },
  status: STATUS,
  required_capabilities: { type: 'array', items: { type: 'string' } },
  payload: { type: 'object', description: 'What the assigner sent for the agent' },
  agent_id: { type: 'string', description: 'The agent holding it, or the last one that did' },
  target_agent_id: { type: 'string', description: 'Only this agent may take it (explicit `agent_id` of `task.assign`)' },
  assigner_peer_id: { type: 'string', description: 'The `/ws` connection that assigned it (`peer-<n>`, per process)' },
  attempts: { type: 'integer', minimum: 0, description: 'Times it was handed to an agent' },
  progress: { type: 'number', minimum: 0, maximum: 100 },
  message: { type: 'string' },
  result: { description: 'What `task.complete` sent' },
  error: { type: 'string' },
  created_at: TIMESTAMP,
  updated_at: TIMESTAMP,
  assigned_at: TIMESTAMP,
  completed_at: TIMESTAMP,
};
const REQUIRED = ['id', 'tenant_id', 'seq', 'type', 'priority', 'status', 'required_capabilities', 'payload', 'attempts', 'progress', 'created_at', 'updated_at'];

/** JSON Schema of a task without `history` (list items). */
export const TASK_SUMMARY_SCHEMA: JsonSchema = { type: 'object', required: REQUIRED, properties: TASK_PROPS };

/** JSON Schema of a task with its `history` (`GET /api/v1/tasks/:id`). */
export const TASK_SCHEMA: JsonSchema = {
  type: 'object',
  required: [...REQUIRED, 'history'],
  properties: {
    ...TASK_PROPS,
    history: {
      type: 'array',
      description: `The last ${TASK_HISTORY_MAX} transitions, oldest first`,
      items: { type: 'object', required: ['at', 'status'], properties: { at: TIMESTAMP, status: STATUS, agent_id: { type: 'string' }, note: { type: 'string' } } },
    },
  },
};

/** JSON Schema of `GET /api/v1/tasks`. */
export const TASK_LIST_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['tasks', 'total', 'limit', 'offset'],
  properties: { tasks: { type: 'array', items: TASK_SUMMARY_SCHEMA }, total: { type: 'integer', minimum: 0 }, limit: { type: 'integer' }, offset: { type: 'integer' } },
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A task record being changed in memory (the orchestration reducer's own copy). */
export type LiveRecord = Mutable<TaskRecord> & { history: TaskHistoryEntry[] };

/**
 * Moves `rec` to `status` at `at` (ISO-8601) and appends the history entry (with the agent for
 * assigned/in_progress/completed/failed, and `note`), keeping the newest {@link TASK_HISTORY_MAX}.
 */
export function transition(rec: LiveRecord, status: TaskStatus, at: string, note?: string): void {
  rec.status = status;
  rec.updated_at = at;
  const entry: Mutable<TaskHistoryEntry> = { at, status };
  if (rec.agent_id !== undefined && (status === 'assigned' || status === 'in_progress' || status === 'completed' || status === 'failed')) entry.agent_id = rec.agent_id;
  if (note !== undefined) entry.note = note;
  rec.history.push(entry);
  if (rec.history.length > TASK_HISTORY_MAX) rec.history.splice(0, rec.history.length - TASK_HISTORY_MAX);
}
