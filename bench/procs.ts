/**
 * Process plumbing shared by the bench runners: children spawned in their own process groups and
 * pinned to a core with `taskset`, stopped SIGTERM-then-SIGKILL, all killed on exit or signal;
 * temp dirs removed; the gateway's tsc build; free loopback ports; env numbers.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

  /** Installs exit and signal handlers that kill every child and remove the temp dirs. */
  constructor(
    private readonly cwd: string,
    progress: (msg: string) => void,
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

  /** Spawns a child in its own process group, pinned to `core`; stdout/stderr piped. */
  spawnPinned(core: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; ipc?: boolean } = {}): ChildProcess {
    const [cmd, argv] = this.pinning ? ['taskset', ['-c', core, command, ...args]] : [command, args];
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
    return dir;
  }
}

/**
 * Resolves once `GET <url>/health` answers 200 (polled every 100 ms); rejects when `child` exits
 * first or after `timeoutMs`, naming the last answer and `logs`.
 */
export async function waitForHealth(url: string, child: ChildProcess, what: string, logs: string, timeoutMs = 60_000): Promise<void> {
  let stopped = false;
  const healthy = (async () => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline && !stopped) {
      try {
        const r = await fetch(`${url}/health`);
        last = `${r.status} ${await r.text()}`;
        if (r.status === 200) return;
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
