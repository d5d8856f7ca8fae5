/**
 * The README stays true: its full config example loads, the other config fragments it shows load,
 * and every file it points to exists in the repository.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError, resolveConfig } from '../src/config/load.js';

const ROOT = join(import.meta.dirname, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The ```json blocks of the README, with the line each starts on. */
function jsonBlocks(): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const re = /^```json\n([\s\S]*?)^```/gm;
  for (let m = re.exec(README); m; m = re.exec(README)) {
    out.push({ line: README.slice(0, m.index).split('\n').length, text: m[1] ?? '' });
  }
  return out;
}

describe('README', () => {
  it('has a full config example (every section), and it loads with exactly the values it shows', () => {
    const full = jsonBlocks().find((b) => b.text.includes('"mcp_clients"') && b.text.includes('"server"'));
    expect(full, 'the full config example').toBeDefined();
    const doc = JSON.parse(full?.text ?? '{}') as { server: Record<string, unknown>; mcp_clients: unknown[] };
    const config = resolveConfig(doc, `README.md line ${full?.line}`);
    // every server field it shows is what the resolved config holds: the example shows the defaults
    const defaults = resolveConfig({}, 'defaults').server as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(doc.server)) {
      expect((config.server as unknown as Record<string, unknown>)[k], `server.${k}`).toEqual(v);
      expect(defaults[k], `server.${k} is shown with its default`).toEqual(v);
    }
    expect(config.mcp_clients.map((c) => c.name)).toEqual(['files', 'remote', 'legacy', 'demo']);
  });

  it('every config fragment it shows (top-level sections) loads', () => {
    const fragments = jsonBlocks().filter((b) => /^\s*\{\s*"(orchestration|workspaces|server|mcp_clients)"/.test(b.text));
    expect(fragments.length).toBeGreaterThanOrEqual(2);
    for (const f of fragments) {
      expect(() => resolveConfig(JSON.parse(f.text), `README.md line ${f.line}`), `README.md line ${f.line}`).not.toThrow();
    }
  });

  it('the client example of "Upstream resilience" is a valid mcp_clients entry', () => {
    const entry = jsonBlocks().find((b) => b.text.includes('"circuit_breaker"') && b.text.includes('"connection_type"'));
    expect(entry).toBeDefined();
    expect(() => resolveConfig({ mcp_clients: [JSON.parse(entry?.text ?? '{}')] }, 'README resilience example')).not.toThrow();
  });

  it('points only to files that exist in the repository', () => {
    const named = new Set<string>();
    // repository paths in backticks or at the start of a line of a code block
    for (const m of README.matchAll(/(?:^|[`\s(])((?:src|test|bench|docs|\.ci)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])/gm)) named.add(m[1] ?? '');
    // Markdown file names anywhere, and relative Markdown links
    for (const m of README.matchAll(/\b([A-Za-z0-9_./-]+\.md)\b/g)) named.add(m[1] ?? '');
    for (const m of README.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)) if (!/^[a-z]+:/.test(m[1] ?? '')) named.add(m[1] ?? '');
    expect(named.size).toBeGreaterThan(5);
    // a path the README names must be in the repository, or be output that .gitignore keeps out of it
    const ignored = (p: string): boolean => spawnSync('git', ['check-ignore', '-q', p], { cwd: ROOT }).status === 0;
    // (a directory pattern such as `bench/results/` matches the name only with its slash)
    const missing = [...named].filter((p) => !existsSync(join(ROOT, p)) && !ignored(p) && !ignored(`${p}/`));
    expect(missing).toEqual([]);
  });
});

describe('node flags', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const m = /^node((?:\s+--\S+)*)\s+dist\/main\.js$/.exec(pkg.scripts['start'] ?? '');
  const flags = (m?.[1] ?? '').trim().split(/\s+/).filter((f) => f !== '');

  it('npm start runs `node <flags> dist/main.js` with flags this Node accepts', () => {
    expect(m, `scripts.start: ${pkg.scripts['start']}`).not.toBeNull();
    expect(flags.length).toBeGreaterThan(0);
    const r = spawnSync(process.execPath, [...flags, '-e', '0'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the README’s ways of running the gateway (systemd, Docker) use the same flags', () => {
    const execStart = /^ExecStart=\/usr\/bin\/node (.*) dist\/main\.js/m.exec(README);
    expect(execStart?.[1]?.split(/\s+/)).toEqual(flags);
    const cmd = /^CMD (\[.*\])$/m.exec(README);
    expect(JSON.parse(cmd?.[1] ?? '[]')).toEqual(['node', ...flags, 'dist/main.js']);
    expect(README).toContain(`\`npm start\` runs \`node ${flags.join(' ')} dist/main.js\``);
  });
});

describe('config: unknown keys', () => {
  const problems = (doc: unknown): readonly string[] => {
    try {
      resolveConfig(doc, 'test');
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  it('are refused at any depth with their path and the nearest known key', () => {
    expect(problems({ bogus: 1 })).toEqual(['bogus: unknown key']);
    expect(problems({ server: { prot: 8080 } })).toEqual(['server.prot: unknown key (did you mean port?)']);
    expect(problems({ mcp_clients: [{ name: 'd', connection_type: 'inprocess', inprocess_server: 'demo', tool_prefx: '' }] })).toEqual([
      'mcp_clients.0.tool_prefx: unknown key (did you mean tool_prefix?)',
    ]);
    expect(problems({ mcp_clients: [{ name: 'f', connection_type: 'stdio', stdio_config: { command: 'node', arg: [] }, reconnect: { inital_ms: 5 } }] })).toEqual([
      'mcp_clients.0.stdio_config.arg: unknown key (did you mean args?)',
      'mcp_clients.0.reconnect.inital_ms: unknown key (did you mean initial_ms?)',
    ]);
    expect(problems({ auth: { jwt: { hs256_secret: 'x'.repeat(32), isuer: 'me' } } })).toEqual(['auth.jwt.isuer: unknown key (did you mean issuer?)']);
  });

  it('are reported together with bad values', () => {
    expect(problems({ server: { port: 'eighty', hots: 'x' } })).toEqual(['server.port: expected Port, got "eighty"', 'server.hots: unknown key (did you mean host?)']);
  });

  it('free-form maps (headers) take any key', () => {
    expect(problems({ mcp_clients: [{ name: 'r', connection_type: 'http', connection_string: 'http://127.0.0.1:1/mcp', auth_type: 'headers', headers: { 'X-Anything': 'v' } }] })).toEqual([]);
  });
});

describe('README error table', () => {
  it('lists every code of the error registry with its HTTP status and JSON-RPC code, and nothing else', async () => {
    const { ERRORS } = await import('../src/base/errors.js');
    const rows = new Map<string, { http: number; rpc: number }>();
    for (const m of README.matchAll(/^\| `([A-Z_]+)` \| (\d+) \| (-\d+) \|/gm)) rows.set(m[1] ?? '', { http: Number(m[2]), rpc: Number(m[3]) });
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(Object.entries(ERRORS).map(([k, v]) => [k, { http: v.http, rpc: v.rpc }])));
  });

  it('session not found and upstream timeout have distinct JSON-RPC codes', async () => {
    const { ERRORS } = await import('../src/base/errors.js');
    expect(ERRORS.SESSION_NOT_FOUND.rpc).not.toBe(ERRORS.UPSTREAM_TIMEOUT.rpc);
  });
});
