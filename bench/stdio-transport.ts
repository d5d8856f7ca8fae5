/**
 * `npm run bench:stdio`: the client side of an MCP stdio connection — the gateway's own transport
 * (src/upstreams/stdio-transport.ts: its line framing, its per-turn write, messages posted without
 * a Promise) against the SDK's `StdioClientTransport` (the baseline), same run, same upstream
 * (`@modelcontextprotocol/server-everything stdio`, tool `echo`), same load loop: C `tools/call`
 * requests in flight, each answer sends the next one.
 *
 * Prints, per transport and concurrency, calls/s and the CPU per call of this process (the client
 * side: the transport plus a loop that is the same for both) and of the upstream process, from
 * `process.cpuUsage()` and /proc. Each figure is the median of ROUNDS rounds of ROUND_MS; the
 * transports take turns round by round (both stay connected), after a warm-up round each.
 *
 * Run it with everything on one core, as the gateway bench does:
 *   `taskset -c 1 npm run bench:stdio`
 * Environment: BENCH_STDIO_ROUND_MS (default 1500), BENCH_STDIO_ROUNDS (default 5),
 * BENCH_STDIO_CONCURRENCY (default `1,64`), BENCH_STDIO_COMPARE (a build output directory, e.g.
 * `dist-base` built from another commit: its `GroupStdioTransport` runs as a third row, for an A/B).
 * Profile: `taskset -c 1 node --cpu-prof --cpu-prof-dir=/tmp/stdio-prof --import tsx bench/stdio-transport.ts`.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { packageBin } from '../src/config/default.js';
import { GroupStdioTransport } from '../src/upstreams/stdio-transport.js';
import { POST_MESSAGE } from '../src/upstreams/upstream-types.js';
import { MCP_PROTOCOL_VERSION, fmtInt, sleep } from './lib.js';

const ROUND_MS = Number(process.env['BENCH_STDIO_ROUND_MS'] ?? 1500);
const ROUNDS = Number(process.env['BENCH_STDIO_ROUNDS'] ?? 5);
const CONCURRENCY = (process.env['BENCH_STDIO_CONCURRENCY'] ?? '1,64').split(',').map(Number);

/** One connected transport under test, driven by {@link Loop}. */
interface Variant {
  readonly name: string;
  readonly pid: () => number;
  readonly post: (m: JSONRPCMessage) => void;
  onmessage: ((m: JSONRPCMessage) => void) | undefined;
  readonly close: () => Promise<void>;
}

/** CPU seconds of process `pid` (utime + stime, 10 ms ticks). */
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** A build of the gateway's transport: its class and its `POST_MESSAGE` key (a symbol per module instance). */
interface GatewayBuild {
  readonly GroupStdioTransport: typeof GroupStdioTransport;
  readonly POST_MESSAGE: typeof POST_MESSAGE;
}

async function connect(name: string, kind: 'sdk' | GatewayBuild): Promise<Variant> {
  const command = process.execPath;
  const args = [packageBin('@modelcontextprotocol/server-everything'), 'stdio'];
  const env = getDefaultEnvironment();
  let variant: Variant;
  if (kind === 'sdk') {
    const t = new StdioClientTransport({ command, args, env, stderr: 'ignore' });
    await t.start();
    variant = {
      name,
      pid: () => t.pid ?? 0,
      post: (m) => void t.send(m).catch(() => undefined),
      onmessage: undefined,
      close: () => t.close(),
    };
    t.onmessage = (m) => variant.onmessage?.(m);
  } else {
    const t = new kind.GroupStdioTransport({ command, args, env });
    // the build's own key: a symbol of another module instance is not this one's POST_MESSAGE
    const postMessage = Reflect.get(t, kind.POST_MESSAGE) as (m: JSONRPCMessage) => Promise<void> | undefined;
    await t.start();
    variant = {
      name,
      pid: () => t.pid ?? 0,
      post: (m) => void postMessage.call(t, m),
      onmessage: undefined,
      close: () => t.close(),
    };
    t.onmessage = (m) => variant.onmessage?.(m);
  }
  // the session handshake, once
  await new Promise<void>((resolve) => {
    variant.onmessage = (m) => {
      if ((m as { id?: unknown }).id === 'init') resolve();
    };
    variant.post({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: MCP_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench-stdio', version: '1' } } } as JSONRPCMessage);
  });
  variant.post({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
  return variant;
}

interface Round {
  readonly calls: number;
  readonly wallS: number;
  readonly ownCpuS: number;
  readonly childCpuS: number;
}

/** Runs `c` calls in flight on `v` for `ms`, then waits for the last answers. */
async function round(v: Variant, c: number, ms: number): Promise<Round> {
  let next = 0;
  let answered = 0;
  let open = true;
  let outstanding = 0;
  const send = (): void => {
    outstanding++;
    v.post({ jsonrpc: '2.0', id: ++next, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hello' } } } as JSONRPCMessage);
  };
  let settled: (() => void) | undefined;
  v.onmessage = (m) => {
    if ((m as { id?: unknown }).id === undefined) return;
    outstanding--;
    if (!open) {
      if (outstanding === 0) settled?.();
      return;
    }
    answered++;
    send();
  };
  const cpu0 = process.cpuUsage();
  const child0 = procCpuSeconds(v.pid());
  const t0 = performance.now();
  for (let i = 0; i < c; i++) send();
  await sleep(ms);
  open = false;
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const childCpuS = procCpuSeconds(v.pid()) - child0;
  if (outstanding > 0) await new Promise<void>((r) => (settled = r));
  return { calls: answered, wallS, ownCpuS: (cpu.user + cpu.system) / 1e6, childCpuS };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  console.log(`# stdio client transport: gateway vs SDK StdioClientTransport → server-everything echo`);
  console.log(`# ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, rounds ${ROUNDS} × ${ROUND_MS} ms, affinity: run under taskset to pin`);
  const variants = [await connect('SDK StdioClientTransport (baseline)', 'sdk'), await connect('gateway GroupStdioTransport', { GroupStdioTransport, POST_MESSAGE })];
  const compare = process.env['BENCH_STDIO_COMPARE'];
  if (compare) {
    const dir = resolve(compare);
    const transportModule = (await import(pathToFileURL(join(dir, 'upstreams/stdio-transport.js')).href)) as Pick<GatewayBuild, 'GroupStdioTransport'>;
    const typesModule = (await import(pathToFileURL(join(dir, 'upstreams/upstream-types.js')).href)) as Pick<GatewayBuild, 'POST_MESSAGE'>;
    variants.push(await connect(`GroupStdioTransport of ${compare}`, { ...transportModule, ...typesModule }));
  }
  try {
    console.log('| transport | C | calls/s | client CPU µs/call | upstream CPU µs/call | client CPU ÷ baseline |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const c of CONCURRENCY) {
      const results = new Map<Variant, Round[]>(variants.map((v) => [v, []]));
      for (let r = -1; r < ROUNDS; r++) {
        for (const v of variants) {
          const res = await round(v, c, r < 0 ? ROUND_MS / 2 : ROUND_MS);
          if (r >= 0) results.get(v)?.push(res);
        }
      }
      const rows = variants.map((v) => {
        const rs = results.get(v) ?? [];
        return {
          v,
          rate: median(rs.map((x) => x.calls / x.wallS)),
          own: median(rs.map((x) => (x.ownCpuS * 1e6) / x.calls)),
          child: median(rs.map((x) => (x.childCpuS * 1e6) / x.calls)),
        };
      });
      const base = rows[0]?.own ?? NaN;
      for (const row of rows) {
        console.log(`| ${row.v.name} | ${c} | ${fmtInt(row.rate)} | ${row.own.toFixed(1)} | ${row.child.toFixed(1)} | ${(row.own / base).toFixed(2)} |`);
      }
    }
  } finally {
    for (const v of variants) await v.close();
  }
}

await main();
