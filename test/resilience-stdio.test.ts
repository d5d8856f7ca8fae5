/**
 * Fault tests with real stdio subprocesses: an upstream SIGKILLed in the middle of
 * calls (in-flight calls fail naming it, the gateway stays up, the upstream comes back with the
 * backoff and its tools work again, the events arrive in order), a crash loop that gives up after
 * `reconnect.max_retries`, a manual close that must not reconnect, garbage on stdout, a stdout
 * line over the SDK's 10 MB buffer, a notification flood, and the per-upstream concurrency limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Subscription } from 'rxjs';
import type { GatewayEvent } from '../src/streams/events.js';
import { connectClient, demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { waitForValue as waitFor } from './helpers/wait.js';

const FAULT = join(import.meta.dirname, 'fixtures/fault-server.ts');

function faultClient(name: string, extra: Record<string, unknown> = {}, envs: string[] = []): Record<string, unknown> {
  return {
    name,
    connection_type: 'stdio',
    stdio_config: { command: process.execPath, args: ['--import', 'tsx', FAULT], ...(envs.length > 0 ? { envs } : {}) },
    ...extra,
  };
}

function text(result: unknown): string {
  const first = CallToolResultSchema.parse(result).content[0];
  return first?.type === 'text' ? first.text : '';
}

/** Linux process state letter (`Z` = zombie), or undefined when the pid is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

let gw: TestGateway;
let client: Client;
const events: GatewayEvent[] = [];
let eventSub: Subscription;

beforeAll(async () => {
  gw = await startTestGateway([
    faultClient('crashy', { reconnect: { initial_ms: 100, max_ms: 400 }, health_check_interval_ms: 60_000 }),
    faultClient('looper', { reconnect: { initial_ms: 50, max_ms: 100, max_retries: 3 }, health_check_interval_ms: 60_000 }),
    faultClient('noisy', { health_check_interval_ms: 200, reconnect: { initial_ms: 100, max_ms: 400 } }, ['FAULT_GARBAGE_AT_START=1']),
    faultClient('busy', { max_concurrent_calls: 2, max_queued_calls: 1 }),
    faultClient('manual', { reconnect: { initial_ms: 50, max_ms: 100 } }),
    // reconnects on a slower schedule than `manual` would: once it is back, a reconnect of
    // `manual` started by the same kind of loss would have been seen already
    faultClient('sentinel', { reconnect: { initial_ms: 200, max_ms: 400 }, health_check_interval_ms: 60_000 }),
    demoClient('demo'),
  ]);
  eventSub = gw.bus.events$.subscribe((e) => events.push(e));
  client = await connectClient(gw);
});

afterAll(async () => {
  eventSub?.unsubscribe();
  await client?.close();
  await gw?.stop();
});

/** Seq of the last event seen so far. */
function lastSeq(): number {
  return events.at(-1)?.seq ?? 0;
}

function lifecycleOf(name: string, since: number, from: readonly GatewayEvent[] = events): string[] {
  return from
    .filter((e) => e.seq > since && 'mcp_server_id' in e && e.mcp_server_id === name)
    .flatMap((e) => {
      switch (e.event_type) {
        case 'McpServerStateChanged':
          return [`state ${e.old_state}->${e.new_state}`];
        case 'McpServerStopped':
          return ['stopped'];
        case 'McpServerStarted':
          return ['started'];
        case 'McpServerDegraded':
          return ['degraded'];
        default:
          return [];
      }
    });
}

describe('a stdio upstream killed with SIGKILL mid-call', () => {
  it('fails the calls in flight naming it, keeps serving the others, restarts it, and its tools work again', async () => {
    const crashy = gw.manager.get('crashy');
    const oldPid = crashy?.pid;
    expect(oldPid).toBeGreaterThan(0);
    expect(text(await client.callTool({ name: 'crashy-echo', arguments: { message: 'before' } }))).toBe('Echo: before');
    const since = lastSeq();

    const inflight = Array.from({ length: 5 }, () => client.callTool({ name: 'crashy-wait', arguments: {} }, CallToolResultSchema, { timeout: 20_000 }));
    await waitFor('5 calls in flight', () => crashy?.inflight === 5);
    process.kill(oldPid ?? -1, 'SIGKILL');

    const settled = await Promise.allSettled(inflight);
    for (const r of settled) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as { code?: number; message: string };
      expect(err.code).toBe(-32003);
      expect(err.message).toMatch(/Upstream "crashy" closed the connection \(stdio process \(pid \d+\) killed by SIGKILL\) during tools\/call/);
    }
    // the gateway and the other upstreams carry on during the outage
    expect(text(await client.callTool({ name: 'demo-echo', arguments: { message: 'still here' } }))).toBe('Echo: still here');
    const health = await fetch(`${gw.url}/health`);
    expect(health.status).toBe(200);
    const during = await client.callTool({ name: 'crashy-echo', arguments: { message: 'during' } }).catch((e: unknown) => e as Error);
    if (during instanceof Error) expect(during.message).toMatch(/Upstream "crashy" is not connected/);

    await waitFor('crashy restarted', () => events.some((e) => e.seq > since && e.event_type === 'McpServerStarted' && e.mcp_server_id === 'crashy'));
    expect(crashy?.state).toBe('connected');
    expect(text(await client.callTool({ name: 'crashy-echo', arguments: { message: 'after' } }))).toBe('Echo: after');
    const newPid = Number(text(await client.callTool({ name: 'crashy-pid', arguments: {} })));
    expect(newPid).not.toBe(oldPid);
    expect(crashy?.pid).toBe(newPid);
    // the killed process was reaped: no zombie left behind
    await waitFor('old process reaped', () => procState(oldPid ?? -1) === undefined, 5000);

    expect(lifecycleOf('crashy', since)).toEqual(['state connected->disconnected', 'stopped', 'state disconnected->connected', 'started']);
    const stopped = events.find((e) => e.seq > since && e.event_type === 'McpServerStopped' && e.mcp_server_id === 'crashy');
    expect(stopped).toMatchObject({ reason: expect.stringMatching(/killed by SIGKILL/) as unknown });
  });

  it('a crash loop gives up after reconnect.max_retries attempts and says so', async () => {
    const looper = gw.manager.get('looper');
    const since = lastSeq();
    // make every restart fail: the command now exits at once
    if (!looper) throw new Error('no looper');
    looper.config = { ...looper.config, stdio_config: { command: process.execPath, args: ['-e', 'process.exit(3)'] } };
    process.kill(looper.pid ?? -1, 'SIGKILL');
    const degraded = await waitFor('looper gave up', () =>
      events.find((e) => e.seq > since && e.event_type === 'McpServerDegraded' && e.mcp_server_id === 'looper'),
    );
    expect(degraded).toMatchObject({ consecutive_failures: 3, reason: expect.stringMatching(/^gave up after 3 reconnect attempts/) as unknown });
    expect(looper.state).toBe('error');
    expect(lifecycleOf('looper', since)).toEqual(['state connected->disconnected', 'stopped', 'state disconnected->error', 'degraded']);
    expect(gw.logs.some((l) => l.includes('reconnect gave up') && l.includes('"upstream":"looper"'))).toBe(true);
  });

  it('a manual close does not trigger an automatic reconnect', async () => {
    const manual = gw.manager.get('manual');
    const sentinel = gw.manager.get('sentinel');
    const pid = manual?.pid ?? -1;
    const since = lastSeq();
    /** Kills the sentinel and resolves once it has been restarted (its backoff is 4× manual's). */
    const sentinelCycle = async (): Promise<void> => {
      const from = lastSeq();
      process.kill(sentinel?.pid ?? -1, 'SIGKILL');
      await waitFor('sentinel restarted', () => lifecycleOf('sentinel', from).includes('started'));
    };
    await manual?.close('operator');
    expect(procState(pid)).toBeUndefined();
    await sentinelCycle();
    expect(manual?.state).toBe('disconnected');
    expect(lifecycleOf('manual', since)).toEqual(['state connected->disconnected']);
    // removing it through the manager does not either
    await gw.manager.remove('manual', 'test');
    await waitFor('manual stopped', () => lifecycleOf('manual', since).includes('stopped'));
    await sentinelCycle();
    expect(lifecycleOf('manual', since)).toEqual(['state connected->disconnected', 'stopped']);
  });
});

describe('misbehaving stdio output', () => {
  it('survives garbage on stdout before the handshake and between answers', async () => {
    const noisy = gw.manager.get('noisy');
    expect(noisy?.state).toBe('connected');
    const since = lastSeq();
    expect(text(await client.callTool({ name: 'noisy-garbage', arguments: { lines: 2000 } }))).toBe('wrote 2000 lines of garbage');
    expect(text(await client.callTool({ name: 'noisy-echo', arguments: { message: 'clean' } }))).toBe('Echo: clean');
    expect(noisy?.state).toBe('connected');
    expect(gw.logs.some((l) => l.includes('upstream transport error') && l.includes('"upstream":"noisy"'))).toBe(true);
    // health checks keep passing
    await waitFor('a health check of noisy', () => events.some((e) => e.seq > since && e.event_type === 'HealthCheckPassed' && e.mcp_server_id === 'noisy'));
    expect(lifecycleOf('noisy', since)).toEqual([]);
  });

  it('restarts an upstream that writes a line over the 10 MB read buffer, failing its call', async () => {
    const noisy = gw.manager.get('noisy');
    const oldPid = noisy?.pid;
    const since = lastSeq();
    const err = (await client.callTool({ name: 'noisy-blob', arguments: { bytes: 11 * 1024 * 1024 } }).catch((e: unknown) => e)) as { code?: number; message: string };
    expect(err.code).toBe(-32003);
    expect(err.message).toMatch(/Upstream "noisy" closed the connection \(stdio process \(pid \d+\) exited with code 0 after transport error: ReadBuffer exceeded maximum size/);
    await waitFor('noisy restarted', () => events.some((e) => e.seq > since && e.event_type === 'McpServerStarted' && e.mcp_server_id === 'noisy'));
    expect(noisy?.pid).not.toBe(oldPid);
    expect(text(await client.callTool({ name: 'noisy-echo', arguments: { message: 'back' } }))).toBe('Echo: back');
  });
});

describe('concurrency limit on a stdio upstream', () => {
  it('queues one call, fails the next with -32006 naming the upstream, and runs the queued call when a slot frees', async () => {
    const busy = gw.manager.get('busy');
    const ac = [new AbortController(), new AbortController()];
    // settled into values at once, so their rejections are never unhandled
    const waiting = ac.map((c) =>
      client.callTool({ name: 'busy-wait', arguments: {} }, CallToolResultSchema, { signal: c.signal, timeout: 20_000 }).then(
        () => new Error('answered'),
        (e: unknown) => e as Error,
      ),
    );
    await waitFor('2 calls in flight', () => busy?.inflight === 2);
    const queued = client.callTool({ name: 'busy-echo', arguments: { message: 'queued' } });
    await waitFor('1 call queued', () => busy?.queued === 1);
    const err = (await client.callTool({ name: 'busy-echo', arguments: { message: 'rejected' } }).catch((e: unknown) => e)) as { code?: number; message: string };
    expect(err.code).toBe(-32006);
    expect(err.message).toMatch(/Upstream "busy" is overloaded: 2 calls in flight and 1 queued/);
    // the downstream client gives up on one wait: the gateway cancels it upstream and the slot goes to the queued call
    ac[0]?.abort('done waiting');
    expect(text(await queued)).toBe('Echo: queued');
    expect((await waiting[0])?.message).toMatch(/done waiting/);
    expect(busy?.inflight).toBe(1);
    ac[1]?.abort('done waiting too');
    expect((await waiting[1])?.message).toMatch(/done waiting too/);
    await waitFor('no call in flight', () => busy?.inflight === 0);
    expect(text(await client.callTool({ name: 'busy-echo', arguments: { message: 'again' } }))).toBe('Echo: again');
  });
});

describe('a notification flood', () => {
  // its own gateway: the background flood would slow every other test in this file
  let fgw: TestGateway;
  let fclient: Client;
  const fevents: GatewayEvent[] = [];
  let fsub: Subscription;

  beforeAll(async () => {
    fgw = await startTestGateway([faultClient('flood', { health_check_interval_ms: 200, health_check_timeout_ms: 2000 }, ['FAULT_FLOOD_EVERY_MS=50']), demoClient('demo')]);
    fsub = fgw.bus.events$.subscribe((e) => fevents.push(e));
    fclient = await connectClient(fgw);
  });

  afterAll(async () => {
    fsub?.unsubscribe();
    await fclient?.close();
    await fgw?.stop();
  });

  it('keeps answering through a notification flood, on the flooding upstream and the others', async () => {
    const flood = fgw.manager.get('flood');
    let relayed = 0;
    const sub = fgw.manager.notifications$.subscribe(({ upstream }) => {
      if (upstream.name === 'flood') relayed++;
    });
    try {
      const since = fevents.at(-1)?.seq ?? 0;
      const big = fclient.callTool({ name: 'flood-flood', arguments: { count: 5000 } }, CallToolResultSchema, { timeout: 30_000 });
      for (let i = 0; i < 20; i++) {
        expect(text(await fclient.callTool({ name: 'demo-echo', arguments: { message: `m${i}` } }))).toBe(`Echo: m${i}`);
        expect(text(await fclient.callTool({ name: 'flood-echo', arguments: { message: `f${i}` } }))).toBe(`Echo: f${i}`);
      }
      expect(text(await big)).toBe('flooded 5000');
      expect(relayed).toBeGreaterThan(5000);
      expect(flood?.state).toBe('connected');
      await waitFor('a health check of flood', () => fevents.some((e) => e.seq > since && e.event_type === 'HealthCheckPassed' && e.mcp_server_id === 'flood'));
      expect(lifecycleOf('flood', since, fevents)).toEqual([]);
    } finally {
      sub.unsubscribe();
    }
  });
});
