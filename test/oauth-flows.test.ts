/**
 * Upstream OAuth flows in progress are kept in LevelDB (sealed, keyed by the SHA-256 of their
 * state) with an expiry: a gateway restart between the start of an authorization and its callback
 * does not lose it, for an administrator's flow and for a per-user one; an expired flow is refused
 * and swept from the store; the store holds the state only as its SHA-256 and the flow sealed.
 * Real parts: oidc-provider on loopback, a real SDK Streamable HTTP upstream, real LevelDB.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { openStore } from '../src/store/open.js';
import { OAuthGrantRepository } from '../src/store/oauth-grants.js';
import { OAuthFlowRepository } from '../src/store/oauth-flows.js';
import { SecretBox } from '../src/providers/secret-box.js';
import { UpstreamOAuth, type OAuthClient } from '../src/upstreams/oauth/upstream-oauth.js';
import { GatewayError } from '../src/base/errors.js';
import { send } from './helpers/gateway.js';
import { authorizeInBrowser, openInBrowser, signedInBrowser, startAuthServer, startProtectedUpstream, type ProtectedUpstream, type TestAuthServer } from './helpers/oauth.js';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;
const ADMIN_PASSWORD = 'oauth-flows-admin-password-1';
const JWT_SECRET = 'an-oauth-flows-test-hs256-secret-of-32-bytes!!!';
/** The gateway's public URL (`oauth.public_url`), as behind a reverse proxy. */
const PUBLIC = 'http://gateway.test.invalid';
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`, 'content-type': 'application/json' };

let as: TestAuthServer;
let upstream: ProtectedUpstream;
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tributary-oauth-flows-'));
  dirs.push(d);
  return d;
}

function dbText(dataDir: string): string {
  const db = join(dataDir, 'db');
  return readdirSync(db)
    .map((f) => readFileSync(join(db, f)).toString('latin1'))
    .join('\n');
}

beforeAll(async () => {
  as = await startAuthServer();
  upstream = await startProtectedUpstream(as);
}, 30_000);

afterAll(async () => {
  await upstream?.close();
  await as?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('upstream OAuth flows in progress', () => {
  it('expire after flow_ttl_s (refused, then swept from the store at the next start); the store holds the state only hashed (the flow itself is sealed)', async () => {
    const dataDir = tempDir();
    const store = await openStore(dataDir, createLogger('silent'));
    let now = Date.now();
    const box = SecretBox.fromBase64(Buffer.alloc(32, 7).toString('base64'));
    const settings = { public_url: 'http://gw.invalid', encryption_key: undefined, refresh_skew_s: 60, flow_ttl_s: 600, per_user_idle_s: 0 };
    const make = (): UpstreamOAuth =>
      new UpstreamOAuth({ repo: new OAuthGrantRepository(store), flowRepo: new OAuthFlowRepository(store), box, settings, log: createLogger('silent'), baseUrl: () => 'http://gw.invalid', now: () => now });
    const oauth = make();
    await oauth.init();
    const client = { client_id: 'c1', name: 'flows', connection_type: 'http', connection_string: upstream.url, auth_type: 'per_user_oauth' } as OAuthClient;
    const started = await oauth.begin(client, 'key:someone');
    if (started.status !== 'needs_authorization') throw new Error('expected a flow');
    const state = new URL(started.authorization_url).searchParams.get('flow') ?? '';
    expect(state.length).toBeGreaterThan(30);
    // live: the right user is sent on to the authorization server
    const live = await oauth.verifyStart(state, 'key:someone');
    expect(new URL(live.location).origin).toBe(as.issuer);
    const verifierChallenge = new URL(live.location).searchParams.get('code_challenge') ?? '';
    expect(verifierChallenge).not.toBe('');
    expect((await new OAuthFlowRepository(store).expiries()).length).toBe(1);

    now += 601_000;
    const expired = await oauth.verifyStart(state, 'key:someone').catch((e: unknown) => e);
    expect(expired).toBeInstanceOf(GatewayError);
    expect((expired as GatewayError).code).toBe('VALIDATION_ERROR');
    const late = await oauth.complete(state, 'some-code', undefined, () => client).catch((e: unknown) => e);
    expect((late as GatewayError).code).toBe('VALIDATION_ERROR');

    // another flow, expired by the next start: init sweeps it from the store
    await oauth.begin(client, 'key:other');
    expect((await new OAuthFlowRepository(store).expiries()).length).toBe(1);
    now += 601_000;
    await make().init();
    expect(await new OAuthFlowRepository(store).expiries()).toEqual([]);
    await store.close();
    expect(dbText(dataDir)).not.toContain(state);
  }, 30_000);

  it('survive a gateway restart between start and callback: an administrator flow and a per-user flow', async () => {
    const dataDir = tempDir();
    const logs: string[] = [];
    const start = (): Promise<Gateway> =>
      startGateway(
        resolveConfig(
          { server: { host: '127.0.0.1', port: 0 }, data_dir: dataDir, oauth: { public_url: PUBLIC }, auth: { disabled: false, admin: { username: 'admin' }, jwt: { hs256_secret: JWT_SECRET } } },
          'flows',
          { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
        ),
        { log: createLogger('debug', {}, (l) => logs.push(l)) },
      );
    let gw = await start();
    /** What a reverse proxy at the public URL does: sends the request to the gateway process. */
    const viaProxy = (url: string): string => url.replace(PUBLIC, gw.url);
    const create = async (body: Json): Promise<string> => {
      const r = await send(`${gw.url}/api/mcp/client`, { method: 'POST', headers: ADMIN, body: JSON.stringify(body) });
      expect(r.status).toBe(201);
      return String((r.json as Json)['authorize_url']);
    };
    // an administrator's flow for client "adm" gets as far as the authorization server's redirect back…
    const adminBack = await authorizeInBrowser(as, await create({ name: 'adm', connection_type: 'http', connection_string: upstream.url, auth_type: 'oauth' }), `${PUBLIC}/api/oauth/callback`, 'adm-admin');
    // (the per-user client's catalogue is authorized before the restart)
    const catalogue = await authorizeInBrowser(as, await create({ name: 'pu', connection_type: 'http', connection_string: upstream.url, auth_type: 'per_user_oauth' }), `${PUBLIC}/api/oauth/callback`, 'catalogue-admin');
    expect((await send(viaProxy(catalogue), {})).status).toBe(200);
    await waitFor(() => gw.manager.get('pu')?.state === 'connected');
    // …and a user gets their link from a call
    const jwt = await new SignJWT({ sub: 'lou' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(JWT_SECRET));
    const connect = async (g: Gateway): Promise<Client> => {
      const c = new Client({ name: 'lou', version: '1.0.0' });
      await c.connect(new StreamableHTTPClientTransport(new URL(`${g.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${jwt}` } } }));
      return c;
    };
    let lou = await connect(gw);
    const refusal = await lou.callTool({ name: 'pu-whoami', arguments: {} }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; data?: Json },
    );
    expect(refusal?.code).toBe(-32042);
    const link = String(((refusal?.data?.['elicitations'] as Json[] | undefined)?.[0] ?? {})['url']);
    await lou.close();
    await gw.close();
    // a new process (another port: the public URL is what the authorization server knows, as behind a proxy)
    gw = await start();
    try {
      const cb = await send(viaProxy(adminBack), {});
      expect(cb.status, cb.text).toBe(200);
      await waitFor(() => gw.manager.get('adm')?.state === 'connected');
      // the user signs in to the restarted gateway (dashboard sessions live in memory) and completes their link
      const browser = await signedInBrowser(gw.url, jwt);
      expect(link.startsWith(`${PUBLIC}/api/oauth/start?flow=`)).toBe(true);
      const start2 = await openInBrowser(browser, viaProxy(link));
      expect(start2.status, JSON.stringify(start2.json)).toBe(302);
      const back = await authorizeInBrowser(as, String(start2.location), `${PUBLIC}/api/oauth/callback`, 'lou-upstream-account');
      const done = await openInBrowser(browser, viaProxy(back));
      expect(done.status, JSON.stringify(done.json)).toBe(200);
      lou = await connect(gw);
      const res = await lou.callTool({ name: 'pu-whoami', arguments: {} });
      expect((res.content as { text: string }[])[0]?.text).toBe('lou-upstream-account');
      const adm = await lou.callTool({ name: 'adm-whoami', arguments: {} });
      expect((adm.content as { text: string }[])[0]?.text).toBe('adm-admin');
      await lou.close();
    } finally {
      await gw.close();
    }
  }, 30_000);
});
