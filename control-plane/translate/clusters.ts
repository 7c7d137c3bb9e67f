// CDS: the clusters of one proxy (envoy-translation.md §1). One cluster per visible Service port and one
// per subset of the DestinationRule that applies, `outbound|<port>|<subset>|<fqdn>`; for an Envoy sidecar
// also the passthrough, black hole, inbound and collector clusters (cluster-special.ts). Policy
// resolution is in cluster-policy.ts, its Envoy fields in cluster-traffic.ts and cluster-tls.ts.
//
// Discovery type:
// - a ClusterIP Service: EDS, resource name = cluster name (endpoints.ts answers it, subsets filtered there);
// - Envoy, a headless Service or `simple: PASSTHROUGH`: ORIGINAL_DST (the caller dialled a Pod IP);
//   proxyless gRPC cannot do ORIGINAL_DST (grpc-js NACKs every type but EDS, LOGICAL_DNS and aggregate),
//   so it keeps EDS over the Pod IPs there;
// - an ExternalName Service: STRICT_DNS (Envoy) / LOGICAL_DNS (gRPC) to the external name;
// - a ServiceEntry host: by its resolution (service-entry-clusters.ts).
//
// Left out on purpose: Istio's `alt_stat_name: "<name>;"` (only for istio-proxy's stats tag rules) and
// its `istio.metadata_exchange` cluster filter (not in upstream Envoy).
//
// The clusters share constant sub-messages (config sources, durations, TLS contexts, protocol options)
// with each other and with other proxies' clusters: never mutate a returned message.
import { create } from '@bufbuild/protobuf';
import {
  Cluster_DiscoveryType,
  Cluster_DnsLookupFamily,
  Cluster_LbPolicy,
  ClusterSchema,
  type Cluster,
} from '../envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import { ApiVersion, ConfigSourceSchema } from '../envoy/gen/envoy/config/core/v3/config_source_pb.js';
import { destinationRuleFor } from '../model/lookup.js';
import { scopedServices } from './scope.js';
import { canonicalJson } from '../model/canonical.js';
import { endpointsKey, serviceDefinitionKey } from '../model/parts.js';
import { destinationMtls } from '../model/peer-authentication.js';
import { isHttp2Protocol, isHttpProtocol } from '../model/protocol.js';
import type { MergedDestinationRule, MeshService, MeshServicePort } from '../model/snapshot.js';
import type { Subset } from '../../crds/types.js';
import { outboundClusterName, outboundSni } from './cluster-names.js';
import { clusterPolicy, type ClusterPolicy } from './cluster-policy.js';
import { specialClusters, staticAssignment } from './cluster-special.js';
import { dnsAssignment, serviceEntryDiscovery, type Discovery } from './service-entry-clusters.js';
import { grpcCannotOriginate, outboundTlsFields } from './cluster-tls.js';
import {
  circuitBreakerFields,
  commonLbConfigFields,
  connectTimeoutField,
  httpProtocolOptionsFields,
  loadBalancerFields,
  outlierDetectionFields,
  tcpKeepaliveFields,
  upstreamProtocol,
  type ClusterInit,
} from './cluster-traffic.js';
import { spiffeId, type TranslateContext } from './context.js';
import { localityWeighted } from './locality.js';

/** Every cluster of the proxy, sorted by name. Pure: the same context gives equal messages. */
export function buildClusters(ctx: TranslateContext): Cluster[] {
  return sortByName([...outboundClusters(ctx), ...specialClusters(ctx)]);
}

/** Sorts resources by name, in place (names are unique within a type). */
export function sortByName<T extends { readonly name: string }>(resources: T[]): T[] {
  return resources.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The outbound clusters of the proxy: those of every Service in its scope (scope.ts), by FQDN. */
export function outboundClusters(ctx: TranslateContext): Cluster[] {
  return scopedServices(ctx).flatMap((service) =>
    serviceClusters(
      ctx,
      service,
      destinationRuleFor(ctx.snapshot, service.fqdn, ctx.proxy.namespace, ctx.proxy.labels),
    ),
  );
}

/**
 * The clusters of one Service for the DestinationRule that applies: per TCP port, the service cluster and
 * one per subset. Reads of the proxy only its type; of the Service everything but the endpoint addresses
 * (see `serviceClustersKey`).
 */
export function serviceClusters(
  ctx: TranslateContext,
  service: MeshService,
  rule: MergedDestinationRule | undefined,
): Cluster[] {
  const out: Cluster[] = [];
  for (const port of service.ports) {
    // UDP and SCTP are not proxied.
    if (port.transport !== 'TCP') continue;
    // Proxyless gRPC cannot originate TLS with files or Secrets (cluster-tls.ts): no such cluster for it.
    const skip = (subset: Subset | undefined): boolean =>
      ctx.proxy.proxyType === 'grpc' && grpcCannotOriginate(clusterPolicy(rule, port.port, subset).tls);
    if (!skip(undefined)) out.push(outboundCluster(ctx, service, port, rule, undefined));
    for (const subset of rule?.subsets ?? []) {
      if (!skip(subset)) out.push(outboundCluster(ctx, service, port, rule, subset));
    }
  }
  return out;
}

const ruleKeys = new WeakMap<MergedDestinationRule, string>();

/**
 * Everything `serviceClusters` reads, as a string: equal keys give equal clusters (the generator keeps
 * them across snapshots under it). The Service's definition key (model/parts.ts; no endpoints), the rule's
 * content, and per port what clusters read of the endpoints: the destination's mutual-TLS mode and whether
 * every endpoint is in the mesh. The mesh config is the generator's, fixed.
 */
export function serviceClustersKey(
  ctx: TranslateContext,
  service: MeshService,
  rule: MergedDestinationRule | undefined,
): string {
  let ruleKey = rule ? ruleKeys.get(rule) : '-';
  if (ruleKey === undefined && rule) ruleKeys.set(rule, (ruleKey = canonicalJson(rule)));
  // A ServiceEntry's DNS clusters carry their endpoints inline.
  const dns = service.serviceEntry?.resolution === 'DNS' || service.serviceEntry?.resolution === 'DNS_ROUND_ROBIN';
  const ports = service.ports.map((port) =>
    port.transport !== 'TCP'
      ? ''
      : `${destinationMtls(ctx.snapshot, service, port, ctx.mesh.mtlsMode)}/${port.endpoints.length > 0 && port.endpoints.every((e) => e.inMesh)}${dns ? `/${endpointsKey(port.endpoints)}` : ''}`,
  );
  return JSON.stringify([ctx.proxy.proxyType, serviceDefinitionKey(service), ruleKey, ports]);
}

function discoveryOf(ctx: TranslateContext, service: MeshService, policy: ClusterPolicy): Discovery {
  if (service.externalName !== undefined) return 'dns';
  if (service.serviceEntry) {
    const discovery = serviceEntryDiscovery(service, ctx.proxy.proxyType);
    // A STATIC entry's DestinationRule may still ask for PASSTHROUGH (Envoy only).
    return discovery === 'eds' && ctx.proxy.proxyType === 'envoy' && policy.loadBalancer?.simple === 'PASSTHROUGH'
      ? 'originalDst'
      : discovery;
  }
  if (ctx.proxy.proxyType === 'grpc') return 'eds';
  return service.headless || policy.loadBalancer?.simple === 'PASSTHROUGH' ? 'originalDst' : 'eds';
}

function outboundCluster(
  ctx: TranslateContext,
  service: MeshService,
  port: MeshServicePort,
  rule: MergedDestinationRule | undefined,
  subset: Subset | undefined,
): Cluster {
  const { proxyType } = ctx.proxy;
  const name = outboundClusterName(port.port, subset?.name ?? '', service.fqdn);
  const policy = clusterPolicy(rule, port.port, subset);
  const discovery = discoveryOf(ctx, service, policy);
  const pool = policy.connectionPool;
  // Envoy: h2UpgradePolicy may make an HTTP/1 port an HTTP/2 cluster (cluster-traffic.ts upstreamProtocol).
  const http2 =
    proxyType === 'envoy'
      ? upstreamProtocol(pool, isHttpProtocol(port.protocol), isHttp2Protocol(port.protocol), true) === 'http2'
      : isHttp2Protocol(port.protocol);
  return create(ClusterSchema, {
    name,
    ...discoveryFields(ctx, name, service, port, discovery),
    ...(discovery === 'originalDst' ? {} : loadBalancerFields(policy.loadBalancer, proxyType)),
    ...connectTimeoutField(pool, ctx.mesh.connectTimeout),
    ...circuitBreakerFields(pool),
    ...outlierDetectionFields(policy.outlierDetection, proxyType),
    ...commonLbConfigFields(
      policy.outlierDetection,
      discovery !== 'originalDst' && localityWeighted(policy),
      proxyType,
    ),
    ...(proxyType === 'envoy'
      ? {
          ...tcpKeepaliveFields(pool),
          ...httpProtocolOptionsFields(pool, isHttpProtocol(port.protocol), isHttp2Protocol(port.protocol), true),
        }
      : {}),
    ...outboundTlsFields({
      proxyType,
      ...(policy.tls ? { tls: policy.tls } : {}),
      meshSni: outboundSni(port.port, subset?.name ?? '', service.fqdn),
      meshSans: service.serviceAccounts.map((sa) => spiffeId(ctx.mesh.trustDomain, service.namespace, sa)),
      fqdn: service.fqdn,
      http2,
      autoMtls: service.serviceEntry?.external ? 'never' : autoMtlsOf(discovery, port),
      destinationMtls: destinationMtls(ctx.snapshot, service, port, ctx.mesh.mtlsMode),
    }),
  });
}

function autoMtlsOf(discovery: Discovery, port: MeshServicePort): 'endpointMetadata' | 'always' | 'never' {
  if (discovery === 'eds') return 'endpointMetadata';
  // A DNS (ExternalName, ServiceEntry) destination is outside the mesh: mTLS would only break it.
  if (discovery === 'dns' || discovery === 'logicalDns') return 'never';
  return port.endpoints.length > 0 && port.endpoints.every((e) => e.inMesh) ? 'always' : 'never';
}

function discoveryFields(
  ctx: TranslateContext,
  name: string,
  service: MeshService,
  port: MeshServicePort,
  discovery: Discovery,
): ClusterInit {
  const envoy = ctx.proxy.proxyType === 'envoy';
  if (discovery === 'originalDst') {
    return {
      clusterDiscoveryType: { case: 'type', value: Cluster_DiscoveryType.ORIGINAL_DST },
      lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    };
  }
  if (service.serviceEntry && (discovery === 'dns' || discovery === 'logicalDns')) {
    const logical = discovery === 'logicalDns';
    return {
      clusterDiscoveryType: {
        case: 'type',
        value: logical ? Cluster_DiscoveryType.LOGICAL_DNS : Cluster_DiscoveryType.STRICT_DNS,
      },
      // Istio: follow the records' TTLs; IPv4 first (Envoy's AUTO prefers IPv6).
      ...(envoy ? { dnsLookupFamily: Cluster_DnsLookupFamily.V4_PREFERRED, respectDnsTtl: true } : {}),
      loadAssignment: dnsAssignment(name, port, logical),
    };
  }
  if (discovery === 'dns') {
    return {
      // grpc-js resolves LOGICAL_DNS only (one locality, one endpoint, which this is).
      clusterDiscoveryType: {
        case: 'type',
        value: envoy ? Cluster_DiscoveryType.STRICT_DNS : Cluster_DiscoveryType.LOGICAL_DNS,
      },
      // Envoy's AUTO prefers IPv6; most clusters and external names answer IPv4 first.
      ...(envoy ? { dnsLookupFamily: Cluster_DnsLookupFamily.V4_PREFERRED } : {}),
      loadAssignment: staticAssignment(name, service.externalName ?? '', port.port),
    };
  }
  return {
    clusterDiscoveryType: { case: 'type', value: Cluster_DiscoveryType.EDS },
    edsClusterConfig: { serviceName: name, edsConfig: envoy ? ENVOY_EDS_SOURCE : GRPC_EDS_SOURCE },
  };
}

// Shared by every EDS cluster (never mutated).
const GRPC_EDS_SOURCE = create(ConfigSourceSchema, {
  configSourceSpecifier: { case: 'ads', value: {} },
  resourceApiVersion: ApiVersion.V3,
});
// Envoy: wait for EDS however long it takes instead of starting with no endpoints after 15 s (Istio);
// grpc-js has no such timer.
const ENVOY_EDS_SOURCE = create(ConfigSourceSchema, {
  configSourceSpecifier: { case: 'ads', value: {} },
  resourceApiVersion: ApiVersion.V3,
  initialFetchTimeout: { seconds: 0n },
});
