// Which protocol a Service port speaks, decided as Istio does (`pkg/config/kube/conversion.go`
// `ConvertProtocol`, `pkg/config/protocol/instance.go` `Parse`):
//   1. a UDP port is UDP (sidecars do not proxy it);
//   2. when `appProtocol` is set it alone decides: the Kubernetes standard names `kubernetes.io/h2c` (HTTP2)
//      and `kubernetes.io/ws` (HTTP), `kubernetes.io/wss` (TLS), else the protocol name it spells;
//   3. otherwise the port name's prefix before the first `-` (`http-web`, `grpc-api`; `grpc-web` is matched
//      whole first because it contains a dash);
//   4. names are case-insensitive; `https`, `tls`, `mongo`, `redis`, `mysql`, `tcp`, `http_proxy` and
//      anything unknown (including no name at all) are TCP.
// Istio would sniff the protocol of a port it cannot classify (HTTP or TCP, per connection); Trellis has no
// protocol sniffing and says TCP: an HTTP service on an unnamed port still works, as plain TCP, without
// routes, retries or HTTP metrics. Name the port `http-…` (or set appProtocol) to get them.
export type Protocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'GRPC-Web' | 'TCP' | 'UDP';

/** What decided the protocol, for debug output and docs. */
export type ProtocolSource = 'transport' | 'appProtocol' | 'portName' | 'default';

const NAMES: Readonly<Record<string, Protocol>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  tcp: 'TCP',
  udp: 'UDP',
  // Istio's own protocols that Trellis proxies as opaque TCP: TLS passes through, the rest have no
  // protocol-specific filters here.
  https: 'TCP',
  tls: 'TCP',
  mongo: 'TCP',
  redis: 'TCP',
  mysql: 'TCP',
  http_proxy: 'TCP',
};

const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, Protocol>> = {
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'TCP',
};

export interface ProtocolChoice {
  readonly protocol: Protocol;
  readonly from: ProtocolSource;
}

/**
 * The protocol of a Service port. `transport` is the port's `protocol` field (TCP, UDP or SCTP), `name`
 * the port name ('' when unnamed).
 */
export function selectProtocol(name: string, appProtocol: string | undefined, transport = 'TCP'): ProtocolChoice {
  if (transport.toUpperCase() === 'UDP') return { protocol: 'UDP', from: 'transport' };
  if (appProtocol !== undefined && appProtocol !== '') {
    const standard = KUBERNETES_APP_PROTOCOLS[appProtocol];
    if (standard) return { protocol: standard, from: 'appProtocol' };
    return { protocol: NAMES[appProtocol.toLowerCase()] ?? 'TCP', from: 'appProtocol' };
  }
  const lower = name.toLowerCase();
  if (lower.startsWith('grpc-web')) return { protocol: 'GRPC-Web', from: 'portName' };
  const prefix = lower.split('-', 1)[0] ?? '';
  const protocol = NAMES[prefix];
  if (protocol) return { protocol, from: 'portName' };
  return { protocol: 'TCP', from: 'default' };
}

/** HTTP, HTTP2, gRPC and gRPC-Web ports get an HTTP connection manager and routes. */
export function isHttpProtocol(protocol: Protocol): boolean {
  return protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-Web';
}

/**
 * Ports whose upstream connections use HTTP/2 (explicit `http2_protocol_options` on the cluster); Istio's
 * `IsHTTP2` counts gRPC-Web too (the sidecar translates it to gRPC upstream).
 */
export function isHttp2Protocol(protocol: Protocol): boolean {
  return protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-Web';
}
