/**
 * The pure rules of the `/api/v1/tools*` describe routes: a tool's description and safety notes,
 * an action's parameters and example arguments generated from its MCP `inputSchema` (JSON Schema,
 * https://json-schema.org/draft/2020-12/json-schema-validation), and the `result` of an action
 * (developer-mesh MCP Server API reference,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md,
 * "Tool Integration"). No I/O.
 */
import { isJsonObject } from '../../codecs/schema.js';
import type { JsonObject } from '../../upstreams/upstream.js';

/** Nesting depth beyond which {@link exampleFor} stops descending (cyclic or huge schemas). */
const MAX_EXAMPLE_DEPTH = 6;

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** What {@link toolDescription} reads of an upstream. */
export interface DescribedUpstream {
  readonly name: string;
  readonly config: { readonly connection_type: string };
  readonly serverInfo: Readonly<Record<string, unknown>> | undefined;
  readonly instructions: string | undefined;
}

/**
 * The description of a tool (an upstream), first match wins:
 * 1. the server's `serverInfo.description`;
 * 2. its `instructions` when they are one short paragraph (≤ 300 characters, not a Markdown
 *    heading) — long manuals meant for a model are not a description;
 * 3. the server's title and name with version (`Everything Reference Server (mcp-servers/everything 2.0.0)`);
 * 4. `MCP client <name> (<connection_type>)` when the upstream never connected.
 */
export function toolDescription(u: DescribedUpstream): string {
  const info = u.serverInfo ?? {};
  const own = str(info['description']);
  if (own) return own;
  const instructions = str(u.instructions);
  if (instructions && !instructions.startsWith('#')) {
    const paragraph = instructions.split(/\n\s*\n/)[0]?.replace(/\s+/g, ' ').trim() ?? '';
    if (paragraph.length > 0 && paragraph.length <= 300 && paragraph === instructions.replace(/\s+/g, ' ').trim()) return paragraph;
  }
  const name = str(info['name']);
  const title = str(info['title']);
  const version = str(info['version']);
  const id = [name, version].filter(Boolean).join(' ');
  if (title && id) return `${title} (${id})`;
  if (title || id) return (title ?? id) as string;
  return `MCP client ${u.name} (${u.config.connection_type})`;
}

export function names(tools: readonly JsonObject[]): string[] {
  return tools.map((tool) => tool['name'] as string);
}

/**
 * The safety notes of a tool for one caller, from the MCP tool annotations of its allowed actions
 * (MCP 2025-06-18 `ToolAnnotations`) and its deny list. Sentences, in this order, each only when
 * it applies:
 * - the actions refused by `disallowed_actions`;
 * - that no action is allowed;
 * - allowed actions marked `destructiveHint: true`;
 * - allowed actions not marked read-only and without a `destructiveHint` (MCP's default for them
 *   is destructive);
 * - allowed actions that change state but are marked `destructiveHint: false`;
 * - allowed actions marked `openWorldHint: true` (they reach outside systems);
 * - how many allowed actions are marked `readOnlyHint: true`;
 * - always: annotations are the upstream's hints, not guarantees.
 */
export function safetyNotes(allowed: readonly JsonObject[], denyListed: readonly string[]): string {
  const notes: string[] = [];
  if (denyListed.length > 0) notes.push(`Refused by this tool's disallowed_actions policy: ${denyListed.join(', ')}.`);
  if (allowed.length === 0) notes.push('No action of this tool is allowed for these credentials.');
  const readOnly: string[] = [];
  const destructive: string[] = [];
  const unmarked: string[] = [];
  const modifying: string[] = [];
  const openWorld: string[] = [];
  for (const tool of allowed) {
    const name = tool['name'] as string;
    const a = isJsonObject(tool['annotations']) ? tool['annotations'] : {};
    if (a['readOnlyHint'] === true) readOnly.push(name);
    else if (a['destructiveHint'] === true) destructive.push(name);
    else if (a['destructiveHint'] === false) modifying.push(name);
    else unmarked.push(name);
    if (a['openWorldHint'] === true) openWorld.push(name);
  }
  if (destructive.length > 0) notes.push(`Destructive (destructiveHint): ${destructive.join(', ')}.`);
  if (unmarked.length > 0) notes.push(`Not marked read-only, so they may modify or delete data (the MCP default): ${unmarked.join(', ')}.`);
  if (modifying.length > 0) notes.push(`Change state, not destructively: ${modifying.join(', ')}.`);
  if (openWorld.length > 0) notes.push(`Reach outside systems (openWorldHint): ${openWorld.join(', ')}.`);
  if (readOnly.length > 0) notes.push(`Read-only (readOnlyHint): ${readOnly.length} of ${allowed.length} allowed actions.`);
  notes.push('Annotations are hints from the upstream server, not guarantees.');
  return notes.join(' ');
}

function typeSummary(schema: Record<string, unknown>): string {
  const type = Array.isArray(schema['type']) ? (schema['type'] as unknown[]).join(' | ') : (str(schema['type']) ?? 'any value');
  const en = schema['enum'];
  return Array.isArray(en) && en.length > 0 ? `${type}, one of: ${en.map((v) => JSON.stringify(v)).join(', ')}` : type;
}

/**
 * `{param: description}` of an MCP `inputSchema`'s top-level properties: the property's
 * `description`, else its `title`, else its type (and enum values).
 */
export function parametersOf(inputSchema: unknown): Record<string, string> {
  const props = isJsonObject(inputSchema) && isJsonObject(inputSchema['properties']) ? inputSchema['properties'] : {};
  const out: Record<string, string> = {};
  for (const [name, schema] of Object.entries(props)) {
    const s = isJsonObject(schema) ? schema : {};
    out[name] = str(s['description']) ?? str(s['title']) ?? typeSummary(s);
  }
  return out;
}

/** The `required` names of an MCP `inputSchema`. */
export function requiredOf(inputSchema: unknown): string[] {
  const req = isJsonObject(inputSchema) ? inputSchema['required'] : undefined;
  return Array.isArray(req) ? req.filter((r): r is string => typeof r === 'string') : [];
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function numberExample(schema: Record<string, unknown>, integer: boolean): number {
  let v = 1;
  const min = num(schema['minimum']);
  const exMin = num(schema['exclusiveMinimum']);
  const max = num(schema['maximum']);
  const exMax = num(schema['exclusiveMaximum']);
  if (min !== undefined && v < min) v = min;
  if (exMin !== undefined && v <= exMin) v = exMin + 1;
  if (max !== undefined && v > max) v = max;
  if (exMax !== undefined && v >= exMax) v = exMax - 1;
  return integer ? Math.ceil(v) : v;
}

const FORMAT_EXAMPLES: Readonly<Record<string, string>> = {
  uri: 'https://example.com',
  url: 'https://example.com',
  email: 'user@example.com',
  'date-time': '2024-01-15T10:00:00Z',
  date: '2024-01-15',
  time: '10:00:00Z',
  uuid: '00000000-0000-4000-8000-000000000000',
};

/**
 * An example value for a JSON Schema, first match wins: the schema's `examples[0]`, `example`,
 * `default`, `const`, first `enum` value; the example of the first `anyOf`/`oneOf` branch (or
 * the merged object examples of `allOf`); else a placeholder by type: strings by `format` (a URL,
 * an email, a date...) or `<name>`, numbers 1 moved into `minimum`..`maximum`, booleans `false`,
 * arrays one example item, objects every property's example. `$ref` is not resolved (`null`).
 * Never throws, for any JSON input.
 * @param name the property name, used in string placeholders.
 * @param depth how deep in the enclosing schema this one is (callers start at 0).
 */
export function exampleFor(schema: unknown, name = 'value', depth = 0): unknown {
  if (!isJsonObject(schema)) return `<${name}>`;
  if (depth > MAX_EXAMPLE_DEPTH) return null;
  const examples = schema['examples'];
  if (Array.isArray(examples) && examples.length > 0) return examples[0];
  if ('example' in schema) return schema['example'];
  if ('default' in schema) return schema['default'];
  if ('const' in schema) return schema['const'];
  const en = schema['enum'];
  if (Array.isArray(en) && en.length > 0) return en[0];
  for (const key of ['anyOf', 'oneOf']) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) {
      const branch = branches.find((b) => !(isJsonObject(b) && b['type'] === 'null')) ?? branches[0];
      return exampleFor(branch, name, depth + 1);
    }
  }
  const all = schema['allOf'];
  if (Array.isArray(all) && all.length > 0) {
    const parts = all.map((b) => exampleFor(b, name, depth + 1));
    return parts.every(isJsonObject) ? Object.assign({}, ...parts) : parts[0];
  }
  if ('$ref' in schema) return null;
  const declared = schema['type'];
  const type = Array.isArray(declared) ? (declared.find((x) => x !== 'null') ?? declared[0]) : declared;
  switch (type) {
    case 'string': {
      const format = str(schema['format']);
      return (format && FORMAT_EXAMPLES[format]) ?? `<${name}>`;
    }
    case 'integer':
      return numberExample(schema, true);
    case 'number':
      return numberExample(schema, false);
    case 'boolean':
      return false;
    case 'null':
      return null;
    case 'array':
      return 'items' in schema ? [exampleFor(schema['items'], name, depth + 1)] : [];
    case 'object':
      return objectExample(schema, depth);
    default:
      return isJsonObject(schema['properties']) ? objectExample(schema, depth) : `<${name}>`;
  }
}

export function objectExample(schema: Record<string, unknown>, depth: number): Record<string, unknown> {
  const props = isJsonObject(schema['properties']) ? schema['properties'] : {};
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, exampleFor(v, k, depth + 1)]));
}

/**
 * The `result` of an action from an MCP `CallToolResult`: its `structuredContent` when present;
 * else, when every content part is text, the text (parts joined by newlines) parsed as JSON when
 * it parses, else the text itself; else (images, resources...) the content parts as they are.
 */
export function actionResult(result: JsonObject): unknown {
  if (result['structuredContent'] !== undefined) return result['structuredContent'];
  const content = result['content'];
  if (!Array.isArray(content)) return null;
  const allText = content.every((c) => isJsonObject(c) && c['type'] === 'text' && typeof c['text'] === 'string');
  if (!allText) return content;
  const text = content.map((c) => (c as { text: string }).text).join('\n');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

// ---------------------------------------------------------------------------------------------
// Wire: body codecs and response schemas (the OpenAPI document is generated from these)
// ---------------------------------------------------------------------------------------------
