// ServiceEntry end to end: `trellis control-plane --config-dir` (a real process) translates a ServiceEntry
// for a service outside the mesh, a plain gRPC server on 127.0.0.1 that knows nothing of xDS, and real
// @grpc/grpc-js-xds clients reach it by the entry's host: STATIC resolution (EDS over the entry's IP
// endpoint) with a VirtualService's retries and timeout applied by the client, edited live; and DNS
// resolution (a LOGICAL_DNS cluster that grpc-js resolves itself); an edit of the entry's endpoint moves a
// running client. Nobody NACKs.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { echoService, type EchoReply, type EchoRequest } from '../../examples/demo/echo.js';
import {
  assertNoNacks,
  freePorts,
  namespaceManifest,
  tally,
  useMeshControlPlane,
  virtualServiceManifest,
  XdsEchoClient,
  type Manifest,
} from '../helpers/mesh-e2e.js';

register();

const NS = 'egress';
const mesh = useMeshControlPlane(test);

type Mode = { kind: 'ok' } | { kind: 'fail-every-other' } | { kind: 'sleep'; ms: number };

/** A plain grpc-js server (no xDS) on 127.0.0.1: the "external" service. */
async function startPlainServer(name: string, port: number) {
  const server = new grpc.Server();
  let mode: Mode = { kind: 'ok' };
  let served = 0;
  const timers = new Set<NodeJS.Timeout>();
  server.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      served++;
      const reply = { message: call.request.message, server: name };
      if (mode.kind === 'fail-every-other' && served % 2 === 1) {
        callback({ code: grpc.status.UNAVAILABLE, details: `${name}: injected failure` });
      } else if (mode.kind === 'sleep') {
        const timer = setTimeout(() => {
          timers.delete(timer);
          callback(null, reply);
        }, mode.ms);
        timers.add(timer);
      } else callback(null, reply);
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return {
    served: () => served,
    setMode: (m: Mode) => {
      mode = m;
      served = 0;
    },
    close: () => {
      for (const timer of timers) clearTimeout(timer);
      server.forceShutdown();
    },
  };
}

function serviceEntry(name: string, spec: Record<string, unknown>): Manifest {
  return {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: NS },
    spec,
  };
}

test('a STATIC ServiceEntry host is reached by proxyless gRPC, with the VirtualService retries and timeout (edited live)', async (t) => {
  const [backendPort] = await freePorts(1);
  const backend = await startPlainServer('payments-vm', backendPort!);
  t.teardown(() => backend.close());
  const host = 'payments.vms.example.com';
  const entry = serviceEntry('payments', {
    hosts: [host],
    location: 'MESH_EXTERNAL',
    resolution: 'STATIC',
    ports: [{ number: 7070, name: 'grpc', protocol: 'GRPC', targetPort: backendPort }],
    endpoints: [{ address: '127.0.0.1' }],
  });
  const retries = virtualServiceManifest('payments', NS, {
    hosts: [host],
    http: [{ retries: { attempts: 3, retryOn: 'unavailable' }, route: [{ destination: { host } }] }],
  });
  await mesh.dir.write('payments', [namespaceManifest(NS), entry, retries]);

  const client = new XdsEchoClient(`${host}:7070`, mesh.controlPlane, 'payments-client.egress', { namespace: NS });
  t.teardown(() => client.close());
  await client.ready();
  t.deepEqual(tally(await client.calls(20, { concurrency: 4 })), { 'payments-vm': 20 });

  // Every other call fails at the server: the VirtualService's retries (grpc-js retries UNAVAILABLE) hide it.
  backend.setMode({ kind: 'fail-every-other' });
  const retried = await client.calls(40, { concurrency: 1 });
  t.deepEqual(tally(retried), { 'payments-vm': 40 }, 'every call succeeded through a retry');
  t.true(backend.served() >= 60, `the server saw ${backend.served()} attempts for 40 calls`);

  // Live edit: a 300 ms timeout and no retries. A call to a server that sleeps 6 s now ends with
  // DEADLINE_EXCEEDED well before the client's own 8 s deadline.
  backend.setMode({ kind: 'sleep', ms: 6_000 });
  await mesh.dir.write('payments', [
    namespaceManifest(NS),
    entry,
    virtualServiceManifest('payments', NS, {
      hosts: [host],
      http: [{ timeout: '300ms', route: [{ destination: { host } }] }],
    }),
  ]);
  let timedOut: { code: grpc.status; ms: number } | undefined;
  const deadline = Date.now() + 30_000;
  while (!timedOut && Date.now() < deadline) {
    const r = await client.call({ deadlineMs: 8_000 });
    if (!r.ok && r.code === grpc.status.DEADLINE_EXCEEDED && r.ms < 4_000) timedOut = r;
  }
  t.truthy(timedOut, 'no call was cut short by the VirtualService timeout within 30 s of the edit');
  t.log(`timeout from the VirtualService: DEADLINE_EXCEEDED after ${timedOut?.ms.toFixed(0)} ms`);
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id === 'payments-client.egress');
});

test('a DNS ServiceEntry host is a LOGICAL_DNS cluster that grpc-js resolves itself', async (t) => {
  const [backendPort] = await freePorts(1);
  const backend = await startPlainServer('ledger-dns', backendPort!);
  t.teardown(() => backend.close());
  const host = 'ledger.dns.example.com';
  // The endpoint is a DNS name: `localhost`, which grpc-js's resolver answers without a DNS server.
  await mesh.dir.write('ledger', [
    namespaceManifest(NS),
    serviceEntry('ledger', {
      hosts: [host],
      resolution: 'DNS',
      ports: [{ number: 7071, name: 'grpc', protocol: 'GRPC' }],
      endpoints: [{ address: 'localhost', ports: { grpc: backendPort } }],
    }),
  ]);
  const client = new XdsEchoClient(`${host}:7071`, mesh.controlPlane, 'ledger-client.egress', { namespace: NS });
  t.teardown(() => client.close());
  await client.ready();
  t.deepEqual(tally(await client.calls(10)), { 'ledger-dns': 10 });
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id === 'ledger-client.egress');
});

test('an edit of a ServiceEntry endpoint moves a running proxyless client to the new backend', async (t) => {
  const [portA, portB] = await freePorts(2);
  const a = await startPlainServer('vm-a', portA!);
  const b = await startPlainServer('vm-b', portB!);
  t.teardown(() => {
    a.close();
    b.close();
  });
  const host = 'inventory.vms.example.com';
  const at = (port: number): Manifest =>
    serviceEntry('inventory', {
      hosts: [host],
      resolution: 'STATIC',
      ports: [{ number: 7072, name: 'grpc', protocol: 'GRPC' }],
      endpoints: [{ address: '127.0.0.1', ports: { grpc: port } }],
    });
  await mesh.dir.write('inventory', [namespaceManifest(NS), at(portA!)]);
  const client = new XdsEchoClient(`${host}:7072`, mesh.controlPlane, 'inventory-client.egress', { namespace: NS });
  t.teardown(() => client.close());
  await client.ready();
  t.deepEqual(tally(await client.calls(10)), { 'vm-a': 10 });

  await mesh.dir.write('inventory', [namespaceManifest(NS), at(portB!)]);
  const deadline = Date.now() + 30_000;
  let moved = false;
  while (!moved && Date.now() < deadline) moved = (await client.call()).ok && b.served() > 0;
  t.true(moved, 'no call reached vm-b within 30 s of the edit');
  t.deepEqual(tally(await client.calls(10)), { 'vm-b': 10 });
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id === 'inventory-client.egress');
});
