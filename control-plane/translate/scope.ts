// The scope of a proxy's outbound config (model/sidecar-scope.ts): the Services its clusters, endpoints,
// outbound listeners and routes are made for, and where traffic outside them goes. Every translator module
// asks here instead of `servicesVisibleFrom`, so a Sidecar (or automatic scoping, mesh config
// `scoping: automatic`) narrows CDS, EDS, LDS and RDS alike; the scope's key is part of the proxy shape
// (proxy-shape.ts), so proxies with one scope share generated config.
import { scopeOf, type ProxyScope } from '../model/sidecar-scope.js';
import type { MeshService } from '../model/snapshot.js';
import type { TranslateContext } from './context.js';
import { proxylessServices } from './service-entry-clusters.js';

/** The proxy's scope (memoized per snapshot by the model). */
export function proxyScope(ctx: TranslateContext): ProxyScope {
  return scopeOf(ctx.snapshot, ctx.proxy, {
    automatic: ctx.mesh.scoping === 'automatic',
    trustDomain: ctx.mesh.trustDomain,
  });
}

/** The Services a proxy's outbound config is made for, sorted by FQDN: visible (exportTo) and in scope. */
export function scopedServices(ctx: TranslateContext): readonly MeshService[] {
  const services = proxyScope(ctx).services;
  // ServiceEntry hosts grpc-js cannot resolve (NONE, DNS over several names) are left out for it.
  return ctx.proxy.proxyType === 'grpc' ? proxylessServices(services) : services;
}

/** Where traffic to destinations outside the scope goes: the Sidecar's outboundTrafficPolicy, else the mesh's. */
export function outboundTrafficPolicy(ctx: TranslateContext): 'ALLOW_ANY' | 'REGISTRY_ONLY' {
  return proxyScope(ctx).outboundTrafficPolicy ?? ctx.mesh.outboundTrafficPolicy;
}
