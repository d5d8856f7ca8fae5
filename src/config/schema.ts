/**
 * Gateway configuration codecs (io-ts). The config file is JSON; every field has a default, so
 * `{}` is a valid file. Field names follow the Bifrost MCP client schema
 * (https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml: `connection_type`, `stdio_config`, `tools_to_execute`, ...).
 */
import * as t from 'io-ts';
import { ClientOAuthConfig, OAuthResourceConfig, UpstreamOAuthConfig, type OAuthResourceSettings, type UpstreamOAuthSettings } from './oauth.js';

/** Client names: ASCII letters, digits and `_`, not starting with a digit. */
export interface ClientNameBrand {
  readonly ClientName: unique symbol;
}
export const ClientName = t.brand(
  t.string,
  (s): s is t.Branded<string, ClientNameBrand> => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) && s.length <= 64,
  'ClientName',
);
export type ClientName = t.TypeOf<typeof ClientName>;

/** `KEY=VALUE` environment entries for stdio upstreams. */
export interface EnvEntryBrand {
  readonly EnvEntry: unique symbol;
}
export const EnvEntry = t.brand(
  t.string,
  (s): s is t.Branded<string, EnvEntryBrand> => /^[A-Za-z_][A-Za-z0-9_]*=/.test(s),
  'EnvEntry',
);

export interface PortBrand {
  readonly Port: unique symbol;
}
export const Port = t.brand(
  t.number,
  (n): n is t.Branded<number, PortBrand> => Number.isInteger(n) && n >= 0 && n <= 65535,
  'Port',
);

export interface PositiveIntBrand {
  readonly PositiveInt: unique symbol;
}
/** A whole number ≥ 1. */
export const PositiveInt = t.brand(
  t.number,
  (n): n is t.Branded<number, PositiveIntBrand> => Number.isInteger(n) && n >= 1,
  'PositiveInt',
);
export type PositiveInt = t.TypeOf<typeof PositiveInt>;

export interface NonNegativeIntBrand {
  readonly NonNegativeInt: unique symbol;
}
/** A whole number ≥ 0. */
export const NonNegativeInt = t.brand(
  t.number,
  (n): n is t.Branded<number, NonNegativeIntBrand> => Number.isInteger(n) && n >= 0,
  'NonNegativeInt',
);

export const StdioConfig = t.exact(
  t.intersection([
    t.type({ command: t.string }),
    t.partial({
      args: t.array(t.string),
      envs: t.array(EnvEntry),
      cwd: t.string,
      /**
       * Identical processes started behind this one client name (default 1, at most
       * {@link MAX_POOL_SIZE}): calls go to the one with the fewest in flight; each process has its
       * own health checks, restarts and circuit breaker.
       */
      pool_size: PositiveInt,
    }),
  ]),
);
/** The largest `stdio_config.pool_size`. */
export const MAX_POOL_SIZE = 64;
export type StdioConfig = t.TypeOf<typeof StdioConfig>;

/** Reconnect backoff: `initial_ms` doubling up to `max_ms`, ±20% jitter, at most `max_retries` attempts. */
export const ReconnectConfig = t.exact(
  t.partial({
    /** Delay before the first reconnect attempt, ms (default 1000). */
    initial_ms: PositiveInt,
    /** Longest delay between attempts, ms (default 30000). */
    max_ms: PositiveInt,
    /** Attempts before giving up (default: no limit; 0 = never reconnect automatically). */
    max_retries: NonNegativeInt,
  }),
);

/** Circuit breaker thresholds (closed → open → half_open → closed). */
export const CircuitBreakerConfig = t.exact(
  t.partial({
    /** Call timeouts or send failures in a row that open the breaker (default 5). */
    failure_threshold: PositiveInt,
    /** How long the breaker stays open before trial calls are let through, ms (default 30000). */
    open_ms: PositiveInt,
    /** Trial calls in flight at once while half-open (default 1); the first success closes the breaker. */
    half_open_max_calls: PositiveInt,
  }),
);

export const ConnectionType = t.keyof({ stdio: null, http: null, sse: null, inprocess: null });
export type ConnectionType = t.TypeOf<typeof ConnectionType>;

/** `oauth`: one authorization for the client (an admin's, or client credentials); `per_user_oauth`: one per downstream principal. */
export const AuthType = t.keyof({ none: null, headers: null, oauth: null, per_user_oauth: null });

/** One upstream MCP client. `connection_type` decides which of the connection fields is required. */
export const McpClientConfig = t.exact(
  t.intersection([
    t.type({ name: ClientName, connection_type: ConnectionType }),
    t.partial({
      client_id: t.string,
      connection_string: t.string,
      stdio_config: StdioConfig,
      /** Name of a built-in in-process server (`demo`) for `connection_type: inprocess`. */
      inprocess_server: t.string,
      auth_type: AuthType,
      headers: t.record(t.string, t.string),
      /** How the OAuth flow starts (auth_type `oauth` / `per_user_oauth`); see `config/oauth.ts`. */
      oauth_config: ClientOAuthConfig,
      /** Set by the gateway once the client's authorization completed (auth_type `oauth`). */
      oauth_config_id: t.string,
      /** `["*"]` all tools (default), `[]` none, or a list of upstream tool names. */
      tools_to_execute: t.array(t.string),
      /**
       * Upstream tool names refused even when tools_to_execute allows them: a deny list, stronger
       * than any allow. Denied tools are not served on /mcp, /ws or tool execution either, and are
       * listed as disallowed REST actions (`/api/v1/tools/:tool/actions`).
       */
      disallowed_actions: t.array(t.string),
      /** Tools that may run without user approval; a subset of tools_to_execute (`["*"]` = all executable). */
      tools_to_auto_execute: t.array(t.string),
      /** When true, every virtual key may use this client's tools unless it has its own vk_config. */
      allow_on_all_virtual_keys: t.boolean,
      is_code_mode_client: t.boolean,
      /** Prefix of downstream tool and prompt names; default `${name}-`; `""` exposes names as they are. */
      tool_prefix: t.string,
      is_ping_available: t.boolean,
      /** Per-call timeout towards this upstream, ms. */
      request_timeout_ms: PositiveInt,
      /** Time allowed for connect + initialize + first catalogue load, ms. */
      connect_timeout_ms: PositiveInt,
      /** Health tick period while connected, ms (default 10000). */
      health_check_interval_ms: PositiveInt,
      /** A health check (`ping`, or `tools/list` when `is_ping_available` is false) fails after this long, ms (default 5000). */
      health_check_timeout_ms: PositiveInt,
      /** Failed health checks in a row after which the upstream is disconnected and reconnected (default 5). */
      max_consecutive_failures: PositiveInt,
      /** Automatic reconnection after a crash, a lost connection or failed health checks. */
      reconnect: ReconnectConfig,
      /** Per-upstream circuit breaker on call timeouts and send failures (not on a message the gateway cannot serialise). */
      circuit_breaker: CircuitBreakerConfig,
      /** Calls in flight to this upstream at once (default 64); health checks and catalogue loads do not count. */
      max_concurrent_calls: PositiveInt,
      /** Calls waiting for a slot before "upstream overloaded" (default 128; 0 = no queue, fail fast). */
      max_queued_calls: NonNegativeInt,
    }),
  ]),
);
export type McpClientConfig = t.TypeOf<typeof McpClientConfig>;

/**
 * The resilience settings of one client with every default filled in; see
 * `resolveResilience` in `load.ts`. Times in ms.
 */
export interface ResilienceSettings {
  readonly health_check_interval_ms: number;
  readonly health_check_timeout_ms: number;
  readonly max_consecutive_failures: number;
  readonly reconnect: {
    readonly initial_ms: number;
    readonly max_ms: number;
    /** Reconnect attempts before giving up; `undefined` = never give up. */
    readonly max_retries: number | undefined;
  };
  readonly circuit_breaker: {
    readonly failure_threshold: number;
    readonly open_ms: number;
    readonly half_open_max_calls: number;
  };
  readonly max_concurrent_calls: number;
  readonly max_queued_calls: number;
}

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
  }),
);
export type ServerConfig = t.TypeOf<typeof ServerConfig>;

export const ToolLogConfig = t.exact(
  t.partial({
    /** Entries kept at most (default 100000). */
    max_entries: PositiveInt,
    /** Entries older than this are dropped, ms (default 7 days). */
    max_age_ms: PositiveInt,
    /** Arguments and results are cut beyond this many bytes of JSON (default 16 KiB). */
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

/** Per-key rate limits; every field a whole number ≥ 1. */
export const RateLimitConfig = t.exact(
  t.partial({
    /** Requests (HTTP requests, WebSocket messages) per hour per key (default 1000). */
    requests_per_hour: PositiveInt,
    /** Requests per minute per key: the burst limit (default 50). */
    burst_per_minute: PositiveInt,
    /** Tool executions per hour per key (default 100). */
    tool_executions_per_hour: PositiveInt,
  }),
);

/** JWT verification (jose): an HS256 secret and/or a JWKS file of RS256/ES256 public keys. */
export const JwtConfig = t.exact(
  t.partial({
    /** HS256 shared secret, ≥ 32 bytes; env TRIBUTARY_JWT_SECRET overrides. */
    hs256_secret: t.string,
    /** Path of a JWKS JSON file (`{"keys":[...]}`) with RS256/ES256 public keys, `kid` chosen. */
    jwks_file: t.string,
    /** Required `iss`. */
    issuer: t.string,
    /** Required `aud` member. */
    audience: t.string,
    /** Leeway on `exp`/`nbf`, seconds (default 30). */
    clock_tolerance_s: NonNegativeInt,
    /** Claim naming the caller's tenant (default `tenant_id`; missing → `default`). */
    tenant_claim: t.string,
    /** Claim naming the role; `admin` gives the management API (default `role`). */
    role_claim: t.string,
  }),
);

/**
 * Access control. Auth is on when the server binds a non-loopback address, unless
 * `disabled: true`; on loopback it is off unless `disabled: false`.
 */
export const AuthConfig = t.exact(
  t.partial({
    disabled: t.boolean,
    /** The admin user for HTTP Basic; the password as an scrypt hash (`npm run hash-password`), or env TRIBUTARY_ADMIN_PASSWORD. */
    admin: t.exact(t.intersection([t.type({ username: t.string }), t.partial({ password_hash: t.string })])),
    jwt: JwtConfig,
    /** The gateway as an OAuth 2.1 protected resource (RFC 9728): trusted authorization servers, scopes → roles and tools. */
    oauth: OAuthResourceConfig,
    /** Default per-key limits (keys may override). */
    rate_limits: RateLimitConfig,
    /** Require credentials on /metrics (default false: open, as Prometheus scrapers expect). */
    metrics_require_auth: t.boolean,
    /** Failed Basic logins per address before further attempts are refused (default 5). */
    max_login_failures: PositiveInt,
    /** Window of `max_login_failures`, seconds (default 900). */
    login_failure_window_s: PositiveInt,
  }),
);

/** Agent orchestration on `/ws`. */
export const OrchestrationConfig = t.exact(
  t.partial({
    /** How an available agent is picked among those whose capabilities cover a task (default least_loaded). */
    strategy: t.keyof({ least_loaded: null, round_robin: null }),
    /** An agent silent (no heartbeat or other message) this long goes offline, ms (default 30000). */
    heartbeat_timeout_ms: PositiveInt,
    /** Tasks waiting for an eligible agent, per tenant, before task.assign is refused (default 1000). */
    max_queued_tasks: PositiveInt,
    /** Assignments of one task before it fails when its agents keep going offline (default 3). */
    max_attempts: PositiveInt,
    /** Tasks one agent holds at once (default 10). */
    max_tasks_per_agent: PositiveInt,
    /** Completed and failed tasks are deleted this long after their last change, ms (default 7 days). */
    finished_task_retention_ms: PositiveInt,
  }),
);

/** Collaborative workspaces on `/ws`. */
export const WorkspacesConfig = t.exact(
  t.partial({
    /** Lease of a document lock unless renewed, ms (default 30000). */
    lock_ttl_ms: PositiveInt,
    /** Cursor and selection broadcasts are coalesced per member over this window, ms (default 50). */
    cursor_audit_ms: PositiveInt,
    /** Largest merged document state, bytes (default 8 MiB). */
    max_document_bytes: PositiveInt,
    /** Members of one workspace at once (default 256). */
    max_members: PositiveInt,
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

/** Price of one model, USD per million tokens (for the cost figures). */
export const ModelPriceConfig = t.exact(t.type({ input_per_mtok: t.number, output_per_mtok: t.number }));

export interface ProviderNameBrand {
  readonly ProviderName: unique symbol;
}
/** Provider names: ASCII letters, digits, `_` and `-`, 1..64, not starting with a digit or `-`. */
export const ProviderName = t.brand(
  t.string,
  (s): s is t.Branded<string, ProviderNameBrand> => /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(s),
  'ProviderName',
);

/** One OpenAI-compatible model provider (OpenAI, Azure OpenAI, vLLM, llama.cpp server, Ollama, ...). */
export const ModelProviderConfig = t.exact(
  t.intersection([
    t.type({
      name: ProviderName,
      /** Base URL the OpenAI paths are appended to, e.g. `https://api.openai.com/v1`. */
      base_url: t.string,
    }),
    t.partial({
      /** API key in clear in the file (prefer `api_key_env`). */
      api_key: t.string,
      /** Name of the environment variable holding the API key. */
      api_key_env: t.string,
      /** Extra request headers (Azure `api-key`, `OpenAI-Organization`, ...). */
      headers: t.record(t.string, t.string),
      /** Model names served, so a bare model name resolves to this provider. */
      models: t.array(t.string),
      /** Model used for embeddings when a caller names only this provider. */
      embedding_model: t.string,
      /** Per-attempt timeout until the answer's headers, and the longest silence inside a stream, ms (default 60000). */
      timeout_ms: PositiveInt,
      /** Retries of 429, 408, 409, 5xx and connection failures (default 2). */
      max_retries: NonNegativeInt,
      /** First backoff delay when the provider sends no retry-after, ms (default 500). */
      retry_initial_ms: PositiveInt,
      /** Longest wait before a retry, ms (default 10000); a longer retry-after is not waited for. */
      retry_max_ms: PositiveInt,
      /** Requests in flight at once (default 16). */
      max_concurrent_requests: PositiveInt,
      /** Requests waiting for a slot before "upstream overloaded" (default 64). */
      max_queued_requests: NonNegativeInt,
      circuit_breaker: CircuitBreakerConfig,
      /** Prices by model name. */
      pricing: t.record(t.string, ModelPriceConfig),
      /** How `/v1/responses` talks to it: `responses` (its own `/responses`, default) or `chat_completions` (translated). */
      responses_api: t.keyof({ responses: null, chat_completions: null }),
    }),
  ]),
);
export type ModelProviderConfig = t.TypeOf<typeof ModelProviderConfig>;

/** Model providers: the configured ones, and the key sealing API-managed providers' secrets. */
export const ModelProvidersConfig = t.exact(
  t.partial({
    providers: t.array(ModelProviderConfig),
    /** Base64 of 32 bytes (AES-256-GCM key for stored API keys); env TRIBUTARY_PROVIDER_KEY overrides; unset: a key file in data_dir. */
    encryption_key: t.string,
    /** Provider of bare model names no provider lists (default: the first configured provider). */
    default_provider: t.string,
  }),
);

/** Embeddings (`/api/v1/embeddings*`). */
export const EmbeddingsConfig = t.exact(
  t.partial({
    /** Vectors stored per tenant before new ones are refused (default 200000). */
    max_vectors_per_tenant: PositiveInt,
    /** Largest `limit` of a search (default 100). */
    max_search_limit: PositiveInt,
    /** Largest text embedded, characters (default 32768). */
    max_text_chars: PositiveInt,
    /** Texts in one generate request (default 256). */
    max_batch: PositiveInt,
  }),
);

/** The Responses API WebSocket (`/v1/responses`). */
export const ResponsesConfig = t.exact(
  t.partial({
    /** Model ↔ MCP tool round trips of one response before it ends `incomplete` (default 8). */
    max_tool_rounds: PositiveInt,
    /** Responses in flight on one connection (default 8). */
    max_in_flight: PositiveInt,
    /** MCP tools offered to the model at most (default 128). */
    max_tools: PositiveInt,
    /** Finished responses remembered per connection for `previous_response_id` (default 64). */
    max_remembered: PositiveInt,
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

export const ToolModeName = t.keyof({ full: null, search: null, code: null });

/** Limits of one `execute_code` run (code mode); each exceeded limit ends the run with its own error code. */
export const SandboxConfig = t.exact(
  t.partial({
    /** Wall-clock time of a run, waiting for tools included, ms (default 30000). */
    wall_ms: PositiveInt,
    /** Time spent executing JavaScript in the engine (not waiting for tools), ms (default 2000). */
    cpu_ms: PositiveInt,
    /** Heap of the engine, bytes (default 64 MiB). */
    memory_bytes: PositiveInt,
    /** Stack of the engine, bytes (default 64 KiB, about 330 levels of plain recursion); above about 100 KiB, Node's own stack may overflow first, which also ends the run with SANDBOX_STACK_LIMIT but costs a fresh engine module. */
    stack_bytes: PositiveInt,
    /** Tool calls one run may make (default 50). */
    max_tool_calls: PositiveInt,
    /** Tool calls of one run in flight at once; more wait (default 8). */
    max_concurrent_tool_calls: PositiveInt,
    /** Console output plus the JSON of the returned value, bytes (default 256 KiB). */
    max_output_bytes: PositiveInt,
    /** Length of the submitted code, bytes (default 64 KiB). */
    max_code_bytes: PositiveInt,
    /** Runs at once in this gateway; more are refused with OVERLOADED (default 4). */
    max_concurrent_runs: PositiveInt,
  }),
);

/**
 * Tool modes (how callers see the catalogue): the default, per downstream client name (`clientInfo.name`
 * of `initialize`), search settings and code-mode sandbox limits.
 */
export const ToolModesConfig = t.exact(
  t.partial({
    /** Mode of callers whose key has no `tool_mode` (default `full`). */
    default: ToolModeName,
    /** Mode per downstream client name (`initialize` `clientInfo.name`); overrides the key's mode. */
    clients: t.record(t.string, ToolModeName),
    /** Most results of one `search_tools` call (default 10, at most 50 may be asked for). */
    max_search_results: PositiveInt,
    sandbox: SandboxConfig,
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

/** A cluster node's name: letters, digits, `_` and `-` (a NATS subject token), at most 64 characters. */
export interface NodeIdBrand {
  readonly NodeId: unique symbol;
}
export const NodeId = t.brand(t.string, (s): s is t.Branded<string, NodeIdBrand> => /^[A-Za-z0-9_-]{1,64}$/.test(s), 'NodeId');

/**
 * Many nodes on NATS JetStream: the event bus on one stream, configuration in a KV bucket, rate
 * limits counted in a KV bucket. Absent = one process, no NATS. https://docs.nats.io/nats-concepts/jetstream
 */
export const ClusterConfig = t.exact(
  t.intersection([
    t.type({
      /** NATS server URL(s), comma-separated, e.g. `nats://127.0.0.1:4222`. */
      nats_url: t.string,
      /** This node's name, unique in the cluster. */
      node_id: NodeId,
    }),
    t.partial({
      /** Name prefix of the JetStream stream and KV buckets (default `tributary`). */
      name: NodeId,
      /** How long start-up waits for NATS before refusing to start, ms (default 5000). */
      connect_timeout_ms: PositiveInt,
      /** Events held while NATS is unreachable; beyond it the oldest are dropped and reported (default 10000). */
      max_buffered_events: PositiveInt,
      /** Events the stream keeps (default: events.max_stored). */
      stream_max_msgs: PositiveInt,
      /**
       * Keys sealing `Mcp-Session-Id`s (base64 of 32 random bytes each; the first seals, all open:
       * rotation with an overlap window). Env `TRIBUTARY_SESSION_KEYS` (comma-separated) wins.
       * Absent: one key created in the configuration bucket and shared by every node.
       */
      session_keys: t.array(t.string),
      /** A sealed session id older than this no longer opens, ms (default 24 h). */
      session_max_age_ms: PositiveInt,
      /**
       * Share of a rate limit the nodes may under-admit so that they ask NATS once per block of
       * requests, not per request (default 0.1; 0 = exact counting, one KV round trip per request).
       */
      rate_limit_slack: t.number,
    }),
  ]),
);

export const LogLevel = t.keyof({ debug: null, info: null, warn: null, error: null, silent: null });
export type LogLevel = t.TypeOf<typeof LogLevel>;

export const GatewayConfigFile = t.exact(
  t.partial({
    server: ServerConfig,
    data_dir: t.string,
    log_level: LogLevel,
    mcp_clients: t.array(McpClientConfig),
    tool_log: ToolLogConfig,
    store: StoreConfig,
    events: EventsConfig,
    auth: AuthConfig,
    webhooks: WebhooksConfig,
    tracing: TracingConfig,
    orchestration: OrchestrationConfig,
    workspaces: WorkspacesConfig,
    model_providers: ModelProvidersConfig,
    embeddings: EmbeddingsConfig,
    responses: ResponsesConfig,
    tool_modes: ToolModesConfig,
    ui: UiConfig,
    /** The gateway as an OAuth client of upstream MCP servers. */
    oauth: UpstreamOAuthConfig,
    cluster: ClusterConfig,
  }),
);
export type GatewayConfigFile = t.TypeOf<typeof GatewayConfigFile>;

/** The resolved configuration: every default filled in. */
export interface GatewayConfig {
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly allowed_origins: readonly string[];
    readonly allowed_hosts: readonly string[] | undefined;
    readonly max_body_bytes: number;
    readonly concurrency: number;
    readonly max_queued: number;
    readonly shutdown_timeout_ms: number;
    readonly session_idle_timeout_ms: number;
    readonly max_sessions: number;
    readonly page_size: number;
    readonly sse_keepalive_ms: number;
    readonly ready_timeout_ms: number;
  };
  readonly data_dir: string;
  readonly log_level: LogLevel;
  readonly mcp_clients: readonly McpClientConfig[];
  readonly tool_log: {
    readonly max_entries: number;
    readonly max_age_ms: number;
    readonly max_payload_bytes: number;
    readonly sweep_interval_ms: number;
  };
  readonly store: { readonly batch_window_ms: number; readonly max_batch: number };
  readonly events: {
    readonly max_queued: number;
    readonly max_stored: number;
    readonly max_replay: number;
    readonly ping_interval_ms: number;
    readonly idle_timeout_s: number;
  };
  readonly auth: ResolvedAuthConfig;
  readonly webhooks: { readonly github_secret: string | undefined; readonly max_remembered_deliveries: number };
  /** `otlp_endpoint` undefined = tracing off. */
  readonly tracing: { readonly otlp_endpoint: string | undefined; readonly sample_ratio: number; readonly capture_payloads: boolean; readonly service_name: string; readonly active_context: boolean };
  readonly orchestration: {
    readonly strategy: 'least_loaded' | 'round_robin';
    readonly heartbeat_timeout_ms: number;
    readonly max_queued_tasks: number;
    readonly max_attempts: number;
    readonly max_tasks_per_agent: number;
    readonly finished_task_retention_ms: number;
  };
  readonly workspaces: { readonly lock_ttl_ms: number; readonly cursor_audit_ms: number; readonly max_document_bytes: number; readonly max_members: number };
  readonly model_providers: {
    readonly providers: readonly ModelProviderConfig[];
    /** The AES-256-GCM key (base64), from the file or env; `undefined` = key file in data_dir. */
    readonly encryption_key: string | undefined;
    readonly default_provider: string | undefined;
  };
  readonly embeddings: { readonly max_vectors_per_tenant: number; readonly max_search_limit: number; readonly max_text_chars: number; readonly max_batch: number };
  readonly responses: { readonly max_tool_rounds: number; readonly max_in_flight: number; readonly max_tools: number; readonly max_remembered: number };
  readonly tool_modes: ResolvedToolModes;
  readonly ui: { readonly enabled: boolean; readonly session_idle_s: number; readonly session_max_s: number };
  /** Upstream OAuth (redirect base URL, token sealing key, refresh skew). */
  readonly oauth: UpstreamOAuthSettings;
  /** `undefined` = one process, no NATS. */
  readonly cluster: ResolvedClusterConfig | undefined;
}

/** The `cluster` section with defaults filled in. */
export interface ResolvedClusterConfig {
  readonly nats_url: string;
  readonly node_id: string;
  readonly name: string;
  readonly connect_timeout_ms: number;
  readonly max_buffered_events: number;
  readonly stream_max_msgs: number;
  /** Base64 session keys, first seals; empty = the key kept in the configuration bucket. */
  readonly session_keys: readonly string[];
  readonly session_max_age_ms: number;
  /** 0 ≤ slack < 1; 0 = exact. */
  readonly rate_limit_slack: number;
}

/** Limits of one code-mode run, every default filled in (see {@link SandboxConfig}). */
export interface SandboxLimits {
  readonly wall_ms: number;
  readonly cpu_ms: number;
  readonly memory_bytes: number;
  readonly stack_bytes: number;
  readonly max_tool_calls: number;
  readonly max_concurrent_tool_calls: number;
  readonly max_output_bytes: number;
  readonly max_code_bytes: number;
  readonly max_concurrent_runs: number;
}

/** The `tool_modes` section with defaults filled in. */
export interface ResolvedToolModes {
  readonly default: 'full' | 'search' | 'code';
  readonly clients: Readonly<Record<string, 'full' | 'search' | 'code'>>;
  readonly max_search_results: number;
  readonly sandbox: SandboxLimits;
}

/** Default sandbox limits. */
export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = {
  wall_ms: 30_000,
  cpu_ms: 2_000,
  memory_bytes: 64 * 1024 * 1024,
  stack_bytes: 64 * 1024,
  max_tool_calls: 50,
  max_concurrent_tool_calls: 8,
  max_output_bytes: 256 * 1024,
  max_code_bytes: 64 * 1024,
  max_concurrent_runs: 4,
};

/** Access control with defaults filled in; secrets from the environment already merged. */
export interface ResolvedAuthConfig {
  readonly enabled: boolean;
  /** Why auth is on or off (for the start-up log). */
  readonly reason: string;
  readonly admin: { readonly username: string; readonly password_hash?: string; readonly password?: string } | undefined;
  /** The verifier settings without its cache size (see `src/auth/jwt.ts`). */
  readonly jwt: Omit<JwtSettings, 'cache_max'> | undefined;
  /** The downstream OAuth resource server; `undefined` = off. */
  readonly oauth?: OAuthResourceSettings | undefined;
  readonly rate_limits: { readonly requests_per_hour: number; readonly burst_per_minute: number; readonly tool_executions_per_hour: number };
  readonly metrics_require_auth: boolean;
  readonly max_login_failures: number;
  readonly login_failure_window_s: number;
}

/** Verifier settings (the `auth.jwt` config block). */
export interface JwtSettings {
  /** HS256 shared secret (UTF-8), at least 32 bytes (RFC 7518 §3.2: key ≥ hash output size); optional. */
  readonly hs256_secret?: string;
  /** Path of a JWKS JSON file (`{"keys":[...]}`, RFC 7517 §5) with RS256 / ES256 public keys; optional. */
  readonly jwks_file?: string;
  /** When set, `iss` must equal it. */
  readonly issuer?: string;
  /** When set, `aud` (a string or an array of strings) must contain it. */
  readonly audience?: string;
  /** Leeway for `exp`/`nbf`, seconds (≥ 0). */
  readonly clock_tolerance_s: number;
  /** Claim naming the tenant, e.g. `tenant_id`; missing → `default`. */
  readonly tenant_claim: string;
  /** Claim naming the role; the value `admin` → role `admin`, anything else or missing → `user`. */
  readonly role_claim: string;
  /** Verified tokens remembered (oldest insertion evicted first), e.g. 10000; 0 disables the cache. */
  readonly cache_max: number;
}
