/**
 * The workspace membership and lease reducer (`Membership.step`) in virtual time with RxJS
 * marbles. A lease's end is an `expireAt` effect; here the TestScheduler plays the hub's timer (a
 * `timer` to `expiresAt` that sends `expire` back), so "a lease expires after ttl_ms unless renewed"
 * is checked at exact virtual times, without sockets or sleeps.
 */
import { describe, expect, it } from 'vitest';
import { TestScheduler } from 'rxjs/testing';
import { Subject, filter, map, merge, mergeMap, takeUntil, timer, type Observable } from 'rxjs';
import { Membership, type MembershipCommand, type MembershipEffect, type MembershipStep } from '../src/handlers/workspaces/membership.js';
import type { WsPeer } from '../src/streams/ws-methods.js';

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

function peer(id: string): WsPeer {
  return { id, auth: undefined, binary: false, notify: () => true, bufferedAmount: () => 0, lastMessageAt: 0, closed: false };
}

const ROOM = { key: 'default\u0000team', tenant: 'default', id: 'team' };

/**
 * One letter per effect: `j`/`l` member.joined/left told, `k`/`u` document.locked/unlocked told,
 * `J`/`L`/`K`/`U` the matching bus events, `t` expireAt (a timer set), `c` cancelExpiry, `e` empty;
 * then the reply: `=` ok, `!` refused.
 */
function letters(step: MembershipStep): string {
  const effect = (e: MembershipEffect): string => {
    switch (e.kind) {
      case 'notify':
        return ({ 'member.joined': 'j', 'member.left': 'l', 'document.locked': 'k', 'document.unlocked': 'u', 'document.changed': 'd' } as Record<string, string>)[e.params['type'] as string] ?? '?';
      case 'publish':
        return { WorkspaceMemberJoined: 'J', WorkspaceMemberLeft: 'L', DocumentLocked: 'K', DocumentUnlocked: 'U' }[e.event.event_type];
      case 'expireAt':
        return 't';
      case 'cancelExpiry':
        return 'c';
      case 'empty':
        return 'e';
    }
  };
  return step.effects.map(effect).join('') + (step.reply.ok ? '=' : '!');
}

/**
 * Runs the commands through `state` at the virtual `now`, and plays the hub's lease timers as
 * the hub does: an `expireAt` effect (re)places the document's timer, which sends `expire` at
 * `expiresAt`; `cancelExpiry` stops it.
 */
function run(ts: TestScheduler, state: Membership, commands: Observable<(now: number) => MembershipCommand>): Observable<string> {
  const expiries = new Subject<{ readonly id: string; readonly command: MembershipCommand & { readonly type: 'expire' } }>();
  const cancels = new Subject<string>();
  const fromTimers = expiries.pipe(
    mergeMap(({ id, command }) =>
      timer(command.expiresAt - ts.now()).pipe(
        map(() => ({ ...command, now: ts.now() })),
        takeUntil(cancels.pipe(filter((c) => c === id))),
      ),
    ),
  );
  return merge(commands.pipe(map((make) => make(ts.now()))), fromTimers).pipe(
    map((command) => {
      const step = state.step(command);
      for (const e of step.effects) {
        if (e.kind !== 'expireAt' && e.kind !== 'cancelExpiry') continue;
        const id = `${e.key}/${e.documentId}`;
        cancels.next(id);
        if (e.kind === 'expireAt') expiries.next({ id, command: { type: 'expire', key: e.key, documentId: e.documentId, expiresAt: e.expiresAt, now: 0 } });
      }
      return letters(step);
    }),
  );
}

/** A `join` of `who` at the virtual time it is applied. */
const join =
  (who: WsPeer, name?: string) =>
  (now: number): MembershipCommand => ({ type: 'join', room: ROOM, peer: who, name, now });

/** A `lock` (or renewal) of `doc` by `who` for `ttlMs`. */
const lock =
  (who: WsPeer, ttlMs: number) =>
  (now: number): MembershipCommand => ({ type: 'lock', key: ROOM.key, memberId: who.id, documentId: 'doc', ttlMs, now });

describe('workspace membership reducer (marbles)', () => {
  it('a lease expires ttl_ms after its last renewal, told to everyone; a renewal is not announced', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const state = new Membership({ maxMembers: 8, maxWorkspacesPerPeer: 4 });
      const a = peer('a');
      const b = peer('b');
      const commands = hot('a b 8ms l 9ms l', { a: join(a, 'alice'), b: join(b, 'bob'), l: lock(a, 50) });
      // joins at 0 and 1 (the second one told to alice); lock at 10 (told to bob, timer for 60);
      // renewed at 20 (the timer moves to 70, not announced); nothing at 60; at 70 the lease
      // expires and both members are told
      expectObservable(run(ts, state, commands)).toBe('a b 8ms c 9ms d 49ms f', { a: 'J=', b: 'jJ=', c: 'tkK=', d: 't=', f: 'uU=' });
      ts.schedule(() => expect(state.holder(ROOM.key, 'doc')?.expiresAt).toBe(70), 69);
      ts.schedule(() => expect(state.holder(ROOM.key, 'doc')).toBeUndefined(), 71);
    });
  });

  it('leaving releases the member’s leases (told to the others) and cancels their timers; the last one out empties the workspace', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const state = new Membership({ maxMembers: 8, maxWorkspacesPerPeer: 4 });
      const a = peer('a');
      const b = peer('b');
      const commands = hot('abcdef', {
        a: join(a),
        b: join(b),
        c: lock(a, 1000),
        d: lock(b, 1000),
        e: (now: number): MembershipCommand => ({ type: 'leave', key: ROOM.key, memberId: a.id, reason: 'disconnected', now }),
        f: (now: number): MembershipCommand => ({ type: 'leave', key: ROOM.key, memberId: b.id, reason: 'left', now }),
      });
      // bob's lock is refused while alice holds it; alice's disconnect ends her lease (cancel, told
      // to bob, event) and tells bob she left; bob leaving last empties the workspace
      expectObservable(run(ts, state, commands)).toBe('abcdef', { a: 'J=', b: 'jJ=', c: 'tkK=', d: '!', e: 'cuUlL=', f: 'Le=' });
    });
  });

  it('refuses a full workspace and a peer over its workspace limit, changing nothing', () => {
    const state = new Membership({ maxMembers: 1, maxWorkspacesPerPeer: 1 });
    const a = peer('a');
    const b = peer('b');
    expect(letters(state.step({ type: 'join', room: ROOM, peer: a, name: undefined, now: 0 }))).toBe('J=');
    const full = state.step({ type: 'join', room: ROOM, peer: b, name: undefined, now: 1 });
    expect(full.reply.ok ? undefined : (full.reply.error as { details?: unknown }).details).toMatchObject({ reason: 'workspace_full' });
    const other = { key: 'default\u0000other', tenant: 'default', id: 'other' };
    const over = state.step({ type: 'join', room: other, peer: a, name: undefined, now: 2 });
    expect(over.reply.ok ? undefined : (over.reply.error as { details?: unknown }).details).toMatchObject({ reason: 'too_many_workspaces' });
    expect(full.effects).toEqual([]);
    expect(over.effects).toEqual([]);
    expect(state.memberCount).toBe(1);
    expect(state.roomsOf('a')).toEqual([ROOM.key]);
    // a timer of a lease that was renewed since finds the newer lease and changes nothing
    state.step({ type: 'lock', key: ROOM.key, memberId: 'a', documentId: 'doc', ttlMs: 10, now: 3 });
    expect(letters(state.step({ type: 'lock', key: ROOM.key, memberId: 'a', documentId: 'doc', ttlMs: 10, now: 4 }))).toBe('t=');
    expect(letters(state.step({ type: 'expire', key: ROOM.key, documentId: 'doc', expiresAt: 13, now: 13 }))).toBe('=');
    expect(state.holder(ROOM.key, 'doc')?.expiresAt).toBe(14);
    expect(letters(state.step({ type: 'expire', key: ROOM.key, documentId: 'doc', expiresAt: 14, now: 14 }))).toBe('uU=');
    // joining again only renames, and tells nobody
    expect(letters(state.step({ type: 'join', room: ROOM, peer: a, name: 'alice', now: 3 }))).toBe('=');
    expect(state.members(ROOM.key).map((m) => m.name)).toEqual(['alice']);
  });

  it('a document change is told to every other member in its form, and refused while another member holds the lease', () => {
    const state = new Membership({ maxMembers: 8, maxWorkspacesPerPeer: 4 });
    const a = peer('a');
    const b = peer('b');
    const c = { ...peer('c'), binary: true };
    for (const [who, now] of [[a, 0], [b, 1], [c, 2]] as const) state.step({ type: 'join', room: ROOM, peer: who, name: undefined, now });
    const bytes = new Uint8Array([1, 2, 3]);
    const change = (memberId: string, now: number): MembershipCommand => ({ type: 'changed', key: ROOM.key, workspaceId: 'team', memberId, documentId: 'doc', changes: bytes, base64: undefined, now });
    const may = (memberId: string, now: number): MembershipCommand => ({ type: 'mayChange', key: ROOM.key, workspaceId: 'team', memberId, documentId: 'doc', now });
    // from a: b (JSON) gets base64, c (MCPW) the raw bytes, a nothing
    const told = state.step(change('a', 3));
    expect(letters(told)).toBe('dd=');
    expect(told.reply).toEqual({ ok: true, value: 2 });
    expect(told.effects).toEqual([
      { kind: 'notify', peers: [b], params: { type: 'document.changed', workspace_id: 'team', document_id: 'doc', changes: 'AQID', from: 'a' } },
      { kind: 'notify', peers: [c], params: { type: 'document.changed', workspace_id: 'team', document_id: 'doc', changes: bytes, from: 'a' } },
    ]);
    // b holds the lease: a may not change the document, b may; refusing changes nothing
    state.step({ type: 'lock', key: ROOM.key, memberId: 'b', documentId: 'doc', ttlMs: 100, now: 4 });
    const refused = state.step(may('a', 5));
    expect(refused.reply.ok ? undefined : (refused.reply.error as { details?: unknown }).details).toMatchObject({ reason: 'locked', holder: { member_id: 'b' } });
    expect(refused.effects).toEqual([]);
    expect(letters(state.step(may('b', 6)))).toBe('=');
  });
});
