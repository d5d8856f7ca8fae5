/**
 * Dashboard sessions: after a sign-in with the same credentials as the API (the admin password,
 * an API key or a JWT), the browser holds only an opaque session id in an `HttpOnly`,
 * `SameSite=Strict` cookie (never the key itself, and nothing in `localStorage`). The gateway
 * keeps, per session, the {@link Principal} the credential proved, in memory: a restart signs
 * every browser out.
 *
 * Lifetime: a session ends after `idleMs` without a request, or `maxMs` after the sign-in, or
 * when its API key is revoked or expires, or its JWT expires, whichever comes first.
 * Only the SHA-256 of the session id is kept, so a memory dump does not yield usable cookies.
 *
 * Cookie attributes follow RFC 6265bis (https://datatracker.ietf.org/doc/draft-ietf-httpbis-rfc6265bis/):
 * `HttpOnly` keeps scripts from reading it, `SameSite=Strict` keeps other sites' pages from
 * sending it, `Path=/` because the dashboard calls `/api/*` and the WebSocket feeds.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Principal } from '../base/principal.js';

/** The cookie's name. */
export const UI_SESSION_COOKIE = 'tributary_ui';

/** Sessions held at once; the oldest is dropped beyond it (a sign-in flood cannot grow memory). */
const MAX_SESSIONS = 10_000;

export interface UiSessionSettings {
  /** A session ends after this long without a request, ms. */
  readonly idleMs: number;
  /** A session ends this long after the sign-in, whatever its use, ms. */
  readonly maxMs: number;
}

/** The defaults: 30 minutes idle, 12 hours at most. */
export const UI_SESSION_DEFAULTS: UiSessionSettings = { idleMs: 30 * 60_000, maxMs: 12 * 3600_000 };

/** One signed-in browser. */
export interface UiSession {
  readonly principal: Principal;
  /** When the sign-in happened, epoch ms. */
  readonly createdMs: number;
  /** Hard end: sign-in + `maxMs`, or earlier (the JWT's `exp`), epoch ms. */
  readonly endMs: number;
  /** Last request, epoch ms. */
  lastSeenMs: number;
  /** Whether the credential behind the session still holds (not revoked, not expired). */
  readonly stillValid: () => boolean;
}

/** What a caller can show of a session (no secret). */
export interface UiSessionView {
  readonly name: string;
  readonly kind: Principal['kind'];
  readonly role: Principal['role'];
  readonly tenant_id: string;
  /** When the session ends if it is not used, ISO-8601. */
  readonly expires_at: string;
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/**
 * The value of cookie `name` in a `Cookie` request header, or `''` (RFC 6265 §4.2.1:
 * `name=value` pairs separated by `; `).
 */
export function cookieValue(header: string | undefined, name: string): string {
  if (header === undefined || header === '') return '';
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq > start && eq < end && header.slice(start, eq).trim() === name) return header.slice(eq + 1, end).trim();
    start = end + 1;
  }
  return '';
}

export class UiSessionStore {
  /** sha256(session id) → session; insertion order = creation order. */
  private readonly sessions = new Map<string, UiSession>();

  constructor(
    private readonly settings: UiSessionSettings = UI_SESSION_DEFAULTS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Starts a session for `principal`; returns the session id for the cookie (256 random bits,
   * base64url). `notAfterMs` caps it (a JWT's expiry); `stillValid` is asked on every use.
   */
  create(principal: Principal, stillValid: () => boolean = () => true, notAfterMs = Infinity): string {
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next();
      if (oldest.done !== true) this.sessions.delete(oldest.value);
    }
    this.sessions.set(digest(id), { principal, createdMs: t, endMs: Math.min(t + this.settings.maxMs, notAfterMs), lastSeenMs: t, stillValid });
    return id;
  }

  /**
   * The live session with this id, its idle timer restarted; `undefined` (and the session
   * forgotten) when it is unknown, idle too long, past its end or its credential no longer holds.
   */
  touch(id: string): UiSession | undefined {
    if (id === '' || id.length > 100) return undefined;
    const key = digest(id);
    const s = this.sessions.get(key);
    if (s === undefined) return undefined;
    const t = this.now();
    if (t >= s.endMs || t - s.lastSeenMs >= this.settings.idleMs || !s.stillValid()) {
      this.sessions.delete(key);
      return undefined;
    }
    s.lastSeenMs = t;
    return s;
  }

  /** Ends the session with this id (sign-out); true when there was one. */
  end(id: string): boolean {
    return this.sessions.delete(digest(id));
  }

  /** Forgets expired sessions; returns how many. */
  sweep(): number {
    const t = this.now();
    let n = 0;
    for (const [key, s] of this.sessions) {
      if (t >= s.endMs || t - s.lastSeenMs >= this.settings.idleMs) {
        this.sessions.delete(key);
        n++;
      }
    }
    return n;
  }

  /** The public view of a session. */
  view(s: UiSession): UiSessionView {
    const p = s.principal;
    return {
      name: p.name ?? p.id,
      kind: p.kind,
      role: p.role,
      tenant_id: p.tenantId,
      expires_at: new Date(Math.min(s.endMs, s.lastSeenMs + this.settings.idleMs)).toISOString(),
    };
  }

  /**
   * The `Set-Cookie` value carrying `id`: `HttpOnly; SameSite=Strict; Path=/`, no `Max-Age` (a
   * browser-session cookie; the gateway enforces the lifetime), `Secure` when served over HTTPS.
   */
  static cookie(id: string, secure: boolean): string {
    return `${UI_SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }

  /** The `Set-Cookie` value that deletes the cookie. */
  static clearCookie(secure: boolean): string {
    return `${UI_SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
  }
}
