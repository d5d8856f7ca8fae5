/**
 * Dashboard sessions in the access check: a request with no API credential but a valid session
 * cookie is admitted as the principal that signed in (same route rules, role checks and rate
 * limits as that credential on the API). Requests that change state or open a WebSocket with the
 * cookie must come from the gateway's own origin: `Origin` present and naming the `Host` the
 * request was sent to (OWASP CSRF cheat sheet, "Verifying Origin With Standard Headers",
 * https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html;
 * for WebSockets, RFC 6455 §10.2). `SameSite=Strict` already keeps other sites from sending the
 * cookie; the Origin check is the second lock.
 */
import { ruleFor, type AccessGate } from '../../auth/gate.js';
import { cookieValue, UI_SESSION_COOKIE, type UiSessionStore } from '../../auth/ui-session.js';
import { GatewayError } from '../../base/errors.js';
import { jsonReply, type HttpHeaders, type HttpInput } from '../../base/http.js';
import { toAccess, type RequestAccess } from '../access.js';

const WS_PATHS = new Set(['/api/ws/events', '/api/ws/live', '/ws', '/v1/responses']);

/**
 * Whether `Origin` names the same scheme-less authority as `Host` (`http://h:p` or `https://h:p`
 * against `h:p`). An absent Origin is not same-origin.
 */
export function isSameOrigin(headers: Pick<HttpHeaders, 'origin' | 'host'>): boolean {
  const { origin, host } = headers;
  if (origin === '' || host === '') return false;
  const rest = origin.startsWith('http://') ? origin.slice(7) : origin.startsWith('https://') ? origin.slice(8) : undefined;
  return rest !== undefined && rest.toLowerCase() === host.toLowerCase();
}

/** Whether a request with the session cookie needs the same-origin check. */
export function needsOriginCheck(input: Pick<HttpInput, 'method' | 'path'>): boolean {
  const m = input.method;
  return !(m === 'GET' || m === 'HEAD' || m === 'OPTIONS') || WS_PATHS.has(input.path);
}

const crossOrigin = (): RequestAccess => ({
  reject: jsonReply(403, new GatewayError('FORBIDDEN', 'Cross-origin request with the dashboard session cookie refused: Origin must name this gateway').toRest()),
  headers: [],
});

/**
 * Wraps the per-request check `base` (API credentials, see `handlers/access.ts`) so a dashboard
 * session cookie counts as a credential. A request carrying an API credential is decided by
 * `base` alone; an unknown or expired cookie falls through to it too (401 as without one).
 */
export function withUiSessions(
  base: (input: HttpInput) => RequestAccess | Promise<RequestAccess>,
  gate: AccessGate,
  sessions: UiSessionStore,
  metricsRequireAuth: boolean,
): (input: HttpInput) => RequestAccess | Promise<RequestAccess> {
  return (input) => {
    const h = input.headers;
    if (!gate.enabled || h.cookie === undefined || h.cookie === '' || h.authorization !== '' || h.apiKey !== '' || h.virtualKey !== '') return base(input);
    const id = cookieValue(h.cookie, UI_SESSION_COOKIE);
    const session = id === '' ? undefined : sessions.touch(id);
    if (session === undefined) return base(input);
    if (needsOriginCheck(input) && !isSameOrigin(h)) return crossOrigin();
    const d = gate.admitPrincipal(session.principal, h, ruleFor(input.method, input.path, metricsRequireAuth));
    return d instanceof Promise ? d.then((x) => toAccess(input.path, x)) : toAccess(input.path, d);
  };
}
