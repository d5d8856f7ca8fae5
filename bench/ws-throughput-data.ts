/**
 * Payloads of `npm run bench:ws` (bench/ws-throughput.ts), deterministic so every run and every
 * transport sends the same bytes:
 *
 * - {@link wordText}: random lowercase "words" (a–z, 2–9 letters, single spaces). About 4.4 bits
 *   of entropy per character, so gzip can shrink it only to ~60%: a pessimistic stand-in for the
 *   prose, code or logs a text tool returns (gzip takes those to 25–45%). Only a–z and spaces,
 *   so it can be pasted into a JSON string (and wrk's Lua template) unescaped.
 * - {@link records}: a JSON-heavy value, an array of API-style records (ids, names, e-mail,
 *   booleans, scores, ISO dates, tags, a nested owner), as a structured tool result would carry.
 */

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function word(next: () => number, min: number, max: number): string {
  const n = min + Math.floor(next() * (max - min + 1));
  let w = '';
  for (let i = 0; i < n; i++) w += String.fromCharCode(97 + Math.floor(next() * 26));
  return w;
}

/** Exactly `chars` characters of random lowercase words separated by single spaces. */
export function wordText(chars: number, seed = 1): string {
  const next = rng(seed);
  let out = '';
  while (out.length < chars) out += (out.length === 0 ? '' : ' ') + word(next, 2, 9);
  return out.slice(0, chars);
}

/** One API-style record. */
export interface BenchRecord {
  id: number;
  name: string;
  email: string;
  active: boolean;
  score: number;
  created: string;
  tags: string[];
  owner: { id: number; login: string };
}

const TAGS = ['alpha', 'beta', 'gamma', 'delta', 'internal', 'external', 'billing', 'search'];

/** `{ records: [...] }` whose `JSON.stringify` is just over `jsonBytes` bytes (at least one record). */
export function records(jsonBytes: number, seed = 7): { records: BenchRecord[] } {
  const next = rng(seed);
  const out: BenchRecord[] = [];
  let size = 14; // {"records":[]}
  while (out.length === 0 || size < jsonBytes) {
    const name = word(next, 4, 10);
    const day = 1 + Math.floor(next() * 28);
    const r: BenchRecord = {
      id: 100_000 + Math.floor(next() * 900_000),
      name,
      email: `${name}@${word(next, 4, 8)}.example.com`,
      active: next() < 0.7,
      score: Math.round(next() * 100_000) / 1000,
      created: `2025-${String(1 + Math.floor(next() * 12)).padStart(2, '0')}-${String(day).padStart(2, '0')}T${String(Math.floor(next() * 24)).padStart(2, '0')}:${String(Math.floor(next() * 60)).padStart(2, '0')}:00Z`,
      tags: TAGS.filter(() => next() < 0.3),
      owner: { id: 1 + Math.floor(next() * 5000), login: word(next, 3, 8) },
    };
    out.push(r);
    size += JSON.stringify(r).length + (out.length > 1 ? 1 : 0);
  }
  return { records: out };
}
