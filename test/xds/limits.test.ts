// Per-stream limits (issue 16): a misbehaving client's stream ends with RESOURCE_EXHAUSTED naming the limit
// and is counted, while a well-behaved client beside it keeps getting pushes.
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import type { Clock } from '../../control-plane/xds/clock.js';
import type { StreamLimits } from '../../control-plane/xds/limits.js';
import { endpointPortsOf, resourcesOf, testNode, type SotwStream } from '../helpers/ads-client.js';
import { edsCluster, loadAssignment } from '../helpers/control-plane.js';
import { counterTotal, resourcesByType, startXdsEngine, type XdsEngine } from '../helpers/xds-engine.js';

/** A clock that does not move: a token bucket never refills, so only its burst is available. */
const frozen: Clock = { now: () => 0 };

async function config(port: number) {
  return resourcesByType([
    edsCluster('a'),
    edsCluster('b'),
    edsCluster('c'),
    edsCluster('d'),
    loadAssignment('a', [port]),
    loadAssignment('b', [9002]),
    loadAssignment('c', [9003]),
    loadAssignment('d', [9004]),
  ]);
}

/** A well-behaved proxy: EDS for `a`, the first response ACKed. */
async function wellBehaved(engine: XdsEngine): Promise<SotwStream> {
  const s = engine.client().sotw();
  s.send({ node: testNode('good.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'] });
  const res = await s.next();
  s.send({ typeUrl: res.typeUrl, resourceNames: ['a'], versionInfo: res.versionInfo, responseNonce: res.nonce });
  return s;
}

/** After the misbehaving stream ended, a change still reaches the well-behaved one. */
async function stillServed(t: ExecutionContext, engine: XdsEngine, good: SotwStream): Promise<void> {
  await engine.change(await config(9101));
  const res = await good.next();
  t.deepEqual(endpointPortsOf(resourcesOf(res).get('a')!), [9101], 'the well-behaved stream got the push');
}

async function engineWith(limits: Partial<StreamLimits>): Promise<XdsEngine> {
  return startXdsEngine(await config(9001), { ads: { limits, clock: frozen } });
}

test('requests per second: a client over its token bucket is ended with RESOURCE_EXHAUSTED', async (t) => {
  await using engine = await engineWith({ requestsPerSecond: 1, requestBurst: 10 });
  const good = await wellBehaved(engine);
  const bad = engine.client().sotw();
  bad.send({ node: testNode('bad.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['b'] });
  // Re-requests without end (each a new subscription, as a buggy client might send).
  for (let i = 0; i < 20; i++) {
    bad.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: i % 2 ? ['b'] : ['c'] });
  }
  const end = await bad.ended;
  t.is(end.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(end.details, /request rate limit exceeded.*--xds-max-requests-per-second/);
  t.is(await counterTotal(engine.metrics.limitExceeded), 1);
  await stillServed(t, engine, good);
});

test('subscription size: too many resource names for a type ends the stream (SotW and delta)', async (t) => {
  await using engine = await engineWith({ maxSubscriptionNames: 3 });
  const good = await wellBehaved(engine);

  const sotw = engine.client().sotw();
  sotw.send({
    node: testNode('bad1.default'),
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['a', 'b', 'c', 'd'],
  });
  const sotwEnd = await sotw.ended;
  t.is(sotwEnd.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(sotwEnd.details, /subscription limit exceeded: 4 resource names .* at most 3 .*--xds-max-subscription-names/);

  const delta = engine.client().delta();
  delta.send({
    node: testNode('bad2.default'),
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNamesSubscribe: ['a', 'b'],
  });
  await delta.next();
  delta.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['c', 'd'] });
  const deltaEnd = await delta.ended;
  t.is(deltaEnd.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(deltaEnd.details, /subscription limit exceeded/);

  t.is(await counterTotal(engine.metrics.limitExceeded), 2);
  await stillServed(t, engine, good);
});

test('message size: a request over the cap ends the stream; far over it, gRPC refuses it unread', async (t) => {
  await using engine = await engineWith({ maxRequestBytes: 2048 });
  const good = await wellBehaved(engine);

  const over = engine.client().sotw();
  over.send({
    node: testNode('bad1.default'),
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['x'.repeat(3000)],
  });
  const overEnd = await over.ended;
  t.is(overEnd.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(
    overEnd.details,
    /message size limit exceeded: a request of \d+ bytes, at most 2048 .*--xds-max-request-bytes/,
  );
  t.is(await counterTotal(engine.metrics.limitExceeded), 1);

  const farOver = engine.client().sotw();
  farOver.send({
    node: testNode('bad2.default'),
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['x'.repeat(10_000)],
  });
  t.is((await farOver.ended).code, grpc.status.RESOURCE_EXHAUSTED);

  await stillServed(t, engine, good);
});
