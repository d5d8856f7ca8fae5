/**
 * `npm run bench:pool-direct`: the pool's own cost without HTTP — `Upstream.request('tools/call',
 * echo)` from inside a gateway (started in this process, as the tests start it) to
 * server-everything over stdio, c=64 callers, 2,000 calls warm-up then 10,000 measured, with
 * `pool_size` 1 and 2 alternating (BENCH_RUNS rounds, default 2). Prints req/s and the gateway
 * process's CPU µs per call (`process.cpuUsage`; the upstream processes are not in it) and the
 * 1-minute load average. Not pinned: run it on a quiet machine, or read the ratios only.
 * Profile: `node --cpu-prof --import tsx bench/pool-direct.ts`.
 */
import { readFileSync } from 'node:fs';
import { everythingClient, startTestGateway } from '../test/helpers/gateway.js';
import { envNumber } from './procs.js';

const RUNS = envNumber('BENCH_RUNS', 2);

async function measure(size: number): Promise<{ rps: number; cpuUs: number }> {
  const base = everythingClient('everything') as { stdio_config: Record<string, unknown> };
  const gw = await startTestGateway([{ ...base, stdio_config: { ...base.stdio_config, pool_size: size } }], {}, { log_level: 'warn' });
  try {
    const u = gw.manager.get('everything');
    if (u === undefined || u.state !== 'connected') throw new Error('server-everything did not connect');
    const run = async (n: number, c: number): Promise<void> => {
      let started = 0;
      const caller = async (): Promise<void> => {
        while (started < n) {
          started++;
          await u.request('tools/call', { name: 'echo', arguments: { message: 'hi' } });
        }
      };
      await Promise.all(Array.from({ length: c }, caller));
    };
    await run(2000, 64);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run(10_000, 64);
    const cpu = process.cpuUsage(cpu0);
    const s = (performance.now() - t0) / 1000;
    return { rps: 10_000 / s, cpuUs: (cpu.user + cpu.system) / 10_000 };
  } finally {
    await gw.stop();
  }
}

const rows: string[] = ['| round | pool_size | req/s | gateway CPU µs/call | load avg (1 min) |', '|---:|---:|---:|---:|---:|'];
for (let r = 0; r < RUNS; r++) {
  for (const size of r % 2 === 0 ? [1, 2] : [2, 1]) {
    const m = await measure(size);
    rows.push(`| ${r + 1} | ${size} | ${Math.round(m.rps)} | ${m.cpuUs.toFixed(1)} | ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]} |`);
  }
}
process.stdout.write(`## Stdio pool without HTTP — Upstream.request echo, c=64, 10,000 calls\n\n${rows.join('\n')}\n`);
process.exit(0);
