// The xDS resource names both sides read (design.md §3): the translator makes them, the agent's bootstrap and
// the tests name them. A leaf, like names.ts.

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

/** The outbound route configuration of a port: its number as a string (`"8080"`). */
export function outboundRouteName(port: number): string {
  return String(port);
}

/** The LDS name of a proxyless gRPC server listener (A36), as the gRPC bootstrap template makes it. */
export function grpcServerListenerName(address: string, port: number): string {
  const host = address.includes(':') ? `[${address}]` : address;
  return `grpc/server?xds.resource.listening_address=${host}:${port}`;
}

/** The template of those names in the gRPC bootstrap (`%s` = `<address>:<port>`). */
export const GRPC_SERVER_LISTENER_TEMPLATE = 'grpc/server?xds.resource.listening_address=%s';

/** Istio's mTLS SNI, `outbound_.<port>_.<subset>_.<fqdn>`. */
export function outboundSni(port: number, subset: string, fqdn: string): string {
  return `outbound_.${port}_.${subset}_.${fqdn}`;
}
