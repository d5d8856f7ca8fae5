/**
 * Errors where the user looks: a client that cannot start or has stopped says why (spawn
 * failure, exit code and stderr, HTTP status or network cause) in the management API's client
 * record, in `/health` and in the `McpServerStateChanged` event, keeps backing off and says when
 * it retries. And two upstreams claiming one resource URI follow the documented rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { GatewayEvent } from '../src/streams/events.js';
import { connectClient, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

/** Resolves with the first value `probe()` resolves to that is not undefined, null or false (polled every 20 ms). */
async function waitFor<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const FAULT = join(import.meta.dirname, 'fixtures/fault-server.ts');

interface ClientView {
  state: string;
  last_error: string | null;
  next_retry_at: string | null;
  config: { client_id: string; name: string };
}

interface Health {
  components: { upstreams: Record<string, string>; upstream_errors: Record<string, { last_error: string; next_retry_at?: string }> };
}

describe('errors where the user looks', () => {
  let gw: TestGateway;
  let refused: Server;
  let notFound: Server;
  const events: GatewayEvent[] = [];
  let sub: Subscription;

  beforeAll(async () => {
    gw = await startTestGateway([]);
    sub = gw.bus.events$.subscribe((e) => events.push(e));
    // a port that refuses connections: bound, then closed
    refused = createServer();
    await new Promise<void>((r) => refused.listen(0, '127.0.0.1', r));
    // an HTTP server that answers 404 to everything
    notFound = createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('no MCP here'));
    await new Promise<void>((r) => notFound.listen(0, '127.0.0.1', r));
  });

  afterAll(async () => {
    sub?.unsubscribe();
    await gw?.stop();
    notFound?.close();
  });

  const create = async (body: Record<string, unknown>): Promise<ClientView> => {
    const r = await send(`${gw.url}/api/mcp/client`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(r.status, r.text).toBe(201);
    return r.json as ClientView;
  };
  const get = async (id: string): Promise<ClientView> => (await send(`${gw.url}/api/mcp/client/${id}`, {})).json as ClientView;
  const health = async (): Promise<Health> => (await send(`${gw.url}/health`, {})).json as Health;
  const stateEvent = (name: string): (GatewayEvent & { error?: string }) | undefined =>
    events.find((e) => e.event_type === 'McpServerStateChanged' && e.mcp_server_id === name && e.new_state === 'error') as (GatewayEvent & { error?: string }) | undefined;

  it('a command that does not exist: spawn ENOENT in the create answer, GET, /health and the event; it backs off and says when it retries', async () => {
    const created = await create({ name: 'nocmd', connection_type: 'stdio', stdio_config: { command: 'tributary-no-such-command-here' } });
    expect(created.state).toBe('error');
    expect(created.last_error).toMatch(/cannot start stdio command "tributary-no-such-command-here": spawn tributary-no-such-command-here ENOENT/);
    const viewed = await get(created.config.client_id);
    expect(viewed.last_error).toBe(created.last_error);
    // the next attempt is scheduled, not immediate: the default schedule waits 1 s ±20%
    const next = await waitFor('a scheduled retry', async () => (await get(created.config.client_id)).next_retry_at);
    const h = await health();
    expect(h.components.upstreams['nocmd']).toBe('error');
    expect(h.components.upstream_errors['nocmd']?.last_error).toMatch(/ENOENT/);
    expect(h.components.upstream_errors['nocmd']?.next_retry_at).toBe(next);
    expect(stateEvent('nocmd')?.error).toMatch(/spawn tributary-no-such-command-here ENOENT/);
    // after that attempt fails too, the next one is further out (backoff, not a busy loop)
    const later = await waitFor('the next scheduled retry', async () => {
      const n = (await get(created.config.client_id)).next_retry_at;
      return n !== null && n !== next ? n : undefined;
    }, 10_000);
    const attempts = gw.logs.filter((l) => l.includes('"reconnect attempt failed"') && l.includes('"upstream":"nocmd"')).length;
    expect(attempts).toBeLessThanOrEqual(2);
    expect(Date.parse(later) - Date.parse(next)).toBeGreaterThan(1000);
  });

  it('a process that exits at start: exit code and the stderr line that says why', async () => {
    const missing = join(gw.dataDir, 'no-such-server.js');
    const created = await create({ name: 'noscript', connection_type: 'stdio', stdio_config: { command: process.execPath, args: [missing] } });
    expect(created.state).toBe('error');
    expect(created.last_error).toMatch(/^stdio process \(pid \d+\) exited with code 1; stderr: .*Cannot find module '.*no-such-server\.js'/);
    expect((await health()).components.upstream_errors['noscript']?.last_error).toContain('Cannot find module');
    expect(stateEvent('noscript')?.error).toContain('exited with code 1');
  });

  it('an HTTP upstream that is down: the network cause (ECONNREFUSED), not just "fetch failed"', async () => {
    const addr = refused.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    await new Promise<void>((r) => refused.close(() => r()));
    const created = await create({ name: 'down', connection_type: 'http', connection_string: `http://127.0.0.1:${port}/mcp` });
    expect(created.state).toBe('error');
    expect(created.last_error).toMatch(new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
    expect(stateEvent('down')?.error).toMatch(/ECONNREFUSED/);
  });

  it('an HTTP upstream that answers an error status: the status', async () => {
    const addr = notFound.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const created = await create({ name: 'notmcp', connection_type: 'http', connection_string: `http://127.0.0.1:${port}/mcp` });
    expect(created.state).toBe('error');
    expect(created.last_error).toMatch(/HTTP 404/);
  });

  it('a stdio upstream that dies while connected: its exit in last_error and the event', async () => {
    const created = await create({ name: 'dies', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', FAULT] } });
    expect(created.state).toBe('connected');
    expect(created.last_error).toBeNull();
    const pid = gw.manager.get('dies')?.pid;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid ?? 0, 'SIGKILL');
    const lost = await waitFor('the lost connection event', () =>
      events.find((e) => e.event_type === 'McpServerStateChanged' && e.mcp_server_id === 'dies' && e.new_state === 'disconnected') as (GatewayEvent & { error?: string }) | undefined,
    );
    expect(lost.error).toMatch(new RegExp(`stdio process \\(pid ${pid}\\) killed by SIGKILL`));
    await waitFor('reconnected', () => (gw.manager.get('dies')?.state === 'connected' ? true : undefined), 15_000);
    expect((await get(created.config.client_id)).last_error).toBeNull();
  });
});

describe('two upstreams with the same resource URI', () => {
  let gw: TestGateway;
  let client: Client;
  const events: GatewayEvent[] = [];
  let sub: Subscription;
  const fault = (name: string, tag: string): Record<string, unknown> => ({
    name,
    connection_type: 'stdio',
    stdio_config: { command: process.execPath, args: ['--import', 'tsx', FAULT], envs: [`FAULT_RESOURCE=${tag}`] },
  });

  beforeAll(async () => {
    gw = await startTestGateway([fault('alpha', 'from alpha'), fault('beta', 'from beta')]);
    sub = gw.bus.events$.subscribe((e) => events.push(e));
    client = await connectClient(gw);
  });

  afterAll(async () => {
    sub?.unsubscribe();
    await client?.close();
    await gw?.stop();
  });

  it('the first configured keeps the URI and the template; the other is left out of the lists', async () => {
    const resources = (await client.listResources()).resources.filter((r) => r.uri === 'shared://readme');
    expect(resources).toHaveLength(1);
    const templates = (await client.listResourceTemplates()).resourceTemplates.filter((t) => t.uriTemplate === 'shared://items/{id}');
    expect(templates).toHaveLength(1);
    const read = await client.readResource({ uri: 'shared://readme' });
    expect(read.contents[0]).toMatchObject({ text: 'from alpha' });
    const item = await client.readResource({ uri: 'shared://items/7' });
    expect(item.contents[0]).toMatchObject({ text: 'from alpha' });
  });

  it('the conflict is a warning in the log and a ResourceUriConflict event per URI', () => {
    // the events of the start-up catalogue load were published before this test subscribed: read them from the log
    const warnings = gw.logs.filter((l) => l.includes('resource URI claimed by two upstreams'));
    expect(warnings.some((l) => l.includes('"uri":"shared://readme"') && l.includes('"kept_by":"alpha"') && l.includes('"hidden_from":"beta"'))).toBe(true);
    expect(warnings.some((l) => l.includes('"uri":"shared://items/{id}"') && l.includes('"kind":"resource_template"'))).toBe(true);
  });

  it('a reconnect that loads the same catalogue does not warn again; removing the first hands the URI to the other with no warning', async () => {
    const before = gw.logs.filter((l) => l.includes('resource URI claimed by two upstreams')).length;
    await gw.manager.reconnect('beta');
    expect(gw.logs.filter((l) => l.includes('resource URI claimed by two upstreams')).length).toBe(before);
    await gw.manager.remove('alpha');
    const read = await client.readResource({ uri: 'shared://readme' });
    expect(read.contents[0]).toMatchObject({ text: 'from beta' });
    expect(events.filter((e) => e.event_type === 'ResourceUriConflict')).toEqual([]);
  });
});
