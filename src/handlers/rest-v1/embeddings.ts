/**
 * Embeddings over `/api/v1/embeddings*` (developer-mesh MCP Server API reference, "Embedding
 * Operations": generate for an agent, search, cross-model search, provider health), per tenant.
 *
 * - `POST /api/v1/embeddings` `{agent_id, text | texts[], model?, context_id?, metadata?, store?}`
 *   embeds with `model`, else the agent's `configuration.embedding_model`, else the built-in
 *   lexical embedding (`local/lexical-hash-512`, no network); stores the vectors unless
 *   `store: false`; answers developer-mesh's `{embedding_id, model_used, provider, dimensions,
 *   cached, cost_usd}` (plus `kind`: `lexical` or `model`), or `{embeddings:[…]}` for `texts`.
 * - `POST /api/v1/embeddings/search` `{query, agent_id?, model?, context_id?, limit?, min_score?}`:
 *   the query embedded with the same model choice, then an exact cosine scan of the tenant's
 *   vectors of that model, top `limit` (≤ `max_search_limit`).
 * - `POST /api/v1/embeddings/search/cross-model` `{query, include_models?, limit?}`: the query
 *   embedded once per model (default: every model the tenant has vectors of), each model scanned,
 *   and hits merged by `normalized_score`: the z-score of the hit's cosine among all that model's
 *   scanned vectors, so models whose cosines live on different scales compare.
 * - `GET /api/v1/embeddings/providers/health`, `GET|DELETE /api/v1/embeddings/:id`.
 * - the same operations as `/ws` methods: {@link EmbeddingWsMethods}.
 */
import { randomUUID } from 'node:crypto';
import * as t from 'io-ts';
import { GatewayError } from '../../base/errors.js';
import { decodeBody, withSchema } from '../../codecs/schema.js';
import type { WsMethodHost, WsPeer } from '../../streams/ws-methods.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { EmbeddingRecord, EmbeddingStore } from '../../store/embeddings.js';
import { vectorBytes } from '../../store/embeddings.js';
import type { V1Store } from '../../store/v1-records.js';
import { ok, type RestReply } from '../rest/router.js';
import { nowIso, type V1Api, type V1Request } from '../rest/v1-api.js';
import { JsonObject, boundedString } from './entities.js';

export interface EmbeddingLimits {
  readonly max_search_limit: number;
  readonly max_text_chars: number;
  readonly max_batch: number;
}

const Model = boundedString(1, 300, 'A model: `provider/model`, a model a provider lists, or `local/lexical-hash-512`');
const Id = boundedString(1, 200, 'An id');

function textCodec(max: number): t.Type<string, string, unknown> {
  return boundedString(1, max, `Text, 1..${max} characters`);
}

function limitCodec(max: number): t.Type<number, number, unknown> {
  const ok = (u: unknown): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 1 && u <= max;
  return withSchema(new t.Type<number, number, unknown>(`whole number 1..${max}`, ok, (u, c) => (ok(u) ? t.success(u) : t.failure(u, c)), t.identity), { type: 'integer', minimum: 1, maximum: max });
}

const Score = withSchema(
  new t.Type<number, number, unknown>('number -1..1', (u): u is number => typeof u === 'number' && u >= -1 && u <= 1, (u, c) => (typeof u === 'number' && u >= -1 && u <= 1 ? t.success(u) : t.failure(u, c)), t.identity),
  { type: 'number', minimum: -1, maximum: 1 },
);

/** What a vector is: the qualified model name the store files it under. */
function qualified(provider: string, model: string): string {
  return `${provider}/${model}`;
}

export class EmbeddingRoutes {
  readonly GenerateBody;
  readonly SearchBody;
  readonly CrossBody;

  constructor(
    private readonly deps: { readonly providers: ProviderRegistry; readonly vectors: EmbeddingStore; readonly repos: V1Store; readonly limits: EmbeddingLimits },
  ) {
    const text = textCodec(deps.limits.max_text_chars);
    const limit = limitCodec(deps.limits.max_search_limit);
    this.GenerateBody = t.exact(
      t.intersection([
        t.type({ agent_id: Id }),
        t.partial({ text, texts: t.array(text), model: Model, context_id: Id, metadata: JsonObject, store: t.boolean, include_vector: t.boolean }),
      ]),
      'GenerateEmbeddingBody',
    );
    this.SearchBody = t.exact(t.intersection([t.type({ query: text }), t.partial({ agent_id: Id, model: Model, context_id: Id, limit, min_score: Score })]), 'SearchEmbeddingsBody');
    this.CrossBody = t.exact(t.intersection([t.type({ query: text }), t.partial({ include_models: t.array(Model), agent_id: Id, limit })]), 'CrossModelSearchBody');
  }

  register(api: V1Api): void {
    const invalid = { description: 'Invalid body (every bad field named)' };
    api.on(
      'POST',
      '/api/v1/embeddings',
      { summary: 'Generate (and store) embeddings for an agent', tag: 'embeddings', body: this.GenerateBody, responses: { 201: { description: '`{embedding_id, model_used, provider, kind, dimensions, cached, cost_usd}` or `{embeddings:[…]}`' }, 400: invalid, 404: { description: 'Unknown model' } } },
      (req) => this.generate(req),
    );
    api.on(
      'POST',
      '/api/v1/embeddings/search',
      { summary: 'Nearest stored texts to a query (exact cosine scan, per tenant and model)', tag: 'embeddings', body: this.SearchBody, responses: { 200: { description: '`{results:[{id, score, text, …}], model, provider, kind, method, scanned}`' }, 400: invalid } },
      (req) => this.search(req),
    );
    api.on(
      'POST',
      '/api/v1/embeddings/search/cross-model',
      { summary: 'Search across several embedding models, scores normalised per model', tag: 'embeddings', body: this.CrossBody, responses: { 200: { description: '`{results:[{…, model, score, normalized_score}], models:[…]}`' }, 400: invalid } },
      (req) => this.crossModel(req),
    );
    api.on('GET', '/api/v1/embeddings/providers/health', { summary: 'Health of the embedding providers', tag: 'embeddings', responses: { 200: { description: '`{providers:{name:{status,…}}}`' } } }, () => ok({ providers: this.health() }));
    api.on('GET', '/api/v1/embeddings/:id', { summary: 'A stored embedding (with its vector)', tag: 'embeddings', responses: { 200: { description: 'The embedding' }, 404: { description: 'No such embedding in the caller’s tenant' } } }, async (req) => {
      const r = await this.deps.vectors.get(req.tenant, req.params['id'] ?? '');
      if (!r) throw new GatewayError('NOT_FOUND', `No embedding ${req.params['id'] ?? ''}`, { id: req.params['id'] });
      const { vector, tenant_id: _tenant, ...rest } = r;
      return ok({ ...rest, context_id: rest.context_id ?? null, embedding: Array.from(new Float32Array(vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength))) });
    });
    api.on('DELETE', '/api/v1/embeddings/:id', { summary: 'Delete a stored embedding', tag: 'embeddings', responses: { 200: { description: '`{"status":"deleted"}`' }, 404: { description: 'No such embedding' } } }, async (req) => {
      if (!(await this.deps.vectors.delete(req.tenant, req.params['id'] ?? ''))) throw new GatewayError('NOT_FOUND', `No embedding ${req.params['id'] ?? ''}`, { id: req.params['id'] });
      return ok({ status: 'deleted' });
    });
  }

  /** Health of every embedding provider. */
  health(): Record<string, Record<string, unknown>> {
    return this.deps.providers.health();
  }

  /** The model to use: the request's, else the agent's `configuration.embedding_model`, else the built-in one. */
  private async modelFor(tenant: string, agentId: string | undefined, model: string | undefined): Promise<string | undefined> {
    if (model !== undefined) return model;
    if (agentId === undefined) return undefined;
    const agent = await this.deps.repos.agents.get(tenant, agentId);
    const configured = agent?.configuration['embedding_model'];
    return typeof configured === 'string' && configured !== '' ? configured : undefined;
  }

  private async generate(req: V1Request<t.TypeOf<EmbeddingRoutes['GenerateBody']>>): Promise<RestReply> {
    return ok(await this.generateFor(req.tenant, req.data), 201);
  }

  /** `generate` for `tenant` (also the `/ws` method `embedding.generate`). */
  async generateFor(tenant: string, b: t.TypeOf<EmbeddingRoutes['GenerateBody']>): Promise<unknown> {
    if ((b.text === undefined) === (b.texts === undefined)) throw new GatewayError('VALIDATION_ERROR', 'Give exactly one of text and texts', { problems: ['text, texts: exactly one is required'] });
    const texts = b.texts ?? [b.text as string];
    if (texts.length === 0 || texts.length > this.deps.limits.max_batch) {
      throw new GatewayError('VALIDATION_ERROR', `texts must hold 1..${this.deps.limits.max_batch} entries`, { problems: [`texts: expected 1..${this.deps.limits.max_batch} entries, got ${texts.length}`] });
    }
    const model = await this.modelFor(tenant, b.agent_id, b.model);
    const result = await this.deps.providers.embed(model, texts);
    const name = qualified(result.provider, result.model);
    const created = nowIso();
    const records: EmbeddingRecord[] = result.vectors.map((v, i) => ({
      id: `emb-${randomUUID()}`,
      tenant_id: tenant,
      agent_id: b.agent_id,
      context_id: b.context_id,
      model: name,
      kind: result.kind,
      text: texts[i] as string,
      metadata: b.metadata ?? {},
      dimensions: v.length,
      vector: vectorBytes(v),
      created_at: created,
    }));
    if (b.store !== false) {
      try {
        await this.deps.vectors.add(records);
      } catch (err) {
        if (err instanceof RangeError) throw new GatewayError('UNPROCESSABLE_ENTITY', err.message, { model: name });
        throw err;
      }
    }
    const view = records.map((r, i) => ({
      embedding_id: r.id,
      model_used: result.model,
      provider: result.provider,
      kind: result.kind,
      dimensions: r.dimensions,
      cached: false,
      stored: b.store !== false,
      cost_usd: i === 0 ? result.cost_usd : 0,
      ...(b.include_vector === true ? { embedding: Array.from(result.vectors[i] as Float32Array) } : {}),
    }));
    return b.texts === undefined ? view[0] : { embeddings: view, cost_usd: result.cost_usd, input_tokens: result.input_tokens };
  }

  private async search(req: V1Request<t.TypeOf<EmbeddingRoutes['SearchBody']>>): Promise<RestReply> {
    return ok(await this.searchFor(req.tenant, req.data));
  }

  /** `search` for `tenant` (also the `/ws` method `embedding.search`). */
  async searchFor(tenant: string, b: t.TypeOf<EmbeddingRoutes['SearchBody']>): Promise<unknown> {
    const model = await this.modelFor(tenant, b.agent_id, b.model);
    const q = await this.deps.providers.embed(model, [b.query]);
    const name = qualified(q.provider, q.model);
    const r = this.scan(tenant, name, q.vectors[0] as Float32Array, b.limit ?? 10, { contextId: b.context_id, minScore: b.min_score });
    return {
      results: r.hits.map((h) => ({ ...h, context_id: h.context_id ?? null })),
      model: q.model,
      provider: q.provider,
      kind: q.kind,
      method: 'exact_scan',
      scanned: r.scanned,
    };
  }

  private async crossModel(req: V1Request<t.TypeOf<EmbeddingRoutes['CrossBody']>>): Promise<RestReply> {
    return ok(await this.crossModelFor(req.tenant, req.data));
  }

  /** Cross-model search for `tenant` (also the `/ws` method `embedding.cross_model_search`). */
  async crossModelFor(tenant: string, b: t.TypeOf<EmbeddingRoutes['CrossBody']>): Promise<unknown> {
    const limit = b.limit ?? 10;
    const models = b.include_models ?? this.deps.vectors.models(tenant).map((m) => m.model);
    if (models.length > 16) throw new GatewayError('VALIDATION_ERROR', 'include_models may name at most 16 models', { problems: ['include_models: at most 16 entries'] });
    const merged: { id: string; model: string; score: number; normalized_score: number; [k: string]: unknown }[] = [];
    const used: { model: string; provider: string; kind: string; scanned: number }[] = [];
    for (const m of models) {
      // a stored model name is `provider/model`; the built-in one also answers to its bare name
      const q = await this.deps.providers.embed(m, [b.query]);
      const name = qualified(q.provider, q.model);
      const r = this.scan(tenant, name, q.vectors[0] as Float32Array, limit, {});
      used.push({ model: name, provider: q.provider, kind: q.kind, scanned: r.scanned });
      for (const h of r.hits) merged.push({ ...h, context_id: h.context_id ?? null, normalized_score: r.std > 0 ? (h.score - r.mean) / r.std : 0 });
    }
    merged.sort((x, y) => y.normalized_score - x.normalized_score);
    return { results: merged.slice(0, limit), models: used, method: 'exact_scan', normalization: 'z-score of the cosine among all vectors of the same model' };
  }

  private scan(tenant: string, model: string, q: Float32Array, limit: number, filter: { contextId?: string | undefined; minScore?: number | undefined }): ReturnType<EmbeddingStore['search']> {
    try {
      return this.deps.vectors.search(tenant, model, q, limit, filter);
    } catch (err) {
      if (err instanceof RangeError) throw new GatewayError('UNPROCESSABLE_ENTITY', err.message, { model });
      throw err;
    }
  }
}

/**
 * The embedding operations as `/ws` methods (developer-mesh "Embedding Operations":
 * `generate_embedding`, `search`, `cross_model_search`, `provider_health`), with the REST bodies as
 * params and the REST answers as results: `embedding.generate`, `embedding.search`,
 * `embedding.cross_model_search`, `embedding.provider_health`. The caller's tenant applies; virtual
 * keys are refused (403), as on `/api/v1`.
 */
export class EmbeddingWsMethods implements WsMethodHost {
  constructor(private readonly routes: EmbeddingRoutes) {}

  handles(method: string): boolean {
    return method === 'embedding.generate' || method === 'embedding.search' || method === 'embedding.cross_model_search' || method === 'embedding.provider_health';
  }

  async call(peer: WsPeer, method: string, params: Record<string, unknown> | undefined): Promise<unknown> {
    const principal = peer.auth?.principal;
    if (principal?.kind === 'virtual_key') throw new GatewayError('FORBIDDEN', 'Virtual keys may not use embeddings', { method });
    const tenant = principal?.tenantId ?? 'default';
    const p = params ?? {};
    switch (method) {
      case 'embedding.generate':
        return this.routes.generateFor(tenant, decodeBody(this.routes.GenerateBody, p));
      case 'embedding.search':
        return this.routes.searchFor(tenant, decodeBody(this.routes.SearchBody, p));
      case 'embedding.cross_model_search':
        return this.routes.crossModelFor(tenant, decodeBody(this.routes.CrossBody, p));
      default:
        return { providers: this.routes.health() };
    }
  }

  closed(): void {
    // nothing is held per connection
  }
}
