/**
 * Who holds a TCP port: read from Linux procfs (`/proc/net/tcp{,6}` lists listening sockets with
 * their inode; `/proc/PID/fd` links name the sockets a process holds). Used to say which process
 * stands in the way when the gateway cannot bind its port. Processes of other users cannot be
 * inspected without privileges; then only the fact that something listens is known.
 * Format of `/proc/net/tcp`: https://www.kernel.org/doc/html/latest/networking/proc_net_tcp.html
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** TCP state 0A: LISTEN (include/net/tcp_states.h). */
const TCP_LISTEN = '0A';

/** Inodes of the sockets listening on `port` (IPv4 and IPv6), from procfs; empty when unreadable. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (local === undefined || f[3] !== TCP_LISTEN) continue;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port && f[9] !== undefined) inodes.add(f[9]);
    }
  }
  return inodes;
}

/** What holds a listening TCP port. */
export interface PortHolder {
  /** Pid and command line of each process holding the socket that this user may inspect. */
  readonly processes: readonly { readonly pid: number; readonly command: string }[];
}

/**
 * Finds the processes listening on TCP `port` on this machine. Returns undefined when nothing
 * listens there (or procfs is unavailable); `processes` is empty when the holder belongs to
 * another user.
 */
export function findPortHolder(port: number): PortHolder | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const targets = new Set([...inodes].map((i) => `socket:[${i}]`));
  const processes: { pid: number; command: string }[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return { processes };
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or it ended
    }
    const holds = fds.some((fd) => {
      try {
        return targets.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let command = '?';
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch {
      // ended meanwhile
    }
    processes.push({ pid: Number(pid), command: command.length > 200 ? `${command.slice(0, 197)}...` : command });
  }
  return { processes };
}

/** One sentence naming what holds `port`, for the "cannot listen" message. */
export function describePortHolder(port: number): string {
  const holder = findPortHolder(port);
  if (!holder) return 'address in use or not permitted';
  if (holder.processes.length === 0) return 'the port is in use by another process (not one this user can inspect)';
  return `the port is in use by ${holder.processes.map((p) => `pid ${p.pid} (${p.command})`).join(', ')}`;
}
