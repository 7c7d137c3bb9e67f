// Checks across objects: subsets, Services, conflicting VirtualServices, merged DestinationRules.
import test from 'ava';
import type { V1Service } from '@kubernetes/client-node';
import { crossCheck } from '../../crds/cross-checks.js';
import {
  API_VERSION,
  type DestinationRule,
  type DestinationRuleSpec,
  type ObjectMeta,
  type RoutingResource,
  type VirtualService,
  type VirtualServiceSpec,
} from '../../crds/types.js';
import { validateRoutingResource } from '../../crds/validator.js';

function vs(name: string, spec: VirtualServiceSpec, meta: Partial<ObjectMeta> = {}): VirtualService {
  return { apiVersion: API_VERSION, kind: 'VirtualService', metadata: { name, namespace: 'bookinfo', ...meta }, spec };
}

function dr(name: string, spec: DestinationRuleSpec, meta: Partial<ObjectMeta> = {}): DestinationRule {
  return { apiVersion: API_VERSION, kind: 'DestinationRule', metadata: { name, namespace: 'bookinfo', ...meta }, spec };
}

function svc(name: string, namespace = 'bookinfo', ports = [9080]): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { ports: ports.map((port) => ({ port })) },
  };
}

const toSubset = (host: string, subset: string, extra: Partial<VirtualServiceSpec> = {}): VirtualServiceSpec => ({
  hosts: [host],
  http: [{ route: [{ destination: { host, subset } }] }],
  ...extra,
});

/** `kind ns/name: path: message` for every issue, in resource order. */
function report(resources: RoutingResource[], services?: V1Service[]): string[] {
  // The inputs must be valid on their own: that is the contract.
  for (const r of resources) t0(validateRoutingResource(r).issues.filter((i) => i.severity === 'error'));
  return crossCheck(resources, services).flatMap((issues, i) =>
    issues.map((issue) => {
      const r = resources[i]!;
      return `${issue.severity === 'warning' ? 'warning: ' : ''}${r.kind} ${r.metadata.namespace}/${r.metadata.name}: ${issue.path}: ${issue.message}`;
    }),
  );
}

function t0(errors: unknown[]): void {
  if (errors.length > 0) throw new Error(`invalid test input: ${JSON.stringify(errors)}`);
}

test('a subset is defined by a DestinationRule for the host (any form of its name)', (t) => {
  const rule = dr('reviews', { host: 'reviews.bookinfo.svc.cluster.local', subsets: [{ name: 'v1' }] });
  t.deepEqual(report([vs('a', toSubset('reviews', 'v1')), rule]), []);
  t.deepEqual(report([vs('a', toSubset('reviews.bookinfo', 'v2')), rule]), [
    'VirtualService bookinfo/a: spec.http[0].route[0].destination.subset: no DestinationRule for reviews.bookinfo.svc.cluster.local defines subset v2',
  ]);
  t.deepEqual(report([vs('a', toSubset('reviews', 'v1'))]), [
    'VirtualService bookinfo/a: spec.http[0].route[0].destination.subset: no DestinationRule for reviews.bookinfo.svc.cluster.local defines subset v1',
  ]);
});

test('subsets of mirrors and TCP routes are checked too', (t) => {
  const rule = dr('db', { host: 'db', subsets: [{ name: 'v1' }] });
  const spec: VirtualServiceSpec = {
    hosts: ['db'],
    http: [{ route: [{ destination: { host: 'db', subset: 'v1' } }], mirror: { host: 'db', subset: 'shadow' } }],
    tcp: [{ route: [{ destination: { host: 'db', subset: 'v9' } }] }],
  };
  t.deepEqual(report([vs('db', spec), rule]), [
    'VirtualService bookinfo/db: spec.http[0].mirror.subset: no DestinationRule for db.bookinfo.svc.cluster.local defines subset shadow',
    'VirtualService bookinfo/db: spec.tcp[0].route[0].destination.subset: no DestinationRule for db.bookinfo.svc.cluster.local defines subset v9',
  ]);
});

test('a DestinationRule must be visible from the VirtualService namespace (exportTo)', (t) => {
  const hidden = dr('reviews', {
    host: 'reviews.bookinfo.svc.cluster.local',
    subsets: [{ name: 'v1' }],
    exportTo: ['.'],
  });
  const client = vs('a', toSubset('reviews.bookinfo', 'v1'), { namespace: 'frontend' });
  t.deepEqual(report([client, hidden]), [
    'VirtualService frontend/a: spec.http[0].route[0].destination.subset: no DestinationRule for reviews.bookinfo.svc.cluster.local defines subset v1',
  ]);
  const exported = dr('reviews', { ...hidden.spec, exportTo: ['.', 'frontend'] });
  t.deepEqual(report([client, exported]), []);
});

test('a wildcard DestinationRule defines subsets for the hosts it covers, unless an exact one exists', (t) => {
  const wildcard = dr('all', { host: '*.bookinfo.svc.cluster.local', subsets: [{ name: 'v1' }] });
  t.deepEqual(report([vs('a', toSubset('reviews', 'v1')), wildcard]), []);
  const exact = dr('reviews', { host: 'reviews', subsets: [{ name: 'v2' }] });
  t.deepEqual(report([vs('a', toSubset('reviews', 'v1')), wildcard, exact]), [
    'VirtualService bookinfo/a: spec.http[0].route[0].destination.subset: no DestinationRule for reviews.bookinfo.svc.cluster.local defines subset v1',
  ]);
});

test('without Services the host checks are skipped; with them, missing hosts and ports are warnings', (t) => {
  const spec: VirtualServiceSpec = {
    hosts: ['reviews', '*.example.com'],
    http: [
      {
        route: [
          { destination: { host: 'reviews', port: { number: 9080 } }, weight: 50 },
          { destination: { host: 'reviews', port: { number: 9999 } }, weight: 50 },
        ],
        mirror: { host: 'shadow.other' },
      },
    ],
  };
  const resources: RoutingResource[] = [vs('reviews', spec), dr('ratings', { host: 'ratings' })];
  t.deepEqual(report(resources), []);
  t.deepEqual(report(resources, [svc('reviews')]), [
    'warning: VirtualService bookinfo/reviews: spec.http[0].mirror.host: no Service shadow.other.svc.cluster.local (requests to it fail)',
    'warning: VirtualService bookinfo/reviews: spec.http[0].route[1].destination.port.number: Service reviews.bookinfo.svc.cluster.local has no port 9999',
    'warning: DestinationRule bookinfo/ratings: spec.host: no Service ratings.bookinfo.svc.cluster.local (the policies apply to no traffic)',
  ]);
  t.deepEqual(
    report(
      [vs('r', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] })],
      [svc('reviews', 'other')],
    ),
    [
      'warning: VirtualService bookinfo/r: spec.hosts[0]: no Service reviews.bookinfo.svc.cluster.local (the routes apply to no traffic)',
      'warning: VirtualService bookinfo/r: spec.http[0].route[0].destination.host: no Service reviews.bookinfo.svc.cluster.local (requests to it fail)',
    ],
  );
});

test('DestinationRule port policies for ports the Service lacks are warnings', (t) => {
  const rule = dr('reviews', {
    host: 'reviews',
    trafficPolicy: {
      portLevelSettings: [
        { port: { number: 9080 }, tls: { mode: 'DISABLE' } },
        { port: { number: 1 }, tls: { mode: 'DISABLE' } },
      ],
    },
  });
  t.deepEqual(report([rule], [svc('reviews')]), [
    'warning: DestinationRule bookinfo/reviews: spec.trafficPolicy.portLevelSettings[1].port.number: Service reviews.bookinfo.svc.cluster.local has no port 1',
  ]);
});

test('two VirtualServices for one host: the older wins, the younger is warned', (t) => {
  const route = { http: [{ route: [{ destination: { host: 'reviews' } }] }] };
  const older = vs('z-older', { hosts: ['reviews'], ...route }, { creationTimestamp: '2026-01-01T00:00:00Z' });
  const younger = vs(
    'a-younger',
    { hosts: ['ratings', 'reviews.bookinfo.svc'], ...route },
    { creationTimestamp: '2026-01-02T00:00:00Z' },
  );
  const expected = [
    'warning: VirtualService bookinfo/a-younger: spec.hosts[1]: conflicts with older VirtualService bookinfo/z-older for host reviews.bookinfo.svc.cluster.local, which wins',
  ];
  t.deepEqual(report([older, younger]), expected);
  t.deepEqual(report([younger, older]), expected, 'the order of the input does not matter');
});

test('VirtualServices without creationTimestamp: namespace, then name decides', (t) => {
  const route = { http: [{ route: [{ destination: { host: 'reviews.bookinfo' } }] }] };
  const a = vs('b', { hosts: ['reviews.bookinfo'], ...route }, { namespace: 'alpha' });
  const b = vs('a', { hosts: ['reviews.bookinfo'], ...route }, { namespace: 'beta' });
  const c = vs('a', { hosts: ['reviews.bookinfo'], ...route }, { namespace: 'alpha' });
  t.deepEqual(report([a, b, c]), [
    'warning: VirtualService alpha/b: spec.hosts[0]: conflicts with older VirtualService alpha/a for host reviews.bookinfo.svc.cluster.local, which wins',
    'warning: VirtualService beta/a: spec.hosts[0]: conflicts with older VirtualService alpha/a for host reviews.bookinfo.svc.cluster.local, which wins',
  ]);
});

test('VirtualServices that no namespace sees together do not conflict', (t) => {
  const route = { http: [{ route: [{ destination: { host: 'reviews.bookinfo' } }] }] };
  const a = vs('a', { hosts: ['reviews.bookinfo'], exportTo: ['.'], ...route }, { namespace: 'alpha' });
  const b = vs('b', { hosts: ['reviews.bookinfo'], exportTo: ['.'], ...route }, { namespace: 'beta' });
  t.deepEqual(report([a, b]), []);
  const c = vs('c', { hosts: ['reviews.bookinfo'], exportTo: ['alpha', 'gamma'], ...route }, { namespace: 'gamma' });
  t.deepEqual(report([a, c]), [
    'warning: VirtualService gamma/c: spec.hosts[0]: conflicts with older VirtualService alpha/a for host reviews.bookinfo.svc.cluster.local in the namespaces that see both, which wins',
  ]);
});

test('DestinationRules for one host are merged: duplicate subsets and a second policy are ignored', (t) => {
  const a = dr('a', { host: 'reviews', trafficPolicy: { tls: { mode: 'MESH_MUTUAL' } }, subsets: [{ name: 'v1' }] });
  const b = dr('b', {
    host: 'reviews.bookinfo.svc.cluster.local',
    trafficPolicy: { tls: { mode: 'DISABLE' } },
    subsets: [{ name: 'v2' }, { name: 'v1' }],
  });
  t.deepEqual(report([b, a]), [
    'warning: DestinationRule bookinfo/b: spec.subsets[1]: subset "v1" is already defined by the older DestinationRule bookinfo/a for host reviews.bookinfo.svc.cluster.local; ignored',
    'warning: DestinationRule bookinfo/b: spec.trafficPolicy: ignored: the older DestinationRule bookinfo/a for host reviews.bookinfo.svc.cluster.local sets the top-level trafficPolicy, and the first one wins',
  ]);
  // In different namespaces they are separate rules (the client namespace picks one).
  const other = dr('b', { host: 'reviews.bookinfo', subsets: [{ name: 'v1' }] }, { namespace: 'frontend' });
  t.deepEqual(report([a, other]), []);
  // A subset merged in from a second rule counts for VirtualServices.
  t.deepEqual(
    report([vs('r', toSubset('reviews', 'v2')), a, b]).filter((l) => l.startsWith('VirtualService')),
    [],
  );
});
