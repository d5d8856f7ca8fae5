/**
 * The gateway core end to end: the real server-everything over stdio and the in-process demo
 * upstream behind a real gateway on port 0, spoken to by the SDK `Client` over
 * `StreamableHTTPClientTransport`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { connectClient, demoClient, everythingClient, startTestGateway, type TestGateway } from './helpers/gateway.js';
import type { GatewayEvent } from '../src/streams/events.js';
import { resolveConfig } from '../src/config/load.js';
import { join } from 'node:path';
import { waitFor } from './helpers/wait.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway([everythingClient(), demoClient()]);
});

afterAll(async () => {
  await gw?.stop();
});

function text(result: unknown): string {
  const r = CallToolResultSchema.parse(result);
  const first = r.content[0];
  return first?.type === 'text' ? first.text : '';
}

describe('aggregated tools', () => {
  let client: Client;
  beforeAll(async () => {
    client = await connectClient(gw);
  });
  afterAll(async () => {
    await client.close();
  });

  it('negotiates a protocol version and reports the upstreams\' capabilities', () => {
    expect(client.getServerVersion()?.name).toBe('tributary');
    const caps = client.getServerCapabilities();
    expect(caps?.tools).toBeDefined();
    expect(caps?.resources).toBeDefined();
    expect(caps?.prompts).toBeDefined();
  });

  it('lists namespaced tools of both upstreams', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toContain('everything-echo');
    expect(names).toContain('everything-get-sum');
    expect(names).toContain('demo-echo');
    expect(names.every((n) => n.length <= 64)).toBe(true);
    const echo = tools.find((t) => t.name === 'everything-echo');
    expect(echo?.inputSchema.properties).toHaveProperty('message');
  });

  it('calls echo and get-sum on server-everything over stdio', async () => {
    expect(text(await client.callTool({ name: 'everything-echo', arguments: { message: 'hello tributary' } }))).toBe('Echo: hello tributary');
    const sum = await client.callTool({ name: 'everything-get-sum', arguments: { a: 2, b: 40 } });
    expect(text(sum)).toContain('42');
  });

  it('passes structuredContent and isError through untouched', async () => {
    const add = await client.callTool({ name: 'demo-add', arguments: { a: 1.5, b: 2 } });
    expect(add.structuredContent).toEqual({ sum: 3.5 });
    // a tool error from the upstream is a result with isError, not a JSON-RPC error
    const bad = await client.callTool({ name: 'everything-get-sum', arguments: { a: 'x', b: 1 } });
    expect(bad.isError).toBe(true);
  });

  it('reports progress of a long-running tool and then its result', async () => {
    const progress: Progress[] = [];
    const result = await client.callTool(
      { name: 'everything-trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
      CallToolResultSchema,
      { onprogress: (p) => progress.push(p) },
    );
    expect(text(result)).toContain('Steps: 3');
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3]);
    expect(progress.every((p) => p.total === 3)).toBe(true);
  });

  it('cancels a call: the upstream call ends early and the client gets an abort', async () => {
    const failed = firstValueFrom(
      gw.bus.events$.pipe(filter((e): e is Extract<GatewayEvent, { event_type: 'ToolInvocationFailed' }> => e.event_type === 'ToolInvocationFailed' && e.tool_name === 'sleep')),
    );
    const ac = new AbortController();
    const started = Date.now();
    const call = client.callTool({ name: 'demo-sleep', arguments: { ms: 5000, steps: 50 } }, CallToolResultSchema, { signal: ac.signal });
    setTimeout(() => ac.abort('test cancels'), 200);
    await expect(call).rejects.toThrow();
    const event = await failed;
    expect(event.duration_ms).toBeLessThan(4000);
    expect(Date.now() - started).toBeLessThan(4000);
    // no call left in flight in any session
    await waitFor(() => [...gw.sessions.values()].reduce((n, s) => n + s.calls.size, 0) === 0);
  });

  it('reads resources and gets prompts through the gateway', async () => {
    const { resources } = await client.listResources();
    const readme = resources.find((r) => r.uri === 'demo://readme');
    expect(readme).toBeDefined();
    const read = await client.readResource({ uri: 'demo://readme' });
    expect(read.contents[0]).toMatchObject({ uri: 'demo://readme' });
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name)).toContain('demo-greeting');
    const prompt = await client.getPrompt({ name: 'demo-greeting', arguments: { name: 'Ada' } });
    expect(JSON.stringify(prompt.messages)).toContain('Ada');
    const templates = await client.listResourceTemplates();
    expect(templates.resourceTemplates.length).toBeGreaterThan(0);
  });

  it('answers unknown tools with -32602 naming the tool', async () => {
    await expect(client.callTool({ name: 'everything-nope', arguments: {} })).rejects.toThrow(/Unknown tool: everything-nope/);
  });
});

describe('sessions', () => {
  it('serves two sessions concurrently without mixing their answers', async () => {
    const [a, b] = await Promise.all([connectClient(gw, {}, 'a'), connectClient(gw, {}, 'b')]);
    try {
      const calls = Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).callTool({ name: i % 4 < 2 ? 'demo-echo' : 'everything-echo', arguments: { message: `m${i}` } }),
      );
      const results = await Promise.all(calls);
      results.forEach((r, i) => expect(text(r)).toBe(`Echo: m${i}`));
      expect(a.transport?.sessionId).not.toBe(b.transport?.sessionId);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('server→client relays', () => {
  it('relays sampling/createMessage from an upstream to the calling session and back', async () => {
    const client = await connectClient(gw, { sampling: {} });
    try {
      const seen: string[] = [];
      client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        seen.push(JSON.stringify(req.params.messages));
        return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled answer 42' } };
      });
      const result = await client.callTool({ name: 'everything-trigger-sampling-request', arguments: { prompt: 'what is six times seven', maxTokens: 20 } });
      expect(seen.join(' ')).toContain('six times seven');
      expect(JSON.stringify(result.content)).toContain('sampled answer 42');
    } finally {
      await client.close();
    }
  });

  it('relays elicitation/create and the user\'s answer', async () => {
    const client = await connectClient(gw, { elicitation: {} });
    try {
      client.setRequestHandler(ElicitRequestSchema, async () => ({
        action: 'accept',
        content: { name: 'Ada', check: true, firstLine: 'x', integer: 3, number: 1.5, untitledSingleSelectEnum: 'option1' },
      }));
      const result = await client.callTool({ name: 'everything-trigger-elicitation-request', arguments: {} });
      expect(JSON.stringify(result.content)).toMatch(/accept/i);
    } finally {
      await client.close();
    }
  });

  it('answers a relay with a clear error when the downstream client lacks the capability', async () => {
    const client = await connectClient(gw, {});
    try {
      const result = await client.callTool({ name: 'everything-trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } }).catch((e: unknown) => e);
      expect(JSON.stringify(result instanceof Error ? result.message : result)).toMatch(/does not support sampling|sampling/);
    } finally {
      await client.close();
    }
  });
});

describe('notifications', () => {
  it('sends tools/list_changed to open sessions when an upstream is added, and the new tools route', async () => {
    const client = await connectClient(gw);
    try {
      let changed = 0;
      const notified = new Promise<void>((resolve) => {
        client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
          changed++;
          resolve();
        });
      });
      // the SDK client opens the GET stream after initialized; give it a moment to be attached
      await waitFor(() => [...gw.sessions.values()].some((s) => s.standalone !== undefined));
      await gw.manager.add(resolveConfig({ mcp_clients: [demoClient('extra')] }, 'test').mcp_clients[0]!);
      await notified;
      expect(changed).toBeGreaterThan(0);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('extra-echo');
      expect(text(await client.callTool({ name: 'extra-echo', arguments: { message: 'new' } }))).toBe('Echo: new');
      await gw.manager.remove('extra');
      const after = await client.listTools();
      expect(after.tools.map((t) => t.name)).not.toContain('extra-echo');
    } finally {
      await client.close();
    }
  });

  it('forwards upstream log messages to the calling session, filtered by each session\'s level', async () => {
    // the conformance fixture's test_tool_with_logging sends three info messages during the call
    const fixture = resolveConfig(
      {
        mcp_clients: [
          {
            name: 'logs',
            connection_type: 'stdio',
            stdio_config: { command: process.execPath, args: ['--import', 'tsx', join(import.meta.dirname, 'fixtures/conformance-server.ts')] },
          },
        ],
      },
      'test',
    ).mcp_clients[0]!;
    await gw.manager.add(fixture);
    const verbose = await connectClient(gw);
    const quiet = await connectClient(gw);
    try {
      const got = { verbose: [] as string[], quiet: [] as string[] };
      verbose.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
        got.verbose.push(n.params.level);
      });
      quiet.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
        got.quiet.push(n.params.level);
      });
      await verbose.setLoggingLevel('debug');
      await quiet.setLoggingLevel('warning');
      await verbose.callTool({ name: 'logs-test_tool_with_logging', arguments: {} });
      await quiet.callTool({ name: 'logs-test_tool_with_logging', arguments: {} });
      await waitFor(() => got.verbose.length >= 3);
      await new Promise((r) => setTimeout(r, 200));
      expect(got.verbose).toEqual(['info', 'info', 'info']);
      expect(got.quiet).toEqual([]);
    } finally {
      await Promise.all([verbose.close(), quiet.close()]);
      await gw.manager.remove('logs');
    }
  });
});

describe('events', () => {
  it('publishes ToolInvocationCompleted with gap-free seq', async () => {
    const client = await connectClient(gw);
    try {
      const events = firstValueFrom(gw.bus.events$.pipe(filter((e) => e.event_type === 'ToolInvocationCompleted'), take(2), toArray()));
      await client.callTool({ name: 'demo-echo', arguments: { message: '1' } });
      await client.callTool({ name: 'demo-echo', arguments: { message: '2' } });
      const [e1, e2] = await events;
      expect(e1?.mcp_server_id).toBe('demo');
      expect(e2 && e1 ? e2.seq - e1.seq : 0).toBeGreaterThanOrEqual(1);
      expect(e1?.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T.*Z$/);
    } finally {
      await client.close();
    }
  });
});
