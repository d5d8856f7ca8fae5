/**
 * One codec, three uses (issue 9): the io-ts codec that validates a request body also yields its
 * JSON Schema (for the OpenAPI 3.1 document, JSON Schema 2020-12 dialect) and the list of fields
 * it knows (to reject unknown ones by path). Walks io-ts' runtime type tags: interface, partial,
 * exact, intersection, union, array, record, literal, keyof, refinement/brand, primitives.
 *
 * Refinements and brands cannot be read back from io-ts, so codecs that need more than their
 * base type in the schema (patterns, bounds, descriptions) register it with {@link withSchema}.
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { GatewayError } from './errors.js';
import { formatIoTsErrors } from './io-ts-errors.js';

/** A JSON Schema object (2020-12 dialect, as OpenAPI 3.1 uses). */
export type JsonSchema = { readonly [k: string]: unknown };

const extras = new WeakMap<t.Mixed, JsonSchema>();

/** Attaches schema keywords (`description`, `pattern`, `minimum`, `examples`, ...) to `codec`; returns it. */
export function withSchema<C extends t.Mixed>(codec: C, schema: JsonSchema): C {
  extras.set(codec, { ...extras.get(codec), ...schema });
  return codec;
}

interface Tagged {
  readonly _tag?: string;
  readonly name: string;
  readonly props?: Record<string, t.Mixed>;
  readonly type?: t.Mixed;
  readonly types?: readonly t.Mixed[];
  readonly codomain?: t.Mixed;
  readonly value?: unknown;
  readonly keys?: Record<string, unknown>;
}

function base(codec: t.Mixed): JsonSchema {
  const c = codec as unknown as Tagged;
  switch (c._tag) {
    case 'StringType':
      return { type: 'string' };
    case 'NumberType':
      return { type: 'number' };
    case 'BooleanType':
      return { type: 'boolean' };
    case 'NullType':
      return { type: 'null' };
    case 'UnknownType':
    case 'AnyType':
      return {};
    case 'UnknownRecordType':
      return { type: 'object' };
    case 'UnknownArrayType':
      return { type: 'array' };
    case 'LiteralType':
      return { const: c.value };
    case 'KeyofType':
      return { type: 'string', enum: Object.keys(c.keys ?? {}) };
    case 'RefinementType':
    case 'ReadonlyType':
      return toJsonSchema(c.type as t.Mixed);
    case 'ExactType': {
      const inner = toJsonSchema(c.type as t.Mixed);
      return inner['type'] === 'object' ? { ...inner, additionalProperties: false } : inner;
    }
    case 'ArrayType':
    case 'ReadonlyArrayType':
      return { type: 'array', items: toJsonSchema(c.type as t.Mixed) };
    case 'DictionaryType':
      return { type: 'object', additionalProperties: toJsonSchema(c.codomain as t.Mixed) };
    case 'InterfaceType':
    case 'PartialType': {
      const props = c.props ?? {};
      const properties = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, toJsonSchema(v)]));
      const required = c._tag === 'InterfaceType' ? Object.keys(props) : [];
      return { type: 'object', properties, ...(required.length > 0 ? { required } : {}) };
    }
    case 'IntersectionType': {
      const parts = (c.types ?? []).map(toJsonSchema);
      // merge plain object parts into one schema; anything else becomes allOf
      if (parts.every((p) => p['type'] === 'object' && p['properties'] !== undefined)) {
        const properties = Object.assign({}, ...parts.map((p) => p['properties'] as object)) as JsonSchema;
        const required = parts.flatMap((p) => (p['required'] as string[] | undefined) ?? []);
        return { type: 'object', properties, ...(required.length > 0 ? { required } : {}) };
      }
      return { allOf: parts };
    }
    case 'UnionType':
      return { anyOf: (c.types ?? []).map(toJsonSchema) };
    default:
      return { description: `(${c.name})` };
  }
}

/** The JSON Schema of `codec`, with any keywords registered by {@link withSchema}. */
export function toJsonSchema(codec: t.Mixed): JsonSchema {
  const extra = extras.get(codec);
  const schema = base(codec);
  return extra ? { ...schema, ...extra } : schema;
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

/**
 * Decodes `body` with `codec`, refusing unknown fields.
 * @throws GatewayError VALIDATION_ERROR (400) whose `details.problems` name every bad field by path.
 */
export function decodeBody<C extends t.Mixed>(codec: C, body: unknown): t.TypeOf<C> {
  const r = codec.decode(body);
  const problems = isLeft(r) ? formatIoTsErrors(r.left, '(body)') : [];
  problems.push(...unknownFields(codec, body));
  if (problems.length > 0) {
    throw new GatewayError('VALIDATION_ERROR', `Invalid request body: ${problems.join('; ')}`, { problems: [...new Set(problems)] });
  }
  return (r as { right: t.TypeOf<C> }).right;
}

/** Whether `u` is a plain JSON object (not null, not an array). */
export function isJsonObject(u: unknown): u is Record<string, unknown> {
  return typeof u === 'object' && u !== null && !Array.isArray(u);
}

/** Bytes of `u` as UTF-8 JSON, or Infinity when it is not JSON-serialisable (size limits of bodies). */
export function jsonByteLength(u: unknown): number {
  try {
    const text = JSON.stringify(u) as string | undefined;
    return text === undefined ? Infinity : Buffer.byteLength(text, 'utf8');
  } catch {
    return Infinity;
  }
}
