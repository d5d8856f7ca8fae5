/**
 * The wire shapes of the contexts routes `/api/v1/mcp/context*` (developer-mesh contexts,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md,
 * "Context Management"): the limits, the body codecs (io-ts, decoded at the boundary) and the reply
 * shapes the OpenAPI document is generated from.
 */
import * as t from 'io-ts';
import { withSchema } from '../../codecs/schema.js';

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

export const Messages = withSchema(t.array(MessageInput, 'Messages'), {
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

export const CreatedReply = t.type({ message: t.literal('context created'), id: ContextId, context: ContextView }, 'ContextCreated');
export const ListReply = t.type({ contexts: t.array(ContextListItem), total: t.number, limit: t.number, offset: t.number }, 'ContextList');
export const DeletedReply = t.type({ status: t.literal('deleted') }, 'ContextDeleted');
/** One search hit: the message, its 0-based position in the context, and its BM25 score. */
export const SearchHit = t.type({ role: t.string, content: t.string, timestamp: Timestamp, score: t.number, index: t.number }, 'SearchHit');
export const SearchReply = t.type({ results: t.array(SearchHit) }, 'SearchResults');
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
