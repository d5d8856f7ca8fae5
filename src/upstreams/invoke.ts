/**
 * One tool invocation on behalf of any surface (`/mcp` tools/call, the REST tool execute API):
 * sends `tools/call` to the owning upstream and publishes `ToolInvocationCompleted` or
 * `ToolInvocationFailed` on the event bus, with duration, cost (the client's `tool_pricing`),
 * arguments and result — the tool log, metrics and event feeds all read those events.
 */
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import type { EventBus, ToolCallFields } from '../streams/events.js';
import type { Route } from './manager.js';
import type { CancelScope, JsonObject, UpstreamCallOptions } from './upstream.js';
import type { TraceScope, Tracing } from '../telemetry/tracing.js';

export interface InvokeOptions {
  readonly surface: string;
  readonly cancel?: CancelScope;
  readonly onprogress?: (p: Progress) => void;
  readonly virtualKey?: string | undefined;
  /** The caller's tenant: tool events carry it, so tenant-scoped feeds show a tenant only its calls. */
  readonly tenant?: string | undefined;
  /** The call id of the meta-tool call (code mode `execute_code`) this call was made from. */
  readonly parentCallId?: string | undefined;
  /** The caller's request span: the upstream call gets a child span, its context goes in `_meta`. */
  readonly trace?: { readonly tracing: Tracing; readonly parent: TraceScope } | undefined;
  /** The caller's principal id: clients with per-user connections (`per_user_oauth`) call on its own. */
  readonly principal?: string | undefined;
  /** The caller's MCP client capabilities (`UpstreamCallOptions.clientCapabilities`: a 2026-07-28 upstream gets them in the request envelope). */
  readonly clientCapabilities?: Record<string, unknown> | undefined;
}

let counter = 0;
const bootId = Date.now().toString(36);

/** A unique, time-ordered invocation id. */
export function newCallId(): string {
  return `call-${bootId}-${(++counter).toString(36)}`;
}

/**
 * Calls `route`'s tool with `params` (a `tools/call` params object whose `name` is replaced by the
 * upstream's own name; `arguments` and `_meta` pass through). Resolves with the upstream's result
 * untouched, once the invocation's event is stored (with the gateway's recorder: the event and
 * its tool-log entry, committed together), so an answered call has a durable record.
 * @throws what {@link Upstream.request} throws, after publishing (and storing) the failure.
 */
export async function invokeTool(bus: EventBus, route: Route, params: JsonObject, options: InvokeOptions): Promise<JsonObject> {
  const started = performance.now();
  const call_id = newCallId();
  const upstream = route.upstream;
  const args = params['arguments'];
  const traced = options.trace;
  let upstreamParams: JsonObject = { ...params, name: route.name };
  let span: TraceScope | undefined;
  if (traced !== undefined) {
    const meta = params['_meta'];
    const carrier: Record<string, unknown> = typeof meta === 'object' && meta !== null ? { ...(meta as JsonObject) } : {};
    span = traced.tracing.startUpstream(traced.parent, upstream.name, 'tools/call', route.name, carrier);
    upstreamParams = { ...upstreamParams, _meta: carrier };
  }
  const trace_id = span?.span.spanContext().traceId;
  // one options object, fields set only when present (no temporary objects per call)
  const callOptions: { -readonly [K in keyof UpstreamCallOptions]: UpstreamCallOptions[K] } = {};
  if (options.cancel) callOptions.cancel = options.cancel;
  if (options.onprogress) callOptions.onprogress = options.onprogress;
  if (options.clientCapabilities !== undefined) callOptions.clientCapabilities = options.clientCapabilities;
  // traced: the end of the wait for the breaker and a concurrency slot is an event on the span
  if (span !== undefined) callOptions.onDispatch = () => traced?.tracing.dispatched(span, performance.now() - started);
  try {
    const target = upstream.principals ? await upstream.principals.get(options.principal ?? 'anonymous') : upstream;
    // a per-user connection serves this call: its server→client requests and log messages are attributed by it
    if (target !== upstream && options.cancel) options.cancel.served = target;
    const result = await target.request('tools/call', upstreamParams, callOptions);
    const isError = result['isError'] === true;
    traced?.tracing.endUpstream(span, { result });
    const event: { event_type: 'ToolInvocationCompleted'; is_error: boolean; result: unknown } & ToolCallFields = {
      event_type: 'ToolInvocationCompleted',
      mcp_server_id: upstream.name,
      tool_name: route.name,
      call_id,
      duration_ms: performance.now() - started,
      // a tool that reports an error is not charged
      cost_usd: isError ? 0 : (upstream.pricing[route.name] ?? 0),
      surface: options.surface,
      arguments: args,
      is_error: isError,
      result,
    };
    await bus.publishRecorded(withCaller(event, options, trace_id));
    return result;
  } catch (err) {
    traced?.tracing.endUpstream(span, { error: err });
    const event: { event_type: 'ToolInvocationFailed'; error: string } & ToolCallFields = {
      event_type: 'ToolInvocationFailed',
      mcp_server_id: upstream.name,
      tool_name: route.name,
      call_id,
      duration_ms: performance.now() - started,
      cost_usd: 0,
      surface: options.surface,
      arguments: args,
      error: err instanceof Error ? err.message : String(err),
    };
    await bus.publishRecorded(withCaller(event, options, trace_id));
    throw err;
  }
}

/** Adds the caller's optional fields to a tool event, in place (after the fixed ones, as before). */
function withCaller<E extends ToolCallFields>(event: E, options: InvokeOptions, traceId: string | undefined): E {
  if (options.virtualKey !== undefined) event.virtual_key = options.virtualKey;
  if (options.tenant !== undefined) event.tenant_id = options.tenant;
  if (options.parentCallId !== undefined) event.parent_call_id = options.parentCallId;
  if (traceId !== undefined) event.trace_id = traceId;
  return event;
}
