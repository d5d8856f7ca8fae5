/** Signed GitHub webhooks at `POST /api/webhooks/github` (issue 9). STUB: being written. */
import type { Logger } from '../log/logger.js';
import type { Store } from '../store/open.js';
import type { EventBus } from '../streams/events.js';
import type { RestRouter } from './rest/router.js';

export interface GitHubWebhooksDeps {
  /** The configured secret; undefined → every delivery is answered 503 NOT_CONFIGURED. */
  readonly secret: string | undefined;
  /** Delivery ids remembered for replay detection. */
  readonly maxRememberedDeliveries: number;
  readonly store: Store;
  readonly bus: EventBus;
  readonly log: Logger;
}

export class GitHubWebhooks {
  constructor(readonly deps: GitHubWebhooksDeps) {}

  /** Loads remembered delivery ids. */
  async init(): Promise<void> {}

  register(_router: RestRouter): void {}
}
