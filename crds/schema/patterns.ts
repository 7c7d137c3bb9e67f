// Patterns and the messages the validator gives when one does not match (the API server prints the
// pattern itself). A message may depend on the value.

import { DURATION_PATTERN, parseDurationNs, SECONDS_DURATION_PATTERN } from '../duration.js';

export const LABEL = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
export const DNS_LABEL_PATTERN = `^${LABEL}$`;
/** A host name: lower-case DNS labels, an optional trailing dot. */
export const HOST_PATTERN = `^${LABEL}(\\.${LABEL})*\\.?$`;
/** A DNS label in any case (Istio's dns1123LabelFmt: host names are case-insensitive). */
export const LABEL_ANY_CASE = '[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?';
/**
 * A host of a VirtualService or DestinationRule, as Istio's ValidateWildcardDomain: DNS labels in any case,
 * the first of which may be `*`, `*<label>` or `*-<label>` (`*.example.com`, `*foo.example.com`,
 * `*-foo.example.com`, `*`). Where `*` alone is allowed is a CEL rule of the VirtualService.
 */
export const VS_HOST_PATTERN = `^(\\*|(\\*|\\*-)?${LABEL_ANY_CASE})(\\.${LABEL_ANY_CASE})*\\.?$`;
/** A DestinationRule host: as a VirtualService host (`*` included). */
export const DR_HOST_PATTERN = VS_HOST_PATTERN;
/** A destination host: a host name in any case, no wildcard (a destination is one Service). */
export const DESTINATION_HOST_PATTERN = `^${LABEL_ANY_CASE}(\\.${LABEL_ANY_CASE})*\\.?$`;
export const EXPORT_TO_PATTERN = `^(\\*|\\.|${LABEL})$`;
export const LABEL_VALUE_PATTERN = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';
export const LABEL_KEY_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$';
/** RFC 9110 token characters. */
export const TCHAR = "-!#$%&'*+.^_`|~0-9A-Za-z";
export const HEADER_NAME_PATTERN = `^[${TCHAR}]+$`;
/**
 * Header names in matches: tokens in any case (Istio; translation lower-cases them), or the pseudo-headers
 * :method, :scheme, :authority, :path.
 */
export const MATCH_HEADER_NAME_PATTERN = `^(:(method|scheme|authority|path)|[${TCHAR}]+)$`;
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
/**
 * The HTTP status codes a retryOn list may name: those Go's net/http has a name for (Istio's
 * ValidateHTTPRetry accepts a number when `http.StatusText` knows it).
 */
export const HTTP_STATUS_CODES = [
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400,
  401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425,
  426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
] as const;
export const RETRY_ON_TOKEN = `(${RETRY_ON_CONDITIONS.join('|')}|${HTTP_STATUS_CODES.join('|')})`;
/** Istio's retryOn: policies and status codes separated by commas, no spaces, no empty entry. */
export const RETRY_ON_PATTERN = `^${RETRY_ON_TOKEN}(,${RETRY_ON_TOKEN})*$`;
export const CIDR_PATTERN = '^[0-9a-fA-F:.]+(/[0-9]{1,3})?$';
/** A locality `region[/zone[/subzone]]`; one `*`, at the end only (Istio's validateLocalities). */
export const LOCALITY_PATTERN = '^([^/*]+/){0,2}([^/*]+\\*?|\\*)$';
/** A region name (locality failover): no `/` and no `*`. */
export const REGION_PATTERN = '^[^/*]+$';

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
export const AUTHZ_ACTIONS = ['ALLOW', 'DENY', 'AUDIT'] as const;
/** The `when` keys Trellis implements (Istio's condition keys without request.auth.*, which needs JWT). */
export const AUTHZ_WHEN_KEYS = [
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
  'connection.sni',
] as const;
export const AUTHZ_WHEN_KEY_PATTERN = `^(request\\.headers\\[[^\\]]+\\]|${AUTHZ_WHEN_KEYS.map((k) => k.replace('.', '\\.')).join('|')})$`;
/** A port number written as a string (AuthorizationPolicy ports, as Istio's). */
export const PORT_STRING_PATTERN = '^[0-9]{1,5}$';

export const authzWhenKeyMessage = (key: string): string => {
  if (key.startsWith('request.auth.'))
    return `${key} needs request authentication (JWT, Istio's RequestAuthentication), which Trellis does not implement`;
  if (key.startsWith('request.headers'))
    return 'must be request.headers[<name>] with a header name between the brackets';
  return `unknown or unsupported attribute ${key}; Trellis supports request.headers[<name>], ${AUTHZ_WHEN_KEYS.join(', ')}`;
};
/** A port number 1-65535 written as a map key (JSON keys are strings). */
export const PORT_KEY_PATTERN = '^[1-9][0-9]{0,4}$';
export const TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'MESH_MUTUAL', 'ISTIO_MUTUAL'] as const;
/** Istio's supportedCORSMethods: Go's method names and `*` (any method, sent as is). */
export const CORS_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  '*',
] as const;
/**
 * The redirect codes: 0 (unset: 301, as Istio) and those Envoy's RedirectAction can send. Istio accepts any
 * 3xx but leaves out a route with another code when it translates it; Trellis refuses them.
 */
export const REDIRECT_CODES = [0, 301, 302, 303, 307, 308] as const;

export const retryOnMessage = (value: string): string => {
  const tokens = value.split(',');
  const bad = tokens.find((t) => !new RegExp(`^${RETRY_ON_TOKEN}$`).test(t));
  if (bad === undefined || bad === '') return 'must be a comma-separated list of retry conditions, without spaces';
  if (bad.trim() !== bad && new RegExp(`^${RETRY_ON_TOKEN}$`).test(bad.trim()))
    return `"${bad}" has a space (write the list without spaces, as Istio and Envoy do)`;
  return `"${bad}" is not a retry condition or an HTTP status code`;
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
  [VS_HOST_PATTERN, () => 'must be a host name, optionally *-prefixed in its first label (*.a.com, *foo.a.com), or *'],
  [DESTINATION_HOST_PATTERN, (v) => (v.includes('*') ? 'must not be a wildcard' : 'must be a host name')],
  [EXPORT_TO_PATTERN, () => 'must be *, . or a namespace name'],
  [LOCALITY_PATTERN, () => 'must be a locality region/zone/subzone without empty parts, with one * at the end at most'],
  [REGION_PATTERN, () => 'must be a region: no / (zones are not allowed here) and no *'],
  [LABEL_VALUE_PATTERN, () => 'must be a label value (letters, digits, -, _ and ., alphanumeric at both ends)'],
  [HEADER_NAME_PATTERN, () => 'must be an HTTP header name'],
  [CORS_HEADER_PATTERN, () => 'must be an HTTP header name or *'],
  [HEADER_VALUE_PATTERN, () => 'must not contain control characters'],
  [RETRY_ON_PATTERN, retryOnMessage],
  [CIDR_PATTERN, () => 'must be an IP address or CIDR block'],
  [AUTHZ_WHEN_KEY_PATTERN, authzWhenKeyMessage],
  [PORT_STRING_PATTERN, () => 'must be a port number 1-65535'],
]);
