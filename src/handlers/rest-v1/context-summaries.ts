/**
 * Where a context's stored model summary lives (`context_summaries`, per tenant, keyed by the
 * context id): written by the model summary route, deleted in the same batch as its context.
 */
import { TenantRepository } from '../../store/tenant-repo.js';
import type { V1Store } from '../../store/v1-records.js';

/** A stored model summary of one context. */
export interface ContextSummaryRecord {
  /** The context id. */
  readonly id: string;
  readonly summary: string;
  readonly method: 'model';
  /** The model as the provider knows it, and the provider. */
  readonly model: string;
  readonly provider: string;
  readonly message_count: number;
  readonly chunks: number;
  /** Model calls made (chunks plus merges). */
  readonly calls: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cost_usd: number;
  readonly created_at: string;
}

/** The repository of stored context summaries of `repos.store`. */
export function contextSummaries(repos: V1Store): TenantRepository<ContextSummaryRecord> {
  return new TenantRepository(repos.store.db, repos.store.sublevel<ContextSummaryRecord>('context_summaries'));
}
