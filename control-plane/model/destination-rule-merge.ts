// The DestinationRule merge (envoy-translation.md §1.4, README "DestinationRules"): the rules for one host in
// one namespace are merged in precedence order: subsets appended, a later duplicate subset name dropped
// (warned), the top-level trafficPolicy of the first that has one (the others warned). Rules with a
// `workloadSelector` merge only with rules of the very same selector (Istio's mergeDestinationRule), so a
// namespace may hold a merged rule per selector besides the one without. Pure.
import type { Subset, TrafficPolicy } from '../../crds/types.js';
import { unionExportTo } from '../../crds/rules/visibility.js';
import type { AcceptedDestinationRule, MergedDestinationRule, StatusIssue } from './snapshot.js';

/** The merged rules of each host, one per namespace, sorted by namespace; `destinationRules` in precedence order. */
export function mergeDestinationRules(
  destinationRules: readonly AcceptedDestinationRule[],
  warn: (dr: AcceptedDestinationRule, issue: StatusIssue) => void,
): Map<string, MergedDestinationRule[]> {
  const groups = new Map<string, AcceptedDestinationRule[]>();
  for (const dr of destinationRules) {
    const k = `${dr.host}\0${dr.namespace}\0${selectorKey(dr)}`;
    let list = groups.get(k);
    if (!list) groups.set(k, (list = []));
    list.push(dr);
  }
  const byHost = new Map<string, MergedDestinationRule[]>();
  for (const members of groups.values()) {
    const merged = mergeGroup(members, (dr, path, message) => warn(dr, { severity: 'warning', path, message }));
    let list = byHost.get(merged.host);
    if (!list) byHost.set(merged.host, (list = []));
    list.push(merged);
  }
  // By namespace; within one, the rule without a selector first, then by selector (a stable order).
  const order = (m: MergedDestinationRule) => `${m.namespace}\0${m.selector ? `1${JSON.stringify(m.selector)}` : '0'}`;
  for (const list of byHost.values()) list.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  return byHost;
}

/** The workload selector's labels, keys sorted; undefined without a selector (an empty one selects every Pod). */
export function selectorOf(dr: AcceptedDestinationRule): Readonly<Record<string, string>> | undefined {
  const labels = dr.spec.workloadSelector?.matchLabels;
  if (dr.spec.workloadSelector === undefined) return undefined;
  return Object.fromEntries(Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function selectorKey(dr: AcceptedDestinationRule): string {
  const selector = selectorOf(dr);
  return selector ? JSON.stringify(selector) : '';
}

function mergeGroup(
  members: readonly AcceptedDestinationRule[],
  warn: (dr: AcceptedDestinationRule, path: string, message: string) => void,
): MergedDestinationRule {
  const first = members[0]!;
  const selector = selectorOf(first);
  const subsets: Subset[] = [];
  const subsetOwner = new Map<string, AcceptedDestinationRule>();
  let trafficPolicy: TrafficPolicy | undefined;
  let policyOwner: AcceptedDestinationRule | undefined;
  for (const dr of members) {
    if (dr.spec.trafficPolicy) {
      if (policyOwner) {
        warn(
          dr,
          'spec.trafficPolicy',
          `ignored: the older DestinationRule ${policyOwner.namespace}/${policyOwner.name} for host ${dr.host} sets the top-level trafficPolicy, and the first one wins`,
        );
      } else {
        trafficPolicy = dr.spec.trafficPolicy;
        policyOwner = dr;
      }
    }
    (dr.spec.subsets ?? []).forEach((subset, i) => {
      const owner = subsetOwner.get(subset.name);
      if (owner) {
        if (owner !== dr) {
          warn(
            dr,
            `spec.subsets[${i}]`,
            `subset "${subset.name}" is already defined by the older DestinationRule ${owner.namespace}/${owner.name} for host ${dr.host}; ignored`,
          );
        }
        return;
      }
      subsetOwner.set(subset.name, dr);
      subsets.push(subset);
    });
  }
  return {
    host: first.host,
    namespace: first.namespace,
    ...(trafficPolicy ? { trafficPolicy } : {}),
    subsets,
    exportTo: unionExportTo(members.map((m) => m.exportTo)),
    from: members.map((m) => ({ namespace: m.namespace, name: m.name })),
    ...(selector ? { selector } : {}),
  };
}
