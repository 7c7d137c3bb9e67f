// Locality load balancing (DestinationRule `loadBalancer.localityLbSetting`): what the ClusterLoadAssignment of
// one cluster looks like from one proxy's locality. Istio's algorithm (pilot/pkg/networking/core/loadbalancer,
// `ApplyLocalityLoadBalancer`), exactly:
//
// - The setting is the rule's, else the mesh default, which is on with no distribute and no failover (as
//   Istio's default mesh config); `enabled: false` turns it off for the rule.
// - `distribute`: the first entry whose `from` matches the proxy's locality gives each endpoint locality that
//   matches a `to` key the weight `ceil(own weight × to weight / total own weight of the localities that key
//   matches)`; localities no key matches get no traffic (left out). No entry matches: nothing changes.
// - Otherwise, only when the cluster has outlier detection (without it nothing ever marks an endpoint
//   unhealthy, so Envoy would never move down a priority): priorities.
//   - `failoverPriority` first: per endpoint, 0 when every listed label matches the proxy's (`key`) or the
//     given value (`key=value`), else N − i for the first label i that does not (N labels); a locality is split
//     into one group per priority, each weighted by its endpoints.
//   - then, without failoverPriority or when `failover` is also set, the locality of each group against the
//     proxy's: same region, zone and sub-zone 0, same region and zone 1, same region 2, else 3, and 4 for a
//     region that a `failover` entry for the proxy's region does not name; combined as previous × 5 + this.
//   - priorities are renumbered 0, 1, 2… without gaps (Envoy and grpc-js require it).
//
// The topology labels (`topology.kubernetes.io/region`, `…/zone`, `topology.istio.io/subzone`) and
// `kubernetes.io/hostname` read an endpoint's locality and Node, and the proxy's locality, as Istio does.
// The proxy's locality (proxyLocality), first found of: what it announces (`node.locality`); its Pod's
// `istio-locality` label (`region.zone.subzone`, from the labels it announces); the Kubernetes Node its
// metadata names (`NODE_NAME`, which the injector sets from the Pod's `spec.nodeName`), read from the Node's
// topology labels; the locality of the endpoints it serves (by its Pod, then by its IPs). Istio finds it from
// the Pod's Node the same way, so sidecars need not be told their zone, and a Pod that no Service selects, or
// whose endpoint is not published yet (not ready), still has one. Pure.
import type { LocalityLoadBalancerSetting } from '../../crds/types.js';
import { instancesAt, instancesOfPod } from '../model/lookup.js';
import { isEmptyLocality, labelledLocality, REGION_LABEL, SUBZONE_LABEL, ZONE_LABEL } from '../model/services.js';
import type { AcceptedDestinationRule, Locality, MeshEndpoint, MeshNode, MeshSnapshot } from '../model/snapshot.js';
import type { ProxyInfo } from '../xds/node.js';
import type { ClusterPolicy } from './cluster-policy.js';

export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

/** What locality load balancing does to one cluster; undefined when it changes nothing. */
export interface LocalityPolicy {
  readonly distribute?: LocalityLoadBalancerSetting['distribute'];
  readonly failover?: LocalityLoadBalancerSetting['failover'];
  readonly failoverPriority?: readonly string[];
}

/**
 * Istio's GetLocalityLbSetting plus its failover condition: the rule's setting (or the mesh default, on),
 * reduced to what acts on the cluster of `policy`. Distribute always acts; failover only with outlier detection.
 */
export function localityPolicy(policy: ClusterPolicy): LocalityPolicy | undefined {
  const setting = policy.loadBalancer?.localityLbSetting ?? {};
  if (setting.enabled === false) return undefined;
  if (setting.distribute && setting.distribute.length > 0) return { distribute: setting.distribute };
  if (!policy.outlierDetection) return undefined;
  return {
    ...(setting.failover && setting.failover.length > 0 ? { failover: setting.failover } : {}),
    ...(setting.failoverPriority && setting.failoverPriority.length > 0
      ? { failoverPriority: setting.failoverPriority }
      : {}),
  };
}

/** Whether Envoy should weight localities (`common_lb_config.locality_weighted_lb_config`), as Istio decides. */
export function localityWeighted(policy: ClusterPolicy): boolean {
  return localityPolicy(policy) !== undefined;
}

const EMPTY: Locality = { region: '', zone: '', subZone: '' };

/** The Node the proxy's `NODE_NAME` names, when the snapshot has it (with a topology label). */
export function proxyNode(snapshot: MeshSnapshot, proxy: ProxyInfo): MeshNode | undefined {
  return proxy.nodeName === undefined ? undefined : snapshot.index.nodes.get(proxy.nodeName);
}

/**
 * The proxy's locality: what it announces, else its `istio-locality` label, else its Kubernetes Node's, else
 * that of the first endpoint it serves (by Pod, then by address). See the top of this file.
 */
export function proxyLocality(snapshot: MeshSnapshot, proxy: ProxyInfo): Locality {
  if (!isEmptyLocality(proxy.locality)) return proxy.locality;
  const labelled = labelledLocality(proxy.labels);
  if (labelled) return labelled;
  const node = proxyNode(snapshot, proxy);
  if (node) return node.locality;
  const dot = proxy.id.lastIndexOf('.');
  const byPod = dot > 0 ? instancesOfPod(snapshot, proxy.id.slice(dot + 1), proxy.id.slice(0, dot)) : [];
  const instance = byPod[0] ?? proxy.instanceIps.map((ip) => instancesAt(snapshot, ip)[0]).find((i) => i);
  return instance?.endpoint.locality ?? EMPTY;
}

/** The proxy's labels with the topology labels of its locality (what failoverPriority compares). */
export function proxyTopologyLabels(
  labels: Readonly<Record<string, string>>,
  locality: Locality,
): Readonly<Record<string, string>> {
  return {
    ...labels,
    ...(locality.region ? { [REGION_LABEL]: locality.region } : {}),
    ...(locality.zone ? { [ZONE_LABEL]: locality.zone } : {}),
    ...(locality.subZone ? { [SUBZONE_LABEL]: locality.subZone } : {}),
  };
}

/** The value an endpoint has for a label, the topology labels read from its locality and Node. */
function endpointLabel(e: MeshEndpoint, key: string): string | undefined {
  switch (key) {
    case REGION_LABEL:
      return e.locality.region || e.labels[key];
    case ZONE_LABEL:
      return e.locality.zone || e.labels[key];
    case SUBZONE_LABEL:
      return e.locality.subZone || e.labels[key];
    case HOSTNAME_LABEL:
      return e.nodeName ?? e.labels[key];
    default:
      return e.labels[key];
  }
}

/** Istio's LocalityMatch: `region/zone/subzone` segments equal or `*`; a missing zone or sub-zone matches any. */
export function localityMatches(locality: Locality, pattern: string): boolean {
  const [region = '', zone = '', subZone = ''] = pattern.split('/');
  const seg = (rule: string, value: string) => rule === '*' || rule === '' || rule === value;
  return (region === '*' || region === locality.region) && seg(zone, locality.zone) && seg(subZone, locality.subZone);
}

/** Istio's LbPriority: how far an endpoint locality is from the proxy's, 0 (same sub-zone) to 3 (other region). */
function lbPriority(proxy: Locality, endpoint: Locality): number {
  if (proxy.region !== endpoint.region) return 3;
  if (proxy.zone !== endpoint.zone) return 2;
  return proxy.subZone !== endpoint.subZone ? 1 : 0;
}

/** One LocalityLbEndpoints to be: its locality, members, priority and `load_balancing_weight`. */
export interface LocalityGroup {
  readonly locality: Locality;
  readonly members: readonly MeshEndpoint[];
  readonly priority: number;
  readonly weight: number;
}

/**
 * The groups (one per locality, weighted by endpoint count, priority 0) as the proxy at `proxy` with
 * `labels` (topology labels included, proxyTopologyLabels) gets them under `policy`. Keeps the order of
 * `groups` (a locality split by failoverPriority: its groups in priority order).
 */
export function applyLocalityPolicy(
  groups: readonly LocalityGroup[],
  policy: LocalityPolicy | undefined,
  proxy: Locality,
  labels: Readonly<Record<string, string>>,
): LocalityGroup[] {
  if (!policy) return [...groups];
  if (policy.distribute) return distribute(groups, policy.distribute, proxy);
  let out = [...groups];
  if (policy.failoverPriority) out = failoverPriorities(out, policy.failoverPriority, labels);
  if (!policy.failoverPriority || policy.failover) out = localityFailover(out, policy.failover ?? [], proxy);
  return out;
}

function distribute(
  groups: readonly LocalityGroup[],
  rules: NonNullable<LocalityPolicy['distribute']>,
  proxy: Locality,
): LocalityGroup[] {
  const rule = rules.find((r) => localityMatches(proxy, r.from));
  if (!rule) return [...groups];
  const weights = new Map<number, number>();
  // The schema refuses overlapping keys, so the order of keys does not matter; sorted for determinism.
  for (const [pattern, weight] of Object.entries(rule.to).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const matched = groups
      .map((g, i) => [g, i] as const)
      .filter(([g, i]) => !weights.has(i) && localityMatches(g.locality, pattern));
    const total = matched.reduce((sum, [g]) => sum + g.weight, 0);
    for (const [g, i] of matched) weights.set(i, Math.ceil((g.weight * weight) / total));
  }
  return groups.flatMap((g, i) => {
    const weight = weights.get(i);
    return weight === undefined || weight === 0 ? [] : [{ ...g, weight }];
  });
}

function failoverPriorities(
  groups: readonly LocalityGroup[],
  priorities: readonly string[],
  proxyLabels: Readonly<Record<string, string>>,
): LocalityGroup[] {
  if (Object.keys(proxyLabels).length === 0) return [...groups];
  const parsed = priorities.map((p) => {
    const eq = p.indexOf('=');
    return eq >= 0 ? { key: p.slice(0, eq), value: p.slice(eq + 1) } : { key: p, value: proxyLabels[p] };
  });
  const lowest = parsed.length;
  const split = groups.flatMap((g) => {
    const byPriority = new Map<number, MeshEndpoint[]>();
    for (const e of g.members) {
      const miss = parsed.findIndex(({ key, value }) => value !== endpointLabel(e, key));
      const priority = miss < 0 ? 0 : lowest - miss;
      let list = byPriority.get(priority);
      if (!list) byPriority.set(priority, (list = []));
      list.push(e);
    }
    return [...byPriority.entries()]
      .sort(([a], [b]) => a - b)
      .map(([priority, members]) => ({ locality: g.locality, members, priority, weight: members.length }));
  });
  return renumber(split);
}

function localityFailover(
  groups: readonly LocalityGroup[],
  failover: NonNullable<LocalityPolicy['failover']>,
  proxy: Locality,
): LocalityGroup[] {
  const rule = failover.find((f) => f.from === proxy.region);
  return renumber(
    groups.map((g) => {
      let priority = lbPriority(proxy, g.locality);
      if (priority === 3 && rule && g.locality.region !== rule.to) priority = 4;
      return { ...g, priority: g.priority * 5 + priority };
    }),
  );
}

/** Priorities 0, 1, 2… in the order of the values given, without gaps. */
function renumber(groups: readonly LocalityGroup[]): LocalityGroup[] {
  const order = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  const index = new Map(order.map((p, i) => [p, i]));
  return groups.map((g) => ({ ...g, priority: index.get(g.priority)! }));
}

type Relevance = { readonly any: boolean; readonly priorityKeys: readonly string[] };

const relevantMemo = new WeakMap<readonly object[], Relevance>();
const ruleRelevance = new WeakMap<AcceptedDestinationRule, Relevance>();
const IRRELEVANT: Relevance = { any: false, priorityKeys: [] };

/**
 * Whether any DestinationRule can make an assignment depend on the proxy's locality (a policy block with
 * outlier detection, or a localityLbSetting), and the label keys its failoverPriority lists name. Memoized
 * per snapshot list, and per rule: every change of the routing makes a new list of the same rules, and the
 * first proxy to connect after it looked at each of 1,000 rules' policies again (2–4 ms, code that runs too
 * rarely to be compiled).
 */
function localityRelevance(snapshot: MeshSnapshot): Relevance {
  let found = relevantMemo.get(snapshot.destinationRules);
  if (!found) {
    const keys = new Set<string>();
    let any = false;
    for (const dr of snapshot.destinationRules) {
      const own = relevanceOf(dr);
      if (own.any) any = true;
      for (const k of own.priorityKeys) keys.add(k);
    }
    relevantMemo.set(snapshot.destinationRules, (found = { any, priorityKeys: [...keys].sort() }));
  }
  return found;
}

/** What one DestinationRule contributes to localityRelevance. */
function relevanceOf(dr: AcceptedDestinationRule): Relevance {
  let found = ruleRelevance.get(dr);
  if (!found) {
    const keys = new Set<string>();
    let any = false;
    const policies = [dr.spec.trafficPolicy, ...(dr.spec.subsets ?? []).map((s) => s.trafficPolicy)];
    for (const block of policies.flatMap((p) => (p ? [p, ...(p.portLevelSettings ?? [])] : []))) {
      if (block.outlierDetection || block.loadBalancer?.localityLbSetting) any = true;
      for (const p of block.loadBalancer?.localityLbSetting?.failoverPriority ?? []) keys.add(p.split('=')[0]!);
    }
    found = any || keys.size > 0 ? { any, priorityKeys: [...keys] } : IRRELEVANT;
    ruleRelevance.set(dr, found);
  }
  return found;
}

/** What EDS reads of the proxy for locality load balancing (proxy-shape.ts `endpoints`); '' when nothing. */
export function localityShape(snapshot: MeshSnapshot, proxy: ProxyInfo): string {
  const { any, priorityKeys } = localityRelevance(snapshot);
  if (!any) return '';
  const locality = proxyLocality(snapshot, proxy);
  const labels = proxyTopologyLabels(proxy.labels, locality);
  return JSON.stringify([
    locality.region,
    locality.zone,
    locality.subZone,
    priorityKeys.map((k) => labels[k] ?? null),
    Object.keys(labels).length === 0,
  ]);
}
