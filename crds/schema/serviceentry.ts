// The ServiceEntry spec schema (networking.trellis.dev/v1alpha1; Istio networking/v1 field names): services
// outside the Kubernetes registry (an external API, a VM) that VirtualServices and DestinationRules can name,
// and that make up the egress allow-list under `outboundTrafficPolicy: REGISTRY_ONLY`. The rules a schema
// cannot say well (addresses per resolution, endpoint port names) are in crds/validator.ts.
import {
  MAX_HOST,
  cel,
  celString,
  exportTo,
  int,
  labels,
  list,
  map,
  obj,
  str,
  uniqueBy,
  uniqueScalars,
} from './language.js';
import { CIDR_PATTERN, DNS_LABEL_PATTERN, VS_HOST_PATTERN } from './patterns.js';

export const SERVICE_ENTRY_PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'HTTP2', 'MONGO', 'TCP', 'TLS'] as const;
export const SERVICE_ENTRY_RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'] as const;
export const SERVICE_ENTRY_LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;

/** A port name as Istio's ValidatePortName: a DNS label (lower case letters, digits and -). */
const portName = str('Port name, unique within the entry; endpoints map it to their own port.', {
  minLength: 1,
  maxLength: 63,
  pattern: DNS_LABEL_PATTERN,
});

export const serviceEntryPort = obj(
  'A port of the service.',
  {
    number: int('Port number the service is called on.', 1, 65535),
    protocol: {
      type: 'string',
      description:
        'HTTP, HTTP2 and GRPC get routes; TLS and HTTPS are passed through by SNI; MONGO and TCP are TCP (default TCP).',
      enum: [...SERVICE_ENTRY_PROTOCOLS],
    },
    name: portName,
    targetPort: int('Port on the endpoints (default: number; an endpoint ports entry wins).', 1, 65535),
  },
  { required: ['number', 'name'] },
);

export const workloadEntry = obj(
  'An endpoint of the service.',
  {
    address: str('An IP address (STATIC), or a host name or IP address (DNS, DNS_ROUND_ROBIN).', {
      minLength: 1,
      maxLength: MAX_HOST,
    }),
    ports: map('Port name → the port on this endpoint.', int('Port number.', 1, 65535), 64, {
      'x-kubernetes-validations': [
        cel(`self.all(k, k.matches(${celString(DNS_LABEL_PATTERN)}))`, 'keys must be port names of spec.ports'),
      ],
    }),
    labels: labels('Labels of the endpoint (DestinationRule subsets select on them).'),
    weight: int('Relative load balancing weight (default 1).', 0, 4_294_967),
    locality: str('Locality, region/zone/subzone.', { maxLength: 253, pattern: '^[^/]*(/[^/]*(/[^/]*)?)?$' }),
  },
  { required: ['address'] },
);

export const serviceEntrySpec = obj(
  'A service outside the Kubernetes registry. Field names follow Istio networking/v1 ServiceEntry.',
  {
    hosts: list(
      'Host names of the service (FQDNs or *.-prefixed); VirtualServices and DestinationRules name these.',
      { type: 'string', maxLength: MAX_HOST, pattern: VS_HOST_PATTERN },
      64,
      { minItems: 1, 'x-kubernetes-validations': [uniqueScalars('must not contain duplicates')] },
    ),
    addresses: list(
      'Virtual IPs or CIDR blocks of the service: TCP ports get a listener on each.',
      { type: 'string', maxLength: 64, pattern: CIDR_PATTERN },
      32,
      { 'x-kubernetes-validations': [uniqueScalars('must not contain duplicates')] },
    ),
    ports: list('Ports of the service.', serviceEntryPort, 64, {
      minItems: 1,
      'x-kubernetes-validations': [
        uniqueBy('number', 'port numbers must be unique'),
        uniqueBy('name', 'port names must be unique'),
      ],
    }),
    location: {
      type: 'string',
      description: 'MESH_EXTERNAL (default: no mesh mutual TLS) or MESH_INTERNAL.',
      enum: [...SERVICE_ENTRY_LOCATIONS],
    },
    resolution: {
      type: 'string',
      description:
        'NONE (default: the address the caller dialled), STATIC (the endpoints IPs), DNS (every address the endpoints or hosts resolve to), DNS_ROUND_ROBIN (one address at a time).',
      enum: [...SERVICE_ENTRY_RESOLUTIONS],
    },
    endpoints: list('Endpoints of the service (STATIC, DNS, DNS_ROUND_ROBIN).', workloadEntry, 256),
    exportTo: exportTo(),
  },
  {
    required: ['hosts', 'ports'],
    'x-kubernetes-validations': [
      cel(
        "!has(self.resolution) || self.resolution != 'NONE' || !has(self.endpoints) || self.endpoints.size() == 0",
        'must be empty when resolution is NONE',
        '.endpoints',
      ),
      cel(
        "!has(self.resolution) || self.resolution != 'DNS_ROUND_ROBIN' || !has(self.endpoints) || self.endpoints.size() <= 1",
        'must have at most one endpoint when resolution is DNS_ROUND_ROBIN',
        '.endpoints',
      ),
    ],
  },
);
