// VirtualService delegation in the model (control-plane/model/virtual-service-delegates.ts): a root's
// `delegate` routes replaced by its delegate's routes merged under the root route as Istio merges them
// (mergeHTTPRoute / mergeHTTPMatchRequests), and a clear warning in the root's status for every route that
// could not be resolved (missing, invalid, has hosts, itself, not exported, match outside the root's).
import test from 'ava';
import { routeSummaries } from '../../control-plane/inspect/describe.js';
import { buildSnapshot, type BuildOptions } from '../../control-plane/model/build-snapshot.js';
import { virtualServiceFor } from '../../control-plane/model/lookup.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { scopeOf } from '../../control-plane/model/sidecar-scope.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { mergeHTTPRoute } from '../../control-plane/model/virtual-service-delegates.js';
import type { HTTPRoute, VirtualServiceSpec } from '../../crds/types.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { virtualService, workload } from './_objects.js';

const build = (objects: MeshObject[], options: Partial<BuildOptions> = {}) =>
  buildSnapshot(objects, { validate: validateRoutingResource, formatIssue, ...options });

const statusOf = (s: MeshSnapshot, ns: string, name: string) =>
  s.statuses.find((x) => x.kind === 'VirtualService' && x.namespace === ns && x.name === name)!;

const FQDN = 'reviews.default.svc.cluster.local';
const reviews = () =>
  workload('default', 'reviews', { name: 'http', port: 9080 }, [
    { version: 'v1', address: '10.0.0.1', port: 9080 },
    { version: 'v2', address: '10.0.0.2', port: 9080 },
  ]);

/** The root: /v2 goes to the delegate, the rest to reviews v1. */
const root = (delegate: { name: string; namespace?: string }, extra: Partial<HTTPRoute> = {}): VirtualServiceSpec => ({
  hosts: ['reviews'],
  http: [
    { name: 'api', match: [{ uri: { prefix: '/v2' } }], delegate, ...extra },
    { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
  ],
});

const delegateSpec: VirtualServiceSpec = {
  http: [
    {
      name: 'beta',
      match: [{ uri: { prefix: '/v2/beta' }, headers: { 'x-user': { exact: 'a' } } }],
      route: [{ destination: { host: 'reviews', subset: 'v2' } }],
    },
    { route: [{ destination: { host: 'reviews', subset: 'v1' } }], timeout: '3s' },
  ],
};

test('a root route is replaced by its delegate routes, merged under its match', (t) => {
  const s = build([
    ...reviews(),
    virtualService(
      'default',
      'reviews',
      root({ name: 'reviews-v2' }, { timeout: '5s', headers: { request: { set: { 'x-root': '1' } } } }),
    ),
    virtualService('default', 'reviews-v2', delegateSpec),
  ]);
  const vs = virtualServiceFor(s, FQDN, 'default')!;
  t.is(vs.name, 'reviews');
  t.deepEqual(vs.spec.http, [
    {
      // Names joined with "-"; the delegate's match within the root's; the root's headers inherited.
      name: 'api-beta',
      match: [{ uri: { prefix: '/v2/beta' }, headers: { 'x-user': { exact: 'a' } } }],
      route: [{ destination: { host: FQDN, subset: 'v2' } }],
      timeout: '5s',
      headers: { request: { set: { 'x-root': '1' } } },
    },
    {
      // No match of its own: the root's; its own timeout wins.
      name: 'api',
      match: [{ uri: { prefix: '/v2' } }],
      route: [{ destination: { host: FQDN, subset: 'v1' } }],
      timeout: '3s',
      headers: { request: { set: { 'x-root': '1' } } },
    },
    { route: [{ destination: { host: FQDN, subset: 'v1' } }] },
  ]);
  t.is(statusOf(s, 'default', 'reviews').reason, 'Accepted');
  t.is(statusOf(s, 'default', 'reviews-v2').reason, 'Accepted');
  // The delegate has no hosts: nothing routes through it directly, and the written root is kept as written.
  t.deepEqual(s.virtualServices.find((v) => v.name === 'reviews-v2')!.hosts, []);
  t.truthy(vs.resource.spec.http?.[0]?.delegate);
});

test('a delegate in another namespace: its short names resolve in its own namespace', (t) => {
  const s = build([
    ...reviews(),
    ...workload('team', 'ratings', { name: 'http', port: 9080 }, [{ version: 'v1', address: '10.0.1.1', port: 9080 }]),
    virtualService('default', 'reviews', root({ name: 'ratings-routes', namespace: 'team' })),
    virtualService('team', 'ratings-routes', { http: [{ route: [{ destination: { host: 'ratings' } }] }] }),
  ]);
  const vs = virtualServiceFor(s, FQDN, 'default')!;
  t.deepEqual(vs.spec.http?.[0]?.route, [{ destination: { host: 'ratings.team.svc.cluster.local' } }]);
});

test('a delegate route whose match lies outside the root match is left out, with a warning on the root', (t) => {
  const s = build([
    ...reviews(),
    virtualService('default', 'reviews', root({ name: 'reviews-v2' })),
    virtualService('default', 'reviews-v2', {
      http: [
        { match: [{ uri: { prefix: '/v1' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
        { match: [{ uri: { exact: '/v2/x' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
      ],
    }),
  ]);
  const vs = virtualServiceFor(s, FQDN, 'default')!;
  t.deepEqual(
    vs.spec.http?.map((r) => r.match?.[0]?.uri),
    [{ exact: '/v2/x' }, undefined],
  );
  const status = statusOf(s, 'default', 'reviews');
  t.is(status.reason, 'AcceptedWithWarnings');
  t.deepEqual(status.issues, [
    {
      severity: 'warning',
      path: 'spec.http[0].delegate',
      message:
        "http[0] of delegate VirtualService default/reviews-v2 matches outside this route's match (Istio's rule: a delegate's match must lie within the root's); that route is left out",
    },
  ]);
});

test('a missing, invalid, hosted, self or unexported delegate: the route is left out and the root says why', (t) => {
  const cases: [MeshObject[], { name: string; namespace?: string }, string][] = [
    [[], { name: 'nothing' }, 'VirtualService default/nothing not found; this route is left out'],
    [
      [
        virtualService('default', 'broken', {
          http: [{ route: [{ destination: { host: 'reviews' } }], timeout: 'soon' }],
        }),
      ],
      { name: 'broken' },
      'VirtualService default/broken is invalid and has no accepted version; this route is left out',
    ],
    [
      [
        virtualService('default', 'other', {
          hosts: ['other'],
          http: [{ route: [{ destination: { host: 'other' } }] }],
        }),
      ],
      { name: 'other' },
      'VirtualService default/other has hosts, so it is not a delegate (a delegate is a VirtualService without hosts); this route is left out',
    ],
    [[], { name: 'reviews' }, 'names this VirtualService itself (a delegation cycle); this route is left out'],
    [
      [virtualService('team', 'private', { exportTo: ['.'], http: [{ route: [{ destination: { host: 'x' } }] }] })],
      { name: 'private', namespace: 'team' },
      'VirtualService team/private is not exported to namespace default; this route is left out',
    ],
  ];
  for (const [objects, delegate, message] of cases) {
    const s = build([...reviews(), virtualService('default', 'reviews', root(delegate)), ...objects]);
    const vs = virtualServiceFor(s, FQDN, 'default')!;
    // Only the plain second route is left.
    t.deepEqual(vs.spec.http, [{ route: [{ destination: { host: FQDN, subset: 'v1' } }] }], message);
    const status = statusOf(s, 'default', 'reviews');
    t.is(status.reason, 'AcceptedWithWarnings');
    t.deepEqual(
      status.issues.filter((i) => i.path === 'spec.http[0].delegate').map((i) => i.message),
      [message],
    );
  }
});

test('a delegate no root uses is warned about; a delegate turned invalid keeps serving its last version', (t) => {
  const alone = build([...reviews(), virtualService('default', 'orphan', delegateSpec)]);
  t.is(statusOf(alone, 'default', 'orphan').reason, 'AcceptedWithWarnings');
  t.regex(statusOf(alone, 'default', 'orphan').message, /no root VirtualService delegates to it/);

  const first = build([
    ...reviews(),
    virtualService('default', 'reviews', root({ name: 'reviews-v2' })),
    virtualService('default', 'reviews-v2', delegateSpec, { generation: 1 }),
  ]);
  const broken: VirtualServiceSpec = { http: [{ route: [{ destination: { host: 'reviews' } }], timeout: 'soon' }] };
  const second = build(
    [
      ...reviews(),
      virtualService('default', 'reviews', root({ name: 'reviews-v2' })),
      virtualService('default', 'reviews-v2', broken, { generation: 2 }),
    ],
    { previous: first },
  );
  t.deepEqual(
    virtualServiceFor(second, FQDN, 'default')!.spec.http,
    virtualServiceFor(first, FQDN, 'default')!.spec.http,
  );
  t.is(statusOf(second, 'default', 'reviews-v2').reason, 'Invalid');
});

test('a root turned invalid keeps its delegation, and merges the delegate as it is now', (t) => {
  const first = build([
    ...reviews(),
    virtualService('default', 'reviews', root({ name: 'reviews-v2' }), { generation: 1 }),
    virtualService('default', 'reviews-v2', delegateSpec),
  ]);
  const changed: VirtualServiceSpec = { http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] };
  const second = build(
    [
      ...reviews(),
      virtualService('default', 'reviews', { ...root({ name: 'reviews-v2' }), exportTo: ['..'] }, { generation: 2 }),
      virtualService('default', 'reviews-v2', changed),
    ],
    { previous: first },
  );
  t.is(statusOf(second, 'default', 'reviews').reason, 'Invalid');
  const vs = virtualServiceFor(second, FQDN, 'default')!;
  t.true(vs.stale);
  t.deepEqual(vs.spec.http?.[0], {
    name: 'api',
    match: [{ uri: { prefix: '/v2' } }],
    route: [{ destination: { host: FQDN, subset: 'v2' } }],
  });
});

test('an unchanged root and delegate give the very same merged object in the next snapshot', (t) => {
  const objects = [
    ...reviews(),
    virtualService('default', 'reviews', root({ name: 'reviews-v2' })),
    virtualService('default', 'reviews-v2', delegateSpec),
  ];
  const first = build(objects);
  const second = build(objects, { previous: first });
  t.is(virtualServiceFor(second, FQDN, 'default'), virtualServiceFor(first, FQDN, 'default'));
});

test('Istio mergeHTTPMatchRequests: each delegate match merged with every root match it fits', (t) => {
  const rootRoute: HTTPRoute = {
    match: [
      { name: 'a', uri: { prefix: '/api' }, port: 8080 },
      { name: 'b', uri: { prefix: '/api' }, headers: { 'x-env': { exact: 'prod' } } },
    ],
    delegate: { name: 'd' },
    retries: { attempts: 1 },
  };
  const merged = mergeHTTPRoute(rootRoute, {
    match: [{ name: 'c', uri: { prefix: '/api/v1' }, queryParams: { q: { exact: '1' } } }],
    route: [{ destination: { host: 'x' } }],
  });
  t.deepEqual(merged, {
    match: [
      { name: 'a-c', uri: { prefix: '/api/v1' }, queryParams: { q: { exact: '1' } }, port: 8080 },
      {
        name: 'b-c',
        uri: { prefix: '/api/v1' },
        queryParams: { q: { exact: '1' } },
        headers: { 'x-env': { exact: 'prod' } },
      },
    ],
    route: [{ destination: { host: 'x' } }],
    retries: { attempts: 1 },
  });
  // Conflicts (Istio's stringMatchConflict / hasConflict): regex on either side, an exact root with another
  // value, a different port or ignoreUriCase, a header value the root asks differently.
  const conflicts: [HTTPRoute['match'], HTTPRoute['match']][] = [
    [[{ uri: { regex: '/a.*' } }], [{ uri: { prefix: '/a' } }]],
    [[{ uri: { prefix: '/a' } }], [{ uri: { regex: '/a.*' } }]],
    [[{ uri: { exact: '/a' } }], [{ uri: { exact: '/b' } }]],
    [[{ uri: { exact: '/a' } }], [{ uri: { prefix: '/a' } }]],
    [[{ port: 80 }], [{ port: 81 }]],
    [[{ ignoreUriCase: true }], [{}]],
    [[{ headers: { a: { exact: '1' } } }], [{ headers: { a: { exact: '2' } } }]],
    [[{ sourceNamespace: 'x' }], [{ sourceNamespace: 'y' }]],
  ];
  for (const [r, l] of conflicts)
    t.is(mergeHTTPRoute({ match: r, delegate: { name: 'd' } }, { match: l, route: [] }), null, JSON.stringify([r, l]));
  // An exact within a prefix, and a header the root does not look at, fit.
  t.truthy(
    mergeHTTPRoute(
      { match: [{ uri: { prefix: '/a' } }] },
      { match: [{ uri: { exact: '/a/b' }, headers: { h: { prefix: 'x' } } }] },
    ),
  );
});

test('describe lists a root’s merged routes, names its delegate, and marks what proxyless gRPC does not get', (t) => {
  const s = build([
    ...reviews(),
    virtualService('default', 'reviews', {
      hosts: ['reviews'],
      http: [
        { match: [{ uri: { prefix: '/down' } }], directResponse: { status: 503 } },
        {
          match: [{ uri: { prefix: '/v2' } }],
          delegate: { name: 'reviews-v2' },
          mirrors: [{ destination: { host: 'reviews', subset: 'v1' } }],
        },
      ],
    }),
    virtualService('default', 'reviews-v2', {
      http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }],
    }),
  ]);
  t.deepEqual(routeSummaries(virtualServiceFor(s, FQDN, 'default')!), [
    'uri prefix /down -> direct response 503 (not for proxyless gRPC)',
    `uri prefix /v2 -> ${FQDN}|v2 (mirror ${FQDN} (not by proxyless gRPC))`,
    'http[1] delegates to VirtualService default/reviews-v2 (merged above)',
  ]);
});

test('a Sidecar scope holds the destinations of a root’s delegate routes and of mirrors[]', (t) => {
  const sidecar: MeshObject = {
    kind: 'Sidecar',
    namespace: 'default',
    name: 'default',
    object: {
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'Sidecar',
      metadata: { name: 'default', namespace: 'default' },
      spec: { egress: [{ hosts: [`./${FQDN}`] }] },
    },
    origin: {},
  };
  const s = build([
    ...reviews(),
    ...workload('default', 'ratings', { name: 'http', port: 9080 }, [
      { version: 'v1', address: '10.0.2.1', port: 9080 },
    ]),
    ...workload('default', 'shadow', { name: 'http', port: 9080 }, [
      { version: 'v1', address: '10.0.2.2', port: 9080 },
    ]),
    ...workload('default', 'other', { name: 'http', port: 9080 }, [{ version: 'v1', address: '10.0.2.3', port: 9080 }]),
    virtualService('default', 'reviews', {
      hosts: ['reviews'],
      http: [{ delegate: { name: 'reviews-routes' }, mirrors: [{ destination: { host: 'shadow' } }] }],
    }),
    virtualService('default', 'reviews-routes', { http: [{ route: [{ destination: { host: 'ratings' } }] }] }),
    sidecar,
  ]);
  const scope = scopeOf(
    s,
    { namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client' },
    {
      automatic: false,
      trustDomain: 'cluster.local',
    },
  );
  t.deepEqual(
    scope.services.map((x) => x.fqdn),
    ['ratings.default.svc.cluster.local', FQDN, 'shadow.default.svc.cluster.local'],
  );
});
