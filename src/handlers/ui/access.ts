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
import { ruleOf, type AccessGate, type GateDecision } from '../../auth/gate.js';
import { cookieValue, UI_SESSION_COOKIE, type UiSessionStore } from '../../auth/ui-session.js';
import { GatewayError } from '../../base/errors.js';
import { jsonReply, type HeaderField, type HttpHeaders, type HttpInput } from '../../base/http.js';
import { ROUTE_ACCESS, type AccessCheck, type AccessDecision } from '../../base/routes.js';
import { toAccess } from '../access.js';
import { WS_ROUTES } from '../server-routes.js';

/** The WebSocket upgrades: a cross-site page can open them with the cookie, so they are checked like writes (RFC 6455 §10.2). */
const WS_PATHS: ReadonlySet<string> = new Set(Object.values(WS_ROUTES).map((r) => r.path));

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

const crossOrigin = (): AccessDecision => ({
  reject: jsonReply(403, new GatewayError('FORBIDDEN', 'Cross-origin request with the dashboard session cookie refused: Origin must name this gateway').toRest()),
  headers: [],
});

/** What the session check reads on every route, besides what `base` reads. */
const SESSION_HEADERS: readonly HeaderField[] = ['cookie', 'origin', 'host', 'authorization', 'apiKey', 'virtualKey'];

/**
 * Wraps the per-request check `base` (API credentials, see `handlers/access.ts`) so a dashboard
 * session cookie counts as a credential. A request carrying an API credential is decided by
 * `base` alone; an unknown or expired cookie falls through to it too (401 as without one). With
 * auth on, reads the cookie, `Origin` and `Host` on every route (a cross-origin request with the
 * cookie is refused even on open routes).
 */
export function withUiSessions(base: AccessCheck, gate: AccessGate, sessions: UiSessionStore, metricsRequireAuth: boolean): AccessCheck {
  const headers = new Map(ROUTE_ACCESS.map((a) => [a, [...new Set([...base.headersFor(a), ...SESSION_HEADERS])]]));
  return {
    // with auth off the cookie is no credential: only what `base` reads
    headersFor: (access) => (gate.enabled ? (headers.get(access) ?? SESSION_HEADERS) : base.headersFor(access)),
    check: (input, access, errors) => {
      const h = input.headers;
      if (!gate.enabled || h.cookie === undefined || h.cookie === '' || h.authorization !== '' || h.apiKey !== '' || h.virtualKey !== '') return base.check(input, access, errors);
      const id = cookieValue(h.cookie, UI_SESSION_COOKIE);
      const session = id === '' ? undefined : sessions.touch(id);
      if (session === undefined) return base.check(input, access, errors);
      if (needsOriginCheck(input) && !isSameOrigin(h)) return crossOrigin();
      const d = gate.admitPrincipal(session.principal, h, ruleOf(access, metricsRequireAuth));
      // the admission remembers the session, so its sockets can be closed when it ends (sign-out)
      const tag = (x: GateDecision): AccessDecision => (x.ok ? toAccess(errors, { ...x, auth: { ...x.auth, uiSession: session.key } }) : toAccess(errors, x));
      return d instanceof Promise ? d.then(tag) : tag(d);
    },
  };
}
