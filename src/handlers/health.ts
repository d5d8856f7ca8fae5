/**
 * `/health` (developer-mesh): `{"status":"healthy"|"degraded"|"unhealthy","components":{...}}`,
 * HTTP 200 unless unhealthy (503). Healthy: every upstream connected. Degraded: some are not.
 * Unhealthy: upstreams are configured and none is connected, the gateway is still connecting its
 * upstreams at start-up (`server.status: "starting"`), or it is shutting down.
 * `components.upstream_errors` says why each upstream that is down is down, and when it is retried.
 * Model providers are listed under `model_providers`; one whose circuit is not closed (or whose
 * last calls failed) makes a healthy gateway degraded.
 */
import type { UpstreamManager } from '../upstreams/manager.js';
import { jsonReply, type HttpEffect } from '../base/http.js';

export interface HealthSources {
  readonly manager: UpstreamManager;
  readonly sessions: () => number;
  readonly draining: () => boolean;
  /** Model providers' health by name (`status` healthy/degraded/unhealthy); one not healthy makes the gateway degraded. */
  readonly providers?: () => Record<string, Record<string, unknown>>;
  /** True while the configured upstreams are still being connected at start-up. */
  readonly starting?: () => boolean;
  /** Cluster mode: node id, NATS state, members; a node whose NATS link is down is degraded. */
  readonly cluster?: (() => Record<string, unknown>) | undefined;
}

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/** Builds the health body and its HTTP status. */
export function healthReport(src: HealthSources): { status: number; body: { status: HealthStatus; components: Record<string, unknown> } } {
  const upstreams: Record<string, string> = {};
  const upstreamErrors: Record<string, { last_error: string; next_retry_at?: string }> = {};
  let connected = 0;
  const all = src.manager.list();
  for (const u of all) {
    upstreams[u.name] = u.state;
    if (u.state === 'connected') connected++;
    const failure = u.failure;
    if (failure) upstreamErrors[u.name] = failure;
  }
  const starting = src.starting?.() === true;
  let status: HealthStatus = 'healthy';
  if (src.draining() || starting || (all.length > 0 && connected === 0)) status = 'unhealthy';
  else if (connected < all.length) status = 'degraded';
  const providers = src.providers?.();
  if (status === 'healthy' && providers && Object.values(providers).some((p) => p['status'] !== 'healthy')) status = 'degraded';
  const cluster = src.cluster?.();
  if (status === 'healthy' && cluster !== undefined && (cluster['nats'] as { state?: string } | undefined)?.state !== 'connected') status = 'degraded';
  return {
    status: status === 'unhealthy' ? 503 : 200,
    body: {
      status,
      components: {
        upstreams,
        // only upstreams that are down with a known reason: `{name: {last_error, next_retry_at?}}`
        upstream_errors: upstreamErrors,
        sessions: { open: src.sessions() },
        server: { status: src.draining() ? 'draining' : starting ? 'starting' : 'serving' },
        ...(providers ? { model_providers: providers } : {}),
        ...(cluster !== undefined ? { cluster } : {}),
      },
    },
  };
}

/** The `/health` reply effect. */
export function healthEffect(src: HealthSources): HttpEffect {
  const r = healthReport(src);
  return jsonReply(r.status, r.body, [
    ['Content-Type', 'application/json'],
    ['Cache-Control', 'no-store'],
  ]);
}
