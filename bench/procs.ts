/**
 * Process plumbing shared by the bench runners: children spawned in their own process groups and
 * pinned to a core with `taskset`, stopped SIGTERM-then-SIGKILL, all killed on exit or signal;
 * temp dirs removed; the gateway's tsc build and its start; free loopback ports; env numbers;
 * readiness of children (`/health`, a `{"listening":PORT}` line); a request/reply IPC channel;
 * wrk points; the runner's `main`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TemplatedApp } from 'uWebSockets.js';
import type { UwsModule } from '../src/server/uws.js';
import { fillOtherCpu, monotonicUs, systemCpuSeconds, treeCpuSeconds, type Point } from './lib.js';
import type { Window } from './profile.js';

/** A non-negative number from the environment, or `fallback`. @throws Error for anything else. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}

/** Sends `sig` to the child's whole process group (its own children included). */
export function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // already gone
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** Copies a child's stderr (and stdout when `stdoutToo`) into `file`. */
export function logTo(child: ChildProcess, file: string, stdoutToo: boolean): void {
  const out = createWriteStream(file);
  child.stderr?.pipe(out);
  if (stdoutToo) child.stdout?.pipe(out);
}

/** Rejects when `child` exits (race it against readiness). */
export function exitedEarly(child: ChildProcess, what: string, logs: string): Promise<never> {
  return new Promise((_, reject) => {
    child.once('exit', (code, sig) => reject(new Error(`${what} exited early (code ${String(code)}, signal ${String(sig)}); see ${logs}`)));
  });
}

/** The children and temp dirs of one bench run. */
export class ChildGroup {
  /** Pin children with taskset (turned off when taskset is unusable). */
  pinning = true;
  readonly children = new Set<ChildProcess>();
  private readonly tempDirs = new Set<string>();
  private build: string | undefined;

  /** Installs exit and signal handlers that kill every child and remove the temp dirs. */
  constructor(
    private readonly cwd: string,
    private readonly progress: (msg: string) => void,
  ) {
    process.on('exit', () => this.killAllNow());
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        progress(`${sig}: stopping children`);
        this.killAllNow();
        process.exit(130);
      });
    }
  }

  /** Turns {@link pinning} off, with a progress note, when `taskset` does not run here. */
  checkPinning(): void {
    if (spawnSync('taskset', ['-c', '0', 'true']).status === 0) return;
    this.pinning = false;
    this.progress('taskset is not usable: running without CPU pinning (numbers are less comparable)');
  }

  /**
   * Spawns a child in its own process group, pinned to `core`; stdout/stderr piped. With env
   * BENCH_NICE (e.g. `-10`; lowering it needs root or CAP_SYS_NICE) the child runs under
   * `nice -n BENCH_NICE`: on a machine shared with other work, the measured processes then win
   * their cores back from it at once, as on a dedicated machine.
   */
  spawnPinned(core: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; ipc?: boolean } = {}): ChildProcess {
    let [cmd, argv] = this.pinning ? ['taskset', ['-c', core, command, ...args]] : [command, args];
    const nice = process.env['BENCH_NICE'];
    if (nice !== undefined && nice !== '') {
      if (!/^-?\d+$/.test(nice)) throw new Error(`BENCH_NICE must be an integer niceness, got ${JSON.stringify(nice)}`);
      argv = ['-n', nice, cmd as string, ...(argv as string[])];
      cmd = 'nice';
    }
    const child = spawn(cmd as string, argv as string[], {
      cwd: this.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** SIGTERM to the child's process group, SIGKILL after `graceMs`. */
  async stop(child: ChildProcess, graceMs = 5000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) {
      signalGroup(child, 'SIGKILL'); // leftovers of the group, if any
      return;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    signalGroup(child, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    signalGroup(child, 'SIGKILL');
  }

  /** Stops every child, then removes the temp dirs. */
  async stopAll(graceMs = 2000): Promise<void> {
    await Promise.all([...this.children].map((c) => this.stop(c, graceMs)));
    this.removeTempDirs();
  }

  /** Registers a dir to remove at the end. */
  trackTempDir(dir: string): string {
    this.tempDirs.add(dir);
    return dir;
  }

  removeTempDirs(): void {
    for (const d of this.tempDirs) rmSync(d, { recursive: true, force: true });
    this.tempDirs.clear();
  }

  /** SIGKILL to every child's group and temp dirs removed (exit and signal paths). */
  killAllNow(): void {
    for (const c of this.children) signalGroup(c, 'SIGKILL');
    this.children.clear();
    this.removeTempDirs();
  }

  /**
   * Compiles the gateway (`tsconfig.build.json`) into a new temp dir with package.json and a
   * node_modules link, so `node <dir>/dist/main.js` runs as `npm start` does. Returns the dir.
   * @throws Error with tsc's output when the build fails.
   */
  buildGateway(root: string, prefix = 'tributary-bench-build-'): string {
    const dir = this.trackTempDir(mkdtempSync(join(tmpdir(), prefix)));
    const tsc = join(root, 'node_modules', '.bin', 'tsc');
    const r = spawnSync(tsc, ['-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist'), '--declaration', 'false'], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tsc build of the gateway failed:\n${r.stdout}${r.stderr}`);
    copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    // the dashboard's files (the gateway serves /ui from the folder next to dist/)
    symlinkSync(join(root, 'ui'), join(dir, 'ui'), 'dir');
    return dir;
  }

  /**
   * The gateway build of this run, made on the first call and returned again after: `prebuilt`
   * (a directory holding `dist/`, `package.json` and `node_modules`) when given and not empty,
   * else {@link buildGateway} of `root`.
   * @throws Error with tsc's output when the build fails.
   */
  gatewayBuild(root: string, prebuilt?: string, prefix?: string): string {
    this.build ??= prebuilt !== undefined && prebuilt !== '' ? resolve(prebuilt) : this.buildGateway(root, prefix);
    return this.build;
  }

  /**
   * Starts `node <build>/dist/main.js --config <file>` pinned to `core`, with the config
   * `{server: {host: '127.0.0.1', port}, data_dir, ...config}` (a free port; `data_dir` in a new
   * temp dir, removed at the end), or with no config file for `config: 'embedded-default'`;
   * stderr and stdout logged to `log`. Resolves once `/health`
   * answers (see {@link waitForHealth}); on failure the gateway is stopped and the error rethrown.
   */
  async startGateway(o: GatewayOptions): Promise<StartedGateway> {
    const dir = this.trackTempDir(mkdtempSync(join(tmpdir(), o.tmpPrefix)));
    const port = await freePort();
    let args = [...(o.nodeFlags ?? []), join(o.build, 'dist', 'main.js')];
    let env = o.env;
    if (o.config === 'embedded-default') {
      // no config file: the gateway's embedded default, moved by its env overrides
      env = { ...(env ?? process.env), HOST: '127.0.0.1', PORT: String(port), DATA_DIR: join(dir, 'data') };
      delete env['TRIBUTARY_CONFIG'];
    } else {
      const configPath = join(dir, 'config.json');
      // a `server` section in the config adds to the host and port chosen here
      const server = { host: '127.0.0.1', port, ...((o.config['server'] as Record<string, unknown> | undefined) ?? {}) };
      writeFileSync(configPath, JSON.stringify({ data_dir: join(dir, 'data'), ...o.config, server }, null, 2));
      args.push('--config', configPath);
    }
    if (o.profileDir !== undefined) {
      rmSync(o.profileDir, { recursive: true, force: true });
      args = ['--cpu-prof', '--cpu-prof-dir', o.profileDir, ...args];
    }
    const child = this.spawnPinned(o.core, process.execPath, args, env !== undefined ? { env } : {});
    logTo(child, o.log, true);
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHealth(url, child, o.what, o.logs, o.healthyOnly === true ? { healthyOnly: true } : {});
    } catch (err) {
      await this.stop(child);
      throw err;
    }
    return { child, port, url, dir };
  }
}

/** How {@link ChildGroup.startGateway} starts a gateway. */
export interface GatewayOptions {
  /** The build to run (holds `dist/main.js`), e.g. {@link ChildGroup.gatewayBuild}. */
  build: string;
  /**
   * The config after `server` and `data_dir`, which are set by the start; or `'embedded-default'`:
   * no config file, the gateway's embedded default with env `HOST`, `PORT` and `DATA_DIR` set.
   */
  config: Record<string, unknown> | 'embedded-default';
  /** Name prefix of the temp dir holding the config file and `data/`. */
  tmpPrefix: string;
  core: string;
  /** File that gets the gateway's stderr and stdout. */
  log: string;
  /** The gateway as errors name it (`gateway`, `gateway on`). */
  what: string;
  /** The logs errors point to (a path or a glob). */
  logs: string;
  /** Run under `--cpu-prof`, writing into this dir (emptied first). */
  profileDir?: string;
  /** Node flags before the script (after the profiling ones). */
  nodeFlags?: readonly string[];
  /** The gateway's whole environment; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Wait for `"status":"healthy"` (every upstream connected), not for any 200. */
  healthyOnly?: boolean;
}

/** A gateway started by {@link ChildGroup.startGateway}; `url` is `http://127.0.0.1:<port>`. */
export interface StartedGateway {
  child: ChildProcess;
  port: number;
  url: string;
  /** The temp dir with the config file and `data/`. */
  dir: string;
}

/**
 * Resolves once `GET <url>/health` answers 200 (polled every 100 ms), and with `healthyOnly` only
 * once its body says `"status":"healthy"` (a gateway answers 200 `degraded` while an upstream is
 * still connecting); rejects when `child` exits first or after `timeoutMs` (default 60 s), naming
 * the last answer and `logs`.
 */
export async function waitForHealth(url: string, child: ChildProcess, what: string, logs: string, options: { timeoutMs?: number; healthyOnly?: boolean } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let stopped = false;
  const healthy = (async () => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline && !stopped) {
      try {
        const r = await fetch(`${url}/health`);
        last = `${r.status} ${await r.text()}`;
        if (r.status === 200 && (options.healthyOnly !== true || last.includes('"status":"healthy"'))) return;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${what} did not become healthy in ${timeoutMs / 1000} s (last: ${last}); see ${logs}`);
  })();
  try {
    await Promise.race([healthy, exitedEarly(child, what, logs)]);
  } finally {
    stopped = true;
  }
}

/**
 * The port of a child that prints one stdout line `{"listening":PORT}` once bound (the bench's
 * raw uWS servers). Rejects when the child exits first or after `timeoutMs`.
 */
export function listeningPort(child: ChildProcess, what: string, logs: string, timeoutMs = 60_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const listening = new Promise<number>((resolvePort) => {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { listening?: unknown };
          if (typeof msg.listening === 'number') resolvePort(msg.listening);
        } catch {
          // not ours
        }
      }
    });
  });
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs / 1000} s; see ${logs}`)), timeoutMs);
  });
  return Promise.race([listening, exitedEarly(child, what, logs), late]).finally(() => clearTimeout(timer));
}

/**
 * Child side of {@link listeningPort}, for the bench's uWS servers: listens on 127.0.0.1:`port`
 * (0: any free port) and prints `{"listening":PORT}` once bound; exits 1 (naming `name` on
 * stderr) when it cannot bind, and 0 on SIGINT or SIGTERM.
 */
export function announceListening(uws: UwsModule, app: TemplatedApp, port: number, name: string): void {
  app.listen('127.0.0.1', port, (socket) => {
    if (!socket) {
      process.stderr.write(`${name}: cannot listen on 127.0.0.1:${port}\n`);
      process.exit(1);
    }
    const bound = uws.us_socket_local_port(socket as unknown as Parameters<typeof uws.us_socket_local_port>[0]);
    process.stdout.write(JSON.stringify({ listening: bound }) + '\n');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
}

/** A request of the bench IPC protocol: `{id, cmd, ...args}`, answered `{id, ok, result}` or `{id, ok: false, error}`. */
interface IpcReply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/**
 * Parent side of a request/reply channel over a child's IPC pipe (the child runs {@link serveIpc}).
 * Calls pending when the child exits are rejected, naming `logs`.
 */
export class IpcClient {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly pid: number;

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
    logs: string,
  ) {
    this.pid = child.pid as number;
    child.on('message', (raw: unknown) => {
      const m = raw as IpcReply;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error ?? 'failed'}`));
    });
    child.once('exit', (code, sig) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (code ${String(code)}, signal ${String(sig)}); see ${logs}`));
      this.pending.clear();
    });
  }

  /** Sends `cmd` with `args`; resolves the child's result, rejects with its error. */
  call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolveCall, reject) => {
      this.pending.set(id, { resolve: resolveCall as (v: unknown) => void, reject });
      this.child.send({ id, cmd, ...args });
    });
  }
}

/**
 * Child side of {@link IpcClient}: runs `handlers[cmd]` for each request and answers with its
 * result or error message; the process exits when the parent goes away.
 */
export function serveIpc(handlers: Record<string, (msg: Record<string, unknown>) => Promise<unknown>>): void {
  process.on('message', (raw: unknown) => {
    const msg = raw as Record<string, unknown> & { id: number; cmd: string };
    const send = (r: IpcReply): void => {
      process.send?.(r);
    };
    const handler = handlers[msg.cmd];
    if (!handler) {
      send({ id: msg.id, ok: false, error: `unknown command ${msg.cmd}` });
      return;
    }
    handler(msg).then(
      (result) => send({ id: msg.id, ok: true, result }),
      (err: unknown) => send({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------- wrk

/** The first line of `wrk --version`; undefined when wrk is not on PATH. */
export function wrkVersion(): string | undefined {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (r.error) return undefined;
  return `${r.stdout}${r.stderr}`.split('\n')[0]?.trim();
}

/** One wrk point (see {@link runWrk}). */
export interface WrkOptions {
  /** The Lua script; it prints one line `BENCH_JSON {...}` in `done()` (see bench/mcp-call.lua). */
  script: string;
  /** What wrk loads, e.g. `http://127.0.0.1:PORT/mcp`. */
  url: string;
  /** Connections (wrk runs 1 thread). */
  concurrency: number;
  /** Whole seconds (`-d`). */
  seconds: number;
  /** Environment of the script, added to this process's. */
  env: Record<string, string>;
  /** The server under load: the CPU of its process tree is measured. */
  serverPid: number;
  /**
   * More process trees to measure over the same window, by name (e.g. a gateway's upstream
   * processes); they are reported in `point.tree_cpu_s` beside `server`.
   */
  trees?: Record<string, number>;
  /** Core wrk is pinned to. */
  core: string;
}

/** What {@link runWrk} measured. */
export interface WrkResult {
  point: Point;
  /** The load window (CLOCK_MONOTONIC µs), for profiles. */
  window: Window;
  /** CPU seconds of the server's process tree during the window. */
  serverCpuSeconds: number;
}

/** The `BENCH_JSON` line of bench/mcp-call.lua (latencies in µs). */
interface WrkJson {
  requests: number;
  duration_us: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  checked: number;
  rpc_errors: number;
  bad_status: number;
  latency_us: { p50: number; p99: number };
}

/** CPU seconds from bash `times` output: its last line is the children's user and system time. */
function parseTimes(stderr: string): number | undefined {
  const lines = stderr.split('\n').filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l.trim()));
  const last = lines[lines.length - 1];
  if (last === undefined) return undefined;
  let total = 0;
  for (const m of last.trim().matchAll(/(\d+)m([\d.]+)s/g)) total += Number(m[1]) * 60 + Number(m[2]);
  return total;
}

/**
 * Runs wrk (1 thread, `concurrency` connections, `--timeout 5s`) pinned to `core`, with the
 * script's `BENCH_JSON` line as the point: req/s, p50/p99 (µs), errors (connect, read, write,
 * timeout, non-2xx — wrk's own status count when the script checked no body — and JSON-RPC
 * errors), wrk's CPU (bash `times`), the server's CPU and the machine's other CPU.
 * @throws Error with wrk's output when it exits non-zero or prints no `BENCH_JSON` line.
 */
export async function runWrk(procs: ChildGroup, o: WrkOptions): Promise<WrkResult> {
  const args = ['-t1', `-c${o.concurrency}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', o.script, o.url];
  const trees = Object.entries(o.trees ?? {});
  const trees0 = trees.map(([, pid]) => treeCpuSeconds(pid));
  const server0 = treeCpuSeconds(o.serverPid);
  const sys0 = systemCpuSeconds();
  const t0 = performance.now();
  const w0 = monotonicUs();
  // `times` reports the CPU time wrk used (user + sys of the shell's children)
  const child = procs.spawnPinned(o.core, 'bash', ['-c', 'wrk "$@"; rc=$?; times 1>&2; exit $rc', 'wrk', ...args], { env: { ...process.env, ...o.env } });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  const wall = (performance.now() - t0) / 1000;
  const window: Window = [w0, monotonicUs()];
  const serverCpu = treeCpuSeconds(o.serverPid) - server0;
  const treeCpu: Record<string, number> = { server: serverCpu };
  trees.forEach(([name, pid], i) => (treeCpu[name] = treeCpuSeconds(pid) - (trees0[i] as number)));
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (code !== 0 || line === undefined) throw new Error(`wrk failed (exit ${String(code)}):\n${stdout}\n${stderr}`);
  const w = JSON.parse(line.slice('BENCH_JSON '.length)) as WrkJson;
  const secs = w.duration_us / 1e6;
  const e = w.errors;
  const detail: Record<string, number> = {};
  for (const [k, v] of Object.entries(e)) if (v > 0) detail[k] = v;
  if (w.rpc_errors > 0) detail['rpc'] = w.rpc_errors;
  if (w.bad_status > 0) detail['non2xx'] = w.bad_status;
  const statusErrors = w.checked > 0 ? w.bad_status : e.status;
  const wrkCpu = parseTimes(stderr);
  const point: Point = {
    requests: w.requests,
    seconds: secs,
    rps: w.requests / secs,
    p50_us: w.latency_us.p50,
    p99_us: w.latency_us.p99,
    errors: e.connect + e.read + e.write + e.timeout + statusErrors + w.rpc_errors,
    error_detail: detail,
    checked: w.checked,
    server_cpu_pct: (100 * serverCpu) / wall,
    tree_cpu_s: treeCpu,
  };
  if (wrkCpu !== undefined) point.loadgen_cpu_pct = (100 * wrkCpu) / wall;
  fillOtherCpu(point, sys0, (wrkCpu ?? 0) + serverCpu, wall);
  return { point, window, serverCpuSeconds: serverCpu };
}

// ---------------------------------------------------------------- the runner's main

/**
 * Runs a runner's `main`: an error is printed as `<tag>: <stack>` on stderr and sets the exit
 * code to 1; either way every child of `procs` is stopped and its temp dirs removed after.
 */
export function runMain(tag: string, procs: ChildGroup, main: () => Promise<void>): void {
  main()
    .catch((err: unknown) => {
      process.stderr.write(`${tag}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(async () => {
      await procs.stopAll();
    });
}
