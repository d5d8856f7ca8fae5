/**
 * Which actions of a tool a caller may use on `/api/v1/tools*`, checked in this order, the first
 * refusal wins: the client's `disallowed_actions` deny list (stronger than any allow), its
 * `tools_to_execute` (`["*"]` or absent = all, `[]` = none; Bifrost MCP client config,
 * https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml), then the
 * caller's own narrowing (`RequestAuth.filter`: the `x-bf-mcp-include-*` headers).
 */
import type { ToolFilter } from '../../base/access.js';
import { GatewayError } from '../../base/errors.js';
import type { UpstreamManager } from '../../upstreams/manager.js';
import { isToolAllowed } from '../../upstreams/naming.js';
import type { JsonObject, Upstream } from '../../upstreams/upstream.js';
import { safetyNotes } from './tool-examples.js';

/** Why an action is refused: the client's deny list, its `tools_to_execute`, or the caller's filter. */
export type RefusalReason = 'disallowed_actions' | 'tools_to_execute' | 'caller';

/** The actions of one tool, as one caller sees them. */
export interface ActionView {
  readonly allowed: JsonObject[];
  /** Refused action names with the reason, catalogue order, then deny-list names the catalogue lacks. */
  readonly disallowed: Map<string, RefusalReason>;
}

/**
 * The upstream named `name`.
 * @throws GatewayError TOOL_NOT_FOUND (404) when there is none.
 */
export function upstreamOf(manager: UpstreamManager, name: string): Upstream {
  const u = manager.get(name);
  if (!u) throw new GatewayError('TOOL_NOT_FOUND', `Tool not found: ${name}`, { tool: name });
  return u;
}

/** Why `action` of `u` is refused to a caller with `filter`, or undefined when it is allowed. */
export function refusal(u: Upstream, action: string, filter: ToolFilter | undefined): RefusalReason | undefined {
  if (u.config.disallowed_actions?.includes(action)) return 'disallowed_actions';
  if (!isToolAllowed(u.config.tools_to_execute, action)) return 'tools_to_execute';
  if (filter && !filter.allowsTool(u.name, action)) return 'caller';
  return undefined;
}

/** The allowed and refused actions of `u` for a caller with `filter`. */
export function actionView(u: Upstream, filter: ToolFilter | undefined): ActionView {
  const allowed: JsonObject[] = [];
  const disallowed = new Map<string, RefusalReason>();
  for (const tool of u.catalogue.tools) {
    const name = tool['name'] as string;
    const why = refusal(u, name, filter);
    if (why) disallowed.set(name, why);
    else allowed.push(tool);
  }
  for (const name of u.config.disallowed_actions ?? []) if (!disallowed.has(name)) disallowed.set(name, 'disallowed_actions');
  return { allowed, disallowed };
}

/** The safety notes of a view: its allowed actions' annotations and the deny-listed names. */
export function viewNotes(view: ActionView): string {
  return safetyNotes(view.allowed, [...view.disallowed].filter(([, why]) => why === 'disallowed_actions').map(([name]) => name));
}

/**
 * The MCP tool behind `action` of `tool`, when a caller with `filter` may use it.
 * @throws GatewayError TOOL_NOT_FOUND (404) for an unknown tool, NOT_FOUND (404) for an unknown
 * action, TOOL_NOT_ALLOWED (403) for a refused one (`details.reason`).
 */
export function resolveAction(manager: UpstreamManager, filter: ToolFilter | undefined, tool: string, action: string): { upstream: Upstream; mcpTool: JsonObject } {
  const upstream = upstreamOf(manager, tool);
  const mcpTool = upstream.catalogue.tools.find((x) => x['name'] === action);
  const why = refusal(upstream, action, filter);
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
