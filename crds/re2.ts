// The RE2 syntax check of the validator (Envoy's regex engine is RE2), on re2-wasm's compiled RE2.
//
// re2-wasm runs RE2 in a WebAssembly heap of a fixed 16 MiB that cannot grow. Its `RE2` class never frees
// what it compiles (nor its capture-group maps), so a long-running process that checked a few thousand
// regexes found every later one refused with "Cannot enlarge memory arrays … (OOM)". Here each pattern is
// compiled with re2-wasm's embind `WrappedRE2` directly and deleted at once, and verdicts are kept in a
// bounded LRU cache keyed by the pattern text: a control plane sees the same few regexes again and again
// (revalidation of changed objects, webhook retries), so most checks compile nothing.
//
// The pattern is compiled as Envoy compiles it, with one translation re2-wasm's `RE2` class also made and
// that Envoy's newer RE2 accepts natively: a named group `(?<name>…)` is read as `(?P<name>…)`. Duplicate
// group names are refused (Envoy's RE2 does; the bundled one does not).
import { createRequire } from 'node:module';

interface CppVector<V> {
  get(index: number): V;
  size(): number;
  delete(): void;
}

interface CppMap<K, V> {
  keys(): CppVector<K>;
  get(key: K): V;
  delete(): void;
}

/** re2-wasm's embind class (build/wasm/re2.d.ts omits `delete`, which every embind object has). */
interface WrappedRE2 {
  ok(): boolean;
  error(): string;
  capturingGroupNames(): CppMap<number, string>;
  delete(): void;
}

interface Re2Wasm {
  WrappedRE2: new (pattern: string, ignoreCase: boolean, multiline: boolean, dotAll: boolean) => WrappedRE2;
}

/**
 * re2-wasm, loaded at the first pattern checked: its code and heap cost about 8 MiB of RSS, which a control
 * plane whose mesh has no regex (and static mode, which validates nothing) never needs.
 */
let re2wasm: Re2Wasm | undefined;
const loadRe2 = (): Re2Wasm => (re2wasm ??= createRequire(import.meta.url)('re2-wasm/build/wasm/re2.js') as Re2Wasm);

/** Whether re2-wasm has been loaded (for the test that keeps it lazy). */
export function re2Loaded(): boolean {
  return re2wasm !== undefined;
}

/** How many verdicts the cache keeps (a verdict is the pattern and at most its error: ≤ a few KiB each). */
export const RE2_CACHE_SIZE = 4096;

/** Least recently used first (a Map iterates in insertion order; a hit is moved to the end). */
const verdicts = new Map<string, string | undefined>();

function duplicateGroupName(compiled: WrappedRE2): string | undefined {
  const names = compiled.capturingGroupNames();
  const numbers = names.keys();
  try {
    const seen = new Set<string>();
    for (let i = 0; i < numbers.size(); i++) {
      const name = names.get(numbers.get(i));
      if (seen.has(name)) return name;
      seen.add(name);
    }
    return undefined;
  } finally {
    numbers.delete();
    names.delete();
  }
}

function compileError(pattern: string): string | undefined {
  const named = pattern.replace(/\\.|\(\?<(?![=!])/gs, (m) => (m === '(?<' ? '(?P<' : m));
  const compiled = new (loadRe2().WrappedRE2)(named, false, false, false);
  try {
    if (!compiled.ok()) return compiled.error();
    const duplicate = duplicateGroupName(compiled);
    return duplicate === undefined ? undefined : `duplicate capture group name: ${duplicate}`;
  } finally {
    compiled.delete();
  }
}

/** RE2's reason a pattern does not compile (`missing ): (a`), or undefined when it compiles. */
export function re2Error(pattern: string): string | undefined {
  if (verdicts.has(pattern)) {
    const verdict = verdicts.get(pattern);
    verdicts.delete(pattern);
    verdicts.set(pattern, verdict);
    return verdict;
  }
  const verdict = compileError(pattern);
  verdicts.set(pattern, verdict);
  if (verdicts.size > RE2_CACHE_SIZE) {
    const oldest = verdicts.keys().next();
    if (oldest.done !== true) verdicts.delete(oldest.value);
  }
  return verdict;
}

/** How many verdicts are cached (for tests and the soak test). */
export function re2CacheSize(): number {
  return verdicts.size;
}
