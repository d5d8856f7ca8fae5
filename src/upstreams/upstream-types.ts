/**
 * The data shapes of an upstream connection: catalogue entries, per-call options, the cancel hook
 * and the lifecycle announcements. Re-exported by `upstream.ts`, which stays the module other
 * folders import; the shapes that name the `Upstream` class itself (`CancelScope`,
 * `UpstreamCallOptions`) are declared there on top of these.
 */
import type { JSONRPCMessage, Progress } from '@modelcontextprotocol/sdk/types.js';

export type JsonObject = Record<string, unknown>;

/** The catalogue of one upstream, as its server listed it. */
export interface Catalogue {
  tools: JsonObject[];
  resources: JsonObject[];
  resourceTemplates: JsonObject[];
  prompts: JsonObject[];
}

export type CatalogueKind = 'tools' | 'resources' | 'prompts';

/** Extra data the SDK hands a server→client request handler (signal aborts on upstream cancel). */
export interface ServerRequestExtra {
  readonly signal: AbortSignal;
  readonly sendNotification: (n: { method: string; params?: JsonObject }) => Promise<void>;
}

/**
 * Lets a caller cancel a request in flight without an AbortController (they are costly to create
 * on the hot path): the request sets `onCancel` while it is in flight; the caller sets `cancelled`
 * and calls it (see {@link cancelScope}).
 */
export interface CancelHook {
  cancelled: boolean;
  onCancel: ((reason: string) => void) | undefined;
}

/** Cancels `scope` once: marks it and runs the hook of the request in flight, if any. */
export function cancelScope(scope: CancelHook, reason: string): void {
  if (scope.cancelled) return;
  scope.cancelled = true;
  const hook = scope.onCancel;
  scope.onCancel = undefined;
  hook?.(reason);
}

/**
 * Where the outcome of a request goes: one object per call, in place of a Promise and the two
 * functions of its executor (an executor's `{ resolve, reject }` is one). Exactly one of the two
 * methods is called, once.
 */
export interface Completion<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

/**
 * The method key of a transport of the gateway's own (stdio, in-process) that takes a message
 * without a Promise per message (see {@link PostingTransport}). A symbol, so no transport's own
 * method of the same name (an HTTP transport's `post`) is mistaken for it.
 */
export const POST_MESSAGE: unique symbol = Symbol('tributary.postMessage');

/**
 * A transport that offers {@link POST_MESSAGE}: it queues the message and returns undefined, or
 * returns the Promise of a send that needs work first (it rejects when the message was not sent);
 * it throws when the transport cannot take the message at all (not connected).
 */
export interface PostingTransport {
  [POST_MESSAGE](message: JSONRPCMessage): Promise<void> | undefined;
}

/** Whether `transport` offers {@link POST_MESSAGE}. */
export function canPost(transport: object): transport is PostingTransport {
  return typeof (transport as Partial<PostingTransport>)[POST_MESSAGE] === 'function';
}

/** Options of one upstream request (`UpstreamCallOptions` narrows `cancel` to a `CancelScope`). */
export interface RequestOptions {
  readonly cancel?: CancelHook;
  readonly onprogress?: (p: Progress) => void;
  /** Inactivity timeout, ms (reset by each progress notification); default from the client config. */
  readonly timeout?: number;
  /**
   * A gateway control request (health check, catalogue load): it bypasses the circuit breaker and
   * the concurrency limit, and its outcome does not count towards the breaker.
   */
  readonly control?: boolean;
  /**
   * Called once when the request is handed to the transport (after the circuit breaker and the
   * wait for a concurrency slot): the end of the queue wait, e.g. for a trace span event.
   */
  readonly onDispatch?: () => void;
  /**
   * The downstream caller's client capabilities: a 2026-07-28 upstream gets them in the request
   * envelope (unless the params already carry them), so it asks only for input the caller can give.
   */
  readonly clientCapabilities?: Record<string, unknown>;
}

/**
 * How a connection ended, announced on `Upstream.lifecycle$`: `lost` when it ended on its own
 * (subprocess exit, transport closed, stdout buffer overflow); `closed` when `Upstream.close`
 * ended it (a manual close: no automatic reconnect should follow).
 */
export type UpstreamLifecycle = { readonly kind: 'lost'; readonly reason: string } | { readonly kind: 'closed'; readonly reason: string };
