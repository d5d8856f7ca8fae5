/**
 * OAuth configuration codecs (io-ts), both directions:
 *
 * - `auth.oauth`: the gateway as an OAuth 2.1 protected resource (RFC 9728 metadata, access
 *   tokens of configured authorization servers, audience bound to the gateway's resource URI per
 *   RFC 8707), beside API keys, JWTs and Basic.
 * - `oauth`: the gateway as an OAuth client of upstream MCP servers (`auth_type: "oauth"` and
 *   `"per_user_oauth"`): where the authorization server sends the browser back, and the key that
 *   seals tokens at rest.
 * - `oauth_config` of one MCP client (Bifrost `OAuthConfigRequest`): what starts the flow.
 *
 * MCP authorization: https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization
 */
import * as t from 'io-ts';

/** One trusted authorization server. */
export const OAuthIssuerConfig = t.exact(
  t.intersection([
    t.type({
      /** The issuer identifier (`iss`), e.g. `https://auth.example.com`; its metadata comes from OIDC / RFC 8414 discovery. */
      issuer: t.string,
    }),
    t.partial({
      /** JWKS URL, when discovery should be skipped. */
      jwks_uri: t.string,
    }),
  ]),
);

/** What holding one scope gives: a role and tools (`client-*`, `client-tool`; absent = every tool). */
export const OAuthScopeGrant = t.exact(
  t.partial({
    role: t.keyof({ admin: null, user: null }),
    tools: t.array(t.string),
  }),
);

/** `auth.oauth`: the downstream resource server. */
export const OAuthResourceConfig = t.exact(
  t.intersection([
    t.type({ issuers: t.array(OAuthIssuerConfig) }),
    t.partial({
      /** This gateway's resource URI (the `aud` tokens must carry); default `<public_url or bound address>/mcp`. */
      resource: t.string,
      /** Human-readable name in the metadata (`resource_name`). */
      resource_name: t.string,
      /** Scope → role and tools. Unset: every valid token is a `user` with every tool. */
      scopes: t.record(t.string, OAuthScopeGrant),
      /** Leeway on `exp`/`nbf`, seconds (default 30). */
      clock_tolerance_s: t.number,
    }),
  ]),
);
export type OAuthResourceConfig = t.TypeOf<typeof OAuthResourceConfig>;

/** The top-level `oauth` section: the gateway as an OAuth client of upstreams. */
export const UpstreamOAuthConfig = t.exact(
  t.partial({
    /** Public base URL of this gateway, e.g. `https://gw.example.com`; the redirect URI is `<public_url>/api/oauth/callback`. Default: the bound address. */
    public_url: t.string,
    /** Base64 of 32 bytes: AES-256-GCM key sealing upstream tokens; env TRIBUTARY_OAUTH_KEY overrides; unset: a key file `oauth-secret.key` (mode 0600) in data_dir. */
    encryption_key: t.string,
    /** Access tokens are refreshed this long before they expire, seconds (default 60). */
    refresh_skew_s: t.number,
    /** An authorization started and not completed expires after this long, seconds (default 600). */
    flow_ttl_s: t.number,
    /** A `per_user_oauth` user's own upstream connection is closed after this long without a call, seconds (default 900; 0 = never). */
    per_user_idle_s: t.number,
  }),
);
export type UpstreamOAuthConfig = t.TypeOf<typeof UpstreamOAuthConfig>;

/** `oauth_config` of an MCP client (Bifrost `OAuthConfigRequest`); every field optional: discovery fills the rest. */
export const ClientOAuthConfig = t.exact(
  t.partial({
    /** Grant: `authorization_code` (default; a person authorizes in a browser) or `client_credentials` (machine to machine). */
    grant_type: t.keyof({ authorization_code: null, client_credentials: null }),
    /** A pre-registered client id; absent: dynamic client registration (RFC 7591). */
    client_id: t.string,
    /** Its secret (confidential clients and `client_credentials`); sealed at rest, never returned. */
    client_secret: t.string,
    /** The authorization server (issuer) URL, when the upstream publishes no RFC 9728 metadata. */
    authorization_server: t.string,
    /** Scopes to ask for (default: the upstream's `scopes_supported`). */
    scopes: t.array(t.string),
  }),
);
export type ClientOAuthConfig = t.TypeOf<typeof ClientOAuthConfig>;

/** `auth.oauth` with defaults filled in. */
export interface OAuthResourceSettings {
  readonly issuers: readonly { readonly issuer: string; readonly jwks_uri?: string }[];
  readonly resource: string | undefined;
  readonly resource_name: string;
  readonly scopes: Readonly<Record<string, { readonly role?: 'admin' | 'user'; readonly tools?: readonly string[] }>>;
  readonly clock_tolerance_s: number;
}

/** `oauth` with defaults filled in. */
export interface UpstreamOAuthSettings {
  readonly public_url: string | undefined;
  readonly encryption_key: string | undefined;
  readonly refresh_skew_s: number;
  readonly flow_ttl_s: number;
  /** Seconds; 0 = never. */
  readonly per_user_idle_s: number;
}

function checkUrl(value: string, at: string, problems: string[]): void {
  try {
    const u = new URL(value);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`${at}: expected an http(s) URL`);
    if (u.hash !== '') problems.push(`${at}: must not have a fragment (RFC 8707 §2)`);
  } catch {
    problems.push(`${at}: not a URL: ${JSON.stringify(value)}`);
  }
}

/** Resolves `auth.oauth`; problems are appended as `path: what is wrong`. */
export function resolveOAuthResource(c: OAuthResourceConfig | undefined, problems: string[]): OAuthResourceSettings | undefined {
  if (c === undefined) return undefined;
  if (c.issuers.length === 0) problems.push('auth.oauth.issuers: at least one authorization server is needed');
  c.issuers.forEach((i, n) => {
    checkUrl(i.issuer, `auth.oauth.issuers.${n}.issuer`, problems);
    if (i.jwks_uri !== undefined) checkUrl(i.jwks_uri, `auth.oauth.issuers.${n}.jwks_uri`, problems);
  });
  if (c.resource !== undefined) checkUrl(c.resource, 'auth.oauth.resource', problems);
  const tolerance = c.clock_tolerance_s ?? 30;
  if (!(tolerance >= 0) || !Number.isFinite(tolerance)) problems.push('auth.oauth.clock_tolerance_s: expected seconds ≥ 0');
  return {
    issuers: c.issuers,
    resource: c.resource,
    resource_name: c.resource_name ?? 'Tributary MCP gateway',
    scopes: c.scopes ?? {},
    clock_tolerance_s: tolerance,
  };
}

/** Resolves the `oauth` section; env `TRIBUTARY_OAUTH_KEY` wins over `encryption_key`. */
export function resolveUpstreamOAuth(c: UpstreamOAuthConfig | undefined, env: NodeJS.ProcessEnv, problems: string[]): UpstreamOAuthSettings {
  const key = env['TRIBUTARY_OAUTH_KEY'] || c?.encryption_key;
  if (key !== undefined && Buffer.from(key, 'base64').length !== 32) problems.push('oauth.encryption_key: expected base64 of 32 bytes');
  if (c?.public_url !== undefined) checkUrl(c.public_url, 'oauth.public_url', problems);
  const skew = c?.refresh_skew_s ?? 60;
  const ttl = c?.flow_ttl_s ?? 600;
  if (!(skew >= 0)) problems.push('oauth.refresh_skew_s: expected seconds ≥ 0');
  if (!(ttl >= 1)) problems.push('oauth.flow_ttl_s: expected seconds ≥ 1');
  const idle = c?.per_user_idle_s ?? 900;
  if (!(idle >= 0) || !Number.isFinite(idle)) problems.push('oauth.per_user_idle_s: expected seconds ≥ 0 (0 = never)');
  return { public_url: c?.public_url?.replace(/\/+$/, ''), encryption_key: key, refresh_skew_s: skew, flow_ttl_s: ttl, per_user_idle_s: idle };
}
