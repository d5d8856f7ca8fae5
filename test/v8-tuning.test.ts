/**
 * The V8 settings of the gateway process (src/base/v8-tuning.ts): which flags it sets, that an
 * operator's own flag wins, that `main.ts` applies them before anything else runs, and the
 * mechanism they exist for, measured in a child process with V8's `--trace-gc-nvp`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GATEWAY_V8_FLAGS, v8FlagsToApply } from '../src/base/v8-tuning.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHURN = path.join(ROOT, 'test', 'fixtures', 'pretenuring-churn.ts');

describe('v8FlagsToApply', () => {
  it('sets --no-allocation-site-pretenuring when the operator gave nothing', () => {
    expect(GATEWAY_V8_FLAGS).toContain('--no-allocation-site-pretenuring');
    expect(v8FlagsToApply([], '')).toEqual([...GATEWAY_V8_FLAGS]);
    expect(v8FlagsToApply(['--max-semi-space-size=32', '--enable-source-maps'], '--max-old-space-size=4096')).toEqual([...GATEWAY_V8_FLAGS]);
  });

  it("leaves a flag the operator gave, in either polarity or spelling, on the command line or in NODE_OPTIONS", () => {
    expect(v8FlagsToApply(['--allocation-site-pretenuring'], '')).toEqual([]);
    expect(v8FlagsToApply(['--no-allocation-site-pretenuring'], '')).toEqual([]);
    expect(v8FlagsToApply([], '--max-semi-space-size=32 --allocation_site_pretenuring')).toEqual([]);
    expect(v8FlagsToApply([], '  --no-allocation_site_pretenuring  ')).toEqual([]);
  });
});

describe('main.ts', () => {
  it('imports the V8 settings before any other module', () => {
    const src = readFileSync(path.join(ROOT, 'src', 'main.ts'), 'utf8');
    const imports = [...src.matchAll(/^import .*?from '([^']+)';|^import '([^']+)';/gm)].map((m) => m[1] ?? m[2]);
    expect(imports[0]).toBe('./base/v8-tuning.js');
  });
});

/** Mean bytes promoted per scavenge during the churn phase of `pretenuring-churn.ts <mode>`. */
function promotedPerScavenge(mode: 'default' | 'tuned'): number {
  // V8's trace is ≈ 1.5 KB per scavenge, hundreds of them: past spawnSync's 1 MiB default limit
  const r = spawnSync(process.execPath, ['--trace-gc-nvp', '--max-semi-space-size=4', '--import', 'tsx', CHURN, mode, '1000'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
  expect(r.status, `signal ${String(r.signal)} error ${String(r.error)} ${r.stderr}`).toBe(0);
  expect(r.stdout).toMatch(/done \d+/);
  const churn = r.stdout.slice(r.stdout.indexOf('phase2'));
  const promoted = [...churn.matchAll(/gc=s .*?promoted=(\d+)/g)].map((m) => Number(m[1]));
  expect(promoted.length, `scavenges of ${mode}`).toBeGreaterThan(10);
  return promoted.reduce((a, b) => a + b, 0) / promoted.length;
}

describe('what the pretenuring setting changes', () => {
  it("short-lived objects of a site V8 pretenured are promoted; with the gateway's setting they die young", () => {
    const tuned = promotedPerScavenge('tuned');
    // whether V8 pretenures the site in a given run depends on when its feedback and optimized code
    // appear (compiled on a background thread): ≈ 1 run in 8 here does not, so up to 4 runs
    let defaults = 0;
    for (let run = 0; run < 4 && !(defaults > 4 * tuned); run++) defaults = Math.max(defaults, promotedPerScavenge('default'));
    // the mechanism the setting exists for: if V8 stopped pretenuring such sites, the first
    // figure would fall to the second and the setting could go
    expect(defaults, `promoted per scavenge: V8 defaults ${defaults} B, gateway setting ${tuned} B`).toBeGreaterThan(4 * tuned);
  }, 180_000);
});
