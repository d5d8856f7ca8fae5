/**
 * The REST `/api/v1` surface, put together: contexts, agents, models, relationships,
 * tools and actions over MCP, and `GET /api/v1/` listing what is served.
 */
import type { RequestAuth } from '../../base/access.js';
import type { Logger } from '../../log/logger.js';
import type { Store } from '../../store/open.js';
import { openV1Store, type V1Store } from '../../store/v1-records.js';
import type { EventBus } from '../../streams/events.js';
import type { UpstreamManager } from '../../upstreams/manager.js';
import { ok, type RestRouter } from '../rest/router.js';
import { V1Api } from '../rest/v1-api.js';
import { ContextRoutes } from './contexts.js';
import { EntityRoutes } from './entities.js';
import { RelationshipRoutes } from './relationships.js';
import { ToolRoutes } from './tools.js';

export interface V1Deps {
  readonly store: Store;
  readonly manager: UpstreamManager;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly admitToolExecution: (auth: RequestAuth | undefined) => Promise<void>;
  /** Live status of agents on `/ws` (the orchestrator), shown in the agent routes. */
  readonly agentStatus?: (tenant: string, id: string) => 'available' | 'busy' | 'offline' | undefined;
}

/**
 * Registers every v1 route on `router`; resolves once the context search index is built, with the
 * v1 API and repositories (for the routes other modules add, e.g. tasks).
 */
export async function registerV1(router: RestRouter, deps: V1Deps): Promise<{ api: V1Api; repos: V1Store }> {
  const repos = openV1Store(deps.store);
  const api = new V1Api(router);
  const log = deps.log.child({ component: 'rest-v1' });
  const relationships = new RelationshipRoutes({ repos, bus: deps.bus, log });
  const contexts = new ContextRoutes({ repos, relationships, bus: deps.bus, log });
  await contexts.init();
  api.on(
    'GET',
    '/api/v1',
    {
      summary: 'API version and the v1 routes served',
      tag: 'v1',
      responses: { 200: { description: '`{"version":"v1","status":"operational","apis":[...]}`' } },
    },
    () =>
      ok({
        version: 'v1',
        status: 'operational',
        apis: router.table
          .entries()
          .filter((r) => r.spec.doc !== undefined && r.spec.path.startsWith('/api/v1/'))
          .map((r) => `${r.spec.method} ${r.spec.path}`),
      }),
  );
  contexts.register(api);
  new EntityRoutes({ repos, relationships, bus: deps.bus, log, ...(deps.agentStatus ? { agentStatus: deps.agentStatus } : {}) }).register(api);
  relationships.register(api);
  new ToolRoutes({ manager: deps.manager, bus: deps.bus, contexts, relationships, admitToolExecution: deps.admitToolExecution, log }).register(api);
  return { api, repos };
}
