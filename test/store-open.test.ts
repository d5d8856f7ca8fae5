/**
 * openStore against real LevelDB directories: fresh layout and schema version, persistence across
 * close/reopen, migrations (old version written by hand, resumable after a failure), `too_new`,
 * `locked` (same process, and a real child process holding the LOCK), `corrupt` (garbage in
 * CURRENT / MANIFEST, CURRENT missing, a corrupt table found by the first read) with the files
 * compared byte for byte afterwards, `io`, the sublevel accessor and close().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../src/log/logger.js';
import { encodeValue } from '../src/store/codec.js';
import { StoreError } from '../src/store/errors.js';
import { MIGRATIONS, SCHEMA_VERSION_KEY, latestVersion, type Migration } from '../src/store/migrations.js';
import { openStore, type Store } from '../src/store/open.js';

const silent = createLogger('silent');

function capture(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger('debug', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)), lines };
}

let dirs: string[] = [];
let stores: Store[] = [];
let children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  children = [];
  for (const s of stores) await s.close().catch(() => undefined);
  stores = [];
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'trib-open-'));
  dirs.push(d);
  return d;
}

async function open(dataDir: string, log: Logger = silent, options?: Parameters<typeof openStore>[2]): Promise<Store> {
  const s = await openStore(dataDir, log, options);
  stores.push(s);
  return s;
}

async function openError(dataDir: string, options?: Parameters<typeof openStore>[2]): Promise<StoreError> {
  try {
    const s = await openStore(dataDir, silent, options);
    stores.push(s);
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('openStore succeeded but was expected to fail');
}

/** Every file of a directory: name → bytes. */
async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) out.set(name, await readFile(path.join(dir, name)));
  return out;
}

/**
 * `after` has the same files with the same bytes as `before`, except that LevelDB may have rotated
 * its text info log (LOG → LOG.old, new LOG) on the open attempt: then LOG.old holds the old LOG exactly.
 */
function expectUntouched(before: Map<string, Buffer>, after: Map<string, Buffer>, logRotation: 'allowed' | 'none'): void {
  const data = (m: Map<string, Buffer>) => [...m.keys()].filter((n) => n !== 'LOG' && n !== 'LOG.old');
  expect(data(after)).toEqual(data(before));
  for (const name of data(before)) expect(after.get(name)?.equals(before.get(name) as Buffer), name).toBe(true);
  if (logRotation === 'none') {
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const name of ['LOG', 'LOG.old']) {
      if (before.has(name)) expect(after.get(name)?.equals(before.get(name) as Buffer), name).toBe(true);
    }
  } else if (before.has('LOG') && !after.get('LOG')?.equals(before.get('LOG') as Buffer)) {
    expect(after.get('LOG.old')?.equals(before.get('LOG') as Buffer), 'LOG rotated to LOG.old intact').toBe(true);
  }
}

/** A raw classic-level handle on `<dataDir>/db` with msgpack-encoded meta, for writing old layouts by hand. */
async function rawDb(dataDir: string): Promise<Level<string, Uint8Array>> {
  const db = new Level<string, Uint8Array>(path.join(dataDir, 'db'), { valueEncoding: 'view' });
  await db.open();
  return db;
}

const metaKey = (key: string): string => `!meta!${key}`;

function migration(version: number, up: Migration['up'], description = `to v${version}`): Migration {
  return { version, description, up };
}

const sampleRecord = (id: string, name: string) => ({
  config: { client_id: id, name: name as never, connection_type: 'inprocess' as const, inprocess_server: 'demo' },
  tool_pricing: { echo: 0.001 },
  vk_configs: [{ virtual_key_id: 'vk1', tools_to_execute: ['echo'] }],
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
});

describe('openStore: layout, versions, persistence', () => {
  it('creates missing directories and writes a fresh db at the current schema version', async () => {
    const dataDir = path.join(await tmp(), 'nested', 'deeper');
    const s = await open(dataDir);
    expect(s.location).toBe(path.join(dataDir, 'db'));
    expect(existsSync(path.join(dataDir, 'db', 'CURRENT'))).toBe(true);
    expect(s.schemaVersion).toBe(latestVersion(MIGRATIONS));
    expect(await s.meta.get(SCHEMA_VERSION_KEY)).toBe(latestVersion(MIGRATIONS));
  });

  it('keeps clients, seeded names, tool log entries and extra sublevels across close/reopen', async () => {
    const dataDir = await tmp();
    const s1 = await open(dataDir);
    await s1.clients.put(sampleRecord('id-1', 'alpha'));
    await s1.clients.setSeeded(['alpha']);
    const entry = await s1.toolLog.append({
      client: 'alpha',
      tool: 'echo',
      arguments: { text: 'hi' },
      result: { content: [] },
      status: 'success',
      latency_ms: 3,
      cost_usd: 0.001,
      surface: 'mcp',
    });
    const events = s1.sublevel<{ n: number }>('events');
    expect(s1.sublevel('events')).toBe(events);
    await events.put('e1', { n: 1 });
    await s1.close();

    const s2 = await open(dataDir);
    expect(await s2.clients.get('id-1')).toStrictEqual(sampleRecord('id-1', 'alpha'));
    expect(await s2.clients.getSeeded()).toEqual(['alpha']);
    expect((await s2.toolLog.query({ limit: 10 })).entries).toStrictEqual([entry]);
    expect(await s2.sublevel<{ n: number }>('events').get('e1')).toEqual({ n: 1 });
    expect(s2.schemaVersion).toBe(latestVersion(MIGRATIONS));
  });

  it('runs the missing migrations in order on an older version written by hand, recording each', async () => {
    const dataDir = await tmp();
    // a "version 1" store by hand: schema_version 1 and a legacy sublevel with raw values
    const raw = await rawDb(dataDir);
    await raw.put(metaKey(SCHEMA_VERSION_KEY), encodeValue(1));
    await raw.put('!legacy!a', encodeValue({ old: 'A' }));
    await raw.close();

    const ran: number[] = [];
    const { log, lines } = capture();
    const migrations: Migration[] = [
      migration(1, async () => void ran.push(1)),
      migration(2, async (ctx) => {
        ran.push(2);
        expect(await ctx.meta.get(SCHEMA_VERSION_KEY)).toBe(1);
        const legacy = ctx.sublevel<{ old: string }>('legacy');
        const renamed = ctx.sublevel<{ value: string }>('renamed');
        for await (const [k, v] of legacy.iterator()) await renamed.put(k, { value: v.old.toLowerCase() });
        await legacy.clear();
      }),
      migration(4, async (ctx) => {
        ran.push(4);
        expect(await ctx.meta.get(SCHEMA_VERSION_KEY)).toBe(2);
      }),
    ];
    const s = await open(dataDir, log, { migrations });
    expect(ran).toEqual([2, 4]);
    expect(s.schemaVersion).toBe(4);
    expect(await s.meta.get(SCHEMA_VERSION_KEY)).toBe(4);
    expect(await s.sublevel<{ value: string }>('renamed').get('a')).toEqual({ value: 'a' });
    expect(await s.sublevel('legacy').keys().all()).toEqual([]);
    expect(lines.filter((l) => l['msg'] === 'store migration').map((l) => [l['from'], l['to']])).toEqual([
      [1, 2],
      [2, 4],
    ]);
    await s.close();
    // reopening runs nothing
    ran.length = 0;
    const again = await open(dataDir, silent, { migrations });
    expect(ran).toEqual([]);
    expect(again.schemaVersion).toBe(4);
  });

  it('a failed migration leaves the version at the last success; the next start resumes there', async () => {
    const dataDir = await tmp();
    const first = await open(dataDir, silent, { migrations: [migration(1, async () => {})] });
    await first.close();

    const ran: number[] = [];
    const broken = [
      migration(1, async () => void ran.push(1)),
      migration(2, async () => void ran.push(2)),
      migration(3, async () => {
        ran.push(3);
        throw new Error('boom');
      }, 'split clients'),
    ];
    const err = await openError(dataDir, { migrations: broken });
    expect(err.code).toBe('migration_failed');
    expect(err.message).toContain(path.join(dataDir, 'db'));
    expect(err.message).toMatch(/schema version 3 \(split clients\) failed: boom; the data stays at version 2/);
    expect(ran).toEqual([2, 3]);

    ran.length = 0;
    const fixed = [...broken.slice(0, 2), migration(3, async () => void ran.push(3))];
    const s = await open(dataDir, silent, { migrations: fixed });
    expect(ran).toEqual([3]);
    expect(s.schemaVersion).toBe(3);
  });

  it('treats a non-empty db without a version as version 0 and runs every migration', async () => {
    const dataDir = await tmp();
    const raw = await rawDb(dataDir);
    await raw.put('!clients!x', encodeValue({ seq: 0, record: sampleRecord('x', 'x') }));
    await raw.close();
    const ran: number[] = [];
    const s = await open(dataDir, silent, { migrations: [migration(1, async () => void ran.push(1)), migration(2, async () => void ran.push(2))] });
    expect(ran).toEqual([1, 2]);
    expect(s.schemaVersion).toBe(2);
  });

  it('refuses a NEWER schema version with `too_new`, changing nothing', async () => {
    const dataDir = await tmp();
    const raw = await rawDb(dataDir);
    await raw.put(metaKey(SCHEMA_VERSION_KEY), encodeValue(7));
    await raw.put('!clients!x', encodeValue({ seq: 0, record: sampleRecord('x', 'x') }));
    await raw.close();

    const err = await openError(dataDir);
    expect(err.code).toBe('too_new');
    expect(err.location).toBe(path.join(dataDir, 'db'));
    expect(err.message).toBe(
      `data dir ${path.join(dataDir, 'db')} has schema version 7, newer than this Tributary understands (${latestVersion(MIGRATIONS)}); run a newer Tributary on it, or use another DATA_DIR`,
    );
    const check = await rawDb(dataDir); // the failed open released the LOCK
    expect(await check.get(metaKey(SCHEMA_VERSION_KEY))).toEqual(encodeValue(7));
    expect(await check.keys().all()).toEqual(['!clients!x', metaKey(SCHEMA_VERSION_KEY)]);
    await check.close();
  });

  it('refuses a malformed schema version as `corrupt`, and a malformed migration list with RangeError', async () => {
    const dataDir = await tmp();
    const raw = await rawDb(dataDir);
    await raw.put(metaKey(SCHEMA_VERSION_KEY), encodeValue('two'));
    await raw.close();
    expect((await openError(dataDir)).code).toBe('corrupt');
    await expect(openStore(await tmp(), silent, { migrations: [migration(2, async () => {}), migration(1, async () => {})] })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('openStore: locked data dir', () => {
  it('(a) opened twice in one process: `locked`, the first store unaffected, reopen after close works', async () => {
    const dataDir = await tmp();
    const s1 = await open(dataDir);
    await s1.clients.put(sampleRecord('id-1', 'alpha'));
    const before = await snapshot(s1.location);

    const err = await openError(dataDir);
    expect(err.code).toBe('locked');
    expect(err.location).toBe(s1.location);
    expect(err.message).toBe(
      `data dir ${s1.location} is already open in this process (LevelDB LOCK held); close the other store first or use another DATA_DIR`,
    );
    // refused before LevelDB was called: not even LOG was rotated
    expectUntouched(before, await snapshot(s1.location), 'none');
    expect(await s1.clients.get('id-1')).toBeDefined();
    await s1.close();
    const s2 = await open(dataDir);
    expect(await s2.clients.get('id-1')).toBeDefined();
  });

  it('(b) held by another process: `locked` naming the dir; the other process’s data intact', async () => {
    const dataDir = await tmp();
    const location = path.join(dataDir, 'db');
    const levelPath = createRequire(import.meta.url).resolve('level');
    const script = `
      const { Level } = require(${JSON.stringify(levelPath)});
      (async () => {
        const db = new Level(${JSON.stringify(location)});
        await db.open();
        await db.put('child', 'data-from-child');
        process.stdout.write('ready\\n');
        setInterval(() => {}, 1000);
      })().catch((e) => { console.error(e); process.exit(2); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    const before = await snapshot(location);

    const err = await openError(dataDir);
    expect(err.code).toBe('locked');
    expect(err.location).toBe(location);
    expect(err.message).toBe(
      `data dir ${location} is in use by another process (LevelDB LOCK held); stop the other Tributary or use another DATA_DIR`,
    );
    expect((err.cause as { cause?: { code?: string } }).cause?.code).toBe('LEVEL_LOCKED');
    expectUntouched(before, await snapshot(location), 'allowed');

    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const raw = new Level(location);
    await raw.open();
    expect(await raw.get('child')).toBe('data-from-child');
    expect(await raw.keys().all()).toEqual(['child']); // openStore wrote nothing
    await raw.close();
  });
});

describe('openStore: corrupt data dir (never repaired, files left as they were)', () => {
  /** A closed store with some data; returns its location. */
  async function closedStore(dataDir: string, reopenOnce = false): Promise<string> {
    const s = await openStore(dataDir, silent);
    for (let i = 0; i < 20; i++) await s.clients.put(sampleRecord(`id-${i}`, `c${i}`));
    await s.close();
    if (reopenOnce) await (await openStore(dataDir, silent)).close(); // turns the write-ahead log into a table file
    return s.location;
  }

  it.each([
    ['garbage without newline in CURRENT', 'garbage', /CURRENT file does not end with newline/],
    ['CURRENT naming a missing manifest', 'MANIFEST-999999\n', /MANIFEST-999999: No such file or directory/],
    ['an empty CURRENT', '', /CURRENT file does not end with newline/],
  ])('%s → `corrupt`', async (_label, content, detail) => {
    const dataDir = await tmp();
    const location = await closedStore(dataDir);
    await writeFile(path.join(location, 'CURRENT'), content);
    const before = await snapshot(location);

    const err = await openError(dataDir);
    expect(err.code).toBe('corrupt');
    expect(err.location).toBe(location);
    expect(err.message).toMatch(new RegExp(`^data dir ${location} is corrupt \\(`));
    expect(err.message).toMatch(detail);
    expect(err.message).toMatch(/Tributary changed nothing there/);
    expectUntouched(before, await snapshot(location), 'allowed');
    // and again: still corrupt (not `locked`: the failed attempt released everything)
    expect((await openError(dataDir)).code).toBe('corrupt');
  });

  it('garbage over the MANIFEST → `corrupt`', async () => {
    const dataDir = await tmp();
    const location = await closedStore(dataDir);
    const manifest = (await readdir(location)).find((n) => n.startsWith('MANIFEST-')) as string;
    await writeFile(path.join(location, manifest), Buffer.alloc(300, 0x5a));
    const before = await snapshot(location);
    const err = await openError(dataDir);
    expect(err.code).toBe('corrupt');
    expect(err.message).toMatch(/Corruption: /);
    expectUntouched(before, await snapshot(location), 'allowed');
  });

  it('CURRENT deleted beside LevelDB files → `corrupt` before LevelDB runs (it would start empty and delete the tables)', async () => {
    const dataDir = await tmp();
    const location = await closedStore(dataDir, true);
    await rm(path.join(location, 'CURRENT'));
    const before = await snapshot(location);
    expect([...before.keys()].some((n) => n.endsWith('.ldb'))).toBe(true);
    const err = await openError(dataDir);
    expect(err.code).toBe('corrupt');
    expect(err.message).toMatch(/no CURRENT file/);
    expectUntouched(before, await snapshot(location), 'none');
  });

  it('a corrupt table block found by the first read during open → `corrupt`', async () => {
    const dataDir = await tmp();
    const location = await closedStore(dataDir, true);
    const tables = (await readdir(location)).filter((n) => n.endsWith('.ldb'));
    expect(tables.length).toBeGreaterThan(0);
    for (const t of tables) {
      const bytes = await readFile(path.join(location, t));
      bytes.fill(0x42); // footer included: "not an sstable (bad magic number)" on the first read
      await writeFile(path.join(location, t), bytes);
    }
    const before = await snapshot(location);
    const err = await openError(dataDir);
    expect(err.code).toBe('corrupt');
    expect(err.message).toMatch(/Corruption: /);
    // LevelDB cannot see a bad table at open(): its open succeeds and does its usual bookkeeping
    // (a new MANIFEST, a fresh empty write-ahead log) before our first read finds the damage.
    // Every table file is still there, byte for byte.
    const after = await snapshot(location);
    for (const t of tables) expect(after.get(t)?.equals(before.get(t) as Buffer), t).toBe(true);
    expect([...after.keys()].filter((n) => n.endsWith('.ldb'))).toEqual(tables);
  });
});

describe('openStore: io errors and lifecycle', () => {
  it('`io` when <dataDir>/db is a file; the file is left alone', async () => {
    const dataDir = await tmp();
    await writeFile(path.join(dataDir, 'db'), 'not a database');
    const err = await openError(dataDir);
    expect(err.code).toBe('io');
    expect(err.message).toContain(path.join(dataDir, 'db'));
    expect(await readFile(path.join(dataDir, 'db'), 'utf8')).toBe('not a database');
  });

  it('`io` when the data dir cannot be created', async () => {
    const parent = await tmp();
    await writeFile(path.join(parent, 'file'), 'x');
    const err = await openError(path.join(parent, 'file', 'sub'));
    expect(err.code).toBe('io');
    expect(err.message).toContain(path.join(parent, 'file', 'sub', 'db'));
  });

  it('sublevel(): one instance per name; refuses reserved and malformed names', async () => {
    const s = await open(await tmp());
    expect(s.sublevel('keys')).toBe(s.sublevel('keys'));
    expect(() => s.sublevel('meta')).toThrow(/reserved/);
    expect(() => s.sublevel('toollog')).toThrow(RangeError);
    expect(() => s.sublevel('Bad!name')).toThrow(RangeError);
  });

  it('close() is idempotent, flushes pending tool-log appends, and later writes fail `closed`', async () => {
    const dataDir = await tmp();
    const s = await openStore(dataDir, silent, { batch: { windowMs: 1000 } });
    const appended = s.toolLog.append({
      client: 'a',
      tool: 't',
      arguments: null,
      result: null,
      status: 'success',
      latency_ms: 1,
      cost_usd: 0,
      surface: 'rest',
    });
    await Promise.all([s.close(), s.close()]);
    await expect(appended).resolves.toMatchObject({ client: 'a' });
    await expect(
      s.toolLog.append({ client: 'a', tool: 't', arguments: null, result: null, status: 'success', latency_ms: 1, cost_usd: 0, surface: 'rest' }),
    ).rejects.toMatchObject({ code: 'closed' });
    const s2 = await open(dataDir);
    expect((await s2.toolLog.query({ limit: 5 })).total).toBe(1);
  });

  it('mkdir of a parent that exists is fine (dataDir already present and empty)', async () => {
    const dataDir = await tmp();
    await mkdir(path.join(dataDir, 'db'));
    const s = await open(dataDir);
    expect(s.schemaVersion).toBe(latestVersion(MIGRATIONS));
  });

  it('LevelDB tuning reaches LevelDB: 12 MB of writes stay in a 32 MiB memtable (no table file), a 1 MiB memtable writes tables', async () => {
    /** Writes 12 MB as 3,000 values of 4 KiB through the store's root database, then lists level tables. */
    const tablesAfterWrites = async (s: Store): Promise<number> => {
      const value = new Uint8Array(4096).fill(7);
      for (let b = 0; b < 30; b++) {
        const batch = s.db.batch();
        for (let i = 0; i < 100; i++) batch.put(`tuning!${String(b * 100 + i).padStart(6, '0')}`, value);
        await batch.write();
      }
      // a level-0 table is written by LevelDB's background thread after the memtable fills: wait for it
      for (let i = 0; i < 50; i++) {
        const n = (await readdir(s.location)).filter((f) => f.endsWith('.ldb')).length;
        if (n > 0) return n;
        await new Promise((r) => setTimeout(r, 20));
      }
      return 0;
    };
    expect(await tablesAfterWrites(await open(await tmp()))).toBe(0);
    expect(await tablesAfterWrites(await open(await tmp(), silent, { leveldb: { writeBufferSize: 1024 * 1024 } }))).toBeGreaterThan(0);
  });
});

describe('openStore: LevelDB options', () => {
  /** Table bytes (`*.ldb`) in `dir`. */
  async function tableBytes(dir: string): Promise<number> {
    let total = 0;
    for (const name of await readdir(dir)) if (name.endsWith('.ldb')) total += (await readFile(path.join(dir, name))).length;
    return total;
  }
  const compressible = (i: number): { text: string } => ({ text: `entry ${i}: ` + 'the quick brown fox jumps over the lazy dog; '.repeat(130) });
  async function appendAll(s: Store, from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      await s.toolLog.append({ client: 'alpha', tool: 'echo', arguments: compressible(i), result: { content: [{ type: 'text', text: compressible(i).text }] }, status: 'success', latency_ms: i, cost_usd: 0, surface: 'mcp' });
    }
  }
  async function texts(s: Store): Promise<string[]> {
    const page = await s.toolLog.query({ limit: 1000 });
    return page.entries.map((e) => (e.arguments as { text: string }).text).sort();
  }
  const expected = (n: number): string[] => Array.from({ length: n }, (_, i) => compressible(i).text).sort();
  // a 64 KiB memtable: the ~12 KiB of payload per entry reaches tables within a few dozen entries
  const small = { writeBufferSize: 64 * 1024 };

  it('`compression: false` writes the tables uncompressed; data written either way reads back with either setting', async () => {
    const on = await tmp();
    const off = await tmp();
    const { log, lines } = capture();
    const a = await open(on, log, { leveldb: { ...small, compression: true } });
    const b = await open(off, silent, { leveldb: { ...small, compression: false } });
    await appendAll(a, 0, 80);
    await appendAll(b, 0, 80);
    await Promise.all([a.close(), b.close()]);
    const [onBytes, offBytes] = [await tableBytes(path.join(on, 'db_payloads')), await tableBytes(path.join(off, 'db_payloads'))];
    expect(onBytes).toBeGreaterThan(0);
    expect(offBytes).toBeGreaterThan(onBytes * 3);
    // the store says which LevelDB binary and CRC32C it runs
    expect(lines.find((l) => l['msg'] === 'store open')).toMatchObject({ leveldb_binary: expect.stringMatching(/^(prebuilt|built)$/), leveldb_crc32c: expect.stringMatching(/^(portable|sse4\.2|unknown)$/) });

    // compressed tables, reopened without compression, then more written and reopened with it
    const a2 = await open(on, silent, { leveldb: { ...small, compression: false } });
    expect(await texts(a2)).toEqual(expected(80));
    await appendAll(a2, 80, 120);
    await a2.close();
    const a3 = await open(on, silent, { leveldb: { ...small, compression: true } });
    expect(await texts(a3)).toEqual(expected(120));
    // and the uncompressed ones with compression back on (the default)
    const b2 = await open(off, silent);
    expect(await texts(b2)).toEqual(expected(80));
  });
});
