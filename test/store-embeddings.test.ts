/**
 * The embedding store on a real LevelDB: vectors kept as Float32 bytes survive a reopen
 * bit-for-bit, search is exact (checked against a brute-force reference), deletes leave the
 * index consistent, and the per-tenant bound holds.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EmbeddingStore, bytesVector, vectorBytes, type EmbeddingRecord } from '../src/store/embeddings.js';
import { normalize } from '../src/providers/lexical-embedder.js';
import { tempStores } from './helpers/store.js';

const open = tempStores('tributary-emb-');

function rec(tenant: string, id: string, v: Float32Array, model = 'm/x'): EmbeddingRecord {
  return { id, tenant_id: tenant, agent_id: 'a', context_id: undefined, model, kind: 'model', text: id, metadata: {}, dimensions: v.length, vector: vectorBytes(v), created_at: '2026-01-01T00:00:00.000Z' };
}

function randomUnit(dims: number, seed: number): Float32Array {
  let x = seed;
  const v = new Float32Array(dims);
  for (let i = 0; i < dims; i++) {
    x = (x * 1664525 + 1013904223) % 4294967296;
    v[i] = x / 4294967296 - 0.5;
  }
  return normalize(v);
}

describe('EmbeddingStore', () => {
  it('Float32 bytes round-trip exactly', () => {
    fc.assert(
      fc.property(fc.float32Array({ maxLength: 64, noNaN: true }), (v) => {
        expect(Array.from(bytesVector(vectorBytes(v)))).toEqual(Array.from(v));
      }),
    );
  });

  it('survives a reopen, searches exactly, deletes consistently, and bounds a tenant', async () => {
    const { store, dataDir } = await open();
    const s = new EmbeddingStore(store, 300);
    const vs = Array.from({ length: 250 }, (_, i) => randomUnit(16, i + 1));
    await s.add(vs.map((v, i) => rec('t1', `e${i}`, v)));
    await s.add([rec('t2', 'other', vs[0] as Float32Array)]);
    await expect(s.add(vs.slice(0, 51).map((v, i) => rec('t1', `x${i}`, v)))).rejects.toThrow(/bound is 300/);
    await expect(s.add([rec('t1', 'wrongdims', randomUnit(8, 9))])).rejects.toThrow(/16 dimensions/);
    await store.close();

    const { store: again } = await open({ dataDir });
    const s2 = new EmbeddingStore(again, 300);
    await s2.init();
    expect(s2.count('t1')).toBe(250);
    expect(s2.count('t2')).toBe(1);
    const stored = await s2.get('t1', 'e7');
    expect(Array.from(bytesVector(stored?.vector ?? new Uint8Array()))).toEqual(Array.from(vs[7] as Float32Array));
    const q = randomUnit(16, 999);
    const reference = vs.map((v, i) => ({ id: `e${i}`, score: v.reduce((acc, x, j) => acc + x * (q[j] as number), 0) })).sort((a, b) => b.score - a.score);
    const r = s2.search('t1', 'm/x', q, 10);
    expect(r.hits.map((h) => h.id)).toEqual(reference.slice(0, 10).map((h) => h.id));
    expect(r.scanned).toBe(250);
    expect(await s2.delete('t1', reference[0]?.id ?? '')).toBe(true);
    expect(s2.search('t1', 'm/x', q, 1).hits[0]?.id).toBe(reference[1]?.id);
    expect(s2.count('t1')).toBe(249);
    expect(s2.search('t3', 'm/x', q, 5).hits).toEqual([]);
    expect(() => s2.search('t1', 'm/x', randomUnit(4, 1), 5)).toThrow(RangeError);
  });
});
