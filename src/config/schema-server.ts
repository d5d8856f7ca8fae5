/** Codecs of the gateway process itself: HTTP server, tool log, store, event feeds, webhooks, tracing, dashboard. */
import * as t from 'io-ts';
import { NonNegativeInt, Port, PositiveInt } from './schema-primitives.js';

export const ServerConfig = t.exact(
  t.partial({
    host: t.string,
    port: Port,
    /** Origins allowed on /mcp besides loopback ones (`http://localhost:*` style wildcards on port). */
    allowed_origins: t.array(t.string),
    /** Host headers allowed on /mcp besides loopback names (`name:*` for any port). Checked when bound to loopback or when set. */
    allowed_hosts: t.array(t.string),
    /** Largest accepted request body, bytes (default 4 MiB). */
    max_body_bytes: PositiveInt,
    /** Requests handled at once on /mcp (default 256). */
    concurrency: PositiveInt,
    /** Requests waiting for a slot before 503 (default 1024; 0 = no queue, fail fast). */
    max_queued: NonNegativeInt,
    /** Grace period for in-flight calls on SIGINT/SIGTERM, ms (default 10000). */
    shutdown_timeout_ms: PositiveInt,
    /** Sessions idle longer than this are closed, ms (default 30 min). */
    session_idle_timeout_ms: PositiveInt,
    /** Most sessions open at once (default 10000). */
    max_sessions: PositiveInt,
    /** tools/list, prompts/list, resources/list page size (default 1000). */
    page_size: PositiveInt,
    /** SSE keep-alive comment interval, ms (default 15000). */
    sse_keepalive_ms: PositiveInt,
    /**
     * Longest wait for the initial catalogue load before MCP traffic is served anyway, ms (default
     * 15000). Until then `/health/ready` answers 503 and MCP requests are held.
     */
    ready_timeout_ms: PositiveInt,
    /**
     * Threads listening on the port (default 1): the main thread plus `workers - 1` worker
     * threads, each a uWS `App` on the same port (SO_REUSEPORT) carrying its connections'
     * requests and WebSocket messages to the main thread, which serves them (README "All cores").
     */
    workers: PositiveInt,
    /**
     * With `workers` > 1: worker threads decide `POST /mcp` `tools/call`, `tools/list` and `ping`
     * requests themselves (headers, key, JSON-RPC) and hand the main thread one call message
     * (default true); false: every request is carried to the main thread whole.
     */
    worker_mcp_calls: t.boolean,
    /**
     * With `workers` > 1: whether the main thread takes connections too (default true). false:
     * only the worker threads do, and the main thread serves their calls and carried requests
     * (it listens again while no worker listens, e.g. during a worker's restart).
     */
    main_thread_listens: t.boolean,
  }),
);
export type ServerConfig = t.TypeOf<typeof ServerConfig>;

export const ToolLogConfig = t.exact(
  t.partial({
    /** Entries kept at most (default 100000). */
    max_entries: PositiveInt,
    /** Entries older than this are dropped, ms (default 7 days). */
    max_age_ms: PositiveInt,
    /** Arguments and results are kept whole when they fit in this many bytes as JSON text or as MessagePack, else cut to a JSON prefix of that many bytes (default 16 KiB). */
    max_payload_bytes: PositiveInt,
    /** Retention sweep interval, ms (default 60000). */
    sweep_interval_ms: PositiveInt,
  }),
);

export const StoreConfig = t.exact(
  t.partial({
    /**
     * How long a streamed write may wait for others before its batch starts, ms (default 0: group
     * commit — a batch starts when the previous one is committed). Acknowledgements wait for the
     * commit either way, so this trades latency for fewer, larger batches; it is not a loss window.
     */
    batch_window_ms: NonNegativeInt,
    /** Most operations in one db.batch (default 1000). */
    max_batch: PositiveInt,
    /** LevelDB memtable size, MiB: writes held in memory before a level-0 table is written (default 32; LevelDB's own default is 4). */
    write_buffer_mib: PositiveInt,
    /** LevelDB table file size, MiB (default 8; LevelDB's own default is 2). */
    max_file_mib: PositiveInt,
    /** Snappy compression of LevelDB's tables, both databases (default true, LevelDB's default): off trades disk for CPU. */
    compression: t.boolean,
  }),
);

export const EventsConfig = t.exact(
  t.partial({
    /** Live events queued per WebSocket subscriber; beyond, it catches up from the store (default 1000). */
    max_queued: PositiveInt,
    /** Events kept in the durable log for `since` replay (default 100000). */
    max_stored: PositiveInt,
    /** Most stored events one catch-up (a `since` replay, or a slow subscriber's) sends before skipping to live with a warning (default 100000). */
    max_replay: PositiveInt,
    /** Server ping interval on the feeds, ms (default 30000). */
    ping_interval_ms: PositiveInt,
    /** A WebSocket peer silent this long is closed, seconds (default 120; uWS needs ≥ 8). */
    idle_timeout_s: PositiveInt,
  }),
);

/** Incoming webhooks. */
export const WebhooksConfig = t.exact(
  t.partial({
    /** Secret GitHub signs deliveries with (`X-Hub-Signature-256`); env TRIBUTARY_GITHUB_WEBHOOK_SECRET overrides. Unset: 503. */
    github_secret: t.string,
    /** Delivery ids remembered to acknowledge replays without processing them twice (default 10000). */
    max_remembered_deliveries: PositiveInt,
  }),
);

/**
 * OpenTelemetry traces (OTLP over HTTP). Off unless an endpoint is configured here or in the
 * standard environment (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`);
 * `OTEL_SDK_DISABLED=true` turns it off. https://opentelemetry.io/docs/specs/otel/protocol/exporter/
 */
export const TracingConfig = t.exact(
  t.partial({
    /** OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`. */
    otlp_endpoint: t.string,
    /** Share of traces the gateway starts that are recorded, 0..1 (default 1; env OTEL_TRACES_SAMPLER_ARG). A client's sampled `traceparent` is followed. */
    sample_ratio: t.number,
    /** Record tool arguments and results as span attributes (default false: never). */
    capture_payloads: t.boolean,
    /** `service.name` of the spans (default `tributary`; env OTEL_SERVICE_NAME). */
    service_name: t.string,
    /**
     * Keep a request's span as the active context across awaits (an AsyncLocalStorage context
     * manager): log lines inside a span carry `trace_id`/`span_id`, and provider calls inside a
     * REST request or a response become its children. Default false: on Node 20 it puts a hook on
     * every promise of the process (`npm run bench:tracing` measures it).
     */
    active_context: t.boolean,
  }),
);

/** The web dashboard at `/ui` and its sign-in sessions. */
export const UiConfig = t.exact(
  t.partial({
    /** Serve the dashboard (`/ui`, `/api/ui/*`; default true). Off: those paths answer 404. */
    enabled: t.boolean,
    /** A dashboard session ends after this long without a request, seconds (default 1800). */
    session_idle_s: PositiveInt,
    /** A dashboard session ends this long after its sign-in whatever its use, seconds (default 43200). */
    session_max_s: PositiveInt,
  }),
);
