/**
 * Exclusive document locks with a lease ("`document.lock` / `document.unlock`:
 * exclusive lock with a lease (TTL), released on disconnect"; developer-mesh `document.lock`,
 * "Lock document for editing"). One table per workspace, keyed by document id. A lease ends when
 * its holder unlocks, leaves or disconnects, or when it expires (a timer); the holder renews it by
 * locking again. Leases live in memory only: a gateway restart ends them all.
 */

/** A held lock. */
export interface Lease {
  readonly documentId: string;
  /** The holder's member id (its `/ws` peer id). */
  readonly memberId: string;
  /** The holder's display name. */
  readonly name: string;
  /** When the lease ends unless renewed, ms since the epoch. */
  readonly expiresAt: number;
}

/** Result of {@link LeaseTable.acquire}. */
export type AcquireResult =
  | { readonly ok: true; readonly lease: Lease; readonly renewed: boolean }
  | { readonly ok: false; readonly holder: Lease };

interface Held extends Lease {
  readonly timer: NodeJS.Timeout;
}

/** The document locks of one workspace: at most one lease per document, each with its expiry timer. */
export class LeaseTable {
  readonly #held = new Map<string, Held>();

  /**
   * @param onExpire called once when a lease runs out (not when it is released); the lease is
   *   already gone from the table.
   * @param now the clock, ms since the epoch.
   */
  constructor(
    private readonly onExpire: (lease: Lease) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** The current lease of `documentId`, if any. */
  holder(documentId: string): Lease | undefined {
    return this.#held.get(documentId);
  }

  /** Every current lease. */
  leases(): IterableIterator<Lease> {
    return this.#held.values();
  }

  /**
   * Takes or renews the lock of `documentId` for `ttlMs` (ms, ≥ 1) from now. Fails, changing
   * nothing, while another member holds it.
   */
  acquire(documentId: string, memberId: string, name: string, ttlMs: number): AcquireResult {
    const current = this.#held.get(documentId);
    if (current !== undefined && current.memberId !== memberId) return { ok: false, holder: strip(current) };
    if (current !== undefined) clearTimeout(current.timer);
    const expiresAt = this.now() + ttlMs;
    const timer = setTimeout(() => {
      if (this.#held.get(documentId)?.timer !== timer) return;
      this.#held.delete(documentId);
      this.onExpire({ documentId, memberId, name, expiresAt });
    }, ttlMs);
    timer.unref();
    const held: Held = { documentId, memberId, name, expiresAt, timer };
    this.#held.set(documentId, held);
    return { ok: true, lease: strip(held), renewed: current !== undefined };
  }

  /**
   * Releases `documentId` if `memberId` holds it. Returns the released lease, or the other
   * holder's lease (`released: false`), or `undefined` when it was not locked.
   */
  release(documentId: string, memberId: string): { readonly released: boolean; readonly lease: Lease } | undefined {
    const current = this.#held.get(documentId);
    if (current === undefined) return undefined;
    if (current.memberId !== memberId) return { released: false, lease: strip(current) };
    clearTimeout(current.timer);
    this.#held.delete(documentId);
    return { released: true, lease: strip(current) };
  }

  /** Releases every lock `memberId` holds; returns them. */
  releaseAll(memberId: string): Lease[] {
    const out: Lease[] = [];
    for (const held of [...this.#held.values()]) {
      if (held.memberId !== memberId) continue;
      clearTimeout(held.timer);
      this.#held.delete(held.documentId);
      out.push(strip(held));
    }
    return out;
  }

  /** Stops every timer and forgets every lease (no callbacks). */
  clear(): void {
    for (const held of this.#held.values()) clearTimeout(held.timer);
    this.#held.clear();
  }
}

function strip(held: Held): Lease {
  return { documentId: held.documentId, memberId: held.memberId, name: held.name, expiresAt: held.expiresAt };
}
