// fast-check arbitraries of the routing and mTLS resources (crds/types.ts) and of the small mesh they
// route in. Every field is drawn mostly from values that mean something in the generated mesh (its hosts,
// subsets, ports, labels) and the edges of each rule (bounds, durations at the limits, RE2 that is not
// valid JavaScript and back), and now and then replaced by a value of the wrong shape, so that a case holds
// valid and invalid objects alike. fast-check shrinks a failing case field by field.
import fc from 'fast-check';
import type { DestinationRuleSpec, PeerAuthenticationSpec, VirtualServiceSpec } from '../../crds/types.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { MeshConfig } from '../../control-plane/translate/context.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import { destinationRule, peerAuthentication, virtualService, workload, namespace } from '../model/_objects.js';

/** Anything at all: what a hand-edited YAML could put where a field is expected. */
export const weird: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
);

/** A record whose every key is optional (absent keys are left out, not undefined). */
function optional<T extends Record<string, unknown>>(fields: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(fields, { requiredKeys: [] }) as unknown as fc.Arbitrary<T>;
}

function small<T>(arb: fc.Arbitrary<T>, maxLength = 3, minLength = 0): fc.Arbitrary<T[]> {
  return fc.array(arb, { minLength, maxLength });
}

// ---------------------------------------------------------------------------------------------------
// The mesh

export const NAMESPACES = ['default', 'shop', 'trellis-system'] as const;

interface Workload {
  readonly ns: string;
  readonly name: string;
  readonly port: { name: string; port: number; targetPort: number; appProtocol?: string };
  readonly versions: { version: string; address: string; port: number }[];
}

/** The Services a mesh can have: HTTP, gRPC and TCP ports, one or two versions each. */
const WORKLOADS: readonly Workload[] = [
  {
    ns: 'default',
    name: 'reviews',
    port: { name: 'http', port: 9080, targetPort: 9080 },
    versions: [
      { version: 'v1', address: '10.0.0.1', port: 9080 },
      { version: 'v2', address: '10.0.0.2', port: 9080 },
    ],
  },
  {
    ns: 'shop',
    name: 'ratings',
    port: { name: 'grpc', port: 8080, targetPort: 50051, appProtocol: 'grpc' },
    versions: [
      { version: 'v1', address: '10.0.1.1', port: 50051 },
      { version: 'v2', address: '10.0.1.2', port: 50051 },
    ],
  },
  {
    ns: 'shop',
    name: 'db',
    port: { name: 'tcp', port: 3306, targetPort: 3306 },
    versions: [{ version: 'v1', address: '10.0.1.3', port: 3306 }],
  },
  {
    ns: 'default',
    name: 'echo',
    port: { name: 'grpc-echo', port: 8080, targetPort: 50052 },
    versions: [{ version: 'v1', address: '10.0.0.3', port: 50052 }],
  },
];

/** Namespaces, Services, Pods and EndpointSlices: a non-empty subset of WORKLOADS. */
export const meshArb: fc.Arbitrary<MeshObject[]> = fc
  .subarray([...WORKLOADS], { minLength: 1 })
  .map((workloads) => [
    ...NAMESPACES.map((n) => namespace(n)),
    ...workloads.flatMap((w) => workload(w.ns, w.name, w.port, w.versions)),
  ]);

function proxy(
  proxyType: ProxyInfo['proxyType'],
  id: string,
  ns: string,
  extra: { labels?: Record<string, string>; instanceIps?: string[]; serviceAccount?: string } = {},
): ProxyInfo {
  return {
    id,
    cluster: '',
    namespace: ns,
    serviceAccount: extra.serviceAccount ?? 'default',
    labels: extra.labels ?? {},
    instanceIps: extra.instanceIps ?? [],
    proxyType,
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: proxyType === 'grpc' ? 'grpc-node-js' : 'envoy',
  };
}

/** The proxies every case generates for: sidecars with and without inbound instances, gRPC clients and a gRPC server. */
export const PROXIES: readonly ProxyInfo[] = [
  proxy('envoy', 'reviews-v1.default', 'default', {
    labels: { app: 'reviews', version: 'v1', 'trellis.dev/tlsMode': 'mesh' },
    instanceIps: ['10.0.0.1'],
    serviceAccount: 'reviews-sa',
  }),
  proxy('envoy', 'client-0.shop', 'shop', { labels: { app: 'client' } }),
  proxy('grpc', 'client-1.default', 'default', { labels: { app: 'client' } }),
  proxy('grpc', 'ratings-v1.shop', 'shop', {
    labels: { app: 'ratings', version: 'v1', 'trellis.dev/tlsMode': 'mesh' },
    instanceIps: ['10.0.1.1'],
    serviceAccount: 'ratings-sa',
  }),
];

// ---------------------------------------------------------------------------------------------------
// Values and resources
//
// Built twice: `clean` draws only values each field's own rule accepts (an object can still be refused
// for how its fields combine: two of a oneof, a redirect beside a route, …); `dirty` also draws values each
// rule refuses and, now and then, a value of the wrong shape. Half of a case's objects come from each.

/** A map key: mostly from `pool`, sometimes any string (keys are strings in JSON). */
function keyArb(clean: boolean, valid: readonly string[], invalid: readonly string[] = []): fc.Arbitrary<string> {
  if (clean) return fc.constantFrom(...valid);
  return fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...valid, ...invalid) }, fc.string({ maxLength: 4 }));
}

// Clean mode: the rules across fields, applied to what the fields drew (map, so shrinking still works).

type Fields = Record<string, unknown>;

/**
 * Exactly one of route, redirect and directResponse; a redirect has no fault, rewrite or mirrors, a direct
 * response no fault or rewrite; mirror or mirrors; no mirrorPercentage without mirror; one kind of URI
 * rewrite; a redirect's port or derivePort, uri or prefixRewrite (this only under prefix matches).
 */
function cleanHttpRoute(fields: Fields, redirect: boolean): Fields {
  const r = { ...fields };
  if (redirect && r.redirect !== undefined) {
    for (const k of ['route', 'fault', 'rewrite', 'mirror', 'mirrorPercentage', 'mirrors', 'directResponse'])
      delete r[k];
    const rd = { ...(r.redirect as Fields) };
    if (rd.port !== undefined) delete rd.derivePort;
    if (rd.uri !== undefined) delete rd.prefixRewrite;
    const matches = (r.match as Fields[] | undefined) ?? [];
    if (matches.some((m) => m.uri !== undefined && (m.uri as Fields).prefix === undefined)) delete rd.prefixRewrite;
    if (Object.keys(rd).every((k) => k === 'redirectCode')) rd.scheme = 'https';
    r.redirect = rd;
  } else if (r.directResponse !== undefined && (redirect || r.route === undefined)) {
    for (const k of ['route', 'redirect', 'fault', 'rewrite']) delete r[k];
    const body = (r.directResponse as Fields).body as Fields | undefined;
    if (body && body.string !== undefined && body.bytes !== undefined)
      r.directResponse = { ...(r.directResponse as Fields), body: { string: body.string } };
    else if (body && body.string === undefined && body.bytes === undefined)
      r.directResponse = { status: (r.directResponse as Fields).status };
  } else {
    delete r.redirect;
    delete r.directResponse;
  }
  if (r.mirror !== undefined) delete r.mirrors;
  if (r.mirror === undefined) delete r.mirrorPercentage;
  const rewrite = r.rewrite as Fields | undefined;
  if (rewrite && rewrite.uri !== undefined && rewrite.uriRegexRewrite !== undefined) {
    r.rewrite = { ...rewrite, uriRegexRewrite: undefined };
    delete (r.rewrite as Fields).uriRegexRewrite;
  }
  if (rewrite && Object.keys(r.rewrite as Fields).length === 0) delete r.rewrite;
  if (r.route === undefined && r.redirect === undefined && r.directResponse === undefined)
    r.route = [{ destination: { host: 'reviews' } }];
  return r;
}

const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'];

/** Exactly one of simple and consistentHash; a consistent hash with exactly one key and at most one of ringHash and maglev. */
function cleanLoadBalancer(fields: Fields, choice: number): Fields {
  const lb = { ...fields };
  if (lb.simple !== undefined && lb.consistentHash !== undefined)
    delete lb[choice % 2 === 0 ? 'simple' : 'consistentHash'];
  if (lb.simple === undefined && lb.consistentHash === undefined) lb.simple = 'ROUND_ROBIN';
  if (lb.consistentHash !== undefined) {
    const hash = { ...(lb.consistentHash as Fields) };
    const keys = HASH_KEYS.filter((k) => hash[k] !== undefined);
    const keep = keys[choice % Math.max(keys.length, 1)] ?? 'httpHeaderName';
    for (const k of HASH_KEYS) if (k !== keep) delete hash[k];
    if (hash[keep] === undefined) hash[keep] = 'x-user';
    if (hash.ringHash !== undefined && hash.maglev !== undefined) delete hash[choice % 3 === 0 ? 'ringHash' : 'maglev'];
    lb.consistentHash = hash;
  }
  return lb;
}

/** Subset names are unique. */
function uniqueSubsets(fields: Fields): Fields {
  const subsets = fields.subsets as Fields[] | undefined;
  if (!subsets) return fields;
  const seen = new Set<unknown>();
  return { ...fields, subsets: subsets.filter((s) => !seen.has(s.name) && seen.add(s.name)) };
}

/** portLevelMtls only beside a non-empty selector. */
function portLevelNeedsSelector(fields: Fields): Fields {
  const labels = (fields.selector as Fields | undefined)?.matchLabels as Fields | undefined;
  if (fields.portLevelMtls === undefined || (labels && Object.keys(labels).length > 0)) return fields;
  return { ...fields, selector: { matchLabels: { app: 'reviews' } } };
}

/** The spec arbitraries of one mode. */
function resourceArbs(clean: boolean) {
  /** `arb` mostly, a value of the wrong shape sometimes (typed as `arb`: the validator must cope). */
  const v = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> =>
    clean ? arb : fc.oneof({ weight: 30, arbitrary: arb }, { weight: 1, arbitrary: weird as fc.Arbitrary<T> });
  /** One of `valid`, or in dirty mode also one of `invalid`. */
  const pick = <T>(valid: readonly T[], invalid: readonly T[] = []): fc.Arbitrary<T> =>
    v(fc.constantFrom(...valid, ...(clean ? [] : invalid)));
  /** Dirty mode also draws any short string. */
  const text = (valid: readonly string[], invalid: readonly string[] = [], maxLength = 6): fc.Arbitrary<string> =>
    clean
      ? fc.constantFrom(...valid)
      : v(fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...valid, ...invalid) }, fc.string({ maxLength })));

  const hostArb = text(
    [
      'reviews',
      'reviews.default',
      'reviews.default.svc',
      'reviews.default.svc.cluster.local',
      'ratings',
      'ratings.shop',
      'ratings.shop.svc.cluster.local',
      'db.shop.svc.cluster.local',
      'echo',
      'echo.default.svc.cluster.local',
      '*.shop.svc.cluster.local',
      '*.svc.cluster.local',
      'unknown.example.com',
    ],
    ['*', 'UPPER.example.com', 'a..b', ''],
    12,
  );
  const destinationHostArb = text(
    [
      'reviews',
      'reviews.default',
      'ratings.shop.svc.cluster.local',
      'db.shop.svc.cluster.local',
      'echo',
      'unknown.example.com',
    ],
    ['*.shop.svc.cluster.local', '*', ''],
    12,
  );
  const subsetArb = pick(['v1', 'v2', 'v3'], ['V1', '', 'a_b']);
  const portArb = pick([9080, 8080, 3306, 50051, 1, 65535, 8081], [0, 65536, -1, 1.5]);
  const namespaceArb = pick([...NAMESPACES, 'other'], ['Bad_NS', '']);
  const durationArb = pick(
    ['1s', '0.5s', '250ms', '1m', '1h', '315576000s'],
    ['0s', '-1s', '1ns', '1.5ms', '1us', '0.000000001s', '315576000001s', '1d', 'abc', '', '10'],
  );
  const secondsArb = pick(['60s', '10m', '1h'], ['0.5s', '1ms']);
  const percentArb = v(fc.record({ value: pick([0, 0.001, 1.5, 50, 100], [100.5, -1]) }));
  const regexArb = text(
    ['.*', '/api/v[0-9]+/.*', '^/exact$', '(a|b)+', '\\d{2,}', '(?P<name>x)', '\\p{Greek}+', 'a{1000}'],
    ['[', '(?=lookahead)', 'a{1001}', '', 'x**', '(a)\\1'],
  );
  const pathArb = text(['/', '/api', '/v1/items', '/a%20b'], ['', 'no-slash', '/\n']);
  const stringMatchArb = v(
    fc.oneof(
      fc.record({ exact: pathArb }),
      fc.record({ prefix: pathArb }),
      fc.record({ regex: regexArb }),
      ...(clean
        ? []
        : [
            optional<{ exact: string; prefix: string; regex: string }>({
              exact: pathArb,
              prefix: pathArb,
              regex: regexArb,
            }),
          ]),
    ),
  );
  const HEADERS = ['x-user', 'x-version', 'x-b3-traceid'];
  const BAD_HEADERS = [':authority', ':path', 'X-Upper', 'bad name', '', 'host'];
  const headerKeyArb = keyArb(clean, HEADERS, BAD_HEADERS);
  const headerNameArb = pick(HEADERS, BAD_HEADERS);
  const headerValueArb = text(['a', 'v2', ''], ['line\nbreak', '\u0000']);
  const labelsArb = v(
    fc.dictionary(
      keyArb(clean, ['app', 'version', 'team'], ['Bad Key', '']),
      pick(['reviews', 'ratings', 'v1', 'v2', ''], ['bad value!']),
      {
        maxKeys: 2,
      },
    ),
  );
  const exportToArb = v(small(pick(['*', '.', 'default', 'shop'], ['Bad', '']), clean ? 1 : 2));

  // VirtualService
  const destinationArb = v(
    fc.record(
      {
        host: destinationHostArb,
        subset: subsetArb,
        port: v(fc.record({ number: portArb }, { requiredKeys: clean ? ['number'] : [] })),
      },
      { requiredKeys: ['host'] },
    ),
  );
  const headerOpsArb = v(
    optional<{ set: Record<string, string>; add: Record<string, string>; remove: string[] }>({
      set: v(fc.dictionary(headerKeyArb, headerValueArb, { maxKeys: 2 })),
      add: v(fc.dictionary(headerKeyArb, headerValueArb, { maxKeys: 2 })),
      remove: v(small(headerNameArb, 2)),
    }),
  );
  const headersArb = v(optional({ request: headerOpsArb, response: headerOpsArb }));
  const weightArb = pick([0, 1, 10, 50, 90, 100], [101, -1, 2.5]);
  const matchArb = optional({
    name: pick(['m', 'api'], ['']),
    uri: stringMatchArb,
    scheme: stringMatchArb,
    method: stringMatchArb,
    authority: stringMatchArb,
    headers: v(fc.dictionary(headerKeyArb, stringMatchArb, { maxKeys: 2 })),
    port: portArb,
    sourceLabels: labelsArb,
    queryParams: v(fc.dictionary(keyArb(clean, ['q', 'debug'], ['']), stringMatchArb, { maxKeys: 2 })),
    ignoreUriCase: v(fc.boolean()),
    withoutHeaders: v(fc.dictionary(headerKeyArb, stringMatchArb, { maxKeys: 1 })),
    sourceNamespace: namespaceArb,
  });
  const retriesArb = v(
    fc.record(
      {
        attempts: pick([1, 3, 10], [0, -1, 2147483648]),
        perTryTimeout: pick(['250ms', '0.5s', '1s'], ['0s', '2h']),
        retryOn: pick(
          ['5xx', 'connect-failure,refused-stream', 'unavailable,cancelled', '503', 'gateway-error, reset'],
          ['bogus', ',', ''],
        ),
        retryRemoteLocalities: v(fc.boolean()),
      },
      { requiredKeys: ['attempts'] },
    ),
  );
  const faultArb = v(
    optional({
      delay: v(fc.record({ percentage: percentArb, fixedDelay: durationArb }, { requiredKeys: ['fixedDelay'] })),
      abort: v(
        fc.oneof(
          fc.record(
            { percentage: percentArb, httpStatus: pick([200, 400, 503, 599], [600, 99]) },
            { requiredKeys: ['httpStatus'] },
          ),
          fc.record(
            { percentage: percentArb, grpcStatus: pick(['UNAVAILABLE', 'INTERNAL', 'OK'], ['nope']) },
            { requiredKeys: ['grpcStatus'] },
          ),
        ),
      ),
    }),
  );
  const corsArb = v(
    optional({
      allowOrigins: v(small(stringMatchArb, 2)),
      allowMethods: v(small(pick(['GET', 'POST', 'OPTIONS'], ['get', 'BREW']), 2)),
      allowHeaders: v(small(headerNameArb, 2)),
      exposeHeaders: v(small(headerNameArb, 2)),
      maxAge: secondsArb,
      allowCredentials: v(fc.boolean()),
    }),
  );
  const redirectArb = v(
    optional({
      uri: pathArb,
      authority: pick(['example.com', 'a:1'], ['']),
      port: portArb,
      derivePort: pick(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'], ['FROM_NOWHERE']),
      prefixRewrite: pick(['/new', '/'], ['']),
      scheme: pick(['http', 'https'], ['ftp']),
      redirectCode: pick([301, 302, 303, 307, 308], [300, 200]),
    }),
  );
  const directResponseArb = v(
    fc.record(
      {
        status: pick([200, 404, 503], [600, 100]),
        body: v(optional({ string: pick(['down', ''], []), bytes: pick(['b2sK'], ['!', 'abc']) })),
      },
      { requiredKeys: clean ? ['status'] : [] },
    ),
  );
  const rewriteArb = v(
    optional({
      uri: pathArb,
      authority: pick(['example.com'], ['']),
      uriRegexRewrite: v(fc.record({ match: regexArb, rewrite: pick(['/\\1', '/x'], ['']) })),
    }),
  );
  const httpRouteFields = optional({
    name: pick(['r', 'default'], ['']),
    match: v(small(matchArb, 2)),
    route: v(
      small(
        fc.record(
          { destination: destinationArb, weight: weightArb, headers: headersArb },
          { requiredKeys: ['destination'] },
        ),
        3,
        clean ? 1 : 0,
      ),
    ),
    redirect: redirectArb,
    rewrite: rewriteArb,
    timeout: pick(['1s', '1m', '1h'], ['0s', '-1s', '1.5ms', 'abc']),
    retries: retriesArb,
    fault: faultArb,
    mirror: destinationArb,
    mirrorPercentage: percentArb,
    mirrors: v(
      small(
        fc.record({ destination: destinationArb, percentage: percentArb }, { requiredKeys: ['destination'] }),
        2,
        1,
      ),
    ),
    directResponse: directResponseArb,
    corsPolicy: corsArb,
    headers: headersArb,
  });
  const httpRouteArb = clean
    ? fc.tuple(httpRouteFields, fc.boolean()).map(([r, redirect]) => cleanHttpRoute(r, redirect))
    : httpRouteFields;
  const tcpRouteArb = fc.record(
    {
      match: v(
        small(
          optional({
            destinationSubnets: v(small(pick(['10.0.0.0/8', '10.0.1.3', '::1/128'], ['10.0.0.0/33', 'nope']), 2)),
            port: portArb,
            sourceLabels: labelsArb,
            sourceNamespace: namespaceArb,
          }),
          2,
        ),
      ),
      route: v(
        small(
          fc.record({ destination: destinationArb, weight: weightArb }, { requiredKeys: ['destination'] }),
          2,
          clean ? 1 : 0,
        ),
      ),
    },
    { requiredKeys: clean ? ['route'] : [] },
  );
  const virtualService = fc.record(
    {
      hosts: v(small(hostArb, 2, clean ? 1 : 0)),
      gateways: v(small(pick(['mesh'], ['gw']), 1)),
      http: v(small(httpRouteArb, 3, clean ? 1 : 0)),
      tcp: v(small(tcpRouteArb, 2, clean ? 1 : 0)),
      exportTo: exportToArb,
    },
    { requiredKeys: clean ? ['hosts'] : [] },
  );

  // DestinationRule
  const intArb = pick([1, 100, 1024, 2147483647], [0, 2147483648, -1]);
  const loadBalancerFields = optional({
    simple: pick(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'], ['MAGIC']),
    consistentHash: v(
      optional({
        httpHeaderName: headerNameArb,
        httpCookie: v(
          fc.record({ name: pick(['session'], ['']), path: pathArb, ttl: durationArb }, { requiredKeys: ['name'] }),
        ),
        useSourceIp: pick([true], [false]),
        httpQueryParameterName: pick(['user'], ['']),
        ringHash: v(optional({ minimumRingSize: pick([1, 1024, 8388608], [8388609, 0]) })),
        maglev: v(
          fc.record(
            { tableSize: pick([65537, 5, 4999999], [4, 1, 0, 5000009, 5000011]) },
            { requiredKeys: clean ? ['tableSize'] : [] },
          ),
        ),
      }),
    ),
    warmup: v(
      fc.record(
        {
          duration: durationArb,
          minimumPercent: pick([0, 10, 100], [101]),
          aggression: pick([1, 2.5, 1000], [0, 1001]),
        },
        { requiredKeys: ['duration'] },
      ),
    ),
  });
  const loadBalancerArb = v(
    clean
      ? fc.tuple(loadBalancerFields, fc.nat()).map(([lb, choice]) => cleanLoadBalancer(lb, choice))
      : loadBalancerFields,
  );
  const connectionPoolArb = v(
    optional({
      tcp: v(
        optional({
          maxConnections: intArb,
          connectTimeout: durationArb,
          tcpKeepalive: v(optional({ probes: intArb, time: durationArb, interval: durationArb })),
          maxConnectionDuration: durationArb,
          idleTimeout: durationArb,
        }),
      ),
      http: v(
        optional({
          http1MaxPendingRequests: intArb,
          http2MaxRequests: intArb,
          maxRequestsPerConnection: intArb,
          maxRetries: intArb,
          idleTimeout: durationArb,
          maxConcurrentStreams: intArb,
        }),
      ),
    }),
  );
  const outlierArb = v(
    optional({
      consecutive5xxErrors: intArb,
      consecutiveGatewayErrors: intArb,
      interval: durationArb,
      baseEjectionTime: durationArb,
      maxEjectionPercent: pick([0, 10, 100], [101]),
      minHealthPercent: pick([0, 50, 100], [-1]),
    }),
  );
  const tlsArb = v(
    fc.record(
      {
        mode: pick(['DISABLE', 'SIMPLE', 'MUTUAL', 'MESH_MUTUAL', 'ISTIO_MUTUAL'], ['STRICT']),
        sni: pick(['reviews.default.svc.cluster.local', 'example.com'], ['bad sni', '']),
        subjectAltNames: v(small(pick(['spiffe://cluster.local/ns/default/sa/reviews-sa', 'example.com'], ['']), 2)),
      },
      { requiredKeys: ['mode'] },
    ),
  );
  const policyFields = {
    loadBalancer: loadBalancerArb,
    connectionPool: connectionPoolArb,
    outlierDetection: outlierArb,
    tls: tlsArb,
  };
  const trafficPolicyArb = v(
    optional({
      ...policyFields,
      portLevelSettings: v(
        small(
          fc.record(
            { port: v(fc.record({ number: portArb }, { requiredKeys: clean ? ['number'] : [] })), ...policyFields },
            { requiredKeys: clean ? ['port'] : [] },
          ),
          2,
        ),
      ),
    }),
  );
  const destinationRuleFields = fc.record(
    {
      host: hostArb,
      trafficPolicy: trafficPolicyArb,
      subsets: v(
        small(
          fc.record(
            { name: subsetArb, labels: labelsArb, trafficPolicy: trafficPolicyArb },
            { requiredKeys: ['name'] },
          ),
          3,
        ),
      ),
      exportTo: exportToArb,
    },
    { requiredKeys: ['host'] },
  );
  const destinationRule = clean ? destinationRuleFields.map(uniqueSubsets) : destinationRuleFields;

  // PeerAuthentication
  const peerModeArb = pick(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'], ['strict', 'ON']);
  const peerAuthenticationFields = optional({
    selector: v(optional({ matchLabels: labelsArb })),
    mtls: v(optional({ mode: peerModeArb })),
    portLevelMtls: v(
      fc.dictionary(
        keyArb(clean, ['9080', '50051', '3306'], ['0', '65536', 'abc']),
        v(optional({ mode: peerModeArb })),
        { maxKeys: 2 },
      ),
    ),
  });

  const peerAuthentication = clean ? peerAuthenticationFields.map(portLevelNeedsSelector) : peerAuthenticationFields;
  // Typed as the specs they mostly are; dirty values do not fit the types, which is the point.
  return {
    virtualService: virtualService as unknown as fc.Arbitrary<VirtualServiceSpec>,
    destinationRule: destinationRule as unknown as fc.Arbitrary<DestinationRuleSpec>,
    peerAuthentication: peerAuthentication as unknown as fc.Arbitrary<PeerAuthenticationSpec>,
  };
}

export const cleanArbs = resourceArbs(true);
const dirtyArbs = resourceArbs(false);

/** VirtualService specs, valid and invalid. */
export const virtualServiceSpecArb = fc.oneof(cleanArbs.virtualService, dirtyArbs.virtualService);
/** DestinationRule specs, valid and invalid. */
export const destinationRuleSpecArb = fc.oneof(cleanArbs.destinationRule, dirtyArbs.destinationRule);
/** PeerAuthentication specs, valid and invalid. */
export const peerAuthenticationSpecArb = fc.oneof(cleanArbs.peerAuthentication, dirtyArbs.peerAuthentication);

// ---------------------------------------------------------------------------------------------------
// Cases

export interface RoutingObjectDraft {
  readonly kind: 'VirtualService' | 'DestinationRule' | 'PeerAuthentication';
  readonly namespace: string;
  readonly spec: unknown;
}

const draftArb: fc.Arbitrary<RoutingObjectDraft> = fc.oneof(
  fc.record({
    kind: fc.constant('VirtualService' as const),
    namespace: fc.constantFrom(...NAMESPACES),
    spec: virtualServiceSpecArb,
  }),
  fc.record({
    kind: fc.constant('DestinationRule' as const),
    namespace: fc.constantFrom(...NAMESPACES),
    spec: destinationRuleSpecArb,
  }),
  fc.record({
    kind: fc.constant('PeerAuthentication' as const),
    namespace: fc.constantFrom(...NAMESPACES),
    spec: peerAuthenticationSpecArb,
  }),
);

/**
 * A later edit of one of a case's objects (`drafts[index % drafts.length]`): the spec of its kind replaces
 * its spec. Drawn dirty, so that it is often invalid: an object that turns invalid keeps its last accepted
 * version.
 */
export interface DraftUpdate {
  readonly index: number;
  readonly specs: Readonly<Record<RoutingObjectDraft['kind'], unknown>>;
}

/** The mesh-wide settings (`--mesh-config`), every field drawn from values its parser accepts. */
export const meshConfigArb: fc.Arbitrary<MeshConfig> = fc.record({
  trustDomain: fc.constantFrom('cluster.local', 'example.org'),
  mtlsMode: fc.constantFrom('PERMISSIVE', 'STRICT'),
  connectTimeout: fc.constantFrom('10s', '1ms', '0.25s'),
  outboundTrafficPolicy: fc.constantFrom('ALLOW_ANY', 'REGISTRY_ONLY'),
  tracing: fc.record(
    { samplingPercent: fc.constantFrom(0, 1, 12.5, 100), collector: fc.constant('jaeger.observability:4317') },
    { requiredKeys: ['samplingPercent'] },
  ),
  accessLog: fc.boolean(),
});

/** One fuzz case: a mesh, routing objects for it, the mesh-wide settings, and a later edit. */
export interface MeshCase {
  readonly mesh: MeshObject[];
  readonly drafts: RoutingObjectDraft[];
  readonly meshConfig: MeshConfig;
  readonly update?: DraftUpdate;
}

export const meshCaseArb: fc.Arbitrary<MeshCase> = fc.record({
  mesh: meshArb,
  drafts: fc.array(draftArb, { minLength: 1, maxLength: 4 }),
  meshConfig: meshConfigArb,
  update: fc.record({
    index: fc.nat(3),
    specs: fc.record({
      VirtualService: dirtyArbs.virtualService as fc.Arbitrary<unknown>,
      DestinationRule: dirtyArbs.destinationRule as fc.Arbitrary<unknown>,
      PeerAuthentication: dirtyArbs.peerAuthentication as fc.Arbitrary<unknown>,
    }),
  }),
});

/** The drafts after `update`. */
export function updatedDrafts(drafts: readonly RoutingObjectDraft[], update: DraftUpdate): RoutingObjectDraft[] {
  const i = update.index % drafts.length;
  return drafts.map((d, j) => (j === i ? { ...d, spec: update.specs[d.kind] } : d));
}

/**
 * The objects of a case's drafts, named `<kind>-<index>` (names never collide), created a second apart in
 * draft order (the older of two VirtualServices for one host wins).
 */
export function objectsOf(drafts: readonly RoutingObjectDraft[]): MeshObject[] {
  return drafts.map((d, i) => {
    const meta = { creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), generation: 1 };
    const name = `${d.kind.toLowerCase()}-${i}`;
    if (d.kind === 'VirtualService') return virtualService(d.namespace, name, d.spec as VirtualServiceSpec, meta);
    if (d.kind === 'DestinationRule') return destinationRule(d.namespace, name, d.spec as DestinationRuleSpec, meta);
    return peerAuthentication(d.namespace, name, d.spec as PeerAuthenticationSpec, meta);
  });
}
