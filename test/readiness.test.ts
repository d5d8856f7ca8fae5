/**
 * Readiness apart from liveness: a gateway takes MCP traffic only after its initial catalogue
 * load (or after `server.ready_timeout_ms`, then it says what is still loading). Real parts: the
 * gateway on a loopback port, server-everything over stdio started late by a shell wrapper, a
 * stdio command that never answers, real SDK and `ws` clients.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { resolveConfig } from '../src/config/load.js';
import { packageBin } from '../src/config/default.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { connectClient, demoClient, send } from './helpers/gateway.js';

const EVERYTHING = packageBin('@modelcontextprotocol/server-everything');

/** A free loopback port (the gateway is started on it without waiting for `startGateway`). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

interface Started {
  readonly port: number;
  readonly started: Promise<Gateway>;
  readonly dataDir: string;
}

const running: Started[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) {
    const gw = await r.started.catch(() => undefined);
    await gw?.close();
    rmSync(r.dataDir, { recursive: true, force: true });
  }
});

/** Starts a gateway on a fixed free port and returns at once (before it is ready). */
async function begin(mcpClients: Record<string, unknown>[], server: Record<string, unknown> = {}): Promise<Started> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-ready-'));
  const config = resolveConfig({ server: { host: '127.0.0.1', port, ...server }, data_dir: dataDir, mcp_clients: mcpClients }, 'test', {});
  const started = startGateway(config, { log: createLogger('silent') });
  const r = { port, started, dataDir };
  running.push(r);
  return r;
}

/** Resolves once the port answers `/health/live` (the port is bound; upstreams may still be loading). */
async function live(port: number): Promise<void> {
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health/live`);
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ status: 'alive' });
      return;
    } catch (err) {
      if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED') throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

describe('readiness', () => {
  it('holds MCP traffic until the initial catalogue load: a call right after the port opens is served, not "Unknown tool"', async () => {
    // server-everything, started a moment late: the port is open long before its tools are listed
    const slow = {
      name: 'everything',
      connection_type: 'stdio',
      stdio_config: { command: 'sh', args: ['-c', 'sleep 1.5; exec "$0" "$@"', process.execPath, EVERYTHING, 'stdio'] },
    };
    const g = await begin([slow]);
    await live(g.port);
    const notReady = await send(`http://127.0.0.1:${g.port}/health/ready`, { method: 'GET' });
    expect(notReady.status).toBe(503);
    expect(notReady.json).toMatchObject({ status: 'starting', readiness: { ready: false, initial_load: 'pending' } });
    expect((await send(`http://127.0.0.1:${g.port}/health`, { method: 'GET' })).json).toMatchObject({ status: 'unhealthy', components: { server: { status: 'starting' } } });

    // /ws: initialize and a call sent at once on a fresh socket
    const ws = new WebSocket(`ws://127.0.0.1:${g.port}/ws`, 'mcp');
    const replies: Record<string, unknown>[] = [];
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as Record<string, unknown>;
      // answers only (list_changed and log notifications may come in between)
      if ('id' in m) replies.push(m);
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws', version: '1' } } }));
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'everything-echo', arguments: { message: 'over ws' } } }));

    // POST /v1/mcp/tool/execute, sent at once too
    const executed = send(`http://127.0.0.1:${g.port}/v1/mcp/tool/execute?format=chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'call_1', type: 'function', function: { name: 'everything-echo', arguments: '{"message":"rest"}' } }),
    });

    // /mcp: the SDK client's initialize and call, sent before the upstream has started
    const client = await connectClient({ mcpUrl: new URL(`http://127.0.0.1:${g.port}/mcp`) });
    const r = await client.request({ method: 'tools/call', params: { name: 'everything-echo', arguments: { message: 'early' } } }, CallToolResultSchema);
    expect(r.content[0]).toEqual({ type: 'text', text: 'Echo: early' });
    expect(client.getServerCapabilities()?.resources).toBeDefined();
    await client.close();

    for (let i = 0; replies.length < 2 && i < 500; i++) await new Promise((res) => setTimeout(res, 10));
    ws.close();
    expect(replies.map((m) => m['id'])).toEqual([1, 2]);
    expect(replies[1]).toMatchObject({ result: { content: [{ type: 'text', text: 'Echo: over ws' }] } });

    const rest = await executed;
    expect(rest.status).toBe(200);
    expect(rest.text).toContain('Echo: rest');

    const ready = await send(`http://127.0.0.1:${g.port}/health/ready`, { method: 'GET' });
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ status: 'ready', readiness: { ready: true, initial_load: 'complete', pending_upstreams: [] }, upstreams_down: [] });
    expect((await send(`http://127.0.0.1:${g.port}/health/nope`, { method: 'GET' })).status).toBe(404);
  });

  it('after ready_timeout_ms serves what it has and says what is still loading', async () => {
    // a stdio command that never answers initialize: only its connect timeout would end the load
    const silent = { name: 'silent', connection_type: 'stdio', connect_timeout_ms: 60_000, stdio_config: { command: 'sh', args: ['-c', 'exec sleep 120'] } };
    const g = await begin([demoClient('demo'), silent], { ready_timeout_ms: 300 });
    const gw = await g.started;
    const ready = await send(`${gw.url}/health/ready`, { method: 'GET' });
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ status: 'degraded', readiness: { ready: true, initial_load: 'timed_out', pending_upstreams: ['silent'] }, upstreams_down: ['silent'] });
    const health = await send(`${gw.url}/health`, { method: 'GET' });
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'degraded', components: { server: { status: 'serving' }, readiness: { initial_load: 'timed_out', pending_upstreams: ['silent'] } } });
    const client = await connectClient({ mcpUrl: new URL(`${gw.url}/mcp`) });
    const r = await client.request({ method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'partial' } } }, CallToolResultSchema);
    expect(r.isError).not.toBe(true);
    await client.close();
  });
});
