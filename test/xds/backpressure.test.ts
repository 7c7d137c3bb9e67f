// Backpressure: a client that stops reading holds at most the stream's cap of unflushed bytes plus one
// response, its pushes are coalesced to the latest config, and a stream beside it gets every push.
import test from 'ava';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { toBinary } from '@bufbuild/protobuf';
import { DeltaDiscoveryResponseSchema } from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { deltaResourcesOf, endpointPortsOf, testNode } from '../helpers/ads-client.js';
import { adsEnv } from '../helpers/ads-env.js';
import { assertServedResourcesValid, edsCluster, loadAssignment, type JsonResource } from '../helpers/control-plane.js';
import { StalledDeltaStream } from '../helpers/stalled-ads-client.js';
import { waitFor } from '../helpers/wait.js';

/** Round `round`'s config: one assignment of 4,000 endpoints (~80 KB encoded), the first on port 20000+round. */
function config(round: number): JsonResource[] {
  const ports = [20_000 + round, ...Array.from({ length: 3_999 }, (_, i) => 30_000 + i)];
  return [edsCluster('big'), loadAssignment('big', ports)];
}

const MAX_QUEUED = 256 * 1024;
const ROUNDS = 12;

test('a client that stops reading: bounded queue, pushes coalesced to the latest; the other stream gets every push', async (t) => {
  await assertServedResourcesValid(config(0)); // every round has the same shape
  await using env = await adsEnv(config(0), { envoyValidation: false, maxQueuedBytes: MAX_QUEUED });
  const subscribe = { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['big'] };

  const stalled = new StalledDeltaStream(env.cp.target, [{ node: testNode('stalled.default'), ...subscribe }]);
  t.teardown(() => stalled.close());
  const good = env.client.delta();
  good.send({ node: testNode('good.default'), ...subscribe });
  const first = await good.next();
  good.send({ typeUrl: first.typeUrl, responseNonce: first.nonce });
  const responseBytes = toBinary(DeltaDiscoveryResponseSchema, first).byteLength;
  t.true(responseBytes * ROUNDS > 2 * (MAX_QUEUED + responseBytes), 'the rounds would overflow an unbounded queue');

  const stalledStatus = () => env.cp.ads.status().find((s) => s.node?.id === 'stalled.default');
  await waitFor('the stalled stream to hold unflushed bytes', () => (stalledStatus()?.queuedBytes ?? 0) > 0);

  let maxQueued = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    await env.cp.write(config(round));
    const res = await good.next();
    t.is(
      endpointPortsOf(deltaResourcesOf(res).get('big')!)[0],
      20_000 + round,
      `round ${round} reached the good stream`,
    );
    good.send({ typeUrl: res.typeUrl, responseNonce: res.nonce });
    maxQueued = Math.max(maxQueued, stalledStatus()!.queuedBytes);
  }

  t.true(maxQueued < MAX_QUEUED + responseBytes, `queued ${maxQueued} bytes, cap ${MAX_QUEUED} + one response`);
  t.deepEqual(stalledStatus()!.deferredTypes, ['EDS'], 'the stalled stream waits to send the latest EDS');
  const coalesced = (await env.cp.metrics.coalescedResponses.get()).values.reduce((sum, v) => sum + v.value, 0);
  t.true(coalesced > 0, 'pushes to the stalled stream were coalesced');

  // Reading again, the stalled client gets the latest config, and the server's queue empties.
  stalled.resume();
  await stalled.waitFor((r) => {
    const big = deltaResourcesOf(r).get('big');
    return big !== undefined && endpointPortsOf(big)[0] === 20_000 + ROUNDS;
  });
  await waitFor('the stalled stream to drain', () => {
    const s = stalledStatus();
    return s !== undefined && s.queuedBytes === 0 && s.deferredTypes.length === 0;
  });
  t.pass();
});
