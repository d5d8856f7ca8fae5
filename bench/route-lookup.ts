/**
 * `npm run bench:routes`: what the server does per request before the handler — find the route,
 * copy its headers out of the uWS request, take its access rule — with the routes carrying their
 * rules (`RouteTable.match`, `readHeaders` of the route's header mask, the rule by the route's
 * declared access; exact paths and their methods resolved by uWS' router, each bound to its
 * route by `GatewayServer`), against the way it was done before, measured in the same run: every known
 * header copied for every request, the rule found by comparing the URL with a list of strings,
 * and REST routes found by a linear scan over every registered route (uWS' own native routing of
 * the old fixed routes is not in the baseline: it cost nothing in JS).
 *
 * The route table is the real one of a gateway started in-process (default config, port 0, no
 * upstreams). The uWS request is a stand-in object with uWS' `HttpRequest` methods over the
 * headers `bench/mcp-call.lua` sends (Host, Content-Type, Accept, MCP-Protocol-Version,
 * Mcp-Session-Id, Content-Length), plus a User-Agent. Requests: POST /mcp (the hot path), GET
 * /api/mcp/clients (an exact REST path), GET /api/v1/agents/:id (a pattern). Variants take turns
 * round by round; wall ns/op and CPU ns/op (process CPU from `process.cpuUsage`, the same
 * counters as /proc/self/stat, over each timed loop) are medians over rounds. On a loaded machine
 * the CPU figure is the one to trust.
 *
 * Environment: BENCH_ROUNDS (default 15), BENCH_OPS (ops per round and variant, default 200000).
 * Profile: `node --cpu-prof --import tsx bench/route-lookup.ts`, then `node /work/tools/top.mjs`
 * on the profile (or any cpuprofile viewer).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ruleOf, type RouteRule } from '../src/auth/gate.js';
import { HEADER_FIELDS, type HttpHeaders } from '../src/base/http.js';
import { headerMask, NO_PARAMS, type RouteHandler, type RouteTable } from '../src/base/routes.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { readHeaders } from '../src/server/app-headers.js';
import { methodOf } from '../src/server/app-routes.js';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 15);
const OPS = Number(process.env['BENCH_OPS'] ?? 200_000);

const SENT: readonly (readonly [string, string])[] = [
  ['host', '127.0.0.1:8080'],
  ['content-type', 'application/json'],
  ['accept', 'application/json, text/event-stream'],
  ['mcp-protocol-version', '2025-06-18'],
  ['mcp-session-id', '3b1f0c3e-6f0e-4d8f-9d5e-1a2b3c4d5e6f'],
  ['content-length', '120'],
  ['user-agent', 'wrk'],
];

/** A stand-in for uWS' HttpRequest over `SENT`. */
function request(method: string, url: string): HttpRequest {
  return {
    getMethod: () => method,
    getUrl: () => url,
    getQuery: () => '',
    getHeader: (name: string) => SENT.find(([k]) => k === name)?.[1] ?? '',
    forEach: (cb: (k: string, v: string) => void) => {
      for (const [k, v] of SENT) cb(k, v);
    },
  } as unknown as HttpRequest;
}
const res = { getRemoteAddressAsText: () => new TextEncoder().encode('127.0.0.1').buffer } as unknown as HttpResponse;

const OPEN: RouteRule = { need: 'open', virtualKeys: true };
const TOOLS: RouteRule = { need: 'user', virtualKeys: true };
const USER: RouteRule = { need: 'user', virtualKeys: false };
const ADMIN: RouteRule = { need: 'admin', virtualKeys: false };
/** The rule lookup as it was: the URL against a list of strings. */
function ruleForBefore(method: string, p: string): RouteRule {
  if (method === 'OPTIONS' || p === '/health' || p === '/health/ready' || p === '/health/live' || p === '/api/webhooks/github' || p === '/api/openapi.json') return OPEN;
  if (p.startsWith('/.well-known/') || p === '/api/oauth/callback' || p === '/api/oauth/start') return OPEN;
  if (p === '/metrics') return OPEN;
  if (p === '/api/ui/session') return OPEN;
  if (p === '/mcp' || p === '/ws' || p === '/v1/mcp/tool/execute' || p === '/v1/responses') return TOOLS;
  if (p === '/api/ws/events' || p.startsWith('/api/v1/') || p === '/api/v1' || p === '/api/ui/overview') return USER;
  return ADMIN;
}

/** The REST router's lookup as it was: every route in registration order, segment by segment. */
function linearScan(routes: readonly { method: string; segments: readonly string[] }[], method: string, p: string): number {
  const parts = p.split('/').filter(Boolean);
  for (let r = 0; r < routes.length; r++) {
    const route = routes[r] as { method: string; segments: readonly string[] };
    if (route.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let matched = true;
    for (let i = 0; i < parts.length; i++) {
      const seg = route.segments[i] as string;
      const part = parts[i] as string;
      if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(part);
      else if (seg !== part) {
        matched = false;
        break;
      }
    }
    if (matched && route.method === method) return r;
  }
  return -1;
}

/** Every header field but the client's address (read before only for Basic logins and the sign-in). */
const ALL = headerMask(HEADER_FIELDS.filter((f) => f !== 'remoteAddress'));

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-routes-'));
  const config = resolveConfig({ data_dir: dir, server: { host: '127.0.0.1', port: 0 } }, 'bench', {});
  const gw = await startGateway(config, { log: createLogger('silent') });
  const table: RouteTable<RouteHandler> = gw.routes;
  const restRoutes = table
    .entries()
    .filter((e) => e.spec.admission === 'api' && !e.spec.path.endsWith('/*'))
    .map((e) => ({ method: e.spec.method, segments: e.spec.path.split('/').filter(Boolean) }));
  const rules = new Map((['open', 'signature', 'tools', 'user', 'admin', 'metrics'] as const).map((a) => [a, ruleOf(a, false)]));
  // what the default config's access check reads per access rule (auth off: the include headers on non-open routes)
  const accessMask = headerMask(['includeClients', 'includeTools']);

  const cases = [
    { name: 'POST /mcp', method: 'POST', url: '/mcp', rest: false },
    { name: 'GET /api/mcp/clients', method: 'GET', url: '/api/mcp/clients', rest: true },
    { name: 'GET /api/v1/agents/:id', method: 'GET', url: '/api/v1/agents/agent-1', rest: true },
  ];
  let sink = 0;
  const variants = cases.flatMap((c) => {
    const req = request(c.method.toLowerCase(), c.url);
    const before = (): void => {
      const h: HttpHeaders = readHeaders(req, res, ALL);
      const rule = ruleForBefore(c.method, req.getUrl());
      const r = c.rest ? linearScan(restRoutes, c.method, req.getUrl()) : 0;
      sink += h.accept.length + (rule.virtualKeys ? 1 : 0) + r;
    };
    // exact paths and their methods are resolved by uWS' native router (GatewayServer binds each one to its match); patterns through the table
    const bound = [...table.exactPaths()].find(([p]) => p === c.url)?.[1].pick(c.method, NO_PARAMS);
    const after = (): void => {
      const url = req.getUrl();
      const m = bound ?? table.match(methodOf(req), url);
      if (m === undefined) throw new Error(`no route for ${c.url}`);
      const h: HttpHeaders = readHeaders(req, res, m.entry.headerMask | accessMask);
      const rule = rules.get(m.entry.spec.access) as RouteRule;
      sink += h.accept.length + (rule.virtualKeys ? 1 : 0);
    };
    return [
      { c: c.name, v: 'before (all headers, URL rule, REST scan)', fn: before },
      { c: c.name, v: 'routes carry rules', fn: after },
    ];
  });
  const ns = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    // rotate who goes first so a burst of load on the machine hits every variant alike
    for (let k = 0; k < variants.length; k++) {
      const x = variants[(k + round) % variants.length] as (typeof variants)[number];
      const key = `${x.c}|${x.v}`;
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < OPS; i++) x.fn();
      const t = Number(process.hrtime.bigint() - t0) / OPS;
      const used = process.cpuUsage(c0);
      if (round > 0) {
        (ns.get(key) ?? ns.set(key, []).get(key))?.push(t);
        (cpu.get(key) ?? cpu.set(key, []).get(key))?.push(((used.user + used.system) * 1000) / OPS);
      }
    }
  }
  await gw.close();
  const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;
  console.log(`\nper request before the handler; ${ROUNDS - 1} timed rounds × ${OPS} ops; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  console.log('| request | variant | wall ns/op | CPU ns/op | wall ratio | CPU ratio |');
  console.log('|---|---|---|---|---|---|');
  for (const c of cases) {
    const base = median(ns.get(`${c.name}|before (all headers, URL rule, REST scan)`) ?? []);
    const cpuBase = median(cpu.get(`${c.name}|before (all headers, URL rule, REST scan)`) ?? []);
    for (const v of variants.filter((x) => x.c === c.name)) {
      const key = `${v.c}|${v.v}`;
      const m = median(ns.get(key) ?? []);
      console.log(`| ${c.name} | ${v.v} | ${m.toFixed(0)} | ${median(cpu.get(key) ?? []).toFixed(0)} | ${(m / base).toFixed(2)}× | ${(median(cpu.get(key) ?? []) / cpuBase).toFixed(2)}× |`);
    }
  }
  if (sink === 0) console.log('(sink)');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
