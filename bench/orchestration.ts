/**
 * `npm run bench:orchestration`: agent orchestration and workspace presence on `/ws`, each beside a bare uWebSockets.js baseline measured in the same run.
 *
 * 1. Tasks assigned per second with {@link AGENTS} (100) connected agents. Every agent is a real
 *    `ws` client that sent `agent.register {name, capabilities:["bench"]}`; it answers each
 *    `{"method":"notification","params":{"type":"task.assigned","task":…}}` at once with a
 *    `task.complete {task_id, result}` request, so it is free again. One assigner (another `ws`
 *    client) sends `task.assign {type, priority, required_capabilities:["bench"], payload:{sent}}`
 *    requests, closed loop with at most {@link WINDOW} (64, the gateway's per-connection limit)
 *    tasks sent and not yet delivered to an agent. Measured: assignments delivered to agents per
 *    second (deliveries ÷ (last delivery − first send)) and assign→delivery latency (agent receive
 *    time − `payload.sent`, one process, one clock). Every run is checked: every assign answered
 *    `assigned`, every task delivered once, every `task.complete` answered, the assigner told
 *    `task.completed` for each. Baseline: a bare uWS server (this file, role `raw`) relaying each
 *    message of the assigner, as is, to the next of 100 connected clients, round-robin: the cost
 *    floor of one message in, one message out. Same load generator, same window, same payload.
 * 2. Cursor broadcast latency in a {@link MEMBERS} (50) member workspace: 50 `ws` clients
 *    `workspace.join` one workspace; one member sends a `cursor.position` notification every
 *    {@link INTERVAL_MS} (100 ms, longer than the audit window so `auditTime` coalesces nothing;
 *    the position carries its send time) and the other 49 record receive time − send time of each
 *    `workspace.update {type:"cursor.position"}`. `auditTime` holds every position for up to
 *    `workspaces.cursor_audit_ms` by design, so the gateway runs twice: with the default (50 ms) and
 *    with `cursor_audit_ms: 1`, which leaves the gateway's own path. Baseline: the raw server's
 *    `ws.publish` of the same message (the gateway's outbound `workspace.update`, same size) to a
 *    topic the 50 clients are subscribed to (the sender excluded, as uWS does), at the same rate.
 *
 * Processes: the gateway is its tsc build (`node dist/main.js`, as `npm start` runs it; no
 * upstreams, auth off, 127.0.0.1), config otherwise default. Servers (gateways and the raw server)
 * are pinned to core 0, the load generator (this file, role `load`: every `ws` client in one Node
 * process, driven over IPC) to core 1 (taskset). Runs of one point alternate between baseline and
 * gateway; before each run the bench waits (bounded) for the machine to be quiet, then records
 * the CPU of the server, of the load generator and of everything else. The summary uses the
 * undisturbed runs (other CPU ≤ {@link DISTURBED_PCT}%) when there are any and prints the spread
 * (min–max) of the repeated runs. Prints markdown tables; writes bench/results/orchestration.json;
 * logs to bench/results/orchestration-*.log. Children and temp dirs are removed on exit, error and
 * signals.
 *
 * Environment: BENCH_QUICK=1 (short run: 1 s task runs, 25 moves per cursor run, 2 runs each),
 * BENCH_ORCH_DURATION (s per task run, default 3), BENCH_ORCH_RUNS (task runs per server,
 * default 3), BENCH_ORCH_WINDOW (tasks in flight, default 64), BENCH_ORCH_AGENTS (default 100),
 * BENCH_ORCH_MEMBERS (default 50), BENCH_ORCH_MOVES (cursor moves per run, default 100),
 * BENCH_ORCH_CURSOR_RUNS (default 2), BENCH_ORCH_INTERVAL_MS (default 100), BENCH_QUIET_WAIT (s,
 * default 1), BENCH_PROFILE=1 (the default gateway under --cpu-prof; top self time over the task
 * runs; slows the gateway), BENCH_GATEWAY_NODE_FLAGS (extra node flags for the gateways, e.g.
 * `--trace-gc`; their output lands in bench/results/orchestration-gateway-*.log).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WebSocket as UwsSocket } from 'uWebSockets.js';
import WebSocket from 'ws';
import { loadNativeUws } from '../src/server/uws.js';
import { DISTURBED_PCT, fmtInt, mean, monotonicUs, pct, quantile, sleep, systemCpuSeconds, treeCpuSeconds, waitForQuiet } from './lib.js';
import { ChildGroup, IpcClient, announceListening, envNumber, listeningPort, logTo, serveIpc } from './procs.js';
import { mainThreadProfile, selfTimeTable, topSelfTime, type ProfileSummary, type Window } from './profile.js';

const SELF = fileURLToPath(import.meta.url);
const BENCH_DIR = dirname(SELF);
const ROOT = resolve(BENCH_DIR, '..');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const LOGS = 'bench/results/orchestration-*.log';

const QUICK = (process.env['BENCH_QUICK'] ?? '0') === '1';
const DURATION = envNumber('BENCH_ORCH_DURATION', QUICK ? 1 : 3);
const RUNS = Math.max(1, Math.round(envNumber('BENCH_ORCH_RUNS', QUICK ? 2 : 3)));
const WINDOW = Math.max(1, Math.round(envNumber('BENCH_ORCH_WINDOW', 64)));
const AGENTS = Math.max(1, Math.round(envNumber('BENCH_ORCH_AGENTS', 100)));
const MEMBERS = Math.max(2, Math.round(envNumber('BENCH_ORCH_MEMBERS', 50)));
const MOVES = Math.max(1, Math.round(envNumber('BENCH_ORCH_MOVES', QUICK ? 25 : 100)));
const CURSOR_RUNS = Math.max(1, Math.round(envNumber('BENCH_ORCH_CURSOR_RUNS', 2)));
const INTERVAL_MS = envNumber('BENCH_ORCH_INTERVAL_MS', 100);
const QUIET_WAIT = envNumber('BENCH_QUIET_WAIT', 1);
const PROFILE = (process.env['BENCH_PROFILE'] ?? '0') === '1';
const GATEWAY_NODE_FLAGS = (process.env['BENCH_GATEWAY_NODE_FLAGS'] ?? '').split(/\s+/).filter((f) => f !== '');
const WARMUP_S = QUICK ? 0.5 : 1;
const WARMUP_MOVES = QUICK ? 5 : 10;
/** The gateway's default `workspaces.cursor_audit_ms`, ms (src/config/load.ts). */
const DEFAULT_AUDIT_MS = 50;
const SERVER_CORE = '0';
const LOAD_CORE = '1';
/** Load generator CPU (% of one core) from which a point measures the client rather than the server. */
const CLIENT_BOUND_PCT = 90;
/** Sender behind its schedule by more than this (ms): moves may fall into one audit window. */
const LATE_SEND_MS = 20;
/** (max − min) ÷ mean of repeated runs above this marks a point as noisy. */
const NOISY_SPREAD = 0.2;

const WORKSPACE = 'bench-workspace';
const DOCUMENT = 'doc-1';
const CAPABILITY = 'bench';
/** Ids of the bench's own requests start here (setup requests count from 1). */
const FIRST_BENCH_ID = 1_000_000;

type Json = Record<string, unknown>;
type Kind = 'gateway' | 'raw';

/** Latency summary, ms. */
export interface LatencyStats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** One task run of the load generator (role `load`). Times in ms of its `performance.now()`. */
export interface TaskRunResult {
  sent: number;
  delivered: number;
  /** task.assign answers: status `assigned`, status `queued`, JSON-RPC errors (gateway only). */
  assign_assigned: number;
  assign_queued: number;
  assign_errors: number;
  /** task.complete answers (gateway only). */
  complete_ok: number;
  complete_errors: number;
  /** `task.completed` notifications the assigner received (gateway only). */
  completed_notes: number;
  /** `task.revoked` notifications agents received (gateway only). */
  revoked: number;
  /** Anything else unexpected (unparseable timestamps, unknown answers, task.failed). */
  other_errors: number;
  first_error: string | undefined;
  /** Everything sent was delivered (and, for the gateway, answered and completed) before the timeout. */
  drained: boolean;
  seconds: number;
  tasks_per_s: number;
  per_agent_min: number;
  per_agent_max: number;
  latency_ms: LatencyStats;
}

/** One cursor run of the load generator. */
export interface CursorRunResult {
  moves: number;
  receivers: number;
  expected: number;
  received: number;
  per_member_min: number;
  per_member_max: number;
  /** Presence messages that did not belong to this run (or had no timestamp). */
  stray: number;
  /** Largest delay of a send behind its schedule, ms. */
  send_lag_max_ms: number;
  latency_ms: LatencyStats;
  /**
   * Per move, last − first receive time across the receivers, ms: how long one broadcast takes to
   * reach everyone (the server's fan-out loop and the load generator reading 49 sockets in turn).
   */
  fanout_spread_ms: LatencyStats;
  /** Every latency of the run, ms (for pooling across runs). */
  samples: number[];
}

function latencyStats(sorted: Float64Array): LatencyStats {
  return { n: sorted.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.length > 0 ? (sorted[sorted.length - 1] as number) : NaN };
}

// ================================================================ role `load` (core 1)

/** A growable list of latencies, ms. */
class Samples {
  private a = new Float64Array(4096);
  n = 0;

  push(v: number): void {
    if (this.n === this.a.length) {
      const bigger = new Float64Array(this.a.length * 2);
      bigger.set(this.a);
      this.a = bigger;
    }
    this.a[this.n++] = v;
  }

  sorted(): Float64Array {
    return this.a.slice(0, this.n).sort();
  }
}

/**
 * A `ws` client speaking JSON-RPC text. Answers to {@link Conn.request} resolve it; every other
 * message goes to {@link Conn.onMessage} with its receive time (ms, `performance.now()`, taken
 * before parsing).
 */
class Conn {
  onMessage: (msg: Json, receivedMs: number) => void = () => undefined;
  closed = false;
  private nextId = 1;
  private readonly pending = new Map<unknown, (m: Json) => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: WebSocket.RawData) => {
      const t = performance.now();
      const msg = JSON.parse((data as Buffer).toString('utf8')) as Json;
      if (msg['method'] === undefined && this.pending.size > 0) {
        const w = this.pending.get(msg['id']);
        if (w !== undefined) {
          this.pending.delete(msg['id']);
          w(msg);
          return;
        }
      }
      this.onMessage(msg, t);
    });
    ws.on('close', () => {
      this.closed = true;
    });
  }

  /** Opens `url` (offering `protocol`); rejects on error or after `timeoutMs`. */
  static open(url: string, protocol: string | undefined, timeoutMs = 15_000): Promise<Conn> {
    return new Promise((resolveOpen, reject) => {
      const opts = { perMessageDeflate: false, handshakeTimeout: timeoutMs };
      const ws = protocol === undefined ? new WebSocket(url, opts) : new WebSocket(url, protocol, opts);
      ws.once('open', () => resolveOpen(new Conn(ws)));
      ws.once('error', reject);
    });
  }

  /** Sends a request; resolves its `result`. @throws Error with the JSON-RPC error, or after `timeoutMs`. */
  request(method: string, params: Json, timeoutMs = 15_000): Promise<Json> {
    const id = this.nextId++;
    return new Promise((resolveAnswer, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${method} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        if (m['error'] !== undefined) reject(new Error(`${method} failed: ${JSON.stringify(m['error'])}`));
        else resolveAnswer(m['result'] as Json);
      });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  /** Closes the socket; resolves once it is closed (at most 5 s). */
  async close(): Promise<void> {
    if (this.closed) return;
    const gone = new Promise<void>((r) => this.ws.once('close', () => r()));
    this.ws.terminate();
    await Promise.race([gone, sleep(5000)]);
  }
}

/** Paths of the two servers: agents, the assigner, workspace members. */
const PATHS: Readonly<Record<Kind, { agents: string; assigner: string; members: string; protocol: string | undefined }>> = {
  gateway: { agents: '/ws', assigner: '/ws', members: '/ws', protocol: 'mcp' },
  raw: { agents: '/agents', assigner: '/assign', members: '/presence', protocol: undefined },
};

/** Opens `n` connections, at most 50 handshakes at once. */
async function openMany(url: string, protocol: string | undefined, n: number): Promise<Conn[]> {
  const out: Conn[] = [];
  while (out.length < n) {
    const batch = Math.min(50, n - out.length);
    out.push(...(await Promise.all(Array.from({ length: batch }, () => Conn.open(url, protocol)))));
  }
  return out;
}

/** Polls `done` every 5 ms; resolves whether it came true within `timeoutMs`. */
async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await sleep(5);
  }
  return true;
}

const asJson = (v: unknown): Json => (typeof v === 'object' && v !== null ? (v as Json) : {});

/** The counts of a {@link TaskRunResult} while its run goes on, and the times of its first send and last delivery. */
type TaskCounters = Omit<TaskRunResult, 'drained' | 'seconds' | 'tasks_per_s' | 'per_agent_min' | 'per_agent_max' | 'latency_ms'> & {
  first_send: number;
  last_delivery: number;
};

const zeroTaskCounters = (): TaskCounters => ({
  sent: 0,
  delivered: 0,
  assign_assigned: 0,
  assign_queued: 0,
  assign_errors: 0,
  complete_ok: 0,
  complete_errors: 0,
  completed_notes: 0,
  revoked: 0,
  other_errors: 0,
  first_error: undefined,
  first_send: 0,
  last_delivery: 0,
});

/** The assigner and agents of one server. */
interface TaskRig {
  readonly kind: Kind;
  readonly agents: Conn[];
  readonly assigner: Conn;
  perAgent: Uint32Array;
  lat: Samples;
  c: TaskCounters;
  window: number;
  stopAt: number;
  running: boolean;
  nextId: number;
}

function noteError(rig: TaskRig, what: string, detail: unknown): void {
  rig.c.first_error ??= `${what}: ${JSON.stringify(detail).slice(0, 300)}`;
}

function sendAssign(rig: TaskRig): void {
  const id = rig.nextId++;
  const now = performance.now();
  if (rig.c.sent === 0) rig.c.first_send = now;
  rig.c.sent++;
  rig.assigner.ws.send(
    `{"jsonrpc":"2.0","id":${id},"method":"task.assign","params":{"type":"bench","priority":"normal","required_capabilities":["${CAPABILITY}"],"payload":{"sent":${now},"n":${id}}}}`,
  );
}

/** Tops the window up while the run lasts. */
function pump(rig: TaskRig): void {
  while (rig.running && rig.c.sent - rig.c.delivered < rig.window) {
    if (performance.now() >= rig.stopAt) {
      rig.running = false;
      return;
    }
    sendAssign(rig);
  }
}

function delivered(rig: TaskRig, agent: number, t: number, sent: unknown): void {
  rig.c.delivered++;
  rig.perAgent[agent] = (rig.perAgent[agent] as number) + 1;
  rig.c.last_delivery = t;
  if (typeof sent === 'number') rig.lat.push(t - sent);
  else rig.c.other_errors++;
  pump(rig);
}

/** A gateway agent: completes every task at once (so it is free again), counts the answers. */
function gatewayAgent(rig: TaskRig, i: number, conn: Conn): void {
  conn.onMessage = (msg, t) => {
    if (msg['method'] === 'notification') {
      const p = asJson(msg['params']);
      if (p['type'] === 'task.assigned') {
        const task = asJson(p['task']);
        conn.ws.send(`{"jsonrpc":"2.0","id":${rig.nextId++},"method":"task.complete","params":{"task_id":${JSON.stringify(task['id'])},"result":{"ok":true}}}`);
        delivered(rig, i, t, asJson(task['payload'])['sent']);
      } else if (p['type'] === 'task.revoked') {
        rig.c.revoked++;
        noteError(rig, 'task.revoked', p);
      }
      return;
    }
    if (msg['method'] !== undefined) return;
    if (msg['error'] !== undefined) {
      rig.c.complete_errors++;
      noteError(rig, 'task.complete', msg['error']);
    } else rig.c.complete_ok++;
  };
}

/** The gateway's assigner: counts task.assign answers and `task.completed` notifications. */
function gatewayAssigner(rig: TaskRig): void {
  rig.assigner.onMessage = (msg) => {
    if (msg['method'] === 'notification') {
      const p = asJson(msg['params']);
      if (p['type'] === 'task.completed') rig.c.completed_notes++;
      else {
        rig.c.other_errors++;
        noteError(rig, `assigner got ${String(p['type'])}`, p);
      }
      return;
    }
    if (msg['error'] !== undefined) {
      rig.c.assign_errors++;
      noteError(rig, 'task.assign', msg['error']);
      return;
    }
    const status = asJson(msg['result'])['status'];
    if (status === 'assigned') rig.c.assign_assigned++;
    else if (status === 'queued') rig.c.assign_queued++;
    else {
      rig.c.other_errors++;
      noteError(rig, 'task.assign answer', msg);
    }
  };
}

/** Everything the gateway run must show: every task assigned, delivered, completed and reported. */
function gatewayComplete(c: TaskCounters): boolean {
  return c.delivered >= c.sent && c.assign_assigned + c.assign_queued + c.assign_errors >= c.sent && c.complete_ok + c.complete_errors >= c.delivered && c.completed_notes >= c.complete_ok;
}

interface CursorRig {
  readonly kind: Kind;
  readonly members: Conn[];
  /** The sender's member id (the gateway's `peer-<n>`; a fixed name on the raw server). */
  readonly senderId: string;
  perMember: Uint32Array;
  lat: Samples;
  received: number;
  stray: number;
  run: number;
  /** Per move (by seq): first and last receive time, ms. */
  firstRecv: Float64Array;
  lastRecv: Float64Array;
}

function loadRole(): void {
  const taskRigs = new Map<string, TaskRig>();
  const cursorRigs = new Map<string, CursorRig>();
  const taskRig = (name: unknown): TaskRig => {
    const r = taskRigs.get(String(name));
    if (r === undefined) throw new Error(`no task rig ${String(name)}`);
    return r;
  };
  const cursorRig = (name: unknown): CursorRig => {
    const r = cursorRigs.get(String(name));
    if (r === undefined) throw new Error(`no cursor rig ${String(name)}`);
    return r;
  };
  let runs = 0;

  serveIpc({
    /** {rig, kind, base, agents}: opens and registers the agents, then the assigner. */
    'tasks.connect': async (m) => {
      const kind = m['kind'] as Kind;
      const base = String(m['base']);
      const n = Number(m['agents']);
      const paths = PATHS[kind];
      const agents = await openMany(base + paths.agents, paths.protocol, n);
      const assigner = await Conn.open(base + paths.assigner, paths.protocol);
      const rig: TaskRig = { kind, agents, assigner, perAgent: new Uint32Array(n), lat: new Samples(), c: zeroTaskCounters(), window: 0, stopAt: 0, running: false, nextId: FIRST_BENCH_ID };
      if (kind === 'gateway') {
        await Promise.all(agents.map((a, i) => a.request('agent.register', { name: `bench-agent-${i}`, capabilities: [CAPABILITY] })));
        agents.forEach((a, i) => gatewayAgent(rig, i, a));
        gatewayAssigner(rig);
      } else {
        agents.forEach((a, i) => {
          a.onMessage = (msg, t) => delivered(rig, i, t, asJson(asJson(msg['params'])['payload'])['sent']);
        });
      }
      taskRigs.set(String(m['rig']), rig);
      return { agents: agents.length };
    },
    /** {rig, seconds, window}: closed loop for `seconds`, then waits (≤ 10 s) for the tail. */
    'tasks.run': async (m): Promise<TaskRunResult> => {
      const rig = taskRig(m['rig']);
      const seconds = Number(m['seconds']);
      rig.c = zeroTaskCounters();
      rig.lat = new Samples();
      rig.perAgent.fill(0);
      rig.window = Number(m['window']);
      rig.stopAt = performance.now() + seconds * 1000;
      rig.running = true;
      pump(rig);
      // stops on time even when deliveries stall
      await until(() => !rig.running || performance.now() >= rig.stopAt, seconds * 1000 + 1000);
      rig.running = false;
      const c = rig.c;
      const drained = await until(() => (rig.kind === 'raw' ? c.delivered >= c.sent : gatewayComplete(c)), 10_000);
      const elapsed = (c.last_delivery - c.first_send) / 1000;
      let min = Infinity;
      let max = 0;
      for (const v of rig.perAgent) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      const { first_send: _f, last_delivery: _l, ...counts } = c;
      return { ...counts, drained, seconds: elapsed, tasks_per_s: elapsed > 0 ? c.delivered / elapsed : NaN, per_agent_min: min, per_agent_max: max, latency_ms: latencyStats(rig.lat.sorted()) };
    },
    'tasks.close': async (m) => {
      const rig = taskRig(m['rig']);
      taskRigs.delete(String(m['rig']));
      await Promise.all([...rig.agents, rig.assigner].map((c) => c.close()));
      return {};
    },
    /** {rig, kind, base, members}: opens the members; on the gateway each joins the workspace. */
    'cursor.connect': async (m) => {
      const kind = m['kind'] as Kind;
      const base = String(m['base']);
      const n = Number(m['members']);
      const paths = PATHS[kind];
      const members = await openMany(base + paths.members, paths.protocol, n);
      let senderId = 'peer-sender';
      if (kind === 'gateway') {
        for (let i = 0; i < members.length; i++) {
          const r = await (members[i] as Conn).request('workspace.join', { workspace_id: WORKSPACE, name: `member-${i}` });
          if (i === 0) senderId = String(r['member_id']);
        }
      }
      const rig: CursorRig = { kind, members, senderId, perMember: new Uint32Array(n), lat: new Samples(), received: 0, stray: 0, run: 0, firstRecv: new Float64Array(0), lastRecv: new Float64Array(0) };
      members.forEach((conn, i) => {
        if (i === 0) return; // the sender
        conn.onMessage = (msg, t) => {
          if (msg['method'] !== 'workspace.update') return;
          const p = asJson(msg['params']);
          if (p['type'] !== 'cursor.position') return;
          const pos = asJson(p['position']);
          const seq = pos['seq'];
          if (pos['run'] !== rig.run || typeof pos['sent'] !== 'number' || typeof seq !== 'number' || !(seq >= 0 && seq < rig.firstRecv.length)) {
            rig.stray++;
            return;
          }
          if (rig.firstRecv[seq] === 0) rig.firstRecv[seq] = t;
          rig.lastRecv[seq] = t;
          rig.lat.push(t - pos['sent']);
          rig.received++;
          rig.perMember[i] = (rig.perMember[i] as number) + 1;
        };
      });
      cursorRigs.set(String(m['rig']), rig);
      return { members: members.length, sender_id: senderId };
    },
    /** {rig, moves, interval_ms, settle_ms}: one position every interval, then waits for the last. */
    'cursor.run': async (m): Promise<CursorRunResult> => {
      const rig = cursorRig(m['rig']);
      const moves = Number(m['moves']);
      const interval = Number(m['interval_ms']);
      rig.run = ++runs;
      rig.lat = new Samples();
      rig.received = 0;
      rig.stray = 0;
      rig.perMember.fill(0);
      rig.firstRecv = new Float64Array(moves);
      rig.lastRecv = new Float64Array(moves);
      const sender = rig.members[0] as Conn;
      const receivers = rig.members.length - 1;
      const ws = JSON.stringify(WORKSPACE);
      let lagMax = 0;
      const t0 = performance.now() + 20;
      for (let k = 0; k < moves; k++) {
        const due = t0 + k * interval;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const now = performance.now();
        lagMax = Math.max(lagMax, now - due);
        const position = `{"line":${k},"column":${k % 80},"run":${rig.run},"seq":${k},"sent":${now}}`;
        sender.ws.send(
          rig.kind === 'gateway'
            ? `{"jsonrpc":"2.0","method":"cursor.position","params":{"workspace_id":${ws},"document_id":"${DOCUMENT}","position":${position}}}`
            : // the message the gateway sends out (same fields, same size)
              `{"jsonrpc":"2.0","method":"workspace.update","params":{"type":"cursor.position","workspace_id":${ws},"member_id":"${rig.senderId}","document_id":"${DOCUMENT}","position":${position}}}`,
        );
      }
      await until(() => rig.received >= moves * receivers, Number(m['settle_ms']));
      let min = Infinity;
      let max = 0;
      for (let i = 1; i < rig.perMember.length; i++) {
        min = Math.min(min, rig.perMember[i] as number);
        max = Math.max(max, rig.perMember[i] as number);
      }
      const sorted = rig.lat.sorted();
      const spreads = new Samples();
      for (let k = 0; k < moves; k++) if ((rig.firstRecv[k] as number) > 0) spreads.push((rig.lastRecv[k] as number) - (rig.firstRecv[k] as number));
      return {
        moves,
        receivers,
        expected: moves * receivers,
        received: rig.received,
        per_member_min: min,
        per_member_max: max,
        stray: rig.stray,
        send_lag_max_ms: lagMax,
        latency_ms: latencyStats(sorted),
        fanout_spread_ms: latencyStats(spreads.sorted()),
        samples: Array.from(sorted),
      };
    },
    'cursor.close': async (m) => {
      const rig = cursorRig(m['rig']);
      cursorRigs.delete(String(m['rig']));
      await Promise.all(rig.members.map((c) => c.close()));
      return {};
    },
  });
}

// ================================================================ role `raw` (core 0): the baseline

/**
 * The bare uWS server: `/agents` (clients waiting for tasks), `/assign` (each message is sent, as
 * is, to the next agent, round-robin), `/presence` (every client subscribed to one topic on open;
 * each message `ws.publish`ed to it, which skips the sender). Socket limits as the gateway's `/ws`.
 * Prints `{"listening":PORT}` once bound.
 */
function rawRole(): void {
  const uws = loadNativeUws();
  const TOPIC = 'presence';
  const agents: UwsSocket<unknown>[] = [];
  let next = 0;
  const limits = { maxPayloadLength: 32 * 1024 * 1024, idleTimeout: 120, maxBackpressure: 32 * 1024 * 1024, sendPingsAutomatically: true };
  const app = uws.App();
  app
    .ws('/agents', {
      ...limits,
      open: (ws) => {
        agents.push(ws);
      },
      close: (ws) => {
        const i = agents.indexOf(ws);
        if (i >= 0) agents.splice(i, 1);
      },
    })
    .ws('/assign', {
      ...limits,
      message: (_ws, message, isBinary) => {
        if (agents.length === 0) return;
        next = (next + 1) % agents.length;
        (agents[next] as UwsSocket<unknown>).send(message, isBinary);
      },
    })
    .ws('/presence', {
      ...limits,
      open: (ws) => {
        ws.subscribe(TOPIC);
      },
      message: (ws, message, isBinary) => {
        ws.publish(TOPIC, message, isBinary);
      },
    })
    .get('/health', (res) => {
      res.cork(() => {
        res.writeStatus('200 OK').end('{"status":"healthy"}');
      });
    });
  announceListening(uws, app, 0, 'orchestration raw');
}

// ================================================================ main: the runner

function progress(msg: string): void {
  process.stderr.write(`[bench:orchestration] ${msg}\n`);
}

interface Server {
  readonly kind: Kind;
  readonly label: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** ws://127.0.0.1:PORT */
  readonly base: string;
  /** `workspaces.cursor_audit_ms` (0 for the raw server). */
  readonly auditMs: number;
  /** Task-run windows (CLOCK_MONOTONIC µs) for the profile. */
  readonly windows: Window[];
  readonly profileDir: string | undefined;
}

/** CPU around one run: % of one core over its wall time. */
interface PointCpu {
  wall_s: number;
  server_pct: number;
  load_pct: number;
  /** Machine busy time not charged to the server or the load generator. */
  other_pct: number;
  steal_pct: number;
  quiet_wait_ms: number;
}

interface TaskRow {
  server: 'raw uWS relay' | 'Tributary';
  run: number;
  result: TaskRunResult;
  cpu: PointCpu;
  /** Server CPU per delivered task, µs. */
  server_us_per_task: number;
  load_us_per_task: number;
}

interface CursorRow {
  variant: string;
  kind: Kind;
  audit_ms: number;
  run: number;
  result: CursorRunResult;
  cpu: PointCpu;
}

const fmtMs = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : 'n/a');
const signedMs = (n: number): string => `${n >= 0 ? '+' : '−'}${fmtMs(Math.abs(n))}`;

/** "min–max (±x%)" of repeated runs; ⚠ noisy when (max − min) ÷ mean > {@link NOISY_SPREAD}. */
function spread(xs: number[], fmt: (n: number) => string): string {
  if (xs.length < 2) return `${fmt(xs[0] ?? NaN)} (1 run)`;
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const rel = (hi - lo) / mean(xs);
  return `${fmt(lo)}–${fmt(hi)} (±${((100 * rel) / 2).toFixed(0)}%)${rel > NOISY_SPREAD ? ' ⚠ noisy' : ''}`;
}

class Runner {
  readonly procs = new ChildGroup(ROOT, progress);

  /** The tsc build of src/ in a temp dir (outside the repo), as the other benches make it. */
  gatewayBuild(): string {
    return this.procs.gatewayBuild(ROOT);
  }

  async startGateway(label: string, auditMs: number | undefined, profile: boolean): Promise<Server> {
    const profileDir = profile ? join(RESULTS_DIR, `orchestration-profile-${label}`) : undefined;
    const { child, port } = await this.procs.startGateway({
      build: this.gatewayBuild(),
      config: {
        log_level: 'warn',
        auth: { disabled: true },
        mcp_clients: [],
        ...(auditMs !== undefined ? { workspaces: { cursor_audit_ms: auditMs } } : {}),
      },
      tmpPrefix: 'tributary-bench-orch-',
      core: SERVER_CORE,
      log: join(RESULTS_DIR, `orchestration-gateway-${label}.log`),
      what: `gateway ${label}`,
      logs: LOGS,
      nodeFlags: GATEWAY_NODE_FLAGS,
      ...(profileDir !== undefined ? { profileDir } : {}),
    });
    return { kind: 'gateway', label, child, pid: child.pid as number, base: `ws://127.0.0.1:${port}`, auditMs: auditMs ?? DEFAULT_AUDIT_MS, windows: [], profileDir };
  }

  async startRaw(): Promise<Server> {
    const child = this.procs.spawnPinned(SERVER_CORE, process.execPath, ['--import', 'tsx', SELF, 'raw']);
    logTo(child, join(RESULTS_DIR, 'orchestration-raw-uws.log'), false);
    try {
      const port = await listeningPort(child, 'raw uWS server', LOGS);
      return { kind: 'raw', label: 'raw', child, pid: child.pid as number, base: `ws://127.0.0.1:${port}`, auditMs: 0, windows: [], profileDir: undefined };
    } catch (err) {
      await this.procs.stop(child);
      throw err;
    }
  }

  startLoad(): IpcClient {
    // --max-old-space-size: headroom for 300 sockets and the latencies
    const child = this.procs.spawnPinned(LOAD_CORE, process.execPath, ['--max-old-space-size=1024', '--import', 'tsx', SELF, 'load'], { ipc: true });
    logTo(child, join(RESULTS_DIR, 'orchestration-load.log'), true);
    return new IpcClient(child, 'load generator', LOGS);
  }
}

/** Runs `fn` as one measured point: quiet machine first, then CPU of server, load and the rest. */
async function measured<T>(server: Server, load: IpcClient, fn: () => Promise<T>, recordWindow: boolean): Promise<{ result: T; cpu: PointCpu }> {
  const quiet = await waitForQuiet(QUIET_WAIT * 1000);
  const srv0 = treeCpuSeconds(server.pid);
  const ld0 = treeCpuSeconds(load.pid);
  const sys0 = systemCpuSeconds();
  const t0 = performance.now();
  const w0 = monotonicUs();
  const result = await fn();
  const wall = (performance.now() - t0) / 1000;
  if (recordWindow) server.windows.push([w0, monotonicUs()]);
  const srv = treeCpuSeconds(server.pid) - srv0;
  const ld = treeCpuSeconds(load.pid) - ld0;
  const sys1 = systemCpuSeconds();
  return {
    result,
    cpu: {
      wall_s: wall,
      server_pct: (100 * srv) / wall,
      load_pct: (100 * ld) / wall,
      other_pct: Math.max(0, (100 * (sys1.busy - sys0.busy - srv - ld)) / wall),
      steal_pct: (100 * (sys1.steal - sys0.steal)) / wall,
      quiet_wait_ms: quiet.waitedMs,
    },
  };
}

// ---------------------------------------------------------------- phase 1: task assignment

function taskChecks(r: TaskRunResult, kind: Kind): string {
  const problems: string[] = [];
  if (!r.drained) problems.push(`not drained: ${fmtInt(r.delivered)}/${fmtInt(r.sent)} delivered`);
  if (kind === 'gateway') {
    if (r.assign_assigned !== r.sent) problems.push(`${fmtInt(r.assign_assigned)}/${fmtInt(r.sent)} assigned at once (${r.assign_queued} queued, ${r.assign_errors} errors)`);
    if (r.complete_ok !== r.delivered) problems.push(`${fmtInt(r.complete_ok)}/${fmtInt(r.delivered)} completes ok (${r.complete_errors} errors)`);
    if (r.completed_notes !== r.complete_ok) problems.push(`${fmtInt(r.completed_notes)} task.completed to the assigner`);
    if (r.revoked > 0) problems.push(`${r.revoked} revoked`);
  }
  if (r.other_errors > 0) problems.push(`${r.other_errors} other errors`);
  if (r.first_error !== undefined) problems.push(`first: ${r.first_error}`);
  return problems.length === 0 ? 'ok' : `⚠ ${problems.join('; ')}`;
}

async function taskPhase(load: IpcClient, raw: Server, gw: Server): Promise<TaskRow[]> {
  const t0 = Date.now();
  await load.call('tasks.connect', { rig: 'raw', kind: 'raw', base: raw.base, agents: AGENTS });
  await load.call('tasks.connect', { rig: 'gw', kind: 'gateway', base: gw.base, agents: AGENTS });
  progress(`tasks: ${AGENTS} agents and an assigner on each server in ${Date.now() - t0} ms; window ${WINDOW}, ${DURATION} s per run, ${RUNS} runs`);
  for (const [rig, kind] of [
    ['raw', 'raw'],
    ['gw', 'gateway'],
  ] as const) {
    const w = await load.call<TaskRunResult>('tasks.run', { rig, seconds: WARMUP_S, window: WINDOW });
    const checks = taskChecks(w, kind);
    progress(`tasks warm-up ${kind}: ${fmtInt(w.tasks_per_s)} tasks/s, ${checks}`);
    if (w.delivered === 0) throw new Error(`no task reached an agent of the ${kind} server in the warm-up (${checks})`);
  }
  const rows: TaskRow[] = [];
  for (let run = 1; run <= RUNS; run++) {
    for (const server of [raw, gw]) {
      const rig = server.kind === 'raw' ? 'raw' : 'gw';
      const { result, cpu } = await measured(server, load, () => load.call<TaskRunResult>('tasks.run', { rig, seconds: DURATION, window: WINDOW }), true);
      const row: TaskRow = {
        server: server.kind === 'raw' ? 'raw uWS relay' : 'Tributary',
        run,
        result,
        cpu,
        server_us_per_task: ((cpu.server_pct / 100) * cpu.wall_s * 1e6) / result.delivered,
        load_us_per_task: ((cpu.load_pct / 100) * cpu.wall_s * 1e6) / result.delivered,
      };
      rows.push(row);
      progress(
        `tasks ${row.server} run ${run}: ${fmtInt(result.tasks_per_s)} tasks/s (${fmtInt(result.delivered)} delivered), p50 ${fmtMs(result.latency_ms.p50)} ms, p99 ${fmtMs(result.latency_ms.p99)} ms; ` +
          `CPU server ${pct(cpu.server_pct)}, load ${pct(cpu.load_pct)}, other ${pct(cpu.other_pct)}; ${taskChecks(result, server.kind)}`,
      );
    }
  }
  await load.call('tasks.close', { rig: 'raw' });
  await load.call('tasks.close', { rig: 'gw' });
  return rows;
}

// ---------------------------------------------------------------- phase 2: cursor broadcast

function variantName(s: Server): string {
  if (s.kind === 'raw') return 'raw uWS publish';
  return s.auditMs === DEFAULT_AUDIT_MS ? `Tributary, cursor_audit_ms ${s.auditMs} (default)` : `Tributary, cursor_audit_ms ${s.auditMs}`;
}

async function cursorPhase(load: IpcClient, servers: Server[]): Promise<CursorRow[]> {
  const t0 = Date.now();
  for (const s of servers) await load.call('cursor.connect', { rig: s.label, kind: s.kind, base: s.base, members: MEMBERS });
  progress(`cursor: ${MEMBERS} members on each of ${servers.length} servers in ${Date.now() - t0} ms; a move every ${INTERVAL_MS} ms, ${MOVES} moves per run, ${CURSOR_RUNS} runs`);
  const settle = (s: Server): number => s.auditMs + 2000;
  for (const s of servers) {
    const w = await load.call<CursorRunResult>('cursor.run', { rig: s.label, moves: WARMUP_MOVES, interval_ms: INTERVAL_MS, settle_ms: settle(s) });
    progress(`cursor warm-up ${variantName(s)}: ${fmtInt(w.received)}/${fmtInt(w.expected)} received, p50 ${fmtMs(w.latency_ms.p50)} ms`);
    if (w.received === 0) throw new Error(`no cursor position reached a member on ${variantName(s)} in the warm-up`);
  }
  const rows: CursorRow[] = [];
  for (let run = 1; run <= CURSOR_RUNS; run++) {
    for (const s of servers) {
      const { result, cpu } = await measured(s, load, () => load.call<CursorRunResult>('cursor.run', { rig: s.label, moves: MOVES, interval_ms: INTERVAL_MS, settle_ms: settle(s) }), false);
      const row: CursorRow = { variant: variantName(s), kind: s.kind, audit_ms: s.auditMs, run, result, cpu };
      rows.push(row);
      progress(
        `cursor ${row.variant} run ${run}: ${fmtInt(result.received)}/${fmtInt(result.expected)} received, p50 ${fmtMs(result.latency_ms.p50)} ms, p99 ${fmtMs(result.latency_ms.p99)} ms, max ${fmtMs(result.latency_ms.max)} ms; ` +
          `send lag ≤ ${fmtMs(result.send_lag_max_ms)} ms; CPU server ${pct(cpu.server_pct)}, load ${pct(cpu.load_pct)}, other ${pct(cpu.other_pct)}`,
      );
    }
  }
  for (const s of servers) await load.call('cursor.close', { rig: s.label });
  return rows;
}

// ---------------------------------------------------------------- output

/** The undisturbed runs (other CPU ≤ {@link DISTURBED_PCT}%) when there are any, else all. */
function undisturbed<T extends { cpu: PointCpu }>(rows: T[]): T[] {
  const quiet = rows.filter((r) => r.cpu.other_pct <= DISTURBED_PCT);
  return quiet.length > 0 ? quiet : rows;
}

function runsNote<T extends { cpu: PointCpu }>(rows: T[]): string {
  const used = undisturbed(rows);
  if (used.some((r) => r.cpu.other_pct > DISTURBED_PCT)) return `${rows.length} runs, all disturbed ⚠`;
  return used.length === rows.length ? `${rows.length} runs` : `${used.length} undisturbed of ${rows.length} runs`;
}

const otherMark = (cpu: PointCpu): string => `${pct(cpu.other_pct)}${cpu.other_pct > DISTURBED_PCT ? ' ⚠' : ''}`;

interface TaskSummary {
  rate: number;
  rates: number[];
  p50: number;
  p99: number;
  server_us: number;
  load_us: number;
  load_pct_max: number;
  note: string;
}

function taskSummary(rows: TaskRow[]): TaskSummary {
  const used = undisturbed(rows);
  return {
    rate: mean(used.map((r) => r.result.tasks_per_s)),
    rates: rows.map((r) => r.result.tasks_per_s),
    p50: mean(used.map((r) => r.result.latency_ms.p50)),
    p99: mean(used.map((r) => r.result.latency_ms.p99)),
    server_us: mean(used.map((r) => r.server_us_per_task)),
    load_us: mean(used.map((r) => r.load_us_per_task)),
    load_pct_max: Math.max(...used.map((r) => r.cpu.load_pct)),
    note: runsNote(rows),
  };
}

function taskTables(rows: TaskRow[]): { lines: string[]; ratio: number; costRatio: number } {
  const raw = taskSummary(rows.filter((r) => r.server === 'raw uWS relay'));
  const gw = taskSummary(rows.filter((r) => r.server === 'Tributary'));
  const ratio = gw.rate / raw.rate;
  const costRatio = gw.server_us / raw.server_us;
  const bound = (s: TaskSummary): string => (s.load_pct_max >= CLIENT_BOUND_PCT ? ' ⚠ load generator saturated' : '');
  const rawServerPct = Math.max(...undisturbed(rows.filter((r) => r.server === 'raw uWS relay')).map((r) => r.cpu.server_pct));
  const notes: string[] = [];
  if (rawServerPct < CLIENT_BOUND_PCT) {
    notes.push(
      `The relay used at most ${pct(rawServerPct)} of its core, so its figure is bounded by the load generator (and the machine), not by uWS: the true floor is higher and the true ratio lower than shown; server CPU per task is the steadier comparison.`,
    );
  }
  notes.push(`Closed loop: latency ≈ ${WINDOW} in flight ÷ throughput (Little's law), i.e. mostly queueing behind the window, not the cost of one task.`);
  const lines = [
    `| server | tasks/s (mean) | runs: min–max (spread) | assign→delivery p50 (ms) | p99 (ms) | server CPU µs/task | load gen CPU µs/task | ÷ baseline |`,
    '|---|---:|---|---:|---:|---:|---:|---:|',
    `| raw uWS relay (floor: 1 message in, 1 out) | ${fmtInt(raw.rate)}${bound(raw)} | ${spread(raw.rates, fmtInt)} | ${fmtMs(raw.p50)} | ${fmtMs(raw.p99)} | ${raw.server_us.toFixed(1)} | ${raw.load_us.toFixed(1)} | 1.00 |`,
    `| **Tributary** (task.assign → task.assigned, task.complete) | **${fmtInt(gw.rate)}**${bound(gw)} | ${spread(gw.rates, fmtInt)} | ${fmtMs(gw.p50)} | ${fmtMs(gw.p99)} | ${gw.server_us.toFixed(1)} | ${gw.load_us.toFixed(1)} | **${ratio.toFixed(2)}** |`,
    '',
    `Throughput ratio Tributary ÷ raw uWS = **${ratio.toFixed(2)}** (${gw.note} / ${raw.note}); server CPU per task ${costRatio.toFixed(1)}× the relay's. ` +
      'Per task the relay handles 2 frames; the gateway 6 (assign in, task.assigned out, assign answer out, task.complete in, its answer out, task.completed to the assigner) plus records, events and the store. ' +
      notes.join(' '),
    '',
    '| server | run | tasks delivered | tasks/s | p50 (ms) | p99 (ms) | max (ms) | per agent min–max | server CPU | load gen CPU | other CPU | checks |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const x = r.result;
    lines.push(
      `| ${r.server} | ${r.run} | ${fmtInt(x.delivered)} | ${fmtInt(x.tasks_per_s)} | ${fmtMs(x.latency_ms.p50)} | ${fmtMs(x.latency_ms.p99)} | ${fmtMs(x.latency_ms.max)} | ${x.per_agent_min}–${x.per_agent_max} | ` +
        `${pct(r.cpu.server_pct)} | ${pct(r.cpu.load_pct)}${r.cpu.load_pct >= CLIENT_BOUND_PCT ? ' ⚠' : ''} | ${otherMark(r.cpu)} | ${taskChecks(x, r.server === 'Tributary' ? 'gateway' : 'raw')} |`,
    );
  }
  return { lines, ratio, costRatio };
}

interface CursorSummary {
  variant: string;
  audit_ms: number;
  received: number;
  expected: number;
  p50: number;
  p99: number;
  max: number;
  p99s: number[];
  p50s: number[];
  /** Mean over the runs used of the per-move fan-out spread p50, ms. */
  spread_p50: number;
  note: string;
}

function cursorSummaries(rows: CursorRow[]): CursorSummary[] {
  const variants = [...new Set(rows.map((r) => r.variant))];
  return variants.map((variant) => {
    const all = rows.filter((r) => r.variant === variant);
    const used = undisturbed(all);
    const pooled = Float64Array.from(used.flatMap((r) => r.result.samples)).sort();
    const stats = latencyStats(pooled);
    return {
      variant,
      audit_ms: (all[0] as CursorRow).audit_ms,
      received: used.reduce((a, r) => a + r.result.received, 0),
      expected: used.reduce((a, r) => a + r.result.expected, 0),
      p50: stats.p50,
      p99: stats.p99,
      max: stats.max,
      p99s: all.map((r) => r.result.latency_ms.p99),
      p50s: all.map((r) => r.result.latency_ms.p50),
      spread_p50: mean(used.map((r) => r.result.fanout_spread_ms.p50)),
      note: runsNote(all),
    };
  });
}

function cursorTables(rows: CursorRow[]): { lines: string[]; summaries: CursorSummary[] } {
  const sums = cursorSummaries(rows);
  const raw = sums.find((s) => s.audit_ms === 0);
  const lines = [
    `| variant | audit window (ms) | received / expected | p50 (ms) | p99 (ms) | max (ms) | p50 − window (ms) | p99 − window (ms) | p99 ÷ baseline p99 | first→last receiver per move, p50 (ms) | p50 per run | p99 per run | runs |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|',
  ];
  for (const s of sums) {
    const complete = s.received === s.expected ? `all ${fmtInt(s.expected)}` : `${fmtInt(s.received)} / ${fmtInt(s.expected)} ⚠`;
    lines.push(
      `| ${s.audit_ms === 0 ? s.variant : `**${s.variant}**`} | ${s.audit_ms} | ${complete} | ${fmtMs(s.p50)} | ${fmtMs(s.p99)} | ${fmtMs(s.max)} | ${fmtMs(s.p50 - s.audit_ms)} | ${fmtMs(s.p99 - s.audit_ms)} | ${raw ? (s.p99 / raw.p99).toFixed(2) : 'n/a'} | ${fmtMs(s.spread_p50)} | ` +
        `${spread(s.p50s, fmtMs)} | ${spread(s.p99s, fmtMs)} | ${s.note} |`,
    );
  }
  lines.push(
    '',
    '| variant | run | received / expected | per member min–max | stray | p50 (ms) | p99 (ms) | max (ms) | first→last p50 / max (ms) | send lag max (ms) | server CPU | load gen CPU | other CPU |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of rows) {
    const x = r.result;
    lines.push(
      `| ${r.variant} | ${r.run} | ${fmtInt(x.received)} / ${fmtInt(x.expected)}${x.received !== x.expected ? ' ⚠' : ''} | ${x.per_member_min}–${x.per_member_max} | ${x.stray} | ${fmtMs(x.latency_ms.p50)} | ${fmtMs(x.latency_ms.p99)} | ${fmtMs(x.latency_ms.max)} | ${fmtMs(x.fanout_spread_ms.p50)} / ${fmtMs(x.fanout_spread_ms.max)} | ` +
        `${fmtMs(x.send_lag_max_ms)}${x.send_lag_max_ms > LATE_SEND_MS ? ' ⚠' : ''} | ${pct(r.cpu.server_pct)} | ${pct(r.cpu.load_pct)} | ${otherMark(r.cpu)} |`,
    );
  }
  return { lines, summaries: sums };
}

function readProfile(gw: Server, root: string): ProfileSummary | undefined {
  if (gw.profileDir === undefined) return undefined;
  try {
    return topSelfTime(mainThreadProfile(gw.profileDir, gw.pid), gw.windows, 25, root);
  } catch (err) {
    progress(`profile not read: ${(err as Error).message}`);
    return undefined;
  }
}

function profileLines(p: ProfileSummary | undefined): string[] {
  if (!p) return [];
  return [
    '',
    `### Gateway CPU profile over the task runs (top self time: ${p.busy_ms.toFixed(0)} ms busy of ${p.window_ms.toFixed(0)} ms sampled; --cpu-prof slows the gateway)`,
    '',
    ...selfTimeTable(p),
  ];
}

async function main(): Promise<void> {
  const runner = new Runner();
  const { procs } = runner;
  procs.checkPinning();
  if (cpus().length < 2) progress(`only ${cpus().length} CPU: the load generator and the servers share a core`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const started = Date.now();
  try {
    progress(`building the gateway with tsc${QUICK ? ' (BENCH_QUICK)' : ''}`);
    runner.gatewayBuild();
    const load = runner.startLoad();
    const raw = await runner.startRaw();
    const gw = await runner.startGateway('default', undefined, PROFILE);

    const taskRows = await taskPhase(load, raw, gw);

    const gw1 = await runner.startGateway('audit1', 1, false);
    const cursorRows = await cursorPhase(load, [raw, gw1, gw]);

    await procs.stop(gw.child);
    const profile = readProfile(gw, runner.gatewayBuild());
    await procs.stopAll();

    const tasks = taskTables(taskRows);
    const cursor = cursorTables(cursorRows);
    const gw1Sum = cursor.summaries.find((s) => s.audit_ms === 1);
    const gwSum = cursor.summaries.find((s) => s.audit_ms === DEFAULT_AUDIT_MS);
    const rawSum = cursor.summaries.find((s) => s.audit_ms === 0);

    const lines: string[] = [];
    lines.push(`## Tributary orchestration on /ws — tasks and cursor broadcast vs bare uWS${QUICK ? ' (BENCH_QUICK)' : ''}`);
    lines.push(
      '',
      `Servers pinned to core ${SERVER_CORE}, the load generator (every \`ws\` client in one Node process) to core ${LOAD_CORE}${procs.pinning ? '' : ' (pinning off: taskset unusable)'}. ` +
        `The gateway runs its tsc build (\`node dist/main.js\`), no upstreams, auth off, default config except \`workspaces.cursor_audit_ms\` where named${PROFILE ? '; BENCH_PROFILE: the default gateway ran under --cpu-prof (slower)' : ''}. ` +
        `CPU is % of one core over a run; "other CPU" is machine-wide CPU not charged to the server or the load generator (this machine is shared): ⚠ above ${DISTURBED_PCT}% (disturbed; the summaries skip such runs when an undisturbed one exists). ` +
        `⚠ on the load generator: ≥ ${CLIENT_BOUND_PCT}% of its core, so the client limited that run. Spreads are min–max of the repeated runs, ⚠ noisy above ±${(100 * NOISY_SPREAD) / 2}%.`,
    );
    lines.push('', `### 1. Tasks assigned per second, ${AGENTS} agents, ${WINDOW} tasks in flight, ${DURATION} s per run`, '', ...tasks.lines);
    lines.push(
      '',
      `### 2. Cursor broadcast latency, ${MEMBERS}-member workspace, a move every ${INTERVAL_MS} ms, ${MOVES} moves × ${MEMBERS - 1} receivers per run, ${CURSOR_RUNS} runs`,
      '',
      ...cursor.lines,
      '',
      'Latency = member receive time − send time in the position (one process, one clock), so it includes both loopback hops and the load generator handling the other members\' frames of the same move; the baseline has the same. ' +
        '`auditTime` holds each position until its window ends (by design: a fast typist cannot flood a slow member), so the default gateway\'s figures contain the 50 ms window; the cursor_audit_ms 1 row is the gateway\'s own path.',
    );
    lines.push(...profileLines(profile));
    lines.push('', '### Results', '');
    lines.push(`- tasks/s with ${AGENTS} agents: Tributary ÷ raw uWS relay = **${tasks.ratio.toFixed(2)}**; server CPU per task ${tasks.costRatio.toFixed(1)}× the relay's`);
    if (gw1Sum && rawSum) {
      lines.push(
        `- cursor p99 with cursor_audit_ms 1: ${fmtMs(gw1Sum.p99)} ms vs ${fmtMs(rawSum.p99)} ms bare uWS publish (**${(gw1Sum.p99 / rawSum.p99).toFixed(2)}×**, ${signedMs(gw1Sum.p99 - rawSum.p99)} ms); p50 ${fmtMs(gw1Sum.p50)} vs ${fmtMs(rawSum.p50)} ms (${signedMs(gw1Sum.p50 - rawSum.p50)} ms, of which up to ~1 ms is the 1 ms window)`,
      );
    }
    if (gwSum && rawSum) {
      lines.push(
        `- cursor p99 with the default cursor_audit_ms ${DEFAULT_AUDIT_MS}: ${fmtMs(gwSum.p99)} ms (window ${DEFAULT_AUDIT_MS} ms ${signedMs(gwSum.p99 - DEFAULT_AUDIT_MS)} ms; beyond the window ${signedMs(gwSum.p99 - DEFAULT_AUDIT_MS - rawSum.p99)} ms against the baseline's p99)`,
      );
    }
    lines.push('', `(${((Date.now() - started) / 1000).toFixed(0)} s total; results in bench/results/orchestration.json)`);
    process.stdout.write(lines.join('\n') + '\n');

    const json = {
      date: new Date().toISOString(),
      quick: QUICK,
      settings: { agents: AGENTS, window: WINDOW, duration_s: DURATION, runs: RUNS, members: MEMBERS, moves: MOVES, cursor_runs: CURSOR_RUNS, interval_ms: INTERVAL_MS, pinning: procs.pinning },
      tasks: { ratio: tasks.ratio, server_cpu_ratio: tasks.costRatio, rows: taskRows },
      cursor: {
        summaries: cursor.summaries,
        rows: cursorRows.map((r) => ({ ...r, result: { ...r.result, samples: undefined } })),
      },
      profile,
    };
    writeFileSync(join(RESULTS_DIR, 'orchestration.json'), JSON.stringify(json, null, 2) + '\n');
  } finally {
    await procs.stopAll();
  }
}

const role = process.argv[2];
if (role === 'load') loadRole();
else if (role === 'raw') rawRole();
else if (role === undefined) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(1);
    },
  );
} else {
  process.stderr.write('usage: tsx bench/orchestration.ts   (roles `load` and `raw` are spawned by the bench itself)\n');
  process.exit(2);
}
