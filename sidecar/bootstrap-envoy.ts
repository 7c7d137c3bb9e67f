// The Envoy sidecar bootstrap: the node, ADS through the agent's local xDS proxy (a Unix socket), SDS from
// the agent (another Unix socket; cluster `sds-grpc`, the name every served TLS context refers to), the
// admin interface on 127.0.0.1:15000 and Prometheus stats on 0.0.0.0:15090 (/stats/prometheus proxied
// to the admin, as Istio does; design.md §4). Everything else (listeners, clusters, routes, endpoints,
// secrets) arrives dynamically.
import { fromJson, type JsonObject } from '@bufbuild/protobuf';
import { BootstrapSchema } from '../control-plane/envoy/gen/envoy/config/bootstrap/v3/bootstrap_pb.js';
import { registry, typeUrlOf } from '../control-plane/envoy/protos.js';
import { SDS_CLUSTER } from '../api/names.js';
import { writeJsonAtomically } from './bootstrap-grpc.js';
import { bootstrapNode, type ProxyNodeOptions } from './proxy-node.js';

/** The static cluster of ADS (the agent's xDS proxy). */
export const XDS_CLUSTER = 'xds-grpc';
/** The static cluster and listener of the Prometheus endpoint. */
export const PROMETHEUS_STATS = 'prometheus_stats';
export const ENVOY_ADMIN_PORT = 15000;
export const ENVOY_STATS_PORT = 15090;

export interface EnvoyBootstrapOptions {
  readonly node: ProxyNodeOptions;
  /** The agent's xDS proxy socket. */
  readonly xdsSocketPath: string;
  /** The agent's SDS socket (sds-server.ts). */
  readonly sdsSocketPath: string;
  /** Default 15000 (127.0.0.1 only). */
  readonly adminPort?: number;
  /** Default 15090 (all interfaces). */
  readonly statsPort?: number;
}

const HTTP2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': typeUrlOf('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
    explicit_http_config: { http2_protocol_options: {} },
  },
};

/** Long-lived gRPC streams to the agent must never be cut by the default circuit breaker (1024 requests). */
const UNLIMITED = { max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 };

function pipeCluster(name: string, socketPath: string): JsonObject {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: socketPath } } } }] }],
    },
    circuit_breakers: {
      thresholds: [
        { priority: 'DEFAULT', ...UNLIMITED },
        { priority: 'HIGH', ...UNLIMITED },
      ],
    },
    typed_extension_protocol_options: HTTP2_OPTIONS,
  };
}

function port(value: number | undefined, fallback: number, what: string): number {
  const p = value ?? fallback;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${what} ${p} is not a port`);
  return p;
}

/**
 * The bootstrap in proto3 JSON (snake_case field names, as `envoy -c` reads it). Throws when it does not
 * decode as envoy.config.bootstrap.v3.Bootstrap (a guard against typos here, not against bad input).
 */
export function envoyBootstrap(options: EnvoyBootstrapOptions): JsonObject {
  const adminPort = port(options.adminPort, ENVOY_ADMIN_PORT, 'adminPort');
  const statsPort = port(options.statsPort, ENVOY_STATS_PORT, 'statsPort');
  for (const [what, p] of [
    ['xdsSocketPath', options.xdsSocketPath],
    ['sdsSocketPath', options.sdsSocketPath],
  ] as const) {
    if (!p.startsWith('/')) throw new Error(`${what} must be an absolute path, not "${p}"`);
  }
  const node = bootstrapNode(options.node, 'envoy');
  const bootstrap: JsonObject = {
    node: { ...node, locality: { ...node.locality }, metadata: { ...node.metadata } },
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
      },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [
        pipeCluster(XDS_CLUSTER, options.xdsSocketPath),
        pipeCluster(SDS_CLUSTER, options.sdsSocketPath),
        {
          name: PROMETHEUS_STATS,
          type: 'STATIC',
          connect_timeout: '0.250s',
          load_assignment: {
            cluster_name: PROMETHEUS_STATS,
            endpoints: [
              {
                lb_endpoints: [
                  { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } } },
                ],
              },
            ],
          },
        },
      ],
      listeners: [
        {
          name: PROMETHEUS_STATS,
          address: { socket_address: { address: '0.0.0.0', port_value: statsPort } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': typeUrlOf(
                      'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    ),
                    stat_prefix: 'stats',
                    codec_type: 'AUTO',
                    route_config: {
                      virtual_hosts: [
                        {
                          name: 'backend',
                          domains: ['*'],
                          routes: [{ match: { prefix: '/stats/prometheus' }, route: { cluster: PROMETHEUS_STATS } }],
                        },
                      ],
                    },
                    http_filters: [
                      {
                        name: 'envoy.filters.http.router',
                        typed_config: { '@type': typeUrlOf('envoy.extensions.filters.http.router.v3.Router') },
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
  };
  fromJson(BootstrapSchema, bootstrap, { registry });
  return bootstrap;
}

/** Writes the bootstrap to `file` (atomically), for `envoy -c <file>`. */
export async function writeEnvoyBootstrap(file: string, options: EnvoyBootstrapOptions): Promise<JsonObject> {
  const bootstrap = envoyBootstrap(options);
  await writeJsonAtomically(file, bootstrap);
  return bootstrap;
}
