// LDS for a proxyless gRPC application (grpc-js-xds.md §2 "Listener", §3 A36):
//   - client side: one API listener per name a channel may dial (`xds:///<name>:<port>`), an HCM that
//     takes its routes from RDS `"<port>"`; no address, no listener filters, no use_original_dst (NACK);
//   - server side: one listener per address the application's XdsServer binds, named by the bootstrap's
//     `server_listener_resource_name_template` (grpc/server?xds.resource.listening_address=<ip>:<port>).
import { create } from '@bufbuild/protobuf';
import { ListenerSchema, type Listener } from '../envoy/gen/envoy/config/listener/v3/listener_pb.js';
import { packAny } from '../envoy/protos.js';
import { instancesAt } from '../model/lookup.js';
import { portMtls, workloadMtls } from '../model/peer-authentication.js';
import { grpcServerListenerName } from './cluster-names.js';
import type { TranslateContext } from './context.js';
import { grpcApiListenerHcm, grpcServerHcm, hcmFilter } from './http-connection-manager.js';
import { socketAddress } from './listener-address.js';
import { grpcServerTls } from './listener-tls.js';
import { workloadRbac } from './rbac.js';
import { httpServicesByPort, serviceAliases } from './routes.js';

/**
 * API listeners `<alias>:<port>` for every HTTP/gRPC port of every visible Service: the FQDN, `name.ns.svc`,
 * `name.ns`, and the bare `name` only from the Service's own namespace (hostAliases). All listeners of a
 * port share one HCM message (encoded once). Sorted by name; a name is emitted once.
 */
export function apiListeners(ctx: TranslateContext, listenerOf: ApiListenerBuilder = apiListener): Listener[] {
  const byName = new Map<string, Listener>();
  for (const [port, services] of httpServicesByPort(ctx)) {
    for (const service of services) {
      for (const alias of serviceAliases(ctx, service)) {
        const name = `${alias}:${port}`;
        if (!byName.has(name)) byName.set(name, listenerOf(name, port));
      }
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** An API listener: a function of its name and port only (the generator shares them across proxies under the name). */
export type ApiListenerBuilder = (name: string, port: number) => Listener;

const apiHcms = new Map<number, ReturnType<typeof packAny>>();

export function apiListener(name: string, port: number): Listener {
  let hcm = apiHcms.get(port);
  if (!hcm) apiHcms.set(port, (hcm = packAny(grpcApiListenerHcm(port))));
  return create(ListenerSchema, { name, apiListener: { apiListener: hcm } });
}

/**
 * The (address, target port) pairs this application serves: the Service ports with an endpoint at one of
 * its INSTANCE_IPS. The listener's socket address must equal what the application binds, or grpc-js
 * refuses to serve ("socket_address mismatch"), and the application binds its instance IP. By IP, not by
 * the Pod named in node.id: proxyless nodes that differ only in id share their generated config
 * (generator.ts proxyShapeKey). In the local demo, where every workload is 127.0.0.1, a server thus also
 * gets the listeners of its neighbours' ports; it subscribes only to its own name, so they are inert.
 */
export function serverBindings(ctx: TranslateContext): { address: string; port: number }[] {
  const seen = new Set<string>();
  const out: { address: string; port: number }[] = [];
  for (const ip of ctx.proxy.instanceIps) {
    for (const instance of instancesAt(ctx.snapshot, ip)) {
      if (instance.port.transport !== 'TCP') continue;
      const key = `${ip}|${instance.endpoint.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ address: ip, port: instance.endpoint.port });
    }
  }
  return out;
}

/**
 * The wildcard addresses an A36 server may bind on one of its ports instead of its instance IP: `0.0.0.0`
 * and `::` (named `[::]:<port>`, as grpc-js and grpc-go write the bind address into the server listener
 * name). Most servers bind these (grpc-go's `net.Listen("tcp", ":8080")` is `[::]:8080`).
 */
export const WILDCARD_BIND_ADDRESSES: readonly string[] = ['0.0.0.0', '::'];

/**
 * The addresses a server listener is generated for: every (instance IP, port) of serverBindings, and on
 * each of those ports the wildcard addresses. A server subscribes to `grpc/server?...=<bind address>` and
 * checks that the Listener's socket address equals it (grpc-js and grpc-go alike: "socket_address
 * mismatch" / "address ... does not match listening address"), so each listener carries the address its
 * name holds, as Istio's proxyless generator writes the requested address back. They are generated, not
 * built on request: configs are a function of (proxy, snapshot), shared and encoded once
 * (xds/generator.ts); a listener no server subscribes to is never sent (LDS for proxyless is named).
 */
export function serverListenerAddresses(ctx: TranslateContext): { address: string; port: number }[] {
  const bindings = serverBindings(ctx);
  const out = [...bindings];
  const ports = [...new Set(bindings.map((b) => b.port))];
  for (const port of ports) for (const address of WILDCARD_BIND_ADDRESSES) out.push({ address, port });
  return out;
}

/**
 * Server listeners (A36), one per (instance IP, target port) of this workload's Service ports, and one per
 * wildcard bind address on each of those ports (serverListenerAddresses). One filter
 * chain without `filter_chain_match` (grpc-js never matches `{}` — gotcha §0.9), under mTLS followed by a
 * marker chain that never matches (mtlsMarkerChain: switching a live listener between plaintext and mTLS
 * crashes grpc-js otherwise), and never a `default_filter_chain` (adding or removing it on a live listener
 * crashes grpc-js — §0.10).
 *
 * mTLS, by the port's effective mode (PeerAuthentication with the proxy's namespace and LABELS, port-level
 * by the bound port, then the mesh config): STRICT → the chain carries a DownstreamTlsContext from the
 * certificate providers. PERMISSIVE → plaintext only: a grpc-js server cannot offer both on one port,
 * because it matches chains on addresses and ports only and never matches a chain whose
 * `transport_protocol` is not `raw_buffer` (grpc-js-xds.md §3 "filter_chain_match"), so there is no way to
 * tell a TLS ClientHello from plaintext. Plaintext keeps every client working until the namespace goes
 * STRICT. DISABLE → plaintext.
 *
 * AuthorizationPolicies: the RBAC HTTP filter in the HCM (rbac-filters.ts; grpc-js enforces it only with
 * GRPC_XDS_EXPERIMENTAL_RBAC=true, and NACKs the listener without it). Principals and namespaces need the
 * peer certificate, so they match only on STRICT ports.
 */
/**
 * The second chain of an mTLS server Listener, which never matches a connection: it sets
 * `destination_port` (grpc-js never matches a chain that does; grpc-js-xds.md §3) and has no TLS.
 *
 * Why: grpc-js-xds 1.14.1 compares a new server Listener with the one in use chain by chain
 * (server-listener.js `filterChainsEquivalent`), and its null check on `transport_socket` is inverted. A
 * plaintext chain replaced by an mTLS one throws a TypeError that kills the process, so PERMISSIVE →
 * STRICT crashed every proxyless server (found in the local cluster: test/cluster/traffic.test.ts); an mTLS
 * chain replaced by a plaintext one counts as "equivalent", so STRICT → PERMISSIVE never took effect.
 * The comparison returns "different" before looking at any chain when the number of chains differs, so
 * mTLS Listeners have two chains and plaintext ones one.
 */
export const MTLS_MARKER_CHAIN_NAME = 'inbound-mtls-marker';
/** `destination_port` of the marker chain: grpc-js skips chains that set one, whatever the value. */
const MARKER_PORT = 1;

function mtlsMarkerChain(port: number, rbac: Parameters<typeof grpcServerHcm>[1]) {
  return {
    name: MTLS_MARKER_CHAIN_NAME,
    filterChainMatch: { destinationPort: MARKER_PORT },
    filters: [hcmFilter(grpcServerHcm(port, rbac))],
  };
}

export function serverListeners(ctx: TranslateContext): Listener[] {
  const workload = workloadMtls(ctx.snapshot, ctx.proxy.namespace, ctx.proxy.labels, ctx.mesh.mtlsMode);
  const rbac = workloadRbac(ctx.snapshot, ctx.proxy.namespace, ctx.proxy.labels, 'http');
  const byName = new Map<string, Listener>();
  for (const { address, port } of serverListenerAddresses(ctx)) {
    const strict = portMtls(workload, port) === 'STRICT';
    const name = grpcServerListenerName(address, port);
    byName.set(
      name,
      create(ListenerSchema, {
        name,
        address: socketAddress(address, port),
        filterChains: [
          {
            name: strict ? 'inbound-mtls' : 'inbound-plaintext',
            filters: [hcmFilter(grpcServerHcm(port, rbac))],
            ...(strict ? { transportSocket: grpcServerTls() } : {}),
          },
          ...(strict ? [mtlsMarkerChain(port, rbac)] : []),
        ],
      }),
    );
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every listener of a proxyless gRPC application: API listeners, then server listeners. */
export function grpcListeners(ctx: TranslateContext): Listener[] {
  return [...apiListeners(ctx), ...serverListeners(ctx)];
}
