// What `trellis iptables` (the init container of every injected pod) and `trellis inject` load: their own
// modules, not the Kubernetes client, gRPC, the Envoy protos, the CA library or the CRD validator.
import test from 'ava';
import YAML from 'yaml';
import { loadedModules, matching } from '../helpers/loaded-modules.js';
import { simplePod } from './pods.js';

const HEAVY = [
  /^node_modules\/@kubernetes\/client-node\//,
  /^node_modules\/@grpc\//,
  /^control-plane\/envoy\//,
  /^node_modules\/(@peculiar\/|reflect-metadata\/)/,
  /^crds\/validator\.ts$/,
  /^control-plane\/(control-plane|translate\/generator)\.ts$/,
];

test('trellis iptables loads the rules and nothing heavy', async (t) => {
  const run = await loadedModules(['control-plane/main.ts', 'iptables']);
  t.is(run.exitCode, 0, run.stderr);
  t.true(run.modules.includes('injector/iptables.ts'));
  t.false(run.modules.includes('injector/inject.ts'));
  t.deepEqual(matching(run.modules, HEAVY), []);
});

test('trellis inject loads the injector and nothing heavy', async (t) => {
  const run = await loadedModules(['control-plane/main.ts', 'inject', '-f', '-'], {
    input: YAML.stringify(simplePod()),
  });
  t.is(run.exitCode, 0, run.stderr);
  t.true(run.modules.includes('injector/inject.ts'));
  t.deepEqual(matching(run.modules, HEAVY), []);
});
