/**
 * What the `/api/v1` handler modules offer each other: the tool-action routes append to
 * contexts and record `triggered_by` relationships; context deletion removes relationships. Each
 * interface is implemented by one module and injected into the others by the composition root.
 */
import type { BatchOp } from '../../store/batcher.js';
import type { ContextMessage, EntityKind, RelationshipRecord } from '../../store/v1-records.js';

/** Relationship bookkeeping (implemented in `relationships.ts`). */
export interface Relationships {
  /**
   * Records a relationship. Ends of kind `context` or `agent` must exist in `tenant`.
   * @throws GatewayError UNPROCESSABLE_ENTITY (422) naming the missing end.
   */
  create(
    tenant: string,
    input: {
      readonly source_type: EntityKind;
      readonly source_id: string;
      readonly target_type: EntityKind;
      readonly target_id: string;
      readonly relationship_type: string;
      readonly metadata?: Readonly<Record<string, unknown>>;
    },
  ): Promise<RelationshipRecord>;
  /**
   * Commits `entityOps` (an entity's deletion) together with the deletion of every relationship
   * of `tenant` with `id` at either end, in one batch serialised with relationship creations;
   * publishes `RelationshipDeleted` for each. Resolves how many relationships went.
   */
  deleteWith(tenant: string, id: string, entityOps: readonly BatchOp[]): Promise<number>;
}

/** Context appends (implemented in `contexts.ts`). */
export interface Contexts {
  /**
   * Appends messages (timestamped now) to context `id` of `tenant`, keeping the search index in step.
   * @throws GatewayError NOT_FOUND (404) when there is no such context in `tenant`.
   */
  append(tenant: string, id: string, messages: readonly Pick<ContextMessage, 'role' | 'content'>[]): Promise<void>;
  /** Whether context `id` exists in `tenant`. */
  exists(tenant: string, id: string): Promise<boolean>;
}
