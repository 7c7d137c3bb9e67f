// buildSnapshot: the objects of a source → one immutable MeshSnapshot. Pure and deterministic: the
// same objects, in any order, give a deep-equal snapshot with the same hash (only `version` follows
// `previous`). Sources call it after every batch of changes (sources/mesh-source.ts), and publish only
// when the hash changed. The snapshot keeps only what translation and statuses read, so the hash does
// not move for a write that changes nothing of that (a status, a resourceVersion, a label on a routing
// resource): README.md "What the hash covers".
import { createHash } from 'node:crypto';
import { canonicalJson, deepFreeze, frozenContentHash } from './canonical.js';
import { patchMap } from './patched-map.js';
import { DEFAULT_ROOT_NAMESPACE } from '../../crds/rules/defaults.js';
import { DEFAULT_DOMAIN } from './hosts.js';
import { isPolicyKind, keyOf, locationOf, located, type MeshObject, type PolicyKind, type Problem } from './objects.js';
import { indexPeerAuthentications, type PodLabels } from './peer-authentication.js';
import { buildRouting, podConflicts, type RoutingModel } from './routing.js';
import { buildSecrets, credentialNames, indexSecrets, missingCredentialProblems } from './secrets.js';
import { serviceEntryServices } from './service-entries.js';
import { buildNamespaces, buildNodes, buildServices, sliceOwner, type ServiceMemo } from './services.js';
import type { HostPolicy, MeshService, MeshSnapshot, ServiceInstance } from './snapshot.js';
import type { FormatIssue, ValidateRoutingResource } from './validation.js';

export { DEFAULT_ROOT_NAMESPACE };

export interface BuildOptions {
  /** `validateRoutingResource` from crds/validator.ts. */
  readonly validate: ValidateRoutingResource;
  /** `formatIssue` from crds/validator.ts; without it, the same format (`file.yaml#2: Kind ns/name: path: message`). */
  readonly formatIssue?: FormatIssue;
  /** The cluster domain of Service FQDNs; `cluster.local`. */
  readonly domain?: string;
  /** Where mesh-wide DestinationRules and the mesh's PeerAuthentication live; `trellis-system`. */
  readonly rootNamespace?: string;
  /**
   * The snapshot this one replaces: the new version is its version + 1, and a VirtualService or
   * DestinationRule that is now invalid keeps its accepted version from it.
   */
  readonly previous?: MeshSnapshot;
  /** Set the version instead (default: previous.version + 1, or 1). */
  readonly version?: number;
  /** Problems the source found (files that do not parse, skipped documents). */
  readonly sourceProblems?: readonly Problem[];
}

type Of<K extends MeshObject['kind']> = Extract<MeshObject, { kind: K }>;

function compareProblems(a: Problem, b: Problem): number {
  const ka = `${a.message}\0${a.severity}`;
  const kb = `${b.message}\0${b.severity}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const podLabelMemo = new WeakMap<object, PodLabels>();

/** A Pod's namespace, name and string labels (what PeerAuthentication selectors read); memoized per object. */
function podLabels(pod: Of<'Pod'>): PodLabels {
  const object: unknown = pod.object;
  const known = typeof object === 'object' && object !== null ? podLabelMemo.get(object) : undefined;
  if (known && known.namespace === pod.namespace && known.name === pod.name) return known;
  const result = readPodLabels(pod);
  if (typeof object === 'object' && object !== null) podLabelMemo.set(object, result);
  return result;
}

function readPodLabels(pod: Of<'Pod'>): PodLabels {
  const raw: unknown = pod.object?.metadata?.labels;
  const labels: Record<string, string> = {};
  if (typeof raw === 'object' && raw !== null) {
    for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') labels[k] = v;
  }
  return { namespace: pod.namespace, name: pod.name, labels };
}

/**
 * One object per key, in key order. A store never holds two; should a caller pass two, the first by origin
 * wins and the others are reported in `problems`. (The origin is only compared between copies of one key,
 * so it is serialized only then.) A store's list() is already in key order, and is taken as it is.
 */
function dedupe(objects: readonly MeshObject[], problems: Problem[]): { unique: MeshObject[]; ordered: boolean } {
  const originKey = (x: { o: MeshObject; origin?: string }): string =>
    (x.origin ??= canonicalJson(locationOf(x.o.origin)));
  const keyed = objects.map((o): { o: MeshObject; key: string; origin?: string } => ({ o, key: keyOf(o) }));
  const ordered = keyed.every((x, i) => i === 0 || compareKeys(keyed[i - 1]!.key, x.key) < 0);
  if (!ordered) keyed.sort((a, b) => compareKeys(a.key, b.key) || compareKeys(originKey(a), originKey(b)));
  const unique: MeshObject[] = [];
  let lastKey: string | undefined;
  for (const { o, key } of keyed) {
    if (key === lastKey) {
      const origin = locationOf(o.origin);
      problems.push({
        severity: 'error',
        object: { kind: o.kind, namespace: o.namespace, name: o.name },
        origin,
        message: located(
          origin,
          `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}: defined twice; this copy is ignored`,
        ),
      });
      continue;
    }
    lastKey = key;
    unique.push(inModel(o));
  }
  return { unique, ordered };
}

/**
 * What dedupe makes of `objects`, found by walking them beside the previous build's input (which had no
 * duplicate): an object that is the previous input's next one is its entry in the previous de-duplicated
 * list, and keys are read only where the lists differ (an object that came, went or was replaced, and the
 * one before it). A store lists its objects in key order, so a Pod that comes or goes costs a walk of
 * identities, not 14,000 keys (3.5 ms at 1,000 Services). Undefined when the walk cannot vouch for the
 * order (an object out of key order, two of one key): dedupe then takes the whole list, and reports.
 */
function dedupeAgainst(objects: readonly MeshObject[], previous: BuildInput): MeshObject[] | undefined {
  if (!previous.ordered) return undefined;
  const before = previous.objects;
  const unique: MeshObject[] = [];
  let last: MeshObject | undefined;
  let lastKey: string | undefined;
  let i = 0;
  let j = 0;
  while (i < objects.length) {
    const o = objects[i]!;
    if (j < before.length && o === before[j]) {
      // The previous input's next object: after its predecessor there too, or after a new object whose key
      // was found below this one's.
      unique.push(previous.unique[j]!);
      last = o;
      lastKey = undefined;
      i++;
      j++;
      continue;
    }
    const key = keyOf(o);
    if (j < before.length) {
      const beforeKey = keyOf(before[j]!);
      if (beforeKey < key) {
        j++; // gone (or moved later in the list: then the order check below fails)
        continue;
      }
      if (beforeKey === key) j++; // replaced
    }
    if (last !== undefined && compareKeys(lastKey ?? keyOf(last), key) >= 0) return undefined;
    unique.push(inModel(o));
    last = o;
    lastKey = key;
    i++;
  }
  return unique;
}

/**
 * An object whose origin is already a Location (FileSource) is kept as it is: no copy. A Kubernetes
 * object's copy is kept per object, so the next build sees the very same copy while the object stays.
 */
function inModel(o: MeshObject): MeshObject {
  return o.origin.resourceVersion === undefined ? o : locatedCopy(o);
}

/** What a build read, for the next build: its input as given and the de-duplicated list it made of it. */
interface BuildInput {
  readonly objects: readonly MeshObject[];
  readonly unique: readonly MeshObject[];
  readonly domain: string;
  /**
   * Whether `objects` was in key order without a duplicate, so that `unique[k]` is `objects[k]` as the model
   * keeps it (what dedupeAgainst relies on).
   */
  readonly ordered: boolean;
  /** `unique` by kind, each list in `unique`'s order. */
  readonly byKind: ReadonlyMap<MeshObject['kind'], readonly MeshObject[]>;
}

const inputMemos = new WeakMap<MeshSnapshot, BuildInput>();

/** At most this many objects replaced in place take the in-place path; more are built the full way. */
const MAX_IN_PLACE_CHANGES = 64;

/** Objects replaced in place since the previous build, and what they may change. */
interface InPlaceChanges {
  /** The previous build's de-duplicated objects → their replacements as they stand in the de-duplicated list. */
  readonly replaced: Map<MeshObject, MeshObject>;
  /** The Services (`namespace/name`) owning a replaced EndpointSlice before or after. */
  readonly owners: Set<string>;
  /** Whether a policy object (VirtualService, DestinationRule, …) is among them. */
  readonly policies: boolean;
}

/**
 * When `objects` is the previous build's input (which had no duplicate) with only EndpointSlices and policy
 * objects (PolicyKind) replaced in place (same position, kind, namespace and name): the replacements, the
 * Services owning a replaced slice before or after, and whether a policy object changed. Undefined
 * otherwise: a Service, Pod, Node, Namespace or Secret changed, an object came or went, a replaced slice
 * names no owner (the full path reports that), or too many changed.
 */
function inPlaceChanges(objects: readonly MeshObject[], previous: BuildInput): InPlaceChanges | undefined {
  if (objects.length !== previous.objects.length || previous.unique.length !== previous.objects.length)
    return undefined;
  const replaced = new Map<MeshObject, MeshObject>();
  const owners = new Set<string>();
  let policies = false;
  for (let i = 0; i < objects.length; i++) {
    const before = previous.objects[i]!;
    const after = objects[i]!;
    if (before === after) continue;
    if (before.kind !== after.kind || before.namespace !== after.namespace || before.name !== after.name)
      return undefined;
    if (before.kind === 'EndpointSlice') {
      const was = sliceOwner(before as Of<'EndpointSlice'>);
      const is = sliceOwner(after as Of<'EndpointSlice'>);
      if (was === undefined || is === undefined) return undefined;
      owners.add(was).add(is);
    } else if (isPolicyKind(before.kind)) {
      policies = true;
    } else {
      return undefined;
    }
    replaced.set(inModel(before), inModel(after));
    if (replaced.size > MAX_IN_PLACE_CHANGES) return undefined;
  }
  return { replaced, owners, policies };
}

function groupByKind(objects: readonly MeshObject[]): Map<MeshObject['kind'], MeshObject[]> {
  const byKind = new Map<MeshObject['kind'], MeshObject[]>();
  for (const o of objects) {
    const list = byKind.get(o.kind);
    if (list) list.push(o);
    else byKind.set(o.kind, [o]);
  }
  return byKind;
}

/** `previous` (lists by kind) with each object of `replaced` swapped for its replacement (same kind and key). */
function replacedByKind(
  previous: ReadonlyMap<MeshObject['kind'], readonly MeshObject[]>,
  replaced: ReadonlyMap<MeshObject, MeshObject>,
): Map<MeshObject['kind'], readonly MeshObject[]> {
  const byKind = new Map(previous);
  const kinds = new Set([...replaced.keys()].map((o) => o.kind));
  for (const kind of kinds)
    byKind.set(
      kind,
      previous.get(kind)!.map((o) => replaced.get(o) ?? o),
    );
  return byKind;
}

export function buildSnapshot(objects: readonly MeshObject[], options: BuildOptions): MeshSnapshot {
  const domain = options.domain ?? DEFAULT_DOMAIN;
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const problems: Problem[] = (options.sourceProblems ?? []).map((p) =>
    p.origin ? { ...p, origin: locationOf(p.origin) } : p,
  );
  // Only EndpointSlices and policy objects changed since the previous build, in place (an endpoint change,
  // a VirtualService edit): the previous de-duplicated list with the new objects in place, and only the
  // owners of the replaced slices may get a new MeshService (none when only policies changed).
  const previousInput = options.previous ? inputMemos.get(options.previous) : undefined;
  const inPlace = previousInput?.domain === domain ? inPlaceChanges(objects, previousInput) : undefined;
  // From here on an object's origin is its Location: the resourceVersion never reaches the snapshot, so a
  // write that changes nothing the model reads (a status, a label) gives the same hash (README.md "What
  // the hash covers"). The object itself is the same reference (validation results are cached by it).
  // In place, each object keeps its position (and key); a walk succeeds only on a list in key order.
  const walked = !inPlace && previousInput?.domain === domain ? dedupeAgainst(objects, previousInput) : undefined;
  const { unique, ordered } = inPlace
    ? { unique: previousInput!.unique.map((o) => inPlace.replaced.get(o) ?? o), ordered: previousInput!.ordered }
    : walked
      ? { unique: walked, ordered: true }
      : dedupe(objects, problems);
  // The objects of each kind, in one pass over the list; in place, the previous lists with the replaced
  // objects swapped in (only the lists of their kinds are walked).
  const byKind = inPlace ? replacedByKind(previousInput!.byKind, inPlace.replaced) : groupByKind(unique);
  const ofKind = <K extends MeshObject['kind']>(kind: K) => (byKind.get(kind) ?? []) as readonly Of<K>[];

  const namespaces = buildNamespaces(ofKind('Namespace'));
  // Services whose inputs are the very objects of the previous build are that build's (README "Incremental builds").
  const previousServices = options.previous ? serviceMemos.get(options.previous) : undefined;
  const serviceMemo: ServiceMemo = new Map();
  const kubeServices = buildServices(
    ofKind('Service'),
    ofKind('EndpointSlice'),
    ofKind('Pod'),
    domain,
    problems,
    {
      ...(previousServices ? { previous: previousServices } : {}),
      next: serviceMemo,
      ...(inPlace ? { onlyChanged: inPlace.owners } : {}),
    },
    ofKind('Node'),
  );
  // The routing judgement reads only the policy objects and the Pods' labels: when those are the very
  // inputs of the previous build (an endpoint change), its result is that build's (README "Incremental builds").
  // With only EndpointSlices changed in place, the policy objects and Pods are the previous build's very
  // lists; with policies changed in place too, the Pods still are.
  const previousRouting = options.previous ? routingMemos.get(options.previous) : undefined;
  const routingInputs: RoutingInputs = {
    objects:
      inPlace && !inPlace.policies && previousRouting
        ? previousRouting.inputs.objects
        : unique.filter((o): o is Of<PolicyKind> => isPolicyKind(o.kind)),
    pods: inPlace && previousRouting ? previousRouting.inputs.pods : ofKind('Pod').map(podLabels),
    validate: options.validate,
    formatIssue: options.formatIssue,
    domain,
    rootNamespace,
  };
  const routing =
    previousRouting &&
    (sameRoutingInputs(previousRouting.inputs, routingInputs) || samePodConflicts(previousRouting, routingInputs))
      ? previousRouting.routing
      : buildRouting({
          objects: routingInputs.objects,
          validate: options.validate,
          ...(options.formatIssue ? { formatIssue: options.formatIssue } : {}),
          domain,
          rootNamespace,
          pods: routingInputs.pods,
          ...(options.previous ? { previous: options.previous } : {}),
        });
  problems.push(...routing.problems);
  // ServiceEntry hosts are services too (service-entries.ts); a Kubernetes Service keeps its FQDN.
  const services = [
    ...kubeServices,
    ...serviceEntryServices(routing.serviceEntries, new Set(kubeServices.map((s) => s.fqdn)), problems),
  ].sort((a, b) => compareKeys(a.fqdn, b.fqdn));
  const secrets = buildSecrets(
    ofKind('Secret'),
    credentialNames(routing.destinationRules.map((d) => d.spec)),
    problems,
  );
  const secretIndex = indexSecrets(secrets);
  missingCredentialProblems(routing.destinationRules, secretIndex, problems);

  // The routing's very result (an endpoint change): its statuses too, as the previous snapshot sorted them.
  const statuses =
    options.previous && previousRouting?.routing === routing
      ? options.previous.statuses
      : [...routing.statuses].sort(
          (a, b) => compareKeys(a.kind, b.kind) || compareKeys(a.namespace, b.namespace) || compareKeys(a.name, b.name),
        );
  const sortedProblems = problems
    .sort(compareProblems)
    .filter((p, i, all) => i === 0 || compareProblems(p, all[i - 1]!) !== 0);

  // Hosts: every Service FQDN and every host a VirtualService or DestinationRule names.
  const servicesByFqdn = new Map<string, MeshService>(services.map((s) => [s.fqdn, s]));
  const hostNames = [
    ...new Set([
      ...servicesByFqdn.keys(),
      ...routing.virtualServicesByHost.keys(),
      ...routing.destinationRulesByHost.keys(),
    ]),
  ].sort();
  const hosts: HostPolicy[] = hostNames.map((host) => {
    const service = servicesByFqdn.get(host);
    return {
      host,
      ...(service ? { service } : {}),
      virtualServices: routing.virtualServicesByHost.get(host) ?? [],
      destinationRules: routing.destinationRulesByHost.get(host) ?? [],
    };
  });

  const { instancesByPod, instancesByAddress } = instanceIndexes(services, options.previous);
  const nodes = buildNodes(ofKind('Node'), options.previous?.nodes);

  const content = {
    domain,
    rootNamespace,
    namespaces,
    services,
    virtualServices: routing.virtualServices,
    destinationRules: routing.destinationRules,
    peerAuthentications: routing.peerAuthentications,
    authorizationPolicies: routing.authorizationPolicies,
    serviceEntries: routing.serviceEntries,
    sidecars: routing.sidecars,
    secrets,
    nodes,
    statuses,
    problems: sortedProblems,
  };
  const snapshot: MeshSnapshot = {
    version: options.version ?? (options.previous ? options.previous.version + 1 : 1),
    hash: snapshotHash(content),
    ...content,
    hosts,
    index: {
      namespaces: new Map(namespaces.map((n) => [n.name, n])),
      servicesByFqdn,
      hosts: new Map(hosts.map((h) => [h.host, h])),
      wildcardHosts: hosts
        .filter((h) => h.host.startsWith('*'))
        .sort((a, b) => b.host.length - a.host.length || compareKeys(a.host, b.host)),
      instancesByPod,
      instancesByAddress,
      peerAuthentications: indexPeerAuthentications(routing.peerAuthentications),
      secrets: secretIndex,
      nodes: nodes === options.previous?.nodes ? options.previous.index.nodes : new Map(nodes.map((n) => [n.name, n])),
    },
  };
  serviceMemos.set(snapshot, serviceMemo);
  inputMemos.set(snapshot, { objects, unique, domain, ordered, byKind });
  routingMemos.set(snapshot, { inputs: routingInputs, routing });
  return deepFreeze(snapshot);
}

type ReadonlyInstanceIndex = ReadonlyMap<string, readonly ServiceInstance[]>;

/** At most this many changed Services update the previous snapshot's instance indexes; more rebuild them. */
const MAX_INDEX_PATCHES = 64;

/**
 * The Services' instances by Pod (`namespace/name`) and by address, each list in Service (FQDN) order, then
 * port and endpoint order. A ServiceEntry's endpoints are not workloads the mesh serves inbound: left out.
 * With `previous` whose Services have the same FQDNs in the same order (an endpoint change, a policy edit,
 * a Pod that comes or goes): its indexes with the keys of the changed Services' instances, before and
 * after, worked out again (a Service's instances are a function of that Service object); its very indexes
 * when no Service changed.
 */
function instanceIndexes(
  services: readonly MeshService[],
  previous: MeshSnapshot | undefined,
): { instancesByPod: ReadonlyInstanceIndex; instancesByAddress: ReadonlyInstanceIndex } {
  const changed = previous ? changedServices(previous.services, services) : undefined;
  // The very same Services (a policy change that touches none): the very same indexes (never modified).
  if (previous && changed?.length === 0) {
    const { instancesByPod, instancesByAddress } = previous.index;
    return { instancesByPod, instancesByAddress };
  }
  // Patching more than half of the Services is more work than indexing them all again.
  if (!previous || !changed || changed.length > MAX_INDEX_PATCHES || changed.length * 2 > services.length) {
    const instancesByPod = new Map<string, ServiceInstance[]>();
    const instancesByAddress = new Map<string, ServiceInstance[]>();
    for (const service of services) {
      if (service.serviceEntry) continue;
      for (const { instance, address, pod } of serviceInstances(service)) {
        listOf(instancesByAddress, address).push(instance);
        if (pod !== undefined) listOf(instancesByPod, pod).push(instance);
      }
    }
    return { instancesByPod, instancesByAddress };
  }
  const gone = new Set(changed.map(([before]) => before));
  // The keys the changed Services' instances had or have, each with the instances it has now.
  const byAddress = new Map<string, ServiceInstance[]>();
  const byPod = new Map<string, ServiceInstance[]>();
  for (const [before, after] of changed) {
    for (const service of [before, after]) {
      if (service.serviceEntry) continue;
      for (const { instance, address, pod } of serviceInstances(service)) {
        const now = service === after;
        const atAddress = listOf(byAddress, address);
        if (now) atAddress.push(instance);
        if (pod === undefined) continue;
        const ofPod = listOf(byPod, pod);
        if (now) ofPod.push(instance);
      }
    }
  }
  // Each touched key: the instances of unchanged Services (already in order) and the new ones, sorted
  // stably by FQDN, which keeps each Service's own order. The previous index is shared, not copied
  // (patched-map.ts): ten thousand keys, a handful touched.
  const patch = (index: ReadonlyInstanceIndex, added: Map<string, ServiceInstance[]>): ReadonlyInstanceIndex => {
    const changes = new Map<string, readonly ServiceInstance[] | undefined>();
    for (const [key, fresh] of added) {
      const kept = (index.get(key) ?? []).filter((i) => !gone.has(i.service));
      const list = [...kept, ...fresh].sort((a, b) => compareKeys(a.service.fqdn, b.service.fqdn));
      changes.set(key, list.length > 0 ? list : undefined);
    }
    return patchMap(index, changes);
  };
  return {
    instancesByPod: patch(previous.index.instancesByPod, byPod),
    instancesByAddress: patch(previous.index.instancesByAddress, byAddress),
  };
}

/** The list of `key`, made empty when there is none. */
function listOf(index: Map<string, ServiceInstance[]>, key: string): ServiceInstance[] {
  let list = index.get(key);
  if (!list) index.set(key, (list = []));
  return list;
}

/** The (before, after) pairs of Services that are other objects, when both lists hold the same FQDNs in order. */
function changedServices(
  before: readonly MeshService[],
  after: readonly MeshService[],
): [MeshService, MeshService][] | undefined {
  if (before.length !== after.length) return undefined;
  const out: [MeshService, MeshService][] = [];
  for (let i = 0; i < after.length; i++) {
    const b = before[i]!;
    const a = after[i]!;
    if (a === b) continue;
    if (a.fqdn !== b.fqdn) return undefined;
    out.push([b, a]);
  }
  return out;
}

interface IndexedInstance {
  readonly instance: ServiceInstance;
  readonly address: string;
  /** `namespace/name` of its Pod, if any. */
  readonly pod: string | undefined;
}

const instanceMemo = new WeakMap<MeshService, readonly IndexedInstance[]>();

/**
 * The instances of a Service (one per port and endpoint, in that order) with their index keys, made once
 * per MeshService: a Service kept from the previous build (by identity) brings the very same instances.
 */
function serviceInstances(service: MeshService): readonly IndexedInstance[] {
  let list = instanceMemo.get(service);
  if (!list) {
    const out: IndexedInstance[] = [];
    for (const port of service.ports) {
      for (const endpoint of port.endpoints) {
        out.push({
          instance: { service, port, endpoint },
          address: endpoint.address,
          pod: endpoint.pod ? `${endpoint.pod.namespace}/${endpoint.pod.name}` : undefined,
        });
      }
    }
    instanceMemo.set(service, (list = out));
  }
  return list;
}

const locatedCopies = new WeakMap<MeshObject, MeshObject>();

/** `o` with its origin reduced to a Location (no resourceVersion); the same copy for the same object. */
function locatedCopy(o: MeshObject): MeshObject {
  let copy = locatedCopies.get(o);
  if (!copy) locatedCopies.set(o, (copy = { ...o, origin: locationOf(o.origin) } as MeshObject));
  return copy;
}

interface RoutingInputs {
  readonly objects: readonly Of<PolicyKind>[];
  readonly pods: readonly PodLabels[];
  readonly validate: ValidateRoutingResource;
  readonly formatIssue: FormatIssue | undefined;
  readonly domain: string;
  readonly rootNamespace: string;
}

/** The routing judgement of each snapshot's build and what it read, for the next build. */
const routingMemos = new WeakMap<MeshSnapshot, { inputs: RoutingInputs; routing: RoutingModel }>();

/**
 * The same policy objects (a Kubernetes object is copied per build for its origin: the same spec object,
 * kind and name count as the same) and the same Pod label records (memoized per Pod object), in order.
 */
function sameRoutingInputs(a: RoutingInputs, b: RoutingInputs): boolean {
  if (!samePolicyInputs(a, b) || a.pods.length !== b.pods.length) return false;
  return a.pods.every((p, i) => p === b.pods[i]);
}

/** The same policy objects, validator, domain and root namespace (the Pods aside). */
function samePolicyInputs(a: RoutingInputs, b: RoutingInputs): boolean {
  if (a.validate !== b.validate || a.formatIssue !== b.formatIssue) return false;
  if (a.domain !== b.domain || a.rootNamespace !== b.rootNamespace) return false;
  if (a.objects.length !== b.objects.length) return false;
  for (let i = 0; i < a.objects.length; i++) {
    const x = a.objects[i]!;
    const y = b.objects[i]!;
    if (x === y) continue;
    if (x.object !== y.object || x.kind !== y.kind || x.namespace !== y.namespace || x.name !== y.name) return false;
  }
  return true;
}

/**
 * Only the Pods differ from the previous build's routing inputs, and they make the same Sidecar and
 * PeerAuthentication conflicts (the only thing the routing judgement reads of them, routing.ts
 * podConflicts): that judgement stands. A Pod that comes, goes or is relabelled in a mesh of 1,000
 * Services judged 2,000 policies again (40 ms) for nothing.
 */
function samePodConflicts(
  previous: { readonly inputs: RoutingInputs; readonly routing: RoutingModel },
  next: RoutingInputs,
): boolean {
  if (!samePolicyInputs(previous.inputs, next)) return false;
  const { sidecars, peerAuthentications } = previous.routing;
  const conflicts = podConflicts(sidecars, peerAuthentications, next.pods, next.rootNamespace);
  return canonicalJson(conflicts) === canonicalJson(previous.routing.podConflicts);
}

/** What each snapshot's build leaves for the next build that names it as `previous`. */
const serviceMemos = new WeakMap<MeshSnapshot, ServiceMemo>();

/**
 * sha256 over the content, composed of the memoized hashes of its parts (a Service, an accepted resource),
 * so a part shared with the previous snapshot is not hashed again. Equal content gives an equal hash.
 */
function snapshotHash(content: {
  readonly domain: string;
  readonly rootNamespace: string;
  readonly namespaces: readonly object[];
  readonly services: readonly object[];
  readonly virtualServices: readonly object[];
  readonly destinationRules: readonly object[];
  readonly peerAuthentications: readonly object[];
  readonly authorizationPolicies: readonly object[];
  readonly sidecars: readonly object[];
  readonly secrets: readonly object[];
  readonly nodes: readonly object[];
  readonly statuses: readonly object[];
  readonly problems: readonly object[];
}): string {
  const hash = createHash('sha256');
  const {
    services,
    virtualServices,
    destinationRules,
    peerAuthentications,
    authorizationPolicies,
    sidecars,
    statuses,
    problems,
    ...rest
  } = content;
  hash.update(canonicalJson(rest));
  for (const [tag, list] of [
    // Statuses and problems too: an endpoint change keeps the routing's statuses and most problems as
    // the same objects, so thousands of them are not serialized again.
    ['statuses', statuses],
    ['problems', problems],
    ['services', services],
    ['virtualServices', virtualServices],
    ['destinationRules', destinationRules],
    ['peerAuthentications', peerAuthentications],
    ['authorizationPolicies', authorizationPolicies],
    ['sidecars', sidecars],
  ] as const) {
    hash.update(`\0${tag}\0`).update(listHash(list));
  }
  return hash.digest('hex');
}

const listHashes = new WeakMap<readonly object[], string>();

/**
 * The hash of a list of snapshot parts, memoized on the list: a list the next snapshot keeps (the routing's
 * VirtualServices, DestinationRules and statuses after an endpoint change) is not walked again.
 */
function listHash(list: readonly object[]): string {
  let known = listHashes.get(list);
  if (known === undefined) {
    const hash = createHash('sha256');
    for (const part of list) hash.update('\0').update(frozenContentHash(part));
    listHashes.set(list, (known = hash.digest('hex')));
  }
  return known;
}
