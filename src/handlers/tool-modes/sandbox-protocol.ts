/** Messages between the gateway's thread (`sandbox.ts`) and a sandbox worker (`sandbox-worker.ts`). */
import type { SandboxLimits } from '../../config/schema.js';
import type { SandboxResult } from './sandbox-types.js';

/** What the worker receives at start (`workerData`). */
export interface WorkerInit {
  /** Heap cap of the worker's engine module, bytes. */
  readonly memoryBytes: number;
}

export type ToWorker =
  | { readonly type: 'run'; readonly runId: number; readonly code: string; readonly functions: readonly string[]; readonly limits: SandboxLimits; readonly progress: boolean }
  | { readonly type: 'answer'; readonly runId: number; readonly callId: number; readonly ok: boolean; readonly text: string }
  | { readonly type: 'cancel'; readonly runId: number; readonly reason: string };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'call'; readonly runId: number; readonly callId: number; readonly index: number; readonly args: string }
  | { readonly type: 'progress'; readonly runId: number; readonly progress: number; readonly total: number | undefined; readonly message: string | undefined }
  | { readonly type: 'done'; readonly runId: number; readonly result: SandboxResult; readonly broken: boolean };
