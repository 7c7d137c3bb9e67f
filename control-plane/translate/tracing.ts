// HCM tracing with Envoy's OpenTelemetry tracer (envoy-translation.md §4): spans go over OTLP/gRPC to the
// collector cluster (Jaeger) that the mesh config names; sampling is the mesh's percentage (Istio's
// default 1%). Only Envoy sidecars trace this way: grpc-js ignores HCM tracing.
import { create } from '@bufbuild/protobuf';
import { OpenTelemetryConfigSchema } from '../envoy/gen/envoy/config/trace/v3/opentelemetry_pb.js';
import type { HttpConnectionManager_TracingSchema } from '../envoy/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js';
import { packAny } from '../envoy/protos.js';
import type { ProxyInfo } from '../xds/node.js';
import { OTEL_COLLECTOR_CLUSTER } from './cluster-names.js';
import type { TracingConfig } from './context.js';
import type { InitOf } from './route-values.js';

export type TracingInit = InitOf<typeof HttpConnectionManager_TracingSchema>;

export const OPENTELEMETRY_TRACER = 'envoy.tracers.opentelemetry';

/**
 * The service name spans carry: Istio uses the node cluster `<app>.<namespace>`. Built from the labels (not
 * `node.cluster`, which the generator's per-shape memo does not key on), else the node id.
 */
export function tracingServiceName(proxy: ProxyInfo): string {
  const app = proxy.labels.app ?? proxy.labels['app.kubernetes.io/name'];
  if (app !== undefined && app !== '') return `${app}.${proxy.namespace}`;
  return proxy.id;
}

/** HCM `tracing`, or undefined when the mesh has no collector (tracing off). */
export function hcmTracing(tracing: TracingConfig, proxy: ProxyInfo): TracingInit | undefined {
  if (tracing.collector === undefined || tracing.collector === '') return undefined;
  const authority = tracing.collector.replace(/:[0-9]+$/, '');
  const config = create(OpenTelemetryConfigSchema, {
    grpcService: { targetSpecifier: { case: 'envoyGrpc', value: { clusterName: OTEL_COLLECTOR_CLUSTER, authority } } },
    serviceName: tracingServiceName(proxy),
  });
  return {
    provider: { name: OPENTELEMETRY_TRACER, configType: { case: 'typedConfig', value: packAny(config) } },
    randomSampling: { value: Math.min(100, Math.max(0, tracing.samplingPercent)) },
    // Istio: a sampling decision made upstream (x-b3-sampled / traceparent) and forced traces always win.
    clientSampling: { value: 100 },
    overallSampling: { value: 100 },
  };
}
