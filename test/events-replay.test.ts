/**
 * `/api/ws/events` catch-up from the store against a real gateway and LevelDB, with real `ws`
 * clients: `since: 0` over 20,000 stored events delivers every one in order (paced by the socket,
 * default config), and a cut by `events.max_replay` sends a warning naming exactly the seqs
 * skipped, then live events with no further gap.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

type Msg = Record<string, unknown>;

let gw: TestGateway | undefined;

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function subscriber(g: TestGateway, subscribe: Msg): Promise<{ ws: WebSocket; msgs: Msg[] }> {
  const ws = new WebSocket(`${g.url.replace('http', 'ws')}/api/ws/events`);
  const msgs: Msg[] = [];
  ws.on('message', (data) => msgs.push(JSON.parse(String(data)) as Msg));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'subscribe', ...subscribe }));
  return { ws, msgs };
}

/** Publishes `n` events and waits until they are stored. */
async function publish(g: TestGateway, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    g.bus.publish({ event_type: 'StoreChanged', tags: [`${tag}${i}`, 'x'.repeat(200)] });
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  await g.store.writer.flush();
}

const seqsOf = (msgs: readonly Msg[]): number[] => msgs.filter((m) => typeof m['seq'] === 'number').map((m) => m['seq'] as number);

describe('/api/ws/events catch-up from the store', () => {
  it('since 0 over 20,000 stored events delivers all of them, in order, with the default config', async () => {
    gw = await startTestGateway([demoClient()]);
    await publish(gw, 20_000, 'e');
    const last = gw.bus.lastSeq;
    expect(last).toBeGreaterThanOrEqual(20_000);
    const sub = await subscriber(gw, { since: 0 });
    await waitFor(() => sub.msgs.length > 0 && seqsOf(sub.msgs).at(-1) === last, 30_000);
    expect(seqsOf(sub.msgs)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    expect(sub.msgs.filter((m) => m['type'] === 'warning')).toEqual([]);
    // then live, with no gap
    await publish(gw, 3, 'live');
    await waitFor(() => seqsOf(sub.msgs).at(-1) === last + 3);
    expect(seqsOf(sub.msgs).slice(-4)).toEqual([last, last + 1, last + 2, last + 3]);
    sub.ws.close();
  }, 60_000);

  it('a cut by max_replay warns with the exact range skipped, then continues live with no further gap', async () => {
    gw = await startTestGateway([demoClient()], {}, { events: { max_replay: 1000 } });
    await publish(gw, 5000, 'e');
    const last = gw.bus.lastSeq;
    const since = 100;
    const sub = await subscriber(gw, { since });
    const warning = await (async () => {
      await waitFor(() => sub.msgs.some((m) => m['type'] === 'warning'), 20_000);
      return sub.msgs.find((m) => m['type'] === 'warning') as Msg;
    })();
    expect(warning).toEqual({ type: 'warning', code: 'events_skipped', from: since + 1000 + 1, to: last, reason: 'max_replay' });
    await publish(gw, 5, 'live');
    await waitFor(() => seqsOf(sub.msgs).at(-1) === last + 5);
    // every seq after `since` is either received or inside the warning's range, in order
    const received = seqsOf(sub.msgs);
    expect(received).toEqual([...Array.from({ length: 1000 }, (_, i) => since + 1 + i), last + 1, last + 2, last + 3, last + 4, last + 5]);
    const order = sub.msgs.filter((m) => m['type'] !== 'subscribed').map((m) => (m['type'] === 'warning' ? 'w' : m['seq']));
    expect(order.indexOf('w')).toBe(1000);
    sub.ws.close();
  }, 60_000);

  it('with a filter, the events it hides need no warning: every seq is accounted for', async () => {
    gw = await startTestGateway([demoClient()]);
    await publish(gw, 10, 'e');
    const sub = await subscriber(gw, { since: 0, event_types: ['StoreChanged'] });
    await waitFor(() => sub.msgs.filter((m) => m['event_type'] === 'StoreChanged').length === 10);
    // the filter hides other events, but the seqs are all accounted for: no warning
    expect(sub.msgs.filter((m) => m['type'] === 'warning')).toEqual([]);
    sub.ws.close();
  });
});
