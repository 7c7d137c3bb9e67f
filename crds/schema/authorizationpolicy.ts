// The AuthorizationPolicy spec schema (security.trellis.dev/v1alpha1; Istio security/v1 field names).
// Istio fields Trellis does not implement (provider and CUSTOM, targetRef(s), requestPrincipals,
// serviceAccounts, request.auth.* conditions) are not in the schema: the validator names them
// (crds/validator.ts ISTIO_ONLY_FIELDS) and the API server refuses them as unknown fields. The values of
// port- and IP-valued conditions are checked by the validator alone: a CEL rule over every value of every
// condition of every rule exceeds the API server's cost budget (65 times over, measured).
import { type JSONSchemaProps, cel, labels, list, obj, str } from './language.js';
import { AUTHZ_ACTIONS, AUTHZ_WHEN_KEY_PATTERN, CIDR_PATTERN, PORT_STRING_PATTERN } from './patterns.js';

/** Longest list of values in one field (CEL cost needs a bound). */
const MAX_VALUES = 128;

const values = (description: string, item: JSONSchemaProps = str('A value.', { minLength: 1 })): JSONSchemaProps =>
  list(description, item, MAX_VALUES, { minItems: 1 });

const cidr = str('An IP address or CIDR block.', { maxLength: 64, pattern: CIDR_PATTERN });
const port = str('A port number.', { maxLength: 5, pattern: PORT_STRING_PATTERN });

const MATCH = 'exact, prefix (abc*), suffix (*abc) or presence (*)';

const source = obj(
  'Who sends the request; the fields are ANDed, the values of one field ORed.',
  {
    principals: values(`Peer identities (SPIFFE IDs without spiffe://, as cluster.local/ns/NS/sa/SA): ${MATCH}.`),
    notPrincipals: values('Peer identities that do not match.'),
    namespaces: values(`Namespaces of the peer identity: ${MATCH}.`),
    notNamespaces: values('Namespaces that do not match.'),
    ipBlocks: values('Source addresses of the connection (IP or CIDR).', cidr),
    notIpBlocks: values('Source addresses that do not match.', cidr),
    remoteIpBlocks: values('Original client addresses (X-Forwarded-For as Envoy computes it; IP or CIDR).', cidr),
    notRemoteIpBlocks: values('Original client addresses that do not match.', cidr),
  },
  { minProperties: 1 },
);

const operation = obj(
  'What the request does; the fields are ANDed, the values of one field ORed.',
  {
    hosts: values(`Request hosts (:authority), case-insensitive: ${MATCH}. HTTP only.`),
    notHosts: values('Hosts that do not match. HTTP only.'),
    ports: values('Destination (container) ports.', port),
    notPorts: values('Ports that do not match.', port),
    methods: values('HTTP methods (gRPC calls are POST). HTTP only.'),
    notMethods: values('Methods that do not match. HTTP only.'),
    paths: values(`Request paths; gRPC methods as /package.Service/Method: ${MATCH}. HTTP only.`),
    notPaths: values('Paths that do not match. HTTP only.'),
  },
  { minProperties: 1 },
);

const condition = obj(
  'An extra condition on the request.',
  {
    key: str(
      'request.headers[NAME], source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port or connection.sni.',
      { maxLength: 256, pattern: AUTHZ_WHEN_KEY_PATTERN },
    ),
    values: values('Values that match (ORed).'),
    notValues: values('Values that do not match.'),
  },
  {
    required: ['key'],
    'x-kubernetes-validations': [cel('has(self.values) || has(self.notValues)', 'must set values or notValues')],
  },
);

const rule = obj('Matches a request when every part given matches.', {
  from: list(
    'Sources; any one matches. Absent: any source.',
    obj('A source.', { source }, { required: ['source'] }),
    32,
    { minItems: 1 },
  ),
  to: list(
    'Operations; any one matches. Absent: any operation.',
    obj('An operation.', { operation }, { required: ['operation'] }),
    32,
    { minItems: 1 },
  ),
  when: list('Extra conditions; all must match.', condition, 32),
});

export const authorizationPolicySpec = obj(
  'Who may call the selected workloads. Field names and semantics follow Istio security/v1 AuthorizationPolicy.',
  {
    selector: obj(
      'The workloads (Pods) the policy applies to; absent: the whole namespace (in the root namespace: the mesh).',
      { matchLabels: labels('Labels a Pod must all have.') },
    ),
    action: {
      type: 'string',
      description:
        'ALLOW (the default), DENY or AUDIT. DENY policies are evaluated first; once any ALLOW policy selects a workload, requests that match none are denied.',
      enum: [...AUTHZ_ACTIONS],
    },
    rules: list(
      'Rules; a request matches the policy when it matches any rule. None: ALLOW denies every request, DENY and AUDIT match nothing.',
      rule,
      64,
    ),
  },
);
