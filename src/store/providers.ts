/**
 * Model provider records managed through the API (`/api/providers`), one per name in the
 * sublevel `model_providers`. Secrets never reach the disk in clear: `api_key_sealed` and
 * `headers_sealed` hold AES-256-GCM sealed text (see `src/providers/secret-box.ts`); this module
 * stores whatever it is given and knows nothing of the key. Changes are fsync'd batches: the API
 * answers only once the record is durable.
 */
import { commitOps, delOp, putOp } from './batcher.js';
import type { Store } from './open.js';
import type { Sublevel } from './db.js';

/** One stored provider: its settings, with the secrets sealed. Times in ms, prices USD per million tokens. */
export interface StoredProvider {
  readonly name: string;
  readonly base_url: string;
  /** Sealed API key, or undefined (no `Authorization` header). */
  readonly api_key_sealed: string | undefined;
  /** Sealed JSON object of extra headers, or undefined. */
  readonly headers_sealed: string | undefined;
  readonly models: readonly string[];
  readonly embedding_model: string | undefined;
  /** Optional overrides; the registry fills defaults. */
  readonly timeout_ms?: number;
  readonly max_retries?: number;
  readonly retry_initial_ms?: number;
  readonly retry_max_ms?: number;
  readonly max_concurrent_requests?: number;
  readonly max_queued_requests?: number;
  readonly pricing: Readonly<Record<string, { readonly input_per_mtok: number; readonly output_per_mtok: number }>>;
  readonly responses_api?: 'responses' | 'chat_completions';
  readonly created_at: string;
  readonly updated_at: string;
}

export class ProviderRepository {
  private readonly sub: Sublevel<StoredProvider>;
  constructor(private readonly store: Store) {
    this.sub = store.sublevel<StoredProvider>('model_providers');
  }

  async list(): Promise<StoredProvider[]> {
    return this.sub.values().all();
  }

  async get(name: string): Promise<StoredProvider | undefined> {
    return this.sub.get(name);
  }

  /** Creates or replaces; durable when it resolves. */
  async put(record: StoredProvider): Promise<void> {
    await commitOps(this.store.db, [putOp(this.sub, record.name, record)], true);
  }

  /** Deletes; resolves whether it existed. */
  async delete(name: string): Promise<boolean> {
    if ((await this.sub.get(name)) === undefined) return false;
    await commitOps(this.store.db, [delOp(this.sub, name)], true);
    return true;
  }
}
