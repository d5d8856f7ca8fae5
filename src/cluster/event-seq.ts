/**
 * Cluster event seqs: the `i`-th event (from 0) of stream message `s` of the cluster's event
 * stream has seq `s × EVENTS_PER_MESSAGE + i` — one order for all nodes, the same number on every
 * node, increasing but not consecutive (see `./event-stream.ts`).
 */

/**
 * Most events in one stream message, and the stride of cluster event seqs: the `i`-th event of
 * stream message `s` has seq `s × EVENTS_PER_MESSAGE + i` (see {@link eventSeq}).
 */
export const EVENTS_PER_MESSAGE = 1000;

/** The cluster seq of the `index`-th event (from 0) of stream message `streamSeq`. */
export function eventSeq(streamSeq: number, index: number): number {
  return streamSeq * EVENTS_PER_MESSAGE + index;
}

/** The stream message a cluster seq belongs to. */
export function streamSeqOf(seq: number): number {
  return Math.floor(seq / EVENTS_PER_MESSAGE);
}
