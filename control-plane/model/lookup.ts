// What a translator asks the model while generating the config of one proxy (in namespace `namespace`).
// All pure reads of a snapshot; each returns objects of the snapshot itself (never copies), so a
// translator may cache by identity.
import { qualifyHost } from './hosts.js';
import type {
  AcceptedVirtualService,
  MergedDestinationRule,
  MeshEndpoint,
  MeshService,
  MeshServicePort,
  MeshSnapshot,
  ServiceInstance,
} from './snapshot.js';
import { isVisibleTo } from './visibility.js';

/**
 * The Service a host names, written in `namespace`: `reviews`, `reviews.ns`, `reviews.ns.svc` or the
 * FQDN (hosts.ts). Does not check visibility: see `isVisibleTo(service.exportTo, namespace)`.
 */
export function findService(snapshot: MeshSnapshot, host: string, namespace: string): MeshService | undefined {
  // A ServiceEntry host is an FQDN as written, also with two labels (httpbin.org), which qualifyHost reads
  // as name.namespace: the exact name first, then the qualified one, then (a two-label name a VirtualService
  // or DestinationRule qualified on acceptance, `httpbin.org.svc.<domain>`) the ServiceEntry host it was.
  const byFqdn = snapshot.index.servicesByFqdn;
  const exact = byFqdn.get(host);
  if (exact) return exact;
  const qualified = qualifyHost(host, namespace, snapshot.domain);
  const service = byFqdn.get(qualified);
  if (service) return service;
  const suffix = `.svc.${snapshot.domain}`;
  if (!qualified.endsWith(suffix)) return undefined;
  const entry = byFqdn.get(qualified.slice(0, -suffix.length));
  return entry?.serviceEntry ? entry : undefined;
}

/** The Services a proxy in `namespace` may reach (exportTo), sorted by FQDN. */
export function servicesVisibleFrom(snapshot: MeshSnapshot, namespace: string): MeshService[] {
  return snapshot.services.filter((s) => isVisibleTo(s.exportTo, namespace));
}

export function findServicePort(service: MeshService, port: number): MeshServicePort | undefined {
  return service.ports.find((p) => p.port === port && p.transport !== 'UDP');
}

/**
 * The VirtualService that routes `host` for proxies in `namespace`: the oldest one visible there
 * (sidecars do not merge VirtualServices). `host` is qualified in `namespace` first.
 */
export function virtualServiceFor(
  snapshot: MeshSnapshot,
  host: string,
  namespace: string,
): AcceptedVirtualService | undefined {
  const policy = snapshot.index.hosts.get(qualifyHost(host, namespace, snapshot.domain));
  return policy?.virtualServices.find((vs) => isVisibleTo(vs.exportTo, namespace));
}

/** Every host routed by a VirtualService for proxies in `namespace`, with the one that wins; sorted by host. */
export function virtualServicesVisibleFrom(
  snapshot: MeshSnapshot,
  namespace: string,
): { readonly host: string; readonly virtualService: AcceptedVirtualService }[] {
  const out: { host: string; virtualService: AcceptedVirtualService }[] = [];
  for (const policy of snapshot.hosts) {
    const virtualService = policy.virtualServices.find((vs) => isVisibleTo(vs.exportTo, namespace));
    if (virtualService) out.push({ host: policy.host, virtualService });
  }
  return out;
}

/** `<name>.<ns>.svc.<domain>` → `ns`. */
function namespaceOfFqdn(host: string, domain: string): string | undefined {
  const suffix = `.svc.${domain}`;
  if (!host.endsWith(suffix)) return undefined;
  const labels = host.slice(0, -suffix.length).split('.');
  return labels.length === 2 ? labels[1] : undefined;
}

/**
 * Istio's wildcards (crds/rules/istio.ts): `*.example.com` matches `a.example.com` and `a.b.example.com`,
 * `*-api.example.com` matches `shop-api.example.com`; `*` matches every host.
 */
export function wildcardMatches(pattern: string, host: string): boolean {
  return pattern.startsWith('*') && host.endsWith(pattern.slice(1));
}

/**
 * The DestinationRule for `host` as proxies in `namespace` see it (Istio's lookup,
 * envoy-translation.md §1.4): the merged rules of the proxy's own namespace, else those of the
 * Service's namespace exported to it, else those of the root namespace exported to it. In each
 * namespace a rule for the exact host wins over one for a wildcard (`*.shop.svc.cluster.local`), and a
 * longer wildcard over a shorter one (Istio's MostSpecificHostMatch). With the proxy's `labels`, a rule
 * of the proxy's namespace whose `workloadSelector` they match comes first; without them (a view not
 * of one proxy) rules with a selector are left out.
 */
export function destinationRuleFor(
  snapshot: MeshSnapshot,
  host: string,
  namespace: string,
  labels?: Readonly<Record<string, string>>,
): MergedDestinationRule | undefined {
  const fqdn = qualifyHost(host, namespace, snapshot.domain);
  const policies = [
    snapshot.index.hosts.get(fqdn),
    ...snapshot.index.wildcardHosts.filter((w) => w.host !== fqdn && wildcardMatches(w.host, fqdn)),
  ];
  const rules = policies.flatMap((policy) => policy?.destinationRules ?? []);
  if (rules.length === 0) return undefined;
  const serviceNamespace = snapshot.index.servicesByFqdn.get(fqdn)?.namespace ?? namespaceOfFqdn(fqdn, snapshot.domain);
  const tiers = [namespace, serviceNamespace, snapshot.rootNamespace];
  // A rule with a workloadSelector applies only to the proxies of its own namespace whose labels match,
  // and there before the rule without one (Istio's SidecarScope.DestinationRule); elsewhere it is ignored.
  // The most specific host with a rule in the proxy's namespace decides, as for rules without a selector.
  if (labels !== undefined) {
    for (const policy of policies) {
      const own = (policy?.destinationRules ?? []).filter((r) => r.namespace === namespace);
      if (own.length === 0) continue;
      const selected = own.find(
        (r) => r.selector !== undefined && Object.entries(r.selector).every(([k, v]) => labels[k] === v),
      );
      if (selected) return selected;
      break;
    }
  }
  for (const tier of tiers) {
    if (tier === undefined) continue;
    const rule = rules.find(
      (r) => r.selector === undefined && r.namespace === tier && isVisibleTo(r.exportTo, namespace),
    );
    if (rule) return rule;
  }
  return undefined;
}

/** Endpoints whose labels include every one of `labels` (a subset's selection). */
export function selectEndpoints(
  endpoints: readonly MeshEndpoint[],
  labels: Readonly<Record<string, string>> | undefined,
): readonly MeshEndpoint[] {
  const wanted = Object.entries(labels ?? {});
  if (wanted.length === 0) return endpoints;
  return endpoints.filter((e) => wanted.every(([k, v]) => e.labels[k] === v));
}

/**
 * The endpoints of cluster `outbound|<port>|<subset>|<host>` as a proxy in `namespace` sees it: the
 * Service port's endpoints, filtered by the labels of `subset` in the DestinationRule for the host.
 * A subset no rule defines selects nothing (Istio sends an empty ClusterLoadAssignment: 503 UH).
 * Filtering is on the server side, as in Istio (envoy-translation.md §1.5).
 */
export function endpointsFor(
  snapshot: MeshSnapshot,
  host: string,
  port: number,
  subset: string | undefined,
  namespace: string,
  labels?: Readonly<Record<string, string>>,
): readonly MeshEndpoint[] {
  const service = findService(snapshot, host, namespace);
  const servicePort = service && findServicePort(service, port);
  if (!servicePort) return [];
  if (subset === undefined || subset === '') return servicePort.endpoints;
  const definition = destinationRuleFor(snapshot, host, namespace, labels)?.subsets.find((s) => s.name === subset);
  if (!definition) return [];
  return selectEndpoints(servicePort.endpoints, definition.labels);
}

/** The Service ports a Pod serves (its inbound side), by the Pod named in EndpointSlice `targetRef`. */
export function instancesOfPod(snapshot: MeshSnapshot, namespace: string, name: string): readonly ServiceInstance[] {
  return snapshot.index.instancesByPod.get(`${namespace}/${name}`) ?? [];
}

/**
 * The Kubernetes Services of `namespace` whose selector `labels` match (every key with its value), by FQDN:
 * the Services whose endpoints a Pod with those labels joins.
 */
export function selectingServices(
  snapshot: MeshSnapshot,
  namespace: string,
  labels: Readonly<Record<string, string>>,
): MeshService[] {
  return (selectorServices(snapshot.services).get(namespace) ?? []).filter((s) =>
    Object.entries(s.selector!).every(([key, value]) => labels[key] === value),
  );
}

/** The Services with a selector, by namespace (in snapshot order): one per list of services. */
const selectorIndexes = new WeakMap<readonly MeshService[], ReadonlyMap<string, readonly MeshService[]>>();

/**
 * The Services with a selector of each namespace. A new Pod's proxy asks for those of its namespace (its
 * inbound side before an EndpointSlice lists it); scanning every Service of a large mesh per Pod cost 1 ms.
 */
function selectorServices(services: readonly MeshService[]): ReadonlyMap<string, readonly MeshService[]> {
  let index = selectorIndexes.get(services);
  if (!index) {
    const byNamespace = new Map<string, MeshService[]>();
    for (const s of services) {
      if (s.selector === undefined) continue;
      const list = byNamespace.get(s.namespace);
      if (list) list.push(s);
      else byNamespace.set(s.namespace, [s]);
    }
    selectorIndexes.set(services, (index = byNamespace));
  }
  return index;
}

/** The Service ports served at an address (a proxy's `INSTANCE_IPS`). */
export function instancesAt(snapshot: MeshSnapshot, address: string): readonly ServiceInstance[] {
  return snapshot.index.instancesByAddress.get(address) ?? [];
}
