// ServiceEntries in the model (control-plane/model/service-entries.ts): each host becomes a service with
// the entry's ports and endpoints and a `serviceEntry` marker; VirtualServices and DestinationRules find it;
// conflicts keep the older definition (and a Kubernetes Service its FQDN); an entry that turns invalid keeps
// its last accepted version; the status and the snapshot hash follow it.
import test from 'ava';
import { buildSnapshot, type BuildOptions } from '../../control-plane/model/build-snapshot.js';
import { destinationRuleFor, endpointsFor, findService, virtualServiceFor } from '../../control-plane/model/lookup.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { ServiceEntrySpec } from '../../crds/types.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { destinationRule, service, virtualService } from './_objects.js';

const build = (objects: MeshObject[], options: Partial<BuildOptions> = {}) =>
  buildSnapshot(objects, { validate: validateRoutingResource, formatIssue, ...options });

function serviceEntry(ns: string, name: string, spec: ServiceEntrySpec, creationTimestamp?: string): MeshObject {
  return {
    kind: 'ServiceEntry',
    namespace: ns,
    name,
    object: {
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'ServiceEntry',
      metadata: { name, namespace: ns, ...(creationTimestamp ? { creationTimestamp } : {}) },
      spec,
    },
    origin: {},
  };
}

const payments: ServiceEntrySpec = {
  hosts: ['payments.vms.example.com', 'Pay.Example.com.'],
  location: 'MESH_INTERNAL',
  resolution: 'STATIC',
  addresses: ['240.0.0.5', '10.9.0.0/16'],
  ports: [
    { number: 9090, name: 'grpc', protocol: 'GRPC', targetPort: 19090 },
    { number: 443, name: 'https', protocol: 'HTTPS' },
  ],
  endpoints: [
    { address: '192.0.2.22', labels: { version: 'v2' }, weight: 3, locality: 'us-east1/b', ports: { grpc: 29090 } },
    { address: '192.0.2.21', labels: { version: 'v1' }, weight: 0 },
  ],
};

test('each host is a service with the ports, endpoints and the ServiceEntry marker', (t) => {
  const s = build([serviceEntry('shop', 'payments', payments)]);
  t.deepEqual(s.problems, []);
  t.deepEqual(
    s.services.map((x) => x.fqdn),
    ['pay.example.com', 'payments.vms.example.com'],
  );
  const svc = findService(s, 'payments.vms.example.com', 'other')!;
  t.deepEqual(svc.serviceEntry, {
    from: { namespace: 'shop', name: 'payments' },
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    external: false,
    addresses: ['240.0.0.5', '10.9.0.0/16'],
    endpointCount: 2,
  });
  t.deepEqual(svc.clusterIPs, ['240.0.0.5'], 'IP addresses are the virtual IPs; CIDR blocks are not');
  t.deepEqual(
    svc.ports.map((p) => [p.port, p.protocol, p.appProtocol, p.targetPort]),
    [
      [443, 'TCP', 'HTTPS', 443],
      [9090, 'GRPC', 'GRPC', 19090],
    ],
  );
  const grpc = svc.ports.find((p) => p.port === 9090)!;
  t.deepEqual(
    grpc.endpoints.map((e) => [e.address, e.port, e.weight, e.locality.region, e.locality.zone, e.labels.version]),
    [
      ['192.0.2.21', 19090, undefined, '', '', 'v1'],
      ['192.0.2.22', 29090, 3, 'us-east1', 'b', 'v2'],
    ],
    'sorted by address; an endpoint ports entry wins over targetPort; weight 0 is unset (Istio)',
  );
  t.is(s.statuses.find((x) => x.kind === 'ServiceEntry')?.reason, 'Accepted');
  // The endpoints of an entry are not workloads the mesh serves inbound.
  t.deepEqual(s.index.instancesByAddress.get('192.0.2.21'), undefined);
});

test('VirtualServices and DestinationRules name ServiceEntry hosts; subsets select endpoint labels', (t) => {
  const s = build([
    serviceEntry('shop', 'payments', payments),
    virtualService('shop', 'payments', {
      hosts: ['payments.vms.example.com'],
      http: [{ timeout: '2s', route: [{ destination: { host: 'payments.vms.example.com', subset: 'v2' } }] }],
    }),
    destinationRule('shop', 'payments', {
      host: 'payments.vms.example.com',
      subsets: [{ name: 'v2', labels: { version: 'v2' } }],
    }),
  ]);
  t.deepEqual(s.problems, []);
  t.is(virtualServiceFor(s, 'payments.vms.example.com', 'shop')?.name, 'payments');
  t.is(destinationRuleFor(s, 'payments.vms.example.com', 'shop')?.subsets[0]?.name, 'v2');
  t.deepEqual(
    endpointsFor(s, 'payments.vms.example.com', 9090, 'v2', 'shop').map((e) => e.address),
    ['192.0.2.22'],
  );
});

test('DNS: the endpoints as written, or the host itself; NONE: no endpoints', (t) => {
  const s = build([
    serviceEntry('shop', 'api', {
      hosts: ['api.example.com'],
      resolution: 'DNS',
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
    }),
    serviceEntry('shop', 'mirror', {
      hosts: ['mirror.example.com'],
      resolution: 'DNS',
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
      endpoints: [{ address: 'us.mirror.example.com' }, { address: 'eu.mirror.example.com' }],
    }),
    serviceEntry('shop', 'wiki', {
      hosts: ['*.wiki.example.com'],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
    }),
  ]);
  const endpoints = (host: string) => findService(s, host, 'shop')!.ports[0]!.endpoints.map((e) => e.address);
  t.deepEqual(endpoints('api.example.com'), ['api.example.com']);
  t.deepEqual(endpoints('mirror.example.com'), ['eu.mirror.example.com', 'us.mirror.example.com']);
  t.deepEqual(endpoints('*.wiki.example.com'), []);
  t.is(findService(s, '*.wiki.example.com', 'shop')!.serviceEntry?.resolution, 'NONE');
  t.true(findService(s, 'api.example.com', 'shop')!.serviceEntry?.external);
});

test('a host two ServiceEntries define stays the older one’s; the later is warned', (t) => {
  const s = build([
    serviceEntry(
      'shop',
      'new',
      { hosts: ['api.example.com'], ports: [{ number: 80, name: 'http' }] },
      '2026-02-01T00:00:00Z',
    ),
    serviceEntry(
      'shop',
      'old',
      { hosts: ['api.example.com'], ports: [{ number: 443, name: 'tls' }] },
      '2026-01-01T00:00:00Z',
    ),
  ]);
  t.deepEqual(findService(s, 'api.example.com', 'shop')!.serviceEntry?.from, { namespace: 'shop', name: 'old' });
  const status = s.statuses.find((x) => x.kind === 'ServiceEntry' && x.name === 'new')!;
  t.is(status.reason, 'AcceptedWithWarnings');
  t.deepEqual(status.issues, [
    {
      severity: 'warning',
      path: 'spec.hosts[0]',
      message: 'api.example.com is already defined by the older ServiceEntry shop/old; ignored here',
    },
  ]);
});

test('a Kubernetes Service keeps its FQDN; the ServiceEntry naming it is warned about', (t) => {
  const s = build([
    service('shop', 'reviews', [{ name: 'http', port: 9080 }], { clusterIP: '10.96.0.20' }),
    serviceEntry('shop', 'shadow', {
      hosts: ['reviews.shop.svc.cluster.local'],
      ports: [{ number: 9080, name: 'http' }],
    }),
  ]);
  t.is(findService(s, 'reviews', 'shop')!.serviceEntry, undefined);
  t.deepEqual(
    s.problems.map((p) => p.message),
    [
      'warning: ServiceEntry shop/shadow: spec.hosts: reviews.shop.svc.cluster.local is a Kubernetes Service; the Service is used, not this entry',
    ],
  );
});

test('exportTo hides an entry from other namespaces; an invalid edit keeps the last accepted version', (t) => {
  const spec: ServiceEntrySpec = {
    hosts: ['api.example.com'],
    resolution: 'DNS',
    ports: [{ number: 443, name: 'tls' }],
    exportTo: ['.'],
  };
  const first = build([serviceEntry('shop', 'api', spec)]);
  const svc = findService(first, 'api.example.com', 'shop')!;
  t.deepEqual(svc.exportTo, ['shop']);
  const broken = build([serviceEntry('shop', 'api', { ...spec, resolution: 'NONE', endpoints: [{ address: 'x' }] })], {
    previous: first,
  });
  t.is(broken.statuses[0]?.reason, 'Invalid');
  t.true(broken.serviceEntries[0]?.stale);
  t.truthy(findService(broken, 'api.example.com', 'shop'), 'the last accepted version still serves');
  t.not(broken.hash, first.hash);
  const changed = build([serviceEntry('shop', 'api', { ...spec, ports: [{ number: 8443, name: 'tls' }] })]);
  t.not(changed.hash, first.hash, 'the hash covers the entries');
});
