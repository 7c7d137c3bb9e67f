// MeshSource: the store → snapshot loop any source (FileSource, KubeSource) builds on.
import test from 'ava';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { virtualServiceFor } from '../../control-plane/model/lookup.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
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

test('an update that changes only resourceVersion, status or labels of a routing resource publishes nothing', (t) => {
  const { store, source, changes } = setup();
  source.markReady();
  /** The VirtualService as the informer delivers it: resourceVersion, status, labels and annotations vary. */
  const delivered = (
    resourceVersion: string,
    extra: { status?: object; labels?: object; annotations?: object; generation?: number; timeout?: string } = {},
  ): MeshObject => {
    const spec = {
      hosts: ['cart.shop'],
      http: [{ route: [{ destination: { host: 'cart.shop' } }], timeout: extra.timeout ?? '1s' }],
    };
    const base = virtualService('default', 'cart', spec, {
      generation: extra.generation ?? 1,
      creationTimestamp: '2026-01-01T00:00:00Z',
    });
    const object = base.object as { metadata: object };
    const metadata = {
      ...object.metadata,
      resourceVersion,
      ...(extra.labels ? { labels: extra.labels } : {}),
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
    };
    return {
      ...base,
      object: { ...object, metadata, ...(extra.status ? { status: extra.status } : {}) },
      origin: { resourceVersion },
    } as MeshObject;
  };
  store.update((b) => {
    b.put(namespace('shop'));
    b.put(service('shop', 'cart', [{ name: 'http', port: 80 }]));
    b.put(delivered('10'));
  });
  t.is(changes(), 2);
  const published = source.current();
  t.like(published.statuses[0], { accepted: true, generation: 1 });

  // The echo of the status writer's write, a label, an annotation: each is a store change (the writer
  // needs the new resourceVersion), none a new snapshot.
  const status = {
    observedGeneration: 1,
    conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'accepted' }],
  };
  const events = [
    store.update((b) => b.put(delivered('11', { status }))),
    store.update((b) => b.put(delivered('12', { status, labels: { team: 'a' } }))),
    store.update((b) => b.put(delivered('13', { status, labels: { team: 'a' }, annotations: { note: 'x' } }))),
  ];
  t.true(events.every((e) => e?.changed.includes('VirtualService/default/cart')));
  t.is(changes(), 2);
  t.is(source.current(), published);
  t.deepEqual(source.stats, { rebuilds: 5, published: 2 });
  // The status writer reads the current resourceVersion from the store, not from the snapshot.
  t.is(store.get('VirtualService', 'default', 'cart')?.origin.resourceVersion, '13');

  // A spec change (generation 2) is published, with the status it brings.
  store.update((b) => b.put(delivered('14', { status, generation: 2, timeout: '2s' })));
  t.is(changes(), 3);
  t.is(virtualServiceFor(source.current(), 'cart.shop', 'default')?.spec.http?.[0]?.timeout, '2s');
  t.is(source.current().statuses[0]?.generation, 2);
});
