// The VirtualService HTTP route fields of issue 15 — mirrors, directResponse, delegate, redirect.derivePort /
// prefixRewrite, retries.backoff / retryIgnorePreviousHosts — validated as Istio validates them
// (pilot/pkg/config/validation: validateHTTPRouteConflict, validateHTTPMirrors, validateHTTPDirectResponse,
// validateHTTPRedirect, validateHTTPRetry, ValidateVirtualService's delegate rules), each test named for the
// Istio rule it follows.
import test from 'ava';
import { crossCheck } from '../../crds/cross-checks.js';
import { API_VERSION, type RoutingResource } from '../../crds/types.js';
import { validateRoutingResource, type ValidationResult } from '../../crds/validator.js';

type Json = Record<string, unknown>;

const meta = { name: 'reviews', namespace: 'bookinfo' };
const to = (host: string): Json => ({ destination: { host } });

function vs(spec: Json): Json {
  return { apiVersion: API_VERSION, kind: 'VirtualService', metadata: meta, spec };
}

/** One HTTP route on host reviews, exactly as given. */
const route = (http: Json): Json => vs({ hosts: ['reviews'], http: [http] });

function lines(r: ValidationResult, severity: 'error' | 'warning'): string[] {
  return r.issues.filter((i) => i.severity === severity).map((i) => `${i.path}: ${i.message}`);
}
const errors = (o: unknown): string[] => lines(validateRoutingResource(o), 'error');
const warnings = (o: unknown): string[] => lines(validateRoutingResource(o), 'warning');

const EXACTLY_ONE = 'spec.http[0]: must have exactly one of route, redirect, directResponse, delegate';

// ---------------------------------------------------------------------------------------------------
// mirrors

test('Istio validateHTTPMirrors: several mirrors, each a destination with an optional percentage in [0, 100]', (t) => {
  const ok = route({
    route: [to('reviews')],
    mirrors: [
      { destination: { host: 'reviews', subset: 'v2' }, percentage: { value: 25 } },
      { destination: { host: 'shadow' } },
      { destination: { host: 'off' }, percentage: { value: 0 } },
    ],
  });
  t.deepEqual(errors(ok), []);
  t.deepEqual(warnings(ok), []);
  t.deepEqual(errors(route({ route: [to('reviews')], mirrors: [{ percentage: { value: 5 } }] })), [
    'spec.http[0].mirrors[0].destination: is required',
  ]);
  t.deepEqual(errors(route({ route: [to('reviews')], mirrors: [{ ...to('a'), percentage: { value: 100.5 } }] })), [
    'spec.http[0].mirrors[0].percentage.value: must be <= 100',
  ]);
  t.deepEqual(errors(route({ route: [to('reviews')], mirrors: [{ ...to('a'), percentage: { value: -1 } }] })), [
    'spec.http[0].mirrors[0].percentage.value: must be >= 0',
  ]);
  t.deepEqual(errors(route({ route: [to('reviews')], mirrors: [{ destination: { host: 'A_B' } }] })).length, 1);
});

test('Istio validateHTTPRouteConflict: mirror and mirrors are mutually exclusive', (t) => {
  t.deepEqual(errors(route({ route: [to('reviews')], mirror: { host: 'a' }, mirrors: [to('b')] })), [
    'spec.http[0].mirrors: must not be set with mirror',
  ]);
  // mirrorPercentage belongs to mirror (Istio: "Percentage of the traffic to be mirrored by the mirror field").
  t.deepEqual(errors(route({ route: [to('reviews')], mirrorPercentage: { value: 5 }, mirrors: [to('b')] })), [
    'spec.http[0].mirrorPercentage: must not be set without mirror',
  ]);
});

// ---------------------------------------------------------------------------------------------------
// directResponse

test('Istio validateHTTPRouteConflict: directResponse only without route and redirect', (t) => {
  const directResponse = { status: 503, body: { string: 'down for maintenance' } };
  t.deepEqual(errors(route({ directResponse })), []);
  t.deepEqual(errors(route({ directResponse, route: [to('reviews')] })), [EXACTLY_ONE]);
  t.deepEqual(errors(route({ directResponse, redirect: { uri: '/x' } })), [EXACTLY_ONE]);
  t.deepEqual(errors(route({ directResponse, fault: { abort: { httpStatus: 500 } }, rewrite: { uri: '/' } })), [
    'spec.http[0].fault: must not be set with directResponse',
    'spec.http[0].rewrite: must not be set with directResponse',
  ]);
  // Neither route, redirect, directResponse nor delegate.
  t.deepEqual(errors(route({ match: [{ uri: { prefix: '/' } }] })), [EXACTLY_ONE]);
});

test('Istio validateHTTPStatus: a direct response status is 200 to 599 (Envoy refuses 600)', (t) => {
  for (const status of [200, 404, 503, 599]) t.deepEqual(errors(route({ directResponse: { status } })), []);
  t.deepEqual(errors(route({ directResponse: { status: 199 } })), [
    'spec.http[0].directResponse.status: must be >= 200',
  ]);
  t.deepEqual(errors(route({ directResponse: { status: 600 } })), [
    'spec.http[0].directResponse.status: must be <= 599',
  ]);
  t.deepEqual(errors(route({ directResponse: { body: { string: 'x' } } })), [
    'spec.http[0].directResponse.status: is required',
  ]);
});

test('Istio HTTPBody: exactly one of string and bytes (base64)', (t) => {
  t.deepEqual(errors(route({ directResponse: { status: 200, body: { bytes: 'aGVsbG8=' } } })), []);
  t.deepEqual(errors(route({ directResponse: { status: 200, body: { string: 'a', bytes: 'YQ==' } } })), [
    'spec.http[0].directResponse.body: must have exactly one of string, bytes',
  ]);
  t.deepEqual(errors(route({ directResponse: { status: 200, body: {} } })), [
    'spec.http[0].directResponse.body: must have exactly one of string, bytes',
  ]);
  t.deepEqual(errors(route({ directResponse: { status: 200, body: { bytes: 'aGVsbG8' } } })), [
    'spec.http[0].directResponse.body.bytes: must be base64 (a multiple of 4 characters)',
  ]);
  t.true(errors(route({ directResponse: { status: 200, body: { bytes: 'not base64!' } } })).length > 0);
});

test('Istio validateHTTPDirectResponse: a body over 100 KiB is a warning, over 1 MiB an error', (t) => {
  const at = (n: number) => route({ directResponse: { status: 200, body: { string: 'x'.repeat(n) } } });
  t.deepEqual(warnings(at(100 * 1024)), []);
  t.deepEqual(warnings(at(100 * 1024 + 1)), [
    'spec.http[0].directResponse.body: is over 100 KiB: every proxy receives it in its config (Istio warns the same)',
  ]);
  t.deepEqual(errors(at(1024 * 1024)), []);
  t.deepEqual(errors(at(1024 * 1024 + 1)), [
    'spec.http[0].directResponse.body.string: must be at most 1048576 characters',
  ]);
  // Under 1 MiB characters but over 1 MiB of UTF-8.
  t.deepEqual(errors(route({ directResponse: { status: 200, body: { string: 'é'.repeat(600 * 1024) } } })), [
    'spec.http[0].directResponse.body: must be at most 1 MiB (Istio and Envoy refuse larger bodies)',
  ]);
  // Bytes count decoded, and multi-byte characters count as their UTF-8 bytes.
  const bytes = Buffer.alloc(1024 * 1024 + 1).toString('base64');
  t.deepEqual(errors(route({ directResponse: { status: 200, body: { bytes } } })), [
    'spec.http[0].directResponse.body: must be at most 1 MiB (Istio and Envoy refuse larger bodies)',
  ]);
  t.deepEqual(warnings(route({ directResponse: { status: 200, body: { string: 'é'.repeat(60 * 1024) } } })).length, 1);
});

test('a direct response forwards nothing: timeout, retries and mirrors on it are warned as ignored', (t) => {
  const r = route({ directResponse: { status: 204 }, timeout: '1s', retries: { attempts: 2 }, mirrors: [to('m')] });
  t.deepEqual(errors(r), []);
  t.deepEqual(warnings(r), [
    'spec.http[0].mirrors: ignored: a route with directResponse forwards nothing',
    'spec.http[0].retries: ignored: a route with directResponse forwards nothing',
    'spec.http[0].timeout: ignored: a route with directResponse forwards nothing',
  ]);
});

// ---------------------------------------------------------------------------------------------------
// delegate

test('Istio ValidateVirtualService: a VirtualService without hosts is a delegate, with http routes only', (t) => {
  const delegate = (spec: Json): Json => vs({ http: [{ route: [to('reviews')] }], ...spec });
  t.deepEqual(errors(delegate({})), []);
  t.deepEqual(errors(delegate({ gateways: ['mesh'] })), ['spec.gateways: a delegate (no hosts) must have no gateways']);
  t.deepEqual(errors(delegate({ tcp: [{ route: [to('reviews')] }] })), [
    'spec.tcp: a delegate (no hosts) must have no tcp routes',
  ]);
  t.deepEqual(errors(vs({})), ['spec: must have http, tls or tcp routes']);
});

test('Istio validateHTTPRouteConflict: a delegate HTTP route cannot contain delegate (one level only)', (t) => {
  t.deepEqual(errors(vs({ http: [{ delegate: { name: 'other' } }] })), [
    'spec.http: a delegate (no hosts) cannot delegate (one level of delegation only)',
  ]);
});

test('Istio validateHTTPRouteConflict: a root HTTP route must not specify route or redirect', (t) => {
  const delegate = { name: 'reviews-v2', namespace: 'team-b' };
  t.deepEqual(errors(route({ match: [{ uri: { prefix: '/v2' } }], delegate })), []);
  t.deepEqual(errors(route({ delegate: { name: 'reviews-v2' } })), []);
  t.deepEqual(errors(route({ delegate, route: [to('reviews')] })), [EXACTLY_ONE]);
  t.deepEqual(errors(route({ delegate, redirect: { uri: '/' } })), [EXACTLY_ONE]);
  // Istio lets a root route carry what its delegate's routes inherit, a directResponse included.
  t.deepEqual(errors(route({ delegate, directResponse: { status: 503 }, timeout: '2s', headers: {} })), []);
  t.deepEqual(errors(route({ delegate: { namespace: 'x' } })), ['spec.http[0].delegate.name: is required']);
  t.deepEqual(errors(route({ delegate: { name: 'Bad_Name' } })).length, 1);
  t.deepEqual(errors(route({ delegate: { name: 'ok', namespace: 'Not.A.Label' } })).length, 1);
});

// ---------------------------------------------------------------------------------------------------
// redirect

test('Istio HTTPRedirect.redirect_port: port and derivePort are one oneof', (t) => {
  for (const derivePort of ['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'])
    t.deepEqual(errors(route({ redirect: { scheme: 'https', derivePort } })), []);
  // derivePort alone is a redirect (Istio: "must specify URI, authority, scheme, or port"; the port is the oneof).
  t.deepEqual(errors(route({ redirect: { derivePort: 'FROM_REQUEST_PORT' } })), []);
  t.deepEqual(errors(route({ redirect: { port: 8443, derivePort: 'FROM_REQUEST_PORT' } })), [
    'spec.http[0].redirect: must not set both port and derivePort',
  ]);
  t.deepEqual(errors(route({ redirect: { derivePort: 'FROM_SOMEWHERE' } })), [
    'spec.http[0].redirect.derivePort: must be one of: FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT',
  ]);
  t.deepEqual(errors(route({ redirect: { redirectCode: 302 } })), [
    'spec.http[0].redirect: must set at least one of uri, prefixRewrite, authority, scheme, port, derivePort',
  ]);
});

test('Istio HTTPRedirect.prefix_rewrite (1.31): exclusive with uri, and the route must match by prefix', (t) => {
  t.deepEqual(errors(route({ match: [{ uri: { prefix: '/old' } }], redirect: { prefixRewrite: '/new' } })), []);
  // No match, or a match without uri: the route matches prefix / (Envoy's prefix_rewrite applies).
  t.deepEqual(errors(route({ redirect: { prefixRewrite: '/new' } })), []);
  t.deepEqual(errors(route({ match: [{ headers: { a: { exact: 'b' } } }], redirect: { prefixRewrite: '/n' } })), []);
  t.deepEqual(errors(route({ redirect: { uri: '/a', prefixRewrite: '/b' } })), [
    'spec.http[0].redirect: must not set both uri and prefixRewrite',
  ]);
  t.deepEqual(
    errors(
      route({
        match: [{ uri: { prefix: '/a' } }, { uri: { exact: '/b' } }, { uri: { regex: '/c.*' } }],
        redirect: { prefixRewrite: '/n' },
      }),
    ),
    [
      'spec.http[0].match[1].uri: must be a prefix match: redirect.prefixRewrite replaces the matched prefix',
      'spec.http[0].match[2].uri: must be a prefix match: redirect.prefixRewrite replaces the matched prefix',
    ],
  );
});

// ---------------------------------------------------------------------------------------------------
// retries

test('Istio validateHTTPRetry: backoff is a duration of at least 1ms; retryIgnorePreviousHosts a bool', (t) => {
  const retries = (r: Json) => route({ route: [to('reviews')], retries: { attempts: 3, ...r } });
  t.deepEqual(errors(retries({ backoff: '100ms', retryIgnorePreviousHosts: false })), []);
  t.deepEqual(errors(retries({ backoff: '0s' })), ['spec.http[0].retries.backoff: must be at least 1ms']);
  t.deepEqual(errors(retries({ backoff: 'soon' })).length, 1);
  t.deepEqual(errors(retries({ retryIgnorePreviousHosts: 'no' })), [
    'spec.http[0].retries.retryIgnorePreviousHosts: must be true or false',
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Across objects (trellis validate)

test('crossCheck: the subsets of mirrors[] are checked like a mirror', (t) => {
  const resources: RoutingResource[] = [
    {
      apiVersion: API_VERSION,
      kind: 'VirtualService',
      metadata: meta,
      spec: {
        hosts: ['reviews'],
        http: [
          {
            route: [{ destination: { host: 'reviews', subset: 'v1' } }],
            mirrors: [
              { destination: { host: 'reviews', subset: 'v1' } },
              { destination: { host: 'reviews', subset: 'v9' } },
            ],
          },
        ],
      },
    },
    {
      apiVersion: API_VERSION,
      kind: 'DestinationRule',
      metadata: meta,
      spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
    },
  ];
  t.deepEqual(
    crossCheck(resources, undefined).flatMap((issues) => issues.map((i) => `${i.path}: ${i.message}`)),
    [
      'spec.http[0].mirrors[1].destination.subset: no DestinationRule for reviews.bookinfo.svc.cluster.local defines subset v9',
    ],
  );
});

test('crossCheck: a root’s delegate missing from the input, with hosts or not exported is a warning', (t) => {
  const vsOf = (name: string, namespace: string, spec: Record<string, unknown>): RoutingResource =>
    ({ apiVersion: API_VERSION, kind: 'VirtualService', metadata: { name, namespace }, spec }) as RoutingResource;
  const root = vsOf('reviews', 'bookinfo', {
    hosts: ['reviews'],
    http: [
      { delegate: { name: 'ok' } },
      { delegate: { name: 'missing' } },
      { delegate: { name: 'hosted' } },
      { delegate: { name: 'private', namespace: 'team' } },
    ],
  });
  const route = [{ route: [{ destination: { host: 'reviews' } }] }];
  const resources = [
    root,
    vsOf('ok', 'bookinfo', { http: route }),
    vsOf('hosted', 'bookinfo', { hosts: ['x'], http: route }),
    vsOf('private', 'team', { exportTo: ['.'], http: route }),
  ];
  for (const r of resources) t.deepEqual(errors(r), []);
  t.deepEqual(
    crossCheck(resources, undefined)[0]!.map((i) => `${i.severity} ${i.path}: ${i.message}`),
    [
      'warning spec.http[1].delegate: no VirtualService bookinfo/missing in the input (without it this route is left out)',
      'warning spec.http[2].delegate: VirtualService bookinfo/hosted has hosts, so it is not a delegate; this route is left out',
      'warning spec.http[3].delegate: VirtualService team/private is not exported to namespace bookinfo; this route is left out',
    ],
  );
});
