/**
 * Presence coalescing ("`cursor.position`, `selection.change`: broadcast to the other
 * members, coalesced per member (RxJS `auditTime`) so a fast typist cannot flood a slow member;
 * never persisted"; developer-mesh "Share cursor position", "Share selection changes").
 *
 * All presence input of the hub flows through one Subject into {@link coalescePresence}: a
 * `groupBy` on (workspace, member, kind) and an `auditTime(windowMs)` per group, so each member's
 * cursor (and, separately, its selection) reaches the others at most once per window, and what
 * reaches them is the latest value of that window (the final position always arrives). Groups end
 * after `idleMs` without input, so their number stays bounded by the members active lately; the
 * hub only feeds input of current members, so the groups (the inner subscriptions of the
 * `mergeMap`) are bounded by workspaces × `max_members` × 2.
 */
import { auditTime, debounceTime, groupBy, mergeMap, asyncScheduler, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';

/** The two presence kinds; also the `type` of their `workspace.update` notification. */
export type PresenceKind = 'cursor.position' | 'selection.change';

/** One presence input, already validated, with what the other members get. */
export interface PresenceInput {
  /** The coalescing key: one per (workspace, member, kind); see {@link presenceKey}. */
  readonly key: string;
  /** The workspace's key in the hub (tenant and workspace id). */
  readonly workspaceKey: string;
  /** The sender's member id. */
  readonly memberId: string;
  readonly kind: PresenceKind;
  /** The `workspace.update` params the other members receive. */
  readonly params: Readonly<Record<string, unknown>>;
}

/** The coalescing key of a member's presence kind in a workspace. */
export function presenceKey(workspaceKey: string, memberId: string, kind: PresenceKind): string {
  return `${workspaceKey}\u0000${memberId}\u0000${kind}`;
}

/** Default idle time after which a presence group ends, ms. */
export const PRESENCE_GROUP_IDLE_MS = 30_000;

/**
 * Coalesces presence per {@link PresenceInput.key}: at most one output per key per `windowMs`
 * (ms), the latest input of the window, emitted at the window's end (RxJS `auditTime`). Order
 * across keys follows the windows' ends. A group ends after `idleMs` (ms, > `windowMs`) without
 * input; a pending value is still emitted. Never errors; completes when the source completes
 * and every pending window has ended.
 */
export function coalescePresence(windowMs: number, idleMs: number = PRESENCE_GROUP_IDLE_MS, scheduler: SchedulerLike = asyncScheduler): MonoTypeOperatorFunction<PresenceInput> {
  return (source) =>
    source.pipe(
      groupBy((input) => input.key, { duration: (group) => group.pipe(debounceTime(Math.max(idleMs, windowMs * 2), scheduler)) }),
      // bounded: one inner per active (workspace, member, kind), see the module doc
      mergeMap((group) => group.pipe(auditTime(windowMs, scheduler))),
    );
}
