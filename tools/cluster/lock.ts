// One local cluster per machine: its link, namespace, cgroup and the paths containerd always uses are fixed,
// so `up` takes a machine-wide lock file first (/tmp/trellis-local-cluster.lock: owner pid and state folder)
// and `down` releases it. A lock whose owner and cluster processes are all dead is stale: its cluster is
// torn down and the lock taken over. Test files wait for the lock; `npm run cluster -- up` does not.
import fs from 'node:fs';
import { layout } from './layout.js';
import { pidAlive, readState } from './state.js';
import { teardown } from './teardown.js';

export const LOCK_FILE = '/tmp/trellis-local-cluster.lock';

export interface LockInfo {
  readonly pid: number;
  readonly dir: string;
  readonly since: string;
}

export function readLock(): LockInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(LOCK_FILE, 'utf8')) as LockInfo;
  } catch {
    return undefined;
  }
}

/** Whether the lock's owner or any process of its cluster still runs. */
export function lockLive(info: LockInfo): boolean {
  if (pidAlive(info.pid)) return true;
  const state = readState(layout(info.dir));
  return Object.values(state?.pids ?? {}).some(pidAlive);
}

function tryTake(owner: LockInfo): boolean {
  try {
    fs.writeFileSync(LOCK_FILE, JSON.stringify(owner) + '\n', { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

/**
 * Takes the lock for a cluster in `dir` owned by `pid`. Waits up to `waitMs` (0: not at all) for another
 * cluster to go; `onWait` hears once that it waits. Throws when the lock stays held.
 */
export async function acquireLock(
  dir: string,
  pid: number,
  opts: { waitMs?: number; onWait?: (holder: LockInfo) => void } = {},
): Promise<void> {
  const owner: LockInfo = { pid, dir, since: new Date().toISOString() };
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let told = false;
  for (;;) {
    if (tryTake(owner)) return;
    const holder = readLock();
    if (holder && !lockLive(holder)) {
      // Stale: its owner died without `down`. Undo what is left of that cluster, then take over.
      await teardown(layout(holder.dir));
      if (readLock()?.since === holder.since) fs.rmSync(LOCK_FILE, { force: true });
      continue;
    }
    if (!holder) continue; // released meanwhile
    if (Date.now() >= deadline) {
      throw new Error(
        `another local cluster runs (state ${holder.dir}, owner pid ${holder.pid}, since ${holder.since}); ` +
          'stop it with `npm run cluster -- down` (TRELLIS_CLUSTER_DIR selects its state folder)',
      );
    }
    if (!told) {
      told = true;
      opts.onWait?.(holder);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Re-points the lock at a new owner pid (after `up` hands the cluster over to its own processes). */
export function setLockOwner(dir: string, pid: number): void {
  const cur = readLock();
  if (cur?.dir !== dir) return;
  fs.writeFileSync(LOCK_FILE, JSON.stringify({ ...cur, pid }) + '\n');
}

export function releaseLock(dir: string): void {
  if (readLock()?.dir === dir) fs.rmSync(LOCK_FILE, { force: true });
}
