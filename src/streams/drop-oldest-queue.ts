/**
 * A bounded FIFO that drops its oldest items when full (outbound events per
 * subscriber: drop oldest, then one warning). It counts drops per episode: an episode starts with
 * the first drop and ends when the owner takes the count ({@link takeDropped}) to tell the client.
 */
export class DropOldestQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private droppedInEpisode = 0;
  /** Items dropped since creation. */
  droppedTotal = 0;

  /** @param capacity most items held, ≥ 1. */
  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('DropOldestQueue: capacity must be ≥ 1');
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Appends `item`; when full, drops the oldest first. Returns true when something was dropped. */
  push(item: T): boolean {
    let dropped = false;
    if (this.size >= this.capacity) {
      this.items[this.head] = undefined;
      this.head++;
      this.droppedInEpisode++;
      this.droppedTotal++;
      dropped = true;
    }
    this.items.push(item);
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return dropped;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }

  /** Drops this episode's count and returns it (0 when nothing was dropped): the episode ends. */
  takeDropped(): number {
    const n = this.droppedInEpisode;
    this.droppedInEpisode = 0;
    return n;
  }

  /** Drops everything (no count). */
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
