/**
 * `npm run bench:request-text`: what the gateway does with a client's `tools/call` on its way to a
 * stdio upstream besides routing it — parse the POST body, write the upstream's stdin line (into a
 * buffer, as the pipe write encodes it), keep the tool-log payload of the arguments — with the
 * arguments kept as the JSON text the client sent (`codecs/json-text.ts`: the body parsed by
 * parts, the arguments alone by `JSON.parse`; the stdin line and the payload copy their text)
 * against the baseline of the same run: the whole body `JSON.parse`d, the request
 * `JSON.stringify`d, the payload packed from the value (`capPayloadPacked` of arguments without
 * kept text).
 *
 * Arguments: the bench's echo call (`{"message":"hello"}`), text of 1 and 4 KiB, 40 small records.
 * Prints ns per call (median of ROUNDS rounds) and the ratio. Run it on one core:
 * `taskset -c 1 npm run bench:request-text`.
 * Profile: `taskset -c 1 node --cpu-prof --cpu-prof-dir=/tmp/request-text-prof --import tsx bench/request-text.ts`.
 * Environment: BENCH_REQUEST_ROUNDS (default 7), BENCH_REQUEST_ITERATIONS (per round, default 20000).
 */
import os from 'node:os';
import { median, nsPerCall } from './lib.js';
import { parseMessageText } from '../src/codecs/json-text.js';
import { capPayloadPacked, DEFAULT_PAYLOAD_CAP_BYTES } from '../src/store/cap-payload.js';
import { encodeJsonRpcLine } from '../src/upstreams/stdio-framing.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

const ROUNDS = Number(process.env['BENCH_REQUEST_ROUNDS'] ?? 7);
const ITERATIONS = Number(process.env['BENCH_REQUEST_ITERATIONS'] ?? 20000);

const CASES: { name: string; args: object }[] = [
  { name: 'echo (the bench call)', args: { message: 'hello' } },
  { name: 'text 1 KiB', args: { message: 'x'.repeat(1024) } },
  { name: 'text 4 KiB', args: { message: 'lorem ipsum '.repeat(342) } },
  { name: '40 records', args: { rows: Array.from({ length: 40 }, (_, i) => ({ id: i, ok: true, tag: `t${i}` })) } },
];

/** The POST body as wrk's script (and the JSON-RPC specification's examples) order it. */
const body = (args: object, id: number): Buffer => Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'everything-echo', arguments: args } }));

const out = Buffer.allocUnsafe(1 << 20);

type Call = (b: Buffer, i: number) => number;

/** Body → message, the request table's request, its stdin line (encoded into bytes), the arguments' payload. */
function call(parse: (text: string) => unknown): Call {
  return (b, i) => {
    const m = parse(b.toString('utf8')) as { params: Record<string, unknown> };
    // as `invokeToolTo` and the request table build it: the upstream's own tool name, a fresh id
    const request = { jsonrpc: '2.0', id: `t${i}`, method: 'tools/call', params: { ...m.params, name: 'echo' } };
    const written = out.write(encodeJsonRpcLine(request as JSONRPCMessage));
    return written + capPayloadPacked(m.params['arguments'], DEFAULT_PAYLOAD_CAP_BYTES).bytes.length;
  };
}

/** The baseline: the whole body parsed (no text kept), so the line and the payload serialise the value. */
const baseline = call((text) => JSON.parse(text) as unknown);
/** Kept text: the body parsed by parts, the line and the payload copying the arguments' text. */
const keptText = call(parseMessageText);

const round = (f: Call, inputs: readonly Parameters<Call>[0][]): number => nsPerCall(f, inputs, ITERATIONS);

function main(): void {
  const rows: string[] = [];
  for (const c of CASES) {
    // distinct ids per body, as clients send them
    const bodies = Array.from({ length: 64 }, (_, i) => body(c.args, 1000 + i));
    // the two must write the same stdin line
    const line = (parse: (text: string) => unknown): string => {
      const m = parse((bodies[0] as Buffer).toString('utf8')) as { params: Record<string, unknown> };
      return encodeJsonRpcLine({ jsonrpc: '2.0', id: 't1', method: 'tools/call', params: { ...m.params, name: 'echo' } } as JSONRPCMessage);
    };
    if (line(JSON.parse) !== line(parseMessageText)) throw new Error(`${c.name}: stdin lines differ`);
    round(baseline, bodies);
    round(keptText, bodies);
    const base: number[] = [];
    const kept: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      base.push(round(baseline, bodies));
      kept.push(round(keptText, bodies));
    }
    const mb = median(base);
    const mk = median(kept);
    rows.push(`| ${c.name} | ${(bodies[0] as Buffer).length} | ${mb.toFixed(0)} | ${mk.toFixed(0)} | ${(mk / mb).toFixed(2)} |`);
  }
  console.log(`## Request path per call: kept arguments text vs parse + re-serialise (${os.cpus()[0]?.model ?? '?'}, node ${process.version}, ${ROUNDS} rounds × ${ITERATIONS})`);
  console.log('');
  console.log('| arguments | body bytes | baseline ns | kept text ns | ratio |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
}

main();
