/**
 * `npm run bench:mcpw`: the MCPW frame codec (src/codecs/mcpw.ts) against JSON text, same run.
 *
 *   1. header decode of the seed's Ping heartbeat (24 bytes, a fresh-looking uWS `ArrayBuffer`):
 *      `readHeader` into reusable fields (what the `/ws` endpoint runs per frame), `decodeHeader`
 *      (a new header object with a `bigint` id per call) and `decodeFrame`, beside the floor of
 *      any byte-reading decode (one `Uint8Array` view, the magic and the id's low word)
 *   2. encode and decode of a tools/call Response carrying a tool result of ≈64 B, 1 KiB and
 *      64 KiB (JSON-RPC message text size), gzip off and on, beside the baseline:
 *        encode  MCPW `encodeFrame(frame)`            vs JSON `Buffer.from(JSON.stringify(message))`
 *        decode  MCPW `decodeFrame(arrayBuffer)`      vs JSON `JSON.parse(Buffer.from(arrayBuffer).toString())`
 *      and, on the gzip rows, the JSON baseline gzip'd the same way (zlib level 1) and gunzip'd.
 *      gzip rows force compression (`gzipThreshold: 0`); with the default 1 KiB threshold the
 *      64 B payload would not be compressed.
 *   3. the encode strategy: msgpackr `RESERVE_START_SPACE` (header written into the 24 bytes
 *      reserved ahead of the payload: one buffer, no copy; what encodeFrame does) against
 *      `pack()` then one allocation of header + payload and a copy.
 *
 * Each number is the median of ROUNDS timed rounds of ≥ ROUND_MS each after a warm-up, in ops per
 * CPU-second of this process (user + system from `process.cpuUsage`, i.e. /proc; wall time would
 * measure the scheduler on a shared machine); the variants compared in one table row take turns
 * round by round (same load on the machine); MB/s = ops/s × that format's wire bytes (1 MB = 10^6
 * bytes). Profile: `node --cpu-prof --cpu-prof-dir=bench/results --import tsx bench/mcpw.ts`. Environment: BENCH_MCPW_ROUND_MS
 * (default 250), BENCH_MCPW_ROUNDS (default 5).
 *
 * Prints markdown tables and the targets as PASS/MISS (header decode — `readHeader` — ≥ 20 M frames/s;
 * MCPW ≥ 30% fewer bytes than JSON for typical tool results); a MISS never fails the process
 * (DESIGN: benchmarks never gate on absolute times).
 */
import os from 'node:os';
import { gunzipSync, gzipSync } from 'node:zlib';
import { isNativeAccelerationEnabled, Packr, RESERVE_START_SPACE } from 'msgpackr';
import { decodeFrame, decodeHeader, encodeFrame, McpwHeaderFields, McpwMethod, McpwType, pingFrame, readHeader, type McpwFrame } from '../src/codecs/mcpw.js';

const ROUND_MS = Number(process.env['BENCH_MCPW_ROUND_MS'] ?? 250);
const ROUNDS = Number(process.env['BENCH_MCPW_ROUNDS'] ?? 5);

let sink = 0;

/**
 * Median ops per CPU-second of each function over ROUNDS rounds of ≥ ROUND_MS (wall) each, after a
 * warm-up round. The rate's time base is this process's CPU time (`process.cpuUsage`, user +
 * system, all threads: GC helpers count), not wall time, so a shared, loaded machine — where
 * the process gets a fraction of a core — gives the cost of the code, not the scheduler's share.
 * The functions take turns round by round, so a burst of load hits all of them alike.
 */
function opsPerSecond<K extends string>(fns: Record<K, () => unknown>): Record<K, number> {
  const names = Object.keys(fns) as K[];
  const rates = new Map<K, number[]>(names.map((n) => [n, []]));
  const batches = new Map<K, number>(names.map((n) => [n, 1]));
  for (let round = -1; round < ROUNDS; round++) {
    for (const name of names) {
      const fn = fns[name];
      let batch = batches.get(name) ?? 1;
      let ops = 0;
      const started = performance.now();
      const cpu0 = process.cpuUsage();
      let elapsed = 0;
      while (elapsed < ROUND_MS) {
        for (let i = 0; i < batch; i++) if (fn() !== undefined) sink++;
        ops += batch;
        elapsed = performance.now() - started;
        if (elapsed < ROUND_MS / 20) batch *= 2;
      }
      const cpu = process.cpuUsage(cpu0);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      batches.set(name, batch);
      if (round >= 0 && cpuMs > 0) rates.get(name)?.push((ops * 1000) / cpuMs);
    }
  }
  const out = {} as Record<K, number>;
  for (const name of names) {
    const sorted = (rates.get(name) ?? []).sort((a, b) => a - b);
    out[name] = sorted[Math.floor(sorted.length / 2)] ?? 0;
  }
  return out;
}

/** A tools/call result as an upstream returns it: a text part plus structured content, grown to ≈ `target` bytes of JSON-RPC message text. */
function toolResult(target: number): Record<string, unknown> {
  if (target <= 64) return { content: [{ type: 'text', text: 'ok' }], isError: false };
  const files: Array<Record<string, unknown>> = [];
  const result = {
    content: [{ type: 'text', text: 'Found matching files under /srv/projects/tributary, newest first.' }],
    structuredContent: { files, truncated: false },
    isError: false,
  };
  for (let i = 0; JSON.stringify(message(result)).length < target; i++) {
    files.push({
      path: `src/module-${i}/file-${i}.ts`,
      size: 1024 + ((i * 7919) % 65536),
      modified: 1_700_000_000_000 + i * 86_400_000,
      lines: 40 + ((i * 31) % 900),
      score: Math.round((1 / (i + 2)) * 10_000) / 10_000,
      binary: false,
      tags: i % 3 === 0 ? ['ts', 'src'] : ['ts'],
    });
  }
  return result;
}

function message(result: Record<string, unknown>): Record<string, unknown> {
  return { jsonrpc: '2.0', id: 42, result };
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(bytes.length);
  new Uint8Array(ab).set(bytes);
  return ab;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMB = (opsPerSec: number, bytes: number): string => ((opsPerSec * bytes) / 1e6).toFixed(0);
const fmtX = (r: number): string => `${r.toFixed(2)}×`;

interface Row {
  label: string;
  gzip: boolean;
  mcpwBytes: number;
  jsonBytes: number;
  mcpwEnc: number;
  jsonEnc: number;
  mcpwDec: number;
  jsonDec: number;
}

function measure(label: string, target: number, gzip: boolean): Row {
  const result = toolResult(target);
  const msg = message(result);
  const frame: McpwFrame = { type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 42n, payload: result };
  const options = gzip ? { gzip: true, gzipThreshold: 0 } : {};
  const mcpw = encodeFrame(frame, options);
  const mcpwAb = toArrayBuffer(mcpw);
  const json = Buffer.from(JSON.stringify(msg));
  const jsonWire = gzip ? gzipSync(json, { level: 1 }) : json;
  const jsonAb = toArrayBuffer(jsonWire);

  // sanity: both sides decode to the same result
  const check = decodeFrame(mcpwAb);
  if (!check.ok || JSON.stringify(check.frame.payload) !== JSON.stringify(result)) throw new Error(`MCPW round trip failed for ${label}`);

  const r = opsPerSecond({
    mcpwEnc: () => encodeFrame(frame, options).length,
    jsonEnc: gzip ? () => gzipSync(Buffer.from(JSON.stringify(msg)), { level: 1 }).length : () => Buffer.from(JSON.stringify(msg)).length,
    mcpwDec: () => (decodeFrame(mcpwAb).ok ? 1 : 0),
    jsonDec: gzip
      ? () => (JSON.parse(gunzipSync(Buffer.from(jsonAb)).toString()) as unknown) !== null
      : () => (JSON.parse(Buffer.from(jsonAb).toString()) as unknown) !== null,
  });
  const { mcpwEnc, jsonEnc, mcpwDec, jsonDec } = r;
  return { label, gzip, mcpwBytes: mcpw.length, jsonBytes: jsonWire.length, mcpwEnc, jsonEnc, mcpwDec, jsonDec };
}

function main(): void {
  console.log(`# MCPW codec vs JSON (Node ${process.version}, ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? '?'})`);
  console.log('');
  console.log(`msgpackr native acceleration: ${String(isNativeAccelerationEnabled)}; median of ${ROUNDS} rounds × ≥ ${ROUND_MS} ms; rates per CPU-second of this process; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')}.`);
  console.log('');

  // 1. header decode
  const seed = toArrayBuffer(encodeFrame(pingFrame(1_700_000_000_000n)));
  const fields = new McpwHeaderFields();
  const header = opsPerSecond({
    readHeader: () => (readHeader(seed, fields) === undefined ? fields.requestIdLow : 0),
    decodeHeader: () => (decodeHeader(seed).ok ? 1 : 0),
    decodeFrame: () => (decodeFrame(seed).ok ? 1 : 0),
    encodePing: () => encodeFrame(pingFrame(7n)).length,
    // the floor of any byte-reading header decode: one Uint8Array view on the ArrayBuffer, magic + the id's low byte
    floor: () => {
      const b = new Uint8Array(seed);
      return b[0] === 0x4d && b[1] === 0x43 && b[2] === 0x50 && b[3] === 0x57 ? (b[23] ?? 0) : 0;
    },
  });
  const headerRate = header.readHeader;
  console.log('## Header decode (24-byte Ping heartbeat, ArrayBuffer input)');
  console.log('');
  console.log('| operation | frames per CPU-second |');
  console.log('|---|---:|');
  console.log(`| readHeader into reusable fields (the /ws per-frame read) | ${fmtInt(headerRate)} |`);
  console.log(`| decodeHeader (new header object, bigint id) | ${fmtInt(header.decodeHeader)} |`);
  console.log(`| decodeFrame (empty payload) | ${fmtInt(header.decodeFrame)} |`);
  console.log(`| encodeFrame(pingFrame(id)) | ${fmtInt(header.encodePing)} |`);
  console.log(`| floor: new Uint8Array view + magic + one id byte, no checks | ${fmtInt(header.floor)} |`);
  console.log('');

  // 2. payload sizes
  const rows: Row[] = [];
  for (const [label, target] of [['64 B', 64], ['1 KiB', 1024], ['64 KiB', 65536]] as const) {
    for (const gzip of [false, true]) rows.push(measure(label, target, gzip));
  }
  console.log('## tools/call result: MCPW (msgpackr) vs JSON text');
  console.log('');
  console.log('Sizes are wire bytes (MCPW: 24-byte header + payload; JSON: message text, gzip\'d on gzip rows). × = MCPW ÷ JSON (ops/s = ops per CPU-second: > 1 is MCPW faster; bytes: < 1 is MCPW smaller).');
  console.log('');
  console.log('| payload | gzip | MCPW B | JSON B | bytes × | enc MCPW ops/s | enc MCPW MB/s | enc JSON ops/s | enc JSON MB/s | enc × | dec MCPW ops/s | dec MCPW MB/s | dec JSON ops/s | dec JSON MB/s | dec × |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.label} | ${r.gzip ? 'on' : 'off'} | ${r.mcpwBytes} | ${r.jsonBytes} | ${fmtX(r.mcpwBytes / r.jsonBytes)} ` +
        `| ${fmtInt(r.mcpwEnc)} | ${fmtMB(r.mcpwEnc, r.mcpwBytes)} | ${fmtInt(r.jsonEnc)} | ${fmtMB(r.jsonEnc, r.jsonBytes)} | ${fmtX(r.mcpwEnc / r.jsonEnc)} ` +
        `| ${fmtInt(r.mcpwDec)} | ${fmtMB(r.mcpwDec, r.mcpwBytes)} | ${fmtInt(r.jsonDec)} | ${fmtMB(r.jsonDec, r.jsonBytes)} | ${fmtX(r.mcpwDec / r.jsonDec)} |`,
    );
  }
  console.log('');

  // 3. encode strategy
  const packr = new Packr({ useRecords: false });
  console.log('## Encode strategy: header written into msgpackr\'s reserved start space vs pack + allocate + copy');
  console.log('');
  console.log('| payload | reserve-start-space ops/s | pack+alloc+copy ops/s | × |');
  console.log('|---|---:|---:|---:|');
  for (const [label, target] of [['64 B', 64], ['1 KiB', 1024], ['64 KiB', 65536]] as const) {
    const result = toolResult(target);
    const { inPlace, copied } = opsPerSecond({
      inPlace: () => {
        const out = packr.pack(result, RESERVE_START_SPACE | 24);
        const view = new DataView(out.buffer, out.byteOffset, 24);
        view.setUint32(0, 0x4d435057);
        view.setUint32(12, out.length - 24);
        view.setBigUint64(16, 42n);
        return out.length;
      },
      copied: () => {
        const packed = packr.pack(result);
        const out = Buffer.allocUnsafe(24 + packed.length);
        const view = new DataView(out.buffer, out.byteOffset, 24);
        view.setUint32(0, 0x4d435057);
        view.setUint32(12, packed.length);
        view.setBigUint64(16, 42n);
        out.set(packed, 24);
        return out.length;
      },
    });
    console.log(`| ${label} | ${fmtInt(inPlace)} | ${fmtInt(copied)} | ${fmtX(inPlace / copied)} |`);
  }
  console.log('');

  // the codec's throughput targets (informational, never a gate)
  console.log(`Target: header decode (readHeader) ≥ 20 M frames/s: ${(headerRate / 1e6).toFixed(1)} M → ${headerRate >= 20e6 ? 'PASS' : 'MISS'}`);
  for (const r of rows.filter((x) => !x.gzip && x.label !== '64 B')) {
    const saved = 1 - r.mcpwBytes / r.jsonBytes;
    console.log(`Target: MCPW ≥ 30% fewer bytes than JSON (${r.label} tool result): ${(saved * 100).toFixed(0)}% → ${saved >= 0.3 ? 'PASS' : 'MISS'}`);
  }
  if (sink === -1) console.log(''); // keeps `sink` observable
}

main();
