// The mesh model: one immutable, versioned snapshot of services, endpoints and routing policy
// (design.md §1). Built by `buildSnapshot` (build-snapshot.ts) from the objects of a source; read by the
// translator through the lookups in lookup.ts. Every list is sorted, so equal inputs give deep-equal
// snapshots and the same `hash`. The rules behind each field are in README.md beside this file.
import type {
  AuthorizationAction,
  AuthorizationPolicy,
  AuthorizationRule,
  DestinationRule,
  DestinationRuleSpec,
  PeerAuthentication,
  PeerMtlsMode,
  ServiceEntry,
  ServiceEntryLocation,
  ServiceEntryResolution,
  ServiceEntrySpec,
  Sidecar,
  Subset,
  TrafficPolicy,
  VirtualService,
  VirtualServiceSpec,
} from '../../crds/types.js';
import type { Location, PolicyKind, Problem } from './objects.js';
import type { Protocol, ProtocolSource } from './protocol.js';
import type { ExportTo } from './visibility.js';
import type { MeshSecret } from './secrets.js';

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** A namespace/name reference. */
export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

/** One address behind one Service port. */
export interface MeshEndpoint {
  readonly address: string;
  /** The port on the endpoint: the Service port's target port, resolved by the EndpointSlice. */
  readonly port: number;
  /** EndpointSlice `conditions.ready`; a missing condition counts as ready (Kubernetes says so). */
  readonly ready: boolean;
  /** The labels of the Pod named by `targetRef` (EndpointSlices carry none); {} without a Pod. */
  readonly labels: Readonly<Record<string, string>>;
  readonly locality: Locality;
  /** The Pod's service account (`default` if the Pod names none); '' when there is no Pod. */
  readonly serviceAccount: string;
  /** The Pod carries `trellis.dev/tlsMode: mesh` (set by the injector): it has a sidecar and takes mTLS. */
  readonly inMesh: boolean;
  /** The Pod behind the address, from `targetRef`. */
  readonly pod?: ObjectRef;
  readonly nodeName?: string;
  /** A ServiceEntry endpoint's relative weight (absent: 1, as a Kubernetes endpoint). */
  readonly weight?: number;
}

export interface MeshServicePort {
  /** '' for an unnamed port. */
  readonly name: string;
  readonly port: number;
  /** The Service port's `protocol`: TCP (default), UDP or SCTP. */
  readonly transport: string;
  /** As written (defaults to `port`); a name is resolved per endpoint, see `MeshEndpoint.port`. */
  readonly targetPort: number | string;
  readonly appProtocol?: string;
  readonly protocol: Protocol;
  readonly protocolFrom: ProtocolSource;
  /** Sorted by address, then port; one entry per address and port. */
  readonly endpoints: readonly MeshEndpoint[];
}

export interface MeshService {
  /** `<name>.<namespace>.svc.<domain>`. */
  readonly fqdn: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * `spec.selector`, sorted; absent when the Service selects no Pods (no selector or an empty one, a
   * ServiceEntry host). A sidecar whose Pod no EndpointSlice lists yet serves the ports of the Services
   * whose selector its labels match (translate/inbound-ports.ts).
   */
  readonly selector?: Readonly<Record<string, string>>;
  /** `spec.clusterIPs` (or `clusterIP`); [] when headless or unset. */
  readonly clusterIPs: readonly string[];
  /** `clusterIP: None`. */
  readonly headless: boolean;
  /** `spec.externalName` of an ExternalName Service. */
  readonly externalName?: string;
  /** From the annotation `networking.trellis.dev/exportTo`; `*` when absent. */
  readonly exportTo: ExportTo;
  /** Sorted by port, then transport. */
  readonly ports: readonly MeshServicePort[];
  /** The service accounts of the Pods behind any port (the SANs of a MESH_MUTUAL cluster), sorted. */
  readonly serviceAccounts: readonly string[];
  /** File and document (FileSource); `{}` for Kubernetes objects (the resourceVersion is in the store). */
  readonly origin: Location;
  /** Present when the service is a ServiceEntry host, not a Kubernetes Service (service-entries.ts). */
  readonly serviceEntry?: ServiceEntryInfo;
}

/** What a ServiceEntry adds to the service of one of its hosts. */
export interface ServiceEntryInfo {
  /** The ServiceEntry. */
  readonly from: ObjectRef;
  readonly resolution: ServiceEntryResolution;
  readonly location: ServiceEntryLocation;
  /** True for MESH_EXTERNAL: outside the mesh, never mesh mutual TLS. */
  readonly external: boolean;
  /** `spec.addresses` as written (IPs and CIDR blocks); the IPs are also the service's `clusterIPs`. */
  readonly addresses: readonly string[];
  /**
   * How many endpoints the entry lists: part of the service's definition (its key leaves endpoint lists
   * out), so what depends on it (proxyless gRPC takes DNS hosts of one name only) follows a change.
   */
  readonly endpointCount: number;
}

export interface MeshNamespace {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Label `trellis.dev/inject=enabled`. */
  readonly injection: boolean;
  /** File and document (FileSource); `{}` for Kubernetes objects (the resourceVersion is in the store). */
  readonly origin: Location;
}

/** What every accepted resource of crds/ carries: its identity and precedence. */
export interface AcceptedHeader {
  readonly namespace: string;
  readonly name: string;
  readonly generation?: number;
  /** RFC 3339, as written; decides precedence (oldest first). */
  readonly creationTimestamp?: string;
  /** File and document (FileSource); `{}` for Kubernetes objects (the resourceVersion is in the store). */
  readonly origin: Location;
  /**
   * True when the object in the source is now invalid and this is its last accepted version, kept
   * (design.md §5.3: nothing already accepted is lost).
   */
  readonly stale: boolean;
}

interface AcceptedResource extends AcceptedHeader {
  readonly exportTo: ExportTo;
}

export interface AcceptedVirtualService extends AcceptedResource {
  /** The hosts, qualified (`reviews` → `reviews.<ns>.svc.<domain>`), unique, sorted. */
  readonly hosts: readonly string[];
  /**
   * The spec as accepted, with `hosts` and every destination and mirror host qualified in the
   * VirtualService's namespace, so a translator can name clusters without resolving anything.
   */
  readonly spec: VirtualServiceSpec;
  /** The accepted object as written: spec, and metadata without resourceVersion, labels, annotations. */
  readonly resource: VirtualService;
}

export interface AcceptedDestinationRule extends AcceptedResource {
  /** `spec.host`, qualified. */
  readonly host: string;
  /** The spec as accepted, `host` qualified. */
  readonly spec: DestinationRuleSpec;
  readonly resource: DestinationRule;
}

/** Inbound mutual TLS once UNSET is resolved. */
export type ResolvedMtlsMode = 'DISABLE' | 'PERMISSIVE' | 'STRICT';

/** A PeerAuthentication as accepted (README "PeerAuthentication"). */
export interface AcceptedPeerAuthentication extends AcceptedHeader {
  /**
   * `spec.selector.matchLabels`, keys sorted; absent when the policy has no selector or an empty one
   * (it is then the namespace's policy, or the mesh's in the root namespace).
   */
  readonly selector?: Readonly<Record<string, string>>;
  /** `spec.mtls.mode`; UNSET when not written. */
  readonly mode: PeerMtlsMode;
  /** `spec.portLevelMtls`, by container (target) port, sorted by port; UNSET entries included. */
  readonly portLevel: readonly { readonly port: number; readonly mode: PeerMtlsMode }[];
  readonly resource: PeerAuthentication;
}

/** A ServiceEntry as accepted (README "ServiceEntry"). */
export interface AcceptedServiceEntry extends AcceptedResource {
  /** `spec.hosts`, lower case, without a trailing dot, unique, sorted (never qualified: they are FQDNs). */
  readonly hosts: readonly string[];
  readonly spec: ServiceEntrySpec;
  readonly resource: ServiceEntry;
}

/** An AuthorizationPolicy as accepted (README "AuthorizationPolicy"). */
export interface AcceptedAuthorizationPolicy extends AcceptedHeader {
  /** `spec.selector.matchLabels`, keys sorted; absent when there is none or it is empty (the whole namespace, or the mesh in the root namespace). */
  readonly selector?: Readonly<Record<string, string>>;
  /** `spec.action`; ALLOW when not written. */
  readonly action: AuthorizationAction;
  /** `spec.rules`; [] when not written. */
  readonly rules: readonly AuthorizationRule[];
  readonly resource: AuthorizationPolicy;
}

/** One egress host of a Sidecar, `namespace/dnsName` split (sidecar-scope.ts). */
export interface SidecarEgressHost {
  /** `*` (any), `.` (the Sidecar's namespace; for a mesh default the proxy's), `~` (none) or a name. */
  readonly namespace: string;
  /** `*`, `*.suffix` or a host name. */
  readonly dnsName: string;
}

/** A Sidecar as accepted (README "Sidecar"). */
export interface AcceptedSidecar extends AcceptedHeader {
  /** `spec.workloadSelector.labels`, keys sorted; absent for the namespace's (root namespace: the mesh's) default. */
  readonly selector?: Readonly<Record<string, string>>;
  /** The hosts of every egress listener, in order; every host (`*` in both parts) when it has no egress, as Istio. */
  readonly egressHosts: readonly SidecarEgressHost[];
  /** `spec.outboundTrafficPolicy.mode`; absent: the mesh config's. */
  readonly outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  readonly resource: Sidecar;
}

/** The PeerAuthentications of one namespace, by level. */
export interface NamespacePeerAuthentications {
  /** The oldest policy without a selector (in the root namespace: the mesh policy). */
  readonly namespacePolicy?: AcceptedPeerAuthentication;
  /** The policies with a selector, in precedence order (the first that matches a workload wins). */
  readonly workloadPolicies: readonly AcceptedPeerAuthentication[];
}

/**
 * The DestinationRules of one namespace for one host, merged (envoy-translation.md §1.4): subsets
 * appended in precedence order with later duplicates dropped; the top-level trafficPolicy of the first
 * that has one.
 */
export interface MergedDestinationRule {
  readonly host: string;
  /** The namespace the merged rules live in (Istio merges only within a namespace). */
  readonly namespace: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets: readonly Subset[];
  /** Union of the members' exportTo. */
  readonly exportTo: ExportTo;
  /** The merged rules, in precedence order. */
  readonly from: readonly ObjectRef[];
  /**
   * `spec.workloadSelector.matchLabels` (keys sorted) shared by the merged rules: they apply only to the
   * proxies of `namespace` whose labels include these (lookup.ts destinationRuleFor). Absent: no selector.
   */
  readonly selector?: Readonly<Record<string, string>>;
}

/** Everything that routes or shapes traffic to one host. */
export interface HostPolicy {
  /** A Service FQDN, or a host a VirtualService or DestinationRule names that is not a Service. */
  readonly host: string;
  /** The Service, when the host is one. */
  readonly service?: MeshService;
  /** Every accepted VirtualService naming the host, in precedence order (oldest first). */
  readonly virtualServices: readonly AcceptedVirtualService[];
  /** One merged rule per namespace, sorted by namespace. */
  readonly destinationRules: readonly MergedDestinationRule[];
}

export type StatusReason = 'Accepted' | 'AcceptedWithWarnings' | 'Invalid' | 'Conflicted';

export interface StatusIssue {
  readonly severity: 'error' | 'warning';
  /** The field, e.g. `spec.http[0].route[1].weight`; `spec.hosts[0]` for conflicts. */
  readonly path: string;
  readonly message: string;
}

/** The `Accepted` condition of one resource of crds/ (written to `status` by KubeSource). */
export interface ResourceStatus {
  readonly kind: PolicyKind;
  readonly namespace: string;
  readonly name: string;
  /** `metadata.generation` of the object judged (for `observedGeneration`). */
  readonly generation?: number;
  /** File and document (FileSource); `{}` for Kubernetes objects (the resourceVersion is in the store). */
  readonly origin: Location;
  readonly accepted: boolean;
  readonly reason: StatusReason;
  readonly message: string;
  readonly issues: readonly StatusIssue[];
}

/** One Service port backed by one endpoint: what a proxy serves inbound. */
export interface ServiceInstance {
  readonly service: MeshService;
  readonly port: MeshServicePort;
  readonly endpoint: MeshEndpoint;
}

/**
 * A Kubernetes Node's locality, read from its topology labels as an endpoint's is (services.ts
 * `endpointLocality`): where a proxy runs when its node metadata names the Node (`NODE_NAME`, set by the
 * injector from the Pod's `spec.nodeName`) and announces no locality of its own.
 */
export interface MeshNode {
  readonly name: string;
  readonly locality: Locality;
}

/** Lookup tables derived from the lists (not part of `hash`). */
export interface MeshIndex {
  readonly namespaces: ReadonlyMap<string, MeshNamespace>;
  readonly servicesByFqdn: ReadonlyMap<string, MeshService>;
  readonly hosts: ReadonlyMap<string, HostPolicy>;
  /** The hosts that are wildcards (`*.example.com`, `*`), most specific (longest) first. */
  readonly wildcardHosts: readonly HostPolicy[];
  /** By `<namespace>/<pod>`. */
  readonly instancesByPod: ReadonlyMap<string, readonly ServiceInstance[]>;
  readonly instancesByAddress: ReadonlyMap<string, readonly ServiceInstance[]>;
  /** By namespace; namespaces without a PeerAuthentication are absent. */
  readonly peerAuthentications: ReadonlyMap<string, NamespacePeerAuthentications>;
  /** `secrets` by namespace, then name. */
  readonly secrets: ReadonlyMap<string, ReadonlyMap<string, MeshSecret>>;
  /** `nodes` by name. */
  readonly nodes: ReadonlyMap<string, MeshNode>;
}

export interface MeshSnapshot {
  /** Increases by one with every snapshot a source publishes. */
  readonly version: number;
  /**
   * sha256 of everything below except `index`: equal content, equal hash, whatever the version. The
   * snapshot holds only what translation and statuses read (no resourceVersion, no labels of routing
   * resources), so a write that changes nothing of that leaves the hash alone (README "What the hash covers").
   */
  readonly hash: string;
  readonly domain: string;
  /**
   * DestinationRules here apply mesh-wide (after the client's and the service's namespace); a
   * PeerAuthentication here without a selector is the mesh's.
   */
  readonly rootNamespace: string;
  /** Sorted by name. */
  readonly namespaces: readonly MeshNamespace[];
  /** Sorted by FQDN. */
  readonly services: readonly MeshService[];
  /** Every accepted VirtualService (kept stale versions included), in precedence order. */
  readonly virtualServices: readonly AcceptedVirtualService[];
  /** Every accepted DestinationRule, in precedence order. */
  readonly destinationRules: readonly AcceptedDestinationRule[];
  /** Every accepted PeerAuthentication (kept stale versions included), in precedence order. */
  readonly peerAuthentications: readonly AcceptedPeerAuthentication[];
  /** Every accepted AuthorizationPolicy (kept stale versions included), in precedence order. */
  readonly authorizationPolicies: readonly AcceptedAuthorizationPolicy[];
  /** Every accepted ServiceEntry (kept stale versions included), in precedence order; their hosts are in `services`. */
  readonly serviceEntries: readonly AcceptedServiceEntry[];
  /** Every accepted Sidecar (kept stale versions included), in precedence order. */
  readonly sidecars: readonly AcceptedSidecar[];
  /** Sorted by host. */
  readonly hosts: readonly HostPolicy[];
  /** The Nodes with a topology label (a region, zone or sub-zone), sorted by name. */
  readonly nodes: readonly MeshNode[];
  /**
   * The Secrets some accepted DestinationRule's `tls.credentialName` names (secrets.ts), sorted by namespace
   * and name; private keys redacted in any serialization.
   */
  readonly secrets: readonly MeshSecret[];
  /** One per VirtualService, DestinationRule and PeerAuthentication in the source, sorted by kind, namespace, name. */
  readonly statuses: readonly ResourceStatus[];
  /** Source, object and validation problems, sorted. */
  readonly problems: readonly Problem[];
  readonly index: MeshIndex;
}
