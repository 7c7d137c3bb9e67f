// Istio's validation rules (istio/istio pkg/config/validation: validation.go, virtualservice.go,
// agent/validation.go) held against Trellis's validator, one entry per rule: objects Istio accepts and
// objects it refuses, with the lines validateRoutingResource gives. test/crds/istio-validation.test.ts runs
// each rule through the validator; test/crds/apiserver.test.ts gives every object to a real API server,
// which must agree with the validator's schema and CEL layers (the other errors are the webhook's).

export type Json = Record<string, unknown>;

export interface IstioCase {
  readonly object: Json;
  /** `path: message` of every error; empty when Istio and Trellis accept the object. */
  readonly errors: readonly string[];
  /** `path: message` of every warning. */
  readonly warnings?: readonly string[];
}

export interface IstioRule {
  /** The test name: `istio: <the rule>`. */
  readonly name: string;
  readonly cases: readonly IstioCase[];
}

const NS = 'bookinfo';

export function vs(spec: Json, name = 'reviews'): Json {
  return {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'VirtualService',
    metadata: { name, namespace: NS },
    spec,
  };
}

export function dr(spec: Json, name = 'reviews'): Json {
  return {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'DestinationRule',
    metadata: { name, namespace: NS },
    spec,
  };
}

function pa(spec: Json): Json {
  return {
    apiVersion: 'security.trellis.dev/v1alpha1',
    kind: 'PeerAuthentication',
    metadata: { name: 'reviews', namespace: NS },
    spec,
  };
}

const route = [{ destination: { host: 'reviews' } }];
const hosts = (list: unknown[], extra: Json = {}): Json => vs({ hosts: list, http: [{ route }], ...extra });
const http = (h: Json): Json => vs({ hosts: ['reviews'], http: [{ route, ...h }] });
const tls = (t: Json): Json => dr({ host: 'reviews', trafficPolicy: { tls: t } });
const lb = (loadBalancer: Json): Json => dr({ host: 'reviews', trafficPolicy: { loadBalancer } });

const HOST_PATTERN_MESSAGE =
  'must be a host name, optionally *-prefixed in its first label (*.a.com, *foo.a.com), or *';

export const ISTIO_RULES: readonly IstioRule[] = [
  // ---- Refused by Istio (ValidateVirtualService, validateGatewayNames, ValidateWildcardDomain, …) ----
  {
    name: 'istio: VirtualService hosts must not overlap (duplicate hosts in virtual service)',
    cases: [
      {
        object: hosts(['*.com', '*.foo.com']),
        errors: ['spec.hosts[1]: overlaps spec.hosts[0] (*.com): the hosts of one VirtualService must not overlap'],
      },
      {
        object: hosts(['api.foo.com', '*.foo.com']),
        errors: [
          'spec.hosts[1]: overlaps spec.hosts[0] (api.foo.com): the hosts of one VirtualService must not overlap',
        ],
      },
      {
        object: hosts(['*foo.com', 'afoo.com']),
        errors: ['spec.hosts[1]: overlaps spec.hosts[0] (*foo.com): the hosts of one VirtualService must not overlap'],
      },
      { object: hosts(['reviews', 'reviews']), errors: ['spec.hosts: must not contain duplicates'] },
      {
        object: hosts(['Reviews', 'reviews']),
        errors: ['spec.hosts[1]: names the same host as spec.hosts[0] (reviews.bookinfo.svc.cluster.local)'],
      },
      { object: hosts(['*.foo.com', '*.bar.com', 'reviews']), errors: [] },
    ],
  },
  {
    name: 'istio: gateway names are mesh, <name> or <namespace>/<name> (validateGatewayNames)',
    cases: [
      { object: hosts(['reviews'], { gateways: ['mesh'] }), errors: [] },
      {
        object: hosts(['reviews'], { gateways: ['mesh', 'istio-system/ingress', 'ingress'] }),
        errors: [],
        warnings: ['spec.gateways: ignored: Trellis has no gateways yet, the routes apply to the mesh'],
      },
      {
        object: hosts(['reviews'], { gateways: ['mesh', 'ingress.istio-system'] }),
        errors: [],
        warnings: [
          'spec.gateways: ignored: Trellis has no gateways yet, the routes apply to the mesh',
          'spec.gateways[1]: uses the legacy <name>.<namespace> form; prefer <namespace>/<name>: istio-system/ingress',
        ],
      },
      {
        object: hosts(['reviews'], { gateways: ['mesh', 'ns/', '/gw', 'ns/gw_1', 'Bad_Name', 'gw.123', 'a/b/c'] }),
        errors: [
          'spec.gateways[1]: namespace and gateway name must not be empty (<namespace>/<name>)',
          'spec.gateways[2]: namespace and gateway name must not be empty (<namespace>/<name>)',
          'spec.gateways[3]: gateway name gw_1 must be a DNS label',
          'spec.gateways[4]: must be mesh, <name> or <namespace>/<name> (DNS labels)',
          'spec.gateways[5]: must not end in an all-numeric label',
          'spec.gateways[6]: gateway name b/c must be a DNS label',
        ],
        warnings: ['spec.gateways: ignored: Trellis has no gateways yet, the routes apply to the mesh'],
      },
    ],
  },
  {
    name: 'istio: a DestinationRule host is a DNS name, not an IP address (ValidateWildcardDomain)',
    cases: [
      { object: dr({ host: '10.0.0.1' }), errors: ['spec.host: must be a host name, not an IP address (Istio)'] },
      { object: dr({ host: 'reviews.123' }), errors: ['spec.host: must not end in an all-numeric label'] },
      { object: dr({ host: '*.123' }), errors: ['spec.host: must not end in an all-numeric label'] },
      { object: dr({ host: 'db1' }), errors: [] },
    ],
  },
  {
    name: 'istio: a destination host is a DNS name, not an IP address (validateDestination)',
    cases: [
      {
        object: vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: '10.0.0.7' } }] }] }),
        errors: [
          'spec.http[0].route[0].destination.host: must be a host name, not an IP address (Istio: a destination is a DNS name)',
        ],
      },
      { object: vs({ hosts: ['10.0.0.7'], http: [{ route }] }), errors: [] },
    ],
  },
  {
    name: 'istio: portLevelMtls, if defined, must have at least one element',
    cases: [
      {
        object: pa({ selector: { matchLabels: { app: 'reviews' } }, portLevelMtls: {} }),
        errors: ['spec.portLevelMtls: must not be empty'],
      },
      {
        object: pa({ selector: { matchLabels: { app: 'reviews' } }, portLevelMtls: { '8080': { mode: 'DISABLE' } } }),
        errors: [],
      },
    ],
  },
  {
    name: 'istio: tls mode MUTUAL requires a client certificate and private key, or credentialName (ValidateTLS)',
    cases: [
      {
        object: tls({ mode: 'MUTUAL' }),
        errors: [
          'spec.trafficPolicy.tls.clientCertificate: is required for mode MUTUAL (or set credentialName)',
          'spec.trafficPolicy.tls.privateKey: is required for mode MUTUAL (or set credentialName)',
        ],
      },
      {
        object: tls({ mode: 'MUTUAL', clientCertificate: '/etc/certs/cert.pem' }),
        errors: ['spec.trafficPolicy.tls.privateKey: is required for mode MUTUAL (or set credentialName)'],
      },
      {
        object: tls({ mode: 'MUTUAL', clientCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem' }),
        errors: [],
      },
      { object: tls({ mode: 'MUTUAL', credentialName: 'client-credential' }), errors: [] },
      { object: tls({ mode: 'SIMPLE' }), errors: [] },
    ],
  },
  {
    name: 'istio: with credentialName, no client certificate, private key, CA certificate or CA CRL files (ValidateTLS)',
    cases: [
      {
        object: tls({ mode: 'MUTUAL', credentialName: 'client-credential', clientCertificate: '/c.pem' }),
        errors: [
          'spec.trafficPolicy.tls: cannot specify client certificates or CA certificate or CA CRL if credentialName is set',
        ],
      },
      {
        object: tls({ mode: 'SIMPLE', credentialName: 'client-credential', caCrl: '/ca.crl' }),
        errors: [
          'spec.trafficPolicy.tls: cannot specify client certificates or CA certificate or CA CRL if credentialName is set',
        ],
      },
      {
        object: tls({ mode: 'SIMPLE', caCertificates: '/ca.pem', caCrl: '/ca.crl', sni: 'api.example.com' }),
        errors: [],
      },
    ],
  },
  {
    name: 'istio: insecureSkipVerify excludes caCertificates and subjectAltNames, and for SIMPLE credentialName (ValidateTLS)',
    cases: [
      {
        object: tls({ mode: 'SIMPLE', insecureSkipVerify: true, subjectAltNames: ['api.example.com'] }),
        errors: [
          'spec.trafficPolicy.tls: cannot specify caCertificates, credentialName or subjectAltNames when insecureSkipVerify is true',
        ],
      },
      {
        object: tls({
          mode: 'MUTUAL',
          insecureSkipVerify: true,
          credentialName: 'client-credential',
          caCertificates: '/ca.pem',
        }),
        errors: [
          'spec.trafficPolicy.tls: cannot specify caCertificates or subjectAltNames when insecureSkipVerify is true',
          'spec.trafficPolicy.tls: cannot specify client certificates or CA certificate or CA CRL if credentialName is set',
        ],
      },
      { object: tls({ mode: 'MUTUAL', insecureSkipVerify: true, credentialName: 'client-credential' }), errors: [] },
      { object: tls({ mode: 'SIMPLE', insecureSkipVerify: true }), errors: [] },
    ],
  },
  {
    name: 'istio: retryOn is a comma-separated list of retry policies and known HTTP status codes (ValidateHTTPRetry)',
    cases: [
      { object: http({ retries: { attempts: 2, retryOn: '5xx,gateway-error,503,unavailable' } }), errors: [] },
      {
        object: http({ retries: { attempts: 2, retryOn: '5xx, reset' } }),
        errors: [
          'spec.http[0].retries.retryOn: " reset" has a space (write the list without spaces, as Istio and Envoy do)',
        ],
      },
      {
        object: http({ retries: { attempts: 2, retryOn: '5xx,509' } }),
        errors: ['spec.http[0].retries.retryOn: "509" is not a retry condition or an HTTP status code'],
      },
      {
        object: http({ retries: { attempts: 2, retryOn: '306' } }),
        errors: ['spec.http[0].retries.retryOn: "306" is not a retry condition or an HTTP status code'],
      },
    ],
  },
  // ---- Accepted by Istio ----
  {
    name: 'istio: route weights are any non-negative integers, relative to their sum (validateWeight)',
    cases: [
      {
        object: vs({
          hosts: ['reviews'],
          http: [
            {
              route: [
                { destination: { host: 'reviews', subset: 'v1' }, weight: 1 },
                { destination: { host: 'reviews', subset: 'v2' }, weight: 3 },
              ],
            },
          ],
          tcp: [
            {
              route: [
                { destination: { host: 'reviews', subset: 'v1' }, weight: 2_147_483_647 },
                { destination: { host: 'reviews', subset: 'v2' }, weight: 1000 },
              ],
            },
          ],
        }),
        errors: [],
      },
      {
        object: http({ route: [{ destination: { host: 'reviews' }, weight: -1 }] }),
        errors: ['spec.http[0].route[0].weight: must be >= 0'],
      },
    ],
  },
  {
    name: 'istio: hosts may have a wildcard first label: *, *foo, *-foo (IsWildcardDNS1123Label)',
    cases: [
      { object: hosts(['*foo.bar.com']), errors: [] },
      { object: hosts(['*-foo.bar.com']), errors: [] },
      { object: dr({ host: '*-api.example.com' }), errors: [] },
      { object: hosts(['foo*.bar.com']), errors: [`spec.hosts[0]: ${HOST_PATTERN_MESSAGE}`] },
      { object: hosts(['a.*.com']), errors: [`spec.hosts[0]: ${HOST_PATTERN_MESSAGE}`] },
    ],
  },
  {
    name: 'istio: host names may use upper case (dns1123LabelFmt; sent lower case)',
    cases: [
      { object: hosts(['Reviews.Bookinfo.svc.cluster.local']), errors: [] },
      { object: dr({ host: 'Reviews' }), errors: [] },
      { object: vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'Ratings' } }] }] }), errors: [] },
    ],
  },
  {
    name: 'istio: header names in matches may use any case (ValidateHTTPHeaderNameOrJwtClaimRoute; sent lower case)',
    cases: [
      {
        object: http({ match: [{ headers: { 'End-User': { exact: 'jason' } }, withoutHeaders: { 'X-Canary': {} } }] }),
        errors: [],
      },
      {
        object: http({ match: [{ headers: { 'End-User': { exact: 'jason' }, 'end-user': { prefix: 'j' } } }] }),
        errors: [
          'spec.http[0].match[0].headers[end-user]: names the same header as End-User (header names are case-insensitive)',
        ],
      },
    ],
  },
  {
    name: 'istio: port 0 means unset in matches and redirects (match.Port != 0)',
    cases: [
      { object: http({ match: [{ port: 0 }] }), errors: [] },
      { object: vs({ hosts: ['reviews'], http: [{ redirect: { uri: '/v2', port: 0 } }] }), errors: [] },
      { object: vs({ hosts: ['reviews'], tcp: [{ match: [{ port: 0 }], route }] }), errors: [] },
      {
        object: vs({
          hosts: ['reviews'],
          http: [{ route: [{ destination: { host: 'reviews', port: { number: 0 } } }] }],
        }),
        errors: ['spec.http[0].route[0].destination.port.number: must be >= 1'],
      },
    ],
  },
  {
    name: 'istio: the deprecated consistentHash.minimumRingSize is accepted with a warning (validateLoadBalancer)',
    cases: [
      {
        object: lb({ consistentHash: { httpHeaderName: 'x-user', minimumRingSize: 2048 } }),
        errors: [],
        warnings: [
          'spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize: is deprecated (Istio): write ringHash.minimumRingSize',
        ],
      },
      {
        object: lb({
          consistentHash: { httpHeaderName: 'x-user', minimumRingSize: 2048, ringHash: { minimumRingSize: 1024 } },
        }),
        errors: [
          'spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize: must not be set with ringHash or maglev (it is the deprecated spelling of ringHash.minimumRingSize)',
        ],
        warnings: [
          'spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize: is deprecated (Istio): write ringHash.minimumRingSize',
        ],
      },
    ],
  },
  {
    name: 'istio: a loadBalancer may set only warmup, or nothing (simple and consistentHash are optional)',
    cases: [
      { object: lb({ warmup: { duration: '60s' } }), errors: [] },
      { object: lb({}), errors: [] },
    ],
  },
  {
    name: 'istio: CORS allowMethods may be * (supportedCORSMethods)',
    cases: [
      {
        object: http({ corsPolicy: { allowOrigins: [{ exact: 'https://a.example' }], allowMethods: ['*'] } }),
        errors: [],
      },
    ],
  },
  {
    name: "istio: redirectCode 0 means 301; other codes are those Envoy can send (Istio's other 3xx are refused)",
    cases: [
      { object: vs({ hosts: ['reviews'], http: [{ redirect: { uri: '/v2', redirectCode: 0 } }] }), errors: [] },
      { object: vs({ hosts: ['reviews'], http: [{ redirect: { uri: '/v2', redirectCode: 307 } }] }), errors: [] },
      {
        object: vs({ hosts: ['reviews'], http: [{ redirect: { uri: '/v2', redirectCode: 305 } }] }),
        errors: ['spec.http[0].redirect.redirectCode: must be one of: 0, 301, 302, 303, 307, 308'],
      },
    ],
  },
  {
    name: 'istio: hosts * only for a VirtualService bound to gateways, not to the mesh',
    cases: [
      {
        object: hosts(['*']),
        errors: ['spec.hosts: must not be * for the mesh (name the hosts; * is allowed only for gateways)'],
      },
      {
        object: hosts(['*'], { gateways: ['mesh', 'istio-system/ingress'] }),
        errors: ['spec.hosts: must not be * for the mesh (name the hosts; * is allowed only for gateways)'],
        warnings: ['spec.gateways: ignored: Trellis has no gateways yet, the routes apply to the mesh'],
      },
      {
        object: hosts(['*'], { gateways: ['istio-system/ingress'] }),
        errors: [],
        warnings: [
          'spec.gateways: ignored: Trellis has no gateways yet, the routes apply to the mesh',
          'spec.hosts[0]: matches no Service, so these routes apply to no traffic (Istio uses * for gateways; Trellis has none)',
        ],
      },
    ],
  },
];
