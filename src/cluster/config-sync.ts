/**
 * Configuration shared by every node, in a JetStream KV bucket (`<name>_config`) with a watch
 * (https://docs.nats.io/nats-concepts/jetstream/key-value-store):
 *
 * | key | value |
 * |---|---|
 * | `clients.<name>` | the MCP client record: config, `tool_pricing`, `vk_configs` |
 * | `keys.api_key.<id>`, `keys.virtual_key.<id>` | the key record: SHA-256 hash and prefix, never the secret |
 *
 * A change through any node's management API is applied and stored there first, then put in the
 * bucket; every other node's watch applies it and stores it in its own LevelDB. Last writer wins
 * per key; a revocation is never undone. A node's own writes come back through the watch and are
 * skipped by revision. Puts that fail while NATS is unreachable are retried every second until
 * they succeed (the change already applies on the node that made it).
 *
 * At start the node puts every local record the bucket has never seen (the first node seeds the
 * bucket; a key deleted in the bucket stays deleted), then applies the bucket's current values.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from '../log/logger.js';
import type { ClientChange, ClientRecord } from '../store/clients.js';
import type { KeyKind, StoredKey } from '../store/keys.js';

/** What the sync needs of the MCP client administration. */
export interface ClientReplica {
  snapshot(): ClientRecord[];
  applyRemote(record: ClientRecord): Promise<boolean>;
  applyRemoteDelete(name: string): Promise<boolean>;
  onLocalChange: ((change: ClientChange) => void) | undefined;
}

/** What the sync needs of the key registry. */
export interface KeyReplica {
  list(kind: KeyKind): StoredKey[];
  applyRemote(record: StoredKey): Promise<boolean>;
  onLocalChange: ((record: StoredKey) => void) | undefined;
}

const RETRY_MS = 1_000;

export class ConfigSync {
  /** The last revision this node wrote per key: the watch skips it and anything older. */
  readonly #written = new Map<string, number>();
  /** Writes not yet accepted by the bucket (`null` = delete), retried every second. */
  readonly #pending = new Map<string, string | null>();
  #retry: NodeJS.Timeout | undefined;
  #stopWatch: (() => void) | undefined;
  #closed = false;
  #restarting = false;
  /** The highest bucket revision seen by the watch. */
  #revision = 0;
  /** Remote changes applied on this node. */
  applied = 0;

  constructor(
    private readonly kv: KV,
    private readonly clients: ClientReplica,
    private readonly keys: KeyReplica,
    /** Tells the rest of the node what changed (publishes a `StoreChanged` event with these tags). */
    private readonly notify: (tags: string[]) => void,
    private readonly log: Logger,
  ) {}

  /** Seeds the bucket with local records it never saw, then applies and watches it. Resolves once the current values are applied. */
  async start(): Promise<void> {
    for (const r of this.clients.snapshot()) await this.#seed(`clients.${r.config.name}`, r);
    for (const kind of ['api_key', 'virtual_key'] as const) for (const k of this.keys.list(kind)) await this.#seed(keyKey(k), k);
    this.clients.onLocalChange = (c) => {
      if (c.kind === 'delete') this.#write(`clients.${c.name}`, null);
      else {
        if (c.previousName !== undefined) this.#write(`clients.${c.previousName}`, null);
        this.#write(`clients.${c.record.config.name}`, JSON.stringify(c.record));
      }
    };
    this.keys.onLocalChange = (k) => this.#write(keyKey(k), JSON.stringify(k));
    let initialDone: () => void = () => undefined;
    const initial = new Promise<void>((resolve) => (initialDone = resolve));
    const pendingAtStart = (await this.kv.status()).values;
    if (pendingAtStart === 0) initialDone();
    let seen = 0;
    await this.#watch((e) => {
      if (++seen >= pendingAtStart) initialDone();
      return e;
    });
    await Promise.race([initial, new Promise((r) => setTimeout(r, 5_000).unref())]);
  }

  /**
   * Follows the bucket from the revision after the last one seen (all current values the first
   * time). A new watch starts on {@link resume} (NATS came back) or when one ends.
   */
  async #watch(onEntry?: (e: KvEntry) => KvEntry): Promise<void> {
    const watch = await this.kv.watch({ key: '>', ...(this.#revision > 0 ? { resumeFromRevision: this.#revision + 1 } : {}) });
    const stop = (): void => watch.stop();
    this.#stopWatch = stop;
    void (async () => {
      for await (const e of watch) {
        this.#revision = Math.max(this.#revision, e.revision);
        await this.#apply(e).catch((err: unknown) => this.log.error('cluster configuration change not applied', { key: e.key, error: err }));
        onEntry?.(e);
      }
    })()
      .catch((err: unknown) => this.log.warn('cluster configuration watch failed', { error: err }))
      .finally(() => {
        // a watch that ended by itself (not replaced, not closed) is restarted
        if (this.#stopWatch === stop && !this.#closed && !this.#restarting) this.resume();
      });
  }

  /** Restarts the watch after the last revision seen (call when NATS came back); retries until it works. */
  resume(): void {
    if (this.#closed || this.#restarting) return;
    this.#restarting = true;
    this.#stopWatch?.();
    const attempt = (delay: number): void => {
      setTimeout(() => {
        if (this.#closed) return;
        this.#watch().then(
          () => {
            this.#restarting = false;
          },
          () => attempt(Math.min(delay * 2, 2_000)),
        );
      }, delay).unref();
    };
    attempt(100);
  }

  async #seed(key: string, value: unknown): Promise<void> {
    const existing = await this.kv.get(key);
    if (existing !== null) return;
    this.#written.set(key, await this.kv.put(key, JSON.stringify(value)));
  }

  #write(key: string, value: string | null): void {
    if (this.#closed) return;
    this.#pending.delete(key);
    const op = value === null ? this.kv.delete(key).then(() => undefined) : this.kv.put(key, value);
    op.then(
      (rev) => {
        if (typeof rev === 'number') this.#written.set(key, rev);
      },
      (err: unknown) => {
        this.log.warn('cluster configuration change not yet shared: retrying', { key, error: err });
        this.#pending.set(key, value);
        this.#retry ??= setInterval(() => this.#flushPending(), RETRY_MS);
      },
    );
  }

  #flushPending(): void {
    if (this.#pending.size === 0) {
      clearInterval(this.#retry);
      this.#retry = undefined;
      return;
    }
    for (const [key, value] of [...this.#pending]) this.#write(key, value);
  }

  async #apply(e: KvEntry): Promise<void> {
    if (e.revision <= (this.#written.get(e.key) ?? 0)) return;
    const del = e.operation !== 'PUT';
    if (e.key.startsWith('clients.')) {
      const changed = del ? await this.clients.applyRemoteDelete(e.key.slice('clients.'.length)) : await this.clients.applyRemote(e.json<ClientRecord>());
      if (changed) this.applied++;
      return;
    }
    if (e.key.startsWith('keys.') && !del) {
      const record = e.json<StoredKey>();
      if (await this.keys.applyRemote(record)) {
        this.applied++;
        this.notify([record.kind === 'api_key' ? 'api_keys' : 'virtual_keys']);
      }
    }
  }

  /** Stops watching and retrying (pending writes are dropped with a warning). */
  close(): void {
    this.#closed = true;
    this.#stopWatch?.();
    clearInterval(this.#retry);
    if (this.#pending.size > 0) this.log.warn('cluster configuration changes not shared before shutdown', { keys: [...this.#pending.keys()] });
    this.clients.onLocalChange = undefined;
    this.keys.onLocalChange = undefined;
  }
}

function keyKey(k: StoredKey): string {
  return `keys.${k.kind}.${k.id}`;
}
