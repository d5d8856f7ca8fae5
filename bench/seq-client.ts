/**
 * The c=1 load of `npm run bench`: ONE keep-alive HTTP/1.1 connection, one request at a time, the
 * next written as soon as the previous response is complete, each request timed on its own
 * (`performance.now()` from the write to the last byte of the response). Latency percentiles come
 * from every request of the window, none dropped or corrected.
 *
 * Why not wrk at c=1: with one connection wrk's latency statistics disagreed with its own
 * throughput on this machine (6,737 req/s on one connection — a mean of 148 µs per request — with
 * a reported mean latency of 736 µs and p99 12 ms), so its per-request figures cannot be taken at
 * c=1. A sequential client cannot disagree with itself: requests ÷ window = 1 ÷ mean latency
 * (plus its own turn-around), and that identity is checked and printed (`mean_us` beside `rps`).
 *
 * Why a raw socket and not `http.Agent`: node:http adds tens of µs of its own parser and stream
 * machinery per request to both sides of the comparison; the raw client writes a prepared request
 * (only the JSON-RPC id changes) and scans the reply for `Content-Length` or chunked framing. Its
 * own cost is visible in the same run: the raw uWS row at c=1 is this client against a server
 * that does nothing.
 *
 * Usage: node --import tsx bench/seq-client.ts '<json options>'   (see {@link SeqOptions})
 * Output (stdout): one line `BENCH_SEQ {...Point, p90_us, p999_us, max_us, mean_us, over_1ms,
 * over_5ms}`. Exit 1 with a message on stderr when the connection fails, a reply cannot be framed,
 * or the first reply is not the expected one.
 */
import { connect, type Socket } from 'node:net';
import { fillOtherCpu, quantile, systemCpuSeconds, treeCpuSeconds, type Point } from './lib.js';

/** What one window of the sequential client does. */
export interface SeqOptions {
  /** `http://127.0.0.1:PORT/mcp`. */
  url: string;
  /** Mcp-Session-Id ('' = none). */
  session: string;
  tool: string;
  message: string;
  /** Length of the measured window, s. */
  seconds: number;
  /** Inspect every body: a JSON-RPC `result` without `"isError":true`, as bench/mcp-call.lua does. */
  checkBodies: boolean;
  /** The server under load: the CPU of its process tree over the window is reported as `tree_cpu_s.server`. */
  serverPid: number;
  /** More process trees measured over the same window (e.g. the gateway's upstreams). */
  trees: Record<string, number>;
}

/** A point of the sequential client: {@link Point} plus the tail it sees. Latencies in µs. */
export interface SeqPoint extends Point {
  mean_us: number;
  p90_us: number;
  p999_us: number;
  max_us: number;
  /** Requests slower than 1 ms / 5 ms. */
  over_1ms: number;
  over_5ms: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');

/**
 * Where the HTTP/1.1 response at the start of `buf` ends: its byte length, or 0 while incomplete.
 * Handles `Content-Length` and `Transfer-Encoding: chunked` (RFC 9112 §6,
 * https://www.rfc-editor.org/rfc/rfc9112#section-6).
 * @throws Error for a response with neither (this client cannot frame it).
 */
export function responseLength(buf: Buffer): number {
  const headEnd = buf.indexOf(CRLF2);
  if (headEnd < 0) return 0;
  const head = buf.toString('latin1', 0, headEnd).toLowerCase();
  const bodyStart = headEnd + 4;
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (cl) {
    const end = bodyStart + Number(cl[1]);
    return buf.length >= end ? end : 0;
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) {
    let at = bodyStart;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at, 'latin1');
      if (lineEnd < 0) return 0;
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
      if (!Number.isFinite(size)) throw new Error(`bad chunk size line: ${JSON.stringify(buf.toString('latin1', at, lineEnd))}`);
      if (size === 0) {
        // no trailers expected: the last chunk is followed by an empty line
        const end = lineEnd + 4;
        return buf.length >= end ? end : 0;
      }
      at = lineEnd + 2 + size + 2;
      if (buf.length < at) return 0;
    }
  }
  throw new Error(`response with neither Content-Length nor chunked framing: ${JSON.stringify(head.slice(0, 200))}`);
}

/** The status code of the response at the start of `buf`. */
const statusOf = (buf: Buffer): number => Number(buf.toString('latin1', 9, 12));

/** Runs one window; resolves with its point. */
export async function runSequential(o: SeqOptions): Promise<SeqPoint> {
  const u = new URL(o.url);
  const prefix = '{"jsonrpc":"2.0","id":';
  const suffix = `,"method":"tools/call","params":{"name":${JSON.stringify(o.tool)},"arguments":{"message":${JSON.stringify(o.message)}}}}`;
  const fixedHeaders =
    `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\n` +
    `Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n` +
    (o.session !== '' ? `Mcp-Session-Id: ${o.session}\r\n` : '');
  const socket: Socket = connect({ host: u.hostname, port: Number(u.port) });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });

  let lat = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  let id = 0;
  let pending: Buffer = Buffer.alloc(0);
  let sentAt = 0;
  let firstReply: string | undefined;
  const cpu0 = process.cpuUsage();
  const server0 = treeCpuSeconds(o.serverPid);
  const trees = Object.entries(o.trees);
  const trees0 = trees.map(([, pid]) => treeCpuSeconds(pid));
  const sys0 = systemCpuSeconds();
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;

  const send = (): void => {
    const body = `${prefix}${++id}${suffix}`;
    const req = `${fixedHeaders}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    sentAt = performance.now();
    socket.write(req);
  };

  const done = new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`the server closed the connection after ${n} requests`)));
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let len: number;
      try {
        len = responseLength(pending);
      } catch (err) {
        reject(err as Error);
        return;
      }
      if (len === 0) return;
      const now = performance.now();
      if (len !== pending.length) {
        reject(new Error(`bytes after a complete response (one request at a time): ${pending.length - len}`));
        return;
      }
      const reply = pending;
      pending = Buffer.alloc(0);
      if (n === lat.length) {
        const bigger = new Float64Array(lat.length * 2);
        bigger.set(lat);
        lat = bigger;
      }
      lat[n++] = (now - sentAt) * 1000;
      const status = statusOf(reply);
      if (firstReply === undefined) firstReply = reply.toString('utf8');
      if (status < 200 || status > 299) errors++;
      else if (o.checkBodies) {
        const text = reply.toString('utf8');
        if (!text.includes('"result"') || text.includes('"isError":true')) errors++;
      }
      if (now < end) send();
      else resolve();
    });
  });
  send();
  await done;
  const elapsed = (performance.now() - t0) / 1000;
  const serverCpu = treeCpuSeconds(o.serverPid) - server0;
  const treeCpu: Record<string, number> = { server: serverCpu };
  trees.forEach(([name, pid], i) => (treeCpu[name] = treeCpuSeconds(pid) - (trees0[i] as number)));
  const cpu = process.cpuUsage(cpu0);
  const clientCpu = (cpu.user + cpu.system) / 1e6;
  socket.destroy();

  if (firstReply !== undefined && !/^HTTP\/1\.1 2\d\d/.test(firstReply)) throw new Error(`the first reply is not a 2xx: ${firstReply.slice(0, 300)}`);
  const sorted = lat.subarray(0, n).sort();
  let sum = 0;
  let over1 = 0;
  let over5 = 0;
  for (const v of sorted) {
    sum += v;
    if (v > 1000) over1++;
    if (v > 5000) over5++;
  }
  const point: SeqPoint = {
    requests: n,
    seconds: elapsed,
    rps: n / elapsed,
    p50_us: quantile(sorted, 0.5),
    p99_us: quantile(sorted, 0.99),
    mean_us: n > 0 ? sum / n : NaN,
    p90_us: quantile(sorted, 0.9),
    p999_us: quantile(sorted, 0.999),
    max_us: n > 0 ? (sorted[n - 1] as number) : NaN,
    over_1ms: over1,
    over_5ms: over5,
    errors,
    checked: o.checkBodies ? n : 0,
    loadgen_cpu_pct: (100 * clientCpu) / elapsed,
    server_cpu_pct: (100 * serverCpu) / elapsed,
    tree_cpu_s: treeCpu,
  };
  fillOtherCpu(point, sys0, clientCpu + serverCpu, elapsed);
  return point;
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const raw = process.argv[2];
  if (raw === undefined) {
    process.stderr.write("usage: node --import tsx bench/seq-client.ts '<json options>'\n");
    process.exit(2);
  }
  runSequential(JSON.parse(raw) as SeqOptions).then(
    (p) => {
      process.stdout.write(`BENCH_SEQ ${JSON.stringify(p)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`seq-client: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
