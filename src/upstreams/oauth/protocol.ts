/**
 * Shapes and small protocol helpers shared by the gateway's OAuth 2.1 client of upstream MCP
 * servers (MCP authorization,
 * https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization): the stored token
 * set and registration, record keys, the timed `fetch` for authorization servers, bearer and
 * client authentication headers, and scope arithmetic. No state; nothing here logs.
 */
import type { AuthorizationServerMetadata, OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { McpClientConfig } from '../../config/schema.js';

/** The principal of a client-wide (`auth_type: "oauth"`) authorization. */
export const CLIENT_WIDE = '*';
/** Requests to authorization servers give up after this long, ms. */
const AS_TIMEOUT_MS = 10_000;

/** What the management API shows of an authorization. */
export type OAuthStatus = 'authorized' | 'expired' | 'needs_authorization';

/** A client configuration with its id (as the management API stores it). */
export type OAuthClient = McpClientConfig & { readonly client_id: string };

/** The tokens of one authorization, as stored (sealed) and cached in memory. */
export interface TokenSet {
  readonly access_token: string;
  readonly token_type: string;
  readonly refresh_token?: string;
  readonly scope?: string;
  /** Epoch ms; absent when the server did not say. */
  readonly expires_at?: number;
}

/** The gateway's registration with a client's authorization server (stored sealed). */
export interface Registration {
  readonly client_information: OAuthClientInformationMixed;
  readonly authorization_server: string;
  readonly metadata: AuthorizationServerMetadata | undefined;
  /** The RFC 8707 resource indicator of the upstream. */
  readonly resource: string;
  readonly scope: string | undefined;
  readonly grant_type: 'authorization_code' | 'client_credentials';
}

/** Authenticated encryption of stored values, bound to `aad` (AES-256-GCM: `providers/secret-box.ts`). */
export interface Sealer {
  seal(plaintext: string, aad: string): string;
  /** @throws when the value does not open (wrong key, altered, or bound to another `aad`). */
  open(sealed: string, aad: string): string;
}

/** The grant store key of `principal`'s tokens for `clientId`. */
export function tokenKey(clientId: string, principal: string): string {
  return `token:${clientId}:${principal}`;
}

/** The grant store key of `clientId`'s registration. */
export function clientKey(clientId: string): string {
  return `client:${clientId}`;
}

/** `fetch` to authorization servers, aborted after {@link AS_TIMEOUT_MS} (and by the caller's signal). */
export const timedFetch: FetchLike = (url, init) => fetch(url, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(AS_TIMEOUT_MS)]) : AbortSignal.timeout(AS_TIMEOUT_MS) });

/** Why an OAuth step failed, without secrets: the SDK's OAuth errors carry the server's `error` code. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.slice(0, 300);
  return 'unknown error';
}

/** The union of two space-separated scope lists, in first-seen order; `undefined` when both are. */
export function mergeScopes(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined && b === undefined) return undefined;
  return [...new Set(`${a ?? ''} ${b ?? ''}`.split(' ').filter(Boolean))].join(' ');
}

/** The SDK helpers' `metadata` option of `reg` (omitted when there is none). */
export function withMetadata(reg: Registration): { metadata?: AuthorizationServerMetadata } {
  return reg.metadata ? { metadata: reg.metadata } : {};
}

/**
 * The token set to store from a token response: a response without a refresh token keeps
 * `previousRefresh` (RFC 6749 §6); `expires_in` (s) becomes an epoch-ms `expires_at` from `now`.
 */
export function toTokenSet(tokens: OAuthTokens, previousRefresh: string | undefined, now: number): TokenSet {
  const refresh = tokens.refresh_token ?? previousRefresh;
  return {
    access_token: tokens.access_token,
    token_type: tokens.token_type,
    ...(refresh !== undefined ? { refresh_token: refresh } : {}),
    ...(tokens.scope !== undefined ? { scope: tokens.scope } : {}),
    ...(tokens.expires_in !== undefined ? { expires_at: now + tokens.expires_in * 1000 } : {}),
  };
}
