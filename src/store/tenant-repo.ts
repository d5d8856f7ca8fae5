/**
 * `TenantRepository`: records of one entity kind (contexts, agents, models, relationships, ...)
 * scoped by tenant ("one tenant never sees another's"). Keys are
 * `<tenant>\u0000<id>`, so a tenant's records are one key range and a lookup under another
 * tenant simply finds nothing. Writes are fsync'd `db.batch` calls (durable when they resolve),
 * because REST answers promise that the change happened. Several changes that must land together
 * (a context deleted with its relationships) go through {@link TenantRepository.ops} and
 * {@link commitAll}.
 */
import { commitOps, delOp, putOp, type BatchOp } from './batcher.js';
import type { RootDb, Sublevel } from './db.js';

const SEP = '\u0000';
const END = '\u0001';

/** Tenant ids: 1..128 of `[A-Za-z0-9_.-]` (no separator characters). */
export const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

function key(tenant: string, id: string): string {
  if (!TENANT_PATTERN.test(tenant)) throw new TypeError(`store: bad tenant id ${JSON.stringify(tenant)}`);
  if (id === '' || id.includes(SEP)) throw new TypeError(`store: bad record id ${JSON.stringify(id)}`);
  return `${tenant}${SEP}${id}`;
}

/** Commits operations of several repositories in one fsync'd batch. */
export function commitAll(db: RootDb, ops: readonly BatchOp[]): Promise<void> {
  return ops.length === 0 ? Promise.resolve() : commitOps(db, ops, true);
}

export class TenantRepository<T extends { readonly id: string }> {
  constructor(
    private readonly db: RootDb,
    private readonly sublevel: Sublevel<T>,
  ) {}

  /** The record `id` of `tenant`, or undefined (also for another tenant's id). */
  async get(tenant: string, id: string): Promise<T | undefined> {
    if (id === '' || id.includes(SEP)) return undefined;
    return this.sublevel.get(key(tenant, id));
  }

  /** Every record of `tenant`, in key (id) order. */
  async list(tenant: string): Promise<T[]> {
    key(tenant, 'x');
    return this.sublevel.values({ gte: `${tenant}${SEP}`, lt: `${tenant}${END}` }).all();
  }

  /** Creates or replaces `record` under `tenant`; durable when it resolves. */
  async put(tenant: string, record: T): Promise<void> {
    await commitOps(this.db, [putOp(this.sublevel, key(tenant, record.id), record)], true);
  }

  /** Deletes `id` of `tenant`; resolves whether it existed. Durable when it resolves. */
  async delete(tenant: string, id: string): Promise<boolean> {
    if ((await this.get(tenant, id)) === undefined) return false;
    await commitOps(this.db, [delOp(this.sublevel, key(tenant, id))], true);
    return true;
  }

  /** Batch operations for {@link commitAll}: put these, delete those. */
  ops(tenant: string, puts: readonly T[], deletes: readonly string[] = []): BatchOp[] {
    return [...puts.map((r) => putOp(this.sublevel, key(tenant, r.id), r)), ...deletes.map((id) => delOp(this.sublevel, key(tenant, id)))];
  }
}
