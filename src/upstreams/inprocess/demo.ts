/**
 * The built-in in-process demo upstream, in two builds with the same tools, resource and prompt:
 *
 * - `demo` ({@link createDemoLeanServer}): a {@link LeanMcpServer}, the gateway's fast in-process
 *   path (no transport hop, Ajv-compiled argument validation, no per-call AbortController), so the
 *   default config has an upstream whose cost is the gateway's own (what the benchmark measures);
 * - `demo_sdk` ({@link createDemoServer}): the same server written with the SDK's `McpServer` over
 *   `InMemoryTransport`, which is how users write in-process servers; it keeps that path tested.
 *
 * Tools: `echo`, `add`, `sleep` (with progress and cancellation), `now`; one resource, one prompt.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { LeanMcpServer } from './lean-server.js';

const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';
const NAME = { name: 'tributary-demo', version: '1.0.0' };
const INSTRUCTIONS = 'Demo upstream built into Tributary.';

/** Creates a fresh lean demo server (see the module comment). */
export function createDemoLeanServer(): LeanMcpServer {
  return new LeanMcpServer(NAME, INSTRUCTIONS)
    .tool({
      name: 'echo',
      description: 'Echoes back the message it is given.',
      inputSchema: { type: 'object', properties: { message: { type: 'string', description: 'Text to echo' } }, required: ['message'], $schema: DRAFT_07 },
      handler: (args) => ({ content: [{ type: 'text', text: `Echo: ${String(args['message'])}` }] }),
    })
    .tool({
      name: 'add',
      description: 'Adds two numbers.',
      inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'], $schema: DRAFT_07 },
      outputSchema: { type: 'object', properties: { sum: { type: 'number' } }, required: ['sum'], $schema: DRAFT_07, additionalProperties: false },
      handler: (args) => {
        const sum = (args['a'] as number) + (args['b'] as number);
        return { content: [{ type: 'text', text: String(sum) }], structuredContent: { sum } };
      },
    })
    .tool({
      name: 'sleep',
      description: 'Waits `ms` milliseconds (at most 60000), reporting progress in `steps` steps.',
      inputSchema: {
        type: 'object',
        properties: { ms: { type: 'integer', minimum: 0, maximum: 60_000 }, steps: { type: 'integer', minimum: 1, maximum: 100 } },
        required: ['ms'],
        $schema: DRAFT_07,
      },
      handler: async (args, ctx) => {
        const ms = args['ms'] as number;
        const steps = (args['steps'] as number | undefined) ?? 5;
        const signal = ctx.signal;
        for (let i = 1; i <= steps; i++) {
          await new Promise<void>((resolve, reject) => {
            if (signal.aborted) {
              reject(new Error('cancelled'));
              return;
            }
            const timer = setTimeout(resolve, ms / steps);
            signal.addEventListener(
              'abort',
              () => {
                clearTimeout(timer);
                reject(new Error('cancelled'));
              },
              { once: true },
            );
          });
          ctx.progress(i, steps);
        }
        return { content: [{ type: 'text', text: `slept ${ms} ms` }] };
      },
    })
    .tool({
      name: 'now',
      description: 'Current time, ISO-8601 UTC.',
      inputSchema: { type: 'object', properties: {} },
      handler: () => ({ content: [{ type: 'text', text: new Date().toISOString() }] }),
    })
    .resource({
      uri: 'demo://readme',
      name: 'readme',
      description: 'What the demo upstream is.',
      mimeType: 'text/plain',
      read: (uri) => ({ contents: [{ uri, mimeType: 'text/plain', text: 'Tributary demo upstream: echo, add, sleep, now.' }] }),
    })
    .prompt({
      name: 'greeting',
      description: 'A greeting for someone.',
      arguments: [{ name: 'name', required: true }],
      get: (args) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${args['name'] ?? ''}.` } }] }),
    });
}

/** Creates a fresh demo server written with the SDK's `McpServer` (see the module comment). */
export function createDemoServer(): McpServer {
  const server = new McpServer(NAME, { capabilities: { logging: {} }, instructions: INSTRUCTIONS });

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
