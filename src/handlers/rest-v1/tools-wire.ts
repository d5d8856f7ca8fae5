/**
 * The wire shapes of the `/api/v1/tools*` routes: body codecs (io-ts, decoded at the boundary) and
 * response schemas. The OpenAPI document (`GET /api/v1/openapi.json`, OpenAPI 3.1,
 * https://spec.openapis.org/oas/v3.1.0) is generated from these.
 */
import * as t from 'io-ts';
import { withSchema, type JsonSchema } from '../../codecs/schema.js';
import type { RouteDoc } from '../../base/routes.js';

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

export const LINKS: JsonSchema = { type: 'object', additionalProperties: { type: 'string' }, description: 'Related resources by relation (paths)' };
export const NAMES: JsonSchema = { type: 'array', items: { type: 'string' } };
export const MCP_TOOL: JsonSchema = {
  type: 'object',
  required: ['name', 'inputSchema'],
  description: 'An MCP tool as the upstream lists it',
  properties: { name: { type: 'string' }, title: { type: 'string' }, description: { type: 'string' }, inputSchema: { type: 'object' }, outputSchema: { type: 'object' }, annotations: { type: 'object' } },
};
export const TOOL_SUMMARY_PROPS = {
  name: { type: 'string', description: 'The upstream MCP client' },
  description: { type: 'string' },
  actions: { ...NAMES, description: 'The actions (upstream MCP tools) these credentials may run' },
  safety_notes: { type: 'string' },
};
export const TOOL_SUMMARY: JsonSchema = { type: 'object', required: Object.keys(TOOL_SUMMARY_PROPS), properties: TOOL_SUMMARY_PROPS };
export const TOOL_LIST: JsonSchema = {
  type: 'object',
  required: ['tools', 'total', 'limit', 'offset', '_links'],
  properties: { tools: { type: 'array', items: TOOL_SUMMARY }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' }, _links: LINKS },
};
export const TOOL_DETAIL: JsonSchema = {
  type: 'object',
  required: [...Object.keys(TOOL_SUMMARY_PROPS), 'mcp_tools', '_links'],
  properties: { ...TOOL_SUMMARY_PROPS, mcp_tools: { type: 'array', items: MCP_TOOL, description: 'The allowed actions as MCP tools, with inputSchema' }, _links: LINKS },
};
export const ACTION_LIST: JsonSchema = {
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
export const ACTION_DETAIL: JsonSchema = {
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
export const EXECUTION_PROPS = {
  status: { const: 'success' },
  message: { type: 'string' },
  tool: { type: 'string' },
  execution_id: { type: 'string', description: '`exec-<uuid>`: the target of the `triggered_by` relationship' },
  context_id: { type: 'string' },
  context_recorded: { type: 'boolean', description: 'With context_id: whether the messages and the relationship were recorded' },
  _links: LINKS,
};
export const ACTION_RESULT: JsonSchema = {
  type: 'object',
  required: ['status', 'message', 'tool', 'action', 'result', 'execution_id', '_links'],
  properties: { ...EXECUTION_PROPS, action: { type: 'string' }, result: { description: 'structuredContent, else the text parsed as JSON, else the text' } },
};
export const QUERY_RESULT: JsonSchema = {
  type: 'object',
  required: ['status', 'message', 'tool', 'query_params', 'data', 'execution_id', '_links'],
  properties: {
    ...EXECUTION_PROPS,
    query_params: { type: 'object', required: ['query_type', 'filters'], properties: { query_type: { type: 'string' }, filters: { type: 'object' } } },
    data: { description: 'As `result` of an action' },
  },
};
export const CALL_TOOL_RESULT: JsonSchema = {
  type: 'object',
  required: ['content', 'isError'],
  description: 'The MCP CallToolResult as the upstream answered it (`isError` always present)',
  properties: { content: { type: 'array', items: { type: 'object' } }, isError: { type: 'boolean' }, structuredContent: { type: 'object' } },
};
export const CONTEXT_QUERY: NonNullable<RouteDoc['query']> = {
  context_id: { description: "A context of the caller's tenant to record the call and its result in (404 when there is none)" },
};

export const E404_TOOL = { description: 'No such tool (TOOL_NOT_FOUND)' };
export const E404_ACTION = { description: 'No such tool (TOOL_NOT_FOUND) or action (NOT_FOUND)' };
export const E403 = { description: 'The action is disallowed for these credentials (TOOL_NOT_ALLOWED)' };
export const E404_CALL = { description: 'No such tool (TOOL_NOT_FOUND), action (NOT_FOUND) or context (NOT_FOUND)' };
export const E502 = { description: 'The tool reported an error (TOOL_EXECUTION_FAILED; `details.upstream_error` has its text) or the upstream failed' };
