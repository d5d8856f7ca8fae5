/**
 * Tool-log payloads as MessagePack (record layout 0x03): every value reads back as its JSON text
 * would (fast-check: JSON values with any code units, lone surrogates, -0, large numbers, deep
 * nesting, and values JSON treats specially), the cap boundary on either encoding, the storage
 * bound, records of the previous layout (payloads as JSON text) still read beside new ones, and
 * the REST log and the live feed of a real gateway giving what the client sent and received.
 */
import fc from 'fast-check';
import { Packr, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { keepJsonText } from '../src/codecs/json-text.js';
import { createLogger } from '../src/log/logger.js';
import { capPayloadPacked, isPlainJson, unpackPayload } from '../src/store/cap-payload.js';
import { openSublevel } from '../src/store/db.js';
import { entryOfValue, type ToolLogEntry, type ToolLogRecords } from '../src/store/tool-log.js';
import { JSON_PAYLOAD_RECORD_TAG, RECORD_TAG, encodeRecord, eventOfRecord, summaryOf, type ToolLogRecordFields } from '../src/store/tool-log-record.js';
import { connectClient, demoClient, send, startTestGateway } from './helpers/gateway.js';
import { tempStores } from './helpers/store.js';

const openTemp = tempStores('trib-toollog-payload-');
const silent = createLogger('silent');
const BIG_CAP = 1 << 20;

/** What a JSON peer reads for `v`: its JSON text parsed (`undefined` and other skipped values: null). */
const viaJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v) ?? 'null') as unknown;

/** The record fields of an entry with these payloads, capped at `cap`. */
function fields(args: unknown, result: unknown, cap = BIG_CAP): ToolLogRecordFields & { arguments_truncated: boolean; result_truncated: boolean } {
  const a = capPayloadPacked(args, cap);
  const r = capPayloadPacked(result, cap);
  return {
    id: 'id-1',
    client: 'demo',
    tool: 'echo',
    arguments: Buffer.from(a.bytes),
    arguments_truncated: a.truncated,
    result: Buffer.from(r.bytes),
    result_truncated: r.truncated,
    status: 'success',
    latency_ms: 1.5,
    cost_usd: 0,
    surface: 'mcp',
    timestamp: '2026-03-01T00:00:00.000Z',
  };
}

/** The entry a record of `f` reads back as (through `toollog_payload` when the payloads are out of line). */
function roundTrip(f: ToolLogRecordFields): ToolLogEntry {
  const { record, payload } = encodeRecord(f);
  expect(record[0]).toBe(RECORD_TAG);
  return entryOfValue(record, payload);
}

/** A record of the previous layout (0x02): the same head, payloads as JSON text (UTF-8). */
function jsonLayoutRecord(e: ToolLogEntry, external = false, event?: Record<string, unknown>): { record: Uint8Array; payload?: Uint8Array } {
  const packr = new Packr({ useRecords: false });
  const args = e.arguments_truncated ? (e.arguments as string) : JSON.stringify(e.arguments);
  const result = e.result_truncated ? (e.result as string) : JSON.stringify(e.result);
  const summary = Buffer.from(packr.pack([e.client, e.tool, e.status === 'success' ? 1 : 0, e.latency_ms, e.cost_usd, e.virtual_key ?? null, e.surface]));
  const details = Buffer.from(
    packr.pack([e.id, e.timestamp, e.error ?? null, e.trace_id ?? null, e.arguments_truncated ? 1 : 0, e.result_truncated ? 1 : 0, Buffer.byteLength(args), external ? 1 : 0, ...(event ? [event] : [])]),
  );
  const head = Buffer.alloc(9 + summary.length + details.length);
  head[0] = JSON_PAYLOAD_RECORD_TAG;
  head.writeUInt32LE(summary.length, 1);
  summary.copy(head, 5);
  head.writeUInt32LE(details.length, 5 + summary.length);
  details.copy(head, 9 + summary.length);
  const texts = Buffer.from(args + result, 'utf8');
  return external ? { record: head, payload: texts } : { record: Buffer.concat([head, texts]) };
}

describe('tool-log payloads: MessagePack read back as JSON would', () => {
  it('any JSON value (any code units, lone surrogates, -0, large numbers, nesting) reads back as its JSON text parsed (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary', maxDepth: 6 }), fc.jsonValue({ stringUnit: 'binary' }), (args, result) => {
        const f = fields(args, result);
        expect([f.arguments_truncated, f.result_truncated]).toEqual([false, false]);
        const e = roundTrip(f);
        expect(e.arguments).toStrictEqual(viaJson(args));
        expect(e.result).toStrictEqual(viaJson(result));
        expect(JSON.stringify(e.arguments)).toBe(JSON.stringify(args));
      }),
      { numRuns: 500 },
    );
  });

  it('values JSON treats specially (Dates, Maps, typed arrays, boxed values, NaN, undefined, sparse arrays, null prototypes) read back as JSON gives them (property)', () => {
    const anything = fc.anything({
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withBoxedValues: true,
      withNullPrototype: true,
      withSparseArray: true,
      withObjectString: true,
      stringUnit: 'binary',
      maxDepth: 4,
    });
    fc.assert(
      fc.property(anything, (value) => {
        const e = roundTrip(fields(value, { wrapped: value, list: [value] }));
        expect(e.arguments).toStrictEqual(viaJson(value));
        expect(e.result).toStrictEqual(viaJson({ wrapped: value, list: [value] }));
      }),
      { numRuns: 500 },
    );
  });

  it('edge values: -0, numbers beyond 2^53, lone surrogates in values and keys, __proto__ keys, toJSON, deep nesting', () => {
    const proto = JSON.parse('{"__proto__":{"polluted":1},"b":2}') as unknown;
    let deep: unknown = 'bottom';
    for (let i = 0; i < 400; i++) deep = { d: [deep] };
    const cases: unknown[] = [
      -0,
      [-0, { z: -0 }],
      2 ** 53 + 2,
      -(2 ** 63),
      1.7976931348623157e308,
      5e-324,
      'lone \ud800 high and \udc00 low',
      { ['key \udbff']: 1 },
      proto,
      { toJSON: () => ({ replaced: true }) },
      { when: new Date(0), u: undefined, f: () => 1 },
      NaN,
      { n: NaN, list: [Infinity, -Infinity] },
      [undefined, () => 1, Symbol('s')],
      deep,
      Buffer.from('bin'),
    ];
    for (const value of cases) {
      const e = roundTrip(fields(value, value));
      expect(e.arguments).toStrictEqual(viaJson(value));
      expect(e.result).toStrictEqual(viaJson(value));
    }
    expect(Object.keys(roundTrip(fields(proto, null)).arguments as object)).toEqual(['__proto__', 'b']);
    // only the first two take the text path on account of their strings; -0 and big numbers pack
    expect(isPlainJson(cases[6], 10)).toBe(false);
    expect(isPlainJson({ a: [-0, 2 ** 53 + 2, 'ü 😀'] }, 10)).toBe(true);
  });

  it('a value that cannot be serialised is kept as the marker, flagged, as before', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const throwing = Object.defineProperty({}, 'boom', {
      enumerable: true,
      get: () => {
        throw new Error('getter failed');
      },
    });
    for (const value of [cyclic, 10n, throwing]) {
      const f = fields(value, { ok: [value] });
      expect([f.arguments_truncated, f.result_truncated]).toEqual([true, true]);
      const e = roundTrip(f);
      expect(e.arguments).toMatch(/^\[unserialisable: /);
      expect(e.result).toMatch(/^\[unserialisable: /);
    }
    expect(roundTrip(fields(throwing, null)).arguments).toBe('[unserialisable: getter failed]');
  });
});

describe('tool-log payloads: the cap', () => {
  // { s: 'x' × n } for 256 ≤ n < 65536: MessagePack 1 (fixmap) + 2 ("s") + 3 (str16 header) + n; JSON 8 + n
  const str = (n: number): { s: string } => ({ s: 'x'.repeat(n) });

  it('keeps a value whose MessagePack is exactly the cap; one byte less cuts it to the JSON prefix of that many bytes', () => {
    const v = str(1000);
    expect(unpack(capPayloadPacked(v, 1006).bytes)).toStrictEqual(v);
    expect(capPayloadPacked(v, 1006)).toMatchObject({ truncated: false });
    expect(capPayloadPacked(v, 1006).bytes.length).toBe(1006);
    const cut = capPayloadPacked(v, 1005);
    expect(cut.truncated).toBe(true);
    expect(unpackPayload(cut.bytes)).toBe(JSON.stringify(v).slice(0, 1005));
  });

  it('keeps a value whose JSON text fits when its MessagePack does not (stored as that text)', () => {
    const halves = Array.from({ length: 50 }, () => 0.5); // JSON 201 bytes, MessagePack 453
    expect(Buffer.byteLength(JSON.stringify(halves))).toBe(201);
    const kept = capPayloadPacked(halves, 201);
    expect(kept.truncated).toBe(false);
    expect(kept.bytes[0]).toBe(0xc4); // bin 8: the JSON text
    expect(kept.bytes.length).toBe(203);
    expect(unpackPayload(kept.bytes)).toStrictEqual(halves);
    const cut = capPayloadPacked(halves, 200);
    expect(cut.truncated).toBe(true);
    expect(unpackPayload(cut.bytes)).toBe(JSON.stringify(halves).slice(0, 200));
  });

  it('undefined fields are left out by MessagePack itself, as JSON leaves them out', () => {
    const v = { a: 1, u: undefined, list: [undefined, { deep: undefined }] };
    const out = capPayloadPacked(v, 64);
    expect(out.bytes[0]).toBe(0x82); // a fixmap of 2: `u` is not there
    expect(unpackPayload(out.bytes)).toStrictEqual({ a: 1, list: [null, {}] });
  });

  it('a payload of mostly small values is kept as its JSON text (no faster to pack); over the JSON cap, its MessagePack still counts', () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: i, ok: true, tag: `t${i}` })); // 161 values, no long string
    const kept = capPayloadPacked(rows, BIG_CAP);
    expect(kept.bytes[0]).toBe(0xc5); // bin 16: the JSON text
    expect(unpackPayload(kept.bytes)).toStrictEqual(rows);
    const flags = Array.from({ length: 200 }, () => false); // JSON 1,201 bytes, MessagePack 203
    const packed = capPayloadPacked(flags, 500);
    expect(packed).toMatchObject({ truncated: false });
    expect(packed.bytes[0]).toBe(0xdc); // array 16: the value itself
    expect(unpackPayload(packed.bytes)).toStrictEqual(flags);
    // a long string seen before the budget runs out pays for the rows: packed; seen after it, not
    const text = 'z'.repeat(4096);
    expect(capPayloadPacked({ text, rows }, BIG_CAP).bytes[0]).toBe(0x82);
    expect(capPayloadPacked({ rows, text }, BIG_CAP).bytes[0]).toBe(0xc5);
    expect(unpackPayload(capPayloadPacked({ rows, text }, BIG_CAP).bytes)).toStrictEqual({ rows, text });
  });

  it('a lone surrogate whose JSON fits is stored as JSON text and read back intact', () => {
    const v = { s: 'a\ud800b' };
    const kept = capPayloadPacked(v, 64);
    expect(kept.bytes[0]).toBe(0xc4);
    expect(unpackPayload(kept.bytes)).toStrictEqual(v);
  });

  it('a caller’s own cut stays as it is when it fits; else its JSON prefix', () => {
    expect(unpackPayload(capPayloadPacked('{"half', 10, true).bytes)).toBe('{"half');
    expect(capPayloadPacked('{"half', 10, true).truncated).toBe(true);
    expect(unpackPayload(capPayloadPacked('x'.repeat(20), 10, true).bytes)).toBe('"xxxxxxxxx');
  });

  it('never stores more than the cap plus a 5-byte header, flags exactly, and the prefix is the longest that fits (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), fc.integer({ min: 0, max: 300 }), (value, cap) => {
        const out = capPayloadPacked(value, cap);
        expect(out.bytes.length).toBeLessThanOrEqual(cap + 5);
        const json = JSON.stringify(value);
        if (Buffer.byteLength(json) <= cap) expect(out.truncated).toBe(false);
        const back = unpackPayload(out.bytes);
        if (!out.truncated) {
          expect(back).toStrictEqual(viaJson(value));
          return;
        }
        const prefix = back as string;
        expect(json.startsWith(prefix)).toBe(true);
        expect(Buffer.byteLength(prefix)).toBeLessThanOrEqual(cap);
        const next = String.fromCodePoint(json.codePointAt(prefix.length) as number);
        expect(Buffer.byteLength(prefix + next)).toBeGreaterThan(cap);
      }),
      { numRuns: 1000 },
    );
  });

  it('a result with its upstream JSON text kept is stored as that text when it fits, else as the value would be (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__'), fc.jsonValue({ maxDepth: 2 }), { noNullPrototype: true }), fc.boolean(), fc.integer({ min: 0, max: 400 }), (value, spaced, cap) => {
        const text = spaced ? JSON.stringify(value, null, 1).replace(/\n/g, ' ') : JSON.stringify(value);
        const parsed = JSON.parse(text) as Record<string, unknown>;
        keepJsonText(parsed, text);
        const out = capPayloadPacked(parsed, cap);
        if (Buffer.byteLength(text) <= cap) {
          expect(out.truncated).toBe(false);
          expect([0xc4, 0xc5]).toContain(out.bytes[0]);
          expect(Buffer.from(unpack(out.bytes) as Uint8Array).toString('utf8')).toBe(text);
          expect(unpackPayload(out.bytes)).toStrictEqual(viaJson(value));
        } else {
          // over the cap as the upstream wrote it: the rule for any value, on a copy with no kept text
          const copy = capPayloadPacked({ ...parsed }, cap);
          expect(out.truncated).toBe(copy.truncated);
          expect(Buffer.from(out.bytes)).toEqual(Buffer.from(copy.bytes));
        }
        expect(out.bytes.length).toBeLessThanOrEqual(cap + 5);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a bad cap', () => {
    expect(() => capPayloadPacked(1, -1)).toThrow(RangeError);
    expect(() => capPayloadPacked(1, 1.5)).toThrow(RangeError);
  });
});

describe('tool-log payloads: records of the previous layout', () => {
  const old: ToolLogEntry = {
    id: 'old-json',
    client: 'beta',
    tool: 'add',
    arguments: { a: 1, s: 'ü "q" \n 😀' },
    arguments_truncated: false,
    result: '{"content":[{"ty',
    result_truncated: true,
    status: 'error',
    error: 'boom',
    latency_ms: 2,
    cost_usd: 0.5,
    surface: 'rest',
    timestamp: '2026-02-28T00:00:00.000Z',
  };

  it('decode as they did: JSON text parsed, cut prefixes as strings, inline or out of line', () => {
    const inline = jsonLayoutRecord(old);
    expect(summaryOf(inline.record)).toEqual(['beta', 'add', 0, 2, 0.5, null, 'rest']);
    expect(entryOfValue(inline.record)).toStrictEqual(old);
    const external = jsonLayoutRecord(old, true);
    expect(entryOfValue(external.record, external.payload)).toStrictEqual(old);
    // schema version 3 wrote the call's event at the end of the details
    const event = { seq: 7, event_type: 'ToolInvocationFailed', tool_name: 'add' };
    const withEvent = jsonLayoutRecord(old, false, event);
    expect(eventOfRecord(withEvent.record)).toStrictEqual(event);
    expect(entryOfValue(withEvent.record)).toStrictEqual(old);
  });

  it('read beside new records in a real store: pages, filters, stats and sweeps', async () => {
    const { store } = await openTemp({ options: { batch: { windowMs: 2 } }, log: silent });
    const fresh = await store.toolLog.append({ client: 'alpha', tool: 'echo', arguments: { now: true }, result: { ok: 1 }, status: 'success', latency_ms: 1, cost_usd: 0, surface: 'mcp', timestamp: '2026-03-01T00:00:00.000Z' });
    const raw = store.db.sublevel<string, Uint8Array>('toollog', { keyEncoding: 'utf8', valueEncoding: 'view' }) as ToolLogRecords;
    const payloads = openSublevel<Uint8Array>(store.payloadDb, 'toollog_payload');
    const rawPayloads = store.payloadDb.sublevel<string, Uint8Array>('toollog_payload', { keyEncoding: 'utf8', valueEncoding: 'view' });
    const inline = jsonLayoutRecord(old);
    const external = jsonLayoutRecord({ ...old, id: 'old-ext', timestamp: '2026-02-28T00:00:01.000Z' }, true);
    await raw.put(`${String(Date.parse(old.timestamp)).padStart(15, '0')}-old0`, inline.record);
    const extKey = `${String(Date.parse(old.timestamp) + 1000).padStart(15, '0')}-old1`;
    await raw.put(extKey, external.record);
    await rawPayloads.put(extKey, external.payload as Uint8Array);
    const page = await store.toolLog.query({ limit: 10 });
    expect(page.entries).toStrictEqual([fresh, { ...old, id: 'old-ext', timestamp: '2026-02-28T00:00:01.000Z' }, old]);
    expect((await store.toolLog.query({ client: 'beta', limit: 10 })).entries.map((e) => e.id)).toEqual(['old-ext', 'old-json']);
    expect(await store.toolLog.stats({})).toMatchObject({ total_executions: 3, success_rate: 1 / 3 });
    expect(await store.toolLog.sweep({ maxEntries: 1 })).toBe(2);
    expect(await payloads.keys().all()).toEqual([]);
    expect((await store.toolLog.query({ limit: 10 })).entries).toStrictEqual([fresh]);
  });
});

describe('tool-log payloads: what the REST log and the live feed give', () => {
  it('the arguments and result the client sent and received, exactly; a cut payload is the same JSON prefix in both', async () => {
    const gw = await startTestGateway([demoClient()], {}, { tool_log: { max_payload_bytes: 2048 } });
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/api/ws/live`);
    const live: Record<string, unknown>[] = [];
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Record<string, unknown>;
      if (m['type'] === 'mcp_log') live.push(m['payload'] as Record<string, unknown>);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const client = await connectClient(gw);
    try {
      const messages = ['plain', 'quotes " and \\ and \n\t\u0001 control', 'ü ✓ 😀 \u2028', 'lone \ud800 surrogate', 'x'.repeat(1500), '\u0001'.repeat(500), 'y'.repeat(3000)];
      const sent: { args: unknown; result: unknown }[] = [];
      for (const message of messages) {
        const args = { message };
        const result = await client.callTool({ name: 'demo-echo', arguments: args });
        sent.push({ args, result: viaJson(result) });
      }
      const deadline = Date.now() + 5000;
      let logs: Record<string, unknown>[] = [];
      while ((logs.length < messages.length || live.length < messages.length) && Date.now() < deadline) {
        logs = ((await send(`${gw.url}/api/mcp-logs?limit=100`, {})).json as { logs: Record<string, unknown>[] }).logs;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(logs).toHaveLength(messages.length);
      expect(live).toHaveLength(messages.length);
      logs.reverse(); // oldest first, as the feed sent them
      messages.forEach((message, i) => {
        const rest = logs[i] as Record<string, unknown>;
        const feed = live[i] as Record<string, unknown>;
        const { args, result } = sent[i] as { args: unknown; result: unknown };
        for (const got of [rest, feed]) {
          // '\u0001' × 500: over 2 KiB as JSON (6 bytes each), 0.5 KiB as MessagePack: kept whole by both
          if (message.length < 2000) {
            expect(got).toMatchObject({ arguments_truncated: false, result_truncated: false });
            expect(got['arguments']).toStrictEqual(args);
            expect(got['result']).toStrictEqual(result);
          } else {
            // 'y' × 3000: over 2 KiB either way, both cut to the same JSON prefix
            expect(got).toMatchObject({ arguments_truncated: true, result_truncated: true });
            expect(got['arguments']).toBe(JSON.stringify(args).slice(0, 2048));
            expect(got['result']).toBe(JSON.stringify(result).slice(0, 2048));
          }
        }
      });
    } finally {
      await client.close();
      ws.close();
      await gw.stop();
    }
  });
});
