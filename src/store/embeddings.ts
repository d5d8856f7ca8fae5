/**
 * Stored embeddings, per tenant: LevelDB (sublevel `embeddings`, key `<tenant>\0<id>`) keeps each
 * vector as the bytes of a Float32Array (little-endian, as the platform lays it out) with its
 * text and labels; memory keeps, per tenant and model, one contiguous Float32Array of all its
 * unit-length vectors, loaded at start, which search scans.
 *
 * Search is an EXACT scan (no approximate index): a dot product with every vector of the tenant's
 * model (cosine similarity, the vectors being unit length), a bounded top-k kept in a small
 * sorted array, and the mean and standard deviation of all scores (for cross-model
 * normalisation). Its cost is linear in the vectors scanned: see bench/embeddings.ts.
 * A tenant holds at most `maxVectorsPerTenant` vectors; memory is 4 × dimensions bytes a vector.
 */
import { commitOps, delOp, putOp } from './batcher.js';
import type { Sublevel } from './db.js';
import type { Store } from './open.js';
import { TENANT_PATTERN } from './tenant-repo.js';

const SEP = '\u0000';

/** One stored embedding as LevelDB holds it. */
export interface EmbeddingRecord {
  /** `emb-<uuid>` */
  readonly id: string;
  readonly tenant_id: string;
  readonly agent_id: string;
  readonly context_id: string | undefined;
  /** Provider-qualified model name, `provider/model` (e.g. `local/lexical-hash-512`). */
  readonly model: string;
  readonly kind: 'lexical' | 'model';
  readonly text: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly dimensions: number;
  /** Float32 bytes of the unit-length vector. */
  readonly vector: Uint8Array;
  readonly created_at: string;
}

/** What a search returns per hit (the record without its vector). */
export interface EmbeddingHit {
  readonly id: string;
  readonly agent_id: string;
  readonly context_id: string | undefined;
  readonly model: string;
  readonly text: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly created_at: string;
  /** Cosine similarity, −1..1. */
  readonly score: number;
}

export interface SearchResult {
  readonly hits: EmbeddingHit[];
  /** Vectors scanned. */
  readonly scanned: number;
  /** Mean and standard deviation of the scores of all scanned vectors. */
  readonly mean: number;
  readonly std: number;
}

export interface SearchFilter {
  readonly agentId?: string | undefined;
  readonly contextId?: string | undefined;
  /** Hits below this cosine are left out. */
  readonly minScore?: number | undefined;
}

type Meta = Omit<EmbeddingRecord, 'vector' | 'tenant_id' | 'dimensions' | 'kind'>;

/** All vectors of one tenant and model, contiguous. */
class Bucket {
  data: Float32Array;
  readonly meta: Meta[] = [];
  constructor(readonly dimensions: number) {
    this.data = new Float32Array(dimensions * 64);
  }

  get count(): number {
    return this.meta.length;
  }

  add(meta: Meta, v: Float32Array): void {
    const n = this.meta.length;
    if ((n + 1) * this.dimensions > this.data.length) {
      const grown = new Float32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(v, n * this.dimensions);
    this.meta.push(meta);
  }

  /** Removes `id` by moving the last vector into its place; false when absent. */
  remove(id: string): boolean {
    const i = this.meta.findIndex((m) => m.id === id);
    if (i < 0) return false;
    const last = this.meta.length - 1;
    if (i !== last) {
      this.data.copyWithin(i * this.dimensions, last * this.dimensions, (last + 1) * this.dimensions);
      this.meta[i] = this.meta[last] as Meta;
    }
    this.meta.pop();
    return true;
  }
}

/** Dot product of `q` (length `d`) with `data[off .. off + d)`, unrolled by 4. */
export function dot(data: Float32Array, off: number, q: Float32Array, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 3 < d; j += 4) {
    s0 += (data[off + j] as number) * (q[j] as number);
    s1 += (data[off + j + 1] as number) * (q[j + 1] as number);
    s2 += (data[off + j + 2] as number) * (q[j + 2] as number);
    s3 += (data[off + j + 3] as number) * (q[j + 3] as number);
  }
  for (; j < d; j++) s0 += (data[off + j] as number) * (q[j] as number);
  return s0 + s1 + s2 + s3;
}

/** The Float32 bytes of `v` (a copy). */
export function vectorBytes(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

/** The Float32Array of stored bytes (a copy, aligned). */
export function bytesVector(b: Uint8Array): Float32Array {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float32Array(copy.buffer, 0, b.byteLength / 4);
}

export class EmbeddingStore {
  private readonly sub: Sublevel<EmbeddingRecord>;
  /** tenant → model → bucket */
  private readonly index = new Map<string, Map<string, Bucket>>();
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly store: Store,
    readonly maxVectorsPerTenant: number,
  ) {
    this.sub = store.sublevel<EmbeddingRecord>('embeddings');
  }

  /** Loads every stored vector into memory. */
  async init(): Promise<void> {
    for await (const r of this.sub.values()) this.addToIndex(r, bytesVector(r.vector));
  }

  /** Vectors `tenant` holds. */
  count(tenant: string): number {
    return this.counts.get(tenant) ?? 0;
  }

  /** Vectors held in memory, all tenants. */
  get total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  /** Models `tenant` has vectors of, with their counts and dimensions. */
  models(tenant: string): { model: string; count: number; dimensions: number }[] {
    return [...(this.index.get(tenant) ?? new Map<string, Bucket>()).entries()].map(([model, b]) => ({ model, count: b.count, dimensions: b.dimensions }));
  }

  /**
   * Stores records (durable when it resolves) and indexes them.
   * @throws RangeError when the tenant would exceed its bound, or a vector's dimensions differ
   * from the model's stored ones.
   */
  async add(records: readonly EmbeddingRecord[]): Promise<void> {
    const perTenant = new Map<string, number>();
    for (const r of records) {
      if (!TENANT_PATTERN.test(r.tenant_id)) throw new TypeError(`store: bad tenant id ${JSON.stringify(r.tenant_id)}`);
      perTenant.set(r.tenant_id, (perTenant.get(r.tenant_id) ?? 0) + 1);
      const b = this.index.get(r.tenant_id)?.get(r.model);
      if (b && b.dimensions !== r.dimensions) throw new RangeError(`model ${r.model} has ${b.dimensions} dimensions stored; this vector has ${r.dimensions}`);
    }
    for (const [tenant, n] of perTenant) {
      if (this.count(tenant) + n > this.maxVectorsPerTenant) throw new RangeError(`tenant ${tenant} would hold ${this.count(tenant) + n} vectors; the bound is ${this.maxVectorsPerTenant}`);
    }
    await commitOps(this.store.db, records.map((r) => putOp(this.sub, `${r.tenant_id}${SEP}${r.id}`, r)), true);
    for (const r of records) this.addToIndex(r, bytesVector(r.vector));
  }

  /** The record `id` of `tenant` (vector included), or undefined. */
  async get(tenant: string, id: string): Promise<EmbeddingRecord | undefined> {
    if (!TENANT_PATTERN.test(tenant) || id === '' || id.includes(SEP)) return undefined;
    return this.sub.get(`${tenant}${SEP}${id}`);
  }

  /** Deletes `id` of `tenant`; resolves whether it existed. */
  async delete(tenant: string, id: string): Promise<boolean> {
    const r = await this.get(tenant, id);
    if (!r) return false;
    await commitOps(this.store.db, [delOp(this.sub, `${tenant}${SEP}${id}`)], true);
    if (this.index.get(tenant)?.get(r.model)?.remove(id) === true) this.counts.set(tenant, this.count(tenant) - 1);
    return true;
  }

  /**
   * The `k` vectors of `tenant` and `model` most similar to unit vector `q` (cosine), best first.
   * An unknown tenant or model gives no hits. @throws RangeError when `q`'s length differs from
   * the model's dimensions.
   */
  search(tenant: string, model: string, q: Float32Array, k: number, filter: SearchFilter = {}): SearchResult {
    const b = this.index.get(tenant)?.get(model);
    if (!b || b.count === 0) return { hits: [], scanned: 0, mean: 0, std: 0 };
    if (q.length !== b.dimensions) throw new RangeError(`query has ${q.length} dimensions; model ${model} has ${b.dimensions}`);
    const d = b.dimensions;
    const data = b.data;
    const topScore: number[] = [];
    const topIdx: number[] = [];
    let sum = 0;
    let sumSq = 0;
    let scanned = 0;
    const minScore = filter.minScore ?? -Infinity;
    let s: number;
    for (let i = 0, off = 0; i < b.count; i++, off += d) {
      const m = b.meta[i] as Meta;
      if (filter.agentId !== undefined && m.agent_id !== filter.agentId) continue;
      if (filter.contextId !== undefined && m.context_id !== filter.contextId) continue;
      s = dot(data, off, q, d);
      scanned++;
      sum += s;
      sumSq += s * s;
      if (s < minScore) continue;
      if (topScore.length < k || s > (topScore[topScore.length - 1] as number)) {
        let pos = topScore.length;
        while (pos > 0 && (topScore[pos - 1] as number) < s) pos--;
        topScore.splice(pos, 0, s);
        topIdx.splice(pos, 0, i);
        if (topScore.length > k) {
          topScore.pop();
          topIdx.pop();
        }
      }
    }
    const mean = scanned === 0 ? 0 : sum / scanned;
    const std = scanned === 0 ? 0 : Math.sqrt(Math.max(0, sumSq / scanned - mean * mean));
    const hits = topIdx.map((i, n) => {
      const m = b.meta[i] as Meta;
      return { id: m.id, agent_id: m.agent_id, context_id: m.context_id, model: m.model, text: m.text, metadata: m.metadata, created_at: m.created_at, score: topScore[n] as number };
    });
    return { hits, scanned, mean, std };
  }

  private addToIndex(r: EmbeddingRecord, v: Float32Array): void {
    let models = this.index.get(r.tenant_id);
    if (!models) {
      models = new Map();
      this.index.set(r.tenant_id, models);
    }
    let b = models.get(r.model);
    if (!b) {
      b = new Bucket(r.dimensions);
      models.set(r.model, b);
    }
    b.add({ id: r.id, agent_id: r.agent_id, context_id: r.context_id, model: r.model, text: r.text, metadata: r.metadata, created_at: r.created_at }, v);
    this.counts.set(r.tenant_id, this.count(r.tenant_id) + 1);
  }
}
