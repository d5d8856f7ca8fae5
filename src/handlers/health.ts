/**
 * `/health` (developer-mesh): `{"status":"healthy"|"degraded"|"unhealthy","components":{...}}`,
 * HTTP 200 unless unhealthy (503). Healthy: every upstream connected. Degraded: some are not.
 * Unhealthy: upstreams are configured and none is connected, or the gateway is shutting down.
 * Model providers are listed under `model_providers`; one whose circuit is not closed (or whose
 * last calls failed) makes a healthy gateway degraded.
 */
import type { UpstreamManager } from '../upstreams/manager.js';
import { jsonReply, type HttpEffect } from '../streams/http.js';

export interface HealthSources {
  readonly manager: UpstreamManager;
  readonly sessions: () => number;
  readonly draining: () => boolean;
  /** Model providers' health by name (`status` healthy/degraded/unhealthy); one not healthy makes the gateway degraded. */
  readonly providers?: () => Record<string, Record<string, unknown>>;
}

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/** Builds the health body and its HTTP status. */
export function healthReport(src: HealthSources): { status: number; body: { status: HealthStatus; components: Record<string, unknown> } } {
  const upstreams: Record<string, string> = {};
  let connected = 0;
  const all = src.manager.list();
  for (const u of all) {
    upstreams[u.name] = u.state;
    if (u.state === 'connected') connected++;
  }
  let status: HealthStatus = 'healthy';
  if (src.draining() || (all.length > 0 && connected === 0)) status = 'unhealthy';
  else if (connected < all.length) status = 'degraded';
  const providers = src.providers?.();
  if (status === 'healthy' && providers && Object.values(providers).some((p) => p['status'] !== 'healthy')) status = 'degraded';
  return {
    status: status === 'unhealthy' ? 503 : 200,
    body: {
      status,
      components: {
        upstreams,
        sessions: { open: src.sessions() },
        server: { status: src.draining() ? 'draining' : 'serving' },
        ...(providers ? { model_providers: providers } : {}),
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
