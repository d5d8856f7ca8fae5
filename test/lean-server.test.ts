/**
 * The lean in-process server against the real SDK `Client`: the same listing and answers as the
 * SDK `McpServer` build of the demo (parity), validation and unknown-tool errors as `isError`
 * results, progress, cancellation, resources and prompts; fast-check: random arguments never
 * throw out of the server and always answer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { createDemoLeanServer, createDemoServer } from '../src/upstreams/inprocess/demo.js';

const open: Client[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function lean(): Promise<Client> {
  const c = new Client({ name: 'lean-test', version: '1.0.0' });
  await c.connect(createDemoLeanServer().connect());
  open.push(c);
  return c;
}

async function sdk(): Promise<Client> {
  const [a, b] = InMemoryTransport.createLinkedPair();
  await createDemoServer().connect(b);
  const c = new Client({ name: 'sdk-test', version: '1.0.0' });
  await c.connect(a);
  open.push(c);
  return c;
}

describe('lean demo server', () => {
  it('lists the same tools, resources and prompts as the SDK McpServer build, and says who it is', async () => {
    const [l, s] = await Promise.all([lean(), sdk()]);
    const strip = (tools: Record<string, unknown>[]): unknown[] => tools.map(({ execution: _e, ...rest }) => rest);
    expect(strip((await l.listTools()).tools)).toEqual(strip((await s.listTools()).tools));
    expect(await l.listResources()).toEqual(await s.listResources());
    expect(await l.listPrompts()).toEqual(await s.listPrompts());
    expect(l.getServerVersion()).toEqual(s.getServerVersion());
    expect(l.getInstructions()).toBe(s.getInstructions());
    expect(l.getServerCapabilities()?.tools).toBeDefined();
  });

  it('answers calls, prompts and reads like the SDK build', async () => {
    const [l, s] = await Promise.all([lean(), sdk()]);
    for (const [name, args] of [['echo', { message: 'hi' }], ['add', { a: 2, b: 40 }]] as const) {
      expect(await l.callTool({ name, arguments: args })).toEqual(await s.callTool({ name, arguments: args }));
    }
    expect(await l.getPrompt({ name: 'greeting', arguments: { name: 'Bo' } })).toEqual(await s.getPrompt({ name: 'greeting', arguments: { name: 'Bo' } }));
    expect(await l.readResource({ uri: 'demo://readme' })).toEqual(await s.readResource({ uri: 'demo://readme' }));
  });

  it('bad arguments and unknown tools are isError results naming the problem; unknown resources and prompts are -32602', async () => {
    const l = await lean();
    const bad = (await l.callTool({ name: 'echo', arguments: { message: 7 } })) as { isError?: boolean; content: { text: string }[] };
    expect(bad.isError).toBe(true);
    expect(bad.content[0]?.text).toMatch(/Invalid arguments for tool echo: \/message must be string/);
    const missing = (await l.callTool({ name: 'add', arguments: { a: 1 } })) as { isError?: boolean; content: { text: string }[] };
    expect(missing.isError).toBe(true);
    expect(missing.content[0]?.text).toMatch(/must have required property 'b'/);
    const unknown = (await l.callTool({ name: 'nope', arguments: {} })) as { isError?: boolean; content: { text: string }[] };
    expect(unknown).toEqual({ content: [{ type: 'text', text: 'Tool nope not found' }], isError: true });
    await expect(l.readResource({ uri: 'demo://nope' })).rejects.toThrow(/-32602.*Resource demo:\/\/nope not found/);
    await expect(l.getPrompt({ name: 'nope' })).rejects.toThrow(/-32602.*Prompt nope not found/);
    await expect(l.getPrompt({ name: 'greeting', arguments: {} })).rejects.toThrow(/name is required/);
  });

  it('reports progress and stops a cancelled call', async () => {
    const l = await lean();
    const seen: number[] = [];
    const r = await l.callTool({ name: 'sleep', arguments: { ms: 30, steps: 3 } }, CallToolResultSchema, { onprogress: (p) => seen.push(p.progress) });
    expect(r.content).toEqual([{ type: 'text', text: 'slept 30 ms' }]);
    expect(seen).toEqual([1, 2, 3]);
    const ac = new AbortController();
    const cancelled = l.callTool({ name: 'sleep', arguments: { ms: 60_000, steps: 1 } }, CallToolResultSchema, { signal: ac.signal });
    setTimeout(() => ac.abort('enough'), 20);
    await expect(cancelled).rejects.toThrow();
    // the server is still fine after a cancellation
    expect((await l.callTool({ name: 'echo', arguments: { message: 'after' } })).content).toEqual([{ type: 'text', text: 'Echo: after' }]);
  });

  it('any arguments value gets an answer (result or isError), never a thrown error', async () => {
    const l = await lean();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('echo', 'add', 'now', 'sleep'), fc.jsonValue({ maxDepth: 3 }), async (name, args) => {
        const safeArgs = name === 'sleep' && typeof args === 'object' && args !== null && !Array.isArray(args) ? { ...args, ms: 0 } : args;
        const r = (await l.callTool({ name, arguments: safeArgs as Record<string, unknown> })) as { content: unknown[] };
        expect(Array.isArray(r.content)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });
});
