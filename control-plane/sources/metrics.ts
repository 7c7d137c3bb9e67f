// Prometheus metrics of Kubernetes mode (issue 14): which events reached the model, the rebuilds they
// cost, and the status writes. Registered on the control plane's registry; `/metrics` serves them.
import { Counter, Histogram, type Registry } from 'prom-client';

/** `rebuild`: the model reads something that changed; `ignored`: a status echo, a resourceVersion, … */
export type KubeEventEffect = 'rebuild' | 'ignored';
/** `published`: a new snapshot (proxies are regenerated); `unchanged`: the same hash, nothing published. */
export type RebuildResult = 'published' | 'unchanged';
/** `written`, `conflict` (409, re-read and retried), `error` (retried with backoff), `unchanged` (already right). */
export type StatusWriteResult = 'written' | 'conflict' | 'error' | 'unchanged';

export class KubeModeMetrics {
  readonly events: Counter<'kind' | 'effect'>;
  readonly rebuilds: Counter<'result'>;
  readonly rebuildDuration: Histogram;
  readonly statusWrites: Counter<'result'>;
  readonly statusWriteDuration: Histogram;

  constructor(registry: Registry) {
    this.events = new Counter({
      name: 'trellis_kube_events_total',
      help: 'Object changes from the Kubernetes informers, by kind and effect: rebuild (the model reads what changed) or ignored (status, resourceVersion, managedFields, labels of a routing resource).',
      labelNames: ['kind', 'effect'] as const,
      registers: [registry],
    });
    this.rebuilds = new Counter({
      name: 'trellis_mesh_rebuilds_total',
      help: 'Mesh snapshot rebuilds, by result: published (a new snapshot) or unchanged (same hash, nothing pushed).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.rebuildDuration = new Histogram({
      name: 'trellis_mesh_rebuild_duration_seconds',
      help: 'Time to apply one batch of Kubernetes changes to the store and rebuild the mesh snapshot.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.statusWrites = new Counter({
      name: 'trellis_status_writes_total',
      help: 'Status checks and writes of VirtualServices, DestinationRules and PeerAuthentications, by result: written, conflict (409, retried), error (retried with backoff), unchanged (already right, no request).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.statusWriteDuration = new Histogram({
      name: 'trellis_status_write_duration_seconds',
      help: 'Time of one status PATCH (conflict re-reads and retries included).',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    });
  }
}
