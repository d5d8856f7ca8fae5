/**
 * `npm run bench:embeddings`: the built-in lexical embedding's speed, and the cost of an exact
 * search at 100k stored vectors, each against a baseline measured in the same run.
 *
 * Part 1, embedding. `LexicalEmbedder.embed` over texts of ≈ 30 words (a fixed vocabulary, a
 * seeded generator), one after another; baseline: the word segmentation alone
 * (`LexicalEmbedder.words`, `Intl.Segmenter`), the part every tokenising embedder pays. Reports
 * texts/s and CPU µs per text (process.cpuUsage, user + system).
 *
 * Part 2, search. BENCH_EMB_N vectors (default 100,000) of the lexical model (512 dimensions,
 * Float32) stored through `EmbeddingStore.add` (real LevelDB in a temp dir, batches of 1,000:
 * the insert rate is reported too), then `EmbeddingStore.search` (exact cosine scan, top 10)
 * for BENCH_EMB_QUERIES queries (default 50, lexical vectors of fresh texts); baseline: a bare
 * dot-product loop (the same unrolled `dot`) over an array of the same size, with no top-k, no
 * filter and no statistics (the floor of an exact scan in JavaScript). Reports ms and CPU ms per query.
 *
 * Profile: `node --cpu-prof --cpu-prof-dir=bench/results --import tsx bench/embeddings.ts`.
 * Prints a markdown table; writes bench/results/embeddings.json.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/log/logger.js';
import { LexicalEmbedder } from '../src/providers/lexical-embedder.js';
import { EmbeddingStore, dot, vectorBytes, type EmbeddingRecord } from '../src/store/embeddings.js';
import { openStore } from '../src/store/open.js';
import { writeResults } from './lib.js';
import { envNumber } from './procs.js';

const N = envNumber('BENCH_EMB_N', 100_000);
const QUERIES = envNumber('BENCH_EMB_QUERIES', 50);
const TEXTS = envNumber('BENCH_EMB_TEXTS', 20_000);

const VOCAB = (
  'deploy rollout canary service mesh ingress gateway latency budget error retry backoff circuit breaker queue postgres replica ' +
  'failover backup snapshot restore index vacuum partition shard cache redis eviction memory leak profile flame graph tracing ' +
  'span metric alert pager incident review runbook terraform module state drift plan apply helm chart secret rotation certificate ' +
  'renewal dns record load balancer autoscaler node pool spot instance cost report forecast invoice customer churn signup funnel ' +
  'onboarding email campaign newsletter launch roadmap milestone sprint backlog ticket bug regression test flaky pipeline build'
).split(' ');

let seed = 42;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
function text(words = 30): string {
  return Array.from({ length: words }, () => VOCAB[Math.floor(rnd() * VOCAB.length)]).join(' ');
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Row {
  readonly what: string;
  readonly n: number;
  readonly wallMsPerOp: number;
  readonly cpuMsPerOp: number;
  readonly baselineWallMsPerOp: number;
  readonly baselineCpuMsPerOp: number;
}

function time(ops: number, fn: () => void): { wall: number; cpu: number } {
  const c0 = cpuMs();
  const t0 = performance.now();
  fn();
  return { wall: (performance.now() - t0) / ops, cpu: (cpuMs() - c0) / ops };
}

async function main(): Promise<void> {
  const embedder = await LexicalEmbedder.create();
  const texts = Array.from({ length: TEXTS }, () => text());
  // warm up both paths
  for (let i = 0; i < 500; i++) {
    embedder.embed(texts[i] as string);
    embedder.words(texts[i] as string);
  }
  let sink = 0;
  const base = time(texts.length, () => {
    for (const t of texts) sink += embedder.words(t).length;
  });
  const emb = time(texts.length, () => {
    for (const t of texts) sink += embedder.embed(t)[0] ?? 0;
  });
  const rows: Row[] = [{ what: 'lexical embed (30 words)', n: texts.length, wallMsPerOp: emb.wall, cpuMsPerOp: emb.cpu, baselineWallMsPerOp: base.wall, baselineCpuMsPerOp: base.cpu }];

  const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-emb-'));
  const store = await openStore(dir, createLogger('silent'));
  try {
    const vectors = new EmbeddingStore(store, N);
    const t0 = performance.now();
    for (let i = 0; i < N; i += 1000) {
      const batch: EmbeddingRecord[] = [];
      for (let j = i; j < Math.min(N, i + 1000); j++) {
        const t = text(12);
        const v = embedder.embed(t);
        batch.push({ id: `emb-${j}`, tenant_id: 'bench', agent_id: 'a', context_id: undefined, model: 'local/lexical-hash-512', kind: 'lexical', text: t, metadata: {}, dimensions: v.length, vector: vectorBytes(v), created_at: '2026-01-01T00:00:00.000Z' });
      }
      await vectors.add(batch);
    }
    const insertSeconds = (performance.now() - t0) / 1000;
    const queries = Array.from({ length: QUERIES }, () => embedder.embed(text(6)));
    // the baseline scans an array of the same size and layout (values do not change its cost)
    const flat = new Float32Array(N * 512);
    for (let j = 0; j < N; j++) flat.set(queries[j % queries.length] as Float32Array, j * 512);
    vectors.search('bench', 'local/lexical-hash-512', queries[0] as Float32Array, 10);
    const scan = time(QUERIES, () => {
      for (const q of queries) sink += vectors.search('bench', 'local/lexical-hash-512', q, 10).hits.length;
    });
    const floor = time(QUERIES, () => {
      for (const q of queries) {
        let best = -Infinity;
        for (let off = 0; off < flat.length; off += 512) {
          const s = dot(flat, off, q, 512);
          if (s > best) best = s;
        }
        sink += best;
      }
    });
    rows.push({ what: `exact search top-10, ${N.toLocaleString('en-US')} × 512-d`, n: QUERIES, wallMsPerOp: scan.wall, cpuMsPerOp: scan.cpu, baselineWallMsPerOp: floor.wall, baselineCpuMsPerOp: floor.cpu });
    console.log(`stored ${N.toLocaleString('en-US')} vectors in ${insertSeconds.toFixed(1)} s (${Math.round(N / insertSeconds).toLocaleString('en-US')} vectors/s, embedding included); memory for the index ≈ ${Math.round((N * 512 * 4) / 1048576)} MiB`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('\n| operation | ops | wall per op | CPU per op | baseline wall per op | baseline CPU per op | CPU × baseline |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);
    console.log(`| ${r.what} | ${r.n} | ${fmt(r.wallMsPerOp)} | ${fmt(r.cpuMsPerOp)} | ${fmt(r.baselineWallMsPerOp)} | ${fmt(r.baselineCpuMsPerOp)} | ${(r.cpuMsPerOp / r.baselineCpuMsPerOp).toFixed(2)} |`);
  }
  console.log('\nbaselines: embed → word segmentation alone (Intl.Segmenter); search → the same dot product over an array of the same size, keeping only the best score; the machine is shared, so compare CPU columns');
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeResults(join(import.meta.dirname, 'results/embeddings.json'), { n: N, queries: QUERIES, texts: TEXTS, rows, sink });
}

await main();
