/**
 * LevelDB's native binary: which one classic-level loads (`levelDbBinary`, checked against
 * node-gyp-build's own choice and on real directory layouts), and that a database written by one
 * binary reads back whole with the other — the prebuilt one (portable CRC32C, forced with
 * `PREBUILDS_ONLY`) and the one this checkout loads (SSE4.2 CRC32C after `npm run build:leveldb`,
 * as CI runs it). Each write ends without a close, so the reader replays the writer's
 * write-ahead log, which LevelDB checks record by record against its CRC32C and drops on a
 * mismatch; and the writer's small memtable makes it write tables too, each block with its CRC.
 * A last case changes one byte in a log and sees the record dropped: the check is live.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LEVELDB_BUILD_MARKER, levelDbBinary } from '../src/store/leveldb-binary.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const dirs: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A classic-level package directory laid out as node-gyp-build reads it. */
function fakePackage(opts: { built?: boolean; marker?: string }): string {
  const dir = tempDir('trib-ldb-pkg-');
  mkdirSync(path.join(dir, 'prebuilds', 'linux-x64'), { recursive: true });
  writeFileSync(path.join(dir, 'prebuilds', 'linux-x64', 'classic-level.node'), '');
  if (opts.built === true) {
    mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
    writeFileSync(path.join(dir, 'build', 'Release', 'classic_level.node'), '');
  }
  if (opts.marker !== undefined) {
    mkdirSync(path.join(dir, 'build'), { recursive: true });
    writeFileSync(path.join(dir, 'build', LEVELDB_BUILD_MARKER), opts.marker);
  }
  return dir;
}

describe('levelDbBinary', () => {
  it('names the prebuilt binary, a marked SSE4.2 build, and an unmarked build', () => {
    expect(levelDbBinary(fakePackage({}), {})).toMatchObject({ origin: 'prebuilt', crc32c: 'portable' });
    expect(levelDbBinary(fakePackage({ built: true, marker: JSON.stringify({ crc32c: 'sse4.2' }) }), {})).toMatchObject({ origin: 'built', crc32c: 'sse4.2' });
    expect(levelDbBinary(fakePackage({ built: true }), {})).toMatchObject({ origin: 'built', crc32c: 'unknown' });
    expect(levelDbBinary(fakePackage({ built: true, marker: '{not json' }), {})).toMatchObject({ origin: 'built', crc32c: 'unknown' });
    expect(levelDbBinary(fakePackage({ built: true, marker: JSON.stringify({ crc32c: 'other' }) }), {})).toMatchObject({ crc32c: 'unknown' });
  });

  it('follows node-gyp-build: a marker without a built binary, and PREBUILDS_ONLY, mean the prebuilt one', () => {
    expect(levelDbBinary(fakePackage({ marker: JSON.stringify({ crc32c: 'sse4.2' }) }), {})).toMatchObject({ origin: 'prebuilt', crc32c: 'portable' });
    const built = fakePackage({ built: true, marker: JSON.stringify({ crc32c: 'sse4.2' }) });
    expect(levelDbBinary(built, { PREBUILDS_ONLY: '1' })).toMatchObject({ origin: 'prebuilt' });
    expect(levelDbBinary(built, { PREBUILDS_ONLY: '' })).toMatchObject({ origin: 'built' });
  });

  it("agrees with node-gyp-build's own choice in this checkout", () => {
    const info = levelDbBinary();
    const loaderPath = (createRequire(path.join(info.packageDir, 'index.js'))('node-gyp-build') as { path(dir: string): string }).path(info.packageDir);
    expect(loaderPath.includes(`${path.sep}build${path.sep}Release${path.sep}`)).toBe(info.origin === 'built');
    if (info.origin === 'built') {
      // a build by `npm run build:leveldb` says so
      const marker = JSON.parse(readFileSync(path.join(info.packageDir, 'build', LEVELDB_BUILD_MARKER), 'utf8')) as { crc32c: string };
      expect(info.crc32c).toBe(marker.crc32c);
    }
  });
});

const VALUE_BYTES = 6000;

/**
 * Runs `script` in a child node (cwd: the repository, so `classic-level` resolves) with
 * `PREBUILDS_ONLY` set or not; returns its stdout. The script sees `DIR`, `WRITER`, `COUNT`.
 */
function child(script: string, env: Record<string, string>, prebuiltOnly: boolean): string {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (prebuiltOnly) childEnv['PREBUILDS_ONLY'] = '1';
  else delete childEnv['PREBUILDS_ONLY'];
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: childEnv, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`child failed (${String(r.status)}): ${r.stderr}`);
  return r.stdout;
}

const PAD = `const value = (w, i) => (w + ':' + i + ':').padEnd(${VALUE_BYTES}, String.fromCharCode(97 + (i % 26)));`;

/** Writes COUNT keys (memtable 64 KiB, so tables are written too) and exits without closing. */
const WRITE = `import { ClassicLevel } from 'classic-level';
${PAD}
const db = new ClassicLevel(process.env.DIR, { valueEncoding: 'utf8' });
await db.open({ writeBufferSize: 64 * 1024 });
const n = Number(process.env.COUNT);
for (let i = 0; i < n; i += 50) {
  const batch = db.batch();
  for (let j = i; j < Math.min(n, i + 50); j++) batch.put(process.env.WRITER + '-' + String(j).padStart(6, '0'), value(process.env.WRITER, j));
  await batch.write();
}
process.exit(0);`;

/** Prints every key and whether its value is the one the writer wrote, as JSON. */
const READ = `import { ClassicLevel } from 'classic-level';
${PAD}
const db = new ClassicLevel(process.env.DIR, { valueEncoding: 'utf8' });
await db.open();
const out = { keys: 0, wrong: [] };
for await (const [key, v] of db.iterator()) {
  out.keys++;
  const [w, i] = key.split('-');
  if (v !== value(w, Number(i))) out.wrong.push(key);
}
await db.close();
process.stdout.write(JSON.stringify(out));`;

describe('a database written by one LevelDB binary reads back whole with the other', () => {
  const COUNT = 400; // 2.4 MB: several 64 KiB memtables written out as tables, and a log to replay

  for (const [writerPrebuilt, readerPrebuilt] of [
    [true, false],
    [false, true],
  ] as const) {
    const name = (prebuilt: boolean): string => (prebuilt ? 'the prebuilt binary' : "this checkout's binary");
    it(`written by ${name(writerPrebuilt)} (killed before close), read by ${name(readerPrebuilt)}`, () => {
      const dir = tempDir('trib-ldb-cross-');
      child(WRITE, { DIR: dir, WRITER: 'w', COUNT: String(COUNT) }, writerPrebuilt);
      const files = readdirSync(dir);
      expect(files.some((f) => f.endsWith('.ldb'))).toBe(true);
      expect(files.some((f) => f.endsWith('.log'))).toBe(true);
      const read = JSON.parse(child(READ, { DIR: dir }, readerPrebuilt)) as { keys: number; wrong: string[] };
      expect(read).toEqual({ keys: COUNT, wrong: [] });
    });
  }

  it("drops a log record whose bytes changed after it was written (LevelDB checks the log's CRC32C at replay)", () => {
    const dir = tempDir('trib-ldb-flip-');
    // a 64 KiB memtable and 50 records per batch: the last batches are still in the log only
    child(WRITE, { DIR: dir, WRITER: 'w', COUNT: String(COUNT) }, false);
    // the current log (the highest number; an older one may still be on disk, already in a table,
    // when the writer exits during a memtable flush) holds at least the last batch
    const logs = readdirSync(dir).filter((f) => f.endsWith('.log'));
    const newest = logs.sort((a, b) => Number.parseInt(b, 10) - Number.parseInt(a, 10))[0];
    if (newest === undefined) throw new Error('no write-ahead log');
    const log = path.join(dir, newest);
    const bytes = readFileSync(log);
    expect(bytes.length).toBeGreaterThan(1000);
    // a byte inside the last record's value (well past its 7-byte header)
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
    writeFileSync(log, bytes);
    const read = JSON.parse(child(READ, { DIR: dir }, false)) as { keys: number; wrong: string[] };
    expect(read.wrong).toEqual([]);
    expect(read.keys).toBeLessThan(COUNT);
  });
});
