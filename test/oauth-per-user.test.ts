/**
 * Upstream `per_user_oauth` against real parts (oidc-provider on loopback, a real SDK Streamable
 * HTTP MCP server requiring its tokens): each downstream user authorizes separately in a browser
 * signed in to the gateway as themselves; a user without a token gets the gateway's own
 * authorization link (JSON-RPC -32042 with URL-mode elicitations); a link forwarded to somebody
 * else is refused at every step (not signed in, signed in as another user, an authorization server
 * URL completed in another browser), so nobody hands over their upstream access.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import {
  authorizeInBrowser,
  authorizeLinkAsUser,
  openInBrowser,
  signedInBrowser,
  startAuthServer,
  startProtectedUpstream,
  type CookieJar,
  type ProtectedUpstream,
  type TestAuthServer,
} from './helpers/oauth.js';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;
const ADMIN_PASSWORD = 'oauth-per-user-admin-password-1';
const JWT_SECRET = 'a-per-user-oauth-test-hs256-secret-of-32-bytes!!';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`, 'content-type': 'application/json' };

let as: TestAuthServer;
let upstream: ProtectedUpstream;
let stateful: ProtectedUpstream;
let gw: TestGateway;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await send(`${gw.url}${path}`, { method, headers: ADMIN, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, json: r.json as Json };
}

function jwtOf(sub: string): Promise<string> {
  return new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(JWT_SECRET));
}

interface User {
  readonly jwt: string;
  readonly client: Client;
  /** The user's own browser, signed in to the gateway with the same credential. */
  readonly browser: CookieJar;
}

/** A user whose MCP client answers elicitations with colour `teal-<sub>` and sampling with `reply-<sub>`. */
async function user(sub: string): Promise<User> {
  const jwt = await jwtOf(sub);
  const client = new Client({ name: `user-${sub}`, version: '1.0.0' }, { capabilities: { elicitation: {}, sampling: {} } });
  client.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: { colour: `teal-${sub}` } }));
  client.setRequestHandler(CreateMessageRequestSchema, () => ({ model: 'test-model', role: 'assistant', content: { type: 'text', text: `reply-${sub}` } }));
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${jwt}` } } }));
  return { jwt, client, browser: await signedInBrowser(gw.url, jwt) };
}

async function whoami(u: User, tool = 'pu-whoami'): Promise<string> {
  const r = await u.client.callTool({ name: tool, arguments: {} });
  expect(r.isError ?? false).toBe(false);
  return (r.content as { text: string }[])[0]?.text ?? '';
}

/** Calls the per-user tool expecting the refusal; resolves the authorization link it carries. */
async function refused(u: User, tool = 'pu-whoami'): Promise<string> {
  const err = await u.client.callTool({ name: tool, arguments: {} }).then(
    () => undefined,
    (e: unknown) => e as { code?: number; message?: string; data?: Json },
  );
  expect(err, 'the call is refused').toBeDefined();
  expect(err?.code).toBe(-32042);
  expect(err?.message).toMatch(/needs your OAuth authorization/);
  // the SDK client surfaces -32042 as URLElicitationRequiredError: data keeps the elicitations
  const elicitation = ((err?.data ?? {})['elicitations'] as Json[])[0] ?? {};
  const url = String(elicitation['url']);
  expect(elicitation['mode']).toBe('url');
  // the gateway's own link, never the authorization server's URL (which would skip the user check)
  expect(url.startsWith(`${gw.url}/api/oauth/start?flow=`)).toBe(true);
  expect(url).not.toContain(as.issuer);
  return url;
}

let puId = '';
const users: Record<string, User> = {};

beforeAll(async () => {
  as = await startAuthServer();
  upstream = await startProtectedUpstream(as);
  stateful = await startProtectedUpstream(as, { stateful: true });
  // per-user connections idle for a second are closed (the idle test waits for it)
  gw = await startTestGateway([], {}, { auth: { disabled: false, admin: { username: 'admin' }, jwt: { hs256_secret: JWT_SECRET } }, oauth: { per_user_idle_s: 1 } }, { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD });
  const r = await api('POST', '/api/mcp/client', { name: 'pu', connection_type: 'http', connection_string: upstream.url, auth_type: 'per_user_oauth' });
  expect(r.status).toBe(201);
  // the shared connection (the catalogue) is authorized once by an administrator, like auth_type oauth
  const back = await authorizeInBrowser(as, String(r.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'catalogue-admin');
  expect((await send(back, {})).status).toBe(200);
  await waitFor(() => gw.manager.get('pu')?.state === 'connected');
  puId = String((r.json['config'] as Json)['client_id']);
  for (const name of ['dan', 'erin', 'frank']) users[name] = await user(name);
}, 30_000);

afterAll(async () => {
  for (const u of Object.values(users)) await u.client.close();
  await gw?.stop();
  await upstream?.close();
  await stateful?.close();
  await as?.close();
});

describe('upstream auth_type per_user_oauth', () => {
  it('each user authorizes separately in their own signed-in browser; nobody shares a connection', async () => {
    for (const name of ['dan', 'erin']) {
      const u = users[name];
      if (!u) throw new Error(name);
      const link = await refused(u);
      const cb = await authorizeLinkAsUser(as, u.browser, link, gw.url, `${name}-upstream-account`);
      expect(cb.status, JSON.stringify(cb.json)).toBe(200);
      expect(cb.json).toMatchObject({ status: 'authorized', client: 'pu' });
      // the binding cookie is cleared by the callback
      expect([...u.browser.keys()].filter((k) => k.startsWith('tributary_oauth_'))).toEqual([]);
    }
    const [dan, erin] = [users['dan'], users['erin']] as [User, User];
    const callers = upstream.callers.length;
    expect(await whoami(dan)).toBe('dan-upstream-account');
    expect(await whoami(erin)).toBe('erin-upstream-account');
    expect(await whoami(dan)).toBe('dan-upstream-account');
    expect(upstream.callers.slice(callers)).toEqual(['dan-upstream-account', 'erin-upstream-account', 'dan-upstream-account']);
    expect((await api('GET', `/api/mcp/client/${puId}`)).json['oauth_users']).toBe(2);
  }, 30_000);

  it("a forwarded link is refused: not signed in (401), signed in as another user (403)", async () => {
    const frank = users['frank'] as User;
    const erin = users['erin'] as User;
    const link = await refused(frank);
    const stranger = await openInBrowser(new Map(), link);
    expect(stranger.status).toBe(401);
    expect(stranger.json).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'not_signed_in' } });
    expect(stranger.location).toBeNull();
    const other = await openInBrowser(erin.browser, link);
    expect(other.status).toBe(403);
    expect(other.json).toMatchObject({ code: 'FORBIDDEN', details: { reason: 'other_user' } });
    expect(other.location).toBeNull();
    expect([...erin.browser.keys()].filter((k) => k.startsWith('tributary_oauth_'))).toEqual([]);
    // the link still works for frank himself afterwards
    const cb = await authorizeLinkAsUser(as, frank.browser, link, gw.url, 'frank-upstream-account');
    expect(cb.status).toBe(200);
    expect(await whoami(frank)).toBe('frank-upstream-account');
  }, 30_000);

  it('the authorization server URL completed in another browser is refused, and grants nothing', async () => {
    // gina opens her link in her own browser, then forwards the authorization server's URL to hank
    const gina = await user('gina');
    const hank = await user('hank');
    users['gina'] = gina;
    users['hank'] = hank;
    const link = await refused(gina);
    const start = await openInBrowser(gina.browser, link);
    expect(start.status).toBe(302);
    const asUrl = String(start.location);
    expect(asUrl.startsWith(`${as.issuer}/auth?`)).toBe(true);
    // hank logs in at the authorization server as himself; his browser comes back without gina's binding
    const back = await authorizeInBrowser(as, asUrl, `${gw.url}/api/oauth/callback`, 'hank-upstream-account');
    const cb = await openInBrowser(hank.browser, back);
    expect(cb.status).toBe(403);
    expect(cb.json).toMatchObject({ code: 'FORBIDDEN', details: { reason: 'browser_not_bound' } });
    // gina did not get hank's upstream account, and the flow is used up
    await refused(gina);
    expect((await openInBrowser(gina.browser, back)).status).toBe(400);
    expect(gw.logs.join('\n')).toMatch(/did not start it; refused/);
  }, 30_000);

  it("elicitation and sampling from a user's own upstream connection reach that user's session; cancellation reaches that connection", async () => {
    const r = await api('POST', '/api/mcp/client', { name: 'pus', connection_type: 'http', connection_string: stateful.url, auth_type: 'per_user_oauth' });
    expect(r.status).toBe(201);
    expect((await send(await authorizeInBrowser(as, String(r.json['authorize_url']), `${gw.url}/api/oauth/callback`, 'catalogue-admin'), {})).status).toBe(200);
    await waitFor(() => gw.manager.get('pus')?.state === 'connected');
    const jo = await user('jo');
    const kim = await user('kim');
    users['jo'] = jo;
    users['kim'] = kim;
    for (const [name, u] of [['jo', jo], ['kim', kim]] as const) {
      expect((await authorizeLinkAsUser(as, u.browser, await refused(u, 'pus-ask'), gw.url, `${name}-acct`)).status).toBe(200);
    }
    const text = async (u: User, tool: string): Promise<string> => {
      const res = await u.client.callTool({ name: tool, arguments: {} });
      return (res.content as { text: string }[])[0]?.text ?? JSON.stringify(res);
    };
    // both at once: each upstream request is answered by the session whose call its connection serves
    expect(await Promise.all([text(jo, 'pus-ask'), text(kim, 'pus-ask')])).toEqual(['jo-acct:teal-jo', 'kim-acct:teal-kim']);
    expect(await Promise.all([text(jo, 'pus-sample'), text(kim, 'pus-sample')])).toEqual(['jo-acct:reply-jo', 'kim-acct:reply-kim']);

    // cancelling jo's call cancels it on jo's own connection
    const started = stateful.waiting.count;
    const abort = new AbortController();
    const pending = jo.client.callTool({ name: 'pus-wait', arguments: {} }, undefined, { signal: abort.signal }).then(
      () => 'answered',
      () => 'rejected',
    );
    await waitFor(() => stateful.waiting.count > started);
    abort.abort('the user changed their mind');
    expect(await pending).toBe('rejected');
    await waitFor(() => stateful.cancelled.includes('jo-acct'));
    expect(stateful.cancelled).not.toContain('kim-acct');
  }, 30_000);

  it('an idle per-user connection is closed (oauth.per_user_idle_s) and the next call connects again', async () => {
    const dan = users['dan'] as User;
    const pu = gw.manager.get('pu');
    expect(await whoami(dan)).toBe('dan-upstream-account');
    expect(pu?.principals?.size).toBeGreaterThan(0);
    await waitFor(() => pu?.principals?.size === 0, 5_000);
    expect(gw.logs.join('\n')).toMatch(/closing an idle per-user connection/);
    expect(await whoami(dan)).toBe('dan-upstream-account');
    expect(pu?.principals?.size).toBe(1);
  }, 15_000);

  it('bad input at the start link and the callback', async () => {
    const dan = users['dan'] as User;
    expect((await openInBrowser(dan.browser, `${gw.url}/api/oauth/start`)).status).toBe(400);
    const unknown = await openInBrowser(dan.browser, `${gw.url}/api/oauth/start?flow=${'x'.repeat(43)}`);
    expect(unknown.status).toBe(400);
    expect(unknown.json).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect((await openInBrowser(dan.browser, `${gw.url}/api/oauth/start?flow=${'y'.repeat(5000)}`)).status).toBe(400);
    expect((await openInBrowser(dan.browser, `${gw.url}/api/oauth/callback?state=abc`)).status).toBe(400);
    // any flow or state that is not one the gateway made: a clear 400, never a crash or a redirect
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), fc.string({ maxLength: 50 }), async (flow, code) => {
        const start = await openInBrowser(dan.browser, `${gw.url}/api/oauth/start?flow=${encodeURIComponent(flow)}`);
        expect(start.status).toBe(400);
        expect(start.location).toBeNull();
        const cb = await openInBrowser(dan.browser, `${gw.url}/api/oauth/callback?state=${encodeURIComponent(flow)}&code=${encodeURIComponent(code)}`);
        expect(cb.status).toBe(400);
        expect(cb.json['code']).toBe('VALIDATION_ERROR');
      }),
      { numRuns: 40 },
    );
  });
});
