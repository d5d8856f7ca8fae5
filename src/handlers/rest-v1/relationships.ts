/**
 * Relationships over `/api/v1/relationships` (developer-mesh MCP Server API reference, https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md, "Relationship
 * Management"), and the {@link Relationships} service the other v1 modules use (tool actions
 * record `triggered_by` context → tool_execution; context, agent and model deletion remove the
 * relationships naming them).
 *
 * A relationship joins two entities, each given by kind ({@link EntityKind}: `context`, `agent`,
 * `model`, `tool`, `tool_execution`) and id. Ends of kind `context`, `agent` and `model` must exist
 * in the caller's tenant (422 otherwise); `tool` and `tool_execution` ends are taken as given.
 * Duplicates — the same source_type, source_id, target_type, target_id and relationship_type —
 * are refused with 409 CONFLICT whose `details.existing_id` names the stored one (so 201 always
 * means "created"); `metadata` does not take part in that comparison.
 *
 * Shapes follow the source document: creation answers 201 with the record itself
 * (`{"id":"rel-…","source_type",…,"relationship_type","metadata","created_at"}`), the list
 * answers `{"relationships":[…],"total","limit","offset"}`, `DELETE` answers `{"status":"deleted"}`.
 * Each change publishes `RelationshipCreated`/`RelationshipDeleted`
 * (`{event_type, id, tenant_id, source_type, source_id, target_type, target_id, relationship_type}`)
 * and then `{event_type:"StoreChanged", tags:["relationships"]}`.
 */
import * as t from 'io-ts';
import { GatewayError } from '../../base/errors.js';
import { decodeBody, type JsonSchema } from '../../codecs/schema.js';
import type { Logger } from '../../log/logger.js';
import type { BatchOp } from '../../store/batcher.js';
import { commitAll } from '../../store/tenant-repo.js';
import type { EventBus } from '../../streams/events.js';
import type { EntityKind, RelationshipRecord, V1Store } from '../../store/v1-records.js';
import { newId, nowIso, paginate, PAGE_QUERY, type V1Api } from '../rest/v1-api.js';
import type { Relationships } from './contracts.js';
import { boundedString, DELETED_SCHEMA, JsonObject } from './entities.js';
import { KeyedQueue } from '../../streams/keyed-queue.js';

const KINDS: Record<EntityKind, null> = { context: null, agent: null, model: null, tool: null, tool_execution: null };

/** An {@link EntityKind}: `context`, `agent`, `model`, `tool` or `tool_execution`. */
export const EntityKindCodec = t.keyof(KINDS, 'EntityKind');

const EntityId = boundedString(1, 256, 'The id of the entity at this end (`ctx-…`, `agent-…`, `model-…`, a tool name, `exec-…`)', { noControl: true });

/**
 * `POST /api/v1/relationships` body (developer-mesh "Create Relationship"): both ends by kind and
 * id, a `relationship_type` (1..100 characters, e.g. `triggered_by`, `uses`, `references`), and
 * optional `metadata` (a JSON object ≤ 64 KiB, default `{}`). Unknown fields are refused (400).
 */
export const CreateRelationshipBody = t.exact(
  t.intersection([
    t.type({
      source_type: EntityKindCodec,
      source_id: EntityId,
      target_type: EntityKindCodec,
      target_id: EntityId,
      relationship_type: boundedString(1, 100, 'What the relationship means, e.g. `triggered_by`, `uses`, `references`', { noControl: true }),
    }),
    t.partial({ metadata: JsonObject }),
  ]),
  'CreateRelationshipBody',
);
export type CreateRelationshipBody = t.TypeOf<typeof CreateRelationshipBody>;

const RELATIONSHIP_PROPS = {
  id: { type: 'string', pattern: '^rel-', description: '`rel-<uuid>`' },
  source_type: { type: 'string', enum: Object.keys(KINDS) },
  source_id: { type: 'string' },
  target_type: { type: 'string', enum: Object.keys(KINDS) },
  target_id: { type: 'string' },
  relationship_type: { type: 'string' },
  metadata: { type: 'object' },
  created_at: { type: 'string', format: 'date-time', description: 'ISO-8601 UTC' },
};
const RELATIONSHIP: JsonSchema = { type: 'object', required: Object.keys(RELATIONSHIP_PROPS), properties: RELATIONSHIP_PROPS };
const RELATIONSHIP_LIST: JsonSchema = {
  type: 'object',
  required: ['relationships', 'total', 'limit', 'offset'],
  properties: { relationships: { type: 'array', items: RELATIONSHIP }, total: { type: 'integer', minimum: 0 }, limit: { type: 'integer' }, offset: { type: 'integer' } },
};


export interface RelationshipRoutesDeps {
  /** The v1 repositories: relationships are stored here, ends are looked up in contexts, agents, models. */
  readonly repos: V1Store;
  readonly bus: EventBus;
  readonly log: Logger;
}

/**
 * The relationship routes of `/api/v1` and the {@link Relationships} service (see the module
 * comment for shapes and semantics):
 *
 * - `POST /api/v1/relationships` ({@link CreateRelationshipBody}) → 201 relationship;
 * - `GET /api/v1/relationships?source_id&target_id&relationship_type&limit&offset` →
 *   `{"relationships":[…],"total","limit","offset"}`, oldest first, every given (non-empty) filter applied;
 * - `GET /api/v1/relationships/:id` → the relationship;
 * - `DELETE /api/v1/relationships/:id` → `{"status":"deleted"}`.
 *
 * Errors: 400 VALIDATION_ERROR (bad body or limit/offset), 404 NOT_FOUND (no such id in the
 * caller's tenant), 409 CONFLICT (duplicate), 422 UNPROCESSABLE_ENTITY (a missing end).
 *
 * Cost: every lookup by end (duplicate check, filters, {@link RelationshipRoutes.deleteWith}) reads
 * all of the tenant's relationships — O(relationships of the tenant) per call, fine while tenants
 * hold thousands, not millions; an index by end id is the next step.
 */
export class RelationshipRoutes implements Relationships {
  /** Serialises creations per tenant, so the duplicate check and the write cannot interleave. */
  private readonly queue = new KeyedQueue();

  constructor(readonly deps: RelationshipRoutesDeps) {}

  /** Registers the four routes on `api`, each with its OpenAPI doc (tag `relationships`). */
  register(api: V1Api): void {
    const notFound = { description: 'No such relationship in the caller’s tenant' };
    api.on(
      'POST',
      '/api/v1/relationships',
      {
        summary: 'Create a relationship between two entities',
        tag: 'relationships',
        body: CreateRelationshipBody,
        responses: {
          201: { description: 'The relationship', schema: RELATIONSHIP },
          400: { description: 'Invalid body: `details.problems` names every bad or unknown field' },
          409: { description: 'The same relationship exists: `details.existing_id`' },
          422: { description: 'An end of kind context, agent or model does not exist in the caller’s tenant: `details.missing` names it (`source` or `target`)' },
        },
      },
      async (req) => ({ status: 201, body: await this.create(req.tenant, req.data) }),
    );
    api.on(
      'GET',
      '/api/v1/relationships',
      {
        summary: 'List the tenant’s relationships, filtered (oldest first)',
        tag: 'relationships',
        query: {
          source_id: { description: 'Only relationships with this source id' },
          target_id: { description: 'Only relationships with this target id' },
          relationship_type: { description: 'Only relationships of this type' },
          ...PAGE_QUERY,
        },
        responses: { 200: { description: 'A page of relationships', schema: RELATIONSHIP_LIST }, 400: { description: 'Bad limit or offset' } },
      },
      async (req) => {
        const q = req.query;
        const want = (name: string, value: string): boolean => {
          const f = q.get(name);
          return f === null || f === '' || f === value;
        };
        const all = await this.deps.repos.relationships.list(req.tenant);
        const matching = all.filter((r) => want('source_id', r.source_id) && want('target_id', r.target_id) && want('relationship_type', r.relationship_type));
        const page = paginate(sortByCreation(matching), q);
        return { status: 200, body: { relationships: page.items, total: page.total, limit: page.limit, offset: page.offset } };
      },
    );
    api.on(
      'GET',
      '/api/v1/relationships/:id',
      { summary: 'One relationship', tag: 'relationships', responses: { 200: { description: 'The relationship', schema: RELATIONSHIP }, 404: notFound } },
      async (req) => ({ status: 200, body: await this.get(req.tenant, req.params['id'] ?? '') }),
    );
    api.on(
      'DELETE',
      '/api/v1/relationships/:id',
      { summary: 'Delete a relationship', tag: 'relationships', responses: { 200: { description: '`{"status":"deleted"}`', schema: DELETED_SCHEMA }, 404: notFound } },
      async (req) => {
        const tenant = req.tenant;
        const rel = await this.get(tenant, req.params['id'] ?? '');
        if (!(await this.deps.repos.relationships.delete(tenant, rel.id))) throw new GatewayError('NOT_FOUND', 'Relationship not found', { id: rel.id });
        this.publish('RelationshipDeleted', tenant, rel);
        return { status: 200, body: { status: 'deleted' } };
      },
    );
  }

  /**
   * Records a relationship in `tenant` and publishes `RelationshipCreated` + `StoreChanged`.
   * The input is checked like a REST body ({@link CreateRelationshipBody}); creations of one tenant
   * run one at a time.
   * @returns the stored record (`rel-<uuid>`, `metadata` defaulting to `{}`, `created_at` now).
   * @throws GatewayError VALIDATION_ERROR (400) for a bad input, naming each bad field;
   *   UNPROCESSABLE_ENTITY (422) when an end of kind `context`, `agent` or `model` does not exist
   *   in `tenant` — `details.missing` is `[{end: "source"|"target", type, id}]`;
   *   CONFLICT (409) when the same five fields are stored already — `details.existing_id`.
   */
  async create(tenant: string, input: Parameters<Relationships['create']>[1]): Promise<RelationshipRecord> {
    const body = decodeBody(CreateRelationshipBody, input);
    return this.queue.run(tenant, async () => {
      const { repos } = this.deps;
      const missing: { end: 'source' | 'target'; type: EntityKind; id: string }[] = [];
      for (const end of ['source', 'target'] as const) {
        const type = body[`${end}_type`];
        const id = body[`${end}_id`];
        if (!(await this.exists(tenant, type, id))) missing.push({ end, type, id });
      }
      if (missing.length > 0) {
        const what = missing.map((m) => `${m.end} ${m.type} ${JSON.stringify(m.id)}`).join(' and ');
        throw new GatewayError('UNPROCESSABLE_ENTITY', `Relationship ${what} does not exist`, { missing });
      }
      const existing = (await repos.relationships.list(tenant)).find(
        (r) => r.source_type === body.source_type && r.source_id === body.source_id && r.target_type === body.target_type && r.target_id === body.target_id && r.relationship_type === body.relationship_type,
      );
      if (existing !== undefined) throw new GatewayError('CONFLICT', 'This relationship exists already', { existing_id: existing.id });
      const rel: RelationshipRecord = {
        id: newId('rel'),
        source_type: body.source_type,
        source_id: body.source_id,
        target_type: body.target_type,
        target_id: body.target_id,
        relationship_type: body.relationship_type,
        metadata: body.metadata ?? {},
        created_at: nowIso(),
      };
      await repos.relationships.put(tenant, rel);
      this.deps.log.debug('relationship created', { tenant, id: rel.id, relationship_type: rel.relationship_type });
      this.publish('RelationshipCreated', tenant, rel);
      return rel;
    });
  }

  /**
   * Deletes an entity together with every relationship of `tenant` that has `id` at either end:
   * `entityOps` (the entity's own deletion) and the relationships' deletions commit in one fsync'd
   * batch, serialised with this tenant's relationship creations (so none can be created to the
   * entity while it goes), then one `RelationshipDeleted` per removed relationship is published.
   * Resolves how many relationships went.
   * Cost: reads all of the tenant's relationships (O(n) in the tenant's relationship count).
   */
  deleteWith(tenant: string, id: string, entityOps: readonly BatchOp[]): Promise<number> {
    return this.queue.run(tenant, async () => {
      const { relationships } = this.deps.repos;
      const gone = (await relationships.list(tenant)).filter((r) => r.source_id === id || r.target_id === id);
      await commitAll(this.deps.repos.store.db, [...entityOps, ...relationships.ops(tenant, [], gone.map((r) => r.id))]);
      for (const rel of gone) this.publish('RelationshipDeleted', tenant, rel);
      return gone.length;
    });
  }

  private async get(tenant: string, id: string): Promise<RelationshipRecord> {
    const rel = await this.deps.repos.relationships.get(tenant, id);
    if (rel === undefined) throw new GatewayError('NOT_FOUND', 'Relationship not found', { id });
    return rel;
  }

  /** Whether the end exists: looked up for contexts, agents and models; tools and executions are taken as given. */
  private async exists(tenant: string, type: EntityKind, id: string): Promise<boolean> {
    const { repos } = this.deps;
    switch (type) {
      case 'context':
        return (await repos.contexts.get(tenant, id)) !== undefined;
      case 'agent':
        return (await repos.agents.get(tenant, id)) !== undefined;
      case 'model':
        return (await repos.models.get(tenant, id)) !== undefined;
      case 'tool':
      case 'tool_execution':
        return true;
    }
  }

  private publish(type: 'RelationshipCreated' | 'RelationshipDeleted', tenant: string, rel: RelationshipRecord): void {
    const { bus } = this.deps;
    bus.publish({
      event_type: type,
      id: rel.id,
      tenant_id: tenant,
      source_type: rel.source_type,
      source_id: rel.source_id,
      target_type: rel.target_type,
      target_id: rel.target_id,
      relationship_type: rel.relationship_type,
    });
    bus.publish({ event_type: 'StoreChanged', tags: ['relationships'] });
  }
}

function sortByCreation(items: RelationshipRecord[]): RelationshipRecord[] {
  return items.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
