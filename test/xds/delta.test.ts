// Delta (incremental) ADS, through real gRPC with a raw client that controls every request field.
import test from 'ava';
import { resourceName, TypeUrl } from '../../control-plane/envoy/protos.js';
import { deltaNamesOf, deltaResourcesOf, deltaVersionsOf, endpointPortsOf, testNode } from '../helpers/ads-client.js';
import { apiListener, edsCluster, loadAssignment, routeConfig, type JsonResource } from '../helpers/control-plane.js';
import { metricsText, typeStatus } from '../helpers/debug.js';
import { waitFor } from '../helpers/wait.js';
import { adsEnv, twoClusterConfig } from '../helpers/ads-env.js';

const base = twoClusterConfig;

/** `base` with the endpoints of one assignment replaced. */
function withEndpoints(cluster: 'a' | 'b', ports: number[]): JsonResource[] {
  return base.map((r) => (r.clusterName === cluster ? loadAssignment(cluster, ports) : r));
}

const setup = adsEnv;

test('initial response: system version, nonce, per-resource name and version; wildcard CDS and named EDS', async (t) => {
  await using env = await setup();
  const s = env.client.delta();
  // No names on the first CDS request: a wildcard subscription.
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const cds = await s.next();
  t.is(cds.typeUrl, TypeUrl.Cluster);
  t.deepEqual(deltaNamesOf(cds), ['a', 'b']);
  t.deepEqual(cds.removedResources, []);
  t.not(cds.systemVersionInfo, '');
  t.not(cds.nonce, '');
  t.is(cds.controlPlane?.identifier, 'trellis');
  for (const r of cds.resources) {
    t.not(r.version, '');
    t.is(resourceName(deltaResourcesOf(cds).get(r.name)!), r.name);
  }
  const versions = deltaVersionsOf(cds);
  t.not(versions.a, versions.b);

  // Named EDS: only what was asked for.
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a'] });
  const eds = await s.next();
  t.is(eds.typeUrl, TypeUrl.ClusterLoadAssignment);
  t.deepEqual(deltaNamesOf(eds), ['a']);
  t.not(eds.nonce, cds.nonce);

  // An explicit `*` is the same wildcard: same resources, same versions, another nonce.
  const s2 = env.client.delta();
  s2.send({ node: testNode('p2.default'), typeUrl: TypeUrl.Cluster, resourceNamesSubscribe: ['*'] });
  const cds2 = await s2.next();
  t.deepEqual(deltaVersionsOf(cds2), versions);
  t.is(cds2.systemVersionInfo, cds.systemVersionInfo);
  t.not(cds2.nonce, cds.nonce);

  // A named CDS subscription is not a wildcard.
  const s3 = env.client.delta();
  s3.send({ node: testNode('p3.default'), typeUrl: TypeUrl.Cluster, resourceNamesSubscribe: ['b'] });
  t.deepEqual(deltaNamesOf(await s3.next()), ['b']);
});

test('a first wildcard request is answered even when there is nothing to send', async (t) => {
  // Envoy waits for the first LDS/CDS response before it finishes initializing.
  await using env = await setup([edsCluster('a'), loadAssignment('a', [9001])]);
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Listener });
  const lds = await s.next();
  t.is(lds.typeUrl, TypeUrl.Listener);
  t.deepEqual(lds.resources, []);
  t.deepEqual(lds.removedResources, []);
  t.not(lds.nonce, '');
});

test('ACK is recorded; NACK is recorded with its message, keeps the ACKed version and is not resent', async (t) => {
  await using env = await setup();
  const port = env.cp.monitoringPort;
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const first = await s.next();
  s.send({ typeUrl: TypeUrl.Cluster, responseNonce: first.nonce });
  const acked = await waitFor('the CDS ACK', async () => {
    const cds = await typeStatus(port, 'p1.default', 'CDS');
    return cds?.ackedVersion !== '' && cds;
  });
  t.is(acked.ackedVersion, first.systemVersionInfo);

  // A change: only the new cluster is sent, and the proxy rejects it.
  await env.cp.write([...base, edsCluster('c')]);
  const second = await s.next();
  t.deepEqual(deltaNamesOf(second), ['c']);
  s.send({
    typeUrl: TypeUrl.Cluster,
    responseNonce: second.nonce,
    errorDetail: { code: 3, message: 'cluster c: rejected by test' },
  });
  // The next message on the stream is the answer to a new EDS subscription: CDS was not sent again.
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a'] });
  const eds = await s.next();
  t.is(eds.typeUrl, TypeUrl.ClusterLoadAssignment);

  const cds = await typeStatus(port, 'p1.default', 'CDS');
  t.is(cds?.ackedVersion, first.systemVersionInfo);
  t.is(cds?.sentVersion, second.systemVersionInfo);
  t.is(cds?.lastNack?.message, 'cluster c: rejected by test');
  t.is(cds?.lastNack?.nonce, second.nonce);

  // A further change is pushed again.
  await env.cp.write([...base, edsCluster('c'), edsCluster('d')]);
  const third = await s.next();
  t.is(third.typeUrl, TypeUrl.Cluster);
  t.deepEqual(deltaNamesOf(third), ['d']);

  const metrics = await metricsText(port);
  t.regex(metrics, /trellis_xds_nacks_total\{type="CDS"\} 1/);
  t.regex(metrics, /trellis_xds_acks_total\{type="CDS"\} 1/);
});

test('a stale nonce: its ACK/NACK is ignored, its subscription changes are applied', async (t) => {
  await using env = await setup();
  const port = env.cp.monitoringPort;
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a'] });
  const first = await s.next();
  t.deepEqual(deltaNamesOf(first), ['a']);
  await env.cp.write(withEndpoints('a', [9011]));
  const second = await s.next();
  t.deepEqual(deltaNamesOf(second), ['a']);
  t.not(second.nonce, first.nonce);

  // A NACK of the first (now stale) response that also subscribes to b: b is sent, the NACK is not recorded.
  s.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    responseNonce: first.nonce,
    errorDetail: { code: 3, message: 'stale rejection' },
    resourceNamesSubscribe: ['b'],
  });
  const third = await s.next();
  t.deepEqual(deltaNamesOf(third), ['b']);
  // A stale ACK that subscribes to a missing name: the name is answered as removed, the ACK not recorded.
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, responseNonce: first.nonce, resourceNamesSubscribe: ['missing'] });
  const fourth = await s.next();
  t.deepEqual(fourth.resources, []);
  t.deepEqual(fourth.removedResources, ['missing']);

  const eds = await typeStatus(port, 'p1.default', 'EDS');
  t.is(eds?.ackedVersion, '');
  t.is(eds?.lastNack, undefined);
  t.deepEqual(eds?.subscription, ['a', 'b', 'missing']);
  const metrics = await metricsText(port);
  t.regex(metrics, /trellis_xds_stale_requests_total\{type="EDS"\} 2/);
  t.notRegex(metrics, /trellis_xds_nacks_total\{type="EDS"\}/);
  t.notRegex(metrics, /trellis_xds_acks_total\{type="EDS"\}/);
});

test('an unsubscribed name is not pushed; subscribing again sends it again', async (t) => {
  await using env = await setup();
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a', 'b'] });
  const first = await s.next();
  t.deepEqual(deltaNamesOf(first), ['a', 'b']);
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, responseNonce: first.nonce, resourceNamesUnsubscribe: ['b'] });
  await waitFor('the unsubscription', async () => {
    const eds = await typeStatus(env.cp.monitoringPort, 'p1.default', 'EDS');
    return JSON.stringify(eds?.subscription) === '["a"]';
  });

  // A change to b is not sent; the next message is the change to a.
  await env.cp.write(withEndpoints('b', [9022]));
  await env.cp.write([...withEndpoints('b', [9022]).filter((r) => r.clusterName !== 'a'), loadAssignment('a', [9012])]);
  const second = await s.next();
  t.deepEqual(deltaNamesOf(second), ['a']);
  t.deepEqual(second.removedResources, []);

  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, responseNonce: second.nonce, resourceNamesSubscribe: ['b'] });
  const third = await s.next();
  t.deepEqual(deltaNamesOf(third), ['b']);
  t.deepEqual(endpointPortsOf(deltaResourcesOf(third).get('b')!), [9022]);

  // Dropping and re-adding a name that did not change sends it again: the client forgot it.
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, responseNonce: third.nonce, resourceNamesUnsubscribe: ['a'] });
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a'] });
  const fourth = await s.next();
  t.deepEqual(deltaNamesOf(fourth), ['a']);
  t.deepEqual(endpointPortsOf(deltaResourcesOf(fourth).get('a')!), [9012]);
});

test('a deleted cluster is sent in removed_resources; a missing subscribed name is reported once', async (t) => {
  await using env = await setup();
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  t.deepEqual(deltaNamesOf(await s.next()), ['a', 'b']);
  const withoutB = base.filter((r) => r.name !== 'b');
  await env.cp.write(withoutB);
  const removal = await s.next();
  t.is(removal.typeUrl, TypeUrl.Cluster);
  t.deepEqual(removal.resources, []);
  t.deepEqual(removal.removedResources, ['b']);

  // A name that does not exist is answered as removed, so the client need not wait for a timeout...
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['nope'] });
  const missing = await s.next();
  t.deepEqual(missing.resources, []);
  t.deepEqual(missing.removedResources, ['nope']);
  // ...once: neither the next subscription nor the next push repeats it.
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a'] });
  const named = await s.next();
  t.deepEqual(deltaNamesOf(named), ['a']);
  t.deepEqual(named.removedResources, []);
  const moved = withoutB.map((r) => (r.clusterName === 'a' ? loadAssignment('a', [9011]) : r));
  await env.cp.write(moved);
  const push = await s.next();
  t.deepEqual(deltaNamesOf(push), ['a']);
  t.deepEqual(push.removedResources, []);

  // When it appears it is sent; when it goes it is removed.
  await env.cp.write([...moved, loadAssignment('nope', [9100])]);
  t.deepEqual(deltaNamesOf(await s.next()), ['nope']);
  await env.cp.write(moved);
  const gone = await s.next();
  t.is(gone.typeUrl, TypeUrl.ClusterLoadAssignment);
  t.deepEqual(gone.resources, []);
  t.deepEqual(gone.removedResources, ['nope']);
});

test('a reconnect with initial_resource_versions gets only what changed and what is gone', async (t) => {
  const resources = [...base, edsCluster('c')];
  await using env = await setup(resources);
  const s1 = env.client.delta();
  s1.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const cds = await s1.next();
  t.deepEqual(deltaNamesOf(cds), ['a', 'b', 'c']);
  s1.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a', 'b'] });
  const eds = await s1.next();
  t.deepEqual(deltaNamesOf(eds), ['a', 'b']);
  s1.close();
  await s1.ended;

  // While away: cluster a changes, c is deleted, b stays; endpoints of b change, a's stay.
  await env.cp.write([
    edsCluster('a', { connectTimeout: '2s' }),
    edsCluster('b'),
    loadAssignment('a', [9001]),
    loadAssignment('b', [9022]),
    ...base.slice(4),
  ]);

  const s2 = env.client.delta();
  s2.send({
    node: testNode('p1.default'),
    typeUrl: TypeUrl.Cluster,
    initialResourceVersions: { ...deltaVersionsOf(cds), ghost: 'v-from-another-replica' },
  });
  const cds2 = await s2.next();
  t.is(cds2.typeUrl, TypeUrl.Cluster);
  t.deepEqual(deltaNamesOf(cds2), ['a']);
  t.not(deltaVersionsOf(cds2).a, deltaVersionsOf(cds).a);
  t.deepEqual(cds2.removedResources, ['c', 'ghost']);

  s2.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNamesSubscribe: ['a', 'b'],
    initialResourceVersions: deltaVersionsOf(eds),
  });
  const eds2 = await s2.next();
  t.deepEqual(deltaNamesOf(eds2), ['b']);
  t.deepEqual(eds2.removedResources, []);
});

test('a change touching every type is pushed CDS → EDS → LDS → RDS, each with only what changed', async (t) => {
  await using env = await setup();
  const s = env.client.delta();
  // Subscribe in the "wrong" order on purpose.
  const subscriptions = [
    { typeUrl: TypeUrl.RouteConfiguration, resourceNamesSubscribe: ['r1'] },
    { typeUrl: TypeUrl.Listener },
    { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a', 'b'] },
    { typeUrl: TypeUrl.Cluster },
  ];
  s.send({ node: testNode('p1.default'), ...subscriptions[0]! });
  for (const sub of subscriptions.slice(1)) s.send(sub);
  for (let i = 0; i < 4; i++) {
    const res = await s.next();
    s.send({ typeUrl: res.typeUrl, responseNonce: res.nonce });
  }
  await env.cp.write([
    edsCluster('a', { connectTimeout: '3s' }),
    edsCluster('b'),
    loadAssignment('a', [9101]),
    loadAssignment('b', [9002]),
    apiListener('echo:8080', 'r1'),
    apiListener('other:80', 'r1'),
    routeConfig('r1', ['echo:8080', 'echo'], { a: 1, b: 1 }),
  ]);
  const pushed: [string, string[]][] = [];
  for (let i = 0; i < 4; i++) {
    const res = await s.next();
    pushed.push([res.typeUrl, deltaNamesOf(res)]);
  }
  t.deepEqual(pushed, [
    [TypeUrl.Cluster, ['a']],
    [TypeUrl.ClusterLoadAssignment, ['a']],
    [TypeUrl.Listener, ['other:80']],
    [TypeUrl.RouteConfiguration, ['r1']],
  ]);
});

test('a change to one endpoint sends exactly one resource to a delta stream', async (t) => {
  await using env = await setup();
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a', 'b'] });
  s.send({ typeUrl: TypeUrl.Listener });
  s.send({ typeUrl: TypeUrl.RouteConfiguration, resourceNamesSubscribe: ['r1'] });
  for (let i = 0; i < 4; i++) {
    const res = await s.next();
    s.send({ typeUrl: res.typeUrl, responseNonce: res.nonce });
  }
  await env.cp.write(withEndpoints('b', [9002, 9003]));
  const res = await s.next();
  t.is(res.typeUrl, TypeUrl.ClusterLoadAssignment);
  t.is(res.resources.length, 1);
  t.deepEqual(deltaNamesOf(res), ['b']);
  t.deepEqual(res.removedResources, []);
  // Nothing else was sent: the next message is the answer to a new subscription.
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, responseNonce: res.nonce, resourceNamesSubscribe: ['nope'] });
  const next = await s.next();
  t.is(next.typeUrl, TypeUrl.ClusterLoadAssignment);
  t.deepEqual(next.removedResources, ['nope']);
});
