// Weights of a split as sent to Envoy and gRPC (control-plane/translate/route-weights.ts): Istio's relative
// weights unchanged; a sum past 2^32-1 (Envoy's weighted_cluster_specifier.cc and grpc-js refuse it) scaled
// down in proportion, every weight still at least 1.
import test from 'ava';
import { splitWeights, UINT32_MAX } from '../../control-plane/translate/route-weights.js';

const sum = (w: readonly number[]) => w.reduce((a, b) => a + b, 0);

test('weights whose sum fits in a uint32 are sent as written (Istio)', (t) => {
  t.deepEqual(splitWeights([1, 3]), [1, 3]);
  t.deepEqual(splitWeights([90, 10]), [90, 10]);
  t.deepEqual(splitWeights([2_147_483_647, 2_147_483_648]), [2_147_483_647, 2_147_483_648]);
});

test('a sum past 2^32-1 is scaled down in proportion, within uint32, no weight dropped to 0', (t) => {
  const max = 2_147_483_647;
  for (const weights of [
    [max, max, 1000],
    Array.from({ length: 32 }, () => max),
    [max, max, max, 1],
    Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : max)),
  ]) {
    const out = splitWeights(weights);
    t.true(sum(weights) > UINT32_MAX);
    t.true(sum(out) <= UINT32_MAX, `${sum(out)}`);
    t.true(out.every((w) => Number.isInteger(w) && w >= 1));
    // Proportions kept to within one part in a million for the large weights.
    weights.forEach((w, i) => {
      if (w > 1_000_000) t.true(Math.abs(out[i]! / sum(out) - w / sum(weights)) < 1e-6);
    });
  }
});
