/**
 * The leased cluster rate limiter against a real nats-server: three nodes (three NATS connections)
 * spend one key's limit concurrently. They never admit more than the limit, admit at least
 * `limit × (1 − slack)`, and ask NATS about once per block instead of once per request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { ClusterNode } from '../src/cluster/node.js';
import { RateLimiterNatsLease } from '../src/cluster/rate-limit-lease.js';
import { createLogger } from '../src/log/logger.js';
import type { ResolvedClusterConfig } from '../src/config/schema.js';
import { startNatsServer, type TestNatsServer } from './helpers/nats.js';

let nats: TestNatsServer;
const nodes: ClusterNode[] = [];

function config(nodeId: string): ResolvedClusterConfig {
  return { nats_url: nats.url, node_id: nodeId, name: 'rltest', connect_timeout_ms: 5_000, max_buffered_events: 100, event_linger_ms: 10, stream_max_msgs: 1_000, session_keys: [], session_max_age_ms: 60_000, rate_limit_slack: 0.1 };
}

beforeAll(async () => {
  nats = await startNatsServer();
  for (const id of ['n1', 'n2', 'n3']) nodes.push(await ClusterNode.connect(config(id), createLogger('silent')));
}, 30_000);

afterAll(async () => {
  for (const n of nodes) await n.close();
  await nats?.dispose();
});

async function admitted(limiter: RateLimiterNatsLease, key: string): Promise<boolean> {
  try {
    await limiter.consume(key);
    return true;
  } catch (err) {
    if (err instanceof RateLimiterRes) return false;
    throw err;
  }
}

describe('leased cluster rate limits', () => {
  it('three nodes never admit more than the limit, at least limit × (1 − slack), with one NATS trip per block', async () => {
    const limit = 300;
    const limiters = nodes.map((n) => new RateLimiterNatsLease({ kv: n.limitsKv, keyPrefix: 'burst_per_minute', points: limit, duration: 60, slack: 0.1, nodes: () => 3 }));
    expect(limiters[0]?.block).toBe(10);
    let yes = 0;
    let no = 0;
    // 150 rounds, each sending one request to every node at once: 450 requests for 300 points
    for (let round = 0; round < 150; round++) {
      const r = await Promise.all(limiters.map((l) => admitted(l, 'key-a')));
      for (const ok of r) if (ok) yes++;
      else no++;
    }
    expect(yes).toBeLessThanOrEqual(limit);
    expect(yes).toBeGreaterThanOrEqual(limit * 0.9);
    expect(yes + no).toBe(450);
    const trips = limiters.reduce((n, l) => n + l.trips, 0);
    // exact counting makes one trip per request (450); leasing about one per block of 10 (plus conflicts and the refusals' one lookup per node)
    expect(trips).toBeLessThan(120);
    // a refused key stays refused locally: no more trips
    const before = limiters.map((l) => l.trips);
    for (const l of limiters) expect(await admitted(l, 'key-a')).toBe(false);
    expect(limiters.map((l) => l.trips)).toEqual(before);
  });

  it('a small limit leases one point at a time: exact', async () => {
    const limit = 12;
    const limiters = nodes.map((n) => new RateLimiterNatsLease({ kv: n.limitsKv, keyPrefix: 'burst_per_minute', points: limit, duration: 60, slack: 0.1, nodes: () => 3 }));
    expect(limiters[0]?.block).toBe(1);
    let yes = 0;
    for (let round = 0; round < 8; round++) {
      const r = await Promise.all(limiters.map((l) => admitted(l, 'key-b')));
      yes += r.filter(Boolean).length;
    }
    expect(yes).toBe(limit);
  });

  it('heavy contention (block of 1, 30 requests in flight per node at once) still admits exactly the limit: lost compare-and-set races are retried, never handed to the in-memory fallback', async () => {
    const limit = 30;
    const limiters = nodes.map((n) => new RateLimiterNatsLease({ kv: n.limitsKv, keyPrefix: 'burst_per_minute', points: limit, duration: 60, slack: 0.1, nodes: () => 3 }));
    expect(limiters[0]?.block).toBe(1);
    const r = await Promise.all(limiters.flatMap((l) => Array.from({ length: 30 }, () => admitted(l, 'key-c'))));
    expect(r.filter(Boolean).length).toBe(limit);
  });
});
