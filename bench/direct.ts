/**
 * The "direct" baseline of `npm run bench`: an SDK `Client` connected straight to the upstream
 * (no gateway), driven as a closed loop of N concurrent callers for a fixed duration.
 *
 *   inprocess: Client ⇄ InMemoryTransport ⇄ createDemoServer(), all in this process; tool `echo`
 *   stdio:     Client ⇄ StdioClientTransport ⇄ @modelcontextprotocol/server-everything; tool `echo`
 *
 * The runner starts this script pinned like the gateway (`taskset -c 1`), so the stdio server
 * inherits the same core, as it does under the gateway: client, load and server share one core.
 * There is no HTTP hop and no separate load generator: the latencies are the client's own awaits.
 *
 * Usage: node --import tsx bench/direct.ts MODE CONCURRENCIES RUNS DURATION_S WARMUP_S [QUIET_WAIT_S] [WARMUP_CALLS] [WARMUP_MAX_S]
 *   e.g. bench/direct.ts stdio 1,16,64 2 10 2 5   (the warm-up runs at the first concurrency)
 *   The warm-up repeats its WARMUP_S slice until WARMUP_CALLS calls are made (default 0: one
 *   slice), at most WARMUP_MAX_S (default 12): the rule of bench/run.ts for the gateway rows.
 * Output (stdout): `BENCH_SAMPLE {...}` (one verified call result), then one
 * `BENCH_POINT {"concurrency":N,"run":R,...Point}` line per point; its `tree_cpu_s` has `server`
 * (this process and its children: client and upstream) and `upstream` (the stdio server's own).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { packageBin } from '../src/config/default.js';
import { createDemoServer } from '../src/upstreams/inprocess/demo.js';
import { fillOtherCpu, quantile, systemCpuSeconds, treeCpuSeconds, waitForQuiet, type Point } from './lib.js';

const MESSAGE = 'hello';
const EXPECTED = `Echo: ${MESSAGE}`;

type Mode = 'inprocess' | 'stdio';

async function connect(mode: Mode): Promise<{ client: Client; serverPid: number | undefined }> {
  const client = new Client({ name: 'bench-direct', version: '0.0.0' });
  if (mode === 'inprocess') {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await createDemoServer().connect(serverSide);
    await client.connect(clientSide);
    return { client, serverPid: undefined };
  }
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [packageBin('@modelcontextprotocol/server-everything'), 'stdio'],
    env: getDefaultEnvironment(),
    stderr: 'ignore',
  });
  await client.connect(transport);
  return { client, serverPid: transport.pid ?? undefined };
}

/** One call; true when the result is the expected echo. */
async function call(client: Client): Promise<boolean> {
  const r = await client.callTool({ name: 'echo', arguments: { message: MESSAGE } });
  const first = (r.content as { type: string; text?: string }[] | undefined)?.[0];
  return r.isError !== true && first?.type === 'text' && first.text === EXPECTED;
}

async function measure(client: Client, concurrency: number, seconds: number, serverPid: number | undefined): Promise<Point> {
  let lat = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const tree0 = treeCpuSeconds(process.pid);
  const server0 = serverPid === undefined ? 0 : treeCpuSeconds(serverPid);
  const sys0 = systemCpuSeconds();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const s = performance.now();
      let ok = false;
      try {
        ok = await call(client);
      } catch {
        ok = false;
      }
      const d = performance.now() - s;
      if (!ok) errors++;
      if (n === lat.length) {
        const bigger = new Float64Array(lat.length * 2);
        bigger.set(lat);
        lat = bigger;
      }
      lat[n++] = d * 1000;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sorted = lat.subarray(0, n).sort();
  const clientCpu = (cpu.user + cpu.system) / 1e6;
  let over1 = 0;
  for (const v of sorted) if (v > 1000) over1++;
  const point: Point & { p999_us: number; max_us: number; over_1ms: number } = {
    requests: n,
    seconds: elapsed,
    rps: n / elapsed,
    p50_us: quantile(sorted, 0.5),
    p99_us: quantile(sorted, 0.99),
    // the same tail figures as bench/seq-client.ts prints for the HTTP rows at c=1
    p999_us: quantile(sorted, 0.999),
    max_us: n > 0 ? (sorted[n - 1] as number) : NaN,
    over_1ms: over1,
    errors,
    checked: n,
    // the client process is its own load generator (and, in-process, also the server)
    loadgen_cpu_pct: (100 * clientCpu) / elapsed,
  };
  const serverCpu = serverPid === undefined ? 0 : treeCpuSeconds(serverPid) - server0;
  if (serverPid !== undefined) point.server_cpu_pct = (100 * serverCpu) / elapsed;
  point.tree_cpu_s = { server: treeCpuSeconds(process.pid) - tree0, upstream: serverCpu };
  fillOtherCpu(point, sys0, clientCpu + serverCpu, elapsed);
  return point;
}

async function main(): Promise<void> {
  const [modeArg, concArg = '1,16,64', runsArg = '2', durArg = '4', warmArg = '1', quietArg = '5', warmCallsArg = '0', warmMaxArg = '12'] = process.argv.slice(2);
  if (modeArg !== 'inprocess' && modeArg !== 'stdio') throw new Error(`mode must be inprocess or stdio, got ${String(modeArg)}`);
  const concurrencies = concArg.split(',').map(Number);
  const runs = Number(runsArg);
  const duration = Number(durArg);
  const warmup = Number(warmArg);
  const warmupCalls = Number(warmCallsArg);
  const warmupMax = Number(warmMaxArg);
  const quietMs = Number(quietArg) * 1000;
  const { client, serverPid } = await connect(modeArg);
  try {
    const sample = await client.callTool({ name: 'echo', arguments: { message: MESSAGE } });
    process.stdout.write(`BENCH_SAMPLE ${JSON.stringify({ ok: await call(client), result: sample })}\n`);
    let warmed = 0;
    let spent = 0;
    while (warmup > 0 && (spent === 0 || (warmed < warmupCalls && spent + warmup <= warmupMax))) {
      warmed += (await measure(client, concurrencies[0] ?? 16, warmup, serverPid)).requests;
      spent += warmup;
    }
    for (const c of concurrencies) {
      for (let run = 1; run <= runs; run++) {
        const quiet = await waitForQuiet(quietMs);
        const p = await measure(client, c, duration, serverPid);
        if (quiet.waitedMs > 100) p.quiet_wait_ms = quiet.waitedMs;
        process.stdout.write(`BENCH_POINT ${JSON.stringify({ concurrency: c, run, ...p })}\n`);
      }
    }
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`direct: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
