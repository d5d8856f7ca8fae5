/**
 * The cluster event stream's batch messages against a real nats-server (JetStream, temp store):
 * a publisher puts the events offered within its linger into one stream message (a full one leaves
 * at once), the feed numbers them
 * `stream seq × EVENTS_PER_MESSAGE + index`, and a replay names only real holes (messages the
 * stream removed by its limit), not the numbers no message uses.
 */
import { describe, expect, it } from 'vitest';
import { firstValueFrom, filter, take, toArray } from 'rxjs';
import { ClusterEventFeed, ClusterEventPublisher, EVENTS_PER_MESSAGE, eventSeq } from '../src/cluster/event-stream.js';
import { createLogger } from '../src/log/logger.js';
import { storeChangedEvent, useEventStreams } from './helpers/event-stream.js';
import { waitFor } from './helpers/wait.js';

const log = createLogger('silent');
const streams = useEventStreams();
const event = storeChangedEvent;

describe('cluster event stream: batch messages', () => {
  it('publishes the events offered in one turn as one stream message; the feed numbers them by message and index', async () => {
    const { source, subject } = await streams.stream('b1', 1000);
    const feed = await ClusterEventFeed.start(source, log);
    const publisher = new ClusterEventPublisher({ js: source.js, eventSubject: subject, config: { node_id: 'n1' } }, 10_000, log);
    const got = firstValueFrom(feed.items$.pipe(filter((i) => i.kind === 'event'), take(7), toArray()));
    for (let s = 1; s <= 5; s++) publisher.offer(event(s));
    await waitFor(() => publisher.buffered === 0, 5_000);
    for (let s = 6; s <= 7; s++) publisher.offer(event(s));
    const items = await got;
    // the feed may see the message before the publisher sees its acknowledgement
    await waitFor(() => publisher.buffered === 0, 5_000);
    expect(publisher.published).toBe(7);
    expect(publisher.messages).toBe(2);
    const seqs = items.map((i) => (i.kind === 'event' ? i.event.seq : -1));
    expect(seqs).toEqual([eventSeq(1, 0), eventSeq(1, 1), eventSeq(1, 2), eventSeq(1, 3), eventSeq(1, 4), eventSeq(2, 0), eventSeq(2, 1)]);
    expect(items.map((i) => (i.kind === 'event' ? (i.event as unknown as Record<string, unknown>)['node_seq'] : -1))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // every seq of the last message counts as settled
    expect(feed.lastSettledSeq).toBe(eventSeq(3, 0) - 1);
    // a replay from inside a message continues in it
    const replay = await feed.after(eventSeq(1, 2), 100, feed.lastSettledSeq);
    expect(replay.map((e) => e.seq)).toEqual([eventSeq(1, 3), eventSeq(1, 4), eventSeq(2, 0), eventSeq(2, 1)]);
    expect(replay.map((e) => e['node_seq'])).toEqual([4, 5, 6, 7]);
    // a page ends at its limit, mid-message, and the next page goes on from there
    const page = await feed.after(0, 3, feed.lastSettledSeq);
    expect(page.map((e) => e.seq)).toEqual([eventSeq(1, 0), eventSeq(1, 1), eventSeq(1, 2)]);
    expect(await feed.gapsIn(0, feed.lastSettledSeq)).toEqual([]);
    await publisher.close(1_000);
    await feed.close();
  });

  it('sends the event of an idle publisher at once; the events of several turns after it share one message within the linger', async () => {
    const { source, subject } = await streams.stream('b3', 1000);
    const feed = await ClusterEventFeed.start(source, log);
    // a linger longer than the test: what leaves before the close left without waiting for it
    const publisher = new ClusterEventPublisher({ js: source.js, eventSubject: subject, config: { node_id: 'n1' } }, 10_000, log, { lingerMs: 600_000 });
    const got = firstValueFrom(feed.items$.pipe(filter((i) => i.kind === 'event'), take(4), toArray()));
    publisher.offer(event(1));
    await waitFor(() => publisher.messages === 1, 5_000);
    // three turns of the event loop (with linger 0 each would start a message of its own)
    for (let s = 2; s <= 4; s++) {
      publisher.offer(event(s));
      await new Promise((r) => setImmediate(r));
    }
    expect(publisher.buffered).toBe(3);
    await publisher.close(5_000);
    const items = await got;
    expect(publisher.messages).toBe(2);
    expect(items.map((i) => (i.kind === 'event' ? i.event.seq : -1))).toEqual([eventSeq(1, 0), eventSeq(2, 0), eventSeq(2, 1), eventSeq(2, 2)]);
    await feed.close();
  });

  it('sends a linger-delayed message once the linger is over, without a close', async () => {
    const { source, subject } = await streams.stream('b5', 1000);
    const publisher = new ClusterEventPublisher({ js: source.js, eventSubject: subject, config: { node_id: 'n1' } }, 10_000, log, { lingerMs: 50 });
    publisher.offer(event(1));
    await waitFor(() => publisher.messages === 1, 5_000);
    publisher.offer(event(2));
    publisher.offer(event(3));
    await waitFor(() => publisher.published === 3, 5_000);
    expect(publisher.messages).toBe(2);
    await publisher.close(1_000);
  });

  it('sends a full message at once, without waiting for the linger; close() sends the rest without waiting either', async () => {
    const { source, subject } = await streams.stream('b4', 1000);
    const feed = await ClusterEventFeed.start(source, log);
    // a linger longer than the test: only a full message or the close may send
    const publisher = new ClusterEventPublisher({ js: source.js, eventSubject: subject, config: { node_id: 'n1' } }, 10_000, log, { lingerMs: 600_000 });
    const got = firstValueFrom(feed.items$.pipe(filter((i) => i.kind === 'event'), take(301), toArray()));
    // an idle publisher's first event leaves at once; the linger starts after it
    publisher.offer(event(1));
    await waitFor(() => publisher.messages === 1, 5_000);
    for (let s = 2; s <= 301; s++) {
      publisher.offer(event(s));
      if (s % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => publisher.messages === 2, 5_000);
    expect(publisher.published).toBe(257);
    expect(publisher.buffered).toBe(44);
    await publisher.close(5_000);
    expect(publisher.published).toBe(301);
    expect(publisher.messages).toBe(3);
    const items = await got;
    const seqs = items.map((i) => (i.kind === 'event' ? i.event.seq : -1));
    expect(seqs[1]).toBe(eventSeq(2, 0));
    expect(seqs[256]).toBe(eventSeq(2, 255));
    expect(seqs[257]).toBe(eventSeq(3, 0));
    expect(seqs[300]).toBe(eventSeq(3, 43));
    expect(items.map((i) => (i.kind === 'event' ? (i.event as unknown as Record<string, unknown>)['node_seq'] : -1))).toEqual(Array.from({ length: 301 }, (_, i) => i + 1));
    await feed.close();
  });

  it('names messages removed by the stream limit as an expired hole, and only those', async () => {
    const { source, subject } = await streams.stream('b2', 2);
    const js = source.js;
    // four messages of two events; the stream keeps the last two
    for (let m = 0; m < 4; m++) await js.publish(subject, JSON.stringify([{ event_type: 'A', node_seq: 2 * m + 1 }, { event_type: 'A', node_seq: 2 * m + 2 }]));
    const feed = await ClusterEventFeed.start(source, log);
    const upTo = feed.lastSettledSeq;
    expect(upTo).toBe(eventSeq(5, 0) - 1);
    const replay = await feed.after(0, 100, upTo);
    expect(replay.map((e) => e.seq)).toEqual([eventSeq(3, 0), eventSeq(3, 1), eventSeq(4, 0), eventSeq(4, 1)]);
    expect(await feed.gapsIn(1, upTo)).toEqual([{ from: eventSeq(1, 0), to: eventSeq(3, 0) - 1, reason: 'expired' }]);
    expect(EVENTS_PER_MESSAGE).toBe(1000);
    await feed.close();
  });
});
