/**
 * Calls per upstream: at most `maxActive` in flight, at most `maxQueued` waiting in
 * FIFO order; beyond that the caller fails fast ("upstream overloaded"). A plain data structure
 * with no timers and no I/O: the upstream starts, times out and cancels waiters itself.
 */
export class ConcurrencyLimiter<W> {
  private active = 0;
  private readonly queue: W[] = [];

  constructor(
    private maxActive: number,
    private maxQueued: number,
  ) {}

  /** Calls holding a slot. */
  get inFlight(): number {
    return this.active;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.queue.length;
  }

  get limits(): { readonly maxActive: number; readonly maxQueued: number } {
    return { maxActive: this.maxActive, maxQueued: this.maxQueued };
  }

  /** New limits. Calls already in flight or queued keep their place; a raised limit is used from the next release. */
  reconfigure(maxActive: number, maxQueued: number): void {
    this.maxActive = maxActive;
    this.maxQueued = maxQueued;
  }

  /** Takes a slot if one is free and nobody is waiting (FIFO: waiters go first). */
  tryAcquire(): boolean {
    if (this.active >= this.maxActive || this.queue.length > 0) return false;
    this.active++;
    return true;
  }

  /** Queues `waiter`; false (not queued) when the queue is full. */
  enqueue(waiter: W): boolean {
    if (this.queue.length >= this.maxQueued) return false;
    this.queue.push(waiter);
    return true;
  }

  /** Takes `waiter` out of the queue (cancelled or timed out while waiting); false if it is not queued. */
  remove(waiter: W): boolean {
    const i = this.queue.indexOf(waiter);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  /** Removes and returns the waiters `expired` selects, in queue order. */
  removeWhere(expired: (waiter: W) => boolean): W[] {
    const out: W[] = [];
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i] as W;
      if (expired(w)) {
        out.push(w);
        this.queue.splice(i, 1);
      } else {
        i++;
      }
    }
    return out;
  }

  /**
   * Frees a slot. When a waiter is queued and the limit allows, the slot passes straight to it and
   * it is returned: the caller must start it (it now holds the slot). Otherwise undefined.
   */
  release(): W | undefined {
    if (this.active <= this.maxActive && this.queue.length > 0) return this.queue.shift();
    this.active = Math.max(0, this.active - 1);
    return undefined;
  }

  /** Empties the queue (connection gone) and returns the waiters, in order. Slots in flight are untouched. */
  drain(): W[] {
    return this.queue.splice(0, this.queue.length);
  }
}
