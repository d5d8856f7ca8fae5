/**
 * One teardown stack for start-up failure and shutdown: the stack on its own (reverse order,
 * a failing step does not stop the rest, each step runs once), and a real gateway whose start
 * fails after its store, event log, upstream manager and surfaces exist (the port is taken):
 * everything it opened is released, so the same data dir opens again at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TeardownStack } from '../src/base/teardown.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { openStore } from '../src/store/open.js';
import { demoClient, startTestGateway, type TestGateway } from './helpers/gateway.js';

describe('TeardownStack', () => {
  it('runs the steps last-registered first, awaiting each, goes on past a failing step, and runs each once', async () => {
    const ran: string[] = [];
    const errors: string[] = [];
    const stack = new TeardownStack((step, err) => errors.push(`${step}: ${(err as Error).message}`));
    stack.defer('a', () => {
      ran.push('a');
    });
    stack.defer('b', async () => {
      await new Promise((r) => setImmediate(r));
      ran.push('b');
    });
    stack.defer('c', () => {
      throw new Error('c broke');
    });
    stack.defer('d', () => Promise.reject(new Error('d broke')));
    stack.defer('e', () => {
      ran.push('e');
    });
    await stack.unwind();
    expect(ran).toEqual(['e', 'b', 'a']);
    expect(errors).toEqual(['d: d broke', 'c: c broke']);
    await stack.unwind();
    expect(ran).toEqual(['e', 'b', 'a']);
  });

  it('runs a step registered during the unwind too', async () => {
    const ran: string[] = [];
    const stack = new TeardownStack(() => undefined);
    stack.defer('outer', () => {
      ran.push('outer');
      stack.defer('late', () => {
        ran.push('late');
      });
    });
    await stack.unwind();
    expect(ran).toEqual(['outer', 'late']);
  });
});

describe('a gateway whose start fails', () => {
  let first: TestGateway | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await first?.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('releases what it had opened: the port-taken error comes out, and its data dir opens again', async () => {
    first = await startTestGateway([]);
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-teardown-'));
    dirs.push(dataDir);
    const config = resolveConfig({ server: { host: '127.0.0.1', port: first.port }, data_dir: dataDir, mcp_clients: [demoClient('demo')] }, 'test');
    const logs: string[] = [];
    await expect(startGateway(config, { log: createLogger('debug', {}, (l) => logs.push(l)) })).rejects.toThrow(String(first.port));
    expect(logs.some((l) => l.includes('teardown step failed'))).toBe(false);
    // the LevelDB lock was released: a second open of the same dir succeeds
    const store = await openStore(dataDir, createLogger('silent'));
    await store.close();
  });
});
