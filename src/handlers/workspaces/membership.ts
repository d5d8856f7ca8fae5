/**
 * Who is in which workspace and who holds which document lock, as a reducer:
 * `step(command) → {effects, reply}` (developer-mesh "Collaboration Messages",
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md:
 * `workspace.join`/`leave`, `document.lock`/`unlock`, "exclusive lock with a lease (TTL),
 * released on disconnect"). No I/O, no clock (every command carries `now`, epoch ms), no timers:
 * a lease's end is an `expireAt` effect, and the hub's timer sends the `expire` command back. The
 * hub (`hub.ts`) carries out the effects — notifications to members, bus events, the expiry
 * timers, unloading an empty workspace — and keeps the documents themselves (Yjs state,
 * persistence, presence), which are not part of this state.
 *
 * Rules: a peer is member `peer.id`, in at most `maxWorkspacesPerPeer` workspaces, a workspace
 * holds at most `maxMembers`; joining again only renames. A lease lasts `ttlMs` from the lock and
 * is renewed by locking again; it ends by unlock (`released`, told to all but the holder), leave
 * (`left`), disconnect (`disconnected`) or expiry (`expired`, told to everyone). Leases live in
 * memory only. While a lease is held, only its holder may change the document (`mayChange`); an
 * applied change is told to every other member (`changed`).
 */
import { GatewayError } from '../../base/errors.js';
import type { OrchestrationEventType } from '../../streams/events.js';
import type { WsPeer } from '../../streams/ws-methods.js';
import { toBase64 } from './bytes.js';

/** A held lock. */
export interface Lease {
  readonly documentId: string;
  /** The holder's member id (its `/ws` peer id). */
  readonly memberId: string;
  /** The holder's display name. */
  readonly name: string;
  /** When the lease ends unless renewed, ms since the epoch. */
  readonly expiresAt: number;
}

/** A member of a workspace: the peer and its display name. */
export interface Member {
  readonly id: string;
  readonly peer: WsPeer;
  readonly name: string;
}

/** A workspace as this state knows it. `key` is `<tenant>\0<workspace_id>`. */
export interface Room {
  readonly key: string;
  readonly tenant: string;
  readonly id: string;
}

/** Why a lease ended (field `reason` of `document.unlocked` and `DocumentUnlocked`). */
export type UnlockReason = 'released' | 'left' | 'disconnected' | 'expired';

/** The bus events of membership and locks. */
export type MembershipEventType = Extract<OrchestrationEventType, 'WorkspaceMemberJoined' | 'WorkspaceMemberLeft' | 'DocumentLocked' | 'DocumentUnlocked'>;

/** What the reducer reacts to. */
export type MembershipCommand =
  /** `peer` joins `room` (or renames itself there). Reply: `{member, renamed}`. */
  | { readonly type: 'join'; readonly room: Room; readonly peer: WsPeer; readonly name: string | undefined; readonly now: number }
  /** `memberId` leaves `key` (asked, or its connection closed). Reply: whether it was a member. */
  | { readonly type: 'leave'; readonly key: string; readonly memberId: string; readonly reason: 'left' | 'disconnected'; readonly now: number }
  /** `memberId` locks (or renews) `documentId` for `ttlMs`. Reply: `{lease, renewed}`. */
  | { readonly type: 'lock'; readonly key: string; readonly memberId: string; readonly documentId: string; readonly ttlMs: number; readonly now: number }
  /** `memberId` unlocks `documentId`. Reply: whether a lease was released. */
  | { readonly type: 'unlock'; readonly key: string; readonly memberId: string; readonly documentId: string; readonly now: number }
  /** The timer of the lease of `documentId` ending at `expiresAt` fired. */
  | { readonly type: 'expire'; readonly key: string; readonly documentId: string; readonly expiresAt: number; readonly now: number }
  /** The workspace `key` leaves memory: its leases end without telling anyone. */
  | { readonly type: 'drop'; readonly key: string; readonly now: number }
  /**
   * May `memberId` change `documentId` now? Refused (CONFLICT, `reason: "locked"`) while another
   * member holds its lease; asked before the document applies the change. Reply: `true`.
   */
  | { readonly type: 'mayChange'; readonly key: string; readonly workspaceId: string; readonly memberId: string; readonly documentId: string; readonly now: number }
  /**
   * `memberId`'s change (a Yjs update, `changes`) was applied to `documentId`: every other member
   * is told (`document.changed`), raw bytes to binary (MCPW) peers, base64 to JSON peers
   * (`base64`, when the sender sent base64, is reused). Reply: how many members were told.
   */
  | { readonly type: 'changed'; readonly key: string; readonly workspaceId: string; readonly memberId: string; readonly documentId: string; readonly changes: Uint8Array; readonly base64: string | undefined; readonly now: number };

/** What the hub does, in order. */
export type MembershipEffect =
  /** Send `workspace.update` with `params` to each of `peers` that is still open. */
  | { readonly kind: 'notify'; readonly peers: readonly WsPeer[]; readonly params: Readonly<Record<string, unknown>> }
  | { readonly kind: 'publish'; readonly event: { readonly event_type: MembershipEventType; readonly tenant_id: string } & Readonly<Record<string, unknown>> }
  /** Send `expire` for this lease at `expiresAt` (replacing any timer of the same document). */
  | { readonly kind: 'expireAt'; readonly key: string; readonly documentId: string; readonly expiresAt: number }
  /** The lease of `documentId` ended otherwise: its timer is no longer needed. */
  | { readonly kind: 'cancelExpiry'; readonly key: string; readonly documentId: string }
  /** `key` has no members left: write its documents and drop it from memory. */
  | { readonly kind: 'empty'; readonly key: string };

/** One step's outcome: the effects, and the reply or the refusal (a GatewayError). */
export interface MembershipStep {
  readonly effects: readonly MembershipEffect[];
  readonly reply: { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };
}

/** The limits the reducer enforces. */
export interface MembershipLimits {
  readonly maxMembers: number;
  readonly maxWorkspacesPerPeer: number;
}

interface RoomState extends Room {
  readonly members: Map<string, Member>;
  readonly leases: Map<string, Lease>;
}

/** The lease as the join reply and `document.locked` show it. */
export function leaseInfo(lease: Lease): Record<string, unknown> {
  return { member_id: lease.memberId, name: lease.name, expires_at: new Date(lease.expiresAt).toISOString() };
}

/** CONFLICT naming the holder and when its lease ends (`now`: epoch ms). */
export function lockedError(workspaceId: string, lease: Lease, suffix: string, now: number): GatewayError {
  const left = Math.max(0, lease.expiresAt - now);
  const expiresAt = new Date(lease.expiresAt).toISOString();
  return new GatewayError(
    'CONFLICT',
    `Document ${JSON.stringify(lease.documentId)} is locked by member ${lease.memberId} (${JSON.stringify(lease.name)}) until ${expiresAt} (${left} ms left)${suffix}`,
    { reason: 'locked', workspace_id: workspaceId, document_id: lease.documentId, holder: { member_id: lease.memberId, name: lease.name }, expires_at: expiresAt, retry_after_ms: left },
  );
}

/** Membership and leases of every workspace in memory (see the module comment). */
export class Membership {
  readonly #rooms = new Map<string, RoomState>();
  /** Peer id → the keys of its workspaces. */
  readonly #peers = new Map<string, Set<string>>();
  #out: MembershipEffect[] = [];

  constructor(private readonly limits: MembershipLimits) {}

  /** Applies one command; never throws (a refusal is `reply.ok === false`, with no effects). */
  step(command: MembershipCommand): MembershipStep {
    this.#out = [];
    try {
      const value = this.#apply(command);
      return { effects: this.#out, reply: { ok: true, value } };
    } catch (error) {
      return { effects: this.#out, reply: { ok: false, error } };
    } finally {
      this.#out = [];
    }
  }

  // -- reads --------------------------------------------------------------------------------

  /** Whether `peerId` is a member of `key`. */
  isMember(peerId: string, key: string): boolean {
    return this.#peers.get(peerId)?.has(key) === true;
  }

  /** The workspace keys `peerId` is a member of (a copy). */
  roomsOf(peerId: string): string[] {
    return [...(this.#peers.get(peerId) ?? [])];
  }

  /** The members of `key`, in join order. */
  members(key: string): readonly Member[] {
    return [...(this.#rooms.get(key)?.members.values() ?? [])];
  }

  /** The current lease of `documentId` in `key`, if any. */
  holder(key: string, documentId: string): Lease | undefined {
    return this.#rooms.get(key)?.leases.get(documentId);
  }

  /** Memberships across workspaces (a peer in two counts twice). */
  get memberCount(): number {
    let n = 0;
    for (const r of this.#rooms.values()) n += r.members.size;
    return n;
  }

  /**
   * @throws GatewayError CONFLICT when `peerId` would join one workspace more than allowed.
   */
  checkPeerLimit(peerId: string, key: string): void {
    const mine = this.#peers.get(peerId);
    const max = this.limits.maxWorkspacesPerPeer;
    if (mine?.has(key) !== true && (mine?.size ?? 0) >= max) {
      throw new GatewayError('CONFLICT', `Too many workspaces: this connection is in ${max}, the most allowed; leave one first`, {
        reason: 'too_many_workspaces',
        max_workspaces: max,
      });
    }
  }

  // -- steps --------------------------------------------------------------------------------

  #apply(c: MembershipCommand): unknown {
    switch (c.type) {
      case 'join':
        return this.#join(c.room, c.peer, c.name);
      case 'leave':
        return this.#leave(c.key, c.memberId, c.reason);
      case 'lock':
        return this.#lock(c.key, c.memberId, c.documentId, c.ttlMs, c.now);
      case 'unlock':
        return this.#unlock(c.key, c.memberId, c.documentId, c.now);
      case 'expire': {
        const room = this.#rooms.get(c.key);
        const lease = room?.leases.get(c.documentId);
        if (room === undefined || lease === undefined || lease.expiresAt !== c.expiresAt) return false;
        room.leases.delete(c.documentId);
        this.#unlocked(room, lease, 'expired');
        return true;
      }
      case 'mayChange': {
        const lease = this.#rooms.get(c.key)?.leases.get(c.documentId);
        if (lease !== undefined && lease.memberId !== c.memberId) throw lockedError(c.workspaceId, lease, '; updates from other members are refused until it is unlocked', c.now);
        return true;
      }
      case 'changed':
        return this.#changed(c);
      case 'drop': {
        const room = this.#rooms.get(c.key);
        if (room === undefined || room.members.size > 0) return false;
        for (const documentId of room.leases.keys()) this.#out.push({ kind: 'cancelExpiry', key: c.key, documentId });
        this.#rooms.delete(c.key);
        return true;
      }
    }
  }

  #changed(c: MembershipCommand & { readonly type: 'changed' }): number {
    const room = this.#rooms.get(c.key);
    if (room === undefined) return 0;
    const json: WsPeer[] = [];
    const binary: WsPeer[] = [];
    for (const m of room.members.values()) {
      if (m.id === c.memberId) continue;
      (m.peer.binary ? binary : json).push(m.peer);
    }
    const base = { type: 'document.changed', workspace_id: c.workspaceId, document_id: c.documentId };
    if (json.length > 0) this.#out.push({ kind: 'notify', peers: json, params: { ...base, changes: c.base64 ?? toBase64(c.changes), from: c.memberId } });
    if (binary.length > 0) this.#out.push({ kind: 'notify', peers: binary, params: { ...base, changes: c.changes, from: c.memberId } });
    return json.length + binary.length;
  }

  #join(ref: Room, peer: WsPeer, name: string | undefined): { member: Member; renamed: boolean } {
    const room = this.#rooms.get(ref.key) ?? { ...ref, members: new Map<string, Member>(), leases: new Map<string, Lease>() };
    const existing = room.members.get(peer.id);
    if (existing !== undefined) {
      const member = name === undefined ? existing : { ...existing, name };
      room.members.set(peer.id, member);
      return { member, renamed: true };
    }
    this.checkPeerLimit(peer.id, ref.key);
    if (room.members.size >= this.limits.maxMembers) {
      throw new GatewayError('CONFLICT', `Workspace ${JSON.stringify(ref.id)} is full: ${this.limits.maxMembers} members (workspaces.max_members)`, {
        reason: 'workspace_full',
        workspace_id: ref.id,
        max_members: this.limits.maxMembers,
      });
    }
    const member: Member = { id: peer.id, peer, name: name ?? peer.auth?.principal.name ?? peer.id };
    this.#rooms.set(ref.key, room);
    room.members.set(peer.id, member);
    let mine = this.#peers.get(peer.id);
    if (mine === undefined) {
      mine = new Set();
      this.#peers.set(peer.id, mine);
    }
    mine.add(ref.key);
    const info = { member_id: member.id, name: member.name };
    this.#broadcast(room, member.id, { type: 'member.joined', workspace_id: room.id, member: info });
    this.#out.push({ kind: 'publish', event: { event_type: 'WorkspaceMemberJoined', tenant_id: room.tenant, workspace_id: room.id, ...info, members: room.members.size } });
    return { member, renamed: false };
  }

  #leave(key: string, memberId: string, reason: 'left' | 'disconnected'): boolean {
    const room = this.#rooms.get(key);
    const member = room?.members.get(memberId);
    if (room === undefined || member === undefined) return false;
    room.members.delete(memberId);
    const mine = this.#peers.get(memberId);
    mine?.delete(key);
    if (mine?.size === 0) this.#peers.delete(memberId);
    for (const lease of [...room.leases.values()]) {
      if (lease.memberId !== memberId) continue;
      room.leases.delete(lease.documentId);
      this.#out.push({ kind: 'cancelExpiry', key, documentId: lease.documentId });
      this.#unlocked(room, lease, reason);
    }
    this.#broadcast(room, memberId, { type: 'member.left', workspace_id: room.id, member_id: memberId, reason });
    this.#out.push({ kind: 'publish', event: { event_type: 'WorkspaceMemberLeft', tenant_id: room.tenant, workspace_id: room.id, member_id: memberId, name: member.name, reason, members: room.members.size } });
    if (room.members.size === 0) this.#out.push({ kind: 'empty', key });
    return true;
  }

  #lock(key: string, memberId: string, documentId: string, ttlMs: number, now: number): { lease: Lease; renewed: boolean } {
    const room = this.#rooms.get(key);
    const member = room?.members.get(memberId);
    if (room === undefined || member === undefined) throw new GatewayError('FORBIDDEN', 'Not a member of this workspace', { member_id: memberId });
    const current = room.leases.get(documentId);
    if (current !== undefined && current.memberId !== memberId) throw lockedError(room.id, current, '', now);
    const lease: Lease = { documentId, memberId, name: member.name, expiresAt: now + ttlMs };
    room.leases.set(documentId, lease);
    this.#out.push({ kind: 'expireAt', key, documentId, expiresAt: lease.expiresAt });
    const renewed = current !== undefined;
    if (!renewed) {
      const expiresAt = new Date(lease.expiresAt).toISOString();
      this.#broadcast(room, memberId, { type: 'document.locked', workspace_id: room.id, document_id: documentId, member_id: memberId, name: member.name, expires_at: expiresAt });
      this.#out.push({
        kind: 'publish',
        event: { event_type: 'DocumentLocked', tenant_id: room.tenant, workspace_id: room.id, document_id: documentId, member_id: memberId, name: member.name, expires_at: expiresAt },
      });
    }
    return { lease, renewed };
  }

  #unlock(key: string, memberId: string, documentId: string, now: number): boolean {
    const room = this.#rooms.get(key);
    const lease = room?.leases.get(documentId);
    if (room === undefined || lease === undefined) return false;
    if (lease.memberId !== memberId) throw lockedError(room.id, lease, '; only the holder can unlock it', now);
    room.leases.delete(documentId);
    this.#out.push({ kind: 'cancelExpiry', key, documentId });
    this.#unlocked(room, lease, 'released');
    return true;
  }

  /** A lease ended: tell the members (all of them when it expired; else all but the holder) and the bus. */
  #unlocked(room: RoomState, lease: Lease, reason: UnlockReason): void {
    this.#broadcast(room, reason === 'expired' ? undefined : lease.memberId, { type: 'document.unlocked', workspace_id: room.id, document_id: lease.documentId, member_id: lease.memberId, reason });
    this.#out.push({ kind: 'publish', event: { event_type: 'DocumentUnlocked', tenant_id: room.tenant, workspace_id: room.id, document_id: lease.documentId, member_id: lease.memberId, reason } });
  }

  #broadcast(room: RoomState, except: string | undefined, params: Record<string, unknown>): void {
    const peers: WsPeer[] = [];
    for (const m of room.members.values()) if (m.id !== except) peers.push(m.peer);
    if (peers.length > 0) this.#out.push({ kind: 'notify', peers, params });
  }
}
