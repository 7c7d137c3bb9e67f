// The kubelet's cgroup subtree (`cgroupRoot`) under every cgroup hierarchy of this machine (v1 here; a v2
// unified mount is handled the same way). `up` creates it; `down` kills what is left in it and removes it.
import fs from 'node:fs';
import path from 'node:path';
import { CGROUP_ROOT } from './layout.js';

/** Mount points of the cgroup hierarchies (cgroup and cgroup2), from /proc/self/mountinfo. */
export function cgroupMounts(): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.push(unescapeMount(line.split(' ')[4] ?? ''));
  }
  return out.filter(Boolean);
}

export function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function createCgroupRoot(): void {
  for (const mount of cgroupMounts()) {
    const dir = path.join(mount, CGROUP_ROOT);
    fs.mkdirSync(dir, { recursive: true });
    // A new cpuset cgroup starts with no CPUs and no memory nodes: copy the parent's.
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const parent = path.join(mount, f);
      const own = path.join(dir, f);
      if (fs.existsSync(parent) && fs.existsSync(own) && fs.readFileSync(own, 'utf8').trim() === '') {
        fs.writeFileSync(own, fs.readFileSync(parent, 'utf8'));
      }
    }
  }
}

/** Every folder of the subtree, deepest first. */
function subtree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
    out.push(d);
  };
  walk(dir);
  return out;
}

/** PIDs of every process in the cluster's cgroups. */
export function cgroupPids(): number[] {
  const pids = new Set<number>();
  for (const mount of cgroupMounts()) {
    for (const d of subtree(path.join(mount, CGROUP_ROOT))) {
      try {
        for (const l of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) pids.add(Number(l));
      } catch {
        // gone meanwhile
      }
    }
  }
  return [...pids];
}

/** Removes the subtree in every hierarchy (its processes must be gone); returns folders it could not remove. */
export function removeCgroupRoot(): string[] {
  const left: string[] = [];
  for (const mount of cgroupMounts()) {
    const root = path.join(mount, CGROUP_ROOT);
    if (!fs.existsSync(root)) continue;
    for (const d of subtree(root)) {
      try {
        fs.rmdirSync(d);
      } catch {
        left.push(d);
      }
    }
  }
  return left;
}
