/**
 * The access gate on its own, with a real key registry on LevelDB and a real JWT
 * verifier: the rules of the access kinds routes declare, what each credential form becomes, the rate-limit verdicts and headers,
 * and a fast-check property that arbitrary header values never throw and never get in.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualKeyAccess } from '../src/auth/access.js';
import { AccessGate, ruleOf, type Credentials, type GateDecision } from '../src/auth/gate.js';
import { JwtVerifier } from '../src/auth/jwt.js';
import { KeyRegistry } from '../src/auth/keys.js';
import { resolveConfig } from '../src/config/load.js';
import { createLogger } from '../src/log/logger.js';
import { openKeyRepository } from '../src/store/keys.js';
import { openStore, type Store } from '../src/store/open.js';

const SECRET = 'gate-test-hs256-secret-at-least-32-bytes-long';
const none: Credentials = { authorization: '', apiKey: '', virtualKey: '', includeClients: '', includeTools: '', remoteAddress: '' };
let dir: string;
let store: Store;
let keys: KeyRegistry;
let gate: AccessGate;
let apiKey: string;
let vk: string;
let vkId: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'trib-gate-'));
  store = await openStore(dir, createLogger('silent'));
  keys = new KeyRegistry(openKeyRepository(store));
  await keys.load();
  apiKey = (await keys.create('api_key', { name: 'k', rate_limits: { burst_per_minute: 3 } })).secret;
  const created = await keys.create('virtual_key', { name: 'v' });
  vk = created.secret;
  vkId = created.record.id;
  const config = resolveConfig({ auth: { disabled: false, jwt: { audience: 'agents' } } }, 't', { TRIBUTARY_JWT_SECRET: SECRET });
  if (!config.auth.jwt) throw new Error('jwt settings missing');
  const jwt = await JwtVerifier.create({ ...config.auth.jwt, cache_max: 100 });
  const vkAccess = new VirtualKeyAccess(() => [
    { name: 'a', allowOnAllVirtualKeys: false, vkConfigs: [{ virtual_key_id: vkId, tools_to_execute: ['x'] }] },
    { name: 'b', allowOnAllVirtualKeys: true, vkConfigs: [] },
    { name: 'c', allowOnAllVirtualKeys: false, vkConfigs: [] },
  ]);
  gate = new AccessGate(config.auth, { keys, vkAccess, jwt, log: createLogger('silent') });
});

afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('ruleOf', () => {
  it.each([
    ['open', 'open', true],
    ['signature', 'open', true],
    ['metrics', 'open', true],
    ['tools', 'user', true],
    ['user', 'user', false],
    ['admin', 'admin', false],
  ] as const)('%s → %s (virtual keys: %s)', (access, need, vks) => {
    expect(ruleOf(access, false)).toEqual({ need, virtualKeys: vks });
  });

  it('/metrics needs a credential when configured', () => {
    expect(ruleOf('metrics', true).need).toBe('user');
  });
});

describe('admit', () => {
  const tools = ruleOf('tools', false);

  it('a virtual key gets its filter: explicit entry, allow_on_all, nothing else', async () => {
    const d = await gate.admit({ ...none, virtualKey: vk }, tools);
    if (!d.ok) throw new Error(d.error.message);
    const f = d.auth.filter;
    expect(d.auth.principal).toMatchObject({ kind: 'virtual_key', virtualKeyId: vkId, role: 'user' });
    expect([f?.allowsTool('a', 'x'), f?.allowsTool('a', 'y'), f?.allowsTool('b', 'anything'), f?.allowsTool('c', 'x')]).toEqual([true, false, true, false]);
    expect([f?.allowsClient('a'), f?.allowsClient('c')]).toEqual([true, false]);
  });

  it('include headers narrow an API key; no headers → no filter', async () => {
    const plain = await gate.admit({ ...none, apiKey: apiKey }, tools);
    expect(plain.ok && plain.auth.filter).toBeUndefined();
    const d = await gate.admit({ ...none, apiKey: apiKey, includeTools: 'a/x, b-*' }, tools);
    if (!d.ok) throw new Error(d.error.message);
    expect([d.auth.filter?.allowsTool('a', 'x'), d.auth.filter?.allowsTool('a', 'y'), d.auth.filter?.allowsTool('b', 'z')]).toEqual([true, false, true]);
  });

  it('counts requests: limit 3 → remaining 2, 1, 0, then 429 with Retry-After', async () => {
    const key = (await keys.create('api_key', { name: 'count', rate_limits: { burst_per_minute: 3 } })).secret;
    const seen: GateDecision[] = [];
    for (let i = 0; i < 4; i++) seen.push(await gate.admit({ ...none, authorization: `Bearer ${key}` }, tools));
    const header = (d: GateDecision, name: string): string | undefined => d.headers.find(([k]) => k === name)?.[1];
    expect(seen.map((d) => header(d, 'X-RateLimit-Remaining'))).toEqual(['2', '1', '0', '0']);
    const last = seen[3] as GateDecision;
    expect(last.ok).toBe(false);
    if (!last.ok) {
      expect(last.error.code).toBe('RATE_LIMITED');
      expect(Number(header(last, 'Retry-After'))).toBeGreaterThan(0);
    }
  });

  it('JWT: verified once, then served from the cache synchronously', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('s1').setAudience('agents').setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    const first = gate.identify({ ...none, authorization: `Bearer ${token}` });
    expect(first).toBeInstanceOf(Promise);
    expect((await first).id).toBe('jwt:s1');
    const second = gate.identify({ ...none, authorization: `Bearer ${token}` });
    expect(second).not.toBeInstanceOf(Promise);
  });

  it('property: arbitrary header values never throw and never get in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ authorization: fc.string({ maxLength: 300 }), apiKey: fc.string({ maxLength: 300 }), virtualKey: fc.string({ maxLength: 300 }) }),
        async (h) => {
          const d = await gate.admit({ ...none, ...h }, tools);
          expect(d.ok).toBe(false);
          if (!d.ok) {
            expect(d.error.code).toBe('UNAUTHORIZED');
            expect(d.error.status).toBe(401);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('admitKey (a key a worker thread identified by its hash)', () => {
  const tools = ruleOf('tools', false);

  it('decides as admit does for the same key: principal, filter, rate limits counted in the same windows', async () => {
    const created = await keys.create('api_key', { name: 'by id', rate_limits: { burst_per_minute: 2 } });
    const byId = await gate.admitKey('api_key', created.record.id, tools);
    const bySecret = await gate.admit({ ...none, authorization: `Bearer ${created.secret}` }, tools);
    if (byId === undefined || !byId.ok || !bySecret.ok) throw new Error('refused');
    expect(byId.auth.principal).toBe(bySecret.auth.principal);
    expect(byId.auth.filter).toEqual(bySecret.auth.filter);
    // the third request of the minute is refused whichever way the key came
    const third = await gate.admitKey('api_key', created.record.id, tools);
    expect(third).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    const vkById = await gate.admitKey('virtual_key', vkId, tools);
    const vkBySecret = await gate.admit({ ...none, virtualKey: vk }, tools);
    if (vkById === undefined || !vkById.ok || !vkBySecret.ok) throw new Error('refused');
    expect(vkById.auth.principal).toBe(vkBySecret.auth.principal);
    expect(vkById.auth.filter?.allowsTool('a', 'x')).toBe(true);
    expect(vkById.auth.filter?.allowsTool('c', 'x')).toBe(false);
  });

  it('undefined for a key that is unknown, revoked or expired now (the caller lets admit answer), and for a virtual key where the rule excludes them', async () => {
    const created = await keys.create('api_key', { name: 'to revoke' });
    expect(await gate.admitKey('api_key', created.record.id, tools)).toMatchObject({ ok: true });
    await keys.revoke('api_key', created.record.id);
    expect(gate.admitKey('api_key', created.record.id, tools)).toBeUndefined();
    expect(gate.admitKey('api_key', 'key_nope', tools)).toBeUndefined();
    expect(gate.admitKey('virtual_key', created.record.id, tools)).toBeUndefined();
    // a key that expires in a minute, seen by a gate whose clock is two minutes ahead
    const expiring = await keys.create('api_key', { name: 'expiring', expires_at: new Date(Date.now() + 60_000).toISOString() });
    const later = new AccessGate(resolveConfig({ auth: { disabled: false, jwt: { audience: 'agents' } } }, 't', { TRIBUTARY_JWT_SECRET: SECRET }).auth, { keys, vkAccess: new VirtualKeyAccess(() => []), jwt: undefined, log: createLogger('silent'), now: () => Date.now() + 120_000 });
    expect(gate.admitKey('api_key', expiring.record.id, tools)).toBeDefined();
    expect(later.admitKey('api_key', expiring.record.id, tools)).toBeUndefined();
    const refused = await gate.admitKey('virtual_key', vkId, ruleOf('user', false));
    expect(refused).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});
