/**
 * The stdio upstream transport (`GroupStdioTransport`) against a real subprocess that stops
 * reading its stdin: writes queue behind a full pipe, `send` resolves only after `drain`, posted
 * messages add no `drain` listener of their own, and once the subprocess reads again every message
 * (each larger than a pipe buffer, so split across many reads both ways) comes back whole and in
 * order.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { GroupStdioTransport } from '../src/upstreams/stdio-transport.js';
import { POST_MESSAGE } from '../src/upstreams/upstream-types.js';
import { waitForValue } from './helpers/wait.js';

const ECHO = join(import.meta.dirname, 'fixtures/stdio-echo-server.ts');

let transport: GroupStdioTransport | undefined;
afterEach(async () => {
  await transport?.close();
  transport = undefined;
});

function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

describe('stdio transport backpressure', () => {
  it('holds writes behind a full pipe, resolves send after drain, and delivers every message whole and in order', async () => {
    const stderr: string[] = [];
    const t = new GroupStdioTransport({
      command: process.execPath,
      args: ['--import', 'tsx', ECHO],
      env: { ...(process.env as Record<string, string>), STDIO_ECHO_PAUSED: '1' },
      onStderrLine: (line) => stderr.push(line),
    });
    transport = t;
    const received: JSONRPCMessage[] = [];
    const errors: Error[] = [];
    t.onmessage = (m) => received.push(m);
    t.onerror = (e) => errors.push(e);
    await t.start();
    await waitForValue('the echo server ready', () => stderr.includes('ready'));
    const stdin = t.child?.stdin;
    if (!stdin) throw new Error('no stdin');
    const baseDrainListeners = stdin.listenerCount('drain');

    // 24 × 200 KB: far more than the pipe (64 KiB) and the stream's buffer take
    const payload = (i: number): string => `${i}:${'é✓'.repeat(40_000)}`;
    for (let i = 0; i < 24; i++) {
      // queued for the turn's write: no Promise
      expect(t[POST_MESSAGE]({ jsonrpc: '2.0', id: `p${i}`, method: 'echo', params: { text: payload(i) } } as JSONRPCMessage)).toBeUndefined();
    }
    await turn();
    expect(stdin.writableNeedDrain).toBe(true);
    expect(stdin.listenerCount('drain')).toBe(baseDrainListeners);

    let sent = false;
    const last = t.send({ jsonrpc: '2.0', id: 'last', method: 'echo', params: { text: 'last' } } as JSONRPCMessage).then(() => {
      sent = true;
    });
    await turn();
    await turn();
    expect(sent).toBe(false);
    expect(stdin.listenerCount('drain')).toBe(baseDrainListeners + 1);

    const pid = t.pid;
    if (pid === undefined) throw new Error('no pid');
    process.kill(pid, 'SIGUSR2');
    await last;
    await waitForValue('all 25 answers', () => received.length === 25, 30_000);
    expect(errors).toEqual([]);
    expect(received.map((m) => (m as { id: string }).id)).toEqual([...Array.from({ length: 24 }, (_, i) => `p${i}`), 'last']);
    received.slice(0, 24).forEach((m, i) => expect((m as unknown as { result: { echo: { text: string } } }).result.echo.text).toBe(payload(i)));
  }, 60_000);
});
