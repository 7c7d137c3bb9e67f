// PeerAuthentication: the inbound mutual-TLS mode of a workload (Istio's security/v1 PeerAuthentication).
// Pure. routing.ts validates and accepts the objects (with the VirtualServices and DestinationRules, so the
// last accepted version and the status work alike); this file reads what was accepted:
//
// - `peerFields`: the parts of an accepted spec the model keeps (selector, mode, port-level modes);
// - `peerAuthenticationConflicts`: several policies at one level (README "PeerAuthentication");
// - `indexPeerAuthentications`: the policies of each namespace by level, for the lookups below;
// - `workloadMtls` / `portMtls`: the effective inbound mode of a workload (its namespace and labels) and of
//   one of its ports — what its sidecar or proxyless gRPC server listeners enforce;
// - `destinationMtls`: the mode a client can rely on for a Service port (every endpoint's workload).
//
// Precedence, as Istio's (pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication): the
// oldest policy whose selector matches the workload's labels in its namespace > the oldest policy of the
// namespace without a selector > the oldest policy without a selector in the root namespace > the mesh
// config's `mtlsMode` (the `fallback` argument: the model does not know the mesh config). UNSET at one
// level takes the mode of the level above; a port's UNSET takes the workload's mode.
import type { PeerAuthenticationSpec, PeerMtlsMode } from '../../crds/types.js';
import type {
  AcceptedPeerAuthentication,
  MeshServicePort,
  MeshService,
  MeshSnapshot,
  NamespacePeerAuthentications,
  ObjectRef,
  ResolvedMtlsMode,
} from './snapshot.js';

/** A Pod as the conflict check sees it. */
export interface PodLabels {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** What the model keeps of a valid spec. */
export function peerFields(
  spec: PeerAuthenticationSpec,
): Pick<AcceptedPeerAuthentication, 'selector' | 'mode' | 'portLevel'> {
  const labels = spec.selector?.matchLabels ?? {};
  const keys = Object.keys(labels).sort();
  const portLevel = Object.entries(spec.portLevelMtls ?? {})
    .map(([port, m]) => ({ port: Number(port), mode: m.mode ?? 'UNSET' }))
    .sort((a, b) => a.port - b.port);
  return {
    ...(keys.length > 0 ? { selector: Object.fromEntries(keys.map((k) => [k, labels[k]!])) } : {}),
    mode: spec.mtls?.mode ?? 'UNSET',
    portLevel,
  };
}

/** The selector's labels are all among `labels`. */
export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

function refText(r: ObjectRef): string {
  return `${r.namespace}/${r.name}`;
}

function sameSelector(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/** A younger policy that an older one overrides, in part (a warning) or entirely (conflicted). */
export interface PeerConflict {
  readonly policy: ObjectRef;
  readonly path: string;
  readonly message: string;
  /** The policy has no effect at all: Accepted=False, reason Conflicted. */
  readonly conflicted: boolean;
}

/**
 * Several policies at one level; `accepted` is in precedence order (oldest first). Without a selector:
 * the oldest of the namespace applies, the others have no effect (conflicted). With a selector: a policy
 * with the same labels as an older one has no effect (conflicted); one that selects some Pod an older one
 * also selects is warned (the older one wins for that Pod), with the Pods the model knows.
 */
export function peerAuthenticationConflicts(
  accepted: readonly AcceptedPeerAuthentication[],
  pods: readonly PodLabels[],
  rootNamespace: string,
): PeerConflict[] {
  const out: PeerConflict[] = [];
  const byNamespace = new Map<string, AcceptedPeerAuthentication[]>();
  for (const pa of accepted) {
    let list = byNamespace.get(pa.namespace);
    if (!list) byNamespace.set(pa.namespace, (list = []));
    list.push(pa);
  }
  const podsByNamespace = new Map<string, PodLabels[]>();
  for (const pod of pods) {
    let list = podsByNamespace.get(pod.namespace);
    if (!list) podsByNamespace.set(pod.namespace, (list = []));
    list.push(pod);
  }
  for (const [namespace, list] of byNamespace) {
    const level = namespace === rootNamespace ? 'the mesh' : `namespace ${namespace}`;
    const namespaceWide = list.filter((pa) => !pa.selector);
    for (const pa of namespaceWide.slice(1)) {
      out.push({
        policy: pa,
        path: '',
        message: `conflicts with the older PeerAuthentication ${refText(namespaceWide[0]!)}, which is the policy of ${level} (only the oldest without a selector applies)`,
        conflicted: true,
      });
    }
    const withSelector = list.filter((pa) => pa.selector);
    const namespacePods = [...(podsByNamespace.get(namespace) ?? [])].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    withSelector.forEach((pa, i) => {
      const older = withSelector.slice(0, i);
      const twin = older.find((o) => sameSelector(o.selector!, pa.selector!));
      if (twin) {
        out.push({
          policy: pa,
          path: 'spec.selector',
          message: `selects the same workloads as the older PeerAuthentication ${refText(twin)}, which wins`,
          conflicted: true,
        });
        return;
      }
      // For each Pod it selects, the oldest policy selecting it wins.
      const lost = new Map<AcceptedPeerAuthentication, string[]>();
      for (const pod of namespacePods) {
        if (!selects(pa.selector!, pod.labels)) continue;
        const winner = older.find((o) => selects(o.selector!, pod.labels));
        if (!winner) continue;
        let names = lost.get(winner);
        if (!names) lost.set(winner, (names = []));
        names.push(pod.name);
      }
      for (const [winner, names] of lost) {
        const more = names.length > 1 ? ` (and ${names.length - 1} more)` : '';
        out.push({
          policy: pa,
          path: 'spec.selector',
          message: `Pod ${namespace}/${names[0]!}${more} is also selected by the older PeerAuthentication ${refText(winner)}, which wins there`,
          conflicted: false,
        });
      }
    });
  }
  return out;
}

/** The policies of each namespace by level; `accepted` in precedence order. */
export function indexPeerAuthentications(
  accepted: readonly AcceptedPeerAuthentication[],
): Map<string, NamespacePeerAuthentications> {
  const out = new Map<
    string,
    { namespacePolicy?: AcceptedPeerAuthentication; workloadPolicies: AcceptedPeerAuthentication[] }
  >();
  for (const pa of accepted) {
    let entry = out.get(pa.namespace);
    if (!entry) out.set(pa.namespace, (entry = { workloadPolicies: [] }));
    if (pa.selector) entry.workloadPolicies.push(pa);
    else if (!entry.namespacePolicy) entry.namespacePolicy = pa;
  }
  return out;
}

/** The effective inbound mutual TLS of one workload. */
export interface WorkloadMtls {
  /** The workload's mode (for ports without a port-level entry). */
  readonly mode: ResolvedMtlsMode;
  /** Port-level modes of the workload policy, resolved, by container port. */
  readonly ports: ReadonlyMap<number, ResolvedMtlsMode>;
  /** The policies that decided, most specific first; [] when the mesh config decided alone. */
  readonly from: readonly ObjectRef[];
}

function resolve(mode: PeerMtlsMode | undefined, inherited: ResolvedMtlsMode): ResolvedMtlsMode {
  return mode === undefined || mode === 'UNSET' ? inherited : mode;
}

// Results per snapshot (frozen, so they never go stale), by fallback, namespace and labels.
const workloadMemo = new WeakMap<MeshSnapshot, Map<string, WorkloadMtls>>();

/**
 * The effective inbound mode of a workload in `namespace` with `labels` (Pod labels; a proxy's `LABELS`).
 * `fallback` is the mesh config's `mtlsMode`.
 */
export function workloadMtls(
  snapshot: MeshSnapshot,
  namespace: string,
  labels: Readonly<Record<string, string>>,
  fallback: ResolvedMtlsMode,
): WorkloadMtls {
  let memo = workloadMemo.get(snapshot);
  if (!memo) workloadMemo.set(snapshot, (memo = new Map()));
  const key = JSON.stringify([
    fallback,
    namespace,
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  ]);
  let result = memo.get(key);
  if (!result) {
    result = computeWorkloadMtls(snapshot, namespace, labels, fallback);
    memo.set(key, result);
  }
  return result;
}

function computeWorkloadMtls(
  snapshot: MeshSnapshot,
  namespace: string,
  labels: Readonly<Record<string, string>>,
  fallback: ResolvedMtlsMode,
): WorkloadMtls {
  const from: ObjectRef[] = [];
  const meshPolicy = snapshot.index.peerAuthentications.get(snapshot.rootNamespace)?.namespacePolicy;
  const own = snapshot.index.peerAuthentications.get(namespace);
  const namespacePolicy = own?.namespacePolicy;
  const workloadPolicy = own?.workloadPolicies.find((pa) => selects(pa.selector!, labels));
  let mode = resolve(meshPolicy?.mode, fallback);
  if (namespacePolicy && namespacePolicy !== meshPolicy) mode = resolve(namespacePolicy.mode, mode);
  const ports = new Map<number, ResolvedMtlsMode>();
  if (workloadPolicy) {
    mode = resolve(workloadPolicy.mode, mode);
    for (const { port, mode: portMode } of workloadPolicy.portLevel) ports.set(port, resolve(portMode, mode));
  }
  for (const pa of [workloadPolicy, namespacePolicy, meshPolicy]) {
    if (pa && !from.some((r) => r.namespace === pa.namespace && r.name === pa.name)) {
      from.push({ namespace: pa.namespace, name: pa.name });
    }
  }
  return { mode, ports, from };
}

/** The mode of one container (target) port of a workload. */
export function portMtls(workload: WorkloadMtls, port: number): ResolvedMtlsMode {
  return workload.ports.get(port) ?? workload.mode;
}

/**
 * What a client can rely on for a Service port: the mode of every endpoint's workload on its target port,
 * when they all agree; MIXED otherwise. Endpoints without a Pod (labels {}) and a port without endpoints
 * take the namespace's (or mesh's) mode. A client that cannot choose per endpoint (proxyless gRPC) uses
 * mTLS only for STRICT; Envoy sidecars choose per endpoint (auto mTLS).
 */
export function destinationMtls(
  snapshot: MeshSnapshot,
  service: MeshService,
  port: MeshServicePort,
  fallback: ResolvedMtlsMode,
): ResolvedMtlsMode | 'MIXED' {
  if (port.endpoints.length === 0) return workloadMtls(snapshot, service.namespace, {}, fallback).mode;
  let seen: ResolvedMtlsMode | undefined;
  for (const e of port.endpoints) {
    const mode = portMtls(workloadMtls(snapshot, service.namespace, e.labels, fallback), e.port);
    if (seen !== undefined && mode !== seen) return 'MIXED';
    seen = mode;
  }
  return seen!;
}
