/**
 * The key management API (admin only; authorization runs before these handlers). API keys are
 * presented as `Authorization: Bearer <key>` (developer-mesh API reference, "Authentication",
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md); virtual keys are what Bifrost's `vk_configs[].virtual_key_id`
 * names (https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml).
 *
 * - `POST   /api/auth/keys` → 201 `{key, secret, note}`; the secret (`trb_...`) is in this answer only
 * - `GET    /api/auth/keys` → `{keys, count}`, oldest first (`created_at`, then id), revoked keys included
 * - `GET    /api/auth/keys/{id}` → the key, or 404 `NOT_FOUND`
 * - `DELETE /api/auth/keys/{id}` → `{status: "revoked", id}` (idempotent), or 404 `NOT_FOUND`
 * - the same under `/api/auth/virtual-keys` with `virtual_key` / `virtual_keys` and `tvk_...`
 *   secrets; their bodies have no `role` (virtual keys are always `user`)
 *
 * Answers show the public view of a key: the stored record without `hash`. Every change is
 * durable before the answer, and is announced with `StoreChanged` (`tags: ['api_keys']` or
 * `['virtual_keys']`).
 */
import type { KeyKind, KeyRegistry, StoredKey } from '../../auth/keys.js';
import { GatewayError } from '../../base/errors.js';
import { CreateApiKeyBody, CreateVirtualKeyBody, decodeCreateApiKey, decodeCreateVirtualKey } from '../../codecs/keys.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import type { HeaderList } from '../../base/http.js';
import { ok, type RestReply, type RestRequest, type RestRouter } from '../rest/router.js';

/** A key as the API shows it: the stored record without `hash`. */
export type PublicKeyView = Omit<StoredKey, 'hash'>;

/** The record without `hash`. */
export function publicKeyView(record: StoredKey): PublicKeyView {
  const { hash: _hash, ...view } = record;
  return view;
}

/** Said next to every secret in a create answer. */
export const SECRET_NOTE = 'store the secret now: it is not shown again';

/** Create answers carry a secret: no cache may keep them. */
const SECRET_HEADERS: HeaderList = [
  ['Content-Type', 'application/json'],
  ['Cache-Control', 'no-store'],
];

interface Surface {
  readonly kind: KeyKind;
  /** Path of the collection. */
  readonly base: string;
  /** Field holding one key in the create answer. */
  readonly one: string;
  /** Field holding the list. */
  readonly many: string;
  /** `StoreChanged` tag. */
  readonly tag: string;
  /** For messages and logs. */
  readonly label: string;
}

const SURFACES: readonly Surface[] = [
  { kind: 'api_key', base: '/api/auth/keys', one: 'key', many: 'keys', tag: 'api_keys', label: 'API key' },
  { kind: 'virtual_key', base: '/api/auth/virtual-keys', one: 'virtual_key', many: 'virtual_keys', tag: 'virtual_keys', label: 'Virtual key' },
];

export class KeyAdmin {
  /**
   * @param registry the key registry (already loaded).
   * @param bus where `StoreChanged` is published after each change.
   * @param log gets one line per change: ids, names, roles, tenants; never a secret or hash.
   */
  constructor(
    private readonly registry: KeyRegistry,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {}

  /**
   * `POST`: decodes the body, creates the key, answers 201 `{<one>: view, secret, note}` with
   * `Cache-Control: no-store`. Rejects with GatewayError `VALIDATION_ERROR` (`details.problems`,
   * each naming its field path) for a bad body, or the store's error (answered 500).
   */
  private async create(s: Surface, req: RestRequest): Promise<RestReply> {
    const now = Date.now();
    const body = s.kind === 'api_key' ? decodeCreateApiKey(req.body, now) : decodeCreateVirtualKey(req.body, now);
    let created;
    try {
      created = await this.registry.create(s.kind, body);
    } catch (err) {
      // The registry re-checks its input against its own clock; the body passed decoding, so this is a race with the clock.
      if (err instanceof RangeError) throw new GatewayError('VALIDATION_ERROR', `Invalid request body: ${err.message}`, { problems: [err.message] });
      throw err;
    }
    const { record, secret } = created;
    this.bus.publish({ event_type: 'StoreChanged', tags: [s.tag] });
    this.log.info(`${s.label} created`, { id: record.id, name: record.name, role: record.role, tenant_id: record.tenant_id, prefix: record.prefix });
    return { status: 201, body: { [s.one]: publicKeyView(record), secret, note: SECRET_NOTE }, headers: SECRET_HEADERS };
  }

  /** `GET` collection: `{<many>: views, count}`. */
  private list(s: Surface): RestReply {
    const views = this.registry.list(s.kind).map(publicKeyView);
    return ok({ [s.many]: views, count: views.length });
  }

  /** `GET` one: the view. @throws GatewayError `NOT_FOUND` (`details.id`). */
  private get(s: Surface, req: RestRequest): RestReply {
    const id = req.params['id'] ?? '';
    const record = this.registry.get(s.kind, id);
    if (record === undefined) throw notFound(s, id);
    return ok(publicKeyView(record));
  }

  /**
   * `DELETE` one: revokes it (durable before the answer), `{status: "revoked", id}`; a second
   * revoke answers the same without a change or event. @throws GatewayError `NOT_FOUND`.
   */
  private async revoke(s: Surface, req: RestRequest): Promise<RestReply> {
    const id = req.params['id'] ?? '';
    const wasRevoked = this.registry.get(s.kind, id)?.revoked_at !== undefined;
    if (!(await this.registry.revoke(s.kind, id))) throw notFound(s, id);
    if (!wasRevoked) {
      this.bus.publish({ event_type: 'StoreChanged', tags: [s.tag] });
      this.log.info(`${s.label} revoked`, { id });
    }
    return ok({ status: 'revoked', id });
  }

  /** Registers the eight routes on `router`. */
  register(router: RestRouter): void {
    for (const s of SURFACES) {
      router
        .on('POST', s.base, (r) => this.create(s, r), {
          summary: `Create ${s.label.toLowerCase()} (the secret is shown once)`,
          tag: 'access',
          access: 'admin',
          body: s.kind === 'api_key' ? CreateApiKeyBody : CreateVirtualKeyBody,
          responses: { 201: { description: `\`{${s.one}, secret, note}\``, schema: { type: 'object', required: [s.one, 'secret'] } }, 400: { description: 'Invalid body' } },
        })
        .on('GET', s.base, () => this.list(s), { summary: `List ${s.many.replace('_', ' ')}`, tag: 'access', access: 'admin', responses: { 200: { description: `\`{${s.many}, count}\``, schema: { type: 'object', required: [s.many, 'count'] } } } })
        .on('GET', `${s.base}/:id`, (r) => this.get(s, r), { summary: `One ${s.label.toLowerCase()}`, tag: 'access', access: 'admin', responses: { 200: { description: 'The key without its secret' }, 404: { description: 'Not found' } } })
        .on('DELETE', `${s.base}/:id`, (r) => this.revoke(s, r), { summary: `Revoke ${s.label.toLowerCase()}`, tag: 'access', access: 'admin', responses: { 200: { description: '`{status:"revoked", id}`' }, 404: { description: 'Not found' } } });
    }
  }
}

function notFound(s: Surface, id: string): GatewayError {
  return new GatewayError('NOT_FOUND', `${s.label} not found`, { id });
}
