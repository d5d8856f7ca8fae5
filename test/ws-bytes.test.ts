/** Bytes in `/ws` method results answered over JSON text frames become base64. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesAsBase64 } from '../src/handlers/mcp/ws.js';

describe('bytesAsBase64', () => {
  it('replaces Uint8Arrays at any depth and leaves everything else alone', () => {
    const bytes = new Uint8Array([0, 1, 2, 250]);
    const view = new Uint8Array(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2);
    expect(bytesAsBase64({ a: bytes, b: [1, 'x', { c: view }], d: null, e: true })).toEqual({ a: 'AAEC+g==', b: [1, 'x', { c: 'CAc=' }], d: null, e: true });
  });

  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const text = bytesAsBase64({ state: b }) as { state: string };
        expect(new Uint8Array(Buffer.from(text.state, 'base64'))).toEqual(b);
      }),
    );
  });
});
