// Sidecar in the model: which Sidecar applies to a proxy (workload > namespace default > mesh default >
// none, the oldest at a level), the host forms of egress, the destinations of VirtualServices, several
// Sidecars at one level (statuses), the last accepted version, and automatic scoping from
// AuthorizationPolicies (model/sidecar-scope.ts, README "Sidecar").
import test from 'ava';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { scopeOf, sidecarFor, type ScopeOptions } from '../../control-plane/model/sidecar-scope.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { namespace, pod, virtualService, workload } from './_objects.js';

type Json = Record<string, unknown>;

const build = (objects: MeshObject[], previous?: MeshSnapshot) =>
  buildSnapshot(objects, { validate: validateRoutingResource, formatIssue, ...(previous ? { previous } : {}) });

function sidecar(ns: string, name: string, spec: Json, meta: Json = {}): MeshObject {
  return {
    kind: 'Sidecar',
    namespace: ns,
    name,
    object: {
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'Sidecar',
      metadata: { name, namespace: ns, ...meta },
      spec,
    },
    origin: {},
  };
}

function allow(ns: string, name: string, spec: Json): MeshObject {
  return {
    kind: 'AuthorizationPolicy',
    namespace: ns,
    name,
    object: {
      apiVersion: 'security.trellis.dev/v1alpha1',
      kind: 'AuthorizationPolicy',
      metadata: { name, namespace: ns },
      spec,
    },
    origin: {},
  };
}

const HTTP = { name: 'http', port: 8080 };
let ip = 1;
const svc = (ns: string, name: string) =>
  workload(ns, name, HTTP, [{ version: 'v1', address: `10.0.0.${ip++}`, port: 9080 }]);

/** shop: frontend, reviews, ratings; ops: metrics; other: secret (exported to other only). */
function mesh(): MeshObject[] {
  return [
    namespace('shop'),
    namespace('ops'),
    namespace('other'),
    namespace('trellis-system'),
    ...svc('shop', 'frontend'),
    ...svc('shop', 'reviews'),
    ...svc('shop', 'ratings'),
    ...svc('ops', 'metrics'),
    ...svc('other', 'secret').map((o) =>
      o.kind === 'Service'
        ? ({
            ...o,
            object: {
              ...(o.object as object),
              metadata: { name: 'secret', namespace: 'other', annotations: { 'networking.trellis.dev/exportTo': '.' } },
            },
          } as MeshObject)
        : o,
    ),
  ];
}

const EXPLICIT: ScopeOptions = { automatic: false, trustDomain: 'cluster.local' };
const AUTOMATIC: ScopeOptions = { automatic: true, trustDomain: 'cluster.local' };
const proxy = (ns: string, labels: Record<string, string> = { app: 'frontend' }, serviceAccount = 'frontend-sa') => ({
  namespace: ns,
  labels,
  serviceAccount,
});
const names = (s: MeshSnapshot, p = proxy('shop'), o = EXPLICIT) => scopeOf(s, p, o).services.map((x) => x.fqdn);
const fqdn = (ns: string, name: string) => `${name}.${ns}.svc.cluster.local`;
const ALL_FROM_SHOP = [
  fqdn('shop', 'frontend'),
  fqdn('ops', 'metrics'),
  fqdn('shop', 'ratings'),
  fqdn('shop', 'reviews'),
];

test('no Sidecar: every Service visible from the namespace (exportTo), and the scope says so', (t) => {
  const s = build(mesh());
  const scope = scopeOf(s, proxy('shop'), EXPLICIT);
  t.true(scope.all);
  t.is(scope.level, 'none');
  t.deepEqual(names(s), ALL_FROM_SHOP);
  t.true(names(s, proxy('other')).includes(fqdn('other', 'secret')));
});

test('precedence: the workload Sidecar > the namespace default > the mesh default (root namespace) > none', (t) => {
  const meshDefault = sidecar('trellis-system', 'default', { egress: [{ hosts: ['./*'] }] });
  const nsDefault = sidecar('shop', 'default', { egress: [{ hosts: ['ops/*'] }] });
  const forReviews = sidecar('shop', 'reviews', {
    workloadSelector: { labels: { app: 'reviews' } },
    egress: [{ hosts: ['./ratings.shop.svc.cluster.local'] }],
  });
  let s = build([...mesh(), meshDefault]);
  // The mesh default's `.` is the proxy's own namespace.
  t.is(sidecarFor(s, 'shop', { app: 'frontend' }).level, 'mesh');
  t.deepEqual(names(s), [fqdn('shop', 'frontend'), fqdn('shop', 'ratings'), fqdn('shop', 'reviews')]);
  t.deepEqual(names(s, proxy('ops')), [fqdn('ops', 'metrics')]);
  s = build([...mesh(), meshDefault, nsDefault]);
  t.is(sidecarFor(s, 'shop', { app: 'frontend' }).level, 'namespace');
  t.deepEqual(names(s), [fqdn('ops', 'metrics')]);
  t.deepEqual(names(s, proxy('ops')), [fqdn('ops', 'metrics')], 'another namespace keeps the mesh default');
  s = build([...mesh(), meshDefault, nsDefault, forReviews]);
  const reviews = scopeOf(s, proxy('shop', { app: 'reviews', version: 'v1' }), EXPLICIT);
  t.is(reviews.level, 'workload');
  t.deepEqual(reviews.sidecar, { namespace: 'shop', name: 'reviews' });
  t.deepEqual(
    reviews.services.map((x) => x.fqdn),
    [fqdn('shop', 'ratings')],
  );
  t.deepEqual(names(s), [fqdn('ops', 'metrics')], 'frontend still gets the namespace default');
  // A root-namespace Sidecar with a selector is not a mesh default.
  s = build([
    ...mesh(),
    sidecar('trellis-system', 'sel', {
      workloadSelector: { labels: { app: 'frontend' } },
      egress: [{ hosts: ['./*'] }],
    }),
  ]);
  t.is(sidecarFor(s, 'shop', { app: 'frontend' }).level, 'none');
});

test('egress host forms: ./*, ns/*, */*, ~/*, */fqdn, ns/*.suffix; exportTo still applies', (t) => {
  const scoped = (...hosts: string[]) => names(build([...mesh(), sidecar('shop', 'default', { egress: [{ hosts }] })]));
  t.deepEqual(scoped('./*'), [fqdn('shop', 'frontend'), fqdn('shop', 'ratings'), fqdn('shop', 'reviews')]);
  t.deepEqual(scoped('ops/*'), [fqdn('ops', 'metrics')]);
  t.deepEqual(scoped('*/*'), ALL_FROM_SHOP);
  t.deepEqual(scoped('~/*'), []);
  t.deepEqual(scoped('*/reviews.shop.svc.cluster.local'), [fqdn('shop', 'reviews')]);
  t.deepEqual(scoped('ops/reviews.shop.svc.cluster.local'), [], 'the namespace part names the Service namespace');
  t.deepEqual(scoped('shop/*.shop.svc.cluster.local'), [
    fqdn('shop', 'frontend'),
    fqdn('shop', 'ratings'),
    fqdn('shop', 'reviews'),
  ]);
  t.deepEqual(scoped('*/r*'), ALL_FROM_SHOP, 'an invalid host (only a leading *. is a wildcard) rejects the Sidecar');
  t.deepEqual(scoped('other/*'), [], 'a Service exported only to its own namespace stays invisible');
  // No egress (only an outbound policy): every host, as Istio.
  const s = build([...mesh(), sidecar('shop', 'default', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } })]);
  const scope = scopeOf(s, proxy('shop'), EXPLICIT);
  t.deepEqual(names(s), ALL_FROM_SHOP);
  t.is(scope.outboundTrafficPolicy, 'REGISTRY_ONLY');
  t.is(scope.key, `${scopeOf(build(mesh()), proxy('shop'), EXPLICIT).key.split('|')[0]}|REGISTRY_ONLY`);
});

test('the destinations of the VirtualServices of scoped hosts are in scope (one level), with the reason', (t) => {
  const s = build([
    ...mesh(),
    virtualService('shop', 'reviews', {
      hosts: ['reviews'],
      http: [
        {
          route: [
            { destination: { host: 'ratings' }, weight: 50 },
            { destination: { host: 'metrics.ops' }, weight: 50 },
          ],
        },
      ],
    }),
    virtualService('shop', 'ratings', {
      hosts: ['ratings'],
      http: [{ route: [{ destination: { host: 'frontend' } }] }],
    }),
    sidecar('shop', 'default', { egress: [{ hosts: ['./reviews.shop.svc.cluster.local'] }] }),
  ]);
  const scope = scopeOf(s, proxy('shop'), EXPLICIT);
  t.deepEqual(
    scope.services.map((x) => x.fqdn),
    [fqdn('ops', 'metrics'), fqdn('shop', 'ratings'), fqdn('shop', 'reviews')],
    'ratings is routed to by reviews; frontend (routed to by ratings) is not: a route names clusters, not hosts',
  );
  t.deepEqual(scope.reasons.get(fqdn('shop', 'ratings')), [
    'destination of VirtualService shop/reviews (reviews.shop.svc.cluster.local)',
  ]);
  t.deepEqual(scope.reasons.get(fqdn('shop', 'reviews')), [
    'Sidecar shop/default egress ./reviews.shop.svc.cluster.local',
  ]);
});

test('several Sidecars at one level: the oldest wins, the others are Conflicted or warned (statuses)', (t) => {
  const s = build([
    ...mesh(),
    pod('shop', 'frontend-x', { app: 'frontend', tier: 'web' }),
    sidecar('shop', 'a', { egress: [{ hosts: ['./*'] }] }, { creationTimestamp: '2024-01-01T00:00:00Z' }),
    sidecar('shop', 'b', { egress: [{ hosts: ['ops/*'] }] }, { creationTimestamp: '2024-02-01T00:00:00Z' }),
    sidecar(
      'shop',
      'w1',
      { workloadSelector: { labels: { app: 'frontend' } }, egress: [{ hosts: ['ops/*'] }] },
      { creationTimestamp: '2024-01-01T00:00:00Z' },
    ),
    sidecar(
      'shop',
      'w2',
      { workloadSelector: { labels: { app: 'frontend' } }, egress: [{ hosts: ['./*'] }] },
      { creationTimestamp: '2024-02-01T00:00:00Z' },
    ),
    sidecar(
      'shop',
      'w3',
      { workloadSelector: { labels: { tier: 'web' } }, egress: [{ hosts: ['./*'] }] },
      { creationTimestamp: '2024-03-01T00:00:00Z' },
    ),
  ]);
  const status = (name: string) => s.statuses.find((x) => x.kind === 'Sidecar' && x.name === name)!;
  t.is(sidecarFor(s, 'shop', {}).sidecar?.name, 'a');
  t.is(sidecarFor(s, 'shop', { app: 'frontend', tier: 'web' }).sidecar?.name, 'w1');
  t.is(sidecarFor(s, 'shop', { tier: 'web' }).sidecar?.name, 'w3');
  t.is(status('a').reason, 'Accepted');
  t.is(status('b').reason, 'Conflicted');
  t.regex(
    status('b').message,
    /conflicts with the older Sidecar shop\/a, which is the default of namespace shop .*no effect until the older Sidecar is removed/,
  );
  t.is(status('w2').reason, 'Conflicted');
  t.regex(status('w2').message, /selects the same workloads as the older Sidecar shop\/w1/);
  t.is(status('w3').reason, 'AcceptedWithWarnings');
  t.regex(
    status('w3').message,
    /spec\.workloadSelector: Pod shop\/frontend-x is also selected by the older Sidecar shop\/w1/,
  );
});

test('a Sidecar that turns invalid keeps its last accepted version; deleting it removes the scope', (t) => {
  const good = sidecar('shop', 'default', { egress: [{ hosts: ['ops/*'] }] }, { generation: 1 });
  const first = build([...mesh(), good]);
  const bad = sidecar('shop', 'default', { egress: [{ hosts: ['no-slash'] }] }, { generation: 2 });
  const second = build([...mesh(), bad], first);
  t.deepEqual(names(second), [fqdn('ops', 'metrics')]);
  t.true(second.sidecars[0]!.stale);
  const status = second.statuses.find((x) => x.kind === 'Sidecar')!;
  t.is(status.reason, 'Invalid');
  t.regex(
    status.message,
    /host must be of form namespace\/dnsName; the last accepted version \(generation 1\) stays in effect/,
  );
  t.true(scopeOf(build(mesh(), second), proxy('shop'), EXPLICIT).all);
  t.not(first.hash, build(mesh()).hash, 'a Sidecar is part of the snapshot hash');
});

test('automatic scoping: the Services whose servers ALLOW the proxy by principal or namespace, plus Sidecar egress', (t) => {
  const objects = [
    ...mesh(),
    // reviews admits frontend by principal; ratings admits namespace shop; metrics has a rule naming no one.
    allow('shop', 'reviews', {
      selector: { matchLabels: { app: 'reviews' } },
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend-sa'] } }] }],
    }),
    allow('shop', 'ratings', {
      selector: { matchLabels: { app: 'ratings' } },
      rules: [{ from: [{ source: { namespaces: ['sh*'] } }] }],
    }),
    allow('ops', 'metrics', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
  ];
  const s = build(objects);
  const scope = scopeOf(s, proxy('shop'), AUTOMATIC);
  t.false(scope.all);
  t.true(scope.automatic);
  t.deepEqual(
    scope.services.map((x) => x.fqdn),
    [fqdn('shop', 'ratings'), fqdn('shop', 'reviews')],
  );
  t.deepEqual(scope.reasons.get(fqdn('shop', 'reviews')), [
    'AuthorizationPolicy shop/reviews allows shop/sa/frontend-sa',
  ]);
  // Another service account of the namespace: only ratings (by namespace).
  t.deepEqual(names(s, proxy('shop', { app: 'x' }, 'other-sa'), AUTOMATIC), [fqdn('shop', 'ratings')]);
  // A proxy no policy names, without a Sidecar: everything (nothing is known about what it calls).
  t.true(scopeOf(s, proxy('ops', { app: 'metrics' }, 'metrics-sa'), AUTOMATIC).all);
  // Explicit mode ignores the policies.
  t.true(scopeOf(s, proxy('shop'), EXPLICIT).all);
  // With a Sidecar: the union.
  const withSidecar = build([...objects, sidecar('shop', 'default', { egress: [{ hosts: ['ops/*'] }] })]);
  t.deepEqual(names(withSidecar, proxy('shop'), AUTOMATIC), [
    fqdn('ops', 'metrics'),
    fqdn('shop', 'ratings'),
    fqdn('shop', 'reviews'),
  ]);
  // Proxies with the same resulting scope share the key (the generator's shape).
  t.is(scopeOf(s, proxy('shop', { app: 'a' }, 'frontend-sa'), AUTOMATIC).key, scope.key);
  t.not(scopeOf(s, proxy('shop', { app: 'x' }, 'other-sa'), AUTOMATIC).key, scope.key);
});
