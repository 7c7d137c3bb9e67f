// Outbound TCP listeners beyond a Service's cluster IPs (envoy-translation.md §2.8, §3.2): VirtualService
// `tls[]` routes as filter chains matched by SNI (`server_names`, read by the TLS inspector), and the
// `0.0.0.0_<port>` listener of the ServiceEntry ports that have no virtual IP (or a CIDR block), the way
// egress to an external API is usually written:
//
//   ServiceEntry hosts [api.example.com], ports [{number: 443, name: tls, protocol: TLS}], resolution DNS
//   → listener 0.0.0.0_443, chain server_names [api.example.com] → tcp_proxy outbound|443||api.example.com
//
// On that listener, per ServiceEntry port (services in FQDN order):
// - the VirtualService's `tls[]` routes that apply (port, sourceLabels, sourceNamespace) → one chain per
//   match, `server_names` = sniHosts, `prefix_ranges` = destinationSubnets, to the route's destinations;
// - without such routes, a TLS or HTTPS port → a chain for the host's own SNI (a `*.` host matches its
//   subdomains, as Envoy's server_names do), to its own cluster;
// - a TCP port with CIDR addresses → a chain by `prefix_ranges`, to the VirtualService's `tcp[]` route or
//   its own cluster;
// - a TCP port without any address → the listener's default chain (Istio: such a port takes every
//   connection to it that nothing else claims); the first service by FQDN gets it, the others are noted.
// The default chain is otherwise the passthrough (ALLOW_ANY) or the black hole (REGISTRY_ONLY). A chain
// whose match an earlier chain already has is left out and noted (Envoy refuses duplicate matches), and so
// is the listener of a port that an HTTP listener (`0.0.0.0_<port>`) already holds.
import { create } from '@bufbuild/protobuf';
import net from 'node:net';
import { TrafficDirection } from '../envoy/gen/envoy/config/core/v3/base_pb.js';
import type { FilterChainSchema } from '../envoy/gen/envoy/config/listener/v3/listener_components_pb.js';
import { ListenerSchema, type Listener } from '../envoy/gen/envoy/config/listener/v3/listener_pb.js';
import type { AcceptedVirtualService, MeshService, MeshServicePort } from '../model/snapshot.js';
import type { TLSRoute } from '../../crds/types.js';
import type { TranslateContext } from './context.js';
import { socketAddress, tlsInspectorFilter } from './listener-address.js';
import { outboundTcpProxyFilter, tcpRouteFor } from './listener-tcp-proxy.js';
import type { InitOf } from './route-values.js';

type FilterChainInit = InitOf<typeof FilterChainSchema>;

/** A TLS port: Istio's TLS and HTTPS protocols (the field, or the port name's prefix). */
export function isTlsPort(port: MeshServicePort): boolean {
  const declared = (port.appProtocol ?? port.name.split('-', 1)[0] ?? '').toLowerCase();
  return declared === 'tls' || declared === 'https';
}

/** `10.0.0.0/8` → a CidrRange; a plain IP gets its full length. */
function cidrRange(value: string): { addressPrefix: string; prefixLen: number } {
  const [ip = '', len] = value.split('/');
  return { addressPrefix: ip, prefixLen: len !== undefined ? Number(len) : net.isIPv6(ip) ? 128 : 32 };
}

/** The `tls[]` routes of `vs` that apply to this proxy and port, as (route, sniHosts, subnets). */
function applicableTlsMatches(
  ctx: TranslateContext,
  routes: readonly TLSRoute[],
  port: number,
): { route: TLSRoute; sniHosts: string[]; subnets: string[] }[] {
  const out: { route: TLSRoute; sniHosts: string[]; subnets: string[] }[] = [];
  for (const route of routes) {
    for (const m of route.match ?? []) {
      if (m.port !== undefined && m.port !== port) continue;
      if (m.sourceNamespace !== undefined && m.sourceNamespace !== ctx.proxy.namespace) continue;
      if (!Object.entries(m.sourceLabels ?? {}).every(([k, v]) => ctx.proxy.labels[k] === v)) continue;
      out.push({ route, sniHosts: m.sniHosts.map((h) => h.toLowerCase()), subnets: m.destinationSubnets ?? [] });
    }
  }
  return out;
}

/** The SNI chains of a port from its VirtualService's `tls[]` routes (none without such routes). */
export function tlsRouteChains(
  ctx: TranslateContext,
  vs: AcceptedVirtualService | undefined,
  port: number,
  ownCluster: string,
  chainName: string,
): FilterChainInit[] {
  return applicableTlsMatches(ctx, vs?.spec.tls ?? [], port).map(({ route, sniHosts, subnets }, i) => ({
    name: `${chainName}_tls${i}`,
    filterChainMatch: {
      serverNames: sniHosts,
      ...(subnets.length > 0 ? { prefixRanges: subnets.map(cidrRange) } : {}),
    },
    filters: [outboundTcpProxyFilter(ctx, { route: route.route ?? [] }, ownCluster, port)],
  }));
}

/** One ServiceEntry port that goes to the wildcard listener of its port. */
export interface EgressPort {
  readonly service: MeshService;
  readonly port: MeshServicePort;
  readonly vs: AcceptedVirtualService | undefined;
  readonly ownCluster: string;
}

/** Drops chains whose match an earlier chain has (server names one by one), noting what was dropped. */
function dedupe(chains: FilterChainInit[], notes: string[], listener: string): FilterChainInit[] {
  const seen = new Set<string>();
  const out: FilterChainInit[] = [];
  for (const chain of chains) {
    const match = chain.filterChainMatch ?? {};
    const ranges = JSON.stringify(match.prefixRanges ?? []);
    const names = (match.serverNames ?? []) as string[];
    if (names.length === 0) {
      if (seen.has(ranges)) {
        notes.push(`${listener}: ${chain.name ?? ''} matches what an earlier chain matches; left out`);
        continue;
      }
      seen.add(ranges);
      out.push(chain);
      continue;
    }
    const fresh = names.filter((n) => !seen.has(`${ranges}|${n}`));
    for (const n of names) {
      if (seen.has(`${ranges}|${n}`)) notes.push(`${listener}: SNI ${n} is already routed by an earlier chain`);
    }
    if (fresh.length === 0) continue;
    for (const n of fresh) seen.add(`${ranges}|${n}`);
    out.push({ ...chain, filterChainMatch: { ...match, serverNames: fresh } });
  }
  return out;
}

/**
 * `0.0.0.0_<port>` for each port of `ports` (sorted), built as the header describes. `fallback` is the
 * default chain when no TCP ServiceEntry port without addresses takes it.
 */
export function egressListeners(
  ctx: TranslateContext,
  ports: readonly EgressPort[],
  taken: ReadonlySet<number>,
  fallback: FilterChainInit,
  notes: string[],
): Listener[] {
  const byPort = new Map<number, EgressPort[]>();
  for (const p of ports) byPort.set(p.port.port, [...(byPort.get(p.port.port) ?? []), p]);
  const out: Listener[] = [];
  for (const number of [...byPort.keys()].sort((a, b) => a - b)) {
    const name = `0.0.0.0_${number}`;
    const entries = byPort.get(number)!;
    if (taken.has(number)) {
      for (const e of entries)
        notes.push(`${e.service.fqdn}:${number}: the port is an HTTP port of another service; no TCP listener`);
      continue;
    }
    const chains: FilterChainInit[] = [];
    let defaultChain: FilterChainInit | undefined;
    for (const e of entries) {
      const chainName = `${number}_${e.service.fqdn}`;
      const cidrs = (e.service.serviceEntry?.addresses ?? []).filter((a) => a.includes('/')).map(cidrRange);
      const routed = tlsRouteChains(ctx, e.vs, number, e.ownCluster, chainName);
      chains.push(...routed);
      if (isTlsPort(e.port)) {
        if (routed.length === 0) {
          chains.push({
            name: chainName,
            filterChainMatch: { serverNames: [e.service.fqdn], ...(cidrs.length > 0 ? { prefixRanges: cidrs } : {}) },
            filters: [outboundTcpProxyFilter(ctx, undefined, e.ownCluster, number)],
          });
        }
        continue;
      }
      const tcp = {
        name: chainName,
        filters: [outboundTcpProxyFilter(ctx, tcpRouteFor(ctx, e.vs?.spec.tcp ?? [], number), e.ownCluster, number)],
      };
      if (cidrs.length > 0) chains.push({ ...tcp, filterChainMatch: { prefixRanges: cidrs } });
      else if (!defaultChain) defaultChain = tcp;
      else notes.push(`${e.service.fqdn}:${number}: another ServiceEntry already takes every connection to the port`);
    }
    const unique = dedupe(chains, notes, name);
    const sni = unique.some((c) => (c.filterChainMatch?.serverNames?.length ?? 0) > 0);
    out.push(
      create(ListenerSchema, {
        name,
        address: socketAddress('0.0.0.0', number),
        bindToPort: false,
        trafficDirection: TrafficDirection.OUTBOUND,
        ...(sni ? { listenerFilters: [tlsInspectorFilter()], continueOnListenerFiltersTimeout: true } : {}),
        filterChains: unique,
        defaultFilterChain: defaultChain ?? fallback,
      }),
    );
  }
  return out;
}
