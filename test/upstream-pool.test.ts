/**
 * Stdio upstream pools (`stdio_config.pool_size`): N real server-everything processes behind one
 * client name, least-loaded dispatch, a server→client request answered on the process that asked,
 * one process killed with SIGKILL while the other serves and the dead one restarts, no orphan
 * process after the client is deleted, and the management API's validation of `pool_size`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallToolResultSchema, CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, everythingClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

interface Member {
  member: number;
  pid: number | null;
  state: string;
  in_flight: number;
  queued: number;
  calls: number;
  restarts: number;
}

let gw: TestGateway;

/** Resolves with the first value the async `probe` returns that is not undefined; rejects after `timeoutMs`. */
async function waitForValue<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function pooled(name: string, size: number): Record<string, unknown> {
  const base = everythingClient(name) as { stdio_config: Record<string, unknown> };
  return { ...base, stdio_config: { ...base.stdio_config, pool_size: size }, reconnect: { initial_ms: 50, max_ms: 200 } };
}

async function health(): Promise<{ components: { upstreams: Record<string, string>; upstream_pools?: Record<string, Member[]> } }> {
  const r = await send(`${gw.url}/health`, { method: 'GET' });
  return r.json as { components: { upstreams: Record<string, string>; upstream_pools?: Record<string, Member[]> } };
}

async function members(name = 'pool'): Promise<Member[]> {
  return (await health()).components.upstream_pools?.[name] ?? [];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return send(`${gw.url}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

beforeAll(async () => {
  gw = await startTestGateway([pooled('pool', 2)]);
}, 60_000);

afterAll(async () => {
  await gw.stop();
});

describe('stdio upstream pool', () => {
  it('starts pool_size processes behind one client name and lists its tools once', async () => {
    const m = await members();
    expect(m).toHaveLength(2);
    expect(m.map((x) => x.state)).toEqual(['connected', 'connected']);
    const pids = m.map((x) => x.pid);
    expect(new Set(pids).size).toBe(2);
    for (const pid of pids) expect(alive(pid as number)).toBe(true);
    const client = await connectClient(gw);
    const tools = await client.listTools();
    expect(tools.tools.filter((t) => t.name === 'pool-echo')).toHaveLength(1);
    await client.close();
  });

  it('sends calls to the least-loaded process: two long calls run on different processes, light traffic reaches both', async () => {
    const client = await connectClient(gw);
    const before = await members();
    const long = [0, 1].map(() => client.request({ method: 'tools/call', params: { name: 'pool-trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } } }, CallToolResultSchema));
    const busy = await waitForValue('both processes busy', async () => {
      const m = await members();
      return m.every((x) => x.in_flight === 1) ? m : undefined;
    }).catch(() => undefined);
    await Promise.all(long);
    expect(busy?.map((x) => x.in_flight)).toEqual([1, 1]);
    for (let i = 0; i < 10; i++) {
      const r = await client.request({ method: 'tools/call', params: { name: 'pool-echo', arguments: { message: `m${i}` } } }, CallToolResultSchema);
      expect(r.content[0]).toEqual({ type: 'text', text: `Echo: m${i}` });
    }
    const after = await members();
    for (const i of [0, 1]) expect((after[i]?.calls ?? 0) - (before[i]?.calls ?? 0)).toBeGreaterThanOrEqual(4);
    await client.close();
  });

  it('answers a server→client request (sampling) on the process that asked, whichever it is', async () => {
    const client = await connectClient(gw, { sampling: {} });
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({ model: 'm', role: 'assistant', content: { type: 'text', text: 'sampled 42' } }));
    const before = await members();
    for (let i = 0; i < 4; i++) {
      const r = await client.callTool({ name: 'pool-trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } });
      expect(JSON.stringify(r.content)).toContain('sampled 42');
    }
    const after = await members();
    // the four calls went to both processes, and each process's request found its caller
    for (const i of [0, 1]) expect((after[i]?.calls ?? 0) - (before[i]?.calls ?? 0)).toBeGreaterThanOrEqual(1);
    await client.close();
  });

  it('keeps a resource subscription on one process: unsubscribe goes where subscribe went', async () => {
    const client = await connectClient(gw);
    const { resources } = await client.listResources();
    const uri = resources[0]?.uri;
    expect(uri).toBeDefined();
    for (let round = 0; round < 3; round++) {
      const before = await members();
      await client.subscribeResource({ uri: uri as string });
      const mid = await members();
      await client.unsubscribeResource({ uri: uri as string });
      const after = await members();
      const sub = [0, 1].map((i) => (mid[i]?.calls ?? 0) - (before[i]?.calls ?? 0));
      const unsub = [0, 1].map((i) => (after[i]?.calls ?? 0) - (mid[i]?.calls ?? 0));
      expect(sub.reduce((a, b) => a + b)).toBe(1);
      expect(unsub).toEqual(sub);
    }
    await client.close();
  });

  it('keeps serving when one process is killed with SIGKILL, and restarts it', async () => {
    const [first] = await members();
    const victim = first?.pid as number;
    process.kill(victim, 'SIGKILL');
    await waitForValue('the gateway to see the process gone', async () => ((await members())[0]?.state !== 'connected' ? true : undefined));
    const client = await connectClient(gw);
    for (let i = 0; i < 6; i++) {
      const r = await client.request({ method: 'tools/call', params: { name: 'pool-echo', arguments: { message: `after ${i}` } } }, CallToolResultSchema);
      expect(r.content[0]).toEqual({ type: 'text', text: `Echo: after ${i}` });
    }
    await client.close();
    expect((await health()).components.upstreams['pool']).toBe('connected');
    const restarted = await waitForValue('the killed process to restart', async () => {
      const m = (await members())[0];
      return m?.state === 'connected' && m.pid !== victim ? m : undefined;
    });
    expect(restarted.restarts).toBe(1);
    expect(alive(victim)).toBe(false);
  });

  it('validates pool_size in the management API', async () => {
    const body = (size: unknown): Record<string, unknown> => {
      const c = pooled('extra', 2) as { stdio_config: Record<string, unknown> };
      return { name: 'extra', connection_type: 'stdio', stdio_config: { ...c.stdio_config, pool_size: size } };
    };
    for (const bad of [0, 65, 1.5, 'two']) {
      const r = await api('POST', '/api/mcp/client', body(bad));
      expect(r.status).toBe(400);
      expect(JSON.stringify(r.json)).toContain('pool_size');
    }
    const ok = await api('POST', '/api/mcp/client', body(3));
    expect(ok.status).toBe(201);
    const m = await members('extra');
    expect(m.map((x) => x.state)).toEqual(['connected', 'connected', 'connected']);
  });

  it('leaves no process behind when the client is deleted', async () => {
    const list = (await api('GET', '/api/mcp/clients')).json as { clients: { config: { name: string; client_id: string } }[] };
    for (const name of ['pool', 'extra']) {
      const pids = (await members(name)).map((x) => x.pid as number);
      expect(pids.every((p) => alive(p))).toBe(true);
      const id = list.clients.find((c) => c.config.name === name)?.config.client_id;
      const r = await api('DELETE', `/api/mcp/client/${id ?? ''}`);
      expect(r.status).toBe(200);
      for (const pid of pids) expect(alive(pid)).toBe(false);
      expect((await health()).components.upstream_pools?.[name]).toBeUndefined();
    }
  });
});
