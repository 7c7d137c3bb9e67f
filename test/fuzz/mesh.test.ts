// The fixed-seed slice of the mesh fuzzing (mesh-fuzz.ts): generated VirtualServices, DestinationRules and
// PeerAuthentications over a generated mesh, through validator → model → translation, checked by Envoy's
// own checker and grpc-js-xds's own decoders; rejected objects change no proxy's bytes. `npm run fuzz` runs
// the same properties for as long as asked. Counterexamples the fuzzer found are kept below as cases.
import test from 'ava';
import { create } from '@bufbuild/protobuf';
import { ListenerSchema } from '../../control-plane/envoy/gen/envoy/config/listener/v3/listener_pb.js';
import { envoyValidateAvailable } from '../helpers/envoy-validate.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import { meshGenerator } from '../../control-plane/translate/generator.js';
import { virtualService, workload } from '../model/_objects.js';
import { PROXIES } from './arbitraries.js';
import { grpcXdsRejections } from './grpc-xds-decode.js';
import { runMeshFuzz } from './mesh-fuzz.js';
import { configDifference, snapshotOf } from './mesh-property.js';

const SEED = 20261206;
const RUNS = 100;

const withEnvoy = envoyValidateAvailable() || process.env.CI === 'true' ? test : test.skip;
if (!envoyValidateAvailable() && process.env.CI !== 'true') {
  console.log('test/fuzz/mesh.test.ts: envoy-validate is not built; `npm run peers` enables the mesh fuzz slice');
}

withEnvoy(
  `${RUNS} generated cases (seed ${SEED}): nothing throws, Envoy and grpc-js-xds accept, rejected objects change nothing`,
  async (t) => {
    t.timeout(120_000);
    const { stats, failure } = await runMeshFuzz({ runs: RUNS, seed: SEED, batch: RUNS });
    if (failure) {
      t.fail(`seed ${failure.seed}: ${failure.counterexample}\n${failure.failures.join('\n')}`);
      return;
    }
    t.is(stats.runs, RUNS);
    // The generator is worth its runs only when it makes both kinds of objects.
    t.true(stats.acceptedObjects > RUNS / 4, `only ${stats.acceptedObjects} objects accepted`);
    t.true(stats.rejectedObjects > RUNS / 4, `only ${stats.rejectedObjects} objects rejected`);
    t.true(stats.invalidEdits > RUNS / 10, `only ${stats.invalidEdits} edits made an accepted object invalid`);
    t.true(stats.envoyChecked > 0);
  },
);

test('the gRPC check is the client refusing: a Listener without api_listener or filter chains is a NACK', (t) => {
  const errors = grpcXdsRejections([create(ListenerSchema, { name: 'echo.default.svc.cluster.local:8080' })]);
  t.is(errors.length, 1);
  t.regex(errors[0]!, /No api_listener and no filter_chains/);
});

test('the byte-identity check compares bytes: a VirtualService that routes is a difference, a rejected one none', (t) => {
  const mesh = workload('default', 'reviews', { name: 'http', port: 9080 }, [
    { version: 'v1', address: '10.0.0.1', port: 9080 },
  ]);
  const generator = meshGenerator(defaultMeshConfig);
  const sidecar = PROXIES[0]!;
  const base = generator.generate(sidecar, snapshotOf(mesh));
  const routed = virtualService('default', 'reviews', {
    hosts: ['reviews'],
    http: [{ route: [{ destination: { host: 'reviews' } }], timeout: '3s' }],
  });
  const invalid = virtualService('default', 'bad', {
    hosts: ['reviews'],
    http: [{ route: [{ destination: { host: 'reviews' } }], timeout: '3d' }],
  });
  t.regex(
    configDifference(generator.generate(sidecar, snapshotOf([...mesh, routed])), base) ?? '',
    /RouteConfiguration\[0\] differs/,
  );
  t.is(configDifference(generator.generate(sidecar, snapshotOf([...mesh, invalid])), base), undefined);
});
