/** Contexts over `/api/v1/mcp/context*` (issue 9). STUB: being written; see contracts.ts. */
import { GatewayError } from '../../codecs/errors.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import type { ContextMessage, V1Store } from '../../store/v1-records.js';
import type { V1Api } from './api.js';
import type { Contexts, Relationships } from './contracts.js';

export interface ContextRoutesDeps {
  readonly repos: V1Store;
  readonly relationships: Relationships;
  readonly bus: EventBus;
  readonly log: Logger;
}

export class ContextRoutes implements Contexts {
  constructor(private readonly deps: ContextRoutesDeps) {}

  /** Builds the search index from the stored contexts. */
  async init(): Promise<void> {}

  register(_api: V1Api): void {}

  async append(tenant: string, id: string, _messages: readonly Pick<ContextMessage, 'role' | 'content'>[]): Promise<void> {
    if (!(await this.exists(tenant, id))) throw new GatewayError('NOT_FOUND', 'Context not found', { id });
  }

  async exists(tenant: string, id: string): Promise<boolean> {
    return (await this.deps.repos.contexts.get(tenant, id)) !== undefined;
  }
}
