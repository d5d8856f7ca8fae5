/**
 * What keeps an open dashboard cheap and bounded, against real gateways with real `ws` clients:
 * the sampled mode of `/api/ws/events` (`batch_ms` / `batch_max`, the Live events page's feed),
 * a signed-out dashboard session closing its sockets, the `ui` config section (session lifetimes,
 * the dashboard switched off). The sampling's exact choice of events is also checked on the
 * endpoint itself with fake timers, where the number of events per frame is under the test's control.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Subject } from 'rxjs';
import WebSocket from 'ws';
import { EventsWsEndpoint } from '../src/handlers/events-ws.js';
import type { RecordedFeed, RecordedItem } from '../src/handlers/event-recorder.js';
import type { EventLogRepository } from '../src/store/events.js';
import type { GatewayEvent } from '../src/streams/events.js';
import type { WsConnection, WsSendResult } from '../src/streams/ws.js';
import { createLogger } from '../src/log/logger.js';
import { connectClient, demoClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

type Msg = Record<string, unknown>;

const ADMIN_PASSWORD = 'live cost test password 7';
const basic = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };

/** A ws client collecting parsed messages, with its close code. */
async function feed(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; msgs: Msg[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, { headers });
  const msgs: Msg[] = [];
  ws.on('message', (data) => msgs.push(JSON.parse(String(data)) as Msg));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, msgs, closed };
}

async function until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('/api/ws/events sampled mode on a real gateway', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway([demoClient('demo')]);
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('sends batch frames only, each with at most batch_max events, counting what it left out; every matching event is counted once', async () => {
    const f = await feed(`${gw.url.replace('http', 'ws')}/api/ws/events`);
    try {
      f.ws.send(JSON.stringify({ type: 'subscribe', event_types: ['ToolInvocationCompleted'], batch_ms: 300, batch_max: 2 }));
      await until(() => f.msgs.some((m) => m['type'] === 'subscribed'), 'the ack');
      expect(f.msgs.find((m) => m['type'] === 'subscribed')).toEqual({ type: 'subscribed', event_types: ['ToolInvocationCompleted'], batch_ms: 300, batch_max: 2 });
      const client = await connectClient(gw);
      const calls = 30;
      try {
        await Promise.all(Array.from({ length: calls }, (_, i) => client.callTool({ name: 'demo-echo', arguments: { message: `m${i}` } })));
      } finally {
        await client.close();
      }
      const batches = (): Msg[] => f.msgs.filter((m) => m['type'] === 'batch');
      await until(() => batches().reduce((n, b) => n + (b['matched'] as number), 0) >= calls, 'every call counted');
      expect(f.msgs.filter((m) => m['event_type'] !== undefined)).toEqual([]);
      let prevTo = 0;
      let shown = 0;
      let out = 0;
      for (const b of batches()) {
        const events = b['events'] as Msg[];
        expect(events.length).toBeGreaterThan(0);
        expect(events.length).toBeLessThanOrEqual(2);
        expect(b['sampled_out']).toBe((b['matched'] as number) - events.length);
        expect(events.every((e) => e['event_type'] === 'ToolInvocationCompleted' && !('arguments' in e))).toBe(true);
        const seqs = events.map((e) => e['seq'] as number);
        expect([...seqs].sort((a, c) => a - c)).toEqual(seqs);
        // the newest of the window are the ones kept
        expect(seqs[seqs.length - 1]).toBe(b['to_seq']);
        expect(b['from_seq'] as number).toBeGreaterThan(prevTo);
        expect(b['from_seq'] as number).toBeLessThanOrEqual(seqs[0] as number);
        prevTo = b['to_seq'] as number;
        shown += events.length;
        out += b['sampled_out'] as number;
      }
      expect(shown + out).toBe(calls);
      expect(batches().length).toBeLessThanOrEqual(calls);
    } finally {
      f.ws.close();
    }
  });

  it('refuses bad batch settings with an error frame and stays open', async () => {
    const f = await feed(`${gw.url.replace('http', 'ws')}/api/ws/events`);
    try {
      const bad = [{ batch_ms: 10 }, { batch_ms: 20_000 }, { batch_ms: 1.5 }, { batch_ms: '100' }, { batch_max: 5 }, { batch_ms: 100, batch_max: 0 }, { batch_ms: 100, batch_max: 5000 }];
      for (const b of bad) f.ws.send(JSON.stringify({ type: 'subscribe', ...b }));
      await until(() => f.msgs.filter((m) => m['type'] === 'error').length === bad.length, 'one error per bad subscribe');
      expect(f.msgs.every((m) => m['type'] === 'error' && m['code'] === 'invalid_field')).toBe(true);
      f.ws.send(JSON.stringify({ type: 'subscribe', batch_ms: 100 }));
      await until(() => f.msgs.some((m) => m['type'] === 'subscribed'), 'the ack');
      expect(f.msgs.find((m) => m['type'] === 'subscribed')).toEqual({ type: 'subscribed', batch_ms: 100, batch_max: 50 });
    } finally {
      f.ws.close();
    }
  });
});

describe('the sampling itself (endpoint with fake timers)', () => {
  class Conn implements WsConnection {
    readonly endpoint = '/api/ws/events';
    readonly remoteAddress = '127.0.0.1';
    readonly auth = undefined;
    closed = false;
    readonly sent: string[] = [];
    send(message: string | Uint8Array): WsSendResult {
      this.sent.push(String(message));
      return 'ok';
    }
    bufferedAmount(): number {
      return 0;
    }
    close(): void {
      this.closed = true;
    }
    ping(): void {}
    cork(fn: () => void): void {
      fn();
    }
    authorize(): boolean {
      return !this.closed;
    }
  }

  it('keeps the newest batch_max of a window, counts the rest, and sends nothing while nothing matches', async () => {
    vi.useFakeTimers();
    try {
      const items = new Subject<RecordedItem>();
      const recorded: RecordedFeed = { items$: items, lastSettledSeq: 0, lastRecordedSeq: 0 } as unknown as RecordedFeed;
      const ep = new EventsWsEndpoint(recorded, {} as EventLogRepository, createLogger('silent'), { maxQueued: 100, maxMessageBytes: 4096, highWaterBytes: 1 << 20, maxReplay: 100 });
      const c = new Conn();
      ep.onOpen(c);
      ep.onMessage(c, new TextEncoder().encode(JSON.stringify({ type: 'subscribe', mcp_server_ids: ['a'], batch_ms: 1000, batch_max: 3 })).buffer as ArrayBuffer, false);
      expect(c.sent).toHaveLength(1); // the ack
      const ev = (seq: number, server: string): RecordedItem => ({ kind: 'event', event: { seq, event_type: 'UpstreamHealthChecked', mcp_server_id: server, timestamp: '2026-01-01T00:00:00.000Z' } as unknown as GatewayEvent });
      for (let seq = 1; seq <= 10; seq++) items.next(ev(seq, seq === 5 ? 'b' : 'a'));
      expect(c.sent).toHaveLength(1);
      vi.advanceTimersByTime(999);
      expect(c.sent).toHaveLength(1);
      vi.advanceTimersByTime(1);
      expect(c.sent).toHaveLength(2);
      const frame = JSON.parse(c.sent[1] as string) as Msg;
      expect((frame['events'] as Msg[]).map((e) => e['seq'])).toEqual([8, 9, 10]);
      expect(frame).toMatchObject({ type: 'batch', matched: 9, sampled_out: 6, from_seq: 1, to_seq: 10 });
      vi.advanceTimersByTime(10_000);
      expect(c.sent).toHaveLength(2);
      items.next(ev(11, 'a'));
      vi.advanceTimersByTime(1000);
      expect(JSON.parse(c.sent[2] as string)).toMatchObject({ type: 'batch', matched: 1, sampled_out: 0, from_seq: 11, to_seq: 11 });
      expect(ep.sampling).toEqual({ frames: 2, sampledOut: 6 });
      // a lost range goes out after what the subscriber held, in seq order
      items.next(ev(12, 'a'));
      items.next({ kind: 'missing', from: 13, to: 14, reason: 'lost' });
      // live frames are written at the end of the turn (one corked write per subscriber)
      expect(c.sent.slice(3).map((t) => (JSON.parse(t) as Msg)['type'])).toEqual(['batch']);
      await Promise.resolve();
      expect(c.sent.slice(3).map((t) => (JSON.parse(t) as Msg)['type'])).toEqual(['batch', 'warning']);
      ep.onClose(c);
      ep.dispose();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('dashboard sessions: sign-out closes their sockets; the ui config section', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway([demoClient('demo')], {}, { auth: { disabled: false, admin: { username: 'admin' } }, ui: { session_idle_s: 600, session_max_s: 3600 } }, { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  async function signIn(): Promise<{ cookie: string; session: Msg }> {
    const origin = `http://${new URL(gw.url).host}`;
    const r = await send(`${gw.url}/api/ui/session`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ password: ADMIN_PASSWORD }) });
    expect(r.status).toBe(200);
    const sid = /tributary_ui=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')?.[1] ?? '';
    expect(sid).not.toBe('');
    return { cookie: `tributary_ui=${sid}`, session: (r.json as { session: Msg }).session };
  }

  it('sign-out closes every socket opened with that session (4401), and only those', async () => {
    const a = await signIn();
    const b = await signIn();
    const origin = `http://${new URL(gw.url).host}`;
    const base = gw.url.replace('http', 'ws');
    const aEvents = await feed(`${base}/api/ws/events`, { cookie: a.cookie, origin });
    const aLive = await feed(`${base}/api/ws/live`, { cookie: a.cookie, origin });
    const bEvents = await feed(`${base}/api/ws/events`, { cookie: b.cookie, origin });
    const byKey = await feed(`${base}/api/ws/events`, basic);
    try {
      const out = await send(`${gw.url}/api/ui/session`, { method: 'DELETE', headers: { cookie: a.cookie, origin } });
      expect(out.status).toBe(200);
      const [ce, cl] = await Promise.all([aEvents.closed, aLive.closed]);
      expect(ce.code).toBe(4401);
      expect(ce.reason).toMatch(/^session_ended/);
      expect(cl.code).toBe(4401);
      // the other session's socket and the key's socket still get events
      const k = await send(`${gw.url}/api/auth/keys`, { method: 'POST', headers: { ...basic, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'after-signout', role: 'user' }) });
      expect(k.status).toBe(201);
      await until(() => bEvents.msgs.some((m) => m['event_type'] === 'StoreChanged'), 'an event on the other session');
      await until(() => byKey.msgs.some((m) => m['event_type'] === 'StoreChanged'), 'an event on the key socket');
      expect(bEvents.ws.readyState).toBe(WebSocket.OPEN);
      // the ended session is no credential any more
      const again = await send(`${gw.url}/api/mcp/clients`, { headers: { cookie: a.cookie } });
      expect(again.status).toBe(401);
    } finally {
      for (const f of [aEvents, aLive, bEvents, byKey]) f.ws.close();
    }
  });

  it('takes the session lifetimes from the config (ui.session_idle_s)', async () => {
    const before = Date.now();
    const { session } = await signIn();
    const expires = Date.parse(session['expires_at'] as string);
    // idle 600 s (not the 1800 s default), and not the 3600 s maximum
    expect(expires - before).toBeGreaterThanOrEqual(600_000 - 1000);
    expect(expires - before).toBeLessThan(600_000 + 60_000);
  });
});

describe('ui.enabled: false', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway([demoClient('demo')], {}, { ui: { enabled: false } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('serves no dashboard and no /api/ui routes; the API still answers', async () => {
    expect((await send(`${gw.url}/ui`, {})).status).toBe(404);
    expect((await send(`${gw.url}/ui/app.js`, {})).status).toBe(404);
    expect((await send(`${gw.url}/api/ui/session`, {})).status).toBe(404);
    expect((await send(`${gw.url}/api/ui/overview`, {})).status).toBe(404);
    expect((await send(`${gw.url}/api/mcp/clients`, {})).status).toBe(200);
  });
});
