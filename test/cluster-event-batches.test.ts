/**
 * The cluster event stream's batch messages against a real nats-server (JetStream, temp store):
 * a publisher puts the events one turn offers into one stream message, the feed numbers them
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
