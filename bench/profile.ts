// Reads a V8 .cpuprofile (node --cpu-prof, or the inspector's Profiler.stop) into self time per function
// and per module, so a benchmark can say where the time went without opening DevTools.
import path from 'node:path';
import { repoRoot } from './report.js';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface ProfileEntry {
  readonly name: string;
  readonly selfMs: number;
  readonly percent: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Time not idle (everything but `(idle)`). */
  readonly busyMs: number;
  /** Time in samples whose stack has a frame matched by `exclude` (left out of the lists). */
  readonly excludedMs: number;
  readonly functions: readonly ProfileEntry[];
  readonly modules: readonly ProfileEntry[];
}

/** `node_modules/@grpc/grpc-js/…` → `@grpc/grpc-js`; a repo file → its path; natives stay as they are. */
function moduleOf(url: string): string {
  if (url === '') return '(native)';
  const file = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = file.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const parts = file.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (file.startsWith('node:')) return file;
  return path.isAbsolute(file) ? path.relative(repoRoot, file) : file;
}

/**
 * Self time by function and by module, busiest first. Samples with a frame matched by `exclude` anywhere
 * on their stack are only counted in `excludedMs` (e.g. to look at the push path without the file re-read).
 */
export function summarizeProfile(
  profile: CpuProfile,
  top = 20,
  exclude?: (frame: CallFrame) => boolean,
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const excludedNode = new Map<number, boolean>();
  const isExcluded = (id: number): boolean => {
    if (!exclude) return false;
    let known = excludedNode.get(id);
    if (known === undefined) {
      const node = byId.get(id);
      const up = parent.get(id);
      known = (node !== undefined && exclude(node.callFrame)) || (up !== undefined && isExcluded(up));
      excludedNode.set(id, known);
    }
    return known;
  };
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; the time after it (deltas[i + 1]) is what sample i stands for.
  for (let i = 0; i < samples.length; i++) {
    const us = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + us);
  }
  const functions = new Map<string, number>();
  const modules = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let excluded = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    total += us;
    if (frame.functionName === '(idle)') idle += us;
    if (isExcluded(id)) {
      excluded += us;
      continue;
    }
    const mod = moduleOf(frame.url);
    const name =
      frame.url === '' ? frame.functionName : `${frame.functionName || '(anonymous)'} ${mod}:${frame.lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    const modKey = frame.url === '' ? frame.functionName : mod;
    modules.set(modKey, (modules.get(modKey) ?? 0) + us);
  }
  const busy = total - idle;
  const list = (m: Map<string, number>): ProfileEntry[] =>
    [...m]
      .filter(([name]) => name !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, percent: busy > 0 ? (100 * us) / busy : 0 }));
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    excludedMs: excluded / 1000,
    functions: list(functions),
    modules: list(modules),
  };
}

/**
 * Inclusive time (the function and everything it calls) of the functions named in `names` (`name` or
 * `name@file-suffix`), in ms, counted once per sample even when recursive.
 */
export function inclusiveTimes(profile: CpuProfile, names: readonly string[]): ProfileEntry[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const wanted = names.map((spec) => {
    const [fn, file] = spec.split('@') as [string, string | undefined];
    return { spec, match: (f: CallFrame) => f.functionName === fn && (file === undefined || f.url.endsWith(file)) };
  });
  const totals = new Map<string, number>(names.map((n) => [n, 0]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let busy = 0;
  for (let i = 0; i < samples.length; i++) {
    const us = deltas[i + 1] ?? 0;
    if (byId.get(samples[i]!)?.callFrame.functionName !== '(idle)') busy += us;
    const hit = new Set<string>();
    for (let id: number | undefined = samples[i]; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (!frame) break;
      for (const w of wanted) if (!hit.has(w.spec) && w.match(frame)) hit.add(w.spec);
    }
    for (const spec of hit) totals.set(spec, totals.get(spec)! + us);
  }
  return names.map((name) => ({
    name,
    selfMs: totals.get(name)! / 1000,
    percent: busy > 0 ? (100 * totals.get(name)!) / busy : 0,
  }));
}
