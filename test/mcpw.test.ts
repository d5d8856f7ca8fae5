/**
 * MCPW frame codec (DESIGN.md §5): golden hex fixtures for every frame type (the seed's
 * heartbeat included), one minimal bad frame per error code, a 100 MB gzip bomb, the no-copy
 * contract of `decodeFrame`, and the encoder's options (gzip threshold, encryption, one buffer).
 * Property tests are in `mcpw-property.test.ts`, the JSON-RPC mapping in `mcpw-jsonrpc.test.ts`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  closeFrame,
  createMcpwKey,
  decodeFrame,
  decodeHeader,
  encodeFrame,
  errorFrame,
  errorFrameFor,
  MCPW_HEADER_BYTES,
  McpwFlags,
  McpwMethod,
  McpwType,
  pingFrame,
  pongFrame,
  type McpwDecodeOptions,
  type McpwDecodedFrame,
  type McpwFrame,
} from '../src/codecs/mcpw.js';
import { MCPW_ERROR_CODES, MCPW_ERRORS, type McpwDecodeError, type McpwErrorCode } from '../src/codecs/mcpw-errors.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'mcpw');

/** Reads a `.hex` fixture: `#` comments, whitespace-separated hex groups. */
function fixture(name: string): Uint8Array {
  const text = readFileSync(path.join(FIXTURES, `${name}.hex`), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join('')
    .replace(/\s+/g, '');
  expect(text).toMatch(/^([0-9A-Fa-f]{2})+$/);
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

/** Hex of a header written the way DESIGN.md §5 and the issue write it, plus a payload. */
function frameHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
}

function decodeOk(bytes: ArrayBuffer | Uint8Array, options?: McpwDecodeOptions): McpwDecodedFrame {
  const result = decodeFrame(bytes, options);
  if (!result.ok) throw new Error(`expected a frame, got ${result.error.code}: ${result.error.message}`);
  return result.frame;
}

function decodeErr(bytes: ArrayBuffer | Uint8Array, options?: McpwDecodeOptions): McpwDecodeError {
  const result = decodeFrame(bytes, options);
  if (result.ok) throw new Error(`expected an error, got a frame of type ${result.frame.type}`);
  return result.error;
}

const KEY_BYTES = Uint8Array.from({ length: 32 }, (_, i) => i);
const KEY = createMcpwKey(KEY_BYTES);

describe('golden fixtures (test/fixtures/mcpw/*.hex)', () => {
  // name → the frame it holds; `encodes: false` where the bytes are not ours to reproduce
  // (gzip output depends on the zlib build, encryption uses a random nonce, foreign MessagePack writer)
  const golden: Array<{ name: string; frame: McpwFrame; flags?: number; encodes?: false; options?: McpwDecodeOptions }> = [
    { name: 'ping-seed', frame: pingFrame(1_700_000_000_000n) },
    { name: 'pong', frame: pongFrame(1_700_000_000_000n) },
    { name: 'close', frame: closeFrame() },
    {
      name: 'request-tools-call',
      frame: { type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 1n, payload: { name: 'everything-echo', arguments: { message: 'hi' } } },
    },
    {
      name: 'response-tools-call',
      frame: { type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 1n, payload: { content: [{ type: 'text', text: 'Echo: hi' }], isError: false } },
    },
    {
      name: 'notification-log',
      frame: { type: McpwType.Notification, method: McpwMethod.LogMessage, requestId: 0n, payload: { level: 'info', data: 'ready' } },
    },
    {
      name: 'error-tools-call',
      frame: { type: McpwType.Error, method: McpwMethod.ToolsCall, requestId: 2n, payload: { code: -32602, message: 'Tool not found' } },
    },
    { name: 'error-bad-magic', frame: errorFrame(undefined, 'bad_magic', 'bad magic 0x00000000, expected 0x4D435057 ("MCPW")') },
    {
      name: 'request-generic',
      frame: { type: McpwType.Request, method: McpwMethod.Generic, requestId: 0n, payload: { jsonrpc: '2.0', id: 'req-a', method: 'resources/list' } },
    },
    {
      name: 'request-initialize-max-id',
      frame: {
        type: McpwType.Request,
        method: McpwMethod.Initialize,
        requestId: 2n ** 64n - 1n,
        payload: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'agent' } },
      },
    },
    {
      name: 'response-tools-list-gzip',
      frame: {
        type: McpwType.Response,
        method: McpwMethod.ToolsList,
        requestId: 3n,
        payload: { tools: Array.from({ length: 40 }, (_, i) => ({ name: `everything-tool${i}`, inputSchema: { type: 'object' } })) },
      },
      flags: McpwFlags.Gzip,
      encodes: false,
    },
    {
      name: 'request-encrypted',
      frame: { type: McpwType.Request, method: McpwMethod.ContextGet, requestId: 9n, payload: { context_id: 'ctx-1' } },
      flags: McpwFlags.Encrypted,
      encodes: false,
      options: { key: KEY },
    },
    {
      name: 'request-foreign-fixmap',
      frame: { type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 4n, payload: { name: 'hello' } },
      encodes: false,
    },
  ];
  it('covers every frame type', () => {
    const types = new Set(golden.map((g) => g.frame.type));
    expect([...types].sort()).toEqual(Object.values(McpwType).sort());
  });

  it('the seed heartbeat fixture is the issue\'s bytes: 4D435057 01 05 0000 00 000000 00000000 + 8-byte big-endian id', () => {
    const id = 1_700_000_000_000n;
    const seed = frameHex(`4D435057 01 05 0000 00 000000 00000000 ${id.toString(16).padStart(16, '0')}`);
    expect(fixture('ping-seed')).toEqual(seed);
    expect(Buffer.from(encodeFrame(pingFrame(id))).equals(seed)).toBe(true);
    // the seed client builds its id from Date.now(): any u64 is taken as is
    expect(decodeOk(seed)).toEqual({ type: McpwType.Ping, method: McpwMethod.Generic, flags: 0, payloadLength: 0, requestId: id, payload: undefined });
  });

  for (const g of golden) {
    it(`${g.name}: decodes to its frame${g.encodes === false ? '' : ' and encodes to its bytes'}`, () => {
      const bytes = fixture(g.name);
      const decoded = decodeOk(bytes, g.options);
      expect(decoded).toEqual({ ...g.frame, flags: g.flags ?? 0, payloadLength: bytes.length - MCPW_HEADER_BYTES });
      if (g.encodes !== false) {
        expect(Buffer.from(encodeFrame(g.frame)).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
      } else {
        // re-encoding with the same transforms gives a frame that decodes to the same value
        const again = encodeFrame(g.frame, { gzip: (g.flags ?? 0) & McpwFlags.Gzip ? true : false, ...(g.options?.key ? { key: g.options.key } : {}) });
        expect(decodeOk(again, g.options)).toEqual({ ...g.frame, flags: g.flags ?? 0, payloadLength: again.length - MCPW_HEADER_BYTES });
      }
    });
  }

  it('decodeHeader reads the seed heartbeat header without touching the payload', () => {
    const result = decodeHeader(fixture('ping-seed'));
    expect(result).toEqual({ ok: true, header: { type: McpwType.Ping, method: McpwMethod.Generic, flags: 0, payloadLength: 0, requestId: 1_700_000_000_000n } });
    // a header with a garbage payload still reads: payload checks belong to decodeFrame
    const withGarbage = frameHex('4D435057 01 01 0003 00 000000 00000002 0000000000000007 C1C1');
    expect(decodeHeader(withGarbage).ok).toBe(true);
    expect(decodeErr(withGarbage).code).toBe('bad_payload');
  });
});

describe('one minimal bad frame per error code', () => {
  const ID = '00000000000000AB';
  const cases: Record<McpwErrorCode, { hex: string; options?: McpwDecodeOptions; requestId?: bigint; message: RegExp }> = {
    bad_magic: { hex: `4D435058 01 05 0000 00 000000 00000000 ${ID}`, message: /bad magic 0x4D435058/ },
    bad_version: { hex: `4D435057 02 05 0000 00 000000 00000000 ${ID}`, requestId: 0xabn, message: /version 0x02/ },
    truncated_header: { hex: '4D435057 01 05 0000 00 000000 00000000 00000000000000', message: /23 bytes/ },
    length_mismatch: { hex: `4D435057 01 05 0000 00 000000 00000001 ${ID}`, requestId: 0xabn, message: /length 1 bytes, frame carries 0/ },
    reserved_bits: { hex: `4D435057 01 05 0000 04 000000 00000000 ${ID}`, requestId: 0xabn, message: /flags 0x04/ },
    reserved_bytes: { hex: `4D435057 01 05 0000 00 000100 00000000 ${ID}`, requestId: 0xabn, message: /0x000100/ },
    unknown_type: { hex: `4D435057 01 08 0000 00 000000 00000000 ${ID}`, requestId: 0xabn, message: /type 0x08/ },
    unknown_method: { hex: `4D435057 01 01 0007 00 000000 00000000 ${ID}`, requestId: 0xabn, message: /method 0x0007/ },
    encrypted_without_key: { hex: `4D435057 01 01 0003 02 000000 00000001 ${ID} 00`, requestId: 0xabn, message: /no key/ },
    decrypt_failed: { hex: `4D435057 01 01 0003 02 000000 0000001C ${ID} ${'00'.repeat(28)}`, options: { key: KEY }, requestId: 0xabn, message: /AES-256-GCM/ },
    bad_payload: { hex: `4D435057 01 01 0003 00 000000 00000002 ${ID} 9201`, requestId: 0xabn, message: /not valid MessagePack/ },
    payload_too_large: { hex: `4D435057 01 01 0003 00 000000 00000005 ${ID} 0102030405`, options: { maxPayloadBytes: 4 }, requestId: 0xabn, message: /5 bytes is over the limit of 4/ },
    gzip_bomb: {
      hex: `4D435057 01 01 0003 01 000000 ${gzipSync(Buffer.alloc(1024)).length.toString(16).padStart(8, '0')} ${ID} ${gzipSync(Buffer.alloc(1024)).toString('hex')}`,
      options: { maxInflatedBytes: 100 },
      requestId: 0xabn,
      message: /inflates past the limit of 100 bytes/,
    },
    gzip_error: { hex: `4D435057 01 01 0003 01 000000 00000004 ${ID} 6E6F7065`, requestId: 0xabn, message: /does not inflate/ },
    // compact params [[1]]: depth 2 below the message = 3 from it, over a limit of 2
    nesting_too_deep: { hex: `4D435057 01 01 0003 00 000000 00000003 ${ID} 919101`, options: { maxDepth: 2 }, requestId: 0xabn, message: /limit of 2 levels .* byte 1/ },
    // uint 64 = 2^53
    unsafe_integer: { hex: `4D435057 01 01 0003 00 000000 00000009 ${ID} CF0020000000000000`, requestId: 0xabn, message: /9007199254740992 .* outside/ },
  };

  it('the table has every registered code', () => {
    expect(Object.keys(cases).sort()).toEqual([...MCPW_ERROR_CODES].sort());
  });

  for (const code of MCPW_ERROR_CODES) {
    it(`${code} (recoverable: ${MCPW_ERRORS[code].recoverable})`, () => {
      const c = cases[code];
      const error = decodeErr(frameHex(c.hex), c.options);
      expect(error.code).toBe(code);
      expect(error.message).toMatch(c.message);
      expect(error.recoverable).toBe(MCPW_ERRORS[code].recoverable);
      expect(error.requestId).toBe(c.requestId);
      // the Error frame names the problem and echoes the request id
      const reply = decodeOk(encodeFrame(errorFrameFor(error)));
      expect(reply.type).toBe(McpwType.Error);
      expect(reply.requestId).toBe(c.requestId ?? 0n);
      expect(reply.payload).toEqual({
        jsonrpc: '2.0',
        id: c.requestId === undefined ? null : Number(c.requestId),
        error: { code: MCPW_ERRORS[code].rpc, message: error.message, data: { code, recoverable: MCPW_ERRORS[code].recoverable } },
      });
    });
  }

  it('more shapes of the same errors', () => {
    expect(decodeErr(new Uint8Array(0)).code).toBe('truncated_header');
    expect(decodeErr(frameHex('4D43')).code).toBe('truncated_header');
    expect(decodeErr(frameHex('4D44')).code).toBe('bad_magic'); // a short frame that already differs
    expect(decodeErr(frameHex('7B226A736F6E727063223A22322E30227D')).code).toBe('bad_magic'); // JSON text sent as binary
    expect(decodeErr(frameHex(`4D435057 01 00 0000 00 000000 00000000 ${ID}`)).code).toBe('unknown_type');
    expect(decodeErr(frameHex(`4D435057 01 01 FFFF 00 000000 00000000 ${ID}`)).code).toBe('unknown_method');
    expect(decodeErr(frameHex(`4D435057 01 01 0000 80 000000 00000000 ${ID}`)).code).toBe('reserved_bits');
    expect(decodeErr(frameHex(`4D435057 01 01 0000 00 000001 00000000 ${ID}`)).code).toBe('reserved_bytes');
    expect(decodeErr(frameHex(`4D435057 01 01 0000 00 000000 00000000 ${ID} 00`)).code).toBe('length_mismatch'); // extra byte
    expect(decodeErr(frameHex(`4D435057 01 01 0003 00 000000 FFFFFFFF ${ID}`)).code).toBe('payload_too_large'); // over the 16 MiB default
    expect(decodeErr(frameHex(`4D435057 01 01 0003 00 000000 00000002 ${ID} 0102`)).message).toMatch(/end of buffer not reached/); // trailing bytes
    expect(decodeErr(frameHex(`4D435057 01 01 0003 00 000000 00000001 ${ID} C1`)).code).toBe('bad_payload'); // the never-used byte
    expect(decodeErr(frameHex(`4D435057 01 01 0003 01 000000 00000000 ${ID}`)).code).toBe('gzip_error'); // gzip flag, empty payload
    expect(decodeErr(frameHex(`4D435057 01 01 0003 02 000000 00000000 ${ID}`), { key: KEY }).code).toBe('decrypt_failed'); // shorter than nonce + tag
    // a valid gzip stream of bytes that are not MessagePack
    const gz = gzipSync(Buffer.from([0x92, 0x01]));
    expect(decodeErr(frameHex(`4D435057 01 01 0003 01 000000 ${gz.length.toString(16).padStart(8, '0')} ${ID} ${gz.toString('hex')}`)).code).toBe('bad_payload');
  });

  it('a tampered encrypted frame fails authentication, header included', () => {
    const good = encodeFrame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 5n, payload: { name: 'x' } }, { key: KEY });
    expect(decodeOk(good, { key: KEY }).payload).toEqual({ name: 'x' });
    const body = Uint8Array.from(good);
    body[body.length - 20] = (body[body.length - 20] ?? 0) ^ 1;
    expect(decodeErr(body, { key: KEY }).code).toBe('decrypt_failed');
    const header = Uint8Array.from(good);
    header[23] = 6; // request id 5 → 6: the header is authenticated data
    expect(decodeErr(header, { key: KEY })).toMatchObject({ code: 'decrypt_failed', requestId: 6n, recoverable: false });
    expect(decodeErr(good, { key: createMcpwKey(new Uint8Array(32)) }).code).toBe('decrypt_failed');
  });

  it('decodeFrame does not throw on inputs outside its type', () => {
    expect(decodeErr('MCPW' as unknown as Uint8Array).code).toBe('truncated_header');
    expect(decodeErr(null as unknown as Uint8Array).code).toBe('truncated_header');
  });
});

describe('gzip bomb', () => {
  /** gzip of `mib` MiB of zeros, built by streaming a 1 MiB chunk so the test never holds the inflated bytes. */
  async function zeroBomb(mib: number): Promise<Buffer> {
    const gz = createGzip({ level: 9 });
    const chunks: Buffer[] = [];
    gz.on('data', (c: Buffer) => chunks.push(c));
    const done = new Promise<void>((resolve, reject) => {
      gz.on('end', resolve);
      gz.on('error', reject);
    });
    const zeros = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < mib; i++) gz.write(zeros);
    gz.end();
    await done;
    return Buffer.concat(chunks);
  }

  function bombFrame(gz: Buffer): Uint8Array {
    const out = new Uint8Array(MCPW_HEADER_BYTES + gz.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, 0x4d435057);
    view.setUint8(4, 1);
    view.setUint8(5, McpwType.Request);
    view.setUint16(6, McpwMethod.ToolsCall);
    view.setUint8(8, McpwFlags.Gzip);
    view.setUint32(12, gz.length);
    view.setBigUint64(16, 77n);
    out.set(gz, MCPW_HEADER_BYTES);
    return out;
  }

  it('100 MB of zeros (~100 KB compressed) is rejected with gzip_bomb, quickly, with bounded memory', async () => {
    const gz = await zeroBomb(100);
    expect(gz.length).toBeLessThan(200_000);
    const frame = bombFrame(gz);

    // baseline in the same run: the CPU time of inflating the whole 100 MB
    const cpuMs = (f: () => unknown): number => {
      const before = process.cpuUsage();
      f();
      const used = process.cpuUsage(before);
      return (used.user + used.system) / 1000;
    };
    const fullMs = cpuMs(() => gunzipSync(gz).length);
    let error: McpwDecodeError | undefined;
    const decodeMs = cpuMs(() => (error = decodeErr(frame))); // default limit: 16 MiB
    expect(error).toMatchObject({ code: 'gzip_bomb', requestId: 77n, recoverable: true });
    // zlib stops at the 16 MiB limit: a fraction of the work of inflating it all (about 16 %)
    expect(decodeMs).toBeLessThan(fullMs * 0.6);

    // with a 1 MiB limit zlib stops after ~1 MiB of output: the process grows by a few MiB, not 100+
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 5; i++) expect(decodeErr(frame, { maxInflatedBytes: 1024 * 1024 }).code).toBe('gzip_bomb');
    const grownMiB = (process.memoryUsage().rss - rssBefore) / (1024 * 1024);
    expect(grownMiB).toBeLessThan(48);
  });

  it('a payload that inflates to exactly the limit is accepted; one byte more is a bomb', () => {
    const frame = encodeFrame({ type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 1n, payload: 'x'.repeat(2000) }, { gzip: true });
    const inflated = 2000 + 3; // str16 header
    expect(decodeOk(frame, { maxInflatedBytes: inflated }).payload).toBe('x'.repeat(2000));
    expect(decodeErr(frame, { maxInflatedBytes: inflated - 1 }).code).toBe('gzip_bomb');
    // out-of-range limits are clamped into what zlib accepts, never a thrown RangeError
    expect(decodeOk(frame, { maxInflatedBytes: Infinity }).payload).toBe('x'.repeat(2000));
    expect(decodeErr(frame, { maxInflatedBytes: 0 }).code).toBe('gzip_bomb');
    expect(decodeOk(frame, { maxInflatedBytes: NaN }).payload).toBe('x'.repeat(2000));
  });
});

describe('decodeFrame does not copy the frame', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const bin = Uint8Array.from({ length: 64 }, (_, i) => i);
  const frame = encodeFrame({ type: McpwType.Request, method: McpwMethod.ToolsCall, requestId: 3n, payload: { name: 'upload', data: bin, text: 'y'.repeat(3000) } });

  it('an ArrayBuffer frame (as uWS hands it over): bin values are views into that very ArrayBuffer', () => {
    const ab = new ArrayBuffer(frame.length);
    new Uint8Array(ab).set(frame);
    const decoded = decodeOk(ab).payload as { data: Uint8Array };
    expect(decoded.data).toEqual(bin);
    expect(decoded.data.buffer).toBe(ab);
    // proof by mutation: the decoded view sees a write to the frame's bytes
    const at = decoded.data.byteOffset;
    new Uint8Array(ab)[at] = 0xee;
    expect(decoded.data[0]).toBe(0xee);
  });

  it('a Uint8Array frame at an offset inside a larger buffer (as `ws` hands over Buffers)', () => {
    const backing = new ArrayBuffer(frame.length + 100);
    const input = new Uint8Array(backing, 37, frame.length);
    input.set(frame);
    new Uint8Array(backing, 0, 37).fill(0xff); // bytes around the frame must not be read
    new Uint8Array(backing, 37 + frame.length).fill(0xff);
    const decoded = decodeOk(input).payload as { data: Uint8Array };
    expect(decoded.data.buffer).toBe(backing);
    expect(decoded.data.byteOffset).toBeGreaterThanOrEqual(37 + MCPW_HEADER_BYTES);
    expect(decoded.data.byteOffset + decoded.data.length).toBeLessThanOrEqual(37 + frame.length);
  });

  it('no slice / Buffer.from / copy of the frame happens while decoding', () => {
    const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as { slice: (...args: unknown[]) => unknown; set: (...args: unknown[]) => unknown };
    const spies = [
      vi.spyOn(ArrayBuffer.prototype, 'slice'),
      vi.spyOn(typedArrayProto, 'slice'),
      vi.spyOn(Buffer, 'from'),
      vi.spyOn(Buffer, 'copyBytesFrom'),
      vi.spyOn(Buffer.prototype, 'copy'),
    ];
    const ab = new ArrayBuffer(frame.length);
    new Uint8Array(ab).set(frame);
    const decoded = decodeOk(ab);
    expect((decoded.payload as { text: string }).text).toHaveLength(3000);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });

  it('copyBinary: true hands out copies that outlive the frame', () => {
    const ab = new ArrayBuffer(frame.length);
    new Uint8Array(ab).set(frame);
    const decoded = decodeOk(ab, { copyBinary: true }).payload as { data: Uint8Array };
    expect(decoded.data.buffer).not.toBe(ab);
    new Uint8Array(ab).fill(0);
    expect(decoded.data).toEqual(bin);
  });
});

describe('encodeFrame', () => {
  const big = { content: [{ type: 'text', text: 'lorem ipsum '.repeat(200) }] };
  const frame: McpwFrame = { type: McpwType.Response, method: McpwMethod.ToolsCall, requestId: 12n, payload: big };

  it('writes header and payload into one buffer (the msgpackr output with 24 reserved bytes)', () => {
    const out = encodeFrame(frame);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    expect(view.getUint32(0)).toBe(0x4d435057);
    expect(view.getUint32(12)).toBe(out.length - MCPW_HEADER_BYTES);
    expect(view.getBigUint64(16)).toBe(12n);
    // a later encode does not overwrite an earlier frame
    const copy = Uint8Array.from(out);
    for (let i = 0; i < 50; i++) encodeFrame({ ...frame, requestId: BigInt(i) });
    expect(Uint8Array.from(out)).toEqual(copy);
  });

  it('gzip only when asked and over the threshold (default 1 KiB)', () => {
    expect(decodeOk(encodeFrame(frame)).flags).toBe(0);
    const gz = encodeFrame(frame, { gzip: true });
    expect(decodeOk(gz)).toMatchObject({ flags: McpwFlags.Gzip, payload: big });
    expect(gz.length).toBeLessThan(encodeFrame(frame).length / 5);
    const small = { ...frame, payload: { content: [] } };
    expect(decodeOk(encodeFrame(small, { gzip: true })).flags).toBe(0);
    expect(decodeOk(encodeFrame(small, { gzip: true, gzipThreshold: 0 })).flags).toBe(McpwFlags.Gzip);
    expect(decodeOk(encodeFrame(frame, { gzip: true, gzipThreshold: 1e9 })).flags).toBe(0);
  });

  it('an empty payload is never compressed or encrypted', () => {
    const out = encodeFrame(pingFrame(1n), { gzip: true, gzipThreshold: 0, key: KEY });
    expect(out.length).toBe(MCPW_HEADER_BYTES);
    expect(decodeOk(out).flags).toBe(0);
  });

  it('refuses header fields out of range', () => {
    expect(() => encodeFrame({ ...frame, type: 8 as McpwType })).toThrow(RangeError);
    expect(() => encodeFrame({ ...frame, type: 0 as McpwType })).toThrow(RangeError);
    expect(() => encodeFrame({ ...frame, method: 7 as McpwMethod })).toThrow(RangeError);
    expect(() => encodeFrame({ ...frame, requestId: -1n })).toThrow(RangeError);
    expect(() => encodeFrame({ ...frame, requestId: 2n ** 64n })).toThrow(RangeError);
    expect(() => encodeFrame({ ...frame, requestId: 1 as unknown as bigint })).toThrow(RangeError);
    expect(() => createMcpwKey(new Uint8Array(16))).toThrow(RangeError);
  });

  it('heartbeat helpers: Pong echoes the Ping id, Close carries no payload', () => {
    const ping = decodeOk(encodeFrame(pingFrame(2n ** 63n + 5n)));
    expect(decodeOk(encodeFrame(pongFrame(ping.requestId)))).toMatchObject({ type: McpwType.Pong, requestId: 2n ** 63n + 5n, payload: undefined });
    expect(decodeOk(encodeFrame(closeFrame()))).toMatchObject({ type: McpwType.Close, requestId: 0n, payloadLength: 0 });
  });

  it('errorFrame: a request id past 2^53 travels as the decimal string in the JSON-RPC id', () => {
    const reply = decodeOk(encodeFrame(errorFrame(2n ** 64n - 1n, 'unknown_method', 'unknown method 0x0009')));
    expect(reply.requestId).toBe(2n ** 64n - 1n);
    expect(reply.payload).toMatchObject({ id: '18446744073709551615', error: { code: -32601, data: { code: 'unknown_method' } } });
  });
});
