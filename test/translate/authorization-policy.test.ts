// AuthorizationPolicy in translation and in `trellis authz check`: Istio's evaluation (DENY before ALLOW,
// ALLOW denies what it does not match, an empty ALLOW denies all, `rules: [{}]` allows all, root-namespace
// policies mesh-wide), value forms, TCP's HTTP-only fields, AUDIT, and the proxyless server listeners
// that grpc-js-xds itself accepts with GRPC_XDS_EXPERIMENTAL_RBAC=true (the flag is read when the package loads).
import '../helpers/grpc-rbac-env.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { checkAuthz, type AuthzQuery } from '../../control-plane/authz/check.js';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { parseManifests } from '../../control-plane/sources/manifests.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import { meshGenerator } from '../../control-plane/translate/generator.js';
import { serverListeners } from '../../control-plane/translate/listeners-grpc.js';
import { meshSources, proxySources } from '../../control-plane/translate/sources.js';
import { clone, create } from '@bufbuild/protobuf';
import { packAny, TypeUrl, unpackAny, type Any } from '../../control-plane/envoy/protos.js';
import type { RBAC as NetworkRbac } from '../../control-plane/envoy/gen/envoy/extensions/filters/network/rbac/v3/rbac_pb.js';
import { validateEnvoyResources } from '../helpers/envoy-validate.js';
import { ListenerSchema, type Listener } from '../../control-plane/envoy/gen/envoy/config/listener/v3/listener_pb.js';
import { FilterSchema } from '../../control-plane/envoy/gen/envoy/config/listener/v3/listener_components_pb.js';
import {
  HttpConnectionManagerSchema,
  HttpFilterSchema,
  type HttpConnectionManager,
} from '../../control-plane/envoy/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js';
import { hcmFilter } from '../../control-plane/translate/http-connection-manager.js';
import { workloadRbac } from '../../control-plane/translate/rbac.js';
import { rbacHttpFilters } from '../../control-plane/translate/rbac-filters.js';
import type { AuthorizationPolicySpec } from '../../crds/types.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { repoRoot } from '../helpers/peer-paths.js';
import { assertGrpcAccepts, grpcNack } from './_routes-fixtures.js';
import {
  assertEnvoyResourcesValid,
  contextFor,
  encodeAll,
  envoyProxy,
  grpcProxy,
  namespace,
  service,
  slice,
  pod,
  snapshotOf,
  workload,
} from './_snapshots.js';

const SHOP = 'shop';
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const OPS = 'spiffe://cluster.local/ns/ops/sa/admin';

function ap(ns: string, name: string, spec: AuthorizationPolicySpec, creationTimestamp?: string): MeshObject {
  return {
    kind: 'AuthorizationPolicy',
    namespace: ns,
    name,
    object: {
      apiVersion: 'security.trellis.dev/v1alpha1',
      kind: 'AuthorizationPolicy',
      metadata: { name, namespace: ns, ...(creationTimestamp ? { creationTimestamp } : {}) },
      spec,
    },
    origin: {},
  };
}

/** shop: reviews (grpc 9080, Pod reviews-v1 at 10.0.0.1, labels app=reviews) and redis (tcp 6379 at 10.0.0.9). */
function mesh(...policies: MeshObject[]): MeshSnapshot {
  const snapshot = snapshotOf([
    namespace(SHOP),
    namespace('trellis-system'),
    namespace('ops'),
    ...workload(SHOP, 'reviews', { name: 'grpc', port: 9080 }, [{ version: 'v1', address: '10.0.0.1', port: 9080 }]),
    service(SHOP, 'redis', [{ name: 'tcp-redis', port: 6379 }], { clusterIP: '10.96.0.9' }),
    pod(SHOP, 'redis-0', { app: 'redis', 'trellis.dev/tlsMode': 'mesh' }, 'redis'),
    slice(SHOP, 'redis-x', 'redis', [{ name: 'tcp-redis', port: 6379 }], [{ address: '10.0.0.9', pod: 'redis-0' }]),
    ...policies,
  ]);
  return snapshot;
}

function check(snapshot: MeshSnapshot, query: Partial<AuthzQuery> & { to?: string }) {
  return checkAuthz(
    { snapshot, mesh: defaultMeshConfig, sent: () => undefined },
    { to: 'reviews.shop', path: '/reviews.Reviews/Get', ...query },
  );
}

const verdict = (snapshot: MeshSnapshot, query: Partial<AuthzQuery> = {}) => {
  const a = check(snapshot, query);
  const w = a.workloads[0]!;
  return `${w.verdict} ${w.decidedBy?.policy ?? '-'}`;
};

test('no policy: everything is allowed, and the answer says why', (t) => {
  const a = check(mesh(), { from: FRONTEND });
  t.is(a.verdict, 'ALLOW');
  t.like(a.workloads[0], {
    workload: 'shop/reviews-v1',
    proxy: { id: 'reviews-v1.shop', type: 'envoy', config: 'generated' },
    transport: 'http',
    reason: 'no AuthorizationPolicy applies to the workload',
  });
});

test('an ALLOW policy with an empty spec denies every request; rules: [{}] allows every request', (t) => {
  t.is(verdict(mesh(ap(SHOP, 'none', {})), { from: FRONTEND }), 'DENY -');
  t.is(verdict(mesh(ap(SHOP, 'all', { rules: [{}] })), { from: FRONTEND }), 'ALLOW ns[shop]-policy[all]-rule[0]');
  t.is(verdict(mesh(ap(SHOP, 'all', { rules: [{}] }))), 'ALLOW ns[shop]-policy[all]-rule[0]', 'plaintext too');
});

test('once an ALLOW policy selects a workload, requests it does not match are denied; DENY is evaluated first', (t) => {
  const allowFrontend = ap(SHOP, 'frontend', {
    rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }] }],
  });
  const s = mesh(allowFrontend);
  t.is(verdict(s, { from: FRONTEND }), 'ALLOW ns[shop]-policy[frontend]-rule[0]');
  t.is(verdict(s, { from: OPS }), 'DENY -');
  t.regex(check(s, { from: OPS }).workloads[0]!.reason, /no ALLOW policy matches/);
  const denyGet = ap(SHOP, 'no-get', {
    action: 'DENY',
    rules: [{ to: [{ operation: { paths: ['/reviews.Reviews/Get'] } }] }],
  });
  const both = mesh(allowFrontend, denyGet);
  t.is(verdict(both, { from: FRONTEND }), 'DENY ns[shop]-policy[no-get]-rule[0]');
  t.is(verdict(both, { from: FRONTEND, path: '/reviews.Reviews/List' }), 'ALLOW ns[shop]-policy[frontend]-rule[0]');
  // A DENY alone denies only what it matches.
  t.is(verdict(mesh(denyGet), { from: OPS, path: '/reviews.Reviews/List' }), 'ALLOW -');
});

test('root-namespace policies apply mesh-wide (a selector picks workloads in every namespace); other namespaces do not', (t) => {
  t.is(verdict(mesh(ap('trellis-system', 'deny-all', {})), { from: FRONTEND }), 'DENY -');
  t.is(
    verdict(mesh(ap('trellis-system', 'by-label', { selector: { matchLabels: { app: 'reviews' } } })), {
      from: FRONTEND,
    }),
    'DENY -',
  );
  t.is(
    verdict(mesh(ap('trellis-system', 'other', { selector: { matchLabels: { app: 'other' } } })), { from: FRONTEND }),
    'ALLOW -',
  );
  t.is(verdict(mesh(ap('ops', 'elsewhere', {})), { from: FRONTEND }), 'ALLOW -');
  t.is(
    verdict(mesh(ap(SHOP, 'not-me', { selector: { matchLabels: { app: 'redis' } } })), { from: FRONTEND }),
    'ALLOW -',
  );
});

test('sources: principals exact/prefix/suffix/*, namespaces, not… forms, and plaintext callers', (t) => {
  const allow = (source: Record<string, string[]>) => mesh(ap(SHOP, 'p', { rules: [{ from: [{ source }] }] }));
  t.is(verdict(allow({ principals: ['cluster.local/ns/shop/*'] }), { from: FRONTEND }).split(' ')[0], 'ALLOW');
  t.is(verdict(allow({ principals: ['*/sa/frontend'] }), { from: FRONTEND }).split(' ')[0], 'ALLOW');
  t.is(verdict(allow({ principals: ['*/sa/frontend'] }), { from: OPS }).split(' ')[0], 'DENY');
  t.is(verdict(allow({ principals: ['*'] }), { from: OPS }).split(' ')[0], 'ALLOW');
  t.is(verdict(allow({ principals: ['*'] }), {}).split(' ')[0], 'DENY', 'principals * needs mTLS');
  t.is(verdict(allow({ namespaces: ['ops'] }), { from: OPS }).split(' ')[0], 'ALLOW');
  t.is(verdict(allow({ namespaces: ['op*'] }), { from: OPS }).split(' ')[0], 'ALLOW');
  t.is(verdict(allow({ namespaces: ['ops'] }), { from: FRONTEND }).split(' ')[0], 'DENY');
  t.is(verdict(allow({ notNamespaces: ['ops'] }), { from: FRONTEND }).split(' ')[0], 'ALLOW');
  t.is(
    verdict(allow({ notPrincipals: ['cluster.local/ns/shop/sa/frontend'] }), { from: FRONTEND }).split(' ')[0],
    'DENY',
  );
});

test('operations and conditions: methods, paths, hosts, headers, destination.port; what the query does not give is reported', (t) => {
  const s = mesh(
    ap(SHOP, 'ops', {
      rules: [
        {
          to: [
            {
              operation: {
                methods: ['POST'],
                paths: ['/reviews.Reviews/*'],
                hosts: ['reviews.shop.svc.cluster.local'],
              },
            },
          ],
          when: [
            { key: 'request.headers[x-tenant]', values: ['blue'] },
            { key: 'destination.port', values: ['9080'] },
          ],
        },
      ],
    }),
  );
  t.is(verdict(s, { from: FRONTEND, headers: { 'X-Tenant': 'blue' } }).split(' ')[0], 'ALLOW');
  t.is(verdict(s, { from: FRONTEND, headers: { 'x-tenant': 'red' } }).split(' ')[0], 'DENY');
  t.is(verdict(s, { from: FRONTEND, headers: { 'x-tenant': 'blue' }, method: 'GET' }).split(' ')[0], 'DENY');
  t.is(verdict(s, { from: FRONTEND, headers: { 'x-tenant': 'blue' }, path: '/other.Svc/Get' }).split(' ')[0], 'DENY');
  const ip = mesh(ap(SHOP, 'ip', { rules: [{ from: [{ source: { ipBlocks: ['10.1.0.0/16'] } }] }] }));
  t.is(verdict(ip, { from: FRONTEND, sourceIp: '10.1.2.3' }).split(' ')[0], 'ALLOW');
  t.is(verdict(ip, { from: FRONTEND, sourceIp: '10.2.2.3' }).split(' ')[0], 'DENY');
  t.deepEqual(check(ip, { from: FRONTEND }).workloads[0]!.assumed, ['source.ip']);
});

test('TCP: an ALLOW rule with HTTP-only fields is left out; a DENY rule loses them (Istio)', (t) => {
  const s = mesh(
    ap(SHOP, 'redis', {
      selector: { matchLabels: { app: 'redis' } },
      rules: [
        { from: [{ source: { namespaces: ['ops'] } }], to: [{ operation: { methods: ['GET'] } }] },
        {
          from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }],
          to: [{ operation: { ports: ['6379'] } }],
        },
      ],
    }),
    ap(SHOP, 'redis-deny', {
      selector: { matchLabels: { app: 'redis' } },
      action: 'DENY',
      rules: [{ from: [{ source: { principals: ['*/sa/admin'] } }], to: [{ operation: { paths: ['/never'] } }] }],
    }),
  );
  const to = { to: 'redis.shop' };
  const a = check(s, { ...to, from: FRONTEND });
  t.like(a.workloads[0], {
    transport: 'tcp',
    verdict: 'ALLOW',
    decidedBy: { policy: 'ns[shop]-policy[redis]-rule[1]' },
  });
  t.deepEqual(a.workloads[0]!.policies, {
    DENY: ['ns[shop]-policy[redis-deny]-rule[0]'],
    ALLOW: ['ns[shop]-policy[redis]-rule[1]'],
    LOG: [],
  });
  // The admin of ops: the DENY's path condition is dropped on TCP, so it is denied by it.
  t.like(check(s, { ...to, from: OPS }).workloads[0], { verdict: 'DENY', decidedBy: { action: 'DENY' } });
});

test('AUDIT: the request is allowed and the audit policy that matched is reported', (t) => {
  const s = mesh(ap(SHOP, 'audit', { action: 'AUDIT', rules: [{ from: [{ source: { namespaces: ['ops'] } }] }] }));
  const w = check(s, { from: OPS }).workloads[0]!;
  t.is(w.verdict, 'ALLOW');
  t.deepEqual(w.audited, ['ns[shop]-policy[audit]-rule[0]']);
  t.deepEqual(check(s, { from: FRONTEND }).workloads[0]!.audited, []);
});

test('proxyless servers: RBAC filters before the router, no AUDIT (grpc-js NACKs LOG), and grpc-js-xds accepts them', (t) => {
  const s = mesh(
    ap(SHOP, 'deny', { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: [SHOP] } }] }] }),
    ap(SHOP, 'allow', { rules: [{ to: [{ operation: { paths: ['/reviews.Reviews/*'] } }] }] }),
    ap(SHOP, 'audit', { action: 'AUDIT', rules: [{}] }),
  );
  const proxy = grpcProxy(SHOP, {
    id: 'reviews-v1.shop',
    instanceIps: ['10.0.0.1'],
    labels: { app: 'reviews', version: 'v1' },
  });
  const listeners = serverListeners(contextFor(s, proxy, { mtlsMode: 'STRICT' }));
  const server = listeners.find((l) => l.name === 'grpc/server?xds.resource.listening_address=10.0.0.1:9080');
  t.truthy(server);
  assertGrpcAccepts(t, listeners);
  const hcm = unpackAny(server!.filterChains[0]!.filters[0]!.configType.value as Any) as HttpConnectionManager;
  t.deepEqual(
    hcm.httpFilters.map((f) => f.name),
    ['envoy.filters.http.rbac.deny', 'envoy.filters.http.rbac.allow', 'envoy.filters.http.router'],
  );
  // The check is real: the same HCM with the AUDIT (LOG) filter is NACKed by grpc-js-xds.
  const withLog = clone(ListenerSchema, server!);
  const logHcm = clone(HttpConnectionManagerSchema, hcm);
  logHcm.httpFilters = [
    ...rbacHttpFilters(workloadRbac(s, SHOP, proxy.labels, 'http'), false).map((f) => create(HttpFilterSchema, f)),
    hcm.httpFilters.at(-1)!,
  ];
  withLog.filterChains[0]!.filters[0] = create(FilterSchema, hcmFilter(logHcm));
  t.regex(grpcNack(withLog) ?? '', /envoy\.filters\.http\.rbac\.audit filter validation failed/);
  const a = checkAuthz(
    { snapshot: s, mesh: defaultMeshConfig, sent: (id) => (id === proxy.id ? { proxy, listeners } : undefined) },
    { to: 'reviews.shop', from: OPS, path: '/reviews.Reviews/Get' },
  );
  t.like(a.workloads[0], {
    proxy: { type: 'grpc', config: 'sent' },
    verdict: 'DENY',
    decidedBy: { policy: 'ns[shop]-policy[deny]-rule[0]' },
  });
  t.deepEqual(a.workloads[0]!.policies.LOG, []);
});

test('every proxyless server listener of the authz goldens is accepted by grpc-js-xds', (t) => {
  const dir = path.join(repoRoot, 'test', 'golden');
  for (const name of fs.readdirSync(dir).filter((n) => n.startsWith('authz-'))) {
    const parsed = parseManifests(fs.readFileSync(path.join(dir, name, 'input.yaml'), 'utf8'), name);
    const snapshot = buildSnapshot(parsed.objects, { validate: validateRoutingResource, formatIssue });
    const proxy = grpcProxy(SHOP, { id: 'frontend-0.shop', instanceIps: ['10.0.1.10'], labels: { app: 'frontend' } });
    const listeners = serverListeners(contextFor(snapshot, proxy, { mtlsMode: 'STRICT' }));
    t.true(listeners.length > 0, name);
    for (const l of listeners) t.is(grpcNack(l), undefined, `${name}: ${l.name}`);
  }
});

test('a policy change regenerates the inbound listeners of the workloads it selects, and no others', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const reviews = envoyProxy(SHOP, {
    id: 'reviews-v1.shop',
    instanceIps: ['10.0.0.1'],
    labels: { app: 'reviews', version: 'v1' },
  });
  const redis = envoyProxy(SHOP, { id: 'redis-0.shop', instanceIps: ['10.0.0.9'], labels: { app: 'redis' } });
  const before = mesh();
  const withPolicy = mesh(ap(SHOP, 'redis-only', { selector: { matchLabels: { app: 'redis' } }, rules: [{}] }));
  const lds = (proxy: typeof reviews, snapshot: MeshSnapshot) =>
    generator
      .generate(proxy, snapshot)
      .get(TypeUrl.Listener)!
      .find((l) => (l as unknown as { name: string }).name === 'virtualInbound');
  const reviewsBefore = lds(reviews, before);
  const redisBefore = lds(redis, before);
  t.is(lds(reviews, withPolicy), reviewsBefore, 'reviews: the same listener message');
  t.not(lds(redis, withPolicy), redisBefore, 'redis: a new inbound listener');
});

test("Envoy's own validation: every sidecar listener with RBAC passes, and it does check the RBAC filters", async (t) => {
  const s = mesh(
    ap(SHOP, 'deny', { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: [SHOP] } }] }] }),
    ap(SHOP, 'allow', {
      rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }], to: [{ operation: { ports: ['6379'] } }] }],
    }),
    ap(SHOP, 'audit', { action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }),
  );
  const listenersOf = (proxy: ReturnType<typeof envoyProxy>) =>
    meshGenerator(defaultMeshConfig).generate(proxy, s).get(TypeUrl.Listener)! as Listener[];
  const reviews = listenersOf(
    envoyProxy(SHOP, { id: 'reviews-v1.shop', instanceIps: ['10.0.0.1'], labels: { app: 'reviews', version: 'v1' } }),
  );
  const redis = listenersOf(
    envoyProxy(SHOP, { id: 'redis-0.shop', instanceIps: ['10.0.0.9'], labels: { app: 'redis' } }),
  );
  await assertEnvoyResourcesValid(t, [...reviews, ...redis]);
  // A network RBAC filter without its required stat_prefix is refused by Envoy's rules.
  const inbound = clone(
    ListenerSchema,
    redis.find((l) => l.name === 'virtualInbound')!,
  );
  const chain = inbound.filterChains.find((c) => c.name === '0.0.0.0_6379')!;
  const rbac = unpackAny(chain.filters[0]!.configType.value as Any) as NetworkRbac;
  t.is(rbac.statPrefix, 'tcp.');
  rbac.statPrefix = '';
  chain.filters[0] = create(FilterSchema, {
    name: chain.filters[0]!.name,
    configType: { case: 'typedConfig', value: packAny(rbac) },
  });
  const [result] = await validateEnvoyResources(encodeAll([inbound]));
  t.regex(result!.errors.join('\n'), /stat_prefix/);
});

test('the Programmed sources: a policy is held by the proxies of the workloads it applies to that have an inbound side', (t) => {
  const s = mesh(
    ap(SHOP, 'shop-wide', { rules: [{}] }),
    ap(SHOP, 'reviews-only', { selector: { matchLabels: { app: 'reviews' } }, rules: [{}] }),
    ap('trellis-system', 'mesh-wide', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['ops'] } }] }] }),
    ap('ops', 'elsewhere', { rules: [{}] }),
  );
  const policies = (proxy: Parameters<typeof proxySources>[1]) =>
    proxySources(s, proxy, defaultMeshConfig).filter((k) => k.startsWith('AuthorizationPolicy/'));
  const reviews = { id: 'reviews-v1.shop', instanceIps: ['10.0.0.1'], labels: { app: 'reviews', version: 'v1' } };
  const all = [
    'AuthorizationPolicy/shop/reviews-only',
    'AuthorizationPolicy/shop/shop-wide',
    'AuthorizationPolicy/trellis-system/mesh-wide',
  ];
  // An Envoy sidecar always has an inbound listener (RBAC filters); a proxyless server has server listeners.
  t.deepEqual(policies(envoyProxy(SHOP, reviews)), all);
  t.deepEqual(policies(grpcProxy(SHOP, reviews)), all);
  // Another workload of the namespace: not the selector's.
  t.deepEqual(policies(envoyProxy(SHOP, { id: 'web-1.shop', labels: { app: 'web' } })), [
    'AuthorizationPolicy/shop/shop-wide',
    'AuthorizationPolicy/trellis-system/mesh-wide',
  ]);
  // A proxyless client (no instances, so no server listener) carries no RBAC: no policy.
  t.deepEqual(policies(grpcProxy(SHOP, { ...reviews, id: 'client.shop', instanceIps: [] })), []);
  // The memoized lookup (what the Programmed tracker asks) keeps them apart.
  const sources = meshSources(defaultMeshConfig);
  const client = sources(grpcProxy(SHOP, { ...reviews, id: 'client.shop', instanceIps: [] }), s);
  const server = sources(grpcProxy(SHOP, reviews), s);
  t.false(client.some((k) => k.startsWith('AuthorizationPolicy/')));
  t.deepEqual(
    server.filter((k) => k.startsWith('AuthorizationPolicy/')),
    all,
  );
  t.deepEqual(
    sources(envoyProxy(SHOP, { id: 'web-1.shop', labels: { app: 'web' } }), s).filter((k) =>
      k.startsWith('AuthorizationPolicy/'),
    ),
    ['AuthorizationPolicy/shop/shop-wide', 'AuthorizationPolicy/trellis-system/mesh-wide'],
  );
});
