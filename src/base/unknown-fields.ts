/**
 * Keys of a JSON object that its io-ts codec does not declare, and the declared name nearest to a
 * typo: the "unknown field" half of body and config validation (the config loader and the body
 * codecs both use it, so it sits below both).
 */
import type * as t from 'io-ts';

interface Tagged {
  readonly _tag?: string;
  readonly props?: Record<string, t.Mixed>;
  readonly type?: t.Mixed;
  readonly types?: readonly t.Mixed[];
}

/** The object props `codec` declares, or undefined when it is not an object codec. */
function propsOf(codec: t.Mixed): Record<string, t.Mixed> | undefined {
  const c = codec as unknown as Tagged;
  switch (c._tag) {
    case 'InterfaceType':
    case 'PartialType':
      return c.props;
    case 'ExactType':
    case 'RefinementType':
    case 'ReadonlyType':
      return propsOf(c.type as t.Mixed);
    case 'IntersectionType': {
      const all = (c.types ?? []).map(propsOf);
      return all.every((p) => p !== undefined) ? Object.assign({}, ...all) : undefined;
    }
    default:
      return undefined;
  }
}

function elementOf(codec: t.Mixed): t.Mixed | undefined {
  const c = codec as unknown as Tagged;
  if (c._tag === 'ArrayType' || c._tag === 'ReadonlyArrayType') return c.type;
  if (c._tag === 'ExactType' || c._tag === 'RefinementType' || c._tag === 'ReadonlyType') return elementOf(c.type as t.Mixed);
  return undefined;
}

/** A key of a JSON object that its codec does not declare. */
export interface UnknownField {
  /** Dotted path of the key (`server.prot`, `mcp_clients.0.tool_prefx`). */
  readonly path: string;
  /** The key itself. */
  readonly key: string;
  /** The keys the codec declares at that place. */
  readonly known: readonly string[];
}

/**
 * Keys of `value` that `codec` does not declare, at any depth (nested objects and arrays of
 * objects included; records and unions accept any key), in document order.
 */
export function findUnknownFields(codec: t.Mixed, value: unknown, prefix = ''): UnknownField[] {
  if (typeof value !== 'object' || value === null) return [];
  if (Array.isArray(value)) {
    const el = elementOf(codec);
    return el ? value.flatMap((v, i) => findUnknownFields(el, v, `${prefix}${i}.`)) : [];
  }
  const props = propsOf(codec);
  if (!props) return [];
  const out: UnknownField[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const p = props[k];
    if (p === undefined) out.push({ path: `${prefix}${k}`, key: k, known: Object.keys(props) });
    else out.push(...findUnknownFields(p, v, `${prefix}${k}.`));
  }
  return out;
}

/**
 * Fields of `value` that `codec` does not declare, as `path: unknown field` lines (nested objects
 * and arrays of objects included; records and unions accept any key).
 */
export function unknownFields(codec: t.Mixed, value: unknown, prefix = ''): string[] {
  return findUnknownFields(codec, value, prefix).map((u) => `${u.path}: unknown field`);
}

/**
 * Optimal string alignment distance (Levenshtein with adjacent transpositions, so `prot` is one
 * edit from `port`): https://en.wikipedia.org/wiki/Damerau%E2%80%93Levenshtein_distance
 */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      let v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, ((d[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = v;
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/**
 * The candidate nearest to `word` (case-insensitive edit distance, ties: first candidate), or
 * undefined when none is within a third of the word's length (at least 2 edits): a typo gets a
 * suggestion, an unrelated word does not.
 */
export function nearestName(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.max(2, Math.floor(w.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
