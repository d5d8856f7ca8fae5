/**
 * `npm run bench:depth`: the cost of the nesting-depth check on the request hot path
 * (src/codecs/depth.ts), against the decode it follows, same run, same bytes:
 *
 *   JSON (`/mcp` bodies, `/ws` text frames): `jsonDepthExceeded(bytes)` vs the baseline
 *     `JSON.parse(bytes.toString('utf8'))` that every request pays anyway;
 *   MessagePack (MCPW payloads): `scanMsgpack(bytes)` vs the baseline msgpackr `unpack(bytes)`.
 *
 * Bodies: a minimal tools/call (≈120 B; at most 128 bytes cannot nest deeper than 128, so it is
 * not scanned), tools/call with a 1 KiB and a 4 KiB text argument (an escape every ≈ 100 bytes),
 * a 4 KiB string of dense escapes (a quote or backslash every 3 bytes: the string skip's worst
 * case), a tools/call whose arguments are ≈ 58 KiB of small objects (the byte loop's worst case:
 * no long strings to skip), and a tools/list-like result of 64 tools.
 *
 * Each number is the median of ROUNDS timed rounds of ≥ ROUND_MS after a warm-up round; the
 * variants of a row take turns round by round. CPU per op is this process's utime + stime from
 * /proc/self/stat over the timed rounds (10 ms ticks: read it as a check of the wall figures).
 * Environment: BENCH_DEPTH_ROUND_MS (default 200), BENCH_DEPTH_ROUNDS (default 5).
 * Profile: `node --cpu-prof --cpu-prof-dir=/tmp/depth-prof --import tsx bench/depth-check.ts`.
 */
import os from 'node:os';
import { Packr, Unpackr } from 'msgpackr';
import { jsonDepthExceeded, scanMsgpack } from '../src/codecs/depth.js';
import { treeCpuSeconds } from './lib.js';

const ROUND_MS = Number(process.env['BENCH_DEPTH_ROUND_MS'] ?? 200);
const ROUNDS = Number(process.env['BENCH_DEPTH_ROUNDS'] ?? 5);

let sink = 0;

interface Rate {
  /** Median wall ns per op. */
  readonly ns: number;
  /** CPU ns per op over all timed rounds (/proc). */
  readonly cpuNs: number;
}

function measure<K extends string>(fns: Record<K, () => number>): Record<K, Rate> {
  const names = Object.keys(fns) as K[];
  const samples = new Map<K, number[]>(names.map((n) => [n, []]));
  const cpu = new Map<K, { seconds: number; ops: number }>(names.map((n) => [n, { seconds: 0, ops: 0 }]));
  const batches = new Map<K, number>(names.map((n) => [n, 1]));
  for (let round = -1; round < ROUNDS; round++) {
    for (const name of names) {
      const fn = fns[name];
      let batch = batches.get(name) ?? 1;
      let ops = 0;
      const cpuBefore = treeCpuSeconds(process.pid);
      const started = performance.now();
      let elapsed = 0;
      while (elapsed < ROUND_MS) {
        for (let i = 0; i < batch; i++) sink += fn();
        ops += batch;
        elapsed = performance.now() - started;
        if (elapsed < ROUND_MS / 20) batch *= 2;
      }
      batches.set(name, batch);
      if (round >= 0) {
        samples.get(name)?.push((elapsed * 1e6) / ops);
        const c = cpu.get(name);
        if (c) {
          c.seconds += treeCpuSeconds(process.pid) - cpuBefore;
          c.ops += ops;
        }
      }
    }
  }
  const out = {} as Record<K, Rate>;
  for (const name of names) {
    const xs = (samples.get(name) ?? []).sort((a, b) => a - b);
    const c = cpu.get(name) ?? { seconds: 0, ops: 1 };
    out[name] = { ns: xs[Math.floor(xs.length / 2)] ?? NaN, cpuNs: (c.seconds * 1e9) / c.ops };
  }
  return out;
}

/** Prose with an escaped quote or newline every ≈ 200 characters, as tool arguments usually are. */
const PROSE = Array.from({ length: 40 }, (_, i) => `Paragraph ${i}: the gateway forwards tool calls to upstream servers and "records" each one.\nIt keeps the log bounded and the breaker honest; nothing here is nested. `).join('');
const call = (args: unknown): unknown => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'everything-echo', arguments: args } });
const bodies: Record<string, unknown> = {
  'tools/call, minimal': call({ message: 'hello' }),
  'tools/call, 1 KiB text': call({ message: PROSE.slice(0, 1024) }),
  'tools/call, 4 KiB text': call({ message: PROSE.slice(0, 4096) }),
  'tools/call, 4 KiB dense escapes': call({ message: 'a "q" \\ '.repeat(600).slice(0, 4096) }),
  'tools/call, 64 KiB small objects': call({ rows: Array.from({ length: 1500 }, (_, i) => ({ id: i, tags: ['a', 'b'], ok: i % 2 === 0 })) }),
  'tools/list result, 64 tools': {
    tools: Array.from({ length: 64 }, (_, i) => ({
      name: `everything-tool${i}`,
      description: 'Does one thing well. '.repeat(4),
      inputSchema: { type: 'object', properties: { message: { type: 'string', description: 'text' }, n: { type: 'number' } }, required: ['message'] },
    })),
  },
};

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : 'n/a');
const pctOf = (a: number, b: number): string => `${((a / b) * 100).toFixed(1)}%`;

console.log(`# depth check cost — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg()[0]?.toFixed(2)}`);
console.log(`rounds: ${ROUNDS} × ≥ ${ROUND_MS} ms per variant, median wall ns/op; CPU ns/op from /proc/self/stat\n`);
console.log('## JSON (/mcp body, /ws text frame): jsonDepthExceeded vs JSON.parse of the same bytes\n');
console.log('| body | bytes | JSON.parse ns | depth scan ns | scan ÷ parse | scan ns per KiB | CPU ns/op parse / scan |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [name, value] of Object.entries(bodies)) {
  const bytes = Buffer.from(JSON.stringify(value));
  const r = measure({
    parse: () => (JSON.parse(bytes.toString('utf8')) === null ? 0 : 1),
    scan: () => jsonDepthExceeded(bytes),
  });
  console.log(
    `| ${name} | ${bytes.length} | ${f1(r.parse.ns)} | ${f1(r.scan.ns)} | ${pctOf(r.scan.ns, r.parse.ns)} | ${f1((r.scan.ns * 1024) / bytes.length)} | ${f1(r.parse.cpuNs)} / ${f1(r.scan.cpuNs)} |`,
  );
}
console.log('\n## MessagePack (MCPW payload): scanMsgpack vs msgpackr unpack of the same bytes\n');
console.log('| payload | bytes | unpack ns | scan ns | scan ÷ unpack | CPU ns/op unpack / scan |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, value] of Object.entries(bodies)) {
  const bytes = packr.pack(value);
  const r = measure({
    unpack: () => (unpackr.unpack(bytes) === null ? 0 : 1),
    scan: () => (scanMsgpack(bytes).kind === 'ok' ? 1 : 0),
  });
  console.log(`| ${name} | ${bytes.length} | ${f1(r.unpack.ns)} | ${f1(r.scan.ns)} | ${pctOf(r.scan.ns, r.unpack.ns)} | ${f1(r.unpack.cpuNs)} / ${f1(r.scan.cpuNs)} |`);
}
if (sink === 42) console.log('');
