// The objects the mesh is built from, as sources hand them over (design.md §1: "Sources turn Kubernetes
// objects into events"). The model reads nothing else. Sources key each object by kind/namespace/name and
// say where it came from; nothing downstream knows which source is running.
//
// The core kinds are typed with @kubernetes/client-node's classes (type-only imports: that package is
// never loaded by the model), but a FileSource object is whatever the YAML said, so the model checks every
// field it reads and reports what it cannot use instead of trusting these types.
import type { V1EndpointSlice, V1Namespace, V1Node, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';

export const MESH_KINDS = [
  'Namespace',
  'Service',
  'EndpointSlice',
  'Pod',
  'Node',
  'Secret',
  'VirtualService',
  'DestinationRule',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'ServiceEntry',
  'Sidecar',
] as const;
export type MeshKind = (typeof MESH_KINDS)[number];

export function isMeshKind(kind: unknown): kind is MeshKind {
  return typeof kind === 'string' && (MESH_KINDS as readonly string[]).includes(kind);
}

/** The kinds of crds/ (judged by crds/validator.ts): routing, mutual-TLS and authorization policy. */
export type PolicyKind =
  'VirtualService' | 'DestinationRule' | 'PeerAuthentication' | 'AuthorizationPolicy' | 'ServiceEntry' | 'Sidecar';

export function isPolicyKind(kind: unknown): kind is PolicyKind {
  return (
    kind === 'VirtualService' ||
    kind === 'DestinationRule' ||
    kind === 'PeerAuthentication' ||
    kind === 'AuthorizationPolicy' ||
    kind === 'ServiceEntry' ||
    kind === 'Sidecar'
  );
}

/** The apiVersion each core kind must carry (the kinds of crds/ are checked by the validator). */
export const CORE_API_VERSIONS: Readonly<Record<Exclude<MeshKind, PolicyKind>, string>> = {
  Namespace: 'v1',
  Service: 'v1',
  Pod: 'v1',
  Node: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  Secret: 'v1',
};

/** Where an object came from: file and document (FileSource), resourceVersion (KubeSource). */
export interface Origin {
  readonly file?: string;
  /** 0-based index of the YAML document in `file` (as crds/validator.ts's Origin; people read it 1-based). */
  readonly document?: number;
  /**
   * The object's `metadata.resourceVersion` (KubeSource). The store compares objects by it; the model
   * never keeps it (see `Location`): read the current one from the store.
   */
  readonly resourceVersion?: string;
}

/**
 * Where an object is, as the snapshot keeps it: file and document, never the resourceVersion. A
 * resourceVersion changes with every write (a status the control plane writes itself, a label), none of
 * which changes translation or statuses; in the snapshot it would change the hash and publish a snapshot
 * that regenerates every proxy for nothing (README.md "What the hash covers").
 */
export type Location = Pick<Origin, 'file' | 'document'>;

/** The `Location` of an origin: its file and document, without resourceVersion. */
export function locationOf(origin: Origin | undefined): Location {
  return {
    ...(origin?.file !== undefined ? { file: origin.file } : {}),
    ...(origin?.document !== undefined ? { document: origin.document } : {}),
  };
}

interface Keyed<K extends MeshKind, T> {
  readonly kind: K;
  /** '' for Namespace (cluster-scoped). */
  readonly namespace: string;
  readonly name: string;
  readonly object: T;
  readonly origin: Origin;
}

/**
 * One object of the store. VirtualService, DestinationRule and PeerAuthentication are `unknown` until the
 * validator has read them; the core kinds carry client-node's types (but see the note at the top of this
 * file).
 */
export type MeshObject =
  | Keyed<'Namespace', V1Namespace>
  | Keyed<'Service', V1Service>
  | Keyed<'EndpointSlice', V1EndpointSlice>
  | Keyed<'Pod', V1Pod>
  | Keyed<'Node', V1Node>
  | Keyed<'Secret', V1Secret>
  | Keyed<'VirtualService', unknown>
  | Keyed<'DestinationRule', unknown>
  | Keyed<'PeerAuthentication', unknown>
  | Keyed<'AuthorizationPolicy', unknown>
  | Keyed<'ServiceEntry', unknown>
  | Keyed<'Sidecar', unknown>;

/** `kind/namespace/name`, the identity of an object in the store and the model. */
export function objectKey(kind: MeshKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export function keyOf(object: Pick<MeshObject, 'kind' | 'namespace' | 'name'>): string {
  return objectKey(object.kind, object.namespace, object.name);
}

/**
 * Where an object is, for people: `file.yaml#2` (documents numbered from 1), `file.yaml`, or '' (not
 * from a file). The same as `formatOrigin` of crds/validator.ts, so that the model, `trellis validate`
 * and the webhook word a place alike.
 */
export function formatOrigin(origin: Origin | undefined): string {
  if (!origin || origin.file === undefined) return '';
  return origin.document !== undefined ? `${origin.file}#${origin.document + 1}` : origin.file;
}

/** `file.yaml#2: text`, or `text` when the origin names no file. */
export function located(origin: Origin | undefined, text: string): string {
  const where = formatOrigin(origin);
  return where ? `${where}: ${text}` : text;
}

/** Something wrong with the input, found by a source or by the model. */
export interface Problem {
  readonly severity: 'error' | 'warning' | 'info';
  /** The object the problem is about, when there is one. */
  readonly object?: { readonly kind: string; readonly namespace: string; readonly name: string };
  /** The file and document; in a snapshot never a resourceVersion. */
  readonly origin?: Location;
  /**
   * Complete on its own: `[file.yaml#2: ][warning: ]Kind ns/name: field: what` for an object (the format
   * of crds/validator.ts formatIssue), `file.yaml#2: what` for a document.
   */
  readonly message: string;
}
