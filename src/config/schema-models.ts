/** Model provider codecs (OpenAI-compatible providers, embeddings, the Responses API socket). */
import * as t from 'io-ts';
import { NonNegativeInt, PositiveInt } from './schema-primitives.js';
import { CircuitBreakerConfig } from './schema-upstreams.js';

/** Price of one model, USD per million tokens (for the cost figures). */
export const ModelPriceConfig = t.exact(t.type({ input_per_mtok: t.number, output_per_mtok: t.number }));

export interface ProviderNameBrand {
  readonly ProviderName: unique symbol;
}
/** Provider names: ASCII letters, digits, `_` and `-`, 1..64, not starting with a digit or `-`. */
export const ProviderName = t.brand(
  t.string,
  (s): s is t.Branded<string, ProviderNameBrand> => /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(s),
  'ProviderName',
);

/** One OpenAI-compatible model provider (OpenAI, Azure OpenAI, vLLM, llama.cpp server, Ollama, ...). */
export const ModelProviderConfig = t.exact(
  t.intersection([
    t.type({
      name: ProviderName,
      /** Base URL the OpenAI paths are appended to, e.g. `https://api.openai.com/v1`. */
      base_url: t.string,
    }),
    t.partial({
      /** API key in clear in the file (prefer `api_key_env`). */
      api_key: t.string,
      /** Name of the environment variable holding the API key. */
      api_key_env: t.string,
      /** Extra request headers (Azure `api-key`, `OpenAI-Organization`, ...). */
      headers: t.record(t.string, t.string),
      /** Model names served, so a bare model name resolves to this provider. */
      models: t.array(t.string),
      /** Model used for embeddings when a caller names only this provider. */
      embedding_model: t.string,
      /** Per-attempt timeout until the answer's headers, and the longest silence inside a stream, ms (default 60000). */
      timeout_ms: PositiveInt,
      /** Retries of 429, 408, 409, 5xx and connection failures (default 2). */
      max_retries: NonNegativeInt,
      /** First backoff delay when the provider sends no retry-after, ms (default 500). */
      retry_initial_ms: PositiveInt,
      /** Longest wait before a retry, ms (default 10000); a longer retry-after is not waited for. */
      retry_max_ms: PositiveInt,
      /** Requests in flight at once (default 16). */
      max_concurrent_requests: PositiveInt,
      /** Requests waiting for a slot before "upstream overloaded" (default 64). */
      max_queued_requests: NonNegativeInt,
      circuit_breaker: CircuitBreakerConfig,
      /** Prices by model name. */
      pricing: t.record(t.string, ModelPriceConfig),
      /** How `/v1/responses` talks to it: `responses` (its own `/responses`, default) or `chat_completions` (translated). */
      responses_api: t.keyof({ responses: null, chat_completions: null }),
    }),
  ]),
);
export type ModelProviderConfig = t.TypeOf<typeof ModelProviderConfig>;

/** Model providers: the configured ones, and the key sealing API-managed providers' secrets. */
export const ModelProvidersConfig = t.exact(
  t.partial({
    providers: t.array(ModelProviderConfig),
    /** Base64 of 32 bytes (AES-256-GCM key for stored API keys); env TRIBUTARY_PROVIDER_KEY overrides; unset: a key file in data_dir. */
    encryption_key: t.string,
    /** Provider of bare model names no provider lists (default: the first configured provider). */
    default_provider: t.string,
  }),
);

/** Embeddings (`/api/v1/embeddings*`). */
export const EmbeddingsConfig = t.exact(
  t.partial({
    /** Vectors stored per tenant before new ones are refused (default 200000). */
    max_vectors_per_tenant: PositiveInt,
    /** Largest `limit` of a search (default 100). */
    max_search_limit: PositiveInt,
    /** Largest text embedded, characters (default 32768). */
    max_text_chars: PositiveInt,
    /** Texts in one generate request (default 256). */
    max_batch: PositiveInt,
  }),
);

/** The Responses API WebSocket (`/v1/responses`). */
export const ResponsesConfig = t.exact(
  t.partial({
    /** Model ↔ MCP tool round trips of one response before it ends `incomplete` (default 8). */
    max_tool_rounds: PositiveInt,
    /** Responses in flight on one connection (default 8). */
    max_in_flight: PositiveInt,
    /** MCP tools offered to the model at most (default 128). */
    max_tools: PositiveInt,
    /** Finished responses remembered per connection for `previous_response_id` (default 64). */
    max_remembered: PositiveInt,
  }),
);
