/**
 * `npm run bench:record`: building one tool call's tool-log record (the bytes the event recorder
 * commits before the call is answered), by writer, in one process with the rounds alternating:
 *
 * - `msgpackr` — the baseline, as the record was built before: each payload packed by a msgpackr
 *   `Packr`, the summary and the details packed as arrays (the event a `toWire` copy), and the
 *   packs copied into a fresh buffer (the payloads into a second one when they pass 1 KiB);
 * - `writer` — now: `capPayloadPacked` and `encodeRecord` write payloads and head with
 *   `MsgpackWriter` straight into slabs, the live event written without its payloads (no copy).
 *
 * Both produce records the same readers read (checked before timing). CPU per record from
 * `process.cpuUsage` (one thread: nothing here leaves the main thread); the table shows the
 * median and the lowest of the rounds. Env: BENCH_ROUNDS (default 9), BENCH_ITERATIONS (default
 * 100000 records per round). Profile: `node --cpu-prof --import tsx bench/tool-log-record.ts`.
 */
import { Packr } from 'msgpackr';
import { capPayloadPacked } from '../src/store/cap-payload.js';
import { INLINE_PAYLOAD_BYTES, RECORD_TAG, encodeRecord, eventOfRecord, hasExternalPayload, storedFieldsOf } from '../src/store/tool-log-record.js';
import { TOOL_EVENT_PAYLOAD_FIELDS, toWire, type GatewayEvent } from '../src/streams/events.js';
import { envNumber } from './procs.js';
import { records, wordText } from './ws-throughput-data.js';

const ROUNDS = Math.max(1, Math.round(envNumber('BENCH_ROUNDS', 9)));
const ITERATIONS = Math.max(1, Math.round(envNumber('BENCH_ITERATIONS', 100_000)));

type ToolEvent = Extract<GatewayEvent, { event_type: 'ToolInvocationCompleted' }>;

const event = (args: unknown, result: unknown): ToolEvent => ({
  event_type: 'ToolInvocationCompleted',
  mcp_server_id: 'demo',
  tool_name: 'echo',
  call_id: '6f1c2b7e-93a4-4d0e-8f57-2c9a1e4b7d30',
  duration_ms: 0.2512345,
  cost_usd: 0,
  surface: 'mcp',
  arguments: args,
  is_error: false,
  result,
  seq: 4711,
  timestamp: '2026-03-01T00:00:00.123Z',
});

const CASES: { readonly name: string; readonly event: ToolEvent; readonly iterations: number }[] = [
  { name: 'demo-echo, 5 B message', event: event({ message: 'hello' }, { content: [{ type: 'text', text: 'Echo: hello' }] }), iterations: ITERATIONS },
  { name: 'demo-echo, 4 KiB message', event: event({ message: wordText(4096) }, { content: [{ type: 'text', text: `Echo: ${wordText(4096)}` }] }), iterations: ITERATIONS / 10 },
  { name: 'structured result, ≈ 4 KiB JSON', event: event({ query: 'status:open', limit: 50 }, { content: [{ type: 'text', text: 'ok' }], structuredContent: records(4096) }), iterations: ITERATIONS / 10 },
];

const KEY = '001772323200123-~0000000000004711';

/** The baseline: the record as msgpackr packs built it (same layout, same readers). */
const skipOptions = { useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true, skipValues: [undefined] };
const payloadPackr = new Packr(skipOptions as ConstructorParameters<typeof Packr>[0]);
const recordPackr = new Packr({ useRecords: false });
function viaMsgpackr(e: ToolEvent): Uint8Array {
  const args = payloadPackr.pack(e.arguments);
  const result = payloadPackr.pack(e.result);
  const external = args.length + result.length > INLINE_PAYLOAD_BYTES;
  const summary = recordPackr.pack([e.mcp_server_id, e.tool_name, 1, Math.round(e.duration_ms * 1000) / 1000, e.cost_usd, null, e.surface]);
  const details = recordPackr.pack([KEY, e.timestamp, null, null, 0, 0, args.length, external ? 1 : 0, toWire(e)]);
  const out = Buffer.allocUnsafe(9 + summary.length + details.length + (external ? 0 : args.length + result.length));
  out[0] = RECORD_TAG;
  out.writeUInt32LE(summary.length, 1);
  out.set(summary, 5);
  out.writeUInt32LE(details.length, 5 + summary.length);
  out.set(details, 9 + summary.length);
  const payload = external ? Buffer.allocUnsafe(args.length + result.length) : out;
  const at = external ? 0 : 9 + summary.length + details.length;
  payload.set(args, at);
  payload.set(result, at + args.length);
  return out;
}

/** Now: the tool log's own path (`capPayloadPacked`, then `encodeRecord` with the live event). */
function viaWriter(e: ToolEvent): Uint8Array {
  const args = capPayloadPacked(e.arguments);
  const result = capPayloadPacked(e.result);
  return encodeRecord({
    id: KEY,
    client: e.mcp_server_id,
    tool: e.tool_name,
    arguments: args.bytes,
    arguments_truncated: args.truncated,
    result: result.bytes,
    result_truncated: result.truncated,
    status: 'success',
    latency_ms: Math.round(e.duration_ms * 1000) / 1000,
    cost_usd: e.cost_usd,
    surface: e.surface,
    timestamp: e.timestamp,
    event: e as unknown as Record<string, unknown> & { seq: number },
    eventLeaveOut: TOOL_EVENT_PAYLOAD_FIELDS,
  }).record;
}

const VARIANTS = [
  ['msgpackr', viaMsgpackr],
  ['writer', viaWriter],
] as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

console.log(`tool-log record build, µs CPU per record (median / lowest of ${ROUNDS} alternating rounds)\n`);
console.log('| case | msgpackr (before) | writer (now) | now / before | record bytes (before → now) |');
console.log('|---|---:|---:|---:|---|');
for (const c of CASES) {
  const before = viaMsgpackr(c.event);
  const now = viaWriter(c.event);
  // the same entry and event for the readers, whichever wrote the record
  if (!hasExternalPayload(before) && JSON.stringify(storedFieldsOf(Buffer.from(before)).entry) !== JSON.stringify(storedFieldsOf(Buffer.from(now)).entry)) {
    throw new Error(`${c.name}: the two records read back differently`);
  }
  if (JSON.stringify(eventOfRecord(before)) !== JSON.stringify(eventOfRecord(now))) throw new Error(`${c.name}: the two events read back differently`);
  const times: Record<string, number[]> = { msgpackr: [], writer: [] };
  const n = Math.max(1, Math.round(c.iterations));
  for (let i = 0; i < 2000; i++) for (const [, build] of VARIANTS) build(c.event);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, build] of VARIANTS) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < n; i++) build(c.event);
      const used = process.cpuUsage(c0);
      times[name]?.push((used.user + used.system) / n);
    }
  }
  const b = times.msgpackr ?? [];
  const w = times.writer ?? [];
  const ratio = median(w) / median(b);
  console.log(`| ${c.name} | ${median(b).toFixed(2)} / ${Math.min(...b).toFixed(2)} | ${median(w).toFixed(2)} / ${Math.min(...w).toFixed(2)} | ${ratio.toFixed(2)} | ${before.length} → ${now.length} |`);
}
