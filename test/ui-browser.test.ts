/**
 * The dashboard at /ui in a real browser (headless Chromium driven by playwright-core) against a
 * real gateway with the default upstreams (server-everything and server-memory over stdio, the
 * in-process demo), auth on. Screenshots of every page go to test/artifacts/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { BrowserContext, Page } from 'playwright-core';
import { packageBin } from '../src/config/default.js';
import { demoClient, everythingClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { launchBrowser, watchedPage, type PageProblems, type TestBrowser } from './helpers/browser.js';

const ADMIN_PASSWORD = 'dashboard test password 42';
const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const PAGES = ['overview', 'tools', 'events', 'log', 'upstreams', 'keys', 'agents'];

let gw: TestGateway;
let tb: TestBrowser;
let admin: BrowserContext;
let memDir: string;
let userKey: string;

const basic = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };

async function apiAs(headers: Record<string, string>, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const r = await send(`${gw.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, json: (r.json ?? {}) as Record<string, unknown>, headers: r.headers };
}

/** Signs `context` in through the sign-in form; returns the page (on the overview). */
async function signIn(context: BrowserContext, how: { password: string } | { key: string }): Promise<{ page: Page; problems: PageProblems }> {
  const w = await watchedPage(context, gw.url);
  await w.page.goto(`${gw.url}/ui/`);
  await w.page.waitForSelector('#signin-form');
  if ('key' in how) {
    await w.page.getByRole('button', { name: 'API key' }).click();
    await w.page.fill('input[name=key]', how.key);
  } else {
    await w.page.fill('input[name=password]', how.password);
  }
  await w.page.click('#signin-form button[type=submit]');
  await w.page.waitForSelector('nav a[data-page=overview]');
  return w;
}

async function goTo(page: Page, id: string): Promise<void> {
  await page.click(`nav a[data-page=${id}]`);
  await page.waitForSelector(`main[data-page=${id}]`);
}

function clean(problems: PageProblems): void {
  expect(problems.pageErrors).toEqual([]);
  expect(problems.consoleErrors).toEqual([]);
  expect(problems.foreignRequests).toEqual([]);
}

beforeAll(async () => {
  memDir = mkdtempSync(join(tmpdir(), 'tributary-ui-mem-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  gw = await startTestGateway(
    [
      everythingClient('everything'),
      { name: 'memory', connection_type: 'stdio', stdio_config: { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-memory')], envs: [`MEMORY_FILE_PATH=${join(memDir, 'memory.jsonl')}`] } },
      demoClient('demo'),
    ],
    {},
    { auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 100000, requests_per_hour: 1000000, tool_executions_per_hour: 100000 } } },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
  );
  const k = await apiAs(basic, 'POST', '/api/auth/keys', { name: 'acme-user', role: 'user', tenant_id: 'acme' });
  expect(k.status).toBe(201);
  userKey = k.json['secret'] as string;
  // one agent per tenant: the user must see only its own
  expect((await apiAs(basic, 'POST', '/api/v1/agents', { name: 'default-tenant-agent', model: 'm' })).status).toBe(201);
  expect((await apiAs({ authorization: `Bearer ${userKey}` }, 'POST', '/api/v1/agents', { name: 'acme-agent', model: 'm' })).status).toBe(201);
  tb = await launchBrowser();
  admin = await tb.browser.newContext({ viewport: { width: 1280, height: 860 } });
  // every test below uses this signed-in admin browser (the sign-in form has its own test)
  const signedIn = await signIn(admin, { password: ADMIN_PASSWORD });
  await signedIn.page.close();
}, 60_000);

afterAll(async () => {
  await tb?.close();
  await gw?.stop();
  rmSync(memDir, { recursive: true, force: true });
});

describe('dashboard static files', () => {
  it('serves /ui with a strict CSP, ETag revalidation (304) and gzip; every script and style comes from the gateway', async () => {
    const r = await fetch(`${gw.url}/ui`, { headers: { 'accept-encoding': 'gzip' } });
    const html = await r.text();
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/html');
    const csp = r.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    const etag = r.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const again = await fetch(`${gw.url}/ui/`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    for (const src of [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '')) expect(src.startsWith('/ui/') || src.startsWith('data:')).toBe(true);
    // node's fetch decodes gzip: ask with a raw request to see the encoding and the smaller body
    const raw = await send(`${gw.url}/ui/vendor/uPlot.iife.min.js`, { headers: { 'accept-encoding': 'identity' } });
    expect(raw.status).toBe(200);
    const { request } = await import('node:http');
    const gz = await new Promise<{ enc: string | undefined; len: number }>((resolve, reject) => {
      request(`${gw.url}/ui/vendor/uPlot.iife.min.js`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
        let len = 0;
        res.on('data', (c: Buffer) => (len += c.length));
        res.on('end', () => resolve({ enc: res.headers['content-encoding'], len }));
      })
        .on('error', reject)
        .end();
    });
    expect(gz.enc).toBe('gzip');
    expect(gz.len).toBeLessThan(raw.text.length / 2);
    expect((await fetch(`${gw.url}/ui/nope.js`)).status).toBe(404);
    expect((await fetch(`${gw.url}/ui/app.js`, { method: 'POST' })).status).toBe(405);
  });
});

describe('dashboard in a browser', () => {
  it('asks to sign in; a wrong password shows the API error; the admin password signs in with an HttpOnly SameSite=Strict cookie', async () => {
    const fresh = await tb.browser.newContext();
    const { page, problems } = await watchedPage(fresh, gw.url);
    await page.goto(`${gw.url}/ui/`);
    await page.waitForSelector('#signin-form');
    await page.fill('input[name=password]', 'wrong password');
    await page.click('#signin-form button[type=submit]');
    await expect.poll(() => page.textContent('[role=alert]')).toContain('Wrong user name or password');
    await page.fill('input[name=password]', ADMIN_PASSWORD);
    await page.click('#signin-form button[type=submit]');
    await page.waitForSelector('nav a[data-page=keys]');
    const cookies = await fresh.cookies(gw.url);
    const c = cookies.find((x) => x.name === 'tributary_ui');
    expect(c?.httpOnly).toBe(true);
    expect(c?.sameSite).toBe('Strict');
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(await page.evaluate('localStorage.length')).toBe(0);
    // the only console error is the refused sign-in request itself
    expect(problems.consoleErrors.every((e) => e.includes('401'))).toBe(true);
    expect(problems.pageErrors).toEqual([]);
    // sign-out clears the cookie and shows the form again
    await page.click('nav button.link');
    await page.waitForSelector('#signin-form');
    expect((await fresh.cookies(gw.url)).some((x) => x.name === 'tributary_ui')).toBe(false);
    await fresh.close();
  });

  it('overview shows the default upstreams as connected, with their tool counts', async () => {
    const { page, problems } = await watchedPage(admin, gw.url);
    await page.goto(`${gw.url}/ui/#/overview`);
    for (const name of ['everything', 'memory', 'demo']) {
      await page.waitForSelector(`.card[data-upstream=${name}] .state .b-connected`);
      expect(Number(await page.textContent(`.card[data-upstream=${name}] .tool-count`))).toBeGreaterThan(0);
    }
    await page.waitForSelector('.chart canvas');
    clean(problems);
    await page.close();
  });

  it('calling everything-echo from the tools page shows the result; the call is on the live events page and in the tool log within 1 s', async () => {
    const events = await watchedPage(admin, gw.url);
    await events.page.goto(`${gw.url}/ui/#/events`);
    await events.page.locator('#ev-status', { hasText: /^open$/ }).waitFor();
    const { page, problems } = await watchedPage(admin, gw.url);
    await page.goto(`${gw.url}/ui/#/tools`);
    await page.fill('#tool-filter', 'everything-echo');
    await page.click('a[data-tool=everything-echo]');
    await page.fill('#arg-message', 'hello from the dashboard');
    await page.click('#tryit-form button[type=submit]');
    await page.waitForSelector('#tool-result');
    expect(await page.textContent('#tool-result .result-text')).toBe('Echo: hello from the dashboard');
    // the live page was open before the call: the event is pushed to it
    await events.page.waitForSelector('#events-table tr[data-event=ToolInvocationCompleted]', { timeout: 1000 });
    expect(await events.page.textContent('#events-table tr[data-event=ToolInvocationCompleted]')).toContain('echo');
    await goTo(page, 'log');
    await page.waitForSelector('#log-table tr[data-tool=everything-echo]', { timeout: 1000 });
    await page.screenshot({ path: join(ARTIFACTS, 'ui-log.png'), fullPage: true });
    await events.page.screenshot({ path: join(ARTIFACTS, 'ui-events.png'), fullPage: true });
    clean(problems);
    clean(events.problems);
    await events.page.close();
    await page.close();
  });

  it('live events: paused, new events are held and counted; resumed, they appear; an event-type filter applies', async () => {
    const { page, problems } = await watchedPage(admin, gw.url);
    await page.goto(`${gw.url}/ui/#/events`);
    await page.locator('#ev-status', { hasText: /^open$/ }).waitFor();
    await page.click('#ev-pause');
    expect((await apiAs(basic, 'POST', '/api/v1/tools/demo/echo', { arguments: { message: 'while paused' } })).status).toBe(200);
    await page.locator('#ev-pause', { hasText: /Resume \([1-9]\d* held\)/ }).waitFor();
    expect(await page.locator('#events-table tr[data-event=ToolInvocationCompleted]').count()).toBe(0);
    await page.click('#ev-pause');
    await page.waitForSelector('#events-table tr[data-event=ToolInvocationCompleted]');
    // only tool calls of upstream everything from now on: the demo call before it never shows
    await page.fill('#ev-types', 'ToolInvocationCompleted');
    await page.fill('#ev-ids', 'everything');
    await page.click('#event-filters button[type=submit]');
    // the new subscription clears the table and the status in one render; "open" then means the
    // feed acknowledged the new filter (the feed sends everything until it has the subscribe)
    await page.locator('#events-table tbody tr').first().waitFor({ state: 'detached' });
    await page.locator('#ev-status', { hasText: /^open$/ }).waitFor();
    expect((await apiAs(basic, 'POST', '/api/v1/tools/demo/echo', { arguments: { message: 'filtered out' } })).status).toBe(200);
    expect((await apiAs(basic, 'POST', '/api/v1/tools/everything/echo', { arguments: { message: 'kept' } })).status).toBe(200);
    await page.waitForSelector('#events-table tr[data-event=ToolInvocationCompleted]');
    const upstreams = await page.locator('#events-table tbody tr td:nth-child(4)').allTextContents();
    expect(upstreams, (await page.locator('#events-table tbody tr').allTextContents()).join(' | ')).toEqual(['everything']);
    clean(problems);
    await page.close();
  });

  it('live events are sampled: a burst of calls arrives as bounded frames and the page says how many it left out', async () => {
    const { page, problems } = await watchedPage(admin, gw.url);
    await page.goto(`${gw.url}/ui/#/events`);
    await page.locator('#ev-status', { hasText: /^open$/ }).waitFor();
    const burst = 120;
    const answers = await Promise.all(Array.from({ length: burst }, (_, i) => apiAs(basic, 'POST', '/api/v1/tools/demo/echo', { arguments: { message: `burst ${i}` } })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    await page.locator('#ev-sampled', { hasText: /^\d+ of \d+ events not shown \(sampled\)$/ }).waitFor();
    const text = (await page.locator('#ev-sampled').textContent()) ?? '';
    const [left, matched] = (text.match(/\d+/g) ?? []).map(Number) as [number, number];
    expect(matched).toBeGreaterThanOrEqual(burst);
    expect(left).toBeGreaterThan(0);
    // every event the feed matched is either on the page (which keeps the newest 200 rows) or counted as left out
    const consistent = async (): Promise<boolean> => {
      const [l, m] = (((await page.locator('#ev-sampled').textContent()) ?? '').match(/\d+/g) ?? []).map(Number) as [number, number];
      return (await page.locator('#events-table tbody tr').count()) === Math.min(200, m - l);
    };
    await expect.poll(consistent).toBe(true);
    clean(problems);
    await page.close();
  });

  it('a bad field in the add-upstream form shows the API error next to it', async () => {
    const { page, problems } = await watchedPage(admin, gw.url);
    await page.goto(`${gw.url}/ui/#/upstreams`);
    await page.click('#add-upstream-open');
    await page.fill('#add-upstream input[name=name]', '1bad');
    await page.fill('#add-upstream input[name=command]', 'node');
    await page.click('#add-upstream button[type=submit]');
    await page.waitForSelector('.field-error[data-field=name]');
    expect(await page.textContent('.field-error[data-field=name]')).toContain('expected ClientName');
    // the browser logs the refused request (400); nothing else
    expect(problems.consoleErrors.length).toBeGreaterThan(0);
    expect(problems.consoleErrors.every((e) => e.includes('400'))).toBe(true);
    expect(problems.pageErrors).toEqual([]);
    await page.close();
  });

  it('adding server-memory through the upstreams page makes its tools appear', async () => {
    const { page, problems } = await watchedPage(admin, gw.url);
    await page.goto(`${gw.url}/ui/#/upstreams`);
    await page.click('#add-upstream-open');
    await page.fill('#add-upstream input[name=name]', 'memory2');
    await page.fill('#add-upstream input[name=command]', process.execPath);
    await page.fill('#add-upstream textarea[name=args]', packageBin('@modelcontextprotocol/server-memory'));
    await page.fill('#add-upstream textarea[name=envs]', `MEMORY_FILE_PATH=${join(memDir, 'memory2.jsonl')}`);
    await page.click('#add-upstream button[type=submit]');
    await page.waitForSelector('#upstreams-table tr[data-upstream=memory2] .b-connected', { timeout: 20_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'ui-upstreams.png'), fullPage: true });
    await goTo(page, 'tools');
    await page.selectOption('#tool-client', 'memory2');
    await page.waitForSelector('a[data-tool=memory2-read_graph]');
    clean(problems);
    await page.close();
  });

  it('the keys page shows a new key’s secret once, never again', async () => {
    const { page, problems } = await watchedPage(admin, gw.url);
    await page.goto(`${gw.url}/ui/#/keys`);
    const form = page.locator('section[data-kind=api_key] form');
    await form.locator('input[name=name]').fill('from-the-dashboard');
    await form.locator('button[type=submit]').click();
    const secret = (await page.locator('.secret-value').textContent()) ?? '';
    expect(secret).toMatch(/^trb_/);
    expect((await apiAs({ authorization: `Bearer ${secret}` }, 'GET', '/api/v1/agents')).status).toBe(200);
    await page.reload();
    await page.waitForSelector('section[data-kind=api_key] tr[data-key]');
    expect(await page.content()).not.toContain(secret);
    clean(problems);
    await page.close();
  });

  it('no console errors on any page; a screenshot of each', async () => {
    const { page, problems } = await watchedPage(admin, gw.url);
    await page.goto(`${gw.url}/ui/#/overview`);
    for (const id of PAGES) {
      await goTo(page, id);
      await page.waitForLoadState('networkidle');
      await expect.poll(() => page.textContent('main')).not.toContain('Loading');
      await page.screenshot({ path: join(ARTIFACTS, `ui-${id}.png`), fullPage: true });
    }
    clean(problems);
    await page.close();
  });

  it('a user-role key sees neither the admin pages nor another tenant’s data', async () => {
    const ctx = await tb.browser.newContext({ viewport: { width: 1280, height: 860 } });
    const { page, problems } = await signIn(ctx, { key: userKey });
    expect(await page.locator('nav a[data-page=keys]').count()).toBe(0);
    expect(await page.locator('nav a[data-page=upstreams]').count()).toBe(0);
    expect(await page.locator('nav a[data-page=log]').count()).toBe(0);
    await page.goto(`${gw.url}/ui/#/keys`);
    await page.waitForSelector('main[data-page=keys] [role=alert]');
    expect(await page.textContent('main[data-page=keys]')).toContain('needs an admin credential');
    // the API refuses the session too, not only the page
    const status = await page.evaluate(async () => (await fetch('/api/auth/keys')).status);
    expect(status).toBe(403);
    await goTo(page, 'agents');
    await page.waitForSelector('#agents-table tr[data-agent=acme-agent]');
    expect(await page.locator('#agents-table tr[data-agent=default-tenant-agent]').count()).toBe(0);
    await goTo(page, 'overview');
    await page.waitForSelector('.card[data-upstream=everything]');
    expect(await page.locator('.chart').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'ui-user-overview.png'), fullPage: true });
    // the one refused request above is the only console error
    expect(problems.consoleErrors.every((e) => e.includes('403'))).toBe(true);
    expect(problems.pageErrors).toEqual([]);
    await ctx.close();
  });

  it('the session cookie is refused on cross-origin state changes and WebSocket upgrades; a revoked key ends its session', async () => {
    const cookie = (await admin.cookies(gw.url)).find((c) => c.name === 'tributary_ui');
    expect(cookie).toBeDefined();
    const jar = { cookie: `tributary_ui=${cookie?.value ?? ''}` };
    const host = new URL(gw.url).host;
    expect((await apiAs({ ...jar, origin: 'http://evil.example' }, 'DELETE', '/api/mcp/client/nope')).status).toBe(403);
    expect((await apiAs(jar, 'DELETE', '/api/mcp/client/nope')).status).toBe(403);
    expect((await apiAs({ ...jar, origin: `http://${host}` }, 'DELETE', '/api/mcp/client/nope')).json['code']).toBe('CLIENT_NOT_FOUND');
    expect((await apiAs(jar, 'GET', '/api/mcp/clients')).status).toBe(200);
    expect((await apiAs({ origin: 'http://evil.example' }, 'POST', '/api/ui/session', { password: ADMIN_PASSWORD })).status).toBe(403);
    const upgrade = (origin: string): Promise<number | 'open'> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/api/ws/events`, { headers: { ...jar, origin } });
        ws.once('open', () => {
          ws.close();
          resolve('open');
        });
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          res.resume();
        });
        ws.once('error', reject);
      });
    expect(await upgrade('http://evil.example')).toBe(403);
    expect(await upgrade(`http://${host}`)).toBe('open');
    // a session of a key ends when the key is revoked
    const k = await apiAs(basic, 'POST', '/api/auth/keys', { name: 'short-lived', role: 'admin' });
    const origin = { origin: `http://${host}` };
    const signed = await apiAs(origin, 'POST', '/api/ui/session', { key: k.json['secret'] });
    expect(signed.status).toBe(200);
    const sid = /tributary_ui=([^;]+)/.exec(signed.headers.get('set-cookie') ?? '')?.[1] ?? '';
    expect((await apiAs({ cookie: `tributary_ui=${sid}` }, 'GET', '/api/mcp/clients')).status).toBe(200);
    expect((await apiAs(basic, 'DELETE', `/api/auth/keys/${(k.json['key'] as { id: string }).id}`)).status).toBe(200);
    expect((await apiAs({ cookie: `tributary_ui=${sid}` }, 'GET', '/api/mcp/clients')).status).toBe(401);
    // a virtual key cannot sign in
    const vk = await apiAs(basic, 'POST', '/api/auth/virtual-keys', { name: 'vk' });
    expect((await apiAs(origin, 'POST', '/api/ui/session', { key: vk.json['secret'] })).status).toBe(403);
  });
});

describe('dashboard with auth off on loopback', () => {
  it('opens the overview without a sign-in', async () => {
    const open = await startTestGateway([demoClient('demo')]);
    try {
      const ctx = await tb.browser.newContext();
      const { page, problems } = await watchedPage(ctx, open.url);
      await page.goto(`${open.url}/ui`);
      await page.waitForSelector('.card[data-upstream=demo] .b-connected');
      expect(await page.locator('#signin-form').count()).toBe(0);
      expect(await page.textContent('nav .who')).toContain('auth off');
      clean(problems);
      await ctx.close();
    } finally {
      await open.stop();
    }
  });
});
