/**
 * What a code-mode sandbox run produces and what the host lends it: shared by the engine
 * (`sandbox-engine.ts`, inside a worker thread), the worker protocol and the gateway-side driver
 * (`sandbox.ts`).
 */
import type { SandboxLimits } from '../../config/schema.js';

/** Why a run ended without a value. */
export type SandboxErrorCode =
  | 'SANDBOX_TIMEOUT'
  | 'SANDBOX_CPU_LIMIT'
  | 'SANDBOX_MEMORY_LIMIT'
  | 'SANDBOX_STACK_LIMIT'
  | 'SANDBOX_TOOL_CALL_LIMIT'
  | 'SANDBOX_OUTPUT_LIMIT'
  | 'SANDBOX_CANCELLED'
  | 'SANDBOX_CODE_ERROR';

export interface SandboxError {
  readonly code: SandboxErrorCode;
  readonly message: string;
  /** The limit that ended the run (`cpu_ms`, `memory_bytes`, ...) and its value; absent for code errors. */
  readonly limit?: { readonly name: keyof SandboxLimits; readonly value: number };
}

export type ConsoleLevel = 'log' | 'info' | 'warn' | 'error' | 'debug';

/** One captured `console.*` call: its arguments as text, joined by spaces. */
export interface ConsoleLine {
  readonly level: ConsoleLevel;
  readonly text: string;
}

/** What a run produced. Times in ms. */
export interface SandboxResult {
  readonly ok: boolean;
  /** The returned value (parsed from its JSON; `null` for `undefined`), when `ok`. */
  readonly value?: unknown;
  readonly error?: SandboxError;
  readonly logs: readonly ConsoleLine[];
  readonly tool_calls: number;
  readonly cpu_ms: number;
  readonly wall_ms: number;
}

/** What the host lends a run. */
export interface SandboxHost {
  /** The property names of `tools`, in the order {@link callTool} numbers them. Valid identifiers. */
  readonly functions: readonly string[];
  /**
   * Runs tool number `index` with `argsJson` (the JSON text of the guest's argument, an object).
   * Resolves with the JSON text the guest's promise resolves with; rejects with an Error whose
   * message the guest's promise rejects with.
   */
  callTool(index: number, argsJson: string): Promise<string>;
  /** The guest called `progress(progress, total?, message?)`. */
  progress?(progress: number, total: number | undefined, message: string | undefined): void;
}
