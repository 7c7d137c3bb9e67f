// Locality failover end to end: a mesh directory with Nodes in two zones (topology labels), EndpointSlices
// whose endpoints name their Node and zone, and a DestinationRule with outlier detection (which turns on
// Istio's locality failover), translated by `trellis control-plane --config-dir` (a real process) and
// followed by real @grpc/grpc-js-xds clients (priorities, grpc-js-xds.md §2 "EDS") against xDS-enabled
// servers (A36). A client in zone A uses only the zone-A server; when that server stops, or keeps failing
// until outlier detection ejects it, the client fails over to zone B. A client in zone B uses zone B. A
// client that announces no locality but names its Node (NODE_NAME) is in that Node's zone.
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import {
  assertNoNacks,
  destinationRuleManifest,
  fqdn,
  freePorts,
  namespaceManifest,
  serviceManifest,
  startXdsEchoServer,
  tally,
  useMeshControlPlane,
  XdsEchoClient,
  type CallResult,
  type Manifest,
  type XdsEchoServer,
} from '../helpers/mesh-e2e.js';

register();

const NS = 'locality';
const REGION = 'r1';

const mesh = useMeshControlPlane(test);

function nodeManifest(name: string, zone: string): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'topology.kubernetes.io/region': REGION, 'topology.kubernetes.io/zone': zone } },
  };
}

// The Nodes, written once (the tests run concurrently; each writes its own service file).
let nodesWritten: Promise<void> | undefined;
const writeNodes = (): Promise<void> =>
  (nodesWritten ??= mesh.dir.write('nodes', [
    nodeManifest('node-zone-a', 'zone-a'),
    nodeManifest('node-zone-b', 'zone-b'),
  ]));

/** A Pod and an EndpointSlice (127.0.0.1:`port`) on Node `node-<zone>`, as the endpoint controller writes them. */
function backend(service: string, pod: string, port: number, zone: string): Manifest[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod, namespace: NS, labels: { app: service } },
      spec: {
        serviceAccountName: service,
        nodeName: `node-${zone}`,
        containers: [{ name: 'app', image: 'echo', ports: [{ name: 'grpc', containerPort: port }] }],
      },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: pod, namespace: NS, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port, protocol: 'TCP' }],
      endpoints: [
        {
          addresses: ['127.0.0.1'],
          conditions: { ready: true },
          nodeName: `node-${zone}`,
          zone,
          targetRef: { kind: 'Pod', namespace: NS, name: pod },
        },
      ],
    },
  ];
}

interface Deployed {
  readonly a: XdsEchoServer;
  readonly b: XdsEchoServer;
  /** A client in `zone`: announced as its `node.locality`, or with `byNode` only by naming the zone's Node (NODE_NAME). */
  client(zone: string, options?: { byNode?: boolean }): Promise<XdsEchoClient>;
  close(): Promise<void>;
}

/** Service `service` with one backend in zone-a and one in zone-b, and `policy` as its DestinationRule's trafficPolicy. */
async function deploy(t: ExecutionContext, service: string, policy: Record<string, unknown>): Promise<Deployed> {
  const [portA, portB] = (await freePorts(2)) as [number, number];
  await writeNodes();
  await mesh.dir.write(service, [
    namespaceManifest(NS),
    serviceManifest(service, NS),
    ...backend(service, `${service}-a`, portA, 'zone-a'),
    ...backend(service, `${service}-b`, portB, 'zone-b'),
    destinationRuleManifest(service, NS, { host: service, trafficPolicy: policy }),
  ]);
  const start = (pod: string, port: number) =>
    startXdsEchoServer({ name: pod, port, controlPlane: mesh.controlPlane, namespace: NS });
  const [a, b] = await Promise.all([start(`${service}-a`, portA), start(`${service}-b`, portB)]);
  const clients: XdsEchoClient[] = [];
  const deployed: Deployed = {
    a,
    b,
    async client(zone, options = {}) {
      const client = new XdsEchoClient(
        `${fqdn(service, NS)}:8080`,
        mesh.controlPlane,
        `${service}-client-${zone}${options.byNode ? '-by-node' : ''}.${NS}`,
        options.byNode
          ? { namespace: NS, locality: {}, metadata: { NODE_NAME: `node-${zone}` } }
          : { namespace: NS, locality: { region: REGION, zone } },
      );
      clients.push(client);
      await client.ready();
      return client;
    },
    async close() {
      for (const c of clients) c.close();
      await Promise.all([a.close(), b.close()]);
    },
  };
  t.teardown(() => deployed.close());
  return deployed;
}

/** Calls until `done` holds for a window of `n` calls; that window, or undefined after `timeoutMs`. */
async function untilWindow(
  client: XdsEchoClient,
  n: number,
  done: (window: readonly CallResult[]) => boolean,
  timeoutMs = 30_000,
): Promise<{ window: CallResult[]; before: CallResult[] } | undefined> {
  const deadline = performance.now() + timeoutMs;
  const before: CallResult[] = [];
  while (performance.now() < deadline) {
    const window = await client.calls(n, { deadlineMs: 2_000 });
    if (done(window)) return { window, before };
    before.push(...window);
  }
  return undefined;
}

const OUTLIER = { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '60s', maxEjectionPercent: 50 };

test('a client in zone A uses the zone-A server only; when it stops, the client fails over to zone B', async (t) => {
  const svc = await deploy(t, 'stop', { outlierDetection: OUTLIER });
  const inA = await svc.client('zone-a');
  const inB = await svc.client('zone-b');
  t.deepEqual(tally(await inA.calls(30)), { 'stop-a': 30 }, 'zone A: priority 0 is zone A');
  t.deepEqual(tally(await inB.calls(30)), { 'stop-b': 30 }, 'zone B: priority 0 is zone B');

  await svc.a.close();
  const failedOver = await untilWindow(inA, 20, (w) => w.every((r) => r.ok && r.server === 'stop-b'));
  t.truthy(failedOver, 'the zone-A client did not move to zone B within 30 s of the zone-A server stopping');
  t.log(`calls while failing over: ${JSON.stringify(tally(failedOver?.before ?? []))}`);
  t.deepEqual(tally(await inA.calls(30)), { 'stop-b': 30 });
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id.startsWith('stop-'));
});

test("a client that announces no locality but names its Node (NODE_NAME) gets that Node's zone first", async (t) => {
  // A client Pod that no Service selects has no endpoint to take a locality from: its Node's labels give it
  // one (as Istio's registry does from the Pod's spec.nodeName), so it prefers its own zone.
  const svc = await deploy(t, 'bynode', { outlierDetection: OUTLIER });
  const inA = await svc.client('zone-a', { byNode: true });
  const inB = await svc.client('zone-b', { byNode: true });
  t.deepEqual(tally(await inA.calls(30)), { 'bynode-a': 30 }, 'on node-zone-a: priority 0 is zone A');
  t.deepEqual(tally(await inB.calls(30)), { 'bynode-b': 30 }, 'on node-zone-b: priority 0 is zone B');
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id.startsWith('bynode-'));
});

test('a zone-A server that keeps failing is ejected by outlier detection, and traffic fails over to zone B', async (t) => {
  const svc = await deploy(t, 'eject', { outlierDetection: OUTLIER });
  const inA = await svc.client('zone-a');
  t.deepEqual(tally(await inA.calls(20)), { 'eject-a': 20 });

  svc.a.setBehavior({ kind: 'fail', code: grpc.status.UNAVAILABLE });
  const servedByA = svc.a.served();
  const failedOver = await untilWindow(inA, 20, (w) => w.every((r) => r.ok && r.server === 'eject-b'));
  t.truthy(failedOver, 'the failing zone-A server was not ejected within 30 s');
  t.log(
    `before the ejection: ${JSON.stringify(tally(failedOver?.before ?? []))}; zone A saw ${svc.a.served() - servedByA} calls`,
  );
  t.true(svc.a.served() > servedByA, 'the zone-A server never saw a call after it started failing');
  const before = svc.a.served();
  t.deepEqual(tally(await inA.calls(30)), { 'eject-b': 30 });
  t.is(svc.a.served(), before, 'the ejected zone-A server still got calls');
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id.startsWith('eject-'));
});

test('without outlier detection there is no failover order (Istio): both zones share the traffic', async (t) => {
  const svc = await deploy(t, 'flat', { connectionPool: { http: { http2MaxRequests: 100 } } });
  const inA = await svc.client('zone-a');
  const counts = tally(await inA.calls(40));
  t.log(JSON.stringify(counts));
  t.deepEqual(Object.keys(counts).sort(), ['flat-a', 'flat-b']);
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id.startsWith('flat-'));
});

test('distribute: a zone-A client sends about 80% to zone A and 20% to zone B (grpc-js weighs localities)', async (t) => {
  const svc = await deploy(t, 'spread', {
    loadBalancer: {
      localityLbSetting: {
        distribute: [{ from: `${REGION}/zone-a/*`, to: { [`${REGION}/zone-a/*`]: 80, [`${REGION}/zone-b/*`]: 20 } }],
      },
    },
  });
  const inA = await svc.client('zone-a');
  const inB = await svc.client('zone-b');
  const counts = tally(await inA.calls(400, { concurrency: 4 }));
  t.log(JSON.stringify(counts));
  const a = counts['spread-a'] ?? 0;
  const b = counts['spread-b'] ?? 0;
  t.is(a + b, 400, 'every call succeeded');
  // 80/20 by weighted random: 320 expected; ±45 is more than 5 standard deviations (8).
  t.true(a >= 275 && a <= 365, `${a} of 400 to zone A; expected about 320`);
  // No distribute entry matches zone B's client: both localities by endpoint count (50/50).
  const fromB = tally(await inB.calls(100, { concurrency: 4 }));
  t.deepEqual(Object.keys(fromB).sort(), ['spread-a', 'spread-b']);
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id.startsWith('spread-'));
});
