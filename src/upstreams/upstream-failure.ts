/**
 * How an upstream connection failed or ended, in words for logs, errors and the management API,
 * and the wait for a closed stdio subprocess to be reaped.
 */
import type { ChildProcess } from 'node:child_process';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GroupStdioTransport } from './stdio-transport.js';

/** Longest wait for a closed stdio subprocess to exit, ms (after the SDK's own 2 s + 2 s escalation). */
export const EXIT_WAIT_MS = 2000;

/** The subprocess of a stdio transport while it runs; undefined for other transports. */
export function stdioChild(transport: Transport | undefined): ChildProcess | undefined {
  return transport instanceof GroupStdioTransport ? transport.child : undefined;
}

/**
 * Whether `message` survives `JSON.stringify`, which every serialising transport runs (stdio:
 * the SDK's `serializeMessage`, HTTP: the request body). Checked only after a send failed, to tell
 * a message the gateway could not serialise (stack overflow on deep nesting, a bigint, a cycle)
 * from a failure of the upstream or its connection.
 */
export function serializable(message: JSONRPCRequest): boolean {
  try {
    JSON.stringify(message);
    return true;
  } catch {
    return false;
  }
}

/**
 * A one-line reason for a failed connect or a lost connection: for a stdio upstream that has
 * ended, how it ended and its last stderr lines (what `Connection closed` or `write EPIPE` would
 * hide); otherwise the error's message followed by its `cause` chain, so `fetch failed` becomes
 * `fetch failed: connect ECONNREFUSED 127.0.0.1:9`
 * (undici's error causes: https://undici.nodejs.org/#/docs/api/Errors).
 */
export function describeFailure(err: unknown, transport: Transport | undefined): string {
  const exit = transport instanceof GroupStdioTransport ? transport.describeExit() : undefined;
  if (exit !== undefined) return exit;
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const message = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: unknown }).code;
    // the SDK's StreamableHTTPError and SseError carry the HTTP status as a numeric `code`
    const suffix = typeof code === 'string' && !message.includes(code) ? ` (${code})` : typeof code === 'number' && code >= 100 && code <= 599 ? ` (HTTP ${code})` : '';
    const text = `${message}${suffix}`;
    if (text !== '' && !parts.some((p) => p.includes(text))) parts.push(text);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ') || 'unknown error';
}

/**
 * Resolves once `proc` has exited — Node has reaped it by then, so no zombie is left — or after
 * `ms`. The SDK's close sends SIGKILL as its last step without waiting for the exit.
 */
export async function waitForExit(proc: ChildProcess, ms: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Describes how a stdio subprocess ended ("exited with code 3; stderr: ...", "killed by
 * SIGKILL"); undefined for other transports or while it runs.
 */
export function stdioExitDescriber(transport: Transport): (() => string | undefined) | undefined {
  return transport instanceof GroupStdioTransport ? () => transport.describeExit() : undefined;
}
