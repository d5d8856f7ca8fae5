/**
 * OpenTelemetry traces of MCP requests, from the client through the gateway to the upstream.
 *
 * - A SERVER span per MCP request on `/mcp` and `/ws` (`{mcp.method.name} {target}`, e.g.
 *   `tools/call everything-echo`) and per REST request (`{method} {route}`), child of the trace
 *   context the client sent: `params._meta.traceparent`/`tracestate` first, else the HTTP
 *   `traceparent`/`tracestate` headers (W3C Trace Context, https://www.w3.org/TR/trace-context/).
 * - A CLIENT span per upstream call (`tools/call echo`, `mcp.upstream` = the client name) under
 *   it; its context goes to the upstream in `params._meta.traceparent`/`tracestate` (every
 *   transport) and, for http/sse upstreams, in the `traceparent` header too.
 * - Attributes follow the OpenTelemetry semantic conventions for MCP
 *   (https://opentelemetry.io/docs/specs/semconv/gen-ai/mcp/): `mcp.method.name`,
 *   `mcp.session.id`, `mcp.protocol.version`, `jsonrpc.request.id`, `gen_ai.tool.name`,
 *   `gen_ai.operation.name` (`execute_tool`), `gen_ai.prompt.name`, `mcp.resource.uri`,
 *   `network.transport`, `network.protocol.name`, `error.type`, `rpc.response.status_code`. No
 *   credentials ever; tool arguments and results only with `tracing.capture_payloads`.
 * - Export: OTLP over HTTP/JSON with a batch processor; sampling parent-based with
 *   `sample_ratio` for traces the gateway starts.
 *
 * - A CLIENT span per server→client request an upstream sends through the gateway
 *   (`sampling/createMessage`, `elicitation/create`, `roots/list`) under the call it belongs to;
 *   its context goes to the client in the relayed request's `params._meta`.
 * - A root span per store batch (`store.batch`: `db.system.name` `leveldb`,
 *   `db.operation.name` `batch`, `db.operation.batch.size`): a batch serves many requests at
 *   once, so it is its own trace, sampled like any root.
 * - Model providers (GenAI conventions, https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/):
 *   a CLIENT span `{gen_ai.operation.name} {gen_ai.request.model}` per provider call
 *   (`chat`, `embeddings`) with `gen_ai.provider.name` (`openai`: the wire format),
 *   `gen_ai.request.model`, `gen_ai.usage.input_tokens`/`output_tokens`, `server.address`,
 *   `server.port`, `tributary.provider`, `error.type`; its context goes to the provider in the
 *   `traceparent` header. A SERVER span `response.create` per response on `/v1/responses`.
 * - With `tracing.active_context` (off by default), a request's span is the active OpenTelemetry
 *   context while it is open (an `AsyncLocalStorage` context manager, registered only then): spans
 *   started further down (provider calls inside a REST request or a response) become its
 *   children, and every log line written inside it carries `trace_id` and `span_id`. Without it
 *   those provider spans are roots of their own traces and log lines carry no ids.
 *
 * With tracing off ({@link Tracing.enabled} false, the default) every hook is one property read
 * and a branch: nothing is allocated and no OpenTelemetry code runs.
 */
import { context as otelContext, isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from '@opentelemetry/api';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import type { GatewayConfig } from '../config/schema.js';
import { setLogContext, type LogFields, type Logger } from '../log/logger.js';

/** Whether this process has registered the AsyncLocalStorage context manager (once per process). */
let contextManagerRegistered = false;

/** `trace_id`/`span_id` of the active span, for log lines (`undefined` outside a span). */
function activeTraceFields(): LogFields | undefined {
  const span = trace.getSpan(otelContext.active());
  if (span === undefined) return undefined;
  const sc = span.spanContext();
  return isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : undefined;
}

/** What a provider call span ends with. */
export interface ProviderSpanEnd {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  /** The failure: its `code` (a GatewayError) or name becomes `error.type`. */
  readonly error?: unknown;
}

function errorType(e: unknown): string {
  if (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string') return (e as { code: string }).code;
  return e instanceof Error ? e.name : 'Error';
}

type Carrier = Record<string, unknown>;

const getter: TextMapGetter<Carrier> = {
  keys: (c) => Object.keys(c),
  get: (c, key) => {
    const v = c[key];
    return typeof v === 'string' ? v : undefined;
  },
};
const setter: TextMapSetter<Carrier> = {
  set: (c, key, value) => {
    c[key] = value;
  },
};

/** What a traced request knows about itself. */
export interface McpSpanStart {
  readonly method: string;
  /** `params` of the request (for `_meta`, the tool, prompt or resource named). */
  readonly params: Record<string, unknown> | undefined;
  readonly requestId: string | number;
  readonly sessionId: string | undefined;
  readonly protocolVersion: string | undefined;
  /** `http` (/mcp) or `websocket` (/ws). */
  readonly protocol: 'http' | 'websocket';
  /** The HTTP request's `traceparent`/`tracestate` headers (`''` when absent). */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** An open span and how to end it. */
export interface TraceScope {
  readonly span: Span;
  readonly context: Context;
}

/** The trace context part of `_meta` sent to upstreams. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

export class Tracing {
  /** Whether spans are recorded at all. Hot paths test this before anything else. */
  readonly enabled: boolean;
  readonly capturePayloads: boolean;
  private readonly tracer: Tracer | undefined;
  private readonly provider: BasicTracerProvider | undefined;
  private readonly propagator: W3CTraceContextPropagator | undefined;

  private constructor(provider: BasicTracerProvider | undefined, capturePayloads: boolean, propagator?: W3CTraceContextPropagator) {
    this.provider = provider;
    this.propagator = propagator;
    this.enabled = provider !== undefined;
    this.tracer = provider?.getTracer('tributary');
    this.capturePayloads = capturePayloads;
  }

  /** Tracing off: every hook is a no-op. */
  static disabled(): Tracing {
    return new Tracing(undefined, false);
  }

  /**
   * Tracing as `config` says: off without an OTLP endpoint; otherwise an OTLP/HTTP exporter behind
   * a batch processor, parent-based sampling with `sample_ratio` for root spans.
   */
  static async fromConfig(config: GatewayConfig['tracing'], log: Logger): Promise<Tracing> {
    if (config.otlp_endpoint === undefined) return Tracing.disabled();
    // the SDK is loaded only when tracing is on: a gateway without it starts faster
    const [{ W3CTraceContextPropagator }, { OTLPTraceExporter }, { resourceFromAttributes }, sdk] = await Promise.all([
      import('@opentelemetry/core'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace-base'),
    ]);
    const provider = new sdk.BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.service_name }),
      sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(config.sample_ratio) }),
      spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter({ url: config.otlp_endpoint }), { scheduledDelayMillis: 1000, maxQueueSize: 4096 })],
    });
    // opt-in: on Node 20 an AsyncLocalStorage puts a hook on every promise of the process
    if (config.active_context) {
      if (!contextManagerRegistered) {
        const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
        contextManagerRegistered = otelContext.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      }
      setLogContext(activeTraceFields);
    }
    log.info('tracing on', { otlp_endpoint: config.otlp_endpoint, sample_ratio: config.sample_ratio, capture_payloads: config.capture_payloads, active_context: config.active_context });
    return new Tracing(provider, config.capture_payloads, new W3CTraceContextPropagator());
  }

  /**
   * Runs `fn` with `scope` as the active context (children started with {@link current} as the
   * parent, `trace_id`/`span_id` on log lines); just `fn()` when `scope` is undefined.
   */
  within<T>(scope: TraceScope | undefined, fn: () => T): T {
    return scope === undefined ? fn() : otelContext.with(scope.context, fn);
  }

  /** The active span as a scope (see {@link within}), `undefined` outside one or with tracing off. */
  current(): TraceScope | undefined {
    if (this.tracer === undefined) return undefined;
    const ctx = otelContext.active();
    const span = trace.getSpan(ctx);
    return span === undefined || !span.isRecording() ? undefined : { span, context: ctx };
  }

  /**
   * Starts the CLIENT span of a server→client request an upstream relays through the gateway
   * (`sampling/createMessage` …) under `parent` (the downstream call it belongs to), and writes its
   * context into `carrier` (the relayed request's `_meta`). `undefined` when `parent` is.
   */
  startRelay(parent: TraceScope | undefined, upstream: string, method: string, sessionId: string | undefined, carrier: TraceCarrier): TraceScope | undefined {
    const tracer = this.tracer;
    if (tracer === undefined || parent === undefined) return undefined;
    const attributes: Attributes = { 'mcp.method.name': method, 'mcp.upstream': upstream, 'tributary.relay': true };
    if (sessionId !== undefined) attributes['mcp.session.id'] = sessionId;
    const span = tracer.startSpan(method, { kind: SpanKind.CLIENT, attributes }, parent.context);
    const context = trace.setSpan(parent.context, span);
    this.propagator?.inject(context, carrier as Carrier, setter);
    return { span, context };
  }

  /** Ends a span: with `error` it is marked as error with `error.type`. */
  end(scope: TraceScope | undefined, error?: unknown): void {
    if (scope === undefined) return;
    if (error !== undefined) Tracing.markError(scope.span, error);
    scope.span.end();
  }

  /** Marks the active span (if any) as failed with `error`. */
  recordError(error: unknown): void {
    const span = this.tracer === undefined ? undefined : trace.getSpan(otelContext.active());
    if (span !== undefined) Tracing.markError(span, error);
  }

  private static markError(span: Span, error: unknown): void {
    span.setAttribute('error.type', errorType(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }

  /**
   * Commits one store batch inside a root `store.batch` span (never the child of whichever
   * request happened to trigger the commit). `commit` runs unchanged when tracing is off.
   */
  storeBatch(size: number, commit: () => Promise<void>): Promise<void> {
    const tracer = this.tracer;
    if (tracer === undefined) return commit();
    const span = tracer.startSpan('store.batch', { kind: SpanKind.INTERNAL, attributes: { 'db.system.name': 'leveldb', 'db.operation.name': 'batch', 'db.operation.batch.size': size } }, ROOT_CONTEXT);
    if (!span.isRecording()) {
      span.end();
      return commit();
    }
    return otelContext.with(trace.setSpan(ROOT_CONTEXT, span), commit).then(
      () => span.end(),
      (err: unknown) => {
        Tracing.markError(span, err);
        span.end();
        throw err;
      },
    );
  }

  /**
   * Starts the CLIENT span of a model provider call under the active context and writes its
   * context into `headers` (`traceparent` for the provider). `operation`: `chat` or `embeddings`.
   */
  startProvider(operation: string, provider: string, model: string, baseUrl: string, headers: Record<string, string>): TraceScope | undefined {
    const tracer = this.tracer;
    if (tracer === undefined) return undefined;
    const parent = otelContext.active();
    const attributes: Attributes = { 'gen_ai.operation.name': operation, 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': model, 'tributary.provider': provider };
    try {
      const u = new URL(baseUrl);
      attributes['server.address'] = u.hostname;
      attributes['server.port'] = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    } catch {
      // a bad URL fails the call itself; the span just lacks the address
    }
    const span = tracer.startSpan(model === '' ? operation : `${operation} ${model}`, { kind: SpanKind.CLIENT, attributes }, parent);
    if (!span.isRecording()) {
      span.end();
      return undefined;
    }
    const context = trace.setSpan(parent, span);
    this.propagator?.inject(context, headers as Carrier, setter);
    return { span, context };
  }

  /** Ends a provider call span with its token counts or its error. */
  endProvider(scope: TraceScope | undefined, outcome: ProviderSpanEnd): void {
    if (scope === undefined) return;
    if (outcome.inputTokens !== undefined) scope.span.setAttribute('gen_ai.usage.input_tokens', outcome.inputTokens);
    if (outcome.outputTokens !== undefined) scope.span.setAttribute('gen_ai.usage.output_tokens', outcome.outputTokens);
    if (outcome.error !== undefined) Tracing.markError(scope.span, outcome.error);
    scope.span.end();
  }

  /** Starts the SERVER span of one response on `/v1/responses` (`response.create`). */
  startResponse(responseId: string, model: string, sessionAttributes: Attributes = {}): TraceScope | undefined {
    const tracer = this.tracer;
    if (tracer === undefined) return undefined;
    const span = tracer.startSpan(
      'response.create',
      { kind: SpanKind.SERVER, attributes: { ...sessionAttributes, 'gen_ai.request.model': model, 'gen_ai.response.id': responseId, 'network.protocol.name': 'websocket' } },
      ROOT_CONTEXT,
    );
    if (!span.isRecording()) {
      span.end();
      return undefined;
    }
    return { span, context: trace.setSpan(ROOT_CONTEXT, span) };
  }

  /**
   * Starts the SERVER span of an MCP request; `undefined` when tracing is off or the trace is not
   * sampled. The caller ends it with {@link endMcp}.
   */
  startMcp(s: McpSpanStart): TraceScope | undefined {
    const tracer = this.tracer;
    if (tracer === undefined) return undefined;
    const params = s.params;
    const meta = params?.['_meta'];
    let parent = ROOT_CONTEXT;
    if (typeof meta === 'object' && meta !== null && typeof (meta as Carrier)['traceparent'] === 'string') parent = this.propagator?.extract(ROOT_CONTEXT, meta as Carrier, getter) ?? ROOT_CONTEXT;
    else if (s.traceparent) parent = this.propagator?.extract(ROOT_CONTEXT, { traceparent: s.traceparent, tracestate: s.tracestate ?? '' }, getter) ?? ROOT_CONTEXT;
    const attributes: Attributes = {
      'mcp.method.name': s.method,
      'jsonrpc.request.id': String(s.requestId),
      'network.transport': 'tcp',
      'network.protocol.name': s.protocol,
    };
    if (s.sessionId !== undefined) attributes['mcp.session.id'] = s.sessionId;
    if (s.protocolVersion !== undefined) attributes['mcp.protocol.version'] = s.protocolVersion;
    const target = targetOf(s.method, params, attributes);
    if (this.capturePayloads && s.method === 'tools/call' && params?.['arguments'] !== undefined) attributes['gen_ai.tool.call.arguments'] = safeJson(params['arguments']);
    const span = tracer.startSpan(target === undefined ? s.method : `${s.method} ${target}`, { kind: SpanKind.SERVER, attributes }, parent);
    if (!span.isRecording()) {
      span.end();
      return undefined;
    }
    return { span, context: trace.setSpan(parent, span) };
  }

  /** Ends an MCP request's span with the JSON-RPC answer: an error response marks it as error. */
  endMcp(scope: TraceScope | undefined, response: { error?: { code: number; message: string } } | undefined): void {
    if (scope === undefined) return;
    const err = response?.error;
    if (err !== undefined) {
      scope.span.setAttribute('error.type', String(err.code));
      scope.span.setAttribute('rpc.response.status_code', String(err.code));
      scope.span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
    }
    scope.span.end();
  }

  /**
   * Starts the CLIENT span of an upstream call under `parent` and writes its context into
   * `carrier` (the upstream request's `_meta`). `undefined` when the parent is not traced.
   */
  startUpstream(parent: TraceScope | undefined, upstream: string, method: string, toolName: string | undefined, carrier: TraceCarrier): TraceScope | undefined {
    const tracer = this.tracer;
    if (tracer === undefined || parent === undefined) return undefined;
    const attributes: Attributes = { 'mcp.method.name': method, 'mcp.upstream': upstream };
    if (toolName !== undefined) {
      attributes['gen_ai.tool.name'] = toolName;
      attributes['gen_ai.operation.name'] = 'execute_tool';
    }
    const span = tracer.startSpan(toolName === undefined ? method : `${method} ${toolName}`, { kind: SpanKind.CLIENT, attributes }, parent.context);
    const context = trace.setSpan(parent.context, span);
    this.propagator?.inject(context, carrier as Carrier, setter);
    return { span, context };
  }

  /**
   * Marks on an upstream call's span the moment the request went to the upstream: the event
   * `upstream.dispatched` with `tributary.queue_wait_ms` (time spent before it: circuit breaker and
   * the wait for a concurrency slot); the rest of the span is the upstream's time.
   */
  dispatched(scope: TraceScope | undefined, queueWaitMs: number): void {
    scope?.span.addEvent('upstream.dispatched', { 'tributary.queue_wait_ms': queueWaitMs });
  }

  /** Ends an upstream call's span: `error` (a thrown error) or a result with `isError` mark it. */
  endUpstream(scope: TraceScope | undefined, outcome: { result?: Record<string, unknown>; error?: unknown }): void {
    if (scope === undefined) return;
    if (outcome.error !== undefined) {
      const e = outcome.error;
      scope.span.setAttribute('error.type', e instanceof Error ? e.name : 'Error');
      scope.span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
    } else if (outcome.result?.['isError'] === true) {
      scope.span.setAttribute('error.type', 'tool_error');
      scope.span.setStatus({ code: SpanStatusCode.ERROR, message: 'the tool reported an error' });
    }
    if (this.capturePayloads && outcome.result !== undefined) scope.span.setAttribute('gen_ai.tool.call.result', safeJson(outcome.result));
    scope.span.end();
  }

  /** Starts the SERVER span of a REST request (`GET /api/v1/contexts/:id`). */
  startRest(method: string, route: string, headers: { traceparent?: string; tracestate?: string }): TraceScope | undefined {
    const tracer = this.tracer;
    if (tracer === undefined) return undefined;
    const parent = headers.traceparent && this.propagator ? this.propagator.extract(ROOT_CONTEXT, { traceparent: headers.traceparent, tracestate: headers.tracestate ?? '' }, getter) : ROOT_CONTEXT;
    const span = tracer.startSpan(`${method} ${route}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'http.route': route } }, parent);
    if (!span.isRecording()) {
      span.end();
      return undefined;
    }
    return { span, context: trace.setSpan(parent, span) };
  }

  /** Ends a REST request's span with its status (5xx marks an error). */
  endRest(scope: TraceScope | undefined, status: number): void {
    if (scope === undefined) return;
    scope.span.setAttribute('http.response.status_code', status);
    if (status >= 500) {
      scope.span.setAttribute('error.type', String(status));
      scope.span.setStatus({ code: SpanStatusCode.ERROR });
    }
    scope.span.end();
  }

  /** The trace id of a scope (for tool-log entries and events), `undefined` when not traced. */
  static traceId(scope: TraceScope | undefined): string | undefined {
    return scope?.span.spanContext().traceId;
  }

  /** Exports what is buffered and stops; idempotent. */
  async shutdown(): Promise<void> {
    if (this.provider !== undefined) setLogContext(undefined);
    await this.provider?.shutdown();
  }

  /** Exports what is buffered now (tests). */
  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }
}

/** The span name's target and the attributes naming it (tool, prompt, resource). */
function targetOf(method: string, params: Record<string, unknown> | undefined, attributes: Attributes): string | undefined {
  const name = params?.['name'];
  if (method === 'tools/call' && typeof name === 'string') {
    attributes['gen_ai.tool.name'] = name;
    attributes['gen_ai.operation.name'] = 'execute_tool';
    return name;
  }
  if (method === 'prompts/get' && typeof name === 'string') {
    attributes['gen_ai.prompt.name'] = name;
    return name;
  }
  const uri = params?.['uri'];
  if (typeof uri === 'string' && method.startsWith('resources/')) attributes['mcp.resource.uri'] = uri;
  return undefined;
}

function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s.length > 8192 ? `${s.slice(0, 8192)}…` : s;
  } catch {
    return '[unserializable]';
  }
}
