// inspect/config-diff.ts and json-diff.ts on in-memory snapshots (the real model, validator and translator):
// fields matched by name; a weight change is RDS only; precedence of the change's objects (a replaced object
// keeps its creation time, a new one is stamped in Kubernetes mode and loses a conflict, counts as oldest
// in local mode); an invalid change changes nothing; the live snapshot is left as it was.
import test from 'ava';
import {
  diffChange,
  diffChangeInSlices,
  type ChangeInput,
  type DiffProxy,
} from '../../control-plane/inspect/config-diff.js';
import { jsonDiff } from '../../control-plane/inspect/json-diff.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import type { VirtualServiceSpec } from '../../crds/types.js';
import {
  destinationRule,
  envoyProxy,
  namespace,
  snapshotOf,
  virtualService,
  workload,
} from '../translate/_snapshots.js';

test('jsonDiff matches named list elements by name and reports added, removed and changed fields', (t) => {
  const before = {
    routes: [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 2 },
    ],
    timeout: '1s',
  };
  const after = {
    routes: [
      { name: 'new', weight: 5 },
      { name: 'a', weight: 1 },
      { name: 'b', weight: 3 },
    ],
    retries: 2,
  };
  t.deepEqual(jsonDiff(before, after), [
    { path: 'retries', after: 2 },
    { path: 'routes[name=new]', after: { name: 'new', weight: 5 } },
    { path: 'routes[name=b].weight', before: 2, after: 3 },
    { path: 'timeout', before: '1s' },
  ]);
  t.deepEqual(jsonDiff([1, 2], [1, 3, 4]), [
    { path: '[1]', before: 2, after: 3 },
    { path: '[2]', after: 4 },
  ]);
  t.deepEqual(jsonDiff({ a: { b: [1] } }, { a: { b: [1] } }), []);
});

const NS = 'shop';
const HOST = `reviews.${NS}.svc.cluster.local`;
const OLD = '2026-01-01T00:00:00Z';

function split(v1: number, v2: number): VirtualServiceSpec {
  return {
    hosts: ['reviews'],
    http: [
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: v1 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: v2 },
        ],
      },
    ],
  };
}

function mesh(): MeshObject[] {
  return [
    namespace(NS),
    namespace('other'),
    ...workload(NS, 'reviews', { name: 'http', port: 8080 }, [
      { version: 'v1', address: '10.0.0.1', port: 8080 },
      { version: 'v2', address: '10.0.0.2', port: 8080 },
    ]),
    destinationRule(
      NS,
      'reviews',
      {
        host: 'reviews',
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
      { creationTimestamp: OLD, generation: 3 },
    ),
    virtualService(NS, 'reviews', { ...split(90, 10), exportTo: ['.'] }, { creationTimestamp: OLD, generation: 7 }),
  ];
}

const everything: DiffProxy['subscriptions'] = new Map([
  ['CDS', '*'],
  ['EDS', '*'],
  ['LDS', '*'],
  ['RDS', '*'],
]);

function input(change: MeshObject[], createdAt?: string): ChangeInput {
  const objects = mesh();
  return {
    live: snapshotOf(objects),
    objects,
    change,
    validate: validateRoutingResource,
    formatIssue,
    mesh: defaultMeshConfig,
    proxies: [
      { info: envoyProxy(NS, { id: 'client-0.shop' }), subscriptions: everything },
      { info: envoyProxy('other', { id: 'client-0.other' }), subscriptions: everything },
    ],
    ...(createdAt ? { createdAt } : {}),
  };
}

test('a weight change: RDS of the proxies that see the VirtualService, the two weights; the live snapshot untouched', (t) => {
  const i = input([virtualService(NS, 'reviews', { ...split(50, 50), exportTo: ['.'] })]);
  const liveHash = i.live.hash;
  const diff = diffChange(i);
  t.deepEqual(diff.objects, [
    {
      kind: 'VirtualService',
      namespace: NS,
      name: 'reviews',
      action: 'changed',
      accepted: true,
      reason: 'Accepted',
      message: 'accepted',
    },
  ]);
  t.deepEqual(diff.unchanged, ['client-0.other']);
  t.is(diff.proxies.length, 1);
  const [proxy] = diff.proxies;
  t.true(proxy!.pushed);
  t.deepEqual(
    proxy!.resources.map((r) => [r.type, r.name, r.change]),
    [['RDS', '8080', 'changed']],
  );
  t.deepEqual(
    proxy!.resources[0]!.fields.map((f) => [f.path, f.before, f.after]),
    [
      [
        `virtualHosts[name=${HOST}:8080].routes[0].route.weightedClusters.clusters[name=outbound|8080|v1|${HOST}].weight`,
        90,
        50,
      ],
      [
        `virtualHosts[name=${HOST}:8080].routes[0].route.weightedClusters.clusters[name=outbound|8080|v2|${HOST}].weight`,
        10,
        50,
      ],
    ],
  );
  t.is(i.live.hash, liveHash);
  t.true(Object.isFrozen(i.live));
});

test('precedence: a replaced object keeps its creation time; a new one is stamped in Kubernetes mode and loses the host', (t) => {
  // A second VirtualService for the host, created by the change.
  const rival = virtualService(NS, 'reviews-rival', { ...split(0, 100), exportTo: ['.'] });
  const kube = diffChange(input([rival], '2026-12-06T10:00:00Z'));
  t.deepEqual(
    kube.objects.map((o) => [o.action, o.accepted, o.reason]),
    [['created', false, 'Conflicted']],
  );
  t.deepEqual(kube.proxies, [], 'the younger VirtualService changes nothing');

  // Local mode: files carry no creation time, so the new file counts as the oldest, as it would when written.
  const local = diffChange(input([rival]));
  t.is(local.objects[0]!.reason, 'Accepted');
  t.deepEqual(
    local.proxies.map((p) => p.proxy),
    ['client-0.shop'],
  );

  // Replacing the existing one without a creationTimestamp in the YAML keeps its own: it still wins.
  const replaced = diffChange(
    input([virtualService(NS, 'reviews', { ...split(80, 20), exportTo: ['.'] }), rival], '2026-12-06T10:00:00Z'),
  );
  t.deepEqual(
    replaced.objects.map((o) => [o.name, o.action, o.reason]),
    [
      ['reviews', 'changed', 'Accepted'],
      ['reviews-rival', 'created', 'Conflicted'],
    ],
  );
});

test('an invalid or unchanged change changes no proxy; a kind it does not take is refused', (t) => {
  const invalid = diffChange(
    input([
      virtualService(NS, 'reviews', {
        hosts: ['reviews'],
        http: [{ route: [{ destination: { host: 'reviews' }, weight: -1 }] }],
      }),
    ]),
  );
  t.is(invalid.objects[0]!.reason, 'Invalid');
  t.regex(invalid.objects[0]!.message, /last accepted version \(generation 7\) stays in effect/);
  t.deepEqual(invalid.proxies, []);
  const same = diffChange(input([virtualService(NS, 'reviews', { ...split(90, 10), exportTo: ['.'] })]));
  t.deepEqual(
    same.objects.map((o) => o.action),
    ['unchanged'],
  );
  t.deepEqual(same.proxies, []);
  t.throws(() => diffChange(input([namespace('x')])), { message: /trellis diff takes only the mesh's policy kinds/ });
});

test('in slices: the same diff, yielding to the event loop between steps when the slice is used up', async (t) => {
  const i = input([virtualService(NS, 'reviews', { ...split(50, 50), exportTo: ['.'] })]);
  let turns = 0;
  let running = true;
  const spin = (): void => {
    turns++;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  let now = 0;
  const sliced = await diffChangeInSlices(i, { clock: { now: () => (now += 5) }, sliceMs: 10 });
  running = false;
  t.deepEqual(sliced, diffChange(i));
  t.true(turns > 1, `the event loop turned ${turns} times`);
});
