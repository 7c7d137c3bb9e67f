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
import type { PeerMtlsMode } from '../../crds/types.js';
import { selects } from '../../crds/rules/peer-authentication.js';
import type {
  AcceptedPeerAuthentication,
  MeshServicePort,
  MeshService,
  MeshSnapshot,
  NamespacePeerAuthentications,
  ObjectRef,
  ResolvedMtlsMode,
} from './snapshot.js';

// The rules the validator's cross-checks share (what a spec keeps, selectors, conflicts) live in
// crds/rules/peer-authentication.ts; re-exported here for the model's readers.
export {
  peerAuthenticationConflicts,
  peerFields,
  selects,
  type PeerConflict,
  type PeerFields,
  type PeerPolicy,
  type PodLabels,
} from '../../crds/rules/peer-authentication.js';

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

/**
 * Results per snapshot (frozen, so they never go stale): the modes by canonical key (fallback, namespace,
 * sorted labels), and by labels object per fallback and namespace. The labels objects are the snapshot's
 * own (a Pod's record, a proxy's labels): a map keyed by them lives and dies with the snapshot's entry.
 */
const workloadMemo = new WeakMap<
  MeshSnapshot,
  {
    readonly byKey: Map<string, WorkloadMtls>;
    readonly byLabels: Map<string, Map<Readonly<Record<string, string>>, WorkloadMtls>>;
  }
>();

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
  if (!memo) workloadMemo.set(snapshot, (memo = { byKey: new Map(), byLabels: new Map() }));
  // The same labels object first (the endpoints of one Pod share its labels record): the key below, built
  // per call, was most of the assignments' translation (30,000 endpoints in a mesh of 1,000 Services).
  const scope = `${fallback}|${namespace}`;
  let byLabels = memo.byLabels.get(scope);
  if (!byLabels) memo.byLabels.set(scope, (byLabels = new Map()));
  const known = byLabels.get(labels);
  if (known) return known;
  const key = JSON.stringify([
    fallback,
    namespace,
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  ]);
  let result = memo.byKey.get(key);
  if (!result) {
    result = computeWorkloadMtls(snapshot, namespace, labels, fallback);
    memo.byKey.set(key, result);
  }
  byLabels.set(labels, result);
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
  // Every proxy shape asks this of every Service port: one answer per snapshot, port and fallback.
  let ports = destinationMemo.get(snapshot);
  if (!ports) destinationMemo.set(snapshot, (ports = new WeakMap()));
  let byFallback = ports.get(port);
  if (!byFallback) ports.set(port, (byFallback = new Map()));
  let mode = byFallback.get(`${service.namespace}\n${fallback}`);
  if (mode === undefined) {
    mode = computeDestinationMtls(snapshot, service, port, fallback);
    byFallback.set(`${service.namespace}\n${fallback}`, mode);
  }
  return mode;
}

const destinationMemo = new WeakMap<MeshSnapshot, WeakMap<MeshServicePort, Map<string, ResolvedMtlsMode | 'MIXED'>>>();

function computeDestinationMtls(
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
