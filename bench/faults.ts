/**
 * `npm run bench:faults`: upstream faults measured through a real gateway process.
 *
 *   1. Crash recovery: a stdio upstream is SIGKILLed with a call in flight; measured are the time
 *      until that call fails (detection) and until the first successful call after the restart,
 *      for the default reconnect schedule (first attempt after 1 s ±20%) and for
 *      `reconnect.initial_ms: 100` (which leaves mostly the subprocess start-up). Each crash hits
 *      a different upstream (a first crash); then one upstream is crashed again right after each
 *      recovery, where the schedule treats it as a crash loop and backs off further.
 *   2. Healthy-upstream latency: `fast-echo` (a stdio upstream) called by `BENCH_FAULTS_CALLERS`
 *      concurrent callers for `BENCH_FAULTS_SECONDS`, with no fault (baseline, measured before,
 *      between and after the fault points), while a sibling HTTP upstream accepts calls and never
 *      answers (100 agents keep calling it; its breaker is off, so every call hangs until its 1 s
 *      timeout: 64 in flight, the rest queued), and while a sibling stdio upstream is SIGKILLed
 *      again within 500 ms of each restart (8 agents keep calling it). Each restart starts a tsx
 *      process, whose start-up CPU competes with the gateway on a small machine.
 *
 * The gateway runs as its own process (`src/main.ts` via tsx) on 127.0.0.1; the upstreams are
 * `test/fixtures/fault-server.ts` (stdio) and `test/fixtures/hang-http-server.ts` (HTTP). Prints
 * markdown tables; nothing here gates on absolute times (DESIGN: benchmarks compare against a
 * baseline in the same run).
 *
 * Environment: BENCH_FAULTS_ROUNDS (crashes per schedule, default 3), BENCH_FAULTS_SECONDS
 * (seconds per latency point, default 4), BENCH_FAULTS_CALLERS (concurrent fast-echo callers,
 * default 8).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { quantile, sleep } from './lib.js';

const ROOT = join(import.meta.dirname, '..');
const FAULT = join(ROOT, 'test/fixtures/fault-server.ts');
const HANG = join(ROOT, 'test/fixtures/hang-http-server.ts');
const ROUNDS = Number(process.env['BENCH_FAULTS_ROUNDS'] ?? 3);
const SECONDS = Number(process.env['BENCH_FAULTS_SECONDS'] ?? 4);
const CALLERS = Number(process.env['BENCH_FAULTS_CALLERS'] ?? 8);

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

interface RpcReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: { result?: unknown; error?: { code?: number; message?: string } } | undefined;
}

/** POSTs one JSON-RPC message to `url` over a keep-alive connection. */
function post(url: URL, body: unknown, headers: Record<string, string> = {}): Promise<RpcReply> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(data), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: RpcReply['json'];
          try {
            json = text === '' ? undefined : (JSON.parse(text) as RpcReply['json']);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

class Session {
  private id = 0;
  private constructor(
    private readonly url: URL,
    private readonly sessionId: string,
  ) {}

  static async open(url: URL): Promise<Session> {
    const r = await post(url, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench-faults', version: '1' } } });
    const sid = r.headers['mcp-session-id'];
    if (typeof sid !== 'string') throw new Error(`initialize failed: ${r.status}`);
    await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sid });
    return new Session(url, sid);
  }

  /** Calls a tool; resolves with the JSON-RPC error code, or 0 for a result. */
  async call(tool: string, args: Record<string, unknown> = {}): Promise<{ code: number; text: string }> {
    const r = await post(this.url, { jsonrpc: '2.0', id: ++this.id, method: 'tools/call', params: { name: tool, arguments: args } }, { 'mcp-session-id': this.sessionId });
    if (r.json?.error) return { code: r.json.error.code ?? -1, text: r.json.error.message ?? '' };
    const content = (r.json?.result as { content?: { text?: string }[] } | undefined)?.content;
    return { code: 0, text: content?.[0]?.text ?? '' };
  }
}

async function startHangServer(): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', HANG], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout ?? process.stdin }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`hang server exited with ${String(code)}`)));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}

async function startGateway(config: unknown): Promise<{ child: ChildProcess; url: URL; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-faults-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ ...(config as object), data_dir: join(dir, 'data') }));
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts'), '--config', path], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`gateway exited with ${String(code)}: ${stderr}`)));
    createInterface({ input: child.stderr ?? process.stdin }).on('line', (line) => {
      if (stderr.length < 100_000) stderr += `${line}\n`;
      const m = /"msg":"listening".*?"port":(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return { child, url: new URL(`http://127.0.0.1:${port}/mcp`), dir };
}

function stats(samples: number[]): { n: number; p50: number; p99: number } {
  const s = Float64Array.from(samples).sort();
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
}

/** `CALLERS` loops calling fast-echo for `SECONDS`; latencies in ms. */
async function measureFast(session: Session): Promise<{ latencies: number[]; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        const r = await session.call('fast-echo', { message: 'x' });
        latencies.push(performance.now() - t0);
        if (r.code !== 0) errors++;
      }
    }),
  );
  return { latencies, errors };
}

/** Runs `agents` loops calling `tool` until `stop()` says so; returns the count of outcomes by JSON-RPC code. */
function agents(session: Session, count: number, tool: string, pauseOnErrorMs: number): { stop: () => Promise<Record<string, number>> } {
  let stopped = false;
  const codes: Record<string, number> = {};
  const loops = Array.from({ length: count }, async () => {
    while (!stopped) {
      const r = await session.call(tool, { message: 'x' }).catch(() => ({ code: -1, text: '' }));
      codes[String(r.code)] = (codes[String(r.code)] ?? 0) + 1;
      if (r.code !== 0) await sleep(pauseOnErrorMs);
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return codes;
    },
  };
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Kills the upstream behind `tool` with SIGKILL while a `wait` call is in flight; returns detection and recovery times (ms). */
async function crashOnce(session: Session, name: string): Promise<{ detectMs: number; recoverMs: number }> {
  await waitUntil(`${name} up`, async () => (await session.call(`${name}-echo`, { message: 'up' })).code === 0);
  const pid = Number((await session.call(`${name}-pid`)).text);
  const inflight = session.call(`${name}-wait`);
  await sleep(50);
  const t0 = performance.now();
  process.kill(pid, 'SIGKILL');
  const failed = await inflight;
  const detectMs = performance.now() - t0;
  if (failed.code === 0) throw new Error('the call in flight did not fail');
  for (;;) {
    if ((await session.call(`${name}-echo`, { message: 'back' })).code === 0) break;
    await sleep(5);
  }
  return { detectMs, recoverMs: performance.now() - t0 };
}

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(2);
}

async function main(): Promise<void> {
  const hang = await startHangServer();
  const stdio = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    connection_type: 'stdio',
    stdio_config: { command: process.execPath, args: ['--import', 'tsx', FAULT] },
    ...extra,
  });
  const gw = await startGateway({
    server: { host: '127.0.0.1', port: 0 },
    log_level: 'info',
    mcp_clients: [
      { name: 'fast', ...stdio() },
      ...Array.from({ length: ROUNDS }, (_, i) => ({ name: `crash_default_${i}`, ...stdio() })),
      ...Array.from({ length: ROUNDS }, (_, i) => ({ name: `crash_quick_${i}`, ...stdio({ reconnect: { initial_ms: 100 } }) })),
      { name: 'crash_loop', ...stdio({ reconnect: { initial_ms: 100 } }) },
      { name: 'flappy', ...stdio({ reconnect: { initial_ms: 100, max_ms: 400 } }) },
      {
        name: 'stuck',
        connection_type: 'http',
        connection_string: `${hang.base}/mcp`,
        request_timeout_ms: 1000,
        circuit_breaker: { failure_threshold: 1_000_000 },
        health_check_interval_ms: 600_000,
      },
    ],
  });
  try {
    const session = await Session.open(gw.url);
    for (const name of ['fast', 'crash_loop', 'flappy', 'stuck', ...Array.from({ length: ROUNDS }, (_, i) => [`crash_default_${i}`, `crash_quick_${i}`]).flat()]) {
      await waitUntil(`${name} connected`, async () => (await session.call(`${name}-echo`, { message: 'x' })).code === 0);
    }
    await measureFast(session); // warm-up

    // 1. crash recovery
    const recovery: { schedule: string; detect: number[]; recover: number[] }[] = [];
    for (const [prefix, schedule] of [
      ['crash_default', 'default: first attempt after 1 s ±20%'],
      ['crash_quick', 'reconnect.initial_ms 100'],
    ] as const) {
      const detect: number[] = [];
      const recover: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const r = await crashOnce(session, `${prefix}_${i}`);
        detect.push(r.detectMs);
        recover.push(r.recoverMs);
      }
      recovery.push({ schedule, detect, recover });
    }
    // the same upstream crashed again right after each recovery: the schedule continues (100, 200, 400, ... ms)
    const loop: number[] = [];
    for (let i = 0; i < 4; i++) loop.push((await crashOnce(session, 'crash_loop')).recoverMs);

    // 2. healthy-upstream latency; no-fault points between the fault points show the drift
    const points: { scenario: string; s: ReturnType<typeof stats>; errors: number; note: string }[] = [];
    const baselines: number[] = [];
    const baseline = async (label: string): Promise<void> => {
      const r = await measureFast(session);
      baselines.push(...r.latencies);
      points.push({ scenario: label, s: stats(r.latencies), errors: r.errors, note: '' });
    };
    await measureFast(session); // warm-up after the crash rounds
    await baseline('no fault (baseline 1)');

    await post(new URL(`${hang.base}/control/hang`), {});
    // more agents than its max_concurrent_calls (64): 64 calls hang, the rest queue
    const hangAgents = agents(session, 100, 'stuck-echo', 100);
    await sleep(300);
    const hung = await measureFast(session);
    const hangCodes = await hangAgents.stop();
    points.push({
      scenario: 'sibling HTTP upstream hangs',
      s: stats(hung.latencies),
      errors: hung.errors,
      note: `stuck-echo outcomes: ${Object.entries(hangCodes).map(([c, n]) => `${c === '0' ? 'ok' : c} ×${n}`).join(', ')}`,
    });
    await post(new URL(`${hang.base}/control/heal`), {});
    await baseline('no fault (baseline 2)');

    const crashAgents = agents(session, 8, 'flappy-echo', 20);
    let killing = true;
    let kills = 0;
    const killer = (async () => {
      while (killing) {
        const r = await session.call('flappy-pid');
        if (r.code === 0) {
          try {
            process.kill(Number(r.text), 'SIGKILL');
            kills++;
          } catch {
            // already gone
          }
        }
        await sleep(500);
      }
    })();
    const crashing = await measureFast(session);
    killing = false;
    await killer;
    const crashCodes = await crashAgents.stop();
    points.push({
      scenario: 'sibling stdio upstream SIGKILLed again within 500 ms of each restart',
      s: stats(crashing.latencies),
      errors: crashing.errors,
      note: `${kills} kills; flappy-echo outcomes: ${Object.entries(crashCodes).map(([c, n]) => `${c === '0' ? 'ok' : c} ×${n}`).join(', ')}`,
    });

    await baseline('no fault (baseline 3)');

    const base = stats(baselines);
    console.log(`\n## Crash of a stdio upstream → first successful call after its restart (${ROUNDS} crashes each)\n`);
    console.log('| reconnect schedule | call in flight fails after (median) | first successful call after, min | median | max |');
    console.log('|---|---:|---:|---:|---:|');
    for (const r of recovery) {
      const d = stats(r.detect);
      const s = Float64Array.from(r.recover).sort();
      console.log(`| ${r.schedule} | ${fmt(d.p50)} ms | ${fmt(s[0] ?? NaN)} ms | ${fmt(quantile(s, 0.5))} ms | ${fmt(s[s.length - 1] ?? NaN)} ms |`);
    }
    console.log(`\nCrash loop (reconnect.initial_ms 100, crashed again right after each recovery): first successful call after ${loop.map((ms) => `${fmt(ms)} ms`).join(', ')}.`);
    console.log(`\n## Healthy upstream (fast-echo, ${CALLERS} callers, ${SECONDS} s per point) beside a sick sibling\n`);
    console.log('| scenario | calls | errors | p50 | p99 | p99 / baseline p99 | notes |');
    console.log('|---|---:|---:|---:|---:|---:|---|');
    for (const p of points) {
      console.log(`| ${p.scenario} | ${p.s.n} | ${p.errors} | ${fmt(p.s.p50)} ms | ${fmt(p.s.p99)} ms | ${(p.s.p99 / base.p99).toFixed(2)}× | ${p.note} |`);
    }
    console.log(`\nbaseline p99 = the three no-fault points pooled (${fmt(base.p99)} ms); their spread is the run-to-run noise.`);
  } finally {
    gw.child.kill('SIGTERM');
    await new Promise((r) => gw.child.once('exit', r));
    hang.child.kill();
    rmSync(gw.dir, { recursive: true, force: true });
    agent.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
