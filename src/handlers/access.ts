/**
 * Access control as the server sees it: turns the {@link AccessGate}'s decisions into
 * reply effects. A refusal on `/mcp` is a JSON-RPC error body (what MCP clients parse); everywhere
 * else the REST body `{"error","code","details"}`. Both carry the gate's headers
 * (`WWW-Authenticate` on 401, `Retry-After` and `X-RateLimit-*` on 429).
 */
import type { RequestAuth } from '../base/access.js';
import { ruleFor, type AccessGate, type GateDecision } from '../auth/gate.js';
import type { GatewayError } from '../base/errors.js';
import { jsonReply, type HeaderList, type HttpEffect, type HttpInput } from '../base/http.js';

/** The server's view of a decision: `reject` is answered as is, else `auth` goes on the input. */
export interface RequestAccess {
  readonly auth?: RequestAuth;
  readonly reject?: HttpEffect;
  readonly headers: HeaderList;
}

function refusal(path: string, error: GatewayError, headers: HeaderList): HttpEffect {
  const body = path === '/mcp' ? { jsonrpc: '2.0', id: null, error: error.toJsonRpc() } : error.toRest();
  return jsonReply(error.status, body, [['Content-Type', 'application/json'], ...headers]);
}

/** A gate decision as the server's {@link RequestAccess}: refusals become reply effects. */
export function toAccess(path: string, d: GateDecision): RequestAccess {
  if (d.ok) return d;
  return { reject: refusal(path, d.error, []), headers: d.headers };
}

/**
 * The per-request check for HTTP routes and WebSocket upgrades: the route's rule
 * ({@link ruleFor}), then {@link AccessGate.admit}. Synchronous when the gate is.
 */
export function accessCheck(gate: AccessGate, metricsRequireAuth: boolean): (input: HttpInput) => RequestAccess | Promise<RequestAccess> {
  return (input) => {
    const d = gate.admit(input.headers, ruleFor(input.method, input.path, metricsRequireAuth));
    return d instanceof Promise ? d.then((x) => toAccess(input.path, x)) : toAccess(input.path, d);
  };
}

/**
 * The per-message re-check of WebSocket connections ({@link AccessGate.revalidate}): the current
 * auth, or the error of a credential that ended.
 */
export function credentialCheck(gate: AccessGate): (auth: RequestAuth, nowMs: number) => RequestAuth | GatewayError {
  return (auth, nowMs) => {
    const r = gate.revalidate(auth, nowMs);
    return 'principal' in r ? r : r.error;
  };
}

/** The per-message check of WebSocket connections: resolves the error of a refused message. */
export function messageCheck(gate: AccessGate): (auth: RequestAuth) => Promise<GatewayError | undefined> {
  return async (auth) => (await gate.admitMessage(auth))?.error;
}
