/**
 * V8 settings the gateway process runs with, applied when this module is first imported (the
 * first import of `main.ts`, before any other module of the gateway runs).
 *
 * - `--no-allocation-site-pretenuring`: V8 tracks, per object/array literal site, how many of its
 *   objects survive a young-generation collection, and once nearly all do it allocates that site's
 *   objects directly in old space (https://v8.dev/blog/orinoco-parallel-scavenger ,
 *   "allocation-site pretenuring"). A gateway's start-up runs the request path's code on objects
 *   that live long (catalogue loads, upstream handshakes); V8 then pretenures those sites, every
 *   later call's objects are born in old space, die there, and until the next mark-compact keep
 *   the young objects they point at alive through every scavenge: ≈ 1.2 KB promoted per call,
 *   young collections of 15–40 ms. Measured here (`demo-echo`, one core, `--trace-gc-nvp`):
 *   promoted per call 1,251 → 61 B at c=1 and 1,323 → 53 B at c=64, p99 at c=64 34–43 → 9–17 ms.
 *
 * A flag the operator gave (on the command line or in `NODE_OPTIONS`, either polarity) is left
 * as given. Flags set after V8 started apply to what runs afterwards (https://nodejs.org/api/v8.html#v8setflagsfromstringflags).
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flags this module sets, each as `--name` (or `--no-name`). */
export const GATEWAY_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

/** The flag's name without `--`/`--no-` and with `_` read as `-` (V8 accepts both spellings). */
function flagName(flag: string): string {
  return flag.replace(/^--(no-?)?/, '').split('=')[0]!.replaceAll('_', '-');
}

/**
 * The flags of {@link GATEWAY_V8_FLAGS} not already given in `execArgv` or `nodeOptions`
 * (either polarity), i.e. the ones {@link applyV8Tuning} sets.
 */
export function v8FlagsToApply(execArgv: readonly string[], nodeOptions: string): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName));
  return GATEWAY_V8_FLAGS.filter((f) => !given.has(flagName(f)));
}

/** Sets the flags of {@link v8FlagsToApply} for this process; returns them. */
export function applyV8Tuning(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'] ?? ''): string[] {
  const flags = v8FlagsToApply(execArgv, nodeOptions);
  for (const f of flags) setFlagsFromString(f);
  return flags;
}

applyV8Tuning();
