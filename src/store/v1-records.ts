/**
 * Records of the REST `/api/v1` entities (developer-mesh MCP Server API reference,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md), stored per tenant in {@link TenantRepository}s, one sublevel each.
 * Timestamps are ISO-8601 UTC; ids carry their kind's prefix.
 */
import type { Store } from './open.js';
import { TenantRepository } from './tenant-repo.js';

/** One message of a context. */
export interface ContextMessage {
  readonly role: string;
  readonly content: string;
  /** ISO-8601 UTC, when it was appended. */
  readonly timestamp: string;
}

export interface ContextRecord {
  /** `ctx-<uuid>` */
  readonly id: string;
  readonly agent_id: string;
  readonly session_id: string;
  readonly content: readonly ContextMessage[];
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface AgentRecord {
  /** `agent-<uuid>` */
  readonly id: string;
  readonly name: string;
  readonly description: string;
  /** A model id or name. */
  readonly model: string;
  readonly capabilities: readonly string[];
  readonly configuration: Readonly<Record<string, unknown>>;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface ModelRecord {
  /** `model-<uuid>` */
  readonly id: string;
  readonly name: string;
  readonly provider: string;
  readonly type: string;
  readonly configuration: Readonly<Record<string, unknown>>;
  readonly created_at: string;
  readonly updated_at: string;
}

/** Entity kinds a relationship can join. */
export type EntityKind = 'context' | 'agent' | 'model' | 'tool' | 'tool_execution';

export interface RelationshipRecord {
  /** `rel-<uuid>` */
  readonly id: string;
  readonly source_type: EntityKind;
  readonly source_id: string;
  readonly target_type: EntityKind;
  readonly target_id: string;
  /** e.g. `triggered_by`, `uses`, `references`. */
  readonly relationship_type: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly created_at: string;
}

/** The v1 repositories over one store. */
export interface V1Store {
  readonly store: Store;
  readonly contexts: TenantRepository<ContextRecord>;
  readonly agents: TenantRepository<AgentRecord>;
  readonly models: TenantRepository<ModelRecord>;
  readonly relationships: TenantRepository<RelationshipRecord>;
}

/** Opens the v1 repositories (sublevels `contexts`, `agents`, `models`, `relationships`). */
export function openV1Store(store: Store): V1Store {
  return {
    store,
    contexts: new TenantRepository(store.db, store.sublevel<ContextRecord>('contexts')),
    agents: new TenantRepository(store.db, store.sublevel<AgentRecord>('agents')),
    models: new TenantRepository(store.db, store.sublevel<ModelRecord>('models')),
    relationships: new TenantRepository(store.db, store.sublevel<RelationshipRecord>('relationships')),
  };
}
