/**
 * Signed GitHub webhooks (`POST /api/webhooks/github`) over real HTTP on a real gateway.
 * Signatures are computed here with node:crypto (HMAC-SHA256 over the raw body bytes), not with
 * the library the gateway verifies with.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { firstValueFrom, type Subscription } from 'rxjs';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { GitHubWebhooks } from '../src/handlers/webhooks.js';
import { RestRouter } from '../src/handlers/rest/router.js';
import { createLogger } from '../src/log/logger.js';
import { openStore, type Store } from '../src/store/open.js';
import { StoreError } from '../src/store/errors.js';
import { EventBus, type GatewayEvent } from '../src/streams/events.js';
import type { HttpHeaders, HttpInput } from '../src/base/http.js';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';

const SECRET = 'It\u2019s a Secret to Everybody \u2014 webhooks-test-4f1c';
const PATH = '/api/webhooks/github';

type WebhookEvent = Extract<GatewayEvent, { event_type: 'GitHubWebhookReceived' }>;

/** `sha256=<hex>` of `body` (its UTF-8 bytes) under `secret`, the way GitHub signs. */
function sign(body: string | Buffer, secret = SECRET, algorithm: 'sha256' | 'sha1' = 'sha256'): string {
  return `${algorithm}=${createHmac(algorithm, secret).update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body).digest('hex')}`;
}

interface Delivery {
  readonly event?: string | undefined;
  readonly delivery?: string | undefined;
  readonly signature?: string | undefined;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
}

/** POSTs `body` as a GitHub delivery; `undefined` header values are left out. */
function deliver(url: string, body: string | Buffer, d: Delivery = {}): ReturnType<typeof send> {
  const headers: Record<string, string> = { 'content-type': d.contentType ?? 'application/json', 'user-agent': 'GitHub-Hookshot/test', ...d.headers };
  if (d.event !== undefined) headers['x-github-event'] = d.event;
  if (d.delivery !== undefined) headers['x-github-delivery'] = d.delivery;
  if (d.signature !== undefined) headers['x-hub-signature-256'] = d.signature;
  return send(`${url}${PATH}`, { method: 'POST', headers, body });
}

/** A correctly signed delivery of `body` with a fresh id unless one is given. */
function signed(url: string, body: string, event = 'push', delivery: string = randomUUID()): ReturnType<typeof send> {
  return deliver(url, body, { event, delivery, signature: sign(body) });
}

/** Collects the webhook events published on `gw.bus` until `stop()`. */
function collect(gw: Gateway): { events: WebhookEvent[]; stop: () => void } {
  const events: WebhookEvent[] = [];
  const sub: Subscription = gw.bus.events$.subscribe((e) => {
    if (e.event_type === 'GitHubWebhookReceived') events.push(e);
  });
  return { events, stop: () => sub.unsubscribe() };
}

function errorCode(r: { json: unknown }): unknown {
  return (r.json as { code?: unknown } | undefined)?.code;
}

const PUSH = JSON.stringify({
  ref: 'refs/heads/main',
  repository: { name: 'hello-world', full_name: 'octocat/hello-world' },
  pusher: { name: 'octocat' },
});

describe('POST /api/webhooks/github with a secret configured', () => {
  let gw: TestGateway;
  let seen: ReturnType<typeof collect>;

  beforeAll(async () => {
    gw = await startTestGateway([], { max_body_bytes: 64 * 1024 }, { webhooks: { github_secret: SECRET } });
  });
  afterAll(async () => {
    await gw.stop();
  });
  beforeAll(() => {
    seen = collect(gw);
  });
  afterEach(() => {
    seen.events.length = 0;
  });
  afterAll(() => seen.stop());

  it('accepts a correctly signed push and publishes one GitHubWebhookReceived event', async () => {
    const id = randomUUID();
    const r = await signed(gw.url, PUSH, 'push', id);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'accepted', message: 'Webhook processed successfully' });
    expect(seen.events).toHaveLength(1);
    expect(seen.events[0]).toMatchObject({ event_type: 'GitHubWebhookReceived', github_event: 'push', delivery_id: id, repository: 'octocat/hello-world', action: null });
    expect(seen.events[0]?.seq).toBeGreaterThan(0);
    const line = gw.logs.find((l) => l.includes('github webhook accepted') && l.includes(id));
    expect(line).toBeDefined();
    expect(JSON.parse(line as string)).toMatchObject({ github_event: 'push', delivery_id: id, repository: 'octocat/hello-world' });
  });

  it('takes `action` and `repository.full_name` from the payload', async () => {
    const body = JSON.stringify({ action: 'opened', number: 7, repository: { full_name: 'acme/widgets' }, pull_request: { title: 'x' } });
    const r = await signed(gw.url, body, 'pull_request');
    expect(r.status).toBe(200);
    expect(seen.events).toEqual([expect.objectContaining({ github_event: 'pull_request', repository: 'acme/widgets', action: 'opened' })]);
  });

  it('accepts ping events like any other (repository and action null when absent)', async () => {
    const body = JSON.stringify({ zen: 'Design for failure.', hook_id: 42, hook: { type: 'Repository', events: ['push'] } });
    const r = await signed(gw.url, body, 'ping');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'accepted', message: 'Webhook processed successfully' });
    expect(seen.events).toEqual([expect.objectContaining({ github_event: 'ping', repository: null, action: null })]);
  });

  it('verifies the raw bytes as sent: odd spacing, key order and non-ASCII text are not re-serialized', async () => {
    const body = '{\n  "zen" : "Caf\u00e9 \u2713 \ud83d\ude80",   "repository":{"full_name":"o/r"} ,"action":"created"\n}\n';
    expect(JSON.stringify(JSON.parse(body))).not.toBe(body);
    const r = await signed(gw.url, body, 'issue_comment');
    expect(r.status).toBe(200);
    expect(seen.events).toEqual([expect.objectContaining({ github_event: 'issue_comment', repository: 'o/r', action: 'created' })]);
  });

  it('refuses a signature made with another secret → 401 INVALID_SIGNATURE, nothing published', async () => {
    const r = await deliver(gw.url, PUSH, { event: 'push', delivery: randomUUID(), signature: sign(PUSH, 'not-the-secret') });
    expect(r.status).toBe(401);
    expect(errorCode(r)).toBe('INVALID_SIGNATURE');
    expect(r.json).toMatchObject({ details: { header: 'X-Hub-Signature-256', reason: 'mismatch' } });
    expect(seen.events).toHaveLength(0);
  });

  it('refuses a signature over a different body → 401', async () => {
    const other = PUSH.replace('main', 'evil');
    const r = await deliver(gw.url, other, { event: 'push', delivery: randomUUID(), signature: sign(PUSH) });
    expect(r.status).toBe(401);
    expect(errorCode(r)).toBe('INVALID_SIGNATURE');
    expect(seen.events).toHaveLength(0);
  });

  it('refuses a missing signature → 401', async () => {
    const r = await deliver(gw.url, PUSH, { event: 'push', delivery: randomUUID() });
    expect(r.status).toBe(401);
    expect(errorCode(r)).toBe('INVALID_SIGNATURE');
    expect(r.json).toMatchObject({ details: { reason: 'missing' } });
    expect(seen.events).toHaveLength(0);
  });

  it('refuses a legacy sha1= signature (X-Hub-Signature style) and other malformed values → 401', async () => {
    const sha256Hex = sign(PUSH).slice('sha256='.length);
    for (const signature of [sign(PUSH, SECRET, 'sha1'), sha256Hex, `sha256=${sha256Hex.toUpperCase()}`, `sha256=${sha256Hex}00`, 'sha256=', 'garbage']) {
      const r = await deliver(gw.url, PUSH, { event: 'push', delivery: randomUUID(), signature });
      expect(r.status, signature).toBe(401);
      expect(errorCode(r)).toBe('INVALID_SIGNATURE');
      expect(r.json).toMatchObject({ details: { reason: 'malformed' } });
    }
    expect(seen.events).toHaveLength(0);
  });

  it('the sha1 HMAC in X-Hub-Signature alone does not authenticate a delivery', async () => {
    const r = await deliver(gw.url, PUSH, { event: 'push', delivery: randomUUID(), headers: { 'x-hub-signature': sign(PUSH, SECRET, 'sha1') } });
    expect(r.status).toBe(401);
    expect(errorCode(r)).toBe('INVALID_SIGNATURE');
  });

  it('missing X-GitHub-Event or X-GitHub-Delivery → 400 naming them', async () => {
    const noEvent = await deliver(gw.url, PUSH, { delivery: randomUUID(), signature: sign(PUSH) });
    expect(noEvent.status).toBe(400);
    expect(errorCode(noEvent)).toBe('VALIDATION_ERROR');
    expect(noEvent.json).toMatchObject({ details: { missing_headers: ['X-GitHub-Event'] } });
    expect((noEvent.json as { error: string }).error).toContain('X-GitHub-Event');

    const noDelivery = await deliver(gw.url, PUSH, { event: 'push', signature: sign(PUSH) });
    expect(noDelivery.status).toBe(400);
    expect(noDelivery.json).toMatchObject({ code: 'VALIDATION_ERROR', details: { missing_headers: ['X-GitHub-Delivery'] } });

    const neither = await deliver(gw.url, PUSH, { signature: sign(PUSH) });
    expect(neither.status).toBe(400);
    expect(neither.json).toMatchObject({ details: { missing_headers: ['X-GitHub-Event', 'X-GitHub-Delivery'] } });
    expect(seen.events).toHaveLength(0);
  });

  it('malformed X-GitHub-Delivery → 400', async () => {
    const r = await deliver(gw.url, PUSH, { event: 'push', delivery: 'x'.repeat(300), signature: sign(PUSH) });
    expect(r.status).toBe(400);
    expect(errorCode(r)).toBe('VALIDATION_ERROR');
    expect(JSON.stringify(r.json)).toContain('X-GitHub-Delivery');
  });

  it('a replayed delivery id is acknowledged as a duplicate and not processed twice', async () => {
    const id = randomUUID();
    const first = await signed(gw.url, PUSH, 'push', id);
    expect(first.json).toEqual({ status: 'accepted', message: 'Webhook processed successfully' });
    for (let i = 0; i < 2; i++) {
      const again = await signed(gw.url, PUSH, 'push', id);
      expect(again.status).toBe(200);
      expect(again.json).toEqual({ status: 'accepted', message: 'Webhook already processed', duplicate: true });
    }
    expect(seen.events).toHaveLength(1);
    expect(seen.events[0]?.delivery_id).toBe(id);
  });

  it('a refused delivery does not burn its id: the correctly signed one is processed afterwards', async () => {
    const id = randomUUID();
    const bad = await deliver(gw.url, PUSH, { event: 'push', delivery: id, signature: sign(PUSH, 'wrong') });
    expect(bad.status).toBe(401);
    const good = await signed(gw.url, PUSH, 'push', id);
    expect(good.json).toEqual({ status: 'accepted', message: 'Webhook processed successfully' });
    expect(seen.events).toHaveLength(1);
  });

  it('concurrent identical deliveries: one is processed, the rest are duplicates, one event', async () => {
    const id = randomUUID();
    const replies = await Promise.all(Array.from({ length: 8 }, () => signed(gw.url, PUSH, 'push', id)));
    expect(replies.map((r) => r.status)).toEqual(Array(8).fill(200));
    const processed = replies.filter((r) => (r.json as { duplicate?: boolean }).duplicate !== true);
    expect(processed).toHaveLength(1);
    expect(seen.events).toHaveLength(1);
    expect(seen.events[0]?.delivery_id).toBe(id);
  });

  it('concurrent different deliveries are each processed once', async () => {
    const ids = Array.from({ length: 10 }, () => randomUUID());
    const replies = await Promise.all(ids.map((id) => signed(gw.url, PUSH, 'push', id)));
    expect(replies.every((r) => r.status === 200 && (r.json as { duplicate?: boolean }).duplicate === undefined)).toBe(true);
    expect(seen.events.map((e) => e.delivery_id).sort()).toEqual([...ids].sort());
  });

  it('a Content-Type other than application/json → 415', async () => {
    const form = `payload=${encodeURIComponent(PUSH)}`;
    const r = await deliver(gw.url, form, { event: 'push', delivery: randomUUID(), signature: sign(form), contentType: 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(415);
    expect(errorCode(r)).toBe('UNSUPPORTED_MEDIA_TYPE');
    const text = await deliver(gw.url, PUSH, { event: 'push', delivery: randomUUID(), signature: sign(PUSH), contentType: 'text/plain' });
    expect(text.status).toBe(415);
    expect(seen.events).toHaveLength(0);
  });

  it('a body over the server body limit → 413', async () => {
    const big = JSON.stringify({ repository: { full_name: 'o/r' }, blob: 'x'.repeat(100 * 1024) });
    const r = await signed(gw.url, big);
    expect(r.status).toBe(413);
    expect(JSON.stringify(r.json)).toMatch(/too large/i);
    expect(seen.events).toHaveLength(0);
  });

  it('a correctly signed body that is not JSON → 400 INVALID_JSON; one that is not an object → 400', async () => {
    const notJson = '{"zen": ';
    const r1 = await signed(gw.url, notJson);
    expect(r1.status).toBe(400);
    expect(errorCode(r1)).toBe('INVALID_JSON');
    const array = '[1,2,3]';
    const r2 = await signed(gw.url, array);
    expect(r2.status).toBe(400);
    expect(errorCode(r2)).toBe('VALIDATION_ERROR');
    expect(seen.events).toHaveLength(0);
  });

  it('an empty body → 400, not processed', async () => {
    const r = await deliver(gw.url, '', { event: 'push', delivery: randomUUID(), signature: sign('x') });
    expect(r.status).toBe(400);
    expect(errorCode(r)).toBe('VALIDATION_ERROR');
    expect(seen.events).toHaveLength(0);
  });

  it('other methods → 405', async () => {
    const r = await send(`${gw.url}${PATH}`, { method: 'GET' });
    expect(r.status).toBe(405);
  });

  it('is listed in the OpenAPI document as a signature-authenticated route', async () => {
    const r = await send(`${gw.url}/api/openapi.json`, { method: 'GET' });
    expect(r.status).toBe(200);
    const op = (r.json as { paths: Record<string, Record<string, Record<string, unknown>>> }).paths[PATH]?.['post'];
    expect(op).toMatchObject({ tags: ['webhooks'], security: [] });
    expect(Object.keys(op?.['responses'] as object)).toEqual(expect.arrayContaining(['200', '400', '401', '413', '415', '503']));
  });

  it('never logs the secret or a signature', async () => {
    const body = JSON.stringify({ zen: 'log check', repository: { full_name: 'o/r' } });
    await signed(gw.url, body);
    await deliver(gw.url, body, { event: 'push', delivery: randomUUID(), signature: sign(body, 'wrong') });
    const all = gw.logs.join('\n');
    expect(gw.logs.length).toBeGreaterThan(0);
    expect(all).toContain('github webhook');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(JSON.stringify(SECRET).slice(1, -1));
    expect(all).not.toContain(sign(body).slice('sha256='.length));
    expect(all).not.toContain(sign(body, 'wrong').slice('sha256='.length));
  });
});

describe('POST /api/webhooks/github without a secret', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway([]);
  });
  afterAll(async () => {
    await gw.stop();
  });

  it('answers 503 NOT_CONFIGURED, even for a well-formed signed delivery, and publishes nothing', async () => {
    const seen = collect(gw);
    const r = await signed(gw.url, PUSH);
    expect(r.status).toBe(503);
    expect(errorCode(r)).toBe('NOT_CONFIGURED');
    const bare = await deliver(gw.url, PUSH);
    expect(bare.status).toBe(503);
    seen.stop();
    expect(seen.events).toHaveLength(0);
  });
});

describe('replay detection is durable', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-webhooks-'));
  let gw: Gateway | undefined;

  async function start(maxRemembered = 3): Promise<Gateway> {
    const config = resolveConfig(
      { server: { host: '127.0.0.1', port: 0 }, data_dir: dataDir, webhooks: { max_remembered_deliveries: maxRemembered } },
      'test',
      { TRIBUTARY_GITHUB_WEBHOOK_SECRET: SECRET },
    );
    gw = await startGateway(config, { log: createLogger('silent') });
    return gw;
  }

  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const processed = { status: 'accepted', message: 'Webhook processed successfully' };
  const duplicate = { status: 'accepted', message: 'Webhook already processed', duplicate: true };
  const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];

  it('a delivery id seen before a restart is still a duplicate after it (secret from the environment)', async () => {
    const a = await start();
    expect((await signed(a.url, PUSH, 'push', ids[0])).json).toEqual(processed);
    await a.close();

    const b = await start();
    const seen = collect(b);
    expect((await signed(b.url, PUSH, 'push', ids[0])).json).toEqual(duplicate);
    expect((await signed(b.url, PUSH, 'push', ids[1])).json).toEqual(processed);
    seen.stop();
    expect(seen.events.map((e) => e.delivery_id)).toEqual([ids[1]]);
  });

  it('keeps at most max_remembered_deliveries ids, forgetting the oldest, across restarts too', async () => {
    // remembered now: ids[0], ids[1]; limit 3
    const a = await start(3);
    expect((await signed(a.url, PUSH, 'push', ids[2])).json).toEqual(processed);
    expect((await signed(a.url, PUSH, 'push', ids[3])).json).toEqual(processed); // ids[0] forgotten
    expect((await signed(a.url, PUSH, 'push', ids[1])).json).toEqual(duplicate);
    await a.close();

    const b = await start(3);
    expect((await signed(b.url, PUSH, 'push', ids[3])).json).toEqual(duplicate);
    expect((await signed(b.url, PUSH, 'push', ids[2])).json).toEqual(duplicate);
    expect((await signed(b.url, PUSH, 'push', ids[1])).json).toEqual(duplicate);
    await b.close();

    // a lower limit trims the oldest at start-up: only ids[3] is kept
    const c = await start(1);
    expect((await signed(c.url, PUSH, 'push', ids[3])).json).toEqual(duplicate);
    expect((await signed(c.url, PUSH, 'push', ids[1])).json).toEqual(processed);
  });
});

describe('GitHubWebhooks when the store fails (router level, real LevelDB store)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-webhooks-store-'));
  let store: Store;
  let failures = 0;
  const bus = new EventBus();
  const router = new RestRouter(createLogger('silent'));

  beforeAll(async () => {
    store = await openStore(dataDir, createLogger('silent'));
    const real = store.writer;
    // the next `failures` writes reject the way a failed LevelDB batch does
    const writer = Object.create(real) as typeof real;
    writer.writeAll = (ops) => (failures-- > 0 ? Promise.reject(new StoreError('io', 'disk on fire')) : real.writeAll(ops));
    const webhooks = new GitHubWebhooks({ secret: SECRET, maxRememberedDeliveries: 10, store: { ...store, writer }, bus, log: createLogger('silent') });
    webhooks.register(router);
    await webhooks.init();
  });
  afterAll(async () => {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function post(id: string): Promise<{ status: number; body: unknown }> {
    const input: HttpInput = {
      method: 'POST',
      path: PATH,
      query: '',
      // `as`: the handler reads only these fields
      headers: { contentType: 'application/json', githubEvent: 'push', githubDelivery: id, hubSignature256: sign(PUSH) } as HttpHeaders,
      body: Buffer.from(PUSH),
    };
    const effect = await firstValueFrom(router.handle(input));
    if (effect.kind !== 'reply') throw new Error(`expected a reply, got ${effect.kind}`);
    return { status: effect.status, body: JSON.parse(effect.body) as unknown };
  }

  it('a failed write → 503 STORE_UNAVAILABLE, nothing published, and the id is not burnt', async () => {
    const events: GatewayEvent[] = [];
    const sub = bus.events$.subscribe((e) => events.push(e));
    const id = randomUUID();
    failures = 1;
    const r = await post(id);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(events).toHaveLength(0);
    expect((await post(id)).body).toEqual({ status: 'accepted', message: 'Webhook processed successfully' });
    expect((await post(id)).body).toMatchObject({ duplicate: true });
    sub.unsubscribe();
    expect(events).toHaveLength(1);
  });

  it('a concurrent identical delivery waiting on a failed one processes it itself', async () => {
    const events: GatewayEvent[] = [];
    const sub = bus.events$.subscribe((e) => events.push(e));
    const id = randomUUID();
    failures = 1;
    const [a, b] = await Promise.all([post(id), post(id)]);
    sub.unsubscribe();
    expect(a.status).toBe(503);
    expect(b).toEqual({ status: 200, body: { status: 'accepted', message: 'Webhook processed successfully' } });
    expect(events).toHaveLength(1);
  });
});

describe('POST /api/webhooks/github with access control on', () => {
  const password = 'webhook admin password 9';
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway([], {}, { auth: { disabled: false, admin: { username: 'admin' } }, webhooks: { github_secret: SECRET } }, { TRIBUTARY_ADMIN_PASSWORD: password });
  });
  afterAll(async () => {
    await gw.stop();
  });

  it('needs no API key: the signature authenticates the delivery', async () => {
    const locked = await send(`${gw.url}/api/auth/keys`, { method: 'GET' });
    expect(locked.status).toBe(401);
    const seen = collect(gw);
    const r = await signed(gw.url, PUSH);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'accepted', message: 'Webhook processed successfully' });
    seen.stop();
    expect(seen.events).toHaveLength(1);
  });

  it('a bad signature is INVALID_SIGNATURE, not a credentials error', async () => {
    const r = await deliver(gw.url, PUSH, { event: 'push', delivery: randomUUID(), signature: sign(PUSH, 'nope') });
    expect(r.status).toBe(401);
    expect(errorCode(r)).toBe('INVALID_SIGNATURE');
  });

  it('does not log the secret or the admin password', () => {
    const all = gw.logs.join('\n');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(password);
  });
});
