/**
 * `npm run bench:auth`: what access control adds per request, for API keys, JWTs and
 * virtual keys, against auth off measured in the same run. Target: ≤ 5 µs added per
 * request for API keys and virtual keys.
 *
 * Part 1, the gate in-process (what the target is about). A real `AccessGate` over a real
 * `KeyRegistry` (LevelDB store opened with `openStore` in a temp dir, BENCH_AUTH_KEYS extra keys,
 * loaded as at start-up), a real `JwtVerifier` (HS256 secret, issuer and audience) and a
 * `VirtualKeyAccess` over three client policies; config resolved by `resolveConfig` as the gateway
 * does. Timed: `gate.admit(credentials, ruleOf('tools'))`, awaited when it returns a
 * Promise (the rate limiter is asynchronous), one call after another, for auth off (a second gate
 * with `auth.disabled: true`: the baseline), an API key as `Authorization: Bearer` and as
 * `X-API-Key`, a JWT as `Authorization: Bearer` (verified once before, so served from the cache)
 * and a virtual key as `x-bf-vk`. Rate limits are 10^9 (never refuse; the gate's refusal counters
 * are checked to be 0 at the end). The variants take turns round by round (rotating which goes
 * first), so a burst of load on the machine hits all of them alike; "added" is the median over
 * rounds of (variant − auth off) within the same round. Then, for where the time goes, the parts
 * of the path timed alone, and a JWT's first use (jose HS256 verify + cache fill) on fresh tokens.
 * The process pins itself to core 0 for this part.
 *
 * Part 2, end to end over HTTP. Two gateways from the tsc build (`node dist/main.js`, as `npm
 * start` runs it), both pinned to core 0, in-process `demo` upstream: auth off, and auth on
 * (`auth.disabled: false`, admin `admin` with env TRIBUTARY_ADMIN_PASSWORD, env
 * TRIBUTARY_JWT_SECRET, rate limits 10^9). Through the admin API (Basic): an API key and a virtual
 * key, and `vk_configs` giving the virtual key demo's `echo`; a jose-signed HS256 JWT. One MCP
 * session per credential (a session belongs to the credential that opened it). wrk (pinned to core
 * 1, one thread, bench/mcp-call.lua: POST /mcp `ping` with a fresh JSON-RPC id per request and
 * the credential header, every response checked for a 2xx status and a `result`) measures p50/p99 at
 * c=1 and req/s at c=64 for: auth off, auth off again (an A/A control: how far two measurements of
 * the same thing differ here), API key, JWT, virtual key. Each run goes through every variant
 * (rotating the order) before the next run starts.
 *
 * Environment: BENCH_QUICK=1 (≈ 35 s: fewer and shorter rounds and points), BENCH_AUTH_PARTS
 * (default "gate,http"), BENCH_AUTH_ROUNDS (default 12; quick 5), BENCH_AUTH_ROUND_MS (default
 * 100; quick 40), BENCH_AUTH_KEYS (extra keys in the registry, default 200; quick 20),
 * BENCH_AUTH_METHOD (`ping`, default, or `tools/call`: demo-echo, which adds the per-key tool
 * execution limit and the virtual key's tool filter), BENCH_DURATION (s per HTTP point, default 2;
 * quick 1), BENCH_RUNS (default 3; quick 1), BENCH_WARMUP (s of c=64 load per variant before the
 * runs, default 1), BENCH_QUIET_WAIT (s, default 1; quick 0.5: before each point, wait up to this
 * long for other work on the machine to stop), BENCH_PROFILE (1: both gateways run under
 * `--cpu-prof`; prints, per request, the self time of the functions that differ most between the
 * auth-on gateway serving the API key and the auth-off gateway, over their c=64 points; profiling
 * slows the gateways down, so the other numbers of such a run are not comparable), BENCH_AUTH_BUILD
 * (a directory holding a gateway build — `dist/`, `package.json`, `node_modules` — to run instead
 * of compiling src/; for trying a change to the request path without touching the tree).
 *
 * Prints markdown tables and the target checks (PASS/MISS; a MISS never fails the process) and
 * writes bench/results/auth.json; gateway logs go to bench/results/auth-gateway-*.log.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { VirtualKeyAccess, type VkClientPolicy } from '../src/auth/access.js';
import { AccessGate, ruleOf, type Credentials, type GateDecision } from '../src/auth/gate.js';
import { JwtVerifier } from '../src/auth/jwt.js';
import { KeyRegistry } from '../src/auth/keys.js';
import type { PrincipalKind } from '../src/base/principal.js';
import { resolveConfig } from '../src/config/load.js';
import { createLogger } from '../src/log/logger.js';
import { openKeyRepository } from '../src/store/keys.js';
import { openStore } from '../src/store/open.js';
import { DISTURBED_PCT, fillOtherCpu, fmtInt, mcpPost, openSession as openMcpSession, systemCpuSeconds, waitForQuiet, writeResults, type Point } from './lib.js';
import { ChildGroup, envNumber, runMain, runWrk as runWrkPoint, wrkVersion } from './procs.js';
import { mainThreadProfile, topSelfTime, type Window } from './profile.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const LUA = join(BENCH_DIR, 'mcp-call.lua');

const QUICK = (process.env['BENCH_QUICK'] ?? '0') === '1';
const PARTS = (process.env['BENCH_AUTH_PARTS'] || 'gate,http').split(',');
const ROUNDS = Math.max(3, Math.round(envNumber('BENCH_AUTH_ROUNDS', QUICK ? 5 : 12)));
const ROUND_MS = Math.max(5, envNumber('BENCH_AUTH_ROUND_MS', QUICK ? 40 : 100));
const EXTRA_KEYS = Math.round(envNumber('BENCH_AUTH_KEYS', QUICK ? 20 : 200));
const METHOD = process.env['BENCH_AUTH_METHOD'] || 'ping';
const DURATION = Math.max(1, Math.round(envNumber('BENCH_DURATION', QUICK ? 1 : 2)));
const RUNS = Math.max(1, Math.round(envNumber('BENCH_RUNS', QUICK ? 1 : 3)));
const WARMUP = Math.round(envNumber('BENCH_WARMUP', 1));
const QUIET_WAIT = envNumber('BENCH_QUIET_WAIT', QUICK ? 0.5 : 1);
const PROFILE = (process.env['BENCH_PROFILE'] ?? '0') === '1';
const SERVER_CORE = '0';
const LOADGEN_CORE = '1';
const LATENCY_C = 1;
const THROUGHPUT_C = 64;
const TARGET_ADDED_US = 5;
/** Rate limits of both parts: far above anything a run can send, so nothing is refused. */
const NEVER_LIMIT = { requests_per_hour: 1_000_000_000, burst_per_minute: 1_000_000_000, tool_executions_per_hour: 1_000_000_000 };
const ISSUER = 'tributary-bench';
const AUDIENCE = 'bench-agents';
const JWT_FRESH_TOKENS = QUICK ? 100 : 300;

if (METHOD !== 'ping' && METHOD !== 'tools/call') throw new Error(`BENCH_AUTH_METHOD must be "ping" or "tools/call", got ${JSON.stringify(METHOD)}`);

function progress(msg: string): void {
  process.stderr.write(`[bench:auth] ${msg}\n`);
}

const procs = new ChildGroup(ROOT, progress);

// ---------------------------------------------------------------- small statistics

interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

function spread(xs: readonly number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s[s.length - 1] as number, n: s.length };
}

const fmtUs = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const fmtSigned = (n: number, digits = 2): string => (Number.isFinite(n) ? `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(digits)}` : 'n/a');
const range = (s: Spread, f: (n: number) => string): string => (s.n <= 1 ? '—' : `${f(s.min)} … ${f(s.max)}`);

// ---------------------------------------------------------------- CPU pinning of this process

/**
 * Pins this process (all its threads) to `core` with `taskset -a -p`; returns a function that
 * restores the previous affinity. A no-op (with a note) when taskset is not usable.
 */
function pinSelf(core: string): () => void {
  const pid = String(process.pid);
  const before = spawnSync('taskset', ['-c', '-p', pid], { encoding: 'utf8' });
  const list = /list:\s*(\S+)/.exec(before.stdout ?? '')?.[1];
  if (before.status !== 0 || list === undefined || spawnSync('taskset', ['-a', '-c', '-p', core, pid]).status !== 0) {
    progress('taskset not usable: the in-process part runs unpinned');
    return () => undefined;
  }
  return () => {
    spawnSync('taskset', ['-a', '-c', '-p', list, pid]);
  };
}

/** CPU seconds this process used (user + system). */
function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---------------------------------------------------------------- part 1: the gate in-process

/** Something to time: called `n` times one after another; a returned Promise is awaited. */
interface Timed {
  readonly name: string;
  readonly op: () => unknown;
}

/** ns per call of `op` over `n` calls in a row, awaiting each returned Promise before the next. */
async function nsPerOp(op: () => unknown, n: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = op();
    if (r instanceof Promise) await r;
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

/** Calls per round so that one round of `op` takes about `roundMs` (doubling from 256; warms the JIT). */
async function calibrate(op: () => unknown, roundMs: number): Promise<number> {
  let n = 256;
  for (;;) {
    const ns = await nsPerOp(op, n);
    if ((ns * n) / 1e6 >= roundMs / 4) return Math.max(1, Math.round((roundMs * 1e6) / ns));
    n *= 2;
  }
}

interface RoundSamples {
  /** Per entry, ns/op of each round (index = round). */
  readonly ns: number[][];
  /** CPU other work on the machine used during each round, % of one core (see `fillOtherCpu`). */
  readonly otherPct: number[];
}

/**
 * ns/op samples of every entry: calibration, two unrecorded warm-up rounds, then `count` rounds in
 * which every entry runs once, starting one further along each round; each round's other CPU.
 */
async function rounds(entries: readonly Timed[], count: number, roundMs: number): Promise<RoundSamples> {
  const n: number[] = [];
  for (const e of entries) n.push(await calibrate(e.op, roundMs));
  const ns: number[][] = entries.map(() => []);
  const otherPct: number[] = [];
  for (let r = -2; r < count; r++) {
    const sys0 = systemCpuSeconds();
    const cpu0 = ownCpuSeconds();
    const t0 = performance.now();
    for (let k = 0; k < entries.length; k++) {
      const i = (k + Math.max(0, r)) % entries.length;
      const x = await nsPerOp((entries[i] as Timed).op, n[i] as number);
      if (r >= 0) (ns[i] as number[]).push(x);
    }
    if (r >= 0) otherPct.push(otherCpuSince(sys0, cpu0, t0));
  }
  return { ns, otherPct };
}

/** % of one core other processes used since `sys0`/`cpu0`/`t0` (machine busy minus this process). */
function otherCpuSince(sys0: ReturnType<typeof systemCpuSeconds>, cpu0: number, t0: number): number {
  const p: Point = { requests: 0, seconds: 0, rps: 0, p50_us: 0, p99_us: 0, errors: 0, checked: 0 };
  fillOtherCpu(p, sys0, ownCpuSeconds() - cpu0, (performance.now() - t0) / 1000);
  return p.other_cpu_pct ?? NaN;
}

/** The rounds to summarize: the undisturbed ones (see {@link DISTURBED_PCT}) when there are at least 3, else all. */
function usedRounds(otherPct: readonly number[]): number[] {
  const all = otherPct.map((_, i) => i);
  const quiet = all.filter((i) => !((otherPct[i] as number) > DISTURBED_PCT));
  return quiet.length >= 3 ? quiet : all;
}

function credentials(partial: Partial<Credentials>): Credentials {
  return { authorization: '', apiKey: '', virtualKey: '', includeClients: '', includeTools: '', remoteAddress: '', ...partial };
}

/** Admits `c` once and checks who it became; throws on a refusal or the wrong principal kind. */
async function admitOnce(gate: AccessGate, c: Credentials, kind: PrincipalKind, what: string): Promise<GateDecision> {
  const rule = ruleOf('tools', false);
  const d = await gate.admit(c, rule);
  if (!d.ok) throw new Error(`${what}: refused (${d.error.message})`);
  if (d.auth.principal.kind !== kind) throw new Error(`${what}: admitted as ${d.auth.principal.kind}, expected ${kind}`);
  return d;
}

interface GateRow {
  name: string;
  ns: Spread;
  /** Per round: this variant − auth off in the same round, µs. */
  added_us?: Spread;
  target?: boolean;
}

interface GateResult {
  keys_in_registry: number;
  rounds: number;
  round_ms: number;
  rows: GateRow[];
  components: GateRow[];
  jwt_first_use: Spread;
  refusals: number;
  /** Other CPU on the machine in each round of the main table, % of one core. */
  other_cpu_pct: number[];
  /** Rounds summarized (the undisturbed ones when there are at least 3). */
  rounds_used: number;
  component_other_cpu_pct: number[];
  steal_pct: number;
  pinned: boolean;
}

async function gatePart(): Promise<GateResult> {
  const dir = procs.trackTempDir(mkdtempSync(join(tmpdir(), 'tributary-bench-auth-store-')));
  const log = createLogger('silent');
  const jwtSecret = randomBytes(32).toString('base64url');
  const authDoc = { disabled: false, jwt: { issuer: ISSUER, audience: AUDIENCE }, rate_limits: NEVER_LIMIT };
  const on = resolveConfig({ server: { host: '127.0.0.1' }, data_dir: dir, auth: authDoc }, 'bench:auth', { TRIBUTARY_JWT_SECRET: jwtSecret }).auth;
  const off = resolveConfig({ server: { host: '127.0.0.1' }, data_dir: dir, auth: { ...authDoc, disabled: true } }, 'bench:auth', { TRIBUTARY_JWT_SECRET: jwtSecret }).auth;
  if (!on.enabled || off.enabled || !on.jwt) throw new Error('bench:auth: resolved auth configs are not as intended');

  const store = await openStore(join(dir, 'data'), log);
  try {
    // keys as an operator makes them, then a fresh registry loaded from LevelDB, as at start-up
    progress(`creating ${EXTRA_KEYS + 2} keys in a LevelDB store (fsync per key)`);
    const writer = new KeyRegistry(openKeyRepository(store));
    const apiKey = await writer.create('api_key', { name: 'bench api key' });
    const vk = await writer.create('virtual_key', { name: 'bench virtual key' });
    for (let i = 0; i < EXTRA_KEYS; i++) await writer.create(i % 2 === 0 ? 'api_key' : 'virtual_key', { name: `filler ${i}` });
    const keys = new KeyRegistry(openKeyRepository(store));
    await keys.load();
    const loaded = keys.list('api_key').length + keys.list('virtual_key').length;

    const jwt = await JwtVerifier.create({ ...on.jwt, cache_max: 10_000 });
    const policies: VkClientPolicy[] = [
      { name: 'demo', allowOnAllVirtualKeys: false, vkConfigs: [{ virtual_key_id: vk.record.id, tools_to_execute: ['echo'] }] },
      { name: 'demo2', allowOnAllVirtualKeys: true, vkConfigs: [] },
      { name: 'files', allowOnAllVirtualKeys: false, vkConfigs: [{ virtual_key_id: 'vk_0123456789abcdef', tools_to_execute: ['*'] }] },
    ];
    const vkAccess = new VirtualKeyAccess(() => policies);
    const gateOn = new AccessGate(on, { keys, vkAccess, jwt, log });
    const gateOff = new AccessGate(off, { keys, vkAccess, jwt, log });
    const secretKey = new TextEncoder().encode(jwtSecret);
    const sign = (sub: string): Promise<string> =>
      new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject(sub).setIssuedAt().setExpirationTime('2h').sign(secretKey);
    const token = await sign('bench-agent');

    const cBearerKey = credentials({ authorization: `Bearer ${apiKey.secret}` });
    const cXApiKey = credentials({ apiKey: apiKey.secret });
    const cJwt = credentials({ authorization: `Bearer ${token}` });
    const cVk = credentials({ virtualKey: vk.secret });
    const rule = ruleOf('tools', false);

    // every variant admitted once, as the principal it should be (this also fills the JWT cache)
    await admitOnce(gateOff, cBearerKey, 'anonymous', 'auth off');
    await admitOnce(gateOn, cBearerKey, 'api_key', 'API key (Bearer)');
    await admitOnce(gateOn, cXApiKey, 'api_key', 'API key (X-API-Key)');
    await admitOnce(gateOn, cJwt, 'jwt', 'JWT');
    const vkDecision = await admitOnce(gateOn, cVk, 'virtual_key', 'virtual key');
    const f = vkDecision.ok ? vkDecision.auth.filter : undefined;
    if (!f || !f.allowsTool('demo', 'echo') || !f.allowsTool('demo2', 'add') || f.allowsTool('files', 'read') || f.allowsTool('demo', 'add')) {
      throw new Error('virtual key: its tool filter does not follow the vk_configs given');
    }
    if (jwt.cached(token, Date.now() / 1000) === undefined) throw new Error('JWT: not cached after its first verification');

    const variants: Timed[] = [
      { name: 'auth off (baseline)', op: () => gateOff.admit(cBearerKey, rule) },
      { name: 'API key, `Authorization: Bearer trb_…`', op: () => gateOn.admit(cBearerKey, rule) },
      { name: 'API key, `X-API-Key: trb_…`', op: () => gateOn.admit(cXApiKey, rule) },
      { name: 'JWT HS256, `Authorization: Bearer` (cached)', op: () => gateOn.admit(cJwt, rule) },
      { name: 'virtual key, `x-bf-vk: tvk_…`', op: () => gateOn.admit(cVk, rule) },
    ];
    const targeted = new Set([1, 2, 4]);
    if (!vkDecision.ok) throw new Error('virtual key: not admitted');
    const vkAuth = vkDecision.auth;
    const principal = gateOn.identify(cBearerKey);
    if (principal instanceof Promise) throw new Error('API key principal is not synchronous');
    const components: Timed[] = [
      { name: '`KeyRegistry.authenticate` (sha256 + Map + timingSafeEqual)', op: () => keys.authenticate(apiKey.secret) },
      { name: '`AccessGate.identify`, API key (Bearer)', op: () => gateOn.identify(cBearerKey) },
      { name: '`AccessGate.identify`, JWT (`looksLikeJwt` + cache)', op: () => gateOn.identify(cJwt) },
      { name: '`JwtVerifier.looksLikeJwt` alone', op: () => JwtVerifier.looksLikeJwt(token) },
      { name: '`VirtualKeyAccess.forKey` (cached)', op: () => vkAccess.forKey(vk.record.id) },
      { name: '`RateLimits.consumeRequest` (2 × RateLimiterMemory.consume, awaited)', op: () => gateOn.limits.consumeRequest(principal) },
      { name: '`AccessGate.revalidate`, per WebSocket message/delivery, virtual key (nothing changed)', op: () => gateOn.revalidate(vkAuth, Date.now()) },
      { name: '`AccessGate.revalidate` after a policy change (`vk_configs` edited: filter recomputed)', op: () => (vkAccess.invalidate(), gateOn.revalidate(vkAuth, Date.now())) },
      { name: 'an already resolved Promise, awaited (floor of any async step)', op: () => Promise.resolve(1) },
    ];

    const restore = pinSelf(SERVER_CORE);
    let main: RoundSamples;
    let parts: RoundSamples;
    let fresh: number[] = [];
    let steal = NaN;
    try {
      await waitForQuiet(QUIET_WAIT * 1000);
      const sys0 = systemCpuSeconds();
      const t0 = performance.now();
      progress(`gate: ${variants.length} variants × ${ROUNDS} rounds of ≈ ${ROUND_MS} ms`);
      main = await rounds(variants, ROUNDS, ROUND_MS);
      progress(`gate: ${components.length} components × ${ROUNDS} rounds`);
      parts = await rounds(components, ROUNDS, ROUND_MS);
      steal = (100 * (systemCpuSeconds().steal - sys0.steal)) / ((performance.now() - t0) / 1000);
      // a JWT's first use: jose verify + cache fill + a new rate-limit key, on tokens never seen
      progress(`gate: JWT first use on ${JWT_FRESH_TOKENS} fresh tokens`);
      const tokens = await Promise.all(Array.from({ length: JWT_FRESH_TOKENS }, (_, i) => sign(`fresh-agent-${i}`)));
      fresh = [];
      for (const t of tokens) {
        const c = credentials({ authorization: `Bearer ${t}` });
        fresh.push(await nsPerOp(() => gateOn.admit(c, rule), 1));
      }
    } finally {
      restore();
    }
    const refusals = [...gateOn.counters.failures.values(), ...gateOn.counters.rateLimited.values()].reduce((a, b) => a + b, 0);
    const used = usedRounds(main.otherPct);
    const usedParts = usedRounds(parts.otherPct);
    const pick = (xs: readonly number[], idx: readonly number[]): number[] => idx.map((i) => xs[i] as number);
    const base = main.ns[0] as number[];
    const rows: GateRow[] = variants.map((v, i) => {
      const s = main.ns[i] as number[];
      const row: GateRow = { name: v.name, ns: spread(pick(s, used)) };
      if (i > 0) row.added_us = spread(used.map((r) => ((s[r] as number) - (base[r] as number)) / 1000));
      if (targeted.has(i) && row.added_us) row.target = row.added_us.median <= TARGET_ADDED_US;
      return row;
    });
    return {
      keys_in_registry: loaded,
      rounds: ROUNDS,
      round_ms: ROUND_MS,
      rows,
      components: components.map((c, i) => ({ name: c.name, ns: spread(pick(parts.ns[i] as number[], usedParts)) })),
      jwt_first_use: spread(fresh),
      refusals,
      other_cpu_pct: main.otherPct,
      rounds_used: used.length,
      component_other_cpu_pct: parts.otherPct,
      steal_pct: steal,
      pinned: procs.pinning,
    };
  } finally {
    await store.close();
  }
}

/** Which rounds were disturbed and which were summarized (see {@link usedRounds}). */
function disturbedNote(otherPct: readonly number[]): string {
  const disturbed = otherPct.filter((x) => x > DISTURBED_PCT).length;
  if (disturbed === 0) return `all ${otherPct.length} rounds undisturbed (≤ ${DISTURBED_PCT}%)`;
  if (otherPct.length - disturbed >= 3) return `⚠ ${disturbed} of ${otherPct.length} rounds disturbed (> ${DISTURBED_PCT}%), left out`;
  return `⚠ ${disturbed} of ${otherPct.length} rounds disturbed (> ${DISTURBED_PCT}%): too few quiet ones, all used — expect inflated numbers`;
}

function gateLines(g: GateResult): string[] {
  const verdict = (r: GateRow): string => (r.target === undefined ? '—' : r.target ? 'PASS' : 'MISS');
  const out = [
    `### 1. Gate cost in-process: \`AccessGate.admit\` for \`POST /mcp\`, ${g.rounds} rounds of ≈ ${g.round_ms} ms each`,
    '',
    `Real KeyRegistry (${g.keys_in_registry} keys loaded from LevelDB), JwtVerifier (HS256, iss/aud), VirtualKeyAccess (3 client policies); ` +
      `rate limits 10^9; each call awaited before the next. ns/op: median over rounds, and the lowest … highest round. ` +
      `"added": per round, variant − auth off of the same round (they take turns), median and range over rounds. ` +
      `${g.pinned ? `This process pinned to core ${SERVER_CORE}. ` : ''}` +
      `Other CPU on the machine per round: ${fmtInt(spread(g.other_cpu_pct).min)} … ${fmtInt(spread(g.other_cpu_pct).max)}% of one core (median ${fmtInt(spread(g.other_cpu_pct).median)}%), steal ${fmtInt(g.steal_pct)}%; ` +
      `${disturbedNote(g.other_cpu_pct)}` +
      ` (parts table: ${disturbedNote(g.component_other_cpu_pct)}). ` +
      `Refusals counted by the gate during the run: ${g.refusals}.`,
    '',
    `| credential | ns/op (median) | ns/op range | added vs off (µs, median) | added range (µs) | target ≤ ${TARGET_ADDED_US} µs |`,
    '|---|---:|---:|---:|---:|:---:|',
  ];
  for (const r of g.rows) {
    const a = r.added_us;
    out.push(
      `| ${r.name} | ${fmtInt(r.ns.median)} | ${range(r.ns, fmtInt)} | ${a ? fmtSigned(a.median) : '(baseline)'} | ${a ? range(a, (n) => fmtSigned(n)) : '—'} | ${verdict(r)} |`,
    );
  }
  out.push(
    '',
    '#### Where the time goes (the parts of the path timed alone, same process; informational)',
    '',
    '| part | ns/op (median) | ns/op range |',
    '|---|---:|---:|',
    ...g.components.map((c) => `| ${c.name} | ${fmtInt(c.ns.median)} | ${range(c.ns, fmtInt)} |`),
    `| JWT first use: \`admit\` of a never-seen token (jose HS256 verify, cache fill, new rate-limit key), ${g.jwt_first_use.n} tokens | ${fmtInt(g.jwt_first_use.median)} | ${range(g.jwt_first_use, fmtInt)} |`,
  );
  return out;
}

// ---------------------------------------------------------------- part 2: end to end over HTTP

/** The JSON-RPC request after `"id":N` (see BENCH_AUTH_METHOD). */
const SUFFIX = METHOD === 'ping' ? ',"method":"ping"}' : ',"method":"tools/call","params":{"name":"demo-echo","arguments":{"message":"hello"}}}';

interface Gw {
  readonly label: string;
  readonly child: ChildProcess;
  readonly url: string;
  /** With BENCH_PROFILE: where its `.cpuprofile` goes, the profiled load windows and their requests. */
  readonly profileDir?: string;
  readonly windows: Window[];
  windowRequests: number;
}

/** The tsc build of src/ in a temp dir (removed at the end), as bench/run.ts makes it; or BENCH_AUTH_BUILD. */
function gatewayBuild(): string {
  return procs.gatewayBuild(ROOT, process.env['BENCH_AUTH_BUILD'], 'tributary-bench-auth-build-');
}

/** Starts a gateway (in-process demo upstream, `auth` as given); resolves when GET /health answers 200. */
async function startGateway(label: string, auth: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<Gw> {
  const profileDir = PROFILE ? join(RESULTS_DIR, `auth-profile-${label}`) : undefined;
  const { child, url } = await procs.startGateway({
    build: gatewayBuild(),
    config: { mcp_clients: [{ name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo' }], auth },
    tmpPrefix: `tributary-bench-auth-${label}-`,
    core: SERVER_CORE,
    log: join(RESULTS_DIR, `auth-gateway-${label}.log`),
    what: `gateway ${label}`,
    logs: `bench/results/auth-gateway-${label}.log`,
    env: { ...process.env, ...env },
    ...(profileDir !== undefined ? { profileDir } : {}),
  });
  return { label, child, url, windows: [], windowRequests: 0, ...(profileDir !== undefined ? { profileDir } : {}) };
}

/** A request to the admin API (JSON body when given); the reply's status and body. */
async function request(method: string, url: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(url, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, text: await r.text() };
}

/** initialize + notifications/initialized with `auth` headers; returns the session id. */
async function openSession(gw: Gw, auth: Record<string, string>, what: string): Promise<string> {
  try {
    return await openMcpSession(gw.url, 'bench-auth', auth);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}

/** One request of the measured kind; throws unless it is 200 with a `result`. Returns the body text. */
async function verifyRequest(gw: Gw, auth: Record<string, string>, session: string, what: string): Promise<string> {
  const r = await mcpPost(gw.url, JSON.parse(`{"jsonrpc":"2.0","id":"verify"${SUFFIX}`), session, auth);
  if (r.status !== 200 || !r.text.includes('"result"') || r.text.includes('"isError":true')) {
    throw new Error(`${what}: ${METHOD} failed: ${r.status} ${r.text.slice(0, 300)}`);
  }
  return r.text;
}

interface Credential {
  readonly key: string;
  readonly label: string;
  readonly gw: Gw;
  /** [header name, value]; none for auth off. */
  readonly header: readonly [string, string] | undefined;
  /** With BENCH_PROFILE: its c=64 points are the profile windows of its gateway. */
  readonly profiled: boolean;
  session: string;
}

function authHeaders(c: Credential): Record<string, string> {
  return c.header ? { [c.header[0]]: c.header[1] } : {};
}

/** One wrk point (bench/mcp-call.lua: 1 thread, `concurrency` connections, `seconds`) with `c`'s session and credential. */
async function runWrk(c: Credential, concurrency: number, seconds: number, profiling = false): Promise<Point & { server_cpu_us_per_req: number }> {
  const { point, window, serverCpuSeconds } = await runWrkPoint(procs, {
    script: LUA,
    url: `${c.gw.url}/mcp`,
    concurrency,
    seconds,
    env: { MCP_SESSION: c.session, MCP_SUFFIX: SUFFIX, MCP_CHECK_BODIES: '1', AUTH_HEADER: c.header?.[0] ?? '', AUTH_VALUE: c.header?.[1] ?? '' },
    serverPid: c.gw.child.pid as number,
    core: LOADGEN_CORE,
  });
  if (profiling) {
    c.gw.windows.push(window);
    c.gw.windowRequests += point.requests;
  }
  return { ...point, server_cpu_us_per_req: (serverCpuSeconds * 1e6) / Math.max(1, point.requests) };
}

interface HttpPoint extends Point {
  variant: string;
  concurrency: number;
  run: number;
  server_cpu_us_per_req: number;
}

interface HttpRow {
  key: string;
  label: string;
  p50: Spread;
  p99: Spread;
  added_p50_us?: Spread;
  rps: Spread;
  ratio?: Spread;
  cpu_us: Spread;
  added_cpu_us?: Spread;
  errors: number;
  disturbed: number;
}

interface HttpResult {
  method: string;
  duration_s: number;
  runs: number;
  points: HttpPoint[];
  rows: HttpRow[];
  vk_tools: string[];
  profile?: ProfileDiff;
}

interface ProfileDiff {
  /** Busy (non-idle) CPU per request in the profiled windows, µs: auth off, auth on (API key). */
  busy_us_per_req: [number, number];
  requests: [number, number];
  /** Self time per request, µs, of the functions that differ most (on − off), largest first. */
  rows: { fn: string; off_us: number; on_us: number }[];
}

/** Self time per request of the two gateways' main threads over their profiled windows, side by side. */
function profileDiff(off: Gw, on: Gw): ProfileDiff | undefined {
  const read = (gw: Gw): Map<string, number> & { busyUs: number } => {
    const s = topSelfTime(mainThreadProfile(gw.profileDir as string, gw.child.pid as number), gw.windows, 100_000, gatewayBuild());
    const per = gw.windowRequests / 1000; // ms → µs per request
    const m = new Map(s.top.map((t) => [t.fn, t.ms / per])) as Map<string, number> & { busyUs: number };
    m.busyUs = s.busy_ms / per;
    return m;
  };
  try {
    const a = read(off);
    const b = read(on);
    const fns = new Set([...a.keys(), ...b.keys()]);
    const rows = [...fns]
      .map((fn) => ({ fn, off_us: a.get(fn) ?? 0, on_us: b.get(fn) ?? 0 }))
      .sort((x, y) => Math.abs(y.on_us - y.off_us) - Math.abs(x.on_us - x.off_us))
      .slice(0, 25);
    return { busy_us_per_req: [a.busyUs, b.busyUs], requests: [off.windowRequests, on.windowRequests], rows };
  } catch (err) {
    progress(`profiles not read: ${(err as Error).message}`);
    return undefined;
  }
}

const undisturbed = (p: Point): boolean => (p.other_cpu_pct ?? 0) <= DISTURBED_PCT;

/**
 * Per run, `f(variant point, baseline point)` for runs where both exist (and both are undisturbed,
 * when any such run exists).
 */
function paired(points: readonly HttpPoint[], variant: string, baseline: string, c: number, f: (v: HttpPoint, b: HttpPoint) => number): number[] {
  const pairs: [HttpPoint, HttpPoint][] = [];
  for (const v of points) {
    if (v.variant !== variant || v.concurrency !== c) continue;
    const b = points.find((p) => p.variant === baseline && p.concurrency === c && p.run === v.run);
    if (b) pairs.push([v, b]);
  }
  const quiet = pairs.filter(([v, b]) => undisturbed(v) && undisturbed(b));
  return (quiet.length > 0 ? quiet : pairs).map(([v, b]) => f(v, b));
}

/** The points of a variant at `c`: the undisturbed ones when there are any. */
function pointsOf(points: readonly HttpPoint[], variant: string, c: number): HttpPoint[] {
  const all = points.filter((p) => p.variant === variant && p.concurrency === c);
  const quiet = all.filter(undisturbed);
  return quiet.length > 0 ? quiet : all;
}

async function httpPart(): Promise<HttpResult> {
  const adminPassword = randomBytes(18).toString('base64url');
  const jwtSecret = randomBytes(32).toString('base64url');
  progress(process.env['BENCH_AUTH_BUILD'] ? `gateway build: ${process.env['BENCH_AUTH_BUILD']}` : 'building the gateway with tsc (the bench runs the build, as `npm start` does)');
  gatewayBuild();

  progress('starting two gateways: auth off, auth on');
  const [gwOff, gwOn] = await Promise.all([
    startGateway('off', { disabled: true }, {}),
    startGateway(
      'on',
      { disabled: false, admin: { username: 'admin' }, jwt: { issuer: ISSUER, audience: AUDIENCE }, rate_limits: NEVER_LIMIT },
      { TRIBUTARY_ADMIN_PASSWORD: adminPassword, TRIBUTARY_JWT_SECRET: jwtSecret },
    ),
  ]);

  // credentials through the admin API (Basic admin), as an operator makes them
  const admin = { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` };
  const adminJson = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const r = await request(method, `${gwOn.url}${path}`, admin, body);
    if (r.status !== 200 && r.status !== 201) throw new Error(`${method} ${path}: ${r.status} ${r.text.slice(0, 300)}`);
    return JSON.parse(r.text) as Record<string, unknown>;
  };
  const keyReply = await adminJson('POST', '/api/auth/keys', { name: 'bench api key' });
  const apiKey = keyReply['secret'] as string;
  const vkReply = await adminJson('POST', '/api/auth/virtual-keys', { name: 'bench virtual key' });
  const vk = vkReply['secret'] as string;
  const vkId = (vkReply['virtual_key'] as Record<string, unknown>)['id'] as string;
  const clients = (await adminJson('GET', '/api/mcp/clients'))['clients'] as { config: { name: string; client_id: string } }[];
  const demo = clients.find((c) => c.config.name === 'demo');
  if (!demo) throw new Error('the auth-on gateway has no client "demo"');
  await adminJson('PUT', `/api/mcp/client/${demo.config.client_id}`, { vk_configs: [{ virtual_key_id: vkId, tools_to_execute: ['echo'] }] });
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('bench-agent')
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(jwtSecret));

  const creds: Credential[] = [
    { key: 'off', label: 'auth off (baseline)', gw: gwOff, header: undefined, profiled: true, session: '' },
    { key: 'off-again', label: 'auth off, again (A/A control)', gw: gwOff, header: undefined, profiled: false, session: '' },
    { key: 'api-key', label: 'API key (`Authorization: Bearer`)', gw: gwOn, header: ['Authorization', `Bearer ${apiKey}`], profiled: true, session: '' },
    { key: 'jwt', label: 'JWT HS256 (`Authorization: Bearer`)', gw: gwOn, header: ['Authorization', `Bearer ${token}`], profiled: false, session: '' },
    { key: 'vk', label: 'virtual key (`x-bf-vk`)', gw: gwOn, header: ['x-bf-vk', vk], profiled: false, session: '' },
  ];
  // one session per credential; the A/A control reuses the baseline's
  for (const c of creds) c.session = c.key === 'off-again' ? (creds[0] as Credential).session : await openSession(c.gw, authHeaders(c), c.label);
  for (const c of creds) await verifyRequest(c.gw, authHeaders(c), c.session, c.label);
  // auth really is on: the same request without the credential is refused
  const apiCred = creds[2] as Credential;
  const bare = await mcpPost(gwOn.url, JSON.parse(`{"jsonrpc":"2.0","id":"bare"${SUFFIX}`), apiCred.session);
  if (bare.status !== 401) throw new Error(`auth-on gateway answered ${bare.status} without credentials (expected 401)`);
  // the virtual key sees demo's echo (vk_configs applied)
  const vkCred = creds[4] as Credential;
  const list = await mcpPost(gwOn.url, { jsonrpc: '2.0', id: 'list', method: 'tools/list' }, vkCred.session, authHeaders(vkCred));
  const vkTools = ((JSON.parse(list.text) as { result?: { tools?: { name: string }[] } }).result?.tools ?? []).map((t) => t.name);
  if (!vkTools.includes('demo-echo')) throw new Error(`virtual key: tools/list lacks demo-echo (got ${JSON.stringify(vkTools)})`);
  progress(`credentials ready; the virtual key sees ${vkTools.length} tool(s): ${vkTools.join(', ')}`);

  const points: HttpPoint[] = [];
  if (WARMUP > 0) {
    for (const c of creds) {
      if (c.key === 'off-again') continue;
      const w = await runWrk(c, THROUGHPUT_C, WARMUP);
      if (w.errors > 0) progress(`${c.label}: warm-up saw ${w.errors} errors ${JSON.stringify(w.error_detail)}`);
    }
  }
  for (let run = 1; run <= RUNS; run++) {
    for (const conc of [LATENCY_C, THROUGHPUT_C]) {
      for (let k = 0; k < creds.length; k++) {
        const c = creds[(k + run - 1) % creds.length] as Credential;
        const quiet = await waitForQuiet(QUIET_WAIT * 1000);
        const p = await runWrk(c, conc, DURATION, PROFILE && c.profiled && conc === THROUGHPUT_C);
        if (quiet.waitedMs > 100) p.quiet_wait_ms = quiet.waitedMs;
        points.push({ variant: c.key, concurrency: conc, run, ...p });
        const err = p.errors > 0 ? `, ${p.errors} errors ${JSON.stringify(p.error_detail)}` : '';
        const noisy = undisturbed(p) ? '' : `, disturbed: other CPU ${Math.round(p.other_cpu_pct ?? 0)}%`;
        progress(
          `run ${run} c=${conc} ${c.label}: ${fmtInt(p.rps)} req/s, p50 ${p.p50_us} µs, p99 ${p.p99_us} µs, server ${p.server_cpu_us_per_req.toFixed(1)} CPU µs/req${err}${noisy}`,
        );
      }
    }
  }

  const rows: HttpRow[] = creds.map((c) => {
    const lat = pointsOf(points, c.key, LATENCY_C);
    const tp = pointsOf(points, c.key, THROUGHPUT_C);
    const all = points.filter((p) => p.variant === c.key);
    const row: HttpRow = {
      key: c.key,
      label: c.label,
      p50: spread(lat.map((p) => p.p50_us)),
      p99: spread(lat.map((p) => p.p99_us)),
      rps: spread(tp.map((p) => p.rps)),
      cpu_us: spread(tp.map((p) => p.server_cpu_us_per_req)),
      errors: all.reduce((a, p) => a + p.errors, 0),
      disturbed: all.filter((p) => !undisturbed(p)).length,
    };
    if (c.key !== 'off') {
      row.added_p50_us = spread(paired(points, c.key, 'off', LATENCY_C, (v, b) => v.p50_us - b.p50_us));
      row.ratio = spread(paired(points, c.key, 'off', THROUGHPUT_C, (v, b) => v.rps / b.rps));
      row.added_cpu_us = spread(paired(points, c.key, 'off', THROUGHPUT_C, (v, b) => v.server_cpu_us_per_req - b.server_cpu_us_per_req));
    }
    return row;
  });
  await Promise.all([procs.stop(gwOff.child), procs.stop(gwOn.child)]);
  const profile = PROFILE ? profileDiff(gwOff, gwOn) : undefined;
  return { method: METHOD, duration_s: DURATION, runs: RUNS, points, rows, vk_tools: vkTools, ...(profile ? { profile } : {}) };
}

function httpLines(h: HttpResult): string[] {
  const med = (s: Spread | undefined, f: (n: number) => string): string => (s === undefined ? '(baseline)' : f(s.median));
  const rng = (s: Spread | undefined, f: (n: number) => string): string => (s === undefined ? '—' : range(s, f));
  const us0 = (n: number): string => fmtSigned(n, 0);
  const x2 = (n: number): string => `${n.toFixed(2)}×`;
  const out = [
    `### 2. End to end over HTTP: \`POST /mcp\` \`${h.method}\` on an open session, ${h.duration_s} s per point, ${h.runs} run${h.runs === 1 ? '' : 's'}`,
    '',
    `Two gateways (tsc build, in-process demo upstream) pinned to core ${SERVER_CORE}; wrk on core ${LOADGEN_CORE} (1 thread, every response checked: 200 and a JSON-RPC result). ` +
      `c=${LATENCY_C}: latency; c=${THROUGHPUT_C}: throughput and gateway CPU per request (tick-based, from /proc). ` +
      `Values are the median over runs (range: lowest … highest run); "added" and "÷ off" pair each run with the baseline of the same run. ` +
      `The A/A row measures the baseline twice: its "added" is what noise alone gives here. ⚠ = points where other work used over ${DISTURBED_PCT}% of a core (left out of medians when an undisturbed run exists).`,
    '',
    `| credential | c=${LATENCY_C} p50 (µs) | p50 range | c=${LATENCY_C} p99 (µs) | added p50 vs off (µs) | added p50 range | c=${THROUGHPUT_C} req/s | req/s range | ÷ off | ÷ off range | server CPU µs/req | added CPU µs/req | errors |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of h.rows) {
    out.push(
      `| ${r.label}${r.disturbed > 0 ? ` ⚠${r.disturbed}` : ''} | ${fmtInt(r.p50.median)} | ${range(r.p50, fmtInt)} | ${fmtInt(r.p99.median)} | ${med(r.added_p50_us, us0)} | ${rng(r.added_p50_us, us0)} | ` +
        `${fmtInt(r.rps.median)} | ${range(r.rps, fmtInt)} | ${med(r.ratio, x2)} | ${rng(r.ratio, x2)} | ${fmtUs(r.cpu_us.median, 1)} | ${med(r.added_cpu_us, (n) => fmtSigned(n, 1))} | ${r.errors} |`,
    );
  }
  const aa = h.rows.find((r) => r.key === 'off-again');
  if (aa?.added_p50_us && aa.ratio && aa.added_cpu_us) {
    out.push(
      '',
      `Noise floor (A/A): the baseline against itself differs by ${us0(aa.added_p50_us.median)} µs p50 (runs: ${range(aa.added_p50_us, us0)}), ` +
        `${x2(aa.ratio.median)} req/s (runs: ${range(aa.ratio, x2)}) and ${fmtSigned(aa.added_cpu_us.median, 1)} CPU µs/req; ` +
        `differences of that size in the rows above are not resolved by this run.`,
    );
  }
  if (h.profile) {
    const p = h.profile;
    out.push(
      '',
      `#### BENCH_PROFILE: gateway self time per request at c=${THROUGHPUT_C}, auth off vs auth on with the API key (${fmtInt(p.requests[0])} / ${fmtInt(p.requests[1])} requests profiled)`,
      '',
      `Busy main-thread CPU per request: ${fmtUs(p.busy_us_per_req[0], 1)} µs off, ${fmtUs(p.busy_us_per_req[1], 1)} µs on (${fmtSigned(p.busy_us_per_req[1] - p.busy_us_per_req[0], 1)}). ` +
        'The functions whose self time differs most; `dist/X.js:N` is the tsc build of `src/X.ts`. Profiling slows the gateways down.',
      '',
      '| function | off µs/req | on µs/req | on − off |',
      '|---|---:|---:|---:|',
      ...p.rows.map((r) => `| \`${r.fn}\` | ${fmtUs(r.off_us)} | ${fmtUs(r.on_us)} | ${fmtSigned(r.on_us - r.off_us)} |`),
    );
  }
  return out;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const started = Date.now();
  const wantGate = PARTS.includes('gate');
  const wantHttp = PARTS.includes('http');
  const wrk = wantHttp ? wrkVersion() : undefined;
  if (wantHttp && wrk === undefined) {
    process.stderr.write('bench:auth: `wrk` was not found on PATH (it drives part 2). Install it with: apt-get update && apt-get install -y wrk\n');
    process.exit(1);
  }
  procs.checkPinning();
  if (cpus().length < 2) progress(`only ${cpus().length} CPU: load generator and server share a core`);
  mkdirSync(RESULTS_DIR, { recursive: true });

  const gate = wantGate ? await gatePart() : undefined;
  const http = wantHttp ? await httpPart() : undefined;

  const lines: string[] = [];
  lines.push(`## Access control cost — API key, JWT, virtual key vs auth off${QUICK ? ' (BENCH_QUICK)' : ''}`);
  lines.push('', `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}${wrk ? `, ${wrk}` : ''}. This machine may be shared: read the ranges and the A/A row, not only the medians.`);
  if (gate) lines.push('', ...gateLines(gate));
  if (http) lines.push('', ...httpLines(http));
  lines.push('', '### Targets', '');
  if (gate) {
    const quiet = gate.other_cpu_pct.filter((x) => !(x > DISTURBED_PCT)).length;
    const caveat = quiet >= 3 ? '' : ` — ⚠ measured while the machine was busy (${gate.other_cpu_pct.length - quiet} of ${gate.other_cpu_pct.length} rounds disturbed): rerun on a quiet machine before trusting this verdict`;
    for (const r of gate.rows) {
      if (r.target === undefined || !r.added_us) continue;
      lines.push(
        `- ${r.target ? 'PASS' : 'MISS'} gate, ${r.name}: ${fmtSigned(r.added_us.median)} µs added per request vs auth off ` +
          `(median of ${r.added_us.n} paired rounds; range ${range(r.added_us, (n) => fmtSigned(n))}) (target ≤ ${TARGET_ADDED_US} µs)${caveat}`,
      );
    }
    const j = gate.rows[3];
    if (j?.added_us) lines.push(`- info: gate, JWT (cached): ${fmtSigned(j.added_us.median)} µs added (no target); first use of a token ${fmtUs(gate.jwt_first_use.median / 1000, 1)} µs`);
  } else {
    lines.push('- N/A  gate part skipped (BENCH_AUTH_PARTS)');
  }
  if (http) {
    for (const r of http.rows) {
      if (r.key === 'off' || !r.added_p50_us || !r.ratio) continue;
      lines.push(`- info: HTTP, ${r.label}: p50 ${fmtSigned(r.added_p50_us.median, 0)} µs at c=${LATENCY_C}, ${r.ratio.median.toFixed(2)}× req/s at c=${THROUGHPUT_C}, ${fmtSigned(r.added_cpu_us?.median ?? NaN, 1)} gateway CPU µs/req`);
    }
  }
  lines.push('', `(${((Date.now() - started) / 1000).toFixed(0)} s total; results in bench/results/auth.json)`);
  process.stdout.write(lines.join('\n') + '\n');

  writeResults(join(RESULTS_DIR, 'auth.json'), {
    wrk,
    settings: { quick: QUICK, parts: PARTS, rounds: ROUNDS, round_ms: ROUND_MS, extra_keys: EXTRA_KEYS, method: METHOD, duration_s: DURATION, runs: RUNS, warmup_s: WARMUP, pinned: procs.pinning, profile: PROFILE },
    gate,
    http,
  });
}

runMain('bench:auth', procs, main);
