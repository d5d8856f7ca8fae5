/**
 * Model provider calls in the tool log, so the log's cost figures (`/api/mcp-logs/stats`
 * `total_cost`, the dashboard's Tool log page) include what models cost next to what tools cost
 * (Bifrost keeps LLM and MCP calls in one log with their costs the same way:
 * https://docs.getbifrost.ai/features/observability/default).
 *
 * One entry per provider call (each round of a Responses request, each summary chunk, each
 * embeddings request): `client` = `model:<provider>` (a `:` never appears in an MCP client's name,
 * so the two never mix), `tool` = the provider's model name, `surface` = `model`, `arguments` =
 * `{operation}` (never the prompt), `result` = the token counts, `cost_usd` from the provider's
 * configured `pricing`, `status`/`error` from the outcome, `latency_ms` including retries.
 */
import type { ToolLogInput } from '../store/tool-log.js';
import type { ProviderObservation } from './openai-client.js';

/** The tool-log `client` of a provider's calls. */
export function modelLogClient(provider: string): string {
  return `model:${provider}`;
}

/**
 * The tool-log entry of one provider call, or `undefined` for a call the caller cancelled (it
 * did not happen from the provider's point of view, and costs nothing).
 */
export function providerCallEntry(o: ProviderObservation, traceId?: string): ToolLogInput | undefined {
  if (o.outcome === 'REQUEST_CANCELLED') return undefined;
  const ok = o.outcome === 'ok';
  return {
    client: modelLogClient(o.provider),
    tool: o.model === '' ? '(none)' : o.model,
    arguments: { operation: o.operation },
    result: { input_tokens: o.input_tokens, output_tokens: o.output_tokens, retries: o.retries },
    status: ok ? 'success' : 'error',
    ...(ok ? {} : { error: o.outcome }),
    latency_ms: o.seconds * 1000,
    cost_usd: Number.isFinite(o.cost_usd) && o.cost_usd > 0 ? o.cost_usd : 0,
    surface: 'model',
    ...(traceId !== undefined ? { trace_id: traceId } : {}),
  };
}
