/**
 * TypeScript declarations of tools, as code mode hands them to a model (Cloudflare "Code Mode",
 * https://blog.cloudflare.com/code-mode/: models write better calls against a typed API than
 * against tool-call JSON). Each tool becomes one method of the sandbox's `tools` object, its
 * argument typed from the tool's `inputSchema` and its structured result from `outputSchema`.
 *
 * The JSON Schema subset covered is what MCP tool schemas use (JSON Schema 2020-12,
 * https://json-schema.org/draft/2020-12/json-schema-core): `type` (one or a list), `properties`,
 * `required`, `items`, `enum`, `const`, `anyOf`/`oneOf`, `allOf`, `additionalProperties`,
 * `description`. Anything else (`$ref`, `not`, conditionals) becomes `unknown`: a declaration
 * may be wider than the schema, never narrower.
 */
import type { JsonObject } from '../../upstreams/upstream.js';

/** Nesting depth beyond which a schema is declared `unknown`. */
const MAX_DEPTH = 8;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function doc(description: unknown, indent: string): string {
  if (typeof description !== 'string' || description.trim() === '') return '';
  const lines = description.trim().replace(/\*\//g, '*\\/').split('\n');
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`).join('\n')}\n${indent} */\n`;
}

function literal(v: unknown): string {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v) ? JSON.stringify(v) : 'unknown';
}

function union(parts: string[]): string {
  const unique = [...new Set(parts)];
  if (unique.includes('unknown')) return 'unknown';
  return unique.length === 0 ? 'never' : unique.join(' | ');
}

/**
 * The TypeScript type of JSON Schema `schema`, written at `indent` (for nested object members).
 * Never throws: unknown constructs become `unknown`.
 */
export function schemaToType(schema: unknown, indent = '', depth = 0): string {
  if (schema === true || schema === undefined) return 'unknown';
  if (schema === false) return 'never';
  if (!isObject(schema) || depth > MAX_DEPTH) return 'unknown';
  if ('const' in schema) return literal(schema['const']);
  if (Array.isArray(schema['enum'])) return union(schema['enum'].map(literal));
  for (const key of ['anyOf', 'oneOf'] as const) {
    const alts = schema[key];
    if (Array.isArray(alts)) return union(alts.map((a) => wrap(schemaToType(a, indent, depth + 1))));
  }
  if (Array.isArray(schema['allOf'])) {
    const parts = schema['allOf'].map((a) => wrap(schemaToType(a, indent, depth + 1)));
    return parts.includes('unknown') ? 'unknown' : parts.join(' & ');
  }
  const type = schema['type'];
  if (Array.isArray(type)) return union(type.map((t) => schemaToType({ ...schema, type: t }, indent, depth)));
  switch (type) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      const items = schema['items'];
      const inner = Array.isArray(items) ? `[${items.map((i) => schemaToType(i, indent, depth + 1)).join(', ')}]` : `${wrap(schemaToType(items, indent, depth + 1))}[]`;
      return inner;
    }
    case 'object':
      return objectType(schema, indent, depth);
    case undefined:
      return isObject(schema['properties']) ? objectType(schema, indent, depth) : 'unknown';
    default:
      return 'unknown';
  }
}

function wrap(t: string): string {
  return t.includes(' | ') || t.includes(' & ') ? `(${t})` : t;
}

function objectType(schema: JsonObject, indent: string, depth: number): string {
  const props = isObject(schema['properties']) ? schema['properties'] : {};
  const required = new Set(Array.isArray(schema['required']) ? schema['required'].filter((r): r is string => typeof r === 'string') : []);
  const inner = `${indent}  `;
  let out = '';
  for (const [key, value] of Object.entries(props)) {
    const name = IDENTIFIER.test(key) ? key : JSON.stringify(key);
    out += doc(isObject(value) ? value['description'] : undefined, inner);
    out += `${inner}${name}${required.has(key) ? '' : '?'}: ${schemaToType(value, inner, depth + 1)};\n`;
  }
  const extra = schema['additionalProperties'];
  if (extra !== undefined && extra !== false) out += `${inner}[key: string]: ${extra === true ? 'unknown' : schemaToType(extra, inner, depth + 1)};\n`;
  if (out === '') return extra === false ? 'Record<string, never>' : 'Record<string, unknown>';
  return `{\n${out}${indent}}`;
}

/** A JavaScript identifier for tool `name`: other characters become `_`; a leading digit gets `_`. */
export function functionName(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_$]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

/** Function names for `names`, in order, made unique with `_2`, `_3`, ... on clashes. */
export function functionNames(names: readonly string[]): string[] {
  const used = new Set<string>();
  return names.map((n) => {
    const base = functionName(n);
    let candidate = base;
    for (let i = 2; used.has(candidate); i++) candidate = `${base}_${i}`;
    used.add(candidate);
    return candidate;
  });
}

/** The declarations every set of tool declarations relies on. */
export const TOOL_RESULT_DECLARATION = `/** What every tool function resolves with; a tool that reports an error rejects with a ToolError instead. */
interface ToolResult<T = unknown> {
  /** The MCP content blocks. */
  content: { type: string; text?: string; [key: string]: unknown }[];
  /** The tool's structured output, when it declares an outputSchema. */
  structuredContent?: T;
  /** Every text block joined with newlines. */
  text: string;
}
/** Reports progress of the execute_code call to the client. */
declare function progress(progress: number, total?: number, message?: string): void;
`;

/** The method declaration of one tool as a member of `tools`, e.g. `everything_echo(args: {...}): Promise<ToolResult>;`. */
export function toolDeclaration(fn: string, tool: JsonObject): string {
  const description = typeof tool['description'] === 'string' ? tool['description'] : '';
  const args = schemaToType(tool['inputSchema'] ?? { type: 'object' }, '  ', 1);
  const out = tool['outputSchema'] !== undefined ? `ToolResult<${schemaToType(tool['outputSchema'], '  ', 1)}>` : 'ToolResult';
  const argType = args === 'Record<string, unknown>' || args === 'unknown' ? `args?: ${args}` : `args: ${args}`;
  return `${doc(`${description}${description ? '\n' : ''}MCP tool: ${String(tool['name'])}`, '  ')}  ${fn}(${argType}): Promise<${out}>;\n`;
}

/** `declare const tools: {...}` for the given (function name, tool) pairs, with the shared declarations. */
export function toolsDeclaration(entries: readonly (readonly [string, JsonObject])[]): string {
  return `${TOOL_RESULT_DECLARATION}declare const tools: {\n${entries.map(([fn, tool]) => toolDeclaration(fn, tool)).join('')}};\n`;
}
