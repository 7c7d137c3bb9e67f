// The mesh the xDS benchmarks serve, as a static-resources file (proto3 JSON): `clusters` services on port
// 8080 across 10 namespaces, each an EDS cluster named as Trellis names them (design.md §3) with a
// ClusterLoadAssignment of `endpoints` pod IPs; one outbound listener 0.0.0.0_8080 whose HTTP connection
// manager takes route configuration "8080" over ADS; that route configuration has one virtual host per
// service. Roughly what an unscoped sidecar gets in a mesh of that many single-port services.
import { TypeUrl } from '../control-plane/envoy/protos.js';
import { edsCluster, type JsonResource } from '../test/helpers/control-plane.js';

export const SERVICE_PORT = 8080;
export const ROUTE_NAME = String(SERVICE_PORT);
export const LISTENER_NAME = `0.0.0.0_${SERVICE_PORT}`;

export interface FixtureOptions {
  readonly clusters: number;
  /** Endpoints per ClusterLoadAssignment. */
  readonly endpoints: number;
}

export function serviceHost(i: number): string {
  return `svc-${String(i).padStart(4, '0')}.ns-${i % 10}.svc.cluster.local`;
}

export function clusterName(i: number): string {
  return `outbound|${SERVICE_PORT}||${serviceHost(i)}`;
}

function podIp(service: number, endpoint: number): string {
  return `10.${(service >> 8) & 255}.${service & 255}.${endpoint + 1}`;
}

/** The ClusterLoadAssignment of service `i`; `firstPort` replaces the first endpoint's port (the change). */
export function assignment(i: number, endpoints: number, firstPort = SERVICE_PORT): JsonResource {
  return {
    '@type': TypeUrl.ClusterLoadAssignment,
    clusterName: clusterName(i),
    endpoints: [
      {
        locality: { region: 'r1', zone: `z${(i % 3) + 1}` },
        loadBalancingWeight: endpoints,
        lbEndpoints: Array.from({ length: endpoints }, (_, e) => ({
          endpoint: {
            address: { socketAddress: { address: podIp(i, e), portValue: e === 0 ? firstPort : SERVICE_PORT } },
          },
          healthStatus: 'HEALTHY',
          loadBalancingWeight: 1,
        })),
      },
    ],
  };
}

function cluster(i: number): JsonResource {
  return edsCluster(clusterName(i), {
    edsClusterConfig: { serviceName: clusterName(i), edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    lbPolicy: 'LEAST_REQUEST',
    circuitBreakers: {
      thresholds: [
        { maxConnections: 4294967295, maxPendingRequests: 4294967295, maxRequests: 4294967295, maxRetries: 4294967295 },
      ],
    },
    commonLbConfig: { healthyPanicThreshold: {} },
  });
}

function listener(): JsonResource {
  return {
    '@type': TypeUrl.Listener,
    name: LISTENER_NAME,
    address: { socketAddress: { address: '0.0.0.0', portValue: SERVICE_PORT } },
    trafficDirection: 'OUTBOUND',
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typedConfig: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              statPrefix: `outbound_${LISTENER_NAME}`,
              rds: { routeConfigName: ROUTE_NAME, configSource: { ads: {}, resourceApiVersion: 'V3' } },
              httpFilters: [
                {
                  name: 'envoy.filters.http.router',
                  typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}

function routeConfiguration(clusters: number): JsonResource {
  return {
    '@type': TypeUrl.RouteConfiguration,
    name: ROUTE_NAME,
    validateClusters: false,
    virtualHosts: Array.from({ length: clusters }, (_, i) => {
      const host = serviceHost(i);
      const [short, ns] = host.split('.') as [string, string];
      return {
        name: `${host}:${SERVICE_PORT}`,
        domains: [
          host,
          `${host}:${SERVICE_PORT}`,
          short,
          `${short}:${SERVICE_PORT}`,
          `${short}.${ns}`,
          `${short}.${ns}:${SERVICE_PORT}`,
        ],
        routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: clusterName(i), timeout: '0s' } }],
      };
    }),
  };
}

/** The mesh as a mutable list: `setPort` changes one endpoint, `text()` is the file content. */
export class Fixture {
  readonly resources: JsonResource[];
  readonly clusterNames: readonly string[];
  private readonly assignmentIndex: number;

  constructor(readonly options: FixtureOptions) {
    const n = options.clusters;
    this.clusterNames = Array.from({ length: n }, (_, i) => clusterName(i));
    this.resources = [
      ...Array.from({ length: n }, (_, i) => cluster(i)),
      listener(),
      routeConfiguration(n),
      ...Array.from({ length: n }, (_, i) => assignment(i, options.endpoints)),
    ];
    this.assignmentIndex = n + 2;
  }

  /** Sets the port of the first endpoint of service `i`'s ClusterLoadAssignment. */
  setPort(i: number, port: number): void {
    this.resources[this.assignmentIndex + i] = assignment(i, this.options.endpoints, port);
  }

  /** Compact JSON, as a static-resources file. */
  text(): string {
    return JSON.stringify({ resources: this.resources });
  }
}
