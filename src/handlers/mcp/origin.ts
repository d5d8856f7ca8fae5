/**
 * `Origin` allow-list against DNS rebinding (MCP spec 2025-06-18, "Security Warning" under
 * Streamable HTTP: servers MUST validate the Origin header). Loopback origins are always allowed;
 * configured entries match exactly, with `:*` matching any port, and `*` allowing every origin.
 */
const LOOPBACK = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

/** Whether a request with this non-empty `Origin` may proceed. */
export function isOriginAllowed(origin: string, allowed: readonly string[]): boolean {
  if (LOOPBACK.test(origin)) return true;
  for (const entry of allowed) {
    if (entry === '*' || entry === origin) return true;
    if (entry.endsWith(':*')) {
      const base = entry.slice(0, -2);
      if (origin === base || (origin.startsWith(base + ':') && /^\d+$/.test(origin.slice(base.length + 1)))) return true;
    }
  }
  return false;
}
