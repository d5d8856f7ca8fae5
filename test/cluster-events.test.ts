/**
 * Cluster mode against a real nats-server (JetStream, temp store) and three real gateway nodes on
 * loopback: events of all three reach one `/api/ws/events` subscriber in order per node, `since`
 * replays from the stream with no gap and no duplicate, a node refuses to start without NATS, and
 * a nats-server restart mid-run loses nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connectClient, demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { freePort, startNatsServer, type TestNatsServer } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';
import { EVENTS_PER_MESSAGE } from '../src/cluster/event-stream.js';

type Msg = Record<string, unknown>;

let nats: TestNatsServer;
const nodes: TestGateway[] = [];

function clusterConfig(nodeId: string, url = nats.url): Record<string, unknown> {
  return { cluster: { nats_url: url, node_id: nodeId, connect_timeout_ms: 2000 } };
}

async function feed(gw: TestGateway): Promise<{ ws: WebSocket; msgs: Msg[] }> {
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/api/ws/events`);
  const msgs: Msg[] = [];
  ws.on('message', (data) => msgs.push(JSON.parse(String(data)) as Msg));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, msgs };
}

async function callEcho(gw: TestGateway, n: number, tag: string): Promise<void> {
  const client = await connectClient(gw);
  try {
    for (let i = 0; i < n; i++) await client.callTool({ name: 'demo-echo', arguments: { message: `${tag}${i}` } });
  } finally {
    await client.close();
  }
}

const messageOf = (seq: number): number => Math.floor(seq / EVENTS_PER_MESSAGE);

/**
 * Cluster seqs are `stream seq × EVENTS_PER_MESSAGE + index`: a subscriber that sees everything
 * gets each message's events from index 0 on, and the messages in stream order, none skipped.
 */
function expectStreamOrder(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i++) {
    const prev = seqs[i - 1] as number;
    const cur = seqs[i] as number;
    if (messageOf(cur) === messageOf(prev)) expect(cur).toBe(prev + 1);
    else {
      expect(messageOf(cur)).toBe(messageOf(prev) + 1);
      expect(cur % EVENTS_PER_MESSAGE).toBe(0);
    }
  }
}

const toolEvents = (msgs: Msg[]): Msg[] => msgs.filter((m) => m['event_type'] === 'ToolInvocationCompleted');

beforeAll(async () => {
  nats = await startNatsServer();
  for (const id of ['node_a', 'node_b', 'node_c']) nodes.push(await startTestGateway([demoClient()], {}, clusterConfig(id)));
});

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await nats?.dispose();
});

describe('cluster: the event bus on one JetStream stream', () => {
  it('delivers every node’s events to one subscriber, in order per node, in stream order with no seq skipped', async () => {
    const [a, b, c] = nodes as [TestGateway, TestGateway, TestGateway];
    const sub = await feed(c);
    await Promise.all([callEcho(a, 5, 'a'), callEcho(b, 5, 'b'), callEcho(c, 5, 'c')]);
    await waitFor(() => toolEvents(sub.msgs).length >= 15, 10_000);
    const events = sub.msgs.filter((m) => typeof m['seq'] === 'number');
    const seqs = events.map((m) => m['seq'] as number);
    // stream order: every message, every event of it, no duplicate
    expectStreamOrder(seqs);
    const byNode = new Map<string, number[]>();
    for (const m of events) {
      const id = m['node_id'] as string;
      byNode.set(id, [...(byNode.get(id) ?? []), m['node_seq'] as number]);
    }
    expect([...byNode.keys()].sort()).toEqual(expect.arrayContaining(['node_a', 'node_b', 'node_c']));
    for (const list of byNode.values()) for (let i = 1; i < list.length; i++) expect(list[i]).toBeGreaterThan(list[i - 1] as number);
    const calls = toolEvents(sub.msgs);
    for (const id of ['node_a', 'node_b', 'node_c']) expect(calls.filter((m) => m['node_id'] === id)).toHaveLength(5);
    sub.ws.close();
  });

  it('replays `since` from the stream on another node, then continues live, with no gap and no duplicate', async () => {
    const [a, b] = nodes as [TestGateway, TestGateway, TestGateway];
    const first = await feed(a);
    await callEcho(b, 3, 'x');
    await waitFor(() => toolEvents(first.msgs).length >= 3, 10_000);
    const seen = first.msgs.filter((m) => typeof m['seq'] === 'number');
    const since = (seen[0]?.['seq'] as number) - 1;
    first.ws.close();

    const again = await feed(b);
    again.ws.send(JSON.stringify({ type: 'subscribe', since }));
    await waitFor(() => again.msgs.some((m) => m['type'] === 'subscribed'));
    await callEcho(a, 2, 'y');
    await waitFor(() => toolEvents(again.msgs).length >= 5, 10_000);
    const seqs = again.msgs.filter((m) => typeof m['seq'] === 'number').map((m) => m['seq'] as number);
    expect(seqs[0]).toBe(since + 1);
    // the replay is what the live subscriber saw, then on
    expect(seqs.slice(0, seen.length)).toEqual(seen.map((m) => m['seq'] as number));
    expectStreamOrder(seqs);
    expect(again.msgs.some((m) => m['type'] === 'warning')).toBe(false);
    again.ws.close();
  });

  it('publishes a node’s concurrent events as few stream messages, and `since` inside a message replays the rest of it', async () => {
    const [a, b, c] = nodes as [TestGateway, TestGateway, TestGateway];
    const publisher = c.cluster?.publisher;
    if (publisher === undefined) throw new Error('node_c has no cluster publisher');
    await waitFor(() => publisher.buffered === 0, 10_000);
    const [events0, messages0] = [publisher.published, publisher.messages];
    const sub = await feed(a);
    const client = await connectClient(c);
    try {
      await Promise.all(Array.from({ length: 24 }, (_, i) => client.callTool({ name: 'demo-echo', arguments: { message: `batch${i}` } })));
    } finally {
      await client.close();
    }
    await waitFor(() => toolEvents(sub.msgs).filter((m) => m['node_id'] === 'node_c').length >= 24, 10_000);
    await waitFor(() => publisher.buffered === 0, 10_000);
    const events = publisher.published - events0;
    const messages = publisher.messages - messages0;
    expect(events).toBeGreaterThanOrEqual(24);
    // batched: fewer stream messages than events
    expect(messages).toBeLessThan(events);
    const live = sub.msgs.filter((m) => typeof m['seq'] === 'number');
    const seqs = live.map((m) => m['seq'] as number);
    expectStreamOrder(seqs);
    sub.ws.close();

    // a seq inside a message of several events: the replay starts right after it, in that message
    const inside = seqs.findIndex((q, i) => i + 1 < seqs.length && messageOf(seqs[i + 1] as number) === messageOf(q));
    expect(inside).toBeGreaterThanOrEqual(0);
    const since = seqs[inside] as number;
    const again = await feed(b);
    again.ws.send(JSON.stringify({ type: 'subscribe', since }));
    const expected = seqs.slice(inside + 1);
    await waitFor(() => again.msgs.filter((m) => typeof m['seq'] === 'number').length >= expected.length, 10_000);
    const replayed = again.msgs.filter((m) => typeof m['seq'] === 'number');
    expect(replayed.map((m) => m['seq'] as number).slice(0, expected.length)).toEqual(expected);
    // the same events, not just the same numbers
    expect(replayed.slice(0, expected.length).map((m) => `${String(m['node_id'])}:${String(m['node_seq'])}`)).toEqual(live.slice(inside + 1).map((m) => `${String(m['node_id'])}:${String(m['node_seq'])}`));
    expect(again.msgs.some((m) => m['type'] === 'warning')).toBe(false);
    again.ws.close();
  });

  it('reads the stream on a node only while it has an /api/ws/events connection; a later subscriber gets every event after its open, and `since` replays what passed meanwhile', async () => {
    const [a, b, c] = nodes as [TestGateway, TestGateway, TestGateway];
    const feedOf = (gw: TestGateway) => {
      const f = gw.cluster?.feed;
      if (f === undefined) throw new Error('no cluster feed');
      return f;
    };
    // the earlier tests' connections are closed: B stops reading after its linger
    await waitFor(() => !feedOf(b).reading, 10_000);
    const readBefore = feedOf(b).messagesRead;
    const watch = await feed(a);
    await callEcho(c, 3, 'idle');
    await waitFor(() => toolEvents(watch.msgs).length >= 3, 10_000);
    // nothing reached B: no consumer, nothing received or decoded
    expect(feedOf(b).reading).toBe(false);
    expect(feedOf(b).messagesRead).toBe(readBefore);
    const health = (await (await fetch(`${b.url}/health`)).json()) as { components: { cluster: { events: { feed: { reading: boolean; holds: number } } } } };
    expect(health.components.cluster.events.feed).toMatchObject({ reading: false, holds: 0 });

    // a subscriber arrives on B: its open waited for B to read from the stream's end
    const late = await feed(b);
    expect(feedOf(b).reading).toBe(true);
    await callEcho(c, 2, 'late');
    await waitFor(() => toolEvents(watch.msgs).length >= 5 && toolEvents(late.msgs).length >= 2, 10_000);
    const seqOf = (m: Msg): number => m['seq'] as number;
    const watched = watch.msgs.filter((m) => typeof m['seq'] === 'number');
    const idleCalls = toolEvents(watch.msgs).slice(0, 3);
    const lastIdle = seqOf(idleCalls[2] as Msg);
    // live on B: exactly the events after the idle calls' (the same seqs A saw), none of the idle ones
    const lateLive = late.msgs.filter((m) => typeof m['seq'] === 'number');
    expect(lateLive.length).toBeGreaterThan(0);
    expect(seqOf(lateLive[0] as Msg)).toBeGreaterThan(lastIdle);
    // (up to the last seq both have seen: a closing session's events may still be on their way)
    const upTo = Math.min(seqOf(watched[watched.length - 1] as Msg), seqOf(lateLive[lateLive.length - 1] as Msg));
    expect(lateLive.filter((m) => seqOf(m) <= upTo).map(seqOf)).toEqual(watched.filter((m) => seqOf(m) >= seqOf(lateLive[0] as Msg) && seqOf(m) <= upTo).map(seqOf));
    expect(toolEvents(lateLive)).toHaveLength(2);

    // `since` on B, from before the idle calls: the replay reads them from the stream, then live, no gap, no duplicate
    const since = seqOf(watched[0] as Msg) - 1;
    const again = await feed(b);
    again.ws.send(JSON.stringify({ type: 'subscribe', since }));
    await waitFor(() => again.msgs.filter((m) => typeof m['seq'] === 'number').length >= watched.length, 10_000);
    const replayed = again.msgs.filter((m) => typeof m['seq'] === 'number');
    expect(replayed.slice(0, watched.length).map((m) => `${seqOf(m)}:${String(m['node_id'])}:${String(m['node_seq'])}`)).toEqual(
      watched.map((m) => `${seqOf(m)}:${String(m['node_id'])}:${String(m['node_seq'])}`),
    );
    expectStreamOrder(replayed.map(seqOf));
    expect(again.msgs.some((m) => m['type'] === 'warning')).toBe(false);
    for (const w of [watch, late, again]) w.ws.close();
  });

  it('reports cluster membership and NATS state in /health, and labels metrics with node_id', async () => {
    const a = nodes[0] as TestGateway;
    await waitFor(() => (a.cluster?.node.members.length ?? 0) >= 3, 10_000);
    const health = (await (await fetch(`${a.url}/health`)).json()) as { components: { cluster: { node_id: string; nats: { state: string }; members: string[] } } };
    expect(health.components.cluster.node_id).toBe('node_a');
    expect(health.components.cluster.nats.state).toBe('connected');
    expect(health.components.cluster.members).toEqual(['node_a', 'node_b', 'node_c']);
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    expect(metrics).toMatch(/tributary_cluster_nats_connected\{node_id="node_a"\} 1/);
    expect(metrics).toMatch(/tributary_http_requests_total\{[^}]*node_id="node_a"/);
  });

  it('keeps events published while nats-server restarts: buffered, then delivered, none lost', async () => {
    const [a, b] = nodes as [TestGateway, TestGateway, TestGateway];
    const sub = await feed(b);
    await nats.stop();
    await waitFor(() => a.cluster?.node.state !== 'connected', 10_000);
    await callEcho(a, 4, 'during');
    expect(a.cluster?.publisher.buffered ?? 0).toBeGreaterThan(0);
    await nats.start();
    await waitFor(() => a.cluster?.node.state === 'connected' && a.cluster.publisher.buffered === 0, 20_000);
    await callEcho(a, 1, 'after');
    await waitFor(() => toolEvents(sub.msgs).length >= 5, 20_000);
    const calls = toolEvents(sub.msgs).filter((m) => m['node_id'] === 'node_a');
    expect(calls).toHaveLength(5);
    const nodeSeqs = calls.map((m) => m['node_seq'] as number);
    for (let i = 1; i < nodeSeqs.length; i++) expect(nodeSeqs[i]).toBeGreaterThan(nodeSeqs[i - 1] as number);
    expect(a.cluster?.publisher.lost).toBe(0);
    expect(a.cluster?.node.reconnects).toBeGreaterThanOrEqual(1);
    sub.ws.close();
    // the configuration watch came back too: a client created on B after the restart reaches A
    const created = await fetch(`${b.url}/api/mcp/client`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'after_restart', connection_type: 'inprocess', inprocess_server: 'demo' }) });
    expect(created.status).toBe(201);
    await waitFor(() => a.manager.get('after_restart')?.state === 'connected', 5_000);
  });

  it('reports events dropped from a full buffer as one EventsLost event and a metric', async () => {
    const small = await startTestGateway([demoClient()], {}, { cluster: { nats_url: nats.url, node_id: 'node_small', max_buffered_events: 3 } });
    nodes.push(small);
    const b = nodes[1] as TestGateway;
    const sub = await feed(b);
    await nats.stop();
    await waitFor(() => small.cluster?.node.state !== 'connected', 10_000);
    await callEcho(small, 6, 'over');
    const lost = small.cluster?.publisher.lost ?? 0;
    expect(lost).toBeGreaterThan(0);
    await nats.start();
    await waitFor(() => small.cluster?.node.state === 'connected' && small.cluster.publisher.buffered === 0, 20_000);
    await callEcho(small, 1, 'later');
    // every dropped event is named by a report (one per run of drops), in the stream before what followed
    const reports = (): Msg[] => sub.msgs.filter((m) => m['event_type'] === 'EventsLost' && m['node_id'] === 'node_small');
    await waitFor(() => reports().reduce((n, r) => n + (r['count'] as number), 0) >= lost, 20_000);
    expect(reports().reduce((n, r) => n + (r['count'] as number), 0)).toBe(lost);
    for (const r of reports()) {
      expect(r['reason']).toBe('buffer_full');
      expect((r['to_node_seq'] as number) - (r['from_node_seq'] as number) + 1).toBeGreaterThanOrEqual(r['count'] as number);
    }
    const delivered = new Set(sub.msgs.filter((m) => m['node_id'] === 'node_small' && m['event_type'] !== 'EventsLost').map((m) => m['node_seq'] as number));
    for (const r of reports()) for (let q = r['from_node_seq'] as number; q <= (r['to_node_seq'] as number); q++) expect(delivered.has(q)).toBe(false);
    const metrics = await (await fetch(`${small.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`tributary_cluster_events_lost_total\\{node_id="node_small"\\} ${lost}`));
    sub.ws.close();
  });
});

describe('cluster: start-up without NATS', () => {
  it('refuses to start with a clear message when NATS cannot be reached', async () => {
    const port = await freePort();
    await expect(startTestGateway([demoClient()], {}, { cluster: { nats_url: `nats://127.0.0.1:${port}`, node_id: 'lonely', connect_timeout_ms: 500 } })).rejects.toThrow(
      /cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+ .*does not start alone/,
    );
  });

  it('refuses an unknown key in the cluster section', async () => {
    await expect(startTestGateway([], {}, { cluster: { nats_url: 'nats://127.0.0.1:1', node_id: 'x', nodeid: 'y' } })).rejects.toThrow(/cluster\.nodeid: unknown key/);
  });
});
