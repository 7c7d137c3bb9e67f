// The OpenAPI v3 schemas of the VirtualService, DestinationRule and PeerAuthentication CRDs, built once in TypeScript. The same
// objects are written to crds/*.yaml by crds/generate.ts (what the API server enforces) and compiled by the
// validator (what `trellis validate`, the file source and the webhook enforce), so the two never drift.
//
// Every CEL rule (`x-kubernetes-validations`) is declared together with a TypeScript function that decides
// the same thing, because neither the CLI nor the file source has an API server to run CEL. The functions
// are kept beside the schema (not in it: the API server refuses unknown schema fields), see celCheck().
//
// Structural-schema rules that shape this file (apiextensions.k8s.io/v1):
// - every node has a `type`; `properties` and `additionalProperties` never meet on one node; no $ref;
// - CEL cost is estimated from the largest possible input, so every list, map and string that a rule (or a
//   rule below it) iterates has maxItems / maxProperties / maxLength;
// - no `additionalProperties: false`: the API server prunes or (kubectl's default strict field validation)
//   rejects unknown fields itself; the validator adds `additionalProperties: false` to its own copy.
import { DURATION_PATTERN, MAX_DURATION_NS, parseDurationNs, SECONDS_DURATION_PATTERN } from './duration.js';
import { API_VERSION, GROUP, SECURITY_API_VERSION, SECURITY_GROUP, VERSION } from './types.js';

export interface CelRule {
  rule: string;
  message: string;
  /** Where the error is reported, relative to the node (`.retries.perTryTimeout`). */
  fieldPath?: string;
}

export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  required?: string[];
  enum?: (string | number | boolean)[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

// ---------------------------------------------------------------------------------------------------
// CEL rules and their TypeScript twins.

/** A JSON object as parsed from YAML or JSON. */
export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** CEL's `has(self.field)`: the field is present (and not null, which the API server drops). */
function has(self: unknown, field: string): boolean {
  return isObject(self) && self[field] !== undefined && self[field] !== null;
}

function count(self: unknown, fields: readonly string[]): number {
  return fields.filter((f) => has(self, f)).length;
}

/**
 * The TypeScript decision of a CEL rule: true when the rule holds. It sees the same node as `self` in CEL.
 * Where CEL would fail to evaluate because a value below is malformed (a schema error is reported for it
 * already), the function returns true, so one mistake gives one message.
 */
export type CelCheck = (self: unknown) => boolean;

const celChecks = new WeakMap<CelRule, CelCheck>();

function cel(rule: string, message: string, check: CelCheck, fieldPath?: string): CelRule {
  const r: CelRule = fieldPath ? { rule, message, fieldPath } : { rule, message };
  celChecks.set(r, check);
  return r;
}

/** The TypeScript implementation of a rule built here. */
export function celCheck(rule: CelRule): CelCheck {
  const check = celChecks.get(rule);
  if (!check) throw new Error(`no TypeScript check for CEL rule ${rule.rule}`);
  return check;
}

function exactlyOne(fields: readonly string[]): CelRule {
  return cel(
    fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ') + ' == 1',
    `must have exactly one of ${fields.join(', ')}`,
    (self) => count(self, fields) === 1,
  );
}

function atMostOne(fields: readonly string[], message = `must have at most one of ${fields.join(', ')}`): CelRule {
  return cel(
    fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ') + ' <= 1',
    message,
    (self) => count(self, fields) <= 1,
  );
}

function notBoth(a: string, b: string, message: string, fieldPath?: string): CelRule {
  return cel(`!(has(self.${a}) && has(self.${b}))`, message, (self) => !(has(self, a) && has(self, b)), fieldPath);
}

function atLeastOne(fields: readonly string[], message: string): CelRule {
  return cel(fields.map((f) => `has(self.${f})`).join(' || '), message, (self) => count(self, fields) >= 1);
}

/** The list's items have distinct values at `key` (a scalar field, or `port.number`). */
function uniqueBy(key: string, message: string): CelRule {
  const parts = key.split('.');
  const guard = (v: string): string => parts.map((_, i) => `has(${v}.${parts.slice(0, i + 1).join('.')})`).join(' && ');
  const get = (v: unknown): unknown => {
    let cur = v;
    for (const p of parts) cur = isObject(cur) ? cur[p] : undefined;
    return cur;
  };
  return cel(
    `self.all(a, !(${guard('a')}) || self.exists_one(b, ${guard('b')} && b.${key} == a.${key}))`,
    message,
    (self) => {
      if (!Array.isArray(self)) return true;
      const seen = new Set<unknown>();
      for (const item of self) {
        const v = get(item);
        if (v === undefined || v === null) continue;
        if (seen.has(v)) return false;
        seen.add(v);
      }
      return true;
    },
  );
}

const uniqueScalars = (message: string): CelRule =>
  cel(
    'self.all(a, self.exists_one(b, b == a))',
    message,
    (self) => !Array.isArray(self) || new Set(self).size === self.length,
  );

function keysMatch(pattern: string, message: string): CelRule {
  const re = new RegExp(pattern);
  return cel(`self.all(k, k.matches(${celString(pattern)}))`, message, (self) =>
    isObject(self) ? Object.keys(self).every((k) => re.test(k)) : true,
  );
}

/** A CEL string literal (single-quoted, raw escapes). */
function celString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

// ---------------------------------------------------------------------------------------------------
// Patterns and the messages the validator gives when one does not match (the API server prints the
// pattern itself). A message may depend on the value.

const LABEL = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
export const DNS_LABEL_PATTERN = `^${LABEL}$`;
/** A host name: lower-case DNS labels, an optional trailing dot. */
export const HOST_PATTERN = `^${LABEL}(\\.${LABEL})*\\.?$`;
/** A VirtualService host: a host name, optionally `*.` + a host name. Not `*` alone. */
export const VS_HOST_PATTERN = `^(\\*\\.)?${LABEL}(\\.${LABEL})*\\.?$`;
/** A DestinationRule host: as a VirtualService host, or `*`. */
export const DR_HOST_PATTERN = `^(\\*|(\\*\\.)?${LABEL}(\\.${LABEL})*\\.?)$`;
export const EXPORT_TO_PATTERN = `^(\\*|\\.|${LABEL})$`;
export const LABEL_VALUE_PATTERN = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';
export const LABEL_KEY_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$';
/** RFC 9110 token characters. */
const TCHAR = "-!#$%&'*+.^_`|~0-9A-Za-z";
const TCHAR_LOWER = "-!#$%&'*+.^_`|~0-9a-z";
export const HEADER_NAME_PATTERN = `^[${TCHAR}]+$`;
/** Header names in matches: lower case tokens, or the pseudo-headers :method, :scheme, :authority, :path. */
export const MATCH_HEADER_NAME_PATTERN = `^(:(method|scheme|authority|path)|[${TCHAR_LOWER}]+)$`;
export const CORS_HEADER_PATTERN = `^(\\*|[${TCHAR}]+)$`;
/** No control characters other than horizontal tab. */
export const HEADER_VALUE_PATTERN = '^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$';
export const RETRY_ON_CONDITIONS = [
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  // gRPC (x-envoy-retry-grpc-on)
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;
const RETRY_ON_TOKEN = `(${RETRY_ON_CONDITIONS.join('|')}|[1-5][0-9][0-9])`;
export const RETRY_ON_PATTERN = `^ *${RETRY_ON_TOKEN}( *, *${RETRY_ON_TOKEN})* *$`;
export const CIDR_PATTERN = '^[0-9a-fA-F:.]+(/[0-9]{1,3})?$';

export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export const SIMPLE_LB = [
  'UNSPECIFIED',
  'LEAST_CONN',
  'RANDOM',
  'PASSTHROUGH',
  'ROUND_ROBIN',
  'LEAST_REQUEST',
] as const;
export const PEER_MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
/** A port number 1-65535 written as a map key (JSON keys are strings). */
export const PORT_KEY_PATTERN = '^[1-9][0-9]{0,4}$';
export const TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'MESH_MUTUAL', 'ISTIO_MUTUAL'] as const;
export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'] as const;
export const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

const retryOnMessage = (value: string): string => {
  const bad = value
    .split(',')
    .map((t) => t.trim())
    .find((t) => !new RegExp(`^${RETRY_ON_TOKEN}$`).test(t));
  return bad === undefined || bad === ''
    ? 'must be a comma-separated list of retry conditions'
    : `"${bad}" is not a retry condition or an HTTP status code`;
};

/** Validator messages for pattern mismatches, by pattern. */
export const PATTERN_MESSAGES: ReadonlyMap<string, (value: string) => string> = new Map<
  string,
  (value: string) => string
>([
  [
    DURATION_PATTERN,
    (v) =>
      parseDurationNs(v) === undefined
        ? 'must be a duration such as 1.5s, 100ms, 1m or 1h30m'
        : 'must be a whole number of milliseconds',
  ],
  [
    SECONDS_DURATION_PATTERN,
    (v) =>
      parseDurationNs(v) === undefined
        ? 'must be a duration such as 60s, 10m or 1h'
        : 'must be a whole number of seconds, such as 60s, 10m or 1h',
  ],
  [DNS_LABEL_PATTERN, () => 'must be a DNS label (lower case letters, digits and -, at most 63)'],
  [HOST_PATTERN, (v) => (v.startsWith('*') ? 'must not be a wildcard' : 'must be a host name (lower case DNS labels)')],
  [
    VS_HOST_PATTERN,
    (v) => (v === '*' ? 'must not be * (name the hosts)' : 'must be a host name, optionally *.-prefixed'),
  ],
  [DR_HOST_PATTERN, () => 'must be a host name, optionally *.-prefixed, or *'],
  [EXPORT_TO_PATTERN, () => 'must be *, . or a namespace name'],
  [LABEL_VALUE_PATTERN, () => 'must be a label value (letters, digits, -, _ and ., alphanumeric at both ends)'],
  [HEADER_NAME_PATTERN, () => 'must be an HTTP header name'],
  [CORS_HEADER_PATTERN, () => 'must be an HTTP header name or *'],
  [HEADER_VALUE_PATTERN, () => 'must not contain control characters'],
  [RETRY_ON_PATTERN, retryOnMessage],
  [CIDR_PATTERN, () => 'must be an IP address or CIDR block'],
]);

// ---------------------------------------------------------------------------------------------------
// Builders.

const MAX_HOST = 253;
const MAX_STRING = 1024;
const MAX_REGEX = 1024; // Istio's limit: Envoy's RE2 program size limit is hit around here
const INT32_MAX = 2_147_483_647;

function str(description: string, extra: Partial<JSONSchemaProps> = {}): JSONSchemaProps {
  return { type: 'string', description, maxLength: MAX_STRING, ...extra };
}

function int(description: string, minimum: number, maximum: number): JSONSchemaProps {
  return { type: 'integer', format: 'int32', description, minimum, maximum };
}

function bool(description: string): JSONSchemaProps {
  return { type: 'boolean', description };
}

function obj(
  description: string,
  properties: Record<string, JSONSchemaProps>,
  extra: Partial<JSONSchemaProps> = {},
): JSONSchemaProps {
  return { type: 'object', description, properties, ...extra };
}

function list(description: string, items: JSONSchemaProps, maxItems: number, extra: Partial<JSONSchemaProps> = {}) {
  return { type: 'array' as const, description, items, maxItems, ...extra };
}

function map(
  description: string,
  values: JSONSchemaProps,
  maxProperties: number,
  extra: Partial<JSONSchemaProps> = {},
) {
  return { type: 'object' as const, description, additionalProperties: values, maxProperties, ...extra };
}

const DURATION_RE = new RegExp(DURATION_PATTERN);
const SECONDS_RE = new RegExp(SECONDS_DURATION_PATTERN);

// Checked only when the string fits its pattern: a pattern error is reported for it already.
const durationAtLeast1ms = (): CelRule =>
  cel("duration(self) >= duration('1ms')", 'must be at least 1ms', (self) => {
    if (typeof self !== 'string' || !(DURATION_RE.test(self) || SECONDS_RE.test(self))) return true;
    const ns = parseDurationNs(self);
    return ns === undefined || ns > MAX_DURATION_NS || ns >= 1_000_000n;
  });

/** A duration of at least 1 ms, in whole milliseconds (Istio's ValidateDuration). */
function duration(description: string): JSONSchemaProps {
  return {
    type: 'string',
    description: `${description} (a duration such as 1.5s, 100ms or 1h; at least 1ms, whole milliseconds)`,
    maxLength: 32,
    pattern: DURATION_PATTERN,
    'x-kubernetes-validations': [durationAtLeast1ms()],
  };
}

/** A duration that may be 0s (0 disables or means "session"). */
function durationOrZero(description: string): JSONSchemaProps {
  return {
    type: 'string',
    description: `${description} (a duration such as 1.5s, 100ms or 1h; 0s or whole milliseconds)`,
    maxLength: 32,
    pattern: DURATION_PATTERN,
  };
}

type StringMatchKind = 'uri' | 'strict' | 'header' | 'origin';

/**
 * StringMatch. `uri` allows an empty prefix (Envoy's path prefix may be empty); `strict` (scheme, method,
 * authority) and `origin` (CORS) need a non-empty value; `header` (headers, withoutHeaders, queryParams)
 * may also be `{}`, which matches when the header or parameter is present (Istio's semantics).
 */
function stringMatch(description: string, kind: StringMatchKind): JSONSchemaProps {
  const one = ['exact', 'prefix', 'regex'];
  return obj(
    description,
    {
      exact: str('Exact string match.', kind === 'origin' ? { minLength: 1 } : {}),
      prefix: str('Prefix match.', kind === 'uri' ? {} : { minLength: 1 }),
      regex: str('RE2 regex, matched against the whole value.', { minLength: 1, maxLength: MAX_REGEX }),
    },
    { 'x-kubernetes-validations': [kind === 'header' ? atMostOne(one) : exactlyOne(one)] },
  );
}

function labels(description: string): JSONSchemaProps {
  return map(description, { type: 'string', maxLength: 63, pattern: LABEL_VALUE_PATTERN }, 64, {
    'x-kubernetes-validations': [keysMatch(LABEL_KEY_PATTERN, 'keys must be Kubernetes label names')],
  });
}

function exportTo(): JSONSchemaProps {
  return list(
    'Namespaces this resource is visible from: * (all, the default), . (its own), or namespace names.',
    { type: 'string', maxLength: 63, pattern: EXPORT_TO_PATTERN },
    32,
    {
      'x-kubernetes-validations': [
        uniqueScalars('must not contain duplicates'),
        cel("!('*' in self) || self.size() == 1", '* must be the only entry', (self) =>
          Array.isArray(self) ? !self.includes('*') || self.length === 1 : true,
        ),
      ],
    },
  );
}

function percent(description: string): JSONSchemaProps {
  return obj(
    description,
    { value: { type: 'number', description: 'A percentage in [0, 100].', minimum: 0, maximum: 100 } },
    {
      required: ['value'],
      'x-kubernetes-validations': [
        cel(
          'self.value == 0.0 || self.value >= 0.0001',
          'value must be 0 or at least 0.0001',
          (self) => !isObject(self) || typeof self.value !== 'number' || self.value <= 0 || self.value >= 0.0001,
          '.value',
        ),
      ],
    },
  );
}

function portSelector(description: string): JSONSchemaProps {
  return obj(description, { number: int('Port number.', 1, 65535) }, { required: ['number'] });
}

function destination(description: string): JSONSchemaProps {
  return obj(
    description,
    {
      host: str(
        'A Service: short name (reviews), name.namespace, name.namespace.svc or the FQDN. Short names resolve in the namespace of the VirtualService.',
        { minLength: 1, maxLength: MAX_HOST, pattern: HOST_PATTERN },
      ),
      subset: str('A subset defined by a DestinationRule for the host.', { maxLength: 63, pattern: DNS_LABEL_PATTERN }),
      port: portSelector('The Service port; needed when the Service has several ports.'),
    },
    { required: ['host'] },
  );
}

function headerOperations(description: string, request: boolean): JSONSchemaProps {
  // Requests may set :authority / host (a host rewrite); nothing may touch other pseudo-headers, and host may
  // only be set on requests.
  const names = request
    ? keysMatch(`^(:authority|[${TCHAR}]+)$`, 'header names must be HTTP header names or :authority')
    : cel(
        `self.all(k, k.matches(${celString(HEADER_NAME_PATTERN)}) && k.lowerAscii() != 'host')`,
        'header names must be HTTP header names other than host',
        (self) =>
          isObject(self)
            ? Object.keys(self).every((k) => new RegExp(HEADER_NAME_PATTERN).test(k) && k.toLowerCase() !== 'host')
            : true,
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
        'x-kubernetes-validations': [
          cel("self.all(k, k.lowerAscii() != 'host')", 'must not remove host', (self) =>
            Array.isArray(self) ? self.every((k) => typeof k !== 'string' || k.toLowerCase() !== 'host') : true,
          ),
        ],
      },
    ),
  });
}

function headers(description: string): JSONSchemaProps {
  return obj(description, {
    request: headerOperations('Changes to the request headers.', true),
    response: headerOperations('Changes to the response headers.', false),
  });
}

const weightsNotAllZero = (): CelRule =>
  cel(
    'self.size() <= 1 || self.exists(d, has(d.weight) && d.weight > 0)',
    'weights must not all be zero',
    (self) =>
      !Array.isArray(self) ||
      self.length <= 1 ||
      self.some((d) => isObject(d) && (typeof d.weight !== 'number' || d.weight > 0)),
  );

const WEIGHT = int(
  'Relative share of the traffic, 0 to 100 (weights of a route are added up; 90 and 10 send 90%).',
  0,
  100,
);

// ---------------------------------------------------------------------------------------------------
// VirtualService

const httpMatchRequest = obj('Conditions that must all hold for the route to apply.', {
  name: str('Name of the match, appended to the route name.', { maxLength: 253 }),
  uri: stringMatch('The request path.', 'uri'),
  scheme: stringMatch('The URI scheme.', 'strict'),
  method: stringMatch('The HTTP method.', 'strict'),
  authority: stringMatch('The HTTP authority (Host).', 'strict'),
  headers: map(
    'Request headers; names in lower case. {} matches when the header is present.',
    stringMatch('How to match the header value.', 'header'),
    32,
    {
      'x-kubernetes-validations': [
        keysMatch(MATCH_HEADER_NAME_PATTERN, 'header names must be lower case HTTP header names'),
      ],
    },
  ),
  withoutHeaders: map(
    'Request headers that must not match; names in lower case. {} means the header must be absent.',
    stringMatch('How to match the header value.', 'header'),
    32,
    {
      'x-kubernetes-validations': [
        keysMatch(MATCH_HEADER_NAME_PATTERN, 'header names must be lower case HTTP header names'),
      ],
    },
  ),
  queryParams: map(
    'Query parameters. {} matches when the parameter is present.',
    stringMatch('How to match the parameter value.', 'header'),
    32,
  ),
  port: int('The port the request is addressed to.', 1, 65535),
  sourceLabels: labels('Labels the calling workload must have.'),
  sourceNamespace: str('Namespace of the calling workload.', { maxLength: 63, pattern: DNS_LABEL_PATTERN }),
  ignoreUriCase: bool('Match the uri case-insensitively.'),
});

const httpRouteDestination = obj(
  'A destination and its share of the traffic.',
  {
    destination: destination('Where the request goes.'),
    weight: WEIGHT,
    headers: headers('Header changes for requests sent to this destination.'),
  },
  { required: ['destination'] },
);

const httpRedirect = obj(
  'Answer with a redirect instead of forwarding.',
  {
    uri: str('Replace the path.', { minLength: 1 }),
    authority: str('Replace the authority (host).', { minLength: 1, maxLength: MAX_HOST }),
    port: int('Replace the port.', 1, 65535),
    scheme: { type: 'string', description: 'Replace the scheme.', enum: ['http', 'https'] },
    redirectCode: {
      type: 'integer',
      format: 'int32',
      description: 'The redirect status code (default 301).',
      enum: [...REDIRECT_CODES],
    },
  },
  {
    'x-kubernetes-validations': [
      atLeastOne(['uri', 'authority', 'scheme', 'port'], 'must set at least one of uri, authority, scheme, port'),
    ],
  },
);

const httpRewrite = obj(
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

const httpRetry = obj(
  'Retry policy.',
  {
    attempts: int('Number of retries; 0 disables retries.', 0, INT32_MAX),
    perTryTimeout: duration('Timeout of each attempt'),
    retryOn: str(
      'Comma-separated Envoy retry conditions (5xx, gateway-error, connect-failure, …), gRPC status names (unavailable, …) or HTTP status codes.',
      { maxLength: 512, pattern: RETRY_ON_PATTERN },
    ),
    retryRemoteLocalities: bool('Retry in other localities.'),
  },
  {
    required: ['attempts'],
    'x-kubernetes-validations': [
      cel(
        'self.attempts > 0 || !(has(self.perTryTimeout) || has(self.retryOn) || has(self.retryRemoteLocalities))',
        'must not set perTryTimeout, retryOn or retryRemoteLocalities when attempts is 0',
        (self) =>
          !isObject(self) ||
          typeof self.attempts !== 'number' ||
          self.attempts > 0 ||
          count(self, ['perTryTimeout', 'retryOn', 'retryRemoteLocalities']) === 0,
      ),
    ],
  },
);

const httpFault = obj(
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

const corsPolicy = obj('Cross-origin resource sharing.', {
  allowOrigins: list('Origins allowed.', stringMatch('An origin.', 'origin'), 64),
  allowMethods: list('Methods allowed.', { type: 'string', enum: [...CORS_METHODS] }, 16, {
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

const httpRoute = obj(
  'An HTTP route: conditions and what to do with matching requests.',
  {
    name: str('Route name (in Envoy stats and logs).', { maxLength: 253 }),
    match: list('Conditions; any one may match (none: every request).', httpMatchRequest, 32),
    route: list('Destinations and weights.', httpRouteDestination, 32, {
      minItems: 1,
      'x-kubernetes-validations': [weightsNotAllZero()],
    }),
    redirect: httpRedirect,
    rewrite: httpRewrite,
    timeout: duration('Timeout of the whole request, retries included (default: none)'),
    retries: httpRetry,
    fault: httpFault,
    mirror: destination('Send a copy of each request here (the answer is ignored).'),
    mirrorPercentage: percent('Share of the requests mirrored (default 100).'),
    corsPolicy,
    headers: headers('Header changes.'),
  },
  {
    'x-kubernetes-validations': [
      cel('has(self.route) != has(self.redirect)', 'must have exactly one of route, redirect', (self) => {
        return has(self, 'route') !== has(self, 'redirect');
      }),
      notBoth('redirect', 'fault', 'must not be set with redirect', '.fault'),
      notBoth('redirect', 'rewrite', 'must not be set with redirect', '.rewrite'),
      notBoth('redirect', 'mirror', 'must not be set with redirect', '.mirror'),
      cel(
        '!has(self.mirrorPercentage) || has(self.mirror)',
        'must not be set without mirror',
        (self) => !has(self, 'mirrorPercentage') || has(self, 'mirror'),
        '.mirrorPercentage',
      ),
      cel(
        '!has(self.timeout) || !has(self.retries) || !has(self.retries.perTryTimeout) || duration(self.retries.perTryTimeout) <= duration(self.timeout)',
        'must be <= timeout',
        (self) => {
          if (!isObject(self) || typeof self.timeout !== 'string' || !isObject(self.retries)) return true;
          const per = self.retries.perTryTimeout;
          if (typeof per !== 'string') return true;
          const t = parseDurationNs(self.timeout);
          const p = parseDurationNs(per);
          return t === undefined || p === undefined || p <= t;
        },
        '.retries.perTryTimeout',
      ),
    ],
  },
);

const routeDestination = obj(
  'A destination and its share of the connections.',
  { destination: destination('Where the connection goes.'), weight: WEIGHT },
  { required: ['destination'] },
);

const tcpRoute = obj(
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
        port: int('The port the connection is addressed to.', 1, 65535),
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

const virtualServiceSpec = obj(
  'Routing for a set of hosts. Field names follow Istio networking/v1 VirtualService.',
  {
    hosts: list(
      'Hosts the routes apply to: Service short names, name.namespace, FQDNs or *.-prefixed names.',
      { type: 'string', maxLength: MAX_HOST, pattern: VS_HOST_PATTERN },
      64,
      { minItems: 1, 'x-kubernetes-validations': [uniqueScalars('must not contain duplicates')] },
    ),
    gateways: list(
      'Accepted and ignored: Trellis has no gateways yet (mesh is implied).',
      str('A gateway.', { maxLength: MAX_HOST }),
      16,
    ),
    http: list('HTTP routes, first match wins.', httpRoute, 128, { minItems: 1 }),
    tcp: list('TCP routes, first match wins.', tcpRoute, 64, { minItems: 1 }),
    exportTo: exportTo(),
  },
  {
    required: ['hosts'],
    'x-kubernetes-validations': [atLeastOne(['http', 'tcp'], 'must have http or tcp routes')],
  },
);

// ---------------------------------------------------------------------------------------------------
// DestinationRule

const loadBalancer = obj(
  'Load balancing.',
  {
    simple: { type: 'string', description: 'A load balancing algorithm.', enum: [...SIMPLE_LB] },
    consistentHash: obj(
      'Consistent hashing (session affinity) on one key.',
      {
        httpHeaderName: str('Hash this request header.', { maxLength: 256, pattern: HEADER_NAME_PATTERN }),
        httpCookie: obj(
          'Hash this cookie (Envoy creates it when missing).',
          {
            name: str('Cookie name.', { minLength: 1, maxLength: 256 }),
            path: str('Cookie path.'),
            ttl: durationOrZero('Cookie lifetime; 0s makes a session cookie'),
          },
          { required: ['name'] },
        ),
        useSourceIp: { type: 'boolean', description: 'Hash the source IP (must be true).', enum: [true] },
        httpQueryParameterName: str('Hash this query parameter.', { minLength: 1, maxLength: 256 }),
        ringHash: obj('Ring hash (the default).', {
          minimumRingSize: int('Minimum ring size (default 1024).', 1, 8_388_608),
        }),
        maglev: obj(
          'Maglev.',
          { tableSize: int('Table size, a prime number below 5000011 (default 65537).', 1, 5_000_010) },
          { required: ['tableSize'] },
        ),
      },
      {
        'x-kubernetes-validations': [
          exactlyOne(['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName']),
          notBoth('ringHash', 'maglev', 'must not set both ringHash and maglev'),
        ],
      },
    ),
    warmup: obj(
      'Slow start: ramp up traffic to new endpoints (ROUND_ROBIN and LEAST_REQUEST only).',
      {
        duration: duration('Length of the warmup'),
        minimumPercent: {
          type: 'number',
          description: 'Minimum share of traffic, 0-100 (default 10).',
          minimum: 0,
          maximum: 100,
        },
        aggression: {
          type: 'number',
          description: 'Ramp curve, > 0 (default 1: linear).',
          maximum: 1000,
          'x-kubernetes-validations': [
            cel('self > 0.0', 'must be > 0', (self) => typeof self !== 'number' || self > 0),
          ],
        },
      },
      { required: ['duration'] },
    ),
  },
  { 'x-kubernetes-validations': [exactlyOne(['simple', 'consistentHash'])] },
);

const connectionPool = obj(
  'Connection limits (circuit breaking). 0 means unset.',
  {
    tcp: obj(
      'TCP limits.',
      {
        maxConnections: int('Maximum connections to the destination.', 0, INT32_MAX),
        connectTimeout: duration('TCP connect timeout (default 10s)'),
        tcpKeepalive: obj('TCP keepalive.', {
          probes: int('Unanswered probes before the connection is dead.', 0, INT32_MAX),
          time: duration('Idle time before probing (Envoy uses whole seconds)'),
          interval: duration('Time between probes (Envoy uses whole seconds)'),
        }),
        maxConnectionDuration: duration('Maximum lifetime of a connection'),
        idleTimeout: durationOrZero('Idle timeout of a connection (default 1h; 0s disables)'),
      },
      { minProperties: 1 },
    ),
    http: obj(
      'HTTP limits.',
      {
        http1MaxPendingRequests: int('Maximum requests waiting for a connection.', 0, INT32_MAX),
        http2MaxRequests: int('Maximum concurrent requests.', 0, INT32_MAX),
        maxRequestsPerConnection: int('Requests per connection (0: unlimited).', 0, INT32_MAX),
        maxRetries: int('Maximum concurrent retries.', 0, INT32_MAX),
        idleTimeout: duration('Idle timeout of an upstream connection (default 1h)'),
        maxConcurrentStreams: int('Maximum concurrent HTTP/2 streams per connection.', 0, INT32_MAX),
      },
      { minProperties: 1 },
    ),
  },
  { minProperties: 1 },
);

const outlierDetection = obj(
  'Eject failing endpoints for a while.',
  {
    consecutive5xxErrors: int('5xx answers (and connection errors) before ejection (0 disables).', 0, INT32_MAX),
    consecutiveGatewayErrors: int('502, 503, 504 answers before ejection (0 disables).', 0, INT32_MAX),
    interval: duration('Time between ejection sweeps (default 10s)'),
    baseEjectionTime: duration('Minimum ejection time, multiplied by the number of ejections (default 30s)'),
    maxEjectionPercent: int('Maximum share of endpoints ejected, 0-100 (default 10).', 0, 100),
    minHealthPercent: int('Below this share of healthy endpoints, balance over all (panic mode), 0-100.', 0, 100),
  },
  { minProperties: 1 },
);

const clientTls = obj(
  'TLS to the destination.',
  {
    mode: {
      type: 'string',
      description: 'DISABLE, SIMPLE, MUTUAL, or MESH_MUTUAL (mesh certificates; ISTIO_MUTUAL is an alias).',
      enum: [...TLS_MODES],
    },
    sni: str('Server name sent in the TLS handshake.', { maxLength: MAX_HOST, pattern: HOST_PATTERN }),
    subjectAltNames: list('Accepted server identities.', str('A subject alternative name.', { minLength: 1 }), 64),
  },
  { required: ['mode'] },
);

const policyFields = {
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTls,
};

const portTrafficPolicy = obj(
  'Policy for one port of the destination; replaces the top-level policy for that port.',
  { port: portSelector('The port.'), ...policyFields },
  {
    required: ['port'],
    'x-kubernetes-validations': [
      atLeastOne(
        ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'],
        'must set loadBalancer, connectionPool, outlierDetection or tls',
      ),
    ],
  },
);

const trafficPolicy = obj(
  'Traffic policy.',
  {
    ...policyFields,
    portLevelSettings: list('Policies for single ports.', portTrafficPolicy, 64, {
      'x-kubernetes-validations': [uniqueBy('port.number', 'port numbers must be unique')],
    }),
  },
  { minProperties: 1 },
);

const destinationRuleSpec = obj(
  'Policies for traffic to a host. Field names follow Istio networking/v1 DestinationRule.',
  {
    host: str('A Service: short name, name.namespace, FQDN, *.-prefixed name or *.', {
      minLength: 1,
      maxLength: MAX_HOST,
      pattern: DR_HOST_PATTERN,
    }),
    trafficPolicy,
    subsets: list(
      'Named groups of endpoints, selected by labels.',
      obj(
        'A subset.',
        {
          name: str('Subset name, used by VirtualService destinations.', { maxLength: 63, pattern: DNS_LABEL_PATTERN }),
          labels: labels('Labels the endpoints must have.'),
          trafficPolicy,
        },
        { required: ['name'] },
      ),
      128,
      { 'x-kubernetes-validations': [uniqueBy('name', 'subset names must be unique')] },
    ),
    exportTo: exportTo(),
  },
  { required: ['host'] },
);

// ---------------------------------------------------------------------------------------------------
// PeerAuthentication

const PORT_KEY_RE = new RegExp(PORT_KEY_PATTERN);

const peerMutualTls = (description: string): JSONSchemaProps =>
  obj(description, {
    mode: {
      type: 'string',
      description:
        'UNSET (inherit from the level above), DISABLE (plaintext only), PERMISSIVE (mTLS and plaintext) or STRICT (mTLS only).',
      enum: [...PEER_MTLS_MODES],
    },
  });

/** True when the selector has at least one label (an empty selector selects the whole namespace). */
function hasMatchLabels(self: unknown): boolean {
  const selector = isObject(self) ? self.selector : undefined;
  const labels = isObject(selector) ? selector.matchLabels : undefined;
  return isObject(labels) && Object.keys(labels).length > 0;
}

const peerAuthenticationSpec = obj(
  'Inbound mutual TLS of workloads. Field names follow Istio security/v1 PeerAuthentication.',
  {
    selector: obj('The workloads (Pods) the policy applies to; absent: the whole namespace.', {
      matchLabels: labels('Labels a Pod must all have.'),
    }),
    mtls: peerMutualTls('Mutual TLS of the selected workloads.'),
    portLevelMtls: map(
      'Mutual TLS per container (target) port, overriding mtls; only with a selector.',
      peerMutualTls('Mutual TLS of the port.'),
      64,
      {
        'x-kubernetes-validations': [
          cel(
            `self.all(k, k.matches(${celString(PORT_KEY_PATTERN)}) && int(k) <= 65535)`,
            'keys must be port numbers 1-65535',
            (self) => !isObject(self) || Object.keys(self).every((k) => PORT_KEY_RE.test(k) && Number(k) <= 65535),
          ),
        ],
      },
    ),
  },
  {
    'x-kubernetes-validations': [
      cel(
        '!has(self.portLevelMtls) || (has(self.selector) && has(self.selector.matchLabels) && self.selector.matchLabels.size() > 0)',
        'requires a selector with matchLabels',
        (self) => !has(self, 'portLevelMtls') || hasMatchLabels(self),
        '.portLevelMtls',
      ),
    ],
  },
);

// ---------------------------------------------------------------------------------------------------
// Status and the CRDs.

const status: JSONSchemaProps = obj('Written by the Trellis control plane.', {
  conditions: list(
    'Accepted: True when the resource is valid and in use.',
    obj(
      'A condition.',
      {
        type: str('Condition type.', { maxLength: 316 }),
        status: { type: 'string', description: 'True, False or Unknown.', enum: ['True', 'False', 'Unknown'] },
        reason: str('Machine-readable reason.', { maxLength: 1024 }),
        message: str('Human-readable message.', { maxLength: 32768 }),
        lastTransitionTime: { type: 'string', description: 'When status last changed.', format: 'date-time' },
        observedGeneration: {
          type: 'integer',
          format: 'int64',
          description: 'Generation this condition is about.',
          minimum: 0,
        },
      },
      { required: ['type', 'status'] },
    ),
    16,
    { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
  ),
  observedGeneration: { type: 'integer', format: 'int64', description: 'Generation last processed.', minimum: 0 },
});

function root(kind: string, spec: JSONSchemaProps, apiVersion = API_VERSION): JSONSchemaProps {
  return obj(
    `${kind} (${apiVersion}).`,
    {
      apiVersion: { type: 'string', description: 'APIVersion of the object.' },
      kind: { type: 'string', description: 'Kind of the object.' },
      metadata: { type: 'object' },
      spec,
      status,
    },
    { required: ['spec'] },
  );
}

export const virtualServiceSchema: JSONSchemaProps = root('VirtualService', virtualServiceSpec);
export const destinationRuleSchema: JSONSchemaProps = root('DestinationRule', destinationRuleSpec);
export const peerAuthenticationSchema: JSONSchemaProps = root(
  'PeerAuthentication',
  peerAuthenticationSpec,
  SECURITY_API_VERSION,
);

export type RoutingKind = 'VirtualService' | 'DestinationRule';
/** Every kind of crds/: the routing kinds and PeerAuthentication. */
export type CrdKind = RoutingKind | 'PeerAuthentication';

const SCHEMAS: Record<CrdKind, JSONSchemaProps> = {
  VirtualService: virtualServiceSchema,
  DestinationRule: destinationRuleSchema,
  PeerAuthentication: peerAuthenticationSchema,
};

export function schemaOf(kind: CrdKind): JSONSchemaProps {
  return SCHEMAS[kind];
}

/** The apiVersion objects of a kind carry. */
export function apiVersionOf(kind: CrdKind): string {
  return kind === 'PeerAuthentication' ? SECURITY_API_VERSION : API_VERSION;
}

interface CrdNames {
  kind: CrdKind;
  group: string;
  plural: string;
  singular: string;
  shortName: string;
  category: string;
  column: { name: string; jsonPath: string; description: string };
}

const NAMES: Record<CrdKind, CrdNames> = {
  VirtualService: {
    kind: 'VirtualService',
    group: GROUP,
    plural: 'virtualservices',
    singular: 'virtualservice',
    shortName: 'vs',
    category: 'trellis-networking',
    column: { name: 'Hosts', jsonPath: '.spec.hosts', description: 'The hosts the routes apply to' },
  },
  DestinationRule: {
    kind: 'DestinationRule',
    group: GROUP,
    plural: 'destinationrules',
    singular: 'destinationrule',
    shortName: 'dr',
    category: 'trellis-networking',
    column: { name: 'Host', jsonPath: '.spec.host', description: 'The host the policies apply to' },
  },
  PeerAuthentication: {
    kind: 'PeerAuthentication',
    group: SECURITY_GROUP,
    plural: 'peerauthentications',
    singular: 'peerauthentication',
    shortName: 'pa',
    category: 'trellis-security',
    column: { name: 'Mode', jsonPath: '.spec.mtls.mode', description: 'The mutual TLS mode of the workloads' },
  },
};

/** The plural (resource) name of a kind, as in API paths. */
export function pluralOf(kind: CrdKind): string {
  return NAMES[kind].plural;
}

/** The CustomResourceDefinition object of a kind. */
export function customResourceDefinition(kind: CrdKind): Record<string, unknown> {
  const n = NAMES[kind];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${n.plural}.${n.group}`,
      labels: { 'app.kubernetes.io/name': 'trellis', 'app.kubernetes.io/part-of': 'trellis' },
    },
    spec: {
      group: n.group,
      scope: 'Namespaced',
      names: {
        kind: n.kind,
        listKind: `${n.kind}List`,
        plural: n.plural,
        singular: n.singular,
        shortNames: [n.shortName],
        categories: ['trellis', n.category],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { ...n.column, type: 'string' },
            {
              name: 'Accepted',
              type: 'string',
              jsonPath: '.status.conditions[?(@.type=="Accepted")].status',
              description: 'Whether the control plane accepted the resource',
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: { openAPIV3Schema: schemaOf(kind) },
        },
      ],
    },
  };
}
