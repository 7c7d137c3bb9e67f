// The inbound side of a workload: the Service ports it serves and the one Service port chosen for each
// target port. Both the inbound clusters (cluster-special.ts) and the inbound listener's chains
// (listeners-sidecar.ts) are built from `inboundPorts`, so a chain always points at a cluster that exists.
import { instancesAt, instancesOfPod, selectingServices } from '../model/lookup.js';
import type { MeshService, MeshServicePort, ServiceInstance } from '../model/snapshot.js';
import type { TranslateContext } from './context.js';

/** A Service port this sidecar serves, and the port its application listens on for it. */
export interface InboundInstance {
  readonly service: MeshService;
  readonly port: MeshServicePort;
  /** The endpoint's port (the Service port's target port, resolved), where the application listens. */
  readonly targetPort: number;
}

const fromEndpoint = ({ service, port, endpoint }: ServiceInstance): InboundInstance => ({
  service,
  port,
  targetPort: endpoint.port,
});

/**
 * The Service ports this sidecar serves. The Pod named by node.id (`<pod>.<namespace>`) in the
 * EndpointSlices is exact; the instance IPs are the fallback for a proxy whose id names no listed Pod (in
 * the local demo every workload shares 127.0.0.1, so the IPs would claim every service). A Pod that no
 * EndpointSlice lists yet (its proxy connects before the EndpointSlice controller has seen the Pod) serves
 * the ports of the Services of its namespace whose selector its labels match, as Istio's
 * getProxyServiceInstancesFromMetadata: so it starts with its inbound side, and the config of the Pods of
 * its workload. Only numeric target ports are known then (a named one is resolved from the Pod's
 * containers, which the proxy does not announce): a named one waits for the Pod's endpoint.
 */
export function proxyInstances(ctx: TranslateContext): readonly InboundInstance[] {
  const { snapshot, proxy } = ctx;
  const suffix = `.${proxy.namespace}`;
  if (proxy.namespace !== '' && proxy.id.endsWith(suffix)) {
    const byPod = instancesOfPod(snapshot, proxy.namespace, proxy.id.slice(0, -suffix.length));
    if (byPod.length > 0) return byPod.map(fromEndpoint);
  }
  const byAddress = proxy.instanceIps.flatMap((ip) => instancesAt(snapshot, ip));
  if (byAddress.length > 0) return byAddress.map(fromEndpoint);
  return selectingServices(snapshot, proxy.namespace, proxy.labels).flatMap((service) =>
    service.ports.flatMap((port) =>
      typeof port.targetPort === 'number' ? [{ service, port, targetPort: port.targetPort }] : [],
    ),
  );
}

/**
 * The Service port served on each TCP target port of this workload: several Services on one target port
 * share it, and the first by FQDN, then port, decides (its protocol, its DestinationRule's pool). Sorted by
 * target port. Depends on the Pod only through which Service ports it serves and on which target ports, so
 * the Pods of one workload get equal results (translate/README.md "Shared config").
 */
export function inboundPorts(ctx: TranslateContext): [number, InboundInstance][] {
  const byPort = new Map<number, InboundInstance>();
  const ordered = [...proxyInstances(ctx)].sort((a, b) =>
    a.service.fqdn < b.service.fqdn ? -1 : a.service.fqdn > b.service.fqdn ? 1 : a.port.port - b.port.port,
  );
  for (const instance of ordered) {
    if (instance.port.transport !== 'TCP') continue;
    if (!byPort.has(instance.targetPort)) byPort.set(instance.targetPort, instance);
  }
  return [...byPort.entries()].sort(([a], [b]) => a - b);
}
