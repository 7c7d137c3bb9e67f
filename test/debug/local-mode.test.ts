// The debug commands on translated config: `trellis control-plane --config-dir` (a real process) with one
// service (a DestinationRule with subset v1, a VirtualService to it), an xDS-enabled grpc-js server and a
// grpc-js-xds client; proxy-status shows both SYNCED, proxy-config shows the translated names. A raw ADS
// client that never answers its response is STALE.
import test from 'ava';
import { register } from '@grpc/grpc-js-xds';
import { fetchProxies } from '../../control-plane/debug-cli/debug-proxies.js';
import { getJson } from '../../control-plane/debug-cli/http-client.js';
import { resourcesOf, summaryRows } from '../../control-plane/debug-cli/proxy-config.js';
import { statusRows, type ProxyStatusRow } from '../../control-plane/debug-cli/proxy-status.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { RawAdsClient, testNode } from '../helpers/ads-client.js';
import {
  deployService,
  destinationRuleManifest,
  fqdn,
  useMeshControlPlane,
  virtualServiceManifest,
} from '../helpers/mesh-e2e.js';
import { eventually } from '../helpers/process.js';
import { trellis } from './_debug-cli.js';

register();

const NS = 'debugcli';
const mesh = useMeshControlPlane(test);

test('proxy-status and proxy-config on a translated mesh; a proxy that never ACKs is STALE', async (t) => {
  const svc = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'shop',
    namespace: NS,
    backends: [{ pod: 'shop-v1', labels: { version: 'v1' } }],
    routing: [
      destinationRuleManifest('shop', NS, { host: 'shop', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
      virtualServiceManifest('shop', NS, {
        hosts: ['shop'],
        http: [{ route: [{ destination: { host: 'shop', subset: 'v1' } }] }],
      }),
    ],
  });
  t.teardown(() => svc.close());
  const client = await svc.client();
  const url = `http://127.0.0.1:${mesh.cp.monitoringPort}`;
  const host = fqdn('shop', NS);
  const subsetCluster = `outbound|8080|v1|${host}`;

  const rowOf = async (id: string): Promise<ProxyStatusRow | undefined> =>
    statusRows(await fetchProxies(url)).find((r) => r.proxy === id);
  await eventually(
    async () => {
      const r = await rowOf(client.nodeId);
      return r !== undefined && (['CDS', 'LDS', 'EDS', 'RDS'] as const).every((x) => r.types[x].state === 'SYNCED');
    },
    10_000,
    'the client SYNCED',
  );

  const status = await trellis(['proxy-status', '--control-plane', url, '-o', 'yaml']);
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, new RegExp(`proxy: ${client.nodeId.replace(/\./g, '\\.')}`));
  t.regex(status.stdout, new RegExp(`proxy: shop-v1\\.${NS}`), 'the server is listed too');

  const dump = await getJson(url, `debug/config_dump?proxy=${encodeURIComponent(client.nodeId)}`);
  const clusters = summaryRows('clusters', resourcesOf(dump, 'clusters'));
  t.true(
    clusters.some((r) => r[0] === subsetCluster && r[1] === 'EDS' && r[2] === 'v1'),
    JSON.stringify(clusters),
  );
  const routes = summaryRows('routes', resourcesOf(dump, 'routes'));
  t.true(
    routes.some((r) => r[1] === `${host}:8080` && r[4] === subsetCluster),
    JSON.stringify(routes),
  );
  const endpoints = await trellis(['proxy-config', 'endpoints', client.nodeId, '--control-plane', url]);
  t.is(endpoints.code, 0, endpoints.stderr);
  t.log(endpoints.stdout);
  const endpointRows = endpoints.stdout
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => l.split(/\s{3,}/));
  t.deepEqual(
    endpointRows.filter((r) => r[0] === subsetCluster).map((r) => [r[1], r[2]]),
    [[`127.0.0.1:${svc.ports.get('shop-v1')}`, 'HEALTHY']],
  );

  // A raw ADS client takes a CDS response and never answers it: STALE, with the version it was sent.
  const ads = new RawAdsClient(mesh.controlPlane);
  const stream = ads.sotw();
  t.teardown(() => {
    stream.close();
    ads.close();
  });
  stream.send({ node: testNode(`silent.${NS}`, { NAMESPACE: NS }), typeUrl: TypeUrl.Cluster });
  const response = await stream.next();
  await eventually(
    async () => (await rowOf(`silent.${NS}`))?.types.CDS.version === response.versionInfo,
    10_000,
    'CDS sent',
  );
  const silent = (await rowOf(`silent.${NS}`))!;
  t.is(silent.types.CDS.state, 'STALE');
  t.is(silent.types.CDS.ackedVersion, '');
  t.is(silent.types.LDS.state, 'NOT SENT');
});
