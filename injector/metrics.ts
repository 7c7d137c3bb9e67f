// Prometheus metrics of the /inject webhook, registered in the control plane's registry.
import { Counter, Histogram, type Registry } from 'prom-client';

export type InjectionResult = 'injected' | 'skipped' | 'refused' | 'error';

export interface InjectorMetrics {
  readonly injections: Counter<'result'>;
  readonly duration: Histogram<'result'>;
}

const byRegistry = new WeakMap<Registry, InjectorMetrics>();

/** The injector's metrics in `registry` (created once per registry). */
export function injectorMetrics(registry: Registry): InjectorMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    metrics = {
      injections: new Counter({
        name: 'trellis_injections_total',
        help: 'Pod admission reviews answered by /inject, by result: injected, skipped (not selected, opted out, already injected), refused (the pod cannot be injected as written), error (allowed uninjected after an unexpected failure).',
        labelNames: ['result'] as const,
        registers: [registry],
      }),
      duration: new Histogram({
        name: 'trellis_injection_duration_seconds',
        help: 'Time to answer one /inject admission review (injection and JSON Patch), by result.',
        labelNames: ['result'] as const,
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
        registers: [registry],
      }),
    };
    byRegistry.set(registry, metrics);
  }
  return metrics;
}
