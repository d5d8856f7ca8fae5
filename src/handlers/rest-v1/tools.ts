/**
 * Tools and actions over MCP at `/api/v1/tools*` (developer-mesh MCP Server API
 * reference, https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md, "Tool Integration" and "GitHub Tools (MCP
 * Protocol)"). A *tool* is an upstream MCP client, its *actions* are that upstream's own MCP tools
 * (a developer-mesh tool maps onto a Bifrost-style MCP client).
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
 * Every call (action, query, MCP-shaped) goes through `invokeTool` with surface `rest-v1`
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
import type * as t from 'io-ts';
import { GatewayError } from '../../base/errors.js';
import { isJsonObject } from '../../codecs/schema.js';
import type { Upstream } from '../../upstreams/upstream.js';
import { ok, type RestReply } from '../rest/router.js';
import { paginate, PAGE_QUERY, type V1Api, type V1Request } from '../rest/v1-api.js';
import { actionView, resolveAction, upstreamOf, viewNotes, type ActionView } from './tool-access.js';
import { ToolExecutor, type ToolRoutesDeps } from './tool-execution.js';
import { exampleFor, names, objectExample, parametersOf, requiredOf, str, toolDescription } from './tool-examples.js';
import {
  ACTION_DETAIL,
  ACTION_LIST,
  ACTION_RESULT,
  ActionArguments,
  CALL_TOOL_RESULT,
  CONTEXT_QUERY,
  E403,
  E404_ACTION,
  E404_CALL,
  E404_TOOL,
  E502,
  MCP_TOOL,
  McpCallBody,
  QUERY_RESULT,
  QueryBody,
  TOOL_DETAIL,
  TOOL_LIST,
} from './tools-wire.js';

export type { ToolRoutesDeps } from './tool-execution.js';

const BASE = '/api/v1/tools';
const RESERVED = new Set(['actions', 'queries']);

function toolPath(tool: string): string {
  return `${BASE}/${encodeURIComponent(tool)}`;
}

function actionPath(tool: string, action: string): string {
  return `${toolPath(tool)}/actions/${encodeURIComponent(action)}`;
}

export class ToolRoutes {
  private readonly executor: ToolExecutor;

  constructor(readonly deps: ToolRoutesDeps) {
    this.executor = new ToolExecutor(deps);
  }

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

  // -- describe -----------------------------------------------------------------------------

  private summary(u: Upstream, view: ActionView): { name: string; description: string; actions: string[]; safety_notes: string } {
    return { name: u.name, description: toolDescription(u), actions: names(view.allowed), safety_notes: viewNotes(view) };
  }

  private list(req: V1Request<undefined>): RestReply {
    const filter = req.input.auth?.filter;
    const page = paginate(this.deps.manager.list(), req.query);
    return ok({
      tools: page.items.map((u) => this.summary(u, actionView(u, filter))),
      total: page.total,
      limit: page.limit,
      offset: page.offset,
      _links: { self: BASE },
    });
  }

  private detail(req: V1Request<undefined>): RestReply {
    const u = upstreamOf(this.deps.manager, req.params['tool'] ?? '');
    const view = actionView(u, req.input.auth?.filter);
    const self = toolPath(u.name);
    return ok({
      ...this.summary(u, view),
      mcp_tools: view.allowed.map((tool) => ({ ...tool, description: typeof tool['description'] === 'string' ? tool['description'] : '' })),
      _links: { self, actions: `${self}/actions`, queries: `${self}/queries` },
    });
  }

  private actions(req: V1Request<undefined>): RestReply {
    const u = upstreamOf(this.deps.manager, req.params['tool'] ?? '');
    const view = actionView(u, req.input.auth?.filter);
    return ok({
      tool: u.name,
      allowed_actions: names(view.allowed),
      disallowed_actions: [...view.disallowed.keys()],
      disallowed_reasons: Object.fromEntries(view.disallowed),
      safety_notes: viewNotes(view),
    });
  }

  private actionDetail(req: V1Request<undefined>): RestReply {
    const tool = req.params['tool'] ?? '';
    const action = req.params['action'] ?? '';
    const { upstream, mcpTool } = resolveAction(this.deps.manager, req.input.auth?.filter, tool, action);
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
    const { mcpTool } = resolveAction(this.deps.manager, req.input.auth?.filter, tool, name);
    return ok({ ...mcpTool, name, description: typeof mcpTool['description'] === 'string' ? mcpTool['description'] : '', inputSchema: mcpTool['inputSchema'] ?? { type: 'object' } });
  }

  private refuseReserved(req: V1Request<unknown>, name: string): void {
    if (RESERVED.has(name)) throw new GatewayError('METHOD_NOT_ALLOWED', `Method ${req.method} not allowed on ${req.path}`, { reserved: name });
  }

  // -- run ----------------------------------------------------------------------------------

  private async runAction(req: V1Request<Record<string, unknown>>): Promise<RestReply> {
    const tool = req.params['tool'] ?? '';
    const action = req.params['action'] ?? '';
    const exec = await this.executor.execute(req, tool, action, req.data, 'action');
    const result = this.executor.outcome(exec, tool, action);
    return ok({
      status: 'success',
      message: `Executed ${action} action on ${tool} tool`,
      tool,
      action,
      result,
      ...this.executor.executionFields(exec),
      _links: { self: actionPath(tool, action), tool: toolPath(tool), ...this.executor.contextLink(exec) },
    });
  }

  private async runQuery(req: V1Request<t.TypeOf<typeof QueryBody>>): Promise<RestReply> {
    const tool = req.params['tool'] ?? '';
    const action = req.data.query_type;
    const filters = req.data.filters ?? {};
    const exec = await this.executor.execute(req, tool, action, filters, 'query');
    const data = this.executor.outcome(exec, tool, action);
    return ok({
      status: 'success',
      message: `Queried ${action} data from ${tool} tool`,
      tool,
      query_params: { query_type: action, filters },
      data,
      ...this.executor.executionFields(exec),
      _links: { self: `${toolPath(tool)}/queries`, tool: toolPath(tool), action: actionPath(tool, action), ...this.executor.contextLink(exec) },
    });
  }

  private async mcpCall(req: V1Request<t.TypeOf<typeof McpCallBody>>): Promise<RestReply> {
    const tool = req.params['tool'] ?? '';
    const name = req.params['tool_name'] ?? '';
    this.refuseReserved(req, name);
    const exec = await this.executor.execute(req, tool, name, req.data.arguments ?? {}, 'mcp');
    if (!exec.raw) throw this.executor.failure(exec, tool, name);
    return ok({ ...exec.raw, isError: exec.raw['isError'] === true });
  }

}
