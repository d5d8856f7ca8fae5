/**
 * A running upstream's 401 challenge (RFC 6750 §3, RFC 9728 §5.1) against real parts: two
 * oidc-provider instances on loopback and real SDK Streamable HTTP MCP servers. An upstream that
 * moves to another authorization server refuses even a freshly refreshed token and names its new
 * metadata in `WWW-Authenticate: Bearer resource_metadata=…` (its well-known URL still names the
 * old server). The gateway reads the challenge, re-runs discovery, drops the old registration and
 * tokens, and relays the need to authorize to the downstream client as JSON-RPC -32042 — with the
 * gateway's own authorization link for a per-user client — instead of a generic failure. After
 * authorizing at the new server, calls work again. A 403 `insufficient_scope` challenge (RFC 6750
 * §3.1) makes later authorizations ask for the challenged scope.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { authorizeInBrowser, authorizeLinkAsUser, signedInBrowser, startAuthServer, startProtectedUpstream, type ProtectedUpstream, type TestAuthServer } from './helpers/oauth.js';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;
const ADMIN_PASSWORD = 'oauth-challenge-admin-password-1';
const JWT_SECRET = 'an-oauth-challenge-test-hs256-secret-of-32-bytes!!';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`, 'content-type': 'application/json' };

let as1: TestAuthServer;
let as2: TestAuthServer;
let shared: ProtectedUpstream;
let perUser: ProtectedUpstream;
let scoped: ProtectedUpstream;
let elsewhere: ProtectedUpstream;
let gw: TestGateway;
const clients: Client[] = [];

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await send(`${gw.url}${path}`, { method, headers: ADMIN, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, json: r.json as Json };
}

async function jwtOf(sub: string): Promise<string> {
  return new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(JWT_SECRET));
}

async function mcpClient(jwt: string): Promise<Client> {
  const c = new Client({ name: 'challenge-test', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${jwt}` } } }));
  clients.push(c);
  return c;
}

async function call(c: Client, tool: string): Promise<{ text?: string; error?: { code?: number; message?: string; data?: Json } }> {
  return c.callTool({ name: tool, arguments: {} }).then(
    (r) => ({ text: (r.content as { text: string }[])[0]?.text ?? '' }),
    (e: unknown) => ({ error: e as { code?: number; message?: string; data?: Json } }),
  );
}

/** The URL of the first URL-mode elicitation of a -32042 error. */
function linkOf(error: { data?: Json } | undefined): string {
  return String(((error?.data?.['elicitations'] as Json[] | undefined)?.[0] ?? {})['url']);
}

beforeAll(async () => {
  as1 = await startAuthServer();
  as2 = await startAuthServer();
  shared = await startProtectedUpstream(as1);
  perUser = await startProtectedUpstream(as1);
  scoped = await startProtectedUpstream(as1, { adminScope: true });
  elsewhere = await startProtectedUpstream(as1);
  gw = await startTestGateway([], {}, { auth: { disabled: false, admin: { username: 'admin' }, jwt: { hs256_secret: JWT_SECRET } } }, { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD });
}, 30_000);

afterAll(async () => {
  for (const c of clients) await c.close();
  await gw?.stop();
  await shared?.close();
  await perUser?.close();
  await scoped?.close();
  await elsewhere?.close();
  await as1?.close();
  await as2?.close();
});

describe("a running upstream's 401 challenge", () => {
  it('oauth: the upstream moves to another authorization server → -32042 for the admin, re-registration at the new server, then calls work', async () => {
    const r = await api('POST', '/api/mcp/client', { name: 'moved', connection_type: 'http', connection_string: shared.url, auth_type: 'oauth' });
    expect(r.status).toBe(201);
    const id = String((r.json['config'] as Json)['client_id']);
    expect(new URL(String(r.json['authorize_url'])).origin).toBe(as1.issuer);
    expect((await send(await authorizeInBrowser(as1, String(r.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'admin-at-one'), {})).status).toBe(200);
    await waitFor(() => gw.manager.get('moved')?.state === 'connected');
    const alice = await mcpClient(await jwtOf('alice'));
    expect((await call(alice, 'moved-whoami')).text).toBe('admin-at-one');

    shared.moveTo(as2);
    const refreshesBefore = as1.grants.get('refresh_token') ?? 0;
    const failed = await call(alice, 'moved-whoami');
    // the old token was refreshed once at the old server, the fresh one refused too: then the challenge was read
    expect(as1.grants.get('refresh_token') ?? 0).toBe(refreshesBefore + 1);
    expect(failed.error?.code).toBe(-32042);
    expect(failed.error?.message).toMatch(/needs an OAuth authorization by an administrator/);
    expect((await api('GET', `/api/mcp/client/${id}`)).json['oauth_status']).toBe('needs_authorization');
    expect(gw.logs.join('\n')).toMatch(/names another authorization server/);

    // authorizing again registers with the server the challenge named (not the stale well-known one)
    const again = await api('POST', `/api/mcp/client/${id}/oauth/authorize`);
    expect(again.status).toBe(200);
    expect(new URL(String(again.json['authorize_url'])).origin).toBe(as2.issuer);
    expect((await send(await authorizeInBrowser(as2, String(again.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'admin-at-two'), {})).status).toBe(200);
    await waitFor(() => gw.manager.get('moved')?.state === 'connected');
    expect((await call(alice, 'moved-whoami')).text).toBe('admin-at-two');
  }, 30_000);

  it("per_user_oauth: the user gets the gateway's own link in the -32042, authorizes at the new server, and calls work", async () => {
    const r = await api('POST', '/api/mcp/client', { name: 'pumoved', connection_type: 'http', connection_string: perUser.url, auth_type: 'per_user_oauth' });
    expect(r.status).toBe(201);
    expect((await send(await authorizeInBrowser(as1, String(r.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'catalogue-admin'), {})).status).toBe(200);
    await waitFor(() => gw.manager.get('pumoved')?.state === 'connected');
    const jwt = await jwtOf('ivy');
    const ivy = await mcpClient(jwt);
    const browser = await signedInBrowser(gw.url, jwt);
    const first = await call(ivy, 'pumoved-whoami');
    expect(first.error?.code).toBe(-32042);
    expect((await authorizeLinkAsUser(as1, browser, linkOf(first.error), gw.url, 'ivy-at-one')).status).toBe(200);
    expect((await call(ivy, 'pumoved-whoami')).text).toBe('ivy-at-one');

    perUser.moveTo(as2);
    const moved = await call(ivy, 'pumoved-whoami');
    expect(moved.error?.code, JSON.stringify(moved)).toBe(-32042);
    expect(moved.error?.message).toMatch(/needs your OAuth authorization/);
    // the SDK client surfaces -32042 as URLElicitationRequiredError (data keeps the elicitations)
    const link = linkOf(moved.error);
    expect(link.startsWith(`${gw.url}/api/oauth/start?flow=`)).toBe(true);
    expect((moved.error?.data?.['elicitations'] as Json[] | undefined)?.[0]).toMatchObject({ mode: 'url', message: expect.stringMatching(/pumoved/) as unknown });
    // the link leads to the new server
    const cb = await authorizeLinkAsUser(as2, browser, link, gw.url, 'ivy-at-two');
    expect(cb.status, JSON.stringify(cb.json)).toBe(200);
    expect((await call(ivy, 'pumoved-whoami')).text).toBe('ivy-at-two');
  }, 30_000);

  it('a 403 insufficient_scope challenge: -32042, later authorizations ask for the challenged scope, then the call works', async () => {
    const r = await api('POST', '/api/mcp/client', { name: 'scoped', connection_type: 'http', connection_string: scoped.url, auth_type: 'oauth' });
    expect(r.status).toBe(201);
    const id = String((r.json['config'] as Json)['client_id']);
    expect(new URL(String(r.json['authorize_url'])).searchParams.get('scope')).toBe('mcp:tools');
    expect((await send(await authorizeInBrowser(as1, String(r.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'scoped-admin'), {})).status).toBe(200);
    await waitFor(() => gw.manager.get('scoped')?.state === 'connected');
    const bob = await mcpClient(await jwtOf('bob'));
    expect((await call(bob, 'scoped-whoami')).text).toBe('scoped-admin');
    const refused = await call(bob, 'scoped-admin');
    expect(refused.error?.code).toBe(-32042);
    expect((await api('GET', `/api/mcp/client/${id}`)).json['oauth_status']).toBe('needs_authorization');
    const again = await api('POST', `/api/mcp/client/${id}/oauth/authorize`);
    expect(new URL(String(again.json['authorize_url'])).searchParams.get('scope')).toBe('mcp:tools mcp:admin');
    const cb2 = await send(await authorizeInBrowser(as1, String(again.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'scoped-admin'), {});
    expect(cb2.status, cb2.text).toBe(200);
    await waitFor(() => gw.manager.get('scoped')?.state === 'connected');
    expect(await call(bob, 'scoped-admin')).toEqual({ text: 'admin:scoped-admin' });
  }, 30_000);

  it("a challenge naming metadata on another origin is not followed: the well-known metadata decides", async () => {
    const r = await api('POST', '/api/mcp/client', { name: 'elsewhere', connection_type: 'http', connection_string: elsewhere.url, auth_type: 'oauth' });
    const id = String((r.json['config'] as Json)['client_id']);
    expect((await send(await authorizeInBrowser(as1, String(r.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'elsewhere-admin'), {})).status).toBe(200);
    await waitFor(() => gw.manager.get('elsewhere')?.state === 'connected');
    const carl = await mcpClient(await jwtOf('carl'));
    expect((await call(carl, 'elsewhere-whoami')).text).toBe('elsewhere-admin');
    // the same server under another name (localhost): another origin than the resource's
    elsewhere.moveTo(as2, 'localhost');
    expect((await call(carl, 'elsewhere-whoami')).error?.code).toBe(-32042);
    expect(gw.logs.join('\n')).toMatch(/resource metadata on another origin; ignored/);
    // the well-known metadata still names the first server: the registration stays there
    const again = await api('POST', `/api/mcp/client/${id}/oauth/authorize`);
    expect(new URL(String(again.json['authorize_url'])).origin).toBe(as1.issuer);
  }, 30_000);
});
