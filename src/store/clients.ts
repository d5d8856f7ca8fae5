/**
 * `ClientRepository`: upstream MCP client records, keyed by `client_id` (Bifrost MCP client
 * schema: `config`, `tool_pricing`, virtual-key `tools_to_execute`). Configuration changes are
 * rare and must be durable when the management API answers, so every change is its own
 * `db.batch(..., { sync: true })` (fsync), not a `BatchWriter` write.
 */
import type { McpClientConfig } from '../config/schema.js';
import { commitOps, delOp, putOp } from './batcher.js';
import type { RootDb, Sublevel } from './db.js';

export interface VkConfig {
  virtual_key_id: string;
  virtual_key_name?: string;
  tools_to_execute: string[];
}

export interface ClientRecord {
  config: McpClientConfig & { client_id: string };
  /** USD per call, by upstream tool name. */
  tool_pricing: Record<string, number>;
  vk_configs: VkConfig[];
  /** ISO-8601 UTC. */
  created_at: string;
  /** ISO-8601 UTC. */
  updated_at: string;
  /**
   * For a client seeded from the config file: the config-file entry it was seeded from. While
   * `config` still equals it (not changed through the API), a changed config file updates it.
   */
  seed?: McpClientConfig;
}

/** A client change made through one node's API, for replication (cluster mode). */
export type ClientChange = { readonly kind: 'put'; readonly record: ClientRecord; readonly previousName?: string } | { readonly kind: 'delete'; readonly name: string };

/** How a record is stored: `seq` gives creation order (assigned on first put, kept on updates). */
export interface StoredClient {
  readonly seq: number;
  readonly record: ClientRecord;
}

/** Meta key listing the config-file client names already seeded into the store. */
export const SEEDED_CLIENTS_KEY = 'seeded_clients';

export class ClientRepository {
  readonly #db: RootDb;
  readonly #clients: Sublevel<StoredClient>;
  readonly #meta: Sublevel<unknown>;
  #seqLoaded: Promise<void> | undefined;
  #nextSeq = 0;

  constructor(db: RootDb, clients: Sublevel<StoredClient>, meta: Sublevel<unknown>) {
    this.#db = db;
    this.#clients = clients;
    this.#meta = meta;
  }

  /** The record of `clientId`, or `undefined`. */
  async get(clientId: string): Promise<ClientRecord | undefined> {
    return (await this.#clients.get(clientId))?.record;
  }

  /** Every record, in creation order (first `put` of each `client_id`). */
  async list(): Promise<ClientRecord[]> {
    const stored = await this.#clients.values().all();
    stored.sort((a, b) => a.seq - b.seq);
    return stored.map((s) => s.record);
  }

  /**
   * Creates or replaces the record of `record.config.client_id`; durable (fsync) when it resolves.
   * An update keeps the record's place in {@link list} order. The record is stored as given
   * (timestamps included). Rejects with a `TypeError` for an empty `client_id`, or with
   * classic-level's error if the write fails.
   */
  async put(record: ClientRecord): Promise<void> {
    const id = record.config.client_id;
    if (typeof id !== 'string' || id === '') throw new TypeError('ClientRepository.put: config.client_id must be a non-empty string');
    const existing = await this.#clients.get(id);
    const seq = existing?.seq ?? (await this.#takeSeq());
    await commitOps(this.#db, [putOp(this.#clients, id, { seq, record })], true);
  }

  /** Deletes the record of `clientId`; durable when it resolves. Resolves `true` if it existed. */
  async delete(clientId: string): Promise<boolean> {
    const existed = (await this.#clients.has(clientId)) === true;
    if (existed) await commitOps(this.#db, [delOp(this.#clients, clientId)], true);
    return existed;
  }

  /** The config-file client names already seeded into the store (`[]` before the first seeding). */
  async getSeeded(): Promise<string[]> {
    const value = await this.#meta.get(SEEDED_CLIENTS_KEY);
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  }

  /** Replaces the list of seeded config-file client names; durable when it resolves. */
  async setSeeded(names: readonly string[]): Promise<void> {
    await commitOps(this.#db, [putOp(this.#meta, SEEDED_CLIENTS_KEY, [...names])], true);
  }

  /** The next creation sequence number; the first call finds the highest one stored. */
  async #takeSeq(): Promise<number> {
    this.#seqLoaded ??= this.#clients
      .values()
      .all()
      .then((all) => {
        for (const s of all) this.#nextSeq = Math.max(this.#nextSeq, s.seq + 1);
      });
    try {
      await this.#seqLoaded;
    } catch (err) {
      this.#seqLoaded = undefined;
      throw err;
    }
    return this.#nextSeq++;
  }
}
