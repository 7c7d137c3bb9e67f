// LDS for an Envoy sidecar (envoy-translation.md §3): the capture listeners 15001 (outbound) and 15006
// (inbound), and one outbound listener per HTTP port (`0.0.0.0_<port>`, RDS `"<port>"`) and per TCP Service
// address (`<clusterIP>_<port>`). The per-port listeners never bind (`bind_to_port: false`): iptables
// sends everything to 15001, and Envoy hands each connection to the listener whose address matches its
// original destination (most specific address first, then 0.0.0.0).
import { create } from '@bufbuild/protobuf';
import { TrafficDirection } from '../envoy/gen/envoy/config/core/v3/base_pb.js';
import { ListenerSchema, type Listener } from '../envoy/gen/envoy/config/listener/v3/listener_pb.js';
import type { FilterChainSchema } from '../envoy/gen/envoy/config/listener/v3/listener_components_pb.js';
import { virtualServiceFor } from '../model/lookup.js';
import { outboundTrafficPolicy, scopedServices } from './scope.js';
import { portMtls, workloadMtls } from '../model/peer-authentication.js';
import { isHttpProtocol } from '../model/protocol.js';
import type { ResolvedMtlsMode } from '../model/snapshot.js';
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  MESH_MTLS_ALPN,
  outboundClusterName,
  PASSTHROUGH_CLUSTER,
} from './cluster-names.js';
import type { TranslateContext } from './context.js';
import { inboundPorts, type InboundInstance } from './inbound-ports.js';
import { hcmFilter, sidecarInboundHcm, sidecarOutboundHcm } from './http-connection-manager.js';
import { httpInspectorFilter, originalDstFilter, socketAddress, tlsInspectorFilter } from './listener-address.js';
import { outboundTcpProxyFilter, tcpProxyFilter, tcpRouteFor } from './listener-tcp-proxy.js';
import { sidecarInboundTls } from './listener-tls.js';
import { egressListeners, tlsRouteChains, type EgressPort } from './listener-egress.js';
import { httpServicesByPort } from './routes.js';
import { workloadRbac, type WorkloadRbac } from './rbac.js';
import { rbacNetworkFilters } from './rbac-filters.js';
import type { InitOf } from './route-values.js';

type FilterChainInit = InitOf<typeof FilterChainSchema>;

export const VIRTUAL_OUTBOUND_LISTENER = 'virtualOutbound';
export const VIRTUAL_INBOUND_LISTENER = 'virtualInbound';
export const OUTBOUND_CAPTURE_PORT = 15001;
export const INBOUND_CAPTURE_PORT = 15006;

/**
 * The sidecar's own ports (design.md §4). A Service port equal to one of them would collide with the
 * capture listeners (Envoy NACKs two listeners on one address, and two chains with one match).
 */
const PROXY_PORTS = new Set([15000, OUTBOUND_CAPTURE_PORT, INBOUND_CAPTURE_PORT, 15021, 15090]);

/** What the HTTP inspector reports for plaintext HTTP (Istio's plaintextHTTPALPNs). */
const PLAINTEXT_HTTP_ALPNS = ['http/1.0', 'http/1.1', 'h2c'];

/** Where unknown outbound traffic goes: its original destination, or nowhere with REGISTRY_ONLY. */
function outboundFallbackCluster(ctx: TranslateContext): string {
  return outboundTrafficPolicy(ctx) === 'REGISTRY_ONLY' ? BLACKHOLE_CLUSTER : PASSTHROUGH_CLUSTER;
}

function passthroughChain(
  ctx: TranslateContext,
  name: string,
  cluster: string,
  rbac: WorkloadRbac = {},
): FilterChainInit {
  return { name, filters: [...rbacNetworkFilters(rbac), tcpProxyFilter(ctx, cluster, rbac.audit !== undefined)] };
}

/** A workload's AuthorizationPolicies as RBAC, for its HTTP and its TCP chains. */
interface InboundRbac {
  readonly http: WorkloadRbac;
  readonly tcp: WorkloadRbac;
}

/**
 * 15001 (Istio's virtualOutbound, §3.1): `use_original_dst` hands each connection to the per-port
 * listener of its original destination; what no listener claims takes the default chain. A connection
 * to 15001 itself would loop, so it goes to the blackhole.
 */
function virtualOutbound(ctx: TranslateContext): Listener {
  return create(ListenerSchema, {
    name: VIRTUAL_OUTBOUND_LISTENER,
    address: socketAddress('0.0.0.0', OUTBOUND_CAPTURE_PORT),
    useOriginalDst: true,
    trafficDirection: TrafficDirection.OUTBOUND,
    filterChains: [
      {
        ...passthroughChain(ctx, 'virtualOutbound-blackhole', BLACKHOLE_CLUSTER),
        filterChainMatch: { destinationPort: OUTBOUND_CAPTURE_PORT },
      },
    ],
    defaultFilterChain: passthroughChain(ctx, 'virtualOutbound-catchall-tcp', outboundFallbackCluster(ctx)),
  });
}

/**
 * `0.0.0.0_<port>` for an HTTP port (§3.2): the HTTP inspector recognises plaintext HTTP/1.x and h2c, which
 * get the HCM; anything else on the port (TLS, another protocol to an address outside the mesh) passes
 * through as TCP.
 */
function outboundHttpListener(ctx: TranslateContext, port: number): Listener {
  return create(ListenerSchema, {
    name: `0.0.0.0_${port}`,
    address: socketAddress('0.0.0.0', port),
    bindToPort: false,
    trafficDirection: TrafficDirection.OUTBOUND,
    listenerFilters: [httpInspectorFilter()],
    continueOnListenerFiltersTimeout: true,
    filterChains: [
      {
        name: `0.0.0.0_${port}`,
        filterChainMatch: { transportProtocol: 'raw_buffer', applicationProtocols: PLAINTEXT_HTTP_ALPNS },
        filters: [hcmFilter(sidecarOutboundHcm(ctx, port))],
      },
    ],
    defaultFilterChain: passthroughChain(ctx, 'PassthroughFilterChain', outboundFallbackCluster(ctx)),
  });
}

/** `<clusterIP>_<port>` for every address of every visible TCP Service port, sorted by name. */
function outboundTcpListeners(ctx: TranslateContext, notes: string[]): Listener[] {
  const out: Listener[] = [];
  const names = new Set<string>();
  const egress: EgressPort[] = [];
  for (const service of scopedServices(ctx)) {
    for (const port of service.ports) {
      if (port.transport !== 'TCP' || isHttpProtocol(port.protocol)) continue;
      if (PROXY_PORTS.has(port.port)) continue;
      if (service.clusterIPs.length === 0 && !service.serviceEntry) {
        // Istio builds one listener per endpoint for headless Services; Trellis passes such traffic through.
        notes.push(`${service.fqdn}:${port.port}: TCP port of a Service without a cluster IP; no listener`);
        continue;
      }
      const vs = virtualServiceFor(ctx.snapshot, service.fqdn, ctx.proxy.namespace);
      const route = tcpRouteFor(ctx, vs?.spec.tcp ?? [], port.port);
      const own = outboundClusterName(port.port, '', service.fqdn);
      // A ServiceEntry port without a virtual IP, or with CIDR blocks, is matched on 0.0.0.0 (listener-egress.ts).
      if (
        service.serviceEntry &&
        (service.clusterIPs.length === 0 || service.serviceEntry.addresses.some((a) => a.includes('/')))
      )
        egress.push({ service, port, vs, ownCluster: own });
      for (const ip of service.clusterIPs) {
        const name = `${ip}_${port.port}`;
        if (names.has(name)) {
          notes.push(`${service.fqdn}:${port.port}: ${name} is already the listener of another service; left out`);
          continue;
        }
        names.add(name);
        // VirtualService tls[] routes split the address's connections by SNI; the rest take the tcp route.
        const sni = tlsRouteChains(ctx, vs, port.port, own, name);
        out.push(
          create(ListenerSchema, {
            name,
            address: socketAddress(ip, port.port),
            bindToPort: false,
            trafficDirection: TrafficDirection.OUTBOUND,
            ...(sni.length > 0
              ? { listenerFilters: [tlsInspectorFilter()], continueOnListenerFiltersTimeout: true }
              : {}),
            filterChains: [...sni, { name, filters: [outboundTcpProxyFilter(ctx, route, own, port.port)] }],
          }),
        );
      }
    }
  }
  out.push(
    ...egressListeners(
      ctx,
      egress,
      new Set(httpServicesByPort(ctx).keys()),
      passthroughChain(ctx, 'PassthroughFilterChain', outboundFallbackCluster(ctx)),
      notes,
    ),
  );
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The chains of one inbound target port (§3.3), by the port's effective mode (PeerAuthentication, then the
 * mesh config; model/peer-authentication.ts).
 *
 * - STRICT: one TLS chain. Under a STRICT workload it matches `tls` (plaintext finds no chain: the
 *   listener has no default chain). When the listener has a default chain (a PERMISSIVE or DISABLE
 *   workload with a STRICT port), it matches on the port alone: Envoy takes the chains of the connection's
 *   port and, when none of them matches, the default chain, so a `tls`-only chain would let plaintext
 *   through to the passthrough default chain. Matching every connection to the port and terminating mTLS
 *   refuses plaintext in the handshake instead.
 * - PERMISSIVE: a mesh mTLS chain and a plaintext chain. On TCP ports mesh mTLS is told from an
 *   application's own TLS by the `istio` ALPN our Envoy clusters offer (cluster-names.ts MESH_MTLS_ALPN), so
 *   app TLS falls through to the passthrough default chain, as in Istio. On HTTP ports any TLS is taken as
 *   mesh mTLS: proxyless gRPC clients offer only `h2` (their TLS comes from grpc-js, which cannot add
 *   `istio`), and an application speaking its own TLS on a port declared HTTP/gRPC is not something
 *   Trellis can route anyway (name such a port `https-…`).
 * - DISABLE: one plaintext chain (Istio: `raw_buffer` only).
 */
function inboundPortChains(
  ctx: TranslateContext,
  targetPort: number,
  instance: InboundInstance,
  mode: ResolvedMtlsMode,
  defaultChain: boolean,
  rbac: InboundRbac,
): FilterChainInit[] {
  const http = isHttpProtocol(instance.port.protocol);
  const filters = (mtls: boolean) =>
    http
      ? [hcmFilter(sidecarInboundHcm(ctx, targetPort, mtls, rbac.http))]
      : [
          ...rbacNetworkFilters(rbac.tcp),
          tcpProxyFilter(ctx, inboundClusterName(targetPort), rbac.tcp.audit !== undefined),
        ];
  const name = `0.0.0.0_${targetPort}`;
  const plaintext: FilterChainInit = {
    name,
    filterChainMatch: { destinationPort: targetPort, transportProtocol: 'raw_buffer' },
    filters: filters(false),
  };
  if (mode === 'DISABLE') return [plaintext];
  if (mode === 'STRICT') {
    return [
      {
        name,
        filterChainMatch: defaultChain
          ? { destinationPort: targetPort }
          : { destinationPort: targetPort, transportProtocol: 'tls' },
        filters: filters(true),
        transportSocket: sidecarInboundTls(http),
      },
    ];
  }
  return [
    {
      name: `${name}_mtls`,
      filterChainMatch: {
        destinationPort: targetPort,
        transportProtocol: 'tls',
        ...(http ? {} : { applicationProtocols: [MESH_MTLS_ALPN] }),
      },
      filters: filters(true),
      transportSocket: sidecarInboundTls(http),
    },
    plaintext,
  ];
}

/**
 * 15006 (Istio's virtualInbound, §3.3): original_dst restores the port the client asked for, the TLS
 * inspector tells mTLS from plaintext. The workload's mode (PeerAuthentication, then the mesh config)
 * decides what ports no Service declares get (InboundPassthroughCluster): plaintext or mesh mTLS under
 * PERMISSIVE, mesh mTLS only under STRICT, plaintext only under DISABLE; each declared target port gets
 * the chains of its own mode (portLevelMtls). The workload's AuthorizationPolicies guard every chain but the
 * blackhole: RBAC HTTP filters in the HCMs of HTTP ports, RBAC network filters before the tcp_proxy of TCP
 * ports and of the passthrough chains (ports no Service declares), as Istio does.
 */
export function sidecarInboundListener(ctx: TranslateContext, notes: string[] = []): Listener {
  const workload = workloadMtls(ctx.snapshot, ctx.proxy.namespace, ctx.proxy.labels, ctx.mesh.mtlsMode);
  const rbac: InboundRbac = {
    http: workloadRbac(ctx.snapshot, ctx.proxy.namespace, ctx.proxy.labels, 'http'),
    tcp: workloadRbac(ctx.snapshot, ctx.proxy.namespace, ctx.proxy.labels, 'tcp'),
  };
  const strict = workload.mode === 'STRICT';
  const chains: FilterChainInit[] = [
    {
      ...passthroughChain(ctx, 'virtualInbound-blackhole', BLACKHOLE_CLUSTER),
      filterChainMatch: { destinationPort: INBOUND_CAPTURE_PORT },
    },
  ];
  for (const [targetPort, instance] of inboundPorts(ctx)) {
    if (PROXY_PORTS.has(targetPort)) {
      notes.push(
        `${instance.service.fqdn}:${instance.port.port}: target port ${targetPort} is a proxy port; not captured`,
      );
      continue;
    }
    chains.push(...inboundPortChains(ctx, targetPort, instance, portMtls(workload, targetPort), !strict, rbac));
  }
  if (workload.mode !== 'DISABLE') {
    chains.push({
      ...passthroughChain(ctx, 'virtualInbound-passthrough-mtls', INBOUND_PASSTHROUGH_CLUSTER, rbac.tcp),
      filterChainMatch: strict
        ? { transportProtocol: 'tls' }
        : { transportProtocol: 'tls', applicationProtocols: [MESH_MTLS_ALPN] },
      transportSocket: sidecarInboundTls(false),
    });
  }
  return create(ListenerSchema, {
    name: VIRTUAL_INBOUND_LISTENER,
    address: socketAddress('0.0.0.0', INBOUND_CAPTURE_PORT),
    trafficDirection: TrafficDirection.INBOUND,
    listenerFilters: [originalDstFilter(), tlsInspectorFilter()],
    // Server-first protocols send nothing for the inspector to read: carry on as plaintext after the timeout.
    continueOnListenerFiltersTimeout: true,
    filterChains: chains,
    ...(strict
      ? {}
      : {
          defaultFilterChain: passthroughChain(ctx, 'PassthroughFilterChain', INBOUND_PASSTHROUGH_CLUSTER, rbac.tcp),
        }),
  });
}

/**
 * The outbound listeners of an Envoy sidecar, in a fixed order: 15001, HTTP ports, TCP addresses. They depend
 * on the proxy's namespace, type and the labels VirtualServices select sources on, not on its Pod.
 */
export function sidecarOutboundListeners(ctx: TranslateContext, notes: string[] = []): Listener[] {
  const httpPorts = [...httpServicesByPort(ctx).keys()].filter((port) => {
    if (!PROXY_PORTS.has(port)) return true;
    notes.push(`port ${port} is a proxy port; no outbound listener`);
    return false;
  });
  return [
    virtualOutbound(ctx),
    ...httpPorts.map((port) => outboundHttpListener(ctx, port)),
    ...outboundTcpListeners(ctx, notes),
  ];
}

/** Every listener of an Envoy sidecar, in a fixed order: 15001, HTTP ports, TCP addresses, 15006. */
export function sidecarListeners(ctx: TranslateContext, notes: string[]): Listener[] {
  return [...sidecarOutboundListeners(ctx, notes), sidecarInboundListener(ctx, notes)];
}
