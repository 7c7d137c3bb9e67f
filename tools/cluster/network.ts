// The cluster's network namespace and its one link to the host. The namespace is bound to a file in the
// state folder (`unshare --net=<file>`), not named under /run/netns (`ip netns add` would turn /run/netns
// into a shared mount on the host). The host keeps its sysctls: IP forwarding is switched on inside the
// namespace only (the CNI bridge plugin would otherwise set the host's).
import fs from 'node:fs';
import { run, runInNetns } from './exec.js';
import { HOST_IP, HOST_VETH, NODE_IP, NS_VETH, POD_CIDR, SERVICE_CIDR, VETH_PREFIX, type Layout } from './layout.js';

export async function linkExists(name: string): Promise<boolean> {
  return (await run('ip', ['link', 'show', 'dev', name], { allowFailure: true })).code === 0;
}

export async function createNetwork(l: Layout): Promise<void> {
  if (await linkExists(HOST_VETH)) {
    throw new Error(`the link ${HOST_VETH} exists already: another local cluster runs (npm run cluster -- down)`);
  }
  fs.writeFileSync(l.netns, '');
  await run('unshare', [`--net=${l.netns}`, 'true']);
  // iproute2 takes a path (with a slash) where it takes a namespace name.
  await run('ip', ['link', 'add', HOST_VETH, 'type', 'veth', 'peer', 'name', NS_VETH, 'netns', l.netns]);
  await run('ip', ['addr', 'add', `${HOST_IP}/${VETH_PREFIX}`, 'dev', HOST_VETH]);
  await run('ip', ['link', 'set', HOST_VETH, 'up']);
  await runInNetns(l.netns, 'ip', ['addr', 'add', `${NODE_IP}/${VETH_PREFIX}`, 'dev', NS_VETH]);
  await runInNetns(l.netns, 'ip', ['link', 'set', NS_VETH, 'up']);
  await runInNetns(l.netns, 'ip', ['link', 'set', 'lo', 'up']);
  await runInNetns(l.netns, 'ip', ['route', 'add', 'default', 'via', HOST_IP]);
  await runInNetns(l.netns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  // The host reaches pods and Services through the veth; these routes vanish with the link.
  await run('ip', ['route', 'add', POD_CIDR, 'via', NODE_IP, 'dev', HOST_VETH]);
  await run('ip', ['route', 'add', SERVICE_CIDR, 'via', NODE_IP, 'dev', HOST_VETH]);
}

/** Inode of the namespace bound at the file, as /proc/<pid>/ns/net shows it (`net:[<inode>]`). */
export function netnsInode(l: Layout): number | undefined {
  try {
    const st = fs.statSync(l.netns);
    // An unmounted placeholder is an ordinary empty file on the state folder's filesystem.
    return st.dev === fs.statSync(l.dir).dev ? undefined : st.ino;
  } catch {
    return undefined;
  }
}

export async function deleteNetwork(l: Layout): Promise<void> {
  if (await linkExists(HOST_VETH)) await run('ip', ['link', 'del', HOST_VETH], { allowFailure: true });
  if (fs.existsSync(l.netns)) {
    await run('umount', [l.netns], { allowFailure: true });
    fs.rmSync(l.netns, { force: true });
  }
}
