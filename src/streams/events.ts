/**
 * The domain event bus: one `GatewayEvent` tagged union, published once, read by every subscriber.
 * Domain code publishes and never knows who listens. Event names and fields follow
 * MCP Hangar's domain events (https://mcp-hangar.io/docs/guides/WEBSOCKETS).
 *
 * This module holds the union members the gateway core publishes today; the event-stream issue
 * adds subscribers (WebSocket feeds, durable log, metrics).
 */
import { Subject, type Observable } from 'rxjs';

export type UpstreamState = 'connected' | 'disconnected' | 'error';

/** Circuit breaker states (closed → open → half_open → closed). */
export type CircuitState = 'closed' | 'open' | 'half_open';

interface EventBase {
  /**
   * Sequence number: increasing, never reused (a restart continues above every number the
   * previous run could have used); consecutive within one run.
   */
  readonly seq: number;
  /** ISO-8601 UTC. */
  readonly timestamp: string;
}

/** Fields shared by the tool invocation events. `arguments` and `result` are the live objects (not copies). */
export interface ToolCallFields {
  mcp_server_id: string;
  /** The upstream's own tool name. */
  tool_name: string;
  /** Unique id of this invocation. */
  call_id: string;
  duration_ms: number;
  /** USD, from the client's `tool_pricing` (0 for failed calls and `isError` results). */
  cost_usd: number;
  /** Which surface called: `mcp`, `rest`, ... */
  surface: string;
  arguments: unknown;
  virtual_key?: string;
  /** The caller's tenant: tenant-scoped feeds deliver the event to that tenant only. */
  tenant_id?: string;
  /** For calls made by code-mode code: the call id of the `execute_code` call that made it. */
  parent_call_id?: string;
  /** OpenTelemetry trace id of the call, when it was traced. */
  trace_id?: string;
}

export type GatewayEventBody =
  | { event_type: 'McpServerStateChanged'; mcp_server_id: string; old_state: UpstreamState; new_state: UpstreamState; error?: string }
  | { event_type: 'McpServerStarted'; mcp_server_id: string; mode: string; tools_count: number; startup_duration_ms: number }
  | { event_type: 'McpServerStopped'; mcp_server_id: string; reason: string }
  | { event_type: 'McpServerDegraded'; mcp_server_id: string; consecutive_failures: number; reason: string }
  | { event_type: 'HealthCheckPassed'; mcp_server_id: string; duration_ms: number; method: 'ping' | 'tools/list' }
  | { event_type: 'HealthCheckFailed'; mcp_server_id: string; duration_ms: number; method: 'ping' | 'tools/list'; consecutive_failures: number; error: string }
  | { event_type: 'CircuitBreakerStateChanged'; mcp_server_id: string; old_state: CircuitState; new_state: CircuitState; retry_at?: string }
  | { event_type: 'ProviderDiscovered' | 'ProviderRegistered' | 'ProviderDeregistered'; mcp_server_id: string; connection_type: string }
  /** Configuration entities changed (Bifrost live feed `store_update` tags, e.g. `mcp_clients`). */
  | { event_type: 'StoreChanged'; tags: string[]; mcp_server_id?: string }
  | ({ event_type: 'ToolInvocationCompleted'; is_error: boolean; result: unknown } & ToolCallFields)
  | ({ event_type: 'ToolInvocationFailed'; error: string } & ToolCallFields)
  | { event_type: 'CatalogueChanged'; mcp_server_id: string; kind: 'tools' | 'resources' | 'prompts'; count: number }
  /** Two upstreams claim one resource URI or URI template: `kept_by` serves it, `mcp_server_id`'s entry is left out. */
  | { event_type: 'ResourceUriConflict'; mcp_server_id: string; kind: 'resource' | 'resource_template'; uri: string; kept_by: string }
  /** REST `/api/v1` entities: one event per creation, change or deletion, scoped to a tenant. */
  | { event_type: EntityEventType; id: string; tenant_id: string; [field: string]: unknown }
  /** Agent orchestration and workspaces over `/ws`, scoped to a tenant. */
  | { event_type: OrchestrationEventType; tenant_id: string; [field: string]: unknown }
  /** A GitHub webhook delivery whose signature checked out (developer-mesh webhooks). */
  /**
   * Cluster mode: events of `node_id` (its own seqs `from_node_seq..to_node_seq`) that never
   * reached the cluster's event stream (`buffer_full`: NATS unreachable for longer than the
   * buffer holds; `store_failed`: the node's own store refused them).
   */
  | { event_type: 'EventsLost'; node_id: string; from_node_seq: number; to_node_seq: number; count: number; reason: 'buffer_full' | 'store_failed' }
  | { event_type: 'GitHubWebhookReceived'; github_event: string; delivery_id: string; repository: string | null; action: string | null };

/** Domain events of agent orchestration and collaborative workspaces. */
export type OrchestrationEventType =
  | 'AgentRegistered'
  | 'AgentStatusChanged'
  | 'AgentOffline'
  | 'TaskAssigned'
  | 'TaskQueued'
  | 'TaskUpdated'
  | 'TaskCompleted'
  | 'TaskFailed'
  | 'WorkspaceMemberJoined'
  | 'WorkspaceMemberLeft'
  | 'DocumentChanged'
  | 'DocumentLocked'
  | 'DocumentUnlocked';

/** Domain events of the REST `/api/v1` entities. */
export type EntityEventType =
  | 'ContextCreated'
  | 'ContextUpdated'
  | 'ContextDeleted'
  | 'AgentCreated'
  | 'AgentUpdated'
  | 'AgentDeleted'
  | 'ModelCreated'
  | 'ModelUpdated'
  | 'ModelDeleted'
  | 'RelationshipCreated'
  | 'RelationshipDeleted'
  | 'ToolActionExecuted';

export type GatewayEvent = GatewayEventBody & EventBase;

/**
 * Stores one event durably, called by {@link EventBus.publish} in seq order before any subscriber
 * sees the event. Calls `settled()` once it is stored, `settled(error)` if it could not be (the
 * recorder reports that itself: the bus only passes the outcome on); exactly once, and never from
 * within this call. A callback rather than a promise: this runs for every tool call, and the
 * promise with its reactions was most of what recording cost besides the write itself.
 */
export type EventRecorder = (event: GatewayEvent, settled: (error?: unknown) => void) => void;

const ignoreOutcome = (): void => undefined;

/** A synchronous, in-process publish/subscribe bus. `events$` is hot: late subscribers miss past events. */
export class EventBus {
  private readonly subject = new Subject<GatewayEvent>();
  private recorder: EventRecorder | undefined;

  /** @param seq the last seq already used (after a restart: above any the previous run could have used). */
  constructor(private seq = 0) {}

  /** The seq of the last published event. */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * In-process subscribers get each event synchronously at publish, before it is stored. Feeds
   * that reach outside the process read the recorder's stream of stored events instead.
   */
  readonly events$: Observable<GatewayEvent> = this.subject.asObservable();

  private stampMs = -1;
  private stamp = '';

  /** Sets (or removes) the recorder every later event is handed to, in seq order. */
  setRecorder(recorder: EventRecorder | undefined): void {
    this.recorder = recorder;
  }

  /**
   * Stamps `seq` and `timestamp` onto `body` (which becomes the event: pass a fresh object), hands
   * it to the recorder, then delivers it to current subscribers. Returns the event.
   */
  publish(body: GatewayEventBody): GatewayEvent {
    return this.emit(body, ignoreOutcome);
  }

  /**
   * {@link publish}, resolving once the recorder has stored the event (at once without a
   * recorder). Never rejects: when storing fails the event is still published and the recorder
   * reports the failure. For acknowledgements that promise a durable record.
   */
  publishRecorded(body: GatewayEventBody): Promise<GatewayEvent> {
    if (this.recorder === undefined) return Promise.resolve(this.emit(body, ignoreOutcome));
    // `emit` stamps `body` in place: it is the event
    const event = body as GatewayEvent;
    return new Promise<GatewayEvent>((resolve) => this.emit(body, () => resolve(event)));
  }

  /**
   * {@link publishRecorded} without a Promise, for the per-call path: `settled` runs once the
   * recorder has stored the event or failed to (it is told nothing either way: the recorder reports
   * failures), or in a microtask when there is no recorder. Returns the event.
   */
  publishRecordedThen(body: GatewayEventBody, settled: () => void): GatewayEvent {
    if (this.recorder === undefined) {
      const event = this.emit(body, ignoreOutcome);
      queueMicrotask(settled);
      return event;
    }
    return this.emit(body, settled);
  }

  /** Stamps `body`, hands it to the recorder (its outcome to `settled`), then to the subscribers. */
  private emit(body: GatewayEventBody, settled: (error?: unknown) => void): GatewayEvent {
    const now = Date.now();
    if (now !== this.stampMs) {
      this.stampMs = now;
      this.stamp = new Date(now).toISOString();
    }
    const event = body as GatewayEvent & { seq: number; timestamp: string };
    event.seq = ++this.seq;
    event.timestamp = this.stamp;
    if (this.recorder !== undefined) {
      try {
        this.recorder(event, settled);
      } catch (err) {
        queueMicrotask(() => settled(err));
      }
    }
    this.subject.next(event);
    return event;
  }

  /** Completes the stream for every subscriber. */
  close(): void {
    this.subject.complete();
  }
}

/** The fields of a tool event that {@link toWire} leaves out (its live payloads). */
export const TOOL_EVENT_PAYLOAD_FIELDS: ReadonlySet<string> = new Set(['arguments', 'result']);

/**
 * The event as sent to subscribers and stored: plain JSON data. Tool events lose their live
 * `arguments` and `result` (the tool log keeps those, size-capped).
 */
export function toWire(e: GatewayEvent): Record<string, unknown> & { seq: number; event_type: string } {
  if (e.event_type === 'ToolInvocationCompleted' || e.event_type === 'ToolInvocationFailed') {
    // a plain copy loop, in the event's own key order: once per tool call, and faster here than
    // an object rest pattern (which takes V8's generic copy-with-exclusions path)
    const fields = e as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key in fields) {
      if (key !== 'arguments' && key !== 'result' && Object.hasOwn(fields, key)) out[key] = fields[key];
    }
    return out as Record<string, unknown> & { seq: number; event_type: string };
  }
  return e as unknown as Record<string, unknown> & { seq: number; event_type: string };
}
