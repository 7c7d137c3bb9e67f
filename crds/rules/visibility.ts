// `exportTo`: which namespaces see a Service, VirtualService or DestinationRule (Istio semantics).
// Written values: `*` every namespace (the default), `.` the object's own namespace, `~` none (Services
// only in Istio; accepted everywhere here), or namespace names. The model keeps a normalized list:
// ['*'], or the sorted namespace names (`.` replaced by the namespace), or [] for none. Listing other
// namespaces does not imply the object's own: `exportTo: [other]` hides it from its own namespace, as in
// Istio.
export type ExportTo = readonly string[];

export const EXPORT_ALL: ExportTo = Object.freeze(['*']);

/** The normalized form of what `ownNamespace`'s object wrote; absent or empty means `*`. */
export function normalizeExportTo(values: readonly string[] | undefined, ownNamespace: string): ExportTo {
  if (!values || values.length === 0) return EXPORT_ALL;
  const namespaces = new Set<string>();
  for (const raw of values) {
    const value = raw.trim();
    if (value === '*') return EXPORT_ALL;
    if (value === '~' || value === '') continue;
    namespaces.add(value === '.' ? ownNamespace : value);
  }
  return [...namespaces].sort();
}

/** Reads a comma-separated annotation value (`networking.trellis.dev/exportTo: ".,istio-system"`). */
export function parseExportToAnnotation(value: string | undefined, ownNamespace: string): ExportTo {
  if (value === undefined) return EXPORT_ALL;
  return normalizeExportTo(
    value.split(',').map((v) => v.trim()),
    ownNamespace,
  );
}

export function isVisibleTo(exportTo: ExportTo, namespace: string): boolean {
  return exportTo[0] === '*' || exportTo.includes(namespace);
}

/** True when some namespace sees both. */
export function overlaps(a: ExportTo, b: ExportTo): boolean {
  if (a.length === 0 || b.length === 0) return false;
  if (a[0] === '*' || b[0] === '*') return true;
  return a.some((ns) => b.includes(ns));
}

/** True when every namespace that sees `target` also sees one of `others`. */
export function coveredBy(target: ExportTo, others: readonly ExportTo[]): boolean {
  if (others.some((o) => o[0] === '*')) return true;
  if (target[0] === '*') return false;
  return target.every((ns) => others.some((o) => o.includes(ns)));
}

/** The namespaces that see any of `lists`. */
export function unionExportTo(lists: readonly ExportTo[]): ExportTo {
  if (lists.some((l) => l[0] === '*')) return EXPORT_ALL;
  return [...new Set(lists.flat())].sort();
}
