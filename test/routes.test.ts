/**
 * Routes carry their rules: the route table on its own (lookup, 405, wildcards, the invariants
 * `add` enforces), a real uWS server on port 0 reading only the headers a route declares, and a
 * whole gateway whose every route has an access rule, whose paths get the rules they are meant
 * to, and whose OpenAPI document lists exactly its documented routes.
 */
import fc from 'fast-check';
import { of } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ruleOf } from '../src/auth/gate.js';
import { EMPTY_HEADERS, jsonReply, type HttpHeaders } from '../src/base/http.js';
import { ROUTE_ACCESS, RouteTable, type AccessCheck, type RouteHandler, type RouteSpec } from '../src/base/routes.js';
import { createLogger } from '../src/log/logger.js';
import { GatewayServer } from '../src/server/app.js';
import { loadNativeUws } from '../src/server/uws.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const silent = createLogger('silent');
const spec = (method: string, path: string, extra: Partial<RouteSpec> = {}): RouteSpec => ({ method, path, access: 'open', headers: [], admission: 'direct', ...extra });
const tag =
  (name: string): RouteHandler =>
  () =>
    of(jsonReply(200, { name }));

describe('RouteTable', () => {
  const table = new RouteTable<string>();
  table.add(spec('GET', '/a'), 'get a');
  table.add(spec('POST', '/a'), 'post a');
  table.add(spec('GET', '/items/:id'), 'item');
  table.add(spec('PUT', '/items/:key'), 'put item');
  table.add(spec('GET', '/items/special'), 'special');
  table.add(spec('*', '/api/*', { access: 'admin' }), 'api fallback');
  table.add(spec('*', '/api/v1/*', { access: 'user' }), 'v1 fallback');

  it('exact paths, :params (URL-decoded), and exact before pattern', () => {
    expect(table.match('GET', '/a')?.entry.handler).toBe('get a');
    expect(table.match('POST', '/a')?.entry.handler).toBe('post a');
    const m = table.match('GET', '/items/x%20y');
    expect([m?.entry.handler, m?.params]).toEqual(['item', { id: 'x y' }]);
    expect(table.match('GET', '/items/special')?.entry.handler).toBe('special');
    // a later pattern of the same shape serves its own method
    expect(table.match('PUT', '/items/7')?.params).toEqual({ key: '7' });
  });

  it('a path served for other methods: the first route with Allow (405)', () => {
    const m = table.match('DELETE', '/a');
    expect([m?.entry.handler, m?.allow]).toEqual(['get a', 'GET, POST']);
    expect(table.match('GET', '/a')?.allow).toBeUndefined();
  });

  it('wildcards: longest prefix first, the prefix itself included; empty segments do not count', () => {
    expect(table.match('GET', '/api/v1/nothing')?.entry.handler).toBe('v1 fallback');
    expect(table.match('GET', '/api/v1')?.entry.handler).toBe('v1 fallback');
    expect(table.match('GET', '/api/other')?.entry.handler).toBe('api fallback');
    expect(table.match('GET', '/apis')).toBeUndefined();
    expect(table.match('GET', '/a/')?.entry.handler).toBe('get a');
    expect(table.match('GET', '//a')?.entry.handler).toBe('get a');
  });

  it('a route without an access rule, with an unknown header or twice cannot be registered', () => {
    const t = new RouteTable<string>();
    expect(() => t.add({ method: 'GET', path: '/x', headers: [], admission: 'direct' } as unknown as RouteSpec, 'x')).toThrow(/no access rule/);
    expect(() => t.add(spec('GET', '/x', { access: 'everyone' as never }), 'x')).toThrow(/no access rule/);
    expect(() => t.add(spec('GET', '/x', { headers: ['x-forwarded-for' as never] }), 'x')).toThrow(/unknown header/);
    expect(() => t.add(spec('GET', 'x'), 'x')).toThrow(/start with/);
    t.add(spec('get', '/x'), 'x');
    expect(() => t.add(spec('GET', '/x'), 'again')).toThrow(/registered twice/);
    expect(t.entries().map((e) => e.spec.method)).toEqual(['GET']);
  });

  it('property: any path and method is answered or undefined, never a throw', () => {
    fc.assert(
      fc.property(fc.constantFrom('GET', 'POST', 'PUT', 'X'), fc.string({ maxLength: 60 }), (method, rest) => {
        const m = table.match(method, `/${rest}`);
        if (m !== undefined) expect(m.entry.handler).toEqual(expect.any(String));
      }),
      { numRuns: 500 },
    );
  });
});

describe('the server reads only the headers a route declares', () => {
  const seen = new Map<string, HttpHeaders>();
  const routes = new RouteTable<RouteHandler>();
  const record =
    (name: string): RouteHandler =>
    (input) => {
      seen.set(name, input.headers);
      return of(jsonReply(200, { name }));
    };
  routes.add(spec('GET', '/bare'), record('bare'));
  routes.add(spec('GET', '/accepts', { headers: ['accept', 'apiVersion'] }), record('accepts'));
  routes.add(spec('GET', '/guarded', { access: 'user' }), record('guarded'));
  routes.add(spec('POST', '/echo', { admission: 'api' }), tag('echo'));
  /** An access check that reads `X-API-Key` on routes that need a credential, and admits everyone. */
  const access: AccessCheck = {
    headersFor: (a) => (ruleOf(a, false).need === 'open' ? [] : ['apiKey']),
    check: () => ({ headers: [] }),
  };
  const server = new GatewayServer(loadNativeUws(), routes, { host: '127.0.0.1', port: 0, maxBodyBytes: 1024, concurrency: 4, maxQueued: 4, access }, silent);
  let base = '';
  const sent = { accept: 'application/json', authorization: 'Bearer x', 'x-api-key': 'k', 'x-api-version': '1', cookie: 'a=b', origin: 'http://o', 'mcp-session-id': 's' };

  beforeAll(async () => {
    base = `http://127.0.0.1:${await server.listen()}`;
  });
  afterAll(() => {
    server.stopListening();
    server.closeAll();
  });

  it('a route that declares no headers gets none (and no CORS echo)', async () => {
    const r = await fetch(`${base}/bare`, { headers: sent });
    expect(r.status).toBe(200);
    expect(seen.get('bare')).toBe(EMPTY_HEADERS);
    expect(Object.values(seen.get('bare') ?? {}).every((v) => v === '')).toBe(true);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a route gets what it declares, plus what its access check reads for its rule', async () => {
    await fetch(`${base}/accepts`, { headers: sent });
    const h = seen.get('accepts');
    expect(h).toMatchObject({ accept: 'application/json', apiVersion: '1', apiKey: '', authorization: '', cookie: '', origin: '', mcpSessionId: '' });
    await fetch(`${base}/guarded`, { headers: sent });
    expect(seen.get('guarded')).toMatchObject({ apiKey: 'k', accept: '', authorization: '', cookie: '' });
  });

  it('a route registered after listen is served too (through the table, not uWS)', async () => {
    routes.add(spec('GET', '/late/:id'), (input, params) => of(jsonReply(200, { id: params['id'], path: input.path })));
    routes.add(spec('GET', '/late'), tag('late'));
    expect(await (await fetch(`${base}/late/a%2Fb`)).json()).toEqual({ id: 'a/b', path: '/late/a%2Fb' });
    expect(await (await fetch(`${base}/late`)).json()).toEqual({ name: 'late' });
  });

  it('405 with Allow on a path served for other methods; 404 where nothing is', async () => {
    const r = await fetch(`${base}/echo`);
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
    expect(((await r.json()) as { code: string }).code).toBe('METHOD_NOT_ALLOWED');
    const n = await fetch(`${base}/nowhere`);
    expect(n.status).toBe(404);
    expect(((await n.json()) as { code: string }).code).toBe('NOT_FOUND');
    const e = await fetch(`${base}/echo`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(await e.json()).toEqual({ name: 'echo' });
  });
});

describe("a gateway's routes", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway([], {}, { auth: { disabled: false, admin: { username: 'admin' } } }, { TRIBUTARY_ADMIN_PASSWORD: 'routes-test-password-1' });
  });
  afterAll(async () => {
    await gw.stop();
  });

  it('every registered route has an access rule, and every access rule is a known one', () => {
    const entries = gw.routes.entries();
    expect(entries.length).toBeGreaterThan(60);
    const missing = entries.filter((e) => !(ROUTE_ACCESS as readonly string[]).includes(e.spec.access)).map((e) => `${e.spec.method} ${e.spec.path}`);
    expect(missing).toEqual([]);
    // the WebSocket upgrades are routes too
    expect(entries.map((e) => e.spec.path)).toEqual(expect.arrayContaining(['/ws', '/api/ws/events', '/api/ws/live', '/v1/responses']));
  });

  it.each([
    ['GET', '/health', 'open', true],
    ['GET', '/health/ready', 'open', true],
    ['OPTIONS', '/mcp', 'open', true],
    ['OPTIONS', '/api/mcp/clients', 'open', true],
    ['GET', '/metrics', 'open', true],
    ['POST', '/mcp', 'user', true],
    ['PATCH', '/mcp', 'user', true],
    ['GET', '/ws', 'user', true],
    ['GET', '/v1/responses', 'user', true],
    ['POST', '/v1/mcp/tool/execute', 'user', true],
    ['GET', '/api/ws/events', 'user', false],
    ['GET', '/api/ws/live', 'admin', false],
    ['GET', '/api/v1/tools', 'user', false],
    ['GET', '/api/v1/nothing', 'user', false],
    ['GET', '/api/ui/overview', 'user', false],
    ['POST', '/api/ui/session', 'open', true],
    ['POST', '/api/webhooks/github', 'open', true],
    ['GET', '/api/openapi.json', 'open', true],
    ['GET', '/api/oauth/callback', 'open', true],
    ['GET', '/.well-known/oauth-protected-resource', 'open', true],
    ['GET', '/api/mcp/clients', 'admin', false],
    ['DELETE', '/api/mcp/client/x', 'admin', false],
    ['POST', '/api/auth/keys', 'admin', false],
    ['GET', '/api/mcp-logs', 'admin', false],
    ['GET', '/api/providers', 'admin', false],
    ['GET', '/api/nothing', 'admin', false],
    ['GET', '/nothing', 'admin', false],
    ['GET', '/health/other', 'admin', false],
  ] as const)('%s %s → %s (virtual keys: %s)', (method, path, need, vks) => {
    const m = gw.routes.match(method, path);
    expect(m).toBeDefined();
    const access = method === 'OPTIONS' ? 'open' : (m?.entry.spec.access ?? 'open');
    expect(ruleOf(access, false)).toEqual({ need, virtualKeys: vks });
  });

  it('the OpenAPI document lists exactly the documented routes', async () => {
    const r = await fetch(`${gw.url}/api/openapi.json`);
    const doc = (await r.json()) as { paths: Record<string, Record<string, unknown>> };
    const listed = Object.entries(doc.paths)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    const documented = gw.routes
      .entries()
      .filter((e) => e.spec.doc !== undefined)
      .map((e) => `${e.spec.method} ${e.spec.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')}`)
      .sort();
    expect(listed).toEqual(documented);
    expect(documented).toContain('POST /mcp');
  });

  it('an unknown route is refused by its rule first, then 404; a known path with another method is 405', async () => {
    expect((await fetch(`${gw.url}/api/nothing`)).status).toBe(401);
    const auth = { authorization: `Basic ${Buffer.from('admin:routes-test-password-1').toString('base64')}` };
    expect((await fetch(`${gw.url}/api/nothing`, { headers: auth })).status).toBe(404);
    const r = await fetch(`${gw.url}/api/mcp/clients`, { method: 'PATCH', headers: auth });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET');
  });
});
