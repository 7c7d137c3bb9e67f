// Endpoint localities in Kubernetes mode, against a real kube-apiserver (test/helpers/cluster.ts): KubeSource
// follows Nodes, an endpoint takes its region and zone from the Node its EndpointSlice entry names, a Node
// relabelled moves its endpoints (and its other labels, heartbeats and annotations do not rebuild anything),
// and the translated EDS prioritises by the proxy's locality. Skipped with one line when the peers are not
// built (failed under CI=true).
import anyTest from 'ava';
import { toJson } from '../translate/_snapshots.js';
import { loadAssignment } from '../../control-plane/translate/endpoints.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import { useCluster } from '../helpers/cluster.js';
import { apply, installCrds, nextSnapshot, startKubeSource } from './kube-helpers.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';

const kube = useCluster(anyTest);

const node = (name: string, zone: string, extra = ''): string => `
apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: { topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: ${zone}${extra} }
`;

const workload = (ns: string): string => `
apiVersion: v1
kind: Service
metadata: { name: reviews }
spec:
  ports: [{ name: grpc, port: 9080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-1
  labels: { kubernetes.io/service-name: reviews }
addressType: IPv4
ports: [{ name: grpc, port: 9080, protocol: TCP }]
endpoints:
  - addresses: ["10.1.0.1"]
    nodeName: ${ns}-node-a
  - addresses: ["10.1.0.2"]
    nodeName: ${ns}-node-b
---
apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 3 }
`;

function zones(snapshot: MeshSnapshot, fqdn: string): string[] | undefined {
  const endpoints = snapshot.index.servicesByFqdn.get(fqdn)?.ports[0]?.endpoints;
  if (!endpoints || endpoints.length < 2) return undefined;
  return endpoints.map((e) => `${e.address} ${e.locality.region}/${e.locality.zone}`);
}

kube.test(
  'endpoints take their locality from their Node; EDS prioritises by the proxy locality',
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('locality');
    const source = await startKubeSource(cluster);
    t.teardown(() => source.stop());
    const fqdn = `reviews.${ns}.svc.cluster.local`;
    await apply(cluster, ns, `${node(`${ns}-node-a`, 'zone-a')}---${node(`${ns}-node-b`, 'zone-b')}`);
    t.teardown(() => cluster.kubectl(['delete', 'node', `${ns}-node-a`, `${ns}-node-b`, '--ignore-not-found']));
    await apply(cluster, ns, workload(ns));

    const first = await nextSnapshot(source, 'endpoints with Node localities', (s) => {
      // The DestinationRule (its outlier detection turns failover on) arrives through its own watch.
      const z = zones(s, fqdn);
      const rule = s.destinationRules.some((d) => d.host === fqdn);
      return rule && z?.join(',') === '10.1.0.1 r1/zone-a,10.1.0.2 r1/zone-b' ? s : undefined;
    });
    const proxy = {
      id: `client.${ns}`,
      cluster: '',
      namespace: ns,
      serviceAccount: 'default',
      labels: {},
      instanceIps: [],
      proxyType: 'grpc' as const,
      trustDomain: 'cluster.local',
      locality: { region: 'r1', zone: 'zone-b', subZone: '' },
      userAgent: '',
    };
    const cla = toJson(loadAssignment({ snapshot: first, proxy, mesh: defaultMeshConfig }, `outbound|9080||${fqdn}`));
    t.deepEqual(
      (cla.endpoints as { locality: { zone: string }; priority?: number }[]).map((e) => [
        e.locality.zone,
        e.priority ?? 0,
      ]),
      [
        ['zone-a', 1],
        ['zone-b', 0],
      ],
    );

    // A label the model does not read: no new snapshot. The zone label: the endpoint moves.
    const version = source.current().version;
    await cluster.kubectl(['label', 'node', `${ns}-node-a`, 'example.com/rack=7']);
    await cluster.kubectl(['label', 'node', `${ns}-node-a`, '--overwrite', 'topology.kubernetes.io/zone=zone-c']);
    const moved = await nextSnapshot(source, 'the endpoint of node-a in zone-c', (s) =>
      zones(s, fqdn)?.[0] === '10.1.0.1 r1/zone-c' ? s : undefined,
    );
    t.is(moved.version, version + 1, 'the unrelated label published a snapshot of its own');
  },
);
