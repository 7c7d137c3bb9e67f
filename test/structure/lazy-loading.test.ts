// What each entry point loads (issues 14, 16, 17): a command loads its own implementation only when it runs,
// and the agent loads only what it runs. Checked on real child processes through a resolve hook that records
// every module imported (helpers/loaded-modules.ts); timings are the benchmarks' business (cli-startup, agent).
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadedModules, matching } from '../helpers/loaded-modules.js';

const KUBERNETES_CLIENT = /^node_modules\/@kubernetes\/client-node\//;
const ENVOY_PROTOS = /^control-plane\/envoy\/(protos\.ts|gen\/(envoy|xds|udpa|validate|google)\/)/;
const GRPC = /^node_modules\/@grpc\//;
const CERTIFICATE_LIBRARY = /^node_modules\/(@peculiar\/|reflect-metadata\/)|^certs\/(index|x509)\.ts$/;
/** @peculiar/x509 itself, which the CA loads only to make a root (certs/root.ts). */
const X509_LIBRARY = /^node_modules\/(@peculiar\/|reflect-metadata\/)|^certs\/x509\.ts$/;
const EXAMPLES = /^examples\//;

const TINY_VIRTUAL_SERVICE = `apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }] }]
`;

test('trellis validate of a file loads neither the Kubernetes client nor the Envoy protos nor gRPC', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-lazy-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'tiny.yaml');
  await fs.writeFile(file, TINY_VIRTUAL_SERVICE);
  const run = await loadedModules(['control-plane/main.ts', 'validate', '-f', file]);
  t.is(run.exitCode, 0, run.stderr);
  t.true(run.modules.includes('crds/validator.ts'), 'the validator ran');
  t.deepEqual(matching(run.modules, [KUBERNETES_CLIENT, ENVOY_PROTOS, GRPC, CERTIFICATE_LIBRARY, EXAMPLES]), []);
});

test('trellis --help builds the program without loading any command implementation', async (t) => {
  const run = await loadedModules(['control-plane/main.ts', '--help']);
  t.is(run.exitCode, 0, run.stderr);
  t.regex(run.stdout, /control-plane/);
  t.regex(run.stdout, /validate/);
  t.deepEqual(
    matching(run.modules, [
      KUBERNETES_CLIENT,
      ENVOY_PROTOS,
      GRPC,
      CERTIFICATE_LIBRARY,
      EXAMPLES,
      /^crds\/validator\.ts$/,
      /^control-plane\/control-plane\.ts$/,
      /^sidecar\/agent\.ts$/,
    ]),
    [],
  );
});

test('trellis agent goes to the agent entry before the rest of the program is built', async (t) => {
  const run = await loadedModules(['control-plane/main.ts', 'agent', '--help']);
  t.is(run.exitCode, 0, run.stderr);
  t.regex(run.stdout, /--proxy-type/);
  t.true(run.modules.includes('sidecar/main.ts'));
  // crds/duration.ts (a leaf with no imports) parses --ttl.
  t.deepEqual(matching(run.modules, [/^control-plane\/cli\.ts$/, /^crds\/(?!duration\.ts$)/, GRPC, ENVOY_PROTOS]), []);
});

test('the agent loads no CA library, no Kubernetes client, no translator and, for gRPC, no Envoy protos', async (t) => {
  // Envoy mode imports SDS and the Envoy bootstrap (and their protos) when it starts; gRPC mode never does.
  const run = await loadedModules(['--input-type=module', '-e', "await import('./sidecar/agent.ts');"]);
  t.is(run.exitCode, 0, run.stderr);
  t.true(run.modules.includes('sidecar/xds-proxy.ts'));
  t.deepEqual(
    matching(run.modules, [
      KUBERNETES_CLIENT,
      ENVOY_PROTOS,
      CERTIFICATE_LIBRARY,
      /^control-plane\/(translate|model|ca|sources|xds\/(?!server-shutdown))/,
      /^crds\/(?!duration\.ts$)/,
      /^sidecar\/(sds-server|secret-generator|file-secrets|bootstrap-envoy)\.ts$/,
    ]),
    [],
  );
});

// The xDS server reads the SVID of a TLS peer with certs/peer-identity.ts (light: certs/spiffe and the provider).
const CA = /^control-plane\/ca\/|^certs\/(index|authority|x509|root|leaf)\.ts$/;
const TRANSLATOR = /^control-plane\/(translate|model)\//;

test('the control plane in static mode loads no Kubernetes client, no CA, no translator and no webhooks', async (t) => {
  const run = await loadedModules(
    [
      'control-plane/main.ts',
      'control-plane',
      '--static-resources',
      'examples/demo/static-resources.yaml',
      '--xds-port',
      '0',
      '--monitoring-port',
      '0',
    ],
    { stopWhenOutput: '"control plane listening"' },
  );
  t.true(run.sawStopOutput, run.stderr);
  t.true(run.modules.includes('control-plane/static-resources.ts'));
  t.deepEqual(
    matching(run.modules, [
      KUBERNETES_CLIENT,
      CA,
      CERTIFICATE_LIBRARY,
      TRANSLATOR,
      /^control-plane\/(sources|webhook|kube)\//,
      /^injector\/webhook\.ts$/,
    ]),
    [],
  );
});

test('the control plane in local mode loads no Kubernetes client and, without --state-dir, no CA', async (t) => {
  const run = await loadedModules(
    [
      'control-plane/main.ts',
      'control-plane',
      '--config-dir',
      'examples/mesh',
      '--xds-port',
      '0',
      '--monitoring-port',
      '0',
    ],
    { stopWhenOutput: '"control plane listening"' },
  );
  t.true(run.sawStopOutput, run.stderr);
  t.true(run.modules.includes('control-plane/translate/generator.ts'));
  t.deepEqual(matching(run.modules, [KUBERNETES_CLIENT, CA, CERTIFICATE_LIBRARY, /^control-plane\/webhook\//]), []);
});

test('the control plane in local mode with the CA loads no Kubernetes client, and the X.509 library only to make its root', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-lazy-ca-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const tokens = path.join(dir, 'tokens.yaml');
  await fs.writeFile(tokens, '- token: lazy-loading-test-token-0123\n  namespace: default\n  serviceAccount: app\n');
  const start = () =>
    loadedModules(
      [
        'control-plane/main.ts',
        'control-plane',
        '--config-dir',
        'examples/mesh',
        '--state-dir',
        path.join(dir, 'state'),
        '--tokens-file',
        tokens,
        '--xds-port',
        '0',
        '--monitoring-port',
        '0',
      ],
      { stopWhenOutput: '"control plane listening"' },
    );
  // First start: no root in the state directory, so one is made (with @peculiar/x509).
  const first = await start();
  t.true(first.sawStopOutput, first.stderr);
  t.true(first.modules.includes('control-plane/ca/setup.ts'));
  t.deepEqual(matching(first.modules, [KUBERNETES_CLIENT]), []);
  t.true(first.modules.some((m) => m.startsWith('node_modules/@peculiar/x509/')));
  await fs.access(path.join(dir, 'state', 'root-cert.pem'));
  // Every later start reads the root it made: parsed and checked without the library.
  const second = await start();
  t.true(second.sawStopOutput, second.stderr);
  t.true(second.modules.includes('control-plane/ca/setup.ts'));
  t.true(second.modules.includes('certs/certificate.ts'));
  t.deepEqual(matching(second.modules, [KUBERNETES_CLIENT, X509_LIBRARY]), []);
});
