/**
 * The in-process `demo` upstream: an SDK `McpServer` served over `InMemoryTransport`, so the
 * default config has an upstream with no process or socket in between (the fastest path, used by
 * the benchmark). Tools: `echo`, `add`, `sleep` (with progress), `now`; one resource and one prompt.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

/** Creates a fresh demo server instance. */
export function createDemoServer(): McpServer {
  const server = new McpServer(
    { name: 'tributary-demo', version: '1.0.0' },
    { capabilities: { logging: {} }, instructions: 'Demo upstream built into Tributary.' },
  );

  server.registerTool(
    'echo',
    { description: 'Echoes back the message it is given.', inputSchema: { message: z.string().describe('Text to echo') } },
    ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }),
  );

  server.registerTool(
    'add',
    {
      description: 'Adds two numbers.',
      inputSchema: { a: z.number(), b: z.number() },
      outputSchema: { sum: z.number() },
    },
    ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }),
  );

  server.registerTool(
    'sleep',
    {
      description: 'Waits `ms` milliseconds (at most 60000), reporting progress in `steps` steps.',
      inputSchema: { ms: z.number().int().min(0).max(60_000), steps: z.number().int().min(1).max(100).optional() },
    },
    async ({ ms, steps = 5 }, extra) => {
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, ms / steps);
          extra.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new Error('cancelled'));
          }, { once: true });
        });
        if (token !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
        }
      }
      return { content: [{ type: 'text', text: `slept ${ms} ms` }] };
    },
  );

  server.registerTool('now', { description: 'Current time, ISO-8601 UTC.' }, () => ({
    content: [{ type: 'text', text: new Date().toISOString() }],
  }));

  server.registerResource(
    'readme',
    'demo://readme',
    { description: 'What the demo upstream is.', mimeType: 'text/plain' },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Tributary demo upstream: echo, add, sleep, now.' }] }),
  );

  server.registerPrompt(
    'greeting',
    { description: 'A greeting for someone.', argsSchema: { name: z.string() } },
    ({ name }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${name}.` } }] }),
  );

  return server;
}
