/** Agent orchestration over `/ws` (issue 10). STUB: being written. */
import type { GatewayConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { Store } from '../../store/open.js';
import type { V1Store } from '../../store/v1-records.js';
import type { EventBus } from '../../streams/events.js';
import type { WsMethodHost, WsPeer } from '../../streams/ws-methods.js';
import type { V1Api } from '../rest-v1/api.js';

export interface OrchestratorDeps {
  readonly repos: V1Store;
  readonly store: Store;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly config: GatewayConfig['orchestration'];
}

export class Orchestrator implements WsMethodHost {
  constructor(readonly deps: OrchestratorDeps) {}

  /** Loads persisted tasks (those held by agents that are gone go back to the queue). */
  async init(): Promise<void> {}

  /** `GET /api/v1/tasks`, `GET /api/v1/tasks/:id`. */
  register(_api: V1Api): void {}

  handles(method: string): boolean {
    return method.startsWith('agent.') || method.startsWith('task.');
  }

  call(_peer: WsPeer, method: string): Promise<unknown> {
    return Promise.reject(new Error(`${method}: not implemented yet`));
  }

  closed(_peer: WsPeer): void {}

  /** Stops timers. */
  dispose(): void {}
}
