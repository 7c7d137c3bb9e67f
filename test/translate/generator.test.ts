// meshGenerator: per-proxy composition of the translator modules, memoized per snapshot and proxy shape
// (the resource cache encodes once per array/message identity); and `--mesh-config` parsing.
import test from 'ava';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import { parseManifests } from '../../control-plane/sources/manifests.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import { meshGenerator } from '../../control-plane/translate/generator.js';
import { MeshConfigError, parseMeshConfig } from '../../control-plane/translate/mesh-config.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';

const yaml = `
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: demo }
spec: { ports: [{ name: grpc, port: 8080, targetPort: 50051 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: echo-1, namespace: demo, labels: { kubernetes.io/service-name: echo } }
addressType: IPv4
ports: [{ name: grpc, port: 50051, protocol: TCP }]
endpoints: [{ addresses: [10.0.0.1] }]
`;

function snapshot() {
  return buildSnapshot(parseManifests(yaml, 'test.yaml').objects, { validate: validateRoutingResource, formatIssue });
}

function proxy(overrides: Partial<ProxyInfo> = {}): ProxyInfo {
  return {
    id: 'client-1.demo',
    cluster: '',
    namespace: 'demo',
    serviceAccount: 'default',
    labels: { app: 'client' },
    instanceIps: [],
    proxyType: 'grpc',
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: 'grpc-node-js',
    ...overrides,
  };
}

test('proxies of the same shape get the very same arrays; another shape gets its own', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const snap = snapshot();
  const a = generator.generate(proxy(), snap);
  const b = generator.generate(proxy({ id: 'client-2.demo', userAgent: 'other', cluster: 'x' }), snap);
  t.deepEqual(
    [...a.keys()].sort(),
    [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration].sort(),
  );
  for (const typeUrl of a.keys()) t.is(a.get(typeUrl), b.get(typeUrl), `${typeUrl} not shared`);
  const built = generator.generations();
  t.true(a.get(TypeUrl.Cluster)!.length > 0);
  t.is(a.get(TypeUrl.ClusterLoadAssignment)!.length, a.get(TypeUrl.Cluster)!.length);

  // Labels no policy selects on, the service account and the locality do not matter.
  generator.generate(
    proxy({ labels: { app: 'other' }, serviceAccount: 'x', locality: { region: 'r', zone: '', subZone: '' } }),
    snap,
  );
  t.is(generator.generations(), built);
  // The namespace and the type do.
  const c = generator.generate(proxy({ namespace: 'other' }), snap);
  t.not(c.get(TypeUrl.Listener), a.get(TypeUrl.Listener));
  t.true(generator.generations() > built);
  const e = generator.generate(proxy({ proxyType: 'envoy' }), snap);
  t.not(e.get(TypeUrl.Cluster), a.get(TypeUrl.Cluster));

  // A new snapshot with equal content gets the very same arrays (the parts are kept under content keys).
  const d = generator.generate(proxy(), snapshot());
  for (const typeUrl of a.keys()) t.is(d.get(typeUrl), a.get(typeUrl), `${typeUrl} rebuilt for equal content`);
});

test('sidecars of one namespace share ClusterLoadAssignment messages, though their Pods differ', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const snap = snapshot();
  const a = generator.generate(proxy({ proxyType: 'envoy', id: 'a.demo' }), snap);
  const b = generator.generate(proxy({ proxyType: 'envoy', id: 'b.demo', labels: { app: 'b' } }), snap);
  const claA = a.get(TypeUrl.ClusterLoadAssignment)!;
  const claB = b.get(TypeUrl.ClusterLoadAssignment)!;
  t.true(claA.length > 0);
  t.is(claA, claB);
  // Another proxy type gets its own (Envoy's carry transport-socket-match metadata).
  const g = generator.generate(proxy(), snap).get(TypeUrl.ClusterLoadAssignment)!;
  t.false(g[0] === claA[0]);
});

test('a sidecar serving a Service has its own inbound side; a proxyless server its own listeners', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const snap = snapshot();
  const client = generator.generate(proxy({ proxyType: 'envoy', id: 'client.demo' }), snap);
  const server = generator.generate(proxy({ proxyType: 'envoy', id: 'echo-0.demo', instanceIps: ['10.0.0.1'] }), snap);
  t.not(server.get(TypeUrl.Cluster), client.get(TypeUrl.Cluster));
  t.is(server.get(TypeUrl.RouteConfiguration), client.get(TypeUrl.RouteConfiguration));
  t.is(server.get(TypeUrl.ClusterLoadAssignment), client.get(TypeUrl.ClusterLoadAssignment));
  const grpcServer = generator.generate(proxy({ instanceIps: ['10.0.0.1'] }), snap);
  const grpcClient = generator.generate(proxy(), snap);
  t.not(grpcServer.get(TypeUrl.Listener), grpcClient.get(TypeUrl.Listener));
  t.is(grpcServer.get(TypeUrl.Cluster), grpcClient.get(TypeUrl.Cluster));
});

test('--mesh-config: defaults, every field, and errors that name the field', (t) => {
  t.deepEqual(parseMeshConfig(undefined), defaultMeshConfig);
  t.deepEqual(parseMeshConfig({}), defaultMeshConfig);
  t.deepEqual(
    parseMeshConfig({
      trustDomain: 'example.org',
      mtlsMode: 'STRICT',
      connectTimeout: '2s',
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
      tracing: { samplingPercent: 10, collector: 'jaeger.observability:4317' },
      accessLog: true,
    }),
    {
      trustDomain: 'example.org',
      mtlsMode: 'STRICT',
      connectTimeout: '2s',
      outboundTrafficPolicy: 'REGISTRY_ONLY',
      tracing: { provider: 'opentelemetry', samplingPercent: 10, collector: 'jaeger.observability:4317' },
      accessLog: true,
    },
  );
  t.is(parseMeshConfig({ outboundTrafficPolicy: 'REGISTRY_ONLY' }).outboundTrafficPolicy, 'REGISTRY_ONLY');
  const error = t.throws(
    () =>
      parseMeshConfig(
        {
          trustDomain: 'Bad_Domain',
          mtlsMode: 'strict',
          connectTimeout: '0s',
          outboundTrafficPolicy: 'DENY',
          tracing: { samplingPercent: 101, collector: 'jaeger', extra: 1 },
          accessLog: 'yes',
          typo: 1,
        },
        'mesh.yaml',
      ),
    { instanceOf: MeshConfigError },
  );
  t.deepEqual(
    error.errors.map((e) => e.split(':').slice(0, 2).join(':')),
    [
      'mesh.yaml: typo',
      'mesh.yaml: trustDomain',
      'mesh.yaml: mtlsMode',
      'mesh.yaml: connectTimeout',
      'mesh.yaml: outboundTrafficPolicy',
      'mesh.yaml: tracing.extra',
      'mesh.yaml: tracing.samplingPercent',
      'mesh.yaml: tracing.collector',
      'mesh.yaml: accessLog',
    ],
  );
  t.throws(() => parseMeshConfig(['STRICT'], 'mesh.yaml'), { message: /mesh\.yaml: must be a map/ });
});
