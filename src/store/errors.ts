/**
 * `StoreError`: the one error type the store throws or rejects with, each with a stable `code`
 * and a message naming the data directory and what the operator can do.
 *
 * How classic-level (LevelDB) failures map onto codes was found by provoking each of them
 * (classic-level 3.0.0, level 10.0.0): a failed `open()` rejects with `LEVEL_DATABASE_NOT_OPEN`
 * whose `cause` carries the real reason:
 *
 * | cause                                             | situation                                        | code      |
 * |---------------------------------------------------|--------------------------------------------------|-----------|
 * | `LEVEL_LOCKED` "…/LOCK: already held by process"  | same directory opened twice in this process      | `locked`  |
 * | `LEVEL_LOCKED` "…/LOCK: Resource temporarily unavailable" | another process holds the LOCK           | `locked`  |
 * | `LEVEL_CORRUPTION` "CURRENT file does not end with newline" | garbage in CURRENT                     | `corrupt` |
 * | `LEVEL_CORRUPTION` "no meta-nextfile entry in descriptor"   | garbage in / truncated MANIFEST        | `corrupt` |
 * | `LEVEL_CORRUPTION` "N missing files; e.g.: …ldb"  | a table file deleted                             | `corrupt` |
 * | `LEVEL_IO_ERROR` "…/MANIFEST-…: No such file or directory" | CURRENT names a missing manifest        | `corrupt` |
 * | `EEXIST` "mkdir …"                                | the location is a file                           | `io`      |
 *
 * Corruption inside a table block is only found when read: reads then reject with
 * `LEVEL_CORRUPTION` directly (no `LEVEL_DATABASE_NOT_OPEN` wrapper).
 */

/** Stable codes. `locked`, `corrupt`, `too_new`, `io` and `migration_failed` come from
 * {@link openStore}; `overloaded` and `closed` from the batch writer. */
export type StoreErrorCode = 'locked' | 'corrupt' | 'too_new' | 'io' | 'migration_failed' | 'overloaded' | 'closed';

export interface StoreErrorOptions {
  /** The LevelDB directory concerned (`<dataDir>/db`), when there is one. */
  readonly location?: string;
  /** The underlying error (classic-level error, fs error, migration error). */
  readonly cause?: unknown;
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly location: string | undefined;

  constructor(code: StoreErrorCode, message: string, options: StoreErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.location = options.location;
  }
}

/** True when `err` is a {@link StoreError}, and, if `code` is given, has that code. */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

interface CodedError {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
}

function asCoded(value: unknown): CodedError {
  return typeof value === 'object' && value !== null ? (value as CodedError) : {};
}

/** The classic-level error that explains `err`: its `cause` for `LEVEL_DATABASE_NOT_OPEN`, else itself. */
function innermost(err: unknown): CodedError {
  const outer = asCoded(err);
  if (outer.code === 'LEVEL_DATABASE_NOT_OPEN' && outer.cause !== undefined) return asCoded(outer.cause);
  return outer;
}

function detail(err: CodedError): string {
  return typeof err.message === 'string' ? err.message : String(err);
}

/**
 * Maps an error from classic-level `open()` (or from a read during {@link openStore}) onto a
 * {@link StoreError} whose message names `location`. Never throws.
 */
export function storeErrorFromLevel(err: unknown, location: string): StoreError {
  const inner = innermost(err);
  const why = detail(inner);
  if (inner.code === 'LEVEL_LOCKED') {
    const here = /already held by process/i.test(why);
    return new StoreError(
      'locked',
      here
        ? `data dir ${location} is already open in this process (LevelDB LOCK held); close the other store first or use another DATA_DIR`
        : `data dir ${location} is in use by another process (LevelDB LOCK held); stop the other Tributary or use another DATA_DIR`,
      { location, cause: err },
    );
  }
  // CURRENT naming a manifest that does not exist is corruption, though LevelDB reports an IO error.
  const missingManifest =
    inner.code === 'LEVEL_IO_ERROR' && /MANIFEST-\d+: No such file or directory/.test(why) && why.includes(location);
  if (inner.code === 'LEVEL_CORRUPTION' || missingManifest) return corruptError(location, why, err);
  return new StoreError(
    'io',
    `cannot open data dir ${location}: ${why}; check that it is a writable directory on a healthy disk, or use another DATA_DIR`,
    { location, cause: err },
  );
}

/** A `corrupt` StoreError; `why` says what is wrong. The advice never suggests an automatic repair. */
export function corruptError(location: string, why: string, cause?: unknown): StoreError {
  return new StoreError(
    'corrupt',
    `data dir ${location} is corrupt (${why}); Tributary changed nothing there: stop, copy the directory somewhere safe, ` +
      `then restore it from a backup or move it aside to start empty`,
    cause === undefined ? { location } : { location, cause },
  );
}
