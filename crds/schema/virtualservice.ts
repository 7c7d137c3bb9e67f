// The VirtualService spec schema (networking.trellis.dev/v1alpha1; Istio networking/v1 field names).
import { SECONDS_DURATION_PATTERN } from '../duration.js';
import {
  portSelector,
  type CelRule,
  INT32_MAX,
  type JSONSchemaProps,
  MAX_HOST,
  MAX_REGEX,
  atLeastOne,
  bool,
  cel,
  celString,
  duration,
  durationAtLeast1ms,
  exactlyOne,
  exportTo,
  int,
  keysMatch,
  labels,
  list,
  map,
  notBoth,
  obj,
  percent,
  str,
  stringMatch,
  uniqueScalars,
} from './language.js';
import {
  CIDR_PATTERN,
  CORS_HEADER_PATTERN,
  CORS_METHODS,
  DESTINATION_HOST_PATTERN,
  DNS_LABEL_PATTERN,
  GRPC_STATUS_NAMES,
  HEADER_NAME_PATTERN,
  HEADER_VALUE_PATTERN,
  HOST_PATTERN,
  MATCH_HEADER_NAME_PATTERN,
  REDIRECT_CODES,
  RETRY_ON_PATTERN,
  TCHAR,
  VS_HOST_PATTERN,
} from './patterns.js';

export function destination(description: string): JSONSchemaProps {
  return obj(
    description,
    {
      host: str(
        'A Service: short name (reviews), name.namespace, name.namespace.svc or the FQDN (any case). Short names resolve in the namespace of the VirtualService.',
        { minLength: 1, maxLength: MAX_HOST, pattern: DESTINATION_HOST_PATTERN },
      ),
      subset: str('A subset defined by a DestinationRule for the host.', { maxLength: 63, pattern: DNS_LABEL_PATTERN }),
      port: portSelector('The Service port; needed when the Service has several ports.'),
    },
    { required: ['host'] },
  );
}

export function headerOperations(description: string, request: boolean): JSONSchemaProps {
  // Requests may set :authority / host (a host rewrite); nothing may touch other pseudo-headers, and host may
  // only be set on requests.
  const names = request
    ? keysMatch(`^(:authority|[${TCHAR}]+)$`, 'header names must be HTTP header names or :authority')
    : cel(
        `self.all(k, k.matches(${celString(HEADER_NAME_PATTERN)}) && k.lowerAscii() != 'host')`,
        'header names must be HTTP header names other than host',
      );
  const values = { type: 'string' as const, maxLength: 4096, pattern: HEADER_VALUE_PATTERN };
  return obj(description, {
    set: map('Headers to set, replacing any value.', values, 64, { 'x-kubernetes-validations': [names] }),
    add: map('Headers to append.', values, 64, { 'x-kubernetes-validations': [names] }),
    remove: list(
      'Headers to remove.',
      { type: 'string', minLength: 1, maxLength: 128, pattern: HEADER_NAME_PATTERN },
      32,
      {
        'x-kubernetes-validations': [cel("self.all(k, k.lowerAscii() != 'host')", 'must not remove host')],
      },
    ),
  });
}

export function headers(description: string): JSONSchemaProps {
  return obj(description, {
    request: headerOperations('Changes to the request headers.', true),
    response: headerOperations('Changes to the response headers.', false),
  });
}

export const weightsNotAllZero = (): CelRule =>
  cel('self.size() <= 1 || self.exists(d, !has(d.weight) || d.weight > 0)', 'weights must not all be zero');

export const WEIGHT = int(
  'Relative share of the traffic, >= 0 (as Istio: weights of a route are added up; 90 and 10 send 90%, as do 9 and 1).',
  0,
  INT32_MAX,
);

/** A port a match or redirect may name; 0 means unset (Istio). */
const optionalPort = (description: string): JSONSchemaProps => int(`${description} 0 means unset.`, 0, 65535);

// ---------------------------------------------------------------------------------------------------
// VirtualService

export const httpMatchRequest = obj('Conditions that must all hold for the route to apply.', {
  name: str('Name of the match, appended to the route name.', { maxLength: 253 }),
  uri: stringMatch('The request path.', 'uri'),
  scheme: stringMatch('The URI scheme.', 'strict'),
  method: stringMatch('The HTTP method.', 'strict'),
  authority: stringMatch('The HTTP authority (Host).', 'strict'),
  headers: map(
    'Request headers (names in any case: matched case-insensitively). {} matches when the header is present.',
    stringMatch('How to match the header value.', 'header'),
    32,
    {
      'x-kubernetes-validations': [keysMatch(MATCH_HEADER_NAME_PATTERN, 'header names must be HTTP header names')],
    },
  ),
  withoutHeaders: map(
    'Request headers that must not match (names in any case). {} means the header must be absent.',
    stringMatch('How to match the header value.', 'header'),
    32,
    {
      'x-kubernetes-validations': [keysMatch(MATCH_HEADER_NAME_PATTERN, 'header names must be HTTP header names')],
    },
  ),
  queryParams: map(
    'Query parameters. {} matches when the parameter is present.',
    stringMatch('How to match the parameter value.', 'header'),
    32,
  ),
  port: optionalPort('The port the request is addressed to.'),
  sourceLabels: labels('Labels the calling workload must have.'),
  sourceNamespace: str('Namespace of the calling workload.', { maxLength: 63, pattern: DNS_LABEL_PATTERN }),
  ignoreUriCase: bool('Match the uri case-insensitively.'),
});

export const httpRouteDestination = obj(
  'A destination and its share of the traffic.',
  {
    destination: destination('Where the request goes.'),
    weight: WEIGHT,
    headers: headers('Header changes for requests sent to this destination.'),
  },
  { required: ['destination'] },
);

export const httpRedirect = obj(
  'Answer with a redirect instead of forwarding.',
  {
    uri: str('Replace the path.', { minLength: 1 }),
    prefixRewrite: str('Replace the matched uri prefix (the route must match the uri by prefix); exclusive with uri.', {
      minLength: 1,
    }),
    authority: str('Replace the authority (host).', { minLength: 1, maxLength: MAX_HOST }),
    port: optionalPort('Replace the port.'),
    derivePort: {
      type: 'string',
      description:
        "Set the port: FROM_PROTOCOL_DEFAULT (the scheme's default, 80 or 443) or FROM_REQUEST_PORT (the request's); exclusive with port.",
      enum: ['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'],
    },
    scheme: { type: 'string', description: 'Replace the scheme.', enum: ['http', 'https'] },
    redirectCode: {
      type: 'integer',
      format: 'int32',
      description: 'The redirect status code (0 or absent: 301).',
      enum: [...REDIRECT_CODES],
    },
  },
  {
    'x-kubernetes-validations': [
      atLeastOne(
        ['uri', 'prefixRewrite', 'authority', 'scheme', 'port', 'derivePort'],
        'must set at least one of uri, prefixRewrite, authority, scheme, port, derivePort',
      ),
      notBoth('uri', 'prefixRewrite', 'must not set both uri and prefixRewrite'),
      notBoth('port', 'derivePort', 'must not set both port and derivePort'),
    ],
  },
);

export const httpRewrite = obj(
  'Rewrite the request before forwarding.',
  {
    uri: str('Replace the matched uri prefix (or the whole path for an exact match).', { minLength: 1 }),
    authority: str('Replace the authority (host).', { minLength: 1, maxLength: MAX_HOST }),
    uriRegexRewrite: obj(
      'Rewrite the path with an RE2 regex.',
      {
        match: str('RE2 regex.', { minLength: 1, maxLength: MAX_REGEX }),
        rewrite: str('Substitution; \\1 refers to a capture group.', { minLength: 1 }),
      },
      { required: ['match', 'rewrite'] },
    ),
  },
  {
    'x-kubernetes-validations': [
      atLeastOne(['uri', 'authority', 'uriRegexRewrite'], 'must set at least one of uri, authority, uriRegexRewrite'),
      notBoth('uri', 'uriRegexRewrite', 'must not set both uri and uriRegexRewrite'),
    ],
  },
);

export const httpRetry = obj(
  'Retry policy.',
  {
    attempts: int('Number of retries; 0 disables retries.', 0, INT32_MAX),
    perTryTimeout: duration('Timeout of each attempt'),
    retryOn: str(
      'Comma-separated (no spaces) Envoy retry conditions (5xx, gateway-error, connect-failure, …), gRPC status names (unavailable, …) or HTTP status codes (503, …).',
      { maxLength: 512, pattern: RETRY_ON_PATTERN },
    ),
    retryRemoteLocalities: bool('Retry in other localities.'),
    retryIgnorePreviousHosts: bool('Retry on hosts not tried yet (default true).'),
    backoff: duration('Base interval of the exponential backoff between retries (default 25ms)'),
  },
  {
    required: ['attempts'],
    'x-kubernetes-validations': [
      cel(
        'self.attempts > 0 || !(has(self.perTryTimeout) || has(self.retryOn) || has(self.retryRemoteLocalities))',
        'must not set perTryTimeout, retryOn or retryRemoteLocalities when attempts is 0',
      ),
    ],
  },
);

export const httpFault = obj(
  'Fault injection (testing resilience).',
  {
    delay: obj(
      'Delay requests.',
      {
        percentage: percent('Share of the requests delayed (default 100).'),
        fixedDelay: duration('How long'),
      },
      { required: ['fixedDelay'] },
    ),
    abort: obj(
      'Fail requests.',
      {
        percentage: percent('Share of the requests aborted (default 100).'),
        httpStatus: int('HTTP status to answer.', 200, 599),
        grpcStatus: { type: 'string', description: 'gRPC status name to answer.', enum: [...GRPC_STATUS_NAMES] },
      },
      { 'x-kubernetes-validations': [exactlyOne(['httpStatus', 'grpcStatus'])] },
    ),
  },
  { 'x-kubernetes-validations': [atLeastOne(['delay', 'abort'], 'must set delay, abort or both')] },
);

export const corsPolicy = obj('Cross-origin resource sharing.', {
  allowOrigins: list('Origins allowed.', stringMatch('An origin.', 'origin'), 64),
  allowMethods: list('Methods allowed (* for any).', { type: 'string', enum: [...CORS_METHODS] }, 16, {
    'x-kubernetes-validations': [uniqueScalars('must not contain duplicates')],
  }),
  allowHeaders: list('Request headers allowed.', { type: 'string', maxLength: 256, pattern: CORS_HEADER_PATTERN }, 64),
  exposeHeaders: list(
    'Response headers exposed.',
    { type: 'string', maxLength: 256, pattern: CORS_HEADER_PATTERN },
    64,
  ),
  maxAge: {
    type: 'string',
    description: 'How long a preflight answer may be cached (whole seconds, such as 60s or 1h).',
    maxLength: 32,
    pattern: SECONDS_DURATION_PATTERN,
    'x-kubernetes-validations': [durationAtLeast1ms()],
  },
  allowCredentials: bool('Allow credentials.'),
});

/** Istio caps a direct response body at 1 MiB (and so does every sidecar route configuration). */
export const MAX_DIRECT_RESPONSE_BODY = 1_048_576;

export const httpDirectResponse = obj(
  'Answer with a fixed response instead of forwarding.',
  {
    status: int('The HTTP status, 200 to 599.', 200, 599),
    body: obj(
      'The response body (none when unset).',
      {
        string: str('The body as text.', { maxLength: MAX_DIRECT_RESPONSE_BODY }),
        bytes: {
          type: 'string',
          format: 'byte',
          description: 'The body as base64-encoded bytes.',
          maxLength: Math.ceil(MAX_DIRECT_RESPONSE_BODY / 3) * 4,
          pattern: '^[A-Za-z0-9+/]*={0,2}$',
        },
      },
      { 'x-kubernetes-validations': [exactlyOne(['string', 'bytes'])] },
    ),
  },
  { required: ['status'] },
);

export const httpMirrorPolicy = obj(
  'A mirror: a copy of each request (or of a share of them) is sent here and the answer ignored.',
  {
    destination: destination('Where the copies go.'),
    percentage: percent('Share of the requests mirrored (default 100).'),
  },
  { required: ['destination'] },
);

export const delegate = obj(
  'Hand the requests this route matches to the routes of a VirtualService without hosts.',
  {
    name: str('Name of the delegate VirtualService.', { minLength: 1, maxLength: 253, pattern: HOST_PATTERN }),
    namespace: str("Its namespace (default: this VirtualService's).", { maxLength: 63, pattern: DNS_LABEL_PATTERN }),
  },
  { required: ['name'] },
);

export const httpRoute = obj(
  'An HTTP route: conditions and what to do with matching requests.',
  {
    name: str('Route name (in Envoy stats and logs).', { maxLength: 253 }),
    match: list('Conditions; any one may match (none: every request).', httpMatchRequest, 32),
    route: list('Destinations and weights.', httpRouteDestination, 32, {
      minItems: 1,
      'x-kubernetes-validations': [weightsNotAllZero()],
    }),
    redirect: httpRedirect,
    directResponse: httpDirectResponse,
    delegate,
    rewrite: httpRewrite,
    timeout: duration('Timeout of the whole request, retries included (default: none)'),
    retries: httpRetry,
    fault: httpFault,
    mirror: destination('Send a copy of each request here (the answer is ignored).'),
    mirrorPercentage: percent('Share of the requests mirrored (default 100).'),
    mirrors: list('Several mirrors, each with its share (exclusive with mirror).', httpMirrorPolicy, 16, {
      minItems: 1,
    }),
    corsPolicy,
    headers: headers('Header changes.'),
  },
  {
    'x-kubernetes-validations': [
      // Istio: a root route (delegate) may also carry a directResponse, which its delegate's routes inherit.
      cel(
        '(has(self.route) ? 1 : 0) + (has(self.redirect) ? 1 : 0) + (has(self.delegate) ? 1 : 0) + (has(self.directResponse) && !has(self.delegate) ? 1 : 0) == 1',
        'must have exactly one of route, redirect, directResponse, delegate',
      ),
      notBoth('redirect', 'fault', 'must not be set with redirect', '.fault'),
      notBoth('redirect', 'rewrite', 'must not be set with redirect', '.rewrite'),
      notBoth('redirect', 'mirror', 'must not be set with redirect', '.mirror'),
      notBoth('redirect', 'mirrors', 'must not be set with redirect', '.mirrors'),
      notBoth('directResponse', 'fault', 'must not be set with directResponse', '.fault'),
      notBoth('directResponse', 'rewrite', 'must not be set with directResponse', '.rewrite'),
      notBoth('mirror', 'mirrors', 'must not be set with mirror', '.mirrors'),
      cel('!has(self.mirrorPercentage) || has(self.mirror)', 'must not be set without mirror', '.mirrorPercentage'),
      cel(
        '!has(self.timeout) || !has(self.retries) || !has(self.retries.perTryTimeout) || duration(self.retries.perTryTimeout) <= duration(self.timeout)',
        'must be <= timeout',
        '.retries.perTryTimeout',
      ),
    ],
  },
);

export const routeDestination = obj(
  'A destination and its share of the connections.',
  { destination: destination('Where the connection goes.'), weight: WEIGHT },
  { required: ['destination'] },
);

export const tcpRoute = obj(
  'A TCP route: conditions and weighted destinations for connections.',
  {
    match: list(
      'Conditions; any one may match (none: every connection).',
      obj('Conditions that must all hold.', {
        destinationSubnets: list(
          'IP addresses or CIDR blocks the connection is addressed to.',
          { type: 'string', maxLength: 64, pattern: CIDR_PATTERN },
          32,
        ),
        port: optionalPort('The port the connection is addressed to.'),
        sourceLabels: labels('Labels the calling workload must have.'),
        sourceNamespace: str('Namespace of the calling workload.', { maxLength: 63, pattern: DNS_LABEL_PATTERN }),
      }),
      16,
    ),
    route: list('Destinations and weights.', routeDestination, 32, {
      minItems: 1,
      'x-kubernetes-validations': [weightsNotAllZero()],
    }),
  },
  { required: ['route'] },
);

export const tlsRoute = obj(
  'A TLS route: connections passed through (not terminated), matched by SNI.',
  {
    match: list(
      'Conditions; any one may match.',
      obj(
        'Conditions that must all hold.',
        {
          sniHosts: list(
            'SNI names (exact or *.-prefixed); each must match a host of the VirtualService.',
            { type: 'string', maxLength: MAX_HOST, pattern: VS_HOST_PATTERN },
            32,
            { minItems: 1 },
          ),
          destinationSubnets: list(
            'IP addresses or CIDR blocks the connection is addressed to.',
            { type: 'string', maxLength: 64, pattern: CIDR_PATTERN },
            32,
          ),
          port: optionalPort('The port the connection is addressed to.'),
          sourceLabels: labels('Labels the calling workload must have.'),
          sourceNamespace: str('Namespace of the calling workload.', { maxLength: 63, pattern: DNS_LABEL_PATTERN }),
        },
        { required: ['sniHosts'] },
      ),
      16,
      { minItems: 1 },
    ),
    route: list('Destinations and weights.', routeDestination, 32, {
      minItems: 1,
      'x-kubernetes-validations': [weightsNotAllZero()],
    }),
  },
  { required: ['match', 'route'] },
);

export const virtualServiceSpec = obj(
  'Routing for a set of hosts. Field names follow Istio networking/v1 VirtualService.',
  {
    hosts: list(
      'Hosts the routes apply to: Service short names, name.namespace, FQDNs (any case), wildcard names (*.a.com, *foo.a.com, *-foo.a.com), or * when bound to gateways only. Absent: a delegate, whose http routes a root VirtualService uses through delegate.',
      { type: 'string', maxLength: MAX_HOST, pattern: VS_HOST_PATTERN },
      64,
      { minItems: 1, 'x-kubernetes-validations': [uniqueScalars('must not contain duplicates')] },
    ),
    gateways: list(
      'Gateways (<namespace>/<name> or <name>) and mesh. Trellis has no gateways yet: only mesh is in effect.',
      str('A gateway: <namespace>/<name>, <name>, or mesh.', { maxLength: MAX_HOST }),
      16,
    ),
    http: list('HTTP routes, first match wins.', httpRoute, 128, { minItems: 1 }),
    tls: list('TLS (SNI) routes for connections that are not terminated, first match wins.', tlsRoute, 64, {
      minItems: 1,
    }),
    tcp: list('TCP routes, first match wins.', tcpRoute, 64, { minItems: 1 }),
    exportTo: exportTo(),
  },
  {
    // No hosts: a delegate (Istio), used only through a root VirtualService's http[].delegate.
    'x-kubernetes-validations': [
      atLeastOne(['http', 'tls', 'tcp'], 'must have http, tls or tcp routes'),
      // Istio: `*` is refused for a VirtualService bound to the mesh (no gateways, or mesh among them).
      cel(
        "!has(self.hosts) || !('*' in self.hosts) || (has(self.gateways) && self.gateways.size() > 0 && !('mesh' in self.gateways))",
        'must not be * for the mesh (name the hosts; * is allowed only for gateways)',
        '.hosts',
      ),
      cel('has(self.hosts) || !has(self.gateways)', 'a delegate (no hosts) must have no gateways', '.gateways'),
      cel('has(self.hosts) || !has(self.tls)', 'a delegate (no hosts) must have no tls routes', '.tls'),
      cel('has(self.hosts) || !has(self.tcp)', 'a delegate (no hosts) must have no tcp routes', '.tcp'),
      cel(
        'has(self.hosts) || !has(self.http) || self.http.all(r, !has(r.delegate))',
        'a delegate (no hosts) cannot delegate (one level of delegation only)',
        '.http',
      ),
    ],
  },
);
