// The identity and metadata a proxy announces in `DiscoveryRequest.node` (design.md §3). Only the first
// request of a stream carries the node (grpc-js-xds and Envoy both send it once), so a stream keeps it.
import type { Node } from '../envoy/gen/envoy/config/core/v3/base_pb.js';

export type ProxyType = 'envoy' | 'grpc';

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** What a generator may know about the proxy it generates for. */
export interface ProxyInfo {
  /** `node.id`, `<pod>.<namespace>` for injected workloads. */
  readonly id: string;
  readonly cluster: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly instanceIps: readonly string[];
  /** `PROXY_TYPE`; `envoy` unless the metadata says `grpc`. */
  readonly proxyType: ProxyType;
  readonly trustDomain: string;
  /** `node.locality`: where the proxy says it runs (empty fields when it does not say). */
  readonly locality: Locality;
  /**
   * `NODE_NAME`: the Kubernetes Node the proxy's Pod runs on (the injector sets it from `spec.nodeName`); the
   * proxy's locality is that Node's when `locality` is empty (translate/locality.ts). Absent when not sent.
   */
  readonly nodeName?: string;
  readonly userAgent: string;
  /**
   * True when namespace, service account and trust domain are those of the stream's verified client
   * certificate (the TLS port, authn.ts bindProxy); absent or false when only announced (plaintext port).
   */
  readonly authenticated?: boolean;
}

/**
 * The ProxyInfo of the Envoy sidecar the injector gives a Pod (what its bootstrap announces, sidecar/proxy-node.ts),
 * for translating a Pod's config when its proxy is not connected (describe, authz check).
 */
export function sidecarProxyInfo(
  pod: Pick<ProxyInfo, 'id' | 'namespace' | 'serviceAccount' | 'labels' | 'instanceIps' | 'trustDomain'> &
    Partial<Pick<ProxyInfo, 'locality'>>,
): ProxyInfo {
  return {
    cluster: '',
    proxyType: 'envoy',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: '',
    ...pod,
  };
}

function stringField(metadata: Readonly<Record<string, unknown>>, key: string): string {
  const value = metadata[key];
  return typeof value === 'string' ? value : '';
}

/**
 * Reads a Node. `id` is required; the rest defaults. Errors name the field. `INSTANCE_IPS` is a
 * comma-separated string (as Istio sends it) or a list; `LABELS` a string map.
 */
export function proxyInfoFromNode(node: Node | undefined): ProxyInfo {
  if (!node) throw new Error('the first request of a stream must carry node');
  if (node.id === '') throw new Error('node.id must not be empty');
  const metadata: Readonly<Record<string, unknown>> = node.metadata ?? {};
  const labels: Record<string, string> = {};
  const rawLabels = metadata.LABELS;
  if (rawLabels !== undefined) {
    if (typeof rawLabels !== 'object' || rawLabels === null || Array.isArray(rawLabels)) {
      throw new Error('node.metadata.LABELS must be a map of strings');
    }
    for (const [key, value] of Object.entries(rawLabels)) {
      if (typeof value !== 'string') throw new Error(`node.metadata.LABELS.${key} must be a string`);
      labels[key] = value;
    }
  }
  const rawIps = metadata.INSTANCE_IPS;
  const instanceIps =
    typeof rawIps === 'string'
      ? rawIps
          .split(',')
          .map((ip) => ip.trim())
          .filter((ip) => ip !== '')
      : Array.isArray(rawIps)
        ? rawIps.filter((ip): ip is string => typeof ip === 'string')
        : [];
  const rawType = stringField(metadata, 'PROXY_TYPE');
  if (rawType !== '' && rawType !== 'envoy' && rawType !== 'grpc') {
    throw new Error(`node.metadata.PROXY_TYPE must be "envoy" or "grpc", not "${rawType}"`);
  }
  const rawNodeName = metadata.NODE_NAME;
  if (rawNodeName !== undefined && typeof rawNodeName !== 'string') {
    throw new Error('node.metadata.NODE_NAME must be a string');
  }
  return {
    id: node.id,
    cluster: node.cluster,
    namespace: stringField(metadata, 'NAMESPACE'),
    serviceAccount: stringField(metadata, 'SERVICE_ACCOUNT'),
    labels,
    instanceIps,
    proxyType: rawType === 'grpc' ? 'grpc' : 'envoy',
    trustDomain: stringField(metadata, 'TRUST_DOMAIN') || 'cluster.local',
    locality: {
      region: node.locality?.region ?? '',
      zone: node.locality?.zone ?? '',
      subZone: node.locality?.subZone ?? '',
    },
    ...(rawNodeName ? { nodeName: rawNodeName } : {}),
    userAgent: [
      node.userAgentName,
      node.userAgentVersionType.case === 'userAgentVersion' ? node.userAgentVersionType.value : '',
    ]
      .filter((s) => s !== '')
      .join('/'),
  };
}
