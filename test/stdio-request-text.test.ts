/**
 * A client's `tools/call` arguments travel to a stdio upstream as the JSON text the client wrote
 * (the POST parse keeps it, the stdin line copies it): through a real gateway and the real
 * server-everything, in both common member orders, with the client's own spacing, escapes and
 * number forms, from raw HTTP, from the SDK's own Client and over `/ws` (JSON text frames); the
 * upstream reads the same values,
 * and the tool log gives back the arguments as the caller sent them.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { everythingClient, rawPost, rawSession, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

let gw: TestGateway;
let session: string;

beforeAll(async () => {
  gw = await startTestGateway([everythingClient()]);
  session = await rawSession(gw.mcpUrl);
});

afterAll(async () => {
  await gw?.stop();
});

/** The response of a JSON or SSE reply (the last event's data: the upstream may log meanwhile). */
function response(r: { headers: Headers; text: string }): { id: unknown; result?: { content: { text: string }[]; isError?: boolean }; error?: unknown } {
  if (!(r.headers.get('content-type') ?? '').startsWith('text/event-stream')) return JSON.parse(r.text) as ReturnType<typeof response>;
  const data = r.text.split('\n').filter((l) => l.startsWith('data: '));
  return JSON.parse((data[data.length - 1] ?? '').slice('data: '.length)) as ReturnType<typeof response>;
}

/** A tools/call body with `argsText` as the arguments, in the specification's member order or the SDK's. */
function body(id: string | number, tool: string, argsText: string, sdkOrder: boolean): string {
  const idText = JSON.stringify(id);
  return sdkOrder
    ? `{"method":"tools/call","params":{"name":"${tool}","arguments":${argsText}},"jsonrpc":"2.0","id":${idText}}`
    : `{"jsonrpc":"2.0","id":${idText},"method":"tools/call","params":{"name":"${tool}","arguments":${argsText}}}`;
}

/** Tool-log entries whose arguments hold `marker` somewhere in their JSON. */
async function logged(marker: string): Promise<{ arguments: unknown; arguments_truncated: boolean }[]> {
  const logs = ((await send(`${gw.url}/api/mcp-logs?limit=200`, {})).json as { logs: { arguments: unknown; arguments_truncated: boolean }[] }).logs;
  return logs.filter((e) => JSON.stringify(e.arguments).includes(marker));
}

describe('stdio requests with the client’s arguments text', () => {
  it('the upstream reads what the client wrote: escapes, spacing, both member orders', async () => {
    const cases: [string, string][] = [
      ['{"message":"plain"}', 'plain'],
      ['{ "message" : "caf\\u00e9 \\/ \\"q\\" \\\\" }', 'café / "q" \\'],
      ['{"message":"line\\nbreak \\u2028 😀"}', 'line\nbreak \u2028 😀'],
      // a raw line break between tokens: valid JSON, and the stdin line must still be one line
      ['{"message":\n"spaced\\r\\n"\r\n}', 'spaced\r\n'],
      ['{"message":"},\\"jsonrpc\\":\\"2.0\\",\\"id\\":9"}', '},"jsonrpc":"2.0","id":9'],
    ];
    let n = 0;
    for (const [argsText, message] of cases) {
      for (const sdkOrder of [false, true]) {
        const id = sdkOrder ? `s-${n}` : n;
        n++;
        const r = await rawPost(gw.mcpUrl, body(id, 'everything-echo', argsText, sdkOrder), { 'mcp-session-id': session });
        expect(r.status).toBe(200);
        expect(response(r)).toStrictEqual({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `Echo: ${message}` }] } });
      }
    }
    expect(n).toBe(cases.length * 2);
  });

  it('numbers reach the upstream as the values the client wrote', async () => {
    for (const [argsText, text] of [
      ['{"a":1.50,"b":2e0}', 'The sum of 1.5 and 2 is 3.5.'],
      ['{ "b" : -0.25 , "a" : 1E1 }', 'The sum of 10 and -0.25 is 9.75.'],
    ] as const) {
      const r = await rawPost(gw.mcpUrl, body('sum', 'everything-get-sum', argsText, false), { 'mcp-session-id': session });
      expect(response(r).result?.content[0]?.text).toBe(text);
    }
  });

  it('bad arguments are refused as before: the upstream’s validation error, or the gateway’s parse error', async () => {
    const wrong = await rawPost(gw.mcpUrl, body(1, 'everything-echo', '{"message":42}', false), { 'mcp-session-id': session });
    const answered = response(wrong);
    // server-everything reports its input validation as a tool error result
    expect(answered.result?.isError ?? answered.error !== undefined).toBe(true);
    const broken = await rawPost(gw.mcpUrl, body(2, 'everything-echo', '{"message":"x"', false), { 'mcp-session-id': session });
    expect(broken.status).toBe(400);
    expect((broken.json as { error: { code: number; message: string } }).error.code).toBe(-32700);
    expect((broken.json as { error: { message: string } }).error.message).toMatch(/^Parse error: /);
  });

  it('the SDK Client’s calls (its own member order) and the tool log round trip', async () => {
    const client = new Client({ name: 'request-text', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl));
    try {
      const marker = `sdk-${Date.now()}`;
      const result = await client.callTool({ name: 'everything-echo', arguments: { message: `${marker} ü "q"` } });
      expect(result.content).toStrictEqual([{ type: 'text', text: `Echo: ${marker} ü "q"` }]);
      const entries = await logged(marker);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ arguments: { message: `${marker} ü "q"` }, arguments_truncated: false });
    } finally {
      await client.close();
    }
    const spaced = `raw-${Date.now()}`;
    await rawPost(gw.mcpUrl, body(5, 'everything-echo', `{ "message" : "${spaced} caf\\u00e9" }`, true), { 'mcp-session-id': session });
    expect((await logged(spaced))[0]).toMatchObject({ arguments: { message: `${spaced} café` }, arguments_truncated: false });
  });

  it('/ws text frames carry the client’s arguments text too, and their replies the upstream’s result text', async () => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`);
    const replies: Record<string, unknown>[] = [];
    const texts: string[] = [];
    let wake: (() => void) | undefined;
    ws.on('message', (data) => {
      texts.push(String(data));
      replies.push(JSON.parse(String(data)) as Record<string, unknown>);
      wake?.();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const reply = async (id: unknown): Promise<Record<string, unknown>> => {
      for (;;) {
        const got = replies.find((m) => m['id'] === id);
        if (got) return got;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    try {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws-text' } } }));
      expect((await reply(1))['result']).toBeDefined();
      ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      ws.send(body(2, 'everything-echo', '{ "message" : "ws caf\\u00e9" }', false));
      ws.send(body('w3', 'everything-echo', '{"message":"ws sdk order"}', true));
      expect(await reply(2)).toStrictEqual({ jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'Echo: ws café' }] } });
      expect(await reply('w3')).toStrictEqual({ jsonrpc: '2.0', id: 'w3', result: { content: [{ type: 'text', text: 'Echo: ws sdk order' }] } });
      // the replies' bytes are what JSON.stringify of the response writes (the result's kept text copied)
      expect(texts).toContain(JSON.stringify({ jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'Echo: ws café' }] } }));
      expect(texts).toContain(JSON.stringify({ jsonrpc: '2.0', id: 'w3', result: { content: [{ type: 'text', text: 'Echo: ws sdk order' }] } }));
    } finally {
      ws.close();
    }
  });
});
