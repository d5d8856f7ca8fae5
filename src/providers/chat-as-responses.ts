/**
 * The Responses streaming events of one model round, from a provider that only serves Chat
 * Completions (llama.cpp's server, older Ollama and vLLM releases): the Responses request is
 * turned into a `POST /chat/completions` with `stream: true` and
 * `stream_options: {include_usage: true}`, and its `chat.completion.chunk`s into the typed events
 * a native `/responses` stream sends (`response.output_item.added`, `response.output_text.delta`,
 * `response.function_call_arguments.delta`, …, `response.completed` with usage).
 *
 * Mapping (https://platform.openai.com/docs/api-reference/chat/create,
 * https://platform.openai.com/docs/api-reference/responses/create): `instructions` → a system
 * message; input `message` items → messages (text parts joined); `function_call` items →
 * an assistant message's `tool_calls`; `function_call_output` → `tool` messages; function tools
 * `{type, name, description, parameters}` → `{type:"function", function:{…}}`; `max_output_tokens`
 * → `max_tokens`; `temperature`, `top_p`, `parallel_tool_calls`, `tool_choice` (function form
 * rewritten) pass through. Other tool types are dropped (a chat server cannot run them).
 */
import type { OpenAiProvider, StreamEvent } from './openai-client.js';

type Item = Record<string, unknown>;

function text(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p: unknown) => {
      const part = p as { text?: unknown };
      return typeof part.text === 'string' ? part.text : '';
    })
    .join('');
}

/** The chat request of a Responses request body (see the module comment). */
export function chatRequest(body: Record<string, unknown>): Record<string, unknown> {
  const messages: Item[] = [];
  if (typeof body['instructions'] === 'string') messages.push({ role: 'system', content: body['instructions'] });
  const input = Array.isArray(body['input']) ? (body['input'] as Item[]) : [];
  for (const item of input) {
    const type = item['type'] ?? 'message';
    if (type === 'message') {
      const role = item['role'] === 'developer' ? 'system' : item['role'];
      messages.push({ role, content: text(item['content']) });
    } else if (type === 'function_call') {
      const call = { id: item['call_id'], type: 'function', function: { name: item['name'], arguments: item['arguments'] ?? '' } };
      const last = messages[messages.length - 1];
      if (last && last['role'] === 'assistant' && Array.isArray(last['tool_calls'])) (last['tool_calls'] as Item[]).push(call);
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output') {
      messages.push({ role: 'tool', tool_call_id: item['call_id'], content: typeof item['output'] === 'string' ? item['output'] : JSON.stringify(item['output']) });
    }
  }
  const tools = (Array.isArray(body['tools']) ? (body['tools'] as Item[]) : [])
    .filter((t) => t['type'] === 'function')
    .map((t) => ({ type: 'function', function: { name: t['name'], description: t['description'] ?? '', parameters: t['parameters'] ?? { type: 'object', properties: {} } } }));
  const out: Record<string, unknown> = { model: body['model'], messages, stream: true, stream_options: { include_usage: true } };
  if (tools.length > 0) out['tools'] = tools;
  for (const k of ['temperature', 'top_p', 'parallel_tool_calls'] as const) if (body[k] !== undefined) out[k] = body[k];
  if (body['max_output_tokens'] !== undefined) out['max_tokens'] = body['max_output_tokens'];
  const choice = body['tool_choice'];
  if (typeof choice === 'string') out['tool_choice'] = choice;
  else if (typeof choice === 'object' && choice !== null && (choice as Item)['type'] === 'function') out['tool_choice'] = { type: 'function', function: { name: (choice as Item)['name'] } };
  return out;
}

interface CallState {
  readonly id: string;
  readonly index: number;
  callId: string;
  name: string;
  args: string;
}

/**
 * Streams one round as Responses events (`StreamEvent.data.type` set, `event` = the type).
 * Errors as {@link OpenAiProvider.stream}.
 */
export async function* chatAsResponses(provider: OpenAiProvider, body: Record<string, unknown>, signal: AbortSignal | undefined, round: string): AsyncGenerator<StreamEvent, void, undefined> {
  const ev = (type: string, data: Record<string, unknown>): StreamEvent => ({ event: type, data: { type, ...data } });
  const model = String(body['model']);
  const id = `resp_chat_${round}`;
  const msgId = `msg_${round}`;
  let outputs = 0;
  let msgIndex: number | undefined;
  let msgText = '';
  const calls = new Map<number, CallState>();
  let usage: Record<string, unknown> | undefined;
  yield ev('response.created', { response: { id, object: 'response', status: 'in_progress', model, output: [] } });
  const chunks = provider.stream('chat.completions', '/chat/completions', chatRequest(body), signal, (e) => e.data['usage'] ?? undefined);
  for await (const chunk of chunks) {
    const u = chunk.data['usage'];
    if (typeof u === 'object' && u !== null) usage = u as Record<string, unknown>;
    const choices = Array.isArray(chunk.data['choices']) ? (chunk.data['choices'] as Item[]) : [];
    const delta = (choices[0]?.['delta'] ?? {}) as Item;
    if (typeof delta['content'] === 'string' && delta['content'] !== '') {
      if (msgIndex === undefined) {
        msgIndex = outputs++;
        yield ev('response.output_item.added', { output_index: msgIndex, item: { type: 'message', id: msgId, status: 'in_progress', role: 'assistant', content: [] } });
        yield ev('response.content_part.added', { item_id: msgId, output_index: msgIndex, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
      }
      msgText += delta['content'];
      yield ev('response.output_text.delta', { item_id: msgId, output_index: msgIndex, content_index: 0, delta: delta['content'] });
    }
    for (const tc of Array.isArray(delta['tool_calls']) ? (delta['tool_calls'] as Item[]) : []) {
      const i = typeof tc['index'] === 'number' ? tc['index'] : 0;
      const fn = (tc['function'] ?? {}) as Item;
      let call = calls.get(i);
      if (!call) {
        call = { id: `fc_${round}_${i}`, index: outputs++, callId: typeof tc['id'] === 'string' ? tc['id'] : `call_${round}_${i}`, name: typeof fn['name'] === 'string' ? fn['name'] : '', args: '' };
        calls.set(i, call);
        yield ev('response.output_item.added', { output_index: call.index, item: { type: 'function_call', id: call.id, call_id: call.callId, name: call.name, arguments: '', status: 'in_progress' } });
      } else if (typeof fn['name'] === 'string' && call.name === '') {
        call.name = fn['name'];
      }
      if (typeof fn['arguments'] === 'string' && fn['arguments'] !== '') {
        call.args += fn['arguments'];
        yield ev('response.function_call_arguments.delta', { item_id: call.id, output_index: call.index, delta: fn['arguments'] });
      }
    }
  }
  const output: Item[] = [];
  if (msgIndex !== undefined) {
    const item = { type: 'message', id: msgId, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: msgText, annotations: [] }] };
    yield ev('response.output_text.done', { item_id: msgId, output_index: msgIndex, content_index: 0, text: msgText });
    yield ev('response.content_part.done', { item_id: msgId, output_index: msgIndex, content_index: 0, part: { type: 'output_text', text: msgText, annotations: [] } });
    yield ev('response.output_item.done', { output_index: msgIndex, item });
    output.push(item);
  }
  for (const call of calls.values()) {
    const item = { type: 'function_call', id: call.id, call_id: call.callId, name: call.name, arguments: call.args, status: 'completed' };
    yield ev('response.function_call_arguments.done', { item_id: call.id, output_index: call.index, arguments: call.args });
    yield ev('response.output_item.done', { output_index: call.index, item });
    output.push(item);
  }
  const tokens = { input_tokens: Number(usage?.['prompt_tokens'] ?? 0), output_tokens: Number(usage?.['completion_tokens'] ?? 0) };
  yield ev('response.completed', { response: { id, object: 'response', status: 'completed', model, output, usage: { ...tokens, total_tokens: tokens.input_tokens + tokens.output_tokens } } });
}
