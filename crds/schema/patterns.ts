// Patterns and the messages the validator gives when one does not match (the API server prints the
// pattern itself). A message may depend on the value.

import { DURATION_PATTERN, parseDurationNs, SECONDS_DURATION_PATTERN } from '../duration.js';

export const LABEL = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
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
export const TCHAR = "-!#$%&'*+.^_`|~0-9A-Za-z";
export const TCHAR_LOWER = "-!#$%&'*+.^_`|~0-9a-z";
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
export const RETRY_ON_TOKEN = `(${RETRY_ON_CONDITIONS.join('|')}|[1-5][0-9][0-9])`;
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
export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'] as const;
export const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

export const retryOnMessage = (value: string): string => {
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
  [AUTHZ_WHEN_KEY_PATTERN, authzWhenKeyMessage],
  [PORT_STRING_PATTERN, () => 'must be a port number 1-65535'],
]);
