// Canonical JSON (object keys sorted, undefined dropped, Dates as RFC 3339) for content hashes and
// equality of input objects, and a deep freeze for the immutable snapshot.
import { createHash } from 'node:crypto';

function canonical(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : canonical(v)));
  if (value instanceof Map) return canonical(Object.fromEntries(value));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = canonical(v);
  }
  return out;
}

/** JSON with object keys sorted: equal for deep-equal values whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value)) ?? 'null';
}

/** sha256 (hex) of the canonical JSON. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

const hashes = new WeakMap<object, string>();

/**
 * `contentHash` of an object that is never modified (a snapshot part), memoized on the object: a part the
 * next snapshot shares by identity is hashed once.
 */
export function frozenContentHash(value: object): string {
  let hash = hashes.get(value);
  if (hash === undefined) hashes.set(value, (hash = contentHash(value)));
  return hash;
}

/** Freezes plain objects and arrays, recursively (Maps and Sets are typed readonly instead). */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  if (value instanceof Map || value instanceof Set || value instanceof Date) return value;
  Object.freeze(value);
  for (const v of Object.values(value as object)) deepFreeze(v);
  return value;
}

/** A copy with keys in sorted order (so that JSON output and iteration are deterministic). */
export function sortedRecord(record: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(record).sort()) out[key] = record[key]!;
  return out;
}
