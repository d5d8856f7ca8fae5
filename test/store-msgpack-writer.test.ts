/**
 * The hand-written MessagePack writer of tool-log records, against msgpackr's decoder (the one
 * the store reads with): arbitrary values (fast-check: any code units incl. lone surrogates, -0,
 * integers at every format boundary, large maps and arrays, deep nesting, values it hands to
 * msgpackr), strings at every header boundary in one- to four-byte UTF-8, slab roll-over with
 * earlier views kept intact, and whole records (summary, details, event, inline and external
 * payloads) read back by the record readers exactly as they were given.
 */
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { capPayloadPacked, unpackPayload } from '../src/store/cap-payload.js';
import { MsgpackWriter } from '../src/store/msgpack-writer.js';
import { INLINE_PAYLOAD_BYTES, encodeRecord, eventOfRecord, hasExternalPayload, storedFieldsOf, summaryOf, type ToolLogRecordFields } from '../src/store/tool-log-record.js';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const msgpackr = new Packr({ useRecords: false });

/** `String.prototype.toWellFormed` (ES2024, Node ≥ 20): lone surrogates become U+FFFD, as UTF-8 carries them. */
const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

/** What the writer's bytes of `v` should read back as: strings well-formed, `undefined` fields left out. */
function expected(v: unknown): unknown {
  if (typeof v === 'string') return wellFormed(v);
  if (Array.isArray(v)) return v.map(expected);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) if (item !== undefined) Object.defineProperty(out, wellFormed(k), { value: expected(item), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

function written(v: unknown, w = new MsgpackWriter()): Buffer {
  w.begin();
  w.value(v);
  return w.end();
}

const anyString = fc.string({ unit: 'binary', maxLength: 300 });
/** Map keys: any string but `__proto__`, which msgpackr's decoder reads back renamed (`__proto_`, its guard against prototype pollution). */
const mapKey = anyString.filter((k) => k !== '__proto__');
const boundaryInts = fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 2 ** 32, 2 ** 53 - 1, -1, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53));
const anyNumber = fc.oneof(fc.double(), fc.integer(), boundaryInts, fc.constant(-0));
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(anyString, anyNumber, fc.boolean(), fc.constant(null)),
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), fc.array(tie('node'), { maxLength: 20 }), fc.dictionary(mapKey, fc.oneof(tie('node'), fc.constant(undefined)), { maxKeys: 20 })),
})).node;

describe('MsgpackWriter: standard MessagePack msgpackr reads back', () => {
  it('any value of strings, numbers, booleans, null, arrays and plain objects reads back as it was (property)', () => {
    fc.assert(
      fc.property(value, (v) => {
        const back = unpackr.unpack(written(v)) as unknown;
        expect(back).toStrictEqual(expected(v));
        // -0 survives (msgpackr itself writes it as 0)
        if (Object.is(v, -0)) expect(Object.is(back, -0)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('numbers use the smallest format msgpackr uses, and keep every bit', () => {
    for (const n of [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, -1, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001, -(2 ** 31)]) {
      expect(written(n), String(n)).toEqual(Buffer.from(msgpackr.pack(n)));
    }
    for (const n of [2 ** 32, -(2 ** 31) - 1, 0.1, Number.MAX_VALUE, Number.MIN_VALUE, Number.NaN, Number.POSITIVE_INFINITY, -0]) {
      const b = written(n);
      expect(b[0], String(n)).toBe(0xcb);
      expect(Object.is(unpackr.unpack(b), n), String(n)).toBe(true);
    }
  });

  it('strings at each header boundary, in 1- to 4-byte UTF-8 and with lone surrogates, get the smallest header and read back', () => {
    const units = ['a', 'é', '€', '😀', '\ud800', '\udc00x'];
    for (const unit of units) {
      for (const n of [0, 1, 10, 11, 20, 21, 31, 32, 63, 64, 85, 86, 255, 256, 21845, 21846, 65535, 65536, 70000]) {
        const s = unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
        const b = written(s);
        const bytes = Buffer.byteLength(s, 'utf8');
        const header = bytes < 32 ? 1 : bytes < 256 ? 2 : bytes < 65536 ? 3 : 5;
        expect(b.length, `${JSON.stringify(unit)} × ${n}`).toBe(header + bytes);
        expect(unpackr.unpack(b)).toBe(wellFormed(s));
      }
    }
  });

  it('binUtf8: a bin of the UTF-8 bytes at each header boundary, smallest header, read back byte for byte', () => {
    for (const unit of ['a', 'é', '€', '😀', '\ud800']) {
      for (const n of [0, 1, 85, 86, 127, 128, 255, 256, 21845, 21846, 65535, 65536, 70000]) {
        const s = unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
        const w = new MsgpackWriter();
        w.begin();
        const count = w.binUtf8(s);
        const b = w.end();
        const bytes = Buffer.from(s, 'utf8');
        const header = bytes.length < 256 ? 2 : bytes.length < 65536 ? 3 : 5;
        expect(count, `${JSON.stringify(unit)} × ${n}`).toBe(bytes.length);
        expect(b.length).toBe(header + bytes.length);
        expect(b[0]).toBe(header === 2 ? 0xc4 : header === 3 ? 0xc5 : 0xc6);
        expect(Buffer.from(unpackr.unpack(b) as Uint8Array)).toEqual(bytes);
      }
    }
  });

  it('maps and arrays of 15, 16 and 65536 items read back, with undefined fields left out of the count', () => {
    for (const n of [15, 16, 65536]) {
      const arr = Array.from({ length: n }, (_, i) => i);
      expect(unpackr.unpack(written(arr))).toEqual(arr);
      const obj = Object.fromEntries(arr.map((i) => [`k${i}`, i]));
      expect(unpackr.unpack(written(obj))).toEqual(obj);
      const withUndefined = { ...obj, gone: undefined, also: undefined };
      expect(unpackr.unpack(written(withUndefined))).toEqual(obj);
    }
    const w = new MsgpackWriter();
    w.begin();
    w.map({ a: 1, arguments: { big: 'x' }, b: 'two', result: [1] }, new Set(['arguments', 'result']));
    expect(unpackr.unpack(w.end())).toEqual({ a: 1, b: 'two' });
  });

  it('values it has no fast path for are written as msgpackr writes them', () => {
    class Thing {
      readonly x = 1;
    }
    const date = new Date(1_700_000_000_000);
    for (const v of [date, new Map([['a', 1]]), new Uint8Array([1, 2, 3]), new Thing(), { toJSON: () => 'j', y: 2 }, [undefined, 1], 2n ** 40n]) {
      expect(written(v)).toEqual(Buffer.from(msgpackr.pack(v)));
    }
    expect(() => written(Symbol('s'))).toThrow();
  });

  it('a value that outgrows the slab moves to a new one; views handed out before stay intact', () => {
    const w = new MsgpackWriter();
    const views: [Buffer, unknown][] = [];
    for (let i = 0; i < 3000; i++) {
      const v = i % 500 === 7 ? { big: 'y'.repeat(100_000 + i), i } : { i, s: `value ${i}`, list: [i, -i, i / 3] };
      views.push([written(v, w), v]);
    }
    for (const [bytes, v] of views) expect(unpackr.unpack(bytes)).toStrictEqual(v);
  });

  it('asJson: the same bytes msgpackr writes for plain JSON data (undefined fields left out, undefined items nil, -0 as 0) (property)', () => {
    const options = { useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true, skipValues: [undefined] };
    const skipping = new Packr(options as ConstructorParameters<typeof Packr>[0]);
    const w = new MsgpackWriter({ asJson: true });
    const jsonish = fc.letrec((tie) => ({
      leaf: fc.oneof(fc.string({ maxLength: 100 }), anyNumber, fc.boolean(), fc.constant(null), fc.constant(undefined)),
      node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 20 }), fc.dictionary(fc.string(), tie('node'), { maxKeys: 20 })),
    })).node;
    fc.assert(
      fc.property(jsonish, (v) => {
        expect(written(v, w)).toEqual(Buffer.from(skipping.pack(v)));
      }),
      { numRuns: 300 },
    );
  });

  it('a value that throws midway leaves the writer usable and the next value whole', () => {
    const w = new MsgpackWriter();
    w.begin();
    w.str('partial');
    expect(() => w.value({ a: 'x'.repeat(1000), bad: Symbol('s') })).toThrow();
    expect(unpackr.unpack(written({ ok: 1 }, w))).toEqual({ ok: 1 });
  });
});

describe('encodeRecord: every field reads back through the record readers', () => {
  const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });
  const payload = fc.oneof(fc.jsonValue({ stringUnit: 'binary', maxDepth: 3 }), fc.string({ minLength: 600, maxLength: 3000 }));
  const eventArb = fc.record({
    seq: fc.integer({ min: 1, max: 2 ** 40 }),
    event_type: fc.constantFrom('ToolInvocationCompleted', 'ToolInvocationFailed'),
    mcp_server_id: anyString,
    call_id: anyString,
    duration_ms: anyNumber,
    is_error: fc.boolean(),
    extra: value,
    arguments: fc.jsonValue(),
    result: fc.jsonValue(),
  });

  it('summary, details, payloads (inline or external) and the event, exactly (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          id: anyString,
          client: anyString,
          tool: anyString,
          ok: fc.boolean(),
          latency: anyNumber,
          cost: anyNumber,
          surface: anyString,
          timestamp: fc.constantFrom('2026-03-01T00:00:00.000Z', '2026-12-06T20:00:00.123Z'),
          error: optional(anyString),
          vk: optional(anyString),
          trace: optional(fc.stringMatching(/^[0-9a-f]{32}$/)),
          args: payload,
          result: payload,
          event: optional(eventArb),
        }),
        (r) => {
          const a = capPayloadPacked(r.args, 1 << 20);
          const res = capPayloadPacked(r.result, 1 << 20);
          const f: ToolLogRecordFields = {
            id: r.id,
            client: r.client,
            tool: r.tool,
            arguments: Buffer.from(a.bytes),
            arguments_truncated: a.truncated,
            result: Buffer.from(res.bytes),
            result_truncated: res.truncated,
            status: r.ok ? 'success' : 'error',
            latency_ms: r.latency,
            cost_usd: r.cost,
            surface: r.surface,
            timestamp: r.timestamp,
            ...(r.error === undefined ? {} : { error: r.error }),
            ...(r.vk === undefined ? {} : { virtual_key: r.vk }),
            ...(r.trace === undefined ? {} : { trace_id: r.trace }),
            ...(r.event === undefined ? {} : { event: r.event, eventLeaveOut: new Set(['arguments', 'result']) }),
          };
          const { record, payload: external } = encodeRecord(f);
          const outOfLine = a.bytes.length + res.bytes.length > INLINE_PAYLOAD_BYTES;
          expect(external !== undefined).toBe(outOfLine);
          expect(hasExternalPayload(record)).toBe(outOfLine);
          const wf = wellFormed;
          expect(summaryOf(record)).toStrictEqual([wf(r.client), wf(r.tool), r.ok ? 1 : 0, r.latency, r.cost, r.vk === undefined ? null : wf(r.vk), wf(r.surface)]);
          const { entry } = storedFieldsOf(record, external);
          expect(entry).toStrictEqual({
            id: wf(r.id),
            client: wf(r.client),
            tool: wf(r.tool),
            arguments: unpackPayload(a.bytes),
            arguments_truncated: a.truncated,
            result: unpackPayload(res.bytes),
            result_truncated: res.truncated,
            status: r.ok ? 'success' : 'error',
            latency_ms: r.latency,
            cost_usd: r.cost,
            surface: wf(r.surface),
            timestamp: r.timestamp,
            ...(r.error === undefined ? {} : { error: wf(r.error) }),
            ...(r.vk === undefined ? {} : { virtual_key: wf(r.vk) }),
            ...(r.trace === undefined ? {} : { trace_id: r.trace }),
          });
          if (r.event === undefined) expect(eventOfRecord(record)).toBeUndefined();
          else {
            const { arguments: _a, result: _r, ...stored } = r.event;
            expect(eventOfRecord(record)).toStrictEqual(expected(stored));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a record written by msgpackr packs (the previous writer) and one written now read back the same', () => {
    const a = capPayloadPacked({ message: 'hello' });
    const r = capPayloadPacked({ content: [{ type: 'text', text: 'Echo: hello' }] });
    const event = { seq: 7, event_type: 'ToolInvocationCompleted', mcp_server_id: 'demo', tool_name: 'echo', call_id: 'c-1', duration_ms: 0.25, cost_usd: 0, surface: 'mcp', is_error: false, timestamp: '2026-03-01T00:00:00.000Z' };
    const f: ToolLogRecordFields = { id: 'k', client: 'demo', tool: 'echo', arguments: Buffer.from(a.bytes), arguments_truncated: false, result: Buffer.from(r.bytes), result_truncated: false, status: 'success', latency_ms: 0.25, cost_usd: 0, surface: 'mcp', timestamp: event.timestamp, event };
    const summary = Buffer.from(msgpackr.pack(['demo', 'echo', 1, 0.25, 0, null, 'mcp']));
    const details = Buffer.from(msgpackr.pack(['k', event.timestamp, null, null, 0, 0, a.bytes.length, 0, event]));
    const old = Buffer.concat([Buffer.from([3]), u32(summary.length), summary, u32(details.length), details, Buffer.from(a.bytes), Buffer.from(r.bytes)]);
    const now = encodeRecord(f).record;
    expect(storedFieldsOf(now)).toStrictEqual(storedFieldsOf(old));
    expect(eventOfRecord(now)).toStrictEqual(eventOfRecord(old));
    // the same bytes but for the event's map header (msgpackr writes map16 for a plain object)
    expect(now.length).toBe(old.length - 2);
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
