// MeshSource: the store → snapshot loop any source (FileSource, KubeSource) builds on.
import test from 'ava';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { virtualServiceFor } from '../../control-plane/model/lookup.js';
import { MeshSource } from '../../control-plane/sources/mesh-source.js';
import { ObjectStore } from '../../control-plane/sources/object-store.js';
import { namespace, service, virtualService } from '../model/_objects.js';

function setup() {
  const store = new ObjectStore();
  const source = new MeshSource(store, { validate: validateRoutingResource, formatIssue });
  let changes = 0;
  source.onChange(() => changes++);
  return { store, source, changes: () => changes };
}

test('nothing is published before the first full read; then one snapshot per effective batch', (t) => {
  const { store, source, changes } = setup();
  t.false(source.ready());
  t.is(source.current().version, 0);
  store.update((b) => b.put(service('shop', 'cart', [{ name: 'http', port: 80 }])));
  store.update((b) => b.put(namespace('shop')));
  t.is(changes(), 0);
  t.is(source.current().version, 0);

  source.markReady();
  t.true(source.ready());
  t.is(changes(), 1);
  t.is(source.current().version, 1);
  t.is(source.current().services.length, 1);

  store.update((b) => {
    b.put(service('shop', 'a', [{ name: 'http', port: 80 }]));
    b.put(service('shop', 'b', [{ name: 'http', port: 80 }]));
  });
  t.is(changes(), 2);
  t.is(source.current().version, 2);

  // A batch that changes nothing publishes nothing; nor does a second markReady.
  store.update((b) => b.put(service('shop', 'a', [{ name: 'http', port: 80 }])));
  t.is(changes(), 2);
  source.markReady();
  t.is(changes(), 2);
});

test('a routing resource that turns invalid keeps its last accepted version across snapshots', (t) => {
  const { store, source } = setup();
  source.markReady();
  const spec = { hosts: ['cart.shop'], http: [{ route: [{ destination: { host: 'cart.shop' } }], timeout: '1s' }] };
  store.update((b) => b.put(virtualService('default', 'cart', spec, { generation: 1 })));
  t.is(virtualServiceFor(source.current(), 'cart.shop', 'default')?.generation, 1);

  const broken = { ...spec, http: [{ ...spec.http[0]!, timeout: 'soon' }] };
  store.update((b) => b.put(virtualService('default', 'cart', broken, { generation: 2 })));
  const s = source.current();
  t.true(virtualServiceFor(s, 'cart.shop', 'default')!.stale);
  t.is(virtualServiceFor(s, 'cart.shop', 'default')!.spec.http![0]!.timeout, '1s');
  const status = s.statuses[0]!;
  t.like(status, { accepted: false, reason: 'Invalid', generation: 2 });
  t.regex(status.message, /^spec\.http\[0\]\.timeout: .*; the last accepted version \(generation 1\) stays in effect$/);

  store.update((b) => b.delete('VirtualService', 'default', 'cart'));
  t.is(virtualServiceFor(source.current(), 'cart.shop', 'default'), undefined);
});

test('source problems reach the snapshot', (t) => {
  const { store, source, changes } = setup();
  source.markReady();
  store.update((b) => b.setProblems('files', [{ severity: 'error', message: 'x.yaml#1: does not parse: oops' }]));
  t.is(changes(), 2);
  t.deepEqual(
    source.current().problems.map((p) => p.message),
    ['x.yaml#1: does not parse: oops'],
  );
});
