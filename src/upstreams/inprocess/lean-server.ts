/**
 * A lean in-process MCP server: the server side of the MCP methods an in-process upstream needs
 * (`initialize`, `ping`, `tools/*`, `resources/*`, `prompts/*`, `logging/setLevel`, cancellation
 * and progress), answering JSON-RPC messages handed to it through a {@link Transport} object, with
 * no transport hop, no zod and no per-call `AbortController` or Promise chain. Tool arguments are
 * checked against each tool's JSON Schema by a validator compiled once with Ajv
 * (https://ajv.js.org/).
 *
 * Behaviour follows the MCP server specification
 * (https://modelcontextprotocol.io/specification/2025-11-25/server/tools and sibling pages) and
 * the SDK's `McpServer` where the spec leaves a choice: an unknown tool, arguments that fail the
 * input schema, and a handler that throws all answer a result with `isError: true` and the reason
 * as text; an unknown resource or prompt is JSON-RPC error -32602. Servers written with the SDK's
 * `McpServer` keep working as in-process upstreams over `InMemoryTransport`; this is the fast path
 * for the gateway's own built-in servers.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS, type CallToolResult, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { POST_MESSAGE } from '../upstream-types.js';
import { RegistryMap } from '../../base/registry.js';

type Json = Record<string, unknown>;
type RequestId = string | number;

/** What a tool handler gets besides its (validated) arguments. */
export interface LeanCallContext {
  /**
   * Aborted when the client cancels the call (`notifications/cancelled`) or the server closes.
   * Created on first access: handlers that never look at it cost no `AbortController`.
   */
  readonly signal: AbortSignal;
  /** The request's `_meta.progressToken`, when the client asked for progress. */
  readonly progressToken: string | number | undefined;
  /** Sends `notifications/progress` for this call (nothing when the client sent no progress token). */
  progress(progress: number, total?: number, message?: string): void;
}

/** A tool: its listing (MCP `Tool`) and its handler. */
export interface LeanTool {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  /** JSON Schema of the arguments (`type: "object"`). */
  readonly inputSchema: Json;
  /** JSON Schema of `structuredContent`, when the tool returns one. */
  readonly outputSchema?: Json;
  readonly annotations?: Json;
  /** Returns the result, or a Promise of it; a throw (or rejection) becomes an `isError` result. */
  readonly handler: (args: Json, ctx: LeanCallContext) => CallToolResult | Promise<CallToolResult>;
}

/** A fixed resource and how to read it. */
export interface LeanResource {
  readonly uri: string;
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly mimeType?: string;
  readonly read: (uri: string) => { contents: Json[] } | Promise<{ contents: Json[] }>;
}

/** A prompt and how to fill it. */
export interface LeanPrompt {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly arguments?: readonly { readonly name: string; readonly description?: string; readonly required?: boolean }[];
  readonly get: (args: Record<string, string>) => Json | Promise<Json>;
}

interface CompiledTool {
  readonly tool: LeanTool;
  readonly validate: ValidateFunction;
}

/** State of one `tools/call` in progress. */
class Call implements LeanCallContext {
  #controller: AbortController | undefined;
  cancelled = false;
  constructor(
    private readonly server: LeanMcpServer,
    readonly progressToken: string | number | undefined,
  ) {}

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.cancelled) this.#controller.abort();
    return this.#controller.signal;
  }

  cancel(): void {
    this.cancelled = true;
    this.#controller?.abort();
  }

  progress(progress: number, total?: number, message?: string): void {
    if (this.progressToken === undefined || this.cancelled) return;
    this.server.emit({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: this.progressToken, progress, ...(total !== undefined ? { total } : {}), ...(message !== undefined ? { message } : {}) },
    } as JSONRPCMessage);
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

function errorResult(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * One lean server instance; {@link connect} hands out the client side of its (single) connection.
 * Messages are answered on a microtask, never inside the `send` that carried the request.
 */
export class LeanMcpServer {
  readonly #tools = new Map<string, CompiledTool>();
  readonly #resources = new Map<string, LeanResource>();
  readonly #prompts = new Map<string, LeanPrompt>();
  /** Calls in flight (a RegistryMap, not a Map: see base/registry.ts). */
  readonly #calls = new RegistryMap<RequestId, Call>();
  readonly #ajv = new Ajv({ allErrors: false, strict: false });
  #toolList: Json[] | undefined;
  #transport: LeanTransport | undefined;

  /**
   * @param info `serverInfo` of the initialize result.
   * @param instructions the initialize result's `instructions`.
   */
  constructor(
    private readonly info: { readonly name: string; readonly version: string },
    private readonly instructions?: string,
  ) {}

  /** Adds a tool; its input schema is compiled now. @throws Error for a duplicate name or a schema Ajv refuses. */
  tool(tool: LeanTool): this {
    if (this.#tools.has(tool.name)) throw new Error(`LeanMcpServer: duplicate tool ${tool.name}`);
    this.#tools.set(tool.name, { tool, validate: this.#ajv.compile(tool.inputSchema) });
    this.#toolList = undefined;
    return this;
  }

  resource(resource: LeanResource): this {
    this.#resources.set(resource.uri, resource);
    return this;
  }

  prompt(prompt: LeanPrompt): this {
    this.#prompts.set(prompt.name, prompt);
    return this;
  }

  /** The client side of a new connection (one at a time: connecting again closes the previous one). */
  connect(): Transport {
    void this.#transport?.close();
    const t = new LeanTransport(this);
    this.#transport = t;
    return t;
  }

  /** Sends a server→client message on the current connection. */
  emit(message: JSONRPCMessage): void {
    this.#transport?.deliver(message);
  }

  /** Ends every call in progress (their signals abort). */
  closed(t: LeanTransport): void {
    if (this.#transport !== t) return;
    this.#transport = undefined;
    for (const c of this.#calls.values()) c.cancel();
    this.#calls.clear();
  }

  /** A client→server message. */
  receive(message: Json): void {
    const method = message['method'];
    const id = message['id'] as RequestId | undefined;
    if (typeof method !== 'string') return; // a response: this server sends no requests
    if (id === undefined) {
      if (method === 'notifications/cancelled') {
        const params = message['params'];
        const target = isObject(params) ? (params['requestId'] as RequestId | undefined) : undefined;
        if (target !== undefined) this.#calls.get(target)?.cancel();
      }
      return;
    }
    const params = isObject(message['params']) ? message['params'] : {};
    let result: Json | Promise<Json>;
    try {
      result = this.#handle(id, method, params);
    } catch (err) {
      this.#answerError(id, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (r) => this.#answer(id, r),
        (err: unknown) => this.#answerError(id, err),
      );
    } else {
      this.#answer(id, result);
    }
  }

  #answer(id: RequestId, result: Json): void {
    this.emit({ jsonrpc: '2.0', id, result } as JSONRPCMessage);
  }

  #answerError(id: RequestId, err: unknown): void {
    const e = err instanceof LeanRpcError ? err : new LeanRpcError(-32603, err instanceof Error ? err.message : String(err));
    this.emit({ jsonrpc: '2.0', id, error: { code: e.code, message: e.message } } as JSONRPCMessage);
  }

  #handle(id: RequestId, method: string, params: Json): Json | Promise<Json> {
    switch (method) {
      case 'tools/call':
        return this.#callTool(id, params);
      case 'ping':
      case 'logging/setLevel':
        return {};
      case 'initialize': {
        const asked = params['protocolVersion'];
        const protocolVersion = typeof asked === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION;
        return {
          protocolVersion,
          capabilities: { logging: {}, tools: { listChanged: true }, resources: { listChanged: true }, prompts: { listChanged: true } },
          serverInfo: this.info,
          ...(this.instructions !== undefined ? { instructions: this.instructions } : {}),
        };
      }
      case 'tools/list':
        return { tools: (this.#toolList ??= [...this.#tools.values()].map(({ tool }) => toolListing(tool))) };
      case 'resources/list':
        return { resources: [...this.#resources.values()].map(({ uri, name, title, description, mimeType }) => strip({ uri, name, title, description, mimeType })) };
      case 'resources/templates/list':
        return { resourceTemplates: [] };
      case 'resources/read': {
        const uri = params['uri'];
        const r = typeof uri === 'string' ? this.#resources.get(uri) : undefined;
        if (!r) throw new LeanRpcError(-32602, `Resource ${String(uri)} not found`);
        return r.read(uri as string);
      }
      case 'prompts/list':
        return { prompts: [...this.#prompts.values()].map(({ name, title, description, arguments: args }) => strip({ name, title, description, arguments: args })) };
      case 'prompts/get': {
        const name = params['name'];
        const p = typeof name === 'string' ? this.#prompts.get(name) : undefined;
        if (!p) throw new LeanRpcError(-32602, `Prompt ${String(name)} not found`);
        const args = isObject(params['arguments']) ? (params['arguments'] as Record<string, string>) : {};
        for (const a of p.arguments ?? []) {
          if (a.required && typeof args[a.name] !== 'string') throw new LeanRpcError(-32602, `Invalid arguments for prompt ${p.name}: ${a.name} is required`);
        }
        return p.get(args);
      }
      default:
        throw new LeanRpcError(-32601, `Method not found: ${method}`);
    }
  }

  #callTool(id: RequestId, params: Json): Json | Promise<Json> {
    const name = params['name'];
    const entry = typeof name === 'string' ? this.#tools.get(name) : undefined;
    if (!entry) return errorResult(`Tool ${String(name)} not found`) as Json;
    const args = params['arguments'] ?? {};
    if (!entry.validate(args)) {
      const e = entry.validate.errors?.[0];
      const where = e ? `${e.instancePath === '' ? 'arguments' : e.instancePath} ${e.message ?? 'is invalid'}` : 'arguments are invalid';
      return errorResult(`Input validation error: Invalid arguments for tool ${entry.tool.name}: ${where}`) as Json;
    }
    const meta = params['_meta'];
    const token = isObject(meta) ? meta['progressToken'] : undefined;
    const call = new Call(this, typeof token === 'string' || typeof token === 'number' ? token : undefined);
    let out: CallToolResult | Promise<CallToolResult>;
    try {
      out = entry.tool.handler(args as Json, call);
    } catch (err) {
      return errorResult(err instanceof Error ? err.message : String(err)) as Json;
    }
    if (!(out instanceof Promise)) return out as Json;
    this.#calls.set(id, call);
    return out.then(
      (r) => {
        this.#calls.delete(id);
        return r as Json;
      },
      (err: unknown) => {
        this.#calls.delete(id);
        return errorResult(err instanceof Error ? err.message : String(err)) as Json;
      },
    );
  }
}

/** A JSON-RPC error answered as is. */
export class LeanRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function strip(o: Json): Json {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function toolListing(t: LeanTool): Json {
  return strip({ name: t.name, title: t.title, description: t.description, inputSchema: t.inputSchema, outputSchema: t.outputSchema, annotations: t.annotations });
}

/**
 * The client side of a lean server connection, as an SDK {@link Transport}: `send` hands the
 * message to the server; the server's messages arrive on `onmessage`, each on its own microtask.
 */
class LeanTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  #open = true;
  readonly #outbox: JSONRPCMessage[] = [];
  #scheduled = false;

  constructor(private readonly server: LeanMcpServer) {}

  start(): Promise<void> {
    return RESOLVED;
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (!this.#open) return Promise.reject(new Error('Not connected'));
    this.server.receive(message as unknown as Json);
    return RESOLVED;
  }

  /** {@link send} without a Promise (the gateway's `PostingTransport`). @throws Error when closed. */
  [POST_MESSAGE](message: JSONRPCMessage): Promise<void> | undefined {
    if (!this.#open) throw new Error('Not connected');
    this.server.receive(message as unknown as Json);
    return undefined;
  }

  close(): Promise<void> {
    if (!this.#open) return RESOLVED;
    this.#open = false;
    this.server.closed(this);
    this.onclose?.();
    return RESOLVED;
  }

  /** Queues a server message; all queued messages are delivered in order on one microtask. */
  deliver(message: JSONRPCMessage): void {
    if (!this.#open) return;
    this.#outbox.push(message);
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(this.#flush);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    // messages queued while delivering go out in the same pass, in order
    for (let i = 0; i < this.#outbox.length; i++) {
      if (!this.#open) break;
      const m = this.#outbox[i] as JSONRPCMessage;
      try {
        this.onmessage?.(m);
      } catch (err) {
        this.onerror?.(err instanceof Error ? err : new Error(String(err)));
      }
    }
    this.#outbox.length = 0;
  };
}
