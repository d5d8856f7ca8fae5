/**
 * Context summaries written by a model: `POST /api/v1/mcp/context/:id/summary`
 * `{method:"model", model, max_tokens?, chunk_chars?, instructions?}` (or `method:"extractive"`,
 * which answers what `GET …/summary` does), and `GET /api/v1/mcp/context/:id/summary/model` for
 * the last stored one.
 *
 * A long context is summarised map-reduce style: its messages (`role: content` lines) are cut
 * into chunks of at most `chunk_chars` characters (a message longer than that is split), each
 * chunk is summarised by the model through `POST /chat/completions` (the endpoint every
 * OpenAI-compatible server has), at most 4 at once, and the partial summaries are summarised
 * again (recursively while they exceed one chunk). At most 64 chunks per request (422 beyond).
 * The summary is stored per tenant with the model, provider, chunk count and token counts.
 */
import * as t from 'io-ts';
import { GatewayError } from '../../base/errors.js';
import { withSchema } from '../../codecs/schema.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { TenantRepository } from '../../store/tenant-repo.js';
import { contextSummaries, type ContextSummaryRecord } from './context-summaries.js';
import type { ContextMessage, V1Store } from '../../store/v1-records.js';
import { ok, type RestReply } from '../rest/router.js';
import { nowIso, type V1Api, type V1Request } from '../rest/v1-api.js';
import { extractiveSummary } from './context-content.js';
import { boundedString } from './entities.js';

/** Chunks one summary request may make. */
export const MAX_CHUNKS = 64;
const MAP_CONCURRENCY = 4;
const DEFAULT_CHUNK_CHARS = 12_000;
const DEFAULT_MAX_TOKENS = 512;

const SYSTEM_PROMPT =
  'You summarise conversations between users, agents and tools. Write a faithful, concise summary of the ' +
  'conversation text you are given: decisions, facts, open questions and next steps. Do not invent anything.';
const MERGE_PROMPT = 'You are given partial summaries of consecutive parts of one conversation, in order. Merge them into one concise summary; keep every decision, fact and open question.';


function intIn(min: number, max: number, description: string): t.Type<number, number, unknown> {
  const ok = (u: unknown): u is number => typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max;
  return withSchema(new t.Type<number, number, unknown>(`whole number ${min}..${max}`, ok, (u, c) => (ok(u) ? t.success(u) : t.failure(u, c)), t.identity), { type: 'integer', minimum: min, maximum: max, description });
}

export const SummaryBody = t.exact(
  t.intersection([
    t.type({ method: t.keyof({ model: null, extractive: null }) }),
    t.partial({
      model: boundedString(1, 300, 'The model: `provider/model` or a model a provider lists'),
      max_tokens: intIn(16, 8192, 'Most tokens of each model answer (default 512)'),
      chunk_chars: intIn(500, 200_000, 'Characters of conversation per model call (default 12000)'),
      instructions: boundedString(1, 4000, 'Extra instructions for the summary (focus, language, length)'),
      sentences: intIn(1, 50, 'For `extractive`: most sentences'),
    }),
  ]),
  'SummaryBody',
);

/** Cuts `messages` into chunks of at most `size` characters of `role: content` lines. */
export function chunkMessages(messages: readonly Pick<ContextMessage, 'role' | 'content'>[], size: number): string[] {
  const chunks: string[] = [];
  let current = '';
  const flush = (): void => {
    if (current !== '') chunks.push(current);
    current = '';
  };
  for (const m of messages) {
    let line = `${m.role}: ${m.content}\n`;
    if (current.length + line.length > size) flush();
    while (line.length > size) {
      chunks.push(line.slice(0, size));
      line = line.slice(size);
    }
    current += line;
  }
  flush();
  return chunks;
}

/** Runs `fn` over `items` with at most `limit` at once; results in input order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export class ModelSummaryRoutes {
  private readonly summaries: TenantRepository<ContextSummaryRecord>;

  constructor(private readonly deps: { readonly providers: ProviderRegistry; readonly repos: V1Store }) {
    this.summaries = contextSummaries(deps.repos);
  }

  register(api: V1Api): void {
    api.on(
      'POST',
      '/api/v1/mcp/context/:id/summary',
      {
        summary: 'Summarise a context with a model (chunked map-reduce) or extractively; the model summary is stored',
        tag: 'contexts',
        body: SummaryBody,
        responses: {
          200: { description: '`{summary, method:"model", model, provider, message_count, chunks, calls, input_tokens, output_tokens, cost_usd, created_at}`' },
          400: { description: 'Invalid body' },
          404: { description: 'No such context, or no provider serves the model' },
          422: { description: `More than ${MAX_CHUNKS} chunks` },
          502: { description: 'The provider failed' },
        },
      },
      (req) => this.create(req),
    );
    api.on(
      'GET',
      '/api/v1/mcp/context/:id/summary/model',
      { summary: 'The last model summary stored for a context', tag: 'contexts', responses: { 200: { description: 'The stored summary' }, 404: { description: 'None stored' } } },
      async (req) => {
        const r = await this.summaries.get(req.tenant, req.params['id'] ?? '');
        if (!r) throw new GatewayError('NOT_FOUND', `No model summary stored for context ${req.params['id'] ?? ''}`, { id: req.params['id'] });
        return ok(r);
      },
    );
  }

  private async create(req: V1Request<t.TypeOf<typeof SummaryBody>>): Promise<RestReply> {
    const id = req.params['id'] ?? '';
    const context = await this.deps.repos.contexts.get(req.tenant, id);
    if (!context) throw new GatewayError('NOT_FOUND', `Context not found: ${id}`, { id });
    const b = req.data;
    if (b.method === 'extractive') return ok(extractiveSummary(context.content, b.sentences ?? 3));
    if (b.model === undefined) throw new GatewayError('VALIDATION_ERROR', 'method "model" needs a model', { problems: ['model: required when method is "model"'] });
    if (context.content.length === 0) throw new GatewayError('UNPROCESSABLE_ENTITY', 'The context has no messages to summarise', { id });
    const { provider, model } = await this.deps.providers.resolveFor(b.model, async (n) => (await this.deps.repos.models.list(req.tenant)).find((m) => m.id === n || m.name === n));
    const size = b.chunk_chars ?? DEFAULT_CHUNK_CHARS;
    const chunks = chunkMessages(context.content, size);
    if (chunks.length > MAX_CHUNKS) {
      throw new GatewayError('UNPROCESSABLE_ENTITY', `The context makes ${chunks.length} chunks of ${size} characters; at most ${MAX_CHUNKS}: raise chunk_chars`, { chunks: chunks.length, max_chunks: MAX_CHUNKS });
    }
    const totals = { input: 0, output: 0, calls: 0 };
    const ask = async (system: string, text: string): Promise<string> => {
      const body = await provider.postJson('chat.completions', '/chat/completions', {
        model,
        messages: [
          { role: 'system', content: b.instructions !== undefined ? `${system}\n${b.instructions}` : system },
          { role: 'user', content: text },
        ],
        max_tokens: b.max_tokens ?? DEFAULT_MAX_TOKENS,
        temperature: 0,
      });
      totals.calls++;
      const usage = body['usage'] as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined;
      totals.input += typeof usage?.prompt_tokens === 'number' ? usage.prompt_tokens : 0;
      totals.output += typeof usage?.completion_tokens === 'number' ? usage.completion_tokens : 0;
      const content = (body['choices'] as { message?: { content?: unknown } }[] | undefined)?.[0]?.message?.content;
      if (typeof content !== 'string' || content.trim() === '') throw new GatewayError('PROVIDER_ERROR', `provider ${provider.name} answered without summary text`, { provider: provider.name });
      return content.trim();
    };
    let parts = await mapLimited(chunks, MAP_CONCURRENCY, (c) => ask(SYSTEM_PROMPT, c));
    // merge partial summaries, in groups that fit one chunk, until one is left
    while (parts.length > 1) {
      const groups = chunkMessages(parts.map((p, i) => ({ role: `part ${i + 1}`, content: p })), size);
      const merged = await mapLimited(groups, MAP_CONCURRENCY, (g) => ask(MERGE_PROMPT, g));
      if (merged.length >= parts.length) throw new GatewayError('UNPROCESSABLE_ENTITY', 'Partial summaries do not shrink below one chunk: raise chunk_chars or lower max_tokens', { chunk_chars: size });
      parts = merged;
    }
    const record: ContextSummaryRecord = {
      id,
      summary: parts[0] ?? '',
      method: 'model',
      model,
      provider: provider.name,
      message_count: context.content.length,
      chunks: chunks.length,
      calls: totals.calls,
      input_tokens: totals.input,
      output_tokens: totals.output,
      cost_usd: provider.cost(model, totals.input, totals.output),
      created_at: nowIso(),
    };
    await this.summaries.put(req.tenant, record);
    return ok(record);
  }
}
