/**
 * Test helpers for OAuth: a real authorization server (`oidc-provider`, a certified OpenID
 * Provider) on loopback, with dynamic registration, PKCE, resource indicators (JWT access tokens
 * whose audience is the resource), client credentials, refresh tokens and revocation; a headless
 * user agent that drives the authorization code flow through its interaction endpoint; and a real
 * SDK Streamable HTTP MCP server that requires its bearer tokens and publishes RFC 9728 metadata.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface TestAuthServer {
  readonly issuer: string;
  readonly provider: Provider;
  /** The signing key (private JWK), to mint tokens the tests shape themselves. */
  readonly privateJwk: JWK;
  /** Who logs in at the next interaction. */
  user: string;
  /** Access token lifetime for the next tokens, seconds. */
  accessTokenTtlS: number;
  /** Token endpoint requests seen, by grant type. */
  readonly grants: Map<string, number>;
  /** Refresh tokens issued and not destroyed (the provider's models). */
  readonly refreshTokens: Iterable<{ destroy(): Promise<void> }> & { readonly size: number };
  /** Refresh tokens destroyed (revoked, rotated or consumed). */
  readonly destroyed: { count: number };
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** Scopes the provider knows; `mcp:*` are resource scopes. */
export const RESOURCE_SCOPES = 'mcp:tools mcp:admin';

/**
 * Starts oidc-provider on 127.0.0.1 port 0. Clients: `m2m` (client credentials, secret
 * `m2m-secret-0123456789abcdef0123456789`) plus any registered dynamically.
 */
export async function startAuthServer(): Promise<TestAuthServer> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
  const http = createServer();
  const port = await listen(http);
  const issuer = `http://127.0.0.1:${port}`;
  const state: { user: string; accessTokenTtlS: number } = { user: 'alice', accessTokenTtlS: 3600 };
  const grants = new Map<string, number>();
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'm2m', client_secret: 'm2m-secret-0123456789abcdef0123456789', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic' }],
    jwks: { keys: [privateJwk] },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? (undefined as unknown as string),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => ({
          scope: RESOURCE_SCOPES,
          audience: resourceIndicator,
          accessTokenTTL: state.accessTokenTtlS,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    // the resource scopes are listed too: dynamic registration only accepts scopes from this list
    scopes: ['openid', 'offline_access', 'mcp:tools', 'mcp:admin'],
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    clientDefaults: { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' },
    ttl: { RefreshToken: 24 * 3600, Grant: 24 * 3600, Session: 3600, Interaction: 600, AuthorizationCode: 60 },
  });
  provider.on('grant.success', (ctx) => {
    const g = String((ctx.oidc.params as Record<string, unknown> | undefined)?.['grant_type'] ?? '?');
    grants.set(g, (grants.get(g) ?? 0) + 1);
  });
  const live = new Map<string, { destroy(): Promise<void> }>();
  const destroyed = { count: 0 };
  provider.on('refresh_token.saved', (t: { jti: string; destroy(): Promise<void> }) => live.set(t.jti, t));
  provider.on('refresh_token.destroyed', (t: { jti: string }) => {
    live.delete(t.jti);
    destroyed.count++;
  });
  const refreshTokens = {
    get size() {
      return live.size;
    },
    [Symbol.iterator]: () => live.values(),
  };
  const callback = provider.callback();
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/interaction/')) {
      void (async () => {
        // the test user logs in and consents to everything asked for, at once
        const details = await provider.interactionDetails(req, res);
        const params = details.params as Record<string, string | undefined>;
        const grant = new provider.Grant({ accountId: state.user, clientId: params['client_id'] ?? '' });
        const asked = (params['scope'] ?? '').split(' ').filter(Boolean);
        if (asked.length > 0) grant.addOIDCScope(asked.join(' '));
        const resource = params['resource'];
        if (resource) grant.addResourceScope(resource, asked.filter((s) => s.startsWith('mcp:')).join(' '));
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { login: { accountId: state.user }, consent: { grantId } }, { mergeWithLastSubmission: false });
      })().catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
      return;
    }
    void callback(req, res);
  });
  return {
    issuer,
    provider,
    privateJwk,
    get user() {
      return state.user;
    },
    set user(u: string) {
      state.user = u;
    },
    get accessTokenTtlS() {
      return state.accessTokenTtlS;
    },
    set accessTokenTtlS(s: number) {
      state.accessTokenTtlS = s;
    },
    grants,
    refreshTokens,
    destroyed,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

/**
 * A headless user agent: follows the authorization URL through the provider's login/consent
 * interaction (as `as.user`), with cookies, until the redirect to `redirectPrefix`; returns that
 * redirect URL (carrying `code` and `state`) without requesting it.
 */
export async function authorizeInBrowser(as: TestAuthServer, authorizationUrl: string, redirectPrefix: string, user: string): Promise<string> {
  as.user = user;
  const cookies = new Map<string, string>();
  let url = authorizationUrl;
  for (let hop = 0; hop < 10; hop++) {
    if (url.startsWith(redirectPrefix)) return url;
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = (pair ?? '').indexOf('=');
      if (eq > 0) cookies.set((pair ?? '').slice(0, eq), (pair ?? '').slice(eq + 1));
    }
    const location = res.headers.get('location');
    if (location === null) throw new Error(`authorization stopped at ${res.status}: ${(await res.text()).slice(0, 500)}`);
    await res.arrayBuffer();
    url = new URL(location, url).toString();
  }
  throw new Error('too many redirects');
}

export interface ProtectedUpstream {
  /** The MCP endpoint, `http://127.0.0.1:port/mcp`. */
  readonly url: string;
  /** Requests answered 401, and the authorized `sub`s seen by tool calls. */
  readonly unauthorized: { count: number };
  readonly callers: string[];
  /** Bearer tokens this server refuses from now on (as if revoked), and the last one it accepted. */
  readonly revoked: Set<string>;
  readonly seen: { last: string; all: Set<string> };
  /** Stateful mode: the subjects whose `wait` call was cancelled, and how many `wait` calls started. */
  readonly cancelled: string[];
  readonly waiting: { count: number };
  /**
   * Moves this resource to another authorization server: from now on only `other`'s tokens are
   * accepted, and 401 answers name new metadata (naming `other`) at `/custom/prm` in
   * `resource_metadata`, while the well-known URL keeps the old metadata (so only a client that
   * reads the challenge finds the new server). `challengeHost` (default `127.0.0.1`) is the host
   * the challenge's URL names: `localhost` makes it another origin than the resource's.
   */
  moveTo(other: TestAuthServer, challengeHost?: string): void;
  close(): Promise<void>;
}

/**
 * A real SDK Streamable HTTP MCP server (stateless by default: one server per request) that requires a
 * bearer token of `as` with audience = its URL, and publishes RFC 9728 metadata. Tool `whoami`
 * answers the token's `sub`; `echo` echoes. With `stateful`, sessions live across requests (each
 * bound to the account that opened it), and tools `ask` (elicitation), `sample` (sampling) and
 * `wait` (until cancelled) send server→client requests on the call's stream.
 */
export async function startProtectedUpstream(as: TestAuthServer, options: { readonly stateful?: boolean; readonly adminScope?: boolean } = {}): Promise<ProtectedUpstream> {
  const http = createServer();
  const port = await listen(http);
  const url = `http://127.0.0.1:${port}/mcp`;
  const trust = { issuer: as.issuer, jwks: createRemoteJWKSet(new URL(`${as.issuer}/jwks`)), metadataPath: '/.well-known/oauth-protected-resource/mcp', challengeHost: '127.0.0.1' };
  let movedMetadata = '';
  const unauthorized = { count: 0 };
  const callers: string[] = [];
  const revoked = new Set<string>();
  const seen = { last: '', all: new Set<string>() };
  const metadata = JSON.stringify({ resource: url, authorization_servers: [as.issuer], scopes_supported: ['mcp:tools'], bearer_methods_supported: ['header'] });
  const sessions = new Map<string, { readonly sub: string; readonly transport: StreamableHTTPServerTransport }>();
  const cancelled: string[] = [];
  const waiting = { count: 0 };
  const serverFor = (sub: string): McpServer => {
    const server = new McpServer({ name: 'protected', version: '1.0.0' });
    server.registerTool('whoami', { description: 'The token subject', inputSchema: {} }, () => {
      callers.push(sub);
      return { content: [{ type: 'text', text: sub }] };
    });
    server.registerTool('echo', { description: 'Echo', inputSchema: { message: z.string() } }, ({ message }) => ({ content: [{ type: 'text', text: message }] }));
    // with adminScope, only tokens holding mcp:admin reach it (403 insufficient_scope otherwise)
    if (options.adminScope === true) server.registerTool('admin', { description: 'Needs scope mcp:admin', inputSchema: {} }, () => ({ content: [{ type: 'text', text: `admin:${sub}` }] }));
    if (options.stateful !== true) return server;
    server.registerTool('ask', { description: 'Asks the user (elicitation), answers `<sub>:<colour>`', inputSchema: {} }, async () => {
      const r = await server.server.elicitInput({ message: 'Your favourite colour?', requestedSchema: { type: 'object', properties: { colour: { type: 'string' } }, required: ['colour'] } });
      return { content: [{ type: 'text', text: `${sub}:${r.action === 'accept' ? String(r.content?.['colour']) : r.action}` }] };
    });
    server.registerTool('sample', { description: 'Asks the client for a completion (sampling), answers `<sub>:<text>`', inputSchema: {} }, async () => {
      const r = await server.server.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: `hello from ${sub}` } }], maxTokens: 20 });
      const content = r.content as { type: string; text?: string };
      return { content: [{ type: 'text', text: `${sub}:${content.text ?? ''}` }] };
    });
    server.registerTool('wait', { description: 'Waits until cancelled', inputSchema: {} }, (_args, extra) => {
      waiting.count++;
      return new Promise((resolve) => {
        extra.signal.addEventListener('abort', () => {
          cancelled.push(sub);
          resolve({ content: [{ type: 'text', text: 'cancelled' }] });
        });
      });
    });
    return server;
  };
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (req.url === '/custom/prm' && movedMetadata !== '') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(movedMetadata);
        return;
      }
      if (req.url?.startsWith('/.well-known/oauth-protected-resource')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(metadata);
        return;
      }
      const auth = req.headers.authorization ?? '';
      let sub: string;
      let scopes: string[] = [];
      try {
        if (!auth.startsWith('Bearer ')) throw new Error('no token');
        if (revoked.has(auth.slice(7))) throw new Error('revoked');
        const { payload } = await jwtVerify(auth.slice(7), trust.jwks, { issuer: trust.issuer, audience: url, algorithms: ['RS256'] });
        sub = String(payload.sub ?? payload['client_id'] ?? '');
        scopes = String(payload['scope'] ?? '').split(' ');
        seen.last = auth.slice(7);
        seen.all.add(seen.last);
      } catch {
        unauthorized.count++;
        res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="http://${trust.challengeHost}:${port}${trust.metadataPath}", error="invalid_token"` }).end();
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
      const rpc = body as { method?: string; params?: { name?: string } } | undefined;
      if (options.adminScope === true && rpc?.method === 'tools/call' && rpc.params?.name === 'admin' && !scopes.includes('mcp:admin')) {
        // RFC 6750 §3.1 / MCP scope challenge: the token lacks a scope this tool needs
        res.writeHead(403, { 'www-authenticate': `Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="http://127.0.0.1:${port}${trust.metadataPath}"` }).end();
        return;
      }
      if (options.stateful === true) {
        const sid = req.headers['mcp-session-id'];
        const known = typeof sid === 'string' ? sessions.get(sid) : undefined;
        if (known) {
          // a session belongs to the account that opened it
          if (known.sub !== sub) {
            res.writeHead(403).end();
            return;
          }
          await known.transport.handleRequest(req, res, body);
          return;
        }
        if (typeof sid === 'string') {
          res.writeHead(404).end();
          return;
        }
        const server = serverFor(sub);
        const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            sessions.set(id, { sub, transport });
          },
        });
        transport.onclose = () => {
          if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
        };
        await server.connect(transport);
        await transport.handleRequest(req, res, body);
        return;
      }
      const server = serverFor(sub);
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  return {
    url,
    unauthorized,
    callers,
    revoked,
    seen,
    cancelled,
    waiting,
    moveTo(other, challengeHost = '127.0.0.1') {
      trust.challengeHost = challengeHost;
      trust.issuer = other.issuer;
      trust.jwks = createRemoteJWKSet(new URL(`${other.issuer}/jwks`));
      trust.metadataPath = '/custom/prm';
      movedMetadata = JSON.stringify({ resource: url, authorization_servers: [other.issuer], scopes_supported: ['mcp:tools'], bearer_methods_supported: ['header'] });
    },
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

/** A browser's cookies for the gateway: name → value. */
export type CookieJar = Map<string, string>;

function keepCookies(jar: CookieJar, res: Response): void {
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const eq = (pair ?? '').indexOf('=');
    if (eq <= 0) continue;
    const name = (pair ?? '').slice(0, eq);
    const value = (pair ?? '').slice(eq + 1);
    if (/max-age=0/i.test(c) || value === '') jar.delete(name);
    else jar.set(name, value);
  }
}

function cookieHeader(jar: CookieJar): string {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

/** A browser signed in to the gateway's dashboard with `credential` (an API key or a JWT). */
export async function signedInBrowser(gatewayUrl: string, credential: string): Promise<CookieJar> {
  const jar: CookieJar = new Map();
  const res = await fetch(`${gatewayUrl}/api/ui/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin: gatewayUrl }, body: JSON.stringify({ key: credential }) });
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  keepCookies(jar, res);
  return jar;
}

/**
 * Opens `url` (a gateway URL: the per-user start link or the callback) in the browser `jar`
 * without following a redirect; keeps the cookies it sets.
 */
export async function openInBrowser(jar: CookieJar, url: string): Promise<{ status: number; location: string | null; json: Record<string, unknown> }> {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie: cookieHeader(jar) } });
  keepCookies(jar, res);
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.status, location: res.headers.get('location'), json };
}

/**
 * The whole per-user authorization in the browser `jar` (signed in to the gateway): the start
 * link, the authorization server's login/consent as `user`, the callback. Resolves the callback's answer.
 */
export async function authorizeLinkAsUser(as: TestAuthServer, jar: CookieJar, link: string, gatewayUrl: string, user: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const start = await openInBrowser(jar, link);
  if (start.status !== 302 || start.location === null) throw new Error(`start link answered ${start.status}: ${JSON.stringify(start.json)}`);
  const back = await authorizeInBrowser(as, start.location, `${gatewayUrl}/api/oauth/callback`, user);
  return openInBrowser(jar, back);
}
