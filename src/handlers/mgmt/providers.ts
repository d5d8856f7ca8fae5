/**
 * Management of model providers (admins only, like the other `/api/*` management routes):
 *
 * - `GET /api/providers` → `{providers:[…]}`, each without secrets (`has_api_key`, `header_names`)
 *   and with its health;
 * - `GET /api/providers/:name` → one provider;
 * - `PUT /api/providers/:name` `{base_url, api_key?, headers?, models?, embedding_model?,
 *   timeout_ms?, max_retries?, retry_initial_ms?, retry_max_ms?, max_concurrent_requests?,
 *   max_queued_requests?, pricing?}` creates (201) or replaces (200) a provider; the API key and
 *   headers are stored sealed with AES-256-GCM and never answered back;
 * - `DELETE /api/providers/:name` → `{"status":"deleted"}`.
 *
 * Providers from the config file are listed (`source: "config"`) but changed only in the file
 * (409 CONFLICT here).
 */
import * as t from 'io-ts';
import { GatewayError } from '../../base/errors.js';
import { decodeBody } from '../../codecs/schema.js';
import { ModelPriceConfig, NonNegativeInt, PositiveInt, ProviderName } from '../../config/schema.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { EventBus } from '../../streams/events.js';
import { ok, type RestRouter } from '../rest/router.js';

export const ProviderBody = t.exact(
  t.intersection([
    t.type({ base_url: t.string }),
    t.partial({
      api_key: t.string,
      headers: t.record(t.string, t.string),
      models: t.array(t.string),
      embedding_model: t.string,
      timeout_ms: PositiveInt,
      max_retries: NonNegativeInt,
      retry_initial_ms: PositiveInt,
      retry_max_ms: PositiveInt,
      max_concurrent_requests: PositiveInt,
      max_queued_requests: NonNegativeInt,
      pricing: t.record(t.string, ModelPriceConfig),
      responses_api: t.keyof({ responses: null, chat_completions: null }),
    }),
  ]),
  'ProviderBody',
);

export class ProviderAdmin {
  constructor(
    private readonly registry: ProviderRegistry,
    private readonly bus: EventBus,
  ) {}

  register(router: RestRouter): void {
    const notFound = (name: string): GatewayError => new GatewayError('NOT_FOUND', `No model provider named ${name}`, { provider: name });
    router.on('GET', '/api/providers', () => ok({ providers: this.registry.list().map((p) => this.registry.describe(p.client.name)) }), {
      summary: 'List model providers (no secrets)',
      tag: 'providers',
      access: 'admin',
      responses: { 200: { description: '`{providers:[…]}`' } },
    });
    router.on(
      'GET',
      '/api/providers/:name',
      (req) => {
        const name = req.params['name'] ?? '';
        const d = this.registry.describe(name);
        if (!d) throw notFound(name);
        return ok(d);
      },
      { summary: 'One model provider (no secrets)', tag: 'providers', access: 'admin', responses: { 200: { description: 'The provider' }, 404: { description: 'No such provider' } } },
    );
    router.on(
      'PUT',
      '/api/providers/:name',
      async (req) => {
        const name = req.params['name'] ?? '';
        if (!ProviderName.is(name) || name === 'local') {
          throw new GatewayError('VALIDATION_ERROR', 'Provider names are 1..64 of A-Z a-z 0-9 _ -, not starting with a digit or -, and not "local"', { problems: [`name: ${JSON.stringify(name)}`] });
        }
        const body = decodeBody(ProviderBody, req.body ?? {});
        let url: URL;
        try {
          url = new URL(body.base_url);
        } catch {
          throw new GatewayError('VALIDATION_ERROR', 'base_url is not a URL', { problems: ['base_url: expected an http(s) URL'] });
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new GatewayError('VALIDATION_ERROR', 'base_url must be http or https', { problems: ['base_url: expected an http(s) URL'] });
        const { created } = await this.registry.put(name, body);
        this.bus.publish({ event_type: 'StoreChanged', tags: ['model_providers'] });
        return ok(this.registry.describe(name), created ? 201 : 200);
      },
      { summary: 'Create or replace a model provider (secrets stored encrypted)', tag: 'providers', access: 'admin', body: ProviderBody, responses: { 200: { description: 'Replaced' }, 201: { description: 'Created' }, 400: { description: 'Invalid body' }, 409: { description: 'A config-file provider' } } },
    );
    router.on(
      'DELETE',
      '/api/providers/:name',
      async (req) => {
        const name = req.params['name'] ?? '';
        if (!(await this.registry.remove(name))) throw notFound(name);
        this.bus.publish({ event_type: 'StoreChanged', tags: ['model_providers'] });
        return ok({ status: 'deleted' });
      },
      { summary: 'Delete a model provider', tag: 'providers', access: 'admin', responses: { 200: { description: '`{"status":"deleted"}`' }, 404: { description: 'No such provider' }, 409: { description: 'A config-file provider' } } },
    );
  }
}
