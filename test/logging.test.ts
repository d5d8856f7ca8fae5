/**
 * Logging on pino: JSON lines with the same fields as before, errors reduced to `{name, message}`,
 * secrets redacted by path, and the level changed at run time for every component, through the
 * management API of a real gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, setLogContext } from '../src/log/logger.js';
import { demoClient, rawPost, send, startTestGateway, type TestGateway } from './helpers/gateway.js';

describe('createLogger', () => {
  it('writes one JSON object per line with level, time, msg and fields; errors lose their stack; secrets are redacted', () => {
    const lines: string[] = [];
    const log = createLogger('info', { component: 'test' }, (l) => lines.push(l));
    const err = new Error('boom');
    log.info('hello', { n: 1, error: err, password: 'hunter2', headers: { authorization: 'Bearer trb_x', 'x-api-key': 'k1', accept: 'a' } });
    log.debug('not shown');
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 'info', msg: 'hello', component: 'test', n: 1, error: { name: 'Error', message: 'boom' }, password: '[redacted]' });
    expect(rec['headers']).toEqual({ authorization: '[redacted]', 'x-api-key': '[redacted]', accept: 'a' });
    expect(Number.isNaN(Date.parse(String(rec['time'])))).toBe(false);
    expect(lines[0]).not.toContain('hunter2');
    expect(lines[0]).not.toContain('stack');
  });

  it("a line carries only its own fields and its logger's bindings, never an earlier line's (with and without a log context)", () => {
    const lines: string[] = [];
    const log = createLogger('info', { component: 'test' }, (l) => lines.push(l));
    const child = log.child({ upstream: 'a' });
    const fields = (): Record<string, unknown>[] => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    log.info('first', { port: 8080 });
    child.info('second', { tools: 4 });
    log.info('third');
    const shared = { trace_id: 't1' };
    setLogContext(() => shared);
    try {
      log.info('fourth', { ms: 3 });
      log.info('fifth');
    } finally {
      setLogContext(undefined);
    }
    const [first, second, third, fourth, fifth] = fields();
    expect(Object.keys(first ?? {}).sort()).toEqual(['component', 'level', 'msg', 'port', 'time']);
    expect(Object.keys(second ?? {}).sort()).toEqual(['component', 'level', 'msg', 'time', 'tools', 'upstream']);
    expect(Object.keys(third ?? {}).sort()).toEqual(['component', 'level', 'msg', 'time']);
    expect(fourth).toMatchObject({ trace_id: 't1', ms: 3 });
    expect(Object.keys(fifth ?? {}).sort()).toEqual(['component', 'level', 'msg', 'time', 'trace_id']);
    expect(shared).toEqual({ trace_id: 't1' });
  });

  it('setLevel reaches children made before and after the change', () => {
    const lines: string[] = [];
    const log = createLogger('warn', {}, (l) => lines.push(l));
    const before = log.child({ component: 'a' });
    before.info('dropped');
    log.setLevel('debug');
    before.debug('kept');
    log.child({ component: 'b' }).debug('kept too');
    expect(log.level()).toBe('debug');
    expect(before.isLevelEnabled('debug')).toBe(true);
    log.setLevel('silent');
    before.error('dropped as well');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['kept', 'kept too']);
  });
});

describe('PUT /api/log-level on a real gateway', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway([demoClient('demo')]);
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it('turns debug lines on and off at once; a bad level is a 400 naming the field', async () => {
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'lvl' } } });
    const debugLines = (): number => gw.logs.filter((l) => l.includes('"level":"debug"')).length;
    // the test helper's logger starts at debug
    expect((await send(`${gw.url}/api/log-level`, { method: 'GET' })).json).toEqual({ level: 'debug' });
    await send(`${gw.url}/api/log-level`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ level: 'info' }) });
    expect((await send(`${gw.url}/api/log-level`, { method: 'GET' })).json).toEqual({ level: 'info' });
    const quiet = debugLines();
    await rawPost(gw.mcpUrl, init);
    expect(debugLines()).toBe(quiet);
    const put = await send(`${gw.url}/api/log-level`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ level: 'debug' }) });
    expect(put.status).toBe(200);
    await rawPost(gw.mcpUrl, init);
    expect(gw.logs.some((l) => l.includes('"level":"debug"') && l.includes('session created'))).toBe(true);
    const bad = await send(`${gw.url}/api/log-level`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ level: 'verbose' }) });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('level');
    await send(`${gw.url}/api/log-level`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ level: 'warn' }) });
    const n = debugLines();
    await rawPost(gw.mcpUrl, init);
    expect(debugLines()).toBe(n);
  });
});
