/**
 * Dashboard sessions (idle and absolute expiry, revocation, cookie attributes and parsing), the
 * same-origin check, and the static file server (ETag, gzip, CSP, 404/405) without a browser.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cookieValue, UI_SESSION_COOKIE, UiSessionStore } from '../src/auth/ui-session.js';
import type { Principal } from '../src/base/principal.js';
import { isSameOrigin, needsOriginCheck } from '../src/handlers/ui/access.js';
import { StaticAssets } from '../src/handlers/ui/static.js';

const P: Principal = { kind: 'api_key', id: 'key:k1', tenantId: 'acme', role: 'user', name: 'k1' };

describe('UiSessionStore', () => {
  it('ends a session after the idle time, and at the absolute end however busy', () => {
    let now = 1_000_000;
    const s = new UiSessionStore({ idleMs: 1000, maxMs: 5000 }, () => now);
    const id = s.create(P);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    now += 999;
    expect(s.touch(id)?.principal).toBe(P);
    now += 999;
    expect(s.touch(id)).toBeDefined();
    now += 1000;
    expect(s.touch(id)).toBeUndefined();
    const busy = s.create(P);
    // used every 600 ms (never idle for 1000 ms): alive until 5000 ms after the sign-in, then gone
    for (let i = 1; i <= 9; i++) {
      now += 600;
      expect(s.touch(busy) !== undefined).toBe(i * 600 < 5000);
    }
    expect(s.size).toBe(0);
  });

  it('ends a session whose credential no longer holds, and at a JWT expiry before its own end', () => {
    let valid = true;
    let now = 0;
    const s = new UiSessionStore({ idleMs: 10_000, maxMs: 100_000 }, () => now);
    const id = s.create(P, () => valid);
    expect(s.touch(id)).toBeDefined();
    valid = false;
    expect(s.touch(id)).toBeUndefined();
    const capped = s.create(P, () => true, 500);
    now = 499;
    expect(s.touch(capped)).toBeDefined();
    now = 500;
    expect(s.touch(capped)).toBeUndefined();
  });

  it('sign-out ends it; unknown, empty and oversized ids are refused; sweep forgets idle sessions', () => {
    let now = 0;
    const s = new UiSessionStore({ idleMs: 100, maxMs: 1000 }, () => now);
    const a = s.create(P);
    const b = s.create(P);
    expect(s.end(a)).toBe(true);
    expect(s.touch(a)).toBeUndefined();
    expect(s.touch('')).toBeUndefined();
    expect(s.touch('x'.repeat(5000))).toBeUndefined();
    now = 200;
    expect(s.sweep()).toBe(1);
    expect(s.touch(b)).toBeUndefined();
  });

  it('the view carries no secret; the cookie is HttpOnly, SameSite=Strict, Path=/ (Secure over HTTPS)', () => {
    const s = new UiSessionStore();
    const id = s.create(P);
    const view = s.view(s.touch(id) ?? expect.unreachable());
    expect(JSON.stringify(view)).not.toContain(id);
    expect(view).toMatchObject({ name: 'k1', role: 'user', tenant_id: 'acme', kind: 'api_key' });
    expect(UiSessionStore.cookie(id, false)).toBe(`${UI_SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict`);
    expect(UiSessionStore.cookie(id, true)).toContain('; Secure');
    expect(UiSessionStore.clearCookie(false)).toContain('Max-Age=0');
  });
});

describe('cookieValue', () => {
  it('finds a cookie among others, and nothing in look-alikes', () => {
    expect(cookieValue('a=1; tributary_ui=xyz; b=2', 'tributary_ui')).toBe('xyz');
    expect(cookieValue('tributary_ui=xyz', 'tributary_ui')).toBe('xyz');
    expect(cookieValue('xtributary_ui=1; tributary_uix=2', 'tributary_ui')).toBe('');
    expect(cookieValue(undefined, 'tributary_ui')).toBe('');
    expect(cookieValue('garbage;;;=', 'tributary_ui')).toBe('');
  });

  it('returns the value set among random other cookies, and never throws on random headers', () => {
    const name = fc.stringMatching(/^[a-z]{1,8}$/).filter((n) => n !== 'tributary_ui');
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.stringMatching(/^[A-Za-z0-9_-]{0,20}$/))), fc.stringMatching(/^[A-Za-z0-9_-]{1,43}$/), (others, value) => {
        const header = [...others.map(([k, v]) => `${k}=${v}`), `tributary_ui=${value}`].join('; ');
        expect(cookieValue(header, 'tributary_ui')).toBe(value);
      }),
    );
    fc.assert(fc.property(fc.string(), (h) => typeof cookieValue(h, 'tributary_ui') === 'string'));
  });
});

describe('origin checks', () => {
  it('same origin: the Origin names the Host, with http or https', () => {
    expect(isSameOrigin({ origin: 'http://127.0.0.1:8080', host: '127.0.0.1:8080' })).toBe(true);
    expect(isSameOrigin({ origin: 'https://gw.example', host: 'GW.example' })).toBe(true);
    expect(isSameOrigin({ origin: 'http://evil.example', host: '127.0.0.1:8080' })).toBe(false);
    expect(isSameOrigin({ origin: 'http://127.0.0.1:8081', host: '127.0.0.1:8080' })).toBe(false);
    expect(isSameOrigin({ origin: '', host: '127.0.0.1:8080' })).toBe(false);
    expect(isSameOrigin({ origin: 'null', host: '127.0.0.1:8080' })).toBe(false);
  });

  it('state changes and WebSocket upgrades need it; reads do not', () => {
    expect(needsOriginCheck({ method: 'GET', path: '/api/mcp/clients' })).toBe(false);
    expect(needsOriginCheck({ method: 'POST', path: '/api/mcp/client' })).toBe(true);
    expect(needsOriginCheck({ method: 'DELETE', path: '/api/auth/keys/x' })).toBe(true);
    expect(needsOriginCheck({ method: 'GET', path: '/api/ws/events' })).toBe(true);
    expect(needsOriginCheck({ method: 'GET', path: '/ws' })).toBe(true);
  });
});

describe('StaticAssets', () => {
  it('serves the real dashboard: index for app routes, gzip, ETag → 304, CSP with the import map hash, 404, 405', () => {
    const a = new StaticAssets();
    const index = a.serve('GET', '/ui', '', '');
    expect(index.status).toBe(200);
    const html = String(index.body);
    expect(html).toContain('<script type="importmap">');
    expect(html).not.toContain('<!-- importmap -->');
    expect(a.serve('GET', '/ui/tools', '', '').body).toEqual(index.body);
    const header = (r: { headers: readonly (readonly [string, string])[] }, k: string): string | undefined => r.headers.find(([n]) => n === k)?.[1];
    const etag = header(index, 'ETag') ?? '';
    expect(a.serve('GET', '/ui/', '', etag).status).toBe(304);
    expect(a.serve('GET', '/ui/', '', `"other", W/${etag}`).status).toBe(304);
    const gz = a.serve('GET', '/ui/vendor/preact.module.js', 'gzip, deflate, br', '');
    expect(header(gz, 'Content-Encoding')).toBe('gzip');
    const plain = a.serve('GET', '/ui/vendor/preact.module.js', '', '');
    expect(header(plain, 'Content-Encoding')).toBeUndefined();
    expect(gunzipSync(gz.body as Buffer).equals(plain.body as Buffer)).toBe(true);
    expect(a.serve('HEAD', '/ui/app.js', '', '').body).toBe('');
    expect(a.serve('GET', '/ui/missing.js', '', '').status).toBe(404);
    expect(a.serve('PUT', '/ui/app.js', '', '').status).toBe(405);
    expect(a.csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/]+=*'/);
    for (const s of a.sizes()) expect(s.gzip_bytes).toBeLessThanOrEqual(s.bytes);
  });

  it('refuses to start without index.html or its import-map marker', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-ui-'));
    try {
      expect(() => new StaticAssets(dir + '/')).toThrow(/no index.html/);
      writeFileSync(join(dir, 'index.html'), '<html></html>');
      expect(() => new StaticAssets(dir + '/')).toThrow(/importmap/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
