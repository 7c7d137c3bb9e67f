// Content keys of a snapshot's parts, and what changed between two snapshots. A key is a hash of exactly
// what some reader depends on, so "equal key" means "the reader would compute the same thing": the
// translator caches generated resources across snapshots under these keys (translate/README.md
// "Incremental generation"), and `snapshotChanges` says which services' endpoints, which services, and
// which kinds of policy changed (README.md "Incremental builds").
//
// Every key is memoized on the object it describes (WeakMap), and the model hands unchanged parts from one
// snapshot to the next by identity (build-snapshot.ts), so computing the keys of a new snapshot costs
// time in proportion to what changed. Pure.
import { createHash } from 'node:crypto';
import { canonicalJson, frozenContentHash } from './canonical.js';
import type { AcceptedHeader, AcceptedVirtualService, MeshEndpoint, MeshService, MeshSnapshot } from './snapshot.js';

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

const endpointKeys = new WeakMap<readonly MeshEndpoint[], string>();

/** The content key of a port's endpoint list (what a ClusterLoadAssignment is built from). */
export function endpointsKey(endpoints: readonly MeshEndpoint[]): string {
  let key = endpointKeys.get(endpoints);
  if (key === undefined) {
    key = endpoints.length === 0 ? 'none' : digest(canonicalJson(endpoints));
    endpointKeys.set(endpoints, key);
  }
  return key;
}

const definitionKeys = new WeakMap<MeshService, string>();

/**
 * The content key of a Service without its endpoint lists: what listeners and routes read of it (clusters
 * also read the endpoints' labels and ports: `endpointTraitsKey`). `serviceAccounts`, a field, is in it.
 */
export function serviceDefinitionKey(service: MeshService): string {
  let key = definitionKeys.get(service);
  if (key === undefined) {
    key = digest(canonicalJson({ ...service, ports: service.ports.map(({ endpoints: _, ...port }) => port) }));
    definitionKeys.set(service, key);
  }
  return key;
}

const traitKeys = new WeakMap<readonly MeshEndpoint[], string>();

/**
 * The distinct (labels, target port) pairs of a port's endpoints and whether it has any: all that clusters
 * read of endpoints (the destination's mutual-TLS mode, auto mTLS). An endpoint that moves to another
 * address, turns unready, or a Pod replaced by one with the same labels leaves it alone.
 */
export function endpointTraitsKey(endpoints: readonly MeshEndpoint[]): string {
  let key = traitKeys.get(endpoints);
  if (key === undefined) {
    key =
      endpoints.length === 0
        ? 'none'
        : digest([...new Set(endpoints.map((e) => canonicalJson([e.labels, e.port])))].sort().join('\n'));
    traitKeys.set(endpoints, key);
  }
  return key;
}

const streamKeys = new WeakMap<AcceptedVirtualService, string>();

/**
 * The content key of a VirtualService as listeners read it: its identity and precedence (namespace, name,
 * creationTimestamp), hosts, exportTo, and its spec without `http` (the `tcp` and `tls` routes). Not its
 * origin, generation or `http` routes: a change to `http` only leaves it alone (routes read that, and the
 * lines of the documents after it in a file move with it).
 */
export function virtualServiceStreamKey(vs: AcceptedVirtualService): string {
  let key = streamKeys.get(vs);
  if (key === undefined) {
    const { http: _http, ...spec } = vs.spec;
    const { namespace, name, creationTimestamp, exportTo, hosts } = vs;
    key = digest(canonicalJson({ namespace, name, creationTimestamp, exportTo, hosts, spec }));
    streamKeys.set(vs, key);
  }
  return key;
}

/** The keys of one snapshot's parts. */
export interface SnapshotKeys {
  /** Domain, root namespace, namespaces and every Service's definition key (not endpoints). */
  readonly services: string;
  /** Every Service port's `endpointTraitsKey`. */
  readonly endpointTraits: string;
  /** Every Service port's `endpointsKey`. */
  readonly endpoints: string;
  readonly virtualServices: string;
  /** Every VirtualService's `virtualServiceStreamKey`, in order: the VirtualServices as listeners read them. */
  readonly virtualServiceStreams: string;
  readonly destinationRules: string;
  readonly peerAuthentications: string;
  readonly authorizationPolicies: string;
  readonly sidecars: string;
  /** Label keys a VirtualService match selects sources on (`sourceLabels`), sorted. */
  readonly sourceLabelKeys: readonly string[];
  /** Label keys a PeerAuthentication selector reads, sorted. */
  readonly selectorLabelKeys: readonly string[];
}

/** A list's key from its elements' keys, memoized per list and per element key function. */
function memoListKey<T extends object>(
  memo: WeakMap<readonly T[], string>,
  elementKey: (element: T) => string,
): (list: readonly T[]) => string {
  return (list) => {
    let key = memo.get(list);
    if (key === undefined) {
      key = digest(list.map(elementKey).join(','));
      memo.set(list, key);
    }
    return key;
  };
}

const translationKeys = new WeakMap<AcceptedHeader, string>();

/**
 * The content key of an accepted policy object as translation reads it: everything but its origin (file and
 * document) and generation, which only statuses and messages name. In a mesh directory, a document written
 * before others in the same file moves their document numbers: that must not rebuild every proxy's routes and
 * clusters (at 1,000 Services a full rebuild is about 2 s of CPU).
 */
function translationKey(part: AcceptedHeader): string {
  let key = translationKeys.get(part);
  if (key === undefined) {
    const { origin: _origin, generation: _generation, ...read } = part;
    key = digest(canonicalJson(read));
    translationKeys.set(part, key);
  }
  return key;
}

/** The content key of a list of accepted policy objects as translation reads them (`translationKey` of each). */
const listKey = memoListKey<AcceptedHeader>(new WeakMap(), translationKey);

/** The key of a snapshot's VirtualServices as listeners read them. */
const virtualServiceStreamsKey = memoListKey<AcceptedVirtualService>(new WeakMap(), virtualServiceStreamKey);

function sourceLabelKeysOf(snapshot: MeshSnapshot): string[] {
  const keys = new Set<string>();
  for (const vs of snapshot.virtualServices) {
    const matches = [
      ...(vs.spec.http ?? []).flatMap((r) => r.match ?? []),
      ...(vs.spec.tcp ?? []).flatMap((r) => r.match ?? []),
    ];
    for (const match of matches) for (const key of Object.keys(match.sourceLabels ?? {})) keys.add(key);
  }
  return [...keys].sort();
}

const snapshotKeyMemo = new WeakMap<MeshSnapshot, SnapshotKeys>();

/** The part keys of a snapshot (memoized on it). */
export function snapshotKeys(snapshot: MeshSnapshot): SnapshotKeys {
  let keys = snapshotKeyMemo.get(snapshot);
  if (!keys) {
    const services = createHash('sha256')
      .update(canonicalJson([snapshot.domain, snapshot.rootNamespace, snapshot.namespaces]))
      .update('\0');
    const traits = createHash('sha256');
    const endpoints = createHash('sha256');
    for (const service of snapshot.services) {
      services.update(serviceDefinitionKey(service)).update('\0');
      for (const port of service.ports) {
        traits.update(endpointTraitsKey(port.endpoints)).update('\0');
        endpoints.update(endpointsKey(port.endpoints)).update('\0');
      }
      traits.update('\n');
      endpoints.update('\n');
    }
    keys = {
      services: services.digest('base64url').slice(0, 22),
      endpointTraits: traits.digest('base64url').slice(0, 22),
      endpoints: endpoints.digest('base64url').slice(0, 22),
      virtualServices: listKey(snapshot.virtualServices),
      virtualServiceStreams: virtualServiceStreamsKey(snapshot.virtualServices),
      destinationRules: listKey(snapshot.destinationRules),
      peerAuthentications: listKey(snapshot.peerAuthentications),
      authorizationPolicies: listKey(snapshot.authorizationPolicies),
      sidecars: listKey(snapshot.sidecars),
      sourceLabelKeys: sourceLabelKeysOf(snapshot),
      selectorLabelKeys: [
        ...new Set(snapshot.peerAuthentications.flatMap((pa) => Object.keys(pa.selector ?? {}))),
      ].sort(),
    };
    snapshotKeyMemo.set(snapshot, keys);
  }
  return keys;
}

/** What changed from one snapshot to the next. */
export interface SnapshotChanges {
  /** The version of the snapshot compared with. */
  readonly from: number;
  /** Services whose endpoints changed and nothing else (only EDS reads what changed), sorted FQDNs. */
  readonly endpoints: readonly string[];
  /** Services added, removed, or changed in more than their endpoints, sorted FQDNs. */
  readonly services: readonly string[];
  readonly namespaces: boolean;
  readonly virtualServices: boolean;
  /**
   * The hosts of every VirtualService added, removed or changed (its old and its new hosts), sorted: the
   * only hosts whose routing a VirtualService change can move ([] when none changed).
   */
  readonly virtualServiceHosts: readonly string[];
  readonly destinationRules: boolean;
  readonly peerAuthentications: boolean;
  /** Statuses or problems changed (nothing a proxy reads). */
  readonly statuses: boolean;
}

const diffs = new WeakMap<MeshSnapshot, WeakMap<MeshSnapshot, SnapshotChanges>>();

/**
 * The changes from `previous` to `next`, compared part by part (unchanged parts are shared, so this is
 * cheap); memoized per pair.
 */
export function diffSnapshots(previous: MeshSnapshot, next: MeshSnapshot): SnapshotChanges {
  let inner = diffs.get(previous);
  if (!inner) diffs.set(previous, (inner = new WeakMap()));
  let changes = inner.get(next);
  if (!changes) inner.set(next, (changes = computeDiff(previous, next)));
  return changes;
}

function computeDiff(previous: MeshSnapshot, next: MeshSnapshot): SnapshotChanges {
  const before = new Map(previous.services.map((s) => [s.fqdn, s]));
  const endpoints: string[] = [];
  const services: string[] = [];
  for (const service of next.services) {
    const old = before.get(service.fqdn);
    before.delete(service.fqdn);
    if (old === service) continue;
    if (!old || serviceDefinitionKey(old) !== serviceDefinitionKey(service)) services.push(service.fqdn);
    else if (old.ports.some((p, i) => endpointsKey(p.endpoints) !== endpointsKey(service.ports[i]!.endpoints))) {
      endpoints.push(service.fqdn);
    }
  }
  services.push(...before.keys());
  const a = snapshotKeys(previous);
  const b = snapshotKeys(next);
  return {
    from: previous.version,
    endpoints: endpoints.sort(),
    services: services.sort(),
    namespaces:
      previous.namespaces !== next.namespaces && canonicalJson(previous.namespaces) !== canonicalJson(next.namespaces),
    virtualServices: a.virtualServices !== b.virtualServices,
    virtualServiceHosts:
      a.virtualServices === b.virtualServices ? [] : changedHosts(previous.virtualServices, next.virtualServices),
    destinationRules: a.destinationRules !== b.destinationRules,
    peerAuthentications: a.peerAuthentications !== b.peerAuthentications,
    statuses: !sameContent(previous.statuses, next.statuses) || !sameContent(previous.problems, next.problems),
  };
}

/**
 * Equal lists by content, element by element: the same object, or the same memoized content hash (the
 * snapshot hash took those already, so a list of thousands of statuses is not serialized again).
 */
function sameContent(a: readonly object[], b: readonly object[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y && frozenContentHash(x) !== frozenContentHash(y)) return false;
  }
  return true;
}

/**
 * The hosts of the VirtualServices in one list and not the other, compared by content as translation reads
 * it (the memoized `translationKey` that `snapshotKeys` already took). A VirtualService that loses or wins a
 * host in a conflict has other content, so what moved is all here; one that only moved in its file is not.
 */
function changedHosts(before: readonly AcceptedVirtualService[], after: readonly AcceptedVirtualService[]): string[] {
  const old = new Set(before.map((vs) => translationKey(vs)));
  const now = new Set(after.map((vs) => translationKey(vs)));
  const hosts = new Set<string>();
  for (const vs of before) if (!now.has(translationKey(vs))) for (const h of vs.hosts) hosts.add(h);
  for (const vs of after) if (!old.has(translationKey(vs))) for (const h of vs.hosts) hosts.add(h);
  return [...hosts].sort();
}
