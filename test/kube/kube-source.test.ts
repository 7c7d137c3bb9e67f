// KubeSource against a real kube-apiserver (test/helpers/cluster.ts): the first full sync makes it ready,
// and creating, updating and deleting Services, EndpointSlices, Pods, VirtualServices, DestinationRules
// and PeerAuthentications with kubectl shows in the published snapshots (each awaited through change events,
// with a deadline). Skipped with one line when the peers are not built (failed under CI=true).
import anyTest from 'ava';
import { endpointsFor, virtualServiceFor } from '../../control-plane/model/lookup.js';
import { workloadMtls } from '../../control-plane/model/peer-authentication.js';
import { useCluster } from '../helpers/cluster.js';
import { apply, installCrds, nextSnapshot, recordingLogger, startKubeSource, statusOf } from './kube-helpers.js';

const kube = useCluster(anyTest);

const service = (port: number): string => `
apiVersion: v1
kind: Service
metadata: { name: reviews }
spec:
  ports: [{ name: http, port: ${port}, targetPort: 9080 }]
`;
const slice = (address: string): string => `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-1
  labels: { kubernetes.io/service-name: reviews }
addressType: IPv4
ports: [{ name: http, port: 9080, protocol: TCP }]
endpoints:
  - addresses: ["${address}"]
    conditions: { ready: true }
    targetRef: { kind: Pod, name: reviews-a }
`;
const pod = (version: string): string => `
apiVersion: v1
kind: Pod
metadata:
  name: reviews-a
  labels: { app: reviews, version: ${version} }
spec:
  containers: [{ name: app, image: example.invalid/reviews:1 }]
`;
const virtualService = (timeout: string): string => `
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
    - timeout: ${timeout}
      route: [{ destination: { host: reviews, subset: v1 } }]
`;
const destinationRule = (subsets: string[]): string => `
apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets:
${subsets.map((s) => `    - { name: ${s}, labels: { version: ${s} } }`).join('\n')}
`;

kube.test('KubeSource syncs every kind, then follows create, update and delete of each', async (t, cluster) => {
  await installCrds(cluster);
  const ns = await cluster.createNamespace('kube-source');
  const { logger, records } = recordingLogger();
  const source = await startKubeSource(cluster, { logger });
  t.teardown(() => source.stop());
  t.true(source.ready());
  t.true(
    source.status().every((k) => k.synced && k.lists === 1),
    JSON.stringify(source.status()),
  );
  t.true(records.some((r) => r.msg === 'kubernetes: first full sync of every kind; ready'));
  await nextSnapshot(source, `namespace ${ns}`, (s) => s.index.namespaces.has(ns));
  const fqdn = `reviews.${ns}.svc.cluster.local`;

  // Create.
  await apply(
    cluster,
    ns,
    [service(9080), slice('10.1.0.5'), pod('v1'), virtualService('5s'), destinationRule(['v1'])].join('\n---\n'),
  );
  await nextSnapshot(source, 'the created objects', (s) => {
    const endpoints = endpointsFor(s, fqdn, 9080, 'v1', ns);
    const vs = virtualServiceFor(s, fqdn, ns);
    return endpoints.length === 1 && endpoints[0]?.labels.version === 'v1' && vs?.spec.http?.[0]?.timeout === '5s';
  });
  let snapshot = source.current();
  t.deepEqual(
    snapshot.services.find((x) => x.fqdn === fqdn)?.ports.map((p) => [p.port, p.protocol]),
    [[9080, 'HTTP']],
  );
  t.is(endpointsFor(snapshot, fqdn, 9080, 'v1', ns)[0]?.address, '10.1.0.5');
  t.is(statusOf(snapshot, 'VirtualService', ns, 'reviews')?.accepted, true);
  t.is(statusOf(snapshot, 'DestinationRule', ns, 'reviews')?.accepted, true);
  t.is(statusOf(snapshot, 'VirtualService', ns, 'reviews')?.generation, 1);
  // The resourceVersion is in the informer's live object (the status writer reads it there), never in
  // the store or the snapshot: it changes with every write, most of which change nothing the model reads.
  t.truthy(source.live('VirtualService', ns, 'reviews')?.metadata?.resourceVersion);
  t.deepEqual(statusOf(snapshot, 'VirtualService', ns, 'reviews')?.origin, {});

  // Update each kind.
  await apply(cluster, ns, service(8080));
  await nextSnapshot(
    source,
    'the Service port 8080',
    (s) => s.services.find((x) => x.fqdn === fqdn)?.ports[0]?.port === 8080,
  );
  await apply(cluster, ns, slice('10.1.0.6'));
  await nextSnapshot(
    source,
    'the new endpoint address',
    (s) => endpointsFor(s, fqdn, 8080, 'v1', ns)[0]?.address === '10.1.0.6',
  );
  await cluster.kubectl(['label', 'pod', '-n', ns, 'reviews-a', 'version=v2', '--overwrite']);
  await nextSnapshot(
    source,
    'the Pod relabelled v2',
    (s) =>
      endpointsFor(s, fqdn, 8080, 'v1', ns).length === 0 &&
      endpointsFor(s, fqdn, 8080, undefined, ns)[0]?.labels.version === 'v2',
  );
  await apply(cluster, ns, virtualService('7s'));
  await nextSnapshot(
    source,
    'the VirtualService timeout 7s',
    (s) => virtualServiceFor(s, fqdn, ns)?.spec.http?.[0]?.timeout === '7s',
  );
  t.is(statusOf(source.current(), 'VirtualService', ns, 'reviews')?.generation, 2);
  await apply(cluster, ns, destinationRule(['v1', 'v2']));
  await nextSnapshot(source, 'subset v2 selecting the Pod', (s) => endpointsFor(s, fqdn, 8080, 'v2', ns).length === 1);

  // Delete each kind.
  await cluster.kubectl(['delete', '-n', ns, 'virtualservice/reviews', 'destinationrule/reviews']);
  await nextSnapshot(
    source,
    'the routing resources gone',
    (s) =>
      !virtualServiceFor(s, fqdn, ns) &&
      !statusOf(s, 'DestinationRule', ns, 'reviews') &&
      !statusOf(s, 'VirtualService', ns, 'reviews'),
  );
  await cluster.kubectl(['delete', '-n', ns, 'pod/reviews-a', '--grace-period=0', '--force']);
  await nextSnapshot(source, 'the Pod gone (endpoint without labels)', (s) => {
    const e = endpointsFor(s, fqdn, 8080, undefined, ns)[0];
    return e !== undefined && Object.keys(e.labels).length === 0 && e.pod?.name === 'reviews-a';
  });
  await cluster.kubectl(['delete', '-n', ns, 'endpointslice/reviews-1']);
  await nextSnapshot(source, 'no endpoints', (s) => endpointsFor(s, fqdn, 8080, undefined, ns).length === 0);
  await cluster.kubectl(['delete', '-n', ns, 'service/reviews']);
  snapshot = await nextSnapshot(source, 'the Service gone', (s) => !s.index.servicesByFqdn.has(fqdn) && s);
  t.false(snapshot.index.servicesByFqdn.has(fqdn));
  // Nothing failed, so nothing was relisted.
  t.true(
    source.status().every((k) => k.lists === 1 && k.errors === 0),
    JSON.stringify(source.status()),
  );
});

const peerAuthentication = (name: string, spec: string): string => `
apiVersion: security.trellis.dev/v1alpha1
kind: PeerAuthentication
metadata: { name: ${name} }
spec: ${spec}
`;

kube.test(
  'KubeSource follows PeerAuthentications (security.trellis.dev): create, update, delete',
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('kube-source-pa');
    const source = await startKubeSource(cluster);
    t.teardown(() => source.stop());
    t.true(
      source.status().some((k) => k.kind === 'PeerAuthentication' && k.synced),
      JSON.stringify(source.status()),
    );
    const web = { app: 'web' };
    const modeOf = (labels: Record<string, string>) => (s: Parameters<typeof workloadMtls>[0]) =>
      workloadMtls(s, ns, labels, 'PERMISSIVE').mode;

    await apply(cluster, ns, peerAuthentication('default', '{ mtls: { mode: STRICT } }'));
    await nextSnapshot(source, 'the namespace policy', (s) => modeOf(web)(s) === 'STRICT');
    t.like(statusOf(source.current(), 'PeerAuthentication', ns, 'default'), { accepted: true, generation: 1 });
    t.truthy(source.live('PeerAuthentication', ns, 'default')?.metadata?.resourceVersion);
    t.deepEqual(statusOf(source.current(), 'PeerAuthentication', ns, 'default')?.origin, {});

    await apply(
      cluster,
      ns,
      peerAuthentication(
        'web',
        "{ selector: { matchLabels: { app: web } }, portLevelMtls: { '8080': { mode: DISABLE } } }",
      ),
    );
    const s = await nextSnapshot(source, 'the workload policy', (x) =>
      x.peerAuthentications.find((p) => p.namespace === ns && p.name === 'web') ? x : undefined,
    );
    t.deepEqual(workloadMtls(s, ns, web, 'PERMISSIVE').ports.get(8080), 'DISABLE');

    await apply(cluster, ns, peerAuthentication('default', '{ mtls: { mode: DISABLE } }'));
    await nextSnapshot(source, 'the namespace policy updated', (x) => modeOf({ app: 'other' })(x) === 'DISABLE');
    t.is(statusOf(source.current(), 'PeerAuthentication', ns, 'default')?.generation, 2);

    await cluster.kubectl(['delete', '-n', ns, 'peerauthentication/default', 'pa/web']);
    await nextSnapshot(
      source,
      'the policies gone',
      (x) => modeOf(web)(x) === 'PERMISSIVE' && !statusOf(x, 'PeerAuthentication', ns, 'web'),
    );
    t.pass();
  },
);
