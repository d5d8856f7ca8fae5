/**
 * One codec, three uses: the io-ts codec that validates a request body also yields its
 * JSON Schema (for the OpenAPI 3.1 document, JSON Schema 2020-12 dialect) and the list of fields
 * it knows (to reject unknown ones by path). Walks io-ts' runtime type tags: interface, partial,
 * exact, intersection, union, array, record, literal, keyof, refinement/brand, primitives.
 *
 * Refinements and brands cannot be read back from io-ts, so codecs that need more than their
 * base type in the schema (patterns, bounds, descriptions) register it with {@link withSchema}.
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { GatewayError } from '../base/errors.js';
import { formatIoTsErrors } from '../base/io-ts-errors.js';
import { unknownFields } from '../base/unknown-fields.js';

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
