/**
 * Collaborative workspaces on `/ws`: real `ws` clients (JSON text and MCPW binary)
 * holding real Yjs documents, against a real gateway; a restart on one data dir; the hub
 * in-process with fake peers for tenants and bounds; marble tests of the presence coalescing;
 * fast-check properties for convergence and for garbage updates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import * as Y from 'yjs';
import fc from 'fast-check';
import { TestScheduler } from 'rxjs/testing';
import { McpwMethod, McpwType, decodeFrame, encodeFrame } from '../src/codecs/mcpw.js';
import { GatewayError } from '../src/base/errors.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { openStore, type Store } from '../src/store/open.js';
import { EventBus, type GatewayEvent } from '../src/streams/events.js';
import type { WsPeer } from '../src/streams/ws-methods.js';
import type { RequestAuth } from '../src/base/access.js';
import { WorkspaceHub } from '../src/handlers/workspaces/hub.js';
import { SharedDocument, checkUpdate } from '../src/handlers/workspaces/document.js';
import { coalescePresence, type PresenceInput } from '../src/handlers/workspaces/presence.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

type Json = Record<string, unknown>;

const AUDIT_MS = 40;
const LOCK_TTL_MS = 600;

let gw: TestGateway;
const events: GatewayEvent[] = [];

beforeAll(async () => {
  gw = await startTestGateway([], {}, { workspaces: { lock_ttl_ms: LOCK_TTL_MS, cursor_audit_ms: AUDIT_MS } });
  gw.bus.events$.subscribe((e) => events.push(e));
});

afterAll(async () => {
  await gw?.stop();
});

// ─── a /ws client ───────────────────────────────────────────────────────────

/** A JSON-RPC error answer, as the client sees it. */
class RpcError extends Error {
  constructor(readonly rpc: { code: number; message: string; data?: Json }) {
    super(rpc.message);
  }
}

/** One `workspace.update` notification and when it arrived (`performance.now()`, ms). */
interface Update {
  readonly params: Json;
  readonly at: number;
}

/** A real `ws` client on `/ws` (subprotocol `mcp`) speaking JSON text frames, or MCPW frames when `binary`. */
class Peer {
  readonly updates: Update[] = [];
  readonly #pending = new Map<number, { resolve: (v: Json) => void; reject: (e: unknown) => void }>();
  readonly #listeners = new Set<(u: Update) => void>();
  readonly closed: Promise<number>;
  #nextId = 1;
  memberId = '';

  private constructor(
    readonly ws: WebSocket,
    readonly binary: boolean,
  ) {
    ws.on('message', (data, isBinary) => {
      const at = performance.now();
      let msg: Json;
      if (isBinary) {
        const buf = data as Buffer;
        const d = decodeFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
        if (!d.ok) throw new Error(`bad frame from the gateway: ${d.error.message}`);
        msg = d.frame.payload as Json;
      } else msg = JSON.parse(String(data)) as Json;
      if (msg['method'] === 'workspace.update') {
        const u = { params: msg['params'] as Json, at };
        this.updates.push(u);
        for (const l of this.#listeners) l(u);
        return;
      }
      const id = msg['id'];
      if (typeof id !== 'number') return;
      const waiter = this.#pending.get(id);
      this.#pending.delete(id);
      if (msg['error'] !== undefined) waiter?.reject(new RpcError(msg['error'] as RpcError['rpc']));
      else waiter?.resolve(msg['result'] as Json);
    });
    this.closed = new Promise((r) => ws.once('close', (code) => r(code)));
  }

  static async connect(binary = false): Promise<Peer> {
    const ws = new WebSocket(`${gwUrl().replace('http', 'ws')}/ws`, 'mcp');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Peer(ws, binary);
  }

  #send(message: Json, id: number | undefined): void {
    if (this.binary) {
      const type = id === undefined ? McpwType.Notification : McpwType.Request;
      this.ws.send(encodeFrame({ type, method: McpwMethod.Generic, requestId: BigInt(id ?? 0), payload: message }));
    } else this.ws.send(JSON.stringify(message));
  }

  request(method: string, params: Json): Promise<Json> {
    const id = this.#nextId++;
    const p = new Promise<Json>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#send({ jsonrpc: '2.0', id, method, params }, id);
    return p;
  }

  /** The JSON-RPC error a request is answered with (fails if it succeeds). */
  async error(method: string, params: Json): Promise<RpcError['rpc']> {
    try {
      await this.request(method, params);
    } catch (err) {
      if (err instanceof RpcError) return err.rpc;
      throw err;
    }
    throw new Error(`${method} succeeded`);
  }

  notify(method: string, params: Json): void {
    this.#send({ jsonrpc: '2.0', method, params }, undefined);
  }

  /** Resolves with the first update (already received or arriving) matching `pred`. */
  next(pred: (p: Json) => boolean, timeoutMs = 5000): Promise<Update> {
    const found = this.updates.find((u) => pred(u.params));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`no matching workspace.update within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (u: Update): void => {
        if (!pred(u.params)) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(u);
      };
      this.#listeners.add(listener);
    });
  }

  onUpdate(l: (u: Update) => void): void {
    this.#listeners.add(l);
  }

  of(type: string, workspaceId?: string): Json[] {
    return this.updates.map((u) => u.params).filter((p) => p['type'] === type && (workspaceId === undefined || p['workspace_id'] === workspaceId));
  }

  async join(workspaceId: string, extra: Json = {}): Promise<Json> {
    const r = await this.request('workspace.join', { workspace_id: workspaceId, ...extra });
    this.memberId = r['member_id'] as string;
    return r;
  }

  /** Bytes as this peer puts them on the wire. */
  wire(bytes: Uint8Array): Uint8Array | string {
    return this.binary ? bytes : b64(bytes);
  }

  async close(): Promise<void> {
    this.ws.close();
    await this.closed;
  }
}

let gwUrlValue = '';
function gwUrl(): string {
  return gwUrlValue || gw.url;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

/** Bytes from a wire value (base64 text or raw bytes). */
function bytesOf(v: unknown): Uint8Array {
  if (typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
  if (v instanceof Uint8Array) return v;
  throw new Error(`not bytes: ${JSON.stringify(v)}`);
}

const REMOTE = 'remote';

/** Global order of updates sent by editors (to know which ones a later editor must receive). */
let sendSeq = 0;

/**
 * A Yjs editor on a peer: local edits go out as `document.update`; remote `document.changed`
 * updates are applied at once, or queued until {@link deliver} when `deferred`.
 */
class Editor {
  readonly doc = new Y.Doc();
  readonly text = this.doc.getText('t');
  readonly acks: Promise<Json>[] = [];
  readonly inbox: Uint8Array[] = [];
  /** {@link sendSeq} of each update this editor sent. */
  readonly sentSeqs: number[] = [];
  /** {@link sendSeq} when this editor started listening. */
  readonly createdSeq = sendSeq;
  received = 0;

  constructor(
    readonly peer: Peer,
    readonly workspaceId: string,
    readonly documentId: string,
    readonly deferred = false,
  ) {
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === REMOTE) return;
      this.sentSeqs.push(++sendSeq);
      this.acks.push(peer.request('document.update', { workspace_id: workspaceId, document_id: documentId, changes: peer.wire(update) }));
    });
    peer.onUpdate((u) => {
      const p = u.params;
      if (p['type'] !== 'document.changed' || p['workspace_id'] !== workspaceId || p['document_id'] !== documentId) return;
      this.received++;
      const bytes = bytesOf(p['changes']);
      if (deferred) this.inbox.push(bytes);
      else Y.applyUpdate(this.doc, bytes, REMOTE);
    });
  }

  get sent(): number {
    return this.acks.length;
  }

  /** Applies up to `n` queued remote updates, oldest first. */
  deliver(n = Infinity): void {
    while (n-- > 0 && this.inbox.length > 0) Y.applyUpdate(this.doc, this.inbox.shift() as Uint8Array, REMOTE);
  }

  insert(pos: number, s: string): void {
    this.text.insert(Math.min(pos, this.text.length), s);
  }

  delete(pos: number, len: number): void {
    if (this.text.length === 0) return;
    const at = pos % this.text.length;
    this.text.delete(at, Math.min(len, this.text.length - at));
  }

  state(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc);
  }
}

/** Waits until every editor's updates were acknowledged and each received all the others sent, then applies its inbox. */
async function settle(editors: Editor[]): Promise<void> {
  await Promise.all(editors.flatMap((e) => e.acks));
  const expected = (e: Editor): number => editors.reduce((n, o) => (o === e ? n : n + o.sentSeqs.filter((q) => q > e.createdSeq).length), 0);
  await waitFor(() => editors.every((e) => e.received === expected(e)), 10_000);
  for (const e of editors) e.deliver();
}

/** The gateway's copy of a document, as a Y.Doc built from `document.get`. */
async function serverDoc(peer: Peer, workspaceId: string, documentId: string): Promise<Y.Doc> {
  const r = await peer.request('document.get', { workspace_id: workspaceId, document_id: documentId });
  const doc = new Y.Doc();
  Y.applyUpdate(doc, bytesOf(r['state']));
  return doc;
}

function expectConverged(editors: Editor[], server: Y.Doc): void {
  const [first, ...rest] = editors;
  if (!first) throw new Error('no editors');
  const state = first.state();
  for (const e of rest) {
    expect(e.text.toString()).toBe(first.text.toString());
    expect(Buffer.from(e.state()).equals(Buffer.from(state))).toBe(true);
  }
  expect(server.getText('t').toString()).toBe(first.text.toString());
  expect(Buffer.from(Y.encodeStateVector(server)).equals(Buffer.from(Y.encodeStateVector(first.doc)))).toBe(true);
  expect(Buffer.from(Y.encodeStateAsUpdate(server)).equals(Buffer.from(state))).toBe(true);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A deterministic pseudo-random sequence (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ─── membership ─────────────────────────────────────────────────────────────

describe('workspace membership', () => {
  it('join lists members and documents, tells the others; leave and disconnect tell them too', async () => {
    const a = await Peer.connect();
    const b = await Peer.connect();
    try {
      const ra = await a.join('team', { name: 'alice' });
      expect(ra).toMatchObject({ workspace_id: 'team', members: [{ member_id: a.memberId, name: 'alice' }], documents: [] });
      const rb = await b.join('team', { name: 'bob' });
      expect(rb['members']).toEqual([
        { member_id: a.memberId, name: 'alice' },
        { member_id: b.memberId, name: 'bob' },
      ]);
      const joined = await a.next((p) => p['type'] === 'member.joined');
      expect(joined.params).toEqual({ type: 'member.joined', workspace_id: 'team', member: { member_id: b.memberId, name: 'bob' } });
      // joining again only renames, and tells nobody
      await b.join('team', { name: 'bobby' });
      expect((await a.join('team'))['members']).toContainEqual({ member_id: b.memberId, name: 'bobby' });
      expect(a.of('member.joined')).toHaveLength(1);

      expect(await b.request('workspace.leave', { workspace_id: 'team' })).toEqual({ left: true, workspace_id: 'team' });
      expect((await a.next((p) => p['type'] === 'member.left')).params).toEqual({ type: 'member.left', workspace_id: 'team', member_id: b.memberId, reason: 'left' });
      expect((await b.error('workspace.leave', { workspace_id: 'team' })).data).toMatchObject({ code: 'NOT_FOUND' });
      expect((await b.error('document.get', { workspace_id: 'team', document_id: 'x' })).data).toMatchObject({ code: 'FORBIDDEN' });

      await b.join('team');
      await b.close();
      const left = await a.next((p) => p['type'] === 'member.left' && p['reason'] === 'disconnected');
      expect(left.params['member_id']).toBe(b.memberId);
      expect(events.filter((e) => e.event_type === 'WorkspaceMemberJoined' && e['workspace_id'] === 'team')).toHaveLength(3);
      expect(events.find((e) => e.event_type === 'WorkspaceMemberLeft' && e['reason'] === 'disconnected')).toMatchObject({ tenant_id: 'default', member_id: b.memberId });
    } finally {
      await a.close();
      if (b.ws.readyState === WebSocket.OPEN) await b.close();
    }
  });

  it('a peer may be in several workspaces; non-members get none of a workspace’s traffic', async () => {
    const a = await Peer.connect();
    const b = await Peer.connect();
    const outsider = await Peer.connect();
    try {
      await a.join('w-one');
      await a.join('w-two');
      await b.join('w-one');
      await outsider.join('w-elsewhere');
      const ed = new Editor(a, 'w-one', 'doc');
      ed.insert(0, 'secret');
      a.notify('cursor.position', { workspace_id: 'w-one', position: { line: 1 } });
      await b.next((p) => p['type'] === 'document.changed');
      await b.next((p) => p['type'] === 'cursor.position');
      // b is in w-one only: a's w-two traffic does not reach it
      const ed2 = new Editor(a, 'w-two', 'doc');
      ed2.insert(0, 'other');
      await Promise.all([...ed.acks, ...ed2.acks]);
      // a barrier instead of a sleep: a member of the outsider's own workspace moves its cursor
      // after all of the above; presence windows are per member, so a leak of a's cursor (sent
      // earlier) would reach the outsider before this one does
      const neighbour = await Peer.connect();
      try {
        await neighbour.join('w-elsewhere');
        neighbour.notify('cursor.position', { workspace_id: 'w-elsewhere', position: { line: 9 } });
        await outsider.next((p) => p['type'] === 'cursor.position' && p['member_id'] === neighbour.memberId);
        expect(outsider.updates.filter((u) => u.params['workspace_id'] !== 'w-elsewhere')).toEqual([]);
        expect(outsider.updates.map((u) => u.params['type'])).toEqual(['member.joined', 'cursor.position']);
      } finally {
        await neighbour.close();
      }
      expect(b.updates.every((u) => u.params['workspace_id'] === 'w-one')).toBe(true);
      const e = await outsider.error('document.update', { workspace_id: 'w-one', document_id: 'doc', changes: b64(Y.encodeStateAsUpdate(new Y.Doc())) });
      expect(e).toMatchObject({ code: -32008, data: { code: 'FORBIDDEN' } });
      expect(e.message).toMatch(/not a member of workspace "w-one"/i);
      expect((await outsider.error('document.get', { workspace_id: 'w-one', document_id: 'doc' })).data).toMatchObject({ code: 'FORBIDDEN' });
      expect((await outsider.error('document.lock', { workspace_id: 'w-one', document_id: 'doc' })).data).toMatchObject({ code: 'FORBIDDEN' });
    } finally {
      await Promise.all([a.close(), b.close(), outsider.close()]);
    }
  });
});

// ─── documents ──────────────────────────────────────────────────────────────

describe('collaborative documents (Yjs)', () => {
  it('two editors making concurrent edits converge byte for byte with each other and the gateway’s copy', async () => {
    const a = await Peer.connect();
    const b = await Peer.connect();
    try {
      await a.join('conv');
      await b.join('conv');
      const ea = new Editor(a, 'conv', 'doc');
      const eb = new Editor(b, 'conv', 'doc');
      const random = rng(42);
      // both type without waiting for acknowledgements or for each other's changes
      for (let i = 0; i < 150; i++) {
        for (const e of [ea, eb]) {
          const r = random();
          if (r < 0.75 || e.text.length === 0) e.insert(Math.floor(random() * (e.text.length + 1)), String.fromCharCode(97 + Math.floor(random() * 26)).repeat(1 + Math.floor(random() * 3)));
          else e.delete(Math.floor(random() * e.text.length), 1 + Math.floor(random() * 3));
        }
        if (i % 10 === 0) await sleep(0);
      }
      await settle([ea, eb]);
      expect(ea.text.length).toBeGreaterThan(100);
      expectConverged([ea, eb], await serverDoc(a, 'conv', 'doc'));
      const acks = await Promise.all(ea.acks);
      expect(acks.every((r) => r['ok'] === true && typeof r['size_bytes'] === 'number')).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a late joiner gets the state (join include_state, or document.get) and converges', async () => {
    const a = await Peer.connect();
    const late = await Peer.connect();
    const later = await Peer.connect();
    try {
      await a.join('late');
      const ea = new Editor(a, 'late', 'doc');
      for (let i = 0; i < 20; i++) ea.insert(i, `${i},`);
      await Promise.all(ea.acks);
      // via workspace.join's documents list
      const r = await late.join('late', { include_state: true });
      const docs = r['documents'] as Json[];
      expect(docs).toHaveLength(1);
      expect(docs[0]).toMatchObject({ document_id: 'doc' });
      expect(typeof docs[0]?.['size_bytes']).toBe('number');
      const el = new Editor(late, 'late', 'doc');
      Y.applyUpdate(el.doc, bytesOf(docs[0]?.['state']), REMOTE);
      expect(el.text.toString()).toBe(ea.text.toString());
      // via document.get (no state in the list without include_state)
      const r2 = await later.join('late');
      expect((r2['documents'] as Json[])[0]?.['state']).toBeUndefined();
      const el2 = new Editor(later, 'late', 'doc');
      Y.applyUpdate(el2.doc, bytesOf((await later.request('document.get', { workspace_id: 'late', document_id: 'doc' }))['state']), REMOTE);
      // everyone keeps editing; all converge
      ea.insert(0, 'A');
      el.insert(0, 'L');
      el2.insert(0, 'M');
      await settle([ea, el, el2]);
      expectConverged([ea, el, el2], await serverDoc(a, 'late', 'doc'));
      expect((await later.error('document.get', { workspace_id: 'late', document_id: 'nope' })).data).toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await Promise.all([a.close(), late.close(), later.close()]);
    }
  });

  it('an MCPW client sending raw-bytes updates interoperates with a JSON client', async () => {
    const json = await Peer.connect(false);
    const bin = await Peer.connect(true);
    try {
      await json.join('mixed');
      await bin.join('mixed');
      const ej = new Editor(json, 'mixed', 'doc');
      const eb = new Editor(bin, 'mixed', 'doc');
      ej.insert(0, 'from json ');
      eb.insert(0, 'from mcpw ');
      await settle([ej, eb]);
      // the binary peer got raw bytes, the JSON peer base64
      expect(bin.of('document.changed')[0]?.['changes']).toBeInstanceOf(Uint8Array);
      expect(typeof json.of('document.changed')[0]?.['changes']).toBe('string');
      expect(json.of('document.changed')[0]?.['from']).toBe(bin.memberId);
      const fromBin = await serverDoc(bin, 'mixed', 'doc');
      expectConverged([ej, eb], fromBin);
      // document.get answers the binary peer with bytes, the JSON peer with base64 (or as asked)
      expect((await bin.request('document.get', { workspace_id: 'mixed', document_id: 'doc' }))['state']).toBeInstanceOf(Uint8Array);
      expect(typeof (await bin.request('document.get', { workspace_id: 'mixed', document_id: 'doc', encoding: 'base64' }))['state']).toBe('string');
      expect(typeof (await json.request('document.get', { workspace_id: 'mixed', document_id: 'doc' }))['state']).toBe('string');
    } finally {
      await Promise.all([json.close(), bin.close()]);
    }
  });

  it('refuses bad messages with JSON-RPC errors and the connection stays usable', async () => {
    const a = await Peer.connect();
    const bin = await Peer.connect(true);
    try {
      await a.join('bad');
      await bin.join('bad');
      const base = { workspace_id: 'bad', document_id: 'doc' };
      const badB64 = await a.error('document.update', { ...base, changes: 'not base64!' });
      expect(badB64).toMatchObject({ code: -32602, data: { code: 'INVALID_PARAMS', field: 'changes' } });
      expect(badB64.message).toMatch(/base64/);
      const garbage = await a.error('document.update', { ...base, changes: b64(new Uint8Array([1, 2, 3, 250, 7, 7, 7])) });
      expect(garbage).toMatchObject({ code: -32602 });
      expect(garbage.message).toMatch(/not a Yjs update/);
      const rawGarbage = await bin.error('document.update', { ...base, changes: new Uint8Array([9, 9, 9, 9]) });
      expect(rawGarbage).toMatchObject({ code: -32602 });
      const missing = await a.error('document.update', { workspace_id: 'bad' });
      expect(missing.message).toMatch(/document_id/);
      expect(missing.message).toMatch(/changes/);
      expect((await a.error('document.update', { ...base, changes: 42 })).code).toBe(-32602);
      expect((await a.error('workspace.join', { workspace_id: '' })).code).toBe(-32602);
      expect((await a.error('workspace.join', { workspace_id: 'x\u0000y' })).code).toBe(-32602);
      expect((await a.error('workspace.join', { workspace: 'typo' })).message).toMatch(/workspace: unknown field/);
      expect((await a.error('cursor.position', { workspace_id: 'bad' })).message).toMatch(/position/);
      expect((await a.error('cursor.position', { workspace_id: 'bad', position: 'x'.repeat(5000) })).code).toBe(-32602);
      expect((await a.error('document.nope', base)).code).toBe(-32601);
      // MCP-style _meta is tolerated
      expect(await a.request('cursor.position', { workspace_id: 'bad', position: 1, _meta: { trace: 'x' } })).toEqual({ ok: true });
      // a bad update sent as a notification gets no answer and breaks nothing
      a.notify('document.update', { ...base, changes: '%%%' });
      // nothing was applied, nobody was told
      expect((await a.error('document.get', base)).data).toMatchObject({ code: 'NOT_FOUND' });
      // a round trip on bin's own connection: anything the server sent bin while handling a's
      // notification (handled before a's document.get was answered) arrives before this reply
      expect((await bin.error('document.nope', base)).code).toBe(-32601);
      expect(bin.of('document.changed')).toEqual([]);
      // still usable, both framings
      const ea = new Editor(a, 'bad', 'doc');
      const eb = new Editor(bin, 'bad', 'doc');
      ea.insert(0, 'fine');
      await settle([ea, eb]);
      expect(eb.text.toString()).toBe('fine');
      expect(a.ws.readyState).toBe(WebSocket.OPEN);
      expect(bin.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      await Promise.all([a.close(), bin.close()]);
    }
  });
});

// ─── locks ──────────────────────────────────────────────────────────────────

describe('document locks', () => {
  it('contention names the holder; the holder renews and unlocks; others are refused meanwhile', async () => {
    const a = await Peer.connect();
    const b = await Peer.connect();
    try {
      await a.join('locks', { name: 'alice' });
      await b.join('locks', { name: 'bob' });
      const ea = new Editor(a, 'locks', 'doc');
      const eb = new Editor(b, 'locks', 'doc');
      const base = { workspace_id: 'locks', document_id: 'doc' };
      const locked = await a.request('document.lock', base);
      expect(locked).toMatchObject({ locked: true, renewed: false, ttl_ms: LOCK_TTL_MS });
      expect(Date.parse(locked['expires_at'] as string)).toBeGreaterThan(Date.now());
      expect((await b.next((p) => p['type'] === 'document.locked')).params).toMatchObject({ document_id: 'doc', member_id: a.memberId, name: 'alice' });

      const contention = await b.error('document.lock', base);
      expect(contention).toMatchObject({ data: { code: 'CONFLICT', reason: 'locked', holder: { member_id: a.memberId, name: 'alice' } } });
      expect(contention.message).toContain(a.memberId);
      expect(contention.message).toContain('alice');
      expect(contention.message).toContain(locked['expires_at'] as string);

      // the holder edits; the other is refused with the holder named, its edit not applied
      ea.insert(0, 'mine');
      await Promise.all(ea.acks);
      eb.insert(0, 'theirs');
      await expect(eb.acks[0]).rejects.toThrow(/locked by member .*alice/);
      expect((await serverDoc(a, 'locks', 'doc')).getText('t').toString()).toBe('mine');

      const renewed = await a.request('document.lock', { ...base, ttl_ms: 10 * LOCK_TTL_MS });
      expect(renewed).toMatchObject({ renewed: true, ttl_ms: LOCK_TTL_MS });
      expect((await b.error('document.unlock', base)).message).toMatch(/only the holder/);
      expect(await a.request('document.unlock', base)).toMatchObject({ unlocked: true });
      expect((await b.next((p) => p['type'] === 'document.unlocked')).params).toMatchObject({ member_id: a.memberId, reason: 'released' });
      expect(await a.request('document.unlock', base)).toMatchObject({ unlocked: false });
      expect(await b.request('document.lock', base)).toMatchObject({ locked: true });
      expect(events.find((e) => e.event_type === 'DocumentLocked' && e['workspace_id'] === 'locks')).toMatchObject({ member_id: a.memberId, tenant_id: 'default' });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a lease expires after lock_ttl_ms and is released when its holder disconnects', async () => {
    const a = await Peer.connect();
    const b = await Peer.connect();
    try {
      await a.join('lease', { name: 'alice' });
      await b.join('lease', { name: 'bob' });
      const base = { workspace_id: 'lease', document_id: 'doc' };
      const lock = await a.request('document.lock', base);
      const expired = await a.next((p) => p['type'] === 'document.unlocked', 5 * LOCK_TTL_MS);
      expect(expired.params).toMatchObject({ member_id: a.memberId, reason: 'expired' });
      // not before the lease's own end (the exact timing is checked in virtual time in
      // workspace-membership.test.ts)
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(lock['expires_at'] as string));
      await b.next((p) => p['type'] === 'document.unlocked' && p['reason'] === 'expired');
      expect(events.find((e) => e.event_type === 'DocumentUnlocked' && e['workspace_id'] === 'lease')).toMatchObject({ reason: 'expired' });
      // a shorter ttl_ms is honoured
      const short = await b.request('document.lock', { ...base, ttl_ms: 50 });
      expect(short['ttl_ms']).toBe(50);
      await a.next((p) => p['type'] === 'document.unlocked' && p['member_id'] === b.memberId);

      // released on disconnect
      await b.request('document.lock', base);
      expect((await a.error('document.lock', base)).message).toContain('bob');
      await b.close();
      const released = await a.next((p) => p['type'] === 'document.unlocked' && p['reason'] === 'disconnected');
      expect(released.params['member_id']).toBe(b.memberId);
      expect(await a.request('document.lock', base)).toMatchObject({ locked: true });
    } finally {
      await a.close();
      if (b.ws.readyState === WebSocket.OPEN) await b.close();
    }
  });
});

// ─── presence ───────────────────────────────────────────────────────────────

describe('cursor and selection presence', () => {
  it('coalesces a fast typist’s cursor updates: far fewer arrive, the last one is the final position', async () => {
    const a = await Peer.connect();
    const b = await Peer.connect();
    try {
      await a.join('cursors');
      await b.join('cursors');
      for (let i = 0; i < 100; i++) {
        a.notify('cursor.position', { workspace_id: 'cursors', document_id: 'doc', position: { offset: i } });
        if (i % 10 === 9) await sleep(10);
      }
      a.notify('selection.change', { workspace_id: 'cursors', selection: { anchor: 1, head: 5 } });
      await b.next((p) => p['type'] === 'cursor.position' && (p['position'] as Json)['offset'] === 99);
      await b.next((p) => p['type'] === 'selection.change');
      const cursors = b.of('cursor.position');
      expect(cursors.length).toBeGreaterThan(0);
      expect(cursors.length).toBeLessThan(20);
      expect(cursors.at(-1)).toEqual({ type: 'cursor.position', workspace_id: 'cursors', member_id: a.memberId, document_id: 'doc', position: { offset: 99 } });
      // the selection is coalesced separately: not swallowed by the cursor stream
      expect(b.of('selection.change')).toEqual([{ type: 'selection.change', workspace_id: 'cursors', member_id: a.memberId, selection: { anchor: 1, head: 5 } }]);
      // never echoed to the sender; as a request it is answered
      expect(a.of('cursor.position')).toEqual([]);
      expect(await a.request('cursor.position', { workspace_id: 'cursors', position: 3 })).toEqual({ ok: true });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a member that stops reading does not slow the others', async () => {
    const a = await Peer.connect();
    const b = await Peer.connect();
    const slow = await Peer.connect();
    try {
      await a.join('slow');
      await b.join('slow');
      await slow.join('slow');
      const source = new Y.Doc();
      const text = source.getText('t');
      let nextUpdate: Uint8Array | undefined;
      source.on('update', (u: Uint8Array) => {
        nextUpdate = u;
      });
      let sent = 0;
      /** Makes an edit on the source document; returns its update as base64. */
      const change = (f: () => void): string => {
        f();
        sent++;
        return b64(nextUpdate as Uint8Array);
      };
      const send = (changes: string): Promise<Json> => a.request('document.update', { workspace_id: 'slow', document_id: 'doc', changes });
      /** `n` small edits, each followed by a cursor move; resolves when b has received every edit. */
      const rounds = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const changes = change(() => text.insert(0, `m${i}`));
          const got = b.next((p) => p['changes'] === changes);
          await send(changes);
          a.notify('cursor.position', { workspace_id: 'slow', position: i });
          await got;
        }
      };
      await rounds(30);

      // the slow member stops reading; big changes fill its buffers until presence skips it
      slow.ws.pause();
      const big = 'x'.repeat(256 * 1024);
      let pushed = 0;
      while (!gw.logs.some((l) => l.includes('presence skipped for a slow member') && l.includes(`"${slow.memberId}"`))) {
        if (pushed > 14 * 1024 * 1024) throw new Error('the slow member was never skipped');
        await send(change(() => text.insert(0, big)));
        await send(change(() => text.delete(0, big.length)));
        pushed += big.length;
        // once b has this cursor move, the same presence window has been sent to (or skipped for) every member
        const marker = `fill-${pushed}`;
        a.notify('cursor.position', { workspace_id: 'slow', position: marker });
        await b.next((p) => p['type'] === 'cursor.position' && p['position'] === marker);
      }
      // b gets every edit and cursor move while the slow member reads nothing: its delivery does
      // not wait on the stalled socket (a broadcast that did would never finish these rounds)
      const slowSeen = slow.updates.length;
      await rounds(30);
      const bCursors = b.of('cursor.position').length;
      a.notify('cursor.position', { workspace_id: 'slow', position: 'final' });
      await b.next((p) => p['position'] === 'final');
      expect(b.of('cursor.position').length).toBeGreaterThan(bCursors);
      expect(slow.updates.length).toBe(slowSeen);

      // once it reads again it gets every document change (none are skipped) and converges
      slow.ws.resume();
      await waitFor(() => slow.of('document.changed').length === sent, 20_000);
      const replica = new Y.Doc();
      for (const c of slow.of('document.changed')) Y.applyUpdate(replica, bytesOf(c['changes']));
      expect(replica.getText('t').toString()).toBe(text.toString());
      expect(slow.of('cursor.position').length).toBeLessThan(b.of('cursor.position').length);
      expect(slow.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      await Promise.all([a.close(), b.close(), slow.close()]);
    }
  });
});

// ─── fast-check: random interleavings converge ──────────────────────────────

type Op =
  | { readonly kind: 'insert'; readonly who: number; readonly pos: number; readonly text: string }
  | { readonly kind: 'delete'; readonly who: number; readonly pos: number; readonly len: number }
  | { readonly kind: 'deliver'; readonly who: number; readonly n: number }
  | { readonly kind: 'yield' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('insert' as const), who: fc.integer({ min: 0, max: 1 }), pos: fc.nat(50), text: fc.string({ minLength: 1, maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), who: fc.integer({ min: 0, max: 1 }), pos: fc.nat(50), len: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('deliver' as const), who: fc.integer({ min: 0, max: 1 }), n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'yield' as const }) },
);

describe('properties', () => {
  it('random interleavings of concurrent edits from two clients converge (real gateway)', async () => {
    const a = await Peer.connect();
    const b = await Peer.connect(true);
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), async (ops) => {
          const ws = `prop-${run++}`;
          await a.join(ws);
          await b.join(ws);
          const editors = [new Editor(a, ws, 'doc', true), new Editor(b, ws, 'doc', true)] as const;
          for (const op of ops) {
            if (op.kind === 'yield') await sleep(0);
            else if (op.kind === 'insert') editors[op.who]?.insert(op.pos, op.text);
            else if (op.kind === 'delete') editors[op.who]?.delete(op.pos, op.len);
            else editors[op.who]?.deliver(op.n);
          }
          await settle([...editors]);
          if (editors[0].sent + editors[1].sent > 0) expectConverged([...editors], await serverDoc(a, ws, 'doc'));
          else expect(editors[0].text.toString()).toBe('');
          await a.request('workspace.leave', { workspace_id: ws });
          await b.request('workspace.leave', { workspace_id: ws });
        }),
        { numRuns: 25 },
      );
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('arbitrary bytes as an update are refused with INVALID_PARAMS or applied, never crash (in-process)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const doc = new SharedDocument('d');
        try {
          doc.apply(bytes, 1024 * 1024);
        } catch (err) {
          expect(err).toBeInstanceOf(GatewayError);
          expect((err as GatewayError).code).toBe('INVALID_PARAMS');
        }
        // still a usable document
        const ydoc = new Y.Doc();
        ydoc.getText('t').insert(0, 'ok');
        doc.apply(Y.encodeStateAsUpdate(ydoc), 1024 * 1024);
        const copy = new Y.Doc();
        Y.applyUpdate(copy, doc.state());
        expect(copy.getText('t').toString()).toBe('ok');
      }),
      { numRuns: 1000 },
    );
  });

  it('corrupting a valid update is refused or applied, never crashes (in-process)', () => {
    const ydoc = new Y.Doc();
    ydoc.getText('t').insert(0, 'hello world');
    ydoc.getMap('m').set('k', [1, 2, 3]);
    const valid = Y.encodeStateAsUpdate(ydoc);
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const bytes = Uint8Array.from(valid);
        bytes[at] = value;
        try {
          checkUpdate(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(GatewayError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

// ─── presence coalescing, marbles ───────────────────────────────────────────

describe('coalescePresence (marbles)', () => {
  const input = (key: string, v: number): PresenceInput => ({ key, workspaceKey: 'w', memberId: key, kind: 'cursor.position', params: { v } });

  it('emits the latest value per key at most once per window, keys independently', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable }) => {
      const values = { a: input('a', 1), b: input('a', 2), c: input('a', 3), x: input('x', 1), d: input('a', 4) };
      const source = cold<PresenceInput>('ab-x-c---------d', values);
      // auditTime(5): a's window opens at 0 and ends at 5 with c; x's opens at 3, ends at 8; d's window ends at 20
      expectObservable(source.pipe(coalescePresence(5, 100)), '^ 40ms !').toBe('-----c--x-----------d', { c: values.c, x: values.x, d: values.d });
    });
  });

  it('a group ends after the idle time and a later input starts a new one', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable }) => {
      const values = { a: input('a', 1), b: input('a', 2) };
      const source = cold<PresenceInput>('a 30ms b|', values);
      expectObservable(source.pipe(coalescePresence(5, 10))).toBe('-----a 30ms (b|)', values);
    });
  });
});

// ─── persistence across a restart ───────────────────────────────────────────

describe('persistence', () => {
  it('keeps documents across a gateway restart on the same data dir', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-ws-'));
    const logs: string[] = [];
    const start = (): Promise<Gateway> =>
      startGateway(resolveConfig({ server: { host: '127.0.0.1', port: 0 }, data_dir: dataDir, mcp_clients: [], workspaces: { cursor_audit_ms: AUDIT_MS } }, 'test'), {
        log: createLogger('debug', {}, (l) => logs.push(l)),
      });
    let first: Gateway | undefined = await start();
    let second: Gateway | undefined;
    try {
      gwUrlValue = first.url;
      const a = await Peer.connect();
      await a.join('persist');
      const ea = new Editor(a, 'persist', 'doc');
      const eb = new Editor(a, 'persist', 'other');
      for (let i = 0; i < 50; i++) ea.insert(i, 'x');
      eb.insert(0, 'second document');
      await Promise.all([...ea.acks, ...eb.acks]);
      // written within the durability window (100 ms + the batch window), before any shutdown
      const sub = first.store.sublevel<{ state: Uint8Array; updated_at: number }>('documents');
      const storedText = async (): Promise<string> => {
        const v = await sub.get('default\u0000persist\u0000doc');
        const d = new Y.Doc();
        if (v) Y.applyUpdate(d, new Uint8Array(v.state));
        return d.getText('t').toString();
      };
      // each write of a document publishes DocumentChanged once it is committed: wait for the one
      // that carries the whole text (events, not a polling loop)
      const persisted = new Promise<void>((resolve, reject) => {
        const check = (): void => {
          storedText().then((text) => {
            if (text !== ea.text.toString()) return;
            sub$.unsubscribe();
            resolve();
          }, reject);
        };
        const sub$ = (first as Gateway).bus.events$.subscribe((e) => {
          if (e.event_type === 'DocumentChanged' && e['workspace_id'] === 'persist' && e['document_id'] === 'doc') check();
        });
        check();
      });
      await persisted;
      expect(await storedText()).toBe(ea.text.toString());
      ea.insert(0, 'last words');
      await Promise.all(ea.acks);
      const expected = ea.text.toString();
      await a.close();
      await first.close();
      first = undefined;

      second = await start();
      gwUrlValue = second.url;
      const b = await Peer.connect();
      const r = await b.join('persist', { include_state: true });
      const docs = r['documents'] as Json[];
      expect(docs.map((d) => d['document_id'])).toEqual(['doc', 'other']);
      const restored = new Y.Doc();
      Y.applyUpdate(restored, bytesOf(docs[0]?.['state']));
      expect(restored.getText('t').toString()).toBe(expected);
      expect(Buffer.from(Y.encodeStateVector(restored)).equals(Buffer.from(Y.encodeStateVector(ea.doc)))).toBe(true);
      // edits go on from the restored state
      const eb2 = new Editor(b, 'persist', 'doc');
      Y.applyUpdate(eb2.doc, bytesOf(docs[0]?.['state']), REMOTE);
      eb2.insert(0, '!');
      await Promise.all(eb2.acks);
      expect((await serverDoc(b, 'persist', 'doc')).getText('t').toString()).toBe(`!${expected}`);
      await b.close();
    } finally {
      gwUrlValue = '';
      await first?.close();
      await second?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

// ─── the hub in-process: tenants and bounds ─────────────────────────────────

interface FakePeer extends WsPeer {
  readonly sent: Json[];
  buffered: number;
}

function fakePeer(id: string, tenantId = 'default'): FakePeer {
  const sent: Json[] = [];
  const auth = { principal: { kind: 'api_key', id: `key:${id}`, tenantId, role: 'user', name: `user ${id}` }, filter: undefined } as unknown as RequestAuth;
  return {
    id,
    auth,
    binary: false,
    lastMessageAt: Date.now(),
    sent,
    buffered: 0,
    notify(_method, params) {
      sent.push(params);
      return true;
    },
    bufferedAmount() {
      return this.buffered;
    },
    closed: false,
  };
}

describe('WorkspaceHub in-process', () => {
  let store: Store;
  let dir: string;
  let hub: WorkspaceHub;
  const bus = new EventBus();
  const hubEvents: GatewayEvent[] = [];
  bus.events$.subscribe((e) => hubEvents.push(e));
  const log = createLogger('silent');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tributary-hub-'));
    store = await openStore(dir, log);
    hub = new WorkspaceHub({ store, bus, log, config: { lock_ttl_ms: 1000, cursor_audit_ms: 10, max_document_bytes: 4096, max_members: 2 }, presenceSkipBytes: 1000, maxDocumentsPerWorkspace: 2, maxWorkspacesPerPeer: 3 });
    await hub.init();
  });

  afterAll(async () => {
    await hub?.dispose();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const update = (s: string): string => {
    const d = new Y.Doc();
    d.getText('t').insert(0, s);
    return b64(Y.encodeStateAsUpdate(d));
  };

  it('keeps tenants apart: one workspace id, two tenants, two workspaces', async () => {
    const t1 = fakePeer('p1', 'acme');
    const t2 = fakePeer('p2', 'globex');
    await hub.call(t1, 'workspace.join', { workspace_id: 'shared' }, false);
    const r = (await hub.call(t2, 'workspace.join', { workspace_id: 'shared' }, false)) as Json;
    expect(r['members']).toEqual([{ member_id: 'p2', name: 'user p2' }]);
    await hub.call(t1, 'document.update', { workspace_id: 'shared', document_id: 'doc', changes: update('acme only') }, false);
    expect(t2.sent).toEqual([]);
    await expect(hub.call(t2, 'document.get', { workspace_id: 'shared', document_id: 'doc' }, false)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    hub.closed(t1);
    hub.closed(t2);
  });

  it('bounds members, document size and presence to slow peers', async () => {
    const [p, q, r] = [fakePeer('a'), fakePeer('b'), fakePeer('c')];
    await hub.call(p, 'workspace.join', { workspace_id: 'small' }, false);
    await hub.call(q, 'workspace.join', { workspace_id: 'small' }, false);
    await expect(hub.call(r, 'workspace.join', { workspace_id: 'small' }, false)).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/full: 2 members/) });

    await hub.call(p, 'document.update', { workspace_id: 'small', document_id: 'doc', changes: update('a'.repeat(1000)) }, false);
    await expect(hub.call(p, 'document.update', { workspace_id: 'small', document_id: 'doc', changes: update('b'.repeat(4000)) }, false)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'document_too_large', max_document_bytes: 4096 },
    });
    const got = (await hub.call(p, 'document.get', { workspace_id: 'small', document_id: 'doc' }, false)) as Json;
    expect(got['size_bytes']).toBeLessThan(1100);
    await hub.call(p, 'document.update', { workspace_id: 'small', document_id: 'doc2', changes: update('x') }, false);
    await expect(hub.call(p, 'document.update', { workspace_id: 'small', document_id: 'doc3', changes: update('x') }, false)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'too_many_documents' },
    });
    await hub.call(r, 'workspace.join', { workspace_id: 'r1' }, false);
    await hub.call(r, 'workspace.join', { workspace_id: 'r2' }, false);
    await hub.call(r, 'workspace.join', { workspace_id: 'r3' }, false);
    await expect(hub.call(r, 'workspace.join', { workspace_id: 'r4' }, false)).rejects.toMatchObject({ code: 'CONFLICT', details: { reason: 'too_many_workspaces' } });
    hub.closed(r);

    q.buffered = 5000;
    const skipped = hub.counters.presenceSkipped;
    await hub.call(p, 'cursor.position', { workspace_id: 'small', position: 1 }, true);
    // the presence window closes: q, over the skip threshold, is counted as skipped
    await waitFor(() => hub.counters.presenceSkipped > skipped, 2000);
    expect(q.sent.filter((m) => m['type'] === 'cursor.position')).toEqual([]);
    q.buffered = 0;
    await hub.call(p, 'cursor.position', { workspace_id: 'small', position: 2 }, true);
    await waitFor(() => q.sent.some((m) => m['type'] === 'cursor.position'), 2000);
    expect(q.sent.filter((m) => m['type'] === 'cursor.position').map((m) => m['position'])).toEqual([2]);
    hub.closed(p);
    hub.closed(q);
  });

  it('coalesces document writes and flushes them on dispose', async () => {
    const p = fakePeer('writer');
    await hub.call(p, 'workspace.join', { workspace_id: 'writes' }, false);
    const ydoc = new Y.Doc();
    const updates: Uint8Array[] = [];
    ydoc.on('update', (u: Uint8Array) => updates.push(u));
    for (let i = 0; i < 50; i++) ydoc.getText('t').insert(0, 'k');
    const before = hub.counters.documentWrites;
    for (const u of updates) await hub.call(p, 'document.update', { workspace_id: 'writes', document_id: 'doc', changes: b64(u) }, false);
    await waitFor(() => hub.counters.documentWrites > before, 2000);
    // every update is durable: no write of these 50 updates is still to come
    const storedText = async (): Promise<string | undefined> => {
      const v = await store.sublevel<{ state: Uint8Array }>('documents').get('default\u0000writes\u0000doc');
      if (v === undefined) return undefined;
      const d = new Y.Doc();
      Y.applyUpdate(d, new Uint8Array(v.state));
      return d.getText('t').toString();
    };
    for (let i = 0; (await storedText()) !== ydoc.getText('t').toString(); i++) {
      if (i > 500) throw new Error('the 50 updates never reached the store');
      await new Promise((r) => setTimeout(r, 10));
    }
    // 50 updates within a few ms: one or two writes, not fifty
    expect(hub.counters.documentWrites - before).toBeLessThanOrEqual(3);
    expect(hubEvents.some((e) => e.event_type === 'DocumentChanged' && e['document_id'] === 'doc' && (e['updates'] as number) > 1)).toBe(true);
    // one more update, then dispose before the interval: it is written anyway
    ydoc.getText('t').insert(0, 'Z');
    await hub.call(p, 'document.update', { workspace_id: 'writes', document_id: 'doc', changes: b64(updates.at(-1) as Uint8Array) }, false);
    await hub.dispose();
    const stored = await store.sublevel<{ state: Uint8Array }>('documents').get('default\u0000writes\u0000doc');
    const d = new Y.Doc();
    Y.applyUpdate(d, new Uint8Array((stored as { state: Uint8Array }).state));
    expect(d.getText('t').toString()).toBe(ydoc.getText('t').toString());
    await expect(hub.call(p, 'workspace.join', { workspace_id: 'writes' }, false)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});
