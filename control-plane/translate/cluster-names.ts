// Resource names shared by every translator module (design.md §3, envoy-translation.md §1.1, §2.1).

/** `outbound|<port>|<subset>|<fqdn>`; also the EDS resource name of that cluster. */
export function outboundClusterName(port: number, subset: string, fqdn: string): string {
  return `outbound|${port}|${subset}|${fqdn}`;
}

/** `inbound|<targetPort>||`. */
export function inboundClusterName(targetPort: number): string {
  return `inbound|${targetPort}||`;
}

export interface ParsedOutboundCluster {
  readonly port: number;
  readonly subset: string;
  readonly fqdn: string;
}

/** Parses an outbound cluster (or EDS) name; undefined for any other name. */
export function parseOutboundClusterName(name: string): ParsedOutboundCluster | undefined {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return undefined;
  const port = Number(parts[1]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || parts[3] === '') return undefined;
  return { port, subset: parts[2]!, fqdn: parts[3]! };
}

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';

/** SDS secret names served by the agent (design.md §3). */
export const SDS_WORKLOAD_SECRET = 'default';
export const SDS_ROOT_SECRET = 'ROOTCA';

/** Certificate provider instance names in the gRPC bootstrap the agent writes (proxyless mTLS). */
export const GRPC_IDENTITY_PROVIDER = 'default';
export const GRPC_ROOT_PROVIDER = 'ROOTCA';

/** The outbound route configuration of a port: its number as a string (`"8080"`). */
export function outboundRouteName(port: number): string {
  return String(port);
}

/** The LDS name of a proxyless gRPC server listener (A36), as the gRPC bootstrap template makes it. */
export function grpcServerListenerName(address: string, port: number): string {
  const host = address.includes(':') ? `[${address}]` : address;
  return `grpc/server?xds.resource.listening_address=${host}:${port}`;
}

/** The static cluster in the Envoy bootstrap that reaches the agent's SDS server (envoy-translation.md §5.1). */
export const SDS_CLUSTER = 'sds-grpc';

/** The cluster that carries Envoy's OTLP spans to the collector (Jaeger) named in the mesh config. */
export const OTEL_COLLECTOR_CLUSTER = 'opentelemetry-collector';

/** Istio's mTLS SNI, `outbound_.<port>_.<subset>_.<fqdn>` (envoy-translation.md §1.1). */
export function outboundSni(port: number, subset: string, fqdn: string): string {
  return `outbound_.${port}_.${subset}_.${fqdn}`;
}

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
