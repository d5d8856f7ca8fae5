/**
 * OAuth authorizations started and not yet called back (authorization code grant with PKCE,
 * https://www.rfc-editor.org/rfc/rfc7636): stored sealed for `flow_ttl_s`, so a restart between
 * start and callback keeps them, keyed by the SHA-256 of their `state` (the store never holds a
 * usable state). At most {@link MAX_FLOWS}; the one expiring soonest is dropped first. A per-user
 * flow is bound to the browser of its verified user by a cookie ({@link flowCookieName}).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { OAuthFlowRepository } from '../../store/oauth-flows.js';
import type { Sealer } from './protocol.js';

/** Flows remembered at most (oldest dropped first). */
const MAX_FLOWS = 1000;

/** An authorization started and not yet called back (sealed in the flow store, keyed by the SHA-256 of its `state`). */
export interface Flow {
  readonly clientId: string;
  readonly principal: string;
  readonly verifier: string;
  readonly redirectUri: string;
  /** Epoch ms. */
  readonly expiresAt: number;
  /** The authorization server's URL for this flow (per-user flows: given only to the verified user's browser). */
  readonly authorizationUrl: string;
  /** SHA-256 (base64url) of the binding cookie given to the browser of the verified user (per-user flows). */
  readonly binding?: string;
}

/** SHA-256 of `value`, base64url. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** The flow store key of `state`: its SHA-256 (the store never holds a usable state). */
export function flowKey(state: string): string {
  return createHash('sha256').update(state).digest('hex');
}

/**
 * The name of the cookie binding a per-user flow to the browser of its verified user
 * (`tributary_oauth_` + 16 hex of the state's SHA-256): one per flow, so two authorizations in
 * progress in one browser do not overwrite each other.
 */
export function flowCookieName(state: string): string {
  return `tributary_oauth_${flowKey(state).slice(0, 16)}`;
}

/** Whether the cookie value `sent` is the binding whose SHA-256 is `expected` (constant time). */
export function bindingMatches(expected: string | undefined, sent: string | undefined): boolean {
  if (expected === undefined || sent === undefined || sent === '' || sent.length > 100) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(sha256(sent));
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The sealed flow store, with the expiry of every flow kept in memory to bound and sweep it. */
export class OAuthFlowStore {
  /** Expiry (epoch ms) of every stored flow, by the SHA-256 of its state: bounds and sweeps the flow store. */
  private readonly flowExpiry = new Map<string, number>();

  constructor(
    private readonly flowRepo: OAuthFlowRepository,
    private readonly box: Sealer,
    private readonly now: () => number,
  ) {}

  /** Loads the expiry of every stored flow and deletes the expired ones; call once at start. */
  async init(): Promise<void> {
    const expired: string[] = [];
    for (const [k, exp] of await this.flowRepo.expiries()) {
      if (exp <= this.now()) expired.push(k);
      else this.flowExpiry.set(k, exp);
    }
    await this.flowRepo.delete(expired);
  }

  /** Stores `flow` (sealed, bound to its key) under `state`, replacing any flow of that state. */
  async put(state: string, flow: Flow): Promise<void> {
    const key = flowKey(state);
    await this.flowRepo.put(key, { sealed: this.box.seal(JSON.stringify(flow), key), expires_at: flow.expiresAt });
    this.flowExpiry.set(key, flow.expiresAt);
  }

  /** The live flow of `state`, or undefined (unknown, expired, or sealed with another key). */
  async get(state: string): Promise<Flow | undefined> {
    if (state === '' || state.length > 200) return undefined;
    const key = flowKey(state);
    const r = await this.flowRepo.get(key);
    if (!r || r.expires_at <= this.now()) return undefined;
    try {
      return JSON.parse(this.box.open(r.sealed, key)) as Flow;
    } catch {
      return undefined;
    }
  }

  /** Deletes the flows of the given keys ({@link flowKey}). */
  async delete(keys: readonly string[]): Promise<void> {
    for (const k of keys) this.flowExpiry.delete(k);
    await this.flowRepo.delete(keys);
  }

  /** Drops expired flows, then the ones expiring soonest while over {@link MAX_FLOWS}. */
  async sweep(): Promise<void> {
    const now = this.now();
    const drop: string[] = [];
    for (const [k, exp] of this.flowExpiry) if (exp <= now) drop.push(k);
    const left = this.flowExpiry.size - drop.length;
    if (left >= MAX_FLOWS) {
      const live = [...this.flowExpiry].filter(([, exp]) => exp > now).sort((a, b) => a[1] - b[1]);
      for (const [k] of live.slice(0, left - MAX_FLOWS + 1)) drop.push(k);
    }
    await this.delete(drop);
  }
}
