/**
 * `POST /v1/mcp/tool/execute?format=chat|responses` (Bifrost `ExecuteToolRequest`): runs one tool
 * call given in an LLM API's tool-call format and answers in that format.
 *
 * - `format=chat` (default): body `{id, type:"function", function:{name, arguments}}` (arguments a
 *   JSON string) → `{role:"tool", tool_call_id, content}`.
 * - `format=responses`: body `{call_id, name, arguments}` → `{type:"function_call_output",
 *   call_id, output}`.
 *
 * Tool names are the namespaced downstream names (`client-tool`). Arguments that are not a JSON
 * object → 400; unknown tool → 404; a tool hidden by `tools_to_execute` → 403. A tool result with
 * `isError` is a normal answer; an upstream failure (not connected, timeout, JSON-RPC error) is
 * answered with the registry's status and the format's own shape carrying the error text
 * (`content` for chat, `error` for responses).
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import type { RequestAuth } from '../base/access.js';
import { GatewayError, UpstreamRpcError } from '../base/errors.js';
import { formatIoTsErrors } from '../base/io-ts-errors.js';
import { MAX_NESTING_DEPTH, jsonTextDepthExceeded, nestingTooDeep } from '../codecs/depth.js';
import type { EventBus } from '../streams/events.js';
import type { UpstreamManager } from '../upstreams/manager.js';
import { invokeTool } from '../upstreams/invoke.js';
import type { JsonObject } from '../upstreams/upstream.js';
import { ok, type RestReply, type RestRequest, type RestRouter } from './rest/router.js';

const ChatToolCall = t.type({
  id: t.string,
  type: t.literal('function'),
  function: t.type({ name: t.string, arguments: t.string }),
});

const ResponsesToolCall = t.intersection([t.type({ name: t.string }), t.partial({ call_id: t.string, arguments: t.string })]);

/** Parses a tool call's `arguments` string; it must be a JSON object (empty string = `{}`). */
function parseArguments(raw: string | undefined): JsonObject {
  if (raw === undefined || raw.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new GatewayError('VALIDATION_ERROR', `arguments is not valid JSON: ${(err as Error).message}`, { problems: ['arguments: not valid JSON'] });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GatewayError('VALIDATION_ERROR', 'arguments must be a JSON object', { problems: ['arguments: expected a JSON object'] });
  }
  // a JSON string inside the body, so the body's scan did not count it: the arguments become
  // `params.arguments` of an MCP tools/call, two levels below the message the limit counts from
  const deep = jsonTextDepthExceeded(raw, MAX_NESTING_DEPTH - 2);
  if (deep >= 0) throw nestingTooDeep('arguments', deep, MAX_NESTING_DEPTH - 2);
  return value as JsonObject;
}

/** The text of an MCP tool result's content: text parts joined, other parts as JSON. */
export function resultText(result: JsonObject): string {
  const content = result['content'];
  if (!Array.isArray(content)) return JSON.stringify(result['structuredContent'] ?? result);
  return content
    .map((c: unknown) => {
      const part = c as { type?: unknown; text?: unknown };
      return part.type === 'text' && typeof part.text === 'string' ? part.text : JSON.stringify(c);
    })
    .join('\n');
}

export class ToolExecuteHandler {
  /**
   * @param admitToolExecution counts each execution against the caller's limit and throws
   * RATE_LIMITED over it; absent = no limit.
   */
  constructor(
    private readonly manager: UpstreamManager,
    private readonly bus: EventBus,
    private readonly admitToolExecution?: (auth: RequestAuth | undefined) => Promise<void>,
  ) {}

  register(router: RestRouter): void {
    router.on('POST', '/v1/mcp/tool/execute', (r) => this.execute(r), {
      summary: 'Execute one tool call in chat or responses format',
      tag: 'tools',
      // virtual keys exist to call tools; tool calls wait for the initial catalogue load, as on /mcp
      access: 'tools',
      holdUntilReady: true,
      body: t.union([ChatToolCall, ResponsesToolCall]),
      query: { format: { description: '`chat` (default) or `responses`', schema: { enum: ['chat', 'responses'] } } },
      responses: {
        200: { description: 'chat: `{role:"tool", tool_call_id, content}`; responses: `{type:"function_call_output", call_id, output}`', schema: { type: 'object' } },
        400: { description: 'Invalid body' },
        403: { description: 'Tool not allowed for this caller' },
        404: { description: 'No such tool' },
      },
    });
  }

  async execute(req: RestRequest): Promise<RestReply> {
    const format = req.query.get('format') || 'chat';
    if (format !== 'chat' && format !== 'responses') {
      throw new GatewayError('VALIDATION_ERROR', `format must be "chat" or "responses", got ${JSON.stringify(format)}`, { problems: ['format: expected chat or responses'] });
    }
    let name: string;
    let callId: string;
    let rawArgs: string | undefined;
    if (format === 'chat') {
      const d = ChatToolCall.decode(req.body);
      if (isLeft(d)) throw new GatewayError('VALIDATION_ERROR', 'Invalid chat tool call', { problems: formatIoTsErrors(d.left, '(body)') });
      name = d.right.function.name;
      callId = d.right.id;
      rawArgs = d.right.function.arguments;
    } else {
      const d = ResponsesToolCall.decode(req.body);
      if (isLeft(d)) throw new GatewayError('VALIDATION_ERROR', 'Invalid responses tool call', { problems: formatIoTsErrors(d.left, '(body)') });
      name = d.right.name;
      callId = d.right.call_id ?? '';
      rawArgs = d.right.arguments;
    }
    const args = parseArguments(rawArgs);
    const route = this.manager.routeTool(name);
    if (!route) {
      if (this.manager.explainMissingTool(name) === 'filtered') {
        throw new GatewayError('TOOL_NOT_ALLOWED', `Tool ${name} is not in its client's tools_to_execute`, { tool: name });
      }
      throw new GatewayError('TOOL_NOT_FOUND', `Tool not found: ${name}`, { tool: name });
    }
    const filter = req.input.auth?.filter;
    if (filter && !filter.allowsTool(route.upstream.name, route.name)) {
      throw new GatewayError('TOOL_NOT_ALLOWED', `Tool ${name} is not allowed for this key`, { tool: name });
    }
    await this.admitToolExecution?.(req.input.auth);
    try {
      const result = await invokeTool(this.bus, route, { name, arguments: args }, {
        surface: 'rest',
        tenant: req.input.auth?.principal.tenantId,
        virtualKey: req.input.auth?.principal.virtualKeyId,
        principal: req.input.auth?.principal.id,
      });
      const text = resultText(result);
      return format === 'chat'
        ? ok({ role: 'tool', tool_call_id: callId, content: text })
        : ok({ type: 'function_call_output', call_id: callId, output: text, ...(result['isError'] === true ? { error: text } : {}) });
    } catch (err) {
      const status = err instanceof GatewayError ? err.status : err instanceof UpstreamRpcError ? 502 : 500;
      const message = err instanceof Error ? err.message : 'Internal error';
      const code = err instanceof GatewayError ? err.code : err instanceof UpstreamRpcError ? 'UPSTREAM_ERROR' : 'INTERNAL_ERROR';
      return format === 'chat'
        ? { status, body: { role: 'tool', tool_call_id: callId, content: `Error: ${message}`, error: { message, code } } }
        : { status, body: { type: 'function_call_output', call_id: callId, output: '', error: message, code } };
    }
  }
}
