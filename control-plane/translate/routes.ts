// RDS: one RouteConfiguration per outbound HTTP port (envoy-translation.md §2.1, design.md §3), named by
// the port (`"8080"`) and shared by every HTTP Service on that port that the proxy's namespace sees, with
// one virtual host per Service (`<fqdn>:<port>`). Envoy sidecars and proxyless gRPC get the same shape;
// the differences (domains with ports, catch-all vhost, actions grpc-js accepts) are noted where made.
import { create } from '@bufbuild/protobuf';
import type { VirtualHost, VirtualHostSchema } from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';
import { RouteConfigurationSchema, type RouteConfiguration } from '../envoy/gen/envoy/config/route/v3/route_pb.js';
import { frozenContentHash } from '../model/canonical.js';
import { destinationRuleFor, findService, virtualServiceFor } from '../model/lookup.js';
import { outboundTrafficPolicy, scopedServices } from './scope.js';
import { serviceDefinitionKey } from '../model/parts.js';
import { hostAliases } from '../model/hosts.js';
import { isHttpProtocol } from '../model/protocol.js';
import type { MeshService } from '../model/snapshot.js';
import { outboundRouteName, PASSTHROUGH_CLUSTER } from './cluster-names.js';
import type { TranslateContext } from './context.js';
import { defaultRoute, virtualServiceRoutes, type RouteInit, type RouteOptions } from './route-http.js';
import { ZERO_DURATION, type InitOf } from './route-values.js';

type VirtualHostInit = InitOf<typeof VirtualHostSchema>;

/** Istio caps direct response bodies at 1 MiB on every sidecar route configuration. */
const MAX_DIRECT_RESPONSE_BODY_BYTES = 1_048_576;

/** The HTTP Service ports a proxy in `namespace` routes, by port number (ports sorted, services by FQDN). */
export function httpServicesByPort(ctx: TranslateContext): Map<number, MeshService[]> {
  const byPort = new Map<number, MeshService[]>();
  for (const service of scopedServices(ctx)) {
    for (const port of service.ports) {
      if (port.transport !== 'TCP' || !isHttpProtocol(port.protocol)) continue;
      const list = byPort.get(port.port) ?? [];
      if (!list.includes(service)) list.push(service);
      byPort.set(port.port, list);
    }
  }
  return new Map([...byPort.entries()].sort(([a], [b]) => a - b));
}

/**
 * The names a client in the proxy's namespace may call a service by: a Kubernetes Service's aliases
 * (hostAliases), or a ServiceEntry host as written (it is a name in DNS, not a Kubernetes short name).
 */
export function serviceAliases(ctx: TranslateContext, service: MeshService): string[] {
  if (service.serviceEntry) return [service.fqdn];
  return hostAliases(service.name, service.namespace, ctx.proxy.namespace, ctx.snapshot.domain);
}

/**
 * The domains of a Service's vhost. grpc-js matches the target's `host:port` (grpc-js-xds.md §0.3), so
 * proxyless gets every alias with and without the port; Envoy sidecars ignore the port in host matching
 * (`ignore_port_in_host_matching`), so bare aliases plus the cluster IPs suffice.
 */
function candidateDomains(ctx: TranslateContext, service: MeshService, port: number): string[] {
  const aliases = serviceAliases(ctx, service);
  if (ctx.proxy.proxyType === 'grpc') return aliases.flatMap((a) => [a, `${a}:${port}`]);
  return [...aliases, ...service.clusterIPs];
}

/**
 * The routes of a Service's vhost. Envoy routes carry Istio's `decorator.operation` (`<fqdn>:<port>/*`),
 * the span name Jaeger shows; grpc-js has no use for it.
 */
export function serviceRoutes(ctx: TranslateContext, service: MeshService, options: RouteOptions): RouteInit[] {
  const vs = virtualServiceFor(ctx.snapshot, service.fqdn, ctx.proxy.namespace);
  const routes =
    vs && (vs.spec.http?.length ?? 0) > 0
      ? virtualServiceRoutes(ctx, vs, options)
      : [defaultRoute(ctx, service.fqdn, options)];
  if (options.proxyless) return routes;
  const decorator = { operation: `${service.fqdn}:${options.port}/*` };
  return routes.map((r) => ({ ...r, decorator }));
}

/**
 * Istio's catch-all vhost for sidecars (last, domain `*`): ALLOW_ANY sends unknown hosts on to their
 * original destination; REGISTRY_ONLY answers 502. Proxyless gRPC dials only xDS names: no catch-all.
 */
function catchAllVirtualHost(ctx: TranslateContext): VirtualHostInit {
  const match = { pathSpecifier: { case: 'prefix' as const, value: '/' } };
  if (outboundTrafficPolicy(ctx) === 'REGISTRY_ONLY') {
    return {
      name: 'block_all',
      domains: ['*'],
      routes: [{ name: 'block_all', match, action: { case: 'directResponse', value: { status: 502 } } }],
    };
  }
  return {
    name: 'allow_any',
    domains: ['*'],
    includeRequestAttemptCount: true,
    routes: [
      {
        name: 'allow_any',
        match,
        action: {
          case: 'route',
          value: { clusterSpecifier: { case: 'cluster', value: PASSTHROUGH_CLUSTER }, timeout: ZERO_DURATION },
        },
      },
    ],
  };
}

/**
 * The route configuration of one port. Domains are unique across the whole configuration (Envoy NACKs a
 * duplicate): Services are visited in FQDN order and a later Service loses a domain an earlier one took;
 * a vhost left without domains is dropped. Vhosts sorted by name, catch-all last.
 */
function routeConfiguration(
  ctx: TranslateContext,
  port: number,
  services: readonly MeshService[],
  notes: string[],
  virtualHostOf: VirtualHostBuilder,
): RouteConfiguration {
  const proxyless = ctx.proxy.proxyType === 'grpc';
  const taken = new Set<string>();
  const vhosts: (VirtualHost | VirtualHostInit)[] = [];
  for (const service of services) {
    const domains = [...new Set(candidateDomains(ctx, service, port))].filter((d) => !taken.has(d)).sort();
    if (domains.length === 0) {
      notes.push(`${service.fqdn}:${port}: every domain is taken by another Service; virtual host left out`);
      continue;
    }
    for (const d of domains) taken.add(d);
    vhosts.push(virtualHostOf(ctx, service, domains, { port, proxyless, notes }));
  }
  vhosts.sort((a, b) => ((a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0));
  if (!proxyless) vhosts.push(catchAllVirtualHost(ctx));
  return create(RouteConfigurationSchema, {
    name: outboundRouteName(port),
    virtualHosts: vhosts,
    ...(proxyless
      ? {}
      : {
          // Clusters may arrive after routes; an unknown cluster is a runtime 503, never a NACK (envoy#11096).
          validateClusters: false,
          ignorePortInHostMatching: true,
          maxDirectResponseBodySizeBytes: MAX_DIRECT_RESPONSE_BODY_BYTES,
        }),
  });
}

/** The virtual host of one Service port with its domains (the generator passes a caching one). */
export type VirtualHostBuilder = (
  ctx: TranslateContext,
  service: MeshService,
  domains: string[],
  options: RouteOptions,
) => VirtualHost | VirtualHostInit;

export function virtualHost(
  ctx: TranslateContext,
  service: MeshService,
  domains: string[],
  options: RouteOptions,
): VirtualHostInit {
  return {
    name: `${service.fqdn}:${options.port}`,
    domains,
    routes: serviceRoutes(ctx, service, options),
    ...(options.proxyless ? {} : { includeRequestAttemptCount: true }),
  };
}

/**
 * Everything `virtualHost` reads besides the domains, as a string: equal keys give equal virtual hosts (the
 * generator keeps them across snapshots and proxies under it). The proxy's type, namespace and the labels
 * VirtualService matches read (`selectedLabels`, from its shape); the Service's definition; the
 * VirtualService that routes it from that namespace; and for every host its routes name, that host's
 * Service definition (port defaulting) and DestinationRule (hash policy, retry host predicates).
 */
export function virtualHostKey(
  ctx: TranslateContext,
  service: MeshService,
  port: number,
  selectedLabels: string,
): string {
  const { snapshot, proxy } = ctx;
  const vs = virtualServiceFor(snapshot, service.fqdn, proxy.namespace);
  const hosts = new Set<string>([service.fqdn]);
  for (const http of vs?.spec.http ?? []) {
    for (const route of http.route ?? []) if (route.destination) hosts.add(route.destination.host);
    if (http.mirror) hosts.add(http.mirror.host);
    for (const m of http.mirrors ?? []) hosts.add(m.destination.host);
  }
  const destinations = [...hosts].sort().map((host) => {
    const target = findService(snapshot, host, proxy.namespace);
    const rule = destinationRuleFor(snapshot, host, proxy.namespace, proxy.labels);
    return [host, target ? serviceDefinitionKey(target) : '-', rule ? frozenContentHash(rule) : '-'];
  });
  return JSON.stringify([
    proxy.proxyType,
    proxy.namespace,
    selectedLabels,
    port,
    serviceDefinitionKey(service),
    vs ? frozenContentHash(vs) : '-',
    destinations,
  ]);
}

/**
 * RDS for a proxy: one RouteConfiguration per outbound HTTP port, sorted by port. `notes` collects what
 * was left out and why (a redirect for proxyless gRPC, a split with no weight, a domain taken twice).
 */
export function buildRouteConfigurations(
  ctx: TranslateContext,
  notes: string[] = [],
  virtualHostOf: VirtualHostBuilder = virtualHost,
): RouteConfiguration[] {
  return [...httpServicesByPort(ctx).entries()].map(([port, services]) =>
    routeConfiguration(ctx, port, services, notes, virtualHostOf),
  );
}
