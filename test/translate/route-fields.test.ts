// RDS for the route fields of issue 15 — mirrors[], directResponse, redirect prefixRewrite/derivePort, retries
// backoff/retryIgnorePreviousHosts, delegated routes — for both proxy types. Every configuration passes
// Envoy's own validation and every proxyless one grpc-js-xds's own validators (what it would NACK).
import test, { type ExecutionContext } from 'ava';
import type { HTTPRoute } from '../../crds/types.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { RouteConfiguration } from '../../control-plane/envoy/gen/envoy/config/route/v3/route_pb.js';
import { buildRouteConfigurations } from '../../control-plane/translate/routes.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import {
  assertEnvoyResourcesValid,
  contextFor,
  destinationRule,
  envoyProxy,
  grpcProxy,
  namespace,
  pod,
  service,
  slice,
  snapshotOf,
  virtualService,
} from './_snapshots.js';
import { assertGrpcAccepts, routesJson, type Json } from './_routes-fixtures.js';

const REVIEWS = 'reviews.default.svc.cluster.local';
const R = (subset = '') => `outbound|9080|${subset}|${REVIEWS}`;

function mesh(...extra: MeshObject[]): MeshObject[] {
  const out: MeshObject[] = [
    namespace('default'),
    service('default', 'reviews', [{ name: 'http', port: 9080 }], { clusterIP: '10.96.0.10' }),
  ];
  ['v1', 'v2'].forEach((v, i) => {
    out.push(pod('default', `reviews-${v}`, { app: 'reviews', version: v }, 'reviews-sa'));
    out.push(
      slice(
        'default',
        `reviews-${v}`,
        'reviews',
        [{ name: 'http', port: 9080 }],
        [{ address: `10.1.0.${i + 1}`, pod: `reviews-${v}` }],
      ),
    );
  });
  out.push(
    destinationRule('default', 'reviews', {
      host: 'reviews',
      subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })),
    }),
  );
  return [...out, ...extra];
}

interface Built {
  readonly configs: RouteConfiguration[];
  readonly notes: string[];
}

function build(objects: MeshObject[], proxy: ProxyInfo): Built {
  const snapshot = snapshotOf(objects);
  const errors = snapshot.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map((p) => p.message).join('\n'));
  const notes: string[] = [];
  return { configs: buildRouteConfigurations(contextFor(snapshot, proxy, {}), notes), notes };
}

async function buildBoth(t: ExecutionContext, objects: MeshObject[]) {
  const envoy = build(objects, envoyProxy());
  const grpc = build(objects, grpcProxy());
  await assertEnvoyResourcesValid(t, [...envoy.configs, ...grpc.configs]);
  assertGrpcAccepts(t, grpc.configs);
  return { envoy, grpc };
}

const routes = (b: Built) => routesJson(b.configs, 9080, `${REVIEWS}:9080`);
const reviews = (http: HTTPRoute[]) => virtualService('default', 'reviews', { hosts: ['reviews'], http });
const to = (subset: string) => [{ destination: { host: 'reviews', subset } }];

test('mirrors[]: one request_mirror_policy each (0% none), after mirror; proxyless gets none and a note', async (t) => {
  const { envoy, grpc } = await buildBoth(
    t,
    mesh(
      reviews([
        {
          route: to('v1'),
          mirrors: [
            { destination: { host: 'reviews', subset: 'v2' }, percentage: { value: 12.5 } },
            { destination: { host: 'reviews', subset: 'v1' }, percentage: { value: 0 } },
            { destination: { host: 'reviews' } },
          ],
        },
      ]),
    ),
  );
  t.deepEqual((routes(envoy)[0]!.route as Json).requestMirrorPolicies, [
    {
      cluster: R('v2'),
      runtimeFraction: { defaultValue: { numerator: 125000, denominator: 'MILLION' } },
      traceSampled: false,
    },
    { cluster: R(), runtimeFraction: { defaultValue: { numerator: 100 } }, traceSampled: false },
  ]);
  t.is((routes(grpc)[0]!.route as Json).requestMirrorPolicies, undefined);
  t.deepEqual(grpc.notes, [
    'VirtualService default/reviews http[0]: proxyless gRPC does not mirror; mirror and mirrors are ignored for it',
  ]);
  t.deepEqual(envoy.notes, []);
});

test('directResponse: Envoy direct_response with a text or bytes body; proxyless leaves the route out', async (t) => {
  const { envoy, grpc } = await buildBoth(
    t,
    mesh(
      reviews([
        { match: [{ uri: { prefix: '/a' } }], directResponse: { status: 418, body: { string: 'teapot' } } },
        { match: [{ uri: { prefix: '/b' } }], directResponse: { status: 204 } },
        { match: [{ uri: { prefix: '/c' } }], directResponse: { status: 200, body: { bytes: 'AAEC' } } },
        { route: to('v1') },
      ]),
    ),
  );
  t.deepEqual(
    routes(envoy)
      .slice(0, 3)
      .map((r) => r.directResponse),
    [
      { status: 418, body: { inlineString: 'teapot' } },
      { status: 204 },
      { status: 200, body: { inlineBytes: 'AAEC' } },
    ],
  );
  t.deepEqual(
    routes(grpc).map((r) => (r.route as Json).cluster),
    [R('v1')],
  );
  t.is(grpc.notes.filter((n) => n.includes('directResponse is not supported by proxyless gRPC')).length, 3);
});

test('redirect: prefixRewrite → prefix_rewrite; derivePort FROM_REQUEST_PORT → the port, FROM_PROTOCOL_DEFAULT → none', async (t) => {
  const { envoy, grpc } = await buildBoth(
    t,
    mesh(
      reviews([
        { match: [{ uri: { prefix: '/old' } }], redirect: { prefixRewrite: '/new', derivePort: 'FROM_REQUEST_PORT' } },
        { match: [{ uri: { prefix: '/tls' } }], redirect: { scheme: 'https', derivePort: 'FROM_PROTOCOL_DEFAULT' } },
        { match: [{ uri: { prefix: '/p' } }], redirect: { uri: '/q', port: 8443 } },
        { route: to('v1') },
      ]),
    ),
  );
  t.deepEqual(
    routes(envoy)
      .slice(0, 3)
      .map((r) => r.redirect),
    // 301 (MOVED_PERMANENTLY) is the enum's zero value: proto3 JSON leaves it out.
    [
      { prefixRewrite: '/new', portRedirect: 9080 },
      { schemeRedirect: 'https' },
      { pathRedirect: '/q', portRedirect: 8443 },
    ],
  );
  t.is(routes(grpc).length, 1);
});

test('retries: backoff → retry_back_off.base_interval (both proxies); retryIgnorePreviousHosts false drops the predicate', async (t) => {
  const { envoy, grpc } = await buildBoth(
    t,
    mesh(
      reviews([
        {
          match: [{ uri: { prefix: '/a' } }],
          route: to('v1'),
          retries: { attempts: 3, retryOn: 'unavailable', backoff: '250ms', retryIgnorePreviousHosts: false },
        },
        { route: to('v1'), retries: { attempts: 1, retryOn: 'unavailable', retryIgnorePreviousHosts: true } },
      ]),
    ),
  );
  const [a, b] = routes(envoy).map((r) => (r.route as Json).retryPolicy as Json);
  t.deepEqual(a!.retryBackOff, { baseInterval: '0.250s' });
  t.is(a!.retryHostPredicate, undefined);
  t.is(b!.retryBackOff, undefined);
  t.is((b!.retryHostPredicate as Json[]).length, 1);
  t.deepEqual(((routes(grpc)[0]!.route as Json).retryPolicy as Json).retryBackOff, { baseInterval: '0.250s' });
});

test('delegated routes: a directResponse the root carries goes to every merged route (redirect first); proxyless ACKs', async (t) => {
  const objects = mesh(
    reviews([
      { match: [{ uri: { prefix: '/api' } }], delegate: { name: 'api' }, directResponse: { status: 503 } },
      { route: to('v1') },
    ]),
    virtualService('default', 'api', {
      http: [{ match: [{ uri: { prefix: '/api/moved' } }], redirect: { authority: 'elsewhere' } }, { route: to('v2') }],
    }),
  );
  const { envoy, grpc } = await buildBoth(t, objects);
  t.deepEqual(
    routes(envoy).map((r) => [
      (r.match as Json).prefix,
      r.redirect ? 'redirect' : r.directResponse ? 'direct' : 'route',
    ]),
    [
      ['/api/moved', 'redirect'],
      ['/api', 'direct'],
      ['/', 'route'],
    ],
  );
  t.deepEqual(
    routes(grpc).map((r) => (r.route as Json).cluster),
    [R('v1')],
  );
});
