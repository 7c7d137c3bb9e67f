// `trellis describe pod` says what translation left out of the Pod's proxy config and why: the notes the
// listener and route builders write (two Services on one cluster IP and port: the second gets no listener; a
// headless Service's TCP port: no listener), translated for the Pod's connected proxy when there is one,
// else for the Envoy sidecar the injector would give it. The text output lists them under the Pod.
import test from 'ava';
import { describePod } from '../../control-plane/inspect/describe.js';
import { renderDescription } from '../../control-plane/debug-cli/describe.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { namespace, pod, service } from '../model/_objects.js';
import { grpcProxy, snapshotOf } from '../translate/_snapshots.js';

const objects: MeshObject[] = [
  namespace('shop'),
  pod('shop', 'client-0', { app: 'client' }, 'client'),
  service('shop', 'db-a', [{ name: 'tcp', port: 5432 }], { clusterIP: '10.96.0.9' }),
  service('shop', 'db-b', [{ name: 'tcp', port: 5432 }], { clusterIP: '10.96.0.9' }),
  service('shop', 'cache', [{ name: 'tcp', port: 6379 }], { clusterIP: 'None' }),
];

test('describe pod lists what its config left out, and why', (t) => {
  const snapshot = snapshotOf(objects);
  const d = describePod(snapshot, defaultMeshConfig, 'shop', 'client-0', { app: 'client' }, 'client');
  t.deepEqual(d.leftOut, [
    'cache.shop.svc.cluster.local:6379: TCP port of a Service without a cluster IP; no listener',
    'db-b.shop.svc.cluster.local:5432: 10.96.0.9_5432 is already the listener of another service; left out',
  ]);
  const text = renderDescription({ ...d, proxies: [] }, Date.now());
  t.regex(text, /\n {2}Left out of its config:\n {4}cache\.shop\.svc\.cluster\.local:6379: TCP port/);
  t.regex(text, /\n {4}db-b\.shop\.svc\.cluster\.local:5432: 10\.96\.0\.9_5432 is already the listener/);
});

test('describe pod translates for the connected proxy: a proxyless client has no TCP listeners to leave out', (t) => {
  const snapshot = snapshotOf(objects);
  const proxy = grpcProxy('shop', { id: 'client-0.shop', labels: { app: 'client' } });
  const d = describePod(snapshot, defaultMeshConfig, 'shop', 'client-0', { app: 'client' }, 'client', proxy);
  t.deepEqual(d.leftOut, []);
  t.notRegex(renderDescription({ ...d, proxies: [] }, Date.now()), /Left out/);
});
