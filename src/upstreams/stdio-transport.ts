/**
 * The client side of MCP's stdio transport (newline-delimited JSON-RPC on the subprocess's
 * stdin/stdout, https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#stdio),
 * with the SDK's framing rules (`stdio-framing.ts`: the same line format and message shapes, cheaper
 * per message) and what the SDK's `StdioClientTransport` (1.32) does not offer:
 *
 * - The subprocess runs in its own process group (`detached: true`, i.e. `setsid`), so a
 *   terminal's Ctrl-C (SIGINT to the foreground process group) reaches only the gateway, which then
 *   drains calls and stops its upstreams itself, instead of every upstream dying under a call in
 *   flight. Stop signals go to the whole group (`kill(-pid)`), so grandchildren (an `npx` or shell
 *   wrapper's child) end too.
 * - How the process ended is kept: spawn failure (`spawn foo ENOENT`), exit code or signal, and
 *   the last lines it wrote on stderr, so a client's last error says why it is down.
 *
 * Closing follows the SDK's escalation: stdin EOF, SIGTERM after 2 s, SIGKILL after 2 s more.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcLineDecoder, encodeJsonRpcLine, type DecodedLineSink } from './stdio-framing.js';
import { POST_MESSAGE } from './upstream-types.js';

export interface StdioTransportParams {
  readonly command: string;
  readonly args: readonly string[];
  /** The whole environment of the subprocess. */
  readonly env: Record<string, string>;
  readonly cwd?: string;
  /** Called with each stderr line (at most 4000 characters). */
  readonly onStderrLine?: (line: string) => void;
}

/** How many stderr lines are kept for error messages. */
const STDERR_TAIL_LINES = 30;
/** The longest stderr excerpt in an error message, characters. */
const STDERR_EXCERPT_CHARS = 600;
/** Escalation steps of {@link GroupStdioTransport.close}, ms (as the SDK's transport). */
const CLOSE_STEP_MS = 2000;

/** Calls each of `waiters`. */
function release(waiters: readonly (() => void)[]): void {
  for (const w of waiters) w();
}

/** Sends `signal` to the process group led by `pid`, falling back to the process alone. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Picks the stderr lines that explain a failure: the last line that reads like an error (stack
 * frames skipped) and the last few lines, joined with ` | ` and cut to a few hundred characters.
 */
export function stderrExcerpt(lines: readonly string[]): string {
  // stack frames, lone brackets and Node's version footer say nothing about the cause
  const meaningful = lines.map((l) => l.trim()).filter((l) => l !== '' && !/^at\s/.test(l) && !/^[\]{}()^,;]*$/.test(l) && !/^Node\.js v\d/.test(l));
  if (meaningful.length === 0) return '';
  const tail = meaningful.slice(-3);
  const errorLine = [...meaningful].reverse().find((l) => /error|cannot|not found|fatal|exception|denied|refused|EADDRINUSE|ENOENT/i.test(l));
  const picked = errorLine !== undefined && !tail.includes(errorLine) ? [errorLine, '…', ...tail] : tail;
  const text = picked.join(' | ');
  return text.length > STDERR_EXCERPT_CHARS ? `${text.slice(0, STDERR_EXCERPT_CHARS - 1)}…` : text;
}

export class GroupStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private proc: ChildProcess | undefined;
  private readonly decoder = new JsonRpcLineDecoder();
  /**
   * Where the decoder's lines go: messages to {@link deliver}, bad lines to `onerror`; a line over
   * the read limit leaves the stream out of step, so the process is ended.
   */
  private readonly sink: DecodedLineSink = {
    message: (message) => this.deliver(message),
    invalid: (error) => this.onerror?.(error),
    overflow: (error) => {
      this.onerror?.(error);
      void this.close();
    },
  };
  private readonly tail: string[] = [];
  private spawnError: Error | undefined;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private startedPid: number | undefined;

  constructor(private readonly params: StdioTransportParams) {}

  /**
   * Spawns the subprocess in a new process group. Resolves once it is running.
   * @throws Error `cannot start stdio command "x": spawn x ENOENT` (or EACCES, ...) when it cannot be started.
   */
  start(): Promise<void> {
    if (this.proc || this.exit || this.spawnError) throw new Error('GroupStdioTransport already started');
    return new Promise((resolve, reject) => {
      const p = this.params;
      const proc = spawn(p.command, [...p.args], {
        env: p.env,
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        detached: true,
        ...(p.cwd !== undefined ? { cwd: p.cwd } : {}),
      });
      this.proc = proc;
      proc.once('error', (err) => {
        const hint = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ' (no such command or cwd; is it installed and on PATH?)' : '';
        const wrapped = new Error(`cannot start stdio command ${JSON.stringify(p.command)}: ${err.message}${hint}`);
        if (this.startedPid === undefined) {
          this.spawnError = wrapped;
          reject(wrapped);
        }
        this.onerror?.(wrapped);
      });
      proc.once('spawn', () => {
        this.startedPid = proc.pid;
        resolve();
      });
      proc.once('close', (code, signal) => {
        this.exit = { code, signal };
        this.proc = undefined;
        this.onclose?.();
      });
      proc.stdin?.on('error', (err) => this.onerror?.(err));
      proc.stdout?.on('error', (err) => this.onerror?.(err));
      proc.stdout?.on('data', (chunk: Buffer) => this.decoder.push(chunk, this.sink));
      if (proc.stderr) {
        createInterface({ input: proc.stderr }).on('line', (line) => {
          const cut = line.slice(0, 4000);
          this.tail.push(cut);
          if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
          p.onStderrLine?.(cut);
        });
      }
    });
  }

  /** Hands one message read from stdout to `onmessage` (a subclass may take some off first). */
  protected deliver(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }

  /** Pid of the subprocess (also the id of its process group) while it runs. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** The subprocess while it runs. */
  get child(): ChildProcess | undefined {
    return this.proc;
  }

  /** The last stderr lines (at most 30). */
  get stderrTail(): readonly string[] {
    return this.tail;
  }

  /**
   * How the subprocess ended, for error messages: `stdio process (pid 12) exited with code 1;
   * stderr: Error: Cannot find module '/srv/server.js' …`, the spawn failure, or undefined while
   * it runs (or before it started).
   */
  describeExit(): string | undefined {
    if (this.spawnError) return this.spawnError.message;
    if (!this.exit) return undefined;
    const who = `stdio process (pid ${this.startedPid ?? '?'})`;
    const how = this.exit.signal ? `killed by ${this.exit.signal}` : `exited with code ${this.exit.code ?? '?'}`;
    const excerpt = stderrExcerpt(this.tail);
    return `${who} ${how}${excerpt ? `; stderr: ${excerpt}` : ''}`;
  }

  /**
   * Queues `message` for the subprocess's stdin. Messages sent during one turn of the event loop
   * go out in one `write` (one pipe write and one wake-up of the upstream for a burst of calls,
   * instead of one each); the write happens at the end of the turn (`setImmediate`). Resolves
   * once the bytes are handed to the stream (after `drain` when its buffer is full); rejects when
   * the subprocess is gone.
   */
  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.proc?.stdin;
    if (!stdin || stdin.destroyed) return Promise.reject(new Error(this.describeExit() ?? 'Not connected'));
    const line = encodeJsonRpcLine(message);
    return new Promise((resolve) => {
      this.queue(line);
      this.outboxWaiters.push(resolve);
    });
  }

  /**
   * {@link send} without the Promise (see `PostingTransport`): queues `message` for the same write.
   * @throws Error when the subprocess is gone (its exit described).
   */
  [POST_MESSAGE](message: JSONRPCMessage): Promise<void> | undefined {
    const stdin = this.proc?.stdin;
    if (!stdin || stdin.destroyed) throw new Error(this.describeExit() ?? 'Not connected');
    this.queue(encodeJsonRpcLine(message));
    return undefined;
  }

  private queue(line: string): void {
    this.outbox.push(line);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushOutbox);
    }
  }

  private readonly outbox: string[] = [];
  private readonly outboxWaiters: (() => void)[] = [];
  private flushScheduled = false;

  private readonly flushOutbox = (): void => {
    this.flushScheduled = false;
    const chunk = this.outbox.length === 1 ? (this.outbox[0] as string) : this.outbox.join('');
    this.outbox.length = 0;
    // only `send` waits for its bytes: the posted messages of a busy turn need no callback
    const waiters = this.outboxWaiters.length > 0 ? this.outboxWaiters.splice(0) : undefined;
    const stdin = this.proc?.stdin;
    // a subprocess gone meanwhile: its exit is reported by the close path; the senders are released
    if (!stdin || stdin.destroyed) {
      if (waiters) release(waiters);
      return;
    }
    const flowing = stdin.write(chunk);
    if (!waiters) return;
    if (flowing) release(waiters);
    else stdin.once('drain', () => release(waiters));
  };

  /**
   * Ends the subprocess: stdin EOF; SIGTERM to its process group after 2 s; SIGKILL after 2 s
   * more. Resolves when it has exited (or after the SIGKILL). Idempotent.
   */
  async close(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });
    const wait = (): Promise<void> => Promise.race([exited, new Promise<void>((r) => setTimeout(r, CLOSE_STEP_MS).unref())]);
    try {
      proc.stdin?.end();
    } catch {
      // already closed
    }
    await wait();
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      signalGroup(proc.pid, 'SIGTERM');
      await wait();
    }
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) signalGroup(proc.pid, 'SIGKILL');
    this.decoder.clear();
  }

  /** Kills the subprocess's group at once with SIGKILL (a second Ctrl-C): synchronous, no wait. */
  kill(): void {
    const pid = this.proc?.pid;
    if (pid !== undefined) signalGroup(pid, 'SIGKILL');
  }
}
