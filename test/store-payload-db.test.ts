/**
 * The tool log's payload database (schema version 5): payloads over 1 KiB live in a LevelDB
 * database of their own beside the store's, so each appends to one key range. Tested here: the
 * migration that moves `toollog_payload` out of the store's database (existing data keeps reading,
 * in chunks, resumable), `commitOps` over two databases, a record whose payload value is missing
 * (a crash between the two writes) reading as cut to nothing (fast-check over the record's
 * fields), payloads left without their record deleted at open, and retention deleting both.
 */
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitOps, putBytesOp, putOp } from '../src/store/batcher.js';
import { capPayloadPacked } from '../src/store/cap-payload.js';
import { openSublevel, type RootDb } from '../src/store/db.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import { PAYLOAD_DB_DIR, type Store } from '../src/store/open.js';
import { entryOfValue, type ToolLogEntry } from '../src/store/tool-log.js';
import { INLINE_PAYLOAD_BYTES, encodeRecord, summaryOf, type ToolLogRecordFields } from '../src/store/tool-log-record.js';
import { tempStores } from './helpers/store.js';

const openTemp = tempStores('trib-payload-db-');
const BASE = Date.parse('2026-03-01T00:00:00.000Z');

const raw = (db: RootDb, name: string) => db.sublevel<string, Uint8Array>(name, { keyEncoding: 'utf8', valueEncoding: 'view' });

/** Record fields of an entry with these payloads (uncapped for the sizes used here). */
function fields(i: number, args: unknown, result: unknown): ToolLogRecordFields {
  const a = capPayloadPacked(args, 1 << 20);
  const aBytes = Buffer.from(a.bytes);
  const r = capPayloadPacked(result, 1 << 20);
  return {
    id: `call-${i}`,
    client: 'alpha',
    tool: 'echo',
    arguments: aBytes,
    arguments_truncated: a.truncated,
    result: Buffer.from(r.bytes),
    result_truncated: r.truncated,
    status: 'success',
    latency_ms: i,
    cost_usd: 0,
    surface: 'mcp',
    timestamp: new Date(BASE + i).toISOString(),
  };
}

const keyOf = (i: number): string => `${String(BASE + i).padStart(15, '0')}-${String(i).padStart(8, '0')}abcd`;

describe('the payload database', () => {
  it('appends put payloads over INLINE_PAYLOAD_BYTES in DATA_DIR/db_payloads; pages read them, retention deletes both', async () => {
    const { store, dataDir } = await openTemp();
    expect(store.schemaVersion).toBe(MIGRATIONS.at(-1)?.version);
    expect(existsSync(path.join(dataDir, PAYLOAD_DB_DIR, 'CURRENT'))).toBe(true);
    const big = await store.toolLog.append({ client: 'alpha', tool: 'echo', arguments: { s: 'y'.repeat(INLINE_PAYLOAD_BYTES) }, result: 'ok', status: 'success', latency_ms: 1, cost_usd: 0, surface: 'mcp' });
    expect(await raw(store.payloadDb, 'toollog_payload').keys().all()).toEqual([big.id]);
    expect(await raw(store.db, 'toollog_payload').keys().all()).toEqual([]);
    expect((await store.toolLog.query({ limit: 10 })).entries).toStrictEqual([big]);
    expect(await store.toolLog.sweep({ maxEntries: 0 })).toBe(1);
    expect(await raw(store.payloadDb, 'toollog_payload').keys().all()).toEqual([]);
  });

  it('migration 5 moves toollog_payload out of the store database in chunks; every entry reads as before', async () => {
    // a version 4 store written by this code's version 4 layout: payloads in the store's own database
    const { store: v4, dataDir } = await openTemp({ options: { migrations: MIGRATIONS.filter((m) => m.version <= 4) } });
    expect(v4.schemaVersion).toBe(4);
    const expected: ToolLogEntry[] = [];
    let external = 0;
    for (let i = 0; i < 300; i++) {
      const f = fields(i, { text: `${i} `.repeat(i % 3 === 0 ? 10 : 400) }, { n: i });
      const { record, payload } = encodeRecord(f);
      await raw(v4.db, 'toollog').put(keyOf(i), record);
      if (payload !== undefined) {
        await raw(v4.db, 'toollog_payload').put(keyOf(i), payload);
        external++;
      }
      expected.push(entryOfValue(record, payload));
    }
    expect(external).toBeGreaterThan(128 * 1.5);
    expect((await raw(v4.db, 'toollog_payload').keys().all()).length).toBe(external);
    await v4.close();

    const { store } = await openTemp({ dataDir });
    expect(store.schemaVersion).toBe(5);
    expect(await raw(store.db, 'toollog_payload').keys().all()).toEqual([]);
    expect((await raw(store.payloadDb, 'toollog_payload').keys().all()).length).toBe(external);
    const page = await store.toolLog.query({ limit: 1000 });
    expect(page.total).toBe(300);
    expect(page.entries).toStrictEqual(expected.slice().reverse());
    expect((await store.toolLog.query({ client: 'alpha', limit: 5, offset: 10 })).entries).toStrictEqual(expected.slice().reverse().slice(10, 15));
  });

  it('migration 5 resumes: payloads already copied (a crash before the originals were deleted) are copied again, nothing lost', async () => {
    const { store: v4, dataDir } = await openTemp({ options: { migrations: MIGRATIONS.filter((m) => m.version <= 4) } });
    const f = fields(1, { text: 'z'.repeat(2000) }, null);
    const { record, payload } = encodeRecord(f);
    await raw(v4.db, 'toollog').put(keyOf(1), record);
    await raw(v4.db, 'toollog_payload').put(keyOf(1), payload as Uint8Array);
    // the copy landed, the delete did not
    await raw(v4.payloadDb, 'toollog_payload').put(keyOf(1), payload as Uint8Array);
    await v4.close();
    const { store } = await openTemp({ dataDir });
    expect((await store.toolLog.query({ limit: 10 })).entries).toStrictEqual([entryOfValue(record, payload)]);
    expect(await raw(store.db, 'toollog_payload').keys().all()).toEqual([]);
  });

  it('a record whose payload value is missing reads with both payloads cut to nothing; payloads without a record older than every record go at open', async () => {
    const { store, dataDir } = await openTemp();
    const kept = await store.toolLog.append({ client: 'alpha', tool: 'echo', arguments: { s: 'k'.repeat(2000) }, result: 1, status: 'success', latency_ms: 1, cost_usd: 0, surface: 'mcp', timestamp: new Date(BASE + 10_000).toISOString() });
    const lost = await store.toolLog.append({ client: 'beta', tool: 'echo', arguments: { s: 'l'.repeat(2000) }, result: 2, status: 'error', error: 'boom', latency_ms: 2, cost_usd: 0.5, surface: 'ws', timestamp: new Date(BASE + 20_000).toISOString() });
    await raw(store.payloadDb, 'toollog_payload').del(lost.id);
    // orphans: below the oldest record (go at open) and above it (stay until retention passes them)
    await raw(store.payloadDb, 'toollog_payload').put(keyOf(1), Buffer.from([0xc0, 0xc0]));
    await raw(store.payloadDb, 'toollog_payload').put(`${String(BASE + 15_000).padStart(15, '0')}-00000000abcd`, Buffer.from([0xc0, 0xc0]));
    const page = await store.toolLog.query({ limit: 10 });
    expect(page.entries).toStrictEqual([{ ...lost, arguments: '', arguments_truncated: true, result: '', result_truncated: true }, kept]);
    expect(await store.toolLog.stats({})).toMatchObject({ total_executions: 2, success_rate: 0.5 });
    await store.close();
    const { store: again } = await openTemp({ dataDir });
    expect(await raw(again.payloadDb, 'toollog_payload').keys().all()).toEqual([kept.id, `${String(BASE + 15_000).padStart(15, '0')}-00000000abcd`]);
    expect((await again.toolLog.query({ limit: 10 })).entries[1]).toStrictEqual(kept);
  });

  it('entryOfValue without the payload value: the record head as it is, both payloads cut to nothing (fast-check)', () => {
    const text = fc.string({ maxLength: 40 });
    fc.assert(
      fc.property(
        fc.record({
          id: text,
          client: text,
          tool: text,
          status: fc.constantFrom('success' as const, 'error' as const),
          latency_ms: fc.double({ noNaN: true, noDefaultInfinity: true }),
          cost_usd: fc.double({ noNaN: true, noDefaultInfinity: true }),
          surface: text,
          timestamp: text,
          error: fc.option(text, { nil: undefined }),
          virtual_key: fc.option(text, { nil: undefined }),
          trace_id: fc.option(text, { nil: undefined }),
          args: fc.jsonValue(),
          bulk: fc.integer({ min: INLINE_PAYLOAD_BYTES, max: 4 * INLINE_PAYLOAD_BYTES }),
        }),
        (r) => {
          const a = capPayloadPacked(r.args, 1 << 20);
          const res = capPayloadPacked('x'.repeat(r.bulk), 1 << 20);
          const f: ToolLogRecordFields = {
            id: r.id,
            client: r.client,
            tool: r.tool,
            arguments: Buffer.from(a.bytes),
            arguments_truncated: a.truncated,
            result: Buffer.from(res.bytes),
            result_truncated: res.truncated,
            status: r.status,
            latency_ms: r.latency_ms,
            cost_usd: r.cost_usd,
            surface: r.surface,
            timestamp: r.timestamp,
            ...(r.error === undefined ? {} : { error: r.error }),
            ...(r.virtual_key === undefined ? {} : { virtual_key: r.virtual_key }),
            ...(r.trace_id === undefined ? {} : { trace_id: r.trace_id }),
          };
          const { record, payload } = encodeRecord(f);
          expect(payload).toBeDefined();
          const whole = entryOfValue(record, payload);
          const cut = entryOfValue(record);
          expect(cut).toStrictEqual({ ...whole, arguments: '', arguments_truncated: true, result: '', result_truncated: true });
          // (-0 compared as 0: whether the encoder keeps the sign of zero is not what this tests)
          const zeroless = (xs: readonly unknown[]): unknown[] => xs.map((x) => (x === 0 ? 0 : x));
          expect(zeroless(summaryOf(record))).toEqual(zeroless([r.client, r.tool, r.status === 'success' ? 1 : 0, r.latency_ms, r.cost_usd, r.virtual_key ?? null, r.surface]));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('commitOps over two databases', () => {
  it('writes the ops of each database in a batch of its own, both before it resolves; only-second-database ops skip the empty first batch', async () => {
    const { store }: { store: Store } = await openTemp();
    const mine = openSublevel<string>(store.db, 'alpha_things');
    const theirs = raw(store.payloadDb, 'toollog_payload');
    await commitOps(store.db, [putOp(mine, 'a', 'A'), putBytesOp(theirs, 'k1', Buffer.from([1])), putOp(mine, 'b', 'B')]);
    expect(await mine.values().all()).toEqual(['A', 'B']);
    expect(await theirs.keys().all()).toEqual(['k1']);
    await commitOps(store.db, [putBytesOp(theirs, 'k2', Buffer.from([2]))], true);
    expect(await theirs.keys().all()).toEqual(['k1', 'k2']);
  });

  it('refuses ops on a third database with a RangeError, writing nothing', async () => {
    const { store } = await openTemp();
    const { store: other } = await openTemp();
    const mine = openSublevel<string>(store.db, 'alpha_things');
    await expect(commitOps(store.db, [putOp(mine, 'a', 'A'), putBytesOp(raw(store.payloadDb, 'toollog_payload'), 'k', Buffer.from([1])), putOp(openSublevel<string>(other.db, 'x'), 'x', 'X')])).rejects.toThrow(RangeError);
    expect(await mine.keys().all()).toEqual([]);
    expect(await raw(store.payloadDb, 'toollog_payload').keys().all()).toEqual([]);
  });
});
