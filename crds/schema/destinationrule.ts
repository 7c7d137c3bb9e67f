// The DestinationRule spec schema (networking.trellis.dev/v1alpha1; Istio networking/v1 field names).
import {
  atMostOne,
  portSelector,
  INT32_MAX,
  bool,
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
  map,
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
  HEADER_VALUE_PATTERN,
  LOCALITY_PATTERN,
  REGION_PATTERN,
  SIMPLE_LB,
  TLS_MODES,
} from './patterns.js';

// ---------------------------------------------------------------------------------------------------
// DestinationRule

const locality = (description: string) => str(description, { minLength: 1, maxLength: 256, pattern: LOCALITY_PATTERN });

/** Istio's LocalityLoadBalancerSetting; the checks a schema cannot state are in the validator (Istio's rules). */
export const localityLbSetting = obj(
  'Locality-aware load balancing: weights by locality (distribute) or failover order (failover, failoverPriority).',
  {
    distribute: list(
      'Weights of the destination localities, by the client locality.',
      obj(
        'Where traffic from one client locality goes.',
        {
          from: locality('Client locality region/zone/subzone; a terminal * matches any.'),
          to: map(
            'Destination locality → weight 1-100; the weights sum to 100. Localities not listed get no traffic.',
            { type: 'integer', format: 'int32', minimum: 1, maximum: 100 },
            64,
            { minProperties: 1 },
          ),
        },
        { required: ['from', 'to'] },
      ),
      64,
    ),
    failover: list(
      'When the endpoints of one region are unhealthy, fail over to this region only.',
      obj(
        'A region failover.',
        {
          // Regions are topology label values: at most 63 characters. The bounds keep the CEL rule below within
          // the API server's cost budget (it runs for every subset × port × failover entry).
          from: str('Client region.', { minLength: 1, maxLength: 63, pattern: REGION_PATTERN }),
          to: str('Region to fail over to.', { minLength: 1, maxLength: 63, pattern: REGION_PATTERN }),
        },
        {
          required: ['from', 'to'],
          'x-kubernetes-validations': [cel('self.from != self.to', 'must name different regions')],
        },
      ),
      16,
    ),
    failoverPriority: list(
      'Labels (key, or key=value) that order endpoints into priorities: all match first, then all but the last, …',
      str('A label key, or key=value.', { minLength: 1, maxLength: 317 }),
      16,
    ),
    enabled: { type: 'boolean', description: 'false turns locality load balancing off for this rule.' },
  },
  {
    'x-kubernetes-validations': [
      notBoth('distribute', 'failover', "must not set both 'distribute' and 'failover'"),
      notBoth('distribute', 'failoverPriority', "must not set both 'distribute' and 'failoverPriority'"),
    ],
  },
);

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
            attributes: list(
              'Attributes of the generated cookie (SameSite=Strict, Secure, …).',
              obj(
                'A cookie attribute.',
                {
                  name: str('Attribute name.', { minLength: 1, maxLength: 256, pattern: HEADER_NAME_PATTERN }),
                  value: str('Attribute value (none for a flag such as Secure).', {
                    maxLength: 1024,
                    pattern: HEADER_VALUE_PATTERN,
                  }),
                },
                { required: ['name'] },
              ),
              16,
            ),
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
        minimumRingSize: int(
          "Deprecated (Istio): ringHash.minimumRingSize; 0 means unset. Envoy's limit is 8388608.",
          0,
          8_388_608,
        ),
      },
      {
        'x-kubernetes-validations': [
          exactlyOne(['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName']),
          notBoth('ringHash', 'maglev', 'must not set both ringHash and maglev'),
          // Istio's validateLoadBalancer: the deprecated field or a hash algorithm, not both.
          cel(
            '!has(self.minimumRingSize) || self.minimumRingSize == 0 || !(has(self.ringHash) || has(self.maglev))',
            'must not be set with ringHash or maglev (it is the deprecated spelling of ringHash.minimumRingSize)',
            '.minimumRingSize',
          ),
        ],
      },
    ),
    localityLbSetting,
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
  // No minProperties: Istio's validateLoadBalancer accepts `loadBalancer: {}` (the default, round robin).
  { 'x-kubernetes-validations': [atMostOne(['simple', 'consistentHash'])] },
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
        h2UpgradePolicy: {
          type: 'string',
          description: 'DEFAULT (no upgrade), DO_NOT_UPGRADE, or UPGRADE: speak HTTP/2 to an HTTP/1.1 port.',
          enum: ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'],
        },
        useClientProtocol: bool('Speak to the destination the protocol the client spoke (h2UpgradePolicy is ignored).'),
        maxConcurrentStreams: int('Maximum concurrent HTTP/2 streams per connection.', 0, INT32_MAX),
        http2KeepAlive: obj(
          'HTTP/2 PING keepalive of upstream connections.',
          {
            interval: duration('Time between PINGs'),
            timeout: duration('How long to wait for a PING answer before closing the connection'),
          },
          { required: ['interval', 'timeout'] },
        ),
      },
      { minProperties: 1 },
    ),
  },
  { minProperties: 1 },
);

export const outlierDetection = obj(
  'Eject failing endpoints for a while.',
  {
    splitExternalLocalOriginErrors: bool(
      'Count locally originated failures (connect errors, timeouts, resets) apart from the answers.',
    ),
    consecutiveLocalOriginFailures: int(
      'With splitExternalLocalOriginErrors: local-origin failures in a row before ejection (default 5; 0 disables).',
      0,
      INT32_MAX,
    ),
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
    caCertificates: str(
      'SIMPLE/MUTUAL: PEM file of the CAs trusted to sign the server certificate (default: system roots).',
      {
        minLength: 1,
      },
    ),
    clientCertificate: str('MUTUAL: PEM file of the client certificate chain.', { minLength: 1 }),
    privateKey: str('MUTUAL: PEM file of the client private key.', { minLength: 1 }),
    credentialName: str(
      'SIMPLE/MUTUAL: a Secret (tls.crt/tls.key/ca.crt or cert/key/cacert) in the namespace of each client proxy, served to it over SDS.',
      { minLength: 1, maxLength: MAX_HOST },
    ),
    caCrl: str('SIMPLE/MUTUAL: PEM file of a certificate revocation list.', { minLength: 1 }),
    sni: str('Server name sent in the TLS handshake.', { maxLength: MAX_HOST, pattern: HOST_PATTERN }),
    subjectAltNames: list('Accepted server identities.', str('A subject alternative name.', { minLength: 1 }), 64),
    insecureSkipVerify: bool('SIMPLE/MUTUAL: do not verify the server certificate.'),
  },
  {
    required: ['mode'],
    'x-kubernetes-validations': [
      // Istio's ValidateTLS: MUTUAL needs client certificate material, from the Secret or from files.
      cel(
        "self.mode != 'MUTUAL' || has(self.credentialName) || has(self.clientCertificate)",
        'is required for mode MUTUAL (or set credentialName)',
        '.clientCertificate',
      ),
      cel(
        "self.mode != 'MUTUAL' || has(self.credentialName) || has(self.privateKey)",
        'is required for mode MUTUAL (or set credentialName)',
        '.privateKey',
      ),
      // Istio's validateTLS (pkg/config/validation): credentials come from the Secret or from files, not both.
      cel(
        "!(has(self.credentialName) && (self.mode == 'SIMPLE' || self.mode == 'MUTUAL') && (has(self.clientCertificate) || has(self.privateKey) || has(self.caCertificates) || has(self.caCrl)))",
        'cannot specify client certificates or CA certificate or CA CRL if credentialName is set',
      ),
      cel(
        "!(has(self.insecureSkipVerify) && self.insecureSkipVerify && self.mode == 'SIMPLE' && (has(self.caCertificates) || has(self.credentialName) || has(self.subjectAltNames)))",
        'cannot specify caCertificates, credentialName or subjectAltNames when insecureSkipVerify is true',
      ),
      cel(
        "!(has(self.insecureSkipVerify) && self.insecureSkipVerify && self.mode == 'MUTUAL' && (has(self.caCertificates) || has(self.subjectAltNames)))",
        'cannot specify caCertificates or subjectAltNames when insecureSkipVerify is true',
      ),
    ],
  },
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
    workloadSelector: obj(
      "The Pods of the rule's own namespace it applies to (their outbound traffic); absent: every proxy that sees it.",
      { matchLabels: labels('Labels a Pod must all have.') },
    ),
  },
  { required: ['host'] },
);
