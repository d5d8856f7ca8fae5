/**
 * `npm run bench:result-text`: what the gateway does with a stdio upstream's `tools/call` answer
 * besides relaying it — read the line, write the caller's reply, keep the tool-log payload — with
 * the result kept as the JSON text it arrived in (`codecs/json-text.ts`: the line's result parsed
 * alone, the reply and the payload copy its text) against the baseline of the same run: the whole
 * line parsed and shape-checked (`JSON.parse` + `jsonRpcShapeProblem`, as the framing does for
 * every other line), the reply `JSON.stringify`d and the payload packed from the value
 * (`capPayloadPacked` of a result without kept text).
 *
 * Results: server-everything's echo answer (the bench's call), and text results of 1, 4 and 16 KiB,
 * and a structured one (a list of 40 small records). Prints ns per answer (median of ROUNDS rounds),
 * and the ratio. Run it on one core: `taskset -c 1 npm run bench:result-text`.
 * Profile: `taskset -c 1 node --cpu-prof --cpu-prof-dir=/tmp/result-text-prof --import tsx bench/result-text.ts`.
 * Environment: BENCH_RESULT_ROUNDS (default 7), BENCH_RESULT_ITERATIONS (per round, default 20000).
 */
import os from 'node:os';
import { median, nsPerCall } from './lib.js';
import { stringifyMessage } from '../src/codecs/json-text.js';
import { capPayloadPacked, DEFAULT_PAYLOAD_CAP_BYTES } from '../src/store/cap-payload.js';
import { jsonRpcShapeProblem, parseJsonRpcLine } from '../src/upstreams/stdio-framing.js';

const ROUNDS = Number(process.env['BENCH_RESULT_ROUNDS'] ?? 7);
const ITERATIONS = Number(process.env['BENCH_RESULT_ITERATIONS'] ?? 20000);

/** A line as the TypeScript SDK writes a response: `{result, jsonrpc, id}`. */
const line = (result: object, id: string): string => JSON.stringify({ result, jsonrpc: '2.0', id });
const text = (s: string): object => ({ content: [{ type: 'text', text: s }] });

const CASES: { name: string; result: object }[] = [
  { name: 'echo (server-everything)', result: text('Echo: hello') },
  { name: 'text 1 KiB', result: text('x'.repeat(1024)) },
  { name: 'text 4 KiB', result: text('lorem ipsum '.repeat(342)) },
  { name: 'text 16 KiB (over the log cap)', result: text('y'.repeat(16 * 1024)) },
  { name: '40 records', result: { structuredContent: { rows: Array.from({ length: 40 }, (_, i) => ({ id: i, ok: true, tag: `t${i}` })) }, content: [] } },
];

type Answer = (l: string, id: number) => number;

/** The baseline: parse the whole line, check its shape, stringify the reply, pack the value. */
const baseline: Answer = (l, id) => {
  const m = JSON.parse(l) as { result: object };
  if (jsonRpcShapeProblem(m) !== undefined) throw new Error('bad line');
  const body = JSON.stringify({ jsonrpc: '2.0', id, result: m.result });
  return body.length + capPayloadPacked(m.result, DEFAULT_PAYLOAD_CAP_BYTES).bytes.length;
};

/** Kept text: the framing's short cut, the reply and the payload copying the text. */
const keptText: Answer = (l, id) => {
  const m = parseJsonRpcLine(l) as { result: object };
  const body = stringifyMessage({ jsonrpc: '2.0', id, result: m.result });
  return body.length + capPayloadPacked(m.result, DEFAULT_PAYLOAD_CAP_BYTES).bytes.length;
};

const round = (f: Answer, inputs: readonly Parameters<Answer>[0][]): number => nsPerCall(f, inputs, ITERATIONS);

function main(): void {
  const rows: string[] = [];
  for (const c of CASES) {
    // distinct ids per line, as answers carry
    const lines = Array.from({ length: 64 }, (_, i) => line(c.result, `t${1000 + i}`));
    // the two must write the same reply and keep the same payload value
    const a = JSON.parse(JSON.stringify({ jsonrpc: '2.0', id: 1, result: (parseJsonRpcLine(lines[0] as string) as { result: object }).result })) as unknown;
    const b = JSON.parse(stringifyMessage({ jsonrpc: '2.0', id: 1, result: (parseJsonRpcLine(lines[0] as string) as { result: object }).result })) as unknown;
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${c.name}: replies differ`);
    round(baseline, lines);
    round(keptText, lines);
    const base: number[] = [];
    const kept: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      base.push(round(baseline, lines));
      kept.push(round(keptText, lines));
    }
    const mb = median(base);
    const mk = median(kept);
    rows.push(`| ${c.name} | ${line(c.result, 't1000').length} | ${mb.toFixed(0)} | ${mk.toFixed(0)} | ${(mk / mb).toFixed(2)} |`);
  }
  console.log(`## Result path per answer: kept JSON text vs parse + re-serialise (${os.cpus()[0]?.model ?? '?'}, node ${process.version}, ${ROUNDS} rounds × ${ITERATIONS})`);
  console.log('');
  console.log('| result | line bytes | baseline ns | kept text ns | ratio |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
}

main();
