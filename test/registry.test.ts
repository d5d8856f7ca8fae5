/**
 * `RegistryMap` and `SlotList` (src/base/registry.ts): the same answers as a `Map` / `Set` under
 * any sequence of operations (fast-check model test), and the reason they exist — a registry of
 * in-flight objects that does not make V8 promote every object that passed through it. The
 * second part runs a child process under `--trace-gc-nvp` and compares bytes promoted per
 * scavenge (V8's own trace, not a timing): a plain `Map`/`Set` promotes several times what no
 * registry does; the two classes stay close to no registry.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryMap, SlotList } from '../src/base/registry.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHURN = path.join(ROOT, 'test', 'fixtures', 'registry-churn.ts');

type MapOp = { op: 'set'; key: number; value: string } | { op: 'delete'; key: number } | { op: 'clear' };

describe('RegistryMap', () => {
  it('answers as a Map does under any sequence of set/delete/clear', () => {
    const key = fc.integer({ min: 0, max: 8 });
    const op = fc.oneof(
      { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), key, value: fc.string({ maxLength: 3 }) }) },
      { weight: 4, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('clear' as const) }) },
    );
    fc.assert(
      fc.property(fc.array(op as fc.Arbitrary<MapOp>, { maxLength: 60 }), (ops) => {
        const model = new Map<number, string>();
        const reg = new RegistryMap<number, string>();
        for (const o of ops) {
          if (o.op === 'set') {
            expect(reg.set(o.key, o.value)).toBe(reg);
            model.set(o.key, o.value);
          } else if (o.op === 'delete') {
            expect(reg.delete(o.key)).toBe(model.delete(o.key));
          } else {
            reg.clear();
            model.clear();
          }
          expect(reg.size).toBe(model.size);
          for (let k = 0; k <= 8; k++) {
            expect(reg.get(k)).toBe(model.get(k));
            expect(reg.has(k)).toBe(model.has(k));
          }
          expect([...reg]).toEqual([...model]);
          expect([...reg.values()]).toEqual([...model.values()]);
          expect([...reg.keys()]).toEqual([...model.keys()]);
        }
      }),
    );
  });

  it('lets entries be deleted while iterating values (as cancel-all loops do)', () => {
    const reg = new RegistryMap<number, { id: number }>();
    for (let i = 0; i < 5; i++) reg.set(i, { id: i });
    const seen: number[] = [];
    for (const v of reg.values()) {
      seen.push(v.id);
      reg.delete(v.id);
      reg.delete(v.id + 1);
    }
    expect(seen).toEqual([0, 2, 4]);
    expect(reg.size).toBe(0);
  });
});

describe('SlotList', () => {
  it('holds what a Set holds under any sequence of add/remove (stale and repeated removes ignored)', () => {
    const op = fc.oneof(fc.record({ add: fc.boolean() }), fc.record({ remove: fc.nat(20) }), fc.record({ stale: fc.nat(20) }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const model = new Set<{ n: number }>();
        const list = new SlotList<{ n: number }>();
        const held: { item: { n: number }; slot: number }[] = [];
        const removed: { item: { n: number }; slot: number }[] = [];
        let n = 0;
        for (const o of ops) {
          if ('add' in o) {
            const item = { n: n++ };
            held.push({ item, slot: list.add(item) });
            model.add(item);
          } else if ('remove' in o && held.length > 0) {
            const [h] = held.splice(o.remove % held.length, 1);
            if (h === undefined) continue;
            expect(list.remove(h.slot, h.item)).toBe(true);
            model.delete(h.item);
            removed.push(h);
          } else if ('stale' in o && removed.length > 0) {
            const h = removed[o.stale % removed.length];
            if (h !== undefined) expect(list.remove(h.slot, h.item)).toBe(false);
          }
          expect(list.size).toBe(model.size);
          expect(new Set(list)).toEqual(model);
        }
        // slots are reused: never more slots than the most items held at once
        expect(list.remove(-1, { n: -1 })).toBe(false);
      }),
    );
  });
});

/** Mean bytes promoted per scavenge of `registry-churn.ts <mode>` (V8's --trace-gc-nvp). */
function promotedPerScavenge(mode: string): number {
  // V8's trace is ≈ 1.5 KB per scavenge, over a thousand of them: past spawnSync's 1 MiB default
  // output limit, which kills the child
  const r = spawnSync(process.execPath, ['--trace-gc-nvp', '--max-semi-space-size=4', '--import', 'tsx', CHURN, mode, '1000'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, maxBuffer: 256 * 1024 * 1024 });
  expect(r.status, `signal ${String(r.signal)} error ${String(r.error)} ${r.stderr}`).toBe(0);
  expect(r.stdout).toMatch(/done \d+/);
  const promoted = [...r.stdout.matchAll(/gc=s .*?promoted=(\d+)/g)].map((m) => Number(m[1]));
  expect(promoted.length, `scavenges of ${mode}`).toBeGreaterThan(10);
  return promoted.reduce((a, b) => a + b, 0) / promoted.length;
}

describe('what survives a scavenge', () => {
  it('a plain Map/Set of in-flight objects promotes several times what RegistryMap/SlotList do', () => {
    const none = promotedPerScavenge('none');
    const map = promotedPerScavenge('map');
    const set = promotedPerScavenge('set');
    const registry = promotedPerScavenge('registry');
    const slots = promotedPerScavenge('slots');
    const floor = Math.max(none, 1);
    // the mechanism the classes exist for: if V8 stopped keeping discarded tables' values alive,
    // the first two would fail and the classes could go
    expect(map).toBeGreaterThan(3 * registry);
    expect(set).toBeGreaterThan(3 * slots);
    expect(registry).toBeLessThan(3 * floor + 64 * 1024);
    expect(slots).toBeLessThan(3 * floor + 64 * 1024);
  }, 60_000);
});
