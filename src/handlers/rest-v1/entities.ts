/** Agents and models over `/api/v1/agents*`, `/api/v1/models*` (issue 9). STUB: being written. */
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import type { V1Store } from '../../store/v1-records.js';
import type { V1Api } from './api.js';
import type { Relationships } from './contracts.js';

export interface EntityRoutesDeps {
  readonly repos: V1Store;
  readonly relationships: Relationships;
  readonly bus: EventBus;
  readonly log: Logger;
}

export class EntityRoutes {
  constructor(readonly deps: EntityRoutesDeps) {}

  register(_api: V1Api): void {}
}
