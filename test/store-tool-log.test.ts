/**
 * ToolLogRepository on real LevelDB, with a fixed set of ten entries whose figures are worked
 * out by hand: filters (alone, combined, lists), time ranges, newest-first paging, totals,
 * stats, the limit clamp, payload caps, id/time-key rules, the batch cost of a burst, and
 * retention by count, by age, in chunks, and on a timer.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { createLogger, type Logger } from '../src/log/logger.js';
import type { OpenStoreOptions, Store } from '../src/store/open.js';
import { openSublevel } from '../src/store/db.js';
import { MIGRATIONS, latestVersion } from '../src/store/migrations.js';
import { openStore } from '../src/store/open.js';
import { entryOfValue, type StoredToolLogEntry, type ToolLogEntry, type ToolLogFilter, type ToolLogInput, type ToolLogRecords } from '../src/store/tool-log.js';
import { unpackMultiple } from 'msgpackr';
import { INLINE_PAYLOAD_BYTES, RECORD_TAG, summaryOf } from '../src/store/tool-log-record.js';
import { tempStores } from './helpers/store.js';


const silent = createLogger('silent');
const openTemp = tempStores('trib-toollog-');
const freshStore = async (options: OpenStoreOptions = {}, log: Logger = silent): Promise<Store> => (await openTemp({ options: { batch: { windowMs: 2 }, ...options }, log })).store;

const BASE = Date.parse('2026-03-01T00:00:00.000Z');
const MIN = 60_000;

// i: client, tool, status, latency ms, cost USD, virtual key, surface; entry i is stamped BASE + i minutes
const ROWS: [string, string, 'success' | 'error', number, number, string | undefined, string][] = [
  ['alpha', 'echo', 'success', 10, 0.01, 'vk1', 'mcp'],
  ['alpha', 'add', 'error', 20, 0, undefined, 'rest'],
  ['beta', 'echo', 'success', 30, 0.02, 'vk1', 'mcp'],
  ['alpha', 'echo', 'success', 40, 0.01, 'vk2', 'ws'],
  ['beta', 'add', 'success', 50, 0.05, undefined, 'mcp'],
  ['alpha', 'echo', 'error', 60, 0, undefined, 'mcp'],
  ['gamma', 'echo', 'success', 70, 0.1, 'vk2', 'rest'],
  ['alpha', 'echo', 'success', 80, 0.01, 'vk1', 'mcp'],
  ['beta', 'echo', 'error', 90, 0, undefined, 'mcp'],
  ['alpha', 'add', 'success', 100, 0.03, undefined, 'ws'],
];

function input(i: number): ToolLogInput {
  const [client, tool, status, latency_ms, cost_usd, vk, surface] = ROWS[i] as (typeof ROWS)[number];
  return {
    client,
    tool,
    arguments: { i },
    result: status === 'success' ? { content: [{ type: 'text', text: `r${i}` }] } : null,
    status,
    ...(status === 'error' ? { error: `failed ${i}` } : {}),
    latency_ms,
    cost_usd,
    ...(vk !== undefined ? { virtual_key: vk } : {}),
    surface,
    timestamp: new Date(BASE + i * MIN).toISOString(),
  };
}

/** The ten entries appended in shuffled order (keys still sort by timestamp); returns them by index. */
async function seeded(store: Store): Promise<ToolLogEntry[]> {
  const order = [3, 7, 0, 9, 1, 5, 2, 8, 4, 6];
  const byIndex: ToolLogEntry[] = [];
  await Promise.all(order.map(async (i) => (byIndex[i] = await store.toolLog.append(input(i)))));
  return byIndex;
}

const indexOf = (e: ToolLogEntry): number => (e.arguments as { i: number }).i;

const rawRecords = (store: Store): ToolLogRecords => store.db.sublevel<string, Uint8Array>('toollog', { keyEncoding: 'utf8', valueEncoding: 'view' }) as ToolLogRecords;

describe('ToolLogRepository: append and round trip', () => {
  it('stores what append resolved with, exactly; id defaults to the time key; optional fields absent when unset', async () => {
    const store = await freshStore();
    const all = await seeded(store);
    const ok = all[0] as ToolLogEntry;
    const failed = all[1] as ToolLogEntry;
    expect(ok.id).toMatch(/^\d{15}-[0-9a-z]{12}$/);
    expect(ok.id.slice(0, 15)).toBe(String(BASE).padStart(15, '0'));
    expect('error' in ok).toBe(false);
    expect(failed).toMatchObject({ status: 'error', error: 'failed 1', arguments_truncated: false, result_truncated: false });
    expect('virtual_key' in failed).toBe(false);
    const { entries } = await store.toolLog.query({ limit: 100 });
    expect(entries).toHaveLength(10);
    for (const e of entries) expect(e).toStrictEqual(all[indexOf(e)]);
  });

  it('keeps a caller id; fills and normalises the timestamp; undefined payloads become null', async () => {
    const now = Date.parse('2026-05-05T05:05:05.005Z');
    const store = await freshStore({ toolLog: { now: () => now } });
    const { timestamp: _t, ...rest } = input(0);
    const a = await store.toolLog.append({ ...rest, id: 'call-123', arguments: undefined, result: undefined });
    expect(a).toMatchObject({ id: 'call-123', timestamp: '2026-05-05T05:05:05.005Z', arguments: null, result: null });
    const b = await store.toolLog.append({ ...input(0), timestamp: '2026-03-01T01:00:00+01:00' });
    expect(b.timestamp).toBe('2026-03-01T00:00:00.000Z');
    expect((await store.toolLog.query({ limit: 10 })).entries.map((e) => e.id)).toEqual(['call-123', b.id]);
  });

  it('orders entries of one ms newest-first by append order', async () => {
    const store = await freshStore();
    for (let k = 0; k < 5; k++) await store.toolLog.append({ ...input(0), arguments: { k } });
    const { entries } = await store.toolLog.query({ limit: 10 });
    expect(entries.map((e) => (e.arguments as { k: number }).k)).toEqual([4, 3, 2, 1, 0]);
  });

  it('caps arguments and results at maxPayloadBytes, flags them, and keeps a caller’s own cut', async () => {
    const store = await freshStore({ toolLog: { maxPayloadBytes: 64 } });
    const big = { text: 'x'.repeat(500) };
    const e = await store.toolLog.append({ ...input(0), arguments: big, result: { small: true } });
    expect(e.arguments_truncated).toBe(true);
    expect(e.arguments).toBe(JSON.stringify(big).slice(0, 64));
    expect(e.result).toEqual({ small: true });
    expect(e.result_truncated).toBe(false);
    // already cut by the caller (a JSON prefix flagged truncated): kept, not cut again
    const cut = JSON.stringify(big).slice(0, 60);
    const f = await store.toolLog.append({ ...input(0), arguments: cut, arguments_truncated: true });
    expect(f.arguments).toBe(cut);
    expect(f.arguments_truncated).toBe(true);
    const [stored] = (await store.toolLog.query({ limit: 1 })).entries;
    expect(stored).toStrictEqual(f);
  });

  it('stores one record per entry: the head decodes to the summary, the payloads are the MessagePack its cap measured', async () => {
    const store = await freshStore();
    const args = { deep: { list: [1, 'two', { three: null }] }, unicode: 'ü ✓ 😀' };
    const e = await store.toolLog.append({ ...input(0), arguments: args, trace_id: 'a'.repeat(32) });
    expect(e.arguments).toEqual(args);
    const raw = rawRecords(store);
    const [[key, value]] = (await raw.iterator().all()) as [[string, Uint8Array]];
    expect(await openSublevel<unknown>(store.db, 'toollog_sum').keys().all()).toEqual([]);
    expect(await openSublevel<unknown>(store.payloadDb, 'toollog_payload').keys().all()).toEqual([]);
    expect(value[0]).toBe(RECORD_TAG);
    expect(summaryOf(value)).toEqual(['alpha', 'echo', 1, 10, 0.01, 'vk1', 'mcp']);
    // after the two framed head arrays: the arguments and the result, one MessagePack value each
    const buf = Buffer.from(value);
    const detailsAt = 5 + buf.readUInt32LE(1);
    const payloadsAt = detailsAt + 4 + buf.readUInt32LE(detailsAt);
    expect(unpackMultiple(buf.subarray(payloadsAt))).toStrictEqual([args, input(0).result]);
    expect(key).toBe(e.id);
    expect(entryOfValue(value)).toStrictEqual(e);
  });

  it('payloads over INLINE_PAYLOAD_BYTES go to a second value under the same key: scans never read it, pages do, sweeps delete it', async () => {
    const store = await freshStore();
    const small = await store.toolLog.append({ ...input(0), arguments: { s: 'x'.repeat(100) } });
    const big = await store.toolLog.append({ ...input(2), arguments: { s: 'y'.repeat(INLINE_PAYLOAD_BYTES) } });
    const payloads = store.payloadDb.sublevel<string, Uint8Array>('toollog_payload', { keyEncoding: 'utf8', valueEncoding: 'view' });
    expect(await payloads.keys().all()).toEqual([big.id]);
    const [bigRecord] = await rawRecords(store).getMany([big.id]);
    expect((bigRecord as Uint8Array).length).toBeLessThan(200);
    expect(summaryOf(bigRecord as Uint8Array)).toEqual(['beta', 'echo', 1, 30, 0.02, 'vk1', 'mcp']);
    expect((await store.toolLog.query({ limit: 10 })).entries).toStrictEqual([big, small]);
    expect((await store.toolLog.query({ client: 'beta', limit: 10 })).entries).toStrictEqual([big]);
    expect((await store.toolLog.stats({ tool: 'echo' })).total_executions).toBe(2);
    expect(await store.toolLog.sweep({ maxEntries: 0 })).toBe(2);
    expect(await payloads.keys().all()).toEqual([]);
    expect(await rawRecords(store).keys().all()).toEqual([]);
  });

  it('reads entries of both earlier layouts (values; JSON text with payload_json) next to records, in queries, filters and stats', async () => {
    const store = await freshStore();
    const e = await store.toolLog.append({ ...input(0), arguments: { now: true } });
    const values = openSublevel<StoredToolLogEntry>(store.db, 'toollog');
    const asValues: ToolLogEntry = { ...e, id: 'old-values', arguments: { legacy: [1, 2] }, timestamp: new Date(BASE - 2 * MIN).toISOString() };
    const asText: StoredToolLogEntry = {
      ...e,
      id: 'old-text',
      client: 'beta',
      arguments: JSON.stringify({ text: -1 }),
      result: JSON.stringify('r'),
      payload_json: 1,
      timestamp: new Date(BASE - MIN).toISOString(),
    };
    await values.put(`${String(BASE - 2 * MIN).padStart(15, '0')}-old0`, asValues);
    await values.put(`${String(BASE - MIN).padStart(15, '0')}-old1`, asText);
    const page = await store.toolLog.query({ limit: 10 });
    expect(page.entries.map((x) => x.id)).toEqual([e.id, 'old-text', 'old-values']);
    expect(page.entries[2]).toStrictEqual(asValues);
    expect(page.entries[1]).toStrictEqual({ ...e, id: 'old-text', client: 'beta', arguments: { text: -1 }, result: 'r', timestamp: asText.timestamp });
    expect((await store.toolLog.query({ client: 'beta', limit: 10 })).entries.map((x) => x.id)).toEqual(['old-text']);
    expect(await store.toolLog.stats({ client: ['alpha', 'beta'] })).toMatchObject({ total_executions: 3, success_rate: 1 });
    expect(await store.toolLog.sweep({ maxEntries: 1 })).toBe(2);
    expect((await store.toolLog.query({ limit: 10 })).entries).toStrictEqual([e]);
  });

  it('migration 2 deletes the summaries of the two-put layout; its entries still read', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'trib-toollog-v1-'));
    try {
      const v1 = await openStore(dataDir, silent, { migrations: MIGRATIONS.slice(0, 1) });
      const values = openSublevel<StoredToolLogEntry>(v1.db, 'toollog');
      const summaries = openSublevel<unknown>(v1.db, 'toollog_sum');
      const olds: ToolLogEntry[] = [];
      for (let i = 0; i < 600; i++) {
        const { timestamp: _t, ...rest } = input(i % 10);
        const entry: ToolLogEntry = { ...rest, id: `old-${i}`, arguments: { i }, arguments_truncated: false, result_truncated: false, timestamp: new Date(BASE + i).toISOString() } as ToolLogEntry;
        const key = `${String(BASE + i).padStart(15, '0')}-${String(i).padStart(6, '0')}`;
        olds.push(entry);
        await v1.db.batch([
          { type: 'put', sublevel: values, key, value: entry },
          { type: 'put', sublevel: summaries, key, value: [entry.client, entry.tool, entry.status === 'success' ? 1 : 0, entry.latency_ms, entry.cost_usd, entry.virtual_key ?? null, entry.surface] },
        ] as never);
      }
      await v1.close();
      const v2 = await openStore(dataDir, silent);
      try {
        expect(v2.schemaVersion).toBe(latestVersion(MIGRATIONS));
        expect(await openSublevel<unknown>(v2.db, 'toollog_sum').keys().all()).toEqual([]);
        const page = await v2.toolLog.query({ limit: 3 });
        expect(page.total).toBe(600);
        expect(page.entries).toStrictEqual([olds[599], olds[598], olds[597]]);
        const alpha = olds.filter((o) => o.client === 'alpha');
        expect((await v2.toolLog.stats({ client: 'alpha' })).total_executions).toBe(alpha.length);
        const fresh = await v2.toolLog.append({ ...input(1), timestamp: new Date(BASE + 1000).toISOString() });
        expect((await v2.toolLog.query({ client: 'alpha', tool: 'add', status: 'error', limit: 1 })).entries).toStrictEqual([fresh]);
      } finally {
        await v2.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('rejects malformed input', async () => {
    const store = await freshStore();
    await expect(store.toolLog.append({ ...input(0), timestamp: 'yesterday' })).rejects.toThrow(RangeError);
    await expect(store.toolLog.append({ ...input(0), latency_ms: Number.NaN })).rejects.toThrow(TypeError);
    await expect(store.toolLog.append({ ...input(0), cost_usd: Number.POSITIVE_INFINITY })).rejects.toThrow(TypeError);
    await expect(store.toolLog.append({ ...input(0), status: 'ok' as never })).rejects.toThrow(TypeError);
    expect((await store.toolLog.query({ limit: 1 })).total).toBe(0);
  });

  it('a burst of N appends costs ≈ N/maxBatch batches (one op per entry)', async () => {
    const store = await freshStore({ batch: { windowMs: 10, maxBatch: 1000, maxBatchOps: 2000 } });
    const N = 3000;
    await Promise.all(Array.from({ length: N }, (_, i) => store.toolLog.append({ ...input(i % 10), arguments: { i } })));
    const c = store.writer.counters;
    expect(c.batches).toBeLessThanOrEqual(Math.ceil(N / 1000) + 2);
    expect(c.ops).toBe(N); // one record per entry
    expect((await store.toolLog.query({ limit: 0 })).total).toBe(N);
  });
});

describe('ToolLogRepository: query and stats with known figures', () => {
  it('pages newest first with totals', async () => {
    const store = await freshStore();
    await seeded(store);
    const page = async (limit: number, offset: number, f: ToolLogFilter = {}) => {
      const { entries, total } = await store.toolLog.query({ ...f, limit, offset });
      return { ids: entries.map(indexOf), total };
    };
    expect(await page(3, 0)).toEqual({ ids: [9, 8, 7], total: 10 });
    expect(await page(3, 3)).toEqual({ ids: [6, 5, 4], total: 10 });
    expect(await page(5, 9)).toEqual({ ids: [0], total: 10 });
    expect(await page(5, 10)).toEqual({ ids: [], total: 10 });
    expect(await page(0, 0)).toEqual({ ids: [], total: 10 });
    expect(await page(2, 1, { client: 'alpha' })).toEqual({ ids: [7, 5], total: 6 });
  });

  it.each<[string, ToolLogFilter, number[]]>([
    ['client', { client: 'alpha' }, [9, 7, 5, 3, 1, 0]],
    ['client list', { client: ['beta', 'gamma'] }, [8, 6, 4, 2]],
    ['tool', { tool: 'add' }, [9, 4, 1]],
    ['status error', { status: 'error' }, [8, 5, 1]],
    ['client + tool + status', { client: 'alpha', tool: 'echo', status: 'success' }, [7, 3, 0]],
    ['virtual key', { virtual_key: 'vk1' }, [7, 2, 0]],
    ['surface list', { surface: ['ws', 'rest'] }, [9, 6, 3, 1]],
    ['from/to inclusive (ISO)', { from: new Date(BASE + 2 * MIN).toISOString(), to: new Date(BASE + 5 * MIN).toISOString() }, [5, 4, 3, 2]],
    ['from/to (epoch ms) + client', { from: BASE + 2 * MIN, to: BASE + 5 * MIN, client: 'alpha' }, [5, 3]],
    ['to only', { to: BASE + MIN - 1 }, [0]],
    ['from only', { from: BASE + 9 * MIN }, [9]],
    ['from after to', { from: BASE + 5 * MIN, to: BASE + 2 * MIN }, []],
    ['no match', { client: 'nobody' }, []],
  ])('filter: %s', async (_label, filter, expected) => {
    const store = await freshStore();
    await seeded(store);
    const { entries, total } = await store.toolLog.query({ ...filter, limit: 100 });
    expect(entries.map(indexOf)).toEqual(expected);
    expect(total).toBe(expected.length);
  });

  it('stats: figures worked out by hand', async () => {
    const store = await freshStore();
    await seeded(store);
    const all = await store.toolLog.stats();
    expect(all.total_executions).toBe(10);
    expect(all.success_rate).toBe(0.7);
    expect(all.average_latency).toBe(55);
    expect(all.total_cost).toBeCloseTo(0.23, 12);

    const alpha = await store.toolLog.stats({ client: 'alpha' });
    expect(alpha.total_executions).toBe(6);
    expect(alpha.success_rate).toBeCloseTo(4 / 6, 12);
    expect(alpha.average_latency).toBeCloseTo(310 / 6, 12);
    expect(alpha.total_cost).toBeCloseTo(0.06, 12);

    expect(await store.toolLog.stats({ client: 'alpha', tool: 'echo' })).toMatchObject({ total_executions: 4, success_rate: 0.75, average_latency: 47.5 });
    const errors = await store.toolLog.stats({ status: 'error' });
    expect(errors).toMatchObject({ total_executions: 3, success_rate: 0, total_cost: 0 });
    expect(errors.average_latency).toBeCloseTo(170 / 3, 12);
    expect(await store.toolLog.stats({ from: BASE + 2 * MIN, to: BASE + 5 * MIN })).toMatchObject({ total_executions: 4, average_latency: 45 });
    expect(await store.toolLog.stats({ client: 'nobody' })).toEqual({ total_executions: 0, success_rate: 0, average_latency: 0, total_cost: 0 });
  });

  it('stats sums many small costs without drift', async () => {
    const store = await freshStore();
    await Promise.all(Array.from({ length: 1000 }, () => store.toolLog.append({ ...input(0), cost_usd: 0.1 })));
    expect((await store.toolLog.stats()).total_cost).toBe(100);
  });

  it('clamps limit to 1000 and refuses bad paging or times', async () => {
    const store = await freshStore();
    await Promise.all(Array.from({ length: 1200 }, (_, i) => store.toolLog.append({ ...input(i % 10), arguments: { i } })));
    const { entries, total } = await store.toolLog.query({ limit: 5000 });
    expect(entries).toHaveLength(1000);
    expect(total).toBe(1200);
    await expect(store.toolLog.query({ limit: -1 })).rejects.toThrow(RangeError);
    await expect(store.toolLog.query({ limit: 1.5 })).rejects.toThrow(RangeError);
    await expect(store.toolLog.query({ limit: 10, offset: -1 })).rejects.toThrow(RangeError);
    await expect(store.toolLog.query({ limit: 10, from: 'not a date' })).rejects.toThrow(RangeError);
    await expect(store.toolLog.stats({ to: 'nope' })).rejects.toThrow(RangeError);
  });
});

describe('ToolLogRepository: retention', () => {
  it('by count: keeps the newest maxEntries', async () => {
    const store = await freshStore();
    await seeded(store);
    expect(await store.toolLog.sweep({ maxEntries: 4 })).toBe(6);
    expect((await store.toolLog.query({ limit: 100 })).entries.map(indexOf)).toEqual([9, 8, 7, 6]);
    expect((await store.toolLog.stats()).total_executions).toBe(4);
    expect(await store.toolLog.sweep({ maxEntries: 4 })).toBe(0);
  });

  it('by age: drops entries stamped more than maxAgeMs before now (the boundary one stays)', async () => {
    const store = await freshStore();
    await seeded(store);
    expect(await store.toolLog.sweep({ maxAgeMs: 5 * MIN, now: BASE + 10 * MIN })).toBe(5);
    expect((await store.toolLog.query({ limit: 100 })).entries.map(indexOf)).toEqual([9, 8, 7, 6, 5]);
  });

  it('age then count, in small chunks', async () => {
    const store = await freshStore({ toolLog: { sweepChunk: 2 } });
    await seeded(store);
    expect(await store.toolLog.sweep({ maxAgeMs: 7 * MIN, now: BASE + 10 * MIN, maxEntries: 3 })).toBe(7);
    expect((await store.toolLog.query({ limit: 100 })).entries.map(indexOf)).toEqual([9, 8, 7]);
    expect(await store.toolLog.sweep({ maxEntries: 0 })).toBe(3);
    expect(await store.toolLog.stats()).toEqual({ total_executions: 0, success_rate: 0, average_latency: 0, total_cost: 0 });
  });

  it('startRetention sweeps at once and on its timer; stop() ends it', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    const store = await freshStore({}, log);
    await seeded(store);
    const stop = store.toolLog.startRetention({ maxEntries: 2 }, 20);
    await vi.waitFor(async () => expect((await store.toolLog.query({ limit: 0 })).total).toBe(2), { timeout: 2000, interval: 5 });
    await Promise.all([0, 1, 2].map((i) => store.toolLog.append(input(i))));
    await vi.waitFor(async () => expect((await store.toolLog.query({ limit: 0 })).total).toBe(2), { timeout: 2000, interval: 5 });
    expect(lines.some((l) => l['msg'] === 'tool log retention' && l['deleted'] === 8)).toBe(true);
    await stop();
    await Promise.all([3, 4, 5].map((i) => store.toolLog.append(input(i))));
    await new Promise((r) => setTimeout(r, 60)); // three intervals
    expect((await store.toolLog.query({ limit: 0 })).total).toBe(5);
  });

  it('refuses a bad interval', async () => {
    const store = await freshStore();
    expect(() => store.toolLog.startRetention({ maxEntries: 1 }, 0)).toThrow(RangeError);
  });
});
