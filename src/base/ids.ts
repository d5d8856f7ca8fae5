/**
 * Identifier and timestamp formats shared by the key codecs (request bodies) and the key
 * registry (which re-checks what it is given).
 */

/** Tenant ids: 1..128 of `[A-Za-z0-9_.-]`. */
export const TENANT_ID = /^[A-Za-z0-9_.-]{1,128}$/;

/** Longest key name, in characters (Unicode code points). */
export const MAX_KEY_NAME_CHARS = 128;

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-](\d{2}):(\d{2}))$/;

/**
 * `text` as ms since the epoch if it is an ISO-8601 date-time with an offset
 * (`2026-03-01T12:00:00Z`, `2026-03-01T13:00+01:00`) naming a real calendar instant; else `undefined`.
 */
export function parseIsoTimestamp(text: string): number | undefined {
  const m = ISO_8601.exec(text);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d);
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return undefined;
  if (h > 23 || mi > 59 || s > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
