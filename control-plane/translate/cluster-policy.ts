// Which DestinationRule policy applies to one cluster: Istio's resolution rules, exactly
// (envoy-translation.md §1.4). Works on the CRD types only; clusters.ts turns the result into Envoy fields.
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  LoadBalancerSettings,
  OutlierDetection,
  Subset,
  TrafficPolicy,
} from '../../crds/types.js';
import type { MergedDestinationRule } from '../model/snapshot.js';

/** The four policy blocks of one cluster after port and subset resolution; an absent block means defaults. */
export interface ClusterPolicy {
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTLSSettings;
}

function blocks(p: ClusterPolicy): ClusterPolicy {
  return {
    ...(p.loadBalancer ? { loadBalancer: p.loadBalancer } : {}),
    ...(p.connectionPool ? { connectionPool: p.connectionPool } : {}),
    ...(p.outlierDetection ? { outlierDetection: p.outlierDetection } : {}),
    ...(p.tls ? { tls: p.tls } : {}),
  };
}

/**
 * A matching `portLevelSettings` entry replaces the whole policy: blocks it leaves out fall back to the
 * defaults, not to the top level (Istio's GetPortLevelTrafficPolicy; the API documents it so).
 */
export function portPolicy(policy: TrafficPolicy | undefined, port: number): ClusterPolicy {
  if (!policy) return {};
  const level = policy.portLevelSettings?.find((p) => p.port?.number === port);
  return blocks(level ?? policy);
}

/**
 * A subset's policy over the port-resolved rule policy, block by block (Istio's MergeTrafficPolicy): each
 * block the subset sets wins; then a matching subset `portLevelSettings` entry replaces all four blocks,
 * including those it leaves out.
 */
export function mergeSubsetPolicy(base: ClusterPolicy, subset: TrafficPolicy | undefined, port: number): ClusterPolicy {
  if (!subset) return base;
  const level = subset.portLevelSettings?.find((p) => p.port?.number === port);
  if (level) return blocks(level);
  return blocks({
    loadBalancer: subset.loadBalancer ?? base.loadBalancer,
    connectionPool: subset.connectionPool ?? base.connectionPool,
    outlierDetection: subset.outlierDetection ?? base.outlierDetection,
    tls: subset.tls ?? base.tls,
  });
}

/** The policy of cluster `outbound|<port>|<subset>|<host>` under `rule` (subset undefined: the service cluster). */
export function clusterPolicy(
  rule: MergedDestinationRule | undefined,
  port: number,
  subset: Subset | undefined,
): ClusterPolicy {
  const base = portPolicy(rule?.trafficPolicy, port);
  return subset ? mergeSubsetPolicy(base, subset.trafficPolicy, port) : base;
}
