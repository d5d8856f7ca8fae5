/**
 * `/v1/responses`: the Responses API over a WebSocket (Bifrost `websocket-responses`: clients
 * send `response.create` and receive the streaming `response.*` events), with the gateway's MCP
 * tools offered to the model and those in their client's `tools_to_auto_execute` run by the
 * gateway itself.
 *
 * Client → server (JSON text):
 * - `{"type":"response.create", …}` with the OpenAI Responses request fields at the top level or
 *   under `response` (https://platform.openai.com/docs/api-reference/responses/create): `model`
 *   (required), `input` (string or items), `instructions`, `tools`, `tool_choice`,
 *   `previous_response_id` (a response finished earlier on this connection), and the sampling
 *   fields passed through; `stream` is implied. An optional `event_id` is echoed in errors.
 * - `{"type":"response.cancel","response_id":"resp_…"}` stops a response in flight.
 *
 * Server → client: the Responses streaming events
 * (https://platform.openai.com/docs/api-reference/responses-streaming) — `response.created`,
 * `response.in_progress`, `response.output_item.added/done`, `response.content_part.added/done`,
 * `response.output_text.delta/done`, `response.function_call_arguments.delta/done`,
 * `response.completed` / `response.incomplete` / `response.failed`, and `error` — each with its
 * `sequence_number` (per response) and, as this gateway's addition for several responses in
 * flight on one socket, `response_id`.
 *
 * Tools: the caller's allowed MCP tools (its virtual key's filter and include headers applied)
 * are offered to the model as function tools named `client-tool`, after the client's own tools.
 * A call of a tool whose client lists it in `tools_to_auto_execute` runs through the gateway's
 * normal tool path (rate limit, tool log, events) and is shown to the client as an `mcp_call`
 * item (`response.mcp_call_arguments.delta/done`, `response.mcp_call.in_progress`,
 * `response.mcp_call.completed|failed`); its output goes back to the model in the next round, up
 * to `max_tool_rounds` rounds (then the response ends `incomplete`, reason `max_tool_rounds`).
 * Any other function call ends the response with that `function_call` item in its output; the
 * client answers with `response.create` carrying `previous_response_id` and a
 * `function_call_output` item.
 *
 * The provider is called with its `/responses` endpoint, `stream: true` and `store: false`: the
 * conversation (previous input, output items and tool outputs) is kept here, per connection, for
 * `max_remembered` finished responses.
 *
 * Backpressure: events wait while the socket holds more than 1 MiB, which stops
 * reading the provider's stream; at most `max_in_flight` responses run on one connection.
 */
import { randomUUID } from 'node:crypto';
import type { RequestAuth } from '../base/access.js';
import { GatewayError } from '../base/errors.js';
import type { Logger } from '../log/logger.js';
import type { OpenAiProvider, StreamEvent } from '../providers/openai-client.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { chatAsResponses } from '../providers/chat-as-responses.js';
import type { EventBus } from '../streams/events.js';
import type { WsConnection, WsEndpoint } from '../streams/ws.js';
import { invokeTool } from '../upstreams/invoke.js';
import type { Tracing } from '../telemetry/tracing.js';
import type { Route, UpstreamManager } from '../upstreams/manager.js';
import type { JsonObject } from '../upstreams/upstream.js';
import { asInput, decodeCreate, invalid, isObject, type CreateRequest, type Item } from './responses-request.js';
import { resultText } from './tool-execute.js';

export interface ResponsesLimits {
  readonly max_tool_rounds: number;
  readonly max_in_flight: number;
  readonly max_tools: number;
  readonly max_remembered: number;
}

export interface ResponsesWsDeps {
  readonly providers: ProviderRegistry;
  readonly manager: UpstreamManager;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly admitToolExecution: (auth: RequestAuth | undefined) => Promise<void>;
  readonly limits: ResponsesLimits;
  /** Spans: one SERVER span per response, provider calls and auto-executed tools under it (default: none). */
  readonly tracing?: Tracing;
  /** A tenant's `/api/v1/models` record by id or name (for {@link ProviderRegistry.resolveFor}). */
  readonly modelRecord?: (tenant: string, nameOrId: string) => Promise<{ readonly name: string; readonly provider: string; readonly configuration: Readonly<Record<string, unknown>> } | undefined>;
}

/** Buffered bytes beyond which sending waits for `drain`. */
const HIGH_WATER_BYTES = 1024 * 1024;
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

interface Connection {
  readonly conn: WsConnection;
  readonly running: Map<string, AbortController>;
  /** Finished responses' conversations (input items the next round would send), oldest first. */
  readonly remembered: Map<string, Item[]>;
  drainWaiters: (() => void)[];
}

export class ResponsesWsEndpoint implements WsEndpoint {
  private readonly conns = new Map<WsConnection, Connection>();
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly deps: ResponsesWsDeps) {}

  /** Open connections. */
  get connections(): number {
    return this.conns.size;
  }

  /** Responses in flight on all connections. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.conns.values()) n += c.running.size;
    return n;
  }

  dispose(): void {
    for (const c of this.conns.values()) {
      for (const a of c.running.values()) a.abort();
      c.conn.close(1001, 'server shutting down');
    }
    this.conns.clear();
  }

  readonly onOpen = (conn: WsConnection): void => {
    this.conns.set(conn, { conn, running: new Map(), remembered: new Map(), drainWaiters: [] });
  };

  readonly onClose = (conn: WsConnection): void => {
    const c = this.conns.get(conn);
    if (!c) return;
    this.conns.delete(conn);
    for (const a of c.running.values()) a.abort();
    for (const w of c.drainWaiters) w();
    c.drainWaiters = [];
  };

  readonly onDrain = (conn: WsConnection): void => {
    const c = this.conns.get(conn);
    if (!c || conn.bufferedAmount() > HIGH_WATER_BYTES) return;
    const waiters = c.drainWaiters;
    c.drainWaiters = [];
    for (const w of waiters) w();
  };

  readonly onMessage = (conn: WsConnection, data: ArrayBuffer, isBinary: boolean): void => {
    const c = this.conns.get(conn);
    if (!c) return;
    if (isBinary) {
      this.sendError(c, undefined, invalid('binary messages are not supported; send JSON text', null), undefined);
      return;
    }
    if (data.byteLength > MAX_MESSAGE_BYTES) {
      this.sendError(c, undefined, invalid(`messages may be at most ${MAX_MESSAGE_BYTES} bytes`, null), undefined);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(this.decoder.decode(data));
    } catch {
      this.sendError(c, undefined, new GatewayError('INVALID_JSON', 'message is not valid JSON (UTF-8)'), undefined);
      return;
    }
    if (!isObject(msg)) {
      this.sendError(c, undefined, invalid('message must be a JSON object', null), undefined);
      return;
    }
    const eventId = typeof msg['event_id'] === 'string' ? msg['event_id'] : undefined;
    if (msg['type'] === 'response.cancel') {
      const id = msg['response_id'];
      const run = typeof id === 'string' ? c.running.get(id) : undefined;
      if (!run) this.sendError(c, undefined, new GatewayError('NOT_FOUND', `No response ${JSON.stringify(id)} in flight on this connection`, { param: 'response_id' }), eventId);
      else run.abort();
      return;
    }
    if (msg['type'] !== 'response.create') {
      this.sendError(c, undefined, invalid(`unknown event type ${JSON.stringify(msg['type'])}; expected response.create or response.cancel`, 'type'), eventId);
      return;
    }
    let req: CreateRequest;
    try {
      req = decodeCreate(msg);
    } catch (err) {
      this.sendError(c, undefined, err instanceof GatewayError ? err : new GatewayError('INTERNAL_ERROR'), eventId);
      return;
    }
    if (c.running.size >= this.deps.limits.max_in_flight) {
      this.sendError(c, undefined, new GatewayError('OVERLOADED', `at most ${this.deps.limits.max_in_flight} responses may be in flight on one connection`, { max_in_flight: this.deps.limits.max_in_flight }), eventId);
      return;
    }
    const id = `resp_${randomUUID().replace(/-/g, '')}`;
    const abort = new AbortController();
    c.running.set(id, abort);
    const tracing = this.deps.tracing;
    const scope = tracing?.startResponse(id, req.model);
    // the response's span is the active context: provider calls, tool calls and log lines join it
    (tracing === undefined ? this.run(c, id, req, abort.signal, eventId) : tracing.within(scope, () => this.run(c, id, req, abort.signal, eventId)))
      .catch((err: unknown) => this.deps.log.error('responses run failed', { response_id: id, error: err }))
      .finally(() => {
        c.running.delete(id);
        tracing?.end(scope);
      });
  };

  /** Sends one event; waits first while the socket is over its high-water mark. */
  private async emit(c: Connection, event: Record<string, unknown>): Promise<void> {
    while (!c.conn.closed && c.conn.bufferedAmount() > HIGH_WATER_BYTES) {
      await new Promise<void>((resolve) => c.drainWaiters.push(resolve));
    }
    if (!c.conn.closed) c.conn.send(JSON.stringify(event));
  }

  private sendError(c: Connection, responseId: string | undefined, err: GatewayError, eventId: string | undefined): void {
    const param = err.details?.['param'];
    c.conn.send(
      JSON.stringify({
        type: 'error',
        code: err.code,
        message: err.message,
        param: typeof param === 'string' ? param : null,
        ...(responseId !== undefined ? { response_id: responseId } : {}),
        ...(eventId !== undefined ? { event_id: eventId } : {}),
        details: err.details ?? {},
      }),
    );
  }

  /** The caller's MCP tools: function definitions for the model, and routes by function name. */
  private offeredTools(auth: RequestAuth | undefined, taken: ReadonlySet<string>): { defs: Item[]; routes: Map<string, Route> } {
    const defs: Item[] = [];
    const routes = new Map<string, Route>();
    for (const tool of this.deps.manager.tools) {
      if (defs.length >= this.deps.limits.max_tools) break;
      const name = tool['name'];
      if (typeof name !== 'string' || taken.has(name)) continue;
      const route = this.deps.manager.routeTool(name);
      if (!route) continue;
      if (auth?.filter && !auth.filter.allowsTool(route.upstream.name, route.name)) continue;
      routes.set(name, route);
      defs.push({
        type: 'function',
        name,
        description: typeof tool['description'] === 'string' ? tool['description'] : '',
        parameters: isObject(tool['inputSchema']) ? tool['inputSchema'] : { type: 'object', properties: {} },
        strict: false,
      });
    }
    return { defs, routes };
  }

  private static autoExecutes(route: Route): boolean {
    const auto = route.upstream.config.tools_to_auto_execute ?? [];
    return auto.includes('*') || auto.includes(route.name);
  }

  /** One response, from `response.created` to its terminal event. Never throws. */
  private async run(c: Connection, id: string, req: CreateRequest, signal: AbortSignal, eventId: string | undefined): Promise<void> {
    const auth = c.conn.auth;
    let seq = 0;
    const send = (e: Record<string, unknown>): Promise<void> => this.emit(c, { ...e, response_id: id, sequence_number: seq++ });
    const createdAt = Math.floor(Date.now() / 1000);
    const output: Item[] = [];
    const usage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };
    let status: 'in_progress' | 'completed' | 'incomplete' | 'failed' = 'in_progress';
    let incomplete: Record<string, unknown> | null = null;
    let last: Record<string, unknown> = {};
    const snapshot = (): Record<string, unknown> => ({
      ...last,
      id,
      object: 'response',
      created_at: createdAt,
      status,
      model: req.model,
      instructions: req.instructions ?? null,
      output,
      incomplete_details: incomplete,
      usage: status === 'in_progress' ? null : { ...usage },
      error: null,
    });

    let provider: OpenAiProvider;
    let model: string;
    let conversation: Item[];
    try {
      const lookup = this.deps.modelRecord;
      const tenant = auth?.principal.tenantId ?? 'default';
      ({ provider, model } = lookup ? await this.deps.providers.resolveFor(req.model, (n) => lookup(tenant, n)) : this.deps.providers.resolve(req.model));
      if (req.previousResponseId !== undefined) {
        const prev = c.remembered.get(req.previousResponseId);
        if (!prev) throw new GatewayError('NOT_FOUND', `previous_response_id ${req.previousResponseId} is not a finished response of this connection`, { param: 'previous_response_id' });
        conversation = [...prev, ...req.input];
      } else {
        conversation = [...req.input];
      }
    } catch (err) {
      this.sendError(c, undefined, err instanceof GatewayError ? err : new GatewayError('INTERNAL_ERROR'), eventId);
      return;
    }
    const clientToolNames = new Set(req.tools.map((t) => t['name']).filter((n): n is string => typeof n === 'string'));
    const mcp = this.offeredTools(auth, clientToolNames);
    const tools = [...req.tools, ...mcp.defs];
    /** The last round's items when they were not yet added to the conversation. */
    let tail: Item[] = [];

    await send({ type: 'response.created', response: snapshot() });
    await send({ type: 'response.in_progress', response: snapshot() });
    try {
      for (let round = 0; ; round++) {
        if (round >= this.deps.limits.max_tool_rounds) {
          status = 'incomplete';
          incomplete = { reason: 'max_tool_rounds' };
          break;
        }
        const base = output.length;
        const body: Record<string, unknown> = { ...req.passThrough, model, input: conversation, stream: true, store: false };
        if (req.instructions !== undefined) body['instructions'] = req.instructions;
        if (tools.length > 0) body['tools'] = tools;
        const roundItems: Item[] = [];
        const auto = new Map<string, { item: Item; route: Route; index: number }>();
        let clientCalls = 0;
        let finalSeen = false;
        const autoIds = new Set<string>();
        const events =
          provider.settings.responses_api === 'chat_completions'
            ? chatAsResponses(provider, body, signal, `${id.slice(5, 17)}_${round}`)
            : provider.stream('responses', '/responses', body, signal, (e: StreamEvent) => (e.data['type'] === 'response.completed' || e.data['type'] === 'response.incomplete' ? (e.data['response'] as Item | undefined)?.['usage'] : undefined));
        for await (const ev of events) {
          const d = ev.data;
          const type = typeof d['type'] === 'string' ? d['type'] : ev.event;
          const index = typeof d['output_index'] === 'number' ? base + d['output_index'] : undefined;
          const itemId = typeof d['item_id'] === 'string' ? d['item_id'] : undefined;
          switch (type) {
            case 'response.created':
            case 'response.in_progress':
            case 'response.queued':
              break;
            case 'response.output_item.added': {
              const item = isObject(d['item']) ? d['item'] : {};
              const route = item['type'] === 'function_call' && typeof item['name'] === 'string' ? mcp.routes.get(item['name']) : undefined;
              if (route && ResponsesWsEndpoint.autoExecutes(route) && typeof item['id'] === 'string') {
                autoIds.add(item['id']);
                await send({ type, output_index: index, item: { type: 'mcp_call', id: item['id'], server_label: route.upstream.name, name: route.name, arguments: '', status: 'in_progress' } });
              } else {
                await send({ ...d, output_index: index });
              }
              break;
            }
            case 'response.function_call_arguments.delta':
            case 'response.function_call_arguments.done':
              if (itemId !== undefined && autoIds.has(itemId)) {
                await send({ ...d, type: type === 'response.function_call_arguments.delta' ? 'response.mcp_call_arguments.delta' : 'response.mcp_call_arguments.done', output_index: index });
              } else {
                await send({ ...d, output_index: index });
              }
              break;
            case 'response.output_item.done': {
              const item = isObject(d['item']) ? d['item'] : {};
              roundItems.push(item);
              const route = typeof item['name'] === 'string' ? mcp.routes.get(item['name']) : undefined;
              if (typeof item['id'] === 'string' && autoIds.has(item['id']) && route) {
                auto.set(item['id'], { item, route, index: index ?? base + roundItems.length - 1 });
                // the item's place in the output; filled in when the call ran
                output[index ?? output.length] = { type: 'mcp_call', id: item['id'], server_label: route.upstream.name, name: route.name, arguments: item['arguments'] ?? '', output: null, error: null };
              } else {
                if (item['type'] === 'function_call') clientCalls++;
                output[index ?? output.length] = item;
                await send({ ...d, output_index: index });
              }
              break;
            }
            case 'response.completed':
            case 'response.incomplete': {
              finalSeen = true;
              const r = isObject(d['response']) ? d['response'] : {};
              const u = isObject(r['usage']) ? r['usage'] : {};
              usage.input_tokens += typeof u['input_tokens'] === 'number' ? u['input_tokens'] : 0;
              usage.output_tokens += typeof u['output_tokens'] === 'number' ? u['output_tokens'] : 0;
              usage.total_tokens = usage.input_tokens + usage.output_tokens;
              const { id: _upstreamId, output: _out, usage: _usage, status: _status, created_at: _created, ...rest } = r;
              last = rest;
              if (type === 'response.incomplete') {
                status = 'incomplete';
                incomplete = isObject(r['incomplete_details']) ? r['incomplete_details'] : { reason: 'provider' };
              }
              break;
            }
            case 'response.failed': {
              const r = isObject(d['response']) ? d['response'] : {};
              const e = isObject(r['error']) ? r['error'] : {};
              throw new GatewayError('PROVIDER_ERROR', `provider ${provider.name}: response failed: ${typeof e['message'] === 'string' ? e['message'] : 'no message'}`, { provider: provider.name, provider_code: e['code'] ?? null });
            }
            case 'error':
              throw new GatewayError('PROVIDER_ERROR', `provider ${provider.name} streamed an error: ${typeof d['message'] === 'string' ? d['message'] : 'no message'}`, { provider: provider.name, provider_code: d['code'] ?? null });
            default:
              await send(index !== undefined ? { ...d, output_index: index } : d);
          }
        }
        if (!finalSeen) throw new GatewayError('PROVIDER_ERROR', `provider ${provider.name} ended the stream without response.completed`, { provider: provider.name });
        if (status === 'incomplete' || auto.size === 0) {
          tail = roundItems;
          break;
        }
        // the model's items go back as input, then each auto-executed call's output
        for (const item of roundItems) {
          const asIn = asInput(item);
          if (asIn) conversation.push(asIn);
        }
        await Promise.all([...auto.values()].map(async (call) => conversation.push(await this.execute(c, auth, call, output, send))));
        if (clientCalls > 0) break;
      }
      if (status === 'in_progress') status = 'completed';
      this.remember(c, id, conversation, tail);
      await send({ type: status === 'completed' ? 'response.completed' : 'response.incomplete', response: snapshot() });
    } catch (err) {
      const e =
        err instanceof GatewayError ? err : new GatewayError('INTERNAL_ERROR', `response failed: ${err instanceof Error ? err.message : String(err)}`);
      if (e.code !== 'INTERNAL_ERROR' || !(err instanceof GatewayError)) this.deps.log.warn('response failed', { response_id: id, code: e.code, error: e.message });
      this.deps.tracing?.recordError(e);
      status = 'failed';
      this.sendError(c, id, e, eventId);
      await send({ type: 'response.failed', response: { ...snapshot(), status: e.code === 'REQUEST_CANCELLED' ? 'cancelled' : 'failed', error: { code: e.code, message: e.message } } });
    }
  }

  /** Runs one auto-executed call through the normal tool path; returns its `function_call_output` item. */
  private async execute(c: Connection, auth: RequestAuth | undefined, call: { item: Item; route: Route; index: number }, output: Item[], send: (e: Record<string, unknown>) => Promise<void>): Promise<Item> {
    const itemId = call.item['id'] as string;
    const callId = typeof call.item['call_id'] === 'string' ? call.item['call_id'] : itemId;
    const rawArgs = typeof call.item['arguments'] === 'string' ? call.item['arguments'] : '';
    await send({ type: 'response.mcp_call.in_progress', item_id: itemId, output_index: call.index });
    let text: string;
    let error: string | null = null;
    try {
      let args: unknown = {};
      if (rawArgs.trim() !== '') {
        try {
          args = JSON.parse(rawArgs);
        } catch {
          throw new GatewayError('VALIDATION_ERROR', 'the model sent arguments that are not JSON');
        }
      }
      if (!isObject(args)) throw new GatewayError('VALIDATION_ERROR', 'the model sent arguments that are not a JSON object');
      await this.deps.admitToolExecution(auth);
      const parent = this.deps.tracing?.current();
      const result: JsonObject = await invokeTool(this.deps.bus, call.route, { name: call.route.name, arguments: args as JsonObject }, {
        ...(parent !== undefined && this.deps.tracing !== undefined ? { trace: { tracing: this.deps.tracing, parent } } : {}),
        surface: 'responses',
        tenant: auth?.principal.tenantId,
        virtualKey: auth?.principal.virtualKeyId,
        principal: auth?.principal.id,
      });
      text = resultText(result);
      if (result['isError'] === true) error = text;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      text = `Error: ${error}`;
    }
    const item: Item = { type: 'mcp_call', id: itemId, server_label: call.route.upstream.name, name: call.route.name, arguments: rawArgs, output: error === null ? text : null, error, status: error === null ? 'completed' : 'failed' };
    output[call.index] = item;
    if (!c.conn.closed) {
      await send({ type: error === null ? 'response.mcp_call.completed' : 'response.mcp_call.failed', item_id: itemId, output_index: call.index });
      await send({ type: 'response.output_item.done', output_index: call.index, item });
    }
    return { type: 'function_call_output', call_id: callId, output: text };
  }

  /** Keeps a finished response's conversation for `previous_response_id` (oldest forgotten first). */
  private remember(c: Connection, id: string, conversation: Item[], tail: Item[]): void {
    const items = [...conversation];
    for (const item of tail) {
      const asIn = asInput(item);
      if (asIn) items.push(asIn);
    }
    c.remembered.set(id, items);
    while (c.remembered.size > this.deps.limits.max_remembered) {
      const oldest = c.remembered.keys().next().value;
      if (oldest === undefined) break;
      c.remembered.delete(oldest);
    }
  }
}
