/** Collaborative workspaces over `/ws` (issue 10). STUB: being written. */
import type { GatewayConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { Store } from '../../store/open.js';
import type { EventBus } from '../../streams/events.js';
import type { WsMethodHost, WsPeer } from '../../streams/ws-methods.js';

export interface WorkspaceHubDeps {
  readonly store: Store;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly config: GatewayConfig['workspaces'];
}

const METHODS = new Set(['cursor.position', 'selection.change']);

export class WorkspaceHub implements WsMethodHost {
  constructor(readonly deps: WorkspaceHubDeps) {}

  /** Prepares persisted documents (loaded lazily or at start). */
  async init(): Promise<void> {}

  handles(method: string): boolean {
    return method.startsWith('workspace.') || method.startsWith('document.') || METHODS.has(method);
  }

  call(_peer: WsPeer, method: string): Promise<unknown> {
    return Promise.reject(new Error(`${method}: not implemented yet`));
  }

  closed(_peer: WsPeer): void {}

  /** Stops timers, flushes pending document writes. */
  async dispose(): Promise<void> {}
}
