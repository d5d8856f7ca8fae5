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
 *
 * It also carries the trace context of a traced request to the HTTP layer: a JSON-RPC body whose
 * `_meta` holds `traceparent` (and `tracestate`) is sent with the same W3C Trace Context headers
 * (https://www.w3.org/TR/trace-context/), so an upstream that traces HTTP joins the trace too.
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
      return await fetch(url, { ...init, signal, ...traceHeaders(init) });
    } finally {
      clearTimeout(timer);
    }
  };
}

const TRACEPARENT = /"traceparent":"([0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})"/;
const TRACESTATE = /"tracestate":"([^"\\]{1,512})"/;

/** `{headers}` with `traceparent`/`tracestate` from a JSON body's `_meta`; `{}` when there are none. */
function traceHeaders(init: RequestInit | undefined): { headers?: Headers } {
  const body = init?.body;
  if (typeof body !== 'string' || !body.includes('"traceparent":"')) return {};
  const parent = TRACEPARENT.exec(body)?.[1];
  if (parent === undefined) return {};
  const headers = new Headers(init?.headers);
  headers.set('traceparent', parent);
  const state = TRACESTATE.exec(body)?.[1];
  if (state !== undefined) headers.set('tracestate', state);
  return { headers };
}
