// EDS translation (control-plane/translate/endpoints.ts): subset filtering, localities with weights,
// in-mesh metadata, not-ready endpoints, empty assignments; every assignment passes Envoy's validation.
import test, { type ExecutionContext } from 'ava';
import type { ClusterLoadAssignment } from '../../control-plane/envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { buildClusters } from '../../control-plane/translate/clusters.js';
import { buildLoadAssignments } from '../../control-plane/translate/endpoints.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import {
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
} from './_snapshots.js';
import { grpcXdsErrors } from './_grpc-xds.js';

const FQDN = 'reviews.default.svc.cluster.local';
const CLUSTER = `outbound|9080||${FQDN}`;
const MESH_METADATA = { filterMetadata: { 'envoy.transport_socket_match': { tlsMode: 'mesh' } } };

interface PodSpec {
  readonly name: string;
  readonly address: string;
  readonly version: string;
  readonly zone?: string;
  readonly region?: string;
  readonly ready?: boolean;
  readonly inMesh?: boolean;
}

/** reviews:9080 (target 9080) backed by `pods`, and a DestinationRule with subsets v1 and v2. */
function mesh(pods: readonly PodSpec[], extra: MeshObject[] = []): MeshObject[] {
  return [
    namespace('default'),
    service('default', 'reviews', [{ name: 'http', port: 9080 }]),
    ...pods.flatMap((p) => [
      pod('default', p.name, {
        app: 'reviews',
        version: p.version,
        ...(p.region ? { 'topology.kubernetes.io/region': p.region } : {}),
        ...(p.inMesh === false ? {} : { 'trellis.dev/tlsMode': 'mesh' }),
      }),
      slice(
        'default',
        `${p.name}-slice`,
        'reviews',
        [{ name: 'http', port: 9080 }],
        [
          {
            address: p.address,
            pod: p.name,
            ...(p.zone ? { zone: p.zone } : {}),
            ...(p.ready !== undefined ? { ready: p.ready } : {}),
          },
        ],
      ),
    ]),
    destinationRule('default', 'reviews', {
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    }),
    ...extra,
  ];
}

async function assignments(
  t: ExecutionContext,
  objects: MeshObject[],
  names: readonly string[],
  proxy: ProxyInfo = envoyProxy(),
): Promise<Map<string, Record<string, unknown>>> {
  const snapshot = snapshotOf(objects);
  t.deepEqual(
    snapshot.problems.filter((p) => p.severity === 'error'),
    [],
    'the test mesh itself is valid',
  );
  const out = buildLoadAssignments(contextFor(snapshot, proxy), names);
  t.deepEqual(
    out.map((a) => a.clusterName),
    [...names],
  );
  await assertEnvoyResourcesValid(t, out);
  if (proxy.proxyType === 'grpc') t.deepEqual(grpcXdsErrors(out), [], 'grpc-js-xds accepts every assignment');
  return new Map(out.map((a: ClusterLoadAssignment) => [a.clusterName, toJson(a)]));
}

function endpoint(address: string, extra: Record<string, unknown> = {}) {
  return {
    endpoint: { address: { socketAddress: { address, portValue: 9080 } } },
    healthStatus: 'HEALTHY',
    ...extra,
  };
}

const TWO = [
  { name: 'reviews-v1', address: '10.0.0.1', version: 'v1' },
  { name: 'reviews-v2', address: '10.0.0.2', version: 'v2' },
];

test('one assignment per requested name; subsets filtered by the labels of the DestinationRule subset', async (t) => {
  const names = [CLUSTER, `outbound|9080|v1|${FQDN}`, `outbound|9080|v2|${FQDN}`];
  const byName = await assignments(t, mesh(TWO), names);
  t.deepEqual(byName.get(CLUSTER), {
    clusterName: CLUSTER,
    endpoints: [
      {
        locality: {},
        loadBalancingWeight: 2,
        lbEndpoints: [
          endpoint('10.0.0.1', { metadata: MESH_METADATA }),
          endpoint('10.0.0.2', { metadata: MESH_METADATA }),
        ],
      },
    ],
  });
  t.deepEqual(byName.get(`outbound|9080|v1|${FQDN}`), {
    clusterName: `outbound|9080|v1|${FQDN}`,
    endpoints: [
      { locality: {}, loadBalancingWeight: 1, lbEndpoints: [endpoint('10.0.0.1', { metadata: MESH_METADATA })] },
    ],
  });
  t.like(byName.get(`outbound|9080|v2|${FQDN}`), {
    endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '10.0.0.2' } } } }] }],
  });
});

test('the assignments answer exactly the EDS clusters of buildClusters', async (t) => {
  const snapshot = snapshotOf(mesh(TWO));
  const ctx = contextFor(snapshot, envoyProxy());
  const eds = buildClusters(ctx)
    .filter((c) => c.edsClusterConfig !== undefined)
    .map((c) => c.edsClusterConfig!.serviceName);
  const out = buildLoadAssignments(ctx, eds);
  t.deepEqual(
    out.map((a) => a.clusterName),
    eds,
  );
  await assertEnvoyResourcesValid(t, out);
});

test('endpoints are grouped by locality, sorted, each locality weighted by its endpoint count', async (t) => {
  const pods = [
    { name: 'a', address: '10.0.0.5', version: 'v1', region: 'eu', zone: 'eu-b' },
    { name: 'b', address: '10.0.0.1', version: 'v1', region: 'us', zone: 'us-a' },
    { name: 'c', address: '10.0.0.3', version: 'v2', region: 'eu', zone: 'eu-a' },
    { name: 'd', address: '10.0.0.2', version: 'v2', region: 'eu', zone: 'eu-b' },
    { name: 'e', address: '10.0.0.4', version: 'v2' },
  ];
  const byName = await assignments(t, mesh(pods), [CLUSTER], grpcProxy());
  const localities = (
    byName.get(CLUSTER)!.endpoints as { locality: unknown; loadBalancingWeight: number; lbEndpoints: unknown[] }[]
  ).map((l) => ({
    locality: l.locality,
    weight: l.loadBalancingWeight,
    addresses: l.lbEndpoints.map(
      (e) =>
        (e as { endpoint: { address: { socketAddress: { address: string } } } }).endpoint.address.socketAddress.address,
    ),
  }));
  t.deepEqual(localities, [
    { locality: {}, weight: 1, addresses: ['10.0.0.4'] },
    { locality: { region: 'eu', zone: 'eu-a' }, weight: 1, addresses: ['10.0.0.3'] },
    { locality: { region: 'eu', zone: 'eu-b' }, weight: 2, addresses: ['10.0.0.2', '10.0.0.5'] },
    { locality: { region: 'us', zone: 'us-a' }, weight: 1, addresses: ['10.0.0.1'] },
  ]);
});

test('only endpoints of Pods with a sidecar carry the auto-mTLS metadata, and only for Envoy', async (t) => {
  const pods = [
    { name: 'meshed', address: '10.0.0.1', version: 'v1' },
    { name: 'plain', address: '10.0.0.2', version: 'v1', inMesh: false },
  ];
  const envoy = await assignments(t, mesh(pods), [CLUSTER]);
  t.deepEqual((envoy.get(CLUSTER)!.endpoints as { lbEndpoints: unknown[] }[])[0]!.lbEndpoints, [
    endpoint('10.0.0.1', { metadata: MESH_METADATA }),
    endpoint('10.0.0.2'),
  ]);
  const grpc = await assignments(t, mesh(pods), [CLUSTER], grpcProxy());
  t.deepEqual((grpc.get(CLUSTER)!.endpoints as { lbEndpoints: unknown[] }[])[0]!.lbEndpoints, [
    endpoint('10.0.0.1'),
    endpoint('10.0.0.2'),
  ]);
});

test('endpoints that are not ready are left out (a locality with none left is dropped)', async (t) => {
  const pods = [
    { name: 'up', address: '10.0.0.1', version: 'v1', zone: 'a' },
    { name: 'down', address: '10.0.0.2', version: 'v1', zone: 'b', ready: false },
  ];
  const byName = await assignments(t, mesh(pods), [CLUSTER]);
  t.like(byName.get(CLUSTER), {
    endpoints: [
      {
        locality: { zone: 'a' },
        loadBalancingWeight: 1,
        lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '10.0.0.1' } } } }],
      },
    ],
  });
  t.is((byName.get(CLUSTER)!.endpoints as unknown[]).length, 1);
});

test('an empty assignment, never none: unknown subset, no endpoints, unknown service or port, foreign names', async (t) => {
  const names = [
    `outbound|9080|v9|${FQDN}`,
    'outbound|9080||empty.default.svc.cluster.local',
    'outbound|9080||nothing.default.svc.cluster.local',
    `outbound|1234||${FQDN}`,
    'inbound|9080||',
    'not-a-cluster',
  ];
  const objects = mesh(TWO, [service('default', 'empty', [{ name: 'http', port: 9080 }])]);
  for (const proxy of [envoyProxy(), grpcProxy()]) {
    const byName = await assignments(t, objects, names, proxy);
    for (const name of names) t.deepEqual(byName.get(name), { clusterName: name }, name);
  }
});

test('a subset is resolved with the DestinationRule visible from the proxy namespace', async (t) => {
  // The client's own namespace holds a rule whose v1 selects version v2: it wins over the service's.
  const objects = mesh(TWO, [
    namespace('client'),
    destinationRule('client', 'override', { host: FQDN, subsets: [{ name: 'v1', labels: { version: 'v2' } }] }),
  ]);
  const byName = await assignments(t, objects, [`outbound|9080|v1|${FQDN}`], envoyProxy('client'));
  t.like(byName.get(`outbound|9080|v1|${FQDN}`), {
    endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '10.0.0.2' } } } }] }],
  });
});

test('the same mesh, in any object order, gives byte-identical assignments', (t) => {
  const pods = [
    { name: 'a', address: '10.0.0.5', version: 'v1', zone: 'b' },
    { name: 'b', address: '10.0.0.1', version: 'v1', zone: 'a' },
    { name: 'c', address: '10.0.0.3', version: 'v2', zone: 'b' },
  ];
  const names = [CLUSTER, `outbound|9080|v1|${FQDN}`];
  for (const proxy of [envoyProxy(), grpcProxy()]) {
    const a = encodeAll(buildLoadAssignments(contextFor(snapshotOf(mesh(pods)), proxy), names));
    const b = encodeAll(buildLoadAssignments(contextFor(snapshotOf([...mesh(pods)].reverse()), proxy), names));
    t.deepEqual(
      b.map((bytes) => Buffer.from(bytes).toString('base64')),
      a.map((bytes) => Buffer.from(bytes).toString('base64')),
    );
  }
});
