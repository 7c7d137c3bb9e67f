// Which routing and policy objects a proxy's config is translated from: the
// objects the translator's own lookups pick for it (model/lookup.ts and model/peer-authentication.ts, the
// very calls routes.ts, clusters.ts, endpoints.ts and the listener modules make), as object keys
// (`VirtualService/shop/reviews`, model/objects.ts objectKey). The Programmed status (control-plane/
// programmed-status.ts) counts, per object, the proxies whose config holds it.
//
// - Sidecars: the one that scopes the proxy (model/sidecar-scope.ts sidecarFor).
// - VirtualServices: for every Service in the proxy's scope (scope.ts), the one that routes it there
//   (`virtualServiceFor`, what builds its virtual host).
// - DestinationRules: for the same Services, every rule merged into the one that applies there
//   (`destinationRuleFor(...).from`, what shapes its clusters, subsets and endpoints).
// - ServiceEntries: the entry behind every visible service that is a ServiceEntry host.
// - PeerAuthentications: the policies that decide the proxy's own inbound mode (`workloadMtls` on its
//   labels, what its inbound listener and server listeners use), and those that decide each destination's
//   mode (`workloadMtls` of every endpoint's workload, what cluster TLS and endpoint metadata use).
// - AuthorizationPolicies: the policies that apply to the proxy's workload (`authorizationPoliciesFor`, what
//   the RBAC filters of its inbound side are made from), for the proxies that have an inbound side: every
//   Envoy sidecar (its inbound listener), and a proxyless application with server listeners (instances).
//
// Pure; memoized per snapshot by what it reads of the proxy (its namespace and the labels PeerAuthentication
// selectors read), so the Pods of one workload share one list and it costs nothing until asked.
import { authorizationPoliciesFor } from '../model/authorization-policy.js';
import { objectKey } from '../model/objects.js';
import { destinationRuleFor, virtualServiceFor } from '../model/lookup.js';
import { serverBindings } from './listeners-grpc.js';
import { proxyScope } from './scope.js';
import { snapshotKeys } from '../model/parts.js';
import { workloadMtls } from '../model/peer-authentication.js';
import type { MeshSnapshot, ResolvedMtlsMode } from '../model/snapshot.js';
import type { ProxyInfo } from '../xds/node.js';
import type { MeshConfig } from './context.js';

/** The keys of the routing objects `proxy`'s config is translated from, sorted. */
export function proxySources(snapshot: MeshSnapshot, proxy: ProxyInfo, mesh: MeshConfig): string[] {
  const fallback: ResolvedMtlsMode = mesh.mtlsMode;
  const keys = new Set<string>();
  const peer = (refs: readonly { namespace: string; name: string }[]): void => {
    for (const r of refs) keys.add(objectKey('PeerAuthentication', r.namespace, r.name));
  };
  peer(workloadMtls(snapshot, proxy.namespace, proxy.labels, fallback).from);
  for (const ap of inboundPolicies(snapshot, proxy, mesh)) {
    keys.add(objectKey('AuthorizationPolicy', ap.namespace, ap.name));
  }
  const scope = proxyScope({ snapshot, proxy, mesh });
  if (scope.sidecar) keys.add(objectKey('Sidecar', scope.sidecar.namespace, scope.sidecar.name));
  for (const service of scope.services) {
    const vs = virtualServiceFor(snapshot, service.fqdn, proxy.namespace);
    if (vs) keys.add(objectKey('VirtualService', vs.namespace, vs.name));
    if (service.serviceEntry)
      keys.add(objectKey('ServiceEntry', service.serviceEntry.from.namespace, service.serviceEntry.from.name));
    const rule = destinationRuleFor(snapshot, service.fqdn, proxy.namespace, proxy.labels);
    for (const r of rule?.from ?? []) keys.add(objectKey('DestinationRule', r.namespace, r.name));
    for (const port of service.ports) {
      if (port.endpoints.length === 0) peer(workloadMtls(snapshot, service.namespace, {}, fallback).from);
      for (const e of port.endpoints) peer(workloadMtls(snapshot, service.namespace, e.labels, fallback).from);
    }
  }
  return [...keys].sort();
}

/** The AuthorizationPolicies of the proxy's inbound RBAC: none when it has no inbound side. */
function inboundPolicies(
  snapshot: MeshSnapshot,
  proxy: ProxyInfo,
  mesh: MeshConfig,
): readonly { readonly namespace: string; readonly name: string }[] {
  const inbound = proxy.proxyType === 'envoy' || serverBindings({ snapshot, proxy, mesh }).length > 0;
  return inbound ? authorizationPoliciesFor(snapshot, proxy.namespace, proxy.labels) : [];
}

/**
 * proxySources, memoized per snapshot and per what it reads of the proxy: its namespace, the labels
 * PeerAuthentication selectors read, its scope, and the AuthorizationPolicies of its inbound side.
 */
export function meshSources(mesh: MeshConfig): (proxy: ProxyInfo, snapshot: MeshSnapshot) => readonly string[] {
  const memo = new WeakMap<MeshSnapshot, Map<string, readonly string[]>>();
  return (proxy, snapshot) => {
    let bySnapshot = memo.get(snapshot);
    if (!bySnapshot) memo.set(snapshot, (bySnapshot = new Map()));
    const selected = snapshotKeys(snapshot).selectorLabelKeys.flatMap((k) =>
      proxy.labels[k] === undefined ? [] : [[k, proxy.labels[k]]],
    );
    const scope = proxyScope({ snapshot, proxy, mesh });
    const sidecar = scope.sidecar ? `${scope.sidecar.namespace}/${scope.sidecar.name}` : '';
    const policies = inboundPolicies(snapshot, proxy, mesh).map((ap) => `${ap.namespace}/${ap.name}`);
    const key = JSON.stringify([proxy.namespace, selected, scope.key, sidecar, policies]);
    let sources = bySnapshot.get(key);
    if (!sources) bySnapshot.set(key, (sources = proxySources(snapshot, proxy, mesh)));
    return sources;
  };
}
