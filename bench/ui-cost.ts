/**
 * `npm run bench:ui`: what an open dashboard costs the gateway. Target: an open dashboard takes
 * at most 2% of the gateway's throughput.
 *
 * One gateway from the tsc build (`node dist/main.js`, as `npm start` runs it), pinned to core 0,
 * auth off, the in-process `demo` upstream. wrk (pinned to core 1, one thread,
 * bench/mcp-call.lua, every response body checked) drives MCP `tools/call` of `demo-echo` over
 * one session at c=64. A real headless Chromium (Debian's `chromium`, driven by playwright-core,
 * pinned to core 1 with wrk so it never takes the gateway's core) holds, per variant:
 *
 * - `none`: a blank page (the baseline);
 * - `overview`: the dashboard's Overview page (polls `/api/ui/overview` every 2 s);
 * - `live events`: the Live events page, subscribed to every event on `/api/ws/events` in the
 *   sampled mode the page uses (`batch_ms` 500, `batch_max` 20: at most 2 frames a second
 *   carrying the newest 20 events each, however many calls the load makes).
 *
 * Each run goes through every variant (rotating the order) before the next run starts; a variant's
 * page is opened and given 2 s to settle before its point. Reported per variant: req/s (mean over
 * runs), gateway CPU µs per call (from /proc, the gateway process tree), and both as ratios to
 * `none`. Chromium's own CPU shares core 1 with wrk, so a req/s drop can come from the load
 * generator losing CPU rather than from the gateway: the CPU per call is the gateway's own cost,
 * and Chromium's CPU is reported per variant. On a shared, busy machine the A/B ratios swing by
 * tens of percent from run to run, so the runner also measures the Overview's cost directly (a CPU
 * budget that does not depend on the machine's other load): the gateway CPU of one
 * `/api/ui/overview` sample (BENCH_UI_SAMPLES in a row, default 500, gateway otherwise idle), and
 * what one sample per 2 s takes of the gateway's core.
 *
 * The Live events page gets the same kind of budget: the gateway-side cost of one
 * `/api/ws/events` subscriber per event, measured in this process on the endpoint itself (the
 * real `EventsWsEndpoint`, a connection that takes every frame, no socket I/O; same events, same
 * run): no subscriber, a sampled subscriber (the page's `batch_ms` 500 / `batch_max` 20), and a
 * subscriber getting every event (what the page was before sampling). The budget at the measured
 * saturation rate is: (sampled − none) × req/s + 2 frames/s × 20 events × (every − none).
 *
 * Environment: BENCH_DURATION (s per point, default 5), BENCH_RUNS (default 3), BENCH_CONCURRENCY
 * (default 64), BENCH_QUICK=1 (2 s points, 1 run), BENCH_PROFILE=1 (the gateway runs under
 * `node --cpu-prof`, profiles in bench/results/ui-cost-profile/; numbers of such a run are not
 * comparable). Writes bench/results/ui-cost.json.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Subject } from 'rxjs';
import { ChildGroup, envNumber, runMain, runWrk, wrkVersion } from './procs.js';
import { EventsWsEndpoint } from '../src/handlers/events-ws.js';
import type { RecordedFeed, RecordedItem } from '../src/handlers/event-recorder.js';
import type { EventLogRepository } from '../src/store/events.js';
import type { GatewayEvent } from '../src/streams/events.js';
import type { WsConnection } from '../src/streams/ws.js';
import { createLogger } from '../src/log/logger.js';
import { checkLine, fmtInt, mean, openSession, pct, treeCpuSeconds, waitForQuiet, writeResults, type Point } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const QUICK = process.env['BENCH_QUICK'] === '1';
const DURATION = envNumber('BENCH_DURATION', QUICK ? 2 : 5);
const RUNS = envNumber('BENCH_RUNS', QUICK ? 1 : 3);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 64);
const PROFILE = process.env['BENCH_PROFILE'] === '1';
const SETTLE_MS = 2000;
/** Overview samples timed for the CPU budget. */
const SAMPLES = envNumber('BENCH_UI_SAMPLES', 500);
/** Before each point, wait up to this long for other work on the machine to stop, ms. */
const QUIET_WAIT_MS = envNumber('BENCH_QUIET_WAIT', 3) * 1000;
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

const VARIANTS = [
  { key: 'none', label: 'no dashboard (blank page)', hash: undefined },
  { key: 'overview', label: 'Overview page open (2 s sampling)', hash: 'overview' },
  { key: 'events', label: 'Live events page open (sampled feed)', hash: 'events' },
] as const;
type VariantKey = (typeof VARIANTS)[number]['key'];

/**
 * CPU µs per published event of the events endpoint with no subscriber, one sampled subscriber
 * (`batch_ms` 500, `batch_max` 20) and one getting every event; `n` events each, best of 3.
 */
async function feedCostPerEvent(n: number): Promise<{ none: number; sampled: number; every: number }> {
  const conn = (): WsConnection => ({
    endpoint: '/api/ws/events',
    remoteAddress: '127.0.0.1',
    auth: undefined,
    closed: false,
    send: () => 'ok',
    bufferedAmount: () => 0,
    close: () => undefined,
    ping: () => undefined,
    authorize: () => true,
    cork: (fn: () => void) => fn(),
  });
  const measure = async (subscribe: Record<string, unknown> | undefined): Promise<number> => {
    const items = new Subject<RecordedItem>();
    const feed = { items$: items, lastSettledSeq: 0, lastRecordedSeq: 0 } as unknown as RecordedFeed;
    const ep = new EventsWsEndpoint(feed, {} as EventLogRepository, createLogger('silent'), { maxQueued: 1000, maxMessageBytes: 4096, highWaterBytes: 1 << 30, maxReplay: 1000 });
    if (subscribe !== undefined) {
      const c = conn();
      ep.onOpen(c);
      ep.onMessage(c, new TextEncoder().encode(JSON.stringify({ type: 'subscribe', ...subscribe })).buffer as ArrayBuffer, false);
    }
    let best = Infinity;
    let seq = 0;
    for (let round = 0; round < 3; round++) {
      const t0 = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        seq++;
        const event = {
          seq,
          event_type: 'ToolInvocationCompleted',
          timestamp: '2026-12-06T07:00:00.000Z',
          mcp_server_id: 'demo',
          tool_name: 'echo',
          duration_ms: 0.21,
          request_id: `r${seq}`,
          arguments: { message: 'hi' },
          result: { content: [{ type: 'text', text: 'Echo: hi' }] },
        } as unknown as GatewayEvent;
        items.next({ kind: 'event', event });
        // the recorder settles events in batches; the endpoint writes each batch's frames at the end of the turn
        if (i % 64 === 63) await Promise.resolve();
      }
      await Promise.resolve();
      const d = process.cpuUsage(t0);
      best = Math.min(best, (d.user + d.system) / n);
    }
    ep.dispose();
    return best;
  };
  return { none: await measure(undefined), sampled: await measure({ batch_ms: 500, batch_max: 20 }), every: await measure({}) };
}

const progress = (msg: string): void => void process.stderr.write(`[bench:ui] ${msg}\n`);
const procs = new ChildGroup(ROOT, progress);

/** A chromium wrapper that pins the browser (and its children) to `core`. */
function pinnedChromium(dir: string, core: string, pinning: boolean): string {
  if (!pinning) return CHROMIUM;
  const path = join(dir, 'chromium-pinned.sh');
  writeFileSync(path, `#!/bin/sh\nexec taskset -c ${core} ${CHROMIUM} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

/** The browser's root process: the chromium child of this process (playwright spawns it). */
function browserPid(): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('chromium')) return Number(name);
    } catch {
      // gone
    }
  }
  return undefined;
}

/**
 * Gateway CPU µs of one Overview sample: `n` sequential `GET /api/ui/overview` (the gateway
 * otherwise idle), the gateway process tree's CPU from /proc divided by `n`.
 */
async function overviewSampleCost(url: string, pid: number, n: number): Promise<number> {
  const before = treeCpuSeconds(pid);
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${url}/api/ui/overview`);
    if (r.status !== 200) throw new Error(`/api/ui/overview answered ${r.status}`);
    await r.arrayBuffer();
  }
  return ((treeCpuSeconds(pid) - before) * 1e6) / n;
}

async function openVariant(page: Page, url: string, hash: string | undefined): Promise<void> {
  if (hash === undefined) {
    await page.goto('about:blank');
    return;
  }
  await page.goto(`${url}/ui/#/${hash}`);
  await page.waitForSelector(`main[data-page=${hash}]`);
  if (hash === 'events') await page.locator('#ev-status', { hasText: /^open$/ }).waitFor();
  else await page.waitForSelector('.card');
}

async function main(): Promise<void> {
  if (wrkVersion() === undefined) throw new Error('wrk is not installed (apt-get install -y wrk)');
  procs.checkPinning();
  mkdirSync(RESULTS, { recursive: true });
  progress('building the gateway (tsc)…');
  const build = procs.gatewayBuild(ROOT);
  // the dashboard's files sit next to dist/ (as in the repository)
  if (!existsSync(join(build, 'ui'))) symlinkSync(join(ROOT, 'ui'), join(build, 'ui'), 'dir');
  const gw = await procs.startGateway({
    build,
    config: { mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }], log_level: 'warn' },
    tmpPrefix: 'tributary-bench-ui-',
    core: '0',
    log: join(RESULTS, 'ui-cost-gateway.log'),
    what: 'gateway',
    logs: join(RESULTS, 'ui-cost-gateway.log'),
    healthyOnly: true,
    ...(PROFILE ? { profileDir: join(RESULTS, 'ui-cost-profile') } : {}),
  });
  const session = await openSession(gw.url, 'bench-ui');
  const executablePath = pinnedChromium(gw.dir, '1', procs.pinning);
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const chromiumPid = browserPid();
    const point = async (): Promise<{ point: Point; cpuUsPerCall: number; browserCpuPct: number }> => {
      const b0 = chromiumPid !== undefined ? treeCpuSeconds(chromiumPid) : 0;
      const t0 = performance.now();
      const r = await runWrk(procs, {
        script: join(ROOT, 'bench', 'mcp-call.lua'),
        url: `${gw.url}/mcp`,
        concurrency: CONCURRENCY,
        seconds: DURATION,
        env: { MCP_SESSION: session, MCP_TOOL: 'demo-echo', MCP_MESSAGE: 'hi', MCP_CHECK_BODIES: '1' },
        serverPid: gw.child.pid ?? 0,
        core: '1',
      });
      const browserCpuPct = chromiumPid !== undefined ? (100 * (treeCpuSeconds(chromiumPid) - b0)) / ((performance.now() - t0) / 1000) : NaN;
      return { point: r.point, cpuUsPerCall: (r.serverCpuSeconds * 1e6) / Math.max(1, r.point.requests), browserCpuPct };
    };
    progress('warm-up (2 s)…');
    await runWrk(procs, { script: join(ROOT, 'bench', 'mcp-call.lua'), url: `${gw.url}/mcp`, concurrency: CONCURRENCY, seconds: 2, env: { MCP_SESSION: session, MCP_TOOL: 'demo-echo', MCP_MESSAGE: 'hi' }, serverPid: gw.child.pid ?? 0, core: '1' });
    const results = new Map<VariantKey, { point: Point; cpuUsPerCall: number; browserCpuPct: number }[]>(VARIANTS.map((v) => [v.key, []]));
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < VARIANTS.length; i++) {
        const v = VARIANTS[(i + run) % VARIANTS.length] ?? VARIANTS[0];
        await openVariant(page, gw.url, v.hash);
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        await waitForQuiet(QUIET_WAIT_MS);
        const p = await point();
        if (p.point.errors > 0) throw new Error(`${v.key}: ${p.point.errors} failed calls ${JSON.stringify(p.point.error_detail)}`);
        results.get(v.key)?.push(p);
        progress(`run ${run + 1}/${RUNS} ${v.key}: ${fmtInt(p.point.rps)} req/s, ${p.cpuUsPerCall.toFixed(1)} gateway CPU µs/call, browser ${pct(p.browserCpuPct)}`);
      }
    }
    await page.goto('about:blank');
    const sampleUs = await overviewSampleCost(gw.url, gw.child.pid ?? 0, SAMPLES);
    const feedUs = await feedCostPerEvent(QUICK ? 50_000 : 200_000);
    const rows: { key: VariantKey; label: string; rps: number; cpu: number; p50: number; p99: number; other: number; browser: number }[] = VARIANTS.map((v) => {
      const ps = results.get(v.key) ?? [];
      return {
        key: v.key,
        label: v.label,
        rps: mean(ps.map((p) => p.point.rps)),
        cpu: mean(ps.map((p) => p.cpuUsPerCall)),
        p50: mean(ps.map((p) => p.point.p50_us)),
        p99: mean(ps.map((p) => p.point.p99_us)),
        other: mean(ps.map((p) => p.point.other_cpu_pct ?? 0)),
        browser: mean(ps.map((p) => p.browserCpuPct)),
      };
    });
    const base = rows[0] ?? { rps: NaN, cpu: NaN };
    const lines = [
      `tools/call demo-echo at c=${CONCURRENCY}, ${DURATION} s per point, ${RUNS} run(s), gateway on core 0, wrk + chromium on core 1`,
      '',
      '| dashboard | req/s | vs none | gateway CPU µs/call | vs none | p50 µs | p99 µs | chromium CPU | other CPU on the machine |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.label} | ${fmtInt(r.rps)} | ${(r.rps / base.rps).toFixed(3)}× | ${r.cpu.toFixed(1)} | ${(r.cpu / base.cpu).toFixed(3)}× | ${fmtInt(r.p50)} | ${fmtInt(r.p99)} | ${pct(r.browser)} | ${pct(r.other)} |`),
      '',
      `One Overview sample (GET /api/ui/overview, ${SAMPLES} in a row, gateway otherwise idle): ${sampleUs.toFixed(0)} gateway CPU µs;`,
      `sampled every 2 s that is ${(sampleUs / 2e4).toFixed(3)}% of the gateway's core: the most an open Overview can take from a saturated gateway.`,
      '',
      'The events endpoint per published event (in this process, no socket I/O, best of 3):',
      '',
      '| subscriber | CPU µs per event | extra vs none |',
      '|---|---:|---:|',
      `| none | ${feedUs.none.toFixed(3)} | — |`,
      `| the Live events page (sampled: batch_ms 500, batch_max 20) | ${feedUs.sampled.toFixed(3)} | ${(feedUs.sampled - feedUs.none).toFixed(3)} |`,
      `| every event (the page before sampling) | ${feedUs.every.toFixed(3)} | ${(feedUs.every - feedUs.none).toFixed(3)} |`,
      '',
    ];
    const ov = rows.find((r) => r.key === 'overview');
    const ev = rows.find((r) => r.key === 'events');
    // the page's feed at the saturation rate measured with no dashboard: per-event work on every call, 2 frames of 20 events a second
    const liveUsPerSecond = Math.max(0, feedUs.sampled - feedUs.none) * base.rps + 2 * 20 * Math.max(0, feedUs.every - feedUs.none);
    const livePct = liveUsPerSecond / 1e4;
    lines.push(`At ${fmtInt(base.rps)} calls/s the page's feed takes ${liveUsPerSecond.toFixed(0)} gateway CPU µs per second = ${livePct.toFixed(3)}% of the core (every event would take ${(((feedUs.every - feedUs.none) * base.rps) / 1e4).toFixed(3)}%).`, '');
    const loss = (r: { rps: number } | undefined): number => (r ? (1 - r.rps / base.rps) * 100 : NaN);
    lines.push(
      checkLine({ name: 'gateway core taken by the Overview sampling (CPU budget)', target: '≤ 2%', measured: `${(sampleUs / 2e4).toFixed(3)}%`, pass: sampleUs / 2e4 <= 2 }),
      checkLine({ name: 'throughput lost with the Overview open (A/B, noisy)', target: '≤ 2%', measured: `${loss(ov).toFixed(1)}%`, pass: loss(ov) <= 2 }),
      checkLine({ name: 'gateway core taken by the Live events page feed at saturation (CPU budget)', target: '≤ 2%', measured: `${livePct.toFixed(3)}%`, pass: livePct <= 2 }),
      checkLine({ name: 'throughput lost with the Live events page open (A/B, noisy)', target: '≤ 2%', measured: `${loss(ev).toFixed(1)}%`, pass: loss(ev) <= 2 }),
    );
    process.stdout.write(lines.join('\n') + '\n');
    writeResults(join(RESULTS, 'ui-cost.json'), { concurrency: CONCURRENCY, duration_s: DURATION, runs: RUNS, overview_sample_cpu_us: sampleUs, events_feed_cpu_us_per_event: feedUs, live_events_feed_core_pct: livePct, rows, points: Object.fromEntries(results) });
  } finally {
    await browser?.close();
  }
}

runMain('bench:ui', procs, main);
