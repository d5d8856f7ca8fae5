/**
 * The code-mode sandbox: runs an agent's JavaScript in QuickJS compiled to WebAssembly
 * (`quickjs-emscripten`, https://github.com/justjake/quickjs-emscripten), never in Node's `vm`.
 * The guest has the ECMAScript built-ins and nothing of the host: no `require`, `import`,
 * `process`, `fetch`, timers, file system or network. What it gets is a frozen `tools` object
 * (one async function per tool the caller may use), `console` (captured) and `progress()`.
 *
 * Host and guest exchange strings only: a tool function sends `JSON.stringify(args)` (with the
 * `JSON` captured before the guest's code ran) and receives JSON text, so nothing the guest does to
 * its own prototypes or globals reaches the host or a later run. Every run gets a fresh runtime
 * and context, disposed at the end.
 *
 * Limits per run ({@link SandboxLimits}); each exceeded one ends the run with its own code:
 * `SANDBOX_TIMEOUT` (wall time, waiting included), `SANDBOX_CPU_LIMIT` (time executing in the
 * engine, checked by QuickJS' interrupt handler, which the interpreter polls every few thousand
 * instructions), `SANDBOX_MEMORY_LIMIT` (engine heap), `SANDBOX_STACK_LIMIT` (recursion depth),
 * `SANDBOX_TOOL_CALL_LIMIT` (number of tool calls), `SANDBOX_OUTPUT_LIMIT` (console output plus
 * the returned value's JSON). A guest exception is `SANDBOX_CODE_ERROR`.
 *
 * This module is the engine side; it runs inside a worker thread (`sandbox-worker.ts`), and
 * `sandbox.ts` drives the workers from the gateway's thread. The CPU budget is enforced when
 * QuickJS polls its interrupt handler (every ~10k interpreter steps), so a loop of heavy built-in
 * calls (megabyte string copies, `fill` on big arrays) can overshoot `cpu_ms` before the next poll:
 * the worker's owner stops such a run from outside at `wall_ms`.
 */
import { RELEASE_SYNC, newQuickJSWASMModuleFromVariant, newVariant, type QuickJSContext, type QuickJSDeferredPromise, type QuickJSHandle, type QuickJSRuntime, type QuickJSWASMModule } from 'quickjs-emscripten';
import { transform } from 'sucrase';
import type { SandboxLimits } from '../../config/schema.js';
import type { ConsoleLevel, ConsoleLine, SandboxError, SandboxErrorCode, SandboxHost, SandboxResult } from './sandbox-types.js';

/** WebAssembly page size, bytes. */
const WASM_PAGE = 65536;

/**
 * Linear memory an engine module needs besides the guest's heap: the C stack, static data and
 * QuickJS' own start-up allocations, bytes (the module starts with 16 MiB).
 */
const MODULE_BASE_BYTES = 16 * 1024 * 1024;

type WasmMemoryOption = NonNullable<NonNullable<Parameters<typeof newVariant>[1]>['wasmMemory']>;

/** `WebAssembly.Memory` (Node's global; the project's TypeScript lib does not declare it). */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => WasmMemoryOption } }).WebAssembly.Memory;

/**
 * A QuickJS module whose WebAssembly memory can grow to `memoryBytes` plus 16 MiB and no further:
 * that cap is what bounds a run's heap. (QuickJS' own `setMemoryLimit` is set too, but this build
 * cannot see allocation sizes — `malloc_usable_size` is unavailable under Emscripten — so it
 * counts little.) Takes about 50–100 ms (compiling and instantiating the module).
 */
export function createEngineModule(memoryBytes: number): Promise<QuickJSWASMModule> {
  const maximum = Math.ceil((memoryBytes + MODULE_BASE_BYTES) / WASM_PAGE);
  const memory = new WasmMemory({ initial: MODULE_BASE_BYTES / WASM_PAGE, maximum });
  return newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmMemory: memory }));
}

/**
 * The trusted prelude: evaluated before the guest's code, it captures what the bridge needs and
 * removes the raw host functions from the global object. Evaluates to the runner function.
 */
const PRELUDE = String.raw`(() => {
  'use strict';
  const g = globalThis;
  const call = g.__tributary_call, log = g.__tributary_log, report = g.__tributary_progress, done = g.__tributary_done;
  const names = g.__tributary_names;
  delete g.__tributary_call; delete g.__tributary_log; delete g.__tributary_progress; delete g.__tributary_done; delete g.__tributary_names;
  const stringify = JSON.stringify, parse = JSON.parse, freeze = Object.freeze, apply = Reflect.apply;
  const then = Promise.prototype.then, toStr = String, isArray = Array.isArray;
  const text = (v) => {
    if (typeof v === 'string') return v;
    try { const s = stringify(v); return s === undefined ? toStr(v) : s; } catch { try { return toStr(v); } catch { return '[unprintable]'; } }
  };
  const line = (level) => freeze(function (...args) { let out = ''; for (let i = 0; i < args.length; i++) out += (i ? ' ' : '') + text(args[i]); log(level, out); });
  g.console = freeze({ log: line('log'), info: line('info'), warn: line('warn'), error: line('error'), debug: line('debug') });
  const tools = {};
  for (let i = 0; i < names.length; i++) {
    const index = i;
    tools[names[i]] = freeze(async function (args) {
      if (args === undefined) args = {};
      if (typeof args !== 'object' || args === null || isArray(args)) throw new TypeError(names[index] + ': the argument must be an object');
      const json = stringify(args);
      return parse(await call(index, json));
    });
  }
  g.tools = freeze(tools);
  g.progress = freeze(function (progress, total, message) {
    report(+progress, total === undefined ? undefined : +total, message === undefined ? undefined : toStr(message));
  });
  const describe = (e) => {
    try {
      if (e instanceof Error) return toStr(e.name) + ': ' + toStr(e.message) + (typeof e.stack === 'string' && e.stack ? '\n' + e.stack : '');
      return 'Uncaught ' + text(e);
    } catch { return 'Uncaught exception'; }
  };
  return (main) => {
    let p;
    try { p = main(); } catch (e) { done(false, describe(e)); return; }
    apply(then, p, [
      (v) => { let s; try { s = stringify(v); } catch (e) { done(false, 'TypeError: the returned value is not JSON: ' + describe(e)); return; } done(true, s === undefined ? 'null' : s); },
      (e) => done(false, describe(e)),
    ]);
  };
})()`;

type Stop = SandboxError;

function limitStop(code: SandboxErrorCode, name: keyof SandboxLimits, value: number, message: string): Stop {
  return { code, message, limit: { name, value } };
}

/**
 * `code` (the body of an async function, JavaScript or TypeScript) as a JavaScript async function
 * expression: TypeScript syntax is removed with Sucrase (https://github.com/alangpierce/sucrase),
 * which only strips types and leaves modern syntax as it is.
 * @throws SyntaxError (Sucrase's message, with line and column) when the code does not parse.
 */
export function prepareCode(code: string): string {
  return transform(`(async function () {\n${code}\n})`, { transforms: ['typescript'], disableESTransforms: true }).code;
}

/**
 * Runs `code` — the body of an async function, JavaScript or TypeScript: `await` works and
 * `return` gives the result — with `host`'s tools under `limits`, on `module` (one run at a time
 * per module). Never rejects for anything the guest does: every ending is a {@link SandboxResult}.
 * `broken` says the module must not serve another run (the host's own stack overflowed inside it,
 * or freeing the run failed).
 */
export async function runInEngine(
  module: QuickJSWASMModule,
  code: string,
  host: SandboxHost,
  limits: SandboxLimits,
  signal?: AbortSignal,
): Promise<{ result: SandboxResult; broken: boolean }> {
  const run = new Run(module, host, limits);
  const onAbort = (): void => run.cancel(String(signal?.reason));
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await run.start(code);
    return { result, broken: run.broken };
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** A host-side exception from inside the engine (not a guest exception): the run cannot continue. */
class HostFault extends Error {
  override readonly name = 'HostFault';
}


class Run {
  private readonly runtime: QuickJSRuntime;
  private readonly ctx: QuickJSContext;
  private readonly started = performance.now();
  private readonly logs: ConsoleLine[] = [];
  private readonly deferreds = new Set<QuickJSDeferredPromise>();
  private readonly waiting: (() => void)[] = [];
  private readonly handles: QuickJSHandle[] = [];
  private cpuUsed = 0;
  private sliceStart = 0;
  private outputBytes = 0;
  private toolCalls = 0;
  private inFlight = 0;
  private stop: Stop | undefined;
  private settled: { ok: true; json: string } | { ok: false; text: string } | undefined;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private resolve: (r: SandboxResult) => void = () => undefined;
  /** The engine's state is not trustworthy: never free it, discard the module. */
  private poisoned = false;
  /** The module must not serve another run (poisoned, or freeing the run failed). */
  broken = false;
  private inSlice = false;

  constructor(
    module: QuickJSWASMModule,
    private readonly host: SandboxHost,
    private readonly limits: SandboxLimits,
  ) {
    this.runtime = module.newRuntime();
    this.runtime.setMemoryLimit(limits.memory_bytes);
    this.runtime.setMaxStackSize(limits.stack_bytes);
    this.runtime.setInterruptHandler(() => this.shouldInterrupt());
    this.ctx = this.runtime.newContext();
  }

  start(code: string): Promise<SandboxResult> {
    return new Promise<SandboxResult>((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => {
        this.stop ??= limitStop('SANDBOX_TIMEOUT', 'wall_ms', this.limits.wall_ms, `the run took longer than wall_ms = ${this.limits.wall_ms} ms`);
        this.end();
      }, this.limits.wall_ms);
      try {
        this.install();
        const runner = this.evaluate(PRELUDE, 'prelude.js');
        let source: string | undefined;
        try {
          source = prepareCode(code);
        } catch (err) {
          this.settled = { ok: false, text: `SyntaxError: ${err instanceof Error ? err.message : String(err)}` };
        }
        const main = runner === undefined || source === undefined ? undefined : this.evaluate(source, 'snippet.js');
        if (runner !== undefined && main !== undefined) {
          const r = this.slice(() => this.ctx.callFunction(runner, this.ctx.undefined, main));
          if (r.error) this.failWith(r.error);
          else r.value.dispose();
        }
      } catch (err) {
        // a host fault (see slice), or a failure while setting up (the engine's heap full before the guest ran)
        this.stop ??= { code: 'SANDBOX_CODE_ERROR', message: `the sandbox could not start: ${err instanceof Error ? err.message : String(err)}` };
      }
      this.pump();
    });
  }

  /** Ends the run with SANDBOX_CANCELLED: at once when idle, at the next interrupt poll when running. */
  cancel(reason: string): void {
    this.stop ??= { code: 'SANDBOX_CANCELLED', message: `the run was cancelled: ${reason}` };
    if (!this.inSlice && this.timer !== undefined) this.end();
  }

  /** True when the engine must stop: a limit was hit, or CPU / wall time ran out. */
  private shouldInterrupt(): boolean {
    if (this.stop) return true;
    const now = performance.now();
    if (this.cpuUsed + (now - this.sliceStart) > this.limits.cpu_ms) {
      this.stop = limitStop('SANDBOX_CPU_LIMIT', 'cpu_ms', this.limits.cpu_ms, `the code ran for more than cpu_ms = ${this.limits.cpu_ms} ms of engine time`);
      return true;
    }
    if (now - this.started > this.limits.wall_ms) {
      this.stop = limitStop('SANDBOX_TIMEOUT', 'wall_ms', this.limits.wall_ms, `the run took longer than wall_ms = ${this.limits.wall_ms} ms`);
      return true;
    }
    return false;
  }

  /** Runs `fn` inside the engine, counting its time against `cpu_ms`. */
  private slice<T>(fn: () => T): T {
    this.sliceStart = performance.now();
    this.inSlice = true;
    try {
      return fn();
    } catch (err) {
      // Node's own stack overflowed inside the WebAssembly engine (deeply nested source, or a
      // recursion the engine's stack_bytes accounting did not see): the engine is left mid-call.
      this.poisoned = true;
      this.stop ??=
        err instanceof RangeError
          ? limitStop('SANDBOX_STACK_LIMIT', 'stack_bytes', this.limits.stack_bytes, `the code nested deeper than the sandbox's stack allows (${err.message})`)
          : { code: 'SANDBOX_CODE_ERROR', message: `the sandbox failed: ${err instanceof Error ? err.message : String(err)}` };
      throw new HostFault(this.stop.message);
    } finally {
      this.inSlice = false;
      this.cpuUsed += performance.now() - this.sliceStart;
    }
  }

  private evaluate(source: string, filename: string): QuickJSHandle | undefined {
    const r = this.slice(() => this.ctx.evalCode(source, filename));
    if (r.error) {
      this.failWith(r.error);
      return undefined;
    }
    this.handles.push(r.value);
    return r.value;
  }

  /** Defines the raw host functions the prelude captures and deletes. */
  private install(): void {
    const ctx = this.ctx;
    const define = (name: string, value: QuickJSHandle): void => {
      ctx.setProp(ctx.global, name, value);
      value.dispose();
    };
    define(
      '__tributary_call',
      ctx.newFunction('call', (indexHandle, argsHandle) => {
        const index = ctx.typeof(indexHandle) === 'number' ? ctx.getNumber(indexHandle) : -1;
        if (!Number.isInteger(index) || index < 0 || index >= this.host.functions.length) throw new TypeError('no such tool');
        if (ctx.typeof(argsHandle) !== 'string') throw new TypeError('tool arguments must be JSON text');
        // once stopped, answer nothing: the interrupt handler ends the run at its next poll
        if (this.stop) return undefined;
        return this.callTool(index, ctx.getString(argsHandle));
      }),
    );
    define(
      '__tributary_log',
      ctx.newFunction('log', (levelHandle, textHandle) => {
        if (this.stop) return;
        const level = ctx.getString(levelHandle) as ConsoleLevel;
        const text = ctx.typeof(textHandle) === 'string' ? ctx.getString(textHandle) : '';
        // the first refusal is thrown (ending a loop of console.log at once); later ones are silent
        if (!this.countOutput(text.length)) throw new RangeError('console output limit reached');
        this.logs.push({ level, text });
      }),
    );
    define(
      '__tributary_progress',
      ctx.newFunction('progress', (p, total, message) => {
        const progress = ctx.getNumber(p);
        if (!Number.isFinite(progress)) return;
        const t = ctx.typeof(total) === 'number' ? ctx.getNumber(total) : undefined;
        const m = ctx.typeof(message) === 'string' ? ctx.getString(message).slice(0, 1000) : undefined;
        this.host.progress?.(progress, t !== undefined && Number.isFinite(t) ? t : undefined, m);
      }),
    );
    define(
      '__tributary_done',
      ctx.newFunction('done', (okHandle, payload) => {
        if (this.settled) return;
        const text = ctx.typeof(payload) === 'string' ? ctx.getString(payload) : '';
        if (ctx.dump(okHandle) === true) {
          if (this.countOutput(text.length)) this.settled = { ok: true, json: text };
        } else {
          this.settled = { ok: false, text };
        }
      }),
    );
    const names = ctx.newArray();
    this.host.functions.forEach((name, i) => {
      const s = ctx.newString(name);
      ctx.setProp(names, i, s);
      s.dispose();
    });
    define('__tributary_names', names);
  }

  /** Counts output bytes (UTF-16 units, an upper bound of UTF-8 for ASCII); false and a stop when over. */
  private countOutput(chars: number): boolean {
    this.outputBytes += chars;
    if (this.outputBytes > this.limits.max_output_bytes) {
      this.stop ??= limitStop('SANDBOX_OUTPUT_LIMIT', 'max_output_bytes', this.limits.max_output_bytes, `console output and result exceed max_output_bytes = ${this.limits.max_output_bytes} bytes`);
      return false;
    }
    return true;
  }

  /** One tool call from the guest: a promise handle, settled when the host's call ends. */
  private callTool(index: number, argsJson: string): QuickJSHandle {
    this.toolCalls++;
    if (this.toolCalls > this.limits.max_tool_calls) {
      this.stop ??= limitStop('SANDBOX_TOOL_CALL_LIMIT', 'max_tool_calls', this.limits.max_tool_calls, `the code made more than max_tool_calls = ${this.limits.max_tool_calls} tool calls`);
      throw new RangeError('tool call limit reached');
    }
    const deferred = this.ctx.newPromise();
    this.deferreds.add(deferred);
    const go = (): void => {
      if (this.ended) return;
      this.inFlight++;
      this.host.callTool(index, argsJson).then(
        (json) => this.settle(deferred, true, json),
        (err: unknown) => this.settle(deferred, false, err instanceof Error ? err.message : String(err)),
      );
    };
    if (this.inFlight < this.limits.max_concurrent_tool_calls) go();
    else this.waiting.push(go);
    return deferred.handle;
  }

  private settle(deferred: QuickJSDeferredPromise, ok: boolean, text: string): void {
    this.inFlight--;
    if (this.ended) return;
    const next = this.waiting.shift();
    if (next) next();
    try {
      const value = ok ? this.ctx.newString(text) : this.ctx.newError({ name: 'ToolError', message: text });
      if (ok) deferred.resolve(value);
      else deferred.reject(value);
      value.dispose();
    } catch (err) {
      // the engine could not take the answer (its heap is full)
      this.stop ??= limitStop('SANDBOX_MEMORY_LIMIT', 'memory_bytes', this.limits.memory_bytes, `a tool's answer did not fit in memory_bytes = ${this.limits.memory_bytes} bytes (${err instanceof Error ? err.message : String(err)})`);
    }
    this.deferreds.delete(deferred);
    deferred.dispose();
    this.pump();
  }

  /** Records an exception that escaped to the host (uncatchable interrupts land here too). */
  private failWith(errorHandle: QuickJSHandle): void {
    let text: string;
    try {
      const e = this.ctx.dump(errorHandle) as { name?: unknown; message?: unknown } | string;
      text = typeof e === 'object' && e !== null ? `${String(e.name)}: ${String(e.message)}` : String(e);
    } catch {
      text = 'InternalError: unknown';
    }
    errorHandle.dispose();
    this.settled ??= { ok: false, text };
  }

  /** Runs pending jobs, then ends the run if it is over. */
  private pump(): void {
    if (this.ended) return;
    if (!this.stop && !this.settled && this.runtime.hasPendingJob()) {
      try {
        const r = this.slice(() => this.runtime.executePendingJobs());
        if (r.error) this.failWith(r.error);
      } catch (err) {
        if (!(err instanceof HostFault)) throw err;
      }
    }
    if (this.stop || this.settled) {
      this.end();
      return;
    }
    if (this.inFlight === 0 && this.waiting.length === 0 && !this.runtime.hasPendingJob()) {
      this.settled = { ok: false, text: 'Error: the code awaits a promise that can never settle (no tool call or job is pending)' };
      this.end();
    }
  }

  private classify(): SandboxResult['error'] {
    if (this.stop) return this.stop;
    const s = this.settled;
    if (!s || s.ok) return undefined;
    const l = this.limits;
    if (/\bout of memory\b/i.test(s.text)) {
      return limitStop('SANDBOX_MEMORY_LIMIT', 'memory_bytes', l.memory_bytes, `the code needed more than memory_bytes = ${l.memory_bytes} bytes (${firstLine(s.text)})`);
    }
    if (/\bstack overflow\b|Maximum call stack/i.test(s.text)) {
      return limitStop('SANDBOX_STACK_LIMIT', 'stack_bytes', l.stack_bytes, `the code recursed deeper than stack_bytes = ${l.stack_bytes} bytes allow (${firstLine(s.text)})`);
    }
    return { code: 'SANDBOX_CODE_ERROR', message: s.text.length > 4000 ? `${s.text.slice(0, 4000)}…` : s.text };
  }

  /** Ends the run: builds the result, then frees every handle, the context and the runtime. */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    const error = this.classify();
    let value: unknown;
    if (!error && this.settled?.ok) {
      try {
        value = JSON.parse(this.settled.json);
      } catch {
        value = null;
      }
    }
    const result: SandboxResult = {
      ok: error === undefined,
      ...(error ? { error } : { value }),
      logs: this.logs,
      tool_calls: Math.min(this.toolCalls, this.limits.max_tool_calls),
      cpu_ms: this.cpuUsed,
      wall_ms: performance.now() - this.started,
    };
    this.waiting.length = 0;
    if (this.poisoned) {
      this.broken = true;
    } else {
      try {
        for (const d of this.deferreds) d.dispose();
        for (const h of this.handles) if (h.alive) h.dispose();
        this.ctx.dispose();
        this.runtime.dispose();
      } catch {
        this.broken = true;
      }
    }
    this.deferreds.clear();
    this.resolve(result);
  }
}

function firstLine(text: string): string {
  const i = text.indexOf('\n');
  return i < 0 ? text : text.slice(0, i);
}
