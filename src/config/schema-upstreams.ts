/**
 * Upstream MCP client codecs (`mcp_clients[]`): connection, stdio, tool filters, resilience.
 * Field names follow the Bifrost MCP client schema
 * (https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml).
 */
import * as t from 'io-ts';
import { ClientOAuthConfig } from './oauth.js';
import { ClientName, EnvEntry, NonNegativeInt, PositiveInt } from './schema-primitives.js';

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
