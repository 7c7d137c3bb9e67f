// `trellis describe` and `trellis diff` against `trellis control-plane --kubeconfig` (a real process) on a
// real kube-apiserver, with a grpc-js-xds client connected: describe reads the model KubeSource built (the
// Pod's labels from the API server); diff lays a change over the objects KubeSource holds. A new
// VirtualService for a host another one routes is stamped with the current time, as the API server would,
// so it is younger and loses the host: Conflicted, no proxy changes. A weight change is RDS of the client
// only. Nothing is applied: the API server still holds the old weights. Skipped with one line when the
// peers are not built (failed under CI=true).
import anyTest from 'ava';
import { register } from '@grpc/grpc-js-xds';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { ConfigDiff } from '../../control-plane/inspect/config-diff.js';
import { fetchDescription } from '../../control-plane/debug-cli/describe.js';
import { fetchProxies } from '../../control-plane/debug-cli/debug-proxies.js';
import { statusRows } from '../../control-plane/debug-cli/proxy-status.js';
import { useCluster } from '../helpers/cluster.js';
import { XdsEchoClient } from '../helpers/mesh-e2e.js';
import { eventually, startControlPlaneProcess } from '../helpers/process.js';
import { apply, installCrds } from '../kube/kube-helpers.js';
import { trellis } from './_debug-cli.js';

register();

const kube = useCluster(anyTest);

const route = (name: string, v1: number, v2: number): Record<string, unknown> => ({
  apiVersion: 'networking.trellis.dev/v1alpha1',
  kind: 'VirtualService',
  metadata: { name },
  spec: {
    hosts: ['shop'],
    http: [
      {
        route: [
          { destination: { host: 'shop', subset: 'v1' }, weight: v1 },
          { destination: { host: 'shop', subset: 'v2' }, weight: v2 },
        ],
      },
    ],
  },
});

function backend(ns: string, version: string, address: string): Record<string, unknown>[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `shop-${version}`, labels: { app: 'shop', version } },
      spec: { containers: [{ name: 'app', image: 'registry.example/shop:1' }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `shop-${version}`, labels: { 'kubernetes.io/service-name': 'shop' } },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: [address], targetRef: { kind: 'Pod', namespace: ns, name: `shop-${version}` } }],
    },
  ];
}

kube.test('describe and diff in Kubernetes mode, with a grpc-js-xds client connected', async (t, cluster) => {
  await installCrds(cluster);
  const ns = await cluster.createNamespace('describe');
  const docs = [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'shop' }, spec: { ports: [{ name: 'grpc', port: 8080 }] } },
    ...backend(ns, 'v1', '10.1.0.1'),
    ...backend(ns, 'v2', '10.1.0.2'),
    {
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'DestinationRule',
      metadata: { name: 'shop' },
      spec: {
        host: 'shop',
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    },
    route('shop', 90, 10),
  ];
  await apply(cluster, ns, docs.map((d) => YAML.stringify(d)).join('---\n'));
  const cp = await startControlPlaneProcess(['--kubeconfig', cluster.kubeconfigPath, '--debounce-after', '20ms']);
  t.teardown(() => cp.stop());
  const url = `http://127.0.0.1:${cp.monitoringPort}`;
  await eventually(async () => (await fetch(`${url}/readyz`)).status === 200, 90_000, '/readyz 200');

  // A proxyless client of shop: one call (the endpoints are not there to answer) makes it subscribe.
  const host = `shop.${ns}.svc.cluster.local`;
  const client = new XdsEchoClient(`${host}:8080`, `127.0.0.1:${cp.xdsPort}`, `client.${ns}`, { namespace: ns });
  t.teardown(() => client.close());
  void client.call({ deadlineMs: 2_000 });
  await eventually(
    async () =>
      statusRows(await fetchProxies(url)).find((r) => r.proxy === `client.${ns}`)?.types.RDS.state === 'SYNCED',
    90_000,
    'the client has its routes',
  );

  const service = await fetchDescription(url, 'service', `shop.${ns}`);
  t.deepEqual(service.services[0]!.virtualService?.routes, [`* -> ${host}|v1 90%, ${host}|v2 10%`]);
  t.deepEqual(
    service.services[0]!.destinationRule?.subsets.map((s) => [s.name, s.endpoints[0]!.endpoints.map((e) => e.address)]),
    [
      ['v1', ['10.1.0.1']],
      ['v2', ['10.1.0.2']],
    ],
  );
  const pod = await fetchDescription(url, 'pod', `shop-v2.${ns}`);
  t.is(pod.labels?.version, 'v2', 'the Pod as the API server holds it');
  t.deepEqual(
    pod.services[0]!.destinationRule?.subsets.map((s) => s.matchesPod),
    [false, true],
  );

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-diff-kube-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const diffOf = async (name: string, doc: Record<string, unknown>): Promise<ConfigDiff> => {
    const file = path.join(dir, `${name}.yaml`);
    await fs.writeFile(file, YAML.stringify({ ...doc, metadata: { ...(doc.metadata as object), namespace: ns } }));
    const run = await trellis(['diff', '-f', file, '--control-plane', url, '-o', 'json']);
    t.is(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as ConfigDiff;
  };

  const rival = await diffOf('rival', route('shop-canary', 0, 100));
  t.deepEqual(
    rival.objects.map((o) => [o.name, o.action, o.reason]),
    [['shop-canary', 'created', 'Conflicted']],
  );
  t.regex(rival.objects[0]!.message, /conflicts with older VirtualService/);
  t.deepEqual(rival.proxies, []);

  const weights = await diffOf('weights', route('shop', 50, 50));
  t.deepEqual(
    weights.objects.map((o) => [o.name, o.action, o.reason]),
    [['shop', 'changed', 'Accepted']],
  );
  const mine = weights.proxies.find((p) => p.proxy === `client.${ns}`);
  t.truthy(mine, JSON.stringify(weights));
  t.deepEqual(
    mine!.resources.map((r) => [r.type, r.name, r.change, r.subscribed]),
    [['RDS', '8080', 'changed', true]],
  );
  t.deepEqual(
    mine!.resources[0]!.fields.map((f) => [f.before, f.after]),
    [
      [90, 50],
      [10, 50],
    ],
  );

  // Nothing applied: the API server keeps the old weights.
  const live = await cluster.kubectl([
    'get',
    'virtualservice',
    'shop',
    '-n',
    ns,
    '-o',
    'jsonpath={.spec.http[0].route[*].weight}',
  ]);
  t.is(live.stdout.trim(), '90 10');
});
