/**
 * The dashboard's sign-in (`/api/ui/session`): the same credentials as the API, exchanged for a
 * short-lived session cookie (see `auth/ui-session.ts`).
 *
 * - `GET` → `{auth_enabled, session}`: `session` is `null` when the browser is not signed in
 *   (200, so a page load logs no failed request), the anonymous admin when auth is off.
 * - `POST {password, username?}` (the admin user; `username` defaults to the configured one) or
 *   `{key}` (an API key or a JWT) → 200 with `Set-Cookie` and the session view; 401 with the
 *   gate's reason for a bad credential, 429 while failed logins from the address are throttled,
 *   403 for a virtual key (they only call tools) or a cross-origin form, 400 for a bad body.
 * - `DELETE` → the session ends and the cookie is cleared.
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import type { AccessGate, Credentials } from '../../auth/gate.js';
import type { KeyRegistry } from '../../auth/keys.js';
import type { Principal } from '../../base/principal.js';
import { cookieValue, UI_SESSION_COOKIE, UiSessionStore } from '../../auth/ui-session.js';
import { GatewayError } from '../../base/errors.js';
import { formatIoTsErrors } from '../../base/io-ts-errors.js';
import type { Logger } from '../../log/logger.js';
import type { RestReply, RestRequest, RestRouter } from '../rest/router.js';
import { isSameOrigin } from './access.js';

/** `POST /api/ui/session` body: exactly one of `password` (with optional `username`) or `key`. */
export const SignInBody = t.union([
  t.exact(t.intersection([t.type({ password: t.string }), t.partial({ username: t.string })])),
  t.exact(t.type({ key: t.string })),
]);

const MAX_FIELD_CHARS = 8192;

export interface UiSessionDeps {
  readonly gate: AccessGate;
  readonly sessions: UiSessionStore;
  readonly keys: KeyRegistry;
  /** The configured admin user name (the default `username`). */
  readonly adminUser: string | undefined;
  readonly log: Logger;
  readonly now?: () => number;
}

/** The `exp` of a JWT's payload in ms (already verified by the gate), or Infinity. */
function jwtExpiryMs(token: string): number {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return Infinity;
  try {
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : Infinity;
  } catch {
    return Infinity;
  }
}

export class UiSessionHandler {
  private readonly now: () => number;

  constructor(private readonly deps: UiSessionDeps) {
    this.now = deps.now ?? Date.now;
  }

  register(router: RestRouter): void {
    /** The session cookie, and `Origin`/`Host` (same-origin checks, the cookie's `Secure` flag). */
    const SESSION_HEADERS = ['cookie', 'origin', 'host'] as const;
    router
      .on('GET', '/api/ui/session', (r) => this.current(r), {
        summary: 'The dashboard session of this browser (null when not signed in)',
        tag: 'dashboard',
        access: 'open',
        headers: SESSION_HEADERS,
        responses: { 200: { description: '`{auth_enabled, session: {name, kind, role, tenant_id, expires_at} | null}`', schema: { type: 'object', required: ['auth_enabled', 'session'] } } },
      })
      .on('POST', '/api/ui/session', (r) => this.signIn(r), {
        summary: 'Sign in to the dashboard with the admin password or an API key; sets an HttpOnly session cookie',
        tag: 'dashboard',
        access: 'open',
        // the address: failed sign-ins are throttled per address
        headers: [...SESSION_HEADERS, 'remoteAddress'],
        body: SignInBody,
        responses: {
          200: { description: '`{auth_enabled, session}` and `Set-Cookie`' },
          400: { description: 'Invalid body' },
          401: { description: 'Wrong password or unknown key (`details.reason`)' },
          403: { description: 'A virtual key, or a cross-origin form' },
          429: { description: 'Too many failed logins from this address' },
        },
      })
      .on('DELETE', '/api/ui/session', (r) => this.signOut(r), {
        summary: 'Sign out of the dashboard (clears the cookie)',
        tag: 'dashboard',
        access: 'open',
        headers: SESSION_HEADERS,
        responses: { 200: { description: '`{status:"signed_out"}`' } },
      });
  }

  private secure(req: RestRequest): boolean {
    return req.input.headers.origin.startsWith('https://');
  }

  current(req: RestRequest): RestReply {
    const { gate, sessions } = this.deps;
    if (!gate.enabled) return { status: 200, body: { auth_enabled: false, session: { name: 'anonymous', kind: 'anonymous', role: 'admin', tenant_id: 'default', expires_at: null } } };
    const s = sessions.touch(cookieValue(req.input.headers.cookie, UI_SESSION_COOKIE));
    return { status: 200, body: { auth_enabled: true, session: s === undefined ? null : sessions.view(s) } };
  }

  async signIn(req: RestRequest): Promise<RestReply> {
    const { gate, sessions } = this.deps;
    if (!gate.enabled) return this.current(req);
    // a sign-in form posted from another site must not log the browser in (login CSRF)
    if (!isSameOrigin(req.input.headers)) throw new GatewayError('FORBIDDEN', 'Sign-in must come from the dashboard itself: Origin must name this gateway');
    const decoded = SignInBody.decode(req.body);
    if (isLeft(decoded)) {
      throw new GatewayError('VALIDATION_ERROR', 'Send {"password": "...", "username"?: "..."} or {"key": "..."}', { problems: formatIoTsErrors(decoded.left) });
    }
    const body = decoded.right;
    const secret = 'key' in body ? body.key : body.password;
    if (secret === '') throw new GatewayError('VALIDATION_ERROR', 'key' in body ? 'key is empty' : 'password is empty', { problems: ['key' in body ? 'key: empty' : 'password: empty'] });
    if (secret.length > MAX_FIELD_CHARS) throw new GatewayError('VALIDATION_ERROR', 'credential too long', { problems: [`${'key' in body ? 'key' : 'password'}: over ${MAX_FIELD_CHARS} characters`] });
    const h = req.input.headers;
    const authorization =
      'key' in body ? `Bearer ${body.key}` : `Basic ${Buffer.from(`${body.username ?? this.deps.adminUser ?? 'admin'}:${body.password}`).toString('base64')}`;
    const c: Credentials = { authorization, apiKey: '', virtualKey: '', includeClients: '', includeTools: '', remoteAddress: h.remoteAddress };
    const r = await gate.authenticate(c);
    if (!r.ok) {
      const e = r.error.toRest();
      return { status: r.error.status, body: e, headers: r.headers.filter(([k]) => k !== 'WWW-Authenticate') };
    }
    const p = r.principal;
    if (p.kind === 'virtual_key') throw new GatewayError('FORBIDDEN', 'Virtual keys only call tools (/mcp, /ws, tool execution); sign in with an API key or the admin password', { principal: p.id });
    const id = sessions.create(p, this.validity(p), 'key' in body ? jwtExpiryMs(body.key) : Infinity);
    const s = sessions.touch(id);
    this.deps.log.info('dashboard sign-in', { principal: p.id, role: p.role, tenant: p.tenantId });
    return { status: 200, body: { auth_enabled: true, session: s === undefined ? null : sessions.view(s) }, headers: [['Set-Cookie', UiSessionStore.cookie(id, this.secure(req))]] };
  }

  signOut(req: RestRequest): RestReply {
    const id = cookieValue(req.input.headers.cookie, UI_SESSION_COOKIE);
    if (id !== '') this.deps.sessions.end(id);
    return { status: 200, body: { status: 'signed_out' }, headers: [['Set-Cookie', UiSessionStore.clearCookie(this.secure(req))]] };
  }

  /** For an API key: the session ends when the key is revoked or expires. */
  private validity(p: Principal): () => boolean {
    if (p.kind !== 'api_key') return () => true;
    const keyId = p.id.slice('key:'.length);
    return () => {
      const k = this.deps.keys.get('api_key', keyId);
      return k !== undefined && k.revoked_at === undefined && (k.expires_at === undefined || Date.parse(k.expires_at) > this.now());
    };
  }
}
