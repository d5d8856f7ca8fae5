/**
 * Durable document states ("persists the merged state in LevelDB"): the LevelDB
 * sublevel `documents`, key `<tenant>\0<workspace_id>\0<document_id>`, value
 * {@link StoredDocument} (msgpackr; the state as `bin`).
 *
 * Writes are coalesced per document: the first update after a write arms a timer of
 * `intervalMs`; when it fires the merged state is encoded once and handed to the store's batch
 * writer (DESIGN.md §3 "LevelDB writes"). So a document is written at most once per `intervalMs`,
 * with at most one write in flight; updates arriving meanwhile are folded into the next write.
 *
 * Durability window: an acknowledged `document.update` reaches LevelDB at most `intervalMs`
 * (100 ms by default) + the batch writer's window (`store.batch_window_ms`, 0 by default: group
 * commit) + the commit in flight + its own commit later. The batch writer does not fsync, so after that the state survives a process
 * crash (it is in LevelDB's log, in the OS page cache) but a power loss may still lose the last
 * seconds the OS had not written back. {@link DocumentPersistence.flushAll} (on gateway shutdown)
 * writes every pending state before the store closes. A failed write is retried at the next
 * interval.
 */
import type { Logger } from '../../log/logger.js';
import { putOp, type BatchOp, type BatchWriter } from '../../store/batcher.js';
import type { Sublevel } from '../../store/db.js';
import { SharedDocument } from './document.js';

/** The value stored per document. */
export interface StoredDocument {
  /** Merged state, `Y.encodeStateAsUpdate` (Yjs v1 update), bytes. */
  readonly state: Uint8Array;
  /** When it was written, ms since the epoch. */
  readonly updated_at: number;
}

/** Default coalescing interval of document writes, ms. */
export const DOCUMENT_WRITE_INTERVAL_MS = 100;

const SEP = '\u0000';
const END = '\u0001';

/** The store key of a document (ids have no control characters, see `./params.ts`). */
export function documentKey(tenant: string, workspaceId: string, documentId: string): string {
  return `${tenant}${SEP}${workspaceId}${SEP}${documentId}`;
}

/** What a finished write reports (for the `DocumentChanged` event). */
export interface PersistedInfo {
  readonly key: string;
  readonly doc: SharedDocument;
  /** Updates folded into this write. */
  readonly updates: number;
  readonly sizeBytes: number;
}

interface Pending {
  readonly key: string;
  readonly doc: SharedDocument;
  timer: NodeJS.Timeout | undefined;
  inFlight: Promise<void> | undefined;
  /** Updates not yet handed to a write. */
  dirty: number;
}

/**
 * Coalesced, bounded writes of document states to the `documents` sublevel (see the module doc for
 * the schedule and the durability window), and the loading of a workspace's documents.
 */
export class DocumentPersistence {
  readonly #pending = new Map<string, Pending>();
  #closed = false;
  #writes = 0;
  #failures = 0;

  /**
   * @param onPersisted called after each successful write (the `DocumentChanged` event).
   */
  constructor(
    private readonly sublevel: Sublevel<StoredDocument>,
    private readonly writer: BatchWriter<BatchOp>,
    private readonly log: Logger,
    private readonly intervalMs: number = DOCUMENT_WRITE_INTERVAL_MS,
    private readonly onPersisted: (info: PersistedInfo) => void = () => undefined,
  ) {}

  /** Writes completed and failed so far. */
  get counters(): { readonly writes: number; readonly failures: number; readonly pending: number } {
    return { writes: this.#writes, failures: this.#failures, pending: this.#pending.size };
  }

  /**
   * Every stored document of a workspace, in id order. A state Yjs cannot load is logged and
   * left out (the stored bytes stay untouched until that document is written again).
   */
  async loadWorkspace(tenant: string, workspaceId: string): Promise<SharedDocument[]> {
    const prefix = `${tenant}${SEP}${workspaceId}${SEP}`;
    const entries = await this.sublevel.iterator({ gte: prefix, lt: `${tenant}${SEP}${workspaceId}${END}` }).all();
    const docs: SharedDocument[] = [];
    for (const [key, value] of entries) {
      const documentId = key.slice(prefix.length);
      try {
        docs.push(new SharedDocument(documentId, new Uint8Array(value.state)));
      } catch (err) {
        this.log.error('a stored document could not be loaded; it is left out', { key: JSON.stringify(key), error: err });
      }
    }
    return docs;
  }

  /** `doc` (stored under `key`) changed: write it within `intervalMs`. */
  touch(key: string, doc: SharedDocument): void {
    let p = this.#pending.get(key);
    if (p !== undefined && p.doc !== doc) {
      // a reloaded copy replaces an older one whose writes gave up
      if (p.timer !== undefined) clearTimeout(p.timer);
      p = undefined;
    }
    if (p === undefined) {
      p = { key, doc, timer: undefined, inFlight: undefined, dirty: 0 };
      this.#pending.set(key, p);
    }
    p.dirty++;
    if (p.timer === undefined && p.inFlight === undefined && !this.#closed) this.#arm(p);
  }

  /** Whether `key` has updates not yet written (or a write in flight). */
  isPending(key: string): boolean {
    return this.#pending.has(key);
  }

  /**
   * Writes `key` now if it has unwritten updates (waiting for a write in flight first), trying at
   * most 3 times; resolves (never rejects) when nothing is pending for it or the attempts are spent.
   */
  async flush(key: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const p = this.#pending.get(key);
      if (p === undefined) return;
      if (p.inFlight === undefined) {
        if (p.timer !== undefined) clearTimeout(p.timer);
        p.timer = undefined;
        this.#write(p);
      }
      await p.inFlight;
    }
  }

  /**
   * Stops the timers and writes every pending document (gateway shutdown, before the store
   * closes); later `touch` calls only mark. Logs the documents that could not be written.
   */
  async flushAll(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#pending.keys()].map((k) => this.flush(k)));
    if (this.#pending.size > 0) this.log.error('document states could not be written before shutdown', { documents: this.#pending.size });
  }

  #arm(p: Pending): void {
    p.timer = setTimeout(() => {
      p.timer = undefined;
      this.#write(p);
    }, this.intervalMs);
  }

  #write(p: Pending): void {
    if (p.dirty === 0) {
      if (this.#pending.get(p.key) === p) this.#pending.delete(p.key);
      return;
    }
    const updates = p.dirty;
    p.dirty = 0;
    let op: BatchOp;
    try {
      op = putOp(this.sublevel, p.key, { state: p.doc.state(), updated_at: Date.now() });
    } catch (err) {
      this.log.error('a document state could not be encoded for the store', { key: JSON.stringify(p.key), error: err });
      if (this.#pending.get(p.key) === p) this.#pending.delete(p.key);
      return;
    }
    const sizeBytes = p.doc.sizeBytes;
    p.inFlight = this.writer.write(op).then(
      () => {
        this.#writes++;
        try {
          this.onPersisted({ key: p.key, doc: p.doc, updates, sizeBytes });
        } catch (err) {
          this.log.error('document persisted hook failed', { error: err });
        }
      },
      (err: unknown) => {
        this.#failures++;
        p.dirty += updates;
        this.log.warn('a document write failed; retrying at the next interval', { key: JSON.stringify(p.key), error: err });
      },
    );
    void p.inFlight.finally(() => {
      p.inFlight = undefined;
      if (this.#pending.get(p.key) !== p) return;
      if (p.dirty === 0) this.#pending.delete(p.key);
      else if (!this.#closed && p.timer === undefined) this.#arm(p);
    });
  }
}
