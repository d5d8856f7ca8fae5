/**
 * The tool execution log (Bifrost `/api/mcp-logs`): every tool call from any surface, written by the
 * event recorder (`event-recorder.ts`) as ONE record with its `ToolInvocationCompleted` /
 * `ToolInvocationFailed` event (the event log reads the event from it), before the call is
 * answered; the store cuts arguments and results to `max_payload_bytes`.
 *
 * - `GET /api/mcp-logs?client&tool&status&virtual_key&surface&from&to&limit&offset` → `{logs, count, total_count, limit, offset}`
 *   (newest first; `from`/`to` ISO-8601 or epoch ms)
 * - Model provider calls are in the log too (`surface` `model`, `client` `model:<provider>`, see
 *   `providers/call-log.ts`), so the cost totals cover models and tools; `surface=model` or a
 *   tool surface narrows them.
 * - `GET /api/mcp-logs/stats` (same filters) → `{total_executions, success_rate, average_latency, total_cost}`
 */
import { GatewayError } from '../base/errors.js';
import type { GatewayEvent } from '../streams/events.js';
import type { ToolLogFilter, ToolLogInput, ToolLogRepository } from '../store/tool-log.js';
import { intParam } from './rest/params.js';
import { ok, type RestReply, type RestRequest, type RestRouter } from './rest/router.js';

type ToolEvent = Extract<GatewayEvent, { event_type: 'ToolInvocationCompleted' | 'ToolInvocationFailed' }>;

/** The log entry for a tool event (the store cuts `arguments` and `result` to its payload cap). */
export function toLogEntry(e: ToolEvent): ToolLogInput {
  // one object, optional fields assigned (not spread: this runs once per tool call)
  const entry: ToolLogInput = {
    client: e.mcp_server_id,
    tool: e.tool_name,
    arguments: e.arguments ?? null,
    result: e.event_type === 'ToolInvocationCompleted' ? e.result : null,
    status: e.event_type === 'ToolInvocationCompleted' && !e.is_error ? 'success' : 'error',
    latency_ms: Math.round(e.duration_ms * 1000) / 1000,
    cost_usd: e.cost_usd,
    surface: e.surface,
    timestamp: e.timestamp,
  };
  if (e.event_type === 'ToolInvocationFailed') entry.error = e.error;
  if (e.virtual_key !== undefined) entry.virtual_key = e.virtual_key;
  if (e.trace_id !== undefined) entry.trace_id = e.trace_id;
  return entry;
}

function timeParam(req: RestRequest, name: string): number | undefined {
  const raw = req.query.get(name);
  if (raw === null || raw === '') return undefined;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) {
    throw new GatewayError('VALIDATION_ERROR', `Query parameter ${name} must be ISO-8601 or epoch milliseconds`, { problems: [`${name}: got ${JSON.stringify(raw)}`] });
  }
  return ms;
}

function filters(req: RestRequest): ToolLogFilter {
  const status = req.query.get('status');
  if (status !== null && status !== '' && status !== 'success' && status !== 'error') {
    throw new GatewayError('VALIDATION_ERROR', 'Query parameter status must be "success" or "error"', { problems: [`status: got ${JSON.stringify(status)}`] });
  }
  const client = req.query.get('client');
  const tool = req.query.get('tool');
  const virtualKey = req.query.get('virtual_key');
  const surface = req.query.get('surface');
  const from = timeParam(req, 'from');
  const to = timeParam(req, 'to');
  return {
    ...(client ? { client } : {}),
    ...(tool ? { tool } : {}),
    ...(virtualKey ? { virtual_key: virtualKey } : {}),
    ...(surface ? { surface } : {}),
    ...(status ? { status } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
  };
}

export class ToolLogHandler {
  constructor(private readonly repo: ToolLogRepository) {}

  register(router: RestRouter): void {
    const query = {
      client: { description: 'Client name' },
      tool: { description: 'Tool name' },
      virtual_key: { description: 'Virtual key id of the caller' },
      surface: { description: 'Where the call came from: `mcp`, `rest`, `ws`, `responses`, … or `model` (model provider calls)' },
      status: { description: '`success`, `error` or `failed`' },
      from: { description: 'ISO-8601 start' },
      to: { description: 'ISO-8601 end' },
      limit: { description: 'Page size', schema: { type: 'integer', minimum: 1 } },
      offset: { description: 'Items to skip', schema: { type: 'integer', minimum: 0 } },
    };
    router
      .on('GET', '/api/mcp-logs', (r) => this.list(r), {
        summary: 'The tool execution log, newest first',
        tag: 'tool-log',
        access: 'admin',
        query,
        responses: { 200: { description: '`{logs, count, total_count, limit, offset}`', schema: { type: 'object', required: ['logs', 'total_count'] } } },
      })
      .on('GET', '/api/mcp-logs/stats', (r) => this.stats(r), {
        summary: 'Tool execution statistics',
        tag: 'tool-log',
        access: 'admin',
        query,
        responses: { 200: { description: '`{total_executions, success_rate, average_latency, total_cost}`', schema: { type: 'object', required: ['total_executions'] } } },
      });
  }

  async list(req: RestRequest): Promise<RestReply> {
    const limit = intParam(req, 'limit', 50, 1, 1000);
    const offset = intParam(req, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const { entries, total } = await this.repo.query({ ...filters(req), limit, offset });
    return ok({ logs: entries, count: entries.length, total_count: total, limit, offset });
  }

  async stats(req: RestRequest): Promise<RestReply> {
    return ok(await this.repo.stats(filters(req)));
  }
}
