// KubeSource follows ServiceEntries (networking.trellis.dev/v1alpha1, `serviceentries`) on a real
// kube-apiserver: an entry applied with kubectl becomes a service of the snapshot (its hosts, ports,
// endpoints and the ServiceEntry marker) with an Accepted status; a VirtualService names its host; the API
// server refuses a CEL-invalid edit; an edit and a delete reach the snapshot.
import anyTest from 'ava';
import { findService, virtualServiceFor } from '../../control-plane/model/lookup.js';
import { useCluster } from '../helpers/cluster.js';
import { apply, installCrds, nextSnapshot, startKubeSource, statusOf } from './kube-helpers.js';

const kube = useCluster(anyTest);

const entry = (resolution: string, endpoints: string): string => `
apiVersion: networking.trellis.dev/v1alpha1
kind: ServiceEntry
metadata: { name: payments }
spec:
  hosts: [payments.vms.example.com]
  resolution: ${resolution}
  ports: [{ number: 9090, name: grpc, protocol: GRPC }]
  endpoints: ${endpoints}
`;

kube.test(
  'KubeSource follows ServiceEntries: create, route, an edit the API server refuses, an edit, delete',
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('service-entries');
    const source = await startKubeSource(cluster);
    t.teardown(() => source.stop());
    t.true(
      source.status().some((k) => k.kind === 'ServiceEntry' && k.synced),
      JSON.stringify(source.status()),
    );
    const host = 'payments.vms.example.com';

    await apply(cluster, ns, entry('STATIC', '[{ address: 192.0.2.21 }]'));
    const created = await nextSnapshot(
      source,
      'the ServiceEntry host as a service',
      (s) => findService(s, host, ns) && s,
    );
    const service = findService(created, host, ns)!;
    t.is(service.serviceEntry?.resolution, 'STATIC');
    t.deepEqual(
      service.ports.map((p) => [p.port, p.protocol, p.endpoints.map((e) => e.address)]),
      [[9090, 'GRPC', ['192.0.2.21']]],
    );
    t.is(statusOf(created, 'ServiceEntry', ns, 'payments')?.accepted, true);

    await apply(
      cluster,
      ns,
      `
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: payments }
spec:
  hosts: [${host}]
  http: [{ timeout: 2s, route: [{ destination: { host: ${host} } }] }]
`,
    );
    await nextSnapshot(
      source,
      'the VirtualService on the host',
      (s) => virtualServiceFor(s, host, ns)?.name === 'payments',
    );

    // NONE with endpoints: the CEL rule refuses it at the API server, so the stored entry stays as it was;
    // a DNS edit is taken.
    const refused = await cluster.kubectl(['apply', '-n', ns, '-f', '-'], {
      input: entry('NONE', '[{ address: 192.0.2.21 }]'),
      allowFailure: true,
    });
    t.not(refused.code, 0);
    t.regex(refused.stderr, /must be empty when resolution is NONE/);
    await apply(cluster, ns, entry('DNS', '[{ address: vm1.example.com }]'));
    await nextSnapshot(
      source,
      'the DNS edit',
      (s) => findService(s, host, ns)?.ports[0]?.endpoints[0]?.address === 'vm1.example.com',
    );

    await cluster.kubectl(['delete', '-n', ns, 'serviceentry/payments']);
    await nextSnapshot(
      source,
      'the entry gone',
      (s) => !findService(s, host, ns) && !statusOf(s, 'ServiceEntry', ns, 'payments'),
    );
    t.pass();
  },
);
