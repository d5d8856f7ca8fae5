/**
 * A sandbox worker thread (Node `worker_threads`): owns one memory-capped QuickJS module and runs
 * one `execute_code` run at a time on it. Tool calls and progress go to the gateway's thread as
 * messages; the answers come back as messages. The gateway's thread terminates the worker when a
 * run does not end in time, so no guest code can hold the gateway's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createEngineModule, runInEngine } from './sandbox-engine.js';
import type { SandboxHost } from './sandbox-types.js';
import type { FromWorker, ToWorker, WorkerInit } from './sandbox-protocol.js';

const port = parentPort;
if (!port) throw new Error('sandbox-worker.ts must run as a worker thread');
const init = workerData as WorkerInit;
const modulePromise = createEngineModule(init.memoryBytes);

interface Current {
  readonly runId: number;
  readonly abort: AbortController;
  readonly pending: Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>;
}
let current: Current | undefined;

function post(m: FromWorker): void {
  port?.postMessage(m);
}

async function run(m: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  const module = await modulePromise;
  const state: Current = { runId: m.runId, abort: new AbortController(), pending: new Map() };
  current = state;
  let nextCall = 0;
  const host: SandboxHost = {
    functions: m.functions,
    callTool: (index, args) =>
      new Promise<string>((resolve, reject) => {
        const callId = ++nextCall;
        state.pending.set(callId, { resolve, reject });
        post({ type: 'call', runId: m.runId, callId, index, args });
      }),
    ...(m.progress ? { progress: (progress, total, message) => post({ type: 'progress', runId: m.runId, progress, total, message }) } : {}),
  };
  const { result, broken } = await runInEngine(module, m.code, host, m.limits, state.abort.signal);
  current = undefined;
  post({ type: 'done', runId: m.runId, result, broken });
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'run':
      void run(m);
      return;
    case 'answer': {
      if (current?.runId !== m.runId) return;
      const p = current.pending.get(m.callId);
      current.pending.delete(m.callId);
      if (m.ok) p?.resolve(m.text);
      else p?.reject(new Error(m.text));
      return;
    }
    case 'cancel':
      if (current?.runId === m.runId) current.abort.abort(m.reason);
      return;
  }
});

void modulePromise.then(() => post({ type: 'ready' }));
