/**
 * The pure rules over a context's messages: their size (UTF-8 JSON bytes), truncation to a size,
 * the limits a change must keep, the shallow metadata merge, and the extractive summary. No I/O.
 */
import { GatewayError } from '../../base/errors.js';
import type { ContextMessage } from '../../store/v1-records.js';
import { DEFAULT_SUMMARY_SENTENCES, MAX_CONTENT_BYTES, MAX_MESSAGES, MAX_METADATA_BYTES } from './context-wire.js';

// ---------------------------------------------------------------------------------------------
// Size and truncation

function messageBytes(m: ContextMessage): number {
  return Buffer.byteLength(JSON.stringify({ role: m.role, content: m.content, timestamp: m.timestamp }), 'utf8');
}

/**
 * The size of a context's content in bytes: the UTF-8 length of `JSON.stringify(messages)` with
 * each message as `{role, content, timestamp}` (2 for no messages). Computed per message
 * (`[` + sizes joined by `,` + `]`), equal to the whole-array measure.
 */
export function contentBytes(messages: readonly ContextMessage[]): number {
  let total = 2 + Math.max(0, messages.length - 1);
  for (const m of messages) total += messageBytes(m);
  return total;
}

/**
 * The longest suffix of `messages` (the newest ones, order kept) whose {@link contentBytes} is at
 * most `maxBytes`; the empty list when not even the newest message fits (the empty list is the
 * floor, even for `maxBytes` < 2). Returns `messages` itself (same array) when it already fits.
 * O(n). `maxBytes` is in bytes.
 */
export function truncateToSize<M extends ContextMessage>(messages: readonly M[], maxBytes: number): readonly M[] {
  let total = 2;
  let start = messages.length;
  for (let i = messages.length - 1; i >= 0; i--) {
    const next = total + messageBytes(messages[i] as M) + (i === messages.length - 1 ? 0 : 1);
    if (next > maxBytes) break;
    total = next;
    start = i;
  }
  return start === 0 ? messages : messages.slice(start);
}

export function checkLimits(content: readonly ContextMessage[], metadata: Readonly<Record<string, unknown>>): void {
  if (content.length > MAX_MESSAGES) {
    throw new GatewayError('BODY_TOO_LARGE', `A context holds at most ${MAX_MESSAGES} messages; this change would make ${content.length}. Use options.truncate_to_size or replace_content`, {
      field: 'content',
      limit_messages: MAX_MESSAGES,
      message_count: content.length,
    });
  }
  const bytes = contentBytes(content);
  if (bytes > MAX_CONTENT_BYTES) {
    throw new GatewayError('BODY_TOO_LARGE', `A context's content is at most ${MAX_CONTENT_BYTES} bytes (UTF-8 JSON); this change would make ${bytes}. Use options.truncate_to_size`, {
      field: 'content',
      limit_bytes: MAX_CONTENT_BYTES,
      size_bytes: bytes,
    });
  }
  const metaBytes = Buffer.byteLength(JSON.stringify(metadata), 'utf8');
  if (metaBytes > MAX_METADATA_BYTES) {
    throw new GatewayError('BODY_TOO_LARGE', `metadata is at most ${MAX_METADATA_BYTES} bytes as JSON; got ${metaBytes}`, {
      field: 'metadata',
      limit_bytes: MAX_METADATA_BYTES,
      size_bytes: metaBytes,
    });
  }
}

/** RFC 7386 at the top level: keys of `patch` replace those of `target`; a null value removes the key. */
export function mergeMetadata(target: Readonly<Record<string, unknown>>, patch: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(patch ?? {})) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Extractive summary

const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be been but by can could did do does for from had has have he her his how i if in into is it its ' +
    'me my no not of on or our she so than that the their them then there these they this to too was we were what when ' +
    'where which while who why will with would you your yes ok okay please thanks thank let just also about all any some'
  ).split(' '),
);

function words(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => w.length >= 2 && !STOP_WORDS.has(w));
}

function sentencesOf(text: string): string[] {
  return text
    .split(/\n+|(?<=[.!?])\s+/)
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter((s) => s !== '');
}

/** What {@link extractiveSummary} answers. */
export interface ExtractiveSummary {
  readonly summary: string;
  readonly method: 'extractive';
  /** Messages read. */
  readonly message_count: number;
  /** Distinct sentences found in them. */
  readonly sentence_count: number;
  /** Sentences in `summary`. */
  readonly sentences_used: number;
}

const MAX_SUMMARY_SENTENCE_CHARS = 300;

/**
 * An extractive summary of `messages` (no model provider is involved): the `maxSentences`
 * best-scoring sentences, in their original order, joined by spaces.
 *
 * - Sentences: each message's text split at line breaks and after `.`, `!` or `?` followed by
 *   white space; repeated sentences (same text) count once, at their first place.
 * - Words: lower-cased runs of letters and digits, 2+ characters, minus a short English
 *   stop-word list. `tf(w)` = occurrences of `w` in the whole context; `maxTf` = the largest.
 * - Score of a sentence = the mean of `tf(w) / maxTf` over its distinct words (SumBasic-like: a
 *   sentence made of the context's frequent words scores high), × 0.5 when it has fewer than 3
 *   distinct words, × 1.25 when it opens its message (position). Ties go to the earlier sentence.
 * - Sentences longer than 300 characters are cut with `…`.
 */
export function extractiveSummary(messages: readonly Pick<ContextMessage, 'content'>[], maxSentences = DEFAULT_SUMMARY_SENTENCES): ExtractiveSummary {
  const seen = new Set<string>();
  const sentences: { text: string; words: string[]; first: boolean; pos: number }[] = [];
  for (const m of messages) {
    sentencesOf(m.content).forEach((text, i) => {
      if (seen.has(text)) return;
      seen.add(text);
      sentences.push({ text, words: words(text), first: i === 0, pos: sentences.length });
    });
  }
  const tf = new Map<string, number>();
  for (const s of sentences) for (const w of s.words) tf.set(w, (tf.get(w) ?? 0) + 1);
  const maxTf = Math.max(1, ...tf.values());
  const scored = sentences.map((s) => {
    const distinct = [...new Set(s.words)];
    const mean = distinct.length === 0 ? 0 : distinct.reduce((acc, w) => acc + (tf.get(w) ?? 0) / maxTf, 0) / distinct.length;
    return { ...s, score: mean * (distinct.length < 3 ? 0.5 : 1) * (s.first ? 1.25 : 1) };
  });
  const picked = [...scored]
    .sort((a, b) => b.score - a.score || a.pos - b.pos)
    .slice(0, maxSentences)
    .sort((a, b) => a.pos - b.pos);
  const cut = (s: string): string => (s.length > MAX_SUMMARY_SENTENCE_CHARS ? `${s.slice(0, MAX_SUMMARY_SENTENCE_CHARS - 1)}…` : s);
  return {
    summary: picked.map((s) => cut(s.text)).join(' '),
    method: 'extractive',
    message_count: messages.length,
    sentence_count: sentences.length,
    sentences_used: picked.length,
  };
}
