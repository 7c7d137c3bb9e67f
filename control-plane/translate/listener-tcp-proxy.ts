// tcp_proxy network filters: the passthrough and blackhole chains of the virtual listeners, inbound TCP
// ports, and outbound TCP Services with the VirtualService's `tcp[]` routes (envoy-translation.md §2.8).
import { create } from '@bufbuild/protobuf';
import type { TCPRoute } from '../../crds/types.js';
import { TcpProxySchema } from '../envoy/gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.js';
import { packAny } from '../envoy/protos.js';
import type { TranslateContext } from './context.js';
import { accessLogs, type FilterInit } from './http-connection-manager.js';
import { auditAccessLog } from './rbac-filters.js';
import { destinationCluster } from './route-destination.js';
import { splitWeights } from './route-weights.js';

export const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';

/**
 * A tcp_proxy to one cluster; stat_prefix is the cluster name (Istio). `audit`: an AUDIT AuthorizationPolicy
 * applies (rbac-filters.ts), so the connections it matched are logged when the mesh logs none.
 */
export function tcpProxyFilter(ctx: TranslateContext, cluster: string, audit = false): FilterInit {
  const proxy = create(TcpProxySchema, {
    statPrefix: cluster,
    clusterSpecifier: { case: 'cluster', value: cluster },
    accessLog: audit && !ctx.mesh.accessLog ? [auditAccessLog()] : accessLogs(ctx),
  });
  return { name: TCP_PROXY_FILTER, configType: { case: 'typedConfig', value: packAny(proxy) } };
}

/**
 * The first `tcp[]` route that applies to this proxy and port: no match, or a match whose port and
 * source conditions hold. `destinationSubnets` would need a filter chain per subnet (Istio); Trellis does
 * not split a Service's listener that way, so such a match is not taken.
 */
export function tcpRouteFor(ctx: TranslateContext, routes: readonly TCPRoute[], port: number): TCPRoute | undefined {
  return routes.find((r) => {
    if (!r.match || r.match.length === 0) return true;
    return r.match.some(
      (m) =>
        (m.destinationSubnets?.length ?? 0) === 0 &&
        (m.port === undefined || m.port === port) &&
        (m.sourceNamespace === undefined || m.sourceNamespace === ctx.proxy.namespace) &&
        Object.entries(m.sourceLabels ?? {}).every(([k, v]) => ctx.proxy.labels[k] === v),
    );
  });
}

/**
 * The tcp_proxy of an outbound TCP Service port: its own cluster, or the destinations of the
 * VirtualService's tcp route (one → that cluster; several → weighted_clusters, zero weights dropped;
 * all zero → the Service's own cluster, rather than a listener Envoy rejects).
 */
export function outboundTcpProxyFilter(
  ctx: TranslateContext,
  route: TCPRoute | undefined,
  defaultCluster: string,
  port: number,
): FilterInit {
  const destinations = route?.route ?? [];
  if (destinations.length === 1)
    return tcpProxyFilter(ctx, destinationCluster(ctx, destinations[0]!.destination, port));
  const kept = destinations.filter((d) => (d.weight ?? 0) > 0);
  const weights = splitWeights(kept.map((d) => d.weight ?? 0));
  const weighted = kept.map((d, i) => ({ name: destinationCluster(ctx, d.destination, port), weight: weights[i] }));
  if (weighted.length === 0) return tcpProxyFilter(ctx, defaultCluster);
  const proxy = create(TcpProxySchema, {
    statPrefix: defaultCluster,
    clusterSpecifier: { case: 'weightedClusters', value: { clusters: weighted } },
    accessLog: accessLogs(ctx),
  });
  return { name: TCP_PROXY_FILTER, configType: { case: 'typedConfig', value: packAny(proxy) } };
}
