// Resource names shared by every translator module (design.md §3, envoy-translation.md §1.1, §2.1).
// The names the agent and the control plane share are defined in api/ (the agent must not load the
// translator) and re-exported here for the translator's modules.
export {
  BLACKHOLE_CLUSTER,
  grpcServerListenerName,
  inboundClusterName,
  INBOUND_PASSTHROUGH_CLUSTER,
  outboundClusterName,
  outboundRouteName,
  outboundSni,
  parseOutboundClusterName,
  PASSTHROUGH_CLUSTER,
  type ParsedOutboundCluster,
} from '../../api/cluster-names.js';
export {
  GRPC_IDENTITY_PROVIDER,
  GRPC_ROOT_PROVIDER,
  SDS_CLUSTER,
  SDS_ROOT_SECRET,
  SDS_WORKLOAD_SECRET,
} from '../../api/names.js';

/** The cluster that carries Envoy's OTLP spans to the collector (Jaeger) named in the mesh config. */
export const OTEL_COLLECTOR_CLUSTER = 'opentelemetry-collector';
/** The Zipkin collector (mesh tracing provider `zipkin`), HTTP/1.1. */
export const ZIPKIN_COLLECTOR_CLUSTER = 'zipkin-collector';

/**
 * The ALPN a sidecar offers on mesh mutual TLS. Istio's inbound PERMISSIVE chains tell mesh mTLS from an
 * application's own TLS by this value (envoy-translation.md §3.3), so an inbound filter chain matching
 * `application_protocols: [MESH_MTLS_ALPN]` catches exactly the connections of our clusters.
 */
export const MESH_MTLS_ALPN = 'istio';

/** Endpoint metadata namespace Envoy reads to pick a cluster's `transport_socket_matches` entry. */
export const TRANSPORT_SOCKET_MATCH_KEY = 'envoy.transport_socket_match';

/** `{tlsMode: "mesh"}` marks an endpoint with a sidecar (auto mutual TLS); the injector's Pod label value. */
export const TLS_MODE_MESH = 'mesh';
