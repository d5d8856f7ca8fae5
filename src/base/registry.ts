/**
 * Registries for things in flight (calls, exchanges, subscribers): entries added and removed at
 * the request rate, each value the root of a whole call's object graph.
 *
 * Why not a plain `Map`/`Set`: V8 stores a `Map`'s or `Set`'s entries in a hash table that it
 * replaces when the table grows or shrinks (https://v8.dev/blog/hash-code — `OrderedHashTable`).
 * A long-lived registry lives in the old generation, and so do its discarded tables. A discarded
 * old-generation table still points at the young values it held, and every young-generation
 * collection (scavenge) treats old-to-young pointers as roots until the next full collection
 * (https://v8.dev/blog/trash-talk, "remembered set"). So every call that passed through the
 * registry between two full collections is copied and promoted at each scavenge: at a gateway's
 * call rate, megabytes per scavenge that only a full mark-compact frees.
 *
 * {@link RegistryMap} keeps the same `Map` surface but stores each value in a small box that it
 * clears on `delete`: a discarded table then holds only empty boxes. {@link SlotList} is the
 * keyless form (for a `Set` of objects, whose keys are the values): a slot array whose entries
 * are cleared on removal, grown only when more items are in flight than ever before.
 * Measured with `node --trace-gc-nvp --max-semi-space-size=4` on test/fixtures/registry-churn.ts
 * (up to 64 objects of ≈ 2 KB in flight, registered and removed, 1 s): bytes promoted per
 * scavenge with a plain `Map` ≈ 227 KB, {@link RegistryMap} ≈ 26 KB; plain `Set` ≈ 202 KB,
 * {@link SlotList} ≈ 17 KB; no registry ≈ 16 KB (test/registry.test.ts checks the ratios).
 */

interface Box<V> {
  ref: V | undefined;
}

/**
 * A `Map` for in-flight entries that never keeps a removed value reachable from the table V8
 * discards when it resizes (see the module comment). Same semantics as `Map` for the methods it
 * has; iteration order is insertion order.
 */
export class RegistryMap<K, V> implements Iterable<[K, V]> {
  readonly #boxes = new Map<K, Box<V>>();

  /** Entries held. */
  get size(): number {
    return this.#boxes.size;
  }

  get(key: K): V | undefined {
    return this.#boxes.get(key)?.ref;
  }

  has(key: K): boolean {
    return this.#boxes.has(key);
  }

  set(key: K, value: V): this {
    const box = this.#boxes.get(key);
    if (box !== undefined) box.ref = value;
    else this.#boxes.set(key, { ref: value });
    return this;
  }

  /** Removes `key`'s entry (its box is emptied first); true when there was one. */
  delete(key: K): boolean {
    const box = this.#boxes.get(key);
    if (box === undefined) return false;
    box.ref = undefined;
    return this.#boxes.delete(key);
  }

  /** Removes every entry (each box emptied first). */
  clear(): void {
    for (const box of this.#boxes.values()) box.ref = undefined;
    this.#boxes.clear();
  }

  *values(): IterableIterator<V> {
    for (const box of this.#boxes.values()) yield box.ref as V;
  }

  keys(): IterableIterator<K> {
    return this.#boxes.keys();
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [key, box] of this.#boxes) yield [key, box.ref as V];
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

/**
 * A set of in-flight objects as a slot array: {@link add} returns the item's slot, which the
 * caller keeps (e.g. on the item) and hands to {@link remove}. A removed slot is cleared and
 * reused; the array only grows when more items are held than ever before, so it is never
 * replaced at the request rate (see the module comment). Iteration skips empty slots, in slot
 * order (not insertion order).
 */
export class SlotList<T> implements Iterable<T> {
  readonly #items: (T | undefined)[] = [];
  readonly #free: number[] = [];
  #size = 0;

  /** Items held. */
  get size(): number {
    return this.#size;
  }

  /** Holds `item`; returns its slot (≥ 0), valid until {@link remove}d. */
  add(item: T): number {
    const slot = this.#free.length > 0 ? (this.#free.pop() as number) : this.#items.length;
    this.#items[slot] = item;
    this.#size++;
    return slot;
  }

  /**
   * Releases `slot` if it holds `item` (by identity); true when it did. A stale or foreign slot
   * is ignored, so removing twice is harmless.
   */
  remove(slot: number, item: T): boolean {
    if (slot < 0 || slot >= this.#items.length || this.#items[slot] !== item || item === undefined) return false;
    this.#items[slot] = undefined;
    this.#free.push(slot);
    this.#size--;
    return true;
  }

  /** Empties every slot. */
  clear(): void {
    this.#items.length = 0;
    this.#free.length = 0;
    this.#size = 0;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    const items = this.#items;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item !== undefined) yield item;
    }
  }
}
