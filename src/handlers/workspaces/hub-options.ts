/**
 * What the collaborative workspace hub (`hub.ts`) needs, its defaults and limits, and its
 * counters.
 */
import type { GatewayConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { Store } from '../../store/open.js';
import type { EventBus } from '../../streams/events.js';

/** What the hub needs; the optional fields tune internals (tests). */
export interface WorkspaceHubDeps {
  /** LevelDB: the `documents` sublevel and the batch writer. */
  readonly store: Store;
  /** Domain events are published here. */
  readonly bus: EventBus;
  readonly log: Logger;
  /** `workspaces` of the gateway config: lock_ttl_ms, cursor_audit_ms (ms), max_document_bytes (bytes), max_members. */
  readonly config: GatewayConfig['workspaces'];
  /** Coalescing interval of document writes, ms (default `DOCUMENT_WRITE_INTERVAL_MS` of `persistence.ts`, 100). */
  readonly documentWriteIntervalMs?: number;
  /** Presence is skipped for a peer with more outbound bytes buffered than this, bytes (default {@link PRESENCE_SKIP_BYTES}). */
  readonly presenceSkipBytes?: number;
  /** Workspaces one peer may be a member of at once (default {@link MAX_WORKSPACES_PER_PEER}). */
  readonly maxWorkspacesPerPeer?: number;
  /** Documents one workspace may hold (default {@link MAX_DOCUMENTS_PER_WORKSPACE}). */
  readonly maxDocumentsPerWorkspace?: number;
}

/** Default of {@link WorkspaceHubDeps.presenceSkipBytes}: 64 KiB. */
export const PRESENCE_SKIP_BYTES = 64 * 1024;
/** Default of {@link WorkspaceHubDeps.maxWorkspacesPerPeer}. */
export const MAX_WORKSPACES_PER_PEER = 64;
/** Default of {@link WorkspaceHubDeps.maxDocumentsPerWorkspace}. */
export const MAX_DOCUMENTS_PER_WORKSPACE = 1000;
/** Largest `position` / `selection`, as JSON text, characters. */
export const MAX_PRESENCE_CHARS = 4096;
/** The notification method of everything the hub pushes (developer-mesh "Collaborative Workspace Updates"). */
export const WORKSPACE_UPDATE = 'workspace.update';

/** Counters for metrics and tests. */
export interface WorkspaceHubCounters {
  /** Workspaces in memory. */
  readonly workspaces: number;
  /** Memberships (a peer in two workspaces counts twice). */
  readonly members: number;
  /** Document states written to LevelDB. */
  readonly documentWrites: number;
  readonly documentWriteFailures: number;
  /** Presence notifications sent. */
  readonly presenceSent: number;
  /** Presence notifications skipped for slow peers. */
  readonly presenceSkipped: number;
}
