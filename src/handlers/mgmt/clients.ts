/**
 * The MCP client management API (Bifrost MCP schemas, https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml), on LevelDB:
 *
 * - `GET  /api/mcp/clients?limit&offset&search` → `{clients, count, total_count, limit, offset}`
 * - `GET  /api/mcp/client/{id}` → one client `{config, tools, state, vk_configs}`
 * - `POST /api/mcp/client` → 201 and the client; it connects at once, its tools reach open
 *   sessions with `tools/list_changed`
 * - `PUT  /api/mcp/client/{id}` → the client; `connection_type`, `connection_string`,
 *   `stdio_config`, `auth_type` are immutable; `tool_pricing` and `vk_configs` live here
 * - `DELETE /api/mcp/client/{id}` → disconnect, stop its subprocess, drop its tools
 * - `POST /api/mcp/client/{id}/reconnect`
 *
 * Every change is written to the store before the answer, so it survives a restart. Secrets
 * (header values, env values, URL passwords) are redacted in every response. Mutations run one at
 * a time.
 */
import { randomUUID } from 'node:crypto';
import { GatewayError } from '../../base/errors.js';
import { CreateClientBody, UpdateClientBody, decodeCreateClient, decodeUpdateClient } from '../../codecs/mgmt.js';
import { checkClient } from '../../config/load.js';
import type { McpClientConfig } from '../../config/schema.js';
import { McpClientConfig as McpClientConfigCodec } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { ClientChange, ClientRecord, ClientRepository } from '../../store/clients.js';
import type { UpstreamManager } from '../../upstreams/manager.js';
import type { EventBus } from '../../streams/events.js';
import type { VkClientPolicy } from '../../auth/access.js';
import { intParam } from '../rest/params.js';
import { ok, type RestReply, type RestRequest, type RestRouter } from '../rest/router.js';
import { CLIENT_WIDE, type OAuthClient, type UpstreamOAuth } from '../../upstreams/oauth/upstream-oauth.js';

const REDACTED = '<redacted>';
/** Response schema of one client (OpenAPI). */
const CLIENT_VIEW = { type: 'object', required: ['config', 'state'], properties: { config: { type: 'object' }, tools: { type: 'array' }, state: { type: 'string' }, last_error: { type: ['string', 'null'], description: 'Why the client is not connected: spawn failure, exit code and last stderr lines, HTTP status or network cause; null while connected' }, next_retry_at: { type: ['string', 'null'], description: 'ISO-8601 time of the next automatic reconnect attempt, while one is scheduled' }, vk_configs: { type: 'array' } } };
const IMMUTABLE = ['connection_type', 'connection_string', 'stdio_config', 'auth_type'] as const;
/** Fields whose change needs the upstream connection to be made again. */
const RECONNECT_FIELDS = ['name', 'headers', 'tool_prefix', 'request_timeout_ms', 'inprocess_server'] as const;

/** A copy of `config` with header values, env values and URL passwords replaced by `<redacted>`. */
export function redactConfig(config: McpClientConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  if (config.headers) out['headers'] = Object.fromEntries(Object.keys(config.headers).map((k) => [k, REDACTED]));
  if (config.stdio_config) {
    out['stdio_config'] = {
      ...config.stdio_config,
      ...(config.stdio_config.envs ? { envs: config.stdio_config.envs.map((e) => `${e.slice(0, e.indexOf('='))}=${REDACTED}`) } : {}),
    };
  }
  if (config.oauth_config?.client_secret !== undefined) out['oauth_config'] = { ...config.oauth_config, client_secret: REDACTED };
  if (config.connection_string) {
    try {
      const u = new URL(config.connection_string);
      if (u.password) {
        u.password = REDACTED;
        out['connection_string'] = u.toString();
      }
    } catch {
      // not a URL: leave as is
    }
  }
  return out;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function withoutId(c: McpClientConfig): McpClientConfig {
  const { client_id: _id, ...rest } = c;
  return rest as McpClientConfig;
}

export class ClientAdmin {
  private readonly records = new Map<string, ClientRecord>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Cluster mode: told of every create, update and delete made through this node's API, after it is applied. */
  onLocalChange: ((change: ClientChange) => void) | undefined;

  /**
   * @param isVirtualKey whether a `vk_configs[].virtual_key_id` names a virtual key the gateway
   * issued; absent = any id accepted.
   */
  constructor(
    private readonly manager: UpstreamManager,
    private readonly repo: ClientRepository,
    private readonly log: Logger,
    private readonly bus: EventBus,
    private readonly isVirtualKey?: (id: string) => boolean,
    /** Upstream OAuth (`auth_type` `oauth`); absent: such clients are refused. */
    private readonly oauth?: UpstreamOAuth,
  ) {}

  private changed(event: 'ProviderRegistered' | 'ProviderDeregistered' | undefined, config: McpClientConfig): void {
    if (event) this.bus.publish({ event_type: event, mcp_server_id: config.name, connection_type: config.connection_type });
    this.bus.publish({ event_type: 'StoreChanged', tags: ['mcp_clients'], mcp_server_id: config.name });
  }

  /**
   * Loads the stored clients, seeds config-file clients the store has not seen before (each name
   * once: a client deleted through the API stays deleted), and connects them all. A seeded client
   * not changed through the API since follows its config-file entry (new paths after a move, new
   * filters); one changed through the API keeps the API's version.
   */
  async init(configClients: readonly McpClientConfig[]): Promise<void> {
    for (const r of await this.repo.list()) this.records.set(r.config.client_id, r);
    const seeded = new Set(await this.repo.getSeeded());
    const byName = new Map([...this.records.values()].map((r) => [r.config.name, r]));
    for (const c of configClients) {
      const existing = byName.get(c.name);
      if (seeded.has(c.name)) {
        if (existing?.seed && !sameJson(existing.seed, c) && sameJson(withoutId(existing.config), withoutId(existing.seed))) {
          const resynced: ClientRecord = { ...existing, config: { ...c, client_id: existing.config.client_id }, seed: c, updated_at: new Date().toISOString() };
          await this.repo.put(resynced);
          this.records.set(resynced.config.client_id, resynced);
          this.log.info('MCP client updated from the config file', { name: c.name });
        }
        continue;
      }
      seeded.add(c.name);
      if (existing) continue;
      const now = new Date().toISOString();
      const record: ClientRecord = { config: { ...c, client_id: c.client_id ?? randomUUID() }, tool_pricing: {}, vk_configs: [], created_at: now, updated_at: now, seed: c };
      await this.repo.put(record);
      this.records.set(record.config.client_id, record);
    }
    await this.repo.setSeeded([...seeded]);
    await Promise.all([...this.records.values()].map((r) => this.connect(r)));
  }

  private async connect(record: ClientRecord): Promise<void> {
    const upstream = await this.manager.add(record.config);
    upstream.pricing = record.tool_pricing;
  }

  /** The virtual-key part of every client record, for {@link VirtualKeyAccess}. */
  vkPolicies(): VkClientPolicy[] {
    return [...this.records.values()].map((r) => ({
      name: r.config.name,
      allowOnAllVirtualKeys: r.config.allow_on_all_virtual_keys ?? false,
      vkConfigs: r.vk_configs,
    }));
  }

  /** Runs mutations one after another. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private find(id: string): ClientRecord {
    const r = this.records.get(id);
    if (!r) throw new GatewayError('CLIENT_NOT_FOUND', `MCP client not found: ${id}`, { client_id: id });
    return r;
  }

  /** The API view of a client (Bifrost `MCPClient`). */
  view(record: ClientRecord): Record<string, unknown> {
    const upstream = this.manager.get(record.config.name);
    return {
      config: { ...redactConfig(record.config), tool_pricing: record.tool_pricing },
      tools: (upstream?.catalogue.tools ?? []).map((t) => ({
        name: t['name'],
        description: t['description'] ?? '',
        parameters: t['inputSchema'] ?? { type: 'object' },
        strict: false,
      })),
      state: upstream?.state ?? 'disconnected',
      // upstream OAuth: a status only, never a token
      ...((record.config.auth_type === 'oauth' || record.config.auth_type === 'per_user_oauth') && this.oauth ? { oauth_status: this.oauth.status(record.config.client_id) } : {}),
      ...(record.config.auth_type === 'per_user_oauth' && this.oauth ? { oauth_users: this.oauth.authorizedPrincipals(record.config.client_id) } : {}),
      // why it is down (spawn failure, exit code and stderr, HTTP status or network cause) and the next retry
      last_error: upstream?.failure?.last_error ?? null,
      next_retry_at: upstream?.failure?.next_retry_at ?? null,
      vk_configs: record.vk_configs.map((v) => ({
        virtual_key_id: v.virtual_key_id,
        virtual_key_name: v.virtual_key_name ?? '',
        tools_to_execute: v.tools_to_execute,
      })),
    };
  }

  list(req: RestRequest): RestReply {
    const limit = intParam(req, 'limit', 50, 1, 500);
    const offset = intParam(req, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const search = (req.query.get('search') ?? '').toLowerCase();
    const all = [...this.records.values()].filter((r) => search === '' || r.config.name.toLowerCase().includes(search));
    const page = all.slice(offset, offset + limit).map((r) => this.view(r));
    return ok({ clients: page, count: page.length, total_count: all.length, limit, offset });
  }

  get(req: RestRequest): RestReply {
    return ok(this.view(this.find(req.params['id'] ?? '')));
  }

  create(req: RestRequest): Promise<RestReply> {
    const body = decodeCreateClient(req.body);
    return this.serial(async () => {
      const oauthWanted = body.auth_type === 'oauth' || body.auth_type === 'per_user_oauth';
      if (oauthWanted && (!this.oauth || (body.connection_type !== 'http' && body.connection_type !== 'sse'))) {
        throw new GatewayError('UNSUPPORTED_AUTH_TYPE', `auth_type "${body.auth_type ?? ''}" is supported for connection_type http and sse only`, { auth_type: body.auth_type });
      }
      if (body.auth_type === 'per_user_oauth' && (oauthConfigGrant(body.oauth_config) === 'client_credentials')) {
        throw new GatewayError('VALIDATION_ERROR', 'per_user_oauth needs the authorization_code grant (each user authorizes)', { problems: ['oauth_config.grant_type: client_credentials is for auth_type oauth'] });
      }
      const { oauth_config: oauthConfig, oauth_config_id: _i, ...rest } = body;
      // the client secret is sealed with the registration, never stored in the client record
      const { client_secret: clientSecret, ...oauthPublic } = (oauthConfig ?? {}) as { client_secret?: string };
      const config = {
        ...rest,
        ...(oauthWanted ? { oauth_config: oauthPublic } : {}),
        client_id: body.client_id ?? randomUUID(),
        is_ping_available: body.is_ping_available ?? true,
        allow_on_all_virtual_keys: body.allow_on_all_virtual_keys ?? false,
      } as McpClientConfig & {
        client_id: string;
      };
      this.validate(config);
      if (this.records.has(config.client_id)) throw new GatewayError('NAME_CONFLICT', `An MCP client with client_id ${config.client_id} exists`, { client_id: config.client_id });
      this.assertNameFree(config.name);
      // discovery and registration first: a client whose authorization server cannot be found is not created
      if (oauthWanted && this.oauth) await this.oauth.prepare(config, clientSecret);
      const now = new Date().toISOString();
      const record: ClientRecord = { config, tool_pricing: {}, vk_configs: [], created_at: now, updated_at: now };
      await this.repo.put(record);
      this.records.set(config.client_id, record);
      const started = oauthWanted && this.oauth ? await this.oauth.begin(config).catch(async (err: unknown) => {
        await this.repo.delete(config.client_id);
        this.records.delete(config.client_id);
        throw err;
      }) : undefined;
      await this.connect(this.records.get(config.client_id) ?? record);
      this.changed('ProviderRegistered', config);
      this.onLocalChange?.({ kind: 'put', record });
      this.log.info('MCP client created', { client_id: config.client_id, name: config.name, state: this.manager.get(config.name)?.state });
      const view = this.view(this.records.get(config.client_id) ?? record);
      if (started?.status === 'needs_authorization') {
        // Bifrost: a client with auth_type oauth answers with the URL that starts the flow
        return ok({ ...view, status: 'pending_oauth', authorize_url: started.authorization_url, message: 'Open authorize_url to authorize the gateway; the client connects after the callback' }, 201);
      }
      return ok(view, 201);
    });
  }

  update(req: RestRequest): Promise<RestReply> {
    const id = req.params['id'] ?? '';
    const body = decodeUpdateClient(req.body);
    return this.serial(async () => {
      const record = this.find(id);
      const old = record.config;
      for (const field of IMMUTABLE) {
        if (body[field] !== undefined && !sameJson(body[field], old[field])) {
          throw new GatewayError('IMMUTABLE_FIELD', `${field} cannot be changed; delete the client and create it again`, { field });
        }
      }
      if (body.client_id !== undefined && body.client_id !== id) throw new GatewayError('IMMUTABLE_FIELD', 'client_id cannot be changed', { field: 'client_id' });
      const next = this.merge(old, body);
      this.validate(next);
      if (next.name !== old.name) this.assertNameFree(next.name);
      const pricing = body.tool_pricing ?? record.tool_pricing;
      if (body.tool_pricing) this.checkPricing(old.name, body.tool_pricing);
      const unknownKeys = (body.vk_configs ?? []).map((v, i) => ({ i, id: v.virtual_key_id })).filter((v) => this.isVirtualKey && !this.isVirtualKey(v.id));
      if (unknownKeys.length > 0) {
        throw new GatewayError('VALIDATION_ERROR', 'vk_configs names virtual keys that do not exist (or are revoked)', {
          problems: unknownKeys.map((v) => `vk_configs.${v.i}.virtual_key_id: no virtual key ${JSON.stringify(v.id)}`),
        });
      }
      const updated: ClientRecord = {
        ...record,
        config: next,
        tool_pricing: pricing,
        vk_configs: body.vk_configs ?? record.vk_configs,
        updated_at: new Date().toISOString(),
      };
      await this.repo.put(updated);
      this.records.set(id, updated);
      const needsReconnect = RECONNECT_FIELDS.some((f) => !sameJson(next[f], old[f]));
      if (needsReconnect) {
        await this.manager.remove(old.name, 'reconfigured');
        await this.connect(updated);
      } else {
        this.manager.updateConfig(old.name, next);
        const upstream = this.manager.get(next.name);
        if (upstream) upstream.pricing = pricing;
      }
      this.changed(undefined, next);
      this.onLocalChange?.({ kind: 'put', record: updated, ...(next.name !== old.name ? { previousName: old.name } : {}) });
      return ok(this.view(updated));
    });
  }

  remove(req: RestRequest): Promise<RestReply> {
    const id = req.params['id'] ?? '';
    return this.serial(async () => {
      const record = this.find(id);
      await this.repo.delete(id);
      this.records.delete(id);
      await this.manager.remove(record.config.name, 'deleted');
      if (this.oauth && (record.config.auth_type === 'oauth' || record.config.auth_type === 'per_user_oauth')) await this.oauth.revokeAll(record.config);
      this.changed('ProviderDeregistered', record.config);
      this.onLocalChange?.({ kind: 'delete', name: record.config.name });
      this.log.info('MCP client deleted', { client_id: id, name: record.config.name });
      return ok({ status: 'deleted', client_id: id });
    });
  }

  reconnect(req: RestRequest): Promise<RestReply> {
    const id = req.params['id'] ?? '';
    return this.serial(async () => {
      const record = this.find(id);
      await this.manager.reconnect(record.config.name);
      return ok(this.view(record));
    });
  }

  /** The client record's config by id, for the OAuth callback. */
  oauthClient(id: string): OAuthClient | undefined {
    return this.records.get(id)?.config;
  }

  /**
   * An authorization of client `id` completed: stores `oauth_config_id` (client-wide ones) and
   * reconnects the client.
   */
  oauthAuthorized(id: string, principal: string, configId: string): Promise<void> {
    return this.serial(async () => {
      const record = this.records.get(id);
      if (!record || principal !== CLIENT_WIDE) return;
      if (record.config.oauth_config_id !== configId) {
        const updated: ClientRecord = { ...record, config: { ...record.config, oauth_config_id: configId }, updated_at: new Date().toISOString() };
        await this.repo.put(updated);
        this.records.set(id, updated);
        this.manager.updateConfig(record.config.name, updated.config);
      }
      if (this.manager.get(record.config.name)?.state !== 'connected') await this.manager.reconnect(record.config.name).catch((err: unknown) => this.log.warn('reconnect after OAuth authorization failed', { name: record.config.name, error: err }));
      this.changed(undefined, record.config);
    });
  }

  /** `POST /api/mcp/client/{id}/oauth/authorize`: starts (again) the authorization of an `oauth` client. */
  authorize(req: RestRequest): Promise<RestReply> {
    const id = req.params['id'] ?? '';
    return this.serial(async () => {
      const record = this.find(id);
      if (!this.oauth || (record.config.auth_type !== 'oauth' && record.config.auth_type !== 'per_user_oauth')) throw new GatewayError('UNSUPPORTED_AUTH_TYPE', `MCP client ${record.config.name} does not use auth_type "oauth"`, { auth_type: record.config.auth_type ?? 'none' });
      const started = await this.oauth.begin(record.config);
      if (started.status === 'authorized') return ok({ status: 'authorized', client_id: id });
      return ok({ status: 'pending_oauth', client_id: id, authorize_url: started.authorization_url });
    });
  }

  /** Every client record (for replication). */
  snapshot(): ClientRecord[] {
    return [...this.records.values()];
  }

  /**
   * Applies a client record changed on another node (cluster mode): stored locally, the upstream
   * connected, reconfigured in place, or replaced. A local record with the same name or
   * `client_id` is replaced (nodes seeding the same config-file client converge on one record).
   * Resolves `false` when nothing changed.
   */
  applyRemote(record: ClientRecord): Promise<boolean> {
    return this.serial(async () => {
      const name = record.config.name;
      const byName = [...this.records.values()].find((r) => r.config.name === name);
      const byId = this.records.get(record.config.client_id);
      const olds = [...new Set([byName, byId])].filter((r): r is ClientRecord => r !== undefined);
      if (olds.length === 1 && sameJson(olds[0], record)) return false;
      const keep = byName !== undefined && ![...IMMUTABLE, ...RECONNECT_FIELDS].some((f) => !sameJson(record.config[f], byName.config[f])) ? byName : undefined;
      for (const r of olds) {
        if (r.config.client_id !== record.config.client_id) await this.repo.delete(r.config.client_id);
        this.records.delete(r.config.client_id);
        if (r !== keep) await this.manager.remove(r.config.name, 'reconfigured');
      }
      await this.repo.put(record);
      this.records.set(record.config.client_id, record);
      if (keep) {
        this.manager.updateConfig(name, record.config);
        const upstream = this.manager.get(name);
        if (upstream) upstream.pricing = record.tool_pricing;
      } else {
        await this.connect(record);
      }
      this.changed(olds.length === 0 ? 'ProviderRegistered' : undefined, record.config);
      this.log.info('MCP client changed on another node applied', { client_id: record.config.client_id, name });
      return true;
    });
  }

  /** Applies a client deletion made on another node (cluster mode); `false` when there was no such client. */
  applyRemoteDelete(name: string): Promise<boolean> {
    return this.serial(async () => {
      const record = [...this.records.values()].find((r) => r.config.name === name);
      if (record === undefined) return false;
      await this.repo.delete(record.config.client_id);
      this.records.delete(record.config.client_id);
      await this.manager.remove(name, 'deleted');
      this.changed('ProviderDeregistered', record.config);
      this.log.info('MCP client deleted on another node', { client_id: record.config.client_id, name });
      return true;
    });
  }

  private merge(old: McpClientConfig & { client_id: string }, body: UpdateClientBody): McpClientConfig & { client_id: string } {
    const { tool_pricing: _p, vk_configs: _v, oauth_config: _o, oauth_config_id: _i, ...fields } = body;
    return { ...old, ...fields, client_id: old.client_id } as McpClientConfig & { client_id: string };
  }

  private validate(config: McpClientConfig): void {
    const problems: string[] = [];
    if (!McpClientConfigCodec.is(config)) problems.push('(body): not a valid client configuration');
    checkClient(config, '', problems);
    if (problems.length > 0) throw new GatewayError('VALIDATION_ERROR', `Invalid request body: ${problems.join('; ')}`, { problems });
  }

  private assertNameFree(name: string): void {
    for (const r of this.records.values()) {
      if (r.config.name === name) throw new GatewayError('NAME_CONFLICT', `An MCP client named ${name} exists`, { name });
    }
  }

  private checkPricing(name: string, pricing: Record<string, number>): void {
    const tools = new Set((this.manager.get(name)?.catalogue.tools ?? []).map((t) => t['name'] as string));
    const problems: string[] = [];
    for (const [tool, usd] of Object.entries(pricing)) {
      if (!tools.has(tool)) problems.push(`tool_pricing.${tool}: no such tool on this client`);
      if (!(usd >= 0) || !Number.isFinite(usd)) problems.push(`tool_pricing.${tool}: expected a non-negative number of USD`);
    }
    if (problems.length > 0) throw new GatewayError('VALIDATION_ERROR', `Invalid request body: ${problems.join('; ')}`, { problems });
  }

  /** Registers the routes on `router`. */
  register(router: RestRouter): void {
    router
      .on('GET', '/api/mcp/clients', (r) => this.list(r), {
        summary: 'List upstream MCP clients',
        tag: 'mcp-clients',
        access: 'admin',
        query: {
          limit: { description: 'Page size', schema: { type: 'integer', minimum: 1 } },
          offset: { description: 'Items to skip', schema: { type: 'integer', minimum: 0 } },
          search: { description: 'Name contains' },
        },
        responses: { 200: { description: '`{clients, count, total_count, limit, offset}`', schema: { type: 'object', required: ['clients', 'total_count'] } } },
      })
      .on('GET', '/api/mcp/client/:id', (r) => this.get(r), { summary: 'One upstream MCP client', tag: 'mcp-clients', access: 'admin', responses: { 200: { description: '`{config, tools, state, vk_configs}`', schema: CLIENT_VIEW }, 404: { description: 'No such client' } } })
      .on('POST', '/api/mcp/client', (r) => this.create(r), {
        summary: 'Add an upstream MCP client (connects at once)',
        tag: 'mcp-clients',
        access: 'admin',
        body: CreateClientBody,
        responses: { 201: { description: 'The client', schema: CLIENT_VIEW }, 400: { description: 'Invalid body' }, 409: { description: 'Name taken' } },
      })
      .on('PUT', '/api/mcp/client/:id', (r) => this.update(r), {
        summary: 'Change an upstream MCP client (tool_pricing, vk_configs, filters, ...)',
        tag: 'mcp-clients',
        access: 'admin',
        body: UpdateClientBody,
        responses: { 200: { description: 'The client', schema: CLIENT_VIEW }, 400: { description: 'Invalid body or immutable field' }, 404: { description: 'No such client' } },
      })
      .on('DELETE', '/api/mcp/client/:id', (r) => this.remove(r), { summary: 'Remove an upstream MCP client', tag: 'mcp-clients', access: 'admin', responses: { 200: { description: 'Removed' }, 404: { description: 'No such client' } } })
      .on('POST', '/api/mcp/client/:id/oauth/authorize', (r) => this.authorize(r), {
        summary: 'Start (again) the OAuth authorization of an upstream client with auth_type oauth',
        tag: 'mcp-clients',
        access: 'admin',
        responses: { 200: { description: '`{status: "pending_oauth", authorize_url}`, or `{status: "authorized"}` (client credentials)' }, 400: { description: 'Not an oauth client' }, 404: { description: 'No such client' }, 502: { description: 'OAuth discovery, registration or token request failed' } },
      })
      .on('POST', '/api/mcp/client/:id/reconnect', (r) => this.reconnect(r), { summary: 'Reconnect an upstream MCP client', tag: 'mcp-clients', access: 'admin', responses: { 200: { description: 'The client', schema: CLIENT_VIEW }, 404: { description: 'No such client' } } });
  }
}

function oauthConfigGrant(c: unknown): unknown {
  return typeof c === 'object' && c !== null ? (c as { grant_type?: unknown }).grant_type : undefined;
}
