// CDS translation (control-plane/translate/clusters.ts): defaults, every DestinationRule field, TLS modes
// and auto mTLS, subsets and port-level merge, special clusters, for Envoy sidecars and proxyless gRPC.
// Every cluster emitted here passes Envoy's own validation.
import test, { type ExecutionContext } from 'ava';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { UpstreamTlsContextSchema } from '../../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.js';
import type { V1Service } from '@kubernetes/client-node';
import type { DestinationRuleSpec, TrafficPolicy } from '../../crds/types.js';
import type { Cluster } from '../../control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { buildClusters } from '../../control-plane/translate/clusters.js';
import type { MeshConfig } from '../../control-plane/translate/context.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import {
  AGENT_SDS_JSON,
  assertEnvoyResourcesValid,
  contextFor,
  destinationRule,
  encodeAll,
  envoyProxy,
  grpcProxy,
  namespace,
  pod,
  service,
  slice,
  snapshotOf,
  toJson,
  workload,
} from './_snapshots.js';
import { grpcXdsErrors } from './_grpc-xds.js';

const FQDN = 'reviews.default.svc.cluster.local';
const CLUSTER = `outbound|9080||${FQDN}`;
const UNLIMITED = 4294967295;
const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** reviews (http 9080, pods v1 and v2 with sidecars) and echo (grpc 7070), plus `extra` objects. */
function mesh(...extra: MeshObject[]): MeshObject[] {
  return [
    namespace('default'),
    ...workload('default', 'reviews', { name: 'http', port: 9080 }, [
      { version: 'v1', address: '10.0.0.1', port: 9080 },
      { version: 'v2', address: '10.0.0.2', port: 9080 },
    ]),
    ...workload('default', 'echo', { name: 'grpc', port: 7070 }, [{ version: 'v1', address: '10.0.1.1', port: 7070 }]),
    ...extra,
  ];
}

function rule(spec: Omit<DestinationRuleSpec, 'host'>, host = 'reviews'): MeshObject {
  return destinationRule('default', `dr-${host}`, { host, ...spec });
}

/** Clusters for `proxy`, validated by Envoy; returns them by name. */
async function clustersOf(
  t: ExecutionContext,
  objects: MeshObject[],
  proxy: ProxyInfo = envoyProxy(),
  meshConfig: Partial<MeshConfig> = {},
): Promise<Map<string, Cluster>> {
  const snapshot = snapshotOf(objects);
  t.deepEqual(
    snapshot.problems.filter((p) => p.severity === 'error'),
    [],
    'the test mesh itself is valid',
  );
  const clusters = buildClusters(contextFor(snapshot, proxy, meshConfig));
  await assertEnvoyResourcesValid(t, clusters);
  if (proxy.proxyType === 'grpc') t.deepEqual(grpcXdsErrors(clusters), [], 'grpc-js-xds accepts every cluster');
  return new Map(clusters.map((c) => [c.name, c]));
}

async function clusterJson(
  t: ExecutionContext,
  objects: MeshObject[],
  name = CLUSTER,
  proxy: ProxyInfo = envoyProxy(),
): Promise<Record<string, unknown>> {
  const c = (await clustersOf(t, objects, proxy)).get(name);
  if (!c) throw new Error(`no cluster ${name}`);
  return toJson(c);
}

async function policyJson(t: ExecutionContext, trafficPolicy: TrafficPolicy, proxy: ProxyInfo = envoyProxy()) {
  return clusterJson(t, mesh(rule({ trafficPolicy })), CLUSTER, proxy);
}

/** The typed_config of the cluster's transport socket (or of the match named `match`). */
function tlsContext(json: Record<string, unknown>, match?: string): Record<string, unknown> {
  const socket = match
    ? (
        json.transportSocketMatches as { name: string; transportSocket: { typedConfig: Record<string, unknown> } }[]
      ).find((m) => m.name === match)?.transportSocket
    : (json.transportSocket as { typedConfig: Record<string, unknown> } | undefined);
  if (!socket) throw new Error('no transport socket');
  return socket.typedConfig;
}

function meshTls(sni: string, sans: string[], alpn: string[]) {
  return {
    '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    sni,
    commonTlsContext: {
      tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2', tlsMaximumProtocolVersion: 'TLSv1_3' },
      alpnProtocols: alpn,
      tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: AGENT_SDS_JSON }],
      combinedValidationContext: {
        defaultValidationContext: {
          matchTypedSubjectAltNames: sans.map((exact) => ({ sanType: 'URI', matcher: { exact } })),
        },
        validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: AGENT_SDS_JSON },
      },
    },
  };
}

const REVIEWS_SAN = 'spiffe://cluster.local/ns/default/sa/reviews-sa';

// ---------------------------------------------------------------------------------------------------
// Defaults

test('an Envoy outbound cluster without a DestinationRule gets Istio defaults and auto mTLS', async (t) => {
  const json = await clusterJson(t, mesh());
  t.deepEqual(json, {
    name: CLUSTER,
    type: 'EDS',
    edsClusterConfig: {
      serviceName: CLUSTER,
      edsConfig: { ads: {}, initialFetchTimeout: '0s', resourceApiVersion: 'V3' },
    },
    connectTimeout: '10s',
    lbPolicy: 'LEAST_REQUEST',
    circuitBreakers: {
      thresholds: [
        { maxConnections: UNLIMITED, maxPendingRequests: UNLIMITED, maxRequests: UNLIMITED, maxRetries: UNLIMITED },
      ],
    },
    transportSocketMatches: [
      {
        name: 'tlsMode-mesh',
        match: { tlsMode: 'mesh' },
        transportSocket: {
          name: 'envoy.transport_sockets.tls',
          typedConfig: meshTls(`outbound_.9080_._.${FQDN}`, [REVIEWS_SAN], ['istio']),
        },
      },
      {
        name: 'tlsMode-disabled',
        match: {},
        transportSocket: {
          name: 'envoy.transport_sockets.raw_buffer',
          typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' },
        },
      },
    ],
  });
});

test('a proxyless gRPC cluster without a DestinationRule: ROUND_ROBIN, EDS over ADS, plaintext', async (t) => {
  const json = await clusterJson(t, mesh(), CLUSTER, grpcProxy());
  t.deepEqual(json, {
    name: CLUSTER,
    type: 'EDS',
    edsClusterConfig: { serviceName: CLUSTER, edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    connectTimeout: '10s',
    circuitBreakers: {
      thresholds: [
        { maxConnections: UNLIMITED, maxPendingRequests: UNLIMITED, maxRequests: UNLIMITED, maxRetries: UNLIMITED },
      ],
    },
  });
  // ROUND_ROBIN is the proto default, so proto3 JSON leaves it out.
  t.is(json.lbPolicy, undefined);
});

test('the mesh connect timeout is the default; an HTTP/2 port speaks HTTP/2 upstream (Envoy)', async (t) => {
  const clusters = await clustersOf(t, mesh(), envoyProxy(), { connectTimeout: '2.5s' });
  const echo = toJson(clusters.get('outbound|7070||echo.default.svc.cluster.local')!);
  t.is(echo.connectTimeout, '2.500s');
  t.deepEqual(echo.typedExtensionProtocolOptions, {
    [HPO]: { '@type': `type.googleapis.com/${HPO}`, explicitHttpConfig: { http2ProtocolOptions: {} } },
  });
  t.deepEqual(tlsContext(echo, 'tlsMode-mesh').commonTlsContext, {
    ...meshTls('', ['spiffe://cluster.local/ns/default/sa/echo-sa'], ['istio', 'h2']).commonTlsContext,
  });
});

test('one cluster per visible TCP port and subset, sorted by name; UDP and unexported services left out', async (t) => {
  const objects = mesh(
    service('default', 'dns', [
      { name: 'dns-udp', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    ]),
    namespace('other'),
    service('other', 'private', [{ name: 'http', port: 80 }], {
      annotations: { 'networking.trellis.dev/exportTo': '.' },
    }),
    service('other', 'public', [{ name: 'http', port: 80 }]),
    rule({
      subsets: [
        { name: 'v2', labels: { version: 'v2' } },
        { name: 'v1', labels: { version: 'v1' } },
      ],
    }),
  );
  const names = [...(await clustersOf(t, objects, grpcProxy())).keys()];
  t.deepEqual(names, [
    'outbound|53||dns.default.svc.cluster.local',
    'outbound|7070||echo.default.svc.cluster.local',
    'outbound|80||public.other.svc.cluster.local',
    `outbound|9080|v1|${FQDN}`,
    `outbound|9080|v2|${FQDN}`,
    CLUSTER,
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Load balancer

for (const [simple, envoy] of [
  ['ROUND_ROBIN', 'ROUND_ROBIN'],
  ['RANDOM', 'RANDOM'],
  ['LEAST_CONN', 'LEAST_REQUEST'],
  ['LEAST_REQUEST', 'LEAST_REQUEST'],
  ['UNSPECIFIED', 'LEAST_REQUEST'],
] as const) {
  test(`loadBalancer.simple ${simple} → Envoy ${envoy}, gRPC ROUND_ROBIN`, async (t) => {
    const json = await policyJson(t, { loadBalancer: { simple } });
    // ROUND_ROBIN is 0, absent from proto3 JSON.
    t.is(json.lbPolicy ?? 'ROUND_ROBIN', envoy);
    const grpc = await policyJson(t, { loadBalancer: { simple } }, grpcProxy());
    t.is(grpc.lbPolicy, undefined);
  });
}

test('consistentHash: RING_HASH with the ring size (default 1024) or MAGLEV with the table size', async (t) => {
  const ring = await policyJson(t, { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } });
  t.like(ring, { lbPolicy: 'RING_HASH', ringHashLbConfig: { minimumRingSize: '1024' } });
  const sized = await policyJson(t, {
    loadBalancer: { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 4096 } } },
  });
  t.like(sized, { lbPolicy: 'RING_HASH', ringHashLbConfig: { minimumRingSize: '4096' } });
  const maglev = await policyJson(t, {
    loadBalancer: { consistentHash: { httpHeaderName: 'x-user', maglev: { tableSize: 65537 } } },
  });
  t.like(maglev, { lbPolicy: 'MAGLEV', maglevLbConfig: { tableSize: '65537' } });
});

test('proxyless gRPC: MAGLEV becomes RING_HASH (grpc-js accepts only ROUND_ROBIN and RING_HASH)', async (t) => {
  const json = await policyJson(
    t,
    { loadBalancer: { consistentHash: { httpHeaderName: 'x-user', maglev: { tableSize: 65537 } } } },
    grpcProxy(),
  );
  t.like(json, { lbPolicy: 'RING_HASH', ringHashLbConfig: { minimumRingSize: '1024' } });
  t.is(json.maglevLbConfig, undefined);
});

test('warmup → slow_start_config of round robin / least request (Envoy only)', async (t) => {
  const rr = await policyJson(t, {
    loadBalancer: { simple: 'ROUND_ROBIN', warmup: { duration: '30s', aggression: 2, minimumPercent: 20 } },
  });
  t.deepEqual(rr.roundRobinLbConfig, {
    slowStartConfig: { slowStartWindow: '30s', aggression: { defaultValue: 2 }, minWeightPercent: { value: 20 } },
  });
  const lr = await policyJson(t, { loadBalancer: { simple: 'LEAST_REQUEST', warmup: { duration: '1m' } } });
  t.deepEqual(lr.leastRequestLbConfig, {
    slowStartConfig: { slowStartWindow: '60s', aggression: { defaultValue: 1 }, minWeightPercent: { value: 10 } },
  });
  const grpc = await policyJson(
    t,
    { loadBalancer: { simple: 'ROUND_ROBIN', warmup: { duration: '30s' } } },
    grpcProxy(),
  );
  t.is(grpc.roundRobinLbConfig, undefined);
});

// ---------------------------------------------------------------------------------------------------
// Connection pool

test('connectionPool → thresholds, connect timeout, keepalive and HTTP protocol options (Envoy)', async (t) => {
  const json = await policyJson(t, {
    connectionPool: {
      tcp: {
        maxConnections: 100,
        connectTimeout: '250ms',
        tcpKeepalive: { probes: 3, time: '1.5s', interval: '500ms' },
        maxConnectionDuration: '1h',
      },
      http: {
        http1MaxPendingRequests: 7,
        http2MaxRequests: 5,
        maxRetries: 2,
        maxRequestsPerConnection: 10,
        idleTimeout: '30s',
      },
    },
  });
  t.like(json, {
    connectTimeout: '0.250s',
    circuitBreakers: { thresholds: [{ maxConnections: 100, maxPendingRequests: 7, maxRequests: 5, maxRetries: 2 }] },
    // Envoy counts keepalive in whole seconds; never 0 (the kernel refuses it).
    upstreamConnectionOptions: { tcpKeepalive: { keepaliveProbes: 3, keepaliveTime: 1, keepaliveInterval: 1 } },
  });
  t.deepEqual(json.typedExtensionProtocolOptions, {
    [HPO]: {
      '@type': `type.googleapis.com/${HPO}`,
      commonHttpProtocolOptions: { maxRequestsPerConnection: 10, idleTimeout: '30s', maxConnectionDuration: '3600s' },
      explicitHttpConfig: { httpProtocolOptions: {} },
    },
  });
});

test('connectionPool: tcp.idleTimeout is the HTTP idle timeout when http.idleTimeout is unset; zeros mean unset', async (t) => {
  const json = await policyJson(t, {
    connectionPool: { tcp: { idleTimeout: '0s', maxConnections: 0 }, http: { http2MaxRequests: 0 } },
  });
  t.like(json, { circuitBreakers: { thresholds: [{ maxConnections: UNLIMITED, maxRequests: UNLIMITED }] } });
  t.like(json.typedExtensionProtocolOptions, { [HPO]: { commonHttpProtocolOptions: { idleTimeout: '0s' } } });
});

test('connectionPool on an HTTP/2 port sets max_concurrent_streams; a TCP port gets no HTTP options', async (t) => {
  const objects = mesh(
    ...workload('default', 'db', { name: 'tcp', port: 5432 }, [{ version: 'v1', address: '10.0.2.1', port: 5432 }]),
    rule(
      { trafficPolicy: { connectionPool: { http: { maxConcurrentStreams: 100, maxRequestsPerConnection: 1 } } } },
      'echo',
    ),
    rule({ trafficPolicy: { connectionPool: { http: { maxRequestsPerConnection: 1 } } } }, 'db'),
  );
  const clusters = await clustersOf(t, objects);
  const echo = toJson(clusters.get('outbound|7070||echo.default.svc.cluster.local')!);
  t.like(echo.typedExtensionProtocolOptions, {
    [HPO]: {
      commonHttpProtocolOptions: { maxRequestsPerConnection: 1 },
      explicitHttpConfig: { http2ProtocolOptions: { maxConcurrentStreams: 100 } },
    },
  });
  t.is(toJson(clusters.get('outbound|5432||db.default.svc.cluster.local')!).typedExtensionProtocolOptions, undefined);
});

test('proxyless gRPC: only the thresholds and the connect timeout of a connectionPool are sent', async (t) => {
  const json = await policyJson(
    t,
    {
      connectionPool: {
        tcp: { connectTimeout: '1s', tcpKeepalive: { time: '10s' } },
        http: { http2MaxRequests: 5, maxRequestsPerConnection: 1 },
      },
    },
    grpcProxy(),
  );
  t.like(json, { connectTimeout: '1s', circuitBreakers: { thresholds: [{ maxRequests: 5 }] } });
  t.is(json.upstreamConnectionOptions, undefined);
  t.is(json.typedExtensionProtocolOptions, undefined);
});

// ---------------------------------------------------------------------------------------------------
// Outlier detection

test('outlierDetection → Envoy outlier_detection, success rate off, panic threshold from minHealthPercent', async (t) => {
  const json = await policyJson(t, {
    outlierDetection: {
      consecutive5xxErrors: 3,
      consecutiveGatewayErrors: 2,
      interval: '5s',
      baseEjectionTime: '1m',
      maxEjectionPercent: 50,
      minHealthPercent: 25,
    },
  });
  t.deepEqual(json.outlierDetection, {
    consecutive5xx: 3,
    enforcingConsecutive5xx: 100,
    consecutiveGatewayFailure: 2,
    enforcingConsecutiveGatewayFailure: 100,
    interval: '5s',
    baseEjectionTime: '60s',
    maxEjectionPercent: 50,
    enforcingSuccessRate: 0,
  });
  // Outlier detection turns on locality failover (Istio's mesh default), so Envoy weighs localities too.
  t.deepEqual(json.commonLbConfig, { healthyPanicThreshold: { value: 25 }, localityWeightedLbConfig: {} });
});

test('outlierDetection: a count of 0 disables that detector; panic mode is off when minHealthPercent is unset', async (t) => {
  const json = await policyJson(t, { outlierDetection: { consecutive5xxErrors: 0, interval: '1s' } });
  t.deepEqual(json.outlierDetection, {
    consecutive5xx: 0,
    enforcingConsecutive5xx: 0,
    interval: '1s',
    enforcingSuccessRate: 0,
  });
  // Percent{value: 0}: present, and 0 is the proto3 default, so JSON shows an empty object.
  t.deepEqual(json.commonLbConfig, { healthyPanicThreshold: {}, localityWeightedLbConfig: {} });
  t.is((await clusterJson(t, mesh())).outlierDetection, undefined);
});

test('proxyless gRPC: consecutive errors become failure-percentage ejection (grpc-js ignores consecutive_5xx)', async (t) => {
  const json = await policyJson(
    t,
    { outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 100 } },
    grpcProxy(),
  );
  t.deepEqual(json.outlierDetection, {
    interval: '1s',
    baseEjectionTime: '30s',
    maxEjectionPercent: 100,
    enforcingSuccessRate: 0,
    enforcingFailurePercentage: 100,
    failurePercentageThreshold: 85,
    failurePercentageMinimumHosts: 1,
    failurePercentageRequestVolume: 3,
  });
  t.is(json.commonLbConfig, undefined);
  const defaults = await policyJson(t, { outlierDetection: { interval: '1s' } }, grpcProxy());
  t.like(defaults.outlierDetection, { failurePercentageRequestVolume: 5 });
  const off = await policyJson(t, { outlierDetection: { consecutive5xxErrors: 0 } }, grpcProxy());
  t.deepEqual(off.outlierDetection, { enforcingSuccessRate: 0 });
});

// ---------------------------------------------------------------------------------------------------
// TLS

test('tls MESH_MUTUAL (and its alias ISTIO_MUTUAL): SDS certificates, SPIFFE SANs, Istio SNI (Envoy)', async (t) => {
  for (const mode of ['MESH_MUTUAL', 'ISTIO_MUTUAL'] as const) {
    const json = await policyJson(t, { tls: { mode } });
    t.is(json.transportSocketMatches, undefined);
    t.deepEqual(tlsContext(json), meshTls(`outbound_.9080_._.${FQDN}`, [REVIEWS_SAN], ['istio']));
  }
  const custom = await policyJson(t, {
    tls: { mode: 'MESH_MUTUAL', sni: 'reviews.example', subjectAltNames: ['spiffe://other/ns/x/sa/y'] },
  });
  t.deepEqual(tlsContext(custom), meshTls('reviews.example', ['spiffe://other/ns/x/sa/y'], ['istio']));
});

test('tls DISABLE: plaintext, no auto mTLS', async (t) => {
  const json = await policyJson(t, { tls: { mode: 'DISABLE' } });
  t.is(json.transportSocket, undefined);
  t.is(json.transportSocketMatches, undefined);
});

test('tls SIMPLE: no client certificate, system roots, SNI and SAN default to the FQDN (Envoy)', async (t) => {
  const json = await policyJson(t, { tls: { mode: 'SIMPLE' } });
  t.deepEqual(tlsContext(json), {
    '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    sni: FQDN,
    commonTlsContext: {
      tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2', tlsMaximumProtocolVersion: 'TLSv1_3' },
      validationContext: {
        systemRootCerts: {},
        matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: FQDN } }],
      },
    },
  });
  const custom = await policyJson(t, {
    tls: { mode: 'SIMPLE', sni: 'api.example.com', subjectAltNames: ['api.example.com', 'spiffe://x/y'] },
  });
  t.like(tlsContext(custom), {
    sni: 'api.example.com',
    commonTlsContext: {
      validationContext: {
        matchTypedSubjectAltNames: [
          { sanType: 'DNS', matcher: { exact: 'api.example.com' } },
          { sanType: 'URI', matcher: { exact: 'spiffe://x/y' } },
        ],
      },
    },
  });
});

test('tls MUTUAL: SIMPLE plus the client certificate files (Envoy; more in tls-origination.test.ts)', async (t) => {
  const json = await policyJson(t, { tls: { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem' } });
  t.like(tlsContext(json), {
    sni: FQDN,
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [{ name: 'file-cert:/c.pem~/k.pem' }],
      validationContext: { systemRootCerts: {} },
    },
  });
});

test('proxyless gRPC TLS: certificate provider instances and untyped SANs; no TLS without a rule', async (t) => {
  const grpcTls = (identity: boolean, sans: string[]) => ({
    '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    commonTlsContext: {
      ...(identity ? { tlsCertificateProviderInstance: { instanceName: 'default' } } : {}),
      validationContext: {
        caCertificateProviderInstance: { instanceName: 'ROOTCA' },
        matchSubjectAltNames: sans.map((exact) => ({ exact })),
      },
    },
  });
  const mutual = await policyJson(t, { tls: { mode: 'MESH_MUTUAL' } }, grpcProxy());
  t.deepEqual(tlsContext(mutual), grpcTls(true, [REVIEWS_SAN]));
  const simple = await policyJson(t, { tls: { mode: 'SIMPLE', subjectAltNames: ['spiffe://x/y'] } }, grpcProxy());
  t.deepEqual(tlsContext(simple), grpcTls(false, ['spiffe://x/y']));
  const none = await clusterJson(t, mesh(), CLUSTER, grpcProxy());
  t.is(none.transportSocket, undefined);
  t.is(none.transportSocketMatches, undefined);
});

test('the SANs of a service are the SPIFFE ids of all its service accounts, in the mesh trust domain', async (t) => {
  const objects = mesh(
    pod('default', 'reviews-v3', { app: 'reviews', version: 'v3' }, 'legacy'),
    slice(
      'default',
      'reviews-v3-slice',
      'reviews',
      [{ name: 'http', port: 9080 }],
      [{ address: '10.0.0.3', pod: 'reviews-v3' }],
    ),
  );
  const clusters = await clustersOf(t, objects, envoyProxy(), { trustDomain: 'example.org' });
  const ctx = tlsContext(toJson(clusters.get(CLUSTER)!), 'tlsMode-mesh') as {
    commonTlsContext: {
      combinedValidationContext: { defaultValidationContext: { matchTypedSubjectAltNames: unknown } };
    };
  };
  t.deepEqual(ctx.commonTlsContext.combinedValidationContext.defaultValidationContext.matchTypedSubjectAltNames, [
    { sanType: 'URI', matcher: { exact: 'spiffe://example.org/ns/default/sa/legacy' } },
    { sanType: 'URI', matcher: { exact: 'spiffe://example.org/ns/default/sa/reviews-sa' } },
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Subsets, port-level settings, policy merge

test('subset clusters: subset policy blocks override the rule policy one by one', async (t) => {
  const objects = mesh(
    rule({
      trafficPolicy: {
        loadBalancer: { simple: 'RANDOM' },
        connectionPool: { http: { http2MaxRequests: 10 } },
        tls: { mode: 'MESH_MUTUAL' },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { connectionPool: { http: { maxRetries: 3 } } } },
      ],
    }),
  );
  const clusters = await clustersOf(t, objects);
  const v1 = toJson(clusters.get(`outbound|9080|v1|${FQDN}`)!);
  t.like(v1, { lbPolicy: 'RANDOM', circuitBreakers: { thresholds: [{ maxRequests: 10 }] } });
  t.is((tlsContext(v1) as { sni: string }).sni, `outbound_.9080_.v1_.${FQDN}`);
  const v2 = toJson(clusters.get(`outbound|9080|v2|${FQDN}`)!);
  // connectionPool replaced as a whole (maxRequests back to the default); loadBalancer and tls kept.
  t.like(v2, { lbPolicy: 'RANDOM', circuitBreakers: { thresholds: [{ maxRequests: UNLIMITED, maxRetries: 3 }] } });
  t.is((tlsContext(v2) as { sni: string }).sni, `outbound_.9080_.v2_.${FQDN}`);
});

test('a portLevelSettings entry replaces the whole top-level policy for its port (no inheritance)', async (t) => {
  const objects = mesh(
    service('default', 'multi', [
      { name: 'http', port: 80 },
      { name: 'http-admin', port: 8080 },
    ]),
    rule(
      {
        trafficPolicy: {
          loadBalancer: { simple: 'RANDOM' },
          outlierDetection: { consecutive5xxErrors: 2 },
          portLevelSettings: [{ port: { number: 8080 }, connectionPool: { tcp: { maxConnections: 3 } } }],
        },
      },
      'multi',
    ),
  );
  const clusters = await clustersOf(t, objects);
  const main = toJson(clusters.get('outbound|80||multi.default.svc.cluster.local')!);
  t.like(main, { lbPolicy: 'RANDOM', outlierDetection: { consecutive5xx: 2 } });
  const admin = toJson(clusters.get('outbound|8080||multi.default.svc.cluster.local')!);
  t.like(admin, { lbPolicy: 'LEAST_REQUEST', circuitBreakers: { thresholds: [{ maxConnections: 3 }] } });
  t.is(admin.outlierDetection, undefined);
});

test('a subset portLevelSettings entry replaces all four blocks of the merged policy', async (t) => {
  const objects = mesh(
    rule({
      trafficPolicy: { loadBalancer: { simple: 'RANDOM' }, tls: { mode: 'DISABLE' } },
      subsets: [
        {
          name: 'v1',
          labels: { version: 'v1' },
          trafficPolicy: {
            outlierDetection: { consecutive5xxErrors: 9 },
            portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: 'ROUND_ROBIN' } }],
          },
        },
        {
          name: 'v2',
          labels: { version: 'v2' },
          trafficPolicy: { portLevelSettings: [{ port: { number: 1 }, loadBalancer: { simple: 'ROUND_ROBIN' } }] },
        },
      ],
    }),
  );
  const clusters = await clustersOf(t, objects);
  const v1 = toJson(clusters.get(`outbound|9080|v1|${FQDN}`)!);
  // ROUND_ROBIN (absent in JSON), no outlier detection, and tls back to auto mTLS.
  t.is(v1.lbPolicy, undefined);
  t.is(v1.outlierDetection, undefined);
  t.is((v1.transportSocketMatches as unknown[]).length, 2);
  // A port-level entry for another port changes nothing.
  const v2 = toJson(clusters.get(`outbound|9080|v2|${FQDN}`)!);
  t.like(v2, { lbPolicy: 'RANDOM' });
  t.is(v2.transportSocketMatches, undefined);
});

// ---------------------------------------------------------------------------------------------------
// Discovery types

function headless(name: string, inMesh: boolean): MeshObject[] {
  return [
    service('default', name, [{ name: 'tcp', port: 6379 }], { clusterIP: 'None' }),
    pod('default', `${name}-0`, { app: name, ...(inMesh ? { 'trellis.dev/tlsMode': 'mesh' } : {}) }),
    slice('default', `${name}-slice`, name, [{ name: 'tcp', port: 6379 }], [{ address: '10.0.3.1', pod: `${name}-0` }]),
  ];
}

test('a headless Service: ORIGINAL_DST for Envoy (mTLS only when every endpoint is in the mesh), EDS for gRPC', async (t) => {
  const objects = mesh(...headless('redis', true), ...headless('cache', false));
  const clusters = await clustersOf(t, objects);
  const redis = toJson(clusters.get('outbound|6379||redis.default.svc.cluster.local')!);
  t.like(redis, { type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED' });
  t.is(redis.edsClusterConfig, undefined);
  t.is((tlsContext(redis) as { sni: string }).sni, 'outbound_.6379_._.redis.default.svc.cluster.local');
  const cache = toJson(clusters.get('outbound|6379||cache.default.svc.cluster.local')!);
  t.is(cache.transportSocket, undefined);
  t.is(cache.transportSocketMatches, undefined);
  const grpc = await clustersOf(t, objects, grpcProxy());
  t.like(toJson(grpc.get('outbound|6379||redis.default.svc.cluster.local')!), { type: 'EDS' });
});

test('loadBalancer PASSTHROUGH: ORIGINAL_DST for Envoy, ROUND_ROBIN EDS for gRPC', async (t) => {
  const envoy = await policyJson(t, { loadBalancer: { simple: 'PASSTHROUGH' } });
  t.like(envoy, { type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED' });
  const grpc = await policyJson(t, { loadBalancer: { simple: 'PASSTHROUGH' } }, grpcProxy());
  t.like(grpc, { type: 'EDS' });
  t.is(grpc.lbPolicy, undefined);
});

test('an ExternalName Service: STRICT_DNS (Envoy) / LOGICAL_DNS (gRPC) to the external name, no auto mTLS', async (t) => {
  const external = service('default', 'search', [{ name: 'https', port: 443 }]);
  (external.object as V1Service).spec = {
    type: 'ExternalName',
    externalName: 'search.example.com',
    ports: [{ name: 'https', port: 443 }],
  };
  const name = 'outbound|443||search.default.svc.cluster.local';
  const assignment = {
    clusterName: name,
    endpoints: [
      {
        lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'search.example.com', portValue: 443 } } } }],
      },
    ],
  };
  const envoy = await clusterJson(t, mesh(external), name);
  t.like(envoy, { type: 'STRICT_DNS', dnsLookupFamily: 'V4_PREFERRED', loadAssignment: assignment });
  t.is(envoy.transportSocketMatches, undefined);
  const grpc = await clusterJson(t, mesh(external), name, grpcProxy());
  t.like(grpc, { type: 'LOGICAL_DNS', loadAssignment: assignment });
});

// ---------------------------------------------------------------------------------------------------
// Special clusters

test('an Envoy sidecar gets PassthroughCluster, BlackHoleCluster, InboundPassthroughCluster and its inbound clusters', async (t) => {
  const objects = mesh(rule({ trafficPolicy: { connectionPool: { http: { http2MaxRequests: 8 } } } }));
  const clusters = await clustersOf(t, objects, envoyProxy('default', { id: 'reviews-v1.default' }));
  const passthrough = toJson(clusters.get('PassthroughCluster')!);
  t.like(passthrough, {
    type: 'ORIGINAL_DST',
    lbPolicy: 'CLUSTER_PROVIDED',
    connectTimeout: '10s',
    circuitBreakers: { thresholds: [{ maxConnections: UNLIMITED }] },
    typedExtensionProtocolOptions: {
      [HPO]: {
        commonHttpProtocolOptions: { idleTimeout: '300s' },
        useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
      },
    },
  });
  t.deepEqual(toJson(clusters.get('BlackHoleCluster')!), {
    name: 'BlackHoleCluster',
    type: 'STATIC',
    connectTimeout: '10s',
  });
  t.like(toJson(clusters.get('InboundPassthroughCluster')!), {
    type: 'ORIGINAL_DST',
    upstreamBindConfig: { sourceAddress: { address: '127.0.0.6', portValue: 0 } },
  });
  // The Pod named by node.id serves reviews:9080: one inbound cluster to the app on localhost, with the
  // rule's connection pool (the only DestinationRule block that applies inbound).
  t.deepEqual(toJson(clusters.get('inbound|9080||')!), {
    name: 'inbound|9080||',
    type: 'STATIC',
    connectTimeout: '10s',
    circuitBreakers: {
      thresholds: [{ maxConnections: UNLIMITED, maxPendingRequests: UNLIMITED, maxRequests: 8, maxRetries: UNLIMITED }],
    },
    loadAssignment: {
      clusterName: 'inbound|9080||',
      endpoints: [
        { lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: 9080 } } } }] },
      ],
    },
  });
  t.deepEqual(
    [...clusters.keys()].filter((n) => n.startsWith('inbound|')),
    ['inbound|9080||'],
  );
});

test('inbound clusters by instance IP when node.id names no known Pod; HTTP/2 target ports speak HTTP/2', async (t) => {
  const clusters = await clustersOf(
    t,
    mesh(),
    envoyProxy('default', { id: 'unknown.default', instanceIps: ['10.0.1.1'] }),
  );
  const inbound = toJson(clusters.get('inbound|7070||')!);
  t.like(inbound, {
    loadAssignment: {
      endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { portValue: 7070 } } } }] }],
    },
    typedExtensionProtocolOptions: { [HPO]: { explicitHttpConfig: { http2ProtocolOptions: {} } } },
  });
  t.false(clusters.has('inbound|9080||'));
});

test('the OTLP collector cluster exists only with a collector: STRICT_DNS for a name, STATIC for an IP', async (t) => {
  const none = await clustersOf(t, mesh());
  t.false(none.has('opentelemetry-collector'));
  const byName = await clustersOf(t, mesh(), envoyProxy(), {
    tracing: { samplingPercent: 1, collector: 'jaeger.observability:4317' },
  });
  t.like(toJson(byName.get('opentelemetry-collector')!), {
    type: 'STRICT_DNS',
    dnsLookupFamily: 'V4_PREFERRED',
    loadAssignment: {
      clusterName: 'opentelemetry-collector',
      endpoints: [
        {
          lbEndpoints: [
            { endpoint: { address: { socketAddress: { address: 'jaeger.observability', portValue: 4317 } } } },
          ],
        },
      ],
    },
    typedExtensionProtocolOptions: { [HPO]: { explicitHttpConfig: { http2ProtocolOptions: {} } } },
  });
  const byIp = await clustersOf(t, mesh(), envoyProxy(), { tracing: { samplingPercent: 1, collector: '[::1]:4317' } });
  t.like(toJson(byIp.get('opentelemetry-collector')!), {
    type: 'STATIC',
    loadAssignment: {
      endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '::1' } } } }] }],
    },
  });
});

test('proxyless gRPC gets outbound clusters only', async (t) => {
  const clusters = await clustersOf(t, mesh(), grpcProxy('default', { id: 'reviews-v1.default' }), {
    tracing: { samplingPercent: 1, collector: 'jaeger:4317' },
  });
  t.deepEqual([...clusters.keys()], ['outbound|7070||echo.default.svc.cluster.local', CLUSTER]);
});

test('grpc-js-xds accepts every policy variant for proxyless gRPC, and would NACK the Envoy form', async (t) => {
  const policies: TrafficPolicy[] = [
    { loadBalancer: { simple: 'LEAST_REQUEST', warmup: { duration: '10s' } } },
    { loadBalancer: { simple: 'RANDOM' } },
    { loadBalancer: { consistentHash: { httpHeaderName: 'x', maglev: { tableSize: 65537 } } } },
    { loadBalancer: { consistentHash: { httpHeaderName: 'x', ringHash: { minimumRingSize: 8388608 } } } },
    {
      outlierDetection: {
        consecutive5xxErrors: 1,
        consecutiveGatewayErrors: 1,
        interval: '1ms',
        baseEjectionTime: '1h',
        maxEjectionPercent: 100,
        minHealthPercent: 100,
      },
    },
    {
      connectionPool: {
        tcp: { maxConnections: 1, connectTimeout: '1ms' },
        http: { http2MaxRequests: 1, maxRetries: 1 },
      },
    },
    { tls: { mode: 'MESH_MUTUAL' } },
    // MUTUAL needs certificate files or a Secret, which proxyless gRPC cannot read: no cluster (tls-origination.test.ts).
    { tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: ['a.example'] } },
    { tls: { mode: 'SIMPLE', sni: 'a.example' } },
    { tls: { mode: 'DISABLE' } },
  ];
  for (const trafficPolicy of policies) await policyJson(t, trafficPolicy, grpcProxy());
  const envoyForm = buildClusters(contextFor(snapshotOf(mesh()), envoyProxy())).filter((c) => c.name === CLUSTER);
  t.deepEqual(grpcXdsErrors(envoyForm), [
    `${CLUSTER}: Cluster message validation failed: [load_balancing_policy unset and unsupported lb_policy: LEAST_REQUEST]`,
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Determinism

test('the same mesh, in any object order, gives byte-identical clusters', async (t) => {
  const objects = mesh(
    rule({
      trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2 }, tls: { mode: 'MESH_MUTUAL' } },
      subsets: [{ name: 'v1', labels: { version: 'v1' } }],
    }),
  );
  for (const proxy of [envoyProxy('default', { id: 'reviews-v1.default' }), grpcProxy()]) {
    const a = encodeAll(buildClusters(contextFor(snapshotOf(objects), proxy)));
    const b = encodeAll(buildClusters(contextFor(snapshotOf([...objects].reverse()), proxy)));
    t.deepEqual(
      b.map((bytes) => Buffer.from(bytes).toString('base64')),
      a.map((bytes) => Buffer.from(bytes).toString('base64')),
    );
  }
});

test('TLS contexts (encoded in two parts and shared) are byte-identical to a whole-message encoding', (t) => {
  const objects = mesh(
    rule({
      trafficPolicy: { tls: { mode: 'SIMPLE', sni: 'a.example' } },
      subsets: [{ name: 'v1', labels: { version: 'v1' } }],
    }),
  );
  const sockets = [envoyProxy(), grpcProxy()].flatMap((proxy) =>
    buildClusters(contextFor(snapshotOf(objects), proxy)).flatMap((c) => [
      ...(c.transportSocket ? [c.transportSocket] : []),
      ...c.transportSocketMatches.flatMap((m) => (m.transportSocket ? [m.transportSocket] : [])),
    ]),
  );
  const tls = sockets.filter((s) => s.name === 'envoy.transport_sockets.tls');
  t.true(tls.length >= 4);
  for (const socket of tls) {
    if (socket.configType.case !== 'typedConfig') throw new Error('no typed config');
    const bytes = socket.configType.value.value;
    const reencoded = toBinary(UpstreamTlsContextSchema, fromBinary(UpstreamTlsContextSchema, bytes));
    t.deepEqual(Buffer.from(reencoded), Buffer.from(bytes));
  }
});
