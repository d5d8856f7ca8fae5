/**
 * One tool invocation on behalf of any surface (`/mcp` tools/call, the REST tool execute API):
 * sends `tools/call` to the owning upstream and publishes `ToolInvocationCompleted` or
 * `ToolInvocationFailed` on the event bus, with duration, cost (the client's `tool_pricing`),
 * arguments and result — the tool log, metrics and event feeds all read those events.
 */
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import type { EventBus, ToolCallFields } from '../streams/events.js';
import type { Route } from './manager.js';
import type { CancelScope, Completion, JsonObject, UpstreamCallOptions } from './upstream.js';
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
export function invokeTool(bus: EventBus, route: Route, params: JsonObject, options: InvokeOptions): Promise<JsonObject> {
  return new Promise<JsonObject>((resolve, reject) => invokeToolTo(bus, route, params, options, { resolve, reject }));
}

/**
 * {@link invokeTool} with the outcome going to `done` (the per-call path of `tools/call`): one
 * {@link ToolInvocation} object carries the call from the upstream's answer to the durable
 * record, with no async frames and no Promise of its own (the store's Promise is the one left).
 * `done` may be called before this returns (a call refused at once, e.g. no connection).
 */
export function invokeToolTo(bus: EventBus, route: Route, params: JsonObject, options: InvokeOptions, done: Completion<JsonObject>): void {
  const started = performance.now();
  const upstream = route.upstream;
  const traced = options.trace;
  let upstreamParams: JsonObject = { ...params, name: route.name };
  let span: TraceScope | undefined;
  if (traced !== undefined) {
    const meta = params['_meta'];
    const carrier: Record<string, unknown> = typeof meta === 'object' && meta !== null ? { ...(meta as JsonObject) } : {};
    span = traced.tracing.startUpstream(traced.parent, upstream.name, 'tools/call', route.name, carrier);
    upstreamParams = { ...upstreamParams, _meta: carrier };
  }
  // one options object, fields set only when present (no temporary objects per call)
  const callOptions: { -readonly [K in keyof UpstreamCallOptions]: UpstreamCallOptions[K] } = {};
  if (options.cancel) callOptions.cancel = options.cancel;
  if (options.onprogress) callOptions.onprogress = options.onprogress;
  if (options.clientCapabilities !== undefined) callOptions.clientCapabilities = options.clientCapabilities;
  // traced: the end of the wait for the breaker and a concurrency slot is an event on the span
  if (span !== undefined) callOptions.onDispatch = () => traced?.tracing.dispatched(span, performance.now() - started);
  const invocation = new ToolInvocation(bus, route, params['arguments'], options, started, span, done);
  if (upstream.principals === undefined) {
    upstream.requestTo('tools/call', upstreamParams, callOptions, invocation);
    return;
  }
  // a per-user connection serves this call: its server→client requests and log messages are attributed by it
  upstream.principals.get(options.principal ?? 'anonymous').then(
    (target) => {
      if (target !== upstream && options.cancel) options.cancel.served = target;
      target.requestTo('tools/call', upstreamParams, callOptions, invocation);
    },
    (err: unknown) => invocation.reject(err),
  );
}

/**
 * One tool call from the upstream's answer to its durable record: the {@link Completion} the
 * upstream request settles; publishes `ToolInvocationCompleted` or `ToolInvocationFailed` and,
 * once the recorder has stored it, hands the outcome on to `done`.
 */
class ToolInvocation implements Completion<JsonObject> {
  readonly #callId = newCallId();

  constructor(
    private readonly bus: EventBus,
    private readonly route: Route,
    private readonly args: unknown,
    private readonly options: InvokeOptions,
    private readonly started: number,
    private readonly span: TraceScope | undefined,
    private readonly done: Completion<JsonObject>,
  ) {}

  resolve(result: JsonObject): void {
    if (this.options.cancel !== undefined) this.options.cancel.answered = true;
    const upstream = this.route.upstream;
    const isError = result['isError'] === true;
    this.options.trace?.tracing.endUpstream(this.span, { result });
    const event: { event_type: 'ToolInvocationCompleted'; is_error: boolean; result: unknown } & ToolCallFields = {
      event_type: 'ToolInvocationCompleted',
      mcp_server_id: upstream.name,
      tool_name: this.route.name,
      call_id: this.#callId,
      duration_ms: performance.now() - this.started,
      // a tool that reports an error is not charged
      cost_usd: isError ? 0 : (upstream.pricing[this.route.name] ?? 0),
      surface: this.options.surface,
      arguments: this.args,
      is_error: isError,
      result,
    };
    const done = this.done;
    this.bus.publishRecordedThen(withCaller(event, this.options, this.span?.span.spanContext().traceId), () => done.resolve(result));
  }

  reject(err: unknown): void {
    if (this.options.cancel !== undefined) this.options.cancel.answered = true;
    this.options.trace?.tracing.endUpstream(this.span, { error: err });
    const event: { event_type: 'ToolInvocationFailed'; error: string } & ToolCallFields = {
      event_type: 'ToolInvocationFailed',
      mcp_server_id: this.route.upstream.name,
      tool_name: this.route.name,
      call_id: this.#callId,
      duration_ms: performance.now() - this.started,
      cost_usd: 0,
      surface: this.options.surface,
      arguments: this.args,
      error: err instanceof Error ? err.message : String(err),
    };
    const done = this.done;
    this.bus.publishRecordedThen(withCaller(event, this.options, this.span?.span.spanContext().traceId), () => done.reject(err));
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
