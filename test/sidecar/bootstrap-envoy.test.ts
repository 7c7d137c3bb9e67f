// The Envoy sidecar bootstrap: a golden file, the names the served config relies on, and Envoy's own
// validation (the Go checker: PGV rules of envoy.config.bootstrap.v3.Bootstrap and of every nested Any).
//
//   UPDATE_GOLDEN=1 npx ava test/sidecar/bootstrap-envoy.test.ts   # rewrite the golden, then review the diff
import test from 'ava';
import { fromJson, type JsonObject } from '@bufbuild/protobuf';
import fs from 'node:fs';
import path from 'node:path';
import { BootstrapSchema } from '../../control-plane/envoy/gen/envoy/config/bootstrap/v3/bootstrap_pb.js';
import { registry, typeUrlOf } from '../../control-plane/envoy/protos.js';
import { SDS_CLUSTER } from '../../control-plane/translate/cluster-names.js';
import {
  envoyBootstrap,
  writeEnvoyBootstrap,
  XDS_CLUSTER,
  type EnvoyBootstrapOptions,
} from '../../sidecar/bootstrap-envoy.js';
import { envoyValidateAvailable, validateEnvoyJson } from '../helpers/envoy-validate.js';
import { makeTempDir } from '../helpers/ca-control-plane.js';
import { assertGolden } from './helpers.js';

const GOLDEN = path.join(import.meta.dirname, 'golden', 'envoy-bootstrap.json');
const BOOTSTRAP_TYPE = typeUrlOf('envoy.config.bootstrap.v3.Bootstrap');

const options: EnvoyBootstrapOptions = {
  node: {
    pod: 'cart-7d9f-abcde',
    namespace: 'shop',
    serviceAccount: 'cart',
    labels: { app: 'cart', version: 'v1' },
    instanceIps: ['10.1.2.3'],
    locality: { region: 'eu-west', zone: 'eu-west-1a', subZone: 'rack-7' },
  },
  xdsSocketPath: '/var/run/trellis/xds.sock',
  sdsSocketPath: '/var/run/trellis/sds.sock',
};

/** Envoy's validation, or a failure under CI when the checker is not built (a local run without it passes). */
async function envoyErrors(bootstrap: JsonObject): Promise<string[] | undefined> {
  if (!envoyValidateAvailable()) {
    if (process.env.CI === 'true') throw new Error('envoy-validate is not built (npm run peers); CI must not skip it');
    return undefined;
  }
  const [result] = await validateEnvoyJson([{ '@type': BOOTSTRAP_TYPE, ...bootstrap }]);
  return [...result!.errors];
}

test('golden: the bootstrap of a sidecar', (t) => {
  assertGolden(t, envoyBootstrap(options), GOLDEN);
});

test('passes Envoy’s validation; a broken variant does not (the check can fail)', async (t) => {
  const good = await envoyErrors(envoyBootstrap(options));
  if (good === undefined) {
    t.log('envoy-validate is not built: run `npm run peers`');
    t.pass();
    return;
  }
  t.deepEqual(good, []);
  const broken = envoyBootstrap(options);
  (broken.admin as { address: { socket_address: { port_value: number } } }).address.socket_address.port_value = 70000;
  const errors = await envoyErrors(broken);
  t.true(
    errors!.some((e) => /port_value/.test(e)),
    errors!.join('\n'),
  );
});

test('the names and sockets the rest of the mesh relies on', (t) => {
  const b = fromJson(BootstrapSchema, envoyBootstrap(options), { registry });
  t.is(b.node?.id, 'cart-7d9f-abcde.shop');
  t.like(b.node?.metadata, {
    NAMESPACE: 'shop',
    SERVICE_ACCOUNT: 'cart',
    PROXY_TYPE: 'envoy',
    TRUST_DOMAIN: 'cluster.local',
    INSTANCE_IPS: '10.1.2.3',
  });
  t.is(b.node?.locality?.subZone, 'rack-7');
  const clusters = new Map(b.staticResources!.clusters.map((c) => [c.name, c]));
  t.deepEqual([...clusters.keys()], [XDS_CLUSTER, SDS_CLUSTER, 'prometheus_stats']);
  const pipe = (name: string) => {
    const address = clusters.get(name)!.loadAssignment!.endpoints[0]!.lbEndpoints[0]!.hostIdentifier;
    return address.case === 'endpoint' && address.value.address?.address.case === 'pipe'
      ? address.value.address.address.value.path
      : undefined;
  };
  t.is(pipe(XDS_CLUSTER), '/var/run/trellis/xds.sock');
  t.is(pipe(SDS_CLUSTER), '/var/run/trellis/sds.sock');
  for (const name of [XDS_CLUSTER, SDS_CLUSTER]) {
    t.deepEqual(Object.keys(clusters.get(name)!.typedExtensionProtocolOptions), [
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    ]);
  }
  const ads = b.dynamicResources!.adsConfig!;
  t.true(ads.setNodeOnFirstMessageOnly);
  const target = ads.grpcServices[0]!.targetSpecifier;
  t.true(target.case === 'envoyGrpc' && target.value.clusterName === XDS_CLUSTER);
  t.is(b.dynamicResources!.cdsConfig!.configSourceSpecifier.case, 'ads');
  t.is(b.dynamicResources!.ldsConfig!.configSourceSpecifier.case, 'ads');
  const admin = b.admin!.address!.address;
  t.true(
    admin.case === 'socketAddress' && admin.value.address === '127.0.0.1' && admin.value.portSpecifier.value === 15000,
  );
  const stats = b.staticResources!.listeners[0]!.address!.address;
  t.true(
    stats.case === 'socketAddress' && stats.value.address === '0.0.0.0' && stats.value.portSpecifier.value === 15090,
  );
});

test('bad options are refused with the option named; the writer writes the same JSON', async (t) => {
  t.throws(() => envoyBootstrap({ ...options, xdsSocketPath: 'xds.sock' }), {
    message: /xdsSocketPath must be an absolute path/,
  });
  t.throws(() => envoyBootstrap({ ...options, adminPort: 0 }), { message: /adminPort 0 is not a port/ });
  const dir = makeTempDir('trellis-envoy-bootstrap-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'envoy.json');
  const written = await writeEnvoyBootstrap(file, { ...options, statsPort: 15091 });
  t.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), written);
});
