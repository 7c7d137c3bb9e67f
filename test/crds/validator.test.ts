// Every validation rule of crds/validator.ts, both sides of each boundary.
import test, { type ExecutionContext } from 'ava';
import { durationToMs, durationToProtoJson, parseDurationNs } from '../../crds/duration.js';
import { API_VERSION, type DestinationRule, type TrafficPolicy, type VirtualService } from '../../crds/types.js';
import {
  comparePaths,
  formatIssue,
  isRoutingResource,
  re2Error,
  validateRoutingResource,
  type ValidationResult,
} from '../../crds/validator.js';

type Json = Record<string, unknown>;

const meta = { name: 'reviews', namespace: 'bookinfo' };

function vs(spec: Json, metadata: Json = meta): Json {
  return { apiVersion: API_VERSION, kind: 'VirtualService', metadata, spec };
}

/** A VirtualService with one HTTP route: `http` is merged into a route to `reviews`. */
function vsHttp(http: Json): Json {
  return vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], ...http }] });
}

function dr(spec: Json, metadata: Json = meta): Json {
  return { apiVersion: API_VERSION, kind: 'DestinationRule', metadata, spec };
}

/** A DestinationRule for `reviews` whose top-level trafficPolicy is `policy`. */
function drPolicy(policy: Json): Json {
  return dr({ host: 'reviews', trafficPolicy: policy });
}

function lines(r: ValidationResult, severity: 'error' | 'warning'): string[] {
  return r.issues.filter((i) => i.severity === severity).map((i) => `${i.path}: ${i.message}`);
}

const errors = (obj: unknown): string[] => lines(validateRoutingResource(obj), 'error');
const warnings = (obj: unknown): string[] => lines(validateRoutingResource(obj), 'warning');

/** `build(value)` is valid for each `ok` value and gives exactly `expected` errors for each bad one. */
function boundary<T>(
  t: ExecutionContext,
  build: (value: T) => unknown,
  ok: readonly T[],
  bad: readonly (readonly [T, string | string[]])[],
): void {
  for (const v of ok) t.deepEqual(errors(build(v)), [], `${JSON.stringify(v)} should be valid`);
  for (const [v, expected] of bad) {
    t.deepEqual(errors(build(v)), Array.isArray(expected) ? expected : [expected], `${JSON.stringify(v)}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// The object as a whole

test('a minimal VirtualService and DestinationRule are valid, with their resource', (t) => {
  const r = validateRoutingResource(vsHttp({}));
  t.deepEqual(r.issues, []);
  t.is(r.kind, 'VirtualService');
  t.is(r.namespace, 'bookinfo');
  t.is(r.name, 'reviews');
  t.truthy(r.resource);
  const d = validateRoutingResource(dr({ host: 'reviews' }));
  t.deepEqual(d.issues, []);
  t.is(d.kind, 'DestinationRule');
});

test('a missing namespace defaults to default', (t) => {
  const r = validateRoutingResource(
    vs({ hosts: ['a'], http: [{ route: [{ destination: { host: 'a' } }] }] }, { name: 'x' }),
  );
  t.is(r.namespace, 'default');
  t.deepEqual(r.issues, []);
});

test('with an error there is no resource; with warnings only there is', (t) => {
  t.is(validateRoutingResource(vsHttp({ timeout: '0s' })).resource, undefined);
  const warned = validateRoutingResource(
    vs({ hosts: ['reviews'], gateways: ['x/y'], http: [{ route: [{ destination: { host: 'reviews' } }] }] }),
  );
  t.is(warned.issues.length, 1);
  t.truthy(warned.resource);
});

test('apiVersion and kind', (t) => {
  t.deepEqual(errors({ ...vsHttp({}), apiVersion: 'networking.istio.io/v1' }), [
    'apiVersion: must be networking.trellis.dev/v1alpha1',
  ]);
  t.deepEqual(errors({ ...vsHttp({}), kind: 'Gateway' }), [
    'kind: must be VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy, ServiceEntry or Sidecar',
  ]);
  t.deepEqual(errors('reviews'), [': must be an object']);
  t.true(isRoutingResource(vsHttp({})));
  t.true(isRoutingResource(dr({ host: 'x' })));
  t.false(isRoutingResource({ ...vsHttp({}), apiVersion: 'networking.istio.io/v1' }));
  t.false(isRoutingResource({ apiVersion: 'v1', kind: 'Service' }));
  t.false(isRoutingResource(null));
});

test('metadata: name required, a DNS subdomain; namespace a DNS label', (t) => {
  const spec = { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] };
  t.deepEqual(errors({ apiVersion: API_VERSION, kind: 'VirtualService', spec }), ['metadata: is required']);
  t.deepEqual(errors(vs(spec, { namespace: 'x' })), ['metadata.name: is required']);
  t.deepEqual(errors(vs(spec, { name: 'reviews.v1-a' })), []);
  t.deepEqual(errors(vs(spec, { name: 'Reviews' })), [
    'metadata.name: must be a DNS subdomain (lower case letters, digits, - and ., at most 253)',
  ]);
  t.deepEqual(errors(vs(spec, { name: 'a'.repeat(253) })), []);
  t.deepEqual(errors(vs(spec, { name: 'a'.repeat(254) })), [
    'metadata.name: must be a DNS subdomain (lower case letters, digits, - and ., at most 253)',
  ]);
  t.deepEqual(errors(vs(spec, { name: 'r', namespace: 'book.info' })), [
    'metadata.namespace: must be a DNS label (lower case letters, digits and -, at most 63)',
  ]);
});

test('spec is required; unknown fields are errors at every level', (t) => {
  t.deepEqual(errors({ apiVersion: API_VERSION, kind: 'DestinationRule', metadata: meta }), ['spec: is required']);
  t.deepEqual(errors({ ...vsHttp({}), extra: 1 }), ['extra: unknown field']);
  t.deepEqual(errors(vsHttp({ retires: { attempts: 1 } })), ['spec.http[0].retires: unknown field']);
  t.deepEqual(errors(drPolicy({ tls: { mode: 'SIMPLE', caCert: '/x' } })), [
    'spec.trafficPolicy.tls.caCert: unknown field',
  ]);
});

test('type errors name the expected type', (t) => {
  t.deepEqual(errors(vs({ hosts: 'reviews', http: [{ route: [{ destination: { host: 'reviews' } }] }] })), [
    'spec.hosts: must be a list',
  ]);
  t.deepEqual(errors(vsHttp({ route: [{ destination: { host: 'reviews' }, weight: '10' }] })), [
    'spec.http[0].route[0].weight: must be an integer',
  ]);
  t.deepEqual(errors(vsHttp({ route: [{ destination: { host: 'reviews' }, weight: 10.5 }] })), [
    'spec.http[0].route[0].weight: must be an integer',
  ]);
  t.deepEqual(errors(vsHttp({ match: [{ ignoreUriCase: 'yes' }] })), [
    'spec.http[0].match[0].ignoreUriCase: must be true or false',
  ]);
});

// ---------------------------------------------------------------------------------------------------
// VirtualService

test('hosts: at least one, host names in any case, Istio wildcards, not * for the mesh, no duplicates', (t) => {
  const build = (hosts: unknown) => vs({ hosts, http: [{ route: [{ destination: { host: 'reviews' } }] }] });
  boundary(
    t,
    build,
    [
      ['reviews'],
      ['reviews.bookinfo'],
      ['*.example.com'],
      ['*api.example.com'],
      ['*-api.example.com'],
      ['Reviews'],
      ['api.example.com.'],
      ['reviews', 'ratings'],
    ],
    [
      [[], 'spec.hosts: must not be empty'],
      [['*'], 'spec.hosts: must not be * for the mesh (name the hosts; * is allowed only for gateways)'],
      [
        ['rev_iews'],
        'spec.hosts[0]: must be a host name, optionally *-prefixed in its first label (*.a.com, *foo.a.com), or *',
      ],
      [
        ['re*views'],
        'spec.hosts[0]: must be a host name, optionally *-prefixed in its first label (*.a.com, *foo.a.com), or *',
      ],
      [['reviews', 'reviews'], 'spec.hosts: must not contain duplicates'],
      [
        ['reviews', 'reviews.bookinfo.svc'],
        'spec.hosts[1]: names the same host as spec.hosts[0] (reviews.bookinfo.svc.cluster.local)',
      ],
    ],
  );
  // No hosts: a delegate (Istio), valid on its own (test/crds/vs-route-fields.test.ts).
  t.deepEqual(errors(vs({ http: [{ route: [{ destination: { host: 'r' } }] }] })), []);
});

test('a VirtualService has http or tcp routes, and the lists are not empty', (t) => {
  t.deepEqual(errors(vs({ hosts: ['reviews'] })), ['spec: must have http, tls or tcp routes']);
  t.deepEqual(errors(vs({ hosts: ['reviews'], http: [] })), ['spec.http: must not be empty']);
  t.deepEqual(errors(vs({ hosts: ['reviews'], tcp: [{ route: [{ destination: { host: 'db' } }] }] })), []);
});

test('exportTo: *, . or namespaces; * alone; no duplicates, . counts as the own namespace', (t) => {
  const build = (exportTo: unknown) =>
    vs({ hosts: ['reviews'], exportTo, http: [{ route: [{ destination: { host: 'reviews' } }] }] });
  boundary(
    t,
    build,
    [['*'], ['.'], ['.', 'istio-system'], ['bookinfo', 'other']],
    [
      [['*', 'bookinfo'], 'spec.exportTo: * must be the only entry'],
      [['.', '.'], 'spec.exportTo: must not contain duplicates'],
      [['.', 'bookinfo'], 'spec.exportTo[1]: duplicates . (namespace bookinfo)'],
      [['~'], 'spec.exportTo[0]: must be *, . or a namespace name'],
      [['Other'], 'spec.exportTo[0]: must be *, . or a namespace name'],
    ],
  );
});

test('gateways are accepted; anything but mesh is ignored with a warning', (t) => {
  const build = (gateways: string[]) =>
    vs({ hosts: ['reviews'], gateways, http: [{ route: [{ destination: { host: 'reviews' } }] }] });
  t.deepEqual(warnings(build(['mesh'])), []);
  t.deepEqual(warnings(build(['bookinfo/gw'])), [
    'spec.gateways: ignored: Trellis has no gateways yet, the routes apply to the mesh',
  ]);
});

test('route: weights are relative, >= 0 (Istio)', (t) => {
  const build = (weight: number) =>
    vsHttp({
      route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight },
        { destination: { host: 'reviews', subset: 'v2' }, weight: 100 },
      ],
    });
  boundary(
    t,
    build,
    [0, 1, 99, 100, 101, 2_147_483_647],
    [
      [-1, 'spec.http[0].route[0].weight: must be >= 0'],
      [2_147_483_648, 'spec.http[0].route[0].weight: must be <= 2147483647'],
    ],
  );
});

test('route: weights not all zero when there are several destinations', (t) => {
  const build = (weights: number[]) =>
    vsHttp({ route: weights.map((weight, i) => ({ destination: { host: 'reviews', subset: `v${i}` }, weight })) });
  boundary(t, build, [[0], [0, 1], [100, 0]], [[[0, 0], 'spec.http[0].route: weights must not all be zero']]);
  t.deepEqual(
    errors(vs({ hosts: ['db'], tcp: [{ route: [0, 0].map((weight) => ({ destination: { host: 'db' }, weight })) }] })),
    ['spec.tcp[0].route: weights must not all be zero'],
  );
});

test('route: weight warnings (a missing weight; any sum is a proportion)', (t) => {
  const build = (weights: (number | undefined)[]) =>
    vsHttp({
      route: weights.map((weight, i) => ({
        destination: { host: 'reviews', subset: `v${i}` },
        ...(weight === undefined ? {} : { weight }),
      })),
    });
  t.deepEqual(warnings(build([90, 10])), []);
  t.deepEqual(warnings(build([undefined])), []);
  t.deepEqual(warnings(build([1, 1])), []);
  t.deepEqual(warnings(build([100, undefined])), [
    'spec.http[0].route[1]: has no weight, so it gets no traffic (the weight of several destinations defaults to 0)',
  ]);
});

test('route XOR redirect; fault, rewrite and mirror not with redirect', (t) => {
  const redirect = { uri: '/v2' };
  t.deepEqual(errors(vsHttp({ redirect })), [
    'spec.http[0]: must have exactly one of route, redirect, directResponse, delegate',
  ]);
  t.deepEqual(errors(vs({ hosts: ['reviews'], http: [{ redirect }] })), []);
  t.deepEqual(errors(vs({ hosts: ['reviews'], http: [{ match: [{ port: 80 }] }] })), [
    'spec.http[0]: must have exactly one of route, redirect, directResponse, delegate',
  ]);
  t.deepEqual(errors(vs({ hosts: ['reviews'], http: [{ route: [] }] })), ['spec.http[0].route: must not be empty']);
  t.deepEqual(
    errors(
      vs({
        hosts: ['reviews'],
        http: [
          { redirect, fault: { delay: { fixedDelay: '1s' } }, rewrite: { uri: '/' }, mirror: { host: 'reviews' } },
        ],
      }),
    ),
    [
      'spec.http[0].fault: must not be set with redirect',
      'spec.http[0].mirror: must not be set with redirect',
      'spec.http[0].rewrite: must not be set with redirect',
    ],
  );
});

test('redirect: one of uri, authority, scheme, port; codes 0 (unset), 301, 302, 303, 307, 308', (t) => {
  const build = (redirect: Json) => vs({ hosts: ['reviews'], http: [{ redirect }] });
  boundary(
    t,
    build,
    [
      { uri: '/x' },
      { authority: 'example.com' },
      { scheme: 'https' },
      { port: 8443 },
      { uri: '/x', redirectCode: 308 },
      { uri: '/x', redirectCode: 0 },
      { uri: '/x', port: 0 },
    ],
    [
      [{}, 'spec.http[0].redirect: must set at least one of uri, prefixRewrite, authority, scheme, port, derivePort'],
      [
        { uri: '/x', redirectCode: 300 },
        'spec.http[0].redirect.redirectCode: must be one of: 0, 301, 302, 303, 307, 308',
      ],
      [
        { uri: '/x', redirectCode: 304 },
        'spec.http[0].redirect.redirectCode: must be one of: 0, 301, 302, 303, 307, 308',
      ],
      [{ scheme: 'ftp' }, 'spec.http[0].redirect.scheme: must be one of: http, https'],
      [{ port: 65536 }, 'spec.http[0].redirect.port: must be <= 65535'],
      [{ uri: '' }, 'spec.http[0].redirect.uri: must not be empty'],
    ],
  );
});

test('rewrite: at least one field; uri XOR uriRegexRewrite; the regex is RE2', (t) => {
  boundary(
    t,
    (rewrite: Json) => vsHttp({ rewrite }),
    [
      { uri: '/v2/' },
      { authority: 'reviews.internal' },
      { uriRegexRewrite: { match: '^/v1/(.*)$', rewrite: '/v2/\\1' } },
    ],
    [
      [{}, 'spec.http[0].rewrite: must set at least one of uri, authority, uriRegexRewrite'],
      [
        { uri: '/', uriRegexRewrite: { match: '.*', rewrite: '/' } },
        'spec.http[0].rewrite: must not set both uri and uriRegexRewrite',
      ],
      [{ uriRegexRewrite: { match: '.*' } }, 'spec.http[0].rewrite.uriRegexRewrite.rewrite: is required'],
      [
        { uriRegexRewrite: { match: '^/(?P<x>.*$', rewrite: '/' } },
        'spec.http[0].rewrite.uriRegexRewrite.match: must be an RE2 regex (missing ): ^/(?P<x>.*$)',
      ],
    ],
  );
});

test('StringMatch: exactly one of exact, prefix, regex (headers and query parameters: at most one)', (t) => {
  const build = (m: Json) => vsHttp({ match: [m] });
  boundary(
    t,
    build,
    [
      { uri: { exact: '/a' } },
      { uri: { prefix: '' } },
      { uri: { regex: '/a/.*' } },
      { headers: { 'x-user': {} } },
      { queryParams: { debug: {} } },
      { withoutHeaders: { 'x-canary': { exact: 'no' } } },
      { method: { exact: 'GET' } },
    ],
    [
      [{ uri: {} }, 'spec.http[0].match[0].uri: must have exactly one of exact, prefix, regex'],
      [
        { uri: { exact: '/', prefix: '/' } },
        'spec.http[0].match[0].uri: must have exactly one of exact, prefix, regex',
      ],
      [
        { headers: { 'x-user': { exact: 'a', regex: 'b' } } },
        'spec.http[0].match[0].headers[x-user]: must have at most one of exact, prefix, regex',
      ],
      [{ method: { prefix: '' } }, 'spec.http[0].match[0].method.prefix: must not be empty'],
      [{ uri: { regex: '' } }, 'spec.http[0].match[0].uri.regex: must not be empty'],
      [{ uri: { regex: 'a'.repeat(1025) } }, 'spec.http[0].match[0].uri.regex: must be at most 1024 characters'],
    ],
  );
});

test('regexes compile as RE2, which is not JavaScript', (t) => {
  const build = (regex: string) => vsHttp({ match: [{ uri: { regex } }] });
  boundary(
    t,
    build,
    ['/api/v[0-9]+/.*', '(?i)/Reviews', '\\p{Greek}+', 'a{1000}'],
    [
      ['(a', 'spec.http[0].match[0].uri.regex: must be an RE2 regex (missing ): (a)'],
      ['(?=a)b', 'spec.http[0].match[0].uri.regex: must be an RE2 regex (invalid perl operator: (?=)'],
      ['(a)\\1', 'spec.http[0].match[0].uri.regex: must be an RE2 regex (invalid escape sequence: \\1)'],
      ['a{1001}', 'spec.http[0].match[0].uri.regex: must be an RE2 regex (invalid repetition size: {1001})'],
    ],
  );
  t.is(re2Error('ok'), undefined);
  t.deepEqual(errors(vsHttp({ corsPolicy: { allowOrigins: [{ regex: '*.example.com' }] } })), [
    'spec.http[0].corsPolicy.allowOrigins[0].regex: must be an RE2 regex (no argument for repetition operator: *)',
  ]);
});

test('header names in matches: any case (Istio); pseudo-headers allowed', (t) => {
  const build = (name: string) => vsHttp({ match: [{ headers: { [name]: { exact: 'v' } } }] });
  boundary(
    t,
    build,
    ['x-user', 'end-user', ':authority', ':method', 'x_legacy', 'X-User'],
    [
      [':status', 'spec.http[0].match[0].headers: header names must be HTTP header names'],
      ['x user', 'spec.http[0].match[0].headers: header names must be HTTP header names'],
    ],
  );
  t.deepEqual(errors(vsHttp({ match: [{ withoutHeaders: { 'X Canary': {} } }] })), [
    'spec.http[0].match[0].withoutHeaders: header names must be HTTP header names',
  ]);
});

test('match: port 0 (unset) or 1..65535, labels, source namespace', (t) => {
  boundary(
    t,
    (port: number) => vsHttp({ match: [{ port }] }),
    [0, 1, 65535],
    [
      [-1, 'spec.http[0].match[0].port: must be >= 0'],
      [65536, 'spec.http[0].match[0].port: must be <= 65535'],
    ],
  );
  boundary(
    t,
    (sourceLabels: Json) => vsHttp({ match: [{ sourceLabels }] }),
    [{ app: 'productpage' }, { 'app.kubernetes.io/name': 'x' }, { version: '' }],
    [
      [{ '-app': 'x' }, 'spec.http[0].match[0].sourceLabels: keys must be Kubernetes label names'],
      [
        { app: 'a b' },
        'spec.http[0].match[0].sourceLabels[app]: must be a label value (letters, digits, -, _ and ., alphanumeric at both ends)',
      ],
      [
        { ['a'.repeat(64)]: 'x' },
        `spec.http[0].match[0].sourceLabels[${'a'.repeat(64)}]: label name must be at most 63 characters`,
      ],
    ],
  );
  t.deepEqual(errors(vsHttp({ match: [{ sourceNamespace: 'Bookinfo' }] })), [
    'spec.http[0].match[0].sourceNamespace: must be a DNS label (lower case letters, digits and -, at most 63)',
  ]);
});

test('destination: host required, no wildcard; subset a DNS label; port 1..65535', (t) => {
  const build = (destination: Json) => vsHttp({ route: [{ destination }] });
  boundary(
    t,
    build,
    [
      { host: 'reviews' },
      { host: 'reviews.bookinfo.svc.cluster.local', subset: 'v1' },
      { host: 'reviews', port: { number: 1 } },
      { host: 'reviews', port: { number: 65535 } },
    ],
    [
      [{ subset: 'v1' }, 'spec.http[0].route[0].destination.host: is required'],
      [{ host: '*.example.com' }, 'spec.http[0].route[0].destination.host: must not be a wildcard'],
      [{ host: '' }, 'spec.http[0].route[0].destination.host: must not be empty'],
      [
        { host: 'reviews', subset: 'V1' },
        'spec.http[0].route[0].destination.subset: must be a DNS label (lower case letters, digits and -, at most 63)',
      ],
      [{ host: 'reviews', port: { number: 0 } }, 'spec.http[0].route[0].destination.port.number: must be >= 1'],
      [{ host: 'reviews', port: { number: 65536 } }, 'spec.http[0].route[0].destination.port.number: must be <= 65535'],
      [{ host: 'reviews', port: {} }, 'spec.http[0].route[0].destination.port.number: is required'],
    ],
  );
});

test('durations: h, m, s, ms; at least 1ms; whole milliseconds; not beyond Go durations', (t) => {
  const build = (timeout: string) => vsHttp({ timeout });
  boundary(
    t,
    build,
    ['1ms', '100ms', '1s', '1.5s', '0.001s', '1.500s', '1m', '1.5m', '0.0001m', '1h', '1h30m', '0.00001h', '2562047h'],
    [
      ['0.5ms', 'spec.http[0].timeout: must be a whole number of milliseconds'],
      ['1.0005s', 'spec.http[0].timeout: must be a whole number of milliseconds'],
      ['0.00001m', 'spec.http[0].timeout: must be a whole number of milliseconds'],
      ['0ms', 'spec.http[0].timeout: must be at least 1ms'],
      ['0s', 'spec.http[0].timeout: must be at least 1ms'],
      ['10', 'spec.http[0].timeout: must be a duration such as 1.5s, 100ms, 1m or 1h30m'],
      ['1us', 'spec.http[0].timeout: must be a duration such as 1.5s, 100ms, 1m or 1h30m'],
      ['-1s', 'spec.http[0].timeout: must be a duration such as 1.5s, 100ms, 1m or 1h30m'],
      ['1 s', 'spec.http[0].timeout: must be a duration such as 1.5s, 100ms, 1m or 1h30m'],
      ['1d', 'spec.http[0].timeout: must be a duration such as 1.5s, 100ms, 1m or 1h30m'],
      ['2562048h', 'spec.http[0].timeout: must be less than 2562047h'],
    ],
  );
});

test('duration parsing matches Go', (t) => {
  t.is(parseDurationNs('1h30m'), 5_400_000_000_000n);
  t.is(parseDurationNs('1.5s'), 1_500_000_000n);
  t.is(parseDurationNs('0.0001m'), 6_000_000n);
  t.is(parseDurationNs('1.0000000009s'), 1_000_000_000n); // truncated to the nanosecond, as Go does
  t.is(parseDurationNs('1s1s'), 2_000_000_000n);
  t.is(parseDurationNs('1'), undefined);
  t.is(durationToMs('2.5s'), 2500);
  t.is(durationToProtoJson('1h'), '3600s');
  t.is(durationToProtoJson('100ms'), '0.1s');
  t.is(durationToProtoJson('1.250s'), '1.25s');
});

test('retries: attempts >= 0 and required; options need attempts > 0; perTryTimeout <= timeout', (t) => {
  boundary(
    t,
    (attempts: number) => vsHttp({ retries: { attempts } }),
    [0, 1, 10],
    [[-1, 'spec.http[0].retries.attempts: must be >= 0']],
  );
  t.deepEqual(errors(vsHttp({ retries: { perTryTimeout: '1s' } })), ['spec.http[0].retries.attempts: is required']);
  t.deepEqual(errors(vsHttp({ retries: { attempts: 0, retryOn: '5xx' } })), [
    'spec.http[0].retries: must not set perTryTimeout, retryOn or retryRemoteLocalities when attempts is 0',
  ]);
  boundary(
    t,
    (perTryTimeout: string) => vsHttp({ timeout: '2s', retries: { attempts: 2, perTryTimeout } }),
    ['1s', '2s', '2000ms'],
    [
      ['2001ms', 'spec.http[0].retries.perTryTimeout: must be <= timeout'],
      ['1m', 'spec.http[0].retries.perTryTimeout: must be <= timeout'],
    ],
  );
  t.deepEqual(errors(vsHttp({ retries: { attempts: 2, perTryTimeout: '1h' } })), []);
});

test('retryOn: Envoy conditions, gRPC names, HTTP status codes', (t) => {
  boundary(
    t,
    (retryOn: string) => vsHttp({ retries: { attempts: 3, retryOn } }),
    [
      '5xx',
      'gateway-error,connect-failure,refused-stream',
      '5xx,503',
      'unavailable,cancelled,retriable-4xx',
      '100',
      '511',
    ],
    [
      [
        ' 5xx , 503 ',
        'spec.http[0].retries.retryOn: " 5xx " has a space (write the list without spaces, as Istio and Envoy do)',
      ],
      ['5xx,599', 'spec.http[0].retries.retryOn: "599" is not a retry condition or an HTTP status code'],
      ['foo', 'spec.http[0].retries.retryOn: "foo" is not a retry condition or an HTTP status code'],
      ['5xx,600', 'spec.http[0].retries.retryOn: "600" is not a retry condition or an HTTP status code'],
      ['5XX', 'spec.http[0].retries.retryOn: "5XX" is not a retry condition or an HTTP status code'],
      ['5xx,', 'spec.http[0].retries.retryOn: must be a comma-separated list of retry conditions, without spaces'],
    ],
  );
});

test('fault: delay or abort; abort has exactly one status; statuses 200..599; gRPC names', (t) => {
  const build = (fault: Json) => vsHttp({ fault });
  boundary(
    t,
    build,
    [
      { delay: { fixedDelay: '5s' } },
      { abort: { httpStatus: 200 } },
      { abort: { httpStatus: 599, percentage: { value: 10 } } },
      { abort: { grpcStatus: 'UNAVAILABLE' } },
      { delay: { fixedDelay: '1ms', percentage: { value: 0 } }, abort: { httpStatus: 503 } },
    ],
    [
      [{}, 'spec.http[0].fault: must set delay, abort or both'],
      [{ abort: { httpStatus: 199 } }, 'spec.http[0].fault.abort.httpStatus: must be >= 200'],
      [{ abort: { httpStatus: 600 } }, 'spec.http[0].fault.abort.httpStatus: must be <= 599'],
      [{ abort: {} }, 'spec.http[0].fault.abort: must have exactly one of httpStatus, grpcStatus'],
      [
        { abort: { httpStatus: 503, grpcStatus: 'INTERNAL' } },
        'spec.http[0].fault.abort: must have exactly one of httpStatus, grpcStatus',
      ],
      [
        { abort: { grpcStatus: 'unavailable' } },
        'spec.http[0].fault.abort.grpcStatus: must be one of: OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED',
      ],
      [{ delay: { percentage: { value: 1 } } }, 'spec.http[0].fault.delay.fixedDelay: is required'],
    ],
  );
});

test('percentages: 0, or 0.0001 to 100', (t) => {
  const build = (value: number) => vsHttp({ fault: { delay: { fixedDelay: '1s', percentage: { value } } } });
  boundary(
    t,
    build,
    [0, 0.0001, 50, 99.99, 100],
    [
      [100.1, 'spec.http[0].fault.delay.percentage.value: must be <= 100'],
      [-0.1, 'spec.http[0].fault.delay.percentage.value: must be >= 0'],
      [0.00009, 'spec.http[0].fault.delay.percentage.value: value must be 0 or at least 0.0001'],
    ],
  );
  t.deepEqual(errors(vsHttp({ fault: { delay: { fixedDelay: '1s', percentage: {} } } })), [
    'spec.http[0].fault.delay.percentage.value: is required',
  ]);
});

test('mirror and mirrorPercentage', (t) => {
  t.deepEqual(errors(vsHttp({ mirror: { host: 'reviews', subset: 'v2' }, mirrorPercentage: { value: 100 } })), []);
  t.deepEqual(errors(vsHttp({ mirrorPercentage: { value: 10 } })), [
    'spec.http[0].mirrorPercentage: must not be set without mirror',
  ]);
  t.deepEqual(errors(vsHttp({ mirror: { host: 'reviews' }, mirrorPercentage: { value: 100.5 } })), [
    'spec.http[0].mirrorPercentage.value: must be <= 100',
  ]);
  t.deepEqual(errors(vsHttp({ mirror: { subset: 'v2' } })), ['spec.http[0].mirror.host: is required']);
});

test('corsPolicy: origins, methods, header names, max age in whole seconds', (t) => {
  const build = (corsPolicy: Json) => vsHttp({ corsPolicy });
  boundary(
    t,
    build,
    [
      { allowOrigins: [{ exact: 'https://a.example' }, { prefix: 'https://' }], allowMethods: ['GET', 'OPTIONS'] },
      { allowHeaders: ['Content-Type', '*'], exposeHeaders: ['X-Trace'], maxAge: '1s', allowCredentials: false },
      { maxAge: '1h' },
    ],
    [
      [{ allowOrigins: [{ exact: '' }] }, 'spec.http[0].corsPolicy.allowOrigins[0].exact: must not be empty'],
      [
        { allowOrigins: [{}] },
        'spec.http[0].corsPolicy.allowOrigins[0]: must have exactly one of exact, prefix, regex',
      ],
      [
        { allowMethods: ['FETCH'] },
        'spec.http[0].corsPolicy.allowMethods[0]: must be one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE, *',
      ],
      [{ allowMethods: ['GET', 'GET'] }, 'spec.http[0].corsPolicy.allowMethods: must not contain duplicates'],
      [{ allowHeaders: ['x y'] }, 'spec.http[0].corsPolicy.allowHeaders[0]: must be an HTTP header name or *'],
      [{ maxAge: '1.5s' }, 'spec.http[0].corsPolicy.maxAge: must be a whole number of seconds, such as 60s, 10m or 1h'],
      [
        { maxAge: '500ms' },
        'spec.http[0].corsPolicy.maxAge: must be a whole number of seconds, such as 60s, 10m or 1h',
      ],
      [{ maxAge: '0s' }, 'spec.http[0].corsPolicy.maxAge: must be at least 1ms'],
    ],
  );
});

test('header operations: names, host and pseudo-headers, values, the authority set once', (t) => {
  const build = (headers: Json) => vsHttp({ headers });
  boundary(
    t,
    build,
    [
      { request: { set: { 'x-a': '1', ':authority': 'reviews.internal' }, add: { 'X-B': '2' }, remove: ['x-c'] } },
      { response: { set: { 'x-served-by': '%HOSTNAME%' }, add: { 'x-pct': '100%%' } } },
      { response: { add: { 'x-start': '%START_TIME(%s)%' } } },
    ],
    [
      [
        { response: { set: { host: 'x' } } },
        'spec.http[0].headers.response.set: header names must be HTTP header names other than host',
      ],
      [
        { response: { add: { ':status': '200' } } },
        'spec.http[0].headers.response.add: header names must be HTTP header names other than host',
      ],
      [
        { request: { set: { ':path': '/x' } } },
        'spec.http[0].headers.request.set: header names must be HTTP header names or :authority',
      ],
      [{ request: { remove: ['Host'] } }, 'spec.http[0].headers.request.remove: must not remove host'],
      [{ request: { remove: [':authority'] } }, 'spec.http[0].headers.request.remove[0]: must be an HTTP header name'],
      [
        { request: { set: { 'x-a': 'a\nb' } } },
        'spec.http[0].headers.request.set[x-a]: must not contain control characters',
      ],
      [
        { response: { set: { 'x-discount': '10%' } } },
        'spec.http[0].headers.response.set[x-discount]: has an unescaped % (write %% for a literal %)',
      ],
      [
        { request: { set: { ':authority': 'a', host: 'b' } } },
        'spec.http[0].headers.request.set[host]: sets the authority a second time (rewrite.authority, :authority and host are one header)',
      ],
    ],
  );
  t.deepEqual(errors(vsHttp({ rewrite: { authority: 'a' }, headers: { request: { add: { host: 'b' } } } })), [
    'spec.http[0].headers.request.add[host]: sets the authority a second time (rewrite.authority, :authority and host are one header)',
  ]);
  t.deepEqual(
    errors(vsHttp({ route: [{ destination: { host: 'reviews' }, headers: { response: { remove: ['host'] } } }] })),
    ['spec.http[0].route[0].headers.response.remove: must not remove host'],
  );
});

test('unreachable HTTP and TCP routes are warned about', (t) => {
  const r = (match?: unknown[]) => ({ ...(match ? { match } : {}), route: [{ destination: { host: 'reviews' } }] });
  t.deepEqual(warnings(vs({ hosts: ['reviews'], http: [r([{ uri: { prefix: '/a' } }]), r()] })), []);
  t.deepEqual(warnings(vs({ hosts: ['reviews'], http: [r(), r([{ uri: { prefix: '/a' } }])] })), [
    'spec.http[1]: unreachable: spec.http[0] matches every request',
  ]);
  t.deepEqual(warnings(vs({ hosts: ['reviews'], http: [r([{ name: 'all', uri: { regex: '.*' } }]), r(), r()] })), [
    'spec.http[1]: unreachable: spec.http[0] matches every request',
    'spec.http[2]: unreachable: spec.http[0] matches every request',
  ]);
  t.deepEqual(
    warnings(
      vs({
        hosts: ['db'],
        tcp: [
          { route: [{ destination: { host: 'db' } }] },
          { match: [{ port: 1 }], route: [{ destination: { host: 'db' } }] },
        ],
      }),
    ),
    ['spec.tcp[1]: unreachable: spec.tcp[0] matches every connection'],
  );
});

test('tcp: route required; subnets are IP addresses or CIDR blocks', (t) => {
  const build = (destinationSubnets: string[]) =>
    vs({ hosts: ['db'], tcp: [{ match: [{ destinationSubnets }], route: [{ destination: { host: 'db' } }] }] });
  boundary(
    t,
    build,
    [['10.0.0.1'], ['10.0.0.0/8'], ['0.0.0.0/0'], ['10.0.0.0/32'], ['2001:db8::/32'], ['::1']],
    [
      [['10.0.0.0/33'], 'spec.tcp[0].match[0].destinationSubnets[0]: must be an IP address or CIDR block'],
      [['300.0.0.1'], 'spec.tcp[0].match[0].destinationSubnets[0]: must be an IP address or CIDR block'],
      [['2001:db8::/129'], 'spec.tcp[0].match[0].destinationSubnets[0]: must be an IP address or CIDR block'],
      [['example.com'], 'spec.tcp[0].match[0].destinationSubnets[0]: must be an IP address or CIDR block'],
    ],
  );
  t.deepEqual(errors(vs({ hosts: ['db'], tcp: [{ match: [{ port: 27017 }] }] })), ['spec.tcp[0].route: is required']);
});

test('list and map sizes are bounded (the API server needs bounds to estimate CEL cost)', (t) => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ route: [{ destination: { host: `h${i}` } }] }));
  t.deepEqual(
    errors(vs({ hosts: ['reviews'], http: many(128) })).filter((e) => !e.includes('unreachable')),
    [],
  );
  t.deepEqual(errors(vs({ hosts: ['reviews'], http: many(129) })), ['spec.http: must have at most 128 items']);
  const headers = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`x-${i}`, {}]));
  t.deepEqual(errors(vsHttp({ match: [{ headers }] })), [
    'spec.http[0].match[0].headers: must have at most 32 entries',
  ]);
});

// ---------------------------------------------------------------------------------------------------
// DestinationRule

test('host: a name in any case, Istio wildcards or *; not an IP address; required', (t) => {
  boundary(
    t,
    (host: string) => dr({ host }),
    [
      'reviews',
      'reviews.bookinfo.svc.cluster.local',
      '*.bookinfo.svc.cluster.local',
      '*',
      'Reviews',
      '*-api.example.com',
    ],
    [
      ['', 'spec.host: must not be empty'],
      [
        're*views',
        'spec.host: must be a host name, optionally *-prefixed in its first label (*.a.com, *foo.a.com), or *',
      ],
      ['10.0.0.1', 'spec.host: must be a host name, not an IP address (Istio)'],
    ],
  );
  t.deepEqual(errors(dr({})), ['spec.host: is required']);
});

test('subsets: names are unique DNS labels; labels are label maps', (t) => {
  const build = (subsets: unknown[]) => dr({ host: 'reviews', subsets });
  boundary(
    t,
    build,
    [[{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2' }]],
    [
      [[{ name: 'v1' }, { name: 'v1' }], 'spec.subsets: subset names must be unique'],
      [[{ labels: { a: 'b' } }], 'spec.subsets[0].name: is required'],
      [[{ name: 'v1.0' }], 'spec.subsets[0].name: must be a DNS label (lower case letters, digits and -, at most 63)'],
      [[{ name: 'v1', labels: { 'a/b/c': 'x' } }], 'spec.subsets[0].labels: keys must be Kubernetes label names'],
    ],
  );
});

test('trafficPolicy and its blocks are not empty', (t) => {
  t.deepEqual(errors(drPolicy({})), ['spec.trafficPolicy: must set at least one field']);
  t.deepEqual(errors(drPolicy({ connectionPool: {} })), [
    'spec.trafficPolicy.connectionPool: must set at least one field',
  ]);
  t.deepEqual(errors(drPolicy({ connectionPool: { tcp: {} } })), [
    'spec.trafficPolicy.connectionPool.tcp: must set at least one field',
  ]);
  t.deepEqual(errors(drPolicy({ outlierDetection: {} })), [
    'spec.trafficPolicy.outlierDetection: must set at least one field',
  ]);
  t.deepEqual(errors(dr({ host: 'r', subsets: [{ name: 'v1', trafficPolicy: {} }] })), [
    'spec.subsets[0].trafficPolicy: must set at least one field',
  ]);
});

test('loadBalancer: at most one of simple and consistentHash (Istio: warmup or localityLbSetting alone); enums', (t) => {
  const build = (loadBalancer: Json) => drPolicy({ loadBalancer });
  boundary(
    t,
    build,
    [
      { simple: 'ROUND_ROBIN' },
      { simple: 'LEAST_CONN' },
      { simple: 'PASSTHROUGH' },
      { consistentHash: { useSourceIp: true } },
      { warmup: { duration: '1m' } },
      { localityLbSetting: { enabled: false } },
      {},
    ],
    [
      [
        { simple: 'RANDOM', consistentHash: { useSourceIp: true } },
        'spec.trafficPolicy.loadBalancer: must have at most one of simple, consistentHash',
      ],
      [
        { simple: 'WEIGHTED' },
        'spec.trafficPolicy.loadBalancer.simple: must be one of: UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST',
      ],
    ],
  );
});

test('consistentHash: exactly one key, at most one of ringHash and maglev; sizes', (t) => {
  const build = (consistentHash: Json) => drPolicy({ loadBalancer: { consistentHash } });
  const p = 'spec.trafficPolicy.loadBalancer.consistentHash';
  boundary(
    t,
    build,
    [
      { httpHeaderName: 'x-user' },
      { httpCookie: { name: 'user', ttl: '0s' } },
      { httpCookie: { name: 'user', ttl: '1h', path: '/' } },
      { httpQueryParameterName: 'user', ringHash: { minimumRingSize: 1 } },
      { useSourceIp: true, ringHash: { minimumRingSize: 8_388_608 } },
      { useSourceIp: true, maglev: { tableSize: 65537 } },
      { useSourceIp: true, maglev: { tableSize: 3 } },
      { useSourceIp: true, maglev: { tableSize: 4_999_999 } },
    ],
    [
      [{}, `${p}: must have exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName`],
      [
        { httpHeaderName: 'x-user', useSourceIp: true },
        `${p}: must have exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName`,
      ],
      [{ useSourceIp: false }, `${p}.useSourceIp: must be true`],
      [
        { useSourceIp: true, ringHash: {}, maglev: { tableSize: 65537 } },
        `${p}: must not set both ringHash and maglev`,
      ],
      [{ useSourceIp: true, ringHash: { minimumRingSize: 0 } }, `${p}.ringHash.minimumRingSize: must be >= 1`],
      [
        { useSourceIp: true, ringHash: { minimumRingSize: 8_388_609 } },
        `${p}.ringHash.minimumRingSize: must be <= 8388608`,
      ],
      [{ useSourceIp: true, maglev: { tableSize: 65536 } }, `${p}.maglev.tableSize: must be a prime number`],
      [{ useSourceIp: true, maglev: { tableSize: 5_000_011 } }, `${p}.maglev.tableSize: must be <= 5000010`],
      [{ useSourceIp: true, maglev: {} }, `${p}.maglev.tableSize: is required`],
      [{ httpCookie: { ttl: '1s' } }, `${p}.httpCookie.name: is required`],
      [{ httpCookie: { name: 'u', ttl: '1.5ms' } }, `${p}.httpCookie.ttl: must be a whole number of milliseconds`],
      [{ httpHeaderName: 'x user' }, `${p}.httpHeaderName: must be an HTTP header name`],
    ],
  );
});

test('warmup: duration required; minimumPercent 0..100; aggression > 0; a warning outside round robin', (t) => {
  const build = (warmup: Json) => drPolicy({ loadBalancer: { simple: 'ROUND_ROBIN', warmup } });
  const p = 'spec.trafficPolicy.loadBalancer.warmup';
  boundary(
    t,
    build,
    [
      { duration: '1ms' },
      { duration: '1m', minimumPercent: 0, aggression: 0.1 },
      { duration: '1m', minimumPercent: 100 },
    ],
    [
      [{}, `${p}.duration: is required`],
      [{ duration: '0s' }, `${p}.duration: must be at least 1ms`],
      [{ duration: '1m', minimumPercent: 100.5 }, `${p}.minimumPercent: must be <= 100`],
      [{ duration: '1m', aggression: 0 }, `${p}.aggression: must be > 0`],
    ],
  );
  t.deepEqual(warnings(drPolicy({ loadBalancer: { simple: 'RANDOM', warmup: { duration: '1m' } } })), [
    `${p}: ignored: warmup applies to ROUND_ROBIN and LEAST_REQUEST only`,
  ]);
});

test('connectionPool: non-negative limits, durations; tcp idleTimeout may be 0s', (t) => {
  const build = (connectionPool: Json) => drPolicy({ connectionPool });
  const p = 'spec.trafficPolicy.connectionPool';
  boundary(
    t,
    build,
    [
      { tcp: { maxConnections: 0, connectTimeout: '1ms', idleTimeout: '0s' } },
      { tcp: { maxConnections: 2_147_483_647, maxConnectionDuration: '1h' } },
      { http: { http1MaxPendingRequests: 0, http2MaxRequests: 1, maxRequestsPerConnection: 1, maxRetries: 0 } },
      { http: { idleTimeout: '1ms', maxConcurrentStreams: 0 } },
      { tcp: { tcpKeepalive: { probes: 0, time: '1s', interval: '1s' } } },
    ],
    [
      [{ tcp: { maxConnections: -1 } }, `${p}.tcp.maxConnections: must be >= 0`],
      [{ tcp: { maxConnections: 2_147_483_648 } }, `${p}.tcp.maxConnections: must be <= 2147483647`],
      [{ tcp: { connectTimeout: '0s' } }, `${p}.tcp.connectTimeout: must be at least 1ms`],
      [{ http: { idleTimeout: '0s' } }, `${p}.http.idleTimeout: must be at least 1ms`],
      [{ http: { http2MaxRequests: -1 } }, `${p}.http.http2MaxRequests: must be >= 0`],
      [{ tcp: { tcpKeepalive: { probes: -1 } } }, `${p}.tcp.tcpKeepalive.probes: must be >= 0`],
    ],
  );
  t.deepEqual(warnings(build({ tcp: { tcpKeepalive: { time: '1500ms' } } })), [
    `${p}.tcp.tcpKeepalive.time: Envoy counts whole seconds: sent as 1s`,
  ]);
});

test('outlierDetection: counts >= 0, percentages 0..100, durations', (t) => {
  const build = (outlierDetection: Json) => drPolicy({ outlierDetection });
  const p = 'spec.trafficPolicy.outlierDetection';
  boundary(
    t,
    build,
    [
      { consecutive5xxErrors: 0, maxEjectionPercent: 0, minHealthPercent: 0 },
      {
        consecutiveGatewayErrors: 1,
        maxEjectionPercent: 100,
        minHealthPercent: 100,
        interval: '1ms',
        baseEjectionTime: '30s',
      },
    ],
    [
      [{ consecutive5xxErrors: -1 }, `${p}.consecutive5xxErrors: must be >= 0`],
      [{ maxEjectionPercent: 101 }, `${p}.maxEjectionPercent: must be <= 100`],
      [{ maxEjectionPercent: -1 }, `${p}.maxEjectionPercent: must be >= 0`],
      [{ minHealthPercent: 101 }, `${p}.minHealthPercent: must be <= 100`],
      [{ interval: '0.5ms' }, `${p}.interval: must be a whole number of milliseconds`],
      [{ baseEjectionTime: '0s' }, `${p}.baseEjectionTime: must be at least 1ms`],
    ],
  );
});

test('tls: mode required, ISTIO_MUTUAL accepted as an alias; sni is a host name', (t) => {
  const build = (tls: Json) => drPolicy({ tls });
  boundary(
    t,
    build,
    [
      { mode: 'DISABLE' },
      { mode: 'SIMPLE', sni: 'reviews.example.com', subjectAltNames: ['spiffe://cluster.local/ns/a/sa/b'] },
      { mode: 'MUTUAL', credentialName: 'client-cert' },
      { mode: 'MESH_MUTUAL' },
      { mode: 'ISTIO_MUTUAL' },
    ],
    [
      [{}, 'spec.trafficPolicy.tls.mode: is required'],
      [
        { mode: 'STRICT' },
        'spec.trafficPolicy.tls.mode: must be one of: DISABLE, SIMPLE, MUTUAL, MESH_MUTUAL, ISTIO_MUTUAL',
      ],
      [{ mode: 'SIMPLE', sni: 'a b' }, 'spec.trafficPolicy.tls.sni: must be a host name (lower case DNS labels)'],
      [{ mode: 'SIMPLE', subjectAltNames: [''] }, 'spec.trafficPolicy.tls.subjectAltNames[0]: must not be empty'],
    ],
  );
  t.deepEqual(warnings(build({ mode: 'DISABLE', sni: 'a.example' })), [
    'spec.trafficPolicy.tls: sni and subjectAltNames are ignored when mode is DISABLE',
  ]);
});

test('portLevelSettings: port required and unique, plus one policy', (t) => {
  const build = (portLevelSettings: unknown[]) => drPolicy({ portLevelSettings });
  const tls = { mode: 'DISABLE' };
  boundary(
    t,
    build,
    [
      [
        { port: { number: 9080 }, tls },
        { port: { number: 9090 }, tls },
      ],
    ],
    [
      [[{ tls }], 'spec.trafficPolicy.portLevelSettings[0].port: is required'],
      [
        [{ port: { number: 9080 } }],
        'spec.trafficPolicy.portLevelSettings[0]: must set loadBalancer, connectionPool, outlierDetection or tls',
      ],
      [
        [
          { port: { number: 9080 }, tls },
          { port: { number: 9080 }, tls },
        ],
        'spec.trafficPolicy.portLevelSettings: port numbers must be unique',
      ],
      [[{ port: { number: 0 }, tls }], 'spec.trafficPolicy.portLevelSettings[0].port.number: must be >= 1'],
    ],
  );
  t.deepEqual(
    errors(
      dr({
        host: 'reviews',
        subsets: [
          {
            name: 'v1',
            trafficPolicy: {
              portLevelSettings: [{ port: { number: 1 }, outlierDetection: { maxEjectionPercent: 200 } }],
            },
          },
        ],
      }),
    ),
    ['spec.subsets[0].trafficPolicy.portLevelSettings[0].outlierDetection.maxEjectionPercent: must be <= 100'],
  );
});

// ---------------------------------------------------------------------------------------------------
// Output

test('issues are sorted by path (indexes numerically), errors before warnings, and deduplicated', (t) => {
  t.true(comparePaths('spec.http[2]', 'spec.http[10]') < 0);
  t.true(comparePaths('spec.http', 'spec.http[0]') < 0);
  t.true(comparePaths('metadata.name', 'spec') < 0);
  const http = Array.from({ length: 12 }, () => ({ route: [{ destination: { host: 'reviews' } }], timeout: '0s' }));
  const r = validateRoutingResource(vs({ hosts: ['reviews'], http }));
  const paths = r.issues.filter((i) => i.severity === 'error').map((i) => i.path);
  t.deepEqual(
    paths,
    http.map((_, i) => `spec.http[${i}].timeout`),
  );
});

test('formatIssue: kind namespace/name, path, message; origin file#document numbered from 1', (t) => {
  const r = validateRoutingResource(
    vsHttp({
      route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight: 100 },
        { destination: { host: 'reviews', subset: 'v2' }, weight: -1 },
      ],
    }),
  );
  const issue = r.issues[0];
  if (!issue) return t.fail('no issue');
  t.is(formatIssue(r, issue), 'VirtualService bookinfo/reviews: spec.http[0].route[1].weight: must be >= 0');
  t.is(
    formatIssue(r, issue, { file: 'reviews.yaml', document: 1 }),
    'reviews.yaml#2: VirtualService bookinfo/reviews: spec.http[0].route[1].weight: must be >= 0',
  );
  t.is(
    formatIssue(r, issue, { file: 'reviews.yaml' }),
    'reviews.yaml: VirtualService bookinfo/reviews: spec.http[0].route[1].weight: must be >= 0',
  );
  t.is(
    formatIssue(r, { ...issue, severity: 'warning' }, { file: 'a.yaml', document: 0 }),
    'a.yaml#1: warning: VirtualService bookinfo/reviews: spec.http[0].route[1].weight: must be >= 0',
  );
  const unnamed = validateRoutingResource({
    apiVersion: API_VERSION,
    kind: 'DestinationRule',
    metadata: {},
    spec: { host: 'x' },
  });
  t.is(formatIssue(unnamed, unnamed.issues[0]!), 'DestinationRule default/(no name): metadata.name: is required');
});

test('the validator does not change its input and is deterministic', (t) => {
  const input = vsHttp({ timeout: '0s', retries: { attempts: -1 } });
  const copy = structuredClone(input);
  const a = validateRoutingResource(input);
  const b = validateRoutingResource(structuredClone(input));
  t.deepEqual(input, copy);
  t.deepEqual(a, b);
});

// ---------------------------------------------------------------------------------------------------
// Every field of crds/types.ts is in the schema (a typed literal: a field the types lack fails to compile,
// a field the schema lacks is an "unknown field" error).

test('a VirtualService that sets every field of the types is valid', (t) => {
  const full: VirtualService = {
    apiVersion: API_VERSION,
    kind: 'VirtualService',
    metadata: {
      name: 'reviews',
      namespace: 'bookinfo',
      uid: '0b9c6a4e-1111-2222-3333-444455556666',
      resourceVersion: '42',
      generation: 3,
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: { app: 'reviews' },
      annotations: { note: 'x' },
    },
    spec: {
      hosts: ['reviews'],
      gateways: ['mesh'],
      exportTo: ['*'],
      http: [
        {
          name: 'all',
          match: [
            {
              name: 'm',
              uri: { prefix: '/' },
              scheme: { exact: 'https' },
              method: { exact: 'GET' },
              authority: { prefix: 'reviews' },
              headers: { 'x-user': { regex: '[a-z]+' } },
              port: 9080,
              sourceLabels: { app: 'productpage' },
              queryParams: { debug: { exact: '1' } },
              ignoreUriCase: true,
              withoutHeaders: { 'x-canary': {} },
              sourceNamespace: 'bookinfo',
            },
          ],
          route: [
            {
              destination: { host: 'reviews', subset: 'v1', port: { number: 9080 } },
              weight: 100,
              headers: { request: { set: { a: '1' }, add: { b: '2' }, remove: ['c'] }, response: { set: { d: '4' } } },
            },
          ],
          rewrite: { uri: '/v1/', authority: 'reviews.internal' },
          timeout: '10s',
          retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx', retryRemoteLocalities: true },
          fault: {
            delay: { percentage: { value: 1 }, fixedDelay: '1s' },
            abort: { percentage: { value: 1 }, httpStatus: 503 },
          },
          mirror: { host: 'reviews', subset: 'v2', port: { number: 9080 } },
          mirrorPercentage: { value: 5 },
          corsPolicy: {
            allowOrigins: [{ exact: 'https://a.example' }],
            allowMethods: ['GET'],
            allowHeaders: ['x-a'],
            exposeHeaders: ['x-b'],
            maxAge: '60s',
            allowCredentials: true,
          },
          headers: { request: { remove: ['x-debug'] } },
        },
        { redirect: { uri: '/x', authority: 'a.example', port: 8443, scheme: 'https', redirectCode: 302 } },
        {
          route: [{ destination: { host: 'reviews' } }],
          rewrite: { uriRegexRewrite: { match: '^/a/(.*)', rewrite: '/b/\\1' } },
          fault: { abort: { grpcStatus: 'UNAVAILABLE' } },
        },
      ],
      tcp: [
        {
          match: [
            {
              destinationSubnets: ['10.0.0.0/8'],
              port: 27017,
              sourceLabels: { app: 'ratings' },
              sourceNamespace: 'bookinfo',
            },
          ],
          route: [{ destination: { host: 'mongodb' }, weight: 100 }],
        },
      ],
    },
    status: {
      observedGeneration: 3,
      conditions: [
        {
          type: 'Accepted',
          status: 'True',
          reason: 'Valid',
          message: 'ok',
          lastTransitionTime: '2026-01-01T00:00:00Z',
          observedGeneration: 3,
        },
      ],
    },
  };
  t.deepEqual(errors(full), []);
});

test('a DestinationRule that sets every field of the types is valid', (t) => {
  const policy: TrafficPolicy = {
    loadBalancer: { simple: 'LEAST_REQUEST', warmup: { duration: '30s', minimumPercent: 10, aggression: 1 } },
    connectionPool: {
      tcp: {
        maxConnections: 10,
        connectTimeout: '1s',
        tcpKeepalive: { probes: 3, time: '60s', interval: '10s' },
        maxConnectionDuration: '1h',
        idleTimeout: '5m',
      },
      http: {
        http1MaxPendingRequests: 1,
        http2MaxRequests: 1,
        maxRequestsPerConnection: 1,
        maxRetries: 1,
        idleTimeout: '1m',
        maxConcurrentStreams: 10,
      },
    },
    outlierDetection: {
      consecutive5xxErrors: 5,
      consecutiveGatewayErrors: 5,
      interval: '10s',
      baseEjectionTime: '30s',
      maxEjectionPercent: 10,
      minHealthPercent: 50,
    },
    tls: { mode: 'SIMPLE', sni: 'reviews.example.com', subjectAltNames: ['reviews.example.com'] },
    portLevelSettings: [
      {
        port: { number: 9080 },
        loadBalancer: {
          consistentHash: { httpCookie: { name: 'u', path: '/', ttl: '0s' }, ringHash: { minimumRingSize: 1024 } },
        },
        connectionPool: { http: { maxRetries: 1 } },
        outlierDetection: { consecutive5xxErrors: 1 },
        tls: { mode: 'MESH_MUTUAL' },
      },
    ],
  };
  const full: DestinationRule = {
    apiVersion: API_VERSION,
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'bookinfo' },
    spec: {
      host: 'reviews',
      exportTo: ['.'],
      trafficPolicy: policy,
      subsets: [
        { name: 'v1', labels: { version: 'v1' }, trafficPolicy: policy },
        {
          name: 'v2',
          trafficPolicy: {
            loadBalancer: { consistentHash: { httpQueryParameterName: 'u', maglev: { tableSize: 65537 } } },
          },
        },
        { name: 'v3', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-u' } } } },
        { name: 'v4', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } } },
      ],
    },
  };
  t.deepEqual(errors(full), []);
});
