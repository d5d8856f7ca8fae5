/**
 * Load generator of `npm run bench:ws` (bench/ws-throughput.ts starts it pinned to the load core,
 * one process per point): a closed loop of MCP `tools/call` against one transport of the gateway.
 *
 * Modes (argv[2] is a JSON {@link LoadConfig}):
 * - `ws-text`:      `/ws`, JSON-RPC in text frames (the `ws` client, no permessage-deflate).
 * - `ws-mcpw`:      `/ws`, MCPW binary frames, method 0003 tools/call, msgpack payload, request not gzip'd.
 * - `ws-mcpw-gzip`: the same with the request payload gzip'd (flag bit0).
 * - `http`:         `/mcp`, MCP Streamable HTTP POSTs in an established session over `concurrency`
 *                   keep-alive connections (bench/ws-throughput-http.ts), one request in flight each.
 *
 * `/ws` runs `connections` WebSockets (one MCP session each) with `concurrency / connections`
 * requests in flight on each. Requests are pre-serialized templates in which only the id changes
 * (as bench/mcp-call.lua does for wrk); every reply is decoded in full (JSON.parse, or the MCPW
 * decoder with msgpack and gunzip) and its text compared with the expected echo, so an error or a
 * wrong body is counted. Before the load, one call is checked field by field (printed as
 * `LOAD_SAMPLE`). Then `warmup` s of load, then the measured `seconds` (`LOAD_START`/`LOAD_END`
 * with CLOCK_MONOTONIC µs, for the runner's server CPU and profile windows), then `LOAD_RESULT`.
 */
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import { McpwMethod, McpwType, decodeFrame, encodeFrame } from '../src/codecs/mcpw.js';
import { frameFromJsonRpc } from '../src/codecs/mcpw-jsonrpc.js';
import { initializeParams, monotonicUs, quantile, sleep, type Point } from './lib.js';
import { RawHttpConnection, postRequest, type RawHttpResponse } from './ws-throughput-http.js';

export type LoadMode = 'ws-text' | 'ws-mcpw' | 'ws-mcpw-gzip' | 'http';

export interface LoadConfig {
  mode: LoadMode;
  /** The gateway, `http://127.0.0.1:PORT`. */
  url: string;
  /** Requests in flight in total. */
  concurrency: number;
  /** WebSocket connections (`/ws` modes); `http` uses `concurrency` connections. */
  connections: number;
  seconds: number;
  warmup: number;
  tool: string;
  message: string;
}

/** The checked first call. */
export interface LoadSample {
  ok: true;
  /** Bytes of the request and reply messages (WebSocket payload; HTTP: whole request/response). */
  request_bytes: number;
  reply_bytes: number;
  /** MCPW reply header: type, method, flags (bit0 gzip). */
  reply_type?: number;
  reply_method?: number;
  reply_flags?: number;
  /** The reply's first text block, cut to 60 characters, and its length. */
  text: string;
  text_chars: number;
}

/** One point as the load generator measured it; `checked`: every reply was decoded and compared with the expected body. */
export interface LoadResult extends Pick<Point, 'requests' | 'seconds' | 'rps' | 'p50_us' | 'p99_us' | 'errors' | 'checked'> {
  error_detail: Record<string, number>;
  /** CPU of this process over the measured window, % of one core. */
  loadgen_cpu_pct: number;
  /** Event-loop utilization over the measured window (1 = never idle). */
  loadgen_elu: number;
  /** The measured window, CLOCK_MONOTONIC µs. */
  window: [number, number];
}

const INIT = initializeParams('bench-ws');
const BIN = { binary: true } as const;

// ---------------------------------------------------------------- closed loop

interface Lane {
  send(id: number): void;
}

interface ReplyInfo {
  message: unknown;
  bytes: number;
  type?: number;
  method?: number;
  flags?: number;
}

const starts = new Map<number, number>();
const errors: Record<string, number> = {};
let lanes: Lane[] = [];
let nextId = 1;
let running = true;
let measuring = false;
let latencies = new Float64Array(1 << 20);
let measured = 0;
let verifyHook: ((id: number, info: ReplyInfo) => void) | undefined;

function addError(kind: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
}

function issue(lane: number): void {
  const id = nextId++;
  starts.set(id, performance.now());
  (lanes[lane] as Lane).send(id);
}

/** A reply to request `id` arrived on `lane`; `kind` names what was wrong with it, if anything. */
function complete(lane: number, id: number, kind: string | undefined): void {
  const t0 = starts.get(id);
  if (t0 === undefined) {
    if (measuring) addError(`unmatched${kind === undefined ? '' : `:${kind}`}`);
    return;
  }
  starts.delete(id);
  if (measuring) {
    if (measured === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[measured++] = (performance.now() - t0) * 1000;
    if (kind !== undefined) addError(kind);
  }
  if (running) issue(lane);
}

// ---------------------------------------------------------------- checks

interface ToolResult {
  content?: { type?: string; text?: string }[];
  isError?: boolean;
}

let expected = '';

/** What is wrong with a tools/call result, or `undefined` when it is the expected echo. */
function checkResult(result: unknown): string | undefined {
  const r = result as ToolResult | undefined;
  if (r?.isError === true) return 'isError';
  const c = r?.content?.[0];
  return c?.type === 'text' && c.text === expected ? undefined : 'wrong_body';
}

function errorKind(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === -32000 ? 'overloaded' : `rpc${typeof code === 'number' ? String(code) : ''}`;
}

/** A decoded JSON-RPC reply (text frame or HTTP body). */
function onJsonReply(lane: number, msg: { id?: unknown; result?: unknown; error?: unknown; method?: unknown }, bytes: number): void {
  if (typeof msg.id !== 'number') {
    if (msg.method !== undefined && msg.id === undefined) return; // a server notification
    if (measuring) addError('unmatched');
    return;
  }
  if (verifyHook) return verifyHook(msg.id, { message: msg, bytes });
  complete(lane, msg.id, msg.error !== undefined ? errorKind(msg.error) : checkResult(msg.result));
}

// ---------------------------------------------------------------- transports

function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(ws);
    });
    ws.once('error', reject);
  });
}

function waitFor<T>(ws: WebSocket, pick: (data: Buffer, isBinary: boolean) => T | undefined, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`timed out waiting for ${what}`));
    }, 10_000);
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      const v = pick(data as Buffer, isBinary);
      if (v === undefined) return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(v);
    };
    ws.on('message', onMessage);
  });
}

function watchClose(ws: WebSocket): void {
  ws.on('close', (code) => {
    if (running) {
      addError(`ws_closed_${code}`);
      process.stderr.write(`load: a WebSocket closed during the run (code ${code})\n`);
    }
  });
  ws.on('error', (err) => {
    if (running) addError('ws_error');
    process.stderr.write(`load: WebSocket error: ${err.message}\n`);
  });
}

/** `/ws` with JSON-RPC text frames: initialize, then the tools/call template. */
async function wsTextLanes(cfg: LoadConfig, wsUrl: string): Promise<{ lanes: Lane[]; requestBytes: (id: number) => number }> {
  const prefix = '{"jsonrpc":"2.0","id":';
  const suffix = `,"method":"tools/call","params":${JSON.stringify({ name: cfg.tool, arguments: { message: cfg.message } })}}`;
  const out: Lane[] = [];
  for (let i = 0; i < cfg.connections; i++) {
    const ws = await openWs(wsUrl);
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT }));
    const init = await waitFor(ws, (d, bin) => (bin ? undefined : (JSON.parse(d.toString()) as { id?: unknown; result?: unknown; error?: unknown })), 'initialize');
    if (init.id !== 0 || init.result === undefined) throw new Error(`initialize over /ws text failed: ${JSON.stringify(init)}`);
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    const lane = i;
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      const buf = data as Buffer;
      if (isBinary) {
        if (measuring) addError('unexpected_binary');
        return;
      }
      let msg: { id?: unknown };
      try {
        msg = JSON.parse(buf.toString()) as { id?: unknown };
      } catch {
        if (measuring) addError('bad_json');
        return;
      }
      onJsonReply(lane, msg, buf.length);
    });
    watchClose(ws);
    out.push({ send: (id) => ws.send(prefix + String(id) + suffix) });
  }
  return { lanes: out, requestBytes: (id) => Buffer.byteLength(prefix + String(id) + suffix) };
}

/** `/ws` with MCPW frames: initialize (method 0001), then the tools/call frame template (method 0003). */
async function wsMcpwLanes(cfg: LoadConfig, wsUrl: string, gzip: boolean): Promise<{ lanes: Lane[]; requestBytes: (id: number) => number }> {
  const template = Buffer.from(
    encodeFrame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 0n, payload: { name: cfg.tool, arguments: { message: cfg.message } } }, gzip ? { gzip: true } : {}),
  );
  const out: Lane[] = [];
  for (let i = 0; i < cfg.connections; i++) {
    const ws = await openWs(wsUrl);
    ws.send(encodeFrame({ type: McpwType.Request, method: McpwMethod.Initialize, requestId: 0n, payload: INIT }));
    const init = await waitFor(
      ws,
      (d, bin) => {
        if (!bin) return undefined;
        const f = decodeFrame(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), { copyBinary: true });
        return f.ok && f.frame.requestId === 0n ? f.frame : undefined;
      },
      'initialize',
    );
    if (init.type !== McpwType.Response) throw new Error(`initialize over MCPW failed: ${JSON.stringify(init.payload)}`);
    ws.send(encodeFrame(frameFromJsonRpc({ jsonrpc: '2.0', method: 'notifications/initialized' })));
    const lane = i;
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (!isBinary) return; // server-initiated messages under the threshold come as text
      const buf = data as Buffer;
      const d = decodeFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
      if (!d.ok) {
        if (measuring) addError(`bad_frame:${d.error.code}`);
        return;
      }
      const f = d.frame;
      if (f.type === McpwType.Request || f.type === McpwType.Notification) return; // server-initiated
      const id = Number(f.requestId);
      if (verifyHook) return verifyHook(id, { message: f.payload, bytes: buf.length, type: f.type, method: f.method, flags: f.flags });
      if (f.type === McpwType.Error) complete(lane, id, errorKind(f.payload));
      else if (f.type !== McpwType.Response || f.method !== McpwMethod.ToolsCall) complete(lane, id, 'wrong_frame');
      else complete(lane, id, checkResult(f.payload));
    });
    watchClose(ws);
    out.push({
      send: (id) => {
        // low 32 bits of the u64 request id at offset 16; ws masks a copy, so the template can be reused
        template.writeUInt32BE(id, 20);
        ws.send(template, BIN);
      },
    });
  }
  return { lanes: out, requestBytes: () => template.length };
}

async function httpPost(url: string, body: unknown, session?: string): Promise<{ status: number; session: string | null; text: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': INIT.protocolVersion };
  if (session !== undefined) headers['mcp-session-id'] = session;
  const r = await fetch(`${url}/mcp`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: r.status, session: r.headers.get('mcp-session-id'), text: await r.text() };
}

/** The id in flight on each HTTP connection (a non-200 response has no JSON-RPC id to read). */
const inFlight: number[] = [];

/** `/mcp`: one session, `concurrency` keep-alive connections with one POST in flight each. */
async function httpLanes(cfg: LoadConfig): Promise<{ lanes: Lane[]; requestBytes: (id: number) => number }> {
  const init = await httpPost(cfg.url, { jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT });
  if (init.status !== 200 || init.session === null) throw new Error(`initialize over /mcp failed: ${init.status} ${init.text}`);
  const session = init.session;
  const ack = await httpPost(cfg.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, session);
  if (ack.status !== 202) throw new Error(`notifications/initialized: expected 202, got ${ack.status}`);
  const u = new URL(cfg.url);
  const hostPort = u.host;
  const prefix = '{"jsonrpc":"2.0","id":';
  const suffix = `,"method":"tools/call","params":${JSON.stringify({ name: cfg.tool, arguments: { message: cfg.message } })}}`;
  const request = (id: number): string => postRequest(hostPort, session, prefix + String(id) + suffix);
  const out: Lane[] = [];
  for (let i = 0; i < cfg.concurrency; i++) {
    const lane = i;
    const onResponse = (r: RawHttpResponse): void => {
      if (r.status !== 200) {
        // the id is not known without a body; this connection's request is the one in flight
        if (verifyHook) return verifyHook(-1, { message: { status: r.status, body: r.body.toString() }, bytes: r.bytes });
        const id = inFlight[lane] as number;
        complete(lane, id, `http_${r.status}`);
        return;
      }
      let msg: { id?: unknown };
      try {
        msg = JSON.parse(r.body.toString()) as { id?: unknown };
      } catch {
        complete(lane, inFlight[lane] as number, 'bad_json');
        return;
      }
      onJsonReply(lane, msg, r.bytes);
    };
    const conn = await RawHttpConnection.open(u.hostname, Number(u.port), onResponse, (err) => {
      if (running) {
        addError('http_connection');
        process.stderr.write(`load: HTTP connection error: ${err.message}\n`);
      }
    });
    out.push({
      send: (id) => {
        inFlight[lane] = id;
        conn.send(request(id));
      },
    });
  }
  return { lanes: out, requestBytes: (id) => request(id).length };
}

// ---------------------------------------------------------------- main

/** Sends request `id` on lane 0 and checks the reply field by field. */
async function verifyOne(cfg: LoadConfig, requestBytes: number): Promise<LoadSample> {
  const id = nextId++;
  const info = await new Promise<ReplyInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reply to the check call in 10 s')), 10_000);
    verifyHook = (gotId, i) => {
      if (gotId !== id) {
        clearTimeout(timer);
        reject(new Error(`check call: reply with id ${gotId}, expected ${id}: ${JSON.stringify(i.message).slice(0, 300)}`));
        return;
      }
      clearTimeout(timer);
      resolve(i);
    };
    (lanes[0] as Lane).send(id);
  });
  verifyHook = undefined;
  const result = { content: [{ type: 'text', text: expected }] };
  const describe = JSON.stringify(info.message).slice(0, 300);
  if (cfg.mode === 'ws-text' || cfg.mode === 'http') {
    if (!isDeepStrictEqual(info.message, { jsonrpc: '2.0', id, result })) throw new Error(`check call over ${cfg.mode}: unexpected reply ${describe}`);
  } else {
    if (info.type !== McpwType.Response || info.method !== McpwMethod.ToolsCall || !isDeepStrictEqual(info.message, result)) {
      throw new Error(`check call over ${cfg.mode}: unexpected frame type ${String(info.type)} method ${String(info.method)}: ${describe}`);
    }
  }
  const sample: LoadSample = { ok: true, request_bytes: requestBytes, reply_bytes: info.bytes, text: expected.slice(0, 60), text_chars: expected.length };
  if (info.type !== undefined) sample.reply_type = info.type;
  if (info.method !== undefined) sample.reply_method = info.method;
  if (info.flags !== undefined) sample.reply_flags = info.flags;
  return sample;
}


async function main(cfg: LoadConfig): Promise<void> {
  expected = `Echo: ${cfg.message}`;
  const wsUrl = `${cfg.url.replace(/^http/, 'ws')}/ws`;
  const built =
    cfg.mode === 'ws-text'
      ? await wsTextLanes(cfg, wsUrl)
      : cfg.mode === 'ws-mcpw' || cfg.mode === 'ws-mcpw-gzip'
        ? await wsMcpwLanes(cfg, wsUrl, cfg.mode === 'ws-mcpw-gzip')
        : await httpLanes(cfg);
  lanes = built.lanes;
  const sample = await verifyOne(cfg, built.requestBytes(nextId));
  process.stdout.write(`LOAD_SAMPLE ${JSON.stringify(sample)}\n`);

  // start: `concurrency` requests in flight, spread over the lanes
  for (let i = 0; i < cfg.concurrency; i++) issue(i % lanes.length);
  await sleep(cfg.warmup * 1000);
  measuring = true;
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const w0 = monotonicUs();
  const t0 = performance.now();
  process.stdout.write(`LOAD_START ${w0}\n`);
  await sleep(cfg.seconds * 1000);
  measuring = false;
  const wall = (performance.now() - t0) / 1000;
  const w1 = monotonicUs();
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  process.stdout.write(`LOAD_END ${w1}\n`);
  running = false;
  // let the calls in flight finish so the gateway is idle for the next point
  const deadline = Date.now() + 5000;
  while (starts.size > 0 && Date.now() < deadline) await sleep(10);
  if (starts.size > 0) addError('unanswered_at_end');

  const sorted = latencies.subarray(0, measured).sort();
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  const result: LoadResult = {
    requests: measured,
    seconds: wall,
    rps: measured / wall,
    p50_us: quantile(sorted, 0.5),
    p99_us: quantile(sorted, 0.99),
    errors: errorCount,
    error_detail: errors,
    checked: measured,
    loadgen_cpu_pct: (100 * (cpu.user + cpu.system)) / 1e6 / wall,
    loadgen_elu: elu.utilization,
    window: [w0, w1],
  };
  process.stdout.write(`LOAD_RESULT ${JSON.stringify(result)}\n`);
}

const arg = process.argv[2];
if (arg === undefined) {
  process.stderr.write('usage: node --import tsx bench/ws-throughput-load.ts \'{"mode":"ws-mcpw",...}\'\n');
  process.exit(2);
}
main(JSON.parse(arg) as LoadConfig).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
