/**
 * A real `nats-server` (Debian package `nats-server`, JetStream on) for cluster tests: started on a
 * free loopback port with its JetStream store in a temp dir, restartable on the same port and store.
 * https://docs.nats.io/running-a-nats-service/introduction/flags
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestNatsServer {
  readonly url: string;
  readonly port: number;
  /** The running server's process id (`undefined` while stopped). */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s); resolves once it exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store dir (after {@link stop}). */
  start(): Promise<void>;
  /** Stops it and removes the store dir. */
  dispose(): Promise<void>;
}

/** The nats-server binary, or `undefined` when it is not installed (`.ci/run` installs it). */
export function natsServerBinary(): string | undefined {
  for (const p of ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server']) {
    if (spawnSync(p, ['--version']).status === 0) return p;
  }
  return undefined;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts nats-server with JetStream on a free 127.0.0.1 port. Throws when the binary is missing. */
export async function startNatsServer(): Promise<TestNatsServer> {
  const bin = natsServerBinary();
  if (bin === undefined) throw new Error('nats-server is not installed: apt-get install -y nats-server (.ci/run does)');
  const storeDir = mkdtempSync(join(tmpdir(), 'tributary-nats-'));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const p = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = p;
      let out = '';
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`nats-server did not become ready in 10 s:\n${out}`));
      }, 10_000);
      p.stderr?.on('data', (chunk: Buffer) => {
        if (out.length < 64 * 1024) out += chunk.toString('utf8');
        if (out.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${String(code)}:\n${out}`));
      });
    });

  const stop = (): Promise<void> => {
    const p = child;
    child = undefined;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => p.kill('SIGKILL'), 5_000);
      p.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      p.kill('SIGTERM');
    });
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid;
    },
    stop,
    start,
    dispose: async () => {
      await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
