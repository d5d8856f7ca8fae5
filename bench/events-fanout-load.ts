/**
 * Child processes of `npm run bench:events` (bench/events-fanout.ts), driven over the Node IPC
 * channel (one request `{id, cmd, ...}` → one reply `{id, ok, result | error}`):
 *
 * - `subscribers`: many real WebSocket clients (`ws`), grouped in named sets. Each client sends
 *   `{"type":"subscribe","event_types":["ToolInvocationCompleted"]}`, waits for the ack, and then
 *   counts events; a *stalled* client pauses its socket (`ws._socket.pause()`) right after the ack
 *   and never reads again. Per delivery it records publish-to-deliver latency: receive time
 *   (`performance.timeOrigin + performance.now()`, fractional ms of wall time) minus the event's
 *   `timestamp` (ISO-8601, ms resolution, stamped by the publishing server when it published).
 *   Both processes read the same machine clock. The event is not JSON-parsed on the hot path: `seq`
 *   and `timestamp` are read from the frame bytes (control frames, `{"type":…}`, are parsed).
 * - `publisher`: sends events at a fixed rate for a fixed time, open loop with a bound on requests
 *   in flight: `tools/call demo-echo` on the gateway's `/mcp` (each call publishes one
 *   `ToolInvocationCompleted` on the gateway's bus), or `POST /publish` on the raw uWS baseline.
 *   Every response is checked; only checked ones count as published.
 */
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { MCP_PROTOCOL_VERSION, openSession } from './lib.js';
import { serveIpc } from './procs.js';

const nowWall = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- subscribers

interface Sub {
  readonly ws: WebSocket;
  received: number;
  lastSeq: number;
  outOfOrder: number;
  warnings: number;
  dropped: number;
  errors: number;
  closed: boolean;
}

interface SubSet {
  readonly subs: Sub[];
  lat: Float64Array;
  latN: number;
  latOverflow: number;
  firstRecv: number;
  lastRecv: number;
  /** One event frame as received (text), for the payload size and the raw server's template. */
  sample: string | undefined;
}

const LAT_CAP = 1 << 23; // 8 Mi latencies (64 MiB) per set at most; beyond that they are not kept
const SEQ_KEY = Buffer.from('"seq":');
const TS_KEY = Buffer.from('"timestamp":"');
const E = 0x65; // 'e' of {"event_type":…; control frames start {"type":…
const SUBSCRIBE = JSON.stringify({ type: 'subscribe', event_types: ['ToolInvocationCompleted'] });

const sets = new Map<string, SubSet>();
let lastTsText = '';
let lastTsMs = NaN;

function newSet(): SubSet {
  return { subs: [], lat: new Float64Array(1 << 16), latN: 0, latOverflow: 0, firstRecv: 0, lastRecv: 0, sample: undefined };
}

function resetSet(s: SubSet): void {
  for (const sub of s.subs) {
    sub.received = 0;
    sub.outOfOrder = 0;
    sub.warnings = 0;
    sub.dropped = 0;
    sub.errors = 0;
  }
  s.latN = 0;
  s.latOverflow = 0;
  s.firstRecv = 0;
  s.lastRecv = 0;
}

function onEvent(set: SubSet, sub: Sub, data: Buffer, now: number): void {
  sub.received++;
  if (set.firstRecv === 0) set.firstRecv = now;
  set.lastRecv = now;
  const si = data.indexOf(SEQ_KEY);
  if (si >= 0) {
    let seq = 0;
    for (let i = si + SEQ_KEY.length; i < data.length; i++) {
      const c = data[i] as number;
      if (c < 0x30 || c > 0x39) break;
      seq = seq * 10 + (c - 0x30);
    }
    if (seq <= sub.lastSeq) sub.outOfOrder++;
    sub.lastSeq = seq;
  }
  const ti = data.indexOf(TS_KEY);
  if (ti < 0) return;
  const start = ti + TS_KEY.length;
  const text = data.toString('latin1', start, start + 24);
  if (text !== lastTsText) {
    lastTsText = text;
    lastTsMs = Date.parse(text);
  }
  if (set.latN === set.lat.length) {
    if (set.lat.length >= LAT_CAP) {
      set.latOverflow++;
      return;
    }
    const bigger = new Float64Array(set.lat.length * 2);
    bigger.set(set.lat);
    set.lat = bigger;
  }
  set.lat[set.latN++] = now - lastTsMs;
}

function onControl(sub: Sub, data: Buffer): void {
  try {
    const m = JSON.parse(data.toString('utf8')) as { type?: string; code?: string; dropped?: number };
    if (m.type === 'warning' && m.code === 'events_dropped') {
      sub.warnings++;
      sub.dropped += m.dropped ?? 0;
    } else if (m.type === 'error') sub.errors++;
  } catch {
    sub.errors++;
  }
}

function connectOne(set: SubSet, url: string, stalled: boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: timeoutMs });
    const sub: Sub = { ws, received: 0, lastSeq: 0, outOfOrder: 0, warnings: 0, dropped: 0, errors: 0, closed: false };
    let acked = false;
    const timer = setTimeout(() => {
      if (!acked) {
        ws.terminate();
        reject(new Error(`no subscribe ack from ${url} in ${timeoutMs} ms`));
      }
    }, timeoutMs);
    ws.on('open', () => ws.send(SUBSCRIBE));
    ws.on('message', (raw: WebSocket.RawData) => {
      const data = raw as Buffer;
      const now = nowWall();
      if (data[2] === E) {
        if (set.sample === undefined) set.sample = data.toString('utf8');
        onEvent(set, sub, data, now);
        return;
      }
      if (!acked) {
        const m = JSON.parse(data.toString('utf8')) as { type?: string };
        if (m.type !== 'subscribed') return;
        acked = true;
        clearTimeout(timer);
        set.subs.push(sub);
        // a stalled subscriber: stop reading the socket; the server's sends pile up
        if (stalled) (ws as unknown as { _socket: Socket })._socket.pause();
        resolve();
        return;
      }
      onControl(sub, data);
    });
    ws.on('error', (err) => {
      sub.errors++;
      if (!acked) {
        clearTimeout(timer);
        reject(err);
      }
    });
    ws.on('close', () => {
      sub.closed = true;
    });
  });
}

function quantileOf(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

export interface SetStats {
  subscribers: number;
  closed: number;
  received_total: number;
  received_min: number;
  received_max: number;
  out_of_order: number;
  warnings: number;
  dropped: number;
  errors: number;
  first_recv_wall: number;
  last_recv_wall: number;
  latency_ms: { n: number; overflow: number; p50: number; p99: number; p999: number; max: number; min: number };
  sample: string | undefined;
}

function statsOf(s: SubSet, withLatency: boolean): SetStats {
  let total = 0;
  let min = Infinity;
  let max = 0;
  let ooo = 0;
  let warnings = 0;
  let dropped = 0;
  let errors = 0;
  let closed = 0;
  for (const sub of s.subs) {
    total += sub.received;
    min = Math.min(min, sub.received);
    max = Math.max(max, sub.received);
    ooo += sub.outOfOrder;
    warnings += sub.warnings;
    dropped += sub.dropped;
    errors += sub.errors;
    if (sub.closed) closed++;
  }
  const sorted = withLatency ? s.lat.slice(0, s.latN).sort() : new Float64Array(0);
  return {
    subscribers: s.subs.length,
    closed,
    received_total: total,
    received_min: s.subs.length === 0 ? 0 : min,
    received_max: max,
    out_of_order: ooo,
    warnings,
    dropped,
    errors,
    first_recv_wall: s.firstRecv,
    last_recv_wall: s.lastRecv,
    latency_ms: {
      n: s.latN,
      overflow: s.latOverflow,
      p50: quantileOf(sorted, 0.5),
      p99: quantileOf(sorted, 0.99),
      p999: quantileOf(sorted, 0.999),
      max: sorted.length ? (sorted[sorted.length - 1] as number) : NaN,
      min: sorted.length ? (sorted[0] as number) : NaN,
    },
    sample: s.sample,
  };
}

function getSet(name: unknown): SubSet {
  const s = sets.get(String(name));
  if (!s) throw new Error(`no subscriber set ${String(name)}`);
  return s;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function subscribersRole(): void {
  serveIpc({
    /** {set, url, n, stalled?}: opens n subscribers (at most 100 handshakes at once). */
    connect: async (m) => {
      const name = String(m['set']);
      const set = sets.get(name) ?? newSet();
      sets.set(name, set);
      const n = Number(m['n']);
      const url = String(m['url']);
      const stalled = m['stalled'] === true;
      let opened = 0;
      while (opened < n) {
        const batch = Math.min(100, n - opened);
        await Promise.all(Array.from({ length: batch }, () => connectOne(set, url, stalled, 15_000)));
        opened += batch;
      }
      return { subscribers: set.subs.length };
    },
    reset: async (m) => {
      resetSet(getSet(m['set']));
      return {};
    },
    /** {set, count, timeoutMs}: waits until every subscriber received ≥ count events (or the time is up). */
    wait: async (m) => {
      const s = getSet(m['set']);
      const count = Number(m['count']);
      const deadline = Date.now() + Number(m['timeoutMs']);
      for (;;) {
        let min = Infinity;
        for (const sub of s.subs) if (!sub.closed) min = Math.min(min, sub.received);
        if (min >= count || Date.now() >= deadline) return { complete: min >= count };
        await sleep(10);
      }
    },
    stats: async (m) => statsOf(getSet(m['set']), m['latency'] !== false),
    close: async (m) => {
      const name = String(m['set']);
      const s = sets.get(name);
      if (!s) return {};
      sets.delete(name);
      const gone = s.subs.map((sub) => new Promise<void>((r) => (sub.closed ? r() : sub.ws.once('close', () => r()))));
      for (const sub of s.subs) sub.ws.terminate();
      await Promise.race([Promise.all(gone), sleep(5000)]);
      return {};
    },
  });
}

// ---------------------------------------------------------------- publisher

const MESSAGE = 'fanout';
const EXPECTED = `"Echo: ${MESSAGE}"`;

interface Target {
  host: string;
  port: number;
  path: string;
  headers: Record<string, string>;
  body: (i: number) => string;
  check: (status: number, body: string) => boolean;
}

let agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(t: Target, i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const body = t.body(i);
    const req = request(
      { agent, host: t.host, port: t.port, path: t.path, method: 'POST', headers: { ...t.headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(t.check(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
        res.on('error', () => resolve(false));
      },
    );
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

function targetOf(kind: string, base: string, session: string | undefined): Target {
  const u = new URL(base);
  const host = u.hostname;
  const port = Number(u.port);
  if (kind === 'gateway') {
    return {
      host,
      port,
      path: '/mcp',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': MCP_PROTOCOL_VERSION, 'mcp-session-id': session ?? '' },
      body: (i) => `{"jsonrpc":"2.0","id":${i},"method":"tools/call","params":{"name":"demo-echo","arguments":{"message":"${MESSAGE}"}}}`,
      check: (status, body) => status === 200 && body.includes(EXPECTED) && !body.includes('"isError":true'),
    };
  }
  return { host, port, path: '/publish', headers: { 'content-type': 'application/json' }, body: () => '{}', check: (status, body) => status === 200 && body === '{"ok":true}' };
}

export interface PublishResult {
  /** Requests sent. */
  sent: number;
  /** Responses that checked out: events published. */
  ok: number;
  failed: number;
  /** Wall time (ms, fractional) of the first send and of the last response. */
  start_wall: number;
  end_wall: number;
  /** Wall time of the last send. */
  last_send_wall: number;
  /** Sends that were late because `maxInFlight` requests were outstanding. */
  held_back: number;
  /** Highest number of requests in flight. */
  max_in_flight: number;
}

/** Sends `round(rate × seconds)` requests at `rate`/s, at most `maxInFlight` at once. */
function publishAtRate(t: Target, rate: number, seconds: number, maxInFlight: number): Promise<PublishResult> {
  return new Promise((resolve) => {
    const total = Math.max(1, Math.round(rate * seconds));
    const r: PublishResult = { sent: 0, ok: 0, failed: 0, start_wall: nowWall(), end_wall: 0, last_send_wall: 0, held_back: 0, max_in_flight: 0 };
    const t0 = performance.now();
    let inFlight = 0;
    let heldThisTick = false;
    const done = (): void => {
      r.end_wall = nowWall();
      resolve(r);
    };
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      heldThisTick = false;
      while (r.sent < due) {
        if (inFlight >= maxInFlight) {
          if (!heldThisTick) r.held_back++;
          heldThisTick = true;
          break;
        }
        const i = r.sent++;
        inFlight++;
        r.max_in_flight = Math.max(r.max_in_flight, inFlight);
        r.last_send_wall = nowWall();
        void post(t, i).then((good) => {
          if (good) r.ok++;
          else r.failed++;
          inFlight--;
          if (r.sent >= total && inFlight === 0) done();
        });
      }
      if (r.sent < total) setTimeout(tick, 1);
    };
    tick();
  });
}

function publisherRole(): void {
  const sessions = new Map<string, string>();
  serveIpc({
    /** {kind: 'gateway'|'raw', url, rate, seconds, maxInFlight} */
    run: async (m) => {
      const kind = String(m['kind']);
      const url = String(m['url']);
      let session: string | undefined;
      if (kind === 'gateway') {
        session = sessions.get(url);
        if (session === undefined) {
          session = await openSession(url, 'bench-events');
          sessions.set(url, session);
        }
      }
      const maxInFlight = Number(m['maxInFlight'] ?? 32);
      if (agent.maxSockets !== maxInFlight) {
        agent.destroy();
        agent = new Agent({ keepAlive: true, maxSockets: maxInFlight });
      }
      return publishAtRate(targetOf(kind, url, session), Number(m['rate']), Number(m['seconds']), maxInFlight);
    },
  });
}

const role = process.argv[2];
if (role === 'subscribers') subscribersRole();
else if (role === 'publisher') publisherRole();
else {
  process.stderr.write('usage: events-fanout-load.ts subscribers|publisher (spawned by bench/events-fanout.ts with an IPC channel)\n');
  process.exit(2);
}
