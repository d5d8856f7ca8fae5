/**
 * A `fetch` for the SDK's HTTP client transports (Streamable HTTP, SSE) that gives up on a request
 * whose response headers have not arrived within a deadline.
 *
 * The SDK sends every POST with one transport-wide abort signal, so a request the gateway has
 * already timed out (and answered the caller for) keeps its socket open for as long as the
 * upstream stays silent — an upstream that accepts and never answers would collect one open
 * socket per call and per `notifications/cancelled`. With this wrapper such a request is aborted
 * once its headers are late. Once the headers arrive the deadline no longer applies: a streamed
 * (SSE) body may last as long as the call does.
 */
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

/**
 * Wraps the global `fetch`: each request is aborted when its response headers have not arrived
 * `deadlineMs()` ms after it was sent (read per request, so config changes apply), or when the
 * caller's own signal aborts. The rejection is the abort error with a reason naming the deadline.
 */
export function fetchWithHeadersDeadline(deadlineMs: () => number): FetchLike {
  return async (url, init) => {
    const ms = deadlineMs();
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`no response headers within ${ms} ms`)), ms);
    const outer = init?.signal;
    const signal = outer ? AbortSignal.any([outer, deadline.signal]) : deadline.signal;
    try {
      return await fetch(url, { ...init, signal });
    } finally {
      clearTimeout(timer);
    }
  };
}
