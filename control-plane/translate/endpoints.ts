// EDS: one ClusterLoadAssignment per EDS cluster of the proxy (envoy-translation.md §1.5; grpc-js-xds.md §2
// "EDS"). Subsets are filtered here, on the server side, as Istio does: the resource name is the cluster
// name, `outbound|<port>|<subset>|<fqdn>`.
//
// - Every requested name gets an assignment, an empty one when nothing backs it (an unknown name, a
//   subset that selects nothing): a cluster without its EDS answer warms forever (Envoy) or stalls the
//   channel (grpc-js); an empty one gives 503 UH / UNAVAILABLE, which says what is wrong.
// - Endpoints that are not ready are left out, as Istio does by default (sendUnhealthyEndpoints: false):
//   grpc-js would ignore them anyway (it uses only UNKNOWN and HEALTHY), and Envoy's panic mode would
//   otherwise send traffic to them when most of a service is starting. Ready ones are HEALTHY.
// - Endpoints are grouped by locality, each locality with `load_balancing_weight` = its endpoint count:
//   grpc-js drops a locality without a weight; Envoy ignores the weights unless a cluster asks for
//   locality-weighted balancing, so the proportions stay those of plain endpoint balancing.
// - Locality load balancing (locality.ts) then sets priorities (failover) or weights (distribute) from the
//   proxy's locality: the assignment of one cluster is the same for every proxy of one locality (and, with
//   failoverPriority, the same values of the labels it names), and shared between them.
// - No address is listed twice (grpc-js NACKs duplicates) and every address is an IP literal (grpc-js
//   NACKs names; FQDN EndpointSlices are skipped).
// - Envoy only: endpoints of Pods with a sidecar carry `envoy.transport_socket_match: {tlsMode: mesh}`, which
//   selects the mTLS entry of the cluster's transport_socket_matches (auto mutual TLS, cluster-tls.ts),
//   unless the Pod's PeerAuthentication mode on that port is DISABLE (its sidecar takes plaintext only).
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import net from 'node:net';
import { HealthStatus } from '../envoy/gen/envoy/config/core/v3/health_check_pb.js';
import {
  ClusterLoadAssignmentSchema,
  type ClusterLoadAssignment,
} from '../envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import { LbEndpointSchema, type LbEndpoint } from '../envoy/gen/envoy/config/endpoint/v3/endpoint_components_pb.js';
import { canonicalJson } from '../model/canonical.js';
import { destinationRuleFor, endpointsFor, findService, findServicePort } from '../model/lookup.js';
import { clusterPolicy } from './cluster-policy.js';
import {
  applyLocalityPolicy,
  localityPolicy,
  proxyLocality,
  proxyTopologyLabels,
  type LocalityGroup,
  type LocalityPolicy,
} from './locality.js';
import { endpointsKey, snapshotKeys } from '../model/parts.js';
import { portMtls, workloadMtls } from '../model/peer-authentication.js';
import type { MergedDestinationRule, MeshEndpoint } from '../model/snapshot.js';
import type { ProxyType } from '../xds/node.js';
import { parseOutboundClusterName, TLS_MODE_MESH, TRANSPORT_SOCKET_MATCH_KEY } from './cluster-names.js';
import type { TranslateContext } from './context.js';

type LbEndpointInit = MessageInitShape<typeof LbEndpointSchema>;

/**
 * Everything the assignment of `clusterName` reads, as a string: equal keys give equal assignments, for any
 * proxy and snapshot (the generator keeps assignments across snapshots under it, so a change to one
 * Service's endpoints rebuilds only that Service's assignments). The proxy's type, the endpoints' content,
 * the subset's labels as the proxy's namespace resolves them, and for Envoy the PeerAuthentications
 * (per-endpoint auto mTLS); the mesh config is the generator's, fixed.
 */
export function loadAssignmentKey(ctx: TranslateContext, clusterName: string): string {
  const { proxyType, namespace } = ctx.proxy;
  const parsed = parseOutboundClusterName(clusterName);
  const service = parsed && findService(ctx.snapshot, parsed.fqdn, namespace);
  const port = parsed && service && findServicePort(service, parsed.port);
  if (!parsed || !port) return JSON.stringify([proxyType, clusterName, 'none']);
  let subset = '';
  const rule = destinationRuleFor(ctx.snapshot, parsed.fqdn, namespace, ctx.proxy.labels);
  if (parsed.subset !== undefined && parsed.subset !== '') {
    const definition = rule?.subsets.find((s) => s.name === parsed.subset);
    subset = definition ? canonicalJson(definition.labels ?? {}) : 'undefined';
  }
  const policy = proxyType === 'envoy' ? snapshotKeys(ctx.snapshot).peerAuthentications : '';
  return JSON.stringify([
    proxyType,
    clusterName,
    endpointsKey(port.endpoints),
    subset,
    policy,
    localityKey(ctx, clusterLocalityPolicy(ctx, parsed, rule)),
  ]);
}

type ParsedName = NonNullable<ReturnType<typeof parseOutboundClusterName>>;

/** Per rule object, per `<port>|<subset>`: its locality policy and that policy as a string (snapshots are immutable). */
const localityPolicies = new WeakMap<
  MergedDestinationRule,
  Map<string, { readonly policy: LocalityPolicy | undefined; readonly json: string }>
>();

/** The locality policy of a cluster for the proxy of `ctx` (its DestinationRule, port and subset resolved). */
function clusterLocalityPolicy(
  ctx: TranslateContext,
  parsed: ParsedName,
  rule: MergedDestinationRule | undefined = destinationRuleFor(
    ctx.snapshot,
    parsed.fqdn,
    ctx.proxy.namespace,
    ctx.proxy.labels,
  ),
): { readonly policy: LocalityPolicy | undefined; readonly json: string } | undefined {
  // No rule: the mesh default acts only with outlier detection, which only a rule sets.
  if (!rule) return undefined;
  let byCluster = localityPolicies.get(rule);
  if (!byCluster) localityPolicies.set(rule, (byCluster = new Map()));
  const key = `${parsed.port}|${parsed.subset ?? ''}`;
  let found = byCluster.get(key);
  if (!found) {
    const subset = parsed.subset ? rule.subsets.find((s) => s.name === parsed.subset) : undefined;
    const policy = localityPolicy(clusterPolicy(rule, parsed.port, subset));
    byCluster.set(key, (found = { policy, json: policy ? canonicalJson(policy) : '' }));
  }
  return found;
}

/** What of the proxy the locality policy reads (its locality, the labels failoverPriority names) and the policy. */
function localityKey(ctx: TranslateContext, resolved: ReturnType<typeof clusterLocalityPolicy>): string {
  const policy = resolved?.policy;
  if (!policy) return '';
  const locality = proxyLocality(ctx.snapshot, ctx.proxy);
  const labels = proxyTopologyLabels(ctx.proxy.labels, locality);
  const named = (policy.failoverPriority ?? []).map((p) => labels[p.split('=')[0]!] ?? null);
  return JSON.stringify([resolved.json, locality, named, Object.keys(labels).length === 0]);
}

/** One assignment per name, in the order of `clusterNames` (names are unique there). Pure. */
export function buildLoadAssignments(ctx: TranslateContext, clusterNames: readonly string[]): ClusterLoadAssignment[] {
  return clusterNames.map((name) => loadAssignment(ctx, name));
}

export function loadAssignment(ctx: TranslateContext, clusterName: string): ClusterLoadAssignment {
  const parsed = parseOutboundClusterName(clusterName);
  const endpoints = parsed
    ? endpointsFor(ctx.snapshot, parsed.fqdn, parsed.port, parsed.subset, ctx.proxy.namespace, ctx.proxy.labels)
    : [];
  const locality = proxyLocality(ctx.snapshot, ctx.proxy);
  const localities = applyLocalityPolicy(
    groupByLocality(usable(endpoints)),
    parsed ? clusterLocalityPolicy(ctx, parsed)?.policy : undefined,
    locality,
    proxyTopologyLabels(ctx.proxy.labels, locality),
  );
  const namespace = parsed ? ctx.snapshot.index.servicesByFqdn.get(parsed.fqdn)?.namespace : undefined;
  // Auto mTLS (Envoy): a sidecar whose PeerAuthentication says DISABLE on this port takes plaintext only.
  const kind = (e: MeshEndpoint): EndpointKind => {
    if (ctx.proxy.proxyType === 'grpc') return 'grpc';
    if (!e.inMesh || namespace === undefined) return 'envoy';
    const mode = portMtls(workloadMtls(ctx.snapshot, namespace, e.labels, ctx.mesh.mtlsMode), e.port);
    return mode === 'DISABLE' ? 'envoy' : 'envoyMesh';
  };
  return create(ClusterLoadAssignmentSchema, {
    clusterName,
    endpoints: localities.map(({ locality, members, priority, weight }) => ({
      locality,
      loadBalancingWeight: weight,
      ...(priority > 0 ? { priority } : {}),
      lbEndpoints: members.map((e) => lbEndpoint(e, kind(e))),
    })),
  });
}

/** Ready, IP-addressed, and each address:port once (the model already keeps one entry per address and port). */
function usable(endpoints: readonly MeshEndpoint[]): MeshEndpoint[] {
  const seen = new Set<string>();
  return endpoints.filter((e) => {
    const key = `${e.address}|${e.port}`;
    if (!e.ready || net.isIP(e.address) === 0 || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Sorted by region, zone, sub-zone; members keep the model's order (address, then port); priority 0. */
function groupByLocality(endpoints: readonly MeshEndpoint[]): LocalityGroup[] {
  const groups = new Map<string, { locality: LocalityGroup['locality']; members: MeshEndpoint[] }>();
  for (const e of endpoints) {
    const { region, zone, subZone } = e.locality;
    // Length-prefixed, so distinct triples never share a key (JSON.stringify per endpoint cost 10 ms of an
    // assignment set's 100 at 1,000 Services).
    const key = `${region.length}:${region}${zone.length}:${zone}${subZone}`;
    let group = groups.get(key);
    if (!group) {
      group = { locality: { region, zone, subZone }, members: [] };
      groups.set(key, group);
    }
    group.members.push(e);
  }
  return [...groups.values()]
    .sort((a, b) => compareLocalities(a.locality, b.locality))
    .map((g) => ({ ...g, priority: 0, weight: g.members.length }));
}

function compareLocalities(a: LocalityGroup['locality'], b: LocalityGroup['locality']): number {
  for (const k of ['region', 'zone', 'subZone'] as const) {
    if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  }
  return 0;
}

// One LbEndpoint message per snapshot endpoint and proxy type, shared by every assignment that lists it
// (the service cluster, its subsets, every proxy): building them dominates EDS time. Never mutated.
// `envoyMesh`: an Envoy endpoint that takes mesh mTLS (the transport-socket-match metadata).
type EndpointKind = ProxyType | 'envoyMesh';

const lbEndpoints: Record<EndpointKind, WeakMap<MeshEndpoint, LbEndpoint>> = {
  envoy: new WeakMap(),
  envoyMesh: new WeakMap(),
  grpc: new WeakMap(),
};

function lbEndpoint(e: MeshEndpoint, kind: EndpointKind): LbEndpoint {
  let message = lbEndpoints[kind].get(e);
  if (!message) {
    message = create(LbEndpointSchema, lbEndpointInit(e, kind === 'envoyMesh'));
    lbEndpoints[kind].set(e, message);
  }
  return message;
}

function lbEndpointInit(e: MeshEndpoint, mesh: boolean): LbEndpointInit {
  return {
    hostIdentifier: {
      case: 'endpoint',
      value: {
        address: {
          address: {
            case: 'socketAddress',
            value: { address: e.address, portSpecifier: { case: 'portValue', value: e.port } },
          },
        },
      },
    },
    healthStatus: HealthStatus.HEALTHY,
    // A ServiceEntry endpoint's weight (Kubernetes endpoints weigh 1, Envoy's default).
    ...(e.weight !== undefined ? { loadBalancingWeight: e.weight } : {}),
    ...(mesh ? { metadata: { filterMetadata: { [TRANSPORT_SOCKET_MATCH_KEY]: { tlsMode: TLS_MODE_MESH } } } } : {}),
  };
}
