/** Real LevelDB stores in temp dirs for store-level tests, closed and removed after each test. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { openStore, type OpenStoreOptions, type Store } from '../../src/store/open.js';

/**
 * Registers an `afterEach` that closes every store opened through the returned function and
 * removes its temp dir (`prefix` names the dirs). Reopening an existing `dataDir` keeps it (the
 * test that created it owns it).
 */
export function tempStores(prefix: string): (opts?: { dataDir?: string; options?: OpenStoreOptions; log?: Logger }) => Promise<{ store: Store; dataDir: string }> {
  const silent = createLogger('silent');
  let dirs: string[] = [];
  let stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    stores = [];
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    dirs = [];
  });
  return async (opts = {}) => {
    const dir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), prefix)));
    if (opts.dataDir === undefined) dirs.push(dir);
    const store = await openStore(dir, opts.log ?? silent, opts.options);
    stores.push(store);
    return { store, dataDir: dir };
  };
}
