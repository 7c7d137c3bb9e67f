// A read-only Map made of another Map and a few changes to it, without copying the other: a snapshot's
// instance indexes hold ten thousand keys, and an endpoint change touches a handful of them
// (build-snapshot.ts instanceIndexes). Patches of patches share the first base and merge their changes, so
// a lookup is at most two Map lookups; once the changes outgrow a fraction of the base, the map is copied
// flat again (amortized: the copy is paid for by the changes that made the patch grow).
// Iteration gives the base's entries that were not changed, in the base's order, then the changed keys that
// still have a value, in the order they were first changed: deterministic for the same history, but not
// the order a Map built afresh would have (no reader of an index depends on its order).

/** The changes, per key: the new value, or undefined for a key that is gone. */
export type MapChanges<K, V> = ReadonlyMap<K, V | undefined>;

/** A patch larger than this share of its base is copied into a flat Map instead. */
const FLATTEN_RATIO = 1 / 8;
/** …unless it is this small: a small base is copied anyway. */
const FLATTEN_MIN = 64;

class PatchedMap<K, V> implements ReadonlyMap<K, V> {
  readonly size: number;

  constructor(
    readonly base: ReadonlyMap<K, V>,
    readonly patch: ReadonlyMap<K, V | undefined>,
  ) {
    let size = base.size;
    for (const [key, value] of patch) {
      const inBase = base.has(key);
      if (value === undefined && inBase) size--;
      else if (value !== undefined && !inBase) size++;
    }
    this.size = size;
  }

  get(key: K): V | undefined {
    return this.patch.has(key) ? this.patch.get(key) : this.base.get(key);
  }

  has(key: K): boolean {
    return this.patch.has(key) ? this.patch.get(key) !== undefined : this.base.has(key);
  }

  *entries(): MapIterator<[K, V]> {
    for (const entry of this.base) if (!this.patch.has(entry[0])) yield entry;
    for (const [key, value] of this.patch) if (value !== undefined) yield [key, value];
  }

  *keys(): MapIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }
}

/** `previous` with `changes` applied, sharing `previous` (or its base) instead of copying it. */
export function patchMap<K, V>(previous: ReadonlyMap<K, V>, changes: MapChanges<K, V>): ReadonlyMap<K, V> {
  if (changes.size === 0) return previous;
  const base = previous instanceof PatchedMap ? (previous.base as ReadonlyMap<K, V>) : previous;
  let patch: Map<K, V | undefined>;
  if (previous instanceof PatchedMap) {
    patch = new Map(previous.patch as ReadonlyMap<K, V | undefined>);
    for (const [key, value] of changes) patch.set(key, value);
  } else {
    patch = new Map(changes);
  }
  if (patch.size > Math.max(FLATTEN_MIN, base.size * FLATTEN_RATIO)) {
    const flat = new Map<K, V>();
    for (const [key, value] of new PatchedMap(base, patch)) flat.set(key, value);
    return flat;
  }
  return new PatchedMap(base, patch);
}
