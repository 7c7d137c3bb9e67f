// Where the pod is inside each kind `trellis inject` reads. Pure.
import type { Pod } from './types.js';

/** Kind → path of the pod (template) inside the object; '' for a Pod itself. */
export const POD_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The pod (template) of `object` and its field prefix (`spec.template.`), or undefined for other kinds. */
export function podOf(object: unknown): { pod: Pod; prefix: string; path: readonly string[] } | undefined {
  if (!isRecord(object) || typeof object.kind !== 'string') return undefined;
  const path = POD_PATHS[object.kind];
  if (!path) return undefined;
  let node: unknown = object;
  for (const key of path) node = isRecord(node) ? node[key] : undefined;
  if (!isRecord(node)) return { pod: {}, prefix: path.map((k) => `${k}.`).join(''), path };
  return { pod: node as Pod, prefix: path.map((k) => `${k}.`).join(''), path };
}

/** A copy of `object` with the pod at `path` replaced. */
export function withPod(object: Record<string, unknown>, path: readonly string[], pod: Pod): Record<string, unknown> {
  if (path.length === 0) return pod as Record<string, unknown>;
  const [head, ...rest] = path as [string, ...string[]];
  const child = isRecord(object[head]) ? object[head] : {};
  return { ...object, [head]: withPod(child, rest, pod) };
}
