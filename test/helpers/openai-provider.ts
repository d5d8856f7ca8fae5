/** Starts the scripted OpenAI-compatible provider process (test/fixtures/openai-provider.ts). */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const FIXTURE = join(import.meta.dirname, '../fixtures/openai-provider.ts');

export interface ScriptStep {
  readonly error?: number;
  readonly message?: string;
  readonly headers?: Record<string, string>;
  readonly text?: string;
  readonly chunks?: string[];
  readonly call?: { name: string; arguments: string; call_id?: string };
  readonly calls?: { name: string; arguments: string; call_id?: string }[];
  readonly hang?: boolean;
}

export interface SeenRequest {
  readonly path: string;
  readonly authorization: string | undefined;
  /** The W3C `traceparent` header the provider received, if any. */
  readonly traceparent?: string | undefined;
  readonly body: Record<string, unknown>;
}

export interface TestProvider {
  /** `http://127.0.0.1:PORT/v1`: the base URL to configure. */
  readonly baseUrl: string;
  script(...steps: ScriptStep[]): Promise<void>;
  requests(): Promise<SeenRequest[]>;
  reset(): Promise<void>;
  stop(): void;
}

export async function startProvider(): Promise<TestProvider> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`provider exited with ${code}`)));
  });
  const root = `http://127.0.0.1:${port}`;
  const post = async (path: string, body: unknown): Promise<unknown> => (await fetch(root + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
  return {
    baseUrl: `${root}/v1`,
    script: async (...steps) => {
      await post('/__script', { steps });
    },
    requests: async () => (await (await fetch(`${root}/__requests`)).json()) as SeenRequest[],
    reset: async () => {
      await post('/__reset', {});
    },
    stop: () => {
      child.kill();
    },
  };
}
