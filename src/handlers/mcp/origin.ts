/**
 * `Origin` allow-list against DNS rebinding (MCP spec 2025-06-18, "Security Warning" under
 * Streamable HTTP: servers MUST validate the Origin header). Loopback origins are always allowed;
 * configured entries match exactly, with `:*` matching any port, and `*` allowing every origin.
 */
const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

/**
 * `Host` check against DNS rebinding for a gateway bound to loopback: the Host must name a
 * loopback address or be listed in `allowed` (exact, or `name:*` for any port). With `enforce`
 * false (bound to a routable address and no list configured) every Host passes.
 */
export function isHostAllowed(host: string, allowed: readonly string[], enforce: boolean): boolean {
  if (!enforce || host === '' || LOOPBACK_HOST.test(host)) return true;
  for (const entry of allowed) {
    if (entry === '*' || entry.toLowerCase() === host.toLowerCase()) return true;
    if (entry.endsWith(':*') && host.toLowerCase().startsWith(entry.slice(0, -1).toLowerCase())) return true;
  }
  return false;
}

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
