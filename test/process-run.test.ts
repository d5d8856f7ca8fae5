/**
 * Running the gateway as a person or a supervisor does, with real processes: an exclusive port
 * (a second gateway exits 1 naming the port and its holder), Ctrl-C to the whole process group
 * with a stdio call in flight (the call completes, nothing is respawned), SIGTERM to `npm start`'s
 * process (nothing is left running), and `npm start` building only when the sources changed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { alive } from './helpers/proc.js';
import { everythingClient } from './helpers/gateway.js';

const ROOT = join(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src/main.ts');
const FAULT = join(ROOT, 'test/fixtures/fault-server.ts');

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function tmpDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeConfig(doc: unknown): string {
  const path = join(tmpDir('tributary-run-'), 'config.json');
  writeFileSync(path, JSON.stringify(doc));
  return path;
}

/** Every descendant of `pid` (Linux /proc), children before grandchildren. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(e)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of parents.get(queue.shift() ?? -1) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** A started gateway process: its stderr so far, and the port from its "listening" line. */
interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

/**
 * Spawns `command args` as the leader of a new process group (as a shell does for a foreground
 * job) and resolves once the gateway logged "listening". Killed (the whole group) after the test.
 */
async function startProcess(command: string, args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<Running> {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  cleanups.push(() => {
    for (const pid of [child.pid ?? 0, ...descendants(child.pid ?? 0)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  let stderr = '';
  child.stdout?.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 90_000);
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /"msg":"listening".*?"port":(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => reject(new Error(`gateway exited with ${code} before listening: ${stderr}`)));
  });
  return { child, port, stderr: () => stderr, exited };
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('exclusive port', () => {
  it('a second gateway on a port in use exits 1 naming the port and the process holding it; the first keeps every request', async () => {
    const first = await startProcess(process.execPath, ['--import', 'tsx', MAIN, '--config', writeConfig({ server: { port: 0 }, mcp_clients: [] })], { DATA_DIR: tmpDir('tributary-a-') });
    const second = spawnSync(process.execPath, ['--import', 'tsx', MAIN, '--config', writeConfig({ mcp_clients: [] })], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(first.port), DATA_DIR: tmpDir('tributary-b-') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${first.port}`);
    expect(second.stderr).toContain(`the port is in use by pid ${first.child.pid}`);
    expect(second.stderr).toContain('main.ts');
    // every request reaches the first gateway (no kernel load-balancing between two listeners)
    const statuses = await Promise.all(Array.from({ length: 20 }, async () => (await fetch(`http://127.0.0.1:${first.port}/health`)).status));
    expect(new Set(statuses)).toEqual(new Set([200]));
  }, 120_000);
});

describe('Ctrl-C', () => {
  it('SIGINT to the whole process group with a stdio call in flight: the call completes, no upstream is respawned, exit 0', async () => {
    const config = writeConfig({
      server: { port: 0, shutdown_timeout_ms: 10_000 },
      mcp_clients: [{ name: 'slow', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', FAULT] } }, everythingClient()],
    });
    const gw = await startProcess(process.execPath, ['--import', 'tsx', MAIN, '--config', config], { DATA_DIR: tmpDir('tributary-int-') });
    const upstreams = descendants(gw.child.pid ?? 0);
    expect(upstreams.length).toBeGreaterThanOrEqual(2);
    const client = new Client({ name: 'ctrl-c', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gw.port}/mcp`)));
    const call = client.callTool({ name: 'slow-sleep', arguments: { ms: 1500 } }, CallToolResultSchema);
    // the call is in flight once the upstream has it
    await new Promise((r) => setTimeout(r, 300));
    // what a terminal does on Ctrl-C: SIGINT to every process of the foreground group
    process.kill(-(gw.child.pid ?? 0), 'SIGINT');
    const result = await call;
    expect(result.content).toEqual([{ type: 'text', text: 'slept 1500' }]);
    expect(await gw.exited).toBe(0);
    const log = gw.stderr();
    const afterSignal = log.slice(log.indexOf('"msg":"shutting down"'));
    expect(afterSignal).not.toMatch(/"msg":"reconnecting"|"msg":"reconnect scheduled"|"msg":"upstream connected"/);
    // the upstreams were stopped by the gateway (stdin EOF), not killed by the signal
    expect(afterSignal).not.toMatch(/killed by SIGINT/);
    await waitUntil('upstream processes gone', () => upstreams.every((p) => !alive(p)));
    await client.close().catch(() => undefined);
  }, 120_000);

  it('a second SIGINT stops at once: the upstreams are killed and nothing is left', async () => {
    const config = writeConfig({
      server: { port: 0, shutdown_timeout_ms: 30_000 },
      mcp_clients: [{ name: 'slow', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', FAULT] } }],
    });
    const gw = await startProcess(process.execPath, ['--import', 'tsx', MAIN, '--config', config], { DATA_DIR: tmpDir('tributary-int2-') });
    const upstreams = descendants(gw.child.pid ?? 0);
    const client = new Client({ name: 'ctrl-c-twice', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gw.port}/mcp`)));
    const call = client.callTool({ name: 'slow-wait', arguments: {} }, CallToolResultSchema).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 300));
    process.kill(-(gw.child.pid ?? 0), 'SIGINT');
    await waitUntil('the first signal taken', () => gw.stderr().includes('"msg":"shutting down"'));
    await new Promise((r) => setTimeout(r, 400));
    process.kill(gw.child.pid ?? 0, 'SIGINT');
    expect(await gw.exited).toBe(1);
    expect(gw.stderr()).toContain('second signal');
    await waitUntil('upstream processes gone', () => upstreams.every((p) => !alive(p)), 5_000);
    await call;
  }, 120_000);
});

describe('npm start', () => {
  it('SIGTERM to the npm process (what a supervisor sends): the gateway stops gracefully and nothing is left running', async () => {
    // make sure the build is current, so `npm start` itself has nothing to compile
    const build = spawnSync('npx', ['tsc', '-b', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    expect(build.status, build.stdout + build.stderr).toBe(0);
    const mainJs = join(ROOT, 'dist/main.js');
    const builtAt = statSync(mainJs).mtimeMs;
    const config = writeConfig({ server: { port: 0 }, mcp_clients: [everythingClient()] });
    const started = Date.now();
    const npm = await startProcess('npm', ['start', '--', '--config', config], { DATA_DIR: tmpDir('tributary-npm-') });
    const health = await fetch(`http://127.0.0.1:${npm.port}/health`);
    expect(health.status).toBe(200);
    // for the record (not asserted: this machine's load decides it)
    console.log(`npm start → /health answered after ${Date.now() - started} ms`);
    // `npm start` compiled nothing: the build was up to date
    expect(statSync(mainJs).mtimeMs).toBe(builtAt);
    const tree = descendants(npm.child.pid ?? 0);
    const gateway = tree.find((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('dist/main.js');
      } catch {
        return false;
      }
    });
    expect(gateway).toBeDefined();
    expect(tree.length).toBeGreaterThanOrEqual(3); // sh, node dist/main.js, the everything upstream
    process.kill(npm.child.pid ?? 0, 'SIGTERM');
    await waitUntil('every process of the tree gone', () => [npm.child.pid ?? 0, ...tree].every((p) => !alive(p)), 30_000);
    expect(npm.stderr()).toMatch(/"msg":"shutting down".*"signal":"(parent process exited|SIGTERM)"/);
    expect(npm.stderr()).toContain('"msg":"stopped"');
  }, 300_000);

  it('builds when a source is newer than the build, and only then (the same scripts in a small project)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // a fresh clone has no dist/: `npm ci` builds it once
    expect(pkg.scripts['prepare']).toMatch(/\btsc -b tsconfig\.build\.json\b/);
    const dir = tmpDir('tributary-build-');
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'build-probe', private: true, type: 'module', scripts: { prestart: pkg.scripts['prestart'], start: pkg.scripts['start'], build: pkg.scripts['build'] } }),
    );
    cpSync(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
    cpSync(join(ROOT, 'tsconfig.build.json'), join(dir, 'tsconfig.build.json'));
    cpSync(join(ROOT, 'scripts'), join(dir, 'scripts'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    mkdirSync(join(dir, 'src'));
    const writeMain = (text: string): void => writeFileSync(join(dir, 'src/main.ts'), `process.stdout.write(${JSON.stringify(text)});\n`);
    const start = (): string => {
      const r = spawnSync('npm', ['start', '--silent'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    writeMain('v1');
    expect(start()).toContain('v1'); // no dist/ yet: built before running
    const built = statSync(join(dir, 'dist/main.js')).mtimeMs;
    expect(start()).toContain('v1');
    expect(statSync(join(dir, 'dist/main.js')).mtimeMs).toBe(built); // up to date: not rebuilt
    writeMain('v2');
    expect(start()).toContain('v2'); // a newer source: rebuilt
    rmSync(join(dir, 'dist'), { recursive: true });
    expect(start()).toContain('v2'); // the build's output deleted: built again
  }, 120_000);
});
