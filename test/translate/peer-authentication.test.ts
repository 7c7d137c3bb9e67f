// PeerAuthentication in translation: the effective inbound mode replaces the mesh config's mtlsMode in the
// sidecar's virtualInbound chains and in proxyless gRPC server listeners (per port with portLevelMtls), and
// the destination's mode decides proxyless client mTLS (STRICT) and Envoy plaintext (DISABLE). Every
// resource passes Envoy's own validation; every proxyless one is accepted by grpc-js-xds.
import test, { type ExecutionContext } from 'ava';
import type { V1Service } from '@kubernetes/client-node';
import type { Cluster } from '../../control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import type { Listener } from '../../control-plane/envoy/gen/envoy/config/listener/v3/listener_pb.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { buildClusters } from '../../control-plane/translate/clusters.js';
import type { MeshConfig } from '../../control-plane/translate/context.js';
import { buildLoadAssignments } from '../../control-plane/translate/endpoints.js';
import { buildListeners } from '../../control-plane/translate/listeners.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import type { PeerAuthenticationSpec } from '../../crds/types.js';
import { grpcXdsErrors } from './_grpc-xds.js';
import { assertGrpcAccepts, at, listenerJson, type Json } from './_routes-fixtures.js';
import {
  assertEnvoyResourcesValid,
  contextFor,
  destinationRule,
  envoyProxy,
  grpcProxy,
  namespace,
  peerAuthentication,
  pod,
  service,
  slice,
  snapshotOf,
  toJson,
  workload,
} from './_snapshots.js';

const REVIEWS = 'reviews.shop.svc.cluster.local';
const REVIEWS_CLUSTER = `outbound|9080||${REVIEWS}`;

/**
 * shop: `web` (http 8080 and tcp 6379) served by web-0 at 10.1.0.5 (labels app=web); `reviews` (grpc 9080,
 * v1 and v2 in the mesh). Plus policies.
 */
function mesh(...extra: MeshObject[]): MeshObject[] {
  return [
    namespace('shop'),
    namespace('trellis-system'),
    service('shop', 'web', [
      { name: 'http', port: 8080 },
      { name: 'tcp', port: 6379 },
    ]),
    pod('shop', 'web-0', { app: 'web', 'trellis.dev/tlsMode': 'mesh' }, 'web-sa'),
    slice(
      'shop',
      'web-x',
      'web',
      [
        { name: 'http', port: 8080 },
        { name: 'tcp', port: 6379 },
      ],
      [{ address: '10.1.0.5', pod: 'web-0' }],
    ),
    ...workload('shop', 'reviews', { name: 'grpc', port: 9080 }, [
      { version: 'v1', address: '10.0.0.1', port: 9080 },
      { version: 'v2', address: '10.0.0.2', port: 9080 },
    ]),
    ...extra,
  ];
}

const nsPolicy = (mode: NonNullable<PeerAuthenticationSpec['mtls']>['mode'], ns = 'shop') =>
  peerAuthentication(ns, 'default', { mtls: { mode } });
const meshPolicy = (mode: NonNullable<PeerAuthenticationSpec['mtls']>['mode']) =>
  peerAuthentication('trellis-system', 'default', { mtls: { mode } });
const webPolicy = (spec: Omit<PeerAuthenticationSpec, 'selector'>) =>
  peerAuthentication('shop', 'web', { selector: { matchLabels: { app: 'web' } }, ...spec });

const webSidecar = () => envoyProxy('shop', { id: 'web-0.shop', instanceIps: ['10.1.0.5'], labels: { app: 'web' } });
const webGrpc = () => grpcProxy('shop', { id: 'web-0.shop', instanceIps: ['10.1.0.5'], labels: { app: 'web' } });

function listenersOf(objects: MeshObject[], proxy: ProxyInfo, meshConfig: Partial<MeshConfig> = {}): Listener[] {
  const snapshot = snapshotOf(objects);
  const errors = snapshot.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map((p) => p.message).join('\n'));
  return buildListeners(contextFor(snapshot, proxy, meshConfig), []);
}

/** virtualInbound's chains as [name, match, TLS?], and whether it has a plaintext default chain. */
async function inbound(t: ExecutionContext, objects: MeshObject[], meshConfig: Partial<MeshConfig> = {}) {
  const listeners = listenersOf(objects, webSidecar(), meshConfig);
  await assertEnvoyResourcesValid(t, listeners);
  const vi = listenerJson(listeners, 'virtualInbound');
  return {
    chains: ((vi.filterChains as Json[]) ?? []).map((c) => [c.name, c.filterChainMatch ?? {}, 'transportSocket' in c]),
    defaultChain: 'defaultFilterChain' in vi,
  };
}

const BLACKHOLE = ['virtualInbound-blackhole', { destinationPort: 15006 }, false];

test('sidecar: a STRICT namespace policy gives what mesh-config STRICT gives', async (t) => {
  const byPolicy = await inbound(t, mesh(nsPolicy('STRICT')));
  const byConfig = await inbound(t, mesh(), { mtlsMode: 'STRICT' });
  t.deepEqual(byPolicy, byConfig);
  t.deepEqual(byPolicy, {
    chains: [
      BLACKHOLE,
      ['0.0.0.0_6379', { destinationPort: 6379, transportProtocol: 'tls' }, true],
      ['0.0.0.0_8080', { destinationPort: 8080, transportProtocol: 'tls' }, true],
      ['virtualInbound-passthrough-mtls', { transportProtocol: 'tls' }, true],
    ],
    defaultChain: false,
  });
});

test('sidecar: a PERMISSIVE policy overrides mesh-config STRICT (policy > mesh config)', async (t) => {
  const { chains, defaultChain } = await inbound(t, mesh(meshPolicy('PERMISSIVE')), { mtlsMode: 'STRICT' });
  t.true(defaultChain);
  t.deepEqual(
    chains.map((c) => c[0]),
    [
      'virtualInbound-blackhole',
      '0.0.0.0_6379_mtls',
      '0.0.0.0_6379',
      '0.0.0.0_8080_mtls',
      '0.0.0.0_8080',
      'virtualInbound-passthrough-mtls',
    ],
  );
});

test('sidecar DISABLE: plaintext chains only, no mTLS passthrough, plaintext default chain', async (t) => {
  const { chains, defaultChain } = await inbound(t, mesh(meshPolicy('STRICT'), nsPolicy('DISABLE')));
  t.true(defaultChain);
  t.deepEqual(chains, [
    BLACKHOLE,
    ['0.0.0.0_6379', { destinationPort: 6379, transportProtocol: 'raw_buffer' }, false],
    ['0.0.0.0_8080', { destinationPort: 8080, transportProtocol: 'raw_buffer' }, false],
  ]);
});

test('sidecar port level: STRICT port under a PERMISSIVE workload matches the port alone, DISABLE port plaintext', async (t) => {
  const { chains, defaultChain } = await inbound(
    t,
    mesh(
      nsPolicy('STRICT'),
      webPolicy({
        mtls: { mode: 'PERMISSIVE' },
        portLevelMtls: { '8080': { mode: 'STRICT' }, '6379': { mode: 'DISABLE' } },
      }),
    ),
  );
  t.true(defaultChain, 'the workload is PERMISSIVE');
  t.deepEqual(chains, [
    BLACKHOLE,
    ['0.0.0.0_6379', { destinationPort: 6379, transportProtocol: 'raw_buffer' }, false],
    // Plaintext to 8080 must not reach the default chain: every connection to the port terminates mTLS.
    ['0.0.0.0_8080', { destinationPort: 8080 }, true],
    ['virtualInbound-passthrough-mtls', { transportProtocol: 'tls', applicationProtocols: ['istio'] }, true],
  ]);
  // The workload policy selects by the proxy's LABELS: another workload keeps the namespace's STRICT.
  const other = listenersOf(
    mesh(
      nsPolicy('STRICT'),
      peerAuthentication('shop', 'x', { selector: { matchLabels: { app: 'other' } }, mtls: { mode: 'DISABLE' } }),
    ),
    webSidecar(),
  );
  t.false('defaultFilterChain' in listenerJson(other, 'virtualInbound'));
});

test('sidecar port level: a DISABLE port under a STRICT workload, an UNSET port takes the workload mode', async (t) => {
  const { chains, defaultChain } = await inbound(
    t,
    mesh(
      webPolicy({
        mtls: { mode: 'STRICT' },
        portLevelMtls: { '6379': { mode: 'DISABLE' }, '8080': { mode: 'UNSET' } },
      }),
    ),
  );
  t.false(defaultChain);
  t.deepEqual(chains, [
    BLACKHOLE,
    ['0.0.0.0_6379', { destinationPort: 6379, transportProtocol: 'raw_buffer' }, false],
    ['0.0.0.0_8080', { destinationPort: 8080, transportProtocol: 'tls' }, true],
    ['virtualInbound-passthrough-mtls', { transportProtocol: 'tls' }, true],
  ]);
});

function serverChains(listeners: Listener[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of listeners) {
    if (l.apiListener) continue;
    const chain = (toJson(l).filterChains as Json[])[0]!;
    out[l.name.replace('grpc/server?xds.resource.listening_address=', '')] =
      `${String(chain.name)}${'transportSocket' in chain ? '+tls' : ''}`;
  }
  return out;
}

test('gRPC server listeners: per port by the effective mode; PERMISSIVE and DISABLE are plaintext', async (t) => {
  const cases: [MeshObject[], Partial<MeshConfig>, Record<string, string>][] = [
    [[nsPolicy('STRICT')], {}, { '10.1.0.5:6379': 'inbound-mtls+tls', '10.1.0.5:8080': 'inbound-mtls+tls' }],
    [
      [meshPolicy('DISABLE')],
      { mtlsMode: 'STRICT' },
      { '10.1.0.5:6379': 'inbound-plaintext', '10.1.0.5:8080': 'inbound-plaintext' },
    ],
    [
      [webPolicy({ mtls: { mode: 'PERMISSIVE' }, portLevelMtls: { '8080': { mode: 'STRICT' } } })],
      {},
      { '10.1.0.5:6379': 'inbound-plaintext', '10.1.0.5:8080': 'inbound-mtls+tls' },
    ],
    [
      [nsPolicy('STRICT'), webPolicy({ portLevelMtls: { '6379': { mode: 'DISABLE' } } })],
      {},
      { '10.1.0.5:6379': 'inbound-plaintext', '10.1.0.5:8080': 'inbound-mtls+tls' },
    ],
  ];
  for (const [policies, meshConfig, expected] of cases) {
    const listeners = listenersOf(mesh(...policies), webGrpc(), meshConfig);
    await assertEnvoyResourcesValid(t, listeners);
    assertGrpcAccepts(t, listeners);
    t.deepEqual(serverChains(listeners), withWildcardBinds(expected));
  }
});

/** `expected` plus, per port, the same chain on the wildcard bind addresses (listeners-grpc.ts serverListenerAddresses). */
function withWildcardBinds(expected: Record<string, string>): Record<string, string> {
  const out = { ...expected };
  for (const [bind, chain] of Object.entries(expected)) {
    const port = bind.slice(bind.lastIndexOf(':') + 1);
    out[`0.0.0.0:${port}`] = chain;
    out[`[::]:${port}`] = chain;
  }
  return out;
}

async function clustersOf(
  t: ExecutionContext,
  objects: MeshObject[],
  proxy: ProxyInfo,
  meshConfig: Partial<MeshConfig> = {},
): Promise<Map<string, Cluster>> {
  const clusters = buildClusters(contextFor(snapshotOf(objects), proxy, meshConfig));
  await assertEnvoyResourcesValid(t, clusters);
  if (proxy.proxyType === 'grpc') t.deepEqual(grpcXdsErrors(clusters), [], 'grpc-js-xds accepts every cluster');
  return new Map(clusters.map((c) => [c.name, c]));
}

const MESH_SOCKET = {
  name: 'envoy.transport_sockets.tls',
  typedConfig: {
    '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    commonTlsContext: {
      tlsCertificateProviderInstance: { instanceName: 'default' },
      validationContext: {
        caCertificateProviderInstance: { instanceName: 'ROOTCA' },
        matchSubjectAltNames: [{ exact: 'spiffe://cluster.local/ns/shop/sa/reviews-sa' }],
      },
    },
  },
};

test('proxyless client: mesh mTLS without a DestinationRule when the destination is STRICT', async (t) => {
  const client = grpcProxy('shop');
  const socket = async (objects: MeshObject[], meshConfig: Partial<MeshConfig> = {}) => {
    const c = (await clustersOf(t, objects, client, meshConfig)).get(REVIEWS_CLUSTER)!;
    return toJson(c).transportSocket;
  };
  // STRICT by namespace, by mesh policy, by mesh config: the socket MESH_MUTUAL gives.
  t.deepEqual(await socket(mesh(nsPolicy('STRICT'))), MESH_SOCKET);
  t.deepEqual(await socket(mesh(meshPolicy('STRICT'))), MESH_SOCKET);
  t.deepEqual(await socket(mesh(), { mtlsMode: 'STRICT' }), MESH_SOCKET);
  t.deepEqual(
    await socket(
      mesh(destinationRule('shop', 'r', { host: 'reviews', trafficPolicy: { tls: { mode: 'MESH_MUTUAL' } } })),
    ),
    MESH_SOCKET,
  );
  // PERMISSIVE (default), DISABLE, or one workload not STRICT (MIXED): plaintext.
  t.is(await socket(mesh()), undefined);
  t.is(await socket(mesh(nsPolicy('DISABLE'))), undefined);
  t.is(
    await socket(
      mesh(
        nsPolicy('STRICT'),
        peerAuthentication('shop', 'v2', {
          selector: { matchLabels: { version: 'v2' } },
          mtls: { mode: 'PERMISSIVE' },
        }),
      ),
    ),
    undefined,
  );
  // The policy of the destination's namespace counts, not the client's.
  t.is(await socket(mesh(nsPolicy('STRICT', 'client-ns'))), undefined);
  // A DestinationRule's tls wins over the policy.
  t.is(
    await socket(
      mesh(
        nsPolicy('STRICT'),
        destinationRule('shop', 'r', { host: 'reviews', trafficPolicy: { tls: { mode: 'DISABLE' } } }),
      ),
    ),
    undefined,
  );
  // Subsets get it too.
  const subsets = await clustersOf(
    t,
    mesh(
      nsPolicy('STRICT'),
      destinationRule('shop', 'r', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    ),
    client,
  );
  t.deepEqual(toJson(subsets.get(`outbound|9080|v1|${REVIEWS}`)!).transportSocket, MESH_SOCKET);
});

test('proxyless client: an ExternalName destination never gets mesh mTLS', async (t) => {
  const external = service('shop', 'ext', [{ name: 'grpc', port: 443 }]);
  (external.object as V1Service).spec = {
    type: 'ExternalName',
    externalName: 'api.example.com',
    ports: [{ name: 'grpc', port: 443 }],
  };
  const clusters = await clustersOf(t, mesh(nsPolicy('STRICT'), external), grpcProxy('shop'));
  t.is(toJson(clusters.get('outbound|443||ext.shop.svc.cluster.local')!).transportSocket, undefined);
});

test('Envoy client: a DISABLE destination gets a plaintext cluster; others keep auto mTLS', async (t) => {
  const matches = async (objects: MeshObject[]) => {
    const c = toJson((await clustersOf(t, objects, envoyProxy('shop'))).get(REVIEWS_CLUSTER)!);
    return ((c.transportSocketMatches as Json[] | undefined) ?? []).map((m) => m.name);
  };
  t.deepEqual(await matches(mesh()), ['tlsMode-mesh', 'tlsMode-disabled']);
  t.deepEqual(await matches(mesh(nsPolicy('STRICT'))), ['tlsMode-mesh', 'tlsMode-disabled']);
  t.deepEqual(await matches(mesh(nsPolicy('DISABLE'))), []);
  t.deepEqual(await matches(mesh(meshPolicy('DISABLE'))), []);
  t.is(
    toJson((await clustersOf(t, mesh(nsPolicy('DISABLE')), envoyProxy('shop'))).get(REVIEWS_CLUSTER)!).transportSocket,
    undefined,
  );
});

test('Envoy EDS: endpoints of in-mesh Pods whose port is DISABLE carry no tlsMode metadata', async (t) => {
  const metadata = async (objects: MeshObject[]) => {
    const [cla] = buildLoadAssignments(contextFor(snapshotOf(objects), envoyProxy('shop')), [REVIEWS_CLUSTER]);
    await assertEnvoyResourcesValid(t, [cla!]);
    const endpoints = toJson(cla!).endpoints as Json[];
    return endpoints.flatMap((l) =>
      (l.lbEndpoints as Json[]).map((e) => [
        at(e, 'endpoint', 'address', 'socketAddress', 'address'),
        (e.metadata as { filterMetadata?: Record<string, Json> } | undefined)?.filterMetadata?.[
          'envoy.transport_socket_match'
        ]?.tlsMode ?? null,
      ]),
    );
  };
  t.deepEqual(await metadata(mesh()), [
    ['10.0.0.1', 'mesh'],
    ['10.0.0.2', 'mesh'],
  ]);
  const v2Disabled = peerAuthentication('shop', 'v2', {
    selector: { matchLabels: { version: 'v2' } },
    portLevelMtls: { '9080': { mode: 'DISABLE' } },
  });
  t.deepEqual(await metadata(mesh(v2Disabled)), [
    ['10.0.0.1', 'mesh'],
    ['10.0.0.2', null],
  ]);
  // A proxyless client's endpoints never carry it.
  const [grpcCla] = buildLoadAssignments(contextFor(snapshotOf(mesh()), grpcProxy('shop')), [REVIEWS_CLUSTER]);
  t.deepEqual(grpcXdsErrors([grpcCla!]), []);
  t.false(JSON.stringify(toJson(grpcCla!)).includes('transport_socket_match'));
});
