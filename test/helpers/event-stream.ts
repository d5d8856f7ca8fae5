/**
 * Shared setup of the cluster event-stream tests: one real nats-server (JetStream, temp store)
 * and one connection for the file's tests, a stream per test, and a minimal event.
 * https://docs.nats.io/nats-concepts/jetstream/streams
 */
import { afterAll, beforeAll } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import type { GatewayEvent } from '../../src/streams/events.js';
import { startNatsServer, type TestNatsServer } from './nats.js';

/** What {@link ClusterEventFeed.start} and {@link ClusterEventPublisher} read a stream through. */
export interface StreamSource {
  readonly js: ReturnType<typeof jetstream>;
  readonly streamName: string;
  readonly jsm: JetStreamManager;
}

export interface EventStreamFixture {
  /** Creates the file-stored stream `name` (subjects `<name>.events.>`, at most `maxMsgs` messages). */
  stream(name: string, maxMsgs: number): Promise<{ source: StreamSource; subject: string }>;
  /** How many consumers the stream `name` has on the server. */
  consumers(name: string): Promise<number>;
}

/** Starts nats-server and connects before the file's tests; closes both after them. */
export function useEventStreams(): EventStreamFixture {
  let nats: TestNatsServer | undefined;
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager | undefined;
  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
  });
  const ready = (): { nc: NatsConnection; jsm: JetStreamManager } => {
    if (nc === undefined || jsm === undefined) throw new Error('useEventStreams: used before beforeAll ran');
    return { nc, jsm };
  };
  return {
    async stream(name, maxMsgs) {
      const { nc: conn, jsm: manager } = ready();
      await manager.streams.add({ name, subjects: [`${name}.events.>`], max_msgs: maxMsgs, storage: StorageType.File, duplicate_window: 120_000_000_000 });
      return { source: { js: jetstream(conn), streamName: name, jsm: manager }, subject: `${name}.events.n1` };
    },
    async consumers(name) {
      return (await ready().jsm.consumers.list(name).next()).length;
    },
  };
}

/** A `StoreChanged` event with sequence number `seq` (tag `t<seq>`). */
export function storeChangedEvent(seq: number): GatewayEvent {
  return { event_type: 'StoreChanged', seq, timestamp: new Date(0).toISOString(), tags: [`t${seq}`] } as unknown as GatewayEvent;
}
