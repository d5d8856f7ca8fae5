/**
 * Prometheus metrics of model providers (prom-client), registered on the gateway's registry:
 * requests by provider, model, operation and outcome; latency; tokens in and out; cost in USD;
 * retries; and the circuit state read at scrape time. Model names are label values, bounded by
 * what the providers are asked for (the registry refuses unknown providers before a request).
 */
import client from 'prom-client';
import type { ProviderObservation } from './openai-client.js';

const PREFIX = 'tributary_';
const CIRCUIT = ['closed', 'open', 'half_open'] as const;
/** Distinct model label values kept before further ones are counted as `other`. */
const MAX_MODELS = 200;

export class ProviderMetrics {
  private readonly requests: client.Counter<'provider' | 'model' | 'operation' | 'outcome'>;
  private readonly duration: client.Histogram<'provider' | 'operation'>;
  private readonly tokens: client.Counter<'provider' | 'model' | 'direction'>;
  private readonly cost: client.Counter<'provider' | 'model'>;
  private readonly retries: client.Counter<'provider'>;
  private readonly models = new Set<string>();

  constructor(registry: client.Registry, circuits: () => Iterable<{ readonly provider: string; readonly state: string }>) {
    const registers = [registry];
    this.requests = new client.Counter({ name: `${PREFIX}model_requests_total`, help: 'Model provider requests, by provider, model, operation and outcome (ok or the error code).', labelNames: ['provider', 'model', 'operation', 'outcome'], registers });
    this.duration = new client.Histogram({
      name: `${PREFIX}model_request_duration_seconds`,
      help: 'Model provider request latency in seconds (streams: until the last event), by provider and operation.',
      labelNames: ['provider', 'operation'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.tokens = new client.Counter({ name: `${PREFIX}model_tokens_total`, help: 'Tokens reported by model providers, by provider, model and direction (input, output).', labelNames: ['provider', 'model', 'direction'], registers });
    this.cost = new client.Counter({ name: `${PREFIX}model_cost_usd_total`, help: 'Cost of model provider requests in USD (configured prices), by provider and model.', labelNames: ['provider', 'model'], registers });
    this.retries = new client.Counter({ name: `${PREFIX}model_retries_total`, help: 'Retried model provider requests (429, 5xx, timeouts), by provider.', labelNames: ['provider'], registers });
    new client.Gauge({
      name: `${PREFIX}model_provider_circuit_state`,
      help: 'Circuit breaker state of each model provider (1 for the current state).',
      labelNames: ['provider', 'state'],
      registers,
      collect() {
        this.reset();
        for (const c of circuits()) for (const s of CIRCUIT) this.set({ provider: c.provider, state: s }, c.state === s ? 1 : 0);
      },
    });
  }

  /** Records one finished provider request. */
  readonly observe = (o: ProviderObservation): void => {
    let model = o.model;
    if (!this.models.has(model)) {
      if (this.models.size >= MAX_MODELS) model = 'other';
      else this.models.add(model);
    }
    this.requests.inc({ provider: o.provider, model, operation: o.operation, outcome: o.outcome });
    this.duration.observe({ provider: o.provider, operation: o.operation }, o.seconds);
    if (o.input_tokens > 0) this.tokens.inc({ provider: o.provider, model, direction: 'input' }, o.input_tokens);
    if (o.output_tokens > 0) this.tokens.inc({ provider: o.provider, model, direction: 'output' }, o.output_tokens);
    if (o.cost_usd > 0) this.cost.inc({ provider: o.provider, model }, o.cost_usd);
    if (o.retries > 0) this.retries.inc({ provider: o.provider }, o.retries);
  };
}
