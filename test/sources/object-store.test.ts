import test from 'ava';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { ObjectStore, type StoreEvent } from '../../control-plane/sources/object-store.js';
import { namespace, pod, service } from '../model/_objects.js';

function recorder(store: ObjectStore): StoreEvent[] {
  const events: StoreEvent[] = [];
  store.onChange((e) => events.push(e));
  return events;
}

test('a batch emits one event; an unchanged write emits none', (t) => {
  const store = new ObjectStore();
  const events = recorder(store);
  store.update((b) => {
    b.put(service('shop', 'cart', [{ port: 80 }]));
    b.put(pod('shop', 'cart-0', { app: 'cart' }));
    b.put(namespace('shop'));
  }, 1_000); // when the source saw the change (epoch ms)
  t.deepEqual(events, [
    {
      version: 1,
      changed: ['Namespace//shop', 'Pod/shop/cart-0', 'Service/shop/cart'],
      problemsChanged: false,
      observedAt: 1_000,
    },
  ]);
  t.deepEqual(
    store.list().map((o) => `${o.kind}/${o.namespace}/${o.name}`),
    ['Namespace//shop', 'Pod/shop/cart-0', 'Service/shop/cart'],
  );
  // Equal content in new objects: nothing changed.
  t.is(
    store.update((b) => b.put(service('shop', 'cart', [{ port: 80 }]))),
    undefined,
  );
  t.is(events.length, 1);
  t.is(store.version, 1);

  const before = Date.now();
  store.update((b) => {
    b.put(service('shop', 'cart', [{ port: 81 }]));
    b.delete('Pod', 'shop', 'cart-0');
    b.delete('Pod', 'shop', 'never-there');
  });
  const { observedAt, ...event } = events[1]!;
  t.deepEqual(event, { version: 2, changed: ['Pod/shop/cart-0', 'Service/shop/cart'], problemsChanged: false });
  t.true(observedAt >= before && observedAt <= Date.now(), 'a source that does not say: the time of the update');
  t.is(store.get('Pod', 'shop', 'cart-0'), undefined);
});

test('replace within a scope leaves the rest alone', (t) => {
  const store = new ObjectStore();
  store.update((b) => {
    b.put(service('shop', 'a', [{ port: 80 }]));
    b.put(service('shop', 'b', [{ port: 80 }]));
    b.put(pod('shop', 'p', {}));
  });
  const events = recorder(store);
  store.update((b) =>
    b.replace(
      [service('shop', 'c', [{ port: 80 }]), service('shop', 'a', [{ port: 80 }])],
      (o) => o.kind === 'Service',
    ),
  );
  t.deepEqual(
    store.list().map((o) => `${o.kind}/${o.name}`),
    ['Pod/p', 'Service/a', 'Service/c'],
  );
  t.deepEqual(
    events.map((e) => e.changed),
    [['Service/shop/b', 'Service/shop/c']],
  );
});

test('the origin is part of an object; the same resourceVersion is the same object', (t) => {
  const store = new ObjectStore();
  const a = service('shop', 'cart', [{ port: 80 }]);
  store.update((b) => b.put({ ...a, origin: { file: 'a.yaml', document: 1 } }));
  t.truthy(store.update((b) => b.put({ ...a, origin: { file: 'a.yaml', document: 2 } })));
  store.update((b) => b.put({ ...a, origin: { resourceVersion: '7' } }));
  const changed = { ...service('shop', 'cart', [{ port: 99 }]), origin: { resourceVersion: '7' } } as MeshObject;
  t.is(
    store.update((b) => b.put(changed)),
    undefined,
  );
});

test('problems are kept by scope and change the store', (t) => {
  const store = new ObjectStore();
  const events = recorder(store);
  const p = { severity: 'error' as const, message: 'b.yaml, document 1: does not parse' };
  store.update((b) => b.setProblems('dir-b', [p]));
  store.update((b) => b.setProblems('dir-a', [{ severity: 'info', message: 'a' }]));
  t.is(
    store.update((b) => b.setProblems('dir-b', [{ ...p }])),
    undefined,
  );
  t.deepEqual(
    store.problems().map((x) => x.message),
    ['a', 'b.yaml, document 1: does not parse'],
  );
  store.update((b) => b.setProblems('dir-b', []));
  t.deepEqual(
    store.problems().map((x) => x.message),
    ['a'],
  );
  t.deepEqual(
    events.map((e) => e.problemsChanged),
    [true, true, true],
  );
});

test('nothing is committed when the batch throws', (t) => {
  const store = new ObjectStore();
  t.throws(() =>
    store.update((b) => {
      b.put(namespace('x'));
      throw new Error('boom');
    }),
  );
  t.deepEqual(store.list(), []);
  t.is(store.version, 0);
});
