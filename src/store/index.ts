/**
 * The LevelDB store: `openStore` and the repositories it returns.
 * Imports nothing from `handlers` or `server` (dependency-cruiser rule).
 */
export { openStore, RESERVED_SUBLEVELS, type OpenStoreOptions, type Store } from './open.js';
export { StoreError, isStoreError, type StoreErrorCode } from './errors.js';
export { msgpackCodec, encodeValue, decodeValue, type MsgpackCodec } from './codec.js';
export { openSublevel, type RootDb, type Sublevel } from './db.js';
export {
  BatchWriter,
  batchWindows,
  commitOps,
  delOp,
  levelBatchCommit,
  putOp,
  type BatchCommit,
  type BatchOp,
  type BatchWriterCounters,
  type BatchWriterOptions,
} from './batcher.js';
export { MIGRATIONS, SCHEMA_VERSION_KEY, type Migration, type MigrationContext } from './migrations.js';
export { ClientRepository, SEEDED_CLIENTS_KEY, type ClientRecord, type VkConfig } from './clients.js';
export {
  MAX_QUERY_LIMIT,
  ToolLogRepository,
  type RetentionOptions,
  type SweepOptions,
  type ToolLogEntry,
  type ToolLogFilter,
  type ToolLogInput,
  type ToolLogOptions,
  type ToolLogPage,
  type ToolLogQuery,
  type ToolLogStats,
} from './tool-log.js';
export { DEFAULT_PAYLOAD_CAP_BYTES, capPayload, type CappedPayload } from './cap-payload.js';
export { TimeKeyGenerator } from './time-key.js';
