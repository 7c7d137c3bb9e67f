// Precedence: oldest first (creationTimestamp), then namespace, then name. Istio breaks ties by name, then
// namespace; Trellis orders by the object key, the order users see everywhere else. An object without a
// creationTimestamp (FileSource) counts as the oldest possible, as a zero time does in Istio, so files
// are ordered by namespace and name.

function timestampMs(value: unknown): number {
  const ms =
    value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : Number.NEGATIVE_INFINITY;
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

/** Orders resources by precedence: the first wins. */
export function comparePrecedence(
  a: { readonly creationTimestamp?: unknown; readonly namespace: string; readonly name: string },
  b: { readonly creationTimestamp?: unknown; readonly namespace: string; readonly name: string },
): number {
  const ta = timestampMs(a.creationTimestamp);
  const tb = timestampMs(b.creationTimestamp);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return 0;
}
