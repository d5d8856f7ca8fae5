/**
 * Collaborative workspaces over `/ws` (developer-mesh
 * "Collaboration Messages" and "Collaborative Workspace Updates", https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md).
 * The `/ws` endpoint routes `workspace.*`, `document.*`, `cursor.position` and
 * `selection.change` here, from JSON text and MCPW frames alike (`src/streams/ws-methods.ts`).
 *
 * Methods (params → result; errors are JSON-RPC errors from the registry, `src/base/errors.ts`):
 * - `workspace.join` {workspace_id, name?, include_state?, encoding?} →
 *   `{workspace_id, member_id, members:[{member_id, name}], documents:[{document_id, size_bytes,
 *   locked_by?:{member_id, name, expires_at}, state?}]}`; the other members get
 *   `workspace.update` `{type:"member.joined", workspace_id, member:{member_id, name}}`. Joining
 *   again only renames. A late joiner gets the document states either with `include_state: true`
 *   here or with `document.get`; it is a member (receives every later change) before either
 *   answer is built, so applying the state plus the changes that follow converges.
 * - `workspace.leave` {workspace_id} → `{left:true}`; a disconnect leaves every workspace; the
 *   others get `{type:"member.left", workspace_id, member_id, reason:"left"|"disconnected"}` and
 *   the member's locks are released.
 * - `document.update` {workspace_id, document_id, changes} → `{ok:true, size_bytes}`: `changes`
 *   is a Yjs v1 update (base64 in JSON frames, raw bytes in MCPW); it is checked, applied to the
 *   gateway's `Y.Doc`, persisted (coalesced, see `./persistence.ts` for the durability window)
 *   and sent to the other members as `{type:"document.changed", workspace_id, document_id,
 *   changes, from}` (base64 to JSON peers, raw bytes to MCPW peers). The first update creates the
 *   document. `size_bytes` is the size estimate of `./document.ts`.
 * - `document.get` {workspace_id, document_id, encoding?} → `{workspace_id, document_id, state,
 *   size_bytes}`: `state` is `Y.encodeStateAsUpdate` of the gateway's copy.
 * - `document.lock` {workspace_id, document_id, ttl_ms?} → `{locked:true, workspace_id,
 *   document_id, expires_at (ISO-8601), ttl_ms, renewed}`. The lease is `ttl_ms`, capped at (and
 *   by default) `workspaces.lock_ttl_ms`; locking again renews it. The others get
 *   `{type:"document.locked", workspace_id, document_id, member_id, name, expires_at}` when it is
 *   taken (not on renewals). While it is held, other members' `document.update`s are refused.
 * - `document.unlock` {workspace_id, document_id} → `{unlocked:boolean}` (false: it was not
 *   locked). A lease ends by unlock, leave, disconnect or expiry; the members get
 *   `{type:"document.unlocked", workspace_id, document_id, member_id, reason:
 *   "released"|"left"|"disconnected"|"expired"}` (on `released` all but the holder, which has its
 *   answer; on `expired` the holder too).
 * - `cursor.position` {workspace_id, document_id?, position} and `selection.change`
 *   {workspace_id, document_id?, selection}, usually notifications (requests get `{ok:true}`):
 *   the others get `{type:"cursor.position"|"selection.change", workspace_id, member_id,
 *   document_id?, position|selection}`, coalesced per member and kind with `auditTime`
 *   (`workspaces.cursor_audit_ms`, `./presence.ts`), never persisted.
 *
 * Scope: workspaces are per tenant (`peer.auth.principal.tenantId`, `default` without auth);
 * only members receive a workspace's traffic, and every method but `workspace.join` requires
 * membership. A peer is member `peer.id`; it may be in up to {@link WorkspaceHubDeps.maxWorkspacesPerPeer}
 * workspaces at once, and a workspace holds up to {@link WorkspaceHubDeps.maxDocumentsPerWorkspace}
 * documents. Locks may be taken on a document before its first update; such a lock is not in
 * `workspace.join`'s `documents` list. A workspace stays in memory while it has members; when the last leaves, its
 * documents are written and it is dropped (loaded again from LevelDB at the next join).
 *
 * Slow members: nothing here waits for a peer. Sends are synchronous writes into the peer's
 * buffer. Presence (cursor, selection) is skipped for a peer whose
 * {@link WsPeer.bufferedAmount} is over {@link WorkspaceHubDeps.presenceSkipBytes} (64 KiB by
 * default): it is transient, the next window carries the newer value. Document changes are never
 * skipped (every update is needed to converge); a peer that keeps not reading is closed by the
 * `/ws` endpoint at its hard backpressure limit (1013) and re-syncs with `document.get` after
 * reconnecting.
 *
 * Events on the bus (each with `tenant_id`, `workspace_id`): `WorkspaceMemberJoined`,
 * `WorkspaceMemberLeft` {member_id, name, reason}, `DocumentLocked` {document_id, member_id, name,
 * expires_at}, `DocumentUnlocked` {document_id, member_id, reason}, and `DocumentChanged`
 * {document_id, size_bytes, updates} once per persisted write (coalesced, not per keystroke).
 */
import { Subject, type Subscription } from 'rxjs';
import { GatewayError } from '../../base/errors.js';
import type { WsMethodHost, WsPeer } from '../../streams/ws-methods.js';
import { encodeBytes, receiveBytes, replyEncoding } from './bytes.js';
import { SharedDocument } from './document.js';
import { Membership, leaseInfo, type MembershipCommand, type MembershipEffect } from './membership.js';
import {
  CursorParams,
  GetParams,
  JoinParams,
  LeaveParams,
  LockParams,
  SelectionParams,
  UnlockParams,
  UpdateParams,
  decodeParams,
} from './params.js';
import { DOCUMENT_WRITE_INTERVAL_MS, DocumentPersistence, documentKey, type PersistedInfo, type StoredDocument } from './persistence.js';
import {
  MAX_DOCUMENTS_PER_WORKSPACE,
  MAX_PRESENCE_CHARS,
  MAX_WORKSPACES_PER_PEER,
  PRESENCE_SKIP_BYTES,
  WORKSPACE_UPDATE,
  type WorkspaceHubCounters,
  type WorkspaceHubDeps,
} from './hub-options.js';
import { PRESENCE_GROUP_IDLE_MS, coalescePresence, presenceKey, type PresenceInput, type PresenceKind } from './presence.js';

const METHODS = new Set(['cursor.position', 'selection.change']);

/** A workspace in memory: its documents (members and locks are in {@link Membership}). */
interface Workspace {
  /** `<tenant>\0<workspace_id>`. */
  readonly key: string;
  readonly tenant: string;
  readonly id: string;
  readonly documents: Map<string, SharedDocument>;
}

/**
 * The `/ws` method host of collaborative workspaces (see the module doc for methods, scope and the
 * slow-member policy). Lifetime: `init()` before the first call, `dispose()` once at shutdown
 * (before the store closes).
 */
export class WorkspaceHub implements WsMethodHost {
  readonly #workspaces = new Map<string, Workspace>();
  readonly #loading = new Map<string, Promise<Workspace>>();
  /** Who is in which workspace, who holds which lock: the reducer the calls below step. */
  readonly #membership: Membership;
  /** Lease expiry timers by `<workspace key>\0<document id>`. */
  readonly #expiry = new Map<string, NodeJS.Timeout>();
  readonly #presence$ = new Subject<PresenceInput>();
  #presenceSub: Subscription | undefined;
  readonly #persistence: DocumentPersistence;
  /** Peers presence is currently skipped for (logged on each change). */
  readonly #slow = new Set<string>();
  readonly #presenceSkipBytes: number;
  readonly #maxWorkspacesPerPeer: number;
  readonly #maxDocuments: number;
  #presenceSent = 0;
  #presenceSkipped = 0;
  #disposed = false;

  constructor(readonly deps: WorkspaceHubDeps) {
    this.#presenceSkipBytes = deps.presenceSkipBytes ?? PRESENCE_SKIP_BYTES;
    this.#maxWorkspacesPerPeer = deps.maxWorkspacesPerPeer ?? MAX_WORKSPACES_PER_PEER;
    this.#maxDocuments = deps.maxDocumentsPerWorkspace ?? MAX_DOCUMENTS_PER_WORKSPACE;
    this.#membership = new Membership({ maxMembers: deps.config.max_members, maxWorkspacesPerPeer: this.#maxWorkspacesPerPeer });
    this.#persistence = new DocumentPersistence(
      deps.store.sublevel<StoredDocument>('documents'),
      deps.store.writer,
      deps.log,
      deps.documentWriteIntervalMs ?? DOCUMENT_WRITE_INTERVAL_MS,
      (info) => this.#persisted(info),
    );
  }

  /**
   * Starts the presence stream. Documents are loaded lazily, a workspace at its first join, so
   * start-up does not read them.
   */
  init(): Promise<void> {
    this.#presenceSub ??= this.#presence$
      .pipe(coalescePresence(this.deps.config.cursor_audit_ms, PRESENCE_GROUP_IDLE_MS))
      .subscribe((input) => this.#fanOutPresence(input));
    return Promise.resolve();
  }

  /**
   * The workspaces of `tenant` in memory (those with members), for the dashboard: members and
   * documents with their size and lock holder. Sorted by id; a fresh snapshot each call.
   */
  active(tenant: string): { workspace_id: string; members: { member_id: string; name: string }[]; documents: { document_id: string; size_bytes: number; locked_by: string | null }[] }[] {
    const out = [];
    for (const w of this.#workspaces.values()) {
      if (w.tenant !== tenant) continue;
      out.push({
        workspace_id: w.id,
        members: this.#membership.members(w.key).map((m) => ({ member_id: m.id, name: m.name })),
        documents: [...w.documents].map(([id, d]) => ({ document_id: id, size_bytes: d.sizeBytes, locked_by: this.#membership.holder(w.key, id)?.name ?? null })),
      });
    }
    return out.sort((a, b) => (a.workspace_id < b.workspace_id ? -1 : a.workspace_id > b.workspace_id ? 1 : 0));
  }

  /** Whether `method` is a collaboration method (`workspace.*`, `document.*`, `cursor.position`, `selection.change`). */
  handles(method: string): boolean {
    return method.startsWith('workspace.') || method.startsWith('document.') || METHODS.has(method);
  }

  /** A snapshot of the counters. */
  get counters(): WorkspaceHubCounters {
    const members = this.#membership.memberCount;
    const p = this.#persistence.counters;
    return {
      workspaces: this.#workspaces.size,
      members,
      documentWrites: p.writes,
      documentWriteFailures: p.failures,
      presenceSent: this.#presenceSent,
      presenceSkipped: this.#presenceSkipped,
    };
  }

  /**
   * Handles one collaboration message (see the module doc for each method's params and result).
   * Everything but `workspace.join` (which may read LevelDB) runs synchronously, so one peer's
   * messages take effect in the order they arrived.
   * @throws (rejects with) GatewayError: INVALID_PARAMS (missing or malformed fields, bad base64,
   *   not a Yjs update), FORBIDDEN (not a member), NOT_FOUND (no such document), CONFLICT (locked by
   *   another member, workspace full, document over max_document_bytes, too many workspaces or
   *   documents; `details.reason` tells which),
   *   METHOD_NOT_FOUND, STORE_UNAVAILABLE, SHUTTING_DOWN.
   */
  async call(peer: WsPeer, method: string, params: Record<string, unknown> | undefined, _isNotification: boolean): Promise<unknown> {
    if (this.#disposed) throw new GatewayError('SHUTTING_DOWN');
    switch (method) {
      case 'workspace.join':
        return this.#join(peer, decodeParams(JoinParams, method, params));
      case 'workspace.leave':
        return this.#leaveRequest(peer, decodeParams(LeaveParams, method, params));
      case 'document.update':
        return this.#update(peer, decodeParams(UpdateParams, method, params));
      case 'document.get':
        return this.#get(peer, decodeParams(GetParams, method, params));
      case 'document.lock':
        return this.#lock(peer, decodeParams(LockParams, method, params));
      case 'document.unlock':
        return this.#unlock(peer, decodeParams(UnlockParams, method, params));
      case 'cursor.position': {
        const p = decodeParams(CursorParams, method, params);
        return this.#presence(peer, 'cursor.position', p.workspace_id, p.document_id, 'position', p.position);
      }
      case 'selection.change': {
        const p = decodeParams(SelectionParams, method, params);
        return this.#presence(peer, 'selection.change', p.workspace_id, p.document_id, 'selection', p.selection);
      }
      default:
        throw new GatewayError('METHOD_NOT_FOUND', `Method not found: ${method}`);
    }
  }

  /** The peer's connection closed: it leaves every workspace (its locks are released). */
  closed(peer: WsPeer): void {
    this.#slow.delete(peer.id);
    for (const key of this.#membership.roomsOf(peer.id)) this.#run({ type: 'leave', key, memberId: peer.id, reason: 'disconnected', now: Date.now() });
  }

  /** Stops the presence stream and lease timers, then writes every pending document state. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#presenceSub?.unsubscribe();
    this.#presence$.complete();
    for (const timer of this.#expiry.values()) clearTimeout(timer);
    this.#expiry.clear();
    await this.#persistence.flushAll();
    for (const ws of this.#workspaces.values()) for (const doc of ws.documents.values()) doc.destroy();
    this.#workspaces.clear();
  }

  // ─── the sinks of the membership reducer ──────────────────────────────────

  /** One membership step: its effects carried out in order, then its reply (or its refusal thrown). */
  #run(command: MembershipCommand): unknown {
    const { effects, reply } = this.#membership.step(command);
    for (const effect of effects) this.#carryOut(effect);
    if (!reply.ok) throw reply.error;
    return reply.value;
  }

  #carryOut(effect: MembershipEffect): void {
    switch (effect.kind) {
      case 'notify':
        for (const peer of effect.peers) if (!peer.closed) peer.notify(WORKSPACE_UPDATE, effect.params);
        return;
      case 'publish':
        this.deps.bus.publish(effect.event);
        return;
      case 'expireAt': {
        const id = `${effect.key}\u0000${effect.documentId}`;
        clearTimeout(this.#expiry.get(id));
        const timer = setTimeout(() => {
          if (this.#expiry.get(id) !== timer) return;
          this.#expiry.delete(id);
          this.#run({ type: 'expire', key: effect.key, documentId: effect.documentId, expiresAt: effect.expiresAt, now: Date.now() });
        }, Math.max(0, effect.expiresAt - Date.now()));
        timer.unref();
        this.#expiry.set(id, timer);
        return;
      }
      case 'cancelExpiry': {
        const id = `${effect.key}\u0000${effect.documentId}`;
        clearTimeout(this.#expiry.get(id));
        this.#expiry.delete(id);
        return;
      }
      case 'empty': {
        const ws = this.#workspaces.get(effect.key);
        if (ws !== undefined) this.#maybeUnload(ws);
        return;
      }
    }
  }

  // ─── membership ───────────────────────────────────────────────────────────

  async #join(peer: WsPeer, p: JoinParams): Promise<Record<string, unknown>> {
    const tenant = tenantOf(peer);
    const key = workspaceKey(tenant, p.workspace_id);
    this.#membership.checkPeerLimit(peer.id, key);
    const ws = this.#workspaces.get(key) ?? (await this.#open(tenant, p.workspace_id, key));
    if (this.#disposed) throw new GatewayError('SHUTTING_DOWN');
    if (peer.closed) {
      this.#maybeUnload(ws);
      throw new GatewayError('INVALID_REQUEST', 'The connection closed while joining');
    }
    let member: { readonly id: string };
    try {
      // the limits are checked again: other joins of this peer may have finished while this one loaded
      member = (this.#run({ type: 'join', room: { key, tenant, id: ws.id }, peer, name: p.name, now: Date.now() }) as { member: { readonly id: string } }).member;
    } catch (err) {
      this.#maybeUnload(ws);
      throw err;
    }
    const encoding = replyEncoding(peer, p.encoding);
    return {
      workspace_id: ws.id,
      member_id: member.id,
      members: this.#membership.members(key).map((m) => ({ member_id: m.id, name: m.name })),
      documents: [...ws.documents.values()].map((doc) => {
        const lease = this.#membership.holder(key, doc.id);
        const state = p.include_state === true ? doc.state() : undefined;
        return {
          document_id: doc.id,
          size_bytes: doc.sizeBytes,
          ...(lease !== undefined ? { locked_by: leaseInfo(lease) } : {}),
          ...(state !== undefined ? { state: encodeBytes(state, encoding) } : {}),
        };
      }),
    };
  }

  /** The workspace `key`, loading its documents once however many joins wait for it. */
  #open(tenant: string, id: string, key: string): Promise<Workspace> {
    let loading = this.#loading.get(key);
    if (loading === undefined) {
      loading = this.#persistence
        .loadWorkspace(tenant, id)
        .then(
          (docs) => {
            const existing = this.#workspaces.get(key);
            if (existing !== undefined) return existing;
            const ws: Workspace = { key, tenant, id, documents: new Map(docs.map((d) => [d.id, d])) };
            if (!this.#disposed) this.#workspaces.set(key, ws);
            return ws;
          },
          (err: unknown) => {
            this.deps.log.error('could not load a workspace from the store', { workspace_id: id, error: err });
            throw new GatewayError('STORE_UNAVAILABLE', `Could not load workspace ${JSON.stringify(id)} from the store; retry later`);
          },
        )
        .finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    return loading;
  }

  #leaveRequest(peer: WsPeer, p: LeaveParams): Record<string, unknown> {
    const key = workspaceKey(tenantOf(peer), p.workspace_id);
    if (!this.#membership.isMember(peer.id, key)) throw new GatewayError('NOT_FOUND', `Not a member of workspace ${JSON.stringify(p.workspace_id)}`, { workspace_id: p.workspace_id });
    this.#run({ type: 'leave', key, memberId: peer.id, reason: 'left', now: Date.now() });
    return { left: true, workspace_id: p.workspace_id };
  }

  /** Drops an empty workspace from memory once its documents are written. */
  #maybeUnload(ws: Workspace): void {
    if (this.#membership.members(ws.key).length > 0 || this.#disposed) return;
    const keys = [...ws.documents.keys()].map((d) => documentKey(ws.tenant, ws.id, d));
    void Promise.all(keys.map((k) => this.#persistence.flush(k))).then(() => {
      if (this.#disposed || this.#workspaces.get(ws.key) !== ws || this.#membership.members(ws.key).length > 0) return;
      // a document the store refused stays in memory rather than being lost
      if (keys.some((k) => this.#persistence.isPending(k))) return;
      this.#workspaces.delete(ws.key);
      this.#run({ type: 'drop', key: ws.key, now: Date.now() });
      for (const doc of ws.documents.values()) doc.destroy();
    });
  }

  /** The workspace `workspaceId` of `peer`'s tenant, which `peer` must be a member of. */
  #memberOf(peer: WsPeer, workspaceId: string): Workspace {
    const key = workspaceKey(tenantOf(peer), workspaceId);
    const ws = this.#membership.isMember(peer.id, key) ? this.#workspaces.get(key) : undefined;
    if (ws === undefined) {
      throw new GatewayError('FORBIDDEN', `Not a member of workspace ${JSON.stringify(workspaceId)}: send workspace.join first`, { workspace_id: workspaceId });
    }
    return ws;
  }

  // ─── documents ────────────────────────────────────────────────────────────

  #update(peer: WsPeer, p: UpdateParams): Record<string, unknown> {
    const ws = this.#memberOf(peer, p.workspace_id);
    const received = receiveBytes(p.changes, 'changes');
    this.#run({ type: 'mayChange', key: ws.key, workspaceId: ws.id, memberId: peer.id, documentId: p.document_id, now: Date.now() });
    const existing = ws.documents.get(p.document_id);
    if (existing === undefined && ws.documents.size >= this.#maxDocuments) {
      throw new GatewayError('CONFLICT', `Workspace ${JSON.stringify(ws.id)} has ${this.#maxDocuments} documents, the most allowed; update an existing one`, {
        reason: 'too_many_documents',
        max_documents: this.#maxDocuments,
      });
    }
    const doc = existing ?? new SharedDocument(p.document_id);
    const sizeBytes = doc.apply(received.bytes, this.deps.config.max_document_bytes);
    if (existing === undefined) ws.documents.set(doc.id, doc);
    this.#persistence.touch(documentKey(ws.tenant, ws.id, doc.id), doc);
    // the reducer tells the other members (document.changed), in its form for each peer
    this.#run({ type: 'changed', key: ws.key, workspaceId: ws.id, memberId: peer.id, documentId: doc.id, changes: received.bytes, base64: received.base64, now: Date.now() });
    return { ok: true, size_bytes: sizeBytes };
  }

  #get(peer: WsPeer, p: GetParams): Record<string, unknown> {
    const ws = this.#memberOf(peer, p.workspace_id);
    const doc = ws.documents.get(p.document_id);
    if (doc === undefined) {
      throw new GatewayError('NOT_FOUND', `No document ${JSON.stringify(p.document_id)} in workspace ${JSON.stringify(ws.id)} (a document exists from its first document.update)`, {
        workspace_id: ws.id,
        document_id: p.document_id,
      });
    }
    const state = doc.state();
    return { workspace_id: ws.id, document_id: doc.id, state: encodeBytes(state, replyEncoding(peer, p.encoding)), size_bytes: state.byteLength };
  }

  #persisted(info: PersistedInfo): void {
    const [tenant, workspaceId, documentId] = info.key.split('\u0000');
    this.deps.bus.publish({
      event_type: 'DocumentChanged',
      tenant_id: tenant ?? 'default',
      workspace_id: workspaceId,
      document_id: documentId,
      size_bytes: info.sizeBytes,
      updates: info.updates,
    });
  }

  // ─── locks ────────────────────────────────────────────────────────────────

  #lock(peer: WsPeer, p: LockParams): Record<string, unknown> {
    const ws = this.#memberOf(peer, p.workspace_id);
    const ttlMs = Math.min(p.ttl_ms ?? this.deps.config.lock_ttl_ms, this.deps.config.lock_ttl_ms);
    const r = this.#run({ type: 'lock', key: ws.key, memberId: peer.id, documentId: p.document_id, ttlMs, now: Date.now() }) as { lease: { expiresAt: number }; renewed: boolean };
    return { locked: true, workspace_id: ws.id, document_id: p.document_id, expires_at: new Date(r.lease.expiresAt).toISOString(), ttl_ms: ttlMs, renewed: r.renewed };
  }

  #unlock(peer: WsPeer, p: UnlockParams): Record<string, unknown> {
    const ws = this.#memberOf(peer, p.workspace_id);
    const unlocked = this.#run({ type: 'unlock', key: ws.key, memberId: peer.id, documentId: p.document_id, now: Date.now() }) as boolean;
    return { unlocked, workspace_id: ws.id, document_id: p.document_id };
  }

  // ─── presence ─────────────────────────────────────────────────────────────

  #presence(peer: WsPeer, kind: PresenceKind, workspaceId: string, documentId: string | undefined, field: 'position' | 'selection', value: unknown): Record<string, unknown> {
    const ws = this.#memberOf(peer, workspaceId);
    const size = JSON.stringify(value)?.length ?? 0;
    if (size > MAX_PRESENCE_CHARS) {
      throw new GatewayError('INVALID_PARAMS', `Invalid params: ${field} is ${size} characters as JSON, over ${MAX_PRESENCE_CHARS}`, { field, max_chars: MAX_PRESENCE_CHARS });
    }
    this.#presence$.next({
      key: presenceKey(ws.key, peer.id, kind),
      workspaceKey: ws.key,
      memberId: peer.id,
      kind,
      params: { type: kind, workspace_id: ws.id, member_id: peer.id, ...(documentId !== undefined ? { document_id: documentId } : {}), [field]: value },
    });
    return { ok: true };
  }

  /** Sends one coalesced presence update to the sender's fellow members that keep up; never waits. */
  #fanOutPresence(input: PresenceInput): void {
    try {
      const ws = this.#workspaces.get(input.workspaceKey);
      if (ws === undefined || !this.#membership.isMember(input.memberId, ws.key)) return;
      for (const m of this.#membership.members(ws.key)) {
        if (m.id === input.memberId || m.peer.closed) continue;
        const buffered = m.peer.bufferedAmount();
        if (buffered > this.#presenceSkipBytes) {
          this.#presenceSkipped++;
          if (!this.#slow.has(m.id)) {
            this.#slow.add(m.id);
            this.deps.log.debug('presence skipped for a slow member', { member_id: m.id, buffered_bytes: buffered, threshold_bytes: this.#presenceSkipBytes });
          }
          continue;
        }
        if (this.#slow.delete(m.id)) this.deps.log.debug('presence resumed for a member', { member_id: m.id, buffered_bytes: buffered });
        if (m.peer.notify(WORKSPACE_UPDATE, input.params as Record<string, unknown>)) this.#presenceSent++;
      }
    } catch (err) {
      this.deps.log.error('presence fan-out failed', { error: err });
    }
  }
}

/** The tenant a peer's workspaces belong to. */
function tenantOf(peer: WsPeer): string {
  return peer.auth?.principal.tenantId ?? 'default';
}

function workspaceKey(tenant: string, workspaceId: string): string {
  return `${tenant}\u0000${workspaceId}`;
}
