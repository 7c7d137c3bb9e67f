// `trellis describe pod|service NAME.NS`: which VirtualService, DestinationRule and PeerAuthentication
// apply, the subsets and their endpoints, the mutual-TLS modes, computed from a snapshot by the model's own
// lookups (lookup.ts, peer-authentication.ts): the same answers the translator gets. Pure; the proxies'
// ACK state is added by the caller (inspector.ts).
import type { HTTPMatchRequest, HTTPRoute, StringMatch } from '../../crds/types.js';
import {
  destinationRuleFor,
  endpointsFor,
  instancesOfPod,
  selectEndpoints,
  virtualServiceFor,
} from '../model/lookup.js';
import { destinationMtls, portMtls, workloadMtls } from '../model/peer-authentication.js';
import { scopeOf, type SidecarLevel } from '../model/sidecar-scope.js';
import type {
  AcceptedVirtualService,
  MeshEndpoint,
  MeshService,
  MeshSnapshot,
  ObjectRef,
  ResolvedMtlsMode,
  StatusReason,
} from '../model/snapshot.js';
import type { MeshConfig } from '../translate/context.js';
import { buildLoadAssignments } from '../translate/endpoints.js';
import { generateResources } from '../translate/generator.js';
import { sidecarProxyInfo, type ProxyInfo } from '../xds/node.js';
import { isVisibleTo } from '../model/visibility.js';

export interface ObjectSummary {
  readonly kind: 'VirtualService' | 'DestinationRule' | 'PeerAuthentication' | 'Sidecar';
  readonly namespace: string;
  readonly name: string;
  /** Its Accepted condition ('' when the snapshot has no status for it). */
  readonly reason: StatusReason | '';
  readonly message: string;
  /** The last accepted version, kept while the object in the source is invalid. */
  readonly stale: boolean;
}

export interface EndpointSummary {
  readonly address: string;
  readonly port: number;
  readonly ready: boolean;
  /** `name.namespace` of the Pod behind it, when known. */
  readonly pod?: string;
}

export interface PortSummary {
  readonly port: number;
  readonly name: string;
  readonly protocol: string;
  readonly targetPort: string;
  /** What a client can rely on (every endpoint's inbound mode; MIXED when they differ). */
  readonly mtls: ResolvedMtlsMode | 'MIXED';
  readonly endpoints: readonly EndpointSummary[];
}

export interface SubsetSummary {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The subset's endpoints per Service port. */
  readonly endpoints: readonly { readonly port: number; readonly endpoints: readonly EndpointSummary[] }[];
  /** pod describe: whether the Pod's labels select it. */
  readonly matchesPod?: boolean;
}

export interface ServiceDescription {
  readonly host: string;
  readonly namespace: string;
  readonly name: string;
  /** The namespace whose clients' view this is (lookups depend on the client's namespace). */
  readonly viewedFrom: string;
  readonly ports: readonly PortSummary[];
  /** The VirtualService that routes the host for clients in `viewedFrom` (the oldest visible one). */
  readonly virtualService?: ObjectSummary & { readonly routes: readonly string[] };
  /** Other VirtualServices naming the host, with why they do not apply there. */
  readonly otherVirtualServices: readonly (ObjectSummary & { readonly why: string })[];
  /** The merged DestinationRule that applies for clients in `viewedFrom`. */
  readonly destinationRule?: {
    readonly namespace: string;
    readonly from: readonly ObjectSummary[];
    readonly trafficPolicy?: unknown;
    readonly subsets: readonly SubsetSummary[];
  };
}

export interface WorkloadMtlsSummary {
  readonly mode: ResolvedMtlsMode;
  readonly ports: readonly { readonly port: number; readonly mode: ResolvedMtlsMode }[];
  /** The deciding PeerAuthentications, most specific first; [] when the mesh config decides. */
  readonly from: readonly ObjectSummary[];
  /** `mesh config` when no PeerAuthentication decides. */
  readonly decidedBy: string;
}

/** pod: the Services its proxy's outbound config holds, and why (model/sidecar-scope.ts). */
export interface ScopeSummary {
  /** `none`: no Sidecar applies. */
  readonly level: SidecarLevel;
  readonly sidecar?: ObjectSummary;
  /** Mesh config `scoping`. */
  readonly scoping: 'explicit' | 'automatic';
  /** Nothing narrows it: every Service visible from the namespace. */
  readonly all: boolean;
  /** Where traffic outside the scope goes (the Sidecar's, else the mesh config's). */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** The Services in scope (all visible ones when `all`), each with why it is there. */
  readonly services: readonly { readonly fqdn: string; readonly reasons: readonly string[] }[];
}

export interface Description {
  readonly kind: 'pod' | 'service';
  readonly namespace: string;
  readonly name: string;
  /** pod: the labels used (Pod, else its endpoints, else its proxy's). */
  readonly labels?: Readonly<Record<string, string>>;
  /** pod: its inbound mutual TLS. */
  readonly mtls?: WorkloadMtlsSummary;
  /** pod: the scope of its proxy's outbound config. */
  readonly scope?: ScopeSummary;
  /** pod: the Services it serves; service: the one Service. */
  readonly services: readonly ServiceDescription[];
  /**
   * pod: what translation left out of its proxy's config and why (a listener or virtual host another Service
   * already holds, a route with no weighted destination…), as `generateResources` notes them; [] when nothing.
   */
  readonly leftOut?: readonly string[];
  /** The node ids of the proxies concerned: the Pod's, or those of the Service's Pods. */
  readonly proxyIds: readonly string[];
  readonly snapshotVersion: number;
}

export class DescribeError extends Error {}

function summary(snapshot: MeshSnapshot, kind: ObjectSummary['kind'], ref: ObjectRef, stale = false): ObjectSummary {
  const status = snapshot.statuses.find((s) => s.kind === kind && s.namespace === ref.namespace && s.name === ref.name);
  return {
    kind,
    namespace: ref.namespace,
    name: ref.name,
    reason: status?.reason ?? '',
    message: status?.message ?? '',
    stale,
  };
}

function endpointSummary(e: MeshEndpoint): EndpointSummary {
  return {
    address: e.address,
    port: e.port,
    ready: e.ready,
    ...(e.pod ? { pod: `${e.pod.name}.${e.pod.namespace}` } : {}),
  };
}

function stringMatch(what: string, m: StringMatch | undefined): string[] {
  if (!m) return [];
  if (m.exact !== undefined) return [`${what}=${m.exact}`];
  if (m.prefix !== undefined) return [`${what} prefix ${m.prefix}`];
  if (m.regex !== undefined) return [`${what}~${m.regex}`];
  return [`${what} present`];
}

function matchText(m: HTTPMatchRequest): string {
  const parts = [
    ...stringMatch('uri', m.uri),
    ...stringMatch('method', m.method),
    ...stringMatch('authority', m.authority),
    ...Object.entries(m.headers ?? {}).flatMap(([h, v]) => stringMatch(`header ${h}`, v)),
    ...(m.port !== undefined ? [`port ${m.port}`] : []),
    ...(m.sourceLabels
      ? [
          `source ${Object.entries(m.sourceLabels)
            .map(([k, v]) => `${k}=${v}`)
            .join(',')}`,
        ]
      : []),
    ...(m.sourceNamespace ? [`source namespace ${m.sourceNamespace}`] : []),
  ];
  return parts.length > 0 ? parts.join(' & ') : '*';
}

/**
 * One line per HTTP route: `match -> destination(s)`, in order (the first match wins); a root's delegate
 * routes are listed merged, and a last line per delegation names the delegate. Mirrors, redirects and
 * direct responses are marked: proxyless gRPC does not get them (grpc-js neither mirrors nor answers itself).
 */
export function routeSummaries(vs: AcceptedVirtualService): string[] {
  const http = (vs.spec.http ?? []).map((r: HTTPRoute) => {
    const when = r.match && r.match.length > 0 ? r.match.map(matchText).join(' | ') : '*';
    const mirrors = [...(r.mirror ? [r.mirror.host] : []), ...(r.mirrors ?? []).map((m) => m.destination.host)];
    const to = r.redirect
      ? 'redirect (not for proxyless gRPC)'
      : r.directResponse
        ? `direct response ${r.directResponse.status} (not for proxyless gRPC)`
        : (r.route ?? [])
            .map((d) => {
              const dest = `${d.destination.host}${d.destination.subset ? `|${d.destination.subset}` : ''}${d.destination.port?.number !== undefined ? `:${d.destination.port.number}` : ''}`;
              return (r.route ?? []).length > 1 || d.weight !== undefined ? `${dest} ${d.weight ?? 0}%` : dest;
            })
            .join(', ');
    const extras = [
      r.timeout ? `timeout ${r.timeout}` : '',
      r.retries ? `retries ${r.retries.attempts ?? 0}` : '',
      r.fault ? 'fault' : '',
      mirrors.length > 0 ? `mirror ${mirrors.join(', ')} (not by proxyless gRPC)` : '',
    ].filter((x) => x !== '');
    return `${when} -> ${to}${extras.length > 0 ? ` (${extras.join(', ')})` : ''}`;
  });
  const delegations = (vs.resource.spec.http ?? []).flatMap((r, i) =>
    r.delegate
      ? [
          `http[${i}] delegates to VirtualService ${r.delegate.namespace ?? vs.namespace}/${r.delegate.name} (merged above)`,
        ]
      : [],
  );
  const tcp = (vs.spec.tcp ?? []).map((r) => `tcp -> ${(r.route ?? []).map((d) => d.destination.host).join(', ')}`);
  return [...http, ...tcp, ...delegations];
}

function describeService(
  snapshot: MeshSnapshot,
  mesh: MeshConfig,
  service: MeshService,
  viewedFrom: string,
  podLabels?: Readonly<Record<string, string>>,
): ServiceDescription {
  const policy = snapshot.index.hosts.get(service.fqdn);
  const vs = virtualServiceFor(snapshot, service.fqdn, viewedFrom);
  const rule = destinationRuleFor(snapshot, service.fqdn, viewedFrom);
  const ports = service.ports.filter((p) => p.transport !== 'UDP');
  return {
    host: service.fqdn,
    namespace: service.namespace,
    name: service.name,
    viewedFrom,
    ports: ports.map((p) => ({
      port: p.port,
      name: p.name,
      protocol: p.protocol,
      targetPort: String(p.targetPort),
      mtls: destinationMtls(snapshot, service, p, mesh.mtlsMode),
      endpoints: p.endpoints.map(endpointSummary),
    })),
    ...(vs
      ? { virtualService: { ...summary(snapshot, 'VirtualService', vs, vs.stale), routes: routeSummaries(vs) } }
      : {}),
    otherVirtualServices: (policy?.virtualServices ?? [])
      .filter((other) => other !== vs)
      .map((other) => ({
        ...summary(snapshot, 'VirtualService', other, other.stale),
        why: isVisibleTo(other.exportTo, viewedFrom)
          ? `the older VirtualService ${vs?.namespace}/${vs?.name} wins the host`
          : `not exported to namespace ${viewedFrom}`,
      })),
    ...(rule
      ? {
          destinationRule: {
            namespace: rule.namespace,
            from: rule.from.map((r) => {
              const accepted = snapshot.destinationRules.find((d) => d.namespace === r.namespace && d.name === r.name);
              return summary(snapshot, 'DestinationRule', r, accepted?.stale ?? false);
            }),
            ...(rule.trafficPolicy ? { trafficPolicy: rule.trafficPolicy } : {}),
            subsets: rule.subsets.map((s) => ({
              name: s.name,
              labels: s.labels ?? {},
              endpoints: ports.map((p) => ({
                port: p.port,
                endpoints: endpointsFor(snapshot, service.fqdn, p.port, s.name, viewedFrom).map(endpointSummary),
              })),
              ...(podLabels
                ? { matchesPod: selectEndpoints([{ labels: podLabels } as MeshEndpoint], s.labels).length === 1 }
                : {}),
            })),
          },
        }
      : {}),
  };
}

function mtlsSummary(
  snapshot: MeshSnapshot,
  mesh: MeshConfig,
  namespace: string,
  labels: Readonly<Record<string, string>>,
  ports: readonly number[],
): WorkloadMtlsSummary {
  const w = workloadMtls(snapshot, namespace, labels, mesh.mtlsMode);
  const from = w.from.map((r) => {
    const accepted = snapshot.peerAuthentications.find((p) => p.namespace === r.namespace && p.name === r.name);
    return summary(snapshot, 'PeerAuthentication', r, accepted?.stale ?? false);
  });
  const allPorts = [...new Set([...ports, ...w.ports.keys()])].sort((a, b) => a - b);
  return {
    mode: w.mode,
    ports: allPorts.map((port) => ({ port, mode: portMtls(w, port) })),
    from,
    decidedBy:
      from.length > 0
        ? `PeerAuthentication ${from[0]!.namespace}/${from[0]!.name}`
        : `mesh config (mtlsMode ${mesh.mtlsMode})`,
  };
}

/** A Service and the view of clients in its own namespace; its Pods' proxies. */
export function describeServiceByName(
  snapshot: MeshSnapshot,
  mesh: MeshConfig,
  namespace: string,
  name: string,
): Description {
  const service = snapshot.services.find((s) => s.namespace === namespace && s.name === name);
  if (!service) throw new DescribeError(`no Service ${namespace}/${name} in the mesh model`);
  const pods = new Set<string>();
  for (const p of service.ports) for (const e of p.endpoints) if (e.pod) pods.add(`${e.pod.name}.${e.pod.namespace}`);
  return {
    kind: 'service',
    namespace,
    name,
    services: [describeService(snapshot, mesh, service, namespace)],
    proxyIds: [...pods].sort(),
    snapshotVersion: snapshot.version,
  };
}

/**
 * A Pod: its inbound mutual TLS (its labels, its namespace's and the mesh's PeerAuthentications), and
 * each Service it serves as clients in its namespace see it, with the subsets its labels select.
 * `labels` is the Pod's (the caller reads it from the source or the proxy); without it, the labels of its
 * endpoints are used.
 */
export function describePod(
  snapshot: MeshSnapshot,
  mesh: MeshConfig,
  namespace: string,
  name: string,
  labels: Readonly<Record<string, string>> | undefined,
  serviceAccount?: string,
  /** The Pod's connected proxy, when there is one: its config is translated for what it announced. */
  proxy?: ProxyInfo,
): Description {
  const instances = instancesOfPod(snapshot, namespace, name);
  const podLabels = labels ?? instances[0]?.endpoint.labels;
  if (podLabels === undefined) {
    throw new DescribeError(
      `no Pod ${namespace}/${name}: not in the source, behind no Service, and no proxy with id ${name}.${namespace}`,
    );
  }
  const services = [...new Map(instances.map((i) => [i.service.fqdn, i.service])).values()];
  const targetPorts = [...new Set(instances.map((i) => i.endpoint.port))];
  const account = serviceAccount ?? instances[0]?.endpoint.serviceAccount;
  // Without a connected proxy, an Envoy sidecar of the Pod as the injector would announce it.
  const subject =
    proxy ??
    sidecarProxyInfo({
      id: `${name}.${namespace}`,
      namespace,
      serviceAccount: account || 'default',
      labels: podLabels,
      instanceIps: [...new Set(instances.map((i) => i.endpoint.address))],
      trustDomain: mesh.trustDomain,
    });
  const notes: string[] = [];
  generateResources({ snapshot, proxy: subject, mesh }, buildLoadAssignments, notes);
  return {
    kind: 'pod',
    namespace,
    name,
    labels: podLabels,
    mtls: mtlsSummary(snapshot, mesh, namespace, podLabels, targetPorts),
    scope: scopeSummary(snapshot, mesh, namespace, podLabels, account),
    leftOut: [...new Set(notes)],
    services: services.map((s) => describeService(snapshot, mesh, s, namespace, podLabels)),
    proxyIds: [`${name}.${namespace}`],
    snapshotVersion: snapshot.version,
  };
}

/**
 * The scope of a Pod's proxy: the Sidecar that applies (workload, namespace or mesh default), the mesh
 * config's scoping, and each Service its outbound config holds with the reasons (egress host, VirtualService
 * destination, AuthorizationPolicy naming its service account). The translator reads the same scope.
 */
function scopeSummary(
  snapshot: MeshSnapshot,
  mesh: MeshConfig,
  namespace: string,
  labels: Readonly<Record<string, string>>,
  serviceAccount: string | undefined,
): ScopeSummary {
  const scoping = mesh.scoping ?? 'explicit';
  const scope = scopeOf(
    snapshot,
    { namespace, labels, serviceAccount: serviceAccount || 'default' },
    { automatic: scoping === 'automatic', trustDomain: mesh.trustDomain },
  );
  const sidecar =
    scope.sidecar &&
    snapshot.sidecars.find((s) => s.namespace === scope.sidecar!.namespace && s.name === scope.sidecar!.name);
  return {
    level: scope.level,
    ...(scope.sidecar ? { sidecar: summary(snapshot, 'Sidecar', scope.sidecar, sidecar?.stale ?? false) } : {}),
    scoping,
    all: scope.all,
    outboundTrafficPolicy: scope.outboundTrafficPolicy ?? mesh.outboundTrafficPolicy,
    services: scope.services.map((s) => ({
      fqdn: s.fqdn,
      reasons: scope.all
        ? ['no Sidecar applies and nothing is automatic: every visible Service']
        : (scope.reasons.get(s.fqdn) ?? []),
    })),
  };
}
