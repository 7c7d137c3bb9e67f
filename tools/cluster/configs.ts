// The configuration files of the local cluster's components, as pure functions of its layout. Each setting
// that keeps the host untouched says why next to it (tools/cluster/README.md lists them all).
import { stringify as toYaml } from 'yaml';
import {
  CGROUP_ROOT,
  CLUSTER_DOMAIN,
  CNI_NETWORK,
  COREDNS_READY_PORT,
  CRI_STREAM_PORT,
  DNS_SERVICE_IP,
  KUBE_PROXY_HEALTHZ_PORT,
  NODE_IP,
  NODE_NAME,
  PAUSE_IMAGE,
  POD_CIDR,
  type Layout,
} from './layout.js';

/** containerd 1.6 (config version 2): own root, state and socket; CRI with CNI from /usr/lib/cni. */
export function containerdConfig(l: Layout, cniBinDir: string): string {
  return `version = 2
root = "${l.containerd}/root"
state = "${l.containerd}/state"
# Plugins that would touch host paths or are not needed.
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "${l.containerdSocket}"

[ttrpc]
  address = "${l.containerdSocket}.ttrpc"

[debug]
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  # Default /opt/containerd on the host.
  path = "${l.containerd}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below the current value.
  restrict_oom_score_adj = true
  # The kubelet reaches the streaming server (exec, logs -f, port-forward) at the node IP.
  stream_server_address = "${NODE_IP}"
  stream_server_port = "${CRI_STREAM_PORT}"
  # Never load an AppArmor profile into the host kernel; no SELinux here.
  disable_apparmor = true
  enable_selinux = false
  disable_hugetlb_controller = true
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${cniBinDir}"
    conf_dir = "${l.cniConf}"
    max_conf_num = 1
`;
}

/** One bridge network; host-local IPAM keeps its leases in the state folder (default /var/lib/cni). */
export function cniConfList(l: Layout): string {
  return (
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: CNI_NETWORK,
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: POD_CIDR }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: l.cniIpam,
            },
          },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}

/**
 * The host sysctls the kubelet insists on (pkg/kubelet/cm setupKernelTunables). It runs in its own mount
 * namespace where files with these values are bind-mounted over /proc/sys, so it reads what it wants and
 * never writes the host's.
 */
export const KUBELET_SYSCTLS: Readonly<Record<string, string>> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

export function kubeletConfig(l: Layout, pki: { caFile: string; certFile: string; keyFile: string }): string {
  return toYaml({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: NODE_IP,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    tlsCertFile: pki.certFile,
    tlsPrivateKeyFile: pki.keyFile,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: pki.caFile },
    },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${l.containerdSocket}`,
    cgroupDriver: 'cgroupfs',
    // Its own cgroup subtree (under every hierarchy), removed by `down`.
    cgroupRoot: `/${CGROUP_ROOT}`,
    cgroupsPerQOS: true,
    enforceNodeAllocatable: ['pods'],
    // No KUBE-FIREWALL / KUBE-KUBELET-CANARY chains in anyone's iptables.
    makeIPTablesUtilChains: false,
    // The host keeps its oom_score_adj (lowering it needs CAP_SYS_RESOURCE anyway).
    oomScoreAdj: 0,
    failSwapOn: false,
    protectKernelDefaults: false,
    clusterDNS: [DNS_SERVICE_IP],
    clusterDomain: CLUSTER_DOMAIN,
    // Pods get only cluster DNS, not the host's resolvers.
    resolvConf: '',
    podLogsDir: l.podLogs,
    volumePluginDir: `${l.kubelet}/volume-plugins`,
    staticPodPath: '',
    serializeImagePulls: false,
    // There is no registry: imported images must never be garbage-collected.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // A test machine's disk may be fuller than the defaults allow; evict only when really out.
    evictionHard: {
      'memory.available': '50Mi',
      'nodefs.available': '1%',
      'imagefs.available': '1%',
      'nodefs.inodesFree': '1%',
    },
    maxPods: 110,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    nodeStatusUpdateFrequency: '5s',
    shutdownGracePeriod: '0s',
    containerLogMaxSize: '5Mi',
    containerLogMaxFiles: 2,
  });
}

/**
 * The kubelet's start script, run as `nsenter --net=<netns> unshare -m --propagation unchanged sh <script>`:
 * a mount namespace of its own where /proc is private and the sysctl files are bind-mounted; the kubelet
 * root is a shared mount made by `up`, so volumes mounted under it still reach containerd.
 */
export function kubeletScript(l: Layout, kubeletBinary: string, args: readonly string[]): string {
  const binds = Object.keys(KUBELET_SYSCTLS)
    .map((k) => `mount --bind '${l.sysctls}/${k.replace(/\//g, '.')}' '/proc/sys/${k}'`)
    .join('\n');
  return `#!/bin/sh
set -eu
mount --make-rprivate /proc
${binds}
exec '${kubeletBinary}' ${args.map((a) => `'${a}'`).join(' ')}
`;
}

/**
 * kube-proxy in iptables mode inside the cluster namespace. masqueradeAll: without br_netfilter a reply
 * between two pods on the same bridge would skip conntrack's reverse NAT. conntrack settings 0: never write
 * the host-global nf_conntrack sysctls. localhostNodePorts off: no route_localnet.
 */
export function kubeProxyConfig(kubeconfig: string): string {
  return toYaml({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig },
    hostnameOverride: NODE_NAME,
    bindAddress: NODE_IP,
    healthzBindAddress: `${NODE_IP}:${KUBE_PROXY_HEALTHZ_PORT}`,
    metricsBindAddress: '127.0.0.1:10249',
    clusterCIDR: POD_CIDR,
    iptables: { masqueradeAll: true, localhostNodePorts: false, syncPeriod: '30s', minSyncPeriod: '0s' },
    conntrack: {
      maxPerCore: 0,
      min: 0,
      tcpEstablishedTimeout: '0s',
      tcpCloseWaitTimeout: '0s',
      udpTimeout: '0s',
      udpStreamTimeout: '0s',
    },
    nodePortAddresses: [`${NODE_IP}/32`],
  });
}

/** CoreDNS: cluster names from the kubernetes plugin, on the node IP (behind the kube-dns Service). */
export function corefile(kubeconfig: string): string {
  return `.:53 {
    bind ${NODE_IP}
    errors
    health 127.0.0.1:8080
    ready ${NODE_IP}:${COREDNS_READY_PORT}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
    loadbalance
}
`;
}

/**
 * What a cluster's add-on manifests would create: CoreDNS's read access (it authenticates as the user
 * system:coredns) and the kube-dns Service, whose one endpoint is CoreDNS on the node IP.
 */
export function bootstrapManifest(): string {
  const docs = [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:coredns' }],
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
      spec: {
        clusterIP: DNS_SERVICE_IP,
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
          { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
        ],
      },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'kube-dns-coredns',
        namespace: 'kube-system',
        labels: {
          'kubernetes.io/service-name': 'kube-dns',
          'endpointslice.kubernetes.io/managed-by': 'trellis-local-cluster',
        },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [NODE_IP], conditions: { ready: true }, nodeName: NODE_NAME }],
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
      ],
    },
  ];
  return docs.map((d) => toYaml(d)).join('---\n');
}
