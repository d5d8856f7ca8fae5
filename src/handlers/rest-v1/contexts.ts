/**
 * Contexts over `/api/v1/mcp/context*` (developer-mesh MCP Server API
 * reference, https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md, "MCP Context Management"): conversation contexts of
 * an agent's session, stored per tenant in LevelDB ({@link V1Store.contexts}), searchable with a
 * MiniSearch (BM25) full-text index and summarised extractively.
 *
 * Routes (every one scoped to the caller's tenant: another tenant's context is 404, never 403):
 * - `POST /api/v1/mcp/context` `{agent_id, session_id, content: [{role, content}], metadata?}` → 201
 *   `{"message":"context created","id","context"}`;
 * - `GET /api/v1/mcp/context/:id` → the context ({@link ContextView});
 * - `PUT /api/v1/mcp/context/:id` `{content?, metadata?, options?: {replace_content?, truncate_to_size?}}`
 *   → the updated context;
 * - `DELETE /api/v1/mcp/context/:id` → `{"status":"deleted"}` (its relationships and its stored
 *   model summary go in the same batch);
 * - `GET /api/v1/mcp/contexts?agent_id&session_id&limit&offset` → `{contexts, total, limit, offset}`;
 * - `POST /api/v1/mcp/context/:id/search` `{query, limit?}` → `{"results":[{role, content, timestamp, score, index}]}`;
 * - `GET /api/v1/mcp/context/:id/summary?sentences` → `{summary, method:"extractive", ...}`.
 *
 * Size rule: the size of a context is the number of UTF-8 bytes of `JSON.stringify(content)`,
 * `content` being the stored messages `[{role, content, timestamp}, ...]` ({@link contentBytes}).
 * A context holds at most {@link MAX_MESSAGES} messages and {@link MAX_CONTENT_BYTES} bytes;
 * a write that would go beyond either (after `options.truncate_to_size`, if given) is refused with
 * 413 `BODY_TOO_LARGE` and changes nothing. `truncate_to_size: n` keeps the longest suffix of the
 * messages (the newest) whose size is at most `n` bytes ({@link truncateToSize}).
 *
 * Search index: one MiniSearch per context, built from LevelDB in {@link ContextRoutes.init} (so it
 * survives restarts: it is rebuilt, not persisted), and kept in step by every write of this module
 * (appends add documents; replacement, truncation and deletion rebuild or drop the context's index).
 * The same in-memory entries answer the list route (agent, session, times, message count), so a
 * list never decodes messages; GET, PUT, DELETE and the summary read the record from LevelDB.
 *
 * Writes to one context are serialised (a promise chain per context), so concurrent appends and
 * updates never lose messages: each one reads the record the previous one wrote.
 */
import * as t from 'io-ts';
import MiniSearch, { type SearchOptions } from 'minisearch';
import { GatewayError } from '../../base/errors.js';
import { decodeBody } from '../../codecs/schema.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import type { ContextMessage, ContextRecord, V1Store } from '../../store/v1-records.js';
import { ok, type RestReply } from '../rest/router.js';
import { PAGE_QUERY, newId, nowIso, paginate, type V1Api, type V1Request } from '../rest/v1-api.js';
import type { Contexts, Relationships } from './contracts.js';
import { KeyedQueue } from '../../streams/keyed-queue.js';
import { contextSummaries } from './context-summaries.js';
import { checkLimits, extractiveSummary, mergeMetadata, truncateToSize } from './context-content.js';
import {
  ContextView,
  CreateContextBody,
  CreatedReply,
  DEFAULT_SEARCH_LIMIT,
  DEFAULT_SUMMARY_SENTENCES,
  DeletedReply,
  ListReply,
  MAX_CONTENT_BYTES,
  MAX_MESSAGES,
  MAX_METADATA_BYTES,
  MAX_SUMMARY_SENTENCES,
  Messages,
  SearchContextBody,
  SearchReply,
  SummaryView,
  UpdateContextBody,
} from './context-wire.js';

export interface ContextRoutesDeps {
  readonly repos: V1Store;
  readonly relationships: Relationships;
  readonly bus: EventBus;
  readonly log: Logger;
}

/** What the search index holds of one context (in step with its stored record). */
interface Entry {
  readonly agent_id: string;
  readonly session_id: string;
  readonly created_at: string;
  updated_at: string;
  /** The stored messages; document `${id}:${i}` of `index` is `messages[i]`. */
  messages: readonly ContextMessage[];
  index: MiniSearch<IndexedMessage>;
}

interface IndexedMessage {
  readonly id: string;
  readonly content: string;
}

/**
 * MiniSearch's own BM25 relevance; prefix matching for query words of 3+ characters and fuzzy
 * matching (edit distance ≤ 20 % of the word, at most 2) for words of 5+ characters; MiniSearch
 * weights prefix and fuzzy matches below exact ones. Words are OR-combined.
 */
const SEARCH_OPTIONS: SearchOptions = {
  combineWith: 'OR',
  prefix: (term) => term.length >= 3,
  fuzzy: (term) => (term.length >= 5 ? 0.2 : false),
  maxFuzzy: 2,
};

function newIndex(): MiniSearch<IndexedMessage> {
  return new MiniSearch<IndexedMessage>({ fields: ['content'], storeFields: [], searchOptions: SEARCH_OPTIONS });
}

function docs(contextId: string, messages: readonly ContextMessage[], from = 0): IndexedMessage[] {
  const out: IndexedMessage[] = [];
  for (let i = from; i < messages.length; i++) out.push({ id: `${contextId}:${i}`, content: (messages[i] as ContextMessage).content });
  return out;
}

function view(r: ContextRecord): t.TypeOf<typeof ContextView> {
  return {
    id: r.id,
    agent_id: r.agent_id,
    session_id: r.session_id,
    content: r.content.map((m) => ({ role: m.role, content: m.content, timestamp: m.timestamp })),
    metadata: r.metadata,
    created_at: r.created_at,
    updated_at: r.updated_at,
  } as t.TypeOf<typeof ContextView>;
}

function stamp(messages: readonly { readonly role: string; readonly content: string }[], timestamp: string): ContextMessage[] {
  return messages.map((m) => ({ role: m.role, content: m.content, timestamp }));
}

/**
 * The context routes and the {@link Contexts} service the tool routes use (developer-mesh
 * API reference "MCP Context Management"). Call {@link ContextRoutes.init} once before serving.
 */
export class ContextRoutes implements Contexts {
  /** tenant → context id → index entry. */
  private readonly entries = new Map<string, Map<string, Entry>>();
  /** Writes per context (`${tenant}\0${id}`), one at a time. */
  private readonly writes = new KeyedQueue();
  /** Stored model summaries: deleted with their context. */
  private readonly summaries: ReturnType<typeof contextSummaries>;

  constructor(private readonly deps: ContextRoutesDeps) {
    this.summaries = contextSummaries(deps.repos);
  }

  /**
   * Builds the search index from every stored context of every tenant (the index is kept in
   * memory and rebuilt at each start; LevelDB is the source of truth). Resolves when done.
   */
  async init(): Promise<void> {
    const started = Date.now();
    const sub = this.deps.repos.store.sublevel<ContextRecord>('contexts');
    let contexts = 0;
    let messages = 0;
    for await (const [key, record] of sub.iterator()) {
      const sep = key.indexOf('\u0000');
      if (sep <= 0) continue;
      this.setEntry(key.slice(0, sep), record);
      contexts++;
      messages += record.content.length;
    }
    this.deps.log.info('context search index built', { contexts, messages, duration_ms: Date.now() - started });
  }

  /** Registers the seven context routes on `api`. */
  register(api: V1Api): void {
    api.on(
      'POST',
      '/api/v1/mcp/context',
      {
        summary: 'Create a conversation context',
        tag: 'contexts',
        body: CreateContextBody,
        responses: {
          201: { description: '`{"message":"context created","id","context"}`', schema: CreatedReply },
          400: { description: 'Invalid body; `details.problems` names every bad field' },
          413: { description: `More than ${MAX_MESSAGES} messages or ${MAX_CONTENT_BYTES} bytes of content, or metadata over ${MAX_METADATA_BYTES} bytes` },
        },
      },
      (req) => this.create(req),
    );
    api.on(
      'GET',
      '/api/v1/mcp/contexts',
      {
        summary: 'List contexts, filtered by agent and session (newest first)',
        tag: 'contexts',
        query: {
          agent_id: { description: 'Only contexts of this agent' },
          session_id: { description: 'Only contexts of this session' },
          ...PAGE_QUERY,
        },
        responses: {
          200: { description: '`{"contexts":[{id, agent_id, session_id, created_at, updated_at, message_count}], total, limit, offset}`', schema: ListReply },
          400: { description: 'Malformed limit or offset' },
        },
      },
      (req) => this.list(req),
    );
    api.on(
      'GET',
      '/api/v1/mcp/context/:id',
      {
        summary: 'Get a context',
        tag: 'contexts',
        responses: { 200: { description: 'The context', schema: ContextView }, 404: { description: 'No such context for this tenant' } },
      },
      async (req) => ok(view(await this.record(req.tenant, req.params['id'] ?? ''))),
    );
    api.on(
      'PUT',
      '/api/v1/mcp/context/:id',
      {
        summary: 'Append messages to a context (or replace them), merge metadata, optionally truncate to a size',
        tag: 'contexts',
        body: UpdateContextBody,
        responses: {
          200: { description: 'The updated context', schema: ContextView },
          400: { description: 'Invalid body; `details.problems` names every bad field' },
          404: { description: 'No such context for this tenant' },
          413: { description: `The result would exceed ${MAX_MESSAGES} messages or ${MAX_CONTENT_BYTES} bytes (nothing changed)` },
        },
      },
      (req) => this.update(req),
    );
    api.on(
      'DELETE',
      '/api/v1/mcp/context/:id',
      {
        summary: 'Delete a context, its relationships and its stored model summary',
        tag: 'contexts',
        responses: { 200: { description: '`{"status":"deleted"}`', schema: DeletedReply }, 404: { description: 'No such context for this tenant' } },
      },
      (req) => this.remove(req),
    );
    api.on(
      'POST',
      '/api/v1/mcp/context/:id/search',
      {
        summary: "Full-text search of a context's messages, ranked by relevance (BM25, prefix and fuzzy matching)",
        tag: 'contexts',
        body: SearchContextBody,
        responses: {
          200: { description: '`{"results":[{role, content, timestamp, score, index}]}`, best first', schema: SearchReply },
          400: { description: 'Invalid body; `details.problems` names every bad field' },
          404: { description: 'No such context for this tenant' },
        },
      },
      (req) => this.search(req),
    );
    api.on(
      'GET',
      '/api/v1/mcp/context/:id/summary',
      {
        summary: 'Extractive summary of a context (top sentences by word frequency and position)',
        tag: 'contexts',
        query: {
          sentences: {
            description: `Most sentences to pick, 1..${MAX_SUMMARY_SENTENCES} (default ${DEFAULT_SUMMARY_SENTENCES})`,
            schema: { type: 'integer', minimum: 1, maximum: MAX_SUMMARY_SENTENCES },
          },
        },
        responses: {
          200: { description: '`{"summary", "method":"extractive", message_count, sentence_count, sentences_used}`', schema: SummaryView },
          400: { description: 'Malformed `sentences`' },
          404: { description: 'No such context for this tenant' },
        },
      },
      (req) => this.summary(req),
    );
  }

  /**
   * Appends `messages` (each stamped with the current time, ISO-8601 UTC) to context `id` of
   * `tenant`, after the writes already queued for that context; updates the search index and
   * publishes `ContextUpdated` and `StoreChanged` `['contexts']`. Durable when it resolves.
   * @throws GatewayError NOT_FOUND (404) when there is no such context in `tenant`;
   *   VALIDATION_ERROR (400) for a blank or over-long role or content;
   *   BODY_TOO_LARGE (413) when the context would exceed {@link MAX_MESSAGES} or {@link MAX_CONTENT_BYTES}.
   */
  async append(tenant: string, id: string, messages: readonly Pick<ContextMessage, 'role' | 'content'>[]): Promise<void> {
    const input = decodeBody(Messages, messages.map((m) => ({ role: m.role, content: m.content })));
    await this.change(tenant, id, { content: input });
  }

  /** Whether context `id` exists in `tenant` (read from LevelDB). */
  async exists(tenant: string, id: string): Promise<boolean> {
    return (await this.deps.repos.contexts.get(tenant, id)) !== undefined;
  }

  // --- handlers ---------------------------------------------------------------------------

  private async create(req: V1Request<t.TypeOf<typeof CreateContextBody>>): Promise<RestReply> {
    const now = nowIso();
    const record: ContextRecord = {
      id: newId('ctx'),
      agent_id: req.data.agent_id,
      session_id: req.data.session_id,
      content: stamp(req.data.content, now),
      metadata: mergeMetadata({}, req.data.metadata),
      created_at: now,
      updated_at: now,
    };
    checkLimits(record.content, record.metadata);
    await this.deps.repos.contexts.put(req.tenant, record);
    this.setEntry(req.tenant, record);
    this.publish('ContextCreated', req.tenant, record);
    return ok({ message: 'context created', id: record.id, context: view(record) }, 201);
  }

  private list(req: V1Request): RestReply {
    const agent = req.query.get('agent_id');
    const session = req.query.get('session_id');
    const rows = [...(this.entries.get(req.tenant)?.entries() ?? [])]
      .filter(([, e]) => (agent === null || e.agent_id === agent) && (session === null || e.session_id === session))
      .map(([id, e]) => ({ id, agent_id: e.agent_id, session_id: e.session_id, created_at: e.created_at, updated_at: e.updated_at, message_count: e.messages.length }))
      .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const page = paginate(rows, req.query);
    return ok({ contexts: page.items, total: page.total, limit: page.limit, offset: page.offset });
  }

  private async update(req: V1Request<t.TypeOf<typeof UpdateContextBody>>): Promise<RestReply> {
    const updated = await this.change(req.tenant, req.params['id'] ?? '', {
      ...(req.data.content !== undefined ? { content: req.data.content } : {}),
      ...(req.data.metadata !== undefined ? { metadata: req.data.metadata } : {}),
      ...(req.data.options?.replace_content !== undefined ? { replace: req.data.options.replace_content } : {}),
      ...(req.data.options?.truncate_to_size !== undefined ? { truncateTo: req.data.options.truncate_to_size } : {}),
    });
    return ok(view(updated));
  }

  private async remove(req: V1Request): Promise<RestReply> {
    const tenant = req.tenant;
    const id = req.params['id'] ?? '';
    await this.serially(tenant, id, async () => {
      await this.record(tenant, id);
      // its relationships and its stored model summary go in the same batch
      const removed = await this.deps.relationships.deleteWith(tenant, id, [...this.deps.repos.contexts.ops(tenant, [], [id]), ...this.summaries.ops(tenant, [], [id])]);
      this.entries.get(tenant)?.delete(id);
      if (this.entries.get(tenant)?.size === 0) this.entries.delete(tenant);
      this.deps.bus.publish({ event_type: 'ContextDeleted', id, tenant_id: tenant });
      this.deps.bus.publish({ event_type: 'StoreChanged', tags: removed > 0 ? ['contexts', 'relationships'] : ['contexts'] });
    });
    return ok({ status: 'deleted' });
  }

  private async search(req: V1Request<t.TypeOf<typeof SearchContextBody>>): Promise<RestReply> {
    const entry = await this.entry(req.tenant, req.params['id'] ?? '');
    const limit = req.data.limit ?? DEFAULT_SEARCH_LIMIT;
    const { messages, index } = entry; // one consistent snapshot: both are replaced together
    const results = index
      .search(req.data.query)
      .slice(0, limit)
      .flatMap((r) => {
        const i = Number(String(r.id).slice(String(r.id).lastIndexOf(':') + 1));
        const m = messages[i];
        return m ? [{ role: m.role, content: m.content, timestamp: m.timestamp, score: Math.round(r.score * 1e6) / 1e6, index: i }] : [];
      });
    return ok({ results });
  }

  private async summary(req: V1Request): Promise<RestReply> {
    const raw = req.query.get('sentences');
    let n = DEFAULT_SUMMARY_SENTENCES;
    if (raw !== null && raw !== '') {
      n = Number(raw);
      if (!Number.isInteger(n) || n < 1 || n > MAX_SUMMARY_SENTENCES) {
        throw new GatewayError('VALIDATION_ERROR', `sentences must be a whole number 1..${MAX_SUMMARY_SENTENCES}`, {
          problems: [`sentences: expected a whole number 1..${MAX_SUMMARY_SENTENCES}, got ${JSON.stringify(raw)}`],
        });
      }
    }
    const record = await this.record(req.tenant, req.params['id'] ?? '');
    return ok(extractiveSummary(record.content, n));
  }

  // --- internals ----------------------------------------------------------------------------

  /** The stored record, or 404. */
  private async record(tenant: string, id: string): Promise<ContextRecord> {
    const r = await this.deps.repos.contexts.get(tenant, id);
    if (r === undefined) throw new GatewayError('NOT_FOUND', `Context ${id} not found`, { id });
    return r;
  }

  /** The index entry of a context, rebuilt from LevelDB if missing; 404 when there is no such context. */
  private async entry(tenant: string, id: string): Promise<Entry> {
    return this.entries.get(tenant)?.get(id) ?? this.setEntry(tenant, await this.record(tenant, id));
  }

  /** (Re)builds the index entry of `record` from scratch. */
  private setEntry(tenant: string, record: ContextRecord): Entry {
    const index = newIndex();
    index.addAll(docs(record.id, record.content));
    const entry: Entry = {
      agent_id: record.agent_id,
      session_id: record.session_id,
      created_at: record.created_at,
      updated_at: record.updated_at,
      messages: record.content,
      index,
    };
    let byId = this.entries.get(tenant);
    if (byId === undefined) this.entries.set(tenant, (byId = new Map()));
    byId.set(record.id, entry);
    return entry;
  }

  /** Runs `fn` after every write already queued for context `id` of `tenant`. */
  private serially<T>(tenant: string, id: string, fn: () => Promise<T>): Promise<T> {
    return this.writes.run(`${tenant}\u0000${id}`, fn);
  }

  /**
   * The one write path of PUT and append: appends (or replaces) messages, merges metadata,
   * truncates, checks the limits, commits, then updates the index and publishes.
   */
  private change(
    tenant: string,
    id: string,
    change: {
      readonly content?: readonly { readonly role: string; readonly content: string }[];
      readonly metadata?: Readonly<Record<string, unknown>>;
      readonly replace?: boolean;
      readonly truncateTo?: number;
    },
  ): Promise<ContextRecord> {
    return this.serially(tenant, id, async () => {
      const old = await this.record(tenant, id);
      const now = nowIso();
      const added = stamp(change.content ?? [], now);
      const replace = change.replace === true;
      const combined = replace ? added : [...old.content, ...added];
      const content = change.truncateTo !== undefined ? truncateToSize(combined, change.truncateTo) : combined;
      const metadata = change.metadata !== undefined ? mergeMetadata(old.metadata, change.metadata) : old.metadata;
      checkLimits(content, metadata);
      const next: ContextRecord = { ...old, content, metadata, updated_at: now };
      await this.deps.repos.contexts.put(tenant, next);
      const entry = this.entries.get(tenant)?.get(id);
      if (entry !== undefined && !replace && content.length === combined.length && entry.messages.length === old.content.length) {
        // a pure append: index the new messages only
        entry.index.addAll(docs(id, content, old.content.length));
        entry.messages = content;
        entry.updated_at = now;
      } else {
        this.setEntry(tenant, next);
      }
      this.publish('ContextUpdated', tenant, next);
      return next;
    });
  }

  private publish(type: 'ContextCreated' | 'ContextUpdated', tenant: string, r: ContextRecord): void {
    this.deps.bus.publish({ event_type: type, id: r.id, tenant_id: tenant, agent_id: r.agent_id, session_id: r.session_id, message_count: r.content.length });
    this.deps.bus.publish({ event_type: 'StoreChanged', tags: ['contexts'] });
  }
}
