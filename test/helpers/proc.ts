/** Process helpers for tests (Linux /proc). */
import { readFileSync, readdirSync } from 'node:fs';

/** Pids whose parent is `parent`, optionally only those whose command line contains `needle`. */
export function childPids(parent: number, needle?: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      if (needle !== undefined && !readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) continue;
      out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** Whether a process exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
