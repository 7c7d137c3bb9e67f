// `trellis proxy-config` and `/debug/config_dump` against a real control plane (`--static-resources`, a
// process): a real grpc-js-xds client's clusters, listeners, routes and endpoints by name; a raw ADS client
// subscribed to SDS gets a workload certificate and its private key, and neither the dump nor
// `proxy-config secrets` ever shows the key.
import test from 'ava';
import { register } from '@grpc/grpc-js-xds';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { JsonValue } from '@bufbuild/protobuf';
import { CertificateAuthority, createRootCa, loadRootCa } from '../../certs/index.js';
import { anyFromJson, TypeUrl, unpackAny } from '../../control-plane/envoy/protos.js';
import { isLoopback } from '../../control-plane/monitoring.js';
import { resourcesOf, summaryRows } from '../../control-plane/debug-cli/proxy-config.js';
import { getJson } from '../../control-plane/debug-cli/http-client.js';
import { EchoClient, startEchoServer, xdsBootstrap, xdsChannelOptions } from '../../examples/demo/echo.js';
import { makeCsr } from '../ca/ca-helpers.js';
import { RawAdsClient, testNode } from '../helpers/ads-client.js';
import { assertServedResourcesValid, writeResourcesFile, type JsonResource } from '../helpers/control-plane.js';
import { debugProxies } from '../helpers/debug.js';
import { eventually, startControlPlaneProcess } from '../helpers/process.js';
import { CLUSTER, clientResources, HOST, TARGET, trellis } from './_debug-cli.js';

register();

const CLIENT = 'config-client.default';
const SDS_PROXY = 'sds-proxy.default';
const SPIFFE = 'spiffe://cluster.local/ns/default/sa/shop';

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

test('proxy-config and config_dump: what a grpc-js-xds client and an SDS client were sent, never a key', async (t) => {
  const root = await createRootCa();
  const ca = CertificateAuthority.create(await loadRootCa(root.certPem, root.keyPem), 'cluster.local');
  const issued = await ca.sign({
    csr: await makeCsr(SPIFFE),
    identity: { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'shop' },
  });
  const leaf = new crypto.X509Certificate(issued.certificate);
  // Any private key does: the point is that it is served to the proxy and never shown by the debug paths.
  const keyPem = root.keyPem;
  const secrets: JsonResource[] = [
    {
      '@type': TypeUrl.Secret,
      name: 'default',
      tlsCertificate: { certificateChain: { inlineString: issued.certificate }, privateKey: { inlineString: keyPem } },
    },
    { '@type': TypeUrl.Secret, name: 'ROOTCA', validationContext: { trustedCa: { inlineString: root.certPem } } },
  ];

  const server = await startEchoServer('server-a');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-proxy-config-'));
  const file = path.join(dir, 'resources.yaml');
  const resources = [
    ...clientResources(server.port, {
      outlierDetection: { consecutive5xx: 3, interval: '5s', baseEjectionTime: '30s', enforcingSuccessRate: 0 },
      circuitBreakers: { thresholds: [{ maxRequests: 100 }] },
    }),
    ...secrets,
  ];
  await assertServedResourcesValid(resources);
  await writeResourcesFile(file, resources);
  const cp = await startControlPlaneProcess(['--static-resources', file, '--debounce-after', '20ms']);
  const client = new EchoClient(
    `xds:///${TARGET}`,
    undefined,
    xdsChannelOptions(xdsBootstrap(`127.0.0.1:${cp.xdsPort}`, CLIENT)),
  );
  const ads = new RawAdsClient(`127.0.0.1:${cp.xdsPort}`);
  t.teardown(async () => {
    client.close();
    ads.close();
    await cp.stop();
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${cp.monitoringPort}`;
  t.is((await client.echo('hello')).server, 'server-a');
  await eventually(
    async () => {
      const proxy = (await debugProxies(cp.monitoringPort)).find((p) => p.node?.id === CLIENT);
      return (
        proxy?.types.length === 4 && proxy.types.every((x) => x.sentVersion !== '' && x.ackedVersion === x.sentVersion)
      );
    },
    10_000,
    'the client ACKed all four types',
  );

  // The CLI as a real process: one row per resource, by the names the client was sent.
  const clusters = await trellis(['proxy-config', 'clusters', CLIENT, '--control-plane', url]);
  t.is(clusters.code, 0, clusters.stderr);
  t.log(clusters.stdout);
  t.deepEqual(
    lines(clusters.stdout)
      .slice(1)
      .map((l) => l.split(/\s{3,}/)),
    [[CLUSTER, 'EDS', '-', 'ROUND_ROBIN', '5xx=3,interval=5s,ejection=30s', 'requests=100']],
  );
  const routes = await trellis(['proxy-config', 'routes', CLIENT, '--control-plane', url]);
  t.is(routes.code, 0, routes.stderr);
  t.log(routes.stdout);
  t.regex(lines(routes.stdout)[0]!, /^ROUTE CONFIG\s+VIRTUAL HOST\s+DOMAINS\s+MATCH\s+CLUSTER$/);
  t.deepEqual(
    lines(routes.stdout)
      .slice(1)
      .map((l) => l.split(/\s{3,}/)),
    [['8080', '8080-vh', `${TARGET},${HOST}`, 'prefix /', CLUSTER]],
  );
  const endpoints = await trellis(['proxy-config', 'endpoints', CLIENT, '--control-plane', url, '-o', 'table']);
  t.is(endpoints.code, 0, endpoints.stderr);
  t.deepEqual(
    lines(endpoints.stdout)
      .slice(1)
      .map((l) => l.split(/\s{3,}/)),
    [[CLUSTER, `127.0.0.1:${server.port}`, 'UNKNOWN', '1', 'r1/z1', '0']],
  );
  const listeners = await trellis(['proxy-config', 'listeners', CLIENT, '--control-plane', url, '-o', 'yaml']);
  t.is(listeners.code, 0, listeners.stderr);
  t.regex(listeners.stdout, new RegExp(`name: ${TARGET.replace(/\./g, '\\.')}`));

  // -o json: the resources themselves, each a proto3 JSON Any that parses back into its type.
  const json = await trellis(['proxy-config', 'clusters', CLIENT, '--control-plane', url, '-o', 'json']);
  t.is(json.code, 0, json.stderr);
  const raw = JSON.parse(json.stdout) as JsonValue[];
  t.is(raw.length, 1);
  t.is((unpackAny(anyFromJson(raw[0]!)) as unknown as { name: string }).name, CLUSTER);

  // The dump has Envoy's admin shape: every section but secrets decodes as its envoy.admin.v3 message,
  // and each resource says the client ACKed it.
  const dump = (await getJson(url, `debug/config_dump?proxy=${encodeURIComponent(CLIENT)}`)) as {
    configs: Array<Record<string, JsonValue>>;
  };
  t.deepEqual(
    dump.configs.map((c) => c['@type']),
    ['Clusters', 'Listeners', 'Routes', 'Endpoints'].map((k) => `type.googleapis.com/envoy.admin.v3.${k}ConfigDump`),
  );
  for (const section of dump.configs) t.notThrows(() => anyFromJson(section), String(section['@type']));
  const statuses = dump.configs.flatMap((c) =>
    Object.values(c)
      .filter(Array.isArray)
      .flatMap((entries) => (entries as Array<{ clientStatus?: string }>).map((e) => e.clientStatus)),
  );
  t.deepEqual([...new Set(statuses)], ['ACKED']);
  const proxy = (await debugProxies(cp.monitoringPort)).find((p) => p.node?.id === CLIENT)!;
  t.is(dump.configs[0]!.versionInfo, proxy.types.find((x) => x.type === 'CDS')!.sentVersion);

  // An SDS client (raw ADS, as Envoy subscribes): the certificate is summarised, the key is never shown.
  const sds = ads.sotw();
  sds.send({ node: testNode(SDS_PROXY), typeUrl: TypeUrl.Secret, resourceNames: ['ROOTCA', 'default'] });
  const response = await sds.next();
  t.is(response.resources.length, 2);
  sds.send({
    typeUrl: TypeUrl.Secret,
    resourceNames: ['ROOTCA', 'default'],
    versionInfo: response.versionInfo,
    responseNonce: response.nonce,
  });
  t.teardown(() => sds.close());
  await eventually(
    async () => {
      const p = (await debugProxies(cp.monitoringPort)).find((x) => x.node?.id === SDS_PROXY);
      return p?.types.find((x) => x.type === 'SDS')?.ackedVersion === response.versionInfo;
    },
    10_000,
    'SDS ACKed',
  );
  const secretTable = await trellis(['proxy-config', 'secrets', SDS_PROXY, '--control-plane', url]);
  t.is(secretTable.code, 0, secretTable.stderr);
  t.log(secretTable.stdout);
  const rootCert = new crypto.X509Certificate(root.certPem);
  t.deepEqual(
    lines(secretTable.stdout)
      .slice(1)
      .map((l) => l.split(/\s{3,}/)),
    [
      [
        'ROOTCA',
        'CA',
        rootCert.subject.replace(/\n/g, ','),
        rootCert.serialNumber,
        new Date(rootCert.validTo).toISOString(),
      ],
      ['default', 'Cert Chain', SPIFFE, leaf.serialNumber, new Date(leaf.validTo).toISOString()],
    ],
  );
  const keyBody = keyPem.split('\n')[1]!;
  for (const args of [
    ['proxy-config', 'secrets', SDS_PROXY, '--control-plane', url, '-o', 'json'],
    ['proxy-config', 'secrets', SDS_PROXY, '--control-plane', url, '-o', 'yaml'],
  ]) {
    const run = await trellis(args);
    t.is(run.code, 0, run.stderr);
    t.false(run.stdout.includes('PRIVATE KEY'), run.stdout);
    t.false(run.stdout.includes(keyBody));
    t.true(run.stdout.includes('BEGIN CERTIFICATE'), 'the public certificates are there');
  }
  const sdsDump = JSON.stringify(await getJson(url, `debug/config_dump?proxy=${encodeURIComponent(SDS_PROXY)}`));
  t.false(sdsDump.includes('PRIVATE KEY'));
  t.false(sdsDump.includes(keyBody));
  t.false(sdsDump.includes('privateKey'));
  t.true(sdsDump.includes('"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump"'));
  t.deepEqual(
    summaryRows('secrets', resourcesOf(JSON.parse(sdsDump), 'secrets')).map((r) => r[0]),
    ['ROOTCA', 'default'],
  );

  // An unknown proxy: exit 1 with the control plane's answer.
  const missing = await trellis(['proxy-config', 'clusters', 'nobody.default', '--control-plane', url]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /404: no connected proxy with id "nobody\.default"/);
});

test('/debug/* answers loopback peers only', (t) => {
  for (const a of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) t.true(isLoopback(a), a);
  for (const a of [undefined, '10.0.0.7', '::ffff:10.0.0.7', '192.168.1.127', 'fe80::1', '::'])
    t.false(isLoopback(a), String(a));
});
