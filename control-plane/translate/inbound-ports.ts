// The inbound side of a workload: the Service ports it serves and the one Service port chosen for each
// target port. Both the inbound clusters (cluster-special.ts) and the inbound listener's chains
// (listeners-sidecar.ts) are built from `inboundPorts`, so a chain always points at a cluster that exists.
import { instancesAt, instancesOfPod } from '../model/lookup.js';
import type { ServiceInstance } from '../model/snapshot.js';
import type { TranslateContext } from './context.js';

/**
 * The Service ports this sidecar serves. The Pod named by node.id (`<pod>.<namespace>`) is exact; the
 * instance IPs are the fallback for a proxy whose id names no known Pod (in the local demo every
 * workload shares 127.0.0.1, so the IPs would claim every service).
 */
export function proxyInstances(ctx: TranslateContext): readonly ServiceInstance[] {
  const { snapshot, proxy } = ctx;
  const suffix = `.${proxy.namespace}`;
  if (proxy.namespace !== '' && proxy.id.endsWith(suffix)) {
    const byPod = instancesOfPod(snapshot, proxy.namespace, proxy.id.slice(0, -suffix.length));
    if (byPod.length > 0) return byPod;
  }
  return proxy.instanceIps.flatMap((ip) => instancesAt(snapshot, ip));
}

/**
 * The Service port served on each TCP target port of this workload: several Services on one target port
 * share it, and the first by FQDN, then port, decides (its protocol, its DestinationRule's pool). Sorted by
 * target port. Depends on the Pod only through which Service ports it serves and on which target ports, so
 * the Pods of one workload get equal results (translate/README.md "Shared config").
 */
export function inboundPorts(ctx: TranslateContext): [number, ServiceInstance][] {
  const byPort = new Map<number, ServiceInstance>();
  const ordered = [...proxyInstances(ctx)].sort((a, b) =>
    a.service.fqdn < b.service.fqdn ? -1 : a.service.fqdn > b.service.fqdn ? 1 : a.port.port - b.port.port,
  );
  for (const instance of ordered) {
    if (instance.port.transport !== 'TCP') continue;
    if (!byPort.has(instance.endpoint.port)) byPort.set(instance.endpoint.port, instance);
  }
  return [...byPort.entries()].sort(([a], [b]) => a - b);
}
