// `down`: undoes `up` from its state file, whatever state the cluster is in (running, half-started, or its
// processes already dead). Order: stop the recorded processes (SIGTERM, then SIGKILL), kill whatever else
// still lives in the cluster's network namespace (containerd shims) or its cgroups (containers), unmount
// everything under the state folder and the pod network namespaces containerd made in /run/netns, remove
// what containerd 1.6, libcni and the kubelet added to shared host folders, remove the cgroups, delete the
// veth pair (its routes go with it) and the namespace, then the state folder. The host's sysctls were never
// changed, so there is nothing to restore.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cgroupPids, removeCgroupRoot, unescapeMount } from './cgroups.js';
import { run } from './exec.js';
import { CNI_NETWORK, type Layout } from './layout.js';
import { deleteNetwork, netnsInode } from './network.js';
import { pidAlive, readState, type ClusterState } from './state.js';

export interface TeardownReport {
  /** What could not be removed (empty when everything is gone). */
  readonly leftovers: string[];
}

function netnsPids(inode: number | undefined): number[] {
  if (inode === undefined) return [];
  const want = `net:[${inode}]`;
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readlinkSync(`/proc/${e}/ns/net`) === want) out.push(Number(e));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

function kill(pid: number, sig: NodeJS.Signals, group = false): void {
  try {
    process.kill(group ? -pid : pid, sig);
  } catch {
    // gone
  }
}

async function until(deadlineMs: number, done: () => boolean): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (done()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return done();
}

async function stopProcesses(state: ClusterState | undefined, l: Layout): Promise<string[]> {
  const recorded = Object.values(state?.pids ?? {});
  for (const pid of recorded) kill(pid, 'SIGTERM', true);
  await until(5_000, () => recorded.every((p) => !pidAlive(p)));
  const inode = netnsInode(l);
  const others = (): number[] => [...netnsPids(inode), ...cgroupPids()].filter((p) => p !== process.pid);
  for (let i = 0; i < 3; i++) {
    for (const pid of recorded) kill(pid, 'SIGKILL', true);
    for (const pid of others()) kill(pid, 'SIGKILL');
    if (await until(3_000, () => others().length === 0 && recorded.every((p) => !pidAlive(p)))) return [];
  }
  return others().map((p) => `process ${p}`);
}

function mountPoints(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescapeMount(line.split(' ')[4] ?? ''))
    .filter(Boolean);
}

function ownMounts(l: Layout, state: ClusterState | undefined): string[] {
  const podNetns = new Set(newEntries('/run/netns', state?.before.runNetns ?? null).map((e) => `/run/netns/${e}`));
  return [...new Set(mountPoints().filter((m) => m === l.dir || m.startsWith(`${l.dir}/`) || podNetns.has(m)))].sort(
    (a, b) => b.length - a.length,
  );
}

async function unmountAll(l: Layout, state: ClusterState | undefined): Promise<string[]> {
  for (let pass = 0; pass < 4; pass++) {
    const mounts = ownMounts(l, state);
    if (mounts.length === 0) return [];
    for (const m of mounts) {
      const r = await run('umount', [m], { allowFailure: true });
      if (r.code !== 0) await run('umount', ['-l', m], { allowFailure: true });
    }
  }
  return ownMounts(l, state).map((m) => `mount ${m}`);
}

/** Entries of `dir` that were not there before (all of them when the folder did not exist). */
function newEntries(dir: string, before: readonly string[] | null): string[] {
  let now: string[];
  try {
    now = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const had = new Set(before ?? []);
  return now.filter((e) => !had.has(e) && (dir !== '/run/netns' || e.startsWith('cni-')));
}

function rmdirIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // not empty or absent
  }
}

/** `cni-loopback-<container id>-lo` -> the container id. */
function cniContainerId(entry: string): string {
  return entry.slice('cni-loopback-'.length, entry.lastIndexOf('-'));
}

/** Ids of the pod sandboxes and containers the cluster's containerd knows. */
function containerIds(l: Layout): Set<string> {
  const ids = new Set<string>();
  for (const sub of ['sandboxes', 'containers']) {
    const d = path.join(l.containerd, 'root', 'io.containerd.grpc.v1.cri', sub);
    for (const e of fs.existsSync(d) ? fs.readdirSync(d) : []) ids.add(e);
  }
  return ids;
}

function removeHostFiles(l: Layout, state: ClusterState | undefined): void {
  const before = state?.before;
  if (!before) return;
  const ownContainers = containerIds(l);
  // Pod network namespaces containerd made (unmounted above).
  for (const e of newEntries('/run/netns', before.runNetns)) fs.rmSync(`/run/netns/${e}`, { force: true });
  if (before.runNetns === null) rmdirIfEmpty('/run/netns');
  // containerd 1.6 keeps shim sockets, fifos and runc state under /run/containerd whatever its config says.
  if (before.runContainerd === null) fs.rmSync('/run/containerd', { recursive: true, force: true });
  else {
    const rc = before.runContainerd;
    for (const [sub, had] of [
      ['s', rc.s],
      ['fifo', rc.fifo],
      ['runc/k8s.io', rc.runc],
    ] as const) {
      for (const e of newEntries(`/run/containerd/${sub}`, had)) {
        fs.rmSync(`/run/containerd/${sub}/${e}`, { recursive: true, force: true });
      }
    }
  }
  // libcni's result cache (its folder is not configurable in containerd 1.6): the pod network's entries
  // and those of containerd's built-in loopback network (\`cni-loopback\`), for the containers it ran.
  const results = '/var/lib/cni/results';
  for (const e of fs.existsSync(results) ? fs.readdirSync(results) : []) {
    if (e.startsWith(`${CNI_NETWORK}-`) || (e.startsWith('cni-loopback-') && ownContainers.has(cniContainerId(e)))) {
      fs.rmSync(path.join(results, e), { force: true });
    }
  }
  if (!before.varLibCni) {
    for (const d of ['/var/lib/cni/results', '/var/lib/cni']) rmdirIfEmpty(d);
  }
  // The kubelet links every container log into /var/log/containers (a fixed path).
  const links = '/var/log/containers';
  for (const e of fs.existsSync(links) ? fs.readdirSync(links) : []) {
    const p = path.join(links, e);
    try {
      if (fs.readlinkSync(p).startsWith(`${l.podLogs}/`)) fs.rmSync(p, { force: true });
    } catch {
      // not a link
    }
  }
  if (!before.varLogContainers) rmdirIfEmpty(links);
}

/**
 * Tears the cluster of state folder `l.dir` down; `keepDir` keeps the folder (logs) but not its mounts.
 * `log` hears each step with its duration.
 */
export async function teardown(
  l: Layout,
  opts: { keepDir?: boolean; background?: boolean; log?: (line: string) => void } = {},
): Promise<TeardownReport> {
  const log = opts.log ?? (() => undefined);
  let last = Date.now();
  const step = (what: string): void => {
    const now = Date.now();
    log(`${what} (${((now - last) / 1000).toFixed(1)} s)`);
    last = now;
  };
  const state = readState(l);
  const leftovers: string[] = [];
  leftovers.push(...(await stopProcesses(state, l)));
  step('processes stopped');
  leftovers.push(...(await unmountAll(l, state)));
  step('unmounted');
  removeHostFiles(l, state);
  leftovers.push(...removeCgroupRoot().map((d) => `cgroup ${d}`));
  await deleteNetwork(l);
  if (fs.existsSync(l.netns)) leftovers.push(`netns ${l.netns}`);
  step('host paths, cgroups, veth and namespace removed');
  if (!opts.keepDir && leftovers.length === 0 && opts.background) {
    // Deleting containerd's unpacked images takes up to a minute on a busy machine: the folder (nothing is
    // mounted in it any more) is renamed and deleted by a detached, niced rm.
    const trash = `${l.dir}.deleting-${process.pid}-${Date.now()}`;
    fs.renameSync(l.dir, trash);
    spawn('nice', ['-n', '19', 'rm', '-rf', trash], { detached: true, stdio: 'ignore' }).unref();
    step(`state folder ${l.dir} handed to a background rm`);
  } else if (!opts.keepDir && leftovers.length === 0) {
    fs.rmSync(l.dir, { recursive: true, force: true });
    step(`state folder ${l.dir} deleted`);
  } else if (fs.existsSync(l.state)) fs.renameSync(l.state, `${l.state}.down`);
  return { leftovers };
}
