/**
 * The gateway as a process (`src/main.ts`, what `npm start` runs): config errors and the native
 * uWS check exit 1 with a clear message; SIGTERM lets calls in flight finish, closes upstreams
 * (no child process left) and exits 0.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { alive, childPids } from './helpers/proc.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { everythingClient, demoClient } from './helpers/gateway.js';

const ROOT = join(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src/main.ts');

function runMain(args: string[], env: Record<string, string> = {}): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr };
}

function tmpConfig(doc: unknown): { path: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-proc-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return { path, dir };
}

describe('start-up refusals', () => {
  it('refuses to start when the uWS native binary did not load', () => {
    // the package's own switch forces its JS fallback, as on an unsupported Node
    const r = runMain([], { UWS_USE_FALLBACK: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/refusing to start: the uWebSockets\.js native binary did not load/);
  });

  it('names the bad field and the file of an invalid config, and exits 1', () => {
    const { path, dir } = tmpConfig({ server: { port: 'eighty' }, mcp_clients: [{ name: '1bad-name', connection_type: 'stdio' }] });
    try {
      const r = runMain(['--config', path]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(path);
      expect(r.stderr).toMatch(/server\.port: expected Port/);
      expect(r.stderr).toMatch(/mcp_clients\.0\.name: expected ClientName/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a file that is not JSON, and a missing file', () => {
    const { path, dir } = tmpConfig('{ not json');
    try {
      const r = runMain([], { TRIBUTARY_CONFIG: path });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/not valid JSON/);
      const missing = runMain(['--config', join(dir, 'nope.json')]);
      expect(missing.status).toBe(1);
      expect(missing.stderr).toMatch(/cannot read file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 with a clear message when the port is taken', async () => {
    const { path, dir } = tmpConfig({ server: { port: 0 }, mcp_clients: [] });
    const blocker = (await import('node:net')).createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const addr = blocker.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    try {
      const r = runMain(['--config', path], { PORT: String(port), DATA_DIR: dir });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('data dir', () => {
  it('exits 1 naming the data dir when another gateway holds it, and leaves its data intact', async () => {
    const { resolveConfig } = await import('../src/config/load.js');
    const { startGateway } = await import('../src/gateway.js');
    const { createLogger } = await import('../src/log/logger.js');
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-locked-'));
    const holder = await startGateway(resolveConfig({ server: { port: 0 }, data_dir: dataDir, mcp_clients: [demoClient()] }, 'test'), {
      log: createLogger('silent'),
    });
    try {
      const before = await holder.store.clients.list();
      expect(before.length).toBe(1);
      const { path, dir } = tmpConfig({ server: { port: 0 }, mcp_clients: [] });
      try {
        const r = runMain(['--config', path], { DATA_DIR: dataDir });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(dataDir);
        expect(r.stderr).toMatch(/in use by another process/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      // the holder still works and its data is untouched
      expect(await holder.store.clients.list()).toEqual(before);
    } finally {
      await holder.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM finishes the call in flight, stops upstream subprocesses and exits 0', async () => {
    const { path, dir } = tmpConfig({ server: { port: 0, shutdown_timeout_ms: 5000 }, data_dir: dir0(), mcp_clients: [everythingClient(), demoClient()] });
    function dir0(): string {
      return mkdtempSync(join(tmpdir(), 'tributary-data-'));
    }
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--config', path], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 30_000);
        child.stderr?.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /"msg":"listening".*?"port":(\d+)/.exec(stderr);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      const upstreamPids = childPids(child.pid ?? -1);
      expect(upstreamPids.length).toBeGreaterThanOrEqual(1);

      const client = new Client({ name: 'shutdown-test', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
      const call = client.callTool({ name: 'demo-sleep', arguments: { ms: 800, steps: 2 } }, CallToolResultSchema);
      await new Promise((r) => setTimeout(r, 150));
      child.kill('SIGTERM');
      const result = await call;
      expect(JSON.stringify(result.content)).toContain('slept 800 ms');
      expect(await exited).toBe(0);
      expect(stderr).toContain('"msg":"stopped"');
      await new Promise((r) => setTimeout(r, 200));
      expect(upstreamPids.filter(alive)).toEqual([]);
      await client.close().catch(() => undefined);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('no child process outlives the gateway', () => {
  /** Pids of processes whose command line contains `marker` (any parent: orphans included). */
  async function pidsWithMarker(marker: string, also = ''): Promise<number[]> {
    const { readFileSync, readdirSync } = await import('node:fs');
    const out: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (cmdline.includes(marker) && cmdline.includes(also)) out.push(Number(entry));
      } catch {
        // the process ended while we looked
      }
    }
    return out;
  }

  it('on SIGTERM ends every upstream subprocess: connected, crash-looping, and one that ignores SIGTERM', async () => {
    const marker = `tributary-marker-${process.pid}-${Date.now()}`;
    const fault = join(ROOT, 'test/fixtures/fault-server.ts');
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-data-'));
    const stdio = (args: string[], envs: string[] = []): Record<string, unknown> => ({
      command: process.execPath,
      args: [...args, marker],
      ...(envs.length > 0 ? { envs } : {}),
    });
    const { path, dir } = tmpConfig({
      server: { port: 0, shutdown_timeout_ms: 2000 },
      data_dir: dataDir,
      mcp_clients: [
        { name: 'healthy', connection_type: 'stdio', stdio_config: stdio(['--import', 'tsx', fault]) },
        // ignores SIGTERM and stdin EOF: only the SIGKILL at the end of the close escalation ends it
        { name: 'stubborn', connection_type: 'stdio', stdio_config: stdio(['--import', 'tsx', fault], ['FAULT_STUBBORN=1']) },
        // never answers and exits after 300 ms, so the supervisor keeps respawning it with a short backoff
        { name: 'looper', connection_type: 'stdio', stdio_config: stdio(['-e', 'setTimeout(() => process.exit(3), 300)']), reconnect: { initial_ms: 20, max_ms: 60 } },
      ],
    });
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--config', path], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 30_000);
        const poll = setInterval(() => {
          if (/"msg":"listening"/.test(stderr)) {
            clearTimeout(timer);
            clearInterval(poll);
            resolve();
          }
        }, 20);
      });
      // watch the looper being respawned at least twice
      const seen = new Set<number>();
      const loopers = new Set<number>();
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && loopers.size < 2) {
        for (const pid of await pidsWithMarker(marker)) seen.add(pid);
        for (const pid of await pidsWithMarker(marker, 'process.exit(3)')) {
          loopers.add(pid);
          seen.add(pid);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(loopers.size).toBeGreaterThanOrEqual(2);
      expect(childPids(child.pid ?? -1).length).toBeGreaterThanOrEqual(2);
      expect(seen.size).toBeGreaterThanOrEqual(4);

      child.kill('SIGTERM');
      // keep watching until it exits, so processes spawned during shutdown are seen too
      let done = false;
      void exited.then(() => {
        done = true;
      });
      while (!done) {
        for (const pid of await pidsWithMarker(marker)) seen.add(pid);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(await exited).toBe(0);
      expect(stderr).toContain('"msg":"stopped"');
      expect(stderr).toMatch(/ignoring SIGTERM/);
      // nothing with our marker is left: no orphan, and no zombie (a zombie keeps its /proc entry)
      expect(await pidsWithMarker(marker)).toEqual([]);
      expect([...seen].filter(alive)).toEqual([]);
    } finally {
      // after a failure: stop the gateway gracefully if it still runs, then end whatever it left
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      for (const pid of await pidsWithMarker(marker)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
