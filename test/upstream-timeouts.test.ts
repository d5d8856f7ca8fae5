/**
 * Per-call timeouts towards an upstream (`request_timeout_ms`): an inactivity timeout that
 * progress notifications restart; on expiry the caller gets -32001 naming the upstream and the
 * upstream gets `notifications/cancelled` (its handler sees the abort).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { join } from 'node:path';
import { connectClient, demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';

const PROBE = join(import.meta.dirname, 'fixtures/cancel-probe-server.ts');

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway([
    demoClient('slow', { request_timeout_ms: 300 }),
    { name: 'probe', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', PROBE] }, request_timeout_ms: 400 },
  ]);
});

afterAll(async () => {
  await gw?.stop();
});

describe('upstream request timeout', () => {
  it('fails a silent call with -32001 naming the upstream, and frees it', async () => {
    const client = await connectClient(gw);
    try {
      const started = Date.now();
      const err = await client.callTool({ name: 'slow-sleep', arguments: { ms: 3000, steps: 1 } }).catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(err).toBeInstanceOf(Error);
      expect((err as { code?: number }).code).toBe(-32001);
      expect((err as Error).message).toMatch(/Upstream "slow" did not answer tools\/call within 300 ms/);
      expect(elapsed).toBeLessThan(2500);
      expect(gw.manager.get('slow')?.inflight).toBe(0);
    } finally {
      await client.close();
    }
  });

  it('keeps a call alive while it reports progress, even past the timeout', async () => {
    const client = await connectClient(gw);
    try {
      const ticks: number[] = [];
      // 10 steps of 100 ms: 1 s in all, never 300 ms without progress
      const result = await client.callTool({ name: 'slow-sleep', arguments: { ms: 1000, steps: 10 } }, CallToolResultSchema, {
        onprogress: (p) => ticks.push(p.progress),
        timeout: 10_000,
      });
      expect(JSON.stringify(result.content)).toContain('slept 1000 ms');
      expect(ticks).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    } finally {
      await client.close();
    }
  });
});

describe('cancellation reaches the upstream', () => {
  async function waitForLog(pattern: RegExp): Promise<string> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const line = gw.logs.find((l) => pattern.test(l));
      if (line) return line;
      if (Date.now() > deadline) throw new Error(`no log line matching ${pattern}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('sends notifications/cancelled when the call times out', async () => {
    const client = await connectClient(gw);
    try {
      const err = await client.callTool({ name: 'probe-wait', arguments: {} }).catch((e: unknown) => e);
      expect((err as { code?: number }).code).toBe(-32001);
      const line = await waitForLog(/CANCELLED request t\d+: timed out after 400 ms/);
      expect(line).toContain('"upstream":"probe"');
    } finally {
      await client.close();
    }
  });

  it('sends notifications/cancelled when the downstream client cancels', async () => {
    const client = await connectClient(gw);
    try {
      const ac = new AbortController();
      const call = client.callTool({ name: 'probe-wait', arguments: {} }, CallToolResultSchema, { signal: ac.signal });
      setTimeout(() => ac.abort('user gave up'), 100);
      await expect(call).rejects.toThrow();
      await waitForLog(/CANCELLED request t\d+: (user gave up|client disconnected|cancelled by the client)/);
    } finally {
      await client.close();
    }
  });
});
