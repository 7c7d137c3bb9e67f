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
// - an ExternalName Service: STRICT_DNS (Envoy) / LOGICAL_DNS (gRPC) to the external name.
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
import { destinationRuleFor, servicesVisibleFrom } from '../model/lookup.js';
import { canonicalJson } from '../model/canonical.js';
import { serviceDefinitionKey } from '../model/parts.js';
import { destinationMtls } from '../model/peer-authentication.js';
import { isHttp2Protocol, isHttpProtocol } from '../model/protocol.js';
import type { MergedDestinationRule, MeshService, MeshServicePort } from '../model/snapshot.js';
import type { Subset } from '../../crds/types.js';
import { outboundClusterName, outboundSni } from './cluster-names.js';
import { clusterPolicy, type ClusterPolicy } from './cluster-policy.js';
import { specialClusters, staticAssignment } from './cluster-special.js';
import { outboundTlsFields } from './cluster-tls.js';
import {
  circuitBreakerFields,
  connectTimeoutField,
  httpProtocolOptionsFields,
  loadBalancerFields,
  outlierDetectionFields,
  tcpKeepaliveFields,
  type ClusterInit,
} from './cluster-traffic.js';
import { spiffeId, type TranslateContext } from './context.js';

/** Every cluster of the proxy, sorted by name. Pure: the same context gives equal messages. */
export function buildClusters(ctx: TranslateContext): Cluster[] {
  return sortByName([...outboundClusters(ctx), ...specialClusters(ctx)]);
}

/** Sorts resources by name, in place (names are unique within a type). */
export function sortByName<T extends { readonly name: string }>(resources: T[]): T[] {
  return resources.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The outbound clusters of the proxy: those of every Service its namespace sees, by FQDN. */
export function outboundClusters(ctx: TranslateContext): Cluster[] {
  return servicesVisibleFrom(ctx.snapshot, ctx.proxy.namespace).flatMap((service) =>
    serviceClusters(ctx, service, destinationRuleFor(ctx.snapshot, service.fqdn, ctx.proxy.namespace)),
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
    out.push(outboundCluster(ctx, service, port, rule, undefined));
    for (const subset of rule?.subsets ?? []) out.push(outboundCluster(ctx, service, port, rule, subset));
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
  const ports = service.ports.map((port) =>
    port.transport !== 'TCP'
      ? ''
      : `${destinationMtls(ctx.snapshot, service, port, ctx.mesh.mtlsMode)}/${port.endpoints.length > 0 && port.endpoints.every((e) => e.inMesh)}`,
  );
  return JSON.stringify([ctx.proxy.proxyType, serviceDefinitionKey(service), ruleKey, ports]);
}

type Discovery = 'eds' | 'originalDst' | 'dns';

function discoveryOf(ctx: TranslateContext, service: MeshService, policy: ClusterPolicy): Discovery {
  if (service.externalName !== undefined) return 'dns';
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
  const http2 = isHttp2Protocol(port.protocol);
  const pool = policy.connectionPool;
  return create(ClusterSchema, {
    name,
    ...discoveryFields(ctx, name, service, port, discovery),
    ...(discovery === 'originalDst' ? {} : loadBalancerFields(policy.loadBalancer, proxyType)),
    ...connectTimeoutField(pool, ctx.mesh.connectTimeout),
    ...circuitBreakerFields(pool),
    ...outlierDetectionFields(policy.outlierDetection, proxyType),
    ...(proxyType === 'envoy'
      ? { ...tcpKeepaliveFields(pool), ...httpProtocolOptionsFields(pool, isHttpProtocol(port.protocol), http2) }
      : {}),
    ...outboundTlsFields({
      proxyType,
      ...(policy.tls ? { tls: policy.tls } : {}),
      meshSni: outboundSni(port.port, subset?.name ?? '', service.fqdn),
      meshSans: service.serviceAccounts.map((sa) => spiffeId(ctx.mesh.trustDomain, service.namespace, sa)),
      fqdn: service.fqdn,
      http2,
      autoMtls: autoMtlsOf(discovery, port),
      destinationMtls: destinationMtls(ctx.snapshot, service, port, ctx.mesh.mtlsMode),
    }),
  });
}

function autoMtlsOf(discovery: Discovery, port: MeshServicePort): 'endpointMetadata' | 'always' | 'never' {
  if (discovery === 'eds') return 'endpointMetadata';
  // A DNS (ExternalName) destination is outside the mesh: mTLS would only break it.
  if (discovery === 'dns') return 'never';
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
