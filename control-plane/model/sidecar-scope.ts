// Sidecar: which services a proxy's config holds (Istio's networking/v1 Sidecar), and Trellis's automatic
// scoping. Pure. routing.ts validates and accepts the objects (last accepted version and status as for the
// other kinds); this file reads what was accepted (README "Sidecar"):
//
// - `sidecarFields`: what the model keeps of a valid spec (selector, egress hosts, outbound policy);
// - `sidecarConflicts`: several Sidecars at one level (the oldest wins, as PeerAuthentications);
// - `sidecarFor`: the Sidecar of a proxy, Istio's precedence: the oldest of its namespace whose
//   workloadSelector its labels match > the oldest of its namespace without one (the namespace default) >
//   the oldest without one in the root namespace (the mesh default) > none;
// - `scopeOf`: the services of a proxy's config and why each is there: the Services visible to its namespace
//   (exportTo) that an egress host matches, plus the destinations of their VirtualServices; with automatic
//   scoping also the Services whose servers' ALLOW AuthorizationPolicies name the proxy's identity (or
//   namespace). Memoized per snapshot and per what it reads of the proxy, so Pods of one workload share one.
import { createHash } from 'node:crypto';
import type { SidecarSpec } from '../../crds/types.js';
import { peerAuthenticationConflicts, selects, type PeerConflict, type PodLabels } from './peer-authentication.js';
import { authorizationPoliciesFor } from './authorization-policy.js';
import { servicesVisibleFrom, virtualServiceFor } from './lookup.js';
import type {
  AcceptedAuthorizationPolicy,
  AcceptedSidecar,
  AcceptedVirtualService,
  MeshService,
  MeshSnapshot,
  ObjectRef,
  SidecarEgressHost,
} from './snapshot.js';

/** What the model keeps of a valid spec. */
export function sidecarFields(
  spec: SidecarSpec,
): Pick<AcceptedSidecar, 'selector' | 'egressHosts' | 'outboundTrafficPolicy'> {
  const labels = spec.workloadSelector?.labels ?? {};
  const keys = Object.keys(labels).sort();
  const written = (spec.egress ?? []).flatMap((e) => e.hosts ?? []);
  const hosts = (written.length > 0 ? written : ['*/*']).map((h): SidecarEgressHost => {
    const slash = h.indexOf('/');
    return { namespace: h.slice(0, slash), dnsName: h.slice(slash + 1) };
  });
  const mode = spec.outboundTrafficPolicy?.mode;
  return {
    ...(keys.length > 0 ? { selector: Object.fromEntries(keys.map((k) => [k, labels[k]!])) } : {}),
    egressHosts: hosts,
    ...(mode ? { outboundTrafficPolicy: mode } : {}),
  };
}

/**
 * Several Sidecars at one level (`accepted` in precedence order): a younger namespace (or mesh) default, or
 * a younger one with the same selector, has no effect (conflicted); one that selects a Pod an older one also
 * selects is warned. The rules of PeerAuthentication (crds/rules/peer-authentication.ts), worded for Sidecars.
 */
export function sidecarConflicts(
  accepted: readonly AcceptedSidecar[],
  pods: readonly PodLabels[],
  rootNamespace: string,
): PeerConflict[] {
  const policies = accepted.map((s) => ({
    namespace: s.namespace,
    name: s.name,
    ...(s.selector ? { selector: s.selector } : {}),
    mode: 'UNSET' as const,
    portLevel: [],
  }));
  return peerAuthenticationConflicts(policies, pods, rootNamespace).map((c) => ({
    ...c,
    path: c.path === 'spec.selector' ? 'spec.workloadSelector' : c.path,
    message: c.message
      .replaceAll('PeerAuthentication', 'Sidecar')
      .replace('which is the policy of', 'which is the default of')
      .replace('(only the oldest without a selector applies)', '(only the oldest without a workloadSelector applies)'),
  }));
}

/** Where a proxy's Sidecar comes from. */
export type SidecarLevel = 'workload' | 'namespace' | 'mesh' | 'none';

/** The Sidecar that applies to a proxy in `namespace` with `labels` (Istio's precedence), and its level. */
export function sidecarFor(
  snapshot: Pick<MeshSnapshot, 'sidecars' | 'rootNamespace'>,
  namespace: string,
  labels: Readonly<Record<string, string>>,
): { readonly sidecar?: AcceptedSidecar; readonly level: SidecarLevel } {
  let namespaceDefault: AcceptedSidecar | undefined;
  let meshDefault: AcceptedSidecar | undefined;
  for (const s of snapshot.sidecars) {
    if (s.namespace === namespace) {
      if (s.selector) {
        if (selects(s.selector, labels)) return { sidecar: s, level: 'workload' };
      } else namespaceDefault ??= s;
    } else if (s.namespace === snapshot.rootNamespace && !s.selector) meshDefault ??= s;
  }
  if (namespaceDefault) return { sidecar: namespaceDefault, level: 'namespace' };
  if (meshDefault) return { sidecar: meshDefault, level: 'mesh' };
  return { level: 'none' };
}

/**
 * An egress host matches a Service: the namespace part is `*`, the Service's namespace (`.` is the Sidecar's
 * own namespace, for a mesh default the proxy's: `configNamespace`); `~` matches none. The dnsName is `*`,
 * a `*.suffix` the FQDN ends with, or the FQDN itself (Istio matches full names only).
 */
export function egressHostMatches(host: SidecarEgressHost, service: MeshService, configNamespace: string): boolean {
  const ns = host.namespace === '.' ? configNamespace : host.namespace;
  if (ns === '~' || (ns !== '*' && ns !== service.namespace)) return false;
  if (host.dnsName === '*') return true;
  if (host.dnsName.startsWith('*.')) return service.fqdn.endsWith(host.dnsName.slice(1));
  return service.fqdn === host.dnsName.replace(/\.$/, '');
}

/** Istio's string match of AuthorizationPolicy: exact, `abc*` prefix, `*abc` suffix, `*` presence. */
function stringMatches(pattern: string, value: string): boolean {
  if (pattern === '*') return value !== '';
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

/** Who a proxy is, for automatic scoping. */
export interface ProxyIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly trustDomain: string;
}

/**
 * An ALLOW rule admits the identity by name: one of its `from` sources lists `principals` or `namespaces`
 * (the fields the source names a caller by) and every one of those it lists matches. A rule without `from`
 * admits everyone but names no one, so it does not count; nor does a source of only IP blocks.
 */
function ruleNames(policy: AcceptedAuthorizationPolicy, who: ProxyIdentity): boolean {
  const principal = `${who.trustDomain}/ns/${who.namespace}/sa/${who.serviceAccount}`;
  return policy.rules.some((rule) =>
    (rule.from ?? []).some(({ source }) => {
      if (!source.principals && !source.namespaces) return false;
      if (source.principals && !source.principals.some((p) => stringMatches(p, principal))) return false;
      if (source.namespaces && !source.namespaces.some((n) => stringMatches(n, who.namespace))) return false;
      return true;
    }),
  );
}

const serverPolicies = new WeakMap<MeshSnapshot, Map<MeshService, readonly AcceptedAuthorizationPolicy[]>>();

/** The ALLOW AuthorizationPolicies that apply to any workload behind a Service (its namespace's, when it has none). */
function allowPoliciesOf(snapshot: MeshSnapshot, service: MeshService): readonly AcceptedAuthorizationPolicy[] {
  let bySnapshot = serverPolicies.get(snapshot);
  if (!bySnapshot) serverPolicies.set(snapshot, (bySnapshot = new Map()));
  let policies = bySnapshot.get(service);
  if (!policies) {
    const labelSets = new Map<string, Readonly<Record<string, string>>>();
    for (const port of service.ports) for (const e of port.endpoints) labelSets.set(JSON.stringify(e.labels), e.labels);
    if (labelSets.size === 0) labelSets.set('{}', {});
    const found = new Set<AcceptedAuthorizationPolicy>();
    for (const labels of labelSets.values())
      for (const ap of authorizationPoliciesFor(snapshot, service.namespace, labels))
        if (ap.action === 'ALLOW') found.add(ap);
    policies = [...found];
    bySnapshot.set(service, policies);
  }
  return policies;
}

/** The hosts a VirtualService sends traffic to (route destinations and mirrors, qualified by the model). */
function destinationsOf(vs: AcceptedVirtualService): string[] {
  const out: string[] = [];
  for (const http of vs.spec.http ?? []) {
    for (const r of http.route ?? []) if (r.destination?.host) out.push(r.destination.host);
    if (http.mirror?.host) out.push(http.mirror.host);
    for (const m of http.mirrors ?? []) if (m.destination?.host) out.push(m.destination.host);
  }
  for (const tcp of vs.spec.tcp ?? [])
    for (const r of tcp.route ?? []) if (r.destination?.host) out.push(r.destination.host);
  return out;
}

/** How the scope of a proxy is decided. */
export interface ScopeOptions {
  /** Mesh config `scoping: automatic`: add the Services whose servers' ALLOW policies name the proxy. */
  readonly automatic: boolean;
  readonly trustDomain: string;
}

/** The services of a proxy's config, and why. */
export interface ProxyScope {
  /** True when nothing narrows it: every Service visible to the namespace (no Sidecar, nothing automatic). */
  readonly all: boolean;
  /** The Services in scope (visible from the proxy's namespace), sorted by FQDN. */
  readonly services: readonly MeshService[];
  /** Why each Service is in scope, by FQDN (empty when `all`). */
  readonly reasons: ReadonlyMap<string, readonly string[]>;
  /** The Sidecar that applies, and its level. */
  readonly sidecar?: ObjectRef;
  readonly level: SidecarLevel;
  /** The Sidecar's outbound traffic policy, when it sets one (else the mesh config's applies). */
  readonly outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** True when automatic scoping named at least one Service for this proxy. */
  readonly automatic: boolean;
  /** Equal keys, equal scope: `all`, or a hash of the FQDNs and the outbound policy. Part of the proxy shape. */
  readonly key: string;
}

const scopes = new WeakMap<MeshSnapshot, Map<string, ProxyScope>>();

/** The scope of a proxy (namespace, labels, service account), memoized per snapshot. */
export function scopeOf(
  snapshot: MeshSnapshot,
  proxy: {
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly serviceAccount: string;
  },
  options: ScopeOptions,
): ProxyScope {
  const { sidecar, level } = sidecarFor(snapshot, proxy.namespace, proxy.labels);
  // Nothing to narrow: the common case costs one lookup.
  const hasPolicies = options.automatic && snapshot.authorizationPolicies.length > 0;
  const memoKey = JSON.stringify([
    proxy.namespace,
    sidecar ? `${sidecar.namespace}/${sidecar.name}` : '',
    hasPolicies ? proxy.serviceAccount : '',
    hasPolicies ? options.trustDomain : '',
  ]);
  let bySnapshot = scopes.get(snapshot);
  if (!bySnapshot) scopes.set(snapshot, (bySnapshot = new Map()));
  let scope = bySnapshot.get(memoKey);
  if (!scope) {
    scope = computeScope(snapshot, proxy, sidecar, level, hasPolicies ? options : undefined);
    bySnapshot.set(memoKey, scope);
  }
  return scope;
}

function computeScope(
  snapshot: MeshSnapshot,
  proxy: { readonly namespace: string; readonly serviceAccount: string },
  sidecar: AcceptedSidecar | undefined,
  level: SidecarLevel,
  automatic: ScopeOptions | undefined,
): ProxyScope {
  const visible = servicesVisibleFrom(snapshot, proxy.namespace);
  const base = {
    ...(sidecar ? { sidecar: { namespace: sidecar.namespace, name: sidecar.name } } : {}),
    level,
    ...(sidecar?.outboundTrafficPolicy ? { outboundTrafficPolicy: sidecar.outboundTrafficPolicy } : {}),
  };
  const reasons = new Map<string, string[]>();
  const because = (fqdn: string, why: string): void => {
    const list = reasons.get(fqdn);
    if (list) {
      if (!list.includes(why)) list.push(why);
    } else reasons.set(fqdn, [why]);
  };
  let named = false;
  if (automatic) {
    const who: ProxyIdentity = { ...proxy, trustDomain: automatic.trustDomain };
    // The policies that name this identity first (few), then the Services they guard: a service account no
    // policy names costs one pass over the policies.
    const naming = new Set(snapshot.authorizationPolicies.filter((ap) => ap.action === 'ALLOW' && ruleNames(ap, who)));
    if (naming.size > 0) {
      for (const service of visible) {
        for (const ap of allowPoliciesOf(snapshot, service)) {
          if (!naming.has(ap)) continue;
          because(
            service.fqdn,
            `AuthorizationPolicy ${ap.namespace}/${ap.name} allows ${proxy.namespace}/sa/${proxy.serviceAccount}`,
          );
          named = true;
        }
      }
    }
  }
  if (sidecar) {
    // `.` is the Sidecar's namespace; a mesh default (root namespace) is read in the proxy's namespace.
    const configNamespace = level === 'mesh' ? proxy.namespace : sidecar.namespace;
    for (const service of visible) {
      const host = sidecar.egressHosts.find((h) => egressHostMatches(h, service, configNamespace));
      if (host)
        because(service.fqdn, `Sidecar ${sidecar.namespace}/${sidecar.name} egress ${host.namespace}/${host.dnsName}`);
    }
  } else if (!named) {
    return {
      all: true,
      services: visible,
      reasons: new Map(),
      ...base,
      automatic: false,
      key: keyOf(true, [], base.outboundTrafficPolicy),
    };
  }
  // The destinations of the VirtualServices of those hosts (one level: a route names clusters, not hosts to route again).
  const byFqdn = new Map(visible.map((s) => [s.fqdn, s]));
  for (const fqdn of [...reasons.keys()]) {
    const vs = virtualServiceFor(snapshot, fqdn, proxy.namespace);
    if (!vs) continue;
    for (const host of destinationsOf(vs))
      if (host !== fqdn && byFqdn.has(host))
        because(host, `destination of VirtualService ${vs.namespace}/${vs.name} (${fqdn})`);
  }
  const services = visible.filter((s) => reasons.has(s.fqdn));
  const fqdns = services.map((s) => s.fqdn);
  return {
    all: false,
    services,
    reasons,
    ...base,
    automatic: named,
    // Every visible Service in scope: the same config as no scope, so the same shape.
    key: keyOf(services.length === visible.length, fqdns, base.outboundTrafficPolicy),
  };
}

function keyOf(all: boolean, fqdns: readonly string[], mode: string | undefined): string {
  const scope = all ? '*' : createHash('sha256').update(fqdns.join('\n')).digest('base64url').slice(0, 22);
  return `${scope}|${mode ?? ''}`;
}
