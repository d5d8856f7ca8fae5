/**
 * Access control as the server sees it: turns the {@link AccessGate}'s decisions into
 * reply effects. A refusal on a route whose errors are JSON-RPC (`/mcp`: what MCP clients parse)
 * is a JSON-RPC error body; everywhere else the REST body `{"error","code","details"}`. Both carry the gate's headers
 * (`WWW-Authenticate` on 401, `Retry-After` and `X-RateLimit-*` on 429).
 */
import type { RequestAuth } from '../base/access.js';
import { ruleOf, type AccessGate, type GateDecision } from '../auth/gate.js';
import type { GatewayError } from '../base/errors.js';
import { CREDENTIAL_HEADERS, jsonReply, type HeaderField, type HeaderList, type HttpEffect } from '../base/http.js';
import { ROUTE_ACCESS, type AccessCheck, type AccessDecision } from '../base/routes.js';

function refusal(errors: 'json-rpc' | 'rest', error: GatewayError, headers: HeaderList): HttpEffect {
  const body = errors === 'json-rpc' ? { jsonrpc: '2.0', id: null, error: error.toJsonRpc() } : error.toRest();
  return jsonReply(error.status, body, [['Content-Type', 'application/json'], ...headers]);
}

/** A gate decision as the server's {@link AccessDecision}: refusals become reply effects written as `errors` says. */
export function toAccess(errors: 'json-rpc' | 'rest', d: GateDecision): AccessDecision {
  if (d.ok) return d;
  return { reject: refusal(errors, d.error, []), headers: d.headers };
}

const INCLUDE_HEADERS: readonly HeaderField[] = ['includeClients', 'includeTools'];
const NONE: readonly HeaderField[] = [];

/**
 * The per-request check for HTTP routes and WebSocket upgrades: the rule of the route's declared
 * access ({@link ruleOf}), then {@link AccessGate.admit}. Synchronous when the gate is. Reads the
 * credential headers on routes that need a credential; with auth off only the include headers
 * (they narrow the tools even then); nothing on open routes.
 */
export function accessCheck(gate: AccessGate, metricsRequireAuth: boolean): AccessCheck {
  const rules = new Map(ROUTE_ACCESS.map((a) => [a, ruleOf(a, metricsRequireAuth)]));
  return {
    headersFor: (access) => ((rules.get(access) ?? ruleOf(access, metricsRequireAuth)).need === 'open' ? NONE : gate.enabled ? CREDENTIAL_HEADERS : INCLUDE_HEADERS),
    check: (input, access, errors) => {
      const d = gate.admit(input.headers, rules.get(access) ?? ruleOf(access, metricsRequireAuth));
      return d instanceof Promise ? d.then((x) => toAccess(errors, x)) : toAccess(errors, d);
    },
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
