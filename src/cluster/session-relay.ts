/**
 * MCP sessions any node can serve: the key that seals `Mcp-Session-Id`s (from configuration, or one
 * key kept in the configuration bucket) and the routing of a session's messages between nodes on
 * NATS core subjects (https://docs.nats.io/nats-concepts/core-nats/pubsub):
 *
 * - `<name>.sessions.stream.<digest>` — server→client messages for the session whose id hashes to
 *   `<digest>`; the node holding the session's standalone stream (GET /mcp) subscribes while it is open.
 * - `<name>.sessions.client` — client messages (responses to relayed requests, cancels, progress)
 *   that reached a node which does not hold what they are about; every node subscribes, the one
 *   holding it handles it.
 * - `<name>.sessions.revoked` — a session ended by DELETE on one node; every node refuses its id.
 *
 * Core NATS is at-most-once: a message published while no node holds the stream, or while NATS is
 * away, is lost (a relayed request then times out; see the README's limits).
 */
import { createHash } from 'node:crypto';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log/logger.js';
import type { McpSession, SessionRelay, SessionStore } from '../handlers/mcp/session.js';
import { SessionSealer } from '../handlers/mcp/sealed-session.js';
import type { ClusterNode } from './node.js';

/** Configuration-bucket entry holding the shared session key when none is configured. */
export const SESSION_KEY_ENTRY = 'sessions.key';

interface Envelope {
  /** Node that published it (a node skips its own broadcasts). */
  readonly from: string;
  readonly sid: string;
  readonly msg?: object;
}

/**
 * The session sealer of a node: the configured keys, or else the one key in the configuration
 * bucket (created by the first node, read by the others — `kv.create` fails when it exists).
 */
export async function clusterSessionSealer(node: ClusterNode): Promise<SessionSealer> {
  const { session_keys: keys, session_max_age_ms: maxAge } = node.config;
  if (keys.length > 0) return SessionSealer.fromBase64(keys, maxAge);
  const kv = node.configKv;
  try {
    await kv.create(SESSION_KEY_ENTRY, JSON.stringify({ key: SessionSealer.generateKey(), created_at: new Date().toISOString() }));
  } catch {
    // another node created it first
  }
  const entry = await kv.get(SESSION_KEY_ENTRY);
  const key = entry === null ? undefined : (entry.json<{ key?: unknown }>().key as string | undefined);
  if (typeof key !== 'string') throw new Error(`cluster: the configuration bucket's "${SESSION_KEY_ENTRY}" entry holds no session key`);
  return SessionSealer.fromBase64([key], maxAge);
}

export class NatsSessionRelay implements SessionRelay {
  readonly requestIdPrefix: string;
  readonly #subs: Subscription[] = [];
  #routed = 0;
  #delivered = 0;

  /**
   * @param onClientMessage handles a client message another node could not place (the `/mcp`
   *   handler's `deliverRouted`).
   */
  constructor(
    private readonly node: ClusterNode,
    private readonly sessions: SessionStore,
    private readonly onClientMessage: (sessionId: string, message: unknown) => void,
    private readonly log: Logger,
  ) {
    this.requestIdPrefix = `${node.config.node_id}-`;
    const name = node.config.name;
    this.#subs.push(
      node.nc.subscribe(`${name}.sessions.client`, { callback: (err, m) => this.#onClient(err, m) }),
      node.nc.subscribe(`${name}.sessions.revoked`, { callback: (err, m) => this.#onRevoked(err, m) }),
    );
  }

  /** Messages this node sent to another node's stream / delivered from another node. */
  get stats(): { routed: number; delivered: number } {
    return { routed: this.#routed, delivered: this.#delivered };
  }

  #subject(sessionId: string): string {
    return `${this.node.config.name}.sessions.stream.${createHash('sha256').update(sessionId).digest('base64url').slice(0, 27)}`;
  }

  #publish(subject: string, sid: string, msg?: object): void {
    const env: Envelope = { from: this.node.config.node_id, sid, ...(msg !== undefined ? { msg } : {}) };
    try {
      this.node.nc.publish(subject, JSON.stringify(env));
    } catch (err) {
      // closed connection: the message is lost, as core NATS would lose it
      this.log.warn('session message not routed', { subject, error: err });
    }
  }

  #decode(err: Error | null, m: Msg): Envelope | undefined {
    if (err !== null) {
      this.log.warn('session subscription failed', { error: err });
      return undefined;
    }
    try {
      const env = m.json<Envelope>();
      return typeof env.sid === 'string' && typeof env.from === 'string' ? env : undefined;
    } catch {
      return undefined;
    }
  }

  toStream(sessionId: string, message: object): void {
    this.#routed++;
    this.#publish(this.#subject(sessionId), sessionId, message);
  }

  holdStream(session: McpSession): () => void {
    const sub = this.node.nc.subscribe(this.#subject(session.id), {
      callback: (err, m) => {
        const env = this.#decode(err, m);
        if (env?.sid !== session.id || env.msg === undefined) return;
        this.#delivered++;
        session.standalone?.send(env.msg);
      },
    });
    return () => sub.unsubscribe();
  }

  fromClient(sessionId: string, message: object): void {
    this.#routed++;
    this.#publish(`${this.node.config.name}.sessions.client`, sessionId, message);
  }

  revoke(sessionId: string): void {
    this.#publish(`${this.node.config.name}.sessions.revoked`, sessionId);
  }

  #onClient(err: Error | null, m: Msg): void {
    const env = this.#decode(err, m);
    if (env === undefined || env.from === this.node.config.node_id || env.msg === undefined) return;
    this.#delivered++;
    this.onClientMessage(env.sid, env.msg);
  }

  #onRevoked(err: Error | null, m: Msg): void {
    const env = this.#decode(err, m);
    if (env === undefined || env.from === this.node.config.node_id) return;
    this.sessions.revoke(env.sid);
  }

  /** Stops the node-wide subscriptions (stream subscriptions end with their streams). */
  close(): void {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.length = 0;
  }
}
