// Services, their ports and endpoints, from Namespace, Service, EndpointSlice and Pod objects.
// Pure. Every field read is checked (FileSource objects are unchecked YAML); what cannot be used is
// reported as a Problem naming the object and the field, and left out (one bad object hurts only itself).
import type { V1EndpointSlice, V1Namespace, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import { sortedRecord } from './canonical.js';
import { serviceFqdn } from './hosts.js';
import { locationOf, located, type Location, type MeshObject, type Problem } from './objects.js';
import { selectProtocol } from './protocol.js';
import type { Locality, MeshEndpoint, MeshNamespace, MeshNode, MeshService, MeshServicePort } from './snapshot.js';
import { parseExportToAnnotation } from './visibility.js';

export const INJECT_LABEL = 'trellis.dev/inject';
/** Set on a Pod by the injector when it adds the sidecar; endpoints of such Pods take mTLS. */
export const TLS_MODE_LABEL = 'trellis.dev/tlsMode';
export const TLS_MODE_MESH = 'mesh';
export const SERVICE_EXPORT_TO_ANNOTATION = 'networking.trellis.dev/exportTo';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** Istio's sub-zone label (on the Node, or on the Pod); `topology.trellis.dev/subzone` is read too (older Trellis). */
export const SUBZONE_LABEL = 'topology.istio.io/subzone';
export const TRELLIS_SUBZONE_LABEL = 'topology.trellis.dev/subzone';
/** The deprecated Node labels, read when the current ones are absent (as Istio does). */
export const LEGACY_REGION_LABEL = 'failure-domain.beta.kubernetes.io/region';
export const LEGACY_ZONE_LABEL = 'failure-domain.beta.kubernetes.io/zone';
/** Istio's Pod label that sets the whole locality, `region.zone.subzone` (label values cannot hold `/`). */
export const POD_LOCALITY_LABEL = 'istio-locality';

/** The topology labels of the Nodes, by Node name. */
export type NodeTopology = ReadonlyMap<string, Readonly<Record<string, string>>>;

/** The Nodes' labels (only what locality reads), by name. */
export function nodeTopology(nodes: readonly Of<'Node'>[]): NodeTopology {
  return new Map(nodes.map((n) => [n.name, stringMap((n.object as V1Node | undefined)?.metadata?.labels)]));
}

/**
 * The Nodes with a topology label, sorted by name, with their localities (a proxy's, when it names its Node:
 * translate/locality.ts). `previous` (the last snapshot's list) is returned when nothing in it changed, and
 * its entries are reused one by one otherwise, so an unchanged Node keeps its object from build to build
 * (the generator's shape memo compares them by reference).
 */
export function buildNodes(nodes: readonly Of<'Node'>[], previous: readonly MeshNode[] = []): readonly MeshNode[] {
  const before = new Map(previous.map((n) => [n.name, n]));
  const built: MeshNode[] = [];
  for (const [name, labels] of [...nodeTopology(nodes)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const locality = endpointLocality({}, labels, undefined);
    if (isEmptyLocality(locality)) continue;
    const old = before.get(name);
    built.push(
      old &&
        old.locality.region === locality.region &&
        old.locality.zone === locality.zone &&
        old.locality.subZone === locality.subZone
        ? old
        : { name, locality },
    );
  }
  return built.length === previous.length && built.every((n, i) => n === previous[i]) ? previous : built;
}

/** The locality a Pod's `istio-locality` label (`region.zone.subzone`) sets, if it has one. */
export function labelledLocality(labels: Readonly<Record<string, string>>): Locality | undefined {
  const value = labels[POD_LOCALITY_LABEL];
  if (!value) return undefined;
  const [region = '', zone = '', subZone = ''] = value.split('.');
  return { region, zone, subZone };
}

/** Whether a locality says nothing (no region, zone or sub-zone). */
export function isEmptyLocality(l: Locality): boolean {
  return l.region === '' && l.zone === '' && l.subZone === '';
}

/**
 * An endpoint's locality, as Istio's Kubernetes registry finds it: the Pod label `istio-locality`
 * (`region.zone.subzone`) when set; else region and sub-zone from its Node's labels and the zone from the
 * EndpointSlice endpoint (which the EndpointSlice controller copies from the Node), else the Node's zone
 * label. Without a Node (local mode, or a Node not listed) the Pod's own topology labels stand in.
 */
export function endpointLocality(
  podLabels: Readonly<Record<string, string>>,
  node: Readonly<Record<string, string>> | undefined,
  sliceZone: string | undefined,
): Locality {
  const override = labelledLocality(podLabels);
  if (override) return override;
  const n = node ?? {};
  return {
    region: n[REGION_LABEL] || n[LEGACY_REGION_LABEL] || podLabels[REGION_LABEL] || '',
    zone: sliceZone || n[ZONE_LABEL] || n[LEGACY_ZONE_LABEL] || podLabels[ZONE_LABEL] || '',
    subZone: n[SUBZONE_LABEL] || podLabels[SUBZONE_LABEL] || podLabels[TRELLIS_SUBZONE_LABEL] || '',
  };
}

type Of<K extends MeshObject['kind']> = Extract<MeshObject, { kind: K }>;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function string(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The string entries of a map (labels, annotations), keys sorted. */
export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const r = record(value);
  if (!r) return out;
  for (const key of Object.keys(r).sort()) {
    const v = r[key];
    if (typeof v === 'string') out[key] = v;
  }
  return out;
}

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

function problem(
  severity: Problem['severity'],
  kind: string,
  namespace: string,
  name: string,
  from: Location,
  text: string,
): Problem {
  const id = namespace === '' ? name : `${namespace}/${name}`;
  const origin = locationOf(from);
  return {
    severity,
    object: { kind, namespace, name },
    origin,
    message: located(origin, `${severity === 'warning' ? 'warning: ' : ''}${kind} ${id}: ${text}`),
  };
}

export function buildNamespaces(objects: readonly Of<'Namespace'>[]): MeshNamespace[] {
  return objects
    .map((o): MeshNamespace => {
      const labels = stringMap((o.object as V1Namespace | undefined)?.metadata?.labels);
      return { name: o.name, labels, injection: labels[INJECT_LABEL] === 'enabled', origin: locationOf(o.origin) };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

interface PodInfo {
  readonly labels: Record<string, string>;
  readonly serviceAccount: string;
}

function podInfo(pod: V1Pod | undefined): PodInfo {
  const spec = record(pod?.spec);
  const serviceAccount = string(spec?.serviceAccountName) || string(spec?.serviceAccount) || 'default';
  return { labels: stringMap(record(pod?.metadata)?.labels), serviceAccount };
}

interface ServicePortDraft {
  readonly name: string;
  readonly port: number;
  readonly transport: string;
  readonly targetPort: number | string;
  readonly appProtocol?: string;
}

function servicePorts(o: Of<'Service'>, problems: Problem[]): ServicePortDraft[] {
  const spec = record((o.object as V1Service | undefined)?.spec);
  const report = (text: string) => problems.push(problem('error', 'Service', o.namespace, o.name, o.origin, text));
  if (!spec) {
    problems.push(
      problem('warning', 'Service', o.namespace, o.name, o.origin, 'spec: missing; the Service has no ports'),
    );
    return [];
  }
  const out: ServicePortDraft[] = [];
  const seen = new Set<string>();
  list(spec.ports).forEach((raw, i) => {
    const p = record(raw);
    const path = `spec.ports[${i}]`;
    if (!p) return report(`${path}: must be an object; the port is ignored`);
    if (!isPort(p.port)) return report(`${path}.port: must be an integer in 1..65535; the port is ignored`);
    const transport = (string(p.protocol) ?? 'TCP').toUpperCase();
    if (!['TCP', 'UDP', 'SCTP'].includes(transport)) {
      return report(`${path}.protocol: must be TCP, UDP or SCTP; the port is ignored`);
    }
    let targetPort: number | string = p.port;
    if (p.targetPort !== undefined) {
      if (isPort(p.targetPort) || (typeof p.targetPort === 'string' && p.targetPort !== '')) {
        // A numeric string ("8080") is a number to Kubernetes (IntOrString).
        targetPort =
          typeof p.targetPort === 'string' && /^\d+$/.test(p.targetPort) ? Number(p.targetPort) : p.targetPort;
      } else {
        return report(`${path}.targetPort: must be a port number or a port name; the port is ignored`);
      }
    }
    const id = `${p.port}/${transport}`;
    if (seen.has(id)) return report(`${path}: port ${p.port}/${transport} is listed twice; the second is ignored`);
    seen.add(id);
    const appProtocol = string(p.appProtocol);
    out.push({
      name: string(p.name) ?? '',
      port: p.port,
      transport,
      targetPort,
      ...(appProtocol !== undefined && appProtocol !== '' ? { appProtocol } : {}),
    });
  });
  return out.sort((a, b) => a.port - b.port || (a.transport < b.transport ? -1 : a.transport > b.transport ? 1 : 0));
}

function compareEndpoints(a: MeshEndpoint, b: MeshEndpoint): number {
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  if (a.port !== b.port) return a.port - b.port;
  // Among duplicates (an address in two slices while the controller moves it), the ready one first.
  if (a.ready !== b.ready) return a.ready ? -1 : 1;
  const pa = a.pod ? `${a.pod.namespace}/${a.pod.name}` : '';
  const pb = b.pod ? `${b.pod.namespace}/${b.pod.name}` : '';
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/** The endpoints of one Service port from the Service's EndpointSlices (sorted by slice name). */
function portEndpoints(
  port: ServicePortDraft,
  slices: readonly Of<'EndpointSlice'>[],
  pods: PodLookup,
  nodes: NodeTopology,
  problems: Problem[],
): MeshEndpoint[] {
  const all: MeshEndpoint[] = [];
  for (const slice of slices) {
    const s = slice.object as V1EndpointSlice | undefined;
    // The slice's port for this Service port: same name ('' when unnamed) and protocol. A slice without
    // it does not serve this port (the endpoint controller leaves out ports a Pod cannot resolve).
    const slicePort = list(s?.ports)
      .map(record)
      .find(
        (sp) =>
          sp !== undefined &&
          (string(sp.name) ?? '') === port.name &&
          (string(sp.protocol) ?? 'TCP').toUpperCase() === port.transport,
      );
    if (!slicePort) continue;
    // An EndpointSlice port without a number means "not restricted": take the numeric target port.
    const number = isPort(slicePort.port)
      ? slicePort.port
      : typeof port.targetPort === 'number'
        ? port.targetPort
        : undefined;
    if (number === undefined) continue;
    list(s?.endpoints).forEach((raw, i) => {
      const e = record(raw);
      const address = string(list(e?.addresses)[0]);
      if (!e || address === undefined || address === '') {
        problems.push(
          problem(
            'error',
            'EndpointSlice',
            slice.namespace,
            slice.name,
            slice.origin,
            `endpoints[${i}].addresses: must hold at least one address; the endpoint is ignored`,
          ),
        );
        return;
      }
      const conditions = record(e.conditions);
      const ref = record(e.targetRef);
      const podRef =
        ref && string(ref.kind) === 'Pod' && string(ref.name)
          ? { namespace: string(ref.namespace) || slice.namespace, name: string(ref.name)! }
          : undefined;
      const pod = podRef ? pods.get(`${podRef.namespace}/${podRef.name}`) : undefined;
      const labels = pod?.labels ?? {};
      const nodeName = string(e.nodeName);
      const locality = endpointLocality(labels, nodeName ? nodes.get(nodeName) : undefined, string(e.zone));
      all.push({
        address,
        port: number,
        ready: conditions?.ready !== false,
        labels,
        locality,
        serviceAccount: pod?.serviceAccount ?? '',
        inMesh: labels[TLS_MODE_LABEL] === TLS_MODE_MESH,
        ...(podRef ? { pod: podRef } : {}),
        ...(nodeName ? { nodeName } : {}),
      });
    });
  }
  all.sort(compareEndpoints);
  return all.filter((e, i) => i === 0 || e.address !== all[i - 1]!.address || e.port !== all[i - 1]!.port);
}

/**
 * What one Service was built from, to reuse it when a later build gets the very same inputs (objects are
 * never modified, so the same object references mean the same content): the MeshService and the problems
 * found while building it.
 */
interface BuiltService {
  readonly inputs: readonly unknown[];
  readonly service: MeshService;
  readonly problems: readonly Problem[];
}

/** Built Services by `namespace/name`: what a build leaves for the next one (build-snapshot.ts). */
export type ServiceMemo = Map<string, BuiltService>;

/** A Pod's info by `namespace/name`. */
interface PodLookup {
  get(key: string): PodInfo | undefined;
}

const podInfos = new WeakMap<object, PodInfo>();

function podInfoOf(pod: Of<'Pod'>): PodInfo {
  const object = record(pod.object);
  if (!object) return podInfo(undefined);
  let info = podInfos.get(object);
  if (!info) podInfos.set(object, (info = podInfo(object as V1Pod)));
  return info;
}

/** Everything a Service's MeshService is built from, as references and strings (compared element by element). */
function serviceInputs(
  o: Of<'Service'>,
  ownSlices: readonly Of<'EndpointSlice'>[],
  pods: ReadonlyMap<string, Of<'Pod'>>,
  nodes: ReadonlyMap<string, Of<'Node'>>,
  domain: string,
): unknown[] {
  const inputs: unknown[] = [domain, o.object, o.origin.file, o.origin.document];
  for (const slice of ownSlices) {
    inputs.push(slice.object, slice.name, slice.origin.file, slice.origin.document);
    for (const ref of sliceRefs(slice)) {
      inputs.push(ref.node ? nodes.get(ref.name)?.object : pods.get(ref.name)?.object);
    }
  }
  return inputs;
}

/** A Node (by name) or a Pod (by `namespace/name`) an endpoint of a slice names. */
type SliceRef = { readonly node: boolean; readonly name: string };

const sliceRefMemo = new WeakMap<object, { readonly namespace: string; readonly refs: readonly SliceRef[] }>();

/**
 * The Nodes and Pods a slice's endpoints name, in endpoint order (each endpoint's Node, then its Pod): what
 * serviceInputs looks up. Memoized per slice object: a build in which Pods changed compares the inputs of
 * every Service, and reading 10,000 endpoints' names again cost 10 ms of it.
 */
function sliceRefs(slice: Of<'EndpointSlice'>): readonly SliceRef[] {
  const object = slice.object as object | undefined;
  const known = object ? sliceRefMemo.get(object) : undefined;
  if (known && known.namespace === slice.namespace) return known.refs;
  const refs: SliceRef[] = [];
  for (const raw of list((slice.object as V1EndpointSlice | undefined)?.endpoints)) {
    const nodeName = string(record(raw)?.nodeName);
    if (nodeName) refs.push({ node: true, name: nodeName });
    const ref = record(record(raw)?.targetRef);
    if (!ref || string(ref.kind) !== 'Pod' || !string(ref.name)) continue;
    refs.push({ node: false, name: `${string(ref.namespace) || slice.namespace}/${string(ref.name)!}` });
  }
  if (object) sliceRefMemo.set(object, { namespace: slice.namespace, refs });
  return refs;
}

function sameInputs(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The problems of the slices without an owner label, per build memo (for the next build's onlyChanged path). */
const ownerlessMemo = new WeakMap<ServiceMemo, readonly Problem[]>();

function bySliceName(a: Of<'EndpointSlice'>, b: Of<'EndpointSlice'>): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

const sliceOwners = new WeakMap<Of<'EndpointSlice'>, string | null>();

/**
 * The Service (`namespace/name`) an EndpointSlice's label names, if any; memoized per slice object (objects
 * are never modified), as every build groups all slices by owner.
 */
export function sliceOwner(slice: Of<'EndpointSlice'>): string | undefined {
  let known = sliceOwners.get(slice);
  if (known === undefined) {
    const owner = stringMap((slice.object as V1EndpointSlice | undefined)?.metadata?.labels)[SERVICE_NAME_LABEL];
    sliceOwners.set(slice, (known = owner === undefined ? null : `${slice.namespace}/${owner}`));
  }
  return known ?? undefined;
}

/**
 * Slices grouped by owning Service (`namespace/name`), each group in name order; with `only`, just the
 * groups of those Services. The slices without an owner go to `ownerless` (in name order), when given.
 */
function groupSlices(
  slices: readonly Of<'EndpointSlice'>[],
  groups: Map<string, Of<'EndpointSlice'>[]>,
  ownerless?: Problem[],
  only?: ReadonlySet<string>,
): void {
  const unowned: Of<'EndpointSlice'>[] = [];
  for (const slice of slices) {
    const key = sliceOwner(slice);
    if (key === undefined) {
      unowned.push(slice);
      continue;
    }
    if (only && !only.has(key)) continue;
    const group = groups.get(key);
    if (group) group.push(slice);
    else groups.set(key, [slice]);
  }
  for (const group of groups.values()) group.sort(bySliceName);
  if (!ownerless) return;
  for (const slice of unowned.sort(bySliceName)) {
    ownerless.push(
      problem(
        'warning',
        'EndpointSlice',
        slice.namespace,
        slice.name,
        slice.origin,
        `metadata.labels: has no ${SERVICE_NAME_LABEL} label, so it belongs to no Service; ignored`,
      ),
    );
  }
}

/** The Pods by key that a build made, by the memo it filled (`memo.next`), for the next build to reuse. */
const podMaps = new WeakMap<ServiceMemo, ReadonlyMap<string, Of<'Pod'>>>();

/**
 * The Services with their ports and endpoints, sorted by FQDN. With `memo`, a Service whose inputs (its
 * object, its slices, the Pods they name) are the very objects of the previous build is that build's
 * MeshService, by identity, with its problems; `memo.next` receives this build's.
 */
export function buildServices(
  services: readonly Of<'Service'>[],
  slices: readonly Of<'EndpointSlice'>[],
  pods: readonly Of<'Pod'>[],
  domain: string,
  problems: Problem[],
  memo?: {
    readonly previous?: ServiceMemo;
    readonly next: ServiceMemo;
    /**
     * The caller knows that only these Services (`namespace/name`) may have other inputs than in the
     * previous build (only EndpointSlices changed, and these are their owners before and after): every
     * other Service with a previous build is taken from it without comparing its inputs.
     */
    readonly onlyChanged?: ReadonlySet<string>;
  },
  nodes: readonly Of<'Node'>[] = [],
): MeshService[] {
  const nodeObjects = new Map(nodes.map((n) => [n.name, n]));
  const topology = nodeTopology(nodes);
  // The Pods by key, made on first use: a build that rebuilds no Service never walks them. When only
  // EndpointSlices changed (`onlyChanged`), the Pods are the previous build's objects: so is its map.
  let podMap = memo?.onlyChanged && memo.previous ? podMaps.get(memo.previous) : undefined;
  if (podMap && memo) podMaps.set(memo.next, podMap);
  const podObjects = (): ReadonlyMap<string, Of<'Pod'>> => {
    if (!podMap) {
      const map = new Map<string, Of<'Pod'>>();
      for (const p of pods) map.set(`${p.namespace}/${p.name}`, p);
      podMap = map;
      if (memo) podMaps.set(memo.next, map);
    }
    return podMap;
  };
  const podIndex: PodLookup = {
    get: (key) => {
      const pod = podObjects().get(key);
      return pod ? podInfoOf(pod) : undefined;
    },
  };

  const slicesByService = new Map<string, Of<'EndpointSlice'>[]>();
  const onlyChanged = memo?.onlyChanged;
  const previousOwnerless = memo?.previous ? ownerlessMemo.get(memo.previous) : undefined;
  // Every other Service is the previous build's (buildSnapshot knows that only slices changed); one that has
  // no previous build (there is none) would need its slices: then group them all.
  const reusable =
    memo !== undefined &&
    onlyChanged !== undefined &&
    services.every(
      (o) => onlyChanged.has(`${o.namespace}/${o.name}`) || memo.previous?.has(`${o.namespace}/${o.name}`),
    );
  if (memo && onlyChanged && previousOwnerless && reusable) {
    // Only slices owned by the Services in `onlyChanged` changed, and none of them lacks the label: the
    // slices without an owner, and so their problems, are the previous build's.
    problems.push(...previousOwnerless);
    ownerlessMemo.set(memo.next, previousOwnerless);
    groupSlices(slices, slicesByService, undefined, onlyChanged);
  } else {
    const ownerless: Problem[] = [];
    groupSlices(slices, slicesByService, ownerless);
    problems.push(...ownerless);
    if (memo) ownerlessMemo.set(memo.next, ownerless);
  }

  const out: MeshService[] = [];
  for (const o of services) {
    const key = `${o.namespace}/${o.name}`;
    const ownSlices = slicesByService.get(key) ?? [];
    const known = memo?.previous?.get(key);
    if (memo?.onlyChanged && known && !memo.onlyChanged.has(key)) {
      problems.push(...known.problems);
      memo.next.set(key, known);
      out.push(known.service);
      continue;
    }
    const inputs = memo ? serviceInputs(o, ownSlices, podObjects(), nodeObjects, domain) : [];
    if (memo && known && sameInputs(known.inputs, inputs)) {
      problems.push(...known.problems);
      memo.next.set(key, known);
      out.push(known.service);
      continue;
    }
    const own: Problem[] = [];
    const service = buildService(o, ownSlices, podIndex, topology, domain, own);
    problems.push(...own);
    memo?.next.set(key, { inputs, service, problems: own });
    out.push(service);
  }
  return out.sort((a, b) => (a.fqdn < b.fqdn ? -1 : a.fqdn > b.fqdn ? 1 : 0));
}

function buildService(
  o: Of<'Service'>,
  ownSlices: readonly Of<'EndpointSlice'>[],
  podIndex: PodLookup,
  nodes: NodeTopology,
  domain: string,
  problems: Problem[],
): MeshService {
  const svc = o.object as V1Service | undefined;
  const spec = record(svc?.spec);
  const drafts = servicePorts(o, problems);
  const ports: MeshServicePort[] = drafts.map((d) => {
    const { protocol, from } = selectProtocol(d.name, d.appProtocol, d.transport);
    return { ...d, protocol, protocolFrom: from, endpoints: portEndpoints(d, ownSlices, podIndex, nodes, problems) };
  });
  const clusterIP = string(spec?.clusterIP);
  const ips = list(spec?.clusterIPs).filter((ip): ip is string => typeof ip === 'string' && ip !== '');
  const headless = clusterIP === 'None' || ips[0] === 'None';
  const clusterIPs = headless ? [] : ips.length > 0 ? ips : clusterIP ? [clusterIP] : [];
  const externalName = string(spec?.externalName);
  const serviceAccounts = [
    ...new Set(ports.flatMap((p) => p.endpoints.map((e) => e.serviceAccount)).filter((sa) => sa !== '')),
  ].sort();
  const selector = stringMap(spec?.selector);
  return {
    fqdn: serviceFqdn(o.name, o.namespace, domain),
    name: o.name,
    namespace: o.namespace,
    labels: sortedRecord(stringMap(svc?.metadata?.labels)),
    ...(Object.keys(selector).length > 0 ? { selector } : {}),
    clusterIPs,
    headless,
    ...(externalName ? { externalName } : {}),
    exportTo: parseExportToAnnotation(stringMap(svc?.metadata?.annotations)[SERVICE_EXPORT_TO_ANNOTATION], o.namespace),
    ports,
    serviceAccounts,
    origin: locationOf(o.origin),
  };
}
