/**
 * Time-ordered keys for append-only logs (the tool log; later the event log):
 *
 *     <epoch ms, 15 decimal digits>-<sequence, 8 base-36 digits><boot tag, 4 base-36 digits>
 *     001764451200123-00000001k3f9
 *
 * Keys sort by the entry's timestamp (ms), then, inside one process and one ms, by append
 * order. The sequence never resets in a process and the boot tag is random per generator, so
 * keys are unique even when timestamps repeat or go backwards, and across restarts.
 */
import { randomInt } from 'node:crypto';

const MS_DIGITS = 15;
/** Largest epoch ms a key can carry (year ≈ 33658). */
export const MAX_KEY_MS = 10 ** MS_DIGITS - 1;

/** The key prefix of one ms: all keys of entries stamped `ms` start with it. */
export function msPrefix(ms: number): string {
  return String(ms).padStart(MS_DIGITS, '0');
}

/** The epoch ms a key was stamped with (NaN for a malformed key). */
export function keyMs(key: string): number {
  return key.length > MS_DIGITS && key[MS_DIGITS] === '-' ? Number(key.slice(0, MS_DIGITS)) : Number.NaN;
}

/**
 * Range bounds selecting keys stamped in `[fromMs, toMs]` (both inclusive; either may be
 * omitted), for level's `iterator({ gte, lt })`.
 */
export function timeRange(fromMs?: number, toMs?: number): { gte?: string; lt?: string } {
  const range: { gte?: string; lt?: string } = {};
  if (fromMs !== undefined) range.gte = msPrefix(Math.max(0, Math.ceil(fromMs)));
  if (toMs !== undefined) range.lt = msPrefix(Math.min(MAX_KEY_MS, Math.floor(toMs) + 1));
  return range;
}

/** Makes keys; one per process or per store. */
export class TimeKeyGenerator {
  readonly #boot: string;
  #seq = 0;

  constructor(bootTag: string = randomInt(36 ** 4).toString(36).padStart(4, '0')) {
    if (!/^[0-9a-z]{4}$/.test(bootTag)) throw new RangeError('TimeKeyGenerator: boot tag must be 4 base-36 digits');
    this.#boot = bootTag;
  }

  /**
   * A fresh key stamped `ms`.
   * @throws RangeError unless `ms` is an integer in `[0, MAX_KEY_MS]`.
   */
  next(ms: number): string {
    if (!(Number.isInteger(ms) && ms >= 0 && ms <= MAX_KEY_MS)) throw new RangeError(`time key: bad epoch ms ${ms}`);
    const seq = (this.#seq++).toString(36).padStart(8, '0');
    return `${msPrefix(ms)}-${seq}${this.#boot}`;
  }
}

/** Marks the key of a record the event recorder wrote (a tool event's record): never a base-36 digit. */
const EVENT_MARK = '~';
const SEQ_DIGITS = 16;
const EVENT_KEY_LENGTH = MS_DIGITS + 2 + SEQ_DIGITS;

/**
 * The key of the tool-log record of the tool event `seq`, filed at `ms`:
 *
 *     <epoch ms, 15 decimal digits>-~<seq, 16 decimal digits>
 *     001764451200123-~0000000000004711
 *
 * It sorts by `ms` like every other key of the log, and carries the event's seq so the event log
 * can find the event in the tool log (see `ToolLogRepository.toolEventsAfter`).
 * @throws RangeError unless `ms` is an integer in `[0, MAX_KEY_MS]` and `seq` a positive safe integer.
 */
export function toolEventKey(ms: number, seq: number): string {
  if (!(Number.isInteger(ms) && ms >= 0 && ms <= MAX_KEY_MS)) throw new RangeError(`time key: bad epoch ms ${ms}`);
  if (!(Number.isSafeInteger(seq) && seq > 0)) throw new RangeError(`time key: bad seq ${seq}`);
  // the calls of one ms share the head: made once per ms, not once per call
  if (ms !== headMs) {
    head = `${msPrefix(ms)}-${EVENT_MARK}`;
    headMs = ms;
  }
  return head + String(seq).padStart(SEQ_DIGITS, '0');
}

/** The last {@link toolEventKey} head (`<ms>-~`) and its ms. */
let head = '';
let headMs = -1;

/** The event seq a {@link toolEventKey} carries; `undefined` for any other key. */
export function seqOfToolEventKey(key: string): number | undefined {
  if (key.length !== EVENT_KEY_LENGTH || key[MS_DIGITS + 1] !== EVENT_MARK) return undefined;
  return Number(key.slice(MS_DIGITS + 2));
}
