/**
 * Schema versions and migrations. The version lives in the `meta` sublevel under
 * {@link SCHEMA_VERSION_KEY}. A fresh (empty) database is written at the newest version without
 * running migrations; an older one runs the missing migrations in order, recording the version
 * after each, so a crash mid-way resumes at the first migration not yet recorded.
 */
import type { Logger } from '../log/logger.js';
import { commitOps, delOp, putBytesOp, type BatchOp } from './batcher.js';
import { openSublevel, type RootDb, type Sublevel } from './db.js';

/** Meta key of the schema version (a positive integer). */
export const SCHEMA_VERSION_KEY = 'schema_version';

/** What a migration may touch: the root database (for atomic multi-sublevel batches) and sublevels. */
export interface MigrationContext {
  readonly db: RootDb;
  /** The tool log's payload database (`DATA_DIR/db_payloads`, schema version 5 on). */
  readonly payloadDb: RootDb;
  readonly meta: Sublevel<unknown>;
  readonly log: Logger;
  sublevel<V>(name: string): Sublevel<V>;
}

export interface Migration {
  /** The version this migration brings the store to; versions increase by any step ≥ 1. */
  readonly version: number;
  readonly description: string;
  /** Rewrites data from `version - 1`'s layout (or the previous migration's) to this one's. */
  up(store: MigrationContext): Promise<void>;
}

/** This code's migrations, oldest first. Version 1 is the initial layout. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'initial layout: meta, clients, toollog, toollog_sum',
    up: async () => {},
  },
  {
    version: 2,
    description: 'tool log: one record per entry (summary in the record head); the toollog_sum summaries are deleted',
    up: async ({ db }) => {
      // entries written before stay in `toollog` as they were and still read; only their separate
      // summaries go, in batches small enough to hold the event loop well under 1 ms each
      const summaries = openSublevel<unknown>(db, 'toollog_sum');
      for (;;) {
        const keys = await summaries.keys({ limit: 256 }).all();
        if (keys.length === 0) break;
        await commitOps(
          db,
          keys.map((key) => delOp(summaries, key)),
        );
      }
    },
  },
  {
    version: 3,
    description: 'tool events are stored inside their tool-log records (one write per call); earlier tool events stay in the event log and still read',
    // nothing to rewrite: the version tells an older Tributary, which would not find the new tool
    // events in the event log (and would replay them as missing), to refuse this data
    up: async () => {},
  },
  {
    version: 4,
    description: 'tool log: record layout 3, payloads as MessagePack; records of layout 2 (payloads as JSON text) stay and still read',
    // nothing to rewrite: the version tells an older Tributary, which would misread layout 3
    // records as entries of the layout before records, to refuse this data
    up: async () => {},
  },
  {
    version: 5,
    description: 'tool log: payloads over 1 KiB move from the toollog_payload sublevel to a database of their own (DATA_DIR/db_payloads)',
    up: async ({ db, payloadDb }) => {
      // copy (fsync'd, so the copy is on disk before an original goes), then delete the originals,
      // in chunks that hold the loop well under 1 ms each; a crash mid-way repeats the copy of the
      // chunk it was in (puts of the same bytes under the same keys)
      const from = db.sublevel<string, Uint8Array>('toollog_payload', { keyEncoding: 'utf8', valueEncoding: 'view' });
      const to = payloadDb.sublevel<string, Uint8Array>('toollog_payload', { keyEncoding: 'utf8', valueEncoding: 'view' });
      for (;;) {
        const pairs = await from.iterator({ limit: 128 }).all();
        if (pairs.length === 0) break;
        const ops: BatchOp[] = [];
        for (const [key, value] of pairs) ops.push(putBytesOp(to, key, value));
        await commitOps(payloadDb, ops, true);
        await commitOps(
          db,
          pairs.map(([key]) => delOp(from, key)),
        );
      }
    },
  },
];

/**
 * The newest version `migrations` reach (0 for none).
 * @throws RangeError unless versions are positive integers in strictly increasing order.
 */
export function latestVersion(migrations: readonly Migration[]): number {
  let last = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= last) {
      throw new RangeError(`store migrations: version ${m.version} after ${last}: versions must be increasing integers ≥ 1`);
    }
    last = m.version;
  }
  return last;
}

/** Migrations still to run on a store at `from`, in order. */
export function pendingMigrations(migrations: readonly Migration[], from: number): Migration[] {
  return migrations.filter((m) => m.version > from);
}
