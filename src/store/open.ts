/**
 * `openStore`: opens the LevelDB store at `<dataDir>/db` (one sublevel per
 * entity, msgpackr values, batched writes), checks the schema version and runs migrations.
 * The tool log's large payloads live in a second LevelDB database beside it, `<dataDir>/db_payloads`,
 * so each database appends to one time-ordered key range (see {@link DEFAULT_LEVELDB_OPTIONS} and
 * `tool-log.ts`). The same checks apply to it; the store's own LOCK guards both.
 *
 * Never destroys, repairs or rewrites data on its own: a locked, corrupt or too-new data
 * directory makes `openStore` reject with a {@link StoreError}, having written nothing itself.
 * What LevelDB does on its own (observed with classic-level 3.0.0):
 * - every `open()` attempt, even one that fails on the LOCK, first renames LevelDB's text info log
 *   `LOG` to `LOG.old` and starts a new `LOG` (classic-level has no option to turn that off);
 * - an `open()` that fails (LOCK held, corrupt `CURRENT`/`MANIFEST`, missing table) changes no
 *   data file (`CURRENT`, `MANIFEST-*`, `*.log`, `*.ldb`);
 * - an `open()` that succeeds does LevelDB's usual, content-preserving bookkeeping (a new
 *   `MANIFEST`, the write-ahead log turned into a table) before our first read; so a refusal found
 *   only after that (`too_new`, a corrupt table block, a malformed schema version) follows it.
 *   Table files are left byte for byte.
 * A second `openStore` of one directory in this process is refused before LevelDB is called.
 *
 * One guard runs before LevelDB: a directory holding LevelDB files but no `CURRENT` is refused
 * as `corrupt`, because LevelDB would treat it as a new database and delete the existing tables.
 */
import { mkdir, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import type { Logger } from '../log/logger.js';
import { BatchWriter, commitOps, levelBatchCommit, putOp, type BatchOp, type BatchWriterOptions } from './batcher.js';
import { ClientRepository, type StoredClient } from './clients.js';
import { openSublevel, type RootDb, type Sublevel } from './db.js';
import { StoreError, corruptError, storeErrorFromLevel } from './errors.js';
import { levelDbBinary } from './leveldb-binary.js';
import { MIGRATIONS, SCHEMA_VERSION_KEY, latestVersion, pendingMigrations, type Migration, type MigrationContext } from './migrations.js';
import { ToolLogRepository, type ToolLogOptions, type ToolLogRecords } from './tool-log.js';

/** Sublevel names the store itself uses; {@link Store.sublevel} refuses them. */
export const RESERVED_SUBLEVELS: ReadonlySet<string> = new Set(['meta', 'clients', 'toollog', 'toollog_sum', 'toollog_payload']);

export interface OpenStoreOptions {
  /** Migrations, oldest first (default {@link MIGRATIONS}); the last one's version is "current". */
  readonly migrations?: readonly Migration[];
  /** Batch writer tuning (window 10 ms, 1000 writes per batch, 100 000 pending ops by default). */
  readonly batch?: BatchWriterOptions;
  /** Tool log tuning (payload cap, clock, sweep chunk). */
  readonly toolLog?: ToolLogOptions;
  /**
   * Runs each batch commit of the writer (`size` ops) — e.g. inside a trace span; it must call
   * `commit` once and settle as it does. Default: `commit()`.
   */
  readonly aroundBatch?: (size: number, commit: () => Promise<void>) => Promise<void>;
  /** LevelDB's own tuning (default {@link DEFAULT_LEVELDB_OPTIONS}). */
  readonly leveldb?: LevelDbOptions;
}

/**
 * LevelDB options Tributary sets (classic-level `open()` options, https://github.com/Level/classic-level#dbopenoptions-callback).
 * - `writeBufferSize`: bytes of writes a memtable takes before it is written out as a level-0
 *   table (LevelDB's default 4 MiB);
 * - `maxFileSize`: bytes per table file compactions write (LevelDB's default 2 MiB);
 * - `compression`: snappy-compress table blocks (LevelDB's default, true). Only new tables follow
 *   it: each block records whether it is compressed, so data written either way reads with
 *   either setting (https://github.com/google/leveldb/blob/main/doc/table_format.md).
 */
export interface LevelDbOptions {
  readonly writeBufferSize?: number;
  readonly maxFileSize?: number;
  readonly compression?: boolean;
}

/**
 * Tributary's defaults, for each of the two databases (the store and the tool log's payloads): a
 * 32 MiB memtable and 8 MiB table files. When the tool log wrote two time-ordered key ranges into
 * one database (records, and payloads over 1 KiB under their own sublevel), every level-0 table
 * overlapped the tables below it and LevelDB had to merge instead of moving files
 * (https://github.com/google/leveldb/blob/main/doc/impl.md#compactions); with LevelDB's 4 MiB
 * memtable that rewriting was the largest single cost of a 4 KiB tool call (its compaction thread
 * ≈ 50 µs per call), and eight times fewer, larger level-0 tables cut it: gateway CPU per 4 KiB
 * `/mcp` echo 244–276 → 128–180 µs, small calls unchanged or lower (README "Storage"). The
 * payloads now have a database of their own (schema version 5), so both append to one range.
 * Costs: up to two memtables per database (128 MiB) of memory, and up to 32 MiB of write-ahead
 * log per database replayed at start-up after a crash.
 *
 * What LevelDB still costs per call is mostly bytes: it computes a CRC32C over every byte of its
 * write-ahead log and of every table it writes
 * (https://github.com/google/leveldb/blob/main/doc/log_format.md), and classic-level's prebuilt
 * linux-x64 binary runs the portable table-driven CRC32C (14 % of the gateway's CPU samples under
 * 4 KiB `/mcp` calls in a `perf record`: 9.6 % the log, 4.6 % the tables). That is a property of
 * the binary, not of these options: `npm run build:leveldb` builds classic-level with LevelDB's
 * SSE4.2 CRC32C (see `leveldb-binary.ts`; the files are the same either way), which took the
 * gateway's CPU off its main thread from 27–38 to 17–20 µs per 4 KiB call in `npm run bench:ws`
 * (README "Storage").
 *
 * Snappy compression (`compression`, config `store.compression`) stays on by default: it is a
 * trade of disk for CPU that depends on the payloads. In 4 KiB `demo-echo` calls (`bench:ws`'s
 * words, echoed) it was ≈ 1 % of the gateway's samples and halved the payload tables; off, the
 * gateway's CPU per call did not drop (3 alternated pairs) and the payload database grew 1.5–2×. In a
 * LevelDB-only script (payload database options, 10,000 values, CPU of all threads until closed)
 * ≈ 7.5 KiB MessagePack values of JSON-like records took 28–33 µs per value compressed against
 * 19–22 uncompressed, at 3.2 against 7.7 KB per value on disk.
 */
export const DEFAULT_LEVELDB_OPTIONS: Required<LevelDbOptions> = { writeBufferSize: 32 * 1024 * 1024, maxFileSize: 8 * 1024 * 1024, compression: true };

export interface Store {
  /** The LevelDB directory, `<realpath(dataDir)>/db`. */
  readonly location: string;
  /** Schema version of the data, after migrations. */
  readonly schemaVersion: number;
  /** The root database; for migrations and atomic multi-sublevel batches. Stream writes go through `writer`. */
  readonly db: RootDb;
  /**
   * The tool log's payload database at `<realpath(dataDir)>/db_payloads` (sublevel `toollog_payload`: payloads
   * over 1 KiB). Ops on it may share a `commitOps` / writer unit with ops on {@link db}: they are
   * written as a second batch at the same time.
   */
  readonly payloadDb: RootDb;
  /** Key/value metadata (schema version, seeded client names, ...), msgpackr values. */
  readonly meta: Sublevel<unknown>;
  readonly clients: ClientRepository;
  readonly toolLog: ToolLogRepository;
  /** The batch writer all stream writes go through; its `counters` feed the metrics. */
  readonly writer: BatchWriter<BatchOp>;
  /**
   * The sublevel `name` (lower-case `[a-z][a-z0-9_]*`) with msgpackr values, for entities added
   * later (events, keys). One instance per name.
   * @throws RangeError for a malformed or reserved name ({@link RESERVED_SUBLEVELS}).
   */
  sublevel<V>(name: string): Sublevel<V>;
  /**
   * Stops retention timers, commits pending batches, then closes LevelDB and releases the
   * directory. Idempotent: every call returns the same completion.
   */
  close(): Promise<void>;
}

/** The payload database's directory in the data dir, beside the store's `db`. */
export const PAYLOAD_DB_DIR = 'db_payloads';

/** Whether the hint to build LevelDB with the hardware CRC32C was logged (once per process). */
let crcHintLogged = false;

/** LevelDB directories open through `openStore` in this process. */
const openLocations = new Set<string>();

const LEVELDB_FILE = /^(MANIFEST-\d+|\d+\.(log|ldb|sst))$/;

/**
 * Opens (creating if needed) the store under `dataDir`.
 *
 * Rejects with {@link StoreError}:
 * - `locked`: the directory is open in another process (LevelDB LOCK) or already in this one;
 * - `corrupt`: LevelDB reports corruption, `CURRENT` names a missing manifest, `CURRENT` is
 *   missing beside LevelDB files, a read during open hits a corrupt block, or the stored schema
 *   version is not a whole number;
 * - `too_new`: the stored schema version is newer than the last of `migrations`;
 * - `migration_failed`: a migration threw (the version stays at the last one that succeeded);
 * - `io`: anything else (permissions, `dataDir` or `db` being a file, disk errors).
 *
 * A fresh (empty) database is written at the current version; a non-empty one without a version
 * counts as version 0. Throws `RangeError` synchronously-in-the-promise for a malformed migration list.
 */
export async function openStore(dataDir: string, log: Logger, options: OpenStoreOptions = {}): Promise<Store> {
  const migrations = options.migrations ?? MIGRATIONS;
  const current = latestVersion(migrations);
  const slog = log.child({ component: 'store' });

  let location: string;
  try {
    await mkdir(dataDir, { recursive: true });
    location = path.join(await realpath(dataDir), 'db');
  } catch (err) {
    throw new StoreError('io', `cannot create data dir ${path.resolve(dataDir, 'db')}: ${errorText(err)}; check DATA_DIR and its permissions`, {
      location: path.resolve(dataDir, 'db'),
      cause: err,
    });
  }
  if (openLocations.has(location)) {
    throw new StoreError(
      'locked',
      `data dir ${location} is already open in this process (LevelDB LOCK held); close the other store first or use another DATA_DIR`,
      { location },
    );
  }
  openLocations.add(location);
  try {
    await preflight(location);
  } catch (err) {
    openLocations.delete(location);
    throw err;
  }

  const db: RootDb = new Level<string, Uint8Array>(location, { keyEncoding: 'utf8', valueEncoding: 'view' });
  try {
    await db.open({ ...DEFAULT_LEVELDB_OPTIONS, ...options.leveldb });
  } catch (err) {
    openLocations.delete(location);
    throw storeErrorFromLevel(err, location);
  }
  let payloadDb: RootDb | undefined;
  const fail = async (error: StoreError): Promise<never> => {
    await Promise.all([db.close().catch(() => undefined), payloadDb?.close().catch(() => undefined)]);
    openLocations.delete(location);
    throw error;
  };

  const meta = openSublevel<unknown>(db, 'meta');
  const extra = new Map<string, Sublevel<unknown>>();
  const sublevel = <V>(name: string): Sublevel<V> => {
    if (RESERVED_SUBLEVELS.has(name)) throw new RangeError(`store: sublevel ${JSON.stringify(name)} is reserved`);
    let sub = extra.get(name);
    if (sub === undefined) {
      sub = openSublevel<unknown>(db, name);
      extra.set(name, sub);
    }
    return sub as Sublevel<V>;
  };

  let version: number;
  try {
    version = await readVersion(db, meta, location, current);
  } catch (err) {
    return fail(err instanceof StoreError ? err : storeErrorFromLevel(err, location));
  }
  if (version > current) {
    return fail(
      new StoreError(
        'too_new',
        `data dir ${location} has schema version ${version}, newer than this Tributary understands (${current}); ` +
          `run a newer Tributary on it, or use another DATA_DIR`,
        { location },
      ),
    );
  }
  // the payload database opens once the data is known to be ours (so a refusal creates nothing);
  // the store's LOCK guards both
  const payloadLocation = path.join(path.dirname(location), PAYLOAD_DB_DIR);
  try {
    await preflight(payloadLocation);
    payloadDb = new Level<string, Uint8Array>(payloadLocation, { keyEncoding: 'utf8', valueEncoding: 'view' });
    await payloadDb.open({ ...DEFAULT_LEVELDB_OPTIONS, ...options.leveldb });
  } catch (err) {
    return fail(err instanceof StoreError ? err : storeErrorFromLevel(err, payloadLocation));
  }
  const payloads: RootDb = payloadDb;
  const migratedFrom = version < current ? version : undefined;
  const ctx: MigrationContext = { db, payloadDb: payloads, meta, log: slog, sublevel };
  for (const migration of pendingMigrations(migrations, version)) {
    slog.info('store migration', { from: version, to: migration.version, description: migration.description });
    try {
      await migration.up(ctx);
      await commitOps(db, [putOp(meta, SCHEMA_VERSION_KEY, migration.version)], true);
    } catch (err) {
      return fail(
        new StoreError(
          'migration_failed',
          `data dir ${location}: migration to schema version ${migration.version} (${migration.description}) failed: ` +
            `${errorText(err)}; the data stays at version ${version}; fix the cause and start again`,
          { location, cause: err },
        ),
      );
    }
    version = migration.version;
  }

  const around = options.aroundBatch;
  const writer = new BatchWriter<BatchOp>(around === undefined ? levelBatchCommit(db) : (ops) => around(ops.length, () => commitOps(db, ops)), options.batch);
  const clients = new ClientRepository(db, openSublevel<StoredClient>(db, 'clients'), meta);
  const toolLog = new ToolLogRepository(
    db,
    db.sublevel<string, Uint8Array>('toollog', { keyEncoding: 'utf8', valueEncoding: 'view' }) as ToolLogRecords,
    payloads.sublevel<string, Uint8Array>('toollog_payload', { keyEncoding: 'utf8', valueEncoding: 'view' }) as ToolLogRecords,
    writer,
    slog.child({ entity: 'toollog' }),
    options.toolLog,
  );
  try {
    await toolLog.init();
  } catch (err) {
    return fail(storeErrorFromLevel(err, location));
  }
  const binary = levelDbBinary();
  slog.info('store open', {
    location,
    schema_version: version,
    ...(migratedFrom === undefined ? {} : { migrated_from: migratedFrom }),
    leveldb_binary: binary.origin,
    leveldb_crc32c: binary.crc32c,
  });
  if (binary.crc32c === 'portable' && process.platform === 'linux' && process.arch === 'x64' && !crcHintLogged) {
    crcHintLogged = true;
    slog.info('LevelDB computes its checksums with the portable CRC32C; `npm run build:leveldb` builds it with the SSE4.2 one (README "Storage")');
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      try {
        await toolLog.close();
        await writer.close();
      } finally {
        await Promise.all([db.close(), payloads.close()]);
        openLocations.delete(location);
        slog.info('store closed', { location });
      }
    })();
    return closing;
  };

  return { location, schemaVersion: version, db, payloadDb: payloads, meta, clients, toolLog, writer, sublevel, close };
}

/** Refuses, without touching anything, directories LevelDB would mishandle. */
async function preflight(location: string): Promise<void> {
  let names: string[];
  try {
    const info = await stat(location);
    if (!info.isDirectory()) {
      throw new StoreError('io', `data dir ${location} is not a directory; move the file away or use another DATA_DIR`, { location });
    }
    names = await readdir(location);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StoreError('io', `cannot read data dir ${location}: ${errorText(err)}; check its permissions`, { location, cause: err });
  }
  if (!names.includes('CURRENT') && names.some((n) => LEVELDB_FILE.test(n))) {
    throw corruptError(
      location,
      'LevelDB files but no CURRENT file; opening it would start an empty database and delete the existing tables',
    );
  }
}

/** The stored schema version; writes `current` into a fresh database; 0 for data without a version. */
async function readVersion(db: RootDb, meta: Sublevel<unknown>, location: string, current: number): Promise<number> {
  const stored = await meta.get(SCHEMA_VERSION_KEY);
  if (stored === undefined) {
    const any = await db.keys({ limit: 1 }).all();
    if (any.length > 0) return 0;
    await commitOps(db, [putOp(meta, SCHEMA_VERSION_KEY, current)], true);
    return current;
  }
  if (typeof stored !== 'number' || !Number.isInteger(stored) || stored < 0) {
    throw corruptError(location, `meta ${SCHEMA_VERSION_KEY} is ${JSON.stringify(stored)}, not a whole number`);
  }
  return stored;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
