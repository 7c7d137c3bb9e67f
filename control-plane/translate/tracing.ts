// HCM tracing (envoy-translation.md §4) from the mesh config's `tracing`: Envoy's OpenTelemetry tracer over
// OTLP/gRPC to the collector cluster (Jaeger :4317; W3C `traceparent` propagation), or its Zipkin tracer
// (JSON v2 over HTTP to `/api/v2/spans` on the collector; B3 headers, 128-bit trace ids, no shared span
// context, as Istio sets it). Sampling is the mesh's percentage (Istio's default 1%); a decision made
// upstream (a sampled traceparent or x-b3-sampled) and forced traces always win (client and overall
// sampling 100%). `customTags` become the HCM's custom_tags, sorted by tag name. Only Envoy sidecars trace
// this way: grpc-js ignores HCM tracing (proxyless apps trace with their own OpenTelemetry SDK).
import { create } from '@bufbuild/protobuf';
import { OpenTelemetryConfigSchema } from '../envoy/gen/envoy/config/trace/v3/opentelemetry_pb.js';
import {
  ZipkinConfig_CollectorEndpointVersion,
  ZipkinConfigSchema,
} from '../envoy/gen/envoy/config/trace/v3/zipkin_pb.js';
import type { HttpConnectionManager_TracingSchema } from '../envoy/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js';
import type { CustomTagSchema } from '../envoy/gen/envoy/type/tracing/v3/custom_tag_pb.js';
import { packAny } from '../envoy/protos.js';
import type { ProxyInfo } from '../xds/node.js';
import { OTEL_COLLECTOR_CLUSTER, ZIPKIN_COLLECTOR_CLUSTER } from './cluster-names.js';
import type { CustomTag, TracingConfig } from './context.js';
import type { InitOf } from './route-values.js';

export type TracingInit = InitOf<typeof HttpConnectionManager_TracingSchema>;
type CustomTagInit = InitOf<typeof CustomTagSchema>;

export const OPENTELEMETRY_TRACER = 'envoy.tracers.opentelemetry';
export const ZIPKIN_TRACER = 'envoy.tracers.zipkin';
/** Where Zipkin (and Jaeger's Zipkin receiver) takes spans. */
export const ZIPKIN_SPANS_PATH = '/api/v2/spans';

/**
 * The service name spans carry: Istio uses the node cluster `<app>.<namespace>`. Built from the labels (not
 * `node.cluster`, which the generator's per-shape memo does not key on), else the node id.
 */
export function tracingServiceName(proxy: ProxyInfo): string {
  const app = proxy.labels.app ?? proxy.labels['app.kubernetes.io/name'];
  if (app !== undefined && app !== '') return `${app}.${proxy.namespace}`;
  return proxy.id;
}

/** The collector cluster of the mesh's tracing provider. */
export function collectorClusterName(tracing: TracingConfig): string {
  return tracing.provider === 'zipkin' ? ZIPKIN_COLLECTOR_CLUSTER : OTEL_COLLECTOR_CLUSTER;
}

function customTag(tag: string, spec: CustomTag): CustomTagInit {
  if ('literal' in spec) return { tag, type: { case: 'literal', value: { value: spec.literal.value } } };
  if ('environment' in spec) {
    const { name, defaultValue } = spec.environment;
    return { tag, type: { case: 'environment', value: { name, defaultValue: defaultValue ?? '' } } };
  }
  const { name, defaultValue } = spec.header;
  return { tag, type: { case: 'requestHeader', value: { name, defaultValue: defaultValue ?? '' } } };
}

function provider(tracing: TracingConfig, collector: string, proxy: ProxyInfo): TracingInit['provider'] {
  const host = collector.replace(/:[0-9]+$/, '').replace(/^\[(.*)\]$/, '$1');
  if (tracing.provider === 'zipkin') {
    const config = create(ZipkinConfigSchema, {
      collectorCluster: ZIPKIN_COLLECTOR_CLUSTER,
      collectorEndpoint: ZIPKIN_SPANS_PATH,
      collectorEndpointVersion: ZipkinConfig_CollectorEndpointVersion.HTTP_JSON,
      collectorHostname: host,
      traceId128bit: true,
      sharedSpanContext: false,
    });
    return { name: ZIPKIN_TRACER, configType: { case: 'typedConfig', value: packAny(config) } };
  }
  const config = create(OpenTelemetryConfigSchema, {
    grpcService: {
      targetSpecifier: { case: 'envoyGrpc', value: { clusterName: OTEL_COLLECTOR_CLUSTER, authority: host } },
    },
    serviceName: tracingServiceName(proxy),
  });
  return { name: OPENTELEMETRY_TRACER, configType: { case: 'typedConfig', value: packAny(config) } };
}

/** HCM `tracing`, or undefined when the mesh has no collector (tracing off). */
export function hcmTracing(tracing: TracingConfig, proxy: ProxyInfo): TracingInit | undefined {
  if (tracing.collector === undefined || tracing.collector === '') return undefined;
  const tags = Object.keys(tracing.customTags ?? {})
    .sort()
    .map((tag) => customTag(tag, tracing.customTags![tag]!));
  return {
    provider: provider(tracing, tracing.collector, proxy),
    randomSampling: { value: Math.min(100, Math.max(0, tracing.samplingPercent)) },
    // Istio: a sampling decision made upstream (x-b3-sampled / traceparent) and forced traces always win.
    clientSampling: { value: 100 },
    overallSampling: { value: 100 },
    ...(tags.length > 0 ? { customTags: tags } : {}),
  };
}
