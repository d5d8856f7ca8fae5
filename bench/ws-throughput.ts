/**
 * `npm run bench:ws`: MCP `tools/call` throughput and latency over the gateway's three agent
 * transports, against one gateway in one run:
 *
 *   - `/ws` JSON-RPC text frames
 *   - `/ws` MCPW binary frames (method 0003 tools/call, msgpack payload), request not gzip'd
 *   - `/ws` MCPW binary frames with the request payload gzip'd (flag bit0)
 *   - `/mcp` Streamable HTTP (established session, keep-alive)
 *
 * all driven by the same Node load generator (bench/ws-throughput-load.ts, one process per point)
 * pinned to core 1, closed loop with `BENCH_CONCURRENCY` (64) requests in flight: `/ws` on
 * `BENCH_WS_CONNECTIONS` (1) WebSocket(s) — the gateway allows 64 in flight per connection — and
 * `/mcp` on 64 keep-alive connections, one request each. The tool is the in-process `demo-echo`
 * with a `BENCH_ARG_BYTES` (4096) message, so the reply is as big. A wrk row (bench/mcp-call.lua)
 * drives `/mcp` once more as a cross-check that the Node client is not what limits `/mcp`.
 *
 * The gateway is the tsc build run as `node dist/main.js` (as `npm start` does), pinned to core 0,
 * with two upstreams: the in-process `demo` and a stdio `fixture` (bench/ws-throughput-records.ts,
 * idle during the load) whose structured results feed the bytes table. Before the load, each
 * transport's first reply is checked field by field; during it every reply is decoded and compared.
 *
 * Bytes on the wire: one call per case and transport, sizes read off the sockets: a text and a
 * JSON-heavy structured tool result of 1 KiB and 64 KiB, and JSON-heavy arguments.
 *
 * Environment: BENCH_DURATION (s per point, default 5), BENCH_WARMUP (s, default 1), BENCH_RUNS
 * (default 2), BENCH_CONCURRENCY (default 64), BENCH_WS_CONNECTIONS (default 1), BENCH_ARG_BYTES
 * (default 4096), BENCH_WRK (default 1: add the wrk row when wrk is installed), BENCH_QUIET_WAIT
 * (s, default 5: before each point wait up to this long for other work on the machine to stop),
 * BENCH_PROFILE (1: run the gateway under --cpu-prof and print its top self-time functions per
 * transport; profiling slows it down), BENCH_GATEWAY_BUILD (a directory holding a gateway build as
 * `dist/` plus `package.json` and `node_modules`, used instead of compiling src/: for experiments
 * on a patched copy), BENCH_VARIANTS (comma-separated keys of the rows to run, e.g.
 * `ws-mcpw,http`; default all), BENCH_BYTES (0: skip the bytes-on-the-wire table),
 * BENCH_NODE_FLAGS (the gateway's node flags; default those of `npm start`).
 *
 * The gateway's CPU per call is also split by thread (from `/proc/PID/task/TID/stat`): the main
 * thread (JavaScript, uWS, the upstream when in-process) and the rest (V8's GC helpers, the libuv
 * pool, LevelDB's writer and compactions), since both count in the gateway's figure.
 *
 * Profile command (the gateway under `--cpu-prof`, top self time per transport in the output):
 * `BENCH_PROFILE=1 BENCH_RUNS=1 BENCH_VARIANTS=ws-mcpw,http npm run bench:ws`.
 *
 * Prints markdown tables and the target checks (PASS/MISS; a MISS never fails the process) and
 * writes bench/results/ws-throughput.json.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import { McpwMethod, McpwType, decodeFrame, encodeFrame, type McpwDecodedFrame } from '../src/codecs/mcpw.js';
import { levelDbBinary } from '../src/store/leveldb-binary.js';
import { ChildGroup, envNumber, runMain, runWrk as runWrkPoint, signalGroup, wrkVersion } from './procs.js';
import { DISTURBED_PCT, checkLine, fillOtherCpu, fmtInt, initializeParams, mcpPost, mean, openSession, pct, systemCpuSeconds, treeCpuSeconds, waitForQuiet, writeResults, type Point, type TargetCheck } from './lib.js';
import { mainThreadProfile, selfTimeTable, topSelfTime, type ProfileSummary, type Window } from './profile.js';
import { records, wordText } from './ws-throughput-data.js';
import { RawHttpConnection, postRequest, type RawHttpResponse } from './ws-throughput-http.js';
import type { LoadConfig, LoadMode, LoadResult, LoadSample } from './ws-throughput-load.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const LOAD_SCRIPT = join(BENCH_DIR, 'ws-throughput-load.ts');
const RECORDS_SCRIPT = join(BENCH_DIR, 'ws-throughput-records.ts');
const LUA = join(BENCH_DIR, 'mcp-call.lua');


const DURATION = Math.max(1, Math.round(envNumber('BENCH_DURATION', 5)));
const WARMUP = Math.round(envNumber('BENCH_WARMUP', 1));
const RUNS = Math.max(1, Math.round(envNumber('BENCH_RUNS', 2)));
const CONCURRENCY = Math.max(1, Math.round(envNumber('BENCH_CONCURRENCY', 64)));
const WS_CONNECTIONS = Math.max(1, Math.min(CONCURRENCY, Math.round(envNumber('BENCH_WS_CONNECTIONS', 1))));
const ARG_BYTES = Math.max(1, Math.round(envNumber('BENCH_ARG_BYTES', 4096)));
const USE_WRK = (process.env['BENCH_WRK'] ?? '1') !== '0';
const QUIET_WAIT = envNumber('BENCH_QUIET_WAIT', 5);
const PROFILE = (process.env['BENCH_PROFILE'] ?? '0') === '1';
const ONLY = (process.env['BENCH_VARIANTS'] ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
const BYTES = (process.env['BENCH_BYTES'] ?? '1') !== '0';
const SERVER_CORE = '0';
const LOADGEN_CORE = '1';
const CLIENT = 'bench-ws';
const INIT = initializeParams(CLIENT);
/**
 * How the bytes probe's MCPW client sends: gzip over 1 KiB. The gateway's reply policy
 * (src/handlers/mcp/ws-outbound.ts `WsOutbound.frame`) then gzips its replies over 1 KiB too (it does so for a
 * client that has sent gzip, and for every client over 64 KiB).
 */
const GATEWAY_GZIP = { gzip: true, gzipThreshold: 1024 } as const;
/** The echo tool's `message` in the throughput points. */
const MESSAGE = wordText(ARG_BYTES, 3);

/**
 * The gateway's node flags: BENCH_NODE_FLAGS, else those of `npm start` (package.json
 * `scripts.start`, `node <flags> dist/main.js`), so the bench measures what users run.
 */
function gatewayNodeFlags(): string[] {
  const override = process.env['BENCH_NODE_FLAGS'];
  if (override !== undefined) return override.split(/\s+/).filter((f) => f !== '');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  const m = /^node((?:\s+--[^\s]+)*)\s+dist\/main\.js$/.exec((pkg.scripts?.start ?? '').trim());
  return (m?.[1] ?? '').split(/\s+/).filter((f) => f !== '');
}
const NODE_FLAGS = gatewayNodeFlags();

/** Clock ticks per second of /proc/PID/task/TID/stat times (USER_HZ; 100 on Linux). */
const CLK_TCK = 100;

/**
 * CPU seconds of one process, split into its main thread (TID = PID) and its other threads
 * (V8's GC helpers, the libuv pool, LevelDB's background thread); children not included.
 */
function threadCpuSeconds(pid: number): { main: number; others: number } {
  let main = 0;
  let others = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { main, others };
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const s = (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
      if (Number(tid) === pid) main += s;
      else others += s;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { main, others };
}

function progress(msg: string): void {
  process.stderr.write(`[bench:ws] ${msg}\n`);
}

// ---------------------------------------------------------------- processes

const procs = new ChildGroup(ROOT, progress);

interface Gateway {
  child: ChildProcess;
  url: string;
  profileDir?: string;
}

/** Starts the gateway (demo in-process + the stdio records fixture); resolves when /health says healthy. */
async function startGateway(dist: string): Promise<Gateway> {
  const profileDir = PROFILE ? join(RESULTS_DIR, 'profile-ws') : undefined;
  const { child, url } = await procs.startGateway({
    build: dist,
    config: {
      log_level: 'warn',
      // the retention sweep (default every 60 s) deletes down to 100k entries, a burst of LevelDB work
      // that would land on whichever point runs then; moved past the end of the bench
      tool_log: { sweep_interval_ms: 3_600_000 },
      mcp_clients: [
        { name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' },
        { name: 'fixture', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', RECORDS_SCRIPT], cwd: ROOT } },
      ],
    },
    tmpPrefix: 'tributary-bench-ws-',
    core: SERVER_CORE,
    log: join(RESULTS_DIR, 'gateway-ws.log'),
    what: 'gateway',
    logs: 'bench/results/gateway-ws.log',
    healthyOnly: true,
    nodeFlags: NODE_FLAGS,
    ...(profileDir !== undefined ? { profileDir } : {}),
  });
  return { child, url, ...(profileDir !== undefined ? { profileDir } : {}) };
}

// ---------------------------------------------------------------- points

interface Variant {
  key: string;
  label: string;
  mode: LoadMode | 'wrk';
}

const VARIANTS: Variant[] = [
  { key: 'ws-text', label: '/ws JSON-RPC text', mode: 'ws-text' },
  { key: 'ws-mcpw', label: '/ws MCPW', mode: 'ws-mcpw' },
  { key: 'ws-mcpw-gzip', label: '/ws MCPW, gzip\'d request', mode: 'ws-mcpw-gzip' },
  { key: 'http', label: '/mcp HTTP (Node client)', mode: 'http' },
  { key: 'http-wrk', label: '/mcp HTTP (wrk, cross-check)', mode: 'wrk' },
];

interface Row extends Point {
  variant: string;
  run: number;
  loadgen_elu?: number;
  ratio?: number;
  /** Gateway main thread / other threads, % of one core over the window (children excluded). */
  main_thread_cpu_pct?: number;
  other_threads_cpu_pct?: number;
}

const rows: Row[] = [];
const samples: Record<string, LoadSample | Record<string, unknown>> = {};
const failures: Record<string, string> = {};
const windows: Record<string, Window[]> = {};

/** One point with the Node load generator pinned to the load core. */
async function runLoad(gw: Gateway, v: Variant, run: number, seconds = DURATION, warmup = WARMUP): Promise<Point & { loadgen_elu: number; main_thread_cpu_pct: number; other_threads_cpu_pct: number }> {
  const cfg: LoadConfig = {
    mode: v.mode as LoadMode,
    url: gw.url,
    concurrency: CONCURRENCY,
    connections: WS_CONNECTIONS,
    seconds,
    warmup,
    tool: 'demo-echo',
    message: MESSAGE,
  };
  const child = procs.spawnPinned(LOADGEN_CORE, process.execPath, ['--import', 'tsx', LOAD_SCRIPT, JSON.stringify(cfg)]);
  const pid = child.pid as number;
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let server0 = 0;
  let server1 = 0;
  let threads0 = { main: 0, others: 0 };
  let threads1 = { main: 0, others: 0 };
  let sys0 = systemCpuSeconds();
  let result: LoadResult | undefined;
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  rl.on('line', (line) => {
    if (line.startsWith('LOAD_SAMPLE ')) {
      if (run === 1) samples[v.key] = JSON.parse(line.slice('LOAD_SAMPLE '.length)) as LoadSample;
    } else if (line.startsWith('LOAD_START ')) {
      server0 = treeCpuSeconds(gw.child.pid as number);
      threads0 = threadCpuSeconds(gw.child.pid as number);
      sys0 = systemCpuSeconds();
    } else if (line.startsWith('LOAD_END ')) {
      server1 = treeCpuSeconds(gw.child.pid as number);
      threads1 = threadCpuSeconds(gw.child.pid as number);
    } else if (line.startsWith('LOAD_RESULT ')) {
      result = JSON.parse(line.slice('LOAD_RESULT '.length)) as LoadResult;
    }
  });
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), (WARMUP + DURATION + 60) * 1000);
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  clearTimeout(timer);
  if (code !== 0 || result === undefined) throw new Error(`load generator (${v.mode}, pid ${pid}) failed (exit ${String(code)}): ${stderr.trim().slice(0, 800)}`);
  const r = result;
  if (run > 0) (windows[v.key] ??= []).push(r.window);
  const serverCpu = server1 - server0;
  const p: Point & { loadgen_elu: number; main_thread_cpu_pct: number; other_threads_cpu_pct: number } = {
    requests: r.requests,
    seconds: r.seconds,
    rps: r.rps,
    p50_us: r.p50_us,
    p99_us: r.p99_us,
    errors: r.errors,
    error_detail: r.error_detail,
    checked: r.checked,
    loadgen_cpu_pct: r.loadgen_cpu_pct,
    loadgen_elu: r.loadgen_elu,
    server_cpu_pct: (100 * serverCpu) / r.seconds,
    main_thread_cpu_pct: (100 * (threads1.main - threads0.main)) / r.seconds,
    other_threads_cpu_pct: (100 * (threads1.others - threads0.others)) / r.seconds,
  };
  fillOtherCpu(p, sys0, (r.loadgen_cpu_pct / 100) * r.seconds + serverCpu, r.seconds);
  return p;
}

/** wrk (1 thread, CONCURRENCY connections, bench/mcp-call.lua with body checks) against /mcp. */
async function runWrk(gw: Gateway, session: string, seconds: number): Promise<Point> {
  const { point, window } = await runWrkPoint(procs, {
    script: LUA,
    url: `${gw.url}/mcp`,
    concurrency: CONCURRENCY,
    seconds,
    env: { MCP_SESSION: session, MCP_TOOL: 'demo-echo', MCP_MESSAGE: MESSAGE, MCP_CHECK_BODIES: '1' },
    serverPid: gw.child.pid as number,
    core: LOADGEN_CORE,
  });
  if (seconds === DURATION) (windows['http-wrk'] ??= []).push(window);
  return point;
}

// ---------------------------------------------------------------- bytes on the wire

/** WebSocket frame header bytes for a payload of `len` bytes (RFC 6455; client frames carry a 4-byte mask). */
function wsHeaderBytes(len: number, masked: boolean): number {
  return (len < 126 ? 2 : len < 65536 ? 4 : 10) + (masked ? 4 : 0);
}

interface BytesCase {
  label: string;
  /** What the row compares: the reply (tool result) or the request (tool arguments). */
  direction: 'result' | 'arguments';
  tool: string;
  args: Record<string, unknown>;
  /** Counts for the "typical tool result" target. */
  target: boolean;
}

interface BytesRow {
  label: string;
  direction: 'result' | 'arguments';
  target: boolean;
  /** WebSocket frames on the wire (payload + WS header), bytes. */
  text: number;
  mcpw: number;
  /** The same MCPW frame without gzip: msgpack alone. */
  mcpw_msgpack: number;
  /** Flags of the MCPW frame (bit0 gzip). */
  mcpw_flags: number;
  /** The whole HTTP request or response on /mcp (headers included). */
  http: number;
  /** Size of the JSON text of the tool result / arguments alone, bytes. */
  json_bytes: number;
}

class WsProbe {
  private readonly waiters = new Map<string, (v: { data: Buffer; binary: boolean }) => void>();
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: WebSocket.RawData, binary: boolean) => {
      const buf = data as Buffer;
      let key: string | undefined;
      if (binary) {
        const d = decodeFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), { copyBinary: true });
        if (d.ok) key = `b${d.frame.requestId}`;
      } else {
        const id = (JSON.parse(buf.toString()) as { id?: unknown }).id;
        if (id !== undefined) key = `t${String(id)}`;
      }
      if (key === undefined) return;
      const w = this.waiters.get(key);
      if (w) {
        this.waiters.delete(key);
        w({ data: Buffer.from(buf), binary });
      }
    });
  }

  static async open(url: string): Promise<WsProbe> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    return new WsProbe(ws);
  }

  /** Sends `data` and resolves with the message answering id `key` (`t<id>` text, `b<id>` binary). */
  call(key: string, data: string | Uint8Array): Promise<{ data: Buffer; binary: boolean }> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no reply to ${key} in 10 s`)), 10_000);
      this.waiters.set(key, (v) => {
        clearTimeout(timer);
        res(v);
      });
      this.ws.send(data, { binary: typeof data !== 'string' });
    });
  }
}

/** One HTTP request on a raw keep-alive connection; resolves with the response. */
function httpOnce(url: string, request: string): Promise<{ bytes: number; status: number; body: string }> {
  const u = new URL(url);
  return new Promise((res, rej) => {
    let conn: RawHttpConnection | undefined;
    RawHttpConnection.open(
      u.hostname,
      Number(u.port),
      (r: RawHttpResponse) => {
        res({ bytes: r.bytes, status: r.status, body: r.body.toString() });
        conn?.close();
      },
      rej,
    ).then((c) => {
      conn = c;
      c.send(request);
    }, rej);
  });
}

async function measureBytes(gw: Gateway): Promise<BytesRow[]> {
  const wsUrl = `${gw.url.replace(/^http/, 'ws')}/ws`;
  const text = await WsProbe.open(wsUrl);
  const bin = await WsProbe.open(wsUrl);
  const session = await openSession(gw.url, CLIENT);
  const hostPort = new URL(gw.url).host;
  try {
    const t0 = await text.call('t0', JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT }));
    if (!t0.data.toString().includes('"result"')) throw new Error(`bytes: /ws text initialize failed: ${t0.data.toString().slice(0, 200)}`);
    const b0 = await bin.call('b0', encodeFrame({ type: McpwType.Request, method: McpwMethod.Initialize, requestId: 0n, payload: INIT }));
    const f0 = decodeFrame(new Uint8Array(b0.data));
    if (!f0.ok || f0.frame.type !== McpwType.Response) throw new Error('bytes: /ws MCPW initialize failed');

    const cases: BytesCase[] = [
      { label: 'text result (echo), 1 KiB', direction: 'result', tool: 'demo-echo', args: { message: wordText(1024, 11) }, target: true },
      { label: 'text result (echo), 64 KiB', direction: 'result', tool: 'demo-echo', args: { message: wordText(65536, 12) }, target: true },
      { label: 'structured result + same JSON as text block, 1 KiB', direction: 'result', tool: 'fixture-records', args: { bytes: 1024, text: 'json' }, target: true },
      { label: 'structured result + same JSON as text block, 64 KiB', direction: 'result', tool: 'fixture-records', args: { bytes: 65536, text: 'json' }, target: true },
      { label: 'structured result + one-line text, 1 KiB', direction: 'result', tool: 'fixture-records', args: { bytes: 1024, text: 'summary' }, target: true },
      { label: 'structured result + one-line text, 64 KiB', direction: 'result', tool: 'fixture-records', args: { bytes: 65536, text: 'summary' }, target: true },
      { label: 'small structured result (demo-add)', direction: 'result', tool: 'demo-add', args: { a: 20, b: 22 }, target: false },
      { label: 'text arguments (echo), 4 KiB (the throughput request)', direction: 'arguments', tool: 'demo-echo', args: { message: MESSAGE }, target: false },
      { label: 'JSON-heavy arguments, 1 KiB', direction: 'arguments', tool: 'fixture-records', args: { bytes: 0, text: 'summary', input: records(1024, 21) }, target: false },
      { label: 'JSON-heavy arguments, 64 KiB', direction: 'arguments', tool: 'fixture-records', args: { bytes: 0, text: 'summary', input: records(65536, 22) }, target: false },
    ];
    const out: BytesRow[] = [];
    let id = 100;
    for (const c of cases) {
      id++;
      const params = { name: c.tool, arguments: c.args };
      const textReq = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params });
      const textRep = await text.call(`t${id}`, textReq);
      const textMsg = JSON.parse(textRep.data.toString()) as { result?: { isError?: boolean } };
      if (textMsg.result === undefined || textMsg.result.isError === true) throw new Error(`bytes: ${c.label} over /ws text: ${textRep.data.toString().slice(0, 300)}`);

      const reqFrame = { type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: BigInt(id), payload: params } as const;
      const binReq = encodeFrame(reqFrame, GATEWAY_GZIP);
      const binReqPlain = encodeFrame(reqFrame);
      const binRep = await bin.call(`b${id}`, binReq);
      const d = decodeFrame(new Uint8Array(binRep.data));
      if (!d.ok) throw new Error(`bytes: ${c.label}: bad MCPW reply: ${d.error.message}`);
      const f: McpwDecodedFrame = d.frame;
      if (f.type !== McpwType.Response || f.method !== McpwMethod.ToolsCall || !isDeepStrictEqual(f.payload, textMsg.result)) {
        throw new Error(`bytes: ${c.label}: MCPW reply (type ${f.type}) differs from the text reply: ${JSON.stringify(f.payload).slice(0, 300)}`);
      }
      const binRepPlain = encodeFrame({ type: f.type, method: f.method, requestId: f.requestId, payload: f.payload });

      const httpReq = postRequest(hostPort, session, textReq);
      const httpRep = await httpOnce(gw.url, httpReq);
      const httpMsg = JSON.parse(httpRep.body) as { result?: unknown };
      if (httpRep.status !== 200 || !isDeepStrictEqual(httpMsg.result, textMsg.result)) throw new Error(`bytes: ${c.label} over /mcp: ${httpRep.status} ${httpRep.body.slice(0, 300)}`);

      const ws = (len: number, masked: boolean): number => len + wsHeaderBytes(len, masked);
      if (c.direction === 'result') {
        out.push({
          label: c.label,
          direction: c.direction,
          target: c.target,
          text: ws(textRep.data.length, false),
          mcpw: ws(binRep.data.length, false),
          mcpw_msgpack: ws(binRepPlain.length, false),
          mcpw_flags: f.flags,
          http: httpRep.bytes,
          json_bytes: JSON.stringify(textMsg.result).length,
        });
      } else {
        const reqHeader = decodeFrame(binReq);
        out.push({
          label: c.label,
          direction: c.direction,
          target: c.target,
          text: ws(Buffer.byteLength(textReq), true),
          mcpw: ws(binReq.length, true),
          mcpw_msgpack: ws(binReqPlain.length, true),
          mcpw_flags: reqHeader.ok ? reqHeader.frame.flags : -1,
          http: httpReq.length,
          json_bytes: JSON.stringify(c.args).length,
        });
      }
    }
    return out;
  } finally {
    text.ws.close();
    bin.ws.close();
  }
}

// ---------------------------------------------------------------- output

/** Runs of a variant; the undisturbed ones when there are any (see {@link DISTURBED_PCT}). */
function runsOf(variant: string): Row[] {
  const all = rows.filter((r) => r.variant === variant);
  const quiet = all.filter((r) => (r.other_cpu_pct ?? 0) <= DISTURBED_PCT);
  return quiet.length > 0 ? quiet : all;
}

function meanOf(variant: string, key: 'rps' | 'p50_us' | 'p99_us'): number {
  return mean(runsOf(variant).map((r) => r[key]));
}

function runsNote(variant: string): string {
  const all = rows.filter((r) => r.variant === variant).length;
  const used = runsOf(variant);
  if (used.some((r) => (r.other_cpu_pct ?? 0) > DISTURBED_PCT)) return `${all} runs, all disturbed`;
  return used.length === all ? `mean of ${all} runs` : `${used.length} undisturbed run${used.length === 1 ? '' : 's'} of ${all}`;
}

/** Gateway process-tree CPU per call, µs (CPU from /proc over the measured window ÷ calls). */
function cpuPerCall(r: Point): number {
  return ((r.server_cpu_pct ?? Number.NaN) * 1e4) / r.rps;
}

/** Main thread / other threads of the gateway process, µs per call. */
function threadsPerCall(r: Row): string {
  if (r.main_thread_cpu_pct === undefined || r.other_threads_cpu_pct === undefined) return '—';
  return `${((r.main_thread_cpu_pct * 1e4) / r.rps).toFixed(1)} / ${((r.other_threads_cpu_pct * 1e4) / r.rps).toFixed(1)}`;
}

function throughputTable(): string[] {
  const ref = meanOf('http', 'rps');
  for (const r of rows) if (Number.isFinite(ref) && ref > 0) r.ratio = r.rps / ref;
  const out = [
    '| transport | run | req/s | p50 (µs) | p99 (µs) | ÷ /mcp (Node) | errors | replies checked | load gen CPU | gateway CPU | gateway CPU µs/call | of it main thread / other threads | other CPU |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const order = VARIANTS.map((v) => v.key);
  const sorted = [...rows].sort((a, b) => order.indexOf(a.variant) - order.indexOf(b.variant) || a.run - b.run);
  for (const r of sorted) {
    const v = VARIANTS.find((x) => x.key === r.variant) as Variant;
    const errs = r.errors === 0 ? '0' : `${r.errors} ${JSON.stringify(r.error_detail ?? {})}`;
    const lg = `${pct(r.loadgen_cpu_pct)}${r.loadgen_elu !== undefined ? ` (ELU ${r.loadgen_elu.toFixed(2)})` : ''}`;
    out.push(
      `| ${v.label} | ${r.run} | ${fmtInt(r.rps)} | ${fmtInt(r.p50_us)} | ${fmtInt(r.p99_us)} | ${r.ratio === undefined ? 'n/a' : r.ratio.toFixed(2)} | ${errs} | ${fmtInt(r.checked)} | ${lg} | ${pct(r.server_cpu_pct)} | ${cpuPerCall(r).toFixed(1)} | ${threadsPerCall(r)} | ${pct(r.other_cpu_pct)}${(r.other_cpu_pct ?? 0) > DISTURBED_PCT ? ' ⚠' : ''} |`,
    );
  }
  for (const [variant, why] of Object.entries(failures)) {
    const v = VARIANTS.find((x) => x.key === variant);
    out.push(`| ${v?.label ?? variant} | — | failed: ${why.replace(/\|/g, '/').split('\n')[0] ?? ''} | | | | | | | | | | |`);
  }
  return out;
}

function sampleLines(): string[] {
  const out: string[] = [];
  for (const v of VARIANTS) {
    const s = samples[v.key];
    if (s === undefined) continue;
    if (v.mode === 'wrk') {
      out.push(`- ${v.label}: ${JSON.stringify(s)}`);
      continue;
    }
    const ls = s as LoadSample;
    const hdr =
      ls.reply_type !== undefined
        ? `, MCPW reply type 0x${ls.reply_type.toString(16).padStart(2, '0')} method 0x${(ls.reply_method ?? 0).toString(16).padStart(4, '0')} flags 0x${(ls.reply_flags ?? 0).toString(16).padStart(2, '0')}${((ls.reply_flags ?? 0) & 1) === 1 ? ' (gzip\'d by the gateway)' : ''}`
        : '';
    out.push(`- ${v.label}: OK — request ${fmtInt(ls.request_bytes)} B, reply ${fmtInt(ls.reply_bytes)} B${hdr}; text "${ls.text}…" (${fmtInt(ls.text_chars)} chars) equals the expected echo`);
  }
  return out;
}

function bytesTable(b: BytesRow[]): string[] {
  const saved = (x: number, ref: number): string => `${Math.round(100 * (1 - x / ref))}%`;
  const out = [
    '| payload | direction | /ws text frame (B) | /ws MCPW frame (B) | MCPW saves | MCPW msgpack only, no gzip (B) | msgpack alone saves | /mcp HTTP, headers incl. (B) |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of b) {
    const gz = (r.mcpw_flags & 1) === 1 ? ' gz' : '';
    out.push(
      `| ${r.label} | ${r.direction === 'result' ? 'reply' : 'request'} | ${fmtInt(r.text)} | ${fmtInt(r.mcpw)}${gz} | ${saved(r.mcpw, r.text)} | ${fmtInt(r.mcpw_msgpack)} | ${saved(r.mcpw_msgpack, r.text)} | ${fmtInt(r.http)} |`,
    );
  }
  return out;
}

function checks(bytes: BytesRow[] | undefined): TargetCheck[] {
  const out: TargetCheck[] = [];
  const m = meanOf('ws-mcpw', 'rps');
  const h = meanOf('http', 'rps');
  const v = m / h;
  out.push({
    name: `MCPW tools/call req/s ÷ /mcp req/s, ${fmtBytes(ARG_BYTES)} arguments, c=${CONCURRENCY}, same Node load generator`,
    target: '≥ 1.5',
    measured: Number.isFinite(v) ? `${v.toFixed(2)} (${fmtInt(m)} / ${fmtInt(h)} req/s; ${runsNote('ws-mcpw')} / ${runsNote('http')})` : 'not measured',
    pass: Number.isFinite(v) ? v >= 1.5 : undefined,
  });
  // the same comparison by gateway CPU per call (robust to a loaded machine: what each call costs the gateway)
  const cpuOf = (variant: string): number => mean(runsOf(variant).map(cpuPerCall));
  const cm = cpuOf('ws-mcpw');
  const ch = cpuOf('http');
  const cv = ch / cm;
  out.push({
    name: `/mcp gateway CPU per call ÷ MCPW gateway CPU per call, ${fmtBytes(ARG_BYTES)} arguments, c=${CONCURRENCY}`,
    target: '≥ 1.5',
    measured: Number.isFinite(cv) ? `${cv.toFixed(2)} (${cm.toFixed(1)} vs ${ch.toFixed(1)} µs/call; MCPW gzip'd request: ${cpuOf('ws-mcpw-gzip').toFixed(1)} µs/call)` : 'not measured',
    pass: Number.isFinite(cv) ? cv >= 1.5 : undefined,
  });
  for (const b of bytes ?? []) {
    if (!b.target) continue;
    const s = 1 - b.mcpw / b.text;
    const sm = 1 - b.mcpw_msgpack / b.text;
    out.push({
      name: `MCPW bytes vs JSON text, ${b.label}`,
      target: '≥ 30% fewer',
      measured: `${Math.round(100 * s)}% fewer (${fmtInt(b.mcpw)} vs ${fmtInt(b.text)} B${(b.mcpw_flags & 1) === 1 ? ', gzip\'d' : ''}; msgpack alone: ${Math.round(100 * sm)}%)`,
      pass: s >= 0.3,
    });
  }
  return out;
}

function fmtBytes(n: number): string {
  return n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`;
}

function profileLines(profileFile: string | undefined, root: string): string[] {
  if (profileFile === undefined) return [];
  const out: string[] = [];
  for (const v of VARIANTS) {
    const w = windows[v.key];
    if (w === undefined || w.length === 0) continue;
    let p: ProfileSummary;
    try {
      p = topSelfTime(profileFile, w, 15, root);
    } catch (err) {
      out.push('', `profile for ${v.label} not read: ${(err as Error).message}`);
      continue;
    }
    out.push(
      '',
      `#### Gateway CPU profile, ${v.label} (top self time: ${p.busy_ms.toFixed(0)} ms busy of ${p.window_ms.toFixed(0)} ms sampled)`,
      '',
      ...selfTimeTable(p),
    );
  }
  return out;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  procs.checkPinning();
  if (cpus().length < 2) progress(`only ${cpus().length} CPU: load generator and gateway share a core`);
  const wrk = USE_WRK ? wrkVersion() : undefined;
  if (USE_WRK && wrk === undefined) progress('wrk not found: the wrk cross-check row is skipped (apt-get install -y wrk)');
  const variants = VARIANTS.filter((v) => (v.mode !== 'wrk' || wrk !== undefined) && (ONLY.length === 0 || ONLY.includes(v.key)));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const started = Date.now();
  const prebuilt = process.env['BENCH_GATEWAY_BUILD'];
  if (prebuilt === undefined || prebuilt === '') progress('building the gateway with tsc (the bench runs the build, as `npm start` does)');
  const dist = procs.gatewayBuild(ROOT, prebuilt, 'tributary-bench-ws-build-');
  if (prebuilt !== undefined && prebuilt !== '') progress(`using the gateway build in ${dist} (BENCH_GATEWAY_BUILD; not rebuilt)`);
  const gw = await startGateway(dist);
  progress(`gateway at ${gw.url} (pid ${String(gw.child.pid)}); ${DURATION} s/point, warm-up ${WARMUP} s, ${RUNS} runs, c=${CONCURRENCY}, /ws on ${WS_CONNECTIONS} connection(s)`);

  let bytes: BytesRow[] | undefined;
  let profileFile: string | undefined;
  try {
    if (BYTES) {
      progress('bytes on the wire: one call per case and transport');
      try {
        bytes = await measureBytes(gw);
      } catch (err) {
        failures['bytes'] = (err as Error).message;
        progress(`bytes FAILED: ${(err as Error).message}`);
      }
    }
    // warm-up round, not recorded: the gateway's JIT sees every transport before the first point
    if (WARMUP > 0) {
      progress(`warm-up round: each transport for ${WARMUP} s, not recorded`);
      for (const v of variants) {
        if (v.mode === 'wrk') continue;
        try {
          await runLoad(gw, v, 0, WARMUP, 0);
        } catch (err) {
          failures[v.key] = (err as Error).message;
          progress(`${v.label} FAILED in the warm-up round: ${(err as Error).message}`);
        }
      }
    }
    let wrkSession: string | undefined;
    for (let run = 1; run <= RUNS; run++) {
      // odd runs in table order, even runs reversed: drift over the run (the tool log's LevelDB
      // grows by ~8 KiB per call and compacts in the background) lands evenly on every transport
      for (const v of run % 2 === 1 ? variants : [...variants].reverse()) {
        if (failures[v.key] !== undefined) continue;
        const quiet = await waitForQuiet(QUIET_WAIT * 1000);
        try {
          let p: Point & { loadgen_elu?: number };
          if (v.mode === 'wrk') {
            if (wrkSession === undefined) {
              wrkSession = await openSession(gw.url, CLIENT);
              // the same check call as the Node client's, through fetch
              const r = await mcpPost(gw.url, { jsonrpc: '2.0', id: 'check', method: 'tools/call', params: { name: 'demo-echo', arguments: { message: MESSAGE } } }, wrkSession);
              const body = JSON.parse(r.text) as unknown;
              if (r.status !== 200 || !isDeepStrictEqual(body, { jsonrpc: '2.0', id: 'check', result: { content: [{ type: 'text', text: `Echo: ${MESSAGE}` }] } })) {
                throw new Error(`check call over /mcp: ${r.status} ${r.text.slice(0, 300)}`);
              }
              samples[v.key] = { ok: true, status: r.status, reply_body_bytes: r.text.length, note: 'checked with fetch in the same session; wrk then checks every body for "result" and no "isError":true' };
            }
            if (WARMUP > 0) await runWrk(gw, wrkSession, WARMUP);
            p = await runWrk(gw, wrkSession, DURATION);
          } else {
            p = await runLoad(gw, v, run);
          }
          if (quiet.waitedMs > 100) p.quiet_wait_ms = quiet.waitedMs;
          rows.push({ variant: v.key, run, ...p });
          const err = p.errors > 0 ? `, ${p.errors} errors ${JSON.stringify(p.error_detail ?? {})}` : '';
          progress(`${v.label} run ${run}: ${fmtInt(p.rps)} req/s, p50 ${fmtInt(p.p50_us)} µs, p99 ${fmtInt(p.p99_us)} µs, load gen CPU ${pct(p.loadgen_cpu_pct)}, gateway CPU ${pct(p.server_cpu_pct)}${err}`);
        } catch (err) {
          failures[v.key] = (err as Error).message;
          progress(`${v.label} FAILED: ${(err as Error).message}`);
        }
      }
    }
  } finally {
    await procs.stop(gw.child);
    if (gw.profileDir !== undefined) {
      try {
        profileFile = mainThreadProfile(gw.profileDir, gw.child.pid as number);
      } catch (err) {
        progress((err as Error).message);
      }
    }
  }

  const results = checks(bytes);
  const wrkRatio = meanOf('ws-mcpw', 'rps') / meanOf('http-wrk', 'rps');
  const textRatio = meanOf('ws-mcpw', 'rps') / meanOf('ws-text', 'rps');
  const lines: string[] = [];
  lines.push(`## Tributary /ws vs /mcp — tools/call of \`demo-echo\` with ${fmtBytes(ARG_BYTES)} arguments, c=${CONCURRENCY}, ${DURATION} s per point, ${RUNS} runs`);
  lines.push('');
  lines.push(
    `One gateway (${prebuilt !== undefined && prebuilt !== '' ? `the prebuilt ${dist}, not src/ (BENCH_GATEWAY_BUILD)` : 'tsc build'}, \`node ${NODE_FLAGS.join(' ')}${NODE_FLAGS.length > 0 ? ' ' : ''}dist/main.js\`) pinned to core ${SERVER_CORE}, in-process \`demo\` upstream. ` +
      `Load: one Node process per point pinned to core ${LOADGEN_CORE} (bench/ws-throughput-load.ts), closed loop with ${CONCURRENCY} requests in flight: ` +
      `/ws on ${WS_CONNECTIONS} WebSocket${WS_CONNECTIONS === 1 ? '' : 's'} (${CONCURRENCY / WS_CONNECTIONS} in flight each; the gateway allows 64 per connection), ` +
      `/mcp on ${CONCURRENCY} keep-alive connections (raw HTTP/1.1 client, one request each, one MCP session). ` +
      `Requests are pre-serialized templates with only the id changed; every reply is decoded (JSON.parse / MCPW decoder incl. msgpack and gunzip) and its text compared with the expected echo. ` +
      `${wrk !== undefined ? `The wrk row (${wrk}; 1 thread, ${CONCURRENCY} connections, bench/mcp-call.lua checking every body) drives /mcp again, to show what a C client gets. ` : ''}` +
      `${WARMUP > 0 ? `A warm-up round runs every transport for ${WARMUP} s first, and each point has ${WARMUP} s of unmeasured load before its window. ` : ''}Odd runs go in table order, even runs in reverse. Gateway config: defaults except \`tool_log.sweep_interval_ms\` = 1 h (no retention sweep during the points; every call is still logged). ` +
      `Arguments: ${fmtBytes(ARG_BYTES)} of random lowercase words (gzip shrinks them to ~60%, less than typical prose or code). ` +
      `LevelDB binary: ${levelDbBinary().origin} (CRC32C ${levelDbBinary().crc32c}; \`npm run build:leveldb\` builds it with the SSE4.2 one, README "Storage"). ` +
      `CPU columns: % of one core over the measured window; ELU = the load generator's event-loop utilization (1.00 = saturated); ` +
      `"other CPU" is machine-wide CPU not charged to the measured processes (⚠ above ${DISTURBED_PCT}%: disturbed, skipped by the checks when an undisturbed run exists).` +
      (PROFILE ? ' BENCH_PROFILE: the gateway ran under --cpu-prof (slower than normal).' : ''),
  );
  lines.push('', '### Throughput', '', ...throughputTable());
  lines.push('', '### Check calls (one reply per transport, compared field by field before the load)', '', ...sampleLines());
  if (bytes) {
    lines.push(
      '',
      '### Bytes on the wire per tools/call',
      '',
      'WebSocket frames as sent/received on the gateway socket: payload + WS header (2–10 B; client frames +4 B mask); TCP/IP not counted. ' +
        '"MCPW frame" is what the gateway sends (reply) to the bytes probe, a client that sends gzip — msgpack, gzip\'d ("gz") when over 1 KiB (src/handlers/mcp/ws-outbound.ts) — ' +
        'or, for requests, a client applying the same policy. "msgpack only" is the same frame re-encoded without gzip. ' +
        'Text results are random words (see above); structured results are API-style records (`structuredContent`), with the same JSON repeated as a text block (as the MCP spec asks of tools with structured output) or with a one-line text. ' +
        'Results were checked identical over the three transports.',
      '',
      ...bytesTable(bytes),
    );
  } else if (failures['bytes'] !== undefined) {
    lines.push('', `### Bytes on the wire: failed: ${failures['bytes']}`);
  }
  lines.push('', '### Targets', '', ...results.map(checkLine));
  if (Number.isFinite(wrkRatio)) lines.push(`- info: MCPW req/s ÷ /mcp req/s driven by wrk: ${wrkRatio.toFixed(2)} (${fmtInt(meanOf('ws-mcpw', 'rps'))} / ${fmtInt(meanOf('http-wrk', 'rps'))})`);
  if (Number.isFinite(textRatio)) lines.push(`- info: MCPW req/s ÷ /ws text req/s: ${textRatio.toFixed(2)}; MCPW with gzip'd requests ÷ MCPW: ${(meanOf('ws-mcpw-gzip', 'rps') / meanOf('ws-mcpw', 'rps')).toFixed(2)}`);
  lines.push(
    '- note: the gateway gzips an MCPW reply whose msgpack payload is over 1 KiB when the client has sent a gzip\'d frame (level 1, on its event loop up to 16 KiB), and every reply over 64 KiB; ' +
      'so "MCPW" replies to the throughput calls are not gzip\'d and "MCPW, gzip\'d request" replies are (there each call pays a zlib stream set-up each way, ≈ 30–40 µs of CPU on this machine even for a 1-byte payload, on top of the compression itself). msgpack alone stores a string as its UTF-8 bytes plus a 1–5 B header, ' +
      'so on text results it saves almost nothing — what MCPW saves there is gzip; on structured results msgpack also drops quotes, colons, commas and number text.',
  );
  lines.push(...profileLines(profileFile, dist));
  lines.push('', `(${((Date.now() - started) / 1000).toFixed(0)} s total; results in bench/results/ws-throughput.json)`);
  process.stdout.write(lines.join('\n') + '\n');

  writeResults(join(RESULTS_DIR, 'ws-throughput.json'), {
    wrk,
    settings: { gateway_node_flags: NODE_FLAGS, variants: variants.map((v) => v.key), gateway_build: prebuilt !== undefined && prebuilt !== '' ? dist : 'tsc build of src/', duration_s: DURATION, warmup_s: WARMUP, runs: RUNS, concurrency: CONCURRENCY, ws_connections: WS_CONNECTIONS, arg_bytes: ARG_BYTES, profile: PROFILE, pinned: procs.pinning, server_core: SERVER_CORE, loadgen_core: LOADGEN_CORE },
    rows,
    samples,
    failures,
    bytes,
    checks: results,
  });
}

runMain('bench:ws', procs, main);
