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
 * - `DELETE /api/v1/mcp/context/:id` → `{"status":"deleted"}` (its relationships go in the same batch);
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
import { decodeBody, withSchema } from '../../codecs/schema.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import type { ContextMessage, ContextRecord, V1Store } from '../../store/v1-records.js';
import { ok, type RestReply } from '../rest/router.js';
import { PAGE_QUERY, newId, nowIso, paginate, type V1Api, type V1Request } from '../rest/v1-api.js';
import type { Contexts, Relationships } from './contracts.js';
import { KeyedQueue } from '../../streams/keyed-queue.js';

// ---------------------------------------------------------------------------------------------
// Limits

/** Most messages one context holds. */
export const MAX_MESSAGES = 10_000;
/** Most bytes one context's content takes, measured by {@link contentBytes} (1 MiB). */
export const MAX_CONTENT_BYTES = 1024 * 1024;
/** Most characters (Unicode code points) of a message's `role`. */
export const MAX_ROLE_CHARS = 64;
/** Most characters (Unicode code points) of a message's `content` (256 Ki). */
export const MAX_MESSAGE_CHARS = 256 * 1024;
/** Most characters of `agent_id` and `session_id`. */
export const MAX_REF_CHARS = 256;
/** Most bytes of a context's `metadata`, as UTF-8 bytes of its JSON (64 KiB). */
export const MAX_METADATA_BYTES = 64 * 1024;
/** Most characters of a search query. */
export const MAX_QUERY_CHARS = 1024;
/** Search results answered when the request names no `limit`. */
export const DEFAULT_SEARCH_LIMIT = 10;
/** Most search results a request may ask for. */
export const MAX_SEARCH_LIMIT = 100;
/** Sentences an extractive summary picks when the request names no `sentences`. */
export const DEFAULT_SUMMARY_SENTENCES = 3;
/** Most sentences a summary request may ask for. */
export const MAX_SUMMARY_SENTENCES = 20;

// ---------------------------------------------------------------------------------------------
// Codecs (requests decoded with them; responses documented with them)

/** Whether `s` has at most `max` Unicode code points (as JSON Schema's `maxLength` counts). */
function withinChars(s: string, max: number): boolean {
  if (s.length <= max) return true;
  if (s.length > 2 * max) return false;
  let n = 0;
  for (const _ of s) if (++n > max) return false;
  return true;
}

/** A string of 1..`max` characters (code points), not blank, branded `name` (the name io-ts errors show). */
const nonBlank = <N extends string>(name: N, max: number, description: string): t.BrandC<t.StringC, { readonly [K in N]: symbol }> =>
  withSchema(
    t.brand(t.string, (s): s is t.Branded<string, { readonly [K in N]: symbol }> => withinChars(s, max) && s.trim() !== '', name),
    { type: 'string', minLength: 1, maxLength: max, pattern: '\\S', description },
  );

/** A message's role (`user`, `assistant`, `system`, `tool`, ...): 1..64 characters, not blank. */
export const Role = nonBlank('Role', MAX_ROLE_CHARS, 'Who spoke: user, assistant, system, tool, ... (1..64 characters, not blank)');
/** A message's text: 1..262 144 characters, not blank. */
export const MessageText = nonBlank('MessageText', MAX_MESSAGE_CHARS, 'The message text (1..262144 characters, not blank)');
const AgentRef = nonBlank('AgentId', MAX_REF_CHARS, 'The agent the context belongs to (1..256 characters)');
const SessionRef = nonBlank('SessionId', MAX_REF_CHARS, 'The session the context belongs to (1..256 characters)');
const Query = nonBlank('SearchQuery', MAX_QUERY_CHARS, 'Words to look for (1..1024 characters, not blank); prefix and fuzzy matching apply');

/** One message as a request carries it: `{role, content}` (the server stamps `timestamp`). */
export const MessageInput = t.exact(t.type({ role: Role, content: MessageText }), 'MessageInput');

const Messages = withSchema(t.array(MessageInput, 'Messages'), {
  description: `Messages, oldest first; a context holds at most ${MAX_MESSAGES} messages and ${MAX_CONTENT_BYTES} bytes (UTF-8 bytes of JSON.stringify of the stored messages), else 413`,
});

const Metadata = withSchema(t.UnknownRecord, {
  type: 'object',
  description: `Free-form JSON object, at most ${MAX_METADATA_BYTES} bytes as JSON. On update merged key by key; a key set to null is removed (RFC 7386 at the top level)`,
});

interface ByteSizeBrand {
  readonly PositiveByteCount: unique symbol;
}
const ByteSize = withSchema(
  t.brand(t.number, (n): n is t.Branded<number, ByteSizeBrand> => Number.isSafeInteger(n) && n >= 1, 'PositiveByteCount'),
  { type: 'integer', minimum: 1, description: 'Bytes: UTF-8 bytes of JSON.stringify(content); the oldest messages are dropped until the content fits' },
);

interface SearchLimitBrand {
  readonly SearchLimit: unique symbol;
}
const SearchLimit = withSchema(
  t.brand(t.number, (n): n is t.Branded<number, SearchLimitBrand> => Number.isInteger(n) && n >= 1 && n <= MAX_SEARCH_LIMIT, 'SearchLimit'),
  { type: 'integer', minimum: 1, maximum: MAX_SEARCH_LIMIT, description: `Most results (default ${DEFAULT_SEARCH_LIMIT})` },
);

/** `POST /api/v1/mcp/context` body (developer-mesh "Create Context"). */
export const CreateContextBody = t.exact(
  t.intersection([t.type({ agent_id: AgentRef, session_id: SessionRef, content: Messages }), t.partial({ metadata: Metadata })]),
  'CreateContextBody',
);

/** `options` of `PUT /api/v1/mcp/context/:id`. */
export const UpdateOptions = t.exact(
  t.partial({
    /** Replace the stored messages with `content` instead of appending. */
    replace_content: t.boolean,
    /** After the change, keep only the newest messages that fit this many bytes. */
    truncate_to_size: ByteSize,
  }),
  'UpdateOptions',
);

/** `PUT /api/v1/mcp/context/:id` body (developer-mesh "Update Context"). */
export const UpdateContextBody = t.exact(t.partial({ content: Messages, metadata: Metadata, options: UpdateOptions }), 'UpdateContextBody');

/** `POST /api/v1/mcp/context/:id/search` body (developer-mesh "Search Within Context"). */
export const SearchContextBody = t.exact(t.intersection([t.type({ query: Query }), t.partial({ limit: SearchLimit })]), 'SearchContextBody');

interface TimestampBrand {
  readonly Timestamp: unique symbol;
}
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
/** An ISO-8601 UTC timestamp as this API writes them (`2024-01-15T10:00:00.000Z`). */
export const Timestamp = withSchema(
  t.brand(t.string, (s): s is t.Branded<string, TimestampBrand> => ISO_UTC.test(s) && !Number.isNaN(Date.parse(s)), 'Timestamp'),
  { type: 'string', format: 'date-time' },
);

interface ContextIdBrand {
  readonly ContextId: unique symbol;
}
/** A context id: `ctx-<uuid>`. */
export const ContextId = withSchema(
  t.brand(t.string, (s): s is t.Branded<string, ContextIdBrand> => /^ctx-[0-9a-f-]{36}$/.test(s), 'ContextId'),
  { type: 'string', pattern: '^ctx-[0-9a-f-]{36}$' },
);

/** A stored message as answered: `{role, content, timestamp}`. */
export const MessageView = t.type({ role: t.string, content: t.string, timestamp: Timestamp }, 'MessageView');

/** A context as answered by GET, PUT and (inside `context`) POST. */
export const ContextView = t.type(
  {
    id: ContextId,
    agent_id: t.string,
    session_id: t.string,
    content: t.array(MessageView),
    metadata: t.UnknownRecord,
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  'ContextView',
);

/** One row of `GET /api/v1/mcp/contexts`. */
export const ContextListItem = t.type(
  { id: ContextId, agent_id: t.string, session_id: t.string, created_at: Timestamp, updated_at: Timestamp, message_count: t.number },
  'ContextListItem',
);

const CreatedReply = t.type({ message: t.literal('context created'), id: ContextId, context: ContextView }, 'ContextCreated');
const ListReply = t.type({ contexts: t.array(ContextListItem), total: t.number, limit: t.number, offset: t.number }, 'ContextList');
const DeletedReply = t.type({ status: t.literal('deleted') }, 'ContextDeleted');
/** One search hit: the message, its 0-based position in the context, and its BM25 score. */
export const SearchHit = t.type({ role: t.string, content: t.string, timestamp: Timestamp, score: t.number, index: t.number }, 'SearchHit');
const SearchReply = t.type({ results: t.array(SearchHit) }, 'SearchResults');
/** `GET /api/v1/mcp/context/:id/summary` answer. */
export const SummaryView = t.type(
  {
    summary: t.string,
    method: t.literal('extractive'),
    message_count: t.number,
    sentence_count: t.number,
    sentences_used: t.number,
  },
  'ContextSummary',
);

// ---------------------------------------------------------------------------------------------
// Size and truncation

function messageBytes(m: ContextMessage): number {
  return Buffer.byteLength(JSON.stringify({ role: m.role, content: m.content, timestamp: m.timestamp }), 'utf8');
}

/**
 * The size of a context's content in bytes: the UTF-8 length of `JSON.stringify(messages)` with
 * each message as `{role, content, timestamp}` (2 for no messages). Computed per message
 * (`[` + sizes joined by `,` + `]`), equal to the whole-array measure.
 */
export function contentBytes(messages: readonly ContextMessage[]): number {
  let total = 2 + Math.max(0, messages.length - 1);
  for (const m of messages) total += messageBytes(m);
  return total;
}

/**
 * The longest suffix of `messages` (the newest ones, order kept) whose {@link contentBytes} is at
 * most `maxBytes`; the empty list when not even the newest message fits (the empty list is the
 * floor, even for `maxBytes` < 2). Returns `messages` itself (same array) when it already fits.
 * O(n). `maxBytes` is in bytes.
 */
export function truncateToSize<M extends ContextMessage>(messages: readonly M[], maxBytes: number): readonly M[] {
  let total = 2;
  let start = messages.length;
  for (let i = messages.length - 1; i >= 0; i--) {
    const next = total + messageBytes(messages[i] as M) + (i === messages.length - 1 ? 0 : 1);
    if (next > maxBytes) break;
    total = next;
    start = i;
  }
  return start === 0 ? messages : messages.slice(start);
}

function checkLimits(content: readonly ContextMessage[], metadata: Readonly<Record<string, unknown>>): void {
  if (content.length > MAX_MESSAGES) {
    throw new GatewayError('BODY_TOO_LARGE', `A context holds at most ${MAX_MESSAGES} messages; this change would make ${content.length}. Use options.truncate_to_size or replace_content`, {
      field: 'content',
      limit_messages: MAX_MESSAGES,
      message_count: content.length,
    });
  }
  const bytes = contentBytes(content);
  if (bytes > MAX_CONTENT_BYTES) {
    throw new GatewayError('BODY_TOO_LARGE', `A context's content is at most ${MAX_CONTENT_BYTES} bytes (UTF-8 JSON); this change would make ${bytes}. Use options.truncate_to_size`, {
      field: 'content',
      limit_bytes: MAX_CONTENT_BYTES,
      size_bytes: bytes,
    });
  }
  const metaBytes = Buffer.byteLength(JSON.stringify(metadata), 'utf8');
  if (metaBytes > MAX_METADATA_BYTES) {
    throw new GatewayError('BODY_TOO_LARGE', `metadata is at most ${MAX_METADATA_BYTES} bytes as JSON; got ${metaBytes}`, {
      field: 'metadata',
      limit_bytes: MAX_METADATA_BYTES,
      size_bytes: metaBytes,
    });
  }
}

/** RFC 7386 at the top level: keys of `patch` replace those of `target`; a null value removes the key. */
function mergeMetadata(target: Readonly<Record<string, unknown>>, patch: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(patch ?? {})) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Extractive summary

const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be been but by can could did do does for from had has have he her his how i if in into is it its ' +
    'me my no not of on or our she so than that the their them then there these they this to too was we were what when ' +
    'where which while who why will with would you your yes ok okay please thanks thank let just also about all any some'
  ).split(' '),
);

function words(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => w.length >= 2 && !STOP_WORDS.has(w));
}

function sentencesOf(text: string): string[] {
  return text
    .split(/\n+|(?<=[.!?])\s+/)
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter((s) => s !== '');
}

/** What {@link extractiveSummary} answers. */
export interface ExtractiveSummary {
  readonly summary: string;
  readonly method: 'extractive';
  /** Messages read. */
  readonly message_count: number;
  /** Distinct sentences found in them. */
  readonly sentence_count: number;
  /** Sentences in `summary`. */
  readonly sentences_used: number;
}

const MAX_SUMMARY_SENTENCE_CHARS = 300;

/**
 * An extractive summary of `messages` (no model provider is involved): the `maxSentences`
 * best-scoring sentences, in their original order, joined by spaces.
 *
 * - Sentences: each message's text split at line breaks and after `.`, `!` or `?` followed by
 *   white space; repeated sentences (same text) count once, at their first place.
 * - Words: lower-cased runs of letters and digits, 2+ characters, minus a short English
 *   stop-word list. `tf(w)` = occurrences of `w` in the whole context; `maxTf` = the largest.
 * - Score of a sentence = the mean of `tf(w) / maxTf` over its distinct words (SumBasic-like: a
 *   sentence made of the context's frequent words scores high), × 0.5 when it has fewer than 3
 *   distinct words, × 1.25 when it opens its message (position). Ties go to the earlier sentence.
 * - Sentences longer than 300 characters are cut with `…`.
 */
export function extractiveSummary(messages: readonly Pick<ContextMessage, 'content'>[], maxSentences = DEFAULT_SUMMARY_SENTENCES): ExtractiveSummary {
  const seen = new Set<string>();
  const sentences: { text: string; words: string[]; first: boolean; pos: number }[] = [];
  for (const m of messages) {
    sentencesOf(m.content).forEach((text, i) => {
      if (seen.has(text)) return;
      seen.add(text);
      sentences.push({ text, words: words(text), first: i === 0, pos: sentences.length });
    });
  }
  const tf = new Map<string, number>();
  for (const s of sentences) for (const w of s.words) tf.set(w, (tf.get(w) ?? 0) + 1);
  const maxTf = Math.max(1, ...tf.values());
  const scored = sentences.map((s) => {
    const distinct = [...new Set(s.words)];
    const mean = distinct.length === 0 ? 0 : distinct.reduce((acc, w) => acc + (tf.get(w) ?? 0) / maxTf, 0) / distinct.length;
    return { ...s, score: mean * (distinct.length < 3 ? 0.5 : 1) * (s.first ? 1.25 : 1) };
  });
  const picked = [...scored]
    .sort((a, b) => b.score - a.score || a.pos - b.pos)
    .slice(0, maxSentences)
    .sort((a, b) => a.pos - b.pos);
  const cut = (s: string): string => (s.length > MAX_SUMMARY_SENTENCE_CHARS ? `${s.slice(0, MAX_SUMMARY_SENTENCE_CHARS - 1)}…` : s);
  return {
    summary: picked.map((s) => cut(s.text)).join(' '),
    method: 'extractive',
    message_count: messages.length,
    sentence_count: sentences.length,
    sentences_used: picked.length,
  };
}

// ---------------------------------------------------------------------------------------------
// The routes

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

  constructor(private readonly deps: ContextRoutesDeps) {}

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
        summary: 'Delete a context and its relationships',
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
      const removed = await this.deps.relationships.deleteWith(tenant, id, this.deps.repos.contexts.ops(tenant, [], [id]));
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
