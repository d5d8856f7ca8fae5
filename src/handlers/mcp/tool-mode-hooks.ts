/**
 * The seam between the MCP dispatcher and the tool modes: what the dispatcher asks of a tool-mode
 * implementation, and what it lends one. Kept apart so neither imports the other's module.
 */
import type { RequestAuth, ToolFilter } from '../../base/access.js';
import type { ToolMode } from '../../base/principal.js';
import type { JsonObject } from '../../upstreams/upstream.js';
import type { InflightCall, McpSession } from './session.js';

/** How a tool call reached the dispatcher when not directly from the client. */
export interface ToolCallVia {
  /** The `surface` of the tool events (`mcp:search`, `mcp:code`). */
  readonly surface: string;
  /** The call id of the meta-tool call that made this one (code mode), for the tool events. */
  readonly parentCallId?: string;
}

/** What the dispatcher lends the tool modes: its access filter and its normal `tools/call` path. */
export interface ToolModeHost {
  /** The tools `filter` lets the caller see in `full` mode, in catalogue order. */
  visibleTools(filter: ToolFilter | undefined): readonly JsonObject[];
  /**
   * `tools/call` through the normal path (access filter, tool-execution rate limit, circuit
   * breaker, tool events and log) on behalf of `call`. @throws what `tools/call` throws.
   */
  callToolVia(session: McpSession, params: Record<string, unknown>, call: InflightCall, via: ToolCallVia): Promise<JsonObject>;
}

/** What the dispatcher asks of the tool modes for sessions not in `full` mode. */
export interface ToolModeHooks {
  /**
   * The mode of a new session: the `x-tributary-tool-mode` header value (`''` when absent), else
   * the configured mode of the client name, else the key's `tool_mode`, else the default.
   * @throws GatewayError INVALID_REQUEST for a header naming no mode.
   */
  modeFor(header: string, clientName: string, auth: RequestAuth | undefined): ToolMode;
  /** The `tools/list` result of a session in `mode` (the meta-tools). */
  list(mode: Exclude<ToolMode, 'full'>, call: InflightCall): JsonObject;
  /** A `tools/call` of a session in `mode`. @throws GatewayError INVALID_PARAMS for an unknown meta-tool. */
  call(mode: Exclude<ToolMode, 'full'>, session: McpSession, params: Record<string, unknown> | undefined, call: InflightCall): Promise<JsonObject>;
}
