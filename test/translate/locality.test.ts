// Locality load balancing (control-plane/translate/locality.ts, endpoints.ts) and DestinationRule
// workloadSelector: EDS priorities and weights by the proxy's locality as Istio computes them, endpoint
// localities from Node labels, the proxy's locality (its label, its Node, its own endpoint), sharing of assignments between
// proxies of one locality, and the Envoy cluster fields. Every assignment passes Envoy's validation and
// grpc-js-xds's.
import test, { type ExecutionContext } from 'ava';
import type { V1EndpointSlice, V1Node } from '@kubernetes/client-node';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { DestinationRuleSpec, TrafficPolicy } from '../../crds/types.js';
import { destinationRuleFor } from '../../control-plane/model/lookup.js';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import { validateRoutingResource } from '../../crds/validator.js';
import { buildClusters } from '../../control-plane/translate/clusters.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import { buildLoadAssignments } from '../../control-plane/translate/endpoints.js';
import { generateResources, meshGenerator } from '../../control-plane/translate/generator.js';
import { localityMatches, proxyLocality } from '../../control-plane/translate/locality.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import { grpcXdsErrors } from './_grpc-xds.js';
import {
  assertEnvoyResourcesValid,
  contextFor,
  destinationRule,
  envoyProxy,
  grpcProxy,
  namespace,
  pod,
  service,
  snapshotOf,
  toJson,
} from './_snapshots.js';

const FQDN = 'reviews.default.svc.cluster.local';
const CLUSTER = `outbound|9080||${FQDN}`;
const OUTLIER = { consecutive5xxErrors: 3 };

interface Ep {
  readonly name: string;
  readonly address: string;
  /** `region/zone/subzone` of its Node. */
  readonly at: string;
  readonly labels?: Record<string, string>;
  /** Leave the slice's zone unset (the Node's zone label is read). */
  readonly noSliceZone?: boolean;
}

function node(name: string, at: string, legacy = false): MeshObject {
  const [region = '', zone = '', subZone = ''] = at.split('/');
  const object: V1Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        [legacy ? 'failure-domain.beta.kubernetes.io/region' : 'topology.kubernetes.io/region']: region,
        [legacy ? 'failure-domain.beta.kubernetes.io/zone' : 'topology.kubernetes.io/zone']: zone,
        ...(subZone ? { 'topology.istio.io/subzone': subZone } : {}),
      },
    },
  };
  return { kind: 'Node', namespace: '', name, object, origin: {} };
}

/** reviews:9080 backed by `eps`, one Node per endpoint, and a DestinationRule with `spec` (host reviews). */
function mesh(eps: readonly Ep[], spec: Omit<DestinationRuleSpec, 'host'> | undefined, extra: MeshObject[] = []) {
  const slice: V1EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'reviews-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'reviews' } },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: 9080 }],
    endpoints: eps.map((e) => ({
      addresses: [e.address],
      nodeName: `node-${e.name}`,
      ...(e.noSliceZone ? {} : { zone: e.at.split('/')[1] }),
      targetRef: { kind: 'Pod', namespace: 'default', name: e.name },
    })),
  };
  return [
    namespace('default'),
    service('default', 'reviews', [{ name: 'grpc', port: 9080 }]),
    ...eps.flatMap((e) => [pod('default', e.name, { app: 'reviews', ...e.labels }), node(`node-${e.name}`, e.at)]),
    { kind: 'EndpointSlice', namespace: 'default', name: 'reviews-1', object: slice, origin: {} } as MeshObject,
    ...(spec ? [destinationRule('default', 'reviews', { host: 'reviews', ...spec })] : []),
    ...extra,
  ];
}

const at = (region: string, zone: string, subZone = '') => ({ region, zone, subZone });

/** Each endpoint address with its locality group's priority and weight, for both proxy types (checked). */
async function priorities(
  t: ExecutionContext,
  objects: MeshObject[],
  proxy: Partial<ProxyInfo>,
  cluster = CLUSTER,
): Promise<Record<string, [number, number]>> {
  const snapshot = snapshotOf(objects);
  t.deepEqual(
    snapshot.problems.filter((p) => p.severity === 'error'),
    [],
    'the test mesh itself is valid',
  );
  const results: Record<string, [number, number]>[] = [];
  for (const p of [envoyProxy('default', proxy), grpcProxy('default', proxy)]) {
    const out = buildLoadAssignments(contextFor(snapshot, p), [cluster]);
    await assertEnvoyResourcesValid(t, out);
    if (p.proxyType === 'grpc') t.deepEqual(grpcXdsErrors(out), [], 'grpc-js-xds accepts the assignment');
    const json = toJson(out[0]!) as {
      endpoints?: {
        priority?: number;
        loadBalancingWeight: number;
        lbEndpoints: { endpoint: { address: { socketAddress: { address: string } } } }[];
      }[];
    };
    const byAddress: Record<string, [number, number]> = {};
    for (const group of json.endpoints ?? [])
      for (const e of group.lbEndpoints)
        byAddress[e.endpoint.address.socketAddress.address] = [group.priority ?? 0, group.loadBalancingWeight];
    results.push(byAddress);
  }
  t.deepEqual(results[0], results[1], 'Envoy and proxyless gRPC get the same priorities and weights');
  return results[0]!;
}

const FOUR: Ep[] = [
  { name: 'a1', address: '10.0.0.1', at: 'us-east/us-east-1a/s1' },
  { name: 'a2', address: '10.0.0.2', at: 'us-east/us-east-1a/s2' },
  { name: 'b', address: '10.0.0.3', at: 'us-east/us-east-1b' },
  { name: 'c', address: '10.0.0.4', at: 'eu-west/eu-west-1a' },
  { name: 'd', address: '10.0.0.5', at: 'us-west/us-west-1a' },
];
const EAST_1A_S1 = { locality: at('us-east', 'us-east-1a', 's1') };

test('failover (Istio LbPriority): same sub-zone 0, same zone 1, same region 2, other regions 3', async (t) => {
  t.deepEqual(await priorities(t, mesh(FOUR, { trafficPolicy: { outlierDetection: OUTLIER } }), EAST_1A_S1), {
    '10.0.0.1': [0, 1],
    '10.0.0.2': [1, 1],
    '10.0.0.3': [2, 1],
    '10.0.0.4': [3, 1],
    '10.0.0.5': [3, 1],
  });
});

test('failover needs outlier detection (Istio): without it, and with enabled: false, no priorities', async (t) => {
  const flat = { '10.0.0.1': [0, 1], '10.0.0.2': [0, 1], '10.0.0.3': [0, 1], '10.0.0.4': [0, 1], '10.0.0.5': [0, 1] };
  t.deepEqual(await priorities(t, mesh(FOUR, undefined), EAST_1A_S1), flat);
  t.deepEqual(
    await priorities(
      t,
      mesh(FOUR, {
        trafficPolicy: { loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'eu-west' }] } } },
      }),
      EAST_1A_S1,
    ),
    flat,
  );
  t.deepEqual(
    await priorities(
      t,
      mesh(FOUR, {
        trafficPolicy: { outlierDetection: OUTLIER, loadBalancer: { localityLbSetting: { enabled: false } } },
      }),
      EAST_1A_S1,
    ),
    flat,
  );
});

test('failover to a named region: it comes before every other region, gaps renumbered', async (t) => {
  const spec = {
    trafficPolicy: {
      outlierDetection: OUTLIER,
      loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'eu-west' }] } },
    },
  };
  t.deepEqual(await priorities(t, mesh(FOUR, spec), { locality: at('us-east', 'us-east-1b') }), {
    '10.0.0.3': [0, 1],
    '10.0.0.1': [1, 1],
    '10.0.0.2': [1, 1],
    '10.0.0.4': [2, 1],
    '10.0.0.5': [3, 1],
  });
  // A proxy of another region: the rule does not apply to it, every other region is priority 3 → 2.
  t.deepEqual(await priorities(t, mesh(FOUR, spec), { locality: at('us-west', 'us-west-1a') }), {
    '10.0.0.5': [0, 1],
    '10.0.0.1': [1, 1],
    '10.0.0.2': [1, 1],
    '10.0.0.3': [1, 1],
    '10.0.0.4': [1, 1],
  });
});

test('failoverPriority (Istio applyFailoverPriorities): labels in order, key=value, a locality split by priority', async (t) => {
  const eps: Ep[] = [
    { name: 'x1', address: '10.0.1.1', at: 'r1/z1', labels: { version: 'v1', tier: 'gold' } },
    { name: 'x2', address: '10.0.1.2', at: 'r1/z1', labels: { version: 'v2', tier: 'gold' } },
    { name: 'x3', address: '10.0.1.3', at: 'r1/z2', labels: { version: 'v1', tier: 'bronze' } },
    { name: 'x4', address: '10.0.1.4', at: 'r2/z9', labels: { version: 'v1', tier: 'gold' } },
  ];
  const spec = (failoverPriority: string[]): Omit<DestinationRuleSpec, 'host'> => ({
    trafficPolicy: { outlierDetection: OUTLIER, loadBalancer: { localityLbSetting: { failoverPriority } } },
  });
  // version from the proxy's label, then its zone (a topology label: the proxy's locality).
  t.deepEqual(
    await priorities(t, mesh(eps, spec(['version', 'topology.kubernetes.io/zone'])), {
      labels: { version: 'v1' },
      locality: at('r1', 'z1'),
    }),
    { '10.0.1.1': [0, 1], '10.0.1.3': [1, 1], '10.0.1.4': [1, 1], '10.0.1.2': [2, 1] },
  );
  // key=value compares with the value given, whatever the proxy's labels.
  t.deepEqual(
    await priorities(t, mesh(eps, spec(['tier=gold', 'version=v1'])), {
      labels: { app: 'frontend' },
      locality: at('r1', 'z1'),
    }),
    { '10.0.1.1': [0, 1], '10.0.1.4': [0, 1], '10.0.1.2': [1, 1], '10.0.1.3': [2, 1] },
  );
  // With failover too, the locality order applies within each label priority (× 5, then renumbered).
  t.deepEqual(
    await priorities(
      t,
      mesh(eps, {
        trafficPolicy: {
          outlierDetection: OUTLIER,
          loadBalancer: { localityLbSetting: { failoverPriority: ['tier'], failover: [{ from: 'r1', to: 'r2' }] } },
        },
      }),
      { labels: { tier: 'gold' }, locality: at('r1', 'z1') },
    ),
    { '10.0.1.1': [0, 2], '10.0.1.2': [0, 2], '10.0.1.4': [1, 1], '10.0.1.3': [2, 1] },
  );
});

test('distribute (Istio applyLocalityWeights): the first matching from; weights by ceil; unmatched localities left out', async (t) => {
  const eps: Ep[] = [
    { name: 'a1', address: '10.0.2.1', at: 'us/a' },
    { name: 'a2', address: '10.0.2.2', at: 'us/a' },
    { name: 'b1', address: '10.0.2.3', at: 'us/b/s1' },
    { name: 'b2', address: '10.0.2.4', at: 'us/b/s2' },
    { name: 'c', address: '10.0.2.5', at: 'eu/c' },
  ];
  const spec: Omit<DestinationRuleSpec, 'host'> = {
    trafficPolicy: {
      loadBalancer: {
        localityLbSetting: {
          distribute: [
            { from: 'eu/*', to: { 'eu/*': 100 } },
            { from: 'us/a/*', to: { 'us/a': 75, 'us/b/*': 25 } },
          ],
        },
      },
    },
  };
  // us/a has weight 2 (two endpoints): 2×75/2 = 75; us/b/* matches two localities of weight 1: ceil(1×25/2) = 13.
  t.deepEqual(await priorities(t, mesh(eps, spec), { locality: at('us', 'a', 'x') }), {
    '10.0.2.1': [0, 75],
    '10.0.2.2': [0, 75],
    '10.0.2.3': [0, 13],
    '10.0.2.4': [0, 13],
  });
  t.deepEqual(await priorities(t, mesh(eps, spec), { locality: at('eu', 'c') }), { '10.0.2.5': [0, 100] });
  // No from matches: nothing changes.
  t.deepEqual(await priorities(t, mesh(eps, spec), { locality: at('ap', 'z') }), {
    '10.0.2.1': [0, 2],
    '10.0.2.2': [0, 2],
    '10.0.2.3': [0, 1],
    '10.0.2.4': [0, 1],
    '10.0.2.5': [0, 1],
  });
  t.true(localityMatches(at('us', 'b', 's1'), 'us/b'));
  t.true(localityMatches(at('us', 'b', 's1'), '*'));
  t.false(localityMatches(at('us', 'b', 's1'), 'us/c/*'));
});

test('endpoint localities: Node labels (deprecated ones too), the slice zone first, istio-locality on the Pod wins', (t) => {
  const objects = mesh(
    [
      { name: 'n1', address: '10.0.3.1', at: 'r1/z1/s1', noSliceZone: true },
      { name: 'n2', address: '10.0.3.2', at: 'r1/z1', labels: { 'istio-locality': 'r9.z9.s9' } },
    ],
    undefined,
  ).map((o) => (o.kind === 'Node' && o.name === 'node-n1' ? node('node-n1', 'r1/z1/s1', true) : o));
  const snapshot = snapshotOf(objects);
  const endpoints = snapshot.index.servicesByFqdn.get(FQDN)!.ports[0]!.endpoints;
  t.deepEqual(
    endpoints.map((e) => [e.address, e.locality, e.nodeName]),
    [
      ['10.0.3.1', at('r1', 'z1', 's1'), 'node-n1'],
      ['10.0.3.2', at('r9', 'z9', 's9'), 'node-n2'],
    ],
  );
});

test("the proxy's locality: its node's, else its own endpoint's (by Pod, then by address)", (t) => {
  const objects = mesh([{ name: 'client-0', address: '10.0.4.1', at: 'r1/z1' }], undefined);
  const snapshot = snapshotOf(objects);
  t.deepEqual(proxyLocality(snapshot, envoyProxy('default', { locality: at('r2', 'z2') })), at('r2', 'z2'));
  t.deepEqual(proxyLocality(snapshot, envoyProxy('default')), at('r1', 'z1'), 'client-0.default is Pod client-0');
  t.deepEqual(
    proxyLocality(snapshot, envoyProxy('default', { id: 'someone.default', instanceIps: ['10.0.4.1'] })),
    at('r1', 'z1'),
  );
  t.deepEqual(proxyLocality(snapshot, envoyProxy('default', { id: 'someone.default' })), at('', ''));
});

test("the proxy's locality: its istio-locality label, else its Node's (NODE_NAME), before its endpoint's", (t) => {
  // client-0 serves an endpoint on node-client-0 (r1/z1); node-far is another Node, node-bare has no topology.
  const bare: MeshObject = {
    kind: 'Node',
    namespace: '',
    name: 'node-bare',
    object: {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-bare', labels: { 'kubernetes.io/os': 'linux' } },
    },
    origin: {},
  };
  const objects = mesh([{ name: 'client-0', address: '10.0.4.1', at: 'r1/z1' }], undefined, [
    node('node-far', 'r3/z3/s3'),
    bare,
  ]);
  const snapshot = snapshotOf(objects);
  t.deepEqual(
    snapshot.nodes.map((n) => n.name),
    ['node-client-0', 'node-far'],
    'only Nodes with a topology label are kept',
  );
  const lonely = { id: 'lonely.default' }; // a Pod no Service selects: no endpoint
  t.deepEqual(
    proxyLocality(snapshot, envoyProxy('default', { ...lonely, nodeName: 'node-far' })),
    at('r3', 'z3', 's3'),
  );
  t.deepEqual(
    proxyLocality(snapshot, envoyProxy('default', { nodeName: 'node-far' })),
    at('r3', 'z3', 's3'),
    'the Node first',
  );
  t.deepEqual(proxyLocality(snapshot, envoyProxy('default', { nodeName: 'node-bare' })), at('r1', 'z1'), 'no topology');
  t.deepEqual(proxyLocality(snapshot, envoyProxy('default', { nodeName: 'unknown' })), at('r1', 'z1'), 'not listed');
  t.deepEqual(proxyLocality(snapshot, envoyProxy('default', { ...lonely, nodeName: 'unknown' })), at('', ''));
  t.deepEqual(
    proxyLocality(snapshot, envoyProxy('default', { nodeName: 'node-far', labels: { 'istio-locality': 'r9.z9' } })),
    at('r9', 'z9'),
    'the Pod label istio-locality wins over the Node',
  );
  t.deepEqual(
    proxyLocality(snapshot, envoyProxy('default', { nodeName: 'node-far', locality: at('r2', 'z2') })),
    at('r2', 'z2'),
    'an announced node.locality wins over everything',
  );
});

test("a Node's topology labels change: the hash moves, the generator gives its proxies the new locality", (t) => {
  const policy = { trafficPolicy: { outlierDetection: OUTLIER } };
  const extra = (zone: string) => [node('node-client', `us-east/${zone}`)];
  const before = snapshotOf(mesh(FOUR, policy, extra('us-east-1a')));
  const same = buildSnapshot(mesh(FOUR, policy, extra('us-east-1a')), {
    validate: validateRoutingResource,
    previous: before,
  });
  t.is(same.hash, before.hash);
  t.is(same.nodes, before.nodes, 'unchanged Nodes: the very list of the previous snapshot');
  const after = buildSnapshot(mesh(FOUR, policy, extra('us-east-1b')), {
    validate: validateRoutingResource,
    previous: same,
  });
  t.not(after.hash, before.hash);
  t.is(
    after.nodes.find((n) => n.name === 'node-a1'),
    before.nodes.find((n) => n.name === 'node-a1'),
    'others kept',
  );

  const generator = meshGenerator(defaultMeshConfig);
  const client = grpcProxy('default', { id: 'lonely.default', nodeName: 'node-client' });
  const eds = (snapshot: typeof before) =>
    generator
      .generate(client, snapshot)
      .get(TypeUrl.ClusterLoadAssignment)!
      .map((m) => toJson(m));
  const fresh = (snapshot: typeof before) =>
    generateResources(contextFor(snapshot, client))
      .get(TypeUrl.ClusterLoadAssignment)!
      .map((m) => toJson(m));
  t.deepEqual(eds(before), fresh(before));
  t.deepEqual(eds(after), fresh(after));
  t.notDeepEqual(eds(after), eds(before), 'us-east-1b is priority 0 now');
  const zeroes = (snapshot: typeof before) =>
    (fresh(snapshot)[0] as { endpoints: { priority?: number; locality?: { zone?: string } }[] }).endpoints
      .filter((g) => (g.priority ?? 0) === 0)
      .map((g) => g.locality?.zone);
  t.deepEqual(zeroes(before), ['us-east-1a', 'us-east-1a'], 'sub-zones s1 and s2 of us-east-1a');
  t.deepEqual(zeroes(after), ['us-east-1b']);
});

test('Envoy clusters: locality_weighted_lb_config with failover (outlier detection) or distribute, not otherwise', (t) => {
  const common = (policy: TrafficPolicy | undefined) => {
    const snapshot = snapshotOf(mesh(FOUR, policy ? { trafficPolicy: policy } : undefined));
    const cluster = buildClusters(contextFor(snapshot, envoyProxy())).find((c) => c.name === CLUSTER)!;
    return toJson(cluster).commonLbConfig;
  };
  t.is(common(undefined), undefined);
  t.deepEqual(common({ outlierDetection: OUTLIER }), { healthyPanicThreshold: {}, localityWeightedLbConfig: {} });
  t.deepEqual(common({ outlierDetection: OUTLIER, loadBalancer: { localityLbSetting: { enabled: false } } }), {
    healthyPanicThreshold: {},
  });
  t.deepEqual(common({ loadBalancer: { localityLbSetting: { distribute: [{ from: '*', to: { '*': 100 } }] } } }), {
    localityWeightedLbConfig: {},
  });
});

test('the cached generator shares assignments between proxies of one locality, and equals a fresh build', (t) => {
  const snapshot = snapshotOf(mesh(FOUR, { trafficPolicy: { outlierDetection: OUTLIER } }));
  const generator = meshGenerator(defaultMeshConfig);
  const proxy = (id: string, locality: ReturnType<typeof at>) => grpcProxy('default', { id, locality });
  const a1 = generator.generate(proxy('p1.default', at('us-east', 'us-east-1a', 's1')), snapshot);
  const a2 = generator.generate(proxy('p2.default', at('us-east', 'us-east-1a', 's1')), snapshot);
  const b = generator.generate(proxy('p3.default', at('eu-west', 'eu-west-1a')), snapshot);
  t.is(a1.get(TypeUrl.ClusterLoadAssignment), a2.get(TypeUrl.ClusterLoadAssignment), 'same locality: one EDS part');
  t.not(a1.get(TypeUrl.ClusterLoadAssignment), b.get(TypeUrl.ClusterLoadAssignment), 'another locality: its own');
  t.is(a1.get(TypeUrl.Cluster), b.get(TypeUrl.Cluster), 'clusters do not depend on the locality');
  for (const [p, got] of [
    [proxy('p1.default', at('us-east', 'us-east-1a', 's1')), a1],
    [proxy('p3.default', at('eu-west', 'eu-west-1a')), b],
  ] as const) {
    const fresh = generateResources(contextFor(snapshot, p));
    t.deepEqual(
      got.get(TypeUrl.ClusterLoadAssignment)!.map((m) => toJson(m)),
      fresh.get(TypeUrl.ClusterLoadAssignment)!.map((m) => toJson(m)),
    );
  }
  // No rule that reads localities: every locality shares the same assignments.
  const plain = snapshotOf(mesh(FOUR, undefined));
  const g2 = meshGenerator(defaultMeshConfig);
  t.is(
    g2.generate(proxy('p1.default', at('us-east', 'us-east-1a')), plain).get(TypeUrl.ClusterLoadAssignment),
    g2.generate(proxy('p3.default', at('eu-west', 'eu-west-1a')), plain).get(TypeUrl.ClusterLoadAssignment),
  );
});

test('workloadSelector (Istio): a matching rule of the proxy namespace first; never across namespaces', (t) => {
  const objects = [
    ...mesh(FOUR, { trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
    namespace('other'),
    destinationRule('default', 'reviews-frontend', {
      host: 'reviews',
      workloadSelector: { matchLabels: { app: 'frontend' } },
      trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
    }),
    destinationRule('other', 'reviews-other', {
      host: 'reviews.default.svc.cluster.local',
      workloadSelector: { matchLabels: { app: 'frontend' } },
      exportTo: ['.'],
      trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } },
    }),
  ];
  const snapshot = snapshotOf(objects);
  const names = (ns: string, labels?: Record<string, string>) =>
    destinationRuleFor(snapshot, FQDN, ns, labels)?.from.map((r) => `${r.namespace}/${r.name}`);
  t.deepEqual(names('default', { app: 'frontend' }), ['default/reviews-frontend']);
  t.deepEqual(names('default', { app: 'checkout' }), ['default/reviews']);
  t.deepEqual(names('default'), ['default/reviews'], 'without labels, selector rules are left out');
  t.deepEqual(names('other', { app: 'frontend' }), ['other/reviews-other']);
  t.deepEqual(names('other', { app: 'checkout' }), ['default/reviews'], "falls through to the service's namespace");
  // The generator keeps proxies with other selected labels apart, and equal ones together.
  const generator = meshGenerator(defaultMeshConfig);
  const lb = (labels: Record<string, string>, id: string) =>
    toJson(
      generator
        .generate(envoyProxy('default', { id, labels }), snapshot)
        .get(TypeUrl.Cluster)!
        .find((c) => (c as unknown as { name: string }).name === CLUSTER)!,
    ).lbPolicy;
  t.is(lb({ app: 'frontend' }, 'f1.default'), undefined, 'ROUND_ROBIN (the proto default)');
  t.is(lb({ app: 'checkout' }, 'c1.default'), 'RANDOM');
  t.is(lb({ app: 'frontend', extra: 'x' }, 'f2.default'), undefined);
});
