// The DestinationRule spec schema (networking.trellis.dev/v1alpha1; Istio networking/v1 field names).
import {
  portSelector,
  INT32_MAX,
  MAX_HOST,
  atLeastOne,
  cel,
  duration,
  durationOrZero,
  exactlyOne,
  exportTo,
  int,
  labels,
  list,
  notBoth,
  obj,
  str,
  uniqueBy,
} from './language.js';
import {
  DNS_LABEL_PATTERN,
  DR_HOST_PATTERN,
  HEADER_NAME_PATTERN,
  HOST_PATTERN,
  SIMPLE_LB,
  TLS_MODES,
} from './patterns.js';

// ---------------------------------------------------------------------------------------------------
// DestinationRule

export const loadBalancer = obj(
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
          'x-kubernetes-validations': [cel('self > 0.0', 'must be > 0')],
        },
      },
      { required: ['duration'] },
    ),
  },
  { 'x-kubernetes-validations': [exactlyOne(['simple', 'consistentHash'])] },
);

export const connectionPool = obj(
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

export const outlierDetection = obj(
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

export const clientTls = obj(
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

export const policyFields = {
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTls,
};

export const portTrafficPolicy = obj(
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

export const trafficPolicy = obj(
  'Traffic policy.',
  {
    ...policyFields,
    portLevelSettings: list('Policies for single ports.', portTrafficPolicy, 64, {
      'x-kubernetes-validations': [uniqueBy('port.number', 'port numbers must be unique')],
    }),
  },
  { minProperties: 1 },
);

export const destinationRuleSpec = obj(
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
