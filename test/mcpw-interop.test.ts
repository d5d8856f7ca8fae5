/**
 * MCPW payloads are standard MessagePack: an independent implementation (Python's `msgpack`,
 * Debian package python3-msgpack, which `.ci/run` installs) decodes every reply of a real gateway
 * — initialize, tools/list, tools/call, tool errors, bad-frame errors, generic (method 0000)
 * replies — with extension types refused, and gets the same value as the JSON text reply.
 * `undefined` object fields are left out as JSON leaves them out (the demo tools' `title`,
 * `annotations`, `_meta` were msgpackr's `undefined` extension, ext type 0, before).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { encodeFrame, McpwMethod, McpwType, type McpwFrame } from '../src/codecs/mcpw.js';
import { demoClient, everythingClient, startTestGateway, type TestGateway } from './helpers/gateway.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/msgpack_std_decode.py', import.meta.url));
/** Debian's interpreter: python3-msgpack installs there (a pyenv `python3` first on PATH would not see it). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

type PyResult = { ok: true; value: unknown; empty?: boolean } | { ok: false; error: string };

/** Decodes whole MCPW frames with Python's msgpack (standard types only); one result per frame. */
function pythonDecode(frames: readonly Uint8Array[]): PyResult[] {
  const dir = mkdtempSync(join(tmpdir(), 'mcpw-py-'));
  try {
    const file = join(dir, 'frames.json');
    writeFileSync(file, JSON.stringify(frames.map((f) => Buffer.from(f).toString('hex'))));
    const out = execFileSync(PYTHON, [SCRIPT, file], { encoding: 'utf8', timeout: 30_000 });
    return JSON.parse(out) as PyResult[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What JSON text would carry for `value`. */
function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value) ?? 'null') as unknown;
}

beforeAll(() => {
  try {
    execFileSync(PYTHON, ['-c', 'import msgpack'], { stdio: 'pipe' });
  } catch {
    throw new Error(`${PYTHON} has no msgpack module: install the Debian package python3-msgpack (.ci/run does)`);
  }
});

describe('encodeFrame writes standard MessagePack only', () => {
  const tool = { name: 'demo-echo', title: undefined, description: 'Echoes', inputSchema: { type: 'object' }, annotations: undefined, _meta: undefined };
  const payloads: Record<string, unknown> = {
    'undefined object fields (demo tools)': { tools: [tool, { ...tool, name: 'demo-add' }] },
    'undefined in arrays and nested': { a: [1, undefined, { b: undefined, c: 2 }], d: { e: undefined } },
    'a whole JSON-RPC message': { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'x', annotations: undefined }] } },
    'numbers of every width': { n: [0, 1, -1, 127, 128, -33, 65535, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, 0.5, -1e300] },
  };
  for (const [name, payload] of Object.entries(payloads)) {
    it(`${name}: Python decodes it with standard types to what JSON would carry`, () => {
      const frames = [
        encodeFrame({ type: McpwType.Response, method: McpwMethod.ToolsList, requestId: 1n, payload }),
        encodeFrame({ type: McpwType.Response, method: McpwMethod.ToolsList, requestId: 1n, payload }, { gzip: true, gzipThreshold: 0 }),
      ];
      for (const r of pythonDecode(frames)) {
        if (!r.ok) throw new Error(r.error);
        expect(r.value).toEqual(asJson(payload));
      }
    });
  }

  it('the check can fail: msgpackr with its defaults writes `undefined` as ext type 0, which Python refuses', () => {
    const packed = new Packr({ useRecords: false }).pack({ title: undefined });
    const header = encodeFrame({ type: McpwType.Response, method: McpwMethod.ToolsList, requestId: 1n, payload: undefined });
    const frame = Buffer.concat([header, packed]);
    frame.writeUInt32BE(packed.length, 12);
    const [r] = pythonDecode([frame]);
    expect(r).toMatchObject({ ok: false });
    expect(r?.ok === false ? r.error : '').toContain('extension type 0');
  });
});

describe('every MCPW reply of a real gateway decodes in Python with standard types only', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway([everythingClient(), demoClient()]);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it('initialize, tools/list, tools/call, tool and frame errors, generic replies, Pong', async () => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`);
    const binary: Buffer[] = [];
    const texts: Array<Record<string, unknown>> = [];
    // Small server-initiated notifications (e.g. tools/list_changed when an upstream reloads) go
    // as JSON text even to a binary client, as in the MCPW source design; a reply never does.
    const textOnBinary: Array<Record<string, unknown>> = [];
    ws.on('message', (data, isBinary) => {
      if (isBinary) binary.push(Buffer.from(data as Buffer));
      else textOnBinary.push(JSON.parse(String(data)) as Record<string, unknown>);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    // request 4 goes gzip'd: a client that sends gzip gets replies over 1 KiB gzip'd
    const sendFrame = (f: McpwFrame): void => ws.send(encodeFrame(f, f.requestId === 4n ? { gzip: true, gzipThreshold: 0 } : {}));
    const waitFor = async (pred: () => boolean): Promise<void> => {
      const deadline = Date.now() + 15_000;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out (${binary.length} frames, ${texts.length} texts)`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    try {
      const requests: McpwFrame[] = [
        { type: McpwType.Request, method: McpwMethod.Initialize, requestId: 1n, payload: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'py-interop' } } },
        { type: McpwType.Request, method: McpwMethod.ToolsList, requestId: 2n, payload: {} },
        { type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 3n, payload: { name: 'demo-echo', arguments: { message: 'hi' } } },
        { type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 4n, payload: { name: 'everything-echo', arguments: { message: 'x'.repeat(3000) } } },
        { type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 5n, payload: { name: 'demo-add', arguments: { a: 1, b: 2 } } },
        { type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 6n, payload: { name: 'nope-missing', arguments: {} } },
        { type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 7n, payload: { name: 'demo-add', arguments: { a: 'not a number' } } },
        { type: McpwType.Request, method: McpwMethod.Generic, requestId: 8n, payload: { jsonrpc: '2.0', id: 'gen-1', method: 'ping' } },
        { type: McpwType.Request, method: McpwMethod.Generic, requestId: 9n, payload: { jsonrpc: '2.0', id: 'gen-2', method: 'resources/list', params: {} } },
        { type: McpwType.Ping, method: McpwMethod.Generic, requestId: 10n, payload: undefined },
      ];
      // one request at a time: initialize must be answered before the rest
      const answered = (id: bigint): boolean => binary.some((b) => b.readBigUInt64BE(16) === id);
      for (const f of requests) {
        sendFrame(f);
        await waitFor(() => answered(f.requestId));
      }
      const before = binary.length;
      const bad = Buffer.from(encodeFrame({ type: McpwType.Request, method: McpwMethod.ToolsList, requestId: 11n, payload: {} }));
      bad.writeUInt32BE(0x4d435058, 0);
      ws.send(bad);
      await waitFor(() => binary.length >= before + 1);
      // the same tools/list as JSON text, to compare, on a connection that never sent binary
      // (a binary client gets large server messages as MCPW)
      const textWs = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`);
      textWs.on('message', (data) => texts.push(JSON.parse(String(data)) as Record<string, unknown>));
      await new Promise<void>((resolve, reject) => {
        textWs.once('open', () => resolve());
        textWs.once('error', reject);
      });
      textWs.send(JSON.stringify({ jsonrpc: '2.0', id: 'text-init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'text' } } }));
      await waitFor(() => texts.some((t) => t['id'] === 'text-init'));
      textWs.send(JSON.stringify({ jsonrpc: '2.0', id: 'text-list', method: 'tools/list' }));
      await waitFor(() => texts.some((t) => t['id'] === 'text-list'));
      textWs.close();

      // whatever came as text on the binary connection is a notification, never a reply
      for (const t of textOnBinary) {
        expect(t).not.toHaveProperty('id');
        expect(String(t['method'])).toMatch(/^notifications\//);
      }
      const results = pythonDecode(binary);
      expect(results).toHaveLength(binary.length);
      for (const [i, r] of results.entries()) {
        if (!r.ok) throw new Error(`frame ${i} (type ${binary[i]?.[5]}): ${r.error}`);
      }
      const types = binary.map((b) => b[5]);
      expect(types).toContain(McpwType.Response);
      expect(types).toContain(McpwType.Error);
      expect(types).toContain(McpwType.Pong);
      // tools/list (request id 2) decoded in Python equals the JSON text reply's result
      const listIndex = binary.findIndex((b) => b.readBigUInt64BE(16) === 2n);
      const list = results[listIndex];
      const textList = texts.find((t) => t['id'] === 'text-list')?.['result'] as { tools: Array<Record<string, unknown>> };
      expect(list?.ok === true ? list.value : undefined).toEqual(textList);
      const demoEcho = textList.tools.find((t) => t['name'] === 'demo-echo');
      expect(demoEcho).toBeDefined();
      // gzip'd reply (3,000-character echo, answering a gzip'd request) decodes too
      const echoIndex = binary.findIndex((b) => b.readBigUInt64BE(16) === 4n);
      expect((binary[echoIndex]?.[8] ?? 0) & 1).toBe(1);
      expect(JSON.stringify(results[echoIndex])).toContain('x'.repeat(3000));
    } finally {
      ws.close();
    }
  }, 60_000);
});
