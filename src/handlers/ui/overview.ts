/**
 * `GET /api/ui/overview`: the sample the dashboard's overview polls (every 2 s by default). It
 * reads what the gateway already keeps, so an open dashboard costs one small request per poll
 * and nothing per tool call:
 *
 * - per upstream: connection state, circuit state, tool count, the latest health check (from
 *   `HealthCheckPassed`/`HealthCheckFailed` events, remembered here);
 * - for admins also cumulative counters from the Prometheus registry: calls and errors per
 *   upstream and the `tool_call_duration_seconds` buckets per upstream, HTTP requests and errors,
 *   MCP sessions and WebSocket connections. The browser turns two samples into rates and
 *   per-interval p50/p99 (the `rate()`/`histogram_quantile()` method,
 *   https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile).
 *
 * Callers of role `user` get the upstream states only: call counts and latencies mix every
 * tenant's traffic.
 */
import type { Subscription } from 'rxjs';
import type client from 'prom-client';
import type { EventBus } from '../../streams/events.js';
import type { UpstreamManager } from '../../upstreams/manager.js';
import type { RestReply, RestRequest, RestRouter } from '../rest/router.js';

interface HealthSeen {
  readonly ok: boolean;
  readonly duration_ms: number;
  readonly at: string;
}

export interface OverviewSources {
  readonly bus: EventBus;
  readonly manager: UpstreamManager;
  readonly registry: client.Registry;
  /** Open MCP sessions. */
  readonly sessions: () => number;
  /** Open WebSocket connections by path. */
  readonly wsConnections: () => Record<string, number>;
}

interface UpstreamCounters {
  calls: number;
  errors: number;
  /** Cumulative bucket counts by upper bound (seconds, `+Inf` last). */
  buckets: Map<number, number>;
}

type MetricValue = { value: number; labels: Record<string, string | number>; metricName?: string };

export class UiOverview {
  private readonly health = new Map<string, HealthSeen>();
  private readonly sub: Subscription;

  constructor(private readonly src: OverviewSources) {
    this.sub = src.bus.events$.subscribe((e) => {
      if (e.event_type === 'HealthCheckPassed' || e.event_type === 'HealthCheckFailed') {
        this.health.set(e.mcp_server_id, { ok: e.event_type === 'HealthCheckPassed', duration_ms: e.duration_ms, at: e.timestamp });
      }
    });
  }

  register(router: RestRouter): void {
    router.on('GET', '/api/ui/overview', (r) => this.overview(r), {
      summary: 'A sample for the dashboard overview: upstream states; for admins cumulative call, error and latency-bucket counters',
      tag: 'dashboard',
      access: 'user',
      responses: { 200: { description: '`{sampled_at, upstreams:[{name, connection_type, state, circuit, tool_count, health, calls?, errors?, buckets?}], gateway?}`', schema: { type: 'object', required: ['sampled_at', 'upstreams'] } } },
    });
  }

  async overview(req: RestRequest): Promise<RestReply> {
    const admin = req.input.auth === undefined || req.input.auth.principal.role === 'admin';
    const counters = admin ? await this.counters() : undefined;
    const upstreams = this.src.manager.list().map((u) => {
      const c = counters?.perUpstream.get(u.name);
      return {
        name: u.name,
        connection_type: u.config.connection_type,
        state: u.state,
        circuit: u.breaker.state,
        tool_count: u.catalogue.tools.length,
        health: this.health.get(u.name) ?? null,
        ...(counters ? { calls: c?.calls ?? 0, errors: c?.errors ?? 0, buckets: c ? [...c.buckets].map(([le, count]) => [le, count]) : [] } : {}),
      };
    });
    return {
      status: 200,
      body: {
        sampled_at: Date.now(),
        upstreams,
        ...(counters
          ? {
              gateway: {
                http_requests: counters.httpRequests,
                http_errors: counters.httpErrors,
                mcp_sessions: this.src.sessions(),
                websocket_connections: this.src.wsConnections(),
              },
            }
          : {}),
      },
    };
  }

  private async values(name: string): Promise<MetricValue[]> {
    const m = this.src.registry.getSingleMetric(name);
    if (m === undefined) return [];
    return (await m.get()).values as MetricValue[];
  }

  private async counters(): Promise<{ perUpstream: Map<string, UpstreamCounters>; httpRequests: number; httpErrors: number }> {
    const perUpstream = new Map<string, UpstreamCounters>();
    const of = (client: string): UpstreamCounters => {
      let c = perUpstream.get(client);
      if (!c) {
        c = { calls: 0, errors: 0, buckets: new Map() };
        perUpstream.set(client, c);
      }
      return c;
    };
    for (const v of await this.values('tributary_tool_calls_total')) {
      const c = of(String(v.labels['client']));
      c.calls += v.value;
      if (v.labels['status'] !== 'success') c.errors += v.value;
    }
    for (const v of await this.values('tributary_tool_call_duration_seconds')) {
      if (v.metricName !== 'tributary_tool_call_duration_seconds_bucket') continue;
      const le = v.labels['le'];
      const bound = le === '+Inf' ? Infinity : Number(le);
      const c = of(String(v.labels['client']));
      c.buckets.set(bound, (c.buckets.get(bound) ?? 0) + v.value);
    }
    let httpRequests = 0;
    let httpErrors = 0;
    for (const v of await this.values('tributary_http_requests_total')) {
      httpRequests += v.value;
      if (Number(v.labels['status']) >= 500) httpErrors += v.value;
    }
    for (const c of perUpstream.values()) c.buckets = new Map([...c.buckets].sort((a, b) => a[0] - b[0]));
    return { perUpstream, httpRequests, httpErrors };
  }

  dispose(): void {
    this.sub.unsubscribe();
  }
}
