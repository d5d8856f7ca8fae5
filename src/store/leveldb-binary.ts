/**
 * Which native LevelDB binary classic-level loads, and which CRC32C it computes with.
 *
 * LevelDB computes a CRC32C over every byte it writes (the write-ahead log, then each table:
 * https://github.com/google/leveldb/blob/main/doc/log_format.md,
 * https://github.com/google/leveldb/blob/main/doc/table_format.md). classic-level's loader,
 * node-gyp-build (https://github.com/prebuild/node-gyp-build#usage), takes a binary built in the
 * package's `build/Release` before its prebuilt one, unless `PREBUILDS_ONLY` is set. The prebuilt
 * linux-x64 binary of classic-level 3.0.0 compiles LevelDB 1.20 without `LEVELDB_PLATFORM_POSIX_SSE`
 * (no `crc32` instruction in it), so its CRC32C is the portable table-driven one; `npm run
 * build:leveldb` (scripts/build-leveldb.mjs) builds one with the SSE4.2 CRC32C and records that in
 * `build/tributary-leveldb.json`.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The marker `npm run build:leveldb` writes into classic-level's `build/`. */
export const LEVELDB_BUILD_MARKER = 'tributary-leveldb.json';

export interface LevelDbBinary {
  /** `prebuilt`: the binary classic-level ships; `built`: one compiled in its `build/Release`. */
  readonly origin: 'prebuilt' | 'built';
  /**
   * `sse4.2`: the hardware CRC32C (a build by `npm run build:leveldb`); `portable`: the prebuilt
   * binary's table-driven one; `unknown`: a build made some other way.
   */
  readonly crc32c: 'sse4.2' | 'portable' | 'unknown';
  /** classic-level's package directory. */
  readonly packageDir: string;
}

/**
 * The binary classic-level loads from `packageDir` (default: the one this module resolves), by
 * node-gyp-build's rule: a `*.node` file in `build/Release`, unless `env.PREBUILDS_ONLY` is set,
 * else the prebuilt one. Reads the directory and the marker; never throws (an unreadable marker
 * reads as `unknown`).
 */
export function levelDbBinary(packageDir: string = classicLevelDir(), env: NodeJS.ProcessEnv = process.env): LevelDbBinary {
  const release = path.join(packageDir, 'build', 'Release');
  let built = false;
  if (env['PREBUILDS_ONLY'] === undefined || env['PREBUILDS_ONLY'] === '') {
    try {
      built = readdirSync(release).some((name) => name.endsWith('.node'));
    } catch {
      built = false;
    }
  }
  if (!built) return { origin: 'prebuilt', crc32c: 'portable', packageDir };
  const marker = path.join(packageDir, 'build', LEVELDB_BUILD_MARKER);
  let crc32c: LevelDbBinary['crc32c'] = 'unknown';
  if (existsSync(marker)) {
    try {
      const parsed = JSON.parse(readFileSync(marker, 'utf8')) as { crc32c?: unknown };
      if (parsed.crc32c === 'sse4.2') crc32c = 'sse4.2';
    } catch {
      crc32c = 'unknown';
    }
  }
  return { origin: 'built', crc32c, packageDir };
}

/** classic-level's package directory, as `level` resolves it. */
function classicLevelDir(): string {
  const fromLevel = createRequire(createRequire(import.meta.url).resolve('level'));
  return path.dirname(fromLevel.resolve('classic-level'));
}
