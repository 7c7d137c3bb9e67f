// Reading proto3 JSON whose shape is only known by convention (a config dump fetched over HTTP): a path
// lookup that never throws, and typed reads with a fallback.

/** The value at `path` (object keys and array indices), or undefined if any step is missing. */
export function at(value: unknown, ...path: readonly (string | number)[]): unknown {
  let cur = value;
  for (const key of path) {
    if (typeof key === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[key];
    } else {
      if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
      cur = (cur as Record<string, unknown>)[key];
    }
  }
  return cur;
}

export function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : fallback;
}

export function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** `key=value` pairs of the fields of `obj` that are set, in the given order; '' when none are. */
export function pairs(obj: unknown, keys: readonly (readonly [label: string, field: string])[]): string {
  return keys
    .flatMap(([label, field]) => {
      const v = at(obj, field);
      return v === undefined || v === null ? [] : [`${label}=${typeof v === 'object' ? JSON.stringify(v) : str(v)}`];
    })
    .join(',');
}
