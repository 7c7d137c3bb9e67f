// Trellis's validator against Istio's validation rules (issue 15), one test per rule, named for it: the
// cases of test/crds/istio-cases.ts through validateRoutingResource (test/crds/apiserver.test.ts gives the
// same objects to a real API server). The canonical form the validator returns for what it accepts (the
// spellings Istio means the same by, written one way) is checked here too.
import test from 'ava';
import { validateRoutingResource } from '../../crds/validator.js';
import { dr, ISTIO_RULES, vs, type Json } from './istio-cases.js';

const lines = (object: Json, severity: 'error' | 'warning'): string[] =>
  validateRoutingResource(object)
    .issues.filter((i) => i.severity === severity)
    .map((i) => `${i.path}: ${i.message}`);

for (const rule of ISTIO_RULES) {
  test(rule.name, (t) => {
    for (const c of rule.cases) {
      const what = JSON.stringify(c.object.spec);
      t.deepEqual(lines(c.object, 'error'), [...c.errors], `errors of ${what}`);
      t.deepEqual(lines(c.object, 'warning'), [...(c.warnings ?? [])], `warnings of ${what}`);
      t.is(validateRoutingResource(c.object).resource !== undefined, c.errors.length === 0, what);
    }
  });
}

test('istio: accepted spellings reach the model in one form (hosts and header names lower case, 0 unset)', (t) => {
  const input = vs({
    hosts: ['Reviews', '*-API.example.com'],
    http: [
      {
        match: [{ headers: { 'End-User': { exact: 'Jason' } }, withoutHeaders: { 'X-Canary': {} }, port: 0 }],
        route: [
          { destination: { host: 'Reviews', subset: 'v1' }, weight: 1 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 3 },
        ],
        mirror: { host: 'Ratings' },
      },
      { redirect: { uri: '/v2', port: 0, redirectCode: 0 } },
    ],
    tcp: [{ match: [{ port: 0 }], route: [{ destination: { host: 'DB' } }] }],
  });
  const before = JSON.stringify(input);
  const spec = validateRoutingResource(input).resource?.spec as Json | undefined;
  t.is(JSON.stringify(input), before, 'the input is not changed');
  t.deepEqual(spec, {
    hosts: ['reviews', '*-api.example.com'],
    http: [
      {
        match: [{ headers: { 'end-user': { exact: 'Jason' } }, withoutHeaders: { 'x-canary': {} } }],
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 1 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 3 },
        ],
        mirror: { host: 'ratings' },
      },
      { redirect: { uri: '/v2' } },
    ],
    tcp: [{ match: [{}], route: [{ destination: { host: 'db' } }] }],
  });
});

test('istio: the deprecated minimumRingSize reaches the model as ringHash.minimumRingSize', (t) => {
  const result = validateRoutingResource(
    dr({
      host: 'Reviews',
      trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user', minimumRingSize: 2048 } } },
      subsets: [
        {
          name: 'v1',
          trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, minimumRingSize: 0 } } },
        },
      ],
    }),
  );
  t.deepEqual(result.resource?.spec, {
    host: 'reviews',
    trafficPolicy: {
      loadBalancer: { consistentHash: { httpHeaderName: 'x-user', ringHash: { minimumRingSize: 2048 } } },
    },
    subsets: [{ name: 'v1', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } } }],
  });
});
