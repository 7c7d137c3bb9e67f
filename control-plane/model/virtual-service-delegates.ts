// VirtualService delegation (Istio's `HTTPRoute.delegate`; istio/istio pilot/pkg/config/kube/virtualservice,
// mergeHTTPRoutes): a root VirtualService (one with hosts) hands the requests an `http[]` route matches to
// the routes of a delegate (a VirtualService without hosts). Each delegate route is merged under the root
// route: its matches must lie within one of the root's (else it is left out, as Istio does), fields it does
// not set come from the root route. The root's accepted spec then carries the merged routes, so lookups and
// the translator see an ordinary VirtualService. Problems (a delegate missing, invalid, with hosts, not
// exported to the root's namespace, a route conflicting with the root's match) are warnings in the root's
// status; that route is left out. One level only (the validator refuses `delegate` in a delegate), so a
// cycle can only be a VirtualService naming itself, which has hosts. Pure.
import type { HTTPMatchRequest, HTTPRoute, StringMatch } from '../../crds/types.js';
import { objectKey } from './objects.js';
import type { AcceptedVirtualService, StatusIssue } from './snapshot.js';
import { isVisibleTo } from './visibility.js';

export interface DelegateVerdicts {
  /** A warning in the status of a root (or of a delegate no root uses). */
  warn(vs: AcceptedVirtualService, issue: StatusIssue): void;
  /** True when a VirtualService by that name exists in the source but has no accepted version. */
  exists(namespace: string, name: string): boolean;
}

// ---------------------------------------------------------------------------------------------------
// Istio's match merge (hasConflict, stringMatchConflict, mergeHTTPMatchRequest)

const set = (s: string | undefined): s is string => s !== undefined && s !== '';

/** True when the leaf's string match is not within the root's (Istio's stringMatchConflict). */
function stringMatchConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (root === undefined || leaf === undefined) return false;
  if (set(root.regex) && (set(leaf.regex) || set(leaf.prefix) || set(leaf.exact))) return true;
  if (set(leaf.regex) && (set(root.regex) || set(root.prefix) || set(root.exact))) return true;
  if (set(root.exact)) return set(leaf.prefix) || leaf.exact !== root.exact;
  if (set(root.prefix)) {
    if (set(leaf.prefix)) return !leaf.prefix.startsWith(root.prefix);
    if (set(leaf.exact)) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

function mapConflict(
  root: Readonly<Record<string, StringMatch>> | undefined,
  leaf: Readonly<Record<string, StringMatch>> | undefined,
): boolean {
  return Object.entries(leaf ?? {}).some(([k, v]) => stringMatchConflict(root?.[k], v));
}

/** Istio's hasConflict: the leaf match asks for something outside the root match. */
function hasConflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  for (const f of ['uri', 'scheme', 'method', 'authority'] as const)
    if (stringMatchConflict(root[f], leaf[f])) return true;
  if (mapConflict(root.headers, leaf.headers)) return true;
  if (mapConflict(root.withoutHeaders, leaf.withoutHeaders)) return true;
  if (mapConflict(root.queryParams, leaf.queryParams)) return true;
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return true;
  if ((root.port ?? 0) > 0 && (leaf.port ?? 0) > 0 && root.port !== leaf.port) return true;
  if (set(root.sourceNamespace) && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {}))
    if (root.sourceLabels?.[k] !== undefined && root.sourceLabels[k] !== v) return true;
  return false;
}

function joinNames(root: string | undefined, leaf: string | undefined): string | undefined {
  if (!set(leaf)) return set(root) ? root : undefined;
  return set(root) ? `${root}-${leaf}` : leaf;
}

function mergeMaps<T>(
  root: Readonly<Record<string, T>> | undefined,
  leaf: Readonly<Record<string, T>> | undefined,
): Record<string, T> | undefined {
  if (Object.keys(root ?? {}).length === 0 && Object.keys(leaf ?? {}).length === 0) return undefined;
  return { ...root, ...leaf };
}

/** Istio's mergeHTTPMatchRequest: the leaf's conditions, with the root's where the leaf sets none. */
function mergeMatch(root: HTTPMatchRequest, leaf: HTTPMatchRequest): HTTPMatchRequest {
  const out: HTTPMatchRequest = structuredClone(leaf);
  const name = joinNames(root.name, leaf.name);
  if (name !== undefined) out.name = name;
  else delete out.name;
  for (const f of ['uri', 'scheme', 'method', 'authority'] as const)
    if (out[f] === undefined && root[f] !== undefined) out[f] = structuredClone(root[f]);
  for (const f of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    const merged = mergeMaps(root[f], leaf[f]);
    if (merged !== undefined) out[f] = structuredClone(merged);
  }
  const labels = mergeMaps(root.sourceLabels, leaf.sourceLabels);
  if (labels !== undefined) out.sourceLabels = { ...labels };
  if ((out.port ?? 0) === 0 && root.port !== undefined) out.port = root.port;
  if (!set(out.sourceNamespace) && root.sourceNamespace !== undefined) out.sourceNamespace = root.sourceNamespace;
  if (out.ignoreUriCase === undefined && root.ignoreUriCase !== undefined) out.ignoreUriCase = root.ignoreUriCase;
  return out;
}

/**
 * Istio's mergeHTTPMatchRequests: every leaf match must fit within at least one root match (it is merged
 * with each it fits); null when one fits none (a conflict: the route is left out).
 */
function mergeMatches(
  root: readonly HTTPMatchRequest[] | undefined,
  leaf: readonly HTTPMatchRequest[] | undefined,
): HTTPMatchRequest[] | undefined | null {
  if (!root || root.length === 0) return leaf ? structuredClone([...leaf]) : undefined;
  if (!leaf || leaf.length === 0) return structuredClone([...root]);
  const out: HTTPMatchRequest[] = [];
  for (const sub of leaf) {
    const fits = root.filter((r) => !hasConflict(r, sub));
    if (fits.length === 0) return null;
    for (const r of fits) out.push(mergeMatch(r, sub));
  }
  return out.length === 0 ? null : out;
}

/** The fields a delegate route takes from its root route when it does not set them (Istio's mergeHTTPRoute). */
const INHERITED = [
  'rewrite',
  'directResponse',
  'timeout',
  'retries',
  'fault',
  'mirror',
  'mirrorPercentage',
  'corsPolicy',
  'mirrors',
  'headers',
] as const;

/** One delegate route under its root route, or null when its match conflicts with the root's. */
export function mergeHTTPRoute(root: HTTPRoute, leaf: HTTPRoute): HTTPRoute | null {
  const match = mergeMatches(root.match, leaf.match);
  if (match === null) return null;
  const out: HTTPRoute = structuredClone(leaf);
  if (match !== undefined) out.match = match;
  const name = joinNames(root.name, leaf.name);
  if (name !== undefined) out.name = name;
  for (const f of INHERITED) {
    if (out[f] === undefined && root[f] !== undefined) (out as Record<string, unknown>)[f] = structuredClone(root[f]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Resolving the delegates of every root

interface Merged {
  /** The delegates the merge read, by http index (undefined: that route did not resolve). */
  readonly inputs: readonly (AcceptedVirtualService | undefined)[];
  readonly vs: AcceptedVirtualService;
  readonly conflicts: readonly StatusIssue[];
}

// One merged VirtualService per root object and set of delegate objects: an unchanged root with unchanged
// delegates is the very same object in the next snapshot (its content key is memoized, model/parts.ts).
const mergedOf = new WeakMap<AcceptedVirtualService, Merged>();
const rootOf = new WeakMap<AcceptedVirtualService, AcceptedVirtualService>();

/** The root as accepted (with its `delegate` routes) behind a merged VirtualService; itself otherwise. */
export function unmergedVirtualService(vs: AcceptedVirtualService): AcceptedVirtualService {
  return rootOf.get(vs) ?? vs;
}

const sameInputs = (a: readonly unknown[], b: readonly unknown[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

function merge(root: AcceptedVirtualService, inputs: readonly (AcceptedVirtualService | undefined)[]): Merged {
  const hit = mergedOf.get(root);
  if (hit && sameInputs(hit.inputs, inputs)) return hit;
  const http: HTTPRoute[] = [];
  const conflicts: StatusIssue[] = [];
  (root.spec.http ?? []).forEach((route, i) => {
    if (!route.delegate) return void http.push(route);
    const delegate = inputs[i];
    if (!delegate) return;
    (delegate.spec.http ?? []).forEach((leaf, j) => {
      const merged = mergeHTTPRoute(route, leaf);
      if (merged) http.push(merged);
      else
        conflicts.push({
          severity: 'warning',
          path: `spec.http[${i}].delegate`,
          message: `http[${j}] of delegate VirtualService ${delegate.namespace}/${delegate.name} matches outside this route's match (Istio's rule: a delegate's match must lie within the root's); that route is left out`,
        });
    });
  });
  const vs: AcceptedVirtualService = { ...root, spec: { ...root.spec, http } };
  rootOf.set(vs, root);
  const out = { inputs, vs, conflicts };
  mergedOf.set(root, out);
  return out;
}

/**
 * The VirtualServices with every root's delegations merged (same order; delegates stay in the list with no
 * hosts, so nothing routes them directly). Problems go to `verdicts`.
 */
export function resolveDelegates(
  virtualServices: readonly AcceptedVirtualService[],
  verdicts: DelegateVerdicts,
): AcceptedVirtualService[] {
  const byKey = new Map(virtualServices.map((vs) => [objectKey('VirtualService', vs.namespace, vs.name), vs]));
  const used = new Set<string>();
  const out = virtualServices.map((root) => {
    const routes = root.spec.http ?? [];
    if (root.hosts.length === 0 || !routes.some((r) => r.delegate)) return root;
    const inputs = routes.map((route, i): AcceptedVirtualService | undefined => {
      if (!route.delegate) return undefined;
      const namespace = route.delegate.namespace ?? root.namespace;
      const { name } = route.delegate;
      const key = objectKey('VirtualService', namespace, name);
      used.add(key);
      const delegate = byKey.get(key);
      const warn = (message: string) =>
        verdicts.warn(root, {
          severity: 'warning',
          path: `spec.http[${i}].delegate`,
          message: `${message}; this route is left out`,
        });
      const ref = `VirtualService ${namespace}/${name}`;
      if (delegate === root) warn(`names this VirtualService itself (a delegation cycle)`);
      else if (!delegate)
        warn(verdicts.exists(namespace, name) ? `${ref} is invalid and has no accepted version` : `${ref} not found`);
      else if (delegate.hosts.length > 0)
        warn(`${ref} has hosts, so it is not a delegate (a delegate is a VirtualService without hosts)`);
      else if (!isVisibleTo(delegate.exportTo, root.namespace))
        warn(`${ref} is not exported to namespace ${root.namespace}`);
      else return delegate;
      return undefined;
    });
    const merged = merge(root, inputs);
    for (const c of merged.conflicts) verdicts.warn(root, c);
    return merged.vs;
  });
  for (const vs of virtualServices) {
    if (vs.hosts.length === 0 && !used.has(objectKey('VirtualService', vs.namespace, vs.name)))
      verdicts.warn(vs, {
        severity: 'warning',
        path: '',
        message: 'has no hosts and no root VirtualService delegates to it, so it has no effect',
      });
  }
  return out;
}
