// The fixed-seed slice of the byte fuzzing (bytes-fuzz.ts): mutated valid ADS requests into the SotW and
// delta decoders, mutated valid CSRs (some signed again after the mutation) into checkCsr. `npm run fuzz`
// runs the same properties for as long as asked.
import test from 'ava';
import fc from 'fast-check';
import { fromBinary } from '@bufbuild/protobuf';
import { checkCsr } from '../../certs/csr.js';
import { toPem } from '../../certs/pem.js';
import { DiscoveryRequestSchema } from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import {
  csrBases,
  csrCaseArb,
  csrProblem,
  DELTA_REQUESTS,
  deltaDecoderProblem,
  mutate,
  mutationsArb,
  SOTW_REQUESTS,
  sotwDecoderProblem,
} from './bytes-fuzz.js';

const SEED = 20261206;

test('mutated SotW requests: decodeSotwRequest gives what fromBinary gives, message or Error', (t) => {
  let decoded = 0;
  fc.assert(
    fc.property(fc.nat(SOTW_REQUESTS.length - 1), mutationsArb, (i, mutations) => {
      const bytes = mutate(SOTW_REQUESTS[i]!, mutations);
      const problem = sotwDecoderProblem(bytes);
      if (problem !== undefined) throw new Error(problem);
      try {
        fromBinary(DiscoveryRequestSchema, bytes);
        decoded++;
      } catch {
        // refused: counted below as the rest
      }
    }),
    { seed: SEED, numRuns: 3000 },
  );
  // Both outcomes occur, or the mutations are too weak (or too strong) to test anything.
  t.true(decoded > 100 && decoded < 2900, `${decoded} of 3000 decoded`);
});

test('mutated delta requests: the deserializer returns or throws an Error', (t) => {
  fc.assert(
    fc.property(fc.nat(DELTA_REQUESTS.length - 1), mutationsArb, (i, mutations) => {
      const problem = deltaDecoderProblem(mutate(DELTA_REQUESTS[i]!, mutations));
      if (problem !== undefined) throw new Error(problem);
    }),
    { seed: SEED, numRuns: 3000 },
  );
  t.pass();
});

test('mutated CSRs: checkCsr resolves or refuses with CsrRefusal, never throws anything else', async (t) => {
  const bases = await csrBases();
  // The unmutated bases pass (also signed again), so a refusal below is the mutation's doing.
  for (const base of bases) await t.notThrowsAsync(checkCsr(toPem(base.der, 'CERTIFICATE REQUEST')));
  await fc.assert(
    fc.asyncProperty(csrCaseArb, async (c) => {
      const problem = await csrProblem(bases, c);
      if (problem !== undefined) throw new Error(problem);
    }),
    { seed: SEED, numRuns: 400 },
  );
});

test('mutate: positions wrap, so every mutation applies to any length', (t) => {
  const base = Uint8Array.from([1, 2, 3]);
  t.deepEqual([...mutate(base, [{ op: 'set', at: 4, byte: 9 }])], [1, 9, 3]);
  t.deepEqual([...mutate(base, [{ op: 'insert', at: 3, bytes: Uint8Array.from([7]) }])], [1, 2, 3, 7]);
  t.deepEqual([...mutate(base, [{ op: 'delete', at: 1, length: 5 }])], [1]);
  t.deepEqual([...mutate(base, [{ op: 'repeat', at: 2, length: 1, times: 3 }])], [1, 2, 3, 3, 3, 3]);
  t.deepEqual([...mutate(new Uint8Array(0), [{ op: 'flip', at: 5, bit: 1 }])], []);
});
