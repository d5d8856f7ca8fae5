/**
 * Upstream OAuth authorizations in progress (started, not yet called back), one sublevel
 * `oauth_flows`, so a gateway restart between the start of a flow and its callback does not lose
 * it. Key: the SHA-256 (hex) of the flow's `state`, so the store never holds a usable state; value:
 * the flow sealed with AES-256-GCM (it holds the PKCE code verifier, RFC 7636 §4.1) bound to the
 * key, plus its expiry in clear so expired flows can be swept without the key. This module stores
 * whatever it is given and knows nothing of the sealing key. Writes are fsync'd batches.
 */
import { commitOps, delOp, putOp } from './batcher.js';
import type { Store } from './open.js';
import type { Sublevel } from './db.js';

/** One stored flow. */
export interface StoredOAuthFlow {
  /** The sealed JSON of the flow. */
  readonly sealed: string;
  /** When the flow expires, epoch ms. */
  readonly expires_at: number;
}

export class OAuthFlowRepository {
  private readonly sub: Sublevel<StoredOAuthFlow>;
  constructor(private readonly store: Store) {
    this.sub = store.sublevel<StoredOAuthFlow>('oauth_flows');
  }

  async get(key: string): Promise<StoredOAuthFlow | undefined> {
    return this.sub.get(key);
  }

  /** Creates or replaces; durable when it resolves. */
  async put(key: string, record: StoredOAuthFlow): Promise<void> {
    await commitOps(this.store.db, [putOp(this.sub, key, record)], true);
  }

  /** Every stored flow's key and expiry (epoch ms), in key order. */
  async expiries(): Promise<[string, number][]> {
    const out: [string, number][] = [];
    for await (const [k, v] of this.sub.iterator()) out.push([k, v.expires_at]);
    return out;
  }

  /** Deletes the keys (missing ones are ignored); durable when it resolves. */
  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await commitOps(this.store.db, keys.map((k) => delOp(this.sub, k)), true);
  }
}
