/**
 * Tools and actions over MCP at `/api/v1/tools*` (developer-mesh MCP Server API
 * reference, https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md, "Tool Integration" and "GitHub Tools (MCP
 * Protocol)"). A *tool* is an upstream MCP client, its *actions* are that upstream's own MCP tools
 * (DESIGN.md §6).
 *
 * Which actions a caller may use (checked in this order, the first refusal wins):
 * 1. the client's `disallowed_actions` deny list: stronger than any allow;
 * 2. the client's `tools_to_execute` (`["*"]` or absent = all, `[]` = none);
 * 3. the caller's own narrowing (`RequestAuth.filter`: the `x-bf-mcp-include-*` headers).
 *
 * Allowed actions are listed, described and callable; the others are listed as
 * `disallowed_actions` (with the reason) and answer 403 `TOOL_NOT_ALLOWED` everywhere, including
 * the describe routes. A client the caller's filter hides entirely is still listed, with no
 * allowed action. An unknown client is 404 `TOOL_NOT_FOUND`; an unknown action 404 `NOT_FOUND`.
 *
 * Every call (action, query, MCP-shaped) goes through {@link invokeTool} with surface `rest-v1`
 * (so the tool log and metrics see it), counts against the caller's tool-execution limit (429),
 * gets an `exec-<uuid>` id and publishes one `ToolActionExecuted` event. With `?context_id=` the
 * context must exist in the caller's tenant (404 before anything runs); after the call the
 * `tool_call` and `tool_result` messages are appended to it and a `triggered_by` relationship
 * context → tool_execution is recorded. A failure to record does not undo or hide the call: the
 * answer says `context_recorded: false` and the failure is logged.
 *
 * The names `actions` and `queries` are reserved: `/api/v1/tools/:tool/actions` and
 * `/api/v1/tools/:tool/queries` never address an MCP tool of that name through the MCP-shaped
 * routes (use `/actions/actions` for an upstream tool really called so).
 */
import * as t from 'io-ts';
import type { RequestAuth, ToolFilter } from '../../base/access.js';
import { GatewayError, UpstreamRpcError } from '../../base/errors.js';
import { withSchema, type JsonSchema, isJsonObject } from '../../codecs/schema.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import { invokeTool } from '../../upstreams/invoke.js';
import type { UpstreamManager } from '../../upstreams/manager.js';
import { isToolAllowed } from '../../upstreams/naming.js';
import type { JsonObject, Upstream } from '../../upstreams/upstream.js';
import { ok, type RestReply, type RouteDoc } from '../rest/router.js';
import { resultText } from '../tool-execute.js';
import { newId, paginate, PAGE_QUERY, type V1Api, type V1Request } from '../rest/v1-api.js';
import type { Contexts, Relationships } from './contracts.js';

/** What the tool routes need from the rest of the gateway. */
export interface ToolRoutesDeps {
  readonly manager: UpstreamManager;
  readonly bus: EventBus;
  readonly contexts: Contexts;
  readonly relationships: Relationships;
  /** Counts a tool execution against the caller's limit; throws RATE_LIMITED over it. */
  readonly admitToolExecution: (auth: RequestAuth | undefined) => Promise<void>;
  readonly log: Logger;
}

/** Why an action is refused: the client's deny list, its `tools_to_execute`, or the caller's filter. */
export type RefusalReason = 'disallowed_actions' | 'tools_to_execute' | 'caller';

/** The surface name the tool invocation events carry for calls made here. */
export const REST_V1_SURFACE = 'rest-v1';

const BASE = '/api/v1/tools';
const RESERVED = new Set(['actions', 'queries']);
/** Nesting depth beyond which {@link exampleFor} stops descending (cyclic or huge schemas). */
const MAX_EXAMPLE_DEPTH = 6;

// ---------------------------------------------------------------------------------------------
// Pure rules: descriptions, safety notes, parameters, examples, results
// ---------------------------------------------------------------------------------------------


function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** What {@link toolDescription} reads of an upstream. */
export interface DescribedUpstream {
  readonly name: string;
  readonly config: { readonly connection_type: string };
  readonly serverInfo: Readonly<Record<string, unknown>> | undefined;
  readonly instructions: string | undefined;
}

/**
 * The description of a tool (an upstream), first match wins:
 * 1. the server's `serverInfo.description`;
 * 2. its `instructions` when they are one short paragraph (≤ 300 characters, not a Markdown
 *    heading) — long manuals meant for a model are not a description;
 * 3. the server's title and name with version (`Everything Reference Server (mcp-servers/everything 2.0.0)`);
 * 4. `MCP client <name> (<connection_type>)` when the upstream never connected.
 */
export function toolDescription(u: DescribedUpstream): string {
  const info = u.serverInfo ?? {};
  const own = str(info['description']);
  if (own) return own;
  const instructions = str(u.instructions);
  if (instructions && !instructions.startsWith('#')) {
    const paragraph = instructions.split(/\n\s*\n/)[0]?.replace(/\s+/g, ' ').trim() ?? '';
    if (paragraph.length > 0 && paragraph.length <= 300 && paragraph === instructions.replace(/\s+/g, ' ').trim()) return paragraph;
  }
  const name = str(info['name']);
  const title = str(info['title']);
  const version = str(info['version']);
  const id = [name, version].filter(Boolean).join(' ');
  if (title && id) return `${title} (${id})`;
  if (title || id) return (title ?? id) as string;
  return `MCP client ${u.name} (${u.config.connection_type})`;
}

function names(tools: readonly JsonObject[]): string[] {
  return tools.map((tool) => tool['name'] as string);
}

/**
 * The safety notes of a tool for one caller, from the MCP tool annotations of its allowed actions
 * (MCP 2025-06-18 `ToolAnnotations`) and its deny list. Sentences, in this order, each only when
 * it applies:
 * - the actions refused by `disallowed_actions`;
 * - that no action is allowed;
 * - allowed actions marked `destructiveHint: true`;
 * - allowed actions not marked read-only and without a `destructiveHint` (MCP's default for them
 *   is destructive);
 * - allowed actions that change state but are marked `destructiveHint: false`;
 * - allowed actions marked `openWorldHint: true` (they reach outside systems);
 * - how many allowed actions are marked `readOnlyHint: true`;
 * - always: annotations are the upstream's hints, not guarantees.
 */
export function safetyNotes(allowed: readonly JsonObject[], denyListed: readonly string[]): string {
  const notes: string[] = [];
  if (denyListed.length > 0) notes.push(`Refused by this tool's disallowed_actions policy: ${denyListed.join(', ')}.`);
  if (allowed.length === 0) notes.push('No action of this tool is allowed for these credentials.');
  const readOnly: string[] = [];
  const destructive: string[] = [];
  const unmarked: string[] = [];
  const modifying: string[] = [];
  const openWorld: string[] = [];
  for (const tool of allowed) {
    const name = tool['name'] as string;
    const a = isJsonObject(tool['annotations']) ? tool['annotations'] : {};
    if (a['readOnlyHint'] === true) readOnly.push(name);
    else if (a['destructiveHint'] === true) destructive.push(name);
    else if (a['destructiveHint'] === false) modifying.push(name);
    else unmarked.push(name);
    if (a['openWorldHint'] === true) openWorld.push(name);
  }
  if (destructive.length > 0) notes.push(`Destructive (destructiveHint): ${destructive.join(', ')}.`);
  if (unmarked.length > 0) notes.push(`Not marked read-only, so they may modify or delete data (the MCP default): ${unmarked.join(', ')}.`);
  if (modifying.length > 0) notes.push(`Change state, not destructively: ${modifying.join(', ')}.`);
  if (openWorld.length > 0) notes.push(`Reach outside systems (openWorldHint): ${openWorld.join(', ')}.`);
  if (readOnly.length > 0) notes.push(`Read-only (readOnlyHint): ${readOnly.length} of ${allowed.length} allowed actions.`);
  notes.push('Annotations are hints from the upstream server, not guarantees.');
  return notes.join(' ');
}

function typeSummary(schema: Record<string, unknown>): string {
  const type = Array.isArray(schema['type']) ? (schema['type'] as unknown[]).join(' | ') : (str(schema['type']) ?? 'any value');
  const en = schema['enum'];
  return Array.isArray(en) && en.length > 0 ? `${type}, one of: ${en.map((v) => JSON.stringify(v)).join(', ')}` : type;
}

/**
 * `{param: description}` of an MCP `inputSchema`'s top-level properties: the property's
 * `description`, else its `title`, else its type (and enum values).
 */
export function parametersOf(inputSchema: unknown): Record<string, string> {
  const props = isJsonObject(inputSchema) && isJsonObject(inputSchema['properties']) ? inputSchema['properties'] : {};
  const out: Record<string, string> = {};
  for (const [name, schema] of Object.entries(props)) {
    const s = isJsonObject(schema) ? schema : {};
    out[name] = str(s['description']) ?? str(s['title']) ?? typeSummary(s);
  }
  return out;
}

/** The `required` names of an MCP `inputSchema`. */
export function requiredOf(inputSchema: unknown): string[] {
  const req = isJsonObject(inputSchema) ? inputSchema['required'] : undefined;
  return Array.isArray(req) ? req.filter((r): r is string => typeof r === 'string') : [];
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function numberExample(schema: Record<string, unknown>, integer: boolean): number {
  let v = 1;
  const min = num(schema['minimum']);
  const exMin = num(schema['exclusiveMinimum']);
  const max = num(schema['maximum']);
  const exMax = num(schema['exclusiveMaximum']);
  if (min !== undefined && v < min) v = min;
  if (exMin !== undefined && v <= exMin) v = exMin + 1;
  if (max !== undefined && v > max) v = max;
  if (exMax !== undefined && v >= exMax) v = exMax - 1;
  return integer ? Math.ceil(v) : v;
}

const FORMAT_EXAMPLES: Readonly<Record<string, string>> = {
  uri: 'https://example.com',
  url: 'https://example.com',
  email: 'user@example.com',
  'date-time': '2024-01-15T10:00:00Z',
  date: '2024-01-15',
  time: '10:00:00Z',
  uuid: '00000000-0000-4000-8000-000000000000',
};

/**
 * An example value for a JSON Schema, first match wins: the schema's `examples[0]`, `example`,
 * `default`, `const`, first `enum` value; the example of the first `anyOf`/`oneOf` branch (or
 * the merged object examples of `allOf`); else a placeholder by type: strings by `format` (a URL,
 * an email, a date...) or `<name>`, numbers 1 moved into `minimum`..`maximum`, booleans `false`,
 * arrays one example item, objects every property's example. `$ref` is not resolved (`null`).
 * Never throws, for any JSON input.
 * @param name the property name, used in string placeholders.
 * @param depth how deep in the enclosing schema this one is (callers start at 0).
 */
export function exampleFor(schema: unknown, name = 'value', depth = 0): unknown {
  if (!isJsonObject(schema)) return `<${name}>`;
  if (depth > MAX_EXAMPLE_DEPTH) return null;
  const examples = schema['examples'];
  if (Array.isArray(examples) && examples.length > 0) return examples[0];
  if ('example' in schema) return schema['example'];
  if ('default' in schema) return schema['default'];
  if ('const' in schema) return schema['const'];
  const en = schema['enum'];
  if (Array.isArray(en) && en.length > 0) return en[0];
  for (const key of ['anyOf', 'oneOf']) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) {
      const branch = branches.find((b) => !(isJsonObject(b) && b['type'] === 'null')) ?? branches[0];
      return exampleFor(branch, name, depth + 1);
    }
  }
  const all = schema['allOf'];
  if (Array.isArray(all) && all.length > 0) {
    const parts = all.map((b) => exampleFor(b, name, depth + 1));
    return parts.every(isJsonObject) ? Object.assign({}, ...parts) : parts[0];
  }
  if ('$ref' in schema) return null;
  const declared = schema['type'];
  const type = Array.isArray(declared) ? (declared.find((x) => x !== 'null') ?? declared[0]) : declared;
  switch (type) {
    case 'string': {
      const format = str(schema['format']);
      return (format && FORMAT_EXAMPLES[format]) ?? `<${name}>`;
    }
    case 'integer':
      return numberExample(schema, true);
    case 'number':
      return numberExample(schema, false);
    case 'boolean':
      return false;
    case 'null':
      return null;
    case 'array':
      return 'items' in schema ? [exampleFor(schema['items'], name, depth + 1)] : [];
    case 'object':
      return objectExample(schema, depth);
    default:
      return isJsonObject(schema['properties']) ? objectExample(schema, depth) : `<${name}>`;
  }
}

function objectExample(schema: Record<string, unknown>, depth: number): Record<string, unknown> {
  const props = isJsonObject(schema['properties']) ? schema['properties'] : {};
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, exampleFor(v, k, depth + 1)]));
}

/**
 * The `result` of an action from an MCP `CallToolResult`: its `structuredContent` when present;
 * else, when every content part is text, the text (parts joined by newlines) parsed as JSON when
 * it parses, else the text itself; else (images, resources...) the content parts as they are.
 */
export function actionResult(result: JsonObject): unknown {
  if (result['structuredContent'] !== undefined) return result['structuredContent'];
  const content = result['content'];
  if (!Array.isArray(content)) return null;
  const allText = content.every((c) => isJsonObject(c) && c['type'] === 'text' && typeof c['text'] === 'string');
  if (!allText) return content;
  const text = content.map((c) => (c as { text: string }).text).join('\n');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

// ---------------------------------------------------------------------------------------------
// Wire: body codecs and response schemas (the OpenAPI document is generated from these)
// ---------------------------------------------------------------------------------------------

function stringCodec(description: string): t.Type<string, string, unknown> {
  return withSchema(new t.Type<string, string, unknown>('string', t.string.is, t.string.validate, t.identity), { type: 'string', description });
}

function objectCodec(description: string): t.RecordC<t.StringC, t.UnknownC> {
  return withSchema(t.record(t.string, t.unknown), { description });
}

/** `POST /api/v1/tools/:tool/actions/:action` body: the action's arguments. */
export const ActionArguments = objectCodec("The action's arguments: a JSON object as its MCP inputSchema describes");

/** `POST /api/v1/tools/:tool/queries` body. */
export const QueryBody = t.exact(
  t.intersection([
    t.type({ query_type: stringCodec('The action to run (one of the allowed actions)') }),
    t.partial({ filters: objectCodec("The action's arguments (default {})") }),
  ]),
);

/** `POST /api/v1/tools/:tool/:tool_name` body (MCP `tools/call` params without the name). */
export const McpCallBody = t.exact(t.partial({ arguments: objectCodec("The tool's arguments (default {})") }));

const LINKS: JsonSchema = { type: 'object', additionalProperties: { type: 'string' }, description: 'Related resources by relation (paths)' };
const NAMES: JsonSchema = { type: 'array', items: { type: 'string' } };
const MCP_TOOL: JsonSchema = {
  type: 'object',
  required: ['name', 'inputSchema'],
  description: 'An MCP tool as the upstream lists it',
  properties: { name: { type: 'string' }, title: { type: 'string' }, description: { type: 'string' }, inputSchema: { type: 'object' }, outputSchema: { type: 'object' }, annotations: { type: 'object' } },
};
const TOOL_SUMMARY_PROPS = {
  name: { type: 'string', description: 'The upstream MCP client' },
  description: { type: 'string' },
  actions: { ...NAMES, description: 'The actions (upstream MCP tools) these credentials may run' },
  safety_notes: { type: 'string' },
};
const TOOL_SUMMARY: JsonSchema = { type: 'object', required: Object.keys(TOOL_SUMMARY_PROPS), properties: TOOL_SUMMARY_PROPS };
const TOOL_LIST: JsonSchema = {
  type: 'object',
  required: ['tools', 'total', 'limit', 'offset', '_links'],
  properties: { tools: { type: 'array', items: TOOL_SUMMARY }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' }, _links: LINKS },
};
const TOOL_DETAIL: JsonSchema = {
  type: 'object',
  required: [...Object.keys(TOOL_SUMMARY_PROPS), 'mcp_tools', '_links'],
  properties: { ...TOOL_SUMMARY_PROPS, mcp_tools: { type: 'array', items: MCP_TOOL, description: 'The allowed actions as MCP tools, with inputSchema' }, _links: LINKS },
};
const ACTION_LIST: JsonSchema = {
  type: 'object',
  required: ['tool', 'allowed_actions', 'disallowed_actions', 'disallowed_reasons', 'safety_notes'],
  properties: {
    tool: { type: 'string' },
    allowed_actions: NAMES,
    disallowed_actions: NAMES,
    disallowed_reasons: { type: 'object', additionalProperties: { enum: ['disallowed_actions', 'tools_to_execute', 'caller'] }, description: 'Why each disallowed action is refused' },
    safety_notes: { type: 'string' },
  },
};
const ACTION_DETAIL: JsonSchema = {
  type: 'object',
  required: ['name', 'description', 'parameters', 'required_parameters', 'example', '_links'],
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    parameters: { type: 'object', additionalProperties: { type: 'string' }, description: 'Parameter name → description, from the inputSchema' },
    required_parameters: NAMES,
    example: { type: 'object', description: 'Example arguments: schema examples, defaults, first enum values, or placeholders by type' },
    _links: LINKS,
  },
};
const EXECUTION_PROPS = {
  status: { const: 'success' },
  message: { type: 'string' },
  tool: { type: 'string' },
  execution_id: { type: 'string', description: '`exec-<uuid>`: the target of the `triggered_by` relationship' },
  context_id: { type: 'string' },
  context_recorded: { type: 'boolean', description: 'With context_id: whether the messages and the relationship were recorded' },
  _links: LINKS,
};
const ACTION_RESULT: JsonSchema = {
  type: 'object',
  required: ['status', 'message', 'tool', 'action', 'result', 'execution_id', '_links'],
  properties: { ...EXECUTION_PROPS, action: { type: 'string' }, result: { description: 'structuredContent, else the text parsed as JSON, else the text' } },
};
const QUERY_RESULT: JsonSchema = {
  type: 'object',
  required: ['status', 'message', 'tool', 'query_params', 'data', 'execution_id', '_links'],
  properties: {
    ...EXECUTION_PROPS,
    query_params: { type: 'object', required: ['query_type', 'filters'], properties: { query_type: { type: 'string' }, filters: { type: 'object' } } },
    data: { description: 'As `result` of an action' },
  },
};
const CALL_TOOL_RESULT: JsonSchema = {
  type: 'object',
  required: ['content', 'isError'],
  description: 'The MCP CallToolResult as the upstream answered it (`isError` always present)',
  properties: { content: { type: 'array', items: { type: 'object' } }, isError: { type: 'boolean' }, structuredContent: { type: 'object' } },
};
const CONTEXT_QUERY: NonNullable<RouteDoc['query']> = {
  context_id: { description: "A context of the caller's tenant to record the call and its result in (404 when there is none)" },
};

const E404_TOOL = { description: 'No such tool (TOOL_NOT_FOUND)' };
const E404_ACTION = { description: 'No such tool (TOOL_NOT_FOUND) or action (NOT_FOUND)' };
const E403 = { description: 'The action is disallowed for these credentials (TOOL_NOT_ALLOWED)' };
const E404_CALL = { description: 'No such tool (TOOL_NOT_FOUND), action (NOT_FOUND) or context (NOT_FOUND)' };
const E502 = { description: 'The tool reported an error (TOOL_EXECUTION_FAILED; `details.upstream_error` has its text) or the upstream failed' };

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/** The actions of one tool, as one caller sees them. */
interface ActionView {
  readonly allowed: JsonObject[];
  /** Refused action names with the reason, catalogue order, then deny-list names the catalogue lacks. */
  readonly disallowed: Map<string, RefusalReason>;
}

/** What one call did, before the reply is shaped. */
interface Execution {
  readonly id: string;
  /** The upstream's CallToolResult, when the upstream answered. */
  readonly raw?: JsonObject;
  /** The error thrown on the way (not connected, timeout, JSON-RPC error...). */
  readonly thrown?: unknown;
  readonly status: 'success' | 'error';
  readonly contextId?: string;
  readonly contextRecorded?: boolean;
}

function toolPath(tool: string): string {
  return `${BASE}/${encodeURIComponent(tool)}`;
}

function actionPath(tool: string, action: string): string {
  return `${toolPath(tool)}/actions/${encodeURIComponent(action)}`;
}

/**
 * The `/api/v1/tools*` routes. Registered specific-first: the router takes the first match, and
 * `/:tool/actions` must win over the MCP-shaped `/:tool/:tool_name`.
 */
export class ToolRoutes {
  constructor(readonly deps: ToolRoutesDeps) {}

  /** Registers every tool route on `api`. */
  register(api: V1Api): void {
    api.on(
      'GET',
      BASE,
      {
        summary: 'List tools (upstream MCP clients) with the actions these credentials may run',
        tag: 'tools',
        query: PAGE_QUERY,
        responses: { 200: { description: 'One entry per upstream MCP client', schema: TOOL_LIST } },
      },
      (req) => this.list(req),
    );
    api.on(
      'GET',
      `${BASE}/:tool`,
      {
        summary: 'A tool: description, allowed actions, safety notes and its allowed MCP tools with inputSchema',
        tag: 'tools',
        responses: { 200: { description: 'The tool', schema: TOOL_DETAIL }, 404: E404_TOOL },
      },
      (req) => this.detail(req),
    );
    api.on(
      'GET',
      `${BASE}/:tool/actions`,
      {
        summary: 'Allowed and disallowed actions of a tool (tools_to_execute, disallowed_actions, the caller\'s filter)',
        tag: 'tools',
        responses: { 200: { description: 'The actions', schema: ACTION_LIST }, 404: E404_TOOL },
      },
      (req) => this.actions(req),
    );
    api.on(
      'GET',
      `${BASE}/:tool/actions/:action`,
      {
        summary: "An action's parameters, required parameters and example arguments, from its MCP inputSchema",
        tag: 'tools',
        responses: { 200: { description: 'The action', schema: ACTION_DETAIL }, 403: E403, 404: E404_ACTION },
      },
      (req) => this.actionDetail(req),
    );
    api.on(
      'POST',
      `${BASE}/:tool/actions/:action`,
      {
        summary: 'Run an action (the body is its arguments); with context_id, record the call in that context',
        tag: 'tools',
        body: ActionArguments,
        query: CONTEXT_QUERY,
        responses: {
          200: { description: 'The action ran', schema: ACTION_RESULT },
          400: { description: 'The body is not a JSON object' },
          403: E403,
          404: E404_CALL,
          502: E502,
        },
      },
      (req) => this.runAction(req),
    );
    api.on(
      'POST',
      `${BASE}/:tool/queries`,
      {
        summary: 'Query a tool: run action `query_type` with `filters` as its arguments',
        tag: 'tools',
        body: QueryBody,
        query: CONTEXT_QUERY,
        responses: {
          200: { description: 'The query ran', schema: QUERY_RESULT },
          400: { description: 'Invalid body (every bad field named)' },
          403: E403,
          404: E404_CALL,
          502: E502,
        },
      },
      (req) => this.runQuery(req),
    );
    api.on(
      'GET',
      `${BASE}/:tool/:tool_name`,
      {
        summary: "An upstream MCP tool's schema, MCP-shaped (`actions` and `queries` are reserved names)",
        tag: 'tools',
        responses: { 200: { description: 'The MCP tool', schema: MCP_TOOL }, 403: E403, 404: E404_ACTION, 405: { description: 'A reserved name' } },
      },
      (req) => this.mcpTool(req),
    );
    api.on(
      'POST',
      `${BASE}/:tool/:tool_name`,
      {
        summary: 'Call an upstream MCP tool, MCP-shaped: answers its CallToolResult as is (200 also when isError)',
        tag: 'tools',
        body: McpCallBody,
        query: CONTEXT_QUERY,
        responses: {
          200: { description: 'The CallToolResult', schema: CALL_TOOL_RESULT },
          400: { description: 'Invalid body (every bad field named)' },
          403: E403,
          404: E404_CALL,
          405: { description: 'A reserved name' },
          502: { description: 'The upstream failed (JSON-RPC error: TOOL_EXECUTION_FAILED)' },
        },
      },
      (req) => this.mcpCall(req),
    );
  }

  // -- lookups ------------------------------------------------------------------------------

  private upstreamOf(name: string): Upstream {
    const u = this.deps.manager.get(name);
    if (!u) throw new GatewayError('TOOL_NOT_FOUND', `Tool not found: ${name}`, { tool: name });
    return u;
  }

  private refusal(u: Upstream, action: string, filter: ToolFilter | undefined): RefusalReason | undefined {
    if (u.config.disallowed_actions?.includes(action)) return 'disallowed_actions';
    if (!isToolAllowed(u.config.tools_to_execute, action)) return 'tools_to_execute';
    if (filter && !filter.allowsTool(u.name, action)) return 'caller';
    return undefined;
  }

  private view(u: Upstream, filter: ToolFilter | undefined): ActionView {
    const allowed: JsonObject[] = [];
    const disallowed = new Map<string, RefusalReason>();
    for (const tool of u.catalogue.tools) {
      const name = tool['name'] as string;
      const why = this.refusal(u, name, filter);
      if (why) disallowed.set(name, why);
      else allowed.push(tool);
    }
    for (const name of u.config.disallowed_actions ?? []) if (!disallowed.has(name)) disallowed.set(name, 'disallowed_actions');
    return { allowed, disallowed };
  }

  private notes(view: ActionView): string {
    return safetyNotes(view.allowed, [...view.disallowed].filter(([, why]) => why === 'disallowed_actions').map(([name]) => name));
  }

  /**
   * The MCP tool behind `action` of `tool`, when the caller may use it.
   * @throws GatewayError TOOL_NOT_FOUND (404) for an unknown tool, NOT_FOUND (404) for an unknown
   * action, TOOL_NOT_ALLOWED (403) for a refused one (`details.reason`).
   */
  private resolve(req: V1Request<unknown>, tool: string, action: string): { upstream: Upstream; mcpTool: JsonObject } {
    const upstream = this.upstreamOf(tool);
    const mcpTool = upstream.catalogue.tools.find((x) => x['name'] === action);
    const why = this.refusal(upstream, action, req.input.auth?.filter);
    if (!mcpTool && why !== 'disallowed_actions') {
      throw new GatewayError('NOT_FOUND', `Action ${action} not found on tool ${tool}`, { tool, action });
    }
    if (why) {
      const text = {
        disallowed_actions: "is in the tool's disallowed_actions",
        tools_to_execute: "is not in the tool's tools_to_execute",
        caller: 'is not allowed for these credentials',
      }[why];
      throw new GatewayError('TOOL_NOT_ALLOWED', `Action ${action} of tool ${tool} ${text}`, { tool, action, reason: why });
    }
    return { upstream, mcpTool: mcpTool as JsonObject };
  }

  // -- describe -----------------------------------------------------------------------------

  private summary(u: Upstream, view: ActionView): { name: string; description: string; actions: string[]; safety_notes: string } {
    return { name: u.name, description: toolDescription(u), actions: names(view.allowed), safety_notes: this.notes(view) };
  }

  private list(req: V1Request<undefined>): RestReply {
    const filter = req.input.auth?.filter;
    const page = paginate(this.deps.manager.list(), req.query);
    return ok({
      tools: page.items.map((u) => this.summary(u, this.view(u, filter))),
      total: page.total,
      limit: page.limit,
      offset: page.offset,
      _links: { self: BASE },
    });
  }

  private detail(req: V1Request<undefined>): RestReply {
    const u = this.upstreamOf(req.params['tool'] ?? '');
    const view = this.view(u, req.input.auth?.filter);
    const self = toolPath(u.name);
    return ok({
      ...this.summary(u, view),
      mcp_tools: view.allowed.map((tool) => ({ ...tool, description: typeof tool['description'] === 'string' ? tool['description'] : '' })),
      _links: { self, actions: `${self}/actions`, queries: `${self}/queries` },
    });
  }

  private actions(req: V1Request<undefined>): RestReply {
    const u = this.upstreamOf(req.params['tool'] ?? '');
    const view = this.view(u, req.input.auth?.filter);
    return ok({
      tool: u.name,
      allowed_actions: names(view.allowed),
      disallowed_actions: [...view.disallowed.keys()],
      disallowed_reasons: Object.fromEntries(view.disallowed),
      safety_notes: this.notes(view),
    });
  }

  private actionDetail(req: V1Request<undefined>): RestReply {
    const tool = req.params['tool'] ?? '';
    const action = req.params['action'] ?? '';
    const { upstream, mcpTool } = this.resolve(req, tool, action);
    const schema = mcpTool['inputSchema'];
    const objectSchema = { ...(isJsonObject(schema) ? schema : {}), type: 'object' };
    const whole = exampleFor(objectSchema, action);
    const example = isJsonObject(whole) ? whole : objectExample(objectSchema, 0);
    return ok({
      name: action,
      description: str(mcpTool['description']) ?? str(mcpTool['title']) ?? '',
      parameters: parametersOf(schema),
      required_parameters: requiredOf(schema),
      example,
      _links: { self: actionPath(upstream.name, action), tool: toolPath(upstream.name), actions: `${toolPath(upstream.name)}/actions` },
    });
  }

  private mcpTool(req: V1Request<undefined>): RestReply {
    const tool = req.params['tool'] ?? '';
    const name = req.params['tool_name'] ?? '';
    this.refuseReserved(req, name);
    const { mcpTool } = this.resolve(req, tool, name);
    return ok({ ...mcpTool, name, description: typeof mcpTool['description'] === 'string' ? mcpTool['description'] : '', inputSchema: mcpTool['inputSchema'] ?? { type: 'object' } });
  }

  private refuseReserved(req: V1Request<unknown>, name: string): void {
    if (RESERVED.has(name)) throw new GatewayError('METHOD_NOT_ALLOWED', `Method ${req.method} not allowed on ${req.path}`, { reserved: name });
  }

  // -- run ----------------------------------------------------------------------------------

  private async runAction(req: V1Request<Record<string, unknown>>): Promise<RestReply> {
    const tool = req.params['tool'] ?? '';
    const action = req.params['action'] ?? '';
    const exec = await this.execute(req, tool, action, req.data, 'action');
    const result = this.outcome(exec, tool, action);
    return ok({
      status: 'success',
      message: `Executed ${action} action on ${tool} tool`,
      tool,
      action,
      result,
      ...this.executionFields(exec),
      _links: { self: actionPath(tool, action), tool: toolPath(tool), ...this.contextLink(exec) },
    });
  }

  private async runQuery(req: V1Request<t.TypeOf<typeof QueryBody>>): Promise<RestReply> {
    const tool = req.params['tool'] ?? '';
    const action = req.data.query_type;
    const filters = req.data.filters ?? {};
    const exec = await this.execute(req, tool, action, filters, 'query');
    const data = this.outcome(exec, tool, action);
    return ok({
      status: 'success',
      message: `Queried ${action} data from ${tool} tool`,
      tool,
      query_params: { query_type: action, filters },
      data,
      ...this.executionFields(exec),
      _links: { self: `${toolPath(tool)}/queries`, tool: toolPath(tool), action: actionPath(tool, action), ...this.contextLink(exec) },
    });
  }

  private async mcpCall(req: V1Request<t.TypeOf<typeof McpCallBody>>): Promise<RestReply> {
    const tool = req.params['tool'] ?? '';
    const name = req.params['tool_name'] ?? '';
    this.refuseReserved(req, name);
    const exec = await this.execute(req, tool, name, req.data.arguments ?? {}, 'mcp');
    if (!exec.raw) throw this.failure(exec, tool, name);
    return ok({ ...exec.raw, isError: exec.raw['isError'] === true });
  }

  private executionFields(exec: Execution): Record<string, unknown> {
    return {
      execution_id: exec.id,
      ...(exec.contextId !== undefined ? { context_id: exec.contextId, context_recorded: exec.contextRecorded === true } : {}),
    };
  }

  private contextLink(exec: Execution): Record<string, string> {
    return exec.contextId !== undefined ? { context: `/api/v1/mcp/context/${encodeURIComponent(exec.contextId)}` } : {};
  }

  /**
   * The action's `result` of a successful execution.
   * @throws GatewayError TOOL_EXECUTION_FAILED (502) for an `isError` result or an upstream
   * JSON-RPC error; the upstream's own GatewayError (not connected, timeout...) otherwise.
   */
  private outcome(exec: Execution, tool: string, action: string): unknown {
    if (!exec.raw) throw this.failure(exec, tool, action);
    if (exec.raw['isError'] === true) {
      const text = resultText(exec.raw);
      throw new GatewayError('TOOL_EXECUTION_FAILED', `Action ${action} of tool ${tool} reported an error: ${text.slice(0, 500)}`, {
        tool,
        action,
        upstream_error: text,
        content: exec.raw['content'] ?? [],
        ...this.executionFields(exec),
      });
    }
    return actionResult(exec.raw);
  }

  /** The error to answer for a call that threw, with the execution's id in `details`. */
  private failure(exec: Execution, tool: string, action: string): unknown {
    const err = exec.thrown;
    const extra = { tool, action, ...this.executionFields(exec) };
    if (err instanceof GatewayError) return new GatewayError(err.code, err.message, { ...err.details, ...extra });
    if (err instanceof UpstreamRpcError) {
      return new GatewayError('TOOL_EXECUTION_FAILED', `Action ${action} of tool ${tool} failed upstream: ${err.message}`, {
        ...extra,
        upstream_error: err.message,
        rpc_code: err.rpc.code,
        ...(err.rpc.data !== undefined ? { rpc_data: err.rpc.data } : {}),
      });
    }
    return err;
  }

  /**
   * Runs one call: access check, context check (before the call), rate limit, the call itself
   * (through {@link invokeTool}), recording in the context, and the `ToolActionExecuted` event.
   * Never throws for what the upstream did (that is in the result); throws the 4xx refusals.
   */
  private async execute(req: V1Request<unknown>, tool: string, action: string, args: Record<string, unknown>, kind: 'action' | 'query' | 'mcp'): Promise<Execution> {
    const { upstream } = this.resolve(req, tool, action);
    const contextId = req.query.get('context_id') || undefined;
    if (contextId !== undefined && !(await this.deps.contexts.exists(req.tenant, contextId))) {
      throw new GatewayError('NOT_FOUND', `Context not found: ${contextId}`, { context_id: contextId });
    }
    await this.deps.admitToolExecution(req.input.auth);
    const id = newId('exec');
    let raw: JsonObject | undefined;
    let thrown: unknown;
    try {
      raw = await invokeTool(this.deps.bus, { upstream, name: action }, { name: action, arguments: args }, { surface: REST_V1_SURFACE, tenant: req.tenant, virtualKey: req.principal.virtualKeyId });
    } catch (err) {
      thrown = err;
    }
    const status: Execution['status'] = raw !== undefined && raw['isError'] !== true ? 'success' : 'error';
    let recorded: Pick<Execution, 'contextId' | 'contextRecorded'> = {};
    if (contextId !== undefined) {
      const outcome =
        raw === undefined
          ? { execution_id: id, status, error: thrown instanceof Error ? thrown.message : String(thrown) }
          : status === 'success'
            ? { execution_id: id, status, result: actionResult(raw) }
            : { execution_id: id, status, error: resultText(raw) };
      recorded = { contextId, contextRecorded: await this.record(req.tenant, contextId, id, upstream.name, action, args, outcome) };
    }
    this.deps.bus.publish({
      event_type: 'ToolActionExecuted',
      id,
      tenant_id: req.tenant,
      tool: upstream.name,
      action,
      status,
      kind,
      ...(contextId !== undefined ? { context_id: contextId } : {}),
    });
    return {
      id,
      status,
      ...(raw !== undefined ? { raw } : { thrown }),
      ...recorded,
    };
  }

  /**
   * Appends the `tool_call` and `tool_result` messages to the context and records the
   * `triggered_by` relationship. Resolves whether both succeeded; a failure is logged, not thrown
   * (the call has run by now and must be answered).
   */
  private async record(
    tenant: string,
    contextId: string,
    execId: string,
    tool: string,
    action: string,
    args: Record<string, unknown>,
    outcome: { readonly status: 'success' | 'error' } & Record<string, unknown>,
  ): Promise<boolean> {
    const settled = await Promise.allSettled([
      this.deps.contexts.append(tenant, contextId, [
        { role: 'tool_call', content: JSON.stringify({ execution_id: execId, tool, action, arguments: args }) },
        { role: 'tool_result', content: JSON.stringify(outcome) },
      ]),
      this.deps.relationships.create(tenant, {
        source_type: 'context',
        source_id: contextId,
        target_type: 'tool_execution',
        target_id: execId,
        relationship_type: 'triggered_by',
        metadata: { tool, action, status: outcome.status },
      }),
    ]);
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    for (const f of failed) {
      this.deps.log.warn('could not record a tool execution in its context', { context_id: contextId, execution_id: execId, tool, action, error: f.reason });
    }
    return failed.length === 0;
  }
}
