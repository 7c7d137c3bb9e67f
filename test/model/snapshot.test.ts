// The snapshot as a whole: deterministic, immutable, versioned; and the example mesh builds cleanly.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { destinationMtls } from '../../control-plane/model/peer-authentication.js';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import {
  destinationRuleFor,
  endpointsFor,
  instancesOfPod,
  virtualServiceFor,
} from '../../control-plane/model/lookup.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { parseManifests } from '../../control-plane/sources/manifests.js';
import {
  destinationRule,
  namespace,
  peerAuthentication,
  pod,
  service,
  slice,
  virtualService,
  workload,
} from './_objects.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';

function mesh(): MeshObject[] {
  return [
    namespace('default', { 'trellis.dev/inject': 'enabled' }),
    namespace('shop'),
    ...workload('default', 'reviews', { name: 'http', port: 9080 }, [
      { version: 'v1', address: '10.0.0.1', port: 9080 },
      { version: 'v2', address: '10.0.0.2', port: 9080 },
    ]),
    service(
      'shop',
      'cart',
      [
        { name: 'grpc', port: 7000 },
        { name: 'http-admin', port: 8000 },
      ],
      { clusterIP: '10.96.0.9' },
    ),
    pod('shop', 'cart-0', { app: 'cart', zone: 'b', alpha: 'a' }),
    slice(
      'shop',
      'cart-x',
      'cart',
      [
        { name: 'grpc', port: 7000 },
        { name: 'http-admin', port: 8000 },
      ],
      [
        { address: '10.0.1.2', pod: 'cart-0' },
        { address: '10.0.1.1', pod: 'cart-0', ready: false },
      ],
    ),
    virtualService(
      'default',
      'b',
      { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] },
      {
        creationTimestamp: '2026-01-02T00:00:00Z',
      },
    ),
    virtualService(
      'default',
      'a',
      { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
      {
        creationTimestamp: '2026-01-01T00:00:00Z',
      },
    ),
    virtualService('shop', 'broken', { hosts: [] }),
    destinationRule('default', 'r2', { host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }] }),
    destinationRule('default', 'r1', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    slice('shop', 'orphan', undefined, [], []),
  ];
}

/** A deterministic shuffle (so that a failure reproduces). */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

test('the same objects in another order give a deep-equal snapshot with the same hash', (t) => {
  const reference = buildSnapshot(mesh(), { validate: validateRoutingResource, formatIssue });
  for (const seed of [1, 2, 3, 42, 1234]) {
    const other = buildSnapshot(shuffled(mesh(), seed), { validate: validateRoutingResource, formatIssue });
    t.deepEqual(other, reference);
    t.is(other.hash, reference.hash);
    t.is(JSON.stringify(other), JSON.stringify(reference));
  }
  t.regex(reference.hash, /^[0-9a-f]{64}$/);
});

test('everything is sorted', (t) => {
  const s = buildSnapshot(mesh(), { validate: validateRoutingResource, formatIssue });
  t.deepEqual(
    s.namespaces.map((n) => n.name),
    ['default', 'shop'],
  );
  t.deepEqual(
    s.services.map((x) => x.fqdn),
    ['cart.shop.svc.cluster.local', 'reviews.default.svc.cluster.local'],
  );
  t.deepEqual(
    s.services[0]!.ports[0]!.endpoints.map((e) => e.address),
    ['10.0.1.1', '10.0.1.2'],
  );
  t.deepEqual(Object.keys(s.services[0]!.ports[0]!.endpoints[0]!.labels), ['alpha', 'app', 'zone']);
  t.deepEqual(
    s.virtualServices.map((v) => v.name),
    ['a', 'b'],
  );
  t.deepEqual(
    s.statuses.map((x) => `${x.kind} ${x.namespace}/${x.name}`),
    [
      'DestinationRule default/r1',
      'DestinationRule default/r2',
      'VirtualService default/a',
      'VirtualService default/b',
      'VirtualService shop/broken',
    ],
  );
  t.deepEqual(
    s.hosts.map((h) => h.host),
    ['cart.shop.svc.cluster.local', 'reviews.default.svc.cluster.local'],
  );
  t.deepEqual(
    s.problems.map((p) => p.message),
    [...s.problems.map((p) => p.message)].sort(),
  );
});

test('the snapshot is frozen, and versions follow the previous snapshot', (t) => {
  const first = buildSnapshot(mesh(), { validate: validateRoutingResource, formatIssue });
  t.true(Object.isFrozen(first));
  t.true(Object.isFrozen(first.services[0]!.ports[0]!.endpoints[0]!.labels));
  t.true(Object.isFrozen(first.virtualServices[0]!.spec.http![0]));
  t.throws(() => {
    (first.services as unknown as unknown[]).push(1);
  });
  const second = buildSnapshot(mesh(), { validate: validateRoutingResource, formatIssue, previous: first });
  t.is(first.version, 1);
  t.is(second.version, 2);
  t.is(second.hash, first.hash);
  t.is(buildSnapshot([], { validate: validateRoutingResource, formatIssue, version: 0 }).version, 0);
});

test('the input objects are not modified', (t) => {
  const objects = mesh();
  const copy = structuredClone(objects);
  buildSnapshot(objects, { validate: validateRoutingResource, formatIssue });
  t.deepEqual(objects, copy);
});

test('the hash changes with the content, and with the domain', (t) => {
  const a = buildSnapshot(mesh(), { validate: validateRoutingResource, formatIssue });
  const b = buildSnapshot([...mesh(), namespace('extra')], { validate: validateRoutingResource, formatIssue });
  const c = buildSnapshot(mesh(), { validate: validateRoutingResource, formatIssue, domain: 'corp.local' });
  t.not(a.hash, b.hash);
  t.not(a.hash, c.hash);
  t.is(c.services[0]!.fqdn, 'cart.shop.svc.corp.local');
});

/**
 * The mesh as KubeSource hands it over at one point in time: every object with a resourceVersion (in
 * `metadata` and the origin); the routing resources also with a status and labels, as after the status
 * writer's write or a `kubectl label`. `at` makes each of those differ, nothing else.
 */
function asInCluster(objects: readonly MeshObject[], at: number): MeshObject[] {
  return objects.map((o, i) => {
    const resourceVersion = String(1000 * at + i);
    const source = o.object as { metadata?: Record<string, unknown> };
    const routing = o.kind === 'VirtualService' || o.kind === 'DestinationRule' || o.kind === 'PeerAuthentication';
    const object = {
      ...source,
      metadata: {
        ...source.metadata,
        resourceVersion,
        ...(routing
          ? {
              labels: { written: String(at) },
              annotations: { 'kubectl.kubernetes.io/last-applied-configuration': `{"at":${at}}` },
            }
          : {}),
      },
      ...(routing
        ? {
            status: {
              observedGeneration: at,
              conditions: [{ type: 'Accepted', status: 'True', lastTransitionTime: `2026-01-0${at}T00:00:00Z` }],
            },
          }
        : {}),
    };
    return { ...o, object, origin: { resourceVersion } } as MeshObject;
  });
}

function clusterMesh(): MeshObject[] {
  return [
    ...mesh(),
    // A warning (a problem with an origin) and a conflict, so every place an origin could hide is there.
    virtualService(
      'default',
      'late',
      { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
      {
        creationTimestamp: '2026-02-01T00:00:00Z',
        generation: 3,
      },
    ),
    peerAuthentication('default', 'default', { mtls: { mode: 'STRICT' } }, { generation: 1 }),
    peerAuthentication('default', 'again', { mtls: { mode: 'PERMISSIVE' } }, { generation: 1 }),
  ];
}

test('the hash covers what translation and statuses read: not resourceVersions, statuses, labels of routing resources', (t) => {
  const options = { validate: validateRoutingResource, formatIssue };
  const before = buildSnapshot(asInCluster(clusterMesh(), 1), options);
  const after = buildSnapshot(asInCluster(clusterMesh(), 2), { ...options, previous: before });
  t.is(after.hash, before.hash);
  // Not only the hash: the snapshots are equal (so keeping the previous one serves the same config).
  t.deepEqual({ ...after, version: before.version }, before);
  // No resourceVersion anywhere in the snapshot (it is in the store), and no label of a routing resource.
  const text = JSON.stringify(after);
  t.false(text.includes('resourceVersion'), 'resourceVersion');
  t.false(text.includes('"written"'), 'routing resource labels');
  t.true(
    before.problems.some((p) => p.object?.name === 'late'),
    'the conflict is a problem',
  );
  t.true(
    before.statuses.some((x) => x.kind === 'PeerAuthentication' && x.reason === 'Conflicted'),
    'two namespace policies conflict',
  );

  // What the model does read still counts: a spec, a generation (observedGeneration), a Service label.
  const edited = (change: (objects: MeshObject[]) => MeshObject[]) =>
    buildSnapshot(asInCluster(change(clusterMesh()), 2), options).hash;
  t.not(
    edited((objects) =>
      objects.map((o) =>
        o.kind === 'VirtualService' && o.name === 'a'
          ? virtualService(
              'default',
              'a',
              { hosts: ['reviews'], http: [{ timeout: '2s', route: [{ destination: { host: 'reviews' } }] }] },
              { creationTimestamp: '2026-01-01T00:00:00Z' },
            )
          : o,
      ),
    ),
    before.hash,
    'a spec change',
  );
  t.not(
    edited((objects) =>
      objects.map((o) =>
        o.kind === 'PeerAuthentication' && o.name === 'default'
          ? peerAuthentication('default', 'default', { mtls: { mode: 'STRICT' } }, { generation: 2 })
          : o,
      ),
    ),
    before.hash,
    'a new generation',
  );
  t.not(
    edited((objects) =>
      objects.map((o) =>
        o.kind === 'Service' && o.name === 'cart'
          ? service(
              'shop',
              'cart',
              [
                { name: 'grpc', port: 7000 },
                { name: 'http-admin', port: 8000 },
              ],
              { clusterIP: '10.96.0.9', labels: { app: 'cart', tier: 'back' } },
            )
          : o,
      ),
    ),
    before.hash,
    'a Service label (MeshService.labels)',
  );
});

test('a file origin (file and document) stays in the snapshot: messages name it', (t) => {
  const s = buildSnapshot(
    [virtualService('shop', 'broken', { hosts: [] }, {}, { file: 'vs.yaml', document: 1, resourceVersion: '9' })],
    {
      validate: validateRoutingResource,
      formatIssue,
    },
  );
  t.deepEqual(s.statuses[0]!.origin, { file: 'vs.yaml', document: 1 });
  t.true(s.problems.every((p) => p.message.startsWith('vs.yaml#2: ') && !('resourceVersion' in (p.origin ?? {}))));
});

test('source problems are part of the snapshot', (t) => {
  const s = buildSnapshot([], {
    validate: validateRoutingResource,
    formatIssue,
    sourceProblems: [
      { severity: 'error', origin: { file: 'x.yaml', document: 1 }, message: 'x.yaml, document 1: does not parse' },
    ],
  });
  t.deepEqual(
    s.problems.map((p) => p.message),
    ['x.yaml, document 1: does not parse'],
  );
});

test('examples/mesh builds into the bookinfo mesh without a problem', (t) => {
  const dir = path.join(import.meta.dirname, '../../examples/mesh');
  const objects: MeshObject[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.ya?ml$/.test(entry.name)) {
        const parsed = parseManifests(fs.readFileSync(full, 'utf8'), full);
        t.true(parsed.ok, full);
        t.deepEqual(parsed.problems, [], full);
        objects.push(...parsed.objects);
      }
    }
  };
  walk(dir);
  const s = buildSnapshot(objects, { validate: validateRoutingResource, formatIssue });
  t.deepEqual(s.problems, []);
  t.true(s.statuses.every((x) => x.accepted && x.reason === 'Accepted'));
  t.true(s.index.namespaces.get('bookinfo')!.injection);
  t.deepEqual(
    s.services.map((x) => `${x.fqdn} ${x.ports.map((p) => `${p.port}/${p.protocol}`).join(',')}`),
    [
      'details.bookinfo.svc.cluster.local 9080/HTTP',
      'mongodb.bookinfo.svc.cluster.local 27017/TCP',
      'productpage.bookinfo.svc.cluster.local 9080/HTTP',
      'ratings.bookinfo.svc.cluster.local 9080/GRPC',
      'reviews.bookinfo.svc.cluster.local 9080/GRPC',
    ],
  );
  // The named target port `grpc` resolves to a different port per version.
  const subsetPorts = (subset: string) =>
    endpointsFor(s, 'reviews', 9080, subset, 'bookinfo').map((e) => `${e.address}:${e.port} ${e.labels.version}`);
  t.deepEqual(subsetPorts('v1'), ['127.0.0.1:50051 v1']);
  t.deepEqual(subsetPorts('v2'), ['127.0.0.1:50052 v2']);
  t.deepEqual(subsetPorts('v3'), ['127.0.0.1:50053 v3']);
  t.deepEqual(
    virtualServiceFor(s, 'reviews', 'bookinfo')!.spec.http![1]!.route!.map(
      (r) => `${r.destination.host}|${r.destination.subset}|${r.weight}`,
    ),
    ['reviews.bookinfo.svc.cluster.local|v1|80', 'reviews.bookinfo.svc.cluster.local|v3|20'],
  );
  t.deepEqual(
    destinationRuleFor(s, 'reviews', 'bookinfo')!.subsets.map((x) => x.name),
    ['v1', 'v2', 'v3'],
  );
  t.deepEqual(
    instancesOfPod(s, 'bookinfo', 'reviews-v2-5b9c7d8f4-p8wzn').map(
      (i) => `${i.service.name}:${i.port.port}→${i.endpoint.port}`,
    ),
    ['reviews:9080→50052'],
  );
  const mongo = s.index.servicesByFqdn.get('mongodb.bookinfo.svc.cluster.local')!;
  t.false(mongo.ports[0]!.endpoints[0]!.inMesh);
  // The mTLS policy: bookinfo PERMISSIVE, the database DISABLE.
  t.deepEqual(
    s.peerAuthentications.map((p) => `${p.namespace}/${p.name} ${p.mode}`),
    ['bookinfo/default PERMISSIVE', 'bookinfo/mongodb DISABLE'],
  );
  t.is(destinationMtls(s, mongo, mongo.ports[0]!, 'STRICT'), 'DISABLE');
  const reviews = s.index.servicesByFqdn.get('reviews.bookinfo.svc.cluster.local')!;
  t.is(destinationMtls(s, reviews, reviews.ports[0]!, 'STRICT'), 'PERMISSIVE');
  t.true(s.services.filter((x) => x.name !== 'mongodb').every((x) => x.ports[0]!.endpoints.every((e) => e.inMesh)));
});
