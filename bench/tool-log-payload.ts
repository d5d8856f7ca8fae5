/**
 * `npm run bench:payload`: what the tool log's payload encoding costs per tool call, the way the
 * store does it now (`capPayloadPacked`: MessagePack measured against the cap, record layout 0x03)
 * against the way it did before, in the same run (`capPayloadText`: `JSON.stringify` measured
 * against the cap, its UTF-8 copied into a layout-0x02 record) — write (cap both payloads and build
 * the record) and read back (decode the record's payloads to values, as a REST page does).
 *
 * Payloads: the `demo-echo` call of `npm run bench:ws` (arguments `{message}` of `BENCH_ARG_BYTES`,
 * default 4096, ASCII words; result `{content:[{type:'text', text:'Echo: …'}]}`), the same with a
 * 5-byte message (the `prof.sh demo-echo` call), and a JSON-heavy structured result (API-style
 * records, ≈ 4 KiB). Each row runs both variants alternately in rounds (`BENCH_ROUNDS`, default 7,
 * of `BENCH_ITERATIONS` calls, default 5000) and reports the median round's CPU per call from
 * `process.cpuUsage()` (user + system, this process) and the ratio old ÷ new. Pin it to a core for
 * steadier figures: `taskset -c 0 npm run bench:payload`.
 *
 * Profile: `taskset -c 0 node --cpu-prof --import tsx bench/tool-log-payload.ts`, then
 * `node /path/to/top.mjs CPU.*.cpuprofile` or Chrome DevTools.
 */
import { capPayloadPacked, capPayloadText } from '../src/store/cap-payload.js';
import { entryOfValue } from '../src/store/tool-log.js';
import { encodeRecord, type ToolLogRecordFields } from '../src/store/tool-log-record.js';
import { envNumber } from './procs.js';
import { records, wordText } from './ws-throughput-data.js';

const ARG_BYTES = Math.max(1, Math.round(envNumber('BENCH_ARG_BYTES', 4096)));
const ROUNDS = Math.max(1, Math.round(envNumber('BENCH_ROUNDS', 7)));
const ITERATIONS = Math.max(1, Math.round(envNumber('BENCH_ITERATIONS', 5000)));
const CAP = 16 * 1024;

interface Case {
  readonly name: string;
  readonly args: unknown;
  readonly result: unknown;
}

const echo = (message: string): Case => ({
  name: `demo-echo, ${Buffer.byteLength(message)} B message`,
  args: { message },
  result: { content: [{ type: 'text', text: `Echo: ${message}` }] },
});
const structured = records(4096);
const CASES: Case[] = [
  echo(wordText(ARG_BYTES)),
  echo('hello'),
  { name: 'structured result, ≈ 4 KiB JSON', args: { query: 'status:open', limit: 50 }, result: { content: [{ type: 'text', text: 'ok' }], structuredContent: structured } },
];

const head = { id: 'k', client: 'demo', tool: 'echo', status: 'success', latency_ms: 0.25, cost_usd: 0, surface: 'ws', timestamp: '2026-03-01T00:00:00.000Z' } as const;

/** The previous layout's bytes: tag 0x02, payloads as JSON text (what `encodeRecord` wrote before). */
function writeOld(c: Case): { record: Uint8Array; payload?: Uint8Array } {
  const a = capPayloadText(c.args, CAP);
  const r = capPayloadText(c.result, CAP);
  const args = Buffer.from(a.text, 'utf8');
  const result = Buffer.from(r.text, 'utf8');
  const out = encodeRecord({ ...head, arguments: args, arguments_truncated: a.truncated, result, result_truncated: r.truncated } as ToolLogRecordFields);
  out.record[0] = 0x02;
  return out;
}

function writeNew(c: Case): { record: Uint8Array; payload?: Uint8Array } {
  const a = capPayloadPacked(c.args, CAP);
  const r = capPayloadPacked(c.result, CAP);
  return encodeRecord({ ...head, arguments: a.bytes, arguments_truncated: a.truncated, result: r.bytes, result_truncated: r.truncated });
}

/** Median CPU µs per call of `fn` over the rounds, `a` and `b` alternating. */
function race(a: () => unknown, b: () => unknown): [number, number] {
  const times: [number[], number[]] = [[], []];
  let sink = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, fn] of [a, b].entries()) {
      const before = process.cpuUsage();
      for (let n = 0; n < ITERATIONS; n++) if (fn() !== undefined) sink++;
      const used = process.cpuUsage(before);
      times[i as 0 | 1].push((used.user + used.system) / ITERATIONS);
    }
  }
  if (sink < 0) console.log(sink);
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  return [median(times[0]), median(times[1])];
}

const rows: string[] = [];
for (const c of CASES) {
  // both variants read back the same values (checked before timing)
  const oldBytes = writeOld(c);
  const newBytes = writeNew(c);
  const oldEntry = entryOfValue(oldBytes.record, oldBytes.payload);
  const newEntry = entryOfValue(newBytes.record, newBytes.payload);
  if (JSON.stringify(oldEntry) !== JSON.stringify(newEntry)) throw new Error(`${c.name}: the two layouts read back different entries`);
  const [writeBefore, writeNow] = race(
    () => writeOld(c),
    () => writeNew(c),
  );
  const [readBefore, readNow] = race(
    () => entryOfValue(oldBytes.record, oldBytes.payload),
    () => entryOfValue(newBytes.record, newBytes.payload),
  );
  const size = (x: { record: Uint8Array; payload?: Uint8Array }): number => x.record.length + (x.payload?.length ?? 0);
  rows.push(
    `| ${c.name} | ${writeBefore.toFixed(2)} | ${writeNow.toFixed(2)} | ${(writeBefore / writeNow).toFixed(2)}× | ${readBefore.toFixed(2)} | ${readNow.toFixed(2)} | ${(readBefore / readNow).toFixed(2)}× | ${size(oldBytes)} | ${size(newBytes)} |`,
  );
}

console.log(`Tool-log payload encoding, CPU µs per tool call (median of ${ROUNDS} alternating rounds of ${ITERATIONS}; cap ${CAP} B)\n`);
console.log('| payloads | write, JSON text (before) | write, MessagePack (now) | before ÷ now | read, JSON text | read, MessagePack | before ÷ now | stored B, before | stored B, now |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const row of rows) console.log(row);
