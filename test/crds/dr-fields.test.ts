// The DestinationRule fields of issue 15 (localityLbSetting, h2UpgradePolicy, useClientProtocol,
// http2KeepAlive, local-origin outlier detection, cookie attributes, workloadSelector), each test named
// for the Istio rule it follows (istio/istio pkg/config/validation, istio/api destination_rule.proto).
import test from 'ava';
import { API_VERSION } from '../../crds/types.js';
import { localitiesOverlap, validateRoutingResource, type ValidationResult } from '../../crds/validator.js';

type Json = Record<string, unknown>;

function dr(spec: Json, namespace = 'shop'): Json {
  return { apiVersion: API_VERSION, kind: 'DestinationRule', metadata: { name: 'reviews', namespace }, spec };
}

const policy = (trafficPolicy: Json): Json => dr({ host: 'reviews', trafficPolicy });
const locality = (setting: Json, extra: Json = {}): Json =>
  policy({ loadBalancer: { localityLbSetting: setting }, ...extra });
const OUTLIER = { outlierDetection: { consecutive5xxErrors: 1 } };

function lines(r: ValidationResult, severity: 'error' | 'warning'): string[] {
  return r.issues.filter((i) => i.severity === severity).map((i) => `${i.path}: ${i.message}`);
}
const errors = (o: unknown): string[] => lines(validateRoutingResource(o), 'error');
const warnings = (o: unknown): string[] => lines(validateRoutingResource(o), 'warning');

const LB = 'spec.trafficPolicy.loadBalancer.localityLbSetting';

test('Istio LoadBalancerSettings: a loadBalancer may hold only localityLbSetting (oneof lb_policy is optional)', (t) => {
  t.deepEqual(errors(locality({ enabled: false })), []);
  t.deepEqual(errors(locality({ failover: [{ from: 'us-east', to: 'eu-west' }] }, OUTLIER)), []);
  t.deepEqual(errors(policy({ loadBalancer: { simple: 'ROUND_ROBIN', consistentHash: { useSourceIp: true } } })), [
    'spec.trafficPolicy.loadBalancer: must have at most one of simple, consistentHash',
  ]);
});

test('Istio validateLocalityLbSetting: distribute and failover are exclusive', (t) => {
  t.deepEqual(
    errors(
      locality({ distribute: [{ from: 'us/*', to: { 'us/*': 100 } }], failover: [{ from: 'us', to: 'eu' }] }, OUTLIER),
    ),
    [`${LB}: must not set both 'distribute' and 'failover'`],
  );
});

test('Istio validateLocalityLbSetting: the weights of one distribute entry are 1-100 and sum to 100', (t) => {
  t.deepEqual(errors(locality({ distribute: [{ from: 'us/z1/*', to: { 'us/z1/*': 80, 'us/z2/*': 20 } }] })), []);
  t.deepEqual(errors(locality({ distribute: [{ from: 'us/z1/*', to: { 'us/z1/*': 80, 'us/z2/*': 30 } }] })), [
    `${LB}.distribute[0].to: weights add up to 110, not 100`,
  ]);
  t.deepEqual(errors(locality({ distribute: [{ from: 'us/z1/*', to: { 'us/z1/*': 0 } }] })), [
    `${LB}.distribute[0].to[us/z1/*]: must be >= 1`,
  ]);
  t.deepEqual(errors(locality({ distribute: [{ from: 'us/z1/*', to: { 'us/z1/*': 101 } }] })), [
    `${LB}.distribute[0].to[us/z1/*]: must be <= 100`,
  ]);
});

test('Istio validateLocalities: one * at the end at most, no empty part, no overlap within a list', (t) => {
  const bad = 'must be a locality region/zone/subzone without empty parts, with one * at the end at most';
  for (const from of ['us/*/z1', 'us//z1', 'a/b/c/d', '*/z1']) {
    t.deepEqual(
      errors(locality({ distribute: [{ from, to: { us: 100 } }] })),
      [`${LB}.distribute[0].from: ${bad}`],
      from,
    );
  }
  t.deepEqual(
    errors(
      locality({
        distribute: [
          { from: 'us/*', to: { us: 100 } },
          { from: 'us/z1', to: { us: 100 } },
        ],
      }),
    ),
    [`${LB}.distribute[1].from: overlaps us/*, given before`],
  );
  t.deepEqual(errors(locality({ distribute: [{ from: '*', to: { 'us/z1': 50, us: 50 } }] })), [
    `${LB}.distribute[0].to[us]: overlaps us/z1, given before`,
  ]);
  t.true(localitiesOverlap('us', 'us/z1/s1'));
  t.true(localitiesOverlap('us/z*', 'us/z1'));
  t.false(localitiesOverlap('us/z1', 'us/z2'));
  t.false(localitiesOverlap('us/a*', 'us/b*'));
});

test('Istio validateLocalityLbSetting: failover names two different regions, without / or *', (t) => {
  t.deepEqual(errors(locality({ failover: [{ from: 'us', to: 'us' }] }, OUTLIER)), [
    `${LB}.failover[0]: must name different regions`,
  ]);
  t.deepEqual(errors(locality({ failover: [{ from: 'us/z1', to: 'eu*' }] }, OUTLIER)), [
    `${LB}.failover[0].from: must be a region: no / (zones are not allowed here) and no *`,
    `${LB}.failover[0].to: must be a region: no / (zones are not allowed here) and no *`,
  ]);
});

test('Istio validateLocalityLbSetting: failover with failoverPriority must not order by the topology labels', (t) => {
  t.deepEqual(
    errors(
      locality(
        { failover: [{ from: 'us', to: 'eu' }], failoverPriority: ['topology.kubernetes.io/zone', 'version'] },
        OUTLIER,
      ),
    ),
    [
      `${LB}.failoverPriority[0]: must not be the topology label topology.kubernetes.io/zone together with failover (failover orders regions itself)`,
    ],
  );
  t.deepEqual(errors(locality({ failoverPriority: ['topology.kubernetes.io/zone', 'version=v1'] }, OUTLIER)), []);
  t.deepEqual(errors(locality({ failoverPriority: ['bad key!', 'version=not ok'] }, OUTLIER)), [
    `${LB}.failoverPriority[0]: must be a label key, or key=value`,
    `${LB}.failoverPriority[1]: must be a label key, or key=value with a label value`,
  ]);
  t.deepEqual(errors(locality({ distribute: [{ from: '*', to: { '*': 100 } }], failoverPriority: ['version'] })), [
    `${LB}: must not set both 'distribute' and 'failoverPriority'`,
  ]);
});

test('Istio validateLocalityLbSetting: failover without outlierDetection is a warning (it never happens)', (t) => {
  const expected = [
    `${LB}: failover needs outlierDetection in the same policy: without it no endpoint is ever unhealthy, so traffic never fails over (Istio)`,
  ];
  t.deepEqual(warnings(locality({ failover: [{ from: 'us', to: 'eu' }] })), expected);
  t.deepEqual(warnings(locality({ failoverPriority: ['version'] })), expected);
  t.deepEqual(warnings(locality({ failover: [{ from: 'us', to: 'eu' }] }, OUTLIER)), []);
  // Port level: its own outlierDetection counts, not the top level's (a port policy replaces the whole policy).
  t.deepEqual(
    warnings(
      policy({
        ...OUTLIER,
        portLevelSettings: [{ port: { number: 80 }, loadBalancer: { localityLbSetting: { failoverPriority: ['v'] } } }],
      }),
    ),
    [
      'spec.trafficPolicy.portLevelSettings[0].loadBalancer.localityLbSetting: failover needs outlierDetection in the same policy: without it no endpoint is ever unhealthy, so traffic never fails over (Istio)',
    ],
  );
});

test('Istio ConnectionPoolSettings.HTTPSettings: h2UpgradePolicy enum, useClientProtocol wins over it', (t) => {
  for (const h2UpgradePolicy of ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'])
    t.deepEqual(errors(policy({ connectionPool: { http: { h2UpgradePolicy } } })), [], h2UpgradePolicy);
  t.deepEqual(errors(policy({ connectionPool: { http: { h2UpgradePolicy: 'ALWAYS' } } })), [
    'spec.trafficPolicy.connectionPool.http.h2UpgradePolicy: must be one of: DEFAULT, DO_NOT_UPGRADE, UPGRADE',
  ]);
  t.deepEqual(warnings(policy({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true } } })), [
    'spec.trafficPolicy.connectionPool.http.h2UpgradePolicy: ignored: useClientProtocol keeps the protocol the client spoke (Istio)',
  ]);
  t.deepEqual(errors(policy({ connectionPool: { http: { useClientProtocol: 'yes' } } })), [
    'spec.trafficPolicy.connectionPool.http.useClientProtocol: must be true or false',
  ]);
});

test('Istio ConnectionKeepalive: http2KeepAlive needs interval and timeout, each at least 1ms', (t) => {
  t.deepEqual(errors(policy({ connectionPool: { http: { http2KeepAlive: { interval: '30s', timeout: '5s' } } } })), []);
  t.deepEqual(errors(policy({ connectionPool: { http: { http2KeepAlive: { interval: '30s' } } } })), [
    'spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout: is required',
  ]);
  t.deepEqual(errors(policy({ connectionPool: { http: { http2KeepAlive: { interval: '0s', timeout: '1s' } } } })), [
    'spec.trafficPolicy.connectionPool.http.http2KeepAlive.interval: must be at least 1ms',
  ]);
});

test('Istio OutlierDetection: consecutiveLocalOriginFailures counts only with splitExternalLocalOriginErrors', (t) => {
  const od = (o: Json) => policy({ outlierDetection: o });
  t.deepEqual(errors(od({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3 })), []);
  t.deepEqual(warnings(od({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3 })), []);
  t.deepEqual(warnings(od({ consecutiveLocalOriginFailures: 3 })), [
    'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: ignored unless splitExternalLocalOriginErrors is true (Istio and Envoy)',
  ]);
  t.deepEqual(errors(od({ consecutiveLocalOriginFailures: -1 })), [
    'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: must be >= 0',
  ]);
});

test('Istio HTTPCookie.Attribute: a name is required, values are header values', (t) => {
  const cookie = (attributes: unknown) =>
    policy({ loadBalancer: { consistentHash: { httpCookie: { name: 'user', ttl: '0s', attributes } } } });
  t.deepEqual(errors(cookie([{ name: 'SameSite', value: 'Strict' }, { name: 'Secure' }])), []);
  const at = 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes';
  t.deepEqual(errors(cookie([{ value: 'Strict' }])), [`${at}[0].name: is required`]);
  t.deepEqual(errors(cookie([{ name: 'Same Site' }])), [`${at}[0].name: must be an HTTP header name`]);
});

test('Istio DestinationRule.workloadSelector: labels, and exportTo only its own namespace', (t) => {
  t.deepEqual(errors(dr({ host: 'reviews', workloadSelector: { matchLabels: { app: 'productpage' } } })), []);
  t.deepEqual(
    errors(dr({ host: 'reviews', workloadSelector: { matchLabels: { app: 'productpage' } }, exportTo: ['.'] })),
    [],
  );
  t.deepEqual(
    errors(dr({ host: 'reviews', workloadSelector: { matchLabels: { app: 'productpage' } }, exportTo: ['shop'] })),
    [],
  );
  t.deepEqual(
    errors(dr({ host: 'reviews', workloadSelector: { matchLabels: { app: 'productpage' } }, exportTo: ['*'] })),
    [
      'spec.exportTo[0]: must be . (or the own namespace): a rule with a workloadSelector applies in its namespace only',
    ],
  );
  t.deepEqual(warnings(dr({ host: 'reviews', workloadSelector: {} })), [
    'spec.workloadSelector: selects no labels, so the rule applies to every proxy of its namespace',
  ]);
  t.deepEqual(errors(dr({ host: 'reviews', workloadSelector: { matchLabels: { 'bad key': 'x' } } })), [
    'spec.workloadSelector.matchLabels: keys must be Kubernetes label names',
  ]);
});
