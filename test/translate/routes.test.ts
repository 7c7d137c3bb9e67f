// RDS: VirtualService → Envoy routes for both proxy types (envoy-translation.md §2, grpc-js-xds.md §2).
// Every route configuration a test builds passes Envoy's own validation, and every proxyless one is
// decoded and accepted by grpc-js-xds's own resource validators.
import test, { type ExecutionContext } from 'ava';
import type { HTTPRoute, VirtualServiceSpec } from '../../crds/types.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { RouteConfiguration } from '../../control-plane/envoy/gen/envoy/config/route/v3/route_pb.js';
import { encodeMessage } from '../../control-plane/envoy/protos.js';
import type { MeshConfig } from '../../control-plane/translate/context.js';
import { DEFAULT_RETRY_ON, parseRetryOn } from '../../control-plane/translate/route-retry.js';
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
import { assertGrpcAccepts, at, routeConfigJson, routesJson, vhostJson, type Json } from './_routes-fixtures.js';

const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const CART = 'cart.shop.svc.cluster.local';
const R = (subset = '', port = 9080) => `outbound|${port}|${subset}|${REVIEWS}`;

/** A Service with a cluster IP and one Pod per version (labels app, version). */
function app(
  ns: string,
  name: string,
  ports: { name: string; port: number }[],
  ip: string,
  versions: string[],
): MeshObject[] {
  const out: MeshObject[] = [service(ns, name, ports, { clusterIP: ip })];
  versions.forEach((v, i) => {
    const podName = `${name}-${v}`;
    out.push(pod(ns, podName, { app: name, version: v }, `${name}-sa`));
    out.push(
      slice(
        ns,
        `${name}-${v}`,
        name,
        ports.map((p) => ({ name: p.name, port: p.port })),
        [{ address: `10.1.${ip.split('.')[3]}.${i + 1}`, pod: podName }],
      ),
    );
  });
  return out;
}

function mesh(...extra: MeshObject[]): MeshObject[] {
  return [
    namespace('default'),
    namespace('shop'),
    ...app('default', 'reviews', [{ name: 'http', port: 9080 }], '10.96.0.10', ['v1', 'v2', 'v3']),
    ...app('default', 'ratings', [{ name: 'http', port: 9080 }], '10.96.0.11', ['v1']),
    ...app(
      'shop',
      'cart',
      [
        { name: 'grpc', port: 7000 },
        { name: 'http-admin', port: 8000 },
      ],
      '10.96.0.9',
      ['v1'],
    ),
    service('default', 'db', [{ name: 'tcp', port: 5432 }], { clusterIP: '10.96.0.12' }),
    destinationRule('default', 'reviews', {
      host: 'reviews',
      subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
    }),
    ...extra,
  ];
}

const reviewsVs = (http: HTTPRoute[], extra: Partial<VirtualServiceSpec> = {}) =>
  virtualService('default', 'reviews', { hosts: ['reviews'], http, ...extra });

interface Built {
  readonly configs: RouteConfiguration[];
  readonly notes: string[];
}

function build(objects: MeshObject[], proxy: ProxyInfo, meshConfig: Partial<MeshConfig> = {}): Built {
  const snapshot = snapshotOf(objects);
  const errors = snapshot.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map((p) => p.message).join('\n'));
  const notes: string[] = [];
  return { configs: buildRouteConfigurations(contextFor(snapshot, proxy, meshConfig), notes), notes };
}

/** Builds for both proxy types and checks every configuration with Envoy and (proxyless) grpc-js-xds. */
async function buildBoth(t: ExecutionContext, objects: MeshObject[], meshConfig: Partial<MeshConfig> = {}) {
  const envoy = build(objects, envoyProxy(), meshConfig);
  const grpc = build(objects, grpcProxy(), meshConfig);
  await assertEnvoyResourcesValid(t, [...envoy.configs, ...grpc.configs]);
  assertGrpcAccepts(t, grpc.configs);
  return { envoy, grpc };
}

const routes = (b: Built, host = REVIEWS, port = 9080) => routesJson(b.configs, port, `${host}:${port}`);
const action = (route: Json) => at(route, 'route') as Json;

// ---------------------------------------------------------------------------------------------------
// Route configurations, virtual hosts, domains

test('one route configuration per HTTP port, shared by the Services on it; TCP ports get none', async (t) => {
  const { envoy, grpc } = await buildBoth(t, mesh());
  t.deepEqual(
    envoy.configs.map((c) => c.name),
    ['7000', '8000', '9080'],
  );
  t.deepEqual(
    grpc.configs.map((c) => c.name),
    ['7000', '8000', '9080'],
  );
  const vhosts = (routeConfigJson(envoy.configs, '9080').virtualHosts as Json[]).map((v) => v.name);
  t.deepEqual(vhosts, [`${RATINGS}:9080`, `${REVIEWS}:9080`, 'allow_any']);
});

test('Envoy: validate_clusters off, ports ignored in host matching, bare aliases plus cluster IPs', async (t) => {
  const { envoy } = await buildBoth(t, mesh());
  const config = routeConfigJson(envoy.configs, '9080');
  t.is(config.validateClusters, false);
  t.is(config.ignorePortInHostMatching, true);
  t.deepEqual(vhostJson(envoy.configs, 9080, `${REVIEWS}:9080`).domains, [
    '10.96.0.10',
    'reviews',
    'reviews.default',
    'reviews.default.svc',
    REVIEWS,
  ]);
});

test('gRPC: every alias with and without the port (grpc-js matches host:port), no catch-all', async (t) => {
  const { grpc } = await buildBoth(t, mesh());
  const config = routeConfigJson(grpc.configs, '9080');
  t.deepEqual(
    (config.virtualHosts as Json[]).map((v) => v.name),
    [`${RATINGS}:9080`, `${REVIEWS}:9080`],
  );
  t.deepEqual(vhostJson(grpc.configs, 9080, `${REVIEWS}:9080`).domains, [
    'reviews',
    'reviews.default',
    'reviews.default.svc',
    REVIEWS,
    `${REVIEWS}:9080`,
    'reviews.default.svc:9080',
    'reviews.default:9080',
    'reviews:9080',
  ]);
});

test('the bare short name is a domain only from the Service’s own namespace', async (t) => {
  const objects = mesh();
  const fromShop = build(objects, envoyProxy('shop'));
  const fromDefault = build(objects, envoyProxy('default'));
  await assertEnvoyResourcesValid(t, [...fromShop.configs, ...fromDefault.configs]);
  t.false((vhostJson(fromShop.configs, 9080, `${REVIEWS}:9080`).domains as string[]).includes('reviews'));
  t.true((vhostJson(fromShop.configs, 7000, `${CART}:7000`).domains as string[]).includes('cart'));
  t.false((vhostJson(fromDefault.configs, 7000, `${CART}:7000`).domains as string[]).includes('cart'));
});

test('domains are unique across a route configuration: a later Service loses a clashing domain', async (t) => {
  // Two Services share a cluster IP (possible with hand-written objects): the later FQDN loses it.
  const objects = [
    namespace('default'),
    service('default', 'a', [{ name: 'http', port: 80 }], { clusterIP: '10.96.1.1' }),
    service('default', 'b', [{ name: 'http', port: 80 }], { clusterIP: '10.96.1.1' }),
  ];
  const { envoy } = await buildBoth(t, objects);
  const all = (routeConfigJson(envoy.configs, '80').virtualHosts as Json[]).flatMap((v) => v.domains as string[]);
  t.is(new Set(all).size, all.length);
  t.true((vhostJson(envoy.configs, 80, 'a.default.svc.cluster.local:80').domains as string[]).includes('10.96.1.1'));
  t.false((vhostJson(envoy.configs, 80, 'b.default.svc.cluster.local:80').domains as string[]).includes('10.96.1.1'));
});

test('catch-all: ALLOW_ANY → PassthroughCluster, REGISTRY_ONLY → 502; always the last vhost', async (t) => {
  const allow = build(mesh(), envoyProxy());
  const block = build(mesh(), envoyProxy(), { outboundTrafficPolicy: 'REGISTRY_ONLY' });
  await assertEnvoyResourcesValid(t, [...allow.configs, ...block.configs]);
  const last = (b: Built) => (routeConfigJson(b.configs, '9080').virtualHosts as Json[]).at(-1)!;
  t.like(last(allow), { name: 'allow_any', domains: ['*'] });
  t.deepEqual(at(last(allow), 'routes', 0, 'route'), { cluster: 'PassthroughCluster', timeout: '0s' });
  t.like(last(block), { name: 'block_all', domains: ['*'] });
  t.deepEqual(at(last(block), 'routes', 0, 'directResponse'), { status: 502 });
});

// ---------------------------------------------------------------------------------------------------
// Default route

test('a Service without a VirtualService gets the default route: its cluster, Istio retries, no timeout', async (t) => {
  const { envoy, grpc } = await buildBoth(t, mesh());
  t.deepEqual(routes(envoy), [
    {
      name: 'default',
      match: { prefix: '/', caseSensitive: true },
      route: {
        cluster: R(),
        timeout: '0s',
        retryPolicy: {
          retryOn: DEFAULT_RETRY_ON,
          numRetries: 2,
          retryHostPredicate: [
            {
              name: 'envoy.retry_host_predicates.previous_hosts',
              typedConfig: {
                '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
              },
            },
          ],
          hostSelectionRetryMaxAttempts: '5',
        },
      },
      decorator: { operation: `${REVIEWS}:9080/*` },
    },
  ]);
  // gRPC: prefix "" and only the retry conditions grpc-js acts on.
  t.deepEqual(routes(grpc), [
    {
      name: 'default',
      match: { prefix: '', caseSensitive: true },
      route: { cluster: R(), timeout: '0s', retryPolicy: { retryOn: 'unavailable,cancelled', numRetries: 2 } },
    },
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Matches

test('uri exact / prefix / regex, ignoreUriCase; each match entry is its own route with the same action', async (t) => {
  const vs = reviewsVs([
    {
      name: 'api',
      match: [
        { name: 'exact', uri: { exact: '/a' } },
        { uri: { prefix: '/b' }, ignoreUriCase: true },
        { uri: { regex: '/c/[0-9]+' } },
      ],
      route: [{ destination: { host: 'reviews', subset: 'v2' } }],
    },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  for (const b of [envoy, grpc]) {
    const r = routes(b);
    t.is(r.length, 3);
    t.deepEqual(
      r.map((x) => x.match),
      [
        { path: '/a', caseSensitive: true },
        { prefix: '/b', caseSensitive: false },
        { safeRegex: { regex: '/c/[0-9]+' }, caseSensitive: true },
      ],
    );
    t.deepEqual(
      r.map((x) => x.name),
      ['api.exact', 'api', 'api'],
    );
    t.true(r.every((x) => at(x, 'route', 'cluster') === R('v2')));
  }
});

test('headers exact/prefix/regex/presence, withoutHeaders, method/authority/scheme, queryParams', async (t) => {
  const vs = reviewsVs([
    {
      match: [
        {
          headers: { 'x-b': { prefix: 'pre' }, 'x-a': { exact: 'jason' }, 'x-c': { regex: 'v[0-9]' }, 'x-d': {} },
          withoutHeaders: { 'x-debug': { exact: '1' }, 'x-canary': {} },
          method: { exact: 'POST' },
          authority: { prefix: 'reviews' },
          scheme: { exact: 'http' },
          queryParams: { q: { exact: 'x' }, r: { regex: 'a.*' }, s: {} },
        },
      ],
      route: [{ destination: { host: 'reviews' } }],
    },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  const match = at(routes(envoy)[0], 'match');
  t.deepEqual(match, {
    prefix: '/',
    caseSensitive: true,
    headers: [
      { name: ':authority', stringMatch: { prefix: 'reviews' } },
      { name: ':method', stringMatch: { exact: 'POST' } },
      { name: ':scheme', stringMatch: { exact: 'http' } },
      { name: 'x-a', stringMatch: { exact: 'jason' } },
      { name: 'x-b', stringMatch: { prefix: 'pre' } },
      { name: 'x-c', stringMatch: { safeRegex: { regex: 'v[0-9]' } } },
      { name: 'x-canary', presentMatch: true, invertMatch: true },
      { name: 'x-d', presentMatch: true },
      { name: 'x-debug', stringMatch: { exact: '1' }, invertMatch: true, treatMissingHeaderAsEmpty: true },
    ],
    queryParameters: [
      { name: 'q', stringMatch: { exact: 'x' } },
      { name: 'r', stringMatch: { safeRegex: { regex: 'a.*' } } },
      { name: 's', presentMatch: true },
    ],
  });
  t.deepEqual(at(routes(grpc)[0], 'match', 'headers'), at(match, 'headers'));
});

test('port, sourceLabels and sourceNamespace are decided at generation: routes that do not apply are left out', async (t) => {
  const vs = reviewsVs([
    { match: [{ port: 9999 }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
    { match: [{ sourceLabels: { app: 'productpage' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
    { match: [{ sourceNamespace: 'shop' }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
    { match: [{ port: 9080, uri: { prefix: '/p' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
    { route: [{ destination: { host: 'reviews' } }] },
  ]);
  const objects = mesh(vs);
  const plain = build(objects, envoyProxy('default'));
  const product = build(objects, envoyProxy('default', { labels: { app: 'productpage' } }));
  const shop = build(objects, grpcProxy('shop'));
  await assertEnvoyResourcesValid(t, [...plain.configs, ...product.configs, ...shop.configs]);
  assertGrpcAccepts(t, shop.configs);
  const clusters = (b: Built) => routes(b).map((r) => at(r, 'route', 'cluster'));
  t.deepEqual(clusters(plain), [R('v1'), R()]);
  // For a proxy they apply to, these matches take every request: the routes after them are dropped.
  t.deepEqual(clusters(product), [R('v2')]);
  t.deepEqual(clusters(shop), [R('v3')]);
  // The port match itself is not an Envoy matcher.
  t.deepEqual(at(routes(plain)[0], 'match'), { prefix: '/p', caseSensitive: true });
});

test('routes after the first catch-all are dropped', async (t) => {
  const vs = reviewsVs([
    { match: [{ uri: { prefix: '/a' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
    { match: [{ uri: { regex: '.*' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
    { route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  for (const b of [envoy, grpc])
    t.deepEqual(
      routes(b).map((r) => at(r, 'route', 'cluster')),
      [R('v1'), R('v2')],
    );
});

// ---------------------------------------------------------------------------------------------------
// Destinations

test('weighted destinations: zero weights dropped, no total_weight; one destination → cluster', async (t) => {
  const vs = reviewsVs([
    {
      match: [{ uri: { prefix: '/split' } }],
      route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight: 80 },
        { destination: { host: 'reviews', subset: 'v2' }, weight: 20 },
        { destination: { host: 'reviews', subset: 'v3' }, weight: 0 },
      ],
    },
    { route: [{ destination: { host: 'reviews', subset: 'v3' }, weight: 100 }] },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  for (const b of [envoy, grpc]) {
    const [split, single] = routes(b);
    t.deepEqual(at(split!, 'route', 'weightedClusters'), {
      clusters: [
        { name: R('v1'), weight: 80 },
        { name: R('v2'), weight: 20 },
      ],
    });
    t.is(at(single!, 'route', 'cluster'), R('v3'));
  }
});

test('a split whose weights are all zero is left out with a note (Envoy and grpc-js reject a zero sum)', async (t) => {
  const vs = reviewsVs([
    {
      match: [{ uri: { prefix: '/none' } }],
      route: [{ destination: { host: 'reviews', subset: 'v1' } }, { destination: { host: 'reviews', subset: 'v2' } }],
    },
    { route: [{ destination: { host: 'reviews' } }] },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  for (const b of [envoy, grpc]) {
    t.deepEqual(
      routes(b).map((r) => at(r, 'route', 'cluster')),
      [R()],
    );
    t.true(b.notes.some((n) => n.includes('default/reviews http[0]') && n.includes('weight')));
  }
});

test('destination port: port.number, else the Service’s only port, else the route configuration’s port', async (t) => {
  // cart has two ports: without a port number the route configuration's port decides.
  const vs = virtualService('shop', 'cart', {
    hosts: ['cart'],
    http: [
      { match: [{ uri: { prefix: '/r' } }], route: [{ destination: { host: 'reviews.default' } }] },
      { match: [{ uri: { prefix: '/n' } }], route: [{ destination: { host: 'cart', port: { number: 8000 } } }] },
      { route: [{ destination: { host: 'cart' } }] },
    ],
  });
  const { envoy } = await buildBoth(t, mesh(vs));
  t.deepEqual(
    routes(envoy, CART, 7000).map((r) => at(r, 'route', 'cluster')),
    [R(), `outbound|8000||${CART}`, `outbound|7000||${CART}`],
  );
  t.deepEqual(
    routes(envoy, CART, 8000).map((r) => at(r, 'route', 'cluster')),
    [R(), `outbound|8000||${CART}`, `outbound|8000||${CART}`],
  );
});

// ---------------------------------------------------------------------------------------------------
// Retries and timeouts

test('retries: attempts 0 → no policy; attempts N, retryOn codes → retriable_status_codes, perTryTimeout, remote localities', async (t) => {
  const vs = reviewsVs([
    { match: [{ uri: { prefix: '/off' } }], route: [{ destination: { host: 'reviews' } }], retries: { attempts: 0 } },
    {
      match: [{ uri: { prefix: '/on' } }],
      route: [{ destination: { host: 'reviews' } }],
      retries: {
        attempts: 3,
        perTryTimeout: '0.25s',
        retryOn: 'gateway-error,503,unavailable,504',
        retryRemoteLocalities: true,
      },
    },
    {
      match: [{ uri: { prefix: '/http' } }],
      route: [{ destination: { host: 'reviews' } }],
      retries: { attempts: 2, retryOn: '5xx' },
    },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  const [off, on, http] = routes(envoy);
  t.false('retryPolicy' in action(off!));
  t.like(at(on!, 'route', 'retryPolicy') as Json, {
    retryOn: 'gateway-error,unavailable,retriable-status-codes',
    numRetries: 3,
    perTryTimeout: '0.250s',
    retriableStatusCodes: [503, 504],
    hostSelectionRetryMaxAttempts: '5',
    retryPriority: {
      name: 'envoy.retry_priorities.previous_priorities',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
        updateFrequency: 2,
      },
    },
  });
  t.is(at(http!, 'route', 'retryPolicy', 'retryOn'), '5xx');
  t.false('retryPriority' in (at(http!, 'route', 'retryPolicy') as Json));
  // grpc-js: only gRPC conditions; num_retries ≥ 1 always; a policy with none is left out, with a note.
  const [goff, gon, ghttp] = routes(grpc);
  t.false('retryPolicy' in action(goff!));
  t.deepEqual(at(gon!, 'route', 'retryPolicy'), { retryOn: 'unavailable', numRetries: 3, perTryTimeout: '0.250s' });
  t.false('retryPolicy' in action(ghttp!));
  t.true(grpc.notes.some((n) => n.includes('http[2]') && n.includes('retryOn')));
});

test('parseRetryOn trims, de-duplicates and moves status codes out', (t) => {
  t.deepEqual(parseRetryOn(' 5xx, 503,5xx ,,reset '), {
    conditions: ['5xx', 'reset', 'retriable-status-codes'],
    statusCodes: [503],
  });
});

test('timeout: set → timeout and max_stream_duration (how gRPC is bounded); unset → 0s', async (t) => {
  const vs = reviewsVs([
    { match: [{ uri: { prefix: '/t' } }], route: [{ destination: { host: 'reviews' } }], timeout: '200ms' },
    { route: [{ destination: { host: 'reviews' } }] },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  for (const b of [envoy, grpc]) {
    const [timed, plain] = routes(b);
    t.like(action(timed!), {
      timeout: '0.200s',
      maxStreamDuration: { maxStreamDuration: '0.200s', grpcTimeoutHeaderMax: '0.200s' },
    });
    t.is(action(plain!).timeout, '0s');
    t.false('maxStreamDuration' in action(plain!));
  }
});

// ---------------------------------------------------------------------------------------------------
// Fault, mirror, redirect, rewrite, headers, CORS

test('fault: HTTPFault per route, percentages over a million, gRPC status as its code', async (t) => {
  const vs = reviewsVs([
    {
      match: [{ uri: { prefix: '/slow' } }],
      route: [{ destination: { host: 'reviews' } }],
      fault: { delay: { fixedDelay: '1.5s', percentage: { value: 0.1 } }, abort: { httpStatus: 503 } },
    },
    {
      route: [{ destination: { host: 'reviews' } }],
      fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 100 } } },
    },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  for (const b of [envoy, grpc]) {
    const [slow, abort] = routes(b);
    t.deepEqual(at(slow!, 'typedPerFilterConfig', 'envoy.filters.http.fault'), {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
      delay: { fixedDelay: '1.500s', percentage: { numerator: 1000, denominator: 'MILLION' } },
      abort: { httpStatus: 503, percentage: { numerator: 1000000, denominator: 'MILLION' } },
    });
    t.deepEqual(at(abort!, 'typedPerFilterConfig', 'envoy.filters.http.fault', 'abort'), {
      grpcStatus: 14,
      percentage: { numerator: 1000000, denominator: 'MILLION' },
    });
  }
});

test('mirror: request_mirror_policies with the percentage; 0% → none; proxyless gRPC does not mirror', async (t) => {
  const vs = reviewsVs([
    {
      match: [{ uri: { prefix: '/m' } }],
      route: [{ destination: { host: 'reviews', subset: 'v1' } }],
      mirror: { host: 'reviews', subset: 'v2' },
      mirrorPercentage: { value: 25 },
    },
    {
      match: [{ uri: { prefix: '/all' } }],
      route: [{ destination: { host: 'reviews' } }],
      mirror: { host: 'ratings' },
    },
    { route: [{ destination: { host: 'reviews' } }], mirror: { host: 'ratings' }, mirrorPercentage: { value: 0 } },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  const [m, all, none] = routes(envoy);
  t.deepEqual(at(m!, 'route', 'requestMirrorPolicies'), [
    {
      cluster: R('v2'),
      runtimeFraction: { defaultValue: { numerator: 250000, denominator: 'MILLION' } },
      traceSampled: false,
    },
  ]);
  t.deepEqual(at(all!, 'route', 'requestMirrorPolicies'), [
    {
      cluster: `outbound|9080||${RATINGS}`,
      runtimeFraction: { defaultValue: { numerator: 100 } },
      traceSampled: false,
    },
  ]);
  t.false('requestMirrorPolicies' in action(none!));
  t.true(routes(grpc).every((r) => !('requestMirrorPolicies' in action(r))));
});

test('redirect: Envoy gets a redirect action; proxyless gRPC leaves the route out with a note', async (t) => {
  const vs = reviewsVs([
    {
      match: [{ uri: { prefix: '/old' } }],
      redirect: { uri: '/new', authority: 'ratings', port: 8080, scheme: 'https', redirectCode: 308 },
    },
    { match: [{ uri: { prefix: '/moved' } }], redirect: { uri: '/x' } },
    { route: [{ destination: { host: 'reviews' } }] },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  const [full, simple] = routes(envoy);
  t.deepEqual(at(full!, 'redirect'), {
    schemeRedirect: 'https',
    hostRedirect: 'ratings',
    portRedirect: 8080,
    pathRedirect: '/new',
    responseCode: 'PERMANENT_REDIRECT',
  });
  t.deepEqual(at(simple!, 'redirect'), { pathRedirect: '/x' }); // 301 is the enum's zero value
  t.deepEqual(
    routes(grpc).map((r) => Object.keys(r).filter((k) => k === 'route' || k === 'redirect')),
    [['route']],
  );
  t.is(grpc.notes.filter((n) => n.includes('redirect is not supported by proxyless gRPC')).length, 2);
});

test('rewrite: prefix, regex and authority', async (t) => {
  const vs = reviewsVs([
    {
      match: [{ uri: { prefix: '/v1/' } }],
      route: [{ destination: { host: 'reviews' } }],
      rewrite: { uri: '/', authority: 'reviews.internal' },
    },
    {
      route: [{ destination: { host: 'reviews' } }],
      rewrite: { uriRegexRewrite: { match: '^/api/(.*)$', rewrite: '/\\1' } },
    },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  for (const b of [envoy, grpc]) {
    const [prefix, regex] = routes(b);
    t.like(action(prefix!), { prefixRewrite: '/', hostRewriteLiteral: 'reviews.internal' });
    t.deepEqual(action(regex!).regexRewrite, { pattern: { regex: '^/api/(.*)$' }, substitution: '/\\1' });
  }
});

test('header operations: route-level, a single destination’s at route level, several per ClusterWeight', async (t) => {
  const vs = reviewsVs([
    {
      match: [{ uri: { prefix: '/one' } }],
      headers: {
        request: { set: { 'x-b': '1', 'x-a': '2' }, add: { 'x-c': '3' }, remove: ['x-z'] },
        response: { remove: ['server'] },
      },
      route: [
        {
          destination: { host: 'reviews' },
          headers: { request: { set: { host: 'reviews.v1' } }, response: { add: { 'x-r': 'r' } } },
        },
      ],
    },
    {
      route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight: 50, headers: { request: { set: { 'x-v': '1' } } } },
        { destination: { host: 'reviews', subset: 'v2' }, weight: 50, headers: { response: { remove: ['x-q'] } } },
      ],
    },
  ]);
  const { envoy } = await buildBoth(t, mesh(vs));
  const [one, split] = routes(envoy);
  t.like(one!, {
    requestHeadersToAdd: [
      { header: { key: 'x-a', value: '2' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-b', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-c', value: '3' } },
    ],
    requestHeadersToRemove: ['x-z'],
    responseHeadersToAdd: [{ header: { key: 'x-r', value: 'r' } }],
    responseHeadersToRemove: ['server'],
  });
  t.is(action(one!).hostRewriteLiteral, 'reviews.v1');
  t.deepEqual(at(split!, 'route', 'weightedClusters', 'clusters'), [
    {
      name: R('v1'),
      weight: 50,
      requestHeadersToAdd: [{ header: { key: 'x-v', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
    },
    { name: R('v2'), weight: 50, responseHeadersToRemove: ['x-q'] },
  ]);
});

test('CORS: Envoy gets the cors filter’s per-route policy; proxyless gRPC none (grpc-js would NACK it)', async (t) => {
  const vs = reviewsVs([
    {
      route: [{ destination: { host: 'reviews' } }],
      corsPolicy: {
        allowOrigins: [{ exact: 'https://a.example' }, { regex: 'https://.*\\.b\\.example' }],
        allowMethods: ['GET', 'POST'],
        allowHeaders: ['x-a'],
        exposeHeaders: ['x-b', 'x-c'],
        maxAge: '1m',
        allowCredentials: true,
      },
    },
  ]);
  const { envoy, grpc } = await buildBoth(t, mesh(vs));
  t.deepEqual(at(routes(envoy)[0], 'typedPerFilterConfig', 'envoy.filters.http.cors'), {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
    allowOriginStringMatch: [{ exact: 'https://a.example' }, { safeRegex: { regex: 'https://.*\\.b\\.example' } }],
    allowMethods: 'GET,POST',
    allowHeaders: 'x-a',
    exposeHeaders: 'x-b,x-c',
    maxAge: '60',
    allowCredentials: true,
    filterEnabled: { defaultValue: { numerator: 100 } },
    forwardNotMatchingPreflights: true,
  });
  t.false('typedPerFilterConfig' in routes(grpc)[0]!);
});

// ---------------------------------------------------------------------------------------------------
// DestinationRule consistent hash

test('consistent hash → hash_policy (header, cookie, source IP, query); no previous_hosts predicate', async (t) => {
  const rule = (consistentHash: object) =>
    destinationRule('default', 'ratings', { host: 'ratings', trafficPolicy: { loadBalancer: { consistentHash } } });
  const cases: [object, Json][] = [
    [{ httpHeaderName: 'x-user' }, { header: { headerName: 'x-user' } }],
    [{ httpCookie: { name: 'sid', path: '/', ttl: '10s' } }, { cookie: { name: 'sid', ttl: '10s', path: '/' } }],
    [{ useSourceIp: true }, { connectionProperties: { sourceIp: true } }],
    [{ httpQueryParameterName: 'u' }, { queryParameter: { name: 'u' } }],
  ];
  for (const [hash, expected] of cases) {
    const { envoy } = await buildBoth(t, mesh(rule(hash)));
    const route = action(routes(envoy, RATINGS)[0]!);
    t.deepEqual(route.hashPolicy, [expected]);
    t.false('retryHostPredicate' in (route.retryPolicy as Json));
    t.is((route.retryPolicy as Json).hostSelectionRetryMaxAttempts, '5');
  }
});

test('consistent hash precedence: a subset’s load balancer, and port-level settings, win', async (t) => {
  const dr = destinationRule('default', 'reviews-hash', {
    host: 'reviews',
    trafficPolicy: {
      loadBalancer: { consistentHash: { httpHeaderName: 'x-top' } },
      portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { consistentHash: { httpHeaderName: 'x-port' } } }],
    },
    subsets: [
      {
        name: 'h',
        labels: { version: 'v1' },
        trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } },
      },
    ],
  });
  const vs = virtualService('default', 'ratings', {
    hosts: ['ratings'],
    http: [
      {
        route: [
          { destination: { host: 'reviews', subset: 'h' }, weight: 50 },
          { destination: { host: 'reviews' }, weight: 50 },
        ],
      },
    ],
  });
  const objects = mesh(vs).filter((o) => !(o.kind === 'DestinationRule' && o.name === 'reviews'));
  const { envoy } = await buildBoth(t, [...objects, dr]);
  t.deepEqual(action(routes(envoy, RATINGS)[0]!).hashPolicy, [
    { connectionProperties: { sourceIp: true } },
    { header: { headerName: 'x-port' } },
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Determinism

test('deterministic: the same objects in any order give byte-identical route configurations', (t) => {
  const objects = mesh(
    reviewsVs([
      {
        match: [{ headers: { b: { exact: '1' }, a: { exact: '2' } } }],
        route: [{ destination: { host: 'reviews', subset: 'v2' } }],
      },
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 90 },
          { destination: { host: 'reviews', subset: 'v3' }, weight: 10 },
        ],
      },
    ]),
  );
  for (const proxy of [envoyProxy(), grpcProxy()]) {
    const bytes = (objs: MeshObject[]) =>
      build(objs, proxy).configs.map((c) => Buffer.from(encodeMessage(c)).toString('base64'));
    const reference = bytes(objects);
    t.deepEqual(bytes([...objects].reverse()), reference);
    t.deepEqual(bytes([...objects.slice(3), ...objects.slice(0, 3)]), reference);
  }
});
