// The proxyless gRPC bootstrap: a golden file; grpc-js-xds's own parser; its file_watcher providers
// (created by a real XdsClient from this bootstrap) reading the files cert-files.ts writes, across a
// rotation; and a real grpc-js-xds channel and XdsServer announcing the node to a real control plane,
// which reads it as design.md §3 says and sees the server listener name of cluster-names.ts.
//
//   UPDATE_GOLDEN=1 npx ava test/sidecar/bootstrap-grpc.test.ts   # rewrite the golden, then review the diff
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { validateBootstrapConfig } from '@grpc/grpc-js-xds/build/src/xds-bootstrap.js';
import { XdsClient } from '@grpc/grpc-js-xds/build/src/xds-client.js';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { startControlPlane } from '../../control-plane/control-plane.js';
import { silentLogger } from '../../control-plane/logger.js';
import {
  GRPC_IDENTITY_PROVIDER,
  GRPC_ROOT_PROVIDER,
  grpcServerListenerName,
} from '../../control-plane/translate/cluster-names.js';
import { writeCertFiles } from '../../sidecar/cert-files.js';
import {
  grpcBootstrap,
  writeGrpcBootstrap,
  type GrpcBootstrap,
  type GrpcBootstrapOptions,
} from '../../sidecar/bootstrap-grpc.js';
import { waitFor } from '../helpers/wait.js';
import { makeTempDir } from '../helpers/ca-control-plane.js';
import { assertGolden, freePort, issue, localCa } from './helpers.js';

xds.register();

const GOLDEN = path.join(import.meta.dirname, 'golden', 'grpc-bootstrap.json');

const options: GrpcBootstrapOptions = {
  xdsServerUri: 'unix:///var/run/trellis/xds.sock',
  certDir: '/var/run/trellis/certs',
  node: {
    pod: 'cart-7d9f-abcde',
    namespace: 'shop',
    serviceAccount: 'cart',
    labels: { version: 'v1', app: 'cart' },
    instanceIps: ['10.1.2.3', 'fd00::3'],
    locality: { region: 'eu-west', zone: 'eu-west-1a' },
  },
};

test('golden: the bootstrap of a proxyless pod', (t) => {
  assertGolden(t, grpcBootstrap(options), GOLDEN);
});

test('names match what the served config refers to', (t) => {
  const b = grpcBootstrap(options);
  t.deepEqual(Object.keys(b.certificate_providers!).sort(), [GRPC_IDENTITY_PROVIDER, GRPC_ROOT_PROVIDER].sort());
  t.is(
    b.server_listener_resource_name_template.replace('%s', '10.1.2.3:8080'),
    grpcServerListenerName('10.1.2.3', 8080),
  );
  t.is(b.node.id, 'cart-7d9f-abcde.shop');
  t.deepEqual(b.node.locality, { region: 'eu-west', zone: 'eu-west-1a' });
  t.deepEqual(grpcBootstrap({ ...options, node: { ...options.node, locality: undefined } }).node.locality, {});
  t.is(b.node.metadata.NODE_NAME, undefined, 'no NODE_NAME unless the Node is known');
  t.is(grpcBootstrap({ ...options, node: { ...options.node, nodeName: 'node-7' } }).node.metadata.NODE_NAME, 'node-7');
  t.is(grpcBootstrap({ ...options, certDir: undefined }).certificate_providers, undefined);
  t.throws(() => grpcBootstrap({ ...options, refreshInterval: '5m' }), { message: /refreshInterval "5m"/ });
  t.throws(() => grpcBootstrap({ ...options, node: { ...options.node, namespace: 'Shop' } }), {
    message: /namespace "Shop" is not a Kubernetes name/,
  });
});

test('grpc-js-xds parses it: servers, node, locality, providers, template', (t) => {
  const info = validateBootstrapConfig(JSON.parse(JSON.stringify(grpcBootstrap(options))));
  t.is(info.xdsServers[0]!.server_uri, 'unix:///var/run/trellis/xds.sock');
  t.is(info.node.id, 'cart-7d9f-abcde.shop');
  t.is(info.node.locality?.region, 'eu-west');
  t.is(info.serverListenerResourceNameTemplate, 'grpc/server?xds.resource.listening_address=%s');
  t.deepEqual(Object.keys(info.certificateProviders).sort(), ['ROOTCA', 'default']);
  const identity = info.certificateProviders[GRPC_IDENTITY_PROVIDER]!;
  t.is(identity.pluginName, 'file_watcher');
  t.like(identity.config, {
    certificateFile: '/var/run/trellis/certs/cert.pem',
    privateKeyFile: '/var/run/trellis/certs/key.pem',
    caCertificateFile: '/var/run/trellis/certs/ca.pem',
    refreshIntervalMs: 5_000,
  });
});

test('its file_watcher providers read the agent’s cert files, and the next certificate after a rotation', async (t) => {
  const dir = makeTempDir('trellis-grpc-bootstrap-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ca = await localCa();
  const [a, b] = [await issue(ca), await issue(ca)];
  const certDir = path.join(dir, 'certs');
  await writeCertFiles(certDir, a);
  const file = path.join(dir, 'grpc-bootstrap.json');
  const written: GrpcBootstrap = await writeGrpcBootstrap(file, { ...options, certDir, refreshInterval: '0.2s' });
  t.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), written);
  const client = new XdsClient(validateBootstrapConfig(JSON.parse(fs.readFileSync(file, 'utf8'))));
  const identityProvider = client.getCertificateProvider(GRPC_IDENTITY_PROVIDER)!;
  const rootProvider = client.getCertificateProvider(GRPC_ROOT_PROVIDER)!;
  let identity: grpc.experimental.IdentityCertificateUpdate | null = null;
  let root: grpc.experimental.CaCertificateUpdate | null = null;
  const onIdentity = (u: grpc.experimental.IdentityCertificateUpdate | null) => (identity = u);
  const onRoot = (u: grpc.experimental.CaCertificateUpdate | null) => (root = u);
  identityProvider.addIdentityCertificateListener(onIdentity);
  rootProvider.addCaCertificateListener(onRoot);
  t.teardown(() => {
    identityProvider.removeIdentityCertificateListener(onIdentity);
    rootProvider.removeCaCertificateListener(onRoot);
  });
  const pem = (u: { certificate: Buffer } | null) => u?.certificate.toString();
  await waitFor('the first identity', () => pem(identity) === a.certChainPem);
  t.is((identity as grpc.experimental.IdentityCertificateUpdate | null)?.privateKey.toString(), a.privateKeyPem);
  await waitFor(
    'the root',
    () => (root as grpc.experimental.CaCertificateUpdate | null)?.caCertificate.toString() === a.trustBundlePem,
  );
  // What grpc-js does with them: a TLS context from the pair.
  const update = identity as unknown as grpc.experimental.IdentityCertificateUpdate;
  t.notThrows(() => tls.createSecureContext({ cert: update.certificate, key: update.privateKey }));

  await writeCertFiles(certDir, b);
  await waitFor('the rotated identity', () => pem(identity) === b.certChainPem, 3_000);
  t.is((identity as grpc.experimental.IdentityCertificateUpdate | null)?.privateKey.toString(), b.privateKeyPem);
});

test('a real grpc-js-xds channel and XdsServer announce the node to a real control plane', async (t) => {
  const cp = await startControlPlane({ logger: silentLogger, xdsPort: 0, monitoringPort: 0 });
  t.teardown(() => cp.close());
  const config = JSON.stringify(
    grpcBootstrap({ ...options, xdsServerUri: `127.0.0.1:${cp.xdsPort}`, certDir: '/nonexistent/certs' }),
  );
  const channel = new grpc.Client('xds:///echo.shop.svc.cluster.local:8080', grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': config,
  });
  t.teardown(() => channel.close());
  channel.getChannel().getConnectivityState(true);
  const server = new xds.XdsServer({ 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': config });
  t.teardown(() => server.forceShutdown());
  const port = await freePort();
  server.bindAsync(
    `127.0.0.1:${port}`,
    new xds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
    () => undefined,
  );

  const streams = await waitFor(
    'the channel’s and the server’s streams',
    () => {
      const s = cp.ads.status().filter((x) => x.node?.id === 'cart-7d9f-abcde.shop');
      const names = s.flatMap((x) => x.types.flatMap((ty) => (Array.isArray(ty.subscription) ? ty.subscription : [])));
      return names.includes('echo.shop.svc.cluster.local:8080') &&
        names.includes(grpcServerListenerName('127.0.0.1', port))
        ? s
        : undefined;
    },
    10_000,
  );
  for (const s of streams) {
    t.like(s.node, {
      id: 'cart-7d9f-abcde.shop',
      cluster: 'cart.shop',
      namespace: 'shop',
      serviceAccount: 'cart',
      labels: { app: 'cart', version: 'v1' },
      instanceIps: ['10.1.2.3', 'fd00::3'],
      proxyType: 'grpc',
      trustDomain: 'cluster.local',
      locality: { region: 'eu-west', zone: 'eu-west-1a', subZone: '' },
    });
  }
});
