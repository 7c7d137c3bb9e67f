// The Sidecar spec schema (networking.trellis.dev/v1alpha1; Istio networking/v1 field names): which services
// the config of the selected proxies holds. Istio fields Trellis does not implement (ingress,
// inboundConnectionPool, egress[].captureMode, outboundTrafficPolicy.egressProxy) are not in the schema: the
// validator names them (crds/validator.ts ISTIO_ONLY_FIELDS). The form of each egress host
// (`namespace/dnsName`) is checked by the validator, with Istio's messages.
import { type JSONSchemaProps, cel, int, labels, list, obj, str, MAX_HOST } from './language.js';

const port: JSONSchemaProps = obj(
  'The port of an egress listener (accepted; the scope is per Service).',
  {
    number: int('Port number.', 1, 65535),
    protocol: str('HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP or TLS.', { maxLength: 16 }),
    name: str('A label for the port.', { maxLength: 63 }),
  },
  { required: ['number'] },
);

const egress = obj(
  'An egress listener: the hosts a proxy may reach.',
  {
    port,
    bind: str('The address the listener binds (accepted; Trellis emits no per-port egress listener).', {
      maxLength: 256,
    }),
    hosts: list(
      "namespace/dnsName: namespace * (any), . (the Sidecar's; a mesh default: the proxy's), ~ (none) or a name; dnsName *, *.suffix or an FQDN.",
      str('namespace/dnsName.', { minLength: 1, maxLength: MAX_HOST + 64 }),
      256,
      { minItems: 1 },
    ),
  },
  { required: ['hosts'] },
);

export const sidecarSpec = obj(
  'The services whose config the selected proxies receive. Field names and semantics follow Istio networking/v1 Sidecar.',
  {
    workloadSelector: obj(
      'The Pods this Sidecar applies to; absent: the namespace default (in the root namespace: the mesh default).',
      { labels: labels('Labels a Pod must all have (at least one).') },
      {
        required: ['labels'],
        'x-kubernetes-validations': [cel('self.labels.size() > 0', 'must have at least one label', '.labels')],
      },
    ),
    egress: list('Egress listeners; their hosts together are the scope.', egress, 64),
    outboundTrafficPolicy: obj('Traffic to destinations outside the scope.', {
      mode: {
        type: 'string',
        description:
          'ALLOW_ANY (pass through) or REGISTRY_ONLY (refuse); default: the mesh config outboundTrafficPolicy.',
        enum: ['ALLOW_ANY', 'REGISTRY_ONLY'],
      },
    }),
  },
);
