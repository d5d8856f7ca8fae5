/**
 * Test helpers: start a real gateway on 127.0.0.1 port 0 with real upstreams, and connect real
 * SDK clients to it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { resolveConfig } from '../../src/config/load.js';
import { packageBin } from '../../src/config/default.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger, type Logger } from '../../src/log/logger.js';

/** Config entry for the real server-everything over stdio. */
export function everythingClient(name = 'everything'): Record<string, unknown> {
  return {
    name,
    connection_type: 'stdio',
    stdio_config: { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-everything'), 'stdio'] },
  };
}

/** Config entry for the in-process demo upstream. */
export function demoClient(name = 'demo', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, connection_type: 'inprocess', inprocess_server: 'demo', ...extra };
}

export interface TestGateway extends Gateway {
  /** Log lines written by the gateway (JSON strings). */
  readonly logs: string[];
  readonly mcpUrl: URL;
  readonly dataDir: string;
  /** Closes the gateway and removes its data dir. */
  stop(): Promise<void>;
}

/**
 * Starts a gateway on port 0 with the given upstream entries and server options (plus other
 * config sections in `extra`, and environment `env`), logging into memory. Call `stop()` in
 * afterAll/afterEach.
 */
export async function startTestGateway(
  mcpClients: Record<string, unknown>[],
  server: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-test-'));
  const config = resolveConfig({ server: { host: '127.0.0.1', port: 0, ...server }, data_dir: dataDir, mcp_clients: mcpClients, ...extra }, 'test', env);
  const logs: string[] = [];
  const log: Logger = createLogger('debug', {}, (line) => logs.push(line));
  const gw = await startGateway(config, { log });
  return {
    ...gw,
    logs,
    dataDir,
    mcpUrl: new URL(`${gw.url}/mcp`),
    stop: async () => {
      await gw.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Connects an SDK Client over Streamable HTTP to the gateway's /mcp. */
export async function connectClient(gw: { mcpUrl: URL }, capabilities: ClientCapabilities = {}, name = 'vitest'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl));
  return client;
}

/** Raw HTTP request with any method; returns status, headers, text and parsed JSON (if any). */
export async function send(url: URL | string, init: RequestInit): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** POSTs raw JSON-RPC to /mcp and returns status, headers and the parsed body (if JSON). */
export function rawPost(
  url: URL,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  return send(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
}

/** Initializes a session with raw HTTP and returns its id. */
export async function rawSession(url: URL, protocolVersion = '2025-06-18'): Promise<string> {
  const r = await rawPost(
    url,
    JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw' } } }),
  );
  const id = r.headers.get('mcp-session-id');
  if (r.status !== 200 || !id) throw new Error(`initialize failed: ${r.status} ${r.text}`);
  await rawPost(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), { 'mcp-session-id': id });
  return id;
}
