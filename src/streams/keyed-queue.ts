/**
 * Runs async functions one after another per key: the read-modify-write of one record (a context,
 * an agent, a webhook delivery id) never interleaves with another of the same key, while different
 * keys run concurrently. A failed function does not block the ones queued after it. Keys are
 * forgotten once their queue empties, so memory follows the keys in use.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` after every function already queued under `key`; resolves or rejects with it. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
