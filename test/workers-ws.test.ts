/**
 * `/ws` agent WebSockets on the worker thread of `server.workers: 2` with real parts: a gateway
 * (in process, so its worker pool and sessions can be watched) with auth on and the in-process
 * demo upstream, and real `ws` clients with an API key. Sockets are opened until one lands on the
 * thread wanted (the kernel spreads connections over the main thread and the worker); on a worker
 * socket the worker decodes and validates every MCPW and text frame, answers bad and control
 * frames itself and passes valid ones on (a gzip'd frame inflated).
 * Checked: MCPW and JSON-RPC text calls with progress; bad frames answered exactly as the main
 * thread answers them (fast-check); a socket closed mid-call has its call cancelled at the owner.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import WebSocket from 'ws';
import { McpwFlags, McpwMethod, McpwType, decodeFrame, encodeFrame, gzipFrame, type McpwFrame } from '../src/codecs/mcpw.js';
import { demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';

type Json = Record<string, unknown>;

const ADMIN_PASSWORD = 'worker sockets are owner sockets 3';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };
const INIT = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'workers-ws', version: '1' } };

let g: TestGateway;
let apiKey: string;

/** What a socket received: text messages parsed, binary frames decoded (bigints as text, for comparing). */
type Received = { kind: 'text'; value: unknown } | { kind: 'frame'; type: number; method: number; flags: number; requestId: string; payload: unknown };

interface Peer {
  readonly ws: WebSocket;
  readonly received: Received[];
  readonly closed: Promise<number>;
  closeCode: number | undefined;
  readonly onWorker: boolean;
}

function worker(): { websockets_open: number; ws_messages: number; in_flight: number } {
  const v = g.workers?.view()[0];
  if (v === undefined) throw new Error('no worker thread');
  return v;
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function connect(key = apiKey): Promise<Peer> {
  const before = worker().websockets_open;
  const ws = new WebSocket(`${g.url.replace('http', 'ws')}/ws`, { headers: { authorization: `Bearer ${key}` } });
  const received: Received[] = [];
  ws.on('message', (data, isBinary) => {
    const buf = data as Buffer;
    if (!isBinary) {
      received.push({ kind: 'text', value: JSON.parse(buf.toString('utf8')) });
      return;
    }
    const d = decodeFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
    if (!d.ok) throw new Error(`the gateway sent a bad frame: ${d.error.message}`);
    received.push({ kind: 'frame', type: d.frame.type, method: d.frame.method, flags: d.frame.flags, requestId: String(d.frame.requestId), payload: d.frame.payload });
  });
  const peer: { -readonly [K in keyof Peer]: Peer[K] } = {
    ws,
    received,
    closeCode: undefined,
    onWorker: false,
    closed: new Promise<number>((resolve) =>
      ws.once('close', (code) => {
        peer.closeCode = code;
        resolve(code);
      }),
    ),
  };
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  peer.onWorker = worker().websockets_open > before;
  return peer;
}

/** A socket on the worker thread (`true`) or the main thread, initialized (an MCP session). */
async function socketOn(onWorker: boolean): Promise<Peer> {
  for (let i = 0; i < 60; i++) {
    const p = await connect();
    if (p.onWorker === onWorker) {
      p.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: INIT }));
      await reply(p, 'init');
      return p;
    }
    p.ws.close();
    await p.closed;
  }
  throw new Error(`no socket landed on the ${onWorker ? 'worker' : 'main'} thread in 60 tries`);
}

function idOf(r: Received): unknown {
  if (r.kind === 'text') return (r.value as Json)['id'];
  return r.requestId;
}

async function reply(p: Peer, id: string | number): Promise<Received> {
  return until(`the reply to ${String(id)}`, () => p.received.find((r) => idOf(r) === id || (r.kind === 'frame' && typeof id === 'number' && r.requestId === String(id) && r.type !== McpwType.Notification)));
}

function frame(f: McpwFrame, gzip = false): Buffer {
  const bytes = encodeFrame(f);
  return Buffer.from(gzip ? gzipFrame(bytes) : bytes);
}

async function createKey(name: string, body: Json = {}): Promise<string> {
  const r = await fetch(`${g.url}/api/auth/keys`, { method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ name, role: 'user', ...body }) });
  expect(r.status).toBe(201);
  return ((await r.json()) as Json)['secret'] as string;
}

beforeAll(async () => {
  g = await startTestGateway(
    [demoClient('demo')],
    { workers: 2 },
    { auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 100_000, requests_per_hour: 10_000_000 } }, log_level: 'warn' },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
  );
  apiKey = await createKey('ws on workers');
}, 60_000);

afterAll(async () => {
  await g?.stop();
});

describe('/ws on a worker thread', () => {
  it('serves MCPW and JSON-RPC text calls decoded in the worker, with progress, in one session', async () => {
    const p = await socketOn(true);
    try {
      const before = worker().ws_messages;
      // MCPW tools/list (method 0002) and tools/call (0003), one gzip'd
      p.ws.send(frame({ type: McpwType.Request, method: McpwMethod.ToolsList, requestId: 11n, payload: undefined }));
      p.ws.send(frame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 12n, payload: { name: 'demo-echo', arguments: { message: 'x'.repeat(3000) } } }, true));
      const list = await reply(p, 11);
      expect(list).toMatchObject({ kind: 'frame', type: McpwType.Response, method: McpwMethod.ToolsList });
      expect(((list as { payload: { tools: { name: string }[] } }).payload.tools ?? []).map((t) => t.name)).toContain('demo-echo');
      const echo = await reply(p, 12);
      // the worker inflated the request; the owner knows the client reads gzip: the 3 KB reply is gzip'd
      expect(echo).toMatchObject({ kind: 'frame', type: McpwType.Response, method: McpwMethod.ToolsCall, flags: McpwFlags.Gzip, payload: { content: [{ type: 'text', text: `Echo: ${'x'.repeat(3000)}` }] } });
      // text tools/call and ping
      p.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 't1', method: 'tools/call', params: { name: 'demo-add', arguments: { a: 20, b: 22 } } }));
      p.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 't2', method: 'ping' }));
      expect(await reply(p, 't1')).toMatchObject({ kind: 'text', value: { result: { structuredContent: { sum: 42 } } } });
      expect(await reply(p, 't2')).toMatchObject({ kind: 'text', value: { result: {} } });
      // progress of an MCPW call: every notification before the result, in order
      p.ws.send(frame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 13n, payload: { name: 'demo-sleep', arguments: { ms: 60, steps: 3 }, _meta: { progressToken: 'p13' } } }));
      await reply(p, 13);
      const progress = p.received.filter((r) => r.kind === 'text' && (r.value as Json)['method'] === 'notifications/progress').map((r) => ((r as { value: { params: { progress: number } } }).value.params.progress));
      expect(progress).toEqual([1, 2, 3]);
      const order = p.received.map((r) => idOf(r) ?? 'notification');
      expect(order.indexOf('13')).toBeGreaterThan(order.lastIndexOf('notification'));
      // every message reached the owner through the worker's decoder
      expect(worker().ws_messages - before).toBe(5);
      // MCPW Ping answered by the worker with the same id; Close closes with 1000
      p.ws.send(frame({ type: McpwType.Ping, method: McpwMethod.Generic, requestId: 77n, payload: undefined }));
      expect(await until('the pong', () => p.received.find((r) => r.kind === 'frame' && r.type === McpwType.Pong))).toMatchObject({ requestId: '77' });
      p.ws.send(frame({ type: McpwType.Close, method: McpwMethod.Generic, requestId: 0n, payload: undefined }));
      expect(await p.closed).toBe(1000);
      await until('the session to end', () => (g.sessions.size === 0 ? true : undefined));
    } finally {
      p.ws.close();
    }
  });

  it('cancels a call at the owner when the socket closes mid-call', async () => {
    const p = await socketOn(true);
    p.ws.send(frame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 1n, payload: { name: 'demo-sleep', arguments: { ms: 30_000, steps: 1 } } }));
    const running = await until('the call to run', () => [...g.sessions.values()].find((s) => s.calls.size > 0));
    expect(running.calls.size).toBe(1);
    p.ws.terminate();
    await until('the call to be cancelled', () => ([...g.sessions.values()].every((s) => s.calls.size === 0) ? true : undefined));
    await until('the worker to forget the socket', () => (worker().websockets_open === 0 ? true : undefined));
  });
});

describe('/ws rate limits on a worker thread', () => {
  it('refuses the messages over a key\'s limit as the main thread does (text and MCPW)', async () => {
    /** A socket on the thread wanted, with a fresh key of 6 requests a minute (its upgrade took one). */
    const limited = async (onWorker: boolean): Promise<Peer> => {
      for (let i = 0; i < 60; i++) {
        const p = await connect(await createKey(`limited ${onWorker ? 'worker' : 'main'} ${i}`, { rate_limits: { burst_per_minute: 6 } }));
        if (p.onWorker === onWorker) return p;
        p.ws.close();
        await p.closed;
      }
      throw new Error('no socket landed on the thread wanted in 60 tries');
    };
    const run = async (p: Peer): Promise<{ kind: string; id: unknown; type?: number; error: unknown }[]> => {
      p.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: INIT }));
      for (let i = 1; i <= 4; i++) {
        p.ws.send(JSON.stringify({ jsonrpc: '2.0', id: `t${i}`, method: 'ping' }));
        p.ws.send(frame({ type: McpwType.Request, method: McpwMethod.ToolsList, requestId: BigInt(i), payload: undefined }));
      }
      await until('nine answers', () => (p.received.length >= 9 ? true : undefined));
      p.ws.close();
      // tools/list results name the tools: only whether each answer is a result or which error matters here
      return p.received.map((r) => (r.kind === 'text' ? { kind: r.kind, id: idOf(r), error: resetAside((r.value as Json)['error'] ?? null) } : { kind: r.kind, type: r.type, id: r.requestId, error: r.type === McpwType.Error ? resetAside(r.payload) : null }));
    };
    /** The two keys' windows start at their own second: `data.reset` (epoch s) is checked apart, within 2 s. */
    const resets: number[] = [];
    const resetAside = (error: unknown): unknown => {
      const data = (error as { data?: Json } | null)?.data;
      if (data === undefined || typeof data['reset'] !== 'number') return error;
      resets.push(data['reset']);
      const { reset: _reset, ...rest } = data;
      return { ...(error as Json), data: rest };
    };
    // which message is refused must match; the order answers arrive in may not (a ping is answered
    // at once, a tools/list a turn later, and the worker hands frames over one message each)
    const byId = (a: { kind: string; id: unknown }, b: { kind: string; id: unknown }): number => `${a.kind}:${String(a.id)}`.localeCompare(`${b.kind}:${String(b.id)}`);
    const [worker, main] = await Promise.all([limited(true).then(run), limited(false).then(run)]);
    const onWorker = worker.sort(byId);
    const onMain = main.sort(byId);
    expect(onWorker).toEqual(onMain);
    expect(resets.length).toBeGreaterThan(0);
    expect(Math.max(...resets) - Math.min(...resets)).toBeLessThanOrEqual(2);
    // the limit was reached: some answers are refusals
    expect(onWorker.filter((r) => r.error !== null).length).toBeGreaterThan(0);
    expect(onWorker.filter((r) => r.error === null).length).toBeGreaterThan(0);
  });
});

/** The frames of the property: bad MCPW frames, bad text, invalid JSON-RPC, and pings (answered in order everywhere). */
const u8 = fc.uint8Array({ maxLength: 64 });
const validHeader = (type: number, method: number, flags: number, payload: Uint8Array, id: bigint): Buffer => {
  const b = Buffer.alloc(24 + payload.length);
  b.writeUInt32BE(0x4d435057, 0);
  b[4] = 1;
  b[5] = type;
  b.writeUInt16BE(method, 6);
  b[8] = flags;
  b.writeUInt32BE(payload.length, 12);
  b.writeBigUInt64BE(id, 16);
  Buffer.from(payload).copy(b, 24);
  return b;
};
const badBinary = fc.oneof(
  u8.map((b) => ({ binary: true, data: Buffer.from(b) })),
  fc
    .record({ type: fc.integer({ min: 0, max: 9 }), method: fc.integer({ min: 0, max: 8 }), flags: fc.constantFrom(0, McpwFlags.Gzip, McpwFlags.Encrypted, 4), payload: u8, id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) })
    .map((h) => ({ binary: true, data: validHeader(h.type, h.method, h.flags, h.payload, h.id) })),
  fc.record({ payload: fc.jsonValue({ maxDepth: 3 }), id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }).map((f) => ({ binary: true, data: frame({ type: McpwType.Request, method: McpwMethod.Generic, requestId: f.id, payload: f.payload }) })),
  fc.integer({ min: 100, max: 200 }).map((depth) => ({ binary: true, data: frame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 5n, payload: JSON.parse('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)) as unknown }) })),
);
const badText = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => ({ binary: false, data: s })),
  u8.map((b) => ({ binary: false, data: Buffer.from(b) })),
  fc.jsonValue({ maxDepth: 3 }).map((v) => ({ binary: false, data: JSON.stringify(v) ?? 'null' })),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }).map((v) => ({ binary: false, data: JSON.stringify(v) })),
  fc.integer({ min: 129, max: 300 }).map((depth) => ({ binary: false, data: `{"jsonrpc":"2.0","id":9,"method":"ping","params":${'['.repeat(depth)}${']'.repeat(depth)}}` })),
  fc.oneof(fc.string({ maxLength: 8 }), fc.integer()).map((id) => ({ binary: false, data: JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }) })),
);

describe('/ws bad input on a worker thread', () => {
  it('answers every frame as the main thread does (fast-check)', async () => {
    let onWorker = await socketOn(true);
    let onMain = await socketOn(false);
    let sentinel = 0;
    /** Sends `data` to both, then a text ping; returns what each received up to its answer. */
    const exchange = async (data: string | Buffer, binary: boolean): Promise<[Received[], Received[], number | undefined, number | undefined]> => {
      const id = `sentinel-${sentinel++}`;
      const run = async (p: Peer): Promise<[Received[], number | undefined]> => {
        p.received.length = 0;
        p.ws.send(data, { binary });
        p.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }));
        await until(`the ${id} answer`, () => (p.closeCode !== undefined || p.received.some((r) => idOf(r) === id) ? true : undefined));
        return [p.received.filter((r) => idOf(r) !== id), p.closeCode];
      };
      const [[a, ca], [b, cb]] = await Promise.all([run(onWorker), run(onMain)]);
      return [a, b, ca, cb];
    };
    let compared = 0;
    const before = worker().ws_messages;
    await fc.assert(
      fc.asyncProperty(fc.oneof(badBinary, badText), async (input) => {
        const [fromWorker, fromMain, closedWorker, closedMain] = await exchange(input.data, input.binary);
        expect(closedWorker).toBe(closedMain);
        expect(fromWorker).toEqual(fromMain);
        compared++;
        if (closedWorker !== undefined) {
          onWorker = await socketOn(true);
          onMain = await socketOn(false);
        }
      }),
      { numRuns: 120 },
    );
    onWorker.ws.close();
    onMain.ws.close();
    expect(compared).toBe(120);
    // the sentinels at least went through the worker's decoder
    expect(worker().ws_messages - before).toBeGreaterThanOrEqual(120);
  }, 120_000);
});
