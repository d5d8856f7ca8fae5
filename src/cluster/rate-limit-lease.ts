/**
 * A cluster rate limiter that asks NATS once per block of requests instead of once per request:
 * each node leases blocks of points from the key's window entry in the limits bucket (the same
 * `{points, expire_ms}` entry as the exact store, changed by compare-and-set) and spends them
 * locally. A lease never takes more than the window has left, so the nodes together never admit
 * more than the limit; points leased and not spent when the window ends are lost, so they admit at
 * least `limit − (nodes × block)`. The block is `floor(slack × limit / nodes)` (at least 1), so the
 * shortfall is at most `slack` of the limit (default 10 %). A block of 1 is exact counting.
 *
 * Refusals are remembered locally until the window ends (no NATS round trip for a refused key).
 * While NATS is unreachable, an in-memory limiter per node decides (as rate-limiter-flexible's
 * insurance strategy: https://github.com/animir/node-rate-limiter-flexible/wiki/Insurance-Strategy).
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { Limiter } from '../auth/rate-limit.js';

interface Window {
  /** Points taken from the window (by every node). */
  points: number;
  /** When the window ends, epoch ms. */
  expire_ms: number;
}

interface Lease {
  /** End of the window the lease belongs to, epoch ms. */
  windowEnd: number;
  /** Points leased and not spent yet. */
  left: number;
  /** Points the window had left after the last lease (for `remainingPoints`). */
  windowLeft: number;
  /** The window has nothing left: refuse until it ends. */
  exhausted: boolean;
  /** The lease being taken now, shared by the requests waiting for it. */
  pending: Promise<void> | undefined;
}

/** Failed KV round trips (NATS errors, not lost races) per lease before the in-memory limiter decides. */
const MAX_ATTEMPTS = 8;
/**
 * Compare-and-set races lost per lease before it gives up and refuses. A lost race means NATS works
 * and another node took points first: deciding with the in-memory limiter then would admit over
 * the shared limit (it knows nothing of the other nodes), so the lease retries, after a short
 * random pause, and refuses only after this many.
 */
const MAX_RACES = 64;

/** A lease that lost {@link MAX_RACES} races in a row: this request is refused, the window is not marked spent. */
class LeaseContended extends Error {}

/** True for the error of a compare-and-set whose expected revision was not the entry's. */
function lostRace(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}
/** Leases kept at most before ended windows are dropped. */
const SWEEP_ABOVE = 10_000;

export interface LeaseLimiterOptions {
  readonly kv: KV;
  readonly keyPrefix: string;
  /** Allowance per window. */
  readonly points: number;
  /** Window length, seconds. */
  readonly duration: number;
  /** Share of the limit the nodes may under-admit (0 < slack < 1). */
  readonly slack: number;
  /** Live nodes now (the block size divides by it). */
  readonly nodes: () => number;
}

export class RateLimiterNatsLease implements Limiter {
  readonly points: number;
  readonly #opts: LeaseLimiterOptions;
  readonly #leases = new Map<string, Lease>();
  readonly #insurance: RateLimiterMemory;
  /** KV round trips made (leases taken or refused), for tests and benches. */
  trips = 0;

  constructor(opts: LeaseLimiterOptions) {
    this.#opts = opts;
    this.points = opts.points;
    this.#insurance = new RateLimiterMemory({ keyPrefix: opts.keyPrefix, points: opts.points, duration: opts.duration });
  }

  /** Points per lease now: `floor(slack × limit / nodes)`, at least 1. */
  get block(): number {
    return Math.max(1, Math.floor((this.#opts.slack * this.points) / Math.max(1, this.#opts.nodes())));
  }

  /**
   * Spends one point of `key` (rate-limiter-flexible's `consume` contract): resolves a
   * `RateLimiterRes` when allowed, rejects with one when refused; other errors never reach the
   * caller (the in-memory limiter decides while NATS fails).
   */
  consume(key: string, points = 1): Promise<RateLimiterRes> {
    const now = Date.now();
    const lease = this.#leases.get(key);
    if (lease !== undefined && lease.windowEnd > now) {
      if (lease.exhausted) return Promise.reject(this.#res(lease, now, false));
      if (lease.left >= points) {
        lease.left -= points;
        return Promise.resolve(this.#res(lease, now, true));
      }
    }
    // one lease at a time per key: the others wait for it, then spend from it
    if (lease?.pending !== undefined) return lease.pending.then(() => this.consume(key, points));
    return this.#lease(key, points).then(
      () => this.consume(key, points),
      (err: unknown) => {
        if (err instanceof LeaseContended) throw new RateLimiterRes(0, 1, this.points, false);
        return this.#insurance.consume(key, points);
      },
    );
  }

  #res(lease: Lease, now: number, allowed: boolean): RateLimiterRes {
    const remaining = allowed ? lease.windowLeft + lease.left : 0;
    return new RateLimiterRes(remaining, Math.max(lease.windowEnd - now, 0), this.points - remaining, false);
  }

  /** Takes a block (or what the window has left) from the KV entry by compare-and-set. */
  #lease(key: string, points: number): Promise<void> {
    const now = Date.now();
    let lease = this.#leases.get(key);
    if (lease === undefined) {
      if (this.#leases.size >= SWEEP_ABOVE) for (const [k, l] of this.#leases) if (l.windowEnd <= now && l.pending === undefined) this.#leases.delete(k);
      lease = { windowEnd: 0, left: 0, windowLeft: this.points, exhausted: false, pending: undefined };
      this.#leases.set(key, lease);
    } else if (lease.windowEnd <= now) {
      // points left from an ended window are not spent in the next one
      lease.left = 0;
      lease.exhausted = false;
    }
    const held = lease;
    const want = Math.max(points, this.block);
    const p = this.#take(key, want).then(
      (got) => {
        held.pending = undefined;
        held.windowEnd = got.windowEnd;
        held.windowLeft = got.windowLeft;
        held.left += got.taken;
        held.exhausted = held.left < points;
      },
      (err: unknown) => {
        held.pending = undefined;
        throw err;
      },
    );
    held.pending = p;
    return p;
  }

  async #take(key: string, want: number): Promise<{ taken: number; windowEnd: number; windowLeft: number }> {
    const kvKey = `rl.${Buffer.from(`${this.#opts.keyPrefix}:${key}`, 'utf8').toString('base64url')}`;
    const kv = this.#opts.kv;
    let lastError: unknown;
    let races = 0;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; ) {
      this.trips++;
      const now = Date.now();
      const entry = await kv.get(kvKey);
      const current = entry !== null && entry.operation === 'PUT' ? entry.json<Window>() : undefined;
      const fresh = current === undefined || current.expire_ms <= now;
      const used = fresh ? 0 : current.points;
      const windowEnd = fresh ? now + this.#opts.duration * 1000 : current.expire_ms;
      const taken = Math.min(want, Math.max(0, this.points - used));
      if (taken === 0) return { taken: 0, windowEnd, windowLeft: 0 };
      const next: Window = { points: used + taken, expire_ms: windowEnd };
      try {
        if (entry === null) await kv.create(kvKey, JSON.stringify(next));
        else await kv.update(kvKey, JSON.stringify(next), entry.revision);
        return { taken, windowEnd, windowLeft: this.points - next.points };
      } catch (err) {
        if (!lostRace(err)) {
          lastError = err;
          attempt++;
          continue;
        }
        // another node changed it first: read again, after a pause that spreads the contenders
        if (++races >= MAX_RACES) throw new LeaseContended();
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(races, 8)));
      }
    }
    throw lastError instanceof Error ? lastError : new Error('rate limit lease: too many concurrent updates');
  }
}
