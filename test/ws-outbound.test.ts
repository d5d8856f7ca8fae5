/**
 * The `/ws` send side's corking: what a connection writes during one loop turn reaches uWS inside
 * one `cork()`, in order, at the end of the turn. uWS's cork is not observable from a client (TCP
 * may coalesce or split writes either way), so the connection here records what it is given; the
 * endpoint over a real uWS socket is covered by ws-agent.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { McpwMethod, McpwType, decodeFrame } from '../src/codecs/mcpw.js';
import { WsOutbound } from '../src/handlers/mcp/ws-outbound.js';
import { MCP_WS_DEFAULTS } from '../src/handlers/mcp/ws.js';
import { createLogger } from '../src/log/logger.js';
import type { WsConnection, WsSendResult } from '../src/streams/ws.js';

type Event = { kind: 'cork-start' } | { kind: 'cork-end' } | { kind: 'send'; data: string | Uint8Array; binary: boolean; corked: boolean } | { kind: 'close'; code: number };

class RecordingConnection implements WsConnection {
  readonly endpoint = '/ws';
  readonly remoteAddress = '127.0.0.1';
  readonly auth = undefined;
  closed = false;
  buffered = 0;
  result: WsSendResult = 'ok';
  readonly events: Event[] = [];
  private corked = false;
  send(data: string | Uint8Array, binary = false): WsSendResult {
    // uWS copies what it is given (the gateway reuses a frame's bytes once the turn is sent)
    this.events.push({ kind: 'send', data: typeof data === 'string' ? data : Uint8Array.from(data), binary, corked: this.corked });
    return this.result;
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  close(code: number): void {
    this.closed = true;
    this.events.push({ kind: 'close', code });
  }
  ping(): void {}
  cork(fn: () => void): void {
    this.events.push({ kind: 'cork-start' });
    this.corked = true;
    try {
      fn();
    } finally {
      this.corked = false;
      this.events.push({ kind: 'cork-end' });
    }
  }
  authorize(): boolean {
    return true;
  }
}

const log = createLogger('silent');
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('WsOutbound corking', () => {
  it('hands one turn of messages to uWS in one cork, in order, after the turn', async () => {
    const conn = new RecordingConnection();
    const out = new WsOutbound(conn, MCP_WS_DEFAULTS, log, () => {});
    out.binary = true;
    expect(out.message({ jsonrpc: '2.0', id: 1, result: { a: 1 } }, undefined)).toBe(true);
    expect(out.message({ jsonrpc: '2.0', id: 2, result: { b: 2 } }, { method: McpwMethod.ToolsCall, requestId: 2n })).toBe(true);
    expect(out.write('third', false)).toBe(true);
    // nothing is sent during the turn
    expect(conn.events).toEqual([]);
    await turn();
    expect(conn.events.map((e) => e.kind)).toEqual(['cork-start', 'send', 'send', 'send', 'cork-end']);
    const sends = conn.events.filter((e): e is Extract<Event, { kind: 'send' }> => e.kind === 'send');
    expect(sends.every((s) => s.corked)).toBe(true);
    expect(sends[0]).toMatchObject({ data: '{"jsonrpc":"2.0","id":1,"result":{"a":1}}', binary: false });
    const frame = decodeFrame(sends[1]?.data as Uint8Array);
    expect(frame.ok && frame.frame).toMatchObject({ type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 2n, payload: { b: 2 } });
    expect(sends[2]).toMatchObject({ data: 'third', binary: false });

    // the next turn is a new cork
    out.write('fourth', false);
    await turn();
    expect(conn.events.map((e) => e.kind).slice(5)).toEqual(['cork-start', 'send', 'cork-end']);
  });

  it('corks each connection separately and drops what a connection closed during the turn had queued', async () => {
    const a = new RecordingConnection();
    const b = new RecordingConnection();
    const outA = new WsOutbound(a, MCP_WS_DEFAULTS, log, () => {});
    const outB = new WsOutbound(b, MCP_WS_DEFAULTS, log, () => {});
    outA.write('a1', false);
    outB.write('b1', false);
    outA.write('a2', false);
    b.closed = true;
    await turn();
    expect(a.events.map((e) => (e.kind === 'send' ? e.data : e.kind))).toEqual(['cork-start', 'a1', 'a2', 'cork-end']);
    expect(b.events).toEqual([]);
    expect(outB.write('b2', false)).toBe(false);
  });

  it('frames of one turn on several connections each reach uWS whole, turn after turn (their bytes are reused only after the turn is sent)', async () => {
    const conns = [new RecordingConnection(), new RecordingConnection(), new RecordingConnection()];
    const outs = conns.map((c) => new WsOutbound(c, MCP_WS_DEFAULTS, log, () => {}));
    const expected: unknown[][] = conns.map(() => []);
    for (let t = 0; t < 5; t++) {
      for (let i = 0; i < 40; i++) {
        const k = i % outs.length;
        const result = { content: [{ type: 'text', text: `turn ${t} call ${i} ${'w'.repeat(500 + 97 * i)}` }] };
        expected[k]?.push(result);
        outs[k]?.message({ jsonrpc: '2.0', id: i, result }, { method: McpwMethod.ToolsCall, requestId: BigInt(i) });
      }
      await turn();
    }
    conns.forEach((c, k) => {
      const payloads = c.events.filter((e): e is Extract<Event, { kind: 'send' }> => e.kind === 'send').map((e) => {
        const d = decodeFrame(e.data as Uint8Array);
        return d.ok ? d.frame.payload : d.error;
      });
      expect(payloads).toEqual(expected[k]);
    });
  });

  it('a frame waiting behind one compressed off the loop keeps its bytes while later turns reuse theirs', async () => {
    const conn = new RecordingConnection();
    const out = new WsOutbound(conn, { ...MCP_WS_DEFAULTS, gzipLargeBytes: 1024, gzipOffLoopBytes: 2048 }, log, () => {});
    const big = { content: [{ type: 'text', text: 'big '.repeat(30_000) }] };
    const small = { content: [{ type: 'text', text: 'small and waiting' }] };
    out.message({ jsonrpc: '2.0', id: 1, result: big }, { method: McpwMethod.ToolsCall, requestId: 1n });
    out.message({ jsonrpc: '2.0', id: 2, result: small }, { method: McpwMethod.ToolsCall, requestId: 2n });
    // other connections' frames fill (and reset) the turn's area meanwhile
    const other = new WsOutbound(new RecordingConnection(), MCP_WS_DEFAULTS, log, () => {});
    for (let t = 0; t < 10_000 && conn.events.filter((e) => e.kind === 'send').length < 2; t++) {
      for (let i = 0; i < 8; i++) other.message({ jsonrpc: '2.0', id: t, result: { content: [{ type: 'text', text: 'x'.repeat(30_000) }] } }, { method: McpwMethod.ToolsCall, requestId: BigInt(t) });
      await turn();
    }
    const sends = conn.events.filter((e): e is Extract<Event, { kind: 'send' }> => e.kind === 'send').map((e) => decodeFrame(e.data as Uint8Array));
    expect(sends.map((d) => d.ok && d.frame.requestId)).toEqual([1n, 2n]);
    expect(sends[0]?.ok && sends[0].frame).toMatchObject({ flags: 1, payload: big });
    expect(sends[1]?.ok && sends[1].frame.payload).toEqual(small);
  });

  it('closes with 1013 over the backpressure limit at the flush and sends nothing after it', async () => {
    const conn = new RecordingConnection();
    let tooSlow = 0;
    const out = new WsOutbound(conn, { ...MCP_WS_DEFAULTS, hardLimitBytes: 10 }, log, () => tooSlow++);
    out.write('one', false);
    out.write('two', false);
    conn.buffered = 11;
    await turn();
    expect(conn.events.map((e) => (e.kind === 'send' ? e.data : e.kind === 'close' ? e.code : e.kind))).toEqual(['cork-start', 'one', 1013, 'cork-end']);
    expect(tooSlow).toBe(1);
    expect(out.write('three', false)).toBe(false);
  });
});
