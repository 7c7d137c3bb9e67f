// Destinations of a route (envoy-translation.md §2.4): cluster names with Istio's port resolution, and the
// consistent-hash key a DestinationRule puts on the route (§1.4 loadBalancer).
import type { Destination, LoadBalancerSettings, TrafficPolicy } from '../../crds/types.js';
import type { RouteAction_HashPolicySchema } from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';
import { destinationRuleFor, findService } from '../model/lookup.js';
import { outboundClusterName } from './cluster-names.js';
import type { TranslateContext } from './context.js';
import { duration, type InitOf } from './route-values.js';

export type HashPolicyInit = InitOf<typeof RouteAction_HashPolicySchema>;

/**
 * The port of a destination: `port.number`, else the Service's only port, else the port of the route
 * configuration being built (Istio `GetDestinationCluster`). A host that is no Service still gets a
 * cluster name; with `validate_clusters: false` that is a runtime 503, never a NACK.
 */
export function destinationPort(ctx: TranslateContext, destination: Destination, routePort: number): number {
  if (destination.port?.number !== undefined) return destination.port.number;
  const service = findService(ctx.snapshot, destination.host, ctx.proxy.namespace);
  const ports = service?.ports.filter((p) => p.transport !== 'UDP') ?? [];
  return ports.length === 1 ? ports[0]!.port : routePort;
}

/**
 * `outbound|<port>|<subset>|<fqdn>` of a destination (hosts in the snapshot's VirtualServices are FQDNs; a
 * ServiceEntry's two-label host, qualified on acceptance, is named by the entry's host: lookup.ts findService).
 */
export function destinationCluster(ctx: TranslateContext, destination: Destination, routePort: number): string {
  const service = findService(ctx.snapshot, destination.host, ctx.proxy.namespace);
  const host = service?.serviceEntry ? service.fqdn : destination.host;
  return outboundClusterName(destinationPort(ctx, destination, routePort), destination.subset ?? '', host);
}

/** A policy resolved for a port: a matching portLevelSettings entry replaces the whole policy (Istio). */
function loadBalancerAt(policy: TrafficPolicy | undefined, port: number): LoadBalancerSettings | undefined {
  if (policy === undefined) return undefined;
  const portLevel = policy.portLevelSettings?.find((p) => p.port?.number === port);
  return portLevel ? portLevel.loadBalancer : policy.loadBalancer;
}

/**
 * The DestinationRule load balancer that applies to a destination, by Istio's precedence: subset's
 * port-level > subset > rule's port-level > rule. Blocks merge one by one, so a subset without a
 * `loadBalancer` inherits the rule's.
 */
function loadBalancerFor(
  ctx: TranslateContext,
  destination: Destination,
  port: number,
): LoadBalancerSettings | undefined {
  const rule = destinationRuleFor(ctx.snapshot, destination.host, ctx.proxy.namespace, ctx.proxy.labels);
  if (!rule) return undefined;
  const subset = destination.subset ? rule.subsets.find((s) => s.name === destination.subset) : undefined;
  return loadBalancerAt(subset?.trafficPolicy, port) ?? loadBalancerAt(rule.trafficPolicy, port);
}

/** The route `hash_policy` of a destination whose DestinationRule asks for consistent hashing; [] otherwise. */
export function hashPolicies(ctx: TranslateContext, destination: Destination, routePort: number): HashPolicyInit[] {
  const port = destinationPort(ctx, destination, routePort);
  const hash = loadBalancerFor(ctx, destination, port)?.consistentHash;
  if (!hash) return [];
  if (hash.httpHeaderName) return [{ policySpecifier: { case: 'header', value: { headerName: hash.httpHeaderName } } }];
  if (hash.httpCookie) {
    const ttl = duration(hash.httpCookie.ttl);
    return [
      {
        policySpecifier: {
          case: 'cookie',
          value: {
            name: hash.httpCookie.name,
            path: hash.httpCookie.path ?? '',
            ...(ttl ? { ttl } : {}),
            // Attributes of the cookie Envoy generates (SameSite, Secure, …), as Istio sends them.
            ...(hash.httpCookie.attributes?.length
              ? { attributes: hash.httpCookie.attributes.map((a) => ({ name: a.name, value: a.value ?? '' })) }
              : {}),
          },
        },
      },
    ];
  }
  if (hash.useSourceIp) return [{ policySpecifier: { case: 'connectionProperties', value: { sourceIp: true } } }];
  if (hash.httpQueryParameterName) {
    return [{ policySpecifier: { case: 'queryParameter', value: { name: hash.httpQueryParameterName } } }];
  }
  return [];
}
