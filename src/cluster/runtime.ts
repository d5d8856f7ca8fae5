/**
 * Cluster mode of one gateway node, assembled: the NATS link ({@link ClusterNode}), the event
 * stream publisher and feed, and the metrics and health they report. The gateway imports this
 * module only when `cluster` is configured.
 */
import client from 'prom-client';
import type { ResolvedClusterConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { RecordedFeed } from '../handlers/event-recorder.js';
import { ClusterNode } from './node.js';
import { ClusterEventFeed, ClusterEventPublisher } from './event-stream.js';
import { ConfigSync, type ClientReplica, type KeyReplica } from './config-sync.js';
import { RateLimiterNatsKv } from './rate-limit-store.js';
import { RateLimiterNatsLease } from './rate-limit-lease.js';
import type { Limiter } from '../auth/rate-limit.js';
import { NatsSessionRelay, clusterSessionSealer } from './session-relay.js';
import type { SessionStore } from '../handlers/mcp/session.js';

export { ClusterStartError } from './node.js';

export interface ClusterDeps {
  /** The node's own stored events (the local event recorder). */
  readonly recorded: RecordedFeed;
  readonly log: Logger;
}

/** How long a stop waits for buffered events to reach the stream, ms. */
const CLOSE_FLUSH_MS = 3_000;

export class ClusterRuntime {
  #sync: ConfigSync | undefined;
  #sessions: NatsSessionRelay | undefined;

  private constructor(
    readonly node: ClusterNode,
    readonly publisher: ClusterEventPublisher,
    /** Every node's events, for `/api/ws/events`. */
    readonly feed: ClusterEventFeed,
  ) {}

  /**
   * Joins the cluster: connects, opens the event feed (it reads the stream while `/api/ws/events`
   * holds it), then publishes this node's stored events to the stream.
   * @throws ClusterStartError (clear message) when NATS or JetStream is not usable.
   */
  static async start(config: ResolvedClusterConfig, deps: ClusterDeps): Promise<ClusterRuntime> {
    const log = deps.log.child({ component: 'cluster', node_id: config.node_id });
    const node = await ClusterNode.connect(config, log);
    let feed: ClusterEventFeed;
    try {
      // read only while `/api/ws/events` has a connection: a node nobody watches skips the other nodes' events
      feed = await ClusterEventFeed.start(node, log, { onDemand: true });
    } catch (err) {
      await node.close();
      throw err;
    }
    // after NATS comes back, the feed reads on from its last seq with a fresh consumer
    node.onState((state) => {
      if (state === 'connected') feed.resume();
    });
    const publisher = new ClusterEventPublisher(node, config.max_buffered_events, log, { lingerMs: config.event_linger_ms });
    publisher.attach(deps.recorded.items$);
    log.info('joined the cluster', { nats: node.nc.getServer(), stream: node.streamName, members: node.members });
    return new ClusterRuntime(node, publisher, feed);
  }

  /**
   * Shares MCP clients (with pricing and vk_configs) and API/virtual keys (hashes) through the
   * configuration bucket: seeds it, applies its values, then follows its watch.
   * @param notify publishes a `StoreChanged` event with these tags on this node's bus.
   */
  async startConfigSync(clients: ClientReplica, keys: KeyReplica, notify: (tags: string[]) => void, log: Logger): Promise<void> {
    const sync = new ConfigSync(this.node.configKv, clients, keys, notify, log.child({ component: 'cluster-config' }));
    this.#sync = sync;
    await sync.start();
    this.node.onState((state) => {
      if (state === 'connected') sync.resume();
    });
  }

  /**
   * Makes `/mcp` sessions servable by any node: sealed session ids (the configured keys, or the
   * bucket's shared key) and their messages routed between nodes on NATS subjects.
   * @param onClientMessage the `/mcp` handler's `deliverRouted`.
   */
  async shareSessions(sessions: SessionStore, onClientMessage: (sessionId: string, message: unknown) => void, log: Logger): Promise<void> {
    const sealer = await clusterSessionSealer(this.node);
    const relay = new NatsSessionRelay(this.node, sessions, onClientMessage, log.child({ component: 'cluster-sessions' }));
    this.#sessions = relay;
    sessions.useSealing(sealer, relay);
  }

  /**
   * A rate limiter whose counts live in the cluster's limits bucket (for `RateLimits.factory`):
   * leased blocks (`cluster.rate_limit_slack` > 0, the default), or exact per-request counting (0).
   */
  limiter(opts: { keyPrefix: string; points: number; duration: number }): Limiter {
    const slack = this.node.config.rate_limit_slack;
    if (slack <= 0) return new RateLimiterNatsKv({ kv: this.node.limitsKv, ...opts });
    return new RateLimiterNatsLease({ kv: this.node.limitsKv, ...opts, slack, nodes: () => this.node.members.length });
  }

  /** `/health` `components.cluster`. */
  health(): Record<string, unknown> {
    return {
      ...this.node.health(),
      events: {
        published: this.publisher.published,
        messages: this.publisher.messages,
        buffered: this.publisher.buffered,
        lost: this.publisher.lost,
        // the stream is read only while `/api/ws/events` has connections (holds)
        feed: { reading: this.feed.reading, holds: this.feed.holds, starts: this.feed.starts, messages_read: this.feed.messagesRead },
      },
      config: { applied_from_other_nodes: this.#sync?.applied ?? 0 },
      sessions: { shared: this.#sessions !== undefined, ...(this.#sessions?.stats ?? {}) },
    };
  }

  /** True when the NATS link is up (a node without it is degraded). */
  get healthy(): boolean {
    return this.node.state === 'connected';
  }

  /**
   * Adds the cluster metrics to `registry` and labels every metric of it with `node_id`
   * (prom-client default labels: https://github.com/siimon/prom-client#default-labels-segmented-by-registry).
   */
  registerMetrics(registry: client.Registry, prefix: string): void {
    registry.setDefaultLabels({ node_id: this.node.config.node_id });
    const registers = [registry];
    const node = this.node;
    const publisher = this.publisher;
    new client.Gauge({
      name: `${prefix}cluster_nats_connected`,
      help: 'Whether this node is connected to NATS (1) or not (0).',
      registers,
      collect() {
        this.set(node.state === 'connected' ? 1 : 0);
      },
    });
    new client.Gauge({
      name: `${prefix}cluster_members`,
      help: 'Gateway nodes seen alive in the cluster at the last heartbeat.',
      registers,
      collect() {
        this.set(node.members.length);
      },
    });
    new client.Gauge({
      name: `${prefix}cluster_events_buffered`,
      help: 'Events of this node waiting for the event stream to acknowledge them.',
      registers,
      collect() {
        this.set(publisher.buffered);
      },
    });
    const counter = (name: string, help: string, read: () => number): void => {
      let seen = 0;
      new client.Counter({
        name: `${prefix}${name}`,
        help,
        registers,
        collect() {
          const now = read();
          if (now > seen) this.inc(now - seen);
          seen = now;
        },
      });
    };
    counter('cluster_events_published_total', 'Events of this node acknowledged by the event stream.', () => publisher.published);
    counter('cluster_event_messages_total', 'Stream messages of this node acknowledged by the event stream (each carries a batch of events).', () => publisher.messages);
    counter('cluster_events_lost_total', 'Events of this node that never reached the event stream (reported as EventsLost events).', () => publisher.lost);
    counter('cluster_nats_reconnects_total', 'Times the NATS connection came back after a loss.', () => node.reconnects);
  }

  /** Publishes what is buffered (bounded wait), stops the feed, leaves the cluster. */
  async close(): Promise<void> {
    this.#sync?.close();
    this.#sessions?.close();
    await this.publisher.close(CLOSE_FLUSH_MS);
    await this.feed.close();
    await this.node.close();
  }
}
