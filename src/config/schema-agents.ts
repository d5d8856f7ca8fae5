/** Codecs of the `/ws` agent surfaces: task orchestration and collaborative workspaces. */
import * as t from 'io-ts';
import { PositiveInt } from './schema-primitives.js';

/** Agent orchestration on `/ws`. */
export const OrchestrationConfig = t.exact(
  t.partial({
    /** How an available agent is picked among those whose capabilities cover a task (default least_loaded). */
    strategy: t.keyof({ least_loaded: null, round_robin: null }),
    /** An agent silent (no heartbeat or other message) this long goes offline, ms (default 30000). */
    heartbeat_timeout_ms: PositiveInt,
    /** Tasks waiting for an eligible agent, per tenant, before task.assign is refused (default 1000). */
    max_queued_tasks: PositiveInt,
    /** Assignments of one task before it fails when its agents keep going offline (default 3). */
    max_attempts: PositiveInt,
    /** Tasks one agent holds at once (default 10). */
    max_tasks_per_agent: PositiveInt,
    /** Completed and failed tasks are deleted this long after their last change, ms (default 7 days). */
    finished_task_retention_ms: PositiveInt,
  }),
);

/** Collaborative workspaces on `/ws`. */
export const WorkspacesConfig = t.exact(
  t.partial({
    /** Lease of a document lock unless renewed, ms (default 30000). */
    lock_ttl_ms: PositiveInt,
    /** Cursor and selection broadcasts are coalesced per member over this window, ms (default 50). */
    cursor_audit_ms: PositiveInt,
    /** Largest merged document state, bytes (default 8 MiB). */
    max_document_bytes: PositiveInt,
    /** Members of one workspace at once (default 256). */
    max_members: PositiveInt,
  }),
);
