/**
 * `/health` (developer-mesh): `{"status":"healthy"|"degraded"|"unhealthy","components":{...}}`,
 * HTTP 200 unless unhealthy (503). Healthy: every upstream connected. Degraded: some are not.
 * Unhealthy: upstreams are configured and none is connected, the gateway is still connecting its
 * upstreams at start-up (`server.status: "starting"`), or it is shutting down.
 * `components.upstream_errors` says why each upstream that is down is down, and when it is retried.
 * Model providers are listed under `model_providers`; one whose circuit is not closed (or whose
 * last calls failed) makes a healthy gateway degraded.
 *
 * Probes for load balancers and Kubernetes (see `readiness.ts`): `/health/live` answers 200
 * `{"status":"alive"}` whenever the process serves HTTP (starting and draining included);
 * `/health/ready` answers 503 until the initial catalogue load is over (or its bound passed) and
 * while draining, else 200 — `status: "degraded"` when the load timed out with upstreams still
 * connecting or some upstream is down. Upstream failures do not make a started gateway unready:
 * every node shares its upstreams, and taking them all out of a load balancer helps nobody.
 */
import { GatewayError } from '../base/errors.js';
import { UpstreamPool } from '../upstreams/pool.js';
import type { UpstreamManager } from '../upstreams/manager.js';
import { jsonReply, type HeaderList, type HttpEffect } from '../base/http.js';
import type { Readiness } from './readiness.js';

export interface HealthSources {
  readonly manager: UpstreamManager;
  readonly sessions: () => number;
  readonly draining: () => boolean;
  /** Model providers' health by name (`status` healthy/degraded/unhealthy); one not healthy makes the gateway degraded. */
  readonly providers?: () => Record<string, Record<string, unknown>>;
  /** True while the configured upstreams are still being connected at start-up. */
  readonly starting?: () => boolean;
  /** The initial catalogue load; when set, it decides `starting` and is reported under `components.readiness`. */
  readonly readiness?: Readiness;
  /** Cluster mode: node id, NATS state, members; a node whose NATS link is down is degraded. */
  readonly cluster?: (() => Record<string, unknown>) | undefined;
  /** `server.workers` > 1: the threads on the port and what each carried. */
  readonly workers?: (() => Record<string, unknown>) | undefined;
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
  const pools = all.flatMap((u) => (u instanceof UpstreamPool ? [[u.name, u.view()] as const] : []));
  const readiness = src.readiness?.detail();
  const starting = src.starting?.() === true || (readiness !== undefined && !readiness.ready);
  let status: HealthStatus = 'healthy';
  if (src.draining() || starting || (all.length > 0 && connected === 0)) status = 'unhealthy';
  else if (connected < all.length || readiness?.initial_load === 'timed_out') status = 'degraded';
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
        // each process of a stdio pool (stdio_config.pool_size > 1): state, pid, load, breaker, restarts
        ...(pools.length > 0 ? { upstream_pools: Object.fromEntries(pools) } : {}),
        sessions: { open: src.sessions() },
        server: { status: src.draining() ? 'draining' : starting ? 'starting' : 'serving' },
        ...(readiness ? { readiness } : {}),
        ...(providers ? { model_providers: providers } : {}),
        ...(cluster !== undefined ? { cluster } : {}),
        ...(src.workers ? { workers: src.workers() } : {}),
      },
    },
  };
}

/**
 * The readiness probe's body and HTTP status: 503 `{"status":"starting"|"draining"}` while MCP
 * traffic is not served, else 200 with `status` `ready` or `degraded` (the load timed out, or an
 * upstream is down) and the readiness detail.
 */
export function readyReport(src: HealthSources): { status: number; body: Record<string, unknown> } {
  const readiness = src.readiness?.detail();
  const starting = src.starting?.() === true || (readiness !== undefined && !readiness.ready);
  if (src.draining() || starting) return { status: 503, body: { status: src.draining() ? 'draining' : 'starting', ...(readiness ? { readiness } : {}) } };
  const down = src.manager.list().filter((u) => u.state !== 'connected').map((u) => u.name);
  const degraded = down.length > 0 || readiness?.initial_load === 'timed_out';
  return { status: 200, body: { status: degraded ? 'degraded' : 'ready', ...(readiness ? { readiness } : {}), upstreams_down: down } };
}

const HEALTH_HEADERS: HeaderList = [
  ['Content-Type', 'application/json'],
  ['Cache-Control', 'no-store'],
];

/** The `/health`, `/health/ready` and `/health/live` reply effect (by `path`; other paths under `/health/` get 404). */
export function healthEffect(src: HealthSources, path = '/health'): HttpEffect {
  if (path === '/health/live') return jsonReply(200, { status: 'alive' }, HEALTH_HEADERS);
  if (path === '/health/ready') {
    const r = readyReport(src);
    return jsonReply(r.status, r.body, HEALTH_HEADERS);
  }
  if (path !== '/health' && path !== '/health/') {
    return jsonReply(404, new GatewayError('NOT_FOUND', `No route for GET ${path}`).toRest(), HEALTH_HEADERS);
  }
  const r = healthReport(src);
  return jsonReply(r.status, r.body, HEALTH_HEADERS);
}
