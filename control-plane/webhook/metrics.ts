// Prometheus metrics of the admission webhooks (server.ts), registered in the control plane's registry:
// every AdmissionReview a handler answered, by path (`/validate`, `/inject`) and result, and the handler's
// time (the JSON already parsed; the verdict or patch computed). `timedHandlers` wraps the handlers the
// server is given, so the server itself stays free of metrics.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { AdmissionHandler } from './server.js';
import type { AdmissionReview } from './validate.js';

/** `allowed`, `denied` (allowed: false), `error` (the handler threw: the server answers HTTP 500). */
export type WebhookResult = 'allowed' | 'denied' | 'error';

export interface WebhookMetrics {
  readonly reviews: Counter<'path' | 'result'>;
  readonly duration: Histogram<'path'>;
}

const byRegistry = new WeakMap<Registry, WebhookMetrics>();

/** The webhook metrics in `registry` (created once per registry). */
export function webhookMetrics(registry: Registry): WebhookMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    metrics = {
      reviews: new Counter({
        name: 'trellis_webhook_reviews_total',
        help: 'AdmissionReviews answered by the webhooks, by path (/validate, /inject) and result: allowed, denied, error (the handler failed: HTTP 500).',
        labelNames: ['path', 'result'] as const,
        registers: [registry],
      }),
      duration: new Histogram({
        name: 'trellis_webhook_duration_seconds',
        help: 'Time to judge one AdmissionReview (validation verdict, or injection and its JSON Patch), by path.',
        labelNames: ['path'] as const,
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
        registers: [registry],
      }),
    };
    byRegistry.set(registry, metrics);
  }
  return metrics;
}

/** `handlers`, each counted and timed in `registry` under its path. */
export function timedHandlers(
  registry: Registry,
  handlers: Readonly<Record<string, AdmissionHandler>>,
): Record<string, AdmissionHandler> {
  const metrics = webhookMetrics(registry);
  const out: Record<string, AdmissionHandler> = {};
  for (const [path, handler] of Object.entries(handlers)) {
    out[path] = async (request): Promise<AdmissionReview> => {
      const stop = metrics.duration.startTimer({ path });
      try {
        const review = await handler(request);
        metrics.reviews.inc({ path, result: review.response?.allowed === false ? 'denied' : 'allowed' });
        return review;
      } catch (err) {
        metrics.reviews.inc({ path, result: 'error' });
        throw err;
      } finally {
        stop();
      }
    };
  }
  return out;
}
