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
 * With tracing off ({@link Tracing.enabled} false, the default) every hook is one property read
 * and a branch: nothing is allocated and no OpenTelemetry code runs.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from '@opentelemetry/api';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

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
    log.info('tracing on', { otlp_endpoint: config.otlp_endpoint, sample_ratio: config.sample_ratio, capture_payloads: config.capture_payloads });
    return new Tracing(provider, config.capture_payloads, new W3CTraceContextPropagator());
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
