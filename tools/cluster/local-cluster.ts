// A real single-node Kubernetes cluster on this machine: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet, kube-proxy and CoreDNS (built from tools/peers/), containerd + runc with CNI
// bridge networking (Debian packages), all inside a network namespace joined to the host by one veth pair.
// `upLocalCluster` starts it and returns once the node is Ready, DNS answers and kube-proxy has synced;
// `downLocalCluster` removes everything it made. `npm run cluster` (cli.ts) and the test helper
// (test/helpers/local-cluster.ts) both use this module. tools/cluster/README.md explains each part.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { peerBinary, peerSpecOfBinary, peersCacheRoot } from '../../scripts/peer-paths.mjs';
import { createCgroupRoot } from './cgroups.js';
import {
  bootstrapManifest,
  cniConfList,
  containerdConfig,
  corefile,
  KUBELET_SYSCTLS,
  kubeletConfig,
  kubeletScript,
  kubeProxyConfig,
} from './configs.js';
import { hasCommand, run } from './exec.js';
import { request } from './http.js';
import { writeKubeconfig } from './kubeconfig.js';
import { makeKubectl, type Kubectl } from './kubectl.js';
import {
  APISERVER_PORT,
  COREDNS_READY_PORT,
  defaultStateDir,
  KUBE_PROXY_HEALTHZ_PORT,
  KUBERNETES_SERVICE_IP,
  layout,
  NODE_IP,
  NODE_NAME,
  SERVICE_ACCOUNT_ISSUER,
  SERVICE_CIDR,
  type Layout,
} from './layout.js';
import { acquireLock, releaseLock } from './lock.js';
import { createNetwork } from './network.js';
import { makeCa, signCert } from './pki.js';
import { buildClusterImages, importImage, type ImageTarball } from './images.js';
import { logTail, startProcess, type Proc } from './processes.js';
import { readState, snapshotHost, writeState, type ClusterState } from './state.js';
import { teardown, type TeardownReport } from './teardown.js';

export const PEER_BINARIES = [
  'etcd',
  'kube-apiserver',
  'kubectl',
  'kubelet',
  'kube-controller-manager',
  'kube-scheduler',
  'kube-proxy',
  'coredns',
  'pause',
] as const;
export const HOST_COMMANDS = [
  'containerd',
  'containerd-shim-runc-v2',
  'runc',
  'ctr',
  'iptables',
  'ip',
  'nsenter',
  'unshare',
  'mount',
  'openssl',
] as const;
export const CNI_PLUGINS = ['bridge', 'host-local', 'loopback'] as const;
const CNI_BIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];
const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Prerequisites {
  readonly ok: boolean;
  readonly binaries: Readonly<Record<string, string>>;
  readonly cniBinDir?: string;
  /** One line per missing thing, with how to get it. */
  readonly problems: readonly string[];
}

/** Whether this machine can run the cluster: root, the peers built, the Debian packages installed. */
export function checkPrerequisites(): Prerequisites {
  const problems: string[] = [];
  const binaries: Record<string, string> = {};
  const missingPeers: string[] = [];
  for (const b of PEER_BINARIES) {
    const f = peerBinary(b);
    if (f) binaries[b] = f;
    else missingPeers.push(b);
  }
  if (missingPeers.length) {
    const peers = [...new Set(missingPeers.map((b) => peerSpecOfBinary(b).name))];
    problems.push(
      `peers not built (missing ${missingPeers.join(', ')} under ${peersCacheRoot()}): run \`npm run peers -- ${peers.join(' ')}\``,
    );
  }
  const missingCmds: string[] = [];
  for (const c of HOST_COMMANDS) if (!hasCommand(c)) missingCmds.push(c);
  const cniBinDir = CNI_BIN_DIRS.find((d) => CNI_PLUGINS.every((p) => fs.existsSync(path.join(d, p))));
  if (!cniBinDir) missingCmds.push(`CNI plugins (${CNI_PLUGINS.join(', ')})`);
  if (missingCmds.length) {
    problems.push(
      `missing ${missingCmds.join(', ')}: apt-get install containerd runc containernetworking-plugins iptables iproute2 openssl`,
    );
  }
  if (process.getuid?.() !== 0) problems.push('the local cluster needs root (network namespace, mounts, cgroups)');
  return { ok: problems.length === 0, binaries, ...(cniBinDir ? { cniBinDir } : {}), problems };
}

export interface LocalClusterOptions {
  /** State folder; defaultStateDir() ($TRELLIS_CLUSTER_DIR or ~/.cache/trellis/cluster) by default. */
  readonly dir?: string;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** The cluster's processes die with this Node process (tests); false for `npm run cluster -- up`. */
  readonly tied?: boolean;
  /** How long to wait for another local cluster to go (0: fail at once). */
  readonly lockWaitMs?: number;
  /** More image tarballs to import (besides pause and the Trellis images). */
  readonly images?: readonly ImageTarball[];
}

export interface LocalCluster {
  readonly dir: string;
  readonly layout: Layout;
  /** https://10.201.0.2:6443, reachable from the host through the veth. */
  readonly server: string;
  /** Admin kubeconfig (system:masters). */
  readonly kubeconfigPath: string;
  readonly caPem: string;
  readonly adminToken: string;
  readonly nodeIp: string;
  readonly nodeName: string;
  readonly serviceAccountIssuer: string;
  readonly pids: Readonly<Record<string, number>>;
  /** Log file of each component. */
  readonly logs: Readonly<Record<string, string>>;
  /** Milliseconds: from start to each milestone. */
  readonly timings: Readonly<Record<string, number>>;
  readonly kubectl: Kubectl;
  /** Imports an OCI layout tarball into the node's containerd (and pins it). */
  importImage(image: ImageTarball): Promise<void>;
  /** Runs a command inside the cluster's network namespace (e.g. curl a ClusterIP). */
  netnsFile: string;
  down(opts?: { keepDir?: boolean; background?: boolean; log?: (line: string) => void }): Promise<TeardownReport>;
}

async function waitUntil(
  what: string,
  timeoutMs: number,
  procs: readonly Proc[],
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    for (const p of procs) {
      if (p.exit) throw new Error(`${p.name} exited (${p.exit.code ?? p.exit.signal}) before ${what}:\n${logTail(p)}`);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const tails = procs.map((p) => `--- ${p.name} (${p.logFile}):\n${logTail(p, 15)}`).join('\n');
      throw new Error(`not ${what} after ${timeoutMs} ms (last probe error: ${lastError || 'none'})\n${tails}`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

async function makePki(l: Layout) {
  fs.mkdirSync(l.pki, { recursive: true, mode: 0o700 });
  const ca = await makeCa(l.pki);
  const client = (name: string, cn: string, org?: string) =>
    signCert(l.pki, ca, name, { cn, usage: 'clientAuth', ...(org ? { org } : {}) });
  const [serving, kubeletServing, apiKubeletClient, kubelet, kcm, scheduler, proxy, coredns] = await Promise.all([
    signCert(l.pki, ca, 'apiserver', {
      cn: 'kube-apiserver',
      usage: 'serverAuth',
      ips: [NODE_IP, KUBERNETES_SERVICE_IP, '127.0.0.1'],
      dnsNames: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
    }),
    signCert(l.pki, ca, 'kubelet-serving', {
      cn: NODE_NAME,
      usage: 'serverAuth',
      ips: [NODE_IP],
      dnsNames: [NODE_NAME],
    }),
    client('apiserver-kubelet-client', 'kube-apiserver-kubelet-client', 'system:masters'),
    client('kubelet', `system:node:${NODE_NAME}`, 'system:nodes'),
    client('kube-controller-manager', 'system:kube-controller-manager'),
    client('kube-scheduler', 'system:kube-scheduler'),
    client('kube-proxy', 'system:kube-proxy'),
    client('coredns', 'system:coredns'),
  ]);
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saPub = path.join(l.pki, 'sa.pub');
  const saKey = path.join(l.pki, 'sa.key');
  fs.writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
  fs.writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const adminToken = crypto.randomBytes(24).toString('hex');
  const tokensFile = path.join(l.pki, 'tokens.csv');
  fs.writeFileSync(tokensFile, `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  return {
    ca,
    serving,
    kubeletServing,
    apiKubeletClient,
    kubelet,
    kcm,
    scheduler,
    proxy,
    coredns,
    saPub,
    saKey,
    adminToken,
    tokensFile,
  };
}

function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Starts the cluster; resolves once it is usable. On failure it is torn down (logs kept) and the error thrown. */
export async function upLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const log = options.log ?? (() => undefined);
  const tied = options.tied ?? true;
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  const mark = (name: string): void => {
    timings[name] = Date.now() - t0;
  };
  const pre = checkPrerequisites();
  if (!pre.ok) throw new Error(`the local cluster cannot run here:\n  ${pre.problems.join('\n  ')}`);
  const bin = (b: (typeof PEER_BINARIES)[number]): string => pre.binaries[b] as string;
  const l = layout(path.resolve(options.dir ?? defaultStateDir()));

  log(`taking the machine-wide cluster lock (${l.dir})`);
  await acquireLock(l.dir, process.pid, {
    waitMs: options.lockWaitMs ?? 0,
    onWait: (h) => log(`waiting for the local cluster of ${h.dir} (pid ${h.pid}) to go`),
  });
  // Leftovers of an earlier cluster in the same folder (killed without `down`).
  if (readState(l)) {
    log('removing what is left of an earlier cluster in this folder');
    await teardown(l);
  }
  fs.rmSync(l.dir, { recursive: true, force: true });
  for (const d of [
    l.dir,
    l.logs,
    l.config,
    l.kubeconfigs,
    l.containerd,
    l.cniConf,
    l.cniIpam,
    l.kubelet,
    l.sysctls,
    l.podLogs,
  ]) {
    fs.mkdirSync(d, { recursive: true });
  }
  const state: ClusterState = { version: 1, dir: l.dir, startedAt: t0, before: snapshotHost(), pids: {} };
  writeState(l, state);
  const procs: Proc[] = [];
  const start = (name: string, binary: string, args: readonly string[], wrap: 'netns' | 'kubelet' = 'netns'): Proc => {
    const argv =
      wrap === 'netns'
        ? [`--net=${l.netns}`, '--', binary, ...args]
        : [`--net=${l.netns}`, '--', 'unshare', '-m', '--propagation', 'unchanged', '--', 'sh', binary, ...args];
    const proc = startProcess(name, 'nsenter', argv, l.logs, { tied, env: { PATH: PATH_ENV } });
    procs.push(proc);
    state.pids[name] = proc.pid;
    writeState(l, state);
    return proc;
  };
  try {
    log('network namespace, veth pair trlc0 (10.201.0.1) <-> trlc1 (10.201.0.2), cgroup root, kubelet root mount');
    await createNetwork(l);
    createCgroupRoot();
    // The kubelet runs in a mount namespace of its own; its root is a shared mount so that volume mounts it
    // makes there reach containerd (in the host's mount namespace).
    await run('mount', ['--bind', l.kubelet, l.kubelet]);
    await run('mount', ['--make-shared', l.kubelet]);
    for (const [k, v] of Object.entries(KUBELET_SYSCTLS))
      fs.writeFileSync(path.join(l.sysctls, k.replace(/\//g, '.')), `${v}\n`);
    mark('network');

    log('certificates (openssl) and images (pause + npm run images), etcd and containerd starting');
    const pkiP = makePki(l);
    const imagesP = buildClusterImages(bin('pause'), log);
    pkiP.catch(() => undefined);
    imagesP.catch(() => undefined);

    const etcd = start('etcd', bin('etcd'), [
      '--name=trellis',
      `--data-dir=${l.etcd}`,
      '--listen-client-urls=http://127.0.0.1:2379',
      '--advertise-client-urls=http://127.0.0.1:2379',
      '--listen-peer-urls=http://127.0.0.1:2380',
      '--initial-advertise-peer-urls=http://127.0.0.1:2380',
      '--initial-cluster=trellis=http://127.0.0.1:2380',
      '--listen-metrics-urls=http://127.0.0.1:2381',
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);

    fs.writeFileSync(l.containerdConfig, containerdConfig(l, pre.cniBinDir as string));
    fs.writeFileSync(path.join(l.cniConf, '10-trellis.conflist'), cniConfList(l));
    const containerd = start('containerd', 'containerd', ['--config', l.containerdConfig]);

    const pki = await pkiP;
    mark('pki');
    const caPem = fs.readFileSync(pki.ca.certFile, 'utf8');
    const server = `https://${NODE_IP}:${APISERVER_PORT}`;
    const apiserver = start('kube-apiserver', bin('kube-apiserver'), [
      '--etcd-servers=http://127.0.0.1:2379',
      '--bind-address=0.0.0.0',
      `--secure-port=${APISERVER_PORT}`,
      `--advertise-address=${NODE_IP}`,
      `--cert-dir=${path.join(l.pki, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.serving.certFile}`,
      `--tls-private-key-file=${pki.serving.keyFile}`,
      `--client-ca-file=${pki.ca.certFile}`,
      `--token-auth-file=${pki.tokensFile}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--allow-privileged=true',
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      `--kubelet-client-certificate=${pki.apiKubeletClient.certFile}`,
      `--kubelet-client-key=${pki.apiKubeletClient.keyFile}`,
      `--kubelet-certificate-authority=${pki.ca.certFile}`,
      '--kubelet-preferred-address-types=InternalIP',
      // Webhooks and APIServices registered by Service are dialled at an endpoint's pod IP.
      '--enable-aggregator-routing=true',
      '--profiling=false',
    ]);

    // Kubeconfigs: the admin's (token) for the host, one client certificate per component.
    const kc = (name: string, cert: { certFile: string; keyFile: string }): string => {
      const file = path.join(l.kubeconfigs, `${name}.kubeconfig`);
      writeKubeconfig(file, { server, caPem, user: cert, name: 'trellis-local', userName: name });
      return file;
    };
    writeKubeconfig(l.kubeconfig, {
      server,
      caPem,
      user: { token: pki.adminToken },
      name: 'trellis-local',
      namespace: 'default',
    });
    const kubectl = makeKubectl(bin('kubectl'), l.kubeconfig, l.dir);

    const socket = l.containerdSocket;
    await waitUntil('serving (ctr version)', 60_000, [containerd], async () => {
      return (await run('ctr', ['-a', socket, 'version'], { allowFailure: true, timeoutMs: 5_000 })).code === 0;
    });
    mark('containerd');
    const images = [...(await imagesP), ...(options.images ?? [])];
    mark('images built');
    log(`importing ${images.length} images into containerd (${images.map((i) => i.reference).join(', ')})`);
    for (const image of images) await importImage(socket, image);
    mark('images imported');

    log('waiting for kube-apiserver /readyz');
    await waitUntil('ready (/readyz)', 120_000, [etcd, apiserver], async () => {
      return (await request(`${server}/readyz`, { ca: caPem, token: pki.adminToken, ownHost: NODE_IP })).status === 200;
    });
    mark('apiserver');
    await kubectl(['apply', '-f', '-'], { input: bootstrapManifest() });

    log('starting kube-controller-manager, kube-scheduler, kubelet, kube-proxy, CoreDNS');
    const kcm = start('kube-controller-manager', bin('kube-controller-manager'), [
      `--kubeconfig=${kc('kube-controller-manager', pki.kcm)}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.saKey}`,
      `--root-ca-file=${pki.ca.certFile}`,
      '--cluster-name=trellis-local',
      '--profiling=false',
    ]);
    const scheduler = start('kube-scheduler', bin('kube-scheduler'), [
      `--kubeconfig=${kc('kube-scheduler', pki.scheduler)}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=false',
      '--profiling=false',
    ]);
    fs.writeFileSync(
      l.kubeletConfig,
      kubeletConfig(l, {
        caFile: pki.ca.certFile,
        certFile: pki.kubeletServing.certFile,
        keyFile: pki.kubeletServing.keyFile,
      }),
    );
    fs.writeFileSync(
      l.kubeletScript,
      kubeletScript(l, bin('kubelet'), [
        `--config=${l.kubeletConfig}`,
        `--kubeconfig=${kc('kubelet', pki.kubelet)}`,
        `--root-dir=${l.kubelet}`,
        `--cert-dir=${path.join(l.kubelet, 'pki')}`,
        `--node-ip=${NODE_IP}`,
        `--hostname-override=${NODE_NAME}`,
        '--v=1',
      ]),
    );
    const kubelet = start('kubelet', l.kubeletScript, [], 'kubelet');
    fs.writeFileSync(l.kubeProxyConfig, kubeProxyConfig(kc('kube-proxy', pki.proxy)));
    const kubeProxy = start('kube-proxy', bin('kube-proxy'), [`--config=${l.kubeProxyConfig}`]);
    fs.writeFileSync(l.corefile, corefile(kc('coredns', pki.coredns)));
    const coredns = start('coredns', bin('coredns'), ['-conf', l.corefile]);

    const all = [etcd, apiserver, containerd, kcm, scheduler, kubelet, kubeProxy, coredns];
    log('waiting for the node to be Ready');
    await waitUntil('Ready (node)', 120_000, all, async () => {
      const r = await kubectl(
        ['get', 'node', NODE_NAME, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'],
        {
          allowFailure: true,
        },
      );
      return r.stdout.trim() === 'True';
    });
    mark('node ready');
    log('waiting for the default ServiceAccount, kube-proxy and CoreDNS');
    await waitUntil('ready (ServiceAccount default/default)', 60_000, all, async () => {
      return (await kubectl(['get', 'serviceaccount', 'default', '-n', 'default'], { allowFailure: true })).code === 0;
    });
    await waitUntil('healthy (kube-proxy /healthz)', 60_000, all, async () => {
      return (
        (await request(`http://${NODE_IP}:${KUBE_PROXY_HEALTHZ_PORT}/healthz`, { ownHost: NODE_IP })).status === 200
      );
    });
    await waitUntil('ready (CoreDNS /ready)', 60_000, all, async () => {
      return (await request(`http://${NODE_IP}:${COREDNS_READY_PORT}/ready`, { ownHost: NODE_IP })).status === 200;
    });
    mark('ready');
    state.server = server;
    state.kubeconfig = l.kubeconfig;
    state.readyAt = Date.now();
    writeState(l, state);
    log(`cluster ready in ${fmt(Date.now() - t0)}`);

    const logs = Object.fromEntries(procs.map((p) => [p.name, p.logFile]));
    return {
      dir: l.dir,
      layout: l,
      server,
      kubeconfigPath: l.kubeconfig,
      caPem,
      adminToken: pki.adminToken,
      nodeIp: NODE_IP,
      nodeName: NODE_NAME,
      serviceAccountIssuer: SERVICE_ACCOUNT_ISSUER,
      pids: { ...state.pids },
      logs,
      timings,
      kubectl,
      netnsFile: l.netns,
      importImage: (image) => importImage(socket, image),
      down: (opts) => downLocalCluster(l.dir, opts),
    };
  } catch (err) {
    log(`up failed; tearing down (logs kept in ${l.logs})`);
    await downLocalCluster(l.dir, { keepDir: true }).catch(() => undefined);
    throw err;
  }
}

/** Tears the cluster in `dir` down and releases the machine-wide lock when it held it. */
export async function downLocalCluster(
  dir: string = defaultStateDir(),
  opts: { keepDir?: boolean; background?: boolean; log?: (line: string) => void } = {},
): Promise<TeardownReport> {
  const l = layout(path.resolve(dir));
  const report = await teardown(l, opts);
  releaseLock(l.dir);
  return report;
}
