// What of a Kubernetes object the mesh model reads: the object KubeSource puts into the ObjectStore, and
// the only thing it compares to decide whether an event is worth a rebuild (issue 14, the Kubernetes
// path). An event that changes nothing here (the echo of a status write, a new resourceVersion, a
// managedFields or status change, a label on a VirtualService) leaves the store alone: no rebuild, no
// snapshot, no push.
//
// Kept: every kind's `spec` (and an EndpointSlice's top level: endpoints, ports, addressType), name,
// namespace, uid, creationTimestamp (the oldest VirtualService wins); Service, Pod and Namespace labels
// and annotations (endpoint labels, subsets, selectors, exportTo); `metadata.generation` of
// VirtualService, DestinationRule and PeerAuthentication (their status names the generation judged).
// Dropped: `metadata.resourceVersion` and `managedFields` (every write), `status` (the model never reads
// one; the status writer reads the live object from the informer), `generation` of the core kinds, and the
// labels and annotations of the routing kinds (model/README.md "What the hash covers": nothing reads them).
// Whoever makes the model read another field adds it here.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../model/canonical.js';
import { isPolicyKind, type MeshKind, type MeshObject } from '../model/objects.js';

type Json = Record<string, unknown>;

/** The Node labels the model reads (model/services.ts: an endpoint's locality). */
const NODE_TOPOLOGY_LABELS: ReadonlySet<string> = new Set([
  'topology.kubernetes.io/region',
  'topology.kubernetes.io/zone',
  'topology.istio.io/subzone',
  'failure-domain.beta.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'kubernetes.io/hostname',
]);

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The model's view of `object` (a new object; the input is not touched), with kind and apiVersion set
 * (list items of built-in types carry none). Undefined when it has no name.
 */
export function modelInput(kind: MeshKind, apiVersion: string, object: unknown): MeshObject | undefined {
  if (!isRecord(object) || !isRecord(object.metadata)) return undefined;
  const metadata = object.metadata;
  const name = metadata.name;
  if (typeof name !== 'string' || name === '') return undefined;
  const namespace =
    kind === 'Namespace' || kind === 'Node' ? '' : typeof metadata.namespace === 'string' ? metadata.namespace : '';
  // A Node: only its topology labels (endpoint localities, model/services.ts). Its status, heartbeats,
  // annotations and other labels change often and are never read.
  if (kind === 'Node') {
    const topology = Object.fromEntries(
      Object.entries(isRecord(metadata.labels) ? metadata.labels : {}).filter(([k]) => NODE_TOPOLOGY_LABELS.has(k)),
    );
    return {
      kind,
      namespace,
      name,
      object: { apiVersion, kind, metadata: { name, labels: topology } },
      origin: {},
    } as MeshObject;
  }
  const {
    resourceVersion: _rv,
    managedFields: _mf,
    generation,
    labels,
    annotations,
    selfLink: _sl,
    ...kept
  } = metadata;
  const policy = isPolicyKind(kind);
  const meta: Json = {
    ...kept,
    ...(policy ? (generation !== undefined ? { generation } : {}) : { labels, annotations }),
  };
  const { status: _status, metadata: _m, kind: _k, apiVersion: _a, ...rest } = object;
  return {
    kind,
    namespace,
    name,
    object: { apiVersion, kind, metadata: meta, ...rest },
    origin: {},
  } as MeshObject;
}

/** A digest of what the model reads of an object: equal digests, nothing to rebuild. */
export function modelDigest(input: MeshObject): string {
  return createHash('sha1').update(canonicalJson(input.object)).digest('base64');
}
