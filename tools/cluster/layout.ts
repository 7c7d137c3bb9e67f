// Where everything of the local cluster lives: its state folder, the names and addresses it owns, and the
// files inside the folder. One cluster runs at a time on a machine (see lock.ts), so names are fixed.
//
// Addresses: one veth pair joins the host (trlc0, 10.201.0.1/30) to the cluster's network namespace
// (trlc1, 10.201.0.2/30 = the node IP). Every cluster process listens inside that namespace; the apiserver
// is reached from the host at https://10.201.0.2:6443. Pods get 10.202.0.0/24 on the bridge cni0 inside
// the namespace; Services 10.96.0.0/16 (kubernetes = 10.96.0.1, kube-dns = 10.96.0.10). The host has a
// route to the pod and Service ranges through the veth, which goes away with the link.
import os from 'node:os';
import path from 'node:path';

export const NODE_NAME = 'trellis-node';
export const HOST_VETH = 'trlc0';
export const NS_VETH = 'trlc1';
export const HOST_IP = '10.201.0.1';
export const NODE_IP = '10.201.0.2';
export const VETH_PREFIX = 30;
export const POD_CIDR = '10.202.0.0/24';
export const SERVICE_CIDR = '10.96.0.0/16';
export const KUBERNETES_SERVICE_IP = '10.96.0.1';
export const DNS_SERVICE_IP = '10.96.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';
export const APISERVER_PORT = 6443;
export const CRI_STREAM_PORT = 10010;
export const KUBE_PROXY_HEALTHZ_PORT = 10256;
export const COREDNS_READY_PORT = 8181;
/** The kubelet's cgroupRoot, under each cgroup (v1) hierarchy. */
export const CGROUP_ROOT = 'trellis-cluster';
/** The CNI network name (also the prefix of libcni's cache files in /var/lib/cni/results). */
export const CNI_NETWORK = 'trellis-cluster';
export const PAUSE_IMAGE = 'localhost/trellis/pause:1';
export const SERVICE_ACCOUNT_ISSUER = `https://kubernetes.default.svc.${CLUSTER_DOMAIN}`;

/** The default state folder: $TRELLIS_CLUSTER_DIR or ~/.cache/trellis/cluster. */
export function defaultStateDir(): string {
  return process.env.TRELLIS_CLUSTER_DIR ?? path.join(os.homedir(), '.cache', 'trellis', 'cluster');
}

/** The files and folders of one cluster's state folder. */
export function layout(dir: string) {
  const p = (...parts: string[]): string => path.join(dir, ...parts);
  return {
    dir,
    state: p('state.json'),
    netns: p('netns'),
    pki: p('pki'),
    logs: p('logs'),
    kubeconfig: p('kubeconfig'),
    kubeconfigs: p('kubeconfigs'),
    etcd: p('etcd'),
    containerd: p('containerd'),
    containerdConfig: p('containerd', 'config.toml'),
    containerdSocket: p('containerd', 'containerd.sock'),
    cniConf: p('cni', 'net.d'),
    cniIpam: p('cni', 'ipam'),
    kubelet: p('kubelet'),
    kubeletConfig: p('config', 'kubelet.yaml'),
    kubeletScript: p('config', 'kubelet.sh'),
    sysctls: p('config', 'sysctls'),
    podLogs: p('pod-logs'),
    kubeProxyConfig: p('config', 'kube-proxy.yaml'),
    corefile: p('config', 'Corefile'),
    config: p('config'),
    images: p('images'),
  };
}

export type Layout = ReturnType<typeof layout>;
