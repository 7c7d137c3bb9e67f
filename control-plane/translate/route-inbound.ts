// The inline route configurations of inbound HTTP filter chains (envoy-translation.md §2.1, §2.6):
// everything that reaches a workload's port goes to its inbound cluster, with no timeout (the caller's
// sidecar applies the VirtualService's), and for proxyless gRPC servers the `non_forwarding_action` that
// A36 requires (the server handles the RPC itself).
import type { RouteConfigurationSchema } from '../envoy/gen/envoy/config/route/v3/route_pb.js';
import { inboundClusterName } from './cluster-names.js';
import { ZERO_DURATION, type InitOf } from './route-values.js';

export type RouteConfigurationInit = InitOf<typeof RouteConfigurationSchema>;

/** Envoy sidecar: `inbound|<port>||` → the inbound cluster of the target port. */
export function sidecarInboundRouteConfig(targetPort: number): RouteConfigurationInit {
  const cluster = inboundClusterName(targetPort);
  return {
    name: cluster,
    // Inline route configs default to validate_clusters: true, which NACKs while CDS is still catching up
    // (envoy#11096); Istio always turns it off.
    validateClusters: false,
    virtualHosts: [
      {
        name: `inbound|http|${targetPort}`,
        domains: ['*'],
        routes: [
          {
            name: 'default',
            match: { pathSpecifier: { case: 'prefix', value: '/' } },
            action: {
              case: 'route',
              value: {
                clusterSpecifier: { case: 'cluster', value: cluster },
                timeout: ZERO_DURATION,
                // Istio's inbound default: no stream limit, and do not let a grpc-timeout header impose one.
                maxStreamDuration: { maxStreamDuration: ZERO_DURATION, grpcTimeoutHeaderMax: ZERO_DURATION },
              },
            },
          },
        ],
      },
    ],
  };
}

/**
 * Proxyless gRPC server (A36): every RPC is served locally. The vhost is chosen by `:authority`, so the
 * only domain is `*`; routes must be `non_forwarding_action` or grpc-js fails RPCs with "Routing error".
 */
export function grpcServerRouteConfig(targetPort: number): RouteConfigurationInit {
  return {
    name: inboundClusterName(targetPort),
    virtualHosts: [
      {
        name: `inbound|grpc|${targetPort}`,
        domains: ['*'],
        routes: [
          {
            name: 'default',
            match: { pathSpecifier: { case: 'prefix', value: '' } },
            action: { case: 'nonForwardingAction', value: {} },
          },
        ],
      },
    ],
  };
}
