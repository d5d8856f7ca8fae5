#!/usr/bin/env node
// `npm run build:leveldb`: rebuilds classic-level's native binding (LevelDB 1.20 + snappy) from the
// sources it ships, with LevelDB's SSE4.2 CRC32C switched on, on x86-64 Linux.
//
// Why: LevelDB computes a CRC32C over every byte it writes — the write-ahead log, then every table
// (https://github.com/google/leveldb/blob/main/doc/log_format.md,
// https://github.com/google/leveldb/blob/main/doc/table_format.md). Its fast path
// (`port/port_posix_sse.cc`) only exists when that file is compiled with `LEVELDB_PLATFORM_POSIX_SSE`
// and `-msse4.2`; classic-level's prebuilt linux-x64 binary is compiled without them, so it runs
// the portable table-driven CRC. On a 4 KiB tool call that was ≈ 14 % of the gateway's CPU
// (README "Storage" has the figures).
//
// What it needs, all local (nothing is downloaded): a C++ compiler, make and Python 3 (Debian:
// `apt-get install g++ make python3`), and the headers of the running Node in
// `<node prefix>/include/node` (the official Node tarballs and images and NodeSource's Debian
// package ship them; node-gyp would otherwise fetch them from nodejs.org). It uses npm's own
// node-gyp (`npm_config_node_gyp`, set by `npm run`), else the one in npm's install.
//
// The result goes to node_modules/classic-level/build/Release, which classic-level's loader
// (node-gyp-build) prefers to its prebuilt binary; `build/tributary-leveldb.json` records how it
// was built (the store logs it at open). `npm ci` replaces node_modules, so run this again after it.
// A failed build leaves no build/ behind, so the prebuilt binary stays in use. Exit code 0 on
// success or when there is nothing to do (not x86-64 Linux), 1 on failure.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MARKER = 'tributary-leveldb.json';
const CPPFLAGS = '-DLEVELDB_PLATFORM_POSIX_SSE=1';
const CXXFLAGS = '-msse4.2';

function fail(message) {
  console.error(`build:leveldb: ${message}`);
  process.exit(1);
}

function have(command, args = ['--version']) {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`build:leveldb: nothing to do on ${process.platform}-${process.arch} (LevelDB 1.20's hardware CRC32C is for x86-64; the prebuilt binary stays)`);
  process.exit(0);
}
let cpuinfo = '';
try {
  cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
} catch {
  // checked below
}
if (!/^flags\s*:.*\bsse4_2\b/m.test(cpuinfo)) fail('this CPU does not report SSE4.2 (/proc/cpuinfo flags); the build would not run here');

const classicLevel = dirname(createRequire(join(ROOT, 'package.json')).resolve('classic-level'));
const version = JSON.parse(readFileSync(join(classicLevel, 'package.json'), 'utf8')).version;

const nodedir = process.env['npm_config_nodedir'] || resolve(dirname(process.execPath), '..');
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  fail(
    `no headers of this Node (${process.version}) in ${join(nodedir, 'include', 'node')}; ` +
      'install Node from a tarball, an official image or NodeSource (they include them), or point npm_config_nodedir at a directory holding include/node',
  );
}
const missing = [
  ['c++', 'g++'],
  ['make', 'make'],
  ['python3', 'python3'],
].filter(([command]) => !have(command));
if (missing.length > 0) fail(`missing ${missing.map(([c]) => c).join(', ')}; on Debian: apt-get install -y ${missing.map(([, p]) => p).join(' ')}`);

let nodeGyp = process.env['npm_config_node_gyp'];
if (nodeGyp === undefined || nodeGyp === '' || !existsSync(nodeGyp)) {
  const npmRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  nodeGyp = join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(nodeGyp)) fail(`node-gyp not found (npm_config_node_gyp unset, nothing at ${nodeGyp}); run this through npm: npm run build:leveldb`);
}

console.log(`build:leveldb: classic-level ${version} in ${classicLevel}, Node headers from ${nodedir}, CPPFLAGS=${CPPFLAGS} CXXFLAGS=${CXXFLAGS}`);
const started = Date.now();
const env = {
  ...process.env,
  CPPFLAGS: `${process.env['CPPFLAGS'] ?? ''} ${CPPFLAGS}`.trim(),
  CXXFLAGS: `${process.env['CXXFLAGS'] ?? ''} ${CXXFLAGS}`.trim(),
};
const build = spawnSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, '--jobs=max'], { cwd: classicLevel, env, encoding: 'utf8' });
const buildDir = join(classicLevel, 'build');
const release = join(buildDir, 'Release');
const built = existsSync(release) ? readdirSync(release).filter((n) => n.endsWith('.node')) : [];
if (build.error !== undefined || build.status !== 0 || built.length === 0) {
  process.stderr.write((build.stdout ?? '') + (build.stderr ?? ''));
  rmSync(buildDir, { recursive: true, force: true });
  fail(`node-gyp rebuild failed (${build.error?.message ?? `exit ${build.status}`}); build/ removed, the prebuilt binary stays in use`);
}

// the new binary must open, write and read back a database before it is kept
const check = spawnSync(
  process.execPath,
  [
    '--input-type=module',
    '-e',
    `import { ClassicLevel } from 'classic-level';
     import { mkdtempSync, rmSync } from 'node:fs';
     import { tmpdir } from 'node:os';
     import { join } from 'node:path';
     const dir = mkdtempSync(join(tmpdir(), 'tributary-build-leveldb-'));
     try {
       const db = new ClassicLevel(dir, { valueEncoding: 'utf8' });
       const value = 'x'.repeat(100000);
       await db.put('k', value);
       await db.close();
       const again = new ClassicLevel(dir, { valueEncoding: 'utf8' });
       if ((await again.get('k')) !== value) throw new Error('read back a different value');
       await again.close();
     } finally { rmSync(dir, { recursive: true, force: true }); }`,
  ],
  { cwd: ROOT, encoding: 'utf8' },
);
if (check.status !== 0) {
  process.stderr.write((check.stdout ?? '') + (check.stderr ?? ''));
  rmSync(buildDir, { recursive: true, force: true });
  fail('the built binary failed its check (open, write, read back); build/ removed, the prebuilt binary stays in use');
}
writeFileSync(
  join(buildDir, MARKER),
  JSON.stringify({ crc32c: 'sse4.2', classic_level: version, node: process.version, cppflags: CPPFLAGS, cxxflags: CXXFLAGS, built_at: new Date().toISOString() }, null, 2) + '\n',
);
console.log(`build:leveldb: built ${join('build', 'Release', built[0])} in ${((Date.now() - started) / 1000).toFixed(1)} s; LevelDB's CRC32C runs on SSE4.2 now`);
