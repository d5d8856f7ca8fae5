/**
 * API keys and virtual keys on real LevelDB: KeyRepository (durable puts, id/hash guards),
 * KeyRegistry (create/list/get/revoke of both kinds, persistence across a restart, the secret never
 * reaching the database or its files, authenticate's refusals, a fast-check property over random
 * strings) and the admin REST routes (KeyAdmin on a RestRouter: 201 create, public views without
 * `hash`, body validation naming the field path, revoke, 404s, StoreChanged events).
 */
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { KeyRegistry, MAX_SECRET_CHARS, type StoredKey } from '../src/auth/keys.js';
import { parseIsoTimestamp } from '../src/base/ids.js';
import { AuthError, type AuthFailureReason } from '../src/base/principal.js';
import { decodeCreateApiKey } from '../src/codecs/keys.js';
import { KeyAdmin, SECRET_NOTE } from '../src/handlers/mgmt/keys.js';
import { RestRouter } from '../src/handlers/rest/router.js';
import { createLogger } from '../src/log/logger.js';
import { KeyRepository, openKeyRepository } from '../src/store/keys.js';
import type { Store } from '../src/store/open.js';
import { EventBus, type GatewayEvent } from '../src/streams/events.js';
import { emptyHeaders, type HttpInput } from '../src/base/http.js';
import { tempStores } from './helpers/store.js';


const silent = createLogger('silent');
const openTemp = tempStores('trib-keys-');
const freshStore = (dataDir?: string): Promise<{ store: Store; dataDir: string }> => openTemp(dataDir === undefined ? {} : { dataDir });

/** A clock tests move by hand (ms since the epoch). */
function manualClock(start = Date.parse('2026-03-01T12:00:00.000Z')): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

async function registryOn(store: Store, clock?: () => number): Promise<KeyRegistry> {
  const registry = new KeyRegistry(openKeyRepository(store), clock);
  await registry.load();
  return registry;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function reasonOf(fn: () => unknown): AuthFailureReason | 'no error' | 'not an AuthError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof AuthError ? err.reason : 'not an AuthError';
  }
}

function storedKey(over: Partial<StoredKey> = {}): StoredKey {
  return {
    id: 'key_0123456789abcdef',
    kind: 'api_key',
    name: 'ci',
    hash: sha256('trb_x'),
    prefix: 'trb_x',
    role: 'user',
    tenant_id: 'default',
    created_at: '2026-03-01T12:00:00.000Z',
    ...over,
  };
}

describe('KeyRepository', () => {
  it('puts, gets and lists by kind, oldest first; unknown ids give undefined', async () => {
    const { store } = await freshStore();
    const repo = openKeyRepository(store);
    const b = storedKey({ id: 'key_bbbbbbbbbbbbbbbb', created_at: '2026-03-01T12:00:01.000Z', rate_limits: { burst_per_minute: 5 } });
    const a = storedKey({ id: 'key_aaaaaaaaaaaaaaaa', created_at: '2026-03-01T12:00:02.000Z', expires_at: '2027-01-01T00:00:00.000Z' });
    const c = storedKey({ id: 'key_0000000000000000', created_at: '2026-03-01T12:00:01.000Z' });
    const v = storedKey({ id: 'vk_0123456789abcdef', kind: 'virtual_key', revoked_at: '2026-03-02T00:00:00.000Z' });
    for (const r of [a, b, c, v]) await repo.put(r);
    expect(await repo.get('api_key', a.id)).toStrictEqual(a);
    expect(await repo.get('virtual_key', v.id)).toStrictEqual(v);
    expect(await repo.get('virtual_key', a.id)).toBeUndefined();
    expect(await repo.get('api_key', 'key_nope')).toBeUndefined();
    expect((await repo.list('api_key')).map((r) => r.id)).toEqual([c.id, b.id, a.id]);
    expect(await repo.list('virtual_key')).toStrictEqual([v]);
  });

  it('rejects empty ids, ids of the other kind, unhashed secrets and unknown kinds with clear errors', async () => {
    const { store } = await freshStore();
    const repo = new KeyRepository(store.db, store.sublevel('api_keys'), store.sublevel('virtual_keys'));
    await expect(repo.get('api_key', '')).rejects.toThrow(/id must be a non-empty string/);
    await expect(repo.put(storedKey({ id: '' }))).rejects.toThrow(/id must be a non-empty string/);
    await expect(repo.put(storedKey({ id: 'vk_0123456789abcdef' }))).rejects.toThrow(/api_key id must start with "key_"/);
    await expect(repo.put(storedKey({ hash: 'trb_thesecretitself' }))).rejects.toThrow(/64 lower-case hex/);
    await expect(repo.list('nope' as never)).rejects.toThrow(/kind must be/);
    expect(await repo.list('api_key')).toEqual([]);
  });
});

describe('KeyRegistry', () => {
  it('creates API keys and virtual keys: id and secret formats, prefix, hash, defaults', async () => {
    const { store } = await freshStore();
    const clock = manualClock();
    const registry = await registryOn(store, clock.now);
    const { record, secret } = await registry.create('api_key', { name: 'ci runner', role: 'admin', tenant_id: 'acme.prod', rate_limits: { requests_per_hour: 10 } });
    expect(secret).toMatch(/^trb_[A-Za-z0-9_-]{43}$/);
    expect(record).toStrictEqual({
      id: expect.stringMatching(/^key_[0-9a-f]{16}$/) as unknown,
      kind: 'api_key',
      name: 'ci runner',
      hash: sha256(secret),
      prefix: secret.slice(0, 12),
      role: 'admin',
      tenant_id: 'acme.prod',
      rate_limits: { requests_per_hour: 10 },
      created_at: '2026-03-01T12:00:00.000Z',
    });
    const vk = await registry.create('virtual_key', { name: 'team a', expires_at: '2026-03-01T13:30:00+01:00' });
    expect(vk.secret).toMatch(/^tvk_[A-Za-z0-9_-]{43}$/);
    expect(vk.record).toMatchObject({ kind: 'virtual_key', role: 'user', tenant_id: 'default', expires_at: '2026-03-01T12:30:00.000Z' });
    expect(vk.record.id).toMatch(/^vk_[0-9a-f]{16}$/);
    expect(vk.record).not.toHaveProperty('rate_limits');
    expect(registry.authenticate(secret)).toBe(record);
    expect(registry.authenticate(vk.secret)).toBe(vk.record);
  });

  it('refuses bad input in create (admin virtual keys, past expiry, bad names, limits, tenants) and stores nothing', async () => {
    const { store } = await freshStore();
    const registry = await registryOn(store, manualClock().now);
    await expect(registry.create('virtual_key', { name: 'x', role: 'admin' })).rejects.toThrow(/virtual keys always have role "user"/);
    await expect(registry.create('api_key', { name: 'x', expires_at: '2026-03-01T12:00:00Z' })).rejects.toThrow(/in the future/);
    await expect(registry.create('api_key', { name: 'x', expires_at: '2026-02-30T12:00:00Z' })).rejects.toThrow(/ISO-8601/);
    await expect(registry.create('api_key', { name: '' })).rejects.toThrow(/name/);
    await expect(registry.create('api_key', { name: 'x'.repeat(129) })).rejects.toThrow(/name/);
    await expect(registry.create('api_key', { name: 'x', rate_limits: { burst_per_minute: 0 } })).rejects.toThrow(/burst_per_minute/);
    await expect(registry.create('api_key', { name: 'x', tenant_id: 'a b' })).rejects.toThrow(/tenant_id/);
    expect(registry.list('api_key')).toEqual([]);
    expect(registry.list('virtual_key')).toEqual([]);
    expect(await openKeyRepository(store).list('api_key')).toEqual([]);
  });

  it('lists oldest first (same millisecond: by id), gets by id, revokes durably and idempotently', async () => {
    const { store } = await freshStore();
    const clock = manualClock();
    const registry = await registryOn(store, clock.now);
    const created = [];
    for (let i = 0; i < 5; i++) {
      created.push(await registry.create('api_key', { name: `k${i}` }));
      clock.advance(1);
    }
    const sameMs = [await registry.create('api_key', { name: 's0' }), await registry.create('api_key', { name: 's1' })];
    const vk = await registry.create('virtual_key', { name: 'vk' });
    const tail = sameMs.map((c) => c.record).sort((a, b) => (a.id < b.id ? -1 : 1)).map((r) => r.name);
    expect(registry.list('api_key').map((r) => r.name)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', ...tail]);
    expect(registry.list('api_key')).toStrictEqual(await openKeyRepository(store).list('api_key'));
    expect(registry.list('virtual_key')).toEqual([vk.record]);
    const k2 = created[2]!;
    expect(registry.get('api_key', k2.record.id)).toBe(k2.record);
    expect(registry.get('virtual_key', k2.record.id)).toBeUndefined();

    clock.advance(60_000);
    expect(await registry.revoke('api_key', k2.record.id)).toBe(true);
    const revokedAt = '2026-03-01T12:01:00.005Z';
    expect(registry.get('api_key', k2.record.id)?.revoked_at).toBe(revokedAt);
    expect((await openKeyRepository(store).get('api_key', k2.record.id))?.revoked_at).toBe(revokedAt);
    clock.advance(60_000);
    expect(await registry.revoke('api_key', k2.record.id)).toBe(true);
    expect(registry.get('api_key', k2.record.id)?.revoked_at).toBe(revokedAt);
    expect(await registry.revoke('api_key', 'key_ffffffffffffffff')).toBe(false);
    expect(await registry.revoke('api_key', vk.record.id)).toBe(false);
    expect(registry.list('api_key')).toHaveLength(7);

    expect(registry.hasVirtualKey(vk.record.id)).toBe(true);
    expect(registry.hasVirtualKey(k2.record.id)).toBe(false);
    expect(await registry.revoke('virtual_key', vk.record.id)).toBe(true);
    expect(registry.hasVirtualKey(vk.record.id)).toBe(false);
    expect(reasonOf(() => registry.authenticate(vk.secret))).toBe('revoked_key');
  });

  it('keeps keys across closing and reopening the store: revoked stays revoked, the others still authenticate', async () => {
    const first = await freshStore();
    const registry = await registryOn(first.store);
    const keep = await registry.create('api_key', { name: 'keep', role: 'admin', rate_limits: { tool_executions_per_hour: 7 } });
    const gone = await registry.create('api_key', { name: 'gone' });
    const vkKeep = await registry.create('virtual_key', { name: 'vk keep', tenant_id: 't1' });
    const vkGone = await registry.create('virtual_key', { name: 'vk gone' });
    await registry.revoke('api_key', gone.record.id);
    await registry.revoke('virtual_key', vkGone.record.id);
    const apiBefore = registry.list('api_key');
    const vkBefore = registry.list('virtual_key');
    await first.store.close();

    const second = await freshStore(first.dataDir);
    const reloaded = await registryOn(second.store);
    expect(reloaded.list('api_key')).toStrictEqual(apiBefore);
    expect(reloaded.list('virtual_key')).toStrictEqual(vkBefore);
    expect(reloaded.authenticate(keep.secret)).toStrictEqual(keep.record);
    expect(reloaded.authenticate(vkKeep.secret)).toStrictEqual(vkKeep.record);
    expect(reasonOf(() => reloaded.authenticate(gone.secret))).toBe('revoked_key');
    expect(reasonOf(() => reloaded.authenticate(vkGone.secret))).toBe('revoked_key');
    expect(reloaded.hasVirtualKey(vkKeep.record.id)).toBe(true);
    expect(reloaded.hasVirtualKey(vkGone.record.id)).toBe(false);
  });

  it('never writes the secret, its base64url body or its random bytes to the database or its files', async () => {
    const { store } = await freshStore();
    const registry = await registryOn(store);
    const made = [
      await registry.create('api_key', { name: 'a' }),
      await registry.create('virtual_key', { name: 'v', expires_at: '2099-01-01T00:00:00Z' }),
    ];
    await registry.revoke('api_key', made[0]!.record.id);

    const entries: Buffer[] = [];
    for await (const [k, v] of store.db.iterator({ keyEncoding: 'view', valueEncoding: 'view' })) entries.push(Buffer.from(k), Buffer.from(v));
    const raw = Buffer.concat(entries);
    const location = store.location;
    await store.close();
    const files = await Promise.all((await readdir(location)).map((f) => readFile(path.join(location, f))));
    const onDisk = Buffer.concat(files);

    for (const { record, secret } of made) {
      // sanity: the records are there (their hashes are found), so the search looks at the right bytes
      expect(raw.includes(Buffer.from(record.hash))).toBe(true);
      const body = secret.slice(4);
      for (const needle of [Buffer.from(secret), Buffer.from(body), Buffer.from(body, 'base64url')]) {
        expect(raw.includes(needle)).toBe(false);
        expect(onDisk.includes(needle)).toBe(false);
      }
    }
  });

  it('authenticate refuses unknown, revoked, expired, empty and over-long secrets with AuthError and safe messages', async () => {
    const { store } = await freshStore();
    const clock = manualClock();
    const registry = await registryOn(store, clock.now);
    const expiring = await registry.create('api_key', { name: 'short-lived', expires_at: '2026-03-01T12:00:01.000Z' });
    const revoked = await registry.create('virtual_key', { name: 'revoked' });
    await registry.revoke('virtual_key', revoked.record.id);

    const unknown = `trb_${'A'.repeat(43)}`;
    const cases: [string, string, AuthFailureReason][] = [
      ['unknown', unknown, 'unknown_key'],
      ['unknown, one char changed', `${expiring.secret.slice(0, -1)}${expiring.secret.endsWith('A') ? 'B' : 'A'}`, 'unknown_key'],
      ['revoked', revoked.secret, 'revoked_key'],
      ['empty', '', 'missing_credentials'],
      ['over-long', `trb_${'x'.repeat(MAX_SECRET_CHARS)}`, 'malformed_credentials'],
      ['longest allowed, unknown', 'x'.repeat(MAX_SECRET_CHARS), 'unknown_key'],
    ];
    for (const [what, secret, reason] of cases) {
      let caught: unknown;
      try {
        registry.authenticate(secret);
      } catch (err) {
        caught = err;
      }
      expect(caught, what).toBeInstanceOf(AuthError);
      expect((caught as AuthError).reason, what).toBe(reason);
      if (secret.length > 8) expect((caught as AuthError).message, what).not.toContain(secret.slice(4));
    }

    expect(registry.authenticate(expiring.secret).id).toBe(expiring.record.id);
    clock.advance(999);
    expect(registry.authenticate(expiring.secret).id).toBe(expiring.record.id);
    clock.advance(1);
    expect(reasonOf(() => registry.authenticate(expiring.secret))).toBe('expired_key');
  });

  it('property: random strings never authenticate and never throw anything but AuthError', async () => {
    const { store } = await freshStore();
    const registry = await registryOn(store);
    const secrets = new Set<string>();
    for (let i = 0; i < 3; i++) {
      secrets.add((await registry.create('api_key', { name: `k${i}` })).secret);
      secrets.add((await registry.create('virtual_key', { name: `v${i}` })).secret);
    }
    const b64url = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');
    const lookalike = fc
      .tuple(fc.constantFrom('trb_', 'tvk_'), fc.string({ unit: b64url, minLength: 40, maxLength: 46 }))
      .map(([p, body]) => p + body);
    const anyString = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 100 }), lookalike);
    const allowed = new Set<AuthFailureReason>(['unknown_key', 'missing_credentials', 'malformed_credentials']);
    fc.assert(
      fc.property(anyString, (s) => {
        fc.pre(!secrets.has(s));
        try {
          registry.authenticate(s);
          return false;
        } catch (err) {
          return err instanceof AuthError && allowed.has(err.reason) && (s.length < 12 || !err.message.includes(s));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('parseIsoTimestamp accepts offsets and fractions, refuses impossible dates and other formats', () => {
    expect(parseIsoTimestamp('2026-03-01T12:00:00Z')).toBe(Date.UTC(2026, 2, 1, 12));
    expect(parseIsoTimestamp('2026-03-01T13:00+01:00')).toBe(Date.UTC(2026, 2, 1, 12));
    expect(parseIsoTimestamp('2026-03-01T12:00:00.250Z')).toBe(Date.UTC(2026, 2, 1, 12, 0, 0, 250));
    for (const bad of ['2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-03-01T24:00:00Z', '2026-03-01', '2026-03-01T12:00:00', 'tomorrow', '1772366400000']) {
      expect(parseIsoTimestamp(bad), bad).toBeUndefined();
    }
  });
});

describe('key management routes', () => {
  interface Reply {
    status: number;
    json: Record<string, unknown>;
    text: string;
    headers: readonly (readonly [string, string])[];
  }

  async function setup(): Promise<{ registry: KeyRegistry; call: (method: string, p: string, body?: unknown) => Promise<Reply>; events: GatewayEvent[] }> {
    const { store } = await freshStore();
    const registry = await registryOn(store);
    const bus = new EventBus();
    const events: GatewayEvent[] = [];
    bus.events$.subscribe((e) => events.push(e));
    const rest = new RestRouter(silent);
    new KeyAdmin(registry, bus, silent).register(rest);
    const call = async (method: string, p: string, body?: unknown): Promise<Reply> => {
      const input: HttpInput = {
        method,
        path: p,
        query: '',
        headers: { ...emptyHeaders(), accept: 'application/json', contentType: 'application/json', host: 'localhost' },
        body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
      };
      const effect = await firstValueFrom(rest.handle(input));
      if (effect.kind !== 'reply') throw new Error(`expected a reply, got ${effect.kind}`);
      return { status: effect.status, json: JSON.parse(effect.body) as Record<string, unknown>, text: effect.body, headers: effect.headers };
    };
    return { registry, call, events };
  }

  it('POST /api/auth/keys → 201 with the public view, the secret once, a note and no-store', async () => {
    const { registry, call, events } = await setup();
    const r = await call('POST', '/api/auth/keys', { name: 'ci', role: 'admin', tenant_id: 'acme', rate_limits: { requests_per_hour: 500 }, expires_at: '2099-12-31T23:59:59Z' });
    expect(r.status).toBe(201);
    const secret = r.json['secret'] as string;
    expect(secret).toMatch(/^trb_[A-Za-z0-9_-]{43}$/);
    expect(r.json['note']).toBe(SECRET_NOTE);
    const key = r.json['key'] as Record<string, unknown>;
    expect(key).not.toHaveProperty('hash');
    expect(key).toMatchObject({ kind: 'api_key', name: 'ci', role: 'admin', tenant_id: 'acme', rate_limits: { requests_per_hour: 500 }, expires_at: '2099-12-31T23:59:59.000Z', prefix: secret.slice(0, 12) });
    expect(r.headers).toContainEqual(['Cache-Control', 'no-store']);
    expect(registry.authenticate(secret).id).toBe(key['id']);
    expect(events.map((e) => e.event_type === 'StoreChanged' && e.tags)).toEqual([['api_keys']]);

    const v = await call('POST', '/api/auth/virtual-keys', { name: 'team a' });
    expect(v.status).toBe(201);
    expect(v.json['secret']).toMatch(/^tvk_[A-Za-z0-9_-]{43}$/);
    expect(v.json['virtual_key']).toMatchObject({ kind: 'virtual_key', role: 'user', tenant_id: 'default' });
    expect(v.json['virtual_key']).not.toHaveProperty('hash');
    expect(events.map((e) => e.event_type === 'StoreChanged' && e.tags)).toEqual([['api_keys'], ['virtual_keys']]);
  });

  it('GET lists and single keys carry neither hash nor secret', async () => {
    const { registry, call } = await setup();
    const made = [];
    for (const name of ['a', 'b']) made.push(await call('POST', '/api/auth/keys', { name }));
    const vk = await call('POST', '/api/auth/virtual-keys', { name: 'v' });
    const list = await call('GET', '/api/auth/keys');
    expect(list.status).toBe(200);
    expect(list.json['count']).toBe(2);
    expect((list.json['keys'] as Record<string, unknown>[]).map((k) => k['name']).sort()).toEqual(['a', 'b']);
    const vlist = await call('GET', '/api/auth/virtual-keys');
    expect(vlist.json).toMatchObject({ count: 1, virtual_keys: [{ name: 'v' }] });
    const id = (made[0]!.json['key'] as { id: string }).id;
    const one = await call('GET', `/api/auth/keys/${id}`);
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ id, name: 'a' });
    for (const text of [list.text, vlist.text, one.text]) {
      expect(text).not.toContain('"hash"');
      for (const r of [...made, vk]) {
        const secret = r.json['secret'] as string;
        expect(text).not.toContain(secret.slice(4));
        expect(text).not.toContain(registry.authenticate(secret).hash);
      }
    }
  });

  it('DELETE revokes (then authenticate throws revoked_key), is idempotent, and 404s unknown ids', async () => {
    const { registry, call, events } = await setup();
    const made = await call('POST', '/api/auth/keys', { name: 'x' });
    const id = (made.json['key'] as { id: string }).id;
    const del = await call('DELETE', `/api/auth/keys/${id}`);
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ status: 'revoked', id });
    expect(reasonOf(() => registry.authenticate(made.json['secret'] as string))).toBe('revoked_key');
    expect(((await call('GET', `/api/auth/keys/${id}`)).json['revoked_at'] as string | undefined) ?? '').toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await call('DELETE', `/api/auth/keys/${id}`)).json).toEqual({ status: 'revoked', id });
    expect(events.filter((e) => e.event_type === 'StoreChanged')).toHaveLength(2);

    const vk = await call('POST', '/api/auth/virtual-keys', { name: 'v' });
    const vid = (vk.json['virtual_key'] as { id: string }).id;
    expect((await call('DELETE', `/api/auth/virtual-keys/${vid}`)).json).toEqual({ status: 'revoked', id: vid });
    expect(registry.hasVirtualKey(vid)).toBe(false);
    expect(events.map((e) => e.event_type === 'StoreChanged' && e.tags).at(-1)).toEqual(['virtual_keys']);

    for (const [method, p] of [
      ['GET', '/api/auth/keys/key_ffffffffffffffff'],
      ['DELETE', '/api/auth/keys/key_ffffffffffffffff'],
      ['GET', `/api/auth/keys/${vid}`],
      ['GET', '/api/auth/virtual-keys/vk_ffffffffffffffff'],
      ['DELETE', `/api/auth/virtual-keys/${id}`],
    ] as const) {
      const r = await call(method, p);
      expect(r.status, `${method} ${p}`).toBe(404);
      expect(r.json['code']).toBe('NOT_FOUND');
      expect(r.json['details']).toEqual({ id: p.split('/').at(-1) });
    }
    expect((await call('GET', '/api/auth/keys/nope')).json['error']).toBe('API key not found');
    expect((await call('GET', '/api/auth/virtual-keys/nope')).json['error']).toBe('Virtual key not found');
  });

  const badBodies: [string, string, unknown, string][] = [
    ['unknown field', '/api/auth/keys', { name: 'x', colour: 'red' }, 'colour: unknown field'],
    ['unknown rate limit field', '/api/auth/keys', { name: 'x', rate_limits: { per_day: 3 } }, 'rate_limits.per_day: unknown field'],
    ['bad role', '/api/auth/keys', { name: 'x', role: 'root' }, 'role: expected "admin" | "user"'],
    ['negative limit', '/api/auth/keys', { name: 'x', rate_limits: { requests_per_hour: -1 } }, 'rate_limits.requests_per_hour'],
    ['fractional limit', '/api/auth/keys', { name: 'x', rate_limits: { burst_per_minute: 1.5 } }, 'rate_limits.burst_per_minute'],
    ['zero limit', '/api/auth/virtual-keys', { name: 'x', rate_limits: { tool_executions_per_hour: 0 } }, 'rate_limits.tool_executions_per_hour'],
    ['past expires_at', '/api/auth/keys', { name: 'x', expires_at: '2020-01-01T00:00:00Z' }, 'expires_at: must be in the future'],
    ['malformed expires_at', '/api/auth/keys', { name: 'x', expires_at: 'next week' }, 'expires_at'],
    ['missing name', '/api/auth/keys', { role: 'user' }, 'name'],
    ['empty name', '/api/auth/keys', { name: '' }, 'name'],
    ['long name', '/api/auth/virtual-keys', { name: 'n'.repeat(129) }, 'name'],
    ['bad tenant', '/api/auth/keys', { name: 'x', tenant_id: 'a/b' }, 'tenant_id'],
    ['role on a virtual key', '/api/auth/virtual-keys', { name: 'x', role: 'user' }, 'role: unknown field'],
    ['null field', '/api/auth/keys', { name: 'x', expires_at: null }, 'expires_at'],
    ['array body', '/api/auth/keys', ['x'], '(body)'],
  ];

  it.each(badBodies)('%s → 400 VALIDATION_ERROR naming the field', async (_what, p, body, mentions) => {
    const { call, events } = await setup();
    const r = await call('POST', p, body);
    expect(r.status).toBe(400);
    expect(r.json['code']).toBe('VALIDATION_ERROR');
    const problems = (r.json['details'] as { problems: string[] }).problems;
    expect(problems.some((line) => line.startsWith(mentions) || line.includes(mentions)), JSON.stringify(problems)).toBe(true);
    expect((await call('GET', '/api/auth/keys')).json['count']).toBe(0);
    expect((await call('GET', '/api/auth/virtual-keys')).json['count']).toBe(0);
    expect(events).toEqual([]);
  });

  it('the body decoder reports every problem at once', () => {
    let caught: unknown;
    try {
      decodeCreateApiKey({ name: '', role: 'root', extra: 1, rate_limits: { requests_per_hour: -5, x: 1 } }, Date.now());
    } catch (err) {
      caught = err;
    }
    const problems = (caught as { details: { problems: string[] } }).details.problems.map((l) => l.split(':')[0]);
    expect(problems).toEqual(expect.arrayContaining(['name', 'role', 'extra', 'rate_limits.requests_per_hour', 'rate_limits.x']));
  });
});
