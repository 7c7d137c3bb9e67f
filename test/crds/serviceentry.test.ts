// ServiceEntry validation (crds/schema/serviceentry.ts, crds/validator.ts), each rule named for the Istio
// rule it follows (pkg/config/validation ValidateServiceEntry), and VirtualService tls[] routes.
import test from 'ava';
import { API_VERSION } from '../../crds/types.js';
import { isMeshResource, validateRoutingResource, type ValidationResult } from '../../crds/validator.js';

type Json = Record<string, unknown>;

const meta = { name: 'external', namespace: 'shop' };

function se(spec: Json): Json {
  return { apiVersion: API_VERSION, kind: 'ServiceEntry', metadata: meta, spec };
}

const base = (extra: Json = {}): Json =>
  se({ hosts: ['api.example.com'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], ...extra });

function lines(r: ValidationResult, severity: 'error' | 'warning'): string[] {
  return r.issues.filter((i) => i.severity === severity).map((i) => `${i.path}: ${i.message}`);
}
const errors = (o: unknown): string[] => lines(validateRoutingResource(o), 'error');
const warnings = (o: unknown): string[] => lines(validateRoutingResource(o), 'warning');

test('a minimal ServiceEntry is valid and is one of the mesh resources', (t) => {
  const r = validateRoutingResource(base());
  t.is(r.kind, 'ServiceEntry');
  t.deepEqual(lines(r, 'error'), []);
  t.truthy(r.resource);
  t.true(isMeshResource(base()));
  t.false(isMeshResource({ ...base(), apiVersion: 'networking.istio.io/v1' }));
});

test('hosts and ports are required (Istio: "service entry must have at least one host", "at least one port")', (t) => {
  t.deepEqual(errors(se({ ports: [{ number: 80, name: 'http' }] })), ['spec.hosts: is required']);
  t.deepEqual(errors(se({ hosts: ['a.example.com'] })), ['spec.ports: is required']);
  t.deepEqual(errors(se({ hosts: [], ports: [{ number: 80, name: 'http' }] })), ['spec.hosts: must not be empty']);
});

test('hosts: names or *.-prefixed names, never an IP address (Istio: hosts are FQDNs; addresses take IPs)', (t) => {
  t.deepEqual(errors(base({ hosts: ['*.example.com'] })), []);
  t.deepEqual(errors(base({ hosts: ['10.0.0.1'] })), [
    'spec.hosts[0]: must be a host name, not an IP address (use addresses)',
  ]);
  t.deepEqual(errors(base({ hosts: ['a.example.com', 'a.example.com'] })), ['spec.hosts: must not contain duplicates']);
});

test('ports: numbers and names unique, protocols Istio knows (ValidatePort, ValidatePortName, ValidateProtocol)', (t) => {
  t.deepEqual(
    errors(
      base({
        ports: [
          { number: 443, name: 'tls', protocol: 'TLS' },
          { number: 443, name: 'other', protocol: 'TCP' },
        ],
      }),
    ),
    ['spec.ports: port numbers must be unique'],
  );
  t.deepEqual(
    errors(
      base({
        ports: [
          { number: 443, name: 'tls' },
          { number: 80, name: 'tls' },
        ],
      }),
    ),
    ['spec.ports: port names must be unique'],
  );
  t.deepEqual(errors(base({ ports: [{ number: 0, name: 'x' }] })), ['spec.ports[0].number: must be >= 1']);
  t.deepEqual(errors(base({ ports: [{ number: 80, name: 'http', protocol: 'QUIC' }] })), [
    'spec.ports[0].protocol: must be one of: HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS',
  ]);
  t.deepEqual(errors(base({ ports: [{ number: 80 }] })), ['spec.ports[0].name: is required']);
});

test('resolution NONE takes no endpoints (Istio: "no endpoints should be provided for resolution type NONE")', (t) => {
  t.deepEqual(errors(base({ resolution: 'NONE', endpoints: [{ address: '10.0.0.1' }] })), [
    'spec.endpoints: must be empty when resolution is NONE',
  ]);
});

test('resolution STATIC needs IP endpoints (Istio: "endpoint address %q is not a valid IP address")', (t) => {
  t.deepEqual(
    errors(base({ resolution: 'STATIC', endpoints: [{ address: '192.0.2.1' }, { address: '2001:db8::1' }] })),
    [],
  );
  t.deepEqual(errors(base({ resolution: 'STATIC', endpoints: [{ address: 'vm1.example.com' }] })), [
    'spec.endpoints[0].address: must be an IP address when resolution is STATIC',
  ]);
  t.deepEqual(warnings(base({ resolution: 'STATIC' })), [
    'spec.endpoints: none: with resolution STATIC the service has no endpoints, so calls to it fail',
  ]);
});

test('resolution DNS: names or IPs; a wildcard host needs endpoints (Istio: wildcard hosts cannot be resolved)', (t) => {
  t.deepEqual(
    errors(base({ resolution: 'DNS', endpoints: [{ address: 'eu.example.com' }, { address: '192.0.2.1' }] })),
    [],
  );
  t.deepEqual(errors(base({ resolution: 'DNS', endpoints: [{ address: 'not a name' }] })), [
    'spec.endpoints[0].address: must be an IP address or a host name',
  ]);
  t.deepEqual(errors(base({ resolution: 'DNS', hosts: ['*.example.com'] })), [
    'spec.hosts[0]: a wildcard host needs endpoints with resolution DNS',
  ]);
  t.deepEqual(
    errors(base({ resolution: 'DNS', hosts: ['*.example.com'], endpoints: [{ address: 'gw.example.com' }] })),
    [],
  );
});

test('DNS_ROUND_ROBIN has at most one endpoint (Istio; Envoy LOGICAL_DNS takes one)', (t) => {
  t.deepEqual(errors(base({ resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example.com' }] })), []);
  t.deepEqual(
    errors(
      base({ resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }] }),
    ),
    ['spec.endpoints: must have at most one endpoint when resolution is DNS_ROUND_ROBIN'],
  );
});

test('endpoint ports name ports of spec.ports (Istio: "endpoint port %v is not defined by the service entry")', (t) => {
  t.deepEqual(errors(base({ resolution: 'STATIC', endpoints: [{ address: '192.0.2.1', ports: { tls: 8443 } }] })), []);
  t.deepEqual(errors(base({ resolution: 'STATIC', endpoints: [{ address: '192.0.2.1', ports: { http: 80 } }] })), [
    'spec.endpoints[0].ports[http]: is not the name of a port in spec.ports',
  ]);
});

test('addresses are IPs or CIDR blocks (Istio: ValidateIPSubnet)', (t) => {
  t.deepEqual(errors(base({ addresses: ['192.0.2.10', '10.200.0.0/16', '2001:db8::/64'] })), []);
  t.deepEqual(errors(base({ addresses: ['10.0.0.0/33'] })), ['spec.addresses[0]: must be an IP address or CIDR block']);
});

test('a TCP port with resolution NONE and no addresses is warned about: it takes every connection to the port', (t) => {
  t.deepEqual(warnings(se({ hosts: ['db.example.com'], ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }] })), [
    'spec.ports[0]: a TCP port with resolution NONE and no addresses takes every connection to the port that no other service claims',
  ]);
  t.deepEqual(warnings(base()), []);
});

test('fields Trellis does not implement are named with the reason', (t) => {
  t.deepEqual(errors(base({ workloadSelector: { labels: { app: 'vm' } } })), [
    "spec.workloadSelector: selects WorkloadEntries (Istio's VM workloads), which Trellis does not have; list the addresses in endpoints",
  ]);
  t.deepEqual(errors(base({ resolution: 'STATIC', endpoints: [{ address: '192.0.2.1', network: 'n1' }] })), [
    'spec.endpoints[0].network: is for multi-network meshes, which Trellis does not implement',
  ]);
});

// ---------------------------------------------------------------------------------------------------
// VirtualService tls[] routes

const vsTls = (tls: unknown[], hosts = ['*.example.com']): Json => ({
  apiVersion: API_VERSION,
  kind: 'VirtualService',
  metadata: meta,
  spec: { hosts, tls },
});

test('tls routes: sniHosts required, each one of the hosts or under a wildcard host (Istio validateTLSRoute)', (t) => {
  const route = [{ destination: { host: 'a.example.com' } }];
  t.deepEqual(errors(vsTls([{ match: [{ sniHosts: ['a.example.com'], port: 443 }], route }])), []);
  t.deepEqual(errors(vsTls([{ match: [{ sniHosts: ['a.other.com'] }], route }])), [
    'spec.tls[0].match[0].sniHosts[0]: must be one of spec.hosts or match one of its wildcards',
  ]);
  t.deepEqual(errors(vsTls([{ match: [{}], route }])), ['spec.tls[0].match[0].sniHosts: is required']);
  t.deepEqual(errors(vsTls([{ route }])), ['spec.tls[0].match: is required']);
  t.deepEqual(errors(vsTls([{ match: [{ sniHosts: ['a.example.com'] }] }])), ['spec.tls[0].route: is required']);
  t.deepEqual(
    errors(vsTls([{ match: [{ sniHosts: ['a.example.com'], destinationSubnets: ['10.0.0.0/40'] }], route }])),
    ['spec.tls[0].match[0].destinationSubnets[0]: must be an IP address or CIDR block'],
  );
  // A VirtualService with only tls routes is complete.
  t.deepEqual(errors(vsTls([{ match: [{ sniHosts: ['a.example.com'] }], route }], ['a.example.com'])), []);
});
