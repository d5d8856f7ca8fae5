/**
 * Gateway configuration codecs (io-ts). The config file is JSON; every field has a default, so
 * `{}` is a valid file. Field names follow the Bifrost MCP client schema
 * (https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml: `connection_type`, `stdio_config`, `tools_to_execute`, ...).
 *
 * This module is the public entry: it holds the whole file codec and the resolved configuration,
 * and re-exports the section codecs, which live in `schema-*.ts` beside it.
 */
import * as t from 'io-ts';
import { UpstreamOAuthConfig, type UpstreamOAuthSettings } from './oauth.js';
import { AuthConfig, type ResolvedAuthConfig } from './schema-auth.js';
import { OrchestrationConfig, WorkspacesConfig } from './schema-agents.js';
import { ClusterConfig, type ResolvedClusterConfig } from './schema-cluster.js';
import { EmbeddingsConfig, ModelProviderConfig, ModelProvidersConfig, ResponsesConfig } from './schema-models.js';
import { EventsConfig, ServerConfig, StoreConfig, ToolLogConfig, TracingConfig, UiConfig, WebhooksConfig } from './schema-server.js';
import { ToolModesConfig, type ResolvedToolModes } from './schema-tool-modes.js';
import { McpClientConfig } from './schema-upstreams.js';

export * from './schema-primitives.js';
export * from './schema-upstreams.js';
export * from './schema-server.js';
export * from './schema-auth.js';
export * from './schema-agents.js';
export * from './schema-models.js';
export * from './schema-tool-modes.js';
export * from './schema-cluster.js';

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
    /** Threads on the port: the main thread and `workers - 1` worker threads (1 = none). */
    readonly workers: number;
    /** Worker threads decide MCP calls themselves (the MCP fast path); false: every request is carried whole. */
    readonly worker_mcp_calls: boolean;
    /** With workers: the main thread takes connections too; false: only while no worker listens. */
    readonly main_thread_listens: boolean;
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
  readonly store: { readonly batch_window_ms: number; readonly max_batch: number; readonly write_buffer_mib: number; readonly max_file_mib: number; readonly compression: boolean };
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
