/** Cluster codecs (`cluster`: NATS JetStream bus, configuration and rate-limit buckets, sealed sessions). */
import * as t from 'io-ts';
import { NonNegativeInt, PositiveInt } from './schema-primitives.js';

/** A cluster node's name: letters, digits, `_` and `-` (a NATS subject token), at most 64 characters. */
export interface NodeIdBrand {
  readonly NodeId: unique symbol;
}
export const NodeId = t.brand(t.string, (s): s is t.Branded<string, NodeIdBrand> => /^[A-Za-z0-9_-]{1,64}$/.test(s), 'NodeId');

/**
 * Many nodes on NATS JetStream: the event bus on one stream, configuration in a KV bucket, rate
 * limits counted in a KV bucket. Absent = one process, no NATS. https://docs.nats.io/nats-concepts/jetstream
 */
export const ClusterConfig = t.exact(
  t.intersection([
    t.type({
      /** NATS server URL(s), comma-separated, e.g. `nats://127.0.0.1:4222`. */
      nats_url: t.string,
      /** This node's name, unique in the cluster. */
      node_id: NodeId,
    }),
    t.partial({
      /** Name prefix of the JetStream stream and KV buckets (default `tributary`). */
      name: NodeId,
      /** How long start-up waits for NATS before refusing to start, ms (default 5000). */
      connect_timeout_ms: PositiveInt,
      /** Events held while NATS is unreachable; beyond it the oldest are dropped and reported (default 10000). */
      max_buffered_events: PositiveInt,
      /**
       * How long the oldest unpublished event waits for others to share its stream message, ms
       * (default 10; 0 = the events of one turn of the event loop leave at its end). Longer: fewer
       * JetStream publishes under load, events reach other nodes later.
       */
      event_linger_ms: NonNegativeInt,
      /** Events the stream keeps (default: events.max_stored). */
      stream_max_msgs: PositiveInt,
      /**
       * Keys sealing `Mcp-Session-Id`s (base64 of 32 random bytes each; the first seals, all open:
       * rotation with an overlap window). Env `TRIBUTARY_SESSION_KEYS` (comma-separated) wins.
       * Absent: one key created in the configuration bucket and shared by every node.
       */
      session_keys: t.array(t.string),
      /** A sealed session id older than this no longer opens, ms (default 24 h). */
      session_max_age_ms: PositiveInt,
      /**
       * Share of a rate limit the nodes may under-admit so that they ask NATS once per block of
       * requests, not per request (default 0.1; 0 = exact counting, one KV round trip per request).
       */
      rate_limit_slack: t.number,
    }),
  ]),
);

/** The `cluster` section with defaults filled in. */
export interface ResolvedClusterConfig {
  readonly nats_url: string;
  readonly node_id: string;
  readonly name: string;
  readonly connect_timeout_ms: number;
  readonly max_buffered_events: number;
  /** Publisher linger, ms (0 = none beyond the current turn). */
  readonly event_linger_ms: number;
  readonly stream_max_msgs: number;
  /** Base64 session keys, first seals; empty = the key kept in the configuration bucket. */
  readonly session_keys: readonly string[];
  readonly session_max_age_ms: number;
  /** 0 ≤ slack < 1; 0 = exact. */
  readonly rate_limit_slack: number;
}
