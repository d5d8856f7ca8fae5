/**
 * One gateway node's link to the cluster: a NATS connection with JetStream, the event stream, the
 * configuration and rate-limit KV buckets, and membership (a KV bucket whose entries expire: each
 * node refreshes its own entry, so the live keys are the live nodes).
 *
 * Loaded only when `cluster` is configured (the gateway imports this module lazily), so a single
 * process never loads the NATS client. https://docs.nats.io/nats-concepts/jetstream
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { ResolvedClusterConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

/** NATS link state, as `/health` reports it. */
export type NatsState = 'connected' | 'reconnecting' | 'disconnected' | 'closed';

/** How often a node refreshes its membership entry, ms. */
export const HEARTBEAT_MS = 3_000;
/** A node whose entry was not refreshed for this long is no longer a member, ms. */
export const MEMBER_TTL_MS = 10_000;

/** Thrown when the node cannot join: NATS unreachable, JetStream off, stream or bucket refused. */
export class ClusterStartError extends Error {}

const NANOS_PER_MS = 1_000_000;

export class ClusterNode {
  #state: NatsState = 'connected';
  #reconnects = 0;
  #members: string[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #listeners = new Set<(state: NatsState) => void>();

  private constructor(
    readonly config: ResolvedClusterConfig,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    /** Configuration entries (see config-sync). */
    readonly configKv: KV,
    /** Rate-limit counters (see rate-limit). */
    readonly limitsKv: KV,
    private readonly nodesKv: KV,
    private readonly log: Logger,
  ) {}

  /** The JetStream stream holding every node's domain events. */
  get streamName(): string {
    return `${this.config.name}_events`;
  }

  /** The subject this node publishes its events on (`<name>.events.<node_id>`). */
  get eventSubject(): string {
    return `${this.config.name}.events.${this.config.node_id}`;
  }

  get state(): NatsState {
    return this.#state;
  }

  /** Times the connection came back after a loss. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Node ids seen alive at the last heartbeat (this node included), sorted. */
  get members(): readonly string[] {
    return this.#members;
  }

  /** Calls `fn` on every state change; returns the function that stops it. */
  onState(fn: (state: NatsState) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Connects to NATS, makes sure the event stream and the KV buckets exist, and announces this
   * node. Reconnects forever afterwards (the client buffers what is published meanwhile).
   * @throws ClusterStartError naming the URL and the cause when NATS is unreachable within
   *   `connect_timeout_ms`, has no JetStream, or refuses the stream or a bucket.
   */
  static async connect(config: ResolvedClusterConfig, log: Logger): Promise<ClusterNode> {
    const servers = config.nats_url.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers,
        name: `tributary-${config.node_id}`,
        timeout: config.connect_timeout_ms,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 5_000,
        maxPingOut: 2,
        // no stack captured per request (every JetStream publish is one): much cheaper publishes;
        // errors still say what failed (https://github.com/nats-io/nats.js/blob/main/core/README.md#connection-options)
        noAsyncTraces: true,
      });
    } catch (err) {
      throw new ClusterStartError(
        `cluster: cannot reach NATS at ${config.nats_url} within ${config.connect_timeout_ms} ms (${errorText(err)}); a cluster node does not start alone — start NATS with JetStream (nats-server -js) or remove the cluster section`,
      );
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: config.connect_timeout_ms });
      const js = jetstream(nc, { timeout: config.connect_timeout_ms });
      await ensureStream(jsm, `${config.name}_events`, [`${config.name}.events.>`], config.stream_max_msgs);
      const kvm = new Kvm(js);
      const configKv = await kvm.create(`${config.name}_config`, { history: 1 });
      const limitsKv = await kvm.create(`${config.name}_limits`, { history: 1, ttl: 3_600_000 + 60_000 });
      const nodesKv = await kvm.create(`${config.name}_nodes`, { history: 1, ttl: MEMBER_TTL_MS });
      const node = new ClusterNode(config, nc, js, jsm, configKv, limitsKv, nodesKv, log);
      await node.#beat();
      node.#start();
      return node;
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw new ClusterStartError(`cluster: NATS at ${config.nats_url} is reachable but JetStream set-up failed (${errorText(err)}); is JetStream enabled (nats-server -js)?`);
    }
  }

  #start(): void {
    this.#heartbeat = setInterval(() => {
      this.#beat().catch((err: unknown) => this.log.debug('cluster heartbeat failed', { error: err }));
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect') this.#set('disconnected');
        else if (s.type === 'reconnecting') this.#set('reconnecting');
        else if (s.type === 'reconnect') {
          this.#reconnects++;
          this.#set('connected');
          this.#beat().catch(() => undefined);
        } else if (s.type === 'close') this.#set('closed');
      }
    })().catch(() => undefined);
  }

  #set(state: NatsState): void {
    if (this.#state === state) return;
    const was = this.#state;
    this.#state = state;
    if (state === 'connected') this.log.info('NATS connection restored', { was, reconnects: this.#reconnects });
    else if (!this.#closed) this.log.warn('NATS connection lost', { state });
    for (const fn of this.#listeners) fn(state);
  }

  async #beat(): Promise<void> {
    if (this.#closed) return;
    await this.nodesKv.put(this.config.node_id, JSON.stringify({ node_id: this.config.node_id, at: new Date().toISOString() }));
    const keys: string[] = [];
    for await (const k of await this.nodesKv.keys()) keys.push(k);
    this.#members = keys.sort();
  }

  /** The `/health` component: NATS state, server, message counts, members. */
  health(): Record<string, unknown> {
    return {
      node_id: this.config.node_id,
      nats: { state: this.#state, server: this.nc.getServer(), reconnects: this.#reconnects, ...natsStats(this.nc) },
      members: this.#members,
    };
  }

  /** Leaves the cluster (removes the membership entry) and closes the connection after flushing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#heartbeat);
    if (this.#state === 'connected') await this.nodesKv.delete(this.config.node_id).catch(() => undefined);
    this.#closed = true;
    await this.nc.drain().catch(() => this.nc.close());
  }
}

/** Creates the event stream, or updates its message limit when it exists. */
async function ensureStream(jsm: JetStreamManager, name: string, subjects: string[], maxMsgs: number): Promise<void> {
  let exists = true;
  try {
    const info = await jsm.streams.info(name);
    if (info.config.max_msgs === maxMsgs) return;
  } catch (err) {
    if (!/not found/i.test(errorText(err))) throw err;
    exists = false;
  }
  const cfg = { name, subjects, max_msgs: maxMsgs, storage: StorageType.File, duplicate_window: 120_000 * NANOS_PER_MS };
  if (exists) await jsm.streams.update(name, { max_msgs: maxMsgs });
  else await jsm.streams.add(cfg);
}

/** The connection's message and byte counts (https://docs.nats.io/using-nats/developer/connecting/stats). */
function natsStats(nc: NatsConnection): Record<string, number> {
  const st = nc.stats();
  return { in_msgs: st.inMsgs, out_msgs: st.outMsgs, in_bytes: st.inBytes, out_bytes: st.outBytes };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
