/** Relationships over `/api/v1/relationships` (issue 9). STUB: being written; see contracts.ts. */
import { GatewayError } from '../../codecs/errors.js';
import type { Logger } from '../../log/logger.js';
import type { BatchOp } from '../../store/batcher.js';
import type { EventBus } from '../../streams/events.js';
import type { RelationshipRecord, V1Store } from '../../store/v1-records.js';
import type { V1Api } from './api.js';
import type { Relationships } from './contracts.js';

export interface RelationshipRoutesDeps {
  readonly repos: V1Store;
  readonly bus: EventBus;
  readonly log: Logger;
}

export class RelationshipRoutes implements Relationships {
  constructor(readonly deps: RelationshipRoutesDeps) {}

  register(_api: V1Api): void {}

  create(_tenant: string, _input: Parameters<Relationships['create']>[1]): Promise<RelationshipRecord> {
    return Promise.reject(new GatewayError('INTERNAL_ERROR', 'not implemented yet'));
  }

  opsDeleting(_tenant: string, _id: string): Promise<BatchOp[]> {
    return Promise.resolve([]);
  }
}
