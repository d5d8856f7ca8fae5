/**
 * Version negotiation and session lifecycle on /mcp with raw HTTP (MCP spec "Lifecycle" and
 * "Session Management").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoClient, rawPost, startTestGateway, type TestGateway } from './helpers/gateway.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway([demoClient()]);
});

afterAll(async () => {
  await gw?.stop();
});

async function initialize(protocolVersion: string): Promise<{ version: unknown; session: string | null }> {
  const r = await rawPost(
    gw.mcpUrl,
    JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  );
  expect(r.status).toBe(200);
  const body = r.json as { result: { protocolVersion: string } };
  return { version: body.result.protocolVersion, session: r.headers.get('mcp-session-id') };
}

describe('version negotiation', () => {
  it.each(['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'])('accepts %s as requested', async (v) => {
    const r = await initialize(v);
    expect(r.version).toBe(v);
    expect(r.session).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers an unknown version with the latest supported one', async () => {
    expect((await initialize('1999-01-01')).version).toBe('2025-11-25');
  });

  it('gives each initialize its own session', async () => {
    const a = await initialize('2025-06-18');
    const b = await initialize('2025-06-18');
    expect(a.session).not.toBe(b.session);
  });

  it('rejects initialize with bad params as -32602 naming the field', async () => {
    const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { capabilities: {} } }));
    const body = r.json as { error: { code: number; message: string } };
    expect(body.error.code).toBe(-32602);
    expect(body.error.message).toMatch(/protocolVersion/);
  });

  it('serves a session whose requests carry no MCP-Protocol-Version header (2025-03-26 default)', async () => {
    const { session } = await initialize('2025-03-26');
    const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }), { 'mcp-session-id': session ?? '' });
    expect(r.json).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
  });
});
