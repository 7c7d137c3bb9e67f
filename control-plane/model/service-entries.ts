// ServiceEntries → services. Each host of an accepted ServiceEntry becomes one MeshService (FQDN = the host
// as written, lower case) with the entry's ports and endpoints and a `serviceEntry` marker, so everything
// that reads services (clusters, endpoints, listeners, routes, VirtualService and DestinationRule lookups)
// treats an external API like a Kubernetes Service; the translator reads the marker for the cluster type
// (resolution) and for mutual TLS (location). Pure. The rules are in README.md beside this file
// ("ServiceEntry").
import type { ServiceEntrySpec, WorkloadEntry } from '../../crds/types.js';
import { located, type Problem } from './objects.js';
import { selectProtocol } from './protocol.js';
import { TLS_MODE_LABEL, TLS_MODE_MESH } from './services.js';
import type {
  AcceptedServiceEntry,
  Locality,
  MeshEndpoint,
  MeshService,
  MeshServicePort,
  ObjectRef,
  ServiceEntryInfo,
} from './snapshot.js';
import net from 'node:net';

/** The hosts of a ServiceEntry as the model keys them: lower case, no trailing dot, unique, sorted. */
export function serviceEntryHosts(spec: ServiceEntrySpec): string[] {
  return [...new Set((spec.hosts ?? []).map((h) => h.toLowerCase().replace(/\.$/, '')))].sort();
}

export interface ServiceEntryConflict {
  readonly entry: ObjectRef;
  readonly path: string;
  readonly message: string;
}

/**
 * Hosts that an older ServiceEntry already defines (`entries` in precedence order, oldest first): the older
 * one keeps the host, the later one is told which host it lost (a warning on its status).
 */
export function serviceEntryConflicts(entries: readonly AcceptedServiceEntry[]): ServiceEntryConflict[] {
  const owner = new Map<string, AcceptedServiceEntry>();
  const out: ServiceEntryConflict[] = [];
  for (const entry of entries) {
    const written = entry.spec.hosts ?? [];
    for (const host of entry.hosts) {
      const first = owner.get(host);
      if (!first) {
        owner.set(host, entry);
        continue;
      }
      const index = written.findIndex((h) => h.toLowerCase().replace(/\.$/, '') === host);
      out.push({
        entry: { namespace: entry.namespace, name: entry.name },
        path: `spec.hosts[${index}]`,
        message: `${host} is already defined by the older ServiceEntry ${first.namespace}/${first.name}; ignored here`,
      });
    }
  }
  return out;
}

/** `region/zone/subzone` → a Locality (missing parts empty). */
export function parseLocality(value: string | undefined): Locality {
  const [region = '', zone = '', subZone = ''] = (value ?? '').split('/');
  return { region, zone, subZone };
}

function compareEndpoints(a: MeshEndpoint, b: MeshEndpoint): number {
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  return a.port - b.port;
}

function entryEndpoint(e: WorkloadEntry, port: number, internal: boolean): MeshEndpoint {
  const labels = Object.fromEntries(Object.entries(e.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    address: e.address.toLowerCase().replace(/\.$/, ''),
    port,
    ready: true,
    labels,
    locality: parseLocality(e.locality),
    serviceAccount: '',
    // Only a MESH_INTERNAL endpoint can have a sidecar; it says so with the injector's label.
    inMesh: internal && labels[TLS_MODE_LABEL] === TLS_MODE_MESH,
    // Istio: weight 0 means unset.
    ...(e.weight !== undefined && e.weight > 0 ? { weight: e.weight } : {}),
  };
}

/** The endpoints of one port of one host: the entry's endpoints, or for DNS without endpoints the host itself. */
function portEndpoints(entry: AcceptedServiceEntry, host: string, name: string, target: number): MeshEndpoint[] {
  const resolution = entry.spec.resolution ?? 'NONE';
  if (resolution === 'NONE') return [];
  const internal = entry.spec.location === 'MESH_INTERNAL';
  const listed = entry.spec.endpoints ?? [];
  if (listed.length === 0) {
    if (resolution === 'STATIC' || net.isIP(host) !== 0 || host.startsWith('*')) return [];
    return [entryEndpoint({ address: host }, target, internal)];
  }
  const out = listed.map((e) => entryEndpoint(e, e.ports?.[name] ?? target, internal)).sort(compareEndpoints);
  return out.filter((e, i) => i === 0 || compareEndpoints(e, out[i - 1]!) !== 0);
}

function entryService(entry: AcceptedServiceEntry, host: string): MeshService {
  const spec = entry.spec;
  const addresses = spec.addresses ?? [];
  const info: ServiceEntryInfo = {
    from: { namespace: entry.namespace, name: entry.name },
    resolution: spec.resolution ?? 'NONE',
    location: spec.location ?? 'MESH_EXTERNAL',
    external: (spec.location ?? 'MESH_EXTERNAL') === 'MESH_EXTERNAL',
    addresses,
    endpointCount: (spec.endpoints ?? []).length,
  };
  const ports: MeshServicePort[] = [...(spec.ports ?? [])]
    .sort((a, b) => a.number - b.number)
    .map((p) => {
      // The protocol field decides as a Kubernetes appProtocol does; unset, the port name does (Istio).
      const { protocol, from } = selectProtocol(p.name, p.protocol);
      const target = p.targetPort ?? p.number;
      return {
        name: p.name,
        port: p.number,
        transport: 'TCP',
        targetPort: target,
        ...(p.protocol !== undefined ? { appProtocol: p.protocol } : {}),
        protocol,
        protocolFrom: from,
        endpoints: portEndpoints(entry, host, p.name, target),
      };
    });
  return {
    fqdn: host,
    name: host,
    namespace: entry.namespace,
    labels: {},
    // The virtual IPs; CIDR blocks are kept in serviceEntry.addresses only.
    clusterIPs: addresses.filter((a) => net.isIP(a) !== 0),
    headless: false,
    exportTo: entry.exportTo,
    ports,
    serviceAccounts: [],
    origin: entry.origin,
    serviceEntry: info,
  };
}

/**
 * The services of the accepted ServiceEntries (in precedence order), one per host, sorted by FQDN. A host
 * that a Kubernetes Service already is (`taken`) stays the Service's, with a warning; a host an older entry
 * defines stays the older entry's (serviceEntryConflicts warned about it).
 */
/**
 * The MeshService of each host of an accepted ServiceEntry, made once: an accepted entry is the same object
 * from one build to the next while its object does not change (routing.ts), so its Services are too. Then
 * a build with a ServiceEntry keeps the previous snapshot's instance indexes when no Service changed
 * (build-snapshot.ts compares the Services by identity), instead of copying them.
 */
const entryServices = new WeakMap<AcceptedServiceEntry, Map<string, MeshService>>();

function entryServiceOnce(entry: AcceptedServiceEntry, host: string): MeshService {
  let byHost = entryServices.get(entry);
  if (!byHost) entryServices.set(entry, (byHost = new Map()));
  let service = byHost.get(host);
  if (!service) byHost.set(host, (service = entryService(entry, host)));
  return service;
}

export function serviceEntryServices(
  entries: readonly AcceptedServiceEntry[],
  taken: ReadonlySet<string>,
  problems: Problem[],
): MeshService[] {
  const out = new Map<string, MeshService>();
  for (const entry of entries) {
    for (const host of entry.hosts) {
      if (out.has(host)) continue;
      if (taken.has(host)) {
        const text = `warning: ServiceEntry ${entry.namespace}/${entry.name}: spec.hosts: ${host} is a Kubernetes Service; the Service is used, not this entry`;
        problems.push({
          severity: 'warning',
          object: { kind: 'ServiceEntry', namespace: entry.namespace, name: entry.name },
          origin: entry.origin,
          message: located(entry.origin, text),
        });
        continue;
      }
      out.set(host, entryServiceOnce(entry, host));
    }
  }
  return [...out.values()].sort((a, b) => (a.fqdn < b.fqdn ? -1 : a.fqdn > b.fqdn ? 1 : 0));
}
