// Mesh tracing (translate/tracing.ts, mesh-config.ts `tracing`): the HCM tracing and the collector cluster of
// an Envoy sidecar for each provider, custom tags, the mesh config's checks, and Envoy's own validation
// (tools/peers/envoy-validate) of every resource.
import test from 'ava';
import { buildClusters } from '../../control-plane/translate/clusters.js';
import { buildListeners } from '../../control-plane/translate/listeners.js';
import type { MeshConfig, TracingConfig } from '../../control-plane/translate/context.js';
import { MeshConfigError, parseMeshConfig } from '../../control-plane/translate/mesh-config.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import { at, listenerJson, type Json } from './_routes-fixtures.js';
import {
  assertEnvoyResourcesValid,
  contextFor,
  envoyProxy,
  grpcProxy,
  namespace,
  pod,
  service,
  slice,
  snapshotOf,
  toJson,
} from './_snapshots.js';

const snapshot = snapshotOf([
  namespace('default'),
  service('default', 'web', [{ name: 'http', port: 80, targetPort: 8080 }], { clusterIP: '10.96.0.10' }),
  pod('default', 'web-0', { app: 'web' }, 'web-sa'),
  slice('default', 'web-x', 'web', [{ name: 'http', port: 8080 }], [{ address: '10.1.0.5', pod: 'web-0' }]),
]);
const web: ProxyInfo = envoyProxy('default', {
  id: 'web-0.default',
  instanceIps: ['10.1.0.5'],
  labels: { app: 'web' },
});

function build(tracing: TracingConfig, proxy: ProxyInfo = web) {
  const ctx = contextFor(snapshot, proxy, { tracing } as Partial<MeshConfig>);
  const notes: string[] = [];
  return { listeners: buildListeners(ctx, notes), clusters: buildClusters(ctx) };
}

const hcmOf = (listeners: ReturnType<typeof build>['listeners'], name = '0.0.0.0_80'): Json =>
  at(listenerJson(listeners, name), 'filterChains', 0, 'filters', 0, 'typedConfig') as Json;

test('zipkin: the Zipkin tracer (JSON v2 to /api/v2/spans, 128-bit ids) and an HTTP/1.1 collector cluster', async (t) => {
  const { listeners, clusters } = build(
    parseMeshConfig({ tracing: { provider: 'zipkin', collector: 'jaeger.observability:9411', samplingPercent: 5 } })
      .tracing,
  );
  await assertEnvoyResourcesValid(t, [...listeners, ...clusters]);
  t.deepEqual(hcmOf(listeners).tracing, {
    clientSampling: { value: 100 },
    randomSampling: { value: 5 },
    overallSampling: { value: 100 },
    provider: {
      name: 'envoy.tracers.zipkin',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
        collectorCluster: 'zipkin-collector',
        collectorEndpoint: '/api/v2/spans',
        traceId128bit: true,
        sharedSpanContext: false,
        collectorEndpointVersion: 'HTTP_JSON',
        collectorHostname: 'jaeger.observability',
      },
    },
  });
  const collector = clusters.map(toJson).find((c) => c.name === 'zipkin-collector');
  t.like(collector, { type: 'STRICT_DNS', dnsLookupFamily: 'V4_PREFERRED' });
  t.false('typedExtensionProtocolOptions' in collector!, 'Zipkin speaks HTTP/1.1: no HTTP/2 options');
  t.false(clusters.some((c) => c.name === 'opentelemetry-collector'));
});

test('opentelemetry (the default provider): OTLP/gRPC to the collector cluster over HTTP/2, custom tags sorted by name', async (t) => {
  const tracing = parseMeshConfig({
    tracing: {
      collector: '10.0.0.7:4317',
      customTags: {
        zone: { environment: { name: 'ZONE', defaultValue: 'unknown' } },
        cluster: { literal: { value: 'east' } },
        user: { header: { name: 'x-user' } },
      },
    },
  }).tracing;
  t.is(tracing.provider, 'opentelemetry');
  t.is(tracing.samplingPercent, 1, 'the default sampling is 1%');
  const { listeners, clusters } = build(tracing);
  await assertEnvoyResourcesValid(t, [...listeners, ...clusters]);
  const hcm = hcmOf(listeners);
  t.like(hcm.tracing, {
    randomSampling: { value: 1 },
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typedConfig: {
        grpcService: { envoyGrpc: { clusterName: 'opentelemetry-collector', authority: '10.0.0.7' } },
        serviceName: 'web.default',
      },
    },
  });
  t.deepEqual((hcm.tracing as Json).customTags, [
    { tag: 'cluster', literal: { value: 'east' } },
    { tag: 'user', requestHeader: { name: 'x-user' } },
    { tag: 'zone', environment: { name: 'ZONE', defaultValue: 'unknown' } },
  ]);
  const inbound = (listenerJson(listeners, 'virtualInbound').filterChains as Json[]).find(
    (c) => c.name === '0.0.0.0_8080',
  )!;
  t.deepEqual(
    (at(inbound, 'filters', 0, 'typedConfig') as Json).tracing,
    hcm.tracing,
    'the inbound (server) side traces alike',
  );
  const collector = clusters.map(toJson).find((c) => c.name === 'opentelemetry-collector');
  t.like(collector, { type: 'STATIC' });
  t.truthy(collector!.typedExtensionProtocolOptions, 'OTLP/gRPC needs HTTP/2');
});

test('no collector, no tracing; proxyless gRPC never gets HCM tracing or a collector cluster', (t) => {
  const off = build({ samplingPercent: 100 });
  t.false('tracing' in hcmOf(off.listeners));
  t.false(off.clusters.some((c) => c.name.endsWith('-collector')));
  const grpc = build(
    parseMeshConfig({ tracing: { collector: 'jaeger:4317' } }).tracing,
    grpcProxy('default', { id: 'g.default' }),
  );
  t.false(grpc.clusters.some((c) => c.name.endsWith('-collector')));
  t.false(JSON.stringify(grpc.listeners.map(toJson)).includes('envoy.tracers'));
});

test('the mesh config names every bad tracing field', (t) => {
  const err = t.throws(
    () =>
      parseMeshConfig(
        {
          tracing: {
            provider: 'jaeger',
            samplingPercent: 101,
            collector: 'nohost',
            sampling: 1,
            customTags: {
              a: { literal: { value: 1 } },
              b: { header: { name: 'bad header' } },
              c: { literal: { value: 'x' }, header: { name: 'x' } },
              d: { environment: {} },
            },
          },
        },
        'mesh.yaml',
      ),
    { instanceOf: MeshConfigError },
  );
  t.deepEqual([...err.errors].sort(), [
    'mesh.yaml: tracing.collector: must be host:port of an OTLP/gRPC collector (jaeger:4317), not "nohost"',
    'mesh.yaml: tracing.customTags.a.literal.value: must be a string, not 1',
    'mesh.yaml: tracing.customTags.b.header.name: must be an HTTP header name, not "bad header"',
    'mesh.yaml: tracing.customTags.c: must have exactly one of literal, environment, header, not {"literal":{"value":"x"},"header":{"name":"x"}}',
    'mesh.yaml: tracing.customTags.d.environment.name: must be an environment variable name, not undefined',
    'mesh.yaml: tracing.provider: must be opentelemetry or zipkin, not "jaeger"',
    'mesh.yaml: tracing.sampling: unknown field (known: provider, samplingPercent, collector, customTags)',
    'mesh.yaml: tracing.samplingPercent: must be a number from 0 to 100, not 101',
  ]);
});
