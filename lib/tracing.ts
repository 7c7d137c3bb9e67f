// The narrow tracing interface the control plane (xds/, ca/, webhook/, sources/) and the agent call. Until
// startTracing() installs the OpenTelemetry SDK, tracer() is a no-op whose spans do nothing: nothing of
// OpenTelemetry is loaded, and the hot paths check `tracer().enabled` before building attributes, so
// tracing off costs a property read (bench/tracing.ts measures it). The SDK lives in tracing-sdk.ts and is
// imported only when tracing is on. A leaf: no imports of the product, usable by the control plane and the
// agent alike.
//
// When tracing is on (tracingSettings):
//   - the standard OTEL_* variables: OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
//     OTEL_TRACES_EXPORTER (other than `none`), turn it on; then the SDK reads every OTEL_* variable itself
//     (protocol, sampler, propagators, resource attributes, service name). OTEL_SDK_DISABLED=true turns it
//     off whatever else is set;
//   - else a `collector` (host:port of an OTLP/gRPC receiver, the mesh config's `tracing.collector`) turns
//     it on, sampling `samplingPercent` of root spans (parent-based: a sampled parent's children follow).

import type { TraceSpan, Tracer, TracingSettings } from './trace-types.js';

export type { SpanOptions, TraceAttributes, TraceSpan, Tracer, TracingSettings } from './trace-types.js';

const noopSpan: TraceSpan = Object.freeze({
  recording: false,
  setAttributes: () => undefined,
  addEvent: () => undefined,
  fail: () => undefined,
  end: () => undefined,
  headers: () => ({}),
});

export const noopTracer: Tracer = Object.freeze({
  enabled: false,
  startSpan: () => noopSpan,
  flush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
});

let current: Tracer = noopTracer;

/** The tracer in use: the no-op tracer until startTracing() turned tracing on. */
export function tracer(): Tracer {
  return current;
}

/** Installs `next` as the process's tracer (startTracing does; tests may install their own). */
export function setTracer(next: Tracer): void {
  current = next;
}

export interface TracingRequest {
  /** `service.name` unless OTEL_SERVICE_NAME says otherwise: `trellisd`, `trellis-agent`. */
  readonly serviceName: string;
  /**
   * Where the on/off decision reads OTEL_* (default process.env; tests pass their own). With `source: 'env'`
   * the SDK itself reads process.env, so a process that is to export sets its variables there.
   */
  readonly env?: NodeJS.ProcessEnv;
  /** host:port of an OTLP/gRPC collector (the mesh config's `tracing.collector`). */
  readonly collector?: string;
  /** Percentage of root spans sampled with `collector`; default 1 (the mesh config's default). */
  readonly samplingPercent?: number;
}

function isSet(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

/** Whether and how tracing is on for this request; undefined: off (nothing is loaded). */
export function tracingSettings(request: TracingRequest): TracingSettings | undefined {
  const env = request.env ?? process.env;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const exporters = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporters === 'none') return undefined;
  if (isSet(env.OTEL_EXPORTER_OTLP_ENDPOINT) || isSet(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) || isSet(exporters)) {
    return { source: 'env', serviceName: request.serviceName };
  }
  if (isSet(request.collector)) {
    return {
      source: 'collector',
      serviceName: request.serviceName,
      endpoint: `http://${request.collector}`,
      samplingPercent: Math.min(100, Math.max(0, request.samplingPercent ?? 1)),
    };
  }
  return undefined;
}

/**
 * Turns tracing on when tracingSettings() says so: loads the SDK (tracing-sdk.ts), installs it as tracer()
 * and returns it; otherwise returns the no-op tracer without loading anything.
 */
export async function startTracing(request: TracingRequest): Promise<Tracer> {
  const settings = tracingSettings(request);
  if (!settings) return noopTracer;
  const { startSdkTracer } = await import('./tracing-sdk.js');
  const started = startSdkTracer(settings, request.env ?? process.env, () => setTracer(noopTracer));
  setTracer(started);
  return started;
}
