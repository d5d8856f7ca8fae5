/**
 * The per-call path of `tools/call` on `POST /mcp` runs as callbacks from the request to the
 * upstream's answer and back (see docs/ARCHITECTURE.md, "The per-call path of `tools/call`"): the
 * HTTP server, the MCP layer and the upstream layer create one Promise per call — the wait for the
 * durable record — and the store's own are the store's business. This counts the Promises the
 * process creates while calls run (`async_hooks` `PROMISE` init events,
 * https://nodejs.org/api/async_hooks.html#type), by the source file that created each, on a real
 * gateway with the in-process demo upstream, driven by `node:http` callbacks so the client side
 * creates none. A Promise chain, an async function or an `await` per call on that path shows up as
 * more Promises per call.
 */
import { createHook } from 'node:async_hooks';
import { request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';

let gw: TestGateway;
let session = '';

beforeAll(async () => {
  gw = await startTestGateway([demoClient()]);
  const res = await fetch(gw.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'promises', version: '1' } } }),
  });
  session = res.headers.get('mcp-session-id') ?? '';
  await res.text();
});

afterAll(async () => {
  await gw?.stop();
});

/** Sends `n` `tools/call`s at once with callbacks only; `done` gets the bodies when all are answered. */
function callAll(n: number, firstId: number, done: (bodies: string[]) => void): void {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    const body = JSON.stringify({ jsonrpc: '2.0', id: firstId + i, method: 'tools/call', params: { name: 'demo-echo', arguments: { message: `m${i}` } } });
    const req = request(gw.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'mcp-session-id': session, 'content-length': Buffer.byteLength(body) },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        bodies.push(text);
        if (bodies.length === n) done(bodies);
      });
    });
    req.end(body);
  }
}

/** Files of the per-call path outside the store: the HTTP server, the MCP layer, the upstreams, the access gate. */
const CALL_PATH = /\/src\/(server|handlers\/mcp|upstreams|auth)\//;

/** The source file of the code that created a Promise: the first frame past Promise's own and Node's internals. */
function creator(stack: string): string {
  for (const line of stack.split('\n').slice(1)) {
    if (line.includes('node:internal') || line.includes('AsyncHook.init') || /at (new Promise|Promise\.(then|catch|finally|all|race|resolve|reject))/.test(line)) continue;
    return line;
  }
  return '';
}

/** Promises created while `n` calls run, per call: all of them, and those the call path itself created. */
function promisesPerCall(n: number, firstId: number): Promise<{ perCall: number; callPath: number; bodies: string[] }> {
  return new Promise((resolve) => {
    let created = 0;
    let onPath = 0;
    const limit = Error.stackTraceLimit;
    const hook = createHook({
      init(_id, type) {
        if (type !== 'PROMISE') return;
        created++;
        Error.stackTraceLimit = 30;
        if (CALL_PATH.test(creator(new Error().stack ?? ''))) onPath++;
        Error.stackTraceLimit = limit;
      },
    });
    hook.enable();
    callAll(n, firstId, (bodies) => {
      hook.disable();
      resolve({ perCall: created / n, callPath: onPath / n, bodies });
    });
  });
}

it('a tools/call on /mcp: the call path creates no Promise (the wait for the durable record is a callback), the store the rest', async () => {
  // warm-up: first calls compile code and open the store's batches
  await promisesPerCall(20, 1000);
  const { perCall, callPath, bodies } = await promisesPerCall(64, 2000);
  expect(bodies).toHaveLength(64);
  for (const b of bodies) expect((JSON.parse(b) as { result?: { content?: unknown } }).result?.content).toBeDefined();
  // before the callback path: 13 on the call path alone (the POST's run, the dispatcher's answer,
  // callTool, invokeTool, the upstream request, the admission check, their thens), then 1 (the
  // event bus's wait for the record) until that became a callback too
  expect(callPath).toBe(0);
  // each store batch's come on top; all of them were 18.5 per call before
  expect(perCall).toBeLessThanOrEqual(3);
});
