/**
 * Upstream OAuth tokens at rest and in memory: sealed with AES-256-GCM in the grant store (bound
 * to their record key), decrypted copies cached in memory only, and the non-secret facts of each
 * (expiry, refreshable, id) kept for the management API's status. No token is ever logged.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../log/logger.js';
import type { OAuthGrantRepository } from '../../store/oauth-grants.js';
import { describe, type Sealer, type TokenSet } from './protocol.js';

/** Non-secret facts about a stored token, kept in memory for the status. */
export interface TokenFacts {
  readonly expiresAt: number | undefined;
  readonly refreshable: boolean;
  readonly id: string;
}

/** Token sets by grant store key (`token:<client id>:<principal>`). */
export class OAuthTokenStore {
  private readonly tokens = new Map<string, TokenSet>();
  private readonly facts = new Map<string, TokenFacts>();

  constructor(
    private readonly repo: OAuthGrantRepository,
    private readonly box: Sealer,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** Loads the non-secret facts of every stored token; call once at start. */
  async init(): Promise<void> {
    for (const key of await this.repo.keys('token:')) {
      const r = await this.repo.get(key);
      if (!r) continue;
      const t = this.open(key, r.sealed);
      if (t) this.facts.set(key, { expiresAt: t.expires_at, refreshable: t.refresh_token !== undefined, id: r.id });
    }
  }

  /** The facts of the token stored under `key`, if any. */
  fact(key: string): TokenFacts | undefined {
    return this.facts.get(key);
  }

  /** Keys of every token with facts in memory. */
  keys(): IterableIterator<string> {
    return this.facts.keys();
  }

  /** The token set cached in memory under `key` (no store read). */
  cached(key: string): TokenSet | undefined {
    return this.tokens.get(key);
  }

  /**
   * Stores `set` sealed under `key` (keeping the id of a token stored there before) and caches it.
   * @param alwaysRefreshable the grant can always get a new token (client credentials).
   * @returns the token's id (`oauth_config_id`).
   */
  async save(key: string, set: TokenSet, alwaysRefreshable: boolean): Promise<string> {
    const id = this.facts.get(key)?.id ?? randomUUID();
    await this.repo.put(key, { sealed: this.box.seal(JSON.stringify(set), key), id, updated_at: this.now(), ...(set.expires_at !== undefined ? { expires_at: set.expires_at } : {}) });
    this.tokens.set(key, set);
    this.facts.set(key, { expiresAt: set.expires_at, refreshable: set.refresh_token !== undefined || alwaysRefreshable, id });
    return id;
  }

  /** The token set under `key`: from memory, else opened from the store (and cached); undefined when none opens. */
  async load(key: string): Promise<TokenSet | undefined> {
    const cached = this.tokens.get(key);
    if (cached) return cached;
    const r = await this.repo.get(key);
    const t = r ? this.open(key, r.sealed) : undefined;
    if (t) this.tokens.set(key, t);
    return t;
  }

  /** Deletes the token under `key` from memory and the store. */
  async forget(key: string): Promise<void> {
    this.tokens.delete(key);
    this.facts.delete(key);
    await this.repo.delete([key]);
  }

  /** Drops the tokens of `keys` from memory only (the caller deletes the records). */
  evict(keys: readonly string[]): void {
    for (const k of keys) {
      this.tokens.delete(k);
      this.facts.delete(k);
    }
  }

  private open(key: string, sealed: string): TokenSet | undefined {
    try {
      return JSON.parse(this.box.open(sealed, key)) as TokenSet;
    } catch (err) {
      this.log.warn('stored OAuth token does not open with the configured key; it needs authorization again', { key: key.slice(0, key.lastIndexOf(':')), error: describe(err) });
      return undefined;
    }
  }
}
