/**
 * Discovery and registration of the gateway as an OAuth client of an upstream MCP server (MCP
 * authorization, https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization):
 * the upstream's Protected Resource Metadata (RFC 9728) names the authorization server, whose
 * metadata comes from RFC 8414 / OIDC discovery (`oauth_config.authorization_server` overrides it
 * for upstreams that publish none); then a configured `client_id` (and secret), else dynamic client
 * registration (RFC 7591). The SDK's helpers do the protocol work. Stateless: the caller stores
 * the result.
 */
import { discoverAuthorizationServerMetadata, discoverOAuthServerInfo, registerClient } from '@modelcontextprotocol/sdk/client/auth.js';
import type { AuthorizationServerMetadata, OAuthClientInformationMixed } from '@modelcontextprotocol/sdk/shared/auth.js';
import { GatewayError } from '../../base/errors.js';
import { describe, mergeScopes, timedFetch, type OAuthClient, type Registration } from './protocol.js';

/** What a registration reads from the caller when it needs it (read late: earlier challenges may still arrive). */
export interface RegistrationContext {
  /** The `resource_metadata` URL an upstream's 401 named (RFC 9728 §5.1): it wins over the well-known URLs. */
  readonly metadataHint: () => URL | undefined;
  /** Scopes an upstream asked for in `insufficient_scope` challenges (RFC 6750 §3.1). */
  readonly scopeHint: () => string | undefined;
  /** The gateway's callback URL, registered for the code grant. */
  readonly redirectUri: () => string;
}

/**
 * Discovers `client`'s authorization server and registers the gateway with it (or takes the
 * configured client id). Does not store anything.
 * @param clientSecret the secret given at creation, else `oauth_config.client_secret`.
 * @throws GatewayError OAUTH_ERROR with `step` `discovery` or `registration`.
 */
export async function discoverAndRegister(client: OAuthClient, clientSecret: string | undefined, ctx: RegistrationContext): Promise<Registration> {
  const oc = client.oauth_config ?? {};
  // a config-file client may carry its secret in the file (like `headers`)
  clientSecret ??= oc.client_secret;
  const serverUrl = new URL(client.connection_string ?? '');
  serverUrl.hash = '';
  let asUrl: string;
  let metadata: AuthorizationServerMetadata | undefined;
  let resource = serverUrl.href;
  let scopesSupported: string[] | undefined;
  try {
    if (oc.authorization_server !== undefined) {
      asUrl = oc.authorization_server;
      metadata = await discoverAuthorizationServerMetadata(asUrl, { fetchFn: timedFetch });
    } else {
      // a running upstream's 401 may have named its metadata (RFC 9728 §5.1): that wins over the well-known URLs
      const hint = ctx.metadataHint();
      const info = await discoverOAuthServerInfo(serverUrl, { fetchFn: timedFetch, ...(hint !== undefined ? { resourceMetadataUrl: hint } : {}) });
      asUrl = info.authorizationServerUrl;
      metadata = info.authorizationServerMetadata;
      if (info.resourceMetadata) {
        const declared = new URL(info.resourceMetadata.resource);
        // RFC 9728 §3.3: the metadata must be about this resource
        if (declared.origin !== serverUrl.origin) throw new Error(`protected resource metadata names another resource (${declared.origin})`);
        resource = info.resourceMetadata.resource;
        scopesSupported = info.resourceMetadata.scopes_supported;
      }
    }
    if (metadata === undefined) throw new Error(`no authorization server metadata (RFC 8414 / OpenID Connect discovery) at ${asUrl}`);
  } catch (err) {
    throw new GatewayError('OAUTH_ERROR', `OAuth discovery for ${client.name} failed: ${describe(err)}`, { client: client.name, step: 'discovery' });
  }
  const grant = oc.grant_type ?? 'authorization_code';
  const scope = mergeScopes(oc.scopes !== undefined ? oc.scopes.join(' ') : scopesSupported?.join(' '), ctx.scopeHint());
  let info: OAuthClientInformationMixed;
  if (oc.client_id !== undefined) {
    info = { client_id: oc.client_id, ...(clientSecret !== undefined ? { client_secret: clientSecret } : {}) };
  } else {
    try {
      info = await registerClient(asUrl, {
        ...(metadata ? { metadata } : {}),
        clientMetadata:
          grant === 'client_credentials'
            ? { client_name: `Tributary (${client.name})`, redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', ...(scope ? { scope } : {}) }
            : { client_name: `Tributary (${client.name})`, redirect_uris: [ctx.redirectUri()], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', ...(scope ? { scope } : {}) },
        fetchFn: timedFetch,
      });
    } catch (err) {
      throw new GatewayError('OAUTH_ERROR', `Dynamic client registration (RFC 7591) with ${asUrl} failed: ${describe(err)}; configure oauth_config.client_id`, { client: client.name, step: 'registration' });
    }
  }
  return { client_information: info, authorization_server: asUrl, metadata, resource, scope, grant_type: grant };
}

/**
 * Discovery again after an upstream refused a fresh token: the authorization server and resource
 * the upstream names now (from the challenge's `resource_metadata`, RFC 9728 §5.1, else the
 * well-known URLs). A client with a configured `authorization_server` keeps `reg`'s.
 * @throws GatewayError OAUTH_ERROR (`step: "discovery"`), also when the metadata names a
 *   resource on another origin than `serverOrigin` (RFC 9728 §3.3).
 */
export async function rediscoverServer(client: OAuthClient, reg: Registration, serverOrigin: string, hint: URL | undefined): Promise<{ readonly asUrl: string; readonly resource: string }> {
  let asUrl = reg.authorization_server;
  let resource = reg.resource;
  if (client.oauth_config?.authorization_server === undefined) {
    try {
      const info = await discoverOAuthServerInfo(new URL(client.connection_string ?? ''), { fetchFn: timedFetch, ...(hint !== undefined ? { resourceMetadataUrl: hint } : {}) });
      if (info.resourceMetadata) {
        const declared = new URL(info.resourceMetadata.resource);
        if (declared.origin !== serverOrigin) throw new Error(`protected resource metadata names another resource (${declared.origin})`);
        resource = info.resourceMetadata.resource;
      }
      asUrl = info.authorizationServerUrl;
    } catch (err) {
      throw new GatewayError('OAUTH_ERROR', `OAuth discovery for ${client.name} after its 401 failed: ${describe(err)}`, { client: client.name, step: 'discovery' });
    }
  }
  return { asUrl, resource };
}
