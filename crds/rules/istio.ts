// Istio's validation rules that a schema cannot express (pkg/config/validation of istio/istio:
// ValidateVirtualService, validateGatewayNames, ValidateWildcardDomain, ValidateTLS), as the validator's
// third layer runs them (crds/validator.ts). Each issue names the field; the README of crds/ lists the
// differences from Istio that remain, and why. Pure; imports nothing outside crds/rules/.
import { isIP } from 'node:net';
import { qualifyHost } from './hosts.js';

export interface IstioIssue {
  readonly path: string;
  readonly message: string;
  readonly severity: 'error' | 'warning';
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Istio's IsDNS1123Label: letters (any case), digits and -, alphanumeric at both ends, at most 63. */
const DNS1123_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

/**
 * Istio's host.Name.Matches: two hosts overlap when they are equal, or when one is a wildcard (`*…`) whose
 * suffix ends the other (`*.com` and `*.foo.com`; `*foo.com` and `a.foo.com`; `*` and anything).
 */
export function hostsOverlap(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw && bw) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/**
 * Istio's ValidateDNS1123Labels: the last label of a name with several labels must not be all digits (so
 * an IP address is not a host name). A single label (`reviews`) may be.
 */
export function hasNumericTopLevelDomain(host: string): boolean {
  const labels = host.replace(/\.$/, '').split('.');
  return labels.length > 1 && /^[0-9]+$/.test(labels[labels.length - 1] ?? '');
}

/** Istio's validateGatewayNames for one entry: `mesh`, `<name>` (a DNS name), or `<namespace>/<name>`. */
export function gatewayNameIssue(name: string): { error?: string; warning?: string } {
  const slash = name.indexOf('/');
  if (slash < 0) {
    if (name.length > 255) return { error: 'must be at most 255 characters' };
    const labels = name.replace(/\.$/, '').split('.');
    if (name === '' || !labels.every((l) => l.length <= 63 && DNS1123_LABEL.test(l)))
      return { error: 'must be mesh, <name> or <namespace>/<name> (DNS labels)' };
    if (hasNumericTopLevelDomain(name)) return { error: 'must not end in an all-numeric label' };
    if (labels.length > 1)
      return {
        warning: `uses the legacy <name>.<namespace> form; prefer <namespace>/<name>: ${labels[1]}/${labels[0]}`,
      };
    return {};
  }
  const ns = name.slice(0, slash);
  const gw = name.slice(slash + 1);
  if (ns === '' || gw === '') return { error: 'namespace and gateway name must not be empty (<namespace>/<name>)' };
  if (ns.length > 63 || !DNS1123_LABEL.test(ns)) return { error: `namespace ${ns} must be a DNS label` };
  if (gw.length > 63 || !DNS1123_LABEL.test(gw)) return { error: `gateway name ${gw} must be a DNS label` };
  return {};
}

/** Whether the VirtualService is bound to the mesh (Istio: no gateways, or `mesh` among them). */
export function appliesToMesh(spec: Json): boolean {
  const gateways = arr(spec.gateways);
  return gateways.length === 0 || gateways.includes('mesh');
}

function virtualServiceIssues(spec: Json, namespace: string): IstioIssue[] {
  const out: IstioIssue[] = [];
  const hosts = arr(spec.hosts);
  // Hosts: Istio refuses an all-numeric last label unless the host is an IP address.
  hosts.forEach((h, i) => {
    if (typeof h === 'string' && isIP(h) === 0 && !h.startsWith('*') && hasNumericTopLevelDomain(h))
      out.push({ path: `spec.hosts[${i}]`, message: 'must not end in an all-numeric label', severity: 'error' });
  });
  // Overlapping hosts (Istio: "duplicate hosts in virtual service"), compared as written, case-insensitively.
  // Equal strings are the schema's "must not contain duplicates"; equal FQDNs the validator's own check.
  for (let j = 0; j < hosts.length; j++) {
    const b = hosts[j];
    if (typeof b !== 'string') continue;
    for (let i = 0; i < j; i++) {
      const a = hosts[i];
      if (typeof a !== 'string' || a === b) continue;
      if (qualifyHost(a, namespace) === qualifyHost(b, namespace)) continue;
      if (hostsOverlap(a.toLowerCase(), b.toLowerCase())) {
        out.push({
          path: `spec.hosts[${j}]`,
          message: `overlaps spec.hosts[${i}] (${a}): the hosts of one VirtualService must not overlap`,
          severity: 'error',
        });
        break;
      }
    }
  }
  arr(spec.gateways).forEach((g, i) => {
    if (typeof g !== 'string' || g === 'mesh') return;
    const { error, warning } = gatewayNameIssue(g);
    if (error) out.push({ path: `spec.gateways[${i}]`, message: error, severity: 'error' });
    if (warning) out.push({ path: `spec.gateways[${i}]`, message: warning, severity: 'warning' });
  });
  if (!appliesToMesh(spec)) {
    hosts.forEach((h, i) => {
      if (h === '*')
        out.push({
          path: `spec.hosts[${i}]`,
          message:
            'matches no Service, so these routes apply to no traffic (Istio uses * for gateways; Trellis has none)',
          severity: 'warning',
        });
    });
  }
  const destinationHost = (path: string, d: unknown) => {
    const host = isObj(d) ? d.host : undefined;
    if (typeof host === 'string' && hasNumericTopLevelDomain(host))
      out.push({
        path: `${path}.host`,
        message: 'must be a host name, not an IP address (Istio: a destination is a DNS name)',
        severity: 'error',
      });
  };
  arr(spec.http).forEach((raw, i) => {
    if (!isObj(raw)) return;
    const p = `spec.http[${i}]`;
    arr(raw.route).forEach((r, j) => destinationHost(`${p}.route[${j}].destination`, isObj(r) ? r.destination : r));
    if (raw.mirror !== undefined) destinationHost(`${p}.mirror`, raw.mirror);
    arr(raw.mirrors).forEach((m, j) => destinationHost(`${p}.mirrors[${j}].destination`, isObj(m) ? m.destination : m));
    arr(raw.match).forEach((m, j) => {
      if (!isObj(m)) return;
      // Header names are case-insensitive: translation lower-cases them, so two spellings of one name clash.
      for (const field of ['headers', 'withoutHeaders'] as const) {
        const seen = new Map<string, string>();
        for (const name of Object.keys(isObj(m[field]) ? (m[field] as Json) : {})) {
          const lower = name.toLowerCase();
          const first = seen.get(lower);
          if (first !== undefined)
            out.push({
              path: `spec.http[${i}].match[${j}].${field}[${name}]`,
              message: `names the same header as ${first} (header names are case-insensitive)`,
              severity: 'error',
            });
          else seen.set(lower, name);
        }
      }
    });
  });
  for (const kind of ['tcp', 'tls'] as const)
    arr(spec[kind]).forEach((raw, i) => {
      if (!isObj(raw)) return;
      arr(raw.route).forEach((r, j) =>
        destinationHost(`spec.${kind}[${i}].route[${j}].destination`, isObj(r) ? r.destination : r),
      );
    });
  return out;
}

function trafficPolicyIssues(path: string, policy: unknown, out: IstioIssue[]): void {
  if (!isObj(policy)) return;
  const blocks: [string, unknown][] = [[path, policy]];
  arr(policy.portLevelSettings).forEach((pl, i) => blocks.push([`${path}.portLevelSettings[${i}]`, pl]));
  for (const [p, block] of blocks) {
    if (!isObj(block)) continue;
    const hash = isObj(block.loadBalancer) ? block.loadBalancer.consistentHash : undefined;
    if (isObj(hash) && typeof hash.minimumRingSize === 'number' && hash.minimumRingSize !== 0)
      out.push({
        path: `${p}.loadBalancer.consistentHash.minimumRingSize`,
        message: 'is deprecated (Istio): write ringHash.minimumRingSize',
        severity: 'warning',
      });
  }
}

function destinationRuleIssues(spec: Json): IstioIssue[] {
  const out: IstioIssue[] = [];
  const host = spec.host;
  if (typeof host === 'string' && hasNumericTopLevelDomain(host))
    out.push({
      path: 'spec.host',
      message:
        isIP(host.replace(/\.$/, '')) !== 0
          ? 'must be a host name, not an IP address (Istio)'
          : 'must not end in an all-numeric label',
      severity: 'error',
    });
  trafficPolicyIssues('spec.trafficPolicy', spec.trafficPolicy, out);
  arr(spec.subsets).forEach((s, i) =>
    trafficPolicyIssues(`spec.subsets[${i}].trafficPolicy`, isObj(s) ? s.trafficPolicy : undefined, out),
  );
  return out;
}

/** The issues of Istio's rules beyond the schema, for a VirtualService or DestinationRule spec. */
export function istioIssues(kind: string, spec: Json, namespace: string): IstioIssue[] {
  if (kind === 'VirtualService') return virtualServiceIssues(spec, namespace);
  if (kind === 'DestinationRule') return destinationRuleIssues(spec);
  return [];
}
