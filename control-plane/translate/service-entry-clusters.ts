// How the clusters of a ServiceEntry host are discovered (envoy-translation.md §1.2, Istio's
// convertResolution), and which ServiceEntry hosts a proxyless gRPC application can be given at all.
//
// | resolution      | Envoy sidecar                                     | proxyless gRPC (grpc-js-xds.md §2 "Cluster")  |
// |-----------------|---------------------------------------------------|-----------------------------------------------|
// | STATIC          | EDS over the endpoints' IPs                        | EDS (the same)                                |
// | DNS             | STRICT_DNS, every endpoint (or the host) inline    | LOGICAL_DNS with exactly one endpoint, else left out |
// | DNS_ROUND_ROBIN | LOGICAL_DNS (Envoy: one locality, one endpoint)    | LOGICAL_DNS                                   |
// | NONE            | ORIGINAL_DST + CLUSTER_PROVIDED                    | left out (grpc-js has no ORIGINAL_DST)        |
//
// grpc-js NACKs every cluster type but EDS, LOGICAL_DNS and aggregate; an aggregate of one LOGICAL_DNS
// cluster per endpoint would be its way to spread over several DNS names, which Trellis does not build:
// such a host, and a NONE host, is left out of the proxyless config (no listener, route or cluster), so a
// channel to it fails to resolve instead of being sent somewhere else.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ClusterLoadAssignmentSchema } from '../envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import type {
  LbEndpointSchema,
  LocalityLbEndpointsSchema,
} from '../envoy/gen/envoy/config/endpoint/v3/endpoint_components_pb.js';
import type { MeshEndpoint, MeshService, MeshServicePort } from '../model/snapshot.js';
import type { ProxyType } from '../xds/node.js';

type LoadAssignmentInit = MessageInitShape<typeof ClusterLoadAssignmentSchema>;
type LocalityInit = MessageInitShape<typeof LocalityLbEndpointsSchema>;
type LbEndpointInit = MessageInitShape<typeof LbEndpointSchema>;

function lbEndpoint(e: MeshEndpoint): LbEndpointInit {
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
    ...(e.weight !== undefined ? { loadBalancingWeight: e.weight } : {}),
  };
}

export type Discovery = 'eds' | 'originalDst' | 'dns' | 'logicalDns';

/** The discovery type of a ServiceEntry host's clusters for a proxy type. */
export function serviceEntryDiscovery(service: MeshService, proxyType: ProxyType): Discovery {
  switch (service.serviceEntry?.resolution) {
    case 'STATIC':
      return 'eds';
    case 'DNS':
      return proxyType === 'envoy' ? 'dns' : 'logicalDns';
    case 'DNS_ROUND_ROBIN':
      return 'logicalDns';
    default:
      return proxyType === 'envoy' ? 'originalDst' : 'eds';
  }
}

/** Whether a proxyless gRPC application can be given this service (see the table above). */
export function proxylessSupported(service: MeshService): boolean {
  const entry = service.serviceEntry;
  if (!entry) return true;
  if (entry.resolution === 'NONE') return false;
  if (entry.resolution === 'DNS') return entry.endpointCount <= 1;
  return true;
}

const proxylessMemo = new WeakMap<readonly MeshService[], readonly MeshService[]>();

/** `services` without the ServiceEntry hosts proxyless gRPC cannot use (memoized per list). */
export function proxylessServices(services: readonly MeshService[]): readonly MeshService[] {
  let out = proxylessMemo.get(services);
  if (!out) {
    out = services.some((s) => !proxylessSupported(s)) ? services.filter(proxylessSupported) : services;
    proxylessMemo.set(services, out);
  }
  return out;
}

/**
 * The inline load assignment of a DNS cluster: one locality per distinct locality of the endpoints, each
 * endpoint with its weight. LOGICAL_DNS takes the first endpoint only (the validator allows one).
 */
export function dnsAssignment(clusterName: string, port: MeshServicePort, logical: boolean): LoadAssignmentInit {
  const endpoints = logical ? port.endpoints.slice(0, 1) : port.endpoints;
  const groups = new Map<string, MeshEndpoint[]>();
  for (const e of endpoints) {
    const key = JSON.stringify([e.locality.region, e.locality.zone, e.locality.subZone]);
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  return {
    clusterName,
    endpoints: [...groups.keys()].sort().map((key): LocalityInit => {
      const members = groups.get(key)!;
      const { region, zone, subZone } = members[0]!.locality;
      return {
        ...(region || zone || subZone ? { locality: { region, zone, subZone } } : {}),
        lbEndpoints: members.map(lbEndpoint),
      };
    }),
  };
}
