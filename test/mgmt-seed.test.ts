/**
 * Config-file clients seeded into the store: an untouched one follows later config-file changes;
 * one changed through the API keeps the API's version.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { demoClient, send } from './helpers/gateway.js';

const dataDir = mkdtempSync(join(tmpdir(), 'tributary-seed-'));

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function start(toolsToExecute: string[]): Promise<Gateway> {
  const config = resolveConfig({ server: { port: 0 }, data_dir: dataDir, mcp_clients: [demoClient('demo', { tools_to_execute: toolsToExecute })] }, 'test');
  return startGateway(config, { log: createLogger('silent') });
}

async function demoConfig(gw: Gateway): Promise<{ client_id: string; tools_to_execute: string[] }> {
  const r = await send(`${gw.url}/api/mcp/clients`, {});
  return (r.json as { clients: { config: { client_id: string; tools_to_execute: string[] } }[] }).clients[0]!.config;
}

describe('seeded config-file clients', () => {
  it('follow the config file until changed through the API', async () => {
    let gw = await start(['echo']);
    const id = (await demoConfig(gw)).client_id;
    await gw.close();

    gw = await start(['echo', 'add']);
    expect(await demoConfig(gw)).toMatchObject({ client_id: id, tools_to_execute: ['echo', 'add'] });
    expect(gw.manager.tools.map((t) => t['name'])).toEqual(['demo-echo', 'demo-add']);
    const put = await send(`${gw.url}/api/mcp/client/${id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tools_to_execute: ['now'] }),
    });
    expect(put.status).toBe(200);
    await gw.close();

    gw = await start(['echo', 'sleep']);
    try {
      expect(await demoConfig(gw)).toMatchObject({ client_id: id, tools_to_execute: ['now'] });
    } finally {
      await gw.close();
    }
  });
});
