/**
 * Sealed `Mcp-Session-Id`s (AES-256-GCM): round trip, key rotation with an overlap window, refusal
 * of altered, foreign, expired and random ids (fast-check), and two session stores sharing a key
 * (what two processes do): a session created in one is rebuilt in the other with its owner and
 * tool mode, and a DELETE revokes it.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SessionKeyError, SessionSealer, type SealedSessionState } from '../src/handlers/mcp/sealed-session.js';
import { SessionStore } from '../src/handlers/mcp/session.js';

const STATE: SealedSessionState = {
  protocolVersion: '2025-06-18',
  clientCapabilities: { sampling: {}, roots: { listChanged: true } },
  clientInfo: { name: 'agent', version: '1.2' },
  owner: 'key:k1',
  toolMode: 'search',
  createdAt: 1_700_000_000_000,
};

describe('SessionSealer', () => {
  const k1 = SessionSealer.generateKey();
  const k2 = SessionSealer.generateKey();

  it('opens what it sealed; every id is new, visible ASCII, and carries no plaintext', () => {
    const s = SessionSealer.fromBase64([k1]);
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add(s.seal(STATE));
    expect(ids.size).toBe(50);
    for (const id of ids) {
      expect(id).toMatch(/^ts1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      expect(id).not.toContain('agent');
      expect(s.open(id, STATE.createdAt)).toEqual(STATE);
    }
  });

  it('rotation: the first key seals, every listed key opens; a removed key ends its sessions', () => {
    const old = SessionSealer.fromBase64([k1]).seal(STATE);
    const overlap = SessionSealer.fromBase64([k2, k1]);
    expect(overlap.open(old, STATE.createdAt)).toEqual(STATE);
    const fresh = overlap.seal(STATE);
    expect(SessionSealer.fromBase64([k1]).open(fresh, STATE.createdAt)).toBeUndefined();
    expect(SessionSealer.fromBase64([k2]).open(fresh, STATE.createdAt)).toEqual(STATE);
    expect(SessionSealer.fromBase64([k2]).open(old, STATE.createdAt)).toBeUndefined();
  });

  it('refuses ids older than the maximum age', () => {
    const s = SessionSealer.fromBase64([k1], 60_000);
    const id = s.seal(STATE);
    expect(s.open(id, STATE.createdAt + 60_000)).toEqual(STATE);
    expect(s.open(id, STATE.createdAt + 60_001)).toBeUndefined();
  });

  it('refuses every altered id (one character changed anywhere) and random strings', () => {
    const s = SessionSealer.fromBase64([k1]);
    const id = s.seal(STATE);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    fc.assert(
      fc.property(fc.nat(id.length - 1), fc.constantFrom(...alphabet), (pos, ch) => {
        fc.pre(id[pos] !== ch);
        const altered = id.slice(0, pos) + ch + id.slice(pos + 1);
        // the last base64url character may carry only padding bits: decoding may give the same bytes
        const same = Buffer.from(altered.slice(altered.lastIndexOf('.') + 1), 'base64url').equals(Buffer.from(id.slice(id.lastIndexOf('.') + 1), 'base64url')) && altered.slice(0, altered.lastIndexOf('.')) === id.slice(0, id.lastIndexOf('.'));
        expect(s.open(altered, STATE.createdAt) === undefined || same).toBe(true);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (junk) => {
        expect(s.open(junk)).toBeUndefined();
        expect(s.open(`ts1.${junk}`)).toBeUndefined();
      }),
    );
  });

  it('keeps large client capabilities by name only, so the id stays small', () => {
    const s = SessionSealer.fromBase64([k1]);
    const big = { ...STATE, clientCapabilities: { sampling: {}, experimental: { blob: 'x'.repeat(5_000) } } };
    const id = s.seal(big);
    expect(id.length).toBeLessThan(400);
    expect(s.open(id, STATE.createdAt)?.clientCapabilities).toEqual({ sampling: {}, experimental: {} });
  });

  it('refuses keys that are not 32 bytes, naming which', () => {
    expect(() => SessionSealer.fromBase64([k1, Buffer.alloc(16).toString('base64')])).toThrow(SessionKeyError);
    expect(() => SessionSealer.fromBase64([k1, Buffer.alloc(16).toString('base64')])).toThrow(/session key 2 must be 32 bytes/);
    expect(() => SessionSealer.fromBase64([])).toThrow(SessionKeyError);
  });
});

describe('two session stores sharing a key (two processes)', () => {
  it('a session created in one is served by the other with its owner and tool mode; DELETE revokes it there', () => {
    const key = SessionSealer.generateKey();
    const one = new SessionStore(10, 60_000);
    const two = new SessionStore(10, 60_000);
    one.useSealing(SessionSealer.fromBase64([key]));
    two.useSealing(SessionSealer.fromBase64([key]));
    const s = one.create('2025-06-18', { elicitation: {} }, { name: 'agent' }, { owner: 'vk:v1', toolMode: 'code' });
    expect(s?.id).toMatch(/^ts1\./);
    const id = s?.id ?? '';
    const rebuilt = two.get(id);
    expect(rebuilt).toBeDefined();
    expect(rebuilt).toMatchObject({ id, protocolVersion: '2025-06-18', owner: 'vk:v1', toolMode: 'code', initialized: true, clientCapabilities: { elicitation: {} } });
    expect(two.get(id)).toBe(rebuilt);
    // a session without a binding (a /ws connection's) keeps a random UUID
    expect(one.create('2025-06-18', {}, { name: 'ws' })?.id).toMatch(/^[0-9a-f-]{36}$/);
    // the idle sweep forgets it locally; the id still opens (it is rebuilt on its next use)
    expect(two.sweep(Date.now() + 120_000)).toBe(1);
    expect(two.get(id)).toBeDefined();
    // DELETE in one store refuses the id there; the relay tells the others (here by hand)
    one.delete(id);
    expect(one.get(id)).toBeUndefined();
    two.revoke(id);
    expect(two.get(id)).toBeUndefined();
    // without sealing, an unknown id is unknown
    expect(new SessionStore(10, 60_000).get(id)).toBeUndefined();
  });

  it('refuses to rebuild beyond max_sessions', () => {
    const key = SessionSealer.generateKey();
    const one = new SessionStore(10, 60_000);
    const two = new SessionStore(1, 60_000);
    one.useSealing(SessionSealer.fromBase64([key]));
    two.useSealing(SessionSealer.fromBase64([key]));
    const a = one.create('2025-06-18', {}, { name: 'a' }, { owner: undefined, toolMode: 'full' });
    const b = one.create('2025-06-18', {}, { name: 'b' }, { owner: undefined, toolMode: 'full' });
    expect(two.get(a?.id ?? '')).toBeDefined();
    expect(two.get(b?.id ?? '')).toBeUndefined();
  });
});
