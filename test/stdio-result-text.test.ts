/**
 * A stdio upstream's `tools/call` result travels as the JSON text it arrived in (the framing keeps
 * it, the POST reply and the tool log copy it): through a real gateway and the real
 * server-everything, the reply's bytes are what `JSON.stringify` of the response writes (JSON and
 * SSE), the id is the caller's own whatever its form, and the tool log gives back the result the
 * caller received.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/**
 * The response's JSON text: the body of a JSON reply, or the last event's data of an SSE reply
 * (server-everything sends log notifications now and then; one that arrives while the call is in
 * flight turns its reply into an SSE stream).
 */
function responseText(r: { headers: Headers; text: string }): string {
  if (!(r.headers.get('content-type') ?? '').startsWith('text/event-stream')) return r.text;
  const data = r.text.split('\n').filter((l) => l.startsWith('data: '));
  return (data[data.length - 1] ?? '').slice('data: '.length);
}

const MESSAGES = ['hello', 'quotes " and \\ and \n\t\u0001 control', 'ü ✓ 😀 \u2028 \u2029', 'x'.repeat(3000)];
const IDS: (string | number)[] = [1, 'a"b\\c', 'é-✓', -42, 9007199254740991];

describe('stdio results as their JSON text', () => {
  it('JSON replies are byte for byte what JSON.stringify writes, with the caller’s id', async () => {
    let n = 0;
    for (const message of MESSAGES) {
      for (const id of IDS) {
        n++;
        const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'everything-echo', arguments: { message } } }), { 'mcp-session-id': session });
        expect(r.status).toBe(200);
        const expected = { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `Echo: ${message}` }] } };
        const text = responseText(r);
        expect(JSON.parse(text)).toStrictEqual(expected);
        expect(text).toBe(JSON.stringify(expected));
      }
    }
    expect(n).toBe(MESSAGES.length * IDS.length);
  });

  it('SSE replies carry the same bytes in one data line', async () => {
    const message = 'sse \u2028 "q"';
    const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 'sse-1', method: 'tools/call', params: { name: 'everything-echo', arguments: { message } } }), {
      'mcp-session-id': session,
      accept: 'text/event-stream',
    });
    expect(r.status).toBe(200);
    const expected = JSON.stringify({ jsonrpc: '2.0', id: 'sse-1', result: { content: [{ type: 'text', text: `Echo: ${message}` }] } });
    // the response is the last event (a log notification of the upstream may come before it)
    expect(r.text.endsWith(`event: message\ndata: ${expected}\n\n`)).toBe(true);
    expect(responseText(r)).toBe(expected);
  });

  it('the tool log gives back the result each caller received', async () => {
    const marker = `log-${Date.now()}`;
    const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'everything-echo', arguments: { message: marker } } }), { 'mcp-session-id': session });
    const received = (r.json as { result: unknown }).result;
    const logs = ((await send(`${gw.url}/api/mcp-logs?limit=100`, {})).json as { logs: { arguments: { message?: string }; result: unknown; result_truncated: boolean }[] }).logs;
    const entry = logs.find((e) => e.arguments.message === marker);
    expect(entry).toBeDefined();
    expect(entry?.result_truncated).toBe(false);
    expect(entry?.result).toStrictEqual(received);
  });
});
