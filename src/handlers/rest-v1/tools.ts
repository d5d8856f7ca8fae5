/** Tools and actions over MCP at `/api/v1/tools*` (issue 9). STUB: being written. */
import type { RequestAuth } from '../../auth/access.js';
import type { Logger } from '../../log/logger.js';
import type { EventBus } from '../../streams/events.js';
import type { UpstreamManager } from '../../upstreams/manager.js';
import type { V1Api } from './api.js';
import type { Contexts, Relationships } from './contracts.js';

export interface ToolRoutesDeps {
  readonly manager: UpstreamManager;
  readonly bus: EventBus;
  readonly contexts: Contexts;
  readonly relationships: Relationships;
  /** Counts a tool execution against the caller's limit; throws RATE_LIMITED over it. */
  readonly admitToolExecution: (auth: RequestAuth | undefined) => Promise<void>;
  readonly log: Logger;
}

export class ToolRoutes {
  constructor(readonly deps: ToolRoutesDeps) {}

  register(_api: V1Api): void {}
}
