/**
 * `/metrics`: Prometheus text exposition (prom-client), names prefixed `tributary_`, checked with
 * `promtool check metrics` in the tests. Tool calls and events are counted from the event bus;
 * HTTP and MCP requests from hooks the server and dispatcher call; upstream state, WebSocket
 * connections, subscriber queues and the store's batch writer are read at scrape time.
 *
 * prom-client's default process metrics are included, except three gauges whose `_total` names
 * fail promtool's lint (`nodejs_active_{handles,requests,resources}_total`; prom-client also exports
 * them without the suffix).
 */
import client from 'prom-client';
import { Observable, type Subscription } from 'rxjs';
import type { EventBus } from '../streams/events.js';
import type { HttpEffect } from '../base/http.js';
import type { UpstreamManager } from '../upstreams/manager.js';
import type { BatchWriterCounters } from '../store/batcher.js';

const PREFIX = 'tributary_';
const STATES = ['connected', 'disconnected', 'error'] as const;
const KNOWN_MCP_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
]);
const ROUTES = ['/mcp', '/health', '/metrics', '/api/mcp/clients', '/api/mcp/client', '/api/mcp-logs', '/api/ws/events', '/api/ws/live', '/v1/mcp/tool/execute', '/ws'];

/** A bounded route label for a request path. */
export function routeLabel(path: string): string {
  for (const r of ROUTES) if (path === r || path.startsWith(r + '/')) return r;
  return 'other';
}

/** Live gauges read at scrape time. */
export interface MetricsSources {
  readonly manager: UpstreamManager;
  readonly wsConnections: () => Record<string, number>;
  readonly queueDepth: () => Record<string, number>;
  readonly eventsDropped: () => number;
  readonly store: () => BatchWriterCounters;
  /** Agent orchestration: agents by status, tasks waiting and assigned. */
  readonly orchestration?: () => { readonly agents: Readonly<Record<string, number>>; readonly queued: number; readonly inFlight: number };
  /** Collaborative workspaces. */
  readonly workspaces?: () => { readonly workspaces: number; readonly members: number; readonly documentWrites: number; readonly presenceSkipped: number };
  /** Refused credentials by reason, and rate-limit refusals by limit name; never credentials. */
  readonly auth?: () => { readonly failures: ReadonlyMap<string, number>; readonly rateLimited: ReadonlyMap<string, number> };
}

/**
 * The children of one labelled metric by label values, in nested Maps (one lookup per label, no
 * string built per observation). Cardinality is that of the label values seen (client, tool, event
 * type and method names: bounded by the catalogue).
 */
class LabelledChildren<C> {
  private readonly root = new Map<string, unknown>();
  constructor(private readonly make: (values: readonly string[]) => C) {}

  get(...values: string[]): C {
    let map = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const v = values[i] as string;
      let next = map.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        map.set(v, next);
      }
      map = next;
    }
    const leaf = values[last] as string;
    let child = map.get(leaf) as C | undefined;
    if (child === undefined) {
      child = this.make(values);
      map.set(leaf, child);
    }
    return child;
  }
}

export class GatewayMetrics {
  readonly registry = new client.Registry();
  private readonly httpRequests: client.Counter<'route' | 'method' | 'status'>;
  private readonly httpDuration: client.Histogram<'route'>;
  private readonly mcpRequests: client.Counter<'method'>;
  private readonly sub: Subscription;
  private readonly httpChildren = new Map<string, client.Counter.Internal>();
  private readonly mcpChildren: LabelledChildren<client.Counter.Internal>;
  private readonly durationChildren = new Map<string, client.Histogram.Internal<'route'>>();

  constructor(bus: EventBus, sources: MetricsSources) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    for (const bad of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(PREFIX + bad);
    }
    this.httpRequests = new client.Counter({ name: `${PREFIX}http_requests_total`, help: 'HTTP requests answered, by route, method and status.', labelNames: ['route', 'method', 'status'], registers });
    this.httpDuration = new client.Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'Time from request to response, by route.',
      labelNames: ['route'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.mcpRequests = new client.Counter({ name: `${PREFIX}mcp_requests_total`, help: 'MCP JSON-RPC requests handled, by method.', labelNames: ['method'], registers });
    const toolCalls = new client.Counter({ name: `${PREFIX}tool_calls_total`, help: 'Tool calls, by client, tool and status.', labelNames: ['client', 'tool', 'status'], registers });
    const toolDuration = new client.Histogram({
      name: `${PREFIX}tool_call_duration_seconds`,
      help: 'Tool call duration, by client and tool.',
      labelNames: ['client', 'tool'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const toolCost = new client.Counter({ name: `${PREFIX}tool_cost_usd_total`, help: 'Cost of tool calls in USD, by client.', labelNames: ['client'], registers });
    const events = new client.Counter({ name: `${PREFIX}events_published_total`, help: 'Domain events published, by type.', labelNames: ['event_type'], registers });
    new client.Gauge({
      name: `${PREFIX}agents`,
      help: 'Agents registered on /ws, by status.',
      labelNames: ['status'],
      registers,
      collect() {
        const o = sources.orchestration?.();
        if (o) for (const [status, n] of Object.entries(o.agents)) this.set({ status }, n);
      },
    });
    new client.Gauge({
      name: `${PREFIX}tasks`,
      help: 'Unfinished agent tasks, by state (queued: waiting for an agent; assigned: held by one).',
      labelNames: ['state'],
      registers,
      collect() {
        const o = sources.orchestration?.();
        if (o) {
          this.set({ state: 'queued' }, o.queued);
          this.set({ state: 'assigned' }, o.inFlight);
        }
      },
    });
    new client.Gauge({
      name: `${PREFIX}workspace_members`,
      help: 'Workspace memberships on /ws (a peer in two workspaces counts twice).',
      registers,
      collect() {
        this.set(sources.workspaces?.().members ?? 0);
      },
    });
    let writesSeen = 0;
    let skippedSeen = 0;
    new client.Counter({
      name: `${PREFIX}workspace_document_writes_total`,
      help: 'Merged workspace document states written to LevelDB.',
      registers,
      collect() {
        const n = sources.workspaces?.().documentWrites ?? 0;
        if (n > writesSeen) this.inc(n - writesSeen);
        writesSeen = n;
      },
    });
    new client.Counter({
      name: `${PREFIX}workspace_presence_skipped_total`,
      help: 'Cursor and selection updates not sent to members with too much unread data.',
      registers,
      collect() {
        const n = sources.workspaces?.().presenceSkipped ?? 0;
        if (n > skippedSeen) this.inc(n - skippedSeen);
        skippedSeen = n;
      },
    });
    const authSeen = new Map<string, number>();
    /** A counter following one of the gate's running totals (label value → count). */
    const followTotals = (name: string, help: string, label: string, pick: () => ReadonlyMap<string, number> | undefined): void => {
      new client.Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          for (const [value, n] of pick() ?? []) {
            const key = `${name}\u0000${value}`;
            const seen = authSeen.get(key) ?? 0;
            if (n > seen) this.inc({ [label]: value }, n - seen);
            authSeen.set(key, n);
          }
        },
      });
    };
    followTotals(`${PREFIX}auth_failures_total`, 'Requests refused by access control, by reason.', 'reason', () => sources.auth?.().failures);
    followTotals(`${PREFIX}rate_limited_total`, 'Requests refused by a rate limit, by limit.', 'limit', () => sources.auth?.().rateLimited);
    let droppedSeen = 0;
    new client.Counter({
      name: `${PREFIX}events_dropped_total`,
      help: 'Event seqs /api/ws/events subscribers skipped because a catch-up passed events.max_replay.',
      registers,
      collect() {
        const now = sources.eventsDropped();
        if (now > droppedSeen) this.inc(now - droppedSeen);
        droppedSeen = now;
      },
    });
    new client.Gauge({
      name: `${PREFIX}upstream_state`,
      help: 'Upstream connection state (1 for the current state).',
      labelNames: ['client', 'state'],
      registers,
      collect() {
        this.reset();
        for (const u of sources.manager.list()) for (const s of STATES) this.set({ client: u.name, state: s }, u.state === s ? 1 : 0);
      },
    });
    new client.Gauge({
      name: `${PREFIX}websocket_connections`,
      help: 'Open WebSocket connections, by endpoint.',
      labelNames: ['endpoint'],
      registers,
      collect() {
        this.reset();
        for (const [endpoint, n] of Object.entries(sources.wsConnections())) this.set({ endpoint }, n);
      },
    });
    new client.Gauge({
      name: `${PREFIX}subscriber_queue_depth`,
      help: 'Messages waiting in subscriber queues, by endpoint.',
      labelNames: ['endpoint'],
      registers,
      collect() {
        this.reset();
        for (const [endpoint, n] of Object.entries(sources.queueDepth())) this.set({ endpoint }, n);
      },
    });
    let batchesSeen = 0;
    let opsSeen = 0;
    new client.Counter({
      name: `${PREFIX}store_batches_total`,
      help: 'LevelDB batches committed by the batching writer.',
      registers,
      collect() {
        const c = sources.store();
        if (c.batches > batchesSeen) this.inc(c.batches - batchesSeen);
        batchesSeen = c.batches;
      },
    });
    new client.Counter({
      name: `${PREFIX}store_batch_ops_total`,
      help: 'Operations committed in LevelDB batches.',
      registers,
      collect() {
        const c = sources.store();
        if (c.ops > opsSeen) this.inc(c.ops - opsSeen);
        opsSeen = c.ops;
      },
    });
    let failedSeen = 0;
    new client.Counter({
      name: `${PREFIX}store_failed_batches_total`,
      help: 'LevelDB batches of the batching writer that failed (their writes were rejected).',
      registers,
      collect() {
        const c = sources.store();
        if (c.failedBatches > failedSeen) this.inc(c.failedBatches - failedSeen);
        failedSeen = c.failedBatches;
      },
    });
    new client.Gauge({
      name: `${PREFIX}store_last_batch_size`,
      help: 'Operations in the last committed batch.',
      registers,
      collect() {
        this.set(sources.store().lastBatchSize);
      },
    });
    new client.Gauge({
      name: `${PREFIX}store_last_batch_duration_seconds`,
      help: 'Commit time of the last batch.',
      registers,
      collect() {
        this.set(sources.store().lastBatchMs / 1000);
      },
    });
    // labelled children are resolved once per label combination (prom-client hashes the label
    // object on every inc/observe otherwise: several µs per tool call on the hot path)
    const eventChildren = new LabelledChildren((v) => events.labels(...v));
    const callChildren = new LabelledChildren((v) => toolCalls.labels(...v));
    const durationChildren = new LabelledChildren((v) => toolDuration.labels(...v));
    this.sub = bus.events$.subscribe((e) => {
      eventChildren.get(e.event_type).inc();
      if (e.event_type === 'ToolInvocationCompleted' || e.event_type === 'ToolInvocationFailed') {
        const status = e.event_type === 'ToolInvocationFailed' ? 'failed' : e.is_error ? 'error' : 'success';
        callChildren.get(e.mcp_server_id, e.tool_name, status).inc();
        durationChildren.get(e.mcp_server_id, e.tool_name).observe(e.duration_ms / 1000);
        if (e.cost_usd > 0) toolCost.inc({ client: e.mcp_server_id }, e.cost_usd);
      }
    });
    this.mcpChildren = new LabelledChildren((v) => this.mcpRequests.labels(...v));
  }

  /** Counts one HTTP response (called by the server's sink). */
  observeHttp(path: string, method: string, status: number, seconds: number): void {
    const route = routeLabel(path);
    const key = `${route} ${method} ${status}`;
    let child = this.httpChildren.get(key);
    if (!child) {
      child = this.httpRequests.labels({ route, method, status: String(status) });
      this.httpChildren.set(key, child);
    }
    child.inc();
    let hist = this.durationChildren.get(route);
    if (!hist) {
      hist = this.httpDuration.labels({ route });
      this.durationChildren.set(route, hist);
    }
    hist.observe(seconds);
  }

  /** Counts one MCP request by method (unknown methods are counted as `other`). */
  observeMcp(method: string): void {
    this.mcpChildren.get(KNOWN_MCP_METHODS.has(method) ? method : 'other').inc();
  }

  /** The `/metrics` reply. */
  handle(): Observable<HttpEffect> {
    return new Observable<HttpEffect>((sub) => {
      this.registry
        .metrics()
        .then((text) => {
          sub.next({ kind: 'reply', status: 200, headers: [['Content-Type', this.registry.contentType]], body: text });
          sub.complete();
        })
        .catch((err: unknown) => sub.error(err));
    });
  }

  dispose(): void {
    this.sub.unsubscribe();
    this.registry.clear();
  }
}
