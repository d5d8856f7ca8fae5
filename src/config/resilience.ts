/**
 * Per-client resilience settings with defaults filled in: a pure function of a client record, used
 * by the config checks and at run time by the upstream supervisor, so upstreams do not depend on
 * the config loader (file reading, env overrides).
 */
import type { McpClientConfig, ResilienceSettings } from './schema.js';

/** Defaults of the per-client resilience fields. */
export const RESILIENCE_DEFAULTS: ResilienceSettings = {
  health_check_interval_ms: 10_000,
  health_check_timeout_ms: 5_000,
  max_consecutive_failures: 5,
  reconnect: { initial_ms: 1_000, max_ms: 30_000, max_retries: undefined },
  circuit_breaker: { failure_threshold: 5, open_ms: 30_000, half_open_max_calls: 1 },
  // 64 + 128 stays below the default server.concurrency (256): one upstream cannot take every
  // request slot of the gateway, so calls to the others still get in.
  max_concurrent_calls: 64,
  max_queued_calls: 128,
};

/**
 * A client's resilience settings with the defaults filled in. Clients come from the config file,
 * the store and the management API, so defaults are applied where the settings are used, not in
 * {@link resolveConfig}.
 */
export function resolveResilience(c: McpClientConfig): ResilienceSettings {
  const d = RESILIENCE_DEFAULTS;
  return {
    health_check_interval_ms: c.health_check_interval_ms ?? d.health_check_interval_ms,
    health_check_timeout_ms: c.health_check_timeout_ms ?? d.health_check_timeout_ms,
    max_consecutive_failures: c.max_consecutive_failures ?? d.max_consecutive_failures,
    reconnect: {
      initial_ms: c.reconnect?.initial_ms ?? d.reconnect.initial_ms,
      max_ms: c.reconnect?.max_ms ?? d.reconnect.max_ms,
      max_retries: c.reconnect?.max_retries ?? d.reconnect.max_retries,
    },
    circuit_breaker: {
      failure_threshold: c.circuit_breaker?.failure_threshold ?? d.circuit_breaker.failure_threshold,
      open_ms: c.circuit_breaker?.open_ms ?? d.circuit_breaker.open_ms,
      half_open_max_calls: c.circuit_breaker?.half_open_max_calls ?? d.circuit_breaker.half_open_max_calls,
    },
    max_concurrent_calls: c.max_concurrent_calls ?? d.max_concurrent_calls,
    max_queued_calls: c.max_queued_calls ?? d.max_queued_calls,
  };
}
