// The state file of a local cluster (<state folder>/state.json): what `down` needs to undo `up` even when
// `up` stopped half-way or its processes died — the processes it started, and which shared host folders
// (that containerd 1.6, libcni and the kubelet always use) existed before, so that only what the cluster
// added to them is removed.
import fs from 'node:fs';
import type { Layout } from './layout.js';

export interface HostSnapshot {
  /** Entries of /run/netns (null: the folder did not exist). */
  readonly runNetns: readonly string[] | null;
  /** Whether /run/containerd existed, and its s/, fifo/ and runc/k8s.io/ entries. */
  readonly runContainerd: { readonly s: string[]; readonly fifo: string[]; readonly runc: string[] } | null;
  readonly varLibCni: boolean;
  readonly varLogContainers: boolean;
}

export interface ClusterState {
  readonly version: 1;
  readonly dir: string;
  readonly startedAt: number;
  readonly before: HostSnapshot;
  /** Component name -> pid (each the leader of its own process group). */
  pids: Record<string, number>;
  /** Set once `up` finished. */
  server?: string;
  kubeconfig?: string;
  readyAt?: number;
}

function entries(dir: string): string[] | null {
  try {
    return fs.readdirSync(dir);
  } catch {
    return null;
  }
}

export function snapshotHost(): HostSnapshot {
  const rc = fs.existsSync('/run/containerd')
    ? {
        s: entries('/run/containerd/s') ?? [],
        fifo: entries('/run/containerd/fifo') ?? [],
        runc: entries('/run/containerd/runc/k8s.io') ?? [],
      }
    : null;
  return {
    runNetns: entries('/run/netns'),
    runContainerd: rc,
    varLibCni: fs.existsSync('/var/lib/cni'),
    varLogContainers: fs.existsSync('/var/log/containers'),
  };
}

export function readState(l: Layout): ClusterState | undefined {
  try {
    return JSON.parse(fs.readFileSync(l.state, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export function writeState(l: Layout, state: ClusterState): void {
  const tmp = `${l.state}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  fs.renameSync(tmp, l.state);
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
