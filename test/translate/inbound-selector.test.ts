// The inbound side of a sidecar whose Pod no EndpointSlice lists yet (translate/inbound-ports.ts): it serves
// the ports of the Services of its namespace whose selector its labels match, as Istio does from the proxy's
// metadata, so it starts with the inbound side (and the config) of the Pods of its workload.
import test from 'ava';
import { buildClusters } from '../../control-plane/translate/clusters.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import { meshGenerator } from '../../control-plane/translate/generator.js';
import { buildListeners } from '../../control-plane/translate/listeners.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import type { Json } from './_routes-fixtures.js';
import {
  assertEnvoyResourcesValid,
  contextFor,
  encodeAll,
  envoyProxy,
  namespace,
  pod,
  service,
  slice,
  snapshotOf,
  toJson,
} from './_snapshots.js';

/**
 * default: `web` (http 80 → 8080, grpc 9090, and with `namedPort` metrics 9100 → the container port named
 * `metrics`) selecting app=web, served by Pod web-0 at 10.1.0.5; `db` selecting app=db; shop: a `web` that
 * selects app=web too, in another namespace.
 */
function mesh(namedPort: boolean): MeshObject[] {
  const ports = [
    { name: 'http', port: 80, targetPort: 8080 },
    { name: 'grpc', port: 9090 },
    ...(namedPort ? [{ name: 'metrics', port: 9100, targetPort: 'metrics' }] : []),
  ];
  return [
    namespace('default'),
    namespace('shop'),
    service('default', 'web', ports, { clusterIP: '10.96.0.10' }),
    pod('default', 'web-0', { app: 'web', version: 'v1' }, 'web-sa'),
    slice(
      'default',
      'web-x',
      'web',
      [
        { name: 'http', port: 8080 },
        { name: 'grpc', port: 9090 },
        ...(namedPort ? [{ name: 'metrics', port: 9100 }] : []),
      ],
      [{ address: '10.1.0.5', pod: 'web-0' }],
    ),
    service('default', 'db', [{ name: 'tcp', port: 5432 }], { clusterIP: '10.96.0.12' }),
    service('shop', 'web', [{ name: 'http', port: 80, targetPort: 7070 }], { clusterIP: '10.96.1.10' }),
  ];
}

const webPod = (name: string, ip: string, extra: Partial<ProxyInfo> = {}): ProxyInfo =>
  envoyProxy('default', {
    id: `${name}.default`,
    instanceIps: [ip],
    labels: { app: 'web', version: 'v1' },
    serviceAccount: 'web-sa',
    ...extra,
  });

/** The `inbound|<port>||` clusters and the destination ports of virtualInbound's chains. */
function inbound(objects: MeshObject[], proxy: ProxyInfo): { clusters: string[]; chainPorts: number[] } {
  const ctx = contextFor(snapshotOf(objects), proxy);
  const clusters = buildClusters(ctx)
    .map((c) => c.name)
    .filter((n) => n.startsWith('inbound|'));
  const listener = buildListeners(ctx, []).find((l) => l.name === 'virtualInbound');
  const chains = (toJson(listener!).filterChains as Json[] | undefined) ?? [];
  const chainPorts = [
    ...new Set(
      chains
        .map((c) => (c.filterChainMatch as Json | undefined)?.destinationPort as number | undefined)
        .filter((p): p is number => p !== undefined && p !== 15006),
    ),
  ].sort((a, b) => a - b);
  return { clusters, chainPorts };
}

test('a sidecar whose Pod no EndpointSlice lists yet serves the numeric target ports of the Services selecting it', async (t) => {
  const objects = mesh(true);
  const proxy = webPod('web-1', '10.1.0.9');
  t.deepEqual(inbound(objects, proxy), {
    clusters: ['inbound|8080||', 'inbound|9090||'],
    chainPorts: [8080, 9090],
  });
  const ctx = contextFor(snapshotOf(objects), proxy);
  await assertEnvoyResourcesValid(t, [...buildClusters(ctx), ...buildListeners(ctx, [])]);
});

test('the named target port waits for the Pod’s endpoint, which resolves it', (t) => {
  t.deepEqual(inbound(mesh(true), webPod('web-0', '10.1.0.5')), {
    clusters: ['inbound|8080||', 'inbound|9090||', 'inbound|9100||'],
    chainPorts: [8080, 9090, 9100],
  });
});

test('labels no selector matches, and Services of other namespaces, give no inbound service port', (t) => {
  const none = { clusters: [], chainPorts: [] };
  t.deepEqual(inbound(mesh(false), webPod('web-1', '10.1.0.9', { labels: { app: 'shop' } })), none);
  t.deepEqual(inbound(mesh(false), webPod('web-1', '10.1.0.9', { labels: {} })), none);
  // The shop `web` selects app=web as well, but the proxy is in default: only default's `web` counts.
  t.deepEqual(inbound(mesh(false), webPod('web-1', '10.1.0.9')).clusters, ['inbound|8080||', 'inbound|9090||']);
  t.deepEqual(inbound(mesh(false), envoyProxy('shop', { id: 'web-7.shop', labels: { app: 'web' } })).clusters, [
    'inbound|7070||',
  ]);
});

test('a Pod not listed yet gets the very config of the listed Pods of its workload', (t) => {
  const snapshot = snapshotOf(mesh(false));
  const generator = meshGenerator(defaultMeshConfig);
  const listed = generator.generate(webPod('web-0', '10.1.0.5'), snapshot);
  const starting = generator.generate(webPod('web-1', '10.1.0.9'), snapshot);
  for (const type of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.RouteConfiguration]) {
    t.deepEqual(encodeAll(starting.get(type) ?? []), encodeAll(listed.get(type) ?? []), type);
  }
});
