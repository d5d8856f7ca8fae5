/**
 * `KeyRepository`: gateway-issued API keys and virtual keys on LevelDB, one sublevel per kind
 * (`api_keys`, `virtual_keys`), keyed by key id, msgpackr values. A key is presented as
 * `Authorization: Bearer <secret>` (developer-mesh API reference, "Authentication",
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md); a virtual key is the id Bifrost's `vk_configs[].virtual_key_id`
 * refers to (https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml).
 *
 * Only the SHA-256 of a secret and its first 12 characters are stored; the secret never is.
 * Keys are never deleted: a revoked key stays, with `revoked_at`, for audit. Key changes are rare
 * and must be durable when the management API answers, so every `put` is its own
 * `db.batch(..., { sync: true })` (fsync), not a `BatchWriter` write.
 */
import type { RateLimitSettings, Role, ToolMode } from '../base/principal.js';
import { commitOps, putOp } from './batcher.js';
import type { RootDb, Sublevel } from './db.js';

/** `api_key`: a gateway API key (`trb_` secret); `virtual_key`: a virtual key (`tvk_` secret). */
export type KeyKind = 'api_key' | 'virtual_key';

/** The sublevel each kind lives in; pass `store.sublevel(KEY_SUBLEVELS[kind])` to the repository. */
export const KEY_SUBLEVELS: Readonly<Record<KeyKind, string>> = { api_key: 'api_keys', virtual_key: 'virtual_keys' };

/** The id prefix of each kind: ids are `key_<16 hex>` and `vk_<16 hex>`. */
export const KEY_ID_PREFIX: Readonly<Record<KeyKind, string>> = { api_key: 'key_', virtual_key: 'vk_' };

/** A stored API key or virtual key. Holds no secret: {@link hash} and {@link prefix} only. */
export interface StoredKey {
  /** `key_<16 hex>` for API keys, `vk_<16 hex>` for virtual keys. Not secret. */
  readonly id: string;
  readonly kind: KeyKind;
  /** Display name, 1..128 characters. */
  readonly name: string;
  /** SHA-256 of the full secret (UTF-8), 64 lower-case hex digits. The secret itself is never stored. */
  readonly hash: string;
  /** First 12 characters of the secret (e.g. `trb_AbC1x9Q2`), shown in listings so people can tell keys apart. */
  readonly prefix: string;
  /** Virtual keys are always `user`. */
  readonly role: Role;
  readonly tenant_id: string;
  /** Overrides of `DEFAULT_RATE_LIMITS`, per field; absent = the defaults. */
  readonly rate_limits?: Partial<RateLimitSettings>;
  /** How sessions of this key see the tool catalogue; absent = the gateway's `tool_modes.default`. */
  readonly tool_mode?: ToolMode;
  /** ISO-8601 UTC. */
  readonly created_at: string;
  /** ISO-8601 UTC; from this instant on the key no longer authenticates. Absent = never expires. */
  readonly expires_at?: string;
  /** ISO-8601 UTC; revoked keys are kept for audit and never authenticate. */
  readonly revoked_at?: string;
}

const HASH_HEX = /^[0-9a-f]{64}$/;

/** Creates the repository over `store`'s `api_keys` and `virtual_keys` sublevels. */
export function openKeyRepository(store: { readonly db: RootDb; sublevel<V>(name: string): Sublevel<V> }): KeyRepository {
  return new KeyRepository(store.db, store.sublevel<StoredKey>(KEY_SUBLEVELS.api_key), store.sublevel<StoredKey>(KEY_SUBLEVELS.virtual_key));
}

export class KeyRepository {
  readonly #db: RootDb;
  readonly #subs: Readonly<Record<KeyKind, Sublevel<StoredKey>>>;

  /**
   * @param db the root database (writes are `commitOps(db, ops, true)`).
   * @param apiKeys `store.sublevel('api_keys')`.
   * @param virtualKeys `store.sublevel('virtual_keys')`.
   */
  constructor(db: RootDb, apiKeys: Sublevel<StoredKey>, virtualKeys: Sublevel<StoredKey>) {
    this.#db = db;
    this.#subs = { api_key: apiKeys, virtual_key: virtualKeys };
  }

  /**
   * Every stored key of `kind`, revoked ones included, oldest first: by `created_at`, then by
   * `id` for keys created in the same millisecond.
   * @throws TypeError (as a rejection) for an unknown `kind`.
   */
  async list(kind: KeyKind): Promise<StoredKey[]> {
    const all = await this.#sub(kind, 'list').values().all();
    return all.sort(byCreation);
  }

  /**
   * The key `id` of `kind`, or `undefined`.
   * @throws TypeError (as a rejection) for an empty `id` or an unknown `kind`.
   */
  async get(kind: KeyKind, id: string): Promise<StoredKey | undefined> {
    const sub = this.#sub(kind, 'get');
    if (typeof id !== 'string' || id === '') throw new TypeError('KeyRepository.get: id must be a non-empty string');
    return sub.get(id);
  }

  /**
   * Creates or replaces the record `record.id` in the sublevel of `record.kind`; durable (fsync)
   * when it resolves. The record is stored as given (timestamps included).
   * @throws TypeError (as a rejection) for an unknown `kind`, an empty `id`, an `id` without its
   *   kind's prefix (`key_` / `vk_`), or a `hash` that is not 64 lower-case hex digits (a guard
   *   against storing a secret by mistake); classic-level's error if the write fails.
   */
  async put(record: StoredKey): Promise<void> {
    const sub = this.#sub(record.kind, 'put');
    const { id } = record;
    if (typeof id !== 'string' || id === '') throw new TypeError('KeyRepository.put: id must be a non-empty string');
    const prefix = KEY_ID_PREFIX[record.kind];
    if (!id.startsWith(prefix)) throw new TypeError(`KeyRepository.put: a ${record.kind} id must start with ${JSON.stringify(prefix)}, got ${JSON.stringify(id)}`);
    if (typeof record.hash !== 'string' || !HASH_HEX.test(record.hash)) {
      throw new TypeError(`KeyRepository.put: hash of ${id} must be a SHA-256 as 64 lower-case hex digits`);
    }
    await commitOps(this.#db, [putOp(sub, id, record)], true);
  }

  #sub(kind: KeyKind, method: string): Sublevel<StoredKey> {
    if (kind !== 'api_key' && kind !== 'virtual_key') {
      throw new TypeError(`KeyRepository.${method}: kind must be "api_key" or "virtual_key", got ${JSON.stringify(kind)}`);
    }
    return this.#subs[kind];
  }
}

/** Sort order of key listings: by `created_at` (ISO-8601 UTC strings compare as instants), then by `id`. */
export function byCreation(a: StoredKey, b: StoredKey): number {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
