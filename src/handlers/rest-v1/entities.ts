/**
 * Agents and models over `/api/v1/agents*` and `/api/v1/models*` (developer-mesh MCP Server API reference, https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md,
 * "Agent Management" and "Model Management").
 *
 * Response shapes follow the source document: a creation answers 201 with the record itself
 * (`{"id":"agent-…","name",…,"created_at","updated_at"}`), `GET`/`PUT` of one entity answer the
 * record, lists answer `{"agents"|"models":[summary…],"total","limit","offset"}` where a summary is
 * the record without `configuration` (as the source's "List Agents"/"List Models" show; `GET /:id`
 * has it), and `DELETE` answers `{"status":"deleted"}`. Every entity belongs to the caller's tenant:
 * another tenant's id is 404, never 403.
 *
 * Updates: `PUT /api/v1/agents/:id` replaces each given field (a given `configuration` replaces the
 * old one); `PUT /api/v1/models/:id` replaces each given field except `configuration`, whose keys
 * are shallow-merged into the stored ones ("PUT merges `configuration`"; a key set to
 * `null` is stored as `null`, keys cannot be removed). An empty body changes nothing and publishes
 * nothing. Deleting an agent or a model deletes every relationship naming it, in the same batch.
 *
 * Each change publishes one entity event (`AgentCreated`, `AgentUpdated`, `AgentDeleted`,
 * `ModelCreated`, …: `{event_type, id, tenant_id, name, …}`) and then
 * `{event_type:"StoreChanged", tags:["agents"|"models", …]}` on the bus.
 */
import * as t from 'io-ts';
import { GatewayError } from '../../base/errors.js';
import { toJsonSchema, withSchema, type JsonSchema, isJsonObject, jsonByteLength } from '../../codecs/schema.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus, EntityEventType } from '../../streams/events.js';
import type { AgentRecord, ModelRecord, V1Store } from '../../store/v1-records.js';
import { newId, nowIso, paginate, PAGE_QUERY, type V1Api } from '../rest/v1-api.js';
import type { Relationships } from './contracts.js';
import { KeyedQueue } from '../../streams/keyed-queue.js';

// ---------------------------------------------------------------------------------------------
// Codecs shared by the entity bodies (also used by relationships.ts)
// ---------------------------------------------------------------------------------------------

/** Largest `configuration` / `metadata` object, in bytes of its UTF-8 JSON text (64 KiB). */
export const JSON_OBJECT_MAX_BYTES = 64 * 1024;

/** Code points of `s`, or `max + 1` when there are surely more than `max` (cheap for huge strings). */
function codePoints(s: string, max: number): number {
  if (s.length > 2 * max) return max + 1;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * A string codec accepting `min..max` characters (Unicode code points, as JSON Schema's
 * `minLength`/`maxLength` count them), optionally without control characters. The codec's name is
 * what a 400 says was expected (`name: expected string of 1..200 characters, got ""`); its JSON
 * Schema carries the bounds and `description`.
 */
export function boundedString(min: number, max: number, description: string, opts: { readonly noControl?: boolean } = {}): t.Type<string, string, unknown> {
  const ok = (u: unknown): u is string => {
    if (typeof u !== 'string') return false;
    const n = codePoints(u, max);
    return n >= min && n <= max && !(opts.noControl === true && hasControl(u));
  };
  const name = `string of ${min}..${max} characters${opts.noControl === true ? ' without control characters' : ''}`;
  const codec = new t.Type<string, string, unknown>(name, ok, (u, c) => (ok(u) ? t.success(u) : t.failure(u, c)), t.identity);
  return withSchema(codec, { type: 'string', minLength: min, maxLength: max, description, ...(opts.noControl === true ? { pattern: '^[^\\u0000-\\u001f\\u007f]*$' } : {}) });
}



/**
 * Any JSON object (not an array, not null) of at most {@link JSON_OBJECT_MAX_BYTES} bytes as UTF-8
 * JSON: the free-form `configuration` of agents and models and `metadata` of relationships.
 */
export const JsonObject = withSchema(
  new t.Type<Record<string, unknown>, Record<string, unknown>, unknown>(
    `JSON object of at most ${JSON_OBJECT_MAX_BYTES} bytes`,
    (u): u is Record<string, unknown> => isJsonObject(u) && jsonByteLength(u) <= JSON_OBJECT_MAX_BYTES,
    (u, c) => (isJsonObject(u) && jsonByteLength(u) <= JSON_OBJECT_MAX_BYTES ? t.success(u) : t.failure(u, c)),
    t.identity,
  ),
  { type: 'object', description: `Any JSON object; at most ${JSON_OBJECT_MAX_BYTES} bytes (64 KiB) as UTF-8 JSON` },
);

/** An array of `item` with at most `max` entries. */
function boundedArray<C extends t.Mixed>(item: C, max: number, description: string): t.Type<t.TypeOf<C>[], t.TypeOf<C>[], unknown> {
  const all = t.array(item);
  const codec = new t.Type<t.TypeOf<C>[], t.TypeOf<C>[], unknown>(
    `array of at most ${max} entries`,
    (u): u is t.TypeOf<C>[] => all.is(u) && u.length <= max,
    (u, c) => {
      if (Array.isArray(u) && u.length > max) return t.failure(u, c);
      return all.validate(u, c);
    },
    t.identity,
  );
  return withSchema(codec, { type: 'array', items: toJsonSchema(item), maxItems: max, description });
}

/** An entity name: 1..200 characters. */
const Name = boundedString(1, 200, 'Display name, 1..200 characters');
const Description = boundedString(0, 4000, 'Free text, at most 4000 characters');
const Capabilities = boundedArray(boundedString(1, 200, 'A capability, e.g. `github`'), 100, 'What the agent can use, at most 100 entries of 1..200 characters');

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

const agentFields = {
  name: Name,
  description: Description,
  model: boundedString(1, 200, 'The model the agent uses: a model id (`model-…`) or a model name such as `gpt-4`'),
  capabilities: Capabilities,
  configuration: JsonObject,
};

/**
 * `POST /api/v1/agents` body (developer-mesh "Create Agent"): `name` and `model` required;
 * `description` (default `""`), `capabilities` (default `[]`) and `configuration` (default `{}`)
 * optional. Unknown fields are refused (400).
 */
export const CreateAgentBody = t.exact(
  t.intersection([
    t.type({ name: agentFields.name, model: agentFields.model }),
    t.partial({ description: agentFields.description, capabilities: agentFields.capabilities, configuration: agentFields.configuration }),
  ]),
  'CreateAgentBody',
);
export type CreateAgentBody = t.TypeOf<typeof CreateAgentBody>;

/** `PUT /api/v1/agents/:id` body (developer-mesh "Update Agent"): any subset of the agent's fields; each given one replaces the stored one. */
export const UpdateAgentBody = t.exact(t.partial(agentFields), 'UpdateAgentBody');
export type UpdateAgentBody = t.TypeOf<typeof UpdateAgentBody>;

const modelFields = {
  name: Name,
  provider: boundedString(1, 200, 'Who serves the model, e.g. `openai`'),
  type: boundedString(1, 200, 'What kind of model, e.g. `chat` or `embedding`'),
  configuration: JsonObject,
};

/**
 * `POST /api/v1/models` body (developer-mesh "Create Model"): `name`, `provider` and `type`
 * required, `configuration` optional (default `{}`). Unknown fields are refused (400).
 */
export const CreateModelBody = t.exact(
  t.intersection([t.type({ name: modelFields.name, provider: modelFields.provider, type: modelFields.type }), t.partial({ configuration: modelFields.configuration })]),
  'CreateModelBody',
);
export type CreateModelBody = t.TypeOf<typeof CreateModelBody>;

/**
 * `PUT /api/v1/models/:id` body (developer-mesh "Update Model"): any subset of the model's fields.
 * `configuration` is shallow-merged into the stored one; the other fields are replaced.
 */
export const UpdateModelBody = t.exact(t.partial(modelFields), 'UpdateModelBody');
export type UpdateModelBody = t.TypeOf<typeof UpdateModelBody>;

// ---------------------------------------------------------------------------------------------
// Response schemas (OpenAPI)
// ---------------------------------------------------------------------------------------------

const TIMESTAMP: JsonSchema = { type: 'string', format: 'date-time', description: 'ISO-8601 UTC' };
const CONFIGURATION: JsonSchema = { type: 'object', description: 'Free-form JSON object' };

const AGENT_SUMMARY_PROPS = {
  id: { type: 'string', pattern: '^agent-', description: '`agent-<uuid>`' },
  name: { type: 'string' },
  description: { type: 'string' },
  model: { type: 'string' },
  capabilities: { type: 'array', items: { type: 'string' } },
  created_at: TIMESTAMP,
  updated_at: TIMESTAMP,
};
const AGENT_STATUS = { type: 'string', enum: ['available', 'busy', 'offline'], description: 'Live status on /ws (offline when not connected)' };
const AGENT_SUMMARY: JsonSchema = { type: 'object', required: Object.keys(AGENT_SUMMARY_PROPS), properties: { ...AGENT_SUMMARY_PROPS, status: AGENT_STATUS } };
const AGENT: JsonSchema = { type: 'object', required: [...Object.keys(AGENT_SUMMARY_PROPS), 'configuration'], properties: { ...AGENT_SUMMARY_PROPS, status: AGENT_STATUS, configuration: CONFIGURATION } };

const MODEL_SUMMARY_PROPS = {
  id: { type: 'string', pattern: '^model-', description: '`model-<uuid>`' },
  name: { type: 'string' },
  provider: { type: 'string' },
  type: { type: 'string' },
  created_at: TIMESTAMP,
  updated_at: TIMESTAMP,
};
const MODEL_SUMMARY: JsonSchema = { type: 'object', required: Object.keys(MODEL_SUMMARY_PROPS), properties: MODEL_SUMMARY_PROPS };
const MODEL: JsonSchema = { type: 'object', required: [...Object.keys(MODEL_SUMMARY_PROPS), 'configuration'], properties: { ...MODEL_SUMMARY_PROPS, configuration: CONFIGURATION } };

function listSchema(key: string, item: JsonSchema): JsonSchema {
  return {
    type: 'object',
    required: [key, 'total', 'limit', 'offset'],
    properties: { [key]: { type: 'array', items: item }, total: { type: 'integer', minimum: 0 }, limit: { type: 'integer' }, offset: { type: 'integer' } },
  };
}

/** `{"status":"deleted"}`, the answer of every v1 DELETE. */
export const DELETED_SCHEMA: JsonSchema = { type: 'object', required: ['status'], properties: { status: { const: 'deleted' } } };

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------


function sortByCreation<T extends { readonly id: string; readonly created_at: string }>(items: T[]): T[] {
  return items.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function agentSummary(a: AgentRecord): Omit<AgentRecord, 'configuration'> {
  const { configuration: _c, ...rest } = a;
  return rest;
}

function modelSummary(m: ModelRecord): Omit<ModelRecord, 'configuration'> {
  const { configuration: _c, ...rest } = m;
  return rest;
}

export interface EntityRoutesDeps {
  /** The v1 repositories (agents, models; relationships through {@link EntityRoutesDeps.relationships}). */
  readonly repos: V1Store;
  /** Deletes an entity's relationships together with it (`deleteWith`). */
  readonly relationships: Relationships;
  readonly bus: EventBus;
  readonly log: Logger;
  /**
   * The live status of an agent on `/ws`: `available`, `busy`, or `offline` (also for
   * agents never connected since the gateway started). Absent: no `status` field in answers.
   */
  readonly agentStatus?: (tenant: string, id: string) => 'available' | 'busy' | 'offline' | undefined;
}

/**
 * The agent and model routes of `/api/v1` (see the module comment for shapes and semantics):
 *
 * - `POST /api/v1/agents` ({@link CreateAgentBody}) → 201 agent; `GET /api/v1/agents?limit&offset`
 *   → `{"agents":[summary…],"total","limit","offset"}` (oldest first);
 *   `GET|PUT|DELETE /api/v1/agents/:id` → agent, agent, `{"status":"deleted"}`;
 * - the same for `/api/v1/models` ({@link CreateModelBody}, {@link UpdateModelBody}).
 *
 * Errors: 400 VALIDATION_ERROR (bad body, `details.problems` naming each field; bad limit/offset),
 * 404 NOT_FOUND (no such id in the caller's tenant).
 */
export class EntityRoutes {
  private readonly queue = new KeyedQueue();

  constructor(readonly deps: EntityRoutesDeps) {}

  /** Registers the ten routes on `api`, each with its OpenAPI doc (tags `agents`, `models`). */
  register(api: V1Api): void {
    const { repos } = this.deps;
    const notFound = { description: 'No such agent in the caller’s tenant' };
    const invalid = { description: 'Invalid body: `details.problems` names every bad or unknown field' };
    api.on(
      'POST',
      '/api/v1/agents',
      { summary: 'Create an agent', tag: 'agents', body: CreateAgentBody, responses: { 201: { description: 'The agent', schema: AGENT }, 400: invalid } },
      async (req) => ({ status: 201, body: this.withStatus(req.tenant, await this.createAgent(req.tenant, req.data)) }),
    );
    api.on(
      'GET',
      '/api/v1/agents',
      { summary: 'List the tenant’s agents (oldest first; summaries without `configuration`)', tag: 'agents', query: PAGE_QUERY, responses: { 200: { description: 'A page of agents', schema: listSchema('agents', AGENT_SUMMARY) }, 400: { description: 'Bad limit or offset' } } },
      async (req) => {
        const page = paginate(sortByCreation(await repos.agents.list(req.tenant)), req.query);
        return { status: 200, body: { agents: page.items.map((a) => this.withStatus(req.tenant, agentSummary(a))), total: page.total, limit: page.limit, offset: page.offset } };
      },
    );
    api.on(
      'GET',
      '/api/v1/agents/:id',
      { summary: 'One agent', tag: 'agents', responses: { 200: { description: 'The agent', schema: AGENT }, 404: notFound } },
      async (req) => ({ status: 200, body: this.withStatus(req.tenant, await this.agent(req.tenant, req.params['id'] ?? '')) }),
    );
    api.on(
      'PUT',
      '/api/v1/agents/:id',
      { summary: 'Update an agent: each given field replaces the stored one', tag: 'agents', body: UpdateAgentBody, responses: { 200: { description: 'The updated agent', schema: AGENT }, 400: invalid, 404: notFound } },
      async (req) => ({ status: 200, body: this.withStatus(req.tenant, await this.updateAgent(req.tenant, req.params['id'] ?? '', req.data)) }),
    );
    api.on(
      'DELETE',
      '/api/v1/agents/:id',
      { summary: 'Delete an agent and its relationships', tag: 'agents', responses: { 200: { description: '`{"status":"deleted"}`', schema: DELETED_SCHEMA }, 404: notFound } },
      async (req) => {
        await this.deleteAgent(req.tenant, req.params['id'] ?? '');
        return { status: 200, body: { status: 'deleted' } };
      },
    );

    const modelNotFound = { description: 'No such model in the caller’s tenant' };
    api.on(
      'POST',
      '/api/v1/models',
      { summary: 'Register a model', tag: 'models', body: CreateModelBody, responses: { 201: { description: 'The model', schema: MODEL }, 400: invalid } },
      async (req) => ({ status: 201, body: await this.createModel(req.tenant, req.data) }),
    );
    api.on(
      'GET',
      '/api/v1/models',
      { summary: 'List the tenant’s models (oldest first; summaries without `configuration`)', tag: 'models', query: PAGE_QUERY, responses: { 200: { description: 'A page of models', schema: listSchema('models', MODEL_SUMMARY) }, 400: { description: 'Bad limit or offset' } } },
      async (req) => {
        const page = paginate(sortByCreation(await repos.models.list(req.tenant)), req.query);
        return { status: 200, body: { models: page.items.map(modelSummary), total: page.total, limit: page.limit, offset: page.offset } };
      },
    );
    api.on(
      'GET',
      '/api/v1/models/:id',
      { summary: 'One model', tag: 'models', responses: { 200: { description: 'The model', schema: MODEL }, 404: modelNotFound } },
      async (req) => ({ status: 200, body: await this.model(req.tenant, req.params['id'] ?? '') }),
    );
    api.on(
      'PUT',
      '/api/v1/models/:id',
      {
        summary: 'Update a model: `configuration` keys are shallow-merged into the stored ones, other given fields replace the stored ones',
        tag: 'models',
        body: UpdateModelBody,
        responses: { 200: { description: 'The updated model', schema: MODEL }, 400: { description: 'Invalid body, or the merged configuration is over 64 KiB' }, 404: modelNotFound },
      },
      async (req) => ({ status: 200, body: await this.updateModel(req.tenant, req.params['id'] ?? '', req.data) }),
    );
    api.on(
      'DELETE',
      '/api/v1/models/:id',
      { summary: 'Delete a model and its relationships', tag: 'models', responses: { 200: { description: '`{"status":"deleted"}`', schema: DELETED_SCHEMA }, 404: modelNotFound } },
      async (req) => {
        await this.deleteModel(req.tenant, req.params['id'] ?? '');
        return { status: 200, body: { status: 'deleted' } };
      },
    );
  }

  private publish(type: EntityEventType, tenant: string, id: string, fields: Record<string, unknown>, tags: string[]): void {
    this.deps.bus.publish({ ...fields, event_type: type, id, tenant_id: tenant });
    this.deps.bus.publish({ event_type: 'StoreChanged', tags });
  }

  // --- agents -------------------------------------------------------------------------------

  /** `a` with its live `/ws` status, when the orchestrator is wired in. */
  private withStatus<A extends { readonly id: string }>(tenant: string, a: A): A & { status?: string } {
    const status = this.deps.agentStatus;
    return status ? { ...a, status: status(tenant, a.id) ?? 'offline' } : a;
  }

  private async agent(tenant: string, id: string): Promise<AgentRecord> {
    const a = await this.deps.repos.agents.get(tenant, id);
    if (a === undefined) throw new GatewayError('NOT_FOUND', 'Agent not found', { id });
    return a;
  }

  private async createAgent(tenant: string, body: CreateAgentBody): Promise<AgentRecord> {
    const now = nowIso();
    const agent: AgentRecord = {
      id: newId('agent'),
      name: body.name,
      description: body.description ?? '',
      model: body.model,
      capabilities: body.capabilities ?? [],
      configuration: body.configuration ?? {},
      created_at: now,
      updated_at: now,
    };
    await this.deps.repos.agents.put(tenant, agent);
    this.deps.log.debug('agent created', { tenant, id: agent.id });
    this.publish('AgentCreated', tenant, agent.id, { name: agent.name, model: agent.model }, ['agents']);
    return agent;
  }

  private updateAgent(tenant: string, id: string, body: UpdateAgentBody): Promise<AgentRecord> {
    return this.queue.run(`agent\u0000${tenant}\u0000${id}`, async () => {
      const cur = await this.agent(tenant, id);
      const changed = Object.keys(body);
      if (changed.length === 0) return cur;
      const next: AgentRecord = { ...cur, ...body, updated_at: nowIso() };
      await this.deps.repos.agents.put(tenant, next);
      this.publish('AgentUpdated', tenant, id, { name: next.name, changed }, ['agents']);
      return next;
    });
  }

  private deleteAgent(tenant: string, id: string): Promise<void> {
    return this.queue.run(`agent\u0000${tenant}\u0000${id}`, async () => {
      const { repos, relationships } = this.deps;
      const cur = await this.agent(tenant, id);
      const removed = await relationships.deleteWith(tenant, id, repos.agents.ops(tenant, [], [id]));
      this.deps.log.debug('agent deleted', { tenant, id, relationships_deleted: removed });
      this.publish('AgentDeleted', tenant, id, { name: cur.name, relationships_deleted: removed }, removed > 0 ? ['agents', 'relationships'] : ['agents']);
    });
  }

  // --- models -------------------------------------------------------------------------------

  private async model(tenant: string, id: string): Promise<ModelRecord> {
    const m = await this.deps.repos.models.get(tenant, id);
    if (m === undefined) throw new GatewayError('NOT_FOUND', 'Model not found', { id });
    return m;
  }

  private async createModel(tenant: string, body: CreateModelBody): Promise<ModelRecord> {
    const now = nowIso();
    const model: ModelRecord = {
      id: newId('model'),
      name: body.name,
      provider: body.provider,
      type: body.type,
      configuration: body.configuration ?? {},
      created_at: now,
      updated_at: now,
    };
    await this.deps.repos.models.put(tenant, model);
    this.deps.log.debug('model created', { tenant, id: model.id });
    this.publish('ModelCreated', tenant, model.id, { name: model.name, provider: model.provider, type: model.type }, ['models']);
    return model;
  }

  /** @throws GatewayError VALIDATION_ERROR when the merged configuration is over {@link JSON_OBJECT_MAX_BYTES}. */
  private updateModel(tenant: string, id: string, body: UpdateModelBody): Promise<ModelRecord> {
    return this.queue.run(`model\u0000${tenant}\u0000${id}`, async () => {
      const cur = await this.model(tenant, id);
      const changed = Object.keys(body);
      if (changed.length === 0) return cur;
      const configuration = body.configuration === undefined ? cur.configuration : { ...cur.configuration, ...body.configuration };
      const bytes = jsonByteLength(configuration);
      if (bytes > JSON_OBJECT_MAX_BYTES) {
        const problem = `configuration: the merged configuration would be ${bytes} bytes, over ${JSON_OBJECT_MAX_BYTES}`;
        throw new GatewayError('VALIDATION_ERROR', `Invalid request body: ${problem}`, { problems: [problem] });
      }
      const next: ModelRecord = { ...cur, ...body, configuration, updated_at: nowIso() };
      await this.deps.repos.models.put(tenant, next);
      this.publish('ModelUpdated', tenant, id, { name: next.name, changed }, ['models']);
      return next;
    });
  }

  private deleteModel(tenant: string, id: string): Promise<void> {
    return this.queue.run(`model\u0000${tenant}\u0000${id}`, async () => {
      const { repos, relationships } = this.deps;
      const cur = await this.model(tenant, id);
      const removed = await relationships.deleteWith(tenant, id, repos.models.ops(tenant, [], [id]));
      this.deps.log.debug('model deleted', { tenant, id, relationships_deleted: removed });
      this.publish('ModelDeleted', tenant, id, { name: cur.name, relationships_deleted: removed }, removed > 0 ? ['models', 'relationships'] : ['models']);
    });
  }
}
