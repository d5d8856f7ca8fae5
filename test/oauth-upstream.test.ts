/**
 * Upstream OAuth (`auth_type: "oauth"`) against real parts: oidc-provider on loopback as the
 * authorization server and a real SDK Streamable HTTP MCP server that requires its tokens and
 * publishes RFC 9728 metadata. The client is created through the management API (discovery,
 * dynamic registration), authorized once through the browser flow (driven headlessly through the
 * provider's interaction endpoint), then used by two downstream users; a 401 and a near expiry
 * both refresh without a failed call; a revoked refresh token ends in `needs_authorization` and a
 * clear error; re-authorization works; deletion revokes the tokens; client credentials work too.
 * No token or secret appears in logs, API answers or the store files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { authorizeInBrowser, startAuthServer, startProtectedUpstream, type ProtectedUpstream, type TestAuthServer } from './helpers/oauth.js';
import { waitFor } from './helpers/wait.js';
import { launchBrowser } from './helpers/browser.js';

type Json = Record<string, unknown>;
const ADMIN_PASSWORD = 'oauth-test-admin-password-1';
const JWT_SECRET = 'an-oauth-test-only-hs256-secret-of-32-bytes!!';
const M2M_SECRET = 'm2m-secret-0123456789abcdef0123456789';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`, 'content-type': 'application/json' };

let as: TestAuthServer;
let upstream: ProtectedUpstream;
let gw: TestGateway;
/** Every API answer body seen, to grep for secrets at the end. */
const answers: string[] = [];

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await send(`${gw.url}${path}`, { method, headers: ADMIN, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  answers.push(r.text);
  return { status: r.status, json: r.json as Json };
}

async function userClient(sub: string): Promise<Client> {
  const token = await new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(JWT_SECRET));
  const client = new Client({ name: `user-${sub}`, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

async function whoami(client: Client): Promise<string> {
  const r = await client.callTool({ name: 'prot-whoami', arguments: {} });
  answers.push(JSON.stringify(r));
  expect(r.isError ?? false).toBe(false);
  return (r.content as { text: string }[])[0]?.text ?? '';
}

beforeAll(async () => {
  as = await startAuthServer();
  upstream = await startProtectedUpstream(as);
  gw = await startTestGateway([], {}, { auth: { disabled: false, admin: { username: 'admin' }, jwt: { hs256_secret: JWT_SECRET } }, oauth: { refresh_skew_s: 60 } }, { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await as?.close();
});

const refreshes = (): number => as.grants.get('refresh_token') ?? 0;

describe('upstream auth_type oauth', () => {
  let id = '';
  let alice: Client;
  let bob: Client;

  it('creating the client discovers the server, registers dynamically and answers the authorization URL', async () => {
    const r = await api('POST', '/api/mcp/client', { name: 'prot', connection_type: 'http', connection_string: upstream.url, auth_type: 'oauth' });
    expect(r.status).toBe(201);
    expect(r.json['status']).toBe('pending_oauth');
    expect(r.json['oauth_status']).toBe('needs_authorization');
    const url = new URL(String(r.json['authorize_url']));
    expect(url.origin).toBe(as.issuer);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('resource')).toBe(upstream.url);
    expect(url.searchParams.get('redirect_uri')).toBe(`${gw.url}/api/oauth/callback`);
    expect(url.searchParams.get('client_id')).toMatch(/^\S{8,}$/);
    id = String((r.json['config'] as Json)['client_id']);
    expect((r.json['config'] as Json)['oauth_config_id']).toBeUndefined();

    // one authorization in the browser; the callback completes it and the client connects
    const back = await authorizeInBrowser(as, url.href, `${gw.url}/api/oauth/callback`, 'root-admin');
    const cb = await send(back, {});
    answers.push(cb.text);
    expect(cb.status).toBe(200);
    expect(cb.json).toMatchObject({ status: 'authorized', client: 'prot' });
    await waitFor(() => gw.manager.get('prot')?.state === 'connected');
    const view = await api('GET', `/api/mcp/client/${id}`);
    expect(view.json['oauth_status']).toBe('authorized');
    expect((view.json['config'] as Json)['oauth_config_id']).toEqual(expect.any(String));
    expect((view.json['tools'] as Json[]).map((t) => t['name']).sort()).toEqual(['echo', 'whoami']);
    // the state is single-use
    expect((await send(back, {})).status).toBe(400);
  }, 30_000);

  it('the same authorization in a real browser (Chromium): it follows the authorization server to the gateway callback, and the tools answer through /mcp', async () => {
    const r = await api('POST', '/api/mcp/client', { name: 'protweb', connection_type: 'http', connection_string: upstream.url, auth_type: 'oauth' });
    expect(r.status).toBe(201);
    expect(r.json['oauth_status']).toBe('needs_authorization');
    as.user = 'browser-admin';
    const tb = await launchBrowser();
    try {
      const page = await tb.browser.newPage();
      const callback = page.waitForResponse((res) => res.url().startsWith(`${gw.url}/api/oauth/callback`));
      await page.goto(String(r.json['authorize_url']));
      const answer = await callback;
      expect(answer.status()).toBe(200);
      expect(JSON.parse(await answer.text())).toMatchObject({ status: 'authorized', client: 'protweb' });
    } finally {
      await tb.close();
    }
    await waitFor(() => gw.manager.get('protweb')?.state === 'connected');
    const client = await userClient('carol');
    try {
      const who = await client.callTool({ name: 'protweb-whoami', arguments: {} });
      expect(JSON.stringify(who.content)).toContain('browser-admin');
    } finally {
      await client.close();
    }
    expect((await api('DELETE', `/api/mcp/client/${String((r.json['config'] as Json)['client_id'])}`)).status).toBeLessThan(300);
  }, 60_000);

  it('two downstream users share the one authorization', async () => {
    alice = await userClient('alice');
    bob = await userClient('bob');
    expect(await whoami(alice)).toBe('root-admin');
    expect(await whoami(bob)).toBe('root-admin');
    expect(refreshes()).toBe(0);
  });

  it('a 401 from the upstream refreshes the token once and repeats the call', async () => {
    const before = { refresh: refreshes(), unauthorized: upstream.unauthorized.count };
    upstream.revoked.add(upstream.seen.last);
    // concurrent calls: one refresh in flight serves all of them
    const names = await Promise.all([whoami(alice), whoami(bob), whoami(alice)]);
    expect(names).toEqual(['root-admin', 'root-admin', 'root-admin']);
    expect(upstream.unauthorized.count).toBeGreaterThan(before.unauthorized);
    expect(refreshes()).toBe(before.refresh + 1);
  });

  it('a token near its expiry is refreshed before it is used, without a failed call', async () => {
    as.accessTokenTtlS = 30; // below refresh_skew_s (60)
    upstream.revoked.add(upstream.seen.last);
    expect(await whoami(alice)).toBe('root-admin'); // 401 → refresh: the new token lives 30 s
    as.accessTokenTtlS = 3600;
    const before = { refresh: refreshes(), unauthorized: upstream.unauthorized.count };
    expect(await whoami(bob)).toBe('root-admin');
    expect(refreshes()).toBe(before.refresh + 1);
    expect(upstream.unauthorized.count).toBe(before.unauthorized);
  });

  it('a revoked refresh token ends in needs_authorization and a clear error; authorizing again works', async () => {
    for (const t of [...as.refreshTokens]) await t.destroy();
    upstream.revoked.add(upstream.seen.last);
    const r = await alice.callTool({ name: 'prot-whoami', arguments: {} }).then(
      (x) => JSON.stringify(x),
      (err: unknown) => String(err),
    );
    answers.push(r);
    expect(r).toMatch(/needs an OAuth authorization/);
    const view = await api('GET', `/api/mcp/client/${id}`);
    expect(view.json['oauth_status']).toBe('needs_authorization');

    const again = await api('POST', `/api/mcp/client/${id}/oauth/authorize`);
    expect(again.status).toBe(200);
    const back = await authorizeInBrowser(as, String(again.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'root-admin-2');
    expect((await send(back, {})).status).toBe(200);
    await waitFor(() => gw.manager.get('prot')?.state === 'connected');
    expect(await whoami(alice)).toBe('root-admin-2');
  }, 30_000);

  it('deleting the client revokes its tokens at the authorization server', async () => {
    const before = as.destroyed.count;
    expect(as.refreshTokens.size).toBeGreaterThan(0);
    expect((await api('DELETE', `/api/mcp/client/${id}`)).status).toBe(200);
    expect(as.destroyed.count).toBeGreaterThan(before);
    expect(as.refreshTokens.size).toBe(0);
    await alice.close();
    await bob.close();
  });

  it('client credentials: authorized at creation, no browser', async () => {
    const r = await api('POST', '/api/mcp/client', {
      name: 'm2m',
      connection_type: 'http',
      connection_string: upstream.url,
      auth_type: 'oauth',
      tool_prefix: 'prot-',
      oauth_config: { grant_type: 'client_credentials', client_id: 'm2m', client_secret: M2M_SECRET },
    });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    expect(r.json['oauth_status']).toBe('authorized');
    expect(JSON.stringify(r.json)).not.toContain(M2M_SECRET);
    await waitFor(() => gw.manager.get('m2m')?.state === 'connected');
    const carol = await userClient('carol');
    expect(await whoami(carol)).toBe('m2m');
    await carol.close();
  });

  it('bad input: unknown state, a stdio client with oauth, an unreachable authorization server', async () => {
    const cb = await send(`${gw.url}/api/oauth/callback?state=nope&code=x`, {});
    expect(cb.status).toBe(400);
    expect(cb.json).toMatchObject({ code: 'VALIDATION_ERROR' });
    const stdio = await api('POST', '/api/mcp/client', { name: 's', connection_type: 'stdio', stdio_config: { command: 'true' }, auth_type: 'oauth' });
    expect(stdio.status).toBe(400);
    expect(stdio.json['code']).toBe('UNSUPPORTED_AUTH_TYPE');
    const dead = await api('POST', '/api/mcp/client', { name: 'dead', connection_type: 'http', connection_string: 'http://127.0.0.1:9/mcp', auth_type: 'oauth' });
    expect(dead.status).toBe(502);
    expect(dead.json['code']).toBe('OAUTH_ERROR');
    expect(dead.json['details']).toMatchObject({ step: 'discovery' });
    expect((await api('GET', '/api/mcp/clients')).json['total_count']).toBe(1);
    const perUserStdio = await api('POST', '/api/mcp/client', { name: 's', connection_type: 'stdio', stdio_config: { command: 'true' }, auth_type: 'per_user_oauth' });
    expect(perUserStdio.json['code']).toBe('UNSUPPORTED_AUTH_TYPE');
  });

  it('no token or secret in the logs, the API answers or the store files', () => {
    const secrets = [...upstream.seen.all, M2M_SECRET];
    expect(secrets.length).toBeGreaterThan(4);
    const logs = gw.logs.join('\n');
    const out = answers.join('\n');
    const db = join(gw.dataDir, 'db');
    const files = readdirSync(db).map((f) => readFileSync(join(db, f)).toString('latin1')).join('\n');
    for (const s of secrets) {
      expect(logs).not.toContain(s);
      expect(out).not.toContain(s);
      expect(files).not.toContain(s);
    }
  });

  it('an authorization survives a restart: tokens come back from the store, sealed with the key file', async () => {
    const r = await api('POST', '/api/mcp/client', { name: 'again', connection_type: 'http', connection_string: upstream.url, auth_type: 'oauth', tool_prefix: 'again-' });
    const back = await authorizeInBrowser(as, String(r.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'persistent-admin');
    expect((await send(back, {})).status).toBe(200);
    await waitFor(() => gw.manager.get('again')?.state === 'connected');
    await gw.close(); // keeps the data dir
    const logs: string[] = [];
    const config = resolveConfig(
      { server: { host: '127.0.0.1', port: 0 }, data_dir: gw.dataDir, auth: { disabled: false, admin: { username: 'admin' }, jwt: { hs256_secret: JWT_SECRET } } },
      'restart',
      { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
    );
    const again = await startGateway(config, { log: createLogger('debug', {}, (l) => logs.push(l)) });
    try {
      expect(again.manager.get('again')?.state).toBe('connected');
      const client = new Client({ name: 'after-restart', version: '1.0.0' });
      const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(JWT_SECRET));
      await client.connect(new StreamableHTTPClientTransport(new URL(`${again.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      const res = await client.callTool({ name: 'again-whoami', arguments: {} });
      expect((res.content as { text: string }[])[0]?.text).toBe('persistent-admin');
      await client.close();
      for (const t of upstream.seen.all) expect(logs.join('\n')).not.toContain(t);
    } finally {
      await again.close();
    }
  }, 30_000);
});
