// meshGenerator: the translator behind the xDS server (design.md §1). For one proxy and one mesh snapshot it
// composes the per-type modules: CDS (clusters.ts), EDS for the EDS clusters among them (endpoints.ts),
// LDS (listeners.ts) and RDS (routes.ts). Each module decides by itself what an Envoy sidecar and a
// proxyless gRPC proxy get (`ctx.proxy.proxyType`).
//
// Why the memo: the push controller generates per proxy, and the resource cache memoizes encoding on the
// identity of the arrays and message objects it is handed (xds/generator.ts). Proxies that announce the
// same "shape" (everything a translator reads from the node: type, namespace, service account, labels,
// instance IPs, trust domain, locality, and for sidecars the Pod named by node.id) get the very same
// arrays for one snapshot, so a push to a thousand identical clients generates once and encodes once.
// The memo hangs off the snapshot object (WeakMap), so it goes away with the snapshot.
import { TypeUrl, type Message } from '../envoy/protos.js';
import { Cluster_DiscoveryType, type Cluster } from '../envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import type { ClusterLoadAssignment } from '../envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { Generator, ResourcesByType } from '../xds/generator.js';
import type { ProxyInfo } from '../xds/node.js';
import { buildClusters } from './clusters.js';
import type { MeshConfig, TranslateContext } from './context.js';
import { buildLoadAssignments } from './endpoints.js';
import { buildListeners } from './listeners.js';
import { buildRouteConfigurations } from './routes.js';

/** The EDS resource name of a cluster (its `service_name`, else its name), or undefined when it is not EDS. */
export function edsResourceName(cluster: Cluster): string | undefined {
  const d = cluster.clusterDiscoveryType;
  if (d.case !== 'type' || d.value !== Cluster_DiscoveryType.EDS) return undefined;
  return cluster.edsClusterConfig?.serviceName || cluster.name;
}

/** The EDS names of `clusters`, unique, in the clusters' order. */
export function edsClusterNames(clusters: readonly Cluster[]): string[] {
  const names = new Set<string>();
  for (const cluster of clusters) {
    const name = edsResourceName(cluster);
    if (name !== undefined) names.add(name);
  }
  return [...names];
}

/**
 * The part of a proxy that translation depends on, as a string key. Two proxies with equal keys get the
 * same resources from one snapshot. `id`, `cluster` and `userAgent` are left out, except that a sidecar's
 * node id (`<pod>.<namespace>`) names the Pod whose inbound side it serves (model/lookup.ts
 * instancesOfPod), so it is part of an Envoy proxy's shape.
 */
export function proxyShapeKey(proxy: ProxyInfo): string {
  const labels = Object.keys(proxy.labels)
    .sort()
    .map((k) => [k, proxy.labels[k]!]);
  return JSON.stringify([
    proxy.proxyType,
    proxy.namespace,
    proxy.serviceAccount,
    proxy.trustDomain,
    labels,
    proxy.instanceIps,
    [proxy.locality.region, proxy.locality.zone, proxy.locality.subZone],
    proxy.proxyType === 'envoy' ? proxy.id : '',
  ]);
}

export type LoadAssignmentBuilder = (ctx: TranslateContext, clusterNames: readonly string[]) => ClusterLoadAssignment[];

/** Everything one proxy gets, by type, composed from the per-type modules. Pure. */
export function generateResources(
  ctx: TranslateContext,
  loadAssignments: LoadAssignmentBuilder = buildLoadAssignments,
): ResourcesByType {
  const clusters = buildClusters(ctx);
  const assignments = loadAssignments(ctx, edsClusterNames(clusters));
  const listeners = buildListeners(ctx);
  const routes = buildRouteConfigurations(ctx);
  // Every type is present (empty when there is nothing): an empty LDS/CDS answer tells a wildcard
  // subscriber that nothing exists, instead of leaving it waiting.
  return new Map<string, readonly Message[]>([
    [TypeUrl.Cluster, clusters],
    [TypeUrl.ClusterLoadAssignment, assignments],
    [TypeUrl.Listener, listeners],
    [TypeUrl.RouteConfiguration, routes],
  ]);
}

export interface MeshGenerator extends Generator<MeshSnapshot> {
  readonly mesh: MeshConfig;
  /** Generations actually run (memo misses), for tests and benchmarks. */
  readonly generations: () => number;
}

/** The generator the control plane runs in `--config-dir` (and Kubernetes) mode. */
export function meshGenerator(mesh: MeshConfig): MeshGenerator {
  const memo = new WeakMap<MeshSnapshot, Map<string, ResourcesByType>>();
  const edsMemo = new WeakMap<MeshSnapshot, Map<string, ClusterLoadAssignment>>();
  let generations = 0;
  // ClusterLoadAssignments are shared across shapes too: an assignment depends on the snapshot, the cluster
  // name, and of the proxy only on its namespace (DestinationRule lookup for subsets) and type (Envoy's
  // transport-socket-match metadata), see endpoints.ts; the locality is in the key as well, in case
  // locality-aware priorities come. So every sidecar of a namespace gets the same message objects and the
  // resource cache encodes each assignment once, not once per Pod.
  const loadAssignments: LoadAssignmentBuilder = (ctx, names) => {
    let cache = edsMemo.get(ctx.snapshot);
    if (!cache) edsMemo.set(ctx.snapshot, (cache = new Map()));
    const { proxyType, namespace, locality } = ctx.proxy;
    const prefix = JSON.stringify([proxyType, namespace, locality.region, locality.zone, locality.subZone]);
    const missing = names.filter((n) => !cache.has(`${prefix}${n}`));
    if (missing.length > 0) {
      buildLoadAssignments(ctx, missing).forEach((cla, i) => cache.set(`${prefix}${missing[i]!}`, cla));
    }
    return names.map((n) => cache.get(`${prefix}${n}`)!);
  };
  return {
    mesh,
    generations: () => generations,
    generate(proxy: ProxyInfo, snapshot: MeshSnapshot): ResourcesByType {
      let byShape = memo.get(snapshot);
      if (!byShape) memo.set(snapshot, (byShape = new Map()));
      const key = proxyShapeKey(proxy);
      let resources = byShape.get(key);
      if (!resources) {
        resources = generateResources({ snapshot, proxy, mesh }, loadAssignments);
        generations++;
        byShape.set(key, resources);
      }
      return resources;
    },
  };
}
