/**
 * The cluster event feed reads the stream only while held, against a real nats-server
 * (JetStream, temp store): while nobody holds it no consumer exists and no message reaches it;
 * the first hold starts at the stream's end (what passed meanwhile is not emitted, and not called
 * a hole); a replay still reads every event; the last release stops it.
 */
import { describe, expect, it } from 'vitest';
import { ClusterEventFeed, ClusterEventPublisher, eventSeq } from '../src/cluster/event-stream.js';
import type { RecordedItem } from '../src/handlers/event-recorder.js';
import { createLogger } from '../src/log/logger.js';
import { storeChangedEvent, useEventStreams } from './helpers/event-stream.js';
import { waitFor } from './helpers/wait.js';

const log = createLogger('silent');
const streams = useEventStreams();
const event = storeChangedEvent;


const nodeSeq = (i: RecordedItem): unknown => (i.kind === 'event' ? (i.event as unknown as Record<string, unknown>)['node_seq'] : i);

describe('cluster event feed: reading on demand', () => {
  it('reads nothing while not held, starts at the stream end on the first hold, stops after the last release; replays cover the idle time', async () => {
    const name = 'd1';
    const { source } = await streams.stream(name, 1000);
    const feed = await ClusterEventFeed.start(source, log, { onDemand: true, lingerMs: 0 });
    expect(feed.demand).toBe(feed);
    const items: RecordedItem[] = [];
    feed.items$.subscribe((i) => items.push(i));
    const publisher = new ClusterEventPublisher({ js: source.js, eventSubject: `${name}.events.n1`, config: { node_id: 'n1' } }, 10_000, log);
    const publish = async (from: number, to: number): Promise<void> => {
      for (let s = from; s <= to; s++) publisher.offer(event(s));
      await waitFor(() => publisher.buffered === 0, 5_000);
    };

    // idle: three events stored as stream message 1, and no consumer to deliver them to
    await publish(1, 3);
    expect(feed.reading).toBe(false);
    expect(feed.ready()).toBeUndefined();
    expect(await streams.consumers(name)).toBe(0);
    expect(feed.messagesRead).toBe(0);
    expect(items).toEqual([]);

    // the first hold: reading starts after the stream's last message, passing message 1 silently
    const release = feed.hold();
    const ready = feed.ready();
    expect(ready).toBeInstanceOf(Promise);
    await ready;
    expect(feed.reading).toBe(true);
    expect(feed.lastSettledSeq).toBe(eventSeq(2, 0) - 1);
    expect(await streams.consumers(name)).toBe(1);
    await publish(4, 5);
    await waitFor(() => items.length >= 2, 5_000);
    expect(items.map((i) => (i.kind === 'event' ? i.event.seq : i))).toEqual([eventSeq(2, 0), eventSeq(2, 1)]);
    expect(items.map(nodeSeq)).toEqual([4, 5]);
    expect(feed.messagesRead).toBe(1);

    // a second hold, released: still reading
    const other = feed.hold();
    other();
    other();
    await publish(6, 6);
    await waitFor(() => items.length >= 3, 5_000);
    expect(feed.reading).toBe(true);

    // the last release stops it: its consumer is gone, and later events do not reach the feed
    release();
    await waitFor(() => !feed.reading, 5_000);
    await waitFor(() => feed.holds === 0, 5_000);
    let left = await streams.consumers(name);
    for (let i = 0; i < 50 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      left = await streams.consumers(name);
    }
    expect(left).toBe(0);
    const read = feed.messagesRead;
    await publish(7, 8);
    await new Promise((r) => setTimeout(r, 200));
    expect(feed.messagesRead).toBe(read);
    expect(items).toHaveLength(3);

    // held again: from the end once more (message 4 passed), live from there
    const again = feed.hold();
    await feed.ready();
    expect(feed.starts).toBe(2);
    expect(feed.lastSettledSeq).toBe(eventSeq(5, 0) - 1);
    await publish(9, 9);
    await waitFor(() => items.length >= 4, 5_000);
    expect(items.map(nodeSeq)).toEqual([4, 5, 6, 9]);
    // no `missing` item and no hole for what passed while idle: a replay reads it all from the stream
    expect(items.every((i) => i.kind === 'event')).toBe(true);
    const replay = await feed.after(0, 100, feed.lastSettledSeq);
    expect(replay.map((e) => e['node_seq'])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(replay.map((e) => e.seq)).toEqual([eventSeq(1, 0), eventSeq(1, 1), eventSeq(1, 2), eventSeq(2, 0), eventSeq(2, 1), eventSeq(3, 0), eventSeq(4, 0), eventSeq(4, 1), eventSeq(5, 0)]);
    expect(await feed.gapsIn(0, feed.lastSettledSeq)).toEqual([]);
    again();
    await publisher.close(1_000);
    await feed.close();
  });

  it('without onDemand reads from the start, as before', async () => {
    const name = 'd2';
    const { source } = await streams.stream(name, 1000);
    const feed = await ClusterEventFeed.start(source, log);
    expect(feed.demand).toBeUndefined();
    expect(feed.reading).toBe(true);
    await feed.close();
    expect(feed.reading).toBe(false);
  });
});
