/**
 * The model provider registry: the providers of the config file (`model_providers.providers`),
 * those managed through `/api/providers` (stored with their secrets sealed, see
 * {@link SecretBox}), and the built-in `local` embedding provider, which needs no network.
 *
 * Model names resolve as Bifrost spells them (https://docs.getbifrost.ai/providers/supported-providers):
 * `provider/model` names the provider; a bare `model` goes to the provider listing it in
 * `models`, else to `default_provider` (or the only provider there is).
 */
import { GatewayError } from '../base/errors.js';
import type { ModelProviderConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { ProviderRepository, StoredProvider } from '../store/providers.js';
import { LEXICAL_DIMENSIONS, LEXICAL_MODEL, LOCAL_PROVIDER, LexicalEmbedder, normalize } from './lexical-embedder.js';
import { OpenAiProvider, type ProviderObserver, type ProviderSettings } from './openai-client.js';
import type { SecretBox } from './secret-box.js';

/** Defaults of a provider's optional settings (times in ms). */
export const PROVIDER_DEFAULTS = {
  timeout_ms: 60_000,
  max_retries: 2,
  retry_initial_ms: 500,
  retry_max_ms: 10_000,
  max_concurrent_requests: 16,
  max_queued_requests: 64,
  circuit_breaker: { failure_threshold: 5, open_ms: 30_000, half_open_max_calls: 1 },
} as const;

type Overrides = Partial<Pick<ProviderSettings, 'timeout_ms' | 'max_retries' | 'retry_initial_ms' | 'retry_max_ms' | 'max_concurrent_requests' | 'max_queued_requests'>> & {
  readonly circuit_breaker?: Partial<ProviderSettings['circuit_breaker']> | undefined;
};

function withDefaults(base: Omit<ProviderSettings, keyof Overrides | 'circuit_breaker'>, o: Overrides): ProviderSettings {
  return {
    ...base,
    timeout_ms: o.timeout_ms ?? PROVIDER_DEFAULTS.timeout_ms,
    max_retries: o.max_retries ?? PROVIDER_DEFAULTS.max_retries,
    retry_initial_ms: o.retry_initial_ms ?? PROVIDER_DEFAULTS.retry_initial_ms,
    retry_max_ms: o.retry_max_ms ?? PROVIDER_DEFAULTS.retry_max_ms,
    max_concurrent_requests: o.max_concurrent_requests ?? PROVIDER_DEFAULTS.max_concurrent_requests,
    max_queued_requests: o.max_queued_requests ?? PROVIDER_DEFAULTS.max_queued_requests,
    circuit_breaker: { ...PROVIDER_DEFAULTS.circuit_breaker, ...o.circuit_breaker },
  };
}

/** Settings of a config-file provider (its `api_key` already resolved from `api_key_env`). */
export function settingsFromConfig(c: ModelProviderConfig): ProviderSettings {
  return withDefaults(
    { name: c.name, base_url: c.base_url, api_key: c.api_key, headers: c.headers ?? {}, models: c.models ?? [], embedding_model: c.embedding_model, pricing: c.pricing ?? {}, responses_api: c.responses_api ?? 'responses' },
    c,
  );
}

/** One embedding result: unit-length vectors in input order, and what they cost. */
export interface EmbeddingResult {
  readonly provider: string;
  readonly model: string;
  /** `lexical` for the built-in hashed bag of words, `model` for a provider's embedding model. */
  readonly kind: 'lexical' | 'model';
  readonly vectors: Float32Array[];
  readonly input_tokens: number;
  readonly cost_usd: number;
}

/** Where a provider came from. */
export type ProviderSource = 'config' | 'api';

export interface ProviderRegistryDeps {
  readonly configured: readonly ModelProviderConfig[];
  readonly defaultProvider: string | undefined;
  readonly repo: ProviderRepository;
  readonly box: SecretBox;
  readonly observe: ProviderObserver;
  readonly log: Logger;
  /** For tests: the fetch used to reach providers. */
  readonly fetchImpl?: typeof fetch;
}

/** The body of a managed provider as `/api/providers` takes it (secrets in clear, sealed on write). */
export interface ProviderInput extends Overrides {
  readonly base_url: string;
  readonly api_key?: string | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly models?: readonly string[] | undefined;
  readonly embedding_model?: string | undefined;
  readonly pricing?: ProviderSettings['pricing'] | undefined;
  readonly responses_api?: ProviderSettings['responses_api'] | undefined;
}

export class ProviderRegistry {
  private readonly providers = new Map<string, { readonly client: OpenAiProvider; readonly source: ProviderSource }>();
  private lexical: LexicalEmbedder | undefined;

  constructor(private readonly deps: ProviderRegistryDeps) {}

  /**
   * Loads the built-in embedder, the configured providers and the stored ones (a stored provider
   * whose secrets do not open with the current key is skipped with an error log).
   */
  async init(): Promise<void> {
    this.lexical = await LexicalEmbedder.create();
    for (const c of this.deps.configured) this.add(settingsFromConfig(c), 'config');
    for (const r of await this.deps.repo.list()) {
      if (this.providers.has(r.name)) {
        this.deps.log.warn('stored model provider shadowed by the config file', { provider: r.name });
        continue;
      }
      try {
        this.add(this.open(r), 'api');
      } catch (err) {
        this.deps.log.error('stored model provider skipped: its secrets do not open with the configured key', { provider: r.name, error: err });
      }
    }
  }

  dispose(): void {
    for (const p of this.providers.values()) p.client.dispose();
    this.providers.clear();
  }

  /** The built-in lexical embedder (available after {@link init}). */
  get embedder(): LexicalEmbedder {
    if (!this.lexical) throw new Error('ProviderRegistry.init() has not run');
    return this.lexical;
  }

  list(): { readonly client: OpenAiProvider; readonly source: ProviderSource }[] {
    return [...this.providers.values()];
  }

  get(name: string): OpenAiProvider | undefined {
    return this.providers.get(name)?.client;
  }

  /**
   * The provider and provider-side model name of `model` (see the module comment).
   * @throws GatewayError MODEL_NOT_FOUND naming what was tried.
   */
  resolve(model: string): { provider: OpenAiProvider; model: string } {
    const slash = model.indexOf('/');
    if (slash > 0) {
      const p = this.providers.get(model.slice(0, slash));
      if (p) return { provider: p.client, model: model.slice(slash + 1) };
    }
    for (const { client } of this.providers.values()) if (client.settings.models.includes(model)) return { provider: client, model };
    const fallback = this.deps.defaultProvider ?? (this.providers.size === 1 ? [...this.providers.keys()][0] : undefined);
    const p = fallback === undefined ? undefined : this.providers.get(fallback);
    if (p) return { provider: p.client, model };
    throw new GatewayError('MODEL_NOT_FOUND', `No model provider serves ${JSON.stringify(model)}: name it as provider/model, or list it in a provider's models`, {
      model,
      providers: [...this.providers.keys()],
    });
  }

  /**
   * {@link resolve}, after a tenant's `/api/v1/models` record: a record whose id or name is
   * `model` and whose `provider` names a registered provider resolves to that provider and to
   * `configuration.model` (else the record's name).
   * @throws GatewayError MODEL_NOT_FOUND.
   */
  async resolveFor(model: string, record: (nameOrId: string) => Promise<{ readonly name: string; readonly provider: string; readonly configuration: Readonly<Record<string, unknown>> } | undefined>): Promise<{ provider: OpenAiProvider; model: string }> {
    if (!(model.indexOf('/') > 0 && this.providers.has(model.slice(0, model.indexOf('/'))))) {
      const r = await record(model);
      const p = r ? this.providers.get(r.provider) : undefined;
      if (r && p) return { provider: p.client, model: typeof r.configuration['model'] === 'string' ? r.configuration['model'] : r.name };
    }
    return this.resolve(model);
  }

  /**
   * Embeds `texts` with `model`: `local/lexical-hash-512` (or `undefined`, or `local`) is the
   * built-in lexical embedding; anything else resolves to a provider's `/embeddings`.
   * @throws GatewayError MODEL_NOT_FOUND, and the provider errors of {@link OpenAiProvider.postJson}.
   */
  async embed(model: string | undefined, texts: readonly string[], signal?: AbortSignal): Promise<EmbeddingResult> {
    if (model === undefined || model === LOCAL_PROVIDER || model === LEXICAL_MODEL || model === `${LOCAL_PROVIDER}/${LEXICAL_MODEL}`) {
      const e = this.embedder;
      return { provider: LOCAL_PROVIDER, model: LEXICAL_MODEL, kind: 'lexical', vectors: texts.map((t) => e.embed(t)), input_tokens: 0, cost_usd: 0 };
    }
    const named = this.providers.get(model);
    const { provider, model: name } = named?.client.settings.embedding_model !== undefined ? { provider: named.client, model: named.client.settings.embedding_model } : this.resolve(model);
    const body = await provider.postJson('embeddings', '/embeddings', { model: name, input: texts, encoding_format: 'float' }, signal);
    const data = body['data'];
    if (!Array.isArray(data) || data.length !== texts.length) {
      throw new GatewayError('PROVIDER_ERROR', `provider ${provider.name} answered /embeddings with ${Array.isArray(data) ? data.length : 'no'} embeddings for ${texts.length} inputs`, { provider: provider.name });
    }
    const vectors: Float32Array[] = new Array<Float32Array>(texts.length);
    for (const item of data as unknown[]) {
      const it = item as { index?: unknown; embedding?: unknown };
      const index = typeof it.index === 'number' ? it.index : -1;
      if (index < 0 || index >= texts.length || !Array.isArray(it.embedding) || !it.embedding.every((x) => typeof x === 'number')) {
        throw new GatewayError('PROVIDER_ERROR', `provider ${provider.name} answered /embeddings with a malformed item`, { provider: provider.name });
      }
      vectors[index] = normalize(Float32Array.from(it.embedding as number[]));
    }
    const usage = body['usage'] as { prompt_tokens?: unknown } | undefined;
    const tokens = typeof usage?.prompt_tokens === 'number' ? usage.prompt_tokens : 0;
    return { provider: provider.name, model: name, kind: 'model', vectors, input_tokens: tokens, cost_usd: provider.cost(name, tokens, 0) };
  }

  /** Health of every provider, the built-in one first. */
  health(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {
      [LOCAL_PROVIDER]: { status: this.lexical ? 'healthy' : 'unhealthy', kind: 'lexical', model: LEXICAL_MODEL, dimensions: LEXICAL_DIMENSIONS, network: false },
    };
    for (const [name, p] of this.providers) out[name] = { ...p.client.health(), source: p.source, base_url: p.client.settings.base_url };
    return out;
  }

  /** A provider as the API shows it: settings without secrets. */
  describe(name: string): Record<string, unknown> | undefined {
    const p = this.providers.get(name);
    if (!p) return undefined;
    const s = p.client.settings;
    return {
      name: s.name,
      source: p.source,
      base_url: s.base_url,
      has_api_key: s.api_key !== undefined,
      header_names: Object.keys(s.headers),
      models: s.models,
      embedding_model: s.embedding_model ?? null,
      timeout_ms: s.timeout_ms,
      max_retries: s.max_retries,
      retry_initial_ms: s.retry_initial_ms,
      retry_max_ms: s.retry_max_ms,
      max_concurrent_requests: s.max_concurrent_requests,
      max_queued_requests: s.max_queued_requests,
      pricing: s.pricing,
      responses_api: s.responses_api,
      health: p.client.health(),
    };
  }

  /**
   * Creates or replaces the managed provider `name`: secrets sealed, stored (durable), then live.
   * @throws GatewayError CONFLICT for a config-file provider (change the file instead).
   */
  async put(name: string, input: ProviderInput): Promise<{ created: boolean }> {
    const existing = this.providers.get(name);
    if (existing?.source === 'config') throw new GatewayError('CONFLICT', `Provider ${name} comes from the config file; change it there`, { provider: name });
    const stored = await this.deps.repo.get(name);
    const now = new Date().toISOString();
    const record: StoredProvider = {
      name,
      base_url: input.base_url,
      api_key_sealed: input.api_key === undefined ? undefined : this.deps.box.seal(input.api_key, `${name}:api_key`),
      headers_sealed: input.headers === undefined || Object.keys(input.headers).length === 0 ? undefined : this.deps.box.seal(JSON.stringify(input.headers), `${name}:headers`),
      models: input.models ?? [],
      embedding_model: input.embedding_model,
      ...(input.timeout_ms !== undefined ? { timeout_ms: input.timeout_ms } : {}),
      ...(input.max_retries !== undefined ? { max_retries: input.max_retries } : {}),
      ...(input.retry_initial_ms !== undefined ? { retry_initial_ms: input.retry_initial_ms } : {}),
      ...(input.retry_max_ms !== undefined ? { retry_max_ms: input.retry_max_ms } : {}),
      ...(input.max_concurrent_requests !== undefined ? { max_concurrent_requests: input.max_concurrent_requests } : {}),
      ...(input.max_queued_requests !== undefined ? { max_queued_requests: input.max_queued_requests } : {}),
      pricing: input.pricing ?? {},
      ...(input.responses_api !== undefined ? { responses_api: input.responses_api } : {}),
      created_at: stored?.created_at ?? now,
      updated_at: now,
    };
    await this.deps.repo.put(record);
    const settings = this.open(record);
    if (existing) existing.client.reconfigure(settings);
    else this.add(settings, 'api');
    return { created: existing === undefined };
  }

  /**
   * Removes the managed provider `name`; false when there is none.
   * @throws GatewayError CONFLICT for a config-file provider.
   */
  async remove(name: string): Promise<boolean> {
    const existing = this.providers.get(name);
    if (existing?.source === 'config') throw new GatewayError('CONFLICT', `Provider ${name} comes from the config file; remove it there`, { provider: name });
    const deleted = await this.deps.repo.delete(name);
    if (existing) {
      existing.client.dispose();
      this.providers.delete(name);
    }
    return deleted || existing !== undefined;
  }

  private add(settings: ProviderSettings, source: ProviderSource): void {
    this.providers.set(settings.name, { client: new OpenAiProvider(settings, this.deps.observe, this.deps.fetchImpl), source });
  }

  /** Settings of a stored record, secrets opened. @throws SecretBoxError with the wrong key. */
  private open(r: StoredProvider): ProviderSettings {
    const headers = r.headers_sealed === undefined ? {} : (JSON.parse(this.deps.box.open(r.headers_sealed, `${r.name}:headers`)) as Record<string, string>);
    return withDefaults(
      {
        name: r.name,
        base_url: r.base_url,
        api_key: r.api_key_sealed === undefined ? undefined : this.deps.box.open(r.api_key_sealed, `${r.name}:api_key`),
        headers,
        models: r.models,
        embedding_model: r.embedding_model,
        pricing: r.pricing,
        responses_api: r.responses_api ?? 'responses',
      },
      r,
    );
  }
}
