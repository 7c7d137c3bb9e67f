// Field-by-field differences between two JSON values (two versions of one Envoy resource in proto3 JSON).
// Pure. Objects are compared key by key; arrays element by element, where an element that is an object
// with a `name` is addressed by it (`virtualHosts[name=shop:8080].routes[0]`) and matched by name, so a
// virtual host or filter inserted before another does not make every later one look changed.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface FieldChange {
  /** `virtualHosts[name=shop:8080].routes[0].route.weightedClusters.clusters[1].weight`. */
  readonly path: string;
  /** Absent: the field was added. */
  readonly before?: Json;
  /** Absent: the field was removed. */
  readonly after?: Json;
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nameOf(value: Json | undefined): string | undefined {
  return isObject(value) && typeof value.name === 'string' ? value.name : undefined;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** Whether every element is an object with a distinct `name`. */
function named(list: readonly Json[]): boolean {
  const names = list.map(nameOf);
  return names.every((n) => n !== undefined) && new Set(names).size === names.length;
}

function diffInto(before: Json | undefined, after: Json | undefined, path: string, out: FieldChange[]): void {
  if (before === undefined && after === undefined) return;
  if (before === undefined) {
    out.push({ path, after: after! });
    return;
  }
  if (after === undefined) {
    out.push({ path, before });
    return;
  }
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    for (const key of keys) diffInto(before[key], after[key], join(path, key), out);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    if (before.length > 0 && after.length > 0 && named(before) && named(after)) {
      const byName = new Map(before.map((b) => [nameOf(b)!, b]));
      const seen = new Set<string>();
      for (const a of after) {
        const name = nameOf(a)!;
        seen.add(name);
        diffInto(byName.get(name), a, `${path}[name=${name}]`, out);
      }
      for (const b of before) if (!seen.has(nameOf(b)!)) diffInto(b, undefined, `${path}[name=${nameOf(b)!}]`, out);
      return;
    }
    for (let i = 0; i < Math.max(before.length, after.length); i++) diffInto(before[i], after[i], `${path}[${i}]`, out);
    return;
  }
  if (before !== after) out.push({ path, before, after });
}

/** The changed fields from `before` to `after`, in path order (object keys sorted); [] when equal. */
export function jsonDiff(before: Json, after: Json): FieldChange[] {
  const out: FieldChange[] = [];
  diffInto(before, after, '', out);
  return out;
}
