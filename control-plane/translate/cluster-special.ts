// The clusters of an Envoy sidecar that are not outbound service clusters (envoy-translation.md §1.2):
// PassthroughCluster, BlackHoleCluster, InboundPassthroughCluster, the inbound clusters of the workload,
// and the OTLP collector. Proxyless gRPC has none of them: it has no capture, no inbound proxy and no tracer.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import net from 'node:net';
import {
  Cluster_DiscoveryType,
  Cluster_DnsLookupFamily,
  Cluster_LbPolicy,
  ClusterSchema,
  type Cluster,
} from '../envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import type { ClusterLoadAssignmentSchema } from '../envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import { HttpProtocolOptionsSchema } from '../envoy/gen/envoy/extensions/upstreams/http/v3/http_protocol_options_pb.js';
import { destinationRuleFor } from '../model/lookup.js';
import { isHttp2Protocol, isHttpProtocol } from '../model/protocol.js';
import {
  BLACKHOLE_CLUSTER,
  inboundClusterName,
  INBOUND_PASSTHROUGH_CLUSTER,
  PASSTHROUGH_CLUSTER,
} from './cluster-names.js';
import { portPolicy } from './cluster-policy.js';
import {
  circuitBreakerFields,
  connectTimeoutField,
  HTTP_PROTOCOL_OPTIONS_KEY,
  httpProtocolOptionsFields,
  tcpKeepaliveFields,
} from './cluster-traffic.js';
import type { TranslateContext } from './context.js';
import { inboundPorts } from './inbound-ports.js';
import { collectorClusterName } from './tracing.js';

type LoadAssignmentInit = MessageInitShape<typeof ClusterLoadAssignmentSchema>;

/** Where the agent's iptables rules let the sidecar's own inbound-passthrough traffic out (envoy-translation.md §6.1). */
const INBOUND_PASSTHROUGH_BIND = '127.0.0.6';

/** A load assignment of one address (STATIC and DNS clusters carry their endpoints inline). */
export function staticAssignment(clusterName: string, address: string, port: number): LoadAssignmentInit {
  return {
    clusterName,
    endpoints: [
      {
        lbEndpoints: [
          {
            hostIdentifier: {
              case: 'endpoint',
              value: {
                address: {
                  address: {
                    case: 'socketAddress',
                    value: { address, portSpecifier: { case: 'portValue', value: port } },
                  },
                },
              },
            },
          },
        ],
      },
    ],
  };
}

/**
 * Passthrough clusters forward to the original destination with whatever protocol the downstream spoke;
 * Istio's idle timeout of 300 s, and no circuit-breaker limits (it is all unknown traffic in one pool).
 */
function passthrough(name: string, ctx: TranslateContext, bindAddress?: string): Cluster {
  const options = create(HttpProtocolOptionsSchema, {
    commonHttpProtocolOptions: { idleTimeout: { seconds: 300n } },
    upstreamProtocolOptions: {
      case: 'useDownstreamProtocolConfig',
      value: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
    },
  });
  return create(ClusterSchema, {
    name,
    clusterDiscoveryType: { case: 'type', value: Cluster_DiscoveryType.ORIGINAL_DST },
    // ORIGINAL_DST requires CLUSTER_PROVIDED, or Envoy NACKs (envoy-translation.md §7).
    lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    ...connectTimeoutField(undefined, ctx.mesh.connectTimeout),
    ...circuitBreakerFields(undefined),
    typedExtensionProtocolOptions: { [HTTP_PROTOCOL_OPTIONS_KEY]: anyPack(HttpProtocolOptionsSchema, options) },
    ...(bindAddress
      ? {
          upstreamBindConfig: {
            sourceAddress: { address: bindAddress, portSpecifier: { case: 'portValue', value: 0 } },
          },
        }
      : {}),
  });
}

/** No endpoints: connections fail at once (REGISTRY_ONLY traffic, unknown ports). */
function blackHole(ctx: TranslateContext): Cluster {
  return create(ClusterSchema, {
    name: BLACKHOLE_CLUSTER,
    clusterDiscoveryType: { case: 'type', value: Cluster_DiscoveryType.STATIC },
    ...connectTimeoutField(undefined, ctx.mesh.connectTimeout),
  });
}

/**
 * `inbound|<targetPort>||`: the application on 127.0.0.1 (Istio's inboundTrafficPolicy LOCALHOST mode; the
 * PASSTHROUGH default would need the agent's 127.0.0.6 bind rules for every port). Only the
 * DestinationRule's connectionPool applies inbound (Istio). Several Services on one target port share
 * the cluster; the first by FQDN and port decides its protocol and pool.
 */
function inboundClusters(ctx: TranslateContext): Cluster[] {
  return inboundPorts(ctx).map(([targetPort, { service, port }]) => {
    const name = inboundClusterName(targetPort);
    const rule = destinationRuleFor(ctx.snapshot, service.fqdn, ctx.proxy.namespace);
    const pool = portPolicy(rule?.trafficPolicy, port.port).connectionPool;
    return create(ClusterSchema, {
      name,
      clusterDiscoveryType: { case: 'type', value: Cluster_DiscoveryType.STATIC },
      loadAssignment: staticAssignment(name, '127.0.0.1', targetPort),
      ...connectTimeoutField(pool, ctx.mesh.connectTimeout),
      ...circuitBreakerFields(pool),
      ...tcpKeepaliveFields(pool),
      ...httpProtocolOptionsFields(pool, isHttpProtocol(port.protocol), isHttp2Protocol(port.protocol)),
    });
  });
}

/** `host:port` or `[v6]:port` (mesh-config.ts validated it). */
function splitHostPort(value: string): { host: string; port: number } {
  const i = value.lastIndexOf(':');
  return { host: value.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(value.slice(i + 1)) };
}

/**
 * The collector Envoy's tracer sends spans to: OTLP/gRPC (HTTP/2) for OpenTelemetry, HTTP/1.1 for Zipkin
 * (tracing.ts).
 */
function collectorCluster(ctx: TranslateContext, collector: string): Cluster {
  const { host, port } = splitHostPort(collector);
  const literal = net.isIP(host) !== 0;
  const name = collectorClusterName(ctx.mesh.tracing);
  const zipkin = ctx.mesh.tracing.provider === 'zipkin';
  const options = create(HttpProtocolOptionsSchema, {
    upstreamProtocolOptions: {
      case: 'explicitHttpConfig',
      value: { protocolConfig: { case: 'http2ProtocolOptions', value: {} } },
    },
  });
  return create(ClusterSchema, {
    name,
    clusterDiscoveryType: {
      case: 'type',
      value: literal ? Cluster_DiscoveryType.STATIC : Cluster_DiscoveryType.STRICT_DNS,
    },
    // Kubernetes Services are IPv4 first; fall back to IPv6 for v6-only clusters.
    ...(literal ? {} : { dnsLookupFamily: Cluster_DnsLookupFamily.V4_PREFERRED }),
    loadAssignment: staticAssignment(name, host, port),
    ...connectTimeoutField(undefined, ctx.mesh.connectTimeout),
    ...(zipkin
      ? {}
      : {
          typedExtensionProtocolOptions: { [HTTP_PROTOCOL_OPTIONS_KEY]: anyPack(HttpProtocolOptionsSchema, options) },
        }),
  });
}

/** Every non-outbound cluster of an Envoy sidecar; none for proxyless gRPC. */
export function specialClusters(ctx: TranslateContext): Cluster[] {
  if (ctx.proxy.proxyType !== 'envoy') return [];
  const collector = ctx.mesh.tracing.collector;
  return [
    passthrough(PASSTHROUGH_CLUSTER, ctx),
    blackHole(ctx),
    passthrough(INBOUND_PASSTHROUGH_CLUSTER, ctx, INBOUND_PASSTHROUGH_BIND),
    ...inboundClusters(ctx),
    ...(collector ? [collectorCluster(ctx, collector)] : []),
  ];
}
