// State-of-the-world ADS, through real gRPC with a raw client that controls every request field.
import test from 'ava';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { namesOf, resourcesOf, testNode } from '../helpers/ads-client.js';
import { apiListener, edsCluster, loadAssignment, routeConfig } from '../helpers/control-plane.js';
import { adsEnv, twoClusterConfig } from '../helpers/ads-env.js';

const base = twoClusterConfig;

const setup = adsEnv;

test('initial response carries the full wildcard set, a version and a fresh nonce', async (t) => {
  await using env = await setup();
  const s = env.client.sotw();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const res = await s.next();
  t.is(res.typeUrl, TypeUrl.Cluster);
  t.deepEqual(namesOf(res), ['a', 'b']);
  t.not(res.versionInfo, '');
  t.not(res.nonce, '');
  t.is(res.controlPlane?.identifier, 'trellis');
  // Another stream gets another nonce for the same content and the same version.
  const s2 = env.client.sotw();
  s2.send({ node: testNode('p2.default'), typeUrl: TypeUrl.Cluster, resourceNames: ['*'] });
  const res2 = await s2.next();
  t.is(res2.versionInfo, res.versionInfo);
  t.not(res2.nonce, res.nonce);
});

test('ACK is recorded per proxy and type; NACK is recorded, keeps the ACKed version and is not resent', async (t) => {
  await using env = await setup();
  const s = env.client.sotw();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const first = await s.next();
  s.send({ typeUrl: TypeUrl.Cluster, versionInfo: first.versionInfo, responseNonce: first.nonce });

  // A change: the proxy rejects it.
  await env.cp.write([...base, edsCluster('c')]);
  const second = await s.next();
  t.deepEqual(namesOf(second), ['a', 'b', 'c']);
  s.send({
    typeUrl: TypeUrl.Cluster,
    versionInfo: first.versionInfo,
    responseNonce: second.nonce,
    errorDetail: { code: 3, message: 'cluster c: rejected by test' },
  });
  // The next message on the stream is the answer to a new LDS subscription: CDS was not sent again.
  s.send({ typeUrl: TypeUrl.Listener });
  const lds = await s.next();
  t.is(lds.typeUrl, TypeUrl.Listener);

  const proxies = (await (await env.cp.monitoring('/debug/proxies')).json()) as Array<{
    node: { id: string };
    types: Array<{
      type: string;
      ackedVersion: string;
      sentVersion: string;
      lastNack?: { message: string; nonce: string };
    }>;
  }>;
  const cds = proxies[0]!.types.find((x) => x.type === 'CDS')!;
  t.is(proxies[0]!.node.id, 'p1.default');
  t.is(cds.ackedVersion, first.versionInfo);
  t.is(cds.sentVersion, second.versionInfo);
  t.is(cds.lastNack?.message, 'cluster c: rejected by test');
  t.is(cds.lastNack?.nonce, second.nonce);

  // A further change is pushed again.
  await env.cp.write([...base, edsCluster('d')]);
  const third = await s.next();
  t.is(third.typeUrl, TypeUrl.Cluster);
  t.deepEqual(namesOf(third), ['a', 'b', 'd']);

  const metrics = await (await env.cp.monitoring('/metrics')).text();
  t.regex(metrics, /trellis_xds_nacks_total\{type="CDS"\} 1/);
  t.regex(metrics, /trellis_xds_acks_total\{type="CDS"\} 1/);
});

test('a request with a stale nonce is ignored', async (t) => {
  await using env = await setup();
  const s = env.client.sotw();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'] });
  const first = await s.next();
  t.deepEqual(namesOf(first), ['a']);
  await env.cp.write([...base.slice(0, 2), loadAssignment('a', [9011]), ...base.slice(3)]);
  const second = await s.next();
  t.not(second.nonce, first.nonce);
  // Answers the first (now stale) response and asks for b: ignored, so b is not sent.
  s.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['a', 'b'],
    responseNonce: first.nonce,
    versionInfo: first.versionInfo,
  });
  s.send({ typeUrl: TypeUrl.Listener });
  t.is((await s.next()).typeUrl, TypeUrl.Listener);
  // With the latest nonce the same request is honoured.
  s.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['a', 'b'],
    responseNonce: second.nonce,
    versionInfo: second.versionInfo,
  });
  const third = await s.next();
  t.deepEqual(namesOf(third), ['b']);
  t.regex(await (await env.cp.monitoring('/metrics')).text(), /trellis_xds_stale_requests_total\{type="EDS"\} 1/);
});

test('wildcard and named subscriptions for LDS and CDS', async (t) => {
  await using env = await setup();
  const named = env.client.sotw();
  named.send({ node: testNode('named.default'), typeUrl: TypeUrl.Cluster, resourceNames: ['b', 'missing'] });
  t.deepEqual(namesOf(await named.next()), ['b']);
  named.send({ typeUrl: TypeUrl.Listener, resourceNames: ['echo:8080'] });
  t.deepEqual(namesOf(await named.next()), ['echo:8080']);

  const wildcard = env.client.sotw();
  wildcard.send({ node: testNode('wild.default'), typeUrl: TypeUrl.Cluster, resourceNames: ['*'] });
  t.deepEqual(namesOf(await wildcard.next()), ['a', 'b']);

  // A named CDS subscriber is not pushed a change to a cluster it did not name... but it gets the full
  // named set again when one of its names changes.
  await env.cp.write([...base, edsCluster('c')]);
  t.deepEqual(namesOf(await wildcard.next()), ['a', 'b', 'c']);
  await env.cp.write([edsCluster('a'), edsCluster('b', { connectTimeout: '2s' }), ...base.slice(2)]);
  t.deepEqual(namesOf(await wildcard.next()), ['a', 'b']);
  t.deepEqual(namesOf(await named.next()), ['b']);
});

test('RDS/EDS: only what changed is sent; unsubscribed names are not pushed; resubscribing sends again', async (t) => {
  await using env = await setup();
  const s = env.client.sotw();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a', 'b'] });
  const first = await s.next();
  t.deepEqual(namesOf(first), ['a', 'b']);
  s.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['a', 'b'],
    responseNonce: first.nonce,
    versionInfo: first.versionInfo,
  });

  await env.cp.write([...base.slice(0, 3), loadAssignment('b', [9022]), ...base.slice(4)]);
  const second = await s.next();
  t.deepEqual(namesOf(second), ['b']);

  // Unsubscribe b (names = [a]); a change to b is then not pushed, a change to a is.
  s.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['a'],
    responseNonce: second.nonce,
    versionInfo: second.versionInfo,
  });
  await env.cp.write([...base.slice(0, 3), loadAssignment('b', [9023]), ...base.slice(4)]);
  await env.cp.write([...base.slice(0, 2), loadAssignment('a', [9012]), loadAssignment('b', [9023]), ...base.slice(4)]);
  const third = await s.next();
  t.deepEqual(namesOf(third), ['a']);
  s.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['a', 'b'],
    responseNonce: third.nonce,
    versionInfo: third.versionInfo,
  });
  const fourth = await s.next();
  t.deepEqual(namesOf(fourth), ['b']);
});

test('a removed cluster is absent from the next full set', async (t) => {
  await using env = await setup();
  const s = env.client.sotw();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  t.deepEqual(namesOf(await s.next()), ['a', 'b']);
  await env.cp.write(base.filter((r) => r.name !== 'b'));
  t.deepEqual(namesOf(await s.next()), ['a']);
});

test('every EDS cluster gets an answer, an empty assignment when it has no endpoints', async (t) => {
  await using env = await setup([...base, edsCluster('lonely')]);
  const s = env.client.sotw();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['lonely'] });
  const res = resourcesOf(await s.next());
  const cla = res.get('lonely') as unknown as { endpoints: unknown[] };
  t.deepEqual(cla.endpoints, []);
});

test('a change touching every type is pushed CDS → EDS → LDS → RDS', async (t) => {
  await using env = await setup();
  const s = env.client.sotw();
  // Subscribe in the "wrong" order on purpose.
  const subscriptions = [
    { typeUrl: TypeUrl.RouteConfiguration, resourceNames: ['r1'] },
    { typeUrl: TypeUrl.Listener, resourceNames: [] },
    { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a', 'b'] },
    { typeUrl: TypeUrl.Cluster, resourceNames: [] },
  ];
  s.send({ node: testNode('p1.default'), ...subscriptions[0]! });
  for (const sub of subscriptions.slice(1)) s.send(sub);
  const acks = new Map<string, { nonce: string; version: string }>();
  for (let i = 0; i < 4; i++) {
    const res = await s.next();
    acks.set(res.typeUrl, { nonce: res.nonce, version: res.versionInfo });
  }
  for (const sub of subscriptions) {
    const ack = acks.get(sub.typeUrl)!;
    s.send({ ...sub, responseNonce: ack.nonce, versionInfo: ack.version });
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
  const order: string[] = [];
  for (let i = 0; i < 4; i++) order.push((await s.next()).typeUrl);
  t.deepEqual(order, [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]);
});

test('a response over the message-size cap is not sent, and is counted', async (t) => {
  const many = Array.from({ length: 20 }, (_, i) => edsCluster(`cluster-${i}`));
  await using env = await setup([...base, ...many], { maxMessageBytes: 500 });
  const s = env.client.sotw();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'] });
  // The cluster set is larger than 500 bytes; the single small assignment is not.
  const res = await s.next();
  t.is(res.typeUrl, TypeUrl.ClusterLoadAssignment);
  t.regex(await (await env.cp.monitoring('/metrics')).text(), /trellis_xds_oversized_responses_total\{type="CDS"\} 1/);
});

test('a first request without a node ends the stream with INVALID_ARGUMENT', async (t) => {
  await using env = await setup();
  const s = env.client.sotw();
  s.send({ typeUrl: TypeUrl.Cluster });
  const end = await s.ended;
  t.is(end.code, 3);
  t.regex(end.details, /node/);
});
