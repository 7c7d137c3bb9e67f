// patchMap (model/patched-map.ts): a Map with changes applied, without copying it, behaves as the Map a
// copy with the same changes would be, through any number of patches of patches and the flattening.
import test from 'ava';
import fc from 'fast-check';
import { patchMap } from '../../control-plane/model/patched-map.js';

/** The entries in key order (a patched map's order is its own; readers only look keys up). */
const sorted = (m: ReadonlyMap<string, number>): [string, number][] =>
  [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

const changesArb = fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.option(fc.integer(), { nil: undefined })), {
  maxLength: 40,
});

test('random changes: every lookup, the size and the entries equal a copied Map with the same changes', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 200 }),
      fc.array(changesArb, { minLength: 1, maxLength: 30 }),
      (n, rounds) => {
        const base = new Map(Array.from({ length: n }, (_, i) => [`k${i}`, i] as [string, number]));
        let patched: ReadonlyMap<string, number> = base;
        const copy = new Map(base);
        for (const round of rounds) {
          const changes = new Map(round.map(([k, v]) => [`k${k}`, v] as [string, number | undefined]));
          patched = patchMap(patched, changes);
          for (const [k, v] of changes) {
            if (v === undefined) copy.delete(k);
            else copy.set(k, v);
          }
          if (patched.size !== copy.size) return false;
          for (let k = 0; k <= 300; k++) {
            if (patched.get(`k${k}`) !== copy.get(`k${k}`)) return false;
            if (patched.has(`k${k}`) !== copy.has(`k${k}`)) return false;
          }
          if (JSON.stringify(sorted(patched)) !== JSON.stringify(sorted(copy))) return false;
          if (JSON.stringify([...patched.keys()]) !== JSON.stringify([...patched].map(([k]) => k))) return false;
          if (JSON.stringify([...patched.values()]) !== JSON.stringify([...patched].map(([, v]) => v))) return false;
          const seen: string[] = [];
          patched.forEach((_v, k) => seen.push(k));
          if (seen.join() !== [...patched.keys()].join()) return false;
        }
        return true;
      },
    ),
  );
  t.pass();
});

test('the map it patches is shared, not copied, and left as it was', (t) => {
  const base = new Map(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i] as [string, number]));
  const once = patchMap(
    base,
    new Map([
      ['k1', 100],
      ['new', 7],
    ]),
  );
  const twice = patchMap(once, new Map<string, number | undefined>([['k2', undefined]]));
  t.false(once instanceof Map, 'a patch, not a copy');
  t.is(base.get('k1'), 1);
  t.false(base.has('new'));
  t.deepEqual([once.get('k1'), once.get('new'), once.size], [100, 7, 1001]);
  t.deepEqual([twice.get('k1'), twice.get('k2'), twice.has('k2'), twice.size], [100, undefined, false, 1000]);
  t.is(patchMap(twice, new Map()), twice, 'no change: the very map');
  // Changes beyond an eighth of the base: copied flat again.
  const many = new Map(Array.from({ length: 200 }, (_, i) => [`m${i}`, i] as [string, number]));
  const flat = patchMap(twice, many);
  t.true(flat instanceof Map);
  t.is(flat.size, 1200);
  t.is(flat.get('k1'), 100);
});
