/**
 * The catch-up half of `/api/ws/events` (beyond MCP Hangar,
 * https://mcp-hangar.io/docs/guides/WEBSOCKETS): reading stored events after a seq a page at a
 * time, and naming every seq the client will not get with an `events_skipped` warning
 * (`{"type":"warning","code":"events_skipped","from":A,"to":B,"reason":R}`). The pacing (send as
 * the socket drains, then go live) stays with the endpoint in `events-ws.ts`.
 */
import type { EventLogRepository, GapReason, SeqGap, StoredEvent } from '../store/events.js';
import { matches, type Filter } from './events-ws-subscribe.js';

/**
 * Where a `since` catch-up reads from: the local event log (consecutive seqs: a seq with no event
 * is a hole), or the cluster's event stream (`sparseSeqs`: increasing but not consecutive seqs,
 * only the ranges `gapsIn` names are holes).
 */
export type EventReplaySource = Pick<EventLogRepository, 'after' | 'gapsIn'> & { readonly sparseSeqs?: boolean };

/** Why seqs were skipped: a gap record's reason, or `max_replay` (the catch-up budget ran out). */
export type SkipReason = GapReason | 'max_replay';

/** The warning frame for seqs `from..to` (both included) the client does not get. */
export function skippedWarning(from: number, to: number, reason: SkipReason): string {
  return JSON.stringify({ type: 'warning', code: 'events_skipped', from, to, reason });
}

/**
 * Reads one page of stored events after seq `from` (at most `limit`, none after `upTo`) and turns
 * it into frames for a subscriber with `filter`: each matching event as JSON, each hole as
 * `events_skipped` warnings ({@link describeHole}). Resolves `end`, the seq up to which everything
 * is now known (`upTo` when the page was short), the frames, and how many events were read; or
 * `undefined` when `stale()` turned true after a store read (the catch-up was replaced or the
 * connection closed). Store errors reject.
 */
export async function readReplayPage(
  log: EventReplaySource,
  filter: () => Filter,
  from: number,
  limit: number,
  upTo: number,
  stale: () => boolean,
): Promise<{ readonly end: number; readonly frames: string[]; readonly read: number } | undefined> {
  const page: StoredEvent[] = await log.after(from, limit, upTo);
  if (stale()) return undefined;
  // everything in (from, end] is now known: events from the page, holes named by gap records
  const end = page.length < limit ? upTo : (page[page.length - 1] as StoredEvent).seq;
  let gaps: SeqGap[] | undefined;
  let cursor = from;
  const frames: string[] = [];
  for (const e of [...page, undefined]) {
    const next = e === undefined ? end + 1 : e.seq;
    if (next > cursor + 1) {
      gaps ??= await log.gapsIn(from + 1, end);
      if (stale()) return undefined;
      for (const w of describeHole(cursor + 1, next - 1, gaps, log.sparseSeqs === true)) frames.push(skippedWarning(w.from, w.to, w.reason));
    }
    if (e === undefined) break;
    cursor = e.seq;
    if (matches(filter(), e as unknown as { event_type: string })) frames.push(JSON.stringify(e));
  }
  return { end, frames, read: page.length };
}

/**
 * Splits the hole `from..to` (no stored events) into warnings: parts covered by gap records keep
 * their reason; the rest was deleted by retention (`expired`) — unless `namedOnly` (sparse seqs:
 * a seq with no event was never issued, only the gap records are holes).
 */
export function describeHole(from: number, to: number, gaps: readonly SeqGap[], namedOnly: boolean): { from: number; to: number; reason: GapReason }[] {
  const out: { from: number; to: number; reason: GapReason }[] = [];
  let at = from;
  for (const g of gaps) {
    if (g.to < at || g.from > to) continue;
    if (g.from > at && !namedOnly) out.push({ from: at, to: g.from - 1, reason: 'expired' });
    const end = Math.min(g.to, to);
    out.push({ from: Math.max(g.from, at), to: end, reason: g.reason });
    at = end + 1;
    if (at > to) break;
  }
  if (at <= to && !namedOnly) out.push({ from: at, to, reason: 'expired' });
  return out;
}
