// The `node` a proxy announces to the control plane (design.md §3; what control-plane/xds/node.ts reads),
// shared by the Envoy and the gRPC bootstrap so both say the same thing in the same shape.
import { DEFAULT_TRUST_DOMAIN } from '../certs/spiffe.js';

export interface ProxyNodeOptions {
  readonly pod: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Default `cluster.local`. */
  readonly trustDomain?: string;
  /** `node.cluster`; default `<service-account>.<namespace>` (Istio uses the workload name). */
  readonly cluster?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly instanceIps?: readonly string[];
  readonly locality?: { readonly region?: string; readonly zone?: string; readonly subZone?: string };
  /** The Kubernetes Node the Pod runs on (metadata `NODE_NAME`): the control plane takes its locality from it. */
  readonly nodeName?: string;
}

export type ProxyType = 'envoy' | 'grpc';

/** The bootstrap `node` in proto3 JSON field names (snake_case), as both Envoy and grpc-js read it. */
export interface BootstrapNode {
  id: string;
  cluster: string;
  locality: { region?: string; zone?: string; sub_zone?: string };
  metadata: {
    NAMESPACE: string;
    SERVICE_ACCOUNT: string;
    LABELS: Record<string, string>;
    /** Comma-separated, as Istio sends it. */
    INSTANCE_IPS: string;
    PROXY_TYPE: ProxyType;
    TRUST_DOMAIN: string;
    /** Only when known. */
    NODE_NAME?: string;
  };
}

const NAME = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/** `node` with id `<pod>.<namespace>`; throws naming the option when a name is not a Kubernetes name. */
export function bootstrapNode(options: ProxyNodeOptions, proxyType: ProxyType): BootstrapNode {
  for (const field of ['pod', 'namespace', 'serviceAccount'] as const) {
    if (!NAME.test(options[field])) throw new Error(`${field} "${options[field]}" is not a Kubernetes name`);
  }
  const locality: BootstrapNode['locality'] = {};
  if (options.locality?.region) locality.region = options.locality.region;
  if (options.locality?.zone) locality.zone = options.locality.zone;
  if (options.locality?.subZone) locality.sub_zone = options.locality.subZone;
  return {
    id: `${options.pod}.${options.namespace}`,
    cluster: options.cluster ?? `${options.serviceAccount}.${options.namespace}`,
    locality,
    metadata: {
      NAMESPACE: options.namespace,
      SERVICE_ACCOUNT: options.serviceAccount,
      LABELS: Object.fromEntries(Object.entries(options.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      INSTANCE_IPS: (options.instanceIps ?? []).join(','),
      PROXY_TYPE: proxyType,
      TRUST_DOMAIN: options.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      ...(options.nodeName ? { NODE_NAME: options.nodeName } : {}),
    },
  };
}
