/**
 * Signed GitHub webhooks at `POST /api/webhooks/github` (developer-mesh
 * API reference "Webhooks", https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md; GitHub docs "Validating webhook
 * deliveries").
 *
 * The route is open to callers without keys (the access gate lets it through): a delivery is
 * authenticated by `X-Hub-Signature-256`, the HMAC-SHA256 of the raw body under the configured
 * secret, checked with `@octokit/webhooks-methods` `verify` (constant-time comparison).
 *
 * Order of checks, first failure answers:
 * 1. (router) path and method; a non-empty body must be `Content-Type: application/json` (415
 *    `UNSUPPORTED_MEDIA_TYPE`) and valid JSON (400 `INVALID_JSON`); a body over the server's
 *    `server.max_body_bytes` (4 MiB by default) is refused with 413 before any handler runs;
 * 2. no secret configured → 503 `NOT_CONFIGURED`;
 * 3. `X-GitHub-Event` / `X-GitHub-Delivery` missing or malformed → 400 `VALIDATION_ERROR`
 *    (details name the headers);
 * 4. `X-Hub-Signature-256` missing or not `sha256=<64 lower-case hex>` → 401 `INVALID_SIGNATURE`;
 * 5. empty body or a body that is not UTF-8 → 400 `VALIDATION_ERROR`;
 * 6. signature does not match the raw body → 401 `INVALID_SIGNATURE`;
 * 7. the signed payload is not a JSON object → 400 `VALIDATION_ERROR`;
 * 8. delivery id seen before → 200 `{"status":"accepted","message":"Webhook already processed",
 *    "duplicate":true}`, nothing published;
 * 9. otherwise the id is stored (durably, before the answer), one `GitHubWebhookReceived` event is
 *    published, and the answer is 200 `{"status":"accepted","message":"Webhook processed successfully"}`.
 *    A store failure there → 503 `STORE_UNAVAILABLE` and nothing published (the delivery can be
 *    redelivered).
 *
 * Body limit: GitHub caps payloads at 25 MB; this route uses the server-wide body limit
 * (`server.max_body_bytes`) rather than a smaller one of its own, so raise that limit for
 * repositories whose push payloads are larger. Only `application/json` deliveries are accepted
 * (configure the GitHub webhook's content type accordingly; form-encoded deliveries get 415).
 *
 * Neither the secret nor the signature is ever logged.
 */
import * as t from 'io-ts';
import { verify } from '@octokit/webhooks-methods';
import { GatewayError } from '../base/errors.js';
import type { Logger } from '../log/logger.js';
import { delOp, putOp } from '../store/batcher.js';
import type { Sublevel } from '../store/db.js';
import type { Store } from '../store/open.js';
import type { EventBus } from '../streams/events.js';
import { ok, type RestReply, type RestRequest, type RestRouter } from './rest/router.js';

/** Path of the GitHub webhook receiver. */
export const GITHUB_WEBHOOK_PATH = '/api/webhooks/github';

/** LevelDB sublevel holding remembered delivery ids (key = `X-GitHub-Delivery`). */
export const DELIVERY_SUBLEVEL = 'webhook_deliveries';

/** A remembered delivery, as stored in {@link DELIVERY_SUBLEVEL}. */
export interface RememberedDelivery {
  /** When the delivery was accepted, ISO-8601 UTC. Oldest entries are dropped first. */
  readonly received_at: string;
  /** Its `X-GitHub-Event`. */
  readonly event: string;
}

/** The 200 answer: a processed delivery, or (with `duplicate: true`) an acknowledged replay. */
export const WebhookAccepted = t.intersection([
  t.type({ status: t.literal('accepted'), message: t.string }),
  t.partial({ duplicate: t.literal(true) }),
]);
/** The 200 answer body, decoded form of {@link WebhookAccepted}. */
export type WebhookAccepted = t.TypeOf<typeof WebhookAccepted>;

const PROCESSED: WebhookAccepted = { status: 'accepted', message: 'Webhook processed successfully' };
const DUPLICATE: WebhookAccepted = { status: 'accepted', message: 'Webhook already processed', duplicate: true };

/** GitHub event names: `push`, `pull_request`, `ping`, ... */
const EVENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** GitHub sends a GUID; anything token-like up to 128 characters is accepted. */
const DELIVERY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** What GitHub sends: `sha256=` and the lower-case hex HMAC-SHA256 digest. */
const SIGNATURE = /^sha256=[0-9a-f]{64}$/;

/** Decodes bytes as UTF-8 without loss: invalid sequences throw, a BOM is kept. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface GitHubWebhooksDeps {
  /** The configured secret; undefined (or empty) → every delivery is answered 503 NOT_CONFIGURED. */
  readonly secret: string | undefined;
  /** Most delivery ids remembered for replay detection (≥ 1); beyond it the oldest are forgotten. */
  readonly maxRememberedDeliveries: number;
  readonly store: Store;
  readonly bus: EventBus;
  readonly log: Logger;
}

/**
 * The GitHub webhook receiver. Lifetime: construct, {@link register} on the REST router, then
 * {@link init} before the server listens (it loads the remembered delivery ids). Deliveries
 * arriving before `init` has finished would not see ids remembered by an earlier run.
 */
export class GitHubWebhooks {
  private readonly deliveries: Sublevel<RememberedDelivery>;
  /** Remembered delivery id → received_at (ms), oldest first (Map insertion order). */
  private readonly remembered = new Map<string, number>();
  /** Delivery ids being stored now → settles with whether that delivery was processed. */
  private readonly inFlight = new Map<string, Promise<boolean>>();

  constructor(readonly deps: GitHubWebhooksDeps) {
    this.deliveries = deps.store.sublevel<RememberedDelivery>(DELIVERY_SUBLEVEL);
  }

  /**
   * Loads remembered delivery ids from {@link DELIVERY_SUBLEVEL} into the in-memory index, oldest
   * first (by `received_at`, then id), and deletes the oldest beyond `maxRememberedDeliveries`
   * (e.g. after the limit was lowered). Rejects with the store's error when LevelDB fails.
   */
  async init(): Promise<void> {
    const loaded: { id: string; at: number }[] = [];
    for await (const [id, value] of this.deliveries.iterator()) {
      const at = Date.parse(typeof value?.received_at === 'string' ? value.received_at : '');
      loaded.push({ id, at: Number.isFinite(at) ? at : 0 });
    }
    loaded.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const excess = Math.max(0, loaded.length - this.deps.maxRememberedDeliveries);
    if (excess > 0) await this.deps.store.writer.writeAll(loaded.slice(0, excess).map((d) => delOp(this.deliveries, d.id)));
    for (const d of loaded.slice(excess)) this.remembered.set(d.id, d.at);
    this.deps.log.debug('webhook deliveries loaded', { remembered: this.remembered.size, dropped: excess });
  }

  /** Number of delivery ids remembered now (for tests and diagnostics). */
  get rememberedCount(): number {
    return this.remembered.size;
  }

  /** Registers `POST /api/webhooks/github` (access `signature`, tag `webhooks`). */
  register(router: RestRouter): void {
    router.on('POST', GITHUB_WEBHOOK_PATH, (req) => this.receive(req), {
      summary: 'Receive a GitHub webhook delivery (signed with X-Hub-Signature-256; replays acknowledged, not processed twice)',
      tag: 'webhooks',
      access: 'signature',
      headers: ['githubEvent', 'githubDelivery', 'hubSignature256'],
      body: t.UnknownRecord,
      responses: {
        200: { description: 'Accepted: processed now, or (`duplicate: true`) already processed earlier', schema: WebhookAccepted },
        400: { description: 'Missing or malformed X-GitHub-Event / X-GitHub-Delivery, empty or non-object payload, invalid JSON' },
        401: { description: 'X-Hub-Signature-256 missing, malformed or not matching the body (INVALID_SIGNATURE)' },
        413: { description: 'Body over the server body limit (server.max_body_bytes)' },
        415: { description: 'Content-Type is not application/json' },
        503: { description: 'No webhook secret configured (NOT_CONFIGURED), or the store failed (STORE_UNAVAILABLE)' },
      },
    });
  }

  private async receive(req: RestRequest): Promise<RestReply> {
    const { secret, log } = this.deps;
    if (secret === undefined || secret === '') {
      throw new GatewayError('NOT_CONFIGURED', 'GitHub webhooks are not configured: set webhooks.github_secret or TRIBUTARY_GITHUB_WEBHOOK_SECRET');
    }
    const h = req.input.headers;
    const githubEvent = h.githubEvent.trim();
    const deliveryId = h.githubDelivery.trim();
    checkHeaders(githubEvent, deliveryId);

    const signature = h.hubSignature256.trim();
    if (signature === '') throw invalidSignature('X-Hub-Signature-256 header is missing', 'missing');
    if (!SIGNATURE.test(signature)) throw invalidSignature('X-Hub-Signature-256 must be sha256=<64 lower-case hex digits>', 'malformed');

    const raw = req.input.body;
    if (raw === undefined || raw.length === 0) {
      throw new GatewayError('VALIDATION_ERROR', 'A webhook delivery needs a JSON payload', { problems: ['body: required'] });
    }
    // the library signs strings: decode without loss so the HMAC covers exactly the bytes received
    let payload: string;
    try {
      payload = utf8.decode(raw);
    } catch {
      throw new GatewayError('VALIDATION_ERROR', 'Webhook payload is not valid UTF-8', { problems: ['body: not valid UTF-8'] });
    }
    if (!(await verify(secret, payload, signature))) {
      log.warn('github webhook refused: signature mismatch', { github_event: githubEvent, delivery_id: deliveryId, bytes: raw.length });
      throw invalidSignature('X-Hub-Signature-256 does not match the payload', 'mismatch');
    }

    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new GatewayError('VALIDATION_ERROR', 'Webhook payload must be a JSON object', { problems: ['body: must be an object'] });
    }
    const record = body as Record<string, unknown>;
    const repo = record['repository'];
    const fullName = typeof repo === 'object' && repo !== null ? (repo as Record<string, unknown>)['full_name'] : undefined;
    const repository = typeof fullName === 'string' ? fullName : null;
    const action = typeof record['action'] === 'string' ? record['action'] : null;

    const fresh = await this.rememberOnce(deliveryId, githubEvent, () => {
      this.deps.bus.publish({ event_type: 'GitHubWebhookReceived', github_event: githubEvent, delivery_id: deliveryId, repository, action });
    });
    if (!fresh) {
      log.info('github webhook replay acknowledged', { github_event: githubEvent, delivery_id: deliveryId });
      return ok(DUPLICATE);
    }
    log.info('github webhook accepted', { github_event: githubEvent, delivery_id: deliveryId, repository, action, bytes: raw.length });
    return ok(PROCESSED);
  }

  /**
   * Check-and-remember for one delivery id, serialized per id: returns false for an id already
   * remembered (or processed by a concurrent request meanwhile); otherwise stores it durably,
   * runs `process` (synchronously, right after the commit) and returns true. When the store
   * write fails, `process` does not run, the id is not remembered, a concurrent request with the
   * same id tries again itself, and this one rejects with `STORE_UNAVAILABLE`.
   */
  private async rememberOnce(id: string, event: string, process: () => void): Promise<boolean> {
    for (;;) {
      const pending = this.inFlight.get(id);
      if (pending === undefined) break;
      if (await pending) return false;
    }
    if (this.remembered.has(id)) return false;
    const now = Date.now();
    const stored = this.deps.store.writer.writeAll([putOp(this.deliveries, id, { received_at: new Date(now).toISOString(), event })]);
    const settled = stored.then(
      () => true,
      () => false,
    );
    this.inFlight.set(id, settled);
    try {
      await stored;
    } catch (err) {
      this.deps.log.error('github webhook delivery id not stored', { delivery_id: id, error: err });
      throw new GatewayError('STORE_UNAVAILABLE', 'The delivery could not be recorded; it was not processed, redeliver it later');
    } finally {
      this.inFlight.delete(id);
    }
    this.remembered.set(id, now);
    process();
    this.forgetOldest();
    return true;
  }

  /** Drops the oldest remembered ids beyond the limit, from memory now and from LevelDB soon. */
  private forgetOldest(): void {
    const excess = this.remembered.size - this.deps.maxRememberedDeliveries;
    if (excess <= 0) return;
    const dropped: string[] = [];
    for (const id of this.remembered.keys()) {
      if (dropped.length >= excess) break;
      dropped.push(id);
    }
    for (const id of dropped) this.remembered.delete(id);
    // a failed delete only leaves stale ids in LevelDB; the next init() trims them
    this.deps.store.writer
      .writeAll(dropped.map((id) => delOp(this.deliveries, id)))
      .catch((err: unknown) => this.deps.log.warn('old webhook delivery ids not deleted', { count: dropped.length, error: err }));
  }
}

function checkHeaders(githubEvent: string, deliveryId: string): void {
  const missing: string[] = [];
  const problems: string[] = [];
  if (githubEvent === '') missing.push('X-GitHub-Event');
  else if (!EVENT_NAME.test(githubEvent)) problems.push('X-GitHub-Event: must be an event name (letters, digits, _ . -, at most 64)');
  if (deliveryId === '') missing.push('X-GitHub-Delivery');
  else if (!DELIVERY_ID.test(deliveryId)) problems.push('X-GitHub-Delivery: must be a delivery GUID (letters, digits, . _ : -, at most 128)');
  if (missing.length === 0 && problems.length === 0) return;
  const message = missing.length > 0 ? `Missing required header${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}` : 'Malformed GitHub webhook headers';
  throw new GatewayError('VALIDATION_ERROR', message, {
    ...(missing.length > 0 ? { missing_headers: missing } : {}),
    problems: [...missing.map((name) => `${name}: required`), ...problems],
  });
}

function invalidSignature(message: string, reason: 'missing' | 'malformed' | 'mismatch'): GatewayError {
  return new GatewayError('INVALID_SIGNATURE', message, { header: 'X-Hub-Signature-256', reason });
}
