/**
 * The `response.create` message of the Responses API WebSocket mode (OpenAI,
 * https://platform.openai.com/docs/api-reference/responses/create; Bifrost `websocket-responses`):
 * its decoding, every bad or unknown field named, and how an output item is sent back as the next
 * round's input.
 */
import { GatewayError } from '../base/errors.js';

/** Request fields passed to the provider as they are. */
const PASS_THROUGH = ['temperature', 'top_p', 'max_output_tokens', 'parallel_tool_calls', 'text', 'reasoning', 'metadata', 'truncation', 'user', 'tool_choice', 'include', 'top_logprobs', 'service_tier'] as const;
const KNOWN = new Set<string>(['type', 'event_id', 'response', 'model', 'input', 'instructions', 'tools', 'stream', 'store', 'previous_response_id', 'background', ...PASS_THROUGH]);

/** An input or output item of the Responses API (a JSON object). */
export type Item = Record<string, unknown>;

/** A request decoded from `response.create`. */
export interface CreateRequest {
  readonly model: string;
  readonly input: Item[];
  readonly instructions: string | undefined;
  readonly tools: Item[];
  readonly previousResponseId: string | undefined;
  readonly passThrough: Record<string, unknown>;
}

/** Whether `u` is a JSON object (not null, not an array). */
export function isObject(u: unknown): u is Record<string, unknown> {
  return typeof u === 'object' && u !== null && !Array.isArray(u);
}

/** A VALIDATION_ERROR naming the bad request field `param`. */
export function invalid(message: string, param: string | null): GatewayError {
  return new GatewayError('VALIDATION_ERROR', message, { param });
}

/** Decodes a `response.create` message. @throws GatewayError VALIDATION_ERROR naming the field. */
export function decodeCreate(msg: Record<string, unknown>): CreateRequest {
  const body = isObject(msg['response']) ? msg['response'] : msg;
  for (const k of Object.keys(body)) if (!KNOWN.has(k)) throw invalid(`Unknown parameter: ${k}`, k);
  const model = body['model'];
  if (typeof model !== 'string' || model === '') throw invalid('model is required (a string)', 'model');
  const rawInput = body['input'];
  let input: Item[];
  if (typeof rawInput === 'string') input = [{ type: 'message', role: 'user', content: rawInput }];
  else if (Array.isArray(rawInput) && rawInput.every(isObject)) input = rawInput;
  else if (rawInput === undefined && typeof body['previous_response_id'] === 'string') input = [];
  else throw invalid('input must be a string or an array of input items', 'input');
  const instructions = body['instructions'];
  if (instructions !== undefined && instructions !== null && typeof instructions !== 'string') throw invalid('instructions must be a string', 'instructions');
  const tools = body['tools'] ?? [];
  if (!Array.isArray(tools) || !tools.every(isObject)) throw invalid('tools must be an array of tool objects', 'tools');
  for (const [i, tool] of tools.entries()) {
    if (tool['type'] === 'function' && typeof tool['name'] !== 'string') throw invalid(`tools[${i}].name is required for function tools`, `tools[${i}].name`);
  }
  const prev = body['previous_response_id'];
  if (prev !== undefined && prev !== null && typeof prev !== 'string') throw invalid('previous_response_id must be a string', 'previous_response_id');
  if (body['background'] === true) throw invalid('background responses are not supported on the WebSocket', 'background');
  const passThrough: Record<string, unknown> = {};
  for (const k of PASS_THROUGH) if (body[k] !== undefined) passThrough[k] = body[k];
  return { model, input, instructions: typeof instructions === 'string' ? instructions : undefined, tools, previousResponseId: typeof prev === 'string' ? prev : undefined, passThrough };
}

/** An output item as the next round's input: without ids and statuses the provider did not store. */
export function asInput(item: Item): Item | undefined {
  switch (item['type']) {
    case 'function_call':
      return { type: 'function_call', call_id: item['call_id'], name: item['name'], arguments: item['arguments'] };
    case 'message':
      return { type: 'message', role: item['role'] ?? 'assistant', content: item['content'] };
    default:
      // reasoning and other provider-side items cannot be sent back unstored
      return undefined;
  }
}
