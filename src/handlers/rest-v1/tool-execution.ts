/**
 * Running one call of `/api/v1/tools*` (an action, a query or an MCP-shaped call): the context
 * check, the caller's tool-execution limit, the call through {@link invokeTool} with surface
 * `rest-v1`, the recording in the context (developer-mesh contexts,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md),
 * the `ToolActionExecuted` event, and the shaping of its outcome or failure.
 */
import type { RequestAuth } from '../../base/access.js';
import { GatewayError, UpstreamRpcError } from '../../base/errors.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import { invokeTool } from '../../upstreams/invoke.js';
import type { UpstreamManager } from '../../upstreams/manager.js';
import type { JsonObject } from '../../upstreams/upstream.js';
import { newId, type V1Request } from '../rest/v1-api.js';
import { resultText } from '../tool-execute.js';
import type { Contexts, Relationships } from './contracts.js';
import { resolveAction } from './tool-access.js';
import { actionResult } from './tool-examples.js';

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

/** The surface name the tool invocation events carry for calls made here. */
export const REST_V1_SURFACE = 'rest-v1';

/** What one call did, before the reply is shaped. */
export interface Execution {
  readonly id: string;
  /** The upstream's CallToolResult, when the upstream answered. */
  readonly raw?: JsonObject;
  /** The error thrown on the way (not connected, timeout, JSON-RPC error...). */
  readonly thrown?: unknown;
  readonly status: 'success' | 'error';
  readonly contextId?: string;
  readonly contextRecorded?: boolean;
}

/** Runs the calls of the tool routes and shapes their outcome. */
export class ToolExecutor {
  constructor(readonly deps: ToolRoutesDeps) {}

  /** The `execution_id` (and `context_id`, `context_recorded`) fields of a reply. */
  executionFields(exec: Execution): Record<string, unknown> {
    return {
      execution_id: exec.id,
      ...(exec.contextId !== undefined ? { context_id: exec.contextId, context_recorded: exec.contextRecorded === true } : {}),
    };
  }

  /** The `_links.context` of a reply made with `?context_id=`. */
  contextLink(exec: Execution): Record<string, string> {
    return exec.contextId !== undefined ? { context: `/api/v1/mcp/context/${encodeURIComponent(exec.contextId)}` } : {};
  }

  /**
   * The action's `result` of a successful execution.
   * @throws GatewayError TOOL_EXECUTION_FAILED (502) for an `isError` result or an upstream
   * JSON-RPC error; the upstream's own GatewayError (not connected, timeout...) otherwise.
   */
  outcome(exec: Execution, tool: string, action: string): unknown {
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
  failure(exec: Execution, tool: string, action: string): unknown {
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
  async execute(req: V1Request<unknown>, tool: string, action: string, args: Record<string, unknown>, kind: 'action' | 'query' | 'mcp'): Promise<Execution> {
    const { upstream } = resolveAction(this.deps.manager, req.input.auth?.filter, tool, action);
    const contextId = req.query.get('context_id') || undefined;
    if (contextId !== undefined && !(await this.deps.contexts.exists(req.tenant, contextId))) {
      throw new GatewayError('NOT_FOUND', `Context not found: ${contextId}`, { context_id: contextId });
    }
    await this.deps.admitToolExecution(req.input.auth);
    const id = newId('exec');
    let raw: JsonObject | undefined;
    let thrown: unknown;
    try {
      raw = await invokeTool(this.deps.bus, { upstream, name: action }, { name: action, arguments: args }, { surface: REST_V1_SURFACE, tenant: req.tenant, virtualKey: req.principal.virtualKeyId, principal: req.principal.id });
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
