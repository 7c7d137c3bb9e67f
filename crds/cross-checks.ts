// Checks across objects, after each VirtualService and DestinationRule passed validateRoutingResource:
//
// - a destination (route, mirror, mirrors[], TCP route) names a subset that no DestinationRule for its host defines
//   (visible from the VirtualService's namespace): error. Envoy would get a cluster with no endpoints and
//   every request would fail with 503.
// - a root VirtualService's delegate is not in the input, has hosts, or is not exported to the root:
//   warning (the mesh model leaves that route out and says so in the root's status).
// - a host (VirtualService host, destination, mirror, DestinationRule host) has no Service, or a destination
//   port the Service does not have: warning, as Istio's analyzers do. The Service may live in a cluster
//   the files do not describe, and a route to it is harmless until it exists. Skipped when the caller
//   has no Services at all (`services` undefined).
// - two VirtualServices for one host, seen together by some namespace: the older wins (creationTimestamp,
//   then namespace, then name; the mesh model's precedence), the younger gets a warning naming it.
// - two DestinationRules for one host in one namespace are merged (envoy-translation.md §1.4): subsets
//   appended, a duplicate subset name ignored with a warning, the first top-level trafficPolicy wins.
//
// - PeerAuthentications at one level (crossCheckPeerAuthentications): only the oldest without a selector
//   applies in a namespace; one with the same selector as an older one has no effect. Warnings.
//
// The wording of the last three matches what the mesh model reports (control-plane/model/routing.ts,
// peer-authentication.ts).
import type { V1Service } from '@kubernetes/client-node';
import { DEFAULT_ROOT_NAMESPACE } from './rules/defaults.js';
import { DEFAULT_DOMAIN, qualifyHost, serviceFqdn } from './rules/hosts.js';
import { peerAuthenticationConflicts, peerFields, type PeerPolicy } from './rules/peer-authentication.js';
import { comparePrecedence } from './rules/precedence.js';
import { coveredBy, isVisibleTo, normalizeExportTo, overlaps, type ExportTo } from './rules/visibility.js';
import type { Destination, DestinationRule, PeerAuthentication, RoutingResource, VirtualService } from './types.js';
import { comparePaths, DEFAULT_NAMESPACE, type ValidationIssue } from './validator.js';

export interface CrossCheckOptions {
  /** Cluster domain of Service FQDNs; `cluster.local`. */
  domain?: string;
  /** ServiceEntry hosts (as written, lower case) and their port numbers: services too. */
  serviceEntryHosts?: ReadonlyMap<string, readonly number[]>;
}

interface Indexed<T extends RoutingResource> {
  readonly index: number;
  readonly resource: T;
  readonly namespace: string;
  readonly name: string;
  readonly creationTimestamp?: unknown;
  readonly exportTo: ExportTo;
}

interface ServiceInfo {
  readonly ports: ReadonlySet<number>;
}

function indexed<T extends RoutingResource>(resource: T, index: number): Indexed<T> {
  const namespace = resource.metadata.namespace || DEFAULT_NAMESPACE;
  return {
    index,
    resource,
    namespace,
    name: resource.metadata.name,
    creationTimestamp: resource.metadata.creationTimestamp,
    exportTo: normalizeExportTo(resource.spec.exportTo, namespace),
  };
}

/**
 * Istio's wildcards: `*.example.com` matches `a.example.com` and `a.b.example.com`, `*foo.example.com`
 * matches `afoo.example.com`; `*` matches everything.
 */
function wildcardMatches(pattern: string, host: string): boolean {
  return pattern.startsWith('*') && host.endsWith(pattern.slice(1));
}

/**
 * Cross-object issues, one list per resource (same order as `resources`, which should be valid resources,
 * the `resource` of a ValidationResult). `services` undefined skips the checks against Services.
 */
export function crossCheck(
  resources: readonly RoutingResource[],
  services: readonly V1Service[] | undefined,
  options: CrossCheckOptions = {},
): ValidationIssue[][] {
  const domain = options.domain ?? DEFAULT_DOMAIN;
  const out: ValidationIssue[][] = resources.map(() => []);
  const warn = (i: number, path: string, message: string) => out[i]?.push({ path, message, severity: 'warning' });
  const error = (i: number, path: string, message: string) => out[i]?.push({ path, message, severity: 'error' });

  const vss: Indexed<VirtualService>[] = [];
  const drs: Indexed<DestinationRule>[] = [];
  resources.forEach((r, i) => {
    if (r.kind === 'VirtualService') vss.push(indexed(r, i));
    else drs.push(indexed(r, i));
  });

  const serviceByFqdn = new Map<string, ServiceInfo>();
  for (const s of services ?? []) {
    const name = s.metadata?.name;
    if (!name) continue;
    const fqdn = serviceFqdn(name, s.metadata?.namespace || DEFAULT_NAMESPACE, domain);
    serviceByFqdn.set(fqdn, { ports: new Set((s.spec?.ports ?? []).map((p) => p.port)) });
  }
  for (const [host, ports] of options.serviceEntryHosts ?? []) {
    if (!serviceByFqdn.has(host)) serviceByFqdn.set(host, { ports: new Set(ports) });
  }

  const drsByHost = new Map<string, Indexed<DestinationRule>[]>();
  for (const dr of drs) {
    const host = qualifyHost(dr.resource.spec.host, dr.namespace, domain);
    let list = drsByHost.get(host);
    if (!list) drsByHost.set(host, (list = []));
    list.push(dr);
  }

  /** The DestinationRules that apply to `fqdn` for a client in `namespace`: exact host, else wildcards. */
  const rulesFor = (fqdn: string, namespace: string): Indexed<DestinationRule>[] => {
    const visible = (list: readonly Indexed<DestinationRule>[]) =>
      list.filter((d) => isVisibleTo(d.exportTo, namespace));
    const exact = visible(drsByHost.get(fqdn) ?? []);
    if (exact.length > 0) return exact;
    return visible([...drsByHost.entries()].filter(([h]) => wildcardMatches(h, fqdn)).flatMap(([, l]) => l));
  };

  const checkService = (i: number, path: string, host: string, namespace: string, consequence: string) => {
    if (services === undefined || host.startsWith('*')) return undefined;
    // A ServiceEntry host is a name as written (also with two labels), before qualification.
    const entry = serviceByFqdn.get(host.toLowerCase().replace(/\.$/, ''));
    const fqdn = entry ? host.toLowerCase().replace(/\.$/, '') : qualifyHost(host, namespace, domain);
    const svc = entry ?? serviceByFqdn.get(fqdn);
    if (!svc) warn(i, path, `no Service ${fqdn} (${consequence})`);
    return svc;
  };

  const checkDestination = (vs: Indexed<VirtualService>, path: string, d: Destination | undefined) => {
    if (!d) return;
    const fqdn = qualifyHost(d.host, vs.namespace, domain);
    const svc = checkService(vs.index, `${path}.host`, d.host, vs.namespace, 'requests to it fail');
    const port = d.port?.number;
    if (svc && port !== undefined && !svc.ports.has(port))
      warn(vs.index, `${path}.port.number`, `Service ${fqdn} has no port ${port}`);
    if (d.subset !== undefined) {
      const defined = rulesFor(fqdn, vs.namespace).some((dr) =>
        (dr.resource.spec.subsets ?? []).some((s) => s.name === d.subset),
      );
      if (!defined) error(vs.index, `${path}.subset`, `no DestinationRule for ${fqdn} defines subset ${d.subset}`);
    }
  };

  // Destinations and hosts -------------------------------------------------------------------------------
  for (const vs of vss) {
    const spec = vs.resource.spec;
    (spec.hosts ?? []).forEach((h, j) =>
      checkService(vs.index, `spec.hosts[${j}]`, h, vs.namespace, 'the routes apply to no traffic'),
    );
    (spec.http ?? []).forEach((http, j) => {
      (http.route ?? []).forEach((r, k) =>
        checkDestination(vs, `spec.http[${j}].route[${k}].destination`, r.destination),
      );
      checkDestination(vs, `spec.http[${j}].mirror`, http.mirror);
      (http.mirrors ?? []).forEach((m, k) =>
        checkDestination(vs, `spec.http[${j}].mirrors[${k}].destination`, m.destination),
      );
      if (http.delegate) {
        // The mesh model's rules (control-plane/model/virtual-service-delegates.ts): the route is left out.
        const ns = http.delegate.namespace ?? vs.namespace;
        const ref = `VirtualService ${ns}/${http.delegate.name}`;
        const target = vss.find((o) => o.namespace === ns && o.name === http.delegate?.name);
        const at = `spec.http[${j}].delegate`;
        if (!target) warn(vs.index, at, `no ${ref} in the input (without it this route is left out)`);
        else if ((target.resource.spec.hosts ?? []).length > 0)
          warn(vs.index, at, `${ref} has hosts, so it is not a delegate; this route is left out`);
        else if (!isVisibleTo(target.exportTo, vs.namespace))
          warn(vs.index, at, `${ref} is not exported to namespace ${vs.namespace}; this route is left out`);
      }
    });
    (spec.tls ?? []).forEach((tls, j) =>
      (tls.route ?? []).forEach((r, k) =>
        checkDestination(vs, `spec.tls[${j}].route[${k}].destination`, r.destination),
      ),
    );
    (spec.tcp ?? []).forEach((tcp, j) =>
      (tcp.route ?? []).forEach((r, k) =>
        checkDestination(vs, `spec.tcp[${j}].route[${k}].destination`, r.destination),
      ),
    );
  }
  for (const dr of drs) {
    const svc = checkService(
      dr.index,
      'spec.host',
      dr.resource.spec.host,
      dr.namespace,
      'the policies apply to no traffic',
    );
    const fqdn = qualifyHost(dr.resource.spec.host, dr.namespace, domain);
    const portPolicies = (path: string, list: { port?: { number?: number } }[] | undefined) =>
      (list ?? []).forEach((p, k) => {
        const port = p.port?.number;
        if (svc && port !== undefined && !svc.ports.has(port))
          warn(dr.index, `${path}[${k}].port.number`, `Service ${fqdn} has no port ${port}`);
      });
    portPolicies('spec.trafficPolicy.portLevelSettings', dr.resource.spec.trafficPolicy?.portLevelSettings);
    (dr.resource.spec.subsets ?? []).forEach((s, j) =>
      portPolicies(`spec.subsets[${j}].trafficPolicy.portLevelSettings`, s.trafficPolicy?.portLevelSettings),
    );
  }

  // Two VirtualServices for one host ----------------------------------------------------------------------
  const vsByHost = new Map<string, Indexed<VirtualService>[]>();
  for (const vs of [...vss].sort(comparePrecedence)) {
    for (const host of new Set((vs.resource.spec.hosts ?? []).map((h) => qualifyHost(h, vs.namespace, domain)))) {
      let list = vsByHost.get(host);
      if (!list) vsByHost.set(host, (list = []));
      list.push(vs);
    }
  }
  for (const [host, candidates] of vsByHost) {
    candidates.forEach((vs, i) => {
      const older = candidates.slice(0, i).filter((o) => overlaps(o.exportTo, vs.exportTo));
      const winner = older[0];
      if (!winner) return;
      const everywhere = coveredBy(
        vs.exportTo,
        older.map((o) => o.exportTo),
      );
      const written = (vs.resource.spec.hosts ?? []).findIndex((h) => qualifyHost(h, vs.namespace, domain) === host);
      warn(
        vs.index,
        `spec.hosts[${written}]`,
        `conflicts with older VirtualService ${winner.namespace}/${winner.name} for host ${host}${everywhere ? '' : ' in the namespaces that see both'}, which wins`,
      );
    });
  }

  // Two DestinationRules for one host (and namespace): merged --------------------------------------------
  const groups = new Map<string, Indexed<DestinationRule>[]>();
  for (const dr of [...drs].sort(comparePrecedence)) {
    const key = `${qualifyHost(dr.resource.spec.host, dr.namespace, domain)}\0${dr.namespace}`;
    let list = groups.get(key);
    if (!list) groups.set(key, (list = []));
    list.push(dr);
  }
  for (const members of groups.values()) {
    let policyOwner: Indexed<DestinationRule> | undefined;
    const subsetOwner = new Map<string, Indexed<DestinationRule>>();
    for (const dr of members) {
      const host = qualifyHost(dr.resource.spec.host, dr.namespace, domain);
      if (dr.resource.spec.trafficPolicy) {
        if (policyOwner)
          warn(
            dr.index,
            'spec.trafficPolicy',
            `ignored: the older DestinationRule ${policyOwner.namespace}/${policyOwner.name} for host ${host} sets the top-level trafficPolicy, and the first one wins`,
          );
        else policyOwner = dr;
      }
      (dr.resource.spec.subsets ?? []).forEach((s, j) => {
        const owner = subsetOwner.get(s.name);
        if (!owner) subsetOwner.set(s.name, dr);
        else if (owner !== dr)
          warn(
            dr.index,
            `spec.subsets[${j}]`,
            `subset "${s.name}" is already defined by the older DestinationRule ${owner.namespace}/${owner.name} for host ${host}; ignored`,
          );
      });
    }
  }
  for (const list of out) list.sort((a, b) => comparePaths(a.path, b.path));
  return out;
}

/**
 * PeerAuthentications at one level (peer-authentication.ts in the model, the same words): a younger policy
 * without a selector in a namespace that has an older one, or with the same selector as an older one, has
 * no effect; warnings, one list per resource (same order as `resources`). Overlapping selectors depend on
 * the Pods, which files rarely describe: the model's status reports those.
 */
export function crossCheckPeerAuthentications(
  resources: readonly PeerAuthentication[],
  rootNamespace = DEFAULT_ROOT_NAMESPACE,
): ValidationIssue[][] {
  const accepted: (PeerPolicy & { index: number; creationTimestamp?: string })[] = resources.map((resource, index) => {
    const namespace = resource.metadata.namespace || DEFAULT_NAMESPACE;
    const created = resource.metadata.creationTimestamp;
    return {
      index,
      namespace,
      name: resource.metadata.name,
      ...(typeof created === 'string' ? { creationTimestamp: created } : {}),
      ...peerFields(resource.spec),
    };
  });
  const sorted = [...accepted].sort(comparePrecedence);
  const out: ValidationIssue[][] = resources.map(() => []);
  for (const c of peerAuthenticationConflicts(sorted, [], rootNamespace)) {
    const i = accepted.find((a) => a.namespace === c.policy.namespace && a.name === c.policy.name)!.index;
    out[i]!.push({ path: c.path, message: c.message, severity: 'warning' });
  }
  return out;
}
