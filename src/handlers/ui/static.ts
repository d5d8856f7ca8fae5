/**
 * The dashboard's static files at `/ui`: the app from the repository's `ui/` folder and its
 * libraries (Preact, htm, uPlot) from `node_modules`, read once at start and held in memory with
 * their gzip form (zlib, level 9) and a strong ETag (the SHA-256 of the bytes).
 *
 * - `Cache-Control: no-cache` with `ETag`: the browser keeps the files and revalidates each load
 *   (`If-None-Match` → 304 with no body), so a gateway upgrade is never served stale
 *   (RFC 9111 §5.2.2.4, RFC 9110 §13.1.2).
 * - `Content-Encoding: gzip` when `Accept-Encoding` allows it, `Vary: Accept-Encoding`.
 * - A strict Content-Security-Policy on every file: scripts, styles and connections only from
 *   the gateway itself (`'self'`, which covers its own `ws:`/`wss:` in CSP Level 3), no inline
 *   scripts except the import map (allowed by its SHA-256), no framing, no plugins
 *   (https://www.w3.org/TR/CSP3/). Nothing is fetched from another origin.
 * - The page resolves the bare specifier `preact` (imported by `preact/hooks`) through an import
 *   map (https://html.spec.whatwg.org/multipage/webappapis.html#import-maps).
 * - `/ui`, `/ui/` and any `/ui/...` path without a file extension serve `index.html` (the app
 *   routes with the URL fragment, so reloads and bookmarks work); an unknown file is 404.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** One file as served. */
interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer | undefined;
  readonly etag: string;
}

/** What the server writes for a static request. */
export interface StaticReply {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  /** Empty for HEAD, 304 and errors without a body. */
  readonly body: Buffer | string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** The libraries served under `/ui/vendor/`: served name → module path inside `node_modules`. */
export const VENDOR_FILES: Readonly<Record<string, string>> = {
  'preact.module.js': 'preact/dist/preact.module.js',
  'hooks.module.js': 'preact/hooks/dist/hooks.module.js',
  'htm.module.js': 'htm/dist/htm.module.js',
  'uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

const IMPORT_MAP = JSON.stringify({
  imports: { preact: '/ui/vendor/preact.module.js', 'preact/hooks': '/ui/vendor/hooks.module.js', htm: '/ui/vendor/htm.module.js' },
});

/** The repository's `ui/` folder, next to `src/` (and to `dist/` in a build). */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

function asset(type: string, body: Buffer): Asset {
  const compressible = !type.startsWith('image/png');
  const gz = compressible ? gzipSync(body, { level: 9 }) : undefined;
  return {
    type,
    body,
    gzip: gz !== undefined && gz.length < body.length ? gz : undefined,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  };
}

function walk(dir: string, prefix: string, out: Map<string, Buffer>): void {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, `${prefix}${name}/`, out);
    else out.set(`${prefix}${name}`, readFileSync(full));
  }
}

/**
 * The path of `pkg/file` in the nearest `node_modules` that holds `pkg` (Node's lookup order),
 * read directly: the packages' `exports` maps do not list their dist files.
 * @throws Error when the package is not installed.
 */
function packageFile(modulePath: string): string {
  const pkg = modulePath.split('/')[0] ?? modulePath;
  const require = createRequire(import.meta.url);
  for (const dir of require.resolve.paths(pkg) ?? []) {
    const full = join(dir, modulePath);
    if (existsSync(full)) return full;
  }
  throw new Error(`dashboard: ${modulePath} not found in node_modules (npm ci installs it)`);
}

/** Sizes of what is served, bytes (for the README and the closing note). */
export interface AssetSize {
  readonly path: string;
  readonly bytes: number;
  readonly gzip_bytes: number;
}

export class StaticAssets {
  private readonly files = new Map<string, Asset>();
  /** The `Content-Security-Policy` header value. */
  readonly csp: string;

  /**
   * Reads every file of `uiDir` and the {@link VENDOR_FILES}. @throws Error when `uiDir` has no
   * `index.html` or its `<!-- importmap -->` marker, or a library is missing from node_modules.
   */
  constructor(uiDir: string = DEFAULT_UI_DIR) {
    const raw = new Map<string, Buffer>();
    walk(uiDir, '', raw);
    const index = raw.get('index.html');
    if (index === undefined) throw new Error(`dashboard: no index.html in ${uiDir}`);
    const marker = '<!-- importmap -->';
    const html = index.toString('utf8');
    if (!html.includes(marker)) throw new Error(`dashboard: ${uiDir}index.html lacks the ${marker} marker`);
    const mapHash = createHash('sha256').update(IMPORT_MAP).digest('base64');
    raw.set('index.html', Buffer.from(html.replace(marker, `<script type="importmap">${IMPORT_MAP}</script>`)));
    for (const [name, modulePath] of Object.entries(VENDOR_FILES)) raw.set(`vendor/${name}`, readFileSync(packageFile(modulePath)));
    for (const [path, body] of raw) {
      const type = TYPES[extname(path)];
      if (type !== undefined) this.files.set(`/ui/${path}`, asset(type, body));
    }
    this.csp = [
      "default-src 'none'",
      `script-src 'self' 'sha256-${mapHash}'`,
      "style-src 'self'",
      "img-src 'self' data:",
      "connect-src 'self'",
      "font-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
      "object-src 'none'",
    ].join('; ');
  }

  /** Every served file with its size and gzip size. */
  sizes(): AssetSize[] {
    return [...this.files].map(([path, a]) => ({ path, bytes: a.body.length, gzip_bytes: a.gzip?.length ?? a.body.length }));
  }

  /**
   * The reply to `method path`: 200 (gzip when `acceptEncoding` allows), 304 when `ifNoneMatch`
   * names the current ETag, 404 for an unknown file, 405 for methods other than GET and HEAD.
   */
  serve(method: string, path: string, acceptEncoding: string, ifNoneMatch: string): StaticReply {
    const security: [string, string][] = [
      ['Content-Security-Policy', this.csp],
      ['X-Content-Type-Options', 'nosniff'],
      ['Referrer-Policy', 'no-referrer'],
      ['X-Frame-Options', 'DENY'],
    ];
    if (method !== 'GET' && method !== 'HEAD') return { status: 405, headers: [['Allow', 'GET, HEAD'], ['Content-Type', 'text/plain; charset=utf-8'], ...security], body: 'Method not allowed' };
    const key = path === '/ui' || path === '/ui/' || (!extname(path) && path.startsWith('/ui/')) ? '/ui/index.html' : path;
    const a = this.files.get(key);
    if (a === undefined) return { status: 404, headers: [['Content-Type', 'text/plain; charset=utf-8'], ...security], body: `No file ${path}` };
    const common: [string, string][] = [['ETag', a.etag], ['Cache-Control', 'no-cache'], ['Vary', 'Accept-Encoding'], ...security];
    if (ifNoneMatch !== '' && ifNoneMatch.split(',').some((t) => t.trim() === a.etag || t.trim() === `W/${a.etag}`)) return { status: 304, headers: common, body: '' };
    const gzip = a.gzip !== undefined && /\bgzip\b/i.test(acceptEncoding);
    const body = gzip ? (a.gzip ?? a.body) : a.body;
    const headers: [string, string][] = [['Content-Type', a.type], ...common];
    if (gzip) headers.push(['Content-Encoding', 'gzip']);
    return { status: 200, headers, body: method === 'HEAD' ? '' : body };
  }
}
