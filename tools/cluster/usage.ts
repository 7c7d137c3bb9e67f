// Memory of a running local cluster: the resident set of every process in its network namespace (the
// components, containerd, shims) and in its cgroups (the pods' containers).
import fs from 'node:fs';
import { cgroupPids } from './cgroups.js';
import type { Layout } from './layout.js';
import { netnsInode } from './network.js';

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function comm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** Processes of the cluster, each with its resident set in bytes. */
export function clusterProcesses(l: Layout): { pid: number; name: string; rss: number }[] {
  const pids = new Set<number>(cgroupPids());
  const inode = netnsInode(l);
  if (inode !== undefined) {
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        if (fs.readlinkSync(`/proc/${e}/ns/net`) === `net:[${inode}]`) pids.add(Number(e));
      } catch {
        // gone
      }
    }
  }
  return [...pids].map((pid) => ({ pid, name: comm(pid), rss: rssKb(pid) * 1024 }));
}
