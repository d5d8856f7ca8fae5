/**
 * The gateway as a real process (`src/main.ts` under tsx) for tests that kill it, plus a `fetch`
 * that opens a new TCP connection for every request and spreads requests over several gateways
 * like a load balancer without sticky sessions (a gateway that refuses the connection is skipped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src/main.ts');

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Everything the process wrote to stderr so far (its JSON log). */
  stderr(): string;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after `graceMs`), wait for the exit, remove the temp dirs. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node --import tsx src/main.ts --config <tmp>` with `config` (its `data_dir` defaults to a
 * fresh temp dir, `server.port` to 0) and resolves once it logged `listening` with its port.
 * @throws when it exits or does not listen within `timeoutMs`.
 */
export async function startGatewayProcess(config: Record<string, unknown>, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-gwproc-'));
  const path = join(dir, 'config.json');
  const server = { port: 0, ...((config['server'] as Record<string, unknown> | undefined) ?? {}) };
  writeFileSync(path, JSON.stringify({ data_dir: join(dir, 'data'), ...config, server }));
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--config', path], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start within ${timeoutMs} ms: ${err}`)), timeoutMs);
    const onData = (): void => {
      const m = /"msg":"listening".*?"port":(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${String(code)} before listening: ${err}`));
    });
  });
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    stderr: () => err,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      cleanup();
    },
    async stop(graceMs = 5_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      }
      cleanup();
    },
  };
}

/** One HTTP request on a new connection (`agent: false`), as a WHATWG `Response` (bodies stream). */
export function freshConnectionFetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const req = request(url, { method: init.method ?? 'GET', headers, agent: false }, (res) => {
      const out = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
      const status = res.statusCode ?? 0;
      const body = status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
      resolve(new Response(body, { status, headers: out }));
    });
    req.on('error', reject);
    const signal = init.signal;
    if (signal) {
      if (signal.aborted) req.destroy(new Error('aborted'));
      else signal.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
    }
    if (typeof init.body === 'string') req.end(init.body);
    else req.end();
  });
}

/**
 * A `fetch` that sends each request to the next of `origins()` in turn (round robin) on a new
 * connection, skipping origins that refuse the connection — a load balancer without sticky
 * sessions. `served` records, per request, the origin that answered and the JSON-RPC method (or
 * the HTTP method for GET/DELETE).
 */
export function roundRobinFetch(origins: () => readonly string[], served: { origin: string; what: string }[] = []): typeof fetch {
  let next = 0;
  const f = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const list = origins();
    let lastError: unknown;
    for (let tries = 0; tries < list.length; tries++) {
      const origin = list[next++ % list.length] as string;
      const target = new URL(url.pathname + url.search, origin);
      try {
        const res = await freshConnectionFetch(target, init);
        let what = init.method ?? 'GET';
        if (typeof init.body === 'string') {
          try {
            const m = JSON.parse(init.body) as { method?: string; id?: unknown };
            what = m.method ?? `response:${String(m.id)}`;
          } catch {
            // not JSON: keep the HTTP method
          }
        }
        served.push({ origin, what });
        return res;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw err;
        lastError = err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error('no gateway reachable');
  };
  return f as typeof fetch;
}
