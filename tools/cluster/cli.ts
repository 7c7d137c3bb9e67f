// `npm run cluster -- up | down | status`: the local single-node cluster (see README.md beside this file).
//   up      starts it (building the images first) and prints `export KUBECONFIG=<path>` as its last line
//   down    removes everything it made
//   status  says what runs
// State folder: $TRELLIS_CLUSTER_DIR or ~/.cache/trellis/cluster (`--dir <path>` overrides both).
import fs from 'node:fs';
import path from 'node:path';
import { request } from './http.js';
import { COREDNS_READY_PORT, defaultStateDir, KUBE_PROXY_HEALTHZ_PORT, layout, NODE_IP, NODE_NAME } from './layout.js';
import { checkPrerequisites, downLocalCluster, upLocalCluster } from './local-cluster.js';
import { readLock } from './lock.js';
import { pidAlive, readState } from './state.js';
import { peerBinary } from '../../scripts/peer-paths.mjs';
import { makeKubectl } from './kubectl.js';
import { clusterProcesses } from './usage.js';

const USAGE = 'usage: npm run cluster -- up | down | status [--dir <state folder>]';

function parse(argv: readonly string[]): { cmd: string; dir: string } {
  let cmd = '';
  let dir = defaultStateDir();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--dir') dir = argv[++i] ?? dir;
    else if (a === '-h' || a === '--help') cmd = 'help';
    else if (!cmd) cmd = a;
    else throw new Error(`unexpected argument "${a}"\n${USAGE}`);
  }
  return { cmd, dir: path.resolve(dir) };
}

async function status(dir: string): Promise<number> {
  const l = layout(dir);
  const state = readState(l);
  const lock = readLock();
  if (!state) {
    console.log(`no local cluster in ${dir}`);
    if (lock) console.log(`(the machine-wide lock is held by the cluster of ${lock.dir}, pid ${lock.pid})`);
    const pre = checkPrerequisites();
    if (!pre.ok) console.log(`prerequisites missing:\n  ${pre.problems.join('\n  ')}`);
    return 1;
  }
  console.log(
    `state folder ${dir}${state.readyAt ? `, ready since ${new Date(state.readyAt).toISOString()}` : ' (not ready: up failed or runs)'}`,
  );
  let alive = 0;
  for (const [name, pid] of Object.entries(state.pids)) {
    const up = pidAlive(pid);
    if (up) alive++;
    console.log(`  ${name.padEnd(24)} pid ${String(pid).padEnd(8)} ${up ? 'running' : 'NOT RUNNING'}`);
  }
  const kubectlBin = peerBinary('kubectl');
  if (state.readyAt && kubectlBin && fs.existsSync(l.kubeconfig)) {
    const kubectl = makeKubectl(kubectlBin, l.kubeconfig, dir);
    const node = await kubectl(['get', 'node', NODE_NAME, '--no-headers'], { allowFailure: true, timeoutMs: 10_000 });
    console.log(
      `  node: ${node.code === 0 ? node.stdout.trim() : `unreachable (${node.stderr.trim().split('\n')[0]})`}`,
    );
    const pods = await kubectl(['get', 'pods', '-A', '--no-headers'], { allowFailure: true, timeoutMs: 10_000 });
    if (pods.code === 0) console.log(`  pods: ${pods.stdout.trim().split('\n').filter(Boolean).length}`);
    const proxy = await request(`http://${NODE_IP}:${KUBE_PROXY_HEALTHZ_PORT}/healthz`, { ownHost: NODE_IP }).catch(
      () => undefined,
    );
    const dns = await request(`http://${NODE_IP}:${COREDNS_READY_PORT}/ready`, { ownHost: NODE_IP }).catch(
      () => undefined,
    );
    console.log(
      `  kube-proxy healthz: ${proxy?.status ?? 'unreachable'}, CoreDNS ready: ${dns?.status ?? 'unreachable'}`,
    );
    const procs = clusterProcesses(l);
    const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(0)} MB`;
    const total = procs.reduce((sum, p) => sum + p.rss, 0);
    const top = [...procs].sort((a, b) => b.rss - a.rss).slice(0, 6);
    console.log(
      `  memory (RSS): ${mb(total)} in ${procs.length} processes (${top.map((p) => `${p.name} ${mb(p.rss)}`).join(', ')})`,
    );
    console.log(`export KUBECONFIG=${l.kubeconfig}`);
  }
  return alive === Object.keys(state.pids).length ? 0 : 1;
}

async function main(): Promise<number> {
  const { cmd, dir } = parse(process.argv.slice(2));
  switch (cmd) {
    case 'up': {
      const started = Date.now();
      const cluster = await upLocalCluster({
        dir,
        tied: false,
        log: (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`),
      });
      console.log(
        `server ${cluster.server}, node ${cluster.nodeName} (${cluster.nodeIp}); stop with: npm run cluster -- down`,
      );
      console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
      return 0;
    }
    case 'down': {
      const started = Date.now();
      const report = await downLocalCluster(dir, {
        log: (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`),
      });
      if (report.leftovers.length) {
        console.error(`down: could not remove:\n  ${report.leftovers.join('\n  ')}`);
        return 1;
      }
      console.log(`local cluster in ${dir} removed`);
      return 0;
    }
    case 'status':
      return status(dir);
    case 'help':
      console.log(USAGE);
      return 0;
    default:
      console.error(USAGE);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`cluster: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
