#!/usr/bin/env node
// `npm start`'s prestart: compiles src/ to dist/ (`tsc -b tsconfig.build.json`) only when a source
// or a tsconfig is newer than the last build, or there is no build. Loading TypeScript just to
// learn that nothing changed costs ≈ 0.5–1 s on every start; comparing modification times costs a
// few milliseconds. A build that finds nothing to emit still touches its .tsbuildinfo (tsc's
// "updating output timestamps"), so an edit that changed nothing is checked by tsc once only.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const BUILD_INFO = 'tsconfig.build.tsbuildinfo';
const INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];

/** Newest modification time (ms) of the files under `dir`, or of `dir` if it is a file; 0 if absent. */
function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs; // a deleted file changes its directory's mtime
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

const built = mtime(BUILD_INFO);
const stale = built === undefined || mtime(join('dist', 'main.js')) === undefined || Math.max(newest('src'), ...INPUTS.map(newest)) > built;
if (stale) {
  const r = spawnSync('npx', ['tsc', '-b', 'tsconfig.build.json'], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
