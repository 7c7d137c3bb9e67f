// LDS for both proxy types (envoy-translation.md §3, grpc-js-xds.md §2–§3). Every listener a test builds
// passes Envoy's own validation; every proxyless one is decoded and accepted by grpc-js-xds.
import test from 'ava';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { Listener } from '../../control-plane/envoy/gen/envoy/config/listener/v3/listener_pb.js';
import { encodeMessage } from '../../control-plane/envoy/protos.js';
import type { MeshConfig } from '../../control-plane/translate/context.js';
import { buildListeners } from '../../control-plane/translate/listeners.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
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
  virtualService,
} from './_snapshots.js';
import { assertGrpcAccepts, at, grpcNack, listenerJson, type Json } from './_routes-fixtures.js';

const DB = 'db.default.svc.cluster.local';
const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/**
 * default: `web` (HTTP, port 80 → target 8080, and grpc 9090) served by Pod web-0 at 10.1.0.5; `db` (TCP 5432,
 * cluster IP 10.96.0.12) with a 70/30 VirtualService; shop: `cart` (gRPC 7000).
 */
function mesh(...extra: MeshObject[]): MeshObject[] {
  return [
    namespace('default'),
    namespace('shop'),
    service(
      'default',
      'web',
      [
        { name: 'http', port: 80, targetPort: 8080 },
        { name: 'grpc', port: 9090 },
      ],
      { clusterIP: '10.96.0.10' },
    ),
    pod('default', 'web-0', { app: 'web', version: 'v1' }, 'web-sa'),
    slice(
      'default',
      'web-x',
      'web',
      [
        { name: 'http', port: 8080 },
        { name: 'grpc', port: 9090 },
      ],
      [{ address: '10.1.0.5', pod: 'web-0' }],
    ),
    service('default', 'db', [{ name: 'tcp', port: 5432 }], { clusterIP: '10.96.0.12' }),
    service('shop', 'cart', [{ name: 'grpc', port: 7000 }], { clusterIP: '10.96.0.9' }),
    virtualService('default', 'db', {
      hosts: ['db'],
      tcp: [
        { match: [{ port: 1 }], route: [{ destination: { host: 'db', subset: 'never' } }] },
        {
          route: [
            { destination: { host: 'db', subset: 'a' }, weight: 70 },
            { destination: { host: 'db', subset: 'b' }, weight: 30 },
            { destination: { host: 'db', subset: 'c' }, weight: 0 },
          ],
        },
      ],
    }),
    ...extra,
  ];
}

const webSidecar = (extra: Partial<ProxyInfo> = {}) =>
  envoyProxy('default', { id: 'web-0.default', instanceIps: ['10.1.0.5'], labels: { app: 'web' }, ...extra });
const webGrpc = (extra: Partial<ProxyInfo> = {}) =>
  grpcProxy('default', { id: 'web-0.default', instanceIps: ['10.1.0.5'], ...extra });

function build(
  proxy: ProxyInfo,
  meshConfig: Partial<MeshConfig> = {},
  objects = mesh(),
): { listeners: Listener[]; notes: string[] } {
  const notes: string[] = [];
  return { listeners: buildListeners(contextFor(snapshotOf(objects), proxy, meshConfig), notes), notes };
}

const filterConfig = (chain: unknown, i = 0) => at(chain, 'filters', i, 'typedConfig') as Json;
const chains = (listener: Json) => (listener.filterChains as Json[] | undefined) ?? [];

// ---------------------------------------------------------------------------------------------------
// Envoy sidecar

test('sidecar: 15001, one 0.0.0.0_<port> per HTTP port, <clusterIP>_<port> per TCP Service, 15006', async (t) => {
  const { listeners } = build(webSidecar());
  await assertEnvoyResourcesValid(t, listeners);
  t.deepEqual(
    listeners.map((l) => l.name),
    ['virtualOutbound', '0.0.0.0_80', '0.0.0.0_7000', '0.0.0.0_9090', '10.96.0.12_5432', 'virtualInbound'],
  );
});

test('sidecar virtualOutbound: original destination, loop guard, passthrough (or blackhole) default', async (t) => {
  const allow = build(webSidecar()).listeners;
  const block = build(webSidecar(), { outboundTrafficPolicy: 'REGISTRY_ONLY' }).listeners;
  await assertEnvoyResourcesValid(t, [...allow, ...block]);
  const vo = listenerJson(allow, 'virtualOutbound');
  t.like(vo, {
    address: { socketAddress: { address: '0.0.0.0', portValue: 15001 } },
    useOriginalDst: true,
    trafficDirection: 'OUTBOUND',
  });
  t.false('listenerFilters' in vo);
  t.like(chains(vo)[0], { name: 'virtualOutbound-blackhole', filterChainMatch: { destinationPort: 15001 } });
  t.is(filterConfig(chains(vo)[0]).cluster, 'BlackHoleCluster');
  t.is(filterConfig(at(vo, 'defaultFilterChain')).cluster, 'PassthroughCluster');
  t.is(filterConfig(at(listenerJson(block, 'virtualOutbound'), 'defaultFilterChain')).cluster, 'BlackHoleCluster');
});

test('sidecar HTTP port: not bound, http_inspector, HCM with RDS "<port>" over ADS, fault → cors → router', async (t) => {
  const { listeners } = build(webSidecar());
  await assertEnvoyResourcesValid(t, listeners);
  const l = listenerJson(listeners, '0.0.0.0_80');
  t.like(l, {
    bindToPort: false,
    address: { socketAddress: { address: '0.0.0.0', portValue: 80 } },
    trafficDirection: 'OUTBOUND',
  });
  t.deepEqual(
    (l.listenerFilters as Json[]).map((f) => f.name),
    ['envoy.filters.listener.http_inspector'],
  );
  t.deepEqual(at(chains(l)[0], 'filterChainMatch'), {
    transportProtocol: 'raw_buffer',
    applicationProtocols: ['http/1.0', 'http/1.1', 'h2c'],
  });
  const hcm = filterConfig(chains(l)[0]);
  t.is(hcm['@type'], HCM_TYPE);
  t.deepEqual(hcm.rds, {
    configSource: { ads: {}, initialFetchTimeout: '0s', resourceApiVersion: 'V3' },
    routeConfigName: '80',
  });
  t.deepEqual(
    (hcm.httpFilters as Json[]).map((f) => [f.name, at(f, 'typedConfig', '@type')]),
    [
      ['envoy.filters.http.fault', 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault'],
      ['envoy.filters.http.cors', 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors'],
      ['envoy.filters.http.router', 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router'],
    ],
  );
  t.like(hcm, { statPrefix: 'outbound_0.0.0.0_80', streamIdleTimeout: '0s', normalizePath: true });
  t.false('tracing' in hcm);
  t.false('accessLog' in hcm);
  t.is(filterConfig(at(l, 'defaultFilterChain')).cluster, 'PassthroughCluster');
});

test('sidecar tracing: OpenTelemetry to the collector cluster with the mesh sampling; access log to stdout', async (t) => {
  const { listeners } = build(webSidecar(), {
    tracing: { samplingPercent: 10, collector: 'jaeger.observability:4317' },
    accessLog: true,
  });
  await assertEnvoyResourcesValid(t, listeners);
  const hcm = filterConfig(chains(listenerJson(listeners, '0.0.0.0_80'))[0]);
  t.deepEqual(hcm.tracing, {
    clientSampling: { value: 100 },
    randomSampling: { value: 10 },
    overallSampling: { value: 100 },
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
        grpcService: { envoyGrpc: { clusterName: 'opentelemetry-collector', authority: 'jaeger.observability' } },
        serviceName: 'web.default',
      },
    },
  });
  t.deepEqual(hcm.accessLog, [
    {
      name: 'envoy.access_loggers.stdout',
      typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog' },
    },
  ]);
  // Inbound HCMs trace too (the server span).
  const inbound = chains(listenerJson(listeners, 'virtualInbound')).find((c) => c.name === '0.0.0.0_8080')!;
  t.truthy(filterConfig(inbound).tracing);
});

test('sidecar TCP Service: <clusterIP>_<port>, tcp_proxy with the VirtualService’s weighted tcp route', async (t) => {
  const { listeners } = build(webSidecar());
  await assertEnvoyResourcesValid(t, listeners);
  const l = listenerJson(listeners, '10.96.0.12_5432');
  t.like(l, { bindToPort: false, address: { socketAddress: { address: '10.96.0.12', portValue: 5432 } } });
  t.deepEqual(filterConfig(chains(l)[0]), {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    statPrefix: `outbound|5432||${DB}`,
    weightedClusters: {
      clusters: [
        { name: `outbound|5432|a|${DB}`, weight: 70 },
        { name: `outbound|5432|b|${DB}`, weight: 30 },
      ],
    },
  });
  // Without a VirtualService: the Service's own cluster.
  const plain = build(
    webSidecar(),
    {},
    mesh().filter((o) => o.kind !== 'VirtualService'),
  ).listeners;
  t.like(filterConfig(chains(listenerJson(plain, '10.96.0.12_5432'))[0]), { cluster: `outbound|5432||${DB}` });
});

test('sidecar virtualInbound PERMISSIVE: mesh mTLS and plaintext chains per target port, passthrough default', async (t) => {
  const { listeners } = build(webSidecar());
  await assertEnvoyResourcesValid(t, listeners);
  const vi = listenerJson(listeners, 'virtualInbound');
  t.like(vi, { address: { socketAddress: { address: '0.0.0.0', portValue: 15006 } }, trafficDirection: 'INBOUND' });
  t.deepEqual(
    (vi.listenerFilters as Json[]).map((f) => f.name),
    ['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector'],
  );
  t.deepEqual(
    chains(vi).map((c) => [c.name, c.filterChainMatch, 'transportSocket' in c]),
    [
      ['virtualInbound-blackhole', { destinationPort: 15006 }, false],
      ['0.0.0.0_8080_mtls', { destinationPort: 8080, transportProtocol: 'tls' }, true],
      ['0.0.0.0_8080', { destinationPort: 8080, transportProtocol: 'raw_buffer' }, false],
      ['0.0.0.0_9090_mtls', { destinationPort: 9090, transportProtocol: 'tls' }, true],
      ['0.0.0.0_9090', { destinationPort: 9090, transportProtocol: 'raw_buffer' }, false],
      ['virtualInbound-passthrough-mtls', { transportProtocol: 'tls', applicationProtocols: ['istio'] }, true],
    ],
  );
  // HTTP target port: inline route to the inbound cluster, validate_clusters off, XFCC on the mTLS chain.
  const mtlsHcm = filterConfig(chains(vi)[1]);
  t.like(mtlsHcm, { statPrefix: 'inbound_0.0.0.0_8080', forwardClientCertDetails: 'APPEND_FORWARD' });
  t.like(at(mtlsHcm, 'routeConfig') as Json, { name: 'inbound|8080||', validateClusters: false });
  t.is(at(mtlsHcm, 'routeConfig', 'virtualHosts', 0, 'routes', 0, 'route', 'cluster'), 'inbound|8080||');
  t.false('forwardClientCertDetails' in filterConfig(chains(vi)[2]));
  t.is(filterConfig(at(vi, 'defaultFilterChain')).cluster, 'InboundPassthroughCluster');
  // The downstream TLS context: SDS default + ROOTCA from sds-grpc, client certificate required.
  const tls = at(chains(vi)[1], 'transportSocket', 'typedConfig') as Json;
  t.like(tls, {
    '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
    requireClientCertificate: true,
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [{ name: 'default' }],
      combinedValidationContext: { validationContextSdsSecretConfig: { name: 'ROOTCA' } },
      alpnProtocols: ['h2', 'http/1.1'],
    },
  });
  t.is(
    at(
      tls,
      'commonTlsContext',
      'tlsCertificateSdsSecretConfigs',
      0,
      'sdsConfig',
      'apiConfigSource',
      'grpcServices',
      0,
      'envoyGrpc',
      'clusterName',
    ),
    'sds-grpc',
  );
});

test('sidecar virtualInbound TCP target port: mesh mTLS needs the istio ALPN (app TLS passes through)', async (t) => {
  const objects = mesh(
    service('default', 'cache', [{ name: 'tcp', port: 6379 }], { clusterIP: '10.96.0.30' }),
    slice('default', 'cache-x', 'cache', [{ name: 'tcp', port: 6379 }], [{ address: '10.1.0.5', pod: 'web-0' }]),
  );
  const { listeners } = build(webSidecar(), {}, objects);
  await assertEnvoyResourcesValid(t, listeners);
  const vi = listenerJson(listeners, 'virtualInbound');
  const tcp = chains(vi).filter((c) => String(c.name).startsWith('0.0.0.0_6379'));
  t.deepEqual(
    tcp.map((c) => [c.name, c.filterChainMatch]),
    [
      ['0.0.0.0_6379_mtls', { destinationPort: 6379, transportProtocol: 'tls', applicationProtocols: ['istio'] }],
      ['0.0.0.0_6379', { destinationPort: 6379, transportProtocol: 'raw_buffer' }],
    ],
  );
  t.like(filterConfig(tcp[0]), { statPrefix: 'inbound|6379||', cluster: 'inbound|6379||' });
  // TCP chains offer no HTTP ALPN.
  t.false('alpnProtocols' in (at(tcp[0], 'transportSocket', 'typedConfig', 'commonTlsContext') as Json));
});

test('sidecar virtualInbound STRICT: only TLS chains, no plaintext default', async (t) => {
  const { listeners } = build(webSidecar(), { mtlsMode: 'STRICT' });
  await assertEnvoyResourcesValid(t, listeners);
  const vi = listenerJson(listeners, 'virtualInbound');
  t.deepEqual(
    chains(vi).map((c) => [c.name, c.filterChainMatch, 'transportSocket' in c]),
    [
      ['virtualInbound-blackhole', { destinationPort: 15006 }, false],
      ['0.0.0.0_8080', { destinationPort: 8080, transportProtocol: 'tls' }, true],
      ['0.0.0.0_9090', { destinationPort: 9090, transportProtocol: 'tls' }, true],
      ['virtualInbound-passthrough-mtls', { transportProtocol: 'tls' }, true],
    ],
  );
  t.false('defaultFilterChain' in vi);
});

test('sidecar without instances: virtualInbound has only the blackhole and passthrough chains', async (t) => {
  const { listeners } = build(envoyProxy('default'));
  await assertEnvoyResourcesValid(t, listeners);
  t.deepEqual(
    chains(listenerJson(listeners, 'virtualInbound')).map((c) => c.name),
    ['virtualInbound-blackhole', 'virtualInbound-passthrough-mtls'],
  );
});

test('sidecar: a Service port on a proxy port gets no listener (it would collide with 15001/15006)', async (t) => {
  const objects = mesh(service('default', 'odd', [{ name: 'http', port: 15001 }], { clusterIP: '10.96.0.20' }));
  const { listeners, notes } = build(webSidecar(), {}, objects);
  await assertEnvoyResourcesValid(t, listeners);
  t.false(listeners.some((l) => l.name === '0.0.0.0_15001'));
  t.true(notes.some((n) => n.includes('15001')));
});

// ---------------------------------------------------------------------------------------------------
// Proxyless gRPC

test('gRPC API listeners: <alias>:<port> for every visible HTTP/gRPC port, short name only in-namespace', async (t) => {
  const { listeners } = build(webGrpc());
  await assertEnvoyResourcesValid(t, listeners);
  assertGrpcAccepts(t, listeners);
  const api = listeners.filter((l) => l.apiListener !== undefined).map((l) => l.name);
  t.deepEqual(api, [
    'cart.shop.svc.cluster.local:7000',
    'cart.shop.svc:7000',
    'cart.shop:7000',
    'web.default.svc.cluster.local:80',
    'web.default.svc.cluster.local:9090',
    'web.default.svc:80',
    'web.default.svc:9090',
    'web.default:80',
    'web.default:9090',
    'web:80',
    'web:9090',
  ]);
  const l = listenerJson(listeners, 'cart.shop:7000');
  t.deepEqual(Object.keys(l).sort(), ['apiListener', 'name']); // no address, listener filters, use_original_dst
  const hcm = at(l, 'apiListener', 'apiListener') as Json;
  t.like(hcm, {
    '@type': HCM_TYPE,
    rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: '7000' },
  });
  t.deepEqual(
    (hcm.httpFilters as Json[]).map((f) => [f.name, at(f, 'typedConfig', '@type')]),
    [
      ['envoy.filters.http.fault', 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault'],
      ['envoy.filters.http.router', 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router'],
    ],
  );
});

test('gRPC server listeners: named by the bind address, address = INSTANCE_IP:targetPort, PERMISSIVE plaintext', async (t) => {
  const { listeners } = build(webGrpc());
  await assertEnvoyResourcesValid(t, listeners);
  assertGrpcAccepts(t, listeners);
  const servers = listeners.filter((l) => l.apiListener === undefined);
  t.deepEqual(
    servers.map((l) => l.name),
    [
      'grpc/server?xds.resource.listening_address=0.0.0.0:8080',
      'grpc/server?xds.resource.listening_address=0.0.0.0:9090',
      'grpc/server?xds.resource.listening_address=10.1.0.5:8080',
      'grpc/server?xds.resource.listening_address=10.1.0.5:9090',
      'grpc/server?xds.resource.listening_address=[::]:8080',
      'grpc/server?xds.resource.listening_address=[::]:9090',
    ],
  );
  const l = listenerJson(listeners, 'grpc/server?xds.resource.listening_address=10.1.0.5:9090');
  t.deepEqual(l.address, { socketAddress: { address: '10.1.0.5', portValue: 9090 } });
  // A server bound to a wildcard address (most are: grpc-go's ":9090" is "[::]:9090") gets a listener
  // whose socket address is the one its name holds: both grpc-js and grpc-go refuse to serve otherwise.
  for (const [bind, address] of [
    ['0.0.0.0:9090', '0.0.0.0'],
    ['[::]:9090', '::'],
  ] as const) {
    const w = listenerJson(listeners, `grpc/server?xds.resource.listening_address=${bind}`);
    t.deepEqual(w.address, { socketAddress: { address, portValue: 9090 } });
    t.deepEqual(w.filterChains, l.filterChains, `${bind} serves what 10.1.0.5:9090 serves`);
  }
  t.false('defaultFilterChain' in l);
  t.is(chains(l).length, 1);
  const chain = chains(l)[0]!;
  t.false('filterChainMatch' in chain);
  t.false('transportSocket' in chain);
  t.is((chain.filters as Json[]).length, 1);
  const hcm = filterConfig(chain);
  t.deepEqual(at(hcm, 'routeConfig', 'virtualHosts'), [
    {
      name: 'inbound|grpc|9090',
      domains: ['*'],
      routes: [{ name: 'default', match: { prefix: '' }, nonForwardingAction: {} }],
    },
  ]);
  t.deepEqual(
    (hcm.httpFilters as Json[]).map((f) => f.name),
    ['envoy.filters.http.router'],
  );
});

test('gRPC server listeners STRICT: DownstreamTlsContext from the certificate providers, client cert required', async (t) => {
  const { listeners } = build(webGrpc(), { mtlsMode: 'STRICT' });
  await assertEnvoyResourcesValid(t, listeners);
  assertGrpcAccepts(t, listeners);
  const chain = chains(listenerJson(listeners, 'grpc/server?xds.resource.listening_address=10.1.0.5:8080'))[0]!;
  t.deepEqual(at(chain, 'transportSocket'), {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      commonTlsContext: {
        tlsCertificateProviderInstance: { instanceName: 'default' },
        validationContext: { caCertificateProviderInstance: { instanceName: 'ROOTCA' } },
      },
      requireClientCertificate: true,
    },
  });
});

test('gRPC server listeners follow INSTANCE_IPS (not node.id): no IP, no server listener', async (t) => {
  const other = build(webGrpc({ id: 'someone-else.default' })).listeners;
  const none = build(webGrpc({ instanceIps: [] })).listeners;
  await assertEnvoyResourcesValid(t, [...other, ...none]);
  const servers = (ls: Listener[]) => ls.filter((l) => l.apiListener === undefined).map((l) => l.name);
  t.deepEqual(servers(other), servers(build(webGrpc()).listeners));
  t.deepEqual(servers(none), []);
});

test('the grpc-js-xds check is real: it NACKs what grpc-js would', (t) => {
  const { listeners } = build(webSidecar());
  // An Envoy sidecar's capture listener uses use_original_dst and has no api_listener: grpc-js refuses it.
  t.truthy(grpcNack(listeners.find((l) => l.name === 'virtualOutbound')!));
});

test('deterministic: the same objects in any order give byte-identical listeners', (t) => {
  const objects = mesh();
  for (const proxy of [webSidecar(), webGrpc()]) {
    const bytes = (objs: MeshObject[]) =>
      buildListeners(contextFor(snapshotOf(objs), proxy)).map((l) => Buffer.from(encodeMessage(l)).toString('base64'));
    const reference = bytes(objects);
    t.deepEqual(bytes([...objects].reverse()), reference);
  }
});
