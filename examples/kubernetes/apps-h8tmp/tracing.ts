// OpenTelemetry for the example apps, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: the SDK with an OTLP
// gRPC trace exporter and the gRPC instrumentation, so one request frontend → reviews → ratings is one trace
// (the W3C traceparent travels in gRPC metadata). The instrumentation patches @grpc/grpc-js when it is
// loaded through require (require-in-the-middle). These apps are ES modules, whose imports do not pass
// through require: so this module must run before anything imports @grpc/grpc-js, and it loads the package
// once through require itself; the ES module imports that follow get the patched exports from the cache.
// The xDS client's own streams (ADS, LRS) and the exporter's calls are not traced.
import { createRequire } from 'node:module';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { NodeSDK } from '@opentelemetry/sdk-node';

export interface Tracing {
  shutdown(): Promise<void>;
}

export const UNTRACED_METHODS = ['StreamAggregatedResources', 'DeltaAggregatedResources', 'StreamLoadStats'];

/** Starts the SDK for `serviceName` (OTEL_SERVICE_NAME wins). Call before anything imports @grpc/grpc-js. */
export function startTracing(serviceName: string, attributes: Readonly<Record<string, string>>): Tracing {
  // Resource attributes (service.version, k8s.pod.name) through the SDK's own environment detector,
  // unless the deployment set OTEL_RESOURCE_ATTRIBUTES itself.
  process.env.OTEL_RESOURCE_ATTRIBUTES ??= Object.entries(attributes)
    .map(([key, value]) => `${key}=${encodeURIComponent(value)}`)
    .join(',');
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? serviceName,
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [new GrpcInstrumentation({ ignoreGrpcMethods: UNTRACED_METHODS })],
  });
  sdk.start();
  createRequire(import.meta.url)('@grpc/grpc-js');
  return { shutdown: () => sdk.shutdown() };
}
