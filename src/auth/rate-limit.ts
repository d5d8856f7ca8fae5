/**
 * Per-key rate limits on rate-limiter-flexible's in-memory fixed windows (developer-mesh
 * "Rate Limiting", https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md): requests per hour, a burst limit per minute, and
 * tool executions per hour, each overridable per key. In cluster mode the counts live in NATS KV
 * (src/cluster/rate-limit-store.ts, the same rate-limiter-flexible API), so they hold across nodes.
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Principal, RateLimitSettings } from '../base/principal.js';

/** Which limit a verdict reports. */
export type LimitName = keyof RateLimitSettings;

/**
 * The outcome of one consume, with what the `X-RateLimit-*` headers report: the limit closest to
 * exhaustion among those checked.
 */
export interface LimitVerdict {
  readonly allowed: boolean;
  readonly name: LimitName;
  /** The window's allowance, requests. */
  readonly limit: number;
  /** Requests left in the window, ≥ 0. */
  readonly remaining: number;
  /** When the window resets, epoch seconds. */
  readonly resetEpochS: number;
  /** Seconds until a refused request may be retried (≥ 1); 0 when allowed. */
  readonly retryAfterS: number;
}

const WINDOW_S: Record<LimitName, number> = { requests_per_hour: 3600, burst_per_minute: 60, tool_executions_per_hour: 3600 };

const NO_VERDICT: Promise<undefined> = Promise.resolve(undefined);

function isRes(v: unknown): v is RateLimiterRes {
  return v instanceof RateLimiterRes;
}

/**
 * What a limiter must do here: rate-limiter-flexible's `consume` (resolves a `RateLimiterRes` when
 * allowed, rejects with one when refused) and its allowance. Its limiters have it; so do the
 * cluster's leased limiters.
 */
export interface Limiter {
  readonly points: number;
  consume(key: string, points?: number): Promise<RateLimiterRes>;
}

/** The three limiters of one settings object. */
type LimiterSet = Readonly<Record<LimitName, Limiter>>;

/**
 * Makes the limiter of one (limit, allowance): in memory by default; cluster mode passes one whose
 * counts live in NATS KV, shared by every node.
 */
export type LimiterFactory = (opts: { keyPrefix: string; points: number; duration: number }) => Limiter;

const memoryLimiter: LimiterFactory = (opts) => new RateLimiterMemory(opts);

export class RateLimits {
  /** One limiter per (limit name, allowance): keys with the same allowance share it. */
  private readonly limiters = new Map<string, Limiter>();
  /** Limiters by settings object (principals keep theirs), so the hot path builds no map keys. */
  private readonly bySettings = new WeakMap<RateLimitSettings, LimiterSet>();

  /** Where the counts live; replaceable before the first request (cluster mode). */
  factory: LimiterFactory = memoryLimiter;

  constructor(private readonly now: () => number = Date.now) {}

  private limiter(name: LimitName, points: number): Limiter {
    const id = `${name}:${points}`;
    let l = this.limiters.get(id);
    if (!l) {
      l = this.factory({ keyPrefix: name, points, duration: WINDOW_S[name] });
      this.limiters.set(id, l);
    }
    return l;
  }

  private set(limits: RateLimitSettings): LimiterSet {
    let set = this.bySettings.get(limits);
    if (!set) {
      set = {
        requests_per_hour: this.limiter('requests_per_hour', limits.requests_per_hour),
        burst_per_minute: this.limiter('burst_per_minute', limits.burst_per_minute),
        tool_executions_per_hour: this.limiter('tool_executions_per_hour', limits.tool_executions_per_hour),
      };
      this.bySettings.set(limits, set);
    }
    return set;
  }

  private verdict(name: LimitName, points: number, res: RateLimiterRes, allowed: boolean): LimitVerdict {
    return {
      allowed,
      name,
      limit: points,
      remaining: Math.max(0, res.remainingPoints),
      resetEpochS: Math.ceil((this.now() + res.msBeforeNext) / 1000),
      retryAfterS: allowed ? 0 : Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
    };
  }

  /** One consume, mapped to a verdict (a refusal resolves; only unexpected errors reject). Plain promise chains: this runs per request. */
  private take(name: LimitName, limiter: Limiter, key: string): Promise<LimitVerdict> {
    const points = limiter.points;
    return limiter.consume(key, 1).then(
      (res) => this.verdict(name, points, res, true),
      (err: unknown) => {
        if (!isRes(err)) throw err;
        return this.verdict(name, points, err, false);
      },
    );
  }

  /**
   * Counts one request (an HTTP request or a WebSocket message) against the caller's burst and
   * hourly limits. The burst window is checked first; a request it refuses does not also count
   * against the hour. Resolves with the refusing verdict, else the one with fewer requests left.
   * A principal without limits (auth disabled) resolves `undefined`.
   */
  consumeRequest(p: Principal): Promise<LimitVerdict | undefined> {
    const limits = p.limits;
    if (!limits) return NO_VERDICT;
    const set = this.set(limits);
    return this.take('burst_per_minute', set.burst_per_minute, p.id).then((burst) => {
      if (!burst.allowed) return burst;
      return this.take('requests_per_hour', set.requests_per_hour, p.id).then((hour) => (!hour.allowed || hour.remaining <= burst.remaining ? hour : burst));
    });
  }

  /** Counts one tool execution against the caller's hourly tool limit; `undefined` without limits. */
  consumeToolExecution(p: Principal): Promise<LimitVerdict | undefined> {
    const limits = p.limits;
    if (!limits) return NO_VERDICT;
    return this.take('tool_executions_per_hour', this.set(limits).tool_executions_per_hour, p.id);
  }
}

/**
 * Failed Basic logins per client address ("failed attempts rate-limited"): after
 * `maxFailures` failures in `windowS` seconds, further attempts from that address are refused
 * without checking the password until the window ends.
 */
export class LoginThrottle {
  private readonly failures: RateLimiterMemory;

  constructor(
    private readonly maxFailures: number,
    windowS: number,
  ) {
    this.failures = new RateLimiterMemory({ keyPrefix: 'basic_fail', points: maxFailures, duration: windowS });
  }

  /** Seconds until `address` may try again, or 0 when it may try now. */
  async blockedFor(address: string): Promise<number> {
    const res = await this.failures.get(address);
    if (!res || res.consumedPoints < this.maxFailures) return 0;
    return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  }

  /** Records a failed attempt from `address`. */
  async fail(address: string): Promise<void> {
    await this.failures.penalty(address, 1);
  }
}
