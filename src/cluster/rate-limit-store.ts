/**
 * A rate-limiter-flexible store on a JetStream KV bucket (`<name>_limits`), so a key's limits
 * hold across nodes: each window is one KV entry `{points, expire_ms}` changed by compare-and-set
 * (`kv.create` for a new window, `kv.update` at the revision read; a conflict re-reads and tries
 * again). Counts are exact; a request costs one read and one write to NATS per window checked.
 *
 * The store API (`_upsert`, `_get`, `_delete`, `_getRateLimiterRes`) is rate-limiter-flexible's
 * contract for custom stores: https://github.com/animir/node-rate-limiter-flexible/wiki/RateLimiterStoreAbstract
 * While NATS is unreachable, the `insuranceLimiter` (in memory, per node) decides, as the library
 * does for its Redis store: https://github.com/animir/node-rate-limiter-flexible/wiki/Insurance-Strategy
 */
import { createRequire } from 'node:module';
import { RateLimiterMemory, RateLimiterRes, type RateLimiterStoreAbstract as StoreAbstract } from 'rate-limiter-flexible';
import type { KV } from '@nats-io/kv';

// the package's index does not export the base class of its stores (its types do): load it by path
const RateLimiterStoreAbstract = createRequire(import.meta.url)('rate-limiter-flexible/lib/RateLimiterStoreAbstract.js') as typeof StoreAbstract;

interface Window {
  /** Points consumed in the window. */
  points: number;
  /** When the window ends, epoch ms (-1: never). */
  expire_ms: number;
}

/** Compare-and-set attempts before the store gives up (then the insurance limiter decides). */
const MAX_ATTEMPTS = 8;

/** KV keys allow `[-/_=.a-zA-Z0-9]`: limiter keys (`burst_per_minute:vk:abc`) are encoded. */
function kvKey(rlKey: string): string {
  return `rl.${Buffer.from(rlKey, 'utf8').toString('base64url')}`;
}

export interface NatsKvLimiterOptions {
  readonly kv: KV;
  readonly keyPrefix: string;
  readonly points: number;
  /** Window length, seconds. */
  readonly duration: number;
}

export class RateLimiterNatsKv extends RateLimiterStoreAbstract {
  readonly #kv: KV;

  constructor(opts: NatsKvLimiterOptions) {
    super({
      storeClient: opts.kv,
      keyPrefix: opts.keyPrefix,
      points: opts.points,
      duration: opts.duration,
      // refused keys stay refused in memory until the window ends: no NATS round trip for them
      inMemoryBlockOnConsumed: opts.points + 1,
      insuranceLimiter: new RateLimiterMemory({ keyPrefix: opts.keyPrefix, points: opts.points, duration: opts.duration }),
    });
    this.#kv = opts.kv;
  }

  /** Library hook: the consumed points and time left of a store result. */
  _getRateLimiterRes(_rlKey: string, changedPoints: number, result: Window): RateLimiterRes {
    const now = Date.now();
    return new RateLimiterRes(
      Math.max(this.points - result.points, 0),
      result.expire_ms >= 0 ? Math.max(result.expire_ms - now, 0) : -1,
      result.points,
      result.points === changedPoints,
    );
  }

  /** Library hook: adds `points` to the key's window (a new window when absent or over, or `forceExpire`). */
  async _upsert(rlKey: string, points: number, msDuration: number, forceExpire = false): Promise<Window> {
    const key = kvKey(rlKey);
    let lastError: unknown;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = Date.now();
      const entry = await this.#kv.get(key);
      const current = entry !== null && entry.operation === 'PUT' ? entry.json<Window>() : undefined;
      const fresh = forceExpire || current === undefined || (current.expire_ms >= 0 && current.expire_ms <= now);
      const next: Window = fresh ? { points, expire_ms: msDuration > 0 ? now + msDuration : -1 } : { points: current.points + points, expire_ms: current.expire_ms };
      try {
        if (entry === null || entry.operation !== 'PUT') await (entry === null ? this.#kv.create(key, JSON.stringify(next)) : this.#kv.update(key, JSON.stringify(next), entry.revision));
        else await this.#kv.update(key, JSON.stringify(next), entry.revision);
        return next;
      } catch (err) {
        // another node changed it first: read again
        lastError = err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error('rate limit store: too many concurrent updates');
  }

  /** Library hook: the key's window, or `null`. */
  async _get(rlKey: string): Promise<Window | null> {
    const entry = await this.#kv.get(kvKey(rlKey));
    if (entry === null || entry.operation !== 'PUT') return null;
    const w = entry.json<Window>();
    return w.expire_ms >= 0 && w.expire_ms <= Date.now() ? null : w;
  }

  /** Library hook: deletes the key's window. */
  async _delete(rlKey: string): Promise<boolean> {
    const existed = (await this._get(rlKey)) !== null;
    await this.#kv.delete(kvKey(rlKey));
    return existed;
  }
}
