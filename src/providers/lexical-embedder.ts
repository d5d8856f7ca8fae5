/**
 * The embedded default embedding provider: a LEXICAL embedding, not a neural one. No npm package
 * ships small sentence-embedding weights with a well-kept runtime (onnxruntime, transformers.js
 * download theirs from a model hub at run time, which this gateway must not need), so out of the
 * box a text becomes a feature-hashed bag of words (the "hashing trick", Weinberger et al. 2009,
 * https://arxiv.org/abs/0902.2206):
 *
 * - the text is NFKC-normalised, lower-cased and split into words with `Intl.Segmenter`
 *   (Unicode word boundaries, any script);
 * - features: each word, each pair of adjacent words, and the character trigrams of each word
 *   with boundary marks (`#ku`, `kub`, … `s#`), so near spellings and inflections overlap;
 * - each feature is hashed with xxHash32 (`xxhash-wasm`) to one of `dimensions` buckets and a
 *   sign (a second hash bit), weighted 1 + ln(tf), words counting double over trigrams;
 * - the vector is L2-normalised, so cosine similarity is a dot product.
 *
 * It finds texts that share words and word pieces; it does not know synonyms. The API and
 * README call it `lexical`; configure an OpenAI-compatible provider for semantic embeddings.
 */
import xxhash, { type XXHashAPI } from 'xxhash-wasm';

/** Name of the built-in provider. */
export const LOCAL_PROVIDER = 'local';
/** Model name of the built-in lexical embedding. */
export const LEXICAL_MODEL = 'lexical-hash-512';
/** Its dimensions. */
export const LEXICAL_DIMENSIONS = 512;

const WORD_WEIGHT = 2;
const BIGRAM_WEIGHT = 1;
const TRIGRAM_WEIGHT = 0.5;
const SEED_BUCKET = 0x9747b28c;
/** Texts are cut to this many UTF-16 code units before embedding (≈ a few thousand words). */
export const LEXICAL_MAX_CHARS = 32_768;

let api: Promise<XXHashAPI> | undefined;

export class LexicalEmbedder {
  readonly dimensions: number;
  private readonly segmenter = new Intl.Segmenter('und', { granularity: 'word' });

  private constructor(
    private readonly hash: XXHashAPI,
    dimensions: number,
  ) {
    this.dimensions = dimensions;
  }

  /** Loads the hash function (a small WebAssembly module shipped in `xxhash-wasm`; no network). */
  static async create(dimensions = LEXICAL_DIMENSIONS): Promise<LexicalEmbedder> {
    api ??= xxhash();
    return new LexicalEmbedder(await api, dimensions);
  }

  /** The words of `text`, lower-cased (NFKC), in order. */
  words(text: string): string[] {
    const out: string[] = [];
    for (const s of this.segmenter.segment(text.slice(0, LEXICAL_MAX_CHARS).normalize('NFKC').toLowerCase())) {
      if (s.isWordLike === true) out.push(s.segment);
    }
    return out;
  }

  /**
   * The unit-length embedding of `text` (all zeros for a text without words). Deterministic: the
   * same text gives the same vector on every machine and release of this model name.
   */
  embed(text: string): Float32Array {
    const counts = new Map<string, number>();
    const add = (feature: string, w: number): void => {
      counts.set(feature, (counts.get(feature) ?? 0) + w);
    };
    const words = this.words(text);
    for (let i = 0; i < words.length; i++) {
      const w = words[i] as string;
      add(`w:${w}`, WORD_WEIGHT);
      if (i + 1 < words.length) add(`b:${w} ${words[i + 1] as string}`, BIGRAM_WEIGHT);
      const marked = `#${w}#`;
      if (marked.length > 4) for (let j = 0; j + 3 <= marked.length; j++) add(`t:${marked.slice(j, j + 3)}`, TRIGRAM_WEIGHT);
    }
    const v = new Float32Array(this.dimensions);
    for (const [feature, weight] of counts) {
      const h = this.hash.h32(feature, SEED_BUCKET);
      const bucket = h % this.dimensions;
      // the top bit decides the sign, so collisions cancel out on average
      const sign = h >>> 31 === 1 ? -1 : 1;
      v[bucket] = (v[bucket] as number) + sign * (1 + Math.log(weight));
    }
    return normalize(v);
  }
}

/** Scales `v` to unit length in place (a zero vector stays zero) and returns it. */
export function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += (v[i] as number) * (v[i] as number);
  if (sum === 0) return v;
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) * inv;
  return v;
}
