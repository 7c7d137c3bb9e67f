// meshGenerator: the translator behind the xDS server (design.md §1). For one proxy and one mesh snapshot it
// composes the per-type modules: CDS (clusters.ts), EDS for the EDS clusters among them (endpoints.ts),
// LDS (listeners.ts) and RDS (routes.ts). `generateResources` does it in one go, with no cache: it is the
// reference the cached path must equal byte for byte (test/translate/incremental.test.ts).
//
// The cached path (README.md "Shared config" and "Incremental generation"). The resource cache encodes
// once per message object and per array (xds/resource-cache.ts), so the generator hands out the very same
// arrays and messages wherever the content is the same, in two directions:
// - across proxies: a proxy's config is split into parts by what each part reads of the proxy (its shape,
//   proxy-shape.ts). The outbound parts (outbound clusters, their ClusterLoadAssignments, routes, outbound
//   listeners) depend on its type, namespace and the labels VirtualServices select sources on; the inbound
//   parts (inbound and special clusters, the inbound listener) on the Service ports its Pod serves and the
//   labels PeerAuthentications select on. The Pods of one workload share every part; only a proxyless
//   server's listeners, named by its IP, are per Pod.
// - across snapshots: each part is kept under its shape, with the content keys of the snapshot parts it
//   reads (model/parts.ts); a part whose keys did not change is the same array in the next snapshot.
//   Inside a part, clusters are kept per Service (clusters.ts serviceClustersKey) and assignments per
//   cluster (endpoints.ts loadAssignmentKey): one endpoint change rebuilds the assignments of its Service
//   and nothing else, and the push controller, which compares encoded set versions, pushes only EDS.
import { TypeUrl, type Message } from '../envoy/protos.js';
import { Cluster_DiscoveryType, type Cluster } from '../envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import type { ClusterLoadAssignment } from '../envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { Generator, ResourcesByType } from '../xds/generator.js';
import type { ProxyInfo } from '../xds/node.js';
import type { Listener } from '../envoy/gen/envoy/config/listener/v3/listener_pb.js';
import type { RouteConfiguration } from '../envoy/gen/envoy/config/route/v3/route_pb.js';
import { destinationRuleFor } from '../model/lookup.js';
import { scopedServices } from './scope.js';
import { diffSnapshots, snapshotKeys, type SnapshotKeys } from '../model/parts.js';
import { CarryCache } from './carry-cache.js';
import { parseOutboundClusterName } from './cluster-names.js';
import { specialClusters } from './cluster-special.js';
import { buildClusters, serviceClusters, serviceClustersKey, sortByName } from './clusters.js';
import type { MeshConfig, TranslateContext } from './context.js';
import { buildLoadAssignments, loadAssignment, loadAssignmentKey } from './endpoints.js';
import { buildListeners } from './listeners.js';
import { apiListener, apiListeners, serverListeners } from './listeners-grpc.js';
import { sidecarInboundListener, sidecarOutboundListeners } from './listeners-sidecar.js';
import { proxyShape, type ProxyShape } from './proxy-shape.js';
import { proxyNode } from './locality.js';
import { proxySecrets } from './secrets.js';
import { buildRouteConfigurations, virtualHost, virtualHostKey, type VirtualHostBuilder } from './routes.js';
import { create } from '@bufbuild/protobuf';
import { VirtualHostSchema, type VirtualHost } from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';

/** The EDS resource name of a cluster (its `service_name`, else its name), or undefined when it is not EDS. */
export function edsResourceName(cluster: Cluster): string | undefined {
  const d = cluster.clusterDiscoveryType;
  if (d.case !== 'type' || d.value !== Cluster_DiscoveryType.EDS) return undefined;
  return cluster.edsClusterConfig?.serviceName || cluster.name;
}

/** The EDS names of `clusters`, unique, in the clusters' order. */
export function edsClusterNames(clusters: readonly Cluster[]): string[] {
  const names = new Set<string>();
  for (const cluster of clusters) {
    const name = edsResourceName(cluster);
    if (name !== undefined) names.add(name);
  }
  return [...names];
}

export type LoadAssignmentBuilder = (ctx: TranslateContext, clusterNames: readonly string[]) => ClusterLoadAssignment[];

/**
 * Everything one proxy gets, by type, composed from the per-type modules. Pure, no cache. `notes` collects
 * what the listener and route builders left out and why (`trellis describe pod` shows them).
 */
export function generateResources(
  ctx: TranslateContext,
  loadAssignments: LoadAssignmentBuilder = buildLoadAssignments,
  notes: string[] = [],
): ResourcesByType {
  const clusters = buildClusters(ctx);
  return withSecrets(
    resourcesByType(
      clusters,
      loadAssignments(ctx, edsClusterNames(clusters)),
      buildListeners(ctx, notes),
      buildRouteConfigurations(ctx, notes),
    ),
    proxySecrets(ctx.snapshot, ctx.proxy),
  );
}

const withSecretsMemo = new WeakMap<ResourcesByType, WeakMap<readonly Message[], ResourcesByType>>();

/**
 * `resources` plus the proxy's Secrets (SDS over ADS, secrets.ts) when it has any: a proxy without keeps
 * exactly the four types. The same map for the same two inputs.
 */
function withSecrets(resources: ResourcesByType, secrets: readonly Message[]): ResourcesByType {
  if (secrets.length === 0) return resources;
  let bySecrets = withSecretsMemo.get(resources);
  if (!bySecrets) withSecretsMemo.set(resources, (bySecrets = new WeakMap()));
  let out = bySecrets.get(secrets);
  if (!out) bySecrets.set(secrets, (out = new Map([...resources, [TypeUrl.Secret, secrets]])));
  return out;
}

function resourcesByType(
  clusters: readonly Cluster[],
  assignments: readonly ClusterLoadAssignment[],
  listeners: readonly Listener[],
  routes: readonly RouteConfiguration[],
): ResourcesByType {
  // Every type is present (empty when there is nothing): an empty LDS/CDS answer tells a wildcard
  // subscriber that nothing exists, instead of leaving it waiting.
  return new Map<string, readonly Message[]>([
    [TypeUrl.Cluster, clusters],
    [TypeUrl.ClusterLoadAssignment, assignments],
    [TypeUrl.Listener, listeners],
    [TypeUrl.RouteConfiguration, routes],
  ]);
}

/** What the cached generator did, for tests and benchmarks. */
export interface GeneratorStats {
  /** Parts translated (cache misses), all kinds. */
  readonly parts: number;
  /** Services whose clusters were translated. */
  readonly serviceClusters: number;
  /** ClusterLoadAssignments built. */
  readonly loadAssignments: number;
  /** Virtual hosts built. */
  readonly virtualHosts: number;
  /** Entries held across snapshots. */
  readonly cached: number;
  /** Proxy shapes worked out (the others were a proxy's shape kept from an earlier snapshot). */
  readonly shapes: number;
}

export interface MeshGenerator extends Generator<MeshSnapshot> {
  readonly mesh: MeshConfig;
  /** Parts actually translated (cache misses), for tests and benchmarks. */
  readonly generations: () => number;
  readonly stats: () => GeneratorStats;
}

interface Part<T> {
  /** The content keys of the snapshot parts it was built from. */
  readonly deps: string;
  readonly value: readonly T[];
  /** For a combined part: the parts it was made of. */
  readonly from?: readonly (readonly Message[])[];
  /**
   * For an outbound clusters part: the per-Service clusters it was made of, under their `serviceClustersKey`,
   * so a rebuild of the part finds them again when the shared cache has dropped them (see `Reuse`).
   */
  readonly pieces?: Pieces<readonly Cluster[]>;
}

/** A part's pieces under their cache keys: `values[i]` was cached under `keys[i]`. */
interface Pieces<V> {
  readonly keys: readonly string[];
  readonly values: readonly V[];
}

/**
 * What a rebuilt part may take from its previous build. The shared caches (per-Service clusters, assignments)
 * keep only what was asked for during the last snapshot (CarryCache), and a part that is carried over
 * unchanged asks them for nothing: so after a few changes that leave the outbound parts alone (endpoint or
 * VirtualService changes), those caches have dropped the pieces the parts are made of. A change that then
 * rebuilds every outbound part (a rollout: new Pod labels move the snapshot's endpoint traits) would translate
 * and encode every Service's clusters and assignments again, 2,000 and 6,000 of them at 1,000 Services. A
 * part instead remembers its pieces with their keys (two arrays: the pieces are the part's anyway), and its
 * rebuild looks there, through an index made only when a rebuild needs it, before translating.
 */
class Reuse<V> {
  private readonly keys: string[] = [];
  private readonly values: V[] = [];
  private index: Map<string, V> | undefined;

  /** `previous`: the pieces of the part's previous build (undefined: none). */
  constructor(private readonly previous: Pieces<V> | undefined) {}

  /** The previous build's piece under `key`, if any. */
  find(key: string): V | undefined {
    const previous = this.previous;
    if (!previous) return undefined;
    if (!this.index) {
      this.index = new Map();
      for (let i = 0; i < previous.keys.length; i++) this.index.set(previous.keys[i]!, previous.values[i]!);
    }
    return this.index.get(key);
  }

  /** Records a piece of this build. */
  use(key: string, value: V): void {
    this.keys.push(key);
    this.values.push(value);
  }

  /** This build's pieces. */
  get pieces(): Pieces<V> {
    return { keys: this.keys, values: this.values };
  }
}

function sameElements<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The generator the control plane runs in `--config-dir` (and Kubernetes) mode. */
export function meshGenerator(mesh: MeshConfig): MeshGenerator {
  let current: MeshSnapshot | undefined;
  const byShape = new WeakMap<MeshSnapshot, Map<string, ResourcesByType>>();
  const parts = new CarryCache<Part<Message>>();
  const clustersByService = new CarryCache<readonly Cluster[]>();
  const assignments = new CarryCache<ClusterLoadAssignment>();
  const virtualHosts = new CarryCache<VirtualHost>();
  const apiListenerCache = new CarryCache<Listener>();
  /** Proxyless API listeners are a function of name and port: one message per name for every namespace. */
  const cachedApiListener = (name: string, port: number): Listener => {
    const key = `${name}\n${port}`;
    let listener = apiListenerCache.get(key);
    if (!listener) apiListenerCache.set(key, (listener = apiListener(name, port)));
    return listener;
  };
  const edsNames = new WeakMap<readonly Cluster[], readonly string[]>();
  const fqdnIndexes = new WeakMap<readonly Cluster[], ReadonlyMap<string, readonly number[]>>();
  /** EDS parts remember the snapshot they were built for (at most one older snapshot per part stays alive). */
  const edsParts = new CarryCache<{
    readonly deps: string;
    readonly value: readonly ClusterLoadAssignment[];
    readonly snapshot: MeshSnapshot;
    /** The assignments of the last full build under their `loadAssignmentKey` (see `Reuse`). */
    readonly pieces?: Pieces<ClusterLoadAssignment>;
  }>();
  /** RDS parts remember the snapshot they were built for and the keys a VirtualService change leaves alone. */
  const rdsParts = new CarryCache<{
    readonly deps: string;
    readonly base: string;
    readonly value: readonly RouteConfiguration[];
    readonly snapshot: MeshSnapshot;
  }>();
  const vhostIndexes = new WeakMap<
    readonly RouteConfiguration[],
    ReadonlyMap<string, readonly (readonly [number, number])[]>
  >();
  const arrayIds = new WeakMap<readonly Message[], string>();
  let nextArrayId = 0;
  /** A name for an array object (a part's deps may be another part's identity). */
  const arrayId = (array: readonly Message[]): string => {
    let id = arrayIds.get(array);
    if (id === undefined) arrayIds.set(array, (id = `#${nextArrayId++}`));
    return id;
  };
  const counts = { parts: 0, serviceClusters: 0, loadAssignments: 0, virtualHosts: 0, shapes: 0 };
  /**
   * Each proxy's shape, kept across snapshots while what it reads is unchanged (`shapeDeps`): an endpoint
   * change leaves the shape of every proxy but those of the Pods whose instances moved.
   */
  const shapes = new WeakMap<ProxyInfo, { readonly deps: string; readonly shape: ProxyShape }>();
  const none: readonly object[] = [];
  const objectIds = new WeakMap<object, number>();
  let nextObjectId = 0;
  /** A name for an object of the snapshot, the same while the model keeps the object. */
  const objectId = (o: object): string => {
    let id = objectIds.get(o);
    if (id === undefined) objectIds.set(o, (id = nextObjectId++));
    return String(id);
  };
  /** A name for an instance list object ('-' when empty: every empty list reads the same). */
  const listId = (list: readonly object[]): string => (list.length === 0 ? '-' : objectId(list));
  /**
   * What proxyShape reads, as keys: the snapshot parts (Services and namespaces, VirtualServices,
   * DestinationRules, PeerAuthentications, AuthorizationPolicies, Sidecars) and the proxy's own instance
   * lists (by its Pod, as proxyInstances and proxyLocality look it up, and by each instance IP) and the Node
   * its NODE_NAME names (proxyLocality), which the model keeps as the same objects while they do not change.
   * The proxy itself is the memo's key.
   */
  const shapeDeps = (snapshot: MeshSnapshot, proxy: ProxyInfo, keys: SnapshotKeys): string => {
    const { instancesByPod, instancesByAddress } = snapshot.index;
    const suffix = `.${proxy.namespace}`;
    const byNamespace = proxy.id.endsWith(suffix)
      ? instancesByPod.get(`${proxy.namespace}/${proxy.id.slice(0, -suffix.length)}`)
      : undefined;
    const dot = proxy.id.lastIndexOf('.');
    const byId = dot > 0 ? instancesByPod.get(`${proxy.id.slice(dot + 1)}/${proxy.id.slice(0, dot)}`) : undefined;
    let ips = '';
    for (const ip of proxy.instanceIps) ips += `,${listId(instancesByAddress.get(ip) ?? none)}`;
    const node = proxyNode(snapshot, proxy);
    return [
      keys.services,
      keys.virtualServices,
      keys.destinationRules,
      keys.peerAuthentications,
      keys.authorizationPolicies,
      keys.sidecars,
      listId(byNamespace ?? none),
      listId(byId ?? none),
      ips,
      node ? objectId(node) : '-',
    ].join('|');
  };
  /**
   * Equal ClusterLoadAssignment arrays (the same messages in the same order) are one array, whichever
   * shape's part built them: proxies of every namespace usually see the same endpoints, and the resource
   * cache then encodes and versions one set instead of one per namespace and proxy type. Keyed by the
   * messages' identities; a part's derived array (one endpoint change) is found again by the array it was
   * derived from and the replacements, without walking the whole array.
   */
  const messageIds = new WeakMap<Message, number>();
  let nextMessageId = 0;
  const messageId = (message: Message): number => {
    let id = messageIds.get(message);
    if (id === undefined) messageIds.set(message, (id = nextMessageId++));
    return id;
  };
  /**
   * Interning by content identity: the first array seen with the given messages in the given order is
   * returned for every equal array after it, while it is in use (a CarryCache entry). An array is keyed once
   * (`known`), so a part kept across snapshots costs a lookup.
   */
  const interner = <T extends Message>() => {
    const byKey = new CarryCache<readonly T[]>();
    const known = new WeakMap<readonly T[], { readonly key: string; readonly canonical: readonly T[] }>();
    return {
      advance: () => byKey.advance(),
      intern: (value: readonly T[]): readonly T[] => {
        const seen = known.get(value);
        if (seen) {
          if (!byKey.get(seen.key)) byKey.set(seen.key, seen.canonical); // carried while in use
          return seen.canonical;
        }
        const key = value.map(messageId).join(',');
        let canonical = byKey.get(key);
        if (!canonical) byKey.set(key, (canonical = value));
        known.set(value, { key, canonical });
        return canonical;
      },
    };
  };
  const edsArrays = interner<ClusterLoadAssignment>();
  const edsDerived = new WeakMap<readonly ClusterLoadAssignment[], Map<string, readonly ClusterLoadAssignment[]>>();
  /**
   * The outbound clusters arrays the same way (namespaces that see the same Services with the same rules
   * get the same Cluster messages): the EDS names and per-FQDN index made of one are then made once.
   */
  const outboundArrays = interner<Cluster>();

  /** Virtual hosts kept under `virtualHostKey` and their domains (a VirtualService change rebuilds one). */
  const cachedVirtualHost =
    (shapeKey: string): VirtualHostBuilder =>
    (ctx, service, domains, options) => {
      const key = `${virtualHostKey(ctx, service, options.port, shapeKey)}\n${domains.join(',')}`;
      let vhost = virtualHosts.get(key);
      if (!vhost) {
        vhost = create(VirtualHostSchema, virtualHost(ctx, service, domains, options));
        counts.virtualHosts++;
        virtualHosts.set(key, vhost);
      }
      return vhost;
    };

  /** The part `id`, rebuilt only when `deps` changed; an equal rebuild keeps the old array. */
  function part<T extends Message>(id: string, deps: string, build: () => readonly T[]): readonly T[] {
    const hit = parts.get(id) as Part<T> | undefined;
    if (hit && hit.deps === deps) return hit.value;
    const built = build();
    counts.parts++;
    const value = hit && sameElements(hit.value, built) ? hit.value : built;
    parts.set(id, { deps, value });
    return value;
  }

  /** `a` and `b` combined; the same array while both are. */
  function combine<T extends Message>(id: string, a: readonly T[], b: readonly T[], join: () => T[]): readonly T[] {
    const hit = parts.get(id) as Part<T> | undefined;
    if (hit && hit.from?.[0] === a && hit.from[1] === b) return hit.value;
    const value = join();
    parts.set(id, { deps: '', value, from: [a, b] });
    return value;
  }

  /** The outbound clusters part `id`, rebuilt only when `deps` changed, from its previous build's pieces first. */
  function outboundPart(ctx: TranslateContext, id: string, deps: string): readonly Cluster[] {
    const hit = parts.get(id) as Part<Cluster> | undefined;
    if (hit && hit.deps === deps) return hit.value;
    const reuse = new Reuse(hit?.pieces);
    const built = sortByName(outboundClustersByService(ctx, reuse));
    counts.parts++;
    const value = hit && sameElements(hit.value, built) ? hit.value : built;
    parts.set(id, { deps, value, pieces: reuse.pieces });
    return value;
  }

  function outboundClustersByService(ctx: TranslateContext, reuse: Reuse<readonly Cluster[]>): Cluster[] {
    return scopedServices(ctx).flatMap((service) => {
      const rule = destinationRuleFor(ctx.snapshot, service.fqdn, ctx.proxy.namespace, ctx.proxy.labels);
      const key = serviceClustersKey(ctx, service, rule);
      let clusters = clustersByService.get(key);
      if (!clusters) {
        clusters = reuse.find(key);
        if (!clusters) {
          clusters = serviceClusters(ctx, service, rule);
          counts.serviceClusters++;
        }
        clustersByService.set(key, clusters);
      }
      reuse.use(key, clusters);
      return clusters;
    });
  }

  function edsNamesOf(clusters: readonly Cluster[]): readonly string[] {
    let names = edsNames.get(clusters);
    if (!names) edsNames.set(clusters, (names = edsClusterNames(clusters)));
    return names;
  }

  function loadAssignmentsOf(
    ctx: TranslateContext,
    names: readonly string[],
    reuse?: Reuse<ClusterLoadAssignment>,
  ): ClusterLoadAssignment[] {
    return names.map((name) => {
      const key = loadAssignmentKey(ctx, name);
      let cla = assignments.get(key);
      if (!cla) {
        cla = reuse?.find(key);
        if (!cla) {
          cla = loadAssignment(ctx, name);
          counts.loadAssignments++;
        }
        assignments.set(key, cla);
      }
      reuse?.use(key, cla);
      return cla;
    });
  }

  /**
   * The ClusterLoadAssignments of an outbound clusters array. When only endpoints changed since the part
   * was built (same clusters array, Service definitions, DestinationRules, PeerAuthentications), only the
   * assignments of the Services whose endpoints changed (model/parts.ts diffSnapshots) are looked up
   * again; the rest of the array is kept.
   */
  function loadAssignmentsPart(
    ctx: TranslateContext,
    id: string,
    outbound: readonly Cluster[],
    keys: SnapshotKeys,
  ): readonly ClusterLoadAssignment[] {
    const deps = [keys.services, keys.destinationRules, keys.peerAuthentications, arrayId(outbound)].join('|');
    const hit = edsParts.get(id);
    if (hit && hit.deps === deps) {
      if (hit.snapshot === ctx.snapshot) return hit.value;
      const changed = diffSnapshots(hit.snapshot, ctx.snapshot);
      if (changed.services.length === 0) {
        const names = edsNamesOf(outbound);
        const index = fqdnIndexOf(outbound);
        const replaced: [number, ClusterLoadAssignment][] = [];
        for (const fqdn of changed.endpoints) {
          for (const i of index.get(fqdn) ?? []) {
            const cla = loadAssignmentsOf(ctx, [names[i]!])[0]!;
            if (cla !== hit.value[i]) replaced.push([i, cla]);
          }
        }
        let value = hit.value;
        if (replaced.length > 0) {
          let derived = edsDerived.get(hit.value);
          if (!derived) edsDerived.set(hit.value, (derived = new Map()));
          const how = replaced.map(([i, cla]) => `${i}=${messageId(cla)}`).join(',');
          value = derived.get(how) ?? hit.value;
          if (value === hit.value) {
            const copy = [...hit.value];
            for (const [i, cla] of replaced) copy[i] = cla;
            derived.set(how, (value = edsArrays.intern(copy)));
          }
        }
        edsParts.set(id, { deps, value, snapshot: ctx.snapshot, ...(hit.pieces ? { pieces: hit.pieces } : {}) });
        return value;
      }
    }
    // The previous build's assignments, for those the shared cache has dropped (see `Reuse`).
    const reuse = new Reuse(hit?.pieces);
    const built = loadAssignmentsOf(ctx, edsNamesOf(outbound), reuse);
    counts.parts++;
    const value = hit && sameElements(hit.value, built) ? hit.value : edsArrays.intern(built);
    edsParts.set(id, { deps, value, snapshot: ctx.snapshot, pieces: reuse.pieces });
    return value;
  }

  /**
   * The RouteConfigurations of a shape. When only VirtualServices changed since the part was built (same
   * Service definitions and DestinationRules, so the same ports, Services and domains), only the virtual
   * hosts of the hosts those VirtualServices name (model/parts.ts `virtualServiceHosts`) are looked up
   * again, and only the RouteConfigurations holding one that moved are new objects: the rest of the part
   * is kept. A full build gives the same messages (test/translate/incremental.test.ts).
   */
  function routesPart(
    ctx: TranslateContext,
    id: string,
    shape: ProxyShape,
    keys: SnapshotKeys,
  ): readonly RouteConfiguration[] {
    const { services, virtualServices, destinationRules } = keys;
    const deps = [services, virtualServices, destinationRules].join('|');
    const base = [services, destinationRules].join('|');
    const hit = rdsParts.get(id);
    if (hit && hit.deps === deps) return hit.value;
    const vhostOf = cachedVirtualHost(shape.outbound);
    if (hit && hit.base === base) {
      const hosts = diffSnapshots(hit.snapshot, ctx.snapshot).virtualServiceHosts;
      const index = vhostIndexOf(hit.value);
      const proxyless = ctx.proxy.proxyType === 'grpc';
      let value = hit.value;
      for (const host of hosts) {
        const service = ctx.snapshot.index.servicesByFqdn.get(host);
        if (!service) continue;
        for (const [i, j] of index.get(host) ?? []) {
          const route = value[i]!;
          const old = route.virtualHosts[j]!;
          const port = Number(old.name.slice(old.name.lastIndexOf(':') + 1));
          const vhost = vhostOf(ctx, service, [...old.domains], { port, proxyless, notes: [] });
          if (vhost === old) continue;
          if (value === hit.value) value = [...hit.value];
          const virtualHosts = [...route.virtualHosts];
          virtualHosts[j] = vhost as VirtualHost;
          (value as RouteConfiguration[])[i] = { ...route, virtualHosts };
        }
      }
      if (value !== hit.value) counts.parts++;
      rdsParts.set(id, { deps, base, value, snapshot: ctx.snapshot });
      return value;
    }
    const built = buildRouteConfigurations(ctx, [], vhostOf);
    counts.parts++;
    const value = hit && sameElements(hit.value, built) ? hit.value : built;
    rdsParts.set(id, { deps, base, value, snapshot: ctx.snapshot });
    return value;
  }

  /** Per FQDN, the positions (route configuration, virtual host) of its virtual hosts in `routes`. */
  function vhostIndexOf(
    routes: readonly RouteConfiguration[],
  ): ReadonlyMap<string, readonly (readonly [number, number])[]> {
    let index = vhostIndexes.get(routes);
    if (!index) {
      const map = new Map<string, [number, number][]>();
      routes.forEach((route, i) =>
        route.virtualHosts.forEach((vhost, j) => {
          const colon = vhost.name.lastIndexOf(':');
          if (colon <= 0) return; // the catch-all
          const fqdn = vhost.name.slice(0, colon);
          let list = map.get(fqdn);
          if (!list) map.set(fqdn, (list = []));
          list.push([i, j]);
        }),
      );
      vhostIndexes.set(routes, (index = map));
    }
    return index;
  }

  /** Per FQDN, the positions of its assignments among the EDS names of `clusters`. */
  function fqdnIndexOf(clusters: readonly Cluster[]): ReadonlyMap<string, readonly number[]> {
    let index = fqdnIndexes.get(clusters);
    if (!index) {
      const map = new Map<string, number[]>();
      edsNamesOf(clusters).forEach((name, i) => {
        const fqdn = parseOutboundClusterName(name)?.fqdn;
        if (fqdn === undefined) return;
        let list = map.get(fqdn);
        if (!list) map.set(fqdn, (list = []));
        list.push(i);
      });
      fqdnIndexes.set(clusters, (index = map));
    }
    return index;
  }

  function generateShaped(ctx: TranslateContext, shape: ProxyShape, keys: SnapshotKeys): ResourcesByType {
    const deps = (...k: string[]) => k.join('|');
    const out = `${shape.outbound}\n`;
    const inn = `${ctx.proxy.proxyType}\n${ctx.proxy.namespace}\n${shape.inbound}\n`;
    const { services, endpointTraits, virtualServiceStreams, destinationRules, peerAuthentications } = keys;

    const outbound = outboundArrays.intern(
      outboundPart(ctx, `${out}cds`, deps(services, endpointTraits, destinationRules, peerAuthentications)),
    );
    const assignmentsPart = loadAssignmentsPart(ctx, `${out}${shape.endpoints}\neds`, outbound, keys);
    const routes = routesPart(ctx, `${out}rds`, shape, keys);
    if (ctx.proxy.proxyType === 'grpc') {
      const api = part(`${out}lds`, deps(services), () => apiListeners(ctx, cachedApiListener));
      const server = part(`${inn}lds`, deps(services, peerAuthentications), () => serverListeners(ctx));
      const listeners = combine(`${out}${inn}lds`, api, server, () => [...api, ...server]);
      return resourcesByType(outbound, assignmentsPart, listeners, routes);
    }
    const special = part(`${inn}cds`, deps(services, destinationRules), () => specialClusters(ctx));
    const clusters = combine(`${out}${inn}cds`, outbound, special, () => sortByName([...outbound, ...special]));
    // Listeners read a VirtualService's tcp and tls routes, not its http ones (parts.ts virtualServiceStreamKey).
    const outListeners = part(`${out}lds`, deps(services, virtualServiceStreams, destinationRules), () =>
      sidecarOutboundListeners(ctx),
    );
    const inListeners = part(`${inn}lds`, deps(services, destinationRules, peerAuthentications), () => [
      sidecarInboundListener(ctx),
    ]);
    const listeners = combine(`${out}${inn}lds`, outListeners, inListeners, () => [...outListeners, ...inListeners]);
    return resourcesByType(clusters, assignmentsPart, listeners, routes);
  }

  return {
    mesh,
    generations: () => counts.parts,
    stats: () => ({
      ...counts,
      cached:
        parts.size + clustersByService.size + assignments.size + virtualHosts.size + edsParts.size + rdsParts.size,
    }),
    generate(proxy: ProxyInfo, snapshot: MeshSnapshot): ResourcesByType {
      if (snapshot !== current) {
        current = snapshot;
        parts.advance();
        clustersByService.advance();
        assignments.advance();
        virtualHosts.advance();
        edsParts.advance();
        edsArrays.advance();
        outboundArrays.advance();
        rdsParts.advance();
        apiListenerCache.advance();
      }
      let memo = byShape.get(snapshot);
      if (!memo) byShape.set(snapshot, (memo = new Map()));
      const ctx: TranslateContext = { snapshot, proxy, mesh };
      const keys = snapshotKeys(snapshot);
      const deps = shapeDeps(snapshot, proxy, keys);
      let kept = shapes.get(proxy);
      if (kept?.deps !== deps) {
        kept = { deps, shape: proxyShape(ctx, keys) };
        counts.shapes++;
        shapes.set(proxy, kept);
      }
      const { shape } = kept;
      const id = `${shape.outbound}\n${shape.inbound}\n${shape.endpoints}`;
      let resources = memo.get(id);
      if (!resources) {
        resources = generateShaped(ctx, shape, keys);
        memo.set(id, resources);
      }
      return withSecrets(resources, proxySecrets(snapshot, proxy));
    },
  };
}
