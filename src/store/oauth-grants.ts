/**
 * Upstream OAuth state at rest, one sublevel `oauth_grants`: per MCP client its registration
 * (`client:<client_id>`) and per authorization its tokens (`token:<client_id>:<principal>`, where
 * the principal is `*` for a client-wide `oauth` authorization). Secrets never reach the disk in
 * clear: `sealed` holds AES-256-GCM sealed JSON (see `src/providers/secret-box.ts`), bound to the
 * record's key; this module stores whatever it is given and knows nothing of the key. Writes are
 * fsync'd batches: a token is durable before it is used.
 */
import { commitOps, delOp, putOp } from './batcher.js';
import type { Store } from './open.js';
import type { Sublevel } from './db.js';

/** One stored record. Times are epoch ms. */
export interface StoredOAuthRecord {
  /** The sealed JSON (tokens, or the client registration). */
  readonly sealed: string;
  /** When the access token expires (not secret; for the status shown by the management API). */
  readonly expires_at?: number;
  /** Id shown as the client's `oauth_config_id` once authorized. */
  readonly id: string;
  readonly updated_at: number;
}

export class OAuthGrantRepository {
  private readonly sub: Sublevel<StoredOAuthRecord>;
  constructor(private readonly store: Store) {
    this.sub = store.sublevel<StoredOAuthRecord>('oauth_grants');
  }

  async get(key: string): Promise<StoredOAuthRecord | undefined> {
    return this.sub.get(key);
  }

  /** Creates or replaces; durable when it resolves. */
  async put(key: string, record: StoredOAuthRecord): Promise<void> {
    await commitOps(this.store.db, [putOp(this.sub, key, record)], true);
  }

  /** Every key starting with `prefix`. */
  async keys(prefix: string): Promise<string[]> {
    return this.sub.keys({ gte: prefix, lt: `${prefix}\uffff` }).all();
  }

  /** Deletes the keys (missing ones are ignored); durable when it resolves. */
  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await commitOps(this.store.db, keys.map((k) => delOp(this.sub, k)), true);
  }
}
