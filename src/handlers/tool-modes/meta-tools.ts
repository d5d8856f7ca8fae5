/**
 * Tool modes `search` and `code`: instead of every tool, a session sees a few meta-tools.
 *
 * - `search`: `search_tools` (BM25, or an RE2 regular expression), `describe_tools` (schemas, or
 *   TypeScript declarations) and `call_tool` (name + arguments) — Anthropic's tool search tool
 *   with deferred loading (https://docs.claude.com/en/docs/agents-and-tools/tool-use/tool-search-tool).
 * - `code`: `search_tools`, `describe_tools` (TypeScript by default) and `execute_code`, which runs
 *   a snippet in the QuickJS sandbox with one async function per tool on `tools` — Cloudflare's
 *   code mode (https://blog.cloudflare.com/code-mode/).
 *
 * Access rules hold in every mode: searches, descriptions, the sandbox's `tools` object and every
 * call are limited to what the caller's filter lets it see in `full` mode
 * ({@link ToolModeHost.visibleTools}), and every call goes through the normal `tools/call` path
 * ({@link ToolModeHost.callToolVia}).
 */
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import type { RequestAuth } from '../../base/access.js';
import { isToolMode, type ToolMode } from '../../base/principal.js';
import { ERRORS, GatewayError } from '../../base/errors.js';
import type { ResolvedToolModes } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import { cancelScope, type JsonObject } from '../../upstreams/upstream.js';
import { newCallId } from '../../upstreams/invoke.js';
import type { InflightCall, McpSession } from '../mcp/session.js';
import { runSandboxed, type SandboxHost, type SandboxResult } from './sandbox.js';
import { indexFor, MAX_QUERY_CHARS, type ToolHit } from './search-index.js';
import type { ToolModeHooks, ToolModeHost } from '../mcp/tool-mode-hooks.js';
import { functionNames, toolsDeclaration } from './typescript.js';

/** The session header that picks the mode. */
export const TOOL_MODE_HEADER = 'x-tributary-tool-mode';

/** Most names one `describe_tools` call may ask for. */
export const MAX_DESCRIBE_NAMES = 20;

/** Most results one `search_tools` call may ask for. */
export const MAX_SEARCH_LIMIT = 50;

type MetaMode = Exclude<ToolMode, 'full'>;

function searchTool(total: number, defaultLimit: number): JsonObject {
  return {
    name: 'search_tools',
    title: 'Search tools',
    description:
      `Find tools among the ${total} this gateway offers you. Returns matching tool names with one-line summaries, best first. ` +
      'Use plain words (ranked by BM25 over names, descriptions and parameter names), or set regex: true to match an RE2 regular expression (case-insensitive). ' +
      'Then get the schemas with describe_tools.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', minLength: 1, maxLength: MAX_QUERY_CHARS, description: 'Words describing the task, or a regular expression when regex is true' },
        regex: { type: 'boolean', description: 'Treat query as an RE2 regular expression (default false)' },
        limit: { type: 'integer', minimum: 1, maximum: MAX_SEARCH_LIMIT, description: `Most results (default ${defaultLimit})` },
      },
      required: ['query'],
      additionalProperties: false,
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  };
}

function describeTool(mode: MetaMode): JsonObject {
  return {
    name: 'describe_tools',
    title: 'Describe tools',
    description:
      mode === 'code'
        ? 'TypeScript declarations of the named tools as methods of the `tools` object that execute_code provides (format "typescript", the default), or their JSON schemas (format "json").'
        : 'Full definitions of the named tools: description, inputSchema and outputSchema as JSON (format "json", the default), or TypeScript declarations (format "typescript").',
    inputSchema: {
      type: 'object',
      properties: {
        names: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: MAX_DESCRIBE_NAMES, description: 'Tool names from search_tools' },
        format: { type: 'string', enum: ['json', 'typescript'], description: `Default ${mode === 'code' ? '"typescript"' : '"json"'}` },
      },
      required: ['names'],
      additionalProperties: false,
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  };
}

const CALL_TOOL: JsonObject = {
  name: 'call_tool',
  title: 'Call a tool',
  description: 'Calls the named tool (a name from search_tools) with its arguments, which must match the inputSchema describe_tools gives. Returns the tool\'s own result.',
  inputSchema: {
    type: 'object',
    properties: {
      name: { type: 'string', description: 'Tool name' },
      arguments: { type: 'object', description: 'Arguments of the tool', additionalProperties: true },
    },
    required: ['name'],
    additionalProperties: false,
  },
};

function executeTool(limits: ResolvedToolModes['sandbox']): JsonObject {
  return {
    name: 'execute_code',
    title: 'Execute code',
    description:
      'Runs JavaScript or TypeScript (the body of an async function: use await, and return the result as JSON-serialisable data) in a sandbox with no network, files or timers. ' +
      'Every tool you may use is an async method of the global `tools` object, named like the tool with non-identifier characters as `_` (e.g. tools.memory_read_graph({})), ' +
      'resolving to {content, structuredContent?, text}; a tool error rejects. Use describe_tools for the declarations. console.log output is returned; progress(n, total?, message?) reports progress. ' +
      `Limits per run: ${limits.wall_ms} ms wall time, ${limits.cpu_ms} ms CPU, ${Math.round(limits.memory_bytes / 1048576)} MiB memory, ${limits.max_tool_calls} tool calls, ${Math.round(limits.max_output_bytes / 1024)} KiB output.`,
    inputSchema: {
      type: 'object',
      properties: { code: { type: 'string', minLength: 1, maxLength: limits.max_code_bytes, description: 'The code to run' } },
      required: ['code'],
      additionalProperties: false,
    },
  };
}

function textResult(text: string, isError = false): JsonObject {
  return isError ? { content: [{ type: 'text', text }], isError: true } : { content: [{ type: 'text', text }] };
}

/** A failure of a meta-tool as a tool result the model can read: `CODE: message`. */
function errorResult(err: unknown): JsonObject {
  if (err instanceof GatewayError) return textResult(`${err.code}: ${err.message}`, true);
  if (err instanceof Error) return textResult(`${err.name === 'UpstreamRpcError' ? 'UPSTREAM_ERROR' : 'ERROR'}: ${err.message}`, true);
  return textResult('ERROR: tool call failed', true);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an optional argument of `args`, checking its type. @throws GatewayError INVALID_PARAMS. */
function arg<T>(args: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string, tool: string): T | undefined {
  const v = args[key];
  if (v === undefined) return undefined;
  if (!check(v)) throw new GatewayError('INVALID_PARAMS', `${tool}: ${key} must be ${what}`, { tool, argument: key });
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isPositiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

/** The text of a tool result's text blocks, joined with newlines. */
export function resultText(result: JsonObject): string {
  const content = result['content'];
  if (!Array.isArray(content)) return '';
  const out: string[] = [];
  for (const c of content) if (isRecord(c) && c['type'] === 'text' && typeof c['text'] === 'string') out.push(c['text']);
  return out.join('\n');
}

/** An `execute_code` run's result as the model reads it: the value's JSON (or the error), then the console. */
export function formatRun(r: SandboxResult): JsonObject {
  const parts: string[] = [];
  if (r.ok) parts.push(JSON.stringify(r.value ?? null));
  else if (r.error) parts.push(`${r.error.code}: ${r.error.message}`);
  if (r.logs.length > 0) parts.push(`--- console ---\n${r.logs.map((l) => (l.level === 'log' ? l.text : `[${l.level}] ${l.text}`)).join('\n')}`);
  return textResult(parts.join('\n'), !r.ok);
}

export class ToolModes implements ToolModeHooks {
  private runs = 0;

  constructor(
    private readonly host: ToolModeHost,
    private readonly settings: ResolvedToolModes,
    private readonly log: Logger,
  ) {}

  modeFor(header: string, clientName: string, auth: RequestAuth | undefined): ToolMode {
    if (header !== '') {
      const value = header.trim().toLowerCase();
      if (!isToolMode(value)) {
        throw new GatewayError('INVALID_REQUEST', `Bad Request: ${TOOL_MODE_HEADER} must be full, search or code, got ${JSON.stringify(header.slice(0, 40))}`, { header: TOOL_MODE_HEADER });
      }
      return value;
    }
    return (Object.hasOwn(this.settings.clients, clientName) ? this.settings.clients[clientName] : undefined) ?? auth?.principal.toolMode ?? this.settings.default;
  }

  list(mode: MetaMode, call: InflightCall): JsonObject {
    const total = this.host.visibleTools(call.auth?.filter).length;
    const search = searchTool(total, this.settings.max_search_results);
    return { tools: mode === 'search' ? [search, describeTool(mode), CALL_TOOL] : [search, describeTool(mode), executeTool(this.settings.sandbox)] };
  }

  async call(mode: MetaMode, session: McpSession, params: Record<string, unknown> | undefined, call: InflightCall): Promise<JsonObject> {
    const name = params?.['name'];
    const args = params?.['arguments'] ?? {};
    if (typeof name !== 'string') throw new GatewayError('INVALID_PARAMS', 'Invalid params for tools/call: name must be a string', { method: 'tools/call' });
    if (!isRecord(args)) throw new GatewayError('INVALID_PARAMS', 'Invalid params for tools/call: arguments must be an object', { method: 'tools/call' });
    const tool = name === 'search_tools' || name === 'describe_tools' || (mode === 'search' ? name === 'call_tool' : name === 'execute_code') ? name : undefined;
    if (tool === undefined) {
      const offered = mode === 'search' ? 'search_tools, describe_tools, call_tool' : 'search_tools, describe_tools, execute_code';
      throw new GatewayError('INVALID_PARAMS', `Unknown tool: ${name} (this session is in ${mode} mode: its tools are ${offered})`, { tool: name, tool_mode: mode });
    }
    try {
      switch (tool) {
        case 'search_tools':
          return this.search(args, call);
        case 'describe_tools':
          return this.describe(mode, args, call);
        case 'call_tool':
          return await this.callTool(session, params ?? {}, args, call);
        default:
          return await this.execute(session, params ?? {}, args, call);
      }
    } catch (err) {
      // rate limits and overload stay protocol errors (clients retry those); the rest is for the model
      if (err instanceof GatewayError && (err.code === 'RATE_LIMITED' || err.code === 'OVERLOADED')) throw err;
      return errorResult(err);
    }
  }

  /** Whether the caller may see downstream tool `name`. */
  private allowedNames(call: InflightCall): Set<string> {
    return new Set(this.host.visibleTools(call.auth?.filter).map((t) => t['name'] as string));
  }

  private search(args: Record<string, unknown>, call: InflightCall): JsonObject {
    const query = arg(args, 'query', isString, 'a string', 'search_tools');
    if (query === undefined) throw new GatewayError('INVALID_PARAMS', 'search_tools: query is required', { tool: 'search_tools', argument: 'query' });
    const regex = arg(args, 'regex', isBoolean, 'a boolean', 'search_tools') ?? false;
    const limit = Math.min(arg(args, 'limit', isPositiveInt, 'a whole number ≥ 1', 'search_tools') ?? this.settings.max_search_results, MAX_SEARCH_LIMIT);
    const filter = call.auth?.filter;
    const index = indexFor(this.host.visibleTools(undefined));
    const allowed = filter ? this.allowedNamesFilter(call) : () => true;
    const hits: ToolHit[] = regex ? index.regex(query, allowed, limit) : index.bm25(query, allowed, limit);
    if (hits.length === 0) return textResult(`No tools match ${JSON.stringify(query)}.${regex ? '' : ' Try other words, or a regular expression with regex: true.'}`);
    return textResult(hits.map((h) => (h.summary ? `${h.name}: ${h.summary}` : h.name)).join('\n'));
  }

  private allowedNamesFilter(call: InflightCall): (name: string) => boolean {
    const names = this.allowedNames(call);
    return (n) => names.has(n);
  }

  private describe(mode: MetaMode, args: Record<string, unknown>, call: InflightCall): JsonObject {
    const names = arg(args, 'names', isStringArray, 'an array of strings', 'describe_tools');
    if (names === undefined || names.length === 0) throw new GatewayError('INVALID_PARAMS', 'describe_tools: names must list at least one tool', { tool: 'describe_tools', argument: 'names' });
    if (names.length > MAX_DESCRIBE_NAMES) throw new GatewayError('INVALID_PARAMS', `describe_tools: at most ${MAX_DESCRIBE_NAMES} names per call`, { tool: 'describe_tools', max: MAX_DESCRIBE_NAMES });
    const format = arg(args, 'format', (v): v is 'json' | 'typescript' => v === 'json' || v === 'typescript', '"json" or "typescript"', 'describe_tools') ?? (mode === 'code' ? 'typescript' : 'json');
    const visible = this.host.visibleTools(call.auth?.filter);
    const byName = new Map(visible.map((t) => [t['name'] as string, t]));
    const found: JsonObject[] = [];
    const unknown: string[] = [];
    for (const n of new Set(names)) {
      const t = byName.get(n);
      if (t) found.push(t);
      else unknown.push(n);
    }
    // a tool the caller may not use is reported exactly like one that does not exist
    if (found.length === 0) throw new GatewayError('TOOL_NOT_FOUND', `No such tool: ${unknown.join(', ')}`, { tools: unknown });
    const missing = unknown.length > 0 ? `\n\nNo such tool: ${unknown.join(', ')}` : '';
    if (format === 'json') {
      const defs = found.map((t) => {
        const out: JsonObject = { name: t['name'] };
        for (const k of ['title', 'description', 'inputSchema', 'outputSchema', 'annotations']) if (t[k] !== undefined) out[k] = t[k];
        return out;
      });
      return textResult(JSON.stringify(defs) + missing);
    }
    // function names are those execute_code gives the caller (computed over all its visible tools)
    const fns = functionNames(visible.map((t) => t['name'] as string));
    const fnOf = new Map(visible.map((t, i) => [t['name'] as string, fns[i] ?? '']));
    return textResult(toolsDeclaration(found.map((t) => [fnOf.get(t['name'] as string) ?? '', t] as const)) + missing);
  }

  private async callTool(session: McpSession, params: Record<string, unknown>, args: Record<string, unknown>, call: InflightCall): Promise<JsonObject> {
    const name = arg(args, 'name', isString, 'a string', 'call_tool');
    if (name === undefined) throw new GatewayError('INVALID_PARAMS', 'call_tool: name is required', { tool: 'call_tool', argument: 'name' });
    const inner = arg(args, 'arguments', isRecord, 'an object', 'call_tool') ?? {};
    if (!this.allowedNames(call).has(name)) throw new GatewayError('TOOL_NOT_FOUND', `No such tool: ${name}`, { tool: name });
    const meta = params['_meta'];
    return this.host.callToolVia(session, { name, arguments: inner, ...(isRecord(meta) ? { _meta: meta } : {}) }, call, { surface: 'mcp:search' });
  }

  private async execute(session: McpSession, params: Record<string, unknown>, args: Record<string, unknown>, call: InflightCall): Promise<JsonObject> {
    const code = arg(args, 'code', isString, 'a string', 'execute_code');
    const limits = this.settings.sandbox;
    if (code === undefined || code.trim() === '') throw new GatewayError('INVALID_PARAMS', 'execute_code: code is required', { tool: 'execute_code', argument: 'code' });
    if (Buffer.byteLength(code) > limits.max_code_bytes) {
      throw new GatewayError('INVALID_PARAMS', `execute_code: code is longer than max_code_bytes = ${limits.max_code_bytes} bytes`, { tool: 'execute_code', max_code_bytes: limits.max_code_bytes });
    }
    if (this.runs >= limits.max_concurrent_runs) {
      throw new GatewayError('OVERLOADED', `Too many execute_code runs at once (max_concurrent_runs = ${limits.max_concurrent_runs}); retry later`, { max_concurrent_runs: limits.max_concurrent_runs });
    }
    const tools = this.host.visibleTools(call.auth?.filter);
    const names = tools.map((t) => t['name'] as string);
    const parentCallId = newCallId();
    const token = isRecord(params['_meta']) ? params['_meta']['progressToken'] : undefined;
    const children = new Set<InflightCall>();
    const abort = new AbortController();
    let seq = 0;
    const host: SandboxHost = {
      functions: functionNames(names),
      callTool: async (index, argsJson) => {
        const name = names[index] ?? '';
        const child: InflightCall = {
          id: `tributary-code:${parentCallId}:${++seq}`,
          method: 'tools/call',
          cancelled: false,
          onCancel: undefined,
          channel: call.channel,
          upstream: undefined,
          startedAt: performance.now(),
          auth: call.auth,
          // the parent's span: each call from code is a child span of the execute_code request
          trace: call.trace,
        };
        children.add(child);
        session.calls.set(child.id, child);
        try {
          const result = await this.host.callToolVia(session, { name, arguments: JSON.parse(argsJson) as unknown }, child, { surface: 'mcp:code', parentCallId });
          const text = resultText(result);
          if (result['isError'] === true) throw new Error(`${name} reported an error: ${text}`);
          return JSON.stringify({ content: result['content'] ?? [], ...(result['structuredContent'] !== undefined ? { structuredContent: result['structuredContent'] } : {}), text });
        } catch (err) {
          if (err instanceof GatewayError) throw new Error(`${err.code}: ${err.message}`);
          throw err instanceof Error ? err : new Error(String(err));
        } finally {
          children.delete(child);
          if (session.calls.get(child.id) === child) session.calls.delete(child.id);
        }
      },
      ...(typeof token === 'string' || typeof token === 'number'
        ? {
            progress: (progress: number, total: number | undefined, message: string | undefined) => {
              const p: Progress & { progressToken: string | number } = { progress, progressToken: token };
              if (total !== undefined) p.total = total;
              if (message !== undefined) p.message = message;
              session.sendRelated(call, { jsonrpc: '2.0', method: 'notifications/progress', params: p });
            },
          }
        : {}),
    };
    call.onCancel = (reason) => {
      abort.abort(reason);
      for (const c of children) cancelScope(c, reason);
    };
    this.runs++;
    try {
      const r = await runSandboxed(code, host, limits, abort.signal);
      if (!r.ok) this.log.debug('execute_code ended with an error', { code: r.error?.code, tool_calls: r.tool_calls, cpu_ms: r.cpu_ms, wall_ms: r.wall_ms });
      return formatRun(r);
    } finally {
      this.runs--;
      call.onCancel = undefined;
    }
  }
}

/** The registry entries of the sandbox's error codes (their JSON-RPC code and message). */
export const SANDBOX_ERROR_CODES = [
  'SANDBOX_TIMEOUT',
  'SANDBOX_CPU_LIMIT',
  'SANDBOX_MEMORY_LIMIT',
  'SANDBOX_STACK_LIMIT',
  'SANDBOX_TOOL_CALL_LIMIT',
  'SANDBOX_OUTPUT_LIMIT',
  'SANDBOX_CANCELLED',
  'SANDBOX_CODE_ERROR',
] as const satisfies readonly (keyof typeof ERRORS)[];
