// VirtualServices and DestinationRules in the model: precedence, conflicts, merge, exportTo, short names,
// subsets, status, and the isolation of invalid objects.
import test from 'ava';
import { buildSnapshot, type BuildOptions } from '../../control-plane/model/build-snapshot.js';
import {
  destinationRuleFor,
  endpointsFor,
  virtualServiceFor,
  virtualServicesVisibleFrom,
} from '../../control-plane/model/lookup.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { acceptedCondition } from '../../control-plane/model/routing.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { destinationRule, virtualService, workload } from './_objects.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';

const build = (objects: MeshObject[], options: Partial<BuildOptions> = {}) =>
  buildSnapshot(objects, { validate: validateRoutingResource, formatIssue, ...options });

const statusOf = (s: MeshSnapshot, kind: string, ns: string, name: string) =>
  s.statuses.find((x) => x.kind === kind && x.namespace === ns && x.name === name)!;

const reviews = () =>
  workload('default', 'reviews', { name: 'http', port: 9080 }, [
    { version: 'v1', address: '10.0.0.1', port: 9080 },
    { version: 'v2', address: '10.0.0.2', port: 9080 },
    { version: 'v3', address: '10.0.0.3', port: 9080, ready: false },
  ]);

/** A VirtualService spec for `host` with one route to it. */
const route = (host: string, subset?: string) => ({
  hosts: [host],
  http: [{ route: [{ destination: { host, ...(subset ? { subset } : {}) } }] }],
});

test('short names in VirtualService hosts and destinations are qualified in its namespace', (t) => {
  const s = build([
    ...reviews(),
    virtualService('default', 'reviews', {
      hosts: ['reviews', 'ratings.other'],
      http: [
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
            { destination: { host: 'ratings.other.svc' }, weight: 50 },
          ],
          mirror: { host: 'shadow' },
        },
      ],
      tcp: [{ route: [{ destination: { host: 'db.other.svc.cluster.local' } }] }],
    }),
  ]);
  const vs = s.virtualServices[0]!;
  t.deepEqual(vs.hosts, ['ratings.other.svc.cluster.local', 'reviews.default.svc.cluster.local']);
  t.deepEqual(vs.spec.hosts, ['reviews.default.svc.cluster.local', 'ratings.other.svc.cluster.local']);
  // The resource as written is kept beside the qualified spec.
  t.deepEqual(vs.resource.spec.hosts, ['reviews', 'ratings.other']);
  t.deepEqual(
    vs.spec.http![0]!.route!.map((r) => r.destination.host),
    ['reviews.default.svc.cluster.local', 'ratings.other.svc.cluster.local'],
  );
  t.is(vs.spec.http![0]!.mirror!.host, 'shadow.default.svc.cluster.local');
  t.is(vs.spec.tcp![0]!.route![0]!.destination.host, 'db.other.svc.cluster.local');
  // Found by any host form.
  t.is(virtualServiceFor(s, 'reviews', 'default'), vs);
  t.is(virtualServiceFor(s, 'reviews.default.svc', 'other'), vs);
  t.is(virtualServiceFor(s, 'ratings', 'other'), vs);
  t.is(virtualServiceFor(s, 'reviews', 'other'), undefined); // reviews.other.svc.cluster.local
  t.deepEqual(statusOf(s, 'VirtualService', 'default', 'reviews'), {
    kind: 'VirtualService',
    namespace: 'default',
    name: 'reviews',
    origin: {},
    accepted: true,
    reason: 'Accepted',
    message: 'accepted',
    issues: [],
  });
});

test('conflicting VirtualServices: the oldest wins, the loser is warned naming the winner', (t) => {
  const s = build([
    ...reviews(),
    virtualService('default', 'b-new', route('reviews', 'v2'), { creationTimestamp: '2026-03-01T10:00:00Z' }),
    virtualService('default', 'a-old', route('reviews', 'v1'), { creationTimestamp: '2026-02-01T10:00:00Z' }),
    // Same time as b-new: namespace, then name, decide.
    virtualService('default', 'c-tie', route('reviews', 'v3'), { creationTimestamp: '2026-03-01T10:00:00Z' }),
    // Also routes `ratings`, which nobody else claims: it wins there.
    virtualService(
      'default',
      'd-two',
      { hosts: ['reviews', 'ratings'], http: [{ route: [{ destination: { host: 'ratings' } }] }] },
      { creationTimestamp: '2026-04-01T00:00:00Z' },
    ),
  ]);
  t.deepEqual(
    s.index.hosts.get('reviews.default.svc.cluster.local')!.virtualServices.map((v) => v.name),
    ['a-old', 'b-new', 'c-tie', 'd-two'],
  );
  t.is(virtualServiceFor(s, 'reviews', 'default')!.name, 'a-old');
  t.is(virtualServiceFor(s, 'ratings', 'default')!.name, 'd-two');
  t.like(statusOf(s, 'VirtualService', 'default', 'a-old'), { accepted: true, reason: 'Accepted' });
  t.like(statusOf(s, 'VirtualService', 'default', 'b-new'), {
    accepted: false,
    reason: 'Conflicted',
    message:
      'spec.hosts[0]: conflicts with older VirtualService default/a-old for host reviews.default.svc.cluster.local, which wins; it has no effect until the older VirtualServices are removed',
  });
  t.like(statusOf(s, 'VirtualService', 'default', 'd-two'), {
    accepted: true,
    reason: 'AcceptedWithWarnings',
    message:
      'accepted with warnings: spec.hosts[0]: conflicts with older VirtualService default/a-old for host reviews.default.svc.cluster.local, which wins',
  });
  t.true(
    s.problems.some(
      (p) =>
        p.severity === 'warning' &&
        p.message ===
          'warning: VirtualService default/c-tie: spec.hosts[0]: conflicts with older VirtualService default/a-old for host reviews.default.svc.cluster.local, which wins',
    ),
  );
  t.deepEqual(acceptedCondition(statusOf(s, 'VirtualService', 'default', 'b-new')), {
    type: 'Accepted',
    status: 'False',
    reason: 'Conflicted',
    message: statusOf(s, 'VirtualService', 'default', 'b-new').message,
  });
});

test('exportTo: a VirtualService applies only where it is visible; the winner is per client namespace', (t) => {
  const s = build([
    ...reviews(),
    // Older, but only for the default namespace.
    virtualService(
      'default',
      'private',
      { ...route('reviews', 'v1'), exportTo: ['.'] },
      {
        creationTimestamp: '2026-01-01T00:00:00Z',
      },
    ),
    virtualService('ops', 'public', route('reviews.default', 'v2'), { creationTimestamp: '2026-02-01T00:00:00Z' }),
    virtualService(
      'ops',
      'to-shop',
      { ...route('reviews.default', 'v3'), exportTo: ['shop'] },
      {
        creationTimestamp: '2026-03-01T00:00:00Z',
      },
    ),
  ]);
  t.is(virtualServiceFor(s, 'reviews', 'default')!.name, 'private');
  t.is(virtualServiceFor(s, 'reviews.default', 'ops')!.name, 'public');
  t.is(virtualServiceFor(s, 'reviews.default', 'shop')!.name, 'public');
  t.deepEqual(
    virtualServicesVisibleFrom(s, 'other').map((x) => [x.host, x.virtualService.name]),
    [['reviews.default.svc.cluster.local', 'public']],
  );
  // `public` loses only where `private` is visible too; `to-shop` is shadowed everywhere it is seen.
  t.like(statusOf(s, 'VirtualService', 'ops', 'public'), {
    accepted: true,
    reason: 'AcceptedWithWarnings',
    message:
      'accepted with warnings: spec.hosts[0]: conflicts with older VirtualService default/private for host reviews.default.svc.cluster.local in the namespaces that see both, which wins',
  });
  t.like(statusOf(s, 'VirtualService', 'ops', 'to-shop'), { accepted: false, reason: 'Conflicted' });
});

test('DestinationRules for one host are merged: subsets appended, duplicates dropped, first trafficPolicy wins', (t) => {
  const s = build([
    ...reviews(),
    destinationRule(
      'default',
      'b-second',
      {
        host: 'reviews',
        trafficPolicy: { loadBalancer: { simple: 'RANDOM' } },
        subsets: [
          { name: 'v2', labels: { version: 'v2' } },
          { name: 'v1', labels: { version: 'other' } },
        ],
      },
      { creationTimestamp: '2026-02-01T00:00:00Z' },
    ),
    destinationRule(
      'default',
      'a-first',
      {
        host: 'reviews.default.svc.cluster.local',
        trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
        subsets: [{ name: 'v1', labels: { version: 'v1' } }],
      },
      { creationTimestamp: '2026-01-01T00:00:00Z' },
    ),
    destinationRule(
      'default',
      'c-third',
      { host: 'reviews.default', subsets: [{ name: 'v3', labels: { version: 'v3' } }] },
      {
        creationTimestamp: '2026-03-01T00:00:00Z',
      },
    ),
  ]);
  const merged = destinationRuleFor(s, 'reviews', 'default')!;
  t.deepEqual(merged, {
    host: 'reviews.default.svc.cluster.local',
    namespace: 'default',
    trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
      { name: 'v3', labels: { version: 'v3' } },
    ],
    exportTo: ['*'],
    from: [
      { namespace: 'default', name: 'a-first' },
      { namespace: 'default', name: 'b-second' },
      { namespace: 'default', name: 'c-third' },
    ],
  });
  t.like(statusOf(s, 'DestinationRule', 'default', 'b-second'), {
    accepted: true,
    reason: 'AcceptedWithWarnings',
    message:
      'accepted with warnings: spec.trafficPolicy: ignored: the older DestinationRule default/a-first for host reviews.default.svc.cluster.local sets the top-level trafficPolicy, and the first one wins; spec.subsets[1]: subset "v1" is already defined by the older DestinationRule default/a-first for host reviews.default.svc.cluster.local; ignored',
  });
  t.like(statusOf(s, 'DestinationRule', 'default', 'c-third'), { accepted: true, reason: 'Accepted' });
});

test('DestinationRule lookup: the client namespace, then the service namespace, then the root namespace', (t) => {
  const s = build([
    ...reviews(),
    destinationRule('trellis-system', 'mesh-wide', { host: 'reviews.default', subsets: [{ name: 'root' }] }),
    destinationRule('default', 'owner', { host: 'reviews', subsets: [{ name: 'owner' }] }),
    destinationRule('shop', 'client', { host: 'reviews.default', subsets: [{ name: 'client' }] }),
    destinationRule('hidden', 'private', { host: 'reviews.default', subsets: [{ name: 'p' }], exportTo: ['.'] }),
    destinationRule('dev', 'elsewhere', { host: 'reviews.default', subsets: [{ name: 'elsewhere' }] }),
  ]);
  const subsetsFrom = (ns: string) => destinationRuleFor(s, 'reviews.default', ns)?.subsets.map((x) => x.name);
  t.deepEqual(subsetsFrom('shop'), ['client']);
  t.deepEqual(subsetsFrom('default'), ['owner']);
  t.deepEqual(subsetsFrom('hidden'), ['p']);
  t.deepEqual(subsetsFrom('dev'), ['elsewhere']);
  // A third namespace's rules never apply to others (Istio).
  t.deepEqual(subsetsFrom('other'), ['owner']);

  const rootOnly = build([
    ...reviews(),
    destinationRule('trellis-system', 'mesh-wide', { host: 'reviews.default', subsets: [{ name: 'root' }] }),
    destinationRule('default', 'owner-private', { host: 'reviews', subsets: [{ name: 'owner' }], exportTo: ['.'] }),
  ]);
  t.deepEqual(
    destinationRuleFor(rootOnly, 'reviews.default', 'other')?.subsets.map((x) => x.name),
    ['root'],
  );
  t.deepEqual(
    destinationRuleFor(rootOnly, 'reviews', 'default')?.subsets.map((x) => x.name),
    ['owner'],
  );
});

test('DestinationRule for a wildcard host: the exact host wins in its namespace, then the most specific wildcard', (t) => {
  const s = build([
    ...reviews(),
    destinationRule('trellis-system', 'everything', { host: '*', subsets: [{ name: 'any' }] }),
    destinationRule('trellis-system', 'cluster', { host: '*.svc.cluster.local', subsets: [{ name: 'cluster' }] }),
    destinationRule('default', 'namespace-wide', { host: '*.default.svc.cluster.local', subsets: [{ name: 'ns' }] }),
  ]);
  const subsetsFrom = (host: string, ns: string) => destinationRuleFor(s, host, ns)?.subsets.map((x) => x.name);
  t.deepEqual(subsetsFrom('reviews', 'default'), ['ns']);
  t.deepEqual(subsetsFrom('ratings.other', 'default'), ['cluster']);
  t.deepEqual(subsetsFrom('api.example.com', 'default'), ['any']);
  const exact = build([
    ...reviews(),
    destinationRule('default', 'namespace-wide', { host: '*.default.svc.cluster.local', subsets: [{ name: 'ns' }] }),
    destinationRule('default', 'reviews', { host: 'reviews', subsets: [{ name: 'exact' }] }),
  ]);
  t.deepEqual(
    destinationRuleFor(exact, 'reviews', 'default')?.subsets.map((x) => x.name),
    ['exact'],
  );
  t.deepEqual(
    exact.index.wildcardHosts.map((h) => h.host),
    ['*.default.svc.cluster.local'],
  );
});

test('subsets select endpoints by label, server side', (t) => {
  const s = build([
    ...reviews(),
    destinationRule('default', 'reviews', {
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'new', labels: { version: 'v3', app: 'reviews' } },
        { name: 'all' },
      ],
    }),
  ]);
  const addresses = (subset: string | undefined) =>
    endpointsFor(s, 'reviews', 9080, subset, 'default').map((e) => `${e.address}${e.ready ? '' : ' (not ready)'}`);
  t.deepEqual(addresses(undefined), ['10.0.0.1', '10.0.0.2', '10.0.0.3 (not ready)']);
  t.deepEqual(addresses('v1'), ['10.0.0.1']);
  t.deepEqual(addresses('new'), ['10.0.0.3 (not ready)']);
  t.deepEqual(addresses('all'), ['10.0.0.1', '10.0.0.2', '10.0.0.3 (not ready)']);
  // A subset no rule defines, or a port the service does not have: nothing (an empty assignment).
  t.deepEqual(addresses('v9'), []);
  t.deepEqual(endpointsFor(s, 'reviews', 8080, undefined, 'default'), []);
});

test('an invalid VirtualService is kept out, reported, and does not hide valid ones', (t) => {
  const s = build([
    ...reviews(),
    virtualService('default', 'good', route('reviews', 'v1'), { creationTimestamp: '2026-02-01T00:00:00Z' }),
    // Older than `good`: were it accepted it would win.
    virtualService(
      'default',
      'bad',
      { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' }, weight: -1 }] }] },
      { creationTimestamp: '2026-01-01T00:00:00Z', generation: 3 },
      { file: 'bad.yaml', document: 2 },
    ),
  ]);
  t.is(virtualServiceFor(s, 'reviews', 'default')!.name, 'good');
  t.deepEqual(
    s.virtualServices.map((v) => v.name),
    ['good'],
  );
  t.deepEqual(statusOf(s, 'VirtualService', 'default', 'bad'), {
    kind: 'VirtualService',
    namespace: 'default',
    name: 'bad',
    generation: 3,
    origin: { file: 'bad.yaml', document: 2 },
    accepted: false,
    reason: 'Invalid',
    message: 'spec.http[0].route[0].weight: must be >= 0; not applied',
    issues: [{ severity: 'error', path: 'spec.http[0].route[0].weight', message: 'must be >= 0' }],
  });
  t.deepEqual(
    s.problems.map((p) => [p.severity, p.message]),
    [['error', 'bad.yaml#3: VirtualService default/bad: spec.http[0].route[0].weight: must be >= 0']],
  );
  t.like(statusOf(s, 'VirtualService', 'default', 'good'), { accepted: true, reason: 'Accepted' });
});

test('an invalid VirtualService for one host never changes the view of any other host', (t) => {
  const base = [
    ...reviews(),
    ...workload('default', 'ratings', { name: 'http', port: 9080 }, [
      { version: 'v1', address: '10.0.1.1', port: 9080 },
    ]),
    ...workload('shop', 'cart', { name: 'grpc', port: 7000 }, [{ version: 'v1', address: '10.0.2.1', port: 7000 }]),
    virtualService('default', 'reviews', route('reviews', 'v1')),
    virtualService('shop', 'cart', { ...route('cart', 'v1'), exportTo: ['.'] }),
    destinationRule('default', 'reviews', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    destinationRule('shop', 'cart', { host: 'cart', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
  ];
  // Invalid VirtualServices for ratings: one that would also claim the other hosts, written in every way.
  const invalid = [
    virtualService(
      'default',
      'ratings',
      {
        hosts: ['ratings', 'reviews', 'cart.shop'],
        http: [{ route: [{ destination: { host: 'ratings' }, weight: -5 }] }],
      },
      { creationTimestamp: '2020-01-01T00:00:00Z' },
    ),
    virtualService('shop', 'ratings-from-shop', { hosts: [], http: [] }, { creationTimestamp: '2020-01-01T00:00:00Z' }),
  ];
  const before = build(base);
  const after = build([...base, ...invalid]);
  const view = (s: MeshSnapshot, host: string) => ({
    service: s.index.servicesByFqdn.get(host),
    policy: s.index.hosts.get(host),
    fromEach: ['default', 'shop', 'other'].map((ns) => ({
      vs: virtualServiceFor(s, host, ns),
      dr: destinationRuleFor(s, host, ns),
      endpoints: endpointsFor(s, host, s.index.servicesByFqdn.get(host)!.ports[0]!.port, 'v1', ns),
    })),
  });
  for (const host of ['reviews.default.svc.cluster.local', 'cart.shop.svc.cluster.local']) {
    t.deepEqual(view(after, host), view(before, host), host);
  }
  // Statuses of the valid objects are unchanged too.
  t.deepEqual(
    after.statuses.filter((x) => !x.name.startsWith('ratings')),
    before.statuses,
  );
  t.like(statusOf(after, 'VirtualService', 'default', 'ratings'), { accepted: false, reason: 'Invalid' });
  t.like(statusOf(after, 'VirtualService', 'shop', 'ratings-from-shop'), { accepted: false, reason: 'Invalid' });
});

test('a VirtualService that turns invalid keeps its last accepted version; deleting it removes it', (t) => {
  const good = virtualService('default', 'reviews', route('reviews', 'v1'), { generation: 1 });
  const first = build([...reviews(), good]);
  t.is(first.version, 1);

  const broken = virtualService(
    'default',
    'reviews',
    {
      hosts: ['reviews', 'ratings'],
      http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' }, weight: -1 }] }],
    },
    { generation: 2 },
  );
  const second = build([...reviews(), broken], { previous: first });
  t.is(second.version, 2);
  const kept = virtualServiceFor(second, 'reviews', 'default')!;
  t.true(kept.stale);
  t.is(kept.generation, 1);
  t.deepEqual(kept.spec, first.virtualServices[0]!.spec);
  // The broken version's new host is not routed.
  t.is(virtualServiceFor(second, 'ratings', 'default'), undefined);
  t.deepEqual(statusOf(second, 'VirtualService', 'default', 'reviews'), {
    kind: 'VirtualService',
    namespace: 'default',
    name: 'reviews',
    generation: 2,
    origin: {},
    accepted: false,
    reason: 'Invalid',
    message: 'spec.http[0].route[0].weight: must be >= 0; the last accepted version (generation 1) stays in effect',
    issues: [{ severity: 'error', path: 'spec.http[0].route[0].weight', message: 'must be >= 0' }],
  });

  // Still broken: still kept.
  const third = build([...reviews(), broken], { previous: second });
  t.is(virtualServiceFor(third, 'reviews', 'default')!.generation, 1);

  // Fixed: the new version replaces it.
  const fixed = virtualService('default', 'reviews', route('reviews', 'v3'), { generation: 3 });
  const fourth = build([...reviews(), fixed], { previous: third });
  t.false(virtualServiceFor(fourth, 'reviews', 'default')!.stale);
  t.is(virtualServiceFor(fourth, 'reviews', 'default')!.spec.http![0]!.route![0]!.destination.subset, 'v3');

  // Deleted: gone, even though the previous snapshot had it.
  const fifth = build(reviews(), { previous: fourth });
  t.is(virtualServiceFor(fifth, 'reviews', 'default'), undefined);
  t.deepEqual(fifth.statuses, []);

  // Invalid from the start: never in the model.
  const sixth = build([...reviews(), broken], { previous: fifth });
  t.is(virtualServiceFor(sixth, 'reviews', 'default'), undefined);
  t.like(statusOf(sixth, 'VirtualService', 'default', 'reviews'), {
    message: 'spec.http[0].route[0].weight: must be >= 0; not applied',
  });
});

test('validator warnings are accepted with warnings', (t) => {
  // Two destinations without weights: valid, but the validator warns that they get no traffic.
  const spec = {
    hosts: ['reviews'],
    http: [
      {
        route: [{ destination: { host: 'reviews', subset: 'v1' } }, { destination: { host: 'reviews', subset: 'v2' } }],
      },
    ],
  };
  const s = build([
    ...reviews(),
    destinationRule('default', 'reviews', { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v2' }] }),
    virtualService('default', 'reviews', spec),
  ]);
  const status = statusOf(s, 'VirtualService', 'default', 'reviews');
  t.like(status, { accepted: true, reason: 'AcceptedWithWarnings' });
  t.regex(status.message, /^accepted with warnings: spec\.http\[0\]\.route\[0\]: has no weight/);
  t.is(s.virtualServices.length, 1);
  t.true(
    s.problems.every(
      (p) => p.severity === 'warning' && p.message.startsWith('warning: VirtualService default/reviews: '),
    ),
  );
});

test('formatIssue, when given, writes the problem messages', (t) => {
  const s = build([virtualService('default', 'x', { hosts: [] }, {}, { file: 'x.yaml', document: 0 })], {
    formatIssue: (r, i, o) => `[${r.kind}/${r.name}] ${i.path} ${i.message} @${o?.file}#${o?.document}`,
  });
  t.deepEqual(
    s.problems.map((p) => p.message),
    [
      '[VirtualService/x] spec must have http, tls or tcp routes @x.yaml#0',
      '[VirtualService/x] spec.hosts must not be empty @x.yaml#0',
    ],
  );
});

test('a resource the validator lets through but the model cannot read hurts only itself', (t) => {
  // A validator that accepts everything: a VirtualService without metadata or spec reaches the model.
  const lenient: BuildOptions['validate'] = (obj) => ({
    kind: 'VirtualService',
    namespace: 'default',
    name: 'odd',
    issues: [],
    resource: obj as never,
  });
  const odd: MeshObject = {
    kind: 'VirtualService',
    namespace: 'default',
    name: 'odd',
    object: { kind: 'VirtualService' },
    origin: {},
  };
  const s = buildSnapshot([...reviews(), virtualService('default', 'reviews', route('reviews')), odd], {
    validate: lenient,
  });
  t.deepEqual(
    s.virtualServices.map((v) => v.name),
    ['reviews'],
  );
  t.like(statusOf(s, 'VirtualService', 'default', 'odd'), { accepted: false, reason: 'Invalid' });
  t.regex(statusOf(s, 'VirtualService', 'default', 'odd').message, /^cannot be read by the mesh model: /);
});
