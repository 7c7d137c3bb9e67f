// `trellis describe` and `trellis diff` against `trellis control-plane --config-dir` (a real process) with
// grpc-js-xds clients and xDS servers connected. Namespace `dda` holds `shop` (Pods shop-v1, shop-v2; a
// DestinationRule with subsets v1, v2; a VirtualService exported to `dda` only that splits 90/10) and a
// client of it; namespace `ddb` holds `other` and a client of it.
// - describe service/pod: the VirtualService and its routes, the subsets and their endpoints, the
//   subset the Pod is in, the mTLS mode and who decided it, the proxies SYNCED with the versions they ACKed;
// - diff of a weight change: only RDS, only the proxies that see the VirtualService (dda), the two
//   weights as the changed fields; the proxies of ddb unchanged; nothing applied;
// - diff of a new subset: CDS and EDS only (the cluster and its assignment added), for every proxy;
// - diff of an invalid change: its verdict (Invalid, the field), and no proxy changes.
import test from 'ava';
import { register } from '@grpc/grpc-js-xds';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { ConfigDiff } from '../../control-plane/inspect/config-diff.js';
import { analyzeControlPlane } from '../../control-plane/debug-cli/analyze.js';
import { fetchDescription, type DescribeOutput } from '../../control-plane/debug-cli/describe.js';
import { fetchProxies } from '../../control-plane/debug-cli/debug-proxies.js';
import { statusRows } from '../../control-plane/debug-cli/proxy-status.js';
import {
  deployService,
  destinationRuleManifest,
  fqdn,
  useMeshControlPlane,
  virtualServiceManifest,
  type Manifest,
} from '../helpers/mesh-e2e.js';
import { eventually } from '../helpers/process.js';
import { trellis } from './_debug-cli.js';

register();

const A = 'dda';
const B = 'ddb';
const mesh = useMeshControlPlane(test);

const subsets = [
  { name: 'v1', labels: { version: 'v1' } },
  { name: 'v2', labels: { version: 'v2' } },
];
const shopRule = (s: readonly Record<string, unknown>[] = subsets): Manifest =>
  destinationRuleManifest('shop', A, { host: 'shop', subsets: s });
const shopRoute = (v1: number, v2: number): Manifest =>
  virtualServiceManifest('shop', A, {
    hosts: ['shop'],
    exportTo: ['.'],
    http: [
      {
        route: [
          { destination: { host: 'shop', subset: 'v1' }, weight: v1 },
          { destination: { host: 'shop', subset: 'v2' }, weight: v2 },
        ],
      },
    ],
  });

async function diffOf(t: { teardown(fn: () => Promise<void>): void }, url: string, docs: readonly Manifest[]) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-diff-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'change.yaml');
  await fs.writeFile(file, docs.map((d) => YAML.stringify(d)).join('---\n'));
  const json = await trellis(['diff', '-f', file, '--control-plane', url, '-o', 'json']);
  const table = await trellis(['diff', '-f', file, '--control-plane', url]);
  return { json, table, diff: json.code === 0 ? (JSON.parse(json.stdout) as ConfigDiff) : undefined };
}

test('describe and diff against the live model, with grpc-js-xds proxies connected', async (t) => {
  const shop = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'shop',
    namespace: A,
    backends: [
      { pod: 'shop-v1', labels: { version: 'v1' } },
      { pod: 'shop-v2', labels: { version: 'v2' } },
    ],
    routing: [shopRule(), shopRoute(90, 10)],
  });
  t.teardown(() => shop.close());
  const other = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'other',
    namespace: B,
    backends: [{ pod: 'other-v1' }],
  });
  t.teardown(() => other.close());
  const shopClient = await shop.client();
  const otherClient = await other.client();
  const url = `http://127.0.0.1:${mesh.cp.monitoringPort}`;
  const ids = ['shop-v1.dda', 'shop-v2.dda', shopClient.nodeId, 'other-v1.ddb', otherClient.nodeId];
  await eventually(
    async () => {
      const rows = statusRows(await fetchProxies(url));
      return ids.every((id) => {
        const r = rows.find((x) => x.proxy === id);
        // Servers subscribe to LDS only (their route config is inline); clients to CDS, EDS, LDS, RDS.
        return (
          r !== undefined &&
          r.types.LDS.state === 'SYNCED' &&
          (['CDS', 'EDS', 'RDS'] as const).every((x) => ['SYNCED', 'NOT SENT'].includes(r.types[x].state))
        );
      });
    },
    60_000,
    'every proxy SYNCED',
  );
  const host = fqdn('shop', A);

  // describe service: as clients in dda see it.
  const service = await fetchDescription(url, 'service', `shop.${A}`);
  t.is(service.services.length, 1);
  const s = service.services[0]!;
  t.is(s.host, host);
  t.is(s.virtualService?.name, 'shop');
  t.is(s.virtualService?.reason, 'Accepted');
  t.deepEqual(s.virtualService?.routes, [`* -> ${host}|v1 90%, ${host}|v2 10%`]);
  t.deepEqual(
    s.destinationRule?.subsets.map((x) => [x.name, x.endpoints[0]!.endpoints.map((e) => e.pod)]),
    [
      ['v1', ['shop-v1.dda']],
      ['v2', ['shop-v2.dda']],
    ],
  );
  t.is(s.ports[0]!.mtls, 'PERMISSIVE');
  t.deepEqual(service.proxyIds, ['shop-v1.dda', 'shop-v2.dda']);
  t.deepEqual(
    service.proxies.map((p) => [p.proxy, p.types.LDS.state]),
    [
      ['shop-v1.dda', 'SYNCED'],
      ['shop-v2.dda', 'SYNCED'],
    ],
  );
  const acked = (await fetchProxies(url)).find((p) => p.proxyId === 'shop-v1.dda')!;
  t.is(service.proxies[0]!.types.LDS.ackedVersion, acked.types.find((x) => x.type === 'LDS')!.ackedVersion);

  // The same, as the CLI prints it.
  const text = await trellis(['describe', 'service', `shop.${A}`, '--control-plane', url]);
  t.is(text.code, 0, text.stderr);
  t.log(text.stdout);
  t.regex(
    text.stdout,
    new RegExp(`^Service: ${host.replace(/\./g, '\\.')} \\(as clients in namespace dda see it\\)`, 'm'),
  );
  t.regex(text.stdout, /^ {2}VirtualService: dda\/shop \(Accepted\)$/m);
  t.regex(text.stdout, /^ {4}Subset v2 \(version=v2\)$/m);
  t.regex(text.stdout, /^shop-v1\.dda\s+grpc\/sotw\s+NOT SENT\s+SYNCED/m);

  // describe pod: the subset it is in, its mTLS mode decided by the mesh config (no PeerAuthentication).
  const pod = await trellis(['describe', 'pod', `shop-v2.${A}`, '--control-plane', url, '-o', 'json']);
  t.is(pod.code, 0, pod.stderr);
  const p = JSON.parse(pod.stdout) as DescribeOutput;
  t.is(p.labels?.version, 'v2');
  t.is(p.mtls?.mode, 'PERMISSIVE');
  t.deepEqual(p.mtls?.from, []);
  t.deepEqual(
    p.services[0]!.destinationRule?.subsets.map((x) => [x.name, x.matchesPod]),
    [
      ['v1', false],
      ['v2', true],
    ],
  );
  t.deepEqual(
    p.proxies.map((x) => x.proxy),
    ['shop-v2.dda'],
  );
  t.deepEqual(p.leftOut, [], 'nothing was left out of its config');
  const missing = await trellis(['describe', 'pod', `nope.${A}`, '--control-plane', url]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /404: no Pod dda\/nope/);

  // diff: a weight change. Only RDS, only in dda (the VirtualService is exported to dda only).
  const before = statusRows(await fetchProxies(url));
  const weights = await diffOf(t, url, [shopRoute(50, 50)]);
  t.is(weights.json.code, 0, weights.json.stderr);
  t.log(weights.table.stdout);
  const w = weights.diff!;
  t.deepEqual(
    w.objects.map((o) => [o.kind, o.name, o.action, o.reason]),
    [['VirtualService', 'shop', 'changed', 'Accepted']],
  );
  t.deepEqual(
    w.proxies.map((x) => x.proxy),
    ['shop-client.dda', 'shop-v1.dda', 'shop-v2.dda'],
  );
  t.deepEqual(w.unchanged, ['other-client.ddb', 'other-v1.ddb']);
  for (const proxy of w.proxies) {
    // The client subscribed to RDS 8080; the servers take their listener only.
    t.deepEqual(
      proxy.resources.map((r) => [r.type, r.name, r.change, r.subscribed]),
      [['RDS', '8080', 'changed', proxy.proxy === 'shop-client.dda']],
      proxy.proxy,
    );
    const fields = proxy.resources[0]!.fields;
    t.deepEqual(
      fields.map((f) => [f.before, f.after]),
      [
        [90, 50],
        [10, 50],
      ],
    );
    t.true(
      fields.every((f) =>
        f.path.startsWith(`virtualHosts[name=${host}:8080].routes[0].route.weightedClusters.clusters[`),
      ),
    );
  }
  t.regex(weights.table.stdout, /^VirtualService dda\/shop\s+changed\s+Accepted$/m);
  t.regex(
    weights.table.stdout,
    /^shop-client\.dda\s+RDS\s+8080\s+changed\s+virtualHosts\[name=\S+\]\.routes\[0\]\.route\.weightedClusters\.clusters\[name=outbound\|8080\|v1\|\S+\]\.weight\s+90 -> 50$/m,
  );
  t.regex(weights.table.stdout, /^shop-v1\.dda\s+RDS\s+8080\s+changed \(not subscribed\)/m);
  t.regex(
    weights.table.stdout,
    /3 of 5 connected proxies would change \(1 pushed now\); unchanged: other-client\.ddb, other-v1\.ddb/,
  );

  // Nothing was applied: the live model and the proxies' versions are as before.
  const again = await fetchDescription(url, 'service', `shop.${A}`);
  t.deepEqual(again.services[0]!.virtualService?.routes, s.virtualService?.routes);
  t.is(again.snapshotVersion, service.snapshotVersion);
  t.deepEqual(
    statusRows(await fetchProxies(url)).map((r) => [r.proxy, r.configHash]),
    before.map((r) => [r.proxy, r.configHash]),
  );

  // diff: a new subset. CDS and EDS only: the subset's cluster and its assignment added, for every proxy.
  const subset = await diffOf(t, url, [shopRule([...subsets, { name: 'v3', labels: { version: 'v3' } }])]);
  t.is(subset.json.code, 0, subset.json.stderr);
  t.log(subset.table.stdout);
  const d = subset.diff!;
  t.deepEqual(
    d.objects.map((o) => [o.kind, o.name, o.action, o.reason]),
    [['DestinationRule', 'shop', 'changed', 'Accepted']],
  );
  t.deepEqual(d.unchanged, []);
  t.is(d.proxies.length, 5);
  for (const proxy of d.proxies) {
    t.deepEqual(
      proxy.resources.map((r) => [r.type, r.name, r.change]),
      [
        ['CDS', `outbound|8080|v3|${host}`, 'added'],
        ['EDS', `outbound|8080|v3|${host}`, 'added'],
      ],
      proxy.proxy,
    );
    // Proxyless clients ask for the clusters their routes name: no route names v3 yet.
    t.false(proxy.pushed, proxy.proxy);
  }

  // diff: a subset's labels changed (v2 now selects version=v1): the v2 cluster's endpoints change, and
  // the client, whose routes name that cluster, would be pushed.
  const relabel = await diffOf(t, url, [shopRule([subsets[0]!, { name: 'v2', labels: { version: 'v1' } }])]);
  t.is(relabel.json.code, 0, relabel.json.stderr);
  t.log(relabel.table.stdout);
  const r = relabel.diff!;
  const client = r.proxies.find((x) => x.proxy === 'shop-client.dda');
  t.truthy(client, relabel.table.stdout);
  t.true(client!.pushed);
  t.true(
    client!.resources.every((x) => x.type === 'CDS' || x.type === 'EDS'),
    JSON.stringify(client!.resources),
  );
  const eds = client!.resources.find((x) => x.type === 'EDS' && x.name === `outbound|8080|v2|${host}`);
  t.truthy(eds);
  t.true(eds!.subscribed);
  t.true(
    eds!.fields.some((f) => f.after === shop.ports.get('shop-v1')),
    JSON.stringify(eds!.fields),
  );

  // An invalid change: its verdict names the field; no proxy changes (the model keeps it out).
  const invalid = await diffOf(t, url, [
    virtualServiceManifest('broken', A, {
      hosts: ['shop'],
      http: [{ route: [{ destination: { host: 'shop' }, weight: -1 }] }],
    }),
  ]);
  t.is(invalid.json.code, 0, invalid.json.stderr);
  const i = invalid.diff!;
  t.deepEqual(
    i.objects.map((o) => [o.name, o.action, o.accepted, o.reason]),
    [['broken', 'created', false, 'Invalid']],
  );
  t.regex(i.objects[0]!.message, /spec\.http\[0\]\.route\[0\]\.weight/);
  t.deepEqual(i.proxies, []);

  // A kind diff does not take, and YAML that does not parse: exit 1 with the reason.
  const wrongKind = await diffOf(t, url, [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x', namespace: A }, spec: {} },
  ]);
  t.is(wrongKind.json.code, 1);
  t.regex(wrongKind.json.stderr, /^trellis diff: .*400: Service dda\/x: trellis diff takes/);

  // trellis analyze --control-plane: the control plane's own model (local mode, no API server). Nothing
  // is wrong yet; a VirtualService for a host with no Service is found once its file is there.
  t.deepEqual((await analyzeControlPlane(url)).findings, []);
  await mesh.dir.write('ghost', [
    virtualServiceManifest('ghost', A, { hosts: ['ghost'], http: [{ route: [{ destination: { host: 'ghost' } }] }] }),
  ]);
  await eventually(async () => (await analyzeControlPlane(url)).findings.length > 0, 30_000, 'a finding');
  const analyzed = await trellis(['analyze', '--control-plane', url, '-n', A]);
  t.is(analyzed.code, 0, analyzed.stderr);
  t.is(
    analyzed.stdout,
    `Warning [HostWithoutService] (virtualservice/ghost.${A}) matches nothing: no Service for ghost.${A}.svc.cluster.local\n` +
      `  fix: kubectl edit virtualservice/ghost -n ${A}\n` +
      '1 warning.\n',
  );
  // A warning fails `--failure-threshold warning` (and info): exit 79, as istioctl analyze; the default
  // threshold (error) lets it pass, as above.
  const strict = await trellis(['analyze', '--control-plane', url, '-n', A, '--failure-threshold', 'warning']);
  t.is(strict.code, 79, strict.stderr);
  t.is(strict.stdout, analyzed.stdout);
  t.deepEqual((await analyzeControlPlane(url, [B])).findings, [], 'only the namespaces asked for');
  const clean = await trellis(['analyze', '--control-plane', url, '-n', B, '--failure-threshold', 'info']);
  t.is(clean.code, 0, 'no findings: exit 0 whatever the threshold');

  // /debug/diff takes a POST of at most 1 MiB.
  const get = await fetch(`${url}/debug/diff`);
  t.is(get.status, 405);
  const big = await fetch(`${url}/debug/diff`, { method: 'POST', body: `# ${'x'.repeat(1 << 20)}\n` });
  t.is(big.status, 413);
  t.regex(((await big.json()) as { error: string }).error, /larger than 1048576 bytes/);
});
