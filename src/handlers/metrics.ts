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
import { UpstreamPool, type PoolMemberView } from '../upstreams/pool.js';
import type { UpstreamManager } from '../upstreams/manager.js';
import type { BatchWriterCounters } from '../store/batcher.js';
import { HotCounter, HotHistogram } from './metrics-hot.js';

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

const STATUS_LABELS = new Map<number, string>();
/** `String(status)`, kept per status code so a response builds no string. */
function statusLabel(status: number): string {
  let s = STATUS_LABELS.get(status);
  if (s === undefined) {
    s = String(status);
    if (STATUS_LABELS.size < 1000) STATUS_LABELS.set(status, s);
  }
  return s;
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

export class GatewayMetrics {
  readonly registry = new client.Registry();
  private readonly httpRequests: HotCounter;
  private readonly httpDuration: HotHistogram;
  private readonly mcpRequests: HotCounter;
  private readonly sub: Subscription;

  constructor(bus: EventBus, sources: MetricsSources) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    for (const bad of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(PREFIX + bad);
    }
    // the series updated on every request or call are HotCounter/HotHistogram (metrics-hot.ts):
    // same exposition, without prom-client's per-update label hashing
    this.httpRequests = new HotCounter(`${PREFIX}http_requests_total`, 'HTTP requests answered, by route, method and status.', ['route', 'method', 'status'], registers);
    this.httpDuration = new HotHistogram(
      `${PREFIX}http_request_duration_seconds`,
      'Time from request to response, by route.',
      ['route'],
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    );
    this.mcpRequests = new HotCounter(`${PREFIX}mcp_requests_total`, 'MCP JSON-RPC requests handled, by method.', ['method'], registers);
    const toolCalls = new HotCounter(`${PREFIX}tool_calls_total`, 'Tool calls, by client, tool and status.', ['client', 'tool', 'status'], registers);
    const toolDuration = new HotHistogram(
      `${PREFIX}tool_call_duration_seconds`,
      'Tool call duration, by client and tool.',
      ['client', 'tool'],
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    );
    const toolCost = new HotCounter(`${PREFIX}tool_cost_usd_total`, 'Cost of tool calls in USD, by client.', ['client'], registers);
    const events = new HotCounter(`${PREFIX}events_published_total`, 'Domain events published, by type.', ['event_type'], registers);
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
    // per process of a stdio pool (stdio_config.pool_size > 1); labels go away with the client
    const poolViews = (): [string, PoolMemberView[]][] => sources.manager.list().flatMap((u) => (u instanceof UpstreamPool ? [[u.name, u.view()] as [string, PoolMemberView[]]] : []));
    new client.Gauge({
      name: `${PREFIX}upstream_process_up`,
      help: 'Processes of a stdio upstream pool: 1 while connected, else 0, by client and member.',
      labelNames: ['client', 'member'],
      registers,
      collect() {
        this.reset();
        for (const [name, view] of poolViews()) for (const m of view) this.set({ client: name, member: String(m.member) }, m.state === 'connected' ? 1 : 0);
      },
    });
    new client.Gauge({
      name: `${PREFIX}upstream_process_in_flight`,
      help: 'Calls in flight plus queued on each process of a stdio upstream pool, by client and member.',
      labelNames: ['client', 'member'],
      registers,
      collect() {
        this.reset();
        for (const [name, view] of poolViews()) for (const m of view) this.set({ client: name, member: String(m.member) }, m.in_flight + m.queued);
      },
    });
    new client.Gauge({
      name: `${PREFIX}upstream_process_restarts`,
      help: 'Restarts of each process of a stdio upstream pool since the client was added, by client and member.',
      labelNames: ['client', 'member'],
      registers,
      collect() {
        this.reset();
        for (const [name, view] of poolViews()) for (const m of view) this.set({ client: name, member: String(m.member) }, m.restarts);
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
    let holdsSeen = 0;
    new client.Counter({
      name: `${PREFIX}store_batch_holds_over_1ms_total`,
      help: 'db.batch() calls that held the event loop for more than 1 ms (wall clock, so preemption and garbage collection inside the call count too).',
      registers,
      collect() {
        const c = sources.store();
        if (c.holdsOverLimit > holdsSeen) this.inc(c.holdsOverLimit - holdsSeen);
        holdsSeen = c.holdsOverLimit;
      },
    });
    new client.Gauge({
      name: `${PREFIX}store_max_batch_hold_seconds`,
      help: 'Longest time one db.batch() call has held the event loop since start (building the native batch; the write itself runs on a libuv thread).',
      registers,
      collect() {
        this.set(sources.store().maxHoldMs / 1000);
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
    this.sub = bus.events$.subscribe((e) => {
      events.labels(e.event_type).inc();
      if (e.event_type === 'ToolInvocationCompleted' || e.event_type === 'ToolInvocationFailed') {
        const status = e.event_type === 'ToolInvocationFailed' ? 'failed' : e.is_error ? 'error' : 'success';
        toolCalls.labels(e.mcp_server_id, e.tool_name, status).inc();
        toolDuration.labels(e.mcp_server_id, e.tool_name).observe(e.duration_ms / 1000);
        if (e.cost_usd > 0) toolCost.labels(e.mcp_server_id).inc(e.cost_usd);
      }
    });
  }

  /** Counts one HTTP response (called by the server's sink). */
  observeHttp(path: string, method: string, status: number, seconds: number): void {
    const route = routeLabel(path);
    this.httpRequests.labels(route, method, statusLabel(status)).inc();
    this.httpDuration.labels(route).observe(seconds);
  }

  /** Counts one MCP request by method (unknown methods are counted as `other`). */
  observeMcp(method: string): void {
    this.mcpRequests.labels(KNOWN_MCP_METHODS.has(method) ? method : 'other').inc();
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
