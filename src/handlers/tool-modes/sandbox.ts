/**
 * The code-mode sandbox as the gateway uses it: runs go to a pool of worker threads (Node
 * `worker_threads`, https://nodejs.org/docs/latest-v20.x/api/worker_threads.html), each owning
 * one QuickJS WebAssembly module whose memory is capped at `memory_bytes` (see
 * `sandbox-engine.ts` for the engine and the per-run limits). The gateway's thread only passes
 * messages: a tool call from the guest arrives here and runs through the host's normal path; its
 * answer goes back. A run that has not ended `wall_ms` after it started (or 250 ms after it was
 * cancelled) gets its worker terminated — the only way to stop a guest stuck inside one long
 * built-in call — and the slot starts a fresh worker for its next run.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SandboxLimits } from '../../config/schema.js';
import type { SandboxHost, SandboxResult } from './sandbox-types.js';
import type { FromWorker, ToWorker, WorkerInit } from './sandbox-protocol.js';

export type { ConsoleLine, SandboxError, SandboxErrorCode, SandboxHost, SandboxResult } from './sandbox-types.js';

/** How long a cancelled or overdue run may take to stop by itself before its worker is terminated, ms. */
const STOP_GRACE_MS = 250;

/**
 * A new sandbox worker: the compiled `sandbox-worker.js` next to this file, else (development,
 * tests) the `.ts` source loaded through tsx's ESM loader, registered inside the worker first
 * (Node 20 workers do not apply `--import` loaders to their entry module).
 */
function startWorker(workerData: WorkerInit): Worker {
  const js = new URL('./sandbox-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return new Worker(js, { workerData });
  const tsx = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const ts = new URL('./sandbox-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

interface ActiveRun {
  readonly runId: number;
  readonly host: SandboxHost;
  readonly finish: (result: SandboxResult, broken: boolean) => void;
}

/** One worker and the run it is executing, if any. */
class Slot {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private onReady: (() => void) | undefined;
  active: ActiveRun | undefined;
  busy = false;

  constructor(
    private readonly pool: WorkerPool,
    private readonly memoryBytes: number,
  ) {}

  /** The slot's worker, started on first use (and again after a termination); resolves once its engine is loaded. */
  ensureWorker(): Promise<void> {
    if (this.worker && this.ready) return this.ready;
    this.pool.started++;
    this.ready = new Promise<void>((resolve) => {
      this.onReady = resolve;
    });
    const worker = startWorker({ memoryBytes: this.memoryBytes });
    // events of a worker this slot has already replaced are ignored
    worker.on('message', (m: FromWorker) => {
      if (this.worker === worker) this.onMessage(m);
    });
    worker.on('error', (err) => {
      if (this.worker === worker) this.onExit(`the sandbox worker failed: ${err.message}`);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.onExit(`the sandbox worker exited (code ${code})`);
    });
    this.worker = worker;
    return this.ready;
  }

  get alive(): boolean {
    return this.worker !== undefined;
  }

  /** Keeps the process alive while a run is in flight (`true`), not while idle. */
  hold(on: boolean): void {
    if (on) this.worker?.ref();
    else this.worker?.unref();
  }

  post(m: ToWorker): void {
    this.worker?.postMessage(m);
  }

  /** Stops the worker at once; the run in flight (if any) ends with `result`. */
  terminate(result: SandboxResult): void {
    const w = this.worker;
    this.worker = undefined;
    const active = this.active;
    this.active = undefined;
    active?.finish(result, true);
    if (w) void w.terminate();
  }

  /** Why the last worker ended, for the error of a run that found no worker. */
  lastExit = '';

  private onExit(reason: string): void {
    this.lastExit = reason;
    this.worker = undefined;
    // a worker that died before it was ready releases whoever waits for it
    this.onReady?.();
    this.onReady = undefined;
    const active = this.active;
    this.active = undefined;
    active?.finish(failure('SANDBOX_CODE_ERROR', reason), true);
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'ready') {
      this.onReady?.();
      this.onReady = undefined;
      return;
    }
    const active = this.active;
    if (!active || m.runId !== active.runId) return;
    switch (m.type) {
      case 'call':
        active.host.callTool(m.index, m.args).then(
          (text) => this.post({ type: 'answer', runId: m.runId, callId: m.callId, ok: true, text }),
          (err: unknown) => this.post({ type: 'answer', runId: m.runId, callId: m.callId, ok: false, text: err instanceof Error ? err.message : String(err) }),
        );
        return;
      case 'progress':
        active.host.progress?.(m.progress, m.total, m.message);
        return;
      case 'done':
        this.active = undefined;
        active.finish(m.result, m.broken);
        return;
    }
  }
}

function failure(code: NonNullable<SandboxResult['error']>['code'], message: string, limit?: NonNullable<SandboxResult['error']>['limit']): SandboxResult {
  return { ok: false, error: { code, message, ...(limit ? { limit } : {}) }, logs: [], tool_calls: 0, cpu_ms: 0, wall_ms: 0 };
}

/** Up to `size` workers; runs beyond that wait for a free one. */
class WorkerPool {
  private readonly slots: Slot[];
  private readonly waiters: ((slot: Slot) => void)[] = [];
  private nextRun = 0;
  /** Workers started so far (replacements of terminated ones included). */
  started = 0;

  constructor(size: number, memoryBytes: number) {
    this.slots = Array.from({ length: size }, () => new Slot(this, memoryBytes));
  }

  private async acquire(): Promise<Slot> {
    const free = this.slots.find((s) => !s.busy);
    const slot = free ?? (await new Promise<Slot>((resolve) => this.waiters.push(resolve)));
    slot.busy = true;
    return slot;
  }

  private release(slot: Slot): void {
    const next = this.waiters.shift();
    if (next) next(slot);
    else slot.busy = false;
  }

  async run(code: string, host: SandboxHost, limits: SandboxLimits, signal?: AbortSignal): Promise<SandboxResult> {
    const slot = await this.acquire();
    const runId = ++this.nextRun;
    const started = performance.now();
    try {
      // a new worker starts referenced; the slot lets go of it when the run ends
      await slot.ensureWorker();
      slot.hold(true);
      return await new Promise<SandboxResult>((resolve) => {
        let killer: NodeJS.Timeout | undefined;
        const onAbort = (): void => {
          slot.post({ type: 'cancel', runId, reason: String(signal?.reason) });
          killer ??= setTimeout(() => slot.terminate({ ...failure('SANDBOX_CANCELLED', `the run was cancelled: ${String(signal?.reason)}`), wall_ms: performance.now() - started }), STOP_GRACE_MS);
        };
        slot.active = {
          runId,
          host,
          finish: (result, broken) => {
            clearTimeout(timer);
            clearTimeout(killer);
            signal?.removeEventListener('abort', onAbort);
            if (broken && slot.active === undefined) slot.terminate(result);
            resolve(result);
          },
        };
        // the engine ends a run at wall_ms itself; this is for a guest stuck inside one built-in call
        const timer = setTimeout(() => {
          const message = `the run took longer than wall_ms = ${limits.wall_ms} ms and was stopped from outside (its worker was terminated)`;
          slot.terminate({ ...failure('SANDBOX_TIMEOUT', message, { name: 'wall_ms', value: limits.wall_ms }), wall_ms: performance.now() - started });
        }, limits.wall_ms + STOP_GRACE_MS);
        signal?.addEventListener('abort', onAbort, { once: true });
        slot.post({ type: 'run', runId, code, functions: host.functions, limits, progress: host.progress !== undefined });
        if (signal?.aborted) onAbort();
        // the worker died while starting: nothing will answer
        if (!slot.alive) slot.terminate({ ...failure('SANDBOX_CODE_ERROR', `the sandbox worker could not start: ${slot.lastExit}`), wall_ms: performance.now() - started });
      });
    } finally {
      slot.hold(false);
      this.release(slot);
    }
  }

  /** Terminates every worker (runs in flight end with SANDBOX_CANCELLED). */
  close(): void {
    for (const s of this.slots) s.terminate(failure('SANDBOX_CANCELLED', 'the sandbox was shut down'));
  }
}

const pools = new Map<string, WorkerPool>();

function poolFor(limits: SandboxLimits): WorkerPool {
  const key = `${limits.memory_bytes}/${limits.max_concurrent_runs}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new WorkerPool(limits.max_concurrent_runs, limits.memory_bytes);
    pools.set(key, pool);
  }
  return pool;
}

/**
 * Runs `code` (the body of an async function, JavaScript or TypeScript) with `host`'s tools under
 * `limits` in a sandbox worker; at most `limits.max_concurrent_runs` at once per limits, others
 * wait. Never rejects for anything the guest does: every ending is a {@link SandboxResult}.
 */
export function runSandboxed(code: string, host: SandboxHost, limits: SandboxLimits, signal?: AbortSignal): Promise<SandboxResult> {
  return poolFor(limits).run(code, host, limits, signal);
}

/** Sandbox workers started so far in this process (replacements of terminated ones included). */
export function sandboxWorkersStarted(): number {
  let n = 0;
  for (const p of pools.values()) n += p.started;
  return n;
}

/** Terminates every sandbox worker (gateway shutdown; later runs start new ones). */
export function closeSandboxes(): void {
  for (const p of pools.values()) p.close();
  pools.clear();
}
