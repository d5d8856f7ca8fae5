/**
 * The gateway as an OAuth 2.1 protected resource, against a real authorization server
 * (oidc-provider on loopback): the MCP SDK client's own OAuth support discovers the gateway's
 * RFC 9728 metadata from the 401, registers itself dynamically, runs the authorization code flow
 * with PKCE and `resource`, and calls tools with the token. Tokens with the wrong audience, expired,
 * from an untrusted issuer, or with `alg: none` are refused; scopes decide role and tools.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importJWK, SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { demoClient, rawPost, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { authorizeInBrowser, startAuthServer, type TestAuthServer } from './helpers/oauth.js';

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'oauth-test' } } });
const REDIRECT = 'http://127.0.0.1:9/oauth-test-callback';

/** An in-memory OAuthClientProvider, as an MCP client application would implement it. */
class MemoryProvider implements OAuthClientProvider {
  info: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  authorizationUrl: URL | undefined;
  get redirectUrl(): string {
    return REDIRECT;
  }
  get clientMetadata(): OAuthClientMetadata {
    return { client_name: 'vitest MCP client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }
  tokens(): OAuthTokens | undefined {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string): void {
    this.verifier = v;
  }
  codeVerifier(): string {
    return this.verifier;
  }
}

let as: TestAuthServer;
let gw: TestGateway;

beforeAll(async () => {
  as = await startAuthServer();
  gw = await startTestGateway([demoClient('demo')], {}, {
    auth: {
      disabled: false,
      oauth: { issuers: [{ issuer: as.issuer }], scopes: { 'mcp:tools': { tools: ['demo-echo', 'demo-add'] }, 'mcp:admin': { role: 'admin' } } },
    },
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await as?.close();
});

async function sign(claims: Record<string, unknown>, opts: { exp?: number | string; alg?: string } = {}): Promise<string> {
  const key = await importJWK(as.privateJwk, 'RS256');
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: as.privateJwk.kid ?? '', typ: 'at+jwt' }).setIssuedAt();
  if (opts.exp !== undefined) jwt.setExpirationTime(opts.exp);
  return jwt.sign(key);
}

describe('downstream OAuth resource server', () => {
  it('publishes RFC 9728 metadata and points 401s at it', async () => {
    const meta = await send(`${gw.url}/.well-known/oauth-protected-resource/mcp`, {});
    expect(meta.status).toBe(200);
    expect(meta.json).toMatchObject({ resource: `${gw.url}/mcp`, authorization_servers: [as.issuer], scopes_supported: ['mcp:tools', 'mcp:admin'], bearer_methods_supported: ['header'] });
    const root = await send(`${gw.url}/.well-known/oauth-protected-resource`, {});
    expect(root.json).toEqual(meta.json);
    const r = await rawPost(gw.mcpUrl, INIT);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain(`Bearer realm="tributary", resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp"`);
  });

  it('the SDK client discovers, registers, authorizes with PKCE and resource, and calls tools', async () => {
    const provider = new MemoryProvider();
    const first = new Client({ name: 'oauth-client', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: provider });
    await expect(first.connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    const authUrl = provider.authorizationUrl;
    expect(authUrl?.origin).toBe(as.issuer);
    expect(authUrl?.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authUrl?.searchParams.get('resource')).toBe(`${gw.url}/mcp`);
    expect(provider.info?.client_id).toBeTruthy(); // registered dynamically (RFC 7591)
    const back = new URL(await authorizeInBrowser(as, String(authUrl), REDIRECT, 'alice'));
    await transport.finishAuth(back.searchParams.get('code') ?? '');
    expect(provider.saved?.access_token).toMatch(/^[\w.~+/=-]{16,}$/);

    const client = new Client({ name: 'oauth-client', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: provider }));
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    // the SDK asks for every scope in scopes_supported: mcp:admin gives every tool and the management API
    expect(tools).toEqual(['demo-add', 'demo-echo', 'demo-now', 'demo-sleep']);
    const r = await client.callTool({ name: 'demo-echo', arguments: { message: 'through oauth' } });
    expect(JSON.stringify(r.content)).toContain('through oauth');
    const mgmt = await send(`${gw.url}/api/mcp/clients`, { headers: { authorization: `Bearer ${provider.saved?.access_token ?? ''}` } });
    expect(mgmt.status).toBe(200);
    await client.close();
  }, 30_000);

  it('a valid token minted by the issuer works; wrong audience, expired, wrong issuer and alg none do not', async () => {
    const base = { iss: as.issuer, sub: 'bob', aud: `${gw.url}/mcp`, scope: 'mcp:tools mcp:admin', client_id: 'x' };
    const good = await sign(base, { exp: '5m' });
    const ok = await rawPost(gw.mcpUrl, INIT, { authorization: `Bearer ${good}` });
    expect(ok.status).toBe(200);
    // mcp:admin maps to role admin
    expect((await send(`${gw.url}/api/mcp/clients`, { headers: { authorization: `Bearer ${good}` } })).status).toBe(200);

    const cases: [string, string, string][] = [
      ['wrong audience', await sign({ ...base, aud: 'https://other.example/mcp' }, { exp: '5m' }), 'audience'],
      ['expired', await sign(base, { exp: Math.floor(Date.now() / 1000) - 3600 }), 'expired'],
      ['no exp', await sign(base), 'exp'],
      ['wrong issuer', await sign({ ...base, iss: 'http://127.0.0.1:9/other' }, { exp: '5m' }), ''],
      [
        'alg none',
        `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${Buffer.from(JSON.stringify({ ...base, exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url')}.`,
        'algorithm',
      ],
    ];
    for (const [what, token, says] of cases) {
      const r = await rawPost(gw.mcpUrl, INIT, { authorization: `Bearer ${token}` });
      expect(r.status, what).toBe(401);
      expect(r.headers.get('www-authenticate'), what).toContain('resource_metadata=');
      expect(JSON.stringify(r.json), what).toContain(says);
    }
    // the refusals did not leak the tokens into the logs
    const logs = gw.logs.join('\n');
    for (const [, token] of cases) expect(logs).not.toContain(token);
    expect(logs).not.toContain(good);
  });

  it('scopes map to tools and roles: mcp:tools alone gives two tools and no management API', async () => {
    const token = await sign({ iss: as.issuer, sub: 'dave', aud: `${gw.url}/mcp`, scope: 'mcp:tools' }, { exp: '5m' });
    const client = new Client({ name: 'tools-scope', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['demo-add', 'demo-echo']);
    await client.close();
    expect((await send(`${gw.url}/api/mcp/clients`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
  });

  it('a token whose scopes give no tools sees none', async () => {
    const token = await sign({ iss: as.issuer, sub: 'carol', aud: `${gw.url}/mcp`, scope: 'openid' }, { exp: '5m' });
    const client = new Client({ name: 'no-scope', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    expect((await client.listTools()).tools).toEqual([]);
    await client.close();
  });
});
