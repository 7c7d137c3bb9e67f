// Typed reads of the monitoring port: what each proxy was sent and ACKed (/debug/proxies), and metrics.
import type { StreamStatus } from '../../control-plane/xds/xds-stream.js';
import type { TypeStatus } from '../../control-plane/xds/type-state.js';

/** `/debug/proxies` as JSON (the StreamStatus of every open stream). */
export async function debugProxies(monitoringPort: number): Promise<StreamStatus[]> {
  const res = await fetch(`http://127.0.0.1:${monitoringPort}/debug/proxies`);
  if (res.status !== 200) throw new Error(`/debug/proxies answered ${res.status}`);
  return (await res.json()) as StreamStatus[];
}

/** The status of one type (`CDS`, `EDS`, …) on the stream of proxy `id`, if there is one. */
export async function typeStatus(monitoringPort: number, id: string, type: string): Promise<TypeStatus | undefined> {
  const proxy = (await debugProxies(monitoringPort)).find((p) => p.node?.id === id);
  return proxy?.types.find((x) => x.type === type);
}

/** `/metrics` text. */
export async function metricsText(monitoringPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${monitoringPort}/metrics`)).text();
}
