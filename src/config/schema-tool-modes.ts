/** Tool mode codecs (`tool_modes`: full, search, code) and the code-mode sandbox limits. */
import * as t from 'io-ts';
import { PositiveInt } from './schema-primitives.js';

export const ToolModeName = t.keyof({ full: null, search: null, code: null });

/** Limits of one `execute_code` run (code mode); each exceeded limit ends the run with its own error code. */
export const SandboxConfig = t.exact(
  t.partial({
    /** Wall-clock time of a run, waiting for tools included, ms (default 30000). */
    wall_ms: PositiveInt,
    /** Time spent executing JavaScript in the engine (not waiting for tools), ms (default 2000). */
    cpu_ms: PositiveInt,
    /** Heap of the engine, bytes (default 64 MiB). */
    memory_bytes: PositiveInt,
    /** Stack of the engine, bytes (default 64 KiB, about 330 levels of plain recursion); above about 100 KiB, Node's own stack may overflow first, which also ends the run with SANDBOX_STACK_LIMIT but costs a fresh engine module. */
    stack_bytes: PositiveInt,
    /** Tool calls one run may make (default 50). */
    max_tool_calls: PositiveInt,
    /** Tool calls of one run in flight at once; more wait (default 8). */
    max_concurrent_tool_calls: PositiveInt,
    /** Console output plus the JSON of the returned value, bytes (default 256 KiB). */
    max_output_bytes: PositiveInt,
    /** Length of the submitted code, bytes (default 64 KiB). */
    max_code_bytes: PositiveInt,
    /** Runs at once in this gateway; more are refused with OVERLOADED (default 4). */
    max_concurrent_runs: PositiveInt,
  }),
);

/**
 * Tool modes (how callers see the catalogue): the default, per downstream client name (`clientInfo.name`
 * of `initialize`), search settings and code-mode sandbox limits.
 */
export const ToolModesConfig = t.exact(
  t.partial({
    /** Mode of callers whose key has no `tool_mode` (default `full`). */
    default: ToolModeName,
    /** Mode per downstream client name (`initialize` `clientInfo.name`); overrides the key's mode. */
    clients: t.record(t.string, ToolModeName),
    /** Most results of one `search_tools` call (default 10, at most 50 may be asked for). */
    max_search_results: PositiveInt,
    sandbox: SandboxConfig,
  }),
);

/** Limits of one code-mode run, every default filled in (see {@link SandboxConfig}). */
export interface SandboxLimits {
  readonly wall_ms: number;
  readonly cpu_ms: number;
  readonly memory_bytes: number;
  readonly stack_bytes: number;
  readonly max_tool_calls: number;
  readonly max_concurrent_tool_calls: number;
  readonly max_output_bytes: number;
  readonly max_code_bytes: number;
  readonly max_concurrent_runs: number;
}

/** The `tool_modes` section with defaults filled in. */
export interface ResolvedToolModes {
  readonly default: 'full' | 'search' | 'code';
  readonly clients: Readonly<Record<string, 'full' | 'search' | 'code'>>;
  readonly max_search_results: number;
  readonly sandbox: SandboxLimits;
}

/** Default sandbox limits. */
export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = {
  wall_ms: 30_000,
  cpu_ms: 2_000,
  memory_bytes: 64 * 1024 * 1024,
  stack_bytes: 64 * 1024,
  max_tool_calls: 50,
  max_concurrent_tool_calls: 8,
  max_output_bytes: 256 * 1024,
  max_code_bytes: 64 * 1024,
  max_concurrent_runs: 4,
};
