// Shared helpers of the dashboard: JSON requests with the API's error shape, the event feed,
// formatting. Everything talks to this gateway only (same origin; the CSP allows nothing else).
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

/** An API error: `message`, HTTP `status`, the registry `code` and `details` ({problems: [...]}) */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.details = (body && body.details) || {};
  }
}

const listeners = new Set();
/** Called with the status when a request is refused with 401 (the session ended). */
export function onUnauthorized(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** `method path` with an optional JSON body; resolves the parsed JSON, rejects with ApiError. */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text };
    }
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/api/ui/session')) for (const fn of listeners) fn(res.status);
    throw new ApiError(res.status, data);
  }
  return data;
}

/**
 * Field errors of an API validation error: `details.problems` lines such as
 * `name: expected ClientName, got "1bad"` or `stdio_config.command: ...`, by top-level field.
 */
export function fieldErrors(err) {
  const out = {};
  const problems = (err && err.details && err.details.problems) || [];
  for (const p of problems) {
    const m = /^([A-Za-z0-9_]+)[.:[]/.exec(p);
    const key = m ? m[1] : '_';
    out[key] = out[key] ? `${out[key]}; ${p}` : p;
  }
  return out;
}

/** `ws://host/path` of this page's origin. */
export function wsUrl(path) {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleTimeString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

export function fmtNum(n, digits = 1) {
  if (n === null || n === undefined || !isFinite(n)) return '–';
  return Math.abs(n) >= 100 ? Math.round(n).toLocaleString() : n.toFixed(digits);
}

/** A small pill for a state word (`connected`, `open`, `success`, ...). */
export function Badge({ value }) {
  return html`<span class=${`badge b-${String(value).replace(/[^a-z_]/gi, '')}`}>${value}</span>`;
}

/** An error message box for an ApiError or Error (with the code when there is one). */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">${error.code ? html`<b>${error.code}</b> ` : ''}${error.message}</div>`;
}

export function Json({ value }) {
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}
